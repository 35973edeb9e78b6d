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

/// How long the risk stage's and the processor's ledgers remember an ended order one by one
/// ([`oms_domain::ledger::Ledger::remember_ended_for`]), given how ingestion keeps
/// idempotency keys. A request whose process died after appending its `OrderCreated` is
/// resumed by a retry, which appends it again with the same id. That can happen until the key
/// is freed: at most `ttl` (or `lock`, if longer) after the id was issued, plus one `lock` when
/// it was resumed just before. Five minutes more cover ingestion instances' clocks disagreeing
/// (the risk engine refuses ids issued further ahead of its own clock). A request retried and
/// failing without knowing its outcome again and again keeps resuming its claim and can
/// outlast this; if its order then first reaches the log, risk refuses it
/// (`ORDER_TIME_OUT_OF_RANGE`), never decides it twice.
pub fn ended_order_horizon(
    idempotency_ttl: std::time::Duration,
    idempotency_lock: std::time::Duration,
) -> std::time::Duration {
    idempotency_ttl
        .max(idempotency_lock)
        .saturating_add(idempotency_lock)
        .saturating_add(std::time::Duration::from_secs(300))
}

#[cfg(test)]
mod tests {
    use super::ended_order_horizon;
    use std::time::Duration;

    #[test]
    fn ended_orders_are_remembered_past_the_last_possible_resume() {
        let min = |m: u64| Duration::from_secs(60 * m);
        // Keys kept a day, locked five minutes: a resume can append up to a day and five
        // minutes after the id was issued.
        assert_eq!(
            ended_order_horizon(min(24 * 60), min(5)),
            min(24 * 60 + 5 + 5)
        );
        // A lock longer than the time to live keeps the key as long as the lock.
        assert_eq!(ended_order_horizon(min(1), min(5)), min(5 + 5 + 5));
        // A time to live too long to add to is for ever, not a panic.
        assert_eq!(ended_order_horizon(Duration::MAX, min(5)), Duration::MAX);
    }
}
