//! The order state machine of `DESIGN.md`, as an explicit transition table.
//!
//! `NEW → ACCEPTED | REJECTED`; `ACCEPTED → PARTIALLY_FILLED → FILLED`; `CANCELED` and
//! `EXPIRED` from any live state. Anything else is an [`IllegalTransition`] and is never applied.

use crate::events::Event;
use crate::order::{AmendStatus, CancelReject, LastAmend, Order, OrderStatus};
use rust_decimal::Decimal;
use thiserror::Error;

/// What moves an order from one status to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Trigger {
    RiskApproved,
    RiskRejected,
    VenueAccepted,
    VenueRejected,
    PartialFill,
    FinalFill,
    Canceled,
    Expired,
    Amended,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("illegal transition of order {order_id}: {from:?} on {trigger:?}")]
pub struct IllegalTransition {
    pub order_id: crate::ids::OrderId,
    pub from: OrderStatus,
    pub trigger: Trigger,
}

/// The whole table. `None` means the trigger is not allowed in that status.
pub fn next_status(from: OrderStatus, trigger: Trigger) -> Option<OrderStatus> {
    use OrderStatus as S;
    use Trigger as T;
    match (from, trigger) {
        // Risk approval is recorded but the order stays NEW until the venue takes it.
        (S::New, T::RiskApproved) => Some(S::New),
        (S::New, T::RiskRejected) => Some(S::Rejected),
        (S::New, T::VenueAccepted) => Some(S::Accepted),
        (S::New, T::VenueRejected) => Some(S::Rejected),
        (S::Accepted | S::PartiallyFilled, T::PartialFill) => Some(S::PartiallyFilled),
        (S::Accepted | S::PartiallyFilled, T::FinalFill) => Some(S::Filled),
        (S::Accepted | S::PartiallyFilled, T::Amended) => Some(from),
        (S::New | S::Accepted | S::PartiallyFilled, T::Canceled) => Some(S::Canceled),
        (S::New | S::Accepted | S::PartiallyFilled, T::Expired) => Some(S::Expired),
        _ => None,
    }
}

/// The trigger an event represents for its order, if it changes the order at all.
pub fn trigger_of(event: &Event) -> Option<Trigger> {
    Some(match event {
        Event::RiskValidated { approved: true, .. } => Trigger::RiskApproved,
        Event::RiskValidated {
            approved: false, ..
        } => Trigger::RiskRejected,
        Event::OrderAccepted { .. } => Trigger::VenueAccepted,
        Event::OrderRejected { .. } => Trigger::VenueRejected,
        Event::OrderFilled(f) if f.leaves_quantity.is_zero() => Trigger::FinalFill,
        Event::OrderFilled(_) => Trigger::PartialFill,
        Event::OrderCanceled { .. } => Trigger::Canceled,
        Event::OrderExpired { .. } => Trigger::Expired,
        Event::OrderAmended { .. } => Trigger::Amended,
        _ => return None,
    })
}

/// What applying an event to an order did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The order changed.
    Changed,
    /// The event was already applied (a redelivered fill) or does not change the order.
    Unchanged,
}

/// Applies one event to an order through the table. An illegal transition leaves the order
/// untouched and is returned as an error for the caller to log and count.
pub fn apply(
    order: &mut Order,
    event: &Event,
    at: crate::ids::Timestamp,
) -> Result<Applied, IllegalTransition> {
    if let Some(refused) = refused_amend(event) {
        return Ok(record_amend(order, refused, at));
    }
    if let Event::CancelRejected {
        account, reason, ..
    } = event
    {
        // Another account's request for this order id learns nothing of it, and changes nothing.
        if *account != order.account {
            return Ok(Applied::Unchanged);
        }
        return Ok(record_cancel_reject(
            order,
            CancelReject {
                reason: *reason,
                at,
            },
        ));
    }
    let Some(trigger) = trigger_of(event) else {
        return Ok(Applied::Unchanged);
    };
    // A fill we have seen already (redelivery) is not a transition at all.
    if let Event::OrderFilled(f) = event {
        if order.last_trade_id.is_some_and(|t| f.trade_id <= t) {
            return Ok(Applied::Unchanged);
        }
    }
    if is_redelivery(order.status, trigger) {
        return Ok(Applied::Unchanged);
    }
    let illegal = IllegalTransition {
        order_id: order.order_id,
        from: order.status,
        trigger,
    };
    let next = next_status(order.status, trigger).ok_or(illegal.clone())?;
    match event {
        Event::RiskValidated { reason, .. } => order.reject_reason = *reason,
        Event::OrderRejected { reason, .. } => order.reject_reason = Some(*reason),
        Event::OrderCanceled { reason, .. } => order.cancel_reason = Some(*reason),
        Event::OrderFilled(f) => {
            if f.quantity > order.remaining() {
                return Err(illegal);
            }
            order.filled_quantity += f.quantity;
            order.executed_notional += f.price * f.quantity;
            order.fees += f.fee;
            order.average_fill_price =
                Some(average(order.executed_notional, order.filled_quantity));
            order.last_trade_id = Some(f.trade_id);
        }
        Event::OrderAmended {
            price,
            quantity,
            amend_id,
            ..
        } => {
            order.price = Some(*price);
            order.quantity = *quantity;
            record_amend(
                order,
                LastAmend {
                    amend_id: *amend_id,
                    status: AmendStatus::Applied,
                    reject_reason: None,
                },
                at,
            );
        }
        _ => {}
    }
    order.status = next;
    order.updated_at = at;
    Ok(Applied::Changed)
}

/// An amend risk or the venue refused, as the order records it.
fn refused_amend(event: &Event) -> Option<LastAmend> {
    let (amend_id, reason) = match event {
        Event::AmendValidated {
            approved: false,
            amend_id,
            reason,
            ..
        } => (*amend_id, *reason),
        Event::AmendRejected {
            amend_id, reason, ..
        } => (*amend_id, Some(*reason)),
        _ => return None,
    };
    Some(LastAmend {
        amend_id,
        status: AmendStatus::Rejected,
        reject_reason: reason,
    })
}

/// Records an amend's outcome unless the order has one of a newer amend (ids increase with
/// each `PATCH`) or this very one (a redelivery).
fn record_amend(order: &mut Order, outcome: LastAmend, at: crate::ids::Timestamp) -> Applied {
    let known = order
        .last_amend
        .as_ref()
        .is_some_and(|l| l.amend_id > outcome.amend_id || *l == outcome);
    if known {
        return Applied::Unchanged;
    }
    order.last_amend = Some(outcome);
    order.updated_at = at;
    Applied::Changed
}

/// Records a refused cancel unless the order has this one (a redelivery) or a later one.
fn record_cancel_reject(order: &mut Order, refused: CancelReject) -> Applied {
    if order
        .last_cancel_reject
        .is_some_and(|l| l.at > refused.at || l == refused)
    {
        return Applied::Unchanged;
    }
    order.last_cancel_reject = Some(refused);
    order.updated_at = refused.at;
    Applied::Changed
}

/// A copy of an event already reflected in the order. Producers re-emit identical events after
/// a crash (delivery is at-least-once), so these are expected and are not illegal transitions.
fn is_redelivery(status: OrderStatus, trigger: Trigger) -> bool {
    use OrderStatus as S;
    use Trigger as T;
    matches!(
        (status, trigger),
        (
            S::Accepted | S::PartiallyFilled | S::Filled | S::Canceled | S::Expired,
            T::RiskApproved
        ) | (
            S::Accepted | S::PartiallyFilled | S::Filled | S::Canceled | S::Expired,
            T::VenueAccepted
        ) | (S::Rejected, T::RiskRejected | T::VenueRejected)
            | (S::Canceled, T::Canceled)
            | (S::Expired, T::Expired)
    )
}

/// Average price, exact to the decimal's 28 digits.
fn average(notional: Decimal, quantity: Decimal) -> Decimal {
    if quantity.is_zero() {
        Decimal::ZERO
    } else {
        (notional / quantity).normalize()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use OrderStatus::*;
    use Trigger::*;

    const TRIGGERS: [Trigger; 9] = [
        RiskApproved,
        RiskRejected,
        VenueAccepted,
        VenueRejected,
        PartialFill,
        FinalFill,
        Trigger::Canceled,
        Trigger::Expired,
        Amended,
    ];

    #[test]
    fn the_whole_table() {
        let expected: &[(OrderStatus, Trigger, OrderStatus)] = &[
            (New, RiskApproved, New),
            (New, RiskRejected, Rejected),
            (New, VenueAccepted, Accepted),
            (New, VenueRejected, Rejected),
            (New, Trigger::Canceled, OrderStatus::Canceled),
            (New, Trigger::Expired, OrderStatus::Expired),
            (Accepted, PartialFill, PartiallyFilled),
            (Accepted, FinalFill, Filled),
            (Accepted, Amended, Accepted),
            (Accepted, Trigger::Canceled, OrderStatus::Canceled),
            (Accepted, Trigger::Expired, OrderStatus::Expired),
            (PartiallyFilled, PartialFill, PartiallyFilled),
            (PartiallyFilled, FinalFill, Filled),
            (PartiallyFilled, Amended, PartiallyFilled),
            (PartiallyFilled, Trigger::Canceled, OrderStatus::Canceled),
            (PartiallyFilled, Trigger::Expired, OrderStatus::Expired),
        ];
        for from in OrderStatus::ALL {
            for t in TRIGGERS {
                let want = expected
                    .iter()
                    .find(|(f, tr, _)| *f == from && *tr == t)
                    .map(|e| e.2);
                assert_eq!(next_status(from, t), want, "{from:?} on {t:?}");
            }
        }
    }

    #[test]
    fn redelivered_events_are_not_transitions() {
        assert!(is_redelivery(Accepted, VenueAccepted));
        assert!(is_redelivery(Filled, RiskApproved));
        assert!(is_redelivery(OrderStatus::Canceled, Trigger::Canceled));
        assert!(!is_redelivery(Rejected, VenueAccepted));
        assert!(!is_redelivery(Filled, Trigger::Canceled));
        assert!(!is_redelivery(New, VenueAccepted));
    }

    #[test]
    fn final_states_accept_nothing() {
        for from in [
            Filled,
            OrderStatus::Canceled,
            OrderStatus::Expired,
            Rejected,
        ] {
            assert!(from.is_final());
            for t in TRIGGERS {
                assert_eq!(next_status(from, t), None, "{from:?} on {t:?}");
            }
        }
    }

    fn resting() -> Order {
        use crate::ids::{AccountId, OrderId, Symbol, Timestamp};
        use crate::order::{NewOrder, OrderType, Side, TimeInForce};
        let mut o = Order::from_new(&NewOrder {
            order_id: OrderId(7),
            client_order_id: None,
            account: AccountId(1),
            symbol: Symbol::new("BTC/USD"),
            side: Side::Buy,
            order_type: OrderType::Limit,
            time_in_force: TimeInForce::Gtc,
            post_only: false,
            price: Some(Decimal::from(100)),
            stop_price: None,
            quantity: Decimal::ONE,
            expire_at: None,
            created_at: Timestamp(1),
        });
        o.status = Accepted;
        o
    }

    fn refused_by_risk(amend_id: u64) -> Event {
        Event::AmendValidated {
            account: crate::ids::AccountId(1),
            order_id: crate::ids::OrderId(7),
            amend_id,
            approved: false,
            reason: Some(crate::order::RejectReason::NotionalAboveMax),
            reservation: None,
        }
    }

    fn amended(amend_id: u64, price: u32) -> Event {
        Event::OrderAmended {
            account: crate::ids::AccountId(1),
            order_id: crate::ids::OrderId(7),
            amend_id,
            price: Decimal::from(price),
            quantity: Decimal::ONE,
            leaves_quantity: Decimal::ONE,
            kept_priority: true,
        }
    }

    #[test]
    fn a_refused_amend_is_recorded_and_changes_nothing_else() {
        use crate::ids::Timestamp;
        let mut o = resting();
        assert_eq!(
            apply(&mut o, &refused_by_risk(5), Timestamp(2)),
            Ok(Applied::Changed)
        );
        let refused = Some(LastAmend {
            amend_id: 5,
            status: AmendStatus::Rejected,
            reject_reason: Some(crate::order::RejectReason::NotionalAboveMax),
        });
        assert_eq!(o.last_amend, refused);
        assert_eq!((o.status, o.price), (Accepted, Some(Decimal::from(100))));
        assert_eq!(o.updated_at, Timestamp(2));
        assert_eq!(
            apply(&mut o, &refused_by_risk(5), Timestamp(3)),
            Ok(Applied::Unchanged),
            "a redelivery"
        );
        let by_venue = Event::AmendRejected {
            account: crate::ids::AccountId(1),
            order_id: crate::ids::OrderId(7),
            amend_id: 6,
            reason: crate::order::RejectReason::PostOnlyWouldTake,
        };
        apply(&mut o, &by_venue, Timestamp(4)).unwrap();
        assert_eq!(
            o.last_amend.as_ref().map(|a| (a.amend_id, a.reject_reason)),
            Some((6, Some(crate::order::RejectReason::PostOnlyWouldTake)))
        );
    }

    #[test]
    fn the_newest_amend_decides_what_the_order_says() {
        use crate::ids::Timestamp;
        let mut o = resting();
        apply(&mut o, &amended(4, 101), Timestamp(2)).unwrap();
        assert_eq!(
            o.last_amend.as_ref().map(|a| (a.amend_id, a.status)),
            Some((4, AmendStatus::Applied))
        );
        apply(&mut o, &refused_by_risk(9), Timestamp(3)).unwrap();
        // An older amend the venue applies after a newer one was refused: the price moves,
        // and the newest amend's outcome stays.
        assert_eq!(
            apply(&mut o, &amended(8, 102), Timestamp(4)),
            Ok(Applied::Changed)
        );
        assert_eq!(o.price, Some(Decimal::from(102)));
        assert_eq!(
            o.last_amend.as_ref().map(|a| (a.amend_id, a.status)),
            Some((9, AmendStatus::Rejected))
        );
        assert_eq!(
            apply(&mut o, &refused_by_risk(3), Timestamp(5)),
            Ok(Applied::Unchanged),
            "an older refusal"
        );
    }

    fn cancel_refused(account: u64, reason: crate::order::RejectReason) -> Event {
        Event::CancelRejected {
            account: crate::ids::AccountId(account),
            order_id: crate::ids::OrderId(7),
            reason,
        }
    }

    #[test]
    fn a_refused_cancel_is_recorded_for_the_owner_only() {
        use crate::ids::Timestamp;
        use crate::order::RejectReason::{InstrumentHalted, OrderNotLive, UnknownOrder};
        let mut o = resting();
        let before = o.clone();
        // Another account's cancel of this id: its refusal says nothing about this order.
        assert_eq!(
            apply(&mut o, &cancel_refused(2, UnknownOrder), Timestamp(3)),
            Ok(Applied::Unchanged)
        );
        assert_eq!(o, before);
        assert_eq!(
            apply(&mut o, &cancel_refused(1, InstrumentHalted), Timestamp(4)),
            Ok(Applied::Changed)
        );
        assert_eq!(
            o.last_cancel_reject,
            Some(CancelReject {
                reason: InstrumentHalted,
                at: Timestamp(4)
            })
        );
        assert_eq!((o.status, o.updated_at), (before.status, Timestamp(4)));
        assert_eq!(
            apply(&mut o, &cancel_refused(1, InstrumentHalted), Timestamp(4)),
            Ok(Applied::Unchanged),
            "a redelivery"
        );
        assert_eq!(
            apply(&mut o, &cancel_refused(1, OrderNotLive), Timestamp(2)),
            Ok(Applied::Unchanged),
            "an older refusal"
        );
        assert_eq!(
            apply(&mut o, &cancel_refused(1, OrderNotLive), Timestamp(6)),
            Ok(Applied::Changed)
        );
        assert_eq!(o.last_cancel_reject.map(|r| r.reason), Some(OrderNotLive));
        // Stored bodies from before read back without one.
        let mut old = serde_json::to_value(&before).unwrap();
        old.as_object_mut().unwrap().remove("lastCancelReject");
        assert_eq!(serde_json::from_value::<Order>(old).unwrap(), before);
    }
}
