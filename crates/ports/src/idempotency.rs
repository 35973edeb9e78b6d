//! The idempotency store port (IETF "The Idempotency-Key HTTP Header Field" semantics).
//!
//! A key is claimed before the request runs and completed with the response afterwards.
//! Keys are scoped by the caller (account + key) and expire after a TTL.

use crate::PortResult;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The first response to a request, replayed for a retry with the same key and body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key was free and is now ours: run the request, then `complete` or `release` it.
    Acquired,
    /// Another request with this key is running; its body fingerprint is given.
    InFlight { fingerprint: String },
    /// The key was used before; replay this response if the fingerprint matches.
    Completed {
        fingerprint: String,
        response: StoredResponse,
    },
}

#[async_trait]
pub trait IdempotencyStore: Send + Sync + 'static {
    /// Claims `key` for a request whose body hashes to `fingerprint`. Atomic: of many concurrent
    /// claims of one key exactly one gets [`Claim::Acquired`].
    async fn claim(&self, key: &str, fingerprint: &str, ttl: Duration) -> PortResult<Claim>;

    /// Stores the response of a claimed key; it is kept for `ttl` from now.
    async fn complete(
        &self,
        key: &str,
        fingerprint: &str,
        response: &StoredResponse,
        ttl: Duration,
    ) -> PortResult<()>;

    /// Frees a claimed key whose request failed before any effect, so a retry can run.
    async fn release(&self, key: &str) -> PortResult<()>;

    /// Checks the store is reachable (for `/ready`).
    async fn ping(&self) -> PortResult<()>;
}
