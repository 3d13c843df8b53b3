//! The metadata group: the cluster map as replicated state.
//!
//! One Raft group, [`META_GROUP`], holds the map (`shoal_cluster::map`) as
//! one JSON value in its keyspace; at most [`MAX_VOTERS`] nodes vote in it
//! and every other node follows it as a learner. Its leader is the only
//! writer: [`change`] reads the map after a read barrier, applies one
//! `MetaCmd` and proposes the new map as one SET, with a lock so that two
//! changes on one leader never interleave. A leader elected later reads
//! only after committing an entry of its own term, so it sees every change
//! an earlier leader committed, and an earlier leader's proposal that was
//! not committed then never will be: no change is lost or applied twice.
//!
//! Every node follows the map ([`follow`]): it keeps a copy in its data
//! directory before acting on it (a restart starts from it), then hands it
//! to routing, the transport's address book and the opening and closing of
//! groups. Any node takes an administrative command; one that does not
//! lead the metadata group relays it to the one that does ([`submit`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use shoal_cluster::map::{Applied, ClusterMap, MetaCmd, MetaError, NodeState};
use shoal_cluster::NodeNumber;
use shoal_engine::{SetOptions, WriteOp};
use shoal_proto::Frame;
use shoal_raft::transport::GroupId;
use shoal_raft::{node_of, GroupSpec, ReplicaError};
use tokio::sync::watch;

use crate::config::ClusterConfig;
use crate::periodic::Periodic;
use crate::state::Shared;

/// The metadata group's id: above every shard id (under 16384).
pub const META_GROUP: GroupId = 1 << 31;

/// Most voters of the metadata group; the other nodes are learners.
pub const MAX_VOTERS: usize = 5;

/// Where the map lives in the metadata group's keyspace.
const MAP_KEY: &[u8] = b"shoal:cluster-map";

/// The node's copy of the map, and its number, in its data directory.
const MAP_FILE: &str = "cluster-map.json";
const NODE_FILE: &str = "node-id";

/// How often a node looks for a newer map.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(100);

/// How long a relayed command may take.
const RELAY_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a change was not made.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// The map refused it (nothing changed).
    #[error("{0}")]
    Refused(#[from] MetaError),
    /// No metadata leader could take it now; retry.
    #[error("TRYAGAIN the cluster map cannot be changed now: {0}")]
    Unavailable(String),
}

/// This node's replica of the metadata group. On a node that bootstrapped
/// the cluster, the first `MAX_VOTERS` nodes of the layout are its voters
/// (the first initializes it); every other node opens it empty and waits
/// for the leader to add it as a learner.
pub fn group_spec(cluster: &ClusterConfig, generation: u32) -> GroupSpec {
    let empty =
        GroupSpec { id: META_GROUP, me: shoal_raft::raft_id(u64::from(cluster.me), generation), members: vec![] };
    let Some(layout) = &cluster.bootstrap else { return empty };
    let voters: Vec<u64> = layout.nodes.iter().take(MAX_VOTERS).map(|n| u64::from(n.number)).collect();
    GroupSpec::initial(META_GROUP, &voters, u64::from(cluster.me), generation).unwrap_or(empty)
}

/// The map in a data directory, if one was saved there.
pub fn load_map(dir: &Path) -> Result<Option<ClusterMap>, String> {
    let path = dir.join(MAP_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => ClusterMap::from_json(&text).map(Some).map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if absent(&e) => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Nothing saved there: no file, or no directory (the data directory's own
/// checks then say what is wrong with it).
fn absent(e: &std::io::Error) -> bool {
    matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory)
}

pub fn save_map(dir: &Path, map: &ClusterMap) -> Result<(), String> {
    let path = dir.join(MAP_FILE);
    crate::witness::write_durably(&path, map.to_json().as_bytes()).map_err(|e| format!("{}: {e}", path.display()))
}

/// The node number saved in a data directory (a node that joined).
pub fn load_node_id(dir: &Path) -> Result<Option<NodeNumber>, String> {
    let path = dir.join(NODE_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => text.trim().parse().map(Some).map_err(|_| format!("{}: not a node number", path.display())),
        Err(e) if absent(&e) => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

pub fn save_node_id(dir: &Path, node: NodeNumber) -> Result<(), String> {
    let path = dir.join(NODE_FILE);
    crate::witness::write_durably(&path, format!("{node}\n").as_bytes()).map_err(|e| format!("{}: {e}", path.display()))
}

/// The map committed in the metadata group, as this node has applied it.
fn stored(shared: &Shared) -> Option<ClusterMap> {
    match read_stored(shared) {
        Stored::Map(map) => Some(map),
        Stored::Absent | Stored::Unreadable => None,
    }
}

/// What the metadata group's keyspace here holds under the map's key.
enum Stored {
    Absent,
    Map(ClusterMap),
    /// A value that is not a map this build reads: never replaced by one
    /// of ours (it may be newer), only reported.
    Unreadable,
}

fn read_stored(shared: &Shared) -> Stored {
    let Some(db) = shared.shards.replicas().db(META_GROUP) else { return Stored::Absent };
    let Some(value) = db.get(MAP_KEY, shared.now_ms()) else { return Stored::Absent };
    match std::str::from_utf8(&value).map_err(|e| e.to_string()).and_then(ClusterMap::from_json) {
        Ok(map) => Stored::Map(map),
        Err(e) => {
            tracing::error!(error = %e, "the metadata group holds a map this node cannot read");
            Stored::Unreadable
        }
    }
}

/// On the metadata leader, once: commits the bootstrap map if the group
/// holds none. Read after a barrier (a new leader must first apply what
/// earlier leaders committed), and only the first map: a node that knows
/// a later one never had the group without a map.
async fn commit_first(shared: &Shared, current: &ClusterMap) {
    if current.epoch != 1 {
        return;
    }
    let _one_at_a_time = shared.meta_lock.lock().await;
    if shared.shards.replicas().read_barrier(META_GROUP).await.is_err() {
        return;
    }
    if matches!(read_stored(shared), Stored::Absent) {
        if let Err(e) = commit(shared, current).await {
            tracing::debug!(error = %e, "cannot commit the first cluster map yet");
        }
    }
}

/// On the metadata leader: applies `cmd` to the map and commits the result.
pub async fn change(shared: &Shared, cmd: &MetaCmd) -> Result<Applied, ChangeError> {
    let replicas = shared.shards.replicas();
    let unavailable = |e: ReplicaError| ChangeError::Unavailable(e.to_string());
    if !replicas.is_leader(META_GROUP) {
        return Err(ChangeError::Unavailable("this node does not lead the metadata group".into()));
    }
    let _one_at_a_time = shared.meta_lock.lock().await;
    replicas.read_barrier(META_GROUP).await.map_err(unavailable)?;
    let current = match read_stored(shared) {
        Stored::Map(map) => map,
        // Before the first map is committed: the bootstrap map, which
        // every node computes the same.
        Stored::Absent if shared.shards.map().epoch == 1 => ClusterMap::clone(&shared.shards.map()),
        Stored::Absent | Stored::Unreadable => {
            return Err(ChangeError::Unavailable("the metadata group holds no map this node can change".into()))
        }
    };
    let mut next = current.clone();
    let applied = next.apply(cmd)?;
    if next != current {
        commit(shared, &next).await?;
        tracing::info!(epoch = next.epoch, ?cmd, "cluster map changed");
    }
    Ok(applied)
}

async fn commit(shared: &Shared, map: &ClusterMap) -> Result<(), ChangeError> {
    let op = WriteOp::Set {
        key: Bytes::from_static(MAP_KEY),
        value: Bytes::from(map.to_json()),
        options: SetOptions::default(),
    };
    let replicas = shared.shards.replicas();
    replicas.propose(META_GROUP, op, shared.now_ms()).await.map_err(|e| ChangeError::Unavailable(e.to_string()))?;
    Ok(())
}

/// The newest map this node has: the one its metadata replica applied,
/// which may be ahead of the one it serves from (`follow` adopts it).
pub fn newest(shared: &Shared) -> Arc<ClusterMap> {
    let serving = shared.shards.map();
    match stored(shared) {
        // A metadata replica still replaying its log after a restart may be
        // behind the map this node saved and serves from.
        Some(map) if map.epoch > serving.epoch => Arc::new(map),
        _ => serving,
    }
}

/// Applies `cmd` here if this node leads the metadata group, else relays
/// it to the node that does.
pub async fn submit(shared: &Shared, cmd: &MetaCmd) -> Result<Applied, ChangeError> {
    if shared.shards.replicas().is_leader(META_GROUP) {
        return change(shared, cmd).await;
    }
    let json = serde_json::to_string(cmd).expect("a command always encodes");
    let words = [&b"CLUSTER"[..], b"SHOAL", b"APPLY", json.as_bytes()].map(Bytes::copy_from_slice);
    match relay(shared, &words).await? {
        Frame::Bulk(reply) => match serde_json::from_slice::<Result<Applied, MetaError>>(&reply) {
            Ok(outcome) => outcome.map_err(ChangeError::Refused),
            Err(e) => Err(ChangeError::Unavailable(format!("the metadata leader answered oddly: {e}"))),
        },
        Frame::Error(e) => {
            Err(ChangeError::Unavailable(format!("the metadata leader answered: {}", String::from_utf8_lossy(&e))))
        }
        other => Err(ChangeError::Unavailable(format!("the metadata leader answered {other:?}"))),
    }
}

/// Sends a command to the metadata group's leader and returns its reply.
pub async fn relay(shared: &Shared, words: &[Bytes]) -> Result<Frame, ChangeError> {
    let replicas = shared.shards.replicas();
    let leader = replicas.leader(META_GROUP).map(node_of).and_then(|n| NodeNumber::try_from(n).ok());
    let Some(addr) = leader.and_then(|n| shared.shards.client_addr(n)) else {
        return Err(ChangeError::Unavailable("the metadata group has no leader yet".into()));
    };
    let args: Vec<&[u8]> = words.iter().map(|w| &w[..]).collect();
    crate::relay::call(&addr, &args, RELAY_TIMEOUT)
        .await
        .map_err(|e| ChangeError::Unavailable(format!("relaying to the metadata leader at {addr}: {e}")))
}

/// Follows the committed map until shutdown: a newer one is saved, then
/// served from. The metadata leader also commits the first map (from the
/// bootstrap layout) and keeps the group's membership in line with the
/// map's nodes.
pub async fn follow(shared: Arc<Shared>, shutdown: watch::Receiver<bool>) {
    let Some(cluster) = shared.config.cluster.clone() else { return };
    let mut periodic = Periodic::new(FOLLOW_INTERVAL, shutdown);
    let mut ticks = 0u64;
    let every = (cluster.balance_interval.as_millis() / FOLLOW_INTERVAL.as_millis()).max(1) as u64;
    // The metadata group's applied index when the map was last read: the
    // map is decoded again only once something new was applied.
    let mut read_at = None;
    while periodic.next().await {
        ticks += 1;
        let applied = shared.shards.replicas().status(META_GROUP).and_then(|s| s.applied_index);
        if applied != read_at {
            let current = shared.shards.map();
            match stored(&shared) {
                Some(map) if map.epoch > current.epoch => {
                    let adopted = adopt(&shared, map).await;
                    read_at = if adopted { applied } else { read_at };
                }
                Some(_) => read_at = applied,
                None if shared.shards.replicas().is_leader(META_GROUP) => commit_first(&shared, &current).await,
                None => {}
            }
        }
        if ticks.is_multiple_of(every) {
            shared.shards.sync_groups().await;
            if shared.shards.replicas().is_leader(META_GROUP) {
                periodic.unless_stopped(reconcile_members(&shared)).await;
            }
        }
    }
}

/// Serves from a newer map: saved first, so a restart knows every group
/// this node was given before it opens one. False when it could not be
/// saved (tried again next tick).
async fn adopt(shared: &Shared, map: ClusterMap) -> bool {
    if let Err(e) = save_map(&shared.config.dir, &map) {
        tracing::error!(error = %e, "cannot save the cluster map; not following it yet");
        return false;
    }
    tracing::info!(epoch = map.epoch, nodes = map.nodes.len(), moves = map.moves.len(), "following a new cluster map");
    let me = shared.shards.me();
    if map.nodes.get(&me).is_some_and(|n| n.state == NodeState::Removed) {
        // Drained and removed: it holds nothing and nobody sends it
        // anything; a restart is refused (start a new node with --join).
        tracing::warn!(node = me, epoch = map.epoch, "this node was removed from the cluster: stopping");
        shared.shutdown.request(true);
    }
    shared.peers.sync(map.nodes.iter().filter(|(_, n)| n.state != NodeState::Removed).map(|(&n, _)| n));
    shared.shards.set_map(Arc::new(map));
    shared.shards.sync_groups().await;
    true
}

/// On the metadata leader: every node of the map is a member of the
/// metadata group, the first `MAX_VOTERS` that are up as voters, the rest
/// as learners; removed nodes leave it.
async fn reconcile_members(shared: &Shared) {
    let map = shared.shards.map();
    let replicas = shared.shards.replicas();
    let Some(status) = replicas.status(META_GROUP) else { return };
    let members: Vec<u64> = status.voters.iter().chain(&status.learners).copied().collect();
    // A node's identity is its generation's, as its peer checks report it
    // (a node that lost its data comes back under a new one, which then
    // replaces the old); until one is reported, the one it has.
    let id_of = |node: NodeNumber| match shared.peers.generation(node) {
        Some(generation) => shoal_raft::raft_id(u64::from(node), generation),
        None => members
            .iter()
            .copied()
            .find(|&m| node_of(m) == u64::from(node))
            .unwrap_or_else(|| shoal_raft::raft_id(u64::from(node), 0)),
    };
    let live: Vec<NodeNumber> =
        map.nodes.iter().filter(|(_, n)| n.state != NodeState::Removed).map(|(&n, _)| n).collect();
    let up = map.nodes.iter().filter(|(_, n)| n.state == NodeState::Up).map(|(&n, _)| n);
    let voters: BTreeSet<u64> = up.take(MAX_VOTERS).map(id_of).collect();
    let learners: BTreeMap<u64, String> = live
        .iter()
        .map(|&n| (id_of(n), map.client_addr(n).unwrap_or_default()))
        .filter(|(id, _)| !voters.contains(id))
        .collect();
    let wanted: BTreeSet<u64> = voters.iter().copied().chain(learners.keys().copied()).collect();
    if voters.is_empty()
        || (wanted == members.iter().copied().collect() && voters == status.voters.iter().copied().collect())
    {
        return;
    }
    let addrs: BTreeMap<u64, String> =
        wanted.iter().map(|&id| (id, map.client_addr(node_of(id) as NodeNumber).unwrap_or_default())).collect();
    match replicas.reconfigure(META_GROUP, voters, addrs, Duration::from_secs(10)).await {
        Ok(()) => tracing::info!(epoch = map.epoch, "the metadata group's members follow the map"),
        Err(e) => tracing::warn!(error = %e, "the metadata group's members do not follow the map yet"),
    }
}
