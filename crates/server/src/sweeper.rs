//! The background expiry sweep: every `sweep_interval`, each group this node
//! leads lists at most `sweep_keys_per_tick` expired keys and proposes their
//! deletion (`WriteOp::PurgeExpired`), so every replica removes the same
//! keys at the same log position; replicas never expire keys by their own
//! clock. Reads already hide expired keys: the sweep only reclaims their
//! memory, so bounding it bounds the work it adds to a tick.

use std::sync::Arc;

use shoal_engine::WriteOp;
use shoal_raft::Reply;
use tokio::sync::watch;

use crate::periodic::Periodic;
use crate::state::Shared;
use crate::stats::Stats;

pub async fn run(shared: Arc<Shared>, shutdown: watch::Receiver<bool>) {
    let mut periodic = Periodic::new(shared.config.sweep_interval, shutdown);
    while periodic.next().await {
        let now = shared.now_ms();
        let budget = shared.config.sweep_keys_per_tick;
        let work: Vec<_> = shared
            .shards
            .led()
            .map(|(group, db)| (group, db.expired_keys(now, budget)))
            .filter(|(_, keys)| !keys.is_empty())
            .collect();
        // Concurrently: a group that lost its quorum must not hold up the
        // others' sweeps.
        let mut proposals = tokio::task::JoinSet::new();
        for (group, keys) in work {
            let shared = Arc::clone(&shared);
            proposals.spawn(async move {
                // A failure (leadership moved) is harmless: the keys stay
                // hidden and the next leader lists them again.
                let op = WriteOp::PurgeExpired { keys };
                if let Ok(Reply::Count(removed)) = shared.shards.replicas().propose(group, op, now).await {
                    Stats::add(&shared.stats.expired_keys, removed);
                }
            });
        }
        // A proposal to a group without a quorum may wait indefinitely:
        // stopping must not (dropping the set aborts them).
        if periodic.unless_stopped(async { while proposals.join_next().await.is_some() {} }).await.is_none() {
            return;
        }
    }
}
