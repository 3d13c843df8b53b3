//! Raft RPCs over TCP between nodes: every group's traffic to a peer shares
//! one connection, requests carry an id and a group, responses come back by
//! id in any order. Frames are a u32 big-endian length then a postcard
//! body (compact serde encoding of openraft's messages).
//!
//! - Server side: [`serve`] accepts peer connections and hands each request
//!   to the group's `Raft` (found in [`Groups`]), answering concurrently.
//! - Client side: [`Peers`] keeps one connection per peer node, dialled on
//!   first use and again after a failure; [`TcpNetworkFactory`] gives
//!   openraft a `RaftNetworkV2` per (group, target) over it.
//!
//! Every wait is bounded: a call gives up after the RPC's soft TTL, frames
//! over `MAX_FRAME_BYTES` end the connection, and queues are bounded.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::error::{NetworkError, RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::RPCOption;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest, TransferLeaderResponse,
    VoteRequest, VoteResponse,
};
use openraft::storage::Snapshot;
use openraft::type_config::alias::{SnapshotMetaOf, SnapshotOf, VoteOf};
use openraft::{OptionalSend, RaftNetworkFactory, RaftNetworkV2};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

use bytes::{Bytes, BytesMut};

use crate::{Clock, ShoalNode, ShoalRaft, TypeConfig};

/// A Raft group's number on the wire (the WAL's group id).
pub type GroupId = u32;

/// Largest frame read; a bigger length is a broken or hostile peer.
pub const MAX_FRAME_BYTES: u32 = 1 << 30;
/// Entry bytes sent in one AppendEntries at most (the rest of the batch goes
/// in the next call): keeps every frame under `MAX_FRAME_BYTES` whatever
/// openraft batches, as long as one entry fits (the server caps values).
pub const MAX_APPEND_BYTES: usize = 3 << 28;
/// What the first frame a dialler sends starts with, so that a node's one
/// peer port can tell Raft connections from other peer traffic (the
/// server's hellos). See [`preamble`].
pub const PREAMBLE_PREFIX: &str = "SHOAL/1 RAFT";

/// The whole first frame of a Raft connection within `cluster` (an opaque
/// name every node of one cluster shares; the server uses its layout
/// fingerprint). A node takes Raft traffic only from its own cluster: a
/// node of another one (started with other flags, or dialling a reused
/// address) could otherwise make followers adopt its term and truncate
/// their logs to its own.
pub fn preamble(cluster: &str) -> Vec<u8> {
    format!("{PREAMBLE_PREFIX} {cluster}").into_bytes()
}

/// Most bytes gathered from the queue into one socket write.
const WRITE_BATCH_BYTES: usize = 256 * 1024;
/// Read buffer of a peer connection.
const READ_BUFFER_BYTES: usize = 64 * 1024;
/// Frames queued for one connection's writer.
const WRITE_QUEUE: usize = 1024;
/// Requests of one peer connection handled at once; past it the connection
/// is not read until one finishes (the peer's queue then fills and it
/// backs off), so a peer cannot make this node run unboundedly many.
pub const MAX_REQUESTS_IN_FLIGHT: usize = 256;
/// `Request::ReadIndex`es of one peer connection waiting at once; more are
/// refused at once (the follower answers its client TRYAGAIN).
pub const MAX_READ_INDEXES_IN_FLIGHT: usize = 1024;

/// Snapshot bytes per `Request::SnapshotChunk`.
pub const SNAPSHOT_CHUNK_BYTES: usize = 4 << 20;
/// Largest snapshot a node takes (`Request::SnapshotChunk::total`).
pub const MAX_SNAPSHOT_BYTES: u64 = 64 << 30;
/// How long the last chunk may take: the receiver installs the snapshot
/// (decodes and swaps in the whole keyspace, writes and fsyncs it).
const INSTALL_TIMEOUT: Duration = Duration::from_secs(120);
/// How long any other chunk may take (4 MiB over a slow or busy link).
const CHUNK_TIMEOUT: Duration = Duration::from_secs(10);
/// A transfer that received nothing for this long is dropped (its sender
/// died or gave up), so an abandoned one does not hold its memory.
const TRANSFER_IDLE: Duration = Duration::from_secs(60);

/// A transfer's id: random, so two leaders' transfers of one group never
/// share one (the receiver keeps one transfer per group, and a piece of
/// another would corrupt it).
fn next_transfer_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(NEXT.fetch_add(1, Ordering::Relaxed));
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    h.finish()
}

/// Snapshots being received, one per group: the bytes so far.
#[derive(Clone, Default)]
pub struct Incoming {
    /// A std Mutex: held only to add a chunk's bytes, never across an await.
    transfers: Arc<Mutex<HashMap<GroupId, Transfer>>>,
}

struct Transfer {
    id: u64,
    bytes: BytesMut,
    last_chunk: std::time::Instant,
}

impl Incoming {
    /// Adds a chunk; the whole snapshot once `last` completes it. A chunk
    /// that does not continue the group's transfer (a new transfer starts
    /// at offset 0 and replaces an abandoned one) is an error: the sender
    /// starts again.
    fn take_chunk(
        &self,
        group: GroupId,
        transfer: u64,
        offset: u64,
        total: u64,
        data: Bytes,
        last: bool,
    ) -> Result<Option<Bytes>, String> {
        if total > MAX_SNAPSHOT_BYTES || data.len() > SNAPSHOT_CHUNK_BYTES {
            return Err(format!("a snapshot of {total} bytes (chunk of {}) is over the limits", data.len()));
        }
        let mut transfers = self.transfers.lock().expect("incoming lock");
        transfers.retain(|_, t| t.last_chunk.elapsed() < TRANSFER_IDLE);
        if offset == 0 {
            // Grown as bytes arrive, not allocated at the declared total.
            let fresh = Transfer { id: transfer, bytes: BytesMut::new(), last_chunk: std::time::Instant::now() };
            transfers.insert(group, fresh);
        }
        let Some(current) = transfers.get_mut(&group) else {
            return Err(format!("snapshot transfer {transfer} of group {group} is unknown here: start again"));
        };
        if current.id != transfer || current.bytes.len() as u64 != offset || offset + data.len() as u64 > total {
            transfers.remove(&group);
            return Err(format!("snapshot chunk at {offset} does not continue the transfer: start again"));
        }
        current.bytes.extend_from_slice(&data);
        current.last_chunk = std::time::Instant::now();
        if !last {
            return Ok(None);
        }
        let whole = transfers.remove(&group).expect("just used").bytes;
        if whole.len() as u64 != total {
            return Err(format!("snapshot ended at {} of {total} bytes", whole.len()));
        }
        Ok(Some(whole.freeze()))
    }
}

/// A Raft RPC as it travels between nodes (over TCP, postcard-encoded).
#[derive(Serialize, Deserialize)]
pub enum Request {
    Append(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<TypeConfig>),
    PreVote(VoteRequest<TypeConfig>),
    /// One piece of a snapshot, sent in order: `offset` bytes of the
    /// transfer came before it, `total` is the whole; the last piece
    /// (`install` set) has the node install it. A snapshot of any size thus
    /// travels in frames of at most `SNAPSHOT_CHUNK_BYTES`, and only the
    /// receiver holds it whole (it installs from memory anyway).
    SnapshotChunk {
        transfer: u64,
        offset: u64,
        total: u64,
        data: Bytes,
        install: Option<(VoteOf<TypeConfig>, SnapshotMetaOf<TypeConfig>)>,
    },
    TransferLeader(TransferLeaderRequest<TypeConfig>),
    /// From a follower that serves a read: the leader confirms its
    /// leadership with a quorum (ReadIndex) and answers the log index the
    /// follower must have applied before it reads.
    ReadIndex,
}

/// The answer to a [`Request`].
#[derive(Serialize, Deserialize)]
pub enum Response {
    Append(AppendEntriesResponse<TypeConfig>),
    Vote(VoteResponse<TypeConfig>),
    Snapshot(SnapshotResponse<TypeConfig>),
    /// A snapshot piece that is not the last was taken.
    SnapshotChunk,
    TransferLeader(TransferLeaderResponse<TypeConfig>),
    /// The read index: reads after applying this log index are linearizable.
    ReadIndex(u64),
    /// The group is unknown here or its `Raft` refused (shutting down).
    Error(String),
}

#[derive(Serialize, Deserialize)]
struct RequestFrame {
    id: u64,
    /// The Raft id the sender means (see `crate::raft_id`): a node answers
    /// only to its current identity.
    to: u64,
    group: GroupId,
    /// The sender's clock (`crate::clock`): the receiver's never runs
    /// behind it.
    clock_ms: u64,
    body: Request,
}

#[derive(Serialize, Deserialize)]
struct ResponseFrame {
    id: u64,
    /// The responder's clock, as `RequestFrame::clock_ms`.
    clock_ms: u64,
    body: Response,
}

/// A group's Raft here and the Raft id it answers to (`None`: any).
type Member = (ShoalRaft, Option<u64>);

/// The groups this node serves, by id.
#[derive(Clone, Default)]
pub struct Groups {
    /// Each group's Raft and the id this node answers to in it (unset in
    /// hand-built test groups: they answer to any).
    rafts: Arc<Mutex<HashMap<GroupId, Member>>>,
    /// Vote requests are refused until then (see `refuse_votes_until`).
    no_votes_until: Arc<Mutex<Option<std::time::Instant>>>,
    /// While on, vote requests are refused (see `Quarantine`).
    quarantine: Quarantine,
    /// The node's clock: observes every request's time, stamps responses.
    clock: Arc<Clock>,
    /// Snapshots being received.
    incoming: Incoming,
    /// Set once the groups are shut down: connections serving them end, so
    /// peers dial again and reach whatever serves the node next (a server
    /// restarted in the same process).
    closed: Arc<tokio::sync::watch::Sender<bool>>,
    /// Groups asked for a vote since the last `take_pokes`: a candidate
    /// exists, so a quiet replica must wake (`crate::hibernate`).
    pokes: Arc<Mutex<std::collections::BTreeSet<GroupId>>>,
}

impl Groups {
    /// Serves `group` with `raft`, answering requests for any Raft id.
    pub fn insert(&self, group: GroupId, raft: ShoalRaft) {
        self.rafts.lock().expect("groups lock").insert(group, (raft, None));
    }

    /// Serves `group` with `raft`, answering only requests for Raft id `me`.
    pub fn insert_member(&self, group: GroupId, raft: ShoalRaft, me: u64) {
        self.rafts.lock().expect("groups lock").insert(group, (raft, Some(me)));
    }

    pub fn remove(&self, group: GroupId) -> Option<ShoalRaft> {
        self.rafts.lock().expect("groups lock").remove(&group).map(|(raft, _)| raft)
    }

    fn get(&self, group: GroupId) -> Option<(ShoalRaft, Option<u64>)> {
        self.rafts.lock().expect("groups lock").get(&group).cloned()
    }

    /// Refuses (pre-)vote requests until `until`. A node that restarts
    /// forgets when it last heard from its leader, and would otherwise vote
    /// at once, letting another leader be elected while the old one still
    /// serves lease reads; refusing votes for the election timeout after a
    /// start restores what the lease assumes.
    pub fn refuse_votes_until(&self, until: std::time::Instant) {
        *self.no_votes_until.lock().expect("groups lock") = Some(until);
    }

    /// Shares `quarantine`: while it is on, this node grants no votes.
    pub fn set_quarantine(&mut self, quarantine: Quarantine) {
        self.quarantine = quarantine;
    }

    /// Ends every connection serving these groups (see `closed`).
    pub fn close(&self) {
        self.closed.send_replace(true);
    }

    /// Shares the node's clock (see `crate::clock`).
    pub fn set_clock(&mut self, clock: Arc<Clock>) {
        self.clock = clock;
    }

    /// The node's clock.
    pub fn clock(&self) -> &Arc<Clock> {
        &self.clock
    }

    /// The groups asked for a vote since the last call.
    pub(crate) fn take_pokes(&self) -> std::collections::BTreeSet<GroupId> {
        std::mem::take(&mut *self.pokes.lock().expect("groups lock"))
    }

    fn votes_refused(&self) -> bool {
        self.no_votes_until.lock().expect("groups lock").is_some_and(|until| std::time::Instant::now() < until)
    }
}

/// Reads one frame. `read` is buffered, so a burst of small frames costs
/// one syscall, not two per frame.
async fn read_frame<T: for<'de> Deserialize<'de>>(read: &mut BufReader<OwnedReadHalf>) -> std::io::Result<T> {
    let len = read.read_u32().await?;
    if len > MAX_FRAME_BYTES {
        return Err(std::io::Error::other(format!("peer frame of {len} bytes is over {MAX_FRAME_BYTES}")));
    }
    // The buffer grows a chunk at a time as bytes arrive, never to the
    // declared length up front: a stranger on the peer port declaring a
    // 1 GiB frame and sending nothing costs one chunk, not a gigabyte. A
    // frame within one chunk (almost all) is one exact allocation.
    let len = len as usize;
    let mut body = Vec::new();
    while body.len() < len {
        let start = body.len();
        body.resize(start + (len - start).min(READ_BUFFER_BYTES), 0);
        read.read_exact(&mut body[start..]).await?;
    }
    postcard::from_bytes(&body).map_err(std::io::Error::other)
}

/// The framed bytes of `value`, or why it cannot be sent: a message over
/// `MAX_FRAME_BYTES` (a huge value, a huge batch of entries, a huge
/// snapshot) is refused here rather than crashing the sender.
fn encode_frame<T: Serialize>(value: &T) -> Result<Vec<u8>, String> {
    let body = postcard::to_allocvec(value).map_err(|e| format!("cannot encode a raft message: {e}"))?;
    let len = u32::try_from(body.len()).ok().filter(|&l| l <= MAX_FRAME_BYTES).ok_or_else(|| {
        format!("a raft message of {} bytes is over the {MAX_FRAME_BYTES}-byte frame limit", body.len())
    })?;
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&body);
    Ok(frame)
}

/// Writes queued frames until the queue closes or the socket fails.
///
/// Batching: whatever else is already queued when a frame arrives (every
/// group's traffic to this peer shares the queue) goes out in the same
/// write, up to `WRITE_BATCH_BYTES`, so many small RPCs cost one syscall.
async fn write_loop(mut write: OwnedWriteHalf, mut frames: mpsc::Receiver<Vec<u8>>) {
    let mut batch = Vec::new();
    while let Some(frame) = frames.recv().await {
        batch.clear();
        batch.extend_from_slice(&frame);
        while batch.len() < WRITE_BATCH_BYTES {
            match frames.try_recv() {
                Ok(frame) => batch.extend_from_slice(&frame),
                Err(_) => break,
            }
        }
        if write.write_all(&batch).await.is_err() {
            return;
        }
    }
}

// ---- server side ----------------------------------------------------------

/// Accepts peer connections of `cluster` forever, serving `groups` (a
/// listener of its own; the server shares its peer port and checks the
/// preamble itself).
pub async fn serve(listener: TcpListener, groups: Groups, cluster: String) {
    let expected: Arc<[u8]> = preamble(&cluster).into();
    loop {
        let Ok((mut stream, _)) = listener.accept().await else { continue };
        let _ = stream.set_nodelay(true);
        let (groups, expected) = (groups.clone(), Arc::clone(&expected));
        tokio::spawn(async move {
            if read_preamble(&mut stream, &expected).await {
                serve_connection(stream, groups).await;
            }
        });
    }
}

/// Reads a connection's first frame; true when it is `expected`.
pub async fn read_preamble(stream: &mut TcpStream, expected: &[u8]) -> bool {
    let Ok(len) = stream.read_u32().await else { return false };
    let mut preamble = vec![0; expected.len()];
    len as usize == expected.len() && stream.read_exact(&mut preamble).await.is_ok() && preamble == expected
}

/// Serves one accepted peer connection, after its preamble, until it closes.
pub async fn serve_connection(stream: TcpStream, groups: Groups) {
    let (read, write) = stream.into_split();
    let mut read = BufReader::with_capacity(READ_BUFFER_BYTES, read);
    let (frames, queue) = mpsc::channel(WRITE_QUEUE);
    tokio::spawn(write_loop(write, queue));
    let mut closed = groups.closed.subscribe();
    let in_flight = Arc::new(tokio::sync::Semaphore::new(MAX_REQUESTS_IN_FLIGHT));
    let read_indexes = Arc::new(tokio::sync::Semaphore::new(MAX_READ_INDEXES_IN_FLIGHT));
    loop {
        let frame = tokio::select! {
            frame = read_frame::<RequestFrame>(&mut read) => match frame {
                Ok(frame) => frame,
                Err(_) => return,
            },
            _ = closed.wait_for(|closed| *closed) => return,
        };
        // Follower reads have a budget of their own, refused at once when
        // spent: they must never hold up this connection's Raft traffic.
        let permit = if matches!(frame.body, Request::ReadIndex) {
            match Arc::clone(&read_indexes).try_acquire_owned() {
                Ok(permit) => permit,
                Err(_) => {
                    let body = Response::Error("too many follower reads waiting here; retry".into());
                    let clock_ms = groups.clock.now_ms();
                    if let Ok(response) = encode_frame(&ResponseFrame { id: frame.id, clock_ms, body }) {
                        let _ = frames.send(response).await;
                    }
                    continue;
                }
            }
        } else {
            tokio::select! {
                permit = Arc::clone(&in_flight).acquire_owned() => permit.expect("the semaphore is never closed"),
                _ = closed.wait_for(|closed| *closed) => return,
            }
        };
        let (groups, frames) = (groups.clone(), frames.clone());
        // Each request runs on its own: a slow snapshot install must not
        // hold up another group's heartbeats on the same connection.
        tokio::spawn(async move {
            let _permit = permit;
            let body = handle(&groups, frame.to, frame.group, frame.clock_ms, frame.body).await;
            let clock_ms = groups.clock.now_ms();
            let response = encode_frame(&ResponseFrame { id: frame.id, clock_ms, body })
                .or_else(|e| encode_frame(&ResponseFrame { id: frame.id, clock_ms, body: Response::Error(e) }));
            if let Ok(response) = response {
                let _ = frames.send(response).await;
            }
        });
    }
}

/// Hands a request for Raft id `to` to the group's `Raft` here and
/// returns its answer: the receiving side of every transport.
pub async fn handle(groups: &Groups, to: u64, group: GroupId, clock_ms: u64, request: Request) -> Response {
    // Stopping: a stopped Raft would refuse too, but logs every refusal as
    // an error.
    if *groups.closed.borrow() {
        return Response::Error("the node is stopping".into());
    }
    let Some((raft, me)) = groups.get(group) else {
        return Response::Error(format!("group {group} is not served here"));
    };
    // A request for another replica of the group on this node (an earlier
    // identity its leaders have not yet swapped out, or one moved away)
    // must not be answered by this one: that replica's votes and
    // acknowledgements were lost with its data.
    if let Some(me) = me.filter(|&me| me != to) {
        return Response::Error(format!(
            "group {group} on node {} is raft id {}; {} is gone with the data it had",
            crate::node_of(me),
            crate::ShowId(me),
            crate::ShowId(to)
        ));
    }
    let error = |e: &dyn std::fmt::Display| Response::Error(e.to_string());
    // A node in quarantine takes no Raft traffic at all: a wiped node that
    // answered AppendEntries would show its leaders a log gone backwards
    // before its peer checks stop it.
    if groups.quarantine.is_on() {
        return Response::Error("in quarantine: not taking part yet".into());
    }
    // Only traffic a group here takes moves the clock.
    groups.clock.observe(clock_ms);
    if matches!(request, Request::Vote(_) | Request::PreVote(_)) {
        if groups.votes_refused() {
            return Response::Error("restarted moments ago: not voting yet".into());
        }
        // Someone is electing: a quiet replica here must be able to as well
        // (its leader may be gone where the node-level check cannot see
        // it), so its ticker runs again at once.
        raft.runtime_config().tick(true);
        groups.pokes.lock().expect("groups lock").insert(group);
    }
    match request {
        Request::Append(rpc) => raft.append_entries(rpc).await.map_or_else(|e| error(&e), Response::Append),
        Request::Vote(rpc) => raft.vote(rpc).await.map_or_else(|e| error(&e), Response::Vote),
        Request::PreVote(rpc) => raft.pre_vote(rpc).await.map_or_else(|e| error(&e), Response::Vote),
        Request::SnapshotChunk { transfer, offset, total, data, install } => {
            let whole = match groups.incoming.take_chunk(group, transfer, offset, total, data, install.is_some()) {
                Ok(None) => return Response::SnapshotChunk,
                Ok(Some(whole)) => whole,
                Err(e) => return Response::Error(e),
            };
            let (vote, meta) = install.expect("the last chunk carries the install");
            // openraft stops a group whose install fails: a bad snapshot is
            // refused here instead (checked off the runtime: it reads it all).
            let checked = whole.clone();
            match tokio::task::spawn_blocking(move || crate::state_machine::check_snapshot(&checked)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Response::Error(format!("refused a bad snapshot: {e}")),
                Err(e) => return Response::Error(format!("checking the snapshot failed: {e}")),
            }
            let snapshot = Snapshot { meta, snapshot: whole };
            raft.install_full_snapshot(vote, snapshot).await.map_or_else(|e| error(&e), Response::Snapshot)
        }
        Request::TransferLeader(rpc) => {
            raft.handle_transfer_leader(rpc).await.map_or_else(|e| error(&e), Response::TransferLeader)
        }
        // A fresh quorum round (not the lease: the follower's clock plays no
        // part, and the round is what makes the index safe to hand out).
        Request::ReadIndex => match raft.get_read_linearizer(openraft::ReadPolicy::ReadIndex).await {
            Ok(linearizer) => {
                // The response carries this node's time: past its
                // predecessor's lease first (`crate::clock`).
                let term = openraft::async_runtime::WatchReceiver::borrow_watched(&raft.metrics()).current_term;
                groups.clock.elected(group, term);
                Response::ReadIndex(linearizer.read_log_id().index())
            }
            Err(e) => error(&e),
        },
    }
}

// ---- client side ----------------------------------------------------------

/// One connection to one peer, shared by every group's calls.
struct PeerConnection {
    next_id: AtomicU64,
    /// Callers waiting for a response, by request id. A std Mutex: held
    /// only to insert or remove, never across an await.
    waiting: Mutex<HashMap<u64, oneshot::Sender<Response>>>,
    frames: mpsc::Sender<Vec<u8>>,
    dead: Arc<AtomicBool>,
    clock: Arc<Clock>,
}

impl PeerConnection {
    async fn connect(addr: &str, preamble: &[u8], clock: Arc<Clock>) -> std::io::Result<Arc<PeerConnection>> {
        let mut stream = tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(addr))
            .await
            .map_err(|_| std::io::Error::other(format!("connecting to {addr} timed out")))??;
        let _ = stream.set_nodelay(true);
        stream.write_u32(preamble.len() as u32).await?;
        stream.write_all(preamble).await?;
        let (read, write) = stream.into_split();
        let (frames, queue) = mpsc::channel(WRITE_QUEUE);
        tokio::spawn(write_loop(write, queue));
        let connection = Arc::new(PeerConnection {
            next_id: AtomicU64::new(1),
            waiting: Mutex::new(HashMap::new()),
            frames,
            dead: Arc::new(AtomicBool::new(false)),
            clock,
        });
        tokio::spawn(read_responses(BufReader::with_capacity(READ_BUFFER_BYTES, read), Arc::downgrade(&connection)));
        Ok(connection)
    }

    async fn call(&self, to: u64, group: GroupId, body: Request) -> Result<Response, String> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let frame = encode_frame(&RequestFrame { id, to, group, clock_ms: self.clock.now_ms(), body })?;
        let (tx, rx) = oneshot::channel();
        self.waiting.lock().expect("waiting lock").insert(id, tx);
        // However this call ends (answered, failed, or dropped by the
        // caller's timeout), its waiting entry goes with it.
        let _forget = Forget { waiting: &self.waiting, id };
        if self.frames.send(frame).await.is_err() {
            self.dead.store(true, Ordering::Release);
            return Err("connection closed".into());
        }
        rx.await.map_err(|_| "connection lost before the response".to_string())
    }

    /// Drops every waiting caller's sender: each sees the connection lost.
    fn fail_all(&self) {
        self.waiting.lock().expect("waiting lock").clear();
    }
}

/// Removes a call's waiting entry when the call ends.
struct Forget<'a> {
    waiting: &'a Mutex<HashMap<u64, oneshot::Sender<Response>>>,
    id: u64,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.waiting.lock().expect("waiting lock").remove(&self.id);
    }
}

/// Resolves waiting callers until the connection ends; then fails the rest
/// (dropping their senders) and marks the connection dead.
async fn read_responses(mut read: BufReader<OwnedReadHalf>, connection: std::sync::Weak<PeerConnection>) {
    while let Ok(frame) = read_frame::<ResponseFrame>(&mut read).await {
        let Some(connection) = connection.upgrade() else { return };
        connection.clock.observe(frame.clock_ms);
        let caller = connection.waiting.lock().expect("waiting lock").remove(&frame.id);
        if let Some(caller) = caller {
            let _ = caller.send(frame.body);
        }
    }
    if let Some(connection) = connection.upgrade() {
        connection.dead.store(true, Ordering::Release);
        connection.fail_all();
    }
}

/// The peers this node talks to: node number → peer address, and the live
/// connections (a target's Raft id is mapped to its node).
#[derive(Clone)]
pub struct Peers {
    /// Each peer node's address and connection; replaced whole when the
    /// cluster's nodes change (`set_addrs`).
    connections: Arc<arc_swap::ArcSwap<HashMap<u64, Arc<PeerSlot>>>>,
    clock: Arc<Clock>,
    /// Every connection's first frame (`preamble`).
    preamble: Arc<[u8]>,
}

/// How a node's groups send RPCs to other nodes. [`Peers`] is TCP (one
/// multiplexed connection per peer); `memory::MemoryTransport` calls the
/// target's groups in-process, with faults a test chooses. Both carry the
/// same `Request`s to the same `handle`.
pub trait Transport: Clone + Send + Sync + 'static {
    /// One RPC to `target`'s `group`, bounded by `ttl`. A target that cannot
    /// be reached is `Unreachable` (openraft backs off); a slow answer is a
    /// `NetworkError` (retried soon).
    fn call(
        &self,
        target: u64,
        group: GroupId,
        body: Request,
        ttl: Duration,
    ) -> impl Future<Output = Result<Response, RPCError<TypeConfig>>> + Send;
}

impl Transport for Peers {
    async fn call(
        &self,
        target: u64,
        group: GroupId,
        body: Request,
        ttl: Duration,
    ) -> Result<Response, RPCError<TypeConfig>> {
        // The ttl covers getting a connection too (a dial may wait).
        let call = async {
            let connection = self.connection(target).await?;
            connection.call(target, group, body).await
        };
        rpc_result(target, ttl, tokio::time::timeout(ttl, call).await.ok())
    }
}

/// What a transport's call came to, in openraft's terms: an answer within
/// the ttl (`Some`) or none. A target that could not be reached, or whose
/// group refused (`Response::Error`), is `Unreachable` (openraft backs off);
/// no answer in time is a `NetworkError` (retried soon).
pub fn rpc_result(
    target: u64,
    ttl: Duration,
    answer: Option<Result<Response, String>>,
) -> Result<Response, RPCError<TypeConfig>> {
    match answer {
        Some(Ok(Response::Error(e)) | Err(e)) => Err(RPCError::Unreachable(Unreachable::from_string(e))),
        Some(Ok(response)) => Ok(response),
        None => Err(RPCError::Network(NetworkError::from_string(format!("no answer from node {target} in {ttl:?}")))),
    }
}

impl Peers {
    /// Peers at `addrs` (by node number), all of `cluster` (see `preamble`).
    /// Messages carry `clock`'s time and move it (see `crate::clock`).
    pub fn new(addrs: HashMap<u64, String>, cluster: &str, clock: Arc<Clock>) -> Peers {
        let connections = addrs.iter().map(|(id, addr)| (*id, Arc::new(PeerSlot::new(addr.clone())))).collect();
        Peers {
            connections: Arc::new(arc_swap::ArcSwap::from_pointee(connections)),
            clock,
            preamble: preamble(cluster).into(),
        }
    }

    /// Every peer node's address from now on (a node joined, left or
    /// moved): connections to an unchanged address are kept.
    pub fn set_addrs(&self, addrs: &HashMap<u64, String>) {
        let current = self.connections.load();
        let unchanged = addrs.iter().all(|(n, a)| current.get(n).is_some_and(|s| s.addr == *a));
        if unchanged && current.len() == addrs.len() {
            return;
        }
        let next = addrs
            .iter()
            .map(|(&node, addr)| match current.get(&node).filter(|s| s.addr == *addr) {
                Some(slot) => (node, Arc::clone(slot)),
                None => (node, Arc::new(PeerSlot::new(addr.clone()))),
            })
            .collect();
        self.connections.store(Arc::new(next));
    }

    async fn connection(&self, target: u64) -> Result<Arc<PeerConnection>, String> {
        let node = crate::node_of(target);
        let slot =
            self.connections.load().get(&node).cloned().ok_or_else(|| format!("node {node} has no peer address"))?;
        // One lock per peer: dialling a dead peer (up to the connect
        // timeout) must not hold up heartbeats to the live ones.
        let mut current = slot.connection.lock().await;
        if let Some(c) = current.as_ref().filter(|c| !c.dead.load(Ordering::Acquire)) {
            return Ok(Arc::clone(c));
        }
        let connection = PeerConnection::connect(&slot.addr, &self.preamble, Arc::clone(&self.clock))
            .await
            .map_err(|e| format!("{}: {e}", slot.addr))?;
        *current = Some(Arc::clone(&connection));
        Ok(connection)
    }
}

/// One peer's address and its live connection, if any.
struct PeerSlot {
    addr: String,
    connection: tokio::sync::Mutex<Option<Arc<PeerConnection>>>,
}

impl PeerSlot {
    fn new(addr: String) -> PeerSlot {
        PeerSlot { addr, connection: tokio::sync::Mutex::new(None) }
    }
}

/// Gives each group's `Raft` its view of the peers, over transport `T`.
#[derive(Clone)]
pub struct NetworkFactory<T> {
    pub group: GroupId,
    pub transport: T,
    /// While set, this node asks nobody for votes.
    pub quarantine: Quarantine,
}

/// A node in quarantine takes no part in its groups: it sends no vote
/// requests and answers no Raft request (so it neither votes nor shows a
/// leader a log gone backwards). A node whose data directory was wiped is put in
/// quarantine until its peers confirm it never held data (see the server's
/// peer checks): it has forgotten its votes and the entries it
/// acknowledged, so its vote could elect a leader missing committed writes.
#[derive(Clone, Debug, Default)]
pub struct Quarantine(Arc<std::sync::atomic::AtomicBool>);

impl Quarantine {
    pub fn set(&self, on: bool) {
        self.0.store(on, std::sync::atomic::Ordering::SeqCst);
    }
    pub fn is_on(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Raft over TCP.
pub type TcpNetworkFactory = NetworkFactory<Peers>;

pub struct Network<T> {
    group: GroupId,
    target: u64,
    transport: T,
    quarantine: Quarantine,
}

impl<T: Transport> RaftNetworkFactory<TypeConfig> for NetworkFactory<T> {
    type Network = Network<T>;

    async fn new_client(&mut self, target: u64, _node: &ShoalNode) -> Network<T> {
        Network { group: self.group, target, transport: self.transport.clone(), quarantine: self.quarantine.clone() }
    }
}

/// An entry's size on the wire, roughly.
fn entry_bytes(e: &openraft::type_config::alias::EntryOf<TypeConfig>) -> usize {
    match &e.payload {
        openraft::EntryPayload::Normal(p) => p.cmd.len() + 64,
        _ => 1024,
    }
}

/// How long an append may take: a heartbeat (no entries) openraft's soft
/// ttl, so a dead follower is noticed within a heartbeat; one carrying
/// entries also the time to ship them and for the follower to make them
/// durable (a learner catching up gets hundreds at once, and a bound of a
/// heartbeat would fail, and resend, that same batch forever).
fn append_ttl(rpc: &AppendEntriesRequest<TypeConfig>, soft_ttl: Duration) -> Duration {
    if rpc.entries.is_empty() {
        return soft_ttl;
    }
    let bytes: usize = rpc.entries.iter().map(entry_bytes).sum();
    soft_ttl + APPEND_BASE_TIMEOUT + Duration::from_millis((bytes / APPEND_BYTES_PER_MS) as u64)
}

/// An append with entries is given this long, plus
const APPEND_BASE_TIMEOUT: Duration = Duration::from_secs(1);
/// a millisecond per this many bytes it carries (10 MB/s: a slow disk).
const APPEND_BYTES_PER_MS: usize = 10_000;

/// Cuts `rpc`'s entries to a prefix of at most `MAX_APPEND_BYTES` (at least
/// one entry); false when it cut.
fn fit_append(rpc: &mut AppendEntriesRequest<TypeConfig>) -> bool {
    let size = entry_bytes;
    let mut total = 0;
    let keep = rpc
        .entries
        .iter()
        .position(|e| {
            total += size(e);
            total > MAX_APPEND_BYTES
        })
        .map_or(rpc.entries.len(), |over| over.max(1));
    let all = keep == rpc.entries.len();
    rpc.entries.truncate(keep);
    all
}

fn unexpected(what: &str) -> RPCError<TypeConfig> {
    RPCError::Network(NetworkError::from_string(format!("unexpected response to {what}")))
}

impl<T> Network<T> {
    /// A quarantined node's vote requests fail before they leave, as if
    /// the peer were unreachable.
    fn refuse_if_quarantined(&self) -> Result<(), RPCError<TypeConfig>> {
        if self.quarantine.is_on() {
            return rpc_result(self.target, Duration::ZERO, Some(Err("in quarantine: not campaigning".into())))
                .map(|_| ());
        }
        Ok(())
    }
}

impl<T: Transport> RaftNetworkV2<TypeConfig> for Network<T> {
    type SnapshotData = Bytes;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        let mut rpc = rpc;
        let sent_all = fit_append(&mut rpc);
        let last = rpc.entries.last().map(|e| e.log_id);
        let ttl = append_ttl(&rpc, option.soft_ttl());
        match self.transport.call(self.target, self.group, Request::Append(rpc), ttl).await? {
            // Only a prefix went: openraft sends the rest next.
            Response::Append(AppendEntriesResponse::Success) if !sent_all => {
                Ok(AppendEntriesResponse::PartialSuccess(last))
            }
            Response::Append(r) => Ok(r),
            _ => Err(unexpected("append_entries")),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.refuse_if_quarantined()?;
        match self.transport.call(self.target, self.group, Request::Vote(rpc), option.soft_ttl()).await? {
            Response::Vote(r) => Ok(r),
            _ => Err(unexpected("vote")),
        }
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.refuse_if_quarantined()?;
        match self.transport.call(self.target, self.group, Request::PreVote(rpc), option.soft_ttl()).await? {
            Response::Vote(r) => Ok(r),
            _ => Err(unexpected("pre_vote")),
        }
    }

    async fn transfer_leader(
        &mut self,
        rpc: TransferLeaderRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<TypeConfig>, RPCError<TypeConfig>> {
        match self.transport.call(self.target, self.group, Request::TransferLeader(rpc), option.soft_ttl()).await? {
            Response::TransferLeader(r) => Ok(r),
            _ => Err(unexpected("transfer_leader")),
        }
    }

    async fn full_snapshot(
        &mut self,
        vote: VoteOf<TypeConfig>,
        snapshot: SnapshotOf<TypeConfig, Bytes>,
        cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let send = async {
            let data = snapshot.snapshot;
            let total = data.len() as u64;
            let transfer = next_transfer_id();
            let mut install = Some((vote, snapshot.meta));
            let mut offset = 0;
            loop {
                let end = (offset + SNAPSHOT_CHUNK_BYTES).min(data.len());
                let last = end == data.len();
                let chunk = Request::SnapshotChunk {
                    transfer,
                    offset: offset as u64,
                    total,
                    // A view of the snapshot's bytes, not a copy.
                    data: data.slice(offset..end),
                    install: if last { install.take() } else { None },
                };
                // openraft's snapshot timeout is per chunk; installing a
                // large snapshot after the last one takes longer.
                let ttl =
                    if last { option.hard_ttl().max(INSTALL_TIMEOUT) } else { option.hard_ttl().max(CHUNK_TIMEOUT) };
                match (self.transport.call(self.target, self.group, chunk, ttl).await?, last) {
                    (Response::Snapshot(r), true) => return Ok(r),
                    (Response::SnapshotChunk, false) => offset = end,
                    _ => return Err(unexpected("a snapshot chunk").into()),
                }
            }
        };
        tokio::select! {
            closed = cancel => Err(StreamingError::Closed(closed)),
            sent = send => sent,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(
        incoming: &Incoming,
        transfer: u64,
        offset: u64,
        data: &[u8],
        last: bool,
    ) -> Result<Option<Bytes>, String> {
        incoming.take_chunk(7, transfer, offset, 6, Bytes::copy_from_slice(data), last)
    }

    /// Pieces in order make the whole; a piece of another transfer, or one
    /// out of place, ends the transfer (the sender starts again) instead of
    /// corrupting it; a new transfer at offset 0 replaces an abandoned one.
    #[test]
    fn snapshot_pieces_assemble_only_in_order_and_from_one_transfer() {
        let incoming = Incoming::default();
        assert_eq!(chunk(&incoming, 1, 0, b"ab", false), Ok(None));
        assert_eq!(chunk(&incoming, 1, 2, b"cd", false), Ok(None));
        assert_eq!(chunk(&incoming, 1, 4, b"ef", true), Ok(Some(Bytes::from_static(b"abcdef"))));

        assert_eq!(chunk(&incoming, 2, 0, b"ab", false), Ok(None));
        assert!(chunk(&incoming, 3, 2, b"cd", false).is_err(), "a piece of another transfer");
        assert!(chunk(&incoming, 2, 2, b"cd", false).is_err(), "the transfer was dropped");

        assert_eq!(chunk(&incoming, 4, 0, b"ab", false), Ok(None));
        assert!(chunk(&incoming, 4, 4, b"ef", true).is_err(), "a gap");
        assert_eq!(chunk(&incoming, 5, 0, b"ab", false), Ok(None));
        assert_eq!(chunk(&incoming, 6, 0, b"xy", false), Ok(None), "a new transfer replaces the old");
        assert!(chunk(&incoming, 5, 2, b"cd", false).is_err());
        assert!(chunk(&incoming, 6, 2, b"cdefgh", true).is_err(), "past the declared total");
        let huge = incoming.take_chunk(7, 8, 0, MAX_SNAPSHOT_BYTES + 1, Bytes::new(), false);
        assert!(huge.is_err(), "a declared total over the limit");
    }
}
