//! Requests per second per account, in this instance: a runaway client gets `429` with
//! `Retry-After` at once, before it can crowd out every other account's requests. (The risk
//! engine's order rate limit is a different thing: it refuses orders after they are
//! acknowledged, in log order, across instances.)

use crate::ingestion::clock;
use oms_domain::ids::AccountId;
use oms_domain::risk::TokenBucket;
use std::collections::HashMap;
use std::sync::Mutex;

/// How many requests an account may make: `per_second` on average, `burst` at once. A
/// `per_second` of 0 turns the limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestRate {
    pub per_second: u32,
    pub burst: u32,
}

impl Default for RequestRate {
    fn default() -> Self {
        RequestRate {
            per_second: 500,
            burst: 1_000,
        }
    }
}

/// One token bucket per account seen.
#[derive(Debug, Default)]
pub struct RequestLimiter {
    buckets: Mutex<HashMap<AccountId, TokenBucket>>,
}

impl RequestLimiter {
    /// Takes one request of `account`'s allowance; `false` when it has none left.
    pub fn admit(&self, account: AccountId, rate: RequestRate) -> bool {
        self.admit_n(account, rate, 1)
    }

    /// Takes `n` requests' worth at once (a batch of `n + 1` orders pays for the `n` beyond its
    /// own request), or nothing.
    pub fn admit_n(&self, account: AccountId, rate: RequestRate, n: u32) -> bool {
        if rate.per_second == 0 || n == 0 {
            return true;
        }
        let now = clock::now();
        let mut buckets = self.buckets.lock().expect("lock");
        buckets
            .entry(account)
            .or_default()
            .take_n(now, n, rate.per_second, rate.burst.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_account_has_its_own_allowance_and_zero_is_off() {
        let limiter = RequestLimiter::default();
        let rate = RequestRate {
            per_second: 1,
            burst: 3,
        };
        let (a, b) = (AccountId(1), AccountId(2));
        for _ in 0..3 {
            assert!(limiter.admit(a, rate));
        }
        assert!(!limiter.admit(a, rate), "the burst is spent");
        assert!(limiter.admit(b, rate), "another account's is not");
        let off = RequestRate {
            per_second: 0,
            burst: 0,
        };
        for _ in 0..10 {
            assert!(limiter.admit(a, off));
        }
        let c = AccountId(3);
        assert!(!limiter.admit_n(c, rate, 4), "more than the burst at once");
        assert!(limiter.admit_n(c, rate, 3));
        assert!(
            !limiter.admit(c, rate),
            "a batch spends its orders' allowance"
        );
    }
}
