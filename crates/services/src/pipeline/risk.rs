//! The risk stage: consumes `orders`, decides new orders, amends and cancels with the domain's
//! [`RiskEngine`], appends its decisions to `orders` and approved work to `venue`.
//!
//! Decisions are the record: after a crash the stage restores a snapshot, then re-reads the
//! tail of each partition and re-applies the decisions it already wrote instead of deciding
//! again, so an order is never decided twice. Commands to the venue are re-sent; the venue
//! drops those it already took (they carry their source offset).

use super::reference::References;
use super::stage::{self, Progress};
use super::{now, Shutdown};
use crate::codec::{decode_event, LogNames};
use oms_domain::events::{Envelope, Event};
use oms_domain::ids::{AccountId, EventId};
use oms_domain::instrument::Instrument;
use oms_domain::risk::{RiskConfig, RiskEngine};
use oms_domain::venue::{Source, VenueCommand};
use oms_ports::event_log::{ConsumerEvent, EventLog, TopicPartition};
use oms_ports::order_store::OrderStore;
use oms_ports::PortResult;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the stage looks for dead man's switches whose deadline has passed. A switch
/// fires within this (and the poll's wait) of its deadline.
const CANCEL_AFTER_CHECK: Duration = Duration::from_millis(50);

pub struct RiskStage {
    pub log: Arc<dyn EventLog>,
    pub store: Arc<dyn OrderStore>,
    pub instruments: Vec<Instrument>,
    pub config: RiskConfig,
    pub fee_account: AccountId,
    pub references: References,
    /// Records between snapshots of a partition's state.
    pub snapshot_every: u64,
    /// Longest a handled record waits for a snapshot of its partition ([`stage::SnapshotClock`]).
    pub snapshot_max_age: Duration,
    /// How long an ended order is remembered ([`super::ended_order_horizon`]).
    pub remember_ended: std::time::Duration,
    pub names: LogNames,
}

struct Partition {
    engine: RiskEngine,
    /// Offsets below this were fully handled before the last stop: replay them silently.
    committed: u64,
    /// The state covers the records before this offset (it trails `committed` during a
    /// replay): where an idle snapshot is taken.
    handled: u64,
    /// Decisions already in the log past the snapshot, by event id.
    recorded: HashMap<EventId, Envelope>,
    /// The partition's end when it was restored. Every request `recorded` answers lies before
    /// it; what is left once the stage gets there answers requests from before the snapshot,
    /// and a repeat of such a request must not find it and re-send its command.
    recorded_until: u64,
    snapshots: stage::SnapshotClock,
    /// Dead man's switches (account, change) whose trigger this process has appended and not
    /// read back yet, so it is appended once. Not in the snapshot: after a restart a trigger
    /// still due is appended again, and the second copy finds the switch already fired.
    triggered: HashSet<(AccountId, u64)>,
}

impl RiskStage {
    pub async fn run(self, shutdown: Shutdown) -> PortResult<()> {
        let mut consumer = self
            .log
            .subscribe(&self.names.risk_group, &[self.names.orders_topic.as_str()])
            .await?;
        let mut parts: HashMap<u32, Partition> = HashMap::new();
        let mut attempt = 0;
        let mut checked_cancel_after = Instant::now();
        while !*shutdown.borrow() {
            if checked_cancel_after.elapsed() >= CANCEL_AFTER_CHECK {
                checked_cancel_after = Instant::now();
                self.trigger_due_cancel_afters(&mut parts, &shutdown)
                    .await?;
            }
            let Some(polled) = stage::poll(&mut consumer, "risk", &mut attempt).await else {
                continue;
            };
            match polled {
                ConsumerEvent::Assigned(tps) => {
                    for tp in tps {
                        let part = self.restore(&tp).await?;
                        consumer.seek(&tp, part.0).await?;
                        parts.insert(tp.partition, part.1);
                    }
                }
                ConsumerEvent::Revoked(tps) => {
                    // Everything handled so far is durable and committed; just forget the state.
                    for tp in tps {
                        parts.remove(&tp.partition);
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
                    self.refresh_references(&mut parts);
                    let mut out_events = Vec::new();
                    let mut out_commands = Vec::new();
                    let mut progress = Progress::default();
                    for rec in &records {
                        progress.advance(&rec.topic, rec.partition, rec.offset);
                        let Some(part) = parts.get_mut(&rec.partition) else {
                            continue;
                        };
                        part.snapshots.record();
                        let env = match decode_event(rec) {
                            Ok(env) => env,
                            Err(e) => {
                                tracing::error!(error = %e, "risk: skipping undecodable record");
                                continue;
                            }
                        };
                        let source = Source {
                            partition: rec.partition,
                            offset: rec.offset,
                        };
                        let replaying = rec.offset < part.committed;
                        let (events, commands) = part.handle(&env, source);
                        if rec.offset + 1 >= part.recorded_until && !part.recorded.is_empty() {
                            part.recorded = HashMap::new();
                        }
                        if !replaying {
                            out_events.extend(events);
                            out_commands.extend(commands);
                        }
                    }
                    // Decisions before commands: after a crash, a decision in the log is re-sent to the
                    // venue, but a command without its decision could not be explained.
                    stage::flush_events(
                        &self.log,
                        &self.names.orders_topic,
                        &out_events,
                        &shutdown,
                    )
                    .await?;
                    stage::flush_commands(
                        &self.log,
                        &self.names.venue_topic,
                        &out_commands,
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
        Ok(())
    }

    /// Appends a `CancelAfterTriggered` for each dead man's switch past its deadline.
    async fn trigger_due_cancel_afters(
        &self,
        parts: &mut HashMap<u32, Partition>,
        shutdown: &Shutdown,
    ) -> PortResult<()> {
        let at = now();
        let mut triggers = Vec::new();
        for part in parts.values_mut() {
            for (account, change) in part.engine.cancel_afters_due(at) {
                if part.triggered.insert((account, change)) {
                    tracing::info!(%account, change, "risk: dead man's switch triggered");
                    triggers.push(Envelope::new(
                        at,
                        Event::CancelAfterTriggered { account, change },
                    ));
                }
            }
        }
        if triggers.is_empty() {
            return Ok(());
        }
        stage::flush_events(&self.log, &self.names.orders_topic, &triggers, shutdown).await
    }

    fn refresh_references(&self, parts: &mut HashMap<u32, Partition>) {
        let refs = self.references.snapshot();
        for part in parts.values_mut() {
            for (symbol, r) in &refs {
                part.engine
                    .on_market(symbol, r.last, r.best_bid, r.best_ask);
            }
        }
    }

    /// Restores a partition: its snapshot, the group's committed position, and the decisions
    /// already written past the snapshot. Returns the offset to resume reading at.
    async fn restore(&self, tp: &TopicPartition) -> PortResult<(u64, Partition)> {
        let end = self.log.end_offset(&tp.topic, tp.partition).await?;
        let (from, mut engine) = stage::load_snapshot::<RiskEngine>(
            &self.store,
            "risk",
            &self.names.risk_group,
            tp.partition,
            end,
        )
        .await?
        .unwrap_or_else(|| (0, self.new_engine()));
        stage::check_replayable(&self.log, "risk", &tp.topic, tp.partition, from).await?;
        // The configuration of this start, not the snapshot's, sets limits and instruments.
        engine.reconfigure(&self.instruments, self.config.clone());
        engine.remember_ended_for(self.remember_ended);
        let committed = self
            .log
            .committed(&self.names.risk_group, &tp.topic, tp.partition)
            .await?
            .unwrap_or(0);
        let mut recorded = HashMap::new();
        let mut offset = from;
        while offset < end {
            let records = self
                .log
                .read(&tp.topic, tp.partition, offset, stage::POLL_MAX)
                .await?;
            let Some(last) = records.last() else { break };
            offset = last.offset + 1;
            for rec in &records {
                if let Ok(env) = decode_event(rec) {
                    if is_decision(&env.event) {
                        recorded.insert(env.id.clone(), Arc::unwrap_or_clone(env));
                    }
                }
            }
        }
        tracing::info!(
            partition = tp.partition,
            from,
            committed,
            decisions = recorded.len(),
            ended_remembered = engine.ledger().ended_remembered(),
            "risk: partition restored"
        );
        Ok((
            from,
            Partition {
                engine,
                committed,
                handled: from,
                recorded,
                recorded_until: end,
                snapshots: stage::SnapshotClock::new(self.snapshot_every, self.snapshot_max_age),
                triggered: HashSet::new(),
            },
        ))
    }

    fn new_engine(&self) -> RiskEngine {
        RiskEngine::new(
            self.instruments.clone(),
            self.config.clone(),
            self.fee_account,
        )
    }

    async fn snapshot(&self, partition: u32, next: u64, part: &mut Partition) {
        part.snapshots
            .save(
                &self.store,
                &self.names.risk_group,
                partition,
                next,
                &part.engine,
            )
            .await;
    }
}

/// Events the risk stage itself writes (a `CancelRequested` when a dead man's switch fires;
/// the account's own ones share their id, and either means the order is being cancelled).
fn is_decision(event: &Event) -> bool {
    matches!(
        event,
        Event::RiskValidated { .. }
            | Event::AmendValidated { .. }
            | Event::CancelRejected { .. }
            | Event::CancelRequested { .. }
            | Event::WithdrawalDecided { .. }
    )
}

impl Partition {
    /// Handles one event; returns the decisions and commands it produced.
    fn handle(&mut self, env: &Envelope, source: Source) -> (Vec<Envelope>, Vec<VenueCommand>) {
        let at = now();
        match &env.event {
            Event::OrderCreated(order) => {
                let decision_id = EventId(format!("o:{}:risk", order.order_id));
                if self.engine.ledger().knows_order(order.order_id) {
                    // Decided already (a repeat): before the snapshot, or earlier in the tail.
                    // A decision in `recorded` for it answered the first request, not this one.
                    self.recorded.remove(&decision_id);
                    return (Vec::new(), Vec::new());
                }
                if let Some(recorded) = self.recorded.remove(&decision_id) {
                    self.fold(env);
                    self.fold(&recorded);
                    let command = match &recorded.event {
                        Event::RiskValidated {
                            approved: true,
                            protection_price,
                            reservation,
                            ..
                        } => Some(VenueCommand::Submit {
                            source,
                            order: order.clone(),
                            protection_price: *protection_price,
                            fee_rate_cap: reservation.as_ref().and_then(|r| r.fee_rate),
                        }),
                        _ => None,
                    };
                    return (Vec::new(), command.into_iter().collect());
                }
                let d = self.engine.decide_order(at, source, order);
                (
                    d.events.into_iter().map(|e| Envelope::new(at, e)).collect(),
                    d.command.into_iter().collect(),
                )
            }
            Event::AmendRequested {
                account,
                order_id,
                amend_id,
                price,
                quantity,
            } => {
                let decision_id = EventId(format!("o:{order_id}:amend-risk:{amend_id}"));
                if let Some(recorded) = self.recorded.remove(&decision_id) {
                    self.fold(&recorded);
                    let command = match &recorded.event {
                        Event::AmendValidated {
                            approved: true,
                            reservation,
                            ..
                        } => self
                            .engine
                            .symbol_of(*order_id)
                            .map(|symbol| VenueCommand::Amend {
                                source,
                                symbol,
                                account: *account,
                                order_id: *order_id,
                                amend_id: *amend_id,
                                price: *price,
                                quantity: *quantity,
                                fee_rate_cap: reservation.as_ref().and_then(|r| r.fee_rate),
                            }),
                        _ => None,
                    };
                    return (Vec::new(), command.into_iter().collect());
                }
                let d = self.engine.decide_amend(
                    at, source, *account, *order_id, *amend_id, *price, *quantity,
                );
                (
                    d.events.into_iter().map(|e| Envelope::new(at, e)).collect(),
                    d.command.into_iter().collect(),
                )
            }
            Event::CancelRequested {
                account,
                order_id,
                reason,
            } => {
                // A cancel decides nothing lasting: repeating it is harmless (the venue drops a
                // command it already took, and a repeated rejection has the same event id).
                let d = self
                    .engine
                    .decide_cancel(source, *account, *order_id, *reason);
                let events = d
                    .events
                    .into_iter()
                    .map(|e| Envelope::new(at, e))
                    .filter(|e| !self.recorded.contains_key(&e.id))
                    .collect();
                (events, d.command.into_iter().collect())
            }
            Event::WithdrawalRequested {
                account,
                asset,
                amount,
                reference,
            } => {
                let decision_id = EventId(format!("wd:{account}:{reference}:risk"));
                if let Some(recorded) = self.recorded.remove(&decision_id) {
                    // Decided before a crash: that decision stands.
                    self.fold(&recorded);
                    return (Vec::new(), Vec::new());
                }
                let events = self
                    .engine
                    .decide_withdrawal(*account, asset, *amount, reference)
                    .into_iter()
                    .map(|e| Envelope::new(at, e))
                    .collect();
                (events, Vec::new())
            }
            Event::CancelAfterTriggered { account, change } => {
                self.triggered.remove(&(*account, *change));
                // Each cancel goes on the log as the account's own would, so it is decided, sent
                // and answered like one.
                let cancels = self.engine.trigger_cancel_after(*account, *change);
                if !cancels.is_empty() {
                    tracing::info!(%account, orders = cancels.len(), "risk: dead man's switch cancels");
                }
                // After a crash, those already in the tail are not asked for again.
                let events = cancels
                    .into_iter()
                    .map(|e| Envelope::new(at, e))
                    .filter(|e| !self.recorded.contains_key(&e.id))
                    .collect();
                (events, Vec::new())
            }
            Event::InstrumentStatusSet {
                symbol,
                status,
                change,
                ..
            } => {
                self.fold(env);
                // Each partition passes its copy on, behind the orders it approved before it;
                // the book keeps the newest change and drops a copy it took (its source).
                let command = VenueCommand::SetStatus {
                    source,
                    symbol: symbol.clone(),
                    status: *status,
                    change: *change,
                };
                (Vec::new(), vec![command])
            }
            _ => {
                self.fold(env);
                (Vec::new(), Vec::new())
            }
        }
    }

    fn fold(&mut self, env: &Envelope) {
        if let Err(e) = self.engine.apply(env) {
            tracing::error!(error = %e, event = %env.id, "risk: event could not be applied");
        }
    }
}
