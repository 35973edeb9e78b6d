//! Hooks the process that serves the API fills in: extra readiness checks and extra metrics.

use async_trait::async_trait;

/// Extra dependency checks for `GET /ready`, beyond the order store and idempotency store the
/// API pings itself (for example: the event log is writable, consumers are caught up).
///
/// Each entry is `(name, ok, detail)`; `/ready` answers 503 if any entry is not ok.
/// Checks should be quick: Kubernetes probes time out after a second or so.
#[async_trait]
pub trait Readiness: Send + Sync + 'static {
    async fn check(&self) -> Vec<(String, bool, Option<String>)>;
}

/// Extra text for `GET /metrics`, such as log lag per consumer group.
///
/// `render` appends complete OpenMetrics/Prometheus text lines (`# TYPE`, `# HELP` and samples,
/// each ending in a newline) to `out`. It must not write the `# EOF` marker; the API adds it.
/// It is called on every scrape, so it should read cheap, already-computed values.
pub trait MetricsSource: Send + Sync + 'static {
    fn render(&self, out: &mut String);
}

/// No extra checks: ready when the stores answer.
pub struct NoExtraChecks;

#[async_trait]
impl Readiness for NoExtraChecks {
    async fn check(&self) -> Vec<(String, bool, Option<String>)> {
        Vec::new()
    }
}

/// No extra metrics.
pub struct NoExtraMetrics;

impl MetricsSource for NoExtraMetrics {
    fn render(&self, _out: &mut String) {}
}
