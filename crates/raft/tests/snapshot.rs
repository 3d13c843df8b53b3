//! The snapshot path: building a snapshot and purging the log behind it,
//! and bringing a node that the log can no longer reach (a brand-new learner,
//! a follower whose disk was wiped) up to date by sending it the snapshot.
//!
//! Every group here snapshots every 50 applied entries and keeps no log
//! behind a snapshot (`max_in_snapshot_log_to_keep: 0`), so after a purge
//! the leader cannot replicate to a node that lacks the purged entries by
//! AppendEntries: it has to send the snapshot.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use openraft::async_runtime::WatchReceiver;
use openraft::error::{ClientWriteError, RaftError};
use openraft::raft::ClientWriteResponse;
use openraft::storage::{RaftLogStorage, RaftStateMachine};
use openraft::type_config::alias::LogIdOf;
use openraft::RaftSnapshotBuilder;
use openraft::{Config, RaftLogReader, ServerState, TokioInstant};
use shoal_engine::{Db, SetOptions, WriteOp};
use shoal_raft::memory::MemoryNet;
use shoal_raft::{LogStore, Proposal, Reply, ShoalNode, ShoalRaft, Snapshots, StateMachine, Timing, TypeConfig};
use shoal_wal::{Wal, WalOptions};

type LogId = LogIdOf<TypeConfig>;

const GROUP: u32 = 7;
const WAIT: Option<Duration> = Some(Duration::from_secs(20));
/// Every write carries this leader time, so digests compare at a fixed `now`.
const NOW: u64 = 1_700_000_000_000;

struct Node {
    raft: ShoalRaft,
    db: Arc<Db>,
    log: LogStore,
    /// A clone of the state machine Raft runs: it shares its state, so the
    /// test can ask it what Raft would (`applied_state`, `get_current_snapshot`).
    sm: StateMachine,
}

/// Production's settings, with a snapshot every 50 entries and the log
/// purged right behind each. Election timeouts are longer than the server's
/// defaults: the tests run side by side on two cores with a debug build and
/// fsync on every append, and a spurious election only slows them down.
fn config() -> Arc<Config> {
    let timing = Timing {
        heartbeat_interval_ms: 100,
        election_timeout_min_ms: 400,
        election_timeout_max_ms: 800,
        ..Timing::default()
    };
    shoal_raft::raft_config(&timing, &Snapshots { every_entries: 50, keep_entries: 0, ..Default::default() })
        .expect("valid raft config")
}

fn member(id: u64) -> ShoalNode {
    ShoalNode { client_addr: format!("127.0.0.1:{}", 7000 + id) }
}

async fn start(id: u64, dir: &Path, net: &MemoryNet, config: Arc<Config>) -> Node {
    let (wal, recovered) = Wal::open(dir, WalOptions::default()).expect("open wal");
    let wal = Arc::new(wal);
    let log = LogStore::open(Arc::clone(&wal), GROUP, &recovered.group(GROUP)).expect("rebuild log");
    let db = Arc::new(Db::new());
    let sm = StateMachine::open(Arc::clone(&db), &dir.join("sm")).expect("open state machine").after_log(wal);
    let raft = ShoalRaft::new(id, config, net.factory(id, GROUP), log.clone(), sm.clone()).await.expect("start raft");
    net.add(id, GROUP, raft.clone());
    Node { raft, db, log, sm }
}

/// Takes the node off the network, shuts Raft down and waits (bounded) until
/// openraft's tasks have dropped their handles on the node's WAL.
async fn stop(id: u64, node: Node, net: &MemoryNet) {
    net.remove(id);
    node.raft.shutdown().await.expect("shutdown");
    let wal = Arc::downgrade(node.log.wal());
    drop(node);
    let released = tokio::time::timeout(Duration::from_secs(10), async {
        while wal.strong_count() > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(released.is_ok(), "raft still holds node {id}'s wal 10 s after shutdown");
}

/// Three voters, initialised, with an agreed leader.
async fn three_nodes(root: &Path, net: &MemoryNet, config: &Arc<Config>) -> BTreeMap<u64, Node> {
    let mut nodes = BTreeMap::new();
    for id in 1..=3 {
        nodes.insert(id, start(id, &root.join(format!("node{id}")), net, Arc::clone(config)).await);
    }
    let members: BTreeMap<u64, ShoalNode> = (1..=3).map(|id| (id, member(id))).collect();
    nodes[&1].raft.initialize(members).await.expect("initialize");
    let leader = leader_of(&nodes).await;
    for node in nodes.values() {
        node.raft.wait(WAIT).current_leader(leader, "same leader").await.unwrap();
    }
    nodes
}

async fn leader_of(nodes: &BTreeMap<u64, Node>) -> u64 {
    let any = nodes.values().next().unwrap();
    let m = any.raft.wait(WAIT).metrics(|m| m.current_leader.is_some(), "a leader").await.unwrap();
    m.current_leader.unwrap()
}

/// Proposes through whichever node leads. Unlike tests/replicate.rs it does
/// not wait for a fresh quorum ack before every write (that costs up to a
/// heartbeat per write); only after a refusal, which is also what a leader
/// whose lease is not yet confirmed answers.
async fn write(nodes: &BTreeMap<u64, Node>, proposal: Proposal) -> ClientWriteResponse<TypeConfig> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert!(Instant::now() < deadline, "no leader accepted the write in time");
        let Some(leader) = nodes.get(&leader_of(nodes).await) else { continue };
        let asked = <TokioInstant as openraft::Instant>::now();
        match leader.raft.client_write(proposal.clone()).await {
            Ok(resp) => return resp,
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_))) => {
                // Lost leadership, or not yet confirmed: wait (bounded) for a
                // quorum ack newer than the refusal, then look again.
                let short = Some(Duration::from_secs(1));
                let _ = leader.raft.wait(short).leader_with_quorum_acked(Some(asked), "lease").await;
            }
            Err(e) => panic!("write failed: {e}"),
        }
    }
}

/// SETs `key{i}` for `i` in `range`; returns the last write's log id.
async fn write_keys(nodes: &BTreeMap<u64, Node>, range: std::ops::Range<u32>) -> LogId {
    let mut last = None;
    for i in range {
        let op = WriteOp::Set {
            key: Bytes::from(format!("key{i}")),
            value: Bytes::from(format!("value{i}")),
            options: SetOptions::default(),
        };
        let resp = write(nodes, Proposal::write(&op, NOW, None)).await;
        assert_eq!(resp.data, Reply::Set { written: true, old: None });
        last = Some(resp.log_id);
    }
    last.expect("at least one write")
}

/// Makes `raft` snapshot everything it has applied up to `upto` and purge
/// its log through it. A triggered snapshot is dropped while one the policy
/// started is still being built, so the trigger is repeated (bounded).
async fn snapshot_and_purge(raft: &ShoalRaft, upto: LogId) {
    raft.wait(WAIT).applied_index_at_least(Some(upto.index), "applied before snapshot").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        raft.trigger().snapshot().await.expect("trigger snapshot");
        let short = Some(Duration::from_millis(500));
        let built = raft.wait(short).metrics(|m| m.snapshot.is_some_and(|s| s.index >= upto.index), "snapshot").await;
        if built.is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "no snapshot covering {upto} in time");
    }
    // With `max_in_snapshot_log_to_keep: 0` openraft purges by itself; the
    // explicit trigger only makes the intent plain (it never purges past the
    // snapshot).
    raft.trigger().purge_log(upto.index).await.expect("trigger purge");
    raft.wait(WAIT).metrics(|m| m.purged.is_some_and(|p| p.index >= upto.index), "purged").await.unwrap();
}

fn temp_dir(name: &str) -> PathBuf {
    let ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis();
    let dir = std::env::temp_dir().join(format!("shoal-raft-{}-{ms}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A node whose log was purged behind a snapshot reports that through the
/// log store, keeps serving reads of what is left, and the purge point is
/// durable in its WAL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_is_built_and_log_purged_behind_it() {
    let root = temp_dir("snapshot-purge");
    let net = MemoryNet::default();
    let config = config();
    let mut nodes = three_nodes(&root, &net, &config).await;

    let last = write_keys(&nodes, 0..200).await;
    for node in nodes.values() {
        node.raft.wait(WAIT).applied_index_at_least(Some(last.index), "all applied").await.unwrap();
    }

    // The policy alone (every 50 entries) has already snapshotted and, with
    // nothing to keep, purged on every node.
    for (id, node) in &nodes {
        let m = node
            .raft
            .wait(WAIT)
            .metrics(|m| m.snapshot.is_some() && m.purged.is_some(), "policy snapshot and purge")
            .await
            .unwrap();
        let (snapshot, purged) = (m.snapshot.unwrap(), m.purged.unwrap());
        assert!(snapshot.index >= 50, "node {id}: policy snapshot at {snapshot}");
        assert!(purged <= snapshot, "node {id}: purged {purged} past snapshot {snapshot}");
    }

    let leader_id = leader_of(&nodes).await;
    let leader = &nodes[&leader_id];
    snapshot_and_purge(&leader.raft, last).await;
    let m = leader.raft.metrics().borrow_watched().clone();
    assert_eq!(m.snapshot, Some(last), "snapshot covers exactly what was applied");
    assert_eq!(m.purged, Some(last));

    // The WAL-backed log store agrees with openraft's metrics. (Scoped: a
    // clone left alive would keep the WAL open after shutdown.)
    {
        let mut log = leader.log.clone();
        let state = log.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id, Some(last));
        assert_eq!(state.last_log_id, Some(last), "an empty log's last id is the purge point");
        assert_eq!(leader.log.indexes(), Vec::<u64>::new(), "nothing left behind the snapshot");
        // What the last purge removed stays readable until the next one (a
        // replication stream may be reading it): consecutive, ending at the
        // purge point.
        let kept: Vec<u64> =
            log.try_get_log_entries(0..=last.index).await.unwrap().iter().map(|e| e.log_id.index).collect();
        assert!(kept.windows(2).all(|w| w[1] == w[0] + 1), "{kept:?}");
        assert!(kept.last().is_none_or(|&i| i == last.index), "{kept:?}");
    }

    // The state machine hands out the snapshot it built, and its bytes are
    // the client sessions (length-prefixed), the slots (never split: all
    // ones), then the keyspace.
    let mut sm = leader.sm.clone();
    let snapshot = sm.get_current_snapshot().await.unwrap().expect("a current snapshot");
    assert_eq!(snapshot.meta.last_log_id, Some(last));
    assert_eq!(snapshot.meta.last_membership.membership().voter_ids().collect::<Vec<_>>(), vec![1, 2, 3]);
    let copy = Db::new();
    let data = snapshot.snapshot;
    let sessions = u32::from_be_bytes(data[..4].try_into().unwrap()) as usize;
    assert_eq!(data[4 + sessions..8 + sessions], [0xff; 4]);
    copy.replace(&data[8 + sessions..], 0).expect("install snapshot bytes");
    assert_eq!(copy.digest(NOW), leader.db.digest(NOW));
    assert_eq!(copy.len(), 200);
    let (applied, membership) = sm.applied_state().await.unwrap();
    assert_eq!(applied, Some(last));
    assert_eq!(membership, snapshot.meta.last_membership);

    // The log keeps going past the purge point.
    let more = write_keys(&nodes, 200..210).await;
    assert_eq!(more.index, last.index + 10);
    for (id, node) in &nodes {
        node.raft.wait(WAIT).applied_index_at_least(Some(more.index), "applied").await.unwrap();
        assert_eq!(node.db.len(), 210, "node {id}");
    }
    {
        let mut log = nodes[&leader_id].log.clone();
        let state = log.get_log_state().await.unwrap();
        let purged = state.last_purged_log_id.expect("still purged");
        assert!(purged >= last, "purge point went back: {purged}");
        assert_eq!(state.last_log_id, Some(more));
        let entries = log.try_get_log_entries(purged.index + 1..=more.index).await.unwrap();
        assert_eq!(entries.len() as u64, more.index - purged.index, "no hole after the purge point");
    }

    // The purge point survives in the WAL: reopen it after shutdown.
    let leader = nodes.remove(&leader_id).unwrap();
    let purged = leader.log.clone().get_log_state().await.unwrap().last_purged_log_id.unwrap();
    stop(leader_id, leader, &net).await;
    let (wal, recovered) = Wal::open(&root.join(format!("node{leader_id}")), WalOptions::default()).unwrap();
    let group = recovered.group(GROUP);
    assert_eq!(group.purged, purged.index + 1, "WAL index = Raft index + 1");
    let mut reopened = LogStore::open(Arc::new(wal), GROUP, &group).unwrap();
    let state = reopened.get_log_state().await.unwrap();
    assert_eq!(state.last_purged_log_id, Some(purged));
    assert_eq!(state.last_log_id, Some(more));

    // The snapshot was persisted beside the WAL, so the node restarts from
    // its own disk although its log was purged: the state machine loads the
    // snapshot, Raft re-applies only the log after it, and the node matches
    // the others.
    let db = Arc::new(Db::new());
    let sm = StateMachine::open(Arc::clone(&db), &root.join(format!("node{leader_id}")).join("sm")).unwrap();
    assert!(!db.is_empty(), "the snapshot on disk was loaded");
    let raft =
        ShoalRaft::new(leader_id, Arc::clone(&config), net.factory(leader_id, GROUP), reopened.clone(), sm.clone())
            .await
            .expect("restart after purge, from the snapshot on disk");
    net.add(leader_id, GROUP, raft.clone());
    raft.wait(WAIT).applied_index_at_least(Some(more.index), "re-applied after restart").await.unwrap();
    let other = nodes.values().next().unwrap();
    other.raft.wait(WAIT).applied_index_at_least(Some(more.index), "applied").await.unwrap();
    assert_eq!(db.digest(NOW), other.db.digest(NOW), "restarted node diverged");
    nodes.insert(leader_id, Node { raft, db, log: reopened, sm });

    for (id, node) in nodes {
        stop(id, node, &net).await;
    }
    let _ = std::fs::remove_dir_all(&root);
}

/// Adds node `id` as a learner through whichever node leads. `blocking`:
/// returns once the learner has caught up to the membership entry, which
/// lies beyond any purge point, so via the snapshot when the log was purged.
async fn add_learner(nodes: &BTreeMap<u64, Node>, id: u64, within: Duration) -> LogId {
    let deadline = Instant::now() + within;
    loop {
        assert!(Instant::now() < deadline, "add_learner did not succeed in time");
        let leader = &nodes[&leader_of(nodes).await].raft;
        match leader.add_learner(id, member(id), true).await {
            Ok(resp) => return resp.log_id,
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_))) => continue,
            Err(e) => panic!("add_learner: {e}"),
        }
    }
}

/// Checks that `node` got the leader's snapshot rather than the log: its
/// metrics and state machine name the snapshot, its log starts after it.
async fn assert_installed(id: u64, node: &Node, snap: LogId) {
    let m = node.raft.wait(WAIT).metrics(|m| m.snapshot >= Some(snap), "snapshot installed").await.unwrap();
    assert!(m.last_applied >= Some(snap), "node {id}: applied {:?}", m.last_applied);
    let mut sm = node.sm.clone();
    let current = sm.get_current_snapshot().await.unwrap().expect("installed snapshot is current");
    assert!(current.meta.last_log_id >= Some(snap), "node {id}: current snapshot {:?}", current.meta.last_log_id);
    let (applied, membership) = sm.applied_state().await.unwrap();
    assert!(applied >= Some(snap), "node {id}: applied_state {applied:?}");
    assert!(membership.log_id().is_some(), "node {id}: membership came with the snapshot");
    // No entry at or below the snapshot was ever appended here.
    let first = node.log.indexes().first().copied();
    assert!(first.is_none_or(|i| i > snap.index), "node {id}: log starts at {first:?}, snapshot at {snap}");
}

/// A node added after the log was purged can only be brought up to date by
/// the snapshot; it then follows the log tail like any other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_learner_catches_up_by_snapshot() {
    let root = temp_dir("snapshot-learner");
    let net = MemoryNet::default();
    let config = config();
    let mut nodes = three_nodes(&root, &net, &config).await;

    let last = write_keys(&nodes, 0..200).await;
    let leader_id = leader_of(&nodes).await;
    snapshot_and_purge(&nodes[&leader_id].raft, last).await;

    nodes.insert(4, start(4, &root.join("node4"), &net, Arc::clone(&config)).await);
    let added = add_learner(&nodes, 4, Duration::from_secs(20)).await;
    let learner = &nodes[&4];
    learner.raft.wait(WAIT).applied_index_at_least(Some(added.index), "learner caught up").await.unwrap();
    assert_installed(4, learner, last).await;
    assert_eq!(learner.raft.metrics().borrow_watched().state, ServerState::Learner);
    let leader = &nodes[&leader_of(&nodes).await];
    assert_eq!(learner.db.digest(NOW), leader.db.digest(NOW), "learner diverged after the snapshot");
    assert_eq!(learner.db.get(b"key0", NOW), Some(Bytes::from("value0")));

    // The tail comes by AppendEntries, on top of the installed snapshot.
    let tail = write_keys(&nodes, 200..230).await;
    for node in nodes.values() {
        node.raft.wait(WAIT).applied_index_at_least(Some(tail.index), "tail applied").await.unwrap();
    }
    let digest = nodes[&leader_of(&nodes).await].db.digest(NOW);
    for (id, node) in &nodes {
        assert_eq!(node.db.digest(NOW), digest, "node {id} diverged");
        assert_eq!(node.db.len(), 230, "node {id}");
    }
    let learner_log = nodes[&4].log.indexes();
    assert!(learner_log.last() == Some(&tail.index), "learner log ends at {:?}", learner_log.last());

    for (id, node) in nodes {
        stop(id, node, &net).await;
    }
    let _ = std::fs::remove_dir_all(&root);
}

/// A follower that is down while the leader purges past it, and comes back
/// with its disk wiped (fresh WAL, empty keyspace, same id), is restored by
/// the snapshot. Its log went backwards, which the leader tolerates only with
/// `allow_log_reversion`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wiped_follower_rejoins_by_snapshot() {
    let root = temp_dir("snapshot-wiped");
    let net = MemoryNet::default();
    let config = config();
    let mut nodes = three_nodes(&root, &net, &config).await;

    let first = write_keys(&nodes, 0..100).await;
    for node in nodes.values() {
        node.raft.wait(WAIT).applied_index_at_least(Some(first.index), "all applied").await.unwrap();
    }
    let leader_id = leader_of(&nodes).await;
    let down = *nodes.keys().find(|&&id| id != leader_id).unwrap();
    let node = nodes.remove(&down).unwrap();
    stop(down, node, &net).await;

    // More than the log kept after a purge (none): the follower's next entry
    // is gone from the leader.
    let last = write_keys(&nodes, 100..200).await;
    let leader_id = leader_of(&nodes).await;
    snapshot_and_purge(&nodes[&leader_id].raft, last).await;
    assert!(nodes[&leader_id].log.indexes().is_empty());

    let wiped = root.join(format!("node{down}-wiped"));
    nodes.insert(down, start(down, &wiped, &net, Arc::clone(&config)).await);
    let rejoined = &nodes[&down];
    assert_installed(down, rejoined, last).await;
    rejoined.raft.wait(WAIT).applied_index_at_least(Some(last.index), "rejoined applied").await.unwrap();
    assert_eq!(rejoined.db.digest(NOW), nodes[&leader_id].db.digest(NOW), "rejoined node diverged");
    assert_eq!(rejoined.db.len(), 200);

    let tail = write_keys(&nodes, 200..220).await;
    for node in nodes.values() {
        node.raft.wait(WAIT).applied_index_at_least(Some(tail.index), "tail applied").await.unwrap();
    }
    let digest = nodes[&leader_of(&nodes).await].db.digest(NOW);
    for (id, node) in &nodes {
        assert_eq!(node.db.digest(NOW), digest, "node {id} diverged");
        assert_eq!(node.db.len(), 220, "node {id}");
    }
    // Back as a voter: the group commits with it even if another node is out.
    assert_eq!(nodes[&down].raft.metrics().borrow_watched().membership_config.membership().voter_ids().count(), 3);

    for (id, node) in nodes {
        stop(id, node, &net).await;
    }
    let _ = std::fs::remove_dir_all(&root);
}

/// What openraft does when a follower installs a snapshot that conflicts
/// with its log: truncate the conflicting tail (a WAL record queued without
/// waiting), then install. A power cut right after the install must not
/// find the snapshot durable and the truncation lost: the restarted log
/// would hold an older term's entries past the snapshot, which openraft
/// refuses to start on ("inverted log order").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_right_after_an_install_keeps_the_truncation_before_it() {
    let root = temp_dir("snapshot-install-crash");
    // A slow disk: the truncation is still unsynced when the install runs.
    let slow = WalOptions { fsync_delay: Duration::from_millis(300), ..WalOptions::default() };
    let (wal, recovered) = Wal::open(&root, slow).unwrap();
    let wal = Arc::new(wal);
    let mut log = LogStore::open(Arc::clone(&wal), GROUP, &recovered.group(GROUP)).unwrap();
    let term1 = |index| LogId::new(openraft::vote::leader_id_adv::LeaderId { term: 1, node_id: 1 }, index);
    let term2 = |index| LogId::new(openraft::vote::leader_id_adv::LeaderId { term: 2, node_id: 2 }, index);
    let entries: Vec<_> = (0..10)
        .map(|i| <openraft::type_config::alias::EntryOf<TypeConfig> as openraft::entry::RaftEntry>::new_blank(term1(i)))
        .collect();
    log.append(entries, openraft::storage::IOFlushed::noop()).await.unwrap();
    let durable = Arc::clone(&wal);
    tokio::task::spawn_blocking(move || durable.append_sync(Vec::new())).await.unwrap().unwrap();
    // The leader of term 2 committed other entries from index 4 on, and
    // sends a snapshot up to index 6 of term 2.
    log.truncate_after(Some(term1(3))).await.unwrap();
    let db = Arc::new(Db::new());
    let mut sm = StateMachine::open(Arc::clone(&db), &root.join("sm")).unwrap().after_log(Arc::clone(&wal));
    let leader = Db::new();
    leader.set(Bytes::from_static(b"k"), Bytes::from_static(b"v"), &SetOptions::default(), NOW);
    let mut builder = StateMachine::new(Arc::new(leader));
    let built = builder.build_snapshot().await.unwrap();
    let meta = openraft::type_config::alias::SnapshotMetaOf::<TypeConfig> {
        last_log_id: Some(term2(6)),
        last_membership: Default::default(),
    };
    sm.install_snapshot(&meta, built.snapshot).await.unwrap();
    let point = wal.crash();
    drop((log, sm, wal));
    // The page cache is lost.
    let newest = shoal_wal::segment::segment_path(&root, point.segment);
    std::fs::OpenOptions::new().write(true).open(&newest).unwrap().set_len(point.synced_len).unwrap();

    let (wal, recovered) = Wal::open(&root, WalOptions::default()).unwrap();
    let reopened = LogStore::open(Arc::new(wal), GROUP, &recovered.group(GROUP)).unwrap();
    let sm = StateMachine::open(Arc::new(Db::new()), &root.join("sm")).unwrap();
    let (applied, _) = sm.clone().applied_state().await.unwrap();
    assert_eq!(applied, Some(term2(6)), "the installed snapshot is durable");
    let stale: Vec<u64> = reopened.indexes().into_iter().filter(|&i| i > 3).collect();
    assert!(stale.is_empty(), "term-1 entries {stale:?} survived past a term-2 snapshot");
    let _ = std::fs::remove_dir_all(&root);
}

/// A snapshot larger than one chunk (`SNAPSHOT_CHUNK_BYTES`) reaches a new
/// learner in pieces, in order, and is installed whole: a snapshot's size
/// is no longer bounded by one peer frame.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_larger_than_a_chunk_streams_to_a_learner() {
    let root = temp_dir("snapshot-chunks");
    let net = MemoryNet::default();
    let config = config();
    let mut nodes = three_nodes(&root, &net, &config).await;
    let chunks = 3;
    let value = vec![b'v'; shoal_raft::transport::SNAPSHOT_CHUNK_BYTES / 4];
    let mut last = None;
    for i in 0..4 * chunks {
        let op = WriteOp::Set {
            key: Bytes::from(format!("big{i}")),
            value: Bytes::from(value.clone()),
            options: SetOptions::default(),
        };
        last = Some(write(&nodes, Proposal::write(&op, NOW, None)).await.log_id);
    }
    let last = last.unwrap();
    let leader_id = leader_of(&nodes).await;
    snapshot_and_purge(&nodes[&leader_id].raft, last).await;
    let mut sm = nodes[&leader_id].sm.clone();
    let size = sm.get_current_snapshot().await.unwrap().expect("a snapshot").snapshot.len();
    assert!(size > chunks * shoal_raft::transport::SNAPSHOT_CHUNK_BYTES - 1024, "a {size}-byte snapshot");

    nodes.insert(4, start(4, &root.join("node4"), &net, Arc::clone(&config)).await);
    let added = add_learner(&nodes, 4, Duration::from_secs(30)).await;
    let learner = &nodes[&4];
    learner.raft.wait(WAIT).applied_index_at_least(Some(added.index), "learner caught up").await.unwrap();
    assert_installed(4, learner, last).await;
    let leader = &nodes[&leader_of(&nodes).await];
    assert_eq!(learner.db.digest(NOW), leader.db.digest(NOW), "learner diverged after a chunked snapshot");
    assert_eq!(learner.db.len(), 4 * chunks);
    for (id, node) in nodes {
        stop(id, node, &net).await;
    }
    let _ = std::fs::remove_dir_all(&root);
}

/// A snapshot built for a replica whose group directory now belongs to
/// another replica (the group was closed and a new replica of it opened
/// there while the build ran) is not saved over the new replica's state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_is_saved_only_while_its_replica_owns_the_directory() {
    let root = temp_dir("snapshot-owner");
    let dir = root.join("group-3");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("raft-id"), "7").unwrap();
    let db = Db::new();
    db.set(Bytes::from_static(b"k"), Bytes::from_static(b"v"), &SetOptions::default(), NOW);
    let mut owned = StateMachine::open(Arc::new(db), &dir).unwrap().owned_by(7);
    owned.build_snapshot().await.expect("its own directory: saved");
    assert!(dir.join("snapshot").exists());
    std::fs::remove_file(dir.join("snapshot")).unwrap();
    // A new replica (id 9) of the group took the directory over.
    std::fs::write(dir.join("raft-id"), "9").unwrap();
    assert!(owned.build_snapshot().await.is_err(), "the old replica's snapshot must not be saved");
    assert!(!dir.join("snapshot").exists(), "nothing written into the new replica's directory");
    let _ = std::fs::remove_dir_all(&root);
}
