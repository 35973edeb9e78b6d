//! The order processor: consumes `orders`, applies each order's events in its own actor through
//! the state machine, folds balances with the domain's [`Ledger`], and persists orders, fills,
//! balances and its position in one store transaction, so an effect is never lost or doubled.
//!
//! Restart: the store holds the position; the ledger comes from a snapshot at or before it,
//! and the events between the two are folded into the ledger only.

pub mod actor;
mod cancel_afters;

use super::metrics::PipelineMetrics;
use super::stage::{self, Progress};
use super::Shutdown;
use crate::codec::{decode_event, LogNames};
use actor::Outcome;
use cancel_afters::CancelAfters;
use oms_domain::events::{Envelope, Event};
use oms_domain::ids::{AccountId, Asset, OrderId};
use oms_domain::ledger::Ledger;
use oms_domain::order::Order;
use oms_domain::state_machine::Applied;
use oms_ports::event_log::{ConsumerEvent, EventLog, TopicPartition};
use oms_ports::order_store::{
    Balance, DepositRecord, GlobalSwitch, InstrumentStatusRecord, OrderStore, Position, StoreBatch,
    WithdrawalRecord,
};
use oms_ports::{PortError, PortResult};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot};

/// An order's new state, published after it is persisted (for live private streams).
#[derive(Debug, Clone)]
pub struct OrderUpdate {
    pub order: Order,
    pub event: Arc<Envelope>,
}

pub struct ProcessorStage {
    pub log: Arc<dyn EventLog>,
    pub store: Arc<dyn OrderStore>,
    pub snapshot_every: u64,
    /// Longest a handled record waits for a snapshot of its partition ([`stage::SnapshotClock`]).
    pub snapshot_max_age: Duration,
    /// How long an ended order is remembered ([`super::ended_order_horizon`]).
    pub remember_ended: std::time::Duration,
    pub metrics: Arc<PipelineMetrics>,
    /// Persisted order updates, for subscribers in the same process.
    pub updates: broadcast::Sender<OrderUpdate>,
    pub names: LogNames,
    /// The account fees are credited to. Each partition's ledger holds only the fees of its
    /// own trades, so only a replica that owns every partition writes its balance, whatever
    /// event of a batch touched it (a fill, a deposit, a withdrawal).
    pub fee_account: AccountId,
}

struct Partition {
    ledger: Ledger,
    /// The store's position: offsets below it are already persisted.
    persisted: u64,
    snapshots: stage::SnapshotClock,
}

impl ProcessorStage {
    pub async fn run(self, shutdown: Shutdown) -> PortResult<()> {
        let mut consumer = self
            .log
            .subscribe(
                &self.names.processor_group,
                &[self.names.orders_topic.as_str()],
            )
            .await?;
        let mut parts: HashMap<u32, Partition> = HashMap::new();
        let mut actors: HashMap<OrderId, mpsc::UnboundedSender<actor::Message>> = HashMap::new();
        let mut attempt = 0;
        while !*shutdown.borrow() {
            let Some(polled) = stage::poll(&mut consumer, "processor", &mut attempt).await else {
                continue;
            };
            match polled {
                ConsumerEvent::Assigned(tps) => {
                    let stored = self.store.positions(&self.names.processor_group).await?;
                    for tp in tps {
                        let persisted = stored
                            .iter()
                            .find(|p| p.topic == tp.topic && p.partition == tp.partition)
                            .map(|p| p.next_offset)
                            .unwrap_or(0);
                        let (from, ledger) = self.restore_ledger(&tp, persisted).await?;
                        stage::check_replayable(
                            &self.log,
                            "processor",
                            &tp.topic,
                            tp.partition,
                            from,
                        )
                        .await?;
                        consumer.seek(&tp, from).await?;
                        tracing::info!(
                            partition = tp.partition,
                            from,
                            persisted,
                            ended_remembered = ledger.ended_remembered(),
                            "processor: partition restored"
                        );
                        parts.insert(
                            tp.partition,
                            Partition {
                                ledger,
                                persisted,
                                snapshots: stage::SnapshotClock::new(
                                    self.snapshot_every,
                                    self.snapshot_max_age,
                                ),
                            },
                        );
                    }
                }
                ConsumerEvent::Revoked(tps) => {
                    for tp in tps {
                        parts.remove(&tp.partition);
                    }
                    // Actors hold only persisted state; dropping them all is safe.
                    actors.clear();
                }
                ConsumerEvent::Records(records) if records.is_empty() => {
                    for (&partition, part) in parts.iter_mut() {
                        if part.snapshots.aged() {
                            self.snapshot(partition, part.persisted, part).await;
                        }
                    }
                }
                ConsumerEvent::Records(records) => {
                    self.process(&records, &mut parts, &mut actors, &mut consumer, &shutdown)
                        .await?;
                }
            }
        }
        Ok(())
    }

    async fn restore_ledger(
        &self,
        tp: &TopicPartition,
        persisted: u64,
    ) -> PortResult<(u64, Ledger)> {
        if let Some((offset, bytes)) = self
            .store
            .load_snapshot(&self.names.processor_snapshot(), tp.partition)
            .await?
        {
            if offset <= persisted {
                match serde_json::from_slice::<Ledger>(&bytes) {
                    Ok(mut ledger) => {
                        ledger.remember_ended_for(self.remember_ended);
                        return Ok((offset, ledger));
                    }
                    Err(e) => tracing::error!(error = %e, "processor: unreadable ledger snapshot"),
                }
            }
        }
        let mut ledger = Ledger::new();
        ledger.remember_ended_for(self.remember_ended);
        Ok((0, ledger))
    }

    async fn process(
        &self,
        records: &[oms_ports::event_log::Record],
        parts: &mut HashMap<u32, Partition>,
        actors: &mut HashMap<OrderId, mpsc::UnboundedSender<actor::Message>>,
        consumer: &mut Box<dyn oms_ports::event_log::Consumer>,
        shutdown: &Shutdown,
    ) -> PortResult<()> {
        let mut progress = Progress::default();
        let mut touched: BTreeSet<AccountId> = BTreeSet::new();
        let mut fills = Vec::new();
        let mut fee_accounts: BTreeSet<AccountId> = BTreeSet::new();
        let mut kill_switches: BTreeMap<AccountId, bool> = BTreeMap::new();
        let mut cancel_afters = CancelAfters::default();
        let mut withdrawals = Vec::new();
        let mut deposits = Vec::new();
        // The newest global switch of the batch. Its copies arrive through every partition in
        // any order, so the newest change wins, not the last one read.
        let mut global_switch: Option<GlobalSwitch> = None;
        // Operators' instrument statuses: the store keeps the newest change per symbol.
        let mut instrument_statuses = Vec::new();
        let mut pending: Vec<(OrderId, Arc<Envelope>, oneshot::Receiver<Outcome>)> = Vec::new();
        for rec in records {
            progress.advance(&rec.topic, rec.partition, rec.offset);
            let Some(part) = parts.get_mut(&rec.partition) else {
                continue;
            };
            let env = match decode_event(rec) {
                Ok(env) => env,
                Err(e) => {
                    tracing::error!(error = %e, "processor: skipping undecodable record");
                    continue;
                }
            };
            // An order issued before the ledger's horizon that it does not know may be a copy
            // of one it has forgotten: its actor reads the store first instead of starting it
            // anew (risk refuses it either way).
            let mut maybe_copy = false;
            if let Event::OrderCreated(o) = &env.event {
                // The same order again (an idempotent request resumed after a crash appends it
                // once more, same id): the first one stands. Until risk has decided it the
                // order's live actor ignores the repeat instead.
                if part.ledger.knows_order(o.order_id) {
                    continue;
                }
                maybe_copy = part.ledger.issued_before_horizon(o.order_id);
            }
            let applied = match part.ledger.apply(&env.event) {
                Ok(applied) => Some(applied),
                Err(e) => {
                    self.metrics.ledger_errors.inc();
                    tracing::error!(error = %e, event = %env.id, "processor: ledger refused event");
                    None
                }
            };
            if rec.offset < part.persisted {
                continue;
            }
            // A deposit is recorded when the ledger credits it: a repeat of its reference
            // credits nothing.
            if let (
                Some(Applied::Changed),
                Event::Deposit {
                    account,
                    asset,
                    amount,
                    reference,
                },
            ) = (applied, &env.event)
            {
                deposits.push(DepositRecord {
                    account: *account,
                    reference: reference.clone(),
                    asset: asset.clone(),
                    amount: *amount,
                    credited_at: env.at,
                });
            }
            part.snapshots.record();
            self.metrics.processor_events.inc();
            if let Some(account) = env.event.account() {
                touched.insert(account);
            }
            if let Event::KillSwitchSet { account, on, .. } = &env.event {
                kill_switches.insert(*account, *on);
            }
            cancel_afters.fold(&env.event);
            if let Event::WithdrawalDecided {
                account,
                asset,
                amount,
                reference,
                approved,
                reason,
            } = &env.event
            {
                withdrawals.push(WithdrawalRecord {
                    account: *account,
                    reference: reference.clone(),
                    asset: asset.clone(),
                    amount: *amount,
                    approved: *approved,
                    reason: *reason,
                    decided_at: env.at,
                });
            }
            if let Event::GlobalKillSwitchSet { on, change, .. } = &env.event {
                if global_switch.is_none_or(|g| *change >= g.change) {
                    global_switch = Some(GlobalSwitch {
                        change: *change,
                        on: *on,
                    });
                }
            }
            if let Event::InstrumentStatusSet {
                symbol,
                status,
                change,
                ..
            } = &env.event
            {
                instrument_statuses.push(InstrumentStatusRecord {
                    symbol: symbol.clone(),
                    status: *status,
                    change: *change,
                    set_at: env.at,
                });
            }
            if let Event::OrderFilled(f) = &env.event {
                touched.insert(f.fee_account);
                fee_accounts.insert(f.fee_account);
                fills.push(f.clone());
            }
            let (Some(order_id), Some(account)) = (env.event.order_id(), env.event.account())
            else {
                continue;
            };
            let is_new = matches!(env.event, Event::OrderCreated(_)) && !maybe_copy;
            let (reply, rx) = oneshot::channel();
            let mut msg = actor::Message {
                event: env.clone(),
                reply,
            };
            // An actor may have ended with its channel: start a fresh one and resend.
            loop {
                let tx = actors
                    .entry(order_id)
                    .or_insert_with(|| actor::spawn(account, order_id, is_new, self.store.clone()));
                match tx.send(msg) {
                    Ok(()) => break,
                    Err(mpsc::error::SendError(m)) => {
                        actors.remove(&order_id);
                        msg = m;
                    }
                }
            }
            pending.push((order_id, env, rx));
        }

        // Every change, in log order: the store takes each order's last, the private streams
        // each one (a fill per message, none lost when several land in one batch).
        let mut changes: Vec<(OrderId, Box<Order>, Arc<Envelope>)> = Vec::new();
        let mut failed = None;
        for (order_id, env, rx) in pending {
            match rx.await {
                Ok(Outcome::Changed(order)) => changes.push((order_id, order, env)),
                Ok(Outcome::Unchanged) => self.metrics.duplicates.inc(),
                Ok(Outcome::Illegal(illegal)) => {
                    self.metrics.illegal_transitions.inc();
                    tracing::error!(%illegal, event = %env.id, "processor: illegal transition not applied");
                }
                Ok(Outcome::Unknown) => {
                    self.metrics.unknown_orders.inc();
                    tracing::warn!(order = %order_id, event = %env.id, "processor: event for an unknown order");
                }
                Ok(Outcome::StoreFailed(e)) => failed = Some(e),
                Err(_) => failed = Some("order actor stopped".into()),
            }
        }
        if let Some(e) = failed {
            // The in-memory ledger has moved on; the stage restarts from the store and snapshot.
            return Err(PortError::Unavailable(format!("processor: {e}")));
        }

        let mut latest: HashMap<OrderId, &Order> = HashMap::new();
        for (order_id, order, _) in &changes {
            latest.insert(*order_id, order);
        }
        let positions = progress.positions();
        let mut batch = StoreBatch {
            orders: latest.into_values().cloned().collect(),
            fills,
            balances: Vec::new(),
            positions: positions
                .iter()
                .map(|(tp, next)| Position {
                    consumer: self.names.processor_group.clone(),
                    topic: tp.topic.clone(),
                    partition: tp.partition,
                    next_offset: *next,
                })
                .collect(),
            kill_switches: kill_switches.into_iter().collect(),
            global_kill_switch: global_switch,
            cancel_afters: cancel_afters.settings.into_iter().collect(),
            cancel_after_triggers: cancel_afters.triggers.into_iter().collect(),
            withdrawals,
            deposits,
            instrument_statuses,
        };
        // Fees reach the fee account from every partition; a replica that owns only some of
        // them knows only part of its balance and must not overwrite it.
        let owns_all = match self.log.partition_count(&self.names.orders_topic).await {
            Ok(n) => parts.len() as u32 >= n,
            Err(_) => false,
        };
        for account in &touched {
            if (*account == self.fee_account || fee_accounts.contains(account)) && !owns_all {
                continue;
            }
            let mut per_asset: BTreeMap<Asset, Balance> = BTreeMap::new();
            for part in parts.values() {
                for (asset, b) in part.ledger.balances(*account) {
                    let entry = per_asset.entry(asset.clone()).or_insert_with(|| Balance {
                        asset,
                        available: Default::default(),
                        reserved: Default::default(),
                    });
                    entry.available += b.available;
                    entry.reserved += b.reserved;
                }
            }
            batch
                .balances
                .extend(per_asset.into_values().map(|b| (*account, b)));
        }
        let mut attempt = 0;
        while let Err(e) = self.store.apply(batch.clone()).await {
            tracing::warn!(error = %e, "processor: store write failed, retrying");
            if *shutdown.borrow() {
                return Err(e);
            }
            stage::backoff(attempt).await;
            attempt += 1;
        }
        // The store's position is the one that counts; the log's is kept for lag monitoring.
        if let Err(e) = consumer.commit(&positions).await {
            tracing::warn!(error = %e, "processor: commit to the log failed");
        }
        for (tp, next) in &positions {
            if let Some(part) = parts.get_mut(&tp.partition) {
                part.persisted = part.persisted.max(*next);
                if part.snapshots.due() {
                    self.snapshot(tp.partition, *next, part).await;
                }
            }
        }
        for (order_id, order, event) in changes {
            if order.status.is_final() {
                actors.remove(&order_id);
            }
            if !event.event.shown_to_owner() {
                continue;
            }
            let _ = self.updates.send(OrderUpdate {
                order: *order,
                event,
            });
        }
        Ok(())
    }

    async fn snapshot(&self, partition: u32, next: u64, part: &mut Partition) {
        part.snapshots
            .save(
                &self.store,
                &self.names.processor_snapshot(),
                partition,
                next,
                &part.ledger,
            )
            .await;
    }
}
