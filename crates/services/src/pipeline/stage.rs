//! Helpers shared by the pipeline stages: batching appends and committing positions.

use crate::codec::{encode_command, encode_event};
use oms_domain::events::Envelope;
use oms_domain::venue::VenueCommand;
use oms_ports::event_log::{Consumer, EventLog, TopicPartition};
use oms_ports::{PortError, PortResult};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a stage waits for records before checking for shutdown.
pub const POLL_TIMEOUT: Duration = Duration::from_millis(100);
/// Records a stage takes per poll: large enough to amortise fsyncs, small enough for latency.
pub const POLL_MAX: usize = 2000;

/// A stage's snapshot of a partition whose log ends at `end`, with the offset it covers; `None`
/// (replay from the start) when there is none, when it cannot be read, or when it lies past the
/// end of the partition (taken of another topic: renamed or recreated).
pub async fn load_snapshot<T: serde::de::DeserializeOwned>(
    store: &Arc<dyn oms_ports::order_store::OrderStore>,
    stage: &str,
    name: &str,
    partition: u32,
    end: u64,
) -> PortResult<Option<(u64, T)>> {
    let Some((offset, bytes)) = store.load_snapshot(name, partition).await? else {
        return Ok(None);
    };
    if offset > end {
        tracing::warn!(
            stage,
            partition,
            offset,
            end,
            "snapshot lies past the end of the partition; replaying from the start"
        );
        return Ok(None);
    }
    match off_worker(|| serde_json::from_slice(&bytes)) {
        Ok(state) => Ok(Some((offset, state))),
        Err(e) => {
            tracing::error!(error = %e, stage, partition, "unreadable snapshot; replaying from the start");
            Ok(None)
        }
    }
}

/// Checks that the log still holds `topic`/`partition` from `from` (where a stage's replay of
/// it starts: its snapshot's offset, or 0). Records deleted by the log's retention before a
/// snapshot covered them cannot be replayed, and state rebuilt without them would be wrong
/// (balances, open orders): the stage stops with an error rather than skip them.
pub async fn check_replayable(
    log: &Arc<dyn EventLog>,
    stage: &str,
    topic: &str,
    partition: u32,
    from: u64,
) -> PortResult<()> {
    let first = log.first_offset(topic, partition).await?;
    if first <= from {
        return Ok(());
    }
    let why = format!(
        "{stage}: records {from}..{first} of {topic}/{partition} were deleted by the log's \
         retention before a snapshot covered them, so this partition's state cannot be rebuilt; \
         the stage will not run it (keep the topic's retention.ms at -1, or far longer than \
         pipeline.snapshotMaxAgeSecs)"
    );
    tracing::error!(stage, topic, partition, from, first, "{why}");
    Err(PortError::Corrupt(why))
}

/// Appends events to a topic in order, retrying until they are durable or shutdown begins.
/// Callers have already applied these effects in memory, so giving up early would lose them.
pub async fn flush_events(
    log: &Arc<dyn EventLog>,
    topic: &str,
    events: &[Envelope],
    shutdown: &super::Shutdown,
) -> PortResult<()> {
    retry(topic, shutdown, || append_events(log, topic, events)).await
}

/// Like [`flush_events`], for venue commands.
pub async fn flush_commands(
    log: &Arc<dyn EventLog>,
    topic: &str,
    commands: &[VenueCommand],
    shutdown: &super::Shutdown,
) -> PortResult<()> {
    retry(topic, shutdown, || append_commands(log, topic, commands)).await
}

async fn retry<F, Fut>(
    topic: &str,
    shutdown: &super::Shutdown,
    mut attempt_once: F,
) -> PortResult<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = PortResult<()>>,
{
    let mut attempt = 0;
    while let Err(e) = attempt_once().await {
        tracing::warn!(error = %e, topic, "append failed, retrying");
        if *shutdown.borrow() {
            return Err(e);
        }
        backoff(attempt).await;
        attempt += 1;
    }
    Ok(())
}

/// Appends events to a topic in order and waits until they are durable.
pub async fn append_events(
    log: &Arc<dyn EventLog>,
    topic: &str,
    events: &[Envelope],
) -> PortResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    log.append(topic, events.iter().map(encode_event).collect())
        .await
        .map(|_| ())
}

pub async fn append_commands(
    log: &Arc<dyn EventLog>,
    topic: &str,
    commands: &[VenueCommand],
) -> PortResult<()> {
    if commands.is_empty() {
        return Ok(());
    }
    log.append(topic, commands.iter().map(encode_command).collect())
        .await
        .map(|_| ())
}

/// The next offset to read per partition, gathered while a batch is processed.
#[derive(Default)]
pub struct Progress(BTreeMap<TopicPartition, u64>);

impl Progress {
    pub fn advance(&mut self, topic: &str, partition: u32, offset: u64) {
        let tp = TopicPartition {
            topic: topic.to_string(),
            partition,
        };
        let next = offset + 1;
        let e = self.0.entry(tp).or_insert(next);
        *e = (*e).max(next);
    }

    pub fn positions(&self) -> Vec<(TopicPartition, u64)> {
        self.0.iter().map(|(tp, o)| (tp.clone(), *o)).collect()
    }
}

/// Commits positions, retrying until it succeeds or shutdown begins.
pub async fn commit(
    consumer: &mut Box<dyn Consumer>,
    positions: &[(TopicPartition, u64)],
    shutdown: &super::Shutdown,
) -> PortResult<()> {
    let mut attempt = 0;
    while let Err(e) = consumer.commit(positions).await {
        tracing::warn!(error = %e, "commit failed, retrying");
        if *shutdown.borrow() {
            return Err(e);
        }
        backoff(attempt).await;
        attempt += 1;
    }
    Ok(())
}

/// Polls once. A failed poll is logged and backed off (longer after each failure in a row) and
/// gives `None`, so a stage's loop simply polls again.
pub async fn poll(
    consumer: &mut Box<dyn Consumer>,
    stage: &'static str,
    failures: &mut u32,
) -> Option<oms_ports::event_log::ConsumerEvent> {
    match consumer.poll(POLL_MAX, POLL_TIMEOUT).await {
        Ok(event) => {
            *failures = 0;
            Some(event)
        }
        Err(e) => {
            tracing::warn!(error = %e, stage, "poll failed");
            backoff(*failures).await;
            *failures += 1;
            None
        }
    }
}

/// When a partition's state is due a snapshot: after `every` records, or, once the state is
/// large, after one record per [`SNAPSHOT_BYTES_PER_RECORD`] bytes of its last snapshot. A
/// snapshot encodes the whole state, so at a fixed interval its cost per record would grow
/// with the state (the resting orders); this way it stays about the same, and a restart
/// replays at most a number of records in proportion to the state, not to history.
///
/// And at the latest `max_age` after the first record it does not cover, however few came
/// since: a log with time-based retention (Kafka's `retention.ms`) deletes old records
/// whether or not a snapshot covers them, and a quiet partition would otherwise wait for
/// `every` records for days. A stage checks [`SnapshotClock::aged`] while idle too.
#[derive(Debug)]
pub struct SnapshotClock {
    every: u64,
    max_age: Duration,
    since: u64,
    /// When the first record not in a snapshot was handled.
    oldest: Option<Instant>,
    last_bytes: u64,
}

/// See [`SnapshotClock`]: encoding the state costs each record about this many bytes of JSON.
pub const SNAPSHOT_BYTES_PER_RECORD: u64 = 256;

impl SnapshotClock {
    pub fn new(every: u64, max_age: Duration) -> Self {
        SnapshotClock {
            every,
            max_age,
            since: 0,
            oldest: None,
            last_bytes: 0,
        }
    }

    pub fn record(&mut self) {
        self.since += 1;
        self.oldest.get_or_insert_with(Instant::now);
    }

    pub fn due(&self) -> bool {
        self.since >= self.every.max(self.last_bytes / SNAPSHOT_BYTES_PER_RECORD) || self.aged()
    }

    /// A record not in a snapshot has waited `max_age`.
    pub fn aged(&self) -> bool {
        self.oldest.is_some_and(|t| t.elapsed() >= self.max_age)
    }

    /// Saves a stage's state of one partition as of `next` and restarts the clock once it is
    /// stored. A failure is logged and left for the next snapshot: the log still holds
    /// everything.
    pub async fn save<T: serde::Serialize>(
        &mut self,
        store: &Arc<dyn oms_ports::order_store::OrderStore>,
        name: &str,
        partition: u32,
        next: u64,
        state: &T,
    ) {
        let bytes = match off_worker(|| serde_json::to_vec(state)) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, name, "snapshot did not serialise");
                return;
            }
        };
        match store.save_snapshot(name, partition, next, &bytes).await {
            Ok(()) => {
                self.since = 0;
                self.oldest = None;
                self.last_bytes = bytes.len() as u64;
            }
            Err(e) => {
                // Tried again after `every` more records or `max_age`, not at every idle poll.
                self.since = 0;
                self.oldest = Some(Instant::now());
                tracing::warn!(error = %e, name, "snapshot failed")
            }
        }
    }
}

/// Runs long synchronous work (a snapshot of a few megabytes takes tens of milliseconds to
/// encode) without stalling the other tasks queued on this async worker: on the
/// multi-threaded runtime the worker first hands them to another thread, so requests keep
/// being answered while one stage is busy.
fn off_worker<R>(f: impl FnOnce() -> R) -> R {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// Waits before retrying after a failed append or commit, so an unavailable log is not spun on.
pub async fn backoff(attempt: u32) {
    let ms = (50u64 << attempt.min(6)).min(3000);
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_state_waits_longer_for_its_next_snapshot() {
        let mut clock = SnapshotClock::new(100, Duration::from_secs(3600));
        for _ in 0..99 {
            clock.record();
        }
        assert!(!clock.due());
        clock.record();
        assert!(clock.due(), "a small state: every 100 records");
        // After a snapshot of 1,000 records' worth of bytes, not before 1,000 records.
        clock.since = 0;
        clock.last_bytes = 1000 * SNAPSHOT_BYTES_PER_RECORD;
        for _ in 0..999 {
            clock.record();
        }
        assert!(!clock.due());
        clock.record();
        assert!(clock.due());
    }

    #[test]
    fn a_record_waits_at_most_max_age_for_a_snapshot() {
        let mut clock = SnapshotClock::new(100, Duration::from_millis(30));
        std::thread::sleep(Duration::from_millis(40));
        assert!(
            !clock.aged(),
            "nothing to cover: no snapshot, however long it has been"
        );
        clock.record();
        assert!(!clock.due() && !clock.aged());
        std::thread::sleep(Duration::from_millis(40));
        assert!(clock.aged() && clock.due(), "one record, aged");
        clock.since = 0;
        clock.oldest = None;
        assert!(!clock.aged(), "a snapshot restarts the clock");
    }
}
