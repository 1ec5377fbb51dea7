//! Assistant sessions (docs/protocol.md, sections 10 and 11): requests,
//! the conversation store behind them, and replies streamed on
//! `session:<id>` from the built-in assistant or from a fake
//! OpenAI-compatible model server started by the test (real HTTP, real
//! event-stream framing).

mod common;

use std::time::Instant;

use common::fake_model::FakeModel;
use common::sessions::{
    fake_tokens, new_session, next_frame, ok, read_reply, refused, send, stored_messages,
    wait_for_messages,
};
use common::{prometheus, sample, subscribe, test_config, TestServer, FRAME_TIMEOUT};
use serde_json::json;

#[test]
fn sessions_are_created_listed_read_and_archived_by_their_owner_only() {
    let server = TestServer::start();
    let mut ana = server.connect("ana-sessions");
    let created = ok(
        &mut ana,
        "c1",
        "sessions.create",
        json!({"title": "Sleep", "pillar": "sleep"}),
    );
    let session = &created["session"];
    let id = session["id"].as_str().unwrap();
    assert!(id.starts_with("sess_"), "{session}");
    assert_eq!(session["title"], "Sleep");
    assert_eq!(session["agent"], "guide");
    assert_eq!(session["pillar"], "sleep");
    assert_eq!(session["archived"], false);
    assert_eq!(session["message_count"], 0);
    let second = new_session(&mut ana);

    let listed = ok(&mut ana, "l1", "sessions.list", json!({"limit": 1}));
    assert_eq!(listed["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(listed["sessions"][0]["id"], second.as_str(), "newest first");
    let next = listed["next"].as_str().expect("a cursor").to_string();
    let rest = ok(
        &mut ana,
        "l2",
        "sessions.list",
        json!({"limit": 1, "before": next}),
    );
    assert_eq!(rest["sessions"][0]["id"], id);
    assert!(rest.get("next").is_none(), "{rest}");

    let got = ok(&mut ana, "g1", "sessions.get", json!({"session_id": id}));
    assert_eq!(got["session"]["id"], id);
    assert_eq!(got["messages"], json!([]));

    // Another player's session answers as a missing one, for every method.
    let mut ben = server.connect("ben-sessions");
    for (method, params) in [
        ("sessions.get", json!({"session_id": id})),
        ("sessions.archive", json!({"session_id": id})),
        ("messages.list", json!({"session_id": id})),
        ("messages.send", json!({"session_id": id, "text": "hello"})),
    ] {
        let error = refused(&mut ben, "x", method, params);
        assert_eq!(error["code"], "not_found", "{method}: {error}");
    }
    let foreign = subscribe(&mut ben, "s1", &[&format!("session:{id}")]);
    assert_eq!(foreign["type"], "error", "{foreign}");
    assert_eq!(foreign["code"], "not_found", "{foreign}");

    let archived = ok(
        &mut ana,
        "a1",
        "sessions.archive",
        json!({"session_id": id}),
    );
    assert_eq!(archived["session"]["archived"], true);
    let visible = ok(&mut ana, "l3", "sessions.list", json!({}));
    assert_eq!(visible["sessions"].as_array().unwrap().len(), 1);
    let all = ok(
        &mut ana,
        "l4",
        "sessions.list",
        json!({"include_archived": true}),
    );
    assert_eq!(all["sessions"].as_array().unwrap().len(), 2);
    let closed = refused(
        &mut ana,
        "s2",
        "messages.send",
        json!({"session_id": id, "text": "hi"}),
    );
    assert_eq!(closed["code"], "conflict", "{closed}");
}

#[test]
fn requests_with_bad_methods_or_params_are_answered_with_the_right_code() {
    let server = TestServer::start();
    let mut client = server.connect("ana-bad-requests");
    let unknown = refused(&mut client, "u", "sessions.delete", json!({}));
    assert_eq!(unknown["code"], "unknown_method");
    let bad = refused(&mut client, "b", "sessions.list", json!({"limit": 0}));
    assert_eq!(bad["code"], "bad_request");
    let empty = refused(
        &mut client,
        "e",
        "messages.send",
        json!({"session_id": "sess_x", "text": "   "}),
    );
    assert_eq!(empty["code"], "bad_request");
    let long = "a".repeat(4001);
    let too_long = refused(
        &mut client,
        "t",
        "messages.send",
        json!({"session_id": "sess_x", "text": long}),
    );
    assert_eq!(too_long["code"], "too_large");
    let cursor = refused(&mut client, "c", "sessions.list", json!({"before": "m12"}));
    assert_eq!(cursor["code"], "bad_request", "{cursor}");
    // Without an id a request could not be answered: refused at once.
    client.send_json(json!({"type": "request", "method": "sessions.list"}));
    let no_id = client.recv();
    assert_eq!(no_id["code"], "bad_request", "{no_id}");
    client.expect_quiet();
}

#[test]
fn a_builtin_reply_streams_on_the_session_channel_and_is_kept() {
    let server = TestServer::start();
    let mut client = server.connect("ana-builtin");
    let session = new_session(&mut client);
    let (message_id, reply_id) = send(&mut client, &session, "I feel anxious about tomorrow");
    let log = read_reply(&mut client, &session, &reply_id);
    assert_eq!(log.events[0], "message.created");
    assert_eq!(log.events[1], "message.created");
    assert_eq!(log.end_event, "message.completed", "{log:?}");
    assert!(!log.deltas.is_empty());
    let reply = &log.end;
    assert_eq!(reply["text"], log.joined().as_str(), "the deltas joined");
    assert_eq!(reply["status"], "complete");
    assert_eq!(reply["role"], "assistant");
    assert_eq!(reply["reply_to"], message_id.as_str());
    assert_eq!(reply["safety"]["crisis"], false);
    let offers: Vec<&str> = reply["elements"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["id"].as_str())
        .collect();
    assert!(offers.contains(&"ex_breathing"), "{reply}");
    assert!(reply["usage"]["response_time_ms"].is_u64(), "{reply}");

    let got = ok(
        &mut client,
        "g",
        "sessions.get",
        json!({"session_id": session}),
    );
    let messages = got["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0]["id"], message_id.as_str());
    assert_eq!(messages[0]["role"], "user");
    assert_eq!(messages[0]["text"], "I feel anxious about tomorrow");
    assert_eq!(messages[1]["text"], reply["text"]);
    assert_eq!(messages[1]["status"], "complete");
    assert_eq!(got["session"]["message_count"], 2);
    let listed = ok(
        &mut client,
        "m",
        "messages.list",
        json!({"session_id": session, "limit": 1}),
    );
    assert_eq!(listed["messages"][0]["id"], reply_id.as_str());
    assert!(listed["next"].is_string());
}

#[test]
fn a_repeated_client_message_id_answers_the_same_ids_and_starts_nothing() {
    let server = TestServer::start();
    let mut client = server.connect("ana-idempotent");
    let session = new_session(&mut client);
    let params = json!({"session_id": session, "text": "hello", "client_message_id": "k-1"});
    let first = ok(&mut client, "1", "messages.send", params.clone());
    let reply_id = first["reply_id"].as_str().unwrap().to_string();
    read_reply(&mut client, &session, &reply_id);
    let again = ok(&mut client, "2", "messages.send", params);
    assert_eq!(again, first);
    client.expect_quiet();
    let messages = stored_messages(&mut client, &session, 50);
    assert_eq!(messages.len(), 2);
}

#[test]
fn a_model_reply_streams_its_tokens_with_usage_and_the_session_history() {
    let fake = FakeModel::start();
    let server = fake.server(|_| {});
    let mut client = server.connect("ana-model");
    let session = new_session(&mut client);
    let (_, first) = send(&mut client, &session, "hello");
    let log = read_reply(&mut client, &session, &first);
    assert_eq!(log.joined(), "Hello there.");
    assert_eq!(log.end["usage"]["completion_tokens"], 3, "{}", log.end);
    assert_eq!(log.end["usage"]["prompt_tokens"], 12);
    assert!(log.end["usage"]["first_token_ms"].is_u64());
    assert_eq!(log.end["finish_reason"], "stop");
    assert!(log.end.get("fallback").is_none(), "{}", log.end);
    assert!(
        log.events.contains(&"assistant.status".to_string()),
        "a model reply says it is thinking: {:?}",
        log.events
    );

    let (_, second) = send(&mut client, &session, "pace it [tokens:12:15]");
    let log = read_reply(&mut client, &session, &second);
    let expected = fake_tokens(12);
    assert_eq!(log.joined(), expected);
    assert_eq!(log.end["text"], expected.as_str());
    assert!(
        log.deltas.len() < 12,
        "tokens 15 ms apart are coalesced: {:?}",
        log.deltas
    );
    assert_eq!(log.end["usage"]["completion_tokens"], 12);
    let text = prometheus(&server);
    assert_eq!(sample(&text, "hearth_assistant_tokens_total"), 15.0);
    assert!(sample(&text, "hearth_assistant_deltas_total") >= log.deltas.len() as f64);
    assert_eq!(
        sample(
            &text,
            "hearth_assistant_first_token_seconds_count{agent=\"guide\"}"
        ),
        2.0
    );
    assert_eq!(sample(&text, "hearth_assistant_replies_active"), 0.0);

    // The model read the session's earlier turns before the new message.
    let requests = fake.requests();
    let messages = requests[1]["messages"].as_array().unwrap();
    let roles: Vec<&str> = messages
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(
        roles,
        ["system", "user", "assistant", "user"],
        "{messages:?}"
    );
    assert_eq!(messages[1]["content"], "hello");
    assert_eq!(messages[2]["content"], "Hello there.");
    assert_eq!(requests[1]["stream"], true);
    assert_eq!(requests[1]["model"], "fake");
}

#[test]
fn a_model_that_fails_before_its_first_token_is_replaced_by_the_builtin_reply() {
    let fake = FakeModel::start();
    let server = fake.server(|config| config.assistant.timeout_s = 1);
    let mut client = server.connect("ana-fallback");
    let session = new_session(&mut client);
    for (i, directive) in ["[status:500]", "[status:401]", "[status:429]", "[stall]"]
        .into_iter()
        .enumerate()
    {
        let (_, reply) = send(&mut client, &session, &format!("a quiet day {directive}"));
        let log = read_reply(&mut client, &session, &reply);
        assert_eq!(log.end_event, "message.completed", "{directive}: {log:?}");
        assert_eq!(log.end["fallback"], true, "{directive}: {}", log.end);
        assert!(!log.joined().is_empty());
        assert_eq!(log.end["text"], log.joined().as_str());
        assert_eq!(fake.request_count(), i + 1);
    }
    let text = prometheus(&server);
    for reason in [
        "status_server",
        "status_auth",
        "status_rate_limited",
        "timeout",
    ] {
        let fallbacks = format!("hearth_assistant_fallbacks_total{{reason=\"{reason}\"}}");
        assert_eq!(sample(&text, &fallbacks), 1.0, "{reason}");
        let errors = format!("hearth_assistant_model_errors_total{{kind=\"{reason}\"}}");
        assert_eq!(sample(&text, &errors), 1.0, "{reason}");
    }
    let completed = "hearth_assistant_replies_total{agent=\"guide\",outcome=\"completed\"}";
    assert_eq!(sample(&text, completed), 4.0);
}

#[test]
fn a_model_that_fails_after_its_first_token_ends_the_reply_failed_with_its_text() {
    let fake = FakeModel::start();
    let server = fake.server(|config| config.assistant.timeout_s = 1);
    let mut client = server.connect("ana-midway");
    let session = new_session(&mut client);
    for (directive, kept) in [
        ("[reset-after:2]", "w0 w1 "),
        ("[malformed]", ""),
        ("[stall-after:1]", "w0 "),
    ] {
        let (_, reply) = send(&mut client, &session, &format!("go on {directive}"));
        let log = read_reply(&mut client, &session, &reply);
        assert_eq!(log.end_event, "message.failed", "{directive}: {log:?}");
        assert_eq!(log.end["is_recoverable"], true);
        assert_eq!(log.end["suggested_action"], "retry");
        assert_eq!(log.end["text_so_far"], log.joined().as_str());
        if !kept.is_empty() {
            assert_eq!(log.joined(), kept, "{directive}");
        }
        let stored = stored_messages(&mut client, &session, 1);
        assert_eq!(stored[0]["status"], "failed");
        assert_eq!(stored[0]["text"], log.joined().as_str());
    }
}

#[test]
fn cancel_stops_the_model_and_ends_the_reply_then_retry_answers_again() {
    let fake = FakeModel::start();
    let server = fake.server(|_| {});
    let mut client = server.connect("ana-cancel");
    let session = new_session(&mut client);
    let (_, reply) = send(&mut client, &session, "tell me more [hold:2]");
    // Wait for the first delta, then cancel.
    loop {
        let frame = next_frame(&mut client);
        if frame["data"]["event"] == "message.delta" {
            break;
        }
    }
    let closes_before = fake.client_closes().len();
    let asked = Instant::now();
    client.send_json(
        json!({"type": "request", "id": "c", "method": "messages.cancel",
        "params": {"session_id": session, "message_id": reply}}),
    );
    // The answer and the end event may come in either order.
    let (mut answered, mut ended) = (None, None);
    while answered.is_none() || ended.is_none() {
        let frame = next_frame(&mut client);
        if frame["reply_to"] == "c" {
            answered = Some(frame);
        } else if frame["data"]["event"] == "message.cancelled" {
            ended = Some(frame["data"]["data"].clone());
        } else {
            assert_eq!(frame["data"]["event"], "message.delta", "{frame}");
        }
    }
    assert_eq!(answered.unwrap()["result"], json!({"cancelled": true}));
    let ended = ended.unwrap();
    let latency = asked.elapsed();
    eprintln!("cancel_latency_ms={:.2}", latency.as_secs_f64() * 1000.0);
    assert_eq!(ended["code"], "cancelled");
    assert!(ended["text_so_far"].as_str().unwrap().starts_with("w0 w1 "));
    let closed = fake
        .wait_for_client_closes(closes_before + 1, FRAME_TIMEOUT)
        .expect("the model request was closed");
    assert!(closed >= asked);

    let again = refused(
        &mut client,
        "c2",
        "messages.cancel",
        json!({"session_id": session, "message_id": reply}),
    );
    assert_eq!(again["code"], "conflict", "{again}");
    let user = refused(
        &mut client,
        "c3",
        "messages.cancel",
        json!({"session_id": session, "message_id": "msg_0123456789abcdef0123456789abcdef"}),
    );
    assert_eq!(user["code"], "not_found");

    let retried = ok(
        &mut client,
        "r",
        "messages.retry",
        json!({"session_id": session, "message_id": reply}),
    );
    let new_reply = retried["reply_id"].as_str().unwrap().to_string();
    assert_ne!(new_reply, reply);
    // The retry asks the model the same question again; this time it is
    // cancelled too, so the test does not wait for the hold to run out.
    loop {
        let frame = next_frame(&mut client);
        if frame["data"]["event"] == "message.created" {
            assert_eq!(
                frame["data"]["data"]["role"], "assistant",
                "no new user message"
            );
        }
        if frame["data"]["event"] == "message.delta" {
            assert_eq!(frame["data"]["data"]["message_id"], new_reply.as_str());
            break;
        }
    }
    ok(
        &mut client,
        "c4",
        "messages.cancel",
        json!({"session_id": session, "message_id": new_reply}),
    );
    let messages = stored_messages(&mut client, &session, 50);
    assert_eq!(messages.len(), 3, "one question, two replies");
    assert_eq!(messages[1]["status"], "cancelled");
    assert_eq!(fake.request_count(), 2);
    let question = &fake.requests()[1]["messages"];
    let last = question.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["content"], "tell me more [hold:2]");
}

#[test]
fn a_reply_goes_on_after_its_sender_leaves_and_another_device_recovers_it_exactly_once() {
    let fake = FakeModel::start();
    let server = fake.server(|_| {});
    let mut phone = server.connect("ana-devices");
    let session = new_session(&mut phone);
    let channel = format!("session:{session}");
    let mut laptop = server.connect("ana-devices");
    laptop.send_json(json!({"type": "subscribe", "id": "s", "channels": [channel]}));
    let joined = next_frame(&mut laptop);
    assert_eq!(joined["type"], "response", "{joined}");
    let epoch = joined["result"]["channels"][&channel]["epoch"].clone();

    let (_, reply) = send(&mut phone, &session, "long answer [tokens:30:20]");
    drop(phone);

    // The laptop reads a few events, then loses its connection.
    let mut seen = Vec::new();
    let mut last_offset = 0;
    while seen.len() < 4 {
        let frame = next_frame(&mut laptop);
        last_offset = frame["offset"].as_u64().unwrap();
        seen.push(frame);
    }
    drop(laptop);

    let mut laptop = server.connect("ana-devices");
    laptop.send_json(
        json!({"type": "subscribe", "id": "r", "channels": [channel],
               "recover": {channel.clone(): {"offset": last_offset, "epoch": epoch}}}),
    );
    let resumed = next_frame(&mut laptop);
    assert_eq!(resumed["type"], "response", "{resumed}");
    assert_eq!(resumed["result"]["channels"][&channel]["recovered"], true);
    let mut deltas: Vec<String> = seen
        .iter()
        .filter(|f| f["data"]["event"] == "message.delta")
        .map(|f| f["data"]["data"]["text"].as_str().unwrap().to_string())
        .collect();
    let mut next_index = deltas.len();
    let mut offset = last_offset;
    let end = loop {
        let frame = next_frame(&mut laptop);
        let this = frame["offset"].as_u64().unwrap();
        assert_eq!(this, offset + 1, "exactly once, in order: {frame}");
        offset = this;
        let data = &frame["data"]["data"];
        match frame["data"]["event"].as_str().unwrap() {
            "message.delta" => {
                assert_eq!(data["index"], next_index);
                next_index += 1;
                deltas.push(data["text"].as_str().unwrap().to_string());
            }
            "message.completed" => break data.clone(),
            _ => {}
        }
    };
    assert_eq!(end["id"], reply.as_str());
    let expected = fake_tokens(30);
    assert_eq!(deltas.concat(), expected);
    assert_eq!(end["text"], expected.as_str());
}

#[test]
fn a_crisis_is_answered_by_hearth_and_never_reaches_the_model() {
    let fake = FakeModel::start();
    let server = fake.server(|_| {});
    let mut client = server.connect("ana-crisis");
    let session = new_session(&mut client);
    let (message, reply) = send(&mut client, &session, "I want to end my life");
    let log = read_reply(&mut client, &session, &reply);
    assert_eq!(log.end_event, "message.completed");
    assert_eq!(log.end["safety"]["crisis"], true, "{}", log.end);
    let first = &log.end["elements"][0];
    assert_eq!(first["type"], "resource", "{}", log.end);
    assert!(!log.end["text"].as_str().unwrap().contains("Hello there"));
    assert_eq!(fake.request_count(), 0, "the model was not asked");
    let messages = stored_messages(&mut client, &session, 50);
    assert_eq!(messages[0]["id"], message.as_str());
    assert_eq!(messages[0]["safety"]["crisis"], true);
}

/// `[safety] model_check`: the model's second opinion raises a verdict
/// the rules did not reach (and then the model is not asked for the
/// reply), never lowers one, and applies to v1 chat too.
#[test]
fn the_models_second_opinion_raises_a_verdict_and_never_lowers_it() {
    let fake = FakeModel::start();
    let server = fake.server(|config| {
        config.safety.model_check = true;
        config.safety.model_check_deadline_ms = 5000;
    });
    let mut client = server.connect("ana-opinion");
    let session = new_session(&mut client);

    let (_, reply) = send(
        &mut client,
        &session,
        "[opinion:imminent] long day, whatever",
    );
    let raised = read_reply(&mut client, &session, &reply);
    assert_eq!(raised.end_event, "message.completed");
    let safety = &raised.end["safety"];
    assert_eq!(safety["crisis"], true, "{}", raised.end);
    assert_eq!(safety["severity"], "crisis", "{}", raised.end);
    assert_eq!(safety["categories"], json!(["model_opinion"]));
    assert_eq!(raised.end["elements"][0]["emergency"], true);
    let text = raised.end["text"].as_str().unwrap();
    assert!(text.starts_with("Please call 988 or 911"), "{text}");
    let asked = fake.requests();
    assert_eq!(asked.len(), 1, "only the opinion was asked: {asked:?}");
    assert_eq!(asked[0]["stream"], false);

    let (_, reply) = send(
        &mut client,
        &session,
        "[opinion:none] I want to end my life",
    );
    let kept = read_reply(&mut client, &session, &reply);
    assert_eq!(kept.end["safety"]["crisis"], true, "never lowered");
    assert!(!kept.end["safety"]["categories"]
        .as_array()
        .unwrap()
        .contains(&json!("model_opinion")));
    assert_eq!(fake.request_count(), 2);

    let (_, reply) = send(&mut client, &session, "[opinion:none] how was your day");
    let calm = read_reply(&mut client, &session, &reply);
    assert_eq!(calm.end["safety"]["crisis"], false);
    assert_eq!(calm.end["text"], "Hello there.");
    assert_eq!(fake.request_count(), 4, "the opinion, then the reply");

    // (The directive's own words must not be crisis words the rules know.)
    let v1 = client.say("v1", "[opinion:imminent] rough night");
    assert_eq!(v1["metadata"]["safety"]["severity"], "crisis", "{v1}");

    let text = prometheus(&server);
    let outcome = |name: &str| {
        sample(
            &text,
            &format!("hearth_safety_opinions_total{{outcome=\"{name}\"}}"),
        )
    };
    assert_eq!(outcome("raised"), 2.0);
    assert_eq!(outcome("agreed"), 2.0);
    assert_eq!(
        sample(
            &text,
            "hearth_crisis_categories_total{category=\"model_opinion\"}"
        ),
        2.0
    );
}

/// An opinion that does not come by the deadline is given up (its request
/// closed) and the reply goes on with the rules' verdict.
#[test]
fn a_second_opinion_that_misses_its_deadline_leaves_the_rules_verdict() {
    let fake = FakeModel::start();
    let server = fake.server(|config| {
        config.safety.model_check = true;
        config.safety.model_check_deadline_ms = 200;
    });
    let mut client = server.connect("ana-late-opinion");
    let session = new_session(&mut client);
    let (_, reply) = send(&mut client, &session, "[opinion-stall] hello");
    let log = read_reply(&mut client, &session, &reply);
    assert_eq!(log.end_event, "message.completed");
    assert_eq!(log.end["safety"]["crisis"], false);
    assert_eq!(log.end["text"], "Hello there.");
    assert!(
        fake.wait_for_client_close(FRAME_TIMEOUT).is_some(),
        "the opinion's request was closed at the deadline"
    );
    let text = prometheus(&server);
    assert_eq!(
        sample(&text, "hearth_safety_opinions_total{outcome=\"timeout\"}"),
        1.0
    );
    let (_, reply) = send(
        &mut client,
        &session,
        "[opinion-stall] I want to end my life",
    );
    let log = read_reply(&mut client, &session, &reply);
    assert_eq!(log.end["safety"]["crisis"], true);
}

/// A session title is words the player wrote: a crisis in it is answered
/// with help in the `sessions.create` result and counted by category.
#[test]
fn a_crisis_in_a_session_title_is_answered_with_help() {
    let server = TestServer::start();
    let mut client = server.connect("ana-title");
    let created = ok(
        &mut client,
        "c1",
        "sessions.create",
        json!({"title": "writing my goodbye letters tonight"}),
    );
    assert_eq!(
        created["session"]["title"],
        "writing my goodbye letters tonight"
    );
    assert_eq!(created["safety"]["crisis"], true, "{created}");
    assert_eq!(created["safety"]["severity"], "crisis", "{created}");
    assert_eq!(
        created["safety"]["categories"],
        json!(["preparatory"]),
        "{created}"
    );
    assert_eq!(created["elements"][0]["type"], "resource", "{created}");
    assert_eq!(created["elements"][0]["emergency"], true, "{created}");
    let metrics = server.metrics();
    assert_eq!(metrics["crisis_detected"], 1, "{metrics}");
    assert_eq!(metrics["crisis_categories"]["preparatory"], 1, "{metrics}");

    let calm = ok(
        &mut client,
        "c2",
        "sessions.create",
        json!({"title": "Sleep routine"}),
    );
    assert!(calm.get("safety").is_none(), "{calm}");
    assert!(calm.get("elements").is_none(), "{calm}");
}

#[test]
fn too_many_model_requests_in_flight_are_refused_with_a_retry_time() {
    let fake = FakeModel::start();
    let server = fake.server(|config| {
        config.assistant.max_in_flight_per_player = 1;
    });
    let mut client = server.connect("ana-busy");
    let session = new_session(&mut client);
    let (_, reply) = send(&mut client, &session, "first [hold:1]");
    let busy = refused(
        &mut client,
        "2",
        "messages.send",
        json!({"session_id": session, "text": "second"}),
    );
    assert_eq!(busy["code"], "unavailable", "{busy}");
    assert!(busy["retry_after_ms"].as_u64().unwrap() > 0);
    ok(
        &mut client,
        "c",
        "messages.cancel",
        json!({"session_id": session, "message_id": reply}),
    );
    let messages = stored_messages(&mut client, &session, 50);
    assert_eq!(messages.len(), 2, "the refused send left nothing behind");
}

#[test]
fn v1_chat_streams_the_models_pieces_and_marks_a_fallback() {
    let fake = FakeModel::start();
    let server = fake.server(|_| {});
    let mut client = server.connect_query("ana-v1-model", "&stream=1");
    client.send_json(json!({"type": "user_message", "id": "m1", "content": {"text": "hi"}}));
    let mut chunks = Vec::new();
    let message = loop {
        let frame = client.recv();
        match frame["type"].as_str().unwrap() {
            "chunk" => chunks.push(frame["text"].as_str().unwrap().to_string()),
            "message" => break frame,
            other => panic!("unexpected {other}: {frame}"),
        }
    };
    assert_eq!(chunks, ["Hello", " there", "."]);
    assert_eq!(message["content"]["text"], "Hello there.");
    assert!(message["metadata"].get("fallback").is_none());

    // Chunks go out as the model writes, not when it has finished.
    client.send_json(json!({"type": "user_message", "id": "m3",
        "content": {"text": "slowly [tokens:6:60]"}}));
    let first = client.recv();
    let first_seen = Instant::now();
    assert_eq!(first["type"], "chunk", "{first}");
    assert_eq!(first["final"], false);
    let mut texts = vec![first["text"].as_str().unwrap().to_string()];
    let mut last = first.clone();
    let message = loop {
        let frame = client.recv();
        if frame["type"] == "message" {
            break frame;
        }
        assert_eq!(last["final"], false, "only the last chunk is final");
        last = frame.clone();
        assert_eq!(frame["message_id"], first["message_id"], "{frame}");
        assert_eq!(frame["index"], texts.len());
        texts.push(frame["text"].as_str().unwrap().to_string());
    };
    assert_eq!(last["final"], true, "{last}");
    assert_eq!(message["id"], first["message_id"]);
    assert_eq!(texts.concat(), "w0 w1 w2 w3 w4 w5 ");
    assert_eq!(message["content"]["text"], texts.concat().as_str());
    let emitted = fake.token_times(1);
    assert_eq!(emitted.len(), 6);
    assert!(
        first_seen < emitted[5],
        "the first chunk arrived before the model's last token"
    );

    let fallback = client.say("m2", "hi [status:503]");
    let fallback = if fallback["type"] == "chunk" {
        loop {
            let frame = client.recv();
            if frame["type"] == "message" {
                break frame;
            }
        }
    } else {
        fallback
    };
    assert_eq!(fallback["metadata"]["fallback"], true, "{fallback}");
}

#[test]
fn a_restart_keeps_the_conversation_and_fails_a_reply_it_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeModel::start();
    let mut config = test_config(dir.path().join("progress.db"));
    config.assistant.kind = "openai".into();
    config.assistant.base_url = fake.base_url();
    config.assistant.model = "fake".into();

    let server = TestServer::start_with(config.clone());
    let mut client = server.connect("ana-restart");
    let session = new_session(&mut client);
    let (_, done) = send(&mut client, &session, "hello");
    read_reply(&mut client, &session, &done);
    let (_, cut) = send(&mut client, &session, "keep going [hold:3]");
    loop {
        let frame = next_frame(&mut client);
        if frame["data"]["event"] == "message.delta" {
            break;
        }
    }
    drop(client);
    server.stop();

    let server = TestServer::start_with(config);
    let mut client = server.connect("ana-restart");
    let messages = stored_messages(&mut client, &session, 50);
    assert_eq!(messages.len(), 4, "{messages:?}");
    assert_eq!(messages[1]["text"], "Hello there.");
    assert_eq!(messages[1]["usage"]["completion_tokens"], 3);
    assert_eq!(messages[3]["id"], cut.as_str());
    assert_eq!(messages[3]["status"], "failed", "{}", messages[3]);
    assert_eq!(messages[3]["finish_reason"], "interrupted");
}

#[test]
fn session_channels_keep_their_history_for_recovery_but_refuse_client_publishing() {
    let server = TestServer::start();
    let mut client = server.connect("ana-no-publish");
    let session = new_session(&mut client);
    let channel = format!("session:{session}");
    let joined = subscribe(&mut client, "s", &[&channel]);
    assert_eq!(joined["type"], "response", "{joined}");
    client.send_json(json!({"type": "publish", "id": "p", "channel": channel, "data": {}}));
    let published = next_frame(&mut client);
    assert_eq!(published["code"], "forbidden", "{published}");
    client.send_json(json!({"type": "presence", "id": "pr", "channel": channel}));
    let presence = next_frame(&mut client);
    assert_eq!(presence["type"], "response", "{presence}");
}

#[test]
fn v1_chat_is_recorded_in_its_session_with_the_ids_the_client_saw() {
    let server = TestServer::start();
    let mut client = server.connect("ana-v1-recorded");
    let reply = client.request(
        "m1",
        json!({"type": "user_message", "session_id": "v1-evening",
               "content": {"text": "I feel anxious tonight"},
               "metadata": {"character_id": "char-7", "world_id": "w-2"}}),
    );
    assert_eq!(reply["role"], "assistant");
    // Recorded after the reply went out: wait until the store has it.
    let messages = wait_for_messages(&mut client, "v1-evening", 50, FRAME_TIMEOUT, |m| {
        m.len() == 2
    });
    assert_eq!(messages[0]["text"], "I feel anxious tonight");
    assert_eq!(messages[0]["role"], "user");
    assert_eq!(messages[1]["id"], reply["id"]);
    assert_eq!(messages[1]["text"], reply["content"]["text"]);
    assert_eq!(messages[1]["elements"], reply["content"]["elements"]);
    assert_eq!(messages[1]["status"], "complete");
    // The session is the player's own from then on.
    let mut other = server.connect("ben-v1-recorded");
    let foreign = refused(
        &mut other,
        "g",
        "sessions.get",
        json!({"session_id": "v1-evening"}),
    );
    assert_eq!(foreign["code"], "not_found");
}

/// A device that stops reading does not hold the reply up: it completes,
/// whole, in the store. (That such a device is closed 4002 once its queue
/// is full is `tests/slow_consumer.rs`'s to show: when that happens here
/// depends on how much the kernel buffers for the socket.)
#[test]
fn a_device_that_stops_reading_does_not_hold_the_reply_up() {
    let fake = FakeModel::start();
    let server = fake.server(|config| {
        config.assistant.coalesce_ms = 0;
        config.limits.outbound_max_frames = 32;
    });
    let mut phone = server.connect("ana-slow-device");
    let session = new_session(&mut phone);
    let channel = format!("session:{session}");
    let mut tablet = server.connect("ana-slow-device");
    tablet.send_json(json!({"type": "subscribe", "id": "s", "channels": [channel]}));
    assert_eq!(next_frame(&mut tablet)["type"], "response");
    // From here neither device reads.
    let (_, reply) = send(&mut phone, &session, "a long one [tokens:5000:0]");
    let mut laptop = server.connect("ana-slow-device");
    let stored = wait_for_messages(&mut laptop, &session, 1, 3 * FRAME_TIMEOUT, |m| {
        m.first().is_some_and(|reply| reply["status"] == "complete")
    });
    assert_eq!(stored[0]["id"], reply.as_str());
    let expected = fake_tokens(5000);
    assert_eq!(stored[0]["text"], expected.as_str());
    drop((phone, tablet));
}

#[test]
fn sending_never_takes_a_connection_past_its_subscription_limit() {
    let server = TestServer::with_config(|config| {
        config.channels.max_subscriptions_per_connection = 1;
    });
    let mut client = server.connect("ana-limit");
    let first = new_session(&mut client);
    let second = new_session(&mut client);
    let (_, reply) = send(&mut client, &first, "hello");
    read_reply(&mut client, &first, &reply);
    // The connection is full: the second session's reply is stored but
    // not pushed to it.
    let (_, unseen) = send(&mut client, &second, "hello again");
    client.expect_quiet();
    let full = subscribe(&mut client, "s", &[&format!("session:{second}")]);
    assert_eq!(full["code"], "limit_exceeded", "{full}");
    let stored = ok(
        &mut client,
        "g",
        "messages.list",
        json!({"session_id": second, "limit": 1}),
    );
    assert_eq!(stored["messages"][0]["id"], unseen.as_str(), "{stored}");
}
