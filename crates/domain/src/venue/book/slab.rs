//! Every live order of a book in one flat vector, addressed by `u32` slot, with a free list.
//!
//! Orders link into their price level's FIFO through `prev`/`next` slot indices, so resting,
//! moving and removing an order never allocates once the vector has grown to the book's size.

use crate::order::Side;
use serde::{Deserialize, Serialize};

/// "No slot": the end of a list.
pub const NIL: u32 = u32::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SlotState {
    Free,
    /// Linked into a price level.
    Resting,
    /// A stop order waiting for its trigger.
    Parked,
    /// Taking liquidity right now; in no level and no stop queue.
    Working,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Tif {
    Gtc,
    Gtd,
    Ioc,
    Fok,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Slot {
    pub id: u64,
    pub account: u64,
    /// Arrival order in this book; breaks ties between stops with the same trigger.
    pub seq: u64,
    /// Limit price in ticks (for a market order: its protection bound).
    pub price: i64,
    /// Stop price in ticks, for a parked stop.
    pub stop: i64,
    pub quantity: u64,
    pub filled: u64,
    /// Expiry in epoch milliseconds, for GTD.
    pub expire_at: i64,
    pub prev: u32,
    pub next: u32,
    pub side: Side,
    pub state: SlotState,
    pub tif: Tif,
    pub post_only: bool,
}

impl Slot {
    pub fn leaves(&self) -> u64 {
        self.quantity - self.filled
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Slab {
    slots: Vec<Slot>,
    free: u32,
}

impl Default for Slab {
    fn default() -> Self {
        Slab {
            slots: Vec::new(),
            free: NIL,
        }
    }
}

impl Slab {
    pub fn alloc(&mut self, slot: Slot) -> u32 {
        if self.free != NIL {
            let i = self.free;
            self.free = self.slots[i as usize].next;
            self.slots[i as usize] = slot;
            i
        } else {
            let i = u32::try_from(self.slots.len()).expect("more than 2^32 live orders in a book");
            self.slots.push(slot);
            i
        }
    }

    pub fn release(&mut self, i: u32) {
        let s = &mut self.slots[i as usize];
        s.state = SlotState::Free;
        s.next = self.free;
        self.free = i;
    }

    #[inline]
    pub fn get(&self, i: u32) -> &Slot {
        &self.slots[i as usize]
    }

    #[inline]
    pub fn get_mut(&mut self, i: u32) -> &mut Slot {
        &mut self.slots[i as usize]
    }

    /// Live (non-free) slots with their indices.
    pub fn live(&self) -> impl Iterator<Item = (u32, &Slot)> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.state != SlotState::Free)
            .map(|(i, s)| (i as u32, s))
    }

    pub fn reserve(&mut self, additional: usize) {
        self.slots.reserve(additional);
    }
}
