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
//! arrives), until the missing batch shows up or `patience` has passed (a real gap, which
//! Kafka has after transaction markers or compaction; it is then accepted, with a warning).
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
    /// When it was first seen, and when the partition was last fetched again.
    since: Instant,
    refetched: Instant,
    /// The first offset seen past it: where to go on if it turns out real.
    past: u64,
}

#[derive(Debug, Clone)]
pub(crate) struct Continuity {
    fetch_back: u64,
    /// How long a gap is refetched before it is accepted; `None` accepts gaps at once.
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
            match &mut w.gap {
                None => {
                    w.gap = Some(Gap {
                        since: now,
                        refetched: now,
                        past: offset,
                    });
                    return Verdict::Refetch(w.next.saturating_sub(self.fetch_back));
                }
                Some(g) if now.duration_since(g.since) >= patience => {
                    warn_real_gap(tp, w.next, offset, patience);
                }
                Some(g) => {
                    g.past = g.past.min(offset);
                    if now.duration_since(g.refetched) < REFETCH_EVERY {
                        return Verdict::Drop;
                    }
                    g.refetched = now;
                    return Verdict::Refetch(w.next.saturating_sub(self.fetch_back));
                }
            }
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
    /// the last), and those whose gap outlasted patience, which go on past it.
    pub fn due(&mut self, now: Instant) -> Vec<(TopicPartition, u64)> {
        let mut due = Vec::new();
        for (tp, w) in &mut self.parts {
            let Some(g) = &mut w.gap else { continue };
            let patience = self.patience.unwrap_or_default();
            if now.duration_since(g.since) >= patience {
                warn_real_gap(tp, w.next, g.past, patience);
                w.next = g.past;
                w.gap = None;
            } else if now.duration_since(g.refetched) >= REFETCH_EVERY {
                g.refetched = now;
            } else {
                continue;
            }
            due.push((tp.clone(), w.next.saturating_sub(self.fetch_back)));
        }
        due
    }
}

fn warn_real_gap(tp: &TopicPartition, missing_from: u64, next_found: u64, patience: Duration) {
    tracing::warn!(
        topic = %tp.topic,
        partition = tp.partition,
        missing_from,
        next_found,
        "kafka: offsets missing for {patience:?}; taking the gap as real"
    );
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
        // Past patience with nothing more come: go on from the first record seen past it.
        let t2 = t0 + Duration::from_secs(5);
        assert_eq!(c.due(t2), vec![(tp(), 164 - 63)]);
        assert!(!c.gaps_open());
        for o in 101..164 {
            assert_eq!(c.check(&tp(), o, t2), Verdict::Drop, "offset {o}");
        }
        assert_eq!(c.check(&tp(), 164, t2), Verdict::Deliver);
    }

    #[test]
    fn a_gap_that_lasts_past_patience_is_accepted() {
        let mut c = Continuity::new(0, Some(Duration::from_millis(100)));
        c.start_at(&tp(), 0);
        let t0 = Instant::now();
        assert_eq!(c.check(&tp(), 0, t0), Verdict::Deliver);
        assert_eq!(c.check(&tp(), 2, t0), Verdict::Refetch(1));
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!(c.check(&tp(), 2, t1), Verdict::Deliver);
        assert_eq!(c.check(&tp(), 3, t1), Verdict::Deliver);
        assert_eq!(
            c.check(&tp(), 5, t1),
            Verdict::Refetch(4),
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
