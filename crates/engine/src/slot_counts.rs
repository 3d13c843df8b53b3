//! Keys per slot, kept as inserts and removals happen, so that CLUSTER
//! COUNTKEYSINSLOT and per-shard key counts are O(1) instead of a scan.
//! Like DBSIZE, a count includes expired keys not yet swept.

use std::sync::atomic::{AtomicU32, Ordering};

use crate::slot::{Slot, SLOT_COUNT};

pub(crate) struct SlotCounts(Box<[AtomicU32]>);

impl Default for SlotCounts {
    fn default() -> Self {
        SlotCounts((0..SLOT_COUNT).map(|_| AtomicU32::new(0)).collect())
    }
}

impl SlotCounts {
    // Relaxed: each counter is independent and only read for reporting; the
    // stripe lock already orders the change with the entry it counts.
    pub(crate) fn add(&self, slot: Slot) {
        self.0[usize::from(slot)].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn sub(&self, slot: Slot) {
        let before = self.0[usize::from(slot)].fetch_sub(1, Ordering::Relaxed);
        debug_assert!(before > 0, "slot {slot} count went below zero");
    }

    pub(crate) fn get(&self, slot: Slot) -> u32 {
        self.0[usize::from(slot)].load(Ordering::Relaxed)
    }
}
