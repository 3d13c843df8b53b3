//! A hash: fields to values, in insertion order (removal swaps the last
//! field into the hole), reported as `listpack` until it first outgrows
//! `hash-max-listpack-*`, `hashtable` from then on (Redis never converts
//! back).

use bytes::Bytes;

use indexmap::IndexMap;

use super::Hasher;
use crate::encoding::{HASH_ENTRIES, HASH_VALUE};

#[derive(Clone, Default)]
pub struct HashValue {
    map: IndexMap<Bytes, Bytes, Hasher>,
    big: bool,
}

impl HashValue {
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn get(&self, field: &[u8]) -> Option<&Bytes> {
        self.map.get(field)
    }

    /// Sets a field; true when it is new.
    pub fn insert(&mut self, field: Bytes, value: Bytes) -> bool {
        self.note_size(field.len().max(value.len()), 1);
        self.map.insert(field, value).is_none()
    }

    pub fn remove(&mut self, field: &[u8]) -> bool {
        self.map.swap_remove(field).is_some()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Bytes, &Bytes)> {
        self.map.iter()
    }

    /// The field at `index` in storage order.
    pub fn at(&self, index: usize) -> Option<(&Bytes, &Bytes)> {
        self.map.get_index(index)
    }

    pub fn encoding(&self) -> &'static str {
        if self.big {
            "hashtable"
        } else {
            "listpack"
        }
    }

    /// Switches to the large form once an element or the count passes the limits.
    fn note_size(&mut self, longest: usize, adding: usize) {
        if longest > HASH_VALUE.size() || self.map.len() + adding > HASH_ENTRIES.size() {
            self.big = true;
        }
    }
}
