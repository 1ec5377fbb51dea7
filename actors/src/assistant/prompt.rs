//! What a model is told: Hearth's system prompt (its tone and its limits),
//! a note on what the chat processor found in this message, the earlier
//! turns of the conversation, and the player's message, as the role-tagged
//! messages of the chat-completions API.
//!
//! The model's words are never what keeps someone safe: crisis detection
//! and the resources shown run in Hearth whatever the model says. The
//! prompt only keeps the model's tone in line with the built-in replies.

use std::borrow::Cow;

use serde::Serialize;

/// Who said a message, as the chat-completions API names the roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Speaker {
    System,
    User,
    Assistant,
}

/// One message of the conversation sent to the model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PromptMessage<'a> {
    pub role: Speaker,
    pub content: Cow<'a, str>,
}

/// What the chat processor found in the player's message.
#[derive(Debug, Clone, Copy, Default)]
pub struct Situation {
    /// Crisis cues: Hearth shows crisis resources under the reply.
    pub crisis: bool,
    /// Anxiety cues: Hearth offers calming exercises under the reply.
    pub anxious: bool,
}

pub const SYSTEM_PROMPT: &str = "\
You are Hearth, a supportive companion inside a wellbeing app. You are not a \
therapist or a doctor, and you do not diagnose or prescribe.

How you reply:
- Warm and brief: two to four short sentences in plain, everyday words.
- Never judgmental: accept what the person feels; do not lecture, moralise or argue.
- Reflect what you hear, then ask at most one gentle question or suggest one small next step.
- Never repeat, describe or ask about details of self-harm or suicide, such as methods or plans.
- If the person may be at risk of harming themselves or someone else, say plainly that you \
care and that they deserve help now, encourage them to contact emergency services or a \
crisis line, and stay with them in the conversation.
- Do not promise secrecy or outcomes, do not give medical or medication advice, and do not \
claim to be human.
- Reply in the language the person writes in.";

/// Added when the message carried crisis cues.
const CRISIS_NOTE: &str = "\
Hearth's checks found signs that this person may be in crisis. Under your reply, Hearth \
shows crisis resources, emergency contacts first. Respond with care, do not repeat the \
details they shared, and gently encourage them to use those resources now.";

/// Added when the message carried anxiety cues.
const ANXIOUS_NOTE: &str = "\
This person seems anxious. Under your reply, Hearth offers short breathing and grounding \
exercises; you may invite them to try one.";

/// The messages for one reply: the system prompt (with the agent's
/// instructions and a note on the situation when there is one), then `history` (the conversation's
/// earlier turns, oldest first), then `text`, the player's message.
pub fn messages<'a>(
    history: &[(Speaker, &'a str)],
    text: &'a str,
    situation: Situation,
    agent_instructions: &str,
) -> Vec<PromptMessage<'a>> {
    let mut system = Cow::Borrowed(SYSTEM_PROMPT);
    // The agent's role comes after Hearth's own rules, which it cannot
    // loosen, and before the notes on this message.
    if !agent_instructions.trim().is_empty() {
        let system = system.to_mut();
        system.push_str("\n\nYour role in this conversation: ");
        system.push_str(agent_instructions.trim());
    }
    for (applies, note) in [
        (situation.crisis, CRISIS_NOTE),
        (situation.anxious, ANXIOUS_NOTE),
    ] {
        if applies {
            let system = system.to_mut();
            system.push_str("\n\n");
            system.push_str(note);
        }
    }
    let mut messages = Vec::with_capacity(history.len() + 2);
    messages.push(PromptMessage {
        role: Speaker::System,
        content: system,
    });
    messages.extend(history.iter().map(|&(role, content)| PromptMessage {
        role,
        content: Cow::Borrowed(content),
    }));
    messages.push(PromptMessage {
        role: Speaker::User,
        content: Cow::Borrowed(text),
    });
    messages
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_prompt_comes_first_and_the_message_last() {
        let history = [
            (Speaker::User, "I had a rough week"),
            (Speaker::Assistant, "I'm sorry it was rough. What happened?"),
        ];
        let messages = messages(&history, "Work, mostly", Situation::default(), "");
        let roles: Vec<Speaker> = messages.iter().map(|m| m.role).collect();
        assert_eq!(
            roles,
            [
                Speaker::System,
                Speaker::User,
                Speaker::Assistant,
                Speaker::User
            ]
        );
        assert_eq!(messages[0].content, SYSTEM_PROMPT);
        assert_eq!(messages[3].content, "Work, mostly");
        assert!(matches!(messages[3].content, Cow::Borrowed(_)), "no copy");
    }

    #[test]
    fn the_prompt_sets_the_tone_and_the_limits() {
        for must in [
            "Warm and brief",
            "Never judgmental",
            "Never repeat, describe or ask about details of self-harm",
            "emergency services or a crisis line",
        ] {
            assert!(SYSTEM_PROMPT.contains(must), "{must}");
        }
    }

    #[test]
    fn the_situation_adds_its_notes() {
        let calm = messages(&[], "hi", Situation::default(), "");
        assert!(!calm[0].content.contains("crisis resources"));
        let both = messages(
            &[],
            "hi",
            Situation {
                crisis: true,
                anxious: true,
            },
            "",
        );
        assert!(both[0].content.starts_with(SYSTEM_PROMPT));
        assert!(both[0].content.contains(CRISIS_NOTE));
        assert!(both[0].content.contains(ANXIOUS_NOTE));
    }

    #[test]
    fn the_agents_instructions_follow_the_rules() {
        let sleep = messages(
            &[],
            "I can't sleep",
            Situation::default(),
            "You are the sleep liaison.",
        );
        let system = &sleep[0].content;
        assert!(system.starts_with(SYSTEM_PROMPT));
        assert!(system.ends_with("Your role in this conversation: You are the sleep liaison."));
    }

    #[test]
    fn messages_serialise_as_the_api_expects() {
        let json = serde_json::to_value(messages(&[], "hi", Situation::default(), "")).unwrap();
        assert_eq!(json[0]["role"], "system");
        assert_eq!(
            json[1],
            serde_json::json!({"role": "user", "content": "hi"})
        );
    }
}
