//! A hash: fields to values, in insertion order (removal swaps the last
//! field into the hole). Reported `listpack` until it first outgrows
//! `hash-max-listpack-*`, then `hashtable` (Redis never converts back, nor
//! does this). Stored packed while `listpack` and at most `PACKED_MAX`
//! fields, a hash table otherwise: both forms keep the same order, so a
//! replica whose node-local limits differ lists the fields alike.

use bytes::Bytes;

use indexmap::IndexMap;

use super::packed::{Items, Packed};
use super::Hasher;
use crate::encoding::{HASH_ENTRIES, HASH_VALUE};
use crate::value::{blob, Blob};

/// The most fields kept packed, whatever `hash-max-listpack-entries` says
/// (CONFIG SET may raise it to millions; every packed operation walks the
/// buffer).
const PACKED_MAX: usize = 512;

#[derive(Clone)]
pub struct HashValue {
    repr: Repr,
    /// Reported `hashtable`: has outgrown the listpack limits once.
    big: bool,
}

#[derive(Clone)]
enum Repr {
    /// Field, value, field, value, …
    Packed(Packed),
    Table(Box<IndexMap<Blob, Blob, Hasher>>),
}

impl Default for HashValue {
    fn default() -> Self {
        HashValue { repr: Repr::Packed(Packed::default()), big: false }
    }
}

impl HashValue {
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Packed(p) => p.len() / 2,
            Repr::Table(map) => map.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match &self.repr {
            Repr::Packed(_) => self.iter().find(|(f, _)| *f == field).map(|(_, v)| v),
            Repr::Table(map) => map.get(field).map(|v| &v[..]),
        }
    }

    /// Sets a field; true when it is new. An existing field keeps its place.
    pub fn insert(&mut self, field: Bytes, value: Bytes) -> bool {
        if field.len().max(value.len()) > HASH_VALUE.size() {
            self.big = true;
            self.move_to_table();
        }
        if let Repr::Packed(p) = &mut self.repr {
            let len = p.len() / 2;
            match position(p, &field) {
                Some(i) => {
                    p.replace(2 * i + 1, &value);
                    return false;
                }
                None if len < HASH_ENTRIES.size() && len < PACKED_MAX => {
                    p.push(&[&field, &value]);
                    return true;
                }
                None => {
                    self.big |= len >= HASH_ENTRIES.size();
                    self.move_to_table();
                }
            }
        }
        let Repr::Table(map) = &mut self.repr else { unreachable!("moved to a table above") };
        match map.get_mut(&field[..]) {
            Some(v) => {
                *v = blob(value);
                false
            }
            None => map.insert(blob(field), blob(value)).is_none(),
        }
    }

    pub fn remove(&mut self, field: &[u8]) -> bool {
        match &mut self.repr {
            Repr::Packed(p) => match position(p, field) {
                Some(i) => {
                    p.swap_remove_run(2 * i, 2);
                    true
                }
                None => false,
            },
            Repr::Table(map) => map.swap_remove(field).is_some(),
        }
    }

    pub fn iter(&self) -> Iter<'_> {
        match &self.repr {
            Repr::Packed(p) => Iter::Packed(p.iter()),
            Repr::Table(map) => Iter::Table(map.iter()),
        }
    }

    /// The fields by position in O(1) each, for commands that pick many
    /// positions (HRANDFIELD with a count, HSCAN): a packed hash's fields
    /// are listed once, a table is read in place.
    pub fn indexed(&self) -> Indexed<'_> {
        match &self.repr {
            Repr::Packed(_) => Indexed::Listed(self.iter().collect()),
            Repr::Table(map) => Indexed::Table(map),
        }
    }

    /// The field at `index` in storage order.
    pub fn at(&self, index: usize) -> Option<(&[u8], &[u8])> {
        match &self.repr {
            Repr::Packed(_) => self.iter().nth(index),
            Repr::Table(map) => map.get_index(index).map(|(f, v)| (&f[..], &v[..])),
        }
    }

    pub fn encoding(&self) -> &'static str {
        if self.big {
            "hashtable"
        } else {
            "listpack"
        }
    }

    /// Moves the fields, in order, into a hash table (the encoding it
    /// reports is the caller's to change).
    fn move_to_table(&mut self) {
        let Repr::Packed(p) = &self.repr else { return };
        let mut map = IndexMap::with_capacity_and_hasher(p.len() / 2 + 1, Hasher::default());
        let mut items = p.iter();
        while let (Some(f), Some(v)) = (items.next(), items.next()) {
            map.insert(Blob::from(f), Blob::from(v));
        }
        self.repr = Repr::Table(Box::new(map));
    }
}

/// The pair index of `field` in a packed hash.
fn position(p: &Packed, field: &[u8]) -> Option<usize> {
    p.iter().step_by(2).position(|f| f == field)
}

/// A hash's fields by position (`HashValue::indexed`).
pub enum Indexed<'a> {
    Listed(Vec<(&'a [u8], &'a [u8])>),
    Table(&'a IndexMap<Blob, Blob, Hasher>),
}

impl<'a> Indexed<'a> {
    pub fn get(&self, index: usize) -> Option<(&'a [u8], &'a [u8])> {
        match self {
            Indexed::Listed(pairs) => pairs.get(index).copied(),
            Indexed::Table(map) => map.get_index(index).map(|(f, v)| (&f[..], &v[..])),
        }
    }
}

/// A hash's fields and values in storage order.
pub enum Iter<'a> {
    Packed(Items<'a>),
    Table(indexmap::map::Iter<'a, Blob, Blob>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Iter::Packed(items) => Some((items.next()?, items.next().expect("a value after every field"))),
            Iter::Table(pairs) => pairs.next().map(|(f, v)| (&f[..], &v[..])),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// A packed hash and a hash table given the same writes hold the
        /// same fields in the same order: replicas whose node-local limits
        /// differ pick the same HRANDFIELD.
        #[test]
        fn both_forms_keep_one_order(ops in prop::collection::vec((0u8..3, 0u8..12, 0u8..4), 0..80)) {
            let (mut small, mut big) = (HashValue::default(), HashValue::default());
            big.move_to_table();
            prop_assert_eq!(big.encoding(), "listpack", "storage alone never changes the encoding");
            for (op, field, value) in ops {
                let field = Bytes::from(format!("f{field}"));
                let value = Bytes::from("v".repeat(usize::from(value)));
                if op == 0 {
                    prop_assert_eq!(small.remove(&field), big.remove(&field));
                } else {
                    prop_assert_eq!(small.insert(field.clone(), value.clone()), big.insert(field, value));
                }
                prop_assert_eq!(small.encoding(), "listpack");
                prop_assert_eq!(small.iter().collect::<Vec<_>>(), big.iter().collect::<Vec<_>>());
                prop_assert_eq!(small.len(), big.len());
            }
            for i in 0..=small.len() {
                prop_assert_eq!(small.at(i), big.at(i));
            }
        }
    }
}
