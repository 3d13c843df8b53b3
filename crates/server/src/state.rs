//! What every connection shares (`Shared`) and what each one owns
//! (`Session`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;
use shoal_engine::Db;
use shoal_proto::Protocol;

use crate::config::Config;
use crate::stats::Stats;

/// Server-wide state, behind one `Arc`.
pub struct Shared {
    pub db: Db,
    pub config: Config,
    pub stats: Stats,
    pub started: Instant,
    next_client_id: AtomicU64,
    /// SHUTDOWN asks the process to stop through this.
    pub shutdown: ShutdownRequest,
}

/// A SHUTDOWN command's request to stop the server, and whether to save.
#[derive(Debug, Default)]
pub struct ShutdownRequest {
    requested: tokio::sync::Notify,
    nosave: std::sync::atomic::AtomicBool,
}

impl ShutdownRequest {
    pub fn request(&self, save: bool) {
        self.nosave.store(!save, Ordering::SeqCst);
        self.requested.notify_one();
    }

    /// Resolves once SHUTDOWN was received; returns whether to save.
    pub async fn wait(&self) -> bool {
        self.requested.notified().await;
        !self.nosave.load(Ordering::SeqCst)
    }
}

impl Shared {
    pub fn new(config: Config) -> Shared {
        Shared {
            db: Db::new(),
            config,
            stats: Stats::default(),
            started: Instant::now(),
            next_client_id: AtomicU64::new(1),
            shutdown: ShutdownRequest::default(),
        }
    }

    pub fn next_client_id(&self) -> u64 {
        self.next_client_id.fetch_add(1, Ordering::Relaxed)
    }
}

/// One client connection's state.
#[derive(Debug)]
pub struct Session {
    pub id: u64,
    pub name: Option<Bytes>,
    pub protocol: Protocol,
    /// Set by QUIT and SHUTDOWN.
    pub closing: Closing,
    /// GET hits and misses since the last flush into `Stats`: counted here
    /// and added once per batch so connections on different cores do not
    /// bounce a shared cache line on every GET.
    pub hits: u64,
    pub misses: u64,
}

impl Session {
    pub fn new(id: u64) -> Session {
        Session {
            id,
            name: None,
            protocol: Protocol::Resp2,
            closing: Closing::No,
            hits: 0,
            misses: 0,
        }
    }
}

/// Whether the connection ends after the current command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closing {
    No,
    /// QUIT: send the reply, then close.
    AfterReply,
    /// SHUTDOWN: close without a reply, as Redis does (clients treat the
    /// closed connection as success).
    WithoutReply,
}
