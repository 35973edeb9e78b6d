//! [`Venue`]: routes commands to each symbol's book and publishes what happened as events.

use super::book::{BookEvent, Execution, FillParty, OrderBook};
use super::command::VenueCommand;
use super::depth::{Depth, Level};
use super::market::Market;
use super::units::Unit;
use crate::events::{CancelReason, Event, Fill};
use crate::ids::{AccountId, OrderId, Symbol, Timestamp, TradeId};
use crate::instrument::{Instrument, StatusSet, TradingStatus};
use crate::order::{Liquidity, RejectReason, Side};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A deterministic matching venue: the same commands always give the same events, and a
/// restored snapshot carries on exactly as the original would.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Venue {
    fee_account: AccountId,
    markets: BTreeMap<Symbol, Market>,
    /// The book's raw events of the command in hand, reused so that handling allocates
    /// nothing of its own in steady state.
    #[serde(skip)]
    scratch: Vec<BookEvent>,
}

impl Venue {
    pub fn new(instruments: Vec<Instrument>, fee_account: AccountId) -> Self {
        Venue {
            fee_account,
            markets: instruments
                .into_iter()
                .map(|i| (i.symbol.clone(), Market::new(i)))
                .collect(),
            scratch: Vec::new(),
        }
    }

    /// Handles one command at time `now`, pushing the resulting events in order.
    ///
    /// A command whose source offset is not above the last one taken from its partition (for
    /// its symbol) is a redelivery and is dropped without a trace.
    pub fn handle(&mut self, now: Timestamp, cmd: &VenueCommand, out: &mut Vec<Event>) {
        if let VenueCommand::Configure { instrument } = cmd {
            self.configure(instrument);
            // Each start publishes every status, so market data learns one it missed.
            if let Some(m) = self.markets.get(&instrument.symbol) {
                out.push(m.status_event(now));
            }
            return;
        }
        let Some(market) = self.markets.get_mut(cmd.symbol()) else {
            unknown_instrument(cmd, out);
            return;
        };
        if let Some(src) = cmd.source() {
            if !market.take_source(src) {
                return;
            }
        }
        let raw = &mut self.scratch;
        raw.clear();
        match cmd {
            VenueCommand::Submit {
                order,
                protection_price,
                fee_rate_cap,
                ..
            } => {
                // A copy of a live order changes nothing, its cap included.
                if order.side == Side::Buy && !market.book.is_open(order.order_id.0) {
                    market.hold_fee_cap(order.order_id.0, *fee_rate_cap);
                }
                market.submit(now, order, *protection_price, raw);
            }
            VenueCommand::Cancel {
                account,
                order_id,
                reason,
                ..
            } => market.cancel(
                *account,
                *order_id,
                reason.unwrap_or(CancelReason::UserRequested),
                raw,
            ),
            VenueCommand::Amend {
                account,
                order_id,
                amend_id,
                price,
                quantity,
                fee_rate_cap,
                ..
            } => {
                market.amend(now, *account, *order_id, *amend_id, *price, *quantity, raw);
                // An applied amend holds anew at the rate risk approved it with.
                let applied = raw.iter().any(
                    |e| matches!(e, BookEvent::Amended { order_id: id, .. } if *id == order_id.0),
                );
                if applied {
                    market.hold_fee_cap(order_id.0, *fee_rate_cap);
                }
            }
            VenueCommand::Tick { .. } => market.book.expire(now.0, raw),
            VenueCommand::SetStatus { status, change, .. } => {
                let set = StatusSet {
                    status: *status,
                    change: *change,
                };
                let before = market.status_set;
                set.replace(&mut market.status_set);
                // The copies of one setting (one per partition of `orders`) publish once.
                if market.status_set != before {
                    out.push(market.status_event(now));
                }
            }
            VenueCommand::Configure { .. } => unreachable!("handled above"),
        }
        Publisher::new(&market.instrument, &market.fee_caps, self.fee_account, now)
            .publish(raw, out);
        market.forget_ended_fee_caps(raw);
        if let VenueCommand::Submit { order, .. } = cmd {
            // Not resting (traded away, refused, or a copy the book ignored): nothing to cap.
            if !market.fee_caps.is_empty() && !market.book.is_open(order.order_id.0) {
                market.fee_caps.remove(&order.order_id.0);
            }
        }
    }

    pub fn depth(&self, symbol: &Symbol, levels: usize) -> Option<Depth> {
        let m = self.markets.get(symbol)?;
        let (tick, step) = (
            Unit::new(m.instrument.tick_size),
            Unit::new(m.instrument.step_size),
        );
        let side = |s| {
            m.book
                .levels(s)
                .take(levels)
                .map(|(p, q)| Level {
                    price: tick.times(p),
                    quantity: step.times_u64(q),
                })
                .collect()
        };
        Some(Depth {
            seq: m.book.book_seq(),
            bids: side(Side::Buy),
            asks: side(Side::Sell),
        })
    }

    pub fn last_price(&self, symbol: &Symbol) -> Option<Decimal> {
        let m = self.markets.get(symbol)?;
        m.book
            .last_price()
            .map(|t| Unit::new(m.instrument.tick_size).times(t))
    }

    pub fn best_bid_ask(&self, symbol: &Symbol) -> (Option<Decimal>, Option<Decimal>) {
        let Some(m) = self.markets.get(symbol) else {
            return (None, None);
        };
        let tick = Unit::new(m.instrument.tick_size);
        let price = |t: i64| tick.times(t);
        (m.book.best_bid().map(price), m.book.best_ask().map(price))
    }

    /// Sets a symbol's configured status. HALTED rejects new orders, amends and clients' own
    /// cancels (those with another reason, such as a dead man's switch's, still go through);
    /// CANCEL_ONLY rejects new orders and amends but still takes cancels. Resting orders stay
    /// where they are. An operator's status (`SetStatus`) is in force over it.
    pub fn set_status(&mut self, symbol: &Symbol, status: TradingStatus) {
        if let Some(m) = self.markets.get_mut(symbol) {
            m.instrument.status = status;
        }
    }

    /// The trading status in force for a symbol.
    pub fn status(&self, symbol: &Symbol) -> Option<TradingStatus> {
        self.markets.get(symbol).map(Market::status)
    }

    /// Takes an instrument's configured definition (fees, filters, band, configured status,
    /// self-trade prevention); an operator's status stays in force over it. A new symbol gets
    /// an empty book. The book holds prices in ticks and quantities in lots, so new tick or
    /// step sizes wait while it holds orders (the old ones stay; see
    /// [`Venue::units_differ`]); with an empty book they apply, and the last trade price is
    /// carried over when it lies on the new tick, else forgotten.
    pub fn configure(&mut self, inst: &Instrument) {
        let Some(m) = self.markets.get_mut(&inst.symbol) else {
            self.markets
                .insert(inst.symbol.clone(), Market::new(inst.clone()));
            return;
        };
        let mut inst = inst.clone();
        let old = &m.instrument;
        if old.tick_size != inst.tick_size || old.step_size != inst.step_size {
            if m.book.open_orders() > 0 {
                inst.tick_size = old.tick_size;
                inst.step_size = old.step_size;
            } else {
                let (old_tick, new_tick) = (old.tick_size, inst.tick_size);
                let last = m.book.last_price().and_then(|t| {
                    let ticks = Decimal::from(t) * old_tick / new_tick;
                    ticks.fract().is_zero().then(|| ticks.to_i64()).flatten()
                });
                m.book.set_last_price(last);
            }
        }
        m.rate_changes(old.max_fee_rate(), inst.max_fee_rate());
        m.book.set_self_trade_prevention(inst.self_trade_prevention);
        m.instrument = inst;
    }

    /// Whether the book's tick or step size differs from `configured`'s (new sizes wait for
    /// an empty book).
    pub fn units_differ(&self, configured: &Instrument) -> bool {
        self.markets.get(&configured.symbol).is_some_and(|m| {
            m.instrument.tick_size != configured.tick_size
                || m.instrument.step_size != configured.step_size
        })
    }

    pub fn instrument(&self, symbol: &Symbol) -> Option<&Instrument> {
        self.markets.get(symbol).map(|m| &m.instrument)
    }

    pub fn instruments(&self) -> impl Iterator<Item = &Instrument> {
        self.markets.values().map(|m| &m.instrument)
    }

    /// The integer book of a symbol, for inspection.
    pub fn book(&self, symbol: &Symbol) -> Option<&OrderBook> {
        self.markets.get(symbol).map(|m| &m.book)
    }

    pub fn fee_account(&self) -> AccountId {
        self.fee_account
    }
}

fn unknown_instrument(cmd: &VenueCommand, out: &mut Vec<Event>) {
    let reason = RejectReason::UnknownInstrument;
    match cmd {
        VenueCommand::Submit { order, .. } => out.push(Event::OrderRejected {
            account: order.account,
            order_id: order.order_id,
            reason,
        }),
        VenueCommand::Cancel {
            account, order_id, ..
        } => out.push(Event::CancelRejected {
            account: *account,
            order_id: *order_id,
            reason,
        }),
        VenueCommand::Amend {
            account,
            order_id,
            amend_id,
            ..
        } => out.push(Event::AmendRejected {
            account: *account,
            order_id: *order_id,
            amend_id: *amend_id,
            reason,
        }),
        VenueCommand::Tick { .. }
        | VenueCommand::SetStatus { .. }
        | VenueCommand::Configure { .. } => {}
    }
}

/// Turns a book's integer events into domain events, with exact decimal prices and fees.
struct Publisher<'a> {
    instrument: &'a Instrument,
    fee_caps: &'a BTreeMap<u64, Decimal>,
    tick: Unit,
    step: Unit,
    fee_account: AccountId,
    now: Timestamp,
}

impl<'a> Publisher<'a> {
    fn new(
        instrument: &'a Instrument,
        fee_caps: &'a BTreeMap<u64, Decimal>,
        fee_account: AccountId,
        now: Timestamp,
    ) -> Self {
        Publisher {
            instrument,
            fee_caps,
            tick: Unit::new(instrument.tick_size),
            step: Unit::new(instrument.step_size),
            fee_account,
            now,
        }
    }

    fn price(&self, ticks: i64) -> Decimal {
        self.tick.times(ticks)
    }

    fn quantity(&self, lots: u64) -> Decimal {
        self.step.times_u64(lots)
    }

    fn symbol(&self) -> Symbol {
        self.instrument.symbol.clone()
    }

    fn publish(&self, raw: &[BookEvent], out: &mut Vec<Event>) {
        for e in raw {
            match *e {
                BookEvent::Accepted { order_id, account } => out.push(Event::OrderAccepted {
                    account: AccountId(account),
                    order_id: OrderId(order_id),
                    symbol: self.symbol(),
                }),
                BookEvent::Rejected {
                    order_id,
                    account,
                    reason,
                } => out.push(Event::OrderRejected {
                    account: AccountId(account),
                    order_id: OrderId(order_id),
                    reason,
                }),
                BookEvent::Filled(x) => self.execution(&x, out),
                BookEvent::Canceled {
                    order_id,
                    account,
                    reason,
                    leaves,
                } => out.push(Event::OrderCanceled {
                    account: AccountId(account),
                    order_id: OrderId(order_id),
                    reason,
                    leaves_quantity: self.quantity(leaves),
                }),
                BookEvent::Expired {
                    order_id,
                    account,
                    reason,
                    leaves,
                } => out.push(Event::OrderExpired {
                    account: AccountId(account),
                    order_id: OrderId(order_id),
                    reason,
                    leaves_quantity: self.quantity(leaves),
                }),
                BookEvent::Amended {
                    order_id,
                    account,
                    amend_id,
                    price,
                    quantity,
                    leaves,
                    kept_priority,
                } => out.push(Event::OrderAmended {
                    account: AccountId(account),
                    order_id: OrderId(order_id),
                    amend_id,
                    price: self.price(price),
                    quantity: self.quantity(quantity),
                    leaves_quantity: self.quantity(leaves),
                    kept_priority,
                }),
                BookEvent::AmendRejected {
                    order_id,
                    account,
                    amend_id,
                    reason,
                } => out.push(Event::AmendRejected {
                    account: AccountId(account),
                    order_id: OrderId(order_id),
                    amend_id,
                    reason,
                }),
                BookEvent::CancelRejected {
                    order_id,
                    account,
                    reason,
                } => out.push(Event::CancelRejected {
                    account: AccountId(account),
                    order_id: OrderId(order_id),
                    reason,
                }),
                BookEvent::LevelChanged {
                    seq,
                    side,
                    price,
                    quantity,
                } => out.push(Event::BookChanged {
                    symbol: self.symbol(),
                    seq,
                    side,
                    price: self.price(price),
                    quantity: self.quantity(quantity),
                }),
            }
        }
    }

    /// One trade: the maker's fill, then the taker's, then the public trade.
    fn execution(&self, x: &Execution, out: &mut Vec<Event>) {
        let price = self.price(x.price);
        let quantity = self.quantity(x.quantity);
        let notional = price * quantity;
        let fill = |p: &FillParty, side: Side, liquidity: Liquidity| {
            let rate = match liquidity {
                Liquidity::Maker => self.instrument.maker_fee,
                Liquidity::Taker => self.instrument.taker_fee,
            };
            let rate = match self.fee_caps.get(&p.order_id) {
                Some(cap) => rate.min(*cap),
                None => rate,
            };
            Event::OrderFilled(Fill {
                account: AccountId(p.account),
                order_id: OrderId(p.order_id),
                symbol: self.symbol(),
                side,
                trade_id: TradeId(x.trade_id),
                price,
                quantity,
                liquidity,
                fee: notional * rate,
                base: self.instrument.base.clone(),
                quote: self.instrument.quote.clone(),
                cumulative_quantity: self.quantity(p.cumulative),
                leaves_quantity: self.quantity(p.leaves),
                fee_account: self.fee_account,
                at: Some(self.now),
            })
        };
        out.push(fill(&x.maker, x.taker_side.opposite(), Liquidity::Maker));
        out.push(fill(&x.taker, x.taker_side, Liquidity::Taker));
        out.push(Event::Trade {
            symbol: self.symbol(),
            trade_id: TradeId(x.trade_id),
            price,
            quantity,
            taker_side: x.taker_side,
            at: self.now,
        });
    }
}
