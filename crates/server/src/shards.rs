//! The shards this node holds: one Raft group per shard replica, each with
//! its own keyspace, behind `shoal_raft::Replicas` (the server never sees
//! openraft's types).
//!
//! Group ids are the layout's shard ids. A standalone server is the same
//! thing with a one-node layout: one group holding every slot, whose only
//! voter is this node, so its writes are in the WAL before they are
//! answered and a restart replays them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use shoal_cluster::{Layout, NodeAddr, NodeNumber};
use shoal_engine::slot::Slot;
use shoal_engine::Db;
use shoal_raft::transport::{GroupId, Peers};
use shoal_raft::{GroupSpec, ReplicaConfig, Replicas};

use crate::config::Config;

/// The standalone server's node number.
const STANDALONE_NODE: NodeNumber = 1;

pub struct Shards {
    replicas: Replicas,
    layout: Arc<Layout>,
    me: NodeNumber,
    /// The groups this node holds, ascending, for keyless commands.
    held: Vec<GroupId>,
    outages: Outages,
}

/// Since when each held group has been without a leader this node can use,
/// as seen by the requests routed here: a request that finds none answers
/// `-TRYAGAIN` at first and `-CLUSTERDOWN` once the outage is older than
/// `down_after`. Kept by the requests themselves (lock-free), so an outage
/// starts when the first request meets it.
struct Outages {
    epoch: Instant,
    down_after: Duration,
    groups: HashMap<GroupId, OutageClock>,
}

/// One held group's outage, in milliseconds since `Outages::epoch` + 1.
#[derive(Default)]
struct OutageClock {
    /// When it began; 0 while the group has a leader.
    since: AtomicU64,
    /// When a request last met it. An outage no request met for
    /// `down_after` is over, whether or not a request here saw the leader
    /// come back (clients may have gone to it directly).
    last: AtomicU64,
}

/// What a request for a group without a usable leader is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outage {
    /// Recent: an election is probably under way.
    Brief,
    /// Older than the bound, this many milliseconds.
    Down(u64),
}

impl Shards {
    /// Opens the WAL and every group this node holds (bootstrapping those
    /// it is the preferred leader of, on first start).
    pub async fn open(config: &Config) -> Result<Shards, String> {
        let (layout, me) = match &config.cluster {
            Some(cluster) => (Arc::clone(&cluster.layout), cluster.me),
            None => {
                let node = NodeAddr {
                    number: STANDALONE_NODE,
                    host: config.listen.ip().to_string(),
                    port: config.listen.port(),
                    peer_port: 0,
                };
                (Arc::new(Layout::single(node)), STANDALONE_NODE)
            }
        };
        let addrs = |f: fn(&NodeAddr) -> String| -> HashMap<u64, String> {
            layout.nodes.iter().map(|n| (u64::from(n.number), f(n))).collect()
        };
        let generation = crate::rejoin::generation(&config.dir)?;
        let groups: Vec<GroupSpec> = layout
            .shards
            .iter()
            .filter_map(|s| {
                let nodes: Vec<u64> = s.replicas.iter().map(|&n| u64::from(n)).collect();
                GroupSpec::initial(GroupId::from(s.id), &nodes, u64::from(me), generation)
            })
            .collect();
        let clock = Arc::new(shoal_raft::Clock::skewed(config.debug_clock_skew_ms));
        let replica_config = ReplicaConfig {
            dir: config.dir.clone(),
            me: u64::from(me),
            generation,
            client_addrs: addrs(|n| format!("{}:{}", n.host, n.port)),
            groups,
            timing: config.replication.timing,
            read_mode: config.replication.read_mode,
            snapshots: config.replication.snapshots,
            wal: config.replication.wal,
            // A wiped node must not vote until its peers cleared it; one
            // replica per shard has nobody to ask and nothing to protect; a
            // node under a later generation is a new identity that never
            // voted (see `rejoin`).
            quarantine_when_fresh: layout.shards.iter().any(|s| s.replicas.len() > 1)
                && !config.unsafe_rejoin_after_data_loss
                && generation == 0,
            clock: Arc::clone(&clock),
        };
        let peers = Peers::new(addrs(|n| format!("{}:{}", n.host, n.peer_port)), layout.fingerprint(), clock);
        let replicas = Replicas::open(replica_config, peers).await?;
        let held: Vec<GroupId> = replicas.group_ids();
        let outages = Outages {
            epoch: Instant::now(),
            down_after: config.cluster_down_after,
            groups: held.iter().map(|&g| (g, OutageClock::default())).collect(),
        };
        Ok(Shards { replicas, layout, me, held, outages })
    }

    pub fn replicas(&self) -> &Replicas {
        &self.replicas
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    pub fn group_of_slot(&self, slot: Slot) -> GroupId {
        GroupId::from(self.layout.shard_of_slot(slot).id)
    }

    /// The group's keyspace on this node, if it holds a replica.
    pub fn db(&self, group: GroupId) -> Option<Arc<Db>> {
        self.replicas.db(group)
    }

    /// The node leading `group`, as far as this node knows.
    pub fn leader(&self, group: GroupId) -> Option<NodeNumber> {
        self.replicas.leader(group).and_then(|id| NodeNumber::try_from(shoal_raft::node_of(id)).ok())
    }

    /// The generation of the Raft identity leading `group`, as this node
    /// knows it (0 when none is known).
    pub fn leader_generation(&self, group: GroupId) -> u32 {
        self.replicas.leader(group).map_or(0, shoal_raft::generation_of)
    }

    /// Whether this node, under its current Raft identity, leads `group`.
    pub fn is_leader(&self, group: GroupId) -> bool {
        self.replicas.is_leader(group)
    }

    /// This node's number in the layout.
    pub fn me(&self) -> NodeNumber {
        self.me
    }

    /// Groups held here, ascending.
    pub fn held(&self) -> &[GroupId] {
        &self.held
    }

    /// The groups this node leads with their keyspaces: what keyless
    /// commands (DBSIZE, KEYS, SCAN, FLUSHALL) cover, as a Redis Cluster
    /// master's cover its own slots.
    pub fn led(&self) -> impl Iterator<Item = (GroupId, Arc<Db>)> + '_ {
        self.held.iter().filter(|g| self.is_leader(**g)).filter_map(|&g| Some((g, self.db(g)?)))
    }

    /// Whether this node leads `group` but has been cut off from its
    /// quorum for longer than an election timeout.
    pub fn quorum_lost(&self, group: GroupId) -> bool {
        self.replicas.quorum_lost(group)
    }

    /// Records that a request found `group` without a usable leader; says
    /// how long that has been so.
    pub fn outage(&self, group: GroupId) -> Outage {
        let Some(OutageClock { since, last }) = self.outages.groups.get(&group) else { return Outage::Brief };
        let now = self.outages.epoch.elapsed().as_millis() as u64 + 1;
        let bound = self.outages.down_after.as_millis() as u64;
        if now.saturating_sub(last.swap(now, Ordering::Relaxed)) > bound {
            // Nobody met this group's outage for a while: a new one.
            since.store(0, Ordering::Relaxed);
        }
        let began = match since.compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => now,
            Err(began) => began,
        };
        let lasted = now.saturating_sub(began);
        if lasted >= bound {
            Outage::Down(lasted)
        } else {
            Outage::Brief
        }
    }

    /// Records that `group` has a usable leader again.
    pub fn outage_over(&self, group: GroupId) {
        if let Some(OutageClock { since, .. }) = self.outages.groups.get(&group) {
            // A load first: the common case (no outage) writes nothing.
            if since.load(Ordering::Relaxed) != 0 {
                since.store(0, Ordering::Relaxed);
            }
        }
    }

    /// `host:port` clients use to reach `node`.
    pub fn client_addr(&self, node: NodeNumber) -> Option<String> {
        self.layout.node(node).ok().map(|n| format!("{}:{}", n.host, n.port))
    }

    /// Waits (bounded) until every group held here has a leader.
    pub async fn wait_for_leaders(&self, timeout: Duration) -> Result<(), String> {
        self.replicas.wait_for_leaders(timeout).await.map_err(|e| e.to_string())
    }

    pub async fn shutdown(&self) {
        self.replicas.shutdown().await;
    }
}
