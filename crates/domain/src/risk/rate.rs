//! The per-account order rate limit: a token bucket refilled from the time passed in.

use crate::ids::Timestamp;
use serde::{Deserialize, Serialize};

/// Tokens are counted in thousandths so refill is exact integer arithmetic in milliseconds:
/// `rate` tokens per second is `rate` milli-tokens per millisecond.
const MILLI: u64 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenBucket {
    milli_tokens: u64,
    /// When the bucket was last refilled; `None` until first used (it starts full).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last: Option<Timestamp>,
}

impl TokenBucket {
    /// Adds what `rate` per second earns since the last refill, up to `burst` tokens.
    /// Time that runs backwards earns nothing (and does not move the refill point back).
    pub fn refill(&mut self, now: Timestamp, rate: u32, burst: u32) {
        let cap = u64::from(burst) * MILLI;
        match self.last {
            None => {
                self.milli_tokens = cap;
                self.last = Some(now);
            }
            Some(last) if now > last => {
                let elapsed = u64::try_from(now.0 - last.0).unwrap_or(u64::MAX);
                let earned = elapsed.saturating_mul(u64::from(rate));
                self.milli_tokens = self.milli_tokens.saturating_add(earned).min(cap);
                self.last = Some(now);
            }
            Some(_) => {}
        }
    }

    /// Refills, then takes one token if there is one.
    pub fn take(&mut self, now: Timestamp, rate: u32, burst: u32) -> bool {
        self.take_n(now, 1, rate, burst)
    }

    /// Takes `n` tokens at once, or none.
    pub fn take_n(&mut self, now: Timestamp, n: u32, rate: u32, burst: u32) -> bool {
        self.refill(now, rate, burst);
        let cost = u64::from(n) * MILLI;
        if self.milli_tokens >= cost {
            self.milli_tokens -= cost;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_full_then_refills_at_the_rate() {
        let mut b = TokenBucket::default();
        let t0 = Timestamp(1_000);
        assert!(b.take(t0, 10, 2));
        assert!(b.take(t0, 10, 2));
        assert!(!b.take(t0, 10, 2), "burst of 2 spent");
        // 10 per second = one token per 100 ms.
        assert!(!b.take(Timestamp(1_099), 10, 2));
        assert!(b.take(Timestamp(1_100), 10, 2));
        assert!(!b.take(Timestamp(1_100), 10, 2));
    }

    #[test]
    fn refill_is_capped_at_burst() {
        let mut b = TokenBucket::default();
        assert!(b.take(Timestamp(0), 1000, 3));
        let later = Timestamp(60_000);
        for _ in 0..3 {
            assert!(b.take(later, 1000, 3));
        }
        assert!(!b.take(later, 1000, 3));
    }

    #[test]
    fn time_running_backwards_earns_nothing() {
        let mut b = TokenBucket::default();
        assert!(b.take(Timestamp(5_000), 1, 1));
        assert!(!b.take(Timestamp(1_000), 1, 1));
        assert!(!b.take(Timestamp(5_999), 1, 1));
        assert!(b.take(Timestamp(6_000), 1, 1));
    }
}
