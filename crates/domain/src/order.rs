//! Orders: what a client asks for and what becomes of it.

use crate::events::CancelReason;
use crate::ids::{AccountId, OrderId, Symbol, Timestamp};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    pub fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderType {
    Limit,
    Market,
    /// A limit order that is parked until the last trade price reaches the stop price.
    StopLimit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TimeInForce {
    #[default]
    Gtc,
    Ioc,
    Fok,
    /// Good till date: expires at the order's `expire_at`.
    Gtd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    /// Received, awaiting risk and the venue.
    New,
    /// Live at the venue (resting, or a stop waiting for its trigger).
    Accepted,
    PartiallyFilled,
    Filled,
    Canceled,
    Expired,
    Rejected,
}

impl OrderStatus {
    pub fn is_final(self) -> bool {
        matches!(
            self,
            OrderStatus::Filled
                | OrderStatus::Canceled
                | OrderStatus::Expired
                | OrderStatus::Rejected
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::New => "NEW",
            OrderStatus::Accepted => "ACCEPTED",
            OrderStatus::PartiallyFilled => "PARTIALLY_FILLED",
            OrderStatus::Filled => "FILLED",
            OrderStatus::Canceled => "CANCELED",
            OrderStatus::Expired => "EXPIRED",
            OrderStatus::Rejected => "REJECTED",
        }
    }

    pub const ALL: [OrderStatus; 7] = [
        OrderStatus::New,
        OrderStatus::Accepted,
        OrderStatus::PartiallyFilled,
        OrderStatus::Filled,
        OrderStatus::Canceled,
        OrderStatus::Expired,
        OrderStatus::Rejected,
    ];
}

impl std::str::FromStr for OrderStatus {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        OrderStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or(())
    }
}

/// Why an order, cancel or amend was refused. Each check has its own stable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RejectReason {
    UnknownInstrument,
    InstrumentHalted,
    InstrumentCancelOnly,
    QuantityOffStep,
    QuantityBelowMin,
    QuantityAboveMax,
    PriceOffTick,
    PriceRequired,
    StopPriceRequired,
    NotionalBelowMin,
    NotionalAboveMax,
    PriceOutOfBand,
    NoReferencePrice,
    InsufficientBalance,
    TooManyOpenOrders,
    RateLimited,
    AccountKillSwitch,
    GlobalKillSwitch,
    UnknownAccount,
    /// Post-only order would have taken liquidity.
    PostOnlyWouldTake,
    /// Fill-or-kill order could not be filled in full at once.
    FokNotFillable,
    /// Market order found no liquidity inside the protection band.
    NoLiquidity,
    /// Self-trade prevention cancelled the incoming order.
    SelfTradePrevented,
    /// No longer decided (a second submit of a live order is now ignored as a copy); kept so
    /// that events written before still read.
    DuplicateOrder,
    UnknownOrder,
    OrderNotLive,
    ExpireAtInPast,
    /// The order already has an amend waiting on the venue; one amend at a time per order.
    AmendPending,
    /// The time in the order's id is further ahead of the risk engine's clock than clocks may
    /// disagree, or older than the engine remembers ended orders: ingestion's clock is off,
    /// or the order is a request resumed after its idempotency key should have expired.
    OrderTimeOutOfRange,
    /// An amend's quantity is not above what the order has filled already, so nothing would
    /// be left to trade.
    QuantityNotAboveFilled,
}

impl RejectReason {
    pub fn code(self) -> &'static str {
        match self {
            RejectReason::UnknownInstrument => "UNKNOWN_INSTRUMENT",
            RejectReason::InstrumentHalted => "INSTRUMENT_HALTED",
            RejectReason::InstrumentCancelOnly => "INSTRUMENT_CANCEL_ONLY",
            RejectReason::QuantityOffStep => "QUANTITY_OFF_STEP",
            RejectReason::QuantityBelowMin => "QUANTITY_BELOW_MIN",
            RejectReason::QuantityAboveMax => "QUANTITY_ABOVE_MAX",
            RejectReason::PriceOffTick => "PRICE_OFF_TICK",
            RejectReason::PriceRequired => "PRICE_REQUIRED",
            RejectReason::StopPriceRequired => "STOP_PRICE_REQUIRED",
            RejectReason::NotionalBelowMin => "NOTIONAL_BELOW_MIN",
            RejectReason::NotionalAboveMax => "NOTIONAL_ABOVE_MAX",
            RejectReason::PriceOutOfBand => "PRICE_OUT_OF_BAND",
            RejectReason::NoReferencePrice => "NO_REFERENCE_PRICE",
            RejectReason::InsufficientBalance => "INSUFFICIENT_BALANCE",
            RejectReason::TooManyOpenOrders => "TOO_MANY_OPEN_ORDERS",
            RejectReason::RateLimited => "RATE_LIMITED",
            RejectReason::AccountKillSwitch => "ACCOUNT_KILL_SWITCH",
            RejectReason::GlobalKillSwitch => "GLOBAL_KILL_SWITCH",
            RejectReason::UnknownAccount => "UNKNOWN_ACCOUNT",
            RejectReason::PostOnlyWouldTake => "POST_ONLY_WOULD_TAKE",
            RejectReason::FokNotFillable => "FOK_NOT_FILLABLE",
            RejectReason::NoLiquidity => "NO_LIQUIDITY",
            RejectReason::SelfTradePrevented => "SELF_TRADE_PREVENTED",
            RejectReason::DuplicateOrder => "DUPLICATE_ORDER",
            RejectReason::UnknownOrder => "UNKNOWN_ORDER",
            RejectReason::OrderNotLive => "ORDER_NOT_LIVE",
            RejectReason::ExpireAtInPast => "EXPIRE_AT_IN_PAST",
            RejectReason::AmendPending => "AMEND_PENDING",
            RejectReason::OrderTimeOutOfRange => "ORDER_TIME_OUT_OF_RANGE",
            RejectReason::QuantityNotAboveFilled => "QUANTITY_NOT_ABOVE_FILLED",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Liquidity {
    Maker,
    Taker,
}

/// A validated order request as ingestion accepted it: the payload of `OrderCreated`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewOrder {
    pub order_id: OrderId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_order_id: Option<String>,
    pub account: AccountId,
    pub symbol: Symbol,
    pub side: Side,
    pub order_type: OrderType,
    pub time_in_force: TimeInForce,
    #[serde(default)]
    pub post_only: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_price: Option<Decimal>,
    pub quantity: Decimal,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

/// An order as the read model keeps it: the fold of its events through the state machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    pub order_id: OrderId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_order_id: Option<String>,
    pub account: AccountId,
    pub symbol: Symbol,
    pub side: Side,
    pub order_type: OrderType,
    pub time_in_force: TimeInForce,
    pub post_only: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_price: Option<Decimal>,
    pub quantity: Decimal,
    pub filled_quantity: Decimal,
    /// Sum of price × quantity over fills, in quote; average price = this / filled quantity.
    pub executed_notional: Decimal,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub average_fill_price: Option<Decimal>,
    /// Fees paid, in the quote asset.
    pub fees: Decimal,
    pub status: OrderStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reject_reason: Option<RejectReason>,
    /// Why a cancelled order was cancelled (the venue's `OrderCanceled`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_reason: Option<CancelReason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// The last trade id applied, so a redelivered fill is recognised and dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_trade_id: Option<crate::ids::TradeId>,
    /// What became of the newest amend (`PATCH`) decided so far: an amend is answered `202`
    /// before risk and the venue decide it, and a refused one changes nothing else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_amend: Option<LastAmend>,
    /// The newest refusal of a cancel of this order: a `DELETE` is answered `202` before risk
    /// and the venue decide it, and one they refuse (the symbol halted, the order filled
    /// meanwhile) leaves the order as it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_cancel_reject: Option<CancelReject>,
}

/// Why a cancel of the order was refused, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CancelReject {
    pub reason: RejectReason,
    pub at: Timestamp,
}

/// The outcome of an order's newest decided amend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LastAmend {
    pub amend_id: u64,
    pub status: AmendStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reject_reason: Option<RejectReason>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AmendStatus {
    /// The venue changed the order's price and/or quantity.
    Applied,
    /// Risk or the venue refused it; the order is as it was.
    Rejected,
}

impl AmendStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AmendStatus::Applied => "APPLIED",
            AmendStatus::Rejected => "REJECTED",
        }
    }
}

impl Order {
    pub fn from_new(n: &NewOrder) -> Self {
        Order {
            order_id: n.order_id,
            client_order_id: n.client_order_id.clone(),
            account: n.account,
            symbol: n.symbol.clone(),
            side: n.side,
            order_type: n.order_type,
            time_in_force: n.time_in_force,
            post_only: n.post_only,
            price: n.price,
            stop_price: n.stop_price,
            quantity: n.quantity,
            filled_quantity: Decimal::ZERO,
            executed_notional: Decimal::ZERO,
            average_fill_price: None,
            fees: Decimal::ZERO,
            status: OrderStatus::New,
            reject_reason: None,
            cancel_reason: None,
            expire_at: n.expire_at,
            created_at: n.created_at,
            updated_at: n.created_at,
            last_trade_id: None,
            last_amend: None,
            last_cancel_reject: None,
        }
    }

    pub fn remaining(&self) -> Decimal {
        self.quantity - self.filled_quantity
    }
}
