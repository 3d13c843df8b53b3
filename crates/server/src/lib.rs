//! shoal's server: accepts RESP connections, routes each command to the
//! shard's Raft group, and answers reads from, and writes through, that
//! group.
//!
//! [`Server::start`] locks the data directory, recovers every group from
//! the WAL and snapshots, and binds before anything runs, so a caller learns
//! about a port in use or an unusable directory at once; the returned
//! [`Server`] owns the background tasks, and [`Server::stop`] stops them
//! and the Raft groups.
//!
//! # Layout
//!
//! - [`config`]: `Config` and `Limits`, every tunable with its unit.
//! - `listener`: accept loop, max clients, graceful drain.
//! - `connection`: per-client read → decode → execute → one write loop;
//!   writes wait for their Raft outcome in an ordered queue.
//! - `route`: which group serves a command, or the redirect.
//! - `exec`: one file per command group, turning `Command`s into `Frame`s
//!   or writes to replicate; `exec/introspect.rs` answers COMMAND from the
//!   command table, `exec/write.rs` turns write results into replies.
//! - `shards`: the node's Raft groups and their keyspaces.
//! - `info`: INFO sections.
//! - `persist`: the data directory lock.
//! - `peer`: the peer port (layout hellos, and Raft traffic handed over).
//! - `balance`: hands leadership back to a shard's preferred leader.
//! - `splits`: a shard's slots split into a new shard by one log entry.
//! - `merges`: two adjacent shards on the same nodes become one.
//! - `quiet`: idle groups stop heartbeating (hibernation), checked here.
//! - `meta`: the metadata group and the cluster map every node follows.
//! - `moves`: shard leaders carry out the map's replica moves; the
//!   metadata leader plans them (balancing, draining).
//! - `relay`: one RESP request to another node (relayed admin commands).
//! - `sweeper`: leaders propose the deletion of expired keys, bounded.
//! - `periodic`: the tick-until-stopped loop every background task runs.
//! - `health`: fail-stop when the WAL or a Raft group fails.
//! - `compact`: bounds the WAL's disk use (idle groups snapshot and purge).
//! - `witness`: the data-loss guard (a wiped node must not vote as before).
//! - `rejoin`: a node that lost its data comes back as a new replica;
//!   leaders swap such replicas in for their old identities.
//! - `state`: `Shared` (per server) and `Session` (per connection).
//! - `stats`, `clock`: counters and the wall clock.

mod balance;
mod blocking;
mod clock;
mod compact;
pub mod config;
mod connection;
mod exec;
mod health;
mod info;
mod listener;
mod merges;
pub mod meta;
mod moves;
mod peer;
mod periodic;
pub mod persist;
mod quiet;
mod rejoin;
pub mod relay;
mod route;
mod shards;
mod splits;
mod state;
mod stats;
mod sweeper;
mod witness;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::{ClusterConfig, Config, FsyncPolicy, Limits, ReadMode, ReplicationConfig, Snapshots, Timing};
use persist::{DataDir, DataDirError};
use shards::Shards;
use state::Shared;
pub use state::StopReason;

/// The Redis version shoal reports (HELLO, INFO): the command set and reply
/// formats it implements are those of this version.
pub const REDIS_VERSION: &str = "7.2.0";

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    DataDir(#[from] DataDirError),
    #[error("cannot recover {0}: {1}")]
    Recover(std::path::PathBuf, String),
    #[error("cannot listen on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
    #[error("cannot listen for peers on {0}: {1}")]
    PeerListen(SocketAddr, std::io::Error),
}

/// How long a standalone server waits at start for its one group to elect
/// itself (immediate in practice: it is the only voter).
const STANDALONE_LEADER_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// A running server. Dropping it without `stop` stops nothing cleanly: the
/// tasks die with the runtime (what was acknowledged is in the WAL anyway).
pub struct Server {
    shared: Arc<Shared>,
    _data: DataDir,
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Server {
    /// Locks the data directory, recovers the node's groups, binds, and
    /// starts serving. Must be called inside a tokio runtime.
    pub async fn start(config: Config) -> Result<Server, StartError> {
        let data = DataDir::open(&config.dir)?;
        let listener = TcpListener::bind(config.listen).await.map_err(|e| StartError::Listen(config.listen, e))?;
        let local_addr = listener.local_addr().map_err(|e| StartError::Listen(config.listen, e))?;
        // Bind everything before spawning anything, so a failed start leaves
        // no task behind.
        let peer_listener = match &config.cluster {
            Some(cluster) => Some(
                TcpListener::bind(cluster.peer_listen)
                    .await
                    .map_err(|e| StartError::PeerListen(cluster.peer_listen, e))?,
            ),
            None => None,
        };
        let recover = |e: String| StartError::Recover(data.path().to_path_buf(), e);
        if let Some(cluster) = &config.cluster {
            // What a restart with only --dir needs: which node this is and
            // the map to start from.
            if meta::load_node_id(data.path()).map_err(recover)?.is_none() {
                meta::save_node_id(data.path(), cluster.me).map_err(recover)?;
            }
            if meta::load_map(data.path()).map_err(recover)?.is_none() {
                meta::save_map(data.path(), &cluster.map).map_err(recover)?;
            }
        }
        let shards = Shards::open(&config).await.map_err(recover)?;
        if config.cluster.is_none() {
            shards.wait_for_leaders(STANDALONE_LEADER_WAIT).await.map_err(recover)?;
        }
        let witness = witness::Witness::open(data.path(), shards.replicas().opened_fresh()).map_err(recover)?;
        if shards.replicas().in_quarantine() {
            // Every first start passes here: not worth a warning.
            tracing::info!(
                "the data directory was empty: not voting until enough peers confirm this node never held data before"
            );
        } else if shards.replicas().generation() != 0 && shards.replicas().opened_fresh() {
            tracing::info!(
                raft_id = %shoal_raft::ShowId(shards.replicas().me()),
                "a new replica after data loss: waiting for each group's leader to add it"
            );
        } else if shards.replicas().opened_fresh() && config.unsafe_rejoin_after_data_loss {
            tracing::warn!("--unsafe-rejoin-after-data-loss: voting at once although this node may have lost data");
        }
        let shared = Arc::new(Shared::new(config.clone(), shards, witness));
        // Before the first client: a nearly full disk refuses writes from
        // the start, not from the first health tick.
        health::check_disk(&shared);
        let (stop, stopped) = watch::channel(false);
        let mut tasks = listener::spawn_accept_loops(listener, &shared, &stopped, config.io_threads)
            .map_err(|e| StartError::Listen(config.listen, e))?;
        tasks.push(tokio::spawn(sweeper::run(Arc::clone(&shared), stopped.clone())));
        tasks.push(tokio::spawn(health::run(Arc::clone(&shared), stopped.clone())));
        tasks.push(tokio::spawn(compact::run(Arc::clone(&shared), stopped.clone())));
        if let Some(peers) = peer_listener {
            tasks.push(tokio::spawn(peer::listen(peers, Arc::clone(&shared), stopped.clone())));
            tasks.push(tokio::spawn(peer::check_peers(Arc::clone(&shared), stopped.clone())));
            tasks.push(tokio::spawn(rejoin::repair(Arc::clone(&shared), stopped.clone())));
            tasks.push(tokio::spawn(meta::follow(Arc::clone(&shared), stopped.clone())));
            tasks.push(tokio::spawn(moves::run(Arc::clone(&shared), stopped.clone())));
            tasks.push(tokio::spawn(splits::run(Arc::clone(&shared), stopped.clone())));
            tasks.push(tokio::spawn(splits::open_births(Arc::clone(&shared), stopped.clone())));
            tasks.push(tokio::spawn(merges::run(Arc::clone(&shared), stopped.clone())));
            tasks.push(tokio::spawn(quiet::run(Arc::clone(&shared), stopped.clone())));
            tasks.push(tokio::spawn(balance::run(Arc::clone(&shared), stopped)));
        }
        let keys: usize = shared.shards.held().into_iter().filter_map(|g| shared.shards.db(g)).map(|db| db.len()).sum();
        tracing::info!(addr = %local_addr, dir = %data.path().display(), keys, "shoal server ready");
        Ok(Server { shared, _data: data, local_addr, stop, tasks })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Resolves when the server itself asks to stop: a client sent
    /// SHUTDOWN, or the node found it cannot run (see `StopReason`).
    pub async fn stop_requested(&self) -> StopReason {
        self.shared.shutdown.wait().await
    }

    /// After `StopReason::Rejoin`: stops, then prepares the data directory
    /// for a start as a new replica (see `rejoin`); the caller starts the
    /// server again with the same config. Returns the new generation.
    pub async fn rejoin(self) -> Result<u32, String> {
        // Only a node that never left quarantine holds nothing anyone
        // relies on: its log may be thrown away.
        if !self.shared.shards.replicas().in_quarantine() {
            return Err("asked to rejoin as a new replica outside quarantine".into());
        }
        let dir = self.shared.config.dir.clone();
        self.stop(false).await.map_err(|e| e.to_string())?;
        rejoin::start_afresh(&dir)
    }

    /// Stops accepting, lets connections finish their current batch, then
    /// stops the Raft groups. Every acknowledged write is already in the
    /// WAL, so there is nothing to save; `save` (false for SHUTDOWN NOSAVE)
    /// only shows in the log, as NOSAVE does not discard Redis's AOF either.
    pub async fn stop(self, save: bool) -> std::io::Result<()> {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        #[cfg(feature = "raft-stats")]
        for group in self.shared.shards.held() {
            if self.shared.shards.is_leader(group) {
                if let Some(stats) = self.shared.shards.replicas().runtime_stats(group).await {
                    eprintln!("group {group} runtime stats:\n{stats}");
                }
            }
        }
        self.shared.shards.shutdown().await;
        tracing::info!(save, "stopped; every acknowledged write is in the WAL");
        Ok(())
    }
}
