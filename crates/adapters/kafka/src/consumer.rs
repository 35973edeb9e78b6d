//! A member of a consumer group.
//!
//! # Rebalances
//!
//! librdkafka announces a rebalance with an event that [`BaseConsumer::poll`] hands to the
//! consumer context, and then waits (in its `WAIT_ASSIGN_CALL` / `WAIT_UNASSIGN_CALL` join
//! states) until the application calls `assign` or `unassign`. The context here does not make
//! that call in the callback: it queues the event, and [`KafkaConsumer::poll`] returns it to the
//! stage as [`ConsumerEvent::Assigned`] or [`ConsumerEvent::Revoked`]. The matching
//! `assign` / `unassign` is made at the start of the **next** `poll`:
//!
//! - A revoke completes only when the stage polls again, that is after it has finished or
//!   dropped the work of the revoked partitions, as the port's contract asks. Until then this
//!   member stays in its generation, so its other group members wait for it (at most
//!   `max.poll.interval.ms`) and nobody else reads those partitions. Positions of the partitions
//!   being revoked may still be committed in between.
//! - An assignment starts fetching only at the next poll, so a `seek` made right after
//!   `Assigned` (to a snapshot's offset) becomes the partition's start offset. Partitions not
//!   sought start at the group's committed position, or at the beginning when none was
//!   committed (`auto.offset.reset=earliest`).
//!
//! This works with both rebalance protocols: eager (librdkafka's default `range,roundrobin`
//! assignors: every rebalance revokes everything, then assigns) and cooperative
//! (`partition.assignment.strategy=cooperative-sticky`: only moved partitions are revoked).
//!
//! # Waiting
//!
//! `poll` never parks a thread: it drains librdkafka's queue without blocking and otherwise
//! waits on a [`Notify`] that librdkafka signals when the queue becomes non-empty. librdkafka
//! signals only that transition, so a drain must not stop while the queue still holds
//! something: log lines, statistics and rebalance or commit events also come through it and
//! are served by the same `poll(0)` that returns records, so the context notes each one
//! served and the drain goes on. As a backstop, a waiting poll looks again every 100 ms.

use crate::continuity::{Continuity, Verdict, REFETCH_EVERY};
use crate::error::{KafkaLogError, KafkaLogResult};
use crate::orphans::{OrphanWatch, Seen};
use crate::record::to_record;
use async_trait::async_trait;
use oms_ports::event_log::{Consumer, ConsumerEvent, Record, TopicPartition};
use oms_ports::{PortError, PortResult};
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer as _, ConsumerContext, RebalanceProtocol,
};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// The longest a waiting poll goes without looking at librdkafka's queue.
const RECHECK: Duration = Duration::from_millis(100);

/// The least time between leaving the group to rejoin it and joining again.
const REJOIN_PAUSE: Duration = Duration::from_secs(1);

/// The longest a member that left its group to rejoin it waits for the leave to show.
const REJOIN_GIVE_UP: Duration = Duration::from_secs(60);

/// A rebalance step announced by librdkafka, not yet returned to the stage.
#[derive(Debug)]
enum Announced {
    Assign(Vec<TopicPartition>),
    Revoke(Vec<TopicPartition>),
    /// The rebalance failed; librdkafka asks for an unassign.
    Failed(String),
}

/// What the consumer's context and the [`KafkaConsumer`] share.
#[derive(Default)]
pub(crate) struct Shared {
    announced: Mutex<VecDeque<Announced>>,
    /// Set while the consumer closes: rebalances are then completed in the callback.
    closing: AtomicBool,
    /// Set when a poll served a non-message event, so an empty poll does not yet mean an
    /// empty queue.
    served: AtomicBool,
    /// Signalled by librdkafka when its queue becomes non-empty.
    wake: Notify,
}

impl Shared {
    fn announce(&self, a: Announced) {
        self.announced
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back(a);
    }

    fn next_announced(&self) -> Option<Announced> {
        self.announced
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop_front()
    }

    /// Called by librdkafka (on its own thread) when its queue becomes non-empty.
    pub(crate) fn notify_waiter(&self) {
        self.wake.notify_one();
    }

    fn has_announced(&self) -> bool {
        !self
            .announced
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
    }
}

/// The consumer context: defers rebalances to the next poll (see the module docs).
pub(crate) struct GroupContext {
    pub(crate) shared: Arc<Shared>,
}

impl ClientContext for GroupContext {
    // Log and statistics events come through the consumer's queue too: a poll that served one
    // returns nothing, and the queue may still hold messages.
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        self.shared.served.store(true, Ordering::SeqCst);
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => tracing::error!(target: "librdkafka", "{fac} {message}"),
            RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", "{fac} {message}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(target: "librdkafka", "{fac} {message}")
            }
            RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", "{fac} {message}"),
        }
    }

    fn stats_raw(&self, _statistics: &[u8]) {
        self.shared.served.store(true, Ordering::SeqCst);
    }
}

impl ConsumerContext for GroupContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        self.shared.served.store(true, Ordering::SeqCst);
        if self.shared.closing.load(Ordering::SeqCst) {
            // Nobody polls any more: let close proceed.
            if let Err(e) = release(consumer, tpl) {
                tracing::warn!(error = %e, "kafka consumer: unassign while closing failed");
            }
            return;
        }
        let tps = to_tps(tpl);
        let announced = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => Announced::Assign(tps),
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => Announced::Revoke(tps),
            other => Announced::Failed(format!("{other:?}")),
        };
        tracing::debug!(?announced, "kafka consumer: rebalance announced");
        self.shared.announce(announced);
    }

    fn commit_callback(&self, _result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        self.shared.served.store(true, Ordering::SeqCst);
    }
}

/// Gives partitions back: `unassign` (eager) or `incremental_unassign` (cooperative).
fn release(consumer: &BaseConsumer<GroupContext>, tpl: &TopicPartitionList) -> KafkaResult<()> {
    match consumer.rebalance_protocol() {
        RebalanceProtocol::Cooperative => consumer.incremental_unassign(tpl),
        _ => consumer.unassign(),
    }
}

fn to_tps(tpl: &TopicPartitionList) -> Vec<TopicPartition> {
    tpl.elements()
        .iter()
        .map(|e| TopicPartition {
            topic: e.topic().to_string(),
            partition: e.partition() as u32,
        })
        .collect()
}

fn to_tpl<'a>(
    tps: impl IntoIterator<Item = (&'a TopicPartition, Offset)>,
) -> KafkaLogResult<TopicPartitionList> {
    let mut tpl = TopicPartitionList::new();
    for (tp, offset) in tps {
        tpl.add_partition_offset(&tp.topic, tp.partition as i32, offset)
            .map_err(|e| KafkaLogError::client("building a partition list", e))?;
    }
    Ok(tpl)
}

/// The librdkafka call still owed for the rebalance step last returned to the stage.
enum Owed {
    /// `unassign` the partitions returned in `Revoked`.
    Release(Vec<TopicPartition>),
    /// `assign` the partitions returned in `Assigned`, from these start offsets (set by
    /// `seek`) or else from the committed positions.
    Take(Vec<TopicPartition>, BTreeMap<TopicPartition, u64>),
}

/// A member of a consumer group; see the module docs for how rebalances and waits work.
pub struct KafkaConsumer {
    consumer: Arc<BaseConsumer<GroupContext>>,
    shared: Arc<Shared>,
    group: String,
    /// The partitions returned to the stage as ours.
    owned: BTreeSet<TopicPartition>,
    owed: Option<Owed>,
    timeout: Duration,
    /// Keeps records dense on brokers that need it (tansu; see [`crate::continuity`]).
    continuity: Continuity,
    /// The subscribed topics, to rejoin with.
    topics: Vec<String>,
    /// Notices partitions nobody consumes, on brokers that need it (tansu; see
    /// [`crate::orphans`]).
    orphans: Option<OrphanWatch>,
    /// A check of the partitions owned elsewhere, running on a blocking thread, and the
    /// rebalance count it started at: a result from before a rebalance is stale.
    checking: Option<(tokio::task::JoinHandle<KafkaLogResult<Vec<Seen>>>, u64)>,
    /// Rebalance steps returned to the stage so far.
    rebalances: u64,
    /// When this member left the group to join it again (see [`crate::orphans`]), until it has.
    left_at: Option<std::time::Instant>,
    /// How many times it did.
    rejoins: u64,
}

impl KafkaConsumer {
    pub(crate) fn new(
        consumer: BaseConsumer<GroupContext>,
        shared: Arc<Shared>,
        group: String,
        timeout: Duration,
        continuity: Continuity,
        topics: Vec<String>,
        orphan_rejoin: Option<Duration>,
    ) -> Self {
        KafkaConsumer {
            consumer: Arc::new(consumer),
            shared,
            group,
            owned: BTreeSet::new(),
            owed: None,
            timeout,
            continuity,
            topics,
            orphans: orphan_rejoin.map(|after| OrphanWatch::new(after, std::time::Instant::now())),
            checking: None,
            rebalances: 0,
            left_at: None,
            rejoins: 0,
        }
    }

    /// How many times this member left its group to join it again because partitions were
    /// consumed by nobody (see the crate docs, "On tansu").
    pub fn rejoins(&self) -> u64 {
        self.rejoins
    }

    /// The group this consumer is a member of.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// Makes the `assign` / `unassign` call owed for the last rebalance step.
    fn pay_owed(&mut self) -> KafkaLogResult<()> {
        let Some(owed) = self.owed.take() else {
            return Ok(());
        };
        let cooperative = matches!(
            self.consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        match owed {
            Owed::Release(tps) => {
                for tp in &tps {
                    self.continuity.forget(tp);
                }
                let tpl = to_tpl(tps.iter().map(|tp| (tp, Offset::Invalid)))?;
                release(&self.consumer, &tpl)
                    .map_err(|e| KafkaLogError::client("releasing revoked partitions", e))?;
                tracing::debug!(group = %self.group, partitions = tps.len(), "kafka consumer: revoke completed");
            }
            Owed::Take(tps, seeks) => {
                let mut starts = Vec::with_capacity(tps.len());
                for tp in &tps {
                    let start = match seeks.get(tp) {
                        Some(&next) => Offset::Offset(self.continuity.start_at(tp, next) as i64),
                        None => Offset::Stored,
                    };
                    starts.push((tp, start));
                }
                let tpl = to_tpl(starts)?;
                let done = if cooperative {
                    self.consumer.incremental_assign(&tpl)
                } else {
                    self.consumer.assign(&tpl)
                };
                done.map_err(|e| KafkaLogError::client("taking assigned partitions", e))?;
                tracing::debug!(group = %self.group, partitions = tps.len(), "kafka consumer: assignment started");
            }
        }
        Ok(())
    }

    /// Before an owed assignment starts: where each partition not sought resumes, when fetches
    /// start early and skip what precedes the wanted offset (that offset must then be known).
    async fn find_starts(&mut self) -> KafkaLogResult<()> {
        let Some(Owed::Take(tps, seeks)) = &self.owed else {
            return Ok(());
        };
        if !self.continuity.active() {
            return Ok(());
        }
        let unsought: Vec<TopicPartition> = tps
            .iter()
            .filter(|tp| !seeks.contains_key(*tp))
            .cloned()
            .collect();
        if unsought.is_empty() {
            return Ok(());
        }
        let (consumer, timeout) = (self.consumer.clone(), self.timeout);
        let found =
            tokio::task::spawn_blocking(move || start_offsets(&consumer, &unsought, timeout))
                .await
                .map_err(|_| KafkaLogError::Task("start offsets"))??;
        if let Some(Owed::Take(_, seeks)) = &mut self.owed {
            seeks.extend(found);
        }
        Ok(())
    }

    /// Fetches again the partitions whose gaps are due (see [`crate::continuity`]).
    fn refetch_due(&mut self) {
        if !self.continuity.gaps_open() {
            return;
        }
        for (tp, from) in self.continuity.due(std::time::Instant::now()) {
            self.refetch(&tp, from);
        }
    }

    /// Turns the next announced rebalance step into an event for the stage.
    fn next_rebalance(&mut self) -> KafkaLogResult<Option<ConsumerEvent>> {
        while let Some(announced) = self.shared.next_announced() {
            self.rebalances += 1;
            match announced {
                Announced::Assign(tps) => {
                    self.owned.extend(tps.iter().cloned());
                    self.owed = Some(Owed::Take(tps.clone(), BTreeMap::new()));
                    return Ok(Some(ConsumerEvent::Assigned(tps)));
                }
                Announced::Revoke(tps) if self.owned.is_empty() => {
                    // Nothing of ours to finish: complete it now.
                    self.owed = Some(Owed::Release(tps));
                    self.pay_owed()?;
                }
                Announced::Failed(_) if self.owned.is_empty() => {
                    self.owed = Some(Owed::Release(Vec::new()));
                    self.pay_owed()?;
                }
                Announced::Revoke(tps) => {
                    for tp in &tps {
                        self.owned.remove(tp);
                    }
                    self.owed = Some(Owed::Release(tps.clone()));
                    return Ok(Some(ConsumerEvent::Revoked(tps)));
                }
                Announced::Failed(reason) => {
                    tracing::warn!(group = %self.group, %reason, "kafka consumer: rebalance failed, releasing every partition");
                    let tps: Vec<_> = std::mem::take(&mut self.owned).into_iter().collect();
                    self.owed = Some(Owed::Release(tps.clone()));
                    return Ok(Some(ConsumerEvent::Revoked(tps)));
                }
            }
        }
        Ok(None)
    }

    /// Takes up to `max` records from librdkafka's queue without waiting. Stops early at an
    /// announced rebalance.
    fn drain(&mut self, max: usize) -> KafkaLogResult<Vec<Record>> {
        let mut out = Vec::new();
        while out.len() < max {
            self.shared.served.store(false, Ordering::SeqCst);
            match self.consumer.poll(Duration::ZERO) {
                Some(Ok(msg)) => {
                    let record = to_record(&msg);
                    let tp = TopicPartition {
                        topic: record.topic.clone(),
                        partition: record.partition,
                    };
                    // librdkafka drops messages of unassigned partitions; this is a guard.
                    if !self.owned.contains(&tp) {
                        continue;
                    }
                    match self
                        .continuity
                        .check(&tp, record.offset, std::time::Instant::now())
                    {
                        Verdict::Deliver => out.push(record),
                        Verdict::Drop => {}
                        Verdict::Refetch(from) => self.refetch(&tp, from),
                    }
                }
                Some(Err(KafkaError::PartitionEOF(_))) => {}
                Some(Err(e @ KafkaError::MessageConsumptionFatal(_))) => {
                    return Err(KafkaLogError::client("consuming", e));
                }
                Some(Err(e)) => {
                    // Transient (a broker away, a topic not yet created): librdkafka retries.
                    tracing::warn!(group = %self.group, error = %e, "kafka consumer: poll error");
                }
                None => {
                    if self.shared.has_announced() || !self.shared.served.load(Ordering::SeqCst) {
                        break;
                    }
                    // A rebalance or commit event was served: the queue may hold more.
                }
            }
            if self.shared.has_announced() {
                break;
            }
        }
        Ok(out)
    }

    /// Restarts fetching `tp` at `from` without waiting; librdkafka discards what it had
    /// fetched from the old position. A failure is left to the next gap check.
    fn refetch(&self, tp: &TopicPartition, from: u64) {
        tracing::debug!(topic = %tp.topic, partition = tp.partition, from, "kafka consumer: refetching over a gap");
        if let Err(e) = self.consumer.seek(
            &tp.topic,
            tp.partition as i32,
            Offset::Offset(from as i64),
            Duration::ZERO,
        ) {
            tracing::warn!(error = %e, topic = %tp.topic, partition = tp.partition, "kafka consumer: refetch failed");
        }
    }

    /// Starts a check of the partitions owned elsewhere when one is due, and acts on a
    /// finished one: a partition still for too long makes this member rejoin the group.
    async fn watch_orphans(&mut self) -> KafkaLogResult<()> {
        let Some(watch) = self.orphans.as_mut() else {
            return Ok(());
        };
        let now = std::time::Instant::now();
        if let Some((handle, at)) = self.checking.take() {
            if !handle.is_finished() {
                self.checking = Some((handle, at));
                return Ok(());
            }
            let seen = match handle.await {
                Ok(Ok(seen)) => seen,
                Ok(Err(e)) => {
                    tracing::debug!(group = %self.group, error = %e, "kafka consumer: orphan check failed");
                    return Ok(());
                }
                Err(_) => return Err(KafkaLogError::Task("orphan check")),
            };
            // Partitions moved since the check started: its view of what is ours is stale.
            if at != self.rebalances {
                return Ok(());
            }
            let still = watch.observe(now, self.rebalances, &seen);
            if !still.is_empty() {
                tracing::warn!(
                    group = %self.group,
                    partitions = ?still,
                    after = ?watch.after(),
                    "kafka consumer: partitions of the group are consumed by nobody; leaving the group to join it again"
                );
                watch.restart(now);
                // Leave now; join again once the leave has gone through (below).
                self.consumer.unsubscribe();
                self.left_at = Some(now);
                self.rejoins += 1;
            }
            return Ok(());
        }
        if let Some(left_at) = self.left_at {
            // librdkafka leaves the group once this member's partitions are given back (the
            // revoke goes to the stage like any other), and an unsubscribe made during a
            // rebalance waits for that rebalance to end first. A subscribe made before the
            // leave would cancel it and rejoin under the same member id, which changes nothing
            // on tansu. So join again only once the leave is done: librdkafka clears the
            // member id as it sends LeaveGroup. Should that never show, join anyway after
            // REJOIN_GIVE_UP rather than stay out of the group.
            let settled =
                self.owned.is_empty() && self.owed.is_none() && !self.shared.has_announced();
            let left = member_id(&self.consumer).is_none_or(|id| id.is_empty());
            let given_up = now >= left_at + REJOIN_GIVE_UP;
            if settled && now >= left_at + REJOIN_PAUSE && (left || given_up) {
                if !left {
                    tracing::warn!(group = %self.group, "kafka consumer: the group was not left within {REJOIN_GIVE_UP:?}; joining again anyway");
                }
                let topics: Vec<&str> = self.topics.iter().map(String::as_str).collect();
                self.consumer
                    .subscribe(&topics)
                    .map_err(|e| KafkaLogError::client("joining the group again", e))?;
                self.left_at = None;
                watch.restart(now);
                tracing::info!(group = %self.group, "kafka consumer: joined the group again");
            }
            return Ok(());
        }
        if !watch.due(now) {
            return Ok(());
        }
        let (consumer, topics, owned, timeout) = (
            self.consumer.clone(),
            self.topics.clone(),
            self.owned.clone(),
            self.timeout,
        );
        let handle = tokio::task::spawn_blocking(move || {
            owned_elsewhere(&consumer, &topics, &owned, timeout)
        });
        self.checking = Some((handle, self.rebalances));
        Ok(())
    }

    /// Whether `tp` may be committed or sought: ours, or revoked but not yet released.
    fn check_owned(&self, tp: &TopicPartition) -> PortResult<()> {
        let releasing = matches!(&self.owed, Some(Owed::Release(tps)) if tps.contains(tp));
        if self.owned.contains(tp) || releasing {
            Ok(())
        } else {
            Err(PortError::Invalid(format!(
                "{}/{} is not owned by this consumer",
                tp.topic, tp.partition
            )))
        }
    }
}

#[async_trait]
impl Consumer for KafkaConsumer {
    async fn poll(&mut self, max: usize, timeout: Duration) -> PortResult<ConsumerEvent> {
        // The stage is done with what the last event asked of it: complete that step.
        self.find_starts().await?;
        self.pay_owed()?;
        let deadline = tokio::time::Instant::now() + timeout;
        let max = max.max(1);
        loop {
            if let Some(event) = self.next_rebalance()? {
                return Ok(event);
            }
            self.refetch_due();
            self.watch_orphans().await?;
            let records = self.drain(max)?;
            if !records.is_empty() {
                return Ok(ConsumerEvent::Records(records));
            }
            if self.shared.has_announced() {
                continue;
            }
            // The queue was empty: a message or event arriving from now on signals `wake`
            // (a signal sent since the drain is kept as a permit, so none is lost). Should an
            // event kind unknown here have been taken for emptiness, the queue is looked at
            // again after RECHECK anyway.
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(ConsumerEvent::Records(Vec::new()));
            }
            let recheck = if self.continuity.gaps_open() {
                REFETCH_EVERY
            } else {
                RECHECK
            };
            let _ =
                tokio::time::timeout_at(deadline.min(now + recheck), self.shared.wake.notified())
                    .await;
        }
    }

    async fn commit(&mut self, positions: &[(TopicPartition, u64)]) -> PortResult<()> {
        if positions.is_empty() {
            return Ok(());
        }
        for (tp, _) in positions {
            self.check_owned(tp)?;
        }
        let tpl = to_tpl(
            positions
                .iter()
                .map(|(tp, o)| (tp, Offset::Offset(*o as i64))),
        )?;
        let consumer = self.consumer.clone();
        let commit = tokio::task::spawn_blocking(move || consumer.commit(&tpl, CommitMode::Sync));
        match tokio::time::timeout(self.timeout, commit).await {
            Err(_) => Err(PortError::Unavailable(format!(
                "commit of group {} did not finish within {:?}",
                self.group, self.timeout
            ))),
            Ok(Err(_)) => Err(KafkaLogError::Task("commit").into()),
            Ok(Ok(done)) => done.map_err(|e| KafkaLogError::client("commit", e).into()),
        }
    }

    async fn seek(&mut self, tp: &TopicPartition, offset: u64) -> PortResult<()> {
        self.check_owned(tp)?;
        if let Some(Owed::Take(tps, seeks)) = &mut self.owed {
            if tps.contains(tp) {
                // Not fetching yet: this becomes the start offset at the next poll.
                seeks.insert(tp.clone(), offset);
                return Ok(());
            }
        }
        let from = self.continuity.start_at(tp, offset);
        let consumer = self.consumer.clone();
        let (topic, partition, timeout) = (tp.topic.clone(), tp.partition as i32, self.timeout);
        let seek = tokio::task::spawn_blocking(move || {
            seek_when_started(&consumer, &topic, partition, from, timeout)
        });
        seek.await
            .map_err(|_| PortError::from(KafkaLogError::Task("seek")))?
            .map_err(|e| {
                KafkaLogError::client(format!("seek {}/{} to {offset}", tp.topic, tp.partition), e)
                    .into()
            })
    }

    fn assignment(&self) -> Vec<TopicPartition> {
        self.owned.iter().cloned().collect()
    }
}

/// Where each partition resumes: the group's committed offset, else the low watermark
/// (`auto.offset.reset=earliest`). Blocking: network round trips, once per assignment.
fn start_offsets(
    consumer: &BaseConsumer<GroupContext>,
    tps: &[TopicPartition],
    timeout: Duration,
) -> KafkaLogResult<BTreeMap<TopicPartition, u64>> {
    let tpl = to_tpl(tps.iter().map(|tp| (tp, Offset::Invalid)))?;
    let committed = consumer
        .committed_offsets(tpl, timeout)
        .map_err(|e| KafkaLogError::client("committed offsets at assignment", e))?;
    let mut starts = BTreeMap::new();
    for tp in tps {
        let found = committed
            .find_partition(&tp.topic, tp.partition as i32)
            .map(|e| e.offset());
        let next = match found {
            Some(Offset::Offset(o)) if o >= 0 => o as u64,
            _ => {
                let (low, _) = consumer
                    .fetch_watermarks(&tp.topic, tp.partition as i32, timeout)
                    .map_err(|e| KafkaLogError::client("low watermark at assignment", e))?;
                low.max(0) as u64
            }
        };
        starts.insert(tp.clone(), next);
    }
    Ok(starts)
}

/// The member id librdkafka holds for this consumer's group membership: empty once it has
/// left the group (`rd_kafka_cgrp_leave` clears it as it sends LeaveGroup), `None` if there is
/// no group.
fn member_id(consumer: &BaseConsumer<GroupContext>) -> Option<String> {
    let rk = consumer.client().native_ptr();
    // SAFETY: `rk` is the live client that `consumer` owns. `rd_kafka_memberid` returns a
    // NUL-terminated copy of the id, or NULL; the copy is ours to free with `rd_kafka_mem_free`.
    unsafe {
        let id = rdkafka::bindings::rd_kafka_memberid(rk);
        if id.is_null() {
            return None;
        }
        let text = std::ffi::CStr::from_ptr(id).to_string_lossy().into_owned();
        rdkafka::bindings::rd_kafka_mem_free(rk, id.cast());
        Some(text)
    }
}

/// The partitions of `topics` not in `owned`, with the group's committed position and
/// whether records lie past it. Blocking: a few round trips per partition.
fn owned_elsewhere(
    consumer: &BaseConsumer<GroupContext>,
    topics: &[String],
    owned: &BTreeSet<TopicPartition>,
    timeout: Duration,
) -> KafkaLogResult<Vec<Seen>> {
    let mut all = Vec::new();
    for topic in topics {
        let metadata = consumer
            .fetch_metadata(Some(topic), timeout)
            .map_err(|e| KafkaLogError::client("metadata for the orphan check", e))?;
        for t in metadata.topics() {
            for p in t.partitions() {
                all.push(TopicPartition {
                    topic: t.name().to_string(),
                    partition: p.id() as u32,
                });
            }
        }
    }
    if all.iter().all(|tp| owned.contains(tp)) {
        return Ok(Vec::new());
    }
    let tpl = to_tpl(all.iter().map(|tp| (tp, Offset::Invalid)))?;
    let found = consumer
        .committed_offsets(tpl, timeout)
        .map_err(|e| KafkaLogError::client("committed offsets for the orphan check", e))?;
    let committed_at = |tp: &TopicPartition| match found
        .find_partition(&tp.topic, tp.partition as i32)
        .map(|e| e.offset())
    {
        Some(Offset::Offset(o)) if o >= 0 => Some(o as u64),
        _ => None,
    };
    // A group that has committed nothing anywhere does not commit (market data's order feed
    // reads from the end): its partitions cannot show progress and are not watched.
    if all.iter().all(|tp| committed_at(tp).is_none()) {
        return Ok(Vec::new());
    }
    let mut seen = Vec::new();
    for tp in all.into_iter().filter(|tp| !owned.contains(tp)) {
        let committed = committed_at(&tp);
        let (low, high) = consumer
            .fetch_watermarks(&tp.topic, tp.partition as i32, timeout)
            .map_err(|e| KafkaLogError::client("watermarks for the orphan check", e))?;
        // tansu's high watermark can fall short of the end (crate docs), never past it: a
        // partition shown lagging is lagging. One never committed counts from its start.
        let from = committed.map_or(low, |c| (c as i64).max(low));
        seen.push(Seen {
            tp,
            committed,
            lagging: high > from,
        });
    }
    Ok(seen)
}

/// Seeks a fetching partition. Right after an assignment, librdkafka may still be looking up
/// the committed offset and refuses with a state error; that passes within a round trip.
fn seek_when_started(
    consumer: &BaseConsumer<GroupContext>,
    topic: &str,
    partition: i32,
    offset: u64,
    timeout: Duration,
) -> KafkaResult<()> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        match consumer.seek(topic, partition, Offset::Offset(offset as i64), timeout) {
            Err(KafkaError::Seek(ref msg))
                if std::time::Instant::now() < deadline && seek_not_ready(msg) =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

/// librdkafka's texts for `ERR__STATE` and `ERR__PREV_IN_PROGRESS` (its seek error carries
/// only the text).
fn seek_not_ready(msg: &str) -> bool {
    msg.contains("Erroneous state") || msg.contains("Previous operation in progress")
}

impl Drop for KafkaConsumer {
    fn drop(&mut self) {
        self.shared.closing.store(true, Ordering::SeqCst);
        // A step librdkafka still waits for would stall the close: complete it first.
        if let Err(e) = self.pay_owed() {
            tracing::warn!(group = %self.group, error = %e, "kafka consumer: completing a rebalance on close failed");
        }
        // Closing (leaving the group) happens when the last reference to the librdkafka
        // consumer drops, here unless a commit, a seek or an orphan check is still running on
        // a blocking thread.
    }
}
