//! The JSON shapes of the HTTP contract. Decimals are strings, order ids are strings, times
//! are RFC 3339 UTC with milliseconds.

use crate::ingestion::clock::format_rfc3339_millis;
use oms_domain::events::{CancelReason, Fill};
use oms_domain::instrument::Instrument;
use oms_domain::order::{Liquidity, Order, OrderStatus, OrderType, Side, TimeInForce};
use oms_domain::Decimal;
use oms_ports::order_store::Balance;
use serde::Serialize;

/// `value` written with `scale` decimals ("45000.00" for a 0.01 tick), zero as "0". A value
/// with more decimals than `scale` keeps them: formatting never rounds.
pub fn fmt_scaled(value: Decimal, scale: Option<u32>) -> String {
    if value.is_zero() {
        return "0".to_string();
    }
    let normal = value.normalize();
    match scale {
        Some(s) if normal.scale() <= s => {
            let mut v = normal;
            v.rescale(s);
            v.to_string()
        }
        _ => normal.to_string(),
    }
}

/// Plain normalised text: "0.01", "1000".
pub fn fmt_plain(value: Decimal) -> String {
    value.normalize().to_string()
}

fn scale_of(unit: Decimal) -> u32 {
    unit.normalize().scale()
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct OrderView {
    pub order_id: String,
    pub client_order_id: Option<String>,
    pub account_id: u64,
    pub symbol: String,
    pub side: Side,
    pub order_type: OrderType,
    pub time_in_force: TimeInForce,
    pub post_only: bool,
    pub price: Option<String>,
    pub stop_price: Option<String>,
    pub quantity: String,
    pub filled_quantity: String,
    /// Exact, unlike the average it is the quotient of: the sum of price × quantity over the
    /// fills, in the quote asset (what reconciliation adds up).
    pub executed_notional: String,
    pub average_fill_price: Option<String>,
    pub fees: String,
    pub status: OrderStatus,
    pub reject_reason: Option<&'static str>,
    pub cancel_reason: Option<CancelReason>,
    pub expire_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// What became of the newest amend decided so far (`null` before any).
    pub last_amend: Option<LastAmendView>,
    /// The newest refusal of a cancel (`null` while none was refused).
    pub last_cancel_reject: Option<CancelRejectView>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CancelRejectView {
    pub reject_reason: &'static str,
    pub at: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct LastAmendView {
    /// The `amendId` the `PATCH` was answered with.
    pub amend_id: String,
    pub status: &'static str,
    pub reject_reason: Option<&'static str>,
}

impl OrderView {
    /// `instrument` gives the price and quantity scales; without it values print as they are.
    pub fn new(o: &Order, instrument: Option<&Instrument>) -> Self {
        let tick = instrument.map(|i| scale_of(i.tick_size));
        let step = instrument.map(|i| scale_of(i.step_size));
        OrderView {
            order_id: o.order_id.to_string(),
            client_order_id: o.client_order_id.clone(),
            account_id: o.account.0,
            symbol: o.symbol.0.clone(),
            side: o.side,
            order_type: o.order_type,
            time_in_force: o.time_in_force,
            post_only: o.post_only,
            price: o.price.map(|p| fmt_scaled(p, tick)),
            stop_price: o.stop_price.map(|p| fmt_scaled(p, tick)),
            quantity: fmt_scaled(o.quantity, step),
            filled_quantity: fmt_scaled(o.filled_quantity, step),
            executed_notional: fmt_plain(o.executed_notional),
            average_fill_price: o.average_fill_price.map(|p| fmt_scaled(p, tick)),
            fees: fmt_plain(o.fees),
            status: o.status,
            reject_reason: o.reject_reason.map(|r| r.code()),
            cancel_reason: o.cancel_reason,
            expire_at: o.expire_at.map(format_rfc3339_millis),
            created_at: format_rfc3339_millis(o.created_at),
            updated_at: format_rfc3339_millis(o.updated_at),
            last_amend: o.last_amend.as_ref().map(|a| LastAmendView {
                amend_id: a.amend_id.to_string(),
                status: a.status.as_str(),
                reject_reason: a.reject_reason.map(|r| r.code()),
            }),
            last_cancel_reject: o.last_cancel_reject.map(|r| CancelRejectView {
                reject_reason: r.reason.code(),
                at: format_rfc3339_millis(r.at),
            }),
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct FillView {
    pub trade_id: u64,
    pub price: String,
    pub quantity: String,
    pub liquidity: Liquidity,
    pub fee: String,
    pub fee_asset: String,
    /// When the trade happened; null only for fills recorded before fills carried their time.
    pub at: Option<String>,
}

impl FillView {
    pub fn new(f: &Fill, instrument: Option<&Instrument>) -> Self {
        let tick = instrument.map(|i| scale_of(i.tick_size));
        FillView {
            trade_id: f.trade_id.0,
            price: fmt_scaled(f.price, tick),
            quantity: fmt_plain(f.quantity),
            liquidity: f.liquidity,
            fee: fmt_plain(f.fee),
            fee_asset: f.quote.0.clone(),
            at: f.at.map(format_rfc3339_millis),
        }
    }
}

/// A fill in the account's trade history: the order's fill, with the order it belongs to.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AccountFillView {
    pub order_id: String,
    pub symbol: String,
    pub side: Side,
    #[serde(flatten)]
    pub fill: FillView,
}

impl AccountFillView {
    pub fn new(f: &Fill, instrument: Option<&Instrument>) -> Self {
        AccountFillView {
            order_id: f.order_id.to_string(),
            symbol: f.symbol.0.clone(),
            side: f.side,
            fill: FillView::new(f, instrument),
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct BalanceView {
    pub asset: String,
    pub available: String,
    pub reserved: String,
    pub total: String,
}

impl From<&Balance> for BalanceView {
    fn from(b: &Balance) -> Self {
        BalanceView {
            asset: b.asset.0.clone(),
            available: fmt_plain(b.available),
            reserved: fmt_plain(b.reserved),
            total: fmt_plain(b.available + b.reserved),
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct InstrumentView {
    pub symbol: String,
    pub base: String,
    pub quote: String,
    pub tick_size: String,
    pub step_size: String,
    pub min_quantity: String,
    pub max_quantity: String,
    pub min_notional: String,
    pub status: oms_domain::instrument::TradingStatus,
    pub maker_fee: String,
    pub taker_fee: String,
    pub price_band: String,
}

impl From<&Instrument> for InstrumentView {
    fn from(i: &Instrument) -> Self {
        InstrumentView {
            symbol: i.symbol.0.clone(),
            base: i.base.0.clone(),
            quote: i.quote.0.clone(),
            tick_size: fmt_plain(i.tick_size),
            step_size: fmt_plain(i.step_size),
            min_quantity: fmt_plain(i.min_quantity),
            max_quantity: fmt_plain(i.max_quantity),
            min_notional: fmt_plain(i.min_notional),
            status: i.status,
            maker_fee: fmt_plain(i.maker_fee),
            taker_fee: fmt_plain(i.taker_fee),
            price_band: fmt_plain(i.price_band),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oms_domain::ids::{AccountId, OrderId, Symbol, Timestamp};
    use oms_domain::instrument::default_instruments;
    use oms_domain::order::{AmendStatus, CancelReject, LastAmend, NewOrder, RejectReason};
    use serde_json::json;
    use std::str::FromStr;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn scaled_formatting_never_rounds() {
        assert_eq!(fmt_scaled(dec("45000"), Some(2)), "45000.00");
        assert_eq!(fmt_scaled(dec("0.1"), Some(5)), "0.10000");
        assert_eq!(fmt_scaled(dec("0.123"), Some(2)), "0.123");
        assert_eq!(fmt_scaled(dec("0.000"), Some(5)), "0");
        assert_eq!(fmt_plain(dec("1000.000")), "1000");
    }

    /// A BTC/USD limit buy as `POST /api/orders` would place it.
    fn btc_buy(price: &str, quantity: &str) -> NewOrder {
        NewOrder {
            order_id: OrderId(123),
            client_order_id: Some("abc".into()),
            account: AccountId(1),
            symbol: Symbol::new("BTC/USD"),
            side: Side::Buy,
            order_type: OrderType::Limit,
            time_in_force: TimeInForce::Gtc,
            post_only: false,
            price: Some(dec(price)),
            stop_price: None,
            quantity: dec(quantity),
            expire_at: None,
            created_at: Timestamp(1_764_057_600_000),
        }
    }

    #[test]
    fn order_matches_the_contract() {
        let btc = &default_instruments()[0];
        let n = btc_buy("45000", "0.1");
        let v = serde_json::to_value(OrderView::new(&Order::from_new(&n), Some(btc))).unwrap();
        assert_eq!(
            v,
            json!({"orderId":"123","clientOrderId":"abc","accountId":1,"symbol":"BTC/USD","side":"BUY",
                "orderType":"LIMIT","timeInForce":"GTC","postOnly":false,"price":"45000.00","stopPrice":null,
                "quantity":"0.10000","filledQuantity":"0","executedNotional":"0","averageFillPrice":null,"fees":"0","status":"NEW",
                "rejectReason":null,"cancelReason":null,"expireAt":null,"createdAt":"2025-11-25T08:00:00.000Z",
                "updatedAt":"2025-11-25T08:00:00.000Z","lastAmend":null,"lastCancelReject":null})
        );
        let mut refused = Order::from_new(&n);
        refused.last_amend = Some(LastAmend {
            amend_id: 77,
            status: AmendStatus::Rejected,
            reject_reason: Some(RejectReason::NotionalAboveMax),
        });
        refused.last_cancel_reject = Some(CancelReject {
            reason: RejectReason::InstrumentHalted,
            at: Timestamp(1_764_057_601_000),
        });
        let v = serde_json::to_value(OrderView::new(&refused, Some(btc))).unwrap();
        assert_eq!(
            v["lastAmend"],
            json!({"amendId":"77","status":"REJECTED","rejectReason":"NOTIONAL_ABOVE_MAX"})
        );
        assert_eq!(
            v["lastCancelReject"],
            json!({"rejectReason":"INSTRUMENT_HALTED","at":"2025-11-25T08:00:01.000Z"})
        );
    }

    #[test]
    fn the_executed_notional_is_exact_where_the_average_cannot_be() {
        let btc = &default_instruments()[0];
        // 0.1 at 45000.00 and 0.2 at 45000.01 (the state machine's sums and quotient).
        let mut o = Order::from_new(&btc_buy("45000.02", "0.3"));
        o.filled_quantity = dec("0.3");
        o.executed_notional = dec("4500.000") + dec("9000.002");
        o.average_fill_price = Some(o.executed_notional / o.filled_quantity);
        let v = serde_json::to_value(OrderView::new(&o, Some(btc))).unwrap();
        assert_eq!(v["executedNotional"], "13500.002");
        // 45000.00666…: cut off at 28 digits.
        assert!(v["averageFillPrice"]
            .as_str()
            .unwrap()
            .starts_with("45000.00666666666666666666"));
    }

    #[test]
    fn instrument_matches_the_contract() {
        let v = serde_json::to_value(InstrumentView::from(&default_instruments()[0])).unwrap();
        assert_eq!(
            v,
            json!({"symbol":"BTC/USD","base":"BTC","quote":"USD","tickSize":"0.01","stepSize":"0.00001",
                "minQuantity":"0.00001","maxQuantity":"1000","minNotional":"1","status":"TRADING",
                "makerFee":"0.001","takerFee":"0.002","priceBand":"0.1"})
        );
    }
}
