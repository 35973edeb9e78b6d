//! JSON shapes of the market data REST answers and of the private `orders` channel (whose
//! orders and fills are the API's own views, so both read the same).

pub use crate::api::views::{FillView, OrderView};
use oms_domain::ids::Symbol;
use oms_domain::instrument::TradingStatus;
use oms_domain::marketdata::{Candle, Interval, Level, PublicTrade};
use serde::Serialize;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CandlesView<'a> {
    pub symbol: &'a Symbol,
    pub interval: Interval,
    pub candles: Vec<Candle>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DepthView<'a> {
    pub symbol: &'a Symbol,
    pub seq: u64,
    pub bids: Vec<Level>,
    pub asks: Vec<Level>,
}

/// The data of a depth snapshot message.
#[derive(Debug, Serialize)]
pub struct DepthLevels {
    pub bids: Vec<Level>,
    pub asks: Vec<Level>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TradesView<'a> {
    pub symbol: &'a Symbol,
    pub trades: Vec<PublicTrade>,
}

/// The data of a `status:{symbol}` message. `since` is absent while the venue has published
/// no status for the symbol: the configured one is shown.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusView<'a> {
    pub symbol: &'a Symbol,
    pub status: TradingStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<i64>,
}

/// The data of an `orders` channel message: `{"order":...}` or `{"fill":...,"order":...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fill: Option<FillView>,
    pub order: OrderView,
}
