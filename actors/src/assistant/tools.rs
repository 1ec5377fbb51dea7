//! Hearth's own tools, which a model may call in the sessions of an agent
//! that lists them (`tools.list` shows them all). Each has a JSON schema
//! for its arguments, as the chat-completions tool protocol wants one.

use serde::Serialize;
use serde_json::{json, Value};

/// One tool as `tools.list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ToolInfo {
    pub name: &'static str,
    pub description: &'static str,
    /// The player must approve each call before it runs.
    pub requires_approval: bool,
}

pub const TOOLS: &[ToolInfo] = &[
    ToolInfo {
        name: "suggest_exercise",
        description: "Offer the person a guided exercise: adds its start button to the reply.",
        requires_approval: false,
    },
    ToolInfo {
        name: "list_progress",
        description: "Read the person's progress markers (completed exercises and milestones).",
        requires_approval: false,
    },
    ToolInfo {
        name: "find_resources",
        description: "Find support resources for a topic (crisis lines, helplines).",
        requires_approval: false,
    },
    ToolInfo {
        name: "share_summary",
        description: "Publish a short note to the person's own channel, where their other devices and apps see it.",
        requires_approval: true,
    },
];

/// The longest note `share_summary` publishes, in characters.
pub const MAX_NOTE_CHARS: usize = 1000;

pub fn find(name: &str) -> Option<&'static ToolInfo> {
    TOOLS.iter().find(|tool| tool.name == name)
}

/// The JSON schema of a tool's arguments.
pub fn parameters(name: &str) -> Value {
    match name {
        "suggest_exercise" => json!({
            "type": "object",
            "properties": {"exercise_id": {"type": "string", "description": "e.g. ex_breathing or ex_grounding"}},
            "required": ["exercise_id"],
            "additionalProperties": false
        }),
        "find_resources" => json!({
            "type": "object",
            "properties": {"topic": {"type": "string"}},
            "required": ["topic"],
            "additionalProperties": false
        }),
        "share_summary" => json!({
            "type": "object",
            "properties": {"note": {"type": "string", "maxLength": MAX_NOTE_CHARS}},
            "required": ["note"],
            "additionalProperties": false
        }),
        _ => json!({"type": "object", "properties": {}, "additionalProperties": false}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_has_an_object_schema() {
        for tool in TOOLS {
            assert_eq!(parameters(tool.name)["type"], "object", "{}", tool.name);
        }
        assert_eq!(
            TOOLS.iter().filter(|tool| tool.requires_approval).count(),
            1
        );
    }
}
