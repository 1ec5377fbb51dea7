//! The safety second opinion (`[safety] model_check`): the configured model
//! is asked, in one short whole (not streamed) request, whether a user's
//! text shows a crisis. The rules have always spoken first; the opinion can
//! only raise their verdict (see `CrisisAssessment::raise_to`), and the
//! caller waits for it no longer than the deadline, which is this request's
//! timeout.

use std::borrow::Cow;

use crate::assistant::openai::{OpenAiAssistant, OpenAiSettings, SettingsError};
use crate::assistant::prompt::{PromptMessage, Speaker};
use crate::assistant::ModelError;
use crate::therapy::crisis::Opinion;

/// The classifier's instructions. One word back keeps the answer cheap to
/// produce and impossible to misread as a reply to the user.
const INSTRUCTIONS: &str = "You are the safety check of a mental-health support chat. \
Read the user's message and answer with exactly one word:\n\
imminent - the writer is at risk of suicide or self-harm right now: a method at hand, \
a time that is today, an act in progress or already done;\n\
suicide - the writer shows thoughts of suicide or of being dead, a plan, preparations, \
a farewell, feeling a burden, or asks how lethal something is;\n\
self_harm - the writer hurts, or wants to hurt, themselves;\n\
none - anything else, including idioms, jokes, fiction, news, history, other people, \
and a past that is over.\n\
Answer with the one word only.";

/// The most an answer is read for: one word, with room for a model that
/// adds a full stop or a short explanation.
const MAX_ANSWER_TOKENS: u32 = 8;

pub struct ModelOpinion {
    model: OpenAiAssistant,
}

impl ModelOpinion {
    /// `settings` are the assistant's; the timeout becomes `deadline`, and
    /// the answer is asked for deterministically and short.
    pub fn new(
        mut settings: OpenAiSettings,
        deadline: std::time::Duration,
    ) -> Result<Self, SettingsError> {
        settings.timeout = deadline;
        settings.max_tokens = Some(MAX_ANSWER_TOKENS);
        settings.temperature = Some(0.0);
        Ok(ModelOpinion {
            model: OpenAiAssistant::new(settings)?,
        })
    }

    /// What the model says of `text`, within the deadline.
    pub async fn judge(&self, text: &str) -> Result<Opinion, ModelError> {
        let messages = [
            PromptMessage {
                role: Speaker::System,
                content: Cow::Borrowed(INSTRUCTIONS),
            },
            PromptMessage {
                role: Speaker::User,
                content: Cow::Borrowed(text),
            },
        ];
        let answer = self.model.complete(&messages).await?;
        Ok(read_answer(&answer))
    }
}

/// The first word of the answer, read leniently (case, punctuation, a
/// hyphen for the underscore); anything unrecognised raises nothing, as
/// the rules' verdict stands without it.
fn read_answer(answer: &str) -> Opinion {
    let word: String = answer
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '_' | '-'))
        .collect::<String>()
        .to_lowercase()
        .replace('-', "_");
    match word.as_str() {
        "imminent" => Opinion::Imminent,
        "suicide" | "suicidal" => Opinion::Suicide,
        "self_harm" | "selfharm" => Opinion::SelfHarm,
        _ => Opinion::Clear,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_by_their_first_word() {
        assert_eq!(read_answer("imminent"), Opinion::Imminent);
        assert_eq!(read_answer(" Imminent.\n"), Opinion::Imminent);
        assert_eq!(read_answer("suicide"), Opinion::Suicide);
        assert_eq!(read_answer("SELF-HARM"), Opinion::SelfHarm);
        assert_eq!(read_answer("self_harm: cutting"), Opinion::SelfHarm);
        assert_eq!(read_answer("none"), Opinion::Clear);
        assert_eq!(read_answer(""), Opinion::Clear);
        assert_eq!(read_answer("I cannot help with that"), Opinion::Clear);
    }
}
