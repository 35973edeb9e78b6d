//! One partition of a topic: its segments and a cache of its newest records, as readers see them.

use super::record::StoredRecord;
use super::segment::{ReadSpan, Segment};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

pub(crate) struct Partition {
    pub topic: Arc<str>,
    pub id: u32,
    pub dir: PathBuf,
    state: Mutex<PartitionState>,
}

/// What readers see. Only the writer thread changes it, after records are durable.
pub(crate) struct PartitionState {
    /// Ascending by base offset; never empty.
    pub segments: Vec<Segment>,
    pub tail: TailCache,
}

impl PartitionState {
    /// The offset the next record will get.
    pub fn end(&self) -> u64 {
        self.segments.last().map_or(0, |s| s.next)
    }
}

/// How a read will be served.
pub(crate) enum ReadPlan {
    /// Nothing at or after the offset yet.
    Empty,
    /// From the tail cache.
    Cached(Vec<Arc<StoredRecord>>),
    /// From the segment files.
    Files(Vec<ReadSpan>),
}

impl Partition {
    pub fn new(topic: Arc<str>, id: u32, dir: PathBuf, state: PartitionState) -> Self {
        Partition {
            topic,
            id,
            dir,
            state: Mutex::new(state),
        }
    }

    pub fn state(&self) -> MutexGuard<'_, PartitionState> {
        // A panic while holding this lock cannot leave it half-changed in a way readers care
        // about (each change is a push), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn end(&self) -> u64 {
        self.state().end()
    }

    /// Decides how to read from `offset`; cheap, so it runs under the lock.
    pub fn plan_read(&self, offset: u64, max: usize) -> ReadPlan {
        let st = self.state();
        if offset >= st.end() || max == 0 {
            return ReadPlan::Empty;
        }
        if let Some(recs) = st.tail.from(offset, max) {
            return ReadPlan::Cached(recs);
        }
        let first = st
            .segments
            .partition_point(|s| s.base <= offset)
            .saturating_sub(1);
        let spans = st.segments[first..]
            .iter()
            .filter(|s| s.size > 0)
            .map(|s| ReadSpan {
                file: s.file.clone(),
                start: if s.base <= offset {
                    s.locate(offset)
                } else {
                    0
                },
                end: s.size,
            })
            .collect();
        ReadPlan::Files(spans)
    }
}

/// The newest records of a partition, kept in memory up to a byte budget, so consumers tailing
/// the log are served without touching the files.
pub(crate) struct TailCache {
    records: VecDeque<Arc<StoredRecord>>,
    bytes: usize,
    budget: usize,
}

impl TailCache {
    pub fn new(budget: usize) -> Self {
        TailCache {
            records: VecDeque::new(),
            bytes: 0,
            budget,
        }
    }

    /// Adds the newest record. The records it evicts go into `evicted`, for the caller to
    /// drop where it costs nothing: freeing one can mean freeing the event a reader decoded.
    pub fn push(&mut self, r: Arc<StoredRecord>, evicted: &mut Vec<Arc<StoredRecord>>) {
        if self.budget == 0 {
            return;
        }
        self.bytes += r.footprint();
        self.records.push_back(r);
        while self.bytes > self.budget && self.records.len() > 1 {
            if let Some(old) = self.records.pop_front() {
                self.bytes -= old.footprint();
                evicted.push(old);
            }
        }
    }

    /// Up to `max` records from `offset` on, if the cache reaches back that far.
    pub fn from(&self, offset: u64, max: usize) -> Option<Vec<Arc<StoredRecord>>> {
        let first = self.records.front()?.offset;
        if offset < first {
            return None;
        }
        let skip = (offset - first) as usize;
        Some(self.records.iter().skip(skip).take(max).cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(offset: u64, size: usize) -> Arc<StoredRecord> {
        Arc::new(StoredRecord {
            offset,
            timestamp_ms: 0,
            key: Default::default(),
            value: vec![0; size].into(),
            headers: Vec::new().into(),
            memo: Default::default(),
        })
    }

    #[test]
    fn tail_cache_keeps_the_newest_records_within_budget() {
        let mut c = TailCache::new(2000);
        let mut evicted = Vec::new();
        for o in 0..20 {
            c.push(rec(o, 100), &mut evicted);
        }
        assert_eq!(
            evicted.iter().map(|r| r.offset).collect::<Vec<_>>(),
            (0..15).collect::<Vec<_>>(),
            "handed back, oldest first"
        );
        // 364 bytes each (the value counts three times, for what readers decode): 5 fit.
        assert!(c.from(14, 10).is_none());
        let got = c.from(15, 10).unwrap();
        assert_eq!(
            got.iter().map(|r| r.offset).collect::<Vec<_>>(),
            (15..20).collect::<Vec<_>>()
        );
        assert_eq!(c.from(18, 1).unwrap()[0].offset, 18);
        assert!(c.from(20, 5).unwrap().is_empty());
    }

    #[test]
    fn a_disabled_cache_serves_nothing() {
        let mut c = TailCache::new(0);
        c.push(rec(0, 1), &mut Vec::new());
        assert!(c.from(0, 1).is_none());
    }
}
