//! The Redis broker: several Hearth nodes share one Redis server and act
//! as one chat server (`docs/protocol.md`, section 9).
//!
//! - Offsets are assigned in Redis, in Lua. One script gives a channel its
//!   next offset, appends the publication to the channel's history stream
//!   and announces it on pub/sub, atomically; every node therefore sees a
//!   channel's publications in offset order, and each channel's epoch and
//!   offset are the same on every node.
//! - History is a Redis stream per channel, capped in length and age by
//!   the namespace's rules, so any node can answer a recovery.
//! - Live events come over one pub/sub connection per node, subscribed
//!   only to the channels the node has connections in (`watch`,
//!   `unwatch`). After the connection drops, the node reconnects,
//!   resubscribes, and relays what it missed from history before the next
//!   live publication.
//! - Presence and each player's connection count (for the per-player
//!   connection limit) are kept per node, each node writing only its own
//!   share. A node is alive while its heartbeat
//!   key, renewed by `maintain`, has not expired; readers count live nodes
//!   only, and any node sweeps up after a dead one, sending the leaves it
//!   owed. A node leaving gracefully (`depart`) sweeps itself at once.
//! - The node keeps its own share in memory too. When Redis lost it (a
//!   restart, or the node stalled and was swept) or a write of it failed,
//!   the next heartbeat resyncs: Redis is made to hold exactly that share.
//!
//! The scripts compute some key names themselves, so this needs one Redis
//! server (or a primary with replicas), not Redis Cluster.
//!
//! Files:
//! - `mod.rs`: the settings and `RedisBroker`, the `Broker` implementation.
//! - `link.rs`: the command connection, health for `/readyz`, and the
//!   writes of this node's own state: presence, counts, heartbeat, resync.
//! - `gate.rs`: admission against the cluster-wide per-player limit, and
//!   readiness, asked from any thread.
//! - `relay.rs`: the pub/sub connection and the live relay to the
//!   broadcaster, with gap filling.
//! - `codec.rs`: a publication as Redis text, and back.
//! - `keys.rs`: the key layout.
//! - `scripts.rs`, with the Lua sources in `scripts/`: the atomic steps.

mod approvals;
mod codec;
mod gate;
mod keys;
mod link;
mod relay;
mod scripts;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use redis::{Client, RedisResult};
use tokio::sync::{mpsc, oneshot};

use crate::channels::broker::{
    ApprovalRelay, Broker, BrokerError, BrokerFuture, BrokerSink, Gate, HistoryBudget,
    HISTORY_FULL, PLAYER_HISTORY_FULL, TOO_MANY_NEW_CHANNELS,
};
use crate::channels::rules::{ChannelRules, NamespaceRules};
use crate::channels::stream::{
    Epoch, Payload, PresenceEntry, Publication, Publisher, RecoverFrom, Recovery, StreamPosition,
};
use crate::model::channel_name::ChannelName;
use crate::model::ids::PlayerId;
use crate::model::time::Timestamp;

use approvals::RedisApprovals;
use codec::{decode_entries, encode_body, millis};
use gate::RedisGate;
use link::Link;
use relay::{run_pubsub, Control, Relay};

/// Watch and unwatch orders waiting for the pub/sub task. Orders follow
/// rooms opening and closing, so this bounds a burst, not a backlog.
const CONTROL_QUEUE: usize = 4096;

pub struct RedisSettings {
    /// `redis://` or, for TLS, `rediss://`.
    pub url: String,
    /// PEM certificates to trust for a `rediss://` server instead of the
    /// system's roots (a private CA).
    pub tls_ca: Option<Vec<u8>>,
    pub prefix: String,
    /// How long a node that stopped beating still counts.
    pub node_ttl: Duration,
    /// How long a quiet channel keeps its epoch and offset.
    pub idle_ttl: Duration,
    pub max_connections_per_player: usize,
    /// What players' publications may add to history, counted per
    /// `budget_window` in Redis for the whole cluster.
    pub budget: HistoryBudget,
    /// The longest history time to live of any namespace: what was
    /// counted in one window may still be held in the next, so a player's
    /// live history stays under twice its budget.
    pub budget_window: Duration,
}

pub struct RedisBroker {
    link: Link,
    client: Client,
    control: mpsc::Sender<Control>,
    /// Taken when the sink arrives and the pub/sub task starts.
    control_inbox: Option<mpsc::Receiver<Control>>,
    beat_in_flight: Rc<Cell<bool>>,
    node_ttl: Duration,
    idle_ttl: Duration,
    max_connections_per_player: usize,
    budget: HistoryBudget,
    budget_window: Duration,
}

impl RedisBroker {
    /// Connects lazily: the node starts while Redis is down and becomes
    /// ready when Redis answers. Must be called inside the runtime that
    /// will run the broadcaster.
    pub fn new(settings: RedisSettings) -> Result<Self, BrokerError> {
        let client = match settings.tls_ca {
            Some(root_cert) => Client::build_with_tls(
                settings.url.as_str(),
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(root_cert),
                },
            ),
            None => Client::open(settings.url.as_str()),
        }
        .map_err(|err| BrokerError::Unavailable(format!("bad broker url or CA: {err}")))?;
        let link = Link::new(&client, &settings.prefix)?;
        let (control, control_inbox) = mpsc::channel(CONTROL_QUEUE);
        log::info!(kind = "redis", node_id:% = link.node, prefix:% = settings.prefix; "broker");
        Ok(RedisBroker {
            link,
            client,
            control,
            control_inbox: Some(control_inbox),
            beat_in_flight: Rc::new(Cell::new(false)),
            node_ttl: settings.node_ttl,
            idle_ttl: settings.idle_ttl,
            max_connections_per_player: settings.max_connections_per_player.max(1),
            budget: settings.budget,
            budget_window: settings.budget_window.max(Duration::from_secs(1)),
        })
    }
}

/// How long a channel's position lives in Redis when it was only read
/// (subscribed to) and never published to.
const UNPUBLISHED_POSITION_TTL: Duration = Duration::from_secs(60);

impl Broker for RedisBroker {
    fn set_sink(&mut self, sink: BrokerSink) {
        let Some(inbox) = self.control_inbox.take() else {
            return;
        };
        let relay = Relay::new(sink, self.link.clone());
        actix_rt::spawn(run_pubsub(self.client.clone(), inbox, relay));
    }

    fn watch(&mut self, channel: &ChannelName) -> BrokerFuture<()> {
        let (done, answer) = oneshot::channel();
        if self
            .control
            .try_send(Control::Watch(channel.clone(), done))
            .is_err()
        {
            return Box::pin(std::future::ready(Err(BrokerError::Unavailable(
                "too many subscription changes at once".into(),
            ))));
        }
        Box::pin(async move {
            answer.await.unwrap_or_else(|_| {
                Err(BrokerError::Unavailable(
                    "the pub/sub connection stopped".into(),
                ))
            })
        })
    }

    fn unwatch(&mut self, channel: &ChannelName) {
        if self
            .control
            .try_send(Control::Unwatch(channel.clone()))
            .is_err()
        {
            log::warn!(channel:%; "redis_unwatch_dropped");
        }
    }

    fn publish(
        &mut self,
        channel: &ChannelName,
        publisher: Publisher,
        data: Payload,
        rules: &NamespaceRules,
    ) -> BrokerFuture<Publication> {
        let timestamp = Timestamp::now();
        let body = encode_body(&publisher, &timestamp, &data);
        let history_ttl = rules.history_ttl();
        let position_ttl = history_ttl.max(self.idle_ttl);
        let history_size = rules.history_size;
        let channel = channel.clone();
        let mut link = self.link.clone();
        let budget = self.budget;
        let budget_window = self.budget_window;
        Box::pin(async move {
            // The server's own publications are not held to the budgets.
            let player = match &publisher {
                Publisher::Player(player) => Some(player.clone()),
                Publisher::Server => None,
            };
            let counted = if history_size > 0 { data.len() } else { 0 };
            let (player_arg, player_bytes, created) = match &player {
                Some(player) => (
                    player.as_str(),
                    link.keys.history_bytes_of(player),
                    link.keys.channels_created_by(player),
                ),
                // Unused keys, named only so the script declares all it may
                // touch.
                None => ("", link.keys.history_bytes(), link.keys.history_bytes()),
            };
            let result: RedisResult<(i64, String)> = link
                .scripts
                .publish
                .key(link.keys.position(&channel))
                .key(link.keys.history(&channel))
                .key(player_bytes)
                .key(link.keys.history_bytes())
                .key(created)
                .arg(Epoch::generate().as_str())
                .arg(&body)
                .arg(history_size)
                .arg(millis(history_ttl))
                .arg(millis(position_ttl))
                .arg(link.keys.pubsub(&channel))
                .arg(player_arg)
                .arg(counted)
                .arg(budget.max_bytes_per_player)
                .arg(budget.max_bytes)
                .arg(millis(budget_window))
                .arg(budget.new_channels_per_minute)
                .invoke_async(&mut link.commands)
                .await;
            let (offset, epoch) = link.health.note(result)?;
            let Ok(offset) = u64::try_from(offset) else {
                return Err(BrokerError::LimitExceeded(match epoch.as_str() {
                    "channels" => TOO_MANY_NEW_CHANNELS,
                    "total" => HISTORY_FULL,
                    _ => PLAYER_HISTORY_FULL,
                }));
            };
            Ok(Publication {
                channel,
                offset,
                epoch: Epoch::from_string(epoch),
                publisher,
                data,
                timestamp,
            })
        })
    }

    fn recover(
        &mut self,
        channel: &ChannelName,
        since: Option<&RecoverFrom>,
        limit: usize,
        rules: &NamespaceRules,
    ) -> BrokerFuture<Recovery> {
        let history_ttl = rules.history_ttl();
        let position_ttl = history_ttl.max(self.idle_ttl);
        let since = since.cloned();
        let channel = channel.clone();
        let mut link = self.link.clone();
        Box::pin(async move {
            let (since_offset, since_epoch) = match &since {
                Some(since) => (since.offset.to_string(), since.epoch.clone()),
                None => (String::new(), String::new()),
            };
            let result: RedisResult<(String, u64, Vec<String>)> = link
                .scripts
                .recover
                .key(link.keys.position(&channel))
                .key(link.keys.history(&channel))
                .arg(Epoch::generate().as_str())
                .arg(millis(position_ttl))
                .arg(since_offset)
                .arg(since_epoch)
                .arg(millis(UNPUBLISHED_POSITION_TTL))
                .arg(limit)
                .invoke_async(&mut link.commands)
                .await;
            let (epoch, offset, entries) = link.health.note(result)?;
            let position = StreamPosition {
                offset,
                epoch: Epoch::from_string(epoch),
            };
            let mut after = decode_entries(&channel, &position.epoch, &entries);
            // Publications past the namespace's age are gone, as in the
            // embedded broker, even while the stream key lives on.
            let oldest_allowed = chrono::Utc::now()
                - chrono::Duration::from_std(history_ttl).unwrap_or(chrono::Duration::MAX);
            after.retain(|p| p.timestamp.0 >= oldest_allowed);
            Ok(Recovery::settle(position, since.as_ref(), after))
        })
    }

    fn set_presence(
        &mut self,
        channel: &ChannelName,
        player: &PlayerId,
        name: Option<&str>,
        connections: u32,
    ) -> BrokerFuture<()> {
        let name = name.map(str::to_string);
        {
            let mut claims = self.link.claims();
            let key = (channel.clone(), player.clone());
            if connections == 0 {
                claims.presence.remove(&key);
            } else {
                claims.presence.insert(key, (name.clone(), connections));
            }
        }
        Box::pin(self.link.clone().write_presence(
            channel.clone(),
            player.clone(),
            name,
            connections,
        ))
    }

    fn presence(&mut self, channel: &ChannelName) -> BrokerFuture<Vec<PresenceEntry>> {
        let channel = channel.clone();
        let mut link = self.link.clone();
        Box::pin(async move {
            let result: RedisResult<Vec<String>> = link
                .scripts
                .presence_list
                .key(link.keys.members(&channel))
                .arg(link.keys.player_nodes_prefix(&channel))
                .arg(link.keys.node_prefix())
                .invoke_async(&mut link.commands)
                .await;
            let flat = link.health.note(result)?;
            let mut players: Vec<PresenceEntry> = flat
                .chunks_exact(3)
                .filter_map(|entry| {
                    Some(PresenceEntry {
                        player_id: PlayerId::parse(&entry[0]).ok()?,
                        name: Some(entry[1].clone()).filter(|name| !name.is_empty()),
                        connections: entry[2].parse().ok()?,
                    })
                })
                .collect();
            players.sort_by(|a, b| a.player_id.cmp(&b.player_id));
            Ok(players)
        })
    }

    fn approvals(&self) -> Arc<dyn ApprovalRelay> {
        Arc::new(RedisApprovals::new(self.link.clone()))
    }

    fn gate(&self) -> Arc<dyn Gate> {
        Arc::new(RedisGate::new(
            self.link.clone(),
            self.max_connections_per_player,
        ))
    }

    /// The heartbeat that keeps this node counted, a resync when Redis
    /// lost or missed this node's state, and the sweep of dead nodes.
    fn maintain(&mut self, _rules: &ChannelRules) {
        if self.beat_in_flight.replace(true) {
            return;
        }
        let in_flight = self.beat_in_flight.clone();
        let beat = self.link.clone().beat(millis(self.node_ttl));
        actix_rt::spawn(async move {
            beat.await;
            in_flight.set(false);
        });
    }

    /// Stops beating and sweeps itself as a dead node would be swept:
    /// leaves for its players go out now, and its counts are gone.
    fn depart(&mut self) -> BrokerFuture<()> {
        // The heartbeat would bring the node back before the sweep.
        self.beat_in_flight.set(true);
        let mut link = self.link.clone();
        Box::pin(async move {
            let stopped: RedisResult<i64> = redis::cmd("DEL")
                .arg(link.keys.heartbeat(&link.node))
                .query_async(&mut link.commands)
                .await;
            link.health.note(stopped)?;
            // No node is called "": this node is swept like any other.
            let swept: RedisResult<i64> = link
                .scripts
                .sweep
                .key(link.keys.nodes())
                .arg("")
                .arg(link.keys.root())
                .invoke_async(&mut link.commands)
                .await;
            link.health.note(swept)?;
            log::info!(node_id:% = link.node; "redis_node_departed");
            Ok(())
        })
    }

    fn maintenance_interval(&self) -> Duration {
        (self.node_ttl / 3).max(Duration::from_millis(100))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::support::test_services::require_service;

    /// Deletes every key under the run's prefix when dropped, so that a
    /// failed run leaves nothing behind either.
    struct Cleanup {
        url: String,
        prefix: String,
    }

    impl Drop for Cleanup {
        fn drop(&mut self) {
            let Ok(client) = Client::open(self.url.as_str()) else {
                return;
            };
            let Ok(mut redis) = client.get_connection_with_timeout(Duration::from_secs(2)) else {
                return;
            };
            // SCAN, unlike KEYS, does not hold up a Redis other runs share.
            let keys: RedisResult<Vec<String>> =
                redis::Commands::scan_match(&mut redis, format!("{}:*", self.prefix))
                    .and_then(|keys| keys.collect());
            match keys {
                Ok(keys) if !keys.is_empty() => {
                    let _: RedisResult<()> = redis::cmd("DEL").arg(keys).query(&mut redis);
                }
                _ => {}
            }
        }
    }

    #[test]
    fn the_shared_suite_passes() {
        let url = require_service!(Redis);
        let prefix = format!("hearth-test-{}", uuid::Uuid::new_v4().simple());
        let _cleanup = Cleanup {
            url: url.clone(),
            prefix: prefix.clone(),
        };
        crate::channels::conformance::run(move || {
            let broker = RedisBroker::new(RedisSettings {
                url,
                tls_ca: None,
                prefix,
                // Far beyond the suite: the node must not expire mid-run.
                node_ttl: Duration::from_secs(30),
                idle_ttl: Duration::from_secs(60),
                max_connections_per_player: 4,
                budget: HistoryBudget::default(),
                budget_window: Duration::from_secs(300),
            });
            Box::new(broker.expect("a valid Redis URL"))
        });
    }
}
