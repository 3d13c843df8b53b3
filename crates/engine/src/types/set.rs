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

use super::Hasher;
use crate::encoding::{SET_ENTRIES, SET_INTS, SET_VALUE};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
        SetValue { members: IndexSet::default(), form }
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
        }
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

    /// Adds a member from a client (stored as a private copy); true when
    /// it is new.
    pub fn insert(&mut self, member: Bytes) -> bool {
        !self.members.contains(&member) && self.add(member)
    }

    /// Adds a member of another set: already a private copy, so shared.
    pub fn insert_shared(&mut self, member: &Bytes) -> bool {
        !self.members.contains(member) && self.add(member.clone())
    }

    fn add(&mut self, member: Bytes) -> bool {
        let members = &self.members;
        self.form = grown(self.form, members.len(), &member, || members.iter().map(Bytes::len).max().unwrap_or(0));
        self.members.insert(member)
    }

    pub fn remove(&mut self, member: &[u8]) -> bool {
        self.members.swap_remove(member)
    }

    /// The member at `index` in storage order.
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

    /// Reports `intset` when every member is an integer and there are few
    /// enough (Redis's `maybeConvertToIntset`, applied to SINTERSTORE's
    /// result).
    pub fn compact_ints(&mut self) {
        if self.form != Form::Ints && self.len() <= int_limit() && self.members.iter().all(|m| is_int(m)) {
            self.form = Form::Ints;
        }
    }

    /// The encoding the members would have if added one by one to a new
    /// set: what SPOP leaves when it takes most of a set, as Redis then
    /// copies the members that stay into a new intset (from an intset) or
    /// listpack (from anything else).
    pub fn rebuild(&mut self) {
        let mut form = if self.form == Form::Ints { Form::Ints } else { Form::Small };
        let mut longest = 0;
        for (len, member) in self.members.iter().enumerate() {
            form = grown(form, len, member, || longest);
            longest = longest.max(member.len());
        }
        self.form = form;
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
