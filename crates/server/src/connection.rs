//! One client connection: read, decode every complete request in the buffer,
//! execute each, encode the replies into one output buffer, write it with a
//! single syscall, repeat. Replies leave in request order and a pipelined
//! batch costs one flush (more only when the output passes
//! `output_flush_bytes`).
//!
//! Writes are replicated, so their replies come later: each is queued, with
//! any reply after it, in `pending`. When the queue is drained (at the end
//! of the batch, before any read, or when it is full) the queued writes are
//! handed to Raft first, one message per group with that group's writes in
//! order, so a pipelined batch costs one wake-up of each Raft core and its
//! writes share appends and fsyncs. Draining in order means a read sees
//! this connection's earlier writes. A read
//! on a group's leader first takes a ReadIndex barrier, once per group per
//! batch: every request of the batch arrived before it, so one barrier
//! makes all of them linearizable.
//!
//! Backpressure is natural: while the socket will not take our output, we do
//! not read more requests, and at most `MAX_PENDING` replies wait at once.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use shoal_engine::slot::Slot;
use shoal_engine::WriteOp;
use shoal_proto::{Frame, ProtocolError, RequestDecoder};
use shoal_raft::transport::GroupId;
use shoal_raft::{PendingBatch, ReplicaError, WriteTag};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::exec::{self, Outcome, Prepared, Shape};
use crate::route;
use crate::state::{Closing, Session, Shared};
use crate::stats::{BatchCounts, Stats};

/// Bytes read from the socket per call, at least.
const READ_CHUNK: usize = 16 * 1024;
/// Replies waiting on writes before the batch stops to drain them.
const MAX_PENDING: usize = 1024;
/// How long a request for a slot its shard just gave away (a split) waits
/// for the map that routes it to the new shard, before `-TRYAGAIN`.
const SPLIT_MAP_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// A write as handed to its group: the op and the client's tag.
type TaggedOp = (WriteOp, Option<WriteTag>);

/// The reply for a request whose shard gave its slot away (it split after
/// routing sent the request there; nothing was applied): once the map
/// routes the slot to the new shard, MOVED to its leader.
async fn gave_away(shared: Arc<Shared>, group: GroupId, slot: Option<Slot>) -> Frame {
    let shards = &shared.shards;
    let Some(slot) = slot else {
        return Frame::error("TRYAGAIN the shard split while the command ran; nothing was applied");
    };
    match shards.wait_for_map(slot, group, SPLIT_MAP_WAIT).await {
        Some(now) => {
            let node = shards.leader(now).unwrap_or_else(|| shards.layout().shard_of_slot(slot).primary());
            route::moved(shards, slot, node)
        }
        None => Frame::error(format!("TRYAGAIN slot {slot} is moving to a new shard (a split); retry shortly")),
    }
}

/// A reply in the ordered queue.
enum Pending {
    Ready(Frame),
    /// The next result of `group`'s batch (writes are submitted per group,
    /// in order, when the queue is settled).
    Write {
        group: GroupId,
        shape: Shape,
        slot: Option<Slot>,
        /// The command, for its failed-call count.
        name: &'static str,
        /// A blocking pop: the op to run again once a key fills.
        blocking: Option<(WriteOp, exec::Blocking)>,
        /// A blocking pop not submitted: others were waiting on its keys.
        behind: bool,
    },
    /// FLUSHALL: `OK` once every group's write is applied.
    All(Vec<PendingBatch>),
    /// EXEC: the transaction's result in `group`'s batch, and how each
    /// element of the reply is made.
    Exec {
        group: GroupId,
        slot: Option<Slot>,
        parts: Vec<exec::transaction::Part>,
    },
}

/// Why a connection ended, for the log.
#[derive(Debug)]
pub enum Ended {
    ClientClosed,
    Quit,
    Shutdown,
    ProtocolError(ProtocolError),
    OutputLimit(usize),
    Io(std::io::Error),
}

pub struct Connection {
    stream: TcpStream,
    shared: Arc<Shared>,
    session: Session,
    decoder: RequestDecoder,
    input: BytesMut,
    output: BytesMut,
    pending: VecDeque<Pending>,
    /// Writes queued in `pending` and not yet handed to Raft, in order.
    unsubmitted: Vec<(GroupId, WriteOp, Option<WriteTag>)>,
    /// Each group's submitted batch, answering its `Pending::Write`s in order.
    batches: HashMap<GroupId, PendingBatch>,
    /// Groups whose ReadIndex barrier this batch already took.
    barriers: Vec<GroupId>,
    /// Command and error counts since the last flush into `Stats`.
    counts: BatchCounts,
}

impl Connection {
    pub fn new(stream: TcpStream, shared: Arc<Shared>) -> Connection {
        let show = |a: std::io::Result<std::net::SocketAddr>| a.map_or_else(|_| "?".to_string(), |a| a.to_string());
        let session = Session::new(shared.next_client_id(), show(stream.peer_addr()), show(stream.local_addr()));
        let decoder = RequestDecoder::new(shared.config.limits.decode);
        Connection {
            stream,
            shared,
            session,
            decoder,
            input: BytesMut::with_capacity(READ_CHUNK),
            output: BytesMut::with_capacity(READ_CHUNK),
            pending: VecDeque::new(),
            unsubmitted: Vec::new(),
            batches: HashMap::new(),
            barriers: Vec::new(),
            counts: BatchCounts::default(),
        }
    }

    /// Serves the client until it leaves, misbehaves, or `shutdown` fires.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> Ended {
        loop {
            if let Some(ended) = self.process_buffered().await {
                return ended;
            }
            if self.input.capacity() - self.input.len() < READ_CHUNK {
                self.input.reserve(READ_CHUNK);
            }
            let read = tokio::select! {
                read = self.stream.read_buf(&mut self.input) => read,
                _ = shutdown.wait_for(|stop| *stop) => return Ended::Shutdown,
            };
            match read {
                Ok(0) => return Ended::ClientClosed,
                Ok(n) => Stats::add(&self.shared.stats.net_input_bytes, n as u64),
                Err(e) => return Ended::Io(e),
            }
        }
    }

    /// Executes every complete request in the input buffer and writes the
    /// replies. Returns `Some` when the connection must close.
    async fn process_buffered(&mut self) -> Option<Ended> {
        // One clock reading per batch, as Redis caches its time per event
        // loop iteration: commands pipelined together see the same `now`
        // (refreshed after anything that waits).
        let mut now = self.shared.now_ms();
        let mut executed = 0u64;
        self.barriers.clear();
        let ended = loop {
            match self.decoder.decode(&mut self.input) {
                Ok(Some(args)) => {
                    executed += 1;
                    let ready = match exec::prepare(&self.shared, &mut self.session, args) {
                        Prepared::Reply(frame, name) => {
                            if let Some(name) = name {
                                self.counts.command(name).rejected += 1;
                            }
                            // Refused while queueing: EXEC will abort.
                            if let Some(tx) = self.session.multi.as_mut() {
                                tx.dirty |= matches!(frame, Frame::Error(_));
                            }
                            if let Some(ended) = self.reply(frame).await {
                                break Some(ended);
                            }
                            continue;
                        }
                        Prepared::Ready(ready) => ready,
                    };
                    if self.session.multi.is_some() && ready.queues() {
                        let max_bytes = self.shared.config.limits.max_write_bytes;
                        let frame = if exec::transaction::queue(&mut self.session, ready, max_bytes) {
                            Frame::simple("QUEUED")
                        } else {
                            Frame::error("ERR too many commands or bytes queued in this transaction; it will abort")
                        };
                        if let Some(ended) = self.reply(frame).await {
                            break Some(ended);
                        }
                        continue;
                    }
                    if ready.settles() {
                        let waited = !self.pending.is_empty();
                        if let Some(ended) = self.settle().await {
                            break Some(ended);
                        }
                        let barrier =
                            ready.target.filter(|t| t.serve.needs_barrier() && !self.barriers.contains(&t.group));
                        if let Some(target) = barrier {
                            let replicas = self.shared.shards.replicas();
                            if let Err(e) = replicas.read_barrier(target.group).await {
                                let frame = self.replica_error(e, Some(target.slot));
                                if let Some(ended) = self.reply(frame).await {
                                    break Some(ended);
                                }
                                continue;
                            }
                            self.barriers.push(target.group);
                            now = self.shared.now_ms();
                        } else if waited {
                            now = self.shared.now_ms();
                        }
                    }
                    let name = ready.name;
                    // A keyed read checks its shard still holds the slot
                    // before and after reading (a split may apply between).
                    let read_at = ready.target.filter(|_| !ready.write);
                    if let Some(target) = read_at.filter(|t| !self.owns(t)) {
                        let frame = gave_away(Arc::clone(&self.shared), target.group, Some(target.slot)).await;
                        if let Some(ended) = self.reply(frame).await {
                            break Some(ended);
                        }
                        continue;
                    }
                    let started = std::time::Instant::now();
                    let mut outcome = exec::run(&self.shared, &mut self.session, ready, now);
                    if let Some(target) = read_at.filter(|t| !self.owns(t)) {
                        outcome =
                            Outcome::Reply(gave_away(Arc::clone(&self.shared), target.group, Some(target.slot)).await);
                    }
                    let totals = self.counts.command(name);
                    totals.calls += 1;
                    totals.usec += started.elapsed().as_micros() as u64;
                    if matches!(outcome, Outcome::Reply(Frame::Error(_))) {
                        totals.failed += 1;
                    }
                    if let Some(ended) = self.outcome(outcome, now, name).await {
                        break Some(ended);
                    }
                    if self.output.len() >= self.shared.config.limits.output_flush_bytes {
                        if let Err(e) = self.flush().await {
                            break Some(Ended::Io(e));
                        }
                        // The flush may have waited on a slow reader: the
                        // rest of the batch must not run on a stale clock.
                        now = self.shared.now_ms();
                    }
                }
                Ok(None) => break self.settle().await,
                Err(e) => {
                    Stats::add(&self.shared.stats.protocol_errors, 1);
                    let settled = self.settle().await;
                    Frame::Error(Bytes::from(e.to_string())).encode(self.session.protocol, &mut self.output);
                    break Some(settled.unwrap_or(Ended::ProtocolError(e)));
                }
            }
        };
        let stats = &self.shared.stats;
        Stats::add(&stats.commands_processed, executed);
        Stats::add(&stats.keyspace_hits, std::mem::take(&mut self.session.hits));
        Stats::add(&stats.keyspace_misses, std::mem::take(&mut self.session.misses));
        self.counts.flush(&stats.commands);
        match self.flush().await {
            Ok(()) => ended,
            Err(e) => Some(ended.unwrap_or(Ended::Io(e))),
        }
    }

    /// Queues a command's writes, or queues/encodes its reply.
    async fn outcome(&mut self, outcome: Outcome, now: shoal_engine::Millis, name: &'static str) -> Option<Ended> {
        if matches!(outcome, Outcome::Write(_) | Outcome::WriteAll(_) | Outcome::Exec(_)) {
            if let Some(refused) = self.shared.refuse_write() {
                return self.reply(refused).await;
            }
        }
        let pending = match outcome {
            Outcome::Reply(frame) => return self.reply(frame).await,
            Outcome::Admin(admin) => {
                // Rare and slow (a committed map change): the connection's
                // earlier replies go first, then this one is awaited.
                if let Some(ended) = self.settle().await {
                    return Some(ended);
                }
                let frame = exec::admin::run(&self.shared, admin).await;
                return self.reply(frame).await;
            }
            Outcome::Write(w) => {
                let (bytes, max) = (w.op.encoded_len(), self.shared.config.limits.max_write_bytes);
                if bytes > max {
                    let message = format!(
                        "ERR a write of {bytes} bytes is over --max-write-bytes ({max}): one write must fit one replicated log entry"
                    );
                    return self.reply(Frame::error(message)).await;
                }
                // A blocking pop behind clients already waiting on its keys
                // waits in line instead of trying first (Redis's fairness).
                let behind = w.blocking.as_ref().is_some_and(|b| self.shared.blocked.waiting_on(w.group, b));
                let blocking = w.blocking.map(|b| (w.op.clone(), b));
                if !behind {
                    self.unsubmitted.push((w.group, w.op, w.tag));
                }
                Pending::Write { group: w.group, shape: w.shape, slot: w.slot, name, blocking, behind }
            }
            Outcome::Exec(exec) => {
                let (bytes, max) = (exec.op.encoded_len(), self.shared.config.limits.max_write_bytes);
                if bytes > max {
                    let message = format!(
                        "EXECABORT the transaction's {bytes} bytes are over --max-write-bytes ({max}): it must fit one replicated log entry"
                    );
                    return self.reply(Frame::error(message)).await;
                }
                self.unsubmitted.push((exec.group, exec.op, exec.tag));
                Pending::Exec { group: exec.group, slot: exec.slot, parts: exec.parts }
            }
            Outcome::WriteAll(ops) => {
                // Earlier writes of this connection go first.
                self.submit(now).await;
                let replicas = self.shared.shards.replicas();
                let mut writes = Vec::with_capacity(ops.len());
                for (group, op) in ops {
                    writes.push(replicas.submit_many(group, [(op, None)], now).await);
                }
                Pending::All(writes)
            }
        };
        self.pending.push_back(pending);
        if self.pending.len() >= MAX_PENDING {
            return self.settle().await;
        }
        None
    }

    /// A reply for the client: encoded now when nothing is queued ahead
    /// of it, queued otherwise.
    async fn reply(&mut self, frame: Frame) -> Option<Ended> {
        if self.pending.is_empty() {
            return self.encode(frame);
        }
        self.pending.push_back(Pending::Ready(frame));
        if self.pending.len() >= MAX_PENDING {
            return self.settle().await;
        }
        None
    }

    /// Hands the queued writes to their groups: one message per group, each
    /// group's writes in order (writes to different groups touch different
    /// keys, so their relative order does not matter).
    async fn submit(&mut self, now: shoal_engine::Millis) {
        if self.unsubmitted.is_empty() {
            return;
        }
        debug_assert!(self.batches.is_empty(), "a batch is submitted only after the last was settled");
        let mut by_group: Vec<(GroupId, Vec<TaggedOp>)> = Vec::new();
        for (group, op, tag) in self.unsubmitted.drain(..) {
            match by_group.iter_mut().find(|(g, _)| *g == group) {
                Some((_, writes)) => writes.push((op, tag)),
                None => by_group.push((group, vec![(op, tag)])),
            }
        }
        let replicas = self.shared.shards.replicas();
        for (group, writes) in by_group {
            let batch = replicas.submit_many(group, writes, now).await;
            self.batches.insert(group, batch);
        }
    }

    /// Waits for every queued write, in order, encoding each reply.
    async fn settle(&mut self) -> Option<Ended> {
        if self.pending.is_empty() {
            // Nothing queued (so nothing unsubmitted): the common case for
            // a read, with no clock reading.
            debug_assert!(self.unsubmitted.is_empty());
            return None;
        }
        self.submit(self.shared.now_ms()).await;
        // A group that lost its quorum would keep these waiting forever: past
        // the deadline each is answered as uncertain (it was proposed).
        let deadline = tokio::time::Instant::now() + self.shared.config.write_timeout;
        let late = || ReplicaError::Uncertain("not committed within --write-timeout-ms".into());
        while let Some(pending) = self.pending.pop_front() {
            let frame = match pending {
                Pending::Ready(frame) => frame,
                Pending::Write { group, shape, slot, name, blocking, behind } => {
                    let outcome = match &blocking {
                        Some((_, wait)) if behind => Ok(shoal_raft::Reply::Out(wait.nothing.clone())),
                        _ => {
                            let batch = self.batches.get_mut(&group).expect("a queued write's group was submitted");
                            tokio::time::timeout_at(deadline, batch.next()).await.unwrap_or_else(|_| Err(late()))
                        }
                    };
                    let outcome = match blocking {
                        Some((op, wait)) if crate::blocking::found_nothing(&outcome) => {
                            // The replies before this one leave now, not
                            // when the wait ends (LPUSH then BLPOP answers
                            // the LPUSH at once).
                            if let Err(e) = self.flush().await {
                                return Some(Ended::Io(e));
                            }
                            let stream = &mut self.stream;
                            let (shared, client) = (&self.shared, self.session.id);
                            match crate::blocking::wait(
                                shared,
                                client,
                                stream,
                                &mut self.input,
                                group,
                                op,
                                wait,
                                outcome,
                            )
                            .await
                            {
                                crate::blocking::Waited::Result(outcome) => outcome,
                                crate::blocking::Waited::Closed => {
                                    self.pending.clear();
                                    self.batches.clear();
                                    return Some(Ended::ClientClosed);
                                }
                            }
                        }
                        _ => {
                            if outcome.is_ok() {
                                crate::blocking::serve_waiters_first(&self.shared, group).await;
                            }
                            outcome
                        }
                    };
                    let frame = match outcome {
                        Ok(shoal_raft::Reply::NotOwned) => gave_away(Arc::clone(&self.shared), group, slot).await,
                        Ok(result) => exec::write::reply(shape, result),
                        Err(e) => self.replica_error(e, slot),
                    };
                    if matches!(frame, Frame::Error(_)) {
                        self.counts.command(name).failed += 1;
                    }
                    frame
                }
                Pending::Exec { group, slot, parts } => {
                    let batch = self.batches.get_mut(&group).expect("a queued write's group was submitted");
                    let outcome = tokio::time::timeout_at(deadline, batch.next()).await.unwrap_or_else(|_| Err(late()));
                    if outcome.is_ok() {
                        crate::blocking::serve_waiters_first(&self.shared, group).await;
                    }
                    match outcome {
                        Ok(shoal_raft::Reply::NotOwned) => gave_away(Arc::clone(&self.shared), group, slot).await,
                        Ok(reply) => exec::transaction::reply(parts, reply),
                        Err(e) => self.replica_error(e, slot),
                    }
                }
                Pending::All(writes) => {
                    let mut outcomes = Vec::with_capacity(writes.len());
                    for mut write in writes {
                        let outcome = tokio::time::timeout_at(deadline, write.next()).await;
                        outcomes.push(outcome.unwrap_or_else(|_| Err(late())).map(|_| ()));
                    }
                    self.all_reply(outcomes)
                }
            };
            if let Some(ended) = self.encode(frame) {
                // The rest still must be awaited for their side effects
                // to be known, but nobody will read their replies.
                self.pending.clear();
                self.batches.clear();
                return Some(ended);
            }
        }
        self.batches.clear();
        None
    }

    /// FLUSHALL's reply from each group's outcome: `OK` when all applied;
    /// a promise of "nothing applied" only when no group applied it.
    fn all_reply(&self, outcomes: Vec<Result<(), ReplicaError>>) -> Frame {
        let applied = outcomes.iter().filter(|o| o.is_ok()).count();
        match outcomes.into_iter().find_map(Result::err) {
            None => Frame::OK,
            Some(e @ ReplicaError::Uncertain(_)) => self.replica_error(e, None),
            Some(_) if applied > 0 => Frame::error(format!(
                "UNCERTAIN applied in {applied} of the groups led here, not in the others; retry to finish"
            )),
            Some(e) => self.replica_error(e, None),
        }
    }

    /// Whether the target's group here still holds its slot.
    fn owns(&self, target: &route::Target) -> bool {
        self.shared.shards.replicas().owns(target.group, target.slot)
    }

    /// The reply for a write or read the group could not take.
    fn replica_error(&self, e: ReplicaError, slot: Option<Slot>) -> Frame {
        let shards = &self.shared.shards;
        match (e, slot) {
            (ReplicaError::NotLeader { leader: Some(leader) }, Some(slot)) => {
                u32::try_from(leader).map_or_else(|_| route::no_leader(slot), |l| route::moved(shards, slot, l))
            }
            (ReplicaError::NotLeader { leader: None }, Some(slot)) => route::no_leader(slot),
            (ReplicaError::NotLeader { .. }, None) => {
                Frame::error("TRYAGAIN leadership moved while the command ran; nothing was applied")
            }
            (ReplicaError::Uncertain(why), _) => Frame::error(format!(
                "UNCERTAIN the write may or may not have been applied ({why}); read the key before retrying"
            )),
            (ReplicaError::Unavailable(why), _) => {
                Frame::error(format!("TRYAGAIN the shard cannot serve this now ({why}); nothing was applied"))
            }
            (ReplicaError::NoSuchGroup(group), _) => Frame::error(format!("ERR group {group} is not held here")),
            (e @ ReplicaError::TooLarge(_), _) => Frame::error(format!("ERR {e}")),
        }
    }

    /// Encodes one reply. Its size is checked before encoding, so an
    /// oversized reply is never built: it is dropped and closing is the
    /// limit. Earlier replies still go out.
    fn encode(&mut self, frame: Frame) -> Option<Ended> {
        let size = frame.size_bound();
        if size > self.shared.config.limits.max_output_bytes {
            return Some(Ended::OutputLimit(size));
        }
        let before = self.output.len();
        if let Frame::Error(text) = &frame {
            self.counts.error(text);
        }
        frame.encode(self.session.protocol, &mut self.output);
        match self.session.closing {
            Closing::No => None,
            Closing::AfterReply => Some(Ended::Quit),
            Closing::WithoutReply => {
                self.output.truncate(before);
                Some(Ended::Shutdown)
            }
        }
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        if self.output.is_empty() {
            return Ok(());
        }
        self.stream.write_all(&self.output).await?;
        Stats::add(&self.shared.stats.net_output_bytes, self.output.len() as u64);
        self.output.clear();
        Ok(())
    }
}
