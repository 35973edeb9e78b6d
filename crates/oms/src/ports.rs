//! Opens the adapters the configuration names: embedded (under the data directory, guarded by a
//! lock file so two processes never write the same files) or distributed (Kafka, PostgreSQL,
//! Redis).

use crate::config::{Config, IdempotencyBackend, LogBackend, StoreBackend};
use anyhow::{bail, Context, Result};
use oms_embedded::{
    FileLog, FileLogOptions, JournalIdempotency, JournalOptions, SqliteIdempotency, SqliteOptions,
    SqliteStore,
};
use oms_kafka::KafkaLog;
use oms_ports::event_log::EventLog;
use oms_ports::idempotency::IdempotencyStore;
use oms_ports::order_store::OrderStore;
use oms_ports::request_limits::RequestLimits;
use oms_postgres::{PgOptions, PgStore};
use oms_redis::{RedisIdempotency, RedisOptions};
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

pub struct Ports {
    pub log: Arc<dyn EventLog>,
    pub store: Arc<dyn OrderStore>,
    pub idempotency: Arc<dyn IdempotencyStore>,
    /// Accounts' request limits shared by every instance (with Redis); `None`: each instance
    /// counts its own.
    pub request_limits: Option<Arc<dyn RequestLimits>>,
    /// Held for the life of the process when anything embedded is open.
    _lock: Option<File>,
}

pub async fn open(config: &Config) -> Result<Ports> {
    let embedded = config.log.backend == LogBackend::Embedded
        || config.store.backend == StoreBackend::Embedded
        || matches!(
            config.idempotency.backend,
            IdempotencyBackend::Sqlite | IdempotencyBackend::Journal
        );
    let dir = &config.server.data_dir;
    let lock = if embedded {
        Some(lock_data_dir(config)?)
    } else {
        None
    };

    let log: Arc<dyn EventLog> = match config.log.backend {
        LogBackend::Embedded => Arc::new(
            FileLog::open(
                &dir.join("log"),
                FileLogOptions {
                    fsync: config.log.fsync,
                    ..Default::default()
                },
            )
            .await
            .context("opening the event log")?,
        ),
        LogBackend::Kafka => Arc::new(KafkaLog::connect(config.kafka.clone()).await.with_context(
            || format!("connecting to Kafka at {}", config.kafka.bootstrap_servers),
        )?),
    };
    let (store, store_in_sqlite): (Arc<dyn OrderStore>, bool) = match config.store.backend {
        StoreBackend::Embedded => {
            let s = SqliteStore::open(&dir.join("oms.db"), SqliteOptions::default())
                .await
                .context("opening the order store")?;
            (Arc::new(s), true)
        }
        StoreBackend::Postgres => {
            let options = PgOptions {
                max_connections: config.store.max_connections,
                ..Default::default()
            };
            let pg = PgStore::connect_with(&config.store.url, options)
                .await
                .context("connecting to PostgreSQL")?;
            pg.migrate().await.context("migrating PostgreSQL")?;
            (Arc::new(pg), false)
        }
    };
    let mut request_limits: Option<Arc<dyn RequestLimits>> = None;
    let idempotency: Arc<dyn IdempotencyStore> = match config.idempotency.backend {
        // A database of their own: claims and stored responses are on every order's path and
        // must not queue behind the processor's batches on the order store's writer.
        IdempotencyBackend::Sqlite => Arc::new(open_sqlite_keys(dir, store_in_sqlite).await?),
        IdempotencyBackend::Journal => Arc::new(open_journal_keys(dir, store_in_sqlite).await?),
        IdempotencyBackend::Redis => {
            let options = RedisOptions {
                key_prefix: config.idempotency.key_prefix.clone(),
                ..Default::default()
            };
            let keys = RedisIdempotency::connect(&config.idempotency.redis_url, options)
                .await
                .context("connecting to Redis")?;
            request_limits = Some(Arc::new(keys.request_limits()));
            Arc::new(keys)
        }
    };
    let names = &config.log.names;
    log.ensure_topic(&names.orders_topic, config.log.orders_partitions)
        .await?;
    log.ensure_topic(&names.venue_topic, config.log.venue_partitions)
        .await?;
    log.ensure_topic(&names.marketdata_topic, config.log.marketdata_partitions)
        .await?;
    Ok(Ports {
        log,
        store,
        idempotency,
        request_limits,
        _lock: lock,
    })
}

/// Idempotency keys in SQLite (`idempotency.db`), with any kept where earlier versions or the
/// other embedded backend kept them moved in, so switching forgets no key.
async fn open_sqlite_keys(dir: &Path, store_in_sqlite: bool) -> Result<SqliteIdempotency> {
    let keys = sqlite_keys(dir, store_in_sqlite).await?;
    let journal_dir = dir.join(JOURNAL_KEYS);
    if journal_dir.exists() {
        let journal = JournalIdempotency::open(&journal_dir, JournalOptions::default())
            .await
            .context("opening the idempotency journal to move its keys")?;
        let moved = keys
            .import(journal.kept_keys().await?)
            .await
            .context("moving idempotency keys from the journal")?;
        drop(journal);
        // Renamed first: a crash while deleting must not leave a part of it to import again.
        std::fs::rename(&journal_dir, dir.join(MOVED_JOURNAL))
            .with_context(|| format!("renaming {}", journal_dir.display()))?;
        sync_dir(dir)?;
        tracing::info!(
            moved,
            "idempotency keys moved from the journal to idempotency.db"
        );
    }
    remove_moved_journal(dir)?;
    Ok(keys)
}

/// Idempotency keys in the journal (`idempotency/`), with any kept in SQLite moved in.
async fn open_journal_keys(dir: &Path, store_in_sqlite: bool) -> Result<JournalIdempotency> {
    remove_moved_journal(dir)?;
    let journal = JournalIdempotency::open(&dir.join(JOURNAL_KEYS), JournalOptions::default())
        .await
        .context("opening the idempotency journal")?;
    let sqlite = dir.join(SQLITE_KEYS);
    // Also keys in the order store's file, where earlier versions kept them.
    let legacy = store_in_sqlite && SqliteIdempotency::holds_keys(&dir.join("oms.db")).await?;
    if sqlite.exists() || legacy {
        let keys = sqlite_keys(dir, store_in_sqlite).await?;
        let moved = journal
            .import(keys.kept_keys().await?)
            .await
            .context("moving idempotency keys into the journal")?;
        drop(keys);
        // The database first: without it, what is left is never imported again.
        std::fs::remove_file(&sqlite).with_context(|| format!("removing {}", sqlite.display()))?;
        sync_dir(dir)?;
        if moved > 0 {
            tracing::info!(
                moved,
                "idempotency keys moved from idempotency.db to the journal"
            );
        }
    }
    // A write-ahead log left without its database must not meet a new database of that name.
    for suffix in ["-wal", "-shm"] {
        let f = dir.join(format!("{SQLITE_KEYS}{suffix}"));
        if f.exists() {
            std::fs::remove_file(&f).with_context(|| format!("removing {}", f.display()))?;
        }
    }
    Ok(journal)
}

/// `idempotency.db`, with the keys earlier versions kept in the order store moved in.
async fn sqlite_keys(dir: &Path, store_in_sqlite: bool) -> Result<SqliteIdempotency> {
    let keys = SqliteIdempotency::open(&dir.join(SQLITE_KEYS), SqliteOptions::default())
        .await
        .context("opening the idempotency store")?;
    if store_in_sqlite {
        let moved = keys
            .import_from(&dir.join("oms.db"))
            .await
            .context("moving idempotency keys out of the order store")?;
        if moved > 0 {
            tracing::info!(moved, "idempotency keys moved to idempotency.db");
        }
    }
    Ok(keys)
}

/// Makes a rename or removal in `dir` durable: a power failure must not bring back a store
/// whose keys were moved, to be imported again over newer ones.
fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing {}", dir.display()))
}

fn remove_moved_journal(dir: &Path) -> Result<()> {
    let moved = dir.join(MOVED_JOURNAL);
    if moved.exists() {
        std::fs::remove_dir_all(&moved).with_context(|| format!("removing {}", moved.display()))?;
    }
    Ok(())
}

const SQLITE_KEYS: &str = "idempotency.db";
const JOURNAL_KEYS: &str = "idempotency";
const MOVED_JOURNAL: &str = "idempotency.moved";

fn lock_data_dir(config: &Config) -> Result<File> {
    let dir = &config.server.data_dir;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating data directory {}", dir.display()))?;
    let lock_path = dir.join("LOCK");
    let lock =
        File::create(&lock_path).with_context(|| format!("creating {}", lock_path.display()))?;
    if lock.try_lock().is_err() {
        bail!(
            "data directory {} is in use by another oms process (stop it first, or use another --data-dir)",
            dir.display()
        );
    }
    Ok(lock)
}

#[cfg(test)]
mod tests {
    use super::*;
    use oms_ports::idempotency::{Claim, StoredResponse};
    use std::time::Duration;

    async fn keys_with(dir: &Path, backend: IdempotencyBackend) -> Arc<dyn IdempotencyStore> {
        let mut config = Config::default();
        config.server.data_dir = dir.to_path_buf();
        config.idempotency.backend = backend;
        let ports = open(&config).await.unwrap();
        ports.idempotency.clone()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn switching_the_embedded_backend_keeps_every_key() {
        let dir = tempfile::tempdir().unwrap();
        let hour = Duration::from_secs(3600);
        let response = StoredResponse {
            status: 202,
            headers: vec![("location".into(), "/api/orders/1".into())],
            body: b"{}".to_vec(),
        };
        let done = Claim::Completed {
            fingerprint: "f".into(),
            response: response.clone(),
        };
        let in_flight = Claim::InFlight {
            fingerprint: "f".into(),
        };
        {
            let keys = keys_with(dir.path(), IdempotencyBackend::Journal).await;
            keys.claim("done", "f", hour).await.unwrap();
            keys.complete("done", "f", &response, hour).await.unwrap();
            keys.claim("flight", "f", hour).await.unwrap();
        }
        for backend in [
            IdempotencyBackend::Sqlite,
            IdempotencyBackend::Journal,
            IdempotencyBackend::Sqlite,
        ] {
            let keys = keys_with(dir.path(), backend).await;
            assert_eq!(
                keys.claim("done", "f", hour).await.unwrap(),
                done,
                "{backend:?}"
            );
            assert_eq!(keys.claim("flight", "g", hour).await.unwrap(), in_flight);
            let (journal, sqlite) = (
                dir.path().join(JOURNAL_KEYS).exists(),
                dir.path().join(SQLITE_KEYS).exists(),
            );
            assert_eq!(
                (journal, sqlite),
                (
                    backend == IdempotencyBackend::Journal,
                    backend == IdempotencyBackend::Sqlite
                ),
                "keys live in one place only"
            );
            assert!(!dir.path().join(MOVED_JOURNAL).exists());
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn with_redis_every_instance_shares_the_request_limits() {
        use oms_domain::ids::AccountId;
        use oms_ports::request_limits::Allowance;
        let redis = oms_testkit::redis::RedisServer::new();
        let instance = |dir: &Path| {
            let mut config = Config::default();
            config.server.data_dir = dir.to_path_buf();
            config.idempotency.backend = IdempotencyBackend::Redis;
            config.idempotency.redis_url = redis.url();
            config
        };
        let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let first = open(&instance(one.path())).await.unwrap();
        let second = open(&instance(two.path())).await.unwrap();
        let once = Allowance {
            per_second: 1,
            burst: 1,
        };
        let limits = |p: &Ports| p.request_limits.clone().expect("shared with Redis");
        assert!(limits(&first).admit(AccountId(1), 1, once).await.unwrap());
        assert!(!limits(&second).admit(AccountId(1), 1, once).await.unwrap());

        let embedded = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.server.data_dir = embedded.path().to_path_buf();
        assert!(open(&config).await.unwrap().request_limits.is_none());
    }
}
