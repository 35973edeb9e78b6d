//! The background purge both embedded idempotency stores run.

use crate::error::EmbeddedResult;
use std::future::Future;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// Runs `purge` on `store` every `every` until the store is dropped: it holds only a weak
/// reference, so the store closes when its owners drop it.
pub(crate) async fn purge_periodically<T, F, Fut>(store: Weak<T>, every: Duration, purge: F)
where
    F: Fn(Arc<T>) -> Fut,
    Fut: Future<Output = EmbeddedResult<usize>>,
{
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(store) = store.upgrade() else { return };
        match purge(store).await {
            Ok(n) if n > 0 => tracing::debug!(deleted = n, "purged expired idempotency keys"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "purging idempotency keys failed"),
        }
    }
}
