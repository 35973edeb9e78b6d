//! Idempotent responses stored after they were sent.
//!
//! A response goes out once its effect is durable (for an order, its `OrderCreated` in the
//! log). Storing it for replays is one more durable write, so it runs after the answer instead
//! of before it. Until it is stored the key stays claimed: a retry in this process waits for
//! the store and then replays; one reaching another instance in that millisecond or two gets
//! 409; and if the process dies first, a retry after the lock resumes the request under the
//! same identity (see [`super::idempotency`]), so nothing runs twice.

use oms_ports::idempotency::{IdempotencyStore, StoredResponse};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;

/// The responses of this process still being stored, by scoped key. Cheap to clone.
#[derive(Clone, Default)]
pub struct PendingResponses {
    stores: Arc<Mutex<HashMap<String, Arc<Notify>>>>,
}

impl PendingResponses {
    /// Stores `response` under `key`: at once if the store can, else in the background.
    pub(crate) fn complete_later(
        &self,
        store: Arc<dyn IdempotencyStore>,
        key: String,
        fingerprint: String,
        response: StoredResponse,
        ttl: Duration,
    ) {
        if let Some(stored) = store.complete_at_once(&key, &fingerprint, &response, ttl) {
            if let Err(e) = stored {
                tracing::error!(error = %e, "could not store idempotent response");
            }
            return;
        }
        let done = Arc::new(Notify::new());
        self.lock().insert(key.clone(), done.clone());
        let this = self.clone();
        tokio::spawn(async move {
            if let Err(e) = store.complete(&key, &fingerprint, &response, ttl).await {
                // The effect happened; the key stays claimed, so a retry gets 409 until the
                // lock expires and then resumes this request rather than running a second one.
                tracing::error!(error = %e, "could not store idempotent response");
            }
            let mut stores = this.lock();
            if stores.get(&key).is_some_and(|d| Arc::ptr_eq(d, &done)) {
                stores.remove(&key);
            }
            drop(stores);
            done.notify_waiters();
        });
    }

    /// Waits, at most `patience`, until a response of `key` this process is storing is stored.
    pub(crate) async fn settled(&self, key: &str, patience: Duration) {
        let Some(done) = self.lock().get(key).cloned() else {
            return;
        };
        let notified = done.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        // Stored between the look-up and `enable`: its wake-up came before we listened.
        if !self.lock().get(key).is_some_and(|d| Arc::ptr_eq(d, &done)) {
            return;
        }
        let _ = tokio::time::timeout(patience, notified).await;
    }

    /// Waits, at most `patience`, until every response is stored (at shutdown); false if some
    /// are still being stored.
    pub async fn drain(&self, patience: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            if self.lock().is_empty() {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<Notify>>> {
        self.stores.lock().unwrap_or_else(|p| p.into_inner())
    }
}
