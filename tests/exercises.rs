//! Guided exercises: start, completion recorded once per run as a durable
//! progress marker, the progress endpoint, and markers across a restart.

mod common;

use common::{test_config, TestServer};
use hearth_actors::support::test_services::require_service;
use serde_json::{json, Value};

const KEY: &str = "test-api-key-0123456789abcdef0123456789";

fn with_key() -> TestServer {
    TestServer::with_config(|config| config.api.key = KEY.into())
}

fn markers(server: &TestServer, player: &str) -> Vec<Value> {
    let (status, body) = server.get(&format!("/api/players/{player}/progress"), Some(KEY));
    assert_eq!(status, 200, "{body}");
    body["markers"].as_array().expect("markers array").clone()
}

fn progress_id(reply: &Value) -> String {
    let elements = reply["content"]["elements"].as_array().unwrap();
    assert_eq!(elements.len(), 1, "{reply}");
    assert_eq!(elements[0]["type"], "progress");
    assert_eq!(elements[0]["label"], "Progress recorded");
    elements[0]["id"].as_str().unwrap().to_string()
}

/// Runs the grounding exercise `times` times; the markers earned, in order.
fn complete_grounding(client: &mut common::Client, times: usize) -> Vec<String> {
    (0..times)
        .map(|run| {
            client.click(&format!("s{run}"), "ex_grounding");
            progress_id(&client.click(&format!("c{run}"), "ex_grounding_complete"))
        })
        .collect()
}

/// Starting an exercise: its steps and a Complete button.
#[test]
fn starting_an_exercise_gives_steps_and_complete() {
    let server = TestServer::start();
    let mut client = server.connect("alice");
    let reply = client.click("b1", "ex_breathing");
    assert_eq!(reply["role"], "interactive");
    assert_eq!(reply["reply_to"], "b1");
    assert!(reply["session_id"].as_str().unwrap().starts_with("sess_"));
    let elements = reply["content"]["elements"].as_array().unwrap();
    assert_eq!(elements.len(), 2);
    assert_eq!(elements[0]["type"], "instruction");
    assert_eq!(elements[0]["id"], "ex_breathing_steps");
    let steps = elements[0]["label"].as_str().unwrap();
    assert!(
        steps.contains('4') && steps.contains('7') && steps.contains('8'),
        "{steps}"
    );
    assert_eq!(
        elements[1],
        json!({"type": "button", "id": "ex_breathing_complete", "label": "Complete"})
    );
}

/// Completion records one marker; clicking Complete again records nothing
/// more and answers with the same id; a new run records a new marker.
#[test]
fn completion_records_one_marker_per_run() {
    let server = with_key();
    let mut client = server.connect("alice");
    client.click("s", "ex_breathing");
    let marker = progress_id(&client.click("c1", "ex_breathing_complete"));
    assert!(marker.starts_with("pm_"), "{marker}");
    assert_eq!(
        progress_id(&client.click("c2", "ex_breathing_complete")),
        marker
    );

    let listed = markers(&server, "alice");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["marker_id"], marker.as_str());
    assert_eq!(listed[0]["marker_type"], "SKILL_ACQUIRED");
    let session = listed[0]["session_id"]
        .as_str()
        .expect("the session it was earned in");
    assert!(session.starts_with("sess_"), "{session}");
    assert_eq!(
        listed[0]["description"],
        "Completed guided exercise: ex_breathing"
    );
    assert_eq!(listed[0]["therapeutic_value"], 0.2);
    assert!(listed[0]["achieved_at"].as_str().unwrap().ends_with('Z'));

    client.click("s2", "ex_breathing");
    let second = progress_id(&client.click("c3", "ex_breathing_complete"));
    assert_ne!(second, marker);
    let listed = markers(&server, "alice");
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[1]["marker_id"], second.as_str(), "newest last");
    assert!(markers(&server, "bob").is_empty());
}

/// The progress listing comes in pages, oldest first: `limit` and the
/// `next` cursor passed back as `after`; bad paging is a 400.
#[test]
fn progress_is_listed_in_pages() {
    let server = with_key();
    let mut client = server.connect("alice");
    let earned = complete_grounding(&mut client, 3);
    let (status, first) = server.get("/api/players/alice/progress?limit=2", Some(KEY));
    assert_eq!(status, 200, "{first}");
    let ids = |page: &Value| -> Vec<String> {
        page["markers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["marker_id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&first), earned[..2]);
    let next = first["next"].as_str().expect("a next cursor");
    let (_, rest) = server.get(
        &format!("/api/players/alice/progress?limit=2&after={next}"),
        Some(KEY),
    );
    assert_eq!(ids(&rest), earned[2..]);
    assert!(rest.get("next").is_none(), "{rest}");
    for bad in ["limit=0", "limit=1001", "after=-1", "after=x"] {
        let (status, _) = server.get(&format!("/api/players/alice/progress?{bad}"), Some(KEY));
        assert_eq!(status, 400, "{bad}");
    }
}

/// Past the per-player bound a completion is refused `limit_exceeded`, and
/// every marker already earned is kept; another player is unaffected.
#[test]
fn markers_past_the_bound_are_refused_and_nothing_is_dropped() {
    let server = TestServer::with_config(|config| {
        config.api.key = KEY.into();
        config.limits.progress_markers_per_player = 2;
    });
    let mut client = server.connect("alice");
    let earned = complete_grounding(&mut client, 2);
    client.click("s2", "ex_breathing");
    let refused = client.click("c2", "ex_breathing_complete");
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["code"], "limit_exceeded", "{refused}");
    let kept: Vec<String> = markers(&server, "alice")
        .iter()
        .map(|m| m["marker_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kept, earned);
    let mut bob = server.connect("bob");
    bob.click("s", "ex_grounding");
    progress_id(&bob.click("c", "ex_grounding_complete"));
}

/// Completing an exercise that was never started records nothing and
/// offers to start it.
#[test]
fn completion_without_a_start_asks_to_start_first() {
    let server = with_key();
    let mut client = server.connect("alice");
    let reply = client.click("c", "ex_grounding_complete");
    let elements = reply["content"]["elements"].as_array().unwrap();
    assert_eq!(elements[0]["type"], "instruction");
    assert_eq!(elements[0]["id"], "ex_grounding_start_first");
    assert_eq!(
        elements[1],
        json!({"type": "button", "id": "ex_grounding", "label": "5-4-3-2-1 grounding"})
    );
    assert!(markers(&server, "alice").is_empty());
}

/// Any other button is acknowledged.
#[test]
fn other_buttons_are_acknowledged() {
    let server = TestServer::start();
    let mut client = server.connect("alice");
    let reply = client.click("x", "open_map");
    assert_eq!(reply["role"], "interactive");
    assert_eq!(
        reply["content"]["elements"],
        json!([{"type": "ack", "id": "open_map", "label": "Received"}])
    );
    let reply = client.click("y", "unknown_complete");
    assert_eq!(reply["content"]["elements"][0]["type"], "ack");
}

/// Markers survive a restart of the server on the same store.
#[test]
fn markers_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path().join("progress.db"));
    config.api.key = KEY.into();

    let first = TestServer::start_with(config.clone());
    let mut client = first.connect("alice");
    client.click("s", "ex_grounding");
    let marker = progress_id(&client.click("c", "ex_grounding_complete"));
    drop(client);
    first.stop();

    let second = TestServer::start_with(config);
    let listed = markers(&second, "alice");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["marker_id"], marker.as_str());
}

/// The progress endpoint's key rules: 403 with no key configured, 401 for a
/// missing or wrong key, 400 for a bad player id.
#[test]
fn the_progress_endpoint_needs_the_api_key() {
    let off = TestServer::start();
    assert_eq!(off.get("/api/players/alice/progress", None).0, 403);
    assert_eq!(
        off.get("/api/players/alice/progress", Some("anything")).0,
        403
    );

    let on = with_key();
    assert_eq!(on.get("/api/players/alice/progress", None).0, 401);
    assert_eq!(on.get("/api/players/alice/progress", Some("wrong")).0, 401);
    assert_eq!(on.get("/api/players/alice/progress", Some(KEY)).0, 200);
    assert_eq!(on.get("/api/players/bad%20id/progress", Some(KEY)).0, 400);
}

/// A broadcast to a player reaches every connection of that player: a new
/// marker is announced to the player's other connections, and to no one
/// else.
#[test]
fn a_new_marker_reaches_the_players_other_connections() {
    let server = TestServer::start();
    let mut laptop = server.connect("alice");
    let mut phone = server.connect("alice");
    let mut tablet = server.connect("alice");
    let mut bob = server.connect("bob");
    laptop.click("s", "ex_breathing");
    let marker = progress_id(&laptop.click("c", "ex_breathing_complete"));
    for other in [&mut phone, &mut tablet] {
        let news = other.recv();
        assert_eq!(news["role"], "system");
        assert_eq!(news["metadata"]["event"], "progress_recorded");
        assert_eq!(news["content"]["elements"][0]["id"], marker.as_str());
        assert!(news.get("reply_to").is_none());
    }
    // Completing again is not news.
    laptop.click("c2", "ex_breathing_complete");
    phone.expect_quiet();
    laptop.expect_quiet();
    bob.expect_quiet();
}

/// With `progress.kind = "postgres"`, two servers share one store: a marker
/// recorded through one is listed by the other (the cluster-mode store).
#[test]
fn markers_are_shared_through_postgres() {
    let url = require_service!(Postgres);
    let player = format!("pg{}", uuid::Uuid::new_v4().simple());
    let node = || {
        TestServer::with_config(|config| {
            config.api.key = KEY.into();
            config.progress.kind = "postgres".into();
            config.progress.url = url.clone();
        })
    };
    let first = node();
    let second = node();
    let mut client = first.connect(&player);
    client.click("s", "ex_grounding");
    let marker = progress_id(&client.click("c", "ex_grounding_complete"));
    let listed = markers(&second, &player);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["marker_id"], marker.as_str());
    assert_eq!(
        listed[0]["description"],
        "Completed guided exercise: ex_grounding"
    );
    // Clean up this run's rows.
    std::thread::spawn(move || {
        let mut db = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
        db.execute(
            "DELETE FROM progress_markers WHERE player_id = $1",
            &[&player],
        )
        .expect("clean up");
    })
    .join()
    .expect("clean-up thread");
}
