//! Three in-process nodes, each with its own WAL directory and keyspace,
//! replicate 100 SETs through one Raft group; then node 1 is restarted from
//! its WAL alone and must recover the log and the keyspace.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use openraft::error::{ClientWriteError, RaftError};
use openraft::raft::ClientWriteResponse;
use openraft::{Config, TokioInstant};
use shoal_engine::{Db, SetOptions, WriteOp};
use shoal_raft::memory::MemoryNet;
use shoal_raft::{LogStore, Proposal, Reply, ShoalNode, ShoalRaft, Snapshots, StateMachine, Timing, TypeConfig};
use shoal_wal::{Wal, WalOptions};

const GROUP: u32 = 7;
const WAIT: Option<Duration> = Some(Duration::from_secs(10));

struct Node {
    raft: ShoalRaft,
    db: Arc<Db>,
    log: LogStore,
}

fn config() -> Arc<Config> {
    shoal_raft::raft_config(&Timing::default(), &Snapshots::default()).expect("valid raft config")
}

/// Opens the node's WAL, rebuilds its log from it, and starts Raft on a fresh
/// keyspace (the keyspace is rebuilt by re-applying committed entries).
async fn start(id: u64, dir: &Path, net: &MemoryNet) -> Node {
    let (wal, recovered) = Wal::open(dir, WalOptions::default()).expect("open wal");
    let log = LogStore::open(Arc::new(wal), GROUP, &recovered.group(GROUP)).expect("rebuild log");
    let db = Arc::new(Db::new());
    let sm = StateMachine::new(Arc::clone(&db));
    let raft = ShoalRaft::new(id, config(), net.factory(id, GROUP), log.clone(), sm).await.expect("start raft");
    net.add(id, GROUP, raft.clone());
    Node { raft, db, log }
}

/// Proposes through whichever node leads, the way a client would: find the
/// leader, wait until a quorum has acknowledged it *after* we looked (a
/// leader refuses writes while its lease is unconfirmed, e.g. one that just
/// restored its leadership after a restart), and retry on `ForwardToLeader`.
async fn write(nodes: &BTreeMap<u64, Node>, proposal: Proposal) -> ClientWriteResponse<TypeConfig> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        assert!(std::time::Instant::now() < deadline, "no leader accepted the write in time");
        let any = nodes.values().next().unwrap();
        let m = any.raft.wait(WAIT).metrics(|m| m.current_leader.is_some(), "a leader").await.unwrap();
        let leader = &nodes[&m.current_leader.unwrap()].raft;
        let asked = <TokioInstant as openraft::Instant>::now();
        let short = Some(Duration::from_secs(1));
        if leader.wait(short).leader_with_quorum_acked(Some(asked), "lease").await.is_err() {
            continue; // it lost leadership meanwhile: look again
        }
        match leader.client_write(proposal.clone()).await {
            Ok(resp) => return resp,
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_))) => continue,
            Err(e) => panic!("write failed: {e}"),
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("shoal-raft-{}-{}-{name}", std::process::id(), now_ms()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_replicate_and_node_recovers_from_wal() {
    let root = temp_dir("replicate");
    let dir = |id: u64| root.join(format!("node{id}"));
    let net = MemoryNet::default();
    let mut nodes = BTreeMap::new();
    for id in 1..=3 {
        nodes.insert(id, start(id, &dir(id), &net).await);
    }

    let members: BTreeMap<u64, ShoalNode> =
        (1..=3).map(|id| (id, ShoalNode { client_addr: format!("127.0.0.1:{}", 7000 + id) })).collect();
    nodes[&1].raft.initialize(members).await.expect("initialize");

    let metrics = nodes[&1].raft.wait(WAIT).metrics(|m| m.current_leader.is_some(), "a leader").await.unwrap();
    let leader = metrics.current_leader.unwrap();
    // Every node must agree on that leader before we propose to it.
    for node in nodes.values() {
        node.raft.wait(WAIT).current_leader(leader, "same leader").await.unwrap();
    }

    let now = now_ms();
    let mut last_index = 0;
    for i in 0..100 {
        let op = WriteOp::Set {
            key: Bytes::from(format!("key{i}")),
            value: Bytes::from(format!("value{i}")),
            options: SetOptions::default(),
        };
        let resp = write(&nodes, Proposal::write(&op, now, None)).await;
        assert_eq!(resp.data, Reply::Set { written: true, old: None });
        last_index = resp.log_id.index;
    }
    // 100 writes after the initial membership (index 0) and the leader's
    // blank entry.
    assert!(last_index >= 101, "last index {last_index}");

    for node in nodes.values() {
        node.raft.wait(WAIT).applied_index_at_least(Some(last_index), "all applied").await.unwrap();
    }
    let digest = nodes[&1].db.digest(now);
    for (id, node) in &nodes {
        assert_eq!(node.db.digest(now), digest, "node {id} diverged");
        assert_eq!(node.db.get(b"key42", now), Some(Bytes::from("value42")), "node {id}");
    }

    // Restart node 1 from its WAL alone.
    let old = nodes.remove(&1).unwrap();
    net.remove(1);
    old.raft.shutdown().await.expect("shutdown");
    // Shutdown must release every storage handle, or the old WAL writer
    // would still be running when the new one opens the same directory.
    // openraft's tasks drop their store handles as they wind down, a little
    // after `shutdown` returns: wait for that (bounded), do not assume it.
    let old_wal = Arc::downgrade(old.log.wal());
    drop(old);
    let released = tokio::time::timeout(Duration::from_secs(10), async {
        while old_wal.strong_count() > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(released.is_ok(), "raft still holds node 1's wal 10 s after shutdown");

    let node1 = start(1, &dir(1), &net).await;
    // `committed` came back from the WAL, so node 1 re-applies by itself.
    assert!(node1.log.saved_committed().is_some_and(|c| c.index >= last_index));
    let indexes = node1.log.indexes();
    assert_eq!(indexes.first(), Some(&0));
    assert_eq!(indexes.last(), Some(&last_index), "recovered log ends at the last write");
    assert_eq!(indexes.len() as u64, last_index + 1, "no holes");
    node1.raft.wait(WAIT).applied_index_at_least(Some(last_index), "re-applied").await.unwrap();
    assert_eq!(node1.db.digest(now), digest, "restarted node 1 diverged");
    assert_eq!(node1.db.get(b"key99", now), Some(Bytes::from("value99")));
    nodes.insert(1, node1);

    // The restarted node still takes part: one more write reaches it.
    let op = WriteOp::Set { key: Bytes::from("after"), value: Bytes::from("restart"), options: SetOptions::default() };
    let resp = write(&nodes, Proposal::write(&op, now, None)).await;
    for node in nodes.values() {
        node.raft.wait(WAIT).applied_index_at_least(Some(resp.log_id.index), "applied").await.unwrap();
        assert_eq!(node.db.get(b"after", now), Some(Bytes::from("restart")));
    }

    for (id, node) in nodes {
        net.remove(id);
        node.raft.shutdown().await.expect("shutdown");
    }
    let _ = std::fs::remove_dir_all(&root);
}
