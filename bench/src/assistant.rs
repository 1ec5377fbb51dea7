//! The `assistant` scenario: each of many players asks Hearth's assistant
//! (kind `openai`) for one streamed reply, which the fake model in this
//! process answers. Reported: per-delta and per-token latency from the
//! model's write to the client's read, the deltas' order and text, and
//! Hearth's CPU and memory for the work.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::cpu::cpu_ticks;
use crate::model::{self, ModelPlan, ModelState, SharedModel};
use crate::{connect, latency_summary, request, rss_kib, send_json, BenchResult, Socket, Target};

pub struct AssistantPlan {
    pub sessions: usize,
    pub tokens: usize,
    pub token_rate: f64,
    pub model_port: u16,
    pub timeout: Duration,
    pub model_only: bool,
    pub server_pid: Option<u32>,
    pub clk_tck: u64,
    pub coalesce_ms: Option<u64>,
    /// Session i sends `stagger * i / sessions` after the first: 0 starts
    /// every reply in the same instant, so their tokens arrive in lock-step.
    pub stagger: Duration,
}

/// Handshakes in flight while the sessions are set up.
const SETUP_PARALLEL: usize = 50;
/// The request id of `messages.send` on every connection.
const SEND_ID: &str = "2";

pub async fn assistant(target: &Target, plan: AssistantPlan) -> BenchResult<Value> {
    let started = Instant::now();
    let deadline = started + plan.timeout;
    // Bound before any session asks for a reply: Hearth connects to the
    // model only then.
    let listener = model::bind(plan.model_port).await?;
    let model_plan = Rc::new(ModelPlan {
        tokens: plan.tokens,
        rate: plan.token_rate,
        verbose: plan.model_only,
    });
    let state = SharedModel::default();
    let server =
        tokio::task::spawn_local(model::serve(listener, model_plan, state.clone(), deadline));
    if plan.model_only {
        eprintln!(
            "model: serving http://127.0.0.1:{}/v1/chat/completions for {}s (Ctrl-C stops)",
            plan.model_port,
            plan.timeout.as_secs()
        );
        let _ = server.await;
        let state = state.borrow();
        return Ok(json!({
            "scenario": "assistant-model",
            "requests": state.requests,
            "tokens_emitted": state.tokens,
        }));
    }

    let setups = setup_all(target, plan.sessions, deadline).await?;
    let setup_s = started.elapsed().as_secs_f64();
    let subscribed = setups.iter().filter(|setup| setup.subscribed).count();
    if subscribed < setups.len() {
        eprintln!(
            "assistant: {} of {} sessions could not subscribe before sending; messages.send subscribes them",
            setups.len() - subscribed,
            setups.len()
        );
    }
    // Let the server finish with the handshakes before its baseline.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_baseline = plan.server_pid.map(rss_kib).transpose()?;
    let cpu_before = plan.server_pid.map(cpu_ticks).transpose()?;

    let progress = Rc::new(Progress::default());
    let sent_at = Instant::now();
    let mut tasks = Vec::with_capacity(setups.len());
    let count = setups.len().max(1) as u32;
    for (i, setup) in setups.into_iter().enumerate() {
        let state = state.clone();
        let progress = progress.clone();
        let delay = plan.stagger * (i as u32) / count;
        tasks.push(tokio::task::spawn_local(run_session(
            setup, state, progress, deadline, delay,
        )));
    }
    let watcher = tokio::task::spawn_local(watch(
        plan.sessions,
        plan.server_pid,
        state.clone(),
        progress.clone(),
        sent_at,
        deadline,
    ));
    let mut reports = Vec::with_capacity(tasks.len());
    for task in tasks {
        reports.push(task.await.map_err(|e| e.to_string())?);
    }
    let cpu_after = plan.server_pid.map(cpu_ticks).transpose()?;
    progress.finished.set(true);
    let rss = watcher.await.map_err(|e| e.to_string())?;

    let tally = Tally::of(&reports, &state.borrow());
    let wall_s = reports
        .iter()
        .filter_map(|report| report.ended_at)
        .max()
        .map_or(0.0, |last| last.duration_since(sent_at).as_secs_f64());
    let server_cpu_ms = match (cpu_before, cpu_after) {
        (Some(before), Some(after)) => {
            Some(after.saturating_sub(before) as f64 * 1000.0 / plan.clk_tck.max(1) as f64)
        }
        _ => None,
    };
    let cpu_per_1000 = server_cpu_ms
        .filter(|_| tally.deltas > 0)
        .map(|ms| ms * 1000.0 / tally.deltas as f64);
    let kib_per_reply = match (rss_baseline, rss.all_streaming_max) {
        (Some(base), Some(streaming)) if plan.sessions > 0 => {
            Some((streaming as f64 - base as f64) / plan.sessions as f64)
        }
        _ => None,
    };
    if plan.server_pid.is_some() && rss.all_streaming_max.is_none() {
        eprintln!(
            "assistant: no memory sample found every reply streaming; kib_per_active_reply is null"
        );
    }
    let model = state.borrow();
    let mut result = json!({
        "scenario": "assistant",
        "sessions": plan.sessions,
        "tokens": plan.tokens,
        "token_rate": plan.token_rate,
        "coalesce_ms": plan.coalesce_ms,
        "stagger_ms": plan.stagger.as_millis() as u64,
        "setup_s": setup_s,
        "wall_s": wall_s,
        "completed": tally.completed,
        "failed": tally.failed,
        "cancelled": tally.cancelled,
        "timed_out": tally.timed_out,
        "errors": tally.errors,
        "fallback": tally.fallback,
        "subscribed_before_send": subscribed,
        "deltas": tally.deltas,
        "tokens_emitted": model.tokens,
        "tokens_seen": tally.tokens_seen,
        "tokens_missing": tally.tokens_missing,
        "tokens_per_delta": if tally.deltas > 0 { tally.tokens_seen as f64 / tally.deltas as f64 } else { 0.0 },
        "token_errors": tally.token_errors,
        "index_gaps": tally.index_gaps,
        "foreign_deltas": tally.foreign_deltas,
        "text_mismatches": tally.text_mismatches,
        "deltas_without_token": tally.deltas_without_token,
        "model_requests": model.requests,
        "model_repeated": model.repeated,
        "model_unmarked": model.unmarked,
        "model_max_tokens_cap": model.capped,
        "server_cpu_ms": server_cpu_ms,
        "cpu_ms_per_1000_deltas": cpu_per_1000,
        "rss_baseline_kib": rss_baseline,
        "rss_streaming_kib": rss.all_streaming_max,
        "rss_samples": rss.samples,
        "kib_per_active_reply": kib_per_reply,
        "first_errors": tally.first_errors,
    });
    merge(&mut result, "delta_", latency_summary(tally.delta_us));
    merge(&mut result, "token_", latency_summary(tally.token_us));
    merge(
        &mut result,
        "first_delta_",
        latency_summary(tally.first_delta_us),
    );
    drop(model);
    // The sockets close only now, after the server's CPU was read.
    drop(reports);
    Ok(result)
}

/// Copies `figures` into `result` with `prefix` before each key.
fn merge(result: &mut Value, prefix: &str, figures: Value) {
    if let (Some(result), Value::Object(figures)) = (result.as_object_mut(), figures) {
        for (key, value) in figures {
            result.insert(format!("{prefix}{key}"), value);
        }
    }
}

// ---------------------------------------------------------------------------
// Setting up: connect, create a session, subscribe to its channel
// ---------------------------------------------------------------------------

struct Setup {
    index: usize,
    socket: Socket,
    session_id: String,
    channel: String,
    subscribed: bool,
}

async fn setup_all(target: &Target, sessions: usize, deadline: Instant) -> BenchResult<Vec<Setup>> {
    let mut setups = Vec::with_capacity(sessions);
    let mut next = 0;
    while next < sessions {
        let batch = (next..sessions.min(next + SETUP_PARALLEL))
            .map(|index| async move {
                tokio::time::timeout_at(deadline.into(), setup(target, index))
                    .await
                    .map_err(|_| format!("session {index}: setting up timed out"))?
            })
            .collect::<Vec<_>>();
        for setup in futures_util::future::join_all(batch).await {
            setups.push(setup?);
        }
        next += SETUP_PARALLEL;
        eprintln!("assistant: {} of {sessions} sessions set up", setups.len());
    }
    Ok(setups)
}

async fn setup(target: &Target, index: usize) -> BenchResult<Setup> {
    // One player per session: per-player limits stay out of the figures.
    let player = format!("bench-assistant-{index}");
    let mut socket = connect(target, &player).await?;
    let created = request(
        &mut socket,
        "1",
        json!({"type": "request", "method": "sessions.create", "params": {}}),
    )
    .await?;
    let session_id = match (
        &created["type"],
        created["result"]["session"]["id"].as_str(),
    ) {
        (Value::String(kind), Some(id)) if kind == "response" => id.to_string(),
        _ => return Err(format!("{player}: sessions.create answered {created}")),
    };
    let channel = format!("session:{session_id}");
    // Subscribed before the send so the memory baseline has the
    // subscription in it; messages.send would subscribe it anyway.
    let answer = request(
        &mut socket,
        "s",
        json!({"type": "subscribe", "channels": [channel]}),
    )
    .await?;
    let subscribed =
        answer["type"] == "response" && answer["result"]["channels"][&channel].is_object();
    Ok(Setup {
        index,
        socket,
        session_id,
        channel,
        subscribed,
    })
}

/// The text each session sends: its marker, and nothing a crisis check
/// would answer instead of the model.
fn prompt_text(index: usize) -> String {
    format!(
        "{}{index} hello, please tell me about your day",
        model::MARKER
    )
}

// ---------------------------------------------------------------------------
// Streaming: send, then read the reply's publications
// ---------------------------------------------------------------------------

#[derive(Default)]
struct Progress {
    /// Sessions that have had their first delta.
    streaming: Cell<usize>,
    /// Sessions whose reply ended (or that gave up).
    done: Cell<usize>,
    deltas: Cell<u64>,
    finished: Cell<bool>,
}

#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Completed,
    Failed(String),
    Cancelled(String),
    TimedOut,
    Error(String),
}

struct SessionReport {
    outcome: Outcome,
    /// When the reply ended, if it did.
    ended_at: Option<Instant>,
    deltas: u64,
    delta_us: Vec<u64>,
    token_us: Vec<u64>,
    /// From sending to the first delta.
    first_delta_us: Option<u64>,
    tokens_seen: u64,
    index_gaps: u64,
    /// Tokens of another session, out of order, or unreadable.
    token_errors: u64,
    /// Deltas or an end for another message than the reply.
    foreign_deltas: u64,
    text_mismatch: bool,
    fallback: bool,
    deltas_without_token: u64,
    index: usize,
    /// Kept open until the end, so closes do not land in the CPU figure.
    _socket: Option<Socket>,
}

/// Follows one session's frames and checks its reply.
struct ReplyReader {
    index: usize,
    channel: String,
    sent_at: Instant,
    reply_id: Option<String>,
    /// The message id of the first delta; every later one must match it.
    delta_message: Option<String>,
    next_index: u64,
    next_token: usize,
    joined: String,
    /// Text after the last complete token: a delta may end inside one.
    carry: String,
    report: SessionReport,
}

impl ReplyReader {
    fn new(index: usize, channel: String, sent_at: Instant) -> ReplyReader {
        ReplyReader {
            index,
            channel,
            sent_at,
            reply_id: None,
            delta_message: None,
            next_index: 0,
            next_token: 0,
            joined: String::new(),
            carry: String::new(),
            report: SessionReport {
                outcome: Outcome::TimedOut,
                ended_at: None,
                deltas: 0,
                delta_us: Vec::new(),
                token_us: Vec::new(),
                first_delta_us: None,
                tokens_seen: 0,
                index_gaps: 0,
                token_errors: 0,
                foreign_deltas: 0,
                text_mismatch: false,
                fallback: false,
                deltas_without_token: 0,
                index,
                _socket: None,
            },
        }
    }

    /// Reads one text frame received at `received`; the outcome once the
    /// reply has ended.
    fn frame(&mut self, text: &str, received: Instant, model: &ModelState) -> Option<Outcome> {
        let frame: Value = match serde_json::from_str(text) {
            Ok(frame) => frame,
            Err(err) => return Some(Outcome::Error(format!("unreadable frame: {err}"))),
        };
        match frame["type"].as_str() {
            Some("response") if frame["reply_to"] == SEND_ID => {
                self.reply_id = frame["result"]["reply_id"].as_str().map(str::to_string);
                if self.reply_id.is_none() {
                    return Some(Outcome::Error(format!("messages.send answered {frame}")));
                }
                None
            }
            Some("error") if frame["reply_to"] == SEND_ID => Some(Outcome::Error(format!(
                "messages.send refused: {} {}",
                frame["code"], frame["message"]
            ))),
            Some("event")
                if frame["event"] == "publication" && frame["channel"] == self.channel.as_str() =>
            {
                let data = &frame["data"]["data"];
                match frame["data"]["event"].as_str() {
                    Some("message.delta") => {
                        self.delta(data, received, model);
                        None
                    }
                    Some("message.completed") => {
                        self.check_end(data);
                        if data["text"].as_str() != Some(self.joined.as_str()) {
                            self.report.text_mismatch = true;
                        }
                        self.report.fallback = data["fallback"] == true;
                        Some(Outcome::Completed)
                    }
                    Some("message.failed") => {
                        self.check_end(data);
                        Some(Outcome::Failed(
                            data["code"].as_str().unwrap_or("?").to_string(),
                        ))
                    }
                    Some("message.cancelled") => {
                        self.check_end(data);
                        Some(Outcome::Cancelled(
                            data["code"].as_str().unwrap_or("?").to_string(),
                        ))
                    }
                    _ => None,
                }
            }
            _ => None,
        }
    }

    fn delta(&mut self, data: &Value, received: Instant, model: &ModelState) {
        let report = &mut self.report;
        report.deltas += 1;
        crate::progress::add(1);
        if report.first_delta_us.is_none() {
            report.first_delta_us = Some(received.duration_since(self.sent_at).as_micros() as u64);
        }
        let index = data["index"].as_u64();
        if index != Some(self.next_index) {
            report.index_gaps += 1;
        }
        self.next_index = index.map_or(self.next_index + 1, |index| index + 1);
        let message = data["message_id"].as_str();
        match (&self.delta_message, message) {
            (None, Some(id)) => self.delta_message = Some(id.to_string()),
            (Some(first), Some(id)) if first == id => {}
            _ => report.foreign_deltas += 1,
        }
        let piece = data["text"].as_str().unwrap_or_default();
        self.joined.push_str(piece);
        self.carry.push_str(piece);
        let mut last = None;
        while let Some(end) = self.carry.find(';') {
            let token = model::parse_token(&self.carry[..end]);
            self.carry.drain(..=end);
            let Some((session, k)) = token.filter(|(session, _)| *session == self.index) else {
                report.token_errors += 1;
                continue;
            };
            if k != self.next_token {
                report.token_errors += 1;
            }
            self.next_token = k + 1;
            report.tokens_seen += 1;
            match model
                .sessions
                .get(&session)
                .and_then(|emission| emission.at.get(k))
            {
                Some(at) => {
                    let us = received.saturating_duration_since(*at).as_micros() as u64;
                    report.token_us.push(us);
                    last = Some(us);
                }
                // A token the model has no record of sending.
                None => report.token_errors += 1,
            }
        }
        match last {
            // The delta could go out only once its last token had come in.
            Some(us) => report.delta_us.push(us),
            None => report.deltas_without_token += 1,
        }
    }

    /// The end must be the reply's, with no token left half read.
    fn check_end(&mut self, data: &Value) {
        let ended = data["message_id"].as_str().or_else(|| data["id"].as_str());
        if let (Some(reply), Some(ended)) = (&self.reply_id, ended) {
            if reply != ended {
                self.report.foreign_deltas += 1;
            }
        }
        if let (Some(reply), Some(first)) = (&self.reply_id, &self.delta_message) {
            if reply != first {
                self.report.foreign_deltas += 1;
            }
        }
        if !self.carry.trim().is_empty() {
            self.report.token_errors += 1;
        }
    }
}

async fn run_session(
    mut setup: Setup,
    state: SharedModel,
    progress: Rc<Progress>,
    deadline: Instant,
    delay: Duration,
) -> SessionReport {
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let send = json!({"type": "request", "id": SEND_ID, "method": "messages.send",
                      "params": {"session_id": setup.session_id, "text": prompt_text(setup.index)}});
    let mut reader = ReplyReader::new(setup.index, setup.channel.clone(), Instant::now());
    let outcome = match send_json(&mut setup.socket, &send).await {
        Ok(()) => read_reply(&mut setup.socket, &mut reader, &state, &progress, deadline).await,
        Err(err) => Outcome::Error(format!("send: {err}")),
    };
    progress.done.set(progress.done.get() + 1);
    let mut report = reader.report;
    if outcome != Outcome::TimedOut {
        report.ended_at = Some(Instant::now());
    }
    report.outcome = outcome;
    report._socket = Some(setup.socket);
    report
}

async fn read_reply(
    socket: &mut Socket,
    reader: &mut ReplyReader,
    state: &SharedModel,
    progress: &Progress,
    deadline: Instant,
) -> Outcome {
    loop {
        let next = match tokio::time::timeout_at(deadline.into(), socket.next()).await {
            Ok(next) => next,
            Err(_) => return Outcome::TimedOut,
        };
        // Stamped before any parsing: the bench's own work is not Hearth's.
        let received = Instant::now();
        let text = match next {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(frame))) => return Outcome::Error(format!("closed: {frame:?}")),
            Some(Ok(_)) => continue,
            Some(Err(err)) => return Outcome::Error(err.to_string()),
            None => return Outcome::Error("connection ended".into()),
        };
        let deltas_before = reader.report.deltas;
        let outcome = reader.frame(&text, received, &state.borrow());
        if reader.report.deltas > deltas_before {
            progress.deltas.set(progress.deltas.get() + 1);
            if deltas_before == 0 {
                progress.streaming.set(progress.streaming.get() + 1);
            }
        }
        if let Some(outcome) = outcome {
            return outcome;
        }
    }
}

// ---------------------------------------------------------------------------
// Watching: progress on stderr, the server's memory while replies stream
// ---------------------------------------------------------------------------

struct RssSamples {
    /// The largest resident size seen while every session's model stream
    /// was running.
    all_streaming_max: Option<u64>,
    samples: u64,
}

async fn watch(
    sessions: usize,
    pid: Option<u32>,
    state: SharedModel,
    progress: Rc<Progress>,
    sent_at: Instant,
    deadline: Instant,
) -> RssSamples {
    let mut rss = RssSamples {
        all_streaming_max: None,
        samples: 0,
    };
    let tick = Duration::from_millis(100);
    let mut ticks = 0u64;
    while !progress.finished.get() && Instant::now() < deadline {
        tokio::time::sleep(tick).await;
        ticks += 1;
        if let Some(pid) = pid {
            // Sampled only while every reply is mid-stream, so the figure
            // is memory for `sessions` replies at once.
            let all_streaming = {
                let model = state.borrow();
                model.sessions.len() >= sessions
                    && model
                        .sessions
                        .values()
                        .all(|emission| !emission.at.is_empty() && !emission.finished)
            };
            if all_streaming {
                if let Ok(kib) = rss_kib(pid) {
                    rss.samples += 1;
                    rss.all_streaming_max =
                        Some(rss.all_streaming_max.map_or(kib, |max| max.max(kib)));
                }
            }
        }
        if ticks.is_multiple_of(10) && !progress.finished.get() {
            let model = state.borrow();
            let active = model
                .sessions
                .values()
                .filter(|emission| !emission.at.is_empty() && !emission.finished)
                .count();
            eprintln!(
                "assistant: {:.0}s model streams {active}, clients streaming {}, done {}/{sessions}, deltas {}, tokens emitted {}",
                sent_at.elapsed().as_secs_f64(),
                progress.streaming.get() - progress.done.get().min(progress.streaming.get()),
                progress.done.get(),
                progress.deltas.get(),
                model.tokens,
            );
        }
    }
    rss
}

// ---------------------------------------------------------------------------
// Totals
// ---------------------------------------------------------------------------

#[derive(Default)]
struct Tally {
    completed: u64,
    failed: u64,
    cancelled: u64,
    timed_out: u64,
    errors: u64,
    fallback: u64,
    deltas: u64,
    tokens_seen: u64,
    tokens_missing: u64,
    token_errors: u64,
    index_gaps: u64,
    foreign_deltas: u64,
    text_mismatches: u64,
    deltas_without_token: u64,
    delta_us: Vec<u64>,
    token_us: Vec<u64>,
    first_delta_us: Vec<u64>,
    first_errors: Vec<String>,
}

impl Tally {
    fn of(reports: &[SessionReport], model: &ModelState) -> Tally {
        let mut tally = Tally::default();
        for report in reports {
            let problem = match &report.outcome {
                Outcome::Completed => {
                    tally.completed += 1;
                    None
                }
                Outcome::Failed(code) => {
                    tally.failed += 1;
                    Some(format!("failed: {code}"))
                }
                Outcome::Cancelled(code) => {
                    tally.cancelled += 1;
                    Some(format!("cancelled: {code}"))
                }
                Outcome::TimedOut => {
                    tally.timed_out += 1;
                    Some("timed out".to_string())
                }
                Outcome::Error(err) => {
                    tally.errors += 1;
                    Some(err.clone())
                }
            };
            // A few, to say what went wrong without a line per session.
            if let Some(problem) = problem {
                if tally.first_errors.len() < 5 {
                    tally
                        .first_errors
                        .push(format!("session {}: {problem}", report.index));
                }
            }
            tally.fallback += u64::from(report.fallback);
            tally.deltas += report.deltas;
            tally.tokens_seen += report.tokens_seen;
            let emitted = model
                .sessions
                .get(&report.index)
                .map_or(0, |emission| emission.at.len() as u64);
            tally.tokens_missing += emitted.saturating_sub(report.tokens_seen);
            tally.token_errors += report.token_errors;
            tally.index_gaps += report.index_gaps;
            tally.foreign_deltas += report.foreign_deltas;
            tally.text_mismatches += u64::from(report.text_mismatch);
            tally.deltas_without_token += report.deltas_without_token;
            tally.delta_us.extend_from_slice(&report.delta_us);
            tally.token_us.extend_from_slice(&report.token_us);
            tally.first_delta_us.extend(report.first_delta_us);
        }
        tally
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{token_text, Emission};

    fn publication(channel: &str, event: &str, data: Value) -> String {
        json!({"type": "event", "event": "publication", "channel": channel, "offset": 1,
               "epoch": "e", "publisher": "server", "timestamp": "t",
               "data": {"event": event, "data": data}})
        .to_string()
    }

    #[test]
    fn a_reply_split_anywhere_is_read_token_by_token() {
        let start = Instant::now();
        let mut model = ModelState::default();
        let at = (0..4)
            .map(|k| start + Duration::from_millis(10 * k))
            .collect();
        model.sessions.insert(
            7,
            Emission {
                planned: 4,
                at,
                finished: true,
            },
        );
        let text: String = (0..4).map(|k| token_text(Some(7), k)).collect();
        let channel = "session:sess_1";
        let mut reader = ReplyReader::new(7, channel.to_string(), start);
        let response = json!({"type": "response", "reply_to": "2",
                              "result": {"message_id": "msg_u", "reply_id": "msg_r"}});
        assert_eq!(reader.frame(&response.to_string(), start, &model), None);
        // Token 1 is split across the first two deltas.
        let (first, rest) = text.split_at(11);
        let received = start + Duration::from_millis(50);
        for (index, piece) in [first, rest].into_iter().enumerate() {
            let delta = publication(
                channel,
                "message.delta",
                json!({"message_id": "msg_r", "index": index, "text": piece}),
            );
            assert_eq!(reader.frame(&delta, received, &model), None);
        }
        let done = publication(
            channel,
            "message.completed",
            json!({"id": "msg_r", "text": text}),
        );
        assert_eq!(
            reader.frame(&done, received, &model),
            Some(Outcome::Completed)
        );
        let report = &reader.report;
        assert_eq!(report.tokens_seen, 4);
        assert_eq!(report.token_us, [50_000, 40_000, 30_000, 20_000]);
        assert_eq!(report.delta_us, [50_000, 20_000]);
        assert_eq!(
            (
                report.index_gaps,
                report.token_errors,
                report.foreign_deltas,
                report.text_mismatch
            ),
            (0, 0, 0, false)
        );
    }

    #[test]
    fn gaps_strangers_and_other_channels_are_counted() {
        let start = Instant::now();
        let model = ModelState::default();
        let channel = "session:sess_1";
        let mut reader = ReplyReader::new(1, channel.to_string(), start);
        let elsewhere = publication(
            "session:sess_2",
            "message.delta",
            json!({"message_id": "m", "index": 0, "text": " s1t0;"}),
        );
        assert_eq!(reader.frame(&elsewhere, start, &model), None);
        assert_eq!(reader.report.deltas, 0);
        let skipped = publication(
            channel,
            "message.delta",
            json!({"message_id": "m", "index": 1, "text": " s2t0;"}),
        );
        reader.frame(&skipped, start, &model);
        assert_eq!(reader.report.index_gaps, 1);
        assert_eq!(reader.report.token_errors, 1);
        let failed = publication(
            channel,
            "message.failed",
            json!({"message_id": "m", "code": "model_failed"}),
        );
        assert_eq!(
            reader.frame(&failed, start, &model),
            Some(Outcome::Failed("model_failed".into()))
        );
    }
}
