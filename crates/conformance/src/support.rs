//! Helpers shared by the suites.

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long any single step may take before the suite calls the adapter stuck.
pub(crate) const STEP_LIMIT: Duration = Duration::from_secs(60);

/// A suffix that makes this run's names unique.
pub(crate) fn run_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos();
    format!("{:x}{:x}", nanos, std::process::id())
}

/// A base for ids that no other run uses: nanoseconds since the epoch, rounded to 1000,
/// so a run can use `base + 0 .. base + 999`. Stays below `i64::MAX` until 2262.
pub(crate) fn id_base() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos() as u64;
    nanos / 1000 * 1000
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

/// Awaits `fut`, failing the suite if it does not finish within [`STEP_LIMIT`].
pub(crate) async fn step<T>(what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(STEP_LIMIT, fut).await {
        Ok(v) => v,
        Err(_) => panic!("{what}: did not finish within {STEP_LIMIT:?}"),
    }
}

/// Prints which check runs, so a failure in a long suite is easy to place.
pub(crate) fn check(suite: &str, name: &str) {
    eprintln!("[{suite} conformance] {name}");
}
