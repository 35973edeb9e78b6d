//! Commands to the venue: topic `venue`, keyed by symbol, so one book is matched by one thread.

use crate::ids::{AccountId, OrderId, Symbol};
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

/// On the wire: `{"type": "Submit", ...fields}`, the tag first; decoded by [`crate::tagged`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all_fields = "camelCase")]
pub enum VenueCommand {
    /// A risk-approved order. `protection_price` bounds a market order's fills (the worst price
    /// the risk engine reserved for): a BUY fills at or below it, a SELL at or above it.
    Submit {
        source: Source,
        order: NewOrder,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        protection_price: Option<Decimal>,
    },
    Cancel {
        source: Source,
        symbol: Symbol,
        account: AccountId,
        order_id: OrderId,
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
    },
    /// Time has passed: GTD orders with `expire_at <= now` expire. Ticks carry no source.
    Tick { symbol: Symbol },
}

impl<'de> Deserialize<'de> for VenueCommand {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::tagged::deserialize(d, "type")
    }
}

/// [`VenueCommand`]'s variants as serde decodes them: a remote derive, checked against the
/// enum by the compiler (see [`crate::events::wire`]). Keep the `serde` attributes as above.
mod wire {
    use super::*;

    #[derive(Serialize, Deserialize)]
    #[serde(remote = "VenueCommand", rename_all_fields = "camelCase")]
    enum CommandVariants {
        Submit {
            source: Source,
            order: NewOrder,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            protection_price: Option<Decimal>,
        },
        Cancel {
            source: Source,
            symbol: Symbol,
            account: AccountId,
            order_id: OrderId,
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
        },
        Tick {
            symbol: Symbol,
        },
    }

    impl<'de> crate::tagged::ExternallyTagged<'de> for VenueCommand {
        fn deserialize_external<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            CommandVariants::deserialize(d)
        }
    }
}

impl VenueCommand {
    pub fn symbol(&self) -> &Symbol {
        match self {
            VenueCommand::Submit { order, .. } => &order.symbol,
            VenueCommand::Cancel { symbol, .. }
            | VenueCommand::Amend { symbol, .. }
            | VenueCommand::Tick { symbol } => symbol,
        }
    }

    pub fn source(&self) -> Option<Source> {
        match self {
            VenueCommand::Submit { source, .. }
            | VenueCommand::Cancel { source, .. }
            | VenueCommand::Amend { source, .. } => Some(*source),
            VenueCommand::Tick { .. } => None,
        }
    }
}
