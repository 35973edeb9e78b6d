//! The event pipeline: ingestion → `orders` → risk → `venue` → venue → `orders`/`marketdata` →
//! processor and market data. Every stage is a consumer group that commits its position only
//! after its effects are durable, and rebuilds its state from a snapshot plus the log.

pub mod metrics;
pub mod processor;
pub mod reference;
pub mod risk;
pub mod stage;
pub mod venue;

/// Wall-clock time, read only at the service edge; the domain gets it as a value.
pub use crate::ingestion::clock::now;

/// A stop signal shared by every task: `true` once shutdown has begun.
pub type Shutdown = tokio::sync::watch::Receiver<bool>;
