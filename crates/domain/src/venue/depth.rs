//! A view of the top of a book, for market data.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// One price level: its price and the total quantity resting there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Level {
    pub price: Decimal,
    pub quantity: Decimal,
}

/// The best levels of both sides, best first, as of the book change `seq`: a client that
/// applies `BookChanged` events with a higher `seq` on top stays in step with the book.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Depth {
    pub seq: u64,
    pub bids: Vec<Level>,
    pub asks: Vec<Level>,
}
