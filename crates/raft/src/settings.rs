//! openraft's `Config` as shoal runs it: the one constructor the server and
//! every test use, so no test runs a setting production does not (the
//! simulation proved leader restore unsafe; a test on openraft's default
//! would not have seen it).

use std::sync::Arc;

use openraft::{Config, SnapshotPolicy};

use crate::replicas::{Snapshots, Timing};

/// The Raft settings of every group, from the node's timing and snapshot
/// policy. Everything else is fixed here, with the reason.
pub fn raft_config(timing: &Timing, snapshots: &Snapshots) -> Result<Arc<Config>, String> {
    let config = Config {
        cluster_name: "shoal".into(),
        heartbeat_interval: timing.heartbeat_interval_ms,
        election_timeout_min: timing.election_timeout_min_ms,
        election_timeout_max: timing.election_timeout_max_ms,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(snapshots.every_entries.max(1)),
        max_in_snapshot_log_to_keep: snapshots.keep_entries,
        // A node that was cut off (or started with another layout) must not
        // disrupt a working leader by bumping the term.
        enable_pre_vote: Some(true),
        // Send entries to followers as soon as they are handed to the WAL,
        // so the leader's fsync and the followers' overlap (commit still
        // needs a majority of fsynced copies).
        broadcast_submitted_on_append: Some(true),
        // A follower whose log went backwards lost its data (its directory
        // was wiped); the server's data-loss guard keeps such a node out of
        // elections, and a leader that meets one (it rejoined with
        // --unsafe-rejoin-after-data-loss) must send it the log again
        // rather than fail an assertion.
        allow_log_reversion: Some(true),
        // A restarted leader must win a new election, in a new term, and
        // commit an entry of that term before it serves: its `committed` is
        // saved without waiting for an fsync (see
        // `LogStore::save_committed`), so after a crash it may be behind what
        // the leader had acknowledged, and a restored leader would serve
        // ReadIndex reads from that stale point (found by the simulation
        // once crashes lost unsynced writes).
        enable_leader_restore: Some(false),
        ..Default::default()
    };
    Ok(Arc::new(config.validate().map_err(|e| e.to_string())?))
}
