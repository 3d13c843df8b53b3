//! Command-line flags. Names carry units; every server limit is here.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use shoal_cluster::map::{ClusterMap, NodeState};
use shoal_cluster::{parse_initial_cluster, Layout};
use shoal_server::{ClusterConfig, Config, FsyncPolicy, ReadMode, ReplicationConfig, Timing};

#[derive(Debug, Parser)]
#[command(name = "shoal", version, about = "A sharded, replicated key-value store that speaks the Redis protocol")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Commands,
}

#[derive(Debug, Subcommand)]
pub enum Commands {
    /// Run one shoal node: standalone (every slot) or, with
    /// --initial-cluster, one node of a cluster.
    Server(ServerArgs),
    /// Run a cluster of N nodes on this machine, as child processes.
    Local(crate::local::LocalArgs),
    /// Run concurrent clients against a cluster (one it starts and injects
    /// faults into, or --cluster) and check their history: registers
    /// linearizable, no acknowledged write lost.
    Check(crate::check::CheckArgs),
    #[command(flatten)]
    Tool(crate::tools::Tool),
}

#[derive(Debug, Args)]
pub struct ServerArgs {
    /// TCP port for RESP clients [default: 6379, or this node's port in
    /// --initial-cluster].
    #[arg(long)]
    pub port: Option<u16>,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Data directory (created if missing; locked while the server runs).
    #[arg(long, default_value = "./shoal-data")]
    pub dir: PathBuf,
    /// Event-loop threads serving clients, each with its own connections
    /// [default: one per CPU].
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: Option<u16>,
    /// Log filter: error, warn, info, debug, trace, or a tracing directive.
    #[arg(long, default_value = "info")]
    pub log_level: String,
    /// Most clients connected at once.
    #[arg(long, default_value_t = 10_000)]
    pub max_clients: usize,
    /// Largest bulk string a client may send (proto-max-bulk-len).
    #[arg(long, default_value_t = 512 * 1024 * 1024)]
    pub max_bulk_bytes: usize,
    /// Most elements in one request.
    #[arg(long, default_value_t = 1024 * 1024)]
    pub max_array_len: usize,
    /// Most bytes of arguments in one request (client-query-buffer-limit).
    #[arg(long, default_value_t = 1024 * 1024 * 1024)]
    pub max_request_bytes: usize,
    /// Longest inline command.
    #[arg(long, default_value_t = 64 * 1024)]
    pub max_inline_bytes: usize,
    /// Largest single reply buffered for a client before it is disconnected.
    #[arg(long, default_value_t = 1024 * 1024 * 1024)]
    pub max_output_bytes: usize,
    /// Largest write, encoded (one replicated log entry: all of an MSET's
    /// keys and values); a bigger one is refused before it is proposed.
    #[arg(long, default_value_t = shoal_server::config::MAX_WRITE_BYTES)]
    pub max_write_bytes: usize,
    /// Most connections open at once on the peer port; one more is closed.
    #[arg(long, default_value_t = 1024)]
    pub max_peer_connections: usize,
    /// Writes are refused with -MISCONF while the data directory's disk has
    /// less free space than this (reads are served), before a full disk
    /// can fail the write-ahead log.
    #[arg(long, default_value_t = 128 << 20)]
    pub min_free_disk_bytes: u64,
    /// How often leaders sweep expired keys (proposing their deletion);
    /// expired keys are hidden from reads in between.
    #[arg(long, default_value_t = 100)]
    pub sweep_interval_ms: u64,
    /// Tests only: run this node's wall clock this many milliseconds off.
    #[arg(long, default_value_t = 0, allow_hyphen_values = true, hide = true)]
    pub debug_clock_skew_ms: i64,
    /// Turns transparent huge pages off for this process (Redis's
    /// `disable-thp`): an empty node is then ~25 MB smaller and a small
    /// keyspace's resident set closer to its data, at ~10% more CPU per
    /// write (docs/memory.md).
    #[arg(long, value_enum, default_value = "no")]
    pub disable_thp: YesNo,
    #[command(flatten)]
    pub replication: ReplicationArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// The WAL and Raft timing (docs/replication.md says what each fsync
/// policy risks).
#[derive(Debug, Args)]
pub struct ReplicationArgs {
    /// When the WAL is fsynced: always (before a write is acknowledged),
    /// everysec (at most a second later), never (left to the OS).
    #[arg(long, value_enum, default_value = "always")]
    pub fsync: Fsync,
    /// How a shard leader makes reads linearizable: lease (serve locally
    /// while a quorum-acknowledged lease holds; assumes clock rates within
    /// 50%) or index (a quorum round per batch of reads, no clock assumption).
    #[arg(long, value_enum, default_value = "lease")]
    pub read_mode: ReadModeArg,
    /// How often a Raft leader heartbeats its followers, in milliseconds.
    #[arg(long, default_value_t = 50)]
    pub heartbeat_interval_ms: u64,
    /// A follower that hears no leader for a random time between this and
    /// twice this many milliseconds starts an election. A failover takes
    /// about three times this (docs/failures.md).
    #[arg(long, default_value_t = 200)]
    pub election_timeout_ms: u64,
    /// A shard group with no traffic for this many milliseconds goes quiet:
    /// no heartbeats, no election timer, until a request or a node failure
    /// wakes it (0: never).
    #[arg(long, default_value_t = 2000)]
    pub hibernate_after_ms: u64,
    /// A shard group snapshots its keyspace after this many writes (and
    /// the WAL behind the snapshot can then be deleted).
    #[arg(long, default_value_t = 5000)]
    pub snapshot_every_entries: u64,
    /// Log entries kept behind a snapshot for followers slightly behind;
    /// one further behind is sent the snapshot.
    #[arg(long, default_value_t = 1000)]
    pub snapshot_keep_entries: u64,
    /// A write not committed within this many milliseconds (its shard lost
    /// its quorum) is answered -UNCERTAIN.
    #[arg(long, default_value_t = 10_000)]
    pub write_timeout_ms: u64,
    /// A shard without a usable leader answers -TRYAGAIN for this many
    /// milliseconds, then -CLUSTERDOWN (both: not applied, retry).
    #[arg(long, default_value_t = 3000)]
    pub cluster_down_after_ms: u64,
    /// Appends queued for the WAL writer before proposals wait.
    #[arg(long, default_value_t = 4096)]
    pub wal_queue_depth: usize,
    /// A WAL segment is rotated once it holds this many bytes.
    #[arg(long, default_value_t = 64 << 20)]
    pub wal_segment_bytes: u64,
    /// WAL segments kept before the shard groups that keep the oldest one
    /// (too idle to reach --snapshot-every-entries) are snapshotted and
    /// their logs purged, so the WAL's disk use stays bounded.
    #[arg(long, default_value_t = 4)]
    pub wal_max_segments: usize,
    /// Bytes of log written since its last snapshot that a shard group
    /// holds in memory past which it snapshots and purges before
    /// --snapshot-every-entries (checked every second).
    #[arg(long, default_value_t = 8 << 20, value_parser = clap::value_parser!(u64).range(1..))]
    pub snapshot_log_bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum YesNo {
    Yes,
    No,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReadModeArg {
    Lease,
    Index,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Fsync {
    Always,
    Everysec,
    Never,
}

/// Replicas per shard when --replicas is not given (fewer with fewer nodes).
pub const DEFAULT_REPLICAS: u16 = 3;

impl ReplicationArgs {
    fn to_config(&self) -> Result<ReplicationConfig, String> {
        if self.election_timeout_ms <= self.heartbeat_interval_ms {
            return Err(format!(
                "--election-timeout-ms ({}) must be more than --heartbeat-interval-ms ({})",
                self.election_timeout_ms, self.heartbeat_interval_ms
            ));
        }
        if self.wal_queue_depth == 0 || self.wal_segment_bytes < 4096 {
            return Err("--wal-queue-depth must be at least 1 and --wal-segment-bytes at least 4096".into());
        }
        let mut config = ReplicationConfig::default();
        config.wal.fsync = match self.fsync {
            Fsync::Always => FsyncPolicy::Always,
            Fsync::Everysec => FsyncPolicy::EverySec,
            Fsync::Never => FsyncPolicy::Never,
        };
        if self.snapshot_every_entries == 0 {
            return Err("--snapshot-every-entries must be at least 1".into());
        }
        config.snapshots.every_entries = self.snapshot_every_entries;
        config.snapshots.keep_entries = self.snapshot_keep_entries;
        if self.wal_max_segments < 2 {
            return Err("--wal-max-segments must be at least 2 (the segment being written and one closed)".into());
        }
        config.snapshots.wal_max_segments = self.wal_max_segments;
        config.snapshots.max_log_bytes = self.snapshot_log_bytes;
        config.read_mode = match self.read_mode {
            ReadModeArg::Lease => ReadMode::Lease,
            ReadModeArg::Index => ReadMode::ReadIndex,
        };
        config.wal.queue_depth = self.wal_queue_depth;
        config.wal.segment_bytes = self.wal_segment_bytes;
        config.timing = Timing {
            heartbeat_interval_ms: self.heartbeat_interval_ms,
            election_timeout_min_ms: self.election_timeout_ms,
            election_timeout_max_ms: self.election_timeout_ms * 2,
            hibernate_after_ms: self.hibernate_after_ms,
        };
        Ok(config)
    }
}

/// Cluster mode: present when --initial-cluster is given.
#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// This node's number in --initial-cluster.
    #[arg(long)]
    pub id: Option<u32>,
    /// Every node of the cluster, the same on every node:
    /// 1=HOST:PORT[@PEERPORT],2=HOST:PORT,... (PEERPORT defaults to PORT+10000).
    #[arg(long)]
    pub initial_cluster: Option<String>,
    /// Shards per node.
    #[arg(long, default_value_t = 3)]
    pub shards: u16,
    /// Replicas per shard, each a voter of the shard's Raft group [default:
    /// 3, or the node count if smaller].
    #[arg(long)]
    pub replicas: Option<u16>,
    /// Port for peer traffic [default: this node's peer port in --initial-cluster].
    #[arg(long)]
    pub peer_port: Option<u16>,
    /// How often peers are checked, in milliseconds.
    #[arg(long, default_value_t = 500)]
    pub peer_check_interval_ms: u64,
    /// How often a node checks whether to hand leadership of a shard back to
    /// its preferred primary, and whether a replica that rejoined after
    /// losing its data waits to be swapped in, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    pub balance_interval_ms: u64,
    /// Join a running cluster through any of its nodes (HOST:PORT, a client
    /// port): this node is given a number, kept in --dir, and the cluster's
    /// balancer moves replicas to it. Ignored once the node has joined (a
    /// restart resumes it).
    #[arg(long, value_name = "HOST:PORT")]
    pub join: Option<String>,
    /// Whether the metadata leader spreads replicas and shard leaders evenly
    /// over the nodes (after a join, say); a node being removed is drained
    /// either way.
    #[arg(long, value_enum, default_value = "on")]
    pub balance: OnOff,
    /// Most replica moves under way at once, cluster-wide.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..))]
    pub max_concurrent_moves: u16,
    /// A shard holding more keys than this splits in two at the slot that
    /// halves its keys (0: never automatically).
    #[arg(long, default_value_t = 2_000_000)]
    pub shard_max_keys: u64,
    /// A shard holding more bytes than this (keys, values and about 96
    /// bytes per key) splits in two (0: never automatically).
    #[arg(long, default_value_t = 256 << 20)]
    pub shard_max_bytes: u64,
    /// Let a node whose data directory was wiped vote again at once, as the
    /// replica it was, instead of waiting for its peers and rejoining as a
    /// new replica: it may help elect a leader missing acknowledged writes
    /// (docs/failures.md). For when no majority of peers can be reached.
    #[arg(long)]
    pub unsafe_rejoin_after_data_loss: bool,
}

impl ClusterArgs {
    /// The cluster configuration, or `None` for a standalone server. Also
    /// returns this node's client port. A node is in a cluster when given
    /// --initial-cluster (bootstrap, or a restart with the same flags), or
    /// when its data directory says it joined one (`shoal server --dir D`
    /// restarts any cluster node).
    fn to_config(&self, bind: IpAddr, port: Option<u16>, dir: &Path) -> Result<Option<(ClusterConfig, u16)>, String> {
        let saved_map = shoal_server::meta::load_map(dir)?;
        let saved_node = shoal_server::meta::load_node_id(dir)?;
        let (bootstrap, map, me) = match (&self.initial_cluster, saved_map, saved_node) {
            (Some(text), saved, _) => {
                let nodes = parse_initial_cluster(text).map_err(|e| e.to_string())?;
                let id = self.id.ok_or("--initial-cluster needs --id to say which node this is")?;
                let replicas = self.replicas.unwrap_or(DEFAULT_REPLICAS.min(nodes.len() as u16));
                let layout = Layout::new(nodes, self.shards, replicas).map_err(|e| e.to_string())?;
                layout.node(id).map_err(|e| e.to_string())?;
                let map = match saved {
                    Some(map) if map.cluster_id != layout.fingerprint() => {
                        return Err(format!(
                            "{} holds a node of cluster {}, not of the one --initial-cluster, --shards and --replicas describe ({})",
                            dir.display(),
                            map.cluster_id,
                            layout.fingerprint()
                        ))
                    }
                    Some(map) => map,
                    None => ClusterMap::from_layout(&layout),
                };
                (Some(Arc::new(layout)), map, id)
            }
            (None, Some(map), Some(node)) => (None, map, node),
            (None, _, _) => {
                if self.id.is_some() || self.peer_port.is_some() {
                    return Err("--id and --peer-port need --initial-cluster or --join".into());
                }
                return Ok(None);
            }
        };
        let info = map.nodes.get(&me).ok_or(format!("node {me} is not in the cluster map"))?;
        if info.state == NodeState::Removed {
            return Err(format!("node {me} was removed from the cluster; start a new node with --join instead"));
        }
        if let Some(port) = port.filter(|&p| p != info.port) {
            return Err(format!("--port {port} differs from node {me}'s port {} in the cluster", info.port));
        }
        if let Some(peer) = self.peer_port.filter(|&p| p != info.peer_port) {
            return Err(format!(
                "--peer-port {peer} differs from node {me}'s peer port {} in the cluster (write it in --initial-cluster as {}:{}@{peer})",
                info.peer_port, info.host, info.port
            ));
        }
        let config = ClusterConfig {
            peer_listen: SocketAddr::new(bind, info.peer_port),
            bootstrap,
            me,
            peer_check_interval: Duration::from_millis(self.peer_check_interval_ms.max(1)),
            balance_interval: Duration::from_millis(self.balance_interval_ms.max(1)),
            balance: self.balance == OnOff::On,
            max_concurrent_moves: usize::from(self.max_concurrent_moves),
            shard_max_keys: self.shard_max_keys,
            shard_max_bytes: self.shard_max_bytes,
            map: Arc::new(map.clone()),
        };
        Ok(Some((config, info.port)))
    }
}

impl ServerArgs {
    pub fn to_config(&self) -> Result<Config, String> {
        if self.max_clients == 0 {
            return Err("--max-clients must be at least 1".into());
        }
        // A value travels in one replication message (and one WAL record).
        const MAX_VALUE_BYTES: usize = 768 << 20;
        if self.max_bulk_bytes > MAX_VALUE_BYTES {
            return Err(format!(
                "--max-bulk-bytes must be at most {MAX_VALUE_BYTES}: a value must fit one replication message"
            ));
        }
        if self.max_write_bytes > shoal_server::config::MAX_WRITE_BYTES {
            return Err(format!(
                "--max-write-bytes must be at most {}: a write must fit one WAL record and one peer frame",
                shoal_server::config::MAX_WRITE_BYTES
            ));
        }
        if self.max_peer_connections == 0 {
            return Err("--max-peer-connections must be at least 1".into());
        }
        if self.max_array_len == 0 || self.max_inline_bytes == 0 {
            return Err("--max-array-len and --max-inline-bytes must be at least 1".into());
        }
        let cluster = self.cluster.to_config(self.bind, self.port, &self.dir)?;
        let port = cluster.as_ref().map_or(self.port.unwrap_or(6379), |(_, port)| *port);
        let mut config = Config::new(SocketAddr::new(self.bind, port), self.dir.clone());
        config.cluster = cluster.map(|(c, _)| c);
        config.replication = self.replication.to_config()?;
        config.write_timeout = Duration::from_millis(self.replication.write_timeout_ms.max(1));
        config.cluster_down_after = Duration::from_millis(self.replication.cluster_down_after_ms);
        config.unsafe_rejoin_after_data_loss = self.cluster.unsafe_rejoin_after_data_loss;
        config.limits.max_clients = self.max_clients;
        config.limits.decode.max_bulk_bytes = self.max_bulk_bytes;
        config.limits.decode.max_array_len = self.max_array_len;
        config.limits.decode.max_inline_bytes = self.max_inline_bytes;
        config.limits.decode.max_request_bytes = self.max_request_bytes;
        config.limits.max_output_bytes = self.max_output_bytes;
        config.limits.max_write_bytes = self.max_write_bytes;
        config.limits.max_peer_connections = self.max_peer_connections;
        config.limits.min_free_disk_bytes = self.min_free_disk_bytes;
        config.sweep_interval = Duration::from_millis(self.sweep_interval_ms.max(1));
        config.debug_clock_skew_ms = self.debug_clock_skew_ms;
        Ok(config)
    }
}

/// Help and version go to stdout with success; any other parse error is
/// reduced to clap's one-line summary on stderr.
pub fn report_usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
        return if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        };
    }
    let rendered = e.render().to_string();
    let first = rendered.lines().next().unwrap_or("invalid arguments");
    eprintln!("shoal: {}", first.trim_start_matches("error: "));
    ExitCode::from(2)
}
