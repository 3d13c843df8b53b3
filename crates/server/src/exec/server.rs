//! COMMAND INFO CONFIG DBSIZE FLUSHDB FLUSHALL.

use bytes::Bytes;
use shoal_engine::glob::glob_match;
use shoal_engine::{Millis, WriteOp};
use shoal_proto::{Command, CommandError, Frame};

use super::{introspect, Outcome};
use crate::info;
use crate::state::{Closing, Session, Shared};

pub(super) fn run(shared: &Shared, session: &mut Session, cmd: Command, _now: Millis) -> Result<Outcome, CommandError> {
    let reply = match cmd {
        Command::CommandCount => introspect::command_count(),
        Command::CommandList => introspect::command_list(),
        Command::CommandInfo(names) => introspect::command_info(names),
        Command::CommandDocs(names) => introspect::command_docs(names),
        Command::Info(sections) => {
            let text = info::render(shared, &sections);
            Frame::Verbatim(*b"txt", Bytes::from(text))
        }
        Command::ConfigGet(patterns) => config_get(shared, &patterns),
        // Keys of the groups led here, as a Redis Cluster master counts its
        // own slots.
        Command::DbSize => Frame::Integer(shared.shards.led().map(|(_, db)| db.len()).sum::<usize>() as i64),
        Command::FlushDb | Command::FlushAll => {
            return Ok(Outcome::WriteAll(shared.shards.led().map(|(group, _)| (group, WriteOp::Clear)).collect()))
        }
        // Nothing to flush: shoal has no functions (Redis's test suite sends
        // this before every file).
        Command::FunctionFlush => Frame::OK,
        Command::Shutdown { save } => {
            shared.shutdown.request(save);
            session.closing = Closing::WithoutReply;
            Frame::OK
        }
        other => unreachable!("not a server command: {other:?}"),
    };
    Ok(Outcome::Reply(reply))
}

/// CONFIG GET pattern…: every known parameter matching any pattern; an
/// unknown one simply matches nothing.
fn config_get(shared: &Shared, patterns: &[Bytes]) -> Frame {
    let pairs = shared
        .config
        .parameters()
        .into_iter()
        .filter(|(name, _)| patterns.iter().any(|p| glob_match(&p.to_ascii_lowercase(), name.as_bytes())))
        .map(|(name, value)| (Frame::bulk_str(name), Frame::Bulk(Bytes::from(value))))
        .collect();
    Frame::Map(pairs)
}
