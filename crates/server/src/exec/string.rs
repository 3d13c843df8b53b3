//! GET SET SETNX GETSET DELEX GETDEL GETEX MGET MSET INCRBY APPEND STRLEN.

use shoal_engine::{GetExExpiry, IncrError, Millis, SetCondition, SetExpiry, SetOptions, WriteOp};
use shoal_proto::command::{GetExArg, Set, SetExpiryArg};
use shoal_proto::{Command, CommandError, Frame};

use super::write;
use crate::state::{Session, Shared};

pub(super) fn run(shared: &Shared, session: &mut Session, cmd: Command, now: Millis) -> Result<Frame, CommandError> {
    let db = &shared.db;
    Ok(match cmd {
        Command::Get(key) => {
            let value = db.get(&key, now);
            if value.is_some() {
                session.hits += 1;
            } else {
                session.misses += 1;
            }
            Frame::optional_bulk(value)
        }
        Command::Set(set) => return set_reply(shared, set, now),
        Command::SetNx { key, value } => {
            let options = SetOptions { condition: SetCondition::IfAbsent, expiry: SetExpiry::Clear };
            Frame::Integer(i64::from(write::set(shared, WriteOp::Set { key, value, options }, now).written))
        }
        Command::GetSet { key, value } => {
            let op = WriteOp::Set { key, value, options: SetOptions::default() };
            Frame::optional_bulk(write::set(shared, op, now).old)
        }
        Command::DelEx { key, condition } => {
            Frame::Integer(i64::from(write::flag(shared, WriteOp::DeleteIf { key, condition }, now)))
        }
        Command::GetDel(key) => Frame::optional_bulk(write::value(shared, WriteOp::GetDelete { key }, now)),
        Command::GetEx { key, expiry } => {
            let expiry = match expiry {
                GetExArg::Keep => GetExExpiry::Keep,
                GetExArg::Persist => GetExExpiry::Persist,
                GetExArg::Expire(e) => {
                    GetExExpiry::At(e.resolve(now).ok_or_else(|| CommandError::invalid_expire("getex"))?)
                }
            };
            Frame::optional_bulk(write::value(shared, WriteOp::GetEx { key, expiry }, now))
        }
        Command::MGet(keys) => Frame::Array(db.get_many(&keys, now).into_iter().map(Frame::optional_bulk).collect()),
        Command::MSet(pairs) => {
            write::done(shared, WriteOp::PutMany { pairs }, now);
            Frame::OK
        }
        Command::IncrBy { key, delta } => match write::incr(shared, WriteOp::IncrBy { key, delta }, now) {
            Ok(n) => Frame::Integer(n),
            Err(e @ (IncrError::NotInteger | IncrError::Overflow)) => return Err(CommandError(format!("ERR {e}"))),
        },
        Command::Append { key, value } => {
            let max_len = shared.config.limits.decode.max_bulk_bytes as u64;
            match write::append(shared, WriteOp::Append { key, suffix: value, max_len }, now) {
                Ok(len) => Frame::Integer(len as i64),
                Err(_) => {
                    return Err(CommandError("ERR string exceeds maximum allowed size (proto-max-bulk-len)".into()))
                }
            }
        }
        Command::StrLen(key) => Frame::Integer(db.strlen(&key, now) as i64),
        other => unreachable!("not a string command: {other:?}"),
    })
}

fn set_reply(shared: &Shared, set: Set, now: Millis) -> Result<Frame, CommandError> {
    let expiry = match set.expiry {
        SetExpiryArg::Clear => SetExpiry::Clear,
        SetExpiryArg::Keep => SetExpiry::Keep,
        SetExpiryArg::Expire(e) => {
            SetExpiry::At(e.resolve(now).ok_or_else(|| CommandError::invalid_expire(set.command))?)
        }
    };
    let options = SetOptions { condition: set.condition, expiry };
    let outcome = write::set(shared, WriteOp::Set { key: set.key, value: set.value, options }, now);
    Ok(match (set.get, outcome.written) {
        (true, _) => Frame::optional_bulk(outcome.old),
        (false, true) => Frame::OK,
        (false, false) => Frame::Null,
    })
}
