//! `FileLog`: a durable, partitioned event log in a local directory.
//!
//! Layout of the directory:
//!
//! ```text
//! LOCK                                 held (flock) while a FileLog has the directory open
//! topics.meta                          `name partitions` per line
//! topics/<topic>/<partition>/<base>.log segment files, named by their first offset
//! groups/<hex group name>.offsets      committed positions of a consumer group
//! ```
//!
//! Appends go through one writer thread that commits in groups (see [`writer`]): a record is
//! fsync'd before `append` returns and before any reader sees it. At open every segment is read
//! back and checked; a torn tail left by a crash is cut off at the last whole record.
//!
//! Consumer groups have one member each here: a second `subscribe` of a group whose consumer
//! is still alive fails with [`PortError::Conflict`]. The member owns every partition of its
//! topics and never sees `Revoked`.
//!
//! Retention is not implemented: every record is kept for ever. Segments are bounded in size
//! so that deleting old ones, when retention comes, is a matter of removing whole files.

mod consumer;
pub(crate) mod fsutil;
mod groups;
mod meta;
mod partition;
mod record;
mod segment;
mod sync_pool;
mod writer;

pub use consumer::FileConsumer;
pub use writer::LogStats;

use crate::error::{EmbeddedError, EmbeddedResult};
use async_trait::async_trait;
use oms_ports::event_log::{
    partition_for, Appended, Consumer, EventLog, NewRecord, Record, TopicPartition,
};
use oms_ports::{PortError, PortResult};
use partition::{Partition, PartitionState, ReadPlan, TailCache};
use record::{SharedRecord, StoredRecord};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::{mpsc, oneshot, Notify};

#[derive(Debug, Clone)]
pub struct FileLogOptions {
    /// Sync every group of appends to disk before acknowledging it. On by default; turning it
    /// off is only for tests: a crash of the machine can then lose acknowledged records.
    pub fsync: bool,
    /// A partition starts a new segment file once its active one reaches this size.
    pub segment_bytes: u64,
    /// Bytes of each partition's newest records kept in memory for readers tailing the log,
    /// with what readers decoded from them (counted as twice the value).
    pub tail_cache_bytes: usize,
}

impl Default for FileLogOptions {
    fn default() -> Self {
        FileLogOptions {
            fsync: true,
            segment_bytes: 64 * 1024 * 1024,
            // About 5,000 records of 500 bytes: over a second of a busy partition.
            tail_cache_bytes: 8 * 1024 * 1024,
        }
    }
}

/// The embedded event log. Cheap to clone; all clones share one writer.
#[derive(Clone)]
pub struct FileLog {
    inner: Arc<Inner>,
}

struct Topic {
    partitions: Arc<[Arc<Partition>]>,
}

pub(crate) struct Inner {
    dir: PathBuf,
    opts: FileLogOptions,
    topics: RwLock<HashMap<String, Arc<Topic>>>,
    /// Serialises topic creation (directory and topics file).
    create_lock: Mutex<()>,
    groups: groups::Groups,
    /// Groups with a live consumer.
    members: Mutex<HashSet<String>>,
    /// Woken after every published group of appends.
    notify: Arc<Notify>,
    stats: Arc<LogStats>,
    tx: Option<mpsc::UnboundedSender<writer::AppendRequest>>,
    writer: Option<std::thread::JoinHandle<()>>,
    _lock: File,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the channel stops the writer once it has answered what it holds; waiting for
        // it means the directory is free for a reopen when the last handle is gone.
        self.tx.take();
        if let Some(h) = self.writer.take() {
            let _ = h.join();
        }
    }
}

impl FileLog {
    /// Opens (or creates) the log in `dir`, recovering from a crash: each partition is cut back
    /// to its last whole record. Fails with [`EmbeddedError::Locked`] if the directory is open.
    pub async fn open(dir: &Path, options: FileLogOptions) -> EmbeddedResult<FileLog> {
        let dir = dir.to_path_buf();
        let inner = tokio::task::spawn_blocking(move || open_blocking(dir, options))
            .await
            .map_err(|e| EmbeddedError::Invalid(format!("open task failed: {e}")))??;
        Ok(FileLog {
            inner: Arc::new(inner),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Counters of groups, fsyncs and records written since open.
    pub fn stats(&self) -> &LogStats {
        &self.inner.stats
    }

    fn topic(&self, topic: &str) -> PortResult<Arc<Topic>> {
        self.inner.topic(topic)
    }
}

impl Inner {
    fn topic(&self, topic: &str) -> PortResult<Arc<Topic>> {
        self.topics
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(topic)
            .cloned()
            .ok_or_else(|| PortError::Invalid(format!("unknown topic {topic:?}")))
    }

    fn partition(&self, topic: &str, partition: u32) -> PortResult<Arc<Partition>> {
        self.topic(topic)?
            .partitions
            .get(partition as usize)
            .cloned()
            .ok_or_else(|| {
                PortError::Invalid(format!("topic {topic:?} has no partition {partition}"))
            })
    }

    /// Reads durable records of one partition from `offset` on, without waiting.
    async fn read(&self, part: &Partition, offset: u64, max: usize) -> PortResult<Vec<Record>> {
        let stored = match part.plan_read(offset, max) {
            ReadPlan::Empty => return Ok(Vec::new()),
            ReadPlan::Cached(recs) => {
                return Ok(recs.iter().map(|r| to_record(part, r)).collect());
            }
            ReadPlan::Files(spans) => {
                tokio::task::spawn_blocking(move || segment::read_spans(&spans, offset, max))
                    .await
                    .map_err(|e| PortError::Other(format!("read task failed: {e}")))??
            }
        };
        Ok(stored.iter().map(|r| to_record(part, r)).collect())
    }

    fn create_topic(&self, topic: &str, partitions: u32) -> EmbeddedResult<()> {
        let _guard = self.create_lock.lock().unwrap_or_else(|p| p.into_inner());
        if let Ok(t) = self.topic(topic) {
            return check_count(topic, t.partitions.len() as u32, partitions);
        }
        let name: Arc<str> = Arc::from(topic);
        let parts = (0..partitions)
            .map(|p| load_partition(&self.dir, &name, p, &self.opts).map(Arc::new))
            .collect::<EmbeddedResult<Vec<_>>>()?;
        if self.opts.fsync {
            let tdir = self.dir.join("topics");
            fsutil_sync(&tdir.join(topic))?;
            fsutil_sync(&tdir)?;
        }
        let mut all: BTreeMap<String, u32> = self
            .topics
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, t)| (k.clone(), t.partitions.len() as u32))
            .collect();
        all.insert(topic.to_string(), partitions);
        meta::store(&self.dir, &all, self.opts.fsync)?;
        self.topics
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                topic.to_string(),
                Arc::new(Topic {
                    partitions: parts.into(),
                }),
            );
        Ok(())
    }
}

fn check_count(topic: &str, has: u32, wanted: u32) -> EmbeddedResult<()> {
    if has == wanted {
        Ok(())
    } else {
        Err(EmbeddedError::Invalid(format!(
            "topic {topic:?} has {has} partitions, not {wanted}"
        )))
    }
}

fn fsutil_sync(dir: &Path) -> EmbeddedResult<()> {
    fsutil::sync_dir(dir).map_err(|e| EmbeddedError::io(format!("syncing {}", dir.display()), e))
}

fn to_record(part: &Partition, r: &StoredRecord) -> Record {
    Record {
        topic: part.topic.to_string(),
        partition: part.id,
        offset: r.offset,
        key: r.key.clone(),
        value: r.value.clone(),
        headers: r.headers.clone(),
        timestamp_ms: r.timestamp_ms,
        decoded: r.memo.clone(),
    }
}

fn open_blocking(dir: PathBuf, opts: FileLogOptions) -> EmbeddedResult<Inner> {
    let io_err = |what: &str, e| EmbeddedError::io(format!("{what} {}", dir.display()), e);
    std::fs::create_dir_all(dir.join("topics")).map_err(|e| io_err("creating", e))?;
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("LOCK"))
        .map_err(|e| io_err("locking", e))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => return Err(EmbeddedError::Locked(dir)),
        Err(std::fs::TryLockError::Error(e)) => return Err(io_err("locking", e)),
    }
    let mut topics = HashMap::new();
    for (name, n) in meta::load(&dir)? {
        let arc: Arc<str> = Arc::from(name.as_str());
        let parts = (0..n)
            .map(|p| load_partition(&dir, &arc, p, &opts).map(Arc::new))
            .collect::<EmbeddedResult<Vec<_>>>()?;
        topics.insert(
            name,
            Arc::new(Topic {
                partitions: parts.into(),
            }),
        );
    }
    let groups = groups::Groups::open(dir.join("groups"), opts.fsync)?;
    let notify = Arc::new(Notify::new());
    let stats = Arc::new(LogStats::default());
    let (tx, rx) = mpsc::unbounded_channel();
    let writer = writer::spawn(
        rx,
        writer::WriterConfig {
            fsync: opts.fsync,
            segment_bytes: opts.segment_bytes,
        },
        notify.clone(),
        stats.clone(),
    )
    .map_err(|e| io_err("starting the writer for", e))?;
    Ok(Inner {
        dir,
        opts,
        topics: RwLock::new(topics),
        create_lock: Mutex::new(()),
        groups,
        members: Mutex::new(HashSet::new()),
        notify,
        stats,
        tx: Some(tx),
        writer: Some(writer),
        _lock: lock,
    })
}

/// Opens one partition's segments, checking every record. A torn tail (a crash during a
/// write) is truncated; damage further back is reported as corruption instead of silently
/// dropping acknowledged records.
fn load_partition(
    dir: &Path,
    topic: &Arc<str>,
    id: u32,
    opts: &FileLogOptions,
) -> EmbeddedResult<Partition> {
    let pdir = dir.join("topics").join(&**topic).join(id.to_string());
    let io_err = |e| EmbeddedError::io(format!("opening {}", pdir.display()), e);
    std::fs::create_dir_all(&pdir).map_err(io_err)?;
    let mut bases = Vec::new();
    for entry in std::fs::read_dir(&pdir).map_err(io_err)? {
        let entry = entry.map_err(io_err)?;
        if let Some(base) = entry
            .file_name()
            .to_str()
            .and_then(segment::parse_file_name)
        {
            bases.push(base);
        }
    }
    bases.sort_unstable();
    if bases.is_empty() {
        let path = pdir.join(segment::file_name(0));
        File::create(&path).map_err(io_err)?;
        if opts.fsync {
            fsutil_sync(&pdir)?;
        }
        bases.push(0);
    }
    let mut segments: Vec<segment::Segment> = Vec::with_capacity(bases.len());
    let mut tail = TailCache::new(opts.tail_cache_bytes);
    let count = bases.len();
    for (i, &base) in bases.iter().enumerate() {
        let path = pdir.join(segment::file_name(base));
        if let Some(prev) = segments.last() {
            if prev.next != base {
                return Err(EmbeddedError::Corrupt(format!(
                    "{} starts at offset {base}, the previous segment ends at {}",
                    path.display(),
                    prev.next
                )));
            }
        }
        let last = i + 1 == count;
        // A sealed segment with a saved index is not read at all: restart time stays flat
        // however long the history. The newest segment is always checked record by record.
        if !last {
            if let Some(seg) = segment::open_indexed(&pdir, base)? {
                segments.push(seg);
                continue;
            }
        }
        let scanned = segment::scan(&path, base, if last { opts.tail_cache_bytes } else { 0 })?;
        let seg = scanned.segment;
        if let Some((pos, why)) = scanned.torn_at {
            // A crash can tear only what was being written: the last segment, or the one
            // before it when the crash hit while rolling to a new segment.
            if i + 2 < count {
                return Err(EmbeddedError::Corrupt(format!(
                    "{} is damaged at position {pos} ({why}) with newer segments after it",
                    path.display()
                )));
            }
            tracing::warn!(
                segment = %path.display(),
                position = pos,
                reason = why,
                "truncating the torn tail of a log segment"
            );
            seg.file
                .set_len(pos)
                .and_then(|()| seg.file.sync_all())
                .map_err(|e| EmbeddedError::io(format!("truncating {}", path.display()), e))?;
            for &later in &bases[i + 1..] {
                let p = pdir.join(segment::file_name(later));
                std::fs::remove_file(&p)
                    .map_err(|e| EmbeddedError::io(format!("removing {}", p.display()), e))?;
            }
            if i + 1 < count {
                fsutil_sync(&pdir)?;
            }
            for r in scanned.tail {
                tail.push(Arc::new(r), &mut Vec::new());
            }
            segments.push(seg);
            break;
        }
        for r in scanned.tail {
            tail.push(Arc::new(r), &mut Vec::new());
        }
        if !last {
            // Sealed before this version saved indexes, or its index was lost: save it now.
            segment::save_index(&pdir, seg.base, &seg.index_bytes());
        }
        segments.push(seg);
    }
    Ok(Partition::new(
        topic.clone(),
        id,
        pdir,
        PartitionState { segments, tail },
    ))
}

#[async_trait]
impl EventLog for FileLog {
    async fn ensure_topic(&self, topic: &str, partitions: u32) -> PortResult<()> {
        if !oms_ports::event_log::valid_topic_name(topic) {
            return Err(PortError::Invalid(format!(
                "topic name {topic:?}: use 1 to 249 of [A-Za-z0-9._-]"
            )));
        }
        if partitions == 0 {
            return Err(PortError::Invalid(
                "a topic needs at least one partition".into(),
            ));
        }
        if let Ok(t) = self.topic(topic) {
            return Ok(check_count(topic, t.partitions.len() as u32, partitions)?);
        }
        let inner = self.inner.clone();
        let topic = topic.to_string();
        tokio::task::spawn_blocking(move || inner.create_topic(&topic, partitions))
            .await
            .map_err(|e| PortError::Other(format!("topic creation failed: {e}")))??;
        Ok(())
    }

    async fn partition_count(&self, topic: &str) -> PortResult<u32> {
        Ok(self.topic(topic)?.partitions.len() as u32)
    }

    async fn append(&self, topic: &str, records: Vec<NewRecord>) -> PortResult<Vec<Appended>> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let t = self.topic(topic)?;
        let n = t.partitions.len() as u32;
        let mut bytes = 0;
        let mut routed = Vec::with_capacity(records.len());
        for r in records {
            let len = record::body_len(&r.key, &r.value, &r.headers);
            if len > record::MAX_BODY {
                return Err(PortError::Invalid(format!(
                    "record of {len} bytes is larger than {} bytes",
                    record::MAX_BODY
                )));
            }
            bytes += len;
            routed.push((partition_for(&r.key, n), SharedRecord::from(r)));
        }
        let (reply, rx) = oneshot::channel();
        let req = writer::AppendRequest {
            partitions: t.partitions.clone(),
            records: routed,
            bytes,
            reply,
        };
        let closed = || PortError::Unavailable("the event log writer has stopped".into());
        self.inner
            .tx
            .as_ref()
            .ok_or_else(closed)?
            .send(req)
            .map_err(|_| closed())?;
        rx.await.map_err(|_| closed())?
    }

    async fn read(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
        max: usize,
    ) -> PortResult<Vec<Record>> {
        let part = self.inner.partition(topic, partition)?;
        self.inner.read(&part, offset, max).await
    }

    async fn end_offset(&self, topic: &str, partition: u32) -> PortResult<u64> {
        Ok(self.inner.partition(topic, partition)?.end())
    }

    /// Always 0: this log keeps every record (it has no retention).
    async fn first_offset(&self, topic: &str, partition: u32) -> PortResult<u64> {
        self.inner.partition(topic, partition)?;
        Ok(0)
    }

    async fn committed(&self, group: &str, topic: &str, partition: u32) -> PortResult<Option<u64>> {
        let tp = TopicPartition {
            topic: topic.to_string(),
            partition,
        };
        Ok(self.inner.groups.committed(group, &tp))
    }

    async fn subscribe(&self, group: &str, topics: &[&str]) -> PortResult<Box<dyn Consumer>> {
        let mut owned = Vec::new();
        for topic in topics {
            let t = self.topic(topic)?;
            for p in t.partitions.iter() {
                owned.push(p.clone());
            }
        }
        owned.sort_by(|a, b| (&*a.topic, a.id).cmp(&(&*b.topic, b.id)));
        owned.dedup_by(|a, b| Arc::ptr_eq(a, b));
        {
            let mut members = self.inner.members.lock().unwrap_or_else(|p| p.into_inner());
            if !members.insert(group.to_string()) {
                return Err(PortError::Conflict(format!(
                    "consumer group {group:?} already has a member; the embedded log allows one"
                )));
            }
        }
        Ok(Box::new(FileConsumer::new(
            self.inner.clone(),
            group.to_string(),
            owned,
        )))
    }
}
