//! `Txn`: the stripes of a command's keys, write-locked together, and the
//! operations commands make on them. Every command of `cmd` runs inside
//! one, so it is atomic to readers and to other writers (a MULTI block
//! will hold the keys of all its commands the same way).
//!
//! A command may touch only the keys it declared: asking for another is a
//! bug, caught by the assertion in `Locked::position`.

use parking_lot::RwLockWriteGuard;

use crate::db::Locked;
use crate::reply::Fault;
use crate::stripe::{Entry, Stripe};
use crate::value::{Kind, Value};
use crate::{Db, Millis};

pub struct Txn<'a> {
    db: &'a Db,
    locked: Locked<RwLockWriteGuard<'a, Stripe>>,
    now: Millis,
    /// Values replaced or removed, freed after the locks (declared after
    /// `locked`, so dropped after it).
    garbage: Vec<Value>,
}

impl Db {
    /// Locks the stripes of `keys` for one command (or one transaction).
    pub fn txn<'a>(&'a self, keys: &[&[u8]], now: Millis) -> Txn<'a> {
        let hashes: Vec<u64> = keys.iter().map(|k| self.hash(k)).collect();
        Txn { db: self, locked: self.write_many(&hashes), now, garbage: Vec::new() }
    }
}

impl Txn<'_> {
    pub fn now(&self) -> Millis {
        self.now
    }

    fn entry(&self, key: &[u8]) -> Option<&Entry> {
        let hash = self.db.hash(key);
        self.locked.stripe(hash).get(hash, key, self.now)
    }

    /// The live value at `key`.
    pub fn get(&self, key: &[u8]) -> Option<&Value> {
        self.entry(key).map(|e| &e.value)
    }

    pub fn exists(&self, key: &[u8]) -> bool {
        self.entry(key).is_some()
    }

    pub fn kind(&self, key: &[u8]) -> Option<Kind> {
        self.get(key).map(Value::kind)
    }

    pub fn expires_at(&self, key: &[u8]) -> Option<Millis> {
        self.entry(key).and_then(Entry::expires_at)
    }

    /// The live value at `key`, mutably (an expired one is removed first).
    /// Its expiry is changed with `put` or `set_expiry` only.
    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut Value> {
        let hash = self.db.hash(key);
        self.locked.stripe_mut(hash).get_mut(hash, key, self.now).map(|e| &mut e.value)
    }

    /// Stores `value` at `key` with `expires_at`, replacing whatever was there.
    pub fn put(&mut self, key: &[u8], value: Value, expires_at: Option<Millis>) {
        let hash = self.db.hash(key);
        let now = self.now;
        let replaced = self.locked.stripe_mut(hash).put(hash, key, value, expires_at, now);
        self.garbage.extend(replaced);
    }

    /// Removes `key`; returns its value and expiry if it was live.
    pub fn remove(&mut self, key: &[u8]) -> Option<(Value, Option<Millis>)> {
        let hash = self.db.hash(key);
        let now = self.now;
        let entry = self.locked.stripe_mut(hash).remove(hash, key, now)?;
        let expires_at = entry.expires_at();
        Some((entry.value, expires_at))
    }

    /// Removes `key` and drops its value after the locks.
    pub fn delete(&mut self, key: &[u8]) -> bool {
        match self.remove(key) {
            Some((value, _)) => {
                self.garbage.push(value);
                true
            }
            None => false,
        }
    }

    pub fn set_expiry(&mut self, key: &[u8], expires_at: Option<Millis>) -> bool {
        let hash = self.db.hash(key);
        let now = self.now;
        self.locked.stripe_mut(hash).set_expiry(hash, key, expires_at, now)
    }

    /// Deletes `key` if it holds an empty collection: Redis never keeps one.
    pub fn drop_if_empty(&mut self, key: &[u8]) {
        if self.get(key).is_some_and(Value::is_empty) {
            self.delete(key);
        }
    }

    /// The collection of type `T` at `key`: `Ok(None)` when there is no
    /// key, WRONGTYPE when it holds another type.
    pub fn read<T: Typed>(&self, key: &[u8]) -> Result<Option<&T>, Fault> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => T::of(v).map(Some).ok_or(Fault::WrongType),
        }
    }

    /// The collection of type `T` at `key`, mutably; with `create`, an
    /// empty one is stored first when there is no key. The caller calls
    /// `drop_if_empty` after removing elements.
    pub fn write<T: Typed>(&mut self, key: &[u8], create: bool) -> Result<Option<&mut T>, Fault> {
        match self.kind(key) {
            Some(kind) if kind != T::KIND => return Err(Fault::WrongType),
            None if !create => return Ok(None),
            None => self.put(key, T::empty(), None),
            Some(_) => {}
        }
        let value = self.get_mut(key).expect("the key was just checked or stored");
        Ok(Some(T::of_mut(value).expect("the key holds this type")))
    }
}

/// A type of value a command works on.
pub trait Typed: Sized {
    const KIND: Kind;
    fn of(v: &Value) -> Option<&Self>;
    fn of_mut(v: &mut Value) -> Option<&mut Self>;
    fn empty() -> Value;
}

macro_rules! typed {
    ($t:ty, $variant:ident, $kind:ident, $empty:expr) => {
        impl Typed for $t {
            const KIND: Kind = Kind::$kind;
            fn of(v: &Value) -> Option<&Self> {
                match v {
                    Value::$variant(x) => Some(x),
                    _ => None,
                }
            }
            fn of_mut(v: &mut Value) -> Option<&mut Self> {
                match v {
                    Value::$variant(x) => Some(x),
                    _ => None,
                }
            }
            fn empty() -> Value {
                $empty
            }
        }
    };
}

typed!(crate::value::HashValue, Hash, Hash, Value::Hash(Box::default()));
typed!(crate::value::ListValue, List, List, Value::List(Box::default()));
typed!(crate::value::SetValue, Set, Set, Value::Set(Box::default()));
typed!(crate::value::ZSetValue, ZSet, ZSet, Value::ZSet(Box::default()));
typed!(crate::value::Blob, Str, String, Value::Str(Box::default()));

impl Txn<'_> {
    /// The stripe holding `key` and the key's hash, for the string ops.
    pub(crate) fn stripe_of(&mut self, key: &[u8]) -> (&mut Stripe, u64) {
        let hash = self.db.hash(key);
        (self.locked.stripe_mut(hash), hash)
    }

    /// Drops a value after the locks are released.
    pub(crate) fn discard(&mut self, value: Option<Value>) {
        self.garbage.extend(value);
    }

    /// WATCH's view of a key inside the transaction.
    pub(crate) fn watch_stamp(&self, key: &[u8]) -> Option<u32> {
        self.entry(key).map(|e| e.version)
    }
}
