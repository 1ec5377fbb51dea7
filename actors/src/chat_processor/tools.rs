//! Hearth's tools as a reply runs them (the tools themselves are listed in
//! `assistant::tools`). A call is checked before it runs: a tool the
//! session's agent does not list, or arguments that are not the object the
//! tool's schema asks for, come back to the assistant as a failed call,
//! never as an error of the reply. What a tool offers the player (an
//! exercise button, resources) joins the reply's elements.

use serde_json::{json, Map, Value};

use super::views::raw_json;
use super::ChatShared;
use crate::assistant::tools::{self as catalogue, ToolInfo, MAX_NOTE_CHARS};
use crate::assistant::ToolOutcome;
use crate::broadcaster::Publish;
use crate::channels::stream::{Payload, Publisher};
use crate::model::channel_name::ChannelName;
use crate::model::ids::{PlayerId, SessionId};
use crate::protocol::Element;

/// How many markers `list_progress` hands the assistant: the newest.
const PROGRESS_SHOWN: usize = 20;

/// What a reply needs to run a tool for its player.
pub(super) struct ToolContext<'a> {
    pub shared: &'a ChatShared,
    pub player: &'a PlayerId,
    pub session: &'a SessionId,
    /// The player approved this call (a tool that needs it runs only then).
    pub approved: bool,
}

/// A call that may run: its tool is one the session's agent lists, and its
/// arguments are a JSON object.
pub(super) struct CheckedCall {
    pub tool: &'static ToolInfo,
    arguments: Map<String, Value>,
}

/// A call that did not run, or failed: the assistant reads why.
pub(super) fn failed(summary: impl Into<String>) -> ToolOutcome {
    let summary = summary.into();
    ToolOutcome {
        ok: false,
        content: json!({ "error": summary }).to_string(),
        summary,
    }
}

fn succeeded(content: Value, summary: String) -> ToolOutcome {
    ToolOutcome {
        ok: true,
        content: content.to_string(),
        summary,
    }
}

/// One argument of a call: a string, required.
fn text_argument<'a>(
    arguments: &'a Map<String, Value>,
    name: &str,
) -> Result<&'a str, ToolOutcome> {
    match arguments.get(name) {
        Some(Value::String(text)) if !text.trim().is_empty() => Ok(text),
        _ => Err(failed(format!(
            "the argument {name:?} must be a non-empty string"
        ))),
    }
}

/// Adds what a tool offers to the reply unless the reply shows it already
/// (the crisis check or an earlier call may have put it there).
fn add_once(elements: &mut Vec<Element>, element: Element) {
    if !elements.contains(&element) {
        elements.push(element);
    }
}

/// Checks the call `name(arguments)` against the tools `allowed` (the
/// session's agent's), before it runs or is put to the player.
pub(super) fn check(
    allowed: &[String],
    name: &str,
    arguments: &str,
) -> Result<CheckedCall, ToolOutcome> {
    let Some(tool) = catalogue::find(name).filter(|_| allowed.iter().any(|tool| tool == name))
    else {
        return Err(failed(format!("no tool {name:?} for this agent")));
    };
    let arguments = match serde_json::from_str(arguments) {
        Ok(Value::Object(object)) => object,
        // An empty string is how some models call a tool without arguments.
        _ if arguments.trim().is_empty() => Map::new(),
        _ => return Err(failed("the arguments are not a JSON object")),
    };
    Ok(CheckedCall { tool, arguments })
}

/// Runs a checked call, adding what it offers to `elements`.
pub(super) async fn run(
    context: &ToolContext<'_>,
    call: CheckedCall,
    elements: &mut Vec<Element>,
) -> ToolOutcome {
    let CheckedCall { tool, arguments } = call;
    if tool.requires_approval && !context.approved {
        return failed(format!("{} needs the player's approval", tool.name));
    }
    let outcome = match tool.name {
        "suggest_exercise" => suggest_exercise(context, &arguments, elements),
        "list_progress" => list_progress(context).await,
        "find_resources" => find_resources(context, &arguments, elements),
        "share_summary" => share_summary(context, &arguments).await,
        other => Err(failed(format!("no tool {other:?}"))),
    };
    outcome.unwrap_or_else(|failure| failure)
}

fn suggest_exercise(
    context: &ToolContext<'_>,
    arguments: &Map<String, Value>,
    elements: &mut Vec<Element>,
) -> Result<ToolOutcome, ToolOutcome> {
    let id = text_argument(arguments, "exercise_id")?;
    let Some(exercise) = context.shared.exercises.get(id) else {
        let known: Vec<&str> = context
            .shared
            .exercises
            .all()
            .iter()
            .map(|e| e.id.as_str())
            .collect();
        return Err(failed(format!(
            "no exercise {id:?}; the exercises are {}",
            known.join(", ")
        )));
    };
    add_once(elements, Element::offer(exercise));
    Ok(succeeded(
        json!({"offered": exercise.id, "title": exercise.title}),
        format!("offered {}", exercise.title),
    ))
}

async fn list_progress(context: &ToolContext<'_>) -> Result<ToolOutcome, ToolOutcome> {
    let store = context.shared.progress.clone();
    let player = context.player.clone();
    let markers = actix_rt::task::spawn_blocking(move || store.markers(&player))
        .await
        .map_err(|_| failed("the progress store could not answer"))?
        .map_err(|_| failed("the progress store could not answer"))?;
    let count = markers.len();
    let newest: Vec<Value> = markers
        .iter()
        .rev()
        .take(PROGRESS_SHOWN)
        .map(|marker| {
            json!({
                "marker_type": marker.marker_type,
                "description": marker.description,
                "achieved_at": marker.achieved_at,
            })
        })
        .collect();
    Ok(succeeded(
        json!({"count": count, "newest": newest}),
        match count {
            1 => "read 1 progress marker".to_string(),
            n => format!("read {n} progress markers"),
        },
    ))
}

/// Publishes the note on the player's own channel (`user:<player>`),
/// where their other devices and applications read it.
async fn share_summary(
    context: &ToolContext<'_>,
    arguments: &Map<String, Value>,
) -> Result<ToolOutcome, ToolOutcome> {
    let note = text_argument(arguments, "note")?;
    if note.chars().count() > MAX_NOTE_CHARS {
        return Err(failed(format!(
            "the note is longer than {MAX_NOTE_CHARS} characters"
        )));
    }
    let channel = ChannelName::parse(&format!("user:{}", context.player))
        .map_err(|_| failed("the player has no channel"))?;
    let data = json!({"type": "summary", "note": note, "session_id": context.session});
    let publish = Publish {
        channel,
        publisher: Publisher::Server,
        data: Payload::from_raw(raw_json(&data)),
    };
    match context.shared.conversations.broadcaster.send(publish).await {
        Ok(Ok(published)) => Ok(succeeded(
            json!({"shared": true, "offset": published.offset}),
            "shared a note".to_string(),
        )),
        _ => Err(failed("the note could not be published")),
    }
}

fn find_resources(
    context: &ToolContext<'_>,
    arguments: &Map<String, Value>,
    elements: &mut Vec<Element>,
) -> Result<ToolOutcome, ToolOutcome> {
    let topic = text_argument(arguments, "topic")?.to_lowercase();
    let words: Vec<&str> = topic
        .split(|c: char| !c.is_alphanumeric())
        .filter(|word| word.len() >= 3)
        .collect();
    let found: Vec<_> = context
        .shared
        .resources
        .iter()
        .filter(|resource| {
            let about = format!(
                "{} {} {}",
                resource.label.to_lowercase(),
                resource.id.replace('_', " "),
                resource
                    .types
                    .iter()
                    .map(|kind| kind.as_str().replace('_', " "))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            words.iter().any(|word| about.contains(word))
        })
        .collect();
    for resource in &found {
        add_once(elements, Element::resource(resource));
    }
    let listed: Vec<Value> = found
        .iter()
        .map(|r| json!({"id": r.id, "label": r.label, "info": r.info, "emergency": r.emergency}))
        .collect();
    Ok(succeeded(
        json!({ "resources": listed }),
        format!("found {} resources", found.len()),
    ))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::assistant::builtin::BuiltinAssistant;
    use crate::therapy::exercises::{default_exercises, Catalogue};
    use crate::therapy::resources::default_crisis_resources;

    /// Runs each call for a player of the guide, on a fresh store.
    fn calls(list: &[(&str, &str)]) -> (Vec<ToolOutcome>, Vec<Element>) {
        actix_rt::System::new().block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let mut shared = super::super::tests::shared_for_tests(
                Arc::new(BuiltinAssistant::new(10)),
                dir.path(),
            );
            shared.exercises = Arc::new(Catalogue::new(default_exercises()));
            shared.resources = Arc::new(default_crisis_resources());
            let player = PlayerId::parse("tool-user").unwrap();
            let allowed: Vec<String> = [
                "suggest_exercise",
                "list_progress",
                "find_resources",
                "share_summary",
            ]
            .map(String::from)
            .to_vec();
            let session = SessionId::generate();
            let context = ToolContext {
                shared: &shared,
                player: &player,
                session: &session,
                approved: false,
            };
            let mut elements = Vec::new();
            let mut outcomes = Vec::new();
            for (name, arguments) in list {
                outcomes.push(match check(&allowed, name, arguments) {
                    Ok(call) => run(&context, call, &mut elements).await,
                    Err(failure) => failure,
                });
            }
            (outcomes, elements)
        })
    }

    #[test]
    fn an_exercise_is_offered_once_however_often_it_is_suggested() {
        let (outcomes, elements) = calls(&[
            ("suggest_exercise", r#"{"exercise_id":"ex_grounding"}"#),
            ("suggest_exercise", r#"{"exercise_id":"ex_grounding"}"#),
            ("suggest_exercise", r#"{"exercise_id":"ex_juggling"}"#),
        ]);
        assert!(outcomes[0].ok && outcomes[1].ok);
        assert_eq!(outcomes[0].summary, "offered 5-4-3-2-1 grounding");
        assert!(!outcomes[2].ok);
        assert!(
            outcomes[2].summary.contains("ex_breathing, ex_grounding"),
            "{:?}",
            outcomes[2]
        );
        assert_eq!(
            elements,
            [Element::Button {
                id: "ex_grounding".into(),
                label: "5-4-3-2-1 grounding".into()
            }]
        );
    }

    #[test]
    fn bad_calls_come_back_as_failed_calls() {
        let (outcomes, elements) = calls(&[
            ("launch_rockets", "{}"),
            ("suggest_exercise", "{\"exercise_id\": "),
            ("suggest_exercise", "[1, 2]"),
            ("suggest_exercise", r#"{"exercise_id": 7}"#),
            ("find_resources", "{}"),
            ("share_summary", r#"{"note":"a good week"}"#),
        ]);
        for outcome in &outcomes {
            assert!(!outcome.ok, "{outcome:?}");
            let content: Value = serde_json::from_str(&outcome.content).unwrap();
            assert!(content["error"].is_string(), "{outcome:?}");
        }
        assert!(outcomes[0].summary.contains("no tool"));
        assert!(outcomes[1].summary.contains("not a JSON object"));
        assert!(outcomes[3].summary.contains("exercise_id"));
        assert!(elements.is_empty());
    }

    #[test]
    fn resources_and_progress_are_read() {
        let (outcomes, elements) = calls(&[
            ("find_resources", r#"{"topic":"substance abuse"}"#),
            ("list_progress", ""),
        ]);
        assert!(outcomes[0].ok, "{:?}", outcomes[0]);
        let found: Value = serde_json::from_str(&outcomes[0].content).unwrap();
        let ids: Vec<&str> = found["resources"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|r| r["id"].as_str())
            .collect();
        assert!(ids.contains(&"samhsa_helpline"), "{ids:?}");
        assert_eq!(elements.len(), ids.len(), "each one shown once");
        assert!(outcomes[1].ok);
        assert_eq!(outcomes[1].summary, "read 0 progress markers");
    }
}
