//! Merges: two adjacent shards whose replicas sit on the same nodes become
//! one, the left one (the inverse of a split).
//!
//! 1. The metadata group commits `StartMerge` (`CLUSTER SHOAL MERGE`, or
//!    the left shard's leader finding it and its right neighbour, born of
//!    an automatic split, small: under a quarter of the split limits
//!    together).
//! 2. The right shard's leadership moves to the node leading the left one,
//!    so one node drives the rest with both groups local.
//! 3. The right shard is sealed (`Cmd::Seal`): it refuses every write and
//!    holds no slot, so its keys are final; requests for its slots wait
//!    for the new map, then get MOVED.
//! 4. Its keys (a dump, at most `MAX_MERGE_BYTES`) go to the left shard in
//!    one entry (`Cmd::Absorb`), applied by every replica; then
//!    `FinishMerge`, and every node drops its replica of the right shard.
//!
//! A merge that cannot finish (too many bytes, a refusal) is undone: the
//! right shard is unsealed and the map cancels the merge. Every step is
//! retried from what the groups and the map say.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shoal_cluster::map::{ClusterMap, MetaCmd, MetaError, Role};
use shoal_cluster::ShardId;
use shoal_raft::transport::GroupId;
use shoal_raft::{AbsorbSpec, Cmd, Reply, SlotsHeld};
use tokio::sync::watch;

use crate::meta::{self, ChangeError};
use crate::periodic::Periodic;
use crate::state::Shared;

const TICK: Duration = Duration::from_millis(100);

/// Most bytes of keys a merge carries (one log entry; well under
/// `shoal_raft::MAX_WRITE_BYTES`).
pub const MAX_MERGE_BYTES: usize = 32 << 20;

pub async fn run(shared: Arc<Shared>, shutdown: watch::Receiver<bool>) {
    if shared.config.cluster.is_none() {
        return;
    }
    let running: Arc<Mutex<BTreeSet<ShardId>>> = Arc::default();
    let mut last_small_check = Instant::now();
    let mut periodic = Periodic::new(TICK, shutdown);
    while periodic.next().await {
        let map = shared.shards.map();
        for (&left, merge) in &map.merges {
            let right = merge.right;
            let leads = |s: ShardId| shared.shards.is_leader(GroupId::from(s));
            if leads(right) && !leads(left) {
                hand_right_to_left_leader(&shared, left, right).await;
                continue;
            }
            if !leads(left) || !leads(right) || !running.lock().expect("merges lock").insert(left) {
                continue;
            }
            let (shared, running, map) = (Arc::clone(&shared), Arc::clone(&running), Arc::clone(&map));
            tokio::spawn(async move {
                drive(&shared, &map, left, right).await;
                running.lock().expect("merges lock").remove(&left);
            });
        }
        // Every balance interval: measuring bytes walks the keys.
        if last_small_check.elapsed() < shared.config.cluster.as_ref().map_or(TICK, |c| c.balance_interval) {
            continue;
        }
        last_small_check = Instant::now();
        if let Some(cmd) = small_pair(&shared, &map) {
            match periodic.unless_stopped(meta::submit(&shared, &cmd)).await {
                Some(Ok(_)) => tracing::info!(?cmd, "two small halves of a split: merging them"),
                Some(Err(e)) => tracing::warn!(?cmd, error = %e, "automatic merge not started; will retry"),
                None => return,
            }
        }
    }
}

/// On the right shard's leader: hands its leadership to its replica on
/// the node that leads the left shard.
async fn hand_right_to_left_leader(shared: &Shared, left: ShardId, right: ShardId) {
    let replicas = shared.shards.replicas();
    let (Some(node), Some(status)) = (shared.shards.leader(GroupId::from(left)), replicas.status(GroupId::from(right)))
    else {
        return;
    };
    let Some(&to) = status.voters.iter().find(|&&v| shoal_raft::node_of(v) == u64::from(node)) else { return };
    if let Err(e) = replicas.transfer_leader(GroupId::from(right), to).await {
        tracing::warn!(right, error = %e, "cannot hand the merging shard's leadership over yet");
    }
}

/// One attempt at a merge, on the node leading both shards.
async fn drive(shared: &Shared, map: &ClusterMap, left: ShardId, right: ShardId) {
    let replicas = shared.shards.replicas();
    let (l, r) = (&map.shards[&left], &map.shards[&right]);
    let (start, end, right_end) = (*l.slots.start(), *l.slots.end(), *r.slots.end());
    let (lg, rg) = (GroupId::from(left), GroupId::from(right));
    if replicas.slots(lg) == Some(SlotsHeld::Range(start..=right_end)) {
        return finish(shared, left, right).await;
    }
    let started = Instant::now();
    let seal = Cmd::Seal { start: *r.slots.start(), end: right_end };
    match replicas.reshape(rg, seal, shared.now_ms()).await {
        Ok(Reply::Done) => {}
        Ok(reply) => return give_up(shared, left, right, &format!("{reply:?}")).await,
        Err(e) => return tracing::warn!(right, error = %e, "merge: not sealed yet; will retry"),
    }
    let (Some(db), Some(sessions)) = (replicas.db(rg), replicas.sealed_sessions(rg).await) else { return };
    let dump = db.dump(0);
    if dump.len() > MAX_MERGE_BYTES {
        let why = format!("the right shard holds {} bytes, over the {MAX_MERGE_BYTES} a merge carries", dump.len());
        return give_up(shared, left, right, &why).await;
    }
    let absorb = Cmd::Absorb(AbsorbSpec { start, end, right_end, dump, sessions });
    match replicas.reshape(lg, absorb, shared.now_ms()).await {
        Ok(Reply::Done) => {
            tracing::info!(left, right, ms = started.elapsed().as_millis() as u64, "merge applied");
            finish(shared, left, right).await
        }
        Ok(_) if replicas.slots(lg) == Some(SlotsHeld::Range(start..=right_end)) => finish(shared, left, right).await,
        Ok(reply) => give_up(shared, left, right, &format!("{reply:?}")).await,
        Err(e) => tracing::warn!(left, error = %e, "merge not applied yet; will retry"),
    }
}

async fn finish(shared: &Shared, left: ShardId, right: ShardId) {
    match meta::submit(shared, &MetaCmd::FinishMerge { left }).await {
        Ok(_) => tracing::info!(left, right, "merge finished: the right shard is gone"),
        Err(ChangeError::Refused(MetaError::UnknownMerge(_))) => {}
        Err(e) => tracing::warn!(left, error = %e, "merge applied; the map is not updated yet"),
    }
}

/// Undoes a merge that cannot finish: the right shard serves again, then
/// the map forgets the merge.
async fn give_up(shared: &Shared, left: ShardId, right: ShardId, why: &str) {
    tracing::warn!(left, right, why, "giving the merge up");
    let map = shared.shards.map();
    let Some(r) = map.shards.get(&right) else { return };
    let unseal = Cmd::Unseal { start: *r.slots.start(), end: *r.slots.end() };
    match shared.shards.replicas().reshape(GroupId::from(right), unseal, shared.now_ms()).await {
        Ok(Reply::Done) => {
            if let Err(e) = meta::submit(shared, &MetaCmd::CancelMerge { left }).await {
                tracing::warn!(left, error = %e, "cannot cancel the merge in the map yet");
            }
        }
        other => tracing::warn!(right, ?other, "cannot unseal the shard yet; will retry"),
    }
}

/// A `StartMerge` of a shard this node leads and its right neighbour, born
/// of an automatic split (an operator's splits stay), on the same nodes,
/// idle of other changes and together under a quarter of the split
/// limits, while the cluster has more shards than up nodes.
fn small_pair(shared: &Shared, map: &ClusterMap) -> Option<MetaCmd> {
    let cluster = shared.config.cluster.as_ref()?;
    let up = map.nodes.values().filter(|n| n.state == shoal_cluster::map::NodeState::Up).count();
    if map.shards.len() <= up || (cluster.shard_max_keys == 0 && cluster.shard_max_bytes == 0) {
        return None;
    }
    for (&right, info) in map.shards.iter().filter(|(_, s)| s.born_automatically) {
        // Its left neighbour: the shard it was split from, or whatever
        // took that one's place since.
        let next_to =
            |l: &shoal_cluster::map::ShardInfo| u32::from(*l.slots.end()) + 1 == u32::from(*info.slots.start());
        let Some((&left, _)) = map.shards.iter().find(|(_, l)| next_to(l)) else { continue };
        let led = |s: ShardId| shared.shards.is_leader(GroupId::from(s));
        // The right shard's size from this node's replica of it (they are
        // co-located); its leadership moves here once the merge starts.
        if map.busy(left) || map.busy(right) || !map.co_located(left, right) || !led(left) {
            continue;
        }
        let (Some(a), Some(b)) = (shared.shards.db(GroupId::from(left)), shared.shards.db(GroupId::from(right))) else {
            continue;
        };
        let keys = (a.len() + b.len()) as u64;
        let small_keys = cluster.shard_max_keys == 0 || keys < cluster.shard_max_keys / 4;
        // Bytes only for shards already small by keys (a walk over them).
        let small = small_keys && (cluster.shard_max_bytes == 0 || a.bytes() + b.bytes() < cluster.shard_max_bytes / 4);
        let voters = |s: ShardId| map.shards[&s].replicas.values().all(|&r| r == Role::Voter);
        if small && voters(left) && voters(right) {
            return Some(MetaCmd::StartMerge { left, right });
        }
    }
    None
}
