//! Time, trading status, redelivery and snapshots.

use super::*;
use crate::events::ExpireReason;
use crate::instrument::TradingStatus;
use crate::order::RejectReason;

fn gtd(id: u64, price: &str, expire_at: i64) -> NewOrder {
    NewOrder {
        time_in_force: TimeInForce::Gtd,
        expire_at: Some(Timestamp(expire_at)),
        ..limit(id, 10, Side::Buy, price, "1")
    }
}

#[test]
fn tick_expires_due_gtd_orders_in_expiry_then_id_order() {
    let mut h = Harness::new();
    h.submit(gtd(5, "100", 3_000));
    h.submit(gtd(4, "99", 2_000));
    h.submit(gtd(3, "98", 3_000));
    h.limit(6, 10, Side::Buy, "97", "1");
    assert!(h.tick(1_999).is_empty());
    let ev = h.tick(3_000);
    let expired: Vec<u64> = ev
        .iter()
        .filter_map(|e| match e {
            Event::OrderExpired {
                order_id,
                reason: ExpireReason::GtdExpired,
                ..
            } => Some(order_id.0),
            _ => None,
        })
        .collect();
    assert_eq!(expired, [4, 3, 5]);
    assert_eq!(h.best(), (Some(d("97")), None));
    assert!(h.tick(10_000).is_empty());
}

#[test]
fn a_filled_gtd_order_does_not_expire_later() {
    let mut h = Harness::new();
    h.submit(gtd(1, "100", 2_000));
    h.limit(2, 20, Side::Sell, "100", "1");
    assert!(h.tick(5_000).is_empty());
}

#[test]
fn halted_rejects_everything_cancel_only_still_cancels() {
    let mut h = Harness::new();
    h.limit(1, 10, Side::Buy, "100", "1");
    h.limit(2, 10, Side::Buy, "99", "1");
    h.venue.set_status(&btc(), TradingStatus::Halted);
    assert!(matches!(
        h.limit(3, 10, Side::Buy, "98", "1")[..],
        [Event::OrderRejected {
            reason: RejectReason::InstrumentHalted,
            ..
        }]
    ));
    assert!(matches!(
        h.cancel(10, 1)[..],
        [Event::CancelRejected {
            reason: RejectReason::InstrumentHalted,
            ..
        }]
    ));
    assert!(matches!(
        h.amend(10, 1, Some("101"), None)[..],
        [Event::AmendRejected {
            reason: RejectReason::InstrumentHalted,
            ..
        }]
    ));

    h.venue.set_status(&btc(), TradingStatus::CancelOnly);
    assert!(matches!(
        h.limit(3, 10, Side::Buy, "98", "1")[..],
        [Event::OrderRejected {
            reason: RejectReason::InstrumentCancelOnly,
            ..
        }]
    ));
    assert!(matches!(
        h.amend(10, 2, Some("98"), None)[..],
        [Event::AmendRejected {
            reason: RejectReason::InstrumentCancelOnly,
            ..
        }]
    ));
    assert_eq!(kinds(&h.cancel(10, 1)), ["OrderCanceled", "BookChanged"]);

    h.venue.set_status(&btc(), TradingStatus::Trading);
    assert_eq!(
        kinds(&h.limit(3, 10, Side::Buy, "98", "1")),
        ["OrderAccepted", "BookChanged"]
    );
}

#[test]
fn redelivered_commands_are_dropped_per_partition_and_symbol() {
    let mut h = Harness::new();
    let submit = |partition, offset, id, symbol: &str| VenueCommand::Submit {
        source: Source { partition, offset },
        order: NewOrder {
            symbol: Symbol::new(symbol),
            price: Some(d("100")),
            ..order(id, 10, Side::Buy, OrderType::Limit, "1")
        },
        protection_price: None,
        fee_rate_cap: None,
    };
    assert_eq!(h.run(submit(0, 5, 1, "BTC/USD")).len(), 2);
    assert!(h.run(submit(0, 5, 1, "BTC/USD")).is_empty());
    assert!(h.run(submit(0, 4, 2, "BTC/USD")).is_empty());
    // Another partition has its own offsets; so does another symbol's book.
    assert_eq!(h.run(submit(1, 1, 3, "BTC/USD")).len(), 2);
    assert_eq!(h.run(submit(0, 2, 4, "ETH/USD")).len(), 2);
    assert_eq!(h.run(submit(0, 6, 5, "BTC/USD")).len(), 2);
    let cancel = VenueCommand::Cancel {
        source: Source {
            partition: 0,
            offset: 6,
        },
        symbol: btc(),
        account: AccountId(10),
        order_id: OrderId(1),
        reason: None,
    };
    assert!(h.run(cancel).is_empty());
    assert_eq!(h.venue.depth(&btc(), 1).unwrap().bids[0].quantity, d("3"));
}

#[test]
fn book_change_seq_grows_by_one_per_change() {
    let mut h = Harness::new();
    let mut all = Vec::new();
    all.extend(h.limit(1, 10, Side::Buy, "100", "1"));
    all.extend(h.limit(2, 10, Side::Buy, "99", "1"));
    all.extend(h.limit(3, 20, Side::Sell, "99", "3"));
    all.extend(h.cancel(20, 3));
    let seqs: Vec<u64> = all
        .iter()
        .filter_map(|e| match e {
            Event::BookChanged { seq, .. } => Some(*seq),
            _ => None,
        })
        .collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5, 6]);
    assert_eq!(h.venue.depth(&btc(), 5).unwrap().seq, 6);
}

/// Builds a book with resting orders, parked stops, GTD orders and trades, snapshots it, then
/// feeds the original and the restored venue the same commands.
#[test]
fn a_restored_snapshot_behaves_identically() {
    let mut h = Harness::new();
    h.limit(1, 10, Side::Buy, "100", "1");
    h.limit(2, 11, Side::Buy, "100", "2");
    h.limit(3, 12, Side::Sell, "101", "1.5");
    h.limit(4, 13, Side::Sell, "102", "1");
    h.submit(gtd(5, "99.5", 5_000));
    h.submit(NewOrder {
        price: Some(d("103")),
        stop_price: Some(d("101")),
        ..order(6, 14, Side::Buy, OrderType::StopLimit, "1")
    });
    h.limit(7, 15, Side::Sell, "100", "0.5");
    h.cancel(11, 2);
    h.limit(8, 16, Side::Sell, "100.5", "1");

    let json = serde_json::to_string(&h.venue).unwrap();
    let restored: Venue = serde_json::from_str(&json).unwrap();
    assert_eq!(serde_json::to_string(&restored).unwrap(), json);
    let mut twin = Harness {
        venue: restored,
        offset: h.offset,
        now: h.now,
    };

    type Step = Box<dyn Fn(&mut Harness) -> Vec<Event>>;
    let script: Vec<Step> = vec![
        Box::new(|h| h.limit(20, 30, Side::Buy, "101", "1")), // trades, triggers the stop
        Box::new(|h| h.amend(16, 8, Some("102"), None)),
        Box::new(|h| h.cancel(10, 1)),
        Box::new(|h| h.limit(21, 31, Side::Sell, "99.5", "0.25")),
        Box::new(|h| h.tick(6_000)),
        Box::new(|h| h.limit(22, 32, Side::Buy, "102", "5")),
        Box::new(|h| h.limit(20, 30, Side::Buy, "101", "1")), // redelivery, new offset
    ];
    let mut traded = false;
    for step in &script {
        let a = step(&mut h);
        let b = step(&mut twin);
        traded |= a.iter().any(|e| matches!(e, Event::Trade { .. }));
        assert_eq!(a, b);
    }
    assert!(traded);
    assert_eq!(h.venue.depth(&btc(), 10), twin.venue.depth(&btc(), 10));
}

impl Harness {
    fn set_status(&mut self, status: TradingStatus, change: u64) -> Vec<Event> {
        let source = self.source();
        self.run(VenueCommand::SetStatus {
            source,
            symbol: btc(),
            status,
            change,
        })
    }
}

#[test]
fn an_operators_status_holds_over_the_configured_one_newest_change_first() {
    let mut h = Harness::new();
    h.limit(1, 10, Side::Buy, "100", "1");
    h.limit(9, 10, Side::Buy, "97", "1");
    assert_eq!(
        published(&h.set_status(TradingStatus::Halted, 5)),
        [(btc(), TradingStatus::Halted, Some(5))]
    );
    assert_eq!(h.venue.status(&btc()), Some(TradingStatus::Halted));
    assert!(matches!(
        h.cancel(10, 1)[..],
        [Event::CancelRejected {
            reason: RejectReason::InstrumentHalted,
            ..
        }]
    ));
    // The system's cancels for a client go through a halt: a dead man's switch fires once.
    let source = h.source();
    let ev = h.run(VenueCommand::Cancel {
        source,
        symbol: btc(),
        account: AccountId(10),
        order_id: OrderId(9),
        reason: Some(crate::events::CancelReason::CancelAfter),
    });
    assert_eq!(kinds(&ev), ["OrderCanceled", "BookChanged"]);
    // An older setting (another partition's copy of an earlier change) changes nothing, and
    // another partition's copy of this one publishes nothing again.
    assert!(h.set_status(TradingStatus::Trading, 4).is_empty());
    assert!(h.set_status(TradingStatus::Halted, 5).is_empty());
    assert_eq!(h.venue.status(&btc()), Some(TradingStatus::Halted));
    // The configured status does not lift an operator's halt.
    h.venue.set_status(&btc(), TradingStatus::Trading);
    assert_eq!(h.venue.status(&btc()), Some(TradingStatus::Halted));
    // ETH/USD is untouched.
    assert_eq!(
        h.venue.status(&Symbol::new("ETH/USD")),
        Some(TradingStatus::Trading)
    );

    h.set_status(TradingStatus::CancelOnly, 6);
    assert_eq!(kinds(&h.cancel(10, 1)), ["OrderCanceled", "BookChanged"]);
    assert_eq!(
        published(&h.set_status(TradingStatus::Trading, 7)),
        [(btc(), TradingStatus::Trading, Some(7))]
    );
    assert_eq!(
        kinds(&h.limit(2, 10, Side::Buy, "98", "1")),
        ["OrderAccepted", "BookChanged"]
    );

    // The setting survives a snapshot and the configuration of a restart.
    let json = serde_json::to_string(&h.venue).unwrap();
    let mut twin = Harness {
        venue: serde_json::from_str(&json).unwrap(),
        offset: h.offset,
        now: h.now,
    };
    let mut configured = instruments(SelfTradePrevention::CancelResting);
    configured[0].status = TradingStatus::Halted;
    twin.configure(&configured);
    assert_eq!(twin.venue.status(&btc()), Some(TradingStatus::Trading));
    assert!(twin.set_status(TradingStatus::Halted, 6).is_empty());
    assert_eq!(twin.venue.status(&btc()), Some(TradingStatus::Trading));
}

/// The statuses an event list publishes to market data.
fn published(events: &[Event]) -> Vec<(Symbol, TradingStatus, Option<u64>)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::TradingStatusChanged {
                symbol,
                status,
                change,
                ..
            } => Some((symbol.clone(), *status, *change)),
            _ => None,
        })
        .collect()
}

impl Harness {
    /// Each instrument's `Configure`, as the venue stage appends them when it takes a partition.
    /// Each publishes the status in force, whether it changed or not.
    fn configure(&mut self, instruments: &[Instrument]) {
        for instrument in instruments {
            let out = self.run(VenueCommand::Configure {
                instrument: instrument.clone(),
            });
            let symbol = &instrument.symbol;
            let in_force = self.venue.status(symbol).expect("configured");
            let [Event::TradingStatusChanged { change, at, .. }] = &out[..] else {
                panic!("{out:?}");
            };
            assert_eq!(published(&out), [(symbol.clone(), in_force, *change)]);
            assert_eq!(*at, Timestamp(self.now));
        }
    }
}

#[test]
fn a_configure_command_brings_the_configured_fees_status_and_symbols() {
    let mut h = Harness::new();
    h.limit(1, 10, Side::Buy, "100", "1");
    let mut configured = instruments(SelfTradePrevention::CancelResting);
    configured[0].taker_fee = d("0.005");
    configured[1].status = TradingStatus::CancelOnly;
    let mut sol = Instrument::spot("SOL/USD", d("0.01"), d("0.01"));
    sol.min_notional = d("1");
    configured.push(sol);
    let json = serde_json::to_string(&h.venue).unwrap();
    let mut twin = Harness {
        venue: serde_json::from_str(&json).unwrap(),
        offset: h.offset,
        now: h.now,
    };
    twin.configure(&configured);
    // A replay meets the same command at the same point: the same state.
    h.configure(&configured);
    assert_eq!(
        serde_json::to_string(&h.venue).unwrap(),
        serde_json::to_string(&twin.venue).unwrap()
    );
    let ev = twin.limit(2, 20, Side::Sell, "100", "1");
    let taker = fills(&ev).into_iter().find(|f| f.account == AccountId(20));
    assert_eq!(taker.expect("a fill of the taker").fee, d("0.5"));
    assert_eq!(
        twin.venue.status(&Symbol::new("ETH/USD")),
        Some(TradingStatus::CancelOnly)
    );
    assert_eq!(
        twin.venue.status(&Symbol::new("SOL/USD")),
        Some(TradingStatus::Trading)
    );
}

#[test]
fn new_units_wait_while_orders_rest_and_rescale_an_empty_book() {
    let mut h = Harness::new();
    h.limit(1, 10, Side::Buy, "100", "1");
    let mut finer = instruments(SelfTradePrevention::CancelResting);
    finer[0].tick_size = d("0.25");
    finer[0].taker_fee = d("0.003");
    h.configure(&finer);
    // The book keeps its tick (its orders are in ticks of 0.5); the rest applies.
    assert!(h.venue.units_differ(&finer[0]));
    assert_eq!(h.venue.instrument(&btc()).unwrap().tick_size, d("0.5"));
    assert_eq!(h.venue.instrument(&btc()).unwrap().taker_fee, d("0.003"));
    assert_eq!(
        h.venue.depth(&btc(), 1).unwrap().bids[0].price,
        d("100"),
        "the resting order keeps its price"
    );

    // A trade at 100 (200 ticks of 0.5) then an empty book: the last price is 400 ticks of
    // 0.25, still 100.
    h.limit(2, 20, Side::Sell, "100", "1");
    h.configure(&finer);
    assert!(!h.venue.units_differ(&finer[0]));
    assert_eq!(h.venue.last_price(&btc()), Some(d("100")));
    assert_eq!(
        kinds(&h.limit(3, 10, Side::Buy, "99.75", "1")),
        ["OrderAccepted", "BookChanged"]
    );

    // Off the new tick: the last price is forgotten, not rounded.
    let mut h = Harness::new();
    h.limit(1, 10, Side::Buy, "100.5", "1");
    h.limit(2, 20, Side::Sell, "100.5", "1");
    let mut coarser = instruments(SelfTradePrevention::CancelResting);
    coarser[0].tick_size = d("1");
    h.configure(&coarser);
    assert_eq!(h.venue.last_price(&btc()), None);
}

/// BTC/USD with the given maker and taker fees, the rest as [`instruments`].
fn with_fees(maker: &str, taker: &str) -> Vec<Instrument> {
    let mut all = instruments(SelfTradePrevention::CancelResting);
    all[0].maker_fee = d(maker);
    all[0].taker_fee = d(taker);
    all
}

impl Harness {
    fn submit_capped(&mut self, order: NewOrder, cap: &str) -> Vec<Event> {
        let source = self.source();
        self.run(VenueCommand::Submit {
            source,
            order,
            protection_price: None,
            fee_rate_cap: Some(d(cap)),
        })
    }
}

fn fee_of(events: &[Event], account: u64) -> Decimal {
    fills(events)
        .into_iter()
        .find(|f| f.account == AccountId(account))
        .map(|f| f.fee)
        .expect("a fill of the account")
}

#[test]
fn a_buy_pays_at_most_the_fee_rate_its_hold_covers_whatever_the_fees_become() {
    // Default fees 10/20 bps: a BUY approved then holds for 20 bps.
    let mut h = Harness::new();
    h.submit_capped(limit(1, 10, Side::Buy, "100", "2"), "0.002");
    h.submit_capped(limit(2, 11, Side::Buy, "99", "1"), "0.002");
    h.limit(3, 12, Side::Sell, "105", "1");
    let caps = |h: &Harness| {
        let v = serde_json::to_value(&h.venue).unwrap();
        v["markets"]["BTC/USD"]
            .get("feeCaps")
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(
        caps(&h),
        serde_json::Value::Null,
        "holds at the largest rate need no entry"
    );

    // Fees raised to 40/50 bps (a restart's Configure, through a snapshot): the resting BUYs
    // keep paying at most 20 bps, the SELL and every new order pay the new rates.
    h.configure(&with_fees("0.004", "0.005"));
    let json = serde_json::to_string(&h.venue).unwrap();
    let mut h = Harness {
        venue: serde_json::from_str(&json).unwrap(),
        offset: h.offset,
        now: h.now,
    };
    let ev = h.limit(4, 20, Side::Sell, "100", "1");
    // Maker BUY at 100: 100 × 0.002 (its hold), not 100 × 0.004; the SELL taker 0.005.
    assert_eq!(fee_of(&ev, 10), d("0.2"));
    assert_eq!(fee_of(&ev, 20), d("0.5"));
    // A BUY approved before the change but reaching the book after it holds for 20 bps too.
    let ev = h.submit_capped(limit(5, 21, Side::Buy, "105", "1"), "0.002");
    assert_eq!(fee_of(&ev, 21), d("0.21"));
    assert_eq!(fee_of(&ev, 12), d("0.42"));
    // One approved under the new rates pays them.
    h.limit(6, 22, Side::Sell, "106", "1");
    let ev = h.submit_capped(limit(7, 23, Side::Buy, "106", "1"), "0.005");
    assert_eq!(fee_of(&ev, 23), d("0.53"));
    // A copy of a live order's submit changes nothing, its cap included.
    h.submit_capped(limit(2, 11, Side::Buy, "99", "1"), "0.005");
    // Order 1 fills its last unit: its cap is forgotten; order 2 still rests with its own.
    h.limit(8, 24, Side::Sell, "100", "1");
    assert_eq!(caps(&h), serde_json::json!({ "2": "0.002" }));

    // A BUY resting at 50 bps, then fees down to 10/20 and up again to 40/50: each order
    // keeps exactly the rate its hold covers.
    h.submit_capped(limit(9, 25, Side::Buy, "98", "1"), "0.005");
    h.configure(&with_fees("0.001", "0.002"));
    assert_eq!(caps(&h), serde_json::json!({ "9": "0.005" }));
    h.configure(&with_fees("0.004", "0.005"));
    assert_eq!(caps(&h), serde_json::json!({ "2": "0.002" }));
    let ev = h.limit(10, 26, Side::Sell, "98", "2");
    assert_eq!(
        fee_of(&ev, 25),
        d("0.392"),
        "98 × 0.004, the maker rate, below its cap"
    );
    assert_eq!(fee_of(&ev, 11), d("0.198"), "99 × 0.002, its cap");
    assert_eq!(caps(&h), serde_json::Value::Null);
}
