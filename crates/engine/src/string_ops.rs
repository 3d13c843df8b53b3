//! The string and expiry operations on one stripe, shared by `Db` (which
//! locks the key's stripe for one op) and `Txn` (which holds the stripes of
//! a whole command or transaction). Each takes the key's `hash` and `now`.

use bytes::Bytes;

use crate::db::parse_i64;
use crate::ops::{
    DelCondition, ExpireCondition, GetExExpiry, IncrError, SetCondition, SetExpiry, SetOptions, SetOutcome,
};
use crate::stripe::Stripe;
use crate::value::{Blob, Value};
use crate::Millis;

impl Stripe {
    /// SET; returns the outcome and the replaced value (to drop unlocked).
    pub(crate) fn set(
        &mut self,
        hash: u64,
        key: &[u8],
        value: Blob,
        opts: &SetOptions,
        now: Millis,
    ) -> (SetOutcome, Option<Value>) {
        let current = self.get(hash, key, now);
        let old = current.and_then(|e| e.value.as_str()).map(Bytes::copy_from_slice);
        let old_expiry = current.and_then(|e| e.expires_at());
        let allowed = match &opts.condition {
            SetCondition::Always => true,
            SetCondition::IfAbsent => current.is_none(),
            SetCondition::IfPresent => current.is_some(),
            SetCondition::IfEqual(v) => old.as_ref() == Some(v),
            SetCondition::IfNotEqual(v) => old.as_ref() != Some(v),
        };
        if !allowed {
            return (SetOutcome { written: false, old }, None);
        }
        let expires_at = match opts.expiry {
            SetExpiry::Clear => None,
            SetExpiry::Keep => old_expiry,
            SetExpiry::At(at) => Some(at),
        };
        let replaced = self.put(hash, key, Value::Str(value), expires_at, now);
        (SetOutcome { written: true, old }, replaced)
    }

    pub(crate) fn delete_if(&mut self, hash: u64, key: &[u8], condition: &DelCondition, now: Millis) -> bool {
        let Some(current) = self.get(hash, key, now) else {
            return false;
        };
        let allowed = match condition {
            DelCondition::Always => true,
            DelCondition::IfEqual(v) => current.value.as_str() == Some(&v[..]),
            DelCondition::IfNotEqual(v) => current.value.as_str() != Some(&v[..]),
        };
        allowed && self.remove(hash, key, now).is_some()
    }

    pub(crate) fn get_delete(&mut self, hash: u64, key: &[u8], now: Millis) -> Option<Bytes> {
        self.remove(hash, key, now).and_then(|e| e.value.as_str().map(Bytes::copy_from_slice))
    }

    pub(crate) fn get_ex(&mut self, hash: u64, key: &[u8], expiry: GetExExpiry, now: Millis) -> Option<Bytes> {
        let value = Bytes::copy_from_slice(self.get(hash, key, now)?.value.as_str()?);
        match expiry {
            GetExExpiry::Keep => {}
            GetExExpiry::Persist => {
                self.set_expiry(hash, key, None, now);
            }
            GetExExpiry::At(at) if at <= now => {
                self.remove(hash, key, now);
            }
            GetExExpiry::At(at) => {
                self.set_expiry(hash, key, Some(at), now);
            }
        }
        Some(value)
    }

    pub(crate) fn incr_by(&mut self, hash: u64, key: &[u8], delta: i64, now: Millis) -> Result<i64, IncrError> {
        let (current, expires_at) = match self.get(hash, key, now) {
            Some(e) => match &e.value {
                Value::Str(v) => (parse_i64(v).ok_or(IncrError::NotInteger)?, e.expires_at()),
                _ => return Err(IncrError::WrongType),
            },
            None => (0, None),
        };
        let next = current.checked_add(delta).ok_or(IncrError::Overflow)?;
        let value = Value::Str(next.to_string().into_bytes().into_boxed_slice());
        let _replaced = self.put(hash, key, value, expires_at, now);
        Ok(next)
    }

    pub(crate) fn append(
        &mut self,
        hash: u64,
        key: &[u8],
        suffix: &[u8],
        max_len: usize,
        now: Millis,
    ) -> Result<usize, usize> {
        match self.get_mut(hash, key, now) {
            Some(entry) => {
                // The caller checked the type (`Db::apply`).
                let Value::Str(value) = &mut entry.value else { return Err(0) };
                let len = value.len() + suffix.len();
                if len > max_len {
                    return Err(len);
                }
                let mut joined = std::mem::take(value).into_vec();
                joined.extend_from_slice(suffix);
                *value = joined.into_boxed_slice();
                Ok(len)
            }
            None if suffix.len() > max_len => Err(suffix.len()),
            None => {
                let _none = self.put(hash, key, Value::Str(Blob::from(suffix)), None, now);
                Ok(suffix.len())
            }
        }
    }

    pub(crate) fn expire_at(
        &mut self,
        hash: u64,
        key: &[u8],
        at: Millis,
        condition: ExpireCondition,
        now: Millis,
    ) -> bool {
        let Some(current) = self.get(hash, key, now) else {
            return false;
        };
        let allowed = match (condition, current.expires_at()) {
            (ExpireCondition::Always, _) => true,
            (ExpireCondition::IfNone, existing) => existing.is_none(),
            (ExpireCondition::IfSome, existing) => existing.is_some(),
            // A key without expiry counts as an infinite TTL.
            (ExpireCondition::IfGreater, None) => false,
            (ExpireCondition::IfGreater, Some(old)) => at > old,
            (ExpireCondition::IfLess, None) => true,
            (ExpireCondition::IfLess, Some(old)) => at < old,
            (ExpireCondition::IfSomeAndLess, None) => false,
            (ExpireCondition::IfSomeAndLess, Some(old)) => at < old,
        };
        if !allowed {
            return false;
        }
        if at <= now {
            self.remove(hash, key, now);
            true
        } else {
            self.set_expiry(hash, key, Some(at), now)
        }
    }

    pub(crate) fn persist(&mut self, hash: u64, key: &[u8], now: Millis) -> bool {
        match self.get(hash, key, now) {
            Some(e) if e.expires_at().is_some() => self.set_expiry(hash, key, None, now),
            _ => false,
        }
    }
}
