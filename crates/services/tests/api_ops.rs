//! Health, readiness, metrics, the OpenAPI document, Swagger UI, request ids, and how the API
//! behaves when a dependency is down.

mod api_common;

use api_common::{embedded_ports, HookedLog, TestApp, KEY, OTHER_KEY};
use async_trait::async_trait;
use oms_ports::idempotency::{Claim, ClaimTerms, IdempotencyStore, StoredResponse};
use oms_ports::{PortError, PortResult};
use oms_services::api::rate_limit::RequestRate;
use oms_services::api::{MetricsSource, Readiness};
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

const SEED_BODY: &[u8] =
    br#"{"symbol":"BTC/USD","side":"BUY","quantity":0.1,"price":45000,"orderType":"LIMIT","clientOrderId":"c-1"}"#;

struct Flag(Arc<AtomicBool>);

#[async_trait]
impl Readiness for Flag {
    async fn check(&self) -> Vec<(String, bool, Option<String>)> {
        let ok = self.0.load(Ordering::SeqCst);
        vec![("eventLog".into(), ok, (!ok).then(|| "lagging".to_string()))]
    }
}

struct Lag;

impl MetricsSource for Lag {
    fn render(&self, out: &mut String) {
        out.push_str("# TYPE oms_consumer_lag gauge\noms_consumer_lag{consumer=\"risk\"} 7\n");
    }
}

#[tokio::test]
async fn health_ready_and_metrics() {
    let flag = Arc::new(AtomicBool::new(true));
    let f = flag.clone();
    let app = TestApp::start_with(embedded_ports().await, move |s| {
        s.with_readiness(Arc::new(Flag(f)))
            .with_metrics_source(Arc::new(Lag))
    })
    .await;

    let h = app.send("GET", "/health", &[], None).await;
    assert_eq!(
        (h.status, h.json()),
        (200, serde_json::json!({"status": "healthy"}))
    );

    let r = app.send("GET", "/ready", &[], None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let checks = r.json()["checks"].clone();
    let names: Vec<&str> = checks
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["orderStore", "idempotencyStore", "eventLog"]);
    flag.store(false, Ordering::SeqCst);
    let r = app.send("GET", "/ready", &[], None).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["status"], "unavailable");
    assert_eq!(r.json()["checks"][2]["detail"], "lagging");

    let placed = app
        .send(
            "POST",
            "/api/orders",
            &[("x-api-key", KEY), ("content-type", "application/json")],
            Some(SEED_BODY),
        )
        .await;
    assert_eq!(placed.status, 202);
    let m = app.send("GET", "/metrics", &[], None).await;
    assert_eq!(m.status, 200);
    assert!(m
        .header("content-type")
        .unwrap()
        .starts_with("application/openmetrics-text"));
    let text = String::from_utf8(m.body.to_vec()).unwrap();
    assert!(
        text.contains(
            r#"oms_http_requests_total{method="POST",route="/api/orders",status="202"} 1"#
        ),
        "{text}"
    );
    assert!(text.contains(r#"oms_http_requests_total{method="GET",route="/ready",status="503"} 1"#));
    assert!(text.contains(
        r#"oms_http_request_duration_seconds_count{method="POST",route="/api/orders"} 1"#
    ));
    assert!(
        text.contains(r#"oms_orders{status="NEW"} 0"#),
        "read model is empty until the processor runs"
    );
    assert!(text.contains("oms_consumer_lag{consumer=\"risk\"} 7\n# EOF\n"));
}

#[tokio::test]
async fn openapi_covers_every_route_and_swagger_ui_is_served_locally() {
    let app = TestApp::start().await;
    let r = app.send("GET", "/openapi.json", &[], None).await;
    assert_eq!(r.status, 200);
    let doc: Value = r.json();
    assert_eq!(doc["openapi"], "3.1.0");
    let routes = [
        ("/api/session", vec!["get", "post", "delete"]),
        ("/api/orders", vec!["get", "post", "delete"]),
        ("/api/orders/{orderId}", vec!["get", "delete", "patch"]),
        ("/api/orders/{orderId}/fills", vec!["get"]),
        ("/api/fills", vec!["get"]),
        ("/api/fills/export", vec!["get"]),
        ("/api/accounts/me", vec!["get"]),
        ("/api/accounts/me/kill-switch", vec!["put"]),
        ("/api/accounts/me/cancel-after", vec!["put"]),
        ("/api/orders/batch", vec!["post"]),
        ("/api/instruments", vec!["get"]),
        ("/api/admin/kill-switch", vec!["get", "put"]),
        ("/api/admin/instruments/status", vec!["put"]),
        ("/api/admin/accounts", vec!["get", "post"]),
        ("/api/admin/accounts/{accountId}", vec!["get"]),
        (
            "/api/admin/accounts/{accountId}/api-keys",
            vec!["get", "post"],
        ),
        (
            "/api/admin/accounts/{accountId}/api-keys/{keyId}",
            vec!["delete"],
        ),
        (
            "/api/admin/accounts/{accountId}/deposits",
            vec!["get", "post"],
        ),
        (
            "/api/admin/accounts/{accountId}/withdrawals",
            vec!["get", "post"],
        ),
        ("/api/admin/accounts/{accountId}/orders", vec!["delete"]),
        ("/api/admin/accounts/{accountId}/kill-switch", vec!["put"]),
        ("/health", vec!["get"]),
        ("/ready", vec!["get"]),
        ("/metrics", vec!["get"]),
        ("/openapi.json", vec!["get"]),
        ("/swagger-ui", vec!["get"]),
        ("/api/marketdata/candles", vec!["get"]),
        ("/api/marketdata/ticker", vec!["get"]),
        ("/api/marketdata/depth", vec!["get"]),
        ("/api/marketdata/trades", vec!["get"]),
        ("/ws", vec!["get"]),
    ];
    for (path, methods) in routes {
        for m in methods {
            assert!(doc["paths"][path][m].is_object(), "{m} {path} missing");
        }
    }
    // Every schema reference resolves.
    let text = r.body.to_vec();
    let text = String::from_utf8(text).unwrap();
    for part in text.split("\"$ref\": \"#/components/").skip(1) {
        let target = part.split('"').next().unwrap();
        let mut node = &doc["components"];
        for seg in target.split('/') {
            node = &node[seg];
        }
        assert!(node.is_object(), "dangling $ref {target}");
    }
    // Every code the server can send is documented.
    let codes: Vec<&str> = doc["components"]["schemas"]["Problem"]["properties"]["code"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    for c in [
        "PRICE_OFF_TICK",
        "IDEMPOTENCY_KEY_REUSED",
        "BODY_TOO_LARGE",
        "DUPLICATE_CLIENT_ORDER_ID",
        "ORDER_NOT_LIVE",
        "ADMIN_DISABLED",
        "ACCOUNT_NOT_FOUND",
        "IDEMPOTENCY_NOT_SUPPORTED",
        "UNKNOWN_ASSET",
        "INVALID_NAME",
        "INVALID_REFERENCE",
        "API_KEY_NOT_FOUND",
        "READ_ONLY_KEY",
        "RATE_LIMITED",
        "INVALID_TIMEOUT",
        "INVALID_BATCH_SIZE",
        "DUPLICATE_FIELD",
        "UNEXPECTED_BODY",
        "DEPOSIT_REFERENCE_REUSED",
        "WITHDRAWAL_REFERENCE_REUSED",
        "INVALID_INTERVAL",
        "INVALID_RANGE",
    ] {
        assert!(codes.contains(&c), "{c}");
    }

    let ui = app.send("GET", "/swagger-ui", &[], None).await;
    assert_eq!(ui.status, 200);
    let html = String::from_utf8(ui.body.to_vec()).unwrap();
    assert!(
        html.contains("/swagger-ui/assets/swagger-ui-bundle.js") && html.contains("/openapi.json")
    );
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no CDN"
    );
    let js = app
        .send("GET", "/swagger-ui/assets/swagger-ui-bundle.js", &[], None)
        .await;
    assert_eq!(
        (js.status, js.header("content-type")),
        (200, Some("application/javascript"))
    );
    assert!(js.body.len() > 1_000_000);
    let css = app
        .send("GET", "/swagger-ui/assets/swagger-ui.css", &[], None)
        .await;
    assert_eq!(
        (css.status, css.header("content-type")),
        (200, Some("text/css"))
    );
}

#[tokio::test]
async fn request_ids_are_echoed_and_in_problems() {
    let app = TestApp::start().await;
    let r = app
        .send("GET", "/health", &[("x-request-id", "client-req-42")], None)
        .await;
    assert_eq!(r.header("x-request-id"), Some("client-req-42"));
    let r = app
        .send(
            "GET",
            "/api/orders/1",
            &[("x-request-id", "bad id <script>")],
            None,
        )
        .await;
    let id = r.header("x-request-id").unwrap().to_string();
    assert_ne!(id, "bad id <script>");
    assert_eq!(r.json()["requestId"], id.as_str());
    let a = app.send("GET", "/health", &[], None).await;
    let b = app.send("GET", "/health", &[], None).await;
    assert_ne!(a.header("x-request-id"), b.header("x-request-id"));

    let r = app
        .send("GET", "/nowhere", &[("x-request-id", "r-404")], None)
        .await;
    assert_eq!(r.problem().1, "NOT_FOUND");
    assert_eq!(r.json()["requestId"], "r-404");
    let r = app
        .send("PUT", "/api/orders", &[("x-api-key", KEY)], None)
        .await;
    assert_eq!(
        (r.status, r.problem().1.as_str()),
        (405, "METHOD_NOT_ALLOWED")
    );
}

/// An idempotency store that cannot be reached.
struct DownIdempotency;

#[async_trait]
impl IdempotencyStore for DownIdempotency {
    async fn claim_with(&self, _: &str, _: &str, _: &ClaimTerms<'_>) -> PortResult<Claim> {
        Err(PortError::Unavailable("connection refused".into()))
    }
    async fn complete(&self, _: &str, _: &str, _: &StoredResponse, _: Duration) -> PortResult<()> {
        Err(PortError::Unavailable("connection refused".into()))
    }
    async fn release(&self, _: &str) -> PortResult<()> {
        Err(PortError::Unavailable("connection refused".into()))
    }
    async fn abandon(&self, _: &str) -> PortResult<()> {
        Err(PortError::Unavailable("connection refused".into()))
    }
    async fn ping(&self) -> PortResult<()> {
        Err(PortError::Unavailable("connection refused".into()))
    }
}

#[tokio::test]
async fn idempotency_store_down_fails_closed() {
    let mut ports = embedded_ports().await;
    ports.idempotency = Arc::new(DownIdempotency);
    let app = TestApp::start_with(ports, |s| s).await;
    let h = [
        ("x-api-key", KEY),
        ("content-type", "application/json"),
        ("x-idempotency-key", "k"),
    ];
    let r = app.send("POST", "/api/orders", &h, Some(SEED_BODY)).await;
    assert_eq!(r.problem().1, "IDEMPOTENCY_UNAVAILABLE");
    assert_eq!((r.status, r.header("retry-after")), (503, Some("1")));
    assert!(app.order_records().await.is_empty(), "nothing ran");
    // Without a key the request does not need the store.
    let r = app
        .send(
            "POST",
            "/api/orders",
            &[("x-api-key", KEY), ("content-type", "application/json")],
            Some(SEED_BODY),
        )
        .await;
    assert_eq!(r.status, 202);
    let ready = app.send("GET", "/ready", &[], None).await;
    assert_eq!(ready.status, 503);
}

fn disk_full() -> PortError {
    PortError::Unavailable("disk full".into())
}

#[tokio::test]
async fn a_failed_publish_hands_its_key_and_client_order_id_to_the_retry() {
    let down = Arc::new(AtomicBool::new(true));
    let mut ports = embedded_ports().await;
    let is_down = down.clone();
    ports.log = HookedLog::wrap(
        ports.log.clone(),
        Box::new(move |_| {
            let down = is_down.load(Ordering::SeqCst);
            Box::pin(async move {
                if down {
                    Err(disk_full())
                } else {
                    Ok(())
                }
            })
        }),
    );
    let app = TestApp::start_with(ports, |s| s).await;
    let h = [
        ("x-api-key", KEY),
        ("content-type", "application/json"),
        ("x-idempotency-key", "retry-me"),
    ];
    let r = app.send("POST", "/api/orders", &h, Some(SEED_BODY)).await;
    assert_eq!(r.problem().1, "SERVICE_UNAVAILABLE");
    assert_eq!((r.status, r.header("retry-after")), (503, Some("1")));

    // The log is back: the same key and the same clientOrderId go through, once.
    down.store(false, Ordering::SeqCst);
    let r = app.send("POST", "/api/orders", &h, Some(SEED_BODY)).await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    assert_eq!(r.header("idempotent-replayed"), None);
    assert_eq!(r.json()["clientOrderId"], "c-1");
    assert_eq!(app.order_records().await.len(), 1);
}

/// A request that fails only after its lock has expired must not give back its key or its
/// clientOrderId: by then a retry may have resumed it and be placing that very order, and a
/// third request given the freed key (or the clientOrderId) would place a second one.
#[tokio::test]
async fn a_request_failing_after_its_lock_leaves_its_key_and_client_order_id_to_the_retry() {
    let (fail_first, second_started, finish_second) = (
        Arc::new(Notify::new()),
        Arc::new(Notify::new()),
        Arc::new(Notify::new()),
    );
    let mut ports = embedded_ports().await;
    let gates = (
        fail_first.clone(),
        second_started.clone(),
        finish_second.clone(),
    );
    ports.log = HookedLog::wrap(
        ports.log.clone(),
        Box::new(move |n| {
            let (fail_first, second_started, finish_second) = gates.clone();
            Box::pin(async move {
                match n {
                    // The first request's append hangs, then fails.
                    0 => {
                        fail_first.notified().await;
                        Err(disk_full())
                    }
                    // The retry that resumed it is held until the end.
                    1 => {
                        second_started.notify_one();
                        finish_second.notified().await;
                        Ok(())
                    }
                    _ => Ok(()),
                }
            })
        }),
    );
    let lock = Duration::from_millis(300);
    let app = TestApp::start_configured(ports, |c| c.idempotency_lock_ttl = lock, |s| s).await;
    let addr = app.addr;
    let post = move |key: &'static str| {
        tokio::spawn(async move {
            let h = [
                ("x-api-key", KEY),
                ("content-type", "application/json"),
                ("x-idempotency-key", key),
            ];
            api_common::send(addr, "POST", "/api/orders", &h, Some(SEED_BODY)).await
        })
    };

    let first = post("slow-key");
    tokio::time::sleep(lock + Duration::from_millis(100)).await;
    let retry = post("slow-key");
    second_started.notified().await;
    fail_first.notify_one();
    let first = first.await.unwrap();
    assert_eq!(first.status, 503, "{:?}", first.body);

    let third = post("slow-key").await.unwrap();
    assert_eq!(
        third.problem().1,
        "IDEMPOTENCY_REQUEST_IN_FLIGHT",
        "{:?}",
        third.body
    );
    let other_key = post("other-key").await.unwrap();
    assert_eq!(
        other_key.problem().1,
        "DUPLICATE_CLIENT_ORDER_ID",
        "{:?}",
        other_key.body
    );

    finish_second.notify_one();
    let retry = retry.await.unwrap();
    assert_eq!(retry.status, 202, "{:?}", retry.body);
    let replay = post("slow-key").await.unwrap();
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(replay.json()["orderId"], retry.json()["orderId"]);
    assert_eq!(app.order_records().await.len(), 1, "one order, placed once");
}

/// An idempotency store whose `complete` waits for the test's word.
struct HeldCompletions {
    inner: Arc<dyn IdempotencyStore>,
    release: Arc<Notify>,
}

#[async_trait]
impl IdempotencyStore for HeldCompletions {
    async fn claim_with(&self, key: &str, fp: &str, terms: &ClaimTerms<'_>) -> PortResult<Claim> {
        self.inner.claim_with(key, fp, terms).await
    }
    async fn complete(
        &self,
        key: &str,
        fp: &str,
        response: &StoredResponse,
        ttl: Duration,
    ) -> PortResult<()> {
        self.release.notified().await;
        self.inner.complete(key, fp, response, ttl).await
    }
    async fn release(&self, key: &str) -> PortResult<()> {
        self.inner.release(key).await
    }
    async fn abandon(&self, key: &str) -> PortResult<()> {
        self.inner.abandon(key).await
    }
    async fn ping(&self) -> PortResult<()> {
        self.inner.ping().await
    }
}

/// The answer does not wait for the response to be stored, and a retry arriving before it is
/// stored waits for it and replays it rather than finding the key in flight.
#[tokio::test]
async fn an_order_is_answered_before_its_response_is_stored_and_a_quick_retry_replays_it() {
    let release = Arc::new(Notify::new());
    let mut ports = embedded_ports().await;
    ports.idempotency = Arc::new(HeldCompletions {
        inner: ports.idempotency.clone(),
        release: release.clone(),
    });
    let app = TestApp::start_with(ports, |s| s).await;
    let addr = app.addr;
    let post = move || {
        tokio::spawn(async move {
            let h = [
                ("x-api-key", KEY),
                ("content-type", "application/json"),
                ("x-idempotency-key", "quick"),
            ];
            api_common::send(addr, "POST", "/api/orders", &h, Some(SEED_BODY)).await
        })
    };

    let first = post().await.unwrap();
    assert_eq!(
        first.status, 202,
        "answered while its response is not stored yet"
    );
    let retry = post();
    // Long enough for a retry that did not wait to have come back with 409.
    tokio::time::sleep(Duration::from_millis(200)).await;
    release.notify_one();
    let retry = retry.await.unwrap();
    assert_eq!(retry.status, 202, "{:?}", retry.body);
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    assert_eq!(retry.json()["orderId"], first.json()["orderId"]);
    assert_eq!(app.order_records().await.len(), 1);
}

struct Hangs;

#[async_trait]
impl Readiness for Hangs {
    async fn check(&self) -> Vec<(String, bool, Option<String>)> {
        std::future::pending().await
    }
}

#[tokio::test]
async fn a_hanging_readiness_check_fails_the_probe_instead_of_hanging_it() {
    let app = TestApp::start_with(embedded_ports().await, |s| {
        s.with_readiness(Arc::new(Hangs))
    })
    .await;
    let r = app.send("GET", "/ready", &[], None).await;
    assert_eq!(r.status, 503);
    let checks = r.json()["checks"].clone();
    assert_eq!(
        checks[2],
        serde_json::json!({"name": "readiness", "ok": false, "detail": "timed out"})
    );
    assert_eq!(checks[0]["ok"], true);
}

#[tokio::test]
async fn an_account_over_its_request_rate_gets_429_and_the_others_do_not() {
    let app = TestApp::start_configured(
        embedded_ports().await,
        |c| {
            c.request_rate = RequestRate {
                per_second: 2,
                burst: 3,
            };
        },
        |s| s,
    )
    .await;
    let app = &app;
    let me = |key: &'static str| async move {
        app.send("GET", "/api/accounts/me", &[("x-api-key", key)], None)
            .await
    };
    for _ in 0..3 {
        assert_eq!(me(KEY).await.status, 200);
    }
    let limited = me(KEY).await;
    assert_eq!(
        limited.problem(),
        (429, "RATE_LIMITED".to_string(), None),
        "{:?}",
        limited.body
    );
    assert_eq!(limited.header("retry-after"), Some("1"));
    // Orders too, before anything is published.
    let order =
        br#"{"symbol":"BTC/USD","side":"BUY","quantity":"0.1","price":45000,"orderType":"LIMIT"}"#;
    let refused = app
        .send(
            "POST",
            "/api/orders",
            &[("x-api-key", KEY), ("content-type", "application/json")],
            Some(order),
        )
        .await;
    assert_eq!(refused.status, 429);
    assert!(app.order_records().await.is_empty());
    // Another account, and the unauthenticated probes, are not held back.
    assert_eq!(me(OTHER_KEY).await.status, 200);
    assert_eq!(app.send("GET", "/health", &[], None).await.status, 200);
    // Two per second: a request again after half a second.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(me(KEY).await.status, 200);
}
