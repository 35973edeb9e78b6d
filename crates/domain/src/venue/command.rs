//! Commands to the venue: topic `venue`, keyed by symbol, so one book is matched by one thread.

use crate::events::CancelReason;
use crate::ids::{AccountId, OrderId, Symbol};
use crate::instrument::{Instrument, TradingStatus};
use crate::order::NewOrder;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Where a command came from: the partition and offset of the order-lifecycle event that caused
/// it. Offsets from one source partition only grow, so the venue drops a redelivered command by
/// remembering the last offset it took from each source partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Source {
    pub partition: u32,
    pub offset: u64,
}

crate::tagged::internally_tagged_enum! {
    tag = "type", remote = "VenueCommand";
    /// On the wire: `{"type": "Submit", ...fields}`, the tag first; decoded by [`crate::tagged`].
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum VenueCommand {
        /// A risk-approved order. `protection_price` bounds a market order's fills (the worst price
        /// the risk engine reserved for): a BUY fills at or below it, a SELL at or above it.
        Submit {
            source: Source,
            order: NewOrder,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            protection_price: Option<Decimal>,
            /// A BUY's fee rate as risk reserved for it ([`crate::events::Reservation`]): the
            /// venue charges its fills no higher rate, should the instrument's fees rise.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            fee_rate_cap: Option<Decimal>,
        },
        Cancel {
            source: Source,
            symbol: Symbol,
            account: AccountId,
            order_id: OrderId,
            /// Why, when not the client's own request (absent: `USER_REQUESTED`).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            reason: Option<CancelReason>,
        },
        Amend {
            source: Source,
            symbol: Symbol,
            account: AccountId,
            order_id: OrderId,
            amend_id: u64,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            price: Option<Decimal>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            quantity: Option<Decimal>,
            /// As for `Submit`: the fee rate of the hold risk approved the amend with.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            fee_rate_cap: Option<Decimal>,
        },
        /// Time has passed: GTD orders with `expire_at <= now` expire. Ticks carry no source.
        Tick { symbol: Symbol },
        /// An operator's trading status for the symbol (`InstrumentStatusSet`, passed on by
        /// risk from each partition of `orders`): the book keeps the one with the highest
        /// `change`, so the copies and two operators' settings end the same.
        SetStatus {
            source: Source,
            symbol: Symbol,
            status: TradingStatus,
            change: u64,
        },
        /// The instrument as configured where the venue stage took its partition: appended by
        /// the stage itself, so a changed fee, filter or configured status applies from here
        /// on and a replay meets it at the same point. Carries no source.
        Configure { instrument: Instrument },
    }
}

impl VenueCommand {
    pub fn symbol(&self) -> &Symbol {
        match self {
            VenueCommand::Submit { order, .. } => &order.symbol,
            VenueCommand::Cancel { symbol, .. }
            | VenueCommand::Amend { symbol, .. }
            | VenueCommand::SetStatus { symbol, .. }
            | VenueCommand::Tick { symbol } => symbol,
            VenueCommand::Configure { instrument } => &instrument.symbol,
        }
    }

    pub fn source(&self) -> Option<Source> {
        match self {
            VenueCommand::Submit { source, .. }
            | VenueCommand::Cancel { source, .. }
            | VenueCommand::Amend { source, .. }
            | VenueCommand::SetStatus { source, .. } => Some(*source),
            VenueCommand::Tick { .. } | VenueCommand::Configure { .. } => None,
        }
    }
}
