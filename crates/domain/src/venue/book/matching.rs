//! Taking liquidity: the sweep, fill-or-kill feasibility and what becomes of a remainder.

use super::ladder::unlink_from;
use super::slab::{SlotState, Tif, NIL};
use super::{crosses, side_index, BookEvent, Execution, FillParty, OrderBook};
use crate::events::{CancelReason, ExpireReason};
use crate::instrument::SelfTradePrevention;
use crate::order::Side;

impl OrderBook {
    /// Runs a working limit order: fill what crosses, then rest, expire or cancel the rest.
    pub(super) fn activate(&mut self, i: u32, out: &mut Vec<BookEvent>) {
        let s = *self.orders.slab.get(i);
        if s.tif == Tif::Fok && !self.fillable(s.side, s.account, s.price, s.leaves()) {
            out.push(BookEvent::Expired {
                order_id: s.id,
                account: s.account,
                reason: ExpireReason::FokNotFillable,
                leaves: s.leaves(),
            });
            self.orders.finish(i);
            return;
        }
        let stopped = self.take(i, s.price, out);
        let s = *self.orders.slab.get(i);
        let leaves = s.leaves();
        let end = |reason| BookEvent::Expired {
            order_id: s.id,
            account: s.account,
            reason,
            leaves,
        };
        if leaves == 0 {
            self.orders.finish(i);
        } else if stopped {
            out.push(stp_canceled(s.id, s.account, leaves));
            self.orders.finish(i);
        } else if s.tif == Tif::Ioc {
            out.push(end(ExpireReason::IocRemainder));
            self.orders.finish(i);
        } else if s.tif == Tif::Fok {
            // Unreachable when the feasibility check is right; never rest a FOK remainder.
            out.push(end(ExpireReason::FokNotFillable));
            self.orders.finish(i);
        } else {
            self.orders.slab.get_mut(i).state = SlotState::Resting;
            let total = self.ladders[side_index(s.side)].push_back(&mut self.orders.slab, i);
            self.orders.index(i);
            self.level_changed(s.side, s.price, total, out);
        }
    }

    /// Runs a working market order: fill inside its bound, expire the rest.
    pub(super) fn run_market(&mut self, i: u32, out: &mut Vec<BookEvent>) {
        let s = *self.orders.slab.get(i);
        if s.tif == Tif::Fok && !self.fillable(s.side, s.account, s.price, s.leaves()) {
            out.push(BookEvent::Expired {
                order_id: s.id,
                account: s.account,
                reason: ExpireReason::FokNotFillable,
                leaves: s.leaves(),
            });
            self.orders.finish(i);
            return;
        }
        let stopped = self.take(i, s.price, out);
        let s = *self.orders.slab.get(i);
        let leaves = s.leaves();
        if leaves > 0 {
            out.push(if stopped {
                stp_canceled(s.id, s.account, leaves)
            } else {
                BookEvent::Expired {
                    order_id: s.id,
                    account: s.account,
                    reason: ExpireReason::MarketRemainder,
                    leaves,
                }
            });
        }
        self.orders.finish(i);
    }

    /// Sweeps the other side from its best level while prices cross `limit`. Returns true when
    /// self-trade prevention stopped the incoming order.
    fn take(&mut self, i: u32, limit: i64, out: &mut Vec<BookEvent>) -> bool {
        let taker = *self.orders.slab.get(i);
        let maker_side = taker.side.opposite();
        let mut filled = taker.filled;
        let mut stopped = false;
        while filled < taker.quantity && !stopped {
            let ladder = &mut self.ladders[side_index(maker_side)];
            let Some(level) = ladder.best_mut() else {
                break;
            };
            if !crosses(taker.side, limit, level.price) {
                break;
            }
            let price = level.price;
            let before = level.total;
            while filled < taker.quantity && level.head != NIL {
                let m = level.head;
                let maker = self.orders.slab.get_mut(m);
                if maker.account == taker.account {
                    if self.stp == SelfTradePrevention::CancelIncoming {
                        stopped = true;
                        break;
                    }
                    let leaves = maker.leaves();
                    out.push(stp_canceled(maker.id, maker.account, leaves));
                    level.total -= leaves;
                    unlink_from(level, &mut self.orders.slab, m);
                    self.orders.finish(m);
                    if self.stp == SelfTradePrevention::CancelBoth {
                        stopped = true;
                        break;
                    }
                    continue;
                }
                let quantity = maker.leaves().min(taker.quantity - filled);
                maker.filled += quantity;
                filled += quantity;
                level.total -= quantity;
                self.last_trade_id += 1;
                out.push(BookEvent::Filled(Execution {
                    trade_id: self.last_trade_id,
                    price,
                    quantity,
                    taker_side: taker.side,
                    maker: FillParty {
                        order_id: maker.id,
                        account: maker.account,
                        cumulative: maker.filled,
                        leaves: maker.leaves(),
                    },
                    taker: FillParty {
                        order_id: taker.id,
                        account: taker.account,
                        cumulative: filled,
                        leaves: taker.quantity - filled,
                    },
                }));
                self.last_price = Some(price);
                if maker.leaves() == 0 {
                    unlink_from(level, &mut self.orders.slab, m);
                    self.orders.finish(m);
                }
            }
            let (total, empty) = (level.total, level.head == NIL);
            if empty {
                ladder.pop_best();
            }
            if total != before {
                self.level_changed(maker_side, price, total, out);
            }
        }
        self.orders.slab.get_mut(i).filled = filled;
        stopped
    }

    /// Whether `need` lots can fill at once within `limit`, counting only the orders the
    /// sweep would actually trade with under the book's self-trade prevention.
    pub(super) fn fillable(&self, side: Side, account: u64, limit: i64, need: u64) -> bool {
        let mut sum = 0u64;
        for level in self.ladders[side_index(side.opposite())].iter_best_first() {
            if !crosses(side, limit, level.price) {
                return false;
            }
            let mut cur = level.head;
            while cur != NIL {
                let o = self.orders.slab.get(cur);
                if o.account == account {
                    if self.stp != SelfTradePrevention::CancelResting {
                        return false;
                    }
                } else {
                    sum += o.leaves();
                    if sum >= need {
                        return true;
                    }
                }
                cur = self.orders.slab.link(cur).next;
            }
        }
        false
    }
}

fn stp_canceled(order_id: u64, account: u64, leaves: u64) -> BookEvent {
    BookEvent::Canceled {
        order_id,
        account,
        reason: CancelReason::SelfTradePrevention,
        leaves,
    }
}
