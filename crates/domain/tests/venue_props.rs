//! Property tests of the matching venue over random command sequences on two symbols.

use oms_domain::events::{Event, Fill};
use oms_domain::ids::{AccountId, OrderId, Symbol, Timestamp};
use oms_domain::instrument::{Instrument, SelfTradePrevention};
use oms_domain::order::{NewOrder, OrderType, Side, TimeInForce};
use oms_domain::venue::{Source, Venue, VenueCommand};
use oms_domain::Decimal;
use proptest::prelude::*;
use std::collections::{BTreeMap, HashMap};

const SYMBOLS: [&str; 2] = ["BTC/USD", "ETH/USD"];

fn instruments(stp: SelfTradePrevention) -> Vec<Instrument> {
    let mut btc = Instrument::spot("BTC/USD", Decimal::new(5, 1), Decimal::new(1, 2));
    btc.self_trade_prevention = stp;
    let mut eth = Instrument::spot("ETH/USD", Decimal::new(1, 2), Decimal::new(1, 3));
    eth.self_trade_prevention = stp;
    vec![btc, eth]
}

#[derive(Debug, Clone)]
enum Op {
    Order {
        sym: usize,
        account: u64,
        side: Side,
        kind: u8,
        tif: u8,
        post_only: bool,
        /// Ticks from the symbol's base price; a few land off the grid on purpose.
        level: i64,
        stop_level: i64,
        lots: i64,
        off_grid: bool,
    },
    Cancel {
        sym: usize,
        account: u64,
        target: u64,
    },
    Amend {
        sym: usize,
        account: u64,
        target: u64,
        level: Option<i64>,
        lots: Option<i64>,
    },
    Tick {
        sym: usize,
        advance: i64,
    },
    /// The previous command delivered again.
    Redeliver,
}

fn side() -> impl Strategy<Value = Side> {
    prop_oneof![Just(Side::Buy), Just(Side::Sell)]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => (0..2usize, 1..4u64, side(), 0..10u8, 0..8u8, prop::bool::weighted(0.1), -10..10i64, -6..6i64, 1..40i64, prop::bool::weighted(0.03))
            .prop_map(|(sym, account, side, kind, tif, post_only, level, stop_level, lots, off_grid)| Op::Order {
                sym, account, side, kind, tif, post_only, level, stop_level, lots, off_grid
            }),
        3 => (0..2usize, 1..4u64, 1..60u64).prop_map(|(sym, account, target)| Op::Cancel { sym, account, target }),
        3 => (0..2usize, 1..4u64, 1..60u64, prop::option::of(-10..10i64), prop::option::of(1..40i64))
            .prop_map(|(sym, account, target, level, lots)| Op::Amend { sym, account, target, level, lots }),
        1 => (0..2usize, 0..400i64).prop_map(|(sym, advance)| Op::Tick { sym, advance }),
        1 => Just(Op::Redeliver),
    ]
}

fn stp() -> impl Strategy<Value = SelfTradePrevention> {
    prop_oneof![
        Just(SelfTradePrevention::CancelResting),
        Just(SelfTradePrevention::CancelIncoming),
        Just(SelfTradePrevention::CancelBoth),
    ]
}

/// Turns generated ops into concrete timed commands (ids, offsets and times fixed here, so a
/// replay feeds exactly the same commands).
fn commands(ops: &[Op]) -> Vec<(Timestamp, VenueCommand)> {
    let mut out: Vec<(Timestamp, VenueCommand)> = Vec::new();
    let mut now = 1_000i64;
    let mut offset = 0u64;
    let price = |sym: usize, level: i64, off: bool| {
        let (base, tick) = [
            (Decimal::new(100, 0), Decimal::new(5, 1)),
            (Decimal::new(20, 0), Decimal::new(1, 2)),
        ][sym];
        let p = base + tick * Decimal::from(level);
        if off {
            p + tick / Decimal::TWO
        } else {
            p
        }
    };
    let qty =
        |sym: usize, lots: i64| [Decimal::new(1, 2), Decimal::new(1, 3)][sym] * Decimal::from(lots);
    for (n, op) in ops.iter().enumerate() {
        now += 7;
        let mut source = || {
            offset += 1;
            Source {
                partition: (offset % 2) as u32,
                offset,
            }
        };
        let cmd = match op {
            Op::Order {
                sym,
                account,
                side,
                kind,
                tif,
                post_only,
                level,
                stop_level,
                lots,
                off_grid,
            } => {
                let order_type = match kind {
                    0 => OrderType::Market,
                    1 => OrderType::StopLimit,
                    _ => OrderType::Limit,
                };
                let time_in_force = match tif {
                    0 => TimeInForce::Ioc,
                    1 => TimeInForce::Fok,
                    2 | 3 => TimeInForce::Gtd,
                    _ => TimeInForce::Gtc,
                };
                let order = NewOrder {
                    order_id: OrderId(n as u64 + 1),
                    client_order_id: None,
                    account: AccountId(*account),
                    symbol: Symbol::new(SYMBOLS[*sym]),
                    side: *side,
                    order_type,
                    time_in_force,
                    post_only: *post_only,
                    price: (order_type != OrderType::Market)
                        .then(|| price(*sym, *level, *off_grid)),
                    stop_price: (order_type == OrderType::StopLimit)
                        .then(|| price(*sym, *stop_level, false)),
                    quantity: qty(*sym, *lots),
                    expire_at: (time_in_force == TimeInForce::Gtd)
                        .then_some(Timestamp(now + 50 * *lots)),
                    created_at: Timestamp(now),
                };
                let protection_price = (order_type == OrderType::Market && *lots % 2 == 0)
                    .then(|| price(*sym, if *side == Side::Buy { 4 } else { -4 }, false));
                VenueCommand::Submit {
                    source: source(),
                    order,
                    protection_price,
                    fee_rate_cap: None,
                }
            }
            Op::Cancel {
                sym,
                account,
                target,
            } => VenueCommand::Cancel {
                source: source(),
                symbol: Symbol::new(SYMBOLS[*sym]),
                account: AccountId(*account),
                order_id: OrderId(*target),
                reason: None,
            },
            Op::Amend {
                sym,
                account,
                target,
                level,
                lots,
            } => VenueCommand::Amend {
                source: source(),
                symbol: Symbol::new(SYMBOLS[*sym]),
                account: AccountId(*account),
                order_id: OrderId(*target),
                amend_id: n as u64,
                price: level.map(|l| price(*sym, l, false)),
                fee_rate_cap: None,
                quantity: lots.map(|l| qty(*sym, l)),
            },
            Op::Tick { sym, advance } => {
                now += advance;
                VenueCommand::Tick {
                    symbol: Symbol::new(SYMBOLS[*sym]),
                }
            }
            Op::Redeliver => match out.last() {
                Some((_, c)) => c.clone(),
                None => continue,
            },
        };
        out.push((Timestamp(now), cmd));
    }
    out
}

fn run(
    venue: &mut Venue,
    cmds: &[(Timestamp, VenueCommand)],
    mut after: impl FnMut(&Venue, &[Event]),
) -> Vec<Event> {
    let mut all = Vec::new();
    for (now, cmd) in cmds {
        let mut out = Vec::new();
        venue.handle(*now, cmd, &mut out);
        after(venue, &out);
        all.extend(out);
    }
    all
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_book_never_crosses_and_orders_never_overfill(stp in stp(), ops in prop::collection::vec(op(), 1..160)) {
        let cmds = commands(&ops);
        let mut venue = Venue::new(instruments(stp), AccountId(999));
        let mut crossed = None;
        let events = run(&mut venue, &cmds, |v, _| {
            for s in SYMBOLS {
                if let (Some(b), Some(a)) = v.best_bid_ask(&Symbol::new(s)) {
                    if b >= a && crossed.is_none() {
                        crossed = Some((s, b, a));
                    }
                }
            }
        });
        prop_assert_eq!(crossed, None);

        // Every order's quantity and price bound: from its submit, then from each amend the
        // venue applied.
        let mut quantity: HashMap<u64, Decimal> = HashMap::new();
        let mut bound: HashMap<u64, (Side, Decimal)> = HashMap::new();
        for (_, c) in &cmds {
            if let VenueCommand::Submit { order, protection_price, .. } = c {
                quantity.entry(order.order_id.0).or_insert(order.quantity);
                if let Some(p) = order.price.or(*protection_price) {
                    bound.entry(order.order_id.0).or_insert((order.side, p));
                }
            }
        }
        let mut filled: HashMap<u64, Decimal> = HashMap::new();
        for e in &events {
            match e {
                Event::OrderAmended { order_id, quantity: q, price, leaves_quantity, .. } => {
                    quantity.insert(order_id.0, *q);
                    bound.entry(order_id.0).and_modify(|b| b.1 = *price);
                    prop_assert_eq!(*q - filled.get(&order_id.0).copied().unwrap_or_default(), *leaves_quantity);
                }
                Event::OrderFilled(f) => {
                    let cum = filled.entry(f.order_id.0).or_default();
                    *cum += f.quantity;
                    prop_assert!(f.quantity > Decimal::ZERO);
                    prop_assert_eq!(*cum, f.cumulative_quantity);
                    prop_assert_eq!(quantity[&f.order_id.0] - *cum, f.leaves_quantity);
                    prop_assert!(f.leaves_quantity >= Decimal::ZERO, "overfill of {}", f.order_id);
                    if let Some(&(side, limit)) = bound.get(&f.order_id.0) {
                        let inside = match side {
                            Side::Buy => f.price <= limit,
                            Side::Sell => f.price >= limit,
                        };
                        prop_assert!(inside, "order {} filled at {} beyond {}", f.order_id, f.price, limit);
                    }
                }
                _ => {}
            }
        }
    }

    #[test]
    fn every_trade_has_equal_buy_and_sell_fills(stp in stp(), ops in prop::collection::vec(op(), 1..160)) {
        let cmds = commands(&ops);
        let mut venue = Venue::new(instruments(stp), AccountId(999));
        let events = run(&mut venue, &cmds, |_, _| {});
        let mut per_trade: BTreeMap<(String, u64), Vec<&Fill>> = BTreeMap::new();
        let mut trades: BTreeMap<(String, u64), Decimal> = BTreeMap::new();
        let mut last_trade: HashMap<String, u64> = HashMap::new();
        let mut last_seq: HashMap<String, u64> = HashMap::new();
        for e in &events {
            match e {
                Event::OrderFilled(f) => per_trade.entry((f.symbol.0.clone(), f.trade_id.0)).or_default().push(f),
                Event::Trade { symbol, trade_id, quantity, .. } => {
                    let last = last_trade.entry(symbol.0.clone()).or_default();
                    prop_assert_eq!(trade_id.0, *last + 1, "trade ids grow by one from 1");
                    *last = trade_id.0;
                    trades.insert((symbol.0.clone(), trade_id.0), *quantity);
                }
                Event::BookChanged { symbol, seq, .. } => {
                    let last = last_seq.entry(symbol.0.clone()).or_default();
                    prop_assert_eq!(*seq, *last + 1, "book seq grows by one");
                    *last = *seq;
                }
                _ => {}
            }
        }
        prop_assert_eq!(per_trade.len(), trades.len());
        for (key, fills) in &per_trade {
            prop_assert_eq!(fills.len(), 2);
            let buy: Decimal = fills.iter().filter(|f| f.side == Side::Buy).map(|f| f.quantity).sum();
            let sell: Decimal = fills.iter().filter(|f| f.side == Side::Sell).map(|f| f.quantity).sum();
            prop_assert_eq!(buy, sell);
            prop_assert_eq!(buy, trades[key]);
            prop_assert_eq!(fills[0].price, fills[1].price);
            prop_assert_ne!(fills[0].account, fills[1].account, "self-trade");
        }
    }

    #[test]
    fn replaying_or_restoring_gives_the_identical_event_stream(stp in stp(), ops in prop::collection::vec(op(), 1..160), cut in 0..160usize) {
        let cmds = commands(&ops);
        let fresh = || Venue::new(instruments(stp), AccountId(999));
        let first = run(&mut fresh(), &cmds, |_, _| {});
        let second = run(&mut fresh(), &cmds, |_, _| {});
        prop_assert_eq!(&first, &second);

        // Snapshot part-way, restore, and carry on: the tail must match the uninterrupted run.
        let cut = cut.min(cmds.len());
        let mut venue = fresh();
        let head = run(&mut venue, &cmds[..cut], |_, _| {});
        let json = serde_json::to_string(&venue).unwrap();
        let mut restored: Venue = serde_json::from_str(&json).unwrap();
        let tail = run(&mut restored, &cmds[cut..], |_, _| {});
        prop_assert_eq!(&first[..head.len()], &head[..]);
        prop_assert_eq!(&first[head.len()..], &tail[..]);
    }

    #[test]
    fn book_changes_rebuild_the_published_depth(stp in stp(), ops in prop::collection::vec(op(), 1..160)) {
        let cmds = commands(&ops);
        let mut venue = Venue::new(instruments(stp), AccountId(999));
        let mut model: HashMap<String, BTreeMap<(u8, Decimal), Decimal>> = HashMap::new();
        let mut mismatch = None;
        run(&mut venue, &cmds, |v, out| {
            for e in out {
                if let Event::BookChanged { symbol, side, price, quantity, .. } = e {
                    let book = model.entry(symbol.0.clone()).or_default();
                    let key = (u8::from(*side == Side::Sell), *price);
                    if quantity.is_zero() { book.remove(&key); } else { book.insert(key, *quantity); }
                }
            }
            for s in SYMBOLS {
                let depth = v.depth(&Symbol::new(s), usize::MAX).unwrap();
                let mut levels: BTreeMap<(u8, Decimal), Decimal> = BTreeMap::new();
                for l in &depth.bids { levels.insert((0, l.price), l.quantity); }
                for l in &depth.asks { levels.insert((1, l.price), l.quantity); }
                let m = model.get(s).cloned().unwrap_or_default();
                if m != levels && mismatch.is_none() {
                    mismatch = Some((s, m, levels));
                }
            }
        });
        prop_assert_eq!(mismatch, None);
    }
}
