//! Channels: subscribe, publish, broadcast, presence, history and recovery
//! (docs/protocol.md, sections 5 and 7), against a real server.

mod common;

use std::collections::HashSet;

use common::{now, publication, publish, subscribe, token_with, Client, Frame, TestServer};
use serde_json::{json, Value};

const KEY: &str = "channels-test-key-0123456789abcdef0123456789";

fn server() -> TestServer {
    TestServer::with_config(|config| config.api.key = KEY.into())
}

/// A server whose `namespace` keeps `history_size` publications.
fn server_with_history(namespace: &str, history_size: usize) -> TestServer {
    TestServer::with_config(|config| {
        config.api.key = KEY.into();
        if let Some(rules) = config.channels.namespaces.get_mut(namespace) {
            rules.history_size = history_size;
        }
    })
}

fn api_post(server: &TestServer, path: &str, body: Value, key: Option<&str>) -> (u16, Value) {
    common::http_post(&server.http_url(path), &body, key)
}

fn server_publish(server: &TestServer, channel: &str, data: Value) -> Value {
    common::api_publish(server, KEY, channel, data)
}

/// Two clients in a room both receive a publication; offsets grow by one;
/// the publisher is named; the publisher gets its offset back.
#[test]
fn room_members_receive_publications_in_order() {
    let server = server();
    let mut alice = server.connect("alice");
    let mut bob = server.connect("bob");
    let joined = subscribe(&mut alice, "s1", &["room:lobby"]);
    assert_eq!(joined["type"], "response");
    let position = &joined["result"]["channels"]["room:lobby"];
    assert_eq!(position["offset"], 0);
    assert_eq!(position["recovered"], false);
    assert_eq!(position["missed"], 0);
    assert!(position["epoch"].as_str().is_some_and(|e| !e.is_empty()));
    assert_eq!(joined["result"]["refused"], json!({}));
    assert_eq!(alice.recv()["data"]["player_id"], "alice", "her own join");
    subscribe(&mut bob, "s2", &["room:lobby"]);
    // Bob's join reaches alice (room has presence).
    let join = alice.recv();
    assert_eq!(
        join,
        json!({"type": "event", "channel": "room:lobby", "event": "join", "data": {"player_id": "bob"}})
    );
    let bob_join = bob.recv();
    assert_eq!(bob_join["event"], "join");

    for n in 1..=3u64 {
        alice.send_json(json!({"type": "publish", "id": format!("p{n}"), "channel": "room:lobby", "data": {"n": n}}));
        // The publisher gets its event and its response, in either order.
        let first = alice.recv();
        let second = alice.recv();
        let (event, response) = if first["type"] == "event" {
            (first, second)
        } else {
            (second, first)
        };
        assert_eq!(response["type"], "response");
        assert_eq!(response["reply_to"], format!("p{n}"));
        assert_eq!(response["result"], json!({"offset": n}));
        for event in [event, publication(&mut bob, "room:lobby")] {
            assert_eq!(event["channel"], "room:lobby");
            assert_eq!(event["offset"], n);
            assert_eq!(event["publisher"], "alice");
            assert_eq!(event["data"], json!({"n": n}));
            assert_eq!(event["epoch"], position["epoch"]);
            assert!(event["timestamp"].as_str().unwrap().ends_with('Z'));
        }
    }
    bob.expect_quiet();
}

/// Fifty clients in one room all receive a server publication once.
#[test]
fn fifty_subscribers_all_receive() {
    let server = server();
    let mut clients: Vec<Client> = (0..50)
        .map(|n| {
            let mut client = server.connect(&format!("p{n}"));
            client.request("s", json!({"type": "subscribe", "channels": ["news:all"]}));
            client
        })
        .collect();
    let published = server_publish(&server, "news:all", json!({"headline": "hello"}));
    assert_eq!(published["offset"], 1);
    for client in &mut clients {
        let event = publication(client, "news:all");
        assert_eq!(event["publisher"], "server");
        assert_eq!(event["data"]["headline"], "hello");
        client.expect_quiet();
    }
}

/// Permissions: clients may not publish into news; another player's user
/// channel is forbidden; a non-member may not publish into a room; a
/// token-granted channel needs the grant.
#[test]
fn permissions_are_enforced() {
    let server = server();
    let mut alice = server.connect("alice");
    subscribe(&mut alice, "s", &["news:all"]);
    let refused = publish(&mut alice, "p1", "news:all", json!("x"));
    assert_eq!(refused["code"], "forbidden");

    let other = subscribe(&mut alice, "s2", &["user:bob"]);
    assert_eq!(other["type"], "error");
    assert_eq!(other["code"], "forbidden");
    assert_eq!(other["refused"]["user:bob"]["code"], "forbidden");

    let outsider = publish(&mut alice, "p2", "room:closed", json!("x"));
    assert_eq!(outsider["code"], "forbidden");

    let secret = subscribe(&mut alice, "s3", &["team:red"]);
    assert_eq!(secret["code"], "forbidden");
    let token = token_with(json!({"sub": "carol", "exp": now() + 600, "channels": ["team:red"]}));
    let mut carol = Client::open(&server.ws_url(&format!("?token={token}")), &[]);
    carol.recv();
    let granted = subscribe(&mut carol, "s4", &["team:red"]);
    assert_eq!(granted["type"], "response", "{granted}");

    // Partial grant: one response listing what was refused.
    let mixed = subscribe(&mut alice, "s5", &["room:a", "user:bob", "bad name"]);
    assert_eq!(mixed["type"], "response");
    assert!(mixed["result"]["channels"]["room:a"].is_object());
    assert_eq!(mixed["result"]["refused"]["user:bob"]["code"], "forbidden");
    assert_eq!(
        mixed["result"]["refused"]["bad name"]["code"],
        "bad_channel"
    );
}

/// Bad channel names are refused with bad_channel everywhere.
#[test]
fn bad_channel_names() {
    let server = server();
    let mut alice = server.connect("alice");
    for name in [
        "lobby",
        "room:",
        ":x",
        "room:with space",
        &format!("room:{}", "x".repeat(200)),
    ] {
        let reply = subscribe(&mut alice, "s", &[name]);
        assert_eq!(reply["code"], "bad_channel", "{name}: {reply}");
        let reply = publish(&mut alice, "p", name, json!(1));
        assert_eq!(reply["code"], "bad_channel", "{name}: {reply}");
    }
    let (status, body) = api_post(
        &server,
        "/api/publish",
        json!({"channel": "nope", "data": 1}),
        Some(KEY),
    );
    assert_eq!((status, body["error"].as_str()), (400, Some("bad_channel")));
    let empty = alice.request("e", json!({"type": "subscribe", "channels": []}));
    assert_eq!(empty["code"], "bad_request");
}

/// The server API reaches a room, and through `user:<player>` every
/// connection of that player and no one else.
#[test]
fn server_api_broadcasts_to_a_player() {
    let server = server();
    let mut laptop = server.connect("alice");
    let mut phone = server.connect("alice");
    let mut bob = server.connect("bob");
    let sent = server_publish(&server, "user:alice", json!({"note": "for alice"}));
    assert_eq!(sent["offset"], 1);
    assert!(sent["epoch"].is_string());
    for client in [&mut laptop, &mut phone] {
        let event = publication(client, "user:alice");
        assert_eq!(event["data"]["note"], "for alice");
        assert_eq!(event["publisher"], "server");
    }
    bob.expect_quiet();
    laptop.expect_quiet();

    // Clients may not publish into user channels, not even their own.
    let own = publish(&mut laptop, "p", "user:alice", json!(1));
    assert_eq!(own["code"], "forbidden");
}

/// The server API's key rules hold for publish and presence.
#[test]
fn server_api_needs_the_key() {
    let server = server();
    let body = json!({"channel": "room:a", "data": 1});
    assert_eq!(api_post(&server, "/api/publish", body.clone(), None).0, 401);
    assert_eq!(
        api_post(&server, "/api/publish", body.clone(), Some("wrong")).0,
        401
    );
    assert_eq!(server.get("/api/channels/room:a/presence", None).0, 401);
    let off = TestServer::start();
    assert_eq!(api_post(&off, "/api/publish", body, Some(KEY)).0, 403);
    let (status, reply) = api_post(&server, "/api/publish", json!({"data": 1}), Some(KEY));
    assert_eq!(
        (status, reply["error"].as_str()),
        (400, Some("bad_request"))
    );
}

/// Presence lists players with connection counts; join and leave fire once
/// per player, not per connection.
#[test]
fn presence_counts_players_and_fires_once() {
    let server = server();
    let mut watcher = server.connect("watcher");
    subscribe(&mut watcher, "w", &["room:hall"]);
    assert_eq!(watcher.recv()["event"], "join");

    let mut first = server.connect("alice");
    subscribe(&mut first, "a1", &["room:hall"]);
    assert_eq!(watcher.recv()["data"]["player_id"], "alice");
    let mut second = server.connect("alice");
    subscribe(&mut second, "a2", &["room:hall"]);
    // No second join for alice.
    watcher.expect_quiet();

    let listed = watcher.request("q", json!({"type": "presence", "channel": "room:hall"}));
    let players = listed["result"]["players"].as_array().unwrap();
    let alice = players
        .iter()
        .find(|p| p["player_id"] == "alice")
        .expect("alice present");
    assert_eq!(alice["connections"], 2);
    assert_eq!(players.len(), 2);
    assert_eq!(listed["result"]["count"], 2);
    let (status, body) = server.get("/api/channels/room:hall/presence", Some(KEY));
    assert_eq!(status, 200);
    assert_eq!(body["players"], listed["result"]["players"]);

    // One of alice's connections leaves: still present, no leave event.
    second.request(
        "u",
        json!({"type": "unsubscribe", "channels": ["room:hall"]}),
    );
    watcher.expect_quiet();
    // The last one goes (disconnect): one leave.
    first.close();
    let leave = watcher.recv();
    assert_eq!(
        leave,
        json!({"type": "event", "channel": "room:hall", "event": "leave", "data": {"player_id": "alice"}})
    );

    let none = watcher.request("q2", json!({"type": "presence", "channel": "news:x"}));
    assert_eq!(none["code"], "not_available");
    assert_eq!(
        server.get("/api/channels/news:x/presence", Some(KEY)).0,
        404
    );
}

/// Only a member reads a channel's presence: a player who may join a room
/// but has not gets `forbidden`, so nobody watches a room unseen. A big
/// room answers with its count and the first 100 players.
#[test]
fn presence_is_for_members_and_capped() {
    let server = server();
    let members: Vec<Client> = (0..101)
        .map(|n| {
            let mut member = server.connect(&format!("m{n:03}"));
            subscribe(&mut member, "s", &["room:support"]);
            member
        })
        .collect();
    let mut outsider = server.connect("outsider");
    let refused = outsider.request("q", json!({"type": "presence", "channel": "room:support"}));
    assert_eq!(refused["code"], "forbidden", "{refused}");
    assert_eq!(refused["reply_to"], "q");
    subscribe(&mut outsider, "s", &["room:support"]);
    // Its own join event may come before the answer.
    outsider.send_json(json!({"type": "presence", "id": "q2", "channel": "room:support"}));
    let listed = outsider.answer_to("q2");
    assert_eq!(listed["result"]["count"], 102, "{listed}");
    let players = listed["result"]["players"].as_array().unwrap();
    assert_eq!(players.len(), 100);
    assert_eq!(players[0]["player_id"], "m000");
    drop(members);
}

/// Display names from the token appear in presence.
#[test]
fn presence_shows_display_names() {
    let server = server();
    let token = token_with(json!({"sub": "dana", "exp": now() + 600, "name": "Dana"}));
    let mut dana = Client::open(&server.ws_url(&format!("?token={token}")), &[]);
    dana.recv();
    subscribe(&mut dana, "s", &["room:names"]);
    dana.recv();
    let listed = dana.request("q", json!({"type": "presence", "channel": "room:names"}));
    assert_eq!(
        listed["result"]["players"],
        json!([{"player_id": "dana", "name": "Dana", "connections": 1}])
    );
}

/// After unsubscribe nothing more of that channel arrives.
#[test]
fn unsubscribe_stops_delivery() {
    let server = server();
    let mut client = server.connect("alice");
    subscribe(&mut client, "s", &["news:a", "news:b"]);
    let left = client.request(
        "u",
        json!({"type": "unsubscribe", "channels": ["news:a", "news:zzz"]}),
    );
    assert_eq!(left["result"]["channels"], json!(["news:a"]));
    server_publish(&server, "news:a", json!(1));
    server_publish(&server, "news:b", json!(2));
    let event = publication(&mut client, "news:b");
    assert_eq!(event["data"], 2);
    client.expect_quiet();
}

/// Reconnecting with the last offset and epoch recovers exactly the
/// publications missed, in order, then live ones.
#[test]
fn recovery_after_a_disconnect() {
    let server = server();
    let mut client = server.connect("alice");
    let joined = subscribe(&mut client, "s", &["news:feed"]);
    let epoch = joined["result"]["channels"]["news:feed"]["epoch"].clone();
    server_publish(&server, "news:feed", json!({"n": 1}));
    let last = publication(&mut client, "news:feed");
    assert_eq!(last["offset"], 1);
    client.close();

    for n in 2..=6 {
        server_publish(&server, "news:feed", json!({"n": n}));
    }
    let mut back = server.connect("alice");
    let reply = back.request(
        "r",
        json!({"type": "subscribe", "channels": ["news:feed"], "recover": {"news:feed": {"offset": 1, "epoch": epoch}}}),
    );
    let position = &reply["result"]["channels"]["news:feed"];
    assert_eq!(position["recovered"], true, "{reply}");
    assert_eq!(position["missed"], 5);
    assert_eq!(position["offset"], 6);
    for n in 2..=6u64 {
        let event = publication(&mut back, "news:feed");
        assert_eq!(event["offset"], n);
        assert_eq!(event["data"]["n"], n);
    }
    server_publish(&server, "news:feed", json!({"n": 7}));
    assert_eq!(publication(&mut back, "news:feed")["offset"], 7);
    back.expect_quiet();
}

/// A recovery that overflows the connection's queue closes it 4002, so the
/// client knows to reconnect and recover again, instead of going on with
/// fewer publications than its reply promised and nothing more after.
#[test]
fn a_recovery_that_overflows_the_queue_closes_4002() {
    let server = TestServer::with_config(|config| {
        config.api.key = KEY.into();
        config.limits.outbound_max_frames = 32;
    });
    let mut client = server.connect("alice");
    let joined = subscribe(&mut client, "s", &["news:burst"]);
    let epoch = joined["result"]["channels"]["news:burst"]["epoch"].clone();
    // One publication read, so the channel has a history to recover from.
    server_publish(&server, "news:burst", json!({"n": 0}));
    assert_eq!(publication(&mut client, "news:burst")["offset"], 1);
    client.close();
    // Within the 50 the news history keeps, past the 32 frames the queue
    // holds.
    for n in 1..=45 {
        server_publish(&server, "news:burst", json!({"n": n}));
    }
    let mut back = server.connect("alice");
    back.send_json(json!({"type": "subscribe", "id": "r", "channels": ["news:burst"], "recover": {"news:burst": {"offset": 1, "epoch": epoch}}}));
    let mut publications = 0;
    let close = loop {
        match back.next_frame() {
            Frame::Json(frame) if frame["event"] == "publication" => publications += 1,
            Frame::Json(_) | Frame::Binary => {}
            Frame::Ping => panic!("a heartbeat ping, no close, after {publications} publications"),
            Frame::Close(code, _) => break code,
        }
    };
    assert_eq!(close, 4002);
    assert!(publications < 45, "{publications} publications");
}

/// One subscribe recovers at most `recovery_max_publications` over all its
/// channels: past it a channel answers `recovered: false` and sends nothing
/// old, and the connection stays.
#[test]
fn a_recovery_past_the_budget_says_it_is_not_recovered() {
    let server = TestServer::with_config(|config| {
        config.api.key = KEY.into();
        config.channels.recovery_max_publications = 10;
    });
    let mut client = server.connect("alice");
    let joined = subscribe(&mut client, "s", &["news:small", "news:big"]);
    let epoch = |name: &str| joined["result"]["channels"][name]["epoch"].clone();
    let (small_epoch, big_epoch) = (epoch("news:small"), epoch("news:big"));
    server_publish(&server, "news:small", json!({"n": 0}));
    server_publish(&server, "news:big", json!({"n": 0}));
    assert_eq!(publication(&mut client, "news:small")["offset"], 1);
    assert_eq!(publication(&mut client, "news:big")["offset"], 1);
    client.close();
    for n in 1..=5 {
        server_publish(&server, "news:small", json!({"n": n}));
    }
    for n in 1..=20 {
        server_publish(&server, "news:big", json!({"n": n}));
    }
    let mut back = server.connect("alice");
    let reply = back.request(
        "r",
        json!({"type": "subscribe", "channels": ["news:small", "news:big"], "recover": {
            "news:small": {"offset": 1, "epoch": small_epoch},
            "news:big": {"offset": 1, "epoch": big_epoch}}}),
    );
    let small = &reply["result"]["channels"]["news:small"];
    assert_eq!(small["recovered"], true, "{reply}");
    assert_eq!(small["missed"], 5);
    let big = &reply["result"]["channels"]["news:big"];
    assert_eq!(big["recovered"], false, "{reply}");
    assert_eq!(big["missed"], 0);
    assert_eq!(big["offset"], 21);
    for n in 2..=6u64 {
        assert_eq!(publication(&mut back, "news:small")["offset"], n);
    }
    back.expect_quiet();
}

/// A wrong epoch, or a history that no longer reaches back: recovered is
/// false and nothing old is sent.
#[test]
fn recovery_that_cannot_be_exact_says_so() {
    let server = server_with_history("news", 3);
    let mut client = server.connect("alice");
    let joined = subscribe(&mut client, "s", &["news:short"]);
    let epoch = joined["result"]["channels"]["news:short"]["epoch"]
        .as_str()
        .unwrap()
        .to_string();
    client.close();
    for n in 1..=5 {
        server_publish(&server, "news:short", json!(n));
    }
    let mut back = server.connect("alice");
    let too_old = back.request(
        "r1",
        json!({"type": "subscribe", "channels": ["news:short"], "recover": {"news:short": {"offset": 0, "epoch": epoch}}}),
    );
    let position = &too_old["result"]["channels"]["news:short"];
    assert_eq!(position["recovered"], false);
    assert_eq!(position["missed"], 0);
    assert_eq!(position["offset"], 5);
    back.expect_quiet();

    let mut other = server.connect("bob");
    let wrong = other.request(
        "r2",
        json!({"type": "subscribe", "channels": ["news:short"], "recover": {"news:short": {"offset": 4, "epoch": "not-the-epoch"}}}),
    );
    assert_eq!(
        wrong["result"]["channels"]["news:short"]["recovered"],
        false
    );
    other.expect_quiet();
}

/// While a publisher floods a channel, a client subscribing with recovery
/// sees contiguous offsets: no gap, no duplicate.
#[test]
fn recovery_is_atomic_with_joining_under_load() {
    // History long enough to reach back to offset 0 from wherever the
    // subscribe lands.
    let server = server_with_history("room", 1000);
    let mut publisher = server.connect("publisher");
    subscribe(&mut publisher, "s", &["room:flood"]);
    publisher.recv(); // its own join
    for n in 0..20 {
        publisher.send_json(json!({"type": "publish", "channel": "room:flood", "data": n}));
    }
    let mut reader = server.connect("reader");
    let epoch = {
        let mut probe = server.connect("probe");
        let joined = subscribe(&mut probe, "p", &["room:flood"]);
        joined["result"]["channels"]["room:flood"]["epoch"]
            .as_str()
            .unwrap()
            .to_string()
    };
    // Keep publishing while the reader subscribes from offset 0.
    let total = 400;
    for n in 20..total {
        publisher.send_json(json!({"type": "publish", "channel": "room:flood", "data": n}));
        if n == 100 {
            reader.send_json(
                json!({"type": "subscribe", "id": "r", "channels": ["room:flood"],
                "recover": {"room:flood": {"offset": 0, "epoch": epoch}}}),
            );
        }
    }
    let response = reader.recv();
    assert_eq!(response["reply_to"], "r", "{response}");
    assert_eq!(
        response["result"]["channels"]["room:flood"]["recovered"],
        true
    );
    let mut expected = 1u64;
    let mut seen = HashSet::new();
    while expected <= total {
        let frame = reader.recv();
        if frame["event"] != "publication" {
            continue; // joins and leaves of other players
        }
        let offset = frame["offset"].as_u64().unwrap();
        assert!(seen.insert(offset), "duplicate offset {offset}");
        assert_eq!(offset, expected, "gap or reordering");
        expected += 1;
    }
}

/// The 129th subscription of a connection is refused with limit_exceeded;
/// the personal channel does not count.
#[test]
fn subscriptions_per_connection_are_limited() {
    let server = server();
    let mut client = server.connect("alice");
    let names: Vec<String> = (0..128).map(|n| format!("news:r{n}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let reply = subscribe(&mut client, "s", &refs);
    assert_eq!(reply["result"]["channels"].as_object().unwrap().len(), 128);
    let over = subscribe(&mut client, "o", &["news:one-more"]);
    assert_eq!(over["code"], "limit_exceeded");
    assert_eq!(over["refused"]["news:one-more"]["code"], "limit_exceeded");
    // Re-subscribing to one it has is fine, and so is its own user channel.
    let again = subscribe(&mut client, "a", &["news:r0", "user:alice"]);
    assert_eq!(again["type"], "response", "{again}");
    client.request("u", json!({"type": "unsubscribe", "channels": ["news:r0"]}));
    let now_fits = subscribe(&mut client, "f", &["news:one-more"]);
    // One request naming more channels than a connection may hold is
    // refused whole, so its reply cannot grow with the request.
    let many: Vec<String> = (0..130).map(|n| format!("bad name {n}")).collect();
    let refs: Vec<&str> = many.iter().map(String::as_str).collect();
    let too_many = subscribe(&mut client, "m", &refs);
    assert_eq!(too_many["code"], "limit_exceeded");
    assert!(too_many.get("refused").is_none());
    assert_eq!(now_fits["type"], "response");
}

/// A channel nobody on this node is in costs it nothing: its publications
/// are kept for recovery but not fanned out. Joining starts the live flow
/// with no gap; the last one leaving stops it.
#[test]
fn only_channels_in_use_are_listened_to() {
    let server = server();
    // /readyz asks the broadcaster, so it answers after the broadcaster has
    // handled every publication queued before it: a barrier.
    let fanned_out = |server: &TestServer| {
        assert_eq!(server.get("/readyz", None).0, 200);
        server.metrics()["publications"].as_u64().unwrap()
    };
    let first = server_publish(&server, "news:quiet", json!(1));
    assert_eq!(fanned_out(&server), 0, "nobody listens yet");

    let mut client = server.connect("alice");
    let reply = client.request(
        "s",
        json!({"type": "subscribe", "channels": ["news:quiet"],
               "recover": {"news:quiet": {"offset": 0, "epoch": first["epoch"]}}}),
    );
    assert_eq!(reply["result"]["channels"]["news:quiet"]["missed"], 1);
    assert_eq!(publication(&mut client, "news:quiet")["offset"], 1);
    server_publish(&server, "news:quiet", json!(2));
    assert_eq!(publication(&mut client, "news:quiet")["offset"], 2);
    assert_eq!(fanned_out(&server), 1);

    client.request(
        "u",
        json!({"type": "unsubscribe", "channels": ["news:quiet"]}),
    );
    server.wait_for_metrics("the room closed", |m| m["registry"]["channels"] == 1);
    // The personal channel is the one room left; news:quiet is unwatched
    // once the broadcaster has heard, which a publish then shows.
    let deadline = std::time::Instant::now() + common::FRAME_TIMEOUT;
    let mut offset = 2;
    loop {
        offset += 1;
        let before = fanned_out(&server);
        server_publish(&server, "news:quiet", json!(offset));
        if fanned_out(&server) == before {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still listening to news:quiet"
        );
    }
    client.expect_quiet();
}

/// A subscribe that grants nothing answers with the first refusal in the
/// order the channels were named, not in the order of their names.
#[test]
fn a_subscribe_that_grants_nothing_answers_with_its_first_refusal() {
    let server = TestServer::start();
    let mut client = server.connect("ana");
    let refused = subscribe(&mut client, "s", &["user:ben", "!bad"]);
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["code"], "forbidden", "{refused}");
    assert_eq!(refused["refused"]["!bad"]["code"], "bad_channel");
    let refused = subscribe(&mut client, "t", &["!bad", "user:ben"]);
    assert_eq!(refused["code"], "bad_channel", "{refused}");
}
