//! The request id and the per-request span, timing and HTTP metrics.
//!
//! `X-Request-Id` is taken from the client when it looks sane (1..=128 characters of
//! `[A-Za-z0-9._:-]`), generated otherwise, echoed in the response, put in the span every log
//! line of the request carries, and in problem bodies (through a task-local, so any code on
//! the request's task can reach it without threading it through).

use super::problem::Problem;
use super::state::ApiState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;
use tracing::Instrument;

pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const MAX_REQUEST_ID: usize = 128;

#[derive(Debug, Clone)]
pub struct RequestCtx {
    pub id: String,
    pub path: String,
}

tokio::task_local! {
    static CTX: RequestCtx;
}

/// The context of the request running on this task, if any.
pub fn current() -> Option<RequestCtx> {
    CTX.try_with(Clone::clone).ok()
}

/// Spawns `work` on a task of its own that keeps this request's context and span: for work
/// that must run to its end even if the client goes away (axum drops a handler's future then).
pub fn spawn_detached<F>(work: F) -> tokio::task::JoinHandle<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let span = tracing::Span::current();
    match current() {
        Some(ctx) => tokio::spawn(CTX.scope(ctx, work).instrument(span)),
        None => tokio::spawn(work.instrument(span)),
    }
}

pub fn is_sane_request_id(id: &str) -> bool {
    (1..=MAX_REQUEST_ID).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// A process-unique id: a random per-process prefix and a counter.
pub fn generate_request_id() -> String {
    static PREFIX: OnceLock<u64> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = *PREFIX.get_or_init(|| {
        // RandomState is seeded from the OS; its hash of nothing is a random 64-bit value.
        std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish()
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{:08x}-{n:010x}", prefix as u32)
}

pub async fn middleware(State(state): State<ApiState>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|s| is_sane_request_id(s))
        .map(str::to_string)
        .unwrap_or_else(generate_request_id);
    if let Ok(v) = HeaderValue::try_from(id.as_str()) {
        req.headers_mut().insert(REQUEST_ID.clone(), v);
    }
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let span = tracing::info_span!("http", request_id = %id, method = %method, path = %path);
    let ctx = RequestCtx {
        id: id.clone(),
        path,
    };

    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let limit = state.config.body_limit;
    let run = async move {
        if declared.is_some_and(|n| n > limit as u64) {
            // Refused before any of the body is read: otherwise the connection waits for the
            // client to send up to the limit before the answer.
            return Problem::body_too_large(Some(limit)).into_response();
        }
        next.run(req).await
    };
    let mut resp = CTX.scope(ctx, run).instrument(span.clone()).await;

    let elapsed = started.elapsed();
    let status = resp.status().as_u16();
    state
        .http_metrics()
        .observe(method.as_str(), &route, status, elapsed);
    if let Ok(v) = HeaderValue::try_from(id.as_str()) {
        resp.headers_mut().insert(REQUEST_ID.clone(), v);
    }
    span.in_scope(|| {
        let ms = elapsed.as_secs_f64() * 1000.0;
        if status >= 500 {
            tracing::warn!(status, latency_ms = ms, "request failed");
        } else if route == "/health" || route == "/metrics" {
            tracing::trace!(status, latency_ms = ms, "request");
        } else {
            tracing::debug!(status, latency_ms = ms, "request");
        }
    });
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids() {
        assert!(is_sane_request_id("abc-123_x.y:z"));
        assert!(!is_sane_request_id(""));
        assert!(!is_sane_request_id("has space"));
        assert!(!is_sane_request_id("<script>"));
        assert!(!is_sane_request_id(&"a".repeat(129)));
        let a = generate_request_id();
        let b = generate_request_id();
        assert_ne!(a, b);
        assert!(is_sane_request_id(&a));
    }
}
