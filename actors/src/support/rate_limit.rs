//! A token bucket: `burst` messages at once, refilled at `per_second`.
//! Pure arithmetic on instants the caller passes in, so it is tested
//! without clocks.

use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct TokenBucket {
    capacity: f64,
    per_second: f64,
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    /// A full bucket. `per_second` must be positive.
    pub fn new(burst: u32, per_second: f64, now: Instant) -> Self {
        let capacity = f64::from(burst.max(1));
        TokenBucket {
            capacity,
            per_second: per_second.max(f64::MIN_POSITIVE),
            tokens: capacity,
            updated: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        // Instants from a misbehaving clock never run backwards here.
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.capacity);
        self.updated = self.updated.max(now);
    }

    /// Takes one token, or says how long until one is available.
    pub fn try_take(&mut self, now: Instant) -> Result<(), Duration> {
        self.try_take_n(now, 1)
    }

    /// Takes `n` tokens at once (never more than the burst), or none and
    /// says how long until they are there.
    pub fn try_take_n(&mut self, now: Instant, n: u32) -> Result<(), Duration> {
        self.refill(now);
        let cost = f64::from(n).min(self.capacity);
        // The epsilon absorbs float rounding of nanosecond instants, so a
        // client exactly at the rate is not refused by a rounding error.
        if self.tokens >= cost - 1e-6 {
            self.tokens = (self.tokens - cost).max(0.0);
            Ok(())
        } else {
            let missing = cost - self.tokens;
            Err(Duration::from_secs_f64(missing / self.per_second))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_burst_passes_and_the_next_waits() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(20, 10.0, start);
        for n in 0..20 {
            assert!(bucket.try_take(start).is_ok(), "message {n}");
        }
        let wait = bucket.try_take(start).unwrap_err();
        assert_eq!(wait, Duration::from_millis(100));
        assert!(bucket.try_take(start + Duration::from_millis(100)).is_ok());
        assert!(bucket.try_take(start + Duration::from_millis(100)).is_err());
    }

    #[test]
    fn several_tokens_are_taken_together_or_not_at_all() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(20, 10.0, start);
        assert!(bucket.try_take_n(start, 8).is_ok());
        assert!(bucket.try_take_n(start, 8).is_ok());
        let wait = bucket.try_take_n(start, 8).unwrap_err();
        assert_eq!(wait, Duration::from_millis(400));
        assert!(bucket.try_take_n(start, 4).is_ok(), "nothing was taken");
        assert!(
            bucket
                .try_take_n(start + Duration::from_secs(9), 50)
                .is_ok(),
            "capped at the burst"
        );
    }

    proptest! {
        /// Over any schedule of attempts, what passes never exceeds the
        /// burst plus the rate times the elapsed time.
        #[test]
        fn never_more_than_burst_plus_rate(
            burst in 1u32..50,
            per_second in 0.5f64..200.0,
            gaps_ms in proptest::collection::vec(0u64..300, 1..400),
        ) {
            let start = Instant::now();
            let mut bucket = TokenBucket::new(burst, per_second, start);
            let mut now = start;
            let mut passed = 0u64;
            for gap in gaps_ms {
                now += Duration::from_millis(gap);
                if bucket.try_take(now).is_ok() {
                    passed += 1;
                }
            }
            let elapsed = now.duration_since(start).as_secs_f64();
            let allowed = f64::from(burst) + elapsed * per_second;
            prop_assert!(passed as f64 <= allowed + 1e-6, "passed {} allowed {}", passed, allowed);
        }

        /// A refused attempt names a wait after which the next one passes.
        #[test]
        fn retry_after_is_enough(
            burst in 1u32..10,
            per_second in 0.5f64..100.0,
            extra in 1usize..20,
        ) {
            let start = Instant::now();
            let mut bucket = TokenBucket::new(burst, per_second, start);
            for _ in 0..burst as usize + extra {
                let _ = bucket.try_take(start);
            }
            if let Err(wait) = bucket.try_take(start) {
                prop_assert!(bucket.try_take(start + wait + Duration::from_micros(1)).is_ok());
            }
        }

        /// A steady client at the rate is never limited.
        #[test]
        fn steady_clients_pass(burst in 1u32..30, per_second in 1.0f64..100.0, count in 1usize..300) {
            let start = Instant::now();
            let mut bucket = TokenBucket::new(burst, per_second, start);
            let gap = Duration::from_secs_f64(1.0 / per_second);
            let mut now = start;
            for _ in 0..count {
                prop_assert!(bucket.try_take(now).is_ok());
                now += gap;
            }
        }
    }
}
