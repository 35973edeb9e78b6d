//! Segment files: a partition's records in files of bounded size, each named by the offset of
//! its first record, with a sparse in-memory index from offset to file position.

use super::record::{self, Frame, StoredRecord, FRAME_HEADER};
use crate::error::{EmbeddedError, EmbeddedResult};
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

/// One index entry per this many bytes of records: a read scans at most this far to find its
/// offset, and the index of a 64 MiB segment stays near 16k entries.
const INDEX_INTERVAL: u64 = 4096;
/// Bytes read from a file at a time.
const READ_CHUNK: usize = 256 * 1024;
/// A read stops after roughly this many bytes of records, whatever `max` says.
pub(crate) const READ_MAX_BYTES: usize = 8 * 1024 * 1024;

pub(crate) fn file_name(base: u64) -> String {
    format!("{base:020}.log")
}

/// The saved index of a sealed segment, beside it.
pub(crate) fn index_file_name(base: u64) -> String {
    format!("{base:020}.idx")
}

pub(crate) fn parse_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".log")?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// A segment as readers see it: only records that are durable.
pub(crate) struct Segment {
    pub base: u64,
    /// The offset after the last record.
    pub next: u64,
    /// Bytes of durable records.
    pub size: u64,
    pub file: Arc<File>,
    /// (offset - base, position), ascending.
    index: Vec<(u32, u32)>,
}

impl Segment {
    pub fn new(base: u64, file: Arc<File>) -> Self {
        Segment {
            base,
            next: base,
            size: 0,
            file,
            index: Vec::new(),
        }
    }

    /// Registers a record written at `pos` with `len` bytes.
    pub fn push(&mut self, offset: u64, pos: u64, len: u64) {
        debug_assert_eq!(offset, self.next);
        debug_assert_eq!(pos, self.size);
        let due = match self.index.last() {
            None => true,
            Some(&(_, last)) => pos - last as u64 >= INDEX_INTERVAL,
        };
        if due {
            self.index.push(((offset - self.base) as u32, pos as u32));
        }
        self.next = offset + 1;
        self.size = pos + len;
    }

    /// The file position from which a forward scan finds `offset`.
    pub fn locate(&self, offset: u64) -> u64 {
        let rel = offset.saturating_sub(self.base);
        let i = self.index.partition_point(|&(o, _)| (o as u64) <= rel);
        if i == 0 {
            0
        } else {
            self.index[i - 1].1 as u64
        }
    }
}

const INDEX_MAGIC: &[u8; 4] = b"OMSI";
const INDEX_HEADER: usize = 4 + 8 + 8 + 8 + 4;

impl Segment {
    /// The index of this segment, sealed, as saved beside it: what lets the next open skip
    /// reading the whole file. The CRC and the segment's length guard it; it is not synced,
    /// since a lost or torn index only means one more scan.
    pub fn index_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(INDEX_HEADER + self.index.len() * 8 + 4);
        out.extend_from_slice(INDEX_MAGIC);
        out.extend_from_slice(&self.base.to_le_bytes());
        out.extend_from_slice(&self.next.to_le_bytes());
        out.extend_from_slice(&self.size.to_le_bytes());
        out.extend_from_slice(&(self.index.len() as u32).to_le_bytes());
        for (rel, pos) in &self.index {
            out.extend_from_slice(&rel.to_le_bytes());
            out.extend_from_slice(&pos.to_le_bytes());
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// The sealed segment `file` (of `len` bytes) from its saved index, if that is whole and
    /// describes exactly this file.
    pub fn from_index_bytes(bytes: &[u8], base: u64, file: Arc<File>, len: u64) -> Option<Self> {
        let (body, crc) = bytes.split_at_checked(bytes.len().checked_sub(4)?)?;
        if crc32fast::hash(body) != u32::from_le_bytes(crc.try_into().ok()?)
            || body.len() < INDEX_HEADER
            || &body[..4] != INDEX_MAGIC
        {
            return None;
        }
        let u64_at = |i: usize| body[i..i + 8].try_into().ok().map(u64::from_le_bytes);
        let (saved_base, next, size) = (u64_at(4)?, u64_at(12)?, u64_at(20)?);
        let count = u32::from_le_bytes(body[28..32].try_into().ok()?) as usize;
        if saved_base != base || size != len || body.len() != INDEX_HEADER + count * 8 {
            return None;
        }
        let index = body[INDEX_HEADER..]
            .chunks_exact(8)
            .map(|c| {
                let rel = u32::from_le_bytes(c[..4].try_into().expect("4 bytes"));
                let pos = u32::from_le_bytes(c[4..].try_into().expect("4 bytes"));
                (rel, pos)
            })
            .collect();
        Some(Segment {
            base,
            next,
            size,
            file,
            index,
        })
    }
}

/// Saves a sealed segment's index (from [`Segment::index_bytes`]) beside it.
pub(crate) fn save_index(dir: &Path, base: u64, index: &[u8]) {
    let path = dir.join(index_file_name(base));
    if let Err(e) = super::fsutil::write_atomic(&path, index, false) {
        tracing::warn!(path = %path.display(), error = %e, "could not save a segment index");
    }
}

/// Opens a sealed segment from its saved index, or `None` when there is no usable one.
pub(crate) fn open_indexed(dir: &Path, base: u64) -> EmbeddedResult<Option<Segment>> {
    let Ok(bytes) = std::fs::read(dir.join(index_file_name(base))) else {
        return Ok(None);
    };
    let path = dir.join(file_name(base));
    let io_err = |e| EmbeddedError::io(format!("opening {}", path.display()), e);
    let file = File::options()
        .read(true)
        .write(true)
        .open(&path)
        .map_err(io_err)?;
    let len = file.metadata().map_err(io_err)?.len();
    Ok(Segment::from_index_bytes(&bytes, base, Arc::new(file), len))
}

/// The result of checking a segment file at open.
pub(crate) struct Scanned {
    pub segment: Segment,
    /// Where the valid records end, if the file had bytes after them (a torn tail).
    pub torn_at: Option<(u64, &'static str)>,
    /// The last records, newest last, for the tail cache.
    pub tail: Vec<StoredRecord>,
}

/// Reads a segment file from the start, verifying every frame and building the index.
/// Stops at the first frame that is incomplete or invalid. `keep_tail` bytes of the newest
/// records are returned for the tail cache.
pub(crate) fn scan(path: &Path, base: u64, keep_tail: usize) -> EmbeddedResult<Scanned> {
    let io_err = |e| EmbeddedError::io(format!("reading {}", path.display()), e);
    let file = File::options()
        .read(true)
        .write(true)
        .open(path)
        .map_err(io_err)?;
    let len = file.metadata().map_err(io_err)?.len();
    let file = Arc::new(file);
    let mut seg = Segment::new(base, file.clone());
    let mut reader = io::BufReader::with_capacity(READ_CHUNK, &*file);
    let mut tail = std::collections::VecDeque::new();
    let mut tail_bytes = 0usize;
    let mut frame = Vec::new();
    let mut torn_at = None;
    let mut pos = 0u64;
    while pos < len {
        frame.resize(FRAME_HEADER, 0);
        if let Err(e) = reader.read_exact(&mut frame) {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                torn_at = Some((pos, "short frame header"));
                break;
            }
            return Err(io_err(e));
        }
        let Some(total) = record::frame_len(&frame) else {
            torn_at = Some((pos, "frame length out of range"));
            break;
        };
        if pos + total as u64 > len {
            torn_at = Some((pos, "frame runs past the end of the file"));
            break;
        }
        frame.resize(total, 0);
        reader
            .read_exact(&mut frame[FRAME_HEADER..])
            .map_err(io_err)?;
        let rec = match record::decode(&frame) {
            Frame::Record(r, _) => r,
            Frame::Invalid(why) => {
                torn_at = Some((pos, why));
                break;
            }
            Frame::Incomplete(_) => unreachable!("whole frame was read"),
        };
        if rec.offset != seg.next {
            return Err(EmbeddedError::Corrupt(format!(
                "{} holds offset {} where {} was expected",
                path.display(),
                rec.offset,
                seg.next
            )));
        }
        seg.push(rec.offset, pos, total as u64);
        pos += total as u64;
        if keep_tail > 0 {
            tail_bytes += rec.footprint();
            tail.push_back(rec);
            while tail_bytes > keep_tail && tail.len() > 1 {
                tail_bytes -= tail.pop_front().map_or(0, |r| r.footprint());
            }
        }
    }
    Ok(Scanned {
        segment: seg,
        torn_at,
        tail: tail.into(),
    })
}

/// A stretch of one segment file to read: from `start` (a frame boundary) to `end`.
pub(crate) struct ReadSpan {
    pub file: Arc<File>,
    pub start: u64,
    pub end: u64,
}

/// Reads records with offsets from `from` on out of `spans` (consecutive segments), up to `max`
/// records or about [`READ_MAX_BYTES`]. Blocking.
pub(crate) fn read_spans(
    spans: &[ReadSpan],
    from: u64,
    max: usize,
) -> EmbeddedResult<Vec<StoredRecord>> {
    let mut out = Vec::new();
    let mut bytes = 0usize;
    let mut buf = Vec::new();
    for span in spans {
        let mut pos = span.start;
        while pos < span.end && out.len() < max && bytes < READ_MAX_BYTES {
            let want = ((span.end - pos) as usize).min(READ_CHUNK);
            buf.resize(want, 0);
            read_at(&span.file, &mut buf, pos)?;
            let mut cur = 0usize;
            while out.len() < max && bytes < READ_MAX_BYTES {
                let rest = &buf[cur..];
                if rest.is_empty() {
                    break;
                }
                // Records before `from` are only skipped over: no need to check or copy them.
                if let (Some(total), Some(offset)) =
                    (record::frame_len(rest), record::peek_offset(rest))
                {
                    if offset < from && rest.len() >= total {
                        cur += total;
                        continue;
                    }
                }
                match record::decode(rest) {
                    Frame::Record(r, total) => {
                        cur += total;
                        bytes += total;
                        out.push(r);
                    }
                    Frame::Incomplete(Some(total)) if cur == 0 => {
                        // A frame larger than one chunk: read it whole.
                        buf.resize(total, 0);
                        read_at(&span.file, &mut buf, pos)?;
                    }
                    Frame::Incomplete(_) if cur == 0 => {
                        return Err(EmbeddedError::Corrupt(format!(
                            "record at position {pos} runs past the durable end"
                        )));
                    }
                    Frame::Incomplete(_) => break,
                    Frame::Invalid(why) => {
                        return Err(EmbeddedError::Corrupt(format!(
                            "record at position {}: {why}",
                            pos + cur as u64
                        )));
                    }
                }
            }
            pos += cur as u64;
        }
        if out.len() >= max || bytes >= READ_MAX_BYTES {
            break;
        }
    }
    Ok(out)
}

fn read_at(file: &File, buf: &mut [u8], pos: u64) -> EmbeddedResult<()> {
    file.read_exact_at(buf, pos)
        .map_err(|e| EmbeddedError::io("reading a log segment", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_sort_by_offset_and_parse_back() {
        assert_eq!(file_name(7), "00000000000000000007.log");
        assert_eq!(parse_file_name(&file_name(u64::MAX)), Some(u64::MAX));
        assert_eq!(parse_file_name("7.log"), None);
        assert_eq!(parse_file_name("00000000000000000007.tmp"), None);
        assert!(file_name(9) < file_name(10));
    }

    #[test]
    fn sparse_index_locates_a_position_at_or_before_the_offset() {
        let f = Arc::new(tempfile::tempfile().unwrap());
        let mut seg = Segment::new(100, f);
        let mut pos = 0;
        for off in 100..1100u64 {
            seg.push(off, pos, 100);
            pos += 100;
        }
        // Entries every 4096 bytes: every 41st record.
        assert_eq!(seg.locate(100), 0);
        assert_eq!(seg.locate(140), 0);
        assert_eq!(seg.locate(141), 4100);
        let p = seg.locate(1099);
        assert!(p <= 99_900 && 99_900 - p < INDEX_INTERVAL + 100);
        assert_eq!(seg.next, 1100);
        assert_eq!(seg.size, 100_000);
    }

    #[test]
    fn a_saved_index_restores_the_segment_only_when_it_matches_the_file() {
        let d = tempfile::tempdir().unwrap();
        let file = Arc::new(File::create(d.path().join("seg")).unwrap());
        let mut seg = Segment::new(1000, file.clone());
        for (i, pos) in (0..50u64).map(|i| (i, i * 3000)) {
            seg.push(1000 + i, pos, 3000);
        }
        let bytes = seg.index_bytes();
        let back = Segment::from_index_bytes(&bytes, 1000, file.clone(), seg.size).unwrap();
        assert_eq!((back.next, back.size), (seg.next, seg.size));
        assert_eq!(back.index, seg.index);
        for off in [1000, 1001, 1025, 1049] {
            assert_eq!(back.locate(off), seg.locate(off));
        }
        // Another length, another base, or a flipped bit: not this segment's index.
        assert!(Segment::from_index_bytes(&bytes, 1000, file.clone(), seg.size + 1).is_none());
        assert!(Segment::from_index_bytes(&bytes, 999, file.clone(), seg.size).is_none());
        let mut torn = bytes.clone();
        torn[40] ^= 1;
        assert!(Segment::from_index_bytes(&torn, 1000, file.clone(), seg.size).is_none());
        assert!(Segment::from_index_bytes(&bytes[..10], 1000, file, seg.size).is_none());
    }
}
