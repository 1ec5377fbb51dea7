//! The Redis broker: several Hearth nodes act as one.
//!
//! - Offsets, epochs and history live in Redis. A Lua script assigns a
//!   channel's next offset, appends to its history stream (capped in length
//!   and age per namespace) and publishes the event on the channel's pub/sub
//!   channel, all in one atomic step, so every node sees a channel's
//!   publications in offset order and any node can serve recovery.
//! - A node holds one pub/sub connection and subscribes to a Hearth channel
//!   only while it has connections in it (`watch`/`unwatch`). The task that
//!   reads it reconnects and resubscribes after an outage, and fills a gap in
//!   a channel's offsets from history before relaying what follows.
//! - Presence and the per-player connection count are kept per node: each
//!   node writes its own counts, and proves it is alive with a heartbeat key
//!   that expires after `node_ttl`. Readers count only live nodes, and any
//!   node sweeps up after a dead one, announcing the leaves it owed.
//!
//! Key layout under `<prefix>:` is in `Keys`. It assumes one Redis server
//! (or a primary with replicas), not Redis Cluster: the scripts touch keys
//! they compute.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use chrono::DateTime;
use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Msg, RedisResult, Script};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::sync::{mpsc, oneshot};

use crate::broker::{
    Broker, BrokerError, BrokerEvent, BrokerFuture, BrokerSink, Epoch, Payload, PresenceEntry,
    Publication, Publisher, Recovery, StreamPosition,
};
use crate::channels::{ChannelName, NamespaceRules};
use crate::ids::PlayerId;
use crate::protocol::{RecoverFrom, Timestamp};

/// A request waits at most this long for Redis, so that a hung server
/// fails requests quickly instead of stalling the broadcaster.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Pause between attempts to reopen the pub/sub connection.
const RECONNECT_DELAY: Duration = Duration::from_millis(500);
/// Watch and unwatch orders waiting for the pub/sub task. Orders follow
/// rooms opening and closing, so this bounds a burst, not a backlog.
const CONTROL_QUEUE: usize = 4096;

pub struct RedisSettings {
    pub url: String,
    pub prefix: String,
    /// How long a node that stopped beating still counts.
    pub node_ttl: Duration,
    /// How long a quiet channel keeps its epoch and offset.
    pub idle_ttl: Duration,
    pub max_connections_per_player: usize,
}

/// Every key and pub/sub channel name Hearth uses, under one prefix.
struct Keys {
    /// `<prefix>:`
    root: String,
}

impl Keys {
    fn position(&self, channel: &ChannelName) -> String {
        format!("{}stream:{channel}", self.root)
    }

    fn history(&self, channel: &ChannelName) -> String {
        format!("{}history:{channel}", self.root)
    }

    fn pubsub(&self, channel: &ChannelName) -> String {
        format!("{}channel:{channel}", self.root)
    }

    fn pubsub_prefix(&self) -> String {
        format!("{}channel:", self.root)
    }

    /// player -> display name, for players present in `channel`.
    fn members(&self, channel: &ChannelName) -> String {
        format!("{}presence:{channel}", self.root)
    }

    /// The entry naming `player` in `channel`, as the node remembers it;
    /// `#` cannot occur in channel names.
    fn presence_entry(channel: &ChannelName, player: &PlayerId) -> String {
        format!("{channel}#{player}")
    }

    /// node -> connections of one player in one channel.
    fn player_nodes(&self, entry: &str) -> String {
        format!("{}presence:{entry}", self.root)
    }

    fn node_prefix(&self) -> String {
        format!("{}node:", self.root)
    }

    fn heartbeat(&self, node: &str) -> String {
        format!("{}node:{node}", self.root)
    }

    fn node_presence(&self, node: &str) -> String {
        format!("{}node:{node}:presence", self.root)
    }

    fn node_players(&self, node: &str) -> String {
        format!("{}node:{node}:players", self.root)
    }

    fn nodes(&self) -> String {
        format!("{}nodes", self.root)
    }

    /// node -> connections of one player.
    fn connections(&self, player: &PlayerId) -> String {
        format!("{}conns:{player}", self.root)
    }
}

struct Scripts {
    publish: Script,
    recover: Script,
    history: Script,
    presence_set: Script,
    presence_list: Script,
    admit: Script,
    release: Script,
    restore: Script,
    heartbeat: Script,
    sweep: Script,
}

impl Scripts {
    fn new() -> Self {
        let with_live = |body: &str| {
            Script::new(&format!(
                "{}\n{body}",
                include_str!("redis_scripts/live.lua")
            ))
        };
        Scripts {
            publish: Script::new(include_str!("redis_scripts/publish.lua")),
            recover: Script::new(include_str!("redis_scripts/recover.lua")),
            history: Script::new(include_str!("redis_scripts/history.lua")),
            presence_set: with_live(include_str!("redis_scripts/presence_set.lua")),
            presence_list: Script::new(include_str!("redis_scripts/presence_list.lua")),
            admit: with_live(include_str!("redis_scripts/admit.lua")),
            release: Script::new(include_str!("redis_scripts/release.lua")),
            restore: Script::new(include_str!("redis_scripts/restore.lua")),
            heartbeat: Script::new(include_str!("redis_scripts/heartbeat.lua")),
            sweep: with_live(include_str!("redis_scripts/sweep.lua")),
        }
    }
}

/// What the node knows of its link to Redis, for `/readyz`.
#[derive(Default)]
struct Health {
    commands: Cell<bool>,
    pubsub: Cell<bool>,
    /// The first heartbeat landed: other nodes can see this one.
    registered: Cell<bool>,
}

impl Health {
    fn is_ready(&self) -> bool {
        self.commands.get() && self.pubsub.get() && self.registered.get()
    }

    /// Turns a command's result into the broker's, noting whether Redis
    /// answered at all.
    fn note<T>(&self, result: RedisResult<T>) -> Result<T, BrokerError> {
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

    fn set_commands(&self, up: bool) {
        if self.commands.replace(up) != up {
            if up {
                log::info!("redis_commands_up");
            } else {
                log::warn!("redis_commands_down");
            }
        }
    }
}

/// This node's own presence and connection counts, kept so they can be
/// written back when Redis has lost them.
#[derive(Default)]
struct Claims {
    presence: HashMap<(ChannelName, PlayerId), (Option<String>, u32)>,
    connections: HashMap<PlayerId, u32>,
}

enum Control {
    Watch(ChannelName, oneshot::Sender<Result<(), BrokerError>>),
    Unwatch(ChannelName),
}

/// The publication as stored in history and sent to the other nodes; the
/// offset and epoch travel beside it.
#[derive(Serialize)]
struct BodyOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    u: Option<&'a str>,
    t: i64,
    d: &'a RawValue,
}

#[derive(Deserialize)]
struct BodyIn {
    #[serde(default)]
    u: Option<String>,
    t: i64,
    d: Box<RawValue>,
}

fn encode_body(publisher: &Publisher, timestamp: &Timestamp, data: &Payload) -> String {
    let body = BodyOut {
        u: match publisher {
            Publisher::Player(player) => Some(player.as_str()),
            Publisher::Server => None,
        },
        t: timestamp.0.timestamp_millis(),
        d: data.as_raw(),
    };
    // Serializing a string, an integer and already valid JSON cannot fail.
    serde_json::to_string(&body).unwrap_or_default()
}

fn decode_publication(
    channel: &ChannelName,
    offset: u64,
    epoch: Epoch,
    body: &str,
) -> Option<Publication> {
    let body: BodyIn = serde_json::from_str(body).ok()?;
    let publisher = match body.u {
        Some(player) => Publisher::Player(PlayerId::parse(&player).ok()?),
        None => Publisher::Server,
    };
    Some(Publication {
        channel: channel.clone(),
        offset,
        epoch,
        publisher,
        data: Payload::from_raw(body.d),
        timestamp: Timestamp(DateTime::from_timestamp_millis(body.t)?),
    })
}

/// History entries as the scripts return them: id, body, id, body...
fn decode_entries(channel: &ChannelName, epoch: &Epoch, flat: &[String]) -> Vec<Publication> {
    flat.chunks_exact(2)
        .filter_map(|entry| {
            let offset = entry[0].split('-').next()?.parse().ok()?;
            decode_publication(channel, offset, epoch.clone(), &entry[1])
        })
        .collect()
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// What every request to Redis needs; cheap to clone into a future.
#[derive(Clone)]
struct Link {
    node: Rc<str>,
    keys: Rc<Keys>,
    scripts: Rc<Scripts>,
    health: Rc<Health>,
    commands: ConnectionManager,
    claims: Rc<RefCell<Claims>>,
    /// A write of this node's presence or counts failed: Redis may differ
    /// from `claims` until the next resync.
    dirty: Rc<Cell<bool>>,
}

impl Link {
    /// Notes the result of a write of this node's own state.
    fn note_write<T>(&self, result: RedisResult<T>) -> Result<T, BrokerError> {
        let noted = self.health.note(result);
        if noted.is_err() {
            self.dirty.set(true);
        }
        noted
    }

    /// Writes this node's presence entry; the script announces a join or a
    /// leave when the player appears or disappears cluster-wide.
    async fn write_presence(
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
            let claims = self.claims.borrow();
            (claims.presence.clone(), claims.connections.clone())
        };
        let held = self.members(self.keys.node_presence(&self.node)).await?;
        for entry in held {
            let Some((channel, player)) = entry.split_once('#') else {
                continue;
            };
            let (Ok(channel), Ok(player)) = (ChannelName::parse(channel), PlayerId::parse(player))
            else {
                continue;
            };
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
        log::info!(
            "redis_state_resynced presence_entries={} players={}",
            presence.len(),
            connections.len()
        );
        Ok(())
    }

    /// One heartbeat, a resync when needed, then the sweep of dead nodes.
    async fn beat(mut self, ttl: u64) {
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
                log::debug!("redis_heartbeat_failed error={err}");
                return;
            }
        };
        // Unknown to Redis after registering: Redis restarted, or this node
        // stalled past its expiry and was swept.
        let lost = added == 1 && self.health.registered.get();
        if lost {
            log::warn!("redis_state_lost node_id={}", self.node);
        }
        self.health.registered.set(true);
        if lost || self.dirty.replace(false) {
            if let Err(err) = self.clone().resync().await {
                self.dirty.set(true);
                log::warn!("redis_resync_failed error={err}");
                return;
            }
        }
        let swept: RedisResult<i64> = self
            .scripts
            .sweep
            .key(&nodes_key)
            .arg(&*self.node)
            .arg(&self.keys.root)
            .invoke_async(&mut self.commands)
            .await;
        match swept {
            Ok(0) => {}
            Ok(count) => log::info!("redis_nodes_swept count={count}"),
            Err(err) => log::warn!("redis_sweep_failed error={err}"),
        }
    }
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
}

impl RedisBroker {
    /// Connects lazily: the node starts while Redis is down and becomes
    /// ready when Redis answers. Must be called inside the runtime that
    /// will run the broadcaster.
    pub fn new(settings: RedisSettings) -> Result<Self, BrokerError> {
        let client = Client::open(settings.url.as_str())
            .map_err(|err| BrokerError::Unavailable(format!("bad broker url: {err}")))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(RECONNECT_DELAY);
        let commands = ConnectionManager::new_lazy_with_config(client.clone(), config)
            .map_err(|err| BrokerError::Unavailable(err.to_string()))?;
        let (control, control_inbox) = mpsc::channel(CONTROL_QUEUE);
        let node = uuid::Uuid::new_v4().simple().to_string();
        log::info!(
            "broker kind=redis node_id={node} prefix={}",
            settings.prefix
        );
        Ok(RedisBroker {
            link: Link {
                node: Rc::from(node),
                keys: Rc::new(Keys {
                    root: format!("{}:", settings.prefix),
                }),
                scripts: Rc::new(Scripts::new()),
                health: Rc::new(Health::default()),
                commands,
                claims: Rc::new(RefCell::new(Claims::default())),
                dirty: Rc::new(Cell::new(false)),
            },
            client,
            control,
            control_inbox: Some(control_inbox),
            beat_in_flight: Rc::new(Cell::new(false)),
            node_ttl: settings.node_ttl,
            idle_ttl: settings.idle_ttl,
            max_connections_per_player: settings.max_connections_per_player.max(1),
        })
    }
}

impl Broker for RedisBroker {
    fn set_sink(&mut self, sink: BrokerSink) {
        let Some(inbox) = self.control_inbox.take() else {
            return;
        };
        let relay = Relay {
            sink,
            link: self.link.clone(),
            last_relayed: HashMap::new(),
        };
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
            log::warn!("redis_unwatch_dropped channel={channel}");
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
        Box::pin(async move {
            let result: RedisResult<(u64, String)> = link
                .scripts
                .publish
                .key(link.keys.position(&channel))
                .key(link.keys.history(&channel))
                .arg(Epoch::generate().as_str())
                .arg(&body)
                .arg(history_size)
                .arg(millis(history_ttl))
                .arg(millis(position_ttl))
                .arg(link.keys.pubsub(&channel))
                .invoke_async(&mut link.commands)
                .await;
            let (offset, epoch) = link.health.note(result)?;
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
            let mut claims = self.link.claims.borrow_mut();
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
                .arg(link.keys.player_nodes(&format!("{channel}#")))
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

    fn admit(&mut self, player: &PlayerId) -> BrokerFuture<bool> {
        let limit = self.max_connections_per_player;
        let player = player.clone();
        let mut link = self.link.clone();
        Box::pin(async move {
            let result: RedisResult<i64> = link
                .scripts
                .admit
                .key(link.keys.connections(&player))
                .key(link.keys.node_players(&link.node))
                .arg(&*link.node)
                .arg(limit)
                .arg(player.as_str())
                .arg(link.keys.node_prefix())
                .invoke_async(&mut link.commands)
                .await;
            // A reply lost after Redis counted would leave one too many.
            let admitted = link.note_write(result)? == 1;
            if admitted {
                *link
                    .claims
                    .borrow_mut()
                    .connections
                    .entry(player)
                    .or_default() += 1;
            }
            Ok(admitted)
        })
    }

    fn release(&mut self, player: &PlayerId) {
        {
            let mut claims = self.link.claims.borrow_mut();
            if let Some(count) = claims.connections.get_mut(player) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    claims.connections.remove(player);
                }
            }
        }
        let player = player.clone();
        let mut link = self.link.clone();
        actix_rt::spawn(async move {
            let result: RedisResult<i64> = link
                .scripts
                .release
                .key(link.keys.connections(&player))
                .key(link.keys.node_players(&link.node))
                .arg(&*link.node)
                .arg(player.as_str())
                .invoke_async(&mut link.commands)
                .await;
            if let Err(err) = link.note_write(result) {
                log::warn!("redis_release_failed player_id={player} error={err}");
            }
        });
    }

    fn is_ready(&self) -> bool {
        self.link.health.is_ready()
    }

    /// The heartbeat that keeps this node counted, a resync when Redis
    /// lost or missed this node's state, and the sweep of dead nodes.
    fn maintain(&mut self) {
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
                .arg(&link.keys.root)
                .invoke_async(&mut link.commands)
                .await;
            link.health.note(swept)?;
            log::info!("redis_node_departed node_id={}", link.node);
            Ok(())
        })
    }

    fn maintenance_interval(&self) -> Duration {
        (self.node_ttl / 3).max(Duration::from_millis(100))
    }
}

/// Relays what the pub/sub connection receives to the broadcaster, in
/// order, filling gaps in a channel's offsets from history first.
struct Relay {
    sink: BrokerSink,
    link: Link,
    /// The last offset relayed per watched channel, with its epoch.
    last_relayed: HashMap<ChannelName, (Epoch, u64)>,
}

impl Relay {
    async fn relay(&mut self, message: Msg, pubsub_prefix: &str) {
        let Some(channel) = message
            .get_channel_name()
            .strip_prefix(pubsub_prefix)
            .and_then(|name| ChannelName::parse(name).ok())
        else {
            return;
        };
        let Ok(text) = std::str::from_utf8(message.get_payload_bytes()) else {
            log::warn!("redis_bad_event channel={channel}");
            return;
        };
        let (kind, rest) = text.split_at(text.len().min(1));
        let player = || PlayerId::parse(rest).ok();
        match kind {
            "p" => match parse_publication(&channel, rest) {
                Some(publication) => self.relay_publication(publication).await,
                None => log::warn!("redis_bad_event channel={channel}"),
            },
            "j" => match player() {
                Some(player) => self.sink.emit(BrokerEvent::Join { channel, player }),
                None => log::warn!("redis_bad_event channel={channel}"),
            },
            "l" => match player() {
                Some(player) => self.sink.emit(BrokerEvent::Leave { channel, player }),
                None => log::warn!("redis_bad_event channel={channel}"),
            },
            _ => log::warn!("redis_bad_event channel={channel}"),
        }
    }

    async fn relay_publication(&mut self, publication: Publication) {
        if let Some((epoch, last)) = self.last_relayed.get(&publication.channel) {
            if *epoch == publication.epoch {
                if publication.offset <= *last {
                    return;
                }
                let first_missing = *last + 1;
                if publication.offset > first_missing {
                    self.fill_gap(&publication, first_missing).await;
                }
            }
        }
        self.last_relayed.insert(
            publication.channel.clone(),
            (publication.epoch.clone(), publication.offset),
        );
        self.sink.emit(BrokerEvent::Publication(publication));
    }

    /// Publications `first_missing..next.offset` were published while
    /// this node was not listening: relays them from history.
    async fn fill_gap(&mut self, next: &Publication, first_missing: u64) {
        let wanted = next.offset - first_missing;
        let link = &mut self.link;
        let result: RedisResult<Vec<String>> = link
            .scripts
            .history
            .key(link.keys.history(&next.channel))
            .arg(first_missing)
            .arg(next.offset - 1)
            .invoke_async(&mut link.commands)
            .await;
        let found = match result {
            Ok(flat) => decode_entries(&next.channel, &next.epoch, &flat),
            Err(_) => Vec::new(),
        };
        if found.len() as u64 != wanted {
            log::warn!(
                "redis_gap_unfilled channel={} missing={}",
                next.channel,
                wanted - found.len() as u64
            );
        }
        for publication in found {
            self.sink.emit(BrokerEvent::Publication(publication));
        }
    }
}

/// `<offset> <epoch> <body>`
fn parse_publication(channel: &ChannelName, text: &str) -> Option<Publication> {
    let (offset, rest) = text.split_once(' ')?;
    let (epoch, body) = rest.split_once(' ')?;
    decode_publication(
        channel,
        offset.parse().ok()?,
        Epoch::from_string(epoch.to_string()),
        body,
    )
}

/// The pub/sub connection's life: connect, subscribe to every watched
/// channel, relay until the connection drops, and start again. Watch orders
/// are answered at once while disconnected, so nothing waits on a
/// connection that is not there; the channel is subscribed on reconnect.
async fn run_pubsub(client: Client, mut orders: mpsc::Receiver<Control>, mut relay: Relay) {
    let health = relay.link.health.clone();
    let keys = relay.link.keys.clone();
    let pubsub_prefix = keys.pubsub_prefix();
    let mut watched: Vec<ChannelName> = Vec::new();
    loop {
        let connected = tokio::time::timeout(CONNECT_TIMEOUT, client.get_async_pubsub()).await;
        if let Ok(Ok(pubsub)) = connected {
            let (mut subscriber, mut messages) = pubsub.split();
            let names: Vec<String> = watched.iter().map(|c| keys.pubsub(c)).collect();
            let resubscribed = names.is_empty()
                || matches!(
                    tokio::time::timeout(RESPONSE_TIMEOUT, subscriber.subscribe(&names)).await,
                    Ok(Ok(()))
                );
            if resubscribed {
                health.pubsub.set(true);
                log::info!("redis_pubsub_up channels={}", watched.len());
                loop {
                    tokio::select! {
                        message = messages.next() => match message {
                            Some(message) => relay.relay(message, &pubsub_prefix).await,
                            None => break,
                        },
                        order = orders.recv() => match order {
                            None => return,
                            Some(Control::Watch(channel, done)) => {
                                let name = keys.pubsub(&channel);
                                watched.push(channel);
                                let answer = tokio::time::timeout(
                                    RESPONSE_TIMEOUT,
                                    subscriber.subscribe(&name),
                                )
                                .await;
                                let ok = matches!(answer, Ok(Ok(())));
                                let _ = done.send(if ok {
                                    Ok(())
                                } else {
                                    Err(BrokerError::Unavailable("subscribing failed".into()))
                                });
                                if !ok {
                                    break;
                                }
                            }
                            Some(Control::Unwatch(channel)) => {
                                forget(&mut watched, &mut relay, &channel);
                                let name = keys.pubsub(&channel);
                                let answer = tokio::time::timeout(
                                    RESPONSE_TIMEOUT,
                                    subscriber.unsubscribe(&name),
                                )
                                .await;
                                if !matches!(answer, Ok(Ok(()))) {
                                    break;
                                }
                            }
                        },
                    }
                }
                health.pubsub.set(false);
                log::warn!("redis_pubsub_down channels={}", watched.len());
            }
        }
        let pause = tokio::time::sleep(RECONNECT_DELAY);
        tokio::pin!(pause);
        loop {
            tokio::select! {
                _ = &mut pause => break,
                order = orders.recv() => match order {
                    None => return,
                    Some(Control::Watch(channel, done)) => {
                        watched.push(channel);
                        let _ = done.send(Err(BrokerError::Unavailable(
                            "the pub/sub connection is down".into(),
                        )));
                    }
                    Some(Control::Unwatch(channel)) => forget(&mut watched, &mut relay, &channel),
                },
            }
        }
    }
}

fn forget(watched: &mut Vec<ChannelName>, relay: &mut Relay, channel: &ChannelName) {
    watched.retain(|c| c != channel);
    relay.last_relayed.remove(channel);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel() -> ChannelName {
        ChannelName::parse("room:lobby").unwrap()
    }

    #[test]
    fn a_publication_survives_the_trip_through_redis_text() {
        let data = Payload::from_value(&serde_json::json!({"text": "hi", "n": [1, 2]})).unwrap();
        let publisher = Publisher::Player(PlayerId::parse("alice").unwrap());
        let timestamp = Timestamp::now();
        let body = encode_body(&publisher, &timestamp, &data);
        let text = format!("7 abcd {body}");
        let publication = parse_publication(&channel(), &text).unwrap();
        assert_eq!(publication.offset, 7);
        assert_eq!(publication.epoch.as_str(), "abcd");
        assert_eq!(publication.publisher, publisher);
        assert_eq!(publication.data.as_raw().get(), data.as_raw().get());
        assert_eq!(
            publication.timestamp.0.timestamp_millis(),
            timestamp.0.timestamp_millis()
        );
    }

    #[test]
    fn server_publications_carry_no_player() {
        let data = Payload::from_value(&serde_json::json!(1)).unwrap();
        let body = encode_body(&Publisher::Server, &Timestamp::now(), &data);
        let publication = parse_publication(&channel(), &format!("1 e {body}")).unwrap();
        assert_eq!(publication.publisher, Publisher::Server);
    }

    #[test]
    fn malformed_events_are_refused() {
        for text in ["", "x", "1", "1 e", "1 e {", "one e {\"t\":1,\"d\":1}"] {
            assert!(parse_publication(&channel(), text).is_none(), "{text}");
        }
    }

    #[test]
    fn history_entries_decode_in_order_and_skip_garbage() {
        let data = Payload::from_value(&serde_json::json!("x")).unwrap();
        let body = encode_body(&Publisher::Server, &Timestamp::now(), &data);
        let flat = vec![
            "3-0".to_string(),
            body.clone(),
            "bad".to_string(),
            body.clone(),
            "4-0".to_string(),
            body,
        ];
        let epoch = Epoch::from_string("e".into());
        let offsets: Vec<u64> = decode_entries(&channel(), &epoch, &flat)
            .iter()
            .map(|p| p.offset)
            .collect();
        assert_eq!(offsets, vec![3, 4]);
    }
}
