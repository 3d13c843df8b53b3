//! Executing commands: `execute` turns one request into one reply frame.
//! Each submodule handles one command group, mirroring the parsers in
//! `shoal_proto::command`.

mod connection;
mod introspect;
mod keyspace;
mod server;
mod string;

use bytes::Bytes;
use shoal_proto::{Command, CommandError, Frame};

use crate::state::{Session, Shared};
use shoal_engine::Millis;

/// Runs one request at time `now` and returns its reply.
pub fn execute(shared: &Shared, session: &mut Session, args: Vec<Bytes>, now: Millis) -> Frame {
    match Command::parse(args) {
        Ok(cmd) => run(shared, session, cmd, now).unwrap_or_else(error),
        Err(e) => error(e),
    }
}

fn error(e: CommandError) -> Frame {
    Frame::Error(Bytes::from(e.0))
}

fn run(
    shared: &Shared,
    session: &mut Session,
    cmd: Command,
    now: Millis,
) -> Result<Frame, CommandError> {
    let db = &shared.db;
    match cmd {
        Command::Ping(_)
        | Command::Echo(_)
        | Command::Hello(_)
        | Command::Quit
        | Command::Select(_)
        | Command::ClientSetName(_)
        | Command::ClientGetName
        | Command::ClientId
        | Command::ClientSetInfo => connection::run(session, cmd),
        Command::CommandCount
        | Command::CommandList
        | Command::CommandInfo(_)
        | Command::CommandDocs(_)
        | Command::Info(_)
        | Command::ConfigGet(_)
        | Command::DbSize
        | Command::FlushDb
        | Command::FlushAll
        | Command::Shutdown { .. } => server::run(shared, session, cmd),
        Command::Del(_)
        | Command::Exists(_)
        | Command::Expire { .. }
        | Command::Ttl { .. }
        | Command::Persist(_)
        | Command::Type(_)
        | Command::Keys(_)
        | Command::Scan(_) => keyspace::run(db, cmd, now),
        _ => string::run(shared, session, cmd, now),
    }
}
