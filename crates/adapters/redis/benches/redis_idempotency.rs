//! `RedisIdempotency` against a real Redis on loopback: the cost of the claim and complete
//! that guard every order request, in latency and in Redis's own CPU time (which the services
//! share the machine with). Prints figures; asserts nothing about speed.
//!
//! `cargo bench -p oms-redis`

use hdrhistogram::Histogram;
use oms_ports::idempotency::{Claim, IdempotencyStore, StoredResponse};
use oms_redis::{RedisIdempotency, RedisOptions};
use oms_testkit::redis::RedisServer;
use std::time::{Duration, Instant};

const REQUESTS: u64 = 20_000;
const CONCURRENCY: u64 = 32;
const TTL: Duration = Duration::from_secs(3600);

fn main() {
    let server = RedisServer::new();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(&server.url()));
}

async fn run(url: &str) {
    let mut admin = redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let store = RedisIdempotency::connect(url, RedisOptions::default())
        .await
        .expect("connect");
    let response = StoredResponse {
        status: 201,
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("location".into(), "/api/v1/orders/1234567890".into()),
        ],
        body: br#"{"orderId":"1234567890","status":"NEW","clientOrderId":"abc"}"#.to_vec(),
    };

    // One request at a time: claim, then complete (what a new order costs).
    let cpu = redis_cpu(&mut admin).await;
    let mut hist = Histogram::<u64>::new(3).unwrap();
    let started = Instant::now();
    for i in 0..REQUESTS {
        let key = format!("bench:seq:{i}");
        let t = Instant::now();
        assert_eq!(store.claim(&key, "fp", TTL).await.unwrap(), Claim::Acquired);
        store.complete(&key, "fp", &response, TTL).await.unwrap();
        hist.record(micros(t.elapsed())).unwrap();
    }
    report(
        "claim + complete, one at a time",
        &hist,
        REQUESTS,
        started.elapsed(),
    );
    report_redis_cpu(&mut admin, cpu, REQUESTS).await;

    // A retry that replays the stored response.
    let cpu = redis_cpu(&mut admin).await;
    let mut hist = Histogram::<u64>::new(3).unwrap();
    let started = Instant::now();
    for i in 0..REQUESTS {
        let t = Instant::now();
        let c = store
            .claim(&format!("bench:seq:{i}"), "fp", TTL)
            .await
            .unwrap();
        hist.record(micros(t.elapsed())).unwrap();
        assert!(matches!(c, Claim::Completed { .. }));
    }
    report(
        "claim of a completed key (replay)",
        &hist,
        REQUESTS,
        started.elapsed(),
    );
    report_redis_cpu(&mut admin, cpu, REQUESTS).await;

    // Many requests at once over the one multiplexed connection.
    let cpu = redis_cpu(&mut admin).await;
    let started = Instant::now();
    let per_task = REQUESTS / CONCURRENCY;
    let tasks: Vec<_> = (0..CONCURRENCY)
        .map(|t| {
            let (store, response) = (store.clone(), response.clone());
            tokio::spawn(async move {
                let mut hist = Histogram::<u64>::new(3).unwrap();
                for i in 0..per_task {
                    let key = format!("bench:par:{t}:{i}");
                    let start = Instant::now();
                    assert_eq!(store.claim(&key, "fp", TTL).await.unwrap(), Claim::Acquired);
                    store.complete(&key, "fp", &response, TTL).await.unwrap();
                    hist.record(micros(start.elapsed())).unwrap();
                }
                hist
            })
        })
        .collect();
    let mut hist = Histogram::<u64>::new(3).unwrap();
    for t in tasks {
        hist.add(t.await.unwrap()).unwrap();
    }
    report(
        &format!("claim + complete, {CONCURRENCY} concurrent requests"),
        &hist,
        per_task * CONCURRENCY,
        started.elapsed(),
    );
    report_redis_cpu(&mut admin, cpu, per_task * CONCURRENCY).await;

    // Redis's own time per command, without the network and the event loop around it.
    let stats: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut admin)
        .await
        .unwrap();
    for line in stats.lines().filter(|l| l.starts_with("cmdstat_")) {
        println!("  {line}");
    }
}

/// Redis's CPU time so far (user + system), in µs, from `INFO cpu`.
async fn redis_cpu(admin: &mut redis::aio::MultiplexedConnection) -> f64 {
    let info: String = redis::cmd("INFO")
        .arg("cpu")
        .query_async(admin)
        .await
        .unwrap();
    ["used_cpu_user:", "used_cpu_sys:"]
        .iter()
        .map(|field| {
            let line = info.lines().find(|l| l.starts_with(field)).expect(field);
            line[field.len()..].trim().parse::<f64>().unwrap() * 1e6
        })
        .sum()
}

async fn report_redis_cpu(admin: &mut redis::aio::MultiplexedConnection, before: f64, n: u64) {
    let used = redis_cpu(admin).await - before;
    println!("  Redis CPU: {:.1} µs per request", used / n as f64);
}

fn micros(d: Duration) -> u64 {
    d.as_micros().max(1) as u64
}

fn report(what: &str, h: &Histogram<u64>, n: u64, elapsed: Duration) {
    println!(
        "{what}: {n} requests, {:.0}/s; latency µs p50 {} p99 {} p99.9 {} max {}",
        n as f64 / elapsed.as_secs_f64(),
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.99),
        h.value_at_quantile(0.999),
        h.max()
    );
}
