//! The background expiry sweep: every `sweep_interval`, remove at most
//! `sweep_keys_per_tick` expired keys. Reads already hide expired keys; the
//! sweep only reclaims their memory, so bounding it bounds the latency it
//! can add to a tick.

use std::sync::Arc;

use tokio::sync::watch;

use crate::clock::now_ms;
use crate::state::Shared;
use crate::stats::Stats;

pub async fn run(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(shared.config.sweep_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        let removed = shared.db.sweep_expired(now_ms(), shared.config.sweep_keys_per_tick);
        Stats::add(&shared.stats.expired_keys, removed as u64);
    }
}
