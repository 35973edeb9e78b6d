//! The `marketdata` topic consumer: rebuilds every symbol's market data from a snapshot plus the
//! log, keeps it current, and saves snapshots with the offset they cover.
//!
//! On assignment a partition's state is restored from its latest snapshot (order store, name
//! "marketdata") and the log is read from the snapshot's offset; without one, from offset 0.
//! Snapshots are taken between records, so state and offset always match; the group's position
//! is committed with each snapshot. Redelivered records are dropped by the fold itself (trade
//! ids and depth sequences only grow), so reading a little before the snapshot is harmless.

use super::state::MarketData;
use super::MarketDataError;
use crate::codec::decode_event;
use crate::pipeline::stage::{backoff, check_replayable, POLL_MAX, POLL_TIMEOUT};
use crate::pipeline::Shutdown;
use oms_domain::events::Envelope;
use oms_ports::event_log::{Consumer, ConsumerEvent, EventLog, TopicPartition};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::time::Instant;

/// Records applied (and published) under one lock; a backlog is worked off in such chunks.
const APPLY_CHUNK: usize = 256;

struct Progress {
    /// Next offset to apply.
    next: u64,
    /// Records applied since the last save.
    dirty: u64,
    saved_at: Instant,
    /// The partition's end when it was assigned: reaching it means the replay is done.
    end_at_start: u64,
}

/// Runs until `shutdown` turns true; saves a final snapshot of every partition on the way out.
pub async fn run_marketdata_consumer(
    md: MarketData,
    log: Arc<dyn EventLog>,
    mut shutdown: Shutdown,
) -> Result<(), MarketDataError> {
    let cfg = md.config().clone();
    let mut consumer = log.subscribe(&cfg.group, &[cfg.topic.as_str()]).await?;
    let mut parts: BTreeMap<u32, Progress> = BTreeMap::new();
    let mut failures = 0u32;
    while !*shutdown.borrow() {
        let polled = tokio::select! {
            r = consumer.poll(POLL_MAX, POLL_TIMEOUT) => r,
            _ = shutdown.changed() => break,
        };
        let event = match polled {
            Ok(e) => {
                failures = 0;
                e
            }
            Err(e) => {
                tracing::warn!(error = %e, "market data poll failed, retrying");
                backoff(failures).await;
                failures += 1;
                continue;
            }
        };
        match event {
            ConsumerEvent::Assigned(tps) => {
                for tp in tps {
                    let p = restore(&md, &log, &mut *consumer, &tp).await?;
                    parts.insert(tp.partition, p);
                }
                md.set_caught_up(false);
            }
            ConsumerEvent::Revoked(tps) => {
                for tp in tps {
                    if let Some(mut p) = parts.remove(&tp.partition) {
                        save(&md, &mut *consumer, &tp, &mut p).await;
                    }
                    md.drop_partition(tp.partition);
                }
            }
            ConsumerEvent::Records(records) => {
                let mut batch: Vec<Arc<Envelope>> = Vec::with_capacity(APPLY_CHUNK);
                let mut current: Option<u32> = None;
                for rec in &records {
                    let Some(p) = parts.get_mut(&rec.partition) else {
                        continue;
                    };
                    if rec.offset < p.next {
                        continue;
                    }
                    if let Some(c) =
                        current.filter(|&c| c != rec.partition || batch.len() >= APPLY_CHUNK)
                    {
                        md.apply(c, &batch);
                        batch.clear();
                        // Let the socket writers drain between chunks of a large backlog.
                        tokio::task::yield_now().await;
                    }
                    current = Some(rec.partition);
                    p.next = rec.offset + 1;
                    p.dirty += 1;
                    match decode_event(rec) {
                        Ok(env) => batch.push(env),
                        Err(e) => {
                            md.metrics().bad_records.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(error = %e, "skipping a market data record");
                        }
                    }
                }
                if let Some(c) = current {
                    md.apply(c, &batch);
                }
            }
        }
        if !md.is_caught_up() && parts.values().all(|p| p.next >= p.end_at_start) {
            md.set_caught_up(true);
            tracing::info!(
                partitions = parts.len(),
                "market data caught up with the log"
            );
        }
        for (&partition, p) in parts.iter_mut() {
            let due = p.dirty >= cfg.snapshot_every_records
                || (p.dirty > 0 && p.saved_at.elapsed() >= cfg.snapshot_interval);
            if due {
                let tp = TopicPartition {
                    topic: cfg.topic.clone(),
                    partition,
                };
                save(&md, &mut *consumer, &tp, p).await;
            }
        }
    }
    for (&partition, p) in parts.iter_mut() {
        if p.dirty > 0 {
            let tp = TopicPartition {
                topic: cfg.topic.clone(),
                partition,
            };
            save(&md, &mut *consumer, &tp, p).await;
        }
    }
    Ok(())
}

/// Restores a newly assigned partition from its snapshot and moves the read position there.
async fn restore(
    md: &MarketData,
    log: &Arc<dyn EventLog>,
    consumer: &mut dyn Consumer,
    tp: &TopicPartition,
) -> Result<Progress, MarketDataError> {
    let cfg = md.config();
    let end = log.end_offset(&tp.topic, tp.partition).await?;
    let mut next = 0;
    match md
        .store()
        .load_snapshot(&cfg.snapshot_name, tp.partition)
        .await
    {
        Ok(Some((offset, _))) if offset > end => {
            tracing::warn!(
                partition = tp.partition,
                offset,
                end,
                "market data snapshot is ahead of the log; replaying from the start"
            );
        }
        Ok(Some((offset, state))) => match md.restore_partition(tp.partition, &state) {
            Ok(symbols) => {
                tracing::info!(
                    partition = tp.partition,
                    offset,
                    symbols,
                    "market data restored from snapshot"
                );
                next = offset;
            }
            Err(e) => {
                tracing::warn!(partition = tp.partition, error = %e, "unreadable market data snapshot; replaying from the start");
            }
        },
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(partition = tp.partition, error = %e, "cannot load the market data snapshot; replaying from the start");
        }
    }
    if next == 0 {
        md.drop_partition(tp.partition);
    }
    check_replayable(log, "marketdata", &tp.topic, tp.partition, next).await?;
    consumer.seek(tp, next).await?;
    Ok(Progress {
        next,
        dirty: 0,
        saved_at: Instant::now(),
        end_at_start: end,
    })
}

/// Saves a partition's state with its offset, then commits that offset. A failure is logged
/// and retried at the next due time: the state stays in memory and the log keeps the records.
async fn save(md: &MarketData, consumer: &mut dyn Consumer, tp: &TopicPartition, p: &mut Progress) {
    let state = md.export_partition(tp.partition);
    let name = &md.config().snapshot_name;
    p.saved_at = Instant::now();
    if let Err(e) = md
        .store()
        .save_snapshot(name, tp.partition, p.next, &state)
        .await
    {
        tracing::warn!(partition = tp.partition, error = %e, "saving the market data snapshot failed");
        return;
    }
    p.dirty = 0;
    md.metrics().snapshots_saved.fetch_add(1, Ordering::Relaxed);
    if let Err(e) = consumer.commit(&[(tp.clone(), p.next)]).await {
        tracing::warn!(partition = tp.partition, error = %e, "committing the market data position failed");
    }
}
