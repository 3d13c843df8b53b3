//! The balancer's planner on maps alone: a grown cluster spreads evenly
//! (splitting shards when there are fewer than nodes), a drained node
//! empties and leaves, and no more moves run at once than the policy
//! allows.

use std::collections::BTreeMap;

use shoal_cluster::map::{node_of, Applied, ClusterMap, MetaCmd, NodeState};
use shoal_cluster::plan::{next, Policy};
use shoal_cluster::{Layout, NodeAddr, NodeNumber};

fn map(nodes: u32, shards: u16, replicas: u16) -> ClusterMap {
    let nodes = (1..=nodes)
        .map(|n| NodeAddr { number: n, host: "127.0.0.1".into(), port: 7000 + n as u16, peer_port: 17000 + n as u16 })
        .collect();
    ClusterMap::from_layout(&Layout::new(nodes, shards, replicas).unwrap())
}

fn join(map: &mut ClusterMap, nonce: u64) -> NodeNumber {
    let port = 8000 + nonce as u16;
    match map.apply(&MetaCmd::AddNode { nonce, host: "127.0.0.1".into(), port, peer_port: port + 10000 }) {
        Ok(Applied::Node(n)) => n,
        other => panic!("join: {other:?}"),
    }
}

/// Runs the planner, finishing every move at once, until it has nothing
/// more to do; returns how many commands it gave.
fn settle(map: &mut ClusterMap, policy: Policy) -> usize {
    for round in 0..1000 {
        let cmds = next(map, policy);
        if cmds.is_empty() {
            return round;
        }
        for cmd in cmds {
            match map.apply(&cmd) {
                Ok(Applied::Move { id, .. }) => {
                    map.apply(&MetaCmd::FinishMove { id }).unwrap();
                }
                Ok(Applied::Split { .. }) => {
                    let MetaCmd::StartSplit { shard, .. } = cmd else { unreachable!("only a split gives Split") };
                    map.apply(&MetaCmd::FinishSplit { shard }).unwrap();
                }
                Ok(_) => {}
                Err(e) => panic!("the planner gave a refused command {cmd:?}: {e}"),
            }
            map.check().unwrap();
        }
    }
    panic!("the planner never settled");
}

fn spread(map: &ClusterMap) -> (BTreeMap<NodeNumber, usize>, BTreeMap<NodeNumber, usize>) {
    let up = map.nodes.iter().filter(|(_, n)| n.state == NodeState::Up).map(|(&n, _)| n);
    let (mut replicas, mut leaders): (BTreeMap<_, _>, BTreeMap<_, _>) =
        (up.clone().map(|n| (n, 0)).collect(), up.map(|n| (n, 0)).collect());
    for shard in map.shards.values() {
        for &r in shard.replicas.keys() {
            *replicas.get_mut(&node_of(r)).unwrap() += 1;
        }
        *leaders.get_mut(&node_of(shard.preferred_leader)).unwrap() += 1;
    }
    (replicas, leaders)
}

fn within_one(counts: &BTreeMap<NodeNumber, usize>) -> bool {
    counts.values().max().unwrap() - counts.values().min().unwrap() <= 1
}

#[test]
fn two_joined_nodes_get_their_share_of_replicas_and_leaders() {
    let policy = Policy { balance: true, max_moves: 2 };
    let mut m = map(3, 3, 3);
    assert_eq!(next(&m, policy), vec![], "the bootstrap layout is even");
    join(&mut m, 1);
    join(&mut m, 2);
    let steps = settle(&mut m, policy);
    let (replicas, leaders) = spread(&m);
    assert!(within_one(&replicas), "replicas: {replicas:?}");
    assert!(within_one(&leaders), "preferred leaders: {leaders:?}");
    assert!(steps >= 10, "27 replicas over 5 nodes needs moves: {steps}");
    assert!(m.shards.values().all(|s| s.replicas.len() == 3), "every shard keeps 3 replicas");
}

#[test]
fn a_drained_node_empties_and_is_removed_even_without_balancing() {
    let policy = Policy { balance: false, max_moves: 1 };
    let mut m = map(4, 2, 3);
    m.apply(&MetaCmd::SetNodeState { node: 2, state: NodeState::Draining }).unwrap();
    settle(&mut m, policy);
    assert_eq!(m.nodes[&2].state, NodeState::Removed);
    assert!(m.shards.values().all(|s| s.replicas.len() == 3 && s.replicas.keys().all(|&r| node_of(r) != 2)));
}

#[test]
fn no_more_moves_run_at_once_than_allowed() {
    let policy = Policy { balance: true, max_moves: 2 };
    let mut m = map(3, 4, 3);
    join(&mut m, 1);
    for _ in 0..10 {
        for cmd in next(&m, policy) {
            m.apply(&cmd).unwrap();
        }
    }
    assert_eq!(m.moves.len(), 2, "two moves started, none finished");
    let shards: std::collections::BTreeSet<_> = m.moves.values().map(|mv| mv.shard).collect();
    assert_eq!(shards.len(), 2, "one move per shard");
}

/// Many shapes (nodes, shards per node, replicas, joins): the planner
/// always settles within ±1 of even replicas and preferred leaders,
/// with every shard keeping its replica count.
#[test]
fn every_shape_settles_evenly() {
    let policy = Policy { balance: true, max_moves: 3 };
    for (n, s, r) in [(1, 2, 1), (2, 3, 2), (3, 1, 3), (3, 2, 3), (3, 3, 3), (4, 2, 3), (5, 1, 3), (3, 5, 2)] {
        for joins in 1..=3u64 {
            let mut m = map(n, s, r);
            for j in 0..joins {
                join(&mut m, j + 1);
            }
            settle(&mut m, policy);
            let (replicas, leaders) = spread(&m);
            let shape = format!("{n} nodes x {s} shards, {r} replicas, {joins} joined");
            assert!(within_one(&replicas), "{shape}: replicas {replicas:?}");
            assert!(within_one(&leaders), "{shape}: preferred leaders {leaders:?}");
            assert!(m.shards.values().all(|sh| sh.replicas.len() == usize::from(r)), "{shape}");
        }
    }
}

#[test]
fn a_cluster_with_fewer_shards_than_nodes_splits_until_each_can_lead_one() {
    let policy = Policy { balance: true, max_moves: 2 };
    let mut m = map(3, 1, 3);
    join(&mut m, 1);
    join(&mut m, 2);
    settle(&mut m, policy);
    assert_eq!(m.shards.len(), 5, "split until there are as many shards as nodes");
    let (replicas, leaders) = spread(&m);
    assert!(leaders.values().all(|&n| n == 1), "each node the preferred leader of one: {leaders:?}");
    assert!(replicas.values().all(|&n| n == 3), "15 replicas, 3 per node: {replicas:?}");
    let widths: Vec<u32> =
        m.shards.values().map(|s| u32::from(*s.slots.end()) - u32::from(*s.slots.start()) + 1).collect();
    assert!(widths.iter().all(|&w| (2730..=5462).contains(&w)), "the widest were split: {widths:?}");
}
