//! The matching venue: one price-time-priority book per symbol.

pub mod command;

pub use command::{Source, VenueCommand};
