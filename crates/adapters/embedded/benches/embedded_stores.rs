//! What the SQLite order store and the two embedded idempotency stores (SQLite, and the
//! journal indexed in memory) cost per order, in CPU time and bytes written, under the writes
//! `oms serve` makes of them: the processor's batches (new orders, then fills of orders
//! resting among many), and a claim and a completion per idempotent request from many
//! requests at once (and, for the journal, the memory each kept key takes). Every commit is synced as in production. CPU time and
//! bytes come from `/proc/self` (the process does nothing else), so figures stay comparable
//! between runs on a noisy machine where latency does not. Prints figures; asserts nothing
//! about speed.
//!
//! `cargo bench -p oms-embedded --bench embedded_stores`

use hdrhistogram::Histogram;
use oms_conformance::fixtures;
use oms_domain::ids::{AccountId, Asset, Timestamp};
use oms_domain::order::{Order, OrderStatus, Side};
use oms_domain::Decimal;
use oms_embedded::{
    JournalIdempotency, JournalOptions, SqliteIdempotency, SqliteOptions, SqliteStore,
};
use oms_ports::idempotency::{IdempotencyStore, StoredResponse};
use oms_ports::order_store::{Balance, OrderStore, Position, StoreBatch};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Orders left resting before the fills start (a 60 s run at 5,000/s leaves about 65,000).
const RESTING: u64 = 100_000;
const REST_BATCH: u64 = 500;
/// A processor batch at about 5,000 orders/s.
const FILL_BATCH: u64 = 30;
const FILL_BATCHES: u64 = 1_000;
const KEYS: u64 = 200_000;
/// The journal's keys: as many as orders in the restart figure of `oms serve`.
const JOURNAL_KEYS: u64 = 1_000_000;
const CONCURRENT_REQUESTS: u64 = 64;
const ACCOUNTS: u64 = 100;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run());
}

async fn run() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = SqliteStore::open(&dir.path().join("oms.db"), SqliteOptions::default())
        .await
        .expect("open the order store");

    let usage = Usage::now();
    for first in (1..=RESTING).step_by(REST_BATCH as usize) {
        let orders = (first..first + REST_BATCH).map(order).collect();
        store
            .apply(StoreBatch {
                orders,
                ..StoreBatch::default()
            })
            .await
            .expect("apply");
    }
    usage.report(
        &format!("order store: {RESTING} new orders in batches of {REST_BATCH}"),
        RESTING,
        "order",
    );

    // Each batch: fills of orders picked across the whole book, as fills of long-resting
    // orders come, with the account balances and the consumer position the processor writes.
    let mut pick = Lcg(7);
    let mut latency = histogram();
    let usage = Usage::now();
    for b in 0..FILL_BATCHES {
        let mut batch = StoreBatch::default();
        for k in 0..FILL_BATCH {
            let mut o = order(1 + pick.next() % RESTING);
            let trade = b * FILL_BATCH + k + 1;
            o.status = if trade.is_multiple_of(2) {
                OrderStatus::Filled
            } else {
                OrderStatus::PartiallyFilled
            };
            o.updated_at = Timestamp(o.created_at.0 + 1);
            batch
                .fills
                .push(fixtures::fill(&o, trade, "45000.5", "0.01"));
            batch.orders.push(o);
        }
        batch.balances = (0..2)
            .map(|a| (AccountId(a), balance(b)))
            .collect::<Vec<_>>();
        batch.positions.push(Position {
            consumer: "processor".into(),
            topic: "orders".into(),
            partition: (b % 4) as u32,
            next_offset: b,
        });
        let t = Instant::now();
        store.apply(batch).await.expect("apply");
        latency.record(micros(t.elapsed())).expect("record");
    }
    usage.report(
        &format!(
            "order store: {FILL_BATCHES} batches of {FILL_BATCH} fills of resting orders, \
             apply p50 {} µs p99 {} µs",
            latency.value_at_quantile(0.5),
            latency.value_at_quantile(0.99)
        ),
        FILL_BATCHES * FILL_BATCH,
        "filled order",
    );
    drop(store);

    let keys =
        SqliteIdempotency::open(&dir.path().join("idempotency.db"), SqliteOptions::default())
            .await
            .expect("open the idempotency store");
    claim_and_complete("idempotency store, SQLite", Arc::new(keys), KEYS).await;
    let path = dir.path().join("idempotency");
    let journal = JournalIdempotency::open(&path, JournalOptions::default())
        .await
        .expect("open the idempotency journal");
    let rss = resident_bytes();
    claim_and_complete(
        "idempotency store, journal",
        Arc::new(journal.clone()),
        JOURNAL_KEYS,
    )
    .await;
    println!(
        "    {:.0} bytes of memory per kept key ({} keys)",
        (resident_bytes() - rss) as f64 / journal.len() as f64,
        journal.len()
    );
    // The purge looks at every key, holding one shard of the index at a time.
    let t = Instant::now();
    journal.purge_expired().await.expect("purge");
    println!(
        "    a purge of {} kept keys (none expired) took {:.1} ms, one of 64 shards at a time",
        journal.len(),
        t.elapsed().as_secs_f64() * 1000.0
    );
    drop(journal);
    let t = Instant::now();
    let journal = JournalIdempotency::open(&path, JournalOptions::default())
        .await
        .expect("reopen the idempotency journal");
    println!(
        "    reopened with {} keys kept in {:.2} s",
        journal.len(),
        t.elapsed().as_secs_f64()
    );
}

/// `n` random keys, as clients make them (UUIDs), each claimed and completed, from
/// CONCURRENT_REQUESTS requests at a time.
async fn claim_and_complete(what: &str, keys: Arc<dyn IdempotencyStore>, n: u64) {
    let usage = Usage::now();
    let per_task = n / CONCURRENT_REQUESTS;
    let tasks: Vec<_> = (0..CONCURRENT_REQUESTS)
        .map(|t| {
            let keys = keys.clone();
            tokio::spawn(async move {
                let mut rng = Lcg(t + 1);
                let ttl = Duration::from_secs(86_400);
                for _ in 0..per_task {
                    let key = format!(
                        "{}:{:016x}{:016x}",
                        rng.next() % ACCOUNTS,
                        rng.next(),
                        rng.next()
                    );
                    let fp = format!("{:064x}", rng.next());
                    keys.claim(&key, &fp, ttl).await.expect("claim");
                    keys.complete(&key, &fp, &response(), ttl)
                        .await
                        .expect("complete");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
    usage.report(
        &format!("{what}: claim + complete, {CONCURRENT_REQUESTS} requests at a time, random keys"),
        per_task * CONCURRENT_REQUESTS,
        "key",
    );
}

/// The process's resident memory.
fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm
        .split(' ')
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("resident pages");
    pages * 4096
}

/// CPU time and bytes written by this process since `now`.
struct Usage {
    at: Instant,
    cpu_ticks: u64,
    written: u64,
}

impl Usage {
    fn now() -> Usage {
        Usage {
            at: Instant::now(),
            cpu_ticks: cpu_ticks(),
            written: bytes_written(),
        }
    }

    fn report(&self, what: &str, n: u64, unit: &str) {
        let secs = self.at.elapsed().as_secs_f64();
        // Clock ticks are 1/100 s on Linux.
        let cpu_us = (cpu_ticks() - self.cpu_ticks) as f64 * 10_000.0;
        let written = (bytes_written() - self.written) as f64;
        println!("{what}");
        println!(
            "    {:.0} {unit}s/s; CPU {:.1} µs and {:.1} KiB written per {unit}",
            n as f64 / secs,
            cpu_us / n as f64,
            written / 1024.0 / n as f64
        );
    }
}

/// User and system CPU time of the process, in clock ticks.
fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
}

/// Bytes the process passed to write calls (`wchar`): every WAL frame and checkpoint write.
fn bytes_written() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .expect("/proc/self/io")
        .lines()
        .find_map(|l| l.strip_prefix("wchar: "))
        .expect("wchar")
        .parse()
        .expect("wchar value")
}

/// Deterministic picks, so runs compare.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 11
    }
}

/// Accounts 0 and 1 take turns, and so do the sides.
fn order(id: u64) -> Order {
    let side = if id.is_multiple_of(2) {
        Side::Buy
    } else {
        Side::Sell
    };
    fixtures::order(id, AccountId(id % 2), "BTC/USD", side, id as i64)
}

fn balance(i: u64) -> Balance {
    Balance {
        asset: Asset::new("USD"),
        available: Decimal::new(1_000_000_000 - i as i64, 2),
        reserved: Decimal::new(i as i64, 2),
    }
}

/// About the size of a `202` answer to `POST /api/orders`.
fn response() -> StoredResponse {
    StoredResponse {
        status: 202,
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("location".into(), "/api/orders/123456789".into()),
        ],
        body: vec![b'x'; 420],
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new(3).expect("histogram")
}

fn micros(d: Duration) -> u64 {
    d.as_micros().max(1) as u64
}
