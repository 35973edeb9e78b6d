//! Every state change in crypto-oms is one of these events.
//!
//! Order-lifecycle events travel on topic `orders`, keyed by account; public market events on
//! topic `marketdata`, keyed by symbol. Each carries a deterministic id (the same fact always has
//! the same id), so a consumer that sees a record twice can drop the second copy.

use crate::ids::{AccountId, Asset, EventId, OrderId, Symbol, Timestamp, TradeId};
use crate::instrument::TradingStatus;
use crate::order::{Liquidity, NewOrder, OrderStatus, RejectReason, Side};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Bumped when an event's shape changes incompatibly; readers reject versions they do not know.
pub const SCHEMA_VERSION: u16 = 1;

/// An event with its id, schema version and time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    pub id: EventId,
    pub version: u16,
    pub at: Timestamp,
    pub event: Event,
}

impl Envelope {
    pub fn new(at: Timestamp, event: Event) -> Self {
        Envelope {
            id: event.id(),
            version: SCHEMA_VERSION,
            at,
            event,
        }
    }
}

/// Funds set aside for a live order. A BUY reserves quote at `per_unit` per unit of base
/// (limit price, or the band's worst price for a market order, plus the maximum fee);
/// a SELL reserves base at 1 per unit. Each fill releases exactly `quantity × per_unit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reservation {
    pub asset: Asset,
    pub amount: Decimal,
    pub per_unit: Decimal,
    /// A BUY's: the fee rate (of the notional) its `per_unit` covers, the largest the
    /// instrument charged when risk approved it. The venue charges the order no more, so a
    /// fee raised while it rests cannot take more than it set aside. `None` for a SELL, whose
    /// fee comes out of its proceeds, and in events from before this field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fee_rate: Option<Decimal>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CancelReason {
    UserRequested,
    SelfTradePrevention,
    KillSwitch,
    InstrumentHalted,
    /// The account's dead man's switch fired (`PUT /api/accounts/me/cancel-after`).
    CancelAfter,
    /// An operator cancelled the account's orders (`DELETE /api/admin/accounts/{id}/orders`).
    OperatorRequested,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExpireReason {
    /// Good-till-date order reached its expiry time.
    GtdExpired,
    /// The unfilled rest of an IOC order.
    IocRemainder,
    /// The unfilled rest of a market order (book empty or protection band reached).
    MarketRemainder,
    /// A fill-or-kill order that could not fill in full.
    FokNotFillable,
}

/// One fill of one order: the execution report a venue sends per side of a trade.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fill {
    pub account: AccountId,
    pub order_id: OrderId,
    pub symbol: Symbol,
    pub side: Side,
    pub trade_id: TradeId,
    pub price: Decimal,
    pub quantity: Decimal,
    pub liquidity: Liquidity,
    /// Fee in the quote asset.
    pub fee: Decimal,
    pub base: Asset,
    pub quote: Asset,
    /// The order's cumulative filled quantity after this fill.
    pub cumulative_quantity: Decimal,
    /// What is left of the order after this fill (0 when filled).
    pub leaves_quantity: Decimal,
    /// The account the fee is credited to.
    pub fee_account: AccountId,
    /// When the trade happened (the venue's clock). `None` only in fills recorded before fills
    /// carried their time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Timestamp>,
}

crate::tagged::internally_tagged_enum! {
    tag = "type", remote = "Event";
    /// On the wire: `{"type": "OrderFilled", ...fields}`, the tag first; decoded by
    /// [`crate::tagged`].
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Event {
        // ---- order lifecycle: topic `orders`, keyed by account ----
        /// Funds credited to an account (by `oms accounts deposit`).
        Deposit {
            account: AccountId,
            asset: Asset,
            amount: Decimal,
            reference: String,
        },
        OrderCreated(NewOrder),
        /// An operator's request to pay `amount` of `asset` out of the account
        /// (`POST /api/admin/accounts/{id}/withdrawals`). The risk engine decides it where it
        /// lands in the account's partition, against what is available there: funds held by
        /// live orders cannot leave. `reference` names it: one decision per account and
        /// reference, ever.
        WithdrawalRequested {
            account: AccountId,
            asset: Asset,
            amount: Decimal,
            reference: String,
        },
        /// The risk engine's decision on a withdrawal; approved, the amount leaves the
        /// account's available balance.
        WithdrawalDecided {
            account: AccountId,
            asset: Asset,
            amount: Decimal,
            reference: String,
            approved: bool,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            reason: Option<RejectReason>,
        },
        /// The account's own kill switch: while on, risk refuses its new orders and amends
        /// (cancels still pass). Ordered in the account's partition, so it applies to every
        /// order placed after it. `change` is unique per request, so each switch is an event.
        KillSwitchSet {
            account: AccountId,
            on: bool,
            change: u64,
        },
        /// The global kill switch, set by an operator: while on, risk refuses every account's
        /// new orders and amends (`GLOBAL_KILL_SWITCH`; cancels still pass). One copy goes to
        /// each partition of `orders` (`partition` names it), so each partition's risk engine
        /// applies it to the orders placed behind it there; the copies share `change`.
        GlobalKillSwitchSet {
            on: bool,
            change: u64,
            partition: u32,
        },
        /// An operator set an instrument's trading status (`HALTED`, `CANCEL_ONLY`, or back to
        /// `TRADING`); it stays in force, over the configured status, until the next one. As
        /// with the global kill switch, a copy goes to each partition of `orders` (`partition`
        /// names it) so each partition's risk engine applies it to the orders behind it, and
        /// the copies share `change`, which orders two operators' settings. Risk passes it on
        /// to the symbol's book at the venue.
        InstrumentStatusSet {
            symbol: Symbol,
            status: TradingStatus,
            change: u64,
            partition: u32,
        },
        /// The account's dead man's switch: unless another `CancelAfterSet` follows by
        /// `deadline`, every order of the account live then is cancelled. `deadline: None`
        /// turns it off. `change` is unique per request, so each setting is an event.
        CancelAfterSet {
            account: AccountId,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            deadline: Option<Timestamp>,
            change: u64,
        },
        /// Written by the risk stage once the deadline of the `CancelAfterSet` with this
        /// `change` has passed. Where it lands in the partition decides: if that setting is
        /// still the account's newest there, risk asks to cancel every live order of the
        /// account (one `CancelRequested` each); after a newer setting it does nothing.
        CancelAfterTriggered { account: AccountId, change: u64 },
        CancelRequested {
            account: AccountId,
            order_id: OrderId,
            /// Why, when not the client's own request (absent: `USER_REQUESTED`).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            reason: Option<CancelReason>,
        },
        AmendRequested {
            account: AccountId,
            order_id: OrderId,
            amend_id: u64,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            price: Option<Decimal>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            quantity: Option<Decimal>,
        },
        /// The risk engine's decision on an order.
        RiskValidated {
            account: AccountId,
            order_id: OrderId,
            symbol: Symbol,
            approved: bool,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            reason: Option<RejectReason>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            reservation: Option<Reservation>,
            /// For an approved MARKET order: the worst price it may fill at (what was reserved for).
            /// Recorded so the venue command can be rebuilt from the log after a crash.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            protection_price: Option<Decimal>,
        },
        /// The risk engine's decision on an amend. When approved, `reservation` is what the order
        /// will need at its new price and quantity; any increase is held until the venue answers.
        AmendValidated {
            account: AccountId,
            order_id: OrderId,
            amend_id: u64,
            approved: bool,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            reason: Option<RejectReason>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            reservation: Option<Reservation>,
        },
        /// The venue took the order: it rests, waits for its stop, or is about to match.
        OrderAccepted {
            account: AccountId,
            order_id: OrderId,
            symbol: Symbol,
        },
        OrderFilled(Fill),
        OrderAmended {
            account: AccountId,
            order_id: OrderId,
            amend_id: u64,
            price: Decimal,
            quantity: Decimal,
            leaves_quantity: Decimal,
            /// False when the amend moved the order to the back of its price level.
            kept_priority: bool,
        },
        AmendRejected {
            account: AccountId,
            order_id: OrderId,
            amend_id: u64,
            reason: RejectReason,
        },
        OrderCanceled {
            account: AccountId,
            order_id: OrderId,
            reason: CancelReason,
            leaves_quantity: Decimal,
        },
        OrderExpired {
            account: AccountId,
            order_id: OrderId,
            reason: ExpireReason,
            leaves_quantity: Decimal,
        },
        /// The venue refused the order (post-only would take, halted, ...).
        OrderRejected {
            account: AccountId,
            order_id: OrderId,
            reason: RejectReason,
        },
        CancelRejected {
            account: AccountId,
            order_id: OrderId,
            reason: RejectReason,
        },

        // ---- public market events: topic `marketdata`, keyed by symbol ----
        Trade {
            symbol: Symbol,
            trade_id: TradeId,
            price: Decimal,
            quantity: Decimal,
            taker_side: Side,
            at: Timestamp,
        },
        /// One price level's new total; quantity 0 removes the level. `seq` increases by one per
        /// change within a symbol, so a client applying a snapshot then the changes sees any gap.
        BookChanged {
            symbol: Symbol,
            seq: u64,
            side: Side,
            price: Decimal,
            quantity: Decimal,
        },
        /// The trading status in force at a symbol's book, published by the venue when an
        /// operator's setting (`SetStatus`) or the configuration (`Configure`, appended at each
        /// start of the venue's stage) reaches the book, so that market data clients learn of
        /// a halt without polling. `change` names the operator's setting in force; absent, the
        /// configured status is. The same status can come again (each start publishes it).
        TradingStatusChanged {
            symbol: Symbol,
            status: TradingStatus,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            change: Option<u64>,
            at: Timestamp,
        },
    }
}

impl Event {
    /// The deterministic id of this event.
    pub fn id(&self) -> EventId {
        let s = match self {
            Event::Deposit {
                account, reference, ..
            } => format!("dep:{account}:{reference}"),
            Event::OrderCreated(o) => format!("o:{}:created", o.order_id),
            Event::WithdrawalRequested {
                account, reference, ..
            } => format!("wd:{account}:{reference}"),
            Event::WithdrawalDecided {
                account, reference, ..
            } => format!("wd:{account}:{reference}:risk"),
            Event::KillSwitchSet {
                account, change, ..
            } => format!("a:{account}:kill-switch:{change}"),
            Event::GlobalKillSwitchSet {
                change, partition, ..
            } => format!("g:kill-switch:{change}:{partition}"),
            Event::InstrumentStatusSet {
                symbol,
                change,
                partition,
                ..
            } => format!("i:{symbol}:status:{change}:{partition}"),
            Event::CancelAfterSet {
                account, change, ..
            } => format!("a:{account}:cancel-after:{change}"),
            Event::CancelAfterTriggered { account, change } => {
                format!("a:{account}:cancel-after-triggered:{change}")
            }
            Event::CancelRequested { order_id, .. } => format!("o:{order_id}:cancel-req"),
            Event::AmendRequested {
                order_id, amend_id, ..
            } => {
                format!("o:{order_id}:amend-req:{amend_id}")
            }
            Event::RiskValidated { order_id, .. } => format!("o:{order_id}:risk"),
            Event::AmendValidated {
                order_id, amend_id, ..
            } => {
                format!("o:{order_id}:amend-risk:{amend_id}")
            }
            Event::OrderAccepted { order_id, .. } => format!("o:{order_id}:accepted"),
            Event::OrderFilled(f) => format!("o:{}:fill:{}", f.order_id, f.trade_id),
            Event::OrderAmended {
                order_id, amend_id, ..
            } => {
                format!("o:{order_id}:amended:{amend_id}")
            }
            Event::AmendRejected {
                order_id, amend_id, ..
            } => {
                format!("o:{order_id}:amend-rejected:{amend_id}")
            }
            Event::OrderCanceled { order_id, .. } => format!("o:{order_id}:canceled"),
            Event::OrderExpired { order_id, .. } => format!("o:{order_id}:expired"),
            Event::OrderRejected { order_id, .. } => format!("o:{order_id}:rejected"),
            Event::CancelRejected { order_id, .. } => format!("o:{order_id}:cancel-rejected"),
            Event::Trade {
                symbol, trade_id, ..
            } => format!("t:{symbol}:{trade_id}"),
            Event::BookChanged { symbol, seq, .. } => format!("b:{symbol}:{seq}"),
            // The time tells apart the same status published again later.
            Event::TradingStatusChanged {
                symbol,
                status,
                change,
                at,
            } => match change {
                Some(c) => format!("s:{symbol}:{}:{c}:{}", status.as_str(), at.0),
                None => format!("s:{symbol}:{}:configured:{}", status.as_str(), at.0),
            },
        };
        EventId(s)
    }

    /// Whether an order's update for this event tells its owner anything: risk's approval
    /// does not (the order stays `NEW` until the venue answers), so it is not sent.
    pub fn shown_to_owner(&self) -> bool {
        !matches!(self, Event::RiskValidated { approved: true, .. })
    }

    /// The account whose partition an order-lifecycle event belongs to.
    pub fn account(&self) -> Option<AccountId> {
        match self {
            Event::Deposit { account, .. }
            | Event::WithdrawalRequested { account, .. }
            | Event::WithdrawalDecided { account, .. }
            | Event::KillSwitchSet { account, .. }
            | Event::CancelAfterSet { account, .. }
            | Event::CancelAfterTriggered { account, .. }
            | Event::CancelRequested { account, .. }
            | Event::AmendRequested { account, .. }
            | Event::RiskValidated { account, .. }
            | Event::AmendValidated { account, .. }
            | Event::OrderAccepted { account, .. }
            | Event::OrderAmended { account, .. }
            | Event::AmendRejected { account, .. }
            | Event::OrderCanceled { account, .. }
            | Event::OrderExpired { account, .. }
            | Event::OrderRejected { account, .. }
            | Event::CancelRejected { account, .. } => Some(*account),
            Event::OrderCreated(o) => Some(o.account),
            Event::OrderFilled(f) => Some(f.account),
            Event::GlobalKillSwitchSet { .. }
            | Event::InstrumentStatusSet { .. }
            | Event::Trade { .. }
            | Event::BookChanged { .. }
            | Event::TradingStatusChanged { .. } => None,
        }
    }

    /// The order an order-lifecycle event is about.
    pub fn order_id(&self) -> Option<OrderId> {
        match self {
            Event::CancelRequested { order_id, .. }
            | Event::AmendRequested { order_id, .. }
            | Event::RiskValidated { order_id, .. }
            | Event::AmendValidated { order_id, .. }
            | Event::OrderAccepted { order_id, .. }
            | Event::OrderAmended { order_id, .. }
            | Event::AmendRejected { order_id, .. }
            | Event::OrderCanceled { order_id, .. }
            | Event::OrderExpired { order_id, .. }
            | Event::OrderRejected { order_id, .. }
            | Event::CancelRejected { order_id, .. } => Some(*order_id),
            Event::OrderCreated(o) => Some(o.order_id),
            Event::OrderFilled(f) => Some(f.order_id),
            Event::Deposit { .. }
            | Event::WithdrawalRequested { .. }
            | Event::WithdrawalDecided { .. }
            | Event::KillSwitchSet { .. }
            | Event::GlobalKillSwitchSet { .. }
            | Event::InstrumentStatusSet { .. }
            | Event::CancelAfterSet { .. }
            | Event::CancelAfterTriggered { .. }
            | Event::Trade { .. }
            | Event::BookChanged { .. }
            | Event::TradingStatusChanged { .. } => None,
        }
    }

    /// The type name, as carried in record headers.
    pub fn type_name(&self) -> &'static str {
        match self {
            Event::Deposit { .. } => "Deposit",
            Event::OrderCreated(_) => "OrderCreated",
            Event::WithdrawalRequested { .. } => "WithdrawalRequested",
            Event::WithdrawalDecided { .. } => "WithdrawalDecided",
            Event::KillSwitchSet { .. } => "KillSwitchSet",
            Event::GlobalKillSwitchSet { .. } => "GlobalKillSwitchSet",
            Event::InstrumentStatusSet { .. } => "InstrumentStatusSet",
            Event::CancelAfterSet { .. } => "CancelAfterSet",
            Event::CancelAfterTriggered { .. } => "CancelAfterTriggered",
            Event::CancelRequested { .. } => "CancelRequested",
            Event::AmendRequested { .. } => "AmendRequested",
            Event::RiskValidated { .. } => "RiskValidated",
            Event::AmendValidated { .. } => "AmendValidated",
            Event::OrderAccepted { .. } => "OrderAccepted",
            Event::OrderFilled(_) => "OrderFilled",
            Event::OrderAmended { .. } => "OrderAmended",
            Event::AmendRejected { .. } => "AmendRejected",
            Event::OrderCanceled { .. } => "OrderCanceled",
            Event::OrderExpired { .. } => "OrderExpired",
            Event::OrderRejected { .. } => "OrderRejected",
            Event::CancelRejected { .. } => "CancelRejected",
            Event::Trade { .. } => "Trade",
            Event::BookChanged { .. } => "BookChanged",
            Event::TradingStatusChanged { .. } => "TradingStatusChanged",
        }
    }

    /// The status an order reaches through this event, where the event implies one.
    pub fn implied_status(&self) -> Option<OrderStatus> {
        match self {
            Event::OrderCreated(_) => Some(OrderStatus::New),
            Event::RiskValidated {
                approved: false, ..
            } => Some(OrderStatus::Rejected),
            Event::OrderAccepted { .. } => Some(OrderStatus::Accepted),
            Event::OrderFilled(f) if f.leaves_quantity.is_zero() => Some(OrderStatus::Filled),
            Event::OrderFilled(_) => Some(OrderStatus::PartiallyFilled),
            Event::OrderCanceled { .. } => Some(OrderStatus::Canceled),
            Event::OrderExpired { .. } => Some(OrderStatus::Expired),
            Event::OrderRejected { .. } => Some(OrderStatus::Rejected),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::order::{OrderType, TimeInForce};

    #[test]
    fn envelope_round_trips_with_type_tag_and_version() {
        let e = Envelope::new(
            Timestamp(5),
            Event::OrderCreated(NewOrder {
                order_id: OrderId(u64::MAX),
                client_order_id: Some("c1".into()),
                account: AccountId(7),
                symbol: Symbol::new("BTC/USD"),
                side: Side::Buy,
                order_type: OrderType::Limit,
                time_in_force: TimeInForce::Gtc,
                post_only: false,
                price: Some(Decimal::new(4500000, 2)),
                stop_price: None,
                quantity: Decimal::new(1, 1),
                expire_at: None,
                created_at: Timestamp(5),
            }),
        );
        let json = serde_json::to_string(&e).unwrap();
        assert!(json.contains(r#""type":"OrderCreated""#), "{json}");
        assert!(
            json.contains(r#""orderId":"18446744073709551615""#),
            "{json}"
        );
        assert!(json.contains(r#""price":"45000.00""#), "{json}");
        assert!(json.contains(r#""version":1"#), "{json}");
        let back: Envelope = serde_json::from_str(&json).unwrap();
        assert_eq!(back, e);
        assert_eq!(back.id.0, format!("o:{}:created", u64::MAX));
    }
}
