//! `/metrics` (Prometheus text) and `/api/metrics` (JSON): the names and
//! shapes of docs/protocol.md section 8, and figures that move as frames flow.

mod common;

use common::{prometheus, sample, TestServer};
use serde_json::{json, Value};

const ACTORS: [&str; 5] = [
    "chat_server",
    "chat_processor",
    "exercise_flow",
    "broadcaster",
    "session",
];

/// Every series docs/protocol.md (section 8) names is exposed, with the actor label on each
/// actor series.
#[test]
fn prometheus_exposes_the_named_series() {
    let server = TestServer::start();
    let text = prometheus(&server);
    for (name, kind) in [
        ("hearth_connections", "gauge"),
        ("hearth_connections_total", "counter"),
        ("hearth_messages_in_total", "counter"),
        ("hearth_messages_out_total", "counter"),
        ("hearth_crisis_detected_total", "counter"),
        ("hearth_crisis_categories_total", "counter"),
        ("hearth_actor_handled_total", "counter"),
        ("hearth_actor_backlog", "gauge"),
        ("hearth_actor_handle_seconds", "histogram"),
        ("hearth_publications_total", "counter"),
        ("hearth_deliveries_total", "counter"),
        ("hearth_slow_consumer_closes_total", "counter"),
        ("hearth_rate_limited_total", "counter"),
        ("hearth_process_resident_memory_bytes", "gauge"),
        ("hearth_subscriptions", "gauge"),
    ] {
        assert!(
            text.contains(&format!("# TYPE {name} {kind}")),
            "{name} {kind}"
        );
    }
    for actor in ACTORS {
        sample(
            &text,
            &format!("hearth_actor_handled_total{{actor=\"{actor}\"}}"),
        );
        sample(&text, &format!("hearth_actor_backlog{{actor=\"{actor}\"}}"));
        sample(
            &text,
            &format!("hearth_actor_handle_seconds_count{{actor=\"{actor}\"}}"),
        );
    }
    assert!(sample(&text, "hearth_process_resident_memory_bytes") > 0.0);
    // Every clinical category is there before its first detection.
    for category in ["wish_dead", "method", "farewell", "self_harm", "panic"] {
        let series = format!("hearth_crisis_categories_total{{category=\"{category}\"}}");
        assert_eq!(sample(&text, &series), 0.0, "{series}");
    }
}

/// The JSON shape: the five counters and, per actor, handled, backlog and
/// two quantiles.
#[test]
fn the_json_has_the_protocol_shape() {
    let server = TestServer::start();
    let metrics = server.metrics();
    for key in [
        "connections",
        "connections_total",
        "messages_in",
        "messages_out",
        "crisis_detected",
    ] {
        assert!(
            metrics[key].is_u64() || metrics[key].is_i64(),
            "{key}: {metrics}"
        );
    }
    for actor in ACTORS {
        let figures = &metrics["actors"][actor];
        for key in ["handled", "backlog", "p50_us", "p99_us"] {
            assert!(figures[key].is_u64(), "{actor}.{key}: {figures}");
        }
    }
}

fn handled(metrics: &Value, actor: &str) -> u64 {
    metrics["actors"][actor]["handled"].as_u64().unwrap()
}

/// Chatting, exercising and publishing move the right actors' figures, the
/// counters and the close codes.
#[test]
fn figures_move_as_frames_flow() {
    const KEY: &str = "metrics-key-0123456789abcdef0123456789";
    let server = TestServer::with_config(|config| config.api.key = KEY.into());
    let before = server.metrics();
    let mut client = server.connect("alice");
    client.say("m", "I want to end it all");
    client.click("s", "ex_breathing");
    client.request("sub", json!({"type": "subscribe", "channels": ["news:m"]}));
    let (status, _) = common::http_post(
        &server.http_url("/api/publish"),
        &json!({"channel": "news:m", "data": 1}),
        Some(KEY),
    );
    assert_eq!(status, 200);
    assert_eq!(client.recv()["event"], "publication");
    client.close();

    let after = server.wait_for_metrics("the close counted", |m| m["connections"] == 0);
    assert_eq!(after["crisis_detected"], 1);
    assert_eq!(
        after["crisis_categories"],
        json!({"active_ideation": 1}),
        "{after}"
    );
    assert_eq!(after["publications"], 1);
    assert_eq!(after["deliveries"], 1);
    assert_eq!(after["closes"]["1000"], 1, "{after}");
    // A code of the client's own choosing is counted as "other".
    let odd = server.connect("odd");
    odd.close_with(tungstenite::protocol::frame::coding::CloseCode::from(4999));
    let after = server.wait_for_metrics("the odd close counted", |m| m["connections"] == 0);
    assert_eq!(after["closes"]["other"], 1, "{after}");
    assert!(after["closes"].get("4999").is_none(), "{after}");
    assert!(handled(&after, "chat_processor") > handled(&before, "chat_processor"));
    assert!(handled(&after, "exercise_flow") > handled(&before, "exercise_flow"));
    assert!(handled(&after, "broadcaster") > handled(&before, "broadcaster"));
    assert!(handled(&after, "chat_server") > handled(&before, "chat_server"));
    // welcome, reply, interactive, subscribe response, publication: each
    // written by the session, plus the four frames it read.
    assert!(handled(&after, "session") >= 4, "{after}");
    assert!(
        after["actors"]["chat_processor"]["p99_us"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert!(after["process_rss_bytes"].as_u64().unwrap() > 0);

    let text = prometheus(&server);
    assert_eq!(sample(&text, "hearth_crisis_detected_total"), 1.0);
    assert_eq!(
        sample(
            &text,
            "hearth_crisis_categories_total{category=\"active_ideation\"}"
        ),
        1.0
    );
    assert_eq!(sample(&text, "hearth_connections"), 0.0);
    assert!(
        sample(
            &text,
            "hearth_actor_handled_total{actor=\"chat_processor\"}"
        ) >= 1.0
    );
    assert_eq!(sample(&text, "hearth_closes_total{code=\"1000\"}"), 1.0);
}

/// Refusals are counted by reason; a connection's wait for its welcome and
/// its whole length are histograms.
#[test]
fn refusals_welcomes_and_durations_are_measured() {
    let server = TestServer::start();
    for (query, reason) in [
        ("", "missing_token"),
        ("?token=not-a-token", "invalid_token"),
    ] {
        let mut refused = common::Client::open(&server.ws_url(query), &[]);
        assert_eq!(refused.expect_close().0, 1008, "{reason}");
    }
    let client = server.connect("alice");
    client.close();
    // Its duration is counted before the open count drops.
    server.wait_for_metrics("the connection closed", |m| m["connections"] == 0);
    let text = prometheus(&server);
    assert_eq!(
        sample(&text, "hearth_connection_duration_seconds_count"),
        1.0
    );
    for reason in ["missing_token", "invalid_token"] {
        let series = format!("hearth_connections_refused_total{{reason=\"{reason}\"}}");
        assert_eq!(sample(&text, &series), 1.0, "{series}");
    }
    let never = "hearth_connections_refused_total{reason=\"server_full\"}";
    assert_eq!(sample(&text, never), 0.0, "every reason from zero");
    assert_eq!(sample(&text, "hearth_welcome_seconds_count"), 1.0);
    let json = server.metrics();
    assert_eq!(json["connections_refused"]["invalid_token"], 1, "{json}");
    assert!(json["welcome_p99_us"].as_u64().is_some(), "{json}");
}

/// `[metrics] require_key`: the public port's metrics need the API key.
#[test]
fn metrics_can_require_the_api_key() {
    const KEY: &str = "metrics-key-0123456789abcdef0123456789";
    let server = TestServer::with_config(|config| {
        config.api.key = KEY.into();
        config.metrics.require_key = true;
    });
    for path in ["/metrics", "/api/metrics"] {
        let (status, _) = common::http_get(&server.http_url(path), None);
        assert_eq!(status, 401, "{path} without the key");
        let (status, _) = common::http_get(&server.http_url(path), Some(KEY));
        assert_eq!(status, 200, "{path} with the key");
    }
}

/// `[metrics] bind`: metrics, health and readiness on an admin listener of
/// their own, and no metrics (nor anything else of a client's) there or on
/// the public port the other way round.
#[test]
fn metrics_can_move_to_an_admin_listener() {
    let server = TestServer::with_config(|config| config.metrics.bind = "127.0.0.1:0".into());
    let admin = server.admin_addr.expect("an admin listener");
    for path in ["/metrics", "/api/metrics"] {
        let (status, _) = common::http_get(&server.http_url(path), None);
        assert_eq!(status, 404, "{path} on the public port");
        let (status, _) = common::http_get(&format!("http://{admin}{path}"), None);
        assert_eq!(status, 200, "{path} on the admin listener");
    }
    for path in ["/healthz", "/readyz"] {
        let (status, _) = common::http_get(&format!("http://{admin}{path}"), None);
        assert_eq!(status, 200, "{path} on the admin listener");
    }
    let (status, _) = common::http_get(&format!("http://{admin}/api/publish"), None);
    assert_eq!(status, 404, "the server API stays on the public port");
    server.connect("alice").close();
}

/// The assistant's figures are in the JSON too (the dashboard shows them):
/// a completed reply counts once, with its deltas.
#[test]
fn the_json_counts_assistant_replies() {
    let server = TestServer::start();
    let mut client = server.connect("metrics-assistant");
    let session = common::sessions::new_session(&mut client);
    let (_, reply) = common::sessions::send(&mut client, &session, "I had a long day at work");
    let log = common::sessions::read_reply(&mut client, &session, &reply);
    assert_eq!(log.end_event, "message.completed");
    let metrics = server.wait_for_metrics("the reply counted", |m| {
        m["assistant"]["replies"]["completed"] == 1
    });
    let assistant = &metrics["assistant"];
    assert_eq!(assistant["deltas"], log.deltas.len() as u64, "{assistant}");
    assert_eq!(assistant["replies_active"], 0, "{assistant}");
    assert_eq!(assistant["cancels"], 0, "{assistant}");
}
