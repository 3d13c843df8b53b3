//! Splits: a shard gives the right-hand part of its slots to a new shard
//! on the same nodes, by one entry in its own log.
//!
//! 1. The metadata group commits `StartSplit` (an operator's `CLUSTER SHOAL
//!    SPLIT`, or the shard's leader finding it past `--shard-max-keys` or
//!    `--shard-max-bytes`): the new shard's id and one new replica id on
//!    each node of the shard.
//! 2. The shard's leader proposes the split entry (`shoal_raft::SplitSpec`,
//!    the replicas' Raft ids as the group knows them); every replica that
//!    applies it writes its node's replica of the new group, which this
//!    node then opens (`births`).
//! 3. Once applied here, `FinishSplit`: the map routes the slots to the
//!    new shard. Meanwhile the old shard refuses them and requests for them
//!    wait for the new map (`connection`), then get MOVED.
//!
//! Every step is retried from what the group and the map say, so a split
//! interrupted by a crash or a change of leader goes on where it stood.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shoal_cluster::map::{node_of, ClusterMap, MetaCmd, MetaError, Split};
use shoal_cluster::ShardId;
use shoal_raft::transport::GroupId;
use shoal_raft::{Reply, SlotsHeld, SplitSpec};
use tokio::sync::watch;

use crate::meta::{self, ChangeError};
use crate::periodic::Periodic;
use crate::state::Shared;

/// How often splits under way, and shards' sizes, are looked at.
const TICK: Duration = Duration::from_millis(100);

/// How often a shard's leader measures its bytes (a walk over its keys).
const MEASURE_BYTES_EVERY: Duration = Duration::from_secs(10);

pub async fn run(shared: Arc<Shared>, shutdown: watch::Receiver<bool>) {
    if shared.config.cluster.is_none() {
        return;
    }
    let running: Arc<Mutex<BTreeSet<ShardId>>> = Arc::default();
    let mut measured: BTreeMap<ShardId, (Instant, u64)> = BTreeMap::new();
    let mut periodic = Periodic::new(TICK, shutdown);
    while periodic.next().await {
        let map = shared.shards.map();
        for (&shard, split) in &map.splits {
            if !shared.shards.is_leader(GroupId::from(shard)) || !running.lock().expect("splits lock").insert(shard) {
                continue;
            }
            let (shared, running, map, split) =
                (Arc::clone(&shared), Arc::clone(&running), Arc::clone(&map), split.clone());
            tokio::spawn(async move {
                drive(&shared, &map, shard, &split).await;
                running.lock().expect("splits lock").remove(&shard);
            });
        }
        if let Some(cmd) = oversized(&shared, &map, &mut measured) {
            match periodic.unless_stopped(meta::submit(&shared, &cmd)).await {
                Some(Ok(applied)) => tracing::info!(?cmd, ?applied, "shard past its size limit: splitting"),
                Some(Err(e)) => tracing::warn!(?cmd, error = %e, "automatic split not started; will retry"),
                None => return,
            }
        }
    }
}

/// A `StartSplit` for the first shard led here that is past a size limit
/// and free to split (no move or split under way), at the slot halving
/// its keys.
fn oversized(shared: &Shared, map: &ClusterMap, measured: &mut BTreeMap<ShardId, (Instant, u64)>) -> Option<MetaCmd> {
    let cluster = shared.config.cluster.as_ref()?;
    for (&shard, info) in &map.shards {
        let group = GroupId::from(shard);
        let busy = map.splits.contains_key(&shard) || map.moves.values().any(|m| m.shard == shard);
        if busy || !shared.shards.is_leader(group) {
            continue;
        }
        let Some(db) = shared.shards.db(group) else { continue };
        let over_keys = cluster.shard_max_keys > 0 && db.len() as u64 > cluster.shard_max_keys;
        let over_bytes = cluster.shard_max_bytes > 0 && {
            let (when, bytes) = measured.entry(shard).or_insert((Instant::now(), db.bytes()));
            if when.elapsed() >= MEASURE_BYTES_EVERY {
                (*when, *bytes) = (Instant::now(), db.bytes());
            }
            *bytes > cluster.shard_max_bytes
        };
        if over_keys || over_bytes {
            if let Some(at) = db.halving_slot(info.slots.clone()) {
                measured.remove(&shard);
                return Some(MetaCmd::StartSplit { shard, at, automatic: true });
            }
        }
    }
    measured.retain(|shard, _| map.shards.contains_key(shard));
    None
}

/// One attempt at a split, on the shard's leader.
async fn drive(shared: &Shared, map: &ClusterMap, shard: ShardId, split: &Split) {
    let group = GroupId::from(shard);
    let replicas = shared.shards.replicas();
    let info = &map.shards[&shard];
    let (start, end) = (*info.slots.start(), *info.slots.end());
    if replicas.slots(group) == Some(SlotsHeld::Range(start..=split.at - 1)) {
        return finish(shared, shard, split).await;
    }
    let Some(members) = born_members(shared, map, group, split) else {
        return tracing::info!(group, "split waits for the shard's membership to match the map");
    };
    let spec = SplitSpec { start, end, at: split.at, child: GroupId::from(split.child), members };
    let started = Instant::now();
    match replicas.reshape(group, shoal_raft::Cmd::Split(spec), shared.now_ms()).await {
        Ok(Reply::Done) => {
            tracing::info!(
                group,
                child = split.child,
                at = split.at,
                ms = started.elapsed().as_millis() as u64,
                "split applied"
            );
            finish(shared, shard, split).await
        }
        Ok(reply) if replicas.slots(group) == Some(SlotsHeld::Range(start..=split.at - 1)) => {
            tracing::info!(group, ?reply, "split applied by an earlier attempt");
            finish(shared, shard, split).await
        }
        Ok(reply) => {
            tracing::warn!(group, ?reply, "the shard refused the split: cancelling it");
            if let Err(e) = meta::submit(shared, &MetaCmd::CancelSplit { shard }).await {
                tracing::warn!(group, error = %e, "cannot cancel the split yet");
            }
        }
        Err(e) => tracing::warn!(group, error = %e, "split not applied yet; will retry"),
    }
}

async fn finish(shared: &Shared, shard: ShardId, split: &Split) {
    match meta::submit(shared, &MetaCmd::FinishSplit { shard }).await {
        Ok(_) => tracing::info!(shard, child = split.child, at = split.at, "split finished: the new shard serves"),
        Err(ChangeError::Refused(MetaError::UnknownSplit(_))) => {}
        Err(e) => tracing::warn!(shard, error = %e, "split applied; the map is not updated yet"),
    }
}

/// The new group's members as Raft ids with client addresses: on each node
/// of the shard, the id that node gives the split's new replica there (its
/// generation, read off its replica of the shard). `None` unless the
/// group's voters are exactly the map's replicas, one per node, with no
/// learner and no change under way.
fn born_members(shared: &Shared, map: &ClusterMap, group: GroupId, split: &Split) -> Option<BTreeMap<u64, String>> {
    let replicas = shared.shards.replicas();
    let status = replicas.status(group)?;
    if !replicas.membership_settled(group) || !status.learners.is_empty() || status.voters.len() != split.replicas.len()
    {
        return None;
    }
    let mut members = BTreeMap::new();
    for (&parent, &born) in &split.replicas {
        let node = node_of(parent);
        let &actual = status.voters.iter().find(|&&v| shoal_raft::node_of(v) == u64::from(node))?;
        // `raft_id_under(parent, g)` is `parent` at generation 0 and has
        // generation `g ^ seq(parent)` otherwise.
        let generation = match actual == parent {
            true => 0,
            false => shoal_raft::generation_of(actual) ^ (parent >> 32) as u32,
        };
        members.insert(crate::shards::raft_id_under(born, generation), map.client_addr(node)?);
    }
    Some(members)
}

/// Opens the groups splits write here as soon as they are written.
pub async fn open_births(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let mut births = shared.shards.replicas().births();
    loop {
        tokio::select! {
            changed = births.changed() => if changed.is_err() { return },
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        shared.shards.sync_groups().await;
    }
}
