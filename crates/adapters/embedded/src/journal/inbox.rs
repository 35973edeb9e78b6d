//! The writer's queue. One queue keeps every record in the order it was queued; what differs
//! is who wakes the writer. A record someone waits for (a claim, which must be synced, or any
//! record with a reply) wakes it at once. A record written behind (a completion) does not: it
//! goes out with the next waited-for group, or after [`BEHIND_DELAY`] if none comes. Under
//! load that saves a wake-up and a thread switch per request; in `perf` those wake-ups were
//! most of the journal's cost.

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
    /// Records written behind wake the writer once this many are waiting.
    wake_at: usize,
}

struct State<T> {
    items: Vec<T>,
    /// An urgent item is among `items`.
    urgent: bool,
    /// The writer is waiting: only then does queuing an item need a wake-up.
    idle: bool,
    closed: bool,
}

/// Queuing after [`Inbox::close`].
#[derive(Debug)]
pub(super) struct Closed;

impl<T: Urgency> Inbox<T> {
    pub(super) fn new(wake_at: usize) -> Self {
        Inbox {
            state: Mutex::new(State {
                items: Vec::new(),
                urgent: false,
                idle: false,
                closed: false,
            }),
            ready: Condvar::new(),
            wake_at,
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
        s.urgent |= urgent;
        let wake = s.idle && (s.urgent || s.items.len() >= self.wake_at);
        if wake {
            s.idle = false;
            drop(s);
            self.ready.notify_one();
        }
        Ok(())
    }

    /// Moves the next group into `group` (empty on entry), blocking until there is one;
    /// `false` once closed and drained.
    pub(super) fn take(&self, group: &mut Vec<T>) -> bool {
        let mut s = self.lock();
        loop {
            let due = s.urgent || s.closed || s.items.len() >= self.wake_at;
            if due && !s.items.is_empty() {
                break;
            }
            if s.closed {
                return false;
            }
            s.idle = true;
            if s.items.is_empty() {
                s = self.ready.wait(s).unwrap_or_else(|p| p.into_inner());
            } else {
                // Only records written behind: give them a while to gather company.
                s = self
                    .ready
                    .wait_timeout(s, BEHIND_DELAY)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
                if !s.items.is_empty() {
                    s.idle = false;
                    break;
                }
            }
            s.idle = false;
        }
        std::mem::swap(group, &mut s.items);
        s.urgent = false;
        true
    }

    /// No more items; the writer drains what is queued and then `take` returns `false`.
    pub(super) fn close(&self) {
        let mut s = self.lock();
        s.closed = true;
        s.idle = false;
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

    #[test]
    fn a_waiting_writer_wakes_for_an_urgent_item_or_a_full_group_only() {
        let inbox = Arc::new(Inbox::new(3));
        let writer = {
            let inbox = inbox.clone();
            std::thread::spawn(move || {
                let mut groups = Vec::new();
                let mut group = Vec::new();
                while inbox.take(&mut group) {
                    groups.push(group.drain(..).map(|i: Item| i.0).collect::<Vec<_>>());
                }
                groups
            })
        };
        std::thread::sleep(Duration::from_millis(20));
        inbox.push(Item(1, true)).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        for n in 2..=4 {
            inbox.push(Item(n, false)).unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
        inbox.push(Item(5, false)).unwrap();
        inbox.close();
        assert!(inbox.push(Item(6, true)).is_err(), "closed");
        let groups = writer.join().unwrap();
        assert_eq!(
            groups.concat(),
            [1, 2, 3, 4, 5],
            "nothing lost, nothing reordered"
        );
        assert_eq!(groups[0], [1]);
    }
}
