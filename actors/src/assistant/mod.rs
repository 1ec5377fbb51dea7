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

pub mod builtin;
#[cfg(test)]
pub(crate) mod conformance;

use std::pin::Pin;

use futures_util::Stream;
use thiserror::Error;

use crate::model::ids::PlayerId;
use crate::therapy::crisis::CrisisAssessment;
use crate::therapy::recommendations::Recommendation;
use crate::therapy::text::NormalizedText;

/// One user message, already analysed by the chat processor.
pub struct Turn<'a> {
    pub player: &'a PlayerId,
    pub text: &'a NormalizedText,
    pub crisis: &'a CrisisAssessment,
    pub anxious: bool,
}

/// What a reply stream yields: text pieces in order, then exactly one of
/// `Done` or `Failed`, after which the stream ends.
#[derive(Debug)]
pub enum ReplyEvent {
    /// The next piece of the reply; the pieces concatenated are its text.
    Text(String),
    Done(ReplyDone),
    Failed(AssistantError),
}

#[derive(Debug)]
pub struct ReplyDone {
    /// The player's recommendations, as this turn leaves them.
    pub recommendations: Vec<Recommendation>,
}

#[derive(Debug, Clone, Error)]
pub enum AssistantError {
    #[error("the assistant could not reply: {0}")]
    Unavailable(String),
    #[error("the assistant's reply ended without completing")]
    Incomplete,
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

pub trait Assistant: Send + Sync + 'static {
    /// The reply to `turn`, as it is produced. The stream owns what it
    /// needs: it may outlive `turn`.
    fn reply(&self, turn: &Turn<'_>) -> ReplyStream;

    fn feedback(&self, input: &FeedbackInput<'_>) -> FeedbackOutcome;
}
