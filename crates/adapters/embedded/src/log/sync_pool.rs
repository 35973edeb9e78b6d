//! Long-lived threads that make a group's files durable side by side: a group touching several
//! partitions then waits for about one sync, not one per file, and the file system can commit
//! its journal for all of them together. Starting threads for every group instead cost more
//! than the syncs themselves under load (a thread start, its stack, and a wait to be scheduled
//! on a busy machine).

use super::fsutil;
use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::{mpsc, Arc, Condvar, Mutex};

/// One file or directory to make durable.
pub(crate) enum Sync {
    Data(Arc<File>),
    Dir(PathBuf),
}

impl Sync {
    fn run(&self) -> io::Result<()> {
        match self {
            Sync::Data(f) => f.sync_data(),
            Sync::Dir(d) => fsutil::sync_dir(d),
        }
    }
}

type Job = (Sync, Pending);

/// A sync handed to a helper, counted off its group's latch exactly once: with its result, or
/// with an error if it is dropped unrun (its helper panicked, or stopped with jobs queued), so
/// the writer never waits for a sync nobody will run.
struct Pending(Option<Arc<Latch>>);

impl Pending {
    fn finish(mut self, r: io::Result<()>) {
        if let Some(latch) = self.0.take() {
            latch.finish(r);
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(latch) = self.0.take() {
            latch.finish(Err(io::Error::other("a log sync thread stopped")));
        }
    }
}

/// Counts a group's syncs still running on helpers; only the last one to finish wakes the
/// caller, and only if it is waiting (one wake-up per group, not one per file).
struct Latch {
    state: Mutex<LatchState>,
    done: Condvar,
}

struct LatchState {
    running: usize,
    result: io::Result<()>,
    waiting: bool,
}

impl Latch {
    fn finish(&self, r: io::Result<()>) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.result.is_ok() {
            s.result = r;
        }
        s.running -= 1;
        let wake = s.running == 0 && s.waiting;
        drop(s);
        if wake {
            self.done.notify_one();
        }
    }

    fn wait(&self) -> io::Result<()> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        while s.running > 0 {
            s.waiting = true;
            s = self.done.wait(s).unwrap_or_else(|p| p.into_inner());
        }
        std::mem::replace(&mut s.result, Ok(()))
    }
}

/// Helper threads beside the caller, which runs one sync itself; each helper has its own
/// queue, so handing out a group's syncs wakes each helper once and nothing else. They end
/// when the pool is dropped.
pub(crate) struct SyncPool {
    helpers: Vec<mpsc::Sender<Job>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl SyncPool {
    pub fn new(helpers: usize) -> io::Result<SyncPool> {
        let mut queues = Vec::with_capacity(helpers);
        let mut threads = Vec::with_capacity(helpers);
        for i in 0..helpers {
            let (tx, rx) = mpsc::channel::<Job>();
            queues.push(tx);
            threads.push(
                std::thread::Builder::new()
                    .name(format!("oms-log-sync-{i}"))
                    .spawn(move || {
                        for (sync, pending) in rx {
                            let r = sync.run();
                            pending.finish(r);
                        }
                    })?,
            );
        }
        Ok(SyncPool {
            helpers: queues,
            threads,
        })
    }

    /// Makes every one of `syncs` durable; the first error, if any, after all have run.
    pub fn sync_all(&self, syncs: Vec<Sync>) -> io::Result<()> {
        let mut syncs = syncs.into_iter();
        let Some(own) = syncs.next() else {
            return Ok(());
        };
        let rest: Vec<Sync> = syncs.collect();
        let latch = Arc::new(Latch {
            state: Mutex::new(LatchState {
                running: rest.len(),
                result: Ok(()),
                waiting: false,
            }),
            done: Condvar::new(),
        });
        for (i, sync) in rest.into_iter().enumerate() {
            let job = (sync, Pending(Some(latch.clone())));
            match self.helpers.get(i % self.helpers.len().max(1)) {
                // A helper that is gone drops the job, which counts it off as failed.
                Some(helper) => drop(helper.send(job)),
                // No helpers: the caller runs them all.
                None => {
                    let r = job.0.run();
                    job.1.finish(r);
                }
            }
        }
        // The caller's own sync runs while the helpers run theirs.
        let own = own.run();
        own.and(latch.wait())
    }
}

impl Drop for SyncPool {
    fn drop(&mut self) {
        self.helpers.clear();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sync_runs_and_an_error_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let pool = SyncPool::new(3).unwrap();
        let files: Vec<Sync> = (0..7)
            .map(|i| {
                let f = File::create(dir.path().join(format!("f{i}"))).unwrap();
                Sync::Data(Arc::new(f))
            })
            .collect();
        pool.sync_all(files).unwrap();
        pool.sync_all(vec![Sync::Dir(dir.path().into())]).unwrap();
        pool.sync_all(Vec::new()).unwrap();
        let missing = vec![
            Sync::Dir(dir.path().into()),
            Sync::Dir(dir.path().join("missing")),
        ];
        assert!(pool.sync_all(missing).is_err());
    }

    #[test]
    fn without_helpers_the_caller_runs_every_sync() {
        let dir = tempfile::tempdir().unwrap();
        let pool = SyncPool::new(0).unwrap();
        let files: Vec<Sync> = (0..3)
            .map(|i| {
                let f = File::create(dir.path().join(format!("f{i}"))).unwrap();
                Sync::Data(Arc::new(f))
            })
            .collect();
        pool.sync_all(files).unwrap();
        let missing = vec![
            Sync::Dir(dir.path().into()),
            Sync::Dir(dir.path().join("missing")),
        ];
        assert!(pool.sync_all(missing).is_err());
    }

    #[test]
    fn a_sync_dropped_unrun_counts_as_failed_instead_of_hanging_the_caller() {
        let latch = Arc::new(Latch {
            state: Mutex::new(LatchState {
                running: 2,
                result: Ok(()),
                waiting: false,
            }),
            done: Condvar::new(),
        });
        let ran = Pending(Some(latch.clone()));
        let dropped = Pending(Some(latch.clone()));
        ran.finish(Ok(()));
        let waiter = std::thread::spawn({
            let latch = latch.clone();
            move || latch.wait()
        });
        // As when a helper panics or stops with the job still queued.
        drop(dropped);
        let err = waiter.join().unwrap().unwrap_err();
        assert!(err.to_string().contains("sync thread stopped"), "{err}");
    }
}
