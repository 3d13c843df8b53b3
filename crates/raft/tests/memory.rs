//! Three nodes' `Replicas` in one process over the in-memory transport:
//! writes through leaders, a partitioned node that catches up once healed,
//! a node restarted from its directory, and a wiped node rejoining under a
//! new identity, replicas moved to a fourth node and back, every group
//! converging to the same content digest on every node.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use openraft::raft::VoteRequest;
use shoal_engine::{SetOptions, WriteOp};
use shoal_raft::memory::MemoryNet;
use shoal_raft::transport::{handle, Request, Response};
use shoal_raft::{raft_id, GroupSpec, MoveProgress, ReplicaConfig, ReplicaError, Replicas, Reply, TypeConfig};

const WAIT: Duration = Duration::from_secs(20);
const GROUPS: u32 = 3;

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

fn config(root: &std::path::Path, me: u64) -> ReplicaConfig {
    config_at(root, me, 0)
}

/// `config` for node `me` under `generation` (a node that lost its data).
fn config_at(root: &std::path::Path, me: u64, generation: u32) -> ReplicaConfig {
    ReplicaConfig {
        dir: root.join(format!("node{me}")),
        me,
        client_addrs: (1..=3).map(|id| (id, format!("127.0.0.1:{}", 7000 + id))).collect(),
        // Rotated like the layout: group g prefers node g + 1.
        groups: (0..GROUPS)
            .filter_map(|g| {
                GroupSpec::initial(g, &(0..3).map(|j| (u64::from(g) + j) % 3 + 1).collect::<Vec<_>>(), me, generation)
            })
            .collect(),
        // Slower than the default (see replicas.rs): stable leaders in a
        // debug build on a loaded machine.
        timing: shoal_raft::Timing {
            heartbeat_interval_ms: 100,
            election_timeout_min_ms: 600,
            election_timeout_max_ms: 1200,
            ..Default::default()
        },
        read_mode: Default::default(),
        snapshots: Default::default(),
        wal: Default::default(),
        quarantine_when_fresh: false,
        clock: Default::default(),
        generation,
    }
}

async fn open(net: &MemoryNet, root: &std::path::Path, me: u64) -> Replicas {
    let replicas = Replicas::open(config(root, me), net.transport(me)).await.expect("open replicas");
    net.register(me, replicas.groups());
    replicas
}

/// Writes through whichever running node leads `group`, retrying (within
/// `WAIT`) while there is none or leadership moves.
async fn write(nodes: &HashMap<u64, Replicas>, group: u32, key: String) {
    let op = WriteOp::Set { key: Bytes::from(key.clone()), value: Bytes::from(key), options: SetOptions::default() };
    let deadline = Instant::now() + WAIT;
    loop {
        let leader = nodes.values().find(|n| n.is_leader(group));
        if let Some(leader) = leader {
            match leader.propose(group, op.clone(), now_ms()).await {
                Ok(reply) => return assert!(matches!(reply, Reply::Set { written: true, .. })),
                Err(ReplicaError::NotLeader { .. } | ReplicaError::Unavailable(_)) => {}
                Err(e) => panic!("write to group {group}: {e}"),
            }
        }
        assert!(Instant::now() < deadline, "no leader took a write to group {group}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until every copy of every group has the same digest.
async fn converged(nodes: &HashMap<u64, Replicas>) {
    let deadline = Instant::now() + WAIT;
    loop {
        let agree = (0..GROUPS).all(|g| {
            let digests: Vec<_> = nodes.values().filter_map(|n| Some(n.db(g)?.digest(now_ms()))).collect();
            digests.iter().all(|d| *d == digests[0])
        });
        if agree {
            return;
        }
        assert!(Instant::now() < deadline, "replicas did not converge");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Three nodes with leaders elected, 30 keys written and every copy equal.
async fn three_nodes_with_writes(net: &MemoryNet, root: &std::path::Path) -> HashMap<u64, Replicas> {
    let mut nodes = HashMap::new();
    for id in 1..=3 {
        nodes.insert(id, open(net, root, id).await);
    }
    for n in nodes.values() {
        n.wait_for_leaders(WAIT).await.expect("leaders");
    }
    for i in 0..30 {
        write(&nodes, i % GROUPS, format!("before:{i}")).await;
    }
    converged(&nodes).await;
    nodes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_heal_and_restart_converge_in_process() {
    let root = std::env::temp_dir().join(format!("shoal-memory-{}-{}", std::process::id(), now_ms()));
    let net = MemoryNet::default();
    let mut nodes = three_nodes_with_writes(&net, &root).await;

    // Node 3 is cut off: the other two still form a majority of every group.
    net.cut(3, 1);
    net.cut(3, 2);
    let node3 = nodes.remove(&3).unwrap();
    for i in 0..30 {
        write(&nodes, i % GROUPS, format!("cut:{i}")).await;
    }
    let behind: usize = (0..GROUPS).map(|g| node3.db(g).unwrap().len()).sum();
    assert_eq!(behind, 30, "the cut-off node applied nothing new");
    net.heal();
    nodes.insert(3, node3);
    converged(&nodes).await;

    // Node 2 restarts from its directory (WAL and snapshots) and catches up.
    let node2 = nodes.remove(&2).unwrap();
    node2.shutdown().await;
    drop(node2);
    for i in 0..10 {
        write(&nodes, i % GROUPS, format!("while-2-down:{i}")).await;
    }
    nodes.insert(2, open(&net, &root, 2).await);
    converged(&nodes).await;
    let keys: usize = (0..GROUPS).map(|g| nodes[&2].db(g).unwrap().len()).sum();
    assert_eq!(keys, 70, "every write, once, on the restarted node");
    for n in nodes.values() {
        n.shutdown().await;
    }
}

/// A node whose directory was wiped comes back under a new Raft identity
/// (generation 7): requests for its old identity are refused, each group's
/// leader adds it as a learner and swaps it in for the old one, it ends up
/// with every write, and it counts towards quorum in its old place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_node_rejoins_under_a_new_identity_in_process() {
    let root = std::env::temp_dir().join(format!("shoal-rejoin-{}-{}", std::process::id(), now_ms()));
    let net = MemoryNet::default();
    let mut nodes = three_nodes_with_writes(&net, &root).await;

    let node3 = nodes.remove(&3).unwrap();
    node3.shutdown().await;
    drop(node3);
    net.remove(3);
    std::fs::remove_dir_all(root.join("node3")).expect("wipe node 3");
    for i in 0..15 {
        write(&nodes, i % GROUPS, format!("while-3-gone:{i}")).await;
    }

    let reborn = Replicas::open(config_at(&root, 3, 7), net.transport(3)).await.expect("open the new identity");
    let new_id = raft_id(3, 7);
    assert_eq!((reborn.me(), reborn.generation()), (new_id, 7));
    let old_vote = VoteRequest::<TypeConfig>::new(openraft::Vote::new(99, 1), None);
    let answer = handle(&reborn.groups(), 3, 0, 0, Request::Vote(old_vote)).await;
    assert!(matches!(answer, Response::Error(ref e) if e.contains("gone")), "the old identity answered");
    net.register(3, reborn.groups());
    nodes.insert(3, reborn);

    for group in 0..GROUPS {
        let deadline = Instant::now() + WAIT;
        loop {
            let leader = nodes.values().find(|n| n.is_leader(group) && n.me() != new_id);
            if let Some(leader) = leader {
                if leader.replace_member(group, new_id, WAIT).await.is_ok() {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "group {group} did not take node 3's new identity");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let status = nodes[&1].status(group).expect("held");
        let members = |s: &shoal_raft::GroupStatus| (s.voters.clone(), s.learners.clone());
        let deadline = Instant::now() + WAIT;
        while members(&nodes[&1].status(group).unwrap()) != (vec![1, 2, new_id], vec![]) {
            assert!(Instant::now() < deadline, "group {group}'s membership: {:?}", members(&status));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    converged(&nodes).await;
    let keys: usize = (0..GROUPS).map(|g| nodes[&3].db(g).unwrap().len()).sum();
    assert_eq!(keys, 45, "the new identity holds every write");

    // Node 1 goes: node 2 and node 3's new identity are a majority of
    // every group, which they would not be had node 3 stayed a learner.
    let node1 = nodes.remove(&1).unwrap();
    node1.shutdown().await;
    net.set_down(1, true);
    for i in 0..6 {
        write(&nodes, i % GROUPS, format!("without-1:{i}")).await;
    }
    converged(&nodes).await;
    let keys: usize = (0..GROUPS).map(|g| nodes[&3].db(g).unwrap().len()).sum();
    assert_eq!(keys, 51);
    for n in nodes.values() {
        n.shutdown().await;
    }
}

/// Moves `group`'s replica `from` to `to` (opened on its node first),
/// retrying on whichever node leads the group until the move is done.
async fn move_replica(nodes: &HashMap<u64, Replicas>, group: u32, from: u64, to: u64) {
    let target = &nodes[&shoal_raft::node_of(to)];
    target.open_group(&GroupSpec { id: group, me: to, members: vec![] }).await.expect("open the target");
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(leader) = nodes.values().find(|n| n.is_leader(group)) {
            match leader.move_replica(group, Some(from), to, "127.0.0.1:7999", WAIT).await {
                Ok(MoveProgress::Done) => break,
                Ok(MoveProgress::LeaderMoving) | Err(_) => {}
            }
        }
        assert!(Instant::now() < deadline, "group {group}: the move of {from} to {to} did not finish");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The source is not told it left (openraft stops replicating to it).
    let voters = |n: &Replicas| n.status(group).map(|s| s.voters);
    let others = || nodes.iter().filter(|(&id, _)| id != shoal_raft::node_of(from)).map(|(_, n)| n);
    let deadline = Instant::now() + WAIT;
    while others().any(|n| voters(n).is_some_and(|v| v.contains(&from) || !v.contains(&to))) {
        assert!(Instant::now() < deadline, "group {group}: voters never became {from} out, {to} in");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    nodes[&shoal_raft::node_of(from)].close_group(group).await.expect("close the source");
}

/// A replica of a group moves from node 3 to a fourth node, then the
/// group's leader's replica moves to node 3 as a new replica there (its
/// old one's id stays refused): each time the target ends with every
/// write, the source with nothing, and node 4 restarts with its new group.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_move_to_a_new_node_and_back_in_process() {
    let root = std::env::temp_dir().join(format!("shoal-moves-{}-{}", std::process::id(), now_ms()));
    let net = MemoryNet::default();
    let mut nodes = three_nodes_with_writes(&net, &root).await;
    let node4 = Replicas::open(config(&root, 4), net.transport(4)).await.expect("open node 4");
    assert!(node4.group_ids().is_empty(), "the layout gives node 4 nothing");
    net.register(4, node4.groups());
    nodes.insert(4, node4);

    let on4 = raft_id(4, 1);
    move_replica(&nodes, 0, 3, on4).await;
    assert!(nodes[&3].db(0).is_none() && !root.join("node3/group-0").exists(), "node 3 keeps nothing of group 0");
    for i in 0..12 {
        write(&nodes, i % GROUPS, format!("after-move:{i}")).await;
    }
    converged(&nodes).await;
    assert_eq!(nodes[&4].db(0).expect("moved here").len(), 14, "node 4 holds group 0's 10 + 4 writes");

    // Back to node 3, from group 0's preferred leader (node 1): the move
    // hands leadership off the source first.
    let back = raft_id(3, 2);
    move_replica(&nodes, 0, 1, back).await;
    let old_vote = VoteRequest::<TypeConfig>::new(openraft::Vote::new(99, 1), None);
    let answer = handle(&nodes[&3].groups(), 3, 0, 0, Request::Vote(old_vote)).await;
    assert!(matches!(answer, Response::Error(ref e) if e.contains("gone")), "node 3's old replica answered");

    // Node 4 restarts with the replica it was given.
    let node4 = nodes.remove(&4).unwrap();
    node4.shutdown().await;
    drop(node4);
    let reopened = ReplicaConfig { groups: vec![GroupSpec { id: 0, me: on4, members: vec![] }], ..config(&root, 4) };
    let node4 = Replicas::open(reopened, net.transport(4)).await.expect("reopen node 4");
    net.register(4, node4.groups());
    nodes.insert(4, node4);
    for i in 0..6 {
        write(&nodes, i % GROUPS, format!("after-restart:{i}")).await;
    }
    converged(&nodes).await;
    for node in [2, 3, 4] {
        assert_eq!(nodes[&node].db(0).expect("a replica").len(), 16, "node {node}'s copy of group 0");
    }
    assert!(nodes[&1].db(0).is_none());
    let voters = nodes[&2].status(0).unwrap().voters;
    assert_eq!(voters, vec![2, on4, back], "group 0's voters");
    for n in nodes.values() {
        n.shutdown().await;
    }
}
