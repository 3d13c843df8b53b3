//! Routing in cluster mode: a command's keys must share one slot
//! (`-CROSSSLOT` otherwise) and that slot's shard must be led here
//! (`-MOVED <slot> <host>:<port>` otherwise). Key positions come from the
//! command table, the same data COMMAND gives to cluster clients, so the
//! server and its clients agree on what a key is.

use bytes::Bytes;
use shoal_engine::slot::{key_slot, Slot};
use shoal_proto::{CommandSpec, Frame};

use crate::config::ClusterConfig;

const CROSSSLOT: &str = "CROSSSLOT Keys in request don't hash to the same slot";

/// `Ok(Some(slot))` when the command has keys and is served here,
/// `Ok(None)` when it has none, `Err(reply)` when it must go elsewhere.
pub fn check(cluster: &ClusterConfig, spec: &CommandSpec, args: &[Bytes]) -> Result<Option<Slot>, Frame> {
    let mut positions = spec.key_positions(args.len());
    let Some(first) = positions.next() else {
        return Ok(None);
    };
    let slot = key_slot(&args[first]);
    if positions.any(|p| key_slot(&args[p]) != slot) {
        return Err(Frame::error(CROSSSLOT));
    }
    let shard = cluster.layout.shard_of_slot(slot);
    if shard.primary() == cluster.me {
        return Ok(Some(slot));
    }
    let owner = cluster.layout.node(shard.primary()).expect("shard replicas are layout nodes");
    Err(Frame::error(format!("MOVED {slot} {}:{}", owner.host, owner.port)))
}
