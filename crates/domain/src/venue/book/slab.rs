//! Every live order of a book in flat vectors, addressed by `u32` slot, with a free list.
//!
//! Orders link into their price level's FIFO through `prev`/`next` slot indices, so resting,
//! moving and removing an order never allocates once the vectors have grown to the book's size.
//!
//! One slot is split over three parallel vectors by how hot each part is: the order itself
//! ([`Slot`], read on every match and cancel), its FIFO links ([`Link`], 8 bytes, so that the
//! neighbours touched by an unlink sit in a small array that stays in cache) and what only stops
//! and GTD orders need ([`Aux`], never touched for the others).

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
    /// Limit price in ticks (for a market order: its protection bound).
    pub price: i64,
    pub quantity: u64,
    pub filled: u64,
    pub side: Side,
    pub state: SlotState,
    pub tif: Tif,
    pub post_only: bool,
}

/// A slot's place in its level's FIFO (or, for a free slot, in the free list).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Link {
    pub prev: u32,
    pub next: u32,
}

/// What only stops and GTD orders use; all zero for other orders and free slots (their `seq`
/// is never 0, which is how the slab knows whether there is anything to clear).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Aux {
    /// Arrival order in this book; breaks ties between stops with the same trigger.
    pub seq: u64,
    /// Stop price in ticks, for a parked stop.
    pub stop: i64,
    /// Expiry in epoch milliseconds, for GTD.
    pub expire_at: i64,
}

impl Slot {
    pub fn leaves(&self) -> u64 {
        self.quantity - self.filled
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Slab {
    slots: Vec<Slot>,
    links: Vec<Link>,
    aux: Vec<Aux>,
    free: u32,
}

impl Default for Slab {
    fn default() -> Self {
        Slab {
            slots: Vec::new(),
            links: Vec::new(),
            aux: Vec::new(),
            free: NIL,
        }
    }
}

const UNLINKED: Link = Link {
    prev: NIL,
    next: NIL,
};

impl Slab {
    pub fn alloc(&mut self, slot: Slot, aux: Aux) -> u32 {
        if self.free != NIL {
            let i = self.free;
            let at = i as usize;
            self.free = self.links[at].next;
            self.slots[at] = slot;
            self.links[at] = UNLINKED;
            if aux.seq != 0 {
                self.aux[at] = aux;
            }
            i
        } else {
            let i = u32::try_from(self.slots.len()).expect("more than 2^32 live orders in a book");
            self.slots.push(slot);
            self.links.push(UNLINKED);
            self.aux.push(aux);
            i
        }
    }

    pub fn release(&mut self, i: u32) {
        let at = i as usize;
        self.slots[at].state = SlotState::Free;
        self.links[at].next = self.free;
        if self.aux[at].seq != 0 {
            // Cleared only where it was used, so ordinary orders never touch this array.
            self.aux[at] = Aux::default();
        }
        self.free = i;
    }

    #[inline]
    pub fn link(&self, i: u32) -> &Link {
        &self.links[i as usize]
    }

    #[inline]
    pub fn link_mut(&mut self, i: u32) -> &mut Link {
        &mut self.links[i as usize]
    }

    #[inline]
    pub fn aux(&self, i: u32) -> &Aux {
        &self.aux[i as usize]
    }

    #[inline]
    pub fn aux_mut(&mut self, i: u32) -> &mut Aux {
        &mut self.aux[i as usize]
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
        self.links.reserve(additional);
        self.aux.reserve(additional);
    }
}
