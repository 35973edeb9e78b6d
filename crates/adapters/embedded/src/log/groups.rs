//! Committed positions of consumer groups: one small file per group, `topic partition offset`
//! per line, replaced atomically (write a temporary file, sync, rename, sync the directory).

use super::fsutil;
use crate::error::{EmbeddedError, EmbeddedResult};
use oms_ports::event_log::TopicPartition;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub(crate) type Positions = BTreeMap<TopicPartition, u64>;

pub(crate) struct Groups {
    dir: PathBuf,
    fsync: bool,
    /// Held across the file write, so two commits of one group cannot interleave.
    committed: Mutex<HashMap<String, Positions>>,
}

impl Groups {
    pub fn open(dir: PathBuf, fsync: bool) -> EmbeddedResult<Self> {
        let io_err = |e| EmbeddedError::io(format!("reading {}", dir.display()), e);
        std::fs::create_dir_all(&dir).map_err(io_err)?;
        let mut committed = HashMap::new();
        for entry in std::fs::read_dir(&dir).map_err(io_err)? {
            let entry = entry.map_err(io_err)?;
            let name = entry.file_name();
            let Some(group) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".offsets"))
                .and_then(fsutil::unhex)
                .and_then(|b| String::from_utf8(b).ok())
            else {
                continue; // temporary files of an interrupted commit, or foreign files
            };
            committed.insert(group, parse(&entry.path())?);
        }
        Ok(Groups {
            dir,
            fsync,
            committed: Mutex::new(committed),
        })
    }

    pub fn committed(&self, group: &str, tp: &TopicPartition) -> Option<u64> {
        self.lock().get(group).and_then(|p| p.get(tp)).copied()
    }

    /// Durably merges `positions` into the group's committed positions. Blocking.
    pub fn commit(&self, group: &str, positions: &[(TopicPartition, u64)]) -> EmbeddedResult<()> {
        let mut all = self.lock();
        let mut next = all.get(group).cloned().unwrap_or_default();
        for (tp, off) in positions {
            next.insert(tp.clone(), *off);
        }
        let text: String = next
            .iter()
            .map(|(tp, off)| format!("{} {} {off}\n", tp.topic, tp.partition))
            .collect();
        let path = self.path(group);
        fsutil::write_atomic(&path, text.as_bytes(), self.fsync)
            .map_err(|e| EmbeddedError::io(format!("writing {}", path.display()), e))?;
        all.insert(group.to_string(), next);
        Ok(())
    }

    fn path(&self, group: &str) -> PathBuf {
        self.dir
            .join(format!("{}.offsets", fsutil::hex(group.as_bytes())))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Positions>> {
        self.committed.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn parse(path: &Path) -> EmbeddedResult<Positions> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| EmbeddedError::io(format!("reading {}", path.display()), e))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let bad = || EmbeddedError::Corrupt(format!("{}: bad line {line:?}", path.display()));
            let mut it = line.split(' ');
            let (Some(topic), Some(p), Some(o), None) =
                (it.next(), it.next(), it.next(), it.next())
            else {
                return Err(bad());
            };
            let tp = TopicPartition {
                topic: topic.to_string(),
                partition: p.parse().map_err(|_| bad())?,
            };
            Ok((tp, o.parse().map_err(|_| bad())?))
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
}
