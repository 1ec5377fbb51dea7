//! Detection checked on a corpus of example messages: crises that must be
//! found, idioms and everyday chat that must not raise an alarm, and anxiety
//! cues. Each table is walked whole and every failing message reported at
//! once, so a rule change shows all it breaks in one run.
//!
//! A missed crisis or a false alarm found in use belongs here as a new line,
//! added with the rule change that fixes it.

use super::{detect_anxiety_in, detect_crisis, detect_crisis_in, CrisisType};
use crate::therapy::text::NormalizedText;
use CrisisType::*;

/// Messages that must be detected with at least the listed types; other
/// types may fire as well.
const CRISES: &[(&str, &[CrisisType])] = &[
    // suicidal ideation
    ("I want to kill myself", &[SuicidalIdeation]),
    ("i wanna die", &[SuicidalIdeation]),
    ("I’m thinking about suicide", &[SuicidalIdeation]),
    ("I feel suicidel lately", &[SuicidalIdeation]),
    ("sucide is all I think about", &[SuicidalIdeation]),
    ("I keep having suicdal thoughts", &[SuicidalIdeation]),
    ("I want to end my life", &[SuicidalIdeation]),
    ("Sometimes I just want to end it all.", &[SuicidalIdeation]),
    ("I'm going to take my own life", &[SuicidalIdeation]),
    ("There is no reason to live anymore", &[SuicidalIdeation]),
    ("I have nothing left to live for", &[SuicidalIdeation]),
    (
        "Everyone would be better off without me",
        &[SuicidalIdeation],
    ),
    ("honestly I'd be better off dead", &[SuicidalIdeation]),
    ("I can't go on.", &[SuicidalIdeation]),
    ("I cant go on like this anymore", &[SuicidalIdeation]),
    ("I can't go on, everything hurts", &[SuicidalIdeation]),
    ("I don't want to live anymore", &[SuicidalIdeation]),
    ("I don’t want to be alive", &[SuicidalIdeation]),
    ("I don't want to be here anymore", &[SuicidalIdeation]),
    ("I wish I was dead", &[SuicidalIdeation]),
    ("I wish I had never been born", &[SuicidalIdeation]),
    ("thinking of how to unalive myself", &[SuicidalIdeation]),
    ("I want to kiiiill myselfff", &[SuicidalIdeation]),
    ("I WANT TO DIE", &[SuicidalIdeation]),
    ("im gonna kil my self", &[SuicidalIdeation]),
    (
        "Had a rough day at work. I just want to die. Nobody gets it.",
        &[SuicidalIdeation],
    ),
    (
        "nobody would even notice if i disappeared",
        &[SuicidalIdeation],
    ),
    ("I'm going to end it tonight", &[SuicidalIdeation]),
    ("I just want to end it. I'm so tired", &[SuicidalIdeation]),
    ("I feel like dying", &[SuicidalIdeation]),
    ("I hope I never wake up", &[SuicidalIdeation]),
    ("life isn't worth living", &[SuicidalIdeation]),
    ("I cannot go on living like this", &[SuicidalIdeation]),
    ("I. Want. To. Die.", &[SuicidalIdeation]),
    ("I want to... die", &[SuicidalIdeation]),
    // disguised letters (therapy/unmask.rs)
    ("i want to k1ll mys3lf", &[SuicidalIdeation]),
    ("ｉ ｗａｎｔ ｔｏ ｄｉｅ", &[SuicidalIdeation]),
    ("i just want to d i e", &[SuicidalIdeation]),
    ("thinking about su1c1de again", &[SuicidalIdeation]),
    ("i want to k\u{0456}ll myself", &[SuicidalIdeation]),
    ("i want to k-i-l-l myself", &[SuicidalIdeation]),
    ("i c u t myself again", &[SelfHarm]),
    ("there’s no point in living", &[SuicidalIdeation]),
    (
        "my family would be happier if I was gone",
        &[SuicidalIdeation],
    ),
    (
        "I want to die of embarrassment. No, really, I want to die",
        &[SuicidalIdeation],
    ),
    // self harm
    ("I want to hurt myself", &[SelfHarm]),
    ("I've been cutting myself again", &[SelfHarm]),
    ("I cut myself last night", &[SelfHarm]),
    ("thinking about self-harm", &[SelfHarm]),
    ("my self harm is getting worse", &[SelfHarm]),
    ("I burn myself when I'm upset", &[SelfHarm]),
    ("I keep hurting myself", &[SelfHarm]),
    (
        "I want to hurt myself even though I fell at the gym today",
        &[SelfHarm],
    ),
    ("selfharm", &[SelfHarm]),
    ("I have the urge to cut", &[SelfHarm]),
    ("I feel so low, I hurt myself", &[SelfHarm]),
    // an explicit intent fires despite an accident context
    ("I want to hurt myself after playing tennis", &[SelfHarm]),
    // panic attack
    ("I'm having a panic attack", &[PanicAttack]),
    ("i cant breathe and my heart is racing", &[PanicAttack]),
    ("My heart is pounding out of my chest", &[PanicAttack]),
    ("I'm hyperventilating", &[PanicAttack]),
    (
        "I feel like I'm dying, everything is spinning",
        &[PanicAttack],
    ),
    ("PANIC ATTACK right now", &[PanicAttack]),
    ("I can’t breathe", &[PanicAttack]),
    ("my chest is so tight and I'm shaking", &[PanicAttack]),
    // severe depression
    ("I feel so hopeless", &[SevereDepression]),
    ("I'm worthless", &[SevereDepression]),
    ("nothing matters anymore", &[SevereDepression]),
    ("There's no point in anything", &[SevereDepression]),
    ("I feel empty inside", &[SevereDepression]),
    ("I can't get out of bed", &[SevereDepression]),
    ("i feel sooo hopelesss", &[SevereDepression]),
    ("I'm such a burden to everyone", &[SevereDepression]),
    (
        "I haven't gotten out of bed in three days",
        &[SevereDepression],
    ),
    // trauma response
    ("I keep having flashbacks", &[TraumaResponse]),
    ("I have nightmares about the accident", &[TraumaResponse]),
    ("I keep reliving that night", &[TraumaResponse]),
    ("That movie triggered me so badly", &[TraumaResponse]),
    ("I think I'm dissociating", &[TraumaResponse]),
    ("my PTSD is acting up", &[TraumaResponse]),
    ("I was abused as a child", &[TraumaResponse]),
    // substance abuse
    ("I overdosed last year and I'm scared", &[SubstanceAbuse]),
    ("I took too many pills", &[SubstanceAbuse]),
    ("I’ve been drinking too much", &[SubstanceAbuse]),
    ("I can't stop drinking", &[SubstanceAbuse]),
    ("I relapsed last night", &[SubstanceAbuse]),
    ("I'm using again", &[SubstanceAbuse]),
    ("I swallowed a handful of pills", &[SubstanceAbuse]),
    // general distress
    ("I can't cope", &[GeneralDistress]),
    ("I can't take it anymore", &[GeneralDistress]),
    ("I'm falling apart", &[GeneralDistress]),
    ("I keep breaking down in tears", &[GeneralDistress]),
    ("I'm at my breaking point", &[GeneralDistress]),
    ("I'm losing my mind", &[GeneralDistress]),
    ("I just can't do this anymore", &[GeneralDistress]),
    ("everything's falling apart", &[GeneralDistress]),
    ("I'm barely holding on", &[GeneralDistress]),
    // paraphrases and warning signs
    ("i'm thinking of ending things", &[SuicidalIdeation]),
    ("I've been collecting pills", &[SuicidalIdeation]),
    ("soon I won't be a problem anymore", &[SuicidalIdeation]),
    ("I just want to sleep and not wake up", &[SuicidalIdeation]),
    ("what's the point of living", &[SuicidalIdeation]),
    ("i just want it all to stop", &[SuicidalIdeation]),
    ("i want 2 die", &[SuicidalIdeation]),
    ("I wanna kms", &[SuicidalIdeation]),
    ("I've been depressed for months", &[SevereDepression]),
    ("I'm so depressed", &[SevereDepression]),
    ("I took a bunch of xanax", &[SubstanceAbuse]),
    (
        "i have been clean for 2 years but i used again yesterday",
        &[SubstanceAbuse],
    ),
    ("I can't sleep because of the nightmares", &[TraumaResponse]),
    // several types in one message
    (
        "I'm planning to overdose on my meds",
        &[SuicidalIdeation, SubstanceAbuse],
    ),
    (
        "I relapsed and started cutting again",
        &[SubstanceAbuse, SelfHarm],
    ),
];

/// Idioms and everyday chat: nothing may be detected in any of them.
const NOT_CRISES: &[&str] = &[
    "th1s game is k1ll1ng me lol",
    "ｍｙ ｐｈｏｎｅ ｄｉｅｄ",
    "meet me at 5pm in room 101",
    "this homework is killing me",
    "my feet are killing me",
    "this deadline is killing me",
    "my phone died",
    "my battery died again",
    "my plant died while I was on vacation",
    "I could kill for a pizza",
    "you're killing it!",
    "She killed it at the show",
    "I'm dying to see the new movie",
    "dying to know what happens next",
    "I died laughing",
    "I'm dead tired",
    "I'm dead serious",
    "this cake is to die for",
    "just killing time before class",
    "that was a killer workout",
    "over my dead body",
    "I'm trying to cut back on coffee",
    "I cut my finger cooking dinner",
    "I hurt my knee playing football",
    "my library book is overdue",
    "I'm reading a self-help book",
    "I panic before exams",
    "don't panic, it's fine",
    "I'm so proud of myself",
    "I feel good today",
    "I can't go on the trip on Friday",
    "we can't go on vacation this year",
    "I don't want to live in this city anymore",
    "I don't want to be here at this party",
    "I accidentally cut myself shaving",
    "I hurt myself at the gym",
    "I'm cutting myself some slack",
    "I'm hopeless at cooking",
    "I'm a hopeless romantic",
    "nothing else matters",
    "I had a nightmare about being late for my exam",
    "traffic was a nightmare",
    "Flashback Friday!",
    "the toast triggered the smoke alarm",
    "I drank too much water",
    "I'm addicted to this show",
    "I need help with my homework",
    "I'm not okay with pineapple on pizza",
    "The Suicide Squad movie was fun",
    "That would be career suicide",
    "I'm taking my life back",
    "It took my life savings",
    "I shot myself in the foot with that email",
    "I lost hope in humanity after reading the comments",
    "my leg feels numb",
    "I can't breathe lol this is so funny",
    "I'm excited, my heart is racing!",
    "What's the point of this meeting?",
    "My computer had a breakdown",
    "Give me a breakdown of the costs",
    "I'm so hungry I could die",
    "I'm dying for a coffee",
    "I want to die my hair blue",
    "I'm going to drown myself in coffee this week",
    "this stock is worthless now",
    "my car is breaking down again",
    "I'm breaking down the task into steps",
    "The show can't go on without the lead actor",
    "We need to end it with a bang",
    "mom will kill me if I'm late",
    "my grandma died last year and I miss her",
    "I'm stressed about exams but fine",
    "Let's catch up next week, no worries",
    "I jumped off the cliff into the lake, so fun",
    "That's odd",
    "I overdosed on coffee this morning",
    "I'm going to take all my pills with me on the trip",
    "I want to die on this hill",
    "I had a nightmare of a commute",
    "I feel like I'm dying of boredom in this class",
    "I'm giving away my stuff because I'm moving",
    "Please help me understand this",
    "He relapsed into his old habits of procrastinating",
    "I'm empty-handed",
    "I ran 10 kms today",
    "shh my baby is sleeping",
    "I don't want to die without seeing Paris",
    "What's the point of this?",
    "I won't be here much longer, my shift ends at 5",
    "I should just disappear for the weekend",
    "I'm a burden of proof expert",
    "I was attacked by a seagull lol",
    "I'm dying my hair purple",
    "I killed the spider in the bathroom",
    "I'm done with my homework",
    "I'm so tired of this rain",
    "I can't take it, this puppy is too cute",
    "No point in going now, the shop is closed",
    // a crisis phrase split across two sentences
    "I want to. Die Hard is my favourite film.",
    "I'd love to kill. Myself and my friends are playing werewolf.",
    "There's no reason to. Live music tonight!",
    "I can't. Go on without me, I'll catch up",
    // an accident context suppresses "hurt myself"
    "I hurt myself playing tennis",
    // panic alone is an anxiety cue (see ANXIOUS), not a crisis; "I panic
    // before exams" is above
    "don't panic",
    "panicking about my essay",
];

/// Messages that carry an anxiety cue.
const ANXIOUS: &[&str] = &[
    "I'm so anxious about tomorrow",
    "my anxiety is bad today",
    "I panic before exams",
    "don't panic",
    "I'm freaking out",
    "feeling really overwhelmed",
    "I'm stressed",
    "sooo stresssed",
    "I can't calm down",
    "I'm on edge",
    "I'm worried about my mom",
    "I'm scared",
    "my mind is racing",
    "I feel so anxous",
    "I'm nervous about the interview",
    "I’m dreading Monday",
    "panicking about my essay",
];

/// Messages that carry no anxiety cue.
const NOT_ANXIOUS: &[&str] = &[
    "Had a lovely day at the beach",
    "no worries, see you tomorrow",
    "don't worry about it",
    "I'm not worried",
    "The cake was great",
    "Let's meet at noon",
    "I love my dog",
    "I'm afraid I can't make it",
    "nothing to worry about",
];

/// Fails with every message that went wrong, not just the first.
#[track_caller]
fn assert_no_failures(failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{} corpus message(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn crisis_corpus() {
    // Guards against a table cut short by a bad edit.
    assert!(CRISES.len() >= 45 && NOT_CRISES.len() >= 45);
    let mut failures = Vec::new();
    for (message, expected) in CRISES {
        let found = detect_crisis(message).types;
        let missing: Vec<&CrisisType> = expected
            .iter()
            .filter(|kind| !found.contains(kind))
            .collect();
        if !missing.is_empty() {
            failures.push(format!("{message:?}: missed {missing:?}, got {found:?}"));
        }
    }
    for message in NOT_CRISES {
        let found = detect_crisis(message).types;
        if !found.is_empty() {
            failures.push(format!("{message:?}: is not a crisis, got {found:?}"));
        }
    }
    let all_messages = CRISES.iter().map(|(message, _)| message).chain(NOT_CRISES);
    for message in all_messages {
        if detect_crisis_in(&NormalizedText::new(message)) != detect_crisis(message) {
            failures.push(format!(
                "{message:?}: detect_crisis_in disagrees with detect_crisis"
            ));
        }
    }
    assert_no_failures(&failures);
}

#[test]
fn anxiety_corpus() {
    let mut failures = Vec::new();
    for message in ANXIOUS {
        if !detect_anxiety_in(&NormalizedText::new(message)) {
            failures.push(format!("{message:?}: anxiety cue missed"));
        }
    }
    for message in NOT_ANXIOUS {
        if detect_anxiety_in(&NormalizedText::new(message)) {
            failures.push(format!("{message:?}: is not an anxiety cue"));
        }
    }
    assert_no_failures(&failures);
}
