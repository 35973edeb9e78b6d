//! Keeps each partition's records dense and in order on brokers that do not guarantee it.
//!
//! Kafka serves a fetch from the record batch *holding* the asked offset and makes a batch
//! visible only once every earlier one is. tansu does neither (see the crate docs): it serves
//! batches that *start* at or after the asked offset, and it advances a partition's high
//! watermark before the appended batch is stored, so under concurrent appends a later batch
//! can be served while an earlier one is not yet visible. A consumer trusting either would
//! skip records for ever.
//!
//! [`Continuity`] knows the next offset wanted per partition. Fetches start
//! [`fetch_back`](Continuity::fetch_offset) records early, so the batch holding the wanted
//! offset is among those served, and what comes before it is dropped. A record past the
//! wanted offset is a gap: it is dropped and the partition fetched again from the wanted
//! offset, and again every [`REFETCH_EVERY`] (see [`Continuity::due`], also while no record
//! arrives), until the missing batch shows up, however long that takes: this log's topics are
//! neither compacted nor transactional, so an offset never lawfully goes missing, and skipping
//! one would lose accepted orders. Under heavy load tansu has taken longer than 5 s to store
//! such a batch. While a gap lasts, a warning is logged every `patience`.
//! With `fetch_back` 0 and no patience, every record is delivered as it comes.

use oms_ports::event_log::TopicPartition;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How often a partition with a gap is fetched again while the gap lasts.
pub(crate) const REFETCH_EVERY: Duration = Duration::from_millis(20);

/// What to do with a fetched record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Deliver,
    /// Already delivered, or fetched early on purpose, or past a gap being refetched.
    Drop,
    /// Past a gap: drop it and fetch the partition again from this offset.
    Refetch(u64),
}

#[derive(Debug, Clone)]
struct Wanted {
    next: u64,
    gap: Option<Gap>,
}

#[derive(Debug, Clone, Copy)]
struct Gap {
    /// When it was first seen, when the partition was last fetched again, and when it was
    /// last reported.
    since: Instant,
    refetched: Instant,
    warned: Instant,
    /// The first offset seen past it, for the report.
    past: u64,
}

impl Gap {
    fn warn_if_due(
        &mut self,
        tp: &TopicPartition,
        missing_from: u64,
        patience: Duration,
        now: Instant,
    ) {
        if now.duration_since(self.warned) < patience {
            return;
        }
        self.warned = now;
        tracing::warn!(
            topic = %tp.topic,
            partition = tp.partition,
            missing_from,
            next_found = self.past,
            waited_ms = now.duration_since(self.since).as_millis() as u64,
            "kafka: offsets still missing; waiting for them (nothing after them is delivered)"
        );
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Continuity {
    fetch_back: u64,
    /// `None` accepts gaps at once; otherwise gaps are waited for, and reported this often.
    patience: Option<Duration>,
    parts: HashMap<TopicPartition, Wanted>,
}

impl Continuity {
    pub fn new(fetch_back: u32, patience: Option<Duration>) -> Self {
        Continuity {
            fetch_back: u64::from(fetch_back),
            patience,
            parts: HashMap::new(),
        }
    }

    /// Whether this broker needs any of it; if not, start offsets need not be known.
    pub fn active(&self) -> bool {
        self.fetch_back > 0 || self.patience.is_some()
    }

    /// Where to start fetching so that the record at `next` is served.
    pub fn fetch_offset(&self, next: u64) -> u64 {
        next.saturating_sub(self.fetch_back)
    }

    /// The partition is (re)positioned: `next` is the first offset wanted. Returns where the
    /// fetch must start.
    pub fn start_at(&mut self, tp: &TopicPartition, next: u64) -> u64 {
        self.parts.insert(tp.clone(), Wanted { next, gap: None });
        self.fetch_offset(next)
    }

    pub fn forget(&mut self, tp: &TopicPartition) {
        self.parts.remove(tp);
    }

    pub fn check(&mut self, tp: &TopicPartition, offset: u64, now: Instant) -> Verdict {
        let Some(w) = self.parts.get_mut(tp) else {
            // Start not known (nothing committed, nothing sought): take what comes.
            self.parts.insert(
                tp.clone(),
                Wanted {
                    next: offset + 1,
                    gap: None,
                },
            );
            return Verdict::Deliver;
        };
        if offset < w.next {
            return Verdict::Drop;
        }
        if offset > w.next {
            let Some(patience) = self.patience else {
                w.next = offset + 1;
                return Verdict::Deliver;
            };
            let from = w.next.saturating_sub(self.fetch_back);
            let Some(g) = &mut w.gap else {
                w.gap = Some(Gap {
                    since: now,
                    refetched: now,
                    warned: now,
                    past: offset,
                });
                return Verdict::Refetch(from);
            };
            g.past = g.past.min(offset);
            g.warn_if_due(tp, w.next, patience, now);
            if now.duration_since(g.refetched) < REFETCH_EVERY {
                return Verdict::Drop;
            }
            g.refetched = now;
            return Verdict::Refetch(from);
        }
        w.next = offset + 1;
        w.gap = None;
        Verdict::Deliver
    }

    /// Whether some partition waits for missing records.
    pub fn gaps_open(&self) -> bool {
        self.parts.values().any(|w| w.gap.is_some())
    }

    /// Partitions to fetch again now, and from where: those whose gap was last refetched
    /// [`REFETCH_EVERY`] ago (a refetch answered before more records came would otherwise be
    /// the last).
    pub fn due(&mut self, now: Instant) -> Vec<(TopicPartition, u64)> {
        let patience = self.patience.unwrap_or_default();
        let mut due = Vec::new();
        for (tp, w) in &mut self.parts {
            let Some(g) = &mut w.gap else { continue };
            g.warn_if_due(tp, w.next, patience, now);
            if now.duration_since(g.refetched) >= REFETCH_EVERY {
                g.refetched = now;
                due.push((tp.clone(), w.next.saturating_sub(self.fetch_back)));
            }
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp() -> TopicPartition {
        TopicPartition {
            topic: "orders".into(),
            partition: 3,
        }
    }

    #[test]
    fn off_delivers_everything_as_it_comes() {
        let mut c = Continuity::new(0, None);
        assert!(!c.active());
        let now = Instant::now();
        assert_eq!(c.start_at(&tp(), 5), 5);
        assert_eq!(c.check(&tp(), 9, now), Verdict::Deliver);
        assert_eq!(c.check(&tp(), 10, now), Verdict::Deliver);
    }

    #[test]
    fn fetches_early_and_drops_what_precedes_the_wanted_offset() {
        let mut c = Continuity::new(63, Some(Duration::from_secs(5)));
        assert_eq!(c.start_at(&tp(), 100), 37);
        assert_eq!(
            c.start_at(&tp(), 10),
            0,
            "never before the partition's start"
        );
        let now = Instant::now();
        for o in 0..10 {
            assert_eq!(c.check(&tp(), o, now), Verdict::Drop, "offset {o}");
        }
        assert_eq!(c.check(&tp(), 10, now), Verdict::Deliver);
        assert_eq!(c.check(&tp(), 10, now), Verdict::Drop, "a repeat");
        assert_eq!(c.check(&tp(), 11, now), Verdict::Deliver);
    }

    #[test]
    fn a_gap_is_refetched_until_the_missing_records_come() {
        let mut c = Continuity::new(63, Some(Duration::from_secs(5)));
        c.start_at(&tp(), 200);
        let t0 = Instant::now();
        assert_eq!(c.check(&tp(), 200, t0), Verdict::Deliver);
        assert_eq!(
            c.check(&tp(), 264, t0),
            Verdict::Refetch(138),
            "201..264 not visible"
        );
        assert_eq!(c.check(&tp(), 265, t0), Verdict::Drop, "no refetch storm");
        let later = t0 + REFETCH_EVERY;
        assert_eq!(c.check(&tp(), 264, later), Verdict::Refetch(138));
        for o in 138..=200 {
            assert_eq!(c.check(&tp(), o, later), Verdict::Drop);
        }
        for o in 201..=265 {
            assert_eq!(c.check(&tp(), o, later), Verdict::Deliver, "offset {o}");
        }
    }

    #[test]
    fn a_gap_is_refetched_while_no_record_comes() {
        let mut c = Continuity::new(63, Some(Duration::from_secs(5)));
        c.start_at(&tp(), 100);
        let t0 = Instant::now();
        assert!(!c.gaps_open());
        assert!(c.due(t0).is_empty());
        assert_eq!(c.check(&tp(), 164, t0), Verdict::Refetch(37));
        assert_eq!(c.check(&tp(), 165, t0), Verdict::Drop);
        assert!(c.gaps_open());
        assert!(c.due(t0).is_empty(), "just refetched");
        let t1 = t0 + REFETCH_EVERY;
        assert_eq!(c.due(t1), vec![(tp(), 37)]);
        assert!(c.due(t1).is_empty(), "once per interval");
        // Long past patience, still refetched from the missing offset.
        let t2 = t0 + Duration::from_secs(60);
        assert_eq!(c.due(t2), vec![(tp(), 37)]);
        assert!(c.gaps_open());
        for o in 37..100 {
            assert_eq!(c.check(&tp(), o, t2), Verdict::Drop, "offset {o}");
        }
        for o in 100..=165 {
            assert_eq!(c.check(&tp(), o, t2), Verdict::Deliver, "offset {o}");
        }
        assert!(!c.gaps_open());
    }

    #[test]
    fn a_gap_is_never_skipped_however_long_it_lasts() {
        let mut c = Continuity::new(0, Some(Duration::from_millis(100)));
        c.start_at(&tp(), 0);
        let t0 = Instant::now();
        assert_eq!(c.check(&tp(), 0, t0), Verdict::Deliver);
        assert_eq!(c.check(&tp(), 2, t0), Verdict::Refetch(1));
        let t1 = t0 + Duration::from_secs(3600);
        assert_eq!(c.check(&tp(), 2, t1), Verdict::Refetch(1));
        assert_eq!(c.check(&tp(), 3, t1), Verdict::Drop);
        assert_eq!(c.check(&tp(), 1, t1), Verdict::Deliver, "it came at last");
        assert_eq!(c.check(&tp(), 2, t1), Verdict::Deliver);
        assert_eq!(
            c.check(&tp(), 5, t1),
            Verdict::Refetch(3),
            "a new gap starts anew"
        );
    }

    #[test]
    fn an_unknown_start_takes_the_first_record() {
        let mut c = Continuity::new(63, Some(Duration::from_secs(5)));
        let now = Instant::now();
        assert_eq!(c.check(&tp(), 7, now), Verdict::Deliver);
        assert_eq!(c.check(&tp(), 7, now), Verdict::Drop);
        c.forget(&tp());
        assert_eq!(c.check(&tp(), 3, now), Verdict::Deliver);
    }
}
