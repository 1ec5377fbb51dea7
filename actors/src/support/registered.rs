//! Registering a metric in the server's one registry, for the files that
//! keep a group of figures of their own.

use prometheus::Registry;

/// Registers `metric` and hands it back. The names are constants: the
/// `expect` fails only on a programming error, at start-up.
pub(crate) fn register<C: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    metric: C,
) -> C {
    registry
        .register(Box::new(metric.clone()))
        .expect("each metric is registered once");
    metric
}
