//! Blocking pops (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP, BZPOPMIN,
//! BZPOPMAX, BZMPOP), served by the shard's leader.
//!
//! A blocking pop is first replicated as the plain pop it is. When that
//! found nothing, the client waits here: each time the group applies
//! entries on this node, the keys are looked at locally, and only when
//! one holds something is the pop replicated again (an empty look costs
//! no log entry). Clients blocked on the same key race for its elements
//! in the order their pops reach the log, so every element goes to
//! exactly one of them. The wait ends with the timeout (the nil the
//! first attempt gave), with `-MOVED` when this node stops leading the
//! group (nothing was popped for the client; it retries at the new
//! leader), or when the client goes away (nothing is popped for it).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use shoal_engine::{Out, WriteOp};
use shoal_raft::transport::GroupId;
use shoal_raft::{Reply, ReplicaError};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use crate::exec::Blocking;
use crate::state::Shared;

/// How often a blocked client checks that this node still leads the group,
/// when nothing is applied meanwhile.
const LEADER_CHECK: Duration = Duration::from_millis(100);

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
pub async fn wait(
    shared: &Shared,
    stream: &mut TcpStream,
    input: &mut BytesMut,
    group: GroupId,
    op: WriteOp,
    blocking: Blocking,
    nothing: Result<Reply, ReplicaError>,
) -> Waited {
    let deadline = (blocking.timeout_ms > 0)
        .then(|| tokio::time::Instant::now() + Duration::from_millis(blocking.timeout_ms));
    let replicas = shared.shards.replicas();
    let mut client_open = true;
    let _counted = BlockedCount::new(&shared.stats.blocked_clients);
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
        if blocking.keys.iter().any(|k| db.kind(k, now) == Some(blocking.kind)) {
            let outcome = replicas.submit_many(group, [(op.clone(), None)], now).await.next().await;
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
        tokio::select! {
            _ = notified => {}
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

/// Counts a client in INFO's `blocked_clients` for as long as it lives.
struct BlockedCount<'a>(&'a AtomicUsize);

impl<'a> BlockedCount<'a> {
    fn new(count: &'a AtomicUsize) -> BlockedCount<'a> {
        count.fetch_add(1, Ordering::Relaxed);
        BlockedCount(count)
    }
}

impl Drop for BlockedCount<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
