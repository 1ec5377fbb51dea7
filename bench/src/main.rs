//! `hearth-bench`: drives any server that speaks Hearth's wire protocol over
//! real sockets, with bounded counts and time, and reports what a user of
//! a realtime server compares: fan-out throughput and latency, memory per
//! idle connection, request round trips, connection churn, streamed
//! assistant replies (against a fake model in this process), and the most
//! memory one player can make the server hold.
//!
//! It runs on one thread (pin it to a core of its own) and keeps its own
//! per-frame work small: publications are recognised and their send time
//! read without parsing the whole frame.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Parser, Subcommand};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

mod assistant;
mod cpu;
use cpu::Cpu;
mod hoard;
mod model;
mod progress;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;
type BenchResult<T> = Result<T, String>;

#[derive(Parser)]
#[command(
    name = "hearth-bench",
    about = "Benchmarks a server speaking Hearth's protocol"
)]
struct Cli {
    /// host:port of the server.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: String,
    /// HS256 secret the server verifies tokens with.
    #[arg(long, default_value = "hearth-dev-secret-change-me")]
    secret: String,
    /// The server's process id, to read its memory (idle, assistant) and
    /// CPU time (assistant).
    #[arg(long)]
    server_pid: Option<u32>,
    /// A label for the result line (e.g. hearth, node-ws).
    #[arg(long, default_value = "server")]
    label: String,
    /// Clock ticks per second in /proc/<pid>/stat (`getconf CLK_TCK`).
    #[arg(long, global = true, default_value_t = 100)]
    clk_tck: u64,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// N subscribers in one room; a publisher at a rate or as fast as possible.
    Fanout {
        #[arg(long, default_value_t = 1000)]
        subscribers: usize,
        /// Publications to send.
        #[arg(long, default_value_t = 1000)]
        messages: usize,
        /// Publications per second; 0 = as fast as the server takes them.
        #[arg(long, default_value_t = 0)]
        rate: u64,
        /// With rate 0: publications in flight (sent, not yet seen back).
        #[arg(long, default_value_t = 64)]
        window: usize,
        /// Bytes of padding in each publication.
        #[arg(long, default_value_t = 64)]
        payload: usize,
        /// Publications sent first, delivered and counted but left out of
        /// the latency figures (both servers start cold).
        #[arg(long, default_value_t = 100)]
        warmup: usize,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 120)]
        timeout: u64,
        /// host:port of another node of the same cluster for the publisher;
        /// the subscribers stay on `--addr`.
        #[arg(long)]
        publisher_addr: Option<String>,
    },
    /// C authenticated connections held open; server memory per connection.
    Idle {
        #[arg(long, default_value_t = 10_000)]
        connections: usize,
        /// Seconds to hold them before measuring.
        #[arg(long, default_value_t = 3)]
        settle: u64,
        /// Counts on the way to measure at too, comma-separated: memory
        /// per connection against the connection count.
        #[arg(long, value_delimiter = ',')]
        steps: Vec<usize>,
        /// Each connection pings once and reads the pong before it idles,
        /// as a client that sends heartbeats does between messages.
        #[arg(long)]
        ping_first: bool,
    },
    /// K clients each sending chat messages one at a time.
    Rtt {
        #[arg(long, default_value_t = 100)]
        clients: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// One player's worst case: every connection it may open, subscribed
    /// to the same rooms, not reading, while it publishes until refused;
    /// the server's peak memory growth.
    Hoard {
        #[arg(long, default_value_t = 16)]
        connections: usize,
        #[arg(long, default_value_t = 128)]
        channels: usize,
        #[arg(long, default_value_t = 32_000)]
        payload: usize,
        #[arg(long, default_value_t = 5000)]
        max_publications: usize,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 120)]
        timeout: u64,
    },
    /// Connect, chat, disconnect, repeated.
    Churn {
        #[arg(long, default_value_t = 2000)]
        cycles: usize,
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
    },
    /// Connection set-up alone: connect (upgrade, token check, welcome)
    /// and close, repeated; the rate and the time to the welcome.
    Connect {
        #[arg(long, default_value_t = 5000)]
        cycles: usize,
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
    },
    /// S players each ask the assistant for one streamed reply, answered by
    /// a fake OpenAI-compatible model this process serves on loopback.
    Assistant {
        #[arg(long, default_value_t = 200)]
        sessions: usize,
        /// Tokens in each reply.
        #[arg(long, default_value_t = 300)]
        tokens: usize,
        /// Tokens per second in each reply; 0 = as fast as the socket takes them.
        #[arg(long, default_value_t = 50.0)]
        token_rate: f64,
        /// Port of the fake model on 127.0.0.1 (the server's base_url).
        #[arg(long, default_value_t = 18089)]
        model_port: u16,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 120)]
        timeout: u64,
        /// Only serve the fake model, until --timeout or Ctrl-C: to check it by hand.
        #[arg(long)]
        model_only: bool,
        /// The server's coalesce_ms, copied into the result to tell runs apart.
        #[arg(long)]
        coalesce_ms: Option<u64>,
        /// Spread the sends over this many ms (0: all at once, so every
        /// reply's tokens arrive in lock-step).
        #[arg(long, default_value_t = 0)]
        stagger_ms: u64,
    },
}

impl Scenario {
    /// The scenario's name and what its progress counts.
    fn progress_unit(&self) -> (&'static str, &'static str) {
        match self {
            Scenario::Fanout { .. } => ("fanout", "deliveries"),
            Scenario::Idle { .. } => ("idle", "connections"),
            Scenario::Rtt { .. } => ("rtt", "replies"),
            Scenario::Churn { .. } => ("churn", "cycles"),
            Scenario::Connect { .. } => ("connect", "connections"),
            Scenario::Hoard { .. } => ("hoard", "publications"),
            Scenario::Assistant { .. } => ("assistant", "deltas"),
        }
    }
}

fn main() {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("hearth-bench: {err}");
            std::process::exit(1);
        }
    };
    let local = tokio::task::LocalSet::new();
    let (scenario, unit) = cli.scenario.progress_unit();
    let (outcome, timeline) = local.block_on(&runtime, async {
        let reporter = progress::report(cli.label.clone(), scenario, unit);
        let outcome = run(&cli).await;
        (outcome, reporter.finish())
    });
    match outcome {
        Ok(result) => {
            let mut result = result;
            result["label"] = json!(cli.label);
            result["timeline_ms"] = json!(progress::SAMPLE.as_millis() as u64);
            result["timeline"] = json!(timeline);
            println!("{result}");
        }
        Err(err) => {
            eprintln!("hearth-bench: {err}");
            std::process::exit(1);
        }
    }
}

async fn run(cli: &Cli) -> BenchResult<Value> {
    let target = Target {
        addr: cli.addr.clone(),
        secret: cli.secret.clone(),
    };
    let target = &target;
    let cpu = Cpu {
        server_pid: cli.server_pid,
        clk_tck: cli.clk_tck,
    };
    match &cli.scenario {
        Scenario::Fanout {
            subscribers,
            messages,
            rate,
            window,
            payload,
            warmup,
            timeout,
            publisher_addr,
        } => {
            let plan = FanoutPlan {
                subscribers: *subscribers,
                messages: *messages,
                rate: *rate,
                window: (*window).max(1),
                payload: *payload,
                warmup: *warmup,
                timeout: Duration::from_secs(*timeout),
                publisher: Target {
                    addr: publisher_addr
                        .clone()
                        .unwrap_or_else(|| target.addr.clone()),
                    secret: target.secret.clone(),
                },
                cpu,
            };
            fanout(target, plan).await
        }
        Scenario::Idle {
            connections,
            settle,
            steps,
            ping_first,
        } => {
            let mut counts: Vec<usize> = steps
                .iter()
                .copied()
                .filter(|&n| n > 0 && n < *connections)
                .collect();
            counts.push(*connections);
            counts.sort_unstable();
            counts.dedup();
            let plan = IdlePlan {
                counts,
                settle: Duration::from_secs(*settle),
                ping_first: *ping_first,
            };
            idle(target, cli.server_pid, plan).await
        }
        Scenario::Rtt { clients, seconds } => {
            rtt(target, *clients, Duration::from_secs(*seconds), cpu).await
        }
        Scenario::Churn {
            cycles,
            concurrency,
        } => churn(target, *cycles, *concurrency, true, cpu).await,
        Scenario::Connect {
            cycles,
            concurrency,
        } => churn(target, *cycles, *concurrency, false, cpu).await,
        Scenario::Hoard {
            connections,
            channels,
            payload,
            max_publications,
            timeout,
        } => {
            let plan = hoard::HoardPlan {
                connections: *connections,
                channels: *channels,
                payload: *payload,
                max_publications: *max_publications,
                timeout: Duration::from_secs(*timeout),
            };
            hoard::hoard(target, cli.server_pid, plan).await
        }
        Scenario::Assistant {
            sessions,
            tokens,
            token_rate,
            model_port,
            timeout,
            model_only,
            coalesce_ms,
            stagger_ms,
        } => {
            let plan = assistant::AssistantPlan {
                sessions: *sessions,
                tokens: *tokens,
                token_rate: *token_rate,
                model_port: *model_port,
                timeout: Duration::from_secs(*timeout),
                model_only: *model_only,
                server_pid: cli.server_pid,
                clk_tck: cli.clk_tck,
                coalesce_ms: *coalesce_ms,
                stagger: Duration::from_millis(*stagger_ms),
            };
            assistant::assistant(target, plan).await
        }
    }
}

// ---------------------------------------------------------------------------
// Connections
// ---------------------------------------------------------------------------

fn token(secret: &str, player: &str) -> BenchResult<String> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs();
    let claims = json!({"sub": player, "iat": now, "exp": now + 3600});
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .map_err(|e| e.to_string())
}

/// Where to connect and how to sign tokens.
#[derive(Clone)]
struct Target {
    addr: String,
    secret: String,
}

/// Connects as `player` and reads the welcome.
async fn connect(target: &Target, player: &str) -> BenchResult<Socket> {
    let url = format!(
        "ws://{}/ws/chat?token={}",
        target.addr,
        token(&target.secret, player)?
    );
    // Nagle off, as any realtime client does: a small frame goes out now.
    let (mut socket, _) = tokio_tungstenite::connect_async_with_config(url, None, true)
        .await
        .map_err(|e| format!("connect {player}: {e}"))?;
    match next_text(&mut socket).await? {
        text if text.contains("\"connected\"") => Ok(socket),
        other => Err(format!("{player}: expected the welcome, got {other}")),
    }
}

/// Opens `count` connections, `parallel` handshakes at a time.
async fn connect_many(
    target: &Target,
    prefix: &str,
    count: usize,
    parallel: usize,
) -> BenchResult<Vec<Socket>> {
    let mut sockets = Vec::with_capacity(count);
    let mut next = 0;
    while next < count {
        let batch = (next..count.min(next + parallel))
            .map(|n| {
                let player = format!("{prefix}{n}");
                async move { connect(target, &player).await }
            })
            .collect::<Vec<_>>();
        for socket in futures_util::future::join_all(batch).await {
            sockets.push(socket?);
            progress::add(1);
        }
        next += parallel;
    }
    Ok(sockets)
}

async fn next_text(socket: &mut Socket) -> BenchResult<String> {
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(text))) => return Ok(text.to_string()),
            Some(Ok(Message::Close(frame))) => return Err(format!("closed: {frame:?}")),
            Some(Ok(_)) => continue,
            Some(Err(err)) => return Err(err.to_string()),
            None => return Err("connection ended".into()),
        }
    }
}

async fn send_json(socket: &mut Socket, value: &Value) -> BenchResult<()> {
    socket
        .send(Message::text(value.to_string()))
        .await
        .map_err(|e| e.to_string())
}

/// Sends a request with `id` and waits for the frame that answers it.
async fn request(socket: &mut Socket, id: &str, mut body: Value) -> BenchResult<Value> {
    body["id"] = json!(id);
    send_json(socket, &body).await?;
    let marker = format!("\"reply_to\":\"{id}\"");
    loop {
        let text = next_text(socket).await?;
        if text.contains(&marker) {
            return serde_json::from_str(&text).map_err(|e| e.to_string());
        }
    }
}

/// The number after `"key":` in a frame, without parsing the whole frame.
fn number_after(text: &str, key: &str) -> Option<u64> {
    number_after_bytes(text.as_bytes(), key.as_bytes())
}

/// The unsigned number right after `key` in `text`, read as bytes.
fn number_after_bytes(text: &[u8], key: &[u8]) -> Option<u64> {
    let start = find(text, key)? + key.len();
    let digits = text.get(start..)?;
    let end = digits
        .iter()
        .position(|byte| !byte.is_ascii_digit())
        .unwrap_or(digits.len());
    if end == 0 {
        return None;
    }
    digits[..end].iter().try_fold(0u64, |number, &digit| {
        number.checked_mul(10)?.checked_add(u64::from(digit - b'0'))
    })
}

// ---------------------------------------------------------------------------
// A minimal WebSocket client for fan-out subscribers
// ---------------------------------------------------------------------------

/// Just enough of RFC 6455 to subscribe and count publications at the rate
/// a fast server delivers them: frames are read in bulk from one buffer
/// and only scanned, never decoded into messages.
struct RawSocket {
    stream: TcpStream,
    buf: Vec<u8>,
    start: usize,
}

impl RawSocket {
    async fn connect(target: &Target, player: &str) -> BenchResult<RawSocket> {
        RawSocket::connect_with(target, &token(&target.secret, player)?).await
    }

    /// Connects with a token signed beforehand.
    async fn connect_with(target: &Target, token: &str) -> BenchResult<RawSocket> {
        let mut stream = TcpStream::connect(&target.addr)
            .await
            .map_err(|e| e.to_string())?;
        let _ = stream.set_nodelay(true);
        let request = format!(
            "GET /ws/chat?token={} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            token, target.addr
        );
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut socket = RawSocket {
            stream,
            buf: Vec::with_capacity(64 * 1024),
            start: 0,
        };
        let head_end = loop {
            if let Some(at) = find(&socket.buf, b"\r\n\r\n") {
                break at + 4;
            }
            socket.fill().await?;
        };
        if !socket.buf.starts_with(b"HTTP/1.1 101") {
            return Err("upgrade refused".into());
        }
        socket.start = head_end;
        let welcome = socket.next_text().await?;
        if find(&welcome, b"\"connected\"").is_none() {
            return Err("expected the welcome".into());
        }
        Ok(socket)
    }

    async fn fill(&mut self) -> BenchResult<()> {
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > self.buf.capacity() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.reserve(64 * 1024);
        // Reads into spare capacity: no zeroing of the buffer per read.
        match self.stream.read_buf(&mut self.buf).await {
            Ok(0) => Err("connection ended".into()),
            Ok(_) => Ok(()),
            Err(err) => Err(err.to_string()),
        }
    }

    /// The next complete frame's opcode and payload, if one is buffered.
    fn frame(&mut self) -> Option<(u8, std::ops::Range<usize>)> {
        let data = &self.buf[self.start..];
        if data.len() < 2 {
            return None;
        }
        let opcode = data[0] & 0x0f;
        let (len, header) = match data[1] & 0x7f {
            126 if data.len() >= 4 => (u16::from_be_bytes([data[2], data[3]]) as usize, 4),
            127 if data.len() >= 10 => {
                let mut bytes = [0u8; 8];
                bytes.copy_from_slice(&data[2..10]);
                (u64::from_be_bytes(bytes) as usize, 10)
            }
            126 | 127 => return None,
            n => (n as usize, 2),
        };
        if data.len() < header + len {
            return None;
        }
        let payload = self.start + header..self.start + header + len;
        self.start += header + len;
        Some((opcode, payload))
    }

    async fn next_text(&mut self) -> BenchResult<Vec<u8>> {
        loop {
            match self.frame() {
                Some((1, payload)) => return Ok(self.buf[payload].to_vec()),
                Some((8, _)) => return Err("closed by the server".into()),
                Some(_) => continue,
                None => self.fill().await?,
            }
        }
    }

    /// Reads until a text frame holding `marker`, which must also hold
    /// `expected`.
    async fn wait_for_text(&mut self, marker: &[u8], expected: &[u8]) -> BenchResult<()> {
        loop {
            match self.frame() {
                Some((1, payload)) => {
                    let text = &self.buf[payload];
                    if find(text, marker).is_none() {
                        continue;
                    }
                    if find(text, expected).is_none() {
                        return Err(format!(
                            "unexpected reply {}",
                            String::from_utf8_lossy(text)
                        ));
                    }
                    return Ok(());
                }
                Some((8, _)) => return Err("closed by the server".into()),
                Some(_) => continue,
                None => self.fill().await?,
            }
        }
    }

    /// Sends a close (1000) and reads until the server's close or the end
    /// of the stream.
    async fn close(&mut self) -> BenchResult<()> {
        // FIN + close, masked with a zero key, payload: code 1000.
        let frame = [0x88u8, 0x82, 0, 0, 0, 0, 0x03, 0xE8];
        self.stream
            .write_all(&frame)
            .await
            .map_err(|e| e.to_string())?;
        loop {
            while let Some((opcode, _)) = self.frame() {
                if opcode == 8 {
                    return Ok(());
                }
            }
            if self.fill().await.is_err() {
                return Ok(());
            }
        }
    }

    async fn send_text(&mut self, text: &str) -> BenchResult<()> {
        let bytes = text.as_bytes();
        let mut frame = vec![0x81u8];
        match bytes.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n if n <= u16::MAX as usize => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        // A zero mask key: masking leaves the payload as it is.
        frame.extend_from_slice(&[0, 0, 0, 0]);
        frame.extend_from_slice(bytes);
        self.stream
            .write_all(&frame)
            .await
            .map_err(|e| e.to_string())
    }
}

/// Where `needle` first occurs in `haystack`: memchr's SIMD search, since
/// the fan-out subscribers look into every frame they receive.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(haystack, needle)
}

// ---------------------------------------------------------------------------
// Figures
// ---------------------------------------------------------------------------

fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((sorted.len() as f64) * q).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The ranks a latency distribution is given at: evenly to the median,
/// then ever closer to the worst, as a percentile plot reads them.
const PLOTTED_RANKS: [f64; 16] = [
    0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.975, 0.99, 0.995, 0.9975, 0.999, 0.9995, 0.9999,
    0.99999, 1.0,
];

fn latency_summary(mut micros: Vec<u64>) -> Value {
    micros.sort_unstable();
    let ms = |q: f64| percentile(&micros, q) as f64 / 1000.0;
    let distribution: Vec<[f64; 2]> = PLOTTED_RANKS.iter().map(|&q| [q, ms(q)]).collect();
    json!({
        "p50_ms": ms(0.50),
        "p90_ms": ms(0.90),
        "p99_ms": ms(0.99),
        "max_ms": micros.last().copied().unwrap_or(0) as f64 / 1000.0,
        "percentiles_ms": distribution,
    })
}

/// Adds the fields of `figures` (an object) to `result`.
fn merge(result: &mut Value, figures: Value) {
    if let (Some(result), Value::Object(figures)) = (result.as_object_mut(), figures) {
        result.extend(figures);
    }
}

/// Resident memory of a process in KiB, from /proc.
fn rss_kib(pid: u32) -> BenchResult<u64> {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| e.to_string())?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| "no VmRSS".to_string())
}

/// `GET /api/metrics` as JSON, by hand: one request, no client library.
async fn server_metrics(addr: &str) -> BenchResult<Value> {
    let mut stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let request = format!("GET /api/metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .await
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&response);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
    serde_json::from_str(body).map_err(|e| format!("metrics body: {e}"))
}

// ---------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------

struct FanoutPlan {
    subscribers: usize,
    messages: usize,
    rate: u64,
    window: usize,
    payload: usize,
    warmup: usize,
    timeout: Duration,
    /// Where the publisher connects: the subscribers' server, or another
    /// node of its cluster.
    publisher: Target,
    cpu: Cpu,
}

#[derive(Default)]
struct FanoutTally {
    received: u64,
    latencies_us: Vec<u64>,
    last_receipt: Option<Instant>,
    closed_early: u64,
}

async fn fanout(target: &Target, plan: FanoutPlan) -> BenchResult<Value> {
    let room = format!("bench:fanout-{}", std::process::id());
    let connect_started = Instant::now();
    let mut subscribers = Vec::with_capacity(plan.subscribers);
    for n in 0..plan.subscribers {
        subscribers.push(raw_subscriber(target, n, &room).await?);
    }
    let connect_s = connect_started.elapsed().as_secs_f64();
    let mut publisher = connect(&plan.publisher, "publisher").await?;
    let reply = request(
        &mut publisher,
        "p",
        json!({"type": "subscribe", "channels": [room]}),
    )
    .await?;
    if reply["type"] != "response" {
        return Err(format!("publisher subscribe refused: {reply}"));
    }

    let cpu = plan.cpu.window();
    let clock = Instant::now();
    let tally = Rc::new(RefCell::new(FanoutTally::default()));
    let expected_each = (plan.warmup + plan.messages) as u64;
    let deadline = clock + plan.timeout;
    let mut readers = Vec::new();
    for socket in subscribers {
        let tally = tally.clone();
        readers.push(tokio::task::spawn_local(async move {
            read_publications(socket, expected_each, clock, deadline, tally).await
        }));
    }

    let (mut sink, mut stream) = publisher.split();
    let echoed = Rc::new(RefCell::new(0u64));
    let echo_reader = {
        let echoed = echoed.clone();
        tokio::task::spawn_local(async move {
            while let Some(Ok(message)) = stream.next().await {
                if let Message::Text(text) = message {
                    if text.contains("\"publication\"") {
                        *echoed.borrow_mut() += 1;
                    }
                }
            }
        })
    };
    let padding = "x".repeat(plan.payload);
    let started = Instant::now();
    let gap = (plan.rate > 0).then(|| Duration::from_secs_f64(1.0 / plan.rate as f64));
    for n in 0..plan.warmup + plan.messages {
        match gap {
            Some(gap) => tokio::time::sleep_until((started + gap * n as u32).into()).await,
            None => {
                while (n as u64).saturating_sub(*echoed.borrow()) >= plan.window as u64 {
                    if Instant::now() > deadline {
                        return Err("publisher window never drained".into());
                    }
                    tokio::time::sleep(Duration::from_micros(200)).await;
                }
            }
        }
        let sent_us = clock.elapsed().as_micros() as u64;
        let warm = u8::from(n < plan.warmup);
        let frame = json!({"type": "publish", "channel": room,
                           "data": {"w": warm, "t": sent_us, "n": n, "pad": padding}});
        sink.send(Message::text(frame.to_string()))
            .await
            .map_err(|e| format!("publish: {e}"))?;
    }
    let publish_s = started.elapsed().as_secs_f64();
    for reader in readers {
        let _ = reader.await;
    }
    echo_reader.abort();
    let cpu = cpu.finish();

    let tally = tally.borrow();
    let expected = expected_each * plan.subscribers as u64;
    let span = tally
        .last_receipt
        .map_or(0.0, |last| last.duration_since(started).as_secs_f64());
    let mut result = json!({
        "scenario": "fanout",
        "subscribers": plan.subscribers,
        "messages": plan.messages,
        "warmup": plan.warmup,
        "rate": plan.rate,
        "connect_s": connect_s,
        "publish_s": publish_s,
        "deliveries": tally.received,
        "lost": expected.saturating_sub(tally.received),
        "closed_early": tally.closed_early,
        "deliveries_per_s": if span > 0.0 { tally.received as f64 / span } else { 0.0 },
    });
    merge(&mut result, latency_summary(tally.latencies_us.clone()));
    merge(&mut result, cpu);
    Ok(result)
}

/// Connects subscriber `n` and subscribes it to `room`.
async fn raw_subscriber(target: &Target, n: usize, room: &str) -> BenchResult<RawSocket> {
    let mut socket = RawSocket::connect(target, &format!("sub{n}")).await?;
    let id = format!("s{n}");
    let subscribe = json!({"type": "subscribe", "id": id, "channels": [room]});
    socket.send_text(&subscribe.to_string()).await?;
    let marker = format!("\"reply_to\":\"{id}\"");
    loop {
        let text = socket.next_text().await?;
        if find(&text, marker.as_bytes()).is_some() {
            if find(&text, b"\"response\"").is_none() {
                return Err(format!(
                    "subscribe refused: {}",
                    String::from_utf8_lossy(&text)
                ));
            }
            return Ok(socket);
        }
    }
}

async fn read_publications(
    mut socket: RawSocket,
    expected: u64,
    clock: Instant,
    deadline: Instant,
    tally: Rc<RefCell<FanoutTally>>,
) {
    let mut seen = 0;
    let mut latencies = Vec::with_capacity(expected as usize);
    // Searchers built once: every frame is looked into.
    let publication = memchr::memmem::Finder::new(b"\"publication\"");
    let warm_key = memchr::memmem::Finder::new(b"\"w\":");
    'reading: while seen < expected {
        // Every frame of one read arrived together: one clock reading.
        let now = clock.elapsed().as_micros() as u64;
        let before = seen;
        while let Some((opcode, payload)) = socket.frame() {
            match opcode {
                1 => {
                    let text = &socket.buf[payload];
                    // Publications say so near their start; joins and leaves
                    // of other subscribers are skipped.
                    let head = &text[..text.len().min(96)];
                    if publication.find(head).is_none() {
                        continue;
                    }
                    seen += 1;
                    let Some(at) = warm_key.find(text) else {
                        continue;
                    };
                    // Warm-up publications count but are not timed.
                    if text.get(at + 4) == Some(&b'1') {
                        continue;
                    }
                    // Anywhere in the frame: a server may order the keys.
                    if let Some(sent) = number_after_bytes(text, b"\"t\":") {
                        latencies.push(now.saturating_sub(sent));
                    }
                }
                8 => {
                    tally.borrow_mut().closed_early += 1;
                    break 'reading;
                }
                _ => {}
            }
        }
        progress::add(seen - before);
        if seen >= expected {
            break;
        }
        match tokio::time::timeout_at(deadline.into(), socket.fill()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => {
                tally.borrow_mut().closed_early += 1;
                break;
            }
            Err(_) => break,
        }
    }
    let mut tally = tally.borrow_mut();
    tally.received += seen;
    tally.latencies_us.extend(latencies);
    if seen > 0 {
        tally.last_receipt = Some(
            tally
                .last_receipt
                .map_or(Instant::now(), |last| last.max(Instant::now())),
        );
    }
}

struct IdlePlan {
    /// Ascending.
    counts: Vec<usize>,
    settle: Duration,
    ping_first: bool,
}

/// Holds authenticated connections open, reading the server's memory at
/// each of the plan's counts once the connections have settled.
async fn idle(target: &Target, server_pid: Option<u32>, plan: IdlePlan) -> BenchResult<Value> {
    let pid = server_pid.ok_or("idle needs --server-pid to read the server's memory")?;
    let before = rss_kib(pid)?;
    let started = Instant::now();
    let mut sockets = Vec::new();
    let mut curve = Vec::new();
    let mut after = before;
    for &count in &plan.counts {
        let mut more =
            connect_many(target, &format!("idle{count}-"), count - sockets.len(), 200).await?;
        if plan.ping_first {
            for (n, socket) in more.iter_mut().enumerate() {
                request(socket, &format!("i{n}"), json!({"type": "ping"})).await?;
            }
        }
        sockets.extend(more);
        tokio::time::sleep(plan.settle).await;
        after = rss_kib(pid)?;
        let per_connection = after.saturating_sub(before) as f64 / count as f64;
        curve.push(json!([count, per_connection, after]));
    }
    let connect_s = started.elapsed().as_secs_f64();
    let connections = sockets.len();
    drop(sockets);
    Ok(json!({
        "scenario": "idle",
        "connections": connections,
        "connect_s": connect_s,
        "rss_before_kib": before,
        "rss_after_kib": after,
        "kib_per_connection": after.saturating_sub(before) as f64 / connections.max(1) as f64,
        "curve": curve,
        "ping_first": plan.ping_first,
    }))
}

/// `clients` connections each send a chat message and wait for its reply,
/// one at a time, for `length`. Frames are built and scanned as bytes on
/// raw sockets: a WebSocket library's per-message work would otherwise be
/// a good part of what this measures.
async fn rtt(target: &Target, clients: usize, length: Duration, cpu: Cpu) -> BenchResult<Value> {
    let mut sockets = Vec::with_capacity(clients);
    for n in 0..clients {
        sockets.push(RawSocket::connect(target, &format!("rtt{n}")).await?);
    }
    let cpu = cpu.window();
    let started = Instant::now();
    let deadline = started + length;
    let mut tasks = Vec::new();
    for (n, mut socket) in sockets.into_iter().enumerate() {
        tasks.push(tokio::task::spawn_local(async move {
            let mut rtts = Vec::new();
            let mut seq = 0u64;
            while Instant::now() < deadline {
                let id = format!("c{n}-{seq}");
                seq += 1;
                let frame = format!(
                    r#"{{"type":"user_message","id":"{id}","content":{{"text":"I had a stressful day at work"}}}}"#
                );
                let marker = format!("\"reply_to\":\"{id}\"");
                let sent = Instant::now();
                socket.send_text(&frame).await?;
                socket.wait_for_text(marker.as_bytes(), b"\"role\":\"assistant\"").await?;
                rtts.push(sent.elapsed().as_micros() as u64);
                progress::add(1);
            }
            Ok::<Vec<u64>, String>(rtts)
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        let rtts = task.await.map_err(|e| e.to_string())??;
        all.extend(rtts);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let count = all.len();
    let latency = latency_summary(all);
    let mut result = json!({
        "scenario": "rtt",
        "clients": clients,
        "messages": count,
        "messages_per_s": count as f64 / elapsed,
        "rtt_p50_ms": latency["p50_ms"],
        "rtt_p99_ms": latency["p99_ms"],
        "percentiles_ms": latency["percentiles_ms"],
    });
    merge(&mut result, cpu.finish());
    Ok(result)
}

/// Connects and closes `cycles` times over `concurrency` workers, with one
/// chat message in between when `chat` (the `churn` scenario) and nothing
/// (the `connect` scenario) otherwise; each connect is timed from the TCP
/// connect to the welcome.
async fn churn(
    target: &Target,
    cycles: usize,
    concurrency: usize,
    chat: bool,
    cpu: Cpu,
) -> BenchResult<Value> {
    const PLAYERS_PER_WORKER: usize = 8;
    let per_worker = cycles.div_ceil(concurrency.max(1));
    // Tokens are signed before the clock starts, and frames are raw bytes:
    // the generator's own handshake work is kept out of the figure.
    let mut tokens = Vec::new();
    for worker in 0..concurrency.max(1) {
        let signed = (0..PLAYERS_PER_WORKER)
            .map(|n| token(&target.secret, &format!("churn{worker}-{n}")))
            .collect::<BenchResult<Vec<String>>>()?;
        tokens.push(signed);
    }
    let cpu = cpu.window();
    let started = Instant::now();
    let mut workers = Vec::new();
    for signed in tokens {
        let target = target.clone();
        workers.push(tokio::task::spawn_local(async move {
            let mut welcomes = Vec::with_capacity(per_worker);
            for n in 0..per_worker {
                let asked = Instant::now();
                let token = &signed[n % PLAYERS_PER_WORKER];
                let mut socket = RawSocket::connect_with(&target, token).await?;
                welcomes.push(asked.elapsed().as_micros() as u64);
                progress::add(1);
                if chat {
                    let frame =
                        r#"{"type":"user_message","id":"m","content":{"text":"checking in"}}"#;
                    socket.send_text(frame).await?;
                    socket
                        .wait_for_text(br#""reply_to":"m""#, br#""role":"assistant""#)
                        .await?;
                }
                socket.close().await?;
            }
            Ok::<Vec<u64>, String>(welcomes)
        }));
    }
    let mut welcomes = Vec::with_capacity(cycles);
    for worker in workers {
        welcomes.extend(worker.await.map_err(|e| e.to_string())??);
    }
    let done = welcomes.len();
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = cpu.finish();
    // Did the server let go of every connection? Poll its counter briefly.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut open = -1;
    while Instant::now() < deadline {
        open = server_metrics(&target.addr)
            .await
            .ok()
            .and_then(|m| m["connections"].as_i64())
            .unwrap_or(-1);
        if open == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut result = json!({
        "scenario": if chat { "churn" } else { "connect" },
        "cycles": done,
        "cycles_per_s": done as f64 / elapsed,
        "connections_after": open,
        "returned_to_zero": open == 0,
    });
    let welcome = latency_summary(welcomes);
    result["welcome_p50_ms"] = welcome["p50_ms"].clone();
    result["welcome_p99_ms"] = welcome["p99_ms"].clone();
    result["percentiles_ms"] = welcome["percentiles_ms"].clone();
    merge(&mut result, cpu);
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_read_after_their_key() {
        let frame = r#"{"type":"event","data":{"t":123456,"n":7,"pad":"xx"}}"#;
        assert_eq!(number_after(frame, "\"t\":"), Some(123_456));
        assert_eq!(number_after(frame, "\"n\":"), Some(7));
        assert_eq!(number_after(frame, "\"q\":"), None);
        assert_eq!(number_after(r#"{"t":}"#, "\"t\":"), None);
        assert_eq!(
            number_after(r#"{"t":99999999999999999999}"#, "\"t\":"),
            None
        );
    }

    #[test]
    fn percentiles_pick_ranks() {
        let values: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&values, 0.5), 50);
        assert_eq!(percentile(&values, 0.99), 99);
        assert_eq!(percentile(&[], 0.5), 0);
    }
}
