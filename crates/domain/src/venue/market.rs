//! One symbol at the venue: its instrument, its book, and the redelivery guard.

use super::book::{BookEvent, BookOrder, BookOrderKind, OrderBook};
use super::command::Source;
use super::units::{ceil_units, floor_units, to_units};
use crate::events::{CancelReason, Event};
use crate::ids::{AccountId, OrderId, Timestamp};
use crate::instrument::{Instrument, StatusSet, TradingStatus};
use crate::order::{NewOrder, OrderType, RejectReason, Side};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Market {
    pub instrument: Instrument,
    pub book: OrderBook,
    /// The highest offset taken from each source partition, sorted by partition.
    offsets: Vec<(u32, u64)>,
    /// An operator's status, over the instrument's configured one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_set: Option<StatusSet>,
    /// Live BUY orders whose hold covers another fee rate than the instrument's largest now
    /// (the fees changed after risk approved them): order id → the rate their hold covers,
    /// which their fills pay at most. An order without an entry holds for the largest rate.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fee_caps: BTreeMap<u64, Decimal>,
}

impl Market {
    pub fn new(instrument: Instrument) -> Self {
        let book = OrderBook::new(instrument.self_trade_prevention);
        Market {
            instrument,
            book,
            offsets: Vec::new(),
            status_set: None,
            fee_caps: BTreeMap::new(),
        }
    }

    /// Records the fee rate a BUY's hold covers (`None`: not known, nothing changes): only a
    /// rate other than the instrument's largest needs remembering.
    pub fn hold_fee_cap(&mut self, order_id: u64, cap: Option<Decimal>) {
        match cap {
            Some(c) if c != self.instrument.max_fee_rate() => {
                self.fee_caps.insert(order_id, c);
            }
            Some(_) => {
                self.fee_caps.remove(&order_id);
            }
            None => {}
        }
    }

    /// The instrument's largest fee rate goes from `old` to `new`: the BUYs holding for `old`
    /// (those without an entry) keep it as their cap, and entries equal to `new` go.
    pub fn rate_changes(&mut self, old: Decimal, new: Decimal) {
        if old == new {
            return;
        }
        let ids: Vec<u64> = self.book.open_order_ids(Side::Buy).collect();
        for id in ids {
            self.fee_caps.entry(id).or_insert(old);
        }
        self.fee_caps.retain(|_, cap| *cap != new);
    }

    /// Forgets the fee caps of the orders that `raw` ended.
    pub fn forget_ended_fee_caps(&mut self, raw: &[BookEvent]) {
        if self.fee_caps.is_empty() {
            return;
        }
        for e in raw {
            match e {
                BookEvent::Filled(x) => {
                    for p in [&x.maker, &x.taker] {
                        if p.leaves == 0 {
                            self.fee_caps.remove(&p.order_id);
                        }
                    }
                }
                BookEvent::Canceled { order_id, .. }
                | BookEvent::Expired { order_id, .. }
                | BookEvent::Rejected { order_id, .. } => {
                    self.fee_caps.remove(order_id);
                }
                _ => {}
            }
        }
    }

    /// The trading status in force.
    pub fn status(&self) -> TradingStatus {
        StatusSet::effective(self.status_set, self.instrument.status)
    }

    /// The status in force, as market data publishes it.
    pub fn status_event(&self, at: Timestamp) -> Event {
        Event::TradingStatusChanged {
            symbol: self.instrument.symbol.clone(),
            status: self.status(),
            change: self.status_set.map(|s| s.change),
            at,
        }
    }

    /// Records a command's source; false when it was taken before (a redelivery).
    pub fn take_source(&mut self, src: Source) -> bool {
        match self.offsets.binary_search_by_key(&src.partition, |e| e.0) {
            Ok(at) => {
                let seen = &mut self.offsets[at].1;
                if src.offset <= *seen {
                    return false;
                }
                *seen = src.offset;
                true
            }
            Err(at) => {
                self.offsets.insert(at, (src.partition, src.offset));
                true
            }
        }
    }

    fn status_reject(&self) -> Option<RejectReason> {
        match self.status() {
            TradingStatus::Trading => None,
            TradingStatus::Halted => Some(RejectReason::InstrumentHalted),
            TradingStatus::CancelOnly => Some(RejectReason::InstrumentCancelOnly),
        }
    }

    pub fn submit(
        &mut self,
        now: Timestamp,
        o: &NewOrder,
        protection: Option<Decimal>,
        out: &mut Vec<BookEvent>,
    ) {
        match self.to_book_order(o, protection) {
            Ok(bo) => self.book.submit(now.0, &bo, out),
            Err(reason) => out.push(BookEvent::Rejected {
                order_id: o.order_id.0,
                account: o.account.0,
                reason,
            }),
        }
    }

    fn to_book_order(
        &self,
        o: &NewOrder,
        protection: Option<Decimal>,
    ) -> Result<BookOrder, RejectReason> {
        if let Some(reason) = self.status_reject() {
            return Err(reason);
        }
        let quantity = self.lots(o.quantity)?;
        let kind = match o.order_type {
            OrderType::Limit => BookOrderKind::Limit {
                price: self.ticks(o.price.ok_or(RejectReason::PriceRequired)?)?,
            },
            OrderType::StopLimit => BookOrderKind::StopLimit {
                price: self.ticks(o.price.ok_or(RejectReason::PriceRequired)?)?,
                stop: self.ticks(o.stop_price.ok_or(RejectReason::StopPriceRequired)?)?,
            },
            OrderType::Market => BookOrderKind::Market {
                limit: self.market_limit(o.side, protection),
            },
        };
        Ok(BookOrder {
            order_id: o.order_id.0,
            account: o.account.0,
            side: o.side,
            kind,
            quantity,
            time_in_force: o.time_in_force,
            expire_at: o.expire_at.map(|t| t.0),
            post_only: o.post_only,
        })
    }

    pub fn cancel(
        &mut self,
        account: AccountId,
        order_id: OrderId,
        reason: CancelReason,
        out: &mut Vec<BookEvent>,
    ) {
        // Cancels stay open in CANCEL_ONLY; a halt stops the clients' own. Those the system
        // sends for them (their dead man's switch, an operator) still go through: a switch
        // fires once, and its orders must not come back to life when trading resumes.
        if self.status() == TradingStatus::Halted && reason == CancelReason::UserRequested {
            out.push(BookEvent::CancelRejected {
                order_id: order_id.0,
                account: account.0,
                reason: RejectReason::InstrumentHalted,
            });
            return;
        }
        self.book.cancel(account.0, order_id.0, reason, out);
    }

    #[allow(clippy::too_many_arguments)]
    pub fn amend(
        &mut self,
        now: Timestamp,
        account: AccountId,
        order_id: OrderId,
        amend_id: u64,
        price: Option<Decimal>,
        quantity: Option<Decimal>,
        out: &mut Vec<BookEvent>,
    ) {
        let checked = (|| {
            if let Some(reason) = self.status_reject() {
                return Err(reason);
            }
            let price = price.map(|p| self.ticks(p)).transpose()?;
            let quantity = quantity.map(|q| self.lots(q)).transpose()?;
            Ok((price, quantity))
        })();
        match checked {
            Ok((price, quantity)) => self
                .book
                .amend(now.0, account.0, order_id.0, amend_id, price, quantity, out),
            Err(reason) => out.push(BookEvent::AmendRejected {
                order_id: order_id.0,
                account: account.0,
                amend_id,
                reason,
            }),
        }
    }

    /// A price in whole ticks; never rounded.
    fn ticks(&self, price: Decimal) -> Result<i64, RejectReason> {
        if price <= Decimal::ZERO {
            return Err(RejectReason::PriceOutOfBand);
        }
        to_units(price, self.instrument.tick_size).ok_or(RejectReason::PriceOffTick)
    }

    /// A quantity in whole lots; never rounded.
    fn lots(&self, quantity: Decimal) -> Result<u64, RejectReason> {
        if quantity <= Decimal::ZERO {
            return Err(RejectReason::QuantityBelowMin);
        }
        match to_units(quantity, self.instrument.step_size) {
            Some(lots) => Ok(lots as u64),
            None if self.instrument.is_on_step(quantity) => Err(RejectReason::QuantityAboveMax),
            None => Err(RejectReason::QuantityOffStep),
        }
    }

    /// The worst price a market order may fill at: the command's protection price, else the
    /// instrument's band around the reference price (last trade, else mid, else best opposite).
    fn market_limit(&self, side: Side, protection: Option<Decimal>) -> i64 {
        let tick = self.instrument.tick_size;
        let bound = protection.or_else(|| {
            let reference = self.reference_price(side)?;
            let band = self.instrument.price_band;
            Some(match side {
                Side::Buy => reference * (Decimal::ONE + band),
                Side::Sell => reference * (Decimal::ONE - band),
            })
        });
        match (side, bound) {
            (Side::Buy, Some(b)) => floor_units(b, tick),
            (Side::Sell, Some(b)) => ceil_units(b, tick),
            // No reference means the other side is empty: nothing could fill anyway.
            (Side::Buy, None) => i64::MIN,
            (Side::Sell, None) => i64::MAX,
        }
    }

    fn reference_price(&self, side: Side) -> Option<Decimal> {
        let tick = self.instrument.tick_size;
        let (bid, ask) = (self.book.best_bid(), self.book.best_ask());
        let ticks = |t: i64| Decimal::from(t) * tick;
        if let Some(last) = self.book.last_price() {
            return Some(ticks(last));
        }
        if let (Some(b), Some(a)) = (bid, ask) {
            return Some((ticks(b) + ticks(a)) / Decimal::TWO);
        }
        match side {
            Side::Buy => ask.map(ticks),
            Side::Sell => bid.map(ticks),
        }
    }
}
