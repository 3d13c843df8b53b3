//! Seeded fault simulation: three nodes' `Replicas` in one process over
//! `MemoryNet`, clients writing and reading through whichever node leads,
//! while a schedule drawn from the seed cuts links, loses and delays
//! messages (delays reorder them), crashes nodes (their WAL left with a
//! torn last write, as a crash mid-write leaves it) and restarts them, and
//! wipes nodes, which come back under a new Raft identity that a repair
//! task (what the server's `rejoin::repair` does) has each group's leader
//! swap in.
//! Then everything heals and every run must show: replicas converged, every
//! acknowledged write present on every node, every counter between its
//! acknowledged and attempted increments, and each register's history
//! linearizable (checked by shoal-check).
//!
//! Odd seeds run the WAL with `--fsync everysec`: appends are acknowledged
//! once written, so a crash loses what the page cache held of the last
//! second; votes and truncations are fsynced under every policy. Crashes
//! there come at least `EVERYSEC_CRASH_GAP` apart, so every acknowledged
//! write is fsynced on a majority before the next crash, and the same
//! checks hold; a vote lost in a crash (an amnesiac voter) would break them.
//!
//! A second simulation moves replicas under the same faults (four nodes,
//! each group on three; a mover swaps a group's replica on one node for a
//! new one on the fourth, through `Replicas::move_replica` on whichever
//! node leads, as the server's moves do), with the same checks over each
//! group's holders.
//!
//! Every run prints its seed. `SHOAL_SIM_SEED=<seed>` replays one seed's
//! schedule (the fault plan and the clients' choices; thread timing is not
//! replayed); `SHOAL_SIM_SEEDS=<n>` runs n seeds from a fresh random start.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use shoal_check::history::{Call, Op, Outcome, Ret};
use shoal_check::linear::{check_registers, Limits};
use shoal_check::Verdict;
use shoal_engine::{SetOptions, WriteOp};
use shoal_raft::memory::{MemoryNet, Rng};
use shoal_raft::{generation_of, node_of, GroupSpec, MoveProgress, ReplicaConfig, ReplicaError, Replicas, Reply};

mod sim;
use sim::*;

const NODES: u64 = 3;
/// Nodes of the moves simulation: one more than a group's replicas.
const GROUPS: u32 = 3;
const WAIT: Duration = Duration::from_secs(30);
/// How long faults are injected per seed.
const FAULT_TIME: Duration = Duration::from_secs(4);
/// Seeds `cargo test` runs (more with SHOAL_SIM_SEEDS).
const DEFAULT_SEEDS: u64 = 5;
/// Seeds of the moves simulation `cargo test` runs.
const DEFAULT_MOVE_SEEDS: u64 = 3;
/// Under `FsyncPolicy::EverySec`, the least time between two crashes: more
/// than the WAL's once-a-second fsync.
const EVERYSEC_CRASH_GAP: Duration = Duration::from_millis(1500);

/// The seed's fsync policy: odd seeds run `EverySec`.
fn config(root: &std::path::Path, me: u64, generation: u32, fsync: shoal_wal::FsyncPolicy) -> ReplicaConfig {
    let groups = (0..GROUPS)
        .filter_map(|g| {
            let nodes: Vec<u64> = (0..NODES).map(|j| (u64::from(g) + j) % NODES + 1).collect();
            GroupSpec::initial(g, &nodes, me, generation)
        })
        .collect();
    config_with(root, me, generation, fsync, groups)
}

async fn open(
    net: &MemoryNet,
    root: &std::path::Path,
    me: u64,
    generation: u32,
    fsync: shoal_wal::FsyncPolicy,
) -> Arc<Replicas> {
    let replicas = Replicas::open(config(root, me, generation, fsync), net.transport(me)).await.expect("open replicas");
    net.register(me, replicas.groups());
    net.set_down(me, false);
    Arc::new(replicas)
}

/// Whether every group's leader has exactly the running nodes' current
/// identities as voters (a wiped node has been swapped in).
fn swapped_in(nodes: &Nodes) -> bool {
    let running: Vec<u64> = {
        let mut ids: Vec<u64> = nodes.read().unwrap().values().map(|n| n.me()).collect();
        ids.sort_unstable();
        ids
    };
    (0..GROUPS).all(|g| leader(nodes, g).and_then(|l| l.status(g)).is_some_and(|s| s.voters == running))
}

/// What the server's `rejoin::repair` does: each group's leader swaps in
/// running nodes at a later generation that its voters lack.
async fn repair(nodes: Nodes, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        for group in 0..GROUPS {
            let Some(leader) = leader(&nodes, group) else { continue };
            let Some(status) = leader.status(group) else { continue };
            let rejoined: Vec<u64> =
                nodes.read().unwrap().values().map(|n| n.me()).filter(|&id| generation_of(id) != 0).collect();
            let stale =
                |id: u64| status.voters.iter().chain(&status.learners).any(|&m| node_of(m) == node_of(id) && m != id);
            for id in rejoined.into_iter().filter(|&id| !status.voters.contains(&id) || stale(id)) {
                let _ = leader.replace_member(group, id, Duration::from_secs(5)).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What the clients learned: acknowledged keys, counters, and the
/// register history.
#[derive(Default)]
struct Record {
    acked: Vec<String>,
    /// Per group: (acknowledged, attempted) increments.
    counters: HashMap<u32, (i64, i64)>,
    ops: Vec<Op>,
}

/// One proposal with a deadline: the reply, or why not.
async fn propose(nodes: &Nodes, group: u32, op: WriteOp) -> Result<Reply, ReplicaError> {
    let Some(node) = leader(nodes, group) else { return Err(ReplicaError::NotLeader { leader: None }) };
    match tokio::time::timeout(Duration::from_secs(2), node.propose(group, op, now_ms())).await {
        Ok(result) => result,
        Err(_) => Err(ReplicaError::Uncertain("no reply within 2 s".into())),
    }
}

/// A linearizable read of `key`: a read barrier on the leader, then its copy.
async fn read(nodes: &Nodes, group: u32, key: &[u8]) -> Option<Option<u64>> {
    let node = leader(nodes, group)?;
    tokio::time::timeout(Duration::from_secs(2), node.read_barrier(group)).await.ok()?.ok()?;
    let value = node.db(group)?.get(key, now_ms());
    Some(value.map(|v| std::str::from_utf8(&v).ok().and_then(|s| s.parse().ok()).unwrap_or(u64::MAX)))
}

fn outcome_of_write(result: &Result<Reply, ReplicaError>) -> Outcome {
    match result {
        Ok(_) => Outcome::Ok(Ret::Done),
        Err(ReplicaError::NotLeader { .. } | ReplicaError::NoSuchGroup(_)) => Outcome::Fail("not leader".into()),
        Err(e) => Outcome::Info(e.to_string()),
    }
}

/// One client: unique keys, a counter and a register per group, in turn.
async fn client(nodes: Nodes, stop: Arc<AtomicBool>, record: Arc<Mutex<Record>>, id: u32, started: Instant) {
    let ns = || started.elapsed().as_nanos() as u64;
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let group = (i % u64::from(GROUPS)) as u32;
        let key = format!("c{id}:{i}");
        let set = |key: &str, value: String| WriteOp::Set {
            key: Bytes::from(key.to_string()),
            value: Bytes::from(value),
            options: SetOptions::default(),
        };
        match i % 4 {
            0 => {
                if propose(&nodes, group, set(&key, key.clone())).await.is_ok() {
                    record.lock().unwrap().acked.push(key);
                }
            }
            1 => {
                record.lock().unwrap().counters.entry(group).or_default().1 += 1;
                let op = WriteOp::IncrBy { key: Bytes::from(format!("ctr{group}")), delta: 1 };
                if matches!(propose(&nodes, group, op).await, Ok(Reply::Int(_))) {
                    record.lock().unwrap().counters.entry(group).or_default().0 += 1;
                }
            }
            2 => {
                let value = u64::from(id) << 32 | i;
                let invoke_ns = ns();
                let result = propose(&nodes, group, set(&format!("reg{group}"), value.to_string())).await;
                let op = Op {
                    process: id,
                    key: format!("reg{group}"),
                    call: Call::Write(value),
                    invoke_ns,
                    complete_ns: Some(ns()),
                    outcome: outcome_of_write(&result),
                };
                record.lock().unwrap().ops.push(op);
            }
            _ => {
                let invoke_ns = ns();
                let seen = read(&nodes, group, format!("reg{group}").as_bytes()).await;
                let outcome = seen.map_or(Outcome::Info("no read".into()), |v| Outcome::Ok(Ret::Value(v)));
                let op = Op {
                    process: id,
                    key: format!("reg{group}"),
                    call: Call::Read,
                    invoke_ns,
                    complete_ns: Some(ns()),
                    outcome,
                };
                record.lock().unwrap().ops.push(op);
            }
        }
        if leader(&nodes, group).is_none() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// The checks every simulation ends with, on each group's holders: every
/// acknowledged key present, each counter between its acknowledged and
/// attempted increments, and the registers' history linearizable.
fn check_record(seed: u64, record: &Record, holders: impl Fn(u32) -> Vec<Arc<Replicas>>) {
    for key in &record.acked {
        // Keys are `c{client}:{i}`, written to group `i % GROUPS`.
        let i: u64 = key[1..].split(':').nth(1).and_then(|i| i.parse().ok()).expect("a client's key");
        let group = (i % u64::from(GROUPS)) as u32;
        for node in holders(group) {
            let found = node.db(group).is_some_and(|db| db.get(key.as_bytes(), now_ms()).is_some());
            assert!(found, "seed {seed}: acknowledged {key} lost on node {}", node.me());
        }
    }
    for (&group, &(acked, attempted)) in &record.counters {
        for node in holders(group) {
            let value = node.db(group).unwrap().get(format!("ctr{group}").as_bytes(), now_ms());
            let value: i64 = value.map_or(0, |v| std::str::from_utf8(&v).unwrap().parse().unwrap());
            assert!(
                (acked..=attempted).contains(&value),
                "seed {seed}: counter {group} is {value}, acknowledged {acked}, attempted {attempted}"
            );
        }
    }
    let limits = Limits { deadline: Instant::now() + Duration::from_secs(60), max_states: 1 << 21 };
    match check_registers(&record.ops, limits) {
        Verdict::Valid => {}
        Verdict::Invalid(why) => panic!("seed {seed}: {why}"),
        // A check that gave up checked nothing: that must not pass.
        Verdict::Unknown(why) => panic!("seed {seed}: the register check gave up: {why}"),
    }
}

/// Waits until every node's copy of every group has the same digest.
async fn converged(nodes: &Nodes, seed: u64) {
    let deadline = Instant::now() + WAIT;
    loop {
        let digests: Vec<Vec<_>> = nodes
            .read()
            .unwrap()
            .values()
            .map(|n| (0..GROUPS).map(|g| n.db(g).expect("held").digest(now_ms())).collect())
            .collect();
        if digests.len() == NODES as usize && digests.iter().all(|d| *d == digests[0]) {
            return;
        }
        assert!(Instant::now() < deadline, "seed {seed}: replicas did not converge");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn simulate(seed: u64) {
    let fsync = policy(seed);
    println!("simulation seed {seed}, fsync {fsync:?} (replay: SHOAL_SIM_SEED={seed})");
    let mut rng = Rng(seed);
    let root = std::env::temp_dir().join(format!("shoal-sim-{}-{seed}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let net = MemoryNet::seeded(seed);
    let nodes: Nodes = Arc::default();
    for id in 1..=NODES {
        let node = open(&net, &root, id, 0, fsync).await;
        nodes.write().unwrap().insert(id, node);
    }
    // Each node's data generation: bumped when it is wiped.
    let mut generations: HashMap<u64, u32> = (1..=NODES).map(|id| (id, 0)).collect();
    let stop_repair = Arc::new(AtomicBool::new(false));
    let repairer = tokio::spawn(repair(Arc::clone(&nodes), Arc::clone(&stop_repair)));
    let first = nodes.read().unwrap()[&1].clone();
    first.wait_for_leaders(WAIT).await.expect("leaders");

    let stop = Arc::new(AtomicBool::new(false));
    let record = Arc::new(Mutex::new(Record::default()));
    let started = Instant::now();
    let clients: Vec<_> = (0..3)
        .map(|id| tokio::spawn(client(Arc::clone(&nodes), Arc::clone(&stop), Arc::clone(&record), id, started)))
        .collect();

    let mut plan = Vec::new();
    let mut down: Vec<u64> = Vec::new();
    // Under EverySec a crash waits until the last one's acknowledged writes
    // are fsynced on a majority (see `EVERYSEC_CRASH_GAP`).
    let mut last_crash: Option<Instant> = None;
    let may_crash = |last: Option<Instant>| {
        fsync == shoal_wal::FsyncPolicy::Always || last.is_none_or(|t| t.elapsed() >= EVERYSEC_CRASH_GAP)
    };
    let begin = Instant::now();
    while begin.elapsed() < FAULT_TIME {
        tokio::time::sleep(Duration::from_millis(150 + rng.below(350))).await;
        let (a, b) = (1 + rng.below(NODES), 1 + rng.below(NODES));
        let draw = rng.below(7);
        if let Some(step) = network_fault(&net, &mut rng, draw, (a, b), 25) {
            plan.push(step);
            continue;
        }
        let step = match draw {
            // At most one node down: a majority of every group stays.
            4 if down.is_empty() && may_crash(last_crash) => {
                last_crash = Some(Instant::now());
                let lost = crash(&net, &nodes, a, &mut rng).await;
                down.push(a);
                format!("crash {a} (lost {lost} unsynced bytes)")
            }
            // A lost disk, only once every earlier one was swapped in: two
            // lost replicas of a group before that would leave it without
            // a majority for good.
            5 if down.is_empty() && swapped_in(&nodes) && may_crash(last_crash) => {
                last_crash = Some(Instant::now());
                crash(&net, &nodes, a, &mut rng).await;
                std::fs::remove_dir_all(root.join(format!("node{a}"))).expect("wipe");
                *generations.get_mut(&a).unwrap() += 1;
                down.push(a);
                format!("wipe {a}")
            }
            _ => match down.pop() {
                Some(n) => {
                    let node = open(&net, &root, n, generations[&n], fsync).await;
                    nodes.write().unwrap().insert(n, node);
                    format!("restart {n}")
                }
                None => "nothing".to_string(),
            },
        };
        plan.push(step);
    }
    println!("seed {seed}: {}", plan.join(", "));
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.expect("client task");
    }
    net.calm();
    for n in down.drain(..) {
        let node = open(&net, &root, n, generations[&n], fsync).await;
        nodes.write().unwrap().insert(n, node);
    }
    converged(&nodes, seed).await;
    let deadline = Instant::now() + WAIT;
    while !swapped_in(&nodes) {
        assert!(Instant::now() < deadline, "seed {seed}: a wiped node was not swapped in");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop_repair.store(true, Ordering::Relaxed);
    repairer.await.expect("repair task");

    let record = std::mem::take(&mut *record.lock().unwrap());
    let running: Vec<Arc<Replicas>> = nodes.read().unwrap().values().cloned().collect();
    check_record(seed, &record, |_| running.clone());
    let infos = record.ops.iter().filter(|o| matches!(o.outcome, Outcome::Info(_))).count();
    println!(
        "seed {seed}: {} acknowledged keys, {} register operations ({infos} indeterminate), counters {:?}: ok",
        record.acked.len(),
        record.ops.len(),
        record.counters
    );
    for node in running {
        node.shutdown().await;
    }
    let _ = std::fs::remove_dir_all(&root);
}

/// Moves replicas until stopped: each time a random group's replica on a
/// random holder goes to the node that holds none (a new Raft id), the
/// group's leader carrying it out (`move_replica`, retried on whichever
/// node leads) while faults go on. The target's spec is recorded before it
/// opens (what the server's map does); the source's is dropped once done.
async fn mover(nodes: Nodes, held: Held, stop: Arc<AtomicBool>, seed: u64, log: Arc<Mutex<Vec<String>>>) {
    let mut rng = Rng(seed ^ 0x6d6f766573);
    let mut next_seq = 1u32;
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(200 + rng.below(300))).await;
        let group = rng.below(u64::from(GROUPS)) as u32;
        let holders: Vec<(u64, u64)> = {
            let held = held.lock().unwrap();
            let mut h: Vec<(u64, u64)> =
                held.iter().filter_map(|(&n, specs)| specs.iter().find(|s| s.id == group).map(|s| (n, s.me))).collect();
            h.sort_unstable();
            h
        };
        let Some(target) = (1..=MOVE_NODES).find(|n| !holders.iter().any(|(h, _)| h == n)) else { continue };
        let (source, source_id) = holders[rng.below(holders.len() as u64) as usize];
        let target_node = nodes.read().unwrap().get(&target).cloned();
        let Some(target_node) = target_node else { continue };
        let to = shoal_raft::raft_id(target, next_seq);
        next_seq += 1;
        let spec = GroupSpec { id: group, me: to, members: vec![] };
        held.lock().unwrap().entry(target).or_default().push(spec.clone());
        if target_node.open_group(&spec).await.is_err() {
            // The target crashed meanwhile: it opens the group on restart.
        }
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(leader) = leader(&nodes, group) {
                let attempt = leader.move_replica(group, Some(source_id), to, "127.0.0.1:7999", Duration::from_secs(5));
                if let Ok(Ok(MoveProgress::Done)) = tokio::time::timeout(Duration::from_secs(10), attempt).await {
                    break;
                }
            }
            assert!(
                Instant::now() < deadline,
                "seed {seed}: the move of group {group} from {source} to {target} never finished"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        held.lock().unwrap().entry(source).or_default().retain(|s| s.id != group);
        let source_node = nodes.read().unwrap().get(&source).cloned();
        if let Some(node) = source_node {
            let _ = node.close_group(group).await;
        }
        log.lock().unwrap().push(format!("group {group}: {source} -> {target}"));
    }
}

/// Replica moves under faults: four nodes, every group on three of them,
/// a mover moving replicas to the fourth one free while links are cut,
/// messages lost and delayed, and nodes crashed (power cuts) and
/// restarted; then the same checks as `simulate` over each group's holders.
async fn simulate_moves(seed: u64) {
    let fsync = policy(seed);
    println!("moves simulation seed {seed}, fsync {fsync:?} (replay: SHOAL_SIM_SEED={seed})");
    let mut rng = Rng(seed);
    let root = std::env::temp_dir().join(format!("shoal-sim-moves-{}-{seed}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let net = MemoryNet::seeded(seed);
    let held: Held = Arc::default();
    for node in 1..=MOVE_NODES {
        let specs = (0..GROUPS)
            .filter_map(|g| {
                let nodes: Vec<u64> = (0..NODES).map(|j| (u64::from(g) + j) % NODES + 1).collect();
                GroupSpec::initial(g, &nodes, node, 0)
            })
            .collect();
        held.lock().unwrap().insert(node, specs);
    }
    let nodes: Nodes = Arc::default();
    for id in 1..=MOVE_NODES {
        let node = open_held(&net, &root, id, &held, fsync).await;
        nodes.write().unwrap().insert(id, node);
    }
    let first = nodes.read().unwrap()[&1].clone();
    first.wait_for_leaders(WAIT).await.expect("leaders");
    let stop = Arc::new(AtomicBool::new(false));
    let record = Arc::new(Mutex::new(Record::default()));
    let started = Instant::now();
    let clients: Vec<_> = (0..3)
        .map(|id| tokio::spawn(client(Arc::clone(&nodes), Arc::clone(&stop), Arc::clone(&record), id, started)))
        .collect();
    let moves = Arc::new(Mutex::new(Vec::new()));
    let moving =
        tokio::spawn(mover(Arc::clone(&nodes), Arc::clone(&held), Arc::clone(&stop), seed, Arc::clone(&moves)));
    let mut plan = Vec::new();
    let mut down: Option<u64> = None;
    let mut last_crash: Option<Instant> = None;
    let begin = Instant::now();
    while begin.elapsed() < FAULT_TIME {
        tokio::time::sleep(Duration::from_millis(150 + rng.below(350))).await;
        let (a, b) = (1 + rng.below(MOVE_NODES), 1 + rng.below(MOVE_NODES));
        let may_crash =
            fsync == shoal_wal::FsyncPolicy::Always || last_crash.is_none_or(|t| t.elapsed() >= EVERYSEC_CRASH_GAP);
        let draw = rng.below(6);
        if let Some(step) = network_fault(&net, &mut rng, draw, (a, b), 20) {
            plan.push(step);
            continue;
        }
        let step = match draw {
            // At most one node down: every group keeps a majority.
            4 if down.is_none() && may_crash => {
                last_crash = Some(Instant::now());
                let lost = crash(&net, &nodes, a, &mut rng).await;
                down = Some(a);
                format!("crash {a} (lost {lost} unsynced bytes)")
            }
            _ => match down.take() {
                Some(n) => {
                    let node = open_held(&net, &root, n, &held, fsync).await;
                    nodes.write().unwrap().insert(n, node);
                    format!("restart {n}")
                }
                None => "nothing".to_string(),
            },
        };
        plan.push(step);
    }
    stop.store(true, Ordering::Relaxed);
    net.calm();
    if let Some(n) = down.take() {
        let node = open_held(&net, &root, n, &held, fsync).await;
        nodes.write().unwrap().insert(n, node);
    }
    for c in clients {
        c.await.expect("client task");
    }
    moving.await.expect("mover");
    println!("seed {seed}: {}; moves: {}", plan.join(", "), moves.lock().unwrap().join(", "));
    assert!(!moves.lock().unwrap().is_empty(), "seed {seed}: no replica moved");

    // Every group's holders converge and hold every acknowledged write.
    let holders = |g: u32| -> Vec<Arc<Replicas>> {
        let held = held.lock().unwrap();
        let running = nodes.read().unwrap();
        held.iter().filter(|(_, specs)| specs.iter().any(|s| s.id == g)).map(|(n, _)| Arc::clone(&running[n])).collect()
    };
    let deadline = Instant::now() + WAIT;
    for g in 0..GROUPS {
        loop {
            let digests: Vec<_> = holders(g).iter().filter_map(|n| Some(n.db(g)?.digest(now_ms()))).collect();
            if digests.len() == NODES as usize && digests.iter().all(|d| *d == digests[0]) {
                break;
            }
            assert!(Instant::now() < deadline, "seed {seed}: group {g}'s replicas did not converge");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let record = std::mem::take(&mut *record.lock().unwrap());
    check_record(seed, &record, holders);
    println!("seed {seed}: {} acknowledged keys, {} register operations: ok", record.acked.len(), record.ops.len());
    let running: Vec<Arc<Replicas>> = nodes.read().unwrap().values().cloned().collect();
    for node in running {
        node.shutdown().await;
    }
    let _ = std::fs::remove_dir_all(&root);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_moves_under_faults_lose_nothing() {
    for seed in seeds(DEFAULT_MOVE_SEEDS) {
        simulate_moves(seed).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_faults_lose_nothing_and_stay_linearizable() {
    for seed in seeds(DEFAULT_SEEDS) {
        simulate(seed).await;
    }
}
