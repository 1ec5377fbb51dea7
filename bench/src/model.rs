//! A fake OpenAI-compatible model for the `assistant` scenario: plain
//! HTTP/1.1 on loopback, `POST /v1/chat/completions` with `stream: true`
//! answered by numbered tokens at a fixed rate, as server-sent events in
//! chunked framing on a keep-alive connection.
//!
//! It runs in the load generator's own process so that the time each token
//! left it and the time a client read it come from one clock: the gap is
//! what Hearth added.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::{find, number_after, BenchResult};

/// What a request head may take; anything longer is not Hearth's client.
const MAX_HEAD: usize = 64 * 1024;
/// What a request body may take: a prompt of a few turns fits many times.
const MAX_BODY: usize = 4 * 1024 * 1024;

/// Put by the bench in the text it sends; its number says which bench
/// session a model request serves.
pub const MARKER: &str = "bench-session-";

pub struct ModelPlan {
    /// Tokens in each reply (fewer when the request's `max_tokens` says so).
    pub tokens: usize,
    /// Tokens per second; 0 or less streams them as fast as the socket takes them.
    pub rate: f64,
    /// One stderr line per request, for checking the model by hand.
    pub verbose: bool,
}

/// The tokens streamed for one bench session.
#[derive(Default)]
pub struct Emission {
    /// How many tokens this request will stream.
    pub planned: usize,
    /// When each token was handed to the socket, by token number.
    pub at: Vec<Instant>,
    /// The stream ended (all sent, or the client left).
    pub finished: bool,
}

#[derive(Default)]
pub struct ModelState {
    /// By bench session number.
    pub sessions: HashMap<usize, Emission>,
    pub requests: u64,
    /// Requests for a session that had one already: Hearth asked twice.
    pub repeated: u64,
    /// Requests with no marker in any user message.
    pub unmarked: u64,
    pub tokens: u64,
    /// The smallest `max_tokens` that cut a reply short, if any did.
    pub capped: Option<u64>,
}

pub type SharedModel = Rc<RefCell<ModelState>>;

/// Token `k` of bench session `session`. The session number lets a client
/// notice a reply routed to the wrong session; the `;` ends the token so a
/// delta that splits one is still read right.
pub fn token_text(session: Option<usize>, k: usize) -> String {
    match session {
        Some(i) => format!(" s{i}t{k};"),
        None => format!(" t{k};"),
    }
}

/// The (session, token) of one token's text without its `;`.
pub fn parse_token(text: &str) -> Option<(usize, usize)> {
    let (session, k) = text.trim().strip_prefix('s')?.split_once('t')?;
    Some((session.parse().ok()?, k.parse().ok()?))
}

pub async fn bind(port: u16) -> BenchResult<TcpListener> {
    TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| format!("fake model on 127.0.0.1:{port}: {e}"))
}

/// Accepts connections until `deadline`, each served on a task of its own.
pub async fn serve(
    listener: TcpListener,
    plan: Rc<ModelPlan>,
    state: SharedModel,
    deadline: Instant,
) {
    loop {
        let (stream, _) = match tokio::time::timeout_at(deadline.into(), listener.accept()).await {
            Ok(Ok(accepted)) => accepted,
            Ok(Err(err)) => {
                // Out of descriptors, usually: wait rather than spin.
                eprintln!("model: accept: {err}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
            Err(_) => return,
        };
        let plan = plan.clone();
        let state = state.clone();
        tokio::task::spawn_local(async move {
            let served =
                tokio::time::timeout_at(deadline.into(), connection(stream, plan.clone(), state))
                    .await;
            if let (true, Ok(Err(err))) = (plan.verbose, served) {
                eprintln!("model: connection: {err}");
            }
        });
    }
}

struct Request {
    method: String,
    path: String,
    body: Vec<u8>,
    /// The client asked to close after this response.
    close: bool,
}

/// Requests one after another on one connection, as a pooling client sends them.
async fn connection(
    mut stream: TcpStream,
    plan: Rc<ModelPlan>,
    state: SharedModel,
) -> BenchResult<()> {
    // Each token is its own small write; Nagle would hold it back.
    let _ = stream.set_nodelay(true);
    let mut buf = Vec::with_capacity(8 * 1024);
    while let Some(request) = read_request(&mut stream, &mut buf).await? {
        let path = request.path.split('?').next().unwrap_or_default();
        let keep = match (request.method.as_str(), path) {
            ("POST", "/v1/chat/completions") => {
                complete(&mut stream, &mut buf, &request, &plan, &state).await?
            }
            _ => {
                let body =
                    json!({"error": {"message": "not found", "type": "invalid_request_error"}});
                respond(&mut stream, "404 Not Found", &body, request.close).await?;
                true
            }
        };
        if !keep || request.close {
            break;
        }
    }
    Ok(())
}

/// The next request, or None when the client closed between requests.
/// Bytes read past it stay in `buf` for the next one.
async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> BenchResult<Option<Request>> {
    let head_end = loop {
        if let Some(at) = find(buf, b"\r\n\r\n") {
            break at + 4;
        }
        if buf.len() > MAX_HEAD {
            return Err("request head too long".into());
        }
        match stream.read_buf(buf).await {
            Ok(0) if buf.is_empty() => return Ok(None),
            Ok(0) => return Err("closed in the middle of a request".into()),
            Ok(_) => {}
            Err(err) => return Err(err.to_string()),
        }
    };
    let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| "request head not UTF-8")?;
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split(' ');
    let method = first.next().unwrap_or_default().to_string();
    let path = first.next().unwrap_or_default().to_string();
    let mut close = first.next() == Some("HTTP/1.0");
    let mut length = 0usize;
    let mut expect_continue = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => {
                length = value.parse().map_err(|_| "bad content-length")?;
            }
            "connection" => close = value.eq_ignore_ascii_case("close"),
            "expect" => expect_continue = value.eq_ignore_ascii_case("100-continue"),
            "transfer-encoding" if !value.eq_ignore_ascii_case("identity") => {
                // Hearth's client sends a sized body; a chunked one is not it.
                return Err("chunked request bodies are not supported".into());
            }
            _ => {}
        }
    }
    if length > MAX_BODY {
        return Err(format!("request body of {length} bytes"));
    }
    buf.drain(..head_end);
    if expect_continue && buf.len() < length {
        stream
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .await
            .map_err(|e| e.to_string())?;
    }
    while buf.len() < length {
        match stream.read_buf(buf).await {
            Ok(0) => return Err("closed in the middle of a request body".into()),
            Ok(_) => {}
            Err(err) => return Err(err.to_string()),
        }
    }
    let body = buf.drain(..length).collect();
    Ok(Some(Request {
        method,
        path,
        body,
        close,
    }))
}

async fn respond(
    stream: &mut TcpStream,
    status: &str,
    body: &Value,
    close: bool,
) -> BenchResult<()> {
    let body = body.to_string();
    let connection = if close { "connection: close\r\n" } else { "" };
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{connection}\r\n{body}",
        body.len()
    );
    stream
        .write_all(response.as_bytes())
        .await
        .map_err(|e| e.to_string())
}

/// What the fake model reads of a chat-completions request.
struct Prompt {
    session: Option<usize>,
    /// A rough count: four characters a token, as the usage chunk needs one.
    prompt_tokens: u64,
    max_tokens: Option<u64>,
}

fn content_text(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        // The array form: [{"type": "text", "text": "..."}, ...].
        Value::Array(parts) => parts
            .iter()
            .filter_map(|part| part["text"].as_str())
            .collect(),
        _ => String::new(),
    }
}

impl Prompt {
    fn read(body: &Value) -> Prompt {
        let messages = body["messages"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        let chars: usize = messages
            .iter()
            .map(|message| content_text(&message["content"]).len())
            .sum();
        // The newest user message with a marker is the one the bench sent;
        // the system prompt is not looked at, whatever it quotes.
        let session = messages
            .iter()
            .rev()
            .filter(|message| message["role"] == "user")
            .find_map(|message| number_after(&content_text(&message["content"]), MARKER))
            .and_then(|n| usize::try_from(n).ok());
        Prompt {
            session,
            prompt_tokens: (chars as u64 / 4).max(1),
            max_tokens: body["max_tokens"]
                .as_u64()
                .or_else(|| body["max_completion_tokens"].as_u64()),
        }
    }
}

/// Answers one chat-completions request. False when the client went away
/// and the connection should end.
async fn complete(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    request: &Request,
    plan: &ModelPlan,
    state: &SharedModel,
) -> BenchResult<bool> {
    let body: Value = match serde_json::from_slice(&request.body) {
        Ok(body) => body,
        Err(err) => {
            let body = json!({"error": {"message": format!("body: {err}"), "type": "invalid_request_error"}});
            respond(stream, "400 Bad Request", &body, request.close).await?;
            return Ok(true);
        }
    };
    if body["stream"] != Value::Bool(true) {
        let body = json!({"error": {"message": "this fake model only streams", "type": "invalid_request_error"}});
        respond(stream, "400 Bad Request", &body, request.close).await?;
        return Ok(true);
    }
    let prompt = Prompt::read(&body);
    let count = match prompt.max_tokens {
        Some(cap) if (cap as usize) < plan.tokens => cap as usize,
        _ => plan.tokens,
    };
    {
        let mut state = state.borrow_mut();
        state.requests += 1;
        if count < plan.tokens {
            let cap = count as u64;
            if state.capped.is_none_or(|was| cap < was) {
                eprintln!("model: a request's max_tokens {cap} cuts replies below --tokens");
                state.capped = Some(cap);
            }
        }
        match prompt.session {
            Some(session) => {
                let emission = state.sessions.entry(session).or_default();
                let repeated = emission.planned > 0;
                *emission = Emission {
                    planned: count,
                    at: Vec::with_capacity(count),
                    finished: false,
                };
                state.repeated += u64::from(repeated);
            }
            None => state.unmarked += 1,
        }
    }
    if plan.verbose {
        eprintln!(
            "model: request for session {:?}, {count} tokens, prompt ~{} tokens",
            prompt.session, prompt.prompt_tokens
        );
    }
    let streamed = stream_tokens(stream, buf, &prompt, count, request.close, plan, state).await;
    if let Some(session) = prompt.session {
        if let Some(emission) = state.borrow_mut().sessions.get_mut(&session) {
            emission.finished = true;
        }
    }
    streamed
}

/// One server-sent event as one HTTP chunk.
fn sse_chunk(data: &str) -> String {
    let event = format!("data: {data}\n\n");
    format!("{:x}\r\n{event}\r\n", event.len())
}

async fn stream_tokens(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    prompt: &Prompt,
    count: usize,
    close: bool,
    plan: &ModelPlan,
    state: &SharedModel,
) -> BenchResult<bool> {
    let connection = if close { "connection: close\r\n" } else { "" };
    let head = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n\
         transfer-encoding: chunked\r\n{connection}\r\n"
    );
    stream
        .write_all(head.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let gap = if plan.rate > 0.0 {
        Duration::from_secs_f64(1.0 / plan.rate)
    } else {
        Duration::ZERO
    };
    let start = Instant::now();
    for k in 0..count {
        // Due times from the start, not from the last token: a late token
        // does not push back every later one.
        if !wait_until(stream, buf, start + gap.mul_f64(k as f64)).await {
            return Ok(false);
        }
        // The token text is ASCII letters and digits: no JSON escaping needed.
        let chunk = sse_chunk(&format!(
            r#"{{"id":"c1","object":"chat.completion.chunk","choices":[{{"index":0,"delta":{{"content":"{}"}},"finish_reason":null}}]}}"#,
            token_text(prompt.session, k)
        ));
        // Stamped before the write: a write held up by a full socket
        // buffer is Hearth not reading, and counts as its latency.
        let now = Instant::now();
        {
            let mut state = state.borrow_mut();
            state.tokens += 1;
            if let Some(emission) = prompt.session.and_then(|s| state.sessions.get_mut(&s)) {
                emission.at.push(now);
            }
        }
        if stream.write_all(chunk.as_bytes()).await.is_err() {
            return Ok(false);
        }
    }
    let finish = if count < plan.tokens {
        "length"
    } else {
        "stop"
    };
    let mut tail = sse_chunk(&format!(
        r#"{{"id":"c1","object":"chat.completion.chunk","choices":[{{"index":0,"delta":{{}},"finish_reason":"{finish}"}}]}}"#
    ));
    tail.push_str(&sse_chunk(&format!(
        r#"{{"id":"c1","object":"chat.completion.chunk","choices":[],"usage":{{"prompt_tokens":{},"completion_tokens":{count},"total_tokens":{}}}}}"#,
        prompt.prompt_tokens,
        prompt.prompt_tokens + count as u64
    )));
    tail.push_str(&sse_chunk("[DONE]"));
    // The last chunk: the response ends and the connection can carry another.
    tail.push_str("0\r\n\r\n");
    Ok(stream.write_all(tail.as_bytes()).await.is_ok())
}

/// Sleeps until `due` while watching the socket: false once the client has
/// closed it, so a cancelled reply stops streaming at once.
async fn wait_until(stream: &mut TcpStream, buf: &mut Vec<u8>, due: Instant) -> bool {
    loop {
        if buf.len() > MAX_HEAD + MAX_BODY {
            return false;
        }
        tokio::select! {
            biased;
            _ = tokio::time::sleep_until(due.into()) => return true,
            read = stream.read_buf(buf) => match read {
                Ok(0) | Err(_) => return false,
                // A pipelined next request: kept in `buf` for later.
                Ok(_) => {}
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_read_back_as_written() {
        assert_eq!(token_text(Some(3), 17), " s3t17;");
        assert_eq!(parse_token(" s3t17"), Some((3, 17)));
        assert_eq!(parse_token(" t17"), None);
        assert_eq!(parse_token("s3tx"), None);
    }

    #[test]
    fn the_marker_is_read_from_the_last_user_message() {
        let body = json!({"messages": [
            {"role": "system", "content": "bench-session-9 is not it"},
            {"role": "user", "content": [{"type": "text", "text": "bench-session-4 hello"}]},
            {"role": "assistant", "content": "hi"},
        ], "max_tokens": 12});
        let prompt = Prompt::read(&body);
        assert_eq!(prompt.session, Some(4));
        assert_eq!(prompt.max_tokens, Some(12));
    }

    /// Reads one chunked response off `stream`: its head and the data of
    /// each event.
    async fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> (String, Vec<String>) {
        while find(buf, b"\r\n\r\n").is_none() {
            assert!(stream.read_buf(buf).await.unwrap() > 0);
        }
        let head_end = find(buf, b"\r\n\r\n").unwrap() + 4;
        let head = String::from_utf8(buf.drain(..head_end).collect()).unwrap();
        let mut body = Vec::new();
        loop {
            let Some(line_end) = find(buf, b"\r\n") else {
                assert!(stream.read_buf(buf).await.unwrap() > 0);
                continue;
            };
            let size =
                usize::from_str_radix(std::str::from_utf8(&buf[..line_end]).unwrap(), 16).unwrap();
            while buf.len() < line_end + 2 + size + 2 {
                assert!(stream.read_buf(buf).await.unwrap() > 0);
            }
            body.extend_from_slice(&buf[line_end + 2..line_end + 2 + size]);
            assert_eq!(&buf[line_end + 2 + size..line_end + 4 + size], b"\r\n");
            buf.drain(..line_end + 4 + size);
            if size == 0 {
                break;
            }
        }
        let events = String::from_utf8(body)
            .unwrap()
            .split("\n\n")
            .filter(|event| !event.is_empty())
            .map(|event| event.strip_prefix("data: ").unwrap().to_string())
            .collect();
        (head, events)
    }

    #[test]
    fn streams_two_replies_on_one_connection() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let local = tokio::task::LocalSet::new();
        local.block_on(&runtime, async {
            let listener = bind(0).await.unwrap();
            let addr = listener.local_addr().unwrap();
            let plan = Rc::new(ModelPlan {
                tokens: 5,
                rate: 1000.0,
                verbose: false,
            });
            let state = SharedModel::default();
            let deadline = Instant::now() + Duration::from_secs(10);
            tokio::task::spawn_local(serve(listener, plan, state.clone(), deadline));
            let mut stream = TcpStream::connect(addr).await.unwrap();
            let mut buf = Vec::new();
            for (session, max_tokens) in [(3, 100), (8, 2)] {
                let body = json!({"model": "bench", "stream": true, "max_tokens": max_tokens,
                    "messages": [{"role": "user", "content": format!("bench-session-{session} hi")}]})
                .to_string();
                let request = format!(
                    "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                stream.write_all(request.as_bytes()).await.unwrap();
                let (head, events) = read_response(&mut stream, &mut buf).await;
                assert!(head.starts_with("HTTP/1.1 200"));
                assert!(head.contains("text/event-stream"));
                let count = 5.min(max_tokens);
                assert_eq!(events.len(), count + 3);
                let text: String = events[..count]
                    .iter()
                    .map(|event| {
                        let chunk: Value = serde_json::from_str(event).unwrap();
                        chunk["choices"][0]["delta"]["content"].as_str().unwrap().to_string()
                    })
                    .collect();
                let expected: String = (0..count).map(|k| token_text(Some(session), k)).collect();
                assert_eq!(text, expected);
                let finish: Value = serde_json::from_str(&events[count]).unwrap();
                let reason = if count < 5 { "length" } else { "stop" };
                assert_eq!(finish["choices"][0]["finish_reason"], reason);
                let usage: Value = serde_json::from_str(&events[count + 1]).unwrap();
                assert_eq!(usage["usage"]["completion_tokens"], count);
                assert_eq!(events[count + 2], "[DONE]");
                let state = state.borrow();
                let emission = &state.sessions[&session];
                assert_eq!(emission.at.len(), count);
                assert!(emission.finished);
            }
            assert_eq!(state.borrow().requests, 2);
        });
    }
}
