//! What every connection shares (`Shared`) and what each one owns
//! (`Session`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;
use shoal_proto::{Frame, Protocol};

use crate::config::Config;
use crate::peer::Peers;
use crate::shards::Shards;
use crate::stats::Stats;
use crate::witness::Witness;

/// Server-wide state, behind one `Arc`.
pub struct Shared {
    pub shards: Shards,
    pub peers: Peers,
    pub config: Config,
    pub stats: Stats,
    /// Clients waiting in blocking pops here.
    pub blocked: crate::blocking::Registry,
    pub started: Instant,
    next_client_id: AtomicU64,
    /// SHUTDOWN asks the process to stop through this.
    pub shutdown: ShutdownRequest,
    /// Which peers this node has seen holding data (the data-loss guard).
    pub witness: Witness,
    /// Bytes free on the data directory's disk when that is under
    /// `min_free_disk_bytes` (writes are then refused), else `u64::MAX`.
    /// Kept by `health`.
    pub disk_low: AtomicU64,
    /// Held while this node, as the metadata leader, changes the map
    /// (`meta::change`): one change at a time.
    pub meta_lock: tokio::sync::Mutex<()>,
}

/// Why the server asks its process to stop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// SHUTDOWN; `save` is false for NOSAVE.
    Shutdown { save: bool },
    /// Something this node cannot run with (a peer with another layout).
    Fatal(String),
    /// This node lost its data (`message` says how it knows): it must start
    /// again as a new replica (`Server::rejoin`).
    Rejoin { message: String },
}

/// A request, from inside the server, for the process to stop. The first
/// request wins.
#[derive(Debug)]
pub struct ShutdownRequest {
    reason: tokio::sync::watch::Sender<Option<StopReason>>,
}

impl Default for ShutdownRequest {
    fn default() -> Self {
        ShutdownRequest { reason: tokio::sync::watch::channel(None).0 }
    }
}

impl ShutdownRequest {
    pub fn request(&self, save: bool) {
        self.set(StopReason::Shutdown { save });
    }

    pub fn fail(&self, message: String) {
        self.set(StopReason::Fatal(message));
    }

    pub fn rejoin(&self, message: String) {
        self.set(StopReason::Rejoin { message });
    }

    fn set(&self, reason: StopReason) {
        self.reason.send_if_modified(|current| {
            let first = current.is_none();
            if first {
                *current = Some(reason);
            }
            first
        });
    }

    /// Resolves once a stop was requested.
    pub async fn wait(&self) -> StopReason {
        let mut rx = self.reason.subscribe();
        let reason = rx.wait_for(Option::is_some).await.expect("sender lives in Shared");
        reason.clone().expect("waited for Some")
    }
}

impl Shared {
    /// The time reads and writes use: the node's hybrid clock, never behind
    /// a time another node used (`shoal_raft::clock`).
    pub fn now_ms(&self) -> shoal_engine::Millis {
        self.shards.replicas().clock().now_ms()
    }
    /// `-MISCONF` when the data directory's disk is too full to take
    /// writes (reads are still served), as Redis refuses writes when it
    /// cannot persist.
    pub fn refuse_write(&self) -> Option<Frame> {
        let free = self.disk_low.load(Ordering::Relaxed);
        (free != u64::MAX).then(|| {
            Frame::error(format!(
                "MISCONF shoal cannot persist writes: the disk holding {} has {free} bytes free, under --min-free-disk-bytes ({}). Writes are refused until space is freed; reads are served",
                self.config.dir.display(),
                self.config.limits.min_free_disk_bytes
            ))
        })
    }

    pub fn new(config: Config, shards: Shards, witness: Witness) -> Shared {
        let peers = Peers::default();
        peers.sync(shards.layout().nodes.iter().map(|n| n.number).filter(|_| config.cluster.is_some()));
        Shared {
            shards,
            peers,
            config,
            stats: Stats::default(),
            blocked: Default::default(),
            started: Instant::now(),
            next_client_id: AtomicU64::new(1),
            shutdown: ShutdownRequest::default(),
            witness,
            disk_low: AtomicU64::new(u64::MAX),
            meta_lock: tokio::sync::Mutex::new(()),
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
    /// The client's address and ours, for CLIENT INFO.
    pub addr: String,
    pub laddr: String,
    pub created: Instant,
    /// CLIENT SETINFO LIB-NAME / LIB-VER.
    pub lib_name: Option<Bytes>,
    pub lib_ver: Option<Bytes>,
    pub protocol: Protocol,
    /// Set by QUIT and SHUTDOWN.
    pub closing: Closing,
    /// READONLY: keyed reads may be served by a follower replica here,
    /// possibly stale, instead of redirecting to the leader.
    pub readonly: bool,
    /// CLIENT SHOAL-TAG: the tag the next command carries if it writes.
    pub tag: Option<shoal_raft::WriteTag>,
    /// GET hits and misses since the last flush into `Stats`: counted here
    /// and added once per batch so connections on different cores do not
    /// bounce a shared cache line on every GET.
    pub hits: u64,
    pub misses: u64,
    /// Inside MULTI: the commands queued so far.
    pub multi: Option<crate::exec::transaction::Transaction>,
    /// WATCHed keys and the versions seen, until EXEC, DISCARD or UNWATCH.
    pub watches: Vec<crate::exec::transaction::Watched>,
}

impl Session {
    pub fn new(id: u64, addr: String, laddr: String) -> Session {
        Session {
            id,
            name: None,
            addr,
            laddr,
            created: Instant::now(),
            lib_name: None,
            lib_ver: None,
            protocol: Protocol::Resp2,
            closing: Closing::No,
            readonly: false,
            tag: None,
            hits: 0,
            misses: 0,
            multi: None,
            watches: Vec::new(),
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
