//! Progress markers: the durable record of what a player achieved (a
//! completed exercise is a `SKILL_ACQUIRED` marker; docs/domain.md). The
//! exercise flow makes them, the stores keep them, the protocol shows them.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::model::ids::SessionId;
use crate::model::time::Timestamp;

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MarkerId(String);

impl MarkerId {
    /// A marker id read back from a store.
    pub fn from_stored(id: String) -> Self {
        MarkerId(id)
    }

    pub fn generate() -> Self {
        MarkerId(format!("pm_{}", Uuid::new_v4().simple()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MarkerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MarkerType {
    Milestone,
    Breakthrough,
    SkillAcquired,
    GoalAchieved,
    SetbackOvercome,
    Insight,
    TherapeuticGoal,
}

impl MarkerType {
    pub fn as_str(self) -> &'static str {
        match self {
            MarkerType::Milestone => "MILESTONE",
            MarkerType::Breakthrough => "BREAKTHROUGH",
            MarkerType::SkillAcquired => "SKILL_ACQUIRED",
            MarkerType::GoalAchieved => "GOAL_ACHIEVED",
            MarkerType::SetbackOvercome => "SETBACK_OVERCOME",
            MarkerType::Insight => "INSIGHT",
            MarkerType::TherapeuticGoal => "THERAPEUTIC_GOAL",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            MarkerType::Milestone,
            MarkerType::Breakthrough,
            MarkerType::SkillAcquired,
            MarkerType::GoalAchieved,
            MarkerType::SetbackOvercome,
            MarkerType::Insight,
            MarkerType::TherapeuticGoal,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == text)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProgressMarker {
    pub marker_id: MarkerId,
    pub marker_type: MarkerType,
    pub description: String,
    pub achieved_at: Timestamp,
    pub therapeutic_value: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub related_goal_id: Option<String>,
    /// The session (v1 or an assistant session) it was earned in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<SessionId>,
}
