//! Topics the adapter creates keep every record unless configured otherwise (the stages
//! rebuild their state by replaying the log from their last snapshot), and a topic found
//! deleting records after a while is warned of when a process first ensures it.

mod support;

use oms_kafka::{KafkaConfig, KafkaLog};
use oms_ports::event_log::EventLog;
use oms_testkit::tansu::TansuServer;
use support::Captured;
use tracing::Level;

const WEEK_MS: i64 = 7 * 24 * 3600 * 1000;

impl Captured {
    /// The retention warnings logged so far that name `topic`.
    fn warnings_for(&self, topic: &str) -> usize {
        self.text()
            .lines()
            .filter(|l| l.contains("deletes records after retention.ms"))
            .filter(|l| {
                l.contains(&format!("topic=\"{topic}\"")) || l.contains(&format!("topic={topic}"))
            })
            .count()
    }
}

fn config(server: &TansuServer, retention_ms: i64) -> KafkaConfig {
    KafkaConfig {
        client_id: "oms-kafka-retention".into(),
        retention_ms,
        ..KafkaConfig::for_tansu(server.bootstrap_servers())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn created_topics_get_the_configured_retention_and_a_finite_one_is_warned_of() {
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_max_level(Level::WARN)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();
    let server = TansuServer::new();

    let default = KafkaLog::connect(config(&server, -1))
        .await
        .expect("connect");
    default.ensure_topic("kept-for-ever", 1).await.unwrap();
    assert_eq!(
        default.retention_ms("kept-for-ever").await.unwrap(),
        Some(-1)
    );
    assert_eq!(logs.warnings_for("kept-for-ever"), 0);

    let week = KafkaLog::connect(config(&server, WEEK_MS))
        .await
        .expect("connect");
    week.ensure_topic("kept-a-week", 2).await.unwrap();
    assert_eq!(
        week.retention_ms("kept-a-week").await.unwrap(),
        Some(WEEK_MS)
    );
    assert_eq!(week.first_offset("kept-a-week", 1).await.unwrap(), 0);
    assert_eq!(logs.warnings_for("kept-a-week"), 1);

    // Another process with the default finds the topic as it is, warns, and leaves it so.
    let other = KafkaLog::connect(config(&server, -1))
        .await
        .expect("connect");
    other.ensure_topic("kept-a-week", 2).await.unwrap();
    other.ensure_topic("kept-a-week", 2).await.unwrap();
    assert_eq!(
        other.retention_ms("kept-a-week").await.unwrap(),
        Some(WEEK_MS)
    );
    assert_eq!(
        logs.warnings_for("kept-a-week"),
        2,
        "once per process and topic"
    );

    let never = KafkaLog::connect(config(&server, 0))
        .await
        .expect("connect");
    let err = never.ensure_topic("kept-never", 1).await.unwrap_err();
    assert!(err.to_string().contains("retentionMs"), "{err}");
}
