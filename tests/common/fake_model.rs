//! A scripted fake of an OpenAI-compatible model server, for tests that need
//! the assistant to misbehave on cue. `FakeModel::start()` serves
//! `POST /v1/chat/completions` on 127.0.0.1 until dropped; point the server
//! at `fake.base_url()`.
//!
//! Each request's behaviour comes from a directive in the content of its
//! LAST `user` message, so a test chooses it by what it sends; the rest of
//! the text is ignored. The first `[...]` that parses as a directive wins:
//!
//! - none: streams `"Hello"`, `" there"`, `"."`, a finish chunk
//!   (`finish_reason: "stop"`), a usage chunk (12 prompt, 3 completion
//!   tokens) and `data: [DONE]`.
//! - `[tokens:N:MS]`: streams `"w0 "`, `"w1 "`, ... (N of them) MS ms apart,
//!   then finish, usage (N completion tokens) and `[DONE]`.
//! - `[status:CODE]`: answers HTTP CODE with `{"error":{"message":"fake
//!   failure"}}`; a 429 also carries `Retry-After: 1`.
//! - `[stall]`: sends nothing at all, not even headers, until the client
//!   closes (recorded as a client close), the fake is dropped, or 60 s pass.
//! - `[stall-after:N]`: streams N tokens, then stalls as above.
//! - `[reset-after:N]`: streams N tokens, then drops the connection without
//!   ending the chunked body.
//! - `[malformed]`: streams one token, then the event `data: {not json}`.
//! - `[hold:N]`: streams N tokens, then one more every 20 ms until the client
//!   goes away (recorded as a client close), bounded at 60 s / 3000 tokens.
//!
//! - `[call:NAME]`: calls the tool NAME (with fixed arguments: see
//!   `tool_arguments`), finish `tool_calls`. `[calls:NAME,NAME]` makes
//!   several calls in the one step; `[call-split:NAME:K]` sends the
//!   arguments in K fragments after a first fragment with the id and name
//!   only; `[call-bad:NAME]` sends arguments that are not JSON;
//!   `[call-loop]` calls `suggest_exercise` in every step, tool results or
//!   not. Except for `call-loop`, a request whose last message is a tool
//!   result is answered with words: `"Used "`, `"N tools."` (N the tool
//!   results in the request).
//!
//! A request with `"stream": false` is the safety second opinion: it is
//! answered with one whole completion whose content is WORD from an
//! `[opinion:WORD]` directive (`none` without one); `[opinion-stall]`
//! sends nothing until the client closes, as `[stall]` does. Streaming
//! directives are ignored by it, and its directives by streams.
//!
//! Every event is its own HTTP chunk, written at once with Nagle off, so the
//! client sees tokens arrive separately. Observations (`requests`,
//! `token_times`, `client_closes`) are thread-safe and every wait is bounded.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// How long a stalled or held connection is kept before the fake gives up,
/// so a test that forgets to close cannot leave a thread running forever.
const HOLD_LIMIT: Duration = Duration::from_secs(60);
const HOLD_MAX_TOKENS: usize = 3000;
const HOLD_PACE: Duration = Duration::from_millis(20);

pub struct FakeModel {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

struct Shared {
    stopping: AtomicBool,
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    requests: Vec<Value>,
    /// Indexed like `requests`.
    token_times: Vec<Vec<Instant>>,
    client_closes: Vec<Instant>,
    /// Clones of the live connections, so dropping the fake can shut them
    /// and wake any thread blocked reading or stalling on one.
    open: HashMap<u64, TcpStream>,
    next_connection: u64,
}

impl Shared {
    /// A panicking test thread must not poison every later observation.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits, bounded by `timeout`, until `done` holds; returns the state.
    fn wait_until(
        &self,
        timeout: Duration,
        done: impl Fn(&State) -> bool,
    ) -> MutexGuard<'_, State> {
        let state = self.lock();
        let waited = self
            .changed
            .wait_timeout_while(state, timeout, |s| !done(s));
        waited.unwrap_or_else(|e| e.into_inner()).0
    }

    fn record_request(&self, body: Value) -> usize {
        let mut state = self.lock();
        state.requests.push(body);
        state.token_times.push(Vec::new());
        self.changed.notify_all();
        state.requests.len() - 1
    }

    fn record_token(&self, index: usize) {
        self.lock().token_times[index].push(Instant::now());
    }

    /// Our own shutdown on drop looks like a close from the client's side;
    /// it is not one.
    fn record_client_close(&self) {
        if self.stopping.load(Ordering::SeqCst) {
            return;
        }
        self.lock().client_closes.push(Instant::now());
        self.changed.notify_all();
    }
}

impl FakeModel {
    pub fn start() -> FakeModel {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fake model");
        let addr = listener.local_addr().expect("fake model address");
        let shared = Arc::new(Shared {
            stopping: AtomicBool::new(false),
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        });
        let accepting = Arc::clone(&shared);
        let acceptor = thread::spawn(move || accept_loop(listener, accepting));
        FakeModel {
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A Hearth whose assistant is this model (`adjust` changes the rest).
    pub fn server(&self, adjust: impl FnOnce(&mut hearth::config::Config)) -> super::TestServer {
        let base_url = self.base_url();
        super::TestServer::with_config(move |config| {
            config.assistant.kind = "openai".into();
            config.assistant.base_url = base_url;
            config.assistant.model = "fake".into();
            config.assistant.timeout_s = 2;
            adjust(config);
        })
    }

    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Every request body received, in arrival order (a body that was not
    /// JSON is kept as a string).
    pub fn requests(&self) -> Vec<Value> {
        self.shared.lock().requests.clone()
    }

    pub fn request_count(&self) -> usize {
        self.shared.lock().requests.len()
    }

    pub fn wait_for_requests(&self, n: usize, timeout: Duration) -> bool {
        let state = self.shared.wait_until(timeout, |s| s.requests.len() >= n);
        state.requests.len() >= n
    }

    /// When streaming connections noticed their client go away, in order.
    pub fn client_closes(&self) -> Vec<Instant> {
        self.shared.lock().client_closes.clone()
    }

    /// Waits for the first client close and returns when it was noticed.
    pub fn wait_for_client_close(&self, timeout: Duration) -> Option<Instant> {
        self.wait_for_client_closes(1, timeout)
    }

    /// Waits for the `n`th client close (1-based), for tests in which
    /// earlier requests were closed too, and returns when it was noticed.
    pub fn wait_for_client_closes(&self, n: usize, timeout: Duration) -> Option<Instant> {
        let state = self
            .shared
            .wait_until(timeout, |s| s.client_closes.len() >= n);
        state.client_closes.get(n.checked_sub(1)?).copied()
    }

    /// When each token of request `index` was written (empty if unknown).
    pub fn token_times(&self, index: usize) -> Vec<Instant> {
        let state = self.shared.lock();
        state.token_times.get(index).cloned().unwrap_or_default()
    }
}

impl Drop for FakeModel {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        for stream in self.shared.lock().open.values() {
            let _ = stream.shutdown(Shutdown::Both);
        }
        // accept() has no timeout; a connection of our own wakes it to see
        // the flag. Join only if that worked, or drop could hang.
        let woke = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1)).is_ok();
        if let Some(acceptor) = self.acceptor.take() {
            if woke {
                let _ = acceptor.join();
            }
        }
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let Ok(clone) = stream.try_clone() else {
            continue;
        };
        let id = {
            // Checked again under the lock drop shuts connections under, so
            // none slips in unshut after the drop.
            let mut state = shared.lock();
            if shared.stopping.load(Ordering::SeqCst) {
                return;
            }
            state.next_connection += 1;
            let id = state.next_connection;
            state.open.insert(id, clone);
            id
        };
        let serving = Arc::clone(&shared);
        thread::spawn(move || {
            serve_connection(&serving, stream);
            serving.lock().open.remove(&id);
        });
    }
}

struct Request {
    method: String,
    path: String,
    close: bool,
    body: Vec<u8>,
}

/// Serves requests one after another on a kept-alive connection, as awc
/// reuses them, until the client closes or a script ends the connection.
fn serve_connection(shared: &Shared, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut reader = BufReader::new(stream);
    while let Ok(Some(request)) = read_request(&mut reader) {
        let socket = reader.get_ref();
        let keep_alive = if request.method != "POST" || request.path != "/v1/chat/completions" {
            write_status(socket, 404, "no such route").is_ok()
        } else {
            let body = serde_json::from_slice(&request.body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&request.body).into()));
            let script = Script::for_request(&body);
            let opinion = (body["stream"] == false).then(|| Opinion::for_request(&body));
            let index = shared.record_request(body);
            if let Some(opinion) = opinion {
                match opinion {
                    Opinion::Say(word) => write_completion(socket, &word).is_ok(),
                    Opinion::Stall => {
                        let stream = EventStream {
                            shared,
                            socket,
                            index,
                        };
                        if stream.wait_for_close(HOLD_LIMIT).is_err() {
                            shared.record_client_close();
                        }
                        false
                    }
                }
            } else if let Script::Status(code) = &script {
                let code = *code;
                write_status(socket, code, "fake failure").is_ok()
            } else {
                let stream = EventStream {
                    shared,
                    socket,
                    index,
                };
                match stream.run(script) {
                    Ok(keep_alive) => keep_alive,
                    Err(_) => {
                        shared.record_client_close();
                        false
                    }
                }
            }
        };
        if !keep_alive || request.close {
            break;
        }
    }
    let _ = reader.get_ref().shutdown(Shutdown::Both);
}

/// `Ok(None)` is the client closing between requests, the normal end of a
/// kept-alive connection.
fn read_request(reader: &mut BufReader<TcpStream>) -> io::Result<Option<Request>> {
    reader.get_ref().set_read_timeout(None)?;
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    let (mut length, mut close) = (0, false);
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = value
                .parse()
                .map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
        } else if name.eq_ignore_ascii_case("connection") {
            close = value.eq_ignore_ascii_case("close");
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok(Some(Request {
        method,
        path,
        close,
        body,
    }))
}

fn write_status(mut socket: &TcpStream, code: u16, message: &str) -> io::Result<()> {
    let body = json!({ "error": { "message": message } }).to_string();
    let retry = if code == 429 {
        "Retry-After: 1\r\n"
    } else {
        ""
    };
    // Clients read the code, never the reason phrase, so one serves all.
    let head = format!(
        "HTTP/1.1 {code} Fake\r\nContent-Type: application/json\r\n{retry}Content-Length: {}\r\n\r\n",
        body.len()
    );
    socket.write_all(format!("{head}{body}").as_bytes())?;
    socket.flush()
}

/// How a whole (not streamed) request is answered.
enum Opinion {
    Say(String),
    Stall,
}

impl Opinion {
    fn for_request(body: &Value) -> Opinion {
        let text = last_user_text(body);
        if text.contains("[opinion-stall]") {
            return Opinion::Stall;
        }
        let word = text
            .split("[opinion:")
            .nth(1)
            .and_then(|rest| rest.split(']').next())
            .unwrap_or("none");
        Opinion::Say(word.to_owned())
    }
}

fn write_completion(mut socket: &TcpStream, content: &str) -> io::Result<()> {
    let body = json!({
        "id": "fake-opinion",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 40, "completion_tokens": 1}
    })
    .to_string();
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    socket.write_all(format!("{head}{body}").as_bytes())?;
    socket.flush()
}

#[derive(Debug, Clone, PartialEq)]
enum Script {
    Default,
    /// Tool calls in one step: the names, how many fragments the
    /// arguments come in, and whether they are broken.
    Calls {
        names: Vec<String>,
        fragments: usize,
        broken: bool,
    },
    /// The words after tool results: how many there were.
    ToolsAnswered(usize),
    Tokens {
        n: usize,
        gap: Duration,
    },
    Status(u16),
    Stall,
    StallAfter(usize),
    ResetAfter(usize),
    Malformed,
    Hold(usize),
}

impl Script {
    fn for_request(body: &Value) -> Script {
        let messages = body["messages"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        let results = messages.iter().filter(|m| m["role"] == "tool").count();
        let after_tools = messages.last().is_some_and(|m| m["role"] == "tool");
        let text = last_user_text(body);
        if after_tools && !text.contains("[call-loop]") {
            return Script::ToolsAnswered(results);
        }
        let mut rest = text.as_str();
        while let Some(open) = rest.find('[') {
            rest = &rest[open + 1..];
            if let Some(script) = rest.split(']').next().and_then(Script::parse) {
                return script;
            }
        }
        Script::Default
    }

    fn parse(directive: &str) -> Option<Script> {
        let parts: Vec<&str> = directive.split(':').collect();
        let number = |i: usize| parts.get(i)?.trim().parse::<usize>().ok();
        Some(match (parts[0], parts.len()) {
            ("tokens", 3) => Script::Tokens {
                n: number(1)?,
                gap: Duration::from_millis(number(2)? as u64),
            },
            ("status", 2) => Script::Status(parts[1].trim().parse().ok()?),
            ("stall", 1) => Script::Stall,
            ("stall-after", 2) => Script::StallAfter(number(1)?),
            ("reset-after", 2) => Script::ResetAfter(number(1)?),
            ("malformed", 1) => Script::Malformed,
            ("hold", 2) => Script::Hold(number(1)?),
            ("call", 2) | ("call-bad", 2) => Script::Calls {
                names: vec![parts[1].trim().to_owned()],
                fragments: 1,
                broken: parts[0] == "call-bad",
            },
            ("calls", 2) => Script::Calls {
                names: parts[1]
                    .split(',')
                    .map(|name| name.trim().to_owned())
                    .collect(),
                fragments: 1,
                broken: false,
            },
            ("call-split", 3) => Script::Calls {
                names: vec![parts[1].trim().to_owned()],
                fragments: number(2)?.max(1),
                broken: false,
            },
            ("call-loop", 1) => Script::Calls {
                names: vec!["suggest_exercise".to_owned()],
                fragments: 1,
                broken: false,
            },
            _ => return None,
        })
    }
}

/// Content may be a string or, in the newer format, a list of text parts.
fn last_user_text(body: &Value) -> String {
    let messages = body["messages"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let Some(message) = messages.iter().rev().find(|m| m["role"] == "user") else {
        return String::new();
    };
    match &message["content"] {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts.iter().filter_map(|p| p["text"].as_str()).collect(),
        _ => String::new(),
    }
}

/// One streamed response; any write error means the client went away.
struct EventStream<'a> {
    shared: &'a Shared,
    socket: &'a TcpStream,
    index: usize,
}

impl EventStream<'_> {
    /// Plays `script`; `Ok(true)` leaves the connection fit for another
    /// request. `Err` is the client gone.
    fn run(&self, script: Script) -> io::Result<bool> {
        let word = |k: usize| format!("w{k} ");
        match script {
            Script::Default => {
                self.start()?;
                for token in ["Hello", " there", "."] {
                    self.token(token)?;
                }
                self.finish("stop", 3)?;
            }
            Script::Tokens { n, gap } => {
                self.start()?;
                for k in 0..n {
                    thread::sleep(if k == 0 { Duration::ZERO } else { gap });
                    self.token(&word(k))?;
                }
                self.finish("stop", n)?;
            }
            Script::Calls {
                names,
                fragments,
                broken,
            } => {
                self.start()?;
                for (index, name) in names.iter().enumerate() {
                    let arguments = if broken {
                        "{\"exercise_id\": ".to_string()
                    } else {
                        tool_arguments(name)
                    };
                    // The first fragment names the call; the arguments follow.
                    self.event(&choice_event(
                        json!({"tool_calls": [{"index": index, "id": format!("call_{index}"), "type": "function",
                            "function": {"name": name, "arguments": ""}}]}),
                        Value::Null,
                    ))?;
                    let size = arguments.len().div_ceil(fragments).max(1);
                    let bytes = arguments.as_bytes();
                    for piece in bytes.chunks(size) {
                        let piece = String::from_utf8_lossy(piece);
                        self.event(&choice_event(
                            json!({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}),
                            Value::Null,
                        ))?;
                    }
                }
                self.finish("tool_calls", 5)?;
            }
            Script::ToolsAnswered(n) => {
                self.start()?;
                self.token("Used ")?;
                self.token(&format!("{n} tools."))?;
                self.finish("stop", 2)?;
            }
            Script::Status(_) => unreachable!("answered without a stream"),
            Script::Stall => {
                self.wait_for_close(HOLD_LIMIT)?;
                return Ok(false);
            }
            Script::StallAfter(n) => {
                self.start()?;
                (0..n).try_for_each(|k| self.token(&word(k)))?;
                self.wait_for_close(HOLD_LIMIT)?;
                return Ok(false);
            }
            Script::ResetAfter(n) => {
                self.start()?;
                (0..n).try_for_each(|k| self.token(&word(k)))?;
                let _ = self.socket.shutdown(Shutdown::Both);
                return Ok(false);
            }
            Script::Malformed => {
                self.start()?;
                self.token("Hello")?;
                self.event("{not json}")?;
                self.chunk("")?;
            }
            Script::Hold(n) => {
                self.start()?;
                (0..n).try_for_each(|k| self.token(&word(k)))?;
                let deadline = Instant::now() + HOLD_LIMIT;
                let mut k = n;
                while k < HOLD_MAX_TOKENS && Instant::now() < deadline {
                    // Waiting by reading paces the tokens and notices the
                    // client's FIN at once, before a write would fail.
                    self.wait_for_close(HOLD_PACE)?;
                    self.token(&word(k))?;
                    k += 1;
                }
                self.finish("length", k)?;
            }
        }
        Ok(true)
    }

    fn start(&self) -> io::Result<()> {
        let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\
                    Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n";
        let mut socket = self.socket;
        socket.write_all(head.as_bytes())?;
        socket.flush()
    }

    /// One HTTP chunk in a single write; the empty chunk ends the body.
    fn chunk(&self, data: &str) -> io::Result<()> {
        let mut socket = self.socket;
        socket.write_all(format!("{:x}\r\n{data}\r\n", data.len()).as_bytes())?;
        socket.flush()
    }

    fn event(&self, data: &str) -> io::Result<()> {
        self.chunk(&format!("data: {data}\n\n"))
    }

    fn token(&self, text: &str) -> io::Result<()> {
        self.event(&choice_event(json!({ "content": text }), Value::Null))?;
        self.shared.record_token(self.index);
        Ok(())
    }

    fn finish(&self, reason: &str, completion_tokens: usize) -> io::Result<()> {
        self.event(&choice_event(json!({}), json!(reason)))?;
        let mut usage = chunk_event(json!([]));
        usage["usage"] = json!({
            "prompt_tokens": 12,
            "completion_tokens": completion_tokens,
            "total_tokens": 12 + completion_tokens,
        });
        self.event(&usage.to_string())?;
        self.event("[DONE]")?;
        self.chunk("")
    }

    /// Waits up to `wait` reading from the client: `Err` if it closed (EOF
    /// or a reset), `Ok` if the time passed. A streaming client sends
    /// nothing, so any stray bytes are dropped.
    fn wait_for_close(&self, wait: Duration) -> io::Result<()> {
        let deadline = Instant::now() + wait;
        let mut buf = [0u8; 256];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            self.socket.set_read_timeout(Some(left))?;
            let mut socket = self.socket;
            let error = match socket.read(&mut buf) {
                Ok(0) => return Err(io::ErrorKind::ConnectionAborted.into()),
                Ok(_) => continue,
                Err(error) => error,
            };
            match error.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => return Ok(()),
                io::ErrorKind::Interrupted => {}
                _ => return Err(error),
            }
        }
    }
}

/// The arguments the fake passes to each tool it calls.
fn tool_arguments(name: &str) -> String {
    match name {
        "suggest_exercise" => json!({"exercise_id": "ex_grounding"}),
        "find_resources" => json!({"topic": "substance use"}),
        "share_summary" => json!({"note": "A calmer week."}),
        _ => json!({}),
    }
    .to_string()
}

fn choice_event(delta: Value, finish_reason: Value) -> String {
    let choice = json!({ "index": 0, "delta": delta, "finish_reason": finish_reason });
    chunk_event(json!([choice])).to_string()
}

fn chunk_event(choices: Value) -> Value {
    json!({ "id": "fake-1", "object": "chat.completion.chunk", "model": "fake", "choices": choices })
}
