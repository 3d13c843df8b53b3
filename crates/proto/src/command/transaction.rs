//! MULTI EXEC DISCARD WATCH UNWATCH.

use super::{Args, Command, GroupResult};

pub(super) fn parse(name: &str, a: Args) -> GroupResult {
    let cmd = match name {
        "multi" => Command::Multi,
        "exec" => Command::Exec,
        "discard" => Command::Discard,
        "watch" => Command::Watch(a.rest()),
        "unwatch" => Command::Unwatch,
        _ => return Err(a),
    };
    Ok(Ok(cmd))
}
