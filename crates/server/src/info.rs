//! INFO: Redis's `# Section` / `field:value` text, for the sections tools
//! look at (server, clients, memory, persistence, stats, replication, cpu,
//! cluster, keyspace).

use std::fmt::Write;

use bytes::Bytes;

use shoal_raft::{Role, ShowId};

use crate::state::Shared;
use crate::stats::Stats;

/// Every section, in Redis's order; `default` (or no argument) leaves out
/// the per-command ones, as Redis does.
const SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "commandstats",
    "errorstats",
    "cluster",
    "keyspace",
];
const NOT_DEFAULT: &[&str] = &["commandstats", "errorstats"];

/// Renders the requested sections (`default`, `all`, `everything` or names).
pub fn render(shared: &Shared, requested: &[Bytes]) -> String {
    let wanted: Vec<String> = requested.iter().map(|s| String::from_utf8_lossy(s).to_ascii_lowercase()).collect();
    let all = wanted.iter().any(|w| matches!(w.as_str(), "all" | "everything"));
    let default = wanted.is_empty() || wanted.iter().any(|w| w == "default");
    let mut out = String::new();
    for &section in SECTIONS {
        let by_default = default && !NOT_DEFAULT.contains(&section);
        if all || by_default || wanted.iter().any(|w| w == section) {
            if !out.is_empty() {
                out.push_str("\r\n");
            }
            let _ = writeln!(out, "# {}\r", capitalise(section));
            let fields = match section {
                "server" => owned(server(shared)),
                "clients" => owned(clients(shared)),
                "memory" => owned(memory()),
                "persistence" => owned(persistence(shared)),
                "stats" => owned(stats(shared)),
                "replication" => {
                    out.push_str(&replication(shared));
                    vec![]
                }
                "cpu" => owned(cpu()),
                "commandstats" => commandstats(shared),
                "errorstats" => errorstats(shared),
                "cluster" => owned(vec![("cluster_enabled", u8::from(shared.config.cluster.is_some()).to_string())]),
                _ => owned(keyspace(shared)),
            };
            for (name, value) in fields {
                let _ = write!(out, "{name}:{value}\r\n");
            }
        }
    }
    out
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
}

type Fields = Vec<(&'static str, String)>;

fn owned(fields: Fields) -> Vec<(String, String)> {
    fields.into_iter().map(|(name, value)| (name.to_string(), value)).collect()
}

fn server(shared: &Shared) -> Fields {
    let uptime = shared.started.elapsed().as_secs();
    vec![
        ("redis_version", crate::REDIS_VERSION.into()),
        ("shoal_version", env!("CARGO_PKG_VERSION").into()),
        ("redis_mode", if shared.config.cluster.is_some() { "cluster" } else { "standalone" }.into()),
        ("os", std::env::consts::OS.into()),
        ("arch_bits", (usize::BITS).to_string()),
        ("multiplexing_api", "epoll".into()),
        ("process_id", std::process::id().to_string()),
        ("tcp_port", shared.config.listen.port().to_string()),
        ("uptime_in_seconds", uptime.to_string()),
        ("uptime_in_days", (uptime / 86_400).to_string()),
        ("executable", std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_default()),
        ("config_file", String::new()),
    ]
}

fn clients(shared: &Shared) -> Fields {
    let connected = shared.stats.connected_clients.load(std::sync::atomic::Ordering::Relaxed);
    vec![
        ("connected_clients", connected.to_string()),
        ("maxclients", shared.config.limits.max_clients.to_string()),
        ("blocked_clients", shared.stats.blocked_clients.load(std::sync::atomic::Ordering::Relaxed).to_string()),
    ]
}

/// Resident set size from /proc; 0 where that is unavailable.
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    pages * 4096
}

fn memory() -> Fields {
    let rss = rss_bytes();
    vec![
        ("used_memory", rss.to_string()),
        ("used_memory_human", format!("{:.2}M", rss as f64 / (1024.0 * 1024.0))),
        ("used_memory_rss", rss.to_string()),
        ("maxmemory", "0".into()),
        ("maxmemory_policy", "noeviction".into()),
        ("mem_allocator", "libc".into()),
    ]
}

fn persistence(shared: &Shared) -> Fields {
    vec![
        ("loading", "0".into()),
        // No RDB saves here: the writes that changed something since start.
        ("rdb_changes_since_last_save", shared.shards.led().map(|(_, db)| db.changes()).sum::<u64>().to_string()),
        // The WAL plays the AOF's part: every write is in it before it is
        // answered.
        ("aof_enabled", "1".into()),
        ("appendfsync", crate::config::fsync_name(shared.config.replication.wal.fsync).into()),
    ]
}

fn stats(shared: &Shared) -> Fields {
    let s = &shared.stats;
    vec![
        ("total_connections_received", Stats::get(&s.total_connections).to_string()),
        ("total_commands_processed", Stats::get(&s.commands_processed).to_string()),
        ("total_net_input_bytes", Stats::get(&s.net_input_bytes).to_string()),
        ("total_net_output_bytes", Stats::get(&s.net_output_bytes).to_string()),
        ("rejected_connections", Stats::get(&s.rejected_connections).to_string()),
        ("expired_keys", Stats::get(&s.expired_keys).to_string()),
        ("keyspace_hits", Stats::get(&s.keyspace_hits).to_string()),
        ("keyspace_misses", Stats::get(&s.keyspace_misses).to_string()),
        ("total_error_replies", shared.stats.commands.errors().iter().map(|(_, n)| n).sum::<u64>().to_string()),
        ("protocol_errors", Stats::get(&s.protocol_errors).to_string()),
    ]
}

/// Redis's role fields, then the WAL's group-commit counters, then one
/// line per Raft group held here (`groupN`, and `meta` for the metadata
/// group): its role, leader, term, log, commit and applied indexes, and
/// (on a leader) each follower's lag in entries.
fn replication(shared: &Shared) -> String {
    let shards = &shared.shards;
    let replicas = shards.replicas();
    let statuses: Vec<_> = shards.held().iter().filter_map(|&g| Some((g, replicas.status(g)?))).collect();
    let leads = statuses.iter().any(|(_, s)| s.role == Role::Leader);
    let followers: std::collections::BTreeSet<u64> =
        statuses.iter().flat_map(|(_, s)| s.followers.iter().map(|(id, _)| *id)).collect();
    let applied: u64 = statuses.iter().filter_map(|(_, s)| s.applied_index).sum();
    let wal = replicas.wal_stats();
    let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    let (appends, batches) = (load(&wal.appends), load(&wal.batches));
    let mut out = String::new();
    let _ = write!(out, "role:{}\r\n", if leads { "master" } else { "slave" });
    let _ = write!(out, "connected_slaves:{}\r\n", followers.len());
    let _ = write!(out, "master_repl_offset:{applied}\r\n");
    let _ = write!(out, "wal_appends:{appends}\r\nwal_batches:{batches}\r\nwal_fsyncs:{}\r\n", load(&wal.fsyncs));
    let per_batch = if batches == 0 { 0.0 } else { appends as f64 / batches as f64 };
    let _ = write!(out, "wal_appends_per_batch:{per_batch:.2}\r\n");
    // The data-loss guard: 1 while this node waits for its peers to confirm
    // it never held data before (it takes no part in Raft meanwhile).
    let _ = write!(out, "quarantine:{}\r\n", u8::from(replicas.in_quarantine()));
    let _ = write!(out, "data_incarnation:{:016x}\r\n", shared.witness.incarnation());
    // This node's Raft identity: `node` at first, `node/generation` once it
    // rejoined after losing its data (see docs/failures.md).
    let _ = write!(out, "raft_id:{}\r\n", ShowId(replicas.me()));
    let index = |i: Option<u64>| i.map_or("-".to_string(), |i| i.to_string());
    // The shard groups, then the metadata group (the cluster map's).
    let meta_group = crate::meta::META_GROUP;
    let meta = replicas.status(meta_group).map(|s| ("meta".to_string(), meta_group, s));
    let named = statuses.into_iter().map(|(g, s)| (format!("group{g}"), g, s)).chain(meta);
    for (group, id, s) in named {
        // This node's replica in the group (moved replicas have their own).
        let me = replicas.member_id(id).map_or("-".to_string(), |m| ShowId(m).to_string());
        let role = format!("{:?}", s.role).to_ascii_lowercase();
        let lag: Vec<String> = s.followers.iter().map(|&(id, lag)| format!("{}:{lag}", ShowId(id))).collect();
        let ids = |ids: &[u64]| match ids {
            [] => "-".to_string(),
            ids => ids.iter().map(|&id| ShowId(id).to_string()).collect::<Vec<_>>().join("|"),
        };
        let _ = write!(
            out,
            "{group}:role={role},me={me},leader={},term={},last_log={},commit={},applied={},snapshot={},purged={},keys={},lag={},voters={},learners={},asleep={}\r\n",
            s.leader.map_or("-".to_string(), |l| ShowId(l).to_string()),
            s.term,
            index(s.last_log_index),
            index(s.committed_index),
            index(s.applied_index),
            index(s.snapshot_index),
            index(s.purged_index),
            s.keys,
            if lag.is_empty() { "-".to_string() } else { lag.join("|") },
            ids(&s.voters),
            ids(&s.learners),
            u8::from(s.asleep),
        );
    }
    out
}

/// `cmdstat_<name>:calls=…,usec=…,usec_per_call=…,rejected_calls=…,failed_calls=…`.
fn commandstats(shared: &Shared) -> Vec<(String, String)> {
    shared
        .stats
        .commands
        .commands()
        .into_iter()
        .map(|(name, t)| {
            let per_call = if t.calls == 0 { 0.0 } else { t.usec as f64 / t.calls as f64 };
            (
                format!("cmdstat_{name}"),
                format!(
                    "calls={},usec={},usec_per_call={per_call:.2},rejected_calls={},failed_calls={}",
                    t.calls, t.usec, t.rejected, t.failed
                ),
            )
        })
        .collect()
}

/// `errorstat_<CODE>:count=…`.
fn errorstats(shared: &Shared) -> Vec<(String, String)> {
    shared
        .stats
        .commands
        .errors()
        .into_iter()
        .map(|(code, n)| (format!("errorstat_{code}"), format!("count={n}")))
        .collect()
}

fn cpu() -> Fields {
    // SAFETY: getrusage fills the struct we pass; no other memory is touched.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let secs = |t: libc::timeval| format!("{}.{:06}", t.tv_sec, t.tv_usec);
    vec![("used_cpu_sys", secs(usage.ru_stime)), ("used_cpu_user", secs(usage.ru_utime))]
}

fn keyspace(shared: &Shared) -> Fields {
    let (keys, volatile) = shared.shards.led().fold((0, 0), |(k, v), (_, db)| (k + db.len(), v + db.volatile_len()));
    if keys == 0 {
        return vec![];
    }
    vec![("db0", format!("keys={keys},expires={volatile},avg_ttl=0"))]
}
