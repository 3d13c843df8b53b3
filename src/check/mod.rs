//! `shoal check`: a Jepsen-style test a user can point at a cluster.
//!
//! Concurrent clients run a register workload (GET, SET, `SET … IFEQ`) and
//! a set workload (APPEND of unique elements, then one final read per key),
//! or with `--workload list-append` a list workload (RPUSH of unique
//! elements, LRANGE of whole lists along the way and at the end),
//! while, on a cluster this command started itself, a nemesis kills,
//! pauses and wipes nodes. Every operation is recorded (invoke, then ok / fail /
//! info), the history is written to a file, and shoal-check decides:
//! registers linearizable per key, no acknowledged element lost or
//! duplicated, list reads that extend one another. Exit status: 0 valid,
//! 1 a violation, 3 unknown (the search ran out of time), 2 bad usage or
//! the cluster never came up.

mod nemesis;
mod workload;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use shoal_check::history::{self, Call, Op, Outcome};
use shoal_check::{linear, lists, sets, Verdict};
use shoal_client::RetryPolicy;

use crate::nodes::LocalCluster;
use nemesis::{Fault, Managed};
use workload::Shared;

/// What the clients do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Workload {
    /// GET, SET of unique values and `SET … IFEQ` on keys that change every
    /// --ops-per-key operations; each key must be linearizable.
    Register,
    /// APPEND of unique elements to --set-keys keys, one final read each:
    /// nothing acknowledged lost, nothing twice.
    Set,
    /// RPUSH of unique elements to --list-keys list keys (half of them
    /// sharing a hash tag), LRANGE of whole lists along the way and at the
    /// end: no element twice, every read a prefix of every later one,
    /// nothing acknowledged lost.
    ListAppend,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Check this running cluster (HOST:PORT[,HOST:PORT…]) instead of
    /// starting one; no faults are injected into a cluster it did not start.
    #[arg(long)]
    pub cluster: Option<String>,
    /// Nodes of the cluster to start (without --cluster).
    #[arg(long, default_value_t = 3)]
    pub nodes: u32,
    /// Client port of node 1 of the started cluster.
    #[arg(long, default_value_t = 7100)]
    pub port: u16,
    /// Where the started cluster keeps its data; DIR/node-i is wiped first.
    #[arg(long, default_value = "./shoal-check")]
    pub dir: PathBuf,
    /// Shards per node of the started cluster.
    #[arg(long, default_value_t = 3)]
    pub shards: u16,
    /// How long the workload runs, in seconds.
    #[arg(long, default_value_t = 60)]
    pub duration_s: u64,
    /// Faults to inject into the started cluster: kill, pause, wipe,
    /// membership (replica moves and leader changes; moves need more nodes
    /// than replicas), reshard (shard splits and merges), none.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "kill,pause,wipe")]
    pub nemesis: Vec<Fault>,
    /// Time between faults, in milliseconds (a fault lasts 30-90% of it).
    #[arg(long, default_value_t = 4000)]
    pub nemesis_interval_ms: u64,
    /// Workloads to run side by side: register, set, list-append.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "register,set")]
    pub workload: Vec<Workload>,
    /// Clients per workload.
    #[arg(long, default_value_t = 5)]
    pub clients: u32,
    /// Operations per second, all clients together (roughly).
    #[arg(long, default_value_t = 300)]
    pub rate: u32,
    /// Register operations on one key before the clients move to the next.
    #[arg(long, default_value_t = 100)]
    pub ops_per_key: u64,
    /// Keys the set workload appends to.
    #[arg(long, default_value_t = 4)]
    pub set_keys: u64,
    /// Keys the list-append workload appends to.
    #[arg(long, default_value_t = 4)]
    pub list_keys: u64,
    /// An operation without an answer after this many milliseconds is
    /// recorded as indeterminate.
    #[arg(long, default_value_t = 3000)]
    pub op_timeout_ms: u64,
    /// Time for the linearizability search, in milliseconds, before it
    /// answers "unknown".
    #[arg(long, default_value_t = 60_000)]
    pub check_timeout_ms: u64,
    /// Seed for the clients' choices and the fault schedule [default: random].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Where to write the history (JSON lines).
    #[arg(long, default_value = "shoal-check-history.jsonl")]
    pub history: PathBuf,
    /// Only check a history written earlier (no cluster, no workload).
    #[arg(long)]
    pub recheck: Option<PathBuf>,
}

pub fn run(args: CheckArgs) -> ExitCode {
    if let Some(path) = &args.recheck {
        return match std::fs::read_to_string(path).map_err(|e| e.to_string()).and_then(|t| history::from_json_lines(&t))
        {
            Ok(ops) => report(&ops, Duration::from_millis(args.check_timeout_ms)),
            Err(e) => fail(&format!("cannot read the history {}: {e}", path.display())),
        };
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return fail(&format!("cannot start the runtime: {e}")),
    };
    let ops = match runtime.block_on(execute(&args)) {
        Ok(ops) => ops,
        Err(e) => return fail(&e),
    };
    if let Err(e) = std::fs::write(&args.history, history::to_json_lines(&ops)) {
        eprintln!("shoal: cannot write the history to {}: {e}", args.history.display());
    } else {
        println!("history: {} ({} operations)", args.history.display(), ops.len());
    }
    report(&ops, Duration::from_millis(args.check_timeout_ms))
}

fn fail(message: &str) -> ExitCode {
    eprintln!("shoal: {message}");
    ExitCode::from(2)
}

/// Starts the cluster (unless given one), runs the workloads with the
/// nemesis, heals, and does the final reads. Returns the whole history.
async fn execute(args: &CheckArgs) -> Result<Vec<Op>, String> {
    if args.clients == 0 || args.rate == 0 || args.ops_per_key == 0 || args.set_keys == 0 || args.list_keys == 0 {
        return Err("--clients, --rate, --ops-per-key, --set-keys and --list-keys must be at least 1".into());
    }
    let mut workloads = args.workload.clone();
    workloads.sort_unstable();
    workloads.dedup();
    if workloads.is_empty() {
        return Err("--workload needs at least one of register, set, list-append".into());
    }
    let seed = args.seed.unwrap_or_else(rand::random);
    println!("seed {seed} (rerun with --seed {seed}; the fault schedule and choices repeat, timing does not)");
    let (seeds, nodes) = match &args.cluster {
        Some(list) => (list.split(',').map(|s| s.trim().to_string()).collect(), Vec::new()),
        None => start_cluster(args).await?,
    };
    let clients = workloads.len() as u32 * args.clients;
    let shared = Arc::new(Shared {
        seeds,
        policy: RetryPolicy {
            deadline: Duration::from_millis(args.op_timeout_ms),
            reply_timeout: Duration::from_millis(500),
            ..RetryPolicy::default()
        },
        op_timeout: Duration::from_millis(args.op_timeout_ms),
        think: Duration::from_micros(1_000_000 * u64::from(clients) / u64::from(args.rate)),
        prefix: format!("check:{seed:016x}"),
        ops_per_key: args.ops_per_key,
        set_keys: args.set_keys,
        list_keys: args.list_keys,
        started: Instant::now(),
        stop: AtomicBool::new(false),
        register_ops: AtomicU64::new(0),
        next_value: AtomicU64::new(1),
    });
    // Processes numbered workload by workload, the final reads' last.
    let mut tasks = Vec::new();
    for (w, &kind) in (0u32..).zip(&workloads) {
        for p in 0..args.clients {
            let (q, seed, shared) = (w * args.clients + p, seed.wrapping_add(u64::from(p) + 1), Arc::clone(&shared));
            tasks.push(match kind {
                Workload::Register => tokio::spawn(workload::register_client(shared, q, seed)),
                Workload::Set => tokio::spawn(workload::set_client(shared, q, seed ^ 0x5e7)),
                Workload::ListAppend => tokio::spawn(workload::list_client(shared, q, seed ^ 0x11a7)),
            });
        }
    }
    let (stop_nemesis, stopped) = tokio::sync::watch::channel(false);
    let interval = Duration::from_millis(args.nemesis_interval_ms.max(100));
    let faults = if nodes.is_empty() { Vec::new() } else { args.nemesis.clone() };
    let nemesis = tokio::spawn(nemesis::run(nodes, faults, interval, seed, shared.started, stopped));
    tokio::time::sleep(Duration::from_secs(args.duration_s)).await;
    shared.stop.store(true, Ordering::Release);
    let _ = stop_nemesis.send(true);
    let mut ops = Vec::new();
    for task in tasks {
        ops.extend(task.await.map_err(|e| format!("a client task failed: {e}"))?);
    }
    let (mut nodes, faults) = nemesis.await.map_err(|e| format!("the nemesis failed: {e}"))?;
    for line in &faults {
        println!("fault: {line}");
    }
    // A cluster that does not come back still gets its history checked:
    // the final reads then fail and the set check says "unknown".
    if !nodes.is_empty() {
        if let Err(e) = wait_ready(&nodes, Duration::from_secs(60)).await {
            eprintln!("shoal: after the faults: {e}");
        }
    }
    let last = clients;
    if workloads.contains(&Workload::Set) {
        ops.extend(workload::final_reads(&shared, last, Duration::from_secs(30)).await);
    }
    if workloads.contains(&Workload::ListAppend) {
        ops.extend(workload::final_list_reads(&shared, last, Duration::from_secs(30)).await);
    }
    for node in &mut nodes {
        node.stop(Duration::from_secs(10)).await;
    }
    Ok(ops)
}

async fn start_cluster(args: &CheckArgs) -> Result<(Vec<String>, Vec<Managed>), String> {
    let specs = LocalCluster {
        nodes: args.nodes,
        port: args.port,
        dir: &args.dir,
        shards: args.shards,
        replicas: None,
        fsync: crate::cli::Fsync::Always,
        log_level: "error",
    }
    .specs()?;
    let mut nodes = Vec::new();
    for spec in specs {
        match std::fs::remove_dir_all(&spec.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(format!("cannot wipe {}: {e}", spec.dir.display()))
            }
            _ => {}
        }
        nodes.push(Managed::start(spec)?);
    }
    wait_ready(&nodes, Duration::from_secs(30)).await?;
    println!("cluster of {} nodes up on ports {}..", nodes.len(), args.port);
    let seeds = nodes.iter().map(|n| format!("127.0.0.1:{}", n.spec.port)).collect();
    Ok((seeds, nodes))
}

async fn wait_ready(nodes: &[Managed], patience: Duration) -> Result<(), String> {
    let ports: Vec<u16> = nodes.iter().map(|n| n.spec.port).collect();
    let deadline = Instant::now() + patience;
    while !crate::probe::cluster_ready(&ports).await {
        if Instant::now() > deadline {
            return Err(format!("the cluster was not ready within {} s", patience.as_secs()));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Prints the counts and the verdicts; the exit status says the verdict.
fn report(ops: &[Op], check_time: Duration) -> ExitCode {
    let count = |f: fn(&Outcome) -> bool| ops.iter().filter(|o| f(&o.outcome)).count();
    println!(
        "operations: {} (ok {}, fail {}, info {})",
        ops.len(),
        count(|o| matches!(o, Outcome::Ok(_))),
        count(|o| matches!(o, Outcome::Fail(_))),
        count(|o| matches!(o, Outcome::Info(_))),
    );
    // A workload's line is shown when its operations are in the history;
    // the register and set lines also when no list operation is (as before
    // the list-append workload existed).
    let has = |f: fn(&Call) -> bool| ops.iter().any(|o| f(&o.call));
    let has_lists = has(lists::is_list);
    let mut verdict = Verdict::Valid;
    if !has_lists || has(|c| matches!(c, Call::Read | Call::Write(_) | Call::Cas { .. })) {
        let limits = linear::Limits { deadline: Instant::now() + check_time, max_states: 1 << 23 };
        let registers = linear::check_registers(ops, limits);
        println!("register: {}", shown(&registers));
        verdict = verdict.and(registers);
    }
    if !has_lists || has(|c| matches!(c, Call::Add(_) | Call::ReadAll)) {
        let (set_verdict, summary) = sets::check_sets(ops);
        println!(
            "set: {} keys, {} acknowledged adds, {} indeterminate ({} present): {}",
            summary.keys,
            summary.acknowledged,
            summary.indeterminate_present + summary.indeterminate_absent,
            summary.indeterminate_present,
            shown(&set_verdict)
        );
        verdict = verdict.and(set_verdict);
    }
    if has_lists {
        let (list_verdict, summary) = lists::check_lists(ops);
        println!(
            "list-append: {} keys, {} reads (longest {}), {} acknowledged appends, {} indeterminate ({} present): {}",
            summary.keys,
            summary.reads,
            summary.longest,
            summary.acknowledged,
            summary.indeterminate_present + summary.indeterminate_absent,
            summary.indeterminate_present,
            shown(&list_verdict)
        );
        verdict = verdict.and(list_verdict);
    }
    println!("verdict: {}", shown(&verdict).split(':').next().unwrap_or_default());
    match verdict {
        Verdict::Valid => ExitCode::SUCCESS,
        Verdict::Invalid(_) => ExitCode::FAILURE,
        Verdict::Unknown(_) => ExitCode::from(3),
    }
}

fn shown(verdict: &Verdict) -> String {
    match verdict {
        Verdict::Valid => "valid".into(),
        Verdict::Invalid(why) => format!("INVALID: {why}"),
        Verdict::Unknown(why) => format!("unknown: {why}"),
    }
}
