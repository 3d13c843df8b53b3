//! The `shoal` binary: `shoal server` runs a node. Flags are parsed by clap;
//! a bad flag, a port in use or an unusable data directory ends the process
//! with one line on stderr and a non-zero exit code.

mod admin;
mod check;
mod cli;
mod join;
mod local;
mod nodes;
mod probe;
mod status;
mod tools;

use std::process::ExitCode;

use clap::Parser;
use shoal_server::StopReason;

/// mimalloc rather than glibc's malloc: the replication path allocates and
/// frees many small buffers per write (log entries, RPC frames, replies) on
/// several threads, where glibc's arenas showed up as ~15% of a node's CPU
/// under a SET benchmark.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc.h's `mi_option_e` (libmimalloc-sys
/// does not export the options as constants).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Freed memory goes back to the OS at once rather than after mimalloc's
/// default 10 ms: a delayed purge runs only when the freeing thread
/// allocates again, and the threads that free the most (a snapshot's dump
/// of the whole keyspace, on a blocking thread) then sit idle, so the
/// memory stayed resident (1 M strings: 1.72x Redis's RSS growth with the
/// delay, 1.02x without; SET throughput no lower; docs/memory.md).
fn tune_allocator() {
    // SAFETY: called first thing in `main`, before any other thread
    // exists: mimalloc's option setters are not thread safe.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) }
}

/// `--disable-thp yes`: no transparent huge pages for this process, as
/// Redis's `disable-thp` (PR_SET_THP_DISABLE). Called before the server
/// starts its threads.
fn disable_thp() -> std::io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    let rc = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn main() -> ExitCode {
    tune_allocator();
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return cli::report_usage_error(e),
    };
    match cli.command {
        cli::Commands::Server(args) => run_server(args),
        cli::Commands::Local(args) => local::run(args),
        cli::Commands::Check(args) => check::run(args),
        cli::Commands::Tool(tool) => tools::run(tool),
    }
}

fn run_server(args: cli::ServerArgs) -> ExitCode {
    if let Err(e) = init_logging(&args.log_level) {
        eprintln!("shoal: {e}");
        return ExitCode::from(2);
    }
    if args.disable_thp == cli::YesNo::Yes {
        if let Err(e) = disable_thp() {
            eprintln!("shoal: --disable-thp yes: {e}");
            return ExitCode::FAILURE;
        }
    }
    if let Some(seed) = &args.cluster.join {
        if let Err(e) = join_first(&args, seed) {
            eprintln!("shoal: {e}");
            return ExitCode::FAILURE;
        }
    }
    let config = match args.to_config() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("shoal: {e}");
            return ExitCode::from(2);
        }
    };
    let threads = args.threads.map_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()), usize::from);
    let mut config = config;
    // Clients are served by `threads` event loops of their own (see
    // listener.rs); this runtime only runs start-up, signals and the
    // background tasks.
    config.io_threads = Some(threads);
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("shoal: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        loop {
            let server = match shoal_server::Server::start(config.clone()).await {
                Ok(server) => server,
                Err(e) => {
                    eprintln!("shoal: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let reason = tokio::select! {
                signalled = wait_for_signal() => match signalled {
                    Ok(()) => StopReason::Shutdown { save: true },
                    Err(e) => {
                        eprintln!("shoal: cannot install signal handlers: {e}");
                        return ExitCode::FAILURE;
                    }
                },
                reason = server.stop_requested() => reason,
            };
            tracing::info!(?reason, "shutting down");
            let (save, fatal) = match reason {
                StopReason::Shutdown { save } => (save, None),
                // Whatever stops the node, what it holds is still saved.
                StopReason::Fatal(message) => (true, Some(message)),
                // The node lost its data: it starts again, in this process,
                // as a new replica (see the server's `rejoin`).
                StopReason::Rejoin { message } => {
                    tracing::warn!("{message}");
                    match server.rejoin().await {
                        Ok(generation) => {
                            tracing::warn!(generation = format_args!("{generation:08x}"), "starting as a new replica");
                            continue;
                        }
                        Err(e) => {
                            eprintln!("shoal: cannot rejoin as a new replica: {e}");
                            return ExitCode::FAILURE;
                        }
                    }
                }
            };
            return match server.stop(save).await {
                Ok(()) if fatal.is_some() => {
                    eprintln!("shoal: {}", fatal.unwrap_or_default());
                    ExitCode::FAILURE
                }
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("shoal: saving the snapshot failed: {e}");
                    ExitCode::FAILURE
                }
            };
        }
    })
}

/// Registers this node with the cluster `seed` belongs to (once; see
/// `join`), before the server starts from its directory.
fn join_first(args: &cli::ServerArgs, seed: &str) -> Result<(), String> {
    if args.cluster.initial_cluster.is_some() {
        return Err("--join and --initial-cluster exclude each other: a node bootstraps a cluster or joins one".into());
    }
    let port = args.port.unwrap_or(6379);
    let peer_port = args.cluster.peer_port.unwrap_or_else(|| port.wrapping_add(10000));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(join::join(seed, &args.dir, args.bind, port, peer_port))
}

async fn wait_for_signal() -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

/// A plain level (`warn`) applies to shoal; openraft's own messages are
/// kept to errors unless the level is `debug` or `trace` (at `warn` it logs
/// every failed vote request while a peer is down). A full directive
/// (`info,openraft=debug`) is used as given.
fn init_logging(level: &str) -> Result<(), String> {
    let directive = match level {
        "error" | "warn" | "info" => format!("{level},openraft=error"),
        other => other.to_string(),
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&directive)
        .map_err(|e| format!("invalid --log-level '{level}': {e}"))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init()
        .map_err(|e| e.to_string())
}
