//! CLUSTER SLOTS SHARDS NODES INFO KEYSLOT COUNTKEYSINSLOT GETKEYSINSLOT MYID
//! MYSHARDID, READONLY, READWRITE, ASKING, in Redis Cluster's formats.

use bytes::Bytes;
use shoal_cluster::{Layout, Shard};
use shoal_engine::slot::key_slot;
use shoal_engine::Millis;
use shoal_proto::{Command, CommandError, Frame};

use crate::config::ClusterConfig;
use crate::state::Shared;

pub(super) fn run(shared: &Shared, cmd: Command, now: Millis) -> Result<Frame, CommandError> {
    let Some(cluster) = &shared.config.cluster else {
        return Err(CommandError("ERR This instance has cluster support disabled".into()));
    };
    let layout = &cluster.layout;
    Ok(match cmd {
        Command::ClusterSlots => Frame::Array(layout.shards.iter().map(|s| slots_entry(layout, s)).collect()),
        Command::ClusterShards => {
            let up = |number: u32| number == cluster.me || shared.peers.is_connected(number);
            Frame::Array(layout.shards.iter().map(|s| shards_entry(layout, s, up(s.primary()))).collect())
        }
        Command::ClusterNodes => Frame::Verbatim(*b"txt", Bytes::from(nodes_text(shared, cluster, now))),
        Command::ClusterInfo => Frame::Verbatim(*b"txt", Bytes::from(info_text(shared, cluster))),
        Command::ClusterMyId => Frame::Bulk(Bytes::from(Layout::node_hex_id(cluster.my_addr()))),
        Command::ClusterMyShardId => {
            let mine = layout
                .shards
                .iter()
                .find(|s| s.primary() == cluster.me)
                .or_else(|| layout.shards_on(cluster.me).next());
            Frame::optional_bulk(mine.map(|s| Bytes::from(s.hex_id.clone())))
        }
        Command::ClusterKeySlot(key) => Frame::Integer(i64::from(key_slot(&key))),
        Command::ClusterCountKeysInSlot(slot) => Frame::Integer(shared.db.count_in_slot(slot) as i64),
        Command::ClusterGetKeysInSlot { slot, count } => Frame::bulk_array(shared.db.keys_in_slot(slot, count, now)),
        // Every shard has one replica until replication lands, so replica
        // reads change nothing yet; the commands succeed as Redis's do.
        Command::ReadOnly | Command::ReadWrite | Command::Asking => Frame::OK,
        other => unreachable!("not a cluster command: {other:?}"),
    })
}

fn node_triple(layout: &Layout, number: u32) -> Frame {
    let node = layout.node(number).expect("shard replicas are layout nodes");
    Frame::Array(vec![
        Frame::Bulk(Bytes::from(node.host.clone())),
        Frame::Integer(i64::from(node.port)),
        Frame::Bulk(Bytes::from(Layout::node_hex_id(node))),
    ])
}

/// `[start, end, [host, port, id], …replicas]`.
fn slots_entry(layout: &Layout, shard: &Shard) -> Frame {
    let mut entry =
        vec![Frame::Integer(i64::from(*shard.slots.start())), Frame::Integer(i64::from(*shard.slots.end()))];
    entry.push(node_triple(layout, shard.primary()));
    Frame::Array(entry)
}

fn shards_entry(layout: &Layout, shard: &Shard, reachable: bool) -> Frame {
    let slots = Frame::Array(vec![
        Frame::Integer(i64::from(*shard.slots.start())),
        Frame::Integer(i64::from(*shard.slots.end())),
    ]);
    let node = layout.node(shard.primary()).expect("shard replicas are layout nodes");
    let s = |v: &str| Frame::Bulk(Bytes::from(v.to_string()));
    let description = Frame::Map(vec![
        (s("id"), s(&Layout::node_hex_id(node))),
        (s("port"), Frame::Integer(i64::from(node.port))),
        (s("ip"), s(&node.host)),
        (s("endpoint"), s(&node.host)),
        (s("role"), s("master")),
        (s("replication-offset"), Frame::Integer(0)),
        (s("health"), s(if reachable { "online" } else { "failed" })),
    ]);
    Frame::Map(vec![(s("slots"), slots), (s("nodes"), Frame::Array(vec![description]))])
}

/// One line per node: `<id> <ip>:<port>@<bus> <flags> - 0 <pong-ms> <epoch>
/// <link> <slot ranges…>`.
fn nodes_text(shared: &Shared, cluster: &ClusterConfig, now: Millis) -> String {
    let layout = &cluster.layout;
    let mut out = String::new();
    for node in &layout.nodes {
        let me = node.number == cluster.me;
        let connected = me || shared.peers.is_connected(node.number);
        // `fail?` is Redis's "possibly failing" (PFAIL): unreachable from here.
        let flags = match (me, connected) {
            (true, _) => "myself,master",
            (false, true) => "master",
            (false, false) => "master,fail?",
        };
        let pong = if me { now } else { shared.peers.last_seen_ms(node.number) };
        out.push_str(&format!(
            "{} {}:{}@{} {flags} - 0 {pong} {} {}",
            Layout::node_hex_id(node),
            node.host,
            node.port,
            node.peer_port,
            node.number,
            if connected { "connected" } else { "disconnected" },
        ));
        for shard in layout.shards.iter().filter(|s| s.primary() == node.number) {
            let (start, end) = (*shard.slots.start(), *shard.slots.end());
            if start == end {
                out.push_str(&format!(" {start}"));
            } else {
                out.push_str(&format!(" {start}-{end}"));
            }
        }
        out.push('\n');
    }
    out
}

fn info_text(shared: &Shared, cluster: &ClusterConfig) -> String {
    let layout = &cluster.layout;
    let up = |number: u32| number == cluster.me || shared.peers.is_connected(number);
    let reachable = layout.nodes.iter().filter(|n| up(n.number)).count();
    // A slot is served when its shard's primary is reachable from here
    // (one replica per shard: nobody else can serve it).
    let slots_ok: u32 = layout
        .shards
        .iter()
        .filter(|s| up(s.primary()))
        .map(|s| u32::from(*s.slots.end()) - u32::from(*s.slots.start()) + 1)
        .sum();
    let slots_fail = 16384 - slots_ok;
    let state = if slots_fail == 0 { "ok" } else { "fail" };
    let fields = [
        ("cluster_state", state.to_string()),
        ("cluster_slots_assigned", "16384".into()),
        ("cluster_slots_ok", slots_ok.to_string()),
        ("cluster_slots_pfail", "0".into()),
        ("cluster_slots_fail", slots_fail.to_string()),
        ("cluster_known_nodes", layout.nodes.len().to_string()),
        ("cluster_reachable_nodes", reachable.to_string()),
        ("cluster_size", layout.nodes.len().to_string()),
        ("cluster_shards", layout.shards.len().to_string()),
        ("cluster_current_epoch", layout.nodes.len().to_string()),
        ("cluster_my_epoch", cluster.me.to_string()),
        ("cluster_layout_fingerprint", layout.fingerprint().to_string()),
    ];
    fields.iter().map(|(k, v)| format!("{k}:{v}\r\n")).collect()
}
