//! The topics file (`topics.meta`): one line per topic, `name partitions`, replaced atomically.

use super::fsutil;
use crate::error::{EmbeddedError, EmbeddedResult};
use std::collections::BTreeMap;
use std::path::Path;

pub(crate) const FILE: &str = "topics.meta";

pub(crate) fn load(dir: &Path) -> EmbeddedResult<BTreeMap<String, u32>> {
    let path = dir.join(FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(EmbeddedError::io(format!("reading {}", path.display()), e)),
    };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let bad = || EmbeddedError::Corrupt(format!("{}: bad line {line:?}", path.display()));
            let (name, n) = line.split_once(' ').ok_or_else(bad)?;
            let n: u32 = n.parse().map_err(|_| bad())?;
            if !oms_ports::event_log::valid_topic_name(name) || n == 0 {
                return Err(bad());
            }
            Ok((name.to_string(), n))
        })
        .collect()
}

pub(crate) fn store(dir: &Path, topics: &BTreeMap<String, u32>, fsync: bool) -> EmbeddedResult<()> {
    let text: String = topics.iter().map(|(t, n)| format!("{t} {n}\n")).collect();
    let path = dir.join(FILE);
    fsutil::write_atomic(&path, text.as_bytes(), fsync)
        .map_err(|e| EmbeddedError::io(format!("writing {}", path.display()), e))
}
