//! The thresholds behind OBJECT ENCODING, with Redis's names and defaults
//! (`hash-max-listpack-entries`, …), settable with CONFIG SET.
//!
//! They decide only what a value *reports* (OBJECT ENCODING, and whether
//! a small collection's SCAN answers in one page), never what a write
//! stores, so a node may change them alone: replicas stay identical in
//! content whatever their settings (as Redis replicas with their own
//! configs do).

use std::sync::atomic::{AtomicI64, Ordering};

/// One named threshold.
pub struct Limit {
    pub name: &'static str,
    /// Redis's older name (`ziplist`), accepted as an alias.
    pub alias: &'static str,
    value: AtomicI64,
}

impl Limit {
    const fn new(name: &'static str, alias: &'static str, value: i64) -> Limit {
        Limit { name, alias, value: AtomicI64::new(value) }
    }

    pub fn get(&self) -> i64 {
        self.value.load(Ordering::Relaxed)
    }

    pub fn set(&self, value: i64) {
        self.value.store(value, Ordering::Relaxed);
    }

    /// The threshold as a size (negative means none may be stored small).
    pub(crate) fn size(&self) -> usize {
        usize::try_from(self.get()).unwrap_or(0)
    }
}

pub static HASH_ENTRIES: Limit = Limit::new("hash-max-listpack-entries", "hash-max-ziplist-entries", 128);
pub static HASH_VALUE: Limit = Limit::new("hash-max-listpack-value", "hash-max-ziplist-value", 64);
pub static SET_INTS: Limit = Limit::new("set-max-intset-entries", "set-max-intset-entries", 512);
pub static SET_ENTRIES: Limit = Limit::new("set-max-listpack-entries", "set-max-listpack-entries", 128);
pub static SET_VALUE: Limit = Limit::new("set-max-listpack-value", "set-max-listpack-value", 64);
pub static ZSET_ENTRIES: Limit = Limit::new("zset-max-listpack-entries", "zset-max-ziplist-entries", 128);
pub static ZSET_VALUE: Limit = Limit::new("zset-max-listpack-value", "zset-max-ziplist-value", 64);
/// Positive: entries per list node; negative: -1..-5 for 4..64 KiB nodes.
pub static LIST_SIZE: Limit = Limit::new("list-max-listpack-size", "list-max-ziplist-size", -2);

/// Accepted and reported, with no effect: shoal does not compress list
/// nodes (docs/compatibility.md).
pub static LIST_COMPRESS_DEPTH: Limit = Limit::new("list-compress-depth", "list-compress-depth", 0);

pub static ALL: [&Limit; 9] = [
    &HASH_ENTRIES,
    &HASH_VALUE,
    &SET_INTS,
    &SET_ENTRIES,
    &SET_VALUE,
    &ZSET_ENTRIES,
    &ZSET_VALUE,
    &LIST_SIZE,
    &LIST_COMPRESS_DEPTH,
];

/// The limit called `name` (either of its names, any case).
pub fn find(name: &[u8]) -> Option<&'static Limit> {
    ALL.iter()
        .copied()
        .find(|l| name.eq_ignore_ascii_case(l.name.as_bytes()) || name.eq_ignore_ascii_case(l.alias.as_bytes()))
}

/// Whether a list of `len` items of `bytes` in total fits one listpack
/// node under `list-max-listpack-size`.
pub(crate) fn list_fits(len: usize, bytes: usize) -> bool {
    match LIST_SIZE.get() {
        n if n > 0 => len <= n as usize,
        n => {
            let kib = 4usize << ((-n).clamp(1, 5) - 1);
            bytes <= kib * 1024
        }
    }
}
