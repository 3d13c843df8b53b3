//! The command table: every command shoal serves, with the metadata Redis
//! publishes through COMMAND (arity, flags, key positions) and COMMAND DOCS.
//!
//! Cluster clients (redis-py's `RedisCluster`) locate keys from `first_key`,
//! `last_key` and `step`, so these must be exactly Redis's values. Arity
//! follows Redis: positive is exact, negative is a minimum, both counting the
//! command name.

use std::sync::{LazyLock, OnceLock};

use bytes::Bytes;

use hashbrown::HashMap;

/// One row of the table.
#[derive(Debug, Clone, Copy)]
pub struct CommandSpec {
    /// Lower-case name; for subcommands `container|sub`.
    pub name: &'static str,
    pub arity: i64,
    pub flags: &'static [&'static str],
    pub first_key: i64,
    /// `-1` means the last argument.
    pub last_key: i64,
    pub step: i64,
    pub acl_categories: &'static [&'static str],
    pub group: &'static str,
    pub since: &'static str,
    pub summary: &'static str,
    pub subcommands: &'static [CommandSpec],
    /// For commands with `movablekeys` (ZUNION, LMPOP, …): the position of
    /// the `numkeys` argument, whose keys follow it; 0 for none.
    pub numkeys_at: usize,
    /// The parser of the command's group, chosen once from `group`.
    pub(super) parser: GroupParser,
}

/// A group's parser: `Err(args)` when the name is not one of its commands.
pub(super) type GroupParser = fn(&str, super::Args) -> super::GroupResult;

/// The parser for a group name, at compile time.
const fn group_parser(group: &str) -> GroupParser {
    const fn eq(a: &str, b: &str) -> bool {
        let (a, b) = (a.as_bytes(), b.as_bytes());
        if a.len() != b.len() {
            return false;
        }
        let mut i = 0;
        while i < a.len() {
            if a[i] != b[i] {
                return false;
            }
            i += 1;
        }
        true
    }
    if eq(group, "string") {
        super::string::parse
    } else if eq(group, "generic") {
        super::keyspace::parse
    } else if eq(group, "connection") {
        super::connection::parse
    } else if eq(group, "cluster") {
        super::cluster::parse
    } else if eq(group, "server") {
        super::server::parse
    } else if eq(group, "transactions") {
        super::transaction::parse
    } else {
        panic!("command group without a parser")
    }
}

impl CommandSpec {
    /// Whether `argc` (including the name) satisfies the arity.
    pub fn arity_ok(&self, argc: usize) -> bool {
        let argc = argc as i64;
        if self.arity >= 0 {
            argc == self.arity
        } else {
            argc >= -self.arity
        }
    }

    /// Positions of key arguments in a request of `argc` arguments.
    pub fn key_positions(&self, argc: usize) -> impl Iterator<Item = usize> {
        let argc = argc as i64;
        let last = if self.last_key < 0 { argc + self.last_key } else { self.last_key };
        let (first, step) = (self.first_key, self.step.max(1));
        // A keyless command (first == 0) gives an empty range.
        let last = if first > 0 { last.min(argc - 1) } else { first - 1 };
        (first..=last).step_by(step as usize).map(|i| i as usize)
    }

    /// Positions of every key argument of `args`: the fixed ones, then
    /// those a `numkeys` argument counts (none when it is not a count that
    /// fits: parsing then refuses the command with Redis's error).
    pub fn keys_in(&self, args: &[Bytes]) -> Vec<usize> {
        let mut positions: Vec<usize> = self.key_positions(args.len()).collect();
        let at = self.numkeys_at;
        if at > 0 {
            let count = args.get(at).and_then(|n| std::str::from_utf8(n).ok()?.parse::<usize>().ok());
            if let Some(n) = count.filter(|&n| n > 0 && n < args.len().saturating_sub(at)) {
                positions.extend(at + 1..=at + n);
            }
        }
        positions
    }
}

const R: &[&str] = &["readonly", "fast"];
const RS: &[&str] = &["readonly"];
const W: &[&str] = &["write", "denyoom"];
const WF: &[&str] = &["write", "denyoom", "fast"];
const WD: &[&str] = &["write", "fast"];
const CONN: &[&str] = &["noscript", "loading", "stale", "fast"];
const ADMIN: &[&str] = &["admin", "noscript", "loading", "stale"];
const STR_R: &[&str] = &["@read", "@string", "@fast"];
const STR_W: &[&str] = &["@write", "@string", "@fast"];
const KS_R: &[&str] = &["@keyspace", "@read", "@fast"];
const KS_W: &[&str] = &["@keyspace", "@write", "@fast"];
const CONN_ACL: &[&str] = &["@fast", "@connection"];

#[allow(clippy::too_many_arguments)]
const fn spec(
    name: &'static str,
    arity: i64,
    flags: &'static [&'static str],
    keys: (i64, i64, i64),
    acl: &'static [&'static str],
    group: &'static str,
    since: &'static str,
    summary: &'static str,
) -> CommandSpec {
    CommandSpec {
        name,
        arity,
        flags,
        first_key: keys.0,
        last_key: keys.1,
        step: keys.2,
        acl_categories: acl,
        group,
        since,
        summary,
        subcommands: &[],
        numkeys_at: 0,
        parser: group_parser(group),
    }
}

/// A row for a command the engine's `cmd` module parses and runs.
#[allow(clippy::too_many_arguments)]
pub(super) const fn typed(
    name: &'static str,
    arity: i64,
    flags: &'static [&'static str],
    keys: (i64, i64, i64),
    acl: &'static [&'static str],
    group: &'static str,
    since: &'static str,
    summary: &'static str,
) -> CommandSpec {
    let mut s = spec(name, arity, flags, keys, acl, "string", since, summary);
    s.group = group;
    s.parser = super::typed::parse;
    s
}

/// A row whose keys are counted by a `numkeys` argument at `at`.
pub(super) const fn numkeys(mut s: CommandSpec, at: usize) -> CommandSpec {
    s.numkeys_at = at;
    s
}

const NO_KEYS: (i64, i64, i64) = (0, 0, 0);
const ONE_KEY: (i64, i64, i64) = (1, 1, 1);
const ALL_KEYS: (i64, i64, i64) = (1, -1, 1);
const PAIRS: (i64, i64, i64) = (1, -1, 2);

pub(super) const fn with_subcommands(mut s: CommandSpec, subs: &'static [CommandSpec]) -> CommandSpec {
    s.subcommands = subs;
    s
}

const CLIENT_SUBS: &[CommandSpec] = &[
    spec("client|setname", 3, CONN, NO_KEYS, CONN_ACL, "connection", "2.6.9", "Sets the connection name."),
    spec("client|getname", 2, CONN, NO_KEYS, CONN_ACL, "connection", "2.6.9", "Returns the name of the connection."),
    spec(
        "client|id",
        2,
        CONN,
        NO_KEYS,
        CONN_ACL,
        "connection",
        "5.0.0",
        "Returns the unique client ID of the connection.",
    ),
    spec(
        "client|unblock",
        -3,
        ADMIN,
        NO_KEYS,
        &["@admin", "@slow", "@dangerous", "@connection"],
        "connection",
        "5.0.0",
        "Unblocks a client blocked by a blocking command from a different connection.",
    ),
    spec(
        "client|info",
        2,
        CONN,
        NO_KEYS,
        &["@slow", "@connection"],
        "connection",
        "6.2.0",
        "Returns information about the connection.",
    ),
    spec(
        "client|setinfo",
        4,
        CONN,
        NO_KEYS,
        CONN_ACL,
        "connection",
        "7.2.0",
        "Sets information specific to the client or connection.",
    ),
    spec(
        "client|shoal-tag",
        -4,
        CONN,
        NO_KEYS,
        CONN_ACL,
        "connection",
        "shoal",
        "Tags the connection's next write with a client id and sequence number, so that a retry of it applies once.",
    ),
];

const FUNCTION_SUBS: &[CommandSpec] = &[spec(
    "function|flush",
    -2,
    &["noscript", "write"],
    NO_KEYS,
    &["@write", "@slow", "@scripting"],
    "server",
    "7.0.0",
    "Deletes all libraries and functions (shoal has none: always OK).",
)];

const COMMAND_SUBS: &[CommandSpec] = &[
    spec(
        "command|count",
        2,
        &["loading", "stale"],
        NO_KEYS,
        &["@slow", "@connection"],
        "server",
        "2.8.13",
        "Returns a count of commands.",
    ),
    spec(
        "command|docs",
        -2,
        &["loading", "stale"],
        NO_KEYS,
        &["@slow", "@connection"],
        "server",
        "7.0.0",
        "Returns documentary information about one, multiple or all commands.",
    ),
    spec(
        "command|info",
        -2,
        &["loading", "stale"],
        NO_KEYS,
        &["@slow", "@connection"],
        "server",
        "2.8.13",
        "Returns information about one, multiple or all commands.",
    ),
    spec(
        "command|list",
        -2,
        &["loading", "stale"],
        NO_KEYS,
        &["@slow", "@connection"],
        "server",
        "7.0.0",
        "Returns a list of command names.",
    ),
];

const CLUSTER_ACL: &[&str] = &["@slow"];
const CLUSTER_FLAGS: &[&str] = &["loading", "stale"];

const CLUSTER_SUBS: &[CommandSpec] = &[
    spec(
        "cluster|countkeysinslot",
        3,
        CLUSTER_FLAGS,
        NO_KEYS,
        CLUSTER_ACL,
        "cluster",
        "3.0.0",
        "Returns the number of keys in a hash slot.",
    ),
    spec(
        "cluster|getkeysinslot",
        4,
        CLUSTER_FLAGS,
        NO_KEYS,
        CLUSTER_ACL,
        "cluster",
        "3.0.0",
        "Returns the key names in a hash slot.",
    ),
    spec(
        "cluster|info",
        2,
        CLUSTER_FLAGS,
        NO_KEYS,
        CLUSTER_ACL,
        "cluster",
        "3.0.0",
        "Returns information about the state of a node.",
    ),
    spec(
        "cluster|keyslot",
        3,
        CLUSTER_FLAGS,
        NO_KEYS,
        CLUSTER_ACL,
        "cluster",
        "3.0.0",
        "Returns the hash slot for a key.",
    ),
    spec("cluster|myid", 2, CLUSTER_FLAGS, NO_KEYS, CLUSTER_ACL, "cluster", "3.0.0", "Returns the ID of a node."),
    spec(
        "cluster|myshardid",
        2,
        CLUSTER_FLAGS,
        NO_KEYS,
        CLUSTER_ACL,
        "cluster",
        "7.2.0",
        "Returns the shard ID of a node.",
    ),
    spec(
        "cluster|nodes",
        2,
        CLUSTER_FLAGS,
        NO_KEYS,
        CLUSTER_ACL,
        "cluster",
        "3.0.0",
        "Returns the cluster configuration for a node.",
    ),
    spec(
        "cluster|shards",
        2,
        CLUSTER_FLAGS,
        NO_KEYS,
        CLUSTER_ACL,
        "cluster",
        "7.0.0",
        "Returns the mapping of cluster slots to shards.",
    ),
    spec(
        "cluster|shoal",
        -3,
        ADMIN,
        NO_KEYS,
        &["@admin", "@slow", "@dangerous"],
        "cluster",
        "7.2.0",
        "shoal's cluster administration: MAP, JOIN, MOVE-REPLICA, TRANSFER-LEADER, REMOVE-NODE.",
    ),
    spec(
        "cluster|slots",
        2,
        CLUSTER_FLAGS,
        NO_KEYS,
        CLUSTER_ACL,
        "cluster",
        "3.0.0",
        "Returns the mapping of cluster slots to nodes.",
    ),
];

const CONFIG_SUBS: &[CommandSpec] = &[
    spec(
        "config|get",
        -3,
        ADMIN,
        NO_KEYS,
        &["@admin", "@slow", "@dangerous"],
        "server",
        "2.0.0",
        "Returns the effective values of configuration parameters.",
    ),
    spec(
        "config|resetstat",
        2,
        &["admin", "noscript", "loading", "stale"],
        NO_KEYS,
        &["@admin", "@slow", "@dangerous"],
        "server",
        "2.0.0",
        "Resets the server's statistics.",
    ),
    spec(
        "config|set",
        -4,
        &["admin", "noscript", "loading", "stale"],
        NO_KEYS,
        &["@admin", "@slow", "@dangerous"],
        "server",
        "2.0.0",
        "Sets configuration parameters in-flight.",
    ),
];

/// Every command served, sorted by name.
/// Every command, sorted by name: the rows here and the data types' rows
/// (`table_types`).
pub static COMMANDS: LazyLock<Vec<&'static CommandSpec>> = LazyLock::new(|| {
    let mut all: Vec<&'static CommandSpec> = BASE_COMMANDS.iter().chain(super::table_types::TYPE_COMMANDS).collect();
    all.sort_by_key(|s| s.name);
    all
});

const TX_FLAGS: &[&str] = &["noscript", "loading", "stale", "fast", "allow_busy"];
const TX_ACL: &[&str] = &["@fast", "@transaction"];

const BASE_COMMANDS: &[CommandSpec] = &[
    spec("discard", 1, TX_FLAGS, NO_KEYS, TX_ACL, "transactions", "2.0.0", "Discard all commands issued after MULTI"),
    spec(
        "exec",
        1,
        &["noscript", "loading", "stale", "skip_slowlog"],
        NO_KEYS,
        &["@slow", "@transaction"],
        "transactions",
        "1.2.0",
        "Execute all commands issued after MULTI",
    ),
    spec("multi", 1, TX_FLAGS, NO_KEYS, TX_ACL, "transactions", "1.2.0", "Mark the start of a transaction block"),
    spec("unwatch", 1, TX_FLAGS, NO_KEYS, TX_ACL, "transactions", "2.2.0", "Forget about all watched keys"),
    spec(
        "watch",
        -2,
        TX_FLAGS,
        ALL_KEYS,
        TX_ACL,
        "transactions",
        "2.2.0",
        "Watch the given keys to determine execution of the MULTI/EXEC block",
    ),
    spec(
        "append",
        3,
        W,
        ONE_KEY,
        &["@write", "@string", "@fast"],
        "string",
        "2.0.0",
        "Appends a string to the value of a key. Creates the key if it doesn't exist.",
    ),
    spec(
        "asking",
        1,
        &["fast"],
        NO_KEYS,
        &["@fast", "@connection"],
        "cluster",
        "3.0.0",
        "Signals that a cluster client is following an -ASK redirect.",
    ),
    with_subcommands(
        spec(
            "client",
            -2,
            &[],
            NO_KEYS,
            &["@slow"],
            "connection",
            "2.4.0",
            "A container for client connection commands.",
        ),
        CLIENT_SUBS,
    ),
    with_subcommands(
        spec("cluster", -2, &[], NO_KEYS, &["@slow"], "cluster", "3.0.0", "A container for Redis Cluster commands."),
        CLUSTER_SUBS,
    ),
    with_subcommands(
        spec(
            "command",
            -1,
            &["loading", "stale"],
            NO_KEYS,
            &["@slow", "@connection"],
            "server",
            "2.8.13",
            "Returns detailed information about all commands.",
        ),
        COMMAND_SUBS,
    ),
    with_subcommands(
        spec(
            "config",
            -2,
            &[],
            NO_KEYS,
            &["@slow"],
            "server",
            "2.0.0",
            "A container for server configuration commands.",
        ),
        CONFIG_SUBS,
    ),
    spec(
        "dbsize",
        1,
        R,
        NO_KEYS,
        &["@keyspace", "@read", "@fast"],
        "server",
        "1.0.0",
        "Returns the number of keys in the database.",
    ),
    spec(
        "decr",
        2,
        WF,
        ONE_KEY,
        STR_W,
        "string",
        "1.0.0",
        "Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.",
    ),
    spec(
        "decrby",
        3,
        WF,
        ONE_KEY,
        STR_W,
        "string",
        "1.0.0",
        "Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist.",
    ),
    spec(
        "del",
        -2,
        &["write"],
        ALL_KEYS,
        &["@keyspace", "@write", "@slow"],
        "generic",
        "1.0.0",
        "Deletes one or more keys.",
    ),
    spec(
        "delex",
        -2,
        WD,
        ONE_KEY,
        STR_W,
        "string",
        "8.4.0",
        "Conditionally removes the specified key based on value or digest comparison.",
    ),
    spec("echo", 2, &["fast"], NO_KEYS, CONN_ACL, "connection", "1.0.0", "Returns the given string."),
    spec("exists", -2, R, ALL_KEYS, KS_R, "generic", "1.0.0", "Determines whether one or more keys exist."),
    spec("expire", -3, WD, ONE_KEY, KS_W, "generic", "1.0.0", "Sets the expiration time of a key in seconds."),
    spec(
        "expireat",
        -3,
        WD,
        ONE_KEY,
        KS_W,
        "generic",
        "1.2.0",
        "Sets the expiration time of a key to a Unix timestamp.",
    ),
    spec(
        "flushall",
        -1,
        &["write"],
        NO_KEYS,
        &["@keyspace", "@write", "@slow", "@dangerous"],
        "server",
        "1.0.0",
        "Removes all keys from all databases.",
    ),
    spec(
        "flushdb",
        -1,
        &["write"],
        NO_KEYS,
        &["@keyspace", "@write", "@slow", "@dangerous"],
        "server",
        "1.0.0",
        "Remove all keys from the current database.",
    ),
    with_subcommands(
        spec("function", -2, &[], NO_KEYS, &["@slow"], "server", "7.0.0", "A container for function commands."),
        FUNCTION_SUBS,
    ),
    spec("get", 2, R, ONE_KEY, STR_R, "string", "1.0.0", "Returns the string value of a key."),
    spec(
        "getdel",
        2,
        WD,
        ONE_KEY,
        STR_W,
        "string",
        "6.2.0",
        "Returns the string value of a key after deleting the key.",
    ),
    spec(
        "getex",
        -2,
        WD,
        ONE_KEY,
        STR_W,
        "string",
        "6.2.0",
        "Returns the string value of a key after setting its expiration time.",
    ),
    spec(
        "getset",
        3,
        WF,
        ONE_KEY,
        STR_W,
        "string",
        "1.0.0",
        "Returns the previous string value of a key after setting it to a new value.",
    ),
    spec("hello", -1, CONN, NO_KEYS, CONN_ACL, "connection", "6.0.0", "Handshakes with the Redis server."),
    spec(
        "incr",
        2,
        WF,
        ONE_KEY,
        STR_W,
        "string",
        "1.0.0",
        "Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.",
    ),
    spec(
        "incrby",
        3,
        WF,
        ONE_KEY,
        STR_W,
        "string",
        "1.0.0",
        "Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist.",
    ),
    spec(
        "info",
        -1,
        &["loading", "stale"],
        NO_KEYS,
        &["@slow", "@dangerous"],
        "server",
        "1.0.0",
        "Returns information and statistics about the server.",
    ),
    spec(
        "keys",
        2,
        RS,
        NO_KEYS,
        &["@keyspace", "@read", "@slow", "@dangerous"],
        "generic",
        "1.0.0",
        "Returns all key names that match a pattern.",
    ),
    spec(
        "mget",
        -2,
        R,
        ALL_KEYS,
        STR_R,
        "string",
        "1.0.0",
        "Atomically returns the string values of one or more keys.",
    ),
    spec(
        "mset",
        -3,
        W,
        PAIRS,
        &["@write", "@string", "@slow"],
        "string",
        "1.0.1",
        "Atomically creates or modifies the string values of one or more keys.",
    ),
    spec("persist", 2, WD, ONE_KEY, KS_W, "generic", "2.2.0", "Removes the expiration time of a key."),
    spec("pexpire", -3, WD, ONE_KEY, KS_W, "generic", "2.6.0", "Sets the expiration time of a key in milliseconds."),
    spec(
        "pexpireat",
        -3,
        WD,
        ONE_KEY,
        KS_W,
        "generic",
        "2.6.0",
        "Sets the expiration time of a key to a Unix milliseconds timestamp.",
    ),
    spec("ping", -1, &["fast"], NO_KEYS, CONN_ACL, "connection", "1.0.0", "Returns the server's liveliness response."),
    spec(
        "psetex",
        4,
        W,
        ONE_KEY,
        &["@write", "@string", "@slow"],
        "string",
        "2.6.0",
        "Sets both string value and expiration time in milliseconds of a key. The key is created if it doesn't exist.",
    ),
    spec("pttl", 2, R, ONE_KEY, KS_R, "generic", "2.6.0", "Returns the expiration time in milliseconds of a key."),
    spec(
        "quit",
        -1,
        &["noscript", "loading", "stale", "fast", "no_auth", "allow_busy"],
        NO_KEYS,
        CONN_ACL,
        "connection",
        "1.0.0",
        "Closes the connection.",
    ),
    spec(
        "readonly",
        1,
        &["loading", "stale", "fast"],
        NO_KEYS,
        &["@fast", "@connection"],
        "cluster",
        "3.0.0",
        "Enables read-only queries for a connection to a Redis Cluster replica node.",
    ),
    spec(
        "readwrite",
        1,
        &["loading", "stale", "fast"],
        NO_KEYS,
        &["@fast", "@connection"],
        "cluster",
        "3.0.0",
        "Enables read-write queries for a connection to a Redis Cluster replica node.",
    ),
    spec(
        "randomkey",
        1,
        RS,
        NO_KEYS,
        &["@keyspace", "@read", "@slow"],
        "generic",
        "1.0.0",
        "Return a random key from the keyspace",
    ),
    spec(
        "scan",
        -2,
        RS,
        NO_KEYS,
        &["@keyspace", "@read", "@slow"],
        "generic",
        "2.8.0",
        "Iterates over the key names in the database.",
    ),
    spec(
        "select",
        2,
        &["loading", "stale", "fast"],
        NO_KEYS,
        CONN_ACL,
        "connection",
        "1.0.0",
        "Changes the selected database.",
    ),
    spec(
        "set",
        -3,
        W,
        ONE_KEY,
        &["@write", "@string", "@slow"],
        "string",
        "1.0.0",
        "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.",
    ),
    spec(
        "setex",
        4,
        W,
        ONE_KEY,
        &["@write", "@string", "@slow"],
        "string",
        "2.0.0",
        "Sets the string value and expiration time of a key. Creates the key if it doesn't exist.",
    ),
    spec(
        "setnx",
        3,
        WF,
        ONE_KEY,
        STR_W,
        "string",
        "1.0.0",
        "Set the string value of a key only when the key doesn't exist.",
    ),
    spec(
        "shutdown",
        -1,
        &["admin", "noscript", "loading", "stale", "no_async_loading", "allow_busy"],
        NO_KEYS,
        &["@admin", "@slow", "@dangerous"],
        "server",
        "1.0.0",
        "Synchronously saves the database(s) to disk and shuts down the Redis server.",
    ),
    spec("strlen", 2, R, ONE_KEY, STR_R, "string", "2.2.0", "Returns the length of a string value."),
    spec("time", 1, &["loading", "stale", "fast"], NO_KEYS, &["@fast"], "server", "2.6.0", "Returns the server time."),
    spec("ttl", 2, R, ONE_KEY, KS_R, "generic", "1.0.0", "Returns the expiration time in seconds of a key."),
    spec("type", 2, R, ONE_KEY, KS_R, "generic", "1.0.0", "Determines the type of value stored at a key."),
    spec("unlink", -2, WD, ALL_KEYS, KS_W, "generic", "4.0.0", "Asynchronously deletes one or more keys."),
];

/// Looks a command up by name, case-insensitively: one hash probe of a map
/// built on first use (a binary search of names showed up in profiles).
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    static BY_NAME: OnceLock<HashMap<&'static [u8], &'static CommandSpec>> = OnceLock::new();
    let map = BY_NAME.get_or_init(|| COMMANDS.iter().map(|s| (s.name.as_bytes(), *s)).collect());
    if name.len() > MAX_NAME {
        return None;
    }
    let mut lower = [0u8; MAX_NAME];
    let lower = &mut lower[..name.len()];
    lower.copy_from_slice(name);
    lower.make_ascii_lowercase();
    map.get(&*lower).copied()
}

/// Longest command name.
const MAX_NAME: usize = 16;

/// Looks a subcommand of `parent` up by name, case-insensitively.
pub fn lookup_sub(parent: &'static CommandSpec, sub: &[u8]) -> Option<&'static CommandSpec> {
    parent.subcommands.iter().find(|s| {
        let short = s.name.split_once('|').map_or(s.name, |(_, sub)| sub);
        short.as_bytes().eq_ignore_ascii_case(sub)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_unique() {
        assert!(COMMANDS.iter().all(|s| s.name.len() <= MAX_NAME), "lookup's buffer fits every name");
        for pair in COMMANDS.windows(2) {
            assert!(pair[0].name < pair[1].name, "{} >= {}", pair[0].name, pair[1].name);
        }
    }

    #[test]
    fn lookup_ignores_case() {
        assert_eq!(lookup(b"GeT").map(|s| s.name), Some("get"));
        assert!(lookup(b"nosuchcommand").is_none());
        assert!(lookup(b"averyveryverylongcommandname").is_none());
        let client = lookup(b"client").unwrap();
        assert_eq!(lookup_sub(client, b"SETNAME").map(|s| s.name), Some("client|setname"));
    }

    #[test]
    fn key_positions_follow_first_last_step() {
        let mset = lookup(b"mset").unwrap();
        assert_eq!(mset.key_positions(5).collect::<Vec<_>>(), vec![1, 3]);
        let del = lookup(b"del").unwrap();
        assert_eq!(del.key_positions(4).collect::<Vec<_>>(), vec![1, 2, 3]);
        let get = lookup(b"get").unwrap();
        assert_eq!(get.key_positions(2).collect::<Vec<_>>(), vec![1]);
        let ping = lookup(b"ping").unwrap();
        assert_eq!(ping.key_positions(2).count(), 0);
    }
}
