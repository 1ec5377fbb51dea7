//! What the server sends, tagged by `type`: actors build these as typed
//! values and the session turns them into JSON once ([`EncodedFrame`]).

use std::cell::RefCell;
use std::collections::BTreeMap;

use bytestring::ByteString;
use serde::Serialize;

use crate::channels::stream::{Epoch, Payload, PresenceEntry, Publication, Publisher};
use crate::model::channel_name::ChannelName;
use crate::model::ids::{ClientRef, ConnId, MessageId, PlayerId, SessionId};
use crate::model::progress::MarkerId;
use crate::model::time::Timestamp;
use crate::protocol::errors::{ErrorCode, ErrorFrame, Refusal};
use crate::protocol::sessions::{
    CancelResult, MessagesPage, RetryResult, SentResult, SessionDetail, SessionView, SessionsPage,
};
use crate::therapy::crisis::{CrisisCategory, CrisisType, Severity};
use crate::therapy::exercises::Exercise;
use crate::therapy::recommendations::Recommendation;
use crate::therapy::resources::{ContactMethod, CrisisResource};

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

thread_local! {
    /// Where this thread serializes frames. It keeps its size, so a frame
    /// is written into room that is already there and then copied once
    /// into an allocation of its exact size. serde_json's own buffer
    /// starts at 128 bytes and doubles as it fills: three reallocations,
    /// each a copy, for a typical 800-byte reply (a fifth of the time the
    /// request/reply profile spent encoding).
    static ENCODE_SCRATCH: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(SCRATCH_KEPT));
}

/// A scratch buffer grown past this by a large frame is given back.
const SCRATCH_KEPT: usize = 16 * 1024;

impl EncodedFrame {
    pub fn encode(frame: &ServerFrame) -> Self {
        let encoded = ENCODE_SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut scratch) => {
                scratch.clear();
                let written = serde_json::to_writer(&mut *scratch, frame).and_then(|()| {
                    std::str::from_utf8(&scratch)
                        .map(ByteString::from)
                        .map_err(serde::ser::Error::custom)
                });
                if scratch.capacity() > SCRATCH_KEPT {
                    *scratch = Vec::with_capacity(SCRATCH_KEPT);
                }
                written
            }
            // Only if a frame's own serialization encoded another frame.
            Err(_) => serde_json::to_string(frame).map(ByteString::from),
        });
        match encoded {
            Ok(json) => EncodedFrame(json),
            // Our types have string keys only, so this cannot happen; if it
            // ever does, the client still gets a well-formed frame.
            Err(err) => {
                log::error!(error:% = err; "frame_encode_failed");
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Assistant,
    System,
    Interactive,
}

/// The one shape of all chat output (docs/protocol.md, section 4).
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

    /// The typing indicator that brackets an assistant reply (docs/protocol.md, section 4.4).
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

/// Buttons, crisis resources and the rest (docs/protocol.md, section 4), tagged by
/// `type`.
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

impl Element {
    /// The button that offers an exercise.
    pub fn offer(exercise: &Exercise) -> Self {
        Element::Button {
            id: exercise.id.clone(),
            label: exercise.title.clone(),
        }
    }

    pub fn resource(resource: &CrisisResource) -> Self {
        Element::Resource {
            id: resource.id.clone(),
            label: resource.label.clone(),
            method: resource.method,
            info: resource.info.clone(),
            emergency: resource.emergency,
        }
    }

    pub fn recommendation(recommendation: &Recommendation) -> Self {
        Element::Recommendation {
            id: recommendation.recommendation_id.into(),
            label: recommendation.title.into(),
        }
    }
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
    /// The clinical categories behind `types` (`method`, `farewell`, ...);
    /// absent when no crisis.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<CrisisCategory>,
    /// `concern` or `crisis` (happening now); absent when no crisis.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
}

/// `sessions.create`, `sessions.archive`.
#[derive(Debug, Clone, Serialize)]
pub struct SessionResult {
    pub session: SessionView,
    /// On `sessions.create`, when the title shows a crisis: the verdict,
    /// as a reply's `safety` gives it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub safety: Option<Safety>,
    /// With `safety`: the crisis resources (emergency first) and the
    /// exercise offers, as a reply's `elements` give them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub elements: Vec<Element>,
}

impl SessionResult {
    pub fn plain(session: SessionView) -> SessionResult {
        SessionResult {
            session,
            safety: None,
            elements: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct AssistantMetadata {
    pub recommendations: Vec<Recommendation>,
    pub safety: Safety,
    /// The model could not answer and the built-in assistant did.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub fallback: bool,
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
    /// The crisis check of the feedback's text.
    pub safety: Safety,
}

/// Streaming piece of an assistant reply (docs/protocol.md, section 4.4).
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
    Session(SessionResult),
    Sessions(SessionsPage),
    SessionDetail(SessionDetail),
    Sent(SentResult),
    Cancelled(CancelResult),
    Retried(RetryResult),
    Messages(MessagesPage),
    Agents(crate::protocol::agents::AgentsResult),
    Agent(crate::protocol::agents::AgentResult),
    Tools(crate::protocol::agents::ToolsResult),
    Decided(crate::protocol::agents::DecisionResult),
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
    /// How many players are there.
    pub count: usize,
    /// The first [`PresenceResult::MAX_LISTED`] of them, by player id.
    pub players: Vec<PresenceEntry>,
}

impl PresenceResult {
    /// A room of thousands is answered with its count and a page, not a
    /// frame past the client's message limit.
    pub const MAX_LISTED: usize = 100;

    pub fn capped(mut players: Vec<PresenceEntry>) -> Self {
        let count = players.len();
        players.truncate(Self::MAX_LISTED);
        PresenceResult { count, players }
    }
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
    /// The server took this connection out of the channel: nothing more
    /// of it follows.
    Unsubscribe {
        channel: ChannelName,
        data: Unsubscribed,
    },
}

/// Why the server unsubscribed a connection.
#[derive(Debug, Clone, Serialize)]
pub struct Unsubscribed {
    pub code: ErrorCode,
    pub reason: String,
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

#[cfg(test)]
mod tests {
    use super::*;

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
