//! Embedded adapters: what `oms serve` runs on with no servers.
//!
//! - [`FileLog`]: the event log, in a local directory, with group commit.
//! - [`SqliteStore`]: the order store and read model, in one SQLite file.
//! - [`SqliteIdempotency`]: idempotency keys, in a SQLite file of their own (or the store's).
//! - [`JournalIdempotency`]: idempotency keys in an append-only journal indexed in memory,
//!   for rates where SQLite's index writes cost too much CPU.

pub mod error;
pub mod journal;
pub mod log;
mod purge;
pub mod sqlite;

pub use error::{EmbeddedError, EmbeddedResult};
pub use journal::{JournalIdempotency, JournalOptions, KeptKey};
pub use log::{FileConsumer, FileLog, FileLogOptions, LogStats};
pub use sqlite::{SqliteIdempotency, SqliteOptions, SqliteStore};
