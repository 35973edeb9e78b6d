//! The event log port, shaped after Kafka: topics split into partitions, keyed records,
//! offsets, consumer groups with committed positions, at-least-once delivery.

use crate::PortResult;
use async_trait::async_trait;
pub use bytes::Bytes;
use std::any::Any;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// A record to append. The partition is chosen from the key (see [`partition_for`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRecord {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
}

/// A record's headers as read back: shared, since every reader of a record gets them.
pub type Headers = Arc<[(String, Vec<u8>)]>;

/// A record as read back. Key, value and headers are shared, not copied: in one process a
/// record is read by several stages, from the log's cache of recent records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
    pub key: Bytes,
    pub value: Bytes,
    pub headers: Headers,
    /// Append time, milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    /// What a reader made of the value, for the record's next reader in this process.
    pub decoded: Memo,
}

/// Where the readers of a record in one process keep what they decoded from it, so that the
/// next reader of the same stored record (another stage, reading the log's cache of recent
/// records) does not decode it again. An adapter that hands the same stored record to several
/// readers gives them one memo; otherwise each read has its own, empty. It holds at most one
/// value, the first set; it takes no part in comparing records.
#[derive(Clone, Default)]
pub struct Memo(Arc<OnceLock<Arc<dyn Any + Send + Sync>>>);

impl Memo {
    /// The value kept, if one of type `T` was.
    pub fn get<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        self.0.get().cloned()?.downcast().ok()
    }

    /// Keeps `value` unless a value was kept already (two readers decoding at once both
    /// decoded the same bytes, so either copy will do).
    pub fn keep<T: Any + Send + Sync>(&self, value: Arc<T>) {
        let _ = self.0.set(value);
    }
}

impl PartialEq for Memo {
    fn eq(&self, _: &Memo) -> bool {
        true
    }
}

impl Eq for Memo {}

impl std::fmt::Debug for Memo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() {
            "Memo(kept)"
        } else {
            "Memo(empty)"
        })
    }
}

impl Record {
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_slice())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: u32,
}

/// Where an appended record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub partition: u32,
    pub offset: u64,
}

/// What a consumer's poll returns: records, or a change of the partitions it owns.
#[derive(Debug)]
pub enum ConsumerEvent {
    /// These partitions are now ours; reading resumes at the group's committed positions.
    Assigned(Vec<TopicPartition>),
    /// These partitions are no longer ours. Work on them must be finished or dropped before the
    /// next poll: the revoke completes when poll is called again.
    Revoked(Vec<TopicPartition>),
    Records(Vec<Record>),
}

#[async_trait]
pub trait EventLog: Send + Sync + 'static {
    /// Creates the topic with `partitions` partitions, or checks that it has that many.
    async fn ensure_topic(&self, topic: &str, partitions: u32) -> PortResult<()>;

    async fn partition_count(&self, topic: &str) -> PortResult<u32>;

    /// Appends records; returns once every one is durable (fsync'd, or `acks=all`), in order.
    /// Records with the same key keep their order.
    async fn append(&self, topic: &str, records: Vec<NewRecord>) -> PortResult<Vec<Appended>>;

    /// Reads up to `max` records of one partition from `offset` on, without waiting.
    async fn read(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
        max: usize,
    ) -> PortResult<Vec<Record>>;

    /// The offset the next appended record of this partition will get.
    async fn end_offset(&self, topic: &str, partition: u32) -> PortResult<u64>;

    /// The oldest offset of this partition still stored: 0 unless the log's retention deleted
    /// records before it (Kafka's low watermark). A stage rebuilding its state by replay
    /// checks it, so that deleted records stop the stage instead of being silently skipped.
    async fn first_offset(&self, topic: &str, partition: u32) -> PortResult<u64>;

    /// The group's committed position (next offset to read), if it committed one.
    async fn committed(&self, group: &str, topic: &str, partition: u32) -> PortResult<Option<u64>>;

    /// Joins `group` for `topics`. Partitions are shared among the group's members.
    async fn subscribe(&self, group: &str, topics: &[&str]) -> PortResult<Box<dyn Consumer>>;
}

#[async_trait]
pub trait Consumer: Send {
    /// Waits up to `timeout` for records or a change of assignment.
    async fn poll(&mut self, max: usize, timeout: Duration) -> PortResult<ConsumerEvent>;

    /// Commits positions (the next offset to read) for partitions this consumer owns.
    /// Call only after the effect of every record before `offset` is durable.
    async fn commit(&mut self, positions: &[(TopicPartition, u64)]) -> PortResult<()>;

    /// Moves the read position of an owned partition (for example to a snapshot's offset).
    async fn seek(&mut self, tp: &TopicPartition, offset: u64) -> PortResult<()>;

    fn assignment(&self) -> Vec<TopicPartition>;
}

/// Kafka's rule for topic names (1 to 249 of `A-Z a-z 0-9 . _ -`, not `.` or `..`); every
/// adapter keeps to it, which also makes a topic name a safe directory name.
pub fn valid_topic_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 249
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Kafka's default partitioner (murmur2 of the key, positive, modulo the partition count), so a
/// key lands on the same partition whichever adapter wrote it.
pub fn partition_for(key: &[u8], partitions: u32) -> u32 {
    (murmur2(key) & 0x7fff_ffff) % partitions.max(1)
}

fn murmur2(data: &[u8]) -> u32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let len = data.len();
    let mut h: u32 = SEED ^ (len as u32);
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= (rest[2] as u32) << 16;
    }
    if rest.len() >= 2 {
        h ^= (rest[1] as u32) << 8;
    }
    if !rest.is_empty() {
        h ^= rest[0] as u32;
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_follow_kafkas_rule() {
        assert!(valid_topic_name("orders"));
        assert!(valid_topic_name("market.data_v1-2"));
        for bad in ["", ".", "..", "a/b", "a b", "ä"] {
            assert!(!valid_topic_name(bad), "{bad:?}");
        }
        assert!(valid_topic_name(&"x".repeat(249)));
        assert!(!valid_topic_name(&"x".repeat(250)));
    }

    #[test]
    fn a_memo_keeps_its_first_value_for_every_clone() {
        let memo = Memo::default();
        let shared = memo.clone();
        assert_eq!(memo.get::<u32>(), None);
        shared.keep(Arc::new(7u32));
        memo.keep(Arc::new(8u32));
        assert_eq!(memo.get::<u32>().as_deref(), Some(&7));
        assert_eq!(memo.get::<String>(), None, "asked as another type");
        assert_eq!(memo, Memo::default(), "not part of a record's value");
    }

    #[test]
    fn murmur2_matches_kafka_reference_values() {
        // Reference values from Kafka's Utils.murmur2 tests.
        assert_eq!(murmur2(b"21") as i32, -973932308);
        assert_eq!(murmur2(b"foobar") as i32, -790332482);
        assert_eq!(murmur2(b"a-little-bit-long-string") as i32, -985981536);
        assert_eq!(murmur2(b"a-little-bit-longer-string") as i32, -1486304829);
        assert_eq!(
            murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8") as i32,
            -58897971
        );
        assert_eq!(murmur2(b"abc") as i32, 479470107);
    }
}
