//! MULTI, EXEC, DISCARD, WATCH, UNWATCH.
//!
//! Between MULTI and EXEC the connection queues each command it has
//! routed and parsed (`Transaction`); a command refused then (unknown,
//! wrong arity, a redirect) marks the transaction so that EXEC aborts, as
//! in Redis. EXEC turns the queue into one `WriteOp::Multi` for the
//! shard every key is in: writes as their ops, reads as engine commands
//! (so they see the transaction's own writes), keyless commands answered
//! here. WATCH records each key's version as the leader sees it after a
//! read barrier; the versions travel in the entry, and every replica
//! aborts or runs the transaction alike.

use bytes::Bytes;
use shoal_engine::{Cmd, Millis, WriteOp};
use shoal_proto::{Command, CommandError, Frame};
use shoal_raft::transport::GroupId;

use super::write::Shape;
use super::{Outcome, Ready};
use crate::route::Target;
use crate::state::{Session, Shared};

/// The commands queued since MULTI.
#[derive(Debug, Default)]
pub struct Transaction {
    pub queued: Vec<Ready>,
    /// The queued commands' argument bytes: past `--max-write-bytes` the
    /// transaction could not be one log entry, so it aborts.
    bytes: usize,
    /// A command was refused while queueing: EXEC aborts.
    pub dirty: bool,
}

/// A WATCHed key, the version seen, and the group that holds it.
#[derive(Debug, Clone)]
pub struct Watched {
    key: Bytes,
    seen: Option<u32>,
    group: GroupId,
}

/// One element of EXEC's reply: answered here, or the next result of the
/// logged transaction, made into a reply by its shape.
#[derive(Debug)]
pub enum Part {
    Local(Frame),
    Logged(Shape),
}

/// A transaction ready to replicate.
#[derive(Debug)]
pub struct Exec {
    pub group: GroupId,
    pub slot: Option<shoal_engine::slot::Slot>,
    pub op: WriteOp,
    pub parts: Vec<Part>,
    /// The client's tag (CLIENT SHOAL-TAG before EXEC).
    pub tag: Option<shoal_raft::WriteTag>,
}

const MAX_QUEUED: usize = 100_000;

pub(super) fn run(
    shared: &Shared,
    session: &mut Session,
    target: Option<Target>,
    cmd: Command,
    now: Millis,
) -> Result<Outcome, CommandError> {
    let err = |text: &str| Err(CommandError(text.into()));
    match cmd {
        Command::Multi if session.multi.is_some() => err("ERR MULTI calls can not be nested"),
        Command::Multi => {
            session.multi = Some(Transaction::default());
            Ok(Outcome::Reply(Frame::OK))
        }
        Command::Discard => match session.multi.take() {
            None => err("ERR DISCARD without MULTI"),
            Some(_) => {
                session.watches.clear();
                Ok(Outcome::Reply(Frame::OK))
            }
        },
        Command::Unwatch => {
            session.watches.clear();
            Ok(Outcome::Reply(Frame::OK))
        }
        Command::Watch(_) if session.multi.is_some() => err("ERR WATCH inside MULTI is not allowed"),
        Command::Watch(keys) => watch(shared, session, keys, now).map(|()| Outcome::Reply(Frame::OK)),
        Command::Exec => exec(shared, session, target, now),
        other => unreachable!("not a transaction command: {other:?}"),
    }
}

/// Queues a command inside MULTI; `false` when the queue is full (past
/// `MAX_QUEUED` commands or `max_bytes` of arguments; the transaction is
/// then marked to abort).
pub fn queue(session: &mut Session, ready: Ready, max_bytes: usize) -> bool {
    let tx = session.multi.as_mut().expect("queueing inside MULTI");
    tx.bytes += ready.argv.iter().flatten().map(Bytes::len).sum::<usize>();
    if tx.queued.len() >= MAX_QUEUED || tx.bytes > max_bytes {
        tx.dirty = true;
        return false;
    }
    tx.queued.push(ready);
    true
}

fn watch(shared: &Shared, session: &mut Session, keys: Vec<Bytes>, now: Millis) -> Result<(), CommandError> {
    for key in keys {
        let group = shared.shards.group_of_slot(shoal_engine::slot::key_slot(&key));
        let db = shared
            .shards
            .db(group)
            .ok_or_else(|| CommandError("TRYAGAIN this node no longer holds the slot's shard".into()))?;
        // A key watched again keeps the version first seen, as in Redis.
        if session.watches.iter().any(|w| w.key == key) {
            continue;
        }
        let seen = db.watch_stamp(&key, now);
        session.watches.push(Watched { key, seen, group });
    }
    Ok(())
}

fn exec(shared: &Shared, session: &mut Session, _target: Option<Target>, now: Millis) -> Result<Outcome, CommandError> {
    let Some(tx) = session.multi.take() else {
        return Err(CommandError("ERR EXEC without MULTI".into()));
    };
    let watches = std::mem::take(&mut session.watches);
    if tx.dirty {
        return Err(CommandError("EXECABORT Transaction discarded because of previous errors.".into()));
    }
    let mut group = None;
    let mut slot = None;
    let mut join = |g: GroupId| match group {
        Some(held) if held != g => Err(CommandError(
            "CROSSSLOT Keys in request don't hash to the same slot (a transaction's keys must be in one shard)".into(),
        )),
        _ => {
            group = Some(g);
            Ok(())
        }
    };
    for w in &watches {
        join(w.group)?;
    }
    let (mut items, mut parts) = (Vec::new(), Vec::new());
    for ready in tx.queued {
        let Some(target) = ready.target else {
            parts.push(Part::Local(local(shared, session, ready, now)));
            continue;
        };
        join(target.group)?;
        slot.get_or_insert(target.slot);
        match queued_op(shared, session, ready, now) {
            Ok((op, shape)) => {
                items.push(op);
                parts.push(Part::Logged(shape));
            }
            Err(frame) => parts.push(Part::Local(frame)),
        }
    }
    let Some(group) = group.filter(|_| !items.is_empty() || !watches.is_empty()) else {
        let frames = parts.into_iter().map(|p| match p {
            Part::Local(f) => f,
            Part::Logged(_) => unreachable!("nothing was logged"),
        });
        return Ok(Outcome::Reply(Frame::Array(frames.collect())));
    };
    let watches = watches.into_iter().map(|w| (w.key, w.seen)).collect();
    Ok(Outcome::Exec(Exec { group, slot, op: WriteOp::Multi { items, watches }, parts, tag: None }))
}

/// A queued keyed command as an op of the transaction: a write as its own
/// op, a read as an engine command; a command that fails before it could
/// be logged (an invalid expire time) is its error, in its place.
fn queued_op(shared: &Shared, session: &mut Session, ready: Ready, now: Millis) -> Result<(WriteOp, Shape), Frame> {
    if ready.write {
        return match super::run(shared, session, ready, now) {
            Outcome::Write(w) => Ok((w.op, w.shape)),
            Outcome::Reply(frame) => Err(frame),
            _ => Err(Frame::error("ERR this command cannot run inside MULTI")),
        };
    }
    let argv = ready.argv.clone().expect("commands queued in MULTI keep their arguments");
    if Cmd::parse(&argv).is_ok() {
        return Ok((WriteOp::Exec { argv, seed: super::data::seed() }, Shape::Out));
    }
    Err(local(shared, session, ready, now))
}

/// A command answered where it stands in EXEC's reply, not logged.
fn local(shared: &Shared, session: &mut Session, ready: Ready, now: Millis) -> Frame {
    match super::run(shared, session, ready, now) {
        Outcome::Reply(frame) => frame,
        _ => Frame::error("ERR this command cannot run inside MULTI"),
    }
}

/// EXEC's reply from the transaction's result: a null array when a watched
/// key had changed, otherwise each element in its place.
pub fn reply(parts: Vec<Part>, result: shoal_raft::Reply) -> Frame {
    let results = match result {
        shoal_raft::Reply::Multi(None) => return Frame::NullArray,
        shoal_raft::Reply::Multi(Some(results)) => results,
        other => return super::write::reply(Shape::Out, other),
    };
    let mut results = results.into_iter();
    let frames = parts.into_iter().map(|part| match part {
        Part::Local(frame) => frame,
        Part::Logged(shape) => match results.next() {
            Some(r) => super::write::reply(shape, r),
            None => Frame::error("ERR internal error: a transaction's result is missing"),
        },
    });
    Frame::Array(frames.collect())
}
