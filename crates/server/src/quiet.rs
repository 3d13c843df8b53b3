//! Idle shard groups go quiet (`shoal_raft`'s hibernation): every
//! `HIBERNATE_CHECK`, each group here is looked at; a follower learns
//! whether its leader is still there from the node-level peer check
//! (`peer`), which goes on while the groups are silent: the leader's node
//! answers, under the identity that leads (a node that came back after
//! losing its data has a new one and leads nothing yet).

use std::sync::Arc;

use shoal_raft::HIBERNATE_CHECK;
use tokio::sync::watch;

use crate::periodic::Periodic;
use crate::state::Shared;

pub async fn run(shared: Arc<Shared>, shutdown: watch::Receiver<bool>) {
    let mut periodic = Periodic::new(HIBERNATE_CHECK, shutdown);
    while periodic.next().await {
        let alive = |group, leader: u64| {
            let node = u32::try_from(shoal_raft::node_of(leader)).unwrap_or(u32::MAX);
            shared.peers.is_connected(node) && shared.shards.leader_is_current(group, shared.peers.generation(node))
        };
        shared.shards.replicas().hibernate_tick(alive);
    }
}
