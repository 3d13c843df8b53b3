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
//! 4. (balancing on, no move or split under way) a cluster with fewer
//!    shards than up nodes splits its widest shard at its middle slot, so
//!    that every node can lead one;
//! 5. (balancing on, no move under way) a shard's preferred leader moves to
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

/// The next commands to commit, in order (none when the map is where the
/// policy wants it). Usually one; a chain of preferred-leader hand-offs
/// is several.
pub fn next(map: &ClusterMap, policy: Policy) -> Vec<MetaCmd> {
    let held = replicas_per_node(map);
    let empty_drained = map.nodes.iter().find(|(n, info)| info.state == NodeState::Draining && held[n] == 0);
    if let Some((&node, _)) = empty_drained {
        return vec![MetaCmd::SetNodeState { node, state: NodeState::Removed }];
    }
    if map.moves.len() < policy.max_moves {
        if let Some(cmd) = drain(map, &held).or_else(|| policy.balance.then(|| spread_replicas(map, &held)).flatten()) {
            return vec![cmd];
        }
    }
    if policy.balance && map.moves.is_empty() {
        if let Some(split) = widen(map) {
            return vec![split];
        }
        return spread_leaders(map);
    }
    Vec::new()
}

/// A split of the widest shard (most slots) at its middle, when there are
/// fewer shards than up nodes and no split is under way.
fn widen(map: &ClusterMap) -> Option<MetaCmd> {
    let up = map.nodes.values().filter(|n| n.state == NodeState::Up).count();
    if !map.splits.is_empty() || map.shards.len() >= up {
        return None;
    }
    let width = |s: &crate::map::ShardInfo| u32::from(*s.slots.end()) - u32::from(*s.slots.start());
    let (&shard, info) =
        map.shards.iter().filter(|(_, s)| width(s) > 0).max_by_key(|(&id, s)| (width(s), u16::MAX - id))?;
    let at = ((u32::from(*info.slots.start()) + u32::from(*info.slots.end())).div_ceil(2)) as u16;
    Some(MetaCmd::StartSplit { shard, at, automatic: true })
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

/// Whether `shard` has a move, a split or a merge under way (one change
/// at a time).
fn moving(map: &ClusterMap, shard: ShardId) -> bool {
    map.busy(shard)
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

/// Pairs of up nodes `(from, to)` whose counts differ by more than one,
/// the widest gaps first: where a replica or a preferred leader should go.
fn uneven_pairs(counts: &BTreeMap<NodeNumber, usize>) -> Vec<(NodeNumber, NodeNumber)> {
    let mut pairs: Vec<(usize, NodeNumber, NodeNumber)> = Vec::new();
    for (&from, &high) in counts {
        for (&to, &low) in counts {
            if high > low + 1 {
                pairs.push((high - low, from, to));
            }
        }
    }
    pairs.sort_by_key(|&(gap, from, to)| (std::cmp::Reverse(gap), from, to));
    pairs.into_iter().map(|(_, from, to)| (from, to)).collect()
}

fn spread_replicas(map: &ClusterMap, held: &BTreeMap<NodeNumber, usize>) -> Option<MetaCmd> {
    let up: BTreeMap<NodeNumber, usize> = held
        .iter()
        .filter(|(n, _)| map.nodes.get(n).is_some_and(|i| i.state == NodeState::Up))
        .map(|(&n, &c)| (n, c))
        .collect();
    for (most, fewest) in uneven_pairs(&up) {
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
        if let Some((_, shard, from)) = best {
            return Some(MetaCmd::StartMove { shard, from: Some(from), to_node: fewest });
        }
    }
    None
}

/// Moves one preferred leadership from the node preferred most to one
/// preferred by at least two fewer, along a chain of hand-offs when no
/// shard connects the two directly (node A's shard to B, one of B's to
/// C): each hop is to a node holding a voter of that shard, and the
/// nodes in between keep their count.
fn spread_leaders(map: &ClusterMap) -> Vec<MetaCmd> {
    let mut preferred: BTreeMap<NodeNumber, usize> =
        map.nodes.iter().filter(|(_, n)| n.state == NodeState::Up).map(|(&n, _)| (n, 0)).collect();
    for shard in map.shards.values() {
        if let Some(count) = preferred.get_mut(&node_of(shard.preferred_leader)) {
            *count += 1;
        }
    }
    let mut sources: Vec<(NodeNumber, usize)> = preferred.iter().map(|(&n, &c)| (n, c)).collect();
    sources.sort_by_key(|&(n, c)| (std::cmp::Reverse(c), n));
    for (source, count) in sources {
        // Breadth first from `source`: how each node was reached (the
        // shard handed over and the replica that takes it).
        let mut reached: BTreeMap<NodeNumber, Option<(NodeNumber, ShardId, ReplicaId)>> =
            BTreeMap::from([(source, None)]);
        let mut queue = std::collections::VecDeque::from([source]);
        while let Some(u) = queue.pop_front() {
            if preferred[&u] + 2 <= count {
                return chain(&reached, u);
            }
            for (&shard, _) in map.shards.iter().filter(|(_, info)| node_of(info.preferred_leader) == u) {
                for &v in preferred.keys() {
                    if reached.contains_key(&v) {
                        continue;
                    }
                    if let Some((replica, Role::Voter)) = map.replica_on(shard, v) {
                        reached.insert(v, Some((u, shard, replica)));
                        queue.push_back(v);
                    }
                }
            }
        }
    }
    Vec::new()
}

/// The hand-offs that lead from the search's source to `end`, in order.
fn chain(reached: &BTreeMap<NodeNumber, Option<(NodeNumber, ShardId, ReplicaId)>>, end: NodeNumber) -> Vec<MetaCmd> {
    let mut hops = Vec::new();
    let mut at = end;
    while let Some(Some((from, shard, replica))) = reached.get(&at) {
        hops.push(MetaCmd::SetPreferredLeader { shard: *shard, replica: *replica });
        at = *from;
    }
    hops.reverse();
    hops
}
