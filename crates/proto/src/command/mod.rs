//! Typed commands: the request's arguments, checked against the command
//! table and parsed once into a [`Command`] whose fields say what the
//! command means. Execution (in the server) never re-reads raw flags.
//!
//! Parsing needs no clock: relative expiries stay relative ([`ExpiryArg`])
//! until the server resolves them against `now`.

mod args;
mod cluster;
mod connection;
mod keyspace;
mod server;
mod string;
pub mod table;
mod table_types;
mod transaction;
mod typed;

use bytes::Bytes;
use shoal_engine::{DelCondition, ExpireCondition, Millis, SetCondition};

pub use args::{is, parse_i64_arg, Args};
pub use cluster::ShoalAdmin;
pub use table::{lookup, lookup_sub, CommandSpec, COMMANDS};

/// What CLIENT SETINFO sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAttr {
    LibName,
    LibVer,
}

/// A command ready to execute.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    // connection
    Ping(Option<Bytes>),
    Echo(Bytes),
    Hello(Hello),
    Quit,
    Select(i64),
    ClientSetName(Bytes),
    ClientGetName,
    ClientId,
    /// CLIENT UNBLOCK: end another client's blocking pop (as its timeout,
    /// or with `-UNBLOCKED` when `error`).
    ClientUnblock {
        id: i64,
        error: bool,
    },
    ClientInfo,
    /// CLIENT SETINFO LIB-NAME|LIB-VER value.
    ClientSetInfo {
        attr: ClientAttr,
        value: Bytes,
    },
    /// `CLIENT SHOAL-TAG client seq`: the connection's next write carries
    /// this tag, so a retry of it (same tag) is applied at most once.
    ClientShoalTag {
        client: u64,
        seq: u64,
        /// `RETRY`: an earlier attempt may have been applied, so a group
        /// that no longer knows the client must refuse it.
        retry: bool,
    },
    // server
    CommandCount,
    CommandList,
    /// COMMAND and COMMAND INFO: `None` for every command.
    CommandInfo(Option<Vec<Bytes>>),
    CommandDocs(Option<Vec<Bytes>>),
    Info(Vec<Bytes>),
    ConfigGet(Vec<Bytes>),
    /// CONFIG SET: the name-value pairs, applied all or none.
    ConfigSet(Vec<(Bytes, Bytes)>),
    ConfigResetStat,
    DbSize,
    /// TIME: seconds and microseconds since the epoch.
    Time,
    FlushDb,
    FlushAll,
    /// FUNCTION FLUSH: shoal has no functions, so there is nothing to drop.
    FunctionFlush,
    // cluster
    ClusterSlots,
    ClusterShards,
    ClusterNodes,
    ClusterInfo,
    ClusterMyId,
    ClusterMyShardId,
    ClusterKeySlot(Bytes),
    ClusterCountKeysInSlot(u16),
    ClusterGetKeysInSlot {
        slot: u16,
        count: usize,
    },
    /// CLUSTER SHOAL …: shoal's own cluster administration.
    ClusterShoal(ShoalAdmin),
    ReadOnly,
    ReadWrite,
    Asking,
    /// SHUTDOWN: `save` is false for NOSAVE.
    Shutdown {
        save: bool,
    },
    // keyspace
    Del(Vec<Bytes>),
    Exists(Vec<Bytes>),
    Expire {
        key: Bytes,
        expiry: ExpiryArg,
        condition: ExpireCondition,
        command: &'static str,
    },
    Ttl {
        key: Bytes,
        unit: TimeUnit,
    },
    Persist(Bytes),
    Type(Bytes),
    Keys(Bytes),
    RandomKey,
    Scan(Scan),
    // strings
    Get(Bytes),
    Set(Set),
    SetNx {
        key: Bytes,
        value: Bytes,
    },
    GetSet {
        key: Bytes,
        value: Bytes,
    },
    DelEx {
        key: Bytes,
        condition: DelCondition,
    },
    GetDel(Bytes),
    GetEx {
        key: Bytes,
        expiry: GetExArg,
    },
    MGet(Vec<Bytes>),
    MSet(Vec<(Bytes, Bytes)>),
    IncrBy {
        key: Bytes,
        delta: i64,
    },
    Append {
        key: Bytes,
        value: Bytes,
    },
    StrLen(Bytes),
    // transactions
    Multi,
    Exec,
    Discard,
    Watch(Vec<Bytes>),
    Unwatch,
    /// A command whose arguments did not parse, queued inside MULTI: as in
    /// Redis, it fails in its place in EXEC's reply (only unknown commands,
    /// wrong arity and redirects abort the transaction).
    Failed(CommandError),
    /// A command of the engine's `cmd` module (hashes, lists, sets, sorted
    /// sets, the rest of the strings and keys).
    Data(Data),
}

/// A parsed engine command and the arguments it came from, which are what
/// a write puts in the log (every replica parses them again).
#[derive(Debug, Clone, PartialEq)]
pub struct Data {
    pub cmd: shoal_engine::Cmd,
    pub argv: Vec<Bytes>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// Requested protocol version, if any.
    pub protover: Option<i64>,
    pub auth: Option<(Bytes, Bytes)>,
    pub setname: Option<Bytes>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Set {
    pub key: Bytes,
    pub value: Bytes,
    pub condition: SetCondition,
    pub expiry: SetExpiryArg,
    /// SET … GET: reply with the old value.
    pub get: bool,
    /// The command's name for error texts (`set`, `setex`, `psetex`).
    pub command: &'static str,
}

/// A SET expiry as written by the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetExpiryArg {
    Clear,
    Keep,
    Expire(ExpiryArg),
}

/// GETEX's options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GetExArg {
    Keep,
    Persist,
    Expire(ExpiryArg),
}

/// An expiry as given: relative (EX, PX, EXPIRE) or absolute (EXAT, PXAT,
/// EXPIREAT), always in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiryArg {
    In(i64),
    At(i64),
}

impl ExpiryArg {
    /// The absolute time, or `None` when it does not fit (Redis's "invalid
    /// expire time"). Times before the epoch clamp to 0, i.e. the past.
    pub fn resolve(self, now: Millis) -> Option<Millis> {
        let at = match self {
            ExpiryArg::In(ms) => (now as i64).checked_add(ms)?,
            ExpiryArg::At(ms) => ms,
        };
        Some(at.max(0) as Millis)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeUnit {
    Seconds,
    Millis,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    pub cursor: u64,
    pub pattern: Option<Bytes>,
    pub count: usize,
    /// TYPE filter: only `string` matches anything in shoal.
    pub type_filter: Option<Bytes>,
}

/// A command error: the reply line without its leading `-`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CommandError(pub String);

impl CommandError {
    pub fn syntax() -> Self {
        CommandError("ERR syntax error".into())
    }

    pub fn not_integer() -> Self {
        CommandError("ERR value is not an integer or out of range".into())
    }

    pub fn wrong_arity(name: &str) -> Self {
        CommandError(format!("ERR wrong number of arguments for '{name}' command"))
    }

    pub fn invalid_expire(command: &str) -> Self {
        CommandError(format!("ERR invalid expire time in '{command}' command"))
    }

    pub fn unknown_command(args: &[Bytes]) -> Self {
        let name = args.first().map(|n| lossy(n, 128)).unwrap_or_default();
        let mut text = format!("ERR unknown command '{name}', with args beginning with: ");
        for arg in args.iter().skip(1).take(20) {
            text.push_str(&format!("'{}' ", lossy(arg, 128)));
        }
        CommandError(text)
    }

    pub fn unknown_subcommand(args: &[Bytes]) -> Self {
        let container = args.first().map(|n| lossy(n, 128).to_ascii_uppercase()).unwrap_or_default();
        let sub = args.get(1).map(|n| lossy(n, 128)).unwrap_or_default();
        CommandError(format!("ERR unknown subcommand '{sub}'. Try {container} HELP."))
    }
}

fn lossy(b: &[u8], max: usize) -> String {
    String::from_utf8_lossy(&b[..b.len().min(max)]).into_owned()
}

/// Finds a request's table entry (the subcommand's, for containers) and
/// checks its arity. This is all routing needs: key positions come from it.
pub fn resolve(args: &[Bytes]) -> Result<&'static CommandSpec, CommandError> {
    let name = args.first().ok_or_else(CommandError::syntax)?;
    let spec = lookup(name).ok_or_else(|| CommandError::unknown_command(args))?;
    if spec.subcommands.is_empty() {
        return if spec.arity_ok(args.len()) { Ok(spec) } else { Err(CommandError::wrong_arity(spec.name)) };
    }
    // Containers: COMMAND alone is valid; the others need a subcommand.
    let Some(sub_name) = args.get(1) else {
        return if spec.arity_ok(args.len()) { Ok(spec) } else { Err(CommandError::wrong_arity(spec.name)) };
    };
    let sub = lookup_sub(spec, sub_name).ok_or_else(|| CommandError::unknown_subcommand(args))?;
    if sub.arity_ok(args.len()) {
        Ok(sub)
    } else {
        Err(CommandError::wrong_arity(sub.name))
    }
}

impl Command {
    /// Parses a whole request.
    pub fn parse(args: Vec<Bytes>) -> Result<Command, CommandError> {
        let spec = resolve(&args)?;
        Self::parse_resolved(spec, args)
    }

    /// Parses a request already resolved to `spec` by [`resolve`].
    pub fn parse_resolved(spec: &'static CommandSpec, args: Vec<Bytes>) -> Result<Command, CommandError> {
        let skip = if spec.name.contains('|') { 2 } else { 1 };
        let a = Args::new(args, skip);
        (spec.parser)(spec.name, a)
            .unwrap_or_else(|_| unreachable!("command {} has no parser in group {}", spec.name, spec.group))
    }
}

/// What each group's parser returns: `Err(args)` hands the arguments back
/// when the name is not one of its commands.
pub(crate) type GroupResult = Result<Result<Command, CommandError>, Args>;

#[cfg(test)]
mod tests;
