//! Bad input: every malformed frame gets one error frame with the code
//! docs/protocol.md (sections 3 and 6) names and the connection keeps
//! working; oversized frames and invalid UTF-8 close with 1009 and 1007.

mod common;

use common::{Client, TestServer};
use serde_json::json;
use tungstenite::protocol::frame::coding::{Data, OpCode};
use tungstenite::protocol::frame::Frame;
use tungstenite::Message;

fn assert_still_chatting(client: &mut Client) {
    let reply = client.say("alive", "are you still there?");
    assert_eq!(reply["role"], "assistant");
}

/// Each bad frame: one error with its code (and reply_to once the id could
/// be read); the connection stays open.
#[test]
fn bad_frames_get_error_frames() {
    let server = TestServer::start();
    let mut client = server.connect("alice");
    let long_text = "a".repeat(4001);
    let cases = [
        ("not json at all".to_string(), "bad_request", None),
        ("[1, 2, 3]".to_string(), "bad_request", None),
        ("\"just a string\"".to_string(), "bad_request", None),
        (json!({"id": "e1"}).to_string(), "unknown_type", Some("e1")),
        (json!({"type": "dance", "id": "e2"}).to_string(), "unknown_type", Some("e2")),
        (json!({"type": "user_message", "id": "e3"}).to_string(), "bad_request", Some("e3")),
        (
            json!({"type": "user_message", "id": "e4", "content": {"text": ""}}).to_string(),
            "bad_request",
            Some("e4"),
        ),
        (
            json!({"type": "user_message", "id": "e5", "content": {"text": long_text}}).to_string(),
            "too_large",
            Some("e5"),
        ),
        (
            json!({"type": "feedback", "id": "e6", "content": {"rating": 9}}).to_string(),
            "bad_request",
            Some("e6"),
        ),
        (
            json!({"type": "feedback", "id": "e7", "content": {}}).to_string(),
            "bad_request",
            Some("e7"),
        ),
        (json!({"type": "ping", "id": 42}).to_string(), "bad_request", None),
        (json!({"type": "ping", "id": "i".repeat(65)}).to_string(), "bad_request", None),
        (
            json!({"type": "interaction", "id": "e8", "content": {"action": "swipe", "id": "x"}})
                .to_string(),
            "bad_request",
            Some("e8"),
        ),
        (
            json!({"type": "user_message", "id": "e9", "session_id": "no spaces", "content": {"text": "hi"}})
                .to_string(),
            "bad_request",
            Some("e9"),
        ),
        (format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)), "bad_request", None),
    ];
    for (frame, code, reply_to) in cases {
        client.send_text(&frame);
        let error = client.recv();
        assert_eq!(error["type"], "error", "{frame:.80}: {error}");
        assert_eq!(error["code"], code, "{frame:.80}: {error}");
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
        match reply_to {
            Some(id) => assert_eq!(error["reply_to"], id),
            None => assert!(error.get("reply_to").is_none(), "{error}"),
        }
        client.expect_quiet();
    }
    assert_still_chatting(&mut client);
}

/// A 4000-character text is within the limit.
#[test]
fn text_at_the_limit_is_accepted() {
    let server = TestServer::start();
    let mut client = server.connect("alice");
    let reply = client.say("max", &"é".repeat(4000));
    assert_eq!(reply["role"], "assistant");
}

/// Binary frames are answered `unsupported_frame`.
#[test]
fn binary_frames_are_unsupported() {
    let server = TestServer::start();
    let mut client = server.connect("alice");
    client.send_message(Message::binary(vec![1u8, 2, 3]));
    let error = client.recv();
    assert_eq!(error["code"], "unsupported_frame");
    assert_still_chatting(&mut client);
}

/// A frame over 64 KiB closes the connection with 1009; others are unharmed.
#[test]
fn oversized_frames_close_1009() {
    let server = TestServer::start();
    let mut bystander = server.connect("bob");
    let mut client = server.connect("alice");
    let big = json!({"type": "ping", "pad": "x".repeat(70 * 1024)}).to_string();
    client.send_text(&big);
    assert_eq!(client.expect_close().0, 1009);
    bystander.expect_quiet();
    let mut fresh = server.connect("alice");
    assert_still_chatting(&mut fresh);
}

/// A frame whose header announces more than the limit is refused on the
/// header, before its payload is read: the close arrives while the client
/// has sent only a few bytes of the gigabyte it announced.
#[test]
fn a_frame_announcing_too_much_is_refused_before_its_payload() {
    use std::io::Write;
    let server = TestServer::start();
    let mut client = server.connect("alice");
    let mut header = vec![0x81, 0xFF];
    header.extend_from_slice(&(1u64 << 30).to_be_bytes());
    header.extend_from_slice(&[1, 2, 3, 4]);
    header.extend_from_slice(b"{\"type\"");
    client
        .stream()
        .write_all(&header)
        .expect("write the header");
    assert_eq!(client.expect_close().0, 1009);
}

/// An id that is not a valid id (empty, too long, odd characters) is
/// answered `bad_request`, never with silence.
#[test]
fn an_invalid_id_is_answered_bad_request() {
    let server = TestServer::start();
    let mut client = server.connect("alice");
    for id in [json!(""), json!("x".repeat(300)), json!(7)] {
        client.send_json(json!({"type": "ping", "id": id}));
        let error = client.recv();
        assert_eq!(error["type"], "error", "{id}: {error}");
        assert_eq!(error["code"], "bad_request", "{id}: {error}");
    }
    assert_still_chatting(&mut client);
}

/// Reserved bits that no extension was agreed for are a protocol error.
#[test]
fn reserved_bits_close_1002() {
    use std::io::Write;
    let server = TestServer::start();
    let mut client = server.connect("alice");
    // FIN + RSV1 + text, masked, two bytes ("hi" under a zero mask).
    let frame = [0xC1, 0x82, 0, 0, 0, 0, b'h', b'i'];
    client.stream().write_all(&frame).expect("write the frame");
    assert_eq!(client.expect_close().0, 1002);
}

/// A fragmented text message is reassembled and handled as one.
#[test]
fn fragmented_messages_are_reassembled() {
    let server = TestServer::start();
    let mut client = server.connect("alice");
    let whole = json!({"type": "ping", "id": "frag"}).to_string();
    let (head, tail) = whole.as_bytes().split_at(7);
    client.send_message(Message::Frame(Frame::message(
        head.to_vec(),
        OpCode::Data(Data::Text),
        false,
    )));
    client.send_message(Message::Frame(Frame::message(
        tail.to_vec(),
        OpCode::Data(Data::Continue),
        true,
    )));
    assert_eq!(client.recv(), json!({"type": "pong", "reply_to": "frag"}));
}

/// Fragments that add up to more than the limit close 1009.
#[test]
fn reassembled_messages_are_bounded() {
    let server = TestServer::start();
    let mut client = server.connect("alice");
    let piece = vec![b' '; 40 * 1024];
    client.send_message(Message::Frame(Frame::message(
        piece.clone(),
        OpCode::Data(Data::Text),
        false,
    )));
    client.send_message(Message::Frame(Frame::message(
        piece,
        OpCode::Data(Data::Continue),
        false,
    )));
    assert_eq!(client.expect_close().0, 1009);
}

/// Text that is not UTF-8 closes the connection with 1007.
#[test]
fn invalid_utf8_closes_1007() {
    let server = TestServer::start();
    let mut client = server.connect("alice");
    client.send_message(Message::Frame(Frame::message(
        vec![b'{', 0xff, 0xfe, b'}'],
        OpCode::Data(Data::Text),
        true,
    )));
    assert_eq!(client.expect_close().0, 1007);
    let mut fresh = server.connect("alice");
    assert_still_chatting(&mut fresh);
}
