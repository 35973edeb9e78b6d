//! The journal's files: numbered segments, appended by one writer thread with group commit
//! (every record queued while the previous group was being written goes in the next write
//! and shares its sync), read back by position, and deleted whole once nothing lives in them.

use super::inbox::{Inbox, Urgency};
use super::record::{frame, Record};
use crate::error::{EmbeddedError, EmbeddedResult};
use crate::log::fsutil::sync_dir;
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// Most records one write takes; records written behind wake the writer once this many wait.
const MAX_GROUP: usize = 4096;
const SUFFIX: &str = "keys";

/// Where a record is: its segment, and its frame's offset and length there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Location {
    pub seg: u32,
    pub offset: u64,
    pub len: u32,
}

struct Append {
    frame: Vec<u8>,
    /// Answer only once the record is on disk (a claim); otherwise once it is written.
    sync: bool,
    done: Done,
}

impl Urgency for Append {
    /// Someone waits for it: for its sync, or for its location.
    fn urgent(&self) -> bool {
        self.sync || matches!(self.done, Done::Reply(_))
    }
}

/// How the writer tells where a record landed.
enum Done {
    Reply(oneshot::Sender<Result<Location, String>>),
    /// Nobody waits: the location joins [`Segments::take_landed`] for the index to pick up.
    Landed {
        shard: usize,
        key: Box<str>,
        ticket: u64,
    },
}

/// A record written behind: its key, the ticket it was queued with, where it is.
pub(super) type Landed = (Box<str>, u64, Location);

/// What the writer shares with the handles.
struct Shared {
    /// The segment being appended to: a record queued now lands there or in a later one.
    current: AtomicU32,
    /// Set when a write or sync failed: what reached the disk is unknown, so nothing more is
    /// written until the journal is opened again (which keeps only whole records).
    failed: AtomicBool,
    syncs: AtomicU64,
    /// Records written whose writers did not wait, by the index's shard: (key, ticket,
    /// location).
    landed: Vec<Mutex<Vec<Landed>>>,
}

pub(super) struct Segments {
    dir: PathBuf,
    inbox: Arc<Inbox<Append>>,
    writer: Option<std::thread::JoinHandle<()>>,
    shared: Arc<Shared>,
    readers: Mutex<HashMap<u32, Arc<File>>>,
    /// Held while open: two writers on one journal would interleave their records.
    _lock: File,
}

fn path_of(dir: &Path, seg: u32) -> PathBuf {
    dir.join(format!("{seg:010}.{SUFFIX}"))
}

fn segment_numbers(dir: &Path) -> EmbeddedResult<Vec<u32>> {
    let io = |e| EmbeddedError::io(format!("listing {}", dir.display()), e);
    let mut segs = Vec::new();
    for entry in fs::read_dir(dir).map_err(io)? {
        let name = entry.map_err(io)?.file_name();
        let Some(stem) = name
            .to_str()
            .and_then(|n| n.strip_suffix(&format!(".{SUFFIX}")))
        else {
            continue;
        };
        if let Ok(seg) = stem.parse::<u32>() {
            segs.push(seg);
        }
    }
    segs.sort_unstable();
    Ok(segs)
}

impl Segments {
    /// Opens the journal in `dir`, handing every whole record to `apply` oldest first. A
    /// record torn by a crash at the end of the newest segment is cut off; damage anywhere
    /// else is an error. Appends then go to a new segment.
    pub(super) fn open(
        dir: &Path,
        segment_bytes: u64,
        shards: usize,
        mut apply: impl FnMut(Location, Record),
    ) -> EmbeddedResult<Segments> {
        let io = |what: String| move |e| EmbeddedError::io(what, e);
        fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
        let lock_path = dir.join("LOCK");
        let lock =
            File::create(&lock_path).map_err(io(format!("creating {}", lock_path.display())))?;
        if lock.try_lock().is_err() {
            return Err(EmbeddedError::Locked(dir.to_path_buf()));
        }
        let segs = segment_numbers(dir)?;
        for (i, &seg) in segs.iter().enumerate() {
            let path = path_of(dir, seg);
            let data = fs::read(&path).map_err(io(format!("reading {}", path.display())))?;
            let end = replay(&data, seg, &mut apply)
                .map_err(|e| EmbeddedError::Corrupt(format!("{}: {e}", path.display())))?;
            if end < data.len() {
                if i + 1 < segs.len() {
                    return Err(EmbeddedError::Corrupt(format!(
                        "{}: damaged record at byte {end}",
                        path.display()
                    )));
                }
                tracing::warn!(
                    segment = %path.display(),
                    kept = end,
                    dropped = data.len() - end,
                    "cutting off a record torn by a crash"
                );
                let f = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(io(format!("opening {}", path.display())))?;
                f.set_len(end as u64)
                    .and_then(|()| f.sync_data())
                    .map_err(io(format!("truncating {}", path.display())))?;
            }
        }
        // Its unsynced tail (records written behind) must be on disk before a newer segment
        // exists: only the newest segment may end torn.
        if let Some(&last) = segs.last() {
            let path = path_of(dir, last);
            File::open(&path)
                .and_then(|f| f.sync_data())
                .map_err(io(format!("syncing {}", path.display())))?;
        }
        let seg = segs.last().map_or(1, |s| s + 1);
        let file = create_segment(dir, seg)?;
        let shared = Arc::new(Shared {
            current: AtomicU32::new(seg),
            failed: AtomicBool::new(false),
            syncs: AtomicU64::new(0),
            landed: (0..shards).map(|_| Mutex::new(Vec::new())).collect(),
        });
        let inbox = Arc::new(Inbox::new(MAX_GROUP));
        let writer = Writer {
            dir: dir.to_path_buf(),
            file,
            seg,
            size: 0,
            segment_bytes,
            shared: shared.clone(),
        };
        let writer = std::thread::Builder::new()
            .name("idem-journal".into())
            .spawn({
                let inbox = inbox.clone();
                move || writer.run(&inbox)
            })
            .map_err(io("starting the journal writer".into()))?;
        Ok(Segments {
            dir: dir.to_path_buf(),
            inbox,
            writer: Some(writer),
            shared,
            readers: Mutex::new(HashMap::new()),
            _lock: lock,
        })
    }

    /// Queues `record`; answers with where it was written (and, if `sync`, synced).
    pub(super) fn append(
        &self,
        record: &Record,
        sync: bool,
    ) -> EmbeddedResult<oneshot::Receiver<Result<Location, String>>> {
        let (done, rx) = oneshot::channel();
        self.queue(record, sync, Done::Reply(done))?;
        Ok(rx)
    }

    /// Queues `record` (unsynced) without waiting: once written, its location is among
    /// [`take_landed`](Self::take_landed) under `ticket`.
    pub(super) fn append_behind(
        &self,
        record: &Record,
        shard: usize,
        ticket: u64,
    ) -> EmbeddedResult<()> {
        let key = record.key().into();
        self.queue(record, false, Done::Landed { shard, key, ticket })
    }

    /// The records of `shard` written behind since the last call.
    pub(super) fn take_landed(&self, shard: usize) -> Vec<Landed> {
        let mut landed = self.shared.landed[shard].lock().expect("landed records");
        if landed.is_empty() {
            Vec::new()
        } else {
            std::mem::take(&mut *landed)
        }
    }

    /// Waits until everything queued before is synced (nothing is written for it).
    pub(super) fn sync_barrier(&self) -> EmbeddedResult<()> {
        let (done, rx) = oneshot::channel();
        self.send(Vec::new(), true, Done::Reply(done))?;
        rx.blocking_recv()
            .map_err(|_| EmbeddedError::Closed("the idempotency journal writer"))?
            .map(|_| ())
            .map_err(|e| EmbeddedError::io(e, std::io::Error::other("journal sync failed")))
    }

    fn queue(&self, record: &Record, sync: bool, done: Done) -> EmbeddedResult<()> {
        let mut frame = Vec::with_capacity(64 + record.key().len());
        record.encode_into(&mut frame);
        if frame.len() - super::record::HEADER > super::record::MAX_PAYLOAD {
            return Err(EmbeddedError::Invalid(format!(
                "an idempotency record of {} bytes is over the journal's limit of {}",
                frame.len(),
                super::record::MAX_PAYLOAD
            )));
        }
        self.send(frame, sync, done)
    }

    fn send(&self, frame: Vec<u8>, sync: bool, done: Done) -> EmbeddedResult<()> {
        if !self.healthy() {
            return Err(EmbeddedError::Closed(
                "the idempotency journal (a write failed; restart to recover)",
            ));
        }
        self.inbox
            .push(Append { frame, sync, done })
            .map_err(|_| EmbeddedError::Closed("the idempotency journal writer"))
    }

    /// The segment appends go to now: every record queued from here on lands there or later.
    pub(super) fn current(&self) -> u32 {
        self.shared.current.load(Ordering::Acquire)
    }

    pub(super) fn healthy(&self) -> bool {
        !self.shared.failed.load(Ordering::Acquire)
    }

    #[cfg(test)]
    pub(super) fn syncs(&self) -> u64 {
        self.shared.syncs.load(Ordering::Relaxed)
    }

    /// Reads back the record at `at`.
    pub(super) fn read(&self, at: Location) -> EmbeddedResult<Record> {
        let file = {
            let mut readers = self.readers.lock().expect("journal readers");
            match readers.get(&at.seg) {
                Some(f) => f.clone(),
                None => {
                    let path = path_of(&self.dir, at.seg);
                    let f = Arc::new(File::open(&path).map_err(|e| {
                        EmbeddedError::io(format!("opening {}", path.display()), e)
                    })?);
                    readers.insert(at.seg, f.clone());
                    f
                }
            }
        };
        let mut buf = vec![0; at.len as usize];
        file.read_exact_at(&mut buf, at.offset)
            .map_err(|e| EmbeddedError::io(format!("reading segment {}", at.seg), e))?;
        let (payload, _) = frame(&buf)
            .map_err(|e| {
                EmbeddedError::Corrupt(format!("segment {} at {}: {e}", at.seg, at.offset))
            })?
            .ok_or_else(|| {
                EmbeddedError::Corrupt(format!("segment {} at {}: short record", at.seg, at.offset))
            })?;
        Record::decode(payload).map_err(EmbeddedError::Corrupt)
    }

    /// Deletes the segments before `seg`; returns how many. Blocks.
    pub(super) fn delete_before(&self, seg: u32) -> EmbeddedResult<usize> {
        let old: Vec<u32> = segment_numbers(&self.dir)?
            .into_iter()
            .filter(|&s| s < seg)
            .collect();
        if !old.is_empty() {
            // The records that made these segments unneeded (completions written behind)
            // must be on disk before they go, or a power failure would lose both.
            self.sync_barrier()?;
        }
        for &s in &old {
            self.readers.lock().expect("journal readers").remove(&s);
            let path = path_of(&self.dir, s);
            fs::remove_file(&path)
                .map_err(|e| EmbeddedError::io(format!("deleting {}", path.display()), e))?;
        }
        if !old.is_empty() {
            sync_dir(&self.dir)
                .map_err(|e| EmbeddedError::io("syncing the journal directory", e))?;
        }
        Ok(old.len())
    }
}

impl Drop for Segments {
    /// Waits for the writer to finish what was queued, so that the directory (whose lock goes
    /// with this) can be opened again at once without a write still landing in it.
    fn drop(&mut self) {
        self.inbox.close();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// Applies the whole records of one segment; returns where they end.
fn replay(
    data: &[u8],
    seg: u32,
    apply: &mut impl FnMut(Location, Record),
) -> Result<usize, String> {
    let mut at = 0;
    while at < data.len() {
        match frame(&data[at..]) {
            Ok(Some((payload, len))) => {
                let record = Record::decode(payload).map_err(|e| format!("byte {at}: {e}"))?;
                apply(
                    Location {
                        seg,
                        offset: at as u64,
                        len: len as u32,
                    },
                    record,
                );
                at += len;
            }
            Ok(None) => break,
            Err(e) => {
                // A torn last write leaves a frame running past the end, or zeros; anything
                // else is damage, and cutting it off could drop records synced after it.
                let rest = &data[at..];
                if frame_reaches_end(rest) || rest.iter().all(|&b| b == 0) {
                    break;
                }
                return Err(format!("byte {at}: {e}"));
            }
        }
    }
    Ok(at)
}

/// Whether the frame at the start of `rest` claims to reach the end of the file or beyond:
/// the last write, torn.
fn frame_reaches_end(rest: &[u8]) -> bool {
    rest.len() >= 4
        && super::record::HEADER
            + u32::from_le_bytes(rest[..4].try_into().expect("four bytes")) as usize
            >= rest.len()
}

fn create_segment(dir: &Path, seg: u32) -> EmbeddedResult<File> {
    let path = path_of(dir, seg);
    let file = OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(&path)
        .map_err(|e| EmbeddedError::io(format!("creating {}", path.display()), e))?;
    sync_dir(dir).map_err(|e| EmbeddedError::io("syncing the journal directory", e))?;
    Ok(file)
}

struct Writer {
    dir: PathBuf,
    file: File,
    seg: u32,
    size: u64,
    /// A new segment is started once the current one holds this much.
    segment_bytes: u64,
    shared: Arc<Shared>,
}

impl Writer {
    fn run(mut self, inbox: &Inbox<Append>) {
        let mut group = Vec::new();
        let mut buf = Vec::new();
        while inbox.take(&mut group) {
            let result = if self.shared.failed.load(Ordering::Acquire) {
                Err("an earlier write to the idempotency journal failed".to_string())
            } else {
                self.write(&group, &mut buf).map_err(|e| {
                    self.shared.failed.store(true, Ordering::Release);
                    tracing::error!(error = %e, "idempotency journal write failed");
                    e
                })
            };
            let mut offset = if result.is_ok() {
                self.size - buf.len() as u64
            } else {
                0
            };
            let mut landed = Vec::new();
            let mut replies = Vec::new();
            for a in group.drain(..) {
                let at = Location {
                    seg: self.seg,
                    offset,
                    len: a.frame.len() as u32,
                };
                offset += a.frame.len() as u64;
                match a.done {
                    Done::Reply(reply) => replies.push((reply, at)),
                    // A failure shows in `healthy`; the index keeps such a key's response.
                    Done::Landed { shard, key, ticket } if result.is_ok() => {
                        landed.push((shard, key, ticket, at))
                    }
                    Done::Landed { .. } => {}
                }
            }
            // Before the replies: whoever waited on a record finds those written with it.
            for (shard, key, ticket, at) in landed.drain(..) {
                self.shared.landed[shard]
                    .lock()
                    .expect("landed records")
                    .push((key, ticket, at));
            }
            for (reply, at) in replies {
                let _ = reply.send(result.clone().map(|()| at));
            }
        }
        // Closing: what was written behind reaches the disk too.
        if !self.shared.failed.load(Ordering::Acquire) {
            if let Err(e) = self.file.sync_data() {
                tracing::warn!(error = %e, "syncing the idempotency journal at close failed");
            }
        }
    }

    /// Writes the group in one write (starting a new segment first if this one is full) and
    /// syncs it if any record asks; leaves the group's bytes in `buf`.
    fn write(&mut self, group: &[Append], buf: &mut Vec<u8>) -> Result<(), String> {
        buf.clear();
        let bytes: usize = group.iter().map(|a| a.frame.len()).sum();
        if self.size > 0 && self.size + bytes as u64 > self.segment_bytes {
            // The full segment's unsynced records reach the disk before any of the next one's.
            self.file
                .sync_data()
                .map_err(|e| format!("syncing segment {}: {e}", self.seg))?;
            let next = create_segment(&self.dir, self.seg + 1).map_err(|e| e.to_string())?;
            self.file = next;
            self.seg += 1;
            self.size = 0;
            self.shared.current.store(self.seg, Ordering::Release);
        }
        for a in group {
            buf.extend_from_slice(&a.frame);
        }
        self.file
            .write_all(buf)
            .map_err(|e| format!("writing segment {}: {e}", self.seg))?;
        self.size += buf.len() as u64;
        if group.iter().any(|a| a.sync) {
            self.file
                .sync_data()
                .map_err(|e| format!("syncing segment {}: {e}", self.seg))?;
            self.shared.syncs.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}
