//! A model-backed assistant: any server that speaks the OpenAI
//! chat-completions API with `stream: true` (OpenAI, Ollama, vLLM, the
//! llama.cpp server, LM Studio). A reply is one POST to
//! `{base_url}/chat/completions`; the answer is an event stream whose
//! events each carry a JSON chunk, ending with `data: [DONE]`.
//!
//! The reply stream does all the work when it is polled, on the thread
//! that polls it: nothing runs before, and dropping the stream drops the
//! request and its connection, which is how a reply is cancelled. Each
//! failure says why ([`ModelError`]) and whether text had already been
//! yielded, so that the caller can tell a reply it may still make another
//! way from one the player has partly seen.
//!
//! The player's profile (recommendations, feedback) is the built-in
//! assistant's: the domain rules do not change with who writes the words.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use awc::error::{PayloadError, SendRequestError};
use awc::http::header::{self, HeaderValue};
use awc::http::Uri;
use bytes::Bytes;
use futures_util::{FutureExt, Stream, StreamExt};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::sync::oneshot;
use tokio::time::{timeout_at, Instant};

use crate::assistant::builtin::BuiltinAssistant;
use crate::assistant::prompt::{self, PromptMessage, Situation};
use crate::assistant::sse::{SseError, SseParser};
use crate::assistant::tools::{self, ToolInfo};
use crate::assistant::{
    Assistant, AssistantError, FeedbackInput, FeedbackOutcome, FinishReason, ModelError, ReplyDone,
    ReplyEvent, ReplyStream, ToolOutcome, ToolRequest, Turn, Usage,
};
use crate::therapy::recommendations::Recommendation;

/// The most one event of the stream may hold. A chunk carries a few
/// tokens; anything near this is not a chat-completions stream.
pub const MAX_EVENT_BYTES: usize = 1 << 20;

/// The most of an error answer's body that is read, for its message.
const MAX_ERROR_BODY: usize = 64 << 10;

/// How much of what a server said about a failure is kept.
const DETAIL_CHARS: usize = 300;

/// Model requests one reply may make: the first, and one after each step
/// of tool calls; the last offers no tools, so the model answers in words.
pub const MAX_MODEL_STEPS: u32 = 4;

/// Tool calls one step may make; more are dropped.
const MAX_CALLS_PER_STEP: usize = 8;

/// The most of one call's arguments, and of its name, that is kept.
const MAX_ARGUMENT_BYTES: usize = 64 << 10;
const MAX_NAME_BYTES: usize = 128;

/// One tool call as its fragments arrive.
#[derive(Debug, Default, Clone)]
struct PendingCall {
    id: String,
    name: String,
    arguments: String,
}

/// How many players' profiles are kept when none are shared in.
const DEFAULT_TRACKED_PLAYERS: usize = 10_000;

/// Where the model is and how it is asked.
#[derive(Clone)]
pub struct OpenAiSettings {
    /// The API's root, e.g. `https://api.openai.com/v1` or
    /// `http://127.0.0.1:11434/v1`; `/chat/completions` is appended.
    pub base_url: String,
    pub model: String,
    /// Sent as a bearer token; local servers often need none.
    pub api_key: Option<String>,
    /// How long the first piece may take, counted from the request
    /// (connecting included); after it, how long the stream may go quiet.
    pub timeout: Duration,
    pub max_tokens: Option<u32>,
    pub temperature: Option<f32>,
}

impl fmt::Debug for OpenAiSettings {
    // By hand, so that the key never reaches a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiSettings")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .field("max_tokens", &self.max_tokens)
            .field("temperature", &self.temperature)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SettingsError {
    #[error("the assistant's base_url must be an http:// or https:// URL with a host")]
    BaseUrl,
    #[error("the assistant's model must not be empty")]
    Model,
    #[error("the assistant's API key holds characters a header cannot carry")]
    ApiKey,
    #[error("the assistant's timeout must be above zero")]
    Timeout,
    #[error("the TLS settings were refused: {0}")]
    Tls(String),
}

/// What every reply of one assistant shares.
struct Endpoint {
    url: Uri,
    model: String,
    /// `Bearer <key>`, marked sensitive so that it is never printed.
    authorization: Option<HeaderValue>,
    timeout: Duration,
    max_tokens: Option<u32>,
    temperature: Option<f32>,
    /// Only for an https URL.
    tls: Option<Arc<rustls::ClientConfig>>,
}

/// The assistant backed by a chat-completions server.
pub struct OpenAiAssistant {
    /// Tells this assistant's client apart in each thread's cache.
    id: u64,
    endpoint: Arc<Endpoint>,
    profiles: Arc<BuiltinAssistant>,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

impl OpenAiAssistant {
    /// Checks the settings; nothing is sent until the first reply.
    pub fn new(settings: OpenAiSettings) -> Result<Self, SettingsError> {
        let base = settings.base_url.trim_end_matches('/');
        let url: Uri = format!("{base}/chat/completions")
            .parse()
            .map_err(|_| SettingsError::BaseUrl)?;
        let https = match url.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(SettingsError::BaseUrl),
        };
        if url.host().is_none_or(str::is_empty) {
            return Err(SettingsError::BaseUrl);
        }
        if settings.model.trim().is_empty() {
            return Err(SettingsError::Model);
        }
        if settings.timeout.is_zero() {
            return Err(SettingsError::Timeout);
        }
        let authorization = match &settings.api_key {
            Some(key) => {
                let mut value = HeaderValue::from_str(&format!("Bearer {key}"))
                    .map_err(|_| SettingsError::ApiKey)?;
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        let tls = if https { Some(tls_config()?) } else { None };
        Ok(OpenAiAssistant {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            endpoint: Arc::new(Endpoint {
                url,
                model: settings.model,
                authorization,
                timeout: settings.timeout,
                max_tokens: settings.max_tokens,
                temperature: settings.temperature,
                tls,
            }),
            profiles: Arc::new(BuiltinAssistant::new(DEFAULT_TRACKED_PLAYERS)),
        })
    }

    /// One answer to `messages`, whole rather than streamed: for short
    /// questions (the safety second opinion) whose answer is read at once.
    /// The whole exchange is bounded by the timeout.
    pub async fn complete(&self, messages: &[PromptMessage<'_>]) -> Result<String, ModelError> {
        let messages: Vec<WireMessage> = messages.iter().cloned().map(WireMessage::from).collect();
        let request = ChatRequest {
            model: &self.endpoint.model,
            messages: &messages,
            tools: &[],
            stream: false,
            stream_options: None,
            max_tokens: self.endpoint.max_tokens,
            temperature: self.endpoint.temperature,
        };
        let request = Bytes::from(serde_json::to_vec(&request).unwrap_or_default());
        let timeout = self.endpoint.timeout;
        let deadline = Instant::now() + timeout;
        let exchange = async {
            let mut body = post(
                self.id,
                &self.endpoint,
                request,
                deadline,
                "application/json",
            )
            .await?;
            let mut read = Vec::new();
            while let Some(bytes) = body.next().await {
                let bytes = bytes.map_err(|err| ModelError::Closed {
                    error: Some(err.to_string()),
                })?;
                if read.len() + bytes.len() > MAX_EVENT_BYTES {
                    return Err(ModelError::Oversized(MAX_EVENT_BYTES));
                }
                read.extend_from_slice(&bytes);
            }
            let answer: Completion = serde_json::from_slice(&read)
                .map_err(|err| ModelError::Malformed(err.to_string()))?;
            answer
                .choices
                .into_iter()
                .next()
                .and_then(|choice| choice.message.content)
                .filter(|text| !text.trim().is_empty())
                .ok_or(ModelError::Empty)
        };
        timeout_at(deadline, exchange)
            .await
            .unwrap_or(Err(ModelError::Timeout(timeout)))
    }

    /// Keeps players' profiles in `profiles`, shared with the built-in
    /// assistant that answers when the model cannot.
    pub fn with_profiles(mut self, profiles: Arc<BuiltinAssistant>) -> Self {
        self.profiles = profiles;
        self
    }
}

/// Verifies servers against webpki's roots, so that a host without a
/// certificate store works the same; offers HTTP/2 and HTTP/1.1.
fn tls_config() -> Result<Arc<rustls::ClientConfig>, SettingsError> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    // The provider is named here rather than installed for the process:
    // nothing else in the server is affected.
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|err| SettingsError::Tls(err.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

impl Assistant for OpenAiAssistant {
    fn reply(&self, turn: &Turn<'_>) -> ReplyStream {
        let recommendations = self.profiles.note_turn(turn);
        let situation = Situation {
            crisis: turn.crisis.is_crisis(),
            anxious: turn.anxious,
        };
        let history: Vec<(prompt::Speaker, &str)> = turn
            .history
            .iter()
            .map(|(speaker, text)| (*speaker, text.as_str()))
            .collect();
        let messages: Vec<WireMessage> =
            prompt::messages(&history, turn.raw, situation, turn.instructions)
                .into_iter()
                .map(WireMessage::from)
                .collect();
        let tools: Vec<WireTool> = turn
            .tools
            .iter()
            .filter_map(|name| tools::find(name))
            .map(WireTool::of)
            .collect();
        let request = request_body(&self.endpoint, &messages, &tools);
        let reply = ModelReply {
            assistant: self.id,
            endpoint: self.endpoint.clone(),
            request: Some(request),
            messages,
            tools,
            steps: 1,
            calls: Vec::new(),
            step_text: String::new(),
            to_run: VecDeque::new(),
            awaiting: None,
            continue_after_tools: false,
            body: None,
            deadline: None,
            parser: SseParser::new(MAX_EVENT_BYTES),
            events: VecDeque::new(),
            yielded: false,
            finish_reason: None,
            usage: Usage::default(),
            recommendations,
            ended: false,
        };
        Box::pin(futures_util::stream::unfold(
            reply,
            |mut reply| async move {
                let event = reply.next_event().await?;
                Some((event, reply))
            },
        ))
    }

    fn feedback(&self, input: &FeedbackInput<'_>) -> FeedbackOutcome {
        self.profiles.feedback(input)
    }
}

/// One message of the conversation as a request carries it. Owned: each
/// tool step adds the model's calls and their results to it.
#[derive(Debug, Clone, Serialize)]
struct WireMessage {
    role: &'static str,
    /// `null` on a model's message that only calls tools.
    content: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<WireToolCall>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<String>,
}

impl From<PromptMessage<'_>> for WireMessage {
    fn from(message: PromptMessage<'_>) -> Self {
        WireMessage {
            role: match message.role {
                prompt::Speaker::System => "system",
                prompt::Speaker::User => "user",
                prompt::Speaker::Assistant => "assistant",
            },
            content: Some(message.content.into_owned()),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
struct WireToolCall {
    id: String,
    #[serde(rename = "type")]
    kind: &'static str,
    function: WireFunction,
}

#[derive(Debug, Clone, Serialize)]
struct WireFunction {
    name: String,
    arguments: String,
}

/// A tool as the model is offered it.
#[derive(Debug, Clone, Serialize)]
struct WireTool {
    #[serde(rename = "type")]
    kind: &'static str,
    function: WireToolSpec,
}

#[derive(Debug, Clone, Serialize)]
struct WireToolSpec {
    name: &'static str,
    description: &'static str,
    parameters: serde_json::Value,
}

impl WireTool {
    fn of(tool: &ToolInfo) -> Self {
        WireTool {
            kind: "function",
            function: WireToolSpec {
                name: tool.name,
                description: tool.description,
                parameters: tools::parameters(tool.name),
            },
        }
    }
}

#[derive(Serialize)]
struct ChatRequest<'a> {
    model: &'a str,
    messages: &'a [WireMessage],
    #[serde(skip_serializing_if = "<[WireTool]>::is_empty")]
    tools: &'a [WireTool],
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
}

/// Asks for the usage chunk before `[DONE]`.
#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

fn request_body(endpoint: &Endpoint, messages: &[WireMessage], tools: &[WireTool]) -> Bytes {
    let request = ChatRequest {
        model: &endpoint.model,
        messages,
        tools,
        stream: true,
        stream_options: Some(StreamOptions {
            include_usage: true,
        }),
        max_tokens: endpoint.max_tokens,
        temperature: endpoint.temperature,
    };
    // Strings, numbers, enums and JSON values: serialising cannot fail.
    Bytes::from(serde_json::to_vec(&request).unwrap_or_default())
}

/// One event's JSON, as far as a reply needs it; everything else in it
/// is ignored.
#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Option<Vec<Choice>>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

#[derive(Deserialize, Default)]
struct Choice {
    #[serde(default)]
    delta: Option<Delta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

/// A whole (not streamed) answer, as far as `complete` reads it.
#[derive(Deserialize)]
struct Completion {
    #[serde(default)]
    choices: Vec<CompletionChoice>,
}

#[derive(Deserialize)]
struct CompletionChoice {
    message: CompletionMessage,
}

#[derive(Deserialize)]
struct CompletionMessage {
    #[serde(default)]
    content: Option<String>,
}

#[derive(Deserialize, Default)]
struct Delta {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<ToolCallDelta>>,
}

/// A fragment of a tool call: the first of a call names its id and
/// function, the rest carry more of the arguments' text.
#[derive(Debug, Default, PartialEq, Deserialize)]
struct ToolCallDelta {
    #[serde(default)]
    index: Option<usize>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<FunctionDelta>,
}

#[derive(Debug, Default, PartialEq, Deserialize)]
struct FunctionDelta {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

#[derive(Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: Option<u32>,
    #[serde(default)]
    completion_tokens: Option<u32>,
}

/// What one event tells the reply.
#[derive(Debug, PartialEq)]
enum Decoded {
    /// The stream's end marker.
    Done,
    /// A chunk: any of a piece of text, fragments of tool calls, a finish
    /// reason, the usage.
    Chunk {
        text: Option<String>,
        tool_calls: Vec<ToolCallDelta>,
        finish_reason: Option<FinishReason>,
        usage: Option<Usage>,
    },
}

fn decode(data: &str) -> Result<Decoded, ModelError> {
    if data.trim() == "[DONE]" {
        return Ok(Decoded::Done);
    }
    // serde_json's messages name a position, never the content.
    let chunk: Chunk =
        serde_json::from_str(data).map_err(|err| ModelError::Malformed(err.to_string()))?;
    if let Some(error) = chunk.error.filter(|error| !error.is_null()) {
        return Err(ModelError::Remote {
            detail: detail_of_value(&error),
        });
    }
    // A chunk with no choice, or a choice with no delta, carries nothing.
    let choice = chunk
        .choices
        .and_then(|choices| choices.into_iter().next())
        .unwrap_or_default();
    let delta = choice.delta.unwrap_or_default();
    Ok(Decoded::Chunk {
        text: delta.content.filter(|text| !text.is_empty()),
        tool_calls: delta.tool_calls.unwrap_or_default(),
        finish_reason: choice.finish_reason.as_deref().map(FinishReason::parse),
        usage: chunk.usage.map(|usage| Usage {
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
        }),
    })
}

type Body = Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>>;

/// Sends `request`; the response's body once the status is 2xx.
async fn post(
    assistant: u64,
    endpoint: &Endpoint,
    request: Bytes,
    deadline: Instant,
    accept: &'static str,
) -> Result<Body, ModelError> {
    let client = client_for(assistant, endpoint);
    let mut call = client
        .post(endpoint.url.clone())
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .insert_header((header::ACCEPT, accept));
    if let Some(authorization) = &endpoint.authorization {
        call = call.insert_header((header::AUTHORIZATION, authorization.clone()));
    }
    let mut response = call.send_body(request).await.map_err(|err| match err {
        SendRequestError::Connect(err) => ModelError::Connect(err.to_string()),
        SendRequestError::Url(err) => ModelError::Connect(err.to_string()),
        SendRequestError::Timeout => ModelError::Timeout(endpoint.timeout),
        SendRequestError::Response(err) => ModelError::Malformed(err.to_string()),
        other => ModelError::Closed {
            error: Some(other.to_string()),
        },
    })?;
    let status = response.status();
    if status.is_success() {
        return Ok(Box::pin(response));
    }
    let retry_after = response
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    // The status matters more than its explanation: reading that is
    // bounded by the same deadline, and given up on at it.
    let detail = match timeout_at(deadline, response.body().limit(MAX_ERROR_BODY)).await {
        Ok(Ok(body)) => detail_of(&body),
        _ => String::new(),
    };
    Err(ModelError::Status {
        status: status.as_u16(),
        retry_after,
        detail,
    })
}

/// One reply being read. Dropping it drops the request or the response,
/// and with them the connection.
struct ModelReply {
    assistant: u64,
    endpoint: Arc<Endpoint>,
    /// Until it is sent.
    request: Option<Bytes>,
    /// The conversation so far, with each tool step's calls and results.
    messages: Vec<WireMessage>,
    /// The tools offered (the session's agent's).
    tools: Vec<WireTool>,
    /// Model requests made for this reply, the first included.
    steps: u32,
    /// The tool calls of the step being read, as their fragments arrive.
    calls: Vec<PendingCall>,
    /// The text of the step being read, for the conversation.
    step_text: String,
    /// Calls of the step just read, not yet handed out.
    to_run: VecDeque<PendingCall>,
    /// The call handed out, and where its outcome comes back.
    awaiting: Option<(String, oneshot::Receiver<ToolOutcome>)>,
    /// Once every call has its outcome, ask the model again.
    continue_after_tools: bool,
    /// Once the status was 2xx, until the reply ends.
    body: Option<Body>,
    /// When the first piece is due; set when the request goes out.
    deadline: Option<Instant>,
    parser: SseParser,
    /// Events read but not yet taken.
    events: VecDeque<String>,
    /// Some text has been yielded.
    yielded: bool,
    finish_reason: Option<FinishReason>,
    usage: Usage,
    recommendations: Vec<Recommendation>,
    ended: bool,
}

impl ModelReply {
    /// The next event, or `None` once `Done` or `Failed` was returned.
    async fn next_event(&mut self) -> Option<ReplyEvent> {
        loop {
            if self.ended {
                return None;
            }
            if let Some(call) = self.tool_step().await {
                return Some(call);
            }
            if self.request.is_none() && self.body.is_none() {
                // Nothing to send and nothing to read: cannot happen, but
                // must not spin.
                return Some(self.fail(ModelError::Closed { error: None }));
            }
            if let Some(event) = self.read_step().await {
                return Some(event);
            }
            // The step ended with tool calls: run them, then ask again.
        }
    }

    /// Hands out the step's tool calls one at a time, each after the one
    /// before has its outcome; once all have, the next request is made
    /// ready.
    async fn tool_step(&mut self) -> Option<ReplyEvent> {
        if let Some((call_id, outcome)) = self.awaiting.take() {
            let content = match outcome.await {
                Ok(outcome) => outcome.content,
                Err(_) => r#"{"error":"the tool did not run"}"#.to_string(),
            };
            self.messages.push(WireMessage {
                role: "tool",
                content: Some(content),
                tool_calls: Vec::new(),
                tool_call_id: Some(call_id),
            });
        }
        if let Some(call) = self.to_run.pop_front() {
            let (respond, outcome) = oneshot::channel();
            self.awaiting = Some((call.id.clone(), outcome));
            return Some(ReplyEvent::Tool(ToolRequest {
                call_id: call.id,
                name: call.name,
                arguments: call.arguments,
                respond,
            }));
        }
        if std::mem::take(&mut self.continue_after_tools) {
            self.steps += 1;
            // The last step offers no tools, so that the model answers.
            let offered: &[WireTool] = if self.steps < MAX_MODEL_STEPS {
                &self.tools
            } else {
                &[]
            };
            self.request = Some(request_body(&self.endpoint, &self.messages, offered));
        }
        None
    }

    /// Sends the request if one is ready, then reads the step's events up
    /// to the next event for the caller; `None` when the step ended with
    /// tool calls to run.
    async fn read_step(&mut self) -> Option<ReplyEvent> {
        let timeout = self.endpoint.timeout;
        if let Some(request) = self.request.take() {
            let deadline = Instant::now() + timeout;
            self.deadline = Some(deadline);
            match timeout_at(deadline, self.send(request, deadline)).await {
                Ok(Ok(body)) => self.body = Some(body),
                Ok(Err(reason)) => return Some(self.fail(reason)),
                Err(_) => return Some(self.fail(ModelError::Timeout(timeout))),
            }
        }
        loop {
            while let Some(data) = self.events.pop_front() {
                if let Some(event) = self.take(&data) {
                    return Some(event);
                }
            }
            // Until the first piece, one deadline for everything; after
            // it, a bound on each quiet spell.
            let (limit, late) = match self.deadline {
                Some(deadline) if !self.yielded => (deadline, ModelError::Timeout(timeout)),
                _ => (Instant::now() + timeout, ModelError::Stalled(timeout)),
            };
            let body = self.body.as_mut()?;
            match timeout_at(limit, body.next()).await {
                Err(_) => return Some(self.fail(late)),
                Ok(Some(Ok(bytes))) => {
                    if let Err(err) = self.parser.feed(&bytes, &mut self.events) {
                        return Some(self.fail(match err {
                            SseError::TooLong(limit) => ModelError::Oversized(limit),
                            SseError::NotUtf8 => ModelError::Malformed(err.to_string()),
                        }));
                    }
                }
                Ok(Some(Err(err))) => {
                    return Some(self.fail(ModelError::Closed {
                        error: Some(err.to_string()),
                    }))
                }
                // A clean end; an event without its blank line is dropped.
                Ok(None) => {
                    // An ended body must not be polled again (actix-http
                    // panics): it goes now.
                    self.body = None;
                    return match self.finish_reason {
                        Some(_) => self.step_end(),
                        None => Some(self.fail(ModelError::Closed { error: None })),
                    };
                }
            }
        }
    }

    async fn send(&self, request: Bytes, deadline: Instant) -> Result<Body, ModelError> {
        post(
            self.assistant,
            &self.endpoint,
            request,
            deadline,
            "text/event-stream",
        )
        .await
    }

    /// What one event means for the reply: a piece to yield, the end, or
    /// nothing yet.
    fn take(&mut self, data: &str) -> Option<ReplyEvent> {
        match decode(data) {
            Err(reason) => Some(self.fail(reason)),
            Ok(Decoded::Done) => self.step_end(),
            Ok(Decoded::Chunk {
                text,
                tool_calls,
                finish_reason,
                usage,
            }) => {
                if let Some(usage) = usage {
                    self.usage = self.usage.plus(usage);
                }
                if finish_reason.is_some() {
                    self.finish_reason = finish_reason;
                }
                for fragment in tool_calls {
                    self.add_fragment(fragment);
                }
                let text = text?;
                self.yielded = true;
                self.step_text.push_str(&text);
                Some(ReplyEvent::Text(text))
            }
        }
    }

    /// Joins one fragment to the call it continues. Bounded: past
    /// `MAX_CALLS_PER_STEP` calls or `MAX_ARGUMENT_BYTES` of one call's
    /// arguments, the rest is dropped (and the call's arguments then fail
    /// to parse, which the model is told).
    fn add_fragment(&mut self, fragment: ToolCallDelta) {
        let index = fragment.index.unwrap_or_else(|| match fragment.id {
            Some(_) => self.calls.len(),
            None => self.calls.len().saturating_sub(1),
        });
        if index >= MAX_CALLS_PER_STEP {
            return;
        }
        while self.calls.len() <= index {
            self.calls.push(PendingCall::default());
        }
        let call = &mut self.calls[index];
        if let Some(id) = fragment.id.filter(|id| !id.is_empty()) {
            if call.id.is_empty() {
                call.id = id;
            }
        }
        if let Some(function) = fragment.function {
            if let Some(name) = function.name {
                if call.name.len() + name.len() <= MAX_NAME_BYTES {
                    call.name.push_str(&name);
                }
            }
            if let Some(arguments) = function.arguments {
                if call.arguments.len() + arguments.len() <= MAX_ARGUMENT_BYTES {
                    call.arguments.push_str(&arguments);
                }
            }
        }
    }

    /// A step of the model's reply has ended: with tool calls (when steps
    /// remain), their turn; else the reply's end.
    fn step_end(&mut self) -> Option<ReplyEvent> {
        let calls = std::mem::take(&mut self.calls);
        if calls.is_empty() || self.steps >= MAX_MODEL_STEPS {
            return Some(self.finish());
        }
        self.body = None;
        self.events.clear();
        self.parser = SseParser::new(MAX_EVENT_BYTES);
        self.finish_reason = None;
        let calls: Vec<PendingCall> = calls
            .into_iter()
            .enumerate()
            .map(|(at, mut call)| {
                if call.id.is_empty() {
                    call.id = format!("call_{}_{at}", self.steps);
                }
                call
            })
            .collect();
        let content = std::mem::take(&mut self.step_text);
        self.messages.push(WireMessage {
            role: "assistant",
            content: (!content.is_empty()).then_some(content),
            tool_calls: calls
                .iter()
                .map(|call| WireToolCall {
                    id: call.id.clone(),
                    kind: "function",
                    function: WireFunction {
                        name: call.name.clone(),
                        arguments: call.arguments.clone(),
                    },
                })
                .collect(),
            tool_call_id: None,
        });
        self.to_run = calls.into();
        self.continue_after_tools = true;
        None
    }

    fn finish(&mut self) -> ReplyEvent {
        if !self.yielded {
            return self.fail(ModelError::Empty);
        }
        // What is already read of the body's end is taken, so that a
        // connection that ended cleanly goes back to the pool; nothing is
        // waited for.
        if let Some(body) = self.body.as_mut() {
            for _ in 0..4 {
                match body.next().now_or_never() {
                    Some(Some(Ok(_))) => continue,
                    _ => break,
                }
            }
        }
        self.end();
        ReplyEvent::Done(ReplyDone {
            recommendations: std::mem::take(&mut self.recommendations),
            usage: self.usage,
            finish_reason: self.finish_reason.take(),
            fallback: false,
        })
    }

    fn fail(&mut self, reason: ModelError) -> ReplyEvent {
        // The reason may hold what the server said: never above debug.
        log::debug!(after_first_piece = self.yielded, reason:?; "model_reply_failed");
        self.end();
        ReplyEvent::Failed(AssistantError::Model {
            reason,
            after_first_piece: self.yielded,
        })
    }

    fn end(&mut self) {
        self.ended = true;
        self.body = None;
        self.events.clear();
    }
}

/// What a server said about a failure, for debugging: the message of an
/// API error object when there is one, else the text; cut short.
fn detail_of(body: &[u8]) -> String {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(value) => detail_of_value(&value),
        Err(_) => cut(String::from_utf8_lossy(body).trim().to_string()),
    }
}

fn detail_of_value(value: &serde_json::Value) -> String {
    let error = value.get("error").unwrap_or(value);
    let message = match error {
        serde_json::Value::String(message) => Some(message.clone()),
        _ => error
            .get("message")
            .and_then(serde_json::Value::as_str)
            .map(str::to_string),
    };
    cut(message.unwrap_or_else(|| value.to_string()))
}

fn cut(mut text: String) -> String {
    if let Some((end, _)) = text.char_indices().nth(DETAIL_CHARS) {
        text.truncate(end);
    }
    text
}

/// A client of one assistant on this thread, made in one actix system.
struct ThreadClient {
    assistant: u64,
    system: usize,
    client: awc::Client,
}

thread_local! {
    // awc's client is bound to the thread, and the runtime, that made it.
    // Keeping one per thread lets the replies on a worker reuse its pooled
    // connections (and TLS sessions) instead of connecting each time.
    static CLIENTS: RefCell<Vec<ThreadClient>> = const { RefCell::new(Vec::new()) };
}

/// This thread's client for `assistant`; a client from an earlier actix
/// system on this thread holds dead connections and is replaced.
fn client_for(assistant: u64, endpoint: &Endpoint) -> awc::Client {
    let Some(system) = actix_rt::System::try_current().map(|system| system.id()) else {
        return new_client(endpoint);
    };
    CLIENTS.with(|clients| {
        let mut clients = clients.borrow_mut();
        if let Some(known) = clients
            .iter()
            .find(|known| known.assistant == assistant && known.system == system)
        {
            return known.client.clone();
        }
        clients.retain(|known| known.assistant != assistant);
        let client = new_client(endpoint);
        clients.push(ThreadClient {
            assistant,
            system,
            client: client.clone(),
        });
        client
    })
}

fn new_client(endpoint: &Endpoint) -> awc::Client {
    let mut connector = awc::Connector::new()
        // awc's own cap (100 by default) would queue replies past it
        // silently; the guard's permits bound the requests in flight.
        .limit(0)
        .timeout(endpoint.timeout)
        .handshake_timeout(endpoint.timeout);
    if let Some(tls) = &endpoint.tls {
        connector = connector.rustls_0_23(tls.clone());
    }
    awc::Client::builder()
        // The reply's own deadline bounds the wait for the first piece,
        // and the stream must stay open for as long as the model writes.
        .disable_timeout()
        // A redirect could carry the key to another host.
        .disable_redirects()
        .add_default_header((header::USER_AGENT, "hearth"))
        .connector(connector)
        .finish()
}

#[cfg(test)]
mod tests;
