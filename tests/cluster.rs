//! Cluster mode (docs/protocol.md, section 9): several real Hearth nodes sharing
//! the machine's Redis at 127.0.0.1:6379 (or HEARTH_TEST_REDIS_URL), each
//! test under a key prefix of its own that is deleted afterwards. The outage
//! test runs a Redis server of its own on a free port, so it can stop and
//! restart it. Without Redis, or `redis-server`, a test skips (see
//! `hearth_actors::test_services`).

mod common;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::fake_model::FakeModel;
use common::sessions::{fake_tokens, new_session, next_frame, ok, read_reply, send};
use common::{
    api_publish, http_get, publication, publish, spawn_hearth, subscribe, test_config, token_with,
    Client, TestServer, FRAME_TIMEOUT,
};
use hearth::config::Config;
use hearth_actors::support::test_services::require_service;
use serde_json::{json, Value};

const KEY: &str = "cluster-test-key-0123456789abcdef0123456789";
/// Short, so that the test of a killed node is quick.
const NODE_TTL_S: u64 = 2;

/// A key prefix of one test's own; deletes every key under it when dropped.
struct Namespace {
    prefix: String,
    url: String,
}

impl Namespace {
    fn new(url: &str) -> Namespace {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        Namespace {
            prefix: format!("hearth-test-{}-{nanos}", std::process::id()),
            url: url.to_string(),
        }
    }

    fn redis(&self) -> redis::Connection {
        redis::Client::open(self.url.as_str())
            .and_then(|client| client.get_connection_with_timeout(FRAME_TIMEOUT))
            .expect("connect to redis")
    }

    /// How many Redis connections listen to the Hearth channel.
    fn listeners(&self, channel: &str) -> i64 {
        let name = format!("{}:channel:{channel}", self.prefix);
        let counts: Vec<(String, i64)> = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(&name)
            .query(&mut self.redis())
            .expect("PUBSUB NUMSUB");
        counts.first().map_or(0, |(_, count)| *count)
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let Ok(client) = redis::Client::open(self.url.as_str()) else {
            return;
        };
        let Ok(mut redis) = client.get_connection_with_timeout(FRAME_TIMEOUT) else {
            return;
        };
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}:*", self.prefix))
            .query(&mut redis)
            .unwrap_or_default();
        if !keys.is_empty() {
            let _: redis::RedisResult<()> = redis::cmd("DEL").arg(keys).query(&mut redis);
        }
    }
}

fn cluster_config(namespace: &Namespace) -> Config {
    let dir = std::env::temp_dir().join(format!("{}-progress.db", namespace.prefix));
    let mut config = test_config(dir);
    config.api.key = KEY.into();
    config.broker.kind = "redis".into();
    config.broker.url = namespace.url.clone();
    config.broker.prefix = namespace.prefix.clone();
    config.broker.node_ttl_s = NODE_TTL_S;
    config
}

/// A node of the cluster, ready (its broker reached Redis).
fn node(namespace: &Namespace, adjust: impl FnOnce(&mut Config)) -> TestServer {
    let mut config = cluster_config(namespace);
    adjust(&mut config);
    let dir = tempfile::tempdir().expect("temp dir");
    config.progress.path = dir.path().join("progress.db");
    let server = TestServer::start_with(config);
    wait_for_readiness(&server.http_url("/readyz"), 200);
    server
}

fn nodes(namespace: &Namespace, count: usize) -> Vec<TestServer> {
    (0..count).map(|_| node(namespace, |_| {})).collect()
}

/// Polls `url` until it answers `status`; panics after the timeout.
fn wait_for_readiness(url: &str, status: u16) {
    wait_until(&format!("{url} answers {status}"), || {
        http_get(url, None).0 == status
    });
}

fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + FRAME_TIMEOUT;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn presence(server: &TestServer, channel: &str) -> Value {
    let (status, body) = server.get(&format!("/api/channels/{channel}/presence"), Some(KEY));
    assert_eq!(status, 200, "{body}");
    body
}

fn presence_players(body: &Value) -> Vec<(String, u64)> {
    let mut players: Vec<(String, u64)> = body["players"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            (
                p["player_id"].as_str().unwrap_or_default().to_string(),
                p["connections"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    players.sort();
    players
}

/// The next frame must be a presence event of `kind` for `player`.
fn presence_event(client: &mut Client, kind: &str, channel: &str, player: &str) {
    let event = client.recv();
    assert_eq!(event["event"], kind, "{event}");
    assert_eq!(event["channel"], channel, "{event}");
    assert_eq!(event["data"]["player_id"], player, "{event}");
}

/// A publication from a client on one node reaches subscribers on the two
/// others, every one, in offset order, with the same epoch.
#[test]
fn publications_reach_every_node_in_order() {
    let url = require_service!(Redis);
    let namespace = Namespace::new(&url);
    let cluster = nodes(&namespace, 3);
    let mut publisher = cluster[0].connect("ann");
    let mut readers: Vec<Client> = cluster[1..]
        .iter()
        .enumerate()
        .map(|(i, node)| {
            let mut reader = node.connect(&format!("reader{i}"));
            let joined = subscribe(&mut reader, "s", &["news:today"]);
            assert_eq!(joined["type"], "response", "{joined}");
            reader
        })
        .collect();
    subscribe(&mut publisher, "s", &["room:cluster"]);
    for reader in &mut readers {
        subscribe(reader, "s2", &["room:cluster"]);
    }

    const COUNT: u64 = 50;
    for n in 1..=COUNT {
        publisher.send_json(json!({"type": "publish", "id": format!("p{n}"),
                                   "channel": "room:cluster", "data": {"n": n}}));
    }
    // The publisher's replies come in request order, its own publications
    // (back through Redis) in offset order; the two interleave.
    let (mut replies, mut own) = (Vec::new(), Vec::new());
    while replies.len() < COUNT as usize || own.len() < COUNT as usize {
        let frame = publisher.recv();
        match (frame["type"].as_str(), frame["event"].as_str()) {
            (Some("response"), _) => replies.push(frame["result"]["offset"].clone()),
            (Some("event"), Some("publication")) => own.push(frame["offset"].clone()),
            (Some("event"), Some("join")) => {}
            _ => panic!("unexpected {frame}"),
        }
    }
    let expected: Vec<Value> = (1..=COUNT).map(|n| json!(n)).collect();
    assert_eq!(replies, expected);
    assert_eq!(own, expected);
    let mut epoch = Value::Null;
    for reader in &mut readers {
        for n in 1..=COUNT {
            let event = reader.next_publication("room:cluster");
            assert_eq!(event["offset"], n, "{event}");
            assert_eq!(event["data"], json!({"n": n}));
            assert_eq!(event["publisher"], "ann");
            if epoch.is_null() {
                epoch = event["epoch"].clone();
            }
            assert_eq!(event["epoch"], epoch, "one epoch across nodes");
        }
    }
    // A server-side publish on a node with no subscriber of its own.
    api_publish(&cluster[0], KEY, "news:today", json!("headline"));
    for reader in &mut readers {
        let event = reader.next_publication("news:today");
        assert_eq!(event["data"], "headline");
    }
}

/// `user:<player>` reaches the player's connections on every node, and the
/// per-player connection limit counts connections on all nodes together.
#[test]
fn broadcast_to_a_player_and_the_connection_limit_span_nodes() {
    let url = require_service!(Redis);
    let namespace = Namespace::new(&url);
    let cluster: Vec<TestServer> = (0..3)
        .map(|_| node(&namespace, |c| c.limits.max_connections_per_player = 2))
        .collect();
    let mut on_a = cluster[0].connect("pat");
    let mut on_b = cluster[1].connect("pat");
    api_publish(&cluster[2], KEY, "user:pat", json!({"notice": "hello"}));
    for client in [&mut on_a, &mut on_b] {
        let event = publication(client, "user:pat");
        assert_eq!(event["data"]["notice"], "hello");
    }

    // A third connection, on the node that has none of pat's, is one too many.
    let url = cluster[2].ws_url(&format!("?token={}", cluster[2].token("pat")));
    let mut third = Client::open(&url, &[]);
    let (code, reason) = third.expect_close();
    assert_eq!((code, reason.as_str()), (1008, "too many connections"));

    // When one closes, its place is free on any node.
    on_a.close();
    wait_until("pat's closed connection is released", || {
        let mut candidate = Client::open(&url, &[]);
        match candidate.next_frame() {
            common::Frame::Json(welcome) => {
                assert_eq!(welcome["metadata"]["event"], "connected", "{welcome}");
                true
            }
            _ => false,
        }
    });
}

/// Presence lists the players of every node; join and leave fire once per
/// player however many nodes and connections the player has.
#[test]
fn presence_spans_nodes_with_one_join_and_leave_per_player() {
    let url = require_service!(Redis);
    let namespace = Namespace::new(&url);
    let cluster = nodes(&namespace, 3);
    let mut watcher = cluster[2].connect("watcher");
    subscribe(&mut watcher, "s", &["room:circle"]);
    presence_event(&mut watcher, "join", "room:circle", "watcher");

    let mut alice_a = cluster[0].connect("alice");
    subscribe(&mut alice_a, "s", &["room:circle"]);
    presence_event(&mut watcher, "join", "room:circle", "alice");
    let mut bob_b = cluster[1].connect("bob");
    subscribe(&mut bob_b, "s", &["room:circle"]);
    presence_event(&mut watcher, "join", "room:circle", "bob");
    // Alice again, on another node: no second join.
    let mut alice_b = cluster[1].connect("alice");
    subscribe(&mut alice_b, "s", &["room:circle"]);

    for server in &cluster {
        let players = presence_players(&presence(server, "room:circle"));
        assert_eq!(
            players,
            vec![
                ("alice".to_string(), 2),
                ("bob".to_string(), 1),
                ("watcher".to_string(), 1)
            ],
            "as seen from {}",
            server.addr
        );
    }
    watcher.expect_quiet();

    // Alice leaves one node: still present, no leave.
    alice_a.close();
    wait_until("alice has one connection left", || {
        presence_players(&presence(&cluster[2], "room:circle")).contains(&("alice".to_string(), 1))
    });
    watcher.expect_quiet();
    // And the other: one leave.
    alice_b.close();
    presence_event(&mut watcher, "leave", "room:circle", "alice");
    watcher.expect_quiet();
    drop(bob_b);
}

/// A client that reconnects to another node and recovers gets exactly the
/// publications it missed; a wrong epoch gets `recovered: false`.
/// The history budgets hold for the whole cluster: the scenario the
/// embedded broker passes in `hardening.rs`, counted in Redis, and a
/// second node refuses what the first one counted.
#[test]
fn one_player_cannot_fill_redis() {
    let url = require_service!(Redis);
    let namespace = Namespace::new(&url);
    let first = node(&namespace, common::budgets::tight);
    common::budgets::one_player_is_held_to_them(&first);
    let second = node(&namespace, common::budgets::tight);
    let mut hoarder = second.connect("hoarder");
    common::subscribe(&mut hoarder, "s", &["room:fresh0"]);
    // Join events may come first: wait for the answer itself.
    let pad = "x".repeat(30 * 1024);
    let publish = json!({"type": "publish", "id": "p", "channel": "room:fresh0", "data": pad});
    hoarder.send_json(publish.clone());
    let answer = hoarder.answer_to("p");
    assert_eq!(answer["code"], "limit_exceeded", "{answer}");
    let mut other = second.connect("other");
    common::subscribe(&mut other, "s", &["room:fresh0"]);
    other.send_json(publish);
    let answer = other.answer_to("p");
    assert_eq!(answer["type"], "response", "{answer}");
}

#[test]
fn recovery_is_exact_on_another_node() {
    let url = require_service!(Redis);
    let namespace = Namespace::new(&url);
    let cluster = nodes(&namespace, 2);
    let mut reader = cluster[0].connect("reader");
    subscribe(&mut reader, "s", &["news:feed"]);
    for n in 1..=3 {
        api_publish(&cluster[1], KEY, "news:feed", json!(n));
    }
    let mut last = Value::Null;
    for _ in 1..=3 {
        last = publication(&mut reader, "news:feed");
    }
    let (offset, epoch) = (last["offset"].clone(), last["epoch"].clone());
    assert_eq!(offset, 3);
    reader.close();
    for n in 4..=7 {
        api_publish(&cluster[0], KEY, "news:feed", json!(n));
    }

    let mut back = cluster[1].connect("reader");
    let reply = back.request(
        "r",
        json!({"type": "subscribe", "channels": ["news:feed"],
               "recover": {"news:feed": {"offset": offset, "epoch": epoch}}}),
    );
    let position = &reply["result"]["channels"]["news:feed"];
    assert_eq!(position["recovered"], true, "{reply}");
    assert_eq!(position["missed"], 4);
    assert_eq!(position["offset"], 7);
    for n in 4..=7 {
        let event = publication(&mut back, "news:feed");
        assert_eq!(event["offset"], n);
        assert_eq!(event["data"], n);
    }
    back.expect_quiet();

    let mut stranger = cluster[0].connect("stranger");
    let reply = stranger.request(
        "r",
        json!({"type": "subscribe", "channels": ["news:feed"],
               "recover": {"news:feed": {"offset": 1, "epoch": "not-the-epoch"}}}),
    );
    assert_eq!(
        reply["result"]["channels"]["news:feed"]["recovered"], false,
        "{reply}"
    );
    stranger.expect_quiet();
}

/// A node subscribes to a channel in Redis once, however many of its
/// connections are in it, and not at all when none is.
#[test]
fn one_redis_subscription_per_node_per_channel() {
    let url = require_service!(Redis);
    let namespace = Namespace::new(&url);
    let cluster = nodes(&namespace, 2);
    assert_eq!(namespace.listeners("room:quiet"), 0);
    let mut clients: Vec<Client> = (0..3)
        .map(|i| {
            let mut client = cluster[0].connect(&format!("member{i}"));
            subscribe(&mut client, "s", &["room:quiet"]);
            client
        })
        .collect();
    assert_eq!(namespace.listeners("room:quiet"), 1);
    let mut other = cluster[1].connect("elsewhere");
    subscribe(&mut other, "s", &["room:quiet"]);
    assert_eq!(namespace.listeners("room:quiet"), 2);
    for client in clients.drain(..) {
        client.close();
    }
    wait_until("the first node stops listening", || {
        namespace.listeners("room:quiet") == 1
    });
    other.close();
    wait_until("no node listens", || namespace.listeners("room:quiet") == 0);
}

/// Subscribes are answered in the order a connection sent them, even when a
/// big one (many channels, many round trips to Redis) is followed by small
/// ones: a connection has one subscribe at the broadcaster at a time.
#[test]
fn subscribes_are_answered_in_request_order() {
    let url = require_service!(Redis);
    let namespace = Namespace::new(&url);
    let server = node(&namespace, |_| {});
    let mut client = server.connect("orderly");
    // Within the 128 subscriptions a connection may hold.
    let big: Vec<String> = (0..30).map(|n| format!("news:big{n}")).collect();
    for round in 0..4 {
        client.send_json(json!({"type": "subscribe", "id": format!("big{round}"),
            "channels": big.iter().map(|c| format!("{c}-{round}")).collect::<Vec<_>>()}));
        client.send_json(json!({"type": "subscribe", "id": format!("small{round}"),
            "channels": [format!("news:small{round}")]}));
    }
    let mut answered = Vec::new();
    while answered.len() < 8 {
        let frame = client.recv();
        if let Some(id) = frame["reply_to"].as_str() {
            assert_eq!(frame["type"], "response", "{frame}");
            answered.push(id.to_string());
        }
    }
    let expected: Vec<String> = (0..4)
        .flat_map(|round| [format!("big{round}"), format!("small{round}")])
        .collect();
    assert_eq!(answered, expected);
}

/// A channel only subscribed to, never published to, keeps its position in
/// Redis for a minute, not for the idle hour: cycling through new names
/// cannot fill Redis. The first publication gives it the full time.
#[test]
fn a_position_nobody_published_to_expires_soon() {
    let url = require_service!(Redis);
    let namespace = Namespace::new(&url);
    let server = node(&namespace, |_| {});
    let mut client = server.connect("browser");
    subscribe(&mut client, "s", &["news:quiet"]);
    let key = format!("{}:stream:news:quiet", namespace.prefix);
    let ttl = |redis: &mut redis::Connection| -> i64 {
        redis::cmd("PTTL").arg(&key).query(redis).expect("PTTL")
    };
    let mut redis = namespace.redis();
    let unpublished = ttl(&mut redis);
    assert!((1..=60_000).contains(&unpublished), "{unpublished} ms");
    api_publish(&server, KEY, "news:quiet", json!("first"));
    let published = ttl(&mut redis);
    assert!(published > 600_000, "{published} ms");
}

/// Whatever another writer puts on a Hearth pub/sub channel (here, events
/// that start with a multi-byte character) is dropped; the node's relay
/// goes on, and it stays ready.
#[test]
fn odd_events_on_the_pubsub_channel_do_not_stop_the_relay() {
    let url = require_service!(Redis);
    let namespace = Namespace::new(&url);
    let server = node(&namespace, |_| {});
    let mut reader = server.connect("reader");
    subscribe(&mut reader, "s", &["news:odd"]);
    assert_eq!(namespace.listeners("news:odd"), 1);
    let channel = format!("{}:channel:news:odd", namespace.prefix);
    for payload in ["\u{e9}x", "\u{20ac}", "", "zzz"] {
        let _: i64 = redis::cmd("PUBLISH")
            .arg(&channel)
            .arg(payload)
            .query(&mut namespace.redis())
            .expect("PUBLISH");
    }
    api_publish(&server, KEY, "news:odd", json!("after"));
    let event = reader.next_publication("news:odd");
    assert_eq!(event["data"], "after");
    wait_for_readiness(&server.http_url("/readyz"), 200);
}

/// A node killed without a goodbye: its players leave presence, with a
/// leave event, once its heartbeat has expired.
#[test]
fn a_killed_nodes_players_leave_presence_within_the_expiry() {
    let url = require_service!(Redis);
    let namespace = Namespace::new(&url);
    let survivor = node(&namespace, |_| {});
    let mut watcher = survivor.connect("watcher");
    subscribe(&mut watcher, "s", &["room:vigil"]);
    presence_event(&mut watcher, "join", "room:vigil", "watcher");

    let (mut doomed, addr, _dir) = spawn_node(&namespace, NODE_TTL_S);
    let mut ghost = connect_to(&addr, "ghost");
    subscribe(&mut ghost, "s", &["room:vigil"]);
    presence_event(&mut watcher, "join", "room:vigil", "ghost");
    assert!(
        presence_players(&presence(&survivor, "room:vigil")).contains(&("ghost".to_string(), 1))
    );

    doomed.0.kill().expect("kill the node");
    let killed_at = Instant::now();
    let _ = doomed.0.wait();
    presence_event(&mut watcher, "leave", "room:vigil", "ghost");
    let lag = killed_at.elapsed();
    // The expiry plus one maintenance round of the survivor.
    let bound = Duration::from_secs(NODE_TTL_S) + Duration::from_secs(NODE_TTL_S);
    assert!(lag <= bound, "leave after {lag:?}, bound {bound:?}");
    assert_eq!(
        presence_players(&presence(&survivor, "room:vigil")),
        vec![("watcher".to_string(), 1)]
    );
}

/// A node in a process of its own (the real binary), ready, with its
/// directory.
fn spawn_node(namespace: &Namespace, node_ttl_s: u64) -> (Spawned, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let config_path = dir.path().join("config.toml");
    std::fs::write(
        &config_path,
        format!(
            "[server]\nworkers = 1\n\n[progress]\npath = {:?}\n\n[broker]\nkind = \"redis\"\nurl = {:?}\nprefix = {:?}\nnode_ttl_s = {node_ttl_s}\n",
            dir.path().join("progress.db").display().to_string(),
            namespace.url,
            namespace.prefix,
        ),
    )
    .expect("write config");
    let (child, addr) = spawn_hearth(&config_path, &[]);
    let node = Spawned(child);
    wait_for_readiness(&format!("http://{addr}/readyz"), 200);
    (node, addr, dir)
}

fn connect_to(addr: &str, player: &str) -> Client {
    let token = token_with(json!({"sub": player, "exp": common::now() + 3600}));
    let mut client = Client::open(&format!("ws://{addr}/ws/chat?token={token}"), &[]);
    assert_eq!(client.recv()["metadata"]["event"], "connected");
    client
}

/// A node in a process of its own, killed when dropped if the test has not
/// stopped it already.
struct Spawned(Child);

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A node stopped with SIGTERM takes itself out of the cluster at once: its
/// players leave, and its heartbeat and counts are gone, long before its
/// expiry.
#[test]
fn a_node_stopped_gracefully_leaves_the_cluster_at_once() {
    let url = require_service!(Redis);
    let namespace = Namespace::new(&url);
    let survivor = node(&namespace, |_| {});
    let mut watcher = survivor.connect("watcher");
    subscribe(&mut watcher, "s", &["room:farewell"]);
    presence_event(&mut watcher, "join", "room:farewell", "watcher");
    // An expiry far beyond the test's timeouts: only a goodbye can pass.
    let (mut leaving, addr, _dir) = spawn_node(&namespace, 600);
    let mut guest = connect_to(&addr, "guest");
    subscribe(&mut guest, "s", &["room:farewell"]);
    presence_event(&mut guest, "join", "room:farewell", "guest");
    presence_event(&mut watcher, "join", "room:farewell", "guest");
    let nodes_key = format!("{}:nodes", namespace.prefix);
    let members = |redis: &mut redis::Connection| -> i64 {
        redis::cmd("SCARD")
            .arg(&nodes_key)
            .query(redis)
            .expect("SCARD")
    };
    assert_eq!(members(&mut namespace.redis()), 2);

    let status = Command::new("kill")
        .args(["-TERM", &leaving.0.id().to_string()])
        .status()
        .expect("send SIGTERM");
    assert!(status.success());
    let (code, _) = guest.expect_close();
    assert_eq!(code, 1001);
    presence_event(&mut watcher, "leave", "room:farewell", "guest");
    let exit = leaving.0.wait().expect("wait for the node");
    assert!(exit.success(), "{exit}");
    assert_eq!(
        members(&mut namespace.redis()),
        1,
        "only the survivor is left"
    );
    let connection_counts: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}:conns:guest", namespace.prefix))
        .query(&mut namespace.redis())
        .expect("KEYS");
    assert!(connection_counts.is_empty(), "{connection_counts:?}");
}

/// When a node finds Redis has forgotten it (a restart, or it was swept
/// while stalled), it makes Redis hold exactly its own state again: what it
/// still has is written back, what it no longer has is removed, with the
/// leave that was owed.
#[test]
fn a_node_redis_forgot_writes_back_exactly_its_state() {
    let url = require_service!(Redis);
    let namespace = Namespace::new(&url);
    let server = node(&namespace, |_| {});
    let mut member = server.connect("member");
    subscribe(&mut member, "s", &["room:echo"]);
    presence_event(&mut member, "join", "room:echo", "member");
    let mut redis = namespace.redis();
    let p = &namespace.prefix;
    let nodes: Vec<String> = redis::cmd("SMEMBERS")
        .arg(format!("{p}:nodes"))
        .query(&mut redis)
        .expect("SMEMBERS");
    assert_eq!(nodes.len(), 1);
    let id = &nodes[0];
    // Redis holds entries for this node that the node does not have.
    let _: () = redis::pipe()
        .cmd("HSET")
        .arg(format!("{p}:presence:room:echo"))
        .arg("phantom")
        .arg("")
        .cmd("HSET")
        .arg(format!("{p}:presence:room:echo#phantom"))
        .arg(id)
        .arg(1)
        .cmd("SADD")
        .arg(format!("{p}:node:{id}:presence"))
        .arg("room:echo#phantom")
        .cmd("HSET")
        .arg(format!("{p}:conns:phantom"))
        .arg(id)
        .arg(3)
        .cmd("SADD")
        .arg(format!("{p}:node:{id}:players"))
        .arg("phantom")
        // And has forgotten the node itself.
        .cmd("SREM")
        .arg(format!("{p}:nodes"))
        .arg(id)
        .query(&mut redis)
        .expect("plant a stale state");
    assert_eq!(
        presence_players(&presence(&server, "room:echo")),
        vec![("member".to_string(), 1), ("phantom".to_string(), 1)]
    );

    presence_event(&mut member, "leave", "room:echo", "phantom");
    assert_eq!(
        presence_players(&presence(&server, "room:echo")),
        vec![("member".to_string(), 1)]
    );
    // The resync writes presence before the connection counts, so the
    // leave can arrive before the stale count is gone.
    wait_until("only the member's connection count is left", || {
        let counts: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{p}:conns:*"))
            .query(&mut redis)
            .expect("KEYS");
        counts == vec![format!("{p}:conns:member")]
    });
    member.expect_quiet();
}

/// A Redis server of the test's own, on a free port; with certificates,
/// TLS only.
struct OwnRedis {
    program: String,
    port: u16,
    tls: Option<common::tls::TestCerts>,
    child: Option<Child>,
}

impl OwnRedis {
    fn start(program: String) -> OwnRedis {
        OwnRedis::start_with(program, None)
    }

    fn start_with(program: String, tls: Option<common::tls::TestCerts>) -> OwnRedis {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let mut redis = OwnRedis {
            program,
            port,
            tls,
            child: None,
        };
        redis.restart();
        redis
    }

    fn url(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    fn client(&self) -> redis::RedisResult<redis::Client> {
        match &self.tls {
            Some(certs) => redis::Client::build_with_tls(
                self.url().as_str(),
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(std::fs::read(&certs.ca).expect("CA file")),
                },
            ),
            None => redis::Client::open(self.url().as_str()),
        }
    }

    fn restart(&mut self) {
        let port = self.port.to_string();
        let mut command = Command::new(&self.program);
        match &self.tls {
            Some(certs) => command
                .args(["--port", "0", "--tls-port", &port])
                .arg("--tls-cert-file")
                .arg(&certs.cert)
                .arg("--tls-key-file")
                .arg(&certs.key)
                .arg("--tls-ca-cert-file")
                .arg(&certs.ca)
                .args(["--tls-auth-clients", "no"]),
            None => command.args(["--port", &port]),
        };
        let child = command
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        wait_until("the test's redis answers", || {
            self.client()
                .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(200)))
                .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
                .is_ok()
        });
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A Redis that speaks only TLS (`rediss://`), its certificate signed by a
/// private CA given as `broker.tls_ca_file`: the node is ready and
/// publications go through it. A node trusting another CA cannot reach it:
/// its publishes are refused as the broker being unavailable.
#[test]
fn a_redis_over_tls_with_a_private_ca() {
    let program = require_service!(RedisServer);
    let certs = common::tls::TestCerts::generate();
    let ca = certs.ca.clone();
    let redis = OwnRedis::start_with(program, Some(certs));
    assert!(redis.url().starts_with("rediss://"));
    let namespace = Namespace::new(&redis.url());
    let server = node(&namespace, |config| config.broker.tls_ca_file = ca.clone());
    let mut member = server.connect("member");
    subscribe(&mut member, "s", &["news:tls"]);
    api_publish(&server, KEY, "news:tls", json!("over tls"));
    assert_eq!(publication(&mut member, "news:tls")["data"], "over tls");

    let stranger = common::tls::TestCerts::generate();
    let mut config = cluster_config(&namespace);
    config.broker.tls_ca_file = stranger.ca.clone();
    let dir = tempfile::tempdir().expect("temp dir");
    config.progress.path = dir.path().join("progress.db");
    let untrusting = TestServer::start_with(config);
    let (status, body) = common::http_post(
        &untrusting.http_url("/api/publish"),
        &json!({"channel": "news:tls", "data": "refused"}),
        Some(KEY),
    );
    assert_eq!(status, 503, "{body}");
    let (status, _) = http_get(&untrusting.http_url("/readyz"), None);
    assert_eq!(status, 503);
}

/// Losing Redis: readiness 503, publishes fail with a clear error, the open
/// connection stays; when Redis returns, the node resubscribes without a
/// restart, and a client recovering across the outage (a Redis that kept
/// nothing) gets `recovered: false`, not a silent gap.
#[test]
fn a_redis_outage_flips_readiness_and_the_node_recovers() {
    let program = require_service!(RedisServer);
    let mut redis = OwnRedis::start(program);
    let namespace = Namespace::new(&redis.url());
    let server = node(&namespace, |_| {});
    let readyz = server.http_url("/readyz");
    let mut member = server.connect("member");
    subscribe(&mut member, "s", &["news:outage", "room:outage"]);
    presence_event(&mut member, "join", "room:outage", "member");
    let before = api_publish(&server, KEY, "news:outage", json!("before"));
    let seen = publication(&mut member, "news:outage");
    assert_eq!(seen["data"], "before");

    redis.stop();
    wait_for_readiness(&readyz, 503);
    let refused = publish(&mut member, "p", "room:outage", json!("during"));
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["code"], "internal", "{refused}");
    // The client is told the broker is unavailable, never Redis's own
    // words (an address, a driver error).
    assert_eq!(
        refused["message"], "the message broker is unavailable; retry shortly",
        "{refused}"
    );
    let (status, body) = common::http_post(
        &server.http_url("/api/publish"),
        &json!({"channel": "news:outage", "data": "during"}),
        Some(KEY),
    );
    assert_eq!(status, 503, "{body}");
    member.expect_quiet();

    redis.restart();
    wait_for_readiness(&readyz, 200);
    // The connection that stayed open hears new publications: the node
    // resubscribed by itself.
    api_publish(&server, KEY, "news:outage", json!("after"));
    let seen = publication(&mut member, "news:outage");
    assert_eq!(seen["data"], "after");

    let mut returning = server.connect("returning");
    let reply = returning.request(
        "r",
        json!({"type": "subscribe", "channels": ["news:outage"],
               "recover": {"news:outage": {"offset": before["offset"], "epoch": before["epoch"]}}}),
    );
    let position = &reply["result"]["channels"]["news:outage"];
    assert_eq!(position["recovered"], false, "{reply}");
    assert_eq!(position["missed"], 0);
    returning.expect_quiet();

    // The restarted Redis knew nothing of the member; the node wrote its
    // presence back.
    wait_until("the member is present again", || {
        presence_players(&presence(&server, "room:outage")) == vec![("member".to_string(), 1)]
    });

    // Only the pub/sub connection is cut: what was published meanwhile is
    // relayed from history before the next live publication.
    let killed: i64 = redis::cmd("CLIENT")
        .arg(&["KILL", "TYPE", "pubsub"])
        .query(&mut namespace.redis())
        .expect("CLIENT KILL");
    assert_eq!(killed, 1);
    wait_for_readiness(&readyz, 503);
    api_publish(&server, KEY, "news:outage", json!("unheard"));
    wait_for_readiness(&readyz, 200);
    api_publish(&server, KEY, "news:outage", json!("heard"));
    for expected in ["unheard", "heard"] {
        let seen = publication(&mut member, "news:outage");
        assert_eq!(seen["data"], expected);
    }
    member.expect_quiet();
}

#[test]
fn an_assistant_reply_streams_to_the_owners_devices_on_every_node() {
    let url = require_service!(Redis);
    let store = require_service!(Postgres);
    let namespace = Namespace::new(&url);
    let fake = FakeModel::start();
    let assistant_node = |config: &mut Config| {
        config.conversations.kind = "postgres".into();
        config.conversations.url = store.clone();
        config.assistant.kind = "openai".into();
        config.assistant.base_url = fake.base_url();
        config.assistant.model = "fake".into();
    };
    let first = node(&namespace, assistant_node);
    let second = node(&namespace, assistant_node);
    let player = format!("{}-ana", namespace.prefix);
    let mut phone = first.connect(&player);
    let session = new_session(&mut phone);
    let channel = format!("session:{session}");

    // The other node checks ownership in the shared store.
    let mut laptop = second.connect(&player);
    laptop.send_json(json!({"type": "subscribe", "id": "s", "channels": [channel]}));
    let joined = next_frame(&mut laptop);
    assert_eq!(joined["type"], "response", "{joined}");
    let mut stranger = second.connect(&format!("{}-ben", namespace.prefix));
    let refused = subscribe(&mut stranger, "s", &[&channel]);
    assert_eq!(refused["code"], "not_found", "{refused}");

    let (_, reply) = send(&mut phone, &session, "one more thing [tokens:10:10]");
    let on_first = read_reply(&mut phone, &session, &reply);
    let on_second = read_reply(&mut laptop, &session, &reply);
    let expected = fake_tokens(10);
    assert_eq!(on_first.joined(), expected);
    assert_eq!(on_second.joined(), expected);
    assert_eq!(on_second.offsets, on_first.offsets, "one stream, one order");
    assert_eq!(on_second.end["text"], expected.as_str());

    // The second node reads the reply from the shared store.
    let got = ok(
        &mut laptop,
        "g",
        "sessions.get",
        json!({"session_id": session}),
    );
    assert_eq!(got["messages"][1]["text"], expected.as_str());
}

trait ClusterClient {
    fn next_publication(&mut self, channel: &str) -> Value;
}

impl ClusterClient for Client {
    /// The next publication in `channel`, skipping presence events.
    fn next_publication(&mut self, channel: &str) -> Value {
        loop {
            let event = self.recv();
            if event["event"] == "join" || event["event"] == "leave" {
                continue;
            }
            assert_eq!(event["event"], "publication", "{event}");
            assert_eq!(event["channel"], channel, "{event}");
            return event;
        }
    }
}

/// A tool call that waits for approval on one node is decided from the
/// player's device on another, through Redis; a decision for a call that
/// waits nowhere is `not_found` on every node.
#[test]
fn a_tool_call_waiting_on_one_node_is_approved_from_another() {
    let url = require_service!(Redis);
    let namespace = Namespace::new(&url);
    let fake = FakeModel::start();
    let assistant_node = |config: &mut Config| {
        config.assistant.kind = "openai".into();
        config.assistant.base_url = fake.base_url();
        config.assistant.model = "fake".into();
    };
    let first = node(&namespace, assistant_node);
    let second = node(&namespace, assistant_node);
    let mut phone = first.connect("ana-approves");
    let mut laptop = second.connect("ana-approves");
    let session = new_session(&mut phone);
    let (_, reply) = send(&mut phone, &session, "share my week [call:share_summary]");
    let (_, _, call_id) = common::sessions::approval_asked(&mut phone);

    common::sessions::expect_not_waiting(&mut laptop, &session, "call_none");
    let approved = ok(
        &mut laptop,
        "yes",
        "tools.approve",
        json!({"session_id": session, "call_id": call_id}),
    );
    assert_eq!(approved, json!({"call_id": call_id, "approved": true}));

    let completed = loop {
        let frame = next_frame(&mut phone);
        if frame["data"]["event"] == "tool.completed" {
            break frame["data"]["data"].clone();
        }
    };
    assert_eq!(completed["ok"], true, "{completed}");
    assert_eq!(completed["summary"], "shared a note");
    assert_eq!(completed["message_id"], reply.as_str());
    // Decided once, cluster-wide.
    common::sessions::expect_not_waiting(&mut laptop, &session, &call_id);
}
