//! All market data of one symbol as one deterministic fold of its `marketdata` events.

use super::candle::CandleAggregator;
use super::depth::{BookChange, DepthBook, SeqCheck};
use super::interval::Interval;
use super::ticker::Ticker;
use super::trades::{PublicTrade, TradeRing};
use crate::events::Event;
use crate::ids::{Symbol, Timestamp, TradeId};
use crate::instrument::TradingStatus;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// What one event changed, for the live feeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarketUpdate {
    /// A new trade; every interval's current candle changed with it.
    Trade(PublicTrade),
    /// A depth level changed.
    Book(BookChange, SeqCheck),
    /// The book's trading status changed.
    Status(BookStatus),
}

/// The trading status in force at a symbol's book, as the venue last published it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BookStatus {
    pub status: TradingStatus,
    /// When it came into force (the venue's time for the first event that published it).
    pub since: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SymbolMarket {
    pub symbol: Symbol,
    candles: CandleAggregator,
    depth: DepthBook,
    trades: TradeRing,
    /// Trade ids grow per symbol; one at or below this was applied already (redelivery).
    last_trade_id: Option<TradeId>,
    /// Absent until the venue publishes one (snapshots from before it carry none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<BookStatus>,
}

impl SymbolMarket {
    pub fn new(symbol: Symbol) -> Self {
        Self::with(symbol, CandleAggregator::new(), TradeRing::default())
    }

    /// With chosen candle retention and trade ring size.
    pub fn with(symbol: Symbol, candles: CandleAggregator, trades: TradeRing) -> Self {
        SymbolMarket {
            symbol,
            candles,
            depth: DepthBook::new(),
            trades,
            last_trade_id: None,
            status: None,
        }
    }

    /// Applies one event. Returns what changed, or `None` for a duplicate, another symbol's
    /// event or an event that is not market data.
    pub fn apply(&mut self, event: &Event) -> Option<MarketUpdate> {
        match event {
            Event::Trade {
                symbol,
                trade_id,
                price,
                quantity,
                taker_side,
                at,
            } if *symbol == self.symbol => {
                if self.last_trade_id.is_some_and(|last| *trade_id <= last) {
                    return None;
                }
                self.last_trade_id = Some(*trade_id);
                self.candles.on_trade(*price, *quantity, *at);
                let trade = PublicTrade {
                    trade_id: *trade_id,
                    price: *price,
                    quantity: *quantity,
                    taker_side: *taker_side,
                    at: *at,
                };
                self.trades.push(trade.clone());
                Some(MarketUpdate::Trade(trade))
            }
            Event::BookChanged {
                symbol,
                seq,
                side,
                price,
                quantity,
            } if *symbol == self.symbol => {
                let change = BookChange {
                    seq: *seq,
                    side: *side,
                    price: *price,
                    // A removal reads "0" whatever scale the venue wrote its zero with.
                    quantity: if quantity.is_zero() {
                        Decimal::ZERO
                    } else {
                        *quantity
                    },
                };
                match self.depth.apply(&change) {
                    SeqCheck::Duplicate => None,
                    check => Some(MarketUpdate::Book(change, check)),
                }
            }
            // Each start of the venue publishes the status again: only a change is news.
            Event::TradingStatusChanged {
                symbol, status, at, ..
            } if *symbol == self.symbol => {
                if self.status.is_some_and(|s| s.status == *status) {
                    return None;
                }
                let now = BookStatus {
                    status: *status,
                    since: *at,
                };
                self.status = Some(now);
                Some(MarketUpdate::Status(now))
            }
            _ => None,
        }
    }

    pub fn candles(&self) -> &CandleAggregator {
        &self.candles
    }

    pub fn depth(&self) -> &DepthBook {
        &self.depth
    }

    pub fn trades(&self) -> &TradeRing {
        &self.trades
    }

    pub fn last_price(&self) -> Option<Decimal> {
        self.trades.last().map(|t| t.price)
    }

    pub fn last_trade_id(&self) -> Option<TradeId> {
        self.last_trade_id
    }

    /// The book's status as last published, if the venue has published one.
    pub fn status(&self) -> Option<BookStatus> {
        self.status
    }

    /// The 24 h ticker as of `now`.
    pub fn ticker(&self, now: Timestamp) -> Ticker {
        Ticker::compute(
            &self.symbol,
            self.last_price(),
            self.depth.best_bid().map(|l| l.0),
            self.depth.best_ask().map(|l| l.0),
            self.candles.series(Interval::M1),
            now,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::order::Side;

    fn trade(id: u64, price: i64, at: i64) -> Event {
        Event::Trade {
            symbol: Symbol::new("BTC/USD"),
            trade_id: TradeId(id),
            price: Decimal::from(price),
            quantity: Decimal::ONE,
            taker_side: Side::Buy,
            at: Timestamp(at),
        }
    }

    #[test]
    fn redelivered_events_change_nothing() {
        let mut m = SymbolMarket::new(Symbol::new("BTC/USD"));
        assert!(m.apply(&trade(1, 100, 1_000)).is_some());
        assert!(m.apply(&trade(2, 101, 2_000)).is_some());
        let before = m.clone();
        assert!(m.apply(&trade(2, 101, 2_000)).is_none());
        assert!(m.apply(&trade(1, 100, 1_000)).is_none());
        assert_eq!(m, before);
        let other = Event::Trade {
            symbol: Symbol::new("ETH/USD"),
            trade_id: TradeId(9),
            price: Decimal::ONE,
            quantity: Decimal::ONE,
            taker_side: Side::Sell,
            at: Timestamp(3_000),
        };
        assert!(m.apply(&other).is_none());
        assert_eq!(m.candles().current(Interval::M1).unwrap().trades, 2);
        let book = Event::BookChanged {
            symbol: Symbol::new("BTC/USD"),
            seq: 1,
            side: Side::Buy,
            price: Decimal::from(99),
            quantity: Decimal::ONE,
        };
        assert!(m.apply(&book).is_some());
        assert!(m.apply(&book).is_none());
        assert_eq!(m.ticker(Timestamp(3_000)).best_bid, Some(Decimal::from(99)));
        let json = serde_json::to_vec(&m).unwrap();
        assert_eq!(serde_json::from_slice::<SymbolMarket>(&json).unwrap(), m);
    }

    fn status(status: TradingStatus, change: Option<u64>, at: i64) -> Event {
        Event::TradingStatusChanged {
            symbol: Symbol::new("BTC/USD"),
            status,
            change,
            at: Timestamp(at),
        }
    }

    #[test]
    fn a_status_is_news_only_when_it_changes_and_survives_a_snapshot() {
        let mut m = SymbolMarket::new(Symbol::new("BTC/USD"));
        assert_eq!(m.status(), None);
        let trading = BookStatus {
            status: TradingStatus::Trading,
            since: Timestamp(1_000),
        };
        assert_eq!(
            m.apply(&status(TradingStatus::Trading, None, 1_000)),
            Some(MarketUpdate::Status(trading))
        );
        // A restart of the venue publishes it again: nothing changed, and `since` stays.
        assert_eq!(m.apply(&status(TradingStatus::Trading, None, 5_000)), None);
        assert_eq!(m.status(), Some(trading));
        let halted = BookStatus {
            status: TradingStatus::Halted,
            since: Timestamp(6_000),
        };
        assert_eq!(
            m.apply(&status(TradingStatus::Halted, Some(7), 6_000)),
            Some(MarketUpdate::Status(halted))
        );
        let mut other = status(TradingStatus::Trading, None, 6_500);
        if let Event::TradingStatusChanged { symbol, .. } = &mut other {
            *symbol = Symbol::new("ETH/USD");
        }
        assert_eq!(m.apply(&other), None);
        let json = serde_json::to_vec(&m).unwrap();
        let back = serde_json::from_slice::<SymbolMarket>(&json).unwrap();
        assert_eq!(back.status(), Some(halted));
        // A snapshot written before statuses were published reads as none known.
        let mut old: serde_json::Value = serde_json::from_slice(&json).unwrap();
        old.as_object_mut().unwrap().remove("status");
        let old = serde_json::from_value::<SymbolMarket>(old).unwrap();
        assert_eq!(old.status(), None);
    }
}
