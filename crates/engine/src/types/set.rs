//! A set: members in insertion order (removal swaps the last member into
//! the hole), reported as `intset` while every member is an integer and
//! there are at most `set-max-intset-entries`, then `listpack` while under
//! `set-max-listpack-*`, then `hashtable`; the switches are one-way, as in
//! Redis.

use bytes::Bytes;

use crate::db::own;
use indexmap::IndexSet;

use super::Hasher;
use crate::encoding::{SET_ENTRIES, SET_INTS, SET_VALUE};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Form {
    Ints,
    Small,
    Big,
}

#[derive(Clone)]
pub struct SetValue {
    members: IndexSet<Bytes, Hasher>,
    form: Form,
}

impl Default for SetValue {
    fn default() -> Self {
        SetValue { members: IndexSet::default(), form: Form::Ints }
    }
}

impl SetValue {
    /// An empty set whose first members will be `first` (how Redis picks
    /// the starting encoding of SADD's and SINTERSTORE's results).
    pub fn new() -> SetValue {
        SetValue::default()
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub fn contains(&self, member: &[u8]) -> bool {
        self.members.contains(member)
    }

    /// Adds a member; true when it is new.
    pub fn insert(&mut self, member: Bytes) -> bool {
        if self.members.contains(&member) {
            return false;
        }
        self.note(&member);
        self.members.insert(own(member))
    }

    pub fn remove(&mut self, member: &[u8]) -> bool {
        self.members.swap_remove(member)
    }

    pub fn at(&self, index: usize) -> Option<&Bytes> {
        self.members.get_index(index)
    }

    /// Removes and returns the member at `index`.
    pub fn take(&mut self, index: usize) -> Option<Bytes> {
        self.members.swap_remove_index(index)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Bytes> {
        self.members.iter()
    }

    pub fn encoding(&self) -> &'static str {
        match self.form {
            Form::Ints => "intset",
            Form::Small => "listpack",
            Form::Big => "hashtable",
        }
    }

    fn note(&mut self, member: &[u8]) {
        let len = self.members.len() + 1;
        if self.form == Form::Ints && (crate::db::parse_i64(member).is_none() || len > SET_INTS.size()) {
            // Redis goes from intset straight to hashtable when the intset
            // limit is what was passed, or the set is already past listpack size.
            let small = len <= SET_ENTRIES.size() && member.len() <= SET_VALUE.size();
            self.form = if small && crate::db::parse_i64(member).is_none() { Form::Small } else { Form::Big };
        }
        if self.form == Form::Small && (len > SET_ENTRIES.size() || member.len() > SET_VALUE.size()) {
            self.form = Form::Big;
        }
    }
}
