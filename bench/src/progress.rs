//! Progress while a scenario runs: the scenarios count what they finish
//! (deliveries, replies, connections, cycles), and a task prints the count
//! and its rate once a second on stderr, so stdout keeps only the result.
//! The same task keeps the count every tenth of a second: the timeline a
//! result carries, which the plots draw as what was done over time.
//! The generator runs on one thread: a relaxed atomic costs nothing there.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

static DONE: AtomicU64 = AtomicU64::new(0);

/// How often the timeline takes the count.
pub const SAMPLE: Duration = Duration::from_millis(100);
/// The timeline keeps at most this many samples (10 minutes).
const MAX_SAMPLES: usize = 6000;

/// `n` more of what the scenario counts.
pub fn add(n: u64) {
    DONE.fetch_add(n, Ordering::Relaxed);
}

/// The reporting task and the counts it took.
pub struct Reporter {
    task: tokio::task::JoinHandle<()>,
    samples: Rc<RefCell<Vec<u64>>>,
}

impl Reporter {
    /// Stops reporting; returns what was done in each `SAMPLE`, from the
    /// first sample in which anything was done.
    pub fn finish(self) -> Vec<u64> {
        self.task.abort();
        let samples = self.samples.borrow();
        let mut last = 0;
        let per_sample: Vec<u64> = samples
            .iter()
            .map(|&count| {
                let done = count.saturating_sub(last);
                last = count;
                done
            })
            .collect();
        let first = per_sample.iter().position(|&n| n > 0).unwrap_or(0);
        per_sample[first..].to_vec()
    }
}

/// Prints `label scenario: N unit (R/s over the last second), T s` every
/// second until finished.
pub fn report(label: String, scenario: &'static str, unit: &'static str) -> Reporter {
    let samples = Rc::new(RefCell::new(Vec::new()));
    let kept = samples.clone();
    let task = tokio::task::spawn_local(async move {
        let started = Instant::now();
        let mut every = tokio::time::interval(SAMPLE);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        every.tick().await;
        let per_second = (Duration::from_secs(1).as_millis() / SAMPLE.as_millis()) as usize;
        let mut last_printed = DONE.load(Ordering::Relaxed);
        let mut ticks = 0usize;
        loop {
            every.tick().await;
            let now = DONE.load(Ordering::Relaxed);
            {
                let mut samples = kept.borrow_mut();
                if samples.len() < MAX_SAMPLES {
                    samples.push(now);
                }
            }
            ticks += 1;
            if ticks.is_multiple_of(per_second) {
                eprintln!(
                    "[{label}] {scenario}: {now} {unit} ({}/s), {:.0} s",
                    now.saturating_sub(last_printed),
                    started.elapsed().as_secs_f64()
                );
                last_printed = now;
            }
        }
    });
    Reporter { task, samples }
}
