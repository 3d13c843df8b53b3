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
        Command::ConfigSet(pairs) => config_set(&pairs),
        Command::ConfigResetStat => {
            shared.stats.reset();
            Frame::OK
        }
        Command::Time => {
            let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            let text = |n: u64| Frame::Bulk(Bytes::from(n.to_string()));
            Frame::Array(vec![text(since.as_secs()), text(u64::from(since.subsec_micros()))])
        }
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
        .chain(
            shoal_engine::encoding::ALL
                .iter()
                .flat_map(|l| [(l.name, l.get().to_string()), (l.alias, l.get().to_string())]),
        )
        .filter(|(name, _)| patterns.iter().any(|p| glob_match(&p.to_ascii_lowercase(), name.as_bytes())))
        .map(|(name, value)| (Frame::bulk_str(name), Frame::Bulk(Bytes::from(value))))
        .collect();
    Frame::Map(pairs)
}

/// CONFIG SET: only the encoding thresholds (`hash-max-listpack-entries`
/// and the like) change at run time; every other parameter is refused
/// with Redis's error, and nothing is set unless every pair is valid.
fn config_set(pairs: &[(Bytes, Bytes)]) -> Frame {
    let mut changes = Vec::with_capacity(pairs.len());
    for (name, value) in pairs {
        // shoal takes no RDB snapshots: "save nothing" is already so.
        if name.eq_ignore_ascii_case(b"save") && value.is_empty() {
            continue;
        }
        let Some(limit) = shoal_engine::encoding::find(name) else {
            let name = String::from_utf8_lossy(name);
            return Frame::error(format!("ERR Unknown option or number of arguments for CONFIG SET - '{name}'"));
        };
        let Some(value) = shoal_engine::parse_i64(value) else {
            let name = String::from_utf8_lossy(name);
            return Frame::error(format!(
                "ERR CONFIG SET failed (possibly related to argument '{name}') - argument couldn't be parsed into an integer"
            ));
        };
        changes.push((limit, value));
    }
    for (limit, value) in changes {
        limit.set(value);
    }
    Frame::OK
}
