//! Order ids: time-ordered u64s, unique across ingestion instances.
//!
//! Layout: `(ms since 2024-01-01) << 22 | instance (10 bits) << 12 | sequence (12 bits)`.
//! Within one instance ids strictly increase: when more than 4096 ids are asked for in one
//! millisecond the generator borrows the next millisecond, and a clock that steps back is
//! ignored (the generator never goes below what it already issued).

use std::sync::atomic::{AtomicU64, Ordering};
use thiserror::Error;

use oms_domain::ids::OrderId;

pub const ID_EPOCH_MS: i64 = OrderId::EPOCH_MS;
pub const INSTANCE_BITS: u32 = 10;
pub const SEQUENCE_BITS: u32 = 12;
// The domain reads an id's time from the same layout.
const _: () = assert!(INSTANCE_BITS + SEQUENCE_BITS == OrderId::TIME_SHIFT);
pub const MAX_INSTANCE: u16 = (1 << INSTANCE_BITS) - 1;
const SEQUENCE_MASK: u64 = (1 << SEQUENCE_BITS) - 1;

#[derive(Debug, Error, PartialEq, Eq)]
#[error("instance id {0} is out of range 0..={MAX_INSTANCE}")]
pub struct InstanceOutOfRange(pub u16);

/// Hands out order ids (and amend ids). Lock-free; cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct OrderIdGenerator {
    instance: u64,
    /// `millis << 12 | sequence` of the last id issued. Adding one carries a wrapped sequence
    /// into the next millisecond, which is exactly the "borrow" we want.
    last: AtomicU64,
}

impl OrderIdGenerator {
    pub fn new(instance: u16) -> Result<Self, InstanceOutOfRange> {
        if instance > MAX_INSTANCE {
            return Err(InstanceOutOfRange(instance));
        }
        Ok(OrderIdGenerator {
            instance: u64::from(instance),
            last: AtomicU64::new(0),
        })
    }

    /// A generator that only issues ids above `floor`'s millisecond, whatever the clock says.
    /// Pass the largest order id known at start-up to stay increasing across restarts even if
    /// the wall clock was set back meanwhile.
    pub fn with_floor(instance: u16, floor: u64) -> Result<Self, InstanceOutOfRange> {
        let g = Self::new(instance)?;
        let floor_ms = floor >> (INSTANCE_BITS + SEQUENCE_BITS);
        g.last
            .store(((floor_ms + 1) << SEQUENCE_BITS) - 1, Ordering::Relaxed);
        Ok(g)
    }

    pub fn instance(&self) -> u16 {
        self.instance as u16
    }

    /// The next id, reading the wall clock.
    pub fn next_id(&self) -> u64 {
        self.next_at(crate::ingestion::clock::now().millis())
    }

    /// The next id as if the clock read `unix_ms`.
    pub fn next_at(&self, unix_ms: i64) -> u64 {
        let clock = ((unix_ms - ID_EPOCH_MS).max(0) as u64) << SEQUENCE_BITS;
        let mut last = self.last.load(Ordering::Relaxed);
        loop {
            let next = clock.max(last + 1);
            match self
                .last
                .compare_exchange_weak(last, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return self.compose(next),
                Err(seen) => last = seen,
            }
        }
    }

    fn compose(&self, state: u64) -> u64 {
        let ms = state >> SEQUENCE_BITS;
        let seq = state & SEQUENCE_MASK;
        (ms << (INSTANCE_BITS + SEQUENCE_BITS)) | (self.instance << SEQUENCE_BITS) | seq
    }
}

/// The parts of an id, for logs and tests.
pub fn decompose(id: u64) -> (i64, u16, u16) {
    let ms = OrderId(id).issued_at().millis();
    let instance = ((id >> SEQUENCE_BITS) & u64::from(MAX_INSTANCE)) as u16;
    let seq = (id & SEQUENCE_MASK) as u16;
    (ms, instance, seq)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::Arc;

    const T0: i64 = 1_764_057_600_000; // 2025-11-25T08:00:00Z

    #[test]
    fn layout_carries_time_instance_and_sequence() {
        let g = OrderIdGenerator::new(5).unwrap();
        let a = g.next_at(T0);
        let b = g.next_at(T0);
        assert_eq!(decompose(a), (T0, 5, 0));
        assert_eq!(decompose(b), (T0, 5, 1));
        assert_eq!(decompose(g.next_at(T0 + 7)), (T0 + 7, 5, 0));
    }

    #[test]
    fn instance_out_of_range_is_refused() {
        assert_eq!(
            OrderIdGenerator::new(1024).unwrap_err(),
            InstanceOutOfRange(1024)
        );
        assert!(OrderIdGenerator::new(MAX_INSTANCE).is_ok());
    }

    #[test]
    fn sequence_wrap_borrows_the_next_millisecond() {
        let g = OrderIdGenerator::new(1).unwrap();
        let ids: Vec<u64> = (0..4097).map(|_| g.next_at(T0)).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(decompose(ids[4095]), (T0, 1, 4095));
        assert_eq!(decompose(ids[4096]), (T0 + 1, 1, 0));
        // The clock catching up to the borrowed millisecond does not reuse it.
        assert_eq!(decompose(g.next_at(T0 + 1)), (T0 + 1, 1, 1));
    }

    #[test]
    fn clock_going_backwards_never_lowers_ids() {
        let g = OrderIdGenerator::new(3).unwrap();
        let a = g.next_at(T0 + 1000);
        let b = g.next_at(T0);
        let c = g.next_at(T0 - 60_000);
        assert!(a < b && b < c, "{a} {b} {c}");
        assert_eq!(decompose(c).1, 3);
    }

    #[test]
    fn floor_keeps_ids_increasing_across_restarts() {
        let before = OrderIdGenerator::new(2).unwrap();
        let last = (0..10).map(|_| before.next_at(T0)).last().unwrap();
        // Restart with a clock one minute behind.
        let after = OrderIdGenerator::with_floor(2, last).unwrap();
        let next = after.next_at(T0 - 60_000);
        assert!(next > last, "{next} <= {last}");
        // Ids of another instance in the same millisecond do not collide.
        let other = OrderIdGenerator::with_floor(7, last).unwrap();
        assert_ne!(other.next_at(T0 - 60_000), next);
    }

    #[test]
    fn concurrent_callers_get_unique_increasing_ids() {
        let g = Arc::new(OrderIdGenerator::new(9).unwrap());
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let g = g.clone();
                std::thread::spawn(move || (0..5000).map(|_| g.next_id()).collect::<Vec<_>>())
            })
            .collect();
        let mut all = HashSet::new();
        for h in handles {
            let ids = h.join().unwrap();
            assert!(ids.windows(2).all(|w| w[0] < w[1]));
            for id in ids {
                assert!(all.insert(id), "duplicate id {id}");
            }
        }
        assert_eq!(all.len(), 20_000);
    }
}
