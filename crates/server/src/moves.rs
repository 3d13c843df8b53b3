//! Replica moves: planned by the metadata leader, carried out by each
//! shard's leader.
//!
//! Every tick, on every node:
//! - the metadata leader asks the planner (`shoal_cluster::plan`) for the
//!   next command (drain, spread replicas, spread preferred leaders) and
//!   commits it;
//! - for each move in the map whose shard this node leads, a task runs
//!   `Replicas::move_replica` (learner, catch-up, joint consensus), then
//!   reports `FinishMove` to the metadata leader. Each step follows from
//!   the group's own membership, so a move interrupted by a crash or a
//!   leader change is picked up by the shard's next leader where it stood.
//!
//! A move whose target node stays unreachable for `TARGET_DOWN_FOR` while
//! it is still a learner is cancelled: the learner leaves the group, then
//! `CancelMove` drops it from the map. A target that already votes is never
//! cancelled: the move finishes instead.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shoal_cluster::map::{node_of, ClusterMap, MetaCmd, MetaError, Move, MoveId};
use shoal_cluster::plan::{self, Policy};
use shoal_cluster::{NodeNumber, ShardId};
use shoal_raft::transport::GroupId;
use shoal_raft::{MoveProgress, ShowId};
use tokio::sync::watch;

use crate::meta::{self, ChangeError, META_GROUP};
use crate::periodic::Periodic;
use crate::state::Shared;

/// How often moves are looked at.
const TICK: Duration = Duration::from_millis(250);

/// How long a move's target may catch up before its promotion is tried
/// again (each try goes on from where the last stopped).
const CATCH_UP: Duration = Duration::from_secs(60);

/// A move whose target is unreachable this long, still a learner, is
/// cancelled.
const TARGET_DOWN_FOR: Duration = Duration::from_secs(10);

pub async fn run(shared: Arc<Shared>, shutdown: watch::Receiver<bool>) {
    let Some(cluster) = shared.config.cluster.clone() else { return };
    let policy = Policy { balance: cluster.balance, max_moves: cluster.max_concurrent_moves };
    // One attempt at a time per shard (a move and a later one of the same
    // shard must never run side by side on one leader).
    let running: Arc<Mutex<BTreeSet<ShardId>>> = Arc::default();
    let mut down_since: HashMap<MoveId, Instant> = HashMap::new();
    let mut last_plan = Instant::now();
    let mut last_strays = Instant::now();
    let mut periodic = Periodic::new(TICK, shutdown);
    while periodic.next().await {
        let map = shared.shards.map();
        if shared.shards.replicas().is_leader(META_GROUP) && last_plan.elapsed() >= cluster.balance_interval {
            last_plan = Instant::now();
            for cmd in plan::next(&map, policy) {
                match periodic.unless_stopped(meta::change(&shared, &cmd)).await {
                    Some(Ok(applied)) => tracing::info!(?cmd, ?applied, "balancer"),
                    Some(Err(e)) => {
                        tracing::warn!(?cmd, error = %e, "balancer: not committed; will retry");
                        break;
                    }
                    None => return,
                }
            }
        }
        if last_strays.elapsed() >= cluster.balance_interval {
            last_strays = Instant::now();
            if periodic.unless_stopped(remove_strays(&shared, &running)).await.is_none() {
                return;
            }
        }
        down_since.retain(|id, _| map.moves.contains_key(id));
        for (&id, m) in &map.moves {
            let group = GroupId::from(m.shard);
            if !shared.shards.replicas().is_leader(group) || running.lock().expect("moves lock").contains(&m.shard) {
                continue;
            }
            let to_node = node_of(m.to);
            if shared.peers.is_connected(to_node) || to_node == shared.shards.me() {
                down_since.remove(&id);
            } else {
                down_since.entry(id).or_insert_with(Instant::now);
            }
            // Only a target that does not vote yet is given up on; one that
            // votes is part of the group now: the move finishes instead.
            let votes = voter_on(&shared, group, to_node);
            let cancel = !votes && down_since.get(&id).is_some_and(|since| since.elapsed() >= TARGET_DOWN_FOR);
            running.lock().expect("moves lock").insert(m.shard);
            let (shared, running, map, m) = (Arc::clone(&shared), Arc::clone(&running), Arc::clone(&map), m.clone());
            tokio::spawn(async move {
                match cancel {
                    true => cancel_move(&shared, id, &m).await,
                    false => drive(&shared, &map, id, &m).await,
                }
                running.lock().expect("moves lock").remove(&m.shard);
            });
        }
    }
}

/// On each shard this node leads with no move under way (in the newest
/// map this node has) and a settled membership: learners of the group on
/// nodes the map gives no replica of the shard leave it (what a cancelled
/// move's target can leave behind). Only learners: they do not vote, so
/// removing one never weakens the group, even on a map that lags; a voter
/// the map does not list is left to an operator (`docs/operations.md`).
async fn remove_strays(shared: &Shared, running: &Mutex<BTreeSet<ShardId>>) {
    let map = meta::newest(shared);
    let replicas = shared.shards.replicas();
    for (&shard, info) in &map.shards {
        let group = GroupId::from(shard);
        let busy = map.moves.values().any(|m| m.shard == shard) || running.lock().expect("moves lock").contains(&shard);
        if busy || !replicas.is_leader(group) || !replicas.membership_settled(group) {
            continue;
        }
        let Some(status) = replicas.status(group) else { continue };
        let listed = |id: &u64| info.replicas.keys().any(|&r| u64::from(node_of(r)) == shoal_raft::node_of(*id));
        for &stray in status.learners.iter().filter(|id| !listed(id)) {
            tracing::warn!(group, learner = %ShowId(stray), epoch = map.epoch, "removing a learner the cluster map does not list");
            if let Err(e) = replicas.remove_learner(group, stray).await {
                tracing::warn!(group, error = %e, "the learner is not removed yet");
            }
        }
    }
}

/// Whether `node`'s replica votes in `group`, as this leader knows it.
fn voter_on(shared: &Shared, group: GroupId, node: NodeNumber) -> bool {
    let status = shared.shards.replicas().status(group);
    status.is_some_and(|s| s.voters.iter().any(|&id| shoal_raft::node_of(id) == u64::from(node)))
}

/// The Raft id `node`'s replica has in `group` now, as this leader knows
/// the membership (it may differ from the map's after the node rejoined
/// under a new generation).
fn member_on(shared: &Shared, group: GroupId, node: NodeNumber) -> Option<u64> {
    let status = shared.shards.replicas().status(group)?;
    status.voters.iter().chain(&status.learners).copied().find(|&id| shoal_raft::node_of(id) == u64::from(node))
}

/// One attempt at a move, on the shard's leader.
async fn drive(shared: &Shared, map: &ClusterMap, id: MoveId, m: &Move) {
    let group = GroupId::from(m.shard);
    let from = m.from.and_then(|f| member_on(shared, group, node_of(f)));
    let to_node = node_of(m.to);
    // The target opens its replica under the id its generation gives it.
    let generation = shared.peers.generation(to_node).unwrap_or(0);
    let to = crate::shards::raft_id_under(m.to, generation);
    let Some(addr) = map.client_addr(to_node) else { return };
    // A move cancelled since this node's map was taken must not be
    // carried out (its target's node may have dropped its replica).
    if !meta::newest(shared).moves.contains_key(&id) {
        return;
    }
    let started = Instant::now();
    match shared.shards.replicas().move_replica(group, from, to, &addr, CATCH_UP).await {
        Ok(MoveProgress::Done) => {
            match meta::submit(shared, &MetaCmd::FinishMove { id }).await {
                Ok(_) => tracing::info!(
                    move_id = id,
                    group,
                    to = %ShowId(to),
                    ms = started.elapsed().as_millis() as u64,
                    "replica move finished"
                ),
                // Finished by an earlier attempt this node's map had not
                // caught up with yet.
                Err(ChangeError::Refused(MetaError::UnknownMove(_))) => {}
                Err(e) => tracing::warn!(move_id = id, error = %e, "replica moved; the map is not updated yet"),
            }
        }
        Ok(MoveProgress::LeaderMoving) => {
            tracing::info!(move_id = id, group, "handing leadership off the move's source");
        }
        Err(e) => tracing::warn!(move_id = id, group, error = %e, "replica move not finished; will retry"),
    }
}

/// Takes a move's unreachable target out of the group (if it is still
/// only a learner), then out of the map.
async fn cancel_move(shared: &Shared, id: MoveId, m: &Move) {
    let group = GroupId::from(m.shard);
    if let Some(to) = member_on(shared, group, node_of(m.to)) {
        if let Err(e) = shared.shards.replicas().remove_learner(group, to).await {
            return tracing::warn!(move_id = id, error = %e, "cannot cancel the move (its target may vote already)");
        }
    }
    match meta::submit(shared, &MetaCmd::CancelMove { id }).await {
        Ok(_) => tracing::warn!(move_id = id, group, "replica move cancelled: its target is unreachable"),
        Err(e) => tracing::warn!(move_id = id, error = %e, "cannot cancel the move in the map yet"),
    }
}
