//! Registering a metric in the server's one registry, for the files that
//! keep a group of figures of their own, and reading a labelled family
//! back for the JSON figures.

use prometheus::core::Collector;
use prometheus::{IntCounterVec, Registry};

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

/// A family's counts summed by one of its labels, those seen at least once.
pub(crate) fn labelled_counts(
    family: &IntCounterVec,
    label: &str,
) -> std::collections::BTreeMap<String, u64> {
    let mut counts = std::collections::BTreeMap::new();
    for metric in family
        .collect()
        .iter()
        .flat_map(|family| family.get_metric())
    {
        let count = metric.get_counter().get_value() as u64;
        let value = metric
            .get_label()
            .iter()
            .find(|pair| pair.name() == label)
            .map(|pair| pair.value());
        if let (Some(value), true) = (value, count > 0) {
            *counts.entry(value.to_owned()).or_insert(0) += count;
        }
    }
    counts
}
