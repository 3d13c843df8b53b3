//! Two Raft groups on three nodes over real TCP on 127.0.0.1: each node has
//! one WAL shared by both groups and one peer listener multiplexing both
//! groups' RPCs. Both groups elect, replicate, converge, and keep going
//! with one node down.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use openraft::error::{ClientWriteError, RaftError};
use openraft::raft::ClientWriteResponse;
use openraft::Config;
use shoal_engine::{Db, SetOptions, WriteOp};
use shoal_raft::transport::{serve, Groups, Peers, TcpNetworkFactory};
use shoal_raft::{LogStore, Proposal, ShoalNode, ShoalRaft, Snapshots, StateMachine, Timing, TypeConfig};
use shoal_wal::{Wal, WalOptions};
use tokio::net::TcpListener;

const GROUPS: [u32; 2] = [1, 2];
const WAIT: Option<Duration> = Some(Duration::from_secs(10));

struct Replica {
    raft: ShoalRaft,
    db: Arc<Db>,
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

fn config() -> Arc<Config> {
    shoal_raft::raft_config(&Timing::default(), &Snapshots::default()).expect("valid raft config")
}

/// Proposes to the group's current leader, retrying while leadership moves.
async fn write(replicas: &BTreeMap<u64, Replica>, proposal: Proposal) -> ClientWriteResponse<TypeConfig> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        assert!(std::time::Instant::now() < deadline, "no leader accepted the write in time");
        let any = replicas.values().next().unwrap();
        let m = any.raft.wait(WAIT).metrics(|m| m.current_leader.is_some(), "a leader").await.unwrap();
        let Some(leader) = m.current_leader.and_then(|id| replicas.get(&id)) else { continue };
        match leader.raft.client_write(proposal.clone()).await {
            Ok(resp) => return resp,
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_))) => {
                tokio::time::sleep(Duration::from_millis(20)).await; // let the election settle
            }
            Err(e) => panic!("write failed: {e}"),
        }
    }
}

fn set(key: String, value: String, now: u64) -> Proposal {
    let op = WriteOp::Set { key: Bytes::from(key), value: Bytes::from(value), options: SetOptions::default() };
    Proposal::write(&op, now, None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_groups_replicate_over_tcp_and_survive_a_node_down() {
    let root = std::env::temp_dir().join(format!("shoal-raft-tcp-{}-{}", std::process::id(), now_ms()));
    let mut listeners = HashMap::new();
    let mut addrs = HashMap::new();
    for id in 1..=3u64 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        addrs.insert(id, listener.local_addr().unwrap().to_string());
        listeners.insert(id, listener);
    }
    let peers = Peers::new(addrs, "tcp-test", Default::default());

    // by group, then by node
    let mut groups: BTreeMap<u32, BTreeMap<u64, Replica>> = BTreeMap::new();
    let mut servers = Vec::new();
    for id in 1..=3u64 {
        let (wal, recovered) = Wal::open(&root.join(format!("node{id}")), WalOptions::default()).unwrap();
        let wal = Arc::new(wal);
        let served = Groups::default();
        for group in GROUPS {
            let log = LogStore::open(Arc::clone(&wal), group, &recovered.group(group)).unwrap();
            let db = Arc::new(Db::new());
            let network = TcpNetworkFactory { group, transport: peers.clone(), quarantine: Default::default() };
            let raft = ShoalRaft::new(id, config(), network, log, StateMachine::new(Arc::clone(&db))).await.unwrap();
            served.insert(group, raft.clone());
            groups.entry(group).or_default().insert(id, Replica { raft, db });
        }
        servers.push(tokio::spawn(serve(listeners.remove(&id).unwrap(), served, "tcp-test".into())));
    }

    let members: BTreeMap<u64, ShoalNode> =
        (1..=3).map(|id| (id, ShoalNode { client_addr: format!("127.0.0.1:{}", 7000 + id) })).collect();
    for replicas in groups.values() {
        replicas[&1].raft.initialize(members.clone()).await.expect("initialize");
    }

    let now = now_ms();
    for (group, replicas) in &groups {
        let mut last = 0;
        for i in 0..50 {
            last = write(replicas, set(format!("g{group}-k{i}"), format!("v{i}"), now)).await.log_id.index;
        }
        for replica in replicas.values() {
            replica.raft.wait(WAIT).applied_index_at_least(Some(last), "applied").await.unwrap();
        }
        let digest = replicas[&1].db.digest(now);
        for (id, replica) in replicas {
            assert_eq!(replica.db.digest(now), digest, "group {group} node {id} diverged");
            assert_eq!(replica.db.len(), 50, "group {group} node {id} holds only its group's keys");
        }
    }

    // Node 3 goes down (its groups stop; its listener answers nothing for
    // them): both groups keep committing with nodes 1 and 2.
    for replicas in groups.values_mut() {
        let down = replicas.remove(&3).unwrap();
        down.raft.shutdown().await.unwrap();
    }
    for (group, replicas) in &groups {
        let resp = write(replicas, set(format!("g{group}-after"), "down".into(), now)).await;
        for replica in replicas.values() {
            replica.raft.wait(WAIT).applied_index_at_least(Some(resp.log_id.index), "applied").await.unwrap();
            assert_eq!(replica.db.get(format!("g{group}-after").as_bytes(), now), Some(Bytes::from("down")));
        }
    }

    for replicas in groups.into_values() {
        for replica in replicas.into_values() {
            replica.raft.shutdown().await.unwrap();
        }
    }
    for server in servers {
        server.abort();
    }
    let _ = std::fs::remove_dir_all(&root);
}
