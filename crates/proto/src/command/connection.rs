//! Parsing of connection commands: PING ECHO HELLO QUIT SELECT CLIENT.

use super::{is, Args, ClientAttr, Command, CommandError, GroupResult, Hello};

pub(super) fn parse(name: &str, mut a: Args) -> GroupResult {
    let cmd = match name {
        "ping" if a.remaining() > 1 => Err(CommandError::wrong_arity("ping")),
        "ping" => Ok(Command::Ping(a.take().ok())),
        "echo" => a.take().map(Command::Echo),
        "hello" => hello(a),
        "quit" => Ok(Command::Quit),
        "select" => a.next_i64().map(Command::Select),
        "client|setname" => a.take().map(Command::ClientSetName),
        "client|getname" => Ok(Command::ClientGetName),
        "client|id" => Ok(Command::ClientId),
        "client|unblock" => client_unblock(a),
        "client|info" => Ok(Command::ClientInfo),
        "client|setinfo" => client_setinfo(a),
        "client|shoal-tag" => client_shoal_tag(a),
        _ => return Err(a),
    };
    Ok(cmd)
}

fn hello(mut a: Args) -> Result<Command, CommandError> {
    let mut hello = Hello { protover: None, auth: None, setname: None };
    if a.is_empty() {
        return Ok(Command::Hello(hello));
    }
    let version = a.take()?;
    let protover = shoal_engine::parse_i64(&version)
        .ok_or_else(|| CommandError("ERR Protocol version is not an integer or out of range".into()))?;
    hello.protover = Some(protover);
    while !a.is_empty() {
        let option = a.take()?;
        if is(&option, "AUTH") && a.remaining() >= 2 {
            hello.auth = Some((a.take()?, a.take()?));
        } else if is(&option, "SETNAME") && a.remaining() >= 1 {
            hello.setname = Some(a.take()?);
        } else {
            let option = String::from_utf8_lossy(&option);
            return Err(CommandError(format!("ERR Syntax error in HELLO option '{option}'")));
        }
    }
    Ok(Command::Hello(hello))
}

fn client_setinfo(mut a: Args) -> Result<Command, CommandError> {
    let attr = a.take()?;
    let value = a.take()?;
    if is(&attr, "LIB-NAME") {
        Ok(Command::ClientSetInfo { attr: ClientAttr::LibName, value })
    } else if is(&attr, "LIB-VER") {
        Ok(Command::ClientSetInfo { attr: ClientAttr::LibVer, value })
    } else {
        let attr = String::from_utf8_lossy(&attr);
        Err(CommandError(format!("ERR Unrecognized option '{attr}'")))
    }
}

fn client_shoal_tag(mut a: Args) -> Result<Command, CommandError> {
    // Ids are random u64s: the full range, not only i64's.
    let mut number = || -> Result<u64, CommandError> {
        let arg = a.take()?;
        std::str::from_utf8(&arg)
            .ok()
            .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| CommandError("ERR client id and sequence must be integers from 0 to 2^64-1".into()))
    };
    let (client, seq) = (number()?, number()?);
    // RETRY: an earlier attempt of this write may have been applied.
    let retry = match a.take().ok() {
        None => false,
        Some(flag) if is(&flag, "RETRY") && a.is_empty() => true,
        Some(_) => return Err(CommandError::syntax()),
    };
    Ok(Command::ClientShoalTag { client, seq, retry })
}

/// `CLIENT UNBLOCK id [TIMEOUT|ERROR]`.
fn client_unblock(mut a: Args) -> Result<Command, CommandError> {
    let id = a.next_i64()?;
    let error = match a.take().ok() {
        None => false,
        Some(how) if is(&how, "timeout") => false,
        Some(how) if is(&how, "error") => true,
        Some(_) => return Err(CommandError("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR".into())),
    };
    if !a.is_empty() {
        return Err(CommandError::syntax());
    }
    Ok(Command::ClientUnblock { id, error })
}
