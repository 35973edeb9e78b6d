//! The most recent public trades of a symbol.

use crate::ids::{Timestamp, TradeId};
use crate::order::Side;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Trades kept per symbol unless configured otherwise (also the REST maximum `limit`).
pub const DEFAULT_TRADE_RING: usize = 1_000;

/// A trade as market data shows it: no accounts, no order ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicTrade {
    pub trade_id: TradeId,
    pub price: Decimal,
    pub quantity: Decimal,
    pub taker_side: Side,
    /// Epoch ms.
    pub at: Timestamp,
}

/// A bounded ring of trades, oldest dropped first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TradeRing {
    capacity: usize,
    trades: VecDeque<PublicTrade>,
}

impl Default for TradeRing {
    fn default() -> Self {
        Self::new(DEFAULT_TRADE_RING)
    }
}

impl TradeRing {
    pub fn new(capacity: usize) -> Self {
        TradeRing {
            capacity: capacity.max(1),
            trades: VecDeque::with_capacity(capacity.clamp(1, 4_096)),
        }
    }

    pub fn push(&mut self, trade: PublicTrade) {
        if self.trades.len() == self.capacity {
            self.trades.pop_front();
        }
        self.trades.push_back(trade);
    }

    /// Up to `limit` trades, newest first.
    pub fn latest(&self, limit: usize) -> Vec<PublicTrade> {
        self.trades.iter().rev().take(limit).cloned().collect()
    }

    pub fn last(&self) -> Option<&PublicTrade> {
        self.trades.back()
    }

    pub fn len(&self) -> usize {
        self.trades.len()
    }

    pub fn is_empty(&self) -> bool {
        self.trades.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_and_lists_newest_first() {
        let mut r = TradeRing::new(3);
        for i in 1..=5u64 {
            r.push(PublicTrade {
                trade_id: TradeId(i),
                price: Decimal::from(i),
                quantity: Decimal::ONE,
                taker_side: Side::Buy,
                at: Timestamp(i as i64),
            });
        }
        let ids: Vec<u64> = r.latest(10).iter().map(|t| t.trade_id.0).collect();
        assert_eq!(ids, vec![5, 4, 3]);
        assert_eq!(r.latest(1)[0].trade_id, TradeId(5));
    }
}
