//! Order id → slot, with a hash made for ingestion's integer ids.
//!
//! std's SipHash guards against hash flooding by untrusted keys; order ids are assigned by
//! the system itself, so a multiply-and-fold hash is enough and several times faster.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

pub type IdMap = HashMap<u64, u32, BuildHasherDefault<IdHasher>>;

#[derive(Default, Clone, Copy)]
pub struct IdHasher(u64);

const MIX: u64 = 0x9E37_79B9_7F4A_7C15;

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        // The fold brings high bits down, so ids that differ only above bit 32 still spread.
        let h = (self.0 ^ n).wrapping_mul(MIX);
        self.0 = h ^ (h >> 32);
    }
}
