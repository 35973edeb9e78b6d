//! A read ends at the end of its partition, which is no error: reads at the tail, over and
//! over (how the risk stage follows reference prices), log nothing at `ERROR`.

mod support;

use oms_kafka::{KafkaConfig, KafkaLog};
use oms_ports::event_log::{EventLog, NewRecord};
use oms_testkit::tansu::TansuServer;
use support::Captured;
use tracing::Level;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_at_the_tail_log_no_error() {
    let errors = Captured::default();
    let writer = errors.clone();
    tracing_subscriber::fmt()
        .with_max_level(Level::ERROR)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();
    let server = TansuServer::new();
    let log = KafkaLog::connect(KafkaConfig {
        client_id: "oms-kafka-read-logging".into(),
        ..KafkaConfig::for_tansu(server.bootstrap_servers())
    })
    .await
    .expect("connect to the broker");
    log.ensure_topic("prices", 1).await.expect("topic");
    let mut next = 0;
    for i in 0..30u32 {
        let record = NewRecord {
            key: b"BTC/USD".to_vec(),
            value: i.to_be_bytes().to_vec(),
            headers: Vec::new(),
        };
        log.append("prices", vec![record]).await.expect("append");
        // One read finds the new record, the next one nothing.
        for expected in [1, 0] {
            let got = log.read("prices", 0, next, 100).await.expect("read");
            assert_eq!(got.len(), expected, "read {i} from {next}");
            next += got.len() as u64;
        }
    }
    assert_eq!(next, 30);
    // Late reports come from librdkafka's threads: give them a moment.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let text = errors.text();
    assert!(text.is_empty(), "errors logged:\n{text}");
}
