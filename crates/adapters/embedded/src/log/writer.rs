//! Group commit: one thread writes every append request queued while the previous group was
//! being synced, syncs each touched file once, then publishes the records to readers and
//! answers all the requests. Many concurrent appends share one fsync.

use super::partition::Partition;
use super::record::{self, SharedRecord, StoredRecord};
use super::segment::{self, Segment};
use super::sync_pool::{Sync, SyncPool};
use oms_ports::event_log::Appended;
use oms_ports::{PortError, PortResult};
use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot, Notify};

/// Requests taken into one group at most; bounds the latency of the first one.
const MAX_GROUP_REQUESTS: usize = 4096;
/// Bytes written in one group at most, for the same reason.
const MAX_GROUP_BYTES: usize = 32 * 1024 * 1024;

pub(crate) struct AppendRequest {
    /// The topic's partitions, and each record with the partition it goes to.
    pub partitions: Arc<[Arc<Partition>]>,
    pub records: Vec<(u32, SharedRecord)>,
    pub bytes: usize,
    pub reply: oneshot::Sender<PortResult<Vec<Appended>>>,
}

/// Counters of the writer, for benchmarks and metrics.
#[derive(Debug, Default)]
pub struct LogStats {
    pub groups: AtomicU64,
    pub fsyncs: AtomicU64,
    pub records: AtomicU64,
}

pub(crate) struct WriterConfig {
    pub fsync: bool,
    pub segment_bytes: u64,
}

/// The writer's own view of a partition's active segment, including records not yet durable.
struct Active {
    base: u64,
    file: Arc<File>,
    /// Bytes in the file (written by this thread).
    size: u64,
    next: u64,
}

/// What one group does to one partition.
struct Pending {
    part: Arc<Partition>,
    buf: Vec<u8>,
    /// File position at which `buf` goes.
    buf_at: u64,
    /// (record, segment base, position, frame length) in offset order.
    records: Vec<(Arc<StoredRecord>, u64, u64, u64)>,
    /// Segments created by rolling during this group, published with their first record.
    new_segments: Vec<Segment>,
    /// Files written in this group that need a sync.
    to_sync: Vec<Arc<File>>,
}

/// Threads syncing beside the writer: a group touches a few partitions of a few topics.
const SYNC_HELPERS: usize = 7;

pub(crate) fn spawn(
    rx: mpsc::UnboundedReceiver<AppendRequest>,
    cfg: WriterConfig,
    notify: Arc<Notify>,
    stats: Arc<LogStats>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let syncs = SyncPool::new(SYNC_HELPERS)?;
    std::thread::Builder::new()
        .name("oms-log-writer".into())
        .spawn(move || {
            Writer {
                cfg,
                notify,
                stats,
                syncs,
                active: HashMap::new(),
                failed: None,
            }
            .run(rx)
        })
}

struct Writer {
    cfg: WriterConfig,
    notify: Arc<Notify>,
    stats: Arc<LogStats>,
    syncs: SyncPool,
    /// Keyed by the partition's address: partitions live as long as the log.
    active: HashMap<usize, Active>,
    /// Set after a write or sync failed: what reached the disk is unknown, so the log refuses
    /// further appends until it is reopened (which truncates to the last whole record).
    failed: Option<String>,
}

impl Writer {
    fn run(mut self, mut rx: mpsc::UnboundedReceiver<AppendRequest>) {
        while let Some(first) = rx.blocking_recv() {
            let mut bytes = first.bytes;
            let mut group = vec![first];
            while group.len() < MAX_GROUP_REQUESTS && bytes < MAX_GROUP_BYTES {
                match rx.try_recv() {
                    Ok(r) => {
                        bytes += r.bytes;
                        group.push(r);
                    }
                    Err(_) => break,
                }
            }
            self.commit_group(group);
        }
    }

    fn commit_group(&mut self, group: Vec<AppendRequest>) {
        if let Some(why) = &self.failed {
            for req in group {
                let _ = req.reply.send(Err(PortError::Unavailable(why.clone())));
            }
            return;
        }
        match self.write_group(&group) {
            Ok((results, pending)) => {
                let evicted = self.publish(pending);
                for (req, res) in group.into_iter().zip(results) {
                    // The appender may have given up waiting; its records are durable anyway.
                    let _ = req.reply.send(Ok(res));
                }
                self.notify.notify_waiters();
                // Only now, with every appender answered and no partition locked.
                drop(evicted);
            }
            Err(e) => {
                let why = format!("event log write failed, reopen the log: {e}");
                tracing::error!("{why}");
                self.failed = Some(why.clone());
                for req in group {
                    let _ = req.reply.send(Err(PortError::Unavailable(why.clone())));
                }
            }
        }
    }

    /// Writes and syncs a group. Returns each request's results and what to publish.
    fn write_group(
        &mut self,
        group: &[AppendRequest],
    ) -> std::io::Result<(Vec<Vec<Appended>>, Vec<Pending>)> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let mut pending: Vec<Pending> = Vec::new();
        let mut slot: HashMap<usize, usize> = HashMap::new();
        let mut results = Vec::with_capacity(group.len());
        let mut new_files = false;
        for req in group {
            let mut res = Vec::with_capacity(req.records.len());
            for (p, rec) in &req.records {
                let part = &req.partitions[*p as usize];
                let key = Arc::as_ptr(part) as usize;
                if let std::collections::hash_map::Entry::Vacant(e) = self.active.entry(key) {
                    e.insert(open_active(part)?);
                }
                let i = *slot.entry(key).or_insert_with(|| {
                    let a = &self.active[&key];
                    pending.push(Pending {
                        part: part.clone(),
                        buf: Vec::new(),
                        buf_at: a.size,
                        records: Vec::new(),
                        new_segments: Vec::new(),
                        to_sync: vec![a.file.clone()],
                    });
                    pending.len() - 1
                });
                let pend = &mut pending[i];
                let act = self.active.get_mut(&key).expect("active segment");
                if act.size > 0 && act.size >= self.cfg.segment_bytes {
                    roll(act, pend)?;
                    new_files = true;
                }
                let pos = act.size;
                let len = record::encode(
                    &mut pend.buf,
                    act.next,
                    now,
                    &rec.key,
                    &rec.value,
                    &rec.headers,
                ) as u64;
                let stored = Arc::new(StoredRecord {
                    offset: act.next,
                    timestamp_ms: now,
                    key: rec.key.clone(),
                    value: rec.value.clone(),
                    headers: rec.headers.clone(),
                    memo: Default::default(),
                });
                pend.records.push((stored, act.base, pos, len));
                res.push(Appended {
                    partition: *p,
                    offset: act.next,
                });
                act.size += len;
                act.next += 1;
            }
            results.push(res);
        }
        let mut syncs = Vec::new();
        for pend in &mut pending {
            let act = &self.active[&(Arc::as_ptr(&pend.part) as usize)];
            act.file.write_all_at(&pend.buf, pend.buf_at)?;
            if self.cfg.fsync {
                syncs.extend(pend.to_sync.iter().map(|f| Sync::Data(f.clone())));
                if new_files && !pend.new_segments.is_empty() {
                    syncs.push(Sync::Dir(pend.part.dir.clone()));
                }
            }
        }
        let fsyncs = syncs.len() as u64;
        self.syncs.sync_all(syncs)?;
        self.stats.groups.fetch_add(1, Ordering::Relaxed);
        self.stats.fsyncs.fetch_add(fsyncs, Ordering::Relaxed);
        let n: usize = pending.iter().map(|p| p.records.len()).sum();
        self.stats.records.fetch_add(n as u64, Ordering::Relaxed);
        Ok((results, pending))
    }

    /// Makes a group's records visible to readers, now that they are durable.
    /// Returns the records the tail caches let go of.
    fn publish(&self, pending: Vec<Pending>) -> Vec<Arc<StoredRecord>> {
        let mut sealed = Vec::new();
        let mut evicted = Vec::new();
        for pend in pending {
            let mut st = pend.part.state();
            let mut new_segments = pend.new_segments.into_iter();
            for (rec, base, pos, len) in pend.records {
                if st.segments.last().map(|s| s.base) != Some(base) {
                    let seg = new_segments.next().expect("rolled segment");
                    debug_assert_eq!(seg.base, base);
                    if let Some(done) = st.segments.last() {
                        sealed.push((pend.part.dir.clone(), done.base, done.index_bytes()));
                    }
                    st.segments.push(seg);
                }
                st.segments
                    .last_mut()
                    .expect("a partition has a segment")
                    .push(rec.offset, pos, len);
                st.tail.push(rec, &mut evicted);
            }
        }
        // Outside the partitions' locks; a segment whose index is missing is scanned at open.
        for (dir, base, index) in sealed {
            segment::save_index(&dir, base, &index);
        }
        evicted
    }
}

/// The writer's handle on a partition's last segment, opened on first use.
fn open_active(part: &Partition) -> std::io::Result<Active> {
    let st = part.state();
    let seg = st.segments.last().expect("a partition has a segment");
    Ok(Active {
        base: seg.base,
        file: seg.file.clone(),
        size: seg.size,
        next: seg.next,
    })
}

/// Closes the active segment and starts a new one at the next offset.
fn roll(act: &mut Active, pend: &mut Pending) -> std::io::Result<()> {
    // What this group wrote to the old segment goes there now; it is synced with the group.
    act.file.write_all_at(&pend.buf, pend.buf_at)?;
    pend.buf.clear();
    let path = pend.part.dir.join(segment::file_name(act.next));
    let file = Arc::new(
        File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?,
    );
    pend.new_segments.push(Segment::new(act.next, file.clone()));
    pend.to_sync.push(file.clone());
    *act = Active {
        base: act.next,
        file,
        size: 0,
        next: act.next,
    };
    pend.buf_at = 0;
    Ok(())
}
