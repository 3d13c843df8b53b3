//! One lock's worth of the keyspace: a hash table of entries plus an index of
//! the entries that carry an expiry, ordered by expiry time, so the sweeper
//! can find expired keys without scanning live ones.
//!
//! A stripe knows nothing of locking; `Db` puts each one behind its own
//! `RwLock`. Every method takes `now` so that liveness is decided by the
//! caller's clock (replication will pass the leader's time).

use std::collections::BTreeSet;

use bytes::Bytes;
use hashbrown::{DefaultHashBuilder, HashTable};
use std::hash::BuildHasher;

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use crate::slot::{key_slot, Slot};
use crate::slot_counts::SlotCounts;
use crate::value::{Blob, Value};
use crate::Millis;

/// A stored key. The table holds a `Box<Entry>` (8 bytes a bucket) rather
/// than the entry itself: a table is a power of two of buckets between
/// half and seven eighths full, so every byte of a bucket is paid up to
/// twice over, and a pointer per bucket plus one exactly sized allocation
/// per key is the smallest layout (Redis's dict pays the same pointer). The
/// key and a string value are `Blob`s, one allocation each, so a string key
/// costs its bucket, this 56-byte entry and its two byte strings.
pub(crate) struct Entry {
    pub(crate) key: Blob,
    pub(crate) value: Value,
    /// Absolute expiry, `NEVER` for a persistent key.
    expires: Millis,
    /// When the key last changed: the `Db`'s stamp at that write (the Raft
    /// log index of the entry that made it, on a replica), identical on
    /// every replica. WATCH compares it.
    pub(crate) version: u32,
    pub(crate) slot: Slot,
}

const _: () = assert!(std::mem::size_of::<Entry>() <= 56, "keep entries small: see the comment on Entry");

/// What every stripe of a `Db` shares about changes: the stamp writes
/// give entries, and how many changes there have been.
#[derive(Default)]
pub(crate) struct Clock {
    pub(crate) stamp: AtomicU32,
    pub(crate) mutations: AtomicU64,
}

/// An entry outside any table: moved by a split, read from a snapshot.
pub(crate) struct Stored {
    pub(crate) key: Blob,
    pub(crate) value: Value,
    pub(crate) expires_at: Option<Millis>,
    pub(crate) version: u32,
}

/// The `expires` of a key without expiry.
const NEVER: Millis = Millis::MAX;

/// `NEVER` cannot also be an expiry: one at `u64::MAX` ms is stored a
/// millisecond earlier, in the entry and the expiry index alike. (Left as is,
/// it would make the key persistent while the index kept a stale entry.)
fn storable(expires_at: Option<Millis>) -> Option<Millis> {
    expires_at.map(|at| at.min(NEVER - 1))
}

impl Entry {
    /// Redis's rule: a key is expired once `now` is strictly past its expiry.
    pub(crate) fn is_live(&self, now: Millis) -> bool {
        now <= self.expires
    }

    pub(crate) fn expires_at(&self) -> Option<Millis> {
        (self.expires != NEVER).then_some(self.expires)
    }

    /// Replaces the expiry, returning the previous one.
    fn replace_expiry(&mut self, expires_at: Option<Millis>) -> Option<Millis> {
        let old = self.expires_at();
        self.expires = expires_at.unwrap_or(NEVER);
        old
    }
}

pub(crate) struct Stripe {
    /// The `Db`'s hasher, to rehash keys when the table grows.
    hasher: DefaultHashBuilder,
    /// Keys per slot, shared by every stripe of the `Db`.
    counts: Arc<SlotCounts>,
    /// The `Db`'s current stamp, given to every entry a write changes.
    clock: Arc<Clock>,
    pub(crate) table: HashTable<Box<Entry>>,
    /// `(expires_at, hash, key)` for every entry with an expiry, kept in step
    /// with `table` by every method below. The hash lets the sweeper find the
    /// entry without a hasher.
    pub(crate) expiries: BTreeSet<(Millis, u64, Blob)>,
}

impl Stripe {
    pub(crate) fn new(hasher: DefaultHashBuilder, counts: Arc<SlotCounts>, clock: Arc<Clock>) -> Stripe {
        Stripe { hasher, counts, clock, table: HashTable::new(), expiries: BTreeSet::new() }
    }

    /// The stamp for an entry being changed (and the change counted).
    fn stamp(&self) -> u32 {
        self.clock.mutations.fetch_add(1, Ordering::Relaxed);
        self.clock.stamp.load(Ordering::Relaxed)
    }

    /// The live entry for `key`, if any.
    pub(crate) fn get(&self, hash: u64, key: &[u8], now: Millis) -> Option<&Entry> {
        self.table.find(hash, |e| e.key[..] == *key).filter(|e| e.is_live(now)).map(|e| &**e)
    }

    /// The live entry for `key`, mutably. An expired entry found on the way
    /// is removed first, so callers only ever see live data. Callers must not
    /// change `expires_at` through this reference: use `set_expiry`.
    /// Only writes call it: the entry counts as changed (WATCH).
    pub(crate) fn get_mut(&mut self, hash: u64, key: &[u8], now: Millis) -> Option<&mut Entry> {
        self.purge_if_expired(hash, key, now);
        let stamp = self.stamp();
        let entry = self.table.find_mut(hash, |e| e.key[..] == *key)?;
        entry.version = stamp;
        Some(&mut **entry)
    }

    /// Removes `key` and returns its entry if it was live.
    pub(crate) fn remove(&mut self, hash: u64, key: &[u8], now: Millis) -> Option<Box<Entry>> {
        let entry = self.remove_any(hash, key)?;
        let live = entry.is_live(now).then_some(entry)?;
        self.clock.mutations.fetch_add(1, Ordering::Relaxed);
        Some(live)
    }

    /// Inserts or overwrites `key` (an expiry already in the past removes
    /// it). Returns the value it replaced, so that the caller can free it
    /// after releasing the lock.
    #[must_use = "drop the replaced value after releasing the lock"]
    pub(crate) fn put(
        &mut self,
        hash: u64,
        key: &[u8],
        value: Value,
        expires_at: Option<Millis>,
        now: Millis,
    ) -> Option<Value> {
        let expires_at = storable(expires_at);
        if expires_at.is_some_and(|at| at < now) {
            // Already expired: storing it would only give the sweeper work.
            return self.remove_any(hash, key).map(|e| e.value);
        }
        let stamp = self.stamp();
        match self.table.find_mut(hash, |e| e.key[..] == *key) {
            Some(entry) => {
                entry.version = stamp;
                let replaced = std::mem::replace(&mut entry.value, value);
                let old = entry.replace_expiry(expires_at);
                if old != expires_at {
                    self.reindex(hash, key, old, expires_at);
                }
                Some(replaced)
            }
            None => {
                // Copied only now, on insert: an overwrite keeps the stored key.
                self.reindex(hash, key, None, expires_at);
                let slot = key_slot(key);
                self.counts.add(slot);
                let key = Blob::from(key);
                let entry = Box::new(Entry { key, value, expires: expires_at.unwrap_or(NEVER), slot, version: stamp });
                let hasher = &self.hasher;
                self.table.insert_unique(hash, entry, |e| hasher.hash_one(&e.key[..]));
                None
            }
        }
    }

    /// Stores an entry as it was kept elsewhere (a snapshot, a split): its
    /// version too, so that WATCH sees the same versions on every replica.
    pub(crate) fn put_stored(&mut self, hash: u64, stored: Stored, now: Millis) -> Option<Value> {
        let Stored { key, value, expires_at, version } = stored;
        let replaced = self.put(hash, &key, value, expires_at, now);
        if let Some(entry) = self.table.find_mut(hash, |e| e.key == key) {
            entry.version = version;
        }
        replaced
    }

    /// Changes the expiry of a live key; returns false when there is none.
    pub(crate) fn set_expiry(&mut self, hash: u64, key: &[u8], expires_at: Option<Millis>, now: Millis) -> bool {
        let expires_at = storable(expires_at);
        let Some(entry) = self.get_mut(hash, key, now) else {
            return false;
        };
        let old = entry.replace_expiry(expires_at);
        if old != expires_at {
            let key = entry.key.clone();
            self.reindex(hash, &key, old, expires_at);
        }
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

    /// Removes every entry whose slot is in `slots` (expired ones too) and
    /// returns them.
    pub(crate) fn take_slots(&mut self, slots: &std::ops::RangeInclusive<Slot>) -> Vec<Stored> {
        let mut taken = Vec::new();
        for entry in self.table.extract_if(|e| slots.contains(&e.slot)) {
            self.counts.sub(entry.slot);
            let expires_at = entry.expires_at();
            let Entry { key, value, version, .. } = *entry;
            taken.push(Stored { key, value, expires_at, version });
        }
        if !taken.is_empty() {
            self.expiries.retain(|(_, _, key)| !slots.contains(&key_slot(key)));
        }
        taken
    }

    /// Removes `key` if it is expired at `now`; true when it did.
    pub(crate) fn purge_if_expired(&mut self, hash: u64, key: &[u8], now: Millis) -> bool {
        let expired = self.table.find(hash, |e| e.key[..] == *key).is_some_and(|e| !e.is_live(now));
        if expired {
            self.remove_any(hash, key);
        }
        expired
    }

    /// Appends up to `budget` keys expired at `now`, earliest first.
    pub(crate) fn expired(&self, now: Millis, budget: usize, out: &mut Vec<Bytes>) {
        let expired = self.expiries.iter().take(budget).take_while(|(at, _, _)| *at < now);
        out.extend(expired.map(|(_, _, key)| Bytes::copy_from_slice(key)));
    }

    fn remove_any(&mut self, hash: u64, key: &[u8]) -> Option<Box<Entry>> {
        let found = self.table.find_entry(hash, |e| e.key[..] == *key).ok()?;
        let (entry, _) = found.remove();
        self.counts.sub(entry.slot);
        if let Some(at) = entry.expires_at() {
            let was_indexed = self.expiries.remove(&(at, hash, entry.key.clone()));
            debug_assert!(was_indexed, "entry with expiry missing from the index");
        }
        Some(entry)
    }

    fn reindex(&mut self, hash: u64, key: &[u8], old: Option<Millis>, new: Option<Millis>) {
        if old == new {
            return;
        }
        if let Some(at) = old {
            let was_indexed = self.expiries.remove(&(at, hash, Blob::from(key)));
            debug_assert!(was_indexed, "entry with expiry missing from the index");
        }
        if let Some(at) = new {
            self.expiries.insert((at, hash, Blob::from(key)));
        }
    }
}
