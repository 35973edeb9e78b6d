//! The L2 depth book of one symbol, kept from the venue's `BookChanged` events.
//!
//! Each change carries the level's new total (0 removes it) and a sequence number that grows by
//! one per change. A change at or below the book's sequence was applied already (redelivery) and
//! is dropped; one that skips numbers is applied and reported as a gap, since the log is the
//! source of truth and there is nothing older to ask for.

use crate::order::Side;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Most levels per side a snapshot returns.
pub const MAX_SNAPSHOT_LEVELS: usize = 1_000;

/// `[price, quantity]`, serialised as a two-element array of decimal strings.
pub type Level = (Decimal, Decimal);

/// One change of one level, as published to depth subscribers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BookChange {
    pub seq: u64,
    pub side: Side,
    pub price: Decimal,
    /// The level's new total; 0 removes it.
    pub quantity: Decimal,
}

/// How a change's sequence relates to the book's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqCheck {
    /// The next one: applied.
    InOrder,
    /// Seen before: dropped.
    Duplicate,
    /// Changes `expected..got` never arrived; this one was applied anyway.
    Gap { expected: u64, got: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DepthSnapshot {
    pub seq: u64,
    /// Best (highest) first.
    pub bids: Vec<Level>,
    /// Best (lowest) first.
    pub asks: Vec<Level>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DepthBook {
    seq: u64,
    #[serde(with = "levels")]
    bids: BTreeMap<Decimal, Decimal>,
    #[serde(with = "levels")]
    asks: BTreeMap<Decimal, Decimal>,
    /// Gaps seen so far (for metrics).
    gaps: u64,
}

impl DepthBook {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn seq(&self) -> u64 {
        self.seq
    }

    pub fn gaps(&self) -> u64 {
        self.gaps
    }

    pub fn apply(&mut self, change: &BookChange) -> SeqCheck {
        if change.seq <= self.seq {
            return SeqCheck::Duplicate;
        }
        let check = if change.seq == self.seq + 1 {
            SeqCheck::InOrder
        } else {
            self.gaps += 1;
            SeqCheck::Gap {
                expected: self.seq + 1,
                got: change.seq,
            }
        };
        self.seq = change.seq;
        let side = match change.side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        };
        if change.quantity.is_zero() {
            side.remove(&change.price);
        } else {
            side.insert(change.price, change.quantity);
        }
        check
    }

    pub fn best_bid(&self) -> Option<Level> {
        self.bids.last_key_value().map(|(p, q)| (*p, *q))
    }

    pub fn best_ask(&self) -> Option<Level> {
        self.asks.first_key_value().map(|(p, q)| (*p, *q))
    }

    /// The best `levels` levels of each side (at most [`MAX_SNAPSHOT_LEVELS`]).
    pub fn snapshot(&self, levels: usize) -> DepthSnapshot {
        let n = levels.min(MAX_SNAPSHOT_LEVELS);
        DepthSnapshot {
            seq: self.seq,
            bids: self
                .bids
                .iter()
                .rev()
                .take(n)
                .map(|(p, q)| (*p, *q))
                .collect(),
            asks: self.asks.iter().take(n).map(|(p, q)| (*p, *q)).collect(),
        }
    }

    /// Number of price levels on a side.
    pub fn depth(&self, side: Side) -> usize {
        match side {
            Side::Buy => self.bids.len(),
            Side::Sell => self.asks.len(),
        }
    }
}

/// A level map as a list of `[price, quantity]` pairs, so snapshots need no string map keys.
mod levels {
    use rust_decimal::Decimal;
    use serde::{Deserialize, Deserializer, Serializer};
    use std::collections::BTreeMap;

    pub fn serialize<S: Serializer>(
        m: &BTreeMap<Decimal, Decimal>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(m.iter())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<Decimal, Decimal>, D::Error> {
        Ok(Vec::<(Decimal, Decimal)>::deserialize(d)?
            .into_iter()
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(seq: u64, side: Side, p: i64, q: i64) -> BookChange {
        BookChange {
            seq,
            side,
            price: Decimal::from(p),
            quantity: Decimal::from(q),
        }
    }

    #[test]
    fn applies_in_order_drops_duplicates_reports_gaps() {
        let mut b = DepthBook::new();
        assert_eq!(b.apply(&ch(1, Side::Buy, 100, 2)), SeqCheck::InOrder);
        assert_eq!(b.apply(&ch(2, Side::Buy, 101, 1)), SeqCheck::InOrder);
        assert_eq!(b.apply(&ch(3, Side::Sell, 103, 5)), SeqCheck::InOrder);
        assert_eq!(b.apply(&ch(2, Side::Buy, 101, 9)), SeqCheck::Duplicate);
        assert_eq!(
            b.apply(&ch(6, Side::Buy, 101, 0)),
            SeqCheck::Gap {
                expected: 4,
                got: 6
            }
        );
        let s = b.snapshot(10);
        assert_eq!(s.seq, 6);
        assert_eq!(s.bids, vec![(Decimal::from(100), Decimal::from(2))]);
        assert_eq!(s.asks, vec![(Decimal::from(103), Decimal::from(5))]);
        assert_eq!(b.gaps(), 1);
    }

    #[test]
    fn snapshot_orders_best_first_and_truncates() {
        let mut b = DepthBook::new();
        for (i, p) in [100, 102, 101].into_iter().enumerate() {
            b.apply(&ch(i as u64 + 1, Side::Buy, p, 1));
        }
        for (i, p) in [105, 103, 104].into_iter().enumerate() {
            b.apply(&ch(i as u64 + 4, Side::Sell, p, 1));
        }
        let s = b.snapshot(2);
        let prices = |v: &[Level]| v.iter().map(|l| l.0).collect::<Vec<_>>();
        assert_eq!(
            prices(&s.bids),
            vec![Decimal::from(102), Decimal::from(101)]
        );
        assert_eq!(
            prices(&s.asks),
            vec![Decimal::from(103), Decimal::from(104)]
        );
        assert_eq!(b.best_bid().unwrap().0, Decimal::from(102));
        let json = serde_json::to_string(&b).unwrap();
        assert_eq!(serde_json::from_str::<DepthBook>(&json).unwrap(), b);
        assert!(serde_json::to_string(&s)
            .unwrap()
            .contains(r#"["102","1"]"#));
    }
}
