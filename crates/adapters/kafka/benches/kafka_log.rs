//! Append throughput and latency of the Kafka event log, for 1, 16 and 256 concurrent
//! appenders each appending one record at a time and waiting for its acknowledgement
//! (`acks=all`, idempotent producer); then a consumer catching up from offset 0; then the time
//! from append to a tailing consumer.
//!
//! Runs against a fresh local tansu broker (in-memory storage) unless `OMS_BENCH_KAFKA` names
//! a cluster (`host:port`), so the figures are of this adapter plus that broker.
//!
//! `cargo bench -p oms-kafka --bench kafka_log`
//! (`OMS_BENCH_SECS` sets the seconds per case, 5 by default; `OMS_BENCH_BATCH_MAX` the
//! records per batch, the configuration's by default, 0 for librdkafka's default.) On tansu
//! the adapter runs with `KafkaConfig::for_tansu`.

use hdrhistogram::Histogram;
use oms_kafka::{KafkaConfig, KafkaLog};
use oms_ports::event_log::{ConsumerEvent, EventLog, NewRecord};
use oms_testkit::tansu::TansuServer;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const PARTITIONS: u32 = 8;
/// About the size of an `OrderCreated` event in JSON.
const VALUE_BYTES: usize = 300;

fn main() {
    let secs: u64 = std::env::var("OMS_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let (_server, bootstrap) = match std::env::var("OMS_BENCH_KAFKA") {
        Ok(servers) => (None, servers),
        Err(_) => {
            let server = TansuServer::new();
            let servers = server.bootstrap_servers();
            (Some(server), servers)
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run(bootstrap, secs));
}

async fn run(bootstrap: String, secs: u64) {
    let mut config = if std::env::var("OMS_BENCH_KAFKA").is_ok() {
        KafkaConfig::new(bootstrap.clone())
    } else {
        KafkaConfig::for_tansu(bootstrap.clone())
    };
    config.client_id = "oms-bench".into();
    match std::env::var("OMS_BENCH_BATCH_MAX").ok().as_deref() {
        Some("0") => (config.batch_max_records, config.fetch_back_records) = (None, 0),
        Some(n) => {
            let n: u32 = n.parse().expect("OMS_BENCH_BATCH_MAX: a number");
            config.batch_max_records = Some(n);
            config.fetch_back_records = config.fetch_back_records.max(n.saturating_sub(1));
        }
        None => {}
    }
    let batch_max_records = config.batch_max_records;
    let log = Arc::new(KafkaLog::connect(config).await.expect("connect"));
    let run = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis();
    let topic = format!("bench-{run}");
    log.ensure_topic(&topic, PARTITIONS).await.expect("topic");
    println!(
        "kafka event log append ({bootstrap}), {VALUE_BYTES}-byte records, {PARTITIONS} \
         partitions, at most {} records per batch, {secs} s per case",
        batch_max_records.map_or("librdkafka's default".to_string(), |n: u32| n.to_string())
    );
    println!(
        "{:>9} {:>12} {:>10} {:>10} {:>10}",
        "appenders", "records/s", "p50 µs", "p99 µs", "max µs"
    );
    let mut total = 0u64;
    for appenders in [1usize, 16, 256] {
        total += append_case(&log, &topic, appenders, Duration::from_secs(secs)).await;
    }
    catch_up(&log, &topic, total).await;
    delivery_latency(&log, &format!("{topic}-latency")).await;
}

/// One record every 10 ms, each timed from the start of its append to its arrival at a
/// consumer that is tailing the topic.
async fn delivery_latency(log: &Arc<KafkaLog>, topic: &str) {
    const RECORDS: usize = 300;
    log.ensure_topic(topic, PARTITIONS).await.expect("topic");
    let mut consumer = log
        .subscribe("bench-latency", &[topic])
        .await
        .expect("subscribe");
    while !matches!(
        consumer
            .poll(10, Duration::from_secs(10))
            .await
            .expect("poll"),
        ConsumerEvent::Assigned(_)
    ) {}
    let epoch = Instant::now();
    let producer = {
        let (log, topic) = (log.clone(), topic.to_string());
        tokio::spawn(async move {
            for i in 0..RECORDS {
                let sent = epoch.elapsed().as_micros() as u64;
                let record = NewRecord {
                    key: format!("account-{i}").into_bytes(),
                    value: sent.to_le_bytes().to_vec(),
                    headers: Vec::new(),
                };
                log.append(&topic, vec![record]).await.expect("append");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    let mut hist = Histogram::<u64>::new(3).expect("histogram");
    while (hist.len() as usize) < RECORDS {
        if let ConsumerEvent::Records(r) = consumer
            .poll(100, Duration::from_secs(10))
            .await
            .expect("poll")
        {
            let now = epoch.elapsed().as_micros() as u64;
            for rec in r {
                let sent = u64::from_le_bytes(rec.value[..8].try_into().expect("8 bytes"));
                hist.record(now.saturating_sub(sent)).expect("record");
            }
        }
    }
    producer.await.expect("producer");
    println!(
        "append to delivery, one record every 10 ms: p50 {} µs, p99 {} µs, max {} µs",
        hist.value_at_quantile(0.5),
        hist.value_at_quantile(0.99),
        hist.max()
    );
}

/// `appenders` tasks append for `length`; prints throughput and latency.
async fn append_case(log: &Arc<KafkaLog>, topic: &str, appenders: usize, length: Duration) -> u64 {
    let deadline = Instant::now() + length;
    let mut tasks = Vec::new();
    for a in 0..appenders {
        let (log, topic) = (log.clone(), topic.to_string());
        tasks.push(tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new(3).expect("histogram");
            let mut i = 0u64;
            while Instant::now() < deadline {
                let record = NewRecord {
                    key: format!("account-{}", (a as u64 * 7919 + i) % 1000).into_bytes(),
                    value: vec![b'x'; VALUE_BYTES],
                    headers: vec![("type".into(), b"OrderCreated".to_vec())],
                };
                let started = Instant::now();
                log.append(&topic, vec![record]).await.expect("append");
                hist.record(started.elapsed().as_micros() as u64)
                    .expect("record");
                i += 1;
            }
            hist
        }));
    }
    let started = Instant::now();
    let mut hist = Histogram::<u64>::new(3).expect("histogram");
    for t in tasks {
        hist.add(t.await.expect("appender")).expect("merge");
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "{:>9} {:>12.0} {:>10} {:>10} {:>10}",
        appenders,
        hist.len() as f64 / elapsed,
        hist.value_at_quantile(0.5),
        hist.value_at_quantile(0.99),
        hist.max()
    );
    hist.len()
}

/// A consumer reads every record from offset 0.
async fn catch_up(log: &Arc<KafkaLog>, topic: &str, total: u64) {
    let mut consumer = log
        .subscribe("bench-catch-up", &[topic])
        .await
        .expect("subscribe");
    let mut got = 0u64;
    let mut started = None;
    while got < total {
        match consumer
            .poll(10_000, Duration::from_secs(10))
            .await
            .expect("poll")
        {
            ConsumerEvent::Assigned(_) => started = Some(Instant::now()),
            ConsumerEvent::Records(r) if r.is_empty() => panic!("no records within 10 s"),
            ConsumerEvent::Records(r) => got += r.len() as u64,
            ConsumerEvent::Revoked(_) => {}
        }
    }
    let elapsed = started.expect("assigned").elapsed().as_secs_f64();
    println!(
        "consumer catching up from offset 0: {got} records in {elapsed:.2} s, {:.0} records/s",
        got as f64 / elapsed
    );
}
