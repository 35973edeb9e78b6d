//! Stop-limit orders: parked until the last trade price reaches their stop, then run as
//! their limit order, which may trade and trigger further stops in turn.

use super::slab::{SlotState, Tif};
use super::{BookEvent, OrderBook};
use crate::events::ExpireReason;
use crate::order::Side;

impl OrderBook {
    fn stop_key(&self, i: u32) -> (Side, (i64, u64, u32)) {
        let a = self.orders.slab.aux(i);
        match self.orders.slab.get(i).side {
            Side::Buy => (Side::Buy, (a.stop, a.seq, i)),
            Side::Sell => (Side::Sell, (-a.stop, a.seq, i)),
        }
    }

    pub(super) fn park(&mut self, i: u32) {
        match self.stop_key(i) {
            (Side::Buy, k) => self.buy_stops.insert(k),
            (Side::Sell, k) => self.sell_stops.insert(k),
        };
        self.orders.index(i);
    }

    pub(super) fn unpark(&mut self, i: u32) {
        match self.stop_key(i) {
            (Side::Buy, k) => self.buy_stops.remove(&k),
            (Side::Sell, k) => self.sell_stops.remove(&k),
        };
    }

    /// Triggers every stop the last trade price has reached, one at a time: each triggered
    /// order may trade and move the price on. Among stops due at once the earliest-parked goes
    /// first.
    pub(super) fn trigger_stops(&mut self, now: i64, out: &mut Vec<BookEvent>) {
        loop {
            if self.buy_stops.is_empty() && self.sell_stops.is_empty() {
                return;
            }
            let Some(last) = self.last_price else {
                return;
            };
            let buy = self.buy_stops.first().filter(|k| k.0 <= last).copied();
            let sell = self.sell_stops.first().filter(|k| -k.0 >= last).copied();
            let i = match (buy, sell) {
                (None, None) => return,
                (Some(b), Some(s)) if s.1 < b.1 => {
                    self.sell_stops.remove(&s);
                    s.2
                }
                (Some(b), _) => {
                    self.buy_stops.remove(&b);
                    b.2
                }
                (None, Some(s)) => {
                    self.sell_stops.remove(&s);
                    s.2
                }
            };
            let s = *self.orders.slab.get(i);
            if s.tif == Tif::Gtd && self.orders.slab.aux(i).expire_at <= now {
                // Its time ran out before a tick expired it.
                out.push(BookEvent::Expired {
                    order_id: s.id,
                    account: s.account,
                    reason: ExpireReason::GtdExpired,
                    leaves: s.leaves(),
                });
                self.orders.finish(i);
                continue;
            }
            // Time priority counts from the trigger: it joins the back of its level.
            let seq = self.next_seq;
            self.next_seq += 1;
            self.orders.slab.aux_mut(i).seq = seq;
            self.orders.slab.get_mut(i).state = SlotState::Working;
            self.activate(i, out);
        }
    }
}
