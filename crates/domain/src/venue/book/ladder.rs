//! One side of a book: its price levels in a vector sorted so that the best price is last.
//!
//! Matching works at the end of the vector (pop the best level, push a new best one), and
//! the levels near the top, where most activity is, move the fewest elements on insert.

use super::slab::{Link, Slab, NIL};
use crate::order::Side;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct PriceLevel {
    pub price: i64,
    /// Sum of the resting orders' leaves, in lots.
    pub total: u64,
    pub head: u32,
    pub tail: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ladder {
    side: Side,
    levels: Vec<PriceLevel>,
}

impl Ladder {
    pub fn new(side: Side) -> Self {
        Ladder {
            side,
            levels: Vec::new(),
        }
    }

    /// Ascending key with the best price last: bids by price, asks by negated price.
    #[inline]
    fn key(&self, price: i64) -> i64 {
        match self.side {
            Side::Buy => price,
            Side::Sell => -price,
        }
    }

    fn search(&self, price: i64) -> Result<usize, usize> {
        let key = self.key(price);
        self.levels
            .binary_search_by(|l| self.key(l.price).cmp(&key))
    }

    pub fn best(&self) -> Option<&PriceLevel> {
        self.levels.last()
    }

    pub fn best_mut(&mut self) -> Option<&mut PriceLevel> {
        self.levels.last_mut()
    }

    pub fn pop_best(&mut self) {
        self.levels.pop();
    }

    /// Levels from the best price outwards.
    pub fn iter_best_first(&self) -> impl Iterator<Item = &PriceLevel> {
        self.levels.iter().rev()
    }

    pub fn level_count(&self) -> usize {
        self.levels.len()
    }

    /// Appends an order at the back of its price level, creating the level if needed.
    /// Returns the level's new total.
    pub fn push_back(&mut self, slab: &mut Slab, i: u32) -> u64 {
        let (price, leaves) = {
            let s = slab.get(i);
            (s.price, s.leaves())
        };
        let at = match self.search(price) {
            Ok(at) => at,
            Err(at) => {
                self.levels.insert(
                    at,
                    PriceLevel {
                        price,
                        total: 0,
                        head: NIL,
                        tail: NIL,
                    },
                );
                at
            }
        };
        let level = &mut self.levels[at];
        link_back(level, slab, i);
        level.total += leaves;
        level.total
    }

    /// Removes an order from its level, dropping the level when it empties.
    /// Returns the level's new total.
    pub fn unlink(&mut self, slab: &mut Slab, i: u32) -> u64 {
        let (price, leaves) = {
            let s = slab.get(i);
            (s.price, s.leaves())
        };
        let at = self
            .search(price)
            .expect("a resting order's level is in its ladder");
        let level = &mut self.levels[at];
        unlink_from(level, slab, i);
        level.total -= leaves;
        let total = level.total;
        if level.head == NIL {
            self.levels.remove(at);
        }
        total
    }

    /// Lowers a level's total in place (a resting order was reduced without moving).
    pub fn reduce(&mut self, price: i64, by: u64) -> u64 {
        let at = self
            .search(price)
            .expect("a resting order's level is in its ladder");
        let level = &mut self.levels[at];
        level.total -= by;
        level.total
    }

    /// Moves an order to the back of its own level, whose total changes by `leaves_after -
    /// leaves_before`. Returns the level's new total.
    pub fn requeue(&mut self, slab: &mut Slab, i: u32, leaves_before: u64) -> u64 {
        let (price, leaves) = {
            let s = slab.get(i);
            (s.price, s.leaves())
        };
        let at = self
            .search(price)
            .expect("a resting order's level is in its ladder");
        let level = &mut self.levels[at];
        unlink_from(level, slab, i);
        link_back(level, slab, i);
        level.total = level.total - leaves_before + leaves;
        level.total
    }
}

fn link_back(level: &mut PriceLevel, slab: &mut Slab, i: u32) {
    let tail = level.tail;
    *slab.link_mut(i) = Link {
        prev: tail,
        next: NIL,
    };
    if tail == NIL {
        level.head = i;
    } else {
        slab.link_mut(tail).next = i;
    }
    level.tail = i;
}

/// Unlinks an order from a level's FIFO; the level's total is the caller's business.
pub fn unlink_from(level: &mut PriceLevel, slab: &mut Slab, i: u32) {
    let Link { prev, next } = *slab.link(i);
    if prev == NIL {
        level.head = next;
    } else {
        slab.link_mut(prev).next = next;
    }
    if next == NIL {
        level.tail = prev;
    } else {
        slab.link_mut(next).prev = prev;
    }
}
