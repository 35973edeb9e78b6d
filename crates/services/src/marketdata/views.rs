//! JSON shapes of the market data REST answers and of the private `orders` channel.

use crate::ingestion::clock::format_rfc3339_millis;
use oms_domain::events::Fill;
use oms_domain::ids::{OrderId, Symbol, Timestamp, TradeId};
use oms_domain::instrument::Instrument;
use oms_domain::marketdata::{Candle, Interval, Level, PublicTrade};
use oms_domain::order::{
    Liquidity, Order, OrderStatus, OrderType, RejectReason, Side, TimeInForce,
};
use oms_domain::Decimal;
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

/// An order as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderView {
    pub order_id: OrderId,
    pub client_order_id: Option<String>,
    pub account_id: u64,
    pub symbol: Symbol,
    pub side: Side,
    pub order_type: OrderType,
    pub time_in_force: TimeInForce,
    pub post_only: bool,
    pub price: Option<Decimal>,
    pub stop_price: Option<Decimal>,
    pub quantity: Decimal,
    pub filled_quantity: Decimal,
    pub average_fill_price: Option<Decimal>,
    pub fees: Decimal,
    pub status: OrderStatus,
    pub reject_reason: Option<RejectReason>,
    pub expire_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// Shows `value` with at least the decimals of `unit` ("45000" at tick 0.01 is "45000.00").
/// Never drops digits.
fn at_scale(value: Decimal, unit: Option<Decimal>) -> Decimal {
    let mut v = value;
    if let Some(u) = unit {
        if v.scale() < u.scale() {
            v.rescale(u.scale());
        }
    }
    v
}

impl OrderView {
    pub fn new(o: &Order, instrument: Option<&Instrument>) -> Self {
        let tick = instrument.map(|i| i.tick_size);
        let step = instrument.map(|i| i.step_size);
        OrderView {
            order_id: o.order_id,
            client_order_id: o.client_order_id.clone(),
            account_id: o.account.0,
            symbol: o.symbol.clone(),
            side: o.side,
            order_type: o.order_type,
            time_in_force: o.time_in_force,
            post_only: o.post_only,
            price: o.price.map(|p| at_scale(p, tick)),
            stop_price: o.stop_price.map(|p| at_scale(p, tick)),
            quantity: at_scale(o.quantity, step),
            filled_quantity: o.filled_quantity,
            average_fill_price: o.average_fill_price,
            fees: o.fees,
            status: o.status,
            reject_reason: o.reject_reason,
            expire_at: o.expire_at.map(format_rfc3339_millis),
            created_at: format_rfc3339_millis(o.created_at),
            updated_at: format_rfc3339_millis(o.updated_at),
        }
    }
}

/// A fill as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FillView {
    pub trade_id: TradeId,
    pub price: Decimal,
    pub quantity: Decimal,
    pub liquidity: Liquidity,
    pub fee: Decimal,
    pub fee_asset: String,
    pub at: String,
}

impl FillView {
    pub fn new(f: &Fill, at: Timestamp) -> Self {
        FillView {
            trade_id: f.trade_id,
            price: f.price,
            quantity: f.quantity,
            liquidity: f.liquidity,
            fee: f.fee,
            fee_asset: f.quote.0.clone(),
            at: format_rfc3339_millis(at),
        }
    }
}

/// The data of an `orders` channel message: `{"order":...}` or `{"fill":...,"order":...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fill: Option<FillView>,
    pub order: OrderView,
}

#[cfg(test)]
mod tests {
    use super::*;
    use oms_domain::ids::AccountId;
    use oms_domain::instrument::default_instruments;
    use oms_domain::order::NewOrder;

    #[test]
    fn order_view_matches_the_contract() {
        let n = NewOrder {
            order_id: OrderId(42),
            client_order_id: Some("abc".into()),
            account: AccountId(1),
            symbol: Symbol::new("BTC/USD"),
            side: Side::Buy,
            order_type: OrderType::Limit,
            time_in_force: TimeInForce::Gtc,
            post_only: false,
            price: Some(Decimal::from(45_000)),
            stop_price: None,
            quantity: "0.1".parse().unwrap(),
            expire_at: None,
            created_at: Timestamp(1_764_057_600_000),
        };
        let inst = &default_instruments()[0];
        let v = serde_json::to_value(OrderView::new(&Order::from_new(&n), Some(inst))).unwrap();
        assert_eq!(v["orderId"], "42");
        assert_eq!(v["accountId"], 1);
        assert_eq!(v["price"], "45000.00");
        assert_eq!(v["quantity"], "0.10000");
        assert_eq!(v["filledQuantity"], "0");
        assert_eq!(v["status"], "NEW");
        assert_eq!(v["orderType"], "LIMIT");
        assert_eq!(v["timeInForce"], "GTC");
        assert_eq!(v["stopPrice"], serde_json::Value::Null);
        assert_eq!(v["rejectReason"], serde_json::Value::Null);
        assert_eq!(v["createdAt"], "2025-11-25T08:00:00.000Z");
    }
}
