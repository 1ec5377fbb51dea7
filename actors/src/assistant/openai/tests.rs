//! The model client against a fake chat-completions server: a thread
//! speaking real HTTP/1.1 with chunked bodies and real event-stream
//! framing on 127.0.0.1, scripted by each test. The test and the server
//! wait on each other through channels, never on the clock; the clock is
//! only read to check how long a timeout took.

use std::future::Future;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};

use super::*;
use crate::assistant::{StatusClass, Turn};
use crate::model::ids::PlayerId;
use crate::therapy::crisis::{detect_anxiety_in, detect_crisis_in};
use crate::therapy::text::NormalizedText;

/// How long either side waits for the other before the test fails.
const PATIENCE: Duration = Duration::from_secs(10);

/// How late a timeout may fire on a loaded machine and still pass.
const MARGIN: Duration = Duration::from_millis(1500);

fn settings(base_url: &str, timeout: Duration) -> OpenAiSettings {
    OpenAiSettings {
        base_url: base_url.to_string(),
        model: "test-model".into(),
        api_key: None,
        timeout,
        max_tokens: None,
        temperature: None,
    }
}

fn assistant(base_url: &str) -> OpenAiAssistant {
    assistant_with(base_url, Duration::from_secs(5))
}

fn assistant_with(base_url: &str, timeout: Duration) -> OpenAiAssistant {
    OpenAiAssistant::new(settings(base_url, timeout)).unwrap()
}

fn reply_to(assistant: &OpenAiAssistant, raw: &str) -> ReplyStream {
    let player = PlayerId::parse("tester").unwrap();
    let text = NormalizedText::new(raw);
    let crisis = detect_crisis_in(&text);
    assistant.reply(&Turn {
        player: &player,
        raw,
        text: &text,
        crisis: &crisis,
        anxious: detect_anxiety_in(&text),
        history: &[],
        instructions: "",
        tools: &[],
    })
}

/// Runs `work` in an actix system, as a chat processor's thread would.
fn run<T>(work: impl Future<Output = T>) -> T {
    actix_rt::System::new().block_on(work)
}

/// The failure a reply ended with: its reason and whether text came first.
fn failure(event: Option<ReplyEvent>) -> (ModelError, bool) {
    match event {
        Some(ReplyEvent::Failed(AssistantError::Model {
            reason,
            after_first_piece,
        })) => (reason, after_first_piece),
        other => panic!("expected a model failure, got {other:?}"),
    }
}

fn text(event: Option<ReplyEvent>) -> String {
    match event {
        Some(ReplyEvent::Text(piece)) => piece,
        other => panic!("expected text, got {other:?}"),
    }
}

fn done(event: Option<ReplyEvent>) -> ReplyDone {
    match event {
        Some(ReplyEvent::Done(done)) => done,
        other => panic!("expected done, got {other:?}"),
    }
}

/// Starts a fake server running `script` on its own thread; the base URL
/// to give the client.
fn serve(script: impl FnOnce(TcpListener) + Send + 'static) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || script(listener));
    format!("http://{addr}/v1")
}

/// A request as the fake server read it.
#[derive(Debug)]
struct Request {
    line: String,
    headers: Vec<(String, String)>,
    body: Value,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(known, _)| known == name)
            .map(|(_, value)| value.as_str())
    }
}

/// One connection the fake server accepted.
struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Conn {
    fn accept(listener: &TcpListener) -> Conn {
        let (stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        Conn {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        }
    }

    /// Reads one request: its head, then a body of `Content-Length`.
    fn request(&mut self) -> Request {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        let mut headers = Vec::new();
        loop {
            let mut header = String::new();
            self.reader.read_line(&mut header).unwrap();
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            let (name, value) = header.split_once(':').unwrap();
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
        let length: usize = headers
            .iter()
            .find(|(name, _)| name == "content-length")
            .map_or(0, |(_, value)| value.parse().unwrap());
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).unwrap();
        Request {
            line: line.trim_end().to_string(),
            headers,
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        }
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.writer.write_all(bytes)?;
        self.writer.flush()
    }

    /// The head of a streamed answer; its body comes in chunks.
    fn stream_head(&mut self) {
        self.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\
              Transfer-Encoding: chunked\r\n\r\n",
        )
        .unwrap();
    }

    fn chunk(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut framed = format!("{:x}\r\n", bytes.len()).into_bytes();
        framed.extend_from_slice(bytes);
        framed.extend_from_slice(b"\r\n");
        self.write(&framed)
    }

    fn event(&mut self, data: &str) {
        self.chunk(format!("data: {data}\n\n").as_bytes()).unwrap();
    }

    fn token(&mut self, text: &str) {
        let chunk = json!({
            "id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "test-model",
            "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": null}],
        });
        self.event(&chunk.to_string());
    }

    fn finish(&mut self, reason: &str) {
        let chunk = json!({"choices": [{"index": 0, "delta": {}, "finish_reason": reason}]});
        self.event(&chunk.to_string());
    }

    fn usage(&mut self, prompt: u32, completion: u32) {
        let chunk = json!({
            "choices": [],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                      "total_tokens": prompt + completion},
        });
        self.event(&chunk.to_string());
    }

    /// `[DONE]` and the body's last chunk, in one write.
    fn done(&mut self) {
        self.write(b"e\r\ndata: [DONE]\n\n\r\n0\r\n\r\n").unwrap();
    }

    /// The body's last chunk: a clean end of the response.
    fn end(&mut self) {
        self.write(b"0\r\n\r\n").unwrap();
    }

    /// A whole reply of `pieces`.
    fn answer(&mut self, pieces: &[&str]) {
        self.stream_head();
        for piece in pieces {
            self.token(piece);
        }
        self.finish("stop");
        self.usage(10, pieces.len() as u32);
        self.done();
    }

    /// An answer with a status and a JSON body, then the connection closes.
    fn status(&mut self, status: &str, extra_headers: &str, body: &str) {
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
             Connection: close\r\n{extra_headers}\r\n",
            body.len()
        );
        self.write(head.as_bytes()).unwrap();
        self.write(body.as_bytes()).unwrap();
    }

    /// Waits, at most `PATIENCE`, for the client to close the connection.
    fn closed_by_client(&mut self) -> bool {
        let mut buf = [0; 256];
        loop {
            match self.reader.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(err) if err.kind() == io::ErrorKind::ConnectionReset => return true,
                Err(_) => return false,
            }
        }
    }

    /// Ends the connection with a reset rather than a clean close.
    fn reset(self) {
        socket2::SockRef::from(&self.writer)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
    }
}

/// Blocks a fake server's thread until the test says to go on; `false`
/// when the test has ended instead.
fn wait_for(go: &mpsc::Receiver<()>) -> bool {
    go.recv_timeout(PATIENCE).is_ok()
}

#[test]
fn paced_tokens_arrive_as_separate_pieces_in_order_then_done_with_usage() {
    let (requests, requests_seen) = mpsc::channel();
    let (go, server_go) = mpsc::channel();
    let base_url = serve(move |listener| {
        let mut conn = Conn::accept(&listener);
        requests.send(conn.request()).unwrap();
        conn.stream_head();
        conn.event(
            r#"{"choices":[{"index":0,"delta":{"role":"assistant"},"finish_reason":null}]}"#,
        );
        conn.token("I hear you.");
        wait_for(&server_go);
        conn.token(" That sounds");
        wait_for(&server_go);
        conn.token(" hard.");
        conn.finish("stop");
        conn.usage(42, 7);
        conn.done();
    });
    let assistant = OpenAiAssistant::new(OpenAiSettings {
        api_key: Some("sk-test-key".into()),
        max_tokens: Some(200),
        temperature: Some(0.5),
        ..settings(&format!("{base_url}/"), Duration::from_secs(5))
    })
    .unwrap();
    let mut stream = reply_to(&assistant, "My week was rough, honestly");
    let (pieces, finished, after) = run(async {
        let mut pieces = vec![text(stream.next().await)];
        go.send(()).unwrap();
        pieces.push(text(stream.next().await));
        go.send(()).unwrap();
        pieces.push(text(stream.next().await));
        let finished = done(stream.next().await);
        (pieces, finished, stream.next().await)
    });
    assert_eq!(pieces, ["I hear you.", " That sounds", " hard."]);
    assert_eq!(
        finished.usage,
        Usage {
            prompt_tokens: Some(42),
            completion_tokens: Some(7)
        }
    );
    assert_eq!(finished.finish_reason, Some(FinishReason::Stop));
    assert!(after.is_none(), "the stream ends after Done");

    let request = requests_seen.recv_timeout(PATIENCE).unwrap();
    assert_eq!(request.line, "POST /v1/chat/completions HTTP/1.1");
    assert_eq!(request.header("authorization"), Some("Bearer sk-test-key"));
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.header("accept"), Some("text/event-stream"));
    let body = &request.body;
    assert_eq!(body["model"], "test-model");
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"], json!({"include_usage": true}));
    assert_eq!(body["max_tokens"], 200);
    assert_eq!(body["temperature"], 0.5);
    let messages = body["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0]["role"], "system");
    assert_eq!(messages[0]["content"], prompt::SYSTEM_PROMPT);
    assert_eq!(
        messages[1],
        json!({"role": "user", "content": "My week was rough, honestly"})
    );
}

#[test]
fn a_finish_then_the_end_of_the_stream_is_done_whatever_the_framing() {
    let (requests, requests_seen) = mpsc::channel();
    let base_url = serve(move |listener| {
        let mut conn = Conn::accept(&listener);
        requests.send(conn.request()).unwrap();
        conn.stream_head();
        // CRLF line ends, comments, an event split over two writes, data
        // over two lines, and no [DONE].
        conn.chunk(b": keep-alive\r\n\r\n").unwrap();
        conn.chunk(b"data: {\"choices\":[{\"delta\":{\"content\":\"Hel")
            .unwrap();
        conn.chunk(b"lo\"}}]}\r\n\r\n").unwrap();
        conn.chunk(b"data: {\"choices\":\r\ndata: [{\"delta\":{\"content\":\" there\"},\"finish_reason\":\"length\"}]}\r\n\r\n")
            .unwrap();
        conn.end();
    });
    let assistant = assistant(&base_url);
    let stream = reply_to(&assistant, "hi");
    let events: Vec<ReplyEvent> = run(stream.collect());
    let [ReplyEvent::Text(first), ReplyEvent::Text(second), ReplyEvent::Done(finished)] =
        &events[..]
    else {
        panic!("{events:?}");
    };
    assert_eq!((first.as_str(), second.as_str()), ("Hello", " there"));
    assert_eq!(finished.finish_reason, Some(FinishReason::Length));
    assert_eq!(finished.usage, Usage::default(), "no usage chunk came");
    let request = requests_seen.recv_timeout(PATIENCE).unwrap();
    assert_eq!(request.header("authorization"), None, "no key, no header");
}

#[test]
fn error_statuses_fail_before_the_first_piece_with_their_class() {
    let cases: [(&str, &str, StatusClass, Option<Duration>); 5] = [
        (
            "429 Too Many Requests",
            "Retry-After: 7\r\n",
            StatusClass::RateLimited,
            Some(Duration::from_secs(7)),
        ),
        ("500 Internal Server Error", "", StatusClass::Server, None),
        ("503 Service Unavailable", "", StatusClass::Server, None),
        ("401 Unauthorized", "", StatusClass::Auth, None),
        ("403 Forbidden", "", StatusClass::Auth, None),
    ];
    let statuses: Vec<(&'static str, &'static str)> =
        cases.iter().map(|case| (case.0, case.1)).collect();
    let base_url = serve(move |listener| {
        for (status, headers) in statuses {
            let mut conn = Conn::accept(&listener);
            conn.request();
            let body = json!({"error": {"message": format!("because {status}"), "type": "x"}});
            conn.status(status, headers, &body.to_string());
        }
    });
    let assistant = assistant(&base_url);
    for (status, _, class, retry_after) in cases {
        let mut stream = reply_to(&assistant, "hello");
        let (reason, after_first_piece) = failure(run(stream.next()));
        assert!(!after_first_piece, "{status}");
        assert_eq!(reason.status_class(), Some(class), "{status}");
        let ModelError::Status {
            status: code,
            retry_after: said_retry,
            detail,
        } = &reason
        else {
            panic!("{reason:?}");
        };
        assert_eq!(status.split(' ').next().unwrap(), code.to_string());
        assert_eq!(*said_retry, retry_after);
        assert_eq!(detail, &format!("because {status}"));
        // What the server said stays out of what a client may be shown.
        assert!(!reason.to_string().contains("because"), "{reason}");
        assert!(run(stream.next()).is_none());
    }
}

#[test]
fn a_refused_connection_fails_before_the_first_piece() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // The listener is gone: nothing accepts on the port.
    let assistant = assistant(&format!("http://127.0.0.1:{port}/v1"));
    let (reason, after_first_piece) = failure(run(reply_to(&assistant, "hi").next()));
    assert!(matches!(reason, ModelError::Connect(_)), "{reason:?}");
    assert!(!after_first_piece);
}

/// A server that stops before the first token in one of three places.
#[derive(Debug, Clone, Copy)]
enum Stall {
    BeforeTheStatus,
    AfterTheStatus,
    AfterEventsWithoutText,
}

#[test]
fn no_first_token_within_the_timeout_fails_within_it_plus_a_margin() {
    let timeout = Duration::from_millis(300);
    for stall in [
        Stall::BeforeTheStatus,
        Stall::AfterTheStatus,
        Stall::AfterEventsWithoutText,
    ] {
        let (release, released) = mpsc::channel::<()>();
        let base_url = serve(move |listener| {
            let mut conn = Conn::accept(&listener);
            conn.request();
            match stall {
                Stall::BeforeTheStatus => {}
                Stall::AfterTheStatus => conn.stream_head(),
                Stall::AfterEventsWithoutText => {
                    conn.stream_head();
                    conn.chunk(b": still thinking\n\n").unwrap();
                    conn.event(r#"{"choices":[{"delta":{"role":"assistant","content":""}}]}"#);
                }
            }
            // Holds the connection open until the test is over.
            wait_for(&released);
        });
        let assistant = assistant_with(&base_url, timeout);
        let started = Instant::now();
        let (reason, after_first_piece) = failure(run(reply_to(&assistant, "hi").next()));
        let took = started.elapsed();
        assert_eq!(reason, ModelError::Timeout(timeout), "{stall:?}");
        assert!(!after_first_piece, "{stall:?}");
        assert!(took >= timeout, "{stall:?}: gave up after {took:?}");
        assert!(took < timeout + MARGIN, "{stall:?}: took {took:?}");
        drop(release);
    }
}

#[test]
fn a_stall_after_the_first_piece_fails_as_stalled() {
    let timeout = Duration::from_millis(300);
    let (release, released) = mpsc::channel::<()>();
    let base_url = serve(move |listener| {
        let mut conn = Conn::accept(&listener);
        conn.request();
        conn.stream_head();
        conn.token("Hi");
        wait_for(&released);
    });
    let assistant = assistant_with(&base_url, timeout);
    let mut stream = reply_to(&assistant, "hi");
    let (first, (reason, after_first_piece), took) = run(async {
        let first = text(stream.next().await);
        let started = Instant::now();
        let failed = failure(stream.next().await);
        (first, failed, started.elapsed())
    });
    assert_eq!(first, "Hi");
    assert_eq!(reason, ModelError::Stalled(timeout));
    assert!(after_first_piece);
    assert!(took >= timeout && took < timeout + MARGIN, "{took:?}");
    drop(release);
}

#[test]
fn a_reset_mid_stream_fails_after_the_first_piece() {
    let (go, server_go) = mpsc::channel();
    let base_url = serve(move |listener| {
        let mut conn = Conn::accept(&listener);
        conn.request();
        conn.stream_head();
        conn.token("Hi");
        wait_for(&server_go);
        conn.reset();
    });
    let assistant = assistant(&base_url);
    let mut stream = reply_to(&assistant, "hi");
    let (first, (reason, after_first_piece)) = run(async {
        let first = text(stream.next().await);
        go.send(()).unwrap();
        (first, failure(stream.next().await))
    });
    assert_eq!(first, "Hi");
    assert!(
        matches!(reason, ModelError::Closed { error: Some(_) }),
        "{reason:?}"
    );
    assert!(after_first_piece);
}

#[test]
fn a_stream_that_ends_before_done_or_a_finish_fails() {
    // After a piece: the body ends cleanly, but the reply has not.
    let base_url = serve(move |listener| {
        let mut conn = Conn::accept(&listener);
        conn.request();
        conn.stream_head();
        conn.token("Hi");
        conn.end();
    });
    let events: Vec<ReplyEvent> = run(reply_to(&assistant(&base_url), "hi").collect());
    assert!(matches!(&events[0], ReplyEvent::Text(piece) if piece == "Hi"));
    let (reason, after_first_piece) = failure(events.into_iter().nth(1));
    assert_eq!(reason, ModelError::Closed { error: None });
    assert!(after_first_piece);

    // Before any piece: the connection closes in the middle of the body.
    let base_url = serve(move |listener| {
        let mut conn = Conn::accept(&listener);
        conn.request();
        conn.stream_head();
        conn.writer.shutdown(Shutdown::Both).unwrap();
    });
    let (reason, after_first_piece) = failure(run(reply_to(&assistant(&base_url), "hi").next()));
    assert!(matches!(reason, ModelError::Closed { .. }), "{reason:?}");
    assert!(!after_first_piece);
}

#[test]
fn a_malformed_event_fails() {
    for (before, bad) in [(true, "{\"choices\": ["), (false, "{\"choices\": 5}")] {
        let base_url = serve(move |listener| {
            let mut conn = Conn::accept(&listener);
            conn.request();
            conn.stream_head();
            if before {
                conn.token("Hi");
            }
            conn.event(bad);
            conn.done();
        });
        let events: Vec<ReplyEvent> = run(reply_to(&assistant(&base_url), "hi").collect());
        let (last, pieces) = events.split_last().unwrap();
        assert_eq!(pieces.len(), usize::from(before), "{events:?}");
        let ReplyEvent::Failed(AssistantError::Model {
            reason: ModelError::Malformed(_),
            after_first_piece: after,
        }) = last
        else {
            panic!("{last:?}");
        };
        assert_eq!(*after, before);
    }
}

#[test]
fn an_event_over_the_cap_fails() {
    let base_url = serve(move |listener| {
        let mut conn = Conn::accept(&listener);
        conn.request();
        conn.stream_head();
        let mut sent = 0;
        let piece = vec![b'x'; 64 << 10];
        // The client hangs up once it has seen too much: stop then.
        while sent <= MAX_EVENT_BYTES && conn.chunk(&piece).is_ok() {
            sent += piece.len();
        }
    });
    let (reason, after_first_piece) = failure(run(reply_to(&assistant(&base_url), "hi").next()));
    assert_eq!(reason, ModelError::Oversized(MAX_EVENT_BYTES));
    assert!(!after_first_piece);
}

#[test]
fn an_error_event_mid_stream_fails_after_the_first_piece() {
    let base_url = serve(move |listener| {
        let mut conn = Conn::accept(&listener);
        conn.request();
        conn.stream_head();
        conn.token("Hi");
        conn.event(r#"{"error":{"message":"the model is overloaded","code":503}}"#);
        conn.done();
    });
    let events: Vec<ReplyEvent> = run(reply_to(&assistant(&base_url), "hi").collect());
    assert_eq!(events.len(), 2, "{events:?}");
    let (reason, after_first_piece) = failure(events.into_iter().nth(1));
    assert_eq!(
        reason,
        ModelError::Remote {
            detail: "the model is overloaded".into()
        }
    );
    assert!(after_first_piece);
}

#[test]
fn a_reply_without_text_fails_as_empty() {
    let base_url = serve(move |listener| {
        let mut conn = Conn::accept(&listener);
        conn.request();
        conn.answer(&[]);
    });
    let events: Vec<ReplyEvent> = run(reply_to(&assistant(&base_url), "hi").collect());
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        failure(events.into_iter().next()),
        (ModelError::Empty, false)
    );
}

#[test]
fn dropping_the_stream_closes_the_connection() {
    // Mid-reply: after the first piece.
    let (closed, seen_closed) = mpsc::channel();
    let base_url = serve(move |listener| {
        let mut conn = Conn::accept(&listener);
        conn.request();
        conn.stream_head();
        conn.token("Hi");
        closed.send(conn.closed_by_client()).unwrap();
    });
    let assistant = assistant(&base_url);
    let first = run(async {
        let mut stream = reply_to(&assistant, "hi");
        let first = text(stream.next().await);
        drop(stream);
        first
    });
    assert_eq!(first, "Hi");
    assert_eq!(seen_closed.recv_timeout(PATIENCE), Ok(true));

    // Before the status: the request is out, the answer not yet.
    let (read, request_read) = tokio::sync::oneshot::channel();
    let (closed, seen_closed) = mpsc::channel();
    let base_url = serve(move |listener| {
        let mut conn = Conn::accept(&listener);
        conn.request();
        read.send(()).unwrap();
        closed.send(conn.closed_by_client()).unwrap();
    });
    let assistant = self::assistant(&base_url);
    run(async {
        let mut stream = reply_to(&assistant, "hi");
        tokio::select! {
            event = stream.next() => panic!("no answer was sent, yet {event:?}"),
            _ = request_read => {}
        }
        drop(stream);
    });
    assert_eq!(seen_closed.recv_timeout(PATIENCE), Ok(true));
}

#[test]
fn replies_on_one_thread_reuse_the_connection() {
    let (served, served_seen) = mpsc::channel();
    let base_url = serve(move |listener| {
        let mut conn = Conn::accept(&listener);
        for n in 0..2 {
            conn.request();
            conn.answer(&["Reply ", if n == 0 { "one." } else { "two." }]);
            served.send(n).unwrap();
        }
    });
    let assistant = assistant_with(&base_url, Duration::from_secs(3));
    let texts = run(async {
        let mut texts = Vec::new();
        for _ in 0..2 {
            let events: Vec<ReplyEvent> = reply_to(&assistant, "hi").collect().await;
            let mut text = String::new();
            for event in events {
                match event {
                    ReplyEvent::Text(piece) => text.push_str(&piece),
                    ReplyEvent::Done(_) | ReplyEvent::Tool(_) => {}
                    ReplyEvent::Failed(err) => panic!("{err:?}"),
                }
            }
            texts.push(text);
        }
        texts
    });
    assert_eq!(texts, ["Reply one.", "Reply two."]);
    assert_eq!(served_seen.recv_timeout(PATIENCE), Ok(0));
    assert_eq!(served_seen.recv_timeout(PATIENCE), Ok(1));
}

#[test]
fn the_shared_suite_passes() {
    let base_url = serve(move |listener| loop {
        let mut conn = Conn::accept(&listener);
        conn.request();
        conn.answer(&["I'm here with you. ", "What feels most pressing right now?"]);
    });
    crate::assistant::conformance::run(&assistant(&base_url));
}

#[test]
fn events_decode_into_pieces_finish_reasons_and_usage() {
    let chunk =
        |text: Option<&str>, finish: Option<&str>, usage: Option<(u32, u32)>| Decoded::Chunk {
            text: text.map(str::to_string),
            tool_calls: Vec::new(),
            finish_reason: finish.map(FinishReason::parse),
            usage: usage.map(|(prompt, completion)| Usage {
                prompt_tokens: Some(prompt),
                completion_tokens: Some(completion),
            }),
        };
    let cases = [
        (
            r#"{"choices":[{"index":0,"delta":{"content":"Hi"}}]}"#,
            chunk(Some("Hi"), None, None),
        ),
        (
            r#"{"choices":[{"delta":{"role":"assistant"}}]}"#,
            chunk(None, None, None),
        ),
        (
            r#"{"choices":[{"delta":{"content":""}}]}"#,
            chunk(None, None, None),
        ),
        (
            r#"{"choices":[{"delta":{"content":null},"finish_reason":"stop"}]}"#,
            chunk(None, Some("stop"), None),
        ),
        (
            r#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4}}"#,
            chunk(None, None, Some((3, 4))),
        ),
        (
            r#"{"choices":null,"usage":null,"error":null}"#,
            chunk(None, None, None),
        ),
        (
            r#"{"object":"chat.completion.chunk"}"#,
            chunk(None, None, None),
        ),
        ("[DONE]", Decoded::Done),
    ];
    for (data, expected) in cases {
        assert_eq!(decode(data), Ok(expected), "{data}");
    }
    assert_eq!(
        decode(r#"{"choices":[{"finish_reason":"tool_calls"}]}"#),
        Ok(chunk(None, Some("tool_calls"), None))
    );
    // A tool call's first fragment names it; later ones carry arguments.
    let fragment = decode(
        r#"{"choices":[{"delta":{"tool_calls":[{"index":1,"id":"call_7","type":"function","function":{"name":"list_progress","arguments":"{\"a"}}]}}]}"#,
    );
    let Ok(Decoded::Chunk { tool_calls, .. }) = fragment else {
        panic!("{fragment:?}");
    };
    assert_eq!(
        tool_calls,
        [ToolCallDelta {
            index: Some(1),
            id: Some("call_7".into()),
            function: Some(FunctionDelta {
                name: Some("list_progress".into()),
                arguments: Some("{\"a".into()),
            }),
        }]
    );
    assert!(matches!(decode("{"), Err(ModelError::Malformed(_))));
    assert!(matches!(decode("not json"), Err(ModelError::Malformed(_))));
    assert_eq!(
        decode(r#"{"error":"gone"}"#),
        Err(ModelError::Remote {
            detail: "gone".into()
        })
    );
}

#[test]
fn what_a_server_said_is_kept_short() {
    assert_eq!(detail_of(br#"{"error":{"message":"bad key"}}"#), "bad key");
    assert_eq!(
        detail_of(br#"{"message":"no such model"}"#),
        "no such model"
    );
    assert_eq!(detail_of(b"  plain text \n"), "plain text");
    assert_eq!(
        detail_of("é".repeat(1000).as_bytes()).chars().count(),
        DETAIL_CHARS
    );
}

#[test]
fn settings_are_checked_and_the_key_is_never_printed() {
    let good = settings("https://models.example/v1", Duration::from_secs(5));
    assert!(
        OpenAiAssistant::new(good.clone()).is_ok(),
        "https builds its TLS"
    );
    for (change, expected) in [
        (
            OpenAiSettings {
                base_url: "ftp://models.example".into(),
                ..good.clone()
            },
            SettingsError::BaseUrl,
        ),
        (
            OpenAiSettings {
                base_url: "models.example/v1".into(),
                ..good.clone()
            },
            SettingsError::BaseUrl,
        ),
        (
            OpenAiSettings {
                model: " ".into(),
                ..good.clone()
            },
            SettingsError::Model,
        ),
        (
            OpenAiSettings {
                timeout: Duration::ZERO,
                ..good.clone()
            },
            SettingsError::Timeout,
        ),
        (
            OpenAiSettings {
                api_key: Some("line\nbreak".into()),
                ..good.clone()
            },
            SettingsError::ApiKey,
        ),
    ] {
        assert_eq!(OpenAiAssistant::new(change).err(), Some(expected));
    }
    let keyed = OpenAiSettings {
        api_key: Some("sk-very-secret".into()),
        ..good
    };
    assert!(!format!("{keyed:?}").contains("sk-very-secret"));
    let assistant = OpenAiAssistant::new(keyed).unwrap();
    let authorization = assistant.endpoint.authorization.as_ref().unwrap();
    assert!(authorization.is_sensitive());
    assert!(!format!("{authorization:?}").contains("sk-very-secret"));
}
