//! Idle shard groups go quiet (`shoal_raft`'s hibernation): every
//! `HIBERNATE_CHECK`, each group here is looked at; a follower learns
//! whether its leader's node is up from the node-level peer check
//! (`peer`), which goes on while the groups are silent.

use std::sync::Arc;

use shoal_raft::HIBERNATE_CHECK;
use tokio::sync::watch;

use crate::periodic::Periodic;
use crate::state::Shared;

pub async fn run(shared: Arc<Shared>, shutdown: watch::Receiver<bool>) {
    let me = shared.shards.me();
    let mut periodic = Periodic::new(HIBERNATE_CHECK, shutdown);
    while periodic.next().await {
        let alive = |node: u64| {
            let node = u32::try_from(node).unwrap_or(u32::MAX);
            node == me || shared.peers.is_connected(node)
        };
        shared.shards.replicas().hibernate_tick(alive);
    }
}
