//! Opens the adapters the configuration names. Embedded: everything under the data directory,
//! guarded by a lock file so two processes never write the same log.

use crate::config::Config;
use anyhow::{bail, Context, Result};
use oms_embedded::{FileLog, FileLogOptions, SqliteOptions, SqliteStore};
use oms_ports::event_log::EventLog;
use oms_ports::idempotency::IdempotencyStore;
use oms_ports::order_store::OrderStore;
use oms_services::codec::topics;
use std::fs::File;
use std::sync::Arc;

pub struct Ports {
    pub log: Arc<dyn EventLog>,
    pub store: Arc<dyn OrderStore>,
    pub idempotency: Arc<dyn IdempotencyStore>,
    /// Held for the life of the process.
    _lock: File,
}

pub async fn open(config: &Config) -> Result<Ports> {
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
    let log = FileLog::open(
        &dir.join("log"),
        FileLogOptions {
            fsync: config.log.fsync,
            ..Default::default()
        },
    )
    .await
    .context("opening the event log")?;
    let db = dir.join("oms.db");
    let store = SqliteStore::open(&db, SqliteOptions::default())
        .await
        .context("opening the order store")?;
    // Idempotency keys live in the same database: one file to back up, one writer thread.
    let idempotency = store.idempotency();
    let log: Arc<dyn EventLog> = Arc::new(log);
    log.ensure_topic(topics::ORDERS, config.log.orders_partitions)
        .await?;
    log.ensure_topic(topics::VENUE, config.log.venue_partitions)
        .await?;
    log.ensure_topic(topics::MARKETDATA, config.log.marketdata_partitions)
        .await?;
    Ok(Ports {
        log,
        store: Arc::new(store),
        idempotency: Arc::new(idempotency),
        _lock: lock,
    })
}
