//! The matching core of one symbol: a price-time-priority limit order book in integer ticks
//! and lots, with stops, time in force, post-only, GTD expiry and self-trade prevention.
//!
//! It knows nothing of decimals, symbols or the event log: the venue converts at the
//! boundary and turns the [`BookEvent`]s pushed here into domain events.

mod id_map;
mod ladder;
mod matching;
mod slab;
mod stops;

use crate::events::{CancelReason, ExpireReason};
use crate::instrument::SelfTradePrevention;
use crate::order::{RejectReason, Side, TimeInForce};
use id_map::IdMap;
use ladder::Ladder;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use slab::{Aux, Slab, Slot, SlotState, Tif};
use std::collections::BTreeSet;

/// An order as the book takes it: prices in ticks, quantities in lots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BookOrder {
    pub order_id: u64,
    pub account: u64,
    pub side: Side,
    pub kind: BookOrderKind,
    pub quantity: u64,
    pub time_in_force: TimeInForce,
    /// Epoch milliseconds; required for GTD.
    pub expire_at: Option<i64>,
    pub post_only: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookOrderKind {
    Limit {
        price: i64,
    },
    /// Fills at prices no worse than `limit` (BUY at or below, SELL at or above).
    Market {
        limit: i64,
    },
    StopLimit {
        price: i64,
        stop: i64,
    },
}

/// One side of an execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FillParty {
    pub order_id: u64,
    pub account: u64,
    pub cumulative: u64,
    pub leaves: u64,
}

/// One trade between a resting maker and an incoming taker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Execution {
    pub trade_id: u64,
    pub price: i64,
    pub quantity: u64,
    pub taker_side: Side,
    pub maker: FillParty,
    pub taker: FillParty,
}

/// What the book did, in order. Prices in ticks, quantities in lots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookEvent {
    Accepted {
        order_id: u64,
        account: u64,
    },
    Rejected {
        order_id: u64,
        account: u64,
        reason: RejectReason,
    },
    Filled(Execution),
    Canceled {
        order_id: u64,
        account: u64,
        reason: CancelReason,
        leaves: u64,
    },
    Expired {
        order_id: u64,
        account: u64,
        reason: ExpireReason,
        leaves: u64,
    },
    Amended {
        order_id: u64,
        account: u64,
        amend_id: u64,
        price: i64,
        quantity: u64,
        leaves: u64,
        kept_priority: bool,
    },
    AmendRejected {
        order_id: u64,
        account: u64,
        amend_id: u64,
        reason: RejectReason,
    },
    CancelRejected {
        order_id: u64,
        account: u64,
        reason: RejectReason,
    },
    /// A price level's new total (0: the level is gone); `seq` grows by one per change.
    LevelChanged {
        seq: u64,
        side: Side,
        price: i64,
        quantity: u64,
    },
}

/// The orders of a book: slab, id index and GTD expiry queue, kept consistent together.
#[derive(Debug, Clone, Default)]
struct Orders {
    slab: Slab,
    /// Resting and parked orders only: orders that a cancel or amend can still reach.
    ids: IdMap,
    /// (expire_at, order id) of live GTD orders; expiry runs in this order.
    expiries: BTreeSet<(i64, u64)>,
}

impl Orders {
    /// Forgets an order that is done (filled, cancelled, expired) and frees its slot.
    fn finish(&mut self, i: u32) {
        let s = *self.slab.get(i);
        // A working order may or may not be indexed (an amended or triggered one is).
        self.ids.remove(&s.id);
        if s.tif == Tif::Gtd {
            self.expiries.remove(&(self.slab.aux(i).expire_at, s.id));
        }
        self.slab.release(i);
    }

    /// Makes a resting or parked order reachable by id (and by expiry, for GTD).
    fn index(&mut self, i: u32) {
        let s = self.slab.get(i);
        self.ids.insert(s.id, i);
        if s.tif == Tif::Gtd {
            self.expiries.insert((self.slab.aux(i).expire_at, s.id));
        }
    }
}

/// A price-time-priority order book for one symbol.
#[derive(Debug, Clone)]
pub struct OrderBook {
    orders: Orders,
    /// [bids, asks].
    ladders: [Ladder; 2],
    /// Parked BUY stops by (stop, seq, slot): the lowest stop triggers first as prices rise.
    buy_stops: BTreeSet<(i64, u64, u32)>,
    /// Parked SELL stops by (-stop, seq, slot): the highest stop triggers first as prices fall.
    sell_stops: BTreeSet<(i64, u64, u32)>,
    stp: SelfTradePrevention,
    next_seq: u64,
    last_trade_id: u64,
    book_seq: u64,
    last_price: Option<i64>,
}

#[inline]
fn side_index(side: Side) -> usize {
    match side {
        Side::Buy => 0,
        Side::Sell => 1,
    }
}

/// Whether a taker on `side` with `limit` may trade against a maker at `maker_price`.
#[inline]
fn crosses(side: Side, limit: i64, maker_price: i64) -> bool {
    match side {
        Side::Buy => maker_price <= limit,
        Side::Sell => maker_price >= limit,
    }
}

impl OrderBook {
    pub fn new(stp: SelfTradePrevention) -> Self {
        OrderBook {
            orders: Orders::default(),
            ladders: [Ladder::new(Side::Buy), Ladder::new(Side::Sell)],
            buy_stops: BTreeSet::new(),
            sell_stops: BTreeSet::new(),
            stp,
            // From 1: a zero `seq` marks an unused auxiliary slot part.
            next_seq: 1,
            last_trade_id: 0,
            book_seq: 0,
            last_price: None,
        }
    }

    /// Pre-sizes the order slab and id index so that a book of this many orders never grows.
    pub fn with_capacity(stp: SelfTradePrevention, orders: usize) -> Self {
        let mut book = OrderBook::new(stp);
        book.orders.slab.reserve(orders);
        book.orders.ids.reserve(orders);
        book
    }

    pub fn set_self_trade_prevention(&mut self, stp: SelfTradePrevention) {
        self.stp = stp;
    }

    pub fn best_bid(&self) -> Option<i64> {
        self.ladders[0].best().map(|l| l.price)
    }

    pub fn best_ask(&self) -> Option<i64> {
        self.ladders[1].best().map(|l| l.price)
    }

    /// The price of the last trade, in ticks.
    pub fn last_price(&self) -> Option<i64> {
        self.last_price
    }

    /// Replaces the last trade price (the instrument's tick size changed).
    pub fn set_last_price(&mut self, ticks: Option<i64>) {
        self.last_price = ticks;
    }

    /// The `seq` of the last level change.
    pub fn book_seq(&self) -> u64 {
        self.book_seq
    }

    pub fn last_trade_id(&self) -> u64 {
        self.last_trade_id
    }

    /// (price, total) per level of one side, best first.
    pub fn levels(&self, side: Side) -> impl Iterator<Item = (i64, u64)> + '_ {
        self.ladders[side_index(side)]
            .iter_best_first()
            .map(|l| (l.price, l.total))
    }

    pub fn level_count(&self, side: Side) -> usize {
        self.ladders[side_index(side)].level_count()
    }

    /// Whether an order is resting or parked, so that a cancel or amend can reach it.
    pub fn is_open(&self, order_id: u64) -> bool {
        self.orders.ids.contains_key(&order_id)
    }

    /// Orders a cancel can reach: resting plus parked stops.
    pub fn open_orders(&self) -> usize {
        self.orders.ids.len()
    }

    /// The ids of the orders of one side a cancel can reach, in no particular order.
    pub fn open_order_ids(&self, side: Side) -> impl Iterator<Item = u64> + '_ {
        self.orders
            .ids
            .iter()
            .filter(move |(_, &slot)| self.orders.slab.get(slot).side == side)
            .map(|(&id, _)| id)
    }

    /// Takes a new order.
    pub fn submit(&mut self, now: i64, o: &BookOrder, out: &mut Vec<BookEvent>) {
        let reject = |reason| BookEvent::Rejected {
            order_id: o.order_id,
            account: o.account,
            reason,
        };
        if self.orders.ids.contains_key(&o.order_id) {
            // Risk decides an order once, so a second submit of a live order is a copy of the
            // first. Reported as rejected, it would end the resting order in every reader.
            return;
        }
        let (tif, expire_at) = match o.time_in_force {
            TimeInForce::Gtc => (Tif::Gtc, 0),
            TimeInForce::Ioc => (Tif::Ioc, 0),
            TimeInForce::Fok => (Tif::Fok, 0),
            TimeInForce::Gtd => match o.expire_at {
                Some(at) if at > now => (Tif::Gtd, at),
                _ => {
                    out.push(reject(RejectReason::ExpireAtInPast));
                    return;
                }
            },
        };
        let (price, stop, state) = match o.kind {
            BookOrderKind::Limit { price } => {
                if o.post_only && self.would_take(o.side, price) {
                    out.push(reject(RejectReason::PostOnlyWouldTake));
                    return;
                }
                (price, 0, SlotState::Working)
            }
            // A market order always takes; a stop becomes a taker at an unknown moment, so
            // neither can promise to only make.
            BookOrderKind::Market { limit } => {
                if o.post_only {
                    out.push(reject(RejectReason::PostOnlyWouldTake));
                    return;
                }
                (limit, 0, SlotState::Working)
            }
            BookOrderKind::StopLimit { price, stop } => {
                if o.post_only {
                    out.push(reject(RejectReason::PostOnlyWouldTake));
                    return;
                }
                (price, stop, SlotState::Parked)
            }
        };
        out.push(BookEvent::Accepted {
            order_id: o.order_id,
            account: o.account,
        });
        let seq = self.next_seq;
        self.next_seq += 1;
        // Only stops and GTD orders carry the auxiliary part; for the rest it stays zero.
        let aux = if state == SlotState::Parked || tif == Tif::Gtd {
            Aux {
                seq,
                stop,
                expire_at,
            }
        } else {
            Aux::default()
        };
        let slot = Slot {
            id: o.order_id,
            account: o.account,
            price,
            quantity: o.quantity,
            filled: 0,
            side: o.side,
            state,
            tif,
            post_only: o.post_only,
        };
        let i = self.orders.slab.alloc(slot, aux);
        match o.kind {
            BookOrderKind::Limit { .. } => self.activate(i, out),
            BookOrderKind::Market { .. } => self.run_market(i, out),
            BookOrderKind::StopLimit { .. } => self.park(i),
        }
        self.trigger_stops(now, out);
    }

    /// Cancels a resting order or a parked stop of `account`, for `reason`.
    pub fn cancel(
        &mut self,
        account: u64,
        order_id: u64,
        reason: CancelReason,
        out: &mut Vec<BookEvent>,
    ) {
        let Some(i) = self.find_own(account, order_id) else {
            out.push(BookEvent::CancelRejected {
                order_id,
                account,
                reason: RejectReason::UnknownOrder,
            });
            return;
        };
        out.push(BookEvent::Canceled {
            order_id,
            account,
            reason,
            leaves: self.orders.slab.get(i).leaves(),
        });
        self.withdraw(i, out);
        self.orders.finish(i);
    }

    /// Changes the price and/or total quantity of a live order of `account`.
    ///
    /// A new price or a larger quantity sends the order to the back of its (new) level; a
    /// smaller quantity at the same price keeps its place. A new price that crosses trades.
    #[allow(clippy::too_many_arguments)]
    pub fn amend(
        &mut self,
        now: i64,
        account: u64,
        order_id: u64,
        amend_id: u64,
        price: Option<i64>,
        quantity: Option<u64>,
        out: &mut Vec<BookEvent>,
    ) {
        let reject = |reason| BookEvent::AmendRejected {
            order_id,
            account,
            amend_id,
            reason,
        };
        let Some(i) = self.find_own(account, order_id) else {
            out.push(reject(RejectReason::UnknownOrder));
            return;
        };
        let old = *self.orders.slab.get(i);
        let new_price = price.unwrap_or(old.price);
        let new_quantity = quantity.unwrap_or(old.quantity);
        if new_quantity <= old.filled {
            out.push(reject(RejectReason::QuantityNotAboveFilled));
            return;
        }
        let amended = |kept_priority| BookEvent::Amended {
            order_id,
            account,
            amend_id,
            price: new_price,
            quantity: new_quantity,
            leaves: new_quantity - old.filled,
            kept_priority,
        };
        if old.state == SlotState::Parked {
            // A parked stop has no place in a level yet; its trigger order is unchanged.
            let s = self.orders.slab.get_mut(i);
            s.price = new_price;
            s.quantity = new_quantity;
            out.push(amended(true));
            return;
        }
        let ladder = side_index(old.side);
        if new_price == old.price && new_quantity <= old.quantity {
            self.orders.slab.get_mut(i).quantity = new_quantity;
            out.push(amended(true));
            let by = old.quantity - new_quantity;
            if by > 0 {
                let total = self.ladders[ladder].reduce(old.price, by);
                self.level_changed(old.side, old.price, total, out);
            }
            return;
        }
        if new_price != old.price && old.post_only && self.would_take(old.side, new_price) {
            out.push(reject(RejectReason::PostOnlyWouldTake));
            return;
        }
        out.push(amended(false));
        if new_price == old.price {
            self.orders.slab.get_mut(i).quantity = new_quantity;
            let total = self.ladders[ladder].requeue(&mut self.orders.slab, i, old.leaves());
            self.level_changed(old.side, old.price, total, out);
            return;
        }
        self.withdraw(i, out);
        let s = self.orders.slab.get_mut(i);
        s.price = new_price;
        s.quantity = new_quantity;
        s.state = SlotState::Working;
        self.activate(i, out);
        self.trigger_stops(now, out);
    }

    /// Expires GTD orders whose time has come, earliest expiry (then lowest id) first.
    pub fn expire(&mut self, now: i64, out: &mut Vec<BookEvent>) {
        while let Some(&(at, id)) = self.orders.expiries.first() {
            if at > now {
                break;
            }
            let i = self.orders.ids[&id];
            let s = *self.orders.slab.get(i);
            out.push(BookEvent::Expired {
                order_id: s.id,
                account: s.account,
                reason: ExpireReason::GtdExpired,
                leaves: s.leaves(),
            });
            self.withdraw(i, out);
            self.orders.finish(i);
        }
    }

    fn find_own(&self, account: u64, order_id: u64) -> Option<u32> {
        let &i = self.orders.ids.get(&order_id)?;
        // Another account's order is reported as unknown: its existence is not theirs to see.
        (self.orders.slab.get(i).account == account).then_some(i)
    }

    /// Takes a resting order out of its level, or a parked stop out of its queue.
    fn withdraw(&mut self, i: u32, out: &mut Vec<BookEvent>) {
        let s = *self.orders.slab.get(i);
        match s.state {
            SlotState::Resting => {
                let total = self.ladders[side_index(s.side)].unlink(&mut self.orders.slab, i);
                self.level_changed(s.side, s.price, total, out);
            }
            SlotState::Parked => self.unpark(i),
            SlotState::Working | SlotState::Free => {}
        }
    }

    fn level_changed(&mut self, side: Side, price: i64, quantity: u64, out: &mut Vec<BookEvent>) {
        self.book_seq += 1;
        out.push(BookEvent::LevelChanged {
            seq: self.book_seq,
            side,
            price,
            quantity,
        });
    }

    /// Whether an order at `price` would trade at once against the other side.
    fn would_take(&self, side: Side, price: i64) -> bool {
        self.ladders[side_index(side.opposite())]
            .best()
            .is_some_and(|l| crosses(side, price, l.price))
    }
}

/// The serialised form: everything but the id index, which is rebuilt from the slab. Keeping
/// the index out makes snapshots smaller and byte-for-byte deterministic.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BookState {
    slab: Slab,
    expiries: BTreeSet<(i64, u64)>,
    bids: Ladder,
    asks: Ladder,
    buy_stops: BTreeSet<(i64, u64, u32)>,
    sell_stops: BTreeSet<(i64, u64, u32)>,
    stp: SelfTradePrevention,
    next_seq: u64,
    last_trade_id: u64,
    book_seq: u64,
    last_price: Option<i64>,
}

/// [`BookState`] by reference, so a snapshot does not copy the book first.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BookStateRef<'a> {
    slab: &'a Slab,
    expiries: &'a BTreeSet<(i64, u64)>,
    bids: &'a Ladder,
    asks: &'a Ladder,
    buy_stops: &'a BTreeSet<(i64, u64, u32)>,
    sell_stops: &'a BTreeSet<(i64, u64, u32)>,
    stp: SelfTradePrevention,
    next_seq: u64,
    last_trade_id: u64,
    book_seq: u64,
    last_price: Option<i64>,
}

impl Serialize for OrderBook {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        BookStateRef {
            slab: &self.orders.slab,
            expiries: &self.orders.expiries,
            bids: &self.ladders[0],
            asks: &self.ladders[1],
            buy_stops: &self.buy_stops,
            sell_stops: &self.sell_stops,
            stp: self.stp,
            next_seq: self.next_seq,
            last_trade_id: self.last_trade_id,
            book_seq: self.book_seq,
            last_price: self.last_price,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for OrderBook {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let st = BookState::deserialize(d)?;
        let mut ids = IdMap::default();
        for (i, s) in st.slab.live() {
            if matches!(s.state, SlotState::Resting | SlotState::Parked) {
                ids.insert(s.id, i);
            }
        }
        Ok(OrderBook {
            orders: Orders {
                slab: st.slab,
                ids,
                expiries: st.expiries,
            },
            ladders: [st.bids, st.asks],
            buy_stops: st.buy_stops,
            sell_stops: st.sell_stops,
            stp: st.stp,
            next_seq: st.next_seq,
            last_trade_id: st.last_trade_id,
            book_seq: st.book_seq,
            last_price: st.last_price,
        })
    }
}
