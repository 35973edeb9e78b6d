//! The 24 h ticker.
//!
//! The rolling window is made of whole one-minute candles: the 1,440 minute buckets ending with
//! the one that holds `now`. It is exact (sums of exact candle volumes) and cheap to compute on
//! demand; the price is that the window's oldest edge moves in one-minute steps, so it covers
//! between 23 h 59 min and 24 h of trades.

use super::candle::CandleSeries;
use super::interval::Interval;
use crate::ids::{Symbol, Timestamp};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

/// Minute buckets in the rolling window.
pub const WINDOW_MINUTES: i64 = 1_440;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ticker {
    pub symbol: Symbol,
    /// The last trade's price, however old.
    pub last: Option<Decimal>,
    pub best_bid: Option<Decimal>,
    pub best_ask: Option<Decimal>,
    /// The first trade price of the window; null when the window has no trades.
    pub open24h: Option<Decimal>,
    pub high24h: Option<Decimal>,
    pub low24h: Option<Decimal>,
    /// Window close − window open.
    pub change24h: Option<Decimal>,
    /// change / open × 100, rounded half away from zero to 2 decimals.
    pub change_percent24h: Option<Decimal>,
    pub volume24h: Decimal,
    pub quote_volume24h: Decimal,
}

impl Ticker {
    /// The ticker as of `now` from a symbol's one-minute candles.
    pub fn compute(
        symbol: &Symbol,
        last: Option<Decimal>,
        best_bid: Option<Decimal>,
        best_ask: Option<Decimal>,
        minutes: &CandleSeries,
        now: Timestamp,
    ) -> Ticker {
        debug_assert_eq!(minutes.interval, Interval::M1);
        let start = Interval::M1.bucket(now.0) - (WINDOW_MINUTES - 1) * Interval::M1.millis();
        let mut window = minutes.iter().rev().take_while(|c| c.open_time.0 >= start);
        let mut t = Ticker {
            symbol: symbol.clone(),
            last,
            best_bid,
            best_ask,
            open24h: None,
            high24h: None,
            low24h: None,
            change24h: None,
            change_percent24h: None,
            volume24h: Decimal::ZERO,
            quote_volume24h: Decimal::ZERO,
        };
        let Some(newest) = window.next() else {
            return t;
        };
        let (mut open, mut high, mut low) = (newest.open, newest.high, newest.low);
        let (mut volume, mut quote) = (newest.volume, newest.quote_volume);
        for c in window {
            open = c.open;
            high = high.max(c.high);
            low = low.min(c.low);
            volume += c.volume;
            quote += c.quote_volume;
        }
        let change = newest.close - open;
        t.open24h = Some(open);
        t.high24h = Some(high);
        t.low24h = Some(low);
        t.change24h = Some(change);
        t.change_percent24h = (!open.is_zero()).then(|| {
            let mut pct = (change * Decimal::ONE_HUNDRED / open)
                .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
            pct.rescale(2); // always two decimals: "-10.00", not "-10"
            pct
        });
        t.volume24h = volume;
        t.quote_volume24h = quote;
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::marketdata::CandleAggregator;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn window_is_the_last_1440_minutes() {
        let mut agg = CandleAggregator::new();
        let min = 60_000;
        // One trade outside the window, then three inside.
        agg.on_trade(d("50"), d("1"), Timestamp(0));
        agg.on_trade(d("100"), d("1"), Timestamp(min));
        agg.on_trade(d("120"), d("2"), Timestamp(10 * min));
        agg.on_trade(d("90"), d("1"), Timestamp(1_440 * min + 5));
        let now = Timestamp(1_440 * min + 30_000);
        let t = Ticker::compute(
            &Symbol::new("X/Y"),
            Some(d("90")),
            None,
            None,
            agg.series(Interval::M1),
            now,
        );
        assert_eq!(t.open24h, Some(d("100")));
        assert_eq!(t.high24h, Some(d("120")));
        assert_eq!(t.low24h, Some(d("90")));
        assert_eq!(t.change24h, Some(d("-10")));
        assert_eq!(t.change_percent24h, Some(d("-10.00")));
        assert_eq!(t.volume24h, d("4"));
        assert_eq!(t.quote_volume24h, d("430"));
        let json = serde_json::to_string(&t).unwrap();
        assert!(json.contains(r#""changePercent24h":"-10.00""#), "{json}");
        assert!(json.contains(r#""quoteVolume24h":"430""#), "{json}");
    }

    #[test]
    fn an_empty_window_has_no_prices_and_zero_volume() {
        let mut agg = CandleAggregator::new();
        agg.on_trade(d("50"), d("1"), Timestamp(0));
        let t = Ticker::compute(
            &Symbol::new("X/Y"),
            Some(d("50")),
            Some(d("49")),
            Some(d("51")),
            agg.series(Interval::M1),
            Timestamp(2 * 86_400_000),
        );
        assert_eq!(t.last, Some(d("50")));
        assert_eq!(t.open24h, None);
        assert_eq!(t.volume24h, Decimal::ZERO);
        assert_eq!(t.best_bid, Some(d("49")));
    }
}
