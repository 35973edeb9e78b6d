//! Cancel and amend: who may, what is left, and when time priority is kept.

use super::*;
use crate::events::CancelReason;
use crate::order::{Liquidity, RejectReason};

fn amend_rejection(ev: &[Event]) -> RejectReason {
    match ev {
        [Event::AmendRejected { reason, .. }] => *reason,
        other => panic!("expected one amend rejection, got {other:?}"),
    }
}

#[test]
fn cancel_removes_a_live_order_with_its_leaves() {
    let mut h = Harness::new();
    h.limit(1, 10, Side::Buy, "100", "2");
    h.limit(2, 20, Side::Sell, "100", "0.5");
    let ev = h.cancel(10, 1);
    assert_eq!(
        ev[0],
        Event::OrderCanceled {
            account: AccountId(10),
            order_id: OrderId(1),
            reason: CancelReason::UserRequested,
            leaves_quantity: d("1.5")
        }
    );
    assert_eq!(book_changes(&ev), [(Side::Buy, d("100"), d("0"))]);
    assert_eq!(h.best(), (None, None));
}

#[test]
fn a_cancel_for_another_reason_says_so() {
    let mut h = Harness::new();
    h.limit(1, 10, Side::Buy, "100", "2");
    let source = h.source();
    let ev = h.run(VenueCommand::Cancel {
        source,
        symbol: btc(),
        account: AccountId(10),
        order_id: OrderId(1),
        reason: Some(CancelReason::CancelAfter),
    });
    assert!(
        matches!(
            ev[0],
            Event::OrderCanceled {
                reason: CancelReason::CancelAfter,
                ..
            }
        ),
        "{ev:?}"
    );
    // The read model keeps it.
    let mut order = crate::order::Order::from_new(&limit(1, 10, Side::Buy, "100", "2"));
    crate::state_machine::apply(&mut order, &ev[0], Timestamp(1)).unwrap();
    assert_eq!(order.cancel_reason, Some(CancelReason::CancelAfter));
}

#[test]
fn cancel_of_an_unknown_done_or_foreign_order_is_rejected() {
    let mut h = Harness::new();
    h.limit(1, 10, Side::Buy, "100", "1");
    h.limit(2, 20, Side::Sell, "100", "1"); // fills order 1 completely
    h.limit(3, 10, Side::Buy, "99", "1");
    for (account, id) in [(10, 1), (10, 42), (20, 3)] {
        let ev = h.cancel(account, id);
        assert_eq!(
            ev,
            [Event::CancelRejected {
                account: AccountId(account),
                order_id: OrderId(id),
                reason: RejectReason::UnknownOrder
            }]
        );
    }
    // The foreign order is untouched.
    assert_eq!(h.best(), (Some(d("99")), None));
}

#[test]
fn reducing_quantity_keeps_time_priority() {
    let mut h = Harness::new();
    h.limit(1, 10, Side::Buy, "100", "2");
    h.limit(2, 11, Side::Buy, "100", "1");
    let ev = h.amend(10, 1, None, Some("1.5"));
    assert!(matches!(
        ev[0],
        Event::OrderAmended { kept_priority: true, leaves_quantity, .. } if leaves_quantity == d("1.5")
    ));
    assert_eq!(book_changes(&ev), [(Side::Buy, d("100"), d("2.5"))]);
    let ev = h.limit(3, 30, Side::Sell, "100", "1");
    assert_eq!(fill_summary(&ev)[0], (1, d("1")));
}

#[test]
fn increasing_quantity_loses_time_priority() {
    let mut h = Harness::new();
    h.limit(1, 10, Side::Buy, "100", "1");
    h.limit(2, 11, Side::Buy, "100", "1");
    let ev = h.amend(10, 1, None, Some("3"));
    assert!(matches!(
        ev[0],
        Event::OrderAmended {
            kept_priority: false,
            ..
        }
    ));
    assert_eq!(book_changes(&ev), [(Side::Buy, d("100"), d("4"))]);
    let ev = h.limit(3, 30, Side::Sell, "100", "1");
    assert_eq!(fill_summary(&ev)[0], (2, d("1")));
}

#[test]
fn a_price_change_moves_the_order_to_the_back_of_its_new_level() {
    let mut h = Harness::new();
    h.limit(1, 10, Side::Buy, "100", "1");
    h.limit(2, 11, Side::Buy, "99", "1");
    let ev = h.amend(10, 1, Some("99"), None);
    assert_eq!(
        ev[0],
        Event::OrderAmended {
            account: AccountId(10),
            order_id: OrderId(1),
            amend_id: h.offset,
            price: d("99"),
            quantity: d("1"),
            leaves_quantity: d("1"),
            kept_priority: false
        }
    );
    assert_eq!(
        book_changes(&ev),
        [(Side::Buy, d("100"), d("0")), (Side::Buy, d("99"), d("2"))]
    );
    let ev = h.limit(3, 30, Side::Sell, "99", "1");
    assert_eq!(fill_summary(&ev)[0], (2, d("1")));
}

#[test]
fn the_new_quantity_must_stay_above_what_is_filled() {
    let mut h = Harness::new();
    h.limit(1, 10, Side::Buy, "100", "2");
    h.limit(2, 20, Side::Sell, "100", "0.5");
    assert_eq!(
        amend_rejection(&h.amend(10, 1, None, Some("0.5"))),
        RejectReason::QuantityNotAboveFilled
    );
    let ev = h.amend(10, 1, None, Some("0.75"));
    assert!(matches!(
        ev[0],
        Event::OrderAmended { leaves_quantity, kept_priority: true, .. } if leaves_quantity == d("0.25")
    ));
    assert_eq!(
        h.venue.depth(&btc(), 1).unwrap().bids[0].quantity,
        d("0.25")
    );
}

#[test]
fn an_amended_price_that_crosses_trades_as_taker() {
    let mut h = Harness::new();
    h.limit(1, 10, Side::Sell, "101", "1");
    h.limit(2, 20, Side::Buy, "100", "2");
    let ev = h.amend(20, 2, Some("101"), None);
    assert_eq!(
        kinds(&ev),
        [
            "OrderAmended",
            "BookChanged",
            "OrderFilled",
            "OrderFilled",
            "Trade",
            "BookChanged",
            "BookChanged"
        ]
    );
    let f = fills(&ev);
    assert_eq!((f[1].order_id.0, f[1].liquidity), (2, Liquidity::Taker));
    assert_eq!(f[1].fee, d("0.202"));
    assert_eq!(h.best(), (Some(d("101")), None));
}

#[test]
fn a_post_only_amend_that_would_cross_is_rejected_and_changes_nothing() {
    let mut h = Harness::new();
    h.limit(1, 10, Side::Sell, "101", "1");
    let mut o = limit(2, 20, Side::Buy, "100", "1");
    o.post_only = true;
    h.submit(o);
    assert_eq!(
        amend_rejection(&h.amend(20, 2, Some("101"), None)),
        RejectReason::PostOnlyWouldTake
    );
    assert_eq!(h.best(), (Some(d("100")), Some(d("101"))));
}

#[test]
fn amends_off_grid_unknown_or_foreign_are_rejected() {
    let mut h = Harness::new();
    h.limit(1, 10, Side::Buy, "100", "1");
    assert_eq!(
        amend_rejection(&h.amend(10, 1, Some("100.1"), None)),
        RejectReason::PriceOffTick
    );
    assert_eq!(
        amend_rejection(&h.amend(10, 1, None, Some("1.001"))),
        RejectReason::QuantityOffStep
    );
    assert_eq!(
        amend_rejection(&h.amend(11, 1, None, Some("0.5"))),
        RejectReason::UnknownOrder
    );
    assert_eq!(
        amend_rejection(&h.amend(10, 7, None, Some("0.5"))),
        RejectReason::UnknownOrder
    );
    assert_eq!(h.venue.depth(&btc(), 1).unwrap().bids[0].quantity, d("1"));
}
