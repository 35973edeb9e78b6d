//! The route handlers, one module per resource.

pub mod account;
pub mod admin;
pub mod cancel_all;
pub mod docs;
pub mod fills;
pub mod ops;
pub mod orders;
pub mod session;
