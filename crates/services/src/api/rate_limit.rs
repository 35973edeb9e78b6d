//! Requests per second per account: a runaway client gets `429` with `Retry-After` at once,
//! before it can crowd out every other account's requests. Counted in this instance, or, when
//! the API has shared limits (Redis in distributed mode), across every instance, with this
//! instance's count standing in while they cannot be reached. (The risk engine's order rate
//! limit is a different thing: it refuses orders after they are acknowledged, in log order.)

use crate::ingestion::clock;
use oms_domain::ids::AccountId;
use oms_domain::risk::TokenBucket;
use oms_ports::request_limits::{Allowance, RequestLimits};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

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

/// One token bucket per account seen, in this instance, and the limits shared by every
/// instance when there are such.
#[derive(Default)]
pub struct RequestLimiter {
    buckets: Mutex<HashMap<AccountId, TokenBucket>>,
    shared: Option<Arc<dyn RequestLimits>>,
    /// Until when (ms) the shared limits are left alone after a failure: during an outage each
    /// request would otherwise wait out the store's timeout first.
    shared_down_until: AtomicU64,
    /// When the shared limits last failed (ms), so an outage logs once a minute, not per request.
    warned_at: AtomicU64,
}

/// How long the shared limits are left alone after they failed.
const SHARED_RETRY_MS: u64 = 5_000;

impl RequestLimiter {
    /// Counts every instance's requests in `shared`.
    pub fn shared(shared: Arc<dyn RequestLimits>) -> Self {
        RequestLimiter {
            shared: Some(shared),
            ..RequestLimiter::default()
        }
    }

    /// Takes `n` requests' worth of `account`'s allowance at once (a batch of `n + 1` orders
    /// pays for the `n` beyond its own request), or nothing: `false` when that much is not
    /// left. From the shared limits when there are; while they cannot be reached, from this
    /// instance's count alone
    /// (failing open: a limit is not worth refusing every request while Redis is down), and
    /// for [`SHARED_RETRY_MS`] after each failure.
    pub async fn admit(&self, account: AccountId, rate: RequestRate, n: u32) -> bool {
        let Some(shared) = &self.shared else {
            return self.admit_here(account, rate, n);
        };
        if rate.per_second == 0 || n == 0 {
            return true;
        }
        let now = clock::now().millis().max(0) as u64;
        if now < self.shared_down_until.load(Ordering::Relaxed) {
            return self.admit_here(account, rate, n);
        }
        let allowance = Allowance {
            per_second: rate.per_second,
            burst: rate.burst.max(1),
        };
        match shared.admit(account, n, allowance).await {
            Ok(admitted) => admitted,
            Err(e) => {
                self.shared_down_until
                    .store(now + SHARED_RETRY_MS, Ordering::Relaxed);
                let last = self.warned_at.load(Ordering::Relaxed);
                if now.saturating_sub(last) >= 60_000
                    && self
                        .warned_at
                        .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                        .is_ok()
                {
                    tracing::warn!(error = %e, "shared request limits unavailable: counting this instance's requests alone");
                }
                self.admit_here(account, rate, n)
            }
        }
    }

    /// Takes `n` requests' worth of this instance's count at once, or nothing: `false` when
    /// that much is not left.
    fn admit_here(&self, account: AccountId, rate: RequestRate, n: u32) -> bool {
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
    use oms_ports::{PortError, PortResult};

    /// Shared limits that cannot be reached, counting how often they are asked.
    #[derive(Default)]
    struct Unreachable(AtomicU64);

    #[async_trait::async_trait]
    impl RequestLimits for Unreachable {
        async fn admit(&self, _: AccountId, _: u32, _: Allowance) -> PortResult<bool> {
            self.0.fetch_add(1, Ordering::Relaxed);
            Err(PortError::Unavailable("down".into()))
        }
    }

    #[tokio::test]
    async fn after_a_failure_the_shared_limits_are_left_alone_for_a_while() {
        let shared = Arc::new(Unreachable::default());
        let limiter = RequestLimiter::shared(shared.clone());
        let rate = RequestRate {
            per_second: 1,
            burst: 2,
        };
        let a = AccountId(1);
        assert!(limiter.admit(a, rate, 1).await);
        assert!(limiter.admit(a, rate, 1).await);
        assert!(!limiter.admit(a, rate, 1).await, "this instance's count");
        assert_eq!(
            shared.0.load(Ordering::Relaxed),
            1,
            "asked once, not per request"
        );
        // Once the interval has passed they are asked again.
        limiter.shared_down_until.store(0, Ordering::Relaxed);
        assert!(!limiter.admit(a, rate, 1).await);
        assert_eq!(shared.0.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn each_account_has_its_own_allowance_and_zero_is_off() {
        let limiter = RequestLimiter::default();
        let rate = RequestRate {
            per_second: 1,
            burst: 3,
        };
        let (a, b) = (AccountId(1), AccountId(2));
        for _ in 0..3 {
            assert!(limiter.admit_here(a, rate, 1));
        }
        assert!(!limiter.admit_here(a, rate, 1), "the burst is spent");
        assert!(limiter.admit_here(b, rate, 1), "another account's is not");
        let off = RequestRate {
            per_second: 0,
            burst: 0,
        };
        for _ in 0..10 {
            assert!(limiter.admit_here(a, off, 1));
        }
        let c = AccountId(3);
        assert!(
            !limiter.admit_here(c, rate, 4),
            "more than the burst at once"
        );
        assert!(limiter.admit_here(c, rate, 3));
        assert!(
            !limiter.admit_here(c, rate, 1),
            "a batch spends its orders' allowance"
        );
    }
}
