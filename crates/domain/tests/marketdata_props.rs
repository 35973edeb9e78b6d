//! Properties of the market data folds.

use oms_domain::events::Event;
use oms_domain::ids::{Symbol, Timestamp, TradeId};
use oms_domain::marketdata::{
    candles_from_trades, merge_candles, BookChange, CandleAggregator, DepthBook, Interval, Level,
    SymbolMarket,
};
use oms_domain::order::Side;
use oms_domain::Decimal;
use proptest::prelude::*;
use std::collections::BTreeMap;

const BIG: [usize; 6] = [usize::MAX; 6];

/// Trades `(price, quantity, at)`: prices on a 0.01 tick, quantities on a 0.00001 step, times
/// mostly increasing with jumps across minute, hour and day boundaries and a few late stamps.
fn trades() -> impl Strategy<Value = Vec<(Decimal, Decimal, Timestamp)>> {
    let step = prop_oneof![
        6 => 0i64..2_000,
        2 => 0i64..120_000,
        1 => 0i64..7_200_000,
        1 => -5_000i64..0,
    ];
    (
        -200_000_000_000i64..2_000_000_000_000,
        prop::collection::vec((1i64..10_000_000, 1i64..10_000_000, step), 0..300),
    )
        .prop_map(|(start, raw)| {
            let mut at = start;
            raw.into_iter()
                .map(|(cents, units, step)| {
                    at += step;
                    (
                        Decimal::new(cents, 2),
                        Decimal::new(units, 5),
                        Timestamp(at),
                    )
                })
                .collect()
        })
}

fn aggregate(trades: &[(Decimal, Decimal, Timestamp)]) -> CandleAggregator {
    let mut agg = CandleAggregator::with_retention(BIG);
    for &(p, q, at) in trades {
        agg.on_trade(p, q, at);
    }
    agg
}

proptest! {
    #[test]
    fn trade_by_trade_equals_all_at_once(trades in trades()) {
        let agg = aggregate(&trades);
        for i in Interval::ALL {
            prop_assert_eq!(agg.series(i).to_vec(), candles_from_trades(&trades, i), "{}", i);
        }
    }

    #[test]
    fn coarser_candles_are_the_merge_of_finer_ones(trades in trades()) {
        let agg = aggregate(&trades);
        for (a, fine) in Interval::ALL.iter().enumerate() {
            for coarse in &Interval::ALL[a + 1..] {
                let merged = merge_candles(&agg.series(*fine).to_vec(), *coarse);
                prop_assert_eq!(&merged, &agg.series(*coarse).to_vec(), "{} from {}", coarse, fine);
            }
        }
        // Volumes are exact: every interval holds every trade.
        let volume: Decimal = trades.iter().map(|t| t.1).sum();
        let quote: Decimal = trades.iter().map(|t| t.0 * t.1).sum();
        for i in Interval::ALL {
            let s = agg.series(i);
            prop_assert_eq!(s.iter().map(|c| c.volume).sum::<Decimal>(), volume);
            prop_assert_eq!(s.iter().map(|c| c.quote_volume).sum::<Decimal>(), quote);
            prop_assert_eq!(s.iter().map(|c| c.trades).sum::<u64>(), trades.len() as u64);
            for c in s.iter() {
                prop_assert!(c.low <= c.open && c.open <= c.high);
                prop_assert!(c.low <= c.close && c.close <= c.high);
                prop_assert_eq!(c.open_time.0 % i.millis(), 0);
            }
        }
    }

    #[test]
    fn a_snapshot_then_the_rest_equals_one_replay(
        trades in trades(),
        cut in any::<prop::sample::Index>(),
        overlap in 0usize..20,
    ) {
        let symbol = Symbol::new("BTC/USD");
        let events: Vec<Event> = trades
            .iter()
            .enumerate()
            .map(|(i, &(price, quantity, at))| Event::Trade {
                symbol: symbol.clone(),
                trade_id: TradeId(i as u64 + 1),
                price,
                quantity,
                taker_side: Side::Buy,
                at,
            })
            .collect();
        let mut whole = SymbolMarket::new(symbol.clone());
        for e in &events {
            whole.apply(e);
        }
        let k = if events.is_empty() { 0 } else { cut.index(events.len() + 1) };
        let mut first = SymbolMarket::new(symbol.clone());
        for e in &events[..k] {
            first.apply(e);
        }
        let saved = serde_json::to_vec(&first).unwrap();
        let mut restored: SymbolMarket = serde_json::from_slice(&saved).unwrap();
        // At-least-once: the replay may start a little before the snapshot's offset.
        for e in &events[k.saturating_sub(overlap)..] {
            restored.apply(e);
        }
        prop_assert_eq!(restored, whole);
    }
}

/// Level changes as a venue publishes them: each the new total of one level, 0 removes it.
fn level_changes() -> impl Strategy<Value = Vec<(Side, i64, i64)>> {
    prop::collection::vec(
        (
            prop_oneof![Just(Side::Buy), Just(Side::Sell)],
            1i64..40,
            prop_oneof![2 => Just(0i64), 5 => 1i64..1_000],
        ),
        0..400,
    )
}

/// A client's book: a snapshot, then every update applied in order.
fn client_book(
    snapshot_bids: &[Level],
    snapshot_asks: &[Level],
) -> [BTreeMap<Decimal, Decimal>; 2] {
    [
        snapshot_bids.iter().cloned().collect(),
        snapshot_asks.iter().cloned().collect(),
    ]
}

proptest! {
    #[test]
    fn depth_snapshot_plus_updates_equals_the_book(
        changes in level_changes(),
        cut in any::<prop::sample::Index>(),
    ) {
        // The reference: the venue's own level map.
        let mut reference: [BTreeMap<Decimal, Decimal>; 2] = Default::default();
        let changes: Vec<BookChange> = changes
            .into_iter()
            .enumerate()
            .map(|(i, (side, price, qty))| {
                // Bids below 20, asks from 20 on, as in an uncrossed book.
                let price = if side == Side::Buy { price % 20 + 1 } else { price + 20 };
                BookChange {
                    seq: i as u64 + 1,
                    side,
                    price: Decimal::new(price, 1),
                    quantity: Decimal::new(qty, 3),
                }
            })
            .collect();
        let mut server = DepthBook::new();
        let k = if changes.is_empty() { 0 } else { cut.index(changes.len() + 1) };
        for c in &changes[..k] {
            server.apply(c);
        }
        let snap = server.snapshot(1_000);
        prop_assert_eq!(snap.seq, k as u64);
        let mut client = client_book(&snap.bids, &snap.asks);
        for c in &changes[k..] {
            server.apply(c);
            prop_assert_eq!(c.seq, server.seq());
            let side = &mut client[(c.side == Side::Sell) as usize];
            if c.quantity.is_zero() {
                side.remove(&c.price);
            } else {
                side.insert(c.price, c.quantity);
            }
        }
        for c in &changes {
            let side = &mut reference[(c.side == Side::Sell) as usize];
            if c.quantity.is_zero() {
                side.remove(&c.price);
            } else {
                side.insert(c.price, c.quantity);
            }
        }
        let full = server.snapshot(1_000);
        let as_map = |v: &[Level]| v.iter().cloned().collect::<BTreeMap<_, _>>();
        prop_assert_eq!(&as_map(&full.bids), &reference[0]);
        prop_assert_eq!(&as_map(&full.asks), &reference[1]);
        prop_assert_eq!(&client, &reference);
        prop_assert!(full.bids.windows(2).all(|w| w[0].0 > w[1].0));
        prop_assert!(full.asks.windows(2).all(|w| w[0].0 < w[1].0));
        // Redelivering everything changes nothing.
        let before = server.clone();
        for c in &changes {
            server.apply(c);
        }
        prop_assert_eq!(server, before);
    }
}
