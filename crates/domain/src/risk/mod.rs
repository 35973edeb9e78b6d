//! The pre-trade risk engine.
//!
//! Its state is a deterministic fold of the order-lifecycle events of its accounts (balances
//! through the shared [`Ledger`], live orders, order rate, the accounts' kill switches set by
//! `KillSwitchSet` and the global one by `GlobalKillSwitchSet`), plus the market references.
//! Each decision is applied to that state at once, so the next order of the same account sees
//! it, and the same decision folded again from the log changes nothing.

mod checks;
mod config;
mod decide;
mod rate;

pub use checks::{Band, MarketRef};
pub use config::{AccountLimits, RiskConfig};
pub use rate::TokenBucket;

use crate::events::{CancelReason, Envelope, Event};
use crate::ids::{AccountId, Asset, OrderId, Symbol, Timestamp};
use crate::instrument::{Instrument, StatusSet, TradingStatus};
use crate::ledger::{IdMap, Ledger, LedgerError};
use crate::order::{NewOrder, OrderType, RejectReason, Side};
use crate::state_machine::Applied;
use crate::venue::VenueCommand;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use thiserror::Error;

/// What a decision produced: the events to publish (in order) and the venue command to send.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Decision {
    pub events: Vec<Event>,
    pub command: Option<VenueCommand>,
}

impl Decision {
    /// True when the decision approved something and has a command for the venue.
    pub fn approved(&self) -> bool {
        self.command.is_some()
    }

    /// The reject code, when the decision refused.
    pub fn reject_reason(&self) -> Option<RejectReason> {
        self.events.iter().find_map(|e| match e {
            Event::RiskValidated { reason, .. } | Event::AmendValidated { reason, .. } => *reason,
            Event::CancelRejected { reason, .. } => Some(*reason),
            _ => None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RiskError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// An instrument and what the engine knows of its market.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Market {
    instrument: Instrument,
    #[serde(default)]
    reference: MarketRef,
    /// The reference price and its band, worked out when either changes rather than on every
    /// order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    priced: Option<Priced>,
    /// An operator's status (`InstrumentStatusSet`), over the instrument's configured one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status_set: Option<StatusSet>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Priced {
    reference: Decimal,
    band: Band,
}

impl Market {
    fn new(instrument: Instrument) -> Self {
        Market {
            instrument,
            reference: MarketRef::default(),
            priced: None,
            status_set: None,
        }
    }

    fn status(&self) -> TradingStatus {
        StatusSet::effective(self.status_set, self.instrument.status)
    }

    fn set_reference(&mut self, reference: MarketRef) {
        self.reference = reference;
        self.reprice();
    }

    fn set_instrument(&mut self, instrument: Instrument) {
        self.instrument = instrument;
        self.reprice();
    }

    fn reprice(&mut self) {
        self.priced = self.reference.reference().map(|r| Priced {
            reference: r,
            band: Band::around(r, self.instrument.price_band),
        });
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AccountState {
    bucket: TokenBucket,
    open_orders: u32,
    #[serde(default)]
    killed: bool,
}

/// What an order asked for, as far as amends need to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Terms {
    side: Side,
    order_type: OrderType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    price: Option<Decimal>,
    quantity: Decimal,
}

/// A risk-approved order that has not ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LiveOrder {
    account: AccountId,
    /// Index of its market; `None` for a symbol this engine has no instrument for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    market: Option<u32>,
    /// Unknown only when the approval was folded without its `OrderCreated`; such an order
    /// can be cancelled but not amended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    terms: Option<Terms>,
    filled: Decimal,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pending_amend: Option<u64>,
}

/// The pre-trade risk engine of one set of accounts (a partition of topic `orders`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RiskEngine {
    /// Markets in the order they became known; live orders refer to them by index.
    markets: Vec<Market>,
    by_symbol: BTreeMap<Symbol, u32>,
    config: RiskConfig,
    fee_account: AccountId,
    ledger: Ledger,
    accounts: IdMap<AccountId, AccountState>,
    orders: IdMap<OrderId, LiveOrder>,
    /// Orders folded from `OrderCreated` and not decided yet; their terms are needed when the
    /// decision is folded from the log rather than made here.
    awaiting: IdMap<OrderId, NewOrder>,
    global_kill: bool,
    /// The `change` of the global switch applied last. Its copies reach the partitions in any
    /// order (two operators' switches may be appended in different orders on different
    /// partitions), so every partition keeps the newest change and they all agree.
    #[serde(default)]
    global_change: u64,
    /// The armed dead man's switches: the `CancelAfterSet` in force per account.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    cancel_after: BTreeMap<AccountId, CancelAfter>,
}

/// An account's dead man's switch: the deadline of the `CancelAfterSet` with `change`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CancelAfter {
    pub deadline: Timestamp,
    pub change: u64,
}

impl RiskEngine {
    pub fn new(instruments: Vec<Instrument>, config: RiskConfig, fee_account: AccountId) -> Self {
        let mut engine = RiskEngine {
            markets: Vec::new(),
            by_symbol: BTreeMap::new(),
            config,
            fee_account,
            ledger: Ledger::new(),
            accounts: IdMap::default(),
            orders: IdMap::default(),
            awaiting: IdMap::default(),
            global_kill: false,
            global_change: 0,
            cancel_after: BTreeMap::new(),
        };
        for i in instruments {
            engine.set_instrument(i);
        }
        engine
    }

    fn market_index(&self, symbol: &Symbol) -> Option<u32> {
        self.by_symbol.get(symbol).copied()
    }

    fn market(&self, symbol: &Symbol) -> Option<&Market> {
        self.market_at(self.market_index(symbol))
    }

    fn market_at(&self, index: Option<u32>) -> Option<&Market> {
        index.and_then(|i| self.markets.get(i as usize))
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// See [`Ledger::remember_ended_for`]: the engine recognises a repeated `OrderCreated`
    /// by its ledger knowing the order.
    pub fn remember_ended_for(&mut self, horizon: std::time::Duration) {
        self.ledger.remember_ended_for(horizon);
    }

    pub fn config(&self) -> &RiskConfig {
        &self.config
    }

    /// The account that fills credit their fees to.
    pub fn fee_account(&self) -> AccountId {
        self.fee_account
    }

    pub fn instrument(&self, symbol: &Symbol) -> Option<&Instrument> {
        self.market(symbol).map(|m| &m.instrument)
    }

    /// Replaces an instrument's definition (a status change such as a halt), keeping its market
    /// reference; an unknown symbol is added.
    pub fn set_instrument(&mut self, instrument: Instrument) {
        match self.market_index(&instrument.symbol) {
            Some(i) => self.markets[i as usize].set_instrument(instrument),
            None => {
                let i = u32::try_from(self.markets.len()).expect("fewer than 2^32 instruments");
                self.by_symbol.insert(instrument.symbol.clone(), i);
                self.markets.push(Market::new(instrument));
            }
        }
    }

    /// Takes the configured instruments and limits over those of a restored snapshot, so that
    /// a changed configuration applies after a restart. Market references, operators'
    /// statuses and every account's state stay; an instrument no longer configured keeps its
    /// last definition (its live orders can still be cancelled).
    pub fn reconfigure(&mut self, instruments: &[Instrument], config: RiskConfig) {
        self.config = config;
        for i in instruments {
            self.set_instrument(i.clone());
        }
    }

    /// The trading status in force for a symbol.
    pub fn status(&self, symbol: &Symbol) -> Option<TradingStatus> {
        self.market(symbol).map(Market::status)
    }

    /// The live (approved, not ended) orders of an account.
    pub fn open_orders(&self, account: AccountId) -> u32 {
        self.accounts.get(&account).map_or(0, |a| a.open_orders)
    }

    /// True while the order is approved and has not ended.
    pub fn is_live(&self, order_id: OrderId) -> bool {
        self.orders.contains_key(&order_id)
    }

    /// The symbol of a live order (to rebuild its venue commands after a restart).
    pub fn symbol_of(&self, order_id: OrderId) -> Option<Symbol> {
        let o = self.orders.get(&order_id)?;
        self.market_at(o.market)
            .map(|m| m.instrument.symbol.clone())
    }

    pub fn market_ref(&self, symbol: &Symbol) -> Option<MarketRef> {
        self.market(symbol).map(|m| m.reference)
    }

    /// Market reference for price bands: last trade price and/or best bid/ask of a symbol.
    /// Each value replaces the one held (`None` clears it: an empty book side has no price).
    pub fn on_market(
        &mut self,
        symbol: &Symbol,
        last: Option<Decimal>,
        best_bid: Option<Decimal>,
        best_ask: Option<Decimal>,
    ) {
        if let Some(i) = self.market_index(symbol) {
            let m = &mut self.markets[i as usize];
            m.set_reference(MarketRef {
                last,
                best_bid,
                best_ask,
            });
        }
    }

    /// Stops new orders and amends of one account (`Some`) or of everyone (`None`). Cancels are
    /// always allowed: they only reduce risk.
    pub fn set_kill_switch(&mut self, account: Option<AccountId>, on: bool) {
        match account {
            None => self.global_kill = on,
            Some(a) => self.accounts.entry(a).or_default().killed = on,
        }
    }

    pub fn kill_switch(&self, account: Option<AccountId>) -> bool {
        match account {
            None => self.global_kill,
            Some(a) => self.accounts.get(&a).is_some_and(|s| s.killed),
        }
    }

    /// The account's armed dead man's switch, if any.
    pub fn cancel_after(&self, account: AccountId) -> Option<CancelAfter> {
        self.cancel_after.get(&account).copied()
    }

    /// The armed switches whose deadline is at or before `now`: (account, change) for a
    /// `CancelAfterTriggered` each.
    pub fn cancel_afters_due(&self, now: Timestamp) -> Vec<(AccountId, u64)> {
        self.cancel_after
            .iter()
            .filter(|(_, c)| c.deadline <= now)
            .map(|(a, c)| (*a, c.change))
            .collect()
    }

    /// Fires the switch set by `change` if it is still the account's newest: disarms it and
    /// returns a `CancelRequested` for each live order of the account placed by the deadline
    /// (its id carries the time it was issued), by order id. Orders placed after the deadline
    /// are left alone: the trigger may land well after it (risk behind, or restarting), and a
    /// client that came back and quoted again meanwhile keeps its new orders. A trigger behind
    /// a newer setting (the client refreshed in time) or a repeated one returns nothing.
    pub fn trigger_cancel_after(&mut self, account: AccountId, change: u64) -> Vec<Event> {
        let deadline = match self.cancel_after.get(&account) {
            Some(armed) if armed.change == change => armed.deadline,
            _ => return Vec::new(),
        };
        self.cancel_after.remove(&account);
        let mut live: Vec<OrderId> = self
            .orders
            .iter()
            .filter(|(id, o)| o.account == account && id.issued_at() <= deadline)
            .map(|(id, _)| *id)
            .collect();
        live.sort_unstable();
        live.into_iter()
            .map(|order_id| Event::CancelRequested {
                account,
                order_id,
                reason: Some(CancelReason::CancelAfter),
            })
            .collect()
    }

    /// Folds an order-lifecycle event (idempotent; own decisions already applied are skipped).
    ///
    /// A `RiskValidated` made elsewhere (or before a restart) also replays the rate limit at
    /// the envelope's time, so that time must be the `now` the decision was made at.
    pub fn apply(&mut self, env: &Envelope) -> Result<(), RiskError> {
        let event = &env.event;
        match event {
            Event::OrderCreated(o) => {
                if !self.ledger.knows_order(o.order_id) {
                    self.awaiting.insert(o.order_id, o.clone());
                }
            }
            Event::RiskValidated {
                account,
                order_id,
                symbol,
                approved,
                reason,
                ..
            } => {
                if self.ledger.knows_order(*order_id) {
                    return Ok(());
                }
                self.ledger.apply(event)?;
                let order = self.awaiting.remove(order_id);
                self.replay_rate(*account, env.at, *reason);
                if *approved {
                    let terms = order.as_ref().map(terms_of);
                    let market = self.market_index(symbol);
                    self.open(*account, *order_id, market, terms);
                }
            }
            Event::AmendValidated {
                order_id,
                amend_id,
                approved,
                ..
            } => {
                if self.ledger.apply(event)? == Applied::Changed && *approved {
                    if let Some(o) = self.orders.get_mut(order_id) {
                        o.pending_amend = Some(*amend_id);
                    }
                }
            }
            Event::OrderFilled(f) => {
                if self.ledger.apply(event)? == Applied::Changed {
                    if f.leaves_quantity.is_zero() {
                        self.close(f.order_id);
                    } else if let Some(o) = self.orders.get_mut(&f.order_id) {
                        o.filled += f.quantity;
                    }
                }
            }
            Event::OrderAmended {
                order_id,
                price,
                quantity,
                ..
            } => {
                if self.ledger.apply(event)? == Applied::Changed {
                    if let Some(o) = self.orders.get_mut(order_id) {
                        o.pending_amend = None;
                        if let Some(t) = &mut o.terms {
                            t.price = Some(*price);
                            t.quantity = *quantity;
                        }
                    }
                }
            }
            Event::AmendRejected { order_id, .. } => {
                if self.ledger.apply(event)? == Applied::Changed {
                    if let Some(o) = self.orders.get_mut(order_id) {
                        o.pending_amend = None;
                    }
                }
            }
            Event::OrderCanceled { order_id, .. }
            | Event::OrderExpired { order_id, .. }
            | Event::OrderRejected { order_id, .. } => {
                if self.ledger.apply(event)? == Applied::Changed {
                    self.awaiting.remove(order_id);
                    self.close(*order_id);
                }
            }
            Event::Deposit { .. } | Event::WithdrawalDecided { .. } => {
                self.ledger.apply(event)?;
            }
            Event::KillSwitchSet { account, on, .. } => self.set_kill_switch(Some(*account), *on),
            Event::GlobalKillSwitchSet { on, change, .. } => {
                if *change >= self.global_change {
                    self.global_change = *change;
                    self.set_kill_switch(None, *on);
                }
            }
            Event::InstrumentStatusSet {
                symbol,
                status,
                change,
                ..
            } => {
                if let Some(i) = self.market_index(symbol) {
                    let set = StatusSet {
                        status: *status,
                        change: *change,
                    };
                    set.replace(&mut self.markets[i as usize].status_set);
                }
            }
            Event::CancelAfterSet {
                account,
                deadline,
                change,
            } => match deadline {
                Some(deadline) => {
                    let armed = CancelAfter {
                        deadline: *deadline,
                        change: *change,
                    };
                    self.cancel_after.insert(*account, armed);
                }
                None => {
                    self.cancel_after.remove(account);
                }
            },
            Event::CancelAfterTriggered { account, change } => {
                self.trigger_cancel_after(*account, *change);
            }
            Event::CancelRequested { .. }
            | Event::WithdrawalRequested { .. }
            | Event::AmendRequested { .. }
            | Event::OrderAccepted { .. }
            | Event::CancelRejected { .. }
            | Event::Trade { .. }
            | Event::BookChanged { .. }
            | Event::TradingStatusChanged { .. } => {}
        }
        Ok(())
    }

    /// Decides a withdrawal where it lands in the account's partition: approved if the
    /// amount is available (funds held by live orders are not), else `INSUFFICIENT_BALANCE`.
    /// The decision is applied here and returned to be appended; a reference decided before
    /// gets none. Withdrawals pass the kill switches and rate limits: they are an operator's.
    pub fn decide_withdrawal(
        &mut self,
        account: AccountId,
        asset: &Asset,
        amount: Decimal,
        reference: &str,
    ) -> Vec<Event> {
        if self.ledger.knows_withdrawal(account, reference) {
            return Vec::new();
        }
        let decision = |approved: bool| Event::WithdrawalDecided {
            account,
            asset: asset.clone(),
            amount,
            reference: reference.to_owned(),
            approved,
            reason: (!approved).then_some(RejectReason::InsufficientBalance),
        };
        let available = self.ledger.balance(account, asset).available;
        let decided = decision(amount > Decimal::ZERO && available >= amount);
        if self.ledger.apply(&decided).is_ok() {
            return vec![decided];
        }
        // A refusal only records the reference, which cannot fail: every request is decided.
        let refused = decision(false);
        let _ = self.ledger.apply(&refused);
        vec![refused]
    }

    /// Spends the token a decision made elsewhere spent: every decision past the time check
    /// and the kill switches took one, except a rate-limit rejection.
    fn replay_rate(&mut self, account: AccountId, at: Timestamp, reason: Option<RejectReason>) {
        if matches!(
            reason,
            Some(
                RejectReason::OrderTimeOutOfRange
                    | RejectReason::GlobalKillSwitch
                    | RejectReason::AccountKillSwitch
            )
        ) {
            return;
        }
        let limits = self.config.limits(account, None);
        let bucket = &mut self.accounts.entry(account).or_default().bucket;
        if reason == Some(RejectReason::RateLimited) {
            bucket.refill(at, limits.orders_per_second, limits.burst);
        } else {
            bucket.take(at, limits.orders_per_second, limits.burst);
        }
    }

    fn open(
        &mut self,
        account: AccountId,
        order_id: OrderId,
        market: Option<u32>,
        terms: Option<Terms>,
    ) {
        self.orders.insert(
            order_id,
            LiveOrder {
                account,
                market,
                terms,
                filled: Decimal::ZERO,
                pending_amend: None,
            },
        );
        self.accounts.entry(account).or_default().open_orders += 1;
    }

    fn close(&mut self, order_id: OrderId) {
        if let Some(o) = self.orders.remove(&order_id) {
            if let Some(a) = self.accounts.get_mut(&o.account) {
                a.open_orders = a.open_orders.saturating_sub(1);
            }
        }
    }
}

fn terms_of(o: &NewOrder) -> Terms {
    Terms {
        side: o.side,
        order_type: o.order_type,
        price: o.price,
        quantity: o.quantity,
    }
}
