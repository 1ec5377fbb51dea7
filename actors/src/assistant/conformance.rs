//! One suite of behaviour that every `Assistant` runs: the reply stream's
//! contract (text pieces, then exactly one `Done` or `Failed`, then the
//! end), a reply to every kind of turn, and feedback that answers.

use futures_util::StreamExt;

use crate::assistant::{Assistant, FeedbackInput, ReplyEvent, Turn};
use crate::model::ids::PlayerId;
use crate::therapy::crisis::{detect_anxiety_in, detect_crisis_in};
use crate::therapy::text::NormalizedText;

/// The events of one reply, in order; the stream is drained on a runtime
/// of its own, as a chat processor would poll it.
fn events_of(assistant: &dyn Assistant, player: &PlayerId, raw: &str) -> Vec<ReplyEvent> {
    let text = NormalizedText::new(raw);
    let crisis = detect_crisis_in(&text);
    let stream = assistant.reply(&Turn {
        player,
        raw,
        text: &text,
        crisis: &crisis,
        anxious: detect_anxiety_in(&text),
        history: &[],
        instructions: "",
        tools: &[],
    });
    // The stream must not borrow the turn: it is polled after `reply` returns.
    actix_rt::System::new().block_on(stream.collect())
}

pub fn run(assistant: &dyn Assistant) {
    let player = PlayerId::parse("conformance").unwrap();
    for text in [
        "hello there",
        "I'm so stressed about my exams",
        "I want to kill myself",
        "My boss keeps piling on work before the deadline. I can't sleep.",
    ] {
        let events = events_of(assistant, &player, text);
        let (last, pieces) = events
            .split_last()
            .unwrap_or_else(|| panic!("{text:?}: the stream ended without an event"));
        assert!(
            matches!(last, ReplyEvent::Done(_) | ReplyEvent::Failed(_)),
            "{text:?}: the last event is {last:?}"
        );
        let mut reply = String::new();
        for piece in pieces {
            match piece {
                ReplyEvent::Text(piece) => {
                    assert!(!piece.is_empty(), "{text:?}: an empty piece");
                    reply.push_str(piece);
                }
                ReplyEvent::Tool(call) => {
                    assert!(
                        !call.call_id.is_empty() && !call.name.is_empty(),
                        "{text:?}: {call:?}"
                    );
                    assert!(
                        serde_json::from_str::<serde_json::Value>(&call.arguments)
                            .is_ok_and(|v| v.is_object()),
                        "{text:?}: arguments {:?}",
                        call.arguments
                    );
                }
                other => panic!("{text:?}: {other:?} before the end"),
            }
        }
        if matches!(last, ReplyEvent::Done(_)) {
            assert!(!reply.trim().is_empty(), "{text:?}: done with no text");
        }
    }
    let outcome = assistant.feedback(&FeedbackInput {
        player: &player,
        rating: Some(1),
        text: Some("that was too fast"),
    });
    assert!(
        !outcome.adjustments.is_empty(),
        "a low rating changes something"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assistant::{FeedbackOutcome, ReplyDone, ReplyStream};

    /// Says "hi" after it said it was done: the suite must catch that.
    struct TalksAfterDone;

    impl Assistant for TalksAfterDone {
        fn reply(&self, _: &Turn<'_>) -> ReplyStream {
            let done = ReplyEvent::Done(ReplyDone::default());
            Box::pin(futures_util::stream::iter([
                done,
                ReplyEvent::Text("hi".into()),
            ]))
        }

        fn feedback(&self, _: &FeedbackInput<'_>) -> FeedbackOutcome {
            FeedbackOutcome {
                adjustments: vec!["reduce_intensity"],
                recommendations: Vec::new(),
            }
        }
    }

    #[test]
    #[should_panic(expected = "the last event is Text")]
    fn the_suite_catches_a_broken_stream() {
        run(&TalksAfterDone);
    }
}
