//! The results of `agents.list`, `agents.get`, `tools.list`,
//! `tools.approve` and `tools.reject` (docs/protocol.md, section 10.4).

use serde::Serialize;

use crate::assistant::agents::Agent;
use crate::assistant::tools::ToolInfo;

/// `agents.list`: every configured agent, in configuration order.
#[derive(Debug, Clone, Serialize)]
pub struct AgentsResult {
    pub agents: Vec<Agent>,
}

/// `agents.get`.
#[derive(Debug, Clone, Serialize)]
pub struct AgentResult {
    pub agent: Agent,
}

/// `tools.list`: every tool Hearth has.
#[derive(Debug, Clone, Serialize)]
pub struct ToolsResult {
    pub tools: Vec<ToolInfo>,
}

/// `tools.approve` and `tools.reject`: the call now runs, or does not.
#[derive(Debug, Clone, Serialize)]
pub struct DecisionResult {
    pub call_id: String,
    pub approved: bool,
}
