//! The venue stage: consumes `venue` commands, matches them in the domain's [`Venue`], and
//! appends execution reports to `orders` (keyed by account) and public trades and book changes
//! to `marketdata` (keyed by symbol).
//!
//! The venue's clock is the log: a command is handled at its record's append time, so replaying
//! the same commands gives the same events. After a restart, commands the group had already
//! committed rebuild the books silently; later ones are handled again and their events re-sent
//! with the same ids, which consumers drop as duplicates.

use super::stage::{self, Progress};
use super::Shutdown;
use crate::codec::{decode_command, LogNames};
use oms_domain::events::{Envelope, Event};
use oms_domain::ids::{AccountId, Symbol, Timestamp};
use oms_domain::instrument::Instrument;
use oms_domain::venue::{Venue, VenueCommand};
use oms_ports::event_log::{partition_for, ConsumerEvent, EventLog, TopicPartition};
use oms_ports::order_store::OrderStore;
use oms_ports::PortResult;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct VenueStage {
    pub log: Arc<dyn EventLog>,
    pub store: Arc<dyn OrderStore>,
    pub instruments: Vec<Instrument>,
    pub fee_account: AccountId,
    pub snapshot_every: u64,
    /// Longest a handled record waits for a snapshot of its partition ([`stage::SnapshotClock`]).
    pub snapshot_max_age: Duration,
    /// How often time is sent to the books so GTD orders expire.
    pub tick_every: Duration,
    pub names: LogNames,
}

struct Partition {
    venue: Venue,
    committed: u64,
    /// The books cover the commands before this offset (it trails `committed` during a
    /// replay): where an idle snapshot is taken.
    handled: u64,
    snapshots: stage::SnapshotClock,
}

impl VenueStage {
    pub async fn run(self, shutdown: Shutdown) -> PortResult<()> {
        let mut consumer = self
            .log
            .subscribe(&self.names.venue_group, &[self.names.venue_topic.as_str()])
            .await?;
        let assigned: Arc<Mutex<HashSet<u32>>> = Arc::default();
        let ticker = tokio::spawn(tick(
            self.log.clone(),
            self.names.venue_topic.clone(),
            self.instruments.iter().map(|i| i.symbol.clone()).collect(),
            assigned.clone(),
            self.tick_every,
            shutdown.clone(),
        ));
        let mut parts: HashMap<u32, Partition> = HashMap::new();
        let mut attempt = 0;
        let mut out = Vec::new();
        while !*shutdown.borrow() {
            let Some(polled) = stage::poll(&mut consumer, "venue", &mut attempt).await else {
                continue;
            };
            match polled {
                ConsumerEvent::Assigned(tps) => {
                    for tp in tps {
                        let (from, part) = self.restore(&tp).await?;
                        consumer.seek(&tp, from).await?;
                        parts.insert(tp.partition, part);
                        assigned.lock().expect("assigned").insert(tp.partition);
                        self.configure(&tp).await?;
                    }
                }
                ConsumerEvent::Revoked(tps) => {
                    for tp in tps {
                        parts.remove(&tp.partition);
                        assigned.lock().expect("assigned").remove(&tp.partition);
                    }
                }
                ConsumerEvent::Records(records) if records.is_empty() => {
                    for (&partition, part) in parts.iter_mut() {
                        if part.snapshots.aged() {
                            self.snapshot(partition, part.handled, part).await;
                        }
                    }
                }
                ConsumerEvent::Records(records) => {
                    let mut lifecycle = Vec::new();
                    let mut public = Vec::new();
                    let mut progress = Progress::default();
                    for rec in &records {
                        progress.advance(&rec.topic, rec.partition, rec.offset);
                        let Some(part) = parts.get_mut(&rec.partition) else {
                            continue;
                        };
                        part.snapshots.record();
                        let cmd = match decode_command(rec) {
                            Ok(c) => c,
                            Err(e) => {
                                tracing::error!(error = %e, "venue: skipping undecodable command");
                                continue;
                            }
                        };
                        let at = Timestamp(rec.timestamp_ms);
                        out.clear();
                        part.venue.handle(at, &cmd, &mut out);
                        if let VenueCommand::Configure { instrument } = &cmd {
                            if rec.offset >= part.committed && part.venue.units_differ(instrument) {
                                tracing::error!(
                                    symbol = %instrument.symbol,
                                    "venue: the configured tickSize or stepSize waits: orders rest in the book in the old units; \
                                     cancel them (status CANCEL_ONLY) and restart, or configure the old sizes again"
                                );
                            }
                        }
                        if rec.offset < part.committed {
                            continue;
                        }
                        for event in out.drain(..) {
                            let env = Envelope::new(at, event);
                            match env.event {
                                Event::Trade { .. }
                                | Event::BookChanged { .. }
                                | Event::TradingStatusChanged { .. } => public.push(env),
                                _ => lifecycle.push(env),
                            }
                        }
                    }
                    stage::flush_events(&self.log, &self.names.orders_topic, &lifecycle, &shutdown)
                        .await?;
                    stage::flush_events(
                        &self.log,
                        &self.names.marketdata_topic,
                        &public,
                        &shutdown,
                    )
                    .await?;
                    let positions = progress.positions();
                    stage::commit(&mut consumer, &positions, &shutdown).await?;
                    for (tp, next) in positions {
                        if let Some(part) = parts.get_mut(&tp.partition) {
                            part.committed = part.committed.max(next);
                            part.handled = next;
                            if part.snapshots.due() {
                                self.snapshot(tp.partition, next, part).await;
                            }
                        }
                    }
                }
            }
        }
        ticker.abort();
        Ok(())
    }

    async fn restore(&self, tp: &TopicPartition) -> PortResult<(u64, Partition)> {
        let end = self.log.end_offset(&tp.topic, tp.partition).await?;
        let (from, venue) = stage::load_snapshot::<Venue>(
            &self.store,
            "venue",
            &self.names.venue_group,
            tp.partition,
            end,
        )
        .await?
        .unwrap_or_else(|| (0, Venue::new(self.instruments.clone(), self.fee_account)));
        stage::check_replayable(&self.log, "venue", &tp.topic, tp.partition, from).await?;
        let committed = self
            .log
            .committed(&self.names.venue_group, &tp.topic, tp.partition)
            .await?
            .unwrap_or(0);
        tracing::info!(
            partition = tp.partition,
            from,
            committed,
            "venue: partition restored"
        );
        Ok((
            from,
            Partition {
                venue,
                committed,
                handled: from,
                snapshots: stage::SnapshotClock::new(self.snapshot_every, self.snapshot_max_age),
            },
        ))
    }

    /// Appends each configured instrument of `tp` as a `Configure` command: the books take
    /// this start's configuration where it lands in the partition, so a replay meets it at the
    /// same point (applying it to the snapshot at once would replay earlier commands under
    /// rules they did not meet).
    async fn configure(&self, tp: &TopicPartition) -> PortResult<()> {
        let partitions = self.log.partition_count(&tp.topic).await?;
        let commands: Vec<VenueCommand> = self
            .instruments
            .iter()
            .filter(|i| partition_for(i.symbol.as_str().as_bytes(), partitions) == tp.partition)
            .map(|i| VenueCommand::Configure {
                instrument: i.clone(),
            })
            .collect();
        stage::append_commands(&self.log, &tp.topic, &commands).await
    }

    async fn snapshot(&self, partition: u32, next: u64, part: &mut Partition) {
        part.snapshots
            .save(
                &self.store,
                &self.names.venue_group,
                partition,
                next,
                &part.venue,
            )
            .await;
    }
}

/// Sends time to the books of the partitions this member owns, so GTD orders expire even when
/// nothing else happens. Time travels through the log, keeping replay deterministic.
async fn tick(
    log: Arc<dyn EventLog>,
    topic: String,
    symbols: Vec<Symbol>,
    assigned: Arc<Mutex<HashSet<u32>>>,
    every: Duration,
    mut shutdown: Shutdown,
) {
    let Ok(partitions) = log.partition_count(&topic).await else {
        return;
    };
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = shutdown.changed() => return,
        }
        let owned = assigned.lock().expect("assigned").clone();
        let commands: Vec<VenueCommand> = symbols
            .iter()
            .filter(|s| owned.contains(&partition_for(s.as_str().as_bytes(), partitions)))
            .map(|s| VenueCommand::Tick { symbol: s.clone() })
            .collect();
        if let Err(e) = stage::append_commands(&log, &topic, &commands).await {
            tracing::warn!(error = %e, "venue: tick append failed");
        }
    }
}
