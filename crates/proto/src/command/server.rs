//! Parsing of server commands: COMMAND INFO CONFIG DBSIZE FLUSHDB FLUSHALL.

use super::{is, Args, Command, CommandError, GroupResult};

pub(super) fn parse(name: &str, a: Args) -> GroupResult {
    let cmd = match name {
        "command" => Ok(Command::CommandInfo(None)),
        "command|count" => Ok(Command::CommandCount),
        "command|list" => Ok(Command::CommandList),
        "command|info" => Ok(Command::CommandInfo(names(a))),
        "command|docs" => Ok(Command::CommandDocs(names(a))),
        "info" => Ok(Command::Info(a.rest())),
        "config|get" => Ok(Command::ConfigGet(a.rest())),
        "config|set" => config_set(a),
        "config|resetstat" => Ok(Command::ConfigResetStat),
        "dbsize" => Ok(Command::DbSize),
        "time" => Ok(Command::Time),
        "flushdb" => flush_mode(a).map(|()| Command::FlushDb),
        "flushall" => flush_mode(a).map(|()| Command::FlushAll),
        "function|flush" => flush_mode(a).map(|()| Command::FunctionFlush),
        "shutdown" => shutdown(a),
        _ => return Err(a),
    };
    Ok(cmd)
}

/// `None` when no names were given, meaning every command.
fn names(a: Args) -> Option<Vec<super::Bytes>> {
    let names = a.rest();
    (!names.is_empty()).then_some(names)
}

/// FLUSHDB/FLUSHALL accept ASYNC or SYNC; both flush synchronously here.
fn flush_mode(mut a: Args) -> Result<(), CommandError> {
    if a.is_empty() {
        return Ok(());
    }
    let mode = a.take()?;
    if (is(&mode, "ASYNC") || is(&mode, "SYNC")) && a.is_empty() {
        Ok(())
    } else {
        Err(CommandError::syntax())
    }
}

/// SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE]: NOW and FORCE change nothing here
/// (there is no replica to wait for and nothing that can refuse).
fn shutdown(a: Args) -> Result<Command, CommandError> {
    let mut save = true;
    for option in a.rest() {
        if is(&option, "NOSAVE") {
            save = false;
        } else if is(&option, "ABORT") {
            return Err(CommandError("ERR No shutdown in progress.".into()));
        } else if !(is(&option, "SAVE") || is(&option, "NOW") || is(&option, "FORCE")) {
            return Err(CommandError::syntax());
        }
    }
    Ok(Command::Shutdown { save })
}

/// `CONFIG SET name value [name value …]`.
fn config_set(a: Args) -> Result<Command, CommandError> {
    let args = a.rest();
    if !args.len().is_multiple_of(2) {
        return Err(CommandError::wrong_arity("config|set"));
    }
    Ok(Command::ConfigSet(args.chunks(2).map(|p| (p[0].clone(), p[1].clone())).collect()))
}
