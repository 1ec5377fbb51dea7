//! Crisis detection: which crisis types a chat message shows, and whether it
//! carries anxiety cues.
//!
//! A missed crisis is the worst error and a false alarm on an idiom the
//! second worst, so detection matches explicit phrases on whole words within
//! one sentence (see [`crate::text`]) rather than substrings, and idioms are
//! simply never written as patterns ("killing me", "my phone died", "dying
//! to see" match nothing). Where a crisis phrase has an innocent reading in
//! some context, the rule lists "unless" patterns that suppress it when they
//! occur in the same sentence ("hurt myself" ... "playing football"); an
//! explicit intent ("want to hurt myself") is a separate rule with no
//! exceptions, so it still fires. Ambiguous statements ("I don't want to
//! die") fire, because a missed crisis costs more than a check-in.
//!
//! # Pattern syntax
//! A pattern is a sequence of space-separated elements, written in plain
//! English and normalised like the message at match time:
//! - `word` — one word; contractions may expand to several (`can't` is
//!   "can not"), and stretched letters collapse on both sides.
//! - `a|b|c` — alternatives for one position.
//! - `a_b` — several consecutive words inside one alternative
//!   (`deal_with|handle`).
//! - `word?` — the element is optional (`my own? life`).
//! - `*` — zero to two arbitrary words.
//! - `$` — the end of the sentence or a clause break (comma, dash, emoji,
//!   ellipsis ...): `can't go on $` matches "I can't go on, it hurts" but not
//!   "I can't go on the trip". It may also be one alternative: `end it $|tonight`.
//! - `~word` — a keyword of 6+ letters that also matches with one typo
//!   (one letter inserted, deleted, replaced, or two neighbours swapped):
//!   `~suicide` matches "sucide" and "suicdie". Used only for words whose
//!   one-typo neighbours are not other English words.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::text::NormalizedText;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CrisisType {
    SuicidalIdeation,
    SelfHarm,
    PanicAttack,
    SevereDepression,
    TraumaResponse,
    SubstanceAbuse,
    GeneralDistress,
}

impl CrisisType {
    pub const ALL: [CrisisType; 7] = [
        CrisisType::SuicidalIdeation,
        CrisisType::SelfHarm,
        CrisisType::PanicAttack,
        CrisisType::SevereDepression,
        CrisisType::TraumaResponse,
        CrisisType::SubstanceAbuse,
        CrisisType::GeneralDistress,
    ];

    /// The snake_case name used on the wire and in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            CrisisType::SuicidalIdeation => "suicidal_ideation",
            CrisisType::SelfHarm => "self_harm",
            CrisisType::PanicAttack => "panic_attack",
            CrisisType::SevereDepression => "severe_depression",
            CrisisType::TraumaResponse => "trauma_response",
            CrisisType::SubstanceAbuse => "substance_abuse",
            CrisisType::GeneralDistress => "general_distress",
        }
    }
}

impl fmt::Display for CrisisType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown crisis type `{0}`")]
pub struct UnknownCrisisType(pub String);

impl FromStr for CrisisType {
    type Err = UnknownCrisisType;

    /// Accepts the snake_case name, ignoring ASCII case and surrounding space.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = s.trim();
        CrisisType::ALL
            .into_iter()
            .find(|kind| kind.as_str().eq_ignore_ascii_case(name))
            .ok_or_else(|| UnknownCrisisType(s.to_owned()))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CrisisAssessment {
    /// Sorted, no duplicates.
    pub types: Vec<CrisisType>,
}

impl CrisisAssessment {
    pub fn is_crisis(&self) -> bool {
        !self.types.is_empty()
    }
}

pub fn detect_crisis(text: &str) -> CrisisAssessment {
    detect_crisis_in(&NormalizedText::new(text))
}

pub fn detect_crisis_in(text: &NormalizedText) -> CrisisAssessment {
    let mut types = crisis_rules().find(text);
    types.sort_unstable();
    types.dedup();
    CrisisAssessment { types }
}

/// anxiety, panic or stress cues (anxious, anxiety, panic, panicking, overwhelmed, stressed, stress, nervous, worried, scared, on edge, freaking out, can't calm down, ...): the reply then offers the breathing/grounding exercises
pub fn detect_anxiety_in(text: &NormalizedText) -> bool {
    !anxiety_rules().find(text).is_empty()
}

// ---------------------------------------------------------------------------
// Pattern tables

struct Spec {
    pattern: &'static str,
    unless: &'static [&'static str],
}

const fn rule(pattern: &'static str) -> Spec {
    Spec {
        pattern,
        unless: &[],
    }
}

const fn rule_unless(pattern: &'static str, unless: &'static [&'static str]) -> Spec {
    Spec { pattern, unless }
}

/// "kms" is also kilometres.
const KMS_DISTANCE: &[&str] = &[
    "ran|run|running|runs|walk|walked|walking|drive|drove|driving|cycle|cycled|cycling|biked|biking|hiked|hiking|swam|rode|away|far|per|hour|an_hour|distance|km|miles|marathon|trip|road",
];

const SUICIDE_IDIOMS: &[&str] = &[
    "~suicide squad|mission|missions|doors|door|bomber|bombers|bombing|bombings|attack|attacks|vest|run|runs|sprint|sprints|drill|drills|squeeze|king|kings",
    "career|social|political|commercial|electoral|professional|financial|corporate|fashion|brand|cultural ~suicide",
];

/// "want to die" said of embarrassment, laughter, dyeing hair or a hill to die on.
const WANT_DIE_IDIOMS: &[&str] = &[
    "die laughing|of_laughter|from_laughter|of_embarrassment|from_embarrassment|of_cringe|from_cringe|of_boredom|from_boredom|of_old_age|on_this_hill|on_that_hill|happy_and_old",
    "die * hair",
    "die without|before seeing|visiting|trying|doing|travelling|traveling|having_seen|going_to",
];

/// Where someone lives, not whether they want to.
const LIVE_PLACE: &[&str] = &[
    "live|living here|there|abroad|nearby|downtown|on_campus|with_my_parents|with_roommates|near|at_home",
    "live|living in * city|town|country|house|apartment|flat|place|area|neighborhood|neighbourhood|state|dorm|dorms|village|suburbs|countryside",
];

/// Context that makes "hurt/cut/burn myself" an accident or an idiom.
const ACCIDENT: &[&str] = &[
    "accident|accidentally|accidental|accidently|by_mistake|clumsy",
    "playing|practice|practicing|training|gym|workout|working_out|exercising|lifting|weights|sports|sport|football|soccer|basketball|tennis|rugby|hockey|volleyball|baseball|skating|skateboarding|skiing|snowboarding|climbing|hiking|cycling|biking|jogging|yoga|dancing",
    "cooking|baking|chopping|slicing|peeling|knife_slipped|oven|stove|frying|grill|kettle",
    "shaving|razor_slipped|slipped|tripped|stairs",
    // "fell" normalises like "feel", so only unmistakable uses of it.
    "fell over|from|onto|off_the|off_my|off_a|down_the",
    "laughing|laughed",
    "cut|cutting ~myself off|short|slack|some_slack|a_break|a_slice|a_piece|a_deal|in|loose|free|out",
];

const METHOD_IDIOMS: &[&str] = &[
    "foot|photo|photos|picture|pictures|selfie|selfies|video|videos|photoshoot|camera",
    "shoot|shooting ~myself a|an message|text|email|reminder|note|dm",
    "drown|drowning ~myself in * work|homework|paperwork|coffee|tea|wine|chocolate|ice_cream|books|netflix|tv|projects|assignments|emails|music|studies|perfume|cologne|sauce|ketchup|blankets|hobbies",
    "poison|poisoning ~myself with * junk_food|fast_food|sugar|candy|snacks|takeout",
];

const JUMP_IDIOMS: &[&str] = &[
    "diving|dive|parachute|parachuting|bungee|zipline|trampoline|base_jumping|cliff_jumping|for_fun|dare|dared",
    "if_your_friends|all_your_friends|if_everyone",
    "into_the_lake|into_the_sea|into_the_pool|into_the_water",
];

const TAKE_ALL_PILLS_IDIOMS: &[&str] = &[
    "with_me|pack|packing|trip|travel|travelling|traveling|holiday|vacation|as_prescribed|on_time|every_day|daily|at_once_doctor",
];

const BREATHE_IDIOMS: &[&str] = &[
    "lol|lmao|lmfao|rofl|haha|hahaha|hahahaha|funny|hilarious|laughing|laughed",
    "nose|stuffy|congested|a_cold|flu|allergies|allergy|mask|smoke|smog|pollen|humidity|humid|underwater|jeans|corset|spicy|pepper|perfume",
];

const EXCITEMENT: &[&str] = &[
    "excited|excitement|exciting|thrilled|thrilling|crush|proposal|proposed|concert|rollercoaster|roller_coaster|coffee|caffeine|espresso|energy_drink|workout|run|running|cardio|race",
];

/// "I feel like I'm dying" from hunger, heat, a workout or laughter.
const DYING_IDIOMS: &[&str] = &[
    "boredom|bored|boring|hungry|hunger|starving|heat|laughing|laughter|cringe|embarrassment|lol|lmao|haha|hahaha|thirst|thirsty|sleepy|hangover|hungover|flu|a_cold|workout|gym|cardio|leg_day|cramps|period|spicy",
];

/// "numb"/"empty" said of a body part, a tank or a fridge.
const LITERAL_NUMB: &[&str] = &[
    "leg|legs|arm|arms|hand|hands|finger|fingers|toe|toes|foot|feet|face|lip|lips|mouth|tongue|jaw|tooth|teeth|gums|cheek|butt|dentist|anesthetic|anaesthetic|injection|novocaine|freezing|asleep",
    "handed|stomach|tank|battery|fridge|inbox|wallet|glass|bottle",
];

const HOPELESS_IDIOMS: &[&str] = &[
    "hopeless romantic|romantics|at|case_at",
    "not|less|never|no_longer hopeless",
    "wifi|internet|connection|traffic|referee|ref|team|defense|defence|printer|bus|train|trains|service|weather|handwriting|spelling|cooking * hopeless",
];

const WORTHLESS_IDIOMS: &[&str] = &[
    "money|stock|stocks|shares|coupon|coupons|voucher|vouchers|ticket|tickets|currency|card|cards|coin|coins|crypto|bitcoin|nft|nfts|car|phone|junk|advice|review|reviews|warranty|bond|bonds|dollar|dollars|points * worthless",
    "worthless money|stock|stocks|shares|coupon|coupons|vouchers|tickets|currency|advice|warranty|coins|crypto",
    "not|less|never|no_longer worthless",
];

const LOST_HOPE_IDIOMS: &[&str] = &[
    "hope in|for humanity|the_world|politics|people|society|the_government|this_country|the_team|them|him|her|mankind|the_internet",
];

const FLASHBACK_IDIOMS: &[&str] = &[
    "flashback|flashbacks friday|scene|scenes|episode|episodes|sequence|sequences|chapter|chapters|style|edition|song|album|playlist",
];

const TRIGGER_IDIOMS: &[&str] = &[
    "lol|lmao|lmfao|rofl|haha|hahaha|meme|memes|snowflake|snowflakes|libs|liberals|boomer|boomers",
    "alarm|alarms|sensor|sensors|allergy|allergies|allergic|migraine|migraines|asthma|sneeze|sneezing|mousetrap|trap|camera",
    "event|events|workflow|pipeline|build|function|webhook|deploy|automation|script",
];

const TRAUMATIZED_IDIOMS: &[&str] =
    &["lol|lmao|lmfao|rofl|haha|hahaha|movie|film|episode|finale|ending|meme"];

const OVERDOSE_IDIOMS: &[&str] = &[
    "on|of caffeine|coffee|sugar|candy|chocolate|sweets|netflix|anime|tv|memes|cuteness|cute|content|sunshine|drama|carbs|pizza|love|happiness|nostalgia|feels|feelings|kindness|cheese|garlic|cookies|cake",
];

const NON_ALCOHOL: &[&str] = &[
    "water|coffee|tea|soda|pop|caffeine|coke|cola|juice|milk|energy_drink|energy_drinks|redbull|red_bull|monster|smoothie|smoothies|kombucha|protein|lemonade|matcha|latte|lattes|espresso|boba",
];

const RELAPSE_IDIOMS: &[&str] = &[
    "cancer|leukemia|leukaemia|tumor|tumour|lymphoma|ms|symptoms|illness|disease|infection|flu|covid|injury|knee|back_pain|fever|rash|acne|eczema|migraine|migraines|diet|psoriasis",
    "habit|habits|procrastinating|procrastination|nail_biting|junk_food|laziness|bad_posture",
];

const COPE_IDIOMS: &[&str] =
    &["cope with * heat|weather|humidity|traffic|noise|cold|snow|rain|spice"];

const CRY_IDIOMS: &[&str] = &[
    "laughing|laughed|laugh|lol|lmao|lmfao|rofl|haha|hahaha|funny|hilarious|onion|onions|proud|wedding|happy_tears|tears_of_joy",
];

const BREAKDOWN_IDIOMS: &[&str] = &[
    "car|truck|van|engine|bus|train|vehicle|computer|laptop|phone|washing_machine|fridge|printer|boiler|heater|tractor|motorbike|scooter|roadside|mechanic|tow",
    "breakdown of|by",
    "cost|costs|budget|price|prices|numbers|data|detailed|full|chemical|nutritional",
];

const NEED_HELP_TASKS: &[&str] = &[
    "with|homework|assignment|finding|understanding|choosing|picking|deciding|fixing|setting|moving|figuring|writing|cooking|planning|project|essay|math|maths|code|coding|computer|laptop|phone|recipe",
    "help to|on|for find|choose|pick|decide|fix|understand|write|get|this|my|the",
    "help me understand|find|choose|pick|decide|fix|write|figure|finish|move|plan|cook|study|learn|prepare|set_up|translate|remember|with",
];

const NOT_OK_IDIOMS: &[&str] = &[
    "ok|okay|alright|all_right|fine with|if|about|for|going_to|to_drive|to_go|to_do|to_work|that",
];

const WORRY_IDIOMS: &[&str] = &[
    "not|never|no_need_to|nothing_to worry|worried|worrying|fret",
    "no|without worries|worry",
    "worry free",
];

const SUICIDAL_IDEATION: &[Spec] = &[
    rule("~suicidal|suicidally|suicidality"),
    rule_unless("~suicide|suicides", SUICIDE_IDIOMS),
    rule("sewer_slide|sewerslide|~unalive|unalived|unaliving|unalives"),
    rule("kill|kills|killing ~myself"),
    rule_unless("killed ~myself", ACCIDENT),
    rule("to off ~myself"),
    rule("offing ~myself"),
    rule_unless(
        "hang|hanging|hanged|drown|drowning|shoot|shooting|poison|poisoning|suffocate|suffocating|electrocute|stab|stabbing ~myself",
        METHOD_IDIOMS,
    ),
    rule_unless(
        "want|wanted|wanting|wants|wish|wished|wishing|deserve|deserves|deserved|ready|plan|planning|trying|tried|need|longing to|2 die",
        WANT_DIE_IDIOMS,
    ),
    rule_unless("kms", KMS_DISTANCE),
    rule("want|wanted|wish|wishing|need it_all|everything|all_of_it|all_of_this|my_life to end|stop $|forever"),
    rule("want|wanted|wish|wishing to|i_could|i_would|i_can sleep|go_to_sleep forever|and_never_wake_up"),
    rule("what is the point * living|being_alive|going_on|staying_alive"),
    rule_unless("i should just? die", WANT_DIE_IDIOMS),
    rule_unless("might_as_well|just_let_me|let_me|let_myself die", WANT_DIE_IDIOMS),
    rule_unless("rather be_dead|die", &["than"]),
    rule("wish i was|were|could_be|had_been dead|gone|not_alive|never_born"),
    rule("wish i * never * born"),
    rule("wish i could|would die|not_wake_up|sleep_forever|disappear_forever"),
    rule("want|wanted|wish|ready to be dead"),
    rule("feel|feels|felt|feeling like dying|ending_it|ending_it_all|ending_my_life"),
    rule("end|ending|ended my own? life|existence"),
    rule("take|taking|took my own life"),
    rule_unless(
        "take|taking my life",
        &["back|savings|into|seriously|for_granted|in_my_own_hands|in_hand"],
    ),
    rule("end|ending it all"),
    rule("want|wanted|wanting|going|ready|plan|planning|decided|about|try|trying|tempted|need to end it $|tonight|today|now|soon|forever"),
    rule("thinking|thought|think about|of ending it|things|everything $|all"),
    rule("stockpiling|stockpiled|hoarding|hoarded|saving_up|collecting|collected * pills|meds|medication|tablets|painkillers"),
    rule_unless(
        "noose|nooses",
        &["halloween|decoration|decorations|knot|knots|hangman|western|movie|film|history|museum"],
    ),
    rule_unless(
        "give|giving|gave away all? my stuff|things|belongings|possessions",
        &["moving|move|declutter|decluttering|sale|donate|donating|charity|garage|yard_sale|clearing_out|spring_cleaning|minimalist|minimalism"],
    ),
    rule_unless(
        "not_going_to|will_not|won't be around|here much|for_much longer",
        &["shift|work|office|party|store|shop|town|city|job|school|meeting|class|today|tonight|minutes|minute|hour|hours|week|visit|trip|country|house"],
    ),
    rule("will_not|won't|not_going_to be a problem|burden|bother anymore|any_more|for_much_longer|for_long|soon"),
    rule("i should just? disappear|not_exist|not_be_here|not_be_alive $"),
    rule_unless(
        "no reason|point|purpose to|for|in|of? live|living|exist|existing|be_alive|being_alive|stay_alive|keep_living|go_on|going_on|keep_going",
        LIVE_PLACE,
    ),
    rule_unless("not_have|lost|without a|any|my? reason to_live|for_living", LIVE_PLACE),
    rule("nothing|nobody|noone|no_one * to live for"),
    rule("not worth living|being_alive"),
    rule("life * not worth it|living|anything|the_pain|the_effort"),
    rule("better|happier|easier off? without me"),
    rule("better off dead|gone"),
    rule("care|notice|miss|matter|matters|better|happier|easier|relieved * if i died|disappeared|vanished|killed_myself|never_existed|was_gone|were_gone|was_dead|were_dead|was_not_here|were_not_here|did_not_exist|was_not_around|were_not_around|was_never_born|were_never_born"),
    rule("can't|could_not|can_no_longer go on $"),
    rule("can't|could_not|can_no_longer go on anymore|any_more|any_longer|like_this|like_that|living|with_life|with_my_life|much_longer|another_day|this_way|in_this_world"),
    rule("can't|could_not live like_this|like_that|anymore|any_more|with_myself|this_way"),
    rule("can't|could_not keep|carry_on|go_on living"),
    rule("not|longer want|wish|need to be_alive|exist|existing|stay_alive|keep_living|wake_up_anymore|wake_up_again|wake_up_ever_again|be_here_anymore|be_here_any_more|be_here_any_longer|live_anymore|live_any_more|live_any_longer|live_like_this|live_in_this_world|live_this_life|live_my_life|live_with_this_pain|be_in_this_world|go_on_living|keep_going_anymore"),
    rule("not|longer want to live|go_on|keep_going|be_here|exist $"),
    rule("not feel like living|being_alive"),
    rule_unless("hate|tired_of|sick_of|done_with being_alive|living|existing|life $", LIVE_PLACE),
    rule("hope|hoping|wish|wishing|pray|praying * not|never wake up $|again|ever|tomorrow|anymore"),
    rule("sleep|asleep and not|never wake up"),
    rule("slit|slitting|slash|slashing my|his? wrists|wrist|throat|veins"),
    rule_unless(
        "jump|jumping|jumped|throw_myself|throwing_myself off|from * bridge|roof|building|cliff|balcony|ledge|tower|overpass|window",
        JUMP_IDIOMS,
    ),
    rule("throw|throwing|threw ~myself off|under|in_front"),
    rule("step|stepping|jump|jumping|walk|walking|lie|lying in front of * train|trains|bus|car|truck|traffic"),
    rule("want|wanting|going|plan|planning|try|trying|tried|ready|about|tempted|thinking|thought to|about|of overdose|overdosing|od"),
    rule_unless(
        "going|want|plan|planning|ready|about|tempted|thinking_about to? take|taking|swallow|swallowing all * pills|meds|medication|tablets|painkillers",
        TAKE_ALL_PILLS_IDIOMS,
    ),
    rule("want|wanted|wish|wishing|could * disappear|vanish forever|permanently|for_good"),
    rule("goodbye cruel world"),
];

const SELF_HARM: &[Spec] = &[
    rule("self|myself harm|harming|harmed|harmer|harms|injury|injure|injuring|injured|mutilation|mutilate|mutilating|mutilated"),
    rule("selfharm|selfharming|selfharmed|selfharmer"),
    rule_unless(
        "hurt|harm|cut|burn|punish|injure|scratch|bruise|starve|mutilate ~myself",
        ACCIDENT,
    ),
    rule_unless(
        "hurting|harming|cutting|burning|punishing|injuring|scratching|starving|bruising ~myself",
        ACCIDENT,
    ),
    rule_unless(
        "hit|hitting|punch|punching|bang|banging ~myself",
        &[
            "accident|accidentally|door|doorframe|table|corner|cabinet|cupboard|shelf|ceiling|slipped|tripped",
        ],
    ),
    rule("want|wanted|wanting|going|try|trying|tried|urge|urges|need|needs|plan|planning|tempted|about|started|start|ready|deserve to hurt|harm|cut|burn|punish|injure|starve|hit ~myself"),
    rule("keep|kept|keeps|started|start|stop|been|relapsed|back_to|go_back_to * hurting|harming|cutting|burning|punishing|starving|hitting ~myself"),
    rule("urge|urges|urging|temptation to cut|harm|hurt|burn"),
    rule("hurt|harm|cut|burn ~myself again"),
    rule("cut|cutting|cuting|burned|burnt|harmed|harming again $"),
    rule_unless(
        "cut|cutting|cuts|slice|slicing my|his|her wrists|wrist|arm|arms|thigh|thighs|leg|legs|skin|stomach|hips|body",
        ACCIDENT,
    ),
    rule_unless(
        "hide|hiding|cover|covering|covered|hid my|the? cuts|scars|burns|wounds",
        &["surgery|operation|acne|c_section|tattoo|tattoos|chickenpox|pimples|mosquito"],
    ),
    rule("relapsed|relapse|relapsing * cutting|self_harm|harming"),
    // "sh" is community shorthand for self-harm; alone it is also "shh".
    rule("been|started|start|stop|relapsed|relapse|urge|urges|urge_to|my sh|shing|sh_ing"),
    rule("sh urges|relapse|relapsed|scars|free|clean|again"),
    rule("binge|binging|bingeing and? purge|purging"),
    rule("purging after|every|again"),
    rule("make|making|made myself throw_up|vomit|puke"),
];

const PANIC_ATTACK: &[Spec] = &[
    rule("panic|panick|panicky|anxiety|anxious attack|attacks|atack|atacks"),
    rule("panicattack|panicattacks"),
    rule_unless(
        "can't|cannot|could_not|unable_to|barely|hardly breathe|breath|catch_my_breath",
        BREATHE_IDIOMS,
    ),
    rule_unless(
        "hard|difficult|struggling|trouble|harder to? breathe|breathing",
        BREATHE_IDIOMS,
    ),
    rule_unless(
        "heart * racing|pounding|hammering|thumping|palpitating|beating_so_fast|beating_out|beating_really_fast",
        EXCITEMENT,
    ),
    rule_unless("heart * beating * fast|hard|out", EXCITEMENT),
    rule_unless("racing|pounding heart|heartbeat|pulse", EXCITEMENT),
    rule("heart_palpitations|palpitations"),
    rule("chest * tight|tightening|tightness|so_tight|heavy|crushing"),
    rule("~hyperventilating|hyperventilate|hyperventilated|hyperventilation|hyperventalating"),
    rule_unless(
        "feel|feels|felt|feeling like i am|was dying|going_to_die|about_to_die|having_a_heart_attack|going_to_pass_out",
        DYING_IDIOMS,
    ),
    rule_unless(
        "think|thought i am|was dying|having_a_heart_attack|going_to_die",
        DYING_IDIOMS,
    ),
    rule_unless("can't|cannot stop shaking|trembling", &["cold|freezing|laughing|lol"]),
];

const SEVERE_DEPRESSION: &[Spec] = &[
    rule_unless(
        "hopeless|hopless|hopelss|hopelessness|hoplessness",
        HOPELESS_IDIOMS,
    ),
    rule_unless("worthless|wortless|worhtless|worthlessness", WORTHLESS_IDIOMS),
    rule("nothing really|even|truly|just? matters|mattered"),
    rule("nothing i do matters|none_of_it_matters|none_of_this_matters"),
    rule("no point in|of? anything|everything|trying_anymore|anymore|any_more|getting_up|doing_anything|even_trying|life"),
    rule("no point in|of? trying $"),
    rule("what is the point * anything|trying|anymore|any_more|life|of_life|getting_up|existing"),
    rule("what is the point $"),
    rule("why do|did? i even? exist"),
    rule("empty|dead|numb|hollow inside"),
    rule("feel|feeling|felt|feels * empty|hollow|nothing_at_all|nothing_anymore|nothing_any_more"),
    rule_unless("feel|feeling|felt|feels * numb", LITERAL_NUMB),
    rule_unless("i am so|completely|totally|just? numb|empty|hollow", LITERAL_NUMB),
    rule("can't|could_not|unable_to get out of bed|up_in_the_morning"),
    rule("not * out of bed in|for * days|weeks|a_week"),
    rule("am|feel|feeling|felt|been|get|getting|become|became|so|very|really|severely|extremely|deeply|clinically|badly|seriously|super|incredibly|horribly|terribly|still|always depressed"),
    rule("my depression"),
    rule("depression is|has * worse|bad|unbearable|back|winning|killing_me|crushing_me|overwhelming"),
    rule("severe|deep|major|crippling|clinical|suicidal depression"),
    rule("depressive episode|episodes"),
    rule("hate|loathe|despise ~myself"),
    rule_unless("am|be|being|feel_like|such|just * burden", &["burden of proof"]),
    rule("burden to|on everyone|everybody|my_family|my_friends|others|people|you"),
    rule_unless("lost|losing|lose all? hope", LOST_HOPE_IDIOMS),
    rule("no hope left|anymore|any_more|for_me|at_all"),
    rule("have no hope"),
    rule("give|giving|gave|given up on life|living|myself|everything"),
    rule("not * feel anything anymore|any_more|at_all"),
    rule("not|can't enjoy|care_about anything"),
    rule("nobody|no_one|noone * cares|care|loves|wants|likes|needs * me"),
    rule("life * pointless|meaningless|empty|has_no_meaning|no_meaning"),
    rule("everything * pointless|meaningless"),
];

const TRAUMA_RESPONSE: &[Spec] = &[
    rule_unless("flashback|flashbacks|flash_back|flash_backs", FLASHBACK_IDIOMS),
    rule("nightmares about|of|every|again|since|all|keep|constantly|nightly"),
    rule("have|having|had|get|getting|keep|kept|constant|recurring|frequent|terrible|horrible|awful|bad nightmares"),
    rule("recurring nightmare"),
    rule("the|these|my nightmares"),
    rule("keep|kept|keeps|always|constantly|stop * reliving|relive|re_living|re_live"),
    rule("reliving|relive|re_living * trauma|abuse|assault|attack|accident|rape|over_and_over|that_night|that_day|the_moment|what_happened"),
    rule_unless("triggered|triggering", TRIGGER_IDIOMS),
    rule("my trigger|triggers"),
    rule("trigger for me"),
    rule("~dissociating|dissociate|dissociated|dissociation|dissociative|disassociating|disassociate|disassociated|disassociation"),
    rule("depersonalization|depersonalisation|derealization|derealisation|depersonalized|derealized"),
    rule("nothing feels real"),
    rule("i do not feel real"),
    rule("out of my? body"),
    rule("ptsd|cptsd|post_traumatic|posttraumatic"),
    rule("my trauma|traumas"),
    rule("traumatic memories|memory|flashbacks|experience|experiences"),
    rule("trauma response|responses|flashback|flashbacks|bond"),
    rule_unless("traumatized|traumatised|traumatizing|traumatising", TRAUMATIZED_IDIOMS),
    rule("was|been|got|being|were abused|raped|molested|assaulted|groomed|beaten_up|beat_up|strangled|stalked"),
    rule_unless(
        "was|been|got|being|were attacked",
        &["lol|lmao|haha|hahaha|seagull|seagulls|goose|geese|mosquito|mosquitoes|bees|wasp|wasps|pigeon|pigeons|server|hackers"],
    ),
    rule("raped|molested|abused|assaulted|groped|strangled me"),
    rule_unless("hits|beats|chokes|choked|strangles|slaps|kicks me", &["at|in"]),
    rule("sexual|sexually abuse|abused|assault|assaulted|harassed|harassment"),
    rule("domestic abuse|violence"),
    rule("child|childhood abuse|trauma"),
    rule("can't stop thinking about * happened|accident|attack|assault|abuse|crash|war"),
    rule("hypervigilant|hypervigilance"),
];

const SUBSTANCE_ABUSE: &[Spec] = &[
    rule_unless("overdose|overdosed|overdosing|overdoses|overdosage|oded", OVERDOSE_IDIOMS),
    rule("od|oded on * pills|drugs|heroin|meth|cocaine|fentanyl|meds|xanax|opioids|painkillers|sleeping|alcohol|oxy|benzos"),
    rule("almost|nearly|going_to|want_to|gonna od|oded"),
    rule("took|take|taken|taking|swallowed|swallow|popped|ate|had too_many|too_much|way_too_many * pills|tablets|meds|medicine|medication|painkillers|xanax|sleeping_pills|benzos|oxy|tylenol|ibuprofen|paracetamol|advil|codeine|opioids|valium|ambien|klonopin|percocet|vicodin|adderall|sleeping"),
    rule("took|take|taken|taking|swallowed|swallow|popped * whole|entire bottle|pack|packet|box"),
    rule("took|taken|swallowed|popped * handful|bunch|lot|load * pills|tablets|meds|medicine|medication|painkillers|xanax|sleeping_pills|benzos|oxy|tylenol|ibuprofen|paracetamol|advil|codeine|opioids|valium|ambien|klonopin|percocet|vicodin|adderall"),
    rule("mix|mixing|mixed|taking|took|take * pills|tablets|meds|medicine|medication|painkillers|xanax|sleeping_pills|benzos|oxy|tylenol|ibuprofen|paracetamol|advil|codeine|opioids|valium|ambien|klonopin|percocet|vicodin|adderall with|and * alcohol|booze|drinking|wine|vodka|beer|liquor"),
    rule("took|taken|taking|swallowed|swallowing|popped all * pills|tablets|meds|medicine|medication|painkillers|xanax|sleeping_pills|benzos|oxy|tylenol|ibuprofen|paracetamol|advil|codeine|opioids|valium|ambien|klonopin|percocet|vicodin|adderall"),
    rule_unless(
        "drinking|drink|drank|drunk|been_drinking * too_much|too_heavily|heavily|every_day|every_night|all_day|alone_every_night|to_cope|to_forget|to_numb|before_work|in_the_morning|more_and_more",
        NON_ALCOHOL,
    ),
    rule_unless("drinking|drunk again", NON_ALCOHOL),
    rule_unless(
        "can't|could_not|unable_to stop|quit|control drinking|using|getting_high|getting_drunk|doing_drugs|the_drugs|taking_pills|smoking_crack|shooting_up|gambling",
        NON_ALCOHOL,
    ),
    rule("not control my? drinking|using"),
    rule_unless("~relapsed|relapse|relapsing", RELAPSE_IDIOMS),
    rule("using|used|high|stoned|wasted|shot_up again"),
    rule("been using $"),
    rule("using * drugs|heroin|meth|cocaine|crack|fentanyl|opioids"),
    rule("back on * drugs|heroin|meth|cocaine|crack|pills|booze|bottle|fentanyl|opioids|oxy|benzos|xanax|the_needle"),
    rule("addicted to * drugs|alcohol|heroin|pills|meth|cocaine|crack|opioids|painkillers|booze|xanax|benzos|oxy|fentanyl|weed|gambling|drinking"),
    rule("my addiction"),
    rule("drug|drugs|alcohol|substance|opioid|pill|heroin|meth|gambling|drinking addiction|problem|abuse|habit|dependency"),
    rule("i am an alcoholic|addict"),
    rule("i am a drunk|junkie|addict"),
    rule("blacked_out|blackout|blacking_out|black_out * drunk|drinking|again|every"),
    rule("drink|drinking|drank|get|getting|got drunk * to_cope|to_forget|to_numb|alone|every_night|every_day"),
    rule("drink|drinking to cope|forget|numb"),
    rule("going_through|in withdrawal|withdrawals"),
    rule("withdrawal symptoms|shakes"),
    rule("snorting|snorted|shooting_up|injecting|injected|smoking|smoked|doing|did|do * heroin|meth|cocaine|crack|fentanyl|drugs|lines"),
];

const GENERAL_DISTRESS: &[Spec] = &[
    rule_unless("can't|could_not|unable_to|not|no_longer|barely cope|coping", COPE_IDIOMS),
    rule("can't|could_not take|handle|stand|bear it|this|any_of_this * anymore|any_more|any_longer|much_longer|much_more"),
    rule("can't|could_not take|handle|bear much_more|any_more $|of_this"),
    rule("can't|could_not do|handle|deal_with|stand|bear this|it|life|any_of_this|anything anymore|any_more|any_longer"),
    rule("can't anymore|any_more"),
    rule("am|everything|life|world|marriage|relationship|family|mind|head * falling apart"),
    rule_unless(
        "i_am|i_keep|i_kept|i_just_keep|i_just * breaking down $|again|completely|emotionally|inside|crying|in_tears",
        BREAKDOWN_IDIOMS,
    ),
    rule("breaking|broke|break down crying|in_tears|sobbing|and_cried|and_crying"),
    rule("nervous|mental|emotional breakdown|breakdowns|collapse"),
    rule_unless(
        "having|had|have|verge_of|about_to_have|close_to|another * breakdown",
        BREAKDOWN_IDIOMS,
    ),
    rule("breaking point"),
    rule("losing|lose my mind|sanity|grip"),
    rule("feel_like|think|afraid|scared i am going|slowly? crazy|insane|mad"),
    rule("everything|it_all|this_all|life is|feels? too much"),
    rule("all too much"),
    rule("too much to bear"),
    rule_unless("can't|cannot stop crying", CRY_IDIOMS),
    rule_unless(
        "crying * every_day|every_night|all_the_time|all_day|nonstop|non_stop|constantly",
        CRY_IDIOMS,
    ),
    rule("cry|crying|cried myself to sleep"),
    rule("not know what to do anymore|any_more|with_myself"),
    rule("need|needs someone to talk to"),
    rule("nobody|no_one|noone to talk to"),
    rule("feel|feeling|felt so|completely|totally|utterly|very|really|all? alone|lonely|isolated"),
    rule("i am so|completely|totally|utterly|very|really lonely|alone|isolated"),
    rule("i am lonely|isolated"),
    rule_unless("i really|seriously|desperately? need help", NEED_HELP_TASKS),
    rule_unless("please help me", NEED_HELP_TASKS),
    rule_unless("am not ok|okay|alright|all_right", NOT_OK_IDIOMS),
    rule_unless("not feeling ok|okay|alright|all_right", NOT_OK_IDIOMS),
    rule("hate my life"),
    rule("life * too hard|unbearable|too_much_to_handle"),
    rule("barely holding on|it_together"),
    rule("hanging|holding_on by a thread"),
    rule("done with everything|it_all $"),
    rule("tired|sick of everything|it_all|fighting|trying|being_me|feeling_like_this $"),
    rule("want|wish|need the_pain|the_hurt|the_suffering to stop|end"),
    rule("want|wanted|wanting|ready|about|going|tempted to give up $|on_everything|on_myself"),
    rule("end of my rope|tether"),
    rule("like i am drowning $"),
    rule("i am drowning $"),
];

const CRISIS_TABLE: [(CrisisType, &[Spec]); 7] = [
    (CrisisType::SuicidalIdeation, SUICIDAL_IDEATION),
    (CrisisType::SelfHarm, SELF_HARM),
    (CrisisType::PanicAttack, PANIC_ATTACK),
    (CrisisType::SevereDepression, SEVERE_DEPRESSION),
    (CrisisType::TraumaResponse, TRAUMA_RESPONSE),
    (CrisisType::SubstanceAbuse, SUBSTANCE_ABUSE),
    (CrisisType::GeneralDistress, GENERAL_DISTRESS),
];

const ANXIETY: &[Spec] = &[
    rule("~anxious|anxiously|anxiousness|~anxiety|anxieties"),
    rule("panic|panick|panicky|panicking|panicked|panics|panicing"),
    rule_unless(
        "~overwhelmed|overwhelming|overwhelm",
        &["with|by joy|gratitude|love|happiness|kindness|support|pride"],
    ),
    rule("stressed|stress|stressing|stressful|stresses|stresed"),
    rule("nervous|nervously|nerves"),
    rule_unless("worried|worrying|worry|worries|worrisome", WORRY_IDIOMS),
    rule("scared|terrified|frightened|fearful|petrified"),
    rule("afraid of|that"),
    rule("so|really|very|terribly|always afraid"),
    rule("on edge"),
    rule("freaking|freak|freaked|freaks out"),
    rule("can't calm|settle down"),
    rule("can't relax|stop_worrying|stop_shaking|stop_overthinking"),
    rule("tense|uneasy|jittery|restless|jumpy"),
    rule("racing thoughts"),
    rule("mind|thoughts * racing|spinning|won't_stop"),
    rule("dread|dreading|dreaded"),
    rule("overthinking|overthink"),
    rule("heart * racing|pounding"),
    rule("can't|cannot breathe"),
];

fn crisis_rules() -> &'static RuleSet<CrisisType> {
    static RULES: OnceLock<RuleSet<CrisisType>> = OnceLock::new();
    RULES.get_or_init(|| {
        RuleSet::new(
            CRISIS_TABLE
                .iter()
                .flat_map(|(kind, specs)| specs.iter().map(move |spec| (*kind, spec))),
        )
    })
}

fn anxiety_rules() -> &'static RuleSet<()> {
    static RULES: OnceLock<RuleSet<()>> = OnceLock::new();
    RULES.get_or_init(|| RuleSet::new(ANXIETY.iter().map(|spec| ((), spec))))
}

// ---------------------------------------------------------------------------
// Matching

const MAX_GAP: usize = 2;
const MIN_FUZZY_LEN: usize = 6;

/// Id of a text word that no pattern of the rule set uses.
const UNKNOWN_WORD: u32 = u32::MAX;

/// Pattern words interned as integers, so matching compares ids rather than
/// strings; a text is mapped to ids once per call.
#[derive(Default)]
struct Vocabulary {
    ids: HashMap<String, u32>,
    /// Indexed by id.
    lengths: Vec<usize>,
}

impl Vocabulary {
    fn intern(&mut self, word: String) -> u32 {
        if let Some(&id) = self.ids.get(&word) {
            return id;
        }
        let id = u32::try_from(self.lengths.len()).unwrap_or(UNKNOWN_WORD - 1);
        self.lengths.push(word.len());
        self.ids.insert(word, id);
        id
    }

    fn len_of(&self, id: u32) -> usize {
        usize::try_from(id)
            .ok()
            .and_then(|index| self.lengths.get(index))
            .copied()
            .unwrap_or(0)
    }

    fn id(&self, word: &str) -> u32 {
        self.ids.get(word).copied().unwrap_or(UNKNOWN_WORD)
    }
}

/// One sentence of the text under test.
struct Sentence<'a> {
    ids: &'a [u32],
    words: &'a [String],
    breaks: &'a [bool],
}

#[derive(Debug)]
enum Alternative {
    Word(u32),
    /// Two or more consecutive words.
    Phrase(Vec<u32>),
    /// A keyword of at least [`MIN_FUZZY_LEN`] letters, matched with one typo allowed.
    Fuzzy(String),
    /// `$`: matches no word, only at the end of a sentence or clause.
    ClauseEnd,
}

impl Alternative {
    fn parse(source: &str, vocabulary: &mut Vocabulary) -> Option<Alternative> {
        if source == "$" {
            return Some(Alternative::ClauseEnd);
        }
        let (source, fuzzy) = match source.strip_prefix('~') {
            Some(rest) => (rest, true),
            None => (source, false),
        };
        let mut words = NormalizedText::new(source).into_words();
        match words.as_slice() {
            [] => None,
            [word] if fuzzy && word.chars().count() >= MIN_FUZZY_LEN => {
                words.pop().map(Alternative::Fuzzy)
            }
            [_] => words
                .pop()
                .map(|word| Alternative::Word(vocabulary.intern(word))),
            _ => Some(Alternative::Phrase(
                words
                    .into_iter()
                    .map(|word| vocabulary.intern(word))
                    .collect(),
            )),
        }
    }

    /// How many words this alternative covers when it matches at `pos`.
    fn match_len(&self, sentence: &Sentence<'_>, pos: usize) -> Option<usize> {
        match self {
            Alternative::Word(expected) => (sentence.ids.get(pos) == Some(expected)).then_some(1),
            Alternative::Phrase(expected) => {
                let tail = sentence.ids.get(pos..)?;
                (tail.len() >= expected.len() && tail.iter().zip(expected).all(|(a, b)| a == b))
                    .then_some(expected.len())
            }
            Alternative::Fuzzy(keyword) => sentence
                .words
                .get(pos)
                .filter(|word| within_one_edit(keyword.as_bytes(), word.as_bytes()))
                .map(|_| 1),
            Alternative::ClauseEnd => {
                (pos == sentence.ids.len() || sentence.breaks.get(pos) == Some(&true)).then_some(0)
            }
        }
    }

    /// The id this alternative must start with, when it is an exact one.
    fn exact_first_id(&self) -> Option<u32> {
        match self {
            Alternative::Word(id) => Some(*id),
            Alternative::Phrase(ids) => ids.first().copied(),
            Alternative::Fuzzy(_) | Alternative::ClauseEnd => None,
        }
    }
}

#[derive(Debug)]
enum Element {
    Word {
        alternatives: Vec<Alternative>,
        optional: bool,
    },
    Gap,
}

#[derive(Debug)]
struct Pattern {
    elements: Vec<Element>,
    /// Bitset over word ids that can begin a match; None when a match may
    /// start anywhere (a leading gap, typo-tolerant word or `$`). Lets the
    /// matcher skip most start positions with one bit test.
    starts: Option<Vec<u64>>,
}

impl Pattern {
    fn parse(source: &str, vocabulary: &mut Vocabulary) -> Pattern {
        let mut elements = Vec::new();
        for token in source.split_whitespace() {
            if token == "*" {
                elements.push(Element::Gap);
                continue;
            }
            let (body, optional) = match token.strip_suffix('?') {
                Some(body) => (body, true),
                None => (token, false),
            };
            let alternatives: Vec<Alternative> = body
                .split('|')
                .filter_map(|alternative| Alternative::parse(alternative, vocabulary))
                .collect();
            if !alternatives.is_empty() {
                elements.push(Element::Word {
                    alternatives,
                    optional,
                });
            }
        }
        let starts = start_ids(&elements);
        Pattern { elements, starts }
    }

    fn is_in(&self, sentence: &Sentence<'_>) -> bool {
        sentence
            .ids
            .iter()
            .enumerate()
            .any(|(start, &id)| self.may_start_with(id) && self.matches_from(0, sentence, start))
    }

    fn may_start_with(&self, id: u32) -> bool {
        let Some(starts) = &self.starts else {
            return true;
        };
        usize::try_from(id / 64)
            .ok()
            .and_then(|block| starts.get(block))
            .is_some_and(|bits| bits & (1 << (id % 64)) != 0)
    }

    fn matches_from(&self, element: usize, sentence: &Sentence<'_>, pos: usize) -> bool {
        let Some(current) = self.elements.get(element) else {
            return true;
        };
        let next = element + 1;
        match current {
            Element::Gap => (0..=MAX_GAP)
                .take_while(|skip| pos + skip <= sentence.ids.len())
                .any(|skip| self.matches_from(next, sentence, pos + skip)),
            Element::Word {
                alternatives,
                optional,
            } => {
                alternatives.iter().any(|alternative| {
                    alternative
                        .match_len(sentence, pos)
                        .is_some_and(|len| self.matches_from(next, sentence, pos + len))
                }) || (*optional && self.matches_from(next, sentence, pos))
            }
        }
    }

    /// First-word ids of one required element: a rule can only match a text
    /// containing one of them, which lets most rules be skipped without
    /// running the matcher. Of the candidates, the element whose shortest
    /// word is longest, as a proxy for rarest. None when no required element
    /// consists of exact words only.
    fn anchor(&self, vocabulary: &Vocabulary) -> Option<Vec<u32>> {
        self.elements
            .iter()
            .filter_map(|element| match element {
                Element::Word {
                    alternatives,
                    optional: false,
                } => alternatives
                    .iter()
                    .map(Alternative::exact_first_id)
                    .collect::<Option<Vec<u32>>>(),
                _ => None,
            })
            .max_by_key(|first_ids| first_ids.iter().map(|&id| vocabulary.len_of(id)).min())
    }
}

/// The ids a match of `elements` can begin with, as a bitset; None when any
/// word can begin one.
fn start_ids(elements: &[Element]) -> Option<Vec<u64>> {
    let mut bits: Vec<u64> = Vec::new();
    for element in elements {
        let Element::Word {
            alternatives,
            optional,
        } = element
        else {
            return None;
        };
        for alternative in alternatives {
            let id = usize::try_from(alternative.exact_first_id()?).ok()?;
            let block = id / 64;
            if bits.len() <= block {
                bits.resize(block + 1, 0);
            }
            if let Some(word) = bits.get_mut(block) {
                *word |= 1 << (id % 64);
            }
        }
        if !optional {
            return Some(bits);
        }
    }
    // Every element optional: the pattern can match nothing.
    None
}

/// Optimal-string-alignment distance of at most one, on bytes: patterns are
/// ASCII, so a non-ASCII letter in the text never counts as a single typo.
fn within_one_edit(a: &[u8], b: &[u8]) -> bool {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    if long.len() - short.len() > 1 {
        return false;
    }
    let common = short.iter().zip(long).take_while(|(x, y)| x == y).count();
    let (short, long) = (&short[common..], &long[common..]);
    match (short, long) {
        ([], _) => true,
        ([s0, s_rest @ ..], [l0, l_rest @ ..]) if short.len() == long.len() => {
            s_rest == l_rest
                || matches!((s_rest, l_rest), ([s1, s_tail @ ..], [l1, l_tail @ ..])
                    if s0 == l1 && s1 == l0 && s_tail == l_tail)
        }
        (_, [_, l_rest @ ..]) => short == l_rest,
        _ => false,
    }
}

struct Rule<K> {
    kind: K,
    pattern: Pattern,
    unless: Vec<Pattern>,
}

struct RuleSet<K> {
    rules: Vec<Rule<K>>,
    vocabulary: Vocabulary,
    /// Indexed by word id: the rules anchored on that word.
    rules_by_anchor: Vec<Vec<usize>>,
    unanchored: Vec<usize>,
}

impl<K: Copy + PartialEq> RuleSet<K> {
    fn new<'a>(specs: impl IntoIterator<Item = (K, &'a Spec)>) -> Self {
        let mut vocabulary = Vocabulary::default();
        let rules: Vec<Rule<K>> = specs
            .into_iter()
            .map(|(kind, spec)| Rule {
                kind,
                pattern: Pattern::parse(spec.pattern, &mut vocabulary),
                unless: spec
                    .unless
                    .iter()
                    .map(|source| Pattern::parse(source, &mut vocabulary))
                    .collect(),
            })
            .collect();
        let mut rules_by_anchor = vec![Vec::new(); vocabulary.lengths.len()];
        let mut unanchored = Vec::new();
        for (index, rule) in rules.iter().enumerate() {
            match rule.pattern.anchor(&vocabulary) {
                Some(ids) => {
                    for id in ids {
                        if let Some(anchored) = usize::try_from(id)
                            .ok()
                            .and_then(|id| rules_by_anchor.get_mut(id))
                        {
                            if anchored.last() != Some(&index) {
                                anchored.push(index);
                            }
                        }
                    }
                }
                None => unanchored.push(index),
            }
        }
        RuleSet {
            rules,
            vocabulary,
            rules_by_anchor,
            unanchored,
        }
    }

    /// The kinds of the rules that match, each once, in rule order.
    fn find(&self, text: &NormalizedText) -> Vec<K> {
        let ids: Vec<u32> = text
            .words()
            .iter()
            .map(|word| self.vocabulary.id(word))
            .collect();
        let mut candidate = vec![false; self.rules.len()];
        for &index in &self.unanchored {
            candidate[index] = true;
        }
        for &id in &ids {
            let anchored = usize::try_from(id)
                .ok()
                .and_then(|id| self.rules_by_anchor.get(id));
            for &index in anchored.into_iter().flatten() {
                candidate[index] = true;
            }
        }
        let sentences: Vec<Sentence<'_>> = text
            .sentence_ranges()
            .map(|range| Sentence {
                ids: ids.get(range.clone()).unwrap_or(&[]),
                words: text.words().get(range.clone()).unwrap_or(&[]),
                breaks: text.breaks().get(range).unwrap_or(&[]),
            })
            .collect();
        let mut found = Vec::new();
        for (rule, _) in self
            .rules
            .iter()
            .zip(&candidate)
            .filter(|(_, &is_candidate)| is_candidate)
        {
            if found.contains(&rule.kind) {
                continue;
            }
            let fires = sentences.iter().any(|sentence| {
                rule.pattern.is_in(sentence)
                    && !rule.unless.iter().any(|unless| unless.is_in(sentence))
            });
            if fires {
                found.push(rule.kind);
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CrisisType::*;

    /// Each phrase must be detected with (at least) the given type.
    const CRISIS_PHRASES: &[(&str, CrisisType)] = &[
        // suicidal ideation
        ("I want to kill myself", SuicidalIdeation),
        ("i wanna die", SuicidalIdeation),
        ("I’m thinking about suicide", SuicidalIdeation),
        ("I feel suicidel lately", SuicidalIdeation),
        ("sucide is all I think about", SuicidalIdeation),
        ("I keep having suicdal thoughts", SuicidalIdeation),
        ("I want to end my life", SuicidalIdeation),
        ("Sometimes I just want to end it all.", SuicidalIdeation),
        ("I'm going to take my own life", SuicidalIdeation),
        ("There is no reason to live anymore", SuicidalIdeation),
        ("I have nothing left to live for", SuicidalIdeation),
        ("Everyone would be better off without me", SuicidalIdeation),
        ("honestly I'd be better off dead", SuicidalIdeation),
        ("I can't go on.", SuicidalIdeation),
        ("I cant go on like this anymore", SuicidalIdeation),
        ("I can't go on, everything hurts", SuicidalIdeation),
        ("I don't want to live anymore", SuicidalIdeation),
        ("I don’t want to be alive", SuicidalIdeation),
        ("I don't want to be here anymore", SuicidalIdeation),
        ("I wish I was dead", SuicidalIdeation),
        ("I wish I had never been born", SuicidalIdeation),
        ("thinking of how to unalive myself", SuicidalIdeation),
        ("I want to kiiiill myselfff", SuicidalIdeation),
        ("I WANT TO DIE", SuicidalIdeation),
        ("im gonna kil my self", SuicidalIdeation),
        (
            "Had a rough day at work. I just want to die. Nobody gets it.",
            SuicidalIdeation,
        ),
        (
            "nobody would even notice if i disappeared",
            SuicidalIdeation,
        ),
        ("I'm going to end it tonight", SuicidalIdeation),
        ("I just want to end it. I'm so tired", SuicidalIdeation),
        ("I'm planning to overdose on my meds", SuicidalIdeation),
        ("I feel like dying", SuicidalIdeation),
        ("I hope I never wake up", SuicidalIdeation),
        ("life isn't worth living", SuicidalIdeation),
        ("I cannot go on living like this", SuicidalIdeation),
        ("I. Want. To. Die.", SuicidalIdeation),
        ("I want to... die", SuicidalIdeation),
        ("there’s no point in living", SuicidalIdeation),
        ("my family would be happier if I was gone", SuicidalIdeation),
        (
            "I want to die of embarrassment. No, really, I want to die",
            SuicidalIdeation,
        ),
        // self harm
        ("I want to hurt myself", SelfHarm),
        ("I've been cutting myself again", SelfHarm),
        ("I cut myself last night", SelfHarm),
        ("thinking about self-harm", SelfHarm),
        ("my self harm is getting worse", SelfHarm),
        ("I burn myself when I'm upset", SelfHarm),
        ("I keep hurting myself", SelfHarm),
        (
            "I want to hurt myself even though I fell at the gym today",
            SelfHarm,
        ),
        ("selfharm", SelfHarm),
        ("I have the urge to cut", SelfHarm),
        ("I feel so low, I hurt myself", SelfHarm),
        // panic attack
        ("I'm having a panic attack", PanicAttack),
        ("i cant breathe and my heart is racing", PanicAttack),
        ("My heart is pounding out of my chest", PanicAttack),
        ("I'm hyperventilating", PanicAttack),
        ("I feel like I'm dying, everything is spinning", PanicAttack),
        ("PANIC ATTACK right now", PanicAttack),
        ("I can’t breathe", PanicAttack),
        ("my chest is so tight and I'm shaking", PanicAttack),
        // severe depression
        ("I feel so hopeless", SevereDepression),
        ("I'm worthless", SevereDepression),
        ("nothing matters anymore", SevereDepression),
        ("There's no point in anything", SevereDepression),
        ("I feel empty inside", SevereDepression),
        ("I can't get out of bed", SevereDepression),
        ("i feel sooo hopelesss", SevereDepression),
        ("I'm such a burden to everyone", SevereDepression),
        (
            "I haven't gotten out of bed in three days",
            SevereDepression,
        ),
        // trauma response
        ("I keep having flashbacks", TraumaResponse),
        ("I have nightmares about the accident", TraumaResponse),
        ("I keep reliving that night", TraumaResponse),
        ("That movie triggered me so badly", TraumaResponse),
        ("I think I'm dissociating", TraumaResponse),
        ("my PTSD is acting up", TraumaResponse),
        ("I was abused as a child", TraumaResponse),
        // substance abuse
        ("I overdosed last year and I'm scared", SubstanceAbuse),
        ("I took too many pills", SubstanceAbuse),
        ("I’ve been drinking too much", SubstanceAbuse),
        ("I can't stop drinking", SubstanceAbuse),
        ("I relapsed last night", SubstanceAbuse),
        ("I'm using again", SubstanceAbuse),
        ("I swallowed a handful of pills", SubstanceAbuse),
        ("I relapsed and started cutting again", SubstanceAbuse),
        ("I relapsed and started cutting again", SelfHarm),
        ("I'm planning to overdose on my meds", SubstanceAbuse),
        // general distress
        ("I can't cope", GeneralDistress),
        ("I can't take it anymore", GeneralDistress),
        ("I'm falling apart", GeneralDistress),
        ("I keep breaking down in tears", GeneralDistress),
        ("I'm at my breaking point", GeneralDistress),
        ("I'm losing my mind", GeneralDistress),
        ("I just can't do this anymore", GeneralDistress),
        ("everything's falling apart", GeneralDistress),
        ("I'm barely holding on", GeneralDistress),
        // paraphrases and warning signs
        ("i'm thinking of ending things", SuicidalIdeation),
        ("I've been collecting pills", SuicidalIdeation),
        ("soon I won't be a problem anymore", SuicidalIdeation),
        ("I just want to sleep and not wake up", SuicidalIdeation),
        ("what's the point of living", SuicidalIdeation),
        ("i just want it all to stop", SuicidalIdeation),
        ("i want 2 die", SuicidalIdeation),
        ("I wanna kms", SuicidalIdeation),
        ("I've been depressed for months", SevereDepression),
        ("I'm so depressed", SevereDepression),
        ("I took a bunch of xanax", SubstanceAbuse),
        (
            "i have been clean for 2 years but i used again yesterday",
            SubstanceAbuse,
        ),
        ("I can't sleep because of the nightmares", TraumaResponse),
    ];

    /// Idioms and ordinary chat: none may be detected as a crisis.
    const BENIGN_PHRASES: &[&str] = &[
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
    ];

    #[test]
    fn crisis_phrases_are_detected() {
        assert!(CRISIS_PHRASES.len() >= 45);
        for (phrase, expected) in CRISIS_PHRASES {
            let assessment = detect_crisis(phrase);
            assert!(
                assessment.types.contains(expected),
                "{phrase:?} should include {expected}, got {:?}",
                assessment.types
            );
        }
    }

    #[test]
    fn benign_phrases_are_not_crises() {
        assert!(BENIGN_PHRASES.len() >= 45);
        for phrase in BENIGN_PHRASES {
            let assessment = detect_crisis(phrase);
            assert!(
                !assessment.is_crisis(),
                "{phrase:?} is not a crisis, got {:?}",
                assessment.types
            );
        }
    }

    #[test]
    fn assessment_types_are_sorted_and_unique() {
        let assessment = detect_crisis(
            "I want to kill myself. I'm suicidal. I cut myself and I can't breathe. I took too many pills.",
        );
        assert_eq!(
            assessment.types,
            [SuicidalIdeation, SelfHarm, PanicAttack, SubstanceAbuse]
        );
        assert_eq!(detect_crisis(""), CrisisAssessment::default());
        assert!(!detect_crisis("").is_crisis());
    }

    #[test]
    fn detect_crisis_in_matches_detect_crisis() {
        for (phrase, _) in CRISIS_PHRASES {
            assert_eq!(
                detect_crisis_in(&NormalizedText::new(phrase)),
                detect_crisis(phrase),
                "{phrase:?}"
            );
        }
    }

    #[test]
    fn phrase_split_across_sentences_does_not_match() {
        let cases = [
            "I want to. Die Hard is my favourite film.",
            "I'd love to kill. Myself and my friends are playing werewolf.",
            "There's no reason to. Live music tonight!",
            "I can't. Go on without me, I'll catch up",
        ];
        for phrase in cases {
            let assessment = detect_crisis(phrase);
            assert!(
                !assessment.is_crisis(),
                "{phrase:?} crosses sentences, got {:?}",
                assessment.types
            );
        }
        let text = NormalizedText::new(cases[0]);
        assert!(!text.has_phrase("want to die"));
        assert!(NormalizedText::new("I want to die.").has_phrase("want to die"));
    }

    #[test]
    fn explicit_intent_overrides_accident_context() {
        assert!(!detect_crisis("I hurt myself playing tennis").is_crisis());
        assert!(detect_crisis("I want to hurt myself after playing tennis")
            .types
            .contains(&SelfHarm));
    }

    #[test]
    fn anxiety_cues_fire() {
        let cases = [
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
        ];
        for phrase in cases {
            assert!(
                detect_anxiety_in(&NormalizedText::new(phrase)),
                "{phrase:?} is an anxiety cue"
            );
        }
    }

    #[test]
    fn anxiety_cues_do_not_fire() {
        let cases = [
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
        for phrase in cases {
            assert!(
                !detect_anxiety_in(&NormalizedText::new(phrase)),
                "{phrase:?} is not an anxiety cue"
            );
        }
    }

    #[test]
    fn panic_alone_is_not_a_crisis() {
        for phrase in [
            "I panic before exams",
            "don't panic",
            "panicking about my essay",
        ] {
            assert!(!detect_crisis(phrase).is_crisis(), "{phrase:?}");
            assert!(
                detect_anxiety_in(&NormalizedText::new(phrase)),
                "{phrase:?}"
            );
        }
    }

    #[test]
    fn odd_unicode_input_does_not_panic() {
        let mut long = String::new();
        while long.chars().count() < 4000 {
            long.push_str("I'm 😭😭 fine… re\u{0301}ally ‘kill’ — ");
        }
        let inputs = [
            long,
            "💀".repeat(4000),
            "e\u{0301}\u{0302}\u{0303}".repeat(1000),
            "Z̸̢̛͇͎̈́a̴̛̰̓l̵̡̈g̶̱̈́o̷̞͝ ".repeat(300),
            "suicide ".repeat(500),
            "ﷺ ﷽ 𒐫 ꧅ ᾏ ǅ ﬃ İ".repeat(200),
            "\u{202E}evil\u{202C}\u{0000}\u{FFFD}".repeat(400),
            "'".repeat(4000),
            ".".repeat(4000),
            "want to die ".repeat(350),
        ];
        for input in &inputs {
            let _ = detect_crisis(input);
            let _ = detect_anxiety_in(&NormalizedText::new(input));
        }
        assert!(detect_crisis(&"suicide ".repeat(500)).is_crisis());
    }

    #[test]
    fn typo_tolerance_is_one_edit() {
        assert!(within_one_edit(b"suicide", b"suicide"));
        assert!(within_one_edit(b"suicide", b"sucide"));
        assert!(within_one_edit(b"suicide", b"suiccide"));
        assert!(within_one_edit(b"suicide", b"suicdie"));
        assert!(within_one_edit(b"suicide", b"suicida"));
        assert!(!within_one_edit(b"suicide", b"sucdie"));
        assert!(!within_one_edit(b"suicide", b"suicidal"));
        assert!(!within_one_edit(b"myself", b"himself"));
        assert!(!within_one_edit(b"a", b"abc"));
    }

    #[test]
    fn pattern_tables_are_well_formed() {
        let all_specs = CRISIS_TABLE
            .iter()
            .flat_map(|(_, specs)| specs.iter())
            .chain(ANXIETY);
        for spec in all_specs {
            let sources = std::iter::once(spec.pattern).chain(spec.unless.iter().copied());
            for source in sources {
                let pattern = Pattern::parse(source, &mut Vocabulary::default());
                assert_eq!(
                    pattern.elements.len(),
                    source.split_whitespace().count(),
                    "{source:?}: every element parses"
                );
                assert!(
                    matches!(pattern.elements.first(), Some(Element::Word { .. })),
                    "{source:?} starts with a word"
                );
                assert!(
                    !matches!(pattern.elements.last(), Some(Element::Gap)),
                    "{source:?} ends with a gap"
                );
                for token in source.split_whitespace().filter(|t| *t != "*") {
                    for alternative in token.trim_end_matches('?').split('|') {
                        assert!(
                            Alternative::parse(alternative, &mut Vocabulary::default()).is_some(),
                            "{source:?}: alternative {alternative:?} is empty"
                        );
                        if alternative.starts_with('~') {
                            assert!(
                                matches!(
                                    Alternative::parse(alternative, &mut Vocabulary::default()),
                                    Some(Alternative::Fuzzy(_))
                                ),
                                "{source:?}: {alternative:?} is too short for typo tolerance"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn crisis_type_names_round_trip() {
        for kind in CrisisType::ALL {
            assert_eq!(kind.as_str().parse::<CrisisType>(), Ok(kind));
            assert_eq!(kind.to_string(), kind.as_str());
            let json = serde_json::to_string(&kind).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
        }
        assert_eq!(" Self_Harm ".parse::<CrisisType>(), Ok(SelfHarm));
        assert_eq!(
            "sadness".parse::<CrisisType>(),
            Err(UnknownCrisisType("sadness".to_owned()))
        );
        let mut sorted = CrisisType::ALL;
        sorted.sort();
        assert_eq!(sorted, CrisisType::ALL);
    }
}
