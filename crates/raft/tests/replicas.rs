//! The node-level API the server will use, on three nodes over TCP: every
//! node opens its groups from a layout-like spec, groups bootstrap from
//! their first member, writes go through leaders, followers redirect, reads
//! get a linearizable barrier on the leader only, replicas converge.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use shoal_engine::{SetOptions, WriteOp};
use shoal_raft::transport::{preamble, read_preamble, Peers};
use shoal_raft::{GroupSpec, ReplicaConfig, ReplicaError, Replicas, Reply, Timing};
use shoal_wal::WalOptions;
use tokio::net::TcpListener;

const WAIT: Duration = Duration::from_secs(10);

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

fn set(key: &str) -> WriteOp {
    WriteOp::Set {
        key: Bytes::copy_from_slice(key.as_bytes()),
        value: Bytes::from_static(b"v"),
        options: SetOptions::default(),
    }
}

/// Polls `f` every 10 ms until it returns `Some`, or panics after `WAIT`.
async fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_three_groups_through_the_node_api() {
    let root = std::env::temp_dir().join(format!("shoal-replicas-{}-{}", std::process::id(), now_ms()));
    let mut listeners = HashMap::new();
    let mut peer_addrs = HashMap::new();
    for id in 1..=3u64 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        peer_addrs.insert(id, listener.local_addr().unwrap().to_string());
        listeners.insert(id, listener);
    }
    let client_addrs: HashMap<u64, String> = (1..=3).map(|id| (id, format!("127.0.0.1:{}", 7000 + id))).collect();
    // Rotated like the layout: group g's preferred leader is node g.
    let nodes_of = |g: u32| -> Vec<u64> { (0..3).map(|j| (u64::from(g) - 1 + j) % 3 + 1).collect() };

    let mut nodes: HashMap<u64, Arc<Replicas>> = HashMap::new();
    let mut servers = Vec::new();
    for id in 1..=3u64 {
        let config = ReplicaConfig {
            dir: root.join(format!("node{id}")),
            me: id,
            client_addrs: client_addrs.clone(),
            groups: (1..=3u32).filter_map(|g| GroupSpec::initial(g, &nodes_of(g), id, 0)).collect(),
            // Slower than the default: this test checks who leads between
            // two steps, and a debug build on a loaded CI machine can miss
            // a 200 ms election timeout.
            timing: Timing {
                heartbeat_interval_ms: 100,
                election_timeout_min_ms: 600,
                election_timeout_max_ms: 1200,
                ..Timing::default()
            },
            read_mode: Default::default(),
            snapshots: Default::default(),
            wal: WalOptions::default(),
            quarantine_when_fresh: false,
            clock: Default::default(),
            generation: 0,
        };
        let replicas = Arc::new(
            Replicas::open(config, Peers::new(peer_addrs.clone(), "test-cluster", Default::default()))
                .await
                .expect("open replicas"),
        );
        let listener = listeners.remove(&id).unwrap();
        let serving = Arc::clone(&replicas);
        servers.push(tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else { continue };
                let serving = Arc::clone(&serving);
                tokio::spawn(async move {
                    assert!(
                        read_preamble(&mut stream, &preamble("test-cluster")).await,
                        "peers open with the cluster's Raft preamble"
                    );
                    serving.serve_peer(stream).await
                });
            }
        }));
        nodes.insert(id, replicas);
    }
    for replicas in nodes.values() {
        assert_eq!(replicas.group_ids().len(), 3, "every node holds a replica of every group");
        replicas.wait_for_leaders(WAIT).await.expect("leaders");
    }

    let now = now_ms();
    for group in 1..=3u32 {
        // All members agree on one leader.
        let leader = eventually("one agreed leader", || {
            let seen: Vec<Option<u64>> = nodes.values().map(|n| n.leader(group)).collect();
            (seen.iter().all(|l| *l == seen[0]) && seen[0].is_some()).then(|| seen[0].unwrap())
        })
        .await;
        let follower = (1..=3).find(|id| *id != leader).unwrap();
        assert!(nodes[&leader].is_leader(group));

        // A follower never applies a write: it names the leader instead.
        let refused = nodes[&follower].propose(group, set("refused"), now).await;
        assert_eq!(refused, Err(ReplicaError::NotLeader { leader: Some(leader) }));
        // A follower's read barrier goes through the leader's read index.
        assert_eq!(nodes[&follower].read_barrier(group).await, Ok(()));

        // Through whichever node leads: on a loaded machine an election may
        // move leadership mid-test, and a refused write is safe to resend.
        let mut leader = leader;
        for i in 0..20 {
            let deadline = Instant::now() + WAIT;
            let reply = loop {
                match nodes[&leader].propose(group, set(&format!("g{group}-k{i}")), now).await {
                    Err(ReplicaError::NotLeader { .. }) if Instant::now() < deadline => {
                        leader = eventually("a leader", || nodes.values().find(|n| n.is_leader(group)).map(|n| n.me()))
                            .await;
                    }
                    reply => break reply.expect("write"),
                }
            };
            assert_eq!(reply, Reply::Set { written: true, old: None });
        }
        nodes[&leader].read_barrier(group).await.expect("linearizable read on the leader");
        assert_eq!(nodes[&leader].db(group).unwrap().len(), 20);
        // Followers converge to the same content.
        let digest = nodes[&leader].db(group).unwrap().digest(now);
        eventually("followers to converge", || {
            nodes.values().all(|n| n.db(group).unwrap().digest(now) == digest).then_some(())
        })
        .await;
        assert!(nodes[&follower].db(group).unwrap().get(b"refused", now).is_none());
    }
    assert_eq!(nodes[&1].propose(9, set("x"), now).await, Err(ReplicaError::NoSuchGroup(9)));

    for replicas in nodes.values() {
        replicas.shutdown().await;
    }
    for server in servers {
        server.abort();
    }
    let _ = std::fs::remove_dir_all(&root);
}
