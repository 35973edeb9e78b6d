//! How to reach the cluster, and the few client settings the adapter exposes.

use crate::continuity::Continuity;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// Records per batch with [`KafkaConfig::for_tansu`]: batching is what lets tansu keep up (it
/// lists a partition's batches on every fetch), and the fetch-back distance follows from it.
/// A fetch starts that far back only when a consumer is positioned (assignment, seek, read,
/// gap), so a large bound costs little. A small one holds a producer that fell behind to one
/// small request per round trip: with a 10 ms linger and 5,000 orders/s offered, the
/// distributed benchmark acknowledged 3,235/s with 64 records, 4,495/s with 512.
pub const TANSU_BATCH: u32 = 512;

/// `linger.ms` with [`KafkaConfig::for_tansu`], whose produce round trip under load is longer
/// than the default linger (see [`KafkaConfig::linger_ms`]).
pub const TANSU_LINGER_MS: u32 = 10;

/// `orphanRejoinMs` with [`KafkaConfig::for_tansu`]: above market data's 30 s between commits
/// plus the 10 s session, so a live member is never taken for a dead one.
pub const TANSU_ORPHAN_REJOIN_MS: u64 = 45_000;

/// Configuration of [`KafkaLog`](crate::KafkaLog).
///
/// Keys are camelCase like the rest of the configuration; `bootstrapServers` and `clientId`
/// are the seed's `Kafka:BootstrapServers` and `Kafka:ClientId`. In a file, `broker = "tansu"`
/// starts from [`KafkaConfig::for_tansu`] instead of the defaults; keys given beside it still
/// win.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "KafkaConfigFile")]
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
    /// `retention.ms` of topics this adapter creates: -1 keeps every record, which the
    /// default is, because the stages rebuild their state from their last snapshot and the
    /// records after it (a stage stops rather than run on state rebuilt without deleted
    /// records). A finite retention must stay far above `pipeline.snapshotMaxAgeSecs`.
    /// Topics that exist already keep theirs (checked at start: a finite one is warned of).
    pub retention_ms: i64,
    /// How long the producer waits to fill a batch (`linger.ms`). Appends are on the order
    /// path, so it is short, but keep it above the broker's usual produce round trip:
    /// librdkafka's idempotent producer sends a partition's next request only once the one in
    /// flight is answered, and meanwhile a batch whose linger has passed makes its broker
    /// thread spin (on tansu at 2,500 orders/s with 2 ms, the three producing services' broker
    /// threads took 40% of two cores). 5 is librdkafka's own default.
    pub linger_ms: u32,
    /// At most this many records in one record batch (`batch.num.messages`); `None` keeps
    /// librdkafka's default. Bounds how far back a fetch must start on brokers that need
    /// `fetch_back_records`.
    pub batch_max_records: Option<u32>,
    /// Start every fetch this many records before the wanted offset and drop what precedes
    /// it. 0 on Kafka. **tansu** (0.6) serves only batches that *start* at or after the
    /// asked offset, so a consumer resuming inside a batch would skip the rest of it: set at
    /// least the largest batch any producer of the topic writes, less one (see the crate
    /// docs).
    pub fetch_back_records: u32,
    /// Whether a gap in a partition's offsets is waited for: 0 delivers past gaps at once, as
    /// Kafka needs (a topic here is neither compacted nor transactional, so it has none);
    /// otherwise the partition is fetched again until the missing records come, however long
    /// that takes, and a warning is logged every this many milliseconds while it lasts.
    /// **tansu** can serve a batch while an earlier one is still being stored.
    pub gap_refetch_ms: u64,
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
    /// Rejoin the group when a partition this member does not own has held records past the
    /// group's committed position, with that position not moving, for this many
    /// milliseconds; 0 never (Kafka). **tansu** (0.6) can leave a dead member's partitions
    /// to nobody until a member rejoins (see the crate docs and `orphans`). Keep it above the
    /// longest a live member goes without committing while behind (market data commits at
    /// each snapshot, at most 30 s apart) plus the session timeout.
    pub orphan_rejoin_ms: u64,
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
            retention_ms: -1,
            linger_ms: 5,
            batch_max_records: None,
            fetch_back_records: 0,
            gap_refetch_ms: 0,
            fetch_wait_max_ms: 500,
            request_timeout_ms: 30_000,
            session_timeout_ms: 10_000,
            max_poll_interval_ms: 300_000,
            orphan_rejoin_ms: 0,
            extra: BTreeMap::new(),
        }
    }
}

/// Which broker the settings are for: its defaults are the starting point of a file's keys.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Broker {
    #[default]
    Kafka,
    Tansu,
}

/// [`KafkaConfig`] as written in a file: every key optional, over the broker's defaults.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct KafkaConfigFile {
    #[serde(default)]
    broker: Broker,
    bootstrap_servers: Option<String>,
    client_id: Option<String>,
    topics: Option<BTreeMap<String, u32>>,
    replication_factor: Option<u16>,
    retention_ms: Option<i64>,
    linger_ms: Option<u32>,
    batch_max_records: Option<u32>,
    fetch_back_records: Option<u32>,
    gap_refetch_ms: Option<u64>,
    fetch_wait_max_ms: Option<u32>,
    request_timeout_ms: Option<u64>,
    session_timeout_ms: Option<u32>,
    max_poll_interval_ms: Option<u32>,
    orphan_rejoin_ms: Option<u64>,
    extra: Option<BTreeMap<String, String>>,
}

impl From<KafkaConfigFile> for KafkaConfig {
    fn from(f: KafkaConfigFile) -> Self {
        let base = match f.broker {
            Broker::Kafka => KafkaConfig::default(),
            Broker::Tansu => KafkaConfig::for_tansu(KafkaConfig::default().bootstrap_servers),
        };
        KafkaConfig {
            bootstrap_servers: f.bootstrap_servers.unwrap_or(base.bootstrap_servers),
            client_id: f.client_id.unwrap_or(base.client_id),
            topics: f.topics.unwrap_or(base.topics),
            replication_factor: f.replication_factor.unwrap_or(base.replication_factor),
            retention_ms: f.retention_ms.unwrap_or(base.retention_ms),
            linger_ms: f.linger_ms.unwrap_or(base.linger_ms),
            batch_max_records: f.batch_max_records.or(base.batch_max_records),
            fetch_back_records: f.fetch_back_records.unwrap_or(base.fetch_back_records),
            gap_refetch_ms: f.gap_refetch_ms.unwrap_or(base.gap_refetch_ms),
            fetch_wait_max_ms: f.fetch_wait_max_ms.unwrap_or(base.fetch_wait_max_ms),
            request_timeout_ms: f.request_timeout_ms.unwrap_or(base.request_timeout_ms),
            session_timeout_ms: f.session_timeout_ms.unwrap_or(base.session_timeout_ms),
            max_poll_interval_ms: f.max_poll_interval_ms.unwrap_or(base.max_poll_interval_ms),
            orphan_rejoin_ms: f.orphan_rejoin_ms.unwrap_or(base.orphan_rejoin_ms),
            extra: f.extra.unwrap_or(base.extra),
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

    /// A configuration for a tansu broker: [`KafkaConfig::new`] with what tansu needs (see
    /// the crate docs): bounded batches fetched from a batch's length early, gaps refetched,
    /// short fetch waits, a linger longer than its produce round trip, and partitions left to
    /// nobody taken back by rejoining ([`TANSU_ORPHAN_REJOIN_MS`]).
    pub fn for_tansu(bootstrap_servers: impl Into<String>) -> Self {
        KafkaConfig {
            linger_ms: TANSU_LINGER_MS,
            batch_max_records: Some(TANSU_BATCH),
            fetch_back_records: TANSU_BATCH - 1,
            gap_refetch_ms: 5_000,
            fetch_wait_max_ms: 10,
            orphan_rejoin_ms: TANSU_ORPHAN_REJOIN_MS,
            ..KafkaConfig::new(bootstrap_servers)
        }
    }

    pub(crate) fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// The orphan watch, when on.
    pub(crate) fn orphan_rejoin(&self) -> Option<Duration> {
        (self.orphan_rejoin_ms > 0).then(|| Duration::from_millis(self.orphan_rejoin_ms))
    }

    pub(crate) fn continuity(&self) -> Continuity {
        let patience =
            (self.gap_refetch_ms > 0).then(|| Duration::from_millis(self.gap_refetch_ms));
        Continuity::new(self.fetch_back_records, patience)
    }

    /// Refuses a batch bound that the fetch-back distance cannot cover.
    pub(crate) fn check(&self) -> Result<(), String> {
        match self.batch_max_records {
            Some(n) if self.fetch_back_records > 0 && n > self.fetch_back_records + 1 => Err(format!(
                "batchMaxRecords ({n}) must not exceed fetchBackRecords + 1 ({}): a consumer resuming inside a batch would skip records",
                self.fetch_back_records + 1
            )),
            None if self.fetch_back_records > 0 => Err(
                "fetchBackRecords needs batchMaxRecords: without a bound on batches no distance covers them".into(),
            ),
            _ => Ok(()),
        }
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
        assert_eq!(
            config.retention_ms, -1,
            "every record kept unless told otherwise"
        );
        assert_eq!(config.linger_ms, KafkaConfig::default().linger_ms);
        let week: KafkaConfig = serde_json::from_str(r#"{"retentionMs": 604800000}"#).unwrap();
        assert_eq!(week.retention_ms, 604_800_000);
    }

    #[test]
    fn broker_tansu_starts_from_its_settings_and_keys_beside_it_win() {
        let config: KafkaConfig = serde_json::from_str(
            r#"{"broker": "tansu", "bootstrapServers": "127.0.0.1:9092", "lingerMs": 20}"#,
        )
        .unwrap();
        assert_eq!(
            config,
            KafkaConfig {
                linger_ms: 20,
                ..KafkaConfig::for_tansu("127.0.0.1:9092")
            }
        );
        assert_eq!(config.batch_max_records, Some(TANSU_BATCH));
        let kafka: KafkaConfig = serde_json::from_str(r#"{"broker": "kafka"}"#).unwrap();
        assert_eq!(kafka, KafkaConfig::default());
        let err = serde_json::from_str::<KafkaConfig>(r#"{"broker": "redpanda"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("redpanda"), "{err}");
    }

    #[test]
    fn refuses_unknown_keys() {
        let err = serde_json::from_str::<KafkaConfig>(r#"{"bootstrapServer": "x:9092"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("bootstrapServer"), "{err}");
    }

    #[test]
    fn the_fetch_back_distance_must_cover_a_batch() {
        assert_eq!(
            KafkaConfig::default().check(),
            Ok(()),
            "Kafka needs none of it"
        );
        assert_eq!(KafkaConfig::for_tansu("t:9092").check(), Ok(()));
        let short = KafkaConfig {
            batch_max_records: Some(100),
            fetch_back_records: 10,
            ..KafkaConfig::default()
        };
        assert!(short.check().unwrap_err().contains("batchMaxRecords (100)"));
        let unbounded = KafkaConfig {
            batch_max_records: None,
            fetch_back_records: 10,
            ..KafkaConfig::default()
        };
        assert!(unbounded
            .check()
            .unwrap_err()
            .contains("needs batchMaxRecords"));
    }
}
