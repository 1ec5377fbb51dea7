//! From what the conversation store keeps to what a client is shown, and
//! from a store's failure to the error a request answers with.

use serde::Serialize;
use serde_json::value::RawValue;

use crate::protocol::sessions::{MessageView, SessionView};
use crate::protocol::{ErrorCode, ErrorFrame};
use crate::store::conversations::{Conversation, ConversationError, StoredMessage};

pub(super) fn session_view(conversation: Conversation) -> SessionView {
    SessionView {
        id: conversation.id,
        title: conversation.title,
        agent: conversation.agent,
        pillar: conversation.pillar,
        created_at: conversation.created_at,
        updated_at: conversation.updated_at,
        archived: conversation.archived,
        message_count: conversation.message_count,
    }
}

pub(super) fn message_view(message: StoredMessage) -> MessageView {
    MessageView {
        id: message.id,
        session_id: message.session_id,
        role: message.role.as_str(),
        text: message.text,
        status: message.status.as_str(),
        created_at: message.created_at,
        completed_at: message.completed_at,
        elements: message.elements,
        safety: message.safety,
        usage: message.usage,
        fallback: message.fallback,
        finish_reason: message.finish_reason,
        reply_to: message.reply_to,
        client_message_id: message.client_message_id,
    }
}

/// Our own types as stored JSON. They always serialize; `null` stands in
/// should that ever change, rather than losing the message.
pub(super) fn raw_json<T: Serialize>(value: &T) -> Box<RawValue> {
    serde_json::value::to_raw_value(value).unwrap_or_else(|err| {
        log::error!(error:% = err; "conversation_encode_failed");
        Box::<RawValue>::default()
    })
}

/// What a request answers when the store refuses or fails. A failure of
/// the store itself is logged here and shown as `unavailable`.
pub(super) fn store_error(err: ConversationError) -> ErrorFrame {
    match err {
        ConversationError::NotFound => {
            ErrorFrame::new(ErrorCode::NotFound, "no such session or message")
        }
        ConversationError::NotStreaming { status } => ErrorFrame::new(
            ErrorCode::Conflict,
            format!("the reply is {status}, no longer streaming"),
        ),
        ConversationError::BadCursor => ErrorFrame::new(
            ErrorCode::BadRequest,
            "before is not a cursor of this listing",
        ),
        ConversationError::TooMany => ErrorFrame::new(
            ErrorCode::LimitExceeded,
            "this player has as many sessions as one may keep; archive is not deletion, so none can be added",
        ),
        other => {
            log::warn!(error:% = other; "conversation_store_failed");
            ErrorFrame::new(
                ErrorCode::Unavailable,
                "the conversation store cannot answer now; retry",
            )
        }
    }
}
