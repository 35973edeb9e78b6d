//! Long-lived threads that make a group's files durable side by side: a group touching several
//! partitions then waits for about one sync, not one per file, and the file system can commit
//! its journal for all of them together. Starting threads for every group instead cost more
//! than the syncs themselves under load (a thread start, its stack, and a wait to be scheduled
//! on a busy machine).

use super::fsutil;
use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::{mpsc, Arc, Mutex};

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

type Job = (Sync, mpsc::Sender<io::Result<()>>);

/// Helper threads beside the caller, which runs one sync itself. They end when the pool is
/// dropped.
pub(crate) struct SyncPool {
    jobs: Option<mpsc::Sender<Job>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl SyncPool {
    pub fn new(helpers: usize) -> io::Result<SyncPool> {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let threads = (0..helpers)
            .map(|i| {
                let rx = rx.clone();
                std::thread::Builder::new()
                    .name(format!("oms-log-sync-{i}"))
                    .spawn(move || loop {
                        // The lock is held only while waiting for the next job.
                        let job = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                        let Ok((sync, done)) = job else { return };
                        let _ = done.send(sync.run());
                    })
            })
            .collect::<io::Result<Vec<_>>>()?;
        Ok(SyncPool {
            jobs: Some(tx),
            threads,
        })
    }

    /// Makes every one of `syncs` durable; the first error, if any, after all have run.
    pub fn sync_all(&self, syncs: Vec<Sync>) -> io::Result<()> {
        let mut syncs = syncs.into_iter();
        let Some(own) = syncs.next() else {
            return Ok(());
        };
        let (done_tx, done_rx) = mpsc::channel();
        let mut handed = 0;
        for sync in syncs {
            match &self.jobs {
                Some(jobs) if jobs.send((sync, done_tx.clone())).is_ok() => handed += 1,
                // No helper left (cannot happen while the pool lives): run it here.
                _ => return Err(io::Error::other("the log's sync threads have stopped")),
            }
        }
        let mut res = own.run();
        for _ in 0..handed {
            let r = done_rx
                .recv()
                .unwrap_or_else(|_| Err(io::Error::other("a log sync thread stopped")));
            res = res.and(r);
        }
        res
    }
}

impl Drop for SyncPool {
    fn drop(&mut self) {
        self.jobs.take();
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
}
