//! The embedded adapters against the port conformance suites.

use oms_embedded::{
    FileLog, FileLogOptions, JournalIdempotency, JournalOptions, SqliteIdempotency, SqliteOptions,
    SqliteStore,
};
use std::path::PathBuf;

fn opener(
    dir: PathBuf,
    options: FileLogOptions,
) -> impl Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = FileLog>>> {
    move || {
        let (dir, options) = (dir.clone(), options.clone());
        Box::pin(async move { FileLog::open(&dir, options).await.expect("open log") })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_log_passes_the_event_log_suite() {
    let dir = tempfile::tempdir().unwrap();
    oms_conformance::event_log_suite(opener(dir.path().to_path_buf(), FileLogOptions::default()))
        .await;
}

/// Tiny segments and no tail cache: every read goes to the files and crosses segment
/// boundaries, and appends roll segments in the middle of groups.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_log_with_tiny_segments_passes_the_event_log_suite() {
    let dir = tempfile::tempdir().unwrap();
    let options = FileLogOptions {
        segment_bytes: 300,
        tail_cache_bytes: 0,
        ..FileLogOptions::default()
    };
    oms_conformance::event_log_suite(opener(dir.path().to_path_buf(), options)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_passes_the_order_store_suite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("oms.db");
    oms_conformance::order_store_suite(|| {
        let path = path.clone();
        async move {
            SqliteStore::open(&path, SqliteOptions::default())
                .await
                .expect("open store")
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_idempotency_passes_the_idempotency_suite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("idem.db");
    oms_conformance::idempotency_suite(|| {
        let path = path.clone();
        async move {
            SqliteIdempotency::open(&path, SqliteOptions::default())
                .await
                .expect("open idempotency store")
        }
    })
    .await;
}

/// The way `oms serve` uses it: on the order store's database and writer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_sharing_the_store_database_passes_the_suite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("oms.db");
    oms_conformance::idempotency_suite(|| {
        let path = path.clone();
        async move {
            SqliteStore::open(&path, SqliteOptions::default())
                .await
                .expect("open store")
                .idempotency()
        }
    })
    .await;
}

/// One handle, cloned: a journal directory has one owner, whose index is the key state. (So
/// the suite's reopen check sees the same handle; the journal's own tests reopen it for real.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journal_idempotency_passes_the_idempotency_suite() {
    let dir = tempfile::tempdir().unwrap();
    let journal = JournalIdempotency::open(dir.path(), JournalOptions::default())
        .await
        .expect("open idempotency journal");
    oms_conformance::idempotency_suite(|| {
        let journal = journal.clone();
        async move { journal }
    })
    .await;
}
