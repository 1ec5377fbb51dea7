//! Agents: the assistant's configured personas (`[[assistant.agents]]`).
//! A session is bound to one agent, and its pillar, when it is created;
//! the agent's instructions join the system prompt of every reply in it,
//! and its tools are the ones a model may call there. `guide` is the
//! general companion every session gets unless it names another; each
//! pillar has a liaison, the agent of `/api/ws/liaison/{pillar}`.

use serde::{Deserialize, Serialize};

use crate::assistant::tools;

/// The agent of a session that names none.
pub const DEFAULT_AGENT: &str = crate::store::conversations::DEFAULT_AGENT;

/// The pillars an agent may serve; a liaison serves one.
pub const PILLARS: &[&str] = &["mindfulness", "sleep", "mood"];

/// One agent as configured and as `agents.list` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Agent {
    pub id: String,
    pub name: String,
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pillar: Option<String>,
    /// Joined to the system prompt of every reply in the agent's sessions.
    pub instructions: String,
    /// The tools a model may call in the agent's sessions.
    #[serde(default)]
    pub tools: Vec<String>,
}

/// The configured agents, checked: ids unique, `guide` present, pillars
/// and tools known, one liaison per pillar at most.
#[derive(Debug, Clone)]
pub struct Agents {
    list: Vec<Agent>,
}

impl Agents {
    /// Every problem at once, so that a config is fixed in one go.
    pub fn new(list: Vec<Agent>) -> Result<Self, Vec<String>> {
        let problems = problems(&list);
        if problems.is_empty() {
            Ok(Agents { list })
        } else {
            Err(problems)
        }
    }

    pub fn all(&self) -> &[Agent] {
        &self.list
    }

    pub fn get(&self, id: &str) -> Option<&Agent> {
        self.list.iter().find(|agent| agent.id == id)
    }

    /// The pillar's liaison: the agent that serves it.
    pub fn liaison(&self, pillar: &str) -> Option<&Agent> {
        self.list
            .iter()
            .find(|agent| agent.pillar.as_deref() == Some(pillar))
    }

    /// The agent and pillar a new session is bound to: the agent named, or
    /// else `default` (the connection's agent), or else `guide`, as the
    /// protocol's default is; the pillar named, or else the agent's own. A
    /// pillar that contradicts the agent's own is refused.
    pub fn bind<'a>(
        &'a self,
        agent: Option<&str>,
        pillar: Option<&str>,
        default: Option<&str>,
    ) -> Result<(&'a Agent, Option<String>), String> {
        if let Some(pillar) = pillar {
            if !PILLARS.contains(&pillar) {
                return Err(format!(
                    "no pillar {pillar:?}; the pillars are {}",
                    PILLARS.join(", ")
                ));
            }
        }
        let chosen = match agent {
            Some(id) => self
                .get(id)
                .ok_or_else(|| format!("no agent {id:?}; agents.list names them"))?,
            None => self.fallback(default),
        };
        match (&chosen.pillar, pillar) {
            (Some(own), Some(asked)) if own != asked => Err(format!(
                "agent {:?} serves the pillar {own:?}, not {asked:?}",
                chosen.id
            )),
            (own, asked) => Ok((chosen, asked.map(str::to_owned).or_else(|| own.clone()))),
        }
    }

    fn fallback(&self, default: Option<&str>) -> &Agent {
        default
            .and_then(|id| self.get(id))
            .or_else(|| self.get(DEFAULT_AGENT))
            // `new` makes sure `guide` is there.
            .unwrap_or(&self.list[0])
    }

    /// The shipped agents: the guide and one liaison per pillar.
    pub fn defaults() -> Vec<Agent> {
        let agent = |id: &str,
                     name: &str,
                     pillar: Option<&str>,
                     description: &str,
                     instructions: &str,
                     tools: &[&str]| Agent {
            id: id.into(),
            name: name.into(),
            description: description.into(),
            pillar: pillar.map(str::to_owned),
            instructions: instructions.into(),
            tools: tools.iter().map(|tool| tool.to_string()).collect(),
        };
        vec![
            agent(
                "guide",
                "Guide",
                None,
                "The general companion: listens, reflects, and suggests a small next step.",
                "You are the guide: a steady, general companion. Help the person name what they \
                 feel and find one small next step; point them to a liaison (mindfulness, sleep, \
                 mood) when their concern is mostly about one of those.",
                &[
                    "suggest_exercise",
                    "list_progress",
                    "find_resources",
                    "share_summary",
                ],
            ),
            agent(
                "mindfulness",
                "Mindfulness liaison",
                Some("mindfulness"),
                "Breathing, grounding and attention to the present moment.",
                "You are the mindfulness liaison. Offer short, concrete practices for the present \
                 moment (breathing, grounding, noticing the senses) and invite the person to try \
                 one now.",
                &["suggest_exercise", "list_progress", "find_resources"],
            ),
            agent(
                "sleep",
                "Sleep liaison",
                Some("sleep"),
                "Winding down, sleep routines and restless nights.",
                "You are the sleep liaison. Help with winding down and gentle sleep routines \
                 (a regular time, a calm hour before bed, what to do when sleep will not come); \
                 do not give medical or medication advice.",
                &["suggest_exercise", "list_progress", "find_resources"],
            ),
            agent(
                "mood",
                "Mood liaison",
                Some("mood"),
                "Low days, worry and noticing what lifts the mood.",
                "You are the mood liaison. Help the person notice patterns in their mood and \
                 small things that lift it; take low mood seriously and point to support when \
                 it persists.",
                &[
                    "suggest_exercise",
                    "list_progress",
                    "find_resources",
                    "share_summary",
                ],
            ),
        ]
    }
}

fn problems(list: &[Agent]) -> Vec<String> {
    let mut problems = Vec::new();
    if !list.iter().any(|agent| agent.id == DEFAULT_AGENT) {
        problems.push(format!(
            "assistant.agents must have an agent \"{DEFAULT_AGENT}\" (sessions that name none get it)"
        ));
    }
    for (at, agent) in list.iter().enumerate() {
        let here = format!("assistant.agents[{at}]");
        let id_ok = !agent.id.is_empty()
            && agent.id.len() <= 64
            && agent
                .id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if !id_ok {
            problems.push(format!(
                "{here}.id {:?} must be 1-64 characters of a-z, 0-9, _ and -",
                agent.id
            ));
        }
        if list[..at].iter().any(|earlier| earlier.id == agent.id) {
            problems.push(format!("{here}.id {:?} is used twice", agent.id));
        }
        if agent.name.trim().is_empty() {
            problems.push(format!("{here}.name must not be empty"));
        }
        if let Some(pillar) = &agent.pillar {
            if !PILLARS.contains(&pillar.as_str()) {
                problems.push(format!(
                    "{here}.pillar {pillar:?} is not one of {}",
                    PILLARS.join(", ")
                ));
            } else if list[..at]
                .iter()
                .any(|earlier| earlier.pillar.as_ref() == Some(pillar))
            {
                problems.push(format!("{here}.pillar {pillar:?} already has a liaison"));
            }
        }
        for tool in &agent.tools {
            if tools::find(tool).is_none() {
                let names: Vec<&str> = tools::TOOLS.iter().map(|tool| tool.name).collect();
                problems.push(format!(
                    "{here}.tools names {tool:?}; the tools are {}",
                    names.join(", ")
                ));
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agents() -> Agents {
        Agents::new(Agents::defaults()).expect("the defaults are valid")
    }

    #[test]
    fn the_defaults_are_the_guide_and_a_liaison_per_pillar() {
        let agents = agents();
        assert_eq!(agents.all()[0].id, "guide");
        for pillar in PILLARS {
            assert_eq!(agents.liaison(pillar).map(|a| a.id.as_str()), Some(*pillar));
        }
    }

    #[test]
    fn a_session_is_bound_to_the_agent_or_pillar_it_names() {
        let agents = agents();
        let bound = |agent, pillar, default| {
            agents
                .bind(agent, pillar, default)
                .map(|(agent, pillar)| (agent.id.clone(), pillar))
        };
        assert_eq!(bound(None, None, None), Ok(("guide".into(), None)));
        assert_eq!(
            bound(None, None, Some("sleep")),
            Ok(("sleep".into(), Some("sleep".into())))
        );
        assert_eq!(
            bound(None, Some("mood"), None),
            Ok(("guide".into(), Some("mood".into())))
        );
        assert_eq!(
            bound(Some("guide"), Some("sleep"), None),
            Ok(("guide".into(), Some("sleep".into())))
        );
        assert!(bound(Some("sleep"), Some("mood"), None).is_err());
        assert!(bound(Some("nobody"), None, None).is_err());
        assert!(bound(None, Some("cooking"), None).is_err());
    }

    #[test]
    fn every_problem_of_a_config_is_reported() {
        let mut list = Agents::defaults();
        list.remove(0);
        list[0].tools.push("launch_rockets".into());
        list[1].pillar = Some("mindfulness".into());
        list.push(list[2].clone());
        let problems = Agents::new(list).expect_err("invalid");
        assert_eq!(problems.len(), 5, "{problems:#?}");
    }
}
