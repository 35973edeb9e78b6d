//! The event log suite.

use crate::support::{check, now_ms, run_id, step};
use oms_ports::event_log::{
    partition_for, Consumer, ConsumerEvent, EventLog, NewRecord, Record, TopicPartition,
};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

const SUITE: &str = "event log";
/// Poll timeout used while collecting records.
const POLL: Duration = Duration::from_millis(200);

/// Runs every event log check against handles made by `make` (see the crate docs).
pub async fn event_log_suite<F, Fut, L>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = L>,
    L: EventLog,
{
    let run = run_id();
    let t = |name: &str| format!("conf-{name}-{run}");

    check(
        SUITE,
        "topics are created once and their partition count is checked",
    );
    topics_are_created_and_checked(&make().await, &t("topics")).await;

    check(
        SUITE,
        "records are partitioned by key, offsets dense from 0, none deleted",
    );
    partitioned_by_key_with_dense_offsets(&make().await, &t("partitioning")).await;

    check(SUITE, "reads start at any offset and respect max");
    reads_start_at_any_offset(&make().await, &t("reads")).await;

    check(SUITE, "records with one key keep their order");
    one_key_keeps_its_order(&make().await, &t("ordering")).await;

    check(SUITE, "keys, values and headers round trip");
    fields_round_trip(&make().await, &t("fields")).await;

    check(
        SUITE,
        "concurrent appends are all stored with distinct offsets",
    );
    concurrent_appends(Arc::new(make().await), &t("concurrent")).await;

    check(SUITE, "appended records survive a reopen");
    survives_reopen(&make, &t("reopen")).await;

    check(
        SUITE,
        "a consumer is assigned every partition, then reads from offset 0",
    );
    consumer_reads_from_start(&make().await, &t("consume"), &format!("conf-g1-{run}")).await;

    check(
        SUITE,
        "a poll with nothing to read times out with empty records",
    );
    poll_times_out_empty(&make().await, &t("timeout"), &format!("conf-g2-{run}")).await;

    check(SUITE, "a waiting poll returns a record appended meanwhile");
    poll_wakes_on_append(&make().await, &t("wake"), &format!("conf-g3-{run}")).await;

    check(
        SUITE,
        "committed positions survive, and a new consumer resumes from them",
    );
    resumes_from_committed(&make, &t("commit"), &format!("conf-g4-{run}")).await;

    check(SUITE, "seek moves the read position");
    seek_moves_position(&make().await, &t("seek"), &format!("conf-g5-{run}")).await;
}

fn rec(key: &str, value: &str) -> NewRecord {
    NewRecord {
        key: key.as_bytes().to_vec(),
        value: value.as_bytes().to_vec(),
        headers: Vec::new(),
    }
}

fn tp(topic: &str, partition: u32) -> TopicPartition {
    TopicPartition {
        topic: topic.to_string(),
        partition,
    }
}

/// Every record of a partition, read in pages.
async fn read_all(log: &impl EventLog, topic: &str, partition: u32) -> Vec<Record> {
    let end = log.end_offset(topic, partition).await.expect("end_offset");
    let mut out: Vec<Record> = Vec::new();
    while (out.len() as u64) < end {
        let page = step("read", log.read(topic, partition, out.len() as u64, 100))
            .await
            .expect("read");
        assert!(
            !page.is_empty(),
            "read({topic}, {partition}, {}) returned nothing below end offset {end}",
            out.len()
        );
        out.extend(page);
    }
    out
}

async fn topics_are_created_and_checked(log: &impl EventLog, topic: &str) {
    log.ensure_topic(topic, 3).await.expect("create topic");
    log.ensure_topic(topic, 3)
        .await
        .expect("ensure_topic of an existing topic with the same count succeeds");
    assert_eq!(log.partition_count(topic).await.unwrap(), 3);
    assert!(
        log.ensure_topic(topic, 5).await.is_err(),
        "ensure_topic with another partition count must fail"
    );
    assert_eq!(log.partition_count(topic).await.unwrap(), 3);
    for p in 0..3 {
        assert_eq!(
            log.end_offset(topic, p).await.unwrap(),
            0,
            "new partition {p}"
        );
    }
}

async fn partitioned_by_key_with_dense_offsets(log: &impl EventLog, topic: &str) {
    const N: u32 = 4;
    log.ensure_topic(topic, N).await.unwrap();
    let before = now_ms();
    let records: Vec<NewRecord> = (0..40)
        .map(|i| rec(&format!("key-{}", i % 10), &format!("value-{i}")))
        .collect();
    let appended = step("append", log.append(topic, records.clone()))
        .await
        .expect("append");
    assert_eq!(appended.len(), records.len(), "one result per record");
    let mut expected: BTreeMap<u32, Vec<&NewRecord>> = BTreeMap::new();
    for (r, a) in records.iter().zip(&appended) {
        assert_eq!(
            a.partition,
            partition_for(&r.key, N),
            "record with key {:?} must go to partition_for(key, {N})",
            String::from_utf8_lossy(&r.key)
        );
        let list = expected.entry(a.partition).or_default();
        assert_eq!(
            a.offset,
            list.len() as u64,
            "offsets of partition {} must be dense from 0 in append order",
            a.partition
        );
        list.push(r);
    }
    for p in 0..N {
        let want = expected.get(&p).cloned().unwrap_or_default();
        assert_eq!(
            log.end_offset(topic, p).await.unwrap(),
            want.len() as u64,
            "end_offset of partition {p}"
        );
        assert_eq!(
            log.first_offset(topic, p).await.unwrap(),
            0,
            "first_offset of partition {p}: nothing deleted"
        );
        let got = read_all(log, topic, p).await;
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g.topic, topic);
            assert_eq!(g.partition, p);
            assert_eq!(g.offset, i as u64);
            assert_eq!(g.key, w.key);
            assert_eq!(g.value, w.value);
            assert!(
                g.timestamp_ms >= before - 60_000 && g.timestamp_ms <= now_ms() + 60_000,
                "timestamp {} is not the append time",
                g.timestamp_ms
            );
        }
    }
}

async fn reads_start_at_any_offset(log: &impl EventLog, topic: &str) {
    log.ensure_topic(topic, 1).await.unwrap();
    let records: Vec<NewRecord> = (0..10).map(|i| rec("k", &format!("r{i}"))).collect();
    log.append(topic, records).await.unwrap();
    let got = log.read(topic, 0, 4, 3).await.unwrap();
    assert_eq!(
        got.iter().map(|r| r.offset).collect::<Vec<_>>(),
        vec![4, 5, 6],
        "read(offset 4, max 3)"
    );
    assert_eq!(&got[0].value[..], b"r4");
    let got = log.read(topic, 0, 9, 100).await.unwrap();
    assert_eq!(got.len(), 1, "read of the last record");
    assert_eq!(&got[0].value[..], b"r9");
    assert!(
        log.read(topic, 0, 10, 100).await.unwrap().is_empty(),
        "read at the end offset returns nothing"
    );
    assert!(
        log.read(topic, 0, 50, 100).await.unwrap().is_empty(),
        "read past the end offset returns nothing"
    );
    assert_eq!(log.read(topic, 0, 0, 1).await.unwrap().len(), 1, "max 1");
}

async fn one_key_keeps_its_order(log: &impl EventLog, topic: &str) {
    log.ensure_topic(topic, 3).await.unwrap();
    for i in 0..50 {
        log.append(topic, vec![rec("one-key", &format!("{i}"))])
            .await
            .unwrap();
    }
    let batch: Vec<NewRecord> = (50..100).map(|i| rec("one-key", &format!("{i}"))).collect();
    log.append(topic, batch).await.unwrap();
    let p = partition_for(b"one-key", 3);
    let got = read_all(log, topic, p).await;
    let values: Vec<String> = got
        .iter()
        .map(|r| String::from_utf8(r.value.to_vec()).unwrap())
        .collect();
    let want: Vec<String> = (0..100).map(|i| i.to_string()).collect();
    assert_eq!(values, want, "records of one key in append order");
}

async fn fields_round_trip(log: &impl EventLog, topic: &str) {
    log.ensure_topic(topic, 2).await.unwrap();
    let binary: Vec<u8> = (0..=255u8).collect();
    let records = vec![
        NewRecord {
            key: b"acct-1".to_vec(),
            value: binary.clone(),
            headers: vec![
                ("type".into(), b"OrderCreated".to_vec()),
                ("event-id".into(), b"o:1:created".to_vec()),
                ("empty".into(), Vec::new()),
                ("bytes".into(), binary.clone()),
            ],
        },
        NewRecord {
            key: binary.clone(),
            value: Vec::new(),
            headers: Vec::new(),
        },
    ];
    let appended = log.append(topic, records.clone()).await.unwrap();
    for (r, a) in records.iter().zip(appended) {
        let got = log.read(topic, a.partition, a.offset, 1).await.unwrap();
        assert_eq!(got.len(), 1);
        let g = &got[0];
        assert_eq!(g.key, r.key, "key round trip");
        assert_eq!(g.value, r.value, "value round trip");
        assert_eq!(
            &g.headers[..],
            &r.headers[..],
            "headers round trip, in order"
        );
    }
    let got = log
        .read(topic, partition_for(b"acct-1", 2), 0, 1)
        .await
        .unwrap();
    assert_eq!(got[0].header("type"), Some(&b"OrderCreated"[..]));
    assert_eq!(got[0].header("empty"), Some(&b""[..]));
    assert_eq!(got[0].header("missing"), None);
}

async fn concurrent_appends<L: EventLog>(log: Arc<L>, topic: &str) {
    const TASKS: usize = 32;
    const EACH: usize = 25;
    log.ensure_topic(topic, 4).await.unwrap();
    let mut handles = Vec::new();
    for task in 0..TASKS {
        let log = log.clone();
        let topic = topic.to_string();
        handles.push(tokio::spawn(async move {
            let key = format!("task-{task}");
            let mut done = Vec::new();
            for j in 0..EACH {
                // Some tasks append one record at a time, others two at once.
                let recs = if task % 2 == 0 || j + 1 == EACH {
                    vec![rec(&key, &format!("{task}/{j}"))]
                } else {
                    vec![rec(&key, &format!("{task}/{j}")), rec(&key, "x")]
                };
                let n = recs.len();
                let res = log.append(&topic, recs).await.expect("concurrent append");
                assert_eq!(res.len(), n);
                done.push(res[0]);
                if n == 2 {
                    assert_eq!(
                        res[1].offset,
                        res[0].offset + 1,
                        "a batch of one key stays together"
                    );
                }
            }
            done
        }));
    }
    let mut per_task = Vec::new();
    for h in handles {
        per_task.push(step("concurrent appends", h).await.expect("append task"));
    }
    let mut seen: BTreeSet<(u32, u64)> = BTreeSet::new();
    for (task, results) in per_task.iter().enumerate() {
        let p = partition_for(format!("task-{task}").as_bytes(), 4);
        for w in results.windows(2) {
            assert!(
                w[1].offset > w[0].offset,
                "offsets of one appender increase"
            );
        }
        for a in results {
            assert_eq!(a.partition, p);
            assert!(
                seen.insert((a.partition, a.offset)),
                "offset {a:?} given twice"
            );
        }
    }
    let mut total = 0u64;
    for p in 0..4 {
        let recs = read_all(&*log, topic, p).await;
        for (i, r) in recs.iter().enumerate() {
            assert_eq!(r.offset, i as u64, "dense offsets after concurrent appends");
        }
        total += recs.len() as u64;
        for (task, results) in per_task.iter().enumerate() {
            for (j, a) in results.iter().enumerate() {
                if a.partition == p {
                    let r = &recs[a.offset as usize];
                    assert_eq!(r.value, format!("{task}/{j}").as_bytes(), "record at {a:?}");
                }
            }
        }
    }
    let odd_tasks = (0..TASKS).filter(|t| t % 2 == 1).count() as u64;
    let expected = (TASKS * EACH) as u64 + odd_tasks * (EACH as u64 - 1);
    assert_eq!(total, expected, "every appended record is stored once");
}

async fn survives_reopen<F, Fut, L>(make: &F, topic: &str)
where
    F: Fn() -> Fut,
    Fut: Future<Output = L>,
    L: EventLog,
{
    let log = make().await;
    log.ensure_topic(topic, 2).await.unwrap();
    let records: Vec<NewRecord> = (0..20)
        .map(|i| NewRecord {
            key: format!("k{}", i % 4).into_bytes(),
            value: format!("v{i}").into_bytes(),
            headers: vec![("n".into(), vec![i as u8])],
        })
        .collect();
    log.append(topic, records).await.unwrap();
    let before = [
        read_all(&log, topic, 0).await,
        read_all(&log, topic, 1).await,
    ];
    drop(log);

    let log = make().await;
    assert_eq!(
        log.partition_count(topic).await.unwrap(),
        2,
        "topic survives"
    );
    for p in 0..2u32 {
        let after = read_all(&log, topic, p).await;
        assert_eq!(after, before[p as usize], "partition {p} after reopen");
    }
    let a = log.append(topic, vec![rec("k0", "after")]).await.unwrap()[0];
    assert_eq!(
        a.offset,
        before[a.partition as usize].len() as u64,
        "offsets continue after reopen"
    );
}

/// Polls until the first `Assigned`; records before it break the contract.
async fn first_assignment(c: &mut dyn Consumer) -> Vec<TopicPartition> {
    step("waiting for assignment", async {
        loop {
            match c.poll(100, POLL).await.expect("poll") {
                ConsumerEvent::Assigned(tps) => return tps,
                ConsumerEvent::Records(r) => {
                    assert!(r.is_empty(), "records arrived before Assigned")
                }
                ConsumerEvent::Revoked(_) => {}
            }
        }
    })
    .await
}

/// Polls until `n` records arrived.
async fn poll_n(c: &mut dyn Consumer, n: usize) -> Vec<Record> {
    step("waiting for records", async {
        let mut out = Vec::new();
        while out.len() < n {
            if let ConsumerEvent::Records(r) = c.poll(n - out.len(), POLL).await.expect("poll") {
                out.extend(r);
            }
        }
        out
    })
    .await
}

fn by_partition(records: &[Record]) -> BTreeMap<u32, Vec<u64>> {
    let mut m: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    for r in records {
        m.entry(r.partition).or_default().push(r.offset);
    }
    m
}

async fn consumer_reads_from_start(log: &impl EventLog, topic: &str, group: &str) {
    log.ensure_topic(topic, 3).await.unwrap();
    let records: Vec<NewRecord> = (0..30).map(|i| rec(&format!("k{i}"), "v")).collect();
    log.append(topic, records).await.unwrap();
    assert_eq!(
        log.committed(group, topic, 0).await.unwrap(),
        None,
        "nothing committed yet"
    );

    let mut c = log.subscribe(group, &[topic]).await.expect("subscribe");
    let assigned: BTreeSet<_> = first_assignment(&mut *c).await.into_iter().collect();
    let all: BTreeSet<_> = (0..3).map(|p| tp(topic, p)).collect();
    assert_eq!(assigned, all, "the only member owns every partition");
    assert_eq!(c.assignment().into_iter().collect::<BTreeSet<_>>(), all);

    let got = poll_n(&mut *c, 30).await;
    assert_eq!(got.len(), 30, "no record delivered twice");
    for (p, offsets) in by_partition(&got) {
        let end = log.end_offset(topic, p).await.unwrap();
        assert_eq!(
            offsets,
            (0..end).collect::<Vec<_>>(),
            "partition {p} in order from 0"
        );
    }
}

async fn poll_times_out_empty(log: &impl EventLog, topic: &str, group: &str) {
    log.ensure_topic(topic, 2).await.unwrap();
    let mut c = log.subscribe(group, &[topic]).await.unwrap();
    first_assignment(&mut *c).await;
    match step("poll", c.poll(10, Duration::from_millis(100)))
        .await
        .unwrap()
    {
        ConsumerEvent::Records(r) => assert!(r.is_empty(), "nothing was appended"),
        other => panic!("expected empty records, got {other:?}"),
    }
}

async fn poll_wakes_on_append(log: &impl EventLog, topic: &str, group: &str) {
    log.ensure_topic(topic, 2).await.unwrap();
    let mut c = log.subscribe(group, &[topic]).await.unwrap();
    first_assignment(&mut *c).await;
    // A long timeout: if the append does not wake the poll, it returns empty after 30 s and
    // the check fails.
    let waiter = tokio::spawn(async move {
        let ev = c.poll(10, Duration::from_secs(30)).await.expect("poll");
        (c, ev)
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    log.append(topic, vec![rec("wake", "up")]).await.unwrap();
    let (_c, ev) = step("waiting poll", waiter).await.unwrap();
    match ev {
        ConsumerEvent::Records(r) => {
            assert_eq!(r.len(), 1, "the appended record");
            assert_eq!(&r[0].value[..], b"up");
        }
        other => panic!("expected the appended record, got {other:?}"),
    }
}

async fn resumes_from_committed<F, Fut, L>(make: &F, topic: &str, group: &str)
where
    F: Fn() -> Fut,
    Fut: Future<Output = L>,
    L: EventLog,
{
    let log = make().await;
    log.ensure_topic(topic, 2).await.unwrap();
    let records: Vec<NewRecord> = (0..40).map(|i| rec(&format!("k{i}"), "v")).collect();
    log.append(topic, records).await.unwrap();
    let ends = [
        log.end_offset(topic, 0).await.unwrap(),
        log.end_offset(topic, 1).await.unwrap(),
    ];
    assert!(ends[0] >= 3 && ends[1] >= 3, "both partitions have records");

    let mut c = log.subscribe(group, &[topic]).await.unwrap();
    first_assignment(&mut *c).await;
    poll_n(&mut *c, 40).await;
    // Partition 0 fully processed, partition 1 only up to offset 2.
    c.commit(&[(tp(topic, 0), ends[0]), (tp(topic, 1), 2)])
        .await
        .expect("commit");
    assert_eq!(log.committed(group, topic, 0).await.unwrap(), Some(ends[0]));
    assert_eq!(log.committed(group, topic, 1).await.unwrap(), Some(2));
    drop(c);

    let mut c = log.subscribe(group, &[topic]).await.expect("resubscribe");
    first_assignment(&mut *c).await;
    let got = poll_n(&mut *c, (ends[1] - 2) as usize).await;
    assert_eq!(
        by_partition(&got),
        BTreeMap::from([(1, (2..ends[1]).collect::<Vec<_>>())]),
        "resumes at the committed positions"
    );
    c.commit(&[(tp(topic, 1), 5)]).await.unwrap();
    drop(c);
    drop(log);

    let log = make().await;
    assert_eq!(
        log.committed(group, topic, 0).await.unwrap(),
        Some(ends[0]),
        "after reopen"
    );
    assert_eq!(
        log.committed(group, topic, 1).await.unwrap(),
        Some(5),
        "after reopen"
    );
    let mut c = log.subscribe(group, &[topic]).await.unwrap();
    first_assignment(&mut *c).await;
    let got = poll_n(&mut *c, (ends[1] - 5) as usize).await;
    assert_eq!(
        by_partition(&got),
        BTreeMap::from([(1, (5..ends[1]).collect::<Vec<_>>())]),
        "resumes at the committed positions after reopen"
    );
    // New records after the resume arrive too.
    let a = log.append(topic, vec![rec("k0", "new")]).await.unwrap()[0];
    let got = poll_n(&mut *c, 1).await;
    assert_eq!((got[0].partition, got[0].offset), (a.partition, a.offset));
    assert_eq!(&got[0].value[..], b"new");
}

async fn seek_moves_position(log: &impl EventLog, topic: &str, group: &str) {
    log.ensure_topic(topic, 1).await.unwrap();
    let records: Vec<NewRecord> = (0..10).map(|i| rec("k", &format!("{i}"))).collect();
    log.append(topic, records).await.unwrap();
    let mut c = log.subscribe(group, &[topic]).await.unwrap();
    first_assignment(&mut *c).await;
    assert_eq!(poll_n(&mut *c, 10).await.len(), 10);
    c.seek(&tp(topic, 0), 3).await.expect("seek back");
    let got = poll_n(&mut *c, 7).await;
    assert_eq!(
        got.iter().map(|r| r.offset).collect::<Vec<_>>(),
        (3..10).collect::<Vec<_>>(),
        "after seek(3)"
    );
    c.seek(&tp(topic, 0), 8).await.expect("seek forward");
    let got = poll_n(&mut *c, 2).await;
    assert_eq!(got.iter().map(|r| r.offset).collect::<Vec<_>>(), vec![8, 9]);
}
