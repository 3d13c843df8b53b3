//! `Db`: the keyspace, striped over many `RwLock`s.
//!
//! Why stripes: a single lock serialises every writer and makes readers
//! contend on one cache line; `docs/engine-locks.md` has the measurements
//! against a single `Mutex<HashMap>` and a single `RwLock<HashMap>`. The key is
//! hashed once; middle bits of that hash pick the stripe and the same hash
//! probes the stripe's table (hashbrown uses the low bits for the bucket and
//! the top seven for its tag, so the stripe bits must be neither).
//!
//! Why `parking_lot::RwLock` and not a tokio lock: critical sections are a
//! hash probe and never await, so a blocking lock held for nanoseconds is
//! cheaper than a future; the engine does no I/O and no async.
//!
//! Multi-key operations lock their stripes in ascending index order, so they
//! are atomic (MSET is all-or-nothing to readers) and cannot deadlock.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use hashbrown::DefaultHashBuilder;
use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::glob::glob_match;
use crate::ops::{DelCondition, ExpireCondition, GetExExpiry, IncrError, SetOptions, SetOutcome, Ttl};
use crate::reply::Fault;
use crate::slot::Slot;
use crate::slot_counts::SlotCounts;
use crate::stripe::{Clock, Entry, Stored, Stripe};
use crate::value::{blob, Blob, Kind, Value};
use crate::Millis;

/// Number of stripes; a power of two.
pub const STRIPES: usize = 128;
const STRIPE_SHIFT: u32 = 40;
/// Bits a SCAN cursor uses: the top `64 - SCAN_CURSOR_BITS` bits of every
/// cursor `scan` returns are zero, so a caller scanning several keyspaces
/// (the server, one per Raft group) can keep its own index there.
pub const SCAN_CURSOR_BITS: u32 = 56;
/// Where a scan position keeps the stripe index: its top bits.
const SCAN_STRIPE_SHIFT: u32 = SCAN_CURSOR_BITS - STRIPES.trailing_zeros();

/// A key's scan position: its hash rotated so the stripe bits (from
/// `STRIPE_SHIFT`) become the top bits, then shifted into
/// `SCAN_CURSOR_BITS`. Keys that share a position are never split across
/// pages, so dropping low hash bits only makes such ties likelier.
fn scan_position(hash: u64) -> u64 {
    hash.rotate_left(64 - STRIPE_SHIFT - STRIPES.trailing_zeros()) >> (64 - SCAN_CURSOR_BITS)
}
const _: () = assert!(STRIPES.is_power_of_two() && STRIPES <= 1 << (57 - STRIPE_SHIFT));

/// Keeps each stripe's lock on its own cache lines so that two threads
/// working on neighbouring stripes do not false-share.
#[repr(align(128))]
struct Padded(RwLock<Stripe>);

/// The concurrent in-memory keyspace. Cheap to share behind an `Arc`.
pub struct Db {
    hasher: DefaultHashBuilder,
    stripes: Box<[Padded]>,
    counts: Arc<SlotCounts>,
    /// The stamp writes give the entries they change (`set_stamp`), and
    /// the count of changes.
    clock: Arc<Clock>,
    /// Applied writes that changed something (INFO's
    /// `rdb_changes_since_last_save`).
    changes: AtomicU64,
    /// Next stripe the expiry sweeper visits.
    sweep_cursor: AtomicUsize,
}

impl Default for Db {
    fn default() -> Self {
        Self::new()
    }
}

impl Db {
    pub fn new() -> Self {
        let counts = Arc::new(SlotCounts::default());
        let hasher = DefaultHashBuilder::default();
        let clock = Arc::new(Clock::default());
        let stripe = || Padded(RwLock::new(Stripe::new(hasher.clone(), Arc::clone(&counts), Arc::clone(&clock))));
        Db {
            hasher: hasher.clone(),
            stripes: (0..STRIPES).map(|_| stripe()).collect(),
            counts,
            clock,
            changes: AtomicU64::new(0),
            sweep_cursor: AtomicUsize::new(0),
        }
    }

    pub(crate) fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    fn stripe_index(hash: u64) -> usize {
        (hash >> STRIPE_SHIFT) as usize & (STRIPES - 1)
    }

    fn read(&self, hash: u64) -> RwLockReadGuard<'_, Stripe> {
        self.stripes[Self::stripe_index(hash)].0.read()
    }

    pub(crate) fn write(&self, hash: u64) -> RwLockWriteGuard<'_, Stripe> {
        self.stripes[Self::stripe_index(hash)].0.write()
    }

    /// Write-locks every stripe, in ascending order.
    pub(crate) fn lock_all(&self) -> Vec<RwLockWriteGuard<'_, Stripe>> {
        self.stripes.iter().map(|s| s.0.write()).collect()
    }

    /// Write-locks every stripe the hashes fall in, in ascending order.
    pub(crate) fn write_many(&self, hashes: &[u64]) -> Locked<RwLockWriteGuard<'_, Stripe>> {
        let indices = sorted_stripes(hashes);
        let guards = indices.iter().map(|&i| self.stripes[i].0.write()).collect();
        Locked { indices, guards }
    }

    /// Read-locks every stripe the hashes fall in, in ascending order.
    fn read_many(&self, hashes: &[u64]) -> Locked<RwLockReadGuard<'_, Stripe>> {
        let indices = sorted_stripes(hashes);
        let guards = indices.iter().map(|&i| self.stripes[i].0.read()).collect();
        Locked { indices, guards }
    }

    // ---- single-key reads -------------------------------------------------

    /// The string at `key`; `None` when there is none or the key holds
    /// another type (see `get_str` for GET's error).
    pub fn get(&self, key: &[u8], now: Millis) -> Option<Bytes> {
        self.get_str(key, now).ok().flatten()
    }

    /// GET: the string at `key`, or WRONGTYPE.
    pub fn get_str(&self, key: &[u8], now: Millis) -> Result<Option<Bytes>, Fault> {
        let hash = self.hash(key);
        match self.read(hash).get(hash, key, now).map(|e| &e.value) {
            None => Ok(None),
            Some(Value::Str(b)) => Ok(Some(Bytes::copy_from_slice(b))),
            Some(_) => Err(Fault::WrongType),
        }
    }

    /// The type of the value at `key`.
    pub fn kind(&self, key: &[u8], now: Millis) -> Option<Kind> {
        let hash = self.hash(key);
        self.read(hash).get(hash, key, now).map(|e| e.value.kind())
    }

    /// Whether `key` holds something other than a string.
    pub(crate) fn holds_non_string(&self, key: &[u8], now: Millis) -> bool {
        self.kind(key, now).is_some_and(|k| k != Kind::String)
    }

    pub fn exists(&self, key: &[u8], now: Millis) -> bool {
        let hash = self.hash(key);
        self.read(hash).get(hash, key, now).is_some()
    }

    pub fn strlen(&self, key: &[u8], now: Millis) -> Result<usize, Fault> {
        Ok(self.get_str(key, now)?.map_or(0, |b| b.len()))
    }

    pub fn ttl(&self, key: &[u8], now: Millis) -> Ttl {
        let hash = self.hash(key);
        match self.read(hash).get(hash, key, now) {
            None => Ttl::Missing,
            Some(entry) => match entry.expires_at() {
                None => Ttl::Persistent,
                Some(at) => Ttl::ExpiresIn(at.saturating_sub(now)),
            },
        }
    }

    // ---- single-key writes ------------------------------------------------

    /// SET with all of its conditions and expiry options.
    pub fn set(&self, key: Bytes, value: Bytes, opts: &SetOptions, now: Millis) -> SetOutcome {
        let hash = self.hash(&key);
        // Copies are made, and the replaced value freed, outside the lock.
        let value = blob(value);
        let (outcome, replaced) = self.write(hash).set(hash, &key, value, opts, now);
        drop(replaced);
        outcome
    }

    /// Plain SET: overwrite, clearing any expiry.
    pub fn put(&self, key: Bytes, value: Bytes, now: Millis) {
        let hash = self.hash(&key);
        let value = Value::Str(blob(value));
        let replaced = self.write(hash).put(hash, &key, value, None, now);
        drop(replaced); // after the guard, a temporary of the statement above
    }

    pub fn delete(&self, key: &[u8], now: Millis) -> bool {
        let hash = self.hash(key);
        self.write(hash).remove(hash, key, now).is_some()
    }

    /// DELEX: delete only when the condition on the current value holds.
    pub fn delete_if(&self, key: &[u8], condition: &DelCondition, now: Millis) -> bool {
        let hash = self.hash(key);
        self.write(hash).delete_if(hash, key, condition, now)
    }

    pub fn get_delete(&self, key: &[u8], now: Millis) -> Option<Bytes> {
        let hash = self.hash(key);
        self.write(hash).get_delete(hash, key, now)
    }

    /// GETEX: read the value and optionally change its expiry.
    pub fn get_ex(&self, key: &[u8], expiry: GetExExpiry, now: Millis) -> Option<Bytes> {
        let hash = self.hash(key);
        self.write(hash).get_ex(hash, key, expiry, now)
    }

    /// INCRBY/DECRBY: 64-bit signed; a non-integer value or an overflow is an
    /// error and leaves the key unchanged. The expiry is kept, as in Redis.
    pub fn incr_by(&self, key: Bytes, delta: i64, now: Millis) -> Result<i64, IncrError> {
        let hash = self.hash(&key);
        self.write(hash).incr_by(hash, &key, delta, now)
    }

    /// APPEND: returns the new length, or `Err(len)` with the length the value
    /// would have had when it would exceed `max_len`.
    pub fn append(&self, key: Bytes, suffix: &[u8], max_len: usize, now: Millis) -> Result<usize, usize> {
        let hash = self.hash(&key);
        self.write(hash).append(hash, &key, suffix, max_len, now)
    }

    /// EXPIRE family with `at` absolute. An `at` not in the future deletes the
    /// key, as Redis does. Returns whether the expiry was set (or the key
    /// deleted).
    pub fn expire_at(&self, key: &[u8], at: Millis, condition: ExpireCondition, now: Millis) -> bool {
        let hash = self.hash(key);
        self.write(hash).expire_at(hash, key, at, condition, now)
    }

    /// PERSIST: true when an expiry was removed.
    pub fn persist(&self, key: &[u8], now: Millis) -> bool {
        let hash = self.hash(key);
        self.write(hash).persist(hash, key, now)
    }

    /// Sets the stamp every write from now on gives the entries it changes
    /// (the state machine passes each entry's log index, so that versions
    /// agree on every replica).
    pub fn set_stamp(&self, stamp: u64) {
        self.clock.stamp.store(stamp as u32, Ordering::Relaxed);
    }

    /// How many applied writes changed something.
    pub fn changes(&self) -> u64 {
        self.changes.load(Ordering::Relaxed)
    }

    /// Runs one write, counting it as a change when it changed anything.
    pub(crate) fn count_change<T>(&self, op: impl FnOnce() -> T) -> T {
        let before = self.clock.mutations.load(Ordering::Relaxed);
        let result = op();
        if self.clock.mutations.load(Ordering::Relaxed) != before {
            self.changes.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    /// WATCH's view of a key: its version if it is live, `None` if not.
    pub fn watch_stamp(&self, key: &[u8], now: Millis) -> Option<u32> {
        let hash = self.hash(key);
        self.read(hash).get(hash, key, now).map(|e| e.version)
    }

    // ---- multi-key ----------------------------------------------------------

    /// MGET: one atomic view over all the keys.
    pub fn get_many(&self, keys: &[Bytes], now: Millis) -> Vec<Option<Bytes>> {
        let hashes: Vec<u64> = keys.iter().map(|k| self.hash(k)).collect();
        let locked = self.read_many(&hashes);
        keys.iter()
            .zip(&hashes)
            .map(|(key, &hash)| {
                locked.stripe(hash).get(hash, key, now).and_then(|e| e.value.as_str()).map(Bytes::copy_from_slice)
            })
            .collect()
    }

    /// MSET: all pairs become visible at once; expiries are cleared.
    pub fn put_many(&self, pairs: Vec<(Bytes, Bytes)>, now: Millis) {
        let hashes: Vec<u64> = pairs.iter().map(|(k, _)| self.hash(k)).collect();
        let owned: Vec<(Bytes, Blob)> = pairs.into_iter().map(|(k, v)| (k, blob(v))).collect();
        // Declared before the guards, so dropped after them.
        let mut replaced = Vec::with_capacity(owned.len());
        let mut locked = self.write_many(&hashes);
        for ((key, value), hash) in owned.into_iter().zip(hashes) {
            replaced.push(locked.stripe_mut(hash).put(hash, &key, Value::Str(value), None, now));
        }
    }

    /// DEL k1 k2 …: how many live keys were removed.
    pub fn delete_many(&self, keys: &[Bytes], now: Millis) -> usize {
        let hashes: Vec<u64> = keys.iter().map(|k| self.hash(k)).collect();
        let mut locked = self.write_many(&hashes);
        keys.iter().zip(hashes).filter(|(key, hash)| locked.stripe_mut(*hash).remove(*hash, key, now).is_some()).count()
    }

    /// EXISTS k1 k2 …: counts repeats, as Redis does.
    pub fn count_existing(&self, keys: &[Bytes], now: Millis) -> usize {
        let hashes: Vec<u64> = keys.iter().map(|k| self.hash(k)).collect();
        let locked = self.read_many(&hashes);
        keys.iter().zip(hashes).filter(|(key, hash)| locked.stripe(*hash).get(*hash, key, now).is_some()).count()
    }

    // ---- whole keyspace -----------------------------------------------------

    /// Number of stored keys, including expired ones not yet swept (as
    /// Redis's DBSIZE).
    pub fn len(&self) -> usize {
        self.stripes.iter().map(|s| s.0.read().table.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// RANDOMKEY: a live key picked with `seed`: a random stripe (the next
    /// one holding keys), then a random entry of it. Not uniform across
    /// stripes of different sizes; `None` when there is no live key.
    pub fn random_key(&self, seed: u64, now: Millis) -> Option<Bytes> {
        let mut rng = crate::cmd::rng::Rng::new(seed);
        let first = rng.below(STRIPES);
        for i in 0..STRIPES {
            let stripe = self.stripes[(first + i) % STRIPES].0.read();
            let live = stripe.table.iter().filter(|e| e.is_live(now)).count();
            if live > 0 {
                let pick = rng.below(live);
                return stripe
                    .table
                    .iter()
                    .filter(|e| e.is_live(now))
                    .nth(pick)
                    .map(|e| Bytes::copy_from_slice(&e.key));
            }
        }
        None
    }

    /// Number of keys that carry an expiry (INFO keyspace's `expires`).
    pub fn volatile_len(&self) -> usize {
        self.stripes.iter().map(|s| s.0.read().expiries.len()).sum()
    }

    /// FLUSHALL: every stripe held at once (ascending order, the lock-order
    /// rule), so a concurrent MSET is either wholly before or wholly after.
    pub fn clear(&self) {
        let mut stripes = self.lock_all();
        for stripe in stripes.iter_mut() {
            stripe.clear();
        }
    }

    /// KEYS pattern: live keys matching the glob, stripe by stripe (not one
    /// atomic view; writers are blocked from one stripe at a time only).
    pub fn keys(&self, pattern: &[u8], now: Millis) -> Vec<Bytes> {
        let mut out = Vec::new();
        for stripe in self.stripes.iter() {
            collect_matching(&stripe.0.read(), pattern, now, &mut out);
        }
        out
    }

    /// SCAN. Keys are visited in the order of their *scan position*, the
    /// key's hash rotated so that its stripe bits come first: positions are
    /// fixed for the life of the `Db` (tables may grow; hashes do not
    /// change), and ordered stripe by stripe. The cursor is the next
    /// position to visit; a call examines about `count` keys (more when
    /// keys share a position) from one stripe and returns those matching
    /// `pattern`; 0 means done. A key present for the whole scan is returned
    /// exactly once.
    pub fn scan(&self, cursor: u64, pattern: Option<&[u8]>, count: usize, now: Millis) -> (u64, Vec<Bytes>) {
        // A cursor we never issued (high bits set) is taken modulo the
        // cursor space: it gets some page, never a panic.
        let mut next = cursor & ((1 << SCAN_CURSOR_BITS) - 1);
        let count = count.max(1);
        loop {
            let index = (next >> SCAN_STRIPE_SHIFT) as usize;
            debug_assert!(index < STRIPES);
            let stripe = self.stripes[index].0.read();
            let mut candidates: Vec<(u64, &Entry)> = stripe
                .table
                .iter()
                .map(|e| (scan_position(self.hasher.hash_one(&e.key[..])), &**e))
                .filter(|(position, _)| *position >= next)
                .collect();
            candidates.sort_unstable_by_key(|(position, _)| *position);
            // Never split keys that share a position across two calls.
            let mut take = candidates.len().min(count);
            while take < candidates.len() && candidates[take].0 == candidates[take - 1].0 {
                take += 1;
            }
            let pattern = pattern.unwrap_or(b"*");
            let keys: Vec<Bytes> = candidates[..take]
                .iter()
                .filter(|(_, e)| e.is_live(now) && (pattern == b"*" || glob_match(pattern, &e.key)))
                .map(|(_, e)| Bytes::copy_from_slice(&e.key))
                .collect();
            let stripe_done = take == candidates.len();
            next = if !stripe_done {
                candidates[take - 1].0 + 1
            } else if index + 1 < STRIPES {
                ((index + 1) as u64) << SCAN_STRIPE_SHIFT
            } else {
                0
            };
            // An empty stripe gives nothing to return: go on to the next
            // rather than answer with an empty page.
            if take > 0 || next == 0 {
                return (next, keys);
            }
        }
    }

    /// Keys stored in `slot` (CLUSTER COUNTKEYSINSLOT), in O(1). Like
    /// `len`, it includes expired keys not yet swept.
    pub fn count_in_slot(&self, slot: Slot) -> usize {
        self.counts.get(slot) as usize
    }

    /// Up to `max` live keys in `slot` (CLUSTER GETKEYSINSLOT). Scans the
    /// keyspace: O(keys), acceptable for an administrative command.
    pub fn keys_in_slot(&self, slot: Slot, max: usize, now: Millis) -> Vec<Bytes> {
        let mut keys = Vec::new();
        self.for_each_live(now, |e| {
            if keys.len() < max && e.slot == slot {
                keys.push(Bytes::copy_from_slice(&e.key));
            }
        });
        keys
    }

    /// Removes expired keys, looking at no more than `budget` of them, and
    /// resumes where the previous call stopped. Returns how many were removed.
    pub fn sweep_expired(&self, now: Millis, budget: usize) -> usize {
        let mut removed = 0;
        for _ in 0..STRIPES {
            if removed >= budget {
                break;
            }
            let index = self.sweep_cursor.fetch_add(1, Ordering::Relaxed) % STRIPES;
            removed += self.stripes[index].0.write().sweep(now, budget - removed);
        }
        debug_assert!(removed <= budget);
        removed
    }

    /// Up to `budget` keys expired at `now`, earliest first per stripe,
    /// without removing them: a Raft leader proposes their deletion
    /// (`WriteOp::PurgeExpired`) so that every replica removes the same keys.
    pub fn expired_keys(&self, now: Millis, budget: usize) -> Vec<Bytes> {
        let mut keys = Vec::new();
        for _ in 0..STRIPES {
            if keys.len() >= budget {
                break;
            }
            let index = self.sweep_cursor.fetch_add(1, Ordering::Relaxed) % STRIPES;
            self.stripes[index].0.read().expired(now, budget - keys.len(), &mut keys);
        }
        debug_assert!(keys.len() <= budget);
        keys
    }

    /// Removes those of `keys` that are expired at `now` (a key written
    /// again since it was listed is live and stays). Returns how many went.
    pub fn purge_expired(&self, keys: &[Bytes], now: Millis) -> usize {
        keys.iter()
            .filter(|key| {
                let hash = self.hash(key);
                self.write(hash).purge_if_expired(hash, key, now)
            })
            .count()
    }

    /// Visits every live entry, one stripe at a time. Used by snapshots.
    pub(crate) fn for_each_live(&self, now: Millis, mut f: impl FnMut(&Entry)) {
        for stripe in self.stripes.iter() {
            for e in stripe.0.read().table.iter().filter(|e| e.is_live(now)) {
                f(e);
            }
        }
    }

    /// Clears every stripe and inserts `entries`, holding all stripe locks
    /// (in ascending order, the lock-order rule) so no reader sees a mix.
    pub(crate) fn replace_all(&self, entries: Vec<Stored>, now: Millis) {
        let mut stripes: Vec<_> = self.stripes.iter().map(|s| s.0.write()).collect();
        for stripe in stripes.iter_mut() {
            stripe.clear();
        }
        for stored in entries {
            let hash = self.hash(&stored.key);
            let _replaced = stripes[Self::stripe_index(hash)].put_stored(hash, stored, now);
        }
    }

    /// Inserts an entry read back from a snapshot.
    pub(crate) fn restore_entry(&self, stored: Stored, now: Millis) {
        let hash = self.hash(&stored.key);
        let _replaced = self.write(hash).put_stored(hash, stored, now);
    }
}

fn collect_matching(stripe: &Stripe, pattern: &[u8], now: Millis, out: &mut Vec<Bytes>) {
    let all = pattern == b"*";
    out.extend(
        stripe
            .table
            .iter()
            .filter(|e| e.is_live(now) && (all || glob_match(pattern, &e.key)))
            .map(|e| Bytes::copy_from_slice(&e.key)),
    );
}

fn sorted_stripes(hashes: &[u64]) -> Vec<usize> {
    let mut indices: Vec<usize> = hashes.iter().map(|&h| Db::stripe_index(h)).collect();
    indices.sort_unstable();
    indices.dedup();
    indices
}

/// Guards over a sorted set of stripes.
pub(crate) struct Locked<G> {
    indices: Vec<usize>,
    guards: Vec<G>,
}

impl<G: std::ops::Deref<Target = Stripe>> Locked<G> {
    fn position(&self, hash: u64) -> usize {
        let index = Db::stripe_index(hash);
        self.indices.binary_search(&index).expect("stripe of every key was locked")
    }

    pub(crate) fn stripe(&self, hash: u64) -> &Stripe {
        &self.guards[self.position(hash)]
    }
}

impl<G: std::ops::DerefMut<Target = Stripe>> Locked<G> {
    pub(crate) fn stripe_mut(&mut self, hash: u64) -> &mut Stripe {
        let at = self.position(hash);
        &mut self.guards[at]
    }
}

/// Parses a value the way Redis's `string2ll` does: optional `-`, digits, no
/// leading zeros, no sign on zero, no spaces, within i64.
pub fn parse_i64(bytes: &[u8]) -> Option<i64> {
    let digits = bytes.strip_prefix(b"-").unwrap_or(bytes);
    let valid = match digits {
        [] => false,
        [b'0'] => digits.len() == bytes.len(),
        [first, ..] => (b'1'..=b'9').contains(first) && digits.iter().all(u8::is_ascii_digit),
    };
    if !valid || bytes.len() > 20 {
        return None;
    }
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::SetExpiry;
    use crate::slot::key_slot;

    #[test]
    fn scan_pages_follow_count_and_visit_each_key_once() {
        let db = Db::new();
        for i in 0..1000 {
            db.put(Bytes::from(format!("key:{i}")), Bytes::from_static(b"v"), 0);
        }
        for count in [1, 10, 100] {
            let (mut cursor, mut seen, mut pages) = (0u64, std::collections::HashSet::new(), 0);
            loop {
                let (next, keys) = db.scan(cursor, None, count, 0);
                assert!(keys.len() <= count, "page of {} for COUNT {count}", keys.len());
                for key in keys {
                    assert!(seen.insert(key), "a key came back twice");
                }
                pages += 1;
                assert!(pages <= 1000 + STRIPES, "scan does not terminate");
                if next == 0 {
                    break;
                }
                cursor = next;
            }
            assert_eq!(seen.len(), 1000, "COUNT {count}");
        }
        // Any cursor a client sends is answered, never a panic.
        for cursor in [1, u64::MAX, 1 << 57, (1 << 63) + 12345] {
            let _ = db.scan(cursor, Some(b"key:*"), 5, 0);
        }
    }

    #[test]
    fn xx_lt_needs_an_existing_expiry() {
        let db = Db::new();
        db.put(Bytes::from_static(b"k"), Bytes::from_static(b"v"), 0);
        // LT alone treats a persistent key as infinitely far: it qualifies.
        assert!(!db.expire_at(b"k", 100, ExpireCondition::IfSomeAndLess, 0));
        assert_eq!(db.ttl(b"k", 0), Ttl::Persistent);
        assert!(db.expire_at(b"k", 100, ExpireCondition::IfLess, 0));
        assert!(!db.expire_at(b"k", 200, ExpireCondition::IfSomeAndLess, 0));
        assert!(db.expire_at(b"k", 50, ExpireCondition::IfSomeAndLess, 0));
        assert_eq!(db.ttl(b"k", 0), Ttl::ExpiresIn(50));
    }

    #[test]
    fn slot_counts_follow_inserts_and_removals() {
        let db = Db::new();
        let slot = key_slot(b"{tag}a");
        let key = |s: &str| Bytes::copy_from_slice(s.as_bytes());
        db.put(key("{tag}a"), key("1"), 0);
        db.put(key("{tag}a"), key("2"), 0); // overwrite: still one
        db.put(key("{tag}b"), key("1"), 0);
        db.put_many(vec![(key("{tag}c"), key("1")), (key("other"), key("1"))], 0);
        assert_eq!(db.count_in_slot(slot), 3);
        assert!(db.delete(b"{tag}b", 0));
        assert_eq!(db.count_in_slot(slot), 2);
        let opts = SetOptions { expiry: SetExpiry::At(10), ..Default::default() };
        db.set(key("{tag}d"), key("1"), &opts, 0);
        assert_eq!(db.count_in_slot(slot), 3);
        assert_eq!(db.sweep_expired(11, 100), 1);
        assert_eq!(db.count_in_slot(slot), 2);
        assert_eq!(db.keys_in_slot(slot, 10, 11).len(), 2);
        db.clear();
        assert_eq!(db.count_in_slot(slot), 0);
        assert_eq!(db.count_in_slot(key_slot(b"other")), 0);
    }
}
