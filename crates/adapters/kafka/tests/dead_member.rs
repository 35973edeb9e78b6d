//! A group member killed without leaving the group (SIGKILL of its process): its partitions
//! reach the survivor, on tansu too, whose coordinator can leave them to nobody (see the
//! crate docs, "On tansu", and `KafkaConfig::orphan_rejoin_ms`).
//!
//! The member to be killed is this test binary run again as a child process, with
//! [`MEMBER_ENV`] telling it which broker to use; it commits what it reads, like a stage, and
//! prints what it owns after every rebalance.

use oms_kafka::{KafkaConfig, KafkaLog};
use oms_ports::event_log::{Consumer, ConsumerEvent, EventLog, NewRecord, TopicPartition};
use oms_testkit::tansu::TansuServer;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const MEMBER_ENV: &str = "OMS_KAFKA_TEST_MEMBER";
const TEST_NAME: &str = "a_killed_members_partitions_reach_the_survivor";
const PARTITIONS: u32 = 4;
const TOPIC: &str = "dead-member";
const GROUP: &str = "dead-member-g";

fn config(bootstrap: &str) -> KafkaConfig {
    KafkaConfig {
        client_id: "oms-kafka-dead-member".into(),
        // Shorter than tansu's default, to keep the test short. The records are appended
        // only after the group has settled without the dead member, so only a partition
        // left to nobody can be still that long.
        orphan_rejoin_ms: 5_000,
        ..KafkaConfig::for_tansu(bootstrap)
    }
}

fn owned_line(owned: &BTreeSet<u32>) -> String {
    let list: Vec<String> = owned.iter().map(u32::to_string).collect();
    format!("owned:{}", list.join(","))
}

/// The child: joins the group, commits what it reads and reports what it owns, until it is
/// killed.
async fn member(bootstrap: &str) {
    let log = KafkaLog::connect(config(bootstrap)).await.expect("connect");
    let mut consumer = log.subscribe(GROUP, &[TOPIC]).await.expect("subscribe");
    loop {
        let event = consumer
            .poll(100, Duration::from_millis(50))
            .await
            .expect("poll");
        if let ConsumerEvent::Records(records) = &event {
            let positions: BTreeMap<u32, u64> = records
                .iter()
                .map(|r| (r.partition, r.offset + 1))
                .collect();
            let positions: Vec<_> = positions
                .into_iter()
                .map(|(partition, next)| {
                    let tp = TopicPartition {
                        topic: TOPIC.into(),
                        partition,
                    };
                    (tp, next)
                })
                .collect();
            consumer.commit(&positions).await.expect("commit");
        }
        if matches!(
            event,
            ConsumerEvent::Assigned(_) | ConsumerEvent::Revoked(_)
        ) {
            let owned: BTreeSet<u32> = consumer
                .assignment()
                .into_iter()
                .map(|tp| tp.partition)
                .collect();
            println!("{}", owned_line(&owned));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_members_partitions_reach_the_survivor() {
    if let Ok(bootstrap) = std::env::var(MEMBER_ENV) {
        return member(&bootstrap).await;
    }
    let server = TansuServer::new();
    let log = KafkaLog::connect(config(&server.bootstrap_servers()))
        .await
        .expect("connect");
    log.ensure_topic(TOPIC, PARTITIONS).await.unwrap();
    let all: BTreeSet<u32> = (0..PARTITIONS).collect();
    let records = |from: usize| -> Vec<NewRecord> {
        (from..from + 40)
            .map(|i| NewRecord {
                key: format!("key-{i}").into_bytes(),
                value: format!("{i}").into_bytes(),
                headers: Vec::new(),
            })
            .collect()
    };
    // Records the child reads and commits: the group has positions in every partition.
    log.append(TOPIC, records(0)).await.unwrap();

    // The child joins first and owns everything.
    let child = Command::new(std::env::current_exe().unwrap())
        .args([TEST_NAME, "--exact", "--nocapture"])
        .env(MEMBER_ENV, server.bootstrap_servers())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the member process");
    let mut child = KillOnDrop(child);
    let (tx, child_owns) = mpsc::channel::<String>();
    let out = child.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            // The harness may print its own text on the same line.
            if let Some(at) = line.find("owned:") {
                let _ = tx.send(line[at + "owned:".len()..].trim().to_string());
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let everything = owned_line(&all)["owned:".len()..].to_string();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match child_owns.recv_timeout(left) {
            Ok(owned) if owned == everything => break,
            Ok(_) => {}
            Err(e) => panic!("the member process never owned every partition: {e}"),
        }
    }

    // The survivor joins: the partitions are split.
    let mut survivor = log.consumer(GROUP, &[TOPIC]).unwrap();
    let mut child_has = everything.clone();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        survivor
            .poll(100, Duration::from_millis(50))
            .await
            .expect("poll");
        while let Ok(owned) = child_owns.try_recv() {
            child_has = owned;
        }
        let mine: BTreeSet<u32> = survivor
            .assignment()
            .into_iter()
            .map(|tp| tp.partition)
            .collect();
        let theirs: BTreeSet<u32> = child_has
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().unwrap())
            .collect();
        if !mine.is_empty()
            && !theirs.is_empty()
            && mine.is_disjoint(&theirs)
            && mine.union(&theirs).count() == PARTITIONS as usize
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the group never split: survivor {mine:?}, member process {theirs:?}"
        );
    }

    // SIGKILL: the member never leaves. The survivor's heartbeat finds its session expired
    // and the group rebalances; tansu 0.6 hands the survivor its old assignment back and
    // forms no new generation (with the default 10 s session; a shorter one expels the
    // survivor too, during its rejoin, and the group heals by itself). With the orphan watch
    // off, the survivor never got the dead member's partitions (two runs of two).
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut revoked = false;
    loop {
        match survivor
            .poll(100, Duration::from_millis(50))
            .await
            .expect("poll")
        {
            ConsumerEvent::Revoked(_) => revoked = true,
            ConsumerEvent::Assigned(_) if revoked => break,
            _ => {}
        }
        assert!(
            Instant::now() < deadline,
            "no rebalance after the member was killed"
        );
    }

    // Records for every partition: the survivor must come to own and read all of them.
    log.append(TOPIC, records(40)).await.unwrap();
    let mut read: BTreeMap<u32, usize> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    while read.len() < PARTITIONS as usize {
        if let ConsumerEvent::Records(records) = survivor
            .poll(100, Duration::from_millis(50))
            .await
            .expect("poll")
        {
            for r in records {
                *read.entry(r.partition).or_default() += 1;
            }
        }
        assert!(
            Instant::now() < deadline,
            "partitions of the killed member never reached the survivor: it owns {:?}, read {read:?}",
            survivor.assignment()
        );
    }
    let owned: BTreeSet<u32> = survivor
        .assignment()
        .into_iter()
        .map(|tp| tp.partition)
        .collect();
    assert_eq!(owned, all);
    assert!(survivor.rejoins() >= 1, "the orphan watch never acted");
}

/// The member process, killed if the test fails before it does.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
