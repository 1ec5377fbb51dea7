//! Connecting: JWT by query or Bearer header, every kind of refusal closed
//! 1008 with its exact reason, and the welcome as the first frame.

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::{now, token_signed, token_with, Client, TestServer};
use serde_json::json;

fn refused_with(server: &TestServer, query: &str, headers: &[(&str, String)]) -> (u16, String) {
    let mut client = Client::open(&server.ws_url(query), headers);
    // expect_close panics if any JSON frame arrives first: a refused
    // connection is sent nothing but the close.
    client.expect_close()
}

/// No token at all: closed 1008 "missing token".
#[test]
fn no_token_is_refused() {
    let server = TestServer::start();
    assert_eq!(
        refused_with(&server, "", &[]),
        (1008, "missing token".into())
    );
    assert_eq!(
        refused_with(&server, "?token=", &[]),
        (1008, "missing token".into())
    );
}

/// A token signed with another secret: "invalid token".
#[test]
fn a_bad_signature_is_refused() {
    let server = TestServer::start();
    let token = token_signed(
        json!({"sub": "alice", "exp": now() + 600}),
        "not-the-secret",
    );
    let closed = refused_with(&server, &format!("?token={token}"), &[]);
    assert_eq!(closed, (1008, "invalid token".into()));
}

/// `alg: none` with no signature: "invalid token".
#[test]
fn alg_none_is_refused() {
    let server = TestServer::start();
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let claims = URL_SAFE_NO_PAD.encode(json!({"sub": "alice", "exp": now() + 600}).to_string());
    for token in [format!("{header}.{claims}."), format!("{header}.{claims}")] {
        let closed = refused_with(&server, &format!("?token={token}"), &[]);
        assert_eq!(closed, (1008, "invalid token".into()), "{token}");
    }
}

/// `exp` in the past beyond the leeway: "token expired".
#[test]
fn an_expired_token_is_refused() {
    let server = TestServer::start();
    let token = token_with(json!({"sub": "alice", "exp": now() - 60}));
    let closed = refused_with(&server, &format!("?token={token}"), &[]);
    assert_eq!(closed, (1008, "token expired".into()));
}

/// Missing `sub`, a `sub` outside the allowed characters, the reserved
/// `server` (the server API's publisher name), missing `exp`, `nbf` in the
/// future, garbage: all "invalid token".
#[test]
fn malformed_claims_are_refused() {
    let server = TestServer::start();
    let exp = now() + 600;
    let tokens = [
        token_with(json!({"exp": exp})),
        token_with(json!({"sub": "has space", "exp": exp})),
        token_with(json!({"sub": "x".repeat(129), "exp": exp})),
        token_with(json!({"sub": "server", "exp": exp})),
        token_with(json!({"sub": "SERVER", "exp": exp})),
        token_with(json!({"sub": "alice"})),
        token_with(json!({"sub": "alice", "exp": exp, "nbf": now() + 3600})),
        token_with(json!({"sub": "alice", "exp": exp, "iat": now() + 3600})),
        "not-a-jwt".to_string(),
    ];
    for token in tokens {
        let closed = refused_with(&server, &format!("?token={token}"), &[]);
        assert_eq!(closed, (1008, "invalid token".into()), "{token}");
    }
}

/// The token in the query string: welcome as the first frame, full shape.
#[test]
fn query_auth_gets_the_welcome() {
    let server = TestServer::start();
    let client = server.connect("alice");
    let welcome = &client.welcome;
    assert_eq!(welcome["type"], "message");
    assert_eq!(welcome["role"], "system");
    assert!(welcome["session_id"].is_null());
    let id = welcome["id"].as_str().unwrap();
    assert!(id.starts_with("msg_") && id.len() == 36, "{id}");
    assert!(welcome["content"]["text"]
        .as_str()
        .unwrap()
        .contains("safe"));
    assert!(welcome["timestamp"].as_str().unwrap().ends_with('Z'));
    let meta = &welcome["metadata"];
    assert_eq!(meta["player_id"], "alice");
    assert!(meta["connection_id"].as_str().unwrap().starts_with("conn_"));
    assert!(meta["server_time"].as_str().unwrap().ends_with('Z'));
    assert_eq!(meta["heartbeat_interval_s"], 10);
    assert!(meta["features"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f == "chat"));
    assert_eq!(meta["safety"]["crisis"], false);
}

/// A Bearer header works too; when both are present the query wins.
#[test]
fn header_auth_and_query_precedence() {
    let server = TestServer::start();
    let header = [("Authorization", format!("Bearer {}", server.token("bob")))];
    let mut client = Client::open(&server.ws_url(""), &header);
    let welcome = client.recv();
    assert_eq!(welcome["metadata"]["player_id"], "bob");

    let closed = refused_with(&server, "?token=garbage", &header);
    assert_eq!(closed, (1008, "invalid token".into()));
}

/// A configured issuer and audience are checked.
#[test]
fn issuer_and_audience_are_checked_when_configured() {
    let server = TestServer::with_config(|config| {
        config.auth.issuer = "hearth-tests".into();
        config.auth.audience = "players".into();
    });
    let exp = now() + 600;
    let good = token_with(json!({"sub": "a", "exp": exp, "iss": "hearth-tests", "aud": "players"}));
    let mut client = Client::open(&server.ws_url(&format!("?token={good}")), &[]);
    assert_eq!(client.recv()["metadata"]["event"], "connected");
    for bad in [
        token_with(json!({"sub": "a", "exp": exp, "iss": "other", "aud": "players"})),
        token_with(json!({"sub": "a", "exp": exp, "iss": "hearth-tests", "aud": "others"})),
        token_with(json!({"sub": "a", "exp": exp})),
    ] {
        let closed = refused_with(&server, &format!("?token={bad}"), &[]);
        assert_eq!(closed, (1008, "invalid token".into()));
    }
}

/// A refused connection never counts as open.
#[test]
fn refusals_leave_no_connection_behind() {
    let server = TestServer::start();
    refused_with(&server, "", &[]);
    server.wait_for_metrics("connections back to 0", |m| m["connections"] == 0);
}
