//! CLUSTER SLOTS SHARDS NODES INFO KEYSLOT COUNTKEYSINSLOT GETKEYSINSLOT MYID
//! MYSHARDID, READONLY, READWRITE, ASKING, in Redis Cluster's formats.
//!
//! A shard's master is its Raft group's current leader as this node knows
//! it (the layout's preferred primary when this node holds no replica or
//! knows no leader); its other replicas are listed as replicas, so clients
//! can send READONLY reads to them.

use bytes::Bytes;
use shoal_cluster::{Layout, NodeNumber, Shard};
use shoal_engine::slot::key_slot;
use shoal_engine::Millis;
use shoal_proto::{Command, CommandError, Frame};
use shoal_raft::transport::GroupId;

use crate::config::ClusterConfig;
use crate::state::{Session, Shared};

pub(super) fn run(shared: &Shared, session: &mut Session, cmd: Command, now: Millis) -> Result<Frame, CommandError> {
    let Some(cluster) = &shared.config.cluster else {
        return Err(CommandError("ERR This instance has cluster support disabled".into()));
    };
    let layout = shared.shards.layout();
    let layout = &*layout;
    let shard_db = |slot| shared.shards.db(shared.shards.group_of_slot(slot));
    Ok(match cmd {
        Command::ClusterSlots => {
            Frame::Array(slots_order(shared, layout).into_iter().map(|s| slots_entry(shared, layout, s)).collect())
        }
        Command::ClusterShards => {
            Frame::Array(layout.shards.iter().map(|s| shards_entry(shared, cluster, layout, s)).collect())
        }
        Command::ClusterNodes => Frame::Verbatim(*b"txt", Bytes::from(nodes_text(shared, cluster, now))),
        Command::ClusterInfo => Frame::Verbatim(*b"txt", Bytes::from(info_text(shared, cluster))),
        Command::ClusterMyId => match layout.node(cluster.me) {
            Ok(me) => Frame::Bulk(Bytes::from(Layout::node_hex_id(me))),
            Err(_) => return Err(CommandError("ERR this node is no longer in the cluster map".into())),
        },
        Command::ClusterMyShardId => {
            let mine = layout
                .shards
                .iter()
                .find(|s| master(shared, s) == cluster.me)
                .or_else(|| layout.shards_on(cluster.me).next());
            Frame::optional_bulk(mine.map(|s| Bytes::from(s.hex_id.clone())))
        }
        Command::ClusterKeySlot(key) => Frame::Integer(i64::from(key_slot(&key))),
        Command::ClusterCountKeysInSlot(slot) => {
            Frame::Integer(shard_db(slot).map_or(0, |db| db.count_in_slot(slot)) as i64)
        }
        Command::ClusterGetKeysInSlot { slot, count } => {
            Frame::bulk_array(shard_db(slot).map_or_else(Vec::new, |db| db.keys_in_slot(slot, count, now)))
        }
        Command::ReadOnly => {
            session.readonly = true;
            Frame::OK
        }
        Command::ReadWrite => {
            session.readonly = false;
            Frame::OK
        }
        // Slots never migrate, so there is no ASK state to enter.
        Command::Asking => Frame::OK,
        other => unreachable!("not a cluster command: {other:?}"),
    })
}

/// The shard's master: its group's leader as known here, else the
/// preferred primary.
fn master(shared: &Shared, shard: &Shard) -> NodeNumber {
    // A leader the layout does not know (membership changed by hand) is
    // not something clients could reach: name the preferred primary.
    shared
        .shards
        .leader(GroupId::from(shard.id))
        .filter(|&leader| shared.shards.layout().node(leader).is_ok())
        .unwrap_or(shard.primary())
}

/// Whether `number` answers: this node always; others while our dials reach them.
fn reachable(shared: &Shared, cluster: &ClusterConfig, number: NodeNumber) -> bool {
    number == cluster.me || shared.peers.is_connected(number)
}

/// The shard's replicas, its master first.
fn members(shared: &Shared, shard: &Shard) -> Vec<NodeNumber> {
    let master = master(shared, shard);
    std::iter::once(master).chain(shard.replicas.iter().copied().filter(|n| *n != master)).collect()
}

fn node_triple(layout: &Layout, number: u32) -> Frame {
    let node = layout.node(number).expect("shard replicas are layout nodes");
    Frame::Array(vec![
        Frame::Bulk(Bytes::from(node.host.clone())),
        Frame::Integer(i64::from(node.port)),
        Frame::Bulk(Bytes::from(Layout::node_hex_id(node))),
    ])
}

/// The order of CLUSTER SLOTS entries: first one shard led by each node
/// that leads any, then the rest by slot. A node leads some shards and
/// follows others, and clients such as redis-py fix a node's role where
/// they first meet it; meeting every leader first as a master keeps it in
/// their set of primaries, which their FLUSHALL and DBSIZE go to.
fn slots_order<'a>(shared: &Shared, layout: &'a Layout) -> Vec<&'a Shard> {
    let mut first: Vec<&Shard> = Vec::new();
    for node in &layout.nodes {
        if let Some(shard) = layout.shards.iter().find(|s| master(shared, s) == node.number) {
            first.push(shard);
        }
    }
    let rest = layout.shards.iter().filter(|s| !first.iter().any(|f| f.id == s.id));
    let mut order = first.clone();
    order.extend(rest);
    debug_assert_eq!(order.len(), layout.shards.len());
    order
}

/// `[start, end, [host, port, id] of the master, …replicas]`.
fn slots_entry(shared: &Shared, layout: &Layout, shard: &Shard) -> Frame {
    let mut entry =
        vec![Frame::Integer(i64::from(*shard.slots.start())), Frame::Integer(i64::from(*shard.slots.end()))];
    entry.extend(members(shared, shard).into_iter().map(|n| node_triple(layout, n)));
    Frame::Array(entry)
}

fn shards_entry(shared: &Shared, cluster: &ClusterConfig, layout: &Layout, shard: &Shard) -> Frame {
    let slots = Frame::Array(vec![
        Frame::Integer(i64::from(*shard.slots.start())),
        Frame::Integer(i64::from(*shard.slots.end())),
    ]);
    let s = |v: &str| Frame::Bulk(Bytes::from(v.to_string()));
    let group = GroupId::from(shard.id);
    let applied = shared.shards.replicas().status(group).and_then(|st| st.applied_index).unwrap_or(0);
    let nodes = members(shared, shard)
        .into_iter()
        .enumerate()
        .map(|(i, number)| {
            let node = layout.node(number).expect("shard replicas are layout nodes");
            Frame::Map(vec![
                (s("id"), s(&Layout::node_hex_id(node))),
                (s("port"), Frame::Integer(i64::from(node.port))),
                (s("ip"), s(&node.host)),
                (s("endpoint"), s(&node.host)),
                (s("role"), s(if i == 0 { "master" } else { "replica" })),
                (s("replication-offset"), Frame::Integer(i64::try_from(applied).unwrap_or(i64::MAX))),
                (s("health"), s(if reachable(shared, cluster, number) { "online" } else { "failed" })),
            ])
        })
        .collect();
    Frame::Map(vec![(s("slots"), slots), (s("nodes"), Frame::Array(nodes))])
}

/// One line per node: `<id> <ip>:<port>@<bus> <flags> - 0 <pong-ms> <epoch>
/// <link> <slot ranges…>`.
fn nodes_text(shared: &Shared, cluster: &ClusterConfig, now: Millis) -> String {
    let layout = shared.shards.layout();
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
        for shard in layout.shards.iter().filter(|s| master(shared, s) == node.number) {
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
    let map = shared.shards.map();
    let layout = shared.shards.layout();
    let up = |number: u32| reachable(shared, cluster, number);
    let reachable = layout.nodes.iter().filter(|n| up(n.number)).count();
    // A slot is served when its group has a leader reachable from here (for
    // a group held here: a leader this node knows of).
    let served = |s: &&Shard| {
        let group = GroupId::from(s.id);
        match shared.shards.replicas().holds(group) {
            true => shared.shards.leader(group).is_some_and(up),
            false => up(s.primary()),
        }
    };
    let slots_ok: u32 =
        layout.shards.iter().filter(served).map(|s| u32::from(*s.slots.end()) - u32::from(*s.slots.start()) + 1).sum();
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
        // The cluster map's epoch: it grows with every committed change.
        ("cluster_current_epoch", map.epoch.to_string()),
        ("cluster_my_epoch", map.epoch.to_string()),
        ("cluster_layout_fingerprint", layout.fingerprint().to_string()),
        ("cluster_moves_in_progress", map.moves.len().to_string()),
    ];
    fields.iter().map(|(k, v)| format!("{k}:{v}\r\n")).collect()
}
