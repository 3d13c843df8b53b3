//! Routing: which Raft group serves a command here, or the redirect.
//!
//! A command's keys must share one slot (`-CROSSSLOT` otherwise, cluster
//! mode only). The slot's group must be held here and led here; otherwise:
//! a follower names the leader (`-MOVED <slot> <host>:<port>`), a group with
//! no leader it can use (none elected, one it cannot reach, or this node a
//! leader cut off from its quorum) answers `-TRYAGAIN`, then `-CLUSTERDOWN`
//! once that has lasted `cluster_down_after`, and a group this node holds
//! no replica of is sent to its preferred primary, which knows the leader.
//! A follower serves keyed reads itself: linearizable through the leader's
//! read index, or, after READONLY, from its own state (possibly stale).
//! Only writes are redirected to the leader.
//!
//! Key positions come from the command table, the same data COMMAND gives to
//! cluster clients, so the server and its clients agree on what a key is.
//! Every redirect here is a promise that nothing was applied.

use bytes::Bytes;
use shoal_engine::slot::{key_slot, Slot};
use shoal_proto::{CommandSpec, Frame};
use shoal_raft::transport::GroupId;

use crate::shards::{Outage, Shards};

pub const CROSSSLOT: &str = "CROSSSLOT Keys in request don't hash to the same slot";

/// Where a keyed command runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub slot: Slot,
    pub group: GroupId,
    pub serve: Serve,
}

/// Which replica serves a keyed command here, and how a read is made safe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Serve {
    /// The group's leader: writes, and reads after a lease check or a
    /// ReadIndex round.
    Leader,
    /// A follower, for a read: linearizable after the leader's read index
    /// is applied here (`Replicas::read_barrier`), so a client that reads
    /// from replicas without READONLY (ioredis's `scaleReads`) is served
    /// instead of redirected.
    Follower,
    /// Any replica after READONLY: local, possibly stale, as Redis's
    /// replica reads.
    Stale,
}

impl Serve {
    /// Whether a read needs a barrier first (all but stale reads).
    pub fn needs_barrier(self) -> bool {
        self != Serve::Stale
    }
}

/// `Ok(Some(target))` for a keyed command served here, `Ok(None)` for a
/// keyless one, `Err(reply)` when it must go elsewhere. `usable(node,
/// group)` says whether this node can reach `node` and that node still
/// has the Raft identity that leads `group` here: a leader it cannot reach
/// (dead, or cut off), or one whose node has since lost its data and come
/// back as a new replica, gets no redirect, only `-TRYAGAIN`, since a
/// client would find no leader there and a new one may be elected
/// meanwhile.
pub fn route(
    shards: &Shards,
    cluster: bool,
    spec: &CommandSpec,
    args: &[Bytes],
    readonly: bool,
    usable: impl Fn(shoal_cluster::NodeNumber, GroupId) -> bool,
) -> Result<Option<Target>, Frame> {
    let mut positions = spec.keys_in(args).into_iter();
    let Some(first) = positions.next() else {
        return Ok(None);
    };
    let slot = key_slot(&args[first]);
    if cluster && positions.any(|p| key_slot(&args[p]) != slot) {
        return Err(Frame::error(CROSSSLOT));
    }
    let group = shards.group_of_slot(slot);
    if !shards.replicas().holds(group) {
        let primary = shards.layout().shard_of_slot(slot).primary();
        return Err(moved(shards, slot, primary));
    }
    let leader = shards.leader(group);
    let read = !is_write(spec);
    // After READONLY a read is served here from the local copy unless this
    // node can serve it linearizably as a leader with its quorum.
    // Only a voting replica (as the map has it): a learner may still be
    // empty, and a replica moved away is not kept up to date.
    if readonly && read && (leader != Some(shards.me()) || shards.quorum_lost(group)) && shards.votes_here(group) {
        return Ok(Some(Target { slot, group, serve: Serve::Stale }));
    }
    match leader {
        Some(leader) if leader == shards.me() && shards.quorum_lost(group) => Err(unavailable(shards, group, slot)),
        Some(leader) if leader == shards.me() => {
            shards.outage_over(group);
            Ok(Some(Target { slot, group, serve: Serve::Leader }))
        }
        Some(leader) if usable(leader, group) => {
            shards.outage_over(group);
            if read {
                Ok(Some(Target { slot, group, serve: Serve::Follower }))
            } else {
                Err(moved(shards, slot, leader))
            }
        }
        _ => Err(unavailable(shards, group, slot)),
    }
}

/// The answer for a slot whose group has no leader this node can use (none
/// elected, one it cannot reach, or itself cut off from the quorum):
/// `-TRYAGAIN` while that is recent, `-CLUSTERDOWN` once it has lasted
/// past the bound. Both promise nothing was applied.
fn unavailable(shards: &Shards, group: GroupId, slot: Slot) -> Frame {
    match shards.outage(group) {
        Outage::Brief => no_leader(slot),
        Outage::Down(ms) => {
            Frame::error(format!("CLUSTERDOWN The cluster is down: slot {slot} has had no usable leader for {ms} ms"))
        }
    }
}

pub fn is_write(spec: &CommandSpec) -> bool {
    spec.flags.contains(&"write")
}

pub fn moved(shards: &Shards, slot: Slot, node: shoal_cluster::NodeNumber) -> Frame {
    match shards.client_addr(node) {
        Some(addr) => Frame::error(format!("MOVED {slot} {addr}")),
        None => no_leader(slot),
    }
}

/// The group has no leader (an election is under way): nothing was
/// applied, retry shortly.
pub fn no_leader(slot: Slot) -> Frame {
    Frame::error(format!("TRYAGAIN slot {slot} has no leader yet, retry shortly"))
}
