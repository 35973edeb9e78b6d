//! Self-trade prevention, in its three modes.

use super::*;
use crate::events::CancelReason;
use crate::instrument::SelfTradePrevention;

fn setup(stp: SelfTradePrevention) -> Harness {
    let mut h = Harness::with_stp(stp);
    h.limit(1, 10, Side::Sell, "100", "1"); // another account
    h.limit(2, 20, Side::Sell, "100", "1"); // the taker's own
    h.limit(3, 30, Side::Sell, "100", "1");
    h
}

fn stp_cancels(ev: &[Event]) -> Vec<(u64, Decimal)> {
    ev.iter()
        .filter_map(|e| match e {
            Event::OrderCanceled {
                order_id,
                reason: CancelReason::SelfTradePrevention,
                leaves_quantity,
                ..
            } => Some((order_id.0, *leaves_quantity)),
            _ => None,
        })
        .collect()
}

#[test]
fn cancel_resting_removes_the_own_order_and_keeps_matching() {
    let mut h = setup(SelfTradePrevention::CancelResting);
    let ev = h.limit(9, 20, Side::Buy, "100", "2");
    assert_eq!(
        fill_summary(&ev),
        [(1, d("1")), (9, d("1")), (3, d("1")), (9, d("1"))]
    );
    assert_eq!(stp_cancels(&ev), [(2, d("1"))]);
    assert_eq!(h.best(), (None, None));
    // The own order is gone for good.
    assert!(matches!(
        h.cancel(20, 2)[..],
        [Event::CancelRejected { .. }]
    ));
}

#[test]
fn cancel_incoming_stops_the_taker_and_leaves_the_resting_order() {
    let mut h = setup(SelfTradePrevention::CancelIncoming);
    let ev = h.limit(9, 20, Side::Buy, "100", "2");
    assert_eq!(fill_summary(&ev), [(1, d("1")), (9, d("1"))]);
    assert_eq!(stp_cancels(&ev), [(9, d("1"))]);
    let depth = h.venue.depth(&btc(), 5).unwrap();
    assert_eq!(depth.asks[0].quantity, d("2"));
    assert!(depth.bids.is_empty());
}

#[test]
fn cancel_both_removes_the_own_order_and_the_taker() {
    let mut h = setup(SelfTradePrevention::CancelBoth);
    let ev = h.limit(9, 20, Side::Buy, "100", "2");
    assert_eq!(fill_summary(&ev), [(1, d("1")), (9, d("1"))]);
    assert_eq!(stp_cancels(&ev), [(2, d("1")), (9, d("1"))]);
    let depth = h.venue.depth(&btc(), 5).unwrap();
    assert_eq!(depth.asks[0].quantity, d("1"));
    assert!(depth.bids.is_empty());
}
