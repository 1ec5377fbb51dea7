//! The therapeutic chat: assistant replies with safety metadata, crisis
//! resources, exercise buttons, sessions, typing, streaming and feedback.

mod common;

use common::TestServer;
use serde_json::{json, Value};

fn element_ids(message: &Value) -> Vec<String> {
    message["content"]["elements"]
        .as_array()
        .expect("elements array")
        .iter()
        .map(|e| e["id"].as_str().expect("element id").to_string())
        .collect()
}

/// A plain message gets an assistant reply of the full shape, and the reply
/// is the engine's words, not an echo.
#[test]
fn a_user_message_gets_an_assistant_reply() {
    let server = TestServer::start();
    let mut client = server.connect("alice");
    let text = "I had a long day at work and my boss was unfair";
    let reply = client.say("m1", text);
    assert_eq!(reply["type"], "message");
    assert_eq!(reply["role"], "assistant");
    assert_eq!(reply["reply_to"], "m1");
    let id = reply["id"].as_str().unwrap();
    assert!(id.starts_with("msg_") && id.len() == 36);
    assert!(id[4..]
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    assert!(reply["session_id"].as_str().unwrap().starts_with("sess_"));
    let answer = reply["content"]["text"].as_str().unwrap();
    assert!(!answer.is_empty() && answer != text);
    assert!(
        !answer.contains("unfair"),
        "the reply should not parrot: {answer}"
    );
    assert_eq!(reply["content"]["elements"], json!([]));
    let timestamp = reply["timestamp"].as_str().unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(timestamp).is_ok());
    assert!(timestamp.ends_with('Z'));
    assert!(reply["metadata"]["recommendations"].is_array());
    assert_eq!(
        reply["metadata"]["safety"],
        json!({"crisis": false, "types": []})
    );
}

/// Anxious text offers the two guided exercises as buttons.
#[test]
fn anxious_text_offers_the_exercises() {
    let server = TestServer::start();
    let mut client = server.connect("alice");
    let reply = client.say("a1", "I feel so anxious and overwhelmed about tomorrow");
    assert_eq!(reply["metadata"]["safety"]["crisis"], false);
    let elements = &reply["content"]["elements"];
    assert_eq!(
        elements,
        &json!([
            {"type": "button", "id": "ex_breathing", "label": "Try 4-7-8 breathing"},
            {"type": "button", "id": "ex_grounding", "label": "5-4-3-2-1 grounding"},
        ])
    );
    // A stress cue in the conversation shapes recommendations.
    let titles: Vec<&str> = reply["metadata"]["recommendations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["title"].as_str().unwrap())
        .collect();
    assert!(titles.contains(&"Stress Management Focus"), "{titles:?}");
}

/// Crisis text: crisis true with its types, resources first (emergency ones
/// first), then the exercises; the counter grows; the reply does not repeat
/// the user's words.
#[test]
fn crisis_text_surfaces_resources() {
    let server = TestServer::start();
    let before = server.metrics()["crisis_detected"].as_u64().unwrap();
    let mut client = server.connect("alice");
    let reply = client.say(
        "c1",
        "I don't want to live anymore, I just want to end it all",
    );
    let safety = &reply["metadata"]["safety"];
    assert_eq!(safety["crisis"], true);
    assert!(safety["types"]
        .as_array()
        .unwrap()
        .contains(&json!("suicidal_ideation")));
    let elements = reply["content"]["elements"].as_array().unwrap();
    assert_eq!(elements[0]["type"], "resource");
    assert_eq!(elements[0]["emergency"], true);
    let resources: Vec<&Value> = elements
        .iter()
        .filter(|e| e["type"] == "resource")
        .collect();
    assert!(resources.len() >= 3);
    let first_non_emergency = resources.iter().position(|r| r["emergency"] == false);
    if let Some(cut) = first_non_emergency {
        assert!(resources[cut..].iter().all(|r| r["emergency"] == false));
    }
    let lifeline = resources
        .iter()
        .find(|r| r["id"] == "lifeline_988")
        .expect("988 offered");
    assert_eq!(lifeline["method"], "phone");
    assert_eq!(lifeline["info"], "988");
    assert!(element_ids(&reply).contains(&"ex_breathing".to_string()));
    let answer = reply["content"]["text"].as_str().unwrap().to_lowercase();
    assert!(answer.contains("help is available"));
    assert!(!answer.contains("end it all"));
    server.wait_for_metrics("crisis counter", |m| {
        m["crisis_detected"].as_u64() == Some(before + 1)
    });
}

/// Idioms do not raise the alarm.
#[test]
fn idioms_are_not_crises() {
    let server = TestServer::start();
    let mut client = server.connect("alice");
    for (n, text) in [
        "this homework is killing me",
        "my phone died",
        "I could kill for a pizza",
    ]
    .into_iter()
    .enumerate()
    {
        let reply = client.say(&format!("i{n}"), text);
        assert_eq!(reply["metadata"]["safety"]["crisis"], false, "{text}");
    }
    assert_eq!(server.metrics()["crisis_detected"], 0);
}

/// Without a session_id the player's active session is created once and
/// reused; a named session is used and becomes the active one.
#[test]
fn sessions_are_created_reused_and_named() {
    let server = TestServer::start();
    let mut client = server.connect("alice");
    let first = client.say("s1", "hello")["session_id"].clone();
    let second = client.say("s2", "hello again")["session_id"].clone();
    assert!(first.as_str().unwrap().starts_with("sess_"));
    assert_eq!(first, second);

    let named = client.request(
        "s3",
        json!({"type": "user_message", "session_id": "evening-1", "content": {"text": "hi"}}),
    );
    assert_eq!(named["session_id"], "evening-1");
    assert_eq!(client.say("s4", "and now?")["session_id"], "evening-1");

    // Another connection of the same player shares the active session.
    let mut other = server.connect("alice");
    assert_eq!(other.say("s5", "from my phone")["session_id"], "evening-1");
    // Another player does not.
    let mut bob = server.connect("bob");
    assert_ne!(bob.say("s6", "hi")["session_id"], "evening-1");
}

/// `typing=1`: start, the reply, stop; without it, no typing events.
#[test]
fn typing_events_only_when_asked() {
    let server = TestServer::start();
    let mut typing = server.connect_query("alice", "&typing=1");
    typing.send_json(json!({"type": "user_message", "id": "t1", "content": {"text": "hi"}}));
    let start = typing.recv();
    assert_eq!(start["role"], "system");
    assert_eq!(
        start["content"],
        json!({"event": "typing", "status": "start"})
    );
    let reply = typing.recv();
    assert_eq!(reply["role"], "assistant");
    let stop = typing.recv();
    assert_eq!(
        stop["content"],
        json!({"event": "typing", "status": "stop"})
    );
    assert_eq!(stop["session_id"], reply["session_id"]);

    let mut plain = server.connect_query("bob", "&typing=no");
    let reply = plain.say("p1", "hi");
    assert_eq!(reply["role"], "assistant");
    plain.expect_quiet();
}

/// `stream=1`: chunks whose concatenation is the full text, then the full
/// message with the same id.
#[test]
fn streaming_sends_chunks_then_the_message() {
    let server = TestServer::start();
    let mut client = server.connect_query("alice", "&stream=TRUE");
    client.send_json(
        json!({"type": "user_message", "id": "st", "content": {"text": "I feel anxious"}}),
    );
    let mut text = String::new();
    let mut expected_index = 0;
    let message_id = loop {
        let chunk = client.recv();
        assert_eq!(chunk["type"], "chunk", "{chunk}");
        assert_eq!(chunk["index"], expected_index);
        assert_eq!(chunk["reply_to"], "st");
        text.push_str(chunk["text"].as_str().unwrap());
        expected_index += 1;
        if chunk["final"] == true {
            break chunk["message_id"].clone();
        }
    };
    let full = client.recv();
    assert_eq!(full["type"], "message");
    assert_eq!(full["id"], message_id);
    assert_eq!(full["content"]["text"], text);
}

/// Feedback is answered by a system message with recommendations, and a low
/// rating changes what is recommended.
#[test]
fn feedback_adapts_recommendations() {
    let server = TestServer::start();
    let mut client = server.connect("alice");
    let reply = client.request(
        "f1",
        json!({"type": "feedback", "content": {"rating": 1, "text": "it was too fast and boring"}}),
    );
    assert_eq!(reply["role"], "system");
    assert!(reply["content"]["text"]
        .as_str()
        .unwrap()
        .starts_with("Feedback processed."));
    assert!(reply["session_id"].as_str().unwrap().starts_with("sess_"));
    let elements = reply["content"]["elements"].as_array().unwrap();
    assert!(elements.iter().all(|e| e["type"] == "recommendation"));
    let labels: Vec<&str> = elements
        .iter()
        .map(|e| e["label"].as_str().unwrap())
        .collect();
    assert_eq!(
        labels,
        [
            "Adjust Therapeutic Intensity",
            "Slow Down Pacing",
            "Increase Engagement"
        ]
    );
    let adjustments = &reply["metadata"]["adjustments"];
    assert!(adjustments
        .as_array()
        .unwrap()
        .contains(&json!("reduce_intensity")));

    // The next assistant reply carries the same recommendations.
    let next = client.say("m1", "hello");
    let titles: Vec<&str> = next["metadata"]["recommendations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["title"].as_str().unwrap())
        .collect();
    assert!(
        titles.contains(&"Adjust Therapeutic Intensity"),
        "{titles:?}"
    );
    let first = &next["metadata"]["recommendations"][0];
    for key in [
        "recommendation_id",
        "title",
        "description",
        "recommendation_type",
        "priority",
    ] {
        assert!(!first[key].is_null(), "{key} in {first}");
    }

    // Text-only feedback is accepted.
    let text_only = client.request(
        "f2",
        json!({"type": "feedback", "content": {"text": "helpful"}}),
    );
    assert_eq!(
        text_only["metadata"]["adjustments"],
        json!(["maintain_current_approach"])
    );
}

/// A crisis happening now is marked `severity: "crisis"` and answered by
/// saying to call now; one thought about is a `concern`. A Spanish message
/// gets the Spanish line first.
#[test]
fn severity_and_language_shape_the_crisis_reply() {
    let server = TestServer::start();
    let mut client = server.connect("alice");
    let now = client.say(
        "n",
        "the pills are in my hand right now and i'm taking them all",
    );
    assert_eq!(now["metadata"]["safety"]["severity"], "crisis", "{now}");
    assert_eq!(
        now["metadata"]["safety"]["categories"],
        json!(["method"]),
        "{now}"
    );
    assert!(now["content"]["text"]
        .as_str()
        .unwrap()
        .starts_with("Please call 988 or 911"));
    let thought = client.say("t", "sometimes i wish i could just disappear forever");
    assert_eq!(
        thought["metadata"]["safety"]["severity"], "concern",
        "{thought}"
    );
    assert_eq!(
        thought["metadata"]["safety"]["categories"],
        json!(["wish_dead"]),
        "{thought}"
    );
    let calm = client.say("c", "had a nice walk today");
    assert!(
        calm["metadata"]["safety"].get("severity").is_none(),
        "{calm}"
    );
    assert!(
        calm["metadata"]["safety"].get("categories").is_none(),
        "{calm}"
    );
    let spanish = client.say("s", "ya no quiero vivir, estoy cansada de todo");
    assert_eq!(spanish["metadata"]["safety"]["crisis"], true, "{spanish}");
    assert_eq!(spanish["content"]["elements"][0]["id"], "lifeline_988_es");
    let english = client.say("e", "i don't want to live anymore");
    let ids: Vec<&str> = english["content"]["elements"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["id"].as_str())
        .collect();
    assert!(!ids.contains(&"lifeline_988_es"), "{ids:?}");
}

/// The text of feedback is checked for a crisis like a chat message: the
/// resources come first, the safety verdict says so, and it is counted.
#[test]
fn a_crisis_written_in_feedback_is_answered_with_help() {
    let server = TestServer::start();
    let mut client = server.connect("alice");
    let reply = client.request(
        "f1",
        json!({"type": "feedback", "content": {"rating": 1, "text": "none of this helps, I want to kill myself"}}),
    );
    assert_eq!(reply["metadata"]["safety"]["crisis"], true, "{reply}");
    assert_eq!(
        reply["content"]["elements"][0]["type"], "resource",
        "{reply}"
    );
    assert_eq!(reply["content"]["elements"][0]["emergency"], true);
    let adjustments = reply["metadata"]["adjustments"].as_array().unwrap();
    for adjustment in [
        "enable_crisis_monitoring",
        "reduce_intensity",
        "provide_support_resources",
    ] {
        assert!(adjustments.contains(&json!(adjustment)), "{adjustment}");
    }
    assert_eq!(server.metrics()["crisis_detected"], 1);
    let calm = client.request(
        "f2",
        json!({"type": "feedback", "content": {"text": "helpful"}}),
    );
    assert_eq!(calm["metadata"]["safety"]["crisis"], false);
}

/// `ping` -> `pong` with the id echoed; without an id, no reply_to.
#[test]
fn ping_pong() {
    let server = TestServer::start();
    let mut client = server.connect("alice");
    let pong = client.request("p", json!({"type": "ping"}));
    assert_eq!(pong, json!({"type": "pong", "reply_to": "p"}));
    client.send_json(json!({"type": "ping"}));
    assert_eq!(client.recv(), json!({"type": "pong"}));
}
