//! Rules written as two ideas in one clause rather than as one phrase: a
//! means and a thought of using it, an injury and one's own body, a count
//! of pills and a question of enough, a time and an ending. People put
//! words between such ideas freely ("thinking about the tall bridge by my
//! school again"), so these use the wide gap `**` (up to eight words,
//! never across a comma or a dash) where a phrase rule would need every
//! wording spelt out.
//!
//! Written against the groups of messages the phrase rules missed in
//! `corpus/second_set.tsv` (means and plans, farewells, lethality
//! questions, self-harm in other words, Spanish), in forms that do not
//! name any one message; `corpus/held_out.tsv`, written later without
//! sight of the rules and never used to write one, measures them.

use super::spec::{rule, rule_unless, Spec};

/// Means people name, as one alternative list.
macro_rules! means {
    () => {
        "pills|pill|meds|medication|medications|tablets|sleeping_pills|painkillers|prescription|bottle|rope|noose|gun|pistol|rifle|firearm|bridge|bridges|overpass|roof|rooftop|balcony|ledge|cliff|cliffs|tracks|train|knife|blade|blades|razor|razors"
    };
}

/// Thinking of, looking at, picturing.
macro_rules! dwelling {
    () => {
        "thinking|think|thought|thoughts|picturing|picture|imagining|imagine|staring|stare|looking|look|obsessing|fixating|fantasizing"
    };
}

/// Ordinary uses of a rope, a knife, a roof or a bridge.
const ORDINARY_MEANS: &[&str] = &[
    "climbing|climb|climbed|gym|bouldering|escalar|escalada|cerro|boat|sailing|camping|tent|swing|tug|jump_rope|skipping|dog_leash|leash|clothesline|hammock|repair|repairs|fix|fixing|fixed|roofer|contractor|leak|gutters|shingles|solar|commute|traffic|toll|construction|cooking|chef|kitchen|class|sharpen|sharpening|whittling|carving_class|hunting|range|deer|shooting_range|nerf|water_gun|squirt|toy|lego|model|game|minecraft|fortnite",
];

/// Injuries that are accidents or ordinary life.
const ORDINARY_INJURY: &[&str] = &[
    "accident|accidentally|accidental|by_mistake|clumsy|cooking|chopping|slicing|oven|stove|pan|iron|curling_iron|kettle|shaving|razor_slipped|paper|glass|door|cabinet|shelf|table|corner|ceiling|fell|tripped|slipped|sunburn|sunburnt|sun|mosquito|bug|bites|itchy|rash|eczema|dog|cat|kitten|puppy|game|football|soccer|basketball|practice|gym|workout|surgery|doctor|tattoo|piercing|haircut|nails|lip|tongue|cheek",
];

/// Counting that is not pills: time, money, exercise, food.
const ORDINARY_COUNTS: &[&str] = &[
    "minutes|mins|seconds|hours|hrs|days|weeks|months|years|photos|pictures|selfies|steps|laps|pushups|push_ups|reps|squats|tries|attempts|dollars|bucks|euros|pesos|percent|questions|classes|credits|pages|notes|screenshots|shots_of_espresso|cookies|slices|bites|cups|coffees|beers|drinks|episodes|vitamins",
];

pub(super) const WIDER_METHOD: &[Spec] = &[
    rule_unless(
        concat!(dwelling!(), " about|at|of ** ", means!(), " ** again|tonight|lately|every_time|how_easy|how_high|how_tall|how_deep|how_quick|how_many|enough|nobody|no_one|for_good|end|ending"),
        ORDINARY_MEANS,
    ),
    rule_unless(
        concat!(dwelling!(), " about|of ** the|my ", means!(), " again $"),
        ORDINARY_MEANS,
    ),
    rule(concat!(means!(), " ** would_be|is|are|will_be enough to end|die|not_wake|never_wake|kill_me|do_it")),
    rule("enough to end it|end_my_life|not_wake_up|never_wake_up|do_it $"),
    rule("how easy|simple|quick|painless it would be $|to"),
    rule("crash|crashing|crashed|drive|driving|swerve|swerving|steer|steering ** on purpose"),
    rule("drive|driving|crash|crashing|swerve|swerving|steer|steering my|it? car? into a|the wall|tree|truck|river|oncoming|pole|barrier|guardrail|median"),
    rule("picturing|imagining|see|seeing myself stepping|jumping|falling|hanging off|from|myself"),
    rule("myself stepping|jumping|falling off|from"),
    rule_unless("have|got|bought|keep|kept a|the rope|noose in|under|at|ready", ORDINARY_MEANS),
    rule("where * keeps the|his|her key|gun|pistol|rifle"),
    rule("if i did|do it ** with|using my|his|her|the"),
    rule("tengo|tienes la|una|las cuerda|soga|pistola|arma|pastillas aqui|en_mi_cuarto|lista|listas|guardadas"),
    rule("pienso|pensando|pienso_en|pensando_en|ganas_de en? tirarme|matarme|colgarme|tomarmelas|ahorcarme|cortarme_las_venas"),
    rule("tomarmelas|tomarme_todas todas|ya|hoy|esta_noche|el"),
    rule("me tome|tome|tomé todo|todas ** pastillas|frasco|el_frasco"),
];

pub(super) const WIDER_INTENT: &[Spec] = &[
    rule("ending it $|tonight|today|tomorrow|now|soon|this_weekend"),
    rule("not going_to|gonna be alive|here|around by|after|at|next"),
    rule("decided|decide|made_up_my_mind i am|i'm not going_to|gonna be alive|be_here|make_it"),
    rule("is it for me $"),
    rule("quitarme|quito|me_quito de en medio"),
    rule("ya no voy a estar|seguir aqui|seguir_viva|seguir_vivo"),
];

pub(super) const WIDER_PLAN: &[Spec] = &[
    rule("i_will|i'll|going_to|gonna do it then|there|after|when|before|on|at|while"),
    rule("picked|chose|chosen|found|scouted the spot|place|date|day|bridge|building $|for|where|when|already"),
    rule("have|got a plan now"),
    rule("planned|planning|plan it|everything|it_all for|out|down"),
    rule("plan|planning|plans|pl4n|making_a_plan to end it|end_my_life|kill_myself|do_it"),
    rule("and i_am? not|never coming|come back $"),
    rule("the date * the place|the_time|the_how"),
    rule("taking|take|bringing|bring my * gun|pills|rope|knife with me"),
    rule(concat!("going|heading|driving|walking|go to the ** ", "overpass|bridge|cliffs|cliff|tracks|roof|rooftop|garage|parking_garage|woods|lake|river|ledge", " ** midnight|tonight|tomorrow|after|around|today|and")),
    rule("tomorrow|tmrw|tonight|today i_am|i'm doing it $"),
    rule("y no regreso|vuelvo $"),
    rule("pienso|voy_a tomarmelas|tomarme_todas|hacerlo"),
];

pub(super) const WIDER_PREPARATORY: &[Spec] = &[
    rule("looking_up|looked_up|researching|researched|googling|googled|searching|searched how tall|how_high|how_deep|which_bridges|heights|deep_water"),
    rule("over deep water"),
    rule_unless("giving|gave|give|started_giving my stuff|things|belongings|possessions * away", ORDINARY_MEANS),
    rule("so i_would|i_will|i_can|i_have have? enough $|pills|of_them"),
    rule("life insurance ** pays|pay_out|suicide|covers|for_that"),
    rule("painless|quickest|easiest|surest way|ways|method|methods"),
    rule("who gets the|my cats|dog|dogs|cat|stuff|things|room|car"),
    rule("got|took|taking|get the|a|my * gun|pistol|rifle out"),
    rule("pero no me mudo"),
    rule("anotadas|anote|escribi las? contrasenas"),
    rule("todo queda en orden"),
];

pub(super) const WIDER_SELF_HARM: &[Spec] = &[
    rule_unless(
        "carved|carve|carving|cut|cutting|scratched|scratching|scratch|burned|burning|burnt|burn|hit|hitting|punched|punching|bit|biting|slashed|slashing ** my|into_my arm|arms|leg|legs|wrist|wrists|thigh|thighs|skin|stomach|hip|hips|forearm|forearms|up_again",
        ORDINARY_INJURY,
    ),
    rule("went|cut deeper than i meant|i_wanted|usual|before"),
    rule("hiding|hide|cover|covering my * arm|arms|cuts|scars|marks|wrists"),
    rule("me pego|golpeo en? la cabeza|la_pared"),
    rule("me he cortado|lastimado|quemado|golpeado otra vez|de_nuevo"),
    rule("he recaido"),
];

pub(super) const WIDER_FAREWELL: &[Spec] = &[
    rule("last time * hear from me"),
    rule("make sure someone|somebody feeds|takes_care_of|looks_after|walks"),
    rule("will_not|won't be needing them|it|any_of_it|this|these anymore|any_more|again"),
    rule("please tell * i forgave|i_love|i_am_sorry|i_never|i_was_sorry|i_forgive"),
    rule("will_not|won't get the|a chance to tell"),
    rule("not be around * or any|ever"),
    rule("ultimo mensaje|adios"),
    rule("escrito|escribi cartas para todos|mi_familia|cada_uno"),
    rule("thank you|thanks for trying $"),
];

pub(super) const WIDER_BURDEN: &[Spec] = &[
    rule("cheaper|easier|better|happier|nicer|lighter for everyone|everybody|them|my_family if i"),
    rule("better off|happier|nicer_time if i * was|were|was_not|wasn't|wuz|was_gone|disappeared|died|left|gone"),
    rule("six|6 feet under"),
    rule("favor|favour by leaving|disappearing|dying|being_gone|not_being_here"),
    rule("if i * was_not|wasn't|were_not in the picture"),
];

pub(super) const WIDER_HOPELESSNESS: &[Spec] = &[
    rule("give|giving up for good|on_life|on_living"),
    rule("might_as_well|just|should|could_just end it $|now|all"),
    rule("want|wish it to be|would_be over $|already|for_good|forever"),
    rule("anything|nothing|nobody|no_one left to live for"),
    rule("me rindo|canse|cansé|harta|harto de vivir|estar_vivo|estar_viva"),
    rule("nada tiene sentido"),
];

pub(super) const WIDER_LETHALITY: &[Spec] = &[
    rule_unless("how many ** is|are|would_be too many|fatal|lethal|deadly", ORDINARY_COUNTS),
    rule("how many ** would it take to"),
    rule_unless(
        "of my ** pills|meds|tablets|prescription|sleeping_pills ** enough|too_many|fatal|lethal|kill",
        ORDINARY_COUNTS,
    ),
    rule("jumping|falling|jump|fall from|off ** kill_me|be_fatal|survive|die"),
    rule_unless(
        "took|taken|swallowed like|about|around|maybe? 15|20|25|30|35|40|45|50|60|100",
        ORDINARY_COUNTS,
    ),
    rule("too many to wake_up|survive"),
    rule("cuantos|cuantas ** son demasiados|demasiadas|es_mortal|para_morir"),
    rule("cuanto tarda|tardan $"),
];

pub(super) const WIDER_IDEATION: &[Spec] = &[
    rule("thoughts|thought about|of ending it|ending_things|ending_my_life|killing_myself|not_being_here"),
    rule("thinking|think of|about ways|a_way out"),
    rule("could|should just end it"),
];
