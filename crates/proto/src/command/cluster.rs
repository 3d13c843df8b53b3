//! Parsing of cluster commands: CLUSTER … READONLY READWRITE ASKING, and
//! shoal's own administration under CLUSTER SHOAL.

use bytes::Bytes;

use super::{Args, Command, CommandError, GroupResult};

/// `CLUSTER SHOAL <subcommand>`: changes to the cluster's shape, each a
/// command committed to the cluster map by the metadata group. A node is
/// named by its number, its 40-hex id (CLUSTER NODES) or its client
/// address HOST:PORT; the server resolves the name against the map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShoalAdmin {
    /// MAP: the cluster map as JSON.
    Map,
    /// JOIN nonce host port peer-port: a new node registers (a retried
    /// nonce gets the same node); answered with its number and the map.
    Join { nonce: u64, host: Bytes, port: u16, peer_port: u16 },
    /// MOVE-REPLICA shard from-node to-node.
    MoveReplica { shard: u16, from: Bytes, to: Bytes },
    /// TRANSFER-LEADER shard node: the shard's preferred leader.
    TransferLeader { shard: u16, to: Bytes },
    /// REMOVE-NODE node: drains the node, then removes it from the map.
    RemoveNode(Bytes),
    /// SPLIT shard [slot]: the shard's slots from `slot` on (by default,
    /// from the slot that halves its keys) go to a new shard.
    Split { shard: u16, at: Option<u16> },
    /// MERGE left right: the right shard's slots (following the left's)
    /// and keys go to the left shard.
    Merge { left: u16, right: u16 },
    /// APPLY json: a map command relayed to the metadata group's leader
    /// by another node (internal).
    Apply(Bytes),
}

pub(super) fn parse(name: &str, mut a: Args) -> GroupResult {
    let cmd = match name {
        "cluster|slots" => Ok(Command::ClusterSlots),
        "cluster|shards" => Ok(Command::ClusterShards),
        "cluster|nodes" => Ok(Command::ClusterNodes),
        "cluster|info" => Ok(Command::ClusterInfo),
        "cluster|myid" => Ok(Command::ClusterMyId),
        "cluster|myshardid" => Ok(Command::ClusterMyShardId),
        "cluster|keyslot" => a.take().map(Command::ClusterKeySlot),
        "cluster|countkeysinslot" => slot(&mut a).map(Command::ClusterCountKeysInSlot),
        "cluster|getkeysinslot" => getkeysinslot(a),
        "cluster|shoal" => shoal(a).map(Command::ClusterShoal),
        "readonly" => Ok(Command::ReadOnly),
        "readwrite" => Ok(Command::ReadWrite),
        "asking" => Ok(Command::Asking),
        _ => return Err(a),
    };
    Ok(cmd)
}

fn slot(a: &mut Args) -> Result<u16, CommandError> {
    let n = a.next_i64()?;
    u16::try_from(n)
        .ok()
        .filter(|&s| s < shoal_engine::slot::SLOT_COUNT)
        .ok_or_else(|| CommandError("ERR Invalid slot".into()))
}

fn getkeysinslot(mut a: Args) -> Result<Command, CommandError> {
    // Redis checks both numbers, then gives one message for either.
    let invalid = || CommandError("ERR Invalid slot or number of keys".into());
    let slot = a.next_i64()?;
    let count = a.next_i64()?;
    let slot = u16::try_from(slot).ok().filter(|&s| s < shoal_engine::slot::SLOT_COUNT).ok_or_else(invalid)?;
    let count = usize::try_from(count).map_err(|_| invalid())?;
    Ok(Command::ClusterGetKeysInSlot { slot, count })
}

impl ShoalAdmin {
    /// The command's words, as a client sends them (to relay it as is).
    pub fn words(&self) -> Vec<Bytes> {
        let text = |s: &str| Bytes::copy_from_slice(s.as_bytes());
        let number = |n: u64| text(&n.to_string());
        let mut words = vec![text("CLUSTER"), text("SHOAL")];
        match self {
            ShoalAdmin::Map => words.push(text("MAP")),
            ShoalAdmin::Join { nonce, host, port, peer_port } => {
                words.extend([text("JOIN"), number(*nonce), host.clone()]);
                words.extend([number(u64::from(*port)), number(u64::from(*peer_port))]);
            }
            ShoalAdmin::MoveReplica { shard, from, to } => {
                words.extend([text("MOVE-REPLICA"), number(u64::from(*shard)), from.clone(), to.clone()])
            }
            ShoalAdmin::TransferLeader { shard, to } => {
                words.extend([text("TRANSFER-LEADER"), number(u64::from(*shard)), to.clone()])
            }
            ShoalAdmin::RemoveNode(node) => words.extend([text("REMOVE-NODE"), node.clone()]),
            ShoalAdmin::Merge { left, right } => {
                words.extend([text("MERGE"), number(u64::from(*left)), number(u64::from(*right))])
            }
            ShoalAdmin::Split { shard, at } => {
                words.extend([text("SPLIT"), number(u64::from(*shard))]);
                words.extend(at.map(|at| number(u64::from(at))));
            }
            ShoalAdmin::Apply(json) => words.extend([text("APPLY"), json.clone()]),
        }
        words
    }
}

fn shoal(mut a: Args) -> Result<ShoalAdmin, CommandError> {
    let sub = a.take()?.to_ascii_lowercase();
    let number = |a: &mut Args, what: &str| -> Result<u64, CommandError> {
        u64::try_from(a.next_i64()?).map_err(|_| CommandError(format!("ERR {what} must not be negative")))
    };
    let port = |a: &mut Args| -> Result<u16, CommandError> {
        u16::try_from(a.next_i64()?).map_err(|_| CommandError("ERR invalid port".into()))
    };
    let shard = |a: &mut Args| -> Result<u16, CommandError> {
        u16::try_from(a.next_i64()?).map_err(|_| CommandError("ERR invalid shard".into()))
    };
    let admin = match sub.as_slice() {
        b"map" => ShoalAdmin::Map,
        b"join" => {
            let nonce = number(&mut a, "the nonce")?;
            ShoalAdmin::Join { nonce, host: a.take()?, port: port(&mut a)?, peer_port: port(&mut a)? }
        }
        b"move-replica" => ShoalAdmin::MoveReplica { shard: shard(&mut a)?, from: a.take()?, to: a.take()? },
        b"transfer-leader" => ShoalAdmin::TransferLeader { shard: shard(&mut a)?, to: a.take()? },
        b"remove-node" => ShoalAdmin::RemoveNode(a.take()?),
        b"merge" => ShoalAdmin::Merge { left: shard(&mut a)?, right: shard(&mut a)? },
        b"split" => {
            let shard = shard(&mut a)?;
            let at = if a.is_empty() { None } else { Some(slot(&mut a)?) };
            ShoalAdmin::Split { shard, at }
        }
        b"apply" => ShoalAdmin::Apply(a.take()?),
        _ => {
            let sub = String::from_utf8_lossy(&sub).into_owned();
            return Err(CommandError(format!(
                "ERR unknown CLUSTER SHOAL subcommand '{sub}': try MAP, JOIN, MOVE-REPLICA, TRANSFER-LEADER, REMOVE-NODE, SPLIT or MERGE"
            )));
        }
    };
    if !a.is_empty() {
        return Err(CommandError::syntax());
    }
    Ok(admin)
}
