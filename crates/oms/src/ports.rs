//! Opens the adapters the configuration names: embedded (under the data directory, guarded by a
//! lock file so two processes never write the same files) or distributed (Kafka, PostgreSQL,
//! Redis).

use crate::config::{Config, IdempotencyBackend, LogBackend, StoreBackend};
use anyhow::{bail, Context, Result};
use oms_embedded::{FileLog, FileLogOptions, SqliteIdempotency, SqliteOptions, SqliteStore};
use oms_kafka::KafkaLog;
use oms_ports::event_log::EventLog;
use oms_ports::idempotency::IdempotencyStore;
use oms_ports::order_store::OrderStore;
use oms_postgres::{PgOptions, PgStore};
use oms_redis::{RedisIdempotency, RedisOptions};
use std::fs::File;
use std::sync::Arc;

pub struct Ports {
    pub log: Arc<dyn EventLog>,
    pub store: Arc<dyn OrderStore>,
    pub idempotency: Arc<dyn IdempotencyStore>,
    /// Held for the life of the process when anything embedded is open.
    _lock: Option<File>,
}

pub async fn open(config: &Config) -> Result<Ports> {
    let embedded = config.log.backend == LogBackend::Embedded
        || config.store.backend == StoreBackend::Embedded
        || config.idempotency.backend == IdempotencyBackend::Embedded;
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
    let idempotency: Arc<dyn IdempotencyStore> = match config.idempotency.backend {
        // A database of their own: claims and stored responses are on every order's path and
        // must not queue behind the processor's batches on the order store's writer.
        IdempotencyBackend::Embedded => {
            let keys =
                SqliteIdempotency::open(&dir.join("idempotency.db"), SqliteOptions::default())
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
            Arc::new(keys)
        }
        IdempotencyBackend::Redis => {
            let options = RedisOptions {
                key_prefix: config.idempotency.key_prefix.clone(),
                ..Default::default()
            };
            Arc::new(
                RedisIdempotency::connect(&config.idempotency.redis_url, options)
                    .await
                    .context("connecting to Redis")?,
            )
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
        _lock: lock,
    })
}

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
