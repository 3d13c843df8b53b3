//! A hash: fields to values, in insertion order (removal swaps the last
//! field into the hole). Packed (`listpack`) until it first outgrows
//! `hash-max-listpack-*`, then a hash table (`hashtable`); Redis never
//! converts back, nor does this. Both forms keep the same order, so a
//! replica whose node-local limits differ lists the fields alike.

use bytes::Bytes;

use indexmap::IndexMap;

use super::packed::{Items, Packed};
use super::Hasher;
use crate::encoding::{HASH_ENTRIES, HASH_VALUE};
use crate::value::{blob, Blob};

#[derive(Clone)]
pub struct HashValue {
    repr: Repr,
}

#[derive(Clone)]
enum Repr {
    /// Field, value, field, value, …
    Small(Packed),
    Big(Box<IndexMap<Blob, Blob, Hasher>>),
}

impl Default for HashValue {
    fn default() -> Self {
        HashValue { repr: Repr::Small(Packed::default()) }
    }
}

impl HashValue {
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Small(p) => p.len() / 2,
            Repr::Big(map) => map.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match &self.repr {
            Repr::Small(_) => self.iter().find(|(f, _)| *f == field).map(|(_, v)| v),
            Repr::Big(map) => map.get(field).map(|v| &v[..]),
        }
    }

    /// Sets a field; true when it is new. An existing field keeps its place.
    pub fn insert(&mut self, field: Bytes, value: Bytes) -> bool {
        if field.len().max(value.len()) > HASH_VALUE.size() {
            self.grow();
        }
        if let Repr::Small(p) = &mut self.repr {
            match position(p, &field) {
                Some(i) => {
                    p.replace(2 * i + 1, &value);
                    return false;
                }
                None if p.len() / 2 < HASH_ENTRIES.size() => {
                    p.push(&[&field, &value]);
                    return true;
                }
                None => self.grow(),
            }
        }
        let Repr::Big(map) = &mut self.repr else { unreachable!("grown above") };
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
            Repr::Small(p) => match position(p, field) {
                Some(i) => {
                    p.swap_remove_run(2 * i, 2);
                    true
                }
                None => false,
            },
            Repr::Big(map) => map.swap_remove(field).is_some(),
        }
    }

    pub fn iter(&self) -> Iter<'_> {
        match &self.repr {
            Repr::Small(p) => Iter::Small(p.iter()),
            Repr::Big(map) => Iter::Big(map.iter()),
        }
    }

    /// The field at `index` in storage order.
    pub fn at(&self, index: usize) -> Option<(&[u8], &[u8])> {
        match &self.repr {
            Repr::Small(_) => self.iter().nth(index),
            Repr::Big(map) => map.get_index(index).map(|(f, v)| (&f[..], &v[..])),
        }
    }

    pub fn encoding(&self) -> &'static str {
        match self.repr {
            Repr::Small(_) => "listpack",
            Repr::Big(_) => "hashtable",
        }
    }

    /// Moves the fields, in order, into a hash table.
    fn grow(&mut self) {
        let Repr::Small(p) = &self.repr else { return };
        let mut map = IndexMap::with_capacity_and_hasher(p.len() / 2 + 1, Hasher::default());
        let mut items = p.iter();
        while let (Some(f), Some(v)) = (items.next(), items.next()) {
            map.insert(Blob::from(f), Blob::from(v));
        }
        self.repr = Repr::Big(Box::new(map));
    }
}

/// The pair index of `field` in a packed hash.
fn position(p: &Packed, field: &[u8]) -> Option<usize> {
    p.iter().step_by(2).position(|f| f == field)
}

/// A hash's fields and values in storage order.
pub enum Iter<'a> {
    Small(Items<'a>),
    Big(indexmap::map::Iter<'a, Blob, Blob>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Iter::Small(items) => Some((items.next()?, items.next().expect("a value after every field"))),
            Iter::Big(pairs) => pairs.next().map(|(f, v)| (&f[..], &v[..])),
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
            big.grow();
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
