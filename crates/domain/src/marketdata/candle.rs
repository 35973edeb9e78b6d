//! OHLCV candles per symbol and interval.
//!
//! A bucket holds the trades whose time falls in `[open_time, open_time + interval)`, aligned to
//! UTC epoch milliseconds. Open is the first trade's price, close the last one's; volume is in
//! base, quote volume is the exact sum of price × quantity. Buckets without trades have no
//! candle (clients fill gaps if they want flat bars).
//!
//! Trades are booked in arrival order. A trade stamped earlier than one already booked is booked
//! at the later time (the clock never runs backwards inside a series), which keeps every series
//! append-only and makes each coarser candle exactly the merge of its finer ones.

use super::interval::Interval;
use crate::ids::Timestamp;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Candle {
    /// Bucket start, epoch ms (UTC).
    pub open_time: Timestamp,
    pub open: Decimal,
    pub high: Decimal,
    pub low: Decimal,
    pub close: Decimal,
    /// Base volume.
    pub volume: Decimal,
    /// Quote volume: Σ price × quantity.
    pub quote_volume: Decimal,
    pub trades: u64,
}

impl Candle {
    /// A bucket opened by one trade.
    pub fn opened(open_time: i64, price: Decimal, quantity: Decimal, quote: Decimal) -> Self {
        Candle {
            open_time: Timestamp(open_time),
            open: price,
            high: price,
            low: price,
            close: price,
            volume: quantity,
            quote_volume: quote,
            trades: 1,
        }
    }

    /// Adds a later trade of the same bucket.
    #[inline]
    pub fn add_trade(&mut self, price: Decimal, quantity: Decimal, quote: Decimal) {
        if price > self.high {
            self.high = price;
        } else if price < self.low {
            self.low = price;
        }
        self.close = price;
        self.volume += quantity;
        self.quote_volume += quote;
        self.trades += 1;
    }

    /// Folds a later candle (of a finer interval, inside this bucket) into this one.
    pub fn absorb(&mut self, later: &Candle) {
        self.high = self.high.max(later.high);
        self.low = self.low.min(later.low);
        self.close = later.close;
        self.volume += later.volume;
        self.quote_volume += later.quote_volume;
        self.trades += later.trades;
    }
}

/// Candles kept per interval unless configured otherwise: 1 h of seconds, 7 days of minutes,
/// 30 days of 5 minutes, 90 days of 15 minutes, a year of hours, 10 years of days.
pub const DEFAULT_RETENTION: [usize; 6] = [3_600, 10_080, 8_640, 8_640, 8_760, 3_660];

/// One interval's candles, oldest first, at most `max_len` of them (the oldest are dropped).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CandleSeries {
    pub interval: Interval,
    pub max_len: usize,
    candles: VecDeque<Candle>,
}

impl CandleSeries {
    pub fn new(interval: Interval, max_len: usize) -> Self {
        CandleSeries {
            interval,
            max_len: max_len.max(1),
            candles: VecDeque::new(),
        }
    }

    /// Books a trade at `at_ms`, which must not be earlier than the last booked one.
    #[inline]
    fn book(&mut self, at_ms: i64, price: Decimal, quantity: Decimal, quote: Decimal) {
        let open_time = self.interval.bucket(at_ms);
        match self.candles.back_mut() {
            Some(c) if c.open_time.0 == open_time => c.add_trade(price, quantity, quote),
            _ => {
                if self.candles.len() == self.max_len {
                    self.candles.pop_front();
                }
                self.candles
                    .push_back(Candle::opened(open_time, price, quantity, quote));
            }
        }
    }

    /// The newest candle (the current bucket if a trade happened in it).
    pub fn last(&self) -> Option<&Candle> {
        self.candles.back()
    }

    pub fn len(&self) -> usize {
        self.candles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.candles.is_empty()
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Candle> + ExactSizeIterator {
        self.candles.iter()
    }

    pub fn to_vec(&self) -> Vec<Candle> {
        self.candles.iter().cloned().collect()
    }

    /// Candles with `from <= open_time < to`, oldest first, at most `limit`. With `from` given
    /// the page starts at `from`; without it the page is the newest `limit` before `to`.
    pub fn range(&self, from: Option<i64>, to: Option<i64>, limit: usize) -> Vec<Candle> {
        let start = from.map_or(0, |f| self.candles.partition_point(|c| c.open_time.0 < f));
        let end = to.map_or(self.candles.len(), |t| {
            self.candles.partition_point(|c| c.open_time.0 < t)
        });
        if start >= end {
            return Vec::new();
        }
        let (start, end) = if from.is_some() {
            (start, end.min(start + limit))
        } else {
            (end.saturating_sub(limit).max(start), end)
        };
        self.candles.range(start..end).cloned().collect()
    }
}

/// Candles of one symbol at all six intervals, updated trade by trade.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CandleAggregator {
    series: [CandleSeries; 6],
    /// The latest trade time booked; later trades stamped earlier are booked at this time.
    last_at: Option<Timestamp>,
}

impl Default for CandleAggregator {
    fn default() -> Self {
        Self::with_retention(DEFAULT_RETENTION)
    }
}

impl CandleAggregator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps at most `retention[i]` candles of `Interval::ALL[i]`.
    pub fn with_retention(retention: [usize; 6]) -> Self {
        CandleAggregator {
            series: Interval::ALL.map(|i| CandleSeries::new(i, retention[i.index()])),
            last_at: None,
        }
    }

    /// Books one trade in all six intervals.
    #[inline]
    pub fn on_trade(&mut self, price: Decimal, quantity: Decimal, at: Timestamp) {
        let at = match self.last_at {
            Some(last) if at < last => last,
            _ => at,
        };
        self.last_at = Some(at);
        let quote = price * quantity;
        for s in &mut self.series {
            s.book(at.0, price, quantity, quote);
        }
    }

    pub fn series(&self, interval: Interval) -> &CandleSeries {
        &self.series[interval.index()]
    }

    /// The newest candle of an interval.
    pub fn current(&self, interval: Interval) -> Option<&Candle> {
        self.series[interval.index()].last()
    }

    pub fn last_trade_at(&self) -> Option<Timestamp> {
        self.last_at
    }
}

/// Candles of one interval built from a whole list of trades `(price, quantity, at)` at once,
/// with the same booking rules as [`CandleAggregator`] (no retention limit).
pub fn candles_from_trades(
    trades: &[(Decimal, Decimal, Timestamp)],
    interval: Interval,
) -> Vec<Candle> {
    let mut out: Vec<Candle> = Vec::new();
    let mut clock = i64::MIN;
    for &(price, quantity, at) in trades {
        clock = clock.max(at.0);
        let open_time = interval.bucket(clock);
        let quote = price * quantity;
        match out.last_mut() {
            Some(c) if c.open_time.0 == open_time => c.add_trade(price, quantity, quote),
            _ => out.push(Candle::opened(open_time, price, quantity, quote)),
        }
    }
    out
}

/// Merges candles of a finer interval (oldest first) into candles of `to`, which must be a
/// multiple of theirs.
pub fn merge_candles(finer: &[Candle], to: Interval) -> Vec<Candle> {
    let mut out: Vec<Candle> = Vec::new();
    for c in finer {
        let open_time = to.bucket(c.open_time.0);
        match out.last_mut() {
            Some(m) if m.open_time.0 == open_time => m.absorb(c),
            _ => {
                let mut m = c.clone();
                m.open_time = Timestamp(open_time);
                out.push(m);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn ohlcv_of_one_bucket() {
        let mut agg = CandleAggregator::new();
        agg.on_trade(d("100.5"), d("2"), Timestamp(60_000));
        agg.on_trade(d("101"), d("0.5"), Timestamp(60_500));
        agg.on_trade(d("99.25"), d("1"), Timestamp(119_999));
        let c = agg.current(Interval::M1).unwrap();
        assert_eq!(c.open_time, Timestamp(60_000));
        assert_eq!(
            (c.open, c.high, c.low, c.close),
            (d("100.5"), d("101"), d("99.25"), d("99.25"))
        );
        assert_eq!(c.volume, d("3.5"));
        assert_eq!(c.quote_volume, d("201") + d("50.5") + d("99.25"));
        assert_eq!(c.trades, 3);
        assert_eq!(agg.series(Interval::S1).len(), 2);
        assert_eq!(
            agg.current(Interval::S1).unwrap().open_time,
            Timestamp(119_000)
        );
    }

    #[test]
    fn a_late_trade_is_booked_at_the_latest_time() {
        let mut agg = CandleAggregator::new();
        agg.on_trade(d("10"), d("1"), Timestamp(61_000));
        agg.on_trade(d("11"), d("1"), Timestamp(59_000));
        let s = agg.series(Interval::M1);
        assert_eq!(s.len(), 1);
        assert_eq!(s.last().unwrap().close, d("11"));
    }

    #[test]
    fn retention_drops_the_oldest() {
        let mut agg = CandleAggregator::with_retention([2, 10, 10, 10, 10, 10]);
        for s in 0..5 {
            agg.on_trade(d("1"), d("1"), Timestamp(s * 1_000));
        }
        let s1 = agg.series(Interval::S1).to_vec();
        assert_eq!(s1.len(), 2);
        assert_eq!(s1[0].open_time, Timestamp(3_000));
    }

    #[test]
    fn range_pages_from_the_start_or_the_end() {
        let mut agg = CandleAggregator::new();
        for s in 0..10 {
            agg.on_trade(d("1"), d("1"), Timestamp(s * 1_000));
        }
        let s = agg.series(Interval::S1);
        let times = |v: Vec<Candle>| v.iter().map(|c| c.open_time.0 / 1000).collect::<Vec<_>>();
        assert_eq!(times(s.range(None, None, 3)), vec![7, 8, 9]);
        assert_eq!(times(s.range(Some(2_000), None, 3)), vec![2, 3, 4]);
        assert_eq!(times(s.range(Some(2_000), Some(4_000), 10)), vec![2, 3]);
        assert_eq!(times(s.range(None, Some(4_000), 2)), vec![2, 3]);
        assert_eq!(
            times(s.range(Some(2_500), Some(2_600), 10)),
            Vec::<i64>::new()
        );
    }

    #[test]
    fn snapshot_round_trips() {
        let mut agg = CandleAggregator::new();
        agg.on_trade(d("45000.01"), d("0.00001"), Timestamp(1));
        let json = serde_json::to_string(&agg).unwrap();
        let back: CandleAggregator = serde_json::from_str(&json).unwrap();
        assert_eq!(back, agg);
    }
}
