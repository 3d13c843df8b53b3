//! MULTI/EXEC as one write: `WriteOp::Multi` holds the queued commands
//! (each a `WriteOp`, engine commands and reads as `Exec`) and the keys the
//! client WATCHed with the versions it saw. Applying it locks every key of
//! every command at once, checks the watches, then runs the commands in
//! order: atomic to every reader and writer, and decided the same way on
//! every replica, since versions are replicated state.

use bytes::Bytes;

use crate::cmd::rng::Rng;
use crate::cmd::Cmd;
use crate::ops::{DelCondition, SetCondition};
use crate::reply::{Fault, Out};
use crate::txn::Txn;
use crate::value::Kind;
use crate::write::{WriteOp, WriteResult};
use crate::{Db, Millis};

/// A watched key and the version WATCH saw (`None`: no live key).
pub type Watch = (Bytes, Option<u32>);

impl Db {
    /// EXEC: `None` when a watched key changed since WATCH (nothing run),
    /// otherwise each command's result.
    pub fn apply_multi(&self, items: Vec<WriteOp>, watches: &[Watch], now: Millis) -> Option<Vec<WriteResult>> {
        let mut keys: Vec<Bytes> = watches.iter().map(|(k, _)| k.clone()).collect();
        items.iter().for_each(|op| keys.extend(op.key_list()));
        let key_refs: Vec<&[u8]> = keys.iter().map(|k| &k[..]).collect();
        let mut tx = self.txn(&key_refs, now);
        if watches.iter().any(|(key, seen)| tx.watch_stamp(key) != *seen) {
            return None;
        }
        Some(items.into_iter().map(|op| tx.apply(op)).collect())
    }
}

impl WriteOp {
    /// Every key the op touches (an `Exec` that does not parse names none).
    pub fn key_list(&self) -> Vec<Bytes> {
        let mut keys = Vec::new();
        self.each_key(&mut |k| {
            keys.push(k.clone());
            true
        });
        keys
    }
}

impl Txn<'_> {
    /// One queued command of a transaction, on the stripes already held.
    fn apply(&mut self, op: WriteOp) -> WriteResult {
        let now = self.now();
        if let Some(key) = string_key(&op) {
            if self.kind(key).is_some_and(|k| k != Kind::String) {
                return WriteResult::Out(Out::Err(Fault::WrongType));
            }
        }
        match op {
            WriteOp::Set { key, value, options } => {
                let (stripe, hash) = self.stripe_of(&key);
                let (outcome, replaced) = stripe.set(hash, &key, crate::value::blob(value), &options, now);
                self.discard(replaced);
                WriteResult::Set(outcome)
            }
            WriteOp::Delete { keys } => WriteResult::Count(keys.iter().filter(|k| self.delete(k)).count()),
            WriteOp::DeleteIf { key, condition } => {
                let (stripe, hash) = self.stripe_of(&key);
                WriteResult::Flag(stripe.delete_if(hash, &key, &condition, now))
            }
            WriteOp::GetDelete { key } => {
                let (stripe, hash) = self.stripe_of(&key);
                WriteResult::Value(stripe.get_delete(hash, &key, now))
            }
            WriteOp::GetEx { key, expiry } => {
                let (stripe, hash) = self.stripe_of(&key);
                WriteResult::Value(stripe.get_ex(hash, &key, expiry, now))
            }
            WriteOp::IncrBy { key, delta } => {
                let (stripe, hash) = self.stripe_of(&key);
                WriteResult::Incr(stripe.incr_by(hash, &key, delta, now))
            }
            WriteOp::Append { key, suffix, max_len } => {
                let (stripe, hash) = self.stripe_of(&key);
                let max_len = usize::try_from(max_len).unwrap_or(usize::MAX);
                WriteResult::Append(stripe.append(hash, &key, &suffix, max_len, now))
            }
            WriteOp::ExpireAt { key, at, condition } => {
                let (stripe, hash) = self.stripe_of(&key);
                WriteResult::Flag(stripe.expire_at(hash, &key, at, condition, now))
            }
            WriteOp::Persist { key } => {
                let (stripe, hash) = self.stripe_of(&key);
                WriteResult::Flag(stripe.persist(hash, &key, now))
            }
            WriteOp::PutMany { pairs } => {
                for (key, value) in pairs {
                    self.put(&key, crate::value::Value::Str(crate::value::blob(value)), None);
                }
                WriteResult::Done
            }
            WriteOp::PurgeExpired { keys } => {
                let purged = keys.iter().filter(|k| {
                    let (stripe, hash) = self.stripe_of(k);
                    stripe.purge_if_expired(hash, k, now)
                });
                WriteResult::Count(purged.count())
            }
            WriteOp::Exec { argv, seed } => WriteResult::Out(match Cmd::parse(&argv) {
                Ok(cmd) => cmd.run(self, &mut Rng::new(seed)),
                Err(fault) => Out::Err(fault),
            }),
            // Neither can be queued: the server refuses them in MULTI.
            WriteOp::Clear | WriteOp::Multi { .. } => {
                WriteResult::Out(Out::Err(Fault::other("ERR this command cannot run inside MULTI")))
            }
        }
    }
}

/// The key a string op needs to hold a string (or nothing), if any: the
/// ops that read the old value. (`Db::apply`'s check, inside a transaction.)
pub(crate) fn string_key(op: &WriteOp) -> Option<&Bytes> {
    match op {
        WriteOp::Set { key, options, .. }
            if options.get || matches!(options.condition, SetCondition::IfEqual(_) | SetCondition::IfNotEqual(_)) =>
        {
            Some(key)
        }
        WriteOp::DeleteIf { key, condition: DelCondition::IfEqual(_) | DelCondition::IfNotEqual(_) }
        | WriteOp::GetDelete { key }
        | WriteOp::GetEx { key, .. }
        | WriteOp::Append { key, .. } => Some(key),
        _ => None,
    }
}
