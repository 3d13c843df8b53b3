//! Rejoining after data loss, both sides of it.
//!
//! **The node that lost its data.** While it is in quarantine, the
//! data-loss guard (`witness`) may learn from a peer that this node held
//! data in another incarnation: its directory was wiped. It must not come
//! back as the voter it was (it forgot its votes and acknowledgements), so
//! it comes back as a new one: the server stops, [`start_afresh`] removes
//! what the node wrote while in quarantine (only its own bootstrap records:
//! a quarantined node answers no Raft request, so it holds nothing anyone
//! relies on), draws a new generation and keeps it in `raft-generation`, and
//! the process starts the server again under the Raft identity
//! `shoal_raft::raft_id(node, generation)`, with empty logs, bootstrapping
//! nothing. Automatic: no operator command is needed.
//!
//! **Each group's leader.** Every `balance_interval`, for each group it
//! leads, a member node whose peer check reports a generation the group's
//! membership lacks is added as a learner, caught up, and swapped in for
//! the node's older identity (`Replicas::replace_member`, a joint-consensus
//! change). Generation 0 is never added back: it is every node's first
//! identity, and a node at generation 0 with an empty log is one whose data
//! was just wiped.
//!
//! The old identity stays a voter until the swap commits, so until then the
//! group counts it (as an unreachable member) in its majority.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use shoal_raft::transport::GroupId;
use shoal_raft::{node_of, raft_id, ShowId};
use tokio::sync::watch;

use crate::periodic::Periodic;
use crate::state::Shared;
use crate::witness::{random_nonzero, write_durably};

/// Where a node keeps the generation of its data (hex; absent: 0).
const GENERATION: &str = "raft-generation";

/// How long a leader waits for a new replica to catch up before it gives
/// up (and tries again at its next round).
const CATCH_UP: Duration = Duration::from_secs(60);

/// The generation of the data in `dir` (0 for a node's first identity).
pub fn generation(dir: &Path) -> Result<u32, String> {
    let path = dir.join(GENERATION);
    match std::fs::read_to_string(&path) {
        Ok(text) => u32::from_str_radix(text.trim(), 16)
            .ok()
            .filter(|&g| g != 0)
            .ok_or_else(|| format!("{}: not a generation: {:?}", path.display(), text.trim())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Prepares `dir`, whose node found in quarantine that it lost its data,
/// to start again as a new replica: removes its logs and snapshots, then
/// records a new generation (in that order: a crash in between leaves an
/// empty directory at the old generation, which the guard stops again).
/// Returns the new generation.
pub fn start_afresh(dir: &Path) -> Result<u32, String> {
    let err = |path: &Path, e: std::io::Error| format!("{}: {e}", path.display());
    let entries = std::fs::read_dir(dir).map_err(|e| err(dir, e))?;
    for entry in entries {
        let path = entry.map_err(|e| err(dir, e))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if name == "wal" || name.starts_with("group-") {
            std::fs::remove_dir_all(&path).map_err(|e| err(&path, e))?;
        }
    }
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| err(dir, e))?;
    let old = generation(dir)?;
    let new = loop {
        // At least 2^31: the cluster map's sequence numbers are below it
        // (`Shards::raft_id_of` combines the two).
        let drawn = (random_nonzero() >> 32) as u32 | (1 << 31);
        if drawn != old {
            break drawn;
        }
    };
    let path = dir.join(GENERATION);
    write_durably(&path, format!("{new:08x}\n").as_bytes()).map_err(|e| err(&path, e))?;
    Ok(new)
}

/// On every node: swaps rejoined replicas into the groups it leads, until
/// shutdown.
pub async fn repair(shared: Arc<Shared>, shutdown: watch::Receiver<bool>) {
    let Some(cluster) = shared.config.cluster.clone() else { return };
    let mut periodic = Periodic::new(cluster.balance_interval, shutdown);
    while periodic.next().await {
        let layout = shared.shards.layout();
        for shard in &layout.shards {
            let group = GroupId::from(shard.id);
            let Some(new) = shard.replicas.iter().find_map(|&node| missing(&shared, group, node)) else { continue };
            tracing::info!(group, replica = %ShowId(new), "adding a rejoined replica in place of its lost one");
            match periodic.unless_stopped(shared.shards.replicas().replace_member(group, new, CATCH_UP)).await {
                Some(Ok(())) => tracing::info!(group, replica = %ShowId(new), "the rejoined replica is a voter"),
                Some(Err(e)) => {
                    tracing::warn!(group, replica = %ShowId(new), error = %e, "rejoin not finished; will retry")
                }
                None => return,
            }
        }
    }
}

/// The Raft id of `node`'s identity that `group`, led here, still has to
/// take in as a voter (and make its only one for that node), if any.
fn missing(shared: &Shared, group: GroupId, node: shoal_cluster::NodeNumber) -> Option<u64> {
    let replicas = shared.shards.replicas();
    // A node not answering our peer checks now would only make the
    // catch-up wait its full bound.
    if !replicas.is_leader(group) || u64::from(node) == node_of(replicas.me()) || !shared.peers.is_connected(node) {
        return None;
    }
    let generation = shared.peers.generation(node).filter(|&g| g != 0)?;
    // The identity the node opens its replica under (`Shards::raft_id_of`).
    let replica = u16::try_from(group).ok().and_then(|shard| shared.shards.map().replica_on(shard, node));
    let id = match replica {
        Some((replica, _)) => crate::shards::raft_id_under(replica, generation),
        None => raft_id(u64::from(node), generation),
    };
    let status = replicas.status(group)?;
    let others = status.voters.iter().chain(&status.learners).any(|&m| node_of(m) == u64::from(node) && m != id);
    (!status.voters.contains(&id) || others).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_afresh_clears_the_logs_and_draws_a_new_generation() {
        let dir = std::env::temp_dir().join(format!("shoal-rejoin-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("wal")).unwrap();
        std::fs::create_dir_all(dir.join("group-2")).unwrap();
        std::fs::write(dir.join("wal/0000.seg"), b"x").unwrap();
        std::fs::write(dir.join("peers-with-data"), b"2 4d\n").unwrap();
        assert_eq!(generation(&dir), Ok(0));
        let first = start_afresh(&dir).unwrap();
        assert_ne!(first, 0);
        assert_eq!(generation(&dir), Ok(first));
        assert!(!dir.join("wal").exists() && !dir.join("group-2").exists());
        assert!(dir.join("peers-with-data").exists(), "what it knows of its peers stays");
        assert_ne!(start_afresh(&dir).unwrap(), first, "another loss, another identity");
        std::fs::write(dir.join(GENERATION), "zz\n").unwrap();
        assert!(generation(&dir).is_err(), "a damaged generation is an error, not 0");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
