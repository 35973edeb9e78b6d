//! Order ingestion over real HTTP: the router on loopback over the embedded adapters with
//! fsync on, driven by keep-alive HTTP/1 connections. Prints throughput and latency.
//!
//! `cargo bench -p oms-services --bench api_ingest` (ORDERS, CONNECTIONS to change the load).

use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use oms_domain::ids::Timestamp;
use oms_domain::instrument::default_instruments;
use oms_embedded::{FileLog, FileLogOptions, SqliteOptions, SqliteStore};
use oms_ports::order_store::{KeyScope, OrderStore};
use oms_services::api::{self, hash_api_key, ApiConfig, ApiState};
use oms_services::ingestion::OrderIdGenerator;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

const KEY: &str = "bench-key";

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn start(dir: &std::path::Path) -> SocketAddr {
    let log = FileLog::open(&dir.join("log"), FileLogOptions::default())
        .await
        .unwrap();
    let store = SqliteStore::open(&dir.join("oms.db"), SqliteOptions::default())
        .await
        .unwrap();
    let idem = store.idempotency();
    let acct = store
        .create_account("bench", true, Timestamp(0))
        .await
        .unwrap();
    store
        .add_api_key(acct.id, &hash_api_key(KEY), KeyScope::Trade, Timestamp(0))
        .await
        .unwrap();
    let state = ApiState::new(
        Arc::new(log),
        Arc::new(store),
        Arc::new(idem),
        default_instruments(),
        ApiConfig::default(),
        Arc::new(OrderIdGenerator::new(0).unwrap()),
    );
    state.ensure_topics().await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, api::router(state)).await.unwrap() });
    addr
}

/// One keep-alive connection sending `n` orders one after another; returns each latency.
async fn client(
    addr: SocketAddr,
    first: usize,
    n: usize,
    idempotent: bool,
    tag: &'static str,
) -> Vec<Duration> {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut lat = Vec::with_capacity(n);
    for i in first..first + n {
        let body = format!(
            r#"{{"symbol":"BTC/USD","side":"BUY","quantity":"0.01","price":"{}.00","orderType":"LIMIT","clientOrderId":"{tag}-{i}"}}"#,
            40_000 + i % 1000
        );
        let mut req = Request::post("/api/orders")
            .header("host", "localhost")
            .header("x-api-key", KEY)
            .header("content-type", "application/json");
        if idempotent {
            req = req.header("x-idempotency-key", format!("{tag}-{i}"));
        }
        let req = req.body(Full::new(Bytes::from(body))).unwrap();
        let t = Instant::now();
        let resp = sender.send_request(req).await.unwrap();
        let status = resp.status();
        let _ = resp.into_body().collect().await.unwrap();
        lat.push(t.elapsed());
        assert_eq!(status, 202);
    }
    lat
}

async fn run(addr: SocketAddr, orders: usize, conns: usize, idempotent: bool, tag: &'static str) {
    let per = orders / conns;
    let started = Instant::now();
    let tasks: Vec<_> = (0..conns)
        .map(|c| tokio::spawn(client(addr, c * per, per, idempotent, tag)))
        .collect();
    let mut all = Vec::with_capacity(per * conns);
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed();
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    println!(
        "{tag:>16}: {} orders over {conns} connections in {:.2?}: {:.0} orders/s; latency p50 {:.2?} p90 {:.2?} p99 {:.2?} max {:.2?}",
        all.len(),
        elapsed,
        all.len() as f64 / elapsed.as_secs_f64(),
        pct(0.50),
        pct(0.90),
        pct(0.99),
        all[all.len() - 1],
    );
}

fn main() {
    let orders = env("ORDERS", 4000);
    let conns = env("CONNECTIONS", 32);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let addr = start(dir.path()).await;
        // Warm up connections, SQLite caches and the log's first segment.
        run(addr, 200, 4, false, "warm-up").await;
        run(addr, orders, conns, false, "plain").await;
        run(addr, orders, conns, true, "idempotency-key").await;
        run(addr, orders, 1, false, "one-connection").await;
    });
}
