//! Ports: the contracts between the services and the outside world.
//!
//! Each port has an embedded adapter (`oms serve`, no servers) and a distributed one (Kafka,
//! Redis, PostgreSQL). Both pass the same conformance suite.

pub mod event_log;
pub mod idempotency;
pub mod order_store;
pub mod request_limits;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum PortError {
    /// The backing server or file cannot be reached now; the caller may retry later.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A uniqueness rule was hit.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Stored data could not be read back.
    #[error("corrupt data: {0}")]
    Corrupt(String),
    #[error("invalid argument: {0}")]
    Invalid(String),
    #[error("{0}")]
    Other(String),
}

pub type PortResult<T> = Result<T, PortError>;
