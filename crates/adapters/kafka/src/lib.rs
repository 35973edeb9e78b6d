//! The event log port on Apache Kafka (distributed mode), through librdkafka.
//!
//! [`KafkaLog`] implements [`oms_ports::event_log::EventLog`] and passes the same conformance
//! suite as the embedded log (`tests/conformance.rs`, against a real broker). It is built from
//! a [`KafkaConfig`]:
//!
//! ```no_run
//! # async fn wire() -> Result<(), oms_kafka::KafkaLogError> {
//! use oms_kafka::{KafkaConfig, KafkaLog};
//! let mut config = KafkaConfig::new("kafka-1:9092,kafka-2:9092");
//! config.client_id = "order-ingestion-api".into();
//! config.topics.insert("orders".into(), 12);
//! config.replication_factor = 3;
//! let log = KafkaLog::connect(config).await?; // fails if the cluster does not answer
//! log.ensure_topics().await?; // creates or checks every configured topic
//! # Ok(()) }
//! ```
//!
//! # How the port maps onto Kafka
//!
//! - **append**: an idempotent producer (`enable.idempotence=true`, `acks=all`,
//!   `linger.ms` 5 by default, librdkafka's own; see [`KafkaConfig::linger_ms`]). Each
//!   record goes to the partition that
//!   [`partition_for`](oms_ports::event_log::partition_for) (Kafka's murmur2 partitioner)
//!   gives its key, set explicitly, so a key lands on the same partition as in the embedded
//!   log. The records of one call are enqueued together and the call returns once every one
//!   is acknowledged by all in-sync replicas; a batch of one key gets consecutive offsets.
//!   Headers (event type, id and schema version, written by the codec) travel as Kafka
//!   headers, in order; an empty header value stays empty.
//! - **ensure_topic**: `CreateTopics` with the configured replication factor; an existing
//!   topic with another partition count is an error. Topics are never created implicitly
//!   (`allow.auto.create.topics=false`).
//! - **read** / **end_offset** / **committed**: a pooled consumer that assigns the partition
//!   and fetches up to the high watermark; `ListOffsets`; `OffsetFetch` with the group's id.
//! - **subscribe**: a [`KafkaConsumer`], member of the group (`enable.auto.commit=false`,
//!   `auto.offset.reset=earliest`), committing synchronously. Rebalances reach the stage as
//!   `Assigned` / `Revoked`, and a revoke completes only at the stage's next poll: see
//!   [`consumer`].
//!
//! Errors map onto [`PortError`](oms_ports::PortError): a broker that cannot be reached or a
//! rebalance in progress is `Unavailable` (retry later), an unknown topic or a wrong
//! partition count is `Invalid`.
//!
//! # On tansu
//!
//! The tests run against tansu 0.6 (`oms_testkit::tansu`, in-memory storage), a Kafka-compatible
//! broker. Everything the contract needs is there: `CreateTopics`, metadata, the idempotent
//! producer (`InitProducerId`, sequence checks), headers, consumer groups with the classic
//! protocol (join, sync, heartbeat, leave; eager and `cooperative-sticky` assignors both
//! tested), `OffsetCommit` / `OffsetFetch`, `ListOffsets`. Five of its ways need care, and a
//! sixth of its group coordinator (below). [`KafkaConfig::for_tansu`] sets what all but the
//! third need.
//!
//! 1. **A fetch returns only batches that start at or after the asked offset.** A consumer
//!    starting inside a batch (a committed position, a seek, a read from an offset) would
//!    silently skip the rest of that batch; Kafka returns the batch holding the offset.
//!    Workaround: batches are bounded ([`KafkaConfig::batch_max_records`], 512) and a fetch
//!    that positions a consumer starts [`KafkaConfig::fetch_back_records`] (511) records
//!    early, so the batch holding the wanted offset is served; what precedes the offset is
//!    dropped (`continuity`). Later fetches continue from a batch's end. One record
//!    per batch would avoid this too, but tansu lists every batch of a partition on every
//!    fetch, so with one record per batch the pipeline slowed as topics grew (the distributed
//!    benchmark carried about 150 orders/s; batched, it keeps up at 1,000/s and more).
//! 2. **A batch can be served before an earlier one is stored.** An append advances the
//!    partition's high watermark first and stores its batch after, so with concurrent appends
//!    to one partition a fetch can find batch N+1 while batch N is still missing, and a
//!    consumer that moves on loses N (orders stuck in `NEW` under load). Workaround: a record
//!    past the next expected offset is a gap, and the partition is fetched again from the
//!    expected offset until the batch appears, however long that takes, with a warning every
//!    [`KafkaConfig::gap_refetch_ms`] (5 s) while it lasts. An earlier version took a gap
//!    still open after 5 s as real and went on: at 5,000 orders/s a batch of 64 records took
//!    longer than that to be stored, and 36 orders were left in `NEW`. Kafka needs neither
//!    (0 by default).
//! 3. **`ListOffsets(latest)` answers the newest batch's first offset plus one**, short of the
//!    end when that batch holds several records. So the end of a partition (`end_offset`, and
//!    where `read` stops) is taken from a fetch that reaches it (end-of-partition, the `Fetch`
//!    response's high watermark); `ListOffsets` only chooses where that fetch starts. This is
//!    right on any broker, and costs one fetch of the last record on Kafka.
//! 4. **It holds every fetch for half of its `max_wait`, records or not** (Kafka answers as
//!    soon as records arrive). With librdkafka's default of 500 ms a record took ~400 ms from
//!    append to a consumer; with [`KafkaConfig::fetch_wait_max_ms`] `= 10`, ~13 ms (p50).
//! 5. **Its produce round trip under load is longer than a 2 or 5 ms linger.** librdkafka's
//!    idempotent producer waits for a partition's request in flight before it sends the next,
//!    and while it waits, a batch whose linger has passed keeps its broker thread spinning.
//!    At 2,500 orders/s with a 2 ms linger those threads took 40% of this machine's two cores
//!    and every stage fell seconds behind; `for_tansu` lingers 10 ms (see `BENCHMARKS.md`).
//!
//! Its group coordinator is simpler than Kafka's: it does not check a committing member's
//! generation (Kafka refuses commits of a fenced member with `ILLEGAL_GENERATION`), and the
//! group's protocol is the first member's first choice. Neither changed a test's outcome; the
//! adapter does not rely on either.
//!
//! **It can keep a dead member's partitions from everyone** (found 2026-12-02). When a member
//! dies and the first request after its session to notice it is the survivor's heartbeat,
//! tansu 0.6 drops the dead member inside the heartbeat (`Inner<Formed>::heartbeat` calls
//! `missed_heartbeat`) and answers `REBALANCE_IN_PROGRESS`, but leaves the group in the same
//! generation, formed: the survivor rejoins and is handed its old assignment back at sync
//! (a formed group's sync ignores the leader's new assignment), and the dead member's
//! partitions are consumed by nobody, with no later rebalance. (With a session shorter than
//! two heartbeat intervals the survivor is expelled too during its rejoin, and the group
//! forms again by itself.) Kafka fences the dead member and forms a new generation.
//! Workaround: [`KafkaConfig::orphan_rejoin_ms`] (45 s with `for_tansu`). A member that sees
//! a partition it does not own holding records past the group's committed position, that
//! position still for that long, leaves the group and joins again as a new member; tansu then
//! forms a new generation and the partitions are assigned (see `orphans`). A group that
//! never commits is not watched (market data's order feed reads from the end). Tested in
//! `tests/dead_member.rs`, with a member process killed; with the watch off, the survivor
//! never got its partitions.
//!
//! # Building
//!
//! librdkafka is built from the sources bundled with `rdkafka-sys` (feature `cmake-build`:
//! Debian's librdkafka 2.0.2 fails some brokers' handshake), without compression codecs, TLS
//! or SASL. Its CMake build needs `cmake` and, because librdkafka 2.12 includes `curl.h` even
//! when built without libcurl, the libcurl headers: `scripts/install-test-deps.sh` installs
//! both. A cluster that needs TLS or SASL needs the `ssl` / `sasl` features added here.
pub mod config;
pub mod consumer;
mod continuity;
pub mod error;
mod log;
mod orphans;
mod reader;
mod record;

pub use config::{KafkaConfig, TANSU_BATCH, TANSU_ORPHAN_REJOIN_MS};
pub use consumer::KafkaConsumer;
pub use error::{KafkaLogError, KafkaLogResult};
pub use log::KafkaLog;
