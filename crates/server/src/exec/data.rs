//! The engine's commands (hashes, lists, sets, sorted sets, the rest of
//! the strings and keys): a read runs here on the target's keyspace; a
//! write is replicated as its arguments with a seed drawn here, the
//! leader, for whatever it picks at random, so replicas pick alike.

use shoal_engine::{Millis, WriteOp};
use shoal_proto::command::Data;
use shoal_proto::{CommandError, Frame};

use super::write::{self, Shape};
use super::Outcome;
use crate::route::Target;
use crate::state::Shared;

/// `write`: the command table's flag, as `prepare` read it.
pub(super) fn run(
    shared: &Shared,
    target: Option<Target>,
    write: bool,
    data: Data,
    now: Millis,
) -> Result<Outcome, CommandError> {
    // Every engine command that parses names a key (OBJECT HELP does not
    // parse), so routing gave it a target.
    let Some(target) = target else { return Err(CommandError::syntax()) };
    if write {
        let kind = match data.cmd {
            shoal_engine::Cmd::ZSet(_) => shoal_engine::Kind::ZSet,
            _ => shoal_engine::Kind::List,
        };
        let nothing = match data.cmd {
            shoal_engine::Cmd::List(shoal_engine::cmd::ListCmd::BMove { .. }) => shoal_engine::Out::Nil,
            _ => shoal_engine::Out::NilArray,
        };
        let blocking = data.cmd.blocking_timeout_ms().map(|timeout_ms| write::Blocking {
            keys: data.cmd.blocking_keys().into_iter().cloned().collect(),
            kind,
            timeout_ms,
            nothing,
        });
        let op = WriteOp::Exec { argv: data.argv, seed: seed() };
        return Ok(match write::keyed(target, op, Shape::Out) {
            Outcome::Write(w) => Outcome::Write(write::Write { blocking, ..w }),
            other => other,
        });
    }
    let (db, _) = super::keyed(shared, Some(target))?;
    Ok(Outcome::Reply(Frame::from(db.run(&data.cmd, now, seed()))))
}

/// A fresh random seed: std's per-process random hasher keys, mixed with a
/// counter so that every call differs.
pub(super) fn seed() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    use std::sync::atomic::{AtomicU64, Ordering};
    static STATE: std::sync::OnceLock<RandomState> = std::sync::OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    STATE.get_or_init(RandomState::new).hash_one(COUNTER.fetch_add(1, Ordering::Relaxed))
}
