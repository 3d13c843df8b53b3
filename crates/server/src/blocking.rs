//! Blocking pops (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP, BZPOPMIN,
//! BZPOPMAX, BZMPOP), served by the shard's leader.
//!
//! A blocking pop is first replicated as the plain pop it is. When that
//! found nothing, the client waits here: each time the group applies
//! entries on this node, the keys are looked at locally, and only when
//! one holds something is the pop replicated again (an empty look costs
//! no log entry). Clients blocked on a key are served in the order they
//! blocked (`Registry`: only the first client waiting for a key's type may
//! pop from it), and every element goes to exactly one of them. The wait ends with the timeout (the nil the
//! first attempt gave), with `-MOVED` when this node stops leading the
//! group (nothing was popped for the client; it retries at the new
//! leader), or when the client goes away (nothing is popped for it).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use shoal_engine::{Kind, Out, WriteOp};
use shoal_raft::transport::GroupId;
use shoal_raft::{ReplicaError, Reply};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::sync::Notify;

use crate::exec::Blocking;
use crate::state::Shared;

/// How often a blocked client checks that this node still leads the group,
/// when nothing is applied meanwhile.
const LEADER_CHECK: Duration = Duration::from_millis(100);

/// The clients blocked on this node, in the order they blocked on each
/// key: only the first client of a key that holds something may pop from
/// it, so clients are served in the order they blocked, as in Redis.
#[derive(Default)]
pub struct Registry {
    inner: Mutex<Queues>,
}

#[derive(Default)]
struct Queues {
    /// Per key, the clients waiting and the type each waits for.
    by_key: HashMap<(GroupId, Bytes), VecDeque<(u64, Kind)>>,
    /// Client id → its CLIENT UNBLOCK signal.
    clients: HashMap<u64, Arc<Unblock>>,
}

/// CLIENT UNBLOCK's signal to a blocked client.
#[derive(Default)]
struct Unblock {
    signal: Notify,
    /// Set before `signal`: whether to end with an error (else as a timeout).
    error: AtomicBool,
}

impl Registry {
    /// CLIENT UNBLOCK: whether `client` was blocked.
    pub fn unblock(&self, client: i64, error: bool) -> bool {
        let queues = self.inner.lock().expect("blocked registry lock");
        let Some(unblock) = u64::try_from(client).ok().and_then(|c| queues.clients.get(&c)) else { return false };
        unblock.error.store(error, Ordering::SeqCst);
        unblock.signal.notify_one();
        true
    }

    fn enter(&self, client: u64, group: GroupId, keys: &[Bytes], kind: Kind) -> Arc<Unblock> {
        let mut queues = self.inner.lock().expect("blocked registry lock");
        for key in keys {
            let queue = queues.by_key.entry((group, key.clone())).or_default();
            if !queue.iter().any(|(c, _)| *c == client) {
                queue.push_back((client, kind));
            }
        }
        Arc::clone(queues.clients.entry(client).or_default())
    }

    fn leave(&self, client: u64, group: GroupId, keys: &[Bytes]) {
        let mut queues = self.inner.lock().expect("blocked registry lock");
        for key in keys {
            let slot = (group, key.clone());
            if let Some(queue) = queues.by_key.get_mut(&slot) {
                queue.retain(|(c, _)| *c != client);
                if queue.is_empty() {
                    queues.by_key.remove(&slot);
                }
            }
        }
        queues.clients.remove(&client);
    }

    /// Whether clients already wait, for the same type, on one of the keys
    /// a new blocking pop would take from.
    pub fn waiting_on(&self, group: GroupId, pop: &Blocking) -> bool {
        let queues = self.inner.lock().expect("blocked registry lock");
        pop.keys.iter().any(|key| {
            queues.by_key.get(&(group, key.clone())).is_some_and(|q| q.iter().any(|(_, kind)| *kind == pop.kind))
        })
    }

    /// Whether some client waiting in `group` could pop now: one of its
    /// keys holds the type some client waits for there.
    fn someone_can_pop(&self, group: GroupId, db: &shoal_engine::Db, now: shoal_engine::Millis) -> bool {
        let queues = self.inner.lock().expect("blocked registry lock");
        queues.by_key.iter().filter(|((g, _), _)| *g == group).any(|((_, key), waiting)| {
            let held = db.kind(key, now);
            waiting.iter().any(|(_, kind)| held == Some(*kind))
        })
    }

    /// Whether `client` is the first in line for `key` among the clients
    /// waiting for `kind` (a list waiter does not hold up a sorted-set one).
    fn first(&self, client: u64, group: GroupId, key: &Bytes, kind: Kind) -> bool {
        let queues = self.inner.lock().expect("blocked registry lock");
        let queue = queues.by_key.get(&(group, key.clone()));
        queue.and_then(|q| q.iter().find(|(_, k)| *k == kind)).map(|(c, _)| *c) == Some(client)
    }
}

/// A client's place in the registry, and in INFO's `blocked_clients`, for
/// as long as it waits.
struct Entered<'a> {
    shared: &'a Shared,
    client: u64,
    group: GroupId,
    keys: &'a [Bytes],
    unblock: Arc<Unblock>,
}

impl<'a> Entered<'a> {
    fn new(shared: &'a Shared, client: u64, group: GroupId, keys: &'a [Bytes], kind: Kind) -> Entered<'a> {
        shared.stats.blocked_clients.fetch_add(1, Ordering::Relaxed);
        let unblock = shared.blocked.enter(client, group, keys, kind);
        Entered { shared, client, group, keys, unblock }
    }
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        self.shared.blocked.leave(self.client, self.group, self.keys);
        self.shared.stats.blocked_clients.fetch_sub(1, Ordering::Relaxed);
        // The next client in line may be able to pop now.
        if let Some(applied) = self.shared.shards.replicas().applied(self.group) {
            applied.notify_waiters();
        }
    }
}

/// How long a write's reply waits for the blocked clients it can serve.
const SERVE_WAITERS_FIRST: Duration = Duration::from_secs(1);

/// Called with a write's reply in hand, before it is sent: while a client
/// blocked in `group` could pop what the write left (and what such pops
/// leave in turn, BLMOVE into a watched list), waits for the pops, up to
/// `SERVE_WAITERS_FIRST`. Redis serves blocked clients before its next
/// command; this way at least the writer's next command comes after them.
pub async fn serve_waiters_first(shared: &Shared, group: GroupId) {
    if shared.stats.blocked_clients.load(Ordering::Relaxed) == 0 {
        return;
    }
    let deadline = tokio::time::Instant::now() + SERVE_WAITERS_FIRST;
    let replicas = shared.shards.replicas();
    loop {
        let (Some(applied), Some(db)) = (replicas.applied(group), shared.shards.db(group)) else { return };
        let notified = applied.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if !shared.blocked.someone_can_pop(group, &db, shared.now_ms()) {
            return;
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            return;
        }
    }
}

pub enum Waited {
    /// The pop's result: what it popped, the timeout's nil, or an error.
    Result(Result<Reply, ReplicaError>),
    /// The client closed its connection while it waited.
    Closed,
}

/// Whether a pop's result is "nothing there" (nil or the null array).
pub fn found_nothing(outcome: &Result<Reply, ReplicaError>) -> bool {
    matches!(outcome, Ok(Reply::Out(Out::Nil | Out::NilArray)))
}

/// Waits until the pop finds something, times out, or cannot go on here.
/// Bytes the client sends meanwhile (pipelined commands) are kept in
/// `input` for after.
#[allow(clippy::too_many_arguments)]
pub async fn wait(
    shared: &Shared,
    client: u64,
    stream: &mut TcpStream,
    input: &mut BytesMut,
    group: GroupId,
    op: WriteOp,
    blocking: Blocking,
    nothing: Result<Reply, ReplicaError>,
) -> Waited {
    let deadline =
        (blocking.timeout_ms > 0).then(|| tokio::time::Instant::now() + Duration::from_millis(blocking.timeout_ms));
    let replicas = shared.shards.replicas();
    let mut client_open = true;
    let entered = Entered::new(shared, client, group, &blocking.keys, blocking.kind);
    loop {
        let (Some(applied), Some(db)) = (replicas.applied(group), shared.shards.db(group)) else {
            return Waited::Result(Err(ReplicaError::NotLeader { leader: None }));
        };
        let notified = applied.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if !shared.shards.is_leader(group) {
            let leader = shared.shards.leader(group).map(u64::from);
            return Waited::Result(Err(ReplicaError::NotLeader { leader }));
        }
        let now = shared.now_ms();
        let ready =
            |k: &Bytes| db.kind(k, now) == Some(blocking.kind) && shared.blocked.first(client, group, k, blocking.kind);
        if blocking.keys.iter().any(ready) {
            let mut batch = replicas.submit_many(group, [(op.clone(), None)], now).await;
            let pop = batch.next();
            let late = || Err(ReplicaError::Uncertain("not committed within --write-timeout-ms".into()));
            let outcome = tokio::time::timeout(shared.config.write_timeout, pop).await.unwrap_or_else(|_| late());
            if !found_nothing(&outcome) {
                return Waited::Result(outcome);
            }
            // Another client's pop took it first: wait again.
            continue;
        }
        let timeout = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let unblocked = entered.unblock.signal.notified();
        tokio::select! {
            _ = notified => {}
            _ = unblocked => {
                return Waited::Result(if entered.unblock.error.load(Ordering::SeqCst) {
                    Ok(Reply::Out(Out::Err(shoal_engine::Fault::other("UNBLOCKED client unblocked via CLIENT UNBLOCK"))))
                } else {
                    nothing
                });
            }
            _ = timeout => return Waited::Result(nothing),
            _ = tokio::time::sleep(LEADER_CHECK) => {}
            read = stream.read_buf(input), if client_open => match read {
                Ok(0) | Err(_) => return Waited::Closed,
                // Pipelined behind the pop: kept for after it.
                Ok(_) => client_open = input.len() < shared.config.limits.decode.max_bulk_bytes,
            },
        }
    }
}
