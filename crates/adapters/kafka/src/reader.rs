//! Reads of one partition from an offset (the port's `read`), and group offset look-ups.
//!
//! A read assigns the partition to a consumer that belongs to no subscription (librdkafka
//! wants a group id for `assign`, but the reader never joins, subscribes or commits), fetches
//! up to the high watermark as it was when the read began, and gives the consumer back to a
//! small pool, so reads in a row reuse connections.

use crate::error::{KafkaLogError, KafkaLogResult};
use crate::record::to_record;
use oms_ports::event_log::Record;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::error::KafkaError;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::Message as _;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Idle readers kept for reuse; more may exist while reads run in parallel.
const POOL: usize = 4;

pub(crate) struct Readers {
    config: ClientConfig,
    timeout: Duration,
    idle: Mutex<Vec<BaseConsumer>>,
    /// One handle per group whose committed offsets were asked for (a handle with the
    /// group's id; it does not join the group).
    groups: Mutex<HashMap<String, Arc<BaseConsumer>>>,
    group_config: ClientConfig,
}

impl Readers {
    /// `config` carries the connection settings shared by all clients.
    pub fn new(config: &ClientConfig, client_id: &str, timeout: Duration) -> Self {
        let mut reader = config.clone();
        reader
            .set("group.id", format!("{client_id}-reader"))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            // A read wants a page, not the partition: keep the prefetch small.
            .set("queued.max.messages.kbytes", "4096")
            .set("fetch.wait.max.ms", "50");
        let mut group_config = config.clone();
        group_config.set("enable.auto.commit", "false");
        Readers {
            config: reader,
            timeout,
            idle: Mutex::new(Vec::new()),
            groups: Mutex::new(HashMap::new()),
            group_config,
        }
    }

    /// Up to `max` records of `topic`/`partition` from `offset` on, as far as the end offset
    /// at the time of the call. Blocking.
    pub fn read(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
        max: usize,
    ) -> KafkaLogResult<Vec<Record>> {
        let consumer = self.take()?;
        let result = self.read_with(&consumer, topic, partition, offset, max);
        // Stop fetching before the reader waits in the pool.
        if consumer.unassign().is_ok() {
            self.give_back(consumer);
        }
        result
    }

    fn read_with(
        &self,
        consumer: &BaseConsumer,
        topic: &str,
        partition: u32,
        offset: u64,
        max: usize,
    ) -> KafkaLogResult<Vec<Record>> {
        let context = || format!("read {topic}/{partition} from {offset}");
        let (low, high) = consumer
            .fetch_watermarks(topic, partition as i32, self.timeout)
            .map_err(|e| KafkaLogError::client(context(), e))?;
        let (low, high) = (low.max(0) as u64, high.max(0) as u64);
        if max == 0 || offset >= high {
            return Ok(Vec::new());
        }
        // Below the low watermark the records were deleted (retention): start at the first.
        let start = offset.max(low);
        let want = max.min((high - start) as usize);
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, partition as i32, Offset::Offset(start as i64))
            .map_err(|e| KafkaLogError::client(context(), e))?;
        consumer
            .assign(&tpl)
            .map_err(|e| KafkaLogError::client(context(), e))?;
        let deadline = Instant::now() + self.timeout;
        let mut out: Vec<Record> = Vec::with_capacity(want);
        let mut next = start;
        while out.len() < want && next < high {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(KafkaLogError::client(
                    context(),
                    KafkaError::MessageConsumption(
                        rdkafka::error::RDKafkaErrorCode::RequestTimedOut,
                    ),
                ));
            }
            match consumer.poll(left.min(Duration::from_millis(100))) {
                Some(Ok(msg)) => {
                    let at = msg.offset();
                    if msg.topic() == topic
                        && msg.partition() == partition as i32
                        && at >= next as i64
                    {
                        out.push(to_record(&msg));
                        next = at as u64 + 1;
                    }
                }
                Some(Err(KafkaError::PartitionEOF(_))) => break,
                Some(Err(e))
                    if e.rdkafka_error_code().is_some_and(|c| {
                        c == rdkafka::error::RDKafkaErrorCode::OffsetOutOfRange
                    }) =>
                {
                    return Err(KafkaLogError::client(context(), e));
                }
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "kafka read: transient error");
                }
                None => {}
            }
        }
        Ok(out)
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

    fn take(&self) -> KafkaLogResult<BaseConsumer> {
        if let Some(c) = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop() {
            return Ok(c);
        }
        self.config
            .create()
            .map_err(|e| KafkaLogError::client("creating a reader", e))
    }

    fn give_back(&self, consumer: BaseConsumer) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < POOL {
            idle.push(consumer);
        }
    }
}
