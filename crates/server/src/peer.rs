//! The peer port: where nodes meet. A connection's first frame says what
//! it carries: `shoal_raft::transport::preamble` with this node's layout
//! fingerprint hands it to the Raft transport (every group's traffic
//! between two nodes on one connection); a Raft preamble with another
//! fingerprint (a node of another cluster) is refused; anything else is a
//! hello. A node dials every other node every
//! `peer_check_interval` and the two exchange a hello carrying each side's
//! layout fingerprint and uptime.
//!
//! Frames are length-delimited (u32 big-endian length, then the payload) and
//! at most `MAX_FRAME_BYTES`; a hello is text:
//! `SHOAL/1 HELLO <node> <fingerprint> <uptime_ms> <holds_data> <incarnation>
//! <saw_you_in> <generation>`, answered by `SHOAL/1 WELCOME …` with the same fields
//! (whether or not the fingerprints agree: each side compares), or
//! `SHOAL/1 REFUSE <reason>` for a malformed hello. For the data-loss guard
//! (`witness`): `holds_data` (0/1) says whether the sender has anything
//! durable and is out of quarantine, `incarnation` (hex) which incarnation of its data, and
//! `saw_you_in` (hex, 0 for never; only meaningful in a WELCOME) in which
//! incarnation it first saw the other node holding data; `generation` (hex)
//! is the sender's Raft generation (`rejoin`: what a leader swaps in).
//!
//! When two nodes disagree on the layout, the one that has been up for less
//! time is the newcomer: it stops with a clear error, so a node started with
//! the wrong flags cannot join, and it cannot take a running node down.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use shoal_cluster::NodeNumber;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::clock::now_ms;
use crate::config::ClusterConfig;
use crate::periodic::Periodic;
use crate::state::Shared;
use crate::witness::{data_lost_message, Answer, Verdict};

const MAX_FRAME_BYTES: u32 = 4096;
const IO_TIMEOUT: Duration = Duration::from_secs(2);
const PROTOCOL: &str = "SHOAL/1";

/// What this node knows of each peer's liveness, for the map's nodes
/// (replaced whole when they change: read on every routed command).
#[derive(Debug, Default)]
pub struct Peers {
    seen: arc_swap::ArcSwap<BTreeMap<NodeNumber, Arc<PeerState>>>,
}

#[derive(Debug)]
struct PeerState {
    connected: AtomicBool,
    last_seen_ms: AtomicU64,
    /// The Raft generation its last answer reported (`UNKNOWN`: none yet).
    generation: AtomicU64,
}

const UNKNOWN: u64 = u64::MAX;

impl Default for PeerState {
    fn default() -> Self {
        PeerState {
            connected: AtomicBool::new(false),
            last_seen_ms: AtomicU64::new(0),
            generation: AtomicU64::new(UNKNOWN),
        }
    }
}

impl Peers {
    /// Tracks exactly `numbers` from now on; what is known of those
    /// already tracked is kept.
    pub fn sync(&self, numbers: impl IntoIterator<Item = NodeNumber>) {
        let current = self.seen.load();
        let next: BTreeMap<NodeNumber, Arc<PeerState>> =
            numbers.into_iter().map(|n| (n, current.get(&n).cloned().unwrap_or_default())).collect();
        if next.keys().ne(current.keys()) {
            self.seen.store(Arc::new(next));
        }
    }

    /// The nodes tracked.
    pub fn numbers(&self) -> Vec<NodeNumber> {
        self.seen.load().keys().copied().collect()
    }

    fn state(&self, number: NodeNumber) -> Option<Arc<PeerState>> {
        self.seen.load().get(&number).cloned()
    }

    pub fn is_connected(&self, number: NodeNumber) -> bool {
        // No `state`: an Arc clone per routed command would bounce its count.
        self.seen.load().get(&number).is_some_and(|s| s.connected.load(Ordering::Relaxed))
    }

    pub fn last_seen_ms(&self, number: NodeNumber) -> u64 {
        self.state(number).map_or(0, |s| s.last_seen_ms.load(Ordering::Relaxed))
    }

    /// The Raft generation `number` reported last, from our own dials.
    pub fn generation(&self, number: NodeNumber) -> Option<u32> {
        let g = self.seen.load().get(&number)?.generation.load(Ordering::Relaxed);
        u32::try_from(g).ok()
    }

    fn record_generation(&self, number: NodeNumber, generation: u32) {
        if let Some(s) = self.state(number) {
            s.generation.store(u64::from(generation), Ordering::Relaxed);
        }
    }

    fn record(&self, number: NodeNumber, up: bool) {
        if let Some(s) = self.state(number) {
            s.connected.store(up, Ordering::Relaxed);
            if up {
                s.last_seen_ms.store(now_ms(), Ordering::Relaxed);
            }
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
struct Hello {
    node: NodeNumber,
    fingerprint: String,
    uptime_ms: u64,
    holds_data: bool,
    incarnation: u64,
    saw_you_in: u64,
    generation: u32,
}

impl Hello {
    /// This node's hello to (or answer to) `to`, if known.
    fn mine(shared: &Shared, cluster: &ClusterConfig, to: Option<NodeNumber>) -> Hello {
        Hello {
            node: cluster.me,
            fingerprint: cluster.cluster_id().to_string(),
            uptime_ms: shared.started.elapsed().as_millis() as u64,
            // A node in quarantine has acknowledged nothing (it takes no
            // Raft traffic), even if it bootstrapped its groups: it must not
            // be seen as holding data, nor vouch for others as one that does.
            holds_data: shared.shards.replicas().holds_data() && !shared.shards.replicas().in_quarantine(),
            incarnation: shared.witness.incarnation(),
            saw_you_in: to.map_or(0, |n| shared.witness.saw(n)),
            generation: shared.shards.replicas().generation(),
        }
    }

    fn encode(&self, verb: &str) -> String {
        format!(
            "{PROTOCOL} {verb} {} {} {} {} {:x} {:x} {:x}",
            self.node,
            self.fingerprint,
            self.uptime_ms,
            u8::from(self.holds_data),
            self.incarnation,
            self.saw_you_in,
            self.generation
        )
    }

    fn decode(text: &str, verb: &str) -> Option<Hello> {
        let mut parts = text.split(' ');
        if parts.next()? != PROTOCOL || parts.next()? != verb {
            return None;
        }
        let flag = |p: Option<&str>| match p? {
            "0" => Some(false),
            "1" => Some(true),
            _ => None,
        };
        let hello = Hello {
            node: parts.next()?.parse().ok()?,
            fingerprint: parts.next()?.to_string(),
            uptime_ms: parts.next()?.parse().ok()?,
            holds_data: flag(parts.next())?,
            incarnation: u64::from_str_radix(parts.next()?, 16).ok()?,
            saw_you_in: u64::from_str_radix(parts.next()?, 16).ok()?,
            generation: u32::from_str_radix(parts.next()?, 16).ok()?,
        };
        parts.next().is_none().then_some(hello)
    }
}

/// The error a newcomer stops with.
fn mismatch(mine: &Hello, theirs: &Hello) -> String {
    format!(
        "layout differs from node {}'s (fingerprint {} here, {} there): every node must be started with the same --initial-cluster, --shards and --replicas",
        theirs.node, mine.fingerprint, theirs.fingerprint
    )
}

/// Whether a peer we dialled agrees on the layout. When it does not, the
/// newcomer (the node up for less time) asks its process to stop; the other
/// logs. Only called for our own dials: see `answer`.
fn compare(shared: &Shared, mine: &Hello, theirs: &Hello) -> bool {
    if theirs.fingerprint == mine.fingerprint {
        return true;
    }
    let message = mismatch(mine, theirs);
    if mine.uptime_ms <= theirs.uptime_ms {
        shared.shutdown.fail(message);
    } else {
        tracing::error!(node = theirs.node, "a peer with a different layout tried to join: {message}");
    }
    false
}

/// Accepts peer connections until shutdown, at most
/// `limits.max_peer_connections` at once: one more is closed at once.
pub async fn listen(listener: TcpListener, shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(shared.config.limits.max_peer_connections));
    let mut refused = 0u64;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "peer accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            // Logged at powers of two: a flood must not flood the log too.
            refused += 1;
            if refused.is_power_of_two() {
                tracing::warn!(
                    refused,
                    limit = shared.config.limits.max_peer_connections,
                    "peer connection refused: too many open"
                );
            }
            continue;
        };
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            serve(stream, shared).await;
            drop(slot);
        });
    }
}

/// One peer connection: its first frame says what it carries. Raft
/// traffic is handed to the node's replicas for as long as it lasts; a
/// hello is answered, bounded by `IO_TIMEOUT`.
async fn serve(mut stream: TcpStream, shared: Arc<Shared>) {
    let first = match tokio::time::timeout(IO_TIMEOUT, read_frame(&mut stream)).await {
        Ok(Ok(text)) => text,
        Ok(Err(e)) => return tracing::debug!(error = %e, "peer connection closed before its first frame"),
        Err(_) => return tracing::debug!("peer connection sent no first frame in time"),
    };
    if let Some(cluster) = first.strip_prefix(shoal_raft::transport::PREAMBLE_PREFIX) {
        let ours = shared.shards.layout().fingerprint().to_string();
        let ours = ours.as_str();
        if cluster.strip_prefix(' ') != Some(ours) {
            tracing::warn!(
                theirs = cluster.trim(),
                ours,
                "refused Raft traffic from a node of another cluster (its layout fingerprint differs)"
            );
            return;
        }
        let _ = stream.set_nodelay(true);
        shared.shards.replicas().serve_peer(stream).await;
        return;
    }
    if tokio::time::timeout(IO_TIMEOUT, answer(stream, &first, &shared)).await.is_err() {
        tracing::debug!("peer hello timed out");
    }
}

async fn answer(mut stream: TcpStream, text: &str, shared: &Shared) {
    let cluster = shared.config.cluster.as_ref().expect("peer listener runs in cluster mode");
    let reply = match Hello::decode(text, "HELLO") {
        None => format!("{PROTOCOL} REFUSE malformed hello"),
        Some(theirs) => {
            let mine = Hello::mine(shared, cluster, Some(theirs.node));
            // An incoming hello is only logged, never acted on: anyone can
            // claim a node number, a fingerprint and an uptime. Liveness and
            // the newcomer rule come from our own dials to the layout's
            // addresses (`greet`); a mismatching dialler learns of it from
            // this reply (a node number unknown here is answered the same
            // way, so the dialler can see that its layout differs).
            if theirs.fingerprint != mine.fingerprint {
                tracing::warn!(node = theirs.node, "{}", mismatch(&mine, &theirs));
            }
            mine.encode("WELCOME")
        }
    };
    let _ = write_frame(&mut stream, &reply).await;
}

/// Dials every other node periodically until shutdown.
pub async fn check_peers(shared: Arc<Shared>, shutdown: watch::Receiver<bool>) {
    let cluster = shared.config.cluster.clone().expect("peer checks run in cluster mode");
    let mut periodic = Periodic::new(cluster.peer_check_interval, shutdown);
    while periodic.next().await {
        let layout = shared.shards.layout();
        for node in layout.nodes.iter().filter(|n| n.number != cluster.me) {
            let addr = format!("{}:{}", node.host, node.peer_port);
            let outcome = tokio::time::timeout(IO_TIMEOUT, greet(&addr, &shared, &cluster)).await;
            let up = matches!(outcome, Ok(Ok(())));
            if let Ok(Err(e)) = &outcome {
                tracing::debug!(peer = node.number, error = %e, "peer check failed");
            }
            shared.peers.record(node.number, up);
        }
    }
}

async fn greet(addr: &str, shared: &Shared, cluster: &ClusterConfig) -> std::io::Result<()> {
    let mut stream = TcpStream::connect(addr).await?;
    let mine = Hello::mine(shared, cluster, None);
    write_frame(&mut stream, &mine.encode("HELLO")).await?;
    let reply = read_frame(&mut stream).await?;
    if let Some(theirs) = Hello::decode(&reply, "WELCOME") {
        if !compare(shared, &mine, &theirs) {
            return Err(std::io::Error::other("peer has a different layout"));
        }
        shared.peers.record_generation(theirs.node, theirs.generation);
        guard_against_data_loss(shared, cluster, &theirs);
        return Ok(());
    }
    if let Some(reason) = reply.strip_prefix(&format!("{PROTOCOL} REFUSE ")) {
        return Err(std::io::Error::other(format!("refused: {reason}")));
    }
    Err(std::io::Error::other(format!("unexpected peer reply: {reply}")))
}

/// Feeds a peer's answer to the data-loss guard and acts on its verdict.
/// Only our own dials get here: a hello anyone sends is never acted on.
fn guard_against_data_loss(shared: &Shared, cluster: &ClusterConfig, theirs: &Hello) {
    let replicas = shared.shards.replicas();
    let others = shared.peers.numbers().len().saturating_sub(1);
    let answer =
        Answer { holds_data: theirs.holds_data, incarnation: theirs.incarnation, saw_us_in: theirs.saw_you_in };
    match shared.witness.on_answer(theirs.node, answer, replicas.in_quarantine(), others) {
        Verdict::Carry => {}
        Verdict::EndQuarantine => {
            replicas.end_quarantine();
            tracing::info!("a majority confirmed this node never held data before: voting");
        }
        Verdict::DataLost(peer) => {
            shared.shutdown.rejoin(data_lost_message(&shared.config.dir, cluster.me, peer));
        }
    }
}

async fn read_frame(stream: &mut TcpStream) -> std::io::Result<String> {
    let len = stream.read_u32().await?;
    if len > MAX_FRAME_BYTES {
        return Err(std::io::Error::other(format!("peer frame of {len} bytes is over {MAX_FRAME_BYTES}")));
    }
    let mut buf = vec![0; len as usize];
    stream.read_exact(&mut buf).await?;
    String::from_utf8(buf).map_err(|_| std::io::Error::other("peer frame is not UTF-8"))
}

async fn write_frame(stream: &mut TcpStream, text: &str) -> std::io::Result<()> {
    assert!(text.len() <= MAX_FRAME_BYTES as usize, "our own frames fit the limit");
    stream.write_u32(text.len() as u32).await?;
    stream.write_all(text.as_bytes()).await?;
    stream.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_round_trips_and_rejects_junk() {
        let h = Hello {
            node: 2,
            fingerprint: "abc".into(),
            uptime_ms: 5,
            holds_data: true,
            incarnation: 255,
            saw_you_in: 0,
            generation: 0x1f,
        };
        assert_eq!(h.encode("HELLO"), "SHOAL/1 HELLO 2 abc 5 1 ff 0 1f");
        assert_eq!(Hello::decode(&h.encode("HELLO"), "HELLO"), Some(h));
        assert_eq!(Hello::decode("SHOAL/1 HELLO 2 abc 5 1 ff 0", "HELLO"), None);
        assert_eq!(Hello::decode("SHOAL/1 HELLO 2 abc 5 1 ff 0 0 extra", "HELLO"), None);
        assert_eq!(Hello::decode("SHOAL/1 HELLO 2 abc 5 2 ff 0 0", "HELLO"), None);
        assert_eq!(Hello::decode("SHOAL/1 HELLO 2 abc 5 1 zz 0 0", "HELLO"), None);
        assert_eq!(Hello::decode("SHOAL/1 HELLO 2 abc 5 1 ff 0 100000000", "HELLO"), None);
        assert_eq!(Hello::decode("SHOAL/2 HELLO 2 abc 5 0 1 0 0", "HELLO"), None);
        assert_eq!(Hello::decode("SHOAL/1 HELLO x abc 5 0 1 0 0", "HELLO"), None);
    }
}
