//! Agents and tools (docs/protocol.md, section 10.4): `agents.list`,
//! `agents.get` and `tools.list`; a session bound to its agent and pillar
//! when it is created; the agents' WebSocket paths; the agent's
//! instructions in what the model is told; and the built-in engine's use
//! of a tool, visible on the reply stream and in the figures.

mod common;

use common::fake_model::FakeModel;
use common::sessions::{call, new_session, ok, read_reply, send};
use common::{Client, TestServer};
use serde_json::{json, Value};

fn ids(list: &Value) -> Vec<&str> {
    list.as_array()
        .expect("a list")
        .iter()
        .map(|item| item["id"].as_str().unwrap_or_default())
        .collect()
}

#[test]
fn the_agents_and_tools_are_listed() {
    let server = TestServer::start();
    let mut client = server.connect("agents-list");
    let listed = ok(&mut client, "a", "agents.list", json!({}));
    assert_eq!(
        ids(&listed["agents"]),
        ["guide", "mindfulness", "sleep", "mood"]
    );
    let sleep = ok(&mut client, "g", "agents.get", json!({"agent_id": "sleep"}));
    assert_eq!(sleep["agent"]["pillar"], "sleep");
    assert_eq!(sleep["agent"]["name"], "Sleep liaison");
    assert!(sleep["agent"]["instructions"]
        .as_str()
        .is_some_and(|text| text.contains("sleep")));
    assert_eq!(
        sleep["agent"]["tools"],
        json!(["suggest_exercise", "list_progress", "find_resources"])
    );
    assert!(
        listed["agents"][0].get("pillar").is_none(),
        "the guide has none"
    );

    let missing = call(&mut client, "m", "agents.get", json!({"agent_id": "chef"}));
    assert_eq!(missing["code"], "not_found", "{missing}");
    let bad = call(&mut client, "b", "agents.get", json!({}));
    assert_eq!(bad["code"], "bad_request", "{bad}");

    let tools = ok(&mut client, "t", "tools.list", json!({}));
    let tools = tools["tools"].as_array().expect("tools");
    let names: Vec<&str> = tools.iter().filter_map(|t| t["name"].as_str()).collect();
    assert_eq!(
        names,
        [
            "suggest_exercise",
            "list_progress",
            "find_resources",
            "share_summary"
        ]
    );
    for tool in tools {
        let needs_approval = tool["name"] == "share_summary";
        assert_eq!(tool["requires_approval"], needs_approval, "{tool}");
        assert!(tool["description"].as_str().is_some_and(|d| !d.is_empty()));
    }
}

#[test]
fn a_session_is_bound_to_the_agent_and_pillar_it_names() {
    let server = TestServer::start();
    let mut client = server.connect("agents-bind");
    let create = |client: &mut Client, params: Value| call(client, "c", "sessions.create", params);
    let plain = create(&mut client, json!({}));
    assert_eq!(plain["result"]["session"]["agent"], "guide", "{plain}");
    assert_eq!(plain["result"]["session"]["pillar"], Value::Null);

    let sleep = create(&mut client, json!({"agent": "sleep"}));
    assert_eq!(sleep["result"]["session"]["agent"], "sleep", "{sleep}");
    assert_eq!(sleep["result"]["session"]["pillar"], "sleep");

    // The protocol's default agent is the guide, whatever the pillar.
    let mood = create(&mut client, json!({"pillar": "mood"}));
    assert_eq!(mood["result"]["session"]["agent"], "guide", "{mood}");
    assert_eq!(mood["result"]["session"]["pillar"], "mood");

    let guided = create(&mut client, json!({"agent": "guide", "pillar": "sleep"}));
    assert_eq!(guided["result"]["session"]["agent"], "guide", "{guided}");
    assert_eq!(guided["result"]["session"]["pillar"], "sleep");

    for params in [
        json!({"agent": "chef"}),
        json!({"pillar": "cooking"}),
        json!({"agent": "sleep", "pillar": "mood"}),
    ] {
        let refused = create(&mut client, params.clone());
        assert_eq!(refused["type"], "error", "{params}: {refused}");
        assert_eq!(refused["code"], "bad_request", "{params}: {refused}");
    }
    // What was refused was not created.
    let listed = ok(&mut client, "l", "sessions.list", json!({}));
    assert_eq!(listed["sessions"].as_array().map(Vec::len), Some(4));
}

#[test]
fn the_agents_paths_set_the_connections_agent() {
    let server = TestServer::start();
    for (path, agent) in [
        ("/api/ws/guide", "guide"),
        ("/api/ws/liaison/mindfulness", "mindfulness"),
        ("/api/ws/liaison/sleep", "sleep"),
        ("/api/ws/liaison/mood", "mood"),
    ] {
        // A player each: a v1 chat goes on in the player's active session.
        let mut client = server.connect_at(path, &format!("agents-paths-{agent}"), "");
        let session = ok(&mut client, "c", "sessions.create", json!({}));
        assert_eq!(session["session"]["agent"], agent, "{path}: {session}");
        // Naming another agent still wins, and chat works as on /ws/chat.
        let named = ok(
            &mut client,
            "n",
            "sessions.create",
            json!({"agent": "guide"}),
        );
        assert_eq!(named["session"]["agent"], "guide", "{path}");
        let said = client.say("s", "hello");
        assert_eq!(said["role"], "assistant", "{path}");
        // The v1 session the chat made is the path's agent's too.
        let v1 = said["session_id"]
            .as_str()
            .expect("a v1 session")
            .to_string();
        common::sessions::wait_for_messages(
            &mut client,
            &v1,
            2,
            common::FRAME_TIMEOUT,
            |messages| messages.len() == 2,
        );
        let recorded = ok(&mut client, "g", "sessions.get", json!({"session_id": v1}));
        assert_eq!(recorded["session"]["agent"], agent, "{path}: {recorded}");
    }
    for path in [
        "/api/ws/liaison/cooking",
        "/api/ws/liaison/",
        "/api/ws/other",
    ] {
        let url = format!("ws://{}{path}?token={}", server.addr, server.token("x"));
        match Client::try_open(&url, &[]) {
            Err(tungstenite::Error::Http(response)) => {
                assert_eq!(response.status().as_u16(), 404, "{path}");
            }
            other => panic!("{path}: expected 404, got {:?}", other.map(|_| "a socket")),
        }
    }
    // Without an upgrade, the agents' paths answer as /ws/chat does.
    let (status, body) = common::http_get(&server.http_url("/api/ws/liaison/sleep"), None);
    assert_eq!(status, 400, "{body}");
}

#[test]
fn the_model_is_told_the_sessions_agent() {
    let fake = FakeModel::start();
    let server = fake.server(|_| {});
    let mut client = server.connect("agents-model");
    let created = ok(
        &mut client,
        "c",
        "sessions.create",
        json!({"agent": "sleep"}),
    );
    let session = created["session"]["id"].as_str().expect("id").to_string();
    let (_, reply) = send(&mut client, &session, "I keep waking at 3am");
    assert_eq!(
        read_reply(&mut client, &session, &reply).end_event,
        "message.completed"
    );
    let guide_session = new_session(&mut client);
    let (_, reply) = send(&mut client, &guide_session, "a quiet day");
    read_reply(&mut client, &guide_session, &reply);

    let requests = fake.requests();
    assert_eq!(requests.len(), 2);
    let system = |request: &Value| {
        request["messages"][0]["content"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        system(&requests[0]).contains("Your role in this conversation: You are the sleep liaison."),
        "{}",
        system(&requests[0])
    );
    assert!(
        system(&requests[1]).contains("Your role in this conversation: You are the guide"),
        "{}",
        system(&requests[1])
    );
}

/// The built-in engine offers an anxious player an exercise through
/// `suggest_exercise`: the stream shows the call before the words, the
/// reply carries the button once, and the call is counted.
#[test]
fn the_builtin_engine_suggests_an_exercise_through_the_tool() {
    let server = TestServer::start();
    let mut client = server.connect("agents-tools");
    let session = new_session(&mut client);
    let (_, reply) = send(
        &mut client,
        &session,
        "I'm so anxious about my exam tomorrow",
    );
    let log = read_reply(&mut client, &session, &reply);
    assert_eq!(log.end_event, "message.completed");
    let at = |name: &str| log.events.iter().position(|event| event == name);
    let (started, completed) = (at("tool.started"), at("tool.completed"));
    let (Some(started), Some(completed)) = (started, completed) else {
        panic!("no tool events: {:?}", log.events);
    };
    let first_delta = at("message.delta").expect("deltas");
    assert!(
        started < completed && completed < first_delta,
        "{:?}",
        log.events
    );
    let status = &log.data[started - 1];
    assert_eq!(log.events[started - 1], "assistant.status");
    assert_eq!(status["status"], "tool", "{status}");
    let call = &log.data[started];
    assert_eq!(call["tool"], "suggest_exercise");
    assert_eq!(call["arguments"], json!({"exercise_id": "ex_breathing"}));
    assert_eq!(call["message_id"], reply.as_str());
    let done = &log.data[completed];
    assert_eq!(done["call_id"], call["call_id"]);
    assert_eq!(done["ok"], true);
    assert_eq!(done["summary"], "offered Try 4-7-8 breathing");

    assert_eq!(log.end["usage"]["tools_used"], json!(["suggest_exercise"]));
    let buttons: Vec<&Value> = log.end["elements"]
        .as_array()
        .expect("elements")
        .iter()
        .filter(|element| element["id"] == "ex_breathing")
        .collect();
    assert_eq!(buttons.len(), 1, "offered once: {}", log.end["elements"]);

    let metrics = server.wait_for_metrics("the call counted", |m| {
        m["assistant"]["tool_calls"]["suggest_exercise"] == 1
    });
    assert_eq!(
        metrics["assistant"]["tool_calls"]
            .as_object()
            .map(|o| o.len()),
        Some(1)
    );
    let text = common::prometheus(&server);
    assert_eq!(
        common::sample(
            &text,
            "hearth_tool_calls_total{outcome=\"ok\",tool=\"suggest_exercise\"}"
        ),
        1.0
    );

    // A calm message and a crisis call no tool.
    for text in ["I had a calm walk today", "I want to end my life"] {
        let (_, reply) = send(&mut client, &session, text);
        let log = read_reply(&mut client, &session, &reply);
        assert!(
            !log.events.iter().any(|e| e.starts_with("tool.")),
            "{text}: {:?}",
            log.events
        );
        assert!(log.end["usage"].get("tools_used").is_none(), "{text}");
    }
}
