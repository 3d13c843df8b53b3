//! shoal's server: accepts RESP connections, executes commands against the
//! engine, and keeps the data directory.
//!
//! [`Server::start`] binds and loads synchronously, so a caller learns about
//! a port in use or an unusable directory before anything runs; the returned
//! [`Server`] owns the background tasks, and [`Server::stop`] stops them
//! and saves the snapshot.
//!
//! # Layout
//!
//! - [`config`]: `Config` and `Limits`, every tunable with its unit.
//! - `listener`: accept loop, max clients, graceful drain.
//! - `connection`: per-client read → decode → execute → one write loop.
//! - `exec`: one file per command group, turning `Command`s into `Frame`s;
//!   `exec/introspect.rs` answers COMMAND from the command table.
//! - `info`: INFO sections.
//! - `persist`: the data directory lock and atomic snapshot files.
//! - `sweeper`: bounded background reclamation of expired keys.
//! - `state`: `Shared` (per server) and `Session` (per connection).
//! - `stats`, `clock`: counters and the wall clock.

mod clock;
pub mod config;
mod connection;
mod exec;
mod info;
mod listener;
mod peer;
pub mod persist;
mod route;
mod state;
mod stats;
mod sweeper;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::{ClusterConfig, Config, Limits};
use persist::{DataDir, DataDirError};
use state::Shared;
pub use state::StopReason;

/// The Redis version shoal reports (HELLO, INFO): the command set and reply
/// formats it implements are those of this version.
pub const REDIS_VERSION: &str = "7.2.0";

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    DataDir(#[from] DataDirError),
    #[error("cannot read snapshot in {0}: {1}")]
    Snapshot(std::path::PathBuf, String),
    #[error("cannot listen on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
    #[error("cannot listen for peers on {0}: {1}")]
    PeerListen(SocketAddr, std::io::Error),
}

/// A running server. Dropping it without `stop` stops nothing cleanly:
/// the tasks die with the runtime and the snapshot is not saved.
pub struct Server {
    shared: Arc<Shared>,
    data: DataDir,
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Server {
    /// Locks the data directory, loads its snapshot, binds, and starts
    /// serving. Must be called inside a tokio runtime.
    pub async fn start(config: Config) -> Result<Server, StartError> {
        let data = DataDir::open(&config.dir)?;
        let shared = Arc::new(Shared::new(config.clone()));
        load_snapshot(&data, &shared)?;
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
        let (stop, stopped) = watch::channel(false);
        let mut tasks = listener::spawn_accept_loops(listener, &shared, &stopped, config.io_threads)
            .map_err(|e| StartError::Listen(config.listen, e))?;
        tasks.push(tokio::spawn(sweeper::run(Arc::clone(&shared), stopped.clone())));
        if let Some(peers) = peer_listener {
            tasks.push(tokio::spawn(peer::listen(peers, Arc::clone(&shared), stopped.clone())));
            tasks.push(tokio::spawn(peer::check_peers(Arc::clone(&shared), stopped)));
        }
        tracing::info!(addr = %local_addr, dir = %data.path().display(), keys = shared.db.len(), "shoal server ready");
        Ok(Server { shared, data, local_addr, stop, tasks })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Resolves when the server itself asks to stop: a client sent
    /// SHUTDOWN, or the node found it cannot run (see `StopReason`).
    pub async fn stop_requested(&self) -> StopReason {
        self.shared.shutdown.wait().await
    }

    /// Stops accepting, lets connections finish their current batch, then
    /// writes the snapshot unless `save` is false (SHUTDOWN NOSAVE).
    pub async fn stop(self, save: bool) -> std::io::Result<()> {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        if !save {
            tracing::info!("not saving (SHUTDOWN NOSAVE)");
            return Ok(());
        }
        let snapshot = self.shared.db.dump(clock::now_ms());
        self.data.save_snapshot(&snapshot)?;
        tracing::info!(keys = self.shared.db.len(), bytes = snapshot.len(), "snapshot saved");
        Ok(())
    }
}

fn load_snapshot(data: &DataDir, shared: &Shared) -> Result<(), StartError> {
    let err = |e: String| StartError::Snapshot(data.path().to_path_buf(), e);
    let Some(bytes) = data.load_snapshot().map_err(|e| err(e.to_string()))? else {
        return Ok(());
    };
    let entries = shared.db.restore(&bytes, clock::now_ms()).map_err(|e| err(e.to_string()))?;
    tracing::info!(entries, "snapshot loaded");
    Ok(())
}
