//! The matching venue: one price-time-priority book per symbol.
//!
//! [`Venue`] takes [`VenueCommand`]s and answers with domain events. Inside, each symbol's
//! [`OrderBook`] matches in integer ticks and lots; [`Venue`] converts decimals at the
//! boundary, exactly, and refuses anything off the instrument's grid rather than rounding.

pub mod book;
pub mod command;
mod depth;
mod engine;
mod market;
pub mod units;

pub use book::{BookEvent, BookOrder, BookOrderKind, Execution, FillParty, OrderBook};
pub use command::{Source, VenueCommand};
pub use depth::{Depth, Level};
pub use engine::Venue;

#[cfg(test)]
mod tests;
