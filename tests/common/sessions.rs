//! Assistant sessions as a client drives them: requests and their answers,
//! and a reply read off the session's channel with its order checked.

use serde_json::{json, Value};

use super::Client;

/// The next frame that is not a presence event (a session's channel
/// reports the owner's devices joining and leaving).
pub fn next_frame(client: &mut Client) -> Value {
    loop {
        let frame = client.recv();
        let presence =
            frame["type"] == "event" && matches!(frame["event"].as_str(), Some("join" | "leave"));
        if !presence {
            return frame;
        }
    }
}

/// Sends a `request` and returns the frame that answers it; channel events
/// that come first (a reply still streaming) are passed over.
pub fn call(client: &mut Client, id: &str, method: &str, params: Value) -> Value {
    client.send_json(json!({"type": "request", "id": id, "method": method, "params": params}));
    loop {
        let answer = client.recv();
        if answer["type"] != "event" {
            assert_eq!(answer["reply_to"], id, "reply to {id}: {answer}");
            return answer;
        }
    }
}

/// As `call`, which must succeed: its `result`.
pub fn ok(client: &mut Client, id: &str, method: &str, params: Value) -> Value {
    let answer = call(client, id, method, params);
    assert_eq!(answer["type"], "response", "{method}: {answer}");
    answer["result"].clone()
}

/// As `call`, which must fail: its error code.
pub fn refused(client: &mut Client, id: &str, method: &str, params: Value) -> Value {
    let answer = call(client, id, method, params);
    assert_eq!(answer["type"], "error", "{method}: {answer}");
    answer
}

pub fn new_session(client: &mut Client) -> String {
    let result = ok(
        client,
        "new",
        "sessions.create",
        json!({"title": "Evening"}),
    );
    result["session"]["id"]
        .as_str()
        .expect("a session id")
        .to_string()
}

/// Sends `text` in `session`; returns (message_id, reply_id).
pub fn send(client: &mut Client, session: &str, text: &str) -> (String, String) {
    let sent = ok(
        client,
        "send",
        "messages.send",
        json!({"session_id": session, "text": text}),
    );
    (
        sent["message_id"].as_str().unwrap().to_string(),
        sent["reply_id"].as_str().unwrap().to_string(),
    )
}

/// One reply as a subscriber of the session's channel saw it.
#[derive(Debug)]
pub struct ReplyLog {
    pub events: Vec<String>,
    /// Each event's `data`, beside `events`.
    pub data: Vec<Value>,
    pub deltas: Vec<String>,
    pub offsets: Vec<u64>,
    pub end_event: String,
    pub end: Value,
}

impl ReplyLog {
    pub fn joined(&self) -> String {
        self.deltas.concat()
    }
}

/// Reads publications on `session:<session>` until `reply` ends, checking
/// that delta indexes run 0, 1, 2, ... and offsets rise by one.
pub fn read_reply(client: &mut Client, session: &str, reply: &str) -> ReplyLog {
    let channel = format!("session:{session}");
    let mut log = ReplyLog {
        events: Vec::new(),
        data: Vec::new(),
        deltas: Vec::new(),
        offsets: Vec::new(),
        end_event: String::new(),
        end: Value::Null,
    };
    loop {
        let frame = next_frame(client);
        assert_eq!(frame["type"], "event", "{frame}");
        assert_eq!(frame["channel"], channel.as_str(), "{frame}");
        let offset = frame["offset"].as_u64().expect("an offset");
        if let Some(last) = log.offsets.last() {
            assert_eq!(offset, last + 1, "offsets without a gap: {frame}");
        }
        log.offsets.push(offset);
        let event = frame["data"]["event"].as_str().unwrap().to_string();
        let data = frame["data"]["data"].clone();
        log.events.push(event.clone());
        log.data.push(data.clone());
        match event.as_str() {
            "message.delta" => {
                assert_eq!(data["message_id"], reply);
                assert_eq!(data["index"], log.deltas.len(), "no gap: {frame}");
                log.deltas.push(data["text"].as_str().unwrap().to_string());
            }
            "message.completed" | "message.cancelled" | "message.failed" => {
                let id = if event == "message.completed" {
                    &data["id"]
                } else {
                    &data["message_id"]
                };
                assert_eq!(id, reply, "{frame}");
                log.end_event = event;
                log.end = data;
                return log;
            }
            _ => {}
        }
    }
}

/// The session's latest `count` messages as `sessions.get` gives them,
/// oldest first.
pub fn stored_messages(client: &mut Client, session: &str, count: usize) -> Vec<Value> {
    let got = ok(
        client,
        "stored",
        "sessions.get",
        json!({"session_id": session, "messages": count}),
    );
    got["messages"].as_array().cloned().unwrap_or_default()
}

/// The session's latest `count` messages once `done` holds for them,
/// asked again until then (a session not made yet counts as none); panics
/// after `timeout`.
pub fn wait_for_messages(
    client: &mut Client,
    session: &str,
    count: usize,
    timeout: std::time::Duration,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let answer = call(
            client,
            "wait",
            "sessions.get",
            json!({"session_id": session, "messages": count}),
        );
        let messages = answer["result"]["messages"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if done(&messages) {
            return messages;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not there within {timeout:?}: {answer}"
        );
        std::thread::yield_now();
    }
}

/// What the fake model's `[tokens:N:MS]` reply says: `w0 w1 ... w{N-1} `.
pub fn fake_tokens(count: usize) -> String {
    (0..count).map(|k| format!("w{k} ")).collect()
}

/// Asserts that `call_id` of `session` waits for no decision (anywhere):
/// `tools.reject` of it is `not_found`.
pub fn expect_not_waiting(client: &mut Client, session: &str, call_id: &str) {
    let answer = refused(
        client,
        "not-waiting",
        "tools.reject",
        json!({"session_id": session, "call_id": call_id}),
    );
    assert_eq!(answer["code"], "not_found", "{answer}");
}

/// Whether `frame` is the session event `name` (`message.completed`, ...).
pub fn is_event(frame: &Value, name: &str) -> bool {
    frame["type"] == "event" && frame["data"]["event"] == name
}

/// The frames up to the session event `name`, that one included.
pub fn frames_until_event(client: &mut Client, name: &str) -> Vec<Value> {
    let mut frames = Vec::new();
    loop {
        let frame = next_frame(client);
        let last = is_event(&frame, name);
        frames.push(frame);
        if last {
            return frames;
        }
    }
}

/// Waits for a reply to put a tool call to the player: the frames read,
/// and what `tool.approval_required` asked, with the call's id.
pub fn approval_asked(client: &mut Client) -> (Vec<Value>, Value, String) {
    let frames = frames_until_event(client, "tool.approval_required");
    let asked = frames[frames.len() - 1]["data"]["data"].clone();
    let call_id = asked["call_id"].as_str().expect("a call id").to_string();
    (frames, asked, call_id)
}
