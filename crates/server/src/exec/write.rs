//! The one path every write takes: a `WriteOp` applied with the command's
//! `now`. Replication will replace the body of `apply` with "propose to the
//! shard's Raft group, answer after it is applied"; nothing else in the
//! command layer changes. The typed helpers unwrap the result variant each
//! op is known to produce.

use bytes::Bytes;
use shoal_engine::{IncrError, Millis, SetOutcome, WriteOp, WriteResult};

use crate::state::Shared;

fn apply(shared: &Shared, op: WriteOp, now: Millis) -> WriteResult {
    shared.db.apply(op, now)
}

fn mismatch(op: &str, result: WriteResult) -> ! {
    unreachable!("{op} produced {result:?}")
}

pub(super) fn set(shared: &Shared, op: WriteOp, now: Millis) -> SetOutcome {
    debug_assert!(matches!(op, WriteOp::Set { .. }));
    match apply(shared, op, now) {
        WriteResult::Set(outcome) => outcome,
        other => mismatch("SET", other),
    }
}

/// DEL: keys removed.
pub(super) fn count(shared: &Shared, op: WriteOp, now: Millis) -> usize {
    match apply(shared, op, now) {
        WriteResult::Count(n) => n,
        other => mismatch("DEL", other),
    }
}

/// DELEX, EXPIRE, PERSIST: whether the write took effect.
pub(super) fn flag(shared: &Shared, op: WriteOp, now: Millis) -> bool {
    match apply(shared, op, now) {
        WriteResult::Flag(done) => done,
        other => mismatch("a conditional write", other),
    }
}

/// GETDEL, GETEX: the value read while writing.
pub(super) fn value(shared: &Shared, op: WriteOp, now: Millis) -> Option<Bytes> {
    match apply(shared, op, now) {
        WriteResult::Value(v) => v,
        other => mismatch("a read-and-write", other),
    }
}

pub(super) fn incr(shared: &Shared, op: WriteOp, now: Millis) -> Result<i64, IncrError> {
    match apply(shared, op, now) {
        WriteResult::Incr(r) => r,
        other => mismatch("INCRBY", other),
    }
}

pub(super) fn append(shared: &Shared, op: WriteOp, now: Millis) -> Result<usize, usize> {
    match apply(shared, op, now) {
        WriteResult::Append(r) => r,
        other => mismatch("APPEND", other),
    }
}

/// MSET, FLUSHDB: nothing to report.
pub(super) fn done(shared: &Shared, op: WriteOp, now: Millis) {
    match apply(shared, op, now) {
        WriteResult::Done => {}
        other => mismatch("MSET/FLUSH", other),
    }
}
