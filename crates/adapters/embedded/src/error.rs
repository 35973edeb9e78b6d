//! Errors of the embedded adapters, and their mapping onto the ports' error type.

use oms_ports::PortError;
use std::path::PathBuf;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum EmbeddedError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// Another handle (in this process or another) has the log directory open.
    #[error("{0} is locked by another open log")]
    Locked(PathBuf),
    #[error("corrupt data: {0}")]
    Corrupt(String),
    #[error("invalid argument: {0}")]
    Invalid(String),
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A group of SQLite writes failed to commit; none of it is stored.
    #[error("commit failed: {0}")]
    Commit(String),
    /// The background thread that owns a resource has stopped.
    #[error("{0} has shut down")]
    Closed(&'static str),
}

impl EmbeddedError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        EmbeddedError::Io {
            context: context.into(),
            source,
        }
    }
}

impl From<EmbeddedError> for PortError {
    fn from(e: EmbeddedError) -> Self {
        match e {
            EmbeddedError::Io { .. }
            | EmbeddedError::Locked(_)
            | EmbeddedError::Commit(_)
            | EmbeddedError::Closed(_) => PortError::Unavailable(e.to_string()),
            EmbeddedError::Corrupt(m) => PortError::Corrupt(m),
            EmbeddedError::Invalid(m) => PortError::Invalid(m),
            EmbeddedError::Sqlite(ref s) => match s.sqlite_error_code() {
                Some(rusqlite::ErrorCode::ConstraintViolation) => {
                    PortError::Conflict(e.to_string())
                }
                Some(rusqlite::ErrorCode::DatabaseBusy)
                | Some(rusqlite::ErrorCode::DatabaseLocked)
                | Some(rusqlite::ErrorCode::CannotOpen)
                | Some(rusqlite::ErrorCode::DiskFull)
                | Some(rusqlite::ErrorCode::SystemIoFailure) => {
                    PortError::Unavailable(e.to_string())
                }
                _ => PortError::Other(e.to_string()),
            },
        }
    }
}

pub type EmbeddedResult<T> = Result<T, EmbeddedError>;
