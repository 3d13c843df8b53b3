//! A set: members in insertion order (removal swaps the last member into
//! the hole), reported with Redis 7.2's encodings: `intset` while every
//! member is an integer and there are at most `set-max-intset-entries`,
//! `listpack` while within `set-max-listpack-*`, `hashtable` otherwise.
//!
//! The switches follow t_set.c: adding only ever moves a set towards
//! `hashtable`, and removing never moves it back. Only the commands that
//! build a new set (SINTERSTORE's result, the set SPOP leaves when it takes
//! most of one) can report a smaller encoding than their sources.

use bytes::Bytes;

use crate::db::parse_i64;
use indexmap::IndexSet;

use super::packed::{Items, Packed};
use super::Hasher;
use crate::encoding::{SET_ENTRIES, SET_INTS, SET_VALUE};
use crate::value::{blob, Blob};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Form {
    Ints,
    Small,
    Big,
}

/// The most members kept packed. The form reported (`intset`,
/// `listpack`) follows Redis's limits, which CONFIG SET may raise to
/// millions; the storage switches to a hash table past this many members
/// whatever the form says, so no set pays O(members) per lookup beyond it.
/// Both storages keep one order, so the switch is invisible.
const PACKED_MAX: usize = 512;

#[derive(Clone)]
pub struct SetValue {
    members: Members,
    form: Form,
}

#[derive(Clone)]
enum Members {
    Packed(Packed),
    Table(Box<IndexSet<Blob, Hasher>>),
}

impl Default for SetValue {
    fn default() -> Self {
        SetValue::with_form(Form::Ints)
    }
}

impl SetValue {
    /// An empty set that starts as an intset, as Redis's SUNIONSTORE and
    /// SDIFFSTORE results do.
    pub fn new() -> SetValue {
        SetValue::default()
    }

    /// An empty set that starts as a listpack, as SINTERSTORE's result does
    /// when its smallest source is not an intset.
    pub fn listpack() -> SetValue {
        SetValue::with_form(Form::Small)
    }

    /// An empty set about to receive `first` and about `hint` members in
    /// all (Redis's `setTypeCreate`, used by SADD and SMOVE): an intset if
    /// `first` is an integer and the hint fits one, else a listpack if the
    /// hint fits one.
    pub fn for_first(first: &[u8], hint: usize) -> SetValue {
        let form = if is_int(first) && hint <= int_limit() {
            Form::Ints
        } else if hint <= SET_ENTRIES.size() {
            Form::Small
        } else {
            Form::Big
        };
        SetValue::with_form(form)
    }

    fn with_form(form: Form) -> SetValue {
        let mut set = SetValue { members: Members::Packed(Packed::default()), form };
        set.settle();
        set
    }

    /// Goes to `hashtable` ahead of adding `hint` members when that many
    /// could not fit the current encoding (Redis's `setTypeMaybeConvert`,
    /// which counts SADD's arguments, duplicates included).
    pub fn reserve(&mut self, hint: usize) {
        let over = match self.form {
            Form::Ints => hint > int_limit(),
            Form::Small => hint > SET_ENTRIES.size(),
            Form::Big => false,
        };
        if over {
            self.form = Form::Big;
            self.settle();
        }
    }

    pub fn len(&self) -> usize {
        match &self.members {
            Members::Packed(p) => p.len(),
            Members::Table(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn contains(&self, member: &[u8]) -> bool {
        self.position(member).is_some()
    }

    fn position(&self, member: &[u8]) -> Option<usize> {
        match &self.members {
            Members::Packed(p) => p.iter().position(|m| m == member),
            Members::Table(t) => t.get_index_of(member),
        }
    }

    /// Adds a member from a client; true when it is new.
    pub fn insert(&mut self, member: Bytes) -> bool {
        !self.contains(&member) && self.add(member)
    }

    /// Adds a member of another set; true when it is new.
    pub fn insert_shared(&mut self, member: &[u8]) -> bool {
        !self.contains(member) && self.add(Bytes::copy_from_slice(member))
    }

    fn add(&mut self, member: Bytes) -> bool {
        let form = grown(self.form, self.len(), &member, || self.iter().map(<[u8]>::len).max().unwrap_or(0));
        self.form = form;
        self.settle_for(self.len() + 1);
        match &mut self.members {
            Members::Packed(p) => p.push(&[&member]),
            Members::Table(t) => {
                t.insert(blob(member));
            }
        }
        true
    }

    pub fn remove(&mut self, member: &[u8]) -> bool {
        match self.position(member) {
            Some(index) => {
                self.remove_at(index);
                true
            }
            None => false,
        }
    }

    /// Removes the member at `index` (in range): the last member takes its
    /// place.
    fn remove_at(&mut self, index: usize) {
        match &mut self.members {
            Members::Packed(p) => p.swap_remove_run(index, 1),
            Members::Table(t) => {
                t.swap_remove_index(index);
            }
        }
    }

    /// The member at `index` in storage order.
    pub fn at(&self, index: usize) -> Option<&[u8]> {
        match &self.members {
            Members::Packed(p) => p.get(index),
            Members::Table(t) => t.get_index(index).map(|m| &m[..]),
        }
    }

    /// Removes and returns the member at `index` (the last member takes
    /// its place).
    pub fn take(&mut self, index: usize) -> Option<Bytes> {
        let member = Bytes::copy_from_slice(self.at(index)?);
        self.remove_at(index);
        Some(member)
    }

    pub fn iter(&self) -> Iter<'_> {
        match &self.members {
            Members::Packed(p) => Iter::Packed(p.iter()),
            Members::Table(t) => Iter::Table(t.iter()),
        }
    }

    /// The members by position in O(1) each, for commands that pick many
    /// positions (SRANDMEMBER with a count, SSCAN): a packed set's members
    /// are listed once (at most `PACKED_MAX`), a table is read in place.
    pub fn indexed(&self) -> Indexed<'_> {
        match &self.members {
            Members::Packed(p) => Indexed::Listed(p.iter().collect()),
            Members::Table(t) => Indexed::Table(t),
        }
    }

    pub fn encoding(&self) -> &'static str {
        match self.form {
            Form::Ints => "intset",
            Form::Small => "listpack",
            Form::Big => "hashtable",
        }
    }

    /// Reports `intset` when every member is an integer and there are few
    /// enough (Redis's `maybeConvertToIntset`, applied to SINTERSTORE's
    /// result).
    pub fn compact_ints(&mut self) {
        if self.form != Form::Ints && self.len() <= int_limit() && self.iter().all(is_int) {
            self.form = Form::Ints;
            self.settle();
        }
    }

    /// The encoding the members would have if added one by one to a new
    /// set: what SPOP leaves when it takes most of a set, as Redis then
    /// copies the members that stay into a new intset (from an intset) or
    /// listpack (from anything else).
    pub fn rebuild(&mut self) {
        let mut form = if self.form == Form::Ints { Form::Ints } else { Form::Small };
        let mut longest = 0;
        for (len, member) in self.iter().enumerate() {
            form = grown(form, len, member, || longest);
            longest = longest.max(member.len());
        }
        self.form = form;
        self.settle();
    }

    fn settle(&mut self) {
        self.settle_for(self.len());
    }

    /// Puts the members in the storage a set of `len` members in this
    /// form uses, keeping their order.
    fn settle_for(&mut self, len: usize) {
        let packed = self.form != Form::Big && len <= PACKED_MAX;
        match (&self.members, packed) {
            (Members::Packed(p), false) => {
                let mut table = IndexSet::with_capacity_and_hasher(len, Hasher::default());
                table.extend(p.iter().map(Blob::from));
                self.members = Members::Table(Box::new(table));
            }
            (Members::Table(t), true) => {
                let mut p = Packed::default();
                p.push(&t.iter().map(|m| &m[..]).collect::<Vec<_>>());
                self.members = Members::Packed(p);
            }
            _ => {}
        }
    }
}

/// A set's members by position (`SetValue::indexed`).
pub enum Indexed<'a> {
    Listed(Vec<&'a [u8]>),
    Table(&'a IndexSet<Blob, Hasher>),
}

impl<'a> Indexed<'a> {
    pub fn get(&self, index: usize) -> Option<&'a [u8]> {
        match self {
            Indexed::Listed(items) => items.get(index).copied(),
            Indexed::Table(t) => t.get_index(index).map(|m| &m[..]),
        }
    }
}

/// A set's members in storage order.
pub enum Iter<'a> {
    Packed(Items<'a>),
    Table(indexmap::set::Iter<'a, Blob>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        match self {
            Iter::Packed(items) => items.next(),
            Iter::Table(members) => members.next().map(|m| &m[..]),
        }
    }
}

/// The form after adding a new `member` to `len` members (Redis's
/// `setTypeAddAux`). `longest` is the longest member so far, needed only
/// when an intset takes its first non-integer: Redis makes it a listpack
/// only if all its integers fit a listpack's value limit too.
fn grown(form: Form, len: usize, member: &[u8], longest: impl FnOnce() -> usize) -> Form {
    let fits_small = len < SET_ENTRIES.size() && member.len() <= SET_VALUE.size();
    match form {
        Form::Ints if is_int(member) => {
            if len + 1 > int_limit() {
                Form::Big
            } else {
                Form::Ints
            }
        }
        Form::Ints if fits_small && longest() <= SET_VALUE.size() => Form::Small,
        Form::Small if fits_small => Form::Small,
        _ => Form::Big,
    }
}

/// `set-max-intset-entries`, capped at 2^30 as Redis's intset is.
fn int_limit() -> usize {
    SET_INTS.size().min(1 << 30)
}

/// Whether Redis would store `member` in an intset (`string2ll`).
fn is_int(member: &[u8]) -> bool {
    parse_i64(member).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Packed and hash-table storage given the same writes hold the
        /// same members in the same order (SPOP picks alike on replicas
        /// whatever their limits), across switches both ways.
        #[test]
        fn both_storages_keep_one_order(ops in prop::collection::vec((0u8..4, 0u16..700), 0..1500)) {
            let (mut packed, mut table) = (SetValue::listpack(), SetValue::with_form(Form::Big));
            for (op, member) in ops {
                let member = Bytes::from(format!("m{member}"));
                match op {
                    0 => prop_assert_eq!(packed.remove(&member), table.remove(&member)),
                    1 if !packed.is_empty() => {
                        let at = usize::from(member[1]) % packed.len();
                        prop_assert_eq!(packed.take(at), table.take(at));
                    }
                    _ => prop_assert_eq!(packed.insert(member.clone()), table.insert(member)),
                }
                prop_assert!(packed.iter().eq(table.iter()));
            }
            for i in 0..=packed.len() {
                prop_assert_eq!(packed.at(i), table.at(i));
            }
            packed.rebuild();
            prop_assert!(packed.iter().eq(table.iter()));
        }
    }
}
