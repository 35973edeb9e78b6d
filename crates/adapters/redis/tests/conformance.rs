//! `RedisIdempotency` against the idempotency store conformance suite, on a real Redis.

use oms_redis::{RedisIdempotency, RedisOptions};
use oms_testkit::redis::RedisServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_idempotency_passes_the_idempotency_suite() {
    let server = RedisServer::new();
    let url = server.url();
    oms_conformance::idempotency_suite(|| {
        let url = url.clone();
        async move {
            RedisIdempotency::connect(&url, RedisOptions::default())
                .await
                .expect("connect")
        }
    })
    .await;
}

/// The lazily connected handle behaves the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lazily_connected_store_passes_the_idempotency_suite() {
    let server = RedisServer::new();
    let url = server.url();
    oms_conformance::idempotency_suite(|| {
        let url = url.clone();
        async move { RedisIdempotency::connect_lazy(&url, RedisOptions::default()).expect("url") }
    })
    .await;
}
