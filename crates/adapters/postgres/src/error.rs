//! How PostgreSQL and pool errors map onto the ports' error type.

use deadpool_postgres::PoolError;
use oms_ports::PortError;
use tokio_postgres::error::SqlState;

/// A query or connection error. SQLSTATE classes decide: a uniqueness rule is a conflict, bad
/// data is invalid, and everything that may pass (lost connection, shutdown, overload,
/// serialization failure, deadlock, read-only standby) is unavailable, so callers retry.
pub(crate) fn pg(context: &str, e: tokio_postgres::Error) -> PortError {
    let message = format!("{context}: {}", describe(&e));
    let Some(code) = e.code() else {
        // No SQLSTATE: the connection failed or closed.
        return PortError::Unavailable(message);
    };
    if *code == SqlState::UNIQUE_VIOLATION {
        return PortError::Conflict(message);
    }
    if *code == SqlState::READ_ONLY_SQL_TRANSACTION {
        return PortError::Unavailable(message);
    }
    match &code.code()[..2] {
        "22" => PortError::Invalid(message),
        "08" | "40" | "53" | "57" | "58" => PortError::Unavailable(message),
        _ => PortError::Other(message),
    }
}

pub(crate) fn pool(context: &str, e: PoolError) -> PortError {
    match e {
        PoolError::Backend(e) => pg(context, e),
        other => PortError::Unavailable(format!("{context}: {other}")),
    }
}

/// A stored value that cannot be read back.
pub(crate) fn corrupt(context: &str, e: impl std::fmt::Display) -> PortError {
    PortError::Corrupt(format!("{context}: {e}"))
}

/// `tokio_postgres::Error`'s own text is terse ("db error"); the server's message is in the
/// `DbError` and the I/O cause in the source chain.
fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} ({})", db.message(), db.code().code());
    }
    match std::error::Error::source(e) {
        Some(source) => format!("{e}: {source}"),
        None => e.to_string(),
    }
}
