//! The cluster map under random command sequences: whatever is applied, in
//! whatever order, the invariants hold, the epoch grows exactly with each
//! applied command, a refused command changes nothing, replica and shard
//! ids are never given twice, and a retried join registers one node.

use std::collections::BTreeSet;

use proptest::prelude::*;
use shoal_cluster::map::{node_of, Applied, ClusterMap, MetaCmd, NodeState, ReplicaId};
use shoal_cluster::{Layout, NodeAddr};

fn layout(nodes: u32, shards: u16, replicas: u16) -> Layout {
    let nodes = (1..=nodes)
        .map(|n| NodeAddr { number: n, host: "127.0.0.1".into(), port: 7000 + n as u16, peer_port: 17000 + n as u16 })
        .collect();
    Layout::new(nodes, shards, replicas).expect("a valid layout")
}

/// A command drawn from small numbers, so that many hit real nodes,
/// shards and moves (and many are refused, which is tested too).
fn command() -> impl Strategy<Value = MetaCmd> {
    prop_oneof![
        (0u64..6, 0u16..8).prop_map(|(nonce, port)| MetaCmd::AddNode {
            nonce,
            host: "127.0.0.1".into(),
            port: 7100 + port,
            peer_port: 17100 + port,
        }),
        (1u32..10, 0u8..3).prop_map(|(node, s)| MetaCmd::SetNodeState {
            node,
            state: [NodeState::Up, NodeState::Draining, NodeState::Removed][usize::from(s)],
        }),
        (0u16..6, proptest::option::of(1u64..10), 1u32..10).prop_map(|(shard, from, to_node)| MetaCmd::StartMove {
            shard,
            from,
            to_node
        }),
        (1u64..12).prop_map(|id| MetaCmd::FinishMove { id }),
        (1u64..12).prop_map(|id| MetaCmd::CancelMove { id }),
        (0u16..6, 1u64..10).prop_map(|(shard, replica)| MetaCmd::SetPreferredLeader { shard, replica }),
        (0u16..8, 0u16..16384).prop_map(|(shard, at)| MetaCmd::StartSplit { shard, at, automatic: false }),
        (0u16..8).prop_map(|shard| MetaCmd::FinishSplit { shard }),
        (0u16..8).prop_map(|shard| MetaCmd::CancelSplit { shard }),
        (0u16..8, 0u16..8).prop_map(|(left, right)| MetaCmd::StartMerge { left, right }),
        (0u16..8).prop_map(|left| MetaCmd::FinishMerge { left }),
        (0u16..8).prop_map(|left| MetaCmd::CancelMerge { left }),
    ]
}

/// `StartMove`'s `from` is drawn as a node number: turn it into that
/// node's replica of the shard, if it has one, so moves often replace one.
fn resolve(map: &ClusterMap, cmd: MetaCmd) -> MetaCmd {
    match cmd {
        MetaCmd::StartMove { shard, from: Some(node), to_node } => {
            let from = map
                .shards
                .get(&shard)
                .and_then(|s| s.replicas.keys().copied().find(|&r| u64::from(node_of(r)) == node))
                .or(Some(node));
            MetaCmd::StartMove { shard, from, to_node }
        }
        other => other,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_command_sequence_keeps_the_map_whole(cmds in proptest::collection::vec(command(), 1..60)) {
        let mut map = ClusterMap::from_layout(&layout(3, 2, 3));
        prop_assert_eq!(map.check(), Ok(()));
        let mut given: BTreeSet<ReplicaId> = map.shards.values().flat_map(|s| s.replicas.keys().copied()).collect();
        let mut shards: BTreeSet<u16> = map.shards.keys().copied().collect();
        for cmd in cmds {
            let cmd = resolve(&map, cmd);
            let before = map.clone();
            match map.apply(&cmd) {
                Ok(Applied::Node(node)) if before.nodes.contains_key(&node) => {
                    prop_assert_eq!(&map, &before, "a retried join changes nothing");
                }
                Ok(applied) => {
                    prop_assert_eq!(map.epoch, before.epoch + 1, "{:?}", cmd);
                    if let Applied::Move { to, .. } = applied {
                        prop_assert!(given.insert(to), "replica id {} given twice", to);
                    }
                    if let (Applied::Split { child }, MetaCmd::StartSplit { shard, .. }) = (&applied, &cmd) {
                        prop_assert!(shards.insert(*child), "shard id {} given twice", child);
                        for &born in map.splits[shard].replicas.values() {
                            prop_assert!(given.insert(born), "replica id {} given twice", born);
                        }
                    }
                }
                Err(_) => prop_assert_eq!(&map, &before, "a refused {:?} changed the map", cmd),
            }
            prop_assert_eq!(map.check(), Ok(()), "after {:?}", cmd);
        }
    }
}

#[test]
fn a_move_adds_a_learner_then_replaces_the_source() {
    let mut map = ClusterMap::from_layout(&layout(3, 1, 3));
    let Ok(Applied::Node(four)) =
        map.apply(&MetaCmd::AddNode { nonce: 9, host: "10.0.0.4".into(), port: 7000, peer_port: 17000 })
    else {
        panic!("join")
    };
    assert_eq!(four, 4);
    assert_eq!(
        map.apply(&MetaCmd::AddNode { nonce: 9, host: "10.0.0.4".into(), port: 7000, peer_port: 17000 }),
        Ok(Applied::Node(4)),
        "a retried join"
    );
    let source = map.shards[&0].preferred_leader;
    let Ok(Applied::Move { id, to }) = map.apply(&MetaCmd::StartMove { shard: 0, from: Some(source), to_node: 4 })
    else {
        panic!("start")
    };
    assert_eq!(node_of(to), 4);
    assert!(map.apply(&MetaCmd::StartMove { shard: 0, from: None, to_node: 4 }).is_err(), "one move per shard");
    assert!(map.apply(&MetaCmd::SetNodeState { node: node_of(source), state: NodeState::Removed }).is_err());
    map.apply(&MetaCmd::FinishMove { id }).unwrap();
    let shard = &map.shards[&0];
    assert!(!shard.replicas.contains_key(&source) && shard.replicas.contains_key(&to));
    assert_eq!(shard.preferred_leader, to, "the moved preferred leader's place goes to its replacement");
    // The source's node still holds replicas of the other two shards.
    let node = node_of(source);
    assert_eq!(
        map.apply(&MetaCmd::SetNodeState { node, state: NodeState::Removed }),
        Err(shoal_cluster::map::MetaError::NodeHoldsReplicas(node))
    );
    assert_eq!(map.check(), Ok(()));
}

#[test]
fn the_first_map_reads_back_as_its_layout_and_round_trips_as_json() {
    for (n, s, r) in [(1, 1, 1), (3, 3, 3), (5, 2, 3), (4, 4, 2)] {
        let layout = layout(n, s, r);
        let map = ClusterMap::from_layout(&layout);
        assert_eq!(map.layout(), layout, "{n} nodes, {s} shards each, {r} replicas");
        assert_eq!(ClusterMap::from_json(&map.to_json()), Ok(map));
    }
    assert!(ClusterMap::from_json("{}").is_err());
}

#[test]
fn the_layout_view_shows_voters_only_and_moves_the_preferred_leader_first() {
    let mut map = ClusterMap::from_layout(&layout(3, 1, 2));
    let add = MetaCmd::AddNode { nonce: 7, host: "127.0.0.1".into(), port: 7004, peer_port: 17004 };
    let Ok(Applied::Node(four)) = map.apply(&add) else { panic!("node added") };
    let Ok(Applied::Move { id, to }) = map.apply(&MetaCmd::StartMove { shard: 0, from: Some(1), to_node: four }) else {
        panic!("move started")
    };
    assert_eq!(map.layout().shards[0].replicas, vec![1, 2], "the learner serves nothing yet");
    map.apply(&MetaCmd::FinishMove { id }).unwrap();
    assert_eq!(map.layout().shards[0].replicas, vec![four, 2], "the target took the source's place as preferred");
    assert_eq!(node_of(to), four);
    assert_eq!(map.layout().nodes.len(), 4);
    let back = ClusterMap::from_json(&map.to_json()).unwrap();
    assert_eq!(back.layout(), map.layout());
}

#[test]
fn a_split_gives_the_right_hand_slots_to_a_new_shard_on_the_same_nodes() {
    let mut map = ClusterMap::from_layout(&layout(3, 1, 3));
    let parent = map.shards[&1].clone();
    let (start, end) = (*parent.slots.start(), *parent.slots.end());
    assert!(map.apply(&MetaCmd::StartSplit { shard: 1, at: start, automatic: false }).is_err(), "the first slot stays");
    assert!(
        map.apply(&MetaCmd::StartSplit { shard: 1, at: end + 1, automatic: false }).is_err(),
        "a slot of another shard"
    );
    let at = start + 100;
    let Ok(Applied::Split { child }) = map.apply(&MetaCmd::StartSplit { shard: 1, at, automatic: false }) else {
        panic!("split")
    };
    assert_eq!(child, 3, "the next id after the bootstrap shards");
    assert!(map.apply(&MetaCmd::StartSplit { shard: 1, at: at + 1, automatic: false }).is_err(), "one split at a time");
    assert!(map.apply(&MetaCmd::StartMove { shard: 1, from: None, to_node: 1 }).is_err(), "no move while splitting");
    // Routing does not change until the split is applied.
    assert_eq!(map.layout().shard_of_slot(at).id, 1);
    map.apply(&MetaCmd::FinishSplit { shard: 1 }).unwrap();
    assert_eq!(map.check(), Ok(()));
    assert_eq!(map.shards[&1].slots, start..=at - 1);
    let born = &map.shards[&child];
    assert_eq!(born.slots, at..=end);
    let nodes = |s: &shoal_cluster::map::ShardInfo| s.replicas.keys().map(|&r| node_of(r)).collect::<Vec<_>>();
    assert_eq!(nodes(born), nodes(&parent));
    assert_eq!(node_of(born.preferred_leader), node_of(parent.preferred_leader));
    assert!(born.replicas.keys().all(|r| !parent.replicas.contains_key(r)), "new replica ids");
    let layout = map.layout();
    assert_eq!((layout.shard_of_slot(at).id, layout.shard_of_slot(at - 1).id), (child, 1));
    assert!(map.knows_shard(u32::from(child)) && !map.knows_shard(u32::from(child) + 1));
    // A map saved before splits existed reads back with its next shard id.
    let old = map.to_json().replace(",\"splits\":{}", "").replace(",\"next_shard\":4", "");
    assert!(!old.contains("next_shard"));
    assert_eq!(ClusterMap::from_json(&old).unwrap(), map);
}

#[test]
fn a_merge_gives_the_left_shard_the_right_ones_slots() {
    let mut map = ClusterMap::from_layout(&layout(3, 1, 3));
    assert_eq!(
        map.apply(&MetaCmd::StartMerge { left: 0, right: 2 }),
        Err(shoal_cluster::map::MetaError::NotAdjacent(0, 2))
    );
    assert_eq!(
        map.apply(&MetaCmd::StartMerge { left: 1, right: 0 }),
        Err(shoal_cluster::map::MetaError::NotAdjacent(1, 0))
    );
    assert!(map.co_located(0, 1), "every shard on all three nodes");
    let mut apart = ClusterMap::from_layout(&layout(3, 1, 2));
    assert_eq!(
        apart.apply(&MetaCmd::StartMerge { left: 0, right: 1 }),
        Err(shoal_cluster::map::MetaError::NotCoLocated(0, 1))
    );
    map.apply(&MetaCmd::StartMerge { left: 0, right: 1 }).unwrap();
    assert!(map.busy(0) && map.busy(1) && !map.busy(2));
    assert!(
        map.apply(&MetaCmd::StartSplit { shard: 1, at: 6000, automatic: false }).is_err(),
        "no split of a merging shard"
    );
    assert!(map.apply(&MetaCmd::StartMerge { left: 1, right: 2 }).is_err(), "one change at a time");
    let end = *map.shards[&1].slots.end();
    map.apply(&MetaCmd::FinishMerge { left: 0 }).unwrap();
    assert_eq!(map.shards[&0].slots, 0..=end);
    assert!(!map.shards.contains_key(&1));
    assert_eq!(map.layout().shard_of_slot(end).id, 0);
    assert_eq!(map.check(), Ok(()));
}
