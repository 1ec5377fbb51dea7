//! The methods of a v1.1 `request` frame (`{"type": "request", "id",
//! "method", "params"}`), each parsed once into a typed [`Call`] with its
//! limits checked, so that an actor receives only valid arguments. A bad
//! `params` is `bad_request`; a method nobody serves is `unknown_method`.
//! The `Conversations` actor answers every one of them.

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use crate::model::ids::SessionId;
use crate::protocol::errors::{ErrorCode, ErrorFrame};

/// How many sessions or messages one page holds at most, and by default.
pub const MAX_PAGE: usize = 100;
pub const DEFAULT_SESSIONS_PAGE: usize = 20;
/// How many recent messages `sessions.get` returns by default.
pub const DEFAULT_RECENT_MESSAGES: usize = 50;
/// A session title, an agent or pillar name, a cursor, a message id.
pub const MAX_NAME_CHARS: usize = 200;
/// A client's idempotency key, like a frame's `id`.
pub const MAX_CLIENT_MESSAGE_ID_CHARS: usize = 64;

#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    SessionsCreate {
        title: Option<String>,
        agent: Option<String>,
        pillar: Option<String>,
    },
    SessionsList {
        include_archived: bool,
        limit: usize,
        before: Option<String>,
    },
    SessionsGet {
        session_id: SessionId,
        messages: usize,
    },
    SessionsArchive {
        session_id: SessionId,
    },
    MessagesSend {
        session_id: SessionId,
        text: String,
        client_message_id: Option<String>,
    },
    MessagesCancel {
        session_id: SessionId,
        message_id: String,
    },
    MessagesRetry {
        session_id: SessionId,
        message_id: String,
    },
    MessagesList {
        session_id: SessionId,
        limit: usize,
        before: Option<String>,
    },
    AgentsList,
    AgentsGet {
        agent_id: String,
    },
    ToolsList,
    /// `tools.approve` (`approve: true`) and `tools.reject`.
    ToolsDecide {
        session_id: SessionId,
        call_id: String,
        approve: bool,
    },
}

impl Call {
    /// The method's name, for logs and metrics.
    pub fn method(&self) -> &'static str {
        match self {
            Call::SessionsCreate { .. } => "sessions.create",
            Call::SessionsList { .. } => "sessions.list",
            Call::SessionsGet { .. } => "sessions.get",
            Call::SessionsArchive { .. } => "sessions.archive",
            Call::MessagesSend { .. } => "messages.send",
            Call::MessagesCancel { .. } => "messages.cancel",
            Call::MessagesRetry { .. } => "messages.retry",
            Call::MessagesList { .. } => "messages.list",
            Call::AgentsList => "agents.list",
            Call::AgentsGet { .. } => "agents.get",
            Call::ToolsList => "tools.list",
            Call::ToolsDecide { approve: true, .. } => "tools.approve",
            Call::ToolsDecide { approve: false, .. } => "tools.reject",
        }
    }
}

#[derive(Deserialize)]
struct CreateParams {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    agent: Option<String>,
    #[serde(default)]
    pillar: Option<String>,
}

#[derive(Deserialize)]
struct ListSessionsParams {
    #[serde(default)]
    include_archived: bool,
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    before: Option<String>,
}

#[derive(Deserialize)]
struct GetParams {
    session_id: SessionId,
    #[serde(default)]
    messages: Option<usize>,
}

#[derive(Deserialize)]
struct SessionParams {
    session_id: SessionId,
}

#[derive(Deserialize)]
struct SendParams {
    session_id: SessionId,
    text: String,
    #[serde(default)]
    client_message_id: Option<String>,
}

#[derive(Deserialize)]
struct MessageParams {
    session_id: SessionId,
    message_id: String,
}

#[derive(Deserialize)]
struct ListMessagesParams {
    session_id: SessionId,
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    before: Option<String>,
}

#[derive(Deserialize)]
struct NoParams {}

#[derive(Deserialize)]
struct DecideParams {
    session_id: SessionId,
    call_id: String,
}

#[derive(Deserialize)]
struct AgentParams {
    agent_id: String,
}

/// Parses `params` (absent is `{}`) for `method`. `max_text_chars` is the
/// same limit a v1 `user_message` has.
pub fn parse_call(method: &str, params: Value, max_text_chars: usize) -> Result<Call, ErrorFrame> {
    let params = match params {
        Value::Null => Value::Object(Default::default()),
        Value::Object(object) => Value::Object(object),
        _ => return Err(bad("params must be an object")),
    };
    let call = match method {
        "sessions.create" => {
            let p: CreateParams = typed(params)?;
            Call::SessionsCreate {
                title: optional_name("title", p.title)?,
                agent: optional_name("agent", p.agent)?,
                pillar: optional_name("pillar", p.pillar)?,
            }
        }
        "sessions.list" => {
            let p: ListSessionsParams = typed(params)?;
            Call::SessionsList {
                include_archived: p.include_archived,
                limit: page("limit", p.limit, DEFAULT_SESSIONS_PAGE)?,
                before: optional_name("before", p.before)?,
            }
        }
        "sessions.get" => {
            let p: GetParams = typed(params)?;
            Call::SessionsGet {
                session_id: p.session_id,
                messages: page("messages", p.messages, DEFAULT_RECENT_MESSAGES)?,
            }
        }
        "sessions.archive" => {
            let p: SessionParams = typed(params)?;
            Call::SessionsArchive {
                session_id: p.session_id,
            }
        }
        "messages.send" => {
            let p: SendParams = typed(params)?;
            let chars = p.text.chars().count();
            if p.text.trim().is_empty() {
                return Err(bad("text must not be empty"));
            }
            if chars > max_text_chars {
                return Err(ErrorFrame::new(
                    ErrorCode::TooLarge,
                    format!("text is {chars} characters; the limit is {max_text_chars}"),
                ));
            }
            if let Some(key) = &p.client_message_id {
                if key.is_empty() || key.chars().count() > MAX_CLIENT_MESSAGE_ID_CHARS {
                    return Err(bad(format!(
                        "client_message_id must be 1-{MAX_CLIENT_MESSAGE_ID_CHARS} characters"
                    )));
                }
            }
            Call::MessagesSend {
                session_id: p.session_id,
                text: p.text,
                client_message_id: p.client_message_id,
            }
        }
        "messages.cancel" | "messages.retry" => {
            let p: MessageParams = typed(params)?;
            let message_id = required_name("message_id", p.message_id)?;
            if method == "messages.cancel" {
                Call::MessagesCancel {
                    session_id: p.session_id,
                    message_id,
                }
            } else {
                Call::MessagesRetry {
                    session_id: p.session_id,
                    message_id,
                }
            }
        }
        "messages.list" => {
            let p: ListMessagesParams = typed(params)?;
            Call::MessagesList {
                session_id: p.session_id,
                limit: page("limit", p.limit, DEFAULT_SESSIONS_PAGE)?,
                before: optional_name("before", p.before)?,
            }
        }
        "agents.list" | "tools.list" => {
            let _: NoParams = typed(params)?;
            if method == "agents.list" {
                Call::AgentsList
            } else {
                Call::ToolsList
            }
        }
        "tools.approve" | "tools.reject" => {
            let p: DecideParams = typed(params)?;
            Call::ToolsDecide {
                session_id: p.session_id,
                call_id: required_name("call_id", p.call_id)?,
                approve: method == "tools.approve",
            }
        }
        "agents.get" => {
            let p: AgentParams = typed(params)?;
            Call::AgentsGet {
                agent_id: required_name("agent_id", p.agent_id)?,
            }
        }
        other => {
            let shown: String = other.chars().take(64).collect();
            return Err(ErrorFrame::new(
                ErrorCode::UnknownMethod,
                format!("unknown method {shown:?}"),
            ));
        }
    };
    Ok(call)
}

fn bad(message: impl Into<String>) -> ErrorFrame {
    ErrorFrame::new(ErrorCode::BadRequest, message)
}

fn typed<T: DeserializeOwned>(params: Value) -> Result<T, ErrorFrame> {
    serde_json::from_value(params).map_err(|err| bad(format!("params: {err}")))
}

fn page(what: &str, given: Option<usize>, default: usize) -> Result<usize, ErrorFrame> {
    match given {
        None => Ok(default),
        Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        Some(n) => Err(bad(format!("{what} must be 1-{MAX_PAGE}, not {n}"))),
    }
}

fn required_name(what: &str, value: String) -> Result<String, ErrorFrame> {
    if value.is_empty() || value.chars().count() > MAX_NAME_CHARS {
        return Err(bad(format!("{what} must be 1-{MAX_NAME_CHARS} characters")));
    }
    Ok(value)
}

fn optional_name(what: &str, value: Option<String>) -> Result<Option<String>, ErrorFrame> {
    value.map(|value| required_name(what, value)).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn call(method: &str, params: Value) -> Result<Call, ErrorFrame> {
        parse_call(method, params, 4000)
    }

    fn code(method: &str, params: Value) -> ErrorCode {
        match call(method, params) {
            Ok(call) => panic!("{method} parsed as {call:?}"),
            Err(err) => err.code,
        }
    }

    #[test]
    fn every_method_parses_with_its_defaults() {
        assert_eq!(
            call("sessions.create", Value::Null).unwrap(),
            Call::SessionsCreate {
                title: None,
                agent: None,
                pillar: None
            }
        );
        assert_eq!(
            call("sessions.list", json!({})).unwrap(),
            Call::SessionsList {
                include_archived: false,
                limit: 20,
                before: None
            }
        );
        let session_id = SessionId::parse("sess_1").unwrap();
        assert_eq!(
            call("sessions.get", json!({"session_id": "sess_1"})).unwrap(),
            Call::SessionsGet {
                session_id: session_id.clone(),
                messages: 50
            }
        );
        assert_eq!(
            call(
                "messages.send",
                json!({"session_id": "sess_1", "text": "hi", "client_message_id": "c1"})
            )
            .unwrap(),
            Call::MessagesSend {
                session_id: session_id.clone(),
                text: "hi".into(),
                client_message_id: Some("c1".into())
            }
        );
        assert_eq!(
            call(
                "messages.retry",
                json!({"session_id": "sess_1", "message_id": "msg_1"})
            )
            .unwrap()
            .method(),
            "messages.retry"
        );
        assert_eq!(
            call(
                "messages.list",
                json!({"session_id": "sess_1", "limit": 100, "before": "c9"})
            )
            .unwrap(),
            Call::MessagesList {
                session_id,
                limit: 100,
                before: Some("c9".into())
            }
        );
    }

    #[test]
    fn bad_params_get_the_codes_of_the_contract() {
        assert_eq!(code("sessions.dance", json!({})), ErrorCode::UnknownMethod);
        assert_eq!(code("sessions.create", json!([1])), ErrorCode::BadRequest);
        assert_eq!(code("sessions.get", json!({})), ErrorCode::BadRequest);
        assert_eq!(
            code("sessions.get", json!({"session_id": "a b"})),
            ErrorCode::BadRequest
        );
        assert_eq!(
            code("sessions.list", json!({"limit": 101})),
            ErrorCode::BadRequest
        );
        assert_eq!(
            code("sessions.list", json!({"limit": 0})),
            ErrorCode::BadRequest
        );
        assert_eq!(
            code("messages.send", json!({"session_id": "s", "text": "  "})),
            ErrorCode::BadRequest
        );
        assert_eq!(
            code(
                "messages.send",
                json!({"session_id": "s", "text": "a".repeat(4001)})
            ),
            ErrorCode::TooLarge
        );
        assert_eq!(
            code(
                "messages.send",
                json!({"session_id": "s", "text": "hi", "client_message_id": "x".repeat(65)})
            ),
            ErrorCode::BadRequest
        );
        assert_eq!(
            code(
                "messages.cancel",
                json!({"session_id": "s", "message_id": ""})
            ),
            ErrorCode::BadRequest
        );
        assert_eq!(
            code(
                "sessions.create",
                json!({"title": "t".repeat(MAX_NAME_CHARS + 1)})
            ),
            ErrorCode::BadRequest
        );
    }

    #[test]
    fn a_text_of_exactly_the_limit_passes() {
        let text = "é".repeat(4000);
        assert!(call("messages.send", json!({"session_id": "s", "text": text})).is_ok());
    }
}
