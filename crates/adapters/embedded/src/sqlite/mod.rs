//! The SQLite adapters: the order store and the idempotency store, sharing one database file.

mod db;
mod idempotency;
mod migrations;
mod store;

pub use db::SqliteOptions;
pub use idempotency::SqliteIdempotency;
pub use store::SqliteStore;

use crate::error::{EmbeddedError, EmbeddedResult};
use oms_domain::Decimal;

/// SQLite integers are signed 64-bit: ids and offsets above `i64::MAX` cannot be stored.
fn to_sql_int(v: u64, what: &str) -> EmbeddedResult<i64> {
    i64::try_from(v)
        .map_err(|_| EmbeddedError::Invalid(format!("{what} {v} is above {}", i64::MAX)))
}

fn from_sql_int(v: i64, what: &str) -> EmbeddedResult<u64> {
    u64::try_from(v).map_err(|_| EmbeddedError::Corrupt(format!("negative {what} {v}")))
}

/// Decimals are stored as their exact text (scale included) and parsed back without rounding.
fn parse_decimal(s: &str) -> EmbeddedResult<Decimal> {
    Decimal::from_str_exact(s).map_err(|e| EmbeddedError::Corrupt(format!("decimal {s:?}: {e}")))
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
