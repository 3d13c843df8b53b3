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

use arc_swap::ArcSwap;
use shoal_cluster::map::{ClusterMap, ReplicaId};
use shoal_cluster::{Layout, NodeAddr, NodeNumber};
use shoal_engine::slot::Slot;
use shoal_engine::Db;
use shoal_raft::transport::{GroupId, Peers};
use shoal_raft::{GroupSpec, ReplicaConfig, Replicas};

use crate::config::Config;

/// Most opening passes of one `sync_groups` (see there).
const SYNC_PASSES: usize = 8;

/// The standalone server's node number.
const STANDALONE_NODE: NodeNumber = 1;

pub struct Shards {
    replicas: Replicas,
    /// The cluster map this node follows and its layout view, replaced
    /// whole when a newer map is applied (`set_map`); read per command.
    view: ArcSwap<View>,
    /// The transport's address book, kept equal to the map's nodes.
    peers: Peers,
    me: NodeNumber,
    /// The generation of this node's data (`shoal_raft::raft_id`).
    generation: u32,
    outages: Outages,
    /// The epoch of the map followed, for requests waiting on a newer one
    /// (`wait_for_map`).
    epoch: tokio::sync::watch::Sender<u64>,
    /// One `sync_groups` at a time (the map follower and births both run it).
    syncing: tokio::sync::Mutex<()>,
}

/// One cluster map and what routing reads of it.
pub struct View {
    pub map: Arc<ClusterMap>,
    pub layout: Arc<Layout>,
}

/// Since when each held group has been without a leader this node can use,
/// as seen by the requests routed here: a request that finds none answers
/// `-TRYAGAIN` at first and `-CLUSTERDOWN` once the outage is older than
/// `down_after`. Kept by the requests themselves (lock-free), so an outage
/// starts when the first request meets it.
struct Outages {
    epoch: Instant,
    down_after: Duration,
    /// One clock per shard of the map; grown (rarely) when a split adds a
    /// shard, read per request without a lock.
    groups: ArcSwap<HashMap<GroupId, Arc<OutageClock>>>,
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
    /// Opens the WAL and the groups this node holds: on a first start those
    /// of the bootstrap layout (initializing those it is the preferred
    /// leader of) and the metadata group; after that, what the map it last
    /// saw gives it (`sync_groups`).
    pub async fn open(config: &Config) -> Result<Shards, String> {
        let generation = crate::rejoin::generation(&config.dir)?;
        let (map, me, groups) = match &config.cluster {
            Some(cluster) => {
                let mut groups = Vec::new();
                if let Some(layout) = &cluster.bootstrap {
                    // Only the bootstrap replicas the map still gives this
                    // node: after a move the flags no longer describe the
                    // cluster, and a group opened from them under a stale
                    // identity would take the place of the moved replica.
                    let still = |shard| {
                        let first = shoal_cluster::map::replica_id(cluster.me, 0);
                        cluster.map.replica_on(shard, cluster.me).is_some_and(|(r, _)| r == first)
                    };
                    groups.extend(layout.shards.iter().filter(|s| still(s.id)).filter_map(|s| {
                        let nodes: Vec<u64> = s.replicas.iter().map(|&n| u64::from(n)).collect();
                        GroupSpec::initial(GroupId::from(s.id), &nodes, u64::from(cluster.me), generation)
                    }));
                }
                groups.push(crate::meta::group_spec(cluster, generation));
                (Arc::clone(&cluster.map), cluster.me, groups)
            }
            None => {
                let node = NodeAddr {
                    number: STANDALONE_NODE,
                    host: config.listen.ip().to_string(),
                    port: config.listen.port(),
                    peer_port: 0,
                };
                let layout = Layout::single(node);
                let groups = GroupSpec::initial(0, &[u64::from(STANDALONE_NODE)], u64::from(STANDALONE_NODE), 0);
                (Arc::new(ClusterMap::from_layout(&layout)), STANDALONE_NODE, groups.into_iter().collect())
            }
        };
        let layout = Arc::new(map.layout());
        let clock = Arc::new(shoal_raft::Clock::skewed(config.debug_clock_skew_ms));
        let replica_config = ReplicaConfig {
            dir: config.dir.clone(),
            me: u64::from(me),
            generation,
            client_addrs: client_addrs(&map),
            groups,
            timing: config.replication.timing,
            read_mode: config.replication.read_mode,
            snapshots: config.replication.snapshots,
            wal: config.replication.wal,
            // A wiped node must not vote until its peers cleared it; one
            // replica per shard has nobody to ask and nothing to protect; a
            // node under a later generation is a new identity that never
            // voted (see `rejoin`), as is a node that joined.
            quarantine_when_fresh: map.replication > 1
                && !config.unsafe_rejoin_after_data_loss
                && generation == 0
                && config.cluster.as_ref().is_some_and(|c| c.bootstrap.is_some()),
            clock: Arc::clone(&clock),
        };
        let peers = Peers::new(peer_addrs(&map), &map.cluster_id, clock);
        let replicas = Replicas::open(replica_config, peers.clone()).await?;
        let outages = Outages {
            epoch: Instant::now(),
            down_after: config.cluster_down_after,
            groups: ArcSwap::from_pointee(HashMap::new()),
        };
        outages.track(&layout);
        let epoch = tokio::sync::watch::Sender::new(map.epoch);
        let view = ArcSwap::from_pointee(View { map, layout });
        let syncing = tokio::sync::Mutex::new(());
        let shards = Shards { replicas, view, peers, me, generation, outages, epoch, syncing };
        if config.cluster.is_some() {
            shards.sync_groups().await;
        }
        Ok(shards)
    }

    /// The map this node follows now.
    pub fn map(&self) -> Arc<ClusterMap> {
        Arc::clone(&self.view.load().map)
    }

    /// Follows `map` from now on (routing, peers' addresses); the caller
    /// then has the groups opened and closed to match (`sync_groups`).
    pub fn set_map(&self, map: Arc<ClusterMap>) {
        self.peers.set_addrs(&peer_addrs(&map));
        let layout = Arc::new(map.layout());
        self.outages.track(&layout);
        let epoch = map.epoch;
        self.view.store(Arc::new(View { map, layout }));
        self.epoch.send_replace(epoch);
    }

    /// Waits (at most `timeout`) until routing sends `slot` to another
    /// group than `group`: a shard split and gave the slot away, and the
    /// map saying so has not reached this node yet. Returns the group the
    /// map now gives the slot, if it changed in time.
    pub async fn wait_for_map(&self, slot: Slot, group: GroupId, timeout: Duration) -> Option<GroupId> {
        let mut epochs = self.epoch.subscribe();
        let moved = || Some(self.group_of_slot(slot)).filter(|&g| g != group);
        let wait = epochs.wait_for(|_| moved().is_some());
        tokio::time::timeout(timeout, wait).await.ok()?.ok()?;
        moved()
    }

    /// The Raft id this node uses for `replica`, a replica of the map on
    /// it: the map's id, unless this node lost its data and came back
    /// under a later generation (`rejoin`): then one drawn from both, so
    /// that no id this node had before comes back.
    pub fn raft_id_of(&self, replica: ReplicaId) -> u64 {
        raft_id_under(replica, self.generation)
    }

    /// Opens the groups the map gives this node and not open yet and closes
    /// those it no longer gives it, deleting their data: their replicas
    /// left their groups before the map dropped them. A move's target
    /// opens empty and waits for its leader; a replica born of a split
    /// opens from what the split wrote here (`born_ready`). Errors are
    /// logged; the next call retries.
    pub async fn sync_groups(&self) {
        let _one = self.syncing.lock().await;
        let map = self.map();
        // A replica born of a split waits for its shard's replica here,
        // which this same pass may open or close: passes repeat while they
        // change something (bounded: each opens or closes a group).
        for _ in 0..SYNC_PASSES {
            let opened = self.open_given(&map).await;
            let closed = self.close_taken(&map).await;
            if !opened && !closed {
                break;
            }
        }
    }

    /// One pass of `sync_groups`' closing: every replica here the map no
    /// longer gives this node. Says whether it closed any.
    async fn close_taken(&self, map: &ClusterMap) -> bool {
        let mut closed = false;
        let held = self.replicas.group_ids().into_iter().chain(self.replicas.unopened_groups());
        for group in held.filter(|&g| g != crate::meta::META_GROUP) {
            let listed = u16::try_from(group).ok().is_some_and(|shard| map.replica_on(shard, self.me).is_some())
                || map.unborn_on(self.me).any(|(child, ..)| GroupId::from(child) == group);
            // A group newer than this map (a split applied here before its
            // map arrived) is left alone: the map will name it.
            if !listed && map.knows_shard(group) {
                tracing::info!(group, epoch = map.epoch, "closing a replica the map no longer gives this node");
                match self.replicas.close_group(group).await {
                    Ok(()) => closed = true,
                    Err(e) => tracing::error!(group, error = %e, "cannot close the replica"),
                }
            }
        }
        closed
    }

    /// One pass of `sync_groups`' opening: every replica the map gives this
    /// node that may open now. Says whether it opened any.
    async fn open_given(&self, map: &ClusterMap) -> bool {
        let mut opened = false;
        let mut mine: Vec<(GroupId, u64)> = Vec::new();
        for (&shard, info) in map.shards.iter() {
            let Some((replica, _)) = map.replica_on(shard, self.me) else { continue };
            let (group, me) = (GroupId::from(shard), self.raft_id_of(replica));
            let born_of = info.born_of.map(|parent| (parent, *info.slots.start()));
            if self.born_ready(group, me, born_of) {
                mine.push((group, me));
            }
        }
        for (child, replica, parent, at) in map.unborn_on(self.me) {
            let me = self.raft_id_of(replica);
            if self.born_ready(GroupId::from(child), me, Some((parent, at))) {
                mine.push((GroupId::from(child), me));
            }
        }
        for &(group, me) in &mine {
            let spec = GroupSpec { id: group, me, members: vec![] };
            let open = self.replicas.member_id(spec.id);
            if open.is_some_and(|id| id != spec.me) {
                // An earlier replica of the group here, moved away (the map
                // dropped it only after the group did) and not closed yet
                // when the map gave the node a new one: it goes first.
                tracing::info!(group = spec.id, epoch = map.epoch, "closing a replica that left its group");
                if let Err(e) = self.replicas.close_group(spec.id).await {
                    tracing::error!(group = spec.id, error = %e, "cannot close the replica");
                    continue;
                }
            }
            if open != Some(spec.me) {
                tracing::info!(group = spec.id, replica = %shoal_raft::ShowId(spec.me), epoch = map.epoch, "opening a replica the map gives this node");
                match self.replicas.open_group(&spec).await {
                    Ok(()) => opened = true,
                    Err(e) => tracing::error!(group = spec.id, error = %e, "cannot open the replica"),
                }
            }
        }
        opened
    }

    /// Whether this node's replica `me` of `group` may be opened now. One
    /// born of a split (`born_of`: the shard it split from and its first
    /// slot) is written here by this node's replica of that shard when it
    /// applies the split; opened before, it would start empty. So it waits
    /// while that replica still holds the slot; once the replica holds it
    /// no more without having written the new group (it installed a
    /// snapshot from past the split), or if the node holds none, it opens
    /// empty and its leader sends it a snapshot.
    fn born_ready(&self, group: GroupId, me: u64, born_of: Option<(shoal_cluster::ShardId, Slot)>) -> bool {
        born_of.is_none_or(|(parent, at)| self.replicas.may_open_born(group, me, GroupId::from(parent), at))
    }

    pub fn replicas(&self) -> &Replicas {
        &self.replicas
    }

    /// The layout view of the current map.
    pub fn layout(&self) -> Arc<Layout> {
        Arc::clone(&self.view.load().layout)
    }

    pub fn group_of_slot(&self, slot: Slot) -> GroupId {
        GroupId::from(self.view.load().layout.shard_of_slot(slot).id)
    }

    /// The group's keyspace on this node, if it holds a replica.
    pub fn db(&self, group: GroupId) -> Option<Arc<Db>> {
        self.replicas.db(group)
    }

    /// The node leading `group`, as far as this node knows.
    pub fn leader(&self, group: GroupId) -> Option<NodeNumber> {
        self.replicas.leader(group).and_then(|id| NodeNumber::try_from(shoal_raft::node_of(id)).ok())
    }

    /// Whether `group`'s leader, as this node knows it, is the identity its
    /// node has now, given the generation that node reports (`None`: not
    /// known yet, taken as current). A node that lost its data and came
    /// back under a later generation no longer has its old identities.
    pub fn leader_is_current(&self, group: GroupId, generation: Option<u32>) -> bool {
        let Some(id) = self.replicas.leader(group) else { return false };
        let Some(generation) = generation else { return true };
        let node = shoal_raft::node_of(id) as NodeNumber;
        let view = self.view.load();
        match u16::try_from(group).ok().and_then(|shard| view.map.replica_on(shard, node)) {
            Some((replica, _)) => raft_id_under(replica, generation) == id,
            // The metadata group: each node's identity is its generation's.
            None => shoal_raft::generation_of(id) == generation,
        }
    }

    /// Whether this node, under its current Raft identity, leads `group`.
    pub fn is_leader(&self, group: GroupId) -> bool {
        self.replicas.is_leader(group)
    }

    /// Whether the map has this node's replica of `group` as a voter.
    pub fn votes_here(&self, group: GroupId) -> bool {
        let shard = u16::try_from(group).ok();
        let view = self.view.load();
        shard
            .and_then(|s| view.map.replica_on(s, self.me))
            .is_some_and(|(_, role)| role == shoal_cluster::map::Role::Voter)
    }

    /// This node's number in the map.
    pub fn me(&self) -> NodeNumber {
        self.me
    }

    /// Shard groups held here, ascending (not the metadata group).
    pub fn held(&self) -> Vec<GroupId> {
        let mut held = self.replicas.group_ids();
        held.retain(|&g| g != crate::meta::META_GROUP);
        held
    }

    /// The groups this node leads with their keyspaces: what keyless
    /// commands (DBSIZE, KEYS, SCAN, FLUSHALL) cover, as a Redis Cluster
    /// master's cover its own slots.
    pub fn led(&self) -> impl Iterator<Item = (GroupId, Arc<Db>)> + '_ {
        self.held().into_iter().filter(|&g| self.is_leader(g)).filter_map(|g| Some((g, self.db(g)?)))
    }

    /// Whether this node leads `group` but has been cut off from its
    /// quorum for longer than an election timeout.
    pub fn quorum_lost(&self, group: GroupId) -> bool {
        self.replicas.quorum_lost(group)
    }

    /// Records that a request found `group` without a usable leader; says
    /// how long that has been so.
    pub fn outage(&self, group: GroupId) -> Outage {
        let groups = self.outages.groups.load();
        let Some(OutageClock { since, last }) = groups.get(&group).map(|c| &**c) else { return Outage::Brief };
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
        if let Some(OutageClock { since, .. }) = self.outages.groups.load().get(&group).map(|c| &**c) {
            // A load first: the common case (no outage) writes nothing.
            if since.load(Ordering::Relaxed) != 0 {
                since.store(0, Ordering::Relaxed);
            }
        }
    }

    /// `host:port` clients use to reach `node`.
    pub fn client_addr(&self, node: NodeNumber) -> Option<String> {
        self.view.load().map.client_addr(node)
    }

    /// Waits (bounded) until every group held here has a leader.
    pub async fn wait_for_leaders(&self, timeout: Duration) -> Result<(), String> {
        self.replicas.wait_for_leaders(timeout).await.map_err(|e| e.to_string())
    }

    pub async fn shutdown(&self) {
        self.replicas.shutdown().await;
    }
}

impl Outages {
    /// Gives every shard of `layout` a clock (kept ones keep theirs).
    fn track(&self, layout: &Layout) {
        let groups = self.groups.load();
        if layout.shards.iter().all(|s| groups.contains_key(&GroupId::from(s.id))) {
            return;
        }
        let mut grown = HashMap::clone(&groups);
        for shard in &layout.shards {
            grown.entry(GroupId::from(shard.id)).or_default();
        }
        self.groups.store(Arc::new(grown));
    }
}

/// See `Shards::raft_id_of`. Generations are at least 2^31 and sequence
/// numbers under it, so `generation ^ seq` is a generation too, distinct
/// for each of the node's replicas.
pub(crate) fn raft_id_under(replica: ReplicaId, generation: u32) -> u64 {
    let (node, seq) = (shoal_cluster::map::node_of(replica), (replica >> 32) as u32);
    if generation == 0 {
        return replica;
    }
    shoal_raft::raft_id(u64::from(node), generation ^ seq)
}

/// Every node's client address, by number (Raft membership records them).
fn client_addrs(map: &ClusterMap) -> HashMap<u64, String> {
    map.nodes.iter().map(|(&n, info)| (u64::from(n), format!("{}:{}", info.host, info.port))).collect()
}

/// Every node's peer address, by number.
fn peer_addrs(map: &ClusterMap) -> HashMap<u64, String> {
    map.nodes.iter().map(|(&n, info)| (u64::from(n), format!("{}:{}", info.host, info.peer_port))).collect()
}
