//! Notices partitions of a group that no member consumes, on brokers that can leave them so.
//!
//! tansu 0.6 can keep a dead member's partitions from everyone (see the crate docs, "On
//! tansu"): the group stays in its generation and the survivors keep their old assignments. A
//! member cannot see the others' assignments, but it can see the symptom: a partition it does
//! not own, holding records past the group's committed position, whose committed position has
//! not moved for a long time. [`OrphanWatch`] tracks that from periodic observations; when a
//! partition has been still for [`OrphanWatch::after`], the consumer leaves the group and joins
//! it again as a new member, which makes the broker form a new generation and assign every
//! partition. It joins again only once the leave has gone through (`KafkaConsumer`'s
//! `watch_orphans`): librdkafka folds an unsubscribe and a subscribe made during a rebalance
//! into a rejoin under the same member id, which changes nothing on tansu.
//!
//! A group that has committed nothing anywhere is not watched (it never commits, so it cannot
//! show progress), and every clock starts over when this member's partitions move, since a
//! partition's new owner may restore state before it commits.
//!
//! On a healthy broker a partition is still that long only if its owner is stuck without
//! committing, and then the rejoin costs one rebalance and changes nothing else: every stage
//! is at-least-once and idempotent. It is off on Kafka.

use oms_ports::event_log::TopicPartition;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// One partition not owned by this member, as seen by one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Seen {
    pub tp: TopicPartition,
    /// The group's committed position, if any.
    pub committed: Option<u64>,
    /// Whether the partition holds records past that position (past its start, when the
    /// group never committed it).
    pub lagging: bool,
}

/// Tracks how long each partition owned elsewhere has been still while holding records.
#[derive(Debug)]
pub(crate) struct OrphanWatch {
    after: Duration,
    every: Duration,
    next_check: Instant,
    /// Lagging partitions not owned here: the committed position last seen, and since when
    /// it has not moved.
    still: BTreeMap<TopicPartition, (Option<u64>, Instant)>,
    /// The consumer's rebalance count at the last observation: partitions that moved have new
    /// owners, who may be restoring state before they commit, so every clock starts over.
    rebalances: u64,
}

impl OrphanWatch {
    /// A watch that reports partitions still for `after`, checking four times within it (at
    /// most every 5 s, at least every 250 ms).
    pub(crate) fn new(after: Duration, now: Instant) -> Self {
        let every = (after / 4).clamp(Duration::from_millis(250), Duration::from_secs(5));
        OrphanWatch {
            after,
            every,
            next_check: now + every,
            still: BTreeMap::new(),
            rebalances: 0,
        }
    }

    pub(crate) fn after(&self) -> Duration {
        self.after
    }

    /// Whether a check is due; if so, the next one is scheduled.
    pub(crate) fn due(&mut self, now: Instant) -> bool {
        if now < self.next_check {
            return false;
        }
        self.next_check = now + self.every;
        true
    }

    /// Takes one check's observations of the partitions not owned here (a partition missing
    /// from `seen` is owned here now), made with the consumer's rebalance count at
    /// `rebalances`, and returns those still for at least `after`.
    pub(crate) fn observe(
        &mut self,
        now: Instant,
        rebalances: u64,
        seen: &[Seen],
    ) -> Vec<TopicPartition> {
        if rebalances != self.rebalances {
            self.rebalances = rebalances;
            self.still.clear();
        }
        let mut still = BTreeMap::new();
        for s in seen.iter().filter(|s| s.lagging) {
            let since = match self.still.get(&s.tp) {
                Some(&(committed, since)) if committed == s.committed => since,
                _ => now,
            };
            still.insert(s.tp.clone(), (s.committed, since));
        }
        self.still = still;
        self.still
            .iter()
            .filter(|(_, (_, since))| now.duration_since(*since) >= self.after)
            .map(|(tp, _)| tp.clone())
            .collect()
    }

    /// Starts over after this member rejoined: the group gets `after` to form again before
    /// anything counts as still.
    pub(crate) fn restart(&mut self, now: Instant) {
        self.still.clear();
        self.next_check = now + self.after;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(p: u32) -> TopicPartition {
        TopicPartition {
            topic: "orders".into(),
            partition: p,
        }
    }

    fn seen(p: u32, committed: Option<u64>, lagging: bool) -> Seen {
        Seen {
            tp: tp(p),
            committed,
            lagging,
        }
    }

    const AFTER: Duration = Duration::from_secs(20);

    #[test]
    fn a_lagging_partition_whose_position_never_moves_is_reported_after_the_delay() {
        let t0 = Instant::now();
        let mut w = OrphanWatch::new(AFTER, t0);
        assert!(w.observe(t0, 0, &[seen(2, Some(10), true)]).is_empty());
        assert!(w
            .observe(t0 + AFTER / 2, 0, &[seen(2, Some(10), true)])
            .is_empty());
        assert_eq!(
            w.observe(t0 + AFTER, 0, &[seen(2, Some(10), true)]),
            [tp(2)]
        );
    }

    #[test]
    fn a_moving_position_a_caught_up_partition_or_one_owned_here_starts_over() {
        let t0 = Instant::now();
        let mut w = OrphanWatch::new(AFTER, t0);
        w.observe(
            t0,
            0,
            &[
                seen(1, Some(5), true),
                seen(2, None, true),
                seen(3, Some(7), true),
            ],
        );
        // 1 moved, 2 caught up, 3 is owned here now (not seen).
        let half = t0 + AFTER / 2;
        w.observe(half, 0, &[seen(1, Some(6), true), seen(2, None, false)]);
        let later = t0 + AFTER;
        let at_delay = [
            seen(1, Some(6), true),
            seen(2, None, true),
            seen(3, Some(7), true),
        ];
        assert!(w.observe(later, 0, &at_delay).is_empty());
        assert_eq!(w.observe(half + AFTER, 0, &at_delay), [tp(1)]);
        assert_eq!(
            w.observe(later + AFTER, 0, &at_delay),
            [tp(1), tp(2), tp(3)]
        );
    }

    #[test]
    fn a_rebalance_starts_every_clock_over() {
        let t0 = Instant::now();
        let mut w = OrphanWatch::new(AFTER, t0);
        let still = [seen(2, Some(10), true)];
        w.observe(t0, 0, &still);
        // Partition 2 moved to a new owner, restoring before it commits.
        assert!(w.observe(t0 + AFTER, 1, &still).is_empty());
        assert!(w
            .observe(t0 + AFTER * 2 - Duration::from_millis(1), 1, &still)
            .is_empty());
        assert_eq!(w.observe(t0 + AFTER * 2, 1, &still), [tp(2)]);
    }

    #[test]
    fn checks_are_spaced_and_a_rejoin_gives_the_group_the_whole_delay() {
        let t0 = Instant::now();
        let mut w = OrphanWatch::new(AFTER, t0);
        assert!(!w.due(t0));
        assert!(w.due(t0 + Duration::from_secs(5)));
        assert!(!w.due(t0 + Duration::from_secs(6)));
        w.observe(t0, 0, &[seen(0, None, true)]);
        let t1 = t0 + Duration::from_secs(6);
        w.restart(t1);
        assert!(!w.due(t1 + AFTER - Duration::from_millis(1)));
        assert!(w.due(t1 + AFTER));
        assert!(w.observe(t1 + AFTER, 0, &[seen(0, None, true)]).is_empty());
    }
}
