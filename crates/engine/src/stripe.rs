//! One lock's worth of the keyspace: a hash table of entries plus an index of
//! the entries that carry an expiry, ordered by expiry time, so the sweeper
//! can find expired keys without scanning live ones.
//!
//! A stripe knows nothing of locking; `Db` puts each one behind its own
//! `RwLock`. Every method takes `now` so that liveness is decided by the
//! caller's clock (replication will pass the leader's time).

use std::collections::BTreeSet;

use bytes::Bytes;
use hashbrown::HashTable;

use std::sync::Arc;

use crate::slot::{key_slot, Slot};
use crate::slot_counts::SlotCounts;
use crate::Millis;

/// A stored key. `hash` is kept so that growing the table never rehashes keys.
pub(crate) struct Entry {
    pub(crate) hash: u64,
    pub(crate) slot: Slot,
    pub(crate) key: Bytes,
    pub(crate) value: Bytes,
    pub(crate) expires_at: Option<Millis>,
}

impl Entry {
    /// Redis's rule: a key is expired once `now` is strictly past its expiry.
    pub(crate) fn is_live(&self, now: Millis) -> bool {
        self.expires_at.is_none_or(|at| now <= at)
    }
}

pub(crate) struct Stripe {
    /// Keys per slot, shared by every stripe of the `Db`.
    counts: Arc<SlotCounts>,
    pub(crate) table: HashTable<Entry>,
    /// `(expires_at, hash, key)` for every entry with an expiry, kept in step
    /// with `table` by every method below. The hash lets the sweeper find the
    /// entry without a hasher.
    pub(crate) expiries: BTreeSet<(Millis, u64, Bytes)>,
}

impl Stripe {
    pub(crate) fn new(counts: Arc<SlotCounts>) -> Stripe {
        Stripe { counts, table: HashTable::new(), expiries: BTreeSet::new() }
    }

    /// The live entry for `key`, if any.
    pub(crate) fn get(&self, hash: u64, key: &[u8], now: Millis) -> Option<&Entry> {
        self.table.find(hash, |e| e.key[..] == *key).filter(|e| e.is_live(now))
    }

    /// The live entry for `key`, mutably. An expired entry found on the way
    /// is removed first, so callers only ever see live data. Callers must not
    /// change `expires_at` through this reference: use `set_expiry`.
    pub(crate) fn get_mut(&mut self, hash: u64, key: &[u8], now: Millis) -> Option<&mut Entry> {
        self.purge_if_expired(hash, key, now);
        self.table.find_mut(hash, |e| e.key[..] == *key)
    }

    /// Removes `key` and returns its entry if it was live.
    pub(crate) fn remove(&mut self, hash: u64, key: &[u8], now: Millis) -> Option<Entry> {
        let entry = self.remove_any(hash, key)?;
        entry.is_live(now).then_some(entry)
    }

    /// Inserts or overwrites `key` (an expiry already in the past removes it).
    pub(crate) fn put(&mut self, hash: u64, key: Bytes, value: Bytes, expires_at: Option<Millis>, now: Millis) {
        if expires_at.is_some_and(|at| at < now) {
            // Already expired: storing it would only give the sweeper work.
            self.remove_any(hash, &key);
            return;
        }
        match self.table.find_mut(hash, |e| e.key == key) {
            Some(entry) => {
                entry.value = value;
                let old = std::mem::replace(&mut entry.expires_at, expires_at);
                let key = entry.key.clone();
                self.reindex(hash, key, old, expires_at);
            }
            None => {
                self.reindex(hash, key.clone(), None, expires_at);
                let slot = key_slot(&key);
                self.counts.add(slot);
                let entry = Entry { hash, slot, key, value, expires_at };
                self.table.insert_unique(hash, entry, |e| e.hash);
            }
        }
    }

    /// Changes the expiry of a live key; returns false when there is none.
    pub(crate) fn set_expiry(&mut self, hash: u64, key: &[u8], expires_at: Option<Millis>, now: Millis) -> bool {
        let Some(entry) = self.get_mut(hash, key, now) else {
            return false;
        };
        let old = std::mem::replace(&mut entry.expires_at, expires_at);
        let key = entry.key.clone();
        self.reindex(hash, key, old, expires_at);
        true
    }

    /// Removes up to `budget` entries that are expired at `now`, earliest
    /// first. Returns how many were removed.
    pub(crate) fn sweep(&mut self, now: Millis, budget: usize) -> usize {
        let mut removed = 0;
        while removed < budget {
            let Some((at, hash, key)) = self.expiries.first().cloned() else {
                break;
            };
            if at >= now {
                break;
            }
            let entry = self.remove_any(hash, &key);
            assert!(entry.is_some(), "expiry index names a key missing from the table");
            removed += 1;
        }
        removed
    }

    pub(crate) fn clear(&mut self) {
        for entry in self.table.iter() {
            self.counts.sub(entry.slot);
        }
        self.table.clear();
        self.expiries.clear();
    }

    fn purge_if_expired(&mut self, hash: u64, key: &[u8], now: Millis) {
        let expired = self.table.find(hash, |e| e.key[..] == *key).is_some_and(|e| !e.is_live(now));
        if expired {
            self.remove_any(hash, key);
        }
    }

    fn remove_any(&mut self, hash: u64, key: &[u8]) -> Option<Entry> {
        let found = self.table.find_entry(hash, |e| e.key[..] == *key).ok()?;
        let (entry, _) = found.remove();
        self.counts.sub(entry.slot);
        if let Some(at) = entry.expires_at {
            let was_indexed = self.expiries.remove(&(at, hash, entry.key.clone()));
            debug_assert!(was_indexed, "entry with expiry missing from the index");
        }
        Some(entry)
    }

    fn reindex(&mut self, hash: u64, key: Bytes, old: Option<Millis>, new: Option<Millis>) {
        if old == new {
            return;
        }
        if let Some(at) = old {
            let was_indexed = self.expiries.remove(&(at, hash, key.clone()));
            debug_assert!(was_indexed, "entry with expiry missing from the index");
        }
        if let Some(at) = new {
            self.expiries.insert((at, hash, key));
        }
    }
}
