//! Connections as an operator watches them: refusals by reason, how long
//! connections last, and how long a client waits from its upgrade request
//! to the welcome. Registered in the server's one registry.

use std::time::Duration;

use prometheus::{Histogram, HistogramOpts, IntCounterVec, Opts, Registry};

use crate::support::registered::register;

/// Why a connection is refused, the label's whole set.
pub const REFUSAL_REASONS: &[&str] = &[
    "origin",
    "bad_handshake",
    "not_found",
    "server_full",
    "missing_token",
    "invalid_token",
    "token_expired",
    "too_many_connections",
];

/// Seconds, from a page opened and left to a connection held for a day.
const DURATION_BUCKETS: &[f64] = &[
    1.0,
    10.0,
    60.0,
    300.0,
    900.0,
    3600.0,
    4.0 * 3600.0,
    24.0 * 3600.0,
];

/// Seconds from the upgrade request to the welcome.
const WELCOME_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

pub struct ConnectionMeters {
    refused: IntCounterVec,
    duration_seconds: Histogram,
    welcome_seconds: Histogram,
}

impl ConnectionMeters {
    /// The names are constants: the `expect`s fail only on a programming
    /// error, at start-up.
    pub fn register(registry: &Registry) -> Self {
        let histogram = |name: &str, help: &str, buckets: &[f64]| {
            let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
            register(registry, Histogram::with_opts(opts).expect("valid metric"))
        };
        let refused = register(
            registry,
            IntCounterVec::new(
                Opts::new(
                    "hearth_connections_refused_total",
                    "WebSocket connections refused, by reason",
                ),
                &["reason"],
            )
            .expect("valid metric"),
        );
        // Every reason is exposed from zero, so a rate can be taken at once.
        for reason in REFUSAL_REASONS {
            refused.with_label_values(&[reason]);
        }
        ConnectionMeters {
            refused,
            duration_seconds: histogram(
                "hearth_connection_duration_seconds",
                "How long WebSocket connections lasted, welcome to close",
                DURATION_BUCKETS,
            ),
            welcome_seconds: histogram(
                "hearth_welcome_seconds",
                "From a client's upgrade request to its welcome frame",
                WELCOME_BUCKETS,
            ),
        }
    }

    /// `reason` is one of [`REFUSAL_REASONS`]; anything else counts as
    /// `bad_handshake`, so the label set stays closed.
    pub fn refused(&self, reason: &str) {
        let reason = if REFUSAL_REASONS.contains(&reason) {
            reason
        } else {
            "bad_handshake"
        };
        self.refused.with_label_values(&[reason]).inc();
    }

    pub fn closed_after(&self, lasted: Duration) {
        self.duration_seconds.observe(lasted.as_secs_f64());
    }

    pub fn welcomed_after(&self, waited: Duration) {
        self.welcome_seconds.observe(waited.as_secs_f64());
    }

    /// Refusals by reason, those seen at least once.
    pub fn refusals(&self) -> std::collections::BTreeMap<String, u64> {
        REFUSAL_REASONS
            .iter()
            .map(|reason| {
                let count = self.refused.with_label_values(&[reason]).get();
                (reason.to_string(), count)
            })
            .filter(|(_, count)| *count > 0)
            .collect()
    }

    pub fn welcome_histogram(&self) -> &Histogram {
        &self.welcome_seconds
    }
}
