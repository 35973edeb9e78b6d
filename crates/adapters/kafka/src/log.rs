//! [`KafkaLog`]: the event log port on a Kafka cluster.

use crate::config::KafkaConfig;
use crate::consumer::{GroupContext, KafkaConsumer, Shared};
use crate::error::{KafkaLogError, KafkaLogResult};
use crate::reader::Readers;
use crate::record::kafka_headers;
use async_trait::async_trait;
use oms_ports::event_log::{partition_for, Appended, Consumer, EventLog, NewRecord, Record};
use oms_ports::{PortError, PortResult};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// The event log on Kafka. Cheap to share behind an `Arc`; every method may be called
/// concurrently.
///
/// - `append`: an idempotent producer (`enable.idempotence=true`, `acks=all`), each record
///   sent to the partition [`partition_for`] picks for its key (so keys land where the
///   embedded log puts them), headers as Kafka headers. It returns once every record is
///   acknowledged; the records of one call are enqueued together, so a batch of one key gets
///   consecutive offsets.
/// - `ensure_topic`: created with the admin client, or its partition count checked.
/// - `read`, `end_offset`, `committed`: short requests on pooled clients.
/// - `subscribe`: a [`KafkaConsumer`] in the group.
pub struct KafkaLog {
    config: KafkaConfig,
    /// Connection settings (and `extra`) shared by every client.
    base: ClientConfig,
    producer: FutureProducer,
    admin: AdminClient<DefaultClientContext>,
    readers: Arc<Readers>,
    /// Partition counts seen: topics are never shrunk, and this adapter never grows them.
    partitions: RwLock<HashMap<String, u32>>,
    /// Held while one append enqueues its records, so they stay together in their partitions.
    enqueue: tokio::sync::Mutex<()>,
}

impl KafkaLog {
    /// Creates the clients. librdkafka connects in the background: nothing is checked here
    /// (see [`KafkaLog::connect`]).
    pub fn new(config: KafkaConfig) -> KafkaLogResult<Self> {
        config.check().map_err(KafkaLogError::Invalid)?;
        let mut base = ClientConfig::new();
        base.set("bootstrap.servers", &config.bootstrap_servers)
            .set("client.id", &config.client_id)
            // Topics are made by ensure_topic only, never as a side effect of a metadata
            // request.
            .set("allow.auto.create.topics", "false")
            .set("socket.timeout.ms", config.request_timeout_ms.to_string());
        let mut producer_config = base.clone();
        producer_config
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", config.linger_ms.to_string())
            // An append fails (and may be retried by the caller) rather than waiting for ever.
            .set("message.timeout.ms", config.request_timeout_ms.to_string());
        if let Some(n) = config.batch_max_records {
            producer_config.set("batch.num.messages", n.max(1).to_string());
        }
        let mut consumer_config = base.clone();
        consumer_config.set("client.id", format!("{}-consumer", config.client_id));
        for (k, v) in &config.extra {
            base.set(k, v);
            producer_config.set(k, v);
            consumer_config.set(k, v);
        }
        let producer: FutureProducer = producer_config
            .create()
            .map_err(|e| KafkaLogError::client("creating the producer", e))?;
        let admin: AdminClient<DefaultClientContext> = base
            .create()
            .map_err(|e| KafkaLogError::client("creating the admin client", e))?;
        let readers = Arc::new(Readers::new(
            &consumer_config,
            &config.client_id,
            config.request_timeout(),
            config.continuity(),
        ));
        Ok(KafkaLog {
            config,
            base,
            producer,
            admin,
            readers,
            partitions: RwLock::new(HashMap::new()),
            enqueue: tokio::sync::Mutex::new(()),
        })
    }

    /// Creates the clients and waits until the cluster answers a metadata request.
    pub async fn connect(config: KafkaConfig) -> KafkaLogResult<Self> {
        let log = KafkaLog::new(config)?;
        log.check_reachable().await?;
        Ok(log)
    }

    pub fn config(&self) -> &KafkaConfig {
        &self.config
    }

    /// Whether the cluster answers now (for a readiness probe): a metadata request.
    pub async fn check_reachable(&self) -> KafkaLogResult<()> {
        let producer = self.producer.clone();
        let timeout = self.config.request_timeout();
        blocking("metadata", move || {
            producer
                .client()
                .fetch_metadata(None, timeout)
                .map(|_| ())
                .map_err(|e| KafkaLogError::client("metadata", e))
        })
        .await
    }

    /// Ensures every topic of [`KafkaConfig::topics`] with its partition count.
    pub async fn ensure_topics(&self) -> KafkaLogResult<()> {
        for (topic, &partitions) in &self.config.topics {
            self.ensure(topic, partitions).await?;
        }
        Ok(())
    }

    /// Warns if `topic` deletes records after a while (see [`KafkaConfig::retention_ms`]).
    async fn warn_of_retention(&self, topic: &str) {
        match self.retention_ms(topic).await {
            Ok(Some(ms)) if ms >= 0 => tracing::warn!(
                topic,
                retention_ms = ms,
                "kafka: this topic deletes records after retention.ms; a stage whose last \
                 snapshot is older than that cannot rebuild its state and fails \
                 (pipeline.snapshotMaxAgeSecs must stay far below it; -1 keeps every record)"
            ),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(topic, error = %e, "kafka: could not read the topic's retention.ms")
            }
        }
    }

    /// The topic's `retention.ms` as the cluster reports it (`None` if it reports none).
    pub async fn retention_ms(&self, topic: &str) -> KafkaLogResult<Option<i64>> {
        let timeout = self.config.request_timeout();
        let options = AdminOptions::new().request_timeout(Some(timeout));
        let results = self
            .admin
            .describe_configs([&ResourceSpecifier::Topic(topic)], &options)
            .await
            .map_err(|e| KafkaLogError::client(format!("describe topic {topic}"), e))?;
        let resource = match results.into_iter().next() {
            Some(Ok(r)) => r,
            Some(Err(code)) => {
                return Err(KafkaLogError::broker(
                    format!("describe topic {topic}"),
                    code,
                ))
            }
            None => return Ok(None),
        };
        Ok(resource
            .get("retention.ms")
            .and_then(|e| e.value.as_deref())
            .and_then(|v| v.parse().ok()))
    }

    async fn ensure(&self, topic: &str, partitions: u32) -> KafkaLogResult<()> {
        if partitions == 0 || partitions > i32::MAX as u32 {
            return Err(KafkaLogError::Invalid(format!(
                "topic {topic}: {partitions} partitions"
            )));
        }
        let retention = self.config.retention_ms;
        if retention == 0 || retention < -1 {
            return Err(KafkaLogError::Invalid(format!(
                "kafka.retentionMs is {retention}: -1 (keep every record) or a number of milliseconds"
            )));
        }
        let first_time = self.cached_count(topic).is_none();
        if first_time {
            let retention = retention.to_string();
            let new = NewTopic::new(
                topic,
                partitions as i32,
                TopicReplication::Fixed(self.config.replication_factor as i32),
            )
            .set("retention.ms", &retention);
            let timeout = self.config.request_timeout();
            let options = AdminOptions::new()
                .request_timeout(Some(timeout))
                .operation_timeout(Some(timeout));
            let results = self
                .admin
                .create_topics([&new], &options)
                .await
                .map_err(|e| KafkaLogError::client(format!("create topic {topic}"), e))?;
            match results.into_iter().next() {
                Some(Ok(_)) => tracing::info!(topic, partitions, "kafka: topic created"),
                Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) => {}
                Some(Err((_, code))) => {
                    return Err(KafkaLogError::broker(format!("create topic {topic}"), code))
                }
                None => {
                    return Err(KafkaLogError::Invalid(format!(
                        "create topic {topic}: no result"
                    )))
                }
            }
        }
        let actual = self.count(topic, true).await?;
        if first_time {
            self.warn_of_retention(topic).await;
        }
        if actual != partitions {
            return Err(KafkaLogError::Invalid(format!(
                "topic {topic} has {actual} partitions, not {partitions}"
            )));
        }
        Ok(())
    }

    fn cached_count(&self, topic: &str) -> Option<u32> {
        self.partitions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(topic)
            .copied()
    }

    /// The partition count of `topic`, from the cache or the cluster's metadata. With
    /// `wait_created`, a topic not (yet) in the metadata is asked again until the request
    /// timeout: a new topic takes a moment to appear on every broker.
    async fn count(&self, topic: &str, wait_created: bool) -> KafkaLogResult<u32> {
        if let Some(n) = self.cached_count(topic) {
            return Ok(n);
        }
        let producer = self.producer.clone();
        let timeout = self.config.request_timeout();
        let name = topic.to_string();
        let n = blocking("metadata", move || {
            let deadline = std::time::Instant::now() + timeout;
            loop {
                let found = topic_partitions(&producer, &name, timeout)?;
                match found {
                    Some(n) => return Ok(n),
                    None if wait_created && std::time::Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    None => return Err(KafkaLogError::UnknownTopic(name)),
                }
            }
        })
        .await?;
        self.partitions
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(topic.to_string(), n);
        Ok(n)
    }

    async fn produce(&self, topic: &str, records: &[NewRecord]) -> KafkaLogResult<Vec<Appended>> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let n = self.count(topic, false).await?;
        let mut pending = Vec::with_capacity(records.len());
        {
            let _together = self.enqueue.lock().await;
            for r in records {
                let mut record = FutureRecord::to(topic)
                    .partition(partition_for(&r.key, n) as i32)
                    .key(r.key.as_slice())
                    .payload(r.value.as_slice());
                if let Some(headers) = kafka_headers(r) {
                    record = record.headers(headers);
                }
                loop {
                    match self.producer.send_result(record) {
                        Ok(delivery) => {
                            pending.push(delivery);
                            break;
                        }
                        Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                            // librdkafka's queue is full: wait for deliveries to drain it.
                            record = back;
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                        Err((e, _)) => {
                            return Err(KafkaLogError::client(format!("append to {topic}"), e))
                        }
                    }
                }
            }
        }
        let mut appended = Vec::with_capacity(pending.len());
        let mut failure = None;
        for delivery in pending {
            match delivery.await {
                Ok(Ok(d)) => appended.push(Appended {
                    partition: d.partition as u32,
                    offset: d.offset as u64,
                }),
                Ok(Err((e, _))) => {
                    failure.get_or_insert(KafkaLogError::Undelivered {
                        context: format!("append to {topic}"),
                        source: e,
                    });
                }
                Err(_) => {
                    failure.get_or_insert(KafkaLogError::Task("append"));
                }
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(appended),
        }
    }

    /// A consumer in `group` for `topics` (see [`KafkaConsumer`]).
    pub fn consumer(&self, group: &str, topics: &[&str]) -> KafkaLogResult<KafkaConsumer> {
        let mut config = self.base.clone();
        config
            .set("client.id", format!("{}-consumer", self.config.client_id))
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set(
                "session.timeout.ms",
                self.config.session_timeout_ms.to_string(),
            )
            .set(
                "max.poll.interval.ms",
                self.config.max_poll_interval_ms.to_string(),
            )
            .set(
                "fetch.wait.max.ms",
                self.config.fetch_wait_max_ms.to_string(),
            );
        for (k, v) in &self.config.extra {
            config.set(k, v);
        }
        let shared = Arc::new(Shared::default());
        let mut consumer: BaseConsumer<GroupContext> = config
            .create_with_context(GroupContext {
                shared: shared.clone(),
            })
            .map_err(|e| {
                KafkaLogError::client(format!("creating a consumer of group {group}"), e)
            })?;
        let wake = shared.clone();
        consumer.set_nonempty_callback(move || wake.notify_waiter());
        consumer.subscribe(topics).map_err(|e| {
            KafkaLogError::client(format!("subscribe group {group} to {topics:?}"), e)
        })?;
        Ok(KafkaConsumer::new(
            consumer,
            shared,
            group.to_string(),
            self.config.request_timeout(),
            self.config.continuity(),
            topics.iter().map(|t| t.to_string()).collect(),
            self.config.orphan_rejoin(),
        ))
    }
}

/// The partition count of `topic` in the cluster's metadata, `None` if it does not exist.
fn topic_partitions(
    producer: &FutureProducer,
    topic: &str,
    timeout: Duration,
) -> KafkaLogResult<Option<u32>> {
    let metadata = producer
        .client()
        .fetch_metadata(Some(topic), timeout)
        .map_err(|e| KafkaLogError::client(format!("metadata of {topic}"), e))?;
    let Some(t) = metadata.topics().iter().find(|t| t.name() == topic) else {
        return Ok(None);
    };
    match t.error() {
        None if !t.partitions().is_empty() => Ok(Some(t.partitions().len() as u32)),
        None => Ok(None),
        Some(e) => {
            let code = RDKafkaErrorCode::from(e);
            if matches!(
                code,
                RDKafkaErrorCode::UnknownTopicOrPartition
                    | RDKafkaErrorCode::UnknownTopic
                    | RDKafkaErrorCode::LeaderNotAvailable
            ) {
                Ok(None)
            } else {
                Err(KafkaLogError::broker(format!("metadata of {topic}"), code))
            }
        }
    }
}

/// Runs a blocking librdkafka call off the async threads.
async fn blocking<T: Send + 'static>(
    what: &'static str,
    f: impl FnOnce() -> KafkaLogResult<T> + Send + 'static,
) -> KafkaLogResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| KafkaLogError::Task(what))?
}

#[async_trait]
impl EventLog for KafkaLog {
    async fn ensure_topic(&self, topic: &str, partitions: u32) -> PortResult<()> {
        Ok(self.ensure(topic, partitions).await?)
    }

    async fn partition_count(&self, topic: &str) -> PortResult<u32> {
        Ok(self.count(topic, false).await?)
    }

    async fn append(&self, topic: &str, records: Vec<NewRecord>) -> PortResult<Vec<Appended>> {
        Ok(self.produce(topic, &records).await?)
    }

    async fn read(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
        max: usize,
    ) -> PortResult<Vec<Record>> {
        let readers = self.readers.clone();
        let topic = topic.to_string();
        Ok(blocking("read", move || readers.read(&topic, partition, offset, max)).await?)
    }

    async fn end_offset(&self, topic: &str, partition: u32) -> PortResult<u64> {
        let readers = self.readers.clone();
        let topic = topic.to_string();
        Ok(blocking("end offset", move || readers.end_offset(&topic, partition)).await?)
    }

    async fn first_offset(&self, topic: &str, partition: u32) -> PortResult<u64> {
        let readers = self.readers.clone();
        let topic = topic.to_string();
        Ok(blocking("first offset", move || {
            readers.first_offset(&topic, partition)
        })
        .await?)
    }

    async fn committed(&self, group: &str, topic: &str, partition: u32) -> PortResult<Option<u64>> {
        let readers = self.readers.clone();
        let (group, topic) = (group.to_string(), topic.to_string());
        Ok(blocking("committed offsets", move || {
            readers.committed(&group, &topic, partition)
        })
        .await?)
    }

    async fn subscribe(&self, group: &str, topics: &[&str]) -> PortResult<Box<dyn Consumer>> {
        if topics.is_empty() {
            return Err(PortError::Invalid("subscribe to no topic".into()));
        }
        Ok(Box::new(self.consumer(group, topics)?))
    }
}
