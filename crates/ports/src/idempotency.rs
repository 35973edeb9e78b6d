//! The idempotency store port (IETF "The Idempotency-Key HTTP Header Field" semantics).
//!
//! A key is claimed before the request runs and completed with the response afterwards.
//! Keys are scoped by the caller (account + key) and expire after a TTL.
//!
//! A claim can record the request's *intent* (what it is about to do, for example the id it
//! gives the order it creates). If the request never completes (its process was killed after
//! the effect but before the response was stored), a retry with the same body after the lock
//! has expired resumes it from that intent ([`Claim::Resumed`]) instead of running afresh, so
//! the effect, if it happened, happens under the same identity and downstream deduplicates it.

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
    /// A request with this key and fingerprint was claimed and never completed, and its lock
    /// has expired: the key is now ours again. Run the request *as that one*, from the intent
    /// it recorded, then `complete` it; do not `release` it, since its effect may have
    /// happened.
    Resumed { intent: Vec<u8> },
    /// Another request with this key is running; its body fingerprint is given.
    InFlight { fingerprint: String },
    /// The key was used before; replay this response if the fingerprint matches.
    Completed {
        fingerprint: String,
        response: StoredResponse,
    },
}

/// How a claim holds its key.
#[derive(Debug, Clone, Copy)]
pub struct ClaimTerms<'a> {
    /// What the request is about to do, opaque to the store; handed to a claim that resumes it.
    pub intent: &'a [u8],
    /// How long the claim keeps other requests out ([`Claim::InFlight`]).
    pub lock: Duration,
    /// How long an uncompleted claim is kept at all. Between `lock` and `keep` a claim with the
    /// same fingerprint resumes it and one with another fingerprint finds it in flight; after
    /// `keep` (or after `lock`, if that is longer) the key is free.
    pub keep: Duration,
}

#[async_trait]
pub trait IdempotencyStore: Send + Sync + 'static {
    /// Claims `key` for a request whose body hashes to `fingerprint`. Atomic: of many concurrent
    /// claims of one key exactly one gets [`Claim::Acquired`] or [`Claim::Resumed`].
    async fn claim_with(
        &self,
        key: &str,
        fingerprint: &str,
        terms: &ClaimTerms<'_>,
    ) -> PortResult<Claim>;

    /// [`claim_with`](Self::claim_with) recording no intent, locked and kept for `ttl`: once it
    /// passes, the key is free.
    async fn claim(&self, key: &str, fingerprint: &str, ttl: Duration) -> PortResult<Claim> {
        let terms = ClaimTerms {
            intent: &[],
            lock: ttl,
            keep: ttl,
        };
        self.claim_with(key, fingerprint, &terms).await
    }

    /// Stores the response of a claimed key; it is kept for `ttl` from now.
    async fn complete(
        &self,
        key: &str,
        fingerprint: &str,
        response: &StoredResponse,
        ttl: Duration,
    ) -> PortResult<()>;

    /// [`complete`](Self::complete) without waiting, for a store whose keys live in memory
    /// and are written behind: `Some` once done, `None` if this store must be awaited. Saves
    /// the caller a background task per response.
    fn complete_at_once(
        &self,
        key: &str,
        fingerprint: &str,
        response: &StoredResponse,
        ttl: Duration,
    ) -> Option<PortResult<()>> {
        let _ = (key, fingerprint, response, ttl);
        None
    }

    /// Frees a claimed key whose request failed before any effect, so a retry can run.
    async fn release(&self, key: &str) -> PortResult<()>;

    /// Ends the lock of a claim in flight whose request failed without knowing whether its
    /// effect happened (an append that reported an error may still have landed). A retry with
    /// the same body then resumes it at once, with its intent ([`Claim::Resumed`]), rather
    /// than wait out the lock, and never runs afresh. A completed key is left as it is.
    async fn abandon(&self, key: &str) -> PortResult<()>;

    /// Checks the store is reachable (for `/ready`).
    async fn ping(&self) -> PortResult<()>;
}
