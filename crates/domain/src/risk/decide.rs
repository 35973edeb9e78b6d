//! The decisions on new orders, amends and cancels.
//!
//! Checks run in a fixed order and the first failure is the reject code. The order's time, the
//! kill switches and the rate limit come first so a decision folded from the log can tell
//! whether it spent a rate token (see `RiskEngine::apply`).

use super::checks::{self, Band};
use super::{terms_of, Decision, RiskEngine};
use crate::events::{CancelReason, Event, Reservation};
use crate::ids::{AccountId, OrderId, Timestamp};
use crate::instrument::Instrument;
use crate::order::{NewOrder, OrderType, RejectReason, Side, TimeInForce};
use crate::venue::{Source, VenueCommand};
use rust_decimal::Decimal;

use RejectReason as R;

/// How far ahead of the engine's clock an order id may be issued. Further ahead and the id
/// would move the ledger's clock of forgetting (`Ledger::remember_ended_for`) past orders
/// still to come from instances with correct clocks.
pub const MAX_ISSUED_AHEAD_MS: i64 = 5 * 60 * 1000;

/// What an approved order sets aside, and the worst price a market order may fill at.
struct Approval {
    reservation: Reservation,
    protection_price: Option<Decimal>,
    market: u32,
}

impl RiskEngine {
    /// Decides an `OrderCreated` at time `now`; applies the decision to its own state at once and
    /// returns the `RiskValidated` event plus, if approved, the venue command to send.
    ///
    /// An order already decided (a redelivered `OrderCreated`) gets an empty decision: its
    /// first decision stands.
    pub fn decide_order(&mut self, now: Timestamp, source: Source, order: &NewOrder) -> Decision {
        if self.ledger.knows_order(order.order_id) {
            return Decision::default();
        }
        if !self.awaiting.is_empty() {
            self.awaiting.remove(&order.order_id);
        }
        let approval = match self.check_order(now, order) {
            Ok(a) => a,
            Err(reason) => return self.reject_order(order, reason),
        };
        let fee_rate_cap = approval.reservation.fee_rate;
        let event = Event::RiskValidated {
            account: order.account,
            order_id: order.order_id,
            symbol: order.symbol.clone(),
            approved: true,
            reason: None,
            reservation: Some(approval.reservation),
            protection_price: approval.protection_price,
        };
        if self.ledger.apply(&event).is_err() {
            // The balance check passed, so the ledger refusing means they disagree: say no.
            return self.reject_order(order, R::InsufficientBalance);
        }
        self.open(
            order.account,
            order.order_id,
            Some(approval.market),
            Some(terms_of(order)),
        );
        Decision {
            events: vec![event],
            command: Some(VenueCommand::Submit {
                source,
                order: order.clone(),
                protection_price: approval.protection_price,
                fee_rate_cap,
            }),
        }
    }

    fn reject_order(&mut self, order: &NewOrder, reason: RejectReason) -> Decision {
        let event = Event::RiskValidated {
            account: order.account,
            order_id: order.order_id,
            symbol: order.symbol.clone(),
            approved: false,
            reason: Some(reason),
            reservation: None,
            protection_price: None,
        };
        // Records the order as decided; a refusal moves no balance, so it cannot fail.
        let folded = self.ledger.apply(&event);
        debug_assert!(folded.is_ok(), "{folded:?}");
        Decision {
            events: vec![event],
            command: None,
        }
    }

    fn check_order(&mut self, now: Timestamp, order: &NewOrder) -> Result<Approval, RejectReason> {
        // First: every other decision on the order moves the ledgers' clock of forgetting to
        // its id's time, which must therefore be trusted. Spends no rate token.
        let issued = order.order_id.issued_at().millis();
        if issued > now.millis().saturating_add(MAX_ISSUED_AHEAD_MS)
            || self.ledger.issued_before_horizon(order.order_id)
        {
            return Err(R::OrderTimeOutOfRange);
        }
        if self.global_kill {
            return Err(R::GlobalKillSwitch);
        }
        // Field by field, so the market can be read while the account is updated.
        let index = self.by_symbol.get(&order.symbol).copied();
        let market = index.and_then(|i| self.markets.get(i as usize));
        let limits = self
            .config
            .limits(order.account, market.map(|m| &m.instrument.quote));
        let account = self.accounts.entry(order.account).or_default();
        if account.killed {
            return Err(R::AccountKillSwitch);
        }
        if !account
            .bucket
            .take(now, limits.orders_per_second, limits.burst)
        {
            return Err(R::RateLimited);
        }
        let open_orders = account.open_orders;

        let market = market.ok_or(R::UnknownInstrument)?;
        let inst = &market.instrument;
        checks::trading(market.status())?;
        if order.time_in_force == TimeInForce::Gtd && order.expire_at.is_none_or(|t| t <= now) {
            return Err(R::ExpireAtInPast);
        }
        let limit_price = match order.order_type {
            OrderType::Limit => Some(order.price.ok_or(R::PriceRequired)?),
            OrderType::StopLimit => {
                let price = order.price.ok_or(R::PriceRequired)?;
                checks::price(inst, order.stop_price.ok_or(R::StopPriceRequired)?)?;
                Some(price)
            }
            OrderType::Market => None,
        };
        checks::quantity(inst, order.quantity)?;
        if let Some(p) = limit_price {
            checks::price(inst, p)?;
        }

        let reference = market.priced.map(|p| p.reference);
        let band = market.priced.map(|p| p.band);
        let priced_at = match limit_price {
            Some(p) => p,
            None => reference.ok_or(R::NoReferencePrice)?,
        };
        checks::notional(inst, priced_at, order.quantity, limits.max_order_notional)?;
        // With no reference at all a limit order skips the band: there is nothing to measure by.
        if let (Some(p), Some(b)) = (limit_price, band) {
            b.check(p)?;
        }
        let protection_price = match (order.order_type, band) {
            (OrderType::Market, Some(b)) => Some(protection(inst, order.side, b)),
            _ => None,
        };
        if open_orders >= limits.max_open_orders {
            return Err(R::TooManyOpenOrders);
        }

        let reservation = match order.side {
            Side::Buy => {
                let worst = limit_price
                    .or(protection_price)
                    .ok_or(R::NoReferencePrice)?;
                buy_reservation(inst, worst, order.quantity)?
            }
            Side::Sell => sell_reservation(inst, order.quantity),
        };
        let available = self
            .ledger
            .balance(order.account, &reservation.asset)
            .available;
        if available < reservation.amount {
            return Err(R::InsufficientBalance);
        }
        Ok(Approval {
            reservation,
            protection_price,
            market: index.expect("the market was found"),
        })
    }

    /// Decides an amend of a live order to a new price and/or quantity (the new total, filled
    /// part included). Amends are not rate limited, so `_now` is unused; it is kept so every
    /// decision takes its time the same way.
    ///
    /// An approved amend holds any increase in what the order needs at once and sends the venue
    /// an `Amend`; an amend id already decided gets an empty decision.
    #[allow(clippy::too_many_arguments)]
    pub fn decide_amend(
        &mut self,
        _now: Timestamp,
        source: Source,
        account: AccountId,
        order_id: OrderId,
        amend_id: u64,
        price: Option<Decimal>,
        quantity: Option<Decimal>,
    ) -> Decision {
        if self
            .ledger
            .hold(order_id)
            .is_some_and(|h| amend_id <= h.last_amend_validated)
        {
            return Decision::default();
        }
        let reservation = match self.check_amend(account, order_id, price, quantity) {
            Ok(r) => r,
            Err(reason) => return self.reject_amend(account, order_id, amend_id, reason),
        };
        let fee_rate_cap = reservation.fee_rate;
        let event = Event::AmendValidated {
            account,
            order_id,
            amend_id,
            approved: true,
            reason: None,
            reservation: Some(reservation),
        };
        if self.ledger.apply(&event).is_err() {
            return self.reject_amend(account, order_id, amend_id, R::InsufficientBalance);
        }
        let Some(live) = self.orders.get_mut(&order_id) else {
            unreachable!("check_amend found the order live");
        };
        live.pending_amend = Some(amend_id);
        let market = live.market;
        let Some(m) = self.market_at(market) else {
            unreachable!("check_amend found the order's market");
        };
        Decision {
            events: vec![event],
            command: Some(VenueCommand::Amend {
                source,
                symbol: m.instrument.symbol.clone(),
                account,
                order_id,
                amend_id,
                price,
                quantity,
                fee_rate_cap,
            }),
        }
    }

    fn reject_amend(
        &mut self,
        account: AccountId,
        order_id: OrderId,
        amend_id: u64,
        reason: RejectReason,
    ) -> Decision {
        let event = Event::AmendValidated {
            account,
            order_id,
            amend_id,
            approved: false,
            reason: Some(reason),
            reservation: None,
        };
        let folded = self.ledger.apply(&event);
        debug_assert!(folded.is_ok(), "{folded:?}");
        Decision {
            events: vec![event],
            command: None,
        }
    }

    fn check_amend(
        &self,
        account: AccountId,
        order_id: OrderId,
        price: Option<Decimal>,
        quantity: Option<Decimal>,
    ) -> Result<Reservation, RejectReason> {
        if self.global_kill {
            return Err(R::GlobalKillSwitch);
        }
        if self.kill_switch(Some(account)) {
            return Err(R::AccountKillSwitch);
        }
        let live = match self.orders.get(&order_id) {
            Some(o) if o.account == account => o,
            _ => return Err(self.not_live(account, order_id)),
        };
        let terms = live.terms.ok_or(R::UnknownOrder)?;
        if terms.order_type == OrderType::Market {
            // A market order never rests, so there is nothing to amend.
            return Err(R::OrderNotLive);
        }
        let market = self.market_at(live.market).ok_or(R::UnknownInstrument)?;
        let inst = &market.instrument;
        checks::trading(market.status())?;
        if live.pending_amend.is_some() {
            return Err(R::AmendPending);
        }
        let limits = self.config.limits(account, Some(&inst.quote));

        let new_price = match price {
            Some(p) => {
                checks::price(inst, p)?;
                if let Some(priced) = market.priced {
                    priced.band.check(p)?;
                }
                p
            }
            None => terms.price.ok_or(R::PriceRequired)?,
        };
        let new_quantity = match quantity {
            Some(q) => {
                checks::quantity(inst, q)?;
                if q <= live.filled {
                    return Err(R::QuantityNotAboveFilled);
                }
                q
            }
            None => terms.quantity,
        };
        checks::notional(inst, new_price, new_quantity, limits.max_order_notional)?;

        let leaves = new_quantity - live.filled;
        let reservation = match terms.side {
            Side::Buy => buy_reservation(inst, new_price, leaves)?,
            Side::Sell => sell_reservation(inst, leaves),
        };
        let hold = self.ledger.hold(order_id).map_or(reservation.amount, |h| {
            h.amend_hold(reservation.amount, reservation.per_unit)
        });
        if self.ledger.balance(account, &reservation.asset).available < hold {
            return Err(R::InsufficientBalance);
        }
        Ok(reservation)
    }

    /// Asks the venue to cancel a live order of `account`; anything else is a `CancelRejected`.
    /// Cancels pass every kill switch and rate limit: they only take risk away. `why` travels
    /// to the venue's `OrderCanceled` (none: the client's own request).
    pub fn decide_cancel(
        &mut self,
        source: Source,
        account: AccountId,
        order_id: OrderId,
        why: Option<CancelReason>,
    ) -> Decision {
        let reason = match self.orders.get(&order_id) {
            Some(o) if o.account == account => match self.market_at(o.market) {
                Some(m) => {
                    return Decision {
                        events: Vec::new(),
                        command: Some(VenueCommand::Cancel {
                            source,
                            symbol: m.instrument.symbol.clone(),
                            account,
                            order_id,
                            reason: why,
                        }),
                    }
                }
                None => R::UnknownInstrument,
            },
            _ => self.not_live(account, order_id),
        };
        Decision {
            events: vec![Event::CancelRejected {
                account,
                order_id,
                reason,
            }],
            command: None,
        }
    }

    /// Why `account` cannot touch an order that is not live for it. Another account's order
    /// is unknown, never "not live": its existence is not this account's business.
    fn not_live(&self, account: AccountId, order_id: OrderId) -> RejectReason {
        if self.ledger.finished_order(order_id) == Some(account) {
            R::OrderNotLive
        } else {
            R::UnknownOrder
        }
    }
}

/// The worst price a market order may fill at: the band's edge, rounded onto the tick grid
/// towards the inside of the band.
fn protection(inst: &Instrument, side: Side, band: Band) -> Decimal {
    match side {
        Side::Buy => checks::floor_to_tick(band.high, inst.tick_size),
        Side::Sell => checks::ceil_to_tick(band.low, inst.tick_size),
    }
}

/// A BUY sets aside its worst price plus the largest fee it can pay, per unit, in quote.
fn buy_reservation(
    inst: &Instrument,
    worst_price: Decimal,
    quantity: Decimal,
) -> Result<Reservation, RejectReason> {
    let per_unit = worst_price
        .checked_mul(Decimal::ONE + inst.max_fee_rate())
        .ok_or(R::NotionalAboveMax)?;
    let amount = per_unit.checked_mul(quantity).ok_or(R::NotionalAboveMax)?;
    Ok(Reservation {
        asset: inst.quote.clone(),
        amount,
        per_unit,
        fee_rate: Some(inst.max_fee_rate()),
    })
}

/// A SELL sets aside the base it sells, one for one.
fn sell_reservation(inst: &Instrument, quantity: Decimal) -> Reservation {
    Reservation {
        asset: inst.base.clone(),
        amount: quantity,
        per_unit: Decimal::ONE,
        fee_rate: None,
    }
}
