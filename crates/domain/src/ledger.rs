//! The ledger: balances per (account, asset), folded from order-lifecycle events.
//!
//! The risk engine and the order processor both fold the same events through this one type, so
//! they always agree on every balance. The fold is idempotent: a redelivered event changes
//! nothing. An event that would drive any balance below zero is a bug upstream; it is refused
//! whole with a [`LedgerError`] and leaves the ledger untouched.
//!
//! Reservation rules (see [`Reservation`]): an approved order moves its reservation from
//! `available` to `reserved`; each fill releases `quantity × per_unit` of it (never more than is
//! left) and settles the trade; when the order ends, whatever it still holds returns to
//! `available`.
//!
//! Duplicates: every report of the venue on an order comes after the order's risk decision
//! in the order's partition, so a report for an order the ledger holds nothing for is a copy
//! of one it already folded (the venue re-sends after a restart) and changes nothing. Ended
//! orders are remembered only to recognise a repeated `OrderCreated` or risk decision (an
//! idempotent request resumed after a crash appends its order again, with the same id, for as
//! long as its key is kept), and only for a horizon: see [`Ledger::remember_ended_for`].

use crate::events::{Event, Fill, Reservation};
use crate::ids::{AccountId, Asset, OrderId, TradeId};
use crate::order::{RejectReason, Side};
use crate::state_machine::Applied;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use thiserror::Error;

/// One account's holding of one asset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Balance {
    /// Free to be reserved by a new order.
    pub available: Decimal,
    /// Set aside for live orders (and for amends waiting on the venue).
    pub reserved: Decimal,
}

impl Balance {
    pub fn total(&self) -> Decimal {
        self.available + self.reserved
    }
}

/// An increase held for an approved amend until the venue applies or rejects it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingAmend {
    /// Moved from available to reserved when the amend was approved.
    pub hold: Decimal,
    /// The order's reservation per unit once the amend applies.
    pub per_unit: Decimal,
}

/// What a live order holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderHold {
    pub account: AccountId,
    /// The asset held: quote for a BUY, base for a SELL.
    pub asset: Asset,
    /// Still reserved for the unfilled part (pending amend holds not included).
    pub reserved_left: Decimal,
    pub per_unit: Decimal,
    /// The last fill applied; fills with a trade id at or below it are redeliveries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_trade_id: Option<TradeId>,
    /// Highest amend id validated, and highest one the venue answered: both only grow.
    #[serde(default)]
    pub last_amend_validated: u64,
    #[serde(default)]
    pub last_amend_done: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pending_amends: BTreeMap<u64, PendingAmend>,
}

impl OrderHold {
    /// Everything the order has reserved, including holds for pending amends.
    pub fn total_reserved(&self) -> Decimal {
        self.reserved_left
            + self
                .pending_amends
                .values()
                .map(|p| p.hold)
                .sum::<Decimal>()
    }

    /// What approving an amend to `new_per_unit` needing `amount` must hold now.
    ///
    /// The venue may fill the order at its old per-unit before it applies the amend. When the
    /// amend lowers the per-unit, each such fill releases more than the amended order would have
    /// needed for that unit, so the hold covers the worst case: the increase over what the
    /// current leaves are worth at the new per-unit (not only over `reserved_left`). With no
    /// fills in between, the excess returns to available when the amend applies.
    pub fn amend_hold(&self, amount: Decimal, new_per_unit: Decimal) -> Decimal {
        let floor = if new_per_unit < self.per_unit && !self.per_unit.is_zero() {
            self.reserved_left
                .min(self.reserved_left / self.per_unit * new_per_unit)
        } else {
            self.reserved_left
        };
        (amount - floor).max(Decimal::ZERO)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LedgerError {
    #[error("{account} would go negative in {asset}: available {available} + {available_delta}, reserved {reserved} + {reserved_delta}")]
    Negative {
        account: AccountId,
        asset: Asset,
        available: Decimal,
        available_delta: Decimal,
        reserved: Decimal,
        reserved_delta: Decimal,
    },
    #[error("{what} must be positive, got {amount}")]
    NonPositive { what: &'static str, amount: Decimal },
    #[error("order {order_id} holds {held} but the event is in {got}")]
    AssetMismatch {
        order_id: OrderId,
        held: Asset,
        got: Asset,
    },
    #[error("arithmetic overflow on {account} {asset}")]
    Overflow { account: AccountId, asset: Asset },
}

/// How the ended orders travel in a snapshot: a flat list `[id₀, account₀, id₁ − id₀,
/// account₁, …]` in order-id order. The set is the largest part of a busy ledger (every order
/// of one horizon), and as a JSON object keyed by id strings it cost about 25 bytes and a
/// string parse per order in every snapshot; ids are time-ordered, so the gaps are small
/// numbers. Snapshots written as an object still load.
mod ended_format {
    use super::IdMap;
    use crate::ids::{AccountId, OrderId};
    use serde::de::{self, MapAccess, SeqAccess, Visitor};
    use serde::ser::SerializeSeq;
    use serde::{Deserializer, Serializer};
    use std::fmt;

    pub fn serialize<S: Serializer>(
        ended: &IdMap<OrderId, AccountId>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let mut sorted: Vec<(u64, u64)> = ended.iter().map(|(o, a)| (o.0, a.0)).collect();
        sorted.sort_unstable();
        let mut seq = s.serialize_seq(Some(sorted.len() * 2))?;
        let mut previous = 0;
        for (id, account) in sorted {
            seq.serialize_element(&(id - previous))?;
            seq.serialize_element(&account)?;
            previous = id;
        }
        seq.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<IdMap<OrderId, AccountId>, D::Error> {
        d.deserialize_any(Ended)
    }

    struct Ended;

    impl<'de> Visitor<'de> for Ended {
        type Value = IdMap<OrderId, AccountId>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("ended orders as [gap, account, ...] or as {id: account}")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = IdMap::default();
            out.reserve(seq.size_hint().unwrap_or(0) / 2);
            let mut id: u64 = 0;
            while let Some(gap) = seq.next_element::<u64>()? {
                let account = seq
                    .next_element::<u64>()?
                    .ok_or_else(|| de::Error::custom("an ended order without its account"))?;
                id = id
                    .checked_add(gap)
                    .ok_or_else(|| de::Error::custom("ended order id out of range"))?;
                out.insert(OrderId(id), AccountId(account));
            }
            Ok(out)
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = IdMap::default();
            while let Some((order, account)) = map.next_entry::<OrderId, AccountId>()? {
                out.insert(order, account);
            }
            Ok(out)
        }
    }
}

/// A hash map with a fixed hasher: lookups by id stay O(1) however many orders and accounts
/// there are, and the same history always gives the same layout (and the same snapshot bytes).
pub(crate) type IdMap<K, V> = HashMap<K, V, FixedState>;
pub(crate) type FixedState = BuildHasherDefault<IdHasher>;

/// A multiply-rotate hash (the Fx hash) for keys that are mostly one `u64`: a few instructions
/// where SipHash takes a hundred, and the hottest maps are looked up ten times per decision.
/// Ids are assigned by the system, not picked by clients, so there is nothing to flood.
///
/// `finish` folds the high half down: a product's low bits depend only on the key's low bits,
/// and the map picks buckets by the low bits. Order ids carry the millisecond in their high
/// bits and a per-millisecond sequence, mostly 0 to a few, in their low ones, so without the
/// fold nearly all orders fell into a handful of bucket groups and every look-up slowed as the
/// live orders grew (the risk stage's and the ledgers' lookups doubled over a 60 s run).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct IdHasher(u64);

impl IdHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for IdHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 32)
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    #[inline]
    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }
}

/// Balances per (account, asset) and what each live order holds.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ledger {
    accounts: Balances,
    /// Live orders, inline: no allocation per order beyond the map's own.
    orders: IdMap<OrderId, OrderHold>,
    /// Orders that ended (or were refused by risk) and were issued at or after
    /// `forgotten_before_ms`, with their account. A repeated decision or `OrderCreated` for
    /// them changes nothing.
    #[serde(with = "ended_format")]
    ended: IdMap<OrderId, AccountId>,
    /// How long after an order's id was issued it is still remembered once ended, in ms;
    /// `None` remembers every ended order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ended_horizon_ms: Option<i64>,
    /// When the newest order decided was issued: the clock the horizon is counted on. Order
    /// ids carry it, so replaying the same events always forgets the same orders. Orders the
    /// risk engine refused for their time do not move it.
    #[serde(default)]
    newest_decided_ms: i64,
    /// Ended orders issued before this (ms since the Unix epoch) are forgotten.
    #[serde(default)]
    forgotten_before_ms: i64,
    deposits: HashSet<(AccountId, String), FixedState>,
    /// Withdrawals decided, approved or not, by (account, reference): a reference is decided
    /// once.
    #[serde(default)]
    withdrawals: HashSet<(AccountId, String), FixedState>,
}

impl Ledger {
    pub fn new() -> Self {
        Self::default()
    }

    /// Remember an ended order only until `horizon` has passed since its id was issued, on
    /// the clock of the newest order decided. Without this the ended orders grow with the
    /// whole history, in memory, in every snapshot and in the time to restore one.
    ///
    /// The horizon must outlast every way an order's id can reach the log again: an
    /// idempotent request resumed after a crash re-appends its `OrderCreated` (same id) at
    /// most as long after the id was issued as its key is kept, plus the clock skew between
    /// ingestion instances. An `OrderCreated` issued before the horizon that the ledger does
    /// not know may be such a copy ([`Ledger::issued_before_horizon`]): the risk engine
    /// refuses it rather than decide it a second time. Copies of the venue's reports need no
    /// horizon (see the module).
    pub fn remember_ended_for(&mut self, horizon: std::time::Duration) {
        self.ended_horizon_ms = Some(i64::try_from(horizon.as_millis()).unwrap_or(i64::MAX));
    }

    /// How many ended orders are remembered.
    pub fn ended_remembered(&self) -> usize {
        self.ended.len()
    }

    /// A zero balance for an account or asset never seen.
    pub fn balance(&self, account: AccountId, asset: &Asset) -> Balance {
        self.accounts.get(account, asset).unwrap_or_default()
    }

    /// Every asset the account has ever held.
    pub fn balances(&self, account: AccountId) -> BTreeMap<Asset, Balance> {
        self.accounts.of(account)
    }

    /// The accounts with a balance entry, in order.
    pub fn accounts(&self) -> impl Iterator<Item = AccountId> + '_ {
        self.accounts.accounts().into_iter()
    }

    /// Total (available + reserved) per asset over all accounts, the fee account included.
    pub fn totals(&self) -> BTreeMap<Asset, Decimal> {
        let mut out = BTreeMap::new();
        for (_, asset, b) in self.accounts.iter() {
            *out.entry(asset.clone()).or_insert(Decimal::ZERO) += b.total();
        }
        out
    }

    /// Everything a live order holds (pending amend holds included); `None` once it ended.
    pub fn order_reserved(&self, order_id: OrderId) -> Option<Decimal> {
        self.hold(order_id).map(OrderHold::total_reserved)
    }

    pub fn hold(&self, order_id: OrderId) -> Option<&OrderHold> {
        self.orders.get(&order_id)
    }

    /// The live orders and what they hold, in no particular order.
    pub fn holds(&self) -> impl Iterator<Item = (OrderId, &OrderHold)> + '_ {
        self.orders.iter().map(|(id, h)| (*id, h))
    }

    /// The account of an order that ended, if it did.
    pub fn finished_order(&self, order_id: OrderId) -> Option<AccountId> {
        self.ended.get(&order_id).copied()
    }

    /// True once a risk decision on the order has been folded and the order is live, or
    /// ended and still remembered (see [`Ledger::remember_ended_for`]).
    pub fn knows_order(&self, order_id: OrderId) -> bool {
        self.orders.contains_key(&order_id) || self.ended.contains_key(&order_id)
    }

    /// True if the order's id was issued before the horizon: had it ended, it would be
    /// forgotten, so an `OrderCreated` for it that the ledger does not know may be a copy.
    pub fn issued_before_horizon(&self, order_id: OrderId) -> bool {
        order_id.issued_at().millis() < self.forgotten_before_ms
    }

    fn hold_mut(&mut self, order_id: OrderId) -> Option<&mut OrderHold> {
        self.orders.get_mut(&order_id)
    }

    /// Folds one event. Returns whether it changed anything; a refused event changes nothing.
    pub fn apply(&mut self, event: &Event) -> Result<Applied, LedgerError> {
        match event {
            Event::Deposit {
                account,
                asset,
                amount,
                reference,
            } => self.deposit(*account, asset, *amount, reference),
            Event::WithdrawalDecided {
                account,
                asset,
                amount,
                reference,
                approved,
                ..
            } => self.withdraw(*account, asset, *amount, reference, *approved),
            Event::RiskValidated {
                account,
                order_id,
                approved,
                reason,
                reservation,
                ..
            } => match (approved, reservation) {
                (true, Some(r)) => self.reserve(*account, *order_id, r),
                _ => Ok(self.refuse(
                    *account,
                    *order_id,
                    *reason != Some(RejectReason::OrderTimeOutOfRange),
                )),
            },
            Event::OrderFilled(fill) => self.fill(fill),
            Event::AmendValidated {
                order_id,
                amend_id,
                approved,
                reservation,
                ..
            } => self.amend_validated(*order_id, *amend_id, *approved, reservation.as_ref()),
            Event::OrderAmended {
                order_id,
                amend_id,
                leaves_quantity,
                ..
            } => self.amended(*order_id, *amend_id, *leaves_quantity),
            Event::AmendRejected {
                order_id, amend_id, ..
            } => self.amend_rejected(*order_id, *amend_id),
            Event::OrderCanceled {
                account, order_id, ..
            }
            | Event::OrderExpired {
                account, order_id, ..
            }
            | Event::OrderRejected {
                account, order_id, ..
            } => self.finish(*account, *order_id),
            Event::OrderCreated(_)
            | Event::WithdrawalRequested { .. }
            | Event::KillSwitchSet { .. }
            | Event::GlobalKillSwitchSet { .. }
            | Event::InstrumentStatusSet { .. }
            | Event::CancelAfterSet { .. }
            | Event::CancelAfterTriggered { .. }
            | Event::CancelRequested { .. }
            | Event::AmendRequested { .. }
            | Event::OrderAccepted { .. }
            | Event::CancelRejected { .. }
            | Event::Trade { .. }
            | Event::BookChanged { .. }
            | Event::TradingStatusChanged { .. } => Ok(Applied::Unchanged),
        }
    }

    fn deposit(
        &mut self,
        account: AccountId,
        asset: &Asset,
        amount: Decimal,
        reference: &str,
    ) -> Result<Applied, LedgerError> {
        if self.deposits.contains(&(account, reference.to_owned())) {
            return Ok(Applied::Unchanged);
        }
        positive("deposit", amount)?;
        let mut plan = Plan::default();
        plan.add(account, asset, amount, Decimal::ZERO);
        commit(&mut self.accounts, &plan)?;
        self.deposits.insert((account, reference.to_owned()));
        Ok(Applied::Changed)
    }

    /// Whether a withdrawal of `account` with `reference` was decided.
    pub fn knows_withdrawal(&self, account: AccountId, reference: &str) -> bool {
        self.withdrawals.contains(&(account, reference.to_owned()))
    }

    /// A withdrawal decided: approved, the amount leaves the available balance (refused if it
    /// is not there, and the decision is not recorded). A reference is decided once.
    fn withdraw(
        &mut self,
        account: AccountId,
        asset: &Asset,
        amount: Decimal,
        reference: &str,
        approved: bool,
    ) -> Result<Applied, LedgerError> {
        if self.knows_withdrawal(account, reference) {
            return Ok(Applied::Unchanged);
        }
        if approved {
            positive("withdrawal", amount)?;
            let mut plan = Plan::default();
            plan.add(account, asset, -amount, Decimal::ZERO);
            commit(&mut self.accounts, &plan)?;
        }
        self.withdrawals.insert((account, reference.to_owned()));
        Ok(Applied::Changed)
    }

    fn reserve(
        &mut self,
        account: AccountId,
        order_id: OrderId,
        r: &Reservation,
    ) -> Result<Applied, LedgerError> {
        // Only what is remembered: the risk engine decides an order once, so a decision for
        // an order issued before the horizon is not a copy (and a ledger with a shorter
        // horizon than the engine's still folds it).
        if self.ended.contains_key(&order_id) {
            return Ok(Applied::Unchanged);
        }
        let Entry::Vacant(slot) = self.orders.entry(order_id) else {
            return Ok(Applied::Unchanged);
        };
        if r.amount.is_sign_negative() {
            return Err(LedgerError::NonPositive {
                what: "reservation",
                amount: r.amount,
            });
        }
        let mut plan = Plan::default();
        plan.add(account, &r.asset, -r.amount, r.amount);
        commit(&mut self.accounts, &plan)?;
        slot.insert(OrderHold {
            account,
            asset: r.asset.clone(),
            reserved_left: r.amount,
            per_unit: r.per_unit,
            last_trade_id: None,
            last_amend_validated: 0,
            last_amend_done: 0,
            pending_amends: BTreeMap::new(),
        });
        self.decided(order_id);
        Ok(Applied::Changed)
    }

    /// A risk rejection: nothing was reserved, but the order is done. One refused for its
    /// time leaves the clock alone: its id is what the engine did not trust.
    fn refuse(&mut self, account: AccountId, order_id: OrderId, moves_clock: bool) -> Applied {
        if self.knows_order(order_id) {
            return Applied::Unchanged;
        }
        if moves_clock {
            self.decided(order_id);
        }
        self.remember_ended(order_id, account);
        Applied::Changed
    }

    /// Moves the clock of forgetting to the newest order decided, and forgets what fell
    /// behind the horizon: in steps of a sixteenth of it, so that the whole set is walked
    /// rarely.
    fn decided(&mut self, order_id: OrderId) {
        let Some(horizon) = self.ended_horizon_ms else {
            return;
        };
        let issued = order_id.issued_at().millis();
        if issued <= self.newest_decided_ms {
            return;
        }
        self.newest_decided_ms = issued;
        let cutoff = issued.saturating_sub(horizon);
        let step = (horizon / 16).max(1);
        if cutoff >= self.forgotten_before_ms.saturating_add(step) {
            self.forgotten_before_ms = cutoff;
            self.ended.retain(|id, _| id.issued_at().millis() >= cutoff);
        }
    }

    fn remember_ended(&mut self, order_id: OrderId, account: AccountId) {
        if !self.issued_before_horizon(order_id) {
            self.ended.insert(order_id, account);
        }
    }

    fn fill(&mut self, f: &Fill) -> Result<Applied, LedgerError> {
        // Not live: a copy of a fill of an order that ended (see the module).
        let Some(h) = self.orders.get(&f.order_id) else {
            return Ok(Applied::Unchanged);
        };
        if h.last_trade_id.is_some_and(|t| f.trade_id <= t) {
            return Ok(Applied::Unchanged);
        }
        let traded = if f.side == Side::Buy {
            &f.quote
        } else {
            &f.base
        };
        if &h.asset != traded {
            return Err(LedgerError::AssetMismatch {
                order_id: f.order_id,
                held: h.asset.clone(),
                got: traded.clone(),
            });
        }
        let (reserved_left, per_unit, pending) = (
            h.reserved_left,
            h.per_unit,
            h.total_reserved() - h.reserved_left,
        );
        let ends = f.leaves_quantity.is_zero();
        let notional = f.price * f.quantity;
        let mut plan = Plan::default();
        let release = match f.side {
            Side::Buy => {
                let release = (f.quantity * per_unit).min(reserved_left);
                // Price improvement and a fee below the reserved maximum return to available.
                plan.add(f.account, &f.quote, release - notional - f.fee, -release);
                plan.add(f.account, &f.base, f.quantity, Decimal::ZERO);
                release
            }
            Side::Sell => {
                let release = f.quantity.min(reserved_left);
                plan.add(f.account, &f.base, release - f.quantity, -release);
                plan.add(f.account, &f.quote, notional - f.fee, Decimal::ZERO);
                release
            }
        };
        plan.add(f.fee_account, &f.quote, f.fee, Decimal::ZERO);
        let left = reserved_left - release;
        if ends {
            let held = if f.side == Side::Buy {
                &f.quote
            } else {
                &f.base
            };
            plan.add(f.account, held, left + pending, -(left + pending));
        }
        commit(&mut self.accounts, &plan)?;
        if ends {
            self.orders.remove(&f.order_id);
            self.remember_ended(f.order_id, f.account);
        } else {
            let h = self.hold_mut(f.order_id).expect("checked above");
            h.reserved_left = left;
            h.last_trade_id = Some(f.trade_id);
        }
        Ok(Applied::Changed)
    }

    fn amend_validated(
        &mut self,
        order_id: OrderId,
        amend_id: u64,
        approved: bool,
        reservation: Option<&Reservation>,
    ) -> Result<Applied, LedgerError> {
        let Some(h) = self.orders.get(&order_id) else {
            return Ok(Applied::Unchanged);
        };
        if amend_id <= h.last_amend_validated {
            return Ok(Applied::Unchanged);
        }
        let account = h.account;
        let pending = match (approved, reservation) {
            (true, Some(r)) => {
                if r.asset != h.asset {
                    return Err(LedgerError::AssetMismatch {
                        order_id,
                        held: h.asset.clone(),
                        got: r.asset.clone(),
                    });
                }
                let hold = h.amend_hold(r.amount, r.per_unit);
                let mut plan = Plan::default();
                plan.add(account, &r.asset, -hold, hold);
                commit(&mut self.accounts, &plan)?;
                Some(PendingAmend {
                    hold,
                    per_unit: r.per_unit,
                })
            }
            _ => None,
        };
        let h = self.hold_mut(order_id).expect("checked above");
        h.last_amend_validated = amend_id;
        if let Some(p) = pending {
            h.pending_amends.insert(amend_id, p);
        }
        Ok(Applied::Changed)
    }

    fn amended(
        &mut self,
        order_id: OrderId,
        amend_id: u64,
        leaves: Decimal,
    ) -> Result<Applied, LedgerError> {
        let Some(h) = self.orders.get(&order_id) else {
            return Ok(Applied::Unchanged);
        };
        if amend_id <= h.last_amend_done {
            return Ok(Applied::Unchanged);
        }
        let p = h
            .pending_amends
            .get(&amend_id)
            .copied()
            .unwrap_or(PendingAmend {
                hold: Decimal::ZERO,
                per_unit: h.per_unit,
            });
        let target = leaves * p.per_unit;
        let excess = h.reserved_left + p.hold - target;
        let mut plan = Plan::default();
        plan.add(h.account, &h.asset, excess, -excess);
        commit(&mut self.accounts, &plan)?;
        let h = self.hold_mut(order_id).expect("checked above");
        h.pending_amends.remove(&amend_id);
        h.reserved_left = target;
        h.per_unit = p.per_unit;
        h.last_amend_done = amend_id;
        Ok(Applied::Changed)
    }

    fn amend_rejected(&mut self, order_id: OrderId, amend_id: u64) -> Result<Applied, LedgerError> {
        let Some(h) = self.orders.get(&order_id) else {
            return Ok(Applied::Unchanged);
        };
        if amend_id <= h.last_amend_done {
            return Ok(Applied::Unchanged);
        }
        let hold = h
            .pending_amends
            .get(&amend_id)
            .map_or(Decimal::ZERO, |p| p.hold);
        let mut plan = Plan::default();
        plan.add(h.account, &h.asset, hold, -hold);
        commit(&mut self.accounts, &plan)?;
        let h = self.hold_mut(order_id).expect("checked above");
        h.pending_amends.remove(&amend_id);
        h.last_amend_done = amend_id;
        Ok(Applied::Changed)
    }

    /// The order ended: everything it still holds returns to available. Not live: a copy
    /// of the end of an order that ended (see the module).
    fn finish(&mut self, account: AccountId, order_id: OrderId) -> Result<Applied, LedgerError> {
        let Some(h) = self.orders.get(&order_id) else {
            return Ok(Applied::Unchanged);
        };
        let all = h.total_reserved();
        let mut plan = Plan::default();
        plan.add(h.account, &h.asset, all, -all);
        commit(&mut self.accounts, &plan)?;
        self.orders.remove(&order_id);
        self.remember_ended(order_id, account);
        Ok(Applied::Changed)
    }
}

/// Every (account, asset) balance in one flat map keyed by the account and an interned asset
/// number: a balance costs one lookup (and at most one cache miss), where a map per account
/// costs two or three. Serialised, and compared, as account → asset → balance.
#[derive(Debug, Clone, Default)]
struct Balances {
    assets: Vec<Asset>,
    asset_ids: HashMap<Asset, u32, FixedState>,
    map: IdMap<(AccountId, u32), Balance>,
}

type BalancesRepr = BTreeMap<AccountId, BTreeMap<Asset, Balance>>;

impl Balances {
    fn get(&self, account: AccountId, asset: &Asset) -> Option<Balance> {
        let id = *self.asset_ids.get(asset)?;
        self.map.get(&(account, id)).copied()
    }

    fn get_mut(&mut self, account: AccountId, asset: &Asset) -> Option<&mut Balance> {
        let id = *self.asset_ids.get(asset)?;
        self.map.get_mut(&(account, id))
    }

    fn set(&mut self, account: AccountId, asset: &Asset, balance: Balance) {
        let id = match self.asset_ids.get(asset) {
            Some(id) => *id,
            None => {
                let id = u32::try_from(self.assets.len()).expect("fewer than 2^32 assets");
                self.assets.push(asset.clone());
                self.asset_ids.insert(asset.clone(), id);
                id
            }
        };
        self.map.insert((account, id), balance);
    }

    fn of(&self, account: AccountId) -> BTreeMap<Asset, Balance> {
        self.assets
            .iter()
            .enumerate()
            .filter_map(|(id, a)| {
                let b = self.map.get(&(account, id as u32))?;
                Some((a.clone(), *b))
            })
            .collect()
    }

    fn accounts(&self) -> BTreeSet<AccountId> {
        self.map.keys().map(|(account, _)| *account).collect()
    }

    fn iter(&self) -> impl Iterator<Item = (AccountId, &Asset, Balance)> + '_ {
        self.map
            .iter()
            .map(|((account, id), b)| (*account, &self.assets[*id as usize], *b))
    }

    fn repr(&self) -> BalancesRepr {
        let mut out = BalancesRepr::new();
        for (account, asset, b) in self.iter() {
            out.entry(account).or_default().insert(asset.clone(), b);
        }
        out
    }
}

impl PartialEq for Balances {
    fn eq(&self, other: &Self) -> bool {
        self.map.len() == other.map.len()
            && self
                .iter()
                .all(|(account, asset, b)| other.get(account, asset) == Some(b))
    }
}

impl Eq for Balances {}

impl Serialize for Balances {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.repr().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Balances {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let repr = BalancesRepr::deserialize(d)?;
        let mut out = Balances::default();
        for (account, assets) in repr {
            for (asset, b) in assets {
                out.set(account, &asset, b);
            }
        }
        Ok(out)
    }
}

/// Checks every change of a plan, then applies them all, or none.
fn commit(accounts: &mut Balances, plan: &Plan<'_>) -> Result<(), LedgerError> {
    if let [Some(d), None, ..] = &plan.slots {
        // One balance (a reservation or a release): check and write through a single lookup.
        if let Some(b) = accounts.get_mut(d.account, d.asset) {
            *b = moved(*b, d)?;
            return Ok(());
        }
    }
    let mut next = [Balance::default(); PLAN_SLOTS];
    for (i, d) in plan.deltas().enumerate() {
        let b = accounts.get(d.account, d.asset).unwrap_or_default();
        next[i] = moved(b, d)?;
    }
    for (i, d) in plan.deltas().enumerate() {
        if d.available.is_zero() && d.reserved.is_zero() {
            continue;
        }
        accounts.set(d.account, d.asset, next[i]);
    }
    Ok(())
}

/// `a + b` if it can be held exactly. A decimal holds 28 or so digits: past them `checked_add`
/// rounds rather than failing (10^12 + 10^-18 gives 10^12), which would lose money silently.
/// An exact sum keeps the larger of the two scales (the operands are aligned to it); a rounded
/// one has fewer decimals.
fn exact_sum(a: Decimal, b: Decimal) -> Option<Decimal> {
    let sum = a.checked_add(b)?;
    // Adding zero returns the other operand as it is, whatever the zero's scale.
    let exact = a.is_zero() || b.is_zero() || sum.scale() >= a.scale().max(b.scale());
    exact.then_some(sum)
}

/// A balance after a change, unless the change would take it below zero.
fn moved(b: Balance, d: &Delta<'_>) -> Result<Balance, LedgerError> {
    let overflow = || LedgerError::Overflow {
        account: d.account,
        asset: d.asset.clone(),
    };
    let n = Balance {
        available: exact_sum(b.available, d.available).ok_or_else(overflow)?,
        reserved: exact_sum(b.reserved, d.reserved).ok_or_else(overflow)?,
    };
    if n.available < Decimal::ZERO || n.reserved < Decimal::ZERO {
        return Err(LedgerError::Negative {
            account: d.account,
            asset: d.asset.clone(),
            available: b.available,
            available_delta: d.available,
            reserved: b.reserved,
            reserved_delta: d.reserved,
        });
    }
    Ok(n)
}

fn positive(what: &'static str, amount: Decimal) -> Result<(), LedgerError> {
    if amount > Decimal::ZERO {
        Ok(())
    } else {
        Err(LedgerError::NonPositive { what, amount })
    }
}

const PLAN_SLOTS: usize = 4;

#[derive(Clone, Copy)]
struct Delta<'a> {
    account: AccountId,
    asset: &'a Asset,
    available: Decimal,
    reserved: Decimal,
}

/// The balance changes one event makes, merged per (account, asset). No event touches more
/// than four balances, so this lives on the stack.
#[derive(Default)]
struct Plan<'a> {
    slots: [Option<Delta<'a>>; PLAN_SLOTS],
}

impl<'a> Plan<'a> {
    fn add(&mut self, account: AccountId, asset: &'a Asset, available: Decimal, reserved: Decimal) {
        for slot in &mut self.slots {
            match slot {
                Some(d) if d.account == account && d.asset == asset => {
                    d.available += available;
                    d.reserved += reserved;
                    return;
                }
                Some(_) => {}
                None => {
                    *slot = Some(Delta {
                        account,
                        asset,
                        available,
                        reserved,
                    });
                    return;
                }
            }
        }
        unreachable!("an event touches at most {PLAN_SLOTS} balances");
    }

    fn deltas(&self) -> impl Iterator<Item = &Delta<'a>> {
        self.slots.iter().map_while(Option::as_ref)
    }
}

#[cfg(test)]
mod exact_sum_tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn a_sum_that_would_be_rounded_is_refused() {
        assert_eq!(
            exact_sum(d("1000000000000"), d("0.000000000000000001")),
            None
        );
        assert_eq!(
            exact_sum(d("999999999999.999999999999999"), d("0.000000000000000001")),
            None
        );
        assert_eq!(exact_sum(Decimal::MAX, d("1")), None);
        assert_eq!(exact_sum(d("1.10"), d("2.205")), Some(d("3.305")));
        assert_eq!(exact_sum(d("-5"), d("5.00")), Some(d("0.00")));
        assert_eq!(
            exact_sum(d("899800.000"), d("0.0000")),
            Some(d("899800.000"))
        );
        assert_eq!(exact_sum(d("0.0000"), d("12.5")), Some(d("12.5")));
        assert_eq!(
            exact_sum(d("1000000000000"), d("0.000000000001")),
            Some(d("1000000000000.000000000001"))
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn order_ids_spread_over_the_low_bits_of_their_hash() {
        // Ids as ingestion makes them: millisecond << 22 | instance << 12 | sequence, with a
        // few orders per millisecond.
        let ids = (0..2_000u64).flat_map(|ms| {
            (0..5u64).map(move |seq| OrderId(((1_000_000 + ms) << 22) | (1 << 12) | seq))
        });
        let buckets: HashSet<u64> = ids
            .map(|id| FixedState::default().hash_one(id) & 0xFFFF)
            .collect();
        // 10,000 keys thrown at 65,536 buckets land in about 9,270 of them.
        assert!(buckets.len() > 8_000, "{} buckets used", buckets.len());
    }
}
