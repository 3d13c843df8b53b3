//! Leader balancing: each shard's preferred leader (the cluster map's; the
//! first replica in its layout view) should lead it, so leaders stay
//! spread evenly over nodes.
//! After a failover the survivor that took over leads until the preferred
//! node is back; then, every `balance_interval`, a node leading a group it
//! is not preferred for hands leadership back, but only once the preferred
//! node is reachable and has the whole log (lag 0), so the transfer costs
//! no more than one election timeout of unavailability for that shard.

use std::sync::Arc;

use shoal_raft::transport::GroupId;
use shoal_raft::{node_of, ShowId};
use tokio::sync::watch;

use crate::periodic::Periodic;
use crate::state::Shared;

pub async fn run(shared: Arc<Shared>, shutdown: watch::Receiver<bool>) {
    let Some(cluster) = shared.config.cluster.clone() else { return };
    let mut periodic = Periodic::new(cluster.balance_interval, shutdown);
    while periodic.next().await {
        let (layout, map) = (shared.shards.layout(), shared.shards.map());
        for shard in &layout.shards {
            let group = GroupId::from(shard.id);
            // A move may be handing leadership off its source, which may
            // be the preferred leader until the move finishes; a merge
            // keeps both shards led by one node (`merges`).
            if map.moves.values().any(|m| m.shard == shard.id) || map.merging(shard.id) {
                continue;
            }
            let preferred = shard.primary();
            if preferred == cluster.me || !shared.shards.is_leader(group) || !shared.peers.is_connected(preferred) {
                continue;
            }
            // The preferred node's current identity in the group (it may
            // have rejoined under a new one), once it is a caught-up voter.
            let caught_up = shared.shards.replicas().status(group).and_then(|status| {
                let is_preferred = |id: u64| node_of(id) == u64::from(preferred);
                let voter = status.voters.iter().copied().find(|&id| is_preferred(id))?;
                status.followers.iter().any(|&(id, lag)| id == voter && lag == 0).then_some(voter)
            });
            if let Some(to) = caught_up {
                tracing::info!(group, to = %ShowId(to), "handing leadership back to the preferred primary");
                let _ = shared.shards.replicas().transfer_leader(group, to).await;
            }
        }
    }
}
