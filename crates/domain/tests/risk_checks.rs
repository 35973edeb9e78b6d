//! The risk engine: every check with its reject code, reservations and their release,
//! settlement through the engine, amends, cancels, idempotency and replay.

use oms_domain::events::{CancelReason, Envelope, Event, ExpireReason, Fill, Reservation};
use oms_domain::ids::{AccountId, Asset, OrderId, Symbol, Timestamp, TradeId};
use oms_domain::instrument::{default_instruments, TradingStatus};
use oms_domain::ledger::Balance;
use oms_domain::order::{Liquidity, NewOrder, OrderType, RejectReason, Side, TimeInForce};
use oms_domain::risk::{AccountLimits, Decision, RiskConfig, RiskEngine};
use oms_domain::venue::{Source, VenueCommand};
use oms_domain::Decimal;

use RejectReason as R;

const ALICE: AccountId = AccountId(1);
const BOB: AccountId = AccountId(2);
const NOBODY: AccountId = AccountId(3);
const FEES: AccountId = AccountId(99);
/// The order-id epoch: ids below 2^22 (every id here) were issued then, and the risk engine
/// refuses ids issued far ahead of its clock.
const NOW: Timestamp = Timestamp(OrderId::EPOCH_MS);
const SRC: Source = Source {
    partition: 0,
    offset: 0,
};

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn asset(s: &str) -> Asset {
    Asset::new(s)
}

fn btcusd() -> Symbol {
    Symbol::new("BTC/USD")
}

fn config() -> RiskConfig {
    RiskConfig {
        max_open_orders: 5,
        max_order_notional: d("1000000"),
        orders_per_second: 1_000,
        burst: 1_000,
        ..RiskConfig::default()
    }
}

/// BTC/USD: tick 0.01, step 0.00001, min notional 1, max quantity 1000, fees 10/20 bps, ±10%.
/// Alice holds 1,000,000 USD, Bob 100 BTC; the last BTC/USD trade was at 50,000.
fn engine_with(config: RiskConfig) -> RiskEngine {
    let mut e = RiskEngine::new(default_instruments(), config, FEES);
    for (account, a, amount) in [(ALICE, "USD", "1000000"), (BOB, "BTC", "100")] {
        deposit(&mut e, account, a, amount);
    }
    e.on_market(&btcusd(), Some(d("50000")), None, None);
    e
}

fn engine() -> RiskEngine {
    engine_with(config())
}

fn deposit(e: &mut RiskEngine, account: AccountId, a: &str, amount: &str) {
    let ev = Event::Deposit {
        account,
        asset: asset(a),
        amount: d(amount),
        reference: format!("{account}-{a}-{amount}"),
    };
    e.apply(&Envelope::new(NOW, ev)).unwrap();
}

fn order(id: u64, account: AccountId, side: Side, price: Option<&str>, qty: &str) -> NewOrder {
    NewOrder {
        order_id: OrderId(id),
        client_order_id: None,
        account,
        symbol: btcusd(),
        side,
        order_type: if price.is_some() {
            OrderType::Limit
        } else {
            OrderType::Market
        },
        time_in_force: TimeInForce::Gtc,
        post_only: false,
        price: price.map(d),
        stop_price: None,
        quantity: d(qty),
        expire_at: None,
        created_at: NOW,
    }
}

fn limit(id: u64, account: AccountId, side: Side, price: &str, qty: &str) -> NewOrder {
    order(id, account, side, Some(price), qty)
}

fn reason(decision: &Decision) -> Option<RejectReason> {
    decision.reject_reason()
}

fn decide(e: &mut RiskEngine, o: &NewOrder) -> Decision {
    e.decide_order(NOW, SRC, o)
}

fn rejects(e: &mut RiskEngine, o: &NewOrder) -> RejectReason {
    let dec = decide(e, o);
    assert!(dec.command.is_none(), "approved {o:?}");
    let r = reason(&dec).expect("a reject code");
    // A refused order reserves nothing and is not live.
    assert!(!e.is_live(o.order_id));
    assert_eq!(e.ledger().order_reserved(o.order_id), None);
    r
}

fn approves(e: &mut RiskEngine, o: &NewOrder) -> Decision {
    let dec = decide(e, o);
    assert!(dec.approved(), "rejected {o:?}: {:?}", reason(&dec));
    dec
}

fn reservation(dec: &Decision) -> Reservation {
    match &dec.events[..] {
        [Event::RiskValidated {
            reservation: Some(r),
            ..
        }] => r.clone(),
        other => panic!("no reservation in {other:?}"),
    }
}

fn usd(e: &RiskEngine, account: AccountId) -> Balance {
    e.ledger().balance(account, &asset("USD"))
}

fn btc(e: &RiskEngine, account: AccountId) -> Balance {
    e.ledger().balance(account, &asset("BTC"))
}

fn apply(e: &mut RiskEngine, ev: Event) {
    e.apply(&Envelope::new(NOW, ev)).unwrap();
}

#[allow(clippy::too_many_arguments)]
fn fill(
    account: AccountId,
    id: u64,
    side: Side,
    trade: u64,
    price: &str,
    qty: &str,
    fee: &str,
    leaves: &str,
) -> Event {
    Event::OrderFilled(Fill {
        account,
        order_id: OrderId(id),
        symbol: btcusd(),
        side,
        trade_id: TradeId(trade),
        price: d(price),
        quantity: d(qty),
        liquidity: Liquidity::Maker,
        fee: d(fee),
        base: asset("BTC"),
        quote: asset("USD"),
        cumulative_quantity: Decimal::ZERO,
        leaves_quantity: d(leaves),
        fee_account: FEES,
        at: None,
    })
}

// ---- each check and its code ----

#[test]
fn unknown_instrument() {
    let mut e = engine();
    let mut o = limit(1, ALICE, Side::Buy, "50000", "1");
    o.symbol = Symbol::new("DOGE/USD");
    assert_eq!(rejects(&mut e, &o), R::UnknownInstrument);
}

#[test]
fn halted_and_cancel_only_instruments() {
    let mut e = engine();
    let mut inst = e.instrument(&btcusd()).unwrap().clone();
    inst.status = TradingStatus::Halted;
    e.set_instrument(inst.clone());
    assert_eq!(
        rejects(&mut e, &limit(1, ALICE, Side::Buy, "50000", "1")),
        R::InstrumentHalted
    );
    inst.status = TradingStatus::CancelOnly;
    e.set_instrument(inst.clone());
    assert_eq!(
        rejects(&mut e, &limit(2, ALICE, Side::Buy, "50000", "1")),
        R::InstrumentCancelOnly
    );
    inst.status = TradingStatus::Trading;
    e.set_instrument(inst);
    approves(&mut e, &limit(3, ALICE, Side::Buy, "50000", "1"));
}

#[test]
fn limit_and_stop_limit_need_their_prices() {
    let mut e = engine();
    let mut o = limit(1, ALICE, Side::Buy, "50000", "1");
    o.price = None;
    assert_eq!(rejects(&mut e, &o), R::PriceRequired);

    let mut stop = limit(2, ALICE, Side::Buy, "50000", "1");
    stop.order_type = OrderType::StopLimit;
    assert_eq!(rejects(&mut e, &stop), R::StopPriceRequired);
    stop.order_id = OrderId(3);
    stop.price = None;
    stop.stop_price = Some(d("49000"));
    assert_eq!(rejects(&mut e, &stop), R::PriceRequired);
    stop.order_id = OrderId(4);
    stop.price = Some(d("50000"));
    stop.stop_price = Some(d("49000.001"));
    assert_eq!(rejects(&mut e, &stop), R::PriceOffTick);
    stop.order_id = OrderId(5);
    stop.stop_price = Some(d("49000"));
    approves(&mut e, &stop);
}

#[test]
fn quantity_step_min_and_max() {
    let mut e = engine();
    let cases = [
        ("0.000015", R::QuantityOffStep),
        ("0.000001", R::QuantityBelowMin),
        ("0", R::QuantityBelowMin),
        ("-1", R::QuantityBelowMin),
        ("1000.00001", R::QuantityAboveMax),
    ];
    for (i, (qty, want)) in cases.into_iter().enumerate() {
        let o = limit(i as u64 + 1, ALICE, Side::Sell, "50000", qty);
        assert_eq!(rejects(&mut e, &o), want, "quantity {qty}");
    }
    approves(&mut e, &limit(10, BOB, Side::Sell, "50000", "0.00002"));
}

#[test]
fn price_on_tick_and_positive() {
    let mut e = engine();
    assert_eq!(
        rejects(&mut e, &limit(1, ALICE, Side::Buy, "50000.005", "1")),
        R::PriceOffTick
    );
    assert_eq!(
        rejects(&mut e, &limit(2, ALICE, Side::Buy, "0", "1")),
        R::PriceOutOfBand
    );
    approves(&mut e, &limit(3, ALICE, Side::Buy, "50000.01", "1"));
}

#[test]
fn notional_min_and_max() {
    let mut e = engine();
    // min notional 1 USD: 0.00001 × 50000 = 0.5.
    assert_eq!(
        rejects(&mut e, &limit(1, ALICE, Side::Buy, "50000", "0.00001")),
        R::NotionalBelowMin
    );
    // max 1,000,000: 20.00001 × 50000 is just above.
    assert_eq!(
        rejects(&mut e, &limit(2, ALICE, Side::Buy, "50000", "20.00001")),
        R::NotionalAboveMax
    );
    // A market order is measured at the reference price.
    assert_eq!(
        rejects(&mut e, &order(3, BOB, Side::Sell, None, "20.00001")),
        R::NotionalAboveMax
    );
    approves(&mut e, &limit(4, ALICE, Side::Buy, "50000", "0.00002"));
    approves(&mut e, &limit(5, BOB, Side::Sell, "50000", "20"));
}

#[test]
fn notional_caps_per_quote_asset_and_per_account() {
    let mut cfg = config();
    cfg.max_order_notional_by_quote
        .insert(asset("USD"), d("100000"));
    cfg.accounts.insert(
        BOB,
        AccountLimits {
            max_order_notional: Some(d("10000")),
            ..AccountLimits::default()
        },
    );
    let mut e = engine_with(cfg);
    assert_eq!(
        rejects(&mut e, &limit(1, ALICE, Side::Buy, "50000", "2.00001")),
        R::NotionalAboveMax
    );
    approves(&mut e, &limit(2, ALICE, Side::Buy, "50000", "2"));
    assert_eq!(
        rejects(&mut e, &limit(3, BOB, Side::Sell, "50000", "0.20001")),
        R::NotionalAboveMax
    );
    approves(&mut e, &limit(4, BOB, Side::Sell, "50000", "0.2"));
}

#[test]
fn price_band_around_the_last_trade() {
    let mut e = engine();
    // 50,000 ± 10%: 45,000 to 55,000 inclusive.
    assert_eq!(
        rejects(&mut e, &limit(1, ALICE, Side::Buy, "55000.01", "1")),
        R::PriceOutOfBand
    );
    assert_eq!(
        rejects(&mut e, &limit(2, BOB, Side::Sell, "44999.99", "1")),
        R::PriceOutOfBand
    );
    approves(&mut e, &limit(3, ALICE, Side::Buy, "55000", "1"));
    approves(&mut e, &limit(4, BOB, Side::Sell, "45000", "1"));
}

#[test]
fn price_band_around_the_mid_without_a_last_trade() {
    let mut e = engine();
    e.on_market(&btcusd(), None, Some(d("39990")), Some(d("40010")));
    // Mid 40,000: 36,000 to 44,000.
    assert_eq!(
        rejects(&mut e, &limit(1, ALICE, Side::Buy, "44000.01", "1")),
        R::PriceOutOfBand
    );
    approves(&mut e, &limit(2, ALICE, Side::Buy, "44000", "1"));
}

#[test]
fn with_no_reference_limits_skip_the_band_and_markets_are_refused() {
    let mut e = engine();
    e.on_market(&btcusd(), None, Some(d("40000")), None);
    approves(&mut e, &limit(1, ALICE, Side::Buy, "90000", "1"));
    assert_eq!(
        rejects(&mut e, &order(2, ALICE, Side::Buy, None, "1")),
        R::NoReferencePrice
    );
    assert_eq!(
        rejects(&mut e, &order(3, BOB, Side::Sell, None, "1")),
        R::NoReferencePrice
    );
}

#[test]
fn buying_power_for_buys_sells_and_unknown_accounts() {
    let mut e = engine();
    // 19.9 × 50,000 × 1.002 = 996,990 fits in 1,000,000; 20 × ... = 1,002,000 does not.
    assert_eq!(
        rejects(&mut e, &limit(1, ALICE, Side::Buy, "50000", "20")),
        R::InsufficientBalance
    );
    approves(&mut e, &limit(2, ALICE, Side::Buy, "50000", "19.9"));
    // What is reserved is gone from available: the next small buy no longer fits.
    assert_eq!(
        rejects(&mut e, &limit(3, ALICE, Side::Buy, "50000", "0.07")),
        R::InsufficientBalance
    );
    let carol = AccountId(4);
    deposit(&mut e, carol, "BTC", "0.5");
    assert_eq!(
        rejects(&mut e, &limit(4, carol, Side::Sell, "50000", "0.50001")),
        R::InsufficientBalance
    );
    approves(&mut e, &limit(5, carol, Side::Sell, "50000", "0.5"));
    // Alice holds no BTC; an account never seen holds nothing.
    assert_eq!(
        rejects(&mut e, &limit(6, ALICE, Side::Sell, "50000", "1")),
        R::InsufficientBalance
    );
    assert_eq!(
        rejects(&mut e, &limit(7, NOBODY, Side::Buy, "50000", "0.001")),
        R::InsufficientBalance
    );
}

#[test]
fn max_open_orders_per_account() {
    let mut e = engine(); // max 5
    for id in 1..=5 {
        approves(&mut e, &limit(id, BOB, Side::Sell, "50000", "1"));
    }
    assert_eq!(e.open_orders(BOB), 5);
    assert_eq!(
        rejects(&mut e, &limit(6, BOB, Side::Sell, "50000", "1")),
        R::TooManyOpenOrders
    );
    // Another account is not affected; an order ending frees a slot.
    approves(&mut e, &limit(7, ALICE, Side::Buy, "50000", "1"));
    apply(
        &mut e,
        Event::OrderCanceled {
            account: BOB,
            order_id: OrderId(3),
            reason: CancelReason::UserRequested,
            leaves_quantity: d("1"),
        },
    );
    assert_eq!(e.open_orders(BOB), 4);
    approves(&mut e, &limit(8, BOB, Side::Sell, "50000", "1"));
}

#[test]
fn order_rate_is_a_token_bucket_per_account() {
    let mut e = engine_with(RiskConfig {
        orders_per_second: 2,
        burst: 3,
        max_open_orders: 100,
        ..config()
    });
    let t = |ms: i64| Timestamp(NOW.0 + ms);
    for id in 1..=3 {
        assert!(e
            .decide_order(t(0), SRC, &limit(id, BOB, Side::Sell, "50000", "0.1"))
            .approved());
    }
    let dec = e.decide_order(t(0), SRC, &limit(4, BOB, Side::Sell, "50000", "0.1"));
    assert_eq!(reason(&dec), Some(R::RateLimited));
    // Alice has her own bucket.
    assert!(e
        .decide_order(t(0), SRC, &limit(5, ALICE, Side::Buy, "50000", "0.1"))
        .approved());
    // Two per second: one token after 500 ms, not before.
    let dec = e.decide_order(t(499), SRC, &limit(6, BOB, Side::Sell, "50000", "0.1"));
    assert_eq!(reason(&dec), Some(R::RateLimited));
    assert!(e
        .decide_order(t(500), SRC, &limit(7, BOB, Side::Sell, "50000", "0.1"))
        .approved());
    let dec = e.decide_order(t(500), SRC, &limit(8, BOB, Side::Sell, "50000", "0.1"));
    assert_eq!(reason(&dec), Some(R::RateLimited));
}

#[test]
fn kill_switches_per_account_and_global() {
    let mut e = engine();
    e.set_kill_switch(Some(BOB), true);
    assert!(e.kill_switch(Some(BOB)));
    assert_eq!(
        rejects(&mut e, &limit(1, BOB, Side::Sell, "50000", "1")),
        R::AccountKillSwitch
    );
    approves(&mut e, &limit(2, ALICE, Side::Buy, "50000", "1"));
    e.set_kill_switch(None, true);
    assert_eq!(
        rejects(&mut e, &limit(3, ALICE, Side::Buy, "50000", "1")),
        R::GlobalKillSwitch
    );
    // Cancels still go through.
    assert!(e.decide_cancel(SRC, ALICE, OrderId(2), None).approved());
    e.set_kill_switch(None, false);
    e.set_kill_switch(Some(BOB), false);
    approves(&mut e, &limit(4, BOB, Side::Sell, "50000", "1"));
}

#[test]
fn an_accounts_kill_switch_is_set_by_its_event_on_the_log() {
    let mut e = engine();
    let switch = |on, change| Event::KillSwitchSet {
        account: BOB,
        on,
        change,
    };
    apply(&mut e, switch(true, 1));
    assert!(e.kill_switch(Some(BOB)));
    assert_eq!(
        rejects(&mut e, &limit(1, BOB, Side::Sell, "50000", "1")),
        R::AccountKillSwitch
    );
    approves(&mut e, &limit(2, ALICE, Side::Buy, "50000", "1"));
    apply(&mut e, switch(false, 2));
    approves(&mut e, &limit(3, BOB, Side::Sell, "50000", "1"));
    // Folded into a snapshot and back, the switch is kept.
    apply(&mut e, switch(true, 3));
    let back: RiskEngine = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
    assert!(back.kill_switch(Some(BOB)));
}

#[test]
fn the_global_kill_switch_is_set_by_its_event_on_the_log() {
    let mut e = engine();
    let switch = |on, change| Event::GlobalKillSwitchSet {
        on,
        change,
        partition: 0,
    };
    apply(&mut e, switch(true, 1));
    assert!(e.kill_switch(None));
    for (id, account, side) in [(1, ALICE, Side::Buy), (2, BOB, Side::Sell)] {
        assert_eq!(
            rejects(&mut e, &limit(id, account, side, "50000", "1")),
            R::GlobalKillSwitch
        );
    }
    apply(&mut e, switch(false, 2));
    approves(&mut e, &limit(3, BOB, Side::Sell, "50000", "1"));
    // Folded into a snapshot and back, the switch is kept.
    apply(&mut e, switch(true, 3));
    let back: RiskEngine = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
    assert!(back.kill_switch(None) && !back.kill_switch(Some(BOB)));
    // Copies reach the partitions in any order: an older change read later is ignored, so
    // every partition ends on the newest.
    apply(&mut e, switch(false, 2));
    assert!(e.kill_switch(None), "an older switch undid a newer one");
    apply(&mut e, switch(false, 4));
    assert!(!e.kill_switch(None));
}

#[test]
fn an_operators_instrument_status_is_set_by_its_event_and_outlives_a_reconfigure() {
    let mut e = engine();
    let status = |status, change| Event::InstrumentStatusSet {
        symbol: btcusd(),
        status,
        change,
        partition: 0,
    };
    approves(&mut e, &limit(1, ALICE, Side::Buy, "50000", "1"));
    apply(&mut e, status(TradingStatus::Halted, 5));
    assert_eq!(e.status(&btcusd()), Some(TradingStatus::Halted));
    assert_eq!(
        rejects(&mut e, &limit(2, ALICE, Side::Buy, "50000", "1")),
        R::InstrumentHalted
    );
    // Cancels still reach the venue, which decides them in its book.
    let cancel = e.decide_cancel(SRC, ALICE, OrderId(1), None);
    assert!(cancel.approved(), "{cancel:?}");
    // Another symbol trades on.
    assert_eq!(
        e.status(&Symbol::new("ETH/USD")),
        Some(TradingStatus::Trading)
    );
    // An older copy read later changes nothing.
    apply(&mut e, status(TradingStatus::Trading, 4));
    assert_eq!(e.status(&btcusd()), Some(TradingStatus::Halted));
    apply(&mut e, status(TradingStatus::CancelOnly, 6));
    assert_eq!(
        rejects(&mut e, &limit(3, ALICE, Side::Buy, "50000", "1")),
        R::InstrumentCancelOnly
    );

    // Through a snapshot and the configuration of the next start: the operator's status
    // stays, the configured limits and instruments apply.
    let mut back: RiskEngine = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
    let tighter = RiskConfig {
        max_open_orders: 1,
        ..config()
    };
    let mut instruments = default_instruments();
    instruments[0].status = TradingStatus::Trading;
    instruments[1].status = TradingStatus::Halted;
    back.reconfigure(&instruments, tighter);
    assert_eq!(back.config().max_open_orders, 1);
    assert_eq!(back.status(&btcusd()), Some(TradingStatus::CancelOnly));
    assert_eq!(
        back.status(&Symbol::new("ETH/USD")),
        Some(TradingStatus::Halted)
    );
    back.apply(&Envelope::new(NOW, status(TradingStatus::Trading, 7)))
        .unwrap();
    // Alice's first order is still live: the new limit of one open order applies.
    assert_eq!(
        rejects(&mut back, &limit(4, ALICE, Side::Buy, "50000", "1")),
        R::TooManyOpenOrders
    );
    approves(&mut back, &limit(5, BOB, Side::Sell, "50001", "1"));
}

#[test]
fn a_dead_mans_switch_cancels_the_accounts_live_orders_unless_refreshed() {
    let mut e = engine();
    let set = |deadline: Option<i64>, change| Event::CancelAfterSet {
        account: ALICE,
        deadline: deadline.map(|ms| Timestamp(NOW.0 + ms)),
        change,
    };
    for id in [3, 1, 2] {
        approves(&mut e, &limit(id, ALICE, Side::Buy, "50000", "1"));
    }
    approves(&mut e, &limit(4, BOB, Side::Sell, "51000", "1"));
    // Placed 6 s after the epoch: after the deadline the trigger below fires for.
    let after_deadline = (6_000 << OrderId::TIME_SHIFT) | 5;
    approves(
        &mut e,
        &limit(after_deadline, ALICE, Side::Buy, "50000", "1"),
    );
    apply(&mut e, set(Some(1_000), 1));
    assert!(e.cancel_afters_due(NOW).is_empty());
    assert_eq!(
        e.cancel_afters_due(Timestamp(NOW.0 + 1_000)),
        vec![(ALICE, 1)]
    );
    // The client refreshed before the trigger reached the partition: the trigger is stale.
    apply(&mut e, set(Some(5_000), 2));
    assert_eq!(e.trigger_cancel_after(ALICE, 1), Vec::new());
    assert!(e.cancel_afters_due(Timestamp(NOW.0 + 1_000)).is_empty());
    // Folded into a snapshot and back, the switch is kept.
    let mut e: RiskEngine = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
    assert_eq!(e.cancel_after(ALICE).map(|c| c.change), Some(2));
    // The newest setting's trigger cancels Alice's live orders placed by its deadline, by id,
    // and not Bob's.
    let cancels = e.trigger_cancel_after(ALICE, 2);
    let ids: Vec<OrderId> = cancels
        .iter()
        .map(|c| match c {
            Event::CancelRequested {
                account,
                order_id,
                reason,
            } => {
                assert_eq!(*account, ALICE);
                assert_eq!(*reason, Some(CancelReason::CancelAfter));
                *order_id
            }
            other => panic!("not a cancel: {other:?}"),
        })
        .collect();
    assert_eq!(ids, [OrderId(1), OrderId(2), OrderId(3)]);
    // Fired once: disarmed, and a repeated trigger does nothing.
    assert_eq!(e.cancel_after(ALICE), None);
    assert!(e.trigger_cancel_after(ALICE, 2).is_empty());
    // Folded from the log (a replay), the trigger disarms the same way.
    apply(&mut e, set(Some(1_000), 3));
    apply(
        &mut e,
        Event::CancelAfterTriggered {
            account: ALICE,
            change: 3,
        },
    );
    assert_eq!(e.cancel_after(ALICE), None);
    // Turned off, nothing is due.
    apply(&mut e, set(Some(1_000), 4));
    apply(&mut e, set(None, 5));
    assert!(e.cancel_afters_due(Timestamp(i64::MAX)).is_empty());
}

#[test]
fn gtd_must_expire_in_the_future() {
    let mut e = engine();
    let mut o = limit(1, ALICE, Side::Buy, "50000", "1");
    o.time_in_force = TimeInForce::Gtd;
    o.expire_at = Some(NOW);
    assert_eq!(rejects(&mut e, &o), R::ExpireAtInPast);
    o.order_id = OrderId(2);
    o.expire_at = None;
    assert_eq!(rejects(&mut e, &o), R::ExpireAtInPast);
    o.order_id = OrderId(3);
    o.expire_at = Some(Timestamp(NOW.0 + 1));
    approves(&mut e, &o);
}

// ---- what an approval carries ----

#[test]
fn a_limit_buy_reserves_price_quantity_and_the_maximum_fee() {
    let mut e = engine();
    let o = limit(1, ALICE, Side::Buy, "50000", "2");
    let dec = approves(&mut e, &o);
    let r = reservation(&dec);
    assert_eq!(r.asset, asset("USD"));
    assert_eq!(r.per_unit, d("50100"));
    assert_eq!(r.amount, d("100200"));
    assert_eq!(usd(&e, ALICE).available, d("899800"));
    assert_eq!(usd(&e, ALICE).reserved, d("100200"));
    assert_eq!(
        dec.command,
        Some(VenueCommand::Submit {
            source: SRC,
            order: o,
            protection_price: None,
            // The instrument's largest fee rate (taker, 20 bps), which the hold covers.
            fee_rate_cap: Some(d("0.002")),
        })
    );
    assert!(e.is_live(OrderId(1)));
    assert_eq!(e.open_orders(ALICE), 1);
}

#[test]
fn a_sell_reserves_its_base() {
    let mut e = engine();
    let r = reservation(&approves(
        &mut e,
        &limit(1, BOB, Side::Sell, "50000", "2.5"),
    ));
    assert_eq!(
        (r.asset, r.amount, r.per_unit),
        (asset("BTC"), d("2.5"), d("1"))
    );
    assert_eq!(btc(&e, BOB).available, d("97.5"));
}

#[test]
fn a_market_buy_reserves_at_the_band_edge_and_sends_it_as_protection() {
    let mut e = engine();
    e.on_market(&btcusd(), Some(d("50000.03")), None, None);
    let dec = approves(&mut e, &order(1, ALICE, Side::Buy, None, "1"));
    // 50000.03 × 1.1 = 55000.033, floored onto the 0.01 tick.
    let protection = d("55000.03");
    match &dec.events[..] {
        [Event::RiskValidated {
            protection_price, ..
        }] => assert_eq!(*protection_price, Some(protection)),
        other => panic!("{other:?}"),
    }
    match &dec.command {
        Some(VenueCommand::Submit {
            protection_price, ..
        }) => assert_eq!(*protection_price, Some(protection)),
        other => panic!("{other:?}"),
    }
    let r = reservation(&dec);
    assert_eq!(r.per_unit, protection * d("1.002"));
    assert_eq!(r.amount, protection * d("1.002"));
}

#[test]
fn a_market_sell_is_protected_at_the_lower_band_edge() {
    let mut e = engine();
    e.on_market(&btcusd(), Some(d("50000.03")), None, None);
    let dec = approves(&mut e, &order(1, BOB, Side::Sell, None, "1"));
    // 50000.03 × 0.9 = 45000.027, raised onto the tick.
    match &dec.command {
        Some(VenueCommand::Submit {
            protection_price, ..
        }) => assert_eq!(*protection_price, Some(d("45000.03"))),
        other => panic!("{other:?}"),
    }
    assert_eq!(reservation(&dec).amount, d("1"));
}

// ---- release and settlement through the engine ----

#[test]
fn cancel_expiry_and_venue_rejection_release_the_reservation() {
    let mut e = engine();
    let ends = [
        Event::OrderCanceled {
            account: ALICE,
            order_id: OrderId(1),
            reason: CancelReason::UserRequested,
            leaves_quantity: d("1"),
        },
        Event::OrderExpired {
            account: ALICE,
            order_id: OrderId(2),
            reason: ExpireReason::IocRemainder,
            leaves_quantity: d("1"),
        },
        Event::OrderRejected {
            account: ALICE,
            order_id: OrderId(3),
            reason: R::PostOnlyWouldTake,
        },
    ];
    for (i, end) in ends.into_iter().enumerate() {
        let id = i as u64 + 1;
        approves(&mut e, &limit(id, ALICE, Side::Buy, "50000", "1"));
        assert_eq!(usd(&e, ALICE).reserved, d("50100"));
        apply(&mut e, end);
        assert_eq!(
            usd(&e, ALICE),
            Balance {
                available: d("1000000"),
                reserved: Decimal::ZERO
            }
        );
        assert!(!e.is_live(OrderId(id)));
        assert_eq!(e.open_orders(ALICE), 0);
    }
}

#[test]
fn fills_settle_with_price_improvement_and_fees_to_the_fee_account() {
    let mut e = engine();
    approves(&mut e, &limit(1, ALICE, Side::Buy, "50000", "1"));
    approves(&mut e, &limit(2, BOB, Side::Sell, "49000", "1"));
    // They trade at 49,000 (Bob resting, maker 10 bps; Alice taker 20 bps).
    apply(
        &mut e,
        fill(ALICE, 1, Side::Buy, 1, "49000", "1", "98", "0"),
    );
    apply(&mut e, fill(BOB, 2, Side::Sell, 1, "49000", "1", "49", "0"));
    // Alice reserved 50,100 and paid 49,098: the 1,002 difference is available again.
    assert_eq!(
        usd(&e, ALICE),
        Balance {
            available: d("950902"),
            reserved: Decimal::ZERO
        }
    );
    assert_eq!(btc(&e, ALICE).available, d("1"));
    assert_eq!(
        btc(&e, BOB),
        Balance {
            available: d("99"),
            reserved: Decimal::ZERO
        }
    );
    assert_eq!(usd(&e, BOB).available, d("48951"));
    assert_eq!(usd(&e, FEES).available, d("147"));
    let totals = e.ledger().totals();
    assert_eq!(totals[&asset("USD")], d("1000000"));
    assert_eq!(totals[&asset("BTC")], d("100"));
    assert_eq!(e.open_orders(ALICE), 0);
    assert_eq!(e.open_orders(BOB), 0);
}

// ---- amends ----

fn amend(
    e: &mut RiskEngine,
    account: AccountId,
    id: u64,
    amend_id: u64,
    price: Option<&str>,
    qty: Option<&str>,
) -> Decision {
    e.decide_amend(
        NOW,
        SRC,
        account,
        OrderId(id),
        amend_id,
        price.map(d),
        qty.map(d),
    )
}

#[test]
fn an_amend_up_holds_the_increase_and_sends_the_venue_an_amend() {
    let mut e = engine();
    approves(&mut e, &limit(1, ALICE, Side::Buy, "50000", "1"));
    let dec = amend(&mut e, ALICE, 1, 1, Some("51000"), Some("2"));
    assert!(dec.approved(), "{:?}", dec.reject_reason());
    match &dec.events[..] {
        [Event::AmendValidated {
            approved: true,
            reservation: Some(r),
            ..
        }] => {
            assert_eq!(r.per_unit, d("51102"));
            assert_eq!(r.amount, d("102204"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        dec.command,
        Some(VenueCommand::Amend {
            source: SRC,
            symbol: btcusd(),
            account: ALICE,
            order_id: OrderId(1),
            amend_id: 1,
            price: Some(d("51000")),
            quantity: Some(d("2")),
            fee_rate_cap: Some(d("0.002")),
        })
    );
    // 102,204 needed, 50,100 already reserved: 52,104 more is held now.
    assert_eq!(usd(&e, ALICE).reserved, d("102204"));
    // A second amend waits for the venue's answer to the first.
    assert_eq!(
        amend(&mut e, ALICE, 1, 2, Some("50000"), None).reject_reason(),
        Some(R::AmendPending)
    );
    apply(
        &mut e,
        Event::OrderAmended {
            account: ALICE,
            order_id: OrderId(1),
            amend_id: 1,
            price: d("51000"),
            quantity: d("2"),
            leaves_quantity: d("2"),
            kept_priority: false,
        },
    );
    assert_eq!(usd(&e, ALICE).reserved, d("102204"));
    assert_eq!(e.ledger().order_reserved(OrderId(1)), Some(d("102204")));
    // The amended terms are what the next amend is measured from: down to 1 at the same price.
    assert!(amend(&mut e, ALICE, 1, 3, None, Some("1")).approved());
    apply(
        &mut e,
        Event::OrderAmended {
            account: ALICE,
            order_id: OrderId(1),
            amend_id: 3,
            price: d("51000"),
            quantity: d("1"),
            leaves_quantity: d("1"),
            kept_priority: true,
        },
    );
    assert_eq!(usd(&e, ALICE).reserved, d("51102"));
}

#[test]
fn a_rejected_amend_at_the_venue_releases_the_hold() {
    let mut e = engine();
    approves(&mut e, &limit(1, ALICE, Side::Buy, "50000", "1"));
    assert!(amend(&mut e, ALICE, 1, 1, None, Some("3")).approved());
    assert_eq!(usd(&e, ALICE).reserved, d("150300"));
    apply(
        &mut e,
        Event::AmendRejected {
            account: ALICE,
            order_id: OrderId(1),
            amend_id: 1,
            reason: R::OrderNotLive,
        },
    );
    assert_eq!(usd(&e, ALICE).reserved, d("50100"));
    // No longer pending: another amend may go.
    assert!(amend(&mut e, ALICE, 1, 2, None, Some("2")).approved());
}

#[test]
fn amends_are_checked_again() {
    let mut e = engine();
    approves(&mut e, &limit(1, ALICE, Side::Buy, "50000", "2"));
    apply(
        &mut e,
        fill(ALICE, 1, Side::Buy, 1, "50000", "0.5", "50", "1.5"),
    );
    let cases: [(Option<&str>, Option<&str>, R); 7] = [
        (Some("60000"), None, R::PriceOutOfBand),
        (Some("50000.001"), None, R::PriceOffTick),
        (None, Some("2.000001"), R::QuantityOffStep),
        (None, Some("0.5"), R::QuantityNotAboveFilled),
        (None, Some("0.4"), R::QuantityNotAboveFilled),
        (None, Some("1001"), R::QuantityAboveMax),
        // 19.5 units left at 50,100 need 976,950: 901,800 more than the 75,150 reserved,
        // and Alice has 899,800 available.
        (None, Some("20"), R::InsufficientBalance),
    ];
    for (i, (price, qty, want)) in cases.into_iter().enumerate() {
        let dec = amend(&mut e, ALICE, 1, i as u64 + 1, price, qty);
        assert_eq!(dec.reject_reason(), Some(want), "{price:?} {qty:?}");
        assert!(dec.command.is_none());
    }
    assert_eq!(usd(&e, ALICE).reserved, d("75150"));
    // Nothing pending after refusals; a valid one passes.
    assert!(amend(&mut e, ALICE, 1, 20, Some("49000"), Some("3")).approved());
}

#[test]
fn amends_and_cancels_of_orders_that_are_not_live_or_not_yours() {
    let mut e = engine();
    approves(&mut e, &limit(1, ALICE, Side::Buy, "50000", "1"));
    // Bob cannot see Alice's order at all.
    assert_eq!(
        amend(&mut e, BOB, 1, 1, None, Some("2")).reject_reason(),
        Some(R::UnknownOrder)
    );
    assert_eq!(
        e.decide_cancel(SRC, BOB, OrderId(1), None).reject_reason(),
        Some(R::UnknownOrder)
    );
    assert_eq!(
        e.decide_cancel(SRC, ALICE, OrderId(77), None)
            .reject_reason(),
        Some(R::UnknownOrder)
    );
    let dec = e.decide_cancel(SRC, ALICE, OrderId(1), None);
    assert!(dec.events.is_empty());
    assert_eq!(
        dec.command,
        Some(VenueCommand::Cancel {
            source: SRC,
            symbol: btcusd(),
            account: ALICE,
            order_id: OrderId(1),
            reason: None,
        })
    );
    // A reason goes to the venue with the command.
    let why = Some(CancelReason::CancelAfter);
    assert!(matches!(
        e.decide_cancel(SRC, ALICE, OrderId(1), why).command,
        Some(VenueCommand::Cancel { reason, .. }) if reason == why
    ));
    apply(
        &mut e,
        Event::OrderCanceled {
            account: ALICE,
            order_id: OrderId(1),
            reason: CancelReason::UserRequested,
            leaves_quantity: d("1"),
        },
    );
    assert_eq!(
        e.decide_cancel(SRC, ALICE, OrderId(1), None)
            .reject_reason(),
        Some(R::OrderNotLive)
    );
    assert_eq!(
        amend(&mut e, ALICE, 1, 2, None, Some("2")).reject_reason(),
        Some(R::OrderNotLive)
    );
    assert_eq!(
        e.decide_cancel(SRC, BOB, OrderId(1), None).reject_reason(),
        Some(R::UnknownOrder)
    );
}

#[test]
fn amends_obey_kill_switches_and_cancel_only() {
    let mut e = engine();
    approves(&mut e, &limit(1, ALICE, Side::Buy, "50000", "1"));
    e.set_kill_switch(Some(ALICE), true);
    assert_eq!(
        amend(&mut e, ALICE, 1, 1, None, Some("2")).reject_reason(),
        Some(R::AccountKillSwitch)
    );
    e.set_kill_switch(Some(ALICE), false);
    let mut inst = e.instrument(&btcusd()).unwrap().clone();
    inst.status = TradingStatus::CancelOnly;
    e.set_instrument(inst);
    assert_eq!(
        amend(&mut e, ALICE, 1, 2, None, Some("2")).reject_reason(),
        Some(R::InstrumentCancelOnly)
    );
    assert!(e.decide_cancel(SRC, ALICE, OrderId(1), None).approved());
}

// ---- idempotency, determinism, replay ----

#[test]
fn a_redelivered_order_or_amend_is_not_decided_twice() {
    let mut e = engine();
    let o = limit(1, ALICE, Side::Buy, "50000", "1");
    let first = approves(&mut e, &o);
    let after = e.clone();
    assert_eq!(decide(&mut e, &o), Decision::default());
    assert!(amend(&mut e, ALICE, 1, 1, None, Some("2")).approved());
    let after_amend = e.clone();
    assert_eq!(
        amend(&mut e, ALICE, 1, 1, None, Some("2")),
        Decision::default()
    );
    assert_eq!(e, after_amend);
    // Folding the engine's own decisions back from the log changes nothing.
    let mut e2 = after.clone();
    for ev in &first.events {
        e2.apply(&Envelope::new(NOW, ev.clone())).unwrap();
    }
    assert_eq!(e2, after);
}

#[test]
fn an_order_issued_before_the_horizon_or_far_ahead_is_refused_for_its_time() {
    let mut e = engine();
    e.remember_ended_for(std::time::Duration::from_secs(3600));
    // Ids as ingestion issues them: the millisecond since the id epoch in the high bits;
    // each is decided at the minute it was issued.
    let at_minute = |m: u64, seq: u64| ((m * 60_000) << OrderId::TIME_SHIFT) | seq;
    let clock = |m: u64| Timestamp(NOW.0 + m as i64 * 60_000);
    let decide_at = |e: &mut RiskEngine, m: u64, o: &NewOrder| e.decide_order(clock(m), SRC, o);
    let first = limit(at_minute(0, 1), ALICE, Side::Buy, "50000", "1");
    assert!(decide_at(&mut e, 0, &first).approved());
    apply(
        &mut e,
        Event::OrderCanceled {
            account: ALICE,
            order_id: first.order_id,
            reason: CancelReason::UserRequested,
            leaves_quantity: d("1"),
        },
    );
    // Within the horizon the first order's OrderCreated appended again (a resumed request)
    // is recognised: no second decision.
    let sell = |m: u64| limit(at_minute(m, 1), BOB, Side::Sell, "50000", "0.1");
    assert!(decide_at(&mut e, 30, &sell(30)).approved());
    assert_eq!(decide_at(&mut e, 30, &first), Decision::default());

    // An id issued more than five minutes ahead of the engine's clock is refused, and does
    // not move the clock of forgetting: orders of correct clocks still pass.
    let ahead = limit(at_minute(400, 1), BOB, Side::Sell, "50000", "0.1");
    let dec = decide_at(&mut e, 31, &ahead);
    assert_eq!(reason(&dec), Some(R::OrderTimeOutOfRange));
    assert!(decide_at(&mut e, 32, &sell(32)).approved());
    assert_eq!(decide_at(&mut e, 33, &first), Decision::default());

    // An hour and a sixteenth later the first order is forgotten; its OrderCreated again is
    // refused, not decided a second time.
    for m in [61, 66] {
        assert!(decide_at(&mut e, m, &sell(m)).approved());
    }
    assert!(!e.ledger().knows_order(first.order_id));
    assert_eq!(
        e.ledger().ended_remembered(),
        1,
        "the refused one issued ahead"
    );
    let dec = decide_at(&mut e, 66, &first);
    assert_eq!(reason(&dec), Some(R::OrderTimeOutOfRange));
    assert_eq!(usd(&e, ALICE).reserved, Decimal::ZERO);
    // A cancel of it is refused like one of any order the account does not have live.
    let dec = e.decide_cancel(SRC, ALICE, first.order_id, None);
    assert!(
        matches!(dec.events[..], [Event::CancelRejected { .. }]),
        "{dec:?}"
    );
}

#[test]
fn an_id_far_ahead_never_moves_the_clock_of_forgetting_and_spends_no_token() {
    let slow = || RiskConfig {
        orders_per_second: 1,
        burst: 2,
        ..config()
    };
    let mut e = engine_with(slow());
    e.remember_ended_for(std::time::Duration::from_secs(3600));
    let two_days_ahead = (2 * 86_400_000u64) << OrderId::TIME_SHIFT;
    // Refused for its time before the kill switch is looked at, so no other reason hides it.
    e.set_kill_switch(Some(BOB), true);
    let ahead = limit(two_days_ahead | 1, BOB, Side::Sell, "50000", "0.1");
    let refusal = decide(&mut e, &ahead);
    assert_eq!(reason(&refusal), Some(R::OrderTimeOutOfRange));
    e.set_kill_switch(Some(BOB), false);
    assert_eq!(
        rejects(
            &mut e,
            &limit(two_days_ahead | 2, BOB, Side::Sell, "50000", "0.1")
        ),
        R::OrderTimeOutOfRange
    );
    // Orders of correct clocks still pass, with the account's two tokens untouched.
    for id in [1, 2] {
        approves(&mut e, &limit(id, BOB, Side::Sell, "50000", "0.1"));
    }
    assert_eq!(
        rejects(&mut e, &limit(3, BOB, Side::Sell, "50000", "0.1")),
        R::RateLimited
    );
    // Folding those refusals back from the log spends no token either.
    let mut folded = engine_with(slow());
    for ev in refusal.events {
        folded.apply(&Envelope::new(NOW, ev)).unwrap();
    }
    for id in [1, 2] {
        approves(&mut folded, &limit(id, BOB, Side::Sell, "50000", "0.1"));
    }
}

#[test]
fn the_same_inputs_give_the_same_decisions_and_state() {
    let run = || {
        let mut e = engine();
        let mut out = Vec::new();
        for id in 1..=8 {
            let o = limit(id, ALICE, Side::Buy, "50000", &format!("{id}"));
            out.push(e.decide_order(Timestamp(NOW.0 + id as i64), SRC, &o));
        }
        (e, out)
    };
    let (a, da) = run();
    let (b, db) = run();
    assert_eq!(da, db);
    assert_eq!(a, b);
}

#[test]
fn an_engine_rebuilt_from_the_log_equals_the_one_that_decided() {
    let mut live = engine_with(RiskConfig {
        orders_per_second: 1,
        burst: 2,
        ..config()
    });
    let mut log = Vec::new();
    for id in 1..=6u64 {
        let at = Timestamp(NOW.0 + 400 * id as i64);
        let o = limit(id, BOB, Side::Sell, "50000", "1");
        log.push(Envelope::new(at, Event::OrderCreated(o.clone())));
        for ev in live.decide_order(at, SRC, &o).events {
            log.push(Envelope::new(at, ev));
        }
    }
    let f = fill(BOB, 2, Side::Sell, 1, "50000", "0.4", "20", "0.6");
    live.apply(&Envelope::new(NOW, f.clone())).unwrap();
    log.push(Envelope::new(NOW, f));
    // Some were rate limited, so the bucket is part of what must be rebuilt.
    assert!(log.iter().any(|env| matches!(
        env.event,
        Event::RiskValidated {
            reason: Some(R::RateLimited),
            ..
        }
    )));

    let mut rebuilt = engine_with(RiskConfig {
        orders_per_second: 1,
        burst: 2,
        ..config()
    });
    for env in &log {
        rebuilt.apply(env).unwrap();
    }
    assert_eq!(rebuilt, live);
    // And both decide the next order alike.
    let next = limit(7, BOB, Side::Sell, "50000", "1");
    let at = Timestamp(NOW.0 + 2_800);
    assert_eq!(
        rebuilt.decide_order(at, SRC, &next),
        live.decide_order(at, SRC, &next)
    );
}

#[test]
fn engine_snapshots_round_trip_through_json() {
    let mut e = engine();
    approves(&mut e, &limit(1, ALICE, Side::Buy, "50000", "1"));
    e.set_kill_switch(Some(BOB), true);
    let json = serde_json::to_string(&e).unwrap();
    let back: RiskEngine = serde_json::from_str(&json).unwrap();
    assert_eq!(back, e);
}

#[test]
fn a_withdrawal_takes_only_what_is_available_and_is_decided_once() {
    let mut e = engine();
    deposit(&mut e, ALICE, "USD", "100000");
    // 45,000 of it held by a resting buy.
    approves(&mut e, &limit(1, ALICE, Side::Buy, "45000", "1"));
    let held = usd(&e, ALICE);
    let decided = |events: Vec<Event>| match &events[..] {
        [Event::WithdrawalDecided {
            approved, reason, ..
        }] => (*approved, *reason),
        other => panic!("not one decision: {other:?}"),
    };
    // More than is available (the held funds cannot leave): refused, nothing moves.
    let too_much = held.available + d("0.01");
    assert_eq!(
        decided(e.decide_withdrawal(ALICE, &asset("USD"), too_much, "w-1")),
        (false, Some(RejectReason::InsufficientBalance))
    );
    assert_eq!(usd(&e, ALICE), held);
    // The same reference is never decided again, even for an amount that would pass.
    assert!(e
        .decide_withdrawal(ALICE, &asset("USD"), d("1"), "w-1")
        .is_empty());
    // Exactly what is available: approved and debited, to the cent.
    let all = held.available;
    let approved = e.decide_withdrawal(ALICE, &asset("USD"), all, "w-2");
    assert_eq!(decided(approved.clone()), (true, None));
    assert_eq!(usd(&e, ALICE).available, Decimal::ZERO);
    assert_eq!(usd(&e, ALICE).reserved, held.reserved);
    // Read back from the log (or by another engine replaying it), it is not applied twice.
    apply(&mut e, approved[0].clone());
    assert_eq!(usd(&e, ALICE).available, Decimal::ZERO);
    let mut replica = engine();
    deposit(&mut replica, ALICE, "USD", "100000");
    approves(&mut replica, &limit(1, ALICE, Side::Buy, "45000", "1"));
    apply(&mut replica, approved[0].clone());
    apply(&mut replica, approved[0].clone());
    assert_eq!(usd(&replica, ALICE), usd(&e, ALICE));
    // An asset the account never held: refused.
    assert_eq!(
        decided(e.decide_withdrawal(NOBODY, &asset("BTC"), d("0.1"), "w-3")),
        (false, Some(RejectReason::InsufficientBalance))
    );
}
