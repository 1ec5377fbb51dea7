//! The integration-test harness: a real Hearth server on 127.0.0.1:0 in its
//! own actix system, a blocking WebSocket client (tungstenite) that speaks
//! the protocol as a user's client would, and a small HTTP helper. Every
//! wait is on a frame or a condition, bounded by a timeout.

#![allow(dead_code)]

pub mod budgets;
pub mod fake_model;
pub mod sessions;
pub mod tls;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use hearth::config::Config;
use serde_json::{json, Value};
use tungstenite::client::IntoClientRequest;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Message, WebSocket};

pub const SECRET: &str = hearth::config::DEV_JWT_SECRET;
/// Long enough for a loaded CI machine, short enough to fail a hung test.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(10);

pub struct TestServer {
    pub addr: SocketAddr,
    /// The admin listener, when `metrics.bind` asked for one.
    pub admin_addr: Option<SocketAddr>,
    pub config: Config,
    handle: ServerHandle,
    thread: Option<JoinHandle<()>>,
    /// Keeps the progress database's directory alive for the server's life.
    _dir: Option<tempfile::TempDir>,
}

impl TestServer {
    pub fn start() -> TestServer {
        TestServer::with_config(|_| {})
    }

    /// A server with a fresh progress store and the default configuration,
    /// adjusted by `adjust`.
    pub fn with_config(adjust: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = test_config(dir.path().join("progress.db"));
        adjust(&mut config);
        let mut server = TestServer::start_with(config);
        server._dir = Some(dir);
        server
    }

    pub fn start_with(config: Config) -> TestServer {
        let (ready_tx, ready_rx) = mpsc::channel();
        let server_config = config.clone();
        let thread = std::thread::spawn(move || {
            let system = actix::System::new();
            system.block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0").expect("bind port 0");
                match hearth::start(server_config, listener) {
                    Ok(running) => {
                        let handle = running.shutdown.handle.clone();
                        let _ = ready_tx.send(Ok((running.addr, running.admin_addr, handle)));
                        let _ = running.server.await;
                    }
                    Err(err) => {
                        let _ = ready_tx.send(Err(err.to_string()));
                    }
                }
            });
        });
        let (addr, admin_addr, handle) = ready_rx
            .recv_timeout(FRAME_TIMEOUT)
            .expect("server thread answered")
            .expect("server started");
        TestServer {
            addr,
            admin_addr,
            config,
            handle,
            thread: Some(thread),
            _dir: None,
        }
    }

    /// Stops the server and waits for its thread, so that a new server can
    /// reuse its progress store.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        // The stop command is sent when `stop` is called; its future only
        // reports completion, which joining the thread observes too.
        drop(self.handle.stop(false));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    pub fn ws_url(&self, query: &str) -> String {
        format!("ws://{}/ws/chat{query}", self.addr)
    }

    pub fn http_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn token(&self, player: &str) -> String {
        token_with(json!({ "sub": player, "exp": now() + 3600 }))
    }

    /// A connected client whose welcome has been read.
    pub fn connect(&self, player: &str) -> Client {
        self.connect_query(player, "")
    }

    /// As `connect`, with extra query options such as `&typing=1`.
    pub fn connect_query(&self, player: &str, options: &str) -> Client {
        self.connect_at("/ws/chat", player, options)
    }

    /// As `connect_query`, on another WebSocket path (an agent's).
    pub fn connect_at(&self, path: &str, player: &str, options: &str) -> Client {
        let url = format!(
            "ws://{}{path}?token={}{options}",
            self.addr,
            self.token(player)
        );
        let mut client = Client::open(&url, &[]);
        let welcome = client.recv();
        assert_eq!(welcome["metadata"]["event"], "connected", "{welcome}");
        client.welcome = welcome;
        client
    }

    pub fn get(&self, path: &str, api_key: Option<&str>) -> (u16, Value) {
        http_get(&self.http_url(path), api_key)
    }

    pub fn metrics(&self) -> Value {
        let (status, body) = self.get("/api/metrics", None);
        assert_eq!(status, 200);
        body
    }

    /// Polls `/api/metrics` until `check` holds; panics after the timeout.
    pub fn wait_for_metrics(&self, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + FRAME_TIMEOUT;
        loop {
            let metrics = self.metrics();
            if check(&metrics) {
                return metrics;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {metrics}"
            );
            std::thread::yield_now();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The shipped defaults, with a test's own store, a single worker, and a
/// rate limit out of the way of tests that send quickly (the rate-limit
/// tests set it back).
pub fn test_config(progress_path: PathBuf) -> Config {
    let mut config = Config::default();
    config.server.bind = "127.0.0.1:0".into();
    config.server.workers = 1;
    config.progress.path = progress_path;
    config.limits.rate_burst = 1_000_000;
    config.limits.rate_per_second = 1_000_000.0;
    config
}

pub fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

/// An HS256 token with exactly these claims, signed with the test secret.
pub fn token_with(claims: Value) -> String {
    token_signed(claims, SECRET)
}

pub fn token_signed(claims: Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("test token encodes")
}

pub enum Frame {
    Json(Value),
    Close(u16, String),
    Ping,
    Binary,
}

pub struct Client {
    ws: WebSocket<TcpStream>,
    pub welcome: Value,
}

impl Client {
    /// Opens a WebSocket without reading anything.
    pub fn open(url: &str, headers: &[(&str, String)]) -> Client {
        Client::try_open(url, headers).expect("websocket handshake")
    }

    pub fn try_open(url: &str, headers: &[(&str, String)]) -> Result<Client, tungstenite::Error> {
        let mut request = url.into_client_request()?;
        for (name, value) in headers {
            request.headers_mut().insert(
                tungstenite::http::HeaderName::from_bytes(name.as_bytes()).expect("header name"),
                value.parse().expect("header value"),
            );
        }
        let host = request
            .uri()
            .authority()
            .expect("url has a host")
            .as_str()
            .to_string();
        let stream = TcpStream::connect(host)?;
        stream.set_read_timeout(Some(FRAME_TIMEOUT))?;
        stream.set_nodelay(true)?;
        let (ws, _) = tungstenite::client::client(request, stream).map_err(|err| match err {
            tungstenite::HandshakeError::Failure(err) => err,
            tungstenite::HandshakeError::Interrupted(_) => {
                tungstenite::Error::Io(std::io::ErrorKind::WouldBlock.into())
            }
        })?;
        Ok(Client {
            ws,
            welcome: Value::Null,
        })
    }

    pub fn stream(&self) -> &TcpStream {
        self.ws.get_ref()
    }

    pub fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).expect("send text frame");
    }

    pub fn send_json(&mut self, value: Value) {
        self.send_text(&value.to_string());
    }

    pub fn send_message(&mut self, message: Message) {
        self.ws.send(message).expect("send frame");
    }

    /// The next frame of any kind (pongs are skipped).
    pub fn next_frame(&mut self) -> Frame {
        loop {
            match self.ws.read() {
                Ok(Message::Text(text)) => {
                    let value = serde_json::from_str(text.as_str())
                        .unwrap_or_else(|err| panic!("server sent invalid JSON ({err}): {text}"));
                    return Frame::Json(value);
                }
                Ok(Message::Close(close)) => {
                    let (code, reason) = close
                        .map(|c| (u16::from(c.code), c.reason.to_string()))
                        .unwrap_or((1005, String::new()));
                    return Frame::Close(code, reason);
                }
                Ok(Message::Ping(_)) => return Frame::Ping,
                Ok(Message::Binary(_)) => return Frame::Binary,
                Ok(Message::Pong(_)) | Ok(Message::Frame(_)) => continue,
                Err(tungstenite::Error::ConnectionClosed) => {
                    return Frame::Close(1006, String::new())
                }
                Err(err) => panic!("no frame within {FRAME_TIMEOUT:?}: {err}"),
            }
        }
    }

    /// The next JSON frame; heartbeat pings are answered and skipped.
    pub fn recv(&mut self) -> Value {
        // Each read is bounded, but heartbeat pings would restart the wait.
        let deadline = Instant::now() + FRAME_TIMEOUT;
        loop {
            match self.next_frame() {
                Frame::Json(value) => return value,
                Frame::Ping if Instant::now() < deadline => continue,
                Frame::Ping => panic!("no frame but pings within {FRAME_TIMEOUT:?}"),
                Frame::Close(code, reason) => {
                    panic!("closed {code} {reason:?} while waiting for a frame")
                }
                Frame::Binary => panic!("unexpected binary frame"),
            }
        }
    }

    /// For a client that never read anything: reads the raw bytes the server
    /// sent until it hung up, without answering (a WebSocket library would
    /// answer pings), and returns the close frame's code and reason.
    pub fn raw_close(mut self) -> (u16, String) {
        use std::io::Read;
        let mut bytes = Vec::new();
        let _ = self.ws.get_mut().read_to_end(&mut bytes);
        let mut at = 0;
        while at + 2 <= bytes.len() {
            let opcode = bytes[at] & 0x0f;
            let (len, header) = match bytes[at + 1] & 0x7f {
                126 => (
                    usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]])),
                    4,
                ),
                127 => {
                    let mut len = [0u8; 8];
                    len.copy_from_slice(&bytes[at + 2..at + 10]);
                    (
                        usize::try_from(u64::from_be_bytes(len)).expect("frame length"),
                        10,
                    )
                }
                n => (usize::from(n), 2),
            };
            let payload = &bytes[at + header..at + header + len];
            if opcode == 8 {
                let code = u16::from_be_bytes([payload[0], payload[1]]);
                return (code, String::from_utf8_lossy(&payload[2..]).into_owned());
            }
            at += header + len;
        }
        panic!("no close frame in {} bytes", bytes.len());
    }

    /// Reads until the server's close frame; returns its code and reason.
    pub fn expect_close(&mut self) -> (u16, String) {
        loop {
            match self.next_frame() {
                Frame::Close(code, reason) => return (code, reason),
                Frame::Json(value) => panic!("expected a close, got {value}"),
                Frame::Ping | Frame::Binary => continue,
            }
        }
    }

    /// Sends `request` with `"id": id` and returns the next frame, which must
    /// answer it.
    pub fn request(&mut self, id: &str, mut request: Value) -> Value {
        request["id"] = json!(id);
        self.send_json(request);
        let reply = self.recv();
        assert_eq!(reply["reply_to"], id, "reply to {id}: {reply}");
        reply
    }

    /// The frame that replies to `id`; events that come before it (a
    /// room's joins and publications) are passed over.
    pub fn answer_to(&mut self, id: &str) -> Value {
        loop {
            let frame = self.recv();
            if frame["reply_to"] == id {
                return frame;
            }
        }
    }

    /// A `ping` round trip: proves that nothing else was queued before it.
    pub fn expect_quiet(&mut self) {
        self.send_json(json!({"type": "ping", "id": "quiet"}));
        let next = self.recv();
        assert_eq!(
            next["type"], "pong",
            "expected nothing before the pong, got {next}"
        );
        assert_eq!(next["reply_to"], "quiet");
    }

    pub fn say(&mut self, id: &str, text: &str) -> Value {
        self.request(
            id,
            json!({"type": "user_message", "content": {"text": text}}),
        )
    }

    pub fn click(&mut self, id: &str, button: &str) -> Value {
        self.request(
            id,
            json!({"type": "interaction", "content": {"action": "button_click", "id": button}}),
        )
    }

    pub fn close(self) {
        self.close_with(CloseCode::Normal);
    }

    /// Closes with `code`, and waits for the server's answer.
    pub fn close_with(mut self, code: CloseCode) {
        let _ = self.ws.close(Some(tungstenite::protocol::CloseFrame {
            code,
            reason: "bye".into(),
        }));
        // Drain until the server confirms, so the server has seen it.
        while self.ws.read().is_ok() {}
    }
}

pub fn http_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(FRAME_TIMEOUT))
        .build()
        .into()
}

pub fn http_get(url: &str, api_key: Option<&str>) -> (u16, Value) {
    let mut request = http_agent().get(url);
    if let Some(key) = api_key {
        request = request.header("Authorization", &format!("Bearer {key}"));
    }
    status_and_json(request.call().expect("HTTP request"))
}

pub fn http_post(url: &str, body: &Value, api_key: Option<&str>) -> (u16, Value) {
    let mut request = http_agent()
        .post(url)
        .header("Content-Type", "application/json");
    if let Some(key) = api_key {
        request = request.header("Authorization", &format!("Bearer {key}"));
    }
    let response = request
        .send(body.to_string().as_bytes())
        .expect("HTTP request");
    status_and_json(response)
}

fn status_and_json(mut response: ureq::http::Response<ureq::Body>) -> (u16, Value) {
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .read_json::<Value>()
        .unwrap_or(Value::Null);
    (status, body)
}

pub fn subscribe(client: &mut Client, id: &str, channels: &[&str]) -> Value {
    client.request(id, json!({"type": "subscribe", "channels": channels}))
}

pub fn publish(client: &mut Client, id: &str, channel: &str, data: Value) -> Value {
    client.request(
        id,
        json!({"type": "publish", "channel": channel, "data": data}),
    )
}

/// The next frame must be a publication in `channel`.
pub fn publication(client: &mut Client, channel: &str) -> Value {
    let event = client.recv();
    assert_eq!(event["type"], "event", "{event}");
    assert_eq!(event["event"], "publication", "{event}");
    assert_eq!(event["channel"], channel);
    event
}

/// `POST /api/publish` with `key`; must succeed.
pub fn api_publish(server: &TestServer, key: &str, channel: &str, data: Value) -> Value {
    let (status, body) = http_post(
        &server.http_url("/api/publish"),
        &json!({"channel": channel, "data": data}),
        Some(key),
    );
    assert_eq!(status, 200, "{body}");
    body
}

/// Starts the `hearth` binary with `config_path` on a free port and returns
/// it with the address it logged.
pub fn spawn_hearth(config_path: &Path, env: &[(&str, &str)]) -> (Child, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hearth"));
    command
        .arg("--config")
        .arg(config_path)
        .env("HEARTH_BIND", "127.0.0.1:0")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("start the hearth binary");
    let stderr = child.stderr.take().expect("stderr");
    let (addr_tx, addr_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut addr_tx = Some(addr_tx);
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(addr) = line.split("listening addr=").nth(1) {
                if let Some(tx) = addr_tx.take() {
                    let _ = tx.send(addr.trim().to_string());
                }
            }
        }
    });
    let addr = addr_rx
        .recv_timeout(FRAME_TIMEOUT)
        .expect("hearth logged its address");
    (child, addr)
}

/// What `wait` returns, run on a thread of its own while it waits for the
/// process `pid`; past `limit` the process is killed and the test fails.
pub fn wait_killing_after<T: Send + 'static>(
    pid: u32,
    limit: Duration,
    wait: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done_tx.send(wait());
    });
    match done_rx.recv_timeout(limit) {
        Ok(done) => done,
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("process {pid} ran past {limit:?}");
        }
    }
}

/// `GET /metrics`: the Prometheus text.
pub fn prometheus(server: &TestServer) -> String {
    let response = http_agent()
        .get(&server.http_url("/metrics"))
        .call()
        .expect("GET /metrics");
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    response.into_body().read_to_string().expect("body")
}

/// The value of one sample line, e.g. `hearth_connections` or
/// `hearth_actor_handled_total{actor="session"}`.
pub fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no sample {series} in\n{text}"))
        .trim()
        .parse()
        .expect("a number")
}
