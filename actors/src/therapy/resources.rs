//! Crisis resources: who to contact, for which kinds of crisis. The
//! defaults are docs/domain.md's (section 4); a deployment replaces them in
//! config.toml.

use serde::{Deserialize, Serialize};

use crate::therapy::crisis::CrisisType;
use crate::therapy::language::Language;

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct CrisisResource {
    pub id: String,
    pub label: String,
    pub method: ContactMethod,
    pub info: String,
    pub emergency: bool,
    /// The crisis types this resource is offered for.
    pub types: Vec<CrisisType>,
    /// The languages it serves (`"es"`); empty: every language.
    #[serde(default)]
    pub languages: Vec<String>,
}

/// How a crisis resource is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactMethod {
    Phone,
    Text,
    Chat,
    Website,
}

pub fn default_crisis_resources() -> Vec<CrisisResource> {
    use CrisisType::*;
    let resource = |id: &str, label: &str, method, info: &str, emergency, types: &[CrisisType]| {
        CrisisResource {
            id: id.into(),
            label: label.into(),
            method,
            info: info.into(),
            emergency,
            types: types.to_vec(),
            languages: Vec::new(),
        }
    };
    vec![
        resource(
            "lifeline_988",
            "988 Suicide & Crisis Lifeline",
            ContactMethod::Phone,
            "988",
            true,
            &[SuicidalIdeation, SevereDepression],
        ),
        resource(
            "crisis_text_line",
            "Crisis Text Line",
            ContactMethod::Text,
            "Text HOME to 741741",
            true,
            &[SuicidalIdeation, SelfHarm, PanicAttack],
        ),
        resource(
            "emergency_911",
            "Emergency Services",
            ContactMethod::Phone,
            "911",
            true,
            &[SuicidalIdeation, SelfHarm],
        ),
        resource(
            "nami_helpline",
            "NAMI HelpLine",
            ContactMethod::Phone,
            "1-800-950-NAMI (6264)",
            false,
            &[SevereDepression, GeneralDistress],
        ),
        resource(
            "samhsa_helpline",
            "SAMHSA National Helpline",
            ContactMethod::Phone,
            "1-800-662-HELP (4357)",
            false,
            &[SubstanceAbuse, GeneralDistress],
        ),
        CrisisResource {
            languages: vec!["es".into()],
            ..resource(
                "lifeline_988_es",
                "988 Lifeline en español",
                ContactMethod::Phone,
                "Llama al 988 y marca 2, o envía AYUDA al 988",
                true,
                &[SuicidalIdeation, SelfHarm, SevereDepression, PanicAttack],
            )
        },
    ]
}

/// The resources for the detected types in the message's language: those
/// made for that language first (a Spanish message gets the Spanish line
/// first), then emergency ones, otherwise in configured order. A resource
/// for other languages only is left out. A crisis whose types no resource
/// lists (say, only `trauma_response`) still gets help: the
/// `general_distress` resources, or failing those every emergency one.
pub fn resources_for<'a>(
    resources: &'a [CrisisResource],
    types: &[CrisisType],
    language: Language,
) -> Vec<&'a CrisisResource> {
    if types.is_empty() {
        return Vec::new();
    }
    let serves = |resource: &CrisisResource| {
        resource.languages.is_empty() || resource.languages.iter().any(|l| l == language.code())
    };
    let matching = |wanted: &[CrisisType]| -> Vec<&CrisisResource> {
        resources
            .iter()
            .filter(|resource| serves(resource))
            .filter(|resource| resource.types.iter().any(|t| wanted.contains(t)))
            .collect()
    };
    let mut chosen = matching(types);
    if chosen.is_empty() {
        chosen = matching(&[CrisisType::GeneralDistress]);
    }
    if chosen.is_empty() {
        chosen = resources
            .iter()
            .filter(|r| r.emergency && serves(r))
            .collect();
    }
    // A stable sort keeps the configured order within each group.
    chosen.sort_by_key(|resource| (resource.languages.is_empty(), !resource.emergency));
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids<'a>(chosen: &[&'a CrisisResource]) -> Vec<&'a str> {
        chosen.iter().map(|resource| resource.id.as_str()).collect()
    }

    #[test]
    fn matching_resources_come_emergency_first() {
        let resources = default_crisis_resources();
        let chosen = resources_for(
            &resources,
            &[CrisisType::SevereDepression, CrisisType::SubstanceAbuse],
            Language::English,
        );
        assert_eq!(
            ids(&chosen),
            ["lifeline_988", "nami_helpline", "samhsa_helpline"]
        );
        let suicidal = resources_for(
            &resources,
            &[CrisisType::SuicidalIdeation],
            Language::English,
        );
        assert_eq!(
            ids(&suicidal),
            ["lifeline_988", "crisis_text_line", "emergency_911"]
        );
    }

    #[test]
    fn a_crisis_without_a_listed_resource_still_gets_help() {
        let resources = default_crisis_resources();
        let chosen = resources_for(&resources, &[CrisisType::TraumaResponse], Language::English);
        assert_eq!(ids(&chosen), ["nami_helpline", "samhsa_helpline"]);
        assert!(resources_for(&resources, &[], Language::English).is_empty());
    }

    #[test]
    fn a_spanish_message_gets_the_spanish_line_first() {
        let resources = default_crisis_resources();
        let chosen = resources_for(
            &resources,
            &[CrisisType::SuicidalIdeation],
            Language::Spanish,
        );
        assert_eq!(
            ids(&chosen),
            [
                "lifeline_988_es",
                "lifeline_988",
                "crisis_text_line",
                "emergency_911"
            ]
        );
    }
}
