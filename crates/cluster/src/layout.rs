//! The layout function: nodes × shards-per-node × replicas → shards, each
//! with a contiguous slot range and an ordered replica list.
//!
//! With N nodes and S shards per node there are T = N·S shards. Shard k
//! (0-based) owns slots `[k·q + min(k, r), …]` where `q = 16384 / T` and
//! `r = 16384 % T`: the first r shards get one slot more, so sizes differ by
//! at most one and the ranges tile 0..16384 in order. Shard k's replicas are
//! the nodes at positions `(k + j) mod N` for j in 0..R of the node list
//! sorted by number; the first is the preferred primary. Each node is
//! therefore preferred primary of exactly S shards and holds exactly R·S
//! replicas, and no shard has two replicas on one node.

use std::ops::RangeInclusive;

use shoal_engine::slot::{Slot, SLOT_COUNT};

use crate::ids::{fnv1a, hex40};
use crate::spec::{NodeAddr, NodeNumber};

/// A shard's index in `Layout::shards`.
pub type ShardId = u16;

/// Most shards in a layout: each needs at least one slot.
pub const MAX_SHARDS: usize = SLOT_COUNT as usize;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    pub id: ShardId,
    pub slots: RangeInclusive<Slot>,
    /// Node numbers holding a replica, the preferred primary first.
    pub replicas: Vec<NodeNumber>,
    /// 40-hex id for CLUSTER SHARDS / MYSHARDID.
    pub hex_id: String,
}

impl Shard {
    pub fn primary(&self) -> NodeNumber {
        self.replicas[0]
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub nodes: Vec<NodeAddr>,
    pub shards: Vec<Shard>,
    pub shards_per_node: u16,
    pub replicas: u16,
    /// Which shard owns each slot.
    slot_owner: Vec<ShardId>,
    fingerprint: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    #[error("--shards must be at least 1")]
    NoShards,
    #[error("--replicas must be between 1 and the number of nodes ({nodes}), not {replicas}")]
    BadReplicas { replicas: u16, nodes: usize },
    #[error("{0} shards in all is more than the {MAX_SHARDS} slots to share")]
    TooManyShards(usize),
    #[error("node {0} is not in --initial-cluster")]
    UnknownNode(NodeNumber),
}

impl Layout {
    /// Computes the layout. `nodes` must be sorted by number and unique, as
    /// `parse_initial_cluster` returns them.
    pub fn new(nodes: Vec<NodeAddr>, shards_per_node: u16, replicas: u16) -> Result<Layout, LayoutError> {
        assert!(nodes.windows(2).all(|w| w[0].number < w[1].number), "nodes sorted and unique");
        let n = nodes.len();
        if shards_per_node == 0 {
            return Err(LayoutError::NoShards);
        }
        if replicas == 0 || usize::from(replicas) > n {
            return Err(LayoutError::BadReplicas { replicas, nodes: n });
        }
        let total = n * usize::from(shards_per_node);
        if total > MAX_SHARDS {
            return Err(LayoutError::TooManyShards(total));
        }
        let fingerprint = fingerprint(&nodes, shards_per_node, replicas);
        let (q, r) = (SLOT_COUNT as usize / total, SLOT_COUNT as usize % total);
        let mut shards = Vec::with_capacity(total);
        let mut slot_owner = vec![0; SLOT_COUNT as usize];
        for k in 0..total {
            let start = k * q + k.min(r);
            let end = start + q + usize::from(k < r) - 1;
            slot_owner[start..=end].fill(k as ShardId);
            let replicas = (0..usize::from(replicas)).map(|j| nodes[(k + j) % n].number).collect();
            shards.push(Shard {
                id: k as ShardId,
                slots: start as Slot..=end as Slot,
                replicas,
                hex_id: Layout::shard_hex_id(&fingerprint, k as ShardId),
            });
        }
        debug_assert_eq!(shards.last().map(|s| *s.slots.end()), Some(SLOT_COUNT - 1));
        Ok(Layout { nodes, shards, shards_per_node, replicas, slot_owner, fingerprint })
    }

    /// A layout with the given shards (their ranges tiling every slot in
    /// order) under the cluster's `fingerprint`: the live view of a
    /// cluster map (`ClusterMap::layout`).
    pub(crate) fn from_parts(nodes: Vec<NodeAddr>, shards: Vec<Shard>, replicas: u16, fingerprint: String) -> Layout {
        let mut slot_owner = vec![0; SLOT_COUNT as usize];
        for (index, shard) in shards.iter().enumerate() {
            slot_owner[usize::from(*shard.slots.start())..=usize::from(*shard.slots.end())].fill(index as ShardId);
        }
        let shards_per_node = (shards.len() / nodes.len().max(1)).max(1) as u16;
        Layout { nodes, shards, shards_per_node, replicas, slot_owner, fingerprint }
    }

    /// A shard's 40-hex id (CLUSTER SHARDS, MYSHARDID).
    pub fn shard_hex_id(fingerprint: &str, shard: ShardId) -> String {
        hex40(&format!("shard/{fingerprint}/{shard}"))
    }

    /// One node holding every slot: the standalone server's layout.
    pub fn single(node: NodeAddr) -> Layout {
        Layout::new(vec![node], 1, 1).expect("one node, one shard, one replica is valid")
    }

    /// The shard owning `slot` (`slot_owner` holds indexes into `shards`).
    pub fn shard_of_slot(&self, slot: Slot) -> &Shard {
        &self.shards[usize::from(self.slot_owner[usize::from(slot)])]
    }

    pub fn node(&self, number: NodeNumber) -> Result<&NodeAddr, LayoutError> {
        self.nodes.iter().find(|n| n.number == number).ok_or(LayoutError::UnknownNode(number))
    }

    /// A short string equal on two nodes exactly when their layouts are.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The node's stable 40-hex id.
    pub fn node_hex_id(node: &NodeAddr) -> String {
        hex40(&format!("node/{}/{}:{}", node.number, node.host, node.port))
    }

    /// Shards whose replica set includes `number`.
    pub fn shards_on(&self, number: NodeNumber) -> impl Iterator<Item = &Shard> {
        self.shards.iter().filter(move |s| s.replicas.contains(&number))
    }
}

/// Hash of the canonical text of everything the layout depends on.
fn fingerprint(nodes: &[NodeAddr], shards_per_node: u16, replicas: u16) -> String {
    let mut canonical = format!("shoal-layout-v1;shards={shards_per_node};replicas={replicas}");
    for node in nodes {
        canonical.push_str(&format!(";{node}"));
    }
    format!("{:016x}", fnv1a(canonical.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::parse_initial_cluster;

    fn nodes(n: u32) -> Vec<NodeAddr> {
        let text: Vec<String> = (1..=n).map(|i| format!("{i}=127.0.0.1:{}", 7000 + i)).collect();
        parse_initial_cluster(&text.join(",")).unwrap()
    }

    #[test]
    fn ranges_tile_all_slots_with_sizes_within_one() {
        for (n, s) in [(1, 1), (3, 3), (5, 7), (7, 1), (16, 64)] {
            let layout = Layout::new(nodes(n), s, 1).unwrap();
            let mut next = 0u32;
            let sizes: Vec<u32> = layout
                .shards
                .iter()
                .map(|sh| {
                    assert_eq!(u32::from(*sh.slots.start()), next);
                    next = u32::from(*sh.slots.end()) + 1;
                    u32::from(*sh.slots.end()) - u32::from(*sh.slots.start()) + 1
                })
                .collect();
            assert_eq!(next, u32::from(SLOT_COUNT));
            assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1, "{n}x{s}");
            for slot in [0, 1, 8191, 16383] {
                assert!(layout.shard_of_slot(slot).slots.contains(&slot));
            }
        }
    }

    #[test]
    fn replicas_and_primaries_spread_evenly() {
        for (n, s, r) in [(3, 3, 3), (5, 2, 3), (4, 4, 2), (3, 1, 1)] {
            let layout = Layout::new(nodes(n), s, r).unwrap();
            for node in &layout.nodes {
                let held = layout.shards_on(node.number).count();
                let led = layout.shards.iter().filter(|sh| sh.primary() == node.number).count();
                assert_eq!(held, usize::from(r) * usize::from(s), "{n}/{s}/{r}");
                assert_eq!(led, usize::from(s));
            }
            for shard in &layout.shards {
                let mut distinct = shard.replicas.clone();
                distinct.sort();
                distinct.dedup();
                assert_eq!(distinct.len(), usize::from(r));
            }
        }
    }

    #[test]
    fn fingerprint_changes_with_any_input() {
        let base = Layout::new(nodes(3), 3, 1).unwrap();
        assert_eq!(base.fingerprint(), Layout::new(nodes(3), 3, 1).unwrap().fingerprint());
        assert_ne!(base.fingerprint(), Layout::new(nodes(3), 2, 1).unwrap().fingerprint());
        assert_ne!(base.fingerprint(), Layout::new(nodes(3), 3, 2).unwrap().fingerprint());
        assert_ne!(base.fingerprint(), Layout::new(nodes(4), 3, 1).unwrap().fingerprint());
        let mut moved = nodes(3);
        moved[2].port += 1;
        assert_ne!(base.fingerprint(), Layout::new(moved, 3, 1).unwrap().fingerprint());
    }

    #[test]
    fn invalid_layouts_are_errors() {
        assert_eq!(Layout::new(nodes(3), 0, 1), Err(LayoutError::NoShards));
        assert_eq!(Layout::new(nodes(3), 1, 4), Err(LayoutError::BadReplicas { replicas: 4, nodes: 3 }));
        assert_eq!(Layout::new(nodes(3), 1, 0), Err(LayoutError::BadReplicas { replicas: 0, nodes: 3 }));
        assert!(matches!(Layout::new(nodes(2), 9000, 1), Err(LayoutError::TooManyShards(18000))));
    }
}
