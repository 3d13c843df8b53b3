//! Parsing of keyspace commands: DEL UNLINK EXISTS EXPIRE PEXPIRE EXPIREAT
//! PEXPIREAT TTL PTTL PERSIST TYPE KEYS SCAN.

use shoal_engine::ExpireCondition;

use super::{is, Args, Command, CommandError, ExpiryArg, GroupResult, Scan, TimeUnit};

pub(super) fn parse(name: &str, mut a: Args) -> GroupResult {
    let cmd = match name {
        "del" | "unlink" => Ok(Command::Del(a.rest())),
        "exists" => Ok(Command::Exists(a.rest())),
        "expire" => expire(a, "expire", false, 1000),
        "pexpire" => expire(a, "pexpire", false, 1),
        "expireat" => expire(a, "expireat", true, 1000),
        "pexpireat" => expire(a, "pexpireat", true, 1),
        "ttl" => a.take().map(|key| Command::Ttl { key, unit: TimeUnit::Seconds }),
        "pttl" => a.take().map(|key| Command::Ttl { key, unit: TimeUnit::Millis }),
        "persist" => a.take().map(Command::Persist),
        "type" => a.take().map(Command::Type),
        "keys" => a.take().map(Command::Keys),
        "randomkey" => Ok(Command::RandomKey),
        "scan" => scan(a),
        _ => return Err(a),
    };
    Ok(cmd)
}

fn expire(mut a: Args, command: &'static str, absolute: bool, unit_ms: i64) -> Result<Command, CommandError> {
    let key = a.take()?;
    let amount = a.next_i64()?;
    let ms = amount.checked_mul(unit_ms).ok_or_else(|| CommandError::invalid_expire(command))?;
    let expiry = if absolute { ExpiryArg::At(ms) } else { ExpiryArg::In(ms) };
    // Flags first, then Redis's compatibility rules, then the one condition
    // they amount to.
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    while !a.is_empty() {
        let flag = a.take()?;
        match () {
            _ if is(&flag, "NX") => nx = true,
            _ if is(&flag, "XX") => xx = true,
            _ if is(&flag, "GT") => gt = true,
            _ if is(&flag, "LT") => lt = true,
            _ => {
                let flag = String::from_utf8_lossy(&flag);
                return Err(CommandError(format!("ERR Unsupported option {flag}")));
            }
        }
    }
    if nx && (xx || gt || lt) {
        return Err(CommandError("ERR NX and XX, GT or LT options at the same time are not compatible".into()));
    }
    if gt && lt {
        return Err(CommandError("ERR GT and LT options at the same time are not compatible".into()));
    }
    let condition = match (nx, xx, gt, lt) {
        (true, ..) => ExpireCondition::IfNone,
        // GT already refuses persistent keys, so XX adds nothing to it.
        (_, _, true, _) => ExpireCondition::IfGreater,
        (_, true, _, true) => ExpireCondition::IfSomeAndLess,
        (_, false, _, true) => ExpireCondition::IfLess,
        (_, true, ..) => ExpireCondition::IfSome,
        _ => ExpireCondition::Always,
    };
    Ok(Command::Expire { key, expiry, condition, command })
}

fn scan(mut a: Args) -> Result<Command, CommandError> {
    let cursor = a.take()?;
    let cursor = std::str::from_utf8(&cursor)
        .ok()
        .and_then(|c| c.parse::<u64>().ok())
        .ok_or_else(|| CommandError("ERR invalid cursor".into()))?;
    let mut scan = Scan { cursor, pattern: None, count: 10, type_filter: None };
    while !a.is_empty() {
        let option = a.take()?;
        if is(&option, "MATCH") {
            scan.pattern = Some(a.take()?);
        } else if is(&option, "COUNT") {
            let count = a.next_i64()?;
            if count < 1 {
                return Err(CommandError::syntax());
            }
            scan.count = usize::try_from(count).unwrap_or(usize::MAX);
        } else if is(&option, "TYPE") {
            scan.type_filter = Some(a.take()?);
        } else {
            return Err(CommandError::syntax());
        }
    }
    Ok(Command::Scan(scan))
}
