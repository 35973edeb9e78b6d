//! Reads of one partition from an offset (the port's `read`), and group offset look-ups.
//!
//! A read assigns the partition to a consumer that belongs to no subscription (librdkafka
//! wants a group id for `assign`, but the reader never joins, subscribes or commits), fetches
//! until the end of the partition (see [`Readers::scan`]), and gives the consumer back to a
//! small pool, so reads in a row reuse connections.

use crate::continuity::{Continuity, Verdict};
use crate::error::{KafkaLogError, KafkaLogResult};
use crate::record::to_record;
use oms_ports::event_log::{Record, TopicPartition};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer as _, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::ClientContext;
use rdkafka::Message as _;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Idle readers kept for reuse; more may exist while reads run in parallel.
const POOL: usize = 4;

type Reader = BaseConsumer<ReaderContext>;

/// The readers' client context: end-of-partition is how a read ends, not an error.
///
/// librdkafka reports an end-of-partition that no poll took (one still on its way when the read
/// had stopped and given the partition up) as a client error, which the default context logs
/// at `ERROR`: a dozen lines a second from the risk stage's reference prices under load.
pub(crate) struct ReaderContext;

impl ClientContext for ReaderContext {
    fn error(&self, error: KafkaError, reason: &str) {
        if is_partition_eof(&error) {
            tracing::trace!(target: "librdkafka", "{error}: {reason}");
        } else {
            tracing::error!(target: "librdkafka", "{error}: {reason}");
        }
    }
}

impl ConsumerContext for ReaderContext {}

fn is_partition_eof(e: &KafkaError) -> bool {
    matches!(e, KafkaError::PartitionEOF(_))
        || e.rdkafka_error_code() == Some(RDKafkaErrorCode::PartitionEOF)
}

pub(crate) struct Readers {
    config: ClientConfig,
    timeout: Duration,
    idle: Mutex<Vec<Reader>>,
    /// One handle per group whose committed offsets were asked for (a handle with the
    /// group's id; it does not join the group).
    groups: Mutex<HashMap<String, Arc<BaseConsumer>>>,
    group_config: ClientConfig,
    /// A template: each scan starts from a copy (see [`crate::continuity`]).
    continuity: Continuity,
}

impl Readers {
    /// `config` carries the connection settings shared by all clients.
    pub fn new(
        config: &ClientConfig,
        client_id: &str,
        timeout: Duration,
        continuity: Continuity,
    ) -> Self {
        let mut reader = config.clone();
        reader
            .set("group.id", format!("{client_id}-reader"))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            // A read wants a page, not the partition: keep the prefetch small.
            .set("queued.max.messages.kbytes", "4096")
            // The end of the partition is where a fetch reports end-of-partition, and a fetch
            // at the end should answer at once rather than wait for new records.
            .set("enable.partition.eof", "true")
            .set("fetch.wait.max.ms", "0")
            // A start past the end is never asked for (see scan); were it, fail the read.
            .set("auto.offset.reset", "error");
        let mut group_config = config.clone();
        group_config.set("enable.auto.commit", "false");
        Readers {
            config: reader,
            timeout,
            idle: Mutex::new(Vec::new()),
            groups: Mutex::new(HashMap::new()),
            group_config,
            continuity,
        }
    }

    /// Up to `max` records of `topic`/`partition` from `offset` on, as far as the end of the
    /// partition at the time of the call. Blocking.
    pub fn read(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
        max: usize,
    ) -> KafkaLogResult<Vec<Record>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        Ok(self
            .with_reader(|c| self.scan(c, topic, partition, offset, max))?
            .0)
    }

    /// The offset the next record appended to `topic`/`partition` will get. Blocking.
    pub fn end_offset(&self, topic: &str, partition: u32) -> KafkaLogResult<u64> {
        Ok(self
            .with_reader(|c| self.scan(c, topic, partition, u64::MAX, 0))?
            .1)
    }

    /// The low watermark: records before it were deleted by the topic's retention.
    pub fn first_offset(&self, topic: &str, partition: u32) -> KafkaLogResult<u64> {
        self.with_reader(|c| {
            let (low, _) = c
                .fetch_watermarks(topic, partition as i32, self.timeout)
                .map_err(|e| {
                    KafkaLogError::client(format!("watermarks of {topic}/{partition}"), e)
                })?;
            Ok(low.max(0) as u64)
        })
    }

    fn with_reader<T>(&self, f: impl FnOnce(&Reader) -> KafkaLogResult<T>) -> KafkaLogResult<T> {
        let consumer = self.take()?;
        let result = f(&consumer);
        // Stop fetching before the reader waits in the pool.
        if consumer.unassign().is_ok() {
            self.give_back(consumer);
        }
        result
    }

    /// Fetches from `offset` (or from the last record, if that is further on) to the end of
    /// the partition and returns up to `max` records at or after `offset`, and the end offset.
    ///
    /// The end comes from a fetch reaching it (`PARTITION_EOF`, the high watermark of a
    /// `Fetch` response), not from `ListOffsets` alone: tansu answers `ListOffsets(latest)`
    /// with the first offset of the newest record batch plus one, short of the end when that
    /// batch holds several records. `ListOffsets` only picks where to start fetching; on
    /// Kafka, which answers it exactly, this costs one fetch of the last record.
    fn scan(
        &self,
        consumer: &Reader,
        topic: &str,
        partition: u32,
        offset: u64,
        max: usize,
    ) -> KafkaLogResult<(Vec<Record>, u64)> {
        let context = || format!("read {topic}/{partition}");
        let (low, listed) = consumer
            .fetch_watermarks(topic, partition as i32, self.timeout)
            .map_err(|e| KafkaLogError::client(context(), e))?;
        let (low, listed) = (low.max(0) as u64, listed.max(0) as u64);
        if listed == 0 {
            // No record was ever appended.
            return Ok((Vec::new(), 0));
        }
        // Below the low watermark the records were deleted (retention): start at the first.
        let start = offset.min(listed - 1).max(low);
        let tp = TopicPartition {
            topic: topic.to_string(),
            partition,
        };
        // Only the records returned need to be dense; finding the end needs no care.
        let mut continuity = if max > 0 {
            self.continuity.clone()
        } else {
            Continuity::new(0, None)
        };
        let from = continuity.start_at(&tp, start).max(low);
        let assign_from = |from: u64| -> KafkaLogResult<()> {
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(topic, partition as i32, Offset::Offset(from as i64))
                .map_err(|e| KafkaLogError::client(context(), e))?;
            consumer
                .assign(&tpl)
                .map_err(|e| KafkaLogError::client(context(), e))
        };
        assign_from(from)?;
        let deadline = Instant::now() + self.timeout;
        let mut out: Vec<Record> = Vec::new();
        let mut end = listed;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(KafkaLogError::client(
                    format!(
                        "{}: no end of partition within {:?}",
                        context(),
                        self.timeout
                    ),
                    KafkaError::MessageConsumption(RDKafkaErrorCode::RequestTimedOut),
                ));
            }
            match consumer.poll(left.min(Duration::from_millis(100))) {
                Some(Ok(msg)) => {
                    if msg.topic() != topic || msg.partition() != partition as i32 {
                        continue;
                    }
                    let at = msg.offset().max(0) as u64;
                    end = end.max(at + 1);
                    match continuity.check(&tp, at, Instant::now()) {
                        Verdict::Deliver => {}
                        Verdict::Drop => continue,
                        Verdict::Refetch(from) => {
                            assign_from(from.max(low))?;
                            continue;
                        }
                    }
                    if at >= offset && out.last().is_none_or(|r| r.offset < at) {
                        out.push(to_record(&msg));
                        if out.len() >= max && max > 0 {
                            break;
                        }
                    }
                }
                Some(Err(KafkaError::PartitionEOF(p))) if p == partition as i32 => break,
                Some(Err(KafkaError::PartitionEOF(_))) => {}
                Some(Err(e)) if is_fatal(&e) => return Err(KafkaLogError::client(context(), e)),
                Some(Err(e)) => tracing::debug!(error = %e, "kafka read: transient error"),
                None => {}
            }
        }
        Ok((out, end))
    }

    /// The group's committed position of a partition, if it committed one. Blocking.
    pub fn committed(
        &self,
        group: &str,
        topic: &str,
        partition: u32,
    ) -> KafkaLogResult<Option<u64>> {
        let handle = self.group_handle(group)?;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(topic, partition as i32);
        let got = handle
            .committed_offsets(tpl, self.timeout)
            .map_err(|e| KafkaLogError::client(format!("committed offsets of group {group}"), e))?;
        let elem = got.find_partition(topic, partition as i32);
        Ok(match elem.map(|e| e.offset()) {
            Some(Offset::Offset(o)) if o >= 0 => Some(o as u64),
            _ => None,
        })
    }

    fn group_handle(&self, group: &str) -> KafkaLogResult<Arc<BaseConsumer>> {
        let mut groups = self.groups.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(h) = groups.get(group) {
            return Ok(h.clone());
        }
        let mut config = self.group_config.clone();
        config.set("group.id", group);
        let handle: Arc<BaseConsumer> = Arc::new(
            config
                .create()
                .map_err(|e| KafkaLogError::client("creating a group offsets client", e))?,
        );
        groups.insert(group.to_string(), handle.clone());
        Ok(handle)
    }

    fn take(&self) -> KafkaLogResult<Reader> {
        if let Some(c) = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop() {
            return Ok(c);
        }
        self.config
            .create_with_context(ReaderContext)
            .map_err(|e| KafkaLogError::client("creating a reader", e))
    }

    fn give_back(&self, consumer: Reader) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < POOL {
            idle.push(consumer);
        }
    }
}

/// Errors that no retry within the read can fix.
fn is_fatal(e: &KafkaError) -> bool {
    matches!(e, KafkaError::MessageConsumptionFatal(_))
        || e.rdkafka_error_code().is_some_and(|c| {
            matches!(
                c,
                RDKafkaErrorCode::OffsetOutOfRange
                    | RDKafkaErrorCode::UnknownTopicOrPartition
                    | RDKafkaErrorCode::UnknownPartition
                    | RDKafkaErrorCode::UnknownTopic
                    | RDKafkaErrorCode::AutoOffsetReset
            )
        })
}
