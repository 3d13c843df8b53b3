//! Starting `shoal server` children on this machine: `shoal local` runs a
//! cluster of them, `shoal check` runs one to inject faults into.

use std::path::{Path, PathBuf};

use shoal_cluster::{parse_initial_cluster, Layout};
use tokio::process::{Child, Command};

use crate::cli::Fsync;

/// How to start one node of a local cluster.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    pub number: u32,
    pub port: u16,
    pub dir: PathBuf,
    /// The `--initial-cluster` list, the same for every node.
    pub initial_cluster: String,
    pub shards: u16,
    pub replicas: u16,
    pub fsync: Fsync,
    pub log_level: String,
    /// Further `shoal server` flags, passed as given.
    pub extra: Vec<String>,
}

/// What every node of a local cluster shares.
#[derive(Debug, Clone)]
pub struct LocalCluster<'a> {
    pub nodes: u32,
    /// Node 1's client port; node i listens on port + i - 1.
    pub port: u16,
    /// Node i keeps its data in dir/node-i.
    pub dir: &'a Path,
    pub shards: u16,
    pub replicas: Option<u16>,
    pub fsync: Fsync,
    pub log_level: &'a str,
}

impl LocalCluster<'_> {
    /// Every node's spec, after checking the combination is a valid layout
    /// (so a bad one fails once, not once per node).
    pub fn specs(&self) -> Result<Vec<NodeSpec>, String> {
        if self.nodes == 0 {
            return Err("--nodes must be at least 1".into());
        }
        let last = u32::from(self.port) + self.nodes - 1;
        if last > u32::from(u16::MAX) {
            return Err(format!("--port {} with --nodes {} runs past port 65535", self.port, self.nodes));
        }
        let list: Vec<String> =
            (1..=self.nodes).map(|i| format!("{i}=127.0.0.1:{}", u32::from(self.port) + i - 1)).collect();
        let list = list.join(",");
        let nodes = parse_initial_cluster(&list).map_err(|e| e.to_string())?;
        let replicas = self.replicas.unwrap_or(crate::cli::DEFAULT_REPLICAS.min(self.nodes as u16));
        Layout::new(nodes, self.shards, replicas).map_err(|e| e.to_string())?;
        Ok((1..=self.nodes)
            .map(|number| NodeSpec {
                number,
                port: self.port + (number - 1) as u16,
                dir: self.dir.join(format!("node-{number}")),
                initial_cluster: list.clone(),
                shards: self.shards,
                replicas,
                fsync: self.fsync,
                log_level: self.log_level.to_string(),
                extra: Vec::new(),
            })
            .collect())
    }
}

impl NodeSpec {
    /// Starts the node; returns the child (killed if dropped) and its
    /// command line, for the user to see or rerun.
    pub fn spawn(&self) -> Result<(Child, String), String> {
        let exe = std::env::current_exe().map_err(|e| format!("cannot find the shoal binary: {e}"))?;
        let mut command = Command::new(&exe);
        command.arg("server").args(["--id", &self.number.to_string(), "--port", &self.port.to_string()]);
        command.arg("--dir").arg(&self.dir).args(["--initial-cluster", &self.initial_cluster]);
        command.args(["--shards", &self.shards.to_string(), "--replicas", &self.replicas.to_string()]);
        let fsync = clap::ValueEnum::to_possible_value(&self.fsync).expect("no skipped variants");
        command.args(["--fsync", fsync.get_name()]);
        command.args(["--log-level", &self.log_level]).args(&self.extra).kill_on_drop(true);
        let line = format!("{} {}", exe.display(), quoted_args(&command));
        let child = command.spawn().map_err(|e| format!("cannot start node {}: {e}", self.number))?;
        Ok((child, line))
    }
}

/// Sends `signal` to a child, if it still runs.
pub fn signal(child: &Child, signal: libc::c_int) {
    if let Some(pid) = child.id() {
        // SAFETY: signalling our own child process.
        unsafe { libc::kill(pid as i32, signal) };
    }
}

fn quoted_args(command: &Command) -> String {
    command
        .as_std()
        .get_args()
        .map(|a| {
            let a = a.to_string_lossy();
            if a.contains(|c: char| c.is_whitespace() || c == '\'') {
                format!("'{}'", a.replace('\'', "'\\''"))
            } else {
                a.into_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
