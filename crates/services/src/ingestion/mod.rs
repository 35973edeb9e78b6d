//! Order ingestion without HTTP: exact parsing and validation of order requests, order ids,
//! the clock, and publishing order-lifecycle events to the log.

pub mod clock;
pub mod decimal;
pub mod field_error;
pub mod order_id;
pub mod publish;
pub mod validate;

pub use field_error::{codes, FieldError};
pub use order_id::OrderIdGenerator;
