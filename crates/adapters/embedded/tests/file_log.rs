//! Behaviour of the embedded event log beyond the port contract: crash recovery, segment
//! rolling, group commit, the single member per group and the directory lock.

use oms_embedded::{EmbeddedError, FileLog, FileLogOptions};
use oms_ports::event_log::{ConsumerEvent, EventLog, NewRecord, Record};
use oms_ports::PortError;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

const TOPIC: &str = "orders";

fn rec(i: usize) -> NewRecord {
    NewRecord {
        key: format!("acct-{}", i % 3).into_bytes(),
        value: format!("event number {i} with some payload").into_bytes(),
        headers: vec![("type".into(), b"OrderCreated".to_vec())],
    }
}

async fn open(dir: &Path, options: FileLogOptions) -> FileLog {
    FileLog::open(dir, options).await.expect("open")
}

async fn read_all(log: &FileLog, partition: u32) -> Vec<Record> {
    let end = log.end_offset(TOPIC, partition).await.unwrap();
    let mut out: Vec<Record> = Vec::new();
    while (out.len() as u64) < end {
        let page = log
            .read(TOPIC, partition, out.len() as u64, 7)
            .await
            .unwrap();
        assert!(!page.is_empty());
        out.extend(page);
    }
    out
}

fn segments(dir: &Path, partition: u32) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> =
        fs::read_dir(dir.join("topics").join(TOPIC).join(partition.to_string()))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "log"))
            .collect();
    v.sort();
    v
}

/// A one-partition log with `n` records; returns them as read back.
async fn filled(dir: &Path, n: usize, options: FileLogOptions) -> Vec<Record> {
    let log = open(dir, options).await;
    log.ensure_topic(TOPIC, 1).await.unwrap();
    log.append(TOPIC, (0..n).map(rec).collect()).await.unwrap();
    read_all(&log, 0).await
}

#[tokio::test]
async fn a_record_torn_by_a_crash_is_cut_off_and_earlier_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    let before = filled(dir.path(), 10, FileLogOptions::default()).await;
    let seg = &segments(dir.path(), 0)[0];
    let len = fs::metadata(seg).unwrap().len();
    // Cut the last record in the middle, as a crash during its write would.
    OpenOptions::new()
        .write(true)
        .open(seg)
        .unwrap()
        .set_len(len - 5)
        .unwrap();

    let log = open(dir.path(), FileLogOptions::default()).await;
    assert_eq!(log.end_offset(TOPIC, 0).await.unwrap(), 9);
    assert_eq!(read_all(&log, 0).await, before[..9].to_vec());
    let a = log.append(TOPIC, vec![rec(100)]).await.unwrap()[0];
    assert_eq!(a.offset, 9, "the torn record's offset is reused");
    drop(log);

    let log = open(dir.path(), FileLogOptions::default()).await;
    let after = read_all(&log, 0).await;
    assert_eq!(after.len(), 10);
    assert_eq!(after[..9], before[..9]);
    assert_eq!(after[9].value, rec(100).value);
}

#[tokio::test]
async fn garbage_or_zeros_after_the_last_record_are_removed() {
    for tail in [vec![0xab_u8; 100], vec![0u8; 4096], vec![1, 0, 0, 0]] {
        let dir = tempfile::tempdir().unwrap();
        let before = filled(dir.path(), 10, FileLogOptions::default()).await;
        let seg = &segments(dir.path(), 0)[0];
        let len = fs::metadata(seg).unwrap().len();
        OpenOptions::new()
            .append(true)
            .open(seg)
            .unwrap()
            .write_all(&tail)
            .unwrap();

        let log = open(dir.path(), FileLogOptions::default()).await;
        assert_eq!(
            read_all(&log, 0).await,
            before,
            "tail of {} bytes",
            tail.len()
        );
        assert_eq!(fs::metadata(seg).unwrap().len(), len, "file cut back");
        log.append(TOPIC, vec![rec(1)]).await.unwrap();
        assert_eq!(log.end_offset(TOPIC, 0).await.unwrap(), 11);
    }
}

#[tokio::test]
async fn a_crash_while_rolling_loses_only_unacknowledged_records() {
    let dir = tempfile::tempdir().unwrap();
    let options = FileLogOptions {
        segment_bytes: 400,
        ..FileLogOptions::default()
    };
    let before = filled(dir.path(), 40, options.clone()).await;
    let segs = segments(dir.path(), 0);
    assert!(segs.len() >= 3, "rolled into {} segments", segs.len());
    // Tear the second-to-last segment: the newest segment then holds records written after
    // the tear, which were never acknowledged, and must go too.
    let victim = &segs[segs.len() - 2];
    let len = fs::metadata(victim).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(victim)
        .unwrap()
        .set_len(len - 3)
        .unwrap();

    let log = open(dir.path(), options.clone()).await;
    let after = read_all(&log, 0).await;
    assert!(!after.is_empty() && after.len() < before.len());
    assert_eq!(
        after[..],
        before[..after.len()],
        "a prefix survives, intact"
    );
    assert_eq!(
        segments(dir.path(), 0).len(),
        segs.len() - 1,
        "newest segment removed"
    );
    let a = log.append(TOPIC, vec![rec(7)]).await.unwrap()[0];
    assert_eq!(a.offset, after.len() as u64);
}

#[tokio::test]
async fn damage_in_an_old_segment_is_reported_not_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let options = FileLogOptions {
        segment_bytes: 400,
        ..FileLogOptions::default()
    };
    filled(dir.path(), 60, options.clone()).await;
    let segs = segments(dir.path(), 0);
    assert!(segs.len() >= 4);
    let mut bytes = fs::read(&segs[0]).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    fs::write(&segs[0], bytes).unwrap();

    // A sealed segment's saved index lets the log open without reading it (restart time must
    // not grow with history); the damage is reported by the read that reaches it.
    let log = open(dir.path(), options.clone()).await;
    match log.read(TOPIC, 0, 0, 100).await {
        Err(PortError::Corrupt(msg)) => assert!(msg.contains("record at position"), "{msg}"),
        other => panic!("expected corruption, got {other:?}"),
    }
    assert_eq!(segments(dir.path(), 0), segs, "no segment removed");
    drop(log);

    // Without its index the segment is read at open, and the log refuses to open.
    let index = segs[0].with_extension("idx");
    assert!(index.exists(), "sealed segments have a saved index");
    fs::remove_file(index).unwrap();
    match FileLog::open(dir.path(), options).await {
        Err(EmbeddedError::Corrupt(msg)) => assert!(msg.contains("damaged"), "{msg}"),
        Err(e) => panic!("expected corruption, got {e}"),
        Ok(_) => panic!("expected corruption, the log opened"),
    }
}

#[tokio::test]
async fn a_stale_or_missing_segment_index_is_rebuilt_from_the_segment() {
    let dir = tempfile::tempdir().unwrap();
    let options = FileLogOptions {
        segment_bytes: 400,
        ..FileLogOptions::default()
    };
    let before = filled(dir.path(), 60, options.clone()).await;
    let segs = segments(dir.path(), 0);
    let idx: Vec<PathBuf> = segs[..segs.len() - 1]
        .iter()
        .map(|s| s.with_extension("idx"))
        .collect();
    fs::remove_file(&idx[0]).unwrap();
    fs::write(&idx[1], b"not an index").unwrap();
    let log = open(dir.path(), options.clone()).await;
    assert_eq!(read_all(&log, 0).await, before);
    drop(log);
    for i in &idx {
        assert!(
            fs::read(i).unwrap().starts_with(b"OMSI"),
            "{} saved again",
            i.display()
        );
    }
    let log = open(dir.path(), options).await;
    assert_eq!(read_all(&log, 0).await, before);
    let a = log.append(TOPIC, vec![rec(99)]).await.unwrap()[0];
    assert_eq!(a.offset, 60);
}

#[tokio::test]
async fn segments_roll_and_reads_cross_them() {
    let dir = tempfile::tempdir().unwrap();
    let options = FileLogOptions {
        segment_bytes: 1000,
        tail_cache_bytes: 0,
        ..FileLogOptions::default()
    };
    let log = open(dir.path(), options.clone()).await;
    log.ensure_topic(TOPIC, 1).await.unwrap();
    for chunk in (0..300).collect::<Vec<_>>().chunks(37) {
        log.append(TOPIC, chunk.iter().map(|&i| rec(i)).collect())
            .await
            .unwrap();
    }
    let segs = segments(dir.path(), 0);
    assert!(segs.len() > 10, "{} segments", segs.len());
    for s in &segs[..segs.len() - 1] {
        let len = fs::metadata(s).unwrap().len();
        assert!((1000..1200).contains(&len), "segment of {len} bytes");
    }
    let all = read_all(&log, 0).await;
    assert_eq!(all.len(), 300);
    for (i, r) in all.iter().enumerate() {
        assert_eq!(r.offset, i as u64);
        assert_eq!(r.value, rec(i).value);
    }
    // One read spanning many segments.
    let span = log.read(TOPIC, 0, 17, 200).await.unwrap();
    assert_eq!(span.len(), 200);
    assert_eq!(span[..], all[17..217]);
    drop(log);
    let log = open(dir.path(), options).await;
    assert_eq!(read_all(&log, 0).await, all, "same after reopen");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_share_fsyncs() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(open(dir.path(), FileLogOptions::default()).await);
    log.ensure_topic(TOPIC, 4).await.unwrap();
    let tasks: Vec<_> = (0..64)
        .map(|t| {
            let log = log.clone();
            tokio::spawn(async move {
                for i in 0..20 {
                    log.append(TOPIC, vec![rec(t * 100 + i)]).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let stats = log.stats();
    let records = stats.records.load(Ordering::Relaxed);
    let groups = stats.groups.load(Ordering::Relaxed);
    assert_eq!(records, 64 * 20);
    assert!(
        groups < records,
        "{records} single-record appends by 64 tasks took {groups} groups: none were shared"
    );
    assert!(
        stats.fsyncs.load(Ordering::Relaxed) >= groups,
        "every group is synced"
    );
}

#[tokio::test]
async fn fsync_is_on_by_default() {
    assert!(FileLogOptions::default().fsync);
}

#[tokio::test]
async fn a_group_has_one_member_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), FileLogOptions::default()).await;
    log.ensure_topic(TOPIC, 2).await.unwrap();
    let first = log.subscribe("risk", &[TOPIC]).await.unwrap();
    match log.subscribe("risk", &[TOPIC]).await {
        Err(PortError::Conflict(_)) => {}
        Err(e) => panic!("expected Conflict, got {e}"),
        Ok(_) => panic!("expected Conflict, a second member joined"),
    }
    let mut other = log.subscribe("processor", &[TOPIC]).await.unwrap();
    assert!(matches!(
        other.poll(10, Duration::ZERO).await.unwrap(),
        ConsumerEvent::Assigned(tps) if tps.len() == 2
    ));
    drop(first);
    log.subscribe("risk", &[TOPIC])
        .await
        .expect("the group is free once its member is gone");
}

#[tokio::test]
async fn a_directory_is_opened_by_one_log_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), FileLogOptions::default()).await;
    assert!(matches!(
        FileLog::open(dir.path(), FileLogOptions::default()).await,
        Err(EmbeddedError::Locked(_))
    ));
    drop(log);
    open(dir.path(), FileLogOptions::default()).await;
}

#[tokio::test]
async fn bad_names_and_unknown_topics_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), FileLogOptions::default()).await;
    for bad in ["", "a/b", "..", "with space"] {
        assert!(matches!(
            log.ensure_topic(bad, 1).await,
            Err(PortError::Invalid(_))
        ));
    }
    assert!(matches!(
        log.ensure_topic("t", 0).await,
        Err(PortError::Invalid(_))
    ));
    assert!(matches!(
        log.append("nope", vec![rec(0)]).await,
        Err(PortError::Invalid(_))
    ));
    log.ensure_topic("t", 2).await.unwrap();
    assert!(matches!(
        log.read("t", 2, 0, 1).await,
        Err(PortError::Invalid(_))
    ));
    assert!(matches!(
        log.subscribe("g", &["nope"]).await,
        Err(PortError::Invalid(_))
    ));
    let huge = NewRecord {
        key: vec![],
        value: vec![0; 17 * 1024 * 1024],
        headers: vec![],
    };
    assert!(matches!(
        log.append("t", vec![huge]).await,
        Err(PortError::Invalid(_))
    ));
    assert_eq!(
        log.end_offset("t", 0).await.unwrap() + log.end_offset("t", 1).await.unwrap(),
        0
    );
}

#[tokio::test]
async fn commits_of_partitions_not_owned_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), FileLogOptions::default()).await;
    log.ensure_topic(TOPIC, 1).await.unwrap();
    log.ensure_topic("other", 1).await.unwrap();
    let mut c = log.subscribe("g", &[TOPIC]).await.unwrap();
    c.poll(1, Duration::ZERO).await.unwrap();
    let tp = oms_ports::event_log::TopicPartition {
        topic: "other".into(),
        partition: 0,
    };
    assert!(matches!(
        c.commit(&[(tp, 1)]).await,
        Err(PortError::Invalid(_))
    ));
    assert_eq!(log.committed("g", "other", 0).await.unwrap(), None);
}

#[tokio::test]
async fn readers_of_a_recent_record_share_what_the_first_decoded() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), FileLogOptions::default()).await;
    log.ensure_topic(TOPIC, 1).await.unwrap();
    log.append(TOPIC, vec![rec(0), rec(1)]).await.unwrap();
    let first = log.read(TOPIC, 0, 0, 10).await.unwrap();
    assert_eq!(first[0].decoded.get::<String>(), None);
    first[0]
        .decoded
        .keep(Arc::new(String::from("decoded once")));
    let again = log.read(TOPIC, 0, 0, 10).await.unwrap();
    assert_eq!(
        again[0]
            .decoded
            .get::<String>()
            .as_deref()
            .map(String::as_str),
        Some("decoded once"),
        "the second reader finds it"
    );
    assert_eq!(again[1].decoded.get::<String>(), None, "per record");
    assert_eq!(again[0].decoded.get::<u64>(), None, "only as the type kept");
    // After a reopen the records come from the segment files, each read decoding anew.
    drop((log, first, again));
    let log = open(dir.path(), FileLogOptions::default()).await;
    let read = log.read(TOPIC, 0, 0, 10).await.unwrap();
    assert_eq!(read.len(), 2);
    assert_eq!(read[0].decoded.get::<String>(), None);
}
