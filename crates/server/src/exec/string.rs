//! GET SET SETNX GETSET DELEX GETDEL GETEX MGET MSET INCRBY APPEND STRLEN.

use shoal_engine::{Db, GetExExpiry, Millis, SetCondition, SetExpiry, SetOptions, WriteOp};
use shoal_proto::command::{GetExArg, Set, SetExpiryArg};
use shoal_proto::{Command, CommandError, Frame};

use super::write::{self, Shape};
use super::Outcome;
use crate::route::Target;
use crate::state::{Session, Shared};

pub(super) fn run(
    shared: &Shared,
    session: &mut Session,
    (db, target): (&Db, Target),
    cmd: Command,
    now: Millis,
) -> Result<Outcome, CommandError> {
    let write = |op, shape| Ok(write::keyed(target, op, shape));
    let reply = match cmd {
        Command::Get(key) => {
            let value = db.get_str(&key, now).map_err(|f| CommandError(f.to_string()))?;
            if value.is_some() {
                session.hits += 1;
            } else {
                session.misses += 1;
            }
            Frame::optional_bulk(value)
        }
        Command::Set(set) => return set_write(target, set, now),
        Command::SetNx { key, value } => {
            let options =
                SetOptions { condition: SetCondition::IfAbsent, expiry: SetExpiry::Clear, ..Default::default() };
            return write(WriteOp::Set { key, value, options }, Shape::SetNx);
        }
        Command::GetSet { key, value } => {
            return write(WriteOp::Set { key, value, options: SetOptions::default() }, Shape::Set { get: true })
        }
        Command::DelEx { key, condition } => return write(WriteOp::DeleteIf { key, condition }, Shape::Integer),
        Command::GetDel(key) => return write(WriteOp::GetDelete { key }, Shape::Value),
        Command::GetEx { key, expiry } => {
            let expiry = match expiry {
                GetExArg::Keep => GetExExpiry::Keep,
                GetExArg::Persist => GetExExpiry::Persist,
                GetExArg::Expire(e) => {
                    GetExExpiry::At(e.resolve(now).ok_or_else(|| CommandError::invalid_expire("getex"))?)
                }
            };
            return write(WriteOp::GetEx { key, expiry }, Shape::Value);
        }
        Command::MGet(keys) => Frame::Array(db.get_many(&keys, now).into_iter().map(Frame::optional_bulk).collect()),
        Command::MSet(pairs) => return write(WriteOp::PutMany { pairs }, Shape::Ok),
        Command::IncrBy { key, delta } => return write(WriteOp::IncrBy { key, delta }, Shape::Integer),
        Command::Append { key, value } => {
            let max_len = shared.config.limits.decode.max_bulk_bytes as u64;
            return write(WriteOp::Append { key, suffix: value, max_len }, Shape::Integer);
        }
        Command::StrLen(key) => Frame::Integer(db.strlen(&key, now).map_err(|f| CommandError(f.to_string()))? as i64),
        other => unreachable!("not a string command: {other:?}"),
    };
    Ok(Outcome::Reply(reply))
}

fn set_write(target: Target, set: Set, now: Millis) -> Result<Outcome, CommandError> {
    let expiry = match set.expiry {
        SetExpiryArg::Clear => SetExpiry::Clear,
        SetExpiryArg::Keep => SetExpiry::Keep,
        SetExpiryArg::Expire(e) => {
            SetExpiry::At(e.resolve(now).ok_or_else(|| CommandError::invalid_expire(set.command))?)
        }
    };
    let options = SetOptions { condition: set.condition, expiry, get: set.get };
    Ok(write::keyed(target, WriteOp::Set { key: set.key, value: set.value, options }, Shape::Set { get: set.get }))
}
