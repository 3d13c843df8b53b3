//! The balancer's planner: from a cluster map, the next command that
//! brings it closer to an even spread. Pure, so it is tested on maps
//! alone; the metadata leader runs it every balance tick and commits what
//! it returns, one command at a time.
//!
//! In order of urgency:
//! 1. a draining node that holds nothing any more is removed;
//! 2. a draining node's replicas move to the up nodes holding fewest;
//! 3. (balancing on) a replica moves from the up node holding most to the
//!    one holding fewest, while they differ by more than one;
//! 4. (balancing on, no move under way) a shard's preferred leader moves to
//!    the up node preferred by fewest, while they differ by more than one.
//!
//! At most `max_moves` moves are under way at once, and a shard has at
//! most one: serving goes on while replicas move.

use std::collections::BTreeMap;

use crate::layout::ShardId;
use crate::map::{node_of, ClusterMap, MetaCmd, NodeState, ReplicaId, Role};
use crate::spec::NodeNumber;

/// What the planner may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Spread replicas and preferred leaders evenly (`--balance on`);
    /// draining happens either way.
    pub balance: bool,
    /// Most moves under way at once (`--max-concurrent-moves`).
    pub max_moves: usize,
}

/// The next command to commit, if the map is not yet where the policy
/// wants it.
pub fn next(map: &ClusterMap, policy: Policy) -> Option<MetaCmd> {
    let held = replicas_per_node(map);
    let empty_drained = map.nodes.iter().find(|(n, info)| info.state == NodeState::Draining && held[n] == 0);
    if let Some((&node, _)) = empty_drained {
        return Some(MetaCmd::SetNodeState { node, state: NodeState::Removed });
    }
    if map.moves.len() < policy.max_moves {
        if let Some(cmd) = drain(map, &held).or_else(|| policy.balance.then(|| spread_replicas(map, &held)).flatten()) {
            return Some(cmd);
        }
    }
    if policy.balance && map.moves.is_empty() {
        return spread_leaders(map);
    }
    None
}

/// Replicas (learners included) held by each node not removed.
fn replicas_per_node(map: &ClusterMap) -> BTreeMap<NodeNumber, usize> {
    let mut held: BTreeMap<NodeNumber, usize> =
        map.nodes.iter().filter(|(_, n)| n.state != NodeState::Removed).map(|(&n, _)| (n, 0)).collect();
    for shard in map.shards.values() {
        for &replica in shard.replicas.keys() {
            *held.entry(node_of(replica)).or_default() += 1;
        }
    }
    held
}

fn moving(map: &ClusterMap, shard: ShardId) -> bool {
    map.moves.values().any(|m| m.shard == shard)
}

/// The up node holding fewest replicas among those without one of `shard`.
fn emptiest_for(map: &ClusterMap, held: &BTreeMap<NodeNumber, usize>, shard: ShardId) -> Option<NodeNumber> {
    let up = |n: &NodeNumber| map.nodes.get(n).is_some_and(|i| i.state == NodeState::Up);
    held.iter()
        .filter(|(n, _)| up(n) && map.replica_on(shard, **n).is_none())
        .min_by_key(|(&n, &count)| (count, n))
        .map(|(&n, _)| n)
}

fn drain(map: &ClusterMap, held: &BTreeMap<NodeNumber, usize>) -> Option<MetaCmd> {
    for (&node, _) in map.nodes.iter().filter(|(_, i)| i.state == NodeState::Draining) {
        for (&shard, info) in map.shards.iter().filter(|(&s, _)| !moving(map, s)) {
            let Some(&from) = info.replicas.keys().find(|&&r| node_of(r) == node) else { continue };
            if let Some(to_node) = emptiest_for(map, held, shard) {
                return Some(MetaCmd::StartMove { shard, from: Some(from), to_node });
            }
        }
    }
    None
}

fn spread_replicas(map: &ClusterMap, held: &BTreeMap<NodeNumber, usize>) -> Option<MetaCmd> {
    let up: Vec<(NodeNumber, usize)> = held
        .iter()
        .filter(|(n, _)| map.nodes.get(n).is_some_and(|i| i.state == NodeState::Up))
        .map(|(&n, &c)| (n, c))
        .collect();
    let &(most, most_count) = up.iter().max_by_key(|(n, c)| (*c, std::cmp::Reverse(*n)))?;
    let &(fewest, fewest_count) = up.iter().min_by_key(|(n, c)| (*c, *n))?;
    if most_count <= fewest_count + 1 {
        return None;
    }
    // Rather a replica that is not the shard's preferred leader: moving
    // that one needs no leadership hand-off.
    let candidates = map.shards.iter().filter(|(&s, _)| !moving(map, s) && map.replica_on(s, fewest).is_none());
    let mut best: Option<(bool, ShardId, ReplicaId)> = None;
    for (&shard, info) in candidates {
        let Some((from, Role::Voter)) = map.replica_on(shard, most) else { continue };
        let preferred = info.preferred_leader == from;
        if best.is_none_or(|(p, _, _)| p && !preferred) {
            best = Some((preferred, shard, from));
        }
    }
    let (_, shard, from) = best?;
    Some(MetaCmd::StartMove { shard, from: Some(from), to_node: fewest })
}

fn spread_leaders(map: &ClusterMap) -> Option<MetaCmd> {
    let mut preferred: BTreeMap<NodeNumber, usize> =
        map.nodes.iter().filter(|(_, n)| n.state == NodeState::Up).map(|(&n, _)| (n, 0)).collect();
    for shard in map.shards.values() {
        if let Some(count) = preferred.get_mut(&node_of(shard.preferred_leader)) {
            *count += 1;
        }
    }
    let (&most, &most_count) = preferred.iter().max_by_key(|(n, c)| (**c, std::cmp::Reverse(**n)))?;
    let (&fewest, &fewest_count) = preferred.iter().min_by_key(|(n, c)| (**c, **n))?;
    if most_count <= fewest_count + 1 {
        return None;
    }
    map.shards.iter().filter(|(_, info)| node_of(info.preferred_leader) == most).find_map(|(&shard, _)| {
        let (replica, role) = map.replica_on(shard, fewest)?;
        (role == Role::Voter).then_some(MetaCmd::SetPreferredLeader { shard, replica })
    })
}
