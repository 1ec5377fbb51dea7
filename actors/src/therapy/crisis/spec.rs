//! How a rule is written in the tables (`rules.rs`, `rules_categories.rs`,
//! `rules_wider.rs`): a pattern, what excuses it, and the clinical category
//! it reports when that is not its table's.

use super::types::CrisisCategory;

/// One rule as written: a pattern and the patterns that suppress it when
/// they occur in the same sentence, and the clinical category it reports
/// when that is not its table's.
pub(super) struct Spec {
    pub(super) pattern: &'static str,
    pub(super) unless: &'static [&'static str],
    pub(super) category: Option<CrisisCategory>,
}

pub(super) const fn rule(pattern: &'static str) -> Spec {
    Spec {
        pattern,
        unless: &[],
        category: None,
    }
}

pub(super) const fn rule_unless(pattern: &'static str, unless: &'static [&'static str]) -> Spec {
    Spec {
        pattern,
        unless,
        category: None,
    }
}

impl Spec {
    /// The rule reports `category` rather than its table's.
    pub(super) const fn as_(self, category: CrisisCategory) -> Spec {
        Spec {
            category: Some(category),
            ..self
        }
    }
}
