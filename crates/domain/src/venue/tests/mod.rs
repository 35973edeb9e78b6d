//! Unit tests of the venue, through its public command interface.

mod cancel_amend;
mod lifecycle;
mod orders;
mod stops;
mod stp;

use super::{Source, Venue, VenueCommand};
use crate::events::{Event, Fill};
use crate::ids::{AccountId, OrderId, Symbol, Timestamp};
use crate::instrument::{Instrument, SelfTradePrevention};
use crate::order::{NewOrder, OrderType, Side, TimeInForce};
use rust_decimal::Decimal;

pub const FEES: AccountId = AccountId(999);

pub fn d(s: &str) -> Decimal {
    s.parse().expect("a decimal literal")
}

pub fn btc() -> Symbol {
    Symbol::new("BTC/USD")
}

/// Tick 0.5 and step 0.01, so every price and quantity goes through a real scaling.
pub fn instruments(stp: SelfTradePrevention) -> Vec<Instrument> {
    let mut btc = Instrument::spot("BTC/USD", d("0.5"), d("0.01"));
    btc.self_trade_prevention = stp;
    let mut eth = Instrument::spot("ETH/USD", d("0.01"), d("0.001"));
    eth.self_trade_prevention = stp;
    vec![btc, eth]
}

/// A venue driven the way the services drive it: every command from partition 0 with a
/// growing offset.
pub struct Harness {
    pub venue: Venue,
    pub offset: u64,
    pub now: i64,
}

impl Harness {
    pub fn new() -> Self {
        Harness::with_stp(SelfTradePrevention::CancelResting)
    }

    pub fn with_stp(stp: SelfTradePrevention) -> Self {
        Harness {
            venue: Venue::new(instruments(stp), FEES),
            offset: 0,
            now: 1_000,
        }
    }

    fn source(&mut self) -> Source {
        self.offset += 1;
        Source {
            partition: 0,
            offset: self.offset,
        }
    }

    pub fn run(&mut self, cmd: VenueCommand) -> Vec<Event> {
        let mut out = Vec::new();
        self.venue.handle(Timestamp(self.now), &cmd, &mut out);
        out
    }

    pub fn submit(&mut self, order: NewOrder) -> Vec<Event> {
        let source = self.source();
        self.run(VenueCommand::Submit {
            source,
            order,
            protection_price: None,
            fee_rate_cap: None,
        })
    }

    pub fn market(&mut self, order: NewOrder, protection: Option<&str>) -> Vec<Event> {
        let source = self.source();
        self.run(VenueCommand::Submit {
            source,
            order,
            protection_price: protection.map(d),
            fee_rate_cap: None,
        })
    }

    pub fn limit(
        &mut self,
        id: u64,
        account: u64,
        side: Side,
        price: &str,
        qty: &str,
    ) -> Vec<Event> {
        self.submit(limit(id, account, side, price, qty))
    }

    pub fn cancel(&mut self, account: u64, id: u64) -> Vec<Event> {
        let source = self.source();
        self.run(VenueCommand::Cancel {
            source,
            symbol: btc(),
            account: AccountId(account),
            order_id: OrderId(id),
            reason: None,
        })
    }

    pub fn amend(
        &mut self,
        account: u64,
        id: u64,
        price: Option<&str>,
        qty: Option<&str>,
    ) -> Vec<Event> {
        let source = self.source();
        self.run(VenueCommand::Amend {
            source,
            symbol: btc(),
            account: AccountId(account),
            order_id: OrderId(id),
            amend_id: self.offset,
            price: price.map(d),
            quantity: qty.map(d),
            fee_rate_cap: None,
        })
    }

    pub fn tick(&mut self, now: i64) -> Vec<Event> {
        self.now = now;
        self.run(VenueCommand::Tick { symbol: btc() })
    }

    pub fn best(&self) -> (Option<Decimal>, Option<Decimal>) {
        self.venue.best_bid_ask(&btc())
    }
}

pub fn order(id: u64, account: u64, side: Side, order_type: OrderType, qty: &str) -> NewOrder {
    NewOrder {
        order_id: OrderId(id),
        client_order_id: None,
        account: AccountId(account),
        symbol: btc(),
        side,
        order_type,
        time_in_force: TimeInForce::Gtc,
        post_only: false,
        price: None,
        stop_price: None,
        quantity: d(qty),
        expire_at: None,
        created_at: Timestamp(1_000),
    }
}

pub fn limit(id: u64, account: u64, side: Side, price: &str, qty: &str) -> NewOrder {
    NewOrder {
        price: Some(d(price)),
        ..order(id, account, side, OrderType::Limit, qty)
    }
}

/// The event type names, for asserting sequences.
pub fn kinds(events: &[Event]) -> Vec<&'static str> {
    events.iter().map(|e| e.type_name()).collect()
}

pub fn fills(events: &[Event]) -> Vec<&Fill> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::OrderFilled(f) => Some(f),
            _ => None,
        })
        .collect()
}

/// (order id, quantity) of each fill, in order.
pub fn fill_summary(events: &[Event]) -> Vec<(u64, Decimal)> {
    fills(events)
        .iter()
        .map(|f| (f.order_id.0, f.quantity))
        .collect()
}

/// (side, price, quantity) of each book change, in order.
pub fn book_changes(events: &[Event]) -> Vec<(Side, Decimal, Decimal)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::BookChanged {
                side,
                price,
                quantity,
                ..
            } => Some((*side, *price, *quantity)),
            _ => None,
        })
        .collect()
}
