//! What the seeded simulations share (`simulation.rs`, `split_simulation.rs`):
//! node configuration, crashes as power cuts, network faults, seeds.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use shoal_raft::memory::{MemoryNet, Rng};
use shoal_raft::{GroupSpec, ReplicaConfig, Replicas};

/// Nodes whose client addresses groups record (the moves simulation's four).
pub const MOVE_NODES: u64 = 4;

pub fn policy(seed: u64) -> shoal_wal::FsyncPolicy {
    if seed % 2 == 1 {
        shoal_wal::FsyncPolicy::EverySec
    } else {
        shoal_wal::FsyncPolicy::Always
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

/// `config` for node `me` holding exactly `groups`.
pub fn config_with(
    root: &std::path::Path,
    me: u64,
    generation: u32,
    fsync: shoal_wal::FsyncPolicy,
    groups: Vec<GroupSpec>,
) -> ReplicaConfig {
    ReplicaConfig {
        dir: root.join(format!("node{me}")),
        me,
        client_addrs: (1..=MOVE_NODES).map(|id| (id, format!("127.0.0.1:{}", 7000 + id))).collect(),
        groups,
        timing: Default::default(),
        read_mode: Default::default(),
        snapshots: shoal_raft::Snapshots { every_entries: 40, keep_entries: 10, ..Default::default() },
        // A slow disk: a crash often finds a batch written but not fsynced.
        wal: shoal_wal::WalOptions { fsync, fsync_delay: Duration::from_millis(2), ..Default::default() },
        quarantine_when_fresh: false,
        clock: Default::default(),
        generation,
    }
}

/// The running nodes; a crashed node is absent.
pub type Nodes = Arc<RwLock<HashMap<u64, Arc<Replicas>>>>;

/// A crash, as a power cut: the node leaves the network and its WAL stops
/// at once (queued appends never written, a batch written but not fsynced
/// never answered); everything its newest WAL segment holds past the last
/// fsync is cut off (the page cache is lost), and a torn last write (a
/// frame header promising more bytes than follow, then zero padding) is
/// put in its place, which recovery must cut.
/// Returns how many written but unsynced bytes were lost.
pub async fn crash(net: &MemoryNet, nodes: &Nodes, me: u64, rng: &mut Rng) -> u64 {
    // Down first: from now on it neither sends nor receives.
    net.set_down(me, true);
    net.remove(me);
    let node = nodes.write().unwrap().remove(&me).expect("running");
    let (newest, synced_len) = node.crash().await;
    drop(node);
    let bytes = std::fs::read(&newest).unwrap();
    let written = bytes.iter().rposition(|&b| b != 0).map_or(0, |last| last as u64 + 1);
    std::fs::OpenOptions::new().write(true).open(&newest).unwrap().set_len(synced_len).unwrap();
    let declared = 16 + rng.below(500) as u32;
    let mut torn = declared.to_le_bytes().to_vec();
    torn.extend((0..4 + rng.below(u64::from(declared) - 8)).map(|_| (rng.next_u64() as u8) | 1));
    torn.extend(std::iter::repeat_n(0u8, 4096));
    use std::io::Write;
    std::fs::OpenOptions::new().append(true).open(&newest).unwrap().write_all(&torn).unwrap();
    written.saturating_sub(synced_len)
}

/// The node leading `group` among the running ones.
pub fn leader(nodes: &Nodes, group: u32) -> Option<Arc<Replicas>> {
    nodes.read().unwrap().values().find(|n| n.is_leader(group)).cloned()
}

/// The network faults both simulations draw: `draw` 0 cuts the link `a`-`b`
/// (if two nodes), 1 heals every link, 2 loses up to `max_loss_pct` percent
/// of messages, 3 delays them by up to 30 ms; `None` for any other draw.
pub fn network_fault(
    net: &MemoryNet,
    rng: &mut Rng,
    draw: u64,
    (a, b): (u64, u64),
    max_loss_pct: u64,
) -> Option<String> {
    Some(match draw {
        0 if a != b => {
            net.cut(a, b);
            format!("cut {a}-{b}")
        }
        1 => {
            net.heal();
            "heal".to_string()
        }
        2 => {
            let loss = rng.below(max_loss_pct) as f64 / 100.0;
            net.set_loss(loss);
            format!("loss {loss}")
        }
        3 => {
            let jitter = Duration::from_millis(rng.below(30));
            net.set_jitter(jitter);
            format!("jitter {jitter:?}")
        }
        _ => return None,
    })
}

/// Who holds which group in the moves simulation: per node, the groups it
/// opens when (re)started, changed by the mover as replicas move.
pub type Held = Arc<Mutex<HashMap<u64, Vec<GroupSpec>>>>;

pub async fn open_held(
    net: &MemoryNet,
    root: &std::path::Path,
    me: u64,
    held: &Held,
    fsync: shoal_wal::FsyncPolicy,
) -> Arc<Replicas> {
    let specs = held.lock().unwrap().get(&me).cloned().unwrap_or_default();
    let replicas =
        Replicas::open(config_with(root, me, 0, fsync, specs), net.transport(me)).await.expect("open replicas");
    net.register(me, replicas.groups());
    net.set_down(me, false);
    Arc::new(replicas)
}

/// The seeds a run covers: `SHOAL_SIM_SEED`, `SHOAL_SIM_SEEDS` fresh ones,
/// or `default` fixed ones.
pub fn seeds(default: u64) -> Vec<u64> {
    match std::env::var("SHOAL_SIM_SEED").ok().and_then(|s| s.parse().ok()) {
        Some(seed) => vec![seed],
        None => {
            let n = std::env::var("SHOAL_SIM_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(default);
            let start = if std::env::var("SHOAL_SIM_SEEDS").is_ok() { now_ms() } else { 1 };
            (start..start + n).collect()
        }
    }
}
