//! The assistant seam: a turn goes in, the reply comes out as a stream of
//! events (pieces of text, then `Done` or `Failed`), so that a model that
//! streams its answer can stand behind it as well as the built-in
//! assistant. Feedback goes in the same way and comes back as
//! adjustments and recommendations.
//!
//! One assistant is shared by the chat processors of every worker thread:
//! its methods take `&self`, and it keeps its own state safe to share. It
//! must not block: a reply that needs slow work (a model, a database)
//! does it inside the returned stream, which the chat processor polls.
//!
//! `builtin` needs nothing outside the process; `openai` asks a model
//! server, with `prompt` (what the model is told) and `sse` (the event
//! stream it answers with); `guarded` is what the server runs: the model
//! behind the built-in assistant's safety reply and fallback, with a bound
//! on requests in flight; `opinion` asks the same model, when configured,
//! for a second opinion on whether a text shows a crisis.

pub mod agents;
pub mod builtin;
#[cfg(test)]
pub(crate) mod conformance;
pub mod guarded;
pub mod openai;
pub mod opinion;
pub mod prompt;
pub mod sse;
pub mod tools;

use std::pin::Pin;
use std::time::Duration;

use futures_util::Stream;
use thiserror::Error;

pub use crate::assistant::prompt::Speaker;
use crate::model::ids::PlayerId;
use crate::therapy::crisis::CrisisAssessment;
use crate::therapy::recommendations::Recommendation;
use crate::therapy::text::NormalizedText;

/// One user message, already analysed by the chat processor.
pub struct Turn<'a> {
    pub player: &'a PlayerId,
    /// The message as the player wrote it: what a model reads. It is the
    /// player's own words, so it is never logged above debug level.
    pub raw: &'a str,
    pub text: &'a NormalizedText,
    pub crisis: &'a CrisisAssessment,
    pub anxious: bool,
    /// The conversation's earlier turns, oldest first, already cut to the
    /// budget a model may read; empty for a v1 chat message.
    pub history: &'a [(Speaker, String)],
    /// The session's agent's instructions, for a model's system prompt
    /// (the built-in assistant does not read them).
    pub instructions: &'a str,
    /// The tools the session's agent lists: those a model is offered.
    pub tools: &'a [String],
}

/// What a reply stream yields: text pieces in order, then exactly one of
/// `Done` or `Failed`, after which the stream ends.
#[derive(Debug)]
pub enum ReplyEvent {
    /// The next piece of the reply; the pieces concatenated are its text.
    Text(String),
    /// The assistant asks Hearth to run one of its tools. Whoever drives
    /// the reply runs it (or refuses it) and answers on `respond`; a
    /// dropped `respond` means it did not run.
    Tool(ToolRequest),
    Done(ReplyDone),
    Failed(AssistantError),
}

/// One tool call, as the assistant made it.
#[derive(Debug)]
pub struct ToolRequest {
    /// The call's id within the reply (the model's, or made up).
    pub call_id: String,
    pub name: String,
    /// The arguments as the assistant wrote them: JSON text, unchecked.
    pub arguments: String,
    pub respond: tokio::sync::oneshot::Sender<ToolOutcome>,
}

/// What a tool call came to.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolOutcome {
    pub ok: bool,
    /// For the assistant: JSON text it reads as the call's result.
    pub content: String,
    /// For the player: one short line on what happened.
    pub summary: String,
}

#[derive(Debug, Default)]
pub struct ReplyDone {
    /// The player's recommendations, as this turn leaves them.
    pub recommendations: Vec<Recommendation>,
    /// Tokens counted by a model server that reported them.
    pub usage: Usage,
    /// Why the reply ended, when the assistant says.
    pub finish_reason: Option<FinishReason>,
    /// The model could not answer, so the built-in assistant did.
    pub fallback: bool,
}

/// Token counts as a model server reports them; either may be missing.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: Option<u32>,
    pub completion_tokens: Option<u32>,
}

impl Usage {
    /// Both counts summed, as over the steps of a reply that called tools;
    /// a count neither reported stays missing.
    pub fn plus(self, other: Usage) -> Usage {
        let add = |a: Option<u32>, b: Option<u32>| match (a, b) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0).saturating_add(b.unwrap_or(0))),
        };
        Usage {
            prompt_tokens: add(self.prompt_tokens, other.prompt_tokens),
            completion_tokens: add(self.completion_tokens, other.completion_tokens),
        }
    }
}

/// Why a reply ended, in the words the chat-completions API uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FinishReason {
    /// A natural end.
    Stop,
    /// The token limit cut it short.
    Length,
    ContentFilter,
    ToolCalls,
    Other(String),
}

impl FinishReason {
    pub fn parse(reason: &str) -> Self {
        match reason {
            "stop" => FinishReason::Stop,
            "length" => FinishReason::Length,
            "content_filter" => FinishReason::ContentFilter,
            "tool_calls" => FinishReason::ToolCalls,
            other => FinishReason::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::ContentFilter => "content_filter",
            FinishReason::ToolCalls => "tool_calls",
            FinishReason::Other(other) => other,
        }
    }
}

/// Why a reply failed. Its text (`Display`) may reach a client, so it never
/// holds the player's words, a key, or what a model server said.
#[derive(Debug, Clone, Error)]
pub enum AssistantError {
    #[error("the assistant could not reply: {0}")]
    Unavailable(String),
    #[error("the assistant's reply ended without completing")]
    Incomplete,
    /// A model server's reply failed.
    #[error("the model's reply failed {}: {reason}", if *.after_first_piece { "midway" } else { "before it began" })]
    Model {
        reason: ModelError,
        /// Whether text had already been yielded. Before it, the reply can
        /// still come from elsewhere; after it, the player has seen part.
        after_first_piece: bool,
    },
}

impl AssistantError {
    /// Whether the reply failed after some of its text was yielded; `None`
    /// when the error does not say.
    pub fn after_first_piece(&self) -> Option<bool> {
        match self {
            AssistantError::Model {
                after_first_piece, ..
            } => Some(*after_first_piece),
            _ => None,
        }
    }
}

/// What went wrong with a model server's reply.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ModelError {
    /// No connection: refused, unresolvable, TLS refused, or connecting
    /// took longer than the timeout.
    #[error("could not connect to the model server ({0})")]
    Connect(String),
    /// The first piece did not come within the timeout (counted from the
    /// request), whether the wait was for the connection, the status or the
    /// first token.
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    /// After the first piece, nothing arrived for the timeout.
    #[error("the reply stalled for {0:?}")]
    Stalled(Duration),
    /// A status other than 2xx. `detail` is what the server said, cut
    /// short; it is kept out of `Display` (it may echo a key's prefix).
    #[error("the model server answered {status} ({})", StatusClass::of(*.status).describe())]
    Status {
        status: u16,
        /// From `Retry-After`, when the server sent seconds.
        retry_after: Option<Duration>,
        detail: String,
    },
    /// An error event inside a 2xx stream; `detail` as for `Status`.
    #[error("the model server reported an error mid-stream")]
    Remote { detail: String },
    /// An event that is not the chat-completions chunk it should be.
    #[error("the model server sent a malformed event ({0})")]
    Malformed(String),
    /// One event longer than the cap.
    #[error("the model server sent an event over {0} bytes")]
    Oversized(usize),
    /// The stream ended before `[DONE]` or a finish reason: the server
    /// closed it cleanly too early, or the connection broke (`error`).
    #[error("the connection closed before the reply ended")]
    Closed { error: Option<String> },
    /// The model finished without producing any text.
    #[error("the model's reply was empty")]
    Empty,
}

impl ModelError {
    /// A short stable name of the failure, for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            ModelError::Connect(_) => "connect",
            ModelError::Timeout(_) => "timeout",
            ModelError::Stalled(_) => "stalled",
            ModelError::Status { status, .. } => match StatusClass::of(*status) {
                StatusClass::Auth => "status_auth",
                StatusClass::RateLimited => "status_rate_limited",
                StatusClass::Server => "status_server",
                StatusClass::Other => "status_other",
            },
            ModelError::Remote { .. } => "remote",
            ModelError::Malformed(_) => "malformed",
            ModelError::Oversized(_) => "oversized",
            ModelError::Closed { .. } => "closed",
            ModelError::Empty => "empty",
        }
    }

    /// The class of a status failure; `None` for every other failure.
    pub fn status_class(&self) -> Option<StatusClass> {
        match self {
            ModelError::Status { status, .. } => Some(StatusClass::of(*status)),
            _ => None,
        }
    }
}

/// Non-2xx statuses grouped by what the caller does about them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusClass {
    /// 401, 403: the key is wrong or lacks access; retrying will not help.
    Auth,
    /// 429: retry later (`retry_after`).
    RateLimited,
    /// 5xx: the server's trouble; may pass.
    Server,
    /// Any other status: most likely the request (a wrong model name).
    Other,
}

impl StatusClass {
    pub fn of(status: u16) -> Self {
        match status {
            401 | 403 => StatusClass::Auth,
            429 => StatusClass::RateLimited,
            500..=599 => StatusClass::Server,
            _ => StatusClass::Other,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            StatusClass::Auth => "not authorised",
            StatusClass::RateLimited => "rate limited",
            StatusClass::Server => "server error",
            StatusClass::Other => "request refused",
        }
    }
}

pub type ReplyStream = Pin<Box<dyn Stream<Item = ReplyEvent>>>;

pub struct FeedbackInput<'a> {
    pub player: &'a PlayerId,
    pub rating: Option<u8>,
    pub text: Option<&'a str>,
}

pub struct FeedbackOutcome {
    /// What the feedback changes (docs/domain.md, "Adjustments").
    pub adjustments: Vec<&'static str>,
    pub recommendations: Vec<Recommendation>,
}

/// Too many model requests are in flight (for the player or the server);
/// `retry_after` is a fair time to wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy {
    pub retry_after: Duration,
}

pub trait Assistant: Send + Sync + 'static {
    /// The reply to `turn`, as it is produced. The stream owns what it
    /// needs: it may outlive `turn`. It always answers, if need be from a
    /// fallback.
    fn reply(&self, turn: &Turn<'_>) -> ReplyStream;

    /// As `reply`, but refuses instead of falling back when the assistant
    /// is at its limit of requests in flight, so that the caller can tell
    /// the player to come back.
    fn try_reply(&self, turn: &Turn<'_>) -> Result<ReplyStream, Busy> {
        Ok(self.reply(turn))
    }

    fn feedback(&self, input: &FeedbackInput<'_>) -> FeedbackOutcome;
}
