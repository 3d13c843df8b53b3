//! Executing commands in two steps, so the connection can wait between
//! them: `prepare` resolves, routes and parses a request (a redirect or an
//! error is already the reply); `run` executes it, giving either a reply or
//! a write for the connection to replicate. Each submodule handles one
//! command group, mirroring the parsers in `shoal_proto::command`.

pub mod admin;
mod cluster;
mod connection;
mod data;
mod introspect;
mod keyspace;
mod server;
mod string;
pub mod transaction;
pub mod write;

use std::sync::Arc;

use bytes::Bytes;
use shoal_engine::{Db, Millis, WriteOp};
use shoal_proto::command::resolve;
use shoal_proto::{Command, CommandError, Frame};
use shoal_raft::transport::GroupId;
use shoal_raft::WriteTag;

use crate::route::{self, Target};
use crate::state::{Session, Shared};
pub use write::{Blocking, Shape, Write};

/// A request ready to run.
#[derive(Debug)]
pub struct Ready {
    cmd: Command,
    /// Where a keyed command runs; `None` for a keyless one.
    pub target: Option<Target>,
    /// Whether it writes (replicated) or only reads (needs the group's
    /// earlier writes from this connection applied, and on a leader a
    /// ReadIndex barrier).
    pub write: bool,
    /// The tag of a CLIENT SHOAL-TAG just before, for a write.
    tag: Option<WriteTag>,
    /// The command table's name (`client|id` for a subcommand), for stats.
    pub name: &'static str,
    /// The request as sent, kept inside MULTI (a queued read is logged as
    /// its arguments, to run in the transaction).
    argv: Option<Vec<Bytes>>,
}

impl Ready {
    /// Whether the connection's pending writes must be applied first: for
    /// everything but writes and the tag that precedes a write.
    pub fn settles(&self) -> bool {
        !self.write && !matches!(self.cmd, Command::ClientShoalTag { .. })
    }

    /// Whether MULTI queues it (everything but the transaction's own
    /// commands and QUIT).
    pub fn queues(&self) -> bool {
        !matches!(self.cmd, Command::Multi | Command::Exec | Command::Discard | Command::Watch(_) | Command::Quit)
    }
}

// Made once per request and matched at once: boxing the large variant
// would cost an allocation per command.
#[allow(clippy::large_enum_variant)]
pub enum Prepared {
    /// Answered already: an unknown command, a parse error, a redirect.
    /// The command's name when it was known (a rejected call, for stats).
    Reply(Frame, Option<&'static str>),
    Ready(Ready),
}

/// What running a command produced.
#[derive(Debug)]
pub enum Outcome {
    Reply(Frame),
    /// One write to replicate; its reply comes from the result.
    Write(Write),
    /// The same op in several groups (FLUSHALL over the groups led here);
    /// the reply is `OK` once all are applied.
    WriteAll(Vec<(GroupId, WriteOp)>),
    /// CLUSTER SHOAL: a change to the cluster map, answered once committed
    /// (`admin::run`).
    Admin(shoal_proto::command::ShoalAdmin),
    /// EXEC: one write holding the transaction.
    Exec(transaction::Exec),
}

/// Resolves, routes and parses one request.
pub fn prepare(shared: &Shared, session: &mut Session, args: Vec<Bytes>) -> Prepared {
    let spec = resolve(&args);
    // A tag covers the command right after CLIENT SHOAL-TAG, whatever
    // becomes of it (run, redirected, refused).
    let is_tag = spec.as_ref().is_ok_and(|s| s.name == "client|shoal-tag");
    if is_tag && session.multi.is_some() {
        let refused = Frame::error("ERR CLIENT SHOAL-TAG inside MULTI is not allowed (tag the EXEC instead)");
        return Prepared::Reply(refused, Some("client|shoal-tag"));
    }
    let tag = if is_tag { None } else { session.tag.take() };
    let spec = match spec {
        Ok(spec) => spec,
        // A known command with wrong arguments counts as a rejected call.
        Err(e) => {
            let name = args.first().and_then(|name| shoal_proto::command::lookup(name)).map(|spec| spec.name);
            return Prepared::Reply(error(e), name);
        }
    };
    let cluster = shared.config.cluster.is_some();
    // Until our first peer check reports a node's generation, its leader
    // identity is taken as current.
    let usable = |node, group| {
        shared.peers.is_connected(node) && shared.shards.leader_is_current(group, shared.peers.generation(node))
    };
    // WATCH reads versions: never a replica's possibly stale copy.
    let readonly = session.readonly && spec.name != "watch";
    let target = match route::route(&shared.shards, cluster, spec, &args, readonly, usable) {
        Ok(target) => target,
        Err(redirect) => return Prepared::Reply(redirect, Some(spec.name)),
    };
    let write = route::is_write(spec);
    let argv = session.multi.is_some().then(|| args.clone());
    match Command::parse_resolved(spec, args) {
        Ok(Command::Data(data)) if cluster && !one_slot(&data.cmd, target) => {
            Prepared::Reply(Frame::error(crate::route::CROSSSLOT), Some(spec.name))
        }
        Ok(cmd) => Prepared::Ready(Ready { cmd, target, write, tag, name: spec.name, argv }),
        Err(e) if session.multi.is_some() => {
            Prepared::Ready(Ready { cmd: Command::Failed(e), target, write, tag, name: spec.name, argv })
        }
        Err(e) => Prepared::Reply(error(e), Some(spec.name)),
    }
}

/// Whether every key an engine command names is in its target's slot:
/// the table's key positions cover most, not all (SORT … STORE).
fn one_slot(cmd: &shoal_engine::Cmd, target: Option<Target>) -> bool {
    let slot = target.map(|t| t.slot);
    cmd.keys().iter().all(|k| Some(shoal_engine::slot::key_slot(k)) == slot)
}

fn error(e: CommandError) -> Frame {
    Frame::Error(Bytes::from(e.0))
}

/// The keyspace and target of a keyed command. `route` gives every command
/// with keys a target in a group held here; the group may have been closed
/// since (its replica moved away), which is a `-TRYAGAIN`.
fn keyed(shared: &Shared, target: Option<Target>) -> Result<(Arc<Db>, Target), CommandError> {
    let target = target.expect("commands with keys are routed to a target");
    match shared.shards.db(target.group) {
        Some(db) => Ok((db, target)),
        None => Err(CommandError("TRYAGAIN this node no longer holds the slot's shard".into())),
    }
}

/// Runs a prepared request at time `now`.
pub fn run(shared: &Shared, session: &mut Session, ready: Ready, now: Millis) -> Outcome {
    let Ready { cmd, target, tag, write, .. } = ready;
    let result = match cmd {
        Command::Ping(_)
        | Command::Echo(_)
        | Command::Hello(_)
        | Command::Quit
        | Command::Select(_)
        | Command::ClientSetName(_)
        | Command::ClientGetName
        | Command::ClientId
        | Command::ClientInfo
        | Command::ClientSetInfo { .. }
        | Command::ClientShoalTag { .. } => {
            connection::run(session, cmd, shared.config.cluster.is_some()).map(Outcome::Reply)
        }
        Command::CommandCount
        | Command::CommandList
        | Command::CommandInfo(_)
        | Command::CommandDocs(_)
        | Command::Info(_)
        | Command::ConfigGet(_)
        | Command::ConfigSet(_)
        | Command::ConfigResetStat
        | Command::DbSize
        | Command::Time
        | Command::FlushDb
        | Command::FlushAll
        | Command::FunctionFlush
        | Command::Shutdown { .. } => server::run(shared, session, cmd, now),
        Command::Keys(_) | Command::Scan(_) | Command::RandomKey => {
            keyspace::run_keyless(shared, cmd, now).map(Outcome::Reply)
        }
        Command::Del(_)
        | Command::Exists(_)
        | Command::Expire { .. }
        | Command::Ttl { .. }
        | Command::Persist(_)
        | Command::Type(_) => keyed(shared, target).and_then(|(db, target)| keyspace::run((&db, target), cmd, now)),
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
        | Command::Asking => cluster::run(shared, session, cmd, now).map(Outcome::Reply),
        Command::Failed(e) => Err(e),
        Command::Data(data) => data::run(shared, target, write, data, now),
        Command::ClientUnblock { id, error } => {
            Ok(Outcome::Reply(Frame::Integer(i64::from(shared.blocked.unblock(id, error)))))
        }
        Command::Multi | Command::Exec | Command::Discard | Command::Watch(_) | Command::Unwatch => {
            transaction::run(shared, session, target, cmd, now)
        }
        Command::ClusterShoal(admin) => match shared.config.cluster {
            Some(_) => Ok(Outcome::Admin(admin)),
            None => Err(CommandError("ERR This instance has cluster support disabled".into())),
        },
        _ => keyed(shared, target).and_then(|(db, target)| string::run(shared, session, (&db, target), cmd, now)),
    };
    match result {
        // A blocking pop may be replicated several times (each empty try
        // answers nil): a tag would record the first nil and replay it, so
        // blocking pops go untagged (docs/failures.md).
        Ok(Outcome::Write(write)) if write.blocking.is_some() => Outcome::Write(write),
        Ok(Outcome::Write(write)) => Outcome::Write(Write { tag, ..write }),
        Ok(Outcome::Exec(exec)) => Outcome::Exec(transaction::Exec { tag, ..exec }),
        Ok(outcome) => outcome,
        Err(e) => Outcome::Reply(error(e)),
    }
}
