//! Keeps the WAL's disk use bounded: every `WAL_COMPACT_INTERVAL`, groups
//! that keep old WAL segments on disk (too idle to reach their snapshot
//! policy) snapshot and purge their logs (`Replicas::compact_wal`).

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
        if periodic.unless_stopped(shared.shards.replicas().compact_wal()).await.is_none() {
            return;
        }
    }
}
