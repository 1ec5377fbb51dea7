//! What a client sends: every frame type, parsed once at the edge into a
//! [`Request`] and validated (lengths, ranges, "at least one of") before it
//! can reach an actor. A frame that fails becomes an [`ErrorFrame`] that
//! echoes the frame's `id` when that much could be read (docs/protocol.md,
//! "Errors").

use std::borrow::Cow;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::channels::stream::RecoverFrom;
use crate::model::ids::{ClientRef, SessionId};
use crate::protocol::calls::{parse_call, Call};
use crate::protocol::errors::{ErrorCode, ErrorFrame};

/// Limits the parser enforces; they come from config.toml.
#[derive(Debug, Clone, Copy)]
pub struct RequestLimits {
    pub max_text_chars: usize,
    pub max_publish_bytes: usize,
}

impl Default for RequestLimits {
    fn default() -> Self {
        RequestLimits {
            max_text_chars: 4000,
            max_publish_bytes: 32 * 1024,
        }
    }
}

/// One parsed client frame: what it asks for, and the `id` to echo back.
#[derive(Debug, Clone)]
pub struct Request {
    pub reply_to: Option<ClientRef>,
    pub body: RequestBody,
}

#[derive(Debug, Clone)]
pub enum RequestBody {
    UserMessage(UserMessage),
    Interaction(Interaction),
    Feedback(Feedback),
    Subscribe(Subscribe),
    Unsubscribe(Unsubscribe),
    Publish(Publish),
    Presence(PresenceQuery),
    Refresh(Refresh),
    Ping,
    /// A v1.1 `request`: a method and its parsed params.
    Call(Call),
}

impl RequestBody {
    /// The frame's `type`, for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            RequestBody::UserMessage(_) => "user_message",
            RequestBody::Interaction(_) => "interaction",
            RequestBody::Feedback(_) => "feedback",
            RequestBody::Subscribe(_) => "subscribe",
            RequestBody::Unsubscribe(_) => "unsubscribe",
            RequestBody::Publish(_) => "publish",
            RequestBody::Presence(_) => "presence",
            RequestBody::Refresh(_) => "refresh",
            RequestBody::Ping => "ping",
            RequestBody::Call(_) => "request",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct UserMessage {
    #[serde(default)]
    pub session_id: Option<SessionId>,
    pub content: TextContent,
    #[serde(default)]
    pub metadata: Option<UserMessageMetadata>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TextContent {
    pub text: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct UserMessageMetadata {
    #[serde(default)]
    pub character_id: Option<String>,
    #[serde(default)]
    pub world_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Interaction {
    #[serde(default)]
    pub session_id: Option<SessionId>,
    pub content: InteractionContent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InteractionAction {
    ButtonClick,
}

#[derive(Debug, Clone, Deserialize)]
pub struct InteractionContent {
    pub action: InteractionAction,
    pub id: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Feedback {
    #[serde(default)]
    pub session_id: Option<SessionId>,
    pub content: FeedbackContent,
}

#[derive(Debug, Clone, Deserialize)]
pub struct FeedbackContent {
    #[serde(default)]
    pub rating: Option<u8>,
    #[serde(default)]
    pub text: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Subscribe {
    pub channels: Vec<String>,
    #[serde(default)]
    pub recover: Option<std::collections::BTreeMap<String, RecoverFrom>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Unsubscribe {
    pub channels: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Publish {
    pub channel: String,
    pub data: Value,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PresenceQuery {
    pub channel: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Refresh {
    pub token: String,
}

/// Interaction button ids are echoed back in replies, so they are bounded
/// like every other client-chosen id.
pub const MAX_BUTTON_ID_CHARS: usize = 64;

/// Parses and validates one text frame. On failure the error carries the
/// frame's `id` when that much could be read, so the error can echo it.
pub fn parse_request(text: &str, limits: &RequestLimits) -> Result<Request, ErrorFrame> {
    match parse_direct(text, limits) {
        Some(parsed) => parsed,
        None => parse_general(text, limits),
    }
}

/// Any frame, through a tree of values: every refusal is worded here.
fn parse_general(text: &str, limits: &RequestLimits) -> Result<Request, ErrorFrame> {
    let mut object: Map<String, Value> = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(object)) => object,
        Ok(_) => {
            return Err(ErrorFrame::new(
                ErrorCode::BadRequest,
                "a frame must be a JSON object",
            ))
        }
        Err(err) => {
            return Err(ErrorFrame::new(
                ErrorCode::BadRequest,
                format!("invalid JSON: {err}"),
            ))
        }
    };

    let reply_to = match object.remove("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) => Some(
            ClientRef::parse(&id)
                .map_err(|err| ErrorFrame::new(ErrorCode::BadRequest, format!("bad id: {err}")))?,
        ),
        Some(_) => {
            return Err(ErrorFrame::new(
                ErrorCode::BadRequest,
                "id must be a string",
            ))
        }
    };
    let fail = |code: ErrorCode, message: String| ErrorFrame {
        reply_to: reply_to.clone(),
        ..ErrorFrame::new(code, message)
    };

    let kind = match object.get("type") {
        Some(Value::String(kind)) => kind.clone(),
        Some(_) => return Err(fail(ErrorCode::UnknownType, "type must be a string".into())),
        None => return Err(fail(ErrorCode::UnknownType, "missing type".into())),
    };
    if kind == "request" {
        return parse_call_frame(object, reply_to, limits);
    }
    let fields = Value::Object(object);
    let decode = |fields: Value| -> Result<RequestBody, ErrorFrame> {
        fn typed<T: for<'de> Deserialize<'de>>(fields: Value) -> Result<T, String> {
            serde_json::from_value(fields).map_err(|err| err.to_string())
        }
        let body = match kind.as_str() {
            "user_message" => typed(fields).map(RequestBody::UserMessage),
            "interaction" => typed(fields).map(RequestBody::Interaction),
            "feedback" => typed(fields).map(RequestBody::Feedback),
            "subscribe" => typed(fields).map(RequestBody::Subscribe),
            "unsubscribe" => typed(fields).map(RequestBody::Unsubscribe),
            "publish" => typed(fields).map(RequestBody::Publish),
            "presence" => typed(fields).map(RequestBody::Presence),
            "refresh" => typed(fields).map(RequestBody::Refresh),
            "ping" => Ok(RequestBody::Ping),
            other => {
                return Err(fail(
                    ErrorCode::UnknownType,
                    format!("unknown type {:?}", truncate(other, 64)),
                ))
            }
        };
        body.map_err(|message| fail(ErrorCode::BadRequest, message))
    };
    let body = decode(fields)?;
    validate(&body, limits).map_err(|(code, message)| fail(code, message))?;
    Ok(Request { reply_to, body })
}

/// The frames that are not `request`s, parsed straight into their types:
/// a first pass reads `type` and `id` and skips the rest, a second reads
/// the body's own fields. `None` hands the frame to the general way, which
/// builds a tree of values first and words each refusal; whatever this
/// takes, the general way takes alike, so it decides every frame this
/// does not. (The tree was 5 % of the server's time in the request/reply
/// profile.)
fn parse_direct(text: &str, limits: &RequestLimits) -> Option<Result<Request, ErrorFrame>> {
    #[derive(Deserialize)]
    struct Head<'a> {
        #[serde(rename = "type", borrow)]
        kind: Cow<'a, str>,
        #[serde(borrow, default)]
        id: Option<Cow<'a, str>>,
    }
    fn typed<T: DeserializeOwned>(text: &str) -> Option<T> {
        serde_json::from_str(text).ok()
    }
    // serde reads a struct from an array too; only an object is a frame.
    if !text.trim_start().starts_with('{') {
        return None;
    }
    let head: Head<'_> = serde_json::from_str(text).ok()?;
    let reply_to = match head.id {
        Some(id) => Some(ClientRef::parse(&id).ok()?),
        None => None,
    };
    let body = match head.kind.as_ref() {
        "user_message" => RequestBody::UserMessage(typed(text)?),
        "interaction" => RequestBody::Interaction(typed(text)?),
        "feedback" => RequestBody::Feedback(typed(text)?),
        "subscribe" => RequestBody::Subscribe(typed(text)?),
        "unsubscribe" => RequestBody::Unsubscribe(typed(text)?),
        "publish" => RequestBody::Publish(typed(text)?),
        "presence" => RequestBody::Presence(typed(text)?),
        "refresh" => RequestBody::Refresh(typed(text)?),
        "ping" => RequestBody::Ping,
        _ => return None,
    };
    Some(match validate(&body, limits) {
        Ok(()) => Ok(Request { reply_to, body }),
        Err((code, message)) => Err(ErrorFrame {
            reply_to,
            ..ErrorFrame::new(code, message)
        }),
    })
}

/// A `request` frame: `method` and `params`, answered by a `response` or
/// an `error` that names it, so it must carry an `id`.
fn parse_call_frame(
    mut object: Map<String, Value>,
    reply_to: Option<ClientRef>,
    limits: &RequestLimits,
) -> Result<Request, ErrorFrame> {
    let fail = |message: &str| ErrorFrame {
        reply_to: reply_to.clone(),
        ..ErrorFrame::new(ErrorCode::BadRequest, message)
    };
    if reply_to.is_none() {
        return Err(fail("a request needs an id to answer to"));
    }
    let method = match object.remove("method") {
        Some(Value::String(method)) => method,
        Some(_) => return Err(fail("method must be a string")),
        None => return Err(fail("missing method")),
    };
    let params = object.remove("params").unwrap_or(Value::Null);
    let call = parse_call(&method, params, limits.max_text_chars)
        .map_err(|error| error.replying_to(reply_to.clone()))?;
    Ok(Request {
        reply_to,
        body: RequestBody::Call(call),
    })
}

/// Only the `id` of a frame that will not be handled (the rate limit
/// refused it), so that the refusal can name it; `None` when there is none
/// or it is not a valid id. The rest of the frame is skipped unread.
pub fn frame_id(text: &str) -> Option<ClientRef> {
    #[derive(Deserialize)]
    struct IdOnly<'a> {
        #[serde(borrow, default)]
        id: Option<std::borrow::Cow<'a, str>>,
    }
    let frame: IdOnly<'_> = serde_json::from_str(text).ok()?;
    ClientRef::parse(&frame.id?).ok()
}

fn truncate(text: &str, max_chars: usize) -> &str {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => &text[..cut],
        None => text,
    }
}

/// Rules serde's types cannot say: lengths, ranges, "at least one of".
fn validate(body: &RequestBody, limits: &RequestLimits) -> Result<(), (ErrorCode, String)> {
    let check_text = |what: &str, text: &str| {
        let chars = text.chars().count();
        if text.trim().is_empty() {
            Err((ErrorCode::BadRequest, format!("{what} must not be empty")))
        } else if chars > limits.max_text_chars {
            Err((
                ErrorCode::TooLarge,
                format!(
                    "{what} is {chars} characters; the limit is {}",
                    limits.max_text_chars
                ),
            ))
        } else {
            Ok(())
        }
    };
    match body {
        RequestBody::UserMessage(message) => check_text("content.text", &message.content.text),
        RequestBody::Interaction(interaction) => {
            let id = &interaction.content.id;
            if id.is_empty() || id.chars().count() > MAX_BUTTON_ID_CHARS {
                Err((
                    ErrorCode::BadRequest,
                    format!("content.id must be 1-{MAX_BUTTON_ID_CHARS} characters"),
                ))
            } else {
                Ok(())
            }
        }
        RequestBody::Feedback(feedback) => {
            let content = &feedback.content;
            if content.rating.is_none() && content.text.is_none() {
                return Err((
                    ErrorCode::BadRequest,
                    "feedback needs content.rating or content.text".into(),
                ));
            }
            if let Some(rating) = content.rating {
                if !(1..=5).contains(&rating) {
                    return Err((
                        ErrorCode::BadRequest,
                        format!("content.rating must be 1-5, not {rating}"),
                    ));
                }
            }
            match &content.text {
                Some(text) => check_text("content.text", text),
                None => Ok(()),
            }
        }
        RequestBody::Publish(publish) => {
            // Counting the serialized size without building the string.
            let mut counter = ByteCounter(0);
            if serde_json::to_writer(&mut counter, &publish.data).is_err()
                || counter.0 > limits.max_publish_bytes
            {
                Err((
                    ErrorCode::TooLarge,
                    format!(
                        "data serializes to more than {} bytes",
                        limits.max_publish_bytes
                    ),
                ))
            } else {
                Ok(())
            }
        }
        RequestBody::Refresh(refresh) if refresh.token.is_empty() => {
            Err((ErrorCode::BadRequest, "token must not be empty".into()))
        }
        _ => Ok(()),
    }
}

struct ByteCounter(usize);

impl std::io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whatever the direct way takes, the general way reads the same; the
    /// rest is left to the general way.
    #[test]
    fn the_direct_way_agrees_with_the_general_one() {
        let limits = RequestLimits::default();
        let frames = [
            r#"{"type":"user_message","id":"m1","content":{"text":"hello"}}"#,
            r#" {"type":"user_message","content":{"text":"hi"},"session_id":"sess_1","metadata":{"world_id":"w"}}"#,
            r#"{"type":"user_message","id":null,"content":{"text":"x"},"extra":[1,2]}"#,
            r#"{"type":"user_message","id":"m2","content":{"text":"   "}}"#,
            r#"{"type":"user_message","id":"m3","content":{"text":"a","text":"b"}}"#,
            r#"{"type":"user_message","id":7,"content":{"text":"hello"}}"#,
            r#"{"type":"user_message","id":"","content":{"text":"hello"}}"#,
            r#"{"type":"user_message","content":["hi"]}"#,
            r#"["user_message",null,{"text":"hi"}]"#,
            r#"{"type":"publish","id":"p","channel":"room:a","data":{"n":1.5,"big":18446744073709551615}}"#,
            r#"{"type":"subscribe","id":"s","channels":["room:a"],"recover":{"room:a":{"offset":3,"epoch":"e"}}}"#,
            r#"{"type":"unsubscribe","channels":["room:a"]}"#,
            r#"{"type":"feedback","content":{"rating":5,"text":"good"}}"#,
            r#"{"type":"feedback","content":{"rating":9}}"#,
            r#"{"type":"interaction","content":{"id":"ex_breathing","action":"click"}}"#,
            r#"{"type":"presence","id":"q","channel":"room:a"}"#,
            r#"{"type":"refresh","id":"r","token":"t"}"#,
            r#"{"type":"ping","id":"p1"}"#,
            r#"{"type":"ping","type":"ping"}"#,
            r#"{"type":"request","id":"c","method":"sessions.list","params":{}}"#,
            r#"{"type":"nonsense","id":"n"}"#,
            r#"{"type":5}"#,
        ];
        let mut direct = 0;
        for frame in frames {
            let general = format!("{:?}", parse_general(frame, &limits));
            if let Some(parsed) = parse_direct(frame, &limits) {
                direct += 1;
                assert_eq!(format!("{parsed:?}"), general, "{frame}");
            }
            assert_eq!(
                format!("{:?}", parse_request(frame, &limits)),
                general,
                "{frame}"
            );
        }
        assert!(
            direct >= 12,
            "the common frames go the direct way ({direct})"
        );
    }

    #[test]
    fn the_id_of_a_refused_frame_is_read_without_the_rest() {
        assert_eq!(
            frame_id(r#"{"type": "ping", "id": "p7", "extra": [1, {"a": 2}]}"#),
            Some(ClientRef::parse("p7").unwrap())
        );
        assert_eq!(frame_id(r#"{"type": "ping"}"#), None);
        assert_eq!(frame_id(r#"{"id": 5}"#), None);
        assert_eq!(frame_id("not json"), None);
        assert_eq!(
            frame_id(&format!(r#"{{"id": "{}"}}"#, "x".repeat(65))),
            None
        );
    }

    fn parse(text: &str) -> Result<Request, ErrorFrame> {
        parse_request(text, &RequestLimits::default())
    }

    fn code_of(text: &str) -> ErrorCode {
        match parse(text) {
            Ok(request) => panic!("{text} parsed as {:?}", request.body.kind()),
            Err(err) => err.code,
        }
    }

    #[test]
    fn a_user_message_parses_with_its_id() {
        let request =
            parse(r#"{"type":"user_message","id":"m1","content":{"text":"hi"},"extra":1}"#)
                .unwrap();
        assert_eq!(request.reply_to.unwrap().as_str(), "m1");
        match request.body {
            RequestBody::UserMessage(message) => assert_eq!(message.content.text, "hi"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_frames_get_the_codes_of_section_3() {
        assert_eq!(code_of("not json"), ErrorCode::BadRequest);
        assert_eq!(code_of("[1,2]"), ErrorCode::BadRequest);
        assert_eq!(code_of(r#"{"id":"x"}"#), ErrorCode::UnknownType);
        assert_eq!(code_of(r#"{"type":"dance"}"#), ErrorCode::UnknownType);
        assert_eq!(code_of(r#"{"type":7}"#), ErrorCode::UnknownType);
        assert_eq!(
            code_of(r#"{"type":"user_message","content":{"text":""}}"#),
            ErrorCode::BadRequest
        );
        assert_eq!(code_of(r#"{"type":"user_message"}"#), ErrorCode::BadRequest);
        let long = format!(
            r#"{{"type":"user_message","content":{{"text":"{}"}}}}"#,
            "a".repeat(4001)
        );
        assert_eq!(code_of(&long), ErrorCode::TooLarge);
        assert_eq!(
            code_of(r#"{"type":"feedback","content":{"rating":9}}"#),
            ErrorCode::BadRequest
        );
        assert_eq!(
            code_of(r#"{"type":"feedback","content":{}}"#),
            ErrorCode::BadRequest
        );
        assert_eq!(
            code_of(r#"{"type":"ping","id":{"a":1}}"#),
            ErrorCode::BadRequest
        );
        let long_id = format!(r#"{{"type":"ping","id":"{}"}}"#, "i".repeat(65));
        assert_eq!(code_of(&long_id), ErrorCode::BadRequest);
        assert_eq!(
            code_of(r#"{"type":"interaction","content":{"action":"swipe","id":"x"}}"#),
            ErrorCode::BadRequest
        );
        assert_eq!(
            code_of(r#"{"type":"user_message","session_id":"a b","content":{"text":"hi"}}"#),
            ErrorCode::BadRequest
        );
    }

    #[test]
    fn a_text_of_exactly_the_limit_passes() {
        let text = format!(
            r#"{{"type":"user_message","content":{{"text":"{}"}}}}"#,
            "é".repeat(4000)
        );
        assert!(parse(&text).is_ok());
    }

    #[test]
    fn errors_echo_the_id_once_it_is_known() {
        let err = parse(r#"{"type":"feedback","id":"f1","content":{"rating":0}}"#).unwrap_err();
        assert_eq!(err.reply_to.unwrap().as_str(), "f1");
        let err = parse(r#"{"type":"nope","id":"n1"}"#).unwrap_err();
        assert_eq!(err.reply_to.unwrap().as_str(), "n1");
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(code_of(&deep), ErrorCode::BadRequest);
    }

    #[test]
    fn publish_data_is_bounded_by_its_serialized_size() {
        let big = format!(
            r#"{{"type":"publish","channel":"room:a","data":"{}"}}"#,
            "x".repeat(33 * 1024)
        );
        assert_eq!(code_of(&big), ErrorCode::TooLarge);
    }
}
