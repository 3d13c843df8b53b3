//! Moving a slot range's keys out of a keyspace: how a shard splits in two
//! (`Db::split_off`; a merge restores the other shard's dump instead).
//!
//! Entries move as they are, expired ones not yet swept included, so the
//! halves of a replica's keyspace are exactly what every other replica
//! gets from the same log entry (the engine never looks at a clock here).
//! Every stripe of the source is held while they move, in ascending order
//! (the lock-order rule): a reader sees a key in one keyspace or the other,
//! never in neither.

use std::ops::RangeInclusive;

use crate::slot::Slot;
use crate::Db;

/// What an entry costs beside its key and value: the table's slot and the
/// two buffers' headers, about.
const ENTRY_OVERHEAD_BYTES: usize = 96;

impl Db {
    /// Removes every key whose slot is in `slots` and returns them as a new
    /// keyspace.
    pub fn split_off(&self, slots: RangeInclusive<Slot>) -> Db {
        let taken = Db::new();
        let mut moved = Vec::new();
        {
            let mut stripes = self.lock_all();
            for stripe in stripes.iter_mut() {
                moved.extend(stripe.take_slots(&slots));
            }
        }
        taken.insert_exact(moved);
        taken
    }

    /// The slot in `slots` that halves the keys stored there: the first slot
    /// of the right half, so that the left (`start..at`) holds about half
    /// the keys. `None` when no such split leaves both halves a slot (a
    /// range of one slot) or the range is empty of keys.
    pub fn halving_slot(&self, slots: RangeInclusive<Slot>) -> Option<Slot> {
        let (start, end) = (*slots.start(), *slots.end());
        let total: usize = slots.clone().map(|s| self.count_in_slot(s)).sum();
        if start >= end || total == 0 {
            return None;
        }
        let mut seen = 0;
        for slot in start..end {
            seen += self.count_in_slot(slot);
            if seen * 2 >= total {
                return Some(slot + 1);
            }
        }
        Some(end)
    }

    /// About how many bytes the keyspace holds: each entry's key, value
    /// and fixed cost. Visits every entry (O(keys)): for occasional size
    /// checks, such as whether a shard should split.
    pub fn bytes(&self) -> u64 {
        let mut total = 0u64;
        self.for_each_live(0, |e| {
            total += (e.key.len() + e.value.bytes() + ENTRY_OVERHEAD_BYTES) as u64;
        });
        total
    }

    /// Inserts entries as they were stored (`now` = 0: none counts as
    /// expired), taking the stripe locks in ascending order per entry.
    fn insert_exact(&self, entries: Vec<crate::stripe::Stored>) {
        for stored in entries {
            let hash = self.hash(&stored.key);
            // A new group's log starts at 0: versions from the parent's log
            // could be stamped again there (WATCH), so they start at 0.
            let _replaced = self.write(hash).put_stored(hash, crate::stripe::Stored { version: 0, ..stored }, 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::slot::key_slot;
    use crate::Db;
    use bytes::Bytes;

    fn filled(n: usize) -> Db {
        let db = Db::new();
        for i in 0..n {
            db.put(Bytes::from(format!("key:{i}")), Bytes::from(format!("v{i}")), 0);
        }
        db
    }

    #[test]
    fn split_off_moves_exactly_the_range_and_its_dump_brings_it_back() {
        let db = filled(2000);
        assert!(db.expire_at(b"key:7", 5, crate::ExpireCondition::Always, 0));
        let digest = db.digest(0);
        let right = db.split_off(8000..=16383);
        assert_eq!(db.len() + right.len(), 2000);
        assert!(right.len() > 500 && db.len() > 500, "{} / {}", db.len(), right.len());
        for i in 0..2000 {
            let key = format!("key:{i}");
            let (here, there) = (db.get(key.as_bytes(), 0).is_some(), right.get(key.as_bytes(), 0).is_some());
            assert!(here ^ there, "{key} in exactly one half");
            assert_eq!(there, key_slot(key.as_bytes()) >= 8000, "{key}");
        }
        // Expired entries move too (a clock is never read here).
        let moved_expired = key_slot(b"key:7") >= 8000;
        let holder = if moved_expired { &right } else { &db };
        assert_eq!(holder.get(b"key:7", 100), None);
        assert!(holder.get(b"key:7", 0).is_some());
        assert_eq!((0..8000).map(|s| right.count_in_slot(s)).sum::<usize>(), 0);
        db.restore(&right.dump(0), 0).unwrap();
        assert_eq!(db.digest(0), digest);
    }

    #[test]
    fn halving_slot_splits_the_keys_in_two() {
        let db = filled(10_000);
        let at = db.halving_slot(0..=16383).unwrap();
        let left: usize = (0..at).map(|s| db.count_in_slot(s)).sum();
        assert!((4900..=5100).contains(&left), "{left} keys left of slot {at}");
        assert_eq!(db.halving_slot(5..=5), None);
        let bytes = db.bytes();
        assert!(bytes > 10_000 * 96 && bytes < 10_000 * 120, "{bytes}");
        assert_eq!(Db::new().halving_slot(0..=16383), None);
    }
}
