//! `/health`, `/ready` and `/metrics`: what Kubernetes and Prometheus ask.

use crate::api::metrics::CONTENT_TYPE;
use crate::api::reply::Reply;
use crate::api::state::ApiState;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::json;
use std::time::Duration;
use tokio::time::timeout;

/// 200 while the process serves requests.
pub async fn health() -> Reply {
    Reply::json(StatusCode::OK, &json!({"status": "healthy"}))
}

/// A probe must answer even when a dependency hangs: a check slower than this fails.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// 200 when every dependency answers, else 503; lists each check either way.
pub async fn ready(State(s): State<ApiState>) -> Reply {
    let (store, idem, extra) = tokio::join!(
        timeout(CHECK_TIMEOUT, s.store.ping()),
        timeout(CHECK_TIMEOUT, s.idempotency.ping()),
        timeout(CHECK_TIMEOUT, s.readiness.check()),
    );
    let port = |name: &str, r: Result<oms_ports::PortResult<()>, _>| match r {
        Ok(Ok(())) => (name.to_string(), true, None),
        Ok(Err(e)) => (name.to_string(), false, Some(e.to_string())),
        Err(_) => (name.to_string(), false, Some("timed out".to_string())),
    };
    let mut checks = vec![port("orderStore", store), port("idempotencyStore", idem)];
    match extra {
        Ok(extra) => checks.extend(extra),
        Err(_) => checks.push((
            "readiness".to_string(),
            false,
            Some("timed out".to_string()),
        )),
    }
    let ok = checks.iter().all(|(_, ok, _)| *ok);
    let checks: Vec<_> = checks
        .into_iter()
        .map(|(name, ok, detail)| json!({"name": name, "ok": ok, "detail": detail}))
        .collect();
    let (status, word) = if ok {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    };
    Reply::json(status, &json!({"status": word, "checks": checks}))
        .header("cache-control", "no-store")
}

pub async fn metrics(State(s): State<ApiState>) -> Reply {
    let counts = match s.store.order_counts_by_status().await {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!(error = %e, "order counts unavailable for /metrics");
            None
        }
    };
    let mut extra = String::new();
    s.metrics_source.render(&mut extra);
    let text = s.http_metrics.render(counts.as_deref(), &extra);
    Reply::new(StatusCode::OK, CONTENT_TYPE, text.into_bytes())
}
