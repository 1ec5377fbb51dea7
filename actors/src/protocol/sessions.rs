//! The v1.1 assistant sessions on the wire (docs/protocol.md, section 10):
//! a session and a stored message as requests return them, the result of
//! each method, and the events of a reply stream, which travel as the
//! `data` of publications on `session:<id>`.
//!
//! A message's `elements`, `safety` and `usage` are the JSON the store
//! keeps: they pass through as raw JSON text, never re-parsed.

use serde::Serialize;
use serde_json::value::RawValue;

use crate::model::ids::{MessageId, SessionId};
use crate::model::time::Timestamp;

/// A session as a client sees it.
#[derive(Debug, Clone, Serialize)]
pub struct SessionView {
    pub id: SessionId,
    pub title: Option<String>,
    pub agent: String,
    pub pillar: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub archived: bool,
    pub message_count: u64,
}

/// A stored message as a client sees it.
#[derive(Debug, Clone, Serialize)]
pub struct MessageView {
    pub id: MessageId,
    pub session_id: SessionId,
    pub role: &'static str,
    pub text: String,
    pub status: &'static str,
    pub created_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Timestamp>,
    pub elements: Box<RawValue>,
    pub safety: Box<RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Box<RawValue>>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub fallback: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<String>,
    /// On a reply: the user message it answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<MessageId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_message_id: Option<String>,
}

/// `sessions.list`: newest first.
#[derive(Debug, Clone, Serialize)]
pub struct SessionsPage {
    pub sessions: Vec<SessionView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// `sessions.get`: the session and its recent messages, oldest first.
#[derive(Debug, Clone, Serialize)]
pub struct SessionDetail {
    pub session: SessionView,
    pub messages: Vec<MessageView>,
}

/// `messages.send`.
#[derive(Debug, Clone, Serialize)]
pub struct SentResult {
    pub message_id: MessageId,
    pub reply_id: MessageId,
}

/// `messages.cancel`.
#[derive(Debug, Clone, Serialize)]
pub struct CancelResult {
    pub cancelled: bool,
}

/// `messages.retry`.
#[derive(Debug, Clone, Serialize)]
pub struct RetryResult {
    pub reply_id: MessageId,
}

/// `messages.list`: oldest first.
#[derive(Debug, Clone, Serialize)]
pub struct MessagesPage {
    pub messages: Vec<MessageView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// One event of a reply stream: the `data` of a publication on the
/// session's channel, as `{"event": "message.delta", "data": {...}}`.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", content = "data")]
pub enum SessionEvent {
    /// A user message or a reply as it starts.
    #[serde(rename = "message.created")]
    MessageCreated(MessageView),
    #[serde(rename = "assistant.status")]
    AssistantStatus(StatusUpdate),
    #[serde(rename = "message.delta")]
    MessageDelta(Delta),
    #[serde(rename = "message.completed")]
    MessageCompleted(MessageView),
    #[serde(rename = "message.cancelled")]
    MessageCancelled(ReplyEnded),
    #[serde(rename = "message.failed")]
    MessageFailed(ReplyEnded),
    #[serde(rename = "tool.started")]
    ToolStarted(ToolStarted),
    #[serde(rename = "tool.completed")]
    ToolCompleted(ToolCompleted),
    /// Same data as `tool.started`: the call waits for the player.
    #[serde(rename = "tool.approval_required")]
    ToolApprovalRequired(ToolStarted),
}

/// `tool.started`: the assistant called one of Hearth's tools.
#[derive(Debug, Clone, Serialize)]
pub struct ToolStarted {
    pub message_id: MessageId,
    pub call_id: String,
    pub tool: String,
    /// The arguments as JSON when they parse, else the text as written.
    pub arguments: Box<RawValue>,
}

/// `tool.completed`: what the call came to, in a line for the player.
#[derive(Debug, Clone, Serialize)]
pub struct ToolCompleted {
    pub message_id: MessageId,
    pub call_id: String,
    pub tool: String,
    pub ok: bool,
    pub summary: String,
}

impl SessionEvent {
    pub fn name(&self) -> &'static str {
        match self {
            SessionEvent::MessageCreated(_) => "message.created",
            SessionEvent::AssistantStatus(_) => "assistant.status",
            SessionEvent::MessageDelta(_) => "message.delta",
            SessionEvent::MessageCompleted(_) => "message.completed",
            SessionEvent::MessageCancelled(_) => "message.cancelled",
            SessionEvent::MessageFailed(_) => "message.failed",
            SessionEvent::ToolStarted(_) => "tool.started",
            SessionEvent::ToolCompleted(_) => "tool.completed",
            SessionEvent::ToolApprovalRequired(_) => "tool.approval_required",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AssistantActivity {
    Thinking,
    Tool,
}

#[derive(Debug, Clone, Serialize)]
pub struct StatusUpdate {
    pub message_id: MessageId,
    pub status: AssistantActivity,
    pub activity: &'static str,
}

/// The next piece of a reply: indexes run 0, 1, 2, ... with no gap, and
/// the pieces joined are the reply's text.
#[derive(Debug, Clone, Serialize)]
pub struct Delta {
    pub message_id: MessageId,
    pub index: u32,
    pub text: String,
}

/// Why a reply ended without completing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndCode {
    /// `messages.cancel`.
    Cancelled,
    /// The model failed after its first token.
    ModelFailed,
    /// The server stopped while the reply streamed.
    Interrupted,
}

/// What the client should do about a reply that ended early.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SuggestedAction {
    /// `messages.retry` may give a whole reply.
    Retry,
    None,
}

/// `message.cancelled` and `message.failed`.
#[derive(Debug, Clone, Serialize)]
pub struct ReplyEnded {
    pub message_id: MessageId,
    pub text_so_far: String,
    pub code: EndCode,
    pub message: String,
    pub is_recoverable: bool,
    pub suggested_action: SuggestedAction,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_event_is_tagged_by_event_with_its_data() {
        let id = MessageId::generate();
        let delta = SessionEvent::MessageDelta(Delta {
            message_id: id,
            index: 3,
            text: "calm".into(),
        });
        let json = serde_json::to_value(&delta).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "event": "message.delta",
                "data": {"message_id": id.to_string(), "index": 3, "text": "calm"}
            })
        );
        assert_eq!(delta.name(), "message.delta");
        let ended = SessionEvent::MessageCancelled(ReplyEnded {
            message_id: id,
            text_so_far: "half".into(),
            code: EndCode::Cancelled,
            message: "cancelled".into(),
            is_recoverable: true,
            suggested_action: SuggestedAction::Retry,
        });
        let json = serde_json::to_value(&ended).unwrap();
        assert_eq!(json["event"], "message.cancelled");
        assert_eq!(json["data"]["code"], "cancelled");
        assert_eq!(json["data"]["suggested_action"], "retry");
    }
}
