//! The guided-exercise catalogue. The defaults are docs/domain.md's
//! (section 6.1); config.toml may replace them.

use serde::{Deserialize, Serialize};

use crate::model::progress::MarkerType;

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Exercise {
    /// The id clicked to start it; completion is `<id>_complete`.
    pub id: String,
    /// The button label that offers it.
    pub title: String,
    /// What the player is asked to do: the `instruction` element's label.
    pub steps: String,
    #[serde(default = "default_therapeutic_value")]
    pub therapeutic_value: f64,
}

fn default_therapeutic_value() -> f64 {
    0.2
}

impl Exercise {
    pub fn marker_type(&self) -> MarkerType {
        MarkerType::SkillAcquired
    }

    pub fn completion_description(&self) -> String {
        format!("Completed guided exercise: {}", self.id)
    }
}

pub fn default_exercises() -> Vec<Exercise> {
    vec![
        Exercise {
            id: "ex_breathing".into(),
            title: "Try 4-7-8 breathing".into(),
            steps: "Breathe in quietly through your nose for 4 seconds, hold your breath \
                    for 7 seconds, then breathe out slowly through your mouth for 8 seconds. \
                    Repeat four times."
                .into(),
            therapeutic_value: 0.2,
        },
        Exercise {
            id: "ex_grounding".into(),
            title: "5-4-3-2-1 grounding".into(),
            steps: "Name 5 things you can see, 4 things you can touch, 3 things you can \
                    hear, 2 things you can smell and 1 thing you can taste."
                .into(),
            therapeutic_value: 0.2,
        },
    ]
}

/// The exercises a client may start, looked up by id.
#[derive(Debug, Clone)]
pub struct Catalogue {
    exercises: Vec<Exercise>,
}

impl Catalogue {
    pub fn new(exercises: Vec<Exercise>) -> Self {
        Catalogue { exercises }
    }

    pub fn get(&self, id: &str) -> Option<&Exercise> {
        self.exercises.iter().find(|exercise| exercise.id == id)
    }

    /// Every exercise, in the configured order: what an anxious or crisis
    /// reply offers.
    pub fn all(&self) -> &[Exercise] {
        &self.exercises
    }
}

impl Default for Catalogue {
    fn default() -> Self {
        Catalogue::new(default_exercises())
    }
}
