//! Every type that crosses the wire, in one place: the client's requests,
//! parsed once at the edge into [`Request`], and the server's frames
//! ([`ServerFrame`]), which actors build as typed values and only the session
//! turns into JSON. Validation rules of PROTOCOL.md section 3 live here too, so
//! a bad frame becomes an [`ErrorFrame`] before it can reach an actor.

use bytestring::ByteString;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

use std::collections::BTreeMap;

use crate::broker::{Epoch, Payload, PresenceEntry, Publication, Publisher};
use crate::channels::{ChannelName, Refusal};
use crate::crisis::CrisisType;
use crate::ids::{ClientRef, ConnId, MessageId, PlayerId, SessionId};
use crate::progress::MarkerId;

// ---------------------------------------------------------------------------
// Client -> server
// ---------------------------------------------------------------------------

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
pub struct RecoverFrom {
    pub offset: u64,
    pub epoch: String,
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

// ---------------------------------------------------------------------------
// Server -> client
// ---------------------------------------------------------------------------

/// Everything the server sends, tagged by `type`.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    Message(ChatMessage),
    Chunk(Chunk),
    Response(Response),
    Error(ErrorFrame),
    Pong(Pong),
    Event(ChannelEvent),
}

/// A frame serialized once, to be written to one or many sockets as is.
/// Built only from a [`ServerFrame`], so it is always a valid frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedFrame(ByteString);

impl EncodedFrame {
    pub fn encode(frame: &ServerFrame) -> Self {
        match serde_json::to_string(frame) {
            Ok(json) => EncodedFrame(ByteString::from(json)),
            // Our types have string keys only, so this cannot happen; if it
            // ever does, the client still gets a well-formed frame.
            Err(err) => {
                log::error!("frame_encode_failed error={err}");
                EncodedFrame(ByteString::from_static(
                    r#"{"type":"error","code":"internal","message":"could not encode a reply"}"#,
                ))
            }
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_inner(self) -> ByteString {
        self.0
    }
}

impl From<&ServerFrame> for EncodedFrame {
    fn from(frame: &ServerFrame) -> Self {
        EncodedFrame::encode(frame)
    }
}

/// RFC 3339 in UTC with milliseconds and a trailing `Z`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub DateTime<Utc>);

impl Timestamp {
    pub fn now() -> Self {
        Timestamp(Utc::now())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0.to_rfc3339_opts(SecondsFormat::Millis, true))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Assistant,
    System,
    Interactive,
}

/// The one shape of all chat output (PROTOCOL.md section 4).
#[derive(Debug, Clone, Serialize)]
pub struct ChatMessage {
    pub id: MessageId,
    pub role: Role,
    pub session_id: Option<SessionId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<ClientRef>,
    pub content: MessageContent,
    pub timestamp: Timestamp,
    pub metadata: MessageMetadata,
}

impl ChatMessage {
    pub fn new(
        role: Role,
        session_id: Option<SessionId>,
        reply_to: Option<ClientRef>,
        content: MessageContent,
        metadata: MessageMetadata,
    ) -> Self {
        ChatMessage {
            id: MessageId::generate(),
            role,
            session_id,
            reply_to,
            content,
            timestamp: Timestamp::now(),
            metadata,
        }
    }

    /// The typing indicator that brackets an assistant reply (section 4.4).
    pub fn typing(
        status: TypingStatus,
        session_id: Option<SessionId>,
        reply_to: Option<ClientRef>,
    ) -> Self {
        ChatMessage::new(
            Role::System,
            session_id,
            reply_to,
            MessageContent::Typing(TypingContent {
                event: TypingEvent::Typing,
                status,
            }),
            MessageMetadata::None(EmptyMetadata {}),
        )
    }

    pub fn text(&self) -> Option<&str> {
        match &self.content {
            MessageContent::Body(body) => Some(&body.text),
            MessageContent::Typing(_) => None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum MessageContent {
    Body(MessageBody),
    Typing(TypingContent),
}

impl MessageContent {
    pub fn new(text: impl Into<String>, elements: Vec<Element>) -> Self {
        MessageContent::Body(MessageBody {
            text: text.into(),
            elements,
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct MessageBody {
    pub text: String,
    pub elements: Vec<Element>,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct TypingContent {
    pub event: TypingEvent,
    pub status: TypingStatus,
}

#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TypingEvent {
    Typing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TypingStatus {
    Start,
    Stop,
}

/// Buttons, crisis resources and the rest (section 4), tagged by `type`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Element {
    Button {
        id: String,
        label: String,
    },
    Resource {
        id: String,
        label: String,
        method: ContactMethod,
        info: String,
        emergency: bool,
    },
    Recommendation {
        id: String,
        label: String,
    },
    Instruction {
        id: String,
        label: String,
    },
    Progress {
        id: MarkerId,
        label: String,
    },
    Ack {
        id: String,
        label: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactMethod {
    Phone,
    Text,
    Chat,
    Website,
}

/// `metadata` differs by kind of message; each kind has its own struct.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum MessageMetadata {
    Welcome(WelcomeMetadata),
    Assistant(AssistantMetadata),
    Exercise(ExerciseMetadata),
    Feedback(FeedbackMetadata),
    None(EmptyMetadata),
}

#[derive(Debug, Clone, Serialize)]
pub struct EmptyMetadata {}

#[derive(Debug, Clone, Serialize)]
pub struct WelcomeMetadata {
    pub event: &'static str,
    pub player_id: PlayerId,
    pub connection_id: ConnId,
    pub server_time: Timestamp,
    pub heartbeat_interval_s: u64,
    pub features: Vec<&'static str>,
    pub safety: Safety,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Safety {
    pub crisis: bool,
    pub types: Vec<CrisisType>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AssistantMetadata {
    pub recommendations: Vec<Recommendation>,
    pub safety: Safety,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recommendation {
    pub recommendation_id: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    pub recommendation_type: &'static str,
    pub priority: u8,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExerciseMetadata {
    pub event: ExerciseEvent,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exercise_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExerciseEvent {
    ExerciseStarted,
    ExerciseCompleted,
    StartFirst,
    Acknowledged,
    /// Sent to the player's other connections when a marker is recorded.
    ProgressRecorded,
}

#[derive(Debug, Clone, Serialize)]
pub struct FeedbackMetadata {
    pub event: &'static str,
    pub adjustments: Vec<&'static str>,
    pub recommendations: Vec<Recommendation>,
}

/// Streaming piece of an assistant reply (section 4.5).
#[derive(Debug, Clone, Serialize)]
pub struct Chunk {
    pub message_id: MessageId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<ClientRef>,
    pub index: u32,
    pub text: String,
    #[serde(rename = "final")]
    pub is_final: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Response {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<ClientRef>,
    pub result: ResponseResult,
}

#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum ResponseResult {
    Refreshed(RefreshResult),
    Subscribed(SubscribeResult),
    Unsubscribed(UnsubscribeResult),
    Published(PublishResult),
    Presence(PresenceResult),
}

#[derive(Debug, Clone, Serialize)]
pub struct SubscribeResult {
    pub channels: BTreeMap<ChannelName, ChannelPosition>,
    pub refused: BTreeMap<String, Refusal>,
}

/// Where a subscribed channel stands: `offset` is what to recover from
/// later; `missed` publications follow the response.
#[derive(Debug, Clone, Serialize)]
pub struct ChannelPosition {
    pub offset: u64,
    pub epoch: Epoch,
    pub recovered: bool,
    pub missed: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct UnsubscribeResult {
    pub channels: Vec<ChannelName>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PublishResult {
    pub offset: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PresenceResult {
    pub players: Vec<PresenceEntry>,
}

/// What happens in a channel, tagged by `event`.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ChannelEvent {
    Publication {
        channel: ChannelName,
        offset: u64,
        epoch: Epoch,
        publisher: Publisher,
        data: Payload,
        timestamp: Timestamp,
    },
    Join {
        channel: ChannelName,
        data: PresencePlayer,
    },
    Leave {
        channel: ChannelName,
        data: PresencePlayer,
    },
}

impl ChannelEvent {
    pub fn publication(publication: Publication) -> Self {
        ChannelEvent::Publication {
            channel: publication.channel,
            offset: publication.offset,
            epoch: publication.epoch,
            publisher: publication.publisher,
            data: publication.data,
            timestamp: publication.timestamp,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PresencePlayer {
    pub player_id: PlayerId,
}

#[derive(Debug, Clone, Serialize)]
pub struct RefreshResult {
    pub expires_at: Timestamp,
}

#[derive(Debug, Clone, Serialize)]
pub struct Pong {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<ClientRef>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    UnknownType,
    UnsupportedFrame,
    Forbidden,
    BadChannel,
    NotAvailable,
    TooLarge,
    RateLimited,
    LimitExceeded,
    TokenExpired,
    Internal,
}

/// A failure the connection survives (section 6).
#[derive(Debug, Clone, Serialize)]
pub struct ErrorFrame {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<ClientRef>,
    pub code: ErrorCode,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
    /// On a `subscribe` that granted nothing: why each channel was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<BTreeMap<String, Refusal>>,
}

impl ErrorFrame {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorFrame {
            reply_to: None,
            code,
            message: message.into(),
            retry_after_ms: None,
            refused: None,
        }
    }

    pub fn replying_to(mut self, reply_to: Option<ClientRef>) -> Self {
        self.reply_to = reply_to;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn channel_events_serialize_to_the_wire_shape() {
        let channel = ChannelName::parse("room:lobby").unwrap();
        let publication = ChannelEvent::Publication {
            channel: channel.clone(),
            offset: 42,
            epoch: Epoch::from_string("e1".into()),
            publisher: Publisher::Server,
            data: Payload::from_value(&serde_json::json!({"a": [1, 2]})).unwrap(),
            timestamp: Timestamp::now(),
        };
        let value = serde_json::to_value(ServerFrame::Event(publication)).unwrap();
        assert_eq!(value["type"], "event");
        assert_eq!(value["event"], "publication");
        assert_eq!(value["channel"], "room:lobby");
        assert_eq!(value["offset"], 42);
        assert_eq!(value["epoch"], "e1");
        assert_eq!(value["publisher"], "server");
        assert_eq!(value["data"], serde_json::json!({"a": [1, 2]}));
        let join = ChannelEvent::Join {
            channel,
            data: PresencePlayer {
                player_id: PlayerId::parse("alice").unwrap(),
            },
        };
        let value = serde_json::to_value(ServerFrame::Event(join)).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"type": "event", "event": "join", "channel": "room:lobby",
                               "data": {"player_id": "alice"}})
        );
    }

    #[test]
    fn timestamps_are_rfc3339_millis_utc() {
        let ts = Timestamp(DateTime::from_timestamp(1_795_000_000, 123_000_000).unwrap());
        let json = serde_json::to_string(&ts).unwrap();
        assert!(json.ends_with(".123Z\""), "{json}");
    }

    #[test]
    fn chat_messages_serialize_to_the_wire_shape() {
        let message = ChatMessage::new(
            Role::Interactive,
            None,
            Some(ClientRef::parse("c1").unwrap()),
            MessageContent::new(
                "",
                vec![Element::Button {
                    id: "ex_breathing_complete".into(),
                    label: "Complete".into(),
                }],
            ),
            MessageMetadata::None(EmptyMetadata {}),
        );
        let value = serde_json::to_value(ServerFrame::Message(message)).unwrap();
        assert_eq!(value["type"], "message");
        assert_eq!(value["role"], "interactive");
        assert!(value["session_id"].is_null());
        assert_eq!(value["reply_to"], "c1");
        assert_eq!(value["content"]["elements"][0]["type"], "button");
        let typing = ChatMessage::typing(TypingStatus::Start, None, None);
        let value = serde_json::to_value(ServerFrame::Message(typing)).unwrap();
        assert_eq!(value["content"]["event"], "typing");
        assert_eq!(value["content"]["status"], "start");
        assert!(value.get("reply_to").is_none());
    }
}
