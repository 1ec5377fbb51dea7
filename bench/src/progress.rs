//! Progress while a scenario runs: the scenarios count what they finish
//! (deliveries, replies, connections, cycles), and a task prints the count
//! and its rate once a second on stderr, so stdout keeps only the result.
//! The generator runs on one thread: a relaxed atomic costs nothing there.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

static DONE: AtomicU64 = AtomicU64::new(0);

/// `n` more of what the scenario counts.
pub fn add(n: u64) {
    DONE.fetch_add(n, Ordering::Relaxed);
}

/// Prints `label scenario: N unit (R/s over the last second), T s` every
/// second until the returned task is dropped or aborted.
pub fn report(
    label: String,
    scenario: &'static str,
    unit: &'static str,
) -> tokio::task::JoinHandle<()> {
    tokio::task::spawn_local(async move {
        let started = Instant::now();
        let mut every = tokio::time::interval(Duration::from_secs(1));
        every.tick().await;
        let mut last = DONE.load(Ordering::Relaxed);
        loop {
            every.tick().await;
            let now = DONE.load(Ordering::Relaxed);
            eprintln!(
                "[{label}] {scenario}: {now} {unit} ({}/s), {:.0} s",
                now.saturating_sub(last),
                started.elapsed().as_secs_f64()
            );
            last = now;
        }
    })
}
