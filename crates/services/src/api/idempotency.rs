//! `X-Idempotency-Key` handling after the IETF draft "The Idempotency-Key HTTP Header Field".
//!
//! The key is scoped to the account (`account:key`), or to the operator's key for the admin
//! API; the fingerprint is SHA-256 of the method,
//! path and body. The first request claims the key, runs, answers, and then stores its response
//! ([`super::pending`]); a retry with the same fingerprint gets that response again with
//! `Idempotent-Replayed: true`; another body under the same key is 422, and a retry while the
//! first still runs is 409. A request refused as invalid (400) did nothing and is not stored:
//! the corrected request may use the same key. A failure with a 5xx releases the key so the retry can run: it
//! comes before any effect, or after effects that are harmless to repeat (the cancels of a
//! cancel of all orders). If the store cannot be reached the request is refused with 503:
//! without it we cannot promise "once".
//!
//! The claim records the request's intent (for an order: its id and time) and is kept for the
//! key's TTL, past the in-flight lock. A request whose process died after its effect but before
//! its response was stored would otherwise leave the key to expire and a retry to run again;
//! instead, once the lock has expired, a retry with the same body resumes it from that intent
//! ([`Run::resumed`]): the same order id, so the pipeline drops the repeated event.

use super::metrics::IdempotencyOutcome;
use super::problem::{api_codes, Problem};
use super::reply::Reply;
use super::state::ApiState;
use axum::http::{HeaderMap, StatusCode};
use oms_ports::idempotency::{Claim, ClaimTerms};
use sha2::{Digest, Sha256};
use std::future::Future;
use std::time::{Duration, Instant};

pub const IDEMPOTENCY_KEY_HEADER: &str = "x-idempotency-key";
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
pub const MAX_KEY_LEN: usize = 255;
/// How long a retry waits for the first response of its key to be stored before it claims.
const STORE_PATIENCE: Duration = Duration::from_secs(2);

pub fn fingerprint(method: &str, path: &str, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(method.as_bytes());
    h.update(b"\n");
    h.update(path.as_bytes());
    h.update(b"\n");
    h.update(body);
    hex::encode(h.finalize())
}

/// The idempotency key of a request, if it sent one; 400 if it is not usable.
pub fn key_from_headers(headers: &HeaderMap) -> Result<Option<String>, Problem> {
    let mut given = headers.get_all(IDEMPOTENCY_KEY_HEADER).iter();
    let Some(v) = given.next() else {
        return Ok(None);
    };
    let bad = || {
        Problem::new(
            StatusCode::BAD_REQUEST,
            api_codes::INVALID_IDEMPOTENCY_KEY,
            format!(
                "X-Idempotency-Key must be given once, 1 to {MAX_KEY_LEN} visible ASCII characters"
            ),
        )
        .with_field("X-Idempotency-Key")
    };
    // Two keys (a proxy adding its own, say): which one the request is known by is unknown.
    if given.next().is_some() {
        return Err(bad());
    }
    let s = v.to_str().map_err(|_| bad())?;
    if s.is_empty() || s.len() > MAX_KEY_LEN || !s.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad());
    }
    Ok(Some(s.to_string()))
}

/// How a request runs under its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// The intent to act on: the caller's own, or the abandoned request's when resumed.
    pub intent: Vec<u8>,
    /// Resuming a request that may already have had its effect: do not undo anything on
    /// failure (the key stays claimed and a later retry resumes again).
    pub resumed: bool,
    /// When the key was claimed and how long its lock lasts (`None` without a key).
    lock: Option<(Instant, Duration)>,
}

impl Run {
    /// Whether a failure may still give back what this request holds (its key, its
    /// clientOrderId). Not once half its lock has passed: after the lock a retry may resume
    /// this very request and act on what it holds, and freeing it then would let a third
    /// request run afresh beside that retry. Keeping it is always safe, since a retry after
    /// the lock resumes the request instead of repeating it.
    pub fn may_undo(&self) -> bool {
        !self.resumed && self.holds_claim()
    }

    /// Whether the claim is surely still this request's: before half its lock, no retry can
    /// have resumed it.
    pub fn holds_claim(&self) -> bool {
        self.lock
            .is_none_or(|(claimed, lock)| claimed.elapsed() < lock / 2)
    }
}

/// Runs `run` at most once per (scope, key), the scope being an account or an operator
/// ([`super::auth::Operator::scope`]); see the module docs. `intent` is recorded with
/// the claim and handed to `run`, or the recorded one when an abandoned request is resumed.
#[allow(clippy::too_many_arguments)]
pub async fn run_idempotent<F, Fut>(
    state: &ApiState,
    scope: impl std::fmt::Display,
    headers: &HeaderMap,
    method: &str,
    path: &str,
    body: &[u8],
    intent: Vec<u8>,
    run: F,
) -> Reply
where
    F: FnOnce(Run) -> Fut,
    Fut: Future<Output = Reply>,
{
    let fresh = |intent, lock| Run {
        intent,
        resumed: false,
        lock,
    };
    let key = match key_from_headers(headers) {
        Ok(Some(k)) => k,
        Ok(None) => return run(fresh(intent, None)).await,
        Err(p) => return p.into_reply(),
    };
    let metrics = state.http_metrics();
    let scoped = format!("{scope}:{key}");
    let fp = fingerprint(method, path, body);
    let ttl = state.config.idempotency_ttl;
    let store = &state.idempotency;
    let terms = ClaimTerms {
        intent: &intent,
        lock: state.config.idempotency_lock_ttl,
        keep: ttl,
    };
    // A response of this key may still be being stored (see `pending`): replay it, not 409.
    state.pending.settled(&scoped, STORE_PATIENCE).await;
    let lock = Some((Instant::now(), terms.lock));
    let how = match store.claim_with(&scoped, &fp, &terms).await {
        Ok(Claim::Acquired) => fresh(intent, lock),
        Ok(Claim::Resumed { intent }) => {
            tracing::warn!(key = %key, "resuming a request whose process stopped before it completed");
            Run {
                intent,
                resumed: true,
                lock,
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "idempotency store unavailable");
            metrics.idempotency(IdempotencyOutcome::StoreUnavailable);
            return Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                api_codes::IDEMPOTENCY_UNAVAILABLE,
                "idempotency keys cannot be checked right now; retry shortly",
            )
            .retry_after(1)
            .into_reply();
        }
        Ok(Claim::Completed {
            fingerprint,
            response,
        }) if fingerprint == fp => {
            metrics.idempotency(IdempotencyOutcome::Replayed);
            return Reply::from_stored(&response).header(REPLAYED_HEADER, "true");
        }
        Ok(Claim::Completed { .. }) => {
            metrics.idempotency(IdempotencyOutcome::KeyReused);
            return key_reused();
        }
        Ok(Claim::InFlight { fingerprint }) if fingerprint != fp => {
            metrics.idempotency(IdempotencyOutcome::KeyReused);
            return key_reused();
        }
        Ok(Claim::InFlight { .. }) => {
            metrics.idempotency(IdempotencyOutcome::InFlight);
            return Problem::new(
                StatusCode::CONFLICT,
                api_codes::IDEMPOTENCY_REQUEST_IN_FLIGHT,
                "a request with this idempotency key is still being processed; retry shortly",
            )
            .with_field("X-Idempotency-Key")
            .retry_after(1)
            .into_reply();
        }
    };
    metrics.idempotency(IdempotencyOutcome::Executed);
    let undo = how.clone();
    let reply = run(how).await;
    if reply.status == StatusCode::BAD_REQUEST && undo.may_undo() {
        // Refused before anything was done: the key stays free for the corrected request, which
        // a client naturally sends under the same key (as payment APIs do); the same bad body
        // again is refused again.
        if let Err(e) = store.release(&scoped).await {
            tracing::warn!(error = %e, "could not release idempotency key");
        }
    } else if !reply.status.is_server_error() {
        // Answered at once, its effect being durable; the response is stored meanwhile.
        state
            .pending
            .complete_later(store.clone(), scoped, fp, reply.to_stored(), ttl);
    } else if reply.effect_unknown && undo.holds_claim() {
        // Failed with its effect perhaps done: the next retry resumes it as this request.
        if let Err(e) = store.abandon(&scoped).await {
            tracing::warn!(error = %e, "could not hand the idempotency key to a retry");
        }
    } else if undo.may_undo() {
        // Failed before any effect: free the key so a retry runs.
        if let Err(e) = store.release(&scoped).await {
            tracing::warn!(error = %e, "could not release idempotency key");
        }
    }
    // A resumed request that failed may have had its effect, and one that took half its lock
    // may have been resumed meanwhile (abandoning it then would end the lock of the retry that
    // resumed it): its claim stays, to be resumed once its lock expires.
    reply
}

fn key_reused() -> Reply {
    Problem::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        api_codes::IDEMPOTENCY_KEY_REUSED,
        "this idempotency key was used with a different request",
    )
    .with_field("X-Idempotency-Key")
    .into_reply()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn fingerprint_covers_method_path_and_body() {
        let a = fingerprint("POST", "/api/orders", b"{}");
        assert_eq!(a.len(), 64);
        assert_eq!(a, fingerprint("POST", "/api/orders", b"{}"));
        assert_ne!(a, fingerprint("POST", "/api/orders", b"{ }"));
        assert_ne!(a, fingerprint("PATCH", "/api/orders", b"{}"));
        assert_ne!(a, fingerprint("POST", "/api/orders/1", b"{}"));
    }

    #[test]
    fn key_rules() {
        let mut h = HeaderMap::new();
        assert_eq!(key_from_headers(&h).unwrap(), None);
        h.insert(IDEMPOTENCY_KEY_HEADER, HeaderValue::from_static("test-123"));
        assert_eq!(key_from_headers(&h).unwrap().as_deref(), Some("test-123"));
        h.insert(
            IDEMPOTENCY_KEY_HEADER,
            HeaderValue::from_str(&"k".repeat(255)).unwrap(),
        );
        assert!(key_from_headers(&h).is_ok());
        for bad in ["k".repeat(256), String::new(), "with space".into()] {
            h.insert(IDEMPOTENCY_KEY_HEADER, HeaderValue::from_str(&bad).unwrap());
            let p = key_from_headers(&h).unwrap_err();
            assert_eq!(p.code, api_codes::INVALID_IDEMPOTENCY_KEY, "{bad:?}");
            assert_eq!(p.status, StatusCode::BAD_REQUEST);
        }
    }
}
