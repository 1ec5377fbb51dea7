//! Rules by the clinical categories crisis messages fall into (the
//! Columbia scale's wish to be dead, method, intent, plan and preparatory
//! behaviour; farewell, burden, lethality questions, self-harm in other
//! words), in English and Spanish, beside the older tables of `rules.rs`.
//! Written against the categories of `corpus/messages.tsv`, in general
//! forms rather than its sentences, so that they hold for words the corpus
//! does not have.

use super::spec::{rule, rule_unless, Spec};
use super::types::CrisisCategory;

/// Travel, moving house and the like: why a pet or a thing is handed on
/// without any danger.
const ORDINARY_HANDOVER: &[&str] = &[
    "trip|travel|travelling|traveling|vacation|holiday|holidays|moving|move|moved|abroad|away_for|semester|while_i|allergic|allergy|landlord|new_apartment|sale|sell|sold",
];

/// A performance, a game or a stage, where an ending is not a life's.
const ORDINARY_ENDING: &[&str] = &[
    "game|match|show|season|series|episode|stream|streaming|shift|semester|term|class|course|job|lease|contract|relationship|subscription|account|chapter|tour|concert|trip|vacation|holiday",
];

pub(super) const WISH_DEAD: &[Spec] = &[
    rule("hope|hoping|wish|wishing|pray|praying * not|never wake_up in_the_morning|one_day|tomorrow"),
    rule("want|wish|would_give_anything|just_want|need to stop|quit existing|exist"),
    rule("stop existing"),
    rule("fade|disappear|vanish * and? not exist"),
    rule("not exist|existing anymore|any_more|at_all"),
    rule("being dead|gone|death|dying * sounds|seems|feels|would_be * peaceful|better|nice|easier|relief|rest"),
    rule("death|dying * only rest|only_way_out|only_peace|only_escape"),
    rule("dying|death|being_dead * better than living|waking_up|this|life|being_alive"),
    rule("care|mind if i live|lived or die|died"),
    rule("daydreaming|dreaming|imagining|picturing|thinking|think about my own? funeral"),
    rule("being gone forever|for_good"),
    rule("skipped|skip being born"),
    rule("have|want it all to? be over for_good|forever"),
    rule("would_not|will_not mind|care|fight_it if * hit|killed|took|died|happened"),
    rule("envy|jealous_of people|those who die"),
    rule("hope|hoping|wish|wishing something|someone * happens|kills|hits * me"),
    rule("picturing|imagining|see|seeing myself dead"),
    rule("why i am still here|alive"),
    rule("not want to be here $"),
    rule("wish that had_been|was|were me"),
];

pub(super) const ACTIVE_IDEATION: &[Spec] = &[
    rule("want|wanted|wanting to end it for|so_bad|again"),
    rule("end|ending myself"),
    rule("want|wanted|wanting to? end things|everything"),
];

/// Taking all one's pills along, or as prescribed.
const PILLS_AS_MEANT: &[&str] = &[
    "with_me|pack|packing|trip|travel|travelling|traveling|holiday|vacation|as_prescribed|on_time|every_day|daily|doctor|morning|evening|vitamins|antibiotics|course",
];

pub(super) const METHOD: &[Spec] = &[
    rule_unless("swallow|swallowing|take|taking all|every * pills|tablets|one|of_them", PILLS_AS_MEANT),
    rule("gun|pistol|rifle|knife|blade|razor * on myself"),
    rule("use|using it|the_gun|a_gun|my_gun on myself"),
    rule("gun|pistol|rifle in my lap|hand|mouth"),
    rule("pills|tablets|meds * in my hand|hands"),
    rule_unless("taking|take|swallow|swallowing them all|all_of_them", PILLS_AS_MEANT),
    rule("jump|jumping|jumped|going_over|go_over off|from|over * garage|parking_garage|car_park|quarry|railing|edge|ledge|overpass|roof|bridge"),
    rule("train|tracks|subway|railway|freight * think|thinking|quick|jump|step|in_front|not_moving"),
    rule("in front of the? subway|metro|tube|train"),
    rule("swerve|swerving|crash|crashing|drive|driving|drove * into|off * on_purpose|so_it_looks|to_end|barrier|tree|truck|wall|cliff"),
    rule("standing|sitting|stood on the edge|ledge of? the? roof|bridge|building|cliff"),
    rule("going_to|gonna|about_to jump $"),
    rule("at the tracks|station|bridge * train|jump|not_moving"),
    rule("rope|noose is up|ready|tied|set"),
    rule("took|swallowed|taken|have_taken * all|whole_bottle|entire_bottle|too_many|40|30|50|20|60|100 * pills|tablets|meds"),
    rule("going_to|gonna|about_to swallow|take them"),
    rule("on the bridge|roof|ledge * right_now|now|climbing"),
    rule("whole|entire bottle of * thinking|take|taking|swallow"),
    rule("thinking|thought|think about * swallowing|overdosing"),
];

pub(super) const INTENT: &[Spec] = &[
    rule("going_through|go_through with it|my_plan"),
    rule("have decided $"),
    rule("decided $"),
    rule("mind is made up"),
    rule_unless(
        "i am|going_to ending it|things|everything $",
        ORDINARY_ENDING,
    ),
    rule("gonna|going_to end things|it_all"),
    rule_unless(
        "doing it tonight|today|right_now|now|this_time",
        ORDINARY_ENDING,
    ),
    rule("not a cry for help"),
    rule("no_one|nobody can|will|is_going_to stop me|talk_me_out"),
    rule("talk me out of it"),
    rule("know what i am going to do $"),
    rule("going_to|gonna do it right now|tonight|today $"),
    rule("it is happening today|tonight"),
    rule("this time i am actually|really|sure"),
    rule("not waiting around to find_out"),
];

pub(super) const PLAN: &[Spec] = &[
    rule("planned it|everything * out"),
    rule("have|got a plan $|i_just"),
    rule("my plan is|to * wait|do|go|drive|end|take|use"),
    rule("picked|chose|chosen a? spot|place|day|date|time * where|when|nobody|no_one"),
    rule("know exactly how|when"),
    rule("how and when|when and how"),
    rule("the when and the how"),
    rule("thought it through"),
    rule("know how i would do it"),
    rule("highest bridge|building|floor|point"),
    rule("which bridge|building * highest|tallest"),
    rule("drive_up|driving_up|go|going to the? cliffs|cliff|bridge|tracks|top_of * and_not|at|tonight|sunday|saturday|midnight"),
    rule("and not|never come back"),
    rule("use|using|with my|his|the dad? gun"),
    rule("bringing|bring|brought the|my pills|rope|gun"),
    rule("to do it $|this_weekend|tonight"),
    rule("everything is set $"),
    rule("house to myself * do_it|so"),
];

pub(super) const PREPARATORY: &[Spec] = &[
    rule("goodbye|suicide|farewell note|notes|letter|letters|messages"),
    rule("wrote|writing|written|write * notes|letters|note * for * mom|dad|brother|sister|family|everyone|them|parents|kids|wife|husband|friends"),
    rule("letters are written"),
    rule("after|when i am already? gone|dead"),
    rule("whoever|whomever finds me|it|my_body"),
    rule("if anything happens to me"),
    rule("updated|wrote|writing|made|make my will"),
    rule("who gets what"),
    rule("saying|said goodbye to * without"),
    rule("bought|buying|got a? rope|noose"),
    rule("gun shop|shops|store|stores"),
    rule("will_not|won't need them|it|any_of_it"),
    rule_unless(
        "take|look_after|care_of|found_someone_to_take my dog|cat|pets|pet|hamster",
        ORDINARY_HANDOVER,
    ),
    rule_unless("gave|giving|give my cat|dog|pet|guitar|xbox|plants|collection * to", ORDINARY_HANDOVER),
    rule("everything i need in front"),
    rule("pills * counted|lined_up|ready"),
    rule("tonight is the night"),
    rule("deleted|deleting all? my socials|photos|accounts * nobody|after|so"),
    rule("so no_one|nobody gets stuck|has_to with|go_through * after"),
    rule("apologised|apologized|apologising to everyone"),
    rule("voice messages|recordings * after i"),
];

pub(super) const FAREWELL: &[Spec] = &[
    rule("my last|final message|goodbye|post|words"),
    rule("this is goodbye|my_goodbye $"),
    rule("final goodbye"),
    rule("goodbye|bye everyone|everybody|forever|for_good|world"),
    rule("tell my * i am sorry|i_love_her|i_love_him|i_never|she_can_have|he_can_have"),
    rule("please tell * i never blamed"),
    rule("will_not|won't be back $"),
    rule("signing off for good|forever"),
    rule("see you on the other side"),
    rule("by the time * reads this"),
    rule("will_not|won't hear from me again"),
    rule("thank you|thanks before i go"),
    rule("none of this is their|your fault"),
    rule("can have my room|stuff|things|car"),
    rule("last time i will|i_will ever"),
    rule("leaving for good"),
    rule("nobody|no_one needs to look for me"),
    rule("i am done now * goodbye|bye"),
    rule("if i do not reply|answer * that is why"),
    rule("last log in|login"),
    rule("take care of yourselves|each_other * last|goodbye|bye"),
    rule("so this is it * bye|goodbye"),
    rule("i love you all * goodbye|bye"),
    rule("thank you for everything * goodbye|bye|mean_it"),
];

pub(super) const BURDEN: &[Spec] = &[
    rule("happier|better|easier|lighter|fine|free * if i * was_not|were_not|wasn't|weren't|gone|around|here|dead"),
    rule("happier|better|easier|lighter|fine|free * without me"),
    rule("with me gone|out_of_the_picture|out_of_the_way"),
    rule("one less problem|burden|mouth"),
    rule("favour|favor if i * disappeared|died|was_gone|were_gone"),
    rule("my existence is * problem|burden"),
    rule("i am the problem|burden"),
    rule("save so_much? money without me"),
    rule("get over it in a|within week|day|month"),
    rule("dying|my_death|killing_myself would be the nicest|kindest|best|only * thing"),
    rule("take me out and"),
    rule("i am just|only a burden"),
    rule("drain people|everyone"),
];

pub(super) const LETHALITY: &[Spec] = &[
    rule("how many * pills|tablets|sleeping_pills|tylenol * die|kill|overdose|lethal|take|would_it_take|to_not_wake_up"),
    rule("lethal|fatal dose|amount|overdose"),
    rule("how high * fall|jump|building|bridge|floor * die|survive|kill|fatal"),
    rule("how long * bleed|bleed_out|hanging|to_die|to_lose_consciousness"),
    rule("painless|quickest|easiest|fastest way|method to die|kill_myself|go|end_it"),
    rule("would * kill me|be_enough_to_die|be_fatal"),
    rule("enough to die|kill_me|not_wake_up"),
    rule("does it hurt to die|drown|hang"),
];

pub(super) const SELF_HARM_WORDS: &[Spec] = &[
    rule("cut|cutting again|so_bad|in_places|every_night"),
    rule("want|need|urge to cut $|so_bad"),
    rule("burn|burned|burnt|burning * myself|my_hand|my_arm|my_skin * on_purpose|lighter|iron|cigarette"),
    rule("burned|burnt ~myself"),
    rule("scratch|scratched|scratching * till|until * bleed|bled|bleeding|raw|skin"),
    rule("punch|punching|punched|hit|hitting|slam|slamming|bang|banging * my own? face|head|legs|arms|thighs|stomach"),
    rule("marks|scars|cuts|bruises on my arms|legs|thighs|wrists|wrist|stomach"),
    rule("blade * sharpener|out_again|again"),
    rule("dig|digging|dug my nails * skin|until"),
    rule("on my arm|skin|wrist on purpose"),
    rule("sh every|again|last_night"),
    rule("deserve the pain"),
    rule("bit|bite|biting my arm|hand|wrist * marks|hard|blood"),
    rule("snapping|snap rubber_bands|bands|band"),
    rule("hurt|burn|cut|hit * myself on purpose"),
    rule("i went and cut|did_it_again"),
];

/// Spanish: the same categories, in the words people write them with (the
/// normaliser folds accents and doubled letters on both sides).
pub(super) const SPANISH_SUICIDAL: &[Spec] = &[
    rule_unless(
        "quiero|quisiera|queria|quieres morir|morirme|matarme|desaparecer|suicidarme",
        &["de risa|hambre|calor|frio|sueno|verguenza|amor|ganas"],
    ),
    rule("me quiero|voy_a|voy morir|matar|suicidar"),
    rule("suicidarme|suicidio|suicida|suicidarse|suicidandome"),
    rule("no quiero vivir|seguir|despertar|estar_aqui|existir").as_(CrisisCategory::WishDead),
    rule("quitarme|quitare la vida"),
    rule("mejor * sin mi").as_(CrisisCategory::Burden),
    rule("no le? veo salida|sentido|futuro").as_(CrisisCategory::Hopelessness),
    rule("ojala no despertara|despertar|me_muriera|estuviera_muerta|estuviera_muerto")
        .as_(CrisisCategory::WishDead),
    rule("ultima carta|mensaje|vez|despedida").as_(CrisisCategory::Farewell),
    rule("cuantas pastillas").as_(CrisisCategory::Lethality),
    rule("dosis letal|mortal").as_(CrisisCategory::Lethality),
    rule("cuerda|soga lista|preparada").as_(CrisisCategory::Preparatory),
    rule("tirarme|lanzarme|aventarme del|de_un|de_la|al puente|edificio|techo|tren|metro|azotea")
        .as_(CrisisCategory::Method),
    rule("adios a todos|para_siempre").as_(CrisisCategory::Farewell),
    rule("carta de despedida").as_(CrisisCategory::Farewell),
    rule("no aguanto mas|vivir").as_(CrisisCategory::Hopelessness),
    rule("nadie me extranaria|echaria_de_menos").as_(CrisisCategory::Burden),
    rule("soy una carga").as_(CrisisCategory::Burden),
    rule("estarian mejor").as_(CrisisCategory::Burden),
    rule("acabar con todo|mi_vida"),
    rule("terminar con todo|mi_vida"),
    rule("morirme ya"),
    rule("me tome|tome todas|un_frasco * pastillas").as_(CrisisCategory::Method),
];

pub(super) const SPANISH_SELF_HARM: &[Spec] = &[
    rule("me corto|corte|cortarme|cortandome|lastimo|lastimarme|quemo|quemarme|golpeo|hago_dano"),
    rule("hacerme dano"),
    rule("autolesion|autolesiones|autolesionarme"),
    rule("cortes en los? brazos|piernas|munecas"),
];

/// Hopelessness: a future that will not come, in words that need not
/// mention death. Reported as severe depression.
pub(super) const HOPELESSNESS: &[Spec] = &[
    rule("nothing|never * going_to|will|is_going_to ever? get|gets better"),
    rule("nothing * will|going_to ever? fix|change|help me|anything"),
    rule("never going_to|gonna be ok|okay|better|happy|fine"),
    rule("can_not|do_not see a_future|any_future|my_future|myself_making_it|myself_alive|a_way_out|the_point"),
    rule("have no|not_any future $|for_me|at_all"),
    rule("no future $|for_me|zero"),
    rule("no way out $|except|of_this"),
    rule("no light at the end"),
    rule("every door|doors closed"),
    rule("nowhere left to go|to_turn"),
    rule("nothing left for me|to_live_for"),
    rule("run|ran out of reasons|hope"),
    rule("gave|given|giving up on things|life|getting_better|everything|ever"),
    rule("done hoping"),
    rule("same pain tomorrow|forever|every_day"),
    rule("why bother $"),
    rule("never going_to end|change $"),
    rule("stuck and * no way out"),
    rule("tried everything * nothing works"),
    rule("nothing works and nothing will"),
    rule("has_not|hasn't gotten|got better"),
    rule("how tomorrow is supposed to be any different"),
    rule("not see myself making it|living|reaching"),
    rule("no tengo futuro|esperanza"),
    rule("ya no tengo esperanza"),
    rule("unica salida"),
    rule("nunca va a cambiar|mejorar"),
    rule("no creo que * vaya a cambiar|mejorar"),
];

pub(super) const MORE_SUICIDAL: &[Spec] = &[
    // wish to be dead
    rule("hope|hoping|wish i do_not|never wake up tmrw|tmr|tomorow").as_(CrisisCategory::WishDead),
    rule("the last time i close my eyes").as_(CrisisCategory::WishDead),
    rule("got sick and died * relieved").as_(CrisisCategory::WishDead),
    rule("if i * died * relieved|relief").as_(CrisisCategory::WishDead),
    rule("death|dying * the? only rest").as_(CrisisCategory::WishDead),
    rule("not wake up tomorrow|tomorow").as_(CrisisCategory::WishDead),
    rule("go to sleep * not|never wake up").as_(CrisisCategory::WishDead),
    rule("universe|god|something could|would * take me").as_(CrisisCategory::WishDead),
    rule("just|can_not|why_can_not i just? die already|now $").as_(CrisisCategory::WishDead),
    rule("die already").as_(CrisisCategory::WishDead),
    // method
    rule("stare|staring|look|looking at * tracks|bridge|roof|railing|quarry|gun|pills * think|thinking|quick|easy").as_(CrisisCategory::Method),
    rule("think about going over the railing|edge").as_(CrisisCategory::Method),
    rule("floors up * think|thinking").as_(CrisisCategory::Method),
    rule("how easy it would be to").as_(CrisisCategory::Method),
    rule("took|taken like|about|around? 20|30|40|50|60|100 of my").as_(CrisisCategory::Method),
    rule("standing|sitting on the roof|bridge|ledge|edge $|right_now|rn|not_coming_down").as_(CrisisCategory::Method),
    rule("have|got the gun|pistol right here|with_me|in_my_hand").as_(CrisisCategory::Method),
    rule("pills * all * tonight|of_them").as_(CrisisCategory::Method),
    // intent and plan
    rule("it is happening today|tonight").as_(CrisisCategory::Intent),
    rule("i am sure this time").as_(CrisisCategory::Intent),
    rule("picked|found a spot|place where nobody|no_one will find me").as_(CrisisCategory::Plan),
    rule("nobody|no_one will find me").as_(CrisisCategory::Plan),
    rule("have the house to myself").as_(CrisisCategory::Plan),
    rule("highest * for when i do it").as_(CrisisCategory::Plan),
    rule("when i do it").as_(CrisisCategory::Intent),
    rule("going to the top of|top_of the parking_garage|garage|building|bridge").as_(CrisisCategory::Plan),
    rule("freight|train * that does_not|doesn't stop").as_(CrisisCategory::Plan),
    rule("made a decision|my_decision $|and").as_(CrisisCategory::Intent),
    rule("do|doing it saturday|sunday|friday|tonight|tomorrow|this_weekend").as_(CrisisCategory::Plan),
    // preparation
    rule("so nobody|no_one has to go_through|deal_with it after").as_(CrisisCategory::Preparatory),
    rule("told her|him|them i am moving but i am not").as_(CrisisCategory::Preparatory),
    rule("left my * records|passwords|instructions * for").as_(CrisisCategory::Preparatory),
    // farewell
    rule("so this is it * bye|goodbye").as_(CrisisCategory::Farewell),
    rule("i am done now * goodbye|bye").as_(CrisisCategory::Farewell),
    rule("i am not going to be around").as_(CrisisCategory::Farewell),
    rule("thank you * to anyone who ever").as_(CrisisCategory::Farewell),
    // burden
    rule("i cost everyone").as_(CrisisCategory::Burden),
    rule("because of me * if i was|were gone").as_(CrisisCategory::Burden),
    rule("if i was|were gone * peace|better|happier").as_(CrisisCategory::Burden),
    rule("take up space that").as_(CrisisCategory::Burden),
    rule("kindest|best thing * would be if").as_(CrisisCategory::Burden),
    // lethality
    rule("how high * be|to * fatal|die|survive|enough").as_(CrisisCategory::Lethality),
    rule("how long does it take to? bleed|die").as_(CrisisCategory::Lethality),
    rule("which|what is quicker|quickest|faster|surest|less_painful * pills|hanging|jumping|way").as_(CrisisCategory::Lethality),
    rule("can_you|would_i|do_you die from|instantly").as_(CrisisCategory::Lethality),
    rule("how many mg|milligrams|floors|of_these").as_(CrisisCategory::Lethality),
    rule("floor|story|storey|building|bridge be enough $").as_(CrisisCategory::Lethality),
    rule("how high does * have to be").as_(CrisisCategory::Lethality),
    rule("fall to be fatal|deadly").as_(CrisisCategory::Lethality),
    rule("does it hurt to get hit|die|drown").as_(CrisisCategory::Lethality),
    rule("way to die").as_(CrisisCategory::Lethality),
    rule("surest way").as_(CrisisCategory::Lethality),
    rule("survive after swallowing|taking|overdosing").as_(CrisisCategory::Lethality),
    rule("dose is lethal|fatal|deadly").as_(CrisisCategory::Lethality),
    rule("so i do_not survive").as_(CrisisCategory::Lethality),
    // Spanish
    rule("dejar de existir").as_(CrisisCategory::WishDead),
    rule("mejor muerta|muerto").as_(CrisisCategory::WishDead),
    rule("ojala me atropellara|muriera|atropele").as_(CrisisCategory::WishDead),
    rule("desaparecer para siempre").as_(CrisisCategory::WishDead),
    rule("tirarme a|en las vias|al_metro").as_(CrisisCategory::Method),
    rule("pistola|arma * usarla conmigo").as_(CrisisCategory::Method),
    rule("voy a saltar").as_(CrisisCategory::Intent),
    rule("en la azotea * saltar").as_(CrisisCategory::Method),
    rule("lo voy a hacer $|hoy|esta_noche|ya").as_(CrisisCategory::Intent),
    rule("esta vez si").as_(CrisisCategory::Intent),
    rule("tome la decision").as_(CrisisCategory::Intent),
    rule("quitar la vida").as_(CrisisCategory::ActiveIdeation),
    rule("grito de ayuda").as_(CrisisCategory::Intent),
    rule("todo planeado").as_(CrisisCategory::Plan),
    rule("elegi el lugar|dia").as_(CrisisCategory::Plan),
    rule("lo hago $").as_(CrisisCategory::Intent),
    rule("me tomo todas * pastilas").as_(CrisisCategory::Method),
    rule("ir al puente").as_(CrisisCategory::Plan),
    rule("escribi las cartas").as_(CrisisCategory::Preparatory),
    rule("cuando yo no este|ya_no_este").as_(CrisisCategory::Farewell),
    rule("juntando pastilas").as_(CrisisCategory::Preparatory),
    rule("testamento").as_(CrisisCategory::Preparatory),
    rule("regale * mis cosas").as_(CrisisCategory::Preparatory),
    rule_unless(
        "compre una cuerda",
        &["escalar|escalada|cerro|montana|camping|barco|tendedero|columpio"],
    )
    .as_(CrisisCategory::Preparatory),
    rule("contrasenas anotadas").as_(CrisisCategory::Preparatory),
    rule("no voy a estar mucho|mas tiempo").as_(CrisisCategory::Farewell),
    rule("diganle * que lo siento").as_(CrisisCategory::Farewell),
    rule("cuando lean esto").as_(CrisisCategory::Farewell),
    rule("si yo no existiera|estuviera").as_(CrisisCategory::Burden),
    rule("mejor me voy para siempre").as_(CrisisCategory::Farewell),
    rule("better off sin mi").as_(CrisisCategory::Burden),
    rule("mortal|letal").as_(CrisisCategory::Lethality),
    rule("que altura").as_(CrisisCategory::Lethality),
    rule("desangrarse|desangrarme").as_(CrisisCategory::Lethality),
    rule("ganas de matarme|morir|morirme").as_(CrisisCategory::ActiveIdeation),
    rule("staring|stare at the gun|pills|rope|noose|tracks").as_(CrisisCategory::Method),
    rule("then i am gone $").as_(CrisisCategory::Farewell),
    rule("fine|better|happier without|w_o me").as_(CrisisCategory::Burden),
    rule("if i was|were gone * peace").as_(CrisisCategory::Burden),
    rule("would_not|will_not even fight it").as_(CrisisCategory::WishDead),
    rule("wish that had been me").as_(CrisisCategory::WishDead),
    rule("pienso en usarla").as_(CrisisCategory::Method),
    rule("que lo siento $").as_(CrisisCategory::Farewell),
    rule("this is it * bye|goodbye").as_(CrisisCategory::Farewell),
    rule("done now * goodbye|bye").as_(CrisisCategory::Farewell),
    rule("finally be at peace").as_(CrisisCategory::WishDead),
    rule("think it would be quick|easy|painless").as_(CrisisCategory::Method),
];

pub(super) const MORE_SELF_HARM: &[Spec] = &[
    rule("blade out of my * sharpener"),
    rule("slam|slamming|punch|punching my fists into my"),
    rule("snapping them * wrist"),
    rule("volvi a cortar|cortarme"),
    rule("me pego la cabeza"),
    rule("rasguno hasta sangrar"),
    rule("me hice dano"),
    rule("recai"),
];

/// Benign frames around crisis words: a denial, a past that is over, news
/// and research, a story. A clause holding one raises nothing (see
/// `RuleSet::with_context`); the rest of the message is read as usual, so
/// "I used to cut, now I want to again" still fires.
pub(super) const BENIGN_FRAMES: &[&str] = &[
    // denial
    "not|never|no_longer suicidal",
    "never|not|no * hurt|harm|kill|killing|hurting|cut|cutting|burn ~myself",
    "never|not * take|end|ending my own? life",
    "no|zero|not_any|never_had thoughts|plans|wish|intention|urge|urges|desire of|to|about",
    "not have any * thoughts|urges|urge|plans|intention|desire",
    "never crossed my mind",
    "not want to die $|i_just|i_want|just",
    "not feel like a burden",
    "asked if|whether|me_if",
    "i am safe",
    "not thinking about|of * killing|hurting|suicide|ending|dying",
    // a past that is over
    "used to",
    "years|months|weeks ago",
    "back in|when high_school|school|college|the_day|my_teens",
    "since i last",
    "free from|of self_harm|cutting|it",
    "clean for|since|from",
    "days|months|years|year clean|free|sober",
    "in recovery",
    "this time last year",
    "old journal|diary",
    "when i was younger|a_teen|a_teenager|in_high_school|in_school|a_kid",
    "have_not|have_not_had ** in|for over|months|years|a_year",
    "days|weeks|months|years without|free_of|free_from",
    // news, research, awareness
    "news|article|articles|study|studies|research|paper|documentary|podcast|lecture|professor|statistics|stats|rates|prevalence|awareness|prevention|prevent|campaign|assembly|charity|warning_signs|hotline|hotlines|deaths|death_rate|went_down|went_up|policy|funding",
    "suicide|safety barrier|barriers|nets|fence|fences",
    // someone else: what a friend says, someone one supports, a death
    // reported (first person is never "died by suicide")
    "my|his|her|a coworker|boss|friend|roommate|boyfriend|girlfriend|partner|husband|wife|brother|sister|son|daughter|kid|mom|dad|classmate|cousin says|said|keeps_saying|always_says",
    "my|his|her|a|our boyfriend|girlfriend|friend|partner|husband|wife|brother|sister|son|daughter|kid|child|student|patient|teen|teenager|roommate|coworker|classmate|cousin who",
    "my|his|her roommate|friend|brother|sister|cousin|son|daughter|mom|dad|boyfriend|girlfriend|partner|uncle|aunt overdosed|relapsed|died",
    "died by suicide",
    // a story
    "in my|the|this novel|story|book|movie|film|game|show|episode|series|play|script",
    "the|my|his|her character|detective|protagonist|villain|hero",
    // Spanish
    "no quiero morir|morirme $|solo",
    "no estoy pensando en",
    "nunca|jamas me haria|haria dano",
    "hace anos|meses",
    "prevencion|charla|noticia|noticias|articulo|estudio",
    "peli|pelicula|serie|libro|novela|protagonista|personaje",
];

/// Signs that a crisis is happening now rather than thought about: a time
/// that is today, a place or a means at hand, an act done, a farewell that
/// counts the hours. Read only in a message already found to be a crisis,
/// where they make its severity `crisis` (see `CrisisAssessment`).
pub(super) const IMMINENCE: &[&str] = &[
    "right_now|rn|tonight|today|tomorrow|this_weekend|this_afternoon|this_morning|at_midnight|midnight|in_an_hour|as_soon_as",
    "saturday|sunday|monday|tuesday|wednesday|thursday|friday",
    "at 1am|2am|3am|4am|midnight|11",
    "in my lap|hand|hands|mouth|pocket",
    "right here",
    "in front of me",
    "rope|noose is up|ready|set|tied",
    "everything is set|ready",
    "counted out|counted|lined_up",
    "on the edge|ledge|bridge|roof|tracks",
    "at the tracks|bridge|station|edge|top",
    "in the car on",
    "just took|swallowed|finished|took_all",
    "took all|like|about * pills|of_my",
    "have taken|already_taken",
    "by the time * reads this",
    "will_not|won't hear from me again",
    "after everyone goes to sleep|they_sleep",
    "have the whole afternoon|night|house",
    "booked",
    "after|before my? shift|work|finals|school|class|practice|dinner|everyone_leaves",
    "an|a_few|few|20|30|ten|twenty hour|hours|minutes|mins ago",
    "i have like|about|around? 20|30|40|50|60|100 of them",
    "will_not|won't|does_not|doesn't stop bleeding",
    "last message|post|time_you_will_hear|time_you'll_hear",
    "goodbye|bye everyone|everybody|all",
    "esta noche|manana",
    "manana $|temprano|en_la_noche|por_la_noche",
    "hace rato|un_rato|una_hora|minutos",
    "no para de sangrar",
    "ultimo mensaje",
    "aqui en mi cuarto",
    "ya tengo bastantes|suficientes",
    "hoy $|lo_hago|mismo",
    "ahora mismo",
    "ya me tome",
    "estoy en la azotea|el_puente|las_vias",
    "cuerda lista",
    "a las * de la manana|noche",
    "cuando lean esto",
    "el sabado|domingo|viernes",
];
