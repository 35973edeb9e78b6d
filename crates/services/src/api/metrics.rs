//! Prometheus metrics of the API: HTTP requests, latency, idempotency outcomes, and at scrape
//! time the orders by status from the store plus whatever the [`MetricsSource`] hook adds.
//!
//! [`MetricsSource`]: super::hooks::MetricsSource

use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::Duration;

pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: &'static str,
}

/// What happened to a request that carried an idempotency key.
#[derive(Debug, Clone, Copy)]
pub enum IdempotencyOutcome {
    Executed,
    Replayed,
    KeyReused,
    InFlight,
    StoreUnavailable,
}

impl IdempotencyOutcome {
    fn label(self) -> &'static str {
        match self {
            IdempotencyOutcome::Executed => "executed",
            IdempotencyOutcome::Replayed => "replayed",
            IdempotencyOutcome::KeyReused => "key_reused",
            IdempotencyOutcome::InFlight => "in_flight",
            IdempotencyOutcome::StoreUnavailable => "store_unavailable",
        }
    }
}

#[derive(Clone)]
pub struct HttpMetrics {
    registry: Arc<Registry>,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    idempotency: Family<OutcomeLabels, Counter>,
}

impl Default for HttpMetrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        // 0.5 ms .. ~16 s; ingestion answers after an fsync, so the low buckets matter.
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
                0.0005, 2.0, 16,
            ))
        });
        let idempotency = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "oms_http_requests",
            "HTTP requests by method, route and status",
            requests.clone(),
        );
        registry.register(
            "oms_http_request_duration_seconds",
            "HTTP request latency by method and route",
            latency.clone(),
        );
        registry.register(
            "oms_idempotency_requests",
            "Requests with an idempotency key, by outcome",
            idempotency.clone(),
        );
        HttpMetrics {
            registry: Arc::new(registry),
            requests,
            latency,
            idempotency,
        }
    }
}

impl HttpMetrics {
    pub fn observe(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                method: method.to_string(),
                route: route.to_string(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                method: method.to_string(),
                route: route.to_string(),
            })
            .observe(elapsed.as_secs_f64());
    }

    pub fn idempotency(&self, outcome: IdempotencyOutcome) {
        self.idempotency
            .get_or_create(&OutcomeLabels {
                outcome: outcome.label(),
            })
            .inc();
    }

    /// The whole exposition: our registry, orders by status, then `extra` (the hook's text),
    /// then the OpenMetrics EOF marker.
    pub fn render(
        &self,
        orders_by_status: Option<&[(oms_domain::order::OrderStatus, u64)]>,
        extra: &str,
    ) -> String {
        let mut out = String::new();
        let _ = encode_registry(&mut out, &self.registry);
        if let Some(counts) = orders_by_status {
            let mut reg = Registry::default();
            let family = Family::<StatusLabels, Gauge>::default();
            reg.register(
                "oms_orders",
                "Orders in the read model by status",
                family.clone(),
            );
            for status in oms_domain::order::OrderStatus::ALL {
                let n = counts
                    .iter()
                    .find(|(s, _)| *s == status)
                    .map_or(0, |(_, n)| *n);
                family
                    .get_or_create(&StatusLabels {
                        status: status.as_str(),
                    })
                    .set(n as i64);
            }
            let _ = encode_registry(&mut out, &reg);
        }
        out.push_str(extra);
        if !extra.is_empty() && !extra.ends_with('\n') {
            out.push('\n');
        }
        let _ = encode_eof(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oms_domain::order::OrderStatus;

    #[test]
    fn renders_requests_orders_and_extra_before_eof() {
        let m = HttpMetrics::default();
        m.observe("POST", "/api/orders", 202, Duration::from_millis(3));
        m.observe("POST", "/api/orders", 202, Duration::from_millis(4));
        m.idempotency(IdempotencyOutcome::Replayed);
        let text = m.render(
            Some(&[(OrderStatus::New, 3), (OrderStatus::Filled, 2)]),
            "# TYPE oms_log_lag gauge\noms_log_lag{consumer=\"risk\"} 5",
        );
        assert!(
            text.contains(
                r#"oms_http_requests_total{method="POST",route="/api/orders",status="202"} 2"#
            ),
            "{text}"
        );
        assert!(text.contains(
            "oms_http_request_duration_seconds_count{method=\"POST\",route=\"/api/orders\"} 2"
        ));
        assert!(text.contains(r#"oms_idempotency_requests_total{outcome="replayed"} 1"#));
        assert!(text.contains(r#"oms_orders{status="NEW"} 3"#));
        assert!(text.contains(r#"oms_orders{status="FILLED"} 2"#));
        assert!(text.contains(r#"oms_orders{status="CANCELED"} 0"#));
        assert!(
            text.ends_with("oms_log_lag{consumer=\"risk\"} 5\n# EOF\n"),
            "{text}"
        );
        assert_eq!(text.matches("# EOF").count(), 1);
    }
}
