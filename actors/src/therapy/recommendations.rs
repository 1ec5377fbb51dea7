//! The recommendations feedback and conversation lead to (docs/domain.md,
//! "Feedback"). Which apply to a player is the assistant's decision; what
//! each says is the domain's.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recommendation {
    pub recommendation_id: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    pub recommendation_type: &'static str,
    pub priority: u8,
}

pub const ADJUST_INTENSITY: Recommendation = Recommendation {
    recommendation_id: "rec_adjust_intensity",
    title: "Adjust Therapeutic Intensity",
    description:
        "Recent ratings suggest the sessions feel too intense; ease the pace and add support.",
    recommendation_type: "intensity_adjustment",
    priority: 2,
};
pub const SLOW_DOWN: Recommendation = Recommendation {
    recommendation_id: "rec_slow_pacing",
    title: "Slow Down Pacing",
    description: "Take more time between steps and check in more often.",
    recommendation_type: "pacing_adjustment",
    priority: 2,
};
pub const MORE_ENGAGEMENT: Recommendation = Recommendation {
    recommendation_id: "rec_increase_engagement",
    title: "Increase Engagement",
    description: "Vary the activities and bring in more interactive exercises.",
    recommendation_type: "engagement_boost",
    priority: 3,
};
pub const STRESS_FOCUS: Recommendation = Recommendation {
    recommendation_id: "rec_stress_management",
    title: "Stress Management Focus",
    description: "Practise calming skills such as breathing and grounding exercises.",
    recommendation_type: "skill_focus",
    priority: 2,
};
