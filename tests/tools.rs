//! A model's tool calls (docs/protocol.md, section 10.4), with the fake
//! OpenAI-compatible server calling Hearth's tools: the call's fragments
//! assembled, the tool run between `tool.started` and `tool.completed`, its
//! result fed back for the model's next step, and every bad call reported
//! to the model and in the stream without ending the reply.

mod common;

use common::fake_model::FakeModel;
use common::sessions::{
    approval_asked, frames_until_event, is_event, new_session, ok, read_reply, send, ReplyLog,
};
use common::Client;
use serde_json::{json, Value};

/// The `data` of each event named `name`, in order.
fn events<'a>(log: &'a ReplyLog, name: &str) -> Vec<&'a Value> {
    log.events
        .iter()
        .zip(&log.data)
        .filter(|(event, _)| *event == name)
        .map(|(_, data)| data)
        .collect()
}

fn ask(client: &mut Client, session: &str, text: &str) -> ReplyLog {
    let (_, reply) = send(client, session, text);
    let log = read_reply(client, session, &reply);
    assert_eq!(log.end_event, "message.completed", "{text}: {log:?}");
    log
}

/// The messages of the model request `index`.
fn messages(fake: &FakeModel, index: usize) -> Vec<Value> {
    fake.requests()[index]["messages"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn one_call_runs_and_its_result_reaches_the_model() {
    let fake = FakeModel::start();
    let server = fake.server(|_| {});
    let mut client = server.connect("tools-one");
    let session = new_session(&mut client);
    let log = ask(
        &mut client,
        &session,
        "help me settle [call:suggest_exercise]",
    );

    let started = events(&log, "tool.started");
    let completed = events(&log, "tool.completed");
    assert_eq!((started.len(), completed.len()), (1, 1), "{:?}", log.events);
    assert_eq!(started[0]["tool"], "suggest_exercise");
    assert_eq!(started[0]["call_id"], "call_0");
    assert_eq!(
        started[0]["arguments"],
        json!({"exercise_id": "ex_grounding"})
    );
    assert_eq!(completed[0]["ok"], true, "{}", completed[0]);
    assert_eq!(completed[0]["summary"], "offered 5-4-3-2-1 grounding");
    assert_eq!(log.joined(), "Used 1 tools.");
    assert_eq!(log.end["usage"]["tools_used"], json!(["suggest_exercise"]));
    assert_eq!(log.end["finish_reason"], "stop");
    assert!(
        log.end["elements"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["id"] == "ex_grounding"),
        "{}",
        log.end["elements"]
    );

    // The first request offered the guide's tools; the second carries the
    // call and its result.
    let requests = fake.requests();
    assert_eq!(requests.len(), 2);
    let offered: Vec<&str> = requests[0]["tools"]
        .as_array()
        .expect("tools offered")
        .iter()
        .filter_map(|tool| tool["function"]["name"].as_str())
        .collect();
    assert_eq!(
        offered,
        [
            "suggest_exercise",
            "list_progress",
            "find_resources",
            "share_summary"
        ]
    );
    assert_eq!(
        requests[0]["tools"][0]["function"]["parameters"]["type"],
        "object"
    );
    let second = messages(&fake, 1);
    let call = &second[second.len() - 2];
    assert_eq!(call["role"], "assistant");
    assert_eq!(call["tool_calls"][0]["id"], "call_0");
    assert_eq!(
        call["tool_calls"][0]["function"]["name"],
        "suggest_exercise"
    );
    let result = &second[second.len() - 1];
    assert_eq!(result["role"], "tool");
    assert_eq!(result["tool_call_id"], "call_0");
    let content: Value = serde_json::from_str(result["content"].as_str().unwrap()).unwrap();
    assert_eq!(content["offered"], "ex_grounding");
}

#[test]
fn parallel_calls_and_fragmented_arguments_are_assembled() {
    let fake = FakeModel::start();
    let server = fake.server(|_| {});
    let mut client = server.connect("tools-parallel");
    let session = new_session(&mut client);

    let log = ask(
        &mut client,
        &session,
        "[calls:find_resources,list_progress]",
    );
    let tools: Vec<&Value> = events(&log, "tool.completed");
    assert_eq!(tools.len(), 2, "{:?}", log.events);
    assert_eq!(tools[0]["tool"], "find_resources");
    assert_eq!(tools[1]["tool"], "list_progress");
    assert!(tools.iter().all(|t| t["ok"] == true), "{tools:?}");
    assert_eq!(tools[1]["summary"], "read 0 progress markers");
    assert_eq!(log.joined(), "Used 2 tools.");
    assert!(log.end["elements"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["id"] == "samhsa_helpline"));
    let second = messages(&fake, 1);
    let results: Vec<&Value> = second.iter().filter(|m| m["role"] == "tool").collect();
    let ids: Vec<&str> = results
        .iter()
        .filter_map(|m| m["tool_call_id"].as_str())
        .collect();
    assert_eq!(ids, ["call_0", "call_1"]);

    let log = ask(&mut client, &session, "[call-split:suggest_exercise:9]");
    let started = events(&log, "tool.started");
    assert_eq!(
        started[0]["arguments"],
        json!({"exercise_id": "ex_grounding"})
    );
    assert_eq!(events(&log, "tool.completed")[0]["ok"], true);
}

#[test]
fn bad_calls_are_told_to_the_model_and_the_reply_goes_on() {
    let fake = FakeModel::start();
    let server = fake.server(|_| {});
    let mut client = server.connect("tools-bad");
    let session = new_session(&mut client);

    let log = ask(&mut client, &session, "[call-bad:suggest_exercise]");
    let started = events(&log, "tool.started");
    assert_eq!(
        started[0]["arguments"], "{\"exercise_id\": ",
        "the text as written"
    );
    let completed = events(&log, "tool.completed");
    assert_eq!(completed[0]["ok"], false);
    assert!(
        completed[0]["summary"]
            .as_str()
            .unwrap()
            .contains("not a JSON object"),
        "{}",
        completed[0]
    );
    assert_eq!(log.joined(), "Used 1 tools.");
    let told = messages(&fake, 1);
    let content: Value =
        serde_json::from_str(told.last().unwrap()["content"].as_str().unwrap()).unwrap();
    assert!(content["error"].is_string(), "{content}");

    let log = ask(&mut client, &session, "[call:mystery]");
    assert_eq!(events(&log, "tool.completed")[0]["ok"], false);
    assert_eq!(log.end["usage"]["tools_used"], json!(["mystery"]));

    // A tool the session's agent does not list is refused the same way.
    let created = ok(
        &mut client,
        "c",
        "sessions.create",
        json!({"agent": "sleep"}),
    );
    let sleep = created["session"]["id"].as_str().unwrap().to_string();
    let log = ask(&mut client, &sleep, "[call:share_summary]");
    let completed = events(&log, "tool.completed");
    assert_eq!(completed[0]["ok"], false);
    assert_eq!(
        completed[0]["summary"],
        "no tool \"share_summary\" for this agent"
    );
    let requests = fake.requests();
    let offered: Vec<&str> = requests[4]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|tool| tool["function"]["name"].as_str())
        .collect();
    assert_eq!(
        offered,
        ["suggest_exercise", "list_progress", "find_resources"]
    );

    let metrics = server.wait_for_metrics("the calls counted", |m| {
        m["assistant"]["tool_calls"]["unknown"] == 1
    });
    assert_eq!(metrics["assistant"]["tool_calls"]["suggest_exercise"], 1);
    assert_eq!(metrics["assistant"]["tool_calls"]["share_summary"], 1);
    let text = common::prometheus(&server);
    assert_eq!(
        common::sample(
            &text,
            "hearth_tool_calls_total{outcome=\"failed\",tool=\"unknown\"}"
        ),
        1.0
    );
}

#[test]
fn a_model_that_keeps_calling_tools_is_stopped_after_four_requests() {
    let fake = FakeModel::start();
    let server = fake.server(|_| {});
    let mut client = server.connect("tools-loop");
    let session = new_session(&mut client);
    let log = ask(&mut client, &session, "a quiet evening [call-loop]");
    let requests = fake.requests();
    assert_eq!(requests.len(), 4, "four model requests, no more");
    assert!(requests[2].get("tools").is_some());
    assert!(
        requests[3].get("tools").is_none(),
        "the last offers no tools"
    );
    assert_eq!(events(&log, "tool.completed").len(), 3);
    // The model never answered in words: the built-in engine did.
    assert_eq!(log.end["fallback"], true, "{}", log.end);
    assert!(!log.joined().is_empty());
}

/// Subscribes `client` to `channel`, its answer read.
fn join(client: &mut Client, channel: &str) {
    let id = format!("sub-{channel}");
    client.send_json(json!({"type": "subscribe", "id": id, "channels": [channel]}));
    let answer = client.answer_to(&id);
    assert_eq!(answer["type"], "response", "{answer}");
}

#[test]
fn a_call_that_needs_approval_waits_for_any_of_the_players_devices() {
    let fake = FakeModel::start();
    let server = fake.server(|_| {});
    let player = "tools-approve";
    let mut phone = server.connect(player);
    let mut laptop = server.connect(player);
    let session = new_session(&mut phone);
    // Every connection of the player is in `user:<player>` already.
    join(&mut laptop, &format!("session:{session}"));

    let (_, reply) = send(
        &mut phone,
        &session,
        "share how my week went [call:share_summary]",
    );
    let (seen, asked, call_id) = approval_asked(&mut laptop);
    assert_eq!(asked["tool"], "share_summary");
    assert_eq!(asked["arguments"], json!({"note": "A calmer week."}));
    assert_eq!(asked["message_id"], reply.as_str());
    // Nothing ran yet: started, then the question, and no completion.
    assert!(seen.iter().any(|f| is_event(f, "tool.started")));
    assert!(!seen.iter().any(|f| is_event(f, "tool.completed")));

    laptop.send_json(
        json!({"type": "request", "id": "yes", "method": "tools.approve",
        "params": {"session_id": session, "call_id": call_id}}),
    );
    let mut answer = None;
    let mut note = None;
    while answer.is_none() || note.is_none() {
        let frame = common::sessions::next_frame(&mut laptop);
        if frame["reply_to"] == "yes" {
            answer = Some(frame);
        } else if frame["channel"] == format!("user:{player}") {
            note = Some(frame);
        }
    }
    let answer = answer.unwrap();
    assert_eq!(
        answer["result"],
        json!({"call_id": call_id, "approved": true}),
        "{answer}"
    );
    let note = note.unwrap();
    assert_eq!(note["data"]["type"], "summary");
    assert_eq!(note["data"]["note"], "A calmer week.");
    assert_eq!(note["data"]["session_id"], session.as_str());

    // The phone sees the reply end (and, as every connection of the
    // player, the note on the player's own channel).
    let seen = frames_until_event(&mut phone, "message.completed");
    assert!(seen
        .iter()
        .any(|f| f["channel"] == format!("user:{player}")));
    let completed: Vec<&Value> = seen
        .iter()
        .filter(|f| is_event(f, "tool.completed"))
        .map(|f| &f["data"]["data"])
        .collect();
    assert_eq!(completed[0]["ok"], true, "{}", completed[0]);
    assert_eq!(completed[0]["summary"], "shared a note");
    assert_eq!(
        seen.last().unwrap()["data"]["data"]["text"],
        "Used 1 tools."
    );
    assert_eq!(seen.last().unwrap()["data"]["data"]["id"], reply.as_str());

    // Decided once: a second answer finds nothing waiting.
    common::sessions::expect_not_waiting(&mut laptop, &session, &call_id);

    // Rejected: not run, and the model is told.
    let (_, reply) = send(&mut phone, &session, "[call:share_summary]");
    let (_, _, call_id) = approval_asked(&mut laptop);
    let no = common::sessions::ok(
        &mut laptop,
        "no",
        "tools.reject",
        json!({"session_id": session, "call_id": call_id}),
    );
    assert_eq!(no["approved"], false);
    let log = read_reply(&mut phone, &session, &reply);
    let completed = events(&log, "tool.completed");
    assert_eq!(completed[0]["ok"], false);
    assert_eq!(completed[0]["summary"], "the player declined; not run");
    let told = messages(&fake, 3);
    assert!(told.last().unwrap()["content"]
        .as_str()
        .unwrap()
        .contains("declined"));

    let metrics = server.wait_for_metrics("the decisions counted", |m| {
        m["assistant"]["tool_decisions"]["rejected"] == 1
    });
    assert_eq!(metrics["assistant"]["tool_decisions"]["approved"], 1);
}

#[test]
fn an_unanswered_call_times_out_and_a_cancel_stops_the_wait() {
    let fake = FakeModel::start();
    let server = fake.server(|config| config.assistant.approval_timeout_s = 1);
    let mut client = server.connect("tools-timeout");
    let session = new_session(&mut client);

    let log = ask(&mut client, &session, "[call:share_summary]");
    let completed = events(&log, "tool.completed");
    assert_eq!(completed[0]["ok"], false);
    assert_eq!(completed[0]["summary"], "no answer within 1 s; not run");
    assert!(log.events.contains(&"tool.approval_required".to_string()));
    server.wait_for_metrics("the timeout counted", |m| {
        m["assistant"]["tool_decisions"]["timed_out"] == 1
    });

    // A cancel while the call waits ends the reply, and the call with it.
    let fake = FakeModel::start();
    let server = fake.server(|_| {});
    let mut client = server.connect("tools-cancel");
    let session = new_session(&mut client);
    let (_, reply) = send(&mut client, &session, "[call:share_summary]");
    let (_, _, call_id) = approval_asked(&mut client);
    let cancelled = common::sessions::ok(
        &mut client,
        "stop",
        "messages.cancel",
        json!({"session_id": session, "message_id": reply}),
    );
    assert_eq!(cancelled["cancelled"], true);
    let ended = frames_until_event(&mut client, "message.cancelled");
    assert!(
        !ended.iter().any(|f| is_event(f, "tool.completed")),
        "{ended:?}"
    );
    common::sessions::expect_not_waiting(&mut client, &session, &call_id);
}
