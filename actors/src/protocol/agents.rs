//! The results of `agents.list`, `agents.get` and `tools.list`
//! (docs/protocol.md, section 10.4).

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
