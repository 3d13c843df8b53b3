//! `shoal local`: a whole cluster on this machine, as separate processes.
//!
//! Starts N `shoal server` children on 127.0.0.1 ports P..P+N-1, prints each
//! one's pid and exact command line, prints `ready` once every node serves
//! and every node reaches every other, and on SIGINT/SIGTERM stops them all
//! (SIGTERM, so each saves its data) and waits. A node that dies is reported
//! and not restarted: what a cluster does when a node dies is what this is
//! for.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use tokio::process::Child;
use tokio::signal::unix::{signal, SignalKind};

use crate::nodes::{self, LocalCluster};
use crate::probe;

#[derive(Debug, Args)]
pub struct LocalArgs {
    /// Number of nodes.
    #[arg(long, default_value_t = 3)]
    pub nodes: u32,
    /// Client port of node 1; node i listens on PORT+i-1 (peers on +10000).
    #[arg(long, default_value_t = 7000)]
    pub port: u16,
    /// Parent directory; node i keeps its data in DIR/node-i.
    #[arg(long, default_value = "./shoal-local")]
    pub dir: PathBuf,
    /// Shards per node.
    #[arg(long, default_value_t = 3)]
    pub shards: u16,
    /// Replicas per shard [default: 3, or the node count if smaller].
    #[arg(long)]
    pub replicas: Option<u16>,
    /// WAL fsync policy passed to every node (always, everysec, never).
    #[arg(long, value_enum, default_value = "always")]
    pub fsync: crate::cli::Fsync,
    /// Log level passed to every node.
    #[arg(long, default_value = "warn")]
    pub log_level: String,
    /// How long to wait for the cluster to come up, in milliseconds.
    #[arg(long, default_value_t = 30_000)]
    pub ready_timeout_ms: u64,
}

struct Node {
    number: u32,
    port: u16,
    child: Child,
    exited: bool,
}

pub fn run(args: LocalArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return fail(&format!("cannot start the runtime: {e}")),
    };
    runtime.block_on(async move {
        match supervise(args).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(&e),
        }
    })
}

fn fail(message: &str) -> ExitCode {
    eprintln!("shoal: {message}");
    ExitCode::FAILURE
}

async fn supervise(args: LocalArgs) -> Result<(), String> {
    let specs = LocalCluster {
        nodes: args.nodes,
        port: args.port,
        dir: &args.dir,
        shards: args.shards,
        replicas: args.replicas,
        fsync: args.fsync,
        log_level: &args.log_level,
    }
    .specs()?;
    let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    let mut nodes = Vec::new();
    for spec in specs {
        let (child, line) = spec.spawn()?;
        println!("node {} pid {}: {line}", spec.number, child.id().unwrap_or(0));
        nodes.push(Node { number: spec.number, port: spec.port, child, exited: false });
    }
    let ports: Vec<u16> = nodes.iter().map(|n| n.port).collect();
    let deadline = Instant::now() + Duration::from_millis(args.ready_timeout_ms);
    let mut ready = false;
    loop {
        if !ready && probe::cluster_ready(&ports).await {
            println!("ready");
            ready = true;
        }
        if !ready && Instant::now() > deadline {
            stop_all(&mut nodes).await;
            return Err(format!("the cluster was not ready after {} ms", args.ready_timeout_ms));
        }
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = tokio::time::sleep(Duration::from_millis(if ready { 500 } else { 50 })) => {}
        }
        for node in nodes.iter_mut().filter(|n| !n.exited) {
            if let Ok(Some(status)) = node.child.try_wait() {
                node.exited = true;
                println!("node {} exited ({status}); not restarting it", node.number);
            }
        }
        if nodes.iter().all(|n| n.exited) {
            return Err("every node has exited".into());
        }
    }
    stop_all(&mut nodes).await;
    Ok(())
}

/// SIGTERM to every live node, then wait; SIGKILL whoever is still up after
/// the grace period.
async fn stop_all(nodes: &mut [Node]) {
    for node in nodes.iter().filter(|n| !n.exited) {
        nodes::signal(&node.child, libc::SIGTERM);
    }
    for node in nodes.iter_mut().filter(|n| !n.exited) {
        match tokio::time::timeout(Duration::from_secs(10), node.child.wait()).await {
            Ok(Ok(status)) => println!("node {} stopped ({status})", node.number),
            _ => {
                let _ = node.child.kill().await;
                println!("node {} killed after 10 s", node.number);
            }
        }
        node.exited = true;
    }
}
