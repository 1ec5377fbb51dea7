//! What operators watch: server-wide counters (docs/protocol.md, section 8) and,
//! per actor, messages handled, mailbox backlog and handling time, in a
//! Prometheus registry. Every update on the hot path is an atomic add; a
//! fan-out to N recipients counts N with one add, not N.

use std::sync::Arc;
use std::time::Instant;

use crate::support::assistant_meters::AssistantMeters;
use crate::support::connection_meters::ConnectionMeters;
use crate::support::registered::labelled_counts;
use prometheus::core::{Collector, Metric};
use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};
use serde::Serialize;

/// The actors whose work is measured; `Session` is every session summed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActorKind {
    ChatServer,
    ChatProcessor,
    ExerciseFlow,
    Broadcaster,
    Session,
}

impl ActorKind {
    pub const ALL: [ActorKind; 5] = [
        ActorKind::ChatServer,
        ActorKind::ChatProcessor,
        ActorKind::ExerciseFlow,
        ActorKind::Broadcaster,
        ActorKind::Session,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::ChatServer => "chat_server",
            ActorKind::ChatProcessor => "chat_processor",
            ActorKind::ExerciseFlow => "exercise_flow",
            ActorKind::Broadcaster => "broadcaster",
            ActorKind::Session => "session",
        }
    }
}

/// Handling-time buckets, in seconds: 1 µs to 1 s.
const HANDLE_BUCKETS: &[f64] = &[
    1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2,
    5e-2, 0.1, 0.25, 0.5, 1.0,
];

/// One actor's figures.
pub struct ActorMeter {
    handled: IntCounter,
    queued: IntCounter,
    handle_seconds: Histogram,
}

impl ActorMeter {
    /// `n` messages were put in the actor's mailbox.
    pub fn queued(&self, n: u64) {
        self.queued.inc_by(n);
    }

    /// Messages queued and not yet handled.
    pub fn backlog(&self) -> u64 {
        self.queued.get().saturating_sub(self.handled.get())
    }
}

/// Times one handled message; records it when dropped, so every return
/// path of a handler counts.
pub struct HandleTimer {
    metrics: Arc<Metrics>,
    kind: ActorKind,
    started: Instant,
}

impl Drop for HandleTimer {
    fn drop(&mut self) {
        let meter = self.metrics.actor(self.kind);
        meter.handled.inc();
        meter
            .handle_seconds
            .observe(self.started.elapsed().as_secs_f64());
    }
}

pub struct Metrics {
    registry: Registry,
    connections: IntGauge,
    connections_total: IntCounter,
    messages_in: IntCounter,
    messages_out: IntCounter,
    crisis_detected: IntCounter,
    crisis_categories: IntCounterVec,
    rate_limited: IntCounter,
    slow_consumer_closes: IntCounter,
    publications: IntCounter,
    deliveries: IntCounter,
    dropped_deliveries: IntCounter,
    closes: IntCounterVec,
    backlog_family: prometheus::IntGaugeVec,
    gauges: ScrapeGauges,
    actors: [ActorMeter; 5],
    pub assistant: AssistantMeters,
    pub connection: ConnectionMeters,
}

/// The registry's sizes, set by ChatServer as they change, and the
/// process's memory, read when scraped.
struct ScrapeGauges {
    /// The registry's own count (`connections` counts sessions, which end
    /// a moment before the registry hears of it); not a series of its own.
    registry_connections: std::sync::atomic::AtomicUsize,
    players: IntGauge,
    channels: IntGauge,
    subscriptions: IntGauge,
    presence_entries: IntGauge,
    rss_bytes: IntGauge,
}

/// Sizes that the registry actors report at scrape time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RegistrySizes {
    pub players: usize,
    pub connections: usize,
    pub channels: usize,
    pub subscriptions: usize,
    pub presence_entries: usize,
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    let counter = IntCounter::new(name, help).expect("metric names are valid");
    registry
        .register(Box::new(counter.clone()))
        .expect("each metric is registered once");
    counter
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    let gauge = IntGauge::new(name, help).expect("metric names are valid");
    registry
        .register(Box::new(gauge.clone()))
        .expect("each metric is registered once");
    gauge
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Builds the registry. The names are constants, so the `expect`s here
    /// can only fail on a programming error, at start-up.
    pub fn new() -> Self {
        let registry = Registry::new();
        let r = &registry;
        let handled_family = IntCounterVec::new(
            Opts::new("hearth_actor_handled_total", "Messages handled, per actor"),
            &["actor"],
        )
        .expect("valid metric");
        let queued_family = IntCounterVec::new(
            Opts::new(
                "hearth_actor_queued_total",
                "Messages put in the mailbox, per actor",
            ),
            &["actor"],
        )
        .expect("valid metric");
        let backlog_family = prometheus::IntGaugeVec::new(
            Opts::new(
                "hearth_actor_backlog",
                "Messages waiting in the mailbox now, per actor",
            ),
            &["actor"],
        )
        .expect("valid metric");
        let seconds_family = prometheus::HistogramVec::new(
            HistogramOpts::new(
                "hearth_actor_handle_seconds",
                "Time to handle one message, per actor",
            )
            .buckets(HANDLE_BUCKETS.to_vec()),
            &["actor"],
        )
        .expect("valid metric");
        for family in [
            Box::new(handled_family.clone()) as Box<dyn Collector>,
            Box::new(queued_family.clone()),
            Box::new(backlog_family.clone()),
            Box::new(seconds_family.clone()),
        ] {
            registry
                .register(family)
                .expect("each metric is registered once");
        }
        let meter = |kind: ActorKind| ActorMeter {
            handled: handled_family.with_label_values(&[kind.as_str()]),
            queued: queued_family.with_label_values(&[kind.as_str()]),
            handle_seconds: seconds_family.with_label_values(&[kind.as_str()]),
        };
        let closes = IntCounterVec::new(
            Opts::new("hearth_closes_total", "Connections closed, by close code"),
            &["code"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(closes.clone()))
            .expect("each metric is registered once");
        let crisis_categories = IntCounterVec::new(
            Opts::new(
                "hearth_crisis_categories_total",
                "Texts in which a crisis was detected, by clinical category (one text may count in several)",
            ),
            &["category"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(crisis_categories.clone()))
            .expect("each metric is registered once");
        Metrics {
            connections: gauge(r, "hearth_connections", "Open WebSocket connections"),
            connections_total: counter(
                r,
                "hearth_connections_total",
                "WebSocket connections accepted",
            ),
            messages_in: counter(
                r,
                "hearth_messages_in_total",
                "Messages received from clients",
            ),
            messages_out: counter(r, "hearth_messages_out_total", "Frames sent to clients"),
            crisis_detected: counter(
                r,
                "hearth_crisis_detected_total",
                "User messages in which a crisis was detected",
            ),
            crisis_categories,
            rate_limited: counter(
                r,
                "hearth_rate_limited_total",
                "Client messages refused by the rate limit",
            ),
            slow_consumer_closes: counter(
                r,
                "hearth_slow_consumer_closes_total",
                "Connections closed 4002 for not reading",
            ),
            publications: counter(
                r,
                "hearth_publications_total",
                "Publications fanned out to this node's rooms",
            ),
            deliveries: counter(
                r,
                "hearth_deliveries_total",
                "Frames handed to connections by fan-out",
            ),
            dropped_deliveries: counter(
                r,
                "hearth_dropped_deliveries_total",
                "Fan-out frames dropped (connection gone or unsubscribed)",
            ),
            closes,
            gauges: ScrapeGauges {
                registry_connections: Default::default(),
                players: gauge(r, "hearth_players", "Players with at least one connection"),
                channels: gauge(
                    r,
                    "hearth_channels",
                    "Channels with at least one subscriber",
                ),
                subscriptions: gauge(
                    r,
                    "hearth_subscriptions",
                    "Channel subscriptions of open connections",
                ),
                presence_entries: gauge(
                    r,
                    "hearth_presence_entries",
                    "Players present in presence channels",
                ),
                rss_bytes: gauge(
                    r,
                    "hearth_process_resident_memory_bytes",
                    "Resident memory of the process",
                ),
            },
            actors: ActorKind::ALL.map(meter),
            assistant: AssistantMeters::register(r),
            connection: ConnectionMeters::register(r),
            backlog_family,
            registry,
        }
    }

    pub fn actor(&self, kind: ActorKind) -> &ActorMeter {
        &self.actors[kind as usize]
    }

    /// Starts timing one message handled by `kind`.
    pub fn handling(self: &Arc<Self>, kind: ActorKind) -> HandleTimer {
        HandleTimer {
            metrics: self.clone(),
            kind,
            started: Instant::now(),
        }
    }

    pub fn connection_opened(&self) {
        self.connections.inc();
        self.connections_total.inc();
    }

    /// A client may close with any code; only the codes RFC 6455 and
    /// Hearth define get a label of their own, so a client cannot grow the
    /// series without bound.
    pub fn connection_closed(&self, code: u16) {
        self.connections.dec();
        let label = match code {
            1000..=1003 | 1005..=1015 | 4001 | 4002 => code.to_string(),
            _ => "other".to_string(),
        };
        self.closes.with_label_values(&[&label]).inc();
    }

    pub fn message_in(&self) {
        self.messages_in.inc();
    }

    pub fn message_out(&self) {
        self.messages_out.inc();
    }

    pub fn messages_out(&self, n: u64) {
        self.messages_out.inc_by(n);
    }

    /// Shows every crisis category at 0 from the start, so that a rate
    /// over any of them is defined before its first detection.
    pub fn crisis_categories_known<'a>(&self, categories: impl IntoIterator<Item = &'a str>) {
        for category in categories {
            self.crisis_categories.with_label_values(&[category]);
        }
    }

    /// One text with a crisis, in the clinical categories named.
    pub fn crisis_detected<'a>(&self, categories: impl IntoIterator<Item = &'a str>) {
        self.crisis_detected.inc();
        for category in categories {
            self.crisis_categories.with_label_values(&[category]).inc();
        }
    }

    pub fn rate_limited(&self) {
        self.rate_limited.inc();
    }

    pub fn slow_consumer_closed(&self) {
        self.slow_consumer_closes.inc();
    }

    pub fn published(&self) {
        self.publications.inc();
    }

    pub fn delivered(&self, n: u64) {
        self.deliveries.inc_by(n);
    }

    pub fn dropped(&self, n: u64) {
        self.dropped_deliveries.inc_by(n);
    }

    pub fn open_connections(&self) -> i64 {
        self.connections.get()
    }

    /// Everything `/api/metrics` shows; `sizes` come from the registry.
    /// ChatServer's registry changed: its sizes, for the next scrape (which
    /// then asks no actor).
    pub fn set_registry_sizes(&self, sizes: RegistrySizes) {
        let as_i64 = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.gauges.players.set(as_i64(sizes.players));
        self.gauges.channels.set(as_i64(sizes.channels));
        self.gauges.subscriptions.set(as_i64(sizes.subscriptions));
        self.gauges
            .presence_entries
            .set(as_i64(sizes.presence_entries));
        // Last: a reader that sees the connections gone sees the rest too.
        self.gauges
            .registry_connections
            .store(sizes.connections, std::sync::atomic::Ordering::Release);
    }

    fn registry_sizes(&self) -> RegistrySizes {
        // First: what was set before it is then seen too.
        let connections = self
            .gauges
            .registry_connections
            .load(std::sync::atomic::Ordering::Acquire);
        let as_usize = |gauge: &IntGauge| usize::try_from(gauge.get()).unwrap_or(0);
        RegistrySizes {
            players: as_usize(&self.gauges.players),
            connections,
            channels: as_usize(&self.gauges.channels),
            subscriptions: as_usize(&self.gauges.subscriptions),
            presence_entries: as_usize(&self.gauges.presence_entries),
        }
    }

    pub fn snapshot(&self) -> MetricsSnapshot {
        let sizes = self.registry_sizes();
        let closes = labelled_counts(&self.closes, "code");
        let actors = ActorKind::ALL
            .iter()
            .map(|&kind| {
                let meter = self.actor(kind);
                let histogram = meter.handle_seconds.clone();
                (
                    kind.as_str(),
                    ActorSnapshot {
                        handled: meter.handled.get(),
                        backlog: meter.backlog(),
                        p50_us: quantile_us(&histogram, 0.50),
                        p99_us: quantile_us(&histogram, 0.99),
                    },
                )
            })
            .collect();
        MetricsSnapshot {
            connections: self.connections.get(),
            connections_total: self.connections_total.get(),
            messages_in: self.messages_in.get(),
            messages_out: self.messages_out.get(),
            crisis_detected: self.crisis_detected.get(),
            crisis_categories: labelled_counts(&self.crisis_categories, "category"),
            rate_limited: self.rate_limited.get(),
            slow_consumer_closes: self.slow_consumer_closes.get(),
            publications: self.publications.get(),
            deliveries: self.deliveries.get(),
            dropped_deliveries: self.dropped_deliveries.get(),
            closes,
            registry: sizes,
            connections_refused: self.connection.refusals(),
            welcome_p50_us: quantile_us(self.connection.welcome_histogram(), 0.5),
            welcome_p99_us: quantile_us(self.connection.welcome_histogram(), 0.99),
            process_rss_bytes: resident_bytes(),
            assistant: self.assistant.snapshot(),
            actors,
        }
    }

    /// The Prometheus text exposition, with scrape-time gauges refreshed.
    pub fn prometheus_text(&self) -> String {
        self.gauges
            .rss_bytes
            .set(i64::try_from(resident_bytes()).unwrap_or(i64::MAX));
        for kind in ActorKind::ALL {
            let backlog = i64::try_from(self.actor(kind).backlog()).unwrap_or(i64::MAX);
            self.backlog_family
                .with_label_values(&[kind.as_str()])
                .set(backlog);
        }
        let mut out = Vec::new();
        let families = self.registry.gather();
        if let Err(err) = TextEncoder::new().encode(&families, &mut out) {
            log::error!(error:% = err; "metrics_encode_failed");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

/// Resident set size from /proc (Linux); 0 elsewhere.
pub fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|rest| {
                    rest.trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<u64>()
                        .ok()
                })
        })
        .map_or(0, |kib| kib * 1024)
}

/// A quantile read off the histogram's buckets, interpolating linearly
/// within the bucket it falls in; in microseconds.
fn quantile_us(histogram: &Histogram, q: f64) -> u64 {
    let metric = histogram.metric();
    let data = metric.get_histogram();
    let count = data.get_sample_count();
    if count == 0 {
        return 0;
    }
    let rank = q * count as f64;
    let mut lower_bound = 0.0_f64;
    let mut lower_count = 0u64;
    for bucket in data.get_bucket() {
        let upper = bucket.upper_bound();
        let cumulative = bucket.cumulative_count();
        if cumulative as f64 >= rank {
            let in_bucket = (cumulative - lower_count).max(1) as f64;
            let fraction = (rank - lower_count as f64) / in_bucket;
            let seconds = lower_bound + (upper - lower_bound) * fraction.clamp(0.0, 1.0);
            return (seconds * 1e6).round() as u64;
        }
        lower_bound = upper;
        lower_count = cumulative;
    }
    (lower_bound * 1e6).round() as u64
}

#[derive(Debug, Clone, Serialize)]
pub struct ActorSnapshot {
    pub handled: u64,
    pub backlog: u64,
    pub p50_us: u64,
    pub p99_us: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct MetricsSnapshot {
    pub connections: i64,
    pub connections_total: u64,
    pub messages_in: u64,
    pub messages_out: u64,
    pub crisis_detected: u64,
    /// Only the categories seen at least once.
    pub crisis_categories: std::collections::BTreeMap<String, u64>,
    pub rate_limited: u64,
    pub slow_consumer_closes: u64,
    pub publications: u64,
    pub deliveries: u64,
    pub dropped_deliveries: u64,
    pub closes: std::collections::BTreeMap<String, u64>,
    pub registry: RegistrySizes,
    /// Refused connections by reason, those seen at least once.
    pub connections_refused: std::collections::BTreeMap<String, u64>,
    /// Upgrade request to welcome, quantiles in microseconds.
    pub welcome_p50_us: u64,
    pub welcome_p99_us: u64,
    pub process_rss_bytes: u64,
    pub assistant: crate::support::assistant_meters::AssistantSnapshot,
    pub actors: std::collections::BTreeMap<&'static str, ActorSnapshot>,
}

pub type SharedMetrics = Arc<Metrics>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_actor_figures_show_in_both_formats() {
        let metrics = Arc::new(Metrics::new());
        metrics.connection_opened();
        metrics.message_in();
        metrics.actor(ActorKind::ChatServer).queued(3);
        for _ in 0..2 {
            let _timer = metrics.handling(ActorKind::ChatServer);
        }
        let snapshot = metrics.snapshot();
        assert_eq!(snapshot.connections, 1);
        assert_eq!(snapshot.messages_in, 1);
        let chat_server = &snapshot.actors["chat_server"];
        assert_eq!((chat_server.handled, chat_server.backlog), (2, 1));
        assert!(chat_server.p99_us >= chat_server.p50_us);
        let text = metrics.prometheus_text();
        assert!(text.contains("hearth_connections 1"));
        assert!(text.contains("hearth_actor_handled_total{actor=\"chat_server\"} 2"));
        assert!(text.contains("hearth_actor_backlog{actor=\"chat_server\"} 1"));
        assert!(text
            .contains("hearth_actor_handle_seconds_bucket{actor=\"chat_server\",le=\"0.000001\"}"));
        for kind in ActorKind::ALL {
            let series = format!("hearth_actor_handled_total{{actor=\"{}\"}}", kind.as_str());
            assert!(text.contains(&series), "{series}");
        }
    }

    #[test]
    fn quantiles_interpolate_within_buckets() {
        let histogram =
            Histogram::with_opts(HistogramOpts::new("t", "t").buckets(vec![0.001, 0.002])).unwrap();
        for _ in 0..100 {
            histogram.observe(0.0015);
        }
        let p50 = quantile_us(&histogram, 0.5);
        assert!((1000..=2000).contains(&p50), "{p50}");
    }
}
