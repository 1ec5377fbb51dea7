//! The assistant the server runs: a model when one is configured, always
//! behind the built-in assistant. Safety never waits on the model: a turn
//! with a crisis is answered by the built-in crisis reply (unless the
//! operator chose the model's words), a model that fails before its first
//! word is replaced by the built-in reply marked `fallback`, and the number
//! of model requests in flight is bounded per player and per server.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::Stream;

use crate::assistant::builtin::BuiltinAssistant;
use crate::assistant::{
    Assistant, AssistantError, Busy, FeedbackInput, FeedbackOutcome, ReplyEvent, ReplyStream, Turn,
};
use crate::model::ids::PlayerId;
use crate::support::metrics::Metrics;

/// Who words the reply to a message in which a crisis was detected. The
/// resources are Hearth's either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrisisReply {
    /// The built-in crisis reply; the model is not asked.
    Builtin,
    /// The model, told that a crisis was detected.
    Model,
}

/// How long a refused request is told to wait: about one short reply.
const BUSY_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Counts model requests in flight. A permit is held for as long as its
/// reply streams from the model and released when it is dropped.
pub struct ModelPermits {
    max_total: usize,
    max_per_player: usize,
    state: Mutex<InFlight>,
}

#[derive(Default)]
struct InFlight {
    total: usize,
    per_player: HashMap<PlayerId, usize>,
}

pub struct ModelPermit {
    permits: Arc<ModelPermits>,
    player: PlayerId,
}

impl ModelPermits {
    pub fn new(max_total: usize, max_per_player: usize) -> Arc<Self> {
        Arc::new(ModelPermits {
            max_total: max_total.max(1),
            max_per_player: max_per_player.max(1),
            state: Mutex::new(InFlight::default()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, InFlight> {
        // Counts only change by one under the lock: a panic elsewhere
        // cannot leave them half-updated.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn try_acquire(self: &Arc<Self>, player: &PlayerId) -> Result<ModelPermit, Busy> {
        let mut state = self.lock();
        let mine = state.per_player.get(player).copied().unwrap_or(0);
        if state.total >= self.max_total || mine >= self.max_per_player {
            return Err(Busy {
                retry_after: BUSY_RETRY_AFTER,
            });
        }
        state.total += 1;
        state.per_player.insert(player.clone(), mine + 1);
        Ok(ModelPermit {
            permits: self.clone(),
            player: player.clone(),
        })
    }

    pub fn in_flight(&self) -> usize {
        self.lock().total
    }
}

impl Drop for ModelPermit {
    fn drop(&mut self) {
        let mut state = self.permits.lock();
        state.total = state.total.saturating_sub(1);
        if let Some(count) = state.per_player.get_mut(&self.player) {
            *count -= 1;
            if *count == 0 {
                state.per_player.remove(&self.player);
            }
        }
    }
}

pub struct GuardedAssistant {
    builtin: Arc<BuiltinAssistant>,
    /// Must note each turn in `builtin`'s profiles, as
    /// `OpenAiAssistant::with_profiles` does, so that a fallback does not
    /// count the turn again.
    model: Option<Arc<dyn Assistant>>,
    crisis_reply: CrisisReply,
    permits: Arc<ModelPermits>,
    metrics: Arc<Metrics>,
}

impl GuardedAssistant {
    /// The built-in assistant alone.
    pub fn builtin(builtin: Arc<BuiltinAssistant>, metrics: Arc<Metrics>) -> Self {
        GuardedAssistant {
            builtin,
            model: None,
            crisis_reply: CrisisReply::Builtin,
            permits: ModelPermits::new(usize::MAX, usize::MAX),
            metrics,
        }
    }

    pub fn with_model(
        builtin: Arc<BuiltinAssistant>,
        model: Arc<dyn Assistant>,
        crisis_reply: CrisisReply,
        permits: Arc<ModelPermits>,
        metrics: Arc<Metrics>,
    ) -> Self {
        GuardedAssistant {
            builtin,
            model: Some(model),
            crisis_reply,
            permits,
            metrics,
        }
    }

    /// The model for this turn, when it is to be asked at all.
    fn model_for(&self, turn: &Turn<'_>) -> Option<&Arc<dyn Assistant>> {
        let model = self.model.as_ref()?;
        if turn.crisis.is_crisis() && self.crisis_reply == CrisisReply::Builtin {
            return None;
        }
        Some(model)
    }

    fn ask_model(
        &self,
        model: &Arc<dyn Assistant>,
        turn: &Turn<'_>,
        permit: ModelPermit,
    ) -> ReplyStream {
        let model_reply = model.reply(turn);
        Box::pin(Guarded {
            model: Some(model_reply),
            fallback: Some(self.builtin.reply_noted(turn)),
            yielded: false,
            permit: Some(permit),
            metrics: self.metrics.clone(),
        })
    }
}

impl Assistant for GuardedAssistant {
    fn reply(&self, turn: &Turn<'_>) -> ReplyStream {
        match self.try_reply(turn) {
            Ok(reply) => reply,
            // A v1 chat message has no way to be told to come back: it is
            // answered, by the built-in assistant.
            Err(_) => {
                self.metrics.assistant.fallback("busy");
                let reply = self.builtin.reply(turn);
                Box::pin(MarkFallback(reply))
            }
        }
    }

    fn try_reply(&self, turn: &Turn<'_>) -> Result<ReplyStream, Busy> {
        let Some(model) = self.model_for(turn) else {
            return Ok(self.builtin.reply(turn));
        };
        match self.permits.try_acquire(turn.player) {
            Ok(permit) => Ok(self.ask_model(model, turn, permit)),
            Err(busy) => {
                self.metrics.assistant.busy();
                Err(busy)
            }
        }
    }

    fn feedback(&self, input: &FeedbackInput<'_>) -> FeedbackOutcome {
        self.builtin.feedback(input)
    }
}

/// The kind of a model failure, as metrics and logs name it.
fn failure_kind(err: &AssistantError) -> &'static str {
    match err {
        AssistantError::Model { reason, .. } => reason.kind(),
        AssistantError::Unavailable(_) => "unavailable",
        AssistantError::Incomplete => "incomplete",
    }
}

/// A model's reply that turns into the built-in one if the model fails
/// before its first piece.
struct Guarded {
    model: Option<ReplyStream>,
    fallback: Option<ReplyStream>,
    yielded: bool,
    permit: Option<ModelPermit>,
    metrics: Arc<Metrics>,
}

impl Guarded {
    /// The model is done with, one way or another: its permit goes back.
    fn model_done(&mut self) {
        self.model = None;
        self.permit = None;
    }
}

impl Stream for Guarded {
    type Item = ReplyEvent;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ReplyEvent>> {
        // Every field is Unpin (the streams are boxed).
        let this = self.get_mut();
        if let Some(model) = &mut this.model {
            let failure = match model.as_mut().poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(ReplyEvent::Text(piece))) => {
                    this.yielded = true;
                    return Poll::Ready(Some(ReplyEvent::Text(piece)));
                }
                // A tool call shows no words: a failure after it can still
                // fall back to the built-in reply.
                Poll::Ready(Some(ReplyEvent::Tool(call))) => {
                    return Poll::Ready(Some(ReplyEvent::Tool(call)));
                }
                Poll::Ready(Some(ReplyEvent::Done(done))) => {
                    this.model_done();
                    this.fallback = None;
                    return Poll::Ready(Some(ReplyEvent::Done(done)));
                }
                Poll::Ready(Some(ReplyEvent::Failed(err))) => err,
                Poll::Ready(None) => AssistantError::Incomplete,
            };
            this.model_done();
            let kind = failure_kind(&failure);
            this.metrics.assistant.model_error(kind);
            if this.yielded {
                this.fallback = None;
                log::warn!(kind:%, after_first_piece = "true"; "assistant_model_failed");
                return Poll::Ready(Some(ReplyEvent::Failed(failure)));
            }
            log::warn!(reason:% = kind; "assistant_fallback");
            this.metrics.assistant.fallback(kind);
        }
        match &mut this.fallback {
            Some(fallback) => fallback.as_mut().poll_next(cx),
            None => Poll::Ready(None),
        }
    }
}

/// The built-in reply given in place of a model's: its `Done` says so.
struct MarkFallback(ReplyStream);

impl Stream for MarkFallback {
    type Item = ReplyEvent;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ReplyEvent>> {
        let this = self.get_mut();
        match this.0.as_mut().poll_next(cx) {
            Poll::Ready(Some(ReplyEvent::Done(mut done))) => {
                done.fallback = true;
                Poll::Ready(Some(ReplyEvent::Done(done)))
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permits_are_bounded_per_player_and_in_total_and_come_back_when_dropped() {
        let permits = ModelPermits::new(3, 2);
        let ana = PlayerId::parse("ana").unwrap();
        let ben = PlayerId::parse("ben").unwrap();
        let first = permits.try_acquire(&ana).unwrap();
        let _second = permits.try_acquire(&ana).unwrap();
        assert!(permits.try_acquire(&ana).is_err(), "per player");
        let _third = permits.try_acquire(&ben).unwrap();
        assert!(permits.try_acquire(&ben).is_err(), "in total");
        drop(first);
        assert_eq!(permits.in_flight(), 2);
        assert!(permits.try_acquire(&ana).is_ok());
    }
}
