//! The built-in assistant: deterministic, supportive, topic-aware replies,
//! and per-player profiles that feedback and the conversation shape into
//! recommendations (docs/domain.md, "Replies and tone" and "Feedback and
//! recommendations"). It needs no model and answers at once; its reply
//! still comes as a stream of pieces, one sentence each, so that clients
//! that asked for streaming see the same events a model would give them.

use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll};

use futures_util::Stream;

use crate::assistant::{
    Assistant, FeedbackInput, FeedbackOutcome, FinishReason, ReplyDone, ReplyEvent, ReplyStream,
    ToolRequest, Turn, Usage,
};
use crate::model::ids::PlayerId;
use crate::support::bounded::forget_oldest_tenth;
use crate::therapy::crisis::CrisisType;
use crate::therapy::recommendations::{
    Recommendation, ADJUST_INTENSITY, MORE_ENGAGEMENT, SLOW_DOWN, STRESS_FOCUS,
};
use crate::therapy::text::NormalizedText;

/// How much recent history shapes recommendations.
const RECENT_FEEDBACK: usize = 10;
const RECENT_TURNS: usize = 10;

#[derive(Default)]
struct FeedbackEntry {
    rating: Option<u8>,
    pacing: bool,
    boredom: bool,
}

#[derive(Default)]
struct Profile {
    feedback: VecDeque<FeedbackEntry>,
    stress_turns: VecDeque<bool>,
    gentle: bool,
    last_touched: u64,
}

impl Profile {
    fn recommendations(&self) -> Vec<Recommendation> {
        let ratings: Vec<u8> = self.feedback.iter().filter_map(|f| f.rating).collect();
        let mut chosen = Vec::new();
        if !ratings.is_empty() {
            let average = ratings.iter().map(|&r| f64::from(r)).sum::<f64>() / ratings.len() as f64;
            if average < 3.0 {
                chosen.push(ADJUST_INTENSITY);
            }
        }
        if self.feedback.iter().any(|f| f.pacing) {
            chosen.push(SLOW_DOWN);
        }
        if self.feedback.iter().any(|f| f.boredom) {
            chosen.push(MORE_ENGAGEMENT);
        }
        if self.stress_turns.iter().any(|&stressed| stressed) {
            chosen.push(STRESS_FOCUS);
        }
        chosen.sort_by_key(|r| r.priority);
        chosen.truncate(5);
        chosen
    }
}

/// The deterministic default assistant: supportive, topic-aware replies and
/// per-player profiles held in memory, at most `max_players` of them (the
/// least recently active is forgotten first). Profiles are split over a
/// few locks by player, so processors on different threads rarely wait.
pub struct BuiltinAssistant {
    shards: Vec<Mutex<ProfileShard>>,
}

const SHARDS: usize = 16;

struct ProfileShard {
    profiles: HashMap<PlayerId, Profile>,
    max_players: usize,
    clock: u64,
}

impl ProfileShard {
    fn profile(&mut self, player: &PlayerId) -> &mut Profile {
        self.clock += 1;
        if !self.profiles.contains_key(player) && self.profiles.len() >= self.max_players {
            self.forget_oldest();
        }
        let profile = self.profiles.entry(player.clone()).or_default();
        profile.last_touched = self.clock;
        profile
    }

    fn forget_oldest(&mut self) {
        forget_oldest_tenth(&mut self.profiles, |profile| profile.last_touched);
    }
}

impl BuiltinAssistant {
    pub fn new(max_players: usize) -> Self {
        let per_shard = max_players.div_ceil(SHARDS).max(1);
        BuiltinAssistant {
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(ProfileShard {
                        profiles: HashMap::new(),
                        max_players: per_shard,
                        clock: 0,
                    })
                })
                .collect(),
        }
    }

    /// Runs `work` on the player's profile, under its shard's lock.
    fn with_profile<R>(&self, player: &PlayerId, work: impl FnOnce(&mut Profile) -> R) -> R {
        let mut hasher = std::hash::DefaultHasher::new();
        player.hash(&mut hasher);
        let shard = &self.shards[(hasher.finish() % SHARDS as u64) as usize];
        // A panic while holding the lock leaves a profile at worst half
        // updated; the lock is still usable.
        let mut shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
        work(shard.profile(player))
    }

    #[cfg(test)]
    fn profile_count(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| shard.lock().map_or(0, |s| s.profiles.len()))
            .sum()
    }
}

impl BuiltinAssistant {
    /// The whole reply and the player's recommendations after this turn.
    fn compose(&self, turn: &Turn<'_>) -> (String, Vec<Recommendation>) {
        let (gentle, recommendations) = self.observe(turn);
        (compose_reply(turn, gentle), recommendations)
    }

    /// Records `turn` in the player's profile: whether replies should now
    /// stay gentle, and the recommendations it leaves.
    fn observe(&self, turn: &Turn<'_>) -> (bool, Vec<Recommendation>) {
        self.with_profile(turn.player, |profile| {
            profile.stress_turns.push_back(turn.anxious);
            if profile.stress_turns.len() > RECENT_TURNS {
                profile.stress_turns.pop_front();
            }
            if turn.crisis.is_crisis() {
                // enable_crisis_monitoring, reduce_intensity: later replies stay gentle.
                profile.gentle = true;
            }
            (profile.gentle, profile.recommendations())
        })
    }

    /// Records a turn that another assistant (a model) answers, so that it
    /// shapes the player's recommendations as a built-in reply would; the
    /// recommendations it leaves.
    pub fn note_turn(&self, turn: &Turn<'_>) -> Vec<Recommendation> {
        self.observe(turn).1
    }
}

impl BuiltinAssistant {
    /// The reply to a turn that another assistant has already noted (a
    /// model that failed before its first word): the same words `reply`
    /// would give, without counting the turn twice in the profile.
    pub fn reply_noted(&self, turn: &Turn<'_>) -> ReplyStream {
        let (gentle, recommendations) = self.with_profile(turn.player, |profile| {
            (profile.gentle, profile.recommendations())
        });
        let mut reply =
            sentences(compose_reply(turn, gentle), recommendations).suggesting_for(turn);
        if let Some(done) = &mut reply.done {
            done.fallback = true;
        }
        Box::pin(reply)
    }
}

fn sentences(text: String, recommendations: Vec<Recommendation>) -> Sentences {
    Sentences {
        tool: None,
        rest: text,
        done: Some(ReplyDone {
            recommendations,
            usage: Usage::default(),
            finish_reason: Some(FinishReason::Stop),
            fallback: false,
        }),
    }
}

impl Assistant for BuiltinAssistant {
    fn reply(&self, turn: &Turn<'_>) -> ReplyStream {
        let (text, recommendations) = self.compose(turn);
        Box::pin(sentences(text, recommendations).suggesting_for(turn))
    }

    fn feedback(&self, input: &FeedbackInput<'_>) -> FeedbackOutcome {
        let mut adjustments = Vec::new();
        let mut entry = FeedbackEntry {
            rating: input.rating,
            ..FeedbackEntry::default()
        };
        match input.rating {
            Some(rating) if rating <= 2 => {
                adjustments.extend(["reduce_intensity", "increase_support"])
            }
            Some(rating) if rating >= 4 => adjustments.push("maintain_current_approach"),
            _ => {}
        }
        if let Some(text) = input.text {
            let text = NormalizedText::new(text);
            if text.has_any(&["helpful", "helped", "good", "great"]) {
                adjustments.push("maintain_current_approach");
            }
            if text.has_any(&["difficult", "hard", "too hard"]) {
                adjustments.extend(["reduce_difficulty", "increase_support"]);
            }
            if text.has_any(&["boring", "bored", "not engaging"]) {
                adjustments.extend(["increase_engagement", "vary_approaches"]);
                entry.boredom = true;
            }
            if text.has_any(&["too fast", "overwhelming", "overwhelmed"]) {
                entry.pacing = true;
            }
        }
        let mut seen = std::collections::HashSet::new();
        adjustments.retain(|adjustment| seen.insert(*adjustment));

        let reduce_intensity = adjustments.contains(&"reduce_intensity");
        let recommendations = self.with_profile(input.player, |profile| {
            if reduce_intensity {
                profile.gentle = true;
            }
            profile.feedback.push_back(entry);
            if profile.feedback.len() > RECENT_FEEDBACK {
                profile.feedback.pop_front();
            }
            profile.recommendations()
        });
        FeedbackOutcome {
            adjustments,
            recommendations,
        }
    }
}

/// A small stable hash so the same message always gets the same wording.
fn pick<'a>(text: &NormalizedText, options: &[&'a str]) -> &'a str {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for word in text.sentences().flatten() {
        for byte in word.bytes() {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    options[(hash % options.len() as u64) as usize]
}

struct Topic {
    cues: &'static [&'static str],
    replies: &'static [&'static str],
}

const TOPICS: &[Topic] = &[
    Topic {
        cues: &["passed away", "grief", "grieving", "funeral", "lost my", "miss her", "miss him"],
        replies: &[
            "I'm so sorry for your loss. Grief can come in waves, and there's no right way to feel it. Would you like to tell me about them?",
            "Losing someone leaves a real ache. Be gentle with yourself right now. What do you find yourself missing most?",
        ],
    },
    Topic {
        cues: &["sad", "down", "depressed", "unhappy", "crying", "cry", "lonely", "alone", "empty"],
        replies: &[
            "I'm sorry you're feeling this way. It makes sense to feel low sometimes, and you don't have to go through it alone. What has been weighing on you most?",
            "Thank you for telling me how you feel. Sadness can be heavy to carry. Would it help to talk about what brought it on?",
        ],
    },
    Topic {
        cues: &["angry", "furious", "mad", "frustrated", "annoyed", "irritated", "rage"],
        replies: &[
            "It sounds like something really got to you. Anger often shows us what matters to us. What happened?",
            "That sounds frustrating. It's okay to feel angry; let's look at it together. What part of it bothers you most?",
        ],
    },
    Topic {
        cues: &["sleep", "insomnia", "tired", "exhausted", "awake at night", "nightmare"],
        replies: &[
            "Rest matters so much, and it's hard when it won't come. What does your evening usually look like before bed?",
            "Being worn out makes everything feel harder. Would a short wind-down routine, like slow breathing, be worth trying tonight?",
        ],
    },
    Topic {
        cues: &["work", "job", "boss", "exam", "exams", "school", "homework", "deadline", "class", "study"],
        replies: &[
            "That sounds like a lot on your plate. What feels most pressing right now, and what could wait a little?",
            "Work and study pressures can pile up quickly. Would it help to break things into one small next step together?",
        ],
    },
    Topic {
        cues: &["friend", "friends", "partner", "boyfriend", "girlfriend", "wife", "husband", "family", "mom", "dad", "mother", "father", "breakup", "broke up"],
        replies: &[
            "Relationships can bring up strong feelings. How are you feeling about it right now?",
            "It sounds like this relationship matters to you. What would you like to be different?",
        ],
    },
    Topic {
        cues: &["happy", "better", "proud", "grateful", "excited", "good day", "great day", "glad"],
        replies: &[
            "That's wonderful to hear. What do you think helped things go well?",
            "I'm really glad. It's worth pausing to notice moments like this. What made it good?",
        ],
    },
    Topic {
        cues: &["hello", "hi", "hey", "good morning", "good evening"],
        replies: &[
            "Hello, I'm glad you're here. How are you feeling today?",
            "Hi there. This is a safe space to talk. What's on your mind?",
        ],
    },
];

const ANXIOUS_REPLIES: &[&str] = &[
    "It sounds like a lot is pressing on you right now, and that's a very human response. If you'd like, we can try a short breathing or grounding exercise together. You can pick one below.",
    "That sounds stressful. Let's take it one breath at a time. One of the exercises below can help your body settle; or tell me more about what's going on.",
];

const GENTLE_REPLIES: &[&str] = &[
    "Thank you for sharing that with me. We can take this as slowly as you need. What would feel helpful right now?",
    "I hear you. There's no rush here. Tell me whatever feels right to share.",
];

const DEFAULT_REPLIES: &[&str] = &[
    "Thank you for sharing that. I'm here to listen. What feels most important about it for you right now?",
    "I appreciate you telling me. How has this been affecting you?",
    "That sounds meaningful. Would you like to say a little more about it?",
];

fn compose_reply(turn: &Turn<'_>, gentle: bool) -> String {
    let crisis = &turn.crisis.types;
    if turn.crisis.imminent {
        // Happening now: the first words say what to do.
        return "Please call 988 or 911 right now, or go to the nearest emergency room. You \
                don't have to do this alone, and you deserve help this minute: the numbers below \
                answer at any hour. I'm here with you, and I'm glad you told me."
            .into();
    }
    if crisis.contains(&CrisisType::SuicidalIdeation) || crisis.contains(&CrisisType::SelfHarm) {
        // Never repeats the user's words about self-harm back to them.
        return "I'm really glad you told me, and I'm sorry you're hurting this much. You deserve \
                support right now, and help is available right now: the people at the resources \
                below are there for you at any hour. If you are in immediate danger, please \
                contact emergency services. I'm here with you too."
            .into();
    }
    if crisis.contains(&CrisisType::PanicAttack) {
        return "You're safe here, and this feeling will pass. Let's slow down together: breathe \
                in gently for 4, hold for 7, and out for 8. The exercises below can guide you, and \
                if it doesn't ease, the resources below can help right now."
            .into();
    }
    if turn.crisis.is_crisis() {
        return "Thank you for trusting me with this. What you're going through sounds really hard, \
                and you don't have to face it alone. Help is available right now through the \
                resources below, and I'm here to keep talking."
            .into();
    }
    if turn.anxious {
        return pick(turn.text, ANXIOUS_REPLIES).into();
    }
    if let Some(topic) = TOPICS.iter().find(|topic| turn.text.has_any(topic.cues)) {
        let reply = pick(turn.text, topic.replies);
        return if gentle {
            format!("{reply} We can go as slowly as you like.")
        } else {
            reply.into()
        };
    }
    if gentle {
        return pick(turn.text, GENTLE_REPLIES).into();
    }
    pick(turn.text, DEFAULT_REPLIES).into()
}

/// A composed reply as a stream: one sentence per event, then `Done`.
/// Every event is ready at once. Each piece is cut off the front of the
/// rest of the reply, so the first piece keeps the whole reply's buffer
/// and a consumer that glues the pieces back together copies into it
/// without growing it.
struct Sentences {
    /// A tool call made before the words (the built-in engine's use of
    /// Hearth's tools): yielded first, its outcome not awaited, since the
    /// words do not depend on it.
    tool: Option<ToolRequest>,
    rest: String,
    done: Option<ReplyDone>,
}

/// The exercise the built-in engine suggests, through `suggest_exercise`,
/// to an anxious message.
pub const SUGGESTED_EXERCISE: &str = "ex_breathing";

impl Sentences {
    /// An anxious message (and not a crisis, whose reply is the resources)
    /// is answered with a breathing exercise offered through the tool.
    fn suggesting_for(mut self, turn: &Turn<'_>) -> Self {
        if turn.anxious && !turn.crisis.is_crisis() {
            // Nobody waits on the answer: a dropped receiver is fine.
            let (respond, _) = tokio::sync::oneshot::channel();
            self.tool = Some(ToolRequest {
                call_id: "call_builtin_1".into(),
                name: "suggest_exercise".into(),
                arguments: format!("{{\"exercise_id\":\"{SUGGESTED_EXERCISE}\"}}"),
                respond,
            });
        }
        self
    }
}

impl Stream for Sentences {
    type Item = ReplyEvent;

    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<ReplyEvent>> {
        let this = &mut *self;
        if let Some(tool) = this.tool.take() {
            return Poll::Ready(Some(ReplyEvent::Tool(tool)));
        }
        if this.rest.is_empty() {
            return Poll::Ready(this.done.take().map(ReplyEvent::Done));
        }
        let end = sentence_end(&this.rest);
        let after = this.rest.split_off(end);
        let piece = std::mem::replace(&mut this.rest, after);
        Poll::Ready(Some(ReplyEvent::Text(piece)))
    }
}

/// Where the first piece of `text` ends: just after the first sentence end
/// (". ", "! ", "? ") that is not the text's last, or at the end of the
/// text. The pieces concatenated are the text.
fn sentence_end(text: &str) -> usize {
    let bytes = text.as_bytes();
    let mut from = 0;
    // memchr scans for the three marks many bytes at a time: this runs for
    // every reply, streamed or not.
    while let Some(found) = memchr::memchr3(b'.', b'!', b'?', &bytes[from..]) {
        let mark = from + found;
        if bytes.get(mark + 1) == Some(&b' ') && mark + 2 < bytes.len() {
            return mark + 2;
        }
        from = mark + 1;
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::therapy::crisis::detect_crisis_in;

    struct Reply {
        text: String,
        recommendations: Vec<Recommendation>,
    }

    fn reply(assistant: &BuiltinAssistant, player: &PlayerId, text: &str) -> Reply {
        let normalized = NormalizedText::new(text);
        let crisis = detect_crisis_in(&normalized);
        let anxious = crate::therapy::crisis::detect_anxiety_in(&normalized);
        let (text, recommendations) = assistant.compose(&Turn {
            player,
            raw: text,
            text: &normalized,
            crisis: &crisis,
            anxious,
            history: &[],
            instructions: "",
            tools: &[],
        });
        Reply {
            text,
            recommendations,
        }
    }

    #[test]
    fn the_reply_streams_as_sentences_then_done() {
        use futures_util::StreamExt;
        let assistant = BuiltinAssistant::new(100);
        let erin = PlayerId::parse("erin").unwrap();
        let normalized = NormalizedText::new("I'm so stressed about tomorrow");
        let crisis = detect_crisis_in(&normalized);
        let turn = Turn {
            player: &erin,
            raw: "I'm so stressed about tomorrow",
            text: &normalized,
            crisis: &crisis,
            anxious: true,
            history: &[],
            instructions: "",
            tools: &[],
        };
        let stream = assistant.reply(&turn);
        let events: Vec<ReplyEvent> = actix_rt::System::new().block_on(stream.collect());
        let (last, events) = events.split_last().unwrap();
        assert!(matches!(last, ReplyEvent::Done(_)), "{last:?}");
        // An anxious message: the exercise is offered through the tool first.
        let (tool, pieces) = events.split_first().unwrap();
        match tool {
            ReplyEvent::Tool(call) => {
                assert_eq!(call.name, "suggest_exercise");
                assert_eq!(call.arguments, r#"{"exercise_id":"ex_breathing"}"#);
            }
            other => panic!("{other:?}"),
        }
        let texts: Vec<&str> = pieces
            .iter()
            .map(|event| match event {
                ReplyEvent::Text(piece) => piece.as_str(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert!(texts.len() > 1, "one piece per sentence: {texts:?}");
        assert!(ANXIOUS_REPLIES.contains(&texts.concat().as_str()));
    }

    #[test]
    fn the_shared_suite_passes() {
        crate::assistant::conformance::run(&BuiltinAssistant::new(100));
    }

    fn sentence_pieces(text: &str) -> Vec<String> {
        use futures_util::{FutureExt, StreamExt};
        let mut stream = Sentences {
            tool: None,
            rest: text.to_string(),
            done: Some(ReplyDone::default()),
        };
        let mut pieces = Vec::new();
        while let Some(Some(event)) = stream.next().now_or_never() {
            match event {
                ReplyEvent::Text(piece) => pieces.push(piece),
                ReplyEvent::Done(_) => return pieces,
                ReplyEvent::Failed(err) => panic!("{err}"),
                ReplyEvent::Tool(call) => panic!("{text:?}: no tool was asked for: {call:?}"),
            }
        }
        panic!("{text:?}: the stream ended without Done");
    }

    #[test]
    fn sentence_pieces_keep_every_byte() {
        for text in [
            "One. Two! Three? Four",
            "No end",
            "Ends with a dot.",
            "Trailing space. ",
            "Émoji 😊. Next",
        ] {
            let pieces = sentence_pieces(text);
            assert_eq!(pieces.concat(), text);
            assert!(pieces.iter().all(|piece| !piece.is_empty()), "{pieces:?}");
        }
        assert_eq!(sentence_pieces("A. B. C"), ["A. ", "B. ", "C"]);
        assert_eq!(sentence_pieces("Ends. "), ["Ends. "]);
        assert!(sentence_pieces("").is_empty());
    }

    #[test]
    fn replies_are_deterministic_topic_aware_and_not_echoes() {
        let assistant = BuiltinAssistant::new(100);
        let alice = PlayerId::parse("alice").unwrap();
        let text = "My boss keeps piling on work before the deadline";
        let first = reply(&assistant, &alice, text).text;
        let second = reply(&assistant, &alice, text).text;
        assert_eq!(first, second);
        assert!(!first.contains("piling"));
        assert!(TOPICS[4].replies.contains(&first.as_str()), "{first}");
    }

    #[test]
    fn crisis_replies_point_to_help_without_repeating_the_words() {
        let assistant = BuiltinAssistant::new(100);
        let bob = PlayerId::parse("bob").unwrap();
        let answer = reply(&assistant, &bob, "I want to kill myself").text;
        assert!(answer.contains("help is available right now"));
        assert!(!answer.to_lowercase().contains("kill"));
    }

    #[test]
    fn feedback_follows_the_domain_table_and_shapes_recommendations() {
        let assistant = BuiltinAssistant::new(100);
        let carol = PlayerId::parse("carol").unwrap();
        let outcome = assistant.feedback(&FeedbackInput {
            player: &carol,
            rating: Some(1),
            text: Some("it was boring and too fast"),
        });
        assert_eq!(
            outcome.adjustments,
            [
                "reduce_intensity",
                "increase_support",
                "increase_engagement",
                "vary_approaches"
            ]
        );
        let titles: Vec<_> = outcome.recommendations.iter().map(|r| r.title).collect();
        assert_eq!(
            titles,
            [
                "Adjust Therapeutic Intensity",
                "Slow Down Pacing",
                "Increase Engagement"
            ]
        );
        let good = assistant.feedback(&FeedbackInput {
            player: &carol,
            rating: Some(5),
            text: Some("really helpful"),
        });
        assert_eq!(good.adjustments, ["maintain_current_approach"]);
        // (1 + 5) / 2 = 3 is no longer below 3.
        assert!(!good.recommendations.contains(&ADJUST_INTENSITY));
    }

    #[test]
    fn a_stress_cue_in_conversation_recommends_stress_management() {
        let assistant = BuiltinAssistant::new(100);
        let dan = PlayerId::parse("dan").unwrap();
        assert!(reply(&assistant, &dan, "hello").recommendations.is_empty());
        let stressed = reply(&assistant, &dan, "I'm so stressed about tomorrow");
        assert_eq!(stressed.recommendations, [STRESS_FOCUS]);
    }

    #[test]
    fn profiles_are_bounded() {
        let assistant = BuiltinAssistant::new(50);
        for n in 0..500 {
            let player = PlayerId::parse(&format!("p{n}")).unwrap();
            reply(&assistant, &player, "hi");
        }
        assert!(assistant.profile_count() <= 50 + SHARDS);
        let last = PlayerId::parse("p499").unwrap();
        assert!(assistant.with_profile(&last, |p| p.stress_turns.len()) == 1);
    }
}
