//! Embedded adapters: what `oms serve` runs on with no servers.
//!
//! - [`FileLog`]: the event log, in a local directory, with group commit.
//! - [`SqliteStore`]: the order store and read model, in one SQLite file.
//! - [`SqliteIdempotency`]: idempotency keys, in a SQLite file of their own (or the store's).

pub mod error;
pub mod log;
pub mod sqlite;

pub use error::{EmbeddedError, EmbeddedResult};
pub use log::{FileConsumer, FileLog, FileLogOptions, LogStats};
pub use sqlite::{SqliteIdempotency, SqliteOptions, SqliteStore};
