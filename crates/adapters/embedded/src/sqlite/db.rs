//! The SQLite database behind the store: one writer thread that commits queued writes in groups
//! (each write of several statements in its own savepoint, one transaction per group, one fsync
//! per group that holds a write needing it), and a small pool
//! of read connections used from tokio's blocking threads. WAL mode lets reads run beside the
//! writer; no SQLite call ever runs on an async worker thread.

use super::migrations;
use crate::error::{EmbeddedError, EmbeddedResult};
use rusqlite::{Connection, OpenFlags};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;
use tokio::sync::{oneshot, Semaphore};

/// Writes taken into one transaction at most.
const MAX_GROUP: usize = 256;
/// How often the checkpointer copies the WAL into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);
/// The writer finishes a checkpoint once the WAL holds this many frames (SQLite's own
/// automatic checkpoint is at 1000 pages).
const CHECKPOINT_AT_FRAMES: i64 = 1000;
/// How long a connection waits on a lock held by another connection (another process, or a
/// second handle on the same file) before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// Read connections in the pool.
    pub read_connections: usize,
    /// How often expired idempotency keys are deleted.
    pub purge_interval: Duration,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            read_connections: 2,
            purge_interval: Duration::from_secs(60),
        }
    }
}

/// A write: `run` executes it inside a savepoint and says whether it succeeded; `done` answers
/// the caller once the group's commit is known.
struct Job {
    run: Box<dyn FnOnce(&Connection) -> bool + Send>,
    done: Box<dyn FnOnce(Result<(), String>) + Send>,
    durability: Durability,
    /// Run inside a savepoint of its own, so that a failure undoes only its changes. A write
    /// that changes the database in a single statement goes without: SQLite undoes a failed
    /// statement by itself, and the savepoint made it copy every page it touched.
    savepoint: bool,
}

/// Whether a write's commit must reach the disk before the writer answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Durability {
    /// Synced (`fdatasync` of the WAL) before the answer: survives a power failure.
    Synced,
    /// Committed to the WAL but not synced unless a synced write shares its group: a crash of
    /// the process keeps it (the kernel holds the pages), a power failure may undo it, whole.
    /// For writes whose loss the caller can recover from, so they need not pay for a sync.
    Unsynced,
}

/// Commits of one database, for tests and diagnosis.
#[derive(Debug, Default)]
pub(crate) struct CommitCounts {
    pub groups: AtomicU64,
    pub synced: AtomicU64,
}

pub(crate) struct Db {
    path: PathBuf,
    tx: Option<mpsc::Sender<Job>>,
    writer: Option<std::thread::JoinHandle<()>>,
    /// Dropped to stop the checkpointer.
    checkpoint_stop: Option<mpsc::Sender<()>>,
    checkpointer: Option<std::thread::JoinHandle<()>>,
    readers: Mutex<Vec<Connection>>,
    read_permits: Semaphore,
    pub(crate) purge_started: AtomicBool,
    pub(crate) opts: SqliteOptions,
    pub(crate) commits: Arc<CommitCounts>,
}

impl Drop for Db {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(h) = self.writer.take() {
            let _ = h.join();
        }
        tracing::debug!(
            path = %self.path.display(),
            groups = self.commits.groups.load(Ordering::Relaxed),
            synced = self.commits.synced.load(Ordering::Relaxed),
            "SQLite writer stopped"
        );
        self.checkpoint_stop.take();
        if let Some(h) = self.checkpointer.take() {
            let _ = h.join();
        }
    }
}

impl Db {
    /// Opens (or creates, with pages of `page_size` bytes) the database at `path`.
    pub async fn open(path: &Path, opts: SqliteOptions, page_size: u32) -> EmbeddedResult<Db> {
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || Db::open_blocking(path, opts, page_size))
            .await
            .map_err(|e| EmbeddedError::Invalid(format!("open task failed: {e}")))?
    }

    fn open_blocking(path: PathBuf, opts: SqliteOptions, page_size: u32) -> EmbeddedResult<Db> {
        let mut conn = Connection::open(&path)?;
        // Takes effect only when this creates the file; an existing one keeps its page size.
        conn.pragma_update(None, "page_size", page_size)?;
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(EmbeddedError::Invalid(format!(
                "{} cannot use WAL mode (got {mode})",
                path.display()
            )));
        }
        // FULL, not NORMAL: with NORMAL a WAL commit can be lost on power failure, and what
        // this store acknowledges (client order id claims, API keys, idempotency claims) is
        // promised to clients. Group commit keeps the cost at one fsync per group; a group
        // holding only writes that may be lost (`Durability::Unsynced`) commits with NORMAL.
        conn.pragma_update(None, "synchronous", "FULL")?;
        // A write of several statements runs in a savepoint, and SQLite copies every page a
        // savepoint changes into a sub-journal so it can roll back to it. Past 64 KiB that
        // journal spilled into a temporary file: 20 KiB written per fill of a resting order,
        // for a file read only on a failed write
        // (`cargo bench -p oms-embedded --bench embedded_stores`).
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        // Checkpoints run on their own thread (`checkpoint_loop`): done by the writer after a
        // commit, one held every waiting write for the time it took to copy and sync the WAL.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        migrations::migrate(&mut conn)?;
        let readers = (0..opts.read_connections.max(1))
            .map(|_| open_reader(&path))
            .collect::<EmbeddedResult<Vec<_>>>()?;
        let (tx, rx) = mpsc::channel::<Job>();
        let finish_checkpoint = Arc::new(AtomicBool::new(false));
        let finish = finish_checkpoint.clone();
        let commits = Arc::new(CommitCounts::default());
        let counts = commits.clone();
        // Named after the file, so a profile tells the order store's writer from the
        // idempotency store's.
        let stem = path
            .file_stem()
            .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
        let writer = std::thread::Builder::new()
            .name(format!("db-w-{stem}"))
            .spawn(move || write_loop(conn, rx, &finish, &counts))
            .map_err(|e| EmbeddedError::io("starting the SQLite writer", e))?;
        let checkpoint_conn = open_reader(&path)?;
        checkpoint_conn.pragma_update(None, "query_only", false)?;
        let (checkpoint_stop, stop_rx) = mpsc::channel::<()>();
        let checkpointer = std::thread::Builder::new()
            .name(format!("db-c-{stem}"))
            .spawn({
                let finish = finish_checkpoint.clone();
                move || checkpoint_loop(checkpoint_conn, stop_rx, &finish)
            })
            .map_err(|e| EmbeddedError::io("starting the SQLite checkpointer", e))?;
        Ok(Db {
            path,
            tx: Some(tx),
            writer: Some(writer),
            checkpoint_stop: Some(checkpoint_stop),
            checkpointer: Some(checkpointer),
            read_permits: Semaphore::new(readers.len()),
            readers: Mutex::new(readers),
            purge_started: AtomicBool::new(false),
            opts,
            commits,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on the writer connection, inside a transaction shared with other queued
    /// writes. An error from `f` undoes only `f`'s own changes. Returns after the commit has
    /// been synced to disk.
    pub async fn write<T, F>(&self, f: F) -> EmbeddedResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> EmbeddedResult<T> + Send + 'static,
    {
        self.submit(Durability::Synced, true, f).await
    }

    /// [`write`](Self::write) for a write that changes the database in one statement at most
    /// (it may read before it) and returns an error only when nothing was changed, with the
    /// given durability. It runs without a savepoint of its own: a failed statement is undone
    /// by SQLite.
    pub async fn write_one<T, F>(&self, durability: Durability, f: F) -> EmbeddedResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> EmbeddedResult<T> + Send + 'static,
    {
        self.submit(durability, false, f).await
    }

    async fn submit<T, F>(&self, durability: Durability, savepoint: bool, f: F) -> EmbeddedResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> EmbeddedResult<T> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let slot = Arc::new(Mutex::new(None));
        let filled = slot.clone();
        let job = Job {
            run: Box::new(move |conn| {
                let res = f(conn);
                let ok = res.is_ok();
                *filled.lock().unwrap_or_else(|p| p.into_inner()) = Some(res);
                ok
            }),
            done: Box::new(move |commit| {
                let res = slot.lock().unwrap_or_else(|p| p.into_inner()).take();
                let out = match (commit, res) {
                    (Ok(()), Some(res)) => res,
                    (Err(why), _) => Err(EmbeddedError::Commit(why)),
                    (Ok(()), None) => Err(EmbeddedError::Commit("the write panicked".into())),
                };
                let _ = reply.send(out);
            }),
            durability,
            savepoint,
        };
        self.tx
            .as_ref()
            .ok_or(EmbeddedError::Closed("the SQLite writer"))?
            .send(job)
            .map_err(|_| EmbeddedError::Closed("the SQLite writer"))?;
        rx.await
            .map_err(|_| EmbeddedError::Closed("the SQLite writer"))?
    }

    /// Runs `f` on a pooled read connection, on a blocking thread.
    pub async fn read<T, F>(&self, f: F) -> EmbeddedResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> EmbeddedResult<T> + Send + 'static,
    {
        let _permit = self
            .read_permits
            .acquire()
            .await
            .map_err(|_| EmbeddedError::Closed("the SQLite read pool"))?;
        let pooled = self.lock_readers().pop();
        let path = self.path.clone();
        let (conn, res) = tokio::task::spawn_blocking(move || {
            // A connection lost to a panicked read is replaced here.
            let conn = match pooled {
                Some(c) => c,
                None => open_reader(&path)?,
            };
            let res = f(&conn);
            Ok::<_, EmbeddedError>((conn, res))
        })
        .await
        .map_err(|e| EmbeddedError::Invalid(format!("read task failed: {e}")))??;
        self.lock_readers().push(conn);
        res
    }

    fn lock_readers(&self) -> std::sync::MutexGuard<'_, Vec<Connection>> {
        self.readers.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn open_reader(path: &Path) -> EmbeddedResult<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "query_only", true)?;
    Ok(conn)
}

/// Copies the WAL into the database beside the writer, so the writer's commits do not wait
/// for it. A passive checkpoint never waits for the writer, but under a steady stream of
/// commits it never reaches the end of the WAL either, and SQLite starts a WAL over only
/// after a checkpoint that did; so once the WAL holds [`CHECKPOINT_AT_FRAMES`] this one asks
/// the writer to copy the few frames added meanwhile between two groups, after which its next
/// commit starts the WAL over. Ends when its stop sender is dropped.
fn checkpoint_loop(conn: Connection, stop: mpsc::Receiver<()>, finish: &AtomicBool) {
    while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_EVERY) {
        match checkpoint(&conn) {
            // (busy, frames in the WAL): the size of the file says nothing, since SQLite reuses
            // a WAL from its start without shrinking it.
            Ok((0, frames)) if frames >= CHECKPOINT_AT_FRAMES => {
                finish.store(true, Ordering::Release)
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "SQLite checkpoint failed; retrying later"),
        }
    }
}

/// A passive checkpoint; returns SQLite's (busy, frames in the WAL).
fn checkpoint(conn: &Connection) -> rusqlite::Result<(i64, i64)> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })
}

fn write_loop(
    conn: Connection,
    rx: mpsc::Receiver<Job>,
    finish_checkpoint: &AtomicBool,
    counts: &CommitCounts,
) {
    // The connection was opened with `synchronous = FULL`.
    let mut syncing = true;
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        // In WAL mode NORMAL skips only the commit's sync; the next synced commit syncs the
        // whole WAL, the frames of unsynced commits before it included.
        let sync = jobs.iter().any(|j| j.durability == Durability::Synced);
        if sync != syncing {
            let mode = if sync { "FULL" } else { "NORMAL" };
            match conn.pragma_update(None, "synchronous", mode) {
                Ok(()) => syncing = sync,
                Err(e) if sync => {
                    // The group needs its sync and cannot be promised one.
                    let why = format!("could not set SQLite synchronous = FULL: {e}");
                    for job in jobs {
                        (job.done)(Err(why.clone()));
                    }
                    continue;
                }
                // Left syncing, which costs a sync and is never wrong.
                Err(e) => tracing::warn!(error = %e, "could not set SQLite synchronous = {mode}"),
            }
        }
        counts.groups.fetch_add(1, Ordering::Relaxed);
        if syncing {
            counts.synced.fetch_add(1, Ordering::Relaxed);
        }
        commit_group(&conn, jobs);
        if finish_checkpoint.swap(false, Ordering::AcqRel) {
            if let Err(e) = checkpoint(&conn) {
                tracing::warn!(error = %e, "SQLite checkpoint failed; retrying later");
            }
        }
    }
}

/// Runs a statement without parameters from the connection's statement cache: the group
/// commit runs four of them per write, and parsing them each time was a visible cost.
fn exec(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

fn commit_group(conn: &Connection, jobs: Vec<Job>) {
    if let Err(e) = exec(conn, "BEGIN IMMEDIATE") {
        let why = e.to_string();
        for job in jobs {
            (job.done)(Err(why.clone()));
        }
        return;
    }
    let mut dones = Vec::with_capacity(jobs.len());
    let mut broken: Option<String> = None;
    for job in jobs {
        dones.push(job.done);
        if broken.is_some() {
            continue;
        }
        if job.savepoint {
            if let Err(e) = exec(conn, "SAVEPOINT job") {
                broken = Some(e.to_string());
                continue;
            }
        }
        let run = job.run;
        let ran = catch_unwind(AssertUnwindSafe(|| run(conn)));
        let end = match (job.savepoint, ran) {
            (true, Ok(true)) => exec(conn, "RELEASE job").map_err(|e| e.to_string()),
            (true, ran) => {
                if ran.is_err() {
                    tracing::error!("a SQLite write panicked; its changes are rolled back");
                }
                exec(conn, "ROLLBACK TO job")
                    .and_then(|()| exec(conn, "RELEASE job"))
                    .map_err(|e| e.to_string())
            }
            // Some errors make SQLite roll the whole transaction back; what ran before this
            // write is then gone, and so is the group.
            (false, Ok(_)) if conn.is_autocommit() => {
                Err("the group's transaction was rolled back".to_string())
            }
            (false, Ok(_)) => Ok(()),
            // Where it stopped is unknown: the whole group goes.
            (false, Err(_)) => Err("a SQLite write panicked; its group is rolled back".into()),
        };
        if let Err(e) = end {
            broken = Some(e);
        }
    }
    let outcome = match broken {
        Some(why) => Err(why),
        None => exec(conn, "COMMIT").map_err(|e| e.to_string()),
    };
    if outcome.is_err() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    for done in dones {
        done(outcome.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_new_file_gets_the_page_size_asked_for_and_an_existing_one_keeps_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let page_size = |db: Arc<Db>| async move {
            db.read(|conn| Ok(conn.query_row("PRAGMA page_size", [], |r| r.get::<_, i64>(0))?))
                .await
                .unwrap()
        };
        let db = Arc::new(
            Db::open(&path, SqliteOptions::default(), 2048)
                .await
                .unwrap(),
        );
        db.write(|conn| {
            Ok(conn.execute_batch("CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('kept')")?)
        })
        .await
        .unwrap();
        assert_eq!(page_size(db.clone()).await, 2048);
        drop(db);
        let db = Arc::new(
            Db::open(&path, SqliteOptions::default(), 4096)
                .await
                .unwrap(),
        );
        assert_eq!(page_size(db.clone()).await, 2048);
        let v: String = db
            .read(|conn| Ok(conn.query_row("SELECT v FROM t", [], |r| r.get(0))?))
            .await
            .unwrap();
        assert_eq!(v, "kept");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_single_statement_write_leaves_the_others_in_its_group() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(
            Db::open(&dir.path().join("t.db"), SqliteOptions::default(), 4096)
                .await
                .unwrap(),
        );
        db.write(|conn| Ok(conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY)")?))
            .await
            .unwrap();
        let insert = |id: i64| {
            let db = db.clone();
            tokio::spawn(async move {
                db.write_one(Durability::Unsynced, move |conn| {
                    Ok(conn.execute("INSERT INTO t (id) VALUES (?1)", [id])?)
                })
                .await
            })
        };
        // Sent together, so that they usually share a group; the outcome must not depend on it.
        let tasks: Vec<_> = [1, 2, 1, 3, 2].into_iter().map(insert).collect();
        let mut outcomes = Vec::new();
        for t in tasks {
            outcomes.push(t.await.unwrap().is_ok());
        }
        assert_eq!(outcomes.iter().filter(|ok| **ok).count(), 3, "{outcomes:?}");
        let ids: Vec<i64> = db
            .read(|conn| {
                Ok(conn
                    .prepare("SELECT id FROM t ORDER BY id")?
                    .query_map([], |r| r.get(0))?
                    .collect::<Result<_, _>>()?)
            })
            .await
            .unwrap();
        assert_eq!(ids, vec![1, 2, 3]);
    }
}
