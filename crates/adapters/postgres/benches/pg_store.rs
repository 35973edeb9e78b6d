//! `PgStore` against a real PostgreSQL server on loopback (the test kit's, so `fsync=off`:
//! figures show the adapter and protocol cost, not disk flushes). Prints figures; asserts
//! nothing about speed.
//!
//! `cargo bench -p oms-postgres`

use hdrhistogram::Histogram;
use oms_conformance::fixtures;
use oms_domain::events::Fill;
use oms_domain::ids::{AccountId, Asset, OrderId, Symbol, Timestamp};
use oms_domain::order::{Order, OrderStatus, Side};
use oms_domain::Decimal;
use oms_ports::order_store::{Balance, OrderQuery, OrderStore, Position, StoreBatch};
use oms_postgres::PgStore;
use oms_testkit::postgres::PostgresServer;
use std::sync::Arc;
use std::time::{Duration, Instant};

const SMALL_BATCHES: u64 = 3_000;
const LARGE_BATCHES: u64 = 100;
const LARGE_BATCH_ORDERS: u64 = 200;
const READS: u64 = 5_000;
const COUNTS: u64 = 200;
const CONCURRENT_WRITERS: u64 = 8;

fn main() {
    let server = PostgresServer::new();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(&server.url()));
}

async fn run(url: &str) {
    let store = Arc::new(PgStore::connect(url, 8).await.expect("connect"));
    store.migrate().await.expect("migrate");
    let account = store
        .create_account("bench", false, Timestamp(0))
        .await
        .unwrap()
        .id;
    let mut next_id = 1u64;

    // One order, one fill, one balance and one position per batch: what the processor writes
    // for a single event.
    let mut hist = histogram();
    let started = Instant::now();
    for i in 0..SMALL_BATCHES {
        let batch = small_batch(account, next_id, i);
        next_id += 1;
        let t = Instant::now();
        store.apply(batch).await.unwrap();
        hist.record(micros(t.elapsed())).unwrap();
    }
    report(
        "apply, 1 order + 1 fill + 1 balance + 1 position, one writer",
        &hist,
        SMALL_BATCHES,
        started.elapsed(),
    );

    // Several consumers writing at once (one pool).
    let started = Instant::now();
    let per_writer = SMALL_BATCHES / CONCURRENT_WRITERS;
    let mut tasks = Vec::new();
    for w in 0..CONCURRENT_WRITERS {
        let store = store.clone();
        let first_id = next_id + w * per_writer;
        tasks.push(tokio::spawn(async move {
            let mut hist = histogram();
            for i in 0..per_writer {
                let batch = small_batch(account, first_id + i, i);
                let t = Instant::now();
                store.apply(batch).await.unwrap();
                hist.record(micros(t.elapsed())).unwrap();
            }
            hist
        }));
    }
    let mut hist = histogram();
    for t in tasks {
        hist.add(t.await.unwrap()).unwrap();
    }
    next_id += CONCURRENT_WRITERS * per_writer;
    report(
        &format!("apply, same batches, {CONCURRENT_WRITERS} concurrent writers"),
        &hist,
        CONCURRENT_WRITERS * per_writer,
        started.elapsed(),
    );

    // Large batches: a consumer catching up.
    let mut hist = histogram();
    let started = Instant::now();
    for _ in 0..LARGE_BATCHES {
        let orders: Vec<Order> = (0..LARGE_BATCH_ORDERS)
            .map(|k| order(account, next_id + k))
            .collect();
        let fills = orders.iter().map(|o| fill(o, o.order_id.0)).collect();
        next_id += LARGE_BATCH_ORDERS;
        let t = Instant::now();
        store
            .apply(StoreBatch {
                orders,
                fills,
                ..StoreBatch::default()
            })
            .await
            .unwrap();
        hist.record(micros(t.elapsed())).unwrap();
    }
    let elapsed = started.elapsed();
    report(
        &format!("apply, {LARGE_BATCH_ORDERS} orders + {LARGE_BATCH_ORDERS} fills per batch"),
        &hist,
        LARGE_BATCHES,
        elapsed,
    );
    println!(
        "    = {:.0} orders+fills written per second",
        (LARGE_BATCHES * LARGE_BATCH_ORDERS) as f64 / elapsed.as_secs_f64()
    );

    // A processor far behind: batches of thousands of orders, each changing status (every
    // order written new, then all of them accepted), so per-batch costs that grow faster than
    // the batch show.
    for size in [1_000u64, 4_000] {
        let mut orders: Vec<Order> = (0..size).map(|k| order(account, next_id + k)).collect();
        next_id += size;
        let t = Instant::now();
        store
            .apply(StoreBatch {
                orders: orders.clone(),
                ..StoreBatch::default()
            })
            .await
            .unwrap();
        let inserted = t.elapsed();
        for o in &mut orders {
            o.status = OrderStatus::Accepted;
        }
        let t = Instant::now();
        store
            .apply(StoreBatch {
                orders,
                ..StoreBatch::default()
            })
            .await
            .unwrap();
        println!(
            "apply, {size} new orders in one batch: {} µs; then all {size} accepted: {} µs ({:.1} µs per order)",
            inserted.as_micros(),
            t.elapsed().as_micros(),
            t.elapsed().as_secs_f64() * 1e6 / size as f64
        );
    }

    let mut hist = histogram();
    let started = Instant::now();
    for i in 0..READS {
        let id = OrderId(1 + i % (next_id - 1));
        let t = Instant::now();
        let got = store.order(account, id).await.unwrap();
        hist.record(micros(t.elapsed())).unwrap();
        assert!(got.is_some());
    }
    report("order(account, id)", &hist, READS, started.elapsed());

    let mut hist = histogram();
    let started = Instant::now();
    let pages = READS / 10;
    for i in 0..pages {
        let q = OrderQuery {
            account: Some(account),
            symbol: Some(Symbol::new("BTC/USD")),
            before: Some(OrderId(next_id - i * 7)),
            limit: 50,
            ..OrderQuery::default()
        };
        let t = Instant::now();
        let got = store.orders(&q).await.unwrap();
        hist.record(micros(t.elapsed())).unwrap();
        assert_eq!(got.len(), 50);
    }
    report(
        "orders(account, symbol, before, limit 50)",
        &hist,
        pages,
        started.elapsed(),
    );

    // What each /metrics scrape asks of every process.
    let mut hist = histogram();
    let started = Instant::now();
    let mut stored = 0;
    for _ in 0..COUNTS {
        let t = Instant::now();
        stored = store
            .order_counts_by_status()
            .await
            .unwrap()
            .iter()
            .map(|c| c.1)
            .sum::<u64>();
        hist.record(micros(t.elapsed())).unwrap();
    }
    report(
        &format!("order_counts_by_status() over {stored} orders"),
        &hist,
        COUNTS,
        started.elapsed(),
    );
}

fn small_batch(account: AccountId, id: u64, i: u64) -> StoreBatch {
    let o = order(account, id);
    StoreBatch {
        kill_switches: Vec::new(),
        global_kill_switch: None,
        cancel_afters: Vec::new(),
        cancel_after_triggers: Vec::new(),
        withdrawals: Vec::new(),
        deposits: Vec::new(),
        instrument_statuses: Vec::new(),
        fills: vec![fill(&o, id)],
        orders: vec![o],
        balances: vec![(
            account,
            Balance {
                asset: Asset::new("USD"),
                available: Decimal::new(1_000_000 - i as i64, 2),
                reserved: Decimal::new(i as i64, 2),
            },
        )],
        positions: vec![Position {
            consumer: "bench".into(),
            topic: "orders".into(),
            partition: (i % 4) as u32,
            next_offset: i,
        }],
    }
}

/// Sides take turns.
fn order(account: AccountId, id: u64) -> Order {
    let side = if id.is_multiple_of(2) {
        Side::Buy
    } else {
        Side::Sell
    };
    fixtures::order(id, account, "BTC/USD", side, id as i64)
}

fn fill(o: &Order, trade: u64) -> Fill {
    fixtures::fill(o, trade, "45000.5", "0.01")
}

fn histogram() -> Histogram<u64> {
    Histogram::new(3).unwrap()
}

fn micros(d: Duration) -> u64 {
    d.as_micros().max(1) as u64
}

fn report(what: &str, h: &Histogram<u64>, n: u64, elapsed: Duration) {
    println!(
        "{what}: {n} calls, {:.0}/s; latency µs p50 {} p99 {} p99.9 {} max {}",
        n as f64 / elapsed.as_secs_f64(),
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.99),
        h.value_at_quantile(0.999),
        h.max()
    );
}
