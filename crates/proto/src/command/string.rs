//! Parsing of string commands: GET SET SETNX SETEX PSETEX GETSET DELEX GETDEL
//! GETEX MGET MSET INCR INCRBY DECR DECRBY APPEND STRLEN.

use shoal_engine::{DelCondition, SetCondition};

use super::{is, Args, Command, CommandError, ExpiryArg, GetExArg, GroupResult, Set, SetExpiryArg};

pub(super) fn parse(name: &str, mut a: Args) -> GroupResult {
    let cmd = match name {
        "get" => a.take().map(Command::Get),
        "set" => set(a),
        "setnx" => a.take().and_then(|key| Ok(Command::SetNx { key, value: a.take()? })),
        "setex" => setex(a, "setex", 1000),
        "psetex" => setex(a, "psetex", 1),
        "getset" => a.take().and_then(|key| Ok(Command::GetSet { key, value: a.take()? })),
        "delex" => delex(a),
        "getdel" => a.take().map(Command::GetDel),
        "getex" => getex(a),
        "mget" => Ok(Command::MGet(a.rest())),
        "mset" => mset(a),
        "incr" => a.take().map(|key| Command::IncrBy { key, delta: 1 }),
        "decr" => a.take().map(|key| Command::IncrBy { key, delta: -1 }),
        "incrby" => incr_by(a, false),
        "decrby" => incr_by(a, true),
        "append" => a.take().and_then(|key| Ok(Command::Append { key, value: a.take()? })),
        "strlen" => a.take().map(Command::StrLen),
        _ => return Err(a),
    };
    Ok(cmd)
}

/// Reads the value of an EX/PX/EXAT/PXAT option. SET and GETEX require a
/// positive time that fits in milliseconds.
fn expiry_option(a: &mut Args, option: &[u8], command: &str) -> Result<Option<ExpiryArg>, CommandError> {
    let (unit_ms, absolute) = match () {
        _ if is(option, "EX") => (1000, false),
        _ if is(option, "PX") => (1, false),
        _ if is(option, "EXAT") => (1000, true),
        _ if is(option, "PXAT") => (1, true),
        _ => return Ok(None),
    };
    let amount = a.next_i64()?;
    if amount <= 0 {
        return Err(CommandError::invalid_expire(command));
    }
    let ms = amount.checked_mul(unit_ms).ok_or_else(|| CommandError::invalid_expire(command))?;
    Ok(Some(if absolute { ExpiryArg::At(ms) } else { ExpiryArg::In(ms) }))
}

fn set(mut a: Args) -> Result<Command, CommandError> {
    let key = a.take()?;
    let value = a.take()?;
    let mut set =
        Set { key, value, condition: SetCondition::Always, expiry: SetExpiryArg::Clear, get: false, command: "set" };
    // As in Redis, repeating an option is allowed (the last value wins);
    // combining conflicting ones (NX with XX, EX with PX, …) is an error.
    let mut expiry_option_seen: Option<Vec<u8>> = None;
    while !a.is_empty() {
        let option = a.take()?;
        let condition_free = |same: &SetCondition| set.condition == SetCondition::Always || set.condition == *same;
        let no_condition = set.condition == SetCondition::Always;
        if is(&option, "NX") && condition_free(&SetCondition::IfAbsent) {
            set.condition = SetCondition::IfAbsent;
        } else if is(&option, "XX") && condition_free(&SetCondition::IfPresent) {
            set.condition = SetCondition::IfPresent;
        } else if is(&option, "IFEQ") && no_condition && !a.is_empty() {
            set.condition = SetCondition::IfEqual(a.take()?);
        } else if is(&option, "IFNE") && no_condition && !a.is_empty() {
            set.condition = SetCondition::IfNotEqual(a.take()?);
        } else if is(&option, "GET") {
            set.get = true;
        } else if is(&option, "KEEPTTL") && matches!(set.expiry, SetExpiryArg::Clear | SetExpiryArg::Keep) {
            set.expiry = SetExpiryArg::Keep;
        } else if set.expiry != SetExpiryArg::Keep
            && expiry_option_seen.as_ref().is_none_or(|seen| seen.eq_ignore_ascii_case(&option))
            && !a.is_empty()
        {
            match expiry_option(&mut a, &option, "set")? {
                Some(expiry) => set.expiry = SetExpiryArg::Expire(expiry),
                None => return Err(CommandError::syntax()),
            }
            expiry_option_seen = Some(option.to_vec());
        } else {
            return Err(CommandError::syntax());
        }
    }
    Ok(Command::Set(set))
}

fn setex(mut a: Args, command: &'static str, unit_ms: i64) -> Result<Command, CommandError> {
    let key = a.take()?;
    let amount = a.next_i64()?;
    let value = a.take()?;
    if amount <= 0 {
        return Err(CommandError::invalid_expire(command));
    }
    let ms = amount.checked_mul(unit_ms).ok_or_else(|| CommandError::invalid_expire(command))?;
    Ok(Command::Set(Set {
        key,
        value,
        condition: SetCondition::Always,
        expiry: SetExpiryArg::Expire(ExpiryArg::In(ms)),
        get: false,
        command,
    }))
}

fn delex(mut a: Args) -> Result<Command, CommandError> {
    let key = a.take()?;
    let condition = match a.remaining() {
        0 => DelCondition::Always,
        2 => {
            let option = a.take()?;
            let value = a.take()?;
            if is(&option, "IFEQ") {
                DelCondition::IfEqual(value)
            } else if is(&option, "IFNE") {
                DelCondition::IfNotEqual(value)
            } else {
                return Err(CommandError::syntax());
            }
        }
        _ => return Err(CommandError::syntax()),
    };
    Ok(Command::DelEx { key, condition })
}

fn getex(mut a: Args) -> Result<Command, CommandError> {
    let key = a.take()?;
    let expiry = match a.remaining() {
        0 => GetExArg::Keep,
        1 if is(&a.take()?, "PERSIST") => GetExArg::Persist,
        2 => {
            let option = a.take()?;
            match expiry_option(&mut a, &option, "getex")? {
                Some(expiry) => GetExArg::Expire(expiry),
                None => return Err(CommandError::syntax()),
            }
        }
        _ => return Err(CommandError::syntax()),
    };
    Ok(Command::GetEx { key, expiry })
}

fn mset(a: Args) -> Result<Command, CommandError> {
    let rest = a.rest();
    if !rest.len().is_multiple_of(2) {
        return Err(CommandError::wrong_arity("mset"));
    }
    let mut pairs = Vec::with_capacity(rest.len() / 2);
    let mut it = rest.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        pairs.push((k, v));
    }
    Ok(Command::MSet(pairs))
}

fn incr_by(mut a: Args, negate: bool) -> Result<Command, CommandError> {
    let key = a.take()?;
    let amount = a.next_i64()?;
    let delta = if negate {
        amount.checked_neg().ok_or_else(|| CommandError("ERR decrement would overflow".into()))?
    } else {
        amount
    };
    Ok(Command::IncrBy { key, delta })
}
