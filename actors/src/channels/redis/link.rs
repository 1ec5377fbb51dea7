//! The link to Redis: the command connection with its timeouts and
//! reconnects, what the node knows of Redis's health, and the writes of
//! this node's own state: presence, connection counts, the heartbeat, and
//! the resync that puts that state back when Redis lost or missed it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, RedisResult};

use crate::channels::broker::BrokerError;
use crate::model::channel_name::ChannelName;
use crate::model::ids::PlayerId;

use super::keys::Keys;
use super::scripts::Scripts;

/// A request waits at most this long for Redis, so that a hung server
/// fails requests quickly instead of stalling the broadcaster.
pub(super) const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Pause between attempts to reopen a connection.
pub(super) const RECONNECT_DELAY: Duration = Duration::from_millis(500);

/// What the node knows of its link to Redis, for `/readyz`.
#[derive(Default)]
pub(super) struct Health {
    commands: AtomicBool,
    pubsub: AtomicBool,
    /// The first heartbeat landed: other nodes can see this one.
    registered: AtomicBool,
}

impl Health {
    pub(super) fn is_ready(&self) -> bool {
        self.commands.load(Ordering::Relaxed)
            && self.pubsub.load(Ordering::Relaxed)
            && self.registered.load(Ordering::Relaxed)
    }

    /// Turns a command's result into the broker's, noting whether Redis
    /// answered at all. Only a failure to reach Redis marks it down; an
    /// error Redis sent back leaves the state as it was.
    pub(super) fn note<T>(&self, result: RedisResult<T>) -> Result<T, BrokerError> {
        match result {
            Ok(value) => {
                self.set_commands(true);
                Ok(value)
            }
            Err(err) => {
                let unreachable = err.is_io_error()
                    || err.is_timeout()
                    || err.is_connection_dropped()
                    || err.is_connection_refusal();
                if unreachable {
                    self.set_commands(false);
                }
                Err(BrokerError::Unavailable(err.to_string()))
            }
        }
    }

    /// Logs only the changes, so an outage is two lines, not one a request.
    fn set_commands(&self, up: bool) {
        if self.commands.swap(up, Ordering::Relaxed) != up {
            if up {
                log::info!("redis_commands_up");
            } else {
                log::warn!("redis_commands_down");
            }
        }
    }

    /// The pub/sub task says whether it is subscribed and relaying.
    pub(super) fn set_pubsub(&self, up: bool) {
        self.pubsub.store(up, Ordering::Relaxed);
    }
}

/// This node's own presence and connection counts, kept so they can be
/// written back when Redis has lost them.
#[derive(Default)]
pub(super) struct Claims {
    /// (channel, player) -> (display name, connections on this node).
    pub(super) presence: HashMap<(ChannelName, PlayerId), (Option<String>, u32)>,
    pub(super) connections: HashMap<PlayerId, u32>,
}

/// What every request to Redis needs; cheap to clone into a future, and
/// shared across threads: connections are admitted from the workers.
#[derive(Clone)]
pub(super) struct Link {
    /// This node's id in Redis, new at every start.
    pub(super) node: Arc<str>,
    pub(super) keys: Arc<Keys>,
    pub(super) scripts: Arc<Scripts>,
    pub(super) health: Arc<Health>,
    /// Multiplexed and shared by every clone; reconnects by itself.
    pub(super) commands: ConnectionManager,
    claims: Arc<Mutex<Claims>>,
    /// A write of this node's presence or counts failed: Redis may differ
    /// from `claims` until the next resync.
    dirty: Arc<AtomicBool>,
}

impl Link {
    /// Opens nothing yet: the connection is made on the first request, so
    /// the node starts while Redis is down.
    pub(super) fn new(client: &Client, prefix: &str) -> Result<Self, BrokerError> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(RECONNECT_DELAY);
        let commands = ConnectionManager::new_lazy_with_config(client.clone(), config)
            .map_err(|err| BrokerError::Unavailable(err.to_string()))?;
        let node = uuid::Uuid::new_v4().simple().to_string();
        Ok(Link {
            node: Arc::from(node),
            keys: Arc::new(Keys::new(prefix)),
            scripts: Arc::new(Scripts::new()),
            health: Arc::new(Health::default()),
            commands,
            claims: Arc::new(Mutex::new(Claims::default())),
            dirty: Arc::new(AtomicBool::new(false)),
        })
    }

    /// This node's own state; held only for a quick change, never across
    /// an await.
    pub(super) fn claims(&self) -> MutexGuard<'_, Claims> {
        self.claims.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Notes the result of a write of this node's own state.
    pub(super) fn note_write<T>(&self, result: RedisResult<T>) -> Result<T, BrokerError> {
        let noted = self.health.note(result);
        if noted.is_err() {
            self.dirty.store(true, Ordering::Relaxed);
        }
        noted
    }

    /// Writes this node's presence entry; the script announces a join or a
    /// leave when the player appears or disappears cluster-wide.
    pub(super) async fn write_presence(
        mut self,
        channel: ChannelName,
        player: PlayerId,
        name: Option<String>,
        connections: u32,
    ) -> Result<(), BrokerError> {
        let entry = Keys::presence_entry(&channel, &player);
        let result: RedisResult<i64> = self
            .scripts
            .presence_set
            .key(self.keys.members(&channel))
            .key(self.keys.player_nodes(&entry))
            .key(self.keys.node_presence(&self.node))
            .arg(&*self.node)
            .arg(player.as_str())
            .arg(name.unwrap_or_default())
            .arg(connections)
            .arg(self.keys.node_prefix())
            .arg(self.keys.pubsub(&channel))
            .arg(entry)
            .invoke_async(&mut self.commands)
            .await;
        self.note_write(result).map(|_| ())
    }

    /// Sets this node's count of `player`'s connections (0 removes it).
    async fn write_connections(mut self, player: PlayerId, count: u32) -> Result<(), BrokerError> {
        let result: RedisResult<i64> = self
            .scripts
            .restore
            .key(self.keys.connections(&player))
            .key(self.keys.node_players(&self.node))
            .arg(&*self.node)
            .arg(player.as_str())
            .arg(count)
            .invoke_async(&mut self.commands)
            .await;
        self.note_write(result).map(|_| ())
    }

    async fn members(&mut self, key: String) -> Result<Vec<String>, BrokerError> {
        let result = redis::cmd("SMEMBERS")
            .arg(key)
            .query_async(&mut self.commands)
            .await;
        self.health.note(result)
    }

    /// Makes Redis hold exactly this node's presence and counts: entries
    /// the node no longer has are removed (announcing leaves), the rest are
    /// written back. After Redis lost the node's state, or a write failed.
    async fn resync(mut self) -> Result<(), BrokerError> {
        let (presence, connections) = {
            let claims = self.claims();
            (claims.presence.clone(), claims.connections.clone())
        };
        let held = self.members(self.keys.node_presence(&self.node)).await?;
        for (channel, player) in held.iter().filter_map(|e| Keys::parse_presence_entry(e)) {
            if !presence.contains_key(&(channel.clone(), player.clone())) {
                self.clone()
                    .write_presence(channel, player, None, 0)
                    .await?;
            }
        }
        for ((channel, player), (name, count)) in &presence {
            self.clone()
                .write_presence(channel.clone(), player.clone(), name.clone(), *count)
                .await?;
        }
        let counted = self.members(self.keys.node_players(&self.node)).await?;
        for player in counted.iter().filter_map(|p| PlayerId::parse(p).ok()) {
            if !connections.contains_key(&player) {
                self.clone().write_connections(player, 0).await?;
            }
        }
        for (player, count) in &connections {
            self.clone()
                .write_connections(player.clone(), *count)
                .await?;
        }
        log::info!(presence_entries:% = presence.len(), players:% = connections.len(); "redis_state_resynced");
        Ok(())
    }

    /// One heartbeat, a resync when needed, then the sweep of dead nodes.
    /// `ttl` is the heartbeat's expiry in milliseconds.
    pub(super) async fn beat(mut self, ttl: u64) {
        let nodes_key = self.keys.nodes();
        let beat: RedisResult<i64> = self
            .scripts
            .heartbeat
            .key(self.keys.heartbeat(&self.node))
            .key(&nodes_key)
            .arg(&*self.node)
            .arg(ttl)
            .invoke_async(&mut self.commands)
            .await;
        let added = match self.health.note(beat) {
            Ok(added) => added,
            Err(err) => {
                log::debug!(error:% = err; "redis_heartbeat_failed");
                return;
            }
        };
        // Unknown to Redis after registering: Redis restarted, or this node
        // stalled past its expiry and was swept.
        let lost = added == 1 && self.health.registered.load(Ordering::Relaxed);
        if lost {
            log::warn!(node_id:% = self.node; "redis_state_lost");
        }
        self.health.registered.store(true, Ordering::Relaxed);
        if lost || self.dirty.swap(false, Ordering::Relaxed) {
            if let Err(err) = self.clone().resync().await {
                self.dirty.store(true, Ordering::Relaxed);
                log::warn!(error:% = err; "redis_resync_failed");
                return;
            }
        }
        let swept: RedisResult<i64> = self
            .scripts
            .sweep
            .key(&nodes_key)
            .arg(&*self.node)
            .arg(self.keys.root())
            .invoke_async(&mut self.commands)
            .await;
        match swept {
            Ok(0) => {}
            Ok(count) => log::info!(count:%; "redis_nodes_swept"),
            Err(err) => log::warn!(error:% = err; "redis_sweep_failed"),
        }
    }
}
