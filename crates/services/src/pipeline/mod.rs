//! The event pipeline: ingestion → `orders` → risk → `venue` → venue → `orders`/`marketdata` →
//! processor and market data. Every stage is a consumer group that commits its position only
//! after its effects are durable, and rebuilds its state from a snapshot plus the log.

pub mod metrics;
pub mod processor;
pub mod reference;
pub mod risk;
pub mod stage;
pub mod venue;

use oms_domain::ids::Timestamp;
use std::time::{SystemTime, UNIX_EPOCH};

/// Wall-clock time, read only here at the service edge; the domain gets it as a value.
pub fn now() -> Timestamp {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    Timestamp(ms as i64)
}

/// A stop signal shared by every task: `true` once shutdown has begun.
pub type Shutdown = tokio::sync::watch::Receiver<bool>;
