//! Candle aggregation throughput: trades per second booked into all six intervals on one core.
//!
//! `cargo bench -p oms-domain --bench candles` (optional args: trade count, ms between trades).

use oms_domain::events::Event;
use oms_domain::ids::{Symbol, Timestamp, TradeId};
use oms_domain::marketdata::{CandleAggregator, Interval, SymbolMarket};
use oms_domain::order::Side;
use oms_domain::Decimal;
use std::hint::black_box;
use std::time::Instant;

/// A deterministic xorshift so runs are comparable.
struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// BTC/USD-like trades: a random walk on a 0.01 tick, quantities on a 0.00001 step.
fn trades(n: usize, spacing_ms: i64) -> Vec<(Decimal, Decimal, Timestamp)> {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut cents: i64 = 4_500_000;
    let start = 1_764_057_600_000;
    (0..n)
        .map(|i| {
            cents = (cents + (rng.next() % 201) as i64 - 100).max(1);
            let qty = Decimal::new((rng.next() % 100_000 + 1) as i64, 5);
            (
                Decimal::new(cents, 2),
                qty,
                Timestamp(start + i as i64 * spacing_ms),
            )
        })
        .collect()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let n: usize = args
        .first()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2_000_000);
    let rounds = 7;
    println!("candle aggregation, all six intervals, {n} trades per round, {rounds} rounds");
    for spacing in [1_i64, 50, 1_000] {
        let input = trades(n, spacing);
        let mut rates = Vec::new();
        for _ in 0..rounds {
            let mut agg = CandleAggregator::new();
            let t0 = Instant::now();
            for &(p, q, at) in &input {
                agg.on_trade(p, q, at);
            }
            let secs = t0.elapsed().as_secs_f64();
            black_box(agg.current(Interval::D1));
            rates.push(n as f64 / secs);
        }
        let best = rates.iter().cloned().fold(0.0, f64::max);
        println!(
            "  CandleAggregator::on_trade, trades {spacing:>4} ms apart: median {:>12.0} trades/s, best {:>12.0} trades/s",
            median(&mut rates),
            best
        );
    }

    // The service's whole per-trade fold: dedupe, six intervals and the recent-trades ring.
    let symbol = Symbol::new("BTC/USD");
    let events: Vec<Event> = trades(n, 1)
        .into_iter()
        .enumerate()
        .map(|(i, (price, quantity, at))| Event::Trade {
            symbol: symbol.clone(),
            trade_id: TradeId(i as u64 + 1),
            price,
            quantity,
            taker_side: if i % 2 == 0 { Side::Buy } else { Side::Sell },
            at,
        })
        .collect();
    let mut rates = Vec::new();
    for _ in 0..rounds {
        let mut m = SymbolMarket::new(symbol.clone());
        let t0 = Instant::now();
        for e in &events {
            black_box(m.apply(e));
        }
        rates.push(n as f64 / t0.elapsed().as_secs_f64());
    }
    let best = rates.iter().cloned().fold(0.0, f64::max);
    println!(
        "  SymbolMarket::apply(Trade) (dedupe + candles + trade ring): median {:>12.0} trades/s, best {:>12.0} trades/s",
        median(&mut rates),
        best
    );
}
