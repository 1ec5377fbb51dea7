//! Server-wide counters (PROTOCOL.md section 8). Plain relaxed atomics: a
//! counter bump on the hot path costs a few nanoseconds and takes no lock.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use serde::Serialize;

#[derive(Debug, Default)]
pub struct Metrics {
    connections: AtomicI64,
    connections_total: AtomicU64,
    messages_in: AtomicU64,
    messages_out: AtomicU64,
    crisis_detected: AtomicU64,
    rate_limited: AtomicU64,
    slow_consumer_closes: AtomicU64,
}

/// A point-in-time copy of the counters, shaped as `/api/metrics` shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MetricsSnapshot {
    pub connections: i64,
    pub connections_total: u64,
    pub messages_in: u64,
    pub messages_out: u64,
    pub crisis_detected: u64,
    pub rate_limited: u64,
    pub slow_consumer_closes: u64,
}

impl Metrics {
    pub fn connection_opened(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
        self.connections_total.fetch_add(1, Ordering::Relaxed);
    }

    pub fn connection_closed(&self) {
        self.connections.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn message_in(&self) {
        self.messages_in.fetch_add(1, Ordering::Relaxed);
    }

    pub fn message_out(&self) {
        self.messages_out.fetch_add(1, Ordering::Relaxed);
    }

    pub fn crisis_detected(&self) {
        self.crisis_detected.fetch_add(1, Ordering::Relaxed);
    }

    pub fn rate_limited(&self) {
        self.rate_limited.fetch_add(1, Ordering::Relaxed);
    }

    pub fn slow_consumer_closed(&self) {
        self.slow_consumer_closes.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            connections: self.connections.load(Ordering::Relaxed),
            connections_total: self.connections_total.load(Ordering::Relaxed),
            messages_in: self.messages_in.load(Ordering::Relaxed),
            messages_out: self.messages_out.load(Ordering::Relaxed),
            crisis_detected: self.crisis_detected.load(Ordering::Relaxed),
            rate_limited: self.rate_limited.load(Ordering::Relaxed),
            slow_consumer_closes: self.slow_consumer_closes.load(Ordering::Relaxed),
        }
    }
}
