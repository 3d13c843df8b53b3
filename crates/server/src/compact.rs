//! Keeps the WAL's disk use and the logs held in memory bounded: every
//! `WAL_COMPACT_INTERVAL`, groups that keep old WAL segments on disk (too
//! idle to reach their snapshot policy) or hold more than
//! `--snapshot-log-bytes` of log in memory snapshot and purge their logs
//! (`Replicas::compact_wal`, `Replicas::compact_logs`).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::periodic::Periodic;
use crate::state::Shared;

/// How often the WAL's segments are checked.
const WAL_COMPACT_INTERVAL: Duration = Duration::from_secs(1);

pub async fn run(shared: Arc<Shared>, shutdown: watch::Receiver<bool>) {
    let mut periodic = Periodic::new(WAL_COMPACT_INTERVAL, shutdown);
    while periodic.next().await {
        let replicas = shared.shards.replicas();
        if periodic.unless_stopped(replicas.compact_wal()).await.is_none() {
            return;
        }
        if periodic.unless_stopped(replicas.compact_logs()).await.is_none() {
            return;
        }
    }
}
