//! CLUSTER SHOAL: shoal's cluster administration. Every change is one
//! command committed to the cluster map by the metadata group (any node
//! takes it; `meta::submit` relays it to the metadata leader), answered
//! with a line saying what changed.

use bytes::Bytes;
use shoal_cluster::map::{Applied, ClusterMap, MetaCmd, MetaError, NodeState, Role};
use shoal_cluster::{Layout, NodeAddr, NodeNumber};
use shoal_proto::command::ShoalAdmin;
use shoal_proto::Frame;

use crate::meta::{self, ChangeError, META_GROUP};
use crate::state::Shared;

pub async fn run(shared: &Shared, admin: ShoalAdmin) -> Frame {
    match answer(shared, admin).await {
        Ok(frame) => frame,
        Err(message) => Frame::error(message),
    }
}

async fn answer(shared: &Shared, admin: ShoalAdmin) -> Result<Frame, String> {
    // A split's slot is chosen where the shard's keys are (any replica's
    // counts will do), before the command is relayed.
    let admin = match admin {
        ShoalAdmin::Split { shard, at: None } => ShoalAdmin::Split { shard, at: halving_slot(shared, shard) },
        admin => admin,
    };
    let changes = !matches!(admin, ShoalAdmin::Map | ShoalAdmin::Apply(_));
    if changes && !shared.shards.replicas().is_leader(META_GROUP) {
        // Names are resolved on the metadata leader, against the newest
        // map: this node's may not show a change just committed.
        return meta::relay(shared, &admin.words()).await.map_err(|e| e.to_string());
    }
    let map = meta::newest(shared);
    let cmd = match admin {
        ShoalAdmin::Map => return Ok(Frame::Bulk(Bytes::from(map.to_json()))),
        ShoalAdmin::Apply(json) => {
            // Relayed by another node: applied only by the metadata leader.
            // The answer carries a refusal as a value, so the relaying
            // node reports it as the map's, not as unavailability.
            let cmd: MetaCmd = serde_json::from_slice(&json).map_err(|e| format!("ERR not a map command: {e}"))?;
            let outcome: Result<Applied, MetaError> = match meta::change(shared, &cmd).await {
                Ok(applied) => Ok(applied),
                Err(ChangeError::Refused(e)) => Err(e),
                Err(e @ ChangeError::Unavailable(_)) => return Err(e.to_string()),
            };
            return Ok(Frame::Bulk(Bytes::from(serde_json::to_string(&outcome).expect("encodes"))));
        }
        ShoalAdmin::Join { nonce, host, port, peer_port } => {
            let host = String::from_utf8(host.to_vec()).map_err(|_| "ERR the host is not UTF-8".to_string())?;
            MetaCmd::AddNode { nonce, host, port, peer_port }
        }
        ShoalAdmin::MoveReplica { shard, from, to } => {
            let (from, to_node) = (node(&map, &from)?, node(&map, &to)?);
            let (replica, _) =
                map.replica_on(shard, from).ok_or(format!("ERR node {from} holds no replica of shard {shard}"))?;
            MetaCmd::StartMove { shard, from: Some(replica), to_node }
        }
        ShoalAdmin::TransferLeader { shard, to } => {
            let to = node(&map, &to)?;
            match map.replica_on(shard, to) {
                Some((replica, Role::Voter)) => MetaCmd::SetPreferredLeader { shard, replica },
                _ => return Err(format!("ERR node {to} holds no voting replica of shard {shard}")),
            }
        }
        ShoalAdmin::RemoveNode(name) => MetaCmd::SetNodeState { node: node(&map, &name)?, state: NodeState::Draining },
        ShoalAdmin::Merge { left, right } => MetaCmd::StartMerge { left, right },
        ShoalAdmin::Split { shard, at } => {
            let info = map.shards.get(&shard).ok_or(format!("ERR shard {shard} does not exist"))?;
            // No replica here to count keys: the middle slot.
            let middle = || (u32::from(*info.slots.start()) + u32::from(*info.slots.end())).div_ceil(2) as u16;
            MetaCmd::StartSplit { shard, at: at.unwrap_or_else(middle), automatic: false }
        }
    };
    let applied = meta::submit(shared, &cmd).await.map_err(error_line)?;
    if let Applied::Node(node) = applied {
        // A joining node reads its number.
        return Ok(Frame::Integer(i64::from(node)));
    }
    Ok(Frame::Bulk(Bytes::from(describe(&cmd, &applied))))
}

fn error_line(e: ChangeError) -> String {
    match e {
        ChangeError::Refused(e) => format!("ERR {e}"),
        e @ ChangeError::Unavailable(_) => e.to_string(),
    }
}

/// What a committed command changed, for the operator.
fn describe(cmd: &MetaCmd, applied: &Applied) -> String {
    match (cmd, applied) {
        (MetaCmd::StartMove { shard, from, to_node }, Applied::Move { id, to }) => {
            let from = from.map_or("nowhere".to_string(), |f| format!("node {}", shoal_cluster::map::node_of(f)));
            format!("move {id} started: shard {shard} from {from} to node {to_node} (replica {to:#x})")
        }
        (MetaCmd::SetPreferredLeader { shard, replica }, _) => {
            format!("shard {shard} is to be led by node {}", shoal_cluster::map::node_of(*replica))
        }
        (MetaCmd::StartSplit { shard, at, .. }, Applied::Split { child }) => {
            format!("shard {shard} is splitting: its slots from {at} on go to the new shard {child}")
        }
        (MetaCmd::StartMerge { left, right }, _) => {
            format!("shard {right} is merging into shard {left}: its slots and keys go there, then it is gone")
        }
        (MetaCmd::SetNodeState { node, state: NodeState::Draining }, _) => {
            format!("node {node} is draining: its replicas move away, then it leaves the cluster")
        }
        (cmd, applied) => format!("{cmd:?}: {applied:?}"),
    }
}

/// The slot that halves `shard`'s keys, by this node's replica of it.
pub fn halving_slot(shared: &Shared, shard: u16) -> Option<u16> {
    let map = shared.shards.map();
    let slots = map.shards.get(&shard)?.slots.clone();
    shared.shards.db(shoal_raft::transport::GroupId::from(shard))?.halving_slot(slots)
}

/// A node named by its number, its 40-hex id or its client address.
fn node(map: &ClusterMap, name: &[u8]) -> Result<NodeNumber, String> {
    let name = std::str::from_utf8(name).map_err(|_| "ERR a node name is UTF-8".to_string())?;
    let live = map.nodes.iter().filter(|(_, n)| n.state != NodeState::Removed);
    for (&number, info) in live {
        let addr = NodeAddr { number, host: info.host.clone(), port: info.port, peer_port: info.peer_port };
        let matches = name == number.to_string()
            || name.eq_ignore_ascii_case(&Layout::node_hex_id(&addr))
            || name == format!("{}:{}", info.host, info.port);
        if matches {
            return Ok(number);
        }
    }
    Err(format!("ERR no node '{name}' in the cluster (a number, a CLUSTER NODES id or HOST:PORT)"))
}
