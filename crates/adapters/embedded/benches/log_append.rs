//! Append throughput and latency of the embedded event log with fsync on, for 1, 16 and 256
//! concurrent appenders, each appending one record at a time and waiting for it to be durable.
//! Then read throughput: a consumer catching up from offset 0 (segment files), and reads of
//! the newest records (the tail cache), as consumers tailing the log do.
//!
//! `cargo bench -p oms-embedded --bench log_append`
//! (`OMS_BENCH_SECS` sets the seconds per case, 5 by default.)

use hdrhistogram::Histogram;
use oms_embedded::{FileLog, FileLogOptions};
use oms_ports::event_log::{ConsumerEvent, EventLog, NewRecord};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

const TOPIC: &str = "orders";
const PARTITIONS: u32 = 8;
/// About the size of an `OrderCreated` event in JSON.
const VALUE_BYTES: usize = 300;

struct Case {
    appenders: usize,
    fsync: bool,
}

fn main() {
    let secs: u64 = std::env::var("OMS_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "embedded event log append, {VALUE_BYTES}-byte records, {PARTITIONS} partitions, \
         {secs} s per case"
    );
    println!(
        "{:>9} {:>6} {:>12} {:>10} {:>14} {:>10} {:>10} {:>10}",
        "appenders",
        "fsync",
        "records/s",
        "fsyncs/s",
        "records/group",
        "p50 µs",
        "p99 µs",
        "max µs"
    );
    let cases = [
        Case {
            appenders: 1,
            fsync: true,
        },
        Case {
            appenders: 16,
            fsync: true,
        },
        Case {
            appenders: 256,
            fsync: true,
        },
        // For reference: what group commit costs when the disk is not waited for.
        Case {
            appenders: 256,
            fsync: false,
        },
    ];
    for case in cases {
        rt.block_on(run(case, Duration::from_secs(secs)));
    }
    rt.block_on(reads());
}

async fn reads() {
    const RECORDS: usize = 200_000;
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");
    let options = FileLogOptions {
        fsync: false, // only the setup; reads do not depend on it
        ..FileLogOptions::default()
    };
    let log = FileLog::open(dir.path(), options).await.expect("open");
    log.ensure_topic(TOPIC, PARTITIONS).await.expect("topic");
    let value = vec![b'x'; VALUE_BYTES];
    for chunk in 0..RECORDS / 1000 {
        let batch = (0..1000)
            .map(|i| NewRecord {
                key: format!("account-{}", (chunk * 1000 + i) % 1000).into_bytes(),
                value: value.clone(),
                headers: vec![("type".into(), b"OrderCreated".to_vec())],
            })
            .collect();
        log.append(TOPIC, batch).await.expect("append");
    }

    let mut consumer = log.subscribe("bench", &[TOPIC]).await.expect("subscribe");
    let start = Instant::now();
    let mut got = 0;
    while got < RECORDS {
        if let ConsumerEvent::Records(r) = consumer
            .poll(1000, Duration::from_millis(100))
            .await
            .expect("poll")
        {
            got += r.len();
        }
    }
    let catch_up = got as f64 / start.elapsed().as_secs_f64();

    let end = log.end_offset(TOPIC, 0).await.expect("end");
    let start = Instant::now();
    let mut read = 0;
    for _ in 0..200 {
        read += log
            .read(TOPIC, 0, end - 1000, 1000)
            .await
            .expect("read")
            .len();
    }
    let tail = read as f64 / start.elapsed().as_secs_f64();
    println!();
    println!("reads of {RECORDS} records: consumer catching up from offset 0 {catch_up:.0} records/s, newest 1000 of a partition (tail cache) {tail:.0} records/s");
}

async fn run(case: Case, duration: Duration) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");
    let options = FileLogOptions {
        fsync: case.fsync,
        ..FileLogOptions::default()
    };
    let log = Arc::new(FileLog::open(dir.path(), options).await.expect("open"));
    log.ensure_topic(TOPIC, PARTITIONS).await.expect("topic");
    let (groups0, fsyncs0) = (
        log.stats().groups.load(Ordering::Relaxed),
        log.stats().fsyncs.load(Ordering::Relaxed),
    );
    let start = Instant::now();
    let deadline = start + duration;
    let tasks: Vec<_> = (0..case.appenders)
        .map(|t| {
            let log = log.clone();
            tokio::spawn(async move {
                let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
                let value = vec![b'x'; VALUE_BYTES];
                let mut n = 0u64;
                while Instant::now() < deadline {
                    let rec = NewRecord {
                        key: format!("account-{}", (t as u64 * 7919 + n) % 1000).into_bytes(),
                        value: value.clone(),
                        headers: vec![("type".into(), b"OrderCreated".to_vec())],
                    };
                    let began = Instant::now();
                    log.append(TOPIC, vec![rec]).await.expect("append");
                    hist.record(began.elapsed().as_micros().max(1) as u64)
                        .unwrap();
                    n += 1;
                }
                hist
            })
        })
        .collect();
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    for t in tasks {
        hist.add(t.await.expect("appender")).unwrap();
    }
    let elapsed = start.elapsed().as_secs_f64();
    let groups = log.stats().groups.load(Ordering::Relaxed) - groups0;
    let fsyncs = log.stats().fsyncs.load(Ordering::Relaxed) - fsyncs0;
    let records = hist.len();
    println!(
        "{:>9} {:>6} {:>12.0} {:>10.0} {:>14.1} {:>10} {:>10} {:>10}",
        case.appenders,
        if case.fsync { "on" } else { "off" },
        records as f64 / elapsed,
        fsyncs as f64 / elapsed,
        records as f64 / groups.max(1) as f64,
        hist.value_at_quantile(0.50),
        hist.value_at_quantile(0.99),
        hist.max(),
    );
}
