//! Executing commands: `execute` turns one request into one reply frame.
//! Each submodule handles one command group, mirroring the parsers in
//! `shoal_proto::command`.

mod cluster;
mod connection;
mod introspect;
mod keyspace;
mod server;
mod string;
mod write;

use bytes::Bytes;
use shoal_proto::command::resolve;
use shoal_proto::{Command, CommandError, Frame};

use crate::route;
use crate::state::{Session, Shared};
use shoal_engine::Millis;

/// Runs one request at time `now` and returns its reply.
pub fn execute(shared: &Shared, session: &mut Session, args: Vec<Bytes>, now: Millis) -> Frame {
    let spec = match resolve(&args) {
        Ok(spec) => spec,
        Err(e) => return error(e),
    };
    if let Some(cluster) = &shared.config.cluster {
        if let Err(redirect) = route::check(cluster, spec, &args) {
            return redirect;
        }
    }
    match Command::parse_resolved(spec, args) {
        Ok(cmd) => run(shared, session, cmd, now).unwrap_or_else(error),
        Err(e) => error(e),
    }
}

fn error(e: CommandError) -> Frame {
    Frame::Error(Bytes::from(e.0))
}

fn run(shared: &Shared, session: &mut Session, cmd: Command, now: Millis) -> Result<Frame, CommandError> {
    match cmd {
        Command::Ping(_)
        | Command::Echo(_)
        | Command::Hello(_)
        | Command::Quit
        | Command::Select(_)
        | Command::ClientSetName(_)
        | Command::ClientGetName
        | Command::ClientId
        | Command::ClientSetInfo => connection::run(session, cmd, shared.config.cluster.is_some()),
        Command::CommandCount
        | Command::CommandList
        | Command::CommandInfo(_)
        | Command::CommandDocs(_)
        | Command::Info(_)
        | Command::ConfigGet(_)
        | Command::DbSize
        | Command::FlushDb
        | Command::FlushAll
        | Command::Shutdown { .. } => server::run(shared, session, cmd, now),
        Command::Del(_)
        | Command::Exists(_)
        | Command::Expire { .. }
        | Command::Ttl { .. }
        | Command::Persist(_)
        | Command::Type(_)
        | Command::Keys(_)
        | Command::Scan(_) => keyspace::run(shared, cmd, now),
        Command::ClusterSlots
        | Command::ClusterShards
        | Command::ClusterNodes
        | Command::ClusterInfo
        | Command::ClusterMyId
        | Command::ClusterMyShardId
        | Command::ClusterKeySlot(_)
        | Command::ClusterCountKeysInSlot(_)
        | Command::ClusterGetKeysInSlot { .. }
        | Command::ReadOnly
        | Command::ReadWrite
        | Command::Asking => cluster::run(shared, cmd, now),
        _ => string::run(shared, session, cmd, now),
    }
}
