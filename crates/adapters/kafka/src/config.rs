//! How to reach the cluster, and the few client settings the adapter exposes.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// Configuration of [`KafkaLog`](crate::KafkaLog).
///
/// Keys are camelCase like the rest of the configuration; `bootstrapServers` and `clientId`
/// are the seed's `Kafka:BootstrapServers` and `Kafka:ClientId`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct KafkaConfig {
    /// `host:port[,host:port...]`.
    pub bootstrap_servers: String,
    /// Names this process in the brokers' logs and quotas; consumers append `-consumer`.
    pub client_id: String,
    /// Partition counts of the topics this process uses. [`KafkaLog::ensure_topics`]
    /// creates (or checks) each of them; other topics can still be ensured one by one.
    ///
    /// [`KafkaLog::ensure_topics`]: crate::KafkaLog::ensure_topics
    pub topics: BTreeMap<String, u32>,
    /// Replication factor of topics this adapter creates. 1 suits a single test broker;
    /// production clusters want 3 (with `min.insync.replicas=2` on the brokers).
    pub replication_factor: u16,
    /// How long the producer waits to fill a batch. Small: appends are on the order path.
    pub linger_ms: u32,
    /// At most this many records in one record batch (`batch.num.messages`); `None` keeps
    /// librdkafka's default. **Set 1 for tansu** (0.6): it fetches from the first batch that
    /// *starts* at or after the asked offset and answers `ListOffsets(latest)` from the newest
    /// batch's first offset, so with larger batches consumers resuming mid-batch skip records
    /// (see the crate docs).
    pub batch_max_records: Option<u32>,
    /// How long a consumer's fetch may wait at the broker for new records
    /// (`fetch.wait.max.ms`). Kafka answers as soon as records arrive, so waiting long is
    /// free there. **Set about 10 for tansu**, which holds every fetch for half this time,
    /// records or not: with 500 a record takes ~400 ms from append to consumer.
    pub fetch_wait_max_ms: u32,
    /// Bound on metadata, admin, offset and commit requests.
    pub request_timeout_ms: u64,
    /// The consumer group session: a member silent for this long loses its partitions.
    pub session_timeout_ms: u32,
    /// The longest a group member may go between polls before it is expelled. A revoke that
    /// the stage has not yet acknowledged (see [`KafkaConsumer`](crate::KafkaConsumer))
    /// holds the group's rebalance for at most this long.
    pub max_poll_interval_ms: u32,
    /// Any other librdkafka property, for all clients (for example `security.protocol`,
    /// `sasl.mechanisms`). Applied last, so it can override the settings above; the
    /// adapter's guarantees need `enable.idempotence`, `acks` and `enable.auto.commit` as
    /// they are.
    pub extra: BTreeMap<String, String>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            bootstrap_servers: "localhost:9092".into(),
            client_id: "crypto-oms".into(),
            topics: BTreeMap::new(),
            replication_factor: 1,
            linger_ms: 2,
            batch_max_records: None,
            fetch_wait_max_ms: 500,
            request_timeout_ms: 30_000,
            session_timeout_ms: 10_000,
            max_poll_interval_ms: 300_000,
            extra: BTreeMap::new(),
        }
    }
}

impl KafkaConfig {
    /// A configuration for `bootstrap_servers` with every other setting at its default.
    pub fn new(bootstrap_servers: impl Into<String>) -> Self {
        KafkaConfig {
            bootstrap_servers: bootstrap_servers.into(),
            ..KafkaConfig::default()
        }
    }

    /// A configuration for a tansu broker: [`KafkaConfig::new`] with the two settings tansu
    /// needs (see the crate docs): one record per batch, short fetch waits.
    pub fn for_tansu(bootstrap_servers: impl Into<String>) -> Self {
        KafkaConfig {
            batch_max_records: Some(1),
            fetch_wait_max_ms: 10,
            ..KafkaConfig::new(bootstrap_servers)
        }
    }

    pub(crate) fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_seed_keys_in_camel_case_with_defaults_for_the_rest() {
        let config: KafkaConfig = serde_json::from_str(
            r#"{"bootstrapServers": "kafka-1:9092,kafka-2:9092", "clientId": "order-ingestion-api",
                "topics": {"orders": 12}, "extra": {"security.protocol": "SSL"}}"#,
        )
        .unwrap();
        assert_eq!(config.bootstrap_servers, "kafka-1:9092,kafka-2:9092");
        assert_eq!(config.client_id, "order-ingestion-api");
        assert_eq!(config.topics, BTreeMap::from([("orders".to_string(), 12)]));
        assert_eq!(config.extra["security.protocol"], "SSL");
        assert_eq!(config.replication_factor, 1);
        assert_eq!(config.linger_ms, KafkaConfig::default().linger_ms);
    }

    #[test]
    fn refuses_unknown_keys() {
        let err = serde_json::from_str::<KafkaConfig>(r#"{"bootstrapServer": "x:9092"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("bootstrapServer"), "{err}");
    }
}
