//! Stop-limit orders: parking, triggering, cascades, priority from the trigger.

use super::*;
use crate::events::CancelReason;

fn stop(id: u64, account: u64, side: Side, stop: &str, price: &str, qty: &str) -> NewOrder {
    NewOrder {
        price: Some(d(price)),
        stop_price: Some(d(stop)),
        ..order(id, account, side, OrderType::StopLimit, qty)
    }
}

/// A trade of `qty` at `price` between two fresh accounts.
fn print(h: &mut Harness, id: u64, price: &str, qty: &str) -> Vec<Event> {
    h.limit(id, 900, Side::Sell, price, qty);
    h.limit(id + 1, 901, Side::Buy, price, qty)
}

#[test]
fn a_buy_stop_parks_until_the_last_trade_reaches_its_stop() {
    let mut h = Harness::new();
    h.limit(1, 10, Side::Sell, "105", "5");
    let ev = h.submit(stop(2, 20, Side::Buy, "102", "105", "1"));
    assert_eq!(kinds(&ev), ["OrderAccepted"]);
    print(&mut h, 100, "101.5", "1");
    assert_eq!(h.venue.depth(&btc(), 5).unwrap().asks[0].quantity, d("5"));

    let ev = print(&mut h, 200, "102", "1");
    // The trade at the stop triggers it; it then buys from the 105 ask as a limit order.
    let f = fill_summary(&ev);
    assert_eq!(f[..2], [(200, d("1")), (201, d("1"))]);
    assert_eq!(f[2..], [(1, d("1")), (2, d("1"))]);
    assert_eq!(h.venue.last_price(&btc()), Some(d("105")));
}

#[test]
fn a_sell_stop_triggers_when_the_last_trade_falls_to_its_stop() {
    let mut h = Harness::new();
    h.limit(1, 10, Side::Buy, "95", "5");
    h.submit(stop(2, 20, Side::Sell, "98", "95", "2"));
    let ev = print(&mut h, 100, "98.5", "1");
    assert_eq!(fills(&ev).len(), 2);
    let ev = print(&mut h, 200, "98", "1");
    assert_eq!(fill_summary(&ev)[2..], [(1, d("2")), (2, d("2"))]);
}

#[test]
fn a_stop_already_reached_at_submit_triggers_at_once() {
    let mut h = Harness::new();
    print(&mut h, 100, "100", "1");
    h.limit(1, 10, Side::Sell, "101", "1");
    let ev = h.submit(stop(2, 20, Side::Buy, "99", "101", "1"));
    assert_eq!(kinds(&ev)[..2], ["OrderAccepted", "OrderFilled"]);
}

#[test]
fn triggered_stops_cascade_through_the_prices_they_make() {
    let mut h = Harness::new();
    h.limit(1, 10, Side::Sell, "103", "1");
    h.limit(2, 10, Side::Sell, "106", "1");
    // Stop A at 102 buys at 103; that trade reaches stop B at 103, which buys at 106.
    h.submit(stop(3, 20, Side::Buy, "102", "103", "1"));
    h.submit(stop(4, 21, Side::Buy, "103", "106", "1"));
    h.submit(stop(5, 22, Side::Buy, "107", "110", "1")); // not reached
    let ev = print(&mut h, 100, "102", "1");
    let ids: Vec<u64> = fill_summary(&ev).iter().map(|f| f.0).collect();
    assert_eq!(ids, [100, 101, 1, 3, 2, 4]);
    assert_eq!(h.venue.last_price(&btc()), Some(d("106")));
    assert_eq!(h.venue.book(&btc()).unwrap().open_orders(), 1);
}

#[test]
fn a_triggered_stop_joins_the_back_of_its_level() {
    let mut h = Harness::new();
    h.submit(stop(1, 20, Side::Buy, "100", "99", "1"));
    h.limit(2, 10, Side::Buy, "99", "1");
    print(&mut h, 100, "100", "1"); // triggers the stop, which rests at 99 behind order 2
    let ev = h.limit(3, 30, Side::Sell, "99", "1.5");
    assert_eq!(
        fill_summary(&ev),
        [(2, d("1")), (3, d("1")), (1, d("0.5")), (3, d("0.5"))]
    );
}

#[test]
fn a_parked_stop_can_be_cancelled_and_then_never_triggers() {
    let mut h = Harness::new();
    h.limit(1, 10, Side::Sell, "105", "1");
    h.submit(stop(2, 20, Side::Buy, "101", "105", "1"));
    let ev = h.cancel(20, 2);
    assert_eq!(
        ev,
        [Event::OrderCanceled {
            account: AccountId(20),
            order_id: OrderId(2),
            reason: CancelReason::UserRequested,
            leaves_quantity: d("1")
        }]
    );
    let ev = print(&mut h, 100, "102", "1");
    assert_eq!(fills(&ev).len(), 2);
    assert_eq!(h.best(), (None, Some(d("105"))));
}

#[test]
fn a_parked_stop_can_be_amended_before_it_triggers() {
    let mut h = Harness::new();
    h.limit(1, 10, Side::Sell, "104", "5");
    h.submit(stop(2, 20, Side::Buy, "101", "103", "1"));
    let ev = h.amend(20, 2, Some("104"), Some("2"));
    assert!(matches!(
        ev[..],
        [Event::OrderAmended {
            kept_priority: true,
            ..
        }]
    ));
    let ev = print(&mut h, 100, "101", "1");
    // It runs with its amended limit and quantity.
    assert_eq!(fill_summary(&ev)[2..], [(1, d("2")), (2, d("2"))]);
}

#[test]
fn a_gtd_stop_past_its_expiry_expires_instead_of_triggering() {
    let mut h = Harness::new();
    h.limit(1, 10, Side::Sell, "105", "1");
    let mut o = stop(2, 20, Side::Buy, "101", "105", "1");
    o.time_in_force = TimeInForce::Gtd;
    o.expire_at = Some(Timestamp(h.now + 10));
    h.submit(o);
    h.now += 10;
    let ev = print(&mut h, 100, "101", "1");
    assert!(ev.iter().any(|e| matches!(
        e,
        Event::OrderExpired {
            order_id: OrderId(2),
            reason: crate::events::ExpireReason::GtdExpired,
            ..
        }
    )));
    assert_eq!(h.best(), (None, Some(d("105"))));
}
