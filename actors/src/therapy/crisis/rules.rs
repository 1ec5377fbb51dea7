//! The crisis and anxiety rules as data, written in the pattern language of
//! [`super::matcher`], and the functions that compile them once.
//!
//! Each crisis type has its own table; an idiom list is shared by the rules
//! whose phrase it excuses. When a message is detected wrongly, the fix is
//! usually here: a new rule for a missed phrasing, or a new "unless" pattern
//! for an innocent reading. An "unless" pattern only ever excuses an
//! ambiguous phrase; explicit intents ("want to hurt myself") are separate
//! rules without exceptions, so no context can silence them.

use std::sync::OnceLock;

use super::matcher::RuleSet;
use super::rules_categories as categories;
use super::rules_wider as wider;
use super::spec::{rule, rule_unless, Spec};
use super::types::{CrisisCategory, CrisisType};

/// "kms" is also kilometres.
const KMS_DISTANCE: &[&str] = &[
    "ran|run|running|runs|walk|walked|walking|drive|drove|driving|cycle|cycled|cycling|biked|biking|hiked|hiking|swam|rode|away|far|per|hour|an_hour|distance|km|miles|marathon|trip|road",
    // Hyperbole about an annoyance: "gonna kms if this group chat ...".
    "if_this|if_one_more|if_i_have_to|if_he|if_she|if_they|if_my|lmao|lmfao|meme|memes|group_chat",
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
    "smoking|vaping|cigarettes|cigs|nicotine|patches|sugar|candy|caffeine|soda",
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
    ).as_(CrisisCategory::Method),
    rule_unless(
        "want|wanted|wanting|wants|wish|wished|wishing|deserve|deserves|deserved|ready|plan|planning|trying|tried|need|longing to|2 die",
        WANT_DIE_IDIOMS,
    ),
    rule_unless("kms", KMS_DISTANCE),
    rule("want|wanted|wish|wishing|need it_all|everything|all_of_it|all_of_this|my_life to end|stop $|forever").as_(CrisisCategory::WishDead),
    rule("want|wanted|wish|wishing to|i_could|i_would|i_can sleep|go_to_sleep forever|and_never_wake_up").as_(CrisisCategory::WishDead),
    rule("what is the point * living|being_alive|going_on|staying_alive").as_(CrisisCategory::Hopelessness),
    rule_unless("i should just? die", WANT_DIE_IDIOMS),
    rule_unless("might_as_well|just_let_me|let_me|let_myself die", WANT_DIE_IDIOMS),
    rule_unless("rather be_dead|die", &["than"]),
    rule("wish i was|were|could_be|had_been dead|gone|not_alive|never_born").as_(CrisisCategory::WishDead),
    rule("wish i * never * born").as_(CrisisCategory::WishDead),
    rule("wish i could|would die|not_wake_up|sleep_forever|disappear_forever").as_(CrisisCategory::WishDead),
    rule("want|wanted|wish|ready to be dead").as_(CrisisCategory::WishDead),
    rule("feel|feels|felt|feeling like dying|ending_it|ending_it_all|ending_my_life"),
    rule("end|ending|ended my own? life|existence"),
    rule("take|taking|took my own life"),
    rule_unless(
        "take|taking my life",
        &["back|savings|into|seriously|for_granted|in_my_own_hands|in_hand"],
    ),
    rule("end|ending it all"),
    rule("want|wanted|wanting|going|ready|plan|planning|decided|about|try|trying|tempted|need to end it $|tonight|today|now|soon|forever").as_(CrisisCategory::Intent),
    rule("thinking|thought|think about|of ending it|things|everything $|all"),
    rule("stockpiling|stockpiled|hoarding|hoarded|saving_up|collecting|collected * pills|meds|medication|tablets|painkillers").as_(CrisisCategory::Preparatory),
    rule_unless(
        "noose|nooses",
        &["halloween|decoration|decorations|knot|knots|hangman|western|movie|film|history|museum"],
    ).as_(CrisisCategory::Method),
    rule_unless(
        "give|giving|gave away all? my stuff|things|belongings|possessions",
        &["moving|move|declutter|decluttering|sale|donate|donating|charity|garage|yard_sale|clearing_out|spring_cleaning|minimalist|minimalism"],
    ).as_(CrisisCategory::Preparatory),
    rule_unless(
        "not_going_to|will_not|won't be around|here much|for_much longer",
        &["shift|work|office|party|store|shop|town|city|job|school|meeting|class|today|tonight|minutes|minute|hour|hours|week|visit|trip|country|house"],
    ).as_(CrisisCategory::Farewell),
    rule("will_not|won't|not_going_to be a problem|burden|bother anymore|any_more|for_much_longer|for_long|soon").as_(CrisisCategory::Burden),
    rule("i should just? disappear|not_exist|not_be_here|not_be_alive $").as_(CrisisCategory::WishDead),
    rule_unless(
        "no reason|point|purpose to|for|in|of? live|living|exist|existing|be_alive|being_alive|stay_alive|keep_living|go_on|going_on|keep_going",
        LIVE_PLACE,
    ).as_(CrisisCategory::Hopelessness),
    rule_unless("not_have|lost|without a|any|my? reason to_live|for_living", LIVE_PLACE).as_(CrisisCategory::Hopelessness),
    rule("nothing|nobody|noone|no_one * to live for").as_(CrisisCategory::Hopelessness),
    rule("not worth living|being_alive").as_(CrisisCategory::Hopelessness),
    rule("life * not worth it|living|anything|the_pain|the_effort").as_(CrisisCategory::Hopelessness),
    rule("better|happier|easier off? without me").as_(CrisisCategory::Burden),
    rule("better off dead|gone").as_(CrisisCategory::WishDead),
    rule("care|notice|miss|matter|matters|better|happier|easier|relieved * if i died|disappeared|vanished|killed_myself|never_existed|was_gone|were_gone|was_dead|were_dead|was_not_here|were_not_here|did_not_exist|was_not_around|were_not_around|was_never_born|were_never_born").as_(CrisisCategory::Burden),
    rule("can't|could_not|can_no_longer go on $").as_(CrisisCategory::Hopelessness),
    rule("can't|could_not|can_no_longer go on anymore|any_more|any_longer|like_this|like_that|living|with_life|with_my_life|much_longer|another_day|this_way|in_this_world"),
    rule("can't|could_not live like_this|like_that|anymore|any_more|with_myself|this_way"),
    rule("can't|could_not keep|carry_on|go_on living"),
    rule("not|longer want|wish|need to be_alive|exist|existing|stay_alive|keep_living|wake_up_anymore|wake_up_again|wake_up_ever_again|be_here_anymore|be_here_any_more|be_here_any_longer|live_anymore|live_any_more|live_any_longer|live_like_this|live_in_this_world|live_this_life|live_my_life|live_with_this_pain|be_in_this_world|go_on_living|keep_going_anymore").as_(CrisisCategory::WishDead),
    rule("not|longer want to live|go_on|keep_going|be_here|exist $").as_(CrisisCategory::WishDead),
    rule("not feel like living|being_alive").as_(CrisisCategory::WishDead),
    rule_unless("hate|tired_of|sick_of|done_with being_alive|living|existing|life $", LIVE_PLACE),
    rule("hope|hoping|wish|wishing|pray|praying * not|never wake up $|again|ever|tomorrow|anymore").as_(CrisisCategory::WishDead),
    rule("sleep|asleep and not|never wake up").as_(CrisisCategory::WishDead),
    rule("slit|slitting|slash|slashing my|his? wrists|wrist|throat|veins").as_(CrisisCategory::Method),
    rule_unless(
        "jump|jumping|jumped|throw_myself|throwing_myself off|from * bridge|roof|building|cliff|balcony|ledge|tower|overpass|window",
        JUMP_IDIOMS,
    ).as_(CrisisCategory::Method),
    rule("throw|throwing|threw ~myself off|under|in_front").as_(CrisisCategory::Method),
    rule("step|stepping|jump|jumping|walk|walking|lie|lying in front of * train|trains|bus|car|truck|traffic").as_(CrisisCategory::Method),
    rule("want|wanting|going|plan|planning|try|trying|tried|ready|about|tempted|thinking|thought to|about|of overdose|overdosing|od").as_(CrisisCategory::Method),
    rule_unless(
        "going|want|plan|planning|ready|about|tempted|thinking_about to? take|taking|swallow|swallowing all * pills|meds|medication|tablets|painkillers",
        TAKE_ALL_PILLS_IDIOMS,
    ).as_(CrisisCategory::Method),
    rule("want|wanted|wish|wishing|could * disappear|vanish forever|permanently|for_good").as_(CrisisCategory::WishDead),
    rule("goodbye cruel world").as_(CrisisCategory::Farewell),
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

/// Every crisis table: the type its rules report, and the clinical
/// category of those not marked with another.
const CRISIS_TABLE: [(CrisisType, CrisisCategory, &[Spec]); 32] = {
    use CrisisCategory as C;
    use CrisisType as T;
    [
        (T::SuicidalIdeation, C::ActiveIdeation, SUICIDAL_IDEATION),
        (T::SuicidalIdeation, C::WishDead, categories::WISH_DEAD),
        (
            T::SuicidalIdeation,
            C::ActiveIdeation,
            categories::ACTIVE_IDEATION,
        ),
        (T::SuicidalIdeation, C::Method, categories::METHOD),
        (T::SuicidalIdeation, C::Intent, categories::INTENT),
        (T::SuicidalIdeation, C::Plan, categories::PLAN),
        (T::SuicidalIdeation, C::Preparatory, categories::PREPARATORY),
        (T::SuicidalIdeation, C::Farewell, categories::FAREWELL),
        (T::SuicidalIdeation, C::Burden, categories::BURDEN),
        (T::SuicidalIdeation, C::Lethality, categories::LETHALITY),
        (
            T::SuicidalIdeation,
            C::ActiveIdeation,
            categories::SPANISH_SUICIDAL,
        ),
        (T::SelfHarm, C::SelfHarm, categories::SELF_HARM_WORDS),
        (T::SelfHarm, C::SelfHarm, categories::SPANISH_SELF_HARM),
        (
            T::SuicidalIdeation,
            C::ActiveIdeation,
            categories::MORE_SUICIDAL,
        ),
        (T::SelfHarm, C::SelfHarm, categories::MORE_SELF_HARM),
        (
            T::SevereDepression,
            C::Hopelessness,
            categories::HOPELESSNESS,
        ),
        (T::SelfHarm, C::SelfHarm, SELF_HARM),
        (T::PanicAttack, C::Panic, PANIC_ATTACK),
        (T::SevereDepression, C::Hopelessness, SEVERE_DEPRESSION),
        (T::TraumaResponse, C::Trauma, TRAUMA_RESPONSE),
        (T::SubstanceAbuse, C::SubstanceUse, SUBSTANCE_ABUSE),
        (T::GeneralDistress, C::Distress, GENERAL_DISTRESS),
        (T::SuicidalIdeation, C::Method, wider::WIDER_METHOD),
        (T::SuicidalIdeation, C::Intent, wider::WIDER_INTENT),
        (T::SuicidalIdeation, C::Plan, wider::WIDER_PLAN),
        (
            T::SuicidalIdeation,
            C::Preparatory,
            wider::WIDER_PREPARATORY,
        ),
        (T::SelfHarm, C::SelfHarm, wider::WIDER_SELF_HARM),
        (T::SuicidalIdeation, C::Farewell, wider::WIDER_FAREWELL),
        (T::SuicidalIdeation, C::Burden, wider::WIDER_BURDEN),
        (
            T::SuicidalIdeation,
            C::Hopelessness,
            wider::WIDER_HOPELESSNESS,
        ),
        (T::SuicidalIdeation, C::Lethality, wider::WIDER_LETHALITY),
        (
            T::SuicidalIdeation,
            C::ActiveIdeation,
            wider::WIDER_IDEATION,
        ),
    ]
};

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

/// All crisis rules, compiled on first use; each reports its crisis type
/// and clinical category.
pub(super) fn crisis_rules() -> &'static RuleSet<(CrisisType, CrisisCategory)> {
    static RULES: OnceLock<RuleSet<(CrisisType, CrisisCategory)>> = OnceLock::new();
    RULES.get_or_init(|| {
        RuleSet::new(CRISIS_TABLE.iter().flat_map(|(kind, category, specs)| {
            specs.iter().map(move |spec| {
                let reported = (*kind, spec.category.unwrap_or(*category));
                (reported, spec.pattern, spec.unless)
            })
        }))
        .with_context(categories::BENIGN_FRAMES)
    })
}

/// The signs that a crisis is happening now, compiled on first use; the
/// benign frames apply ("three years ago tonight ...").
pub(super) fn imminence_rules() -> &'static RuleSet<()> {
    static RULES: OnceLock<RuleSet<()>> = OnceLock::new();
    RULES.get_or_init(|| {
        RuleSet::new(
            categories::IMMINENCE
                .iter()
                .map(|pattern| ((), *pattern, &[][..])),
        )
        .with_context(categories::BENIGN_FRAMES)
    })
}

/// The anxiety cue rules, compiled on first use.
pub(super) fn anxiety_rules() -> &'static RuleSet<()> {
    static RULES: OnceLock<RuleSet<()>> = OnceLock::new();
    RULES.get_or_init(|| RuleSet::new(ANXIETY.iter().map(|spec| ((), spec.pattern, spec.unless))))
}

#[cfg(test)]
mod tests {
    use super::super::matcher::pattern_problems;
    use super::*;

    #[test]
    fn pattern_tables_are_well_formed() {
        let problems: Vec<String> = CRISIS_TABLE
            .iter()
            .flat_map(|(_, _, specs)| specs.iter())
            .chain(ANXIETY)
            .flat_map(|spec| std::iter::once(spec.pattern).chain(spec.unless.iter().copied()))
            .chain(categories::BENIGN_FRAMES.iter().copied())
            .chain(categories::IMMINENCE.iter().copied())
            .flat_map(|source| {
                pattern_problems(source)
                    .into_iter()
                    .map(move |problem| format!("{source:?}: {problem}"))
            })
            .collect();
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }
}
