//! CPU time over a measured window, the server's and this generator's own,
//! each as a share of one core: the figure that tells whether a scenario
//! measured the server or the generator (a generator near 1.0 is the
//! bottleneck, whatever the server's figure says).

use std::time::Instant;

use serde_json::{json, Value};

use crate::BenchResult;

/// Clock ticks of user and system time a process has used, from /proc.
pub fn cpu_ticks(pid: u32) -> BenchResult<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|e| e.to_string())?;
    ticks_of_stat(&stat).ok_or_else(|| format!("/proc/{pid}/stat unreadable"))
}

fn own_ticks() -> Option<u64> {
    ticks_of_stat(&std::fs::read_to_string("/proc/self/stat").ok()?)
}

fn ticks_of_stat(stat: &str) -> Option<u64> {
    // The name in parentheses may hold spaces: fields are counted after it,
    // where field 3 (state) comes first and utime, stime are fields 14, 15.
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Shorter windows leave the shares out: at 100 ticks a second, one tick
/// either way is 2 % of a core at half a second.
const MIN_WINDOW_S: f64 = 0.5;

/// Whose CPU time to read, and in what unit.
#[derive(Clone, Copy)]
pub struct Cpu {
    pub server_pid: Option<u32>,
    pub clk_tck: u64,
}

impl Cpu {
    /// Starts a measured window now.
    pub fn window(self) -> CpuWindow {
        CpuWindow::start(self.server_pid, self.clk_tck)
    }
}

/// CPU time of the server (when its pid is known) and of this process from
/// `start` to `finish`.
pub struct CpuWindow {
    server_pid: Option<u32>,
    server: Option<u64>,
    own: Option<u64>,
    started: Instant,
    clk_tck: u64,
}

impl CpuWindow {
    pub fn start(server_pid: Option<u32>, clk_tck: u64) -> CpuWindow {
        CpuWindow {
            server_pid,
            server: server_pid.and_then(|pid| cpu_ticks(pid).ok()),
            own: own_ticks(),
            started: Instant::now(),
            clk_tck: clk_tck.max(1),
        }
    }

    /// `{"server_cpu": share, "generator_cpu": share}`, leaving out what
    /// could not be read, and both for a window too short for the clock
    /// ticks they are counted in.
    pub fn finish(self) -> Value {
        let wall = self.started.elapsed().as_secs_f64();
        let long_enough = wall >= MIN_WINDOW_S;
        let share = |before: Option<u64>, after: Option<u64>| match (before, after) {
            (Some(before), Some(after)) if long_enough => {
                let busy = after.saturating_sub(before) as f64 / self.clk_tck as f64;
                json!((busy / wall * 100.0).round() / 100.0)
            }
            _ => Value::Null,
        };
        let server_after = self.server_pid.and_then(|pid| cpu_ticks(pid).ok());
        json!({
            "server_cpu": share(self.server, server_after),
            "generator_cpu": share(self.own, own_ticks()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_are_read_after_the_name() {
        let stat = "42 (a b) S 1 2 3 4 5 6 7 8 9 10 111 222 0 0 20 0";
        assert_eq!(ticks_of_stat(stat), Some(333));
        assert!(own_ticks().is_some());
    }
}
