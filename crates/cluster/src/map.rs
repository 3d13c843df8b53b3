//! The cluster map as replicated state: step 1 of `docs/elastic-plan.md`
//! (issue 12). Nothing serves from it yet; the layout still does.
//!
//! Every change to the cluster's shape is a [`MetaCmd`] that a metadata
//! Raft group will commit and every node apply with [`ClusterMap::apply`]:
//! deterministic, no I/O, no clock. A command either changes the map and
//! grows its epoch by one, or is refused with a [`MetaError`] and changes
//! nothing, so every replica of the map reaches the same state from the
//! same log.
//!
//! Invariants, checked after every applied command in debug builds and by
//! the property test (`ClusterMap::check`):
//! - the shards' slot ranges tile 0..=16383 (in the order of their first
//!   slots: a shard born of a split has a higher id than its neighbours);
//! - every shard has a voter, and at most one replica on any node;
//! - every replica's node is in the map and not removed;
//! - a replica id is never given twice (`next_seq` only grows): openraft
//!   must never see an id come back to a group;
//! - a move names a learner it added and, if any, a replica it replaces;
//! - a split names a slot inside its shard's range (not the first), a
//!   shard id not given yet, and one new replica for each of the shard's
//!   replicas, on the same node; a shard never moves and splits at once;
//! - a merge names two shards, the right one's slots following the left
//!   one's; a shard takes part in one change at a time (a move, a split or
//!   a merge);
//! - a shard id is never given twice (`next_shard` only grows).

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};

use shoal_engine::slot::{Slot, SLOT_COUNT};

use crate::layout::{Layout, Shard, ShardId};
use crate::spec::{NodeAddr, NodeNumber};

/// A replica's Raft id: its node's number in the low 32 bits and a
/// sequence number, unique in the cluster, in the high 32 (the layout
/// shoal_raft::raft_id uses; seq 0 is a replica of the bootstrap layout).
pub type ReplicaId = u64;

/// Sequence numbers stay below this: the Raft ids a node draws for itself
/// after losing its data (`shoal_raft::raft_id` generations) are above it.
pub const MAX_SEQ: u32 = 1 << 31;

pub fn replica_id(node: NodeNumber, seq: u32) -> ReplicaId {
    u64::from(node) | (u64::from(seq) << 32)
}

pub fn node_of(replica: ReplicaId) -> NodeNumber {
    (replica & u64::from(u32::MAX)) as NodeNumber
}

pub type MoveId = u64;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterMap {
    /// The cluster's name, fixed at bootstrap (the first layout's
    /// fingerprint): what peers show each other, so nodes of two clusters
    /// never exchange Raft traffic.
    pub cluster_id: String,
    /// How many replicas each shard should have (`--replicas` at bootstrap).
    pub replication: u16,
    /// Grows by one with every applied command.
    pub epoch: u64,
    pub nodes: BTreeMap<NodeNumber, NodeInfo>,
    pub shards: BTreeMap<ShardId, ShardInfo>,
    pub moves: BTreeMap<MoveId, Move>,
    /// Splits under way, by the shard splitting.
    #[serde(default)]
    pub splits: BTreeMap<ShardId, Split>,
    /// Merges under way, by the left shard (the one that stays).
    #[serde(default)]
    pub merges: BTreeMap<ShardId, Merge>,
    next_node: NodeNumber,
    next_seq: u32,
    next_move: MoveId,
    /// 0 in a map saved before splits existed: the shards' ids then end
    /// below the number of shards, and `from_json` fills it in.
    #[serde(default)]
    next_shard: u32,
}

/// A merge under way: the left shard takes the `right` shard's slots and
/// keys (sealed first, then carried by one entry in the left shard's
/// log); then the right shard is gone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Merge {
    pub right: ShardId,
}

/// A split under way: once the shard's log has applied it, its slots from
/// `at` on belong to `child`, whose replicas are `replicas`' values, each
/// on the node of its key (the shard's replica it was born from).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Split {
    pub at: Slot,
    pub child: ShardId,
    pub replicas: BTreeMap<ReplicaId, ReplicaId>,
    /// See `MetaCmd::StartSplit`.
    #[serde(default)]
    pub automatic: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub host: String,
    pub port: u16,
    pub peer_port: u16,
    pub state: NodeState,
    /// The nonce a joining node registered with: the same nonce again gets
    /// the same node (a retried join), never a second one.
    pub join_nonce: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeState {
    Up,
    /// Keeps its replicas until they are moved away; gets no new ones.
    Draining,
    /// Gone for good: holds no replica, its address may be reused.
    Removed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardInfo {
    pub slots: RangeInclusive<Slot>,
    pub replicas: BTreeMap<ReplicaId, Role>,
    pub preferred_leader: ReplicaId,
    /// The shard this one split from: its replicas are born from that
    /// shard's log, not opened empty (`None`: a shard of the first layout).
    #[serde(default)]
    pub born_of: Option<ShardId>,
    /// Born of a split a policy asked for: a policy may merge it back
    /// (an operator's splits stay until an operator merges).
    #[serde(default)]
    pub born_automatically: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    Voter,
    /// Added by a move, catching up; becomes a voter when the move ends.
    Learner,
}

/// A replica move: `to` was added as a learner; when the move finishes it
/// is a voter and `from` (if any) is gone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Move {
    pub shard: ShardId,
    pub from: Option<ReplicaId>,
    pub to: ReplicaId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetaCmd {
    AddNode {
        nonce: u64,
        host: String,
        port: u16,
        peer_port: u16,
    },
    SetNodeState {
        node: NodeNumber,
        state: NodeState,
    },
    /// Adds a replica of `shard` on `to_node` (a learner), replacing `from`.
    StartMove {
        shard: ShardId,
        from: Option<ReplicaId>,
        to_node: NodeNumber,
    },
    FinishMove {
        id: MoveId,
    },
    CancelMove {
        id: MoveId,
    },
    SetPreferredLeader {
        shard: ShardId,
        replica: ReplicaId,
    },
    /// Names a new shard for `shard`'s slots from `at` on, with a replica
    /// beside each of `shard`'s (see `Split`).
    StartSplit {
        shard: ShardId,
        at: Slot,
        /// Asked by a policy (a size limit, the balancer), not an
        /// operator: the halves may be merged back by policy too.
        #[serde(default)]
        automatic: bool,
    },
    /// The split was applied by the shard's log: the new shard serves.
    FinishSplit {
        shard: ShardId,
    },
    /// The split will not be applied (the shard's log refused it).
    CancelSplit {
        shard: ShardId,
    },
    /// `left` is to take `right`'s slots (they follow its own).
    StartMerge {
        left: ShardId,
        right: ShardId,
    },
    /// `left` holds `right`'s keys: `right` is gone.
    FinishMerge {
        left: ShardId,
    },
    /// The merge will not happen (the right shard was unsealed).
    CancelMerge {
        left: ShardId,
    },
}

/// What an applied command gave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Applied {
    Node(NodeNumber),
    Move { id: MoveId, to: ReplicaId },
    Split { child: ShardId },
    Done,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum MetaError {
    #[error("node {0} is not in the cluster")]
    UnknownNode(NodeNumber),
    #[error("{0} is already the address of node {1}")]
    AddressInUse(String, NodeNumber),
    #[error("node {0} is not up")]
    NodeNotUp(NodeNumber),
    #[error("node {0} still holds replicas")]
    NodeHoldsReplicas(NodeNumber),
    #[error("shard {0} does not exist")]
    UnknownShard(ShardId),
    #[error("shard {0} already has a replica on node {1}")]
    AlreadyHeld(ShardId, NodeNumber),
    #[error("{0} is not a replica of shard {1}")]
    NotAReplica(ReplicaId, ShardId),
    #[error("shard {0} has a move in progress")]
    MoveInProgress(ShardId),
    #[error("move {0} does not exist")]
    UnknownMove(MoveId),
    #[error("shard {0} has a split in progress")]
    SplitInProgress(ShardId),
    #[error("shard {0} has no split in progress")]
    UnknownSplit(ShardId),
    #[error("slot {1} is not inside shard {0}'s slots past their first")]
    BadSplitSlot(ShardId, Slot),
    #[error("shard {0} is changing replicas; split it once the move is over")]
    NotSettled(ShardId),
    #[error("no shard id is left to give")]
    NoShardIds,
    #[error("shard {1}'s slots do not follow shard {0}'s")]
    NotAdjacent(ShardId, ShardId),
    #[error("shard {0} is already moving, splitting or merging")]
    Busy(ShardId),
    #[error("shard {0} has no merge in progress")]
    UnknownMerge(ShardId),
    #[error("shards {0} and {1} do not have their replicas on the same nodes (move one's replicas first)")]
    NotCoLocated(ShardId, ShardId),
}

impl ClusterMap {
    /// The first map, from the bootstrap layout: every replica a voter at
    /// sequence 0, each shard's preferred primary its preferred leader.
    pub fn from_layout(layout: &Layout) -> ClusterMap {
        let nodes = layout
            .nodes
            .iter()
            .map(|n| {
                let info = NodeInfo {
                    host: n.host.clone(),
                    port: n.port,
                    peer_port: n.peer_port,
                    state: NodeState::Up,
                    join_nonce: None,
                };
                (n.number, info)
            })
            .collect();
        let shards = layout
            .shards
            .iter()
            .map(|s| {
                let replicas = s.replicas.iter().map(|&n| (replica_id(n, 0), Role::Voter)).collect();
                let preferred_leader = replica_id(s.primary(), 0);
                let info = ShardInfo {
                    slots: s.slots.clone(),
                    replicas,
                    preferred_leader,
                    born_of: None,
                    born_automatically: false,
                };
                (s.id, info)
            })
            .collect();
        let next_node = layout.nodes.iter().map(|n| n.number).max().map_or(1, |m| m + 1);
        let map = ClusterMap {
            cluster_id: layout.fingerprint().to_string(),
            replication: layout.replicas,
            epoch: 1,
            nodes,
            shards,
            moves: BTreeMap::new(),
            splits: BTreeMap::new(),
            merges: BTreeMap::new(),
            next_node,
            next_seq: 1,
            next_move: 1,
            next_shard: 0,
        };
        let mut map = map;
        map.next_shard = map.first_free_shard();
        debug_assert_eq!(map.check(), Ok(()));
        map
    }

    /// Applies one committed command (see the module doc).
    pub fn apply(&mut self, cmd: &MetaCmd) -> Result<Applied, MetaError> {
        let applied = match cmd {
            MetaCmd::AddNode { nonce, host, port, peer_port } => {
                if let Some((&node, _)) = self.nodes.iter().find(|(_, n)| n.join_nonce == Some(*nonce)) {
                    // A retried join: nothing changes, not even the epoch.
                    return Ok(Applied::Node(node));
                }
                self.add_node(*nonce, host, *port, *peer_port)?
            }
            MetaCmd::SetNodeState { node, state } => self.set_node_state(*node, *state)?,
            MetaCmd::StartMove { shard, from, to_node } => self.start_move(*shard, *from, *to_node)?,
            MetaCmd::FinishMove { id } => self.finish_move(*id)?,
            MetaCmd::CancelMove { id } => self.cancel_move(*id)?,
            MetaCmd::SetPreferredLeader { shard, replica } => {
                let info = self.shards.get_mut(shard).ok_or(MetaError::UnknownShard(*shard))?;
                if info.replicas.get(replica) != Some(&Role::Voter) {
                    return Err(MetaError::NotAReplica(*replica, *shard));
                }
                info.preferred_leader = *replica;
                Applied::Done
            }
            MetaCmd::StartSplit { shard, at, automatic } => self.start_split(*shard, *at, *automatic)?,
            MetaCmd::FinishSplit { shard } => self.finish_split(*shard)?,
            MetaCmd::CancelSplit { shard } => {
                self.splits.remove(shard).ok_or(MetaError::UnknownSplit(*shard))?;
                Applied::Done
            }
            MetaCmd::StartMerge { left, right } => self.start_merge(*left, *right)?,
            MetaCmd::FinishMerge { left } => self.finish_merge(*left)?,
            MetaCmd::CancelMerge { left } => {
                self.merges.remove(left).ok_or(MetaError::UnknownMerge(*left))?;
                Applied::Done
            }
        };
        self.epoch += 1;
        debug_assert_eq!(self.check(), Ok(()), "after {cmd:?}");
        Ok(applied)
    }

    fn add_node(&mut self, nonce: u64, host: &str, port: u16, peer_port: u16) -> Result<Applied, MetaError> {
        let live = self.nodes.iter().filter(|(_, n)| n.state != NodeState::Removed);
        for (&number, n) in live {
            let taken = n.host == host && (n.port == port || n.peer_port == peer_port);
            if taken {
                return Err(MetaError::AddressInUse(format!("{host}:{port}@{peer_port}"), number));
            }
        }
        let node = self.next_node;
        self.next_node += 1;
        let info = NodeInfo { host: host.to_string(), port, peer_port, state: NodeState::Up, join_nonce: Some(nonce) };
        self.nodes.insert(node, info);
        Ok(Applied::Node(node))
    }

    fn set_node_state(&mut self, node: NodeNumber, state: NodeState) -> Result<Applied, MetaError> {
        if !self.nodes.contains_key(&node) {
            return Err(MetaError::UnknownNode(node));
        }
        if state == NodeState::Removed && self.holds_replicas(node) {
            return Err(MetaError::NodeHoldsReplicas(node));
        }
        self.nodes.get_mut(&node).expect("checked").state = state;
        Ok(Applied::Done)
    }

    fn holds_replicas(&self, node: NodeNumber) -> bool {
        self.shards.values().any(|s| s.replicas.keys().any(|&r| node_of(r) == node))
    }

    fn start_move(
        &mut self,
        shard: ShardId,
        from: Option<ReplicaId>,
        to_node: NodeNumber,
    ) -> Result<Applied, MetaError> {
        let to_state = self.nodes.get(&to_node).map(|n| n.state).ok_or(MetaError::UnknownNode(to_node))?;
        if to_state != NodeState::Up {
            return Err(MetaError::NodeNotUp(to_node));
        }
        if self.moves.values().any(|m| m.shard == shard) {
            return Err(MetaError::MoveInProgress(shard));
        }
        if self.splits.contains_key(&shard) {
            return Err(MetaError::SplitInProgress(shard));
        }
        if self.merging(shard) {
            return Err(MetaError::Busy(shard));
        }
        let info = self.shards.get_mut(&shard).ok_or(MetaError::UnknownShard(shard))?;
        if let Some(from) = from.filter(|f| !info.replicas.contains_key(f)) {
            return Err(MetaError::NotAReplica(from, shard));
        }
        if info.replicas.keys().any(|&r| node_of(r) == to_node) {
            return Err(MetaError::AlreadyHeld(shard, to_node));
        }
        let to = replica_id(to_node, self.next_seq);
        self.next_seq += 1;
        assert!(self.next_seq < MAX_SEQ, "fewer than 2^31 replicas ever made");
        info.replicas.insert(to, Role::Learner);
        let id = self.next_move;
        self.next_move += 1;
        self.moves.insert(id, Move { shard, from, to });
        Ok(Applied::Move { id, to })
    }

    fn finish_move(&mut self, id: MoveId) -> Result<Applied, MetaError> {
        let m = self.moves.get(&id).ok_or(MetaError::UnknownMove(id))?.clone();
        let info = self.shards.get_mut(&m.shard).expect("a move's shard exists");
        info.replicas.insert(m.to, Role::Voter);
        if let Some(from) = m.from {
            info.replicas.remove(&from);
            if info.preferred_leader == from {
                info.preferred_leader = m.to;
            }
        }
        self.moves.remove(&id);
        Ok(Applied::Done)
    }

    fn cancel_move(&mut self, id: MoveId) -> Result<Applied, MetaError> {
        let m = self.moves.remove(&id).ok_or(MetaError::UnknownMove(id))?;
        let info = self.shards.get_mut(&m.shard).expect("a move's shard exists");
        info.replicas.remove(&m.to);
        Ok(Applied::Done)
    }

    fn start_split(&mut self, shard: ShardId, at: Slot, automatic: bool) -> Result<Applied, MetaError> {
        let info = self.shards.get(&shard).ok_or(MetaError::UnknownShard(shard))?;
        if self.splits.contains_key(&shard) {
            return Err(MetaError::SplitInProgress(shard));
        }
        if self.moves.values().any(|m| m.shard == shard) || info.replicas.values().any(|r| *r != Role::Voter) {
            return Err(MetaError::NotSettled(shard));
        }
        if self.merging(shard) {
            return Err(MetaError::Busy(shard));
        }
        if !(*info.slots.start() < at && at <= *info.slots.end()) {
            return Err(MetaError::BadSplitSlot(shard, at));
        }
        let child = ShardId::try_from(self.next_shard).map_err(|_| MetaError::NoShardIds)?;
        assert!(!self.shards.contains_key(&child), "shard ids are never given twice");
        let mut replicas = BTreeMap::new();
        for &parent in info.replicas.keys() {
            replicas.insert(parent, replica_id(node_of(parent), self.next_seq));
            self.next_seq += 1;
            assert!(self.next_seq < MAX_SEQ, "fewer than 2^31 replicas ever made");
        }
        self.next_shard += 1;
        self.splits.insert(shard, Split { at, child, replicas, automatic });
        Ok(Applied::Split { child })
    }

    fn finish_split(&mut self, shard: ShardId) -> Result<Applied, MetaError> {
        let split = self.splits.remove(&shard).ok_or(MetaError::UnknownSplit(shard))?;
        let parent = self.shards.get_mut(&shard).expect("a split's shard exists");
        let end = *parent.slots.end();
        parent.slots = *parent.slots.start()..=split.at - 1;
        let preferred_leader = split.replicas[&parent.preferred_leader];
        let replicas = split.replicas.values().map(|&r| (r, Role::Voter)).collect();
        let born = ShardInfo {
            slots: split.at..=end,
            replicas,
            preferred_leader,
            born_of: Some(shard),
            born_automatically: split.automatic,
        };
        self.shards.insert(split.child, born);
        Ok(Applied::Done)
    }

    /// Whether `shard` takes part in a merge under way (either side).
    pub fn merging(&self, shard: ShardId) -> bool {
        self.merges.iter().any(|(&left, m)| left == shard || m.right == shard)
    }

    /// Whether `shard` has a move, a split or a merge under way.
    pub fn busy(&self, shard: ShardId) -> bool {
        self.moves.values().any(|m| m.shard == shard) || self.splits.contains_key(&shard) || self.merging(shard)
    }

    /// Whether two shards' replicas are all voters on the same nodes (a
    /// merge carries the right one's keys to the left one's nodes).
    pub fn co_located(&self, a: ShardId, b: ShardId) -> bool {
        let nodes = |s: ShardId| {
            let info = self.shards.get(&s)?;
            let voters = info.replicas.iter().all(|(_, &r)| r == Role::Voter);
            voters.then(|| info.replicas.keys().map(|&r| node_of(r)).collect::<std::collections::BTreeSet<_>>())
        };
        matches!((nodes(a), nodes(b)), (Some(x), Some(y)) if x == y)
    }

    fn start_merge(&mut self, left: ShardId, right: ShardId) -> Result<Applied, MetaError> {
        let l = self.shards.get(&left).ok_or(MetaError::UnknownShard(left))?;
        let r = self.shards.get(&right).ok_or(MetaError::UnknownShard(right))?;
        if u32::from(*r.slots.start()) != u32::from(*l.slots.end()) + 1 {
            return Err(MetaError::NotAdjacent(left, right));
        }
        for shard in [left, right] {
            if self.busy(shard) {
                return Err(MetaError::Busy(shard));
            }
        }
        if !self.co_located(left, right) {
            return Err(MetaError::NotCoLocated(left, right));
        }
        self.merges.insert(left, Merge { right });
        Ok(Applied::Done)
    }

    fn finish_merge(&mut self, left: ShardId) -> Result<Applied, MetaError> {
        let merge = self.merges.remove(&left).ok_or(MetaError::UnknownMerge(left))?;
        let right = self.shards.remove(&merge.right).expect("a merge's shards exist");
        let info = self.shards.get_mut(&left).expect("a merge's shards exist");
        info.slots = *info.slots.start()..=*right.slots.end();
        Ok(Applied::Done)
    }

    /// The first shard id above every shard's (maps saved before
    /// `next_shard` existed).
    fn first_free_shard(&self) -> u32 {
        self.shards.keys().next_back().map_or(0, |&s| u32::from(s) + 1)
    }

    /// Whether `shard` was ever given by this map (a group with a higher
    /// id is newer than the map: a split this map has not seen yet).
    pub fn knows_shard(&self, shard: u32) -> bool {
        shard < self.next_shard
    }

    /// This node's replica of a shard being born of a split under way, with
    /// the shard splitting and the new shard's first slot.
    pub fn unborn_on(&self, node: NodeNumber) -> impl Iterator<Item = (ShardId, ReplicaId, ShardId, Slot)> + '_ {
        self.splits.iter().filter_map(move |(&parent, split)| {
            let &born = split.replicas.values().find(|&&r| node_of(r) == node)?;
            Some((split.child, born, parent, split.at))
        })
    }

    /// The node holding `shard`'s replica, if any, with that replica's id.
    pub fn replica_on(&self, shard: ShardId, node: NodeNumber) -> Option<(ReplicaId, Role)> {
        let info = self.shards.get(&shard)?;
        info.replicas.iter().find(|(&r, _)| node_of(r) == node).map(|(&r, &role)| (r, role))
    }

    /// `host:port` clients use to reach `node`.
    pub fn client_addr(&self, node: NodeNumber) -> Option<String> {
        self.nodes.get(&node).map(|n| format!("{}:{}", n.host, n.port))
    }

    /// The map as a `Layout`, the view routing and CLUSTER replies read:
    /// every node not removed, each shard's voters with its preferred
    /// leader first (learners still catching up serve nothing).
    pub fn layout(&self) -> Layout {
        let nodes = self
            .nodes
            .iter()
            .filter(|(_, n)| n.state != NodeState::Removed)
            .map(|(&number, n)| NodeAddr { number, host: n.host.clone(), port: n.port, peer_port: n.peer_port })
            .collect();
        let mut in_slot_order: Vec<(&ShardId, &ShardInfo)> = self.shards.iter().collect();
        in_slot_order.sort_by_key(|(_, s)| *s.slots.start());
        let shards = in_slot_order
            .into_iter()
            .map(|(&id, info)| {
                let voters = info.replicas.iter().filter(|(_, &role)| role == Role::Voter).map(|(&r, _)| r);
                let mut replicas: Vec<NodeNumber> = voters.map(node_of).collect();
                let preferred = node_of(info.preferred_leader);
                // The preferred leader, then the others in rotation from it
                // (the order `Layout::new` gives).
                replicas.sort_by_key(|&n| (n != preferred, n < preferred, n));
                Shard { id, slots: info.slots.clone(), replicas, hex_id: Layout::shard_hex_id(&self.cluster_id, id) }
            })
            .collect();
        Layout::from_parts(nodes, shards, self.replication, self.cluster_id.clone())
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a map always encodes")
    }

    /// Decodes a map and checks its invariants: a map that breaks them
    /// (a bad file, another version's) is refused, never served from.
    pub fn from_json(text: &str) -> Result<ClusterMap, String> {
        let mut map: ClusterMap = serde_json::from_str(text).map_err(|e| format!("not a cluster map: {e}"))?;
        if map.next_shard == 0 {
            map.next_shard = map.first_free_shard();
        }
        map.check()?;
        Ok(map)
    }

    /// The shard that owns `slot`.
    pub fn shard_of_slot(&self, slot: Slot) -> Option<ShardId> {
        self.shards.iter().find(|(_, s)| s.slots.contains(&slot)).map(|(&id, _)| id)
    }

    /// Checks the invariants in the module doc.
    pub fn check(&self) -> Result<(), String> {
        let mut next_slot: u32 = 0;
        // Ids follow the order shards were made, not their slots.
        let mut by_slot: Vec<(&ShardId, &ShardInfo)> = self.shards.iter().collect();
        by_slot.sort_by_key(|(_, s)| *s.slots.start());
        for (id, shard) in by_slot {
            if u32::from(*shard.slots.start()) != next_slot || shard.slots.start() > shard.slots.end() {
                return Err(format!("shard {id}'s slots {:?} do not follow slot {next_slot}", shard.slots));
            }
            next_slot = u32::from(*shard.slots.end()) + 1;
            if !shard.replicas.values().any(|r| *r == Role::Voter) {
                return Err(format!("shard {id} has no voter"));
            }
            let mut nodes: Vec<NodeNumber> = shard.replicas.keys().map(|&r| node_of(r)).collect();
            nodes.sort_unstable();
            if nodes.windows(2).any(|w| w[0] == w[1]) {
                return Err(format!("shard {id} has two replicas on one node"));
            }
            for &replica in shard.replicas.keys() {
                match self.nodes.get(&node_of(replica)) {
                    Some(n) if n.state != NodeState::Removed => {}
                    _ => return Err(format!("shard {id}'s replica {replica} is on no live node")),
                }
                if (replica >> 32) as u32 >= self.next_seq {
                    return Err(format!("replica {replica} has a sequence number not yet given"));
                }
            }
        }
        if next_slot != u32::from(SLOT_COUNT) {
            return Err(format!("the shards' slots end at {next_slot}, not {SLOT_COUNT}"));
        }
        for (id, split) in &self.splits {
            let shard = self.shards.get(id).ok_or_else(|| format!("split of shard {id}, which does not exist"))?;
            if !(*shard.slots.start() < split.at && split.at <= *shard.slots.end()) {
                return Err(format!("split of shard {id} at slot {} outside its slots", split.at));
            }
            if u32::from(split.child) >= self.next_shard || self.shards.contains_key(&split.child) {
                return Err(format!("split of shard {id} names shard {}, given or not yet given", split.child));
            }
            let parents: Vec<&ReplicaId> = split.replicas.keys().collect();
            if parents != shard.replicas.keys().collect::<Vec<_>>() {
                return Err(format!("split of shard {id} does not name one new replica per replica"));
            }
            if split.replicas.iter().any(|(&p, &c)| node_of(p) != node_of(c) || (c >> 32) as u32 >= self.next_seq) {
                return Err(format!("split of shard {id}: a new replica is on another node or not yet given"));
            }
            if self.moves.values().any(|m| m.shard == *id) {
                return Err(format!("shard {id} moves and splits at once"));
            }
        }
        let mut changing: Vec<ShardId> = self.moves.values().map(|m| m.shard).collect();
        changing.extend(self.splits.keys());
        for (&left, merge) in &self.merges {
            let (l, r) = match (self.shards.get(&left), self.shards.get(&merge.right)) {
                (Some(l), Some(r)) => (l, r),
                _ => return Err(format!("merge of shards {left} and {}: one does not exist", merge.right)),
            };
            if u32::from(*r.slots.start()) != u32::from(*l.slots.end()) + 1 {
                return Err(format!("merge of shards {left} and {}: not adjacent", merge.right));
            }
            if !self.co_located(left, merge.right) {
                return Err(format!("merge of shards {left} and {}: not on the same nodes", merge.right));
            }
            changing.extend([left, merge.right]);
        }
        let mut distinct = changing.clone();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.len() != changing.len() {
            return Err("a shard takes part in two changes at once".into());
        }
        if self.shards.keys().next_back().is_some_and(|&s| u32::from(s) >= self.next_shard) {
            return Err("a shard has an id not yet given".into());
        }
        for (id, m) in &self.moves {
            let shard = self.shards.get(&m.shard).ok_or_else(|| format!("move {id}: no shard {}", m.shard))?;
            if shard.replicas.get(&m.to) != Some(&Role::Learner) {
                return Err(format!("move {id}: {} is not a learner of shard {}", m.to, m.shard));
            }
            if m.from.is_some_and(|f| !shard.replicas.contains_key(&f)) {
                return Err(format!("move {id}: what it replaces left shard {}", m.shard));
            }
        }
        Ok(())
    }
}
