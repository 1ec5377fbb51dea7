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

pub struct RedisBroker {
    node: Rc<str>,
    keys: Rc<Keys>,
    client: Client,
    commands: ConnectionManager,
    scripts: Rc<Scripts>,
    health: Rc<Health>,
    claims: Rc<RefCell<Claims>>,
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
            node: Rc::from(node),
            keys: Rc::new(Keys {
                root: format!("{}:", settings.prefix),
            }),
            client,
            commands,
            scripts: Rc::new(Scripts::new()),
            health: Rc::new(Health::default()),
            claims: Rc::new(RefCell::new(Claims::default())),
            control,
            control_inbox: Some(control_inbox),
            beat_in_flight: Rc::new(Cell::new(false)),
            node_ttl: settings.node_ttl,
            idle_ttl: settings.idle_ttl,
            max_connections_per_player: settings.max_connections_per_player.max(1),
        })
    }

    /// Writes this node's presence entry; the script announces a join or a
    /// leave when the player appears or disappears cluster-wide.
    fn presence_write(
        &self,
        channel: &ChannelName,
        player: &PlayerId,
        name: Option<&str>,
        connections: u32,
    ) -> impl std::future::Future<Output = Result<(), BrokerError>> + 'static {
        let entry = Keys::presence_entry(channel, player);
        let keys = [
            self.keys.members(channel),
            self.keys.player_nodes(&entry),
            self.keys.node_presence(&self.node),
        ];
        let args = [
            self.node.to_string(),
            player.to_string(),
            name.unwrap_or_default().to_string(),
            connections.to_string(),
            self.keys.node_prefix(),
            self.keys.pubsub(channel),
            entry,
        ];
        let scripts = self.scripts.clone();
        let health = self.health.clone();
        let mut commands = self.commands.clone();
        async move {
            let mut call = scripts.presence_set.prepare_invoke();
            for key in &keys {
                call.key(key);
            }
            for arg in &args {
                call.arg(arg);
            }
            let result: RedisResult<i64> = call.invoke_async(&mut commands).await;
            health.note(result).map(|_| ())
        }
    }

    /// Redis has lost this node's state: writes back every presence entry
    /// and connection count the node holds.
    fn restore(&self) -> impl std::future::Future<Output = ()> + 'static {
        let (presence, connections) = {
            let claims = self.claims.borrow();
            let presence: Vec<_> = claims
                .presence
                .iter()
                .map(|((channel, player), (name, count))| {
                    self.presence_write(channel, player, name.as_deref(), *count)
                })
                .collect();
            let connections: Vec<_> = claims
                .connections
                .iter()
                .map(|(player, count)| (player.clone(), *count))
                .collect();
            (presence, connections)
        };
        let keys = self.keys.clone();
        let node = self.node.clone();
        let scripts = self.scripts.clone();
        let mut commands = self.commands.clone();
        async move {
            let entries = presence.len();
            for write in presence {
                if let Err(err) = write.await {
                    log::warn!("redis_restore_failed error={err}");
                    return;
                }
            }
            for (player, count) in &connections {
                let result: RedisResult<i64> = scripts
                    .restore
                    .key(keys.connections(player))
                    .key(keys.node_players(&node))
                    .arg(&*node)
                    .arg(player.as_str())
                    .arg(count)
                    .invoke_async(&mut commands)
                    .await;
                if let Err(err) = result {
                    log::warn!("redis_restore_failed error={err}");
                    return;
                }
            }
            log::info!(
                "redis_state_restored presence_entries={entries} players={}",
                connections.len()
            );
        }
    }
}

impl Broker for RedisBroker {
    fn set_sink(&mut self, sink: BrokerSink) {
        let Some(inbox) = self.control_inbox.take() else {
            return;
        };
        let relay = Relay {
            sink,
            keys: self.keys.clone(),
            scripts: self.scripts.clone(),
            commands: self.commands.clone(),
            last_relayed: HashMap::new(),
        };
        actix_rt::spawn(run_pubsub(
            self.client.clone(),
            inbox,
            relay,
            self.health.clone(),
        ));
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
        let position_key = self.keys.position(channel);
        let history_key = self.keys.history(channel);
        let pubsub = self.keys.pubsub(channel);
        let channel = channel.clone();
        let scripts = self.scripts.clone();
        let health = self.health.clone();
        let mut commands = self.commands.clone();
        Box::pin(async move {
            let result: RedisResult<(u64, String)> = scripts
                .publish
                .key(position_key)
                .key(history_key)
                .arg(Epoch::generate().as_str())
                .arg(&body)
                .arg(history_size)
                .arg(millis(history_ttl))
                .arg(millis(position_ttl))
                .arg(pubsub)
                .invoke_async(&mut commands)
                .await;
            let (offset, epoch) = health.note(result)?;
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
        let position_key = self.keys.position(channel);
        let history_key = self.keys.history(channel);
        let since = since.cloned();
        let channel = channel.clone();
        let scripts = self.scripts.clone();
        let health = self.health.clone();
        let mut commands = self.commands.clone();
        Box::pin(async move {
            let (since_offset, since_epoch) = match &since {
                Some(since) => (since.offset.to_string(), since.epoch.clone()),
                None => (String::new(), String::new()),
            };
            let result: RedisResult<(String, u64, Vec<String>)> = scripts
                .recover
                .key(position_key)
                .key(history_key)
                .arg(Epoch::generate().as_str())
                .arg(millis(position_ttl))
                .arg(since_offset)
                .arg(since_epoch)
                .invoke_async(&mut commands)
                .await;
            let (epoch, offset, entries) = health.note(result)?;
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
        {
            let mut claims = self.claims.borrow_mut();
            let key = (channel.clone(), player.clone());
            if connections == 0 {
                claims.presence.remove(&key);
            } else {
                claims
                    .presence
                    .insert(key, (name.map(str::to_string), connections));
            }
        }
        Box::pin(self.presence_write(channel, player, name, connections))
    }

    fn presence(&mut self, channel: &ChannelName) -> BrokerFuture<Vec<PresenceEntry>> {
        let members_key = self.keys.members(channel);
        let nodes_prefix = self.keys.player_nodes(&format!("{channel}#"));
        let node_prefix = self.keys.node_prefix();
        let scripts = self.scripts.clone();
        let health = self.health.clone();
        let mut commands = self.commands.clone();
        Box::pin(async move {
            let result: RedisResult<Vec<String>> = scripts
                .presence_list
                .key(members_key)
                .arg(nodes_prefix)
                .arg(node_prefix)
                .invoke_async(&mut commands)
                .await;
            let flat = health.note(result)?;
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
        let connections_key = self.keys.connections(player);
        let players_key = self.keys.node_players(&self.node);
        let node = self.node.clone();
        let limit = self.max_connections_per_player;
        let node_prefix = self.keys.node_prefix();
        let player = player.clone();
        let claims = self.claims.clone();
        let scripts = self.scripts.clone();
        let health = self.health.clone();
        let mut commands = self.commands.clone();
        Box::pin(async move {
            let result: RedisResult<i64> = scripts
                .admit
                .key(connections_key)
                .key(players_key)
                .arg(&*node)
                .arg(limit)
                .arg(player.as_str())
                .arg(node_prefix)
                .invoke_async(&mut commands)
                .await;
            let admitted = health.note(result)? == 1;
            if admitted {
                *claims.borrow_mut().connections.entry(player).or_default() += 1;
            }
            Ok(admitted)
        })
    }

    fn release(&mut self, player: &PlayerId) {
        {
            let mut claims = self.claims.borrow_mut();
            if let Some(count) = claims.connections.get_mut(player) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    claims.connections.remove(player);
                }
            }
        }
        let connections_key = self.keys.connections(player);
        let players_key = self.keys.node_players(&self.node);
        let node = self.node.clone();
        let player = player.clone();
        let scripts = self.scripts.clone();
        let health = self.health.clone();
        let mut commands = self.commands.clone();
        actix_rt::spawn(async move {
            let result: RedisResult<i64> = scripts
                .release
                .key(connections_key)
                .key(players_key)
                .arg(&*node)
                .arg(player.as_str())
                .invoke_async(&mut commands)
                .await;
            if let Err(err) = health.note(result) {
                log::warn!("redis_release_failed player_id={player} error={err}");
            }
        });
    }

    fn is_ready(&self) -> bool {
        self.health.is_ready()
    }

    /// The heartbeat, then the sweep of dead nodes. When the heartbeat
    /// finds this node unknown to Redis after it had registered, Redis
    /// lost its state (a restart, or the node was swept while stalled),
    /// and the node writes its presence and counts back.
    fn maintain(&mut self) {
        if self.beat_in_flight.replace(true) {
            return;
        }
        let heartbeat_key = self.keys.heartbeat(&self.node);
        let nodes_key = self.keys.nodes();
        let root = self.keys.root.clone();
        let node = self.node.clone();
        let ttl = millis(self.node_ttl);
        let restore = self.restore();
        let in_flight = self.beat_in_flight.clone();
        let scripts = self.scripts.clone();
        let health = self.health.clone();
        let mut commands = self.commands.clone();
        actix_rt::spawn(async move {
            let beat: RedisResult<i64> = scripts
                .heartbeat
                .key(&heartbeat_key)
                .key(&nodes_key)
                .arg(&*node)
                .arg(ttl)
                .invoke_async(&mut commands)
                .await;
            match health.note(beat) {
                Ok(added) => {
                    if added == 1 && health.registered.get() {
                        log::warn!("redis_state_lost node_id={node}");
                        restore.await;
                    }
                    health.registered.set(true);
                    let swept: RedisResult<i64> = scripts
                        .sweep
                        .key(&nodes_key)
                        .arg(&*node)
                        .arg(&root)
                        .invoke_async(&mut commands)
                        .await;
                    match swept {
                        Ok(0) => {}
                        Ok(count) => log::info!("redis_nodes_swept count={count}"),
                        Err(err) => log::warn!("redis_sweep_failed error={err}"),
                    }
                }
                Err(err) => log::debug!("redis_heartbeat_failed error={err}"),
            }
            in_flight.set(false);
        });
    }

    /// Stops beating and sweeps itself as a dead node would be swept:
    /// leaves for its players go out now, and its counts are gone.
    fn depart(&mut self) -> BrokerFuture<()> {
        let heartbeat_key = self.keys.heartbeat(&self.node);
        let nodes_key = self.keys.nodes();
        let root = self.keys.root.clone();
        let node = self.node.clone();
        let scripts = self.scripts.clone();
        let health = self.health.clone();
        let mut commands = self.commands.clone();
        // The heartbeat would bring the node back before the sweep.
        self.beat_in_flight.set(true);
        Box::pin(async move {
            let stopped: RedisResult<i64> = redis::cmd("DEL")
                .arg(&heartbeat_key)
                .query_async(&mut commands)
                .await;
            health.note(stopped)?;
            // No node is called "": this node is swept like any other.
            let swept: RedisResult<i64> = scripts
                .sweep
                .key(&nodes_key)
                .arg("")
                .arg(&root)
                .invoke_async(&mut commands)
                .await;
            health.note(swept)?;
            log::info!("redis_node_departed node_id={node}");
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
    keys: Rc<Keys>,
    scripts: Rc<Scripts>,
    commands: ConnectionManager,
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
        let result: RedisResult<Vec<String>> = self
            .scripts
            .history
            .key(self.keys.history(&next.channel))
            .arg(first_missing)
            .arg(next.offset - 1)
            .invoke_async(&mut self.commands)
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
async fn run_pubsub(
    client: Client,
    mut orders: mpsc::Receiver<Control>,
    mut relay: Relay,
    health: Rc<Health>,
) {
    let pubsub_prefix = relay.keys.pubsub_prefix();
    let mut watched: Vec<ChannelName> = Vec::new();
    loop {
        let connected = tokio::time::timeout(CONNECT_TIMEOUT, client.get_async_pubsub()).await;
        if let Ok(Ok(pubsub)) = connected {
            let (mut subscriber, mut messages) = pubsub.split();
            let names: Vec<String> = watched.iter().map(|c| relay.keys.pubsub(c)).collect();
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
                                let name = relay.keys.pubsub(&channel);
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
                                let name = relay.keys.pubsub(&channel);
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
