//! The trading core of crypto-oms.
//!
//! Everything here is plain, deterministic Rust: no I/O, no async and no clock of its own.
//! Time and ids come in as values, so folding the same events always gives the same state.

pub mod events;
pub mod ids;
pub mod instrument;
pub mod ledger;
pub mod marketdata;
pub mod order;
pub mod risk;
pub mod state_machine;
pub mod tagged;
pub mod venue;

pub use rust_decimal::Decimal;
