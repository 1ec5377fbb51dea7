//! The assistant's figures: how fast replies start and finish, how much
//! they stream, how many run now, and every way they end other than
//! completing (cancels, fallbacks, model errors by kind, refusals when the
//! model is at its limit). Registered in the server's one registry.

use std::collections::BTreeMap;
use std::time::Duration;

use prometheus::{
    HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};

use serde::Serialize;

use crate::support::registered::{labelled_counts, register};

/// Seconds, from a fast local model's first token to a long reply.
const REPLY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

/// The assistant's figures in `/api/metrics`: every agent together.
#[derive(Debug, Clone, Serialize)]
pub struct AssistantSnapshot {
    pub replies_active: i64,
    /// Replies ended, by outcome (completed, cancelled, failed).
    pub replies: BTreeMap<String, u64>,
    pub deltas: u64,
    pub cancels: u64,
    /// Replies the built-in assistant gave because the model could not, by reason.
    pub fallbacks: BTreeMap<String, u64>,
    /// Failed model requests, by kind.
    pub model_errors: BTreeMap<String, u64>,
    /// Tool calls, by tool (every outcome).
    pub tool_calls: BTreeMap<String, u64>,
    /// The player's answers to calls that needed them, by decision.
    pub tool_decisions: BTreeMap<String, u64>,
}

pub struct AssistantMeters {
    first_token_seconds: HistogramVec,
    reply_seconds: HistogramVec,
    replies: IntCounterVec,
    deltas: IntCounter,
    tokens: IntCounter,
    active: IntGauge,
    cancels: IntCounter,
    fallbacks: IntCounterVec,
    model_errors: IntCounterVec,
    busy: IntCounter,
    opinions: IntCounterVec,
    tool_calls: IntCounterVec,
    tool_seconds: HistogramVec,
    tool_decisions: IntCounterVec,
}

impl AssistantMeters {
    /// The names are constants: the `expect`s fail only on a programming
    /// error, at start-up.
    pub fn register(registry: &Registry) -> Self {
        let histogram = |name: &str, help: &str| {
            let opts = HistogramOpts::new(name, help).buckets(REPLY_BUCKETS.to_vec());
            register(
                registry,
                HistogramVec::new(opts, &["agent"]).expect("valid metric"),
            )
        };
        let counter = |name: &str, help: &str| {
            register(registry, IntCounter::new(name, help).expect("valid metric"))
        };
        let family = |name: &str, help: &str, label: &str| {
            register(
                registry,
                IntCounterVec::new(Opts::new(name, help), &[label]).expect("valid metric"),
            )
        };
        AssistantMeters {
            first_token_seconds: histogram(
                "hearth_assistant_first_token_seconds",
                "From a reply's start to its first piece of text, per agent",
            ),
            reply_seconds: histogram(
                "hearth_assistant_reply_seconds",
                "From a reply's start to its end, per agent",
            ),
            replies: register(
                registry,
                IntCounterVec::new(
                    Opts::new(
                        "hearth_assistant_replies_total",
                        "Replies ended, per agent and outcome",
                    ),
                    &["agent", "outcome"],
                )
                .expect("valid metric"),
            ),
            deltas: counter(
                "hearth_assistant_deltas_total",
                "message.delta events published",
            ),
            tokens: counter(
                "hearth_assistant_tokens_total",
                "Completion tokens reported by the model",
            ),
            active: register(
                registry,
                IntGauge::new("hearth_assistant_replies_active", "Replies streaming now")
                    .expect("valid metric"),
            ),
            cancels: counter(
                "hearth_assistant_cancels_total",
                "Replies cancelled by messages.cancel",
            ),
            fallbacks: family(
                "hearth_assistant_fallbacks_total",
                "Replies the built-in assistant gave because the model could not, by reason",
                "reason",
            ),
            model_errors: family(
                "hearth_assistant_model_errors_total",
                "Model requests that failed, by kind",
                "kind",
            ),
            busy: counter(
                "hearth_assistant_busy_total",
                "Requests refused because too many model requests were in flight",
            ),
            tool_calls: register(
                registry,
                IntCounterVec::new(
                    Opts::new(
                        "hearth_tool_calls_total",
                        "Tool calls run for replies, per tool and outcome (ok, failed)",
                    ),
                    &["tool", "outcome"],
                )
                .expect("valid metric"),
            ),
            tool_seconds: register(
                registry,
                HistogramVec::new(
                    HistogramOpts::new("hearth_tool_seconds", "How long each tool call ran, per tool")
                        .buckets(REPLY_BUCKETS.to_vec()),
                    &["tool"],
                )
                .expect("valid metric"),
            ),
            tool_decisions: register(
                registry,
                IntCounterVec::new(
                    Opts::new(
                        "hearth_tool_approvals_total",
                        "Tool calls that asked the player, per tool and decision (approved, rejected, timed_out)",
                    ),
                    &["tool", "decision"],
                )
                .expect("valid metric"),
            ),
            opinions: family(
                "hearth_safety_opinions_total",
                "Safety second opinions asked of the model, by outcome (agreed, raised, timeout, error)",
                "outcome",
            ),
        }
    }

    /// One safety second opinion: `agreed` (it raised nothing), `raised`,
    /// `timeout` or `error`.
    pub fn opinion(&self, outcome: &str) {
        self.opinions.with_label_values(&[outcome]).inc();
    }

    pub fn reply_started(&self) {
        self.active.inc();
    }

    pub fn first_token(&self, agent: &str, after: Duration) {
        self.first_token_seconds
            .with_label_values(&[agent])
            .observe(after.as_secs_f64());
    }

    /// `outcome`: completed, cancelled, failed.
    pub fn reply_ended(&self, agent: &str, outcome: &str, after: Duration) {
        self.active.dec();
        self.reply_seconds
            .with_label_values(&[agent])
            .observe(after.as_secs_f64());
        self.replies.with_label_values(&[agent, outcome]).inc();
    }

    pub fn delta(&self) {
        self.deltas.inc();
    }

    pub fn tokens(&self, count: u32) {
        self.tokens.inc_by(u64::from(count));
    }

    pub fn cancelled(&self) {
        self.cancels.inc();
    }

    pub fn fallback(&self, reason: &str) {
        self.fallbacks.with_label_values(&[reason]).inc();
    }

    pub fn model_error(&self, kind: &str) {
        self.model_errors.with_label_values(&[kind]).inc();
    }

    /// One tool call ended; `tool` is a name the assistant chose, so an
    /// unknown one is counted as `unknown` (the label set stays bounded).
    pub fn tool_call(&self, tool: &str, ok: bool, after: Duration) {
        let tool = if crate::assistant::tools::find(tool).is_some() {
            tool
        } else {
            "unknown"
        };
        let outcome = if ok { "ok" } else { "failed" };
        self.tool_calls.with_label_values(&[tool, outcome]).inc();
        self.tool_seconds
            .with_label_values(&[tool])
            .observe(after.as_secs_f64());
    }

    /// The player's answer to a call that needed it: `approved`,
    /// `rejected` or `timed_out` (only tools that exist ask).
    pub fn tool_decision(&self, tool: &str, decision: &str) {
        self.tool_decisions
            .with_label_values(&[tool, decision])
            .inc();
    }

    pub fn busy(&self) {
        self.busy.inc();
    }

    pub fn active(&self) -> i64 {
        self.active.get()
    }

    pub fn snapshot(&self) -> AssistantSnapshot {
        AssistantSnapshot {
            replies_active: self.active.get(),
            replies: labelled_counts(&self.replies, "outcome"),
            deltas: self.deltas.get(),
            cancels: self.cancels.get(),
            fallbacks: labelled_counts(&self.fallbacks, "reason"),
            model_errors: labelled_counts(&self.model_errors, "kind"),
            tool_calls: labelled_counts(&self.tool_calls, "tool"),
            tool_decisions: labelled_counts(&self.tool_decisions, "decision"),
        }
    }
}
