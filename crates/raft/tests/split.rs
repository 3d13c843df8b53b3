//! A split through the node API, on three nodes over TCP: one committed
//! entry moves the right-hand slots' keys into a new group on the same
//! nodes, which elects a leader from the state every replica wrote, and
//! the old group refuses writes for the slots it gave away; then the new
//! group, sealed, merges back into the old one.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use shoal_engine::slot::key_slot;
use shoal_engine::{SetOptions, WriteOp};
use shoal_raft::transport::{preamble, read_preamble, Peers};
use shoal_raft::{AbsorbSpec, Cmd, GroupSpec, ReplicaConfig, Replicas, Reply, SlotsHeld, SplitSpec, Timing};
use shoal_wal::WalOptions;
use tokio::net::TcpListener;

const WAIT: Duration = Duration::from_secs(20);
const AT: u16 = 8192;

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

fn set(key: &str) -> WriteOp {
    WriteOp::Set {
        key: Bytes::copy_from_slice(key.as_bytes()),
        value: Bytes::copy_from_slice(key.as_bytes()),
        options: SetOptions::default(),
    }
}

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

async fn three_nodes(root: &std::path::Path) -> HashMap<u64, Arc<Replicas>> {
    let mut listeners = HashMap::new();
    let mut peer_addrs = HashMap::new();
    for id in 1..=3u64 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        peer_addrs.insert(id, listener.local_addr().unwrap().to_string());
        listeners.insert(id, listener);
    }
    let client_addrs: HashMap<u64, String> = (1..=3).map(|id| (id, format!("127.0.0.1:{}", 7000 + id))).collect();
    let mut nodes = HashMap::new();
    for id in 1..=3u64 {
        let config = ReplicaConfig {
            dir: root.join(format!("node{id}")),
            me: id,
            client_addrs: client_addrs.clone(),
            groups: GroupSpec::initial(1, &[1, 2, 3], id, 0).into_iter().collect(),
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
        let peers = Peers::new(peer_addrs.clone(), "split-test", Default::default());
        let replicas = Arc::new(Replicas::open(config, peers).await.expect("open replicas"));
        let listener = listeners.remove(&id).unwrap();
        let serving = Arc::clone(&replicas);
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else { continue };
                let serving = Arc::clone(&serving);
                tokio::spawn(async move {
                    if read_preamble(&mut stream, &preamble("split-test")).await {
                        serving.serve_peer(stream).await
                    }
                });
            }
        });
        nodes.insert(id, replicas);
    }
    nodes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_entry_makes_a_new_group_on_every_replica() {
    let root = std::env::temp_dir().join(format!("shoal-split-{}-{}", std::process::id(), now_ms()));
    let nodes = three_nodes(&root).await;
    for replicas in nodes.values() {
        replicas.wait_for_leaders(WAIT).await.expect("leaders");
    }
    let keys: Vec<String> = (0..300).map(|i| format!("key:{i}")).collect();
    for key in &keys {
        // Through whichever node leads now (an election may still settle).
        let deadline = Instant::now() + WAIT;
        loop {
            let leader = eventually("a leader of group 1", || nodes[&1].leader(1)).await;
            let node = &nodes[&shoal_raft::node_of(leader)];
            if matches!(node.propose(1, set(key), now_ms()).await, Ok(Reply::Set { .. })) {
                break;
            }
            assert!(Instant::now() < deadline, "{key} never written");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let leader = eventually("a leader of group 1", || nodes[&1].leader(1)).await;

    let members: BTreeMap<u64, String> =
        (1..=3u64).map(|n| (shoal_raft::raft_id(n, 7), format!("127.0.0.1:{}", 7000 + n))).collect();
    let spec = SplitSpec { start: 0, end: 16383, at: AT, child: 2, members };
    assert_eq!(nodes[&leader].reshape(1, Cmd::Split(spec.clone()), now_ms()).await, Ok(Reply::Done));
    // Applied again (a retry whose first attempt committed): refused.
    let again = nodes[&leader].reshape(1, Cmd::Split(spec), now_ms()).await;
    assert!(matches!(again, Ok(Reply::Error(ref e)) if e.contains("split refused")), "{again:?}");

    for (&n, replicas) in &nodes {
        let me = shoal_raft::raft_id(n, 7);
        eventually("the new group on disk", || replicas.may_open_born(2, me, 1, AT).then_some(())).await;
        eventually("group 1's slots shrunk", || {
            (replicas.slots(1) == Some(SlotsHeld::Range(0..=AT - 1))).then_some(())
        })
        .await;
        replicas.open_group(&GroupSpec { id: 2, me, members: vec![] }).await.expect("open the new group");
    }
    for replicas in nodes.values() {
        replicas.wait_for_leaders(WAIT).await.expect("the new group elects a leader");
        assert_eq!(replicas.slots(2), Some(SlotsHeld::Range(AT..=16383)));
        assert!(replicas.owns(2, AT) && !replicas.owns(2, AT - 1) && replicas.owns(1, 0) && !replicas.owns(1, AT));
    }
    // Every key is in exactly the group of its slot, on every replica.
    for replicas in nodes.values() {
        let (left, right) = (replicas.db(1).unwrap(), replicas.db(2).unwrap());
        for key in &keys {
            let in_right = key_slot(key.as_bytes()) >= AT;
            assert_eq!(left.get(key.as_bytes(), 0).is_some(), !in_right, "{key} on the left");
            assert_eq!(right.get(key.as_bytes(), 0).is_some(), in_right, "{key} on the right");
        }
    }
    // The old group refuses a write for a slot it gave away; the new one
    // takes it.
    let moved = keys.iter().find(|k| key_slot(k.as_bytes()) >= AT).unwrap();
    assert_eq!(nodes[&leader].propose(1, set(moved), now_ms()).await, Ok(Reply::NotOwned));
    let new_leader = eventually("a leader of group 2", || nodes[&1].leader(2)).await;
    let written = nodes[&shoal_raft::node_of(new_leader)].propose(2, set(moved), now_ms()).await;
    assert!(matches!(written, Ok(Reply::Set { .. })), "{written:?}");

    // And back: group 2, sealed, refuses every write and holds no slot;
    // its keys reach group 1 in one entry.
    let right = &nodes[&shoal_raft::node_of(new_leader)];
    assert_eq!(right.reshape(2, Cmd::Seal { start: AT, end: 16383 }, now_ms()).await, Ok(Reply::Done));
    assert_eq!(right.reshape(2, Cmd::Seal { start: AT, end: 16383 }, now_ms()).await, Ok(Reply::Done), "again");
    assert_eq!(right.propose(2, set(moved), now_ms()).await, Ok(Reply::NotOwned));
    assert_eq!(right.propose(2, WriteOp::Clear, now_ms()).await, Ok(Reply::NotOwned), "not even FLUSHALL");
    assert_eq!(right.slots(2), Some(SlotsHeld::Sealed));
    let dump = right.db(2).unwrap().dump(0);
    let sessions = right.sealed_sessions(2).await.expect("sealed");
    let absorb = AbsorbSpec { start: 0, end: AT - 1, right_end: 16383, dump, sessions };
    assert_eq!(nodes[&leader].reshape(1, Cmd::Absorb(absorb.clone()), now_ms()).await, Ok(Reply::Done));
    let again = nodes[&leader].reshape(1, Cmd::Absorb(absorb), now_ms()).await;
    assert!(matches!(again, Ok(Reply::Error(ref e)) if e.contains("merge refused")), "{again:?}");
    for replicas in nodes.values() {
        eventually("group 1 holds every slot again", || {
            (replicas.slots(1) == Some(SlotsHeld::Range(0..=16383))).then_some(())
        })
        .await;
        let db = replicas.db(1).unwrap();
        for key in &keys {
            assert!(db.get(key.as_bytes(), 0).is_some(), "{key} merged back");
        }
    }
    for replicas in nodes.values() {
        replicas.shutdown().await;
    }
    let _ = std::fs::remove_dir_all(&root);
}
