//! What a key holds: a string or one of Redis's collections.
//!
//! Collections keep their elements in a deterministic order that depends
//! only on the operations applied (insertion order, removals swap the last
//! element into the hole), never on a hasher's seed. Replicas apply the
//! same operations, and a snapshot stores and restores that order, so a
//! random pick by index (SPOP, HRANDFIELD with the leader's seed) chooses
//! the same element on every replica.
//!
//! Elements are stored as they come: a write's arguments are the fresh
//! allocations its log entry was decoded into (`WriteOp::decode`), never
//! views of a network or log buffer.

use bytes::Bytes;

pub use crate::types::hash::HashValue;
pub use crate::types::list::ListValue;
pub use crate::types::set::SetValue;
pub use crate::types::zset::ZSetValue;

/// Stored bytes: a key, a string, an element. A `Box<[u8]>` (16 bytes, one
/// allocation of exactly the data) rather than `Bytes` (32 bytes, and a
/// second allocation the first time a `Vec`-backed `Bytes` is cloned):
/// per-key overhead is what decides how many keys fit in memory, and a
/// reply copies the few bytes it sends anyway.
pub type Blob = Box<[u8]>;

/// Takes ownership of `b` as a `Blob`: without a copy when `b` is the sole
/// owner of a buffer of exactly its size (a decoded log entry's argument),
/// with one when it is a view into a larger buffer (a connection's read
/// buffer, which a stored view would pin for as long as the key lives).
pub fn blob(b: Bytes) -> Blob {
    Vec::from(b).into_boxed_slice()
}

pub enum Value {
    Str(Blob),
    Hash(Box<HashValue>),
    List(Box<ListValue>),
    Set(Box<SetValue>),
    ZSet(Box<ZSetValue>),
}

/// A value's type, as TYPE names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    String,
    Hash,
    List,
    Set,
    ZSet,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::String => "string",
            Kind::Hash => "hash",
            Kind::List => "list",
            Kind::Set => "set",
            Kind::ZSet => "zset",
        }
    }

    /// The kind TYPE and SCAN's TYPE option call `name`.
    pub fn from_name(name: &[u8]) -> Option<Kind> {
        [Kind::String, Kind::Hash, Kind::List, Kind::Set, Kind::ZSet]
            .into_iter()
            .find(|k| name.eq_ignore_ascii_case(k.name().as_bytes()))
    }
}

impl Value {
    pub fn kind(&self) -> Kind {
        match self {
            Value::Str(_) => Kind::String,
            Value::Hash(_) => Kind::Hash,
            Value::List(_) => Kind::List,
            Value::Set(_) => Kind::Set,
            Value::ZSet(_) => Kind::ZSet,
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&[u8]> {
        match self {
            Value::Str(b) => Some(b),
            _ => None,
        }
    }

    /// OBJECT ENCODING's answer.
    pub fn encoding(&self) -> &'static str {
        match self {
            Value::Str(b) if b.len() <= 20 && crate::db::parse_i64(b).is_some() => "int",
            Value::Str(b) if b.len() <= 44 => "embstr",
            Value::Str(_) => "raw",
            Value::Hash(h) => h.encoding(),
            Value::List(l) => l.encoding(),
            Value::Set(s) => s.encoding(),
            Value::ZSet(z) => z.encoding(),
        }
    }

    /// Elements held (1 for a string), for size estimates.
    pub fn len(&self) -> usize {
        match self {
            Value::Str(_) => 1,
            Value::Hash(h) => h.len(),
            Value::List(l) => l.len(),
            Value::Set(s) => s.len(),
            Value::ZSet(z) => z.len(),
        }
    }

    /// Whether a collection has become empty (Redis deletes such keys).
    pub fn is_empty(&self) -> bool {
        !matches!(self, Value::Str(_)) && self.len() == 0
    }

    /// About how many bytes the value takes: its data and a fixed cost per
    /// element.
    pub fn bytes(&self) -> usize {
        const PER_ELEMENT: usize = 48;
        match self {
            Value::Str(b) => b.len(),
            Value::Hash(h) => h.iter().map(|(f, v)| f.len() + v.len() + PER_ELEMENT).sum(),
            Value::List(l) => l.iter().map(|v| v.len() + PER_ELEMENT).sum(),
            Value::Set(s) => s.iter().map(|m| m.len() + PER_ELEMENT).sum(),
            Value::ZSet(z) => z.iter().map(|(m, _)| m.len() + 8 + PER_ELEMENT).sum(),
        }
    }

    /// A deep copy (COPY).
    pub fn duplicate(&self) -> Value {
        match self {
            Value::Str(b) => Value::Str(b.clone()),
            Value::Hash(h) => Value::Hash(Box::new((**h).clone())),
            Value::List(l) => Value::List(Box::new((**l).clone())),
            Value::Set(s) => Value::Set(Box::new((**s).clone())),
            Value::ZSet(z) => Value::ZSet(Box::new((**z).clone())),
        }
    }
}
