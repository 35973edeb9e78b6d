//! Conformance suites for the ports: every adapter of a port (embedded, Kafka, Redis,
//! PostgreSQL) must pass its port's suite, so services can run on any of them.
//!
//! Each suite takes a factory `make`. Every call of `make` must open a new handle on the
//! **same** backing storage (the same directory, database or cluster): the suites drop a
//! handle and make another to check that data survives a reopen. The suites never hold two
//! handles at once. All names they use (topics, groups, keys, consumers) carry a per-run
//! suffix, and accounts are created fresh, so storage shared with earlier runs is fine.
//!
//! The suites panic with a message naming the broken rule. Waits are bounded (a stuck adapter
//! fails instead of hanging), and nothing asserts on how long anything took.

mod event_log;
pub mod fixtures;
mod idempotency;
mod order_store;
mod support;

pub use event_log::event_log_suite;
pub use idempotency::idempotency_suite;
pub use order_store::order_store_suite;
