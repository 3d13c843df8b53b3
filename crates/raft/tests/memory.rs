//! Three nodes' `Replicas` in one process over the in-memory transport:
//! writes through leaders, a partitioned node that catches up once healed,
//! a node restarted from its directory, and a wiped node rejoining under a
//! new identity, every group converging to the same content digest on
//! every node.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use openraft::raft::VoteRequest;
use shoal_engine::{SetOptions, WriteOp};
use shoal_raft::memory::MemoryNet;
use shoal_raft::transport::{handle, Request, Response};
use shoal_raft::{raft_id, GroupSpec, ReplicaConfig, ReplicaError, Replicas, Reply, TypeConfig};

const WAIT: Duration = Duration::from_secs(20);
const GROUPS: u32 = 3;

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

fn config(root: &std::path::Path, me: u64) -> ReplicaConfig {
    ReplicaConfig {
        dir: root.join(format!("node{me}")),
        me,
        client_addrs: (1..=3).map(|id| (id, format!("127.0.0.1:{}", 7000 + id))).collect(),
        // Rotated like the layout: group g prefers node g + 1.
        groups: (0..GROUPS)
            .map(|g| GroupSpec { id: g, members: (0..3).map(|j| (u64::from(g) + j) % 3 + 1).collect() })
            .collect(),
        // Slower than the default (see replicas.rs): stable leaders in a
        // debug build on a loaded machine.
        timing: shoal_raft::Timing {
            heartbeat_interval_ms: 100,
            election_timeout_min_ms: 600,
            election_timeout_max_ms: 1200,
        },
        read_mode: Default::default(),
        snapshots: Default::default(),
        wal: Default::default(),
        quarantine_when_fresh: false,
        clock: Default::default(),
        generation: 0,
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

/// Waits until every node's copy of every group has the same digest.
async fn converged(nodes: &HashMap<u64, Replicas>) {
    let deadline = Instant::now() + WAIT;
    loop {
        let digests: Vec<Vec<_>> =
            nodes.values().map(|n| (0..GROUPS).map(|g| n.db(g).expect("held").digest(now_ms())).collect()).collect();
        if digests.iter().all(|d| *d == digests[0]) {
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

    let reborn = Replicas::open(ReplicaConfig { generation: 7, ..config(&root, 3) }, net.transport(3))
        .await
        .expect("open the new identity");
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
