//! `shoal cluster nodes|shards|remove-node|move-replica|transfer-leader|split|merge`:
//! the cluster's shape and changes to it, over any node's client port
//! (`CLUSTER SHOAL …`; the node relays changes to the metadata leader).

use std::time::Duration;

use clap::Subcommand;
use shoal_cluster::map::{node_of, ClusterMap, Role};
use shoal_proto::Frame;
use shoal_server::relay;

use crate::tools::Target;

#[derive(Debug, Subcommand)]
pub enum ClusterTool {
    /// Every node: number, addresses, state, replicas held, shards it is
    /// the preferred leader of.
    Nodes {
        #[command(flatten)]
        target: Target,
    },
    /// Every shard: slots, replicas (L: learner), preferred leader, move
    /// under way.
    Shards {
        #[command(flatten)]
        target: Target,
    },
    /// Drain NODE (its replicas move to other nodes), then remove it. Works
    /// for a dead node while each of its shards keeps a majority. NODE is a
    /// number, a CLUSTER NODES id or HOST:PORT.
    RemoveNode {
        node: String,
        #[command(flatten)]
        target: Target,
    },
    /// Move SHARD's replica on node FROM to node TO.
    MoveReplica {
        shard: u16,
        from: String,
        to: String,
        #[command(flatten)]
        target: Target,
    },
    /// Make NODE (holding a voting replica) SHARD's preferred leader; it
    /// takes over once caught up.
    TransferLeader {
        shard: u16,
        node: String,
        #[command(flatten)]
        target: Target,
    },
    /// Split SHARD in two: its slots from SLOT on go to a new shard on the
    /// same nodes (by one entry in the shard's log; no data is copied over
    /// the network). Without --at, at the slot that halves its keys.
    Split {
        shard: u16,
        #[arg(long, value_name = "SLOT")]
        at: Option<u16>,
        #[command(flatten)]
        target: Target,
    },
    /// Merge shard RIGHT into shard LEFT: RIGHT's slots follow LEFT's and
    /// both have their replicas on the same nodes. RIGHT stops taking
    /// writes, its keys (at most 32 MiB) go to LEFT in one log entry, then
    /// it is gone.
    Merge {
        left: u16,
        right: u16,
        #[command(flatten)]
        target: Target,
    },
}

impl ClusterTool {
    fn target(&self) -> &Target {
        match self {
            ClusterTool::Nodes { target }
            | ClusterTool::Shards { target }
            | ClusterTool::RemoveNode { target, .. }
            | ClusterTool::MoveReplica { target, .. }
            | ClusterTool::TransferLeader { target, .. }
            | ClusterTool::Split { target, .. }
            | ClusterTool::Merge { target, .. } => target,
        }
    }
}

const TIMEOUT: Duration = Duration::from_secs(15);

pub async fn run(tool: ClusterTool) -> Result<(), String> {
    let cluster = tool.target().cluster.clone();
    let timeout = Duration::from_millis(tool.target().timeout_ms).max(TIMEOUT);
    let node = cluster.split(',').next().unwrap_or(&cluster).trim();
    // A change the map cannot take right now (a metadata election) is
    // retried until the timeout; any other answer is final.
    let change = |words: Vec<String>| async move {
        let mut all = vec!["CLUSTER".to_string(), "SHOAL".to_string()];
        all.extend(words);
        let args: Vec<&[u8]> = all.iter().map(|w| w.as_bytes()).collect();
        let deadline = std::time::Instant::now() + timeout;
        loop {
            match relay::call(node, &args, timeout).await? {
                Frame::Bulk(text) => {
                    println!("{}", String::from_utf8_lossy(&text));
                    return Ok(());
                }
                Frame::Error(e) if e.starts_with(b"TRYAGAIN") && std::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Frame::Error(e) => return Err(String::from_utf8_lossy(&e).into_owned()),
                other => return Err(format!("unexpected reply {other:?}")),
            }
        }
    };
    match tool {
        ClusterTool::Nodes { .. } => print_nodes(&fetch(node).await?),
        ClusterTool::Shards { .. } => print_shards(&fetch(node).await?),
        ClusterTool::RemoveNode { node, .. } => change(vec!["REMOVE-NODE".into(), node]).await,
        ClusterTool::MoveReplica { shard, from, to, .. } => {
            change(vec!["MOVE-REPLICA".into(), shard.to_string(), from, to]).await
        }
        ClusterTool::TransferLeader { shard, node, .. } => {
            change(vec!["TRANSFER-LEADER".into(), shard.to_string(), node]).await
        }
        ClusterTool::Merge { left, right, .. } => {
            change(vec!["MERGE".into(), left.to_string(), right.to_string()]).await
        }
        ClusterTool::Split { shard, at, .. } => {
            let mut words = vec!["SPLIT".to_string(), shard.to_string()];
            words.extend(at.map(|at| at.to_string()));
            change(words).await
        }
    }
}

async fn fetch(node: &str) -> Result<ClusterMap, String> {
    match relay::call(node, &[b"CLUSTER", b"SHOAL", b"MAP"], TIMEOUT).await? {
        Frame::Bulk(json) => std::str::from_utf8(&json).map_err(|e| e.to_string()).and_then(ClusterMap::from_json),
        Frame::Error(e) => Err(String::from_utf8_lossy(&e).into_owned()),
        other => Err(format!("unexpected reply {other:?}")),
    }
}

fn print_nodes(map: &ClusterMap) -> Result<(), String> {
    let (moves, splits, merges) = (map.moves.len(), map.splits.len(), map.merges.len());
    println!(
        "cluster {} epoch {} ({moves} moves, {splits} splits, {merges} merges under way)",
        map.cluster_id, map.epoch
    );
    println!("{:<5} {:<22} {:<6} {:<9} {:>8} {:>9}", "NODE", "ADDRESS", "PEER", "STATE", "REPLICAS", "PREFERRED");
    for (&number, info) in &map.nodes {
        let held = map.shards.values().filter(|s| s.replicas.keys().any(|&r| node_of(r) == number)).count();
        let preferred = map.shards.values().filter(|s| node_of(s.preferred_leader) == number).count();
        let addr = format!("{}:{}", info.host, info.port);
        let state = format!("{:?}", info.state).to_lowercase();
        println!("{number:<5} {addr:<22} {:<6} {state:<9} {held:>8} {preferred:>9}", info.peer_port);
    }
    Ok(())
}

fn print_shards(map: &ClusterMap) -> Result<(), String> {
    println!("{:<6} {:<12} {:<24} {:<9} CHANGE", "SHARD", "SLOTS", "REPLICAS", "PREFERRED");
    let mut in_slot_order: Vec<_> = map.shards.iter().collect();
    in_slot_order.sort_by_key(|(_, s)| *s.slots.start());
    for (&id, shard) in in_slot_order {
        let slots = format!("{}-{}", shard.slots.start(), shard.slots.end());
        let replicas: Vec<String> = shard
            .replicas
            .iter()
            .map(|(&r, role)| match role {
                Role::Voter => node_of(r).to_string(),
                Role::Learner => format!("{}(L)", node_of(r)),
            })
            .collect();
        let moving = map.moves.iter().find(|(_, m)| m.shard == id).map(|(mid, m)| {
            let from = m.from.map_or("-".to_string(), |f| node_of(f).to_string());
            format!("move #{mid}: {from} -> {}", node_of(m.to))
        });
        let splitting = map.splits.get(&id).map(|s| format!("split at {} into shard {}", s.at, s.child));
        let merging = map
            .merges
            .iter()
            .find(|(&l, m)| l == id || m.right == id)
            .map(|(l, m)| format!("merge of {} into {l}", m.right));
        let moving = moving.or(splitting).or(merging);
        println!(
            "{id:<6} {slots:<12} {:<24} {:<9} {}",
            replicas.join(","),
            node_of(shard.preferred_leader),
            moving.unwrap_or_default()
        );
    }
    Ok(())
}
