//! The crisis types, as the wire and the configuration name them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

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

/// What in a message raised the alarm, by the clinical categories of the
/// Columbia scale and beside them; a verdict lists every category that
/// fired, so the log and the metrics can say what was seen without the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CrisisCategory {
    WishDead,
    ActiveIdeation,
    Method,
    Intent,
    Plan,
    Preparatory,
    Farewell,
    Burden,
    Lethality,
    SelfHarm,
    Hopelessness,
    Panic,
    Trauma,
    SubstanceUse,
    Distress,
    /// Raised by the model's second opinion, where no rule fired.
    ModelOpinion,
}

impl CrisisCategory {
    pub const ALL: [CrisisCategory; 16] = [
        CrisisCategory::WishDead,
        CrisisCategory::ActiveIdeation,
        CrisisCategory::Method,
        CrisisCategory::Intent,
        CrisisCategory::Plan,
        CrisisCategory::Preparatory,
        CrisisCategory::Farewell,
        CrisisCategory::Burden,
        CrisisCategory::Lethality,
        CrisisCategory::SelfHarm,
        CrisisCategory::Hopelessness,
        CrisisCategory::Panic,
        CrisisCategory::Trauma,
        CrisisCategory::SubstanceUse,
        CrisisCategory::Distress,
        CrisisCategory::ModelOpinion,
    ];

    /// The snake_case name used on the wire, in logs and as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            CrisisCategory::WishDead => "wish_dead",
            CrisisCategory::ActiveIdeation => "active_ideation",
            CrisisCategory::Method => "method",
            CrisisCategory::Intent => "intent",
            CrisisCategory::Plan => "plan",
            CrisisCategory::Preparatory => "preparatory",
            CrisisCategory::Farewell => "farewell",
            CrisisCategory::Burden => "burden",
            CrisisCategory::Lethality => "lethality",
            CrisisCategory::SelfHarm => "self_harm",
            CrisisCategory::Hopelessness => "hopelessness",
            CrisisCategory::Panic => "panic",
            CrisisCategory::Trauma => "trauma",
            CrisisCategory::SubstanceUse => "substance_use",
            CrisisCategory::Distress => "distress",
            CrisisCategory::ModelOpinion => "model_opinion",
        }
    }
}

impl fmt::Display for CrisisCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
