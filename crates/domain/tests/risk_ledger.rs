//! The ledger fold: reservations, settlement, fees, amends, release and idempotency.

use oms_domain::events::{CancelReason, Event, ExpireReason, Fill, Reservation};
use oms_domain::ids::{AccountId, Asset, OrderId, Symbol, TradeId};
use oms_domain::ledger::{Balance, Ledger, LedgerError};
use oms_domain::order::{Liquidity, RejectReason, Side};
use oms_domain::state_machine::Applied;
use oms_domain::Decimal;

const ALICE: AccountId = AccountId(1);
const BOB: AccountId = AccountId(2);
const FEES: AccountId = AccountId(99);

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn usd() -> Asset {
    Asset::new("USD")
}

fn btc() -> Asset {
    Asset::new("BTC")
}

fn bal(available: &str, reserved: &str) -> Balance {
    Balance {
        available: d(available),
        reserved: d(reserved),
    }
}

fn deposit(account: AccountId, asset: Asset, amount: &str, reference: &str) -> Event {
    Event::Deposit {
        account,
        asset,
        amount: d(amount),
        reference: reference.into(),
    }
}

fn approved(account: AccountId, order: u64, asset: Asset, amount: &str, per_unit: &str) -> Event {
    Event::RiskValidated {
        account,
        order_id: OrderId(order),
        symbol: Symbol::new("BTC/USD"),
        approved: true,
        reason: None,
        reservation: Some(Reservation {
            asset,
            amount: d(amount),
            per_unit: d(per_unit),
            fee_rate: None,
        }),
        protection_price: None,
    }
}

/// A BUY of `qty` at `price` reserves price × (1 + 0.002) per unit.
fn buy(account: AccountId, order: u64, price: &str, qty: &str) -> Event {
    let per_unit = d(price) * d("1.002");
    let amount = per_unit * d(qty);
    approved(
        account,
        order,
        usd(),
        &amount.to_string(),
        &per_unit.to_string(),
    )
}

fn sell(account: AccountId, order: u64, qty: &str) -> Event {
    approved(account, order, btc(), qty, "1")
}

#[allow(clippy::too_many_arguments)]
fn fill(
    account: AccountId,
    order: u64,
    side: Side,
    trade: u64,
    price: &str,
    qty: &str,
    fee: &str,
    leaves: &str,
) -> Event {
    Event::OrderFilled(Fill {
        account,
        order_id: OrderId(order),
        symbol: Symbol::new("BTC/USD"),
        side,
        trade_id: TradeId(trade),
        price: d(price),
        quantity: d(qty),
        liquidity: Liquidity::Taker,
        fee: d(fee),
        base: btc(),
        quote: usd(),
        cumulative_quantity: Decimal::ZERO,
        leaves_quantity: d(leaves),
        fee_account: FEES,
        at: None,
    })
}

fn canceled(account: AccountId, order: u64) -> Event {
    Event::OrderCanceled {
        account,
        order_id: OrderId(order),
        reason: CancelReason::UserRequested,
        leaves_quantity: Decimal::ZERO,
    }
}

fn funded() -> Ledger {
    let mut l = Ledger::new();
    l.apply(&deposit(ALICE, usd(), "100000", "a-usd")).unwrap();
    l.apply(&deposit(BOB, btc(), "10", "b-btc")).unwrap();
    l
}

fn apply_all(l: &mut Ledger, events: &[Event]) {
    for e in events {
        l.apply(e).unwrap_or_else(|err| panic!("{e:?}: {err}"));
    }
}

#[test]
fn deposits_credit_available_once() {
    let mut l = Ledger::new();
    let dep = deposit(ALICE, usd(), "250.5", "ref-1");
    assert_eq!(l.apply(&dep).unwrap(), Applied::Changed);
    assert_eq!(l.apply(&dep).unwrap(), Applied::Unchanged);
    assert_eq!(l.balance(ALICE, &usd()), bal("250.5", "0"));
    // Another reference is another deposit.
    l.apply(&deposit(ALICE, usd(), "1", "ref-2")).unwrap();
    assert_eq!(l.balance(ALICE, &usd()), bal("251.5", "0"));
    assert_eq!(l.balance(BOB, &usd()), Balance::default());
}

#[test]
fn non_positive_deposits_are_refused() {
    let mut l = Ledger::new();
    for amount in ["0", "-5"] {
        let err = l.apply(&deposit(ALICE, usd(), amount, amount)).unwrap_err();
        assert!(matches!(err, LedgerError::NonPositive { .. }), "{err}");
    }
    assert_eq!(l, Ledger::new());
}

#[test]
fn approval_moves_the_reservation_from_available_to_reserved() {
    let mut l = funded();
    l.apply(&buy(ALICE, 1, "50000", "1")).unwrap();
    assert_eq!(l.balance(ALICE, &usd()), bal("49900", "50100"));
    assert_eq!(l.order_reserved(OrderId(1)), Some(d("50100")));
    // Redelivered approval reserves nothing more.
    assert_eq!(
        l.apply(&buy(ALICE, 1, "50000", "1")).unwrap(),
        Applied::Unchanged
    );
    assert_eq!(l.balance(ALICE, &usd()), bal("49900", "50100"));
}

#[test]
fn an_approval_beyond_available_is_refused_whole() {
    let mut l = funded();
    let before = l.clone();
    let err = l.apply(&buy(ALICE, 1, "50000", "2")).unwrap_err();
    assert!(matches!(err, LedgerError::Negative { .. }), "{err}");
    assert_eq!(l, before);
    assert_eq!(l.order_reserved(OrderId(1)), None);
}

#[test]
fn buy_fill_with_price_improvement_returns_the_difference() {
    let mut l = funded();
    l.apply(&buy(ALICE, 1, "100", "2")).unwrap(); // reserves 200.4 at 100.2 per unit
    assert_eq!(l.balance(ALICE, &usd()), bal("99799.6", "200.4"));
    // 1 filled at 99 with a 0.099 maker fee: releases 100.2, costs 99.099.
    l.apply(&fill(ALICE, 1, Side::Buy, 7, "99", "1", "0.099", "1"))
        .unwrap();
    assert_eq!(l.balance(ALICE, &usd()), bal("99800.701", "100.2"));
    assert_eq!(l.balance(ALICE, &btc()), bal("1", "0"));
    assert_eq!(l.balance(FEES, &usd()), bal("0.099", "0"));
    assert_eq!(l.order_reserved(OrderId(1)), Some(d("100.2")));
}

#[test]
fn the_last_fill_releases_what_is_left_and_ends_the_order() {
    let mut l = funded();
    l.apply(&buy(ALICE, 1, "100", "2")).unwrap();
    l.apply(&fill(ALICE, 1, Side::Buy, 7, "100", "1", "0.2", "1"))
        .unwrap();
    l.apply(&fill(ALICE, 1, Side::Buy, 8, "98", "1", "0.196", "0"))
        .unwrap();
    // Paid 100 + 0.2 + 98 + 0.196 for 2 BTC; nothing stays reserved.
    assert_eq!(l.balance(ALICE, &usd()), bal("99801.604", "0"));
    assert_eq!(l.balance(ALICE, &btc()), bal("2", "0"));
    assert_eq!(l.balance(FEES, &usd()), bal("0.396", "0"));
    assert_eq!(l.order_reserved(OrderId(1)), None);
    assert_eq!(l.finished_order(OrderId(1)), Some(ALICE));
}

#[test]
fn sell_fill_releases_base_and_credits_quote_less_fee() {
    let mut l = funded();
    l.apply(&sell(BOB, 2, "3")).unwrap();
    assert_eq!(l.balance(BOB, &btc()), bal("7", "3"));
    l.apply(&fill(BOB, 2, Side::Sell, 1, "50000", "0.5", "50", "2.5"))
        .unwrap();
    assert_eq!(l.balance(BOB, &btc()), bal("7", "2.5"));
    assert_eq!(l.balance(BOB, &usd()), bal("24950", "0"));
    assert_eq!(l.balance(FEES, &usd()), bal("50", "0"));
}

#[test]
fn both_sides_of_a_trade_conserve_every_asset() {
    let mut l = funded();
    apply_all(
        &mut l,
        &[
            buy(ALICE, 1, "50000", "1"),
            sell(BOB, 2, "1"),
            fill(ALICE, 1, Side::Buy, 1, "49999.5", "0.4", "19.9998", "0.6"),
            fill(BOB, 2, Side::Sell, 1, "49999.5", "0.4", "19.9998", "0.6"),
        ],
    );
    let totals = l.totals();
    assert_eq!(totals[&usd()], d("100000"));
    assert_eq!(totals[&btc()], d("10"));
    assert_eq!(l.balance(FEES, &usd()), bal("39.9996", "0"));
}

#[test]
fn redelivered_and_older_fills_are_ignored() {
    let mut l = funded();
    l.apply(&sell(BOB, 2, "3")).unwrap();
    let f5 = fill(BOB, 2, Side::Sell, 5, "100", "1", "0", "2");
    assert_eq!(l.apply(&f5).unwrap(), Applied::Changed);
    let after = l.clone();
    assert_eq!(l.apply(&f5).unwrap(), Applied::Unchanged);
    let older = fill(BOB, 2, Side::Sell, 4, "100", "1", "0", "1");
    assert_eq!(l.apply(&older).unwrap(), Applied::Unchanged);
    assert_eq!(l, after);
}

#[test]
fn cancel_expiry_and_rejection_release_everything() {
    let mut l = funded();
    let ends = [
        canceled(ALICE, 1),
        Event::OrderExpired {
            account: ALICE,
            order_id: OrderId(2),
            reason: ExpireReason::GtdExpired,
            leaves_quantity: d("1"),
        },
        Event::OrderRejected {
            account: ALICE,
            order_id: OrderId(3),
            reason: RejectReason::PostOnlyWouldTake,
        },
    ];
    for (i, end) in ends.iter().enumerate() {
        let id = i as u64 + 1;
        l.apply(&buy(ALICE, id, "1000", "1")).unwrap();
        assert_eq!(l.balance(ALICE, &usd()).reserved, d("1002"));
        if id == 1 {
            // A partial fill first: only the rest is released at the end.
            l.apply(&fill(ALICE, 1, Side::Buy, 1, "1000", "0.5", "0", "0.5"))
                .unwrap();
        }
        l.apply(end).unwrap();
        assert_eq!(l.balance(ALICE, &usd()).reserved, Decimal::ZERO, "{end:?}");
        assert_eq!(l.order_reserved(OrderId(id)), None);
        assert_eq!(l.finished_order(OrderId(id)), Some(ALICE));
    }
    // One half-fill of 500 is all that was spent.
    assert_eq!(l.balance(ALICE, &usd()), bal("99500", "0"));
}

#[test]
fn events_after_the_end_are_ignored() {
    let mut l = funded();
    l.apply(&buy(ALICE, 1, "1000", "1")).unwrap();
    l.apply(&canceled(ALICE, 1)).unwrap();
    let after = l.clone();
    for e in [
        buy(ALICE, 1, "1000", "1"),
        fill(ALICE, 1, Side::Buy, 9, "1000", "1", "0", "0"),
        canceled(ALICE, 1),
    ] {
        assert_eq!(l.apply(&e).unwrap(), Applied::Unchanged, "{e:?}");
    }
    assert_eq!(l, after);
}

#[test]
fn a_risk_rejection_reserves_nothing_and_ends_the_order() {
    let mut l = funded();
    let rejected = Event::RiskValidated {
        account: ALICE,
        order_id: OrderId(1),
        symbol: Symbol::new("BTC/USD"),
        approved: false,
        reason: Some(RejectReason::InsufficientBalance),
        reservation: None,
        protection_price: None,
    };
    assert_eq!(l.apply(&rejected).unwrap(), Applied::Changed);
    assert_eq!(l.balance(ALICE, &usd()), bal("100000", "0"));
    assert!(l.knows_order(OrderId(1)));
    // A late approval of the same order is not applied.
    assert_eq!(
        l.apply(&buy(ALICE, 1, "1", "1")).unwrap(),
        Applied::Unchanged
    );
    assert_eq!(l.balance(ALICE, &usd()), bal("100000", "0"));
}

#[test]
fn a_fill_that_would_go_negative_is_refused_whole() {
    let mut l = funded();
    // A BUY that reserved 100 USD filled at a price Alice cannot pay.
    l.apply(&approved(ALICE, 5, usd(), "100", "100")).unwrap();
    let before = l.clone();
    let err = l
        .apply(&fill(ALICE, 5, Side::Buy, 1, "200000", "1", "0", "0"))
        .unwrap_err();
    assert!(matches!(err, LedgerError::Negative { .. }), "{err}");
    assert_eq!(l, before);
}

#[test]
fn a_fill_in_another_asset_than_the_order_holds_is_refused() {
    let mut l = funded();
    l.apply(&sell(BOB, 2, "1")).unwrap();
    let before = l.clone();
    // Bob's SELL holds BTC; a BUY fill for it would settle in USD.
    let err = l
        .apply(&fill(BOB, 2, Side::Buy, 1, "100", "1", "0", "0"))
        .unwrap_err();
    assert!(matches!(err, LedgerError::AssetMismatch { .. }), "{err}");
    assert_eq!(l, before);
}

fn amend_validated(order: u64, amend: u64, amount: &str, per_unit: &str) -> Event {
    Event::AmendValidated {
        account: ALICE,
        order_id: OrderId(order),
        amend_id: amend,
        approved: true,
        reason: None,
        reservation: Some(Reservation {
            asset: usd(),
            amount: d(amount),
            per_unit: d(per_unit),
            fee_rate: None,
        }),
    }
}

fn amended(order: u64, amend: u64, price: &str, qty: &str, leaves: &str) -> Event {
    Event::OrderAmended {
        account: ALICE,
        order_id: OrderId(order),
        amend_id: amend,
        price: d(price),
        quantity: d(qty),
        leaves_quantity: d(leaves),
        kept_priority: false,
    }
}

#[test]
fn an_amend_up_holds_the_increase_until_the_venue_applies_it() {
    let mut l = funded();
    l.apply(&buy(ALICE, 1, "1000", "1")).unwrap(); // 1002 reserved
                                                   // To 2 at 1000: needs 2004, holds 1002 more now.
    l.apply(&amend_validated(1, 1, "2004", "1002")).unwrap();
    assert_eq!(l.balance(ALICE, &usd()), bal("97996", "2004"));
    assert_eq!(l.order_reserved(OrderId(1)), Some(d("2004")));
    l.apply(&amended(1, 1, "1000", "2", "2")).unwrap();
    assert_eq!(l.balance(ALICE, &usd()), bal("97996", "2004"));
    assert_eq!(l.hold(OrderId(1)).unwrap().reserved_left, d("2004"));
    assert!(l.hold(OrderId(1)).unwrap().pending_amends.is_empty());
    // Redelivery changes nothing.
    assert_eq!(
        l.apply(&amended(1, 1, "1000", "2", "2")).unwrap(),
        Applied::Unchanged
    );
    assert_eq!(
        l.apply(&amend_validated(1, 1, "2004", "1002")).unwrap(),
        Applied::Unchanged
    );
    assert_eq!(l.balance(ALICE, &usd()), bal("97996", "2004"));
}

#[test]
fn a_rejected_amend_releases_its_hold() {
    let mut l = funded();
    l.apply(&buy(ALICE, 1, "1000", "1")).unwrap();
    l.apply(&amend_validated(1, 3, "3006", "1002")).unwrap();
    assert_eq!(l.balance(ALICE, &usd()), bal("96994", "3006"));
    l.apply(&Event::AmendRejected {
        account: ALICE,
        order_id: OrderId(1),
        amend_id: 3,
        reason: RejectReason::OrderNotLive,
    })
    .unwrap();
    assert_eq!(l.balance(ALICE, &usd()), bal("98998", "1002"));
    assert_eq!(l.order_reserved(OrderId(1)), Some(d("1002")));
}

#[test]
fn an_amend_down_holds_nothing_and_returns_the_excess() {
    let mut l = funded();
    l.apply(&buy(ALICE, 1, "1000", "2")).unwrap(); // 2004 reserved
    l.apply(&amend_validated(1, 1, "501", "501")).unwrap(); // 1 at 500
    assert_eq!(l.balance(ALICE, &usd()), bal("97996", "2004"));
    l.apply(&amended(1, 1, "500", "1", "1")).unwrap();
    assert_eq!(l.balance(ALICE, &usd()), bal("99499", "501"));
    assert_eq!(l.hold(OrderId(1)).unwrap().per_unit, d("501"));
    // Later fills release at the new per-unit.
    l.apply(&fill(ALICE, 1, Side::Buy, 1, "500", "1", "0", "0"))
        .unwrap();
    assert_eq!(l.balance(ALICE, &usd()), bal("99500", "0"));
}

#[test]
fn an_amend_lowering_the_price_holds_enough_for_fills_before_it_applies() {
    let mut l = funded();
    l.apply(&buy(ALICE, 1, "1000", "2")).unwrap(); // 2004 at 1002 per unit
                                                   // To 3 units at 500 (501 per unit) needs 1503, less than reserved; but each unit the venue
                                                   // fills at the old price first releases 1002 and leaves one more unit to hold at 501.
                                                   // So the increase in quantity (1 unit at 501) is held now.
    l.apply(&amend_validated(1, 1, "1503", "501")).unwrap();
    assert_eq!(l.balance(ALICE, &usd()), bal("97495", "2505"));
    l.apply(&fill(ALICE, 1, Side::Buy, 1, "1000", "1.5", "0", "0.5"))
        .unwrap();
    l.apply(&amended(1, 1, "500", "3", "1.5")).unwrap();
    assert_eq!(l.hold(OrderId(1)).unwrap().reserved_left, d("751.5"));
    assert_eq!(l.balance(ALICE, &usd()), bal("97748.5", "751.5"));
}

#[test]
fn an_order_ending_with_an_amend_pending_releases_the_hold_too() {
    let mut l = funded();
    l.apply(&buy(ALICE, 1, "1000", "1")).unwrap();
    l.apply(&amend_validated(1, 1, "2004", "1002")).unwrap();
    l.apply(&canceled(ALICE, 1)).unwrap();
    assert_eq!(l.balance(ALICE, &usd()), bal("100000", "0"));
}

#[test]
fn snapshots_round_trip_through_json() {
    let mut l = funded();
    apply_all(
        &mut l,
        &[
            buy(ALICE, 1, "1000", "2"),
            sell(BOB, 2, "1"),
            fill(BOB, 2, Side::Sell, 1, "1000", "0.5", "1", "0.5"),
            amend_validated(1, 4, "3006", "1002"),
        ],
    );
    let json = serde_json::to_string(&l).unwrap();
    let back: Ledger = serde_json::from_str(&json).unwrap();
    assert_eq!(back, l);
    // The restored ledger still deduplicates.
    let mut back = back;
    assert_eq!(
        back.apply(&deposit(ALICE, usd(), "100000", "a-usd"))
            .unwrap(),
        Applied::Unchanged
    );
    assert_eq!(
        back.apply(&fill(BOB, 2, Side::Sell, 1, "1000", "0.5", "1", "0.5"))
            .unwrap(),
        Applied::Unchanged
    );
}

#[test]
fn ended_orders_are_compact_in_a_snapshot_and_the_older_form_still_loads() {
    let mut l = funded();
    for id in [10, 11, 250, 7] {
        apply_all(&mut l, &[buy(ALICE, id, "1000", "1"), canceled(ALICE, id)]);
    }
    let json: serde_json::Value = serde_json::to_value(&l).unwrap();
    // Sorted by id, each as (gap from the previous id, account).
    assert_eq!(
        json["ended"],
        serde_json::json!([7, ALICE.0, 3, ALICE.0, 1, ALICE.0, 239, ALICE.0])
    );
    let back: Ledger = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(back, l);

    // Snapshots written before kept them as an object keyed by id.
    let mut older = json;
    older["ended"] =
        serde_json::json!({"7": ALICE.0, "10": ALICE.0, "11": ALICE.0, "250": ALICE.0});
    let mut back: Ledger = serde_json::from_value(older).unwrap();
    assert_eq!(back, l);
    assert_eq!(back.finished_order(OrderId(250)), Some(ALICE));
    // A late event for an ended order is still recognised.
    assert_eq!(
        back.apply(&canceled(ALICE, 250)).unwrap(),
        Applied::Unchanged
    );

    let truncated = serde_json::json!([7, ALICE.0, 3]);
    let mut broken = serde_json::to_value(&l).unwrap();
    broken["ended"] = truncated;
    assert!(serde_json::from_value::<Ledger>(broken).is_err());
}

#[test]
fn reports_for_an_order_the_ledger_holds_nothing_for_are_copies_and_change_nothing() {
    // Every report follows the order's risk decision in its partition: without a hold the
    // order ended before (and may be forgotten), so a fill must not settle a second time.
    let mut l = funded();
    let before = l.clone();
    for e in [
        fill(BOB, 3, Side::Sell, 1, "50000", "1", "50", "0"),
        fill(ALICE, 4, Side::Buy, 1, "50000", "0.5", "50", "0.5"),
        canceled(ALICE, 4),
    ] {
        assert_eq!(l.apply(&e).unwrap(), Applied::Unchanged, "{e:?}");
    }
    assert_eq!(l, before);
    assert!(!l.knows_order(OrderId(3)) && !l.knows_order(OrderId(4)));
}

/// An order id issued `minutes` after the id epoch (sequence `seq` in that millisecond).
fn issued(minutes: i64, seq: u64) -> u64 {
    ((minutes as u64 * 60_000) << OrderId::TIME_SHIFT) | seq
}

#[test]
fn ended_orders_are_forgotten_once_the_horizon_has_passed_on_the_newest_order() {
    let hour = std::time::Duration::from_secs(3600);
    let mut l = funded();
    l.remember_ended_for(hour);
    let old = issued(0, 1);
    let live = issued(1, 1);
    apply_all(
        &mut l,
        &[
            buy(ALICE, old, "1000", "1"),
            canceled(ALICE, old),
            buy(ALICE, live, "1000", "1"),
        ],
    );
    // Within the horizon a repeated decision for the ended order is recognised.
    l.apply(&buy(ALICE, issued(50, 1), "1000", "1")).unwrap();
    assert!(l.knows_order(OrderId(old)));
    assert_eq!(
        l.apply(&buy(ALICE, old, "1000", "1")).unwrap(),
        Applied::Unchanged
    );

    // An order decided an hour and a sixteenth after it: the ended order is forgotten, the
    // live one is not, and a copy of the ended order's last report still changes nothing.
    // An order decided an hour and a sixteenth after it: the ended order is forgotten (the
    // risk engine now refuses an OrderCreated for it, see `issued_before_horizon`), the live
    // one is not, and a copy of the ended order's last report still changes nothing.
    l.apply(&buy(ALICE, issued(65, 1), "1000", "1")).unwrap();
    assert_eq!(l.ended_remembered(), 0);
    assert!(!l.knows_order(OrderId(old)));
    assert_eq!(l.finished_order(OrderId(old)), None);
    assert!(l.issued_before_horizon(OrderId(old)));
    assert!(!l.issued_before_horizon(OrderId(issued(5, 1))));
    assert!(l.knows_order(OrderId(live)));
    let before = l.clone();
    for e in [
        canceled(ALICE, old),
        fill(ALICE, old, Side::Buy, 3, "1000", "1", "0", "0"),
    ] {
        assert_eq!(l.apply(&e).unwrap(), Applied::Unchanged, "{e:?}");
    }
    assert_eq!(l, before);

    // A refusal for the order's time does not move the clock: its id is what risk distrusted.
    let far_ahead = issued(10_000, 1);
    l.apply(&Event::RiskValidated {
        account: BOB,
        order_id: OrderId(far_ahead),
        symbol: Symbol::new("BTC/USD"),
        approved: false,
        reason: Some(RejectReason::OrderTimeOutOfRange),
        reservation: None,
        protection_price: None,
    })
    .unwrap();
    assert!(!l.issued_before_horizon(OrderId(issued(50, 1))));

    // A live order older than the horizon that ends now is not remembered at all; one
    // issued inside it is.
    apply_all(
        &mut l,
        &[canceled(ALICE, live), canceled(ALICE, issued(50, 1))],
    );
    assert_eq!(l.finished_order(OrderId(live)), None);
    assert_eq!(l.finished_order(OrderId(issued(50, 1))), Some(ALICE));
    assert_eq!(l.ended_remembered(), 2, "that one and the refused one");
}

#[test]
fn forgetting_is_the_same_whether_or_not_the_ledger_went_through_a_snapshot() {
    // A restarted stage replays its tail onto a snapshot; it must end where one that never
    // stopped does, or the stages would disagree about which orders they remember.
    let events: Vec<Event> = (0..200)
        .flat_map(|i| {
            let id = issued(i * 3, 7);
            [buy(ALICE, id, "1", "1"), canceled(ALICE, id)]
        })
        .collect();
    let fresh = || {
        let mut l = funded();
        l.remember_ended_for(std::time::Duration::from_secs(3600));
        l
    };
    let mut straight = fresh();
    apply_all(&mut straight, &events);
    for cut in [1, 77, 200, 333] {
        let mut first = fresh();
        apply_all(&mut first, &events[..cut]);
        let mut back: Ledger =
            serde_json::from_slice(&serde_json::to_vec(&first).unwrap()).unwrap();
        assert_eq!(back, first, "every field survives the snapshot");
        apply_all(&mut back, &events[cut..]);
        assert_eq!(back, straight, "snapshot after {cut} events");
    }
    // 200 orders 3 minutes apart, remembered for an hour: the last 21 or so, never all.
    assert!(
        (20..=24).contains(&straight.ended_remembered()),
        "{}",
        straight.ended_remembered()
    );
}
