//! Order types, time in force, post-only and the boundary checks.

use super::*;
use crate::events::{ExpireReason, Fill};
use crate::ids::TradeId;
use crate::order::{Liquidity, RejectReason};

#[test]
fn a_limit_order_is_accepted_then_rests_on_its_level() {
    let mut h = Harness::new();
    let ev = h.limit(1, 10, Side::Buy, "100.5", "1.25");
    assert_eq!(kinds(&ev), ["OrderAccepted", "BookChanged"]);
    assert_eq!(book_changes(&ev), [(Side::Buy, d("100.5"), d("1.25"))]);
    h.limit(2, 10, Side::Buy, "100.5", "0.75");
    h.limit(3, 11, Side::Sell, "101", "2");
    assert_eq!(h.best(), (Some(d("100.5")), Some(d("101"))));
    let depth = h.venue.depth(&btc(), 10).unwrap();
    assert_eq!(depth.seq, 3);
    assert_eq!(depth.bids.len(), 1);
    assert_eq!(depth.bids[0].quantity, d("2"));
    assert_eq!(depth.asks[0].price, d("101"));
}

#[test]
fn a_crossing_limit_trades_at_the_makers_price_with_exact_fees() {
    let mut h = Harness::new();
    h.limit(1, 10, Side::Sell, "100", "0.3");
    let ev = h.limit(2, 20, Side::Buy, "105", "0.5");
    assert_eq!(
        kinds(&ev),
        [
            "OrderAccepted",
            "OrderFilled",
            "OrderFilled",
            "Trade",
            "BookChanged",
            "BookChanged"
        ]
    );
    let f = fills(&ev);
    let maker: &Fill = f[0];
    let taker: &Fill = f[1];
    assert_eq!((maker.order_id.0, maker.liquidity), (1, Liquidity::Maker));
    assert_eq!((taker.order_id.0, taker.liquidity), (2, Liquidity::Taker));
    assert_eq!(maker.side, Side::Sell);
    assert_eq!(taker.side, Side::Buy);
    for x in [maker, taker] {
        assert_eq!(x.price, d("100"));
        assert_eq!(x.quantity, d("0.3"));
        assert_eq!(x.trade_id, TradeId(1));
        assert_eq!(x.fee_account, FEES);
        assert_eq!(x.base.as_str(), "BTC");
        assert_eq!(x.quote.as_str(), "USD");
    }
    // 100 × 0.3 = 30 quote; maker 10 bps, taker 20 bps.
    assert_eq!(maker.fee, d("0.03"));
    assert_eq!(taker.fee, d("0.06"));
    assert_eq!(
        (maker.cumulative_quantity, maker.leaves_quantity),
        (d("0.3"), d("0"))
    );
    assert_eq!(
        (taker.cumulative_quantity, taker.leaves_quantity),
        (d("0.3"), d("0.2"))
    );
    // The ask level is gone, the rest of the buy rests at its limit.
    assert_eq!(
        book_changes(&ev),
        [
            (Side::Sell, d("100"), d("0")),
            (Side::Buy, d("105"), d("0.2"))
        ]
    );
    assert_eq!(h.venue.last_price(&btc()), Some(d("100")));
    assert_eq!(h.best(), (Some(d("105")), None));
}

#[test]
fn makers_at_one_price_fill_first_come_first_served() {
    let mut h = Harness::new();
    h.limit(1, 10, Side::Sell, "100", "1");
    h.limit(2, 11, Side::Sell, "100", "1");
    h.limit(3, 12, Side::Sell, "99.5", "1");
    let ev = h.limit(4, 20, Side::Buy, "100", "2.5");
    assert_eq!(
        fill_summary(&ev),
        [
            (3, d("1")),
            (4, d("1")),
            (1, d("1")),
            (4, d("1")),
            (2, d("0.5")),
            (4, d("0.5"))
        ]
    );
    let ids: Vec<u64> = fills(&ev).iter().map(|f| f.trade_id.0).collect();
    assert_eq!(ids, [1, 1, 2, 2, 3, 3]);
    assert_eq!(h.best(), (None, Some(d("100"))));
}

#[test]
fn a_sweep_stops_at_the_limit_and_rests_the_remainder() {
    let mut h = Harness::new();
    h.limit(1, 10, Side::Buy, "100", "1");
    h.limit(2, 10, Side::Buy, "99", "1");
    h.limit(3, 10, Side::Buy, "98", "1");
    let ev = h.limit(4, 20, Side::Sell, "99", "3");
    assert_eq!(
        fill_summary(&ev),
        [(1, d("1")), (4, d("1")), (2, d("1")), (4, d("1"))]
    );
    assert_eq!(h.best(), (Some(d("98")), Some(d("99"))));
    let e = ev.last().unwrap();
    assert_eq!(
        *e,
        Event::BookChanged {
            symbol: btc(),
            seq: 6,
            side: Side::Sell,
            price: d("99"),
            quantity: d("1")
        }
    );
}

#[test]
fn ioc_expires_its_remainder_and_never_rests() {
    let mut h = Harness::new();
    h.limit(1, 10, Side::Sell, "100", "1");
    let mut o = limit(2, 20, Side::Buy, "100", "1.5");
    o.time_in_force = TimeInForce::Ioc;
    let ev = h.submit(o);
    assert_eq!(
        kinds(&ev),
        [
            "OrderAccepted",
            "OrderFilled",
            "OrderFilled",
            "Trade",
            "BookChanged",
            "OrderExpired"
        ]
    );
    assert_eq!(
        ev[5],
        Event::OrderExpired {
            account: AccountId(20),
            order_id: OrderId(2),
            reason: ExpireReason::IocRemainder,
            leaves_quantity: d("0.5")
        }
    );
    assert_eq!(h.best(), (None, None));
}

#[test]
fn fok_that_cannot_fill_in_full_is_accepted_then_expired_without_fills() {
    let mut h = Harness::new();
    h.limit(1, 10, Side::Sell, "100", "1");
    h.limit(2, 10, Side::Sell, "101", "1");
    let mut o = limit(3, 20, Side::Buy, "100.5", "1.5");
    o.time_in_force = TimeInForce::Fok;
    let ev = h.submit(o);
    assert_eq!(kinds(&ev), ["OrderAccepted", "OrderExpired"]);
    assert!(matches!(
        ev[1],
        Event::OrderExpired { reason: ExpireReason::FokNotFillable, leaves_quantity, .. } if leaves_quantity == d("1.5")
    ));
    assert_eq!(h.venue.depth(&btc(), 5).unwrap().asks.len(), 2);

    let mut o = limit(4, 20, Side::Buy, "101", "1.5");
    o.time_in_force = TimeInForce::Fok;
    let ev = h.submit(o);
    assert_eq!(
        fill_summary(&ev),
        [(1, d("1")), (4, d("1")), (2, d("0.5")), (4, d("0.5"))]
    );
    assert!(!kinds(&ev).contains(&"OrderExpired"));
}

#[test]
fn fok_does_not_count_the_accounts_own_orders_as_liquidity() {
    let mut h = Harness::new();
    h.limit(1, 20, Side::Sell, "100", "1");
    h.limit(2, 10, Side::Sell, "100", "1");
    let mut o = limit(3, 20, Side::Buy, "100", "1.5");
    o.time_in_force = TimeInForce::Fok;
    let ev = h.submit(o);
    assert_eq!(kinds(&ev), ["OrderAccepted", "OrderExpired"]);
    // Nothing happened to the own resting order either.
    assert_eq!(h.venue.depth(&btc(), 1).unwrap().asks[0].quantity, d("2"));
}

#[test]
fn a_market_order_fills_up_to_its_protection_price_and_expires_the_rest() {
    let mut h = Harness::new();
    h.limit(1, 10, Side::Sell, "100", "1");
    h.limit(2, 10, Side::Sell, "102", "1");
    h.limit(3, 10, Side::Sell, "104", "1");
    let ev = h.market(
        order(4, 20, Side::Buy, OrderType::Market, "5"),
        Some("103.9"),
    );
    assert_eq!(
        fill_summary(&ev),
        [(1, d("1")), (4, d("1")), (2, d("1")), (4, d("1"))]
    );
    assert_eq!(
        *ev.last().unwrap(),
        Event::OrderExpired {
            account: AccountId(20),
            order_id: OrderId(4),
            reason: ExpireReason::MarketRemainder,
            leaves_quantity: d("3")
        }
    );
    assert_eq!(h.best(), (None, Some(d("104"))));
}

#[test]
fn a_market_order_without_protection_stays_inside_the_band_around_the_last_trade() {
    let mut h = Harness::new();
    h.limit(1, 10, Side::Buy, "100", "1");
    h.limit(2, 11, Side::Sell, "100", "1"); // last = 100
    h.limit(3, 10, Side::Buy, "90", "1");
    h.limit(4, 10, Side::Buy, "89.5", "1");
    let ev = h.submit(order(5, 20, Side::Sell, OrderType::Market, "3"));
    // Band 10%: a SELL fills at 90 and above only.
    assert_eq!(fill_summary(&ev), [(3, d("1")), (5, d("1"))]);
    assert!(matches!(
        ev.last(),
        Some(Event::OrderExpired {
            reason: ExpireReason::MarketRemainder,
            ..
        })
    ));
}

#[test]
fn a_market_order_uses_the_mid_then_the_best_opposite_as_reference() {
    // No trade yet: mid of 100 / 110 is 105, +10% = 115.5.
    let mut h = Harness::new();
    h.limit(1, 10, Side::Buy, "100", "1");
    h.limit(2, 10, Side::Sell, "110", "1");
    h.limit(3, 10, Side::Sell, "115.5", "1");
    h.limit(4, 10, Side::Sell, "116", "1");
    let ev = h.submit(order(5, 20, Side::Buy, OrderType::Market, "3"));
    assert_eq!(
        fill_summary(&ev),
        [(2, d("1")), (5, d("1")), (3, d("1")), (5, d("1"))]
    );

    // One-sided book: the best ask 110 is the reference, +10% = 121.
    let mut h = Harness::new();
    h.limit(2, 10, Side::Sell, "110", "1");
    h.limit(3, 10, Side::Sell, "121", "1");
    h.limit(4, 10, Side::Sell, "121.5", "1");
    let ev = h.submit(order(5, 20, Side::Buy, OrderType::Market, "3"));
    assert_eq!(
        fill_summary(&ev),
        [(2, d("1")), (5, d("1")), (3, d("1")), (5, d("1"))]
    );
}

#[test]
fn a_market_order_on_an_empty_book_is_accepted_and_expires() {
    let mut h = Harness::new();
    let ev = h.submit(order(1, 20, Side::Buy, OrderType::Market, "1"));
    assert_eq!(kinds(&ev), ["OrderAccepted", "OrderExpired"]);
}

#[test]
fn post_only_that_would_take_is_rejected_without_an_accept() {
    let mut h = Harness::new();
    h.limit(1, 10, Side::Sell, "100", "1");
    let mut o = limit(2, 20, Side::Buy, "100", "1");
    o.post_only = true;
    let ev = h.submit(o);
    assert_eq!(
        ev,
        [Event::OrderRejected {
            account: AccountId(20),
            order_id: OrderId(2),
            reason: RejectReason::PostOnlyWouldTake
        }]
    );
    let mut o = limit(3, 20, Side::Buy, "99.5", "1");
    o.post_only = true;
    assert_eq!(kinds(&h.submit(o)), ["OrderAccepted", "BookChanged"]);
    assert_eq!(h.best(), (Some(d("99.5")), Some(d("100"))));
}

#[test]
fn off_grid_and_incomplete_orders_are_rejected_not_rounded() {
    let mut h = Harness::new();
    let reason = |ev: Vec<Event>| match ev.as_slice() {
        [Event::OrderRejected { reason, .. }] => *reason,
        other => panic!("expected one rejection, got {other:?}"),
    };
    assert_eq!(
        reason(h.limit(1, 10, Side::Buy, "100.25", "1")),
        RejectReason::PriceOffTick
    );
    assert_eq!(
        reason(h.limit(2, 10, Side::Buy, "100", "1.005")),
        RejectReason::QuantityOffStep
    );
    assert_eq!(
        reason(h.limit(3, 10, Side::Buy, "100", "0")),
        RejectReason::QuantityBelowMin
    );
    assert_eq!(
        reason(h.limit(4, 10, Side::Buy, "-1", "1")),
        RejectReason::PriceOutOfBand
    );
    assert_eq!(
        reason(h.submit(order(5, 10, Side::Buy, OrderType::Limit, "1"))),
        RejectReason::PriceRequired
    );
    let mut stop = limit(6, 10, Side::Buy, "100", "1");
    stop.order_type = OrderType::StopLimit;
    assert_eq!(
        reason(h.submit(stop.clone())),
        RejectReason::StopPriceRequired
    );
    stop.stop_price = Some(d("100.1"));
    assert_eq!(reason(h.submit(stop)), RejectReason::PriceOffTick);
    let mut o = limit(7, 10, Side::Buy, "100", "1");
    o.symbol = Symbol::new("DOGE/USD");
    assert_eq!(reason(h.submit(o)), RejectReason::UnknownInstrument);
    assert_eq!(h.best(), (None, None));
}

#[test]
fn gtd_with_an_expiry_not_in_the_future_is_rejected() {
    let mut h = Harness::new();
    let mut o = limit(1, 10, Side::Buy, "100", "1");
    o.time_in_force = TimeInForce::Gtd;
    o.expire_at = Some(Timestamp(h.now));
    let ev = h.submit(o.clone());
    assert!(matches!(
        ev[..],
        [Event::OrderRejected {
            reason: RejectReason::ExpireAtInPast,
            ..
        }]
    ));
    o.expire_at = Some(Timestamp(h.now + 1));
    assert_eq!(kinds(&h.submit(o)), ["OrderAccepted", "BookChanged"]);
}

#[test]
fn a_second_submit_of_a_live_order_is_a_copy_and_changes_nothing() {
    let mut h = Harness::new();
    h.limit(1, 10, Side::Buy, "100", "1");
    let ev = h.limit(1, 10, Side::Buy, "99", "1");
    assert!(ev.is_empty(), "{ev:?}");
    let depth = h.venue.depth(&btc(), 5).unwrap();
    assert_eq!(depth.bids.len(), 1);
    assert_eq!(
        (depth.bids[0].price, depth.bids[0].quantity),
        (d("100"), d("1"))
    );
}
