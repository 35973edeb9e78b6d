//! `SqliteIdempotency`: idempotency keys in SQLite, so completed keys survive a restart.

use super::db::{Db, Durability, SqliteOptions};
use super::now_ms;
use crate::error::{EmbeddedError, EmbeddedResult};
use crate::journal::KeptKey;
use crate::purge::purge_periodically;
use async_trait::async_trait;
use oms_ports::idempotency::{Claim, ClaimTerms, IdempotencyStore, StoredResponse};
use oms_ports::PortResult;
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Claims run on the single SQLite writer, one after another, so of concurrent claims of a key
/// exactly one finds it free. Expired keys count as free; a background task deletes them
/// every [`SqliteOptions::purge_interval`].
///
/// Only claims are synced to disk before they answer. A claim records its request's intent
/// before the effect, so if a completion, a release or a purge is undone by a power failure,
/// the claim is what is left, and a retry after its lock resumes the request from that intent
/// (the same order id) instead of running it twice. Those writes therefore commit without a
/// sync of their own (`Durability::Unsynced`): at 5,000 orders a second that removed over a
/// third of this database's syncs. Every write here is one statement (`Db::write_one`).
#[derive(Clone)]
pub struct SqliteIdempotency {
    db: Arc<Db>,
}

/// Pages of a new idempotency database: SQLite's default. 2 KiB pages wrote fewer bytes per
/// key (5.0–5.3 KiB against 7.4–7.6) but cost no less CPU
/// (`cargo bench -p oms-embedded --bench embedded_stores`). Keys kept in the order store's file
/// ([`super::SqliteStore::idempotency`]) have that file's pages; whichever process creates a
/// file shared by two sets its page size.
const PAGE_SIZE: u32 = 4096;

impl SqliteIdempotency {
    /// Opens the store on its own database file (or one shared with a [`super::SqliteStore`]
    /// in another process; prefer [`super::SqliteStore::idempotency`] in the same process).
    pub async fn open(path: &Path, options: SqliteOptions) -> EmbeddedResult<SqliteIdempotency> {
        Ok(SqliteIdempotency::on(Arc::new(
            Db::open(path, options, PAGE_SIZE).await?,
        )))
    }

    /// Starts the purge task once per database; needs a tokio runtime.
    pub(crate) fn on(db: Arc<Db>) -> SqliteIdempotency {
        // Without a runtime there is no task to start; a later call from inside one starts it.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            if !db.purge_started.swap(true, Ordering::SeqCst) {
                rt.spawn(purge_periodically(
                    Arc::downgrade(&db),
                    db.opts.purge_interval,
                    |db| async move { purge(&db).await },
                ));
            }
        }
        SqliteIdempotency { db }
    }

    /// Moves the live keys held in another database (the order store's file, where earlier
    /// versions kept them) into this one, so an upgrade forgets no key; returns how many.
    pub async fn import_from(&self, other: &Path) -> EmbeddedResult<usize> {
        if !other.exists() {
            return Ok(0);
        }
        let (this, other) = (self.db.path().to_path_buf(), other.to_path_buf());
        tokio::task::spawn_blocking(move || import_keys(&this, &other))
            .await
            .map_err(|e| EmbeddedError::Invalid(format!("import task failed: {e}")))?
    }

    /// Whether the database at `path` holds any idempotency key (a read; false without the
    /// file or its table), so that a store replacing it opens it only if there is something
    /// to move.
    pub async fn holds_keys(path: &Path) -> EmbeddedResult<bool> {
        if !path.exists() {
            return Ok(false);
        }
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || {
            let conn = Connection::open_with_flags(
                &path,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            conn.busy_timeout(Duration::from_secs(5))?;
            let has_table: bool = conn.query_row(
                "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'idempotency_keys'",
                [],
                |r| r.get(0),
            )?;
            Ok(has_table
                && conn.query_row("SELECT EXISTS (SELECT 1 FROM idempotency_keys)", [], |r| {
                    r.get(0)
                })?)
        })
        .await
        .map_err(|e| EmbeddedError::Invalid(format!("key check failed: {e}")))?
    }

    /// Every key kept (not expired) with its state, for a store that replaces this one.
    pub async fn kept_keys(&self) -> EmbeddedResult<Vec<KeptKey>> {
        let now = now_ms();
        self.db
            .read(move |conn| {
                let mut stmt = conn.prepare(
                    "SELECT key, fingerprint, completed, status, headers, body, expires_at,
                            COALESCE(lock_until, expires_at), intent
                     FROM idempotency_keys WHERE expires_at > ?1",
                )?;
                let rows =
                    stmt.query_map([now], |r| Ok((KeyRow::read(r, 1)?, r.get::<_, String>(0)?)))?;
                let mut kept = Vec::new();
                for row in rows {
                    let (row, key) = row?;
                    let response = if row.completed {
                        Some(stored_response(&row)?)
                    } else {
                        None
                    };
                    kept.push(KeptKey {
                        key,
                        fingerprint: row.fingerprint,
                        expires_at: row.expires_at,
                        lock_until: row.lock_until,
                        intent: row.intent.unwrap_or_default(),
                        response,
                    });
                }
                Ok(kept)
            })
            .await
    }

    /// Adds keys kept by another store (one being replaced), each as its key's newest state;
    /// synced before it answers.
    pub async fn import(&self, keys: Vec<KeptKey>) -> EmbeddedResult<usize> {
        let n = keys.len();
        self.db
            .write_one(Durability::Synced, move |conn| {
                let mut stmt = conn.prepare_cached(
                    "INSERT OR REPLACE INTO idempotency_keys
                         (key, fingerprint, completed, status, headers, body, expires_at, intent,
                          lock_until)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )?;
                for k in keys {
                    let (status, headers, body) = match &k.response {
                        Some(r) => (
                            Some(r.status),
                            Some(serde_json::to_string(&r.headers).map_err(|e| {
                                EmbeddedError::Invalid(format!("response headers: {e}"))
                            })?),
                            Some(r.body.clone()),
                        ),
                        None => (None, None, None),
                    };
                    let completed = k.response.is_some();
                    stmt.execute(params![
                        k.key,
                        k.fingerprint,
                        completed,
                        status,
                        headers,
                        body,
                        k.expires_at,
                        (!completed).then_some(k.intent),
                        (!completed).then_some(k.lock_until),
                    ])?;
                }
                Ok(n)
            })
            .await
    }

    /// Deletes keys whose TTL has passed; returns how many.
    pub async fn purge_expired(&self) -> EmbeddedResult<usize> {
        purge(&self.db).await
    }
}

fn import_keys(this: &Path, other: &Path) -> EmbeddedResult<usize> {
    // Its own connection: ATTACH is not allowed inside the writer's group transactions.
    let mut conn = Connection::open(this)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.execute("ATTACH DATABASE ?1 AS other", [other.to_string_lossy()])?;
    let has_keys: bool = conn.query_row(
        "SELECT count(*) > 0 FROM other.sqlite_master WHERE type = 'table' AND name = 'idempotency_keys'",
        [],
        |r| r.get(0),
    )?;
    let moved = if has_keys {
        let tx = conn.transaction()?;
        let n = tx.execute(
            "INSERT OR IGNORE INTO main.idempotency_keys SELECT * FROM other.idempotency_keys
             WHERE expires_at > ?1",
            [now_ms()],
        )?;
        tx.execute("DELETE FROM other.idempotency_keys", [])?;
        tx.commit()?;
        n
    } else {
        0
    };
    conn.execute_batch("DETACH DATABASE other")?;
    Ok(moved)
}

async fn purge(db: &Db) -> EmbeddedResult<usize> {
    let now = now_ms();
    db.write_one(Durability::Unsynced, move |conn| {
        Ok(conn
            .prepare_cached("DELETE FROM idempotency_keys WHERE expires_at <= ?1")?
            .execute([now])?)
    })
    .await
}

fn ttl_ms(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)
}

/// A stored key as read back.
struct KeyRow {
    fingerprint: String,
    completed: bool,
    status: Option<u16>,
    headers: Option<String>,
    body: Option<Vec<u8>>,
    expires_at: i64,
    lock_until: i64,
    intent: Option<Vec<u8>>,
}

impl KeyRow {
    /// The row's columns from `first` on, in the order the queries select them.
    fn read(r: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<KeyRow> {
        Ok(KeyRow {
            fingerprint: r.get(first)?,
            completed: r.get(first + 1)?,
            status: r.get(first + 2)?,
            headers: r.get(first + 3)?,
            body: r.get(first + 4)?,
            expires_at: r.get(first + 5)?,
            lock_until: r.get(first + 6)?,
            intent: r.get(first + 7)?,
        })
    }
}

fn stored_response(row: &KeyRow) -> EmbeddedResult<StoredResponse> {
    let headers: Vec<(String, String)> =
        serde_json::from_str(row.headers.as_deref().unwrap_or("[]"))
            .map_err(|e| EmbeddedError::Corrupt(format!("stored response headers: {e}")))?;
    Ok(StoredResponse {
        status: row.status.unwrap_or_default(),
        headers,
        body: row.body.clone().unwrap_or_default(),
    })
}

fn claim(
    conn: &Connection,
    key: &str,
    fingerprint: &str,
    intent: &[u8],
    lock: i64,
    keep: i64,
) -> EmbeddedResult<Claim> {
    let now = now_ms();
    let row = conn
        .prepare_cached(
            "SELECT fingerprint, completed, status, headers, body, expires_at,
                    COALESCE(lock_until, expires_at), intent
             FROM idempotency_keys WHERE key = ?1",
        )?
        .query_row([key], |r| KeyRow::read(r, 0))
        .optional()?;
    // An expired key is free, whatever state it was left in.
    if let Some(row) = row.filter(|r| r.expires_at > now) {
        if !row.completed {
            if row.lock_until <= now && row.fingerprint == fingerprint {
                // Abandoned: the retry takes it over and runs it as the same request, and the
                // key lives at least as long as the new lock.
                conn.prepare_cached(
                    "UPDATE idempotency_keys SET lock_until = ?2, expires_at = MAX(expires_at, ?2)
                     WHERE key = ?1",
                )?
                .execute(params![key, now.saturating_add(lock)])?;
                return Ok(Claim::Resumed {
                    intent: row.intent.unwrap_or_default(),
                });
            }
            return Ok(Claim::InFlight {
                fingerprint: row.fingerprint,
            });
        }
        return Ok(Claim::Completed {
            response: stored_response(&row)?,
            fingerprint: row.fingerprint,
        });
    }
    conn.prepare_cached(
        "INSERT INTO idempotency_keys
             (key, fingerprint, completed, status, headers, body, expires_at, intent, lock_until)
         VALUES (?1, ?2, 0, NULL, NULL, NULL, ?3, ?4, ?5)
         ON CONFLICT (key) DO UPDATE SET
             fingerprint = excluded.fingerprint, completed = 0, status = NULL, headers = NULL,
             body = NULL, expires_at = excluded.expires_at, intent = excluded.intent,
             lock_until = excluded.lock_until",
    )?
    .execute(params![
        key,
        fingerprint,
        now.saturating_add(keep.max(lock)),
        intent,
        now.saturating_add(lock)
    ])?;
    Ok(Claim::Acquired)
}

#[async_trait]
impl IdempotencyStore for SqliteIdempotency {
    async fn claim_with(
        &self,
        key: &str,
        fingerprint: &str,
        terms: &ClaimTerms<'_>,
    ) -> PortResult<Claim> {
        let (key, fingerprint) = (key.to_string(), fingerprint.to_string());
        let (intent, lock, keep) = (
            terms.intent.to_vec(),
            ttl_ms(terms.lock),
            ttl_ms(terms.keep),
        );
        Ok(self
            .db
            .write_one(Durability::Synced, move |conn| {
                claim(conn, &key, &fingerprint, &intent, lock, keep)
            })
            .await?)
    }

    async fn complete(
        &self,
        key: &str,
        fingerprint: &str,
        response: &StoredResponse,
        ttl: Duration,
    ) -> PortResult<()> {
        let headers = serde_json::to_string(&response.headers)
            .map_err(|e| EmbeddedError::Invalid(format!("response headers: {e}")))?;
        let (key, fingerprint, ttl) = (key.to_string(), fingerprint.to_string(), ttl_ms(ttl));
        let (status, body) = (response.status, response.body.clone());
        Ok(self
            .db
            .write_one(Durability::Unsynced, move |conn| {
                conn.prepare_cached(
                    "INSERT INTO idempotency_keys
                         (key, fingerprint, completed, status, headers, body, expires_at)
                     VALUES (?1, ?2, 1, ?3, ?4, ?5, ?6)
                     ON CONFLICT (key) DO UPDATE SET
                         fingerprint = excluded.fingerprint, completed = 1,
                         status = excluded.status, headers = excluded.headers,
                         body = excluded.body, expires_at = excluded.expires_at",
                )?
                .execute(params![
                    key,
                    fingerprint,
                    status,
                    headers,
                    body,
                    now_ms().saturating_add(ttl)
                ])?;
                Ok(())
            })
            .await?)
    }

    async fn release(&self, key: &str) -> PortResult<()> {
        let key = key.to_string();
        Ok(self
            .db
            .write_one(Durability::Unsynced, move |conn| {
                // Only a claim in flight is freed: a completed response stays for replays.
                conn.prepare_cached(
                    "DELETE FROM idempotency_keys WHERE key = ?1 AND completed = 0",
                )?
                .execute([key])?;
                Ok(())
            })
            .await?)
    }

    async fn abandon(&self, key: &str) -> PortResult<()> {
        let key = key.to_string();
        let now = now_ms();
        Ok(self
            .db
            .write_one(Durability::Unsynced, move |conn| {
                // Unsynced: if a crash undoes this, the lock simply runs its course.
                conn.prepare_cached(
                    "UPDATE idempotency_keys SET lock_until = MIN(COALESCE(lock_until, ?2), ?2)
                     WHERE key = ?1 AND completed = 0",
                )?
                .execute(params![key, now])?;
                Ok(())
            })
            .await?)
    }

    async fn ping(&self) -> PortResult<()> {
        Ok(self
            .db
            .read(|conn| {
                conn.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?;
                Ok(())
            })
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keys_move_from_another_database() {
        let dir = tempfile::tempdir().unwrap();
        let old = super::super::SqliteStore::open(&dir.path().join("oms.db"), Default::default())
            .await
            .unwrap()
            .idempotency();
        let response = StoredResponse {
            status: 202,
            headers: vec![("location".into(), "/api/orders/1".into())],
            body: b"{}".to_vec(),
        };
        let hour = Duration::from_secs(3600);
        old.claim("done", "f", hour).await.unwrap();
        old.complete("done", "f", &response, hour).await.unwrap();
        old.claim("expired", "f", Duration::ZERO).await.unwrap();
        let new = SqliteIdempotency::open(&dir.path().join("i.db"), SqliteOptions::default())
            .await
            .unwrap();
        assert_eq!(
            new.import_from(&dir.path().join("oms.db")).await.unwrap(),
            1
        );
        assert_eq!(
            new.claim("done", "f", hour).await.unwrap(),
            Claim::Completed {
                fingerprint: "f".into(),
                response
            }
        );
        // Moved, not copied: a second import finds nothing.
        assert_eq!(
            new.import_from(&dir.path().join("oms.db")).await.unwrap(),
            0
        );
        assert_eq!(
            new.import_from(&dir.path().join("absent.db"))
                .await
                .unwrap(),
            0
        );
    }

    #[tokio::test]
    async fn only_claims_wait_for_a_sync() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteIdempotency::open(&dir.path().join("i.db"), SqliteOptions::default())
            .await
            .unwrap();
        let counts = || {
            let c = &store.db.commits;
            (
                c.groups.load(Ordering::Relaxed),
                c.synced.load(Ordering::Relaxed),
            )
        };
        let hour = Duration::from_secs(3600);
        let response = StoredResponse {
            status: 202,
            headers: Vec::new(),
            body: b"{}".to_vec(),
        };
        let (groups, synced) = counts();
        store.claim("a", "f", hour).await.unwrap();
        assert_eq!(counts(), (groups + 1, synced + 1), "a claim is synced");
        store.complete("a", "f", &response, hour).await.unwrap();
        store.claim("b", "f", hour).await.unwrap();
        store.release("b").await.unwrap();
        store.purge_expired().await.unwrap();
        assert_eq!(
            counts(),
            (groups + 5, synced + 2),
            "completions, releases and purges are not"
        );
        // What was committed unsynced is committed all the same.
        assert_eq!(
            store.claim("a", "f", hour).await.unwrap(),
            Claim::Completed {
                fingerprint: "f".into(),
                response
            }
        );
        assert_eq!(store.claim("b", "g", hour).await.unwrap(), Claim::Acquired);
    }

    #[tokio::test]
    async fn holds_keys_tells_a_database_with_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("i.db");
        assert!(
            !SqliteIdempotency::holds_keys(&path).await.unwrap(),
            "no file"
        );
        let store = SqliteIdempotency::open(&path, SqliteOptions::default())
            .await
            .unwrap();
        assert!(
            !SqliteIdempotency::holds_keys(&path).await.unwrap(),
            "empty"
        );
        store
            .claim("k", "f", Duration::from_secs(60))
            .await
            .unwrap();
        assert!(SqliteIdempotency::holds_keys(&path).await.unwrap());
    }

    #[tokio::test]
    async fn purge_deletes_only_expired_keys() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteIdempotency::open(&dir.path().join("i.db"), SqliteOptions::default())
            .await
            .unwrap();
        store.claim("old", "f", Duration::ZERO).await.unwrap();
        store
            .claim("live", "f", Duration::from_secs(3600))
            .await
            .unwrap();
        assert_eq!(store.purge_expired().await.unwrap(), 1);
        assert_eq!(store.purge_expired().await.unwrap(), 0);
        assert_eq!(
            store
                .claim("live", "g", Duration::from_secs(1))
                .await
                .unwrap(),
            Claim::InFlight {
                fingerprint: "f".into()
            }
        );
    }
}
