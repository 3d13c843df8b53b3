//! A large group's snapshot must not disturb the node's other groups: the
//! build (dump, write, fsync) runs on a blocking thread, not on the runtime
//! every group's Raft core shares, so their heartbeats go on and no other
//! group elects. Heavy (three nodes hold the big group, a GiB by default),
//! so not in the default run:
//!
//! ```text
//! cargo test --release -p shoal-raft --test big_snapshot -- --ignored --nocapture
//! SHOAL_BIG_SNAPSHOT_MIB=256 cargo test -p shoal-raft --test big_snapshot -- --ignored --nocapture
//! ```

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use shoal_engine::{SetOptions, WriteOp};
use shoal_raft::memory::MemoryNet;
use shoal_raft::{GroupSpec, ReplicaConfig, ReplicaError, Replicas};

const WAIT: Duration = Duration::from_secs(30);

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

/// Production timing (50 ms heartbeats, 200-400 ms election timeouts): a
/// runtime stalled for half a second would show as an election.
fn config(root: &std::path::Path, me: u64) -> ReplicaConfig {
    ReplicaConfig {
        dir: root.join(format!("node{me}")),
        me,
        client_addrs: (1..=3).map(|id| (id, format!("127.0.0.1:{}", 7000 + id))).collect(),
        groups: (0..2)
            .filter_map(|g| {
                GroupSpec::initial(g, &(0..3).map(|j| (u64::from(g) + j) % 3 + 1).collect::<Vec<_>>(), me, 0)
            })
            .collect(),
        timing: Default::default(),
        read_mode: Default::default(),
        snapshots: Default::default(),
        wal: Default::default(),
        quarantine_when_fresh: false,
        clock: Default::default(),
        generation: 0,
    }
}

async fn write(nodes: &HashMap<u64, Replicas>, group: u32, key: &str) -> Duration {
    let op =
        WriteOp::Set { key: Bytes::from(key.to_string()), value: Bytes::from("v"), options: SetOptions::default() };
    let started = Instant::now();
    loop {
        if let Some(leader) = nodes.values().find(|n| n.is_leader(group)) {
            match leader.propose(group, op.clone(), now_ms()).await {
                Ok(_) => return started.elapsed(),
                Err(ReplicaError::NotLeader { .. } | ReplicaError::Unavailable(_)) => {}
                Err(e) => panic!("write to group {group}: {e}"),
            }
        }
        assert!(started.elapsed() < WAIT, "no leader took a write to group {group}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn a_large_snapshot_build_leaves_the_other_groups_alone() {
    let mib: usize = std::env::var("SHOAL_BIG_SNAPSHOT_MIB").ok().and_then(|v| v.parse().ok()).unwrap_or(1024);
    let root = std::env::temp_dir().join(format!("shoal-big-snapshot-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let net = MemoryNet::default();
    let mut nodes = HashMap::new();
    for me in 1..=3 {
        let replicas = Replicas::open(config(&root, me), net.transport(me)).await.expect("open");
        net.register(me, replicas.groups());
        nodes.insert(me, replicas);
    }
    nodes[&1].wait_for_leaders(WAIT).await.expect("leaders");
    write(&nodes, 0, "first").await;
    write(&nodes, 1, "first").await;

    // Group 0 gets `mib` MiB on every node, straight into its keyspace (the
    // same on each: this measures the snapshot, not replication).
    let value = Bytes::from(vec![b'v'; 1 << 20]);
    for node in nodes.values() {
        let db = node.db(0).expect("held");
        for i in 0..mib {
            let op = WriteOp::Set {
                key: Bytes::from(format!("big{i}")),
                value: value.clone(),
                options: SetOptions::default(),
            };
            db.apply(op, now_ms());
        }
    }
    write(&nodes, 0, "last").await;
    let terms =
        |nodes: &HashMap<u64, Replicas>| -> Vec<u64> { nodes.values().map(|n| n.status(1).unwrap().term).collect() };
    let before = terms(&nodes);
    let target: Vec<Option<u64>> = nodes.values().map(|n| n.status(0).unwrap().applied_index).collect();
    let started = Instant::now();
    for node in nodes.values() {
        node.snapshot(0).await.expect("trigger");
    }
    // Meanwhile group 1 takes writes; its terms must not move.
    let mut slowest = Duration::ZERO;
    let mut writes = 0;
    loop {
        let done = nodes.values().zip(&target).all(|(n, t)| n.status(0).unwrap().snapshot_index >= *t);
        if done {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(600), "the snapshots were not built in 10 minutes");
        slowest = slowest.max(write(&nodes, 1, &format!("during{writes}")).await);
        writes += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let after = terms(&nodes);
    println!(
        "{mib} MiB snapshot built on 3 nodes in {:?}; group 1 took {writes} writes meanwhile, slowest {slowest:?}; terms {before:?} -> {after:?}",
        started.elapsed()
    );
    assert_eq!(before, after, "another group elected while a large snapshot was built");
    for node in nodes.values() {
        node.shutdown().await;
    }
    drop(nodes);
    let _ = std::fs::remove_dir_all(&root);
}
