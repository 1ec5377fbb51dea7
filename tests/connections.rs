//! Connection lifecycle: heartbeats, idle timeout, the per-player limit,
//! token expiry and refresh, and the metrics counters as frames flow.

mod common;

use common::{api_publish, now, subscribe, token_with, Client, Frame, TestServer};
use serde_json::json;

/// The server pings every heartbeat interval.
#[test]
fn the_server_sends_heartbeat_pings() {
    let server = TestServer::with_config(|config| {
        config.server.heartbeat_interval_s = 1;
        config.server.client_timeout_s = 30;
    });
    let mut client = server.connect("alice");
    assert!(matches!(client.next_frame(), Frame::Ping));
}

/// A client that answers nothing is closed after client_timeout_s and
/// unregistered.
#[test]
fn a_silent_client_is_closed_and_unregistered() {
    let server = TestServer::with_config(|config| {
        config.server.heartbeat_interval_s = 1;
        config.server.client_timeout_s = 2;
    });
    // Not reading means not answering the server's pings.
    let silent = server.connect("alice");
    server.wait_for_metrics("the silent client to be closed", |m| m["connections"] == 0);
    assert_eq!(silent.raw_close(), (1000, "idle timeout".into()));
    let mut fresh = server.connect("alice");
    assert_eq!(fresh.say("m", "hello again")["role"], "assistant");
}

/// A client that keeps answering pings stays connected past the timeout.
#[test]
fn an_answering_client_stays() {
    let server = TestServer::with_config(|config| {
        config.server.heartbeat_interval_s = 1;
        config.server.client_timeout_s = 2;
    });
    let mut client = server.connect("alice");
    // Reading answers each ping; four pings span twice the timeout.
    for _ in 0..4 {
        assert!(matches!(client.next_frame(), Frame::Ping));
    }
    client.expect_quiet();
}

/// The 17th connection of one player is closed 1008; others are unaffected.
#[test]
fn connections_per_player_are_limited() {
    let server = TestServer::start();
    let mut open: Vec<Client> = (0..16).map(|_| server.connect("alice")).collect();
    let mut extra = Client::open(
        &server.ws_url(&format!("?token={}", server.token("alice"))),
        &[],
    );
    assert_eq!(extra.expect_close(), (1008, "too many connections".into()));
    open[0].expect_quiet();
    let mut bob = server.connect("bob");
    bob.expect_quiet();
    open.pop().unwrap().close();
    let mut again = server.connect("alice");
    again.expect_quiet();
}

/// When exp passes during a connection: `token_expired`, then close 4001.
#[test]
fn token_expiry_closes_4001() {
    let server = TestServer::with_config(|config| config.auth.leeway_s = 0);
    let token = token_with(json!({"sub": "alice", "exp": now() + 2}));
    let mut client = Client::open(&server.ws_url(&format!("?token={token}")), &[]);
    assert_eq!(client.recv()["metadata"]["event"], "connected");
    let error = client.recv();
    assert_eq!(error["type"], "error");
    assert_eq!(error["code"], "token_expired");
    assert_eq!(client.expect_close().0, 4001);
    let mut fresh = server.connect("alice");
    assert_eq!(fresh.say("m", "new token, same me")["role"], "assistant");
}

/// A refresh with a new token for the same player keeps the connection past
/// the old expiry; a token for another player or a bad one changes nothing.
#[test]
fn refresh_extends_the_connection() {
    let server = TestServer::with_config(|config| {
        config.auth.leeway_s = 0;
        config.server.heartbeat_interval_s = 1;
    });
    let token = token_with(json!({"sub": "alice", "exp": now() + 3}));
    let mut client = Client::open(&server.ws_url(&format!("?token={token}")), &[]);
    client.recv();

    let other = server.token("mallory");
    let refused = client.request("r1", json!({"type": "refresh", "token": other}));
    assert_eq!(refused["code"], "forbidden");
    let bad = client.request("r2", json!({"type": "refresh", "token": "garbage"}));
    assert_eq!(bad["code"], "bad_request");

    let fresh = token_with(json!({"sub": "alice", "exp": now() + 3600}));
    let ok = client.request("r3", json!({"type": "refresh", "token": fresh}));
    assert_eq!(ok["type"], "response");
    assert!(ok["result"]["expires_at"].as_str().unwrap().ends_with('Z'));
    // Past the old expiry the connection still works: four heartbeat pings
    // (one a second) span the old token's remaining three seconds.
    for _ in 0..4 {
        assert!(matches!(client.next_frame(), Frame::Ping));
    }
    let reply = client.say("m", "still here");
    assert_eq!(reply["role"], "assistant");
}

/// A refresh with a token that no longer grants a channel takes the
/// connection out of it, with an `unsubscribe` event before the answer;
/// channels whose right does not come from the token stay.
#[test]
fn refresh_leaves_the_channels_the_new_token_no_longer_grants() {
    const KEY: &str = "connections-test-key-0123456789abcdef0123456789";
    let server = TestServer::with_config(|config| config.api.key = KEY.into());
    let token = token_with(
        json!({"sub": "carol", "exp": now() + 600, "channels": ["team:red", "team:blue"]}),
    );
    let mut carol = Client::open(&server.ws_url(&format!("?token={token}")), &[]);
    carol.recv();
    let granted = subscribe(&mut carol, "s", &["team:red", "team:blue", "news:open"]);
    assert_eq!(granted["type"], "response", "{granted}");
    let narrower =
        token_with(json!({"sub": "carol", "exp": now() + 600, "channels": ["team:blue"]}));
    carol.send_json(json!({"type": "refresh", "id": "r", "token": narrower}));
    // Join events of the subscribe may come first; then the unsubscribe
    // event, then the answer.
    let event = loop {
        let frame = carol.recv();
        if frame["event"] != "join" {
            break frame;
        }
    };
    assert_eq!(event["type"], "event", "{event}");
    assert_eq!(event["event"], "unsubscribe");
    assert_eq!(event["channel"], "team:red");
    assert_eq!(event["data"]["code"], "forbidden");
    let answer = carol.recv();
    assert_eq!(answer["reply_to"], "r", "{answer}");
    assert_eq!(answer["type"], "response");

    // Nothing more of team:red arrives; team:blue and the news channel do.
    for channel in ["team:red", "team:blue", "news:open"] {
        api_publish(&server, KEY, channel, json!(channel));
    }
    // (Join events of the subscribe may still be arriving.)
    let mut next_publication = || loop {
        let frame = carol.recv();
        if frame["event"] == "publication" {
            break frame;
        }
    };
    let first = next_publication();
    assert_eq!(first["channel"], "team:blue", "{first}");
    let second = next_publication();
    assert_eq!(second["channel"], "news:open", "{second}");
    carol.expect_quiet();
}

/// Counters move as frames flow: connections open now and in total,
/// messages in and out (the welcome included).
#[test]
fn metrics_count_connections_and_messages() {
    let server = TestServer::start();
    let before = server.metrics();
    assert_eq!(before["connections"], 0);
    for key in [
        "connections_total",
        "messages_in",
        "messages_out",
        "crisis_detected",
    ] {
        assert_eq!(before[key], 0, "{key}");
    }
    assert!(before["actors"].is_object());

    let mut client = server.connect("alice");
    client.say("1", "hello");
    client.send_text("not json");
    client.recv();
    let during = server.wait_for_metrics("two frames counted", |m| m["messages_in"] == 2);
    assert_eq!(during["connections"], 1);
    assert_eq!(during["connections_total"], 1);
    // welcome + reply + error
    assert_eq!(during["messages_out"], 3);

    client.close();
    let after = server.wait_for_metrics("connection closed", |m| m["connections"] == 0);
    assert_eq!(after["connections_total"], 1);
}

/// Health and readiness answer without a key.
#[test]
fn health_and_readiness() {
    let server = TestServer::start();
    assert_eq!(server.get("/healthz", None), (200, json!({"status": "ok"})));
    let (status, body) = server.get("/readyz", None);
    assert_eq!(status, 200);
    assert_eq!(body["status"], "ready");
}
