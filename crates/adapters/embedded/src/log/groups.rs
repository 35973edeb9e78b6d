//! Committed positions of consumer groups: one small file per group with two slots. A commit
//! writes the whole set of positions into the slot that does not hold the newest commit and
//! syncs that file's data: one `fdatasync`, no new file and no rename, and a write torn by a
//! crash leaves the other slot, the previous commit, intact. Opening takes the valid slot with
//! the higher sequence number.
//!
//! A slot: `OMSG`, sequence (u64), payload length (u32), CRC-32 of those and the payload (u32),
//! then the payload: `topic partition offset` per line. Files of the earlier format (the same
//! lines, replaced atomically) are read at open and removed by the group's next commit.

use super::fsutil;
use crate::error::{EmbeddedError, EmbeddedResult};
use oms_ports::event_log::TopicPartition;
use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub(crate) type Positions = BTreeMap<TopicPartition, u64>;

const MAGIC: &[u8; 4] = b"OMSG";
const HEADER: usize = 4 + 8 + 4 + 4;
/// Where the second slot starts; the files are sparse, so the gap costs nothing.
const SLOT_BYTES: u64 = 1 << 20;

/// One group's committed positions and the file holding them.
struct Group {
    positions: Positions,
    /// Sequence number of the newest commit; it lives in slot `seq % 2`.
    seq: u64,
    file: Option<File>,
    /// A file of the earlier format, removed once this group has committed in the new one.
    legacy: Option<PathBuf>,
}

pub(crate) struct Groups {
    dir: PathBuf,
    fsync: bool,
    /// Held across the file write, so two commits of one group cannot interleave.
    groups: Mutex<HashMap<String, Group>>,
}

impl Groups {
    pub fn open(dir: PathBuf, fsync: bool) -> EmbeddedResult<Self> {
        let io_err = |e| EmbeddedError::io(format!("reading {}", dir.display()), e);
        std::fs::create_dir_all(&dir).map_err(io_err)?;
        let mut groups: HashMap<String, Group> = HashMap::new();
        let mut entries: Vec<PathBuf> = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(io_err)? {
            entries.push(entry.map_err(io_err)?.path());
        }
        // Earlier-format files first, so a group's slot file (newer) overrides them.
        entries.sort_by_key(|p| p.extension().is_some_and(|e| e == "positions"));
        for path in entries {
            let Some((group, ext)) = group_of(&path) else {
                continue; // temporary files of an interrupted commit, or foreign files
            };
            match ext {
                "offsets" => {
                    let positions = parse_lines(&std::fs::read_to_string(&path).map_err(io_err)?)
                        .ok_or_else(|| corrupt(&path))?;
                    groups.insert(
                        group,
                        Group {
                            positions,
                            seq: 0,
                            file: None,
                            legacy: Some(path),
                        },
                    );
                }
                _ => {
                    let file = OpenOptions::new()
                        .read(true)
                        .write(true)
                        .open(&path)
                        .map_err(io_err)?;
                    let earlier = groups.remove(&group);
                    let (seq, positions) = match read_newest(&file, &path) {
                        Ok(found) => found,
                        // Unsynced writes can come back empty or torn after a power loss;
                        // the group then starts over (every stage's effects are idempotent).
                        Err(e) if !fsync => {
                            tracing::warn!(error = %e, group = %group, "committed positions lost (log.fsync is off)");
                            (
                                0,
                                earlier
                                    .as_ref()
                                    .map(|g| g.positions.clone())
                                    .unwrap_or_default(),
                            )
                        }
                        Err(e) => return Err(e),
                    };
                    let legacy = earlier.and_then(|g| g.legacy);
                    groups.insert(
                        group,
                        Group {
                            positions,
                            seq,
                            file: Some(file),
                            legacy,
                        },
                    );
                }
            }
        }
        Ok(Groups {
            dir,
            fsync,
            groups: Mutex::new(groups),
        })
    }

    pub fn committed(&self, group: &str, tp: &TopicPartition) -> Option<u64> {
        self.lock()
            .get(group)
            .and_then(|g| g.positions.get(tp))
            .copied()
    }

    /// Durably merges `positions` into the group's committed positions. Blocking.
    pub fn commit(&self, group: &str, positions: &[(TopicPartition, u64)]) -> EmbeddedResult<()> {
        let mut all = self.lock();
        let entry = all.entry(group.to_string()).or_insert_with(|| Group {
            positions: Positions::new(),
            seq: 0,
            file: None,
            legacy: None,
        });
        let mut next = entry.positions.clone();
        for (tp, off) in positions {
            next.insert(tp.clone(), *off);
        }
        let path = self.path(group);
        let io_err = |e| EmbeddedError::io(format!("writing {}", path.display()), e);
        if entry.file.is_none() {
            // Born whole: the first slot holds the positions so far before the file has its
            // name, so a slot file always has a valid slot, whatever a crash tears later.
            let first = encode_slot(0, &encode_positions(&entry.positions))
                .ok_or_else(|| too_many(group))?;
            fsutil::write_atomic(&path, &first, self.fsync).map_err(io_err)?;
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .map_err(io_err)?;
            entry.seq = 0;
            entry.file = Some(file);
        }
        let file = entry.file.as_ref().expect("opened above");
        let seq = entry.seq + 1;
        let slot = encode_slot(seq, &encode_positions(&next)).ok_or_else(|| too_many(group))?;
        file.write_all_at(&slot, (seq % 2) * SLOT_BYTES)
            .map_err(io_err)?;
        if self.fsync {
            file.sync_data().map_err(io_err)?;
        }
        entry.seq = seq;
        entry.positions = next;
        if let Some(old) = entry.legacy.take() {
            // The new file holds everything now; a failed removal only leaves a stale file
            // that the slot file overrides at the next open.
            let _ = std::fs::remove_file(old);
        }
        Ok(())
    }

    fn path(&self, group: &str) -> PathBuf {
        self.dir
            .join(format!("{}.positions", fsutil::hex(group.as_bytes())))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Group>> {
        self.groups.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The group a file belongs to and its kind (`offsets` or `positions`).
fn group_of(path: &Path) -> Option<(String, &str)> {
    let ext = path.extension()?.to_str()?;
    if ext != "offsets" && ext != "positions" {
        return None;
    }
    let stem = path.file_stem()?.to_str()?;
    let group = String::from_utf8(fsutil::unhex(stem)?).ok()?;
    Some((group, ext))
}

fn too_many(group: &str) -> EmbeddedError {
    EmbeddedError::Invalid(format!("group {group:?} commits too many positions"))
}

fn encode_positions(positions: &Positions) -> Vec<u8> {
    positions
        .iter()
        .map(|(tp, off)| format!("{} {} {off}\n", tp.topic, tp.partition))
        .collect::<String>()
        .into_bytes()
}

fn corrupt(path: &Path) -> EmbeddedError {
    EmbeddedError::Corrupt(format!(
        "{}: unreadable committed positions",
        path.display()
    ))
}

fn slot_crc(seq: u64, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&seq.to_le_bytes());
    h.update(&(payload.len() as u32).to_le_bytes());
    h.update(payload);
    h.finalize()
}

fn encode_slot(seq: u64, payload: &[u8]) -> Option<Vec<u8>> {
    if (HEADER + payload.len()) as u64 > SLOT_BYTES {
        return None;
    }
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&slot_crc(seq, payload).to_le_bytes());
    out.extend_from_slice(payload);
    Some(out)
}

/// The slot at `at`, if it holds a whole, valid commit.
fn read_slot(file: &File, at: u64) -> Option<(u64, Positions)> {
    let mut header = [0u8; HEADER];
    file.read_exact_at(&mut header, at).ok()?;
    if &header[..4] != MAGIC {
        return None;
    }
    let seq = u64::from_le_bytes(header[4..12].try_into().ok()?);
    let len = u32::from_le_bytes(header[12..16].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(header[16..20].try_into().ok()?);
    if (HEADER + len) as u64 > SLOT_BYTES {
        return None;
    }
    let mut payload = vec![0u8; len];
    file.read_exact_at(&mut payload, at + HEADER as u64).ok()?;
    if slot_crc(seq, &payload) != crc {
        return None;
    }
    Some((seq, parse_lines(std::str::from_utf8(&payload).ok()?)?))
}

fn read_newest(file: &File, path: &Path) -> EmbeddedResult<(u64, Positions)> {
    [read_slot(file, 0), read_slot(file, SLOT_BYTES)]
        .into_iter()
        .flatten()
        .max_by_key(|(seq, _)| *seq)
        .ok_or_else(|| corrupt(path))
}

fn parse_lines(text: &str) -> Option<Positions> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let mut it = line.split(' ');
            let (Some(topic), Some(p), Some(o), None) =
                (it.next(), it.next(), it.next(), it.next())
            else {
                return None;
            };
            let tp = TopicPartition {
                topic: topic.to_string(),
                partition: p.parse().ok()?,
            };
            Some((tp, o.parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_survive_reopen_and_merge() {
        let d = tempfile::tempdir().unwrap();
        let tp = |t: &str, p| TopicPartition {
            topic: t.into(),
            partition: p,
        };
        let g = Groups::open(d.path().to_path_buf(), true).unwrap();
        g.commit(
            "risk engine/1",
            &[(tp("orders", 0), 5), (tp("orders", 1), 7)],
        )
        .unwrap();
        g.commit("risk engine/1", &[(tp("orders", 1), 9)]).unwrap();
        g.commit("other", &[(tp("orders", 0), 1)]).unwrap();
        drop(g);
        let g = Groups::open(d.path().to_path_buf(), true).unwrap();
        assert_eq!(g.committed("risk engine/1", &tp("orders", 0)), Some(5));
        assert_eq!(g.committed("risk engine/1", &tp("orders", 1)), Some(9));
        assert_eq!(g.committed("other", &tp("orders", 0)), Some(1));
        assert_eq!(g.committed("other", &tp("orders", 1)), None);
        assert_eq!(g.committed("nobody", &tp("orders", 0)), None);
    }

    #[test]
    fn a_torn_commit_leaves_the_previous_one() {
        let d = tempfile::tempdir().unwrap();
        let tp = TopicPartition {
            topic: "orders".into(),
            partition: 0,
        };
        let g = Groups::open(d.path().to_path_buf(), true).unwrap();
        for off in 1..=4 {
            g.commit("risk", &[(tp.clone(), off)]).unwrap();
        }
        drop(g);
        // Commit 4 is in slot 0 (the file was born with commit 0 there); tear it: the group
        // is back at commit 3.
        let path = d.path().join(format!("{}.positions", fsutil::hex(b"risk")));
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all_at(b"garbage", 12).unwrap();
        let g = Groups::open(d.path().to_path_buf(), true).unwrap();
        assert_eq!(g.committed("risk", &tp), Some(3));
        // Both slots torn is corruption, not "nothing committed"; unless the log runs without
        // fsync, where a power loss can do that, and the group starts over.
        drop(g);
        f.write_all_at(b"garbage", SLOT_BYTES + 12).unwrap();
        assert!(Groups::open(d.path().to_path_buf(), true).is_err());
        let g = Groups::open(d.path().to_path_buf(), false).unwrap();
        assert_eq!(g.committed("risk", &tp), None);
        g.commit("risk", &[(tp.clone(), 9)]).unwrap();
        drop(g);
        let g = Groups::open(d.path().to_path_buf(), true).unwrap();
        assert_eq!(g.committed("risk", &tp), Some(9));
    }

    #[test]
    fn files_of_the_earlier_format_are_read_then_replaced() {
        let d = tempfile::tempdir().unwrap();
        let legacy = d.path().join(format!("{}.offsets", fsutil::hex(b"venue")));
        std::fs::write(&legacy, "venue 0 17\nvenue 1 4\n").unwrap();
        let tp = |p| TopicPartition {
            topic: "venue".into(),
            partition: p,
        };
        let g = Groups::open(d.path().to_path_buf(), true).unwrap();
        assert_eq!(g.committed("venue", &tp(0)), Some(17));
        g.commit("venue", &[(tp(1), 9)]).unwrap();
        assert!(!legacy.exists());
        drop(g);
        let g = Groups::open(d.path().to_path_buf(), true).unwrap();
        assert_eq!(g.committed("venue", &tp(0)), Some(17));
        assert_eq!(g.committed("venue", &tp(1)), Some(9));
    }
}
