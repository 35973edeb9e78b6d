//! The writer's queue. One queue keeps every record in the order it was queued; what differs
//! is who wakes the writer. A record someone waits for (a claim, which must be synced, or any
//! record with a reply) wakes it at once. A record written behind (a completion) wakes it only
//! if it has been idle for a while: it goes out with the next waited-for group, or about
//! [`BEHIND_DELAY`] after it was queued (plus whatever write is under way). Under load that
//! saves a wake-up and a thread switch per request; in `perf` those wake-ups were most of the
//! journal's cost.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// How long a record written behind may wait for company before it is written alone.
pub(super) const BEHIND_DELAY: Duration = Duration::from_millis(10);

/// Something to write, and whether its queuing should wake the writer.
pub(super) trait Urgency {
    fn urgent(&self) -> bool;
}

pub(super) struct Inbox<T> {
    state: Mutex<State<T>>,
    ready: Condvar,
    /// Records written behind wake the writer once this many are waiting; a group takes at
    /// most this many.
    max_group: usize,
}

/// What the writer is doing, for whoever queues a record.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Writer {
    Busy,
    /// Waiting at most [`BEHIND_DELAY`]: it will look at the queue by then anyway.
    Napping,
    /// Waiting with no deadline, the queue having stayed empty for [`BEHIND_DELAY`].
    Sleeping,
}

struct State<T> {
    items: Vec<T>,
    /// How many of `items` are urgent.
    urgent: usize,
    writer: Writer,
    closed: bool,
}

/// Queuing after [`Inbox::close`].
#[derive(Debug)]
pub(super) struct Closed;

impl<T: Urgency> Inbox<T> {
    pub(super) fn new(max_group: usize) -> Self {
        Inbox {
            state: Mutex::new(State {
                items: Vec::new(),
                urgent: 0,
                writer: Writer::Busy,
                closed: false,
            }),
            ready: Condvar::new(),
            max_group,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn push(&self, item: T) -> Result<(), Closed> {
        let urgent = item.urgent();
        let mut s = self.lock();
        if s.closed {
            return Err(Closed);
        }
        s.items.push(item);
        s.urgent += usize::from(urgent);
        let wake = match s.writer {
            Writer::Busy => false,
            Writer::Napping => s.urgent > 0 || s.items.len() >= self.max_group,
            Writer::Sleeping => true,
        };
        if wake {
            s.writer = Writer::Busy;
            drop(s);
            self.ready.notify_one();
        }
        Ok(())
    }

    /// Moves the next group (at most `max_group` records, oldest first) into `group` (empty
    /// on entry), blocking until there is one; `false` once closed and drained.
    pub(super) fn take(&self, group: &mut Vec<T>) -> bool {
        let mut s = self.lock();
        loop {
            let due = s.urgent > 0 || s.closed || s.items.len() >= self.max_group;
            if due && !s.items.is_empty() {
                break;
            }
            if s.closed {
                return false;
            }
            // Records written behind, or none yet: they get [`BEHIND_DELAY`] to gather company.
            s.writer = Writer::Napping;
            let (guard, waited) = self
                .ready
                .wait_timeout(s, BEHIND_DELAY)
                .unwrap_or_else(|p| p.into_inner());
            s = guard;
            if waited.timed_out() && !s.items.is_empty() {
                break;
            }
            if waited.timed_out() && s.items.is_empty() && !s.closed {
                // Quiet: the next record of any kind wakes the writer.
                s.writer = Writer::Sleeping;
                s = self.ready.wait(s).unwrap_or_else(|p| p.into_inner());
            }
            s.writer = Writer::Busy;
        }
        s.writer = Writer::Busy;
        if s.items.len() > self.max_group {
            let rest = s.items.split_off(self.max_group);
            *group = std::mem::replace(&mut s.items, rest);
        } else {
            std::mem::swap(group, &mut s.items);
        }
        s.urgent -= group.iter().filter(|i| i.urgent()).count();
        true
    }

    /// No more items; the writer drains what is queued and then `take` returns `false`.
    pub(super) fn close(&self) {
        let mut s = self.lock();
        s.closed = true;
        s.writer = Writer::Busy;
        drop(s);
        self.ready.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Instant;

    struct Item(u32, bool);
    impl Urgency for Item {
        fn urgent(&self) -> bool {
            self.1
        }
    }

    #[test]
    fn keeps_the_order_queued_and_an_urgent_item_takes_those_before_it() {
        let inbox = Inbox::new(100);
        inbox.push(Item(1, false)).unwrap();
        inbox.push(Item(2, false)).unwrap();
        inbox.push(Item(3, true)).unwrap();
        let mut group = Vec::new();
        let started = Instant::now();
        assert!(inbox.take(&mut group));
        assert!(
            started.elapsed() < BEHIND_DELAY,
            "an urgent item does not wait"
        );
        assert_eq!(group.iter().map(|i| i.0).collect::<Vec<_>>(), [1, 2, 3]);
    }

    #[test]
    fn items_written_behind_wait_for_company_then_go_alone() {
        let inbox = Inbox::new(100);
        inbox.push(Item(1, false)).unwrap();
        let mut group = Vec::new();
        let started = Instant::now();
        assert!(inbox.take(&mut group));
        assert!(started.elapsed() >= BEHIND_DELAY);
        assert_eq!(group.len(), 1);
    }

    /// Runs a writer on `inbox` that hands each group over `tx`, with the time it was taken.
    fn writer(inbox: Arc<Inbox<Item>>) -> std::sync::mpsc::Receiver<(Vec<u32>, Instant)> {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut group = Vec::new();
            while inbox.take(&mut group) {
                let ids = group.drain(..).map(|i: Item| i.0).collect();
                if tx.send((ids, Instant::now())).is_err() {
                    break;
                }
            }
        });
        rx
    }

    #[test]
    fn a_sleeping_writer_writes_a_lone_record_behind_within_the_delay() {
        let inbox = Arc::new(Inbox::new(100));
        let groups = writer(inbox.clone());
        // Long enough for the writer to go from napping to sleeping.
        std::thread::sleep(BEHIND_DELAY * 5);
        let queued = Instant::now();
        inbox.push(Item(1, false)).unwrap();
        let (ids, at) = groups
            .recv_timeout(Duration::from_secs(10))
            .expect("written without any other record or a close");
        assert_eq!(ids, [1]);
        assert!(
            at.duration_since(queued) >= BEHIND_DELAY,
            "it waited for company"
        );
        inbox.close();
    }

    #[test]
    fn groups_keep_the_order_and_hold_at_most_max_group() {
        let inbox = Arc::new(Inbox::new(3));
        for n in 1..=7 {
            inbox.push(Item(n, n == 5)).unwrap();
        }
        let groups = writer(inbox.clone());
        let mut seen = Vec::new();
        while seen.len() < 7 {
            let (ids, _) = groups.recv_timeout(Duration::from_secs(10)).unwrap();
            assert!(!ids.is_empty() && ids.len() <= 3, "{ids:?}");
            seen.extend(ids);
        }
        assert_eq!(
            seen,
            [1, 2, 3, 4, 5, 6, 7],
            "nothing lost, nothing reordered"
        );
        inbox.close();
        assert!(inbox.push(Item(8, true)).is_err(), "closed");
    }
}
