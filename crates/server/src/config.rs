//! Server configuration: every limit has a name (with its unit), a default,
//! and a command-line flag in the binary. CONFIG GET reports them under
//! Redis's parameter names where Redis has one.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use std::sync::Arc;

use shoal_cluster::map::ClusterMap;
use shoal_cluster::{Layout, NodeNumber};
use shoal_proto::DecodeLimits;
pub use shoal_raft::{ReadMode, Snapshots, Timing};
pub use shoal_wal::{FsyncPolicy, WalOptions};

#[derive(Debug, Clone)]
pub struct Config {
    /// Address the RESP listener binds.
    pub listen: SocketAddr,
    /// Data directory: holds the WAL, each group's snapshot, and the
    /// directory lock.
    pub dir: PathBuf,
    pub limits: Limits,
    /// How often the expiry sweeper runs.
    pub sweep_interval: Duration,
    /// Most expired keys one sweeper tick removes.
    pub sweep_keys_per_tick: usize,
    /// How long shutdown waits for connections to finish their batch.
    pub shutdown_grace: Duration,
    /// How long a connection waits for its writes to commit before
    /// answering `-UNCERTAIN` (a shard that lost its quorum).
    pub write_timeout: Duration,
    /// How long a shard may be without a leader this node can use before
    /// its slots answer `-CLUSTERDOWN` instead of `-TRYAGAIN`.
    pub cluster_down_after: Duration,
    /// Lets a node whose data directory was wiped vote again at once
    /// instead of stopping (see `witness`): it may help elect a leader that
    /// is missing acknowledged writes.
    pub unsafe_rejoin_after_data_loss: bool,
    /// Event-loop threads serving clients, each a single-threaded runtime
    /// with its own accept loop; `None` serves clients on the caller's
    /// runtime instead.
    pub io_threads: Option<usize>,
    /// Cluster mode: `None` for a standalone server.
    pub cluster: Option<ClusterConfig>,
    pub replication: ReplicationConfig,
    /// Added to this node's wall clock: for tests of skewed clocks only
    /// (`--debug-clock-skew-ms`, hidden); zero otherwise.
    pub debug_clock_skew_ms: i64,
}

/// Raft timing and the WAL (fsync policy, segment size, queue depth).
#[derive(Debug, Clone, Copy, Default)]
pub struct ReplicationConfig {
    pub timing: Timing,
    pub read_mode: ReadMode,
    pub snapshots: Snapshots,
    pub wal: WalOptions,
}

/// This node's place in a cluster.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// The layout this node bootstrapped with (`--initial-cluster`): the
    /// groups it opens, and initializes if they never were, on its first
    /// start. `None` for a node that joined a running cluster.
    pub bootstrap: Option<Arc<Layout>>,
    /// The cluster map to start from: the one this node last saw (its data
    /// directory), the one it was given when it joined, or the first map of
    /// the bootstrap layout. The metadata group's newer maps replace it.
    pub map: Arc<ClusterMap>,
    /// This node's number in the map.
    pub me: NodeNumber,
    /// Address the peer listener binds.
    pub peer_listen: SocketAddr,
    /// How often each peer is dialled to check it is up and agrees on the
    /// cluster.
    pub peer_check_interval: Duration,
    /// How often a node checks whether to hand a shard's leadership back
    /// to its preferred leader, and the metadata leader whether to move
    /// replicas.
    pub balance_interval: Duration,
    /// Whether the metadata leader moves replicas and preferred leaders to
    /// spread them evenly over the nodes (`--balance`); draining a node
    /// being removed happens either way.
    pub balance: bool,
    /// Most replica moves under way at once, cluster-wide.
    pub max_concurrent_moves: usize,
    /// A shard holding more keys than this splits in two (0: never).
    pub shard_max_keys: u64,
    /// A shard holding more bytes than this (keys, values and a fixed cost
    /// per key) splits in two (0: never).
    pub shard_max_bytes: u64,
}

impl ClusterConfig {
    /// The cluster's id (the first layout's fingerprint): what peers check.
    pub fn cluster_id(&self) -> &str {
        &self.map.cluster_id
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub decode: DecodeLimits,
    /// Connections served at once; one more is told
    /// `-ERR max number of clients reached` and closed.
    pub max_clients: usize,
    /// Largest reply buffered for one connection. A reply that would exceed
    /// it (say KEYS * over a huge keyspace) closes that connection instead
    /// of growing its buffer without bound, like Redis's
    /// client-output-buffer-limit.
    pub max_output_bytes: usize,
    /// Pending output is flushed to the socket once it reaches this size,
    /// even in the middle of a pipelined batch.
    pub output_flush_bytes: usize,
    /// Largest encoded write (one Raft log entry: an MSET's keys and values
    /// together). A bigger one is refused before it is proposed. At most
    /// [`MAX_WRITE_BYTES`], what one WAL record and one peer frame hold.
    pub max_write_bytes: usize,
    /// Connections open at once on the peer port (Raft traffic and
    /// hellos); one more is closed at once.
    pub max_peer_connections: usize,
    /// Writes are refused (`-MISCONF`) while the data directory's disk has
    /// less free space than this, before a full disk can fail the WAL.
    pub min_free_disk_bytes: u64,
}

pub use shoal_raft::MAX_WRITE_BYTES;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            decode: DecodeLimits::default(),
            max_clients: 10_000,
            max_output_bytes: 1024 * 1024 * 1024,
            output_flush_bytes: 64 * 1024,
            max_write_bytes: MAX_WRITE_BYTES,
            max_peer_connections: 1024,
            min_free_disk_bytes: 128 << 20,
        }
    }
}

impl Config {
    /// A configuration with defaults, listening on `listen`, storing in `dir`.
    pub fn new(listen: SocketAddr, dir: PathBuf) -> Config {
        Config {
            listen,
            dir,
            limits: Limits::default(),
            sweep_interval: Duration::from_millis(100),
            sweep_keys_per_tick: 2000,
            shutdown_grace: Duration::from_secs(2),
            write_timeout: Duration::from_secs(10),
            cluster_down_after: Duration::from_secs(3),
            unsafe_rejoin_after_data_loss: false,
            cluster: None,
            io_threads: None,
            replication: ReplicationConfig::default(),
            debug_clock_skew_ms: 0,
        }
    }

    /// `(name, value)` for every parameter CONFIG GET knows. Names are
    /// Redis's where one exists, so tools that read them (redis-benchmark
    /// reads `save` and `appendonly`) understand the answers.
    pub fn parameters(&self) -> Vec<(&'static str, String)> {
        let l = &self.limits;
        vec![
            ("bind", self.listen.ip().to_string()),
            ("port", self.listen.port().to_string()),
            ("dir", self.dir.display().to_string()),
            ("maxclients", l.max_clients.to_string()),
            ("proto-max-bulk-len", l.decode.max_bulk_bytes.to_string()),
            ("max-array-len", l.decode.max_array_len.to_string()),
            ("max-inline-bytes", l.decode.max_inline_bytes.to_string()),
            ("client-query-buffer-limit", l.decode.max_request_bytes.to_string()),
            ("max-output-bytes", l.max_output_bytes.to_string()),
            ("max-write-bytes", l.max_write_bytes.to_string()),
            ("max-peer-connections", l.max_peer_connections.to_string()),
            ("min-free-disk-bytes", l.min_free_disk_bytes.to_string()),
            ("databases", "1".into()),
            ("save", String::new()),
            // Every write is in the WAL before it is answered: Redis's
            // nearest equivalent is an append-only file.
            ("appendonly", "yes".into()),
            ("appendfsync", fsync_name(self.replication.wal.fsync).into()),
            ("timeout", "0".into()),
            ("maxmemory", "0".into()),
            ("cluster-enabled", if self.cluster.is_some() { "yes" } else { "no" }.into()),
        ]
    }
}

/// The `--fsync` / CONFIG GET appendfsync spelling of a policy.
pub fn fsync_name(policy: FsyncPolicy) -> &'static str {
    match policy {
        FsyncPolicy::Always => "always",
        FsyncPolicy::EverySec => "everysec",
        FsyncPolicy::Never => "never",
    }
}
