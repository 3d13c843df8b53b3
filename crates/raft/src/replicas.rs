//! `Replicas`: everything one node runs for replication, behind an API the
//! server can use without seeing openraft's types.
//!
//! A node opens one WAL, then one Raft group for every shard it holds a
//! replica of (each with its own keyspace and snapshot directory), all
//! talking to peers over one [`transport`](crate::transport) connection per
//! peer. The first member of a group bootstraps it the first time, so leaders
//! start where the layout prefers them.
//!
//! Outcomes are typed for the reply a Redis client needs: a write that was
//! never appended ([`ReplicaError::NotLeader`]) is safe to redirect; one
//! whose fate is unknown ([`ReplicaError::Uncertain`]) must be reported as
//! such, never as "not applied".

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use openraft::async_runtime::WatchReceiver;
use openraft::error::{ClientWriteError, LinearizableReadError, RPCError, RaftError};
use openraft::{ChangeMembers, Instant as _, ReadPolicy, ServerState};
use shoal_engine::{Db, Millis, WriteOp};
use shoal_wal::{Wal, WalOptions};
use tokio::net::TcpStream;

use crate::transport::{serve_connection, GroupId, Groups, NetworkFactory, Quarantine, Request, Response, Transport};
use crate::{Clock, LogStore, Proposal, Reply, ShoalNode, ShoalRaft, StateMachine, TypeConfig, WriteTag};

/// One group this node holds a replica of.
#[derive(Debug, Clone)]
pub struct GroupSpec {
    pub id: GroupId,
    /// This node's Raft id in the group (`crate::raft_id`; never one a
    /// replica of the group had before).
    pub me: u64,
    /// The Raft ids the group starts with, the preferred leader first, who
    /// initializes the group if it never was. Empty for a replica added to
    /// a running group: it waits for its leader's log or snapshot.
    pub members: Vec<u64>,
}

impl GroupSpec {
    /// A group of the bootstrap layout on node `me` (under `generation`),
    /// if the layout gives `me` a replica of it; `nodes` are the node
    /// numbers holding one, the preferred leader first. Bootstrap replicas
    /// are the nodes' first identities.
    pub fn initial(id: GroupId, nodes: &[u64], me: u64, generation: u32) -> Option<GroupSpec> {
        let members = nodes.iter().map(|&n| crate::raft_id(n, 0)).collect();
        nodes.contains(&me).then(|| GroupSpec { id, me: crate::raft_id(me, generation), members })
    }
}

/// Raft timing, in milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub heartbeat_interval_ms: u64,
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    /// A group idle this long goes quiet (`crate::hibernate`; 0: never).
    pub hibernate_after_ms: u64,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            heartbeat_interval_ms: 50,
            election_timeout_min_ms: 200,
            election_timeout_max_ms: 400,
            hibernate_after_ms: 2000,
        }
    }
}

/// How often `Replicas::hibernate_tick` should run: a leader waits two of
/// these beyond an election timeout before it sleeps, so that its
/// followers, checked as often, are asleep first.
pub const HIBERNATE_CHECK: Duration = Duration::from_millis(200);

/// When a group snapshots its keyspace and how much log it keeps behind the
/// snapshot (for followers that are only a little behind).
#[derive(Debug, Clone, Copy)]
pub struct Snapshots {
    /// Entries applied since the last snapshot that trigger the next.
    pub every_entries: u64,
    /// Entries kept in the log behind a snapshot; a follower further
    /// behind receives the snapshot instead.
    pub keep_entries: u64,
    /// WAL segments on disk past which the groups keeping the oldest one
    /// are compacted (`Replicas::compact_wal`).
    pub wal_max_segments: usize,
    /// Bytes of log entries since its last snapshot a group holds in
    /// memory past which it snapshots (and then purges) before
    /// `every_entries`: entries of large writes would otherwise keep tens
    /// of MB resident (`Replicas::compact_logs`).
    pub max_log_bytes: u64,
}

impl Default for Snapshots {
    fn default() -> Self {
        Snapshots { every_entries: 5000, keep_entries: 1000, wal_max_segments: 4, max_log_bytes: 8 << 20 }
    }
}

/// Entries since the last snapshot below which a group over
/// `max_log_bytes` does not snapshot yet (a few huge entries are not worth
/// a dump of the whole keyspace each).
const MIN_ENTRIES_BETWEEN_SNAPSHOTS: u64 = 64;

/// How a leader makes a read linearizable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadMode {
    /// Serve locally while the leader's lease holds: a quorum acknowledged
    /// a heartbeat this leader sent less than `election_timeout_min_ms`
    /// ago, and every follower that acknowledged it refuses to elect
    /// anyone else for `election_timeout_max_ms` after receiving it. Safe
    /// while clocks on different machines run at rates within the margin
    /// (max − min; 50% with the defaults). Falls back to ReadIndex when the
    /// lease has lapsed.
    #[default]
    Lease,
    /// Confirm leadership with a quorum round for every read batch.
    ReadIndex,
}

#[derive(Debug, Clone)]
pub struct ReplicaConfig {
    pub dir: PathBuf,
    /// This node's number (the layout's).
    pub me: u64,
    /// The generation of this node's data (`crate::raft_id`): 0 unless the
    /// node lost its data and came back as a new replica. A node at a
    /// later generation never bootstraps a group: it waits to be added.
    pub generation: u32,
    /// Every node's client address, recorded in membership so a redirect
    /// can name the leader.
    pub client_addrs: HashMap<u64, String>,
    /// The groups this node holds, all opened (`Replicas::open_group` adds
    /// more later).
    pub groups: Vec<GroupSpec>,
    pub timing: Timing,
    pub read_mode: ReadMode,
    pub snapshots: Snapshots,
    pub wal: WalOptions,
    /// Whether a node that opens with an empty WAL starts in quarantine
    /// (see `transport::Quarantine`) until `Replicas::end_quarantine`.
    pub quarantine_when_fresh: bool,
    /// The node's clock, shared with its transport (`transport::Peers::new`).
    pub clock: Arc<Clock>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplicaError {
    /// Not applied and never will be: retry at `leader` (`None`: no leader
    /// known yet).
    #[error("not the leader (leader: {leader:?})")]
    NotLeader { leader: Option<u64> },
    /// The write may or may not have been applied.
    #[error("outcome unknown: {0}")]
    Uncertain(String),
    /// No quorum to confirm leadership (reads) or the group is stopped.
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error("group {0} is not held by this node")]
    NoSuchGroup(GroupId),
    /// Not proposed: a write of this many bytes is over `MAX_WRITE_BYTES`.
    #[error("a write of {0} bytes is over the {max}-byte limit of one log entry", max = crate::MAX_WRITE_BYTES)]
    TooLarge(usize),
}

/// `Replica::leader` when no leader is known.
const NO_LEADER: u64 = u64::MAX;

struct Replica {
    /// This node's Raft id in the group.
    me: u64,
    raft: ShoalRaft,
    db: Arc<Db>,
    /// The leader and voter count as of the last server-metrics change,
    /// kept in atomics by a watcher task: routing reads them on every
    /// command, and a relaxed load of a rarely written word costs nothing,
    /// where borrowing openraft's watch takes a lock shared by all threads.
    leader: Arc<AtomicU64>,
    voters: Arc<AtomicUsize>,
    /// Set when this node starts a leadership transfer, cleared when the
    /// leader changes: a transfer lets the target be elected before the
    /// lease would have run out, so lease reads must stop at once.
    transferring: Arc<AtomicBool>,
    /// The last term this node led the group in and moved its clock for; a
    /// leader serves only once it is the current term.
    elected: Arc<Elected>,
    /// Until when (ms since `Replicas::epoch`) the last quorum
    /// acknowledgement seen keeps this leader from counting as cut off:
    /// lets `quorum_lost`, asked on every routed command, skip openraft's
    /// metrics watch (a lock shared by all threads) almost every time.
    quorum_fresh_until_ms: AtomicU64,
    /// The shard's slots as applied here (`state_machine::pack`).
    slots: Arc<AtomicU32>,
    sleep: crate::hibernate::Sleep,
    /// A handle on the group's state machine (it shares its state).
    sm: StateMachine,
    /// A view of the group's log store (it shares its entries).
    log: LogStore,
}

/// Several writes to one group handed to its Raft in one message (in
/// order); `next` gives their outcomes in that order.
pub struct PendingBatch {
    results: Result<futures_util::stream::BoxStream<'static, ClientWriteOutcome>, ReplicaError>,
    /// The group's slots here (see `next`).
    slots: Option<Arc<AtomicU32>>,
}

type ClientWriteOutcome =
    Result<openraft::raft::WriteResult<crate::TypeConfig>, openraft::error::Fatal<crate::TypeConfig>>;

impl PendingBatch {
    /// The next write's result, in submission order.
    pub async fn next(&mut self) -> Result<Reply, ReplicaError> {
        use futures_util::StreamExt;
        let stream = self.results.as_mut().map_err(|e| e.clone())?;
        let failed = match stream.next().await {
            Some(Ok(Ok(response))) => return Ok(response.response),
            Some(Ok(Err(ClientWriteError::ForwardToLeader(f)))) => {
                return Err(ReplicaError::NotLeader { leader: f.leader_id })
            }
            Some(Ok(Err(e))) => e.to_string(),
            Some(Err(e)) => e.to_string(),
            None => "the group stopped before answering".into(),
        };
        // A group that stopped sealed (merged away) had answered every
        // write before its seal, applied in log order; one still
        // unanswered came after it, where every write is refused.
        let sealed = self.slots.as_ref().is_some_and(|s| s.load(Ordering::SeqCst) == crate::state_machine::SEALED);
        match sealed {
            true => Ok(Reply::NotOwned),
            false => Err(ReplicaError::Uncertain(failed)),
        }
    }
}

/// One group's replication state on this node, for INFO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupStatus {
    pub role: Role,
    pub leader: Option<u64>,
    pub term: u64,
    pub last_log_index: Option<u64>,
    pub committed_index: Option<u64>,
    pub applied_index: Option<u64>,
    /// The last entry in the latest snapshot, and the last entry removed
    /// from the log behind it.
    pub snapshot_index: Option<u64>,
    pub purged_index: Option<u64>,
    /// Keys in the group's keyspace here (expired ones not yet purged
    /// included).
    pub keys: usize,
    /// On a leader: each other member and how many entries it lags.
    pub followers: Vec<(u64, u64)>,
    /// The group's membership as this node knows it (Raft ids).
    pub voters: Vec<u64>,
    pub learners: Vec<u64>,
    /// Idle and quiet here (`crate::hibernate`).
    pub asleep: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Leader,
    Follower,
    Candidate,
    Learner,
    Stopped,
}

/// The node's replicas. Dropping it does not stop Raft: call `shutdown`.
pub struct Replicas {
    /// This node's Raft id.
    me: u64,
    /// Every node's client address (by node number), for the membership.
    client_addrs: HashMap<u64, String>,
    read_mode: ReadMode,
    /// See `Snapshots::wal_max_segments`.
    wal_max_segments: usize,
    /// See `Snapshots::max_log_bytes`.
    max_log_bytes: u64,
    /// How long after a quorum-acknowledged heartbeat was sent a leader
    /// may serve reads locally (`ReadMode::Lease`).
    lease: Duration,
    /// A leader that has not heard from a quorum for this long (the longest
    /// election timeout) has probably been deposed or cut off.
    quorum_timeout: Duration,
    /// The origin of `Replica::quorum_fresh_until_ms`.
    epoch: std::time::Instant,
    wal: Arc<Wal>,
    wal_dir: PathBuf,
    /// The groups held here. Replaced whole (rarely) by `open_group` and
    /// `close_group`, read on every command without a lock.
    replicas: ArcSwap<BTreeMap<GroupId, Arc<Replica>>>,
    /// Held while the table is being changed: one change at a time.
    changing: tokio::sync::Mutex<()>,
    /// What the WAL held at open for groups not opened yet (a replica
    /// opened after start, or one to drop).
    recovered: std::sync::Mutex<HashMap<GroupId, shoal_wal::recover::GroupState>>,
    /// What opening a group needs.
    opener: Opener,
    groups: Groups,
    /// The WAL was empty when this node opened.
    fresh: bool,
    quarantine: Quarantine,
    /// Asks a group's leader for a read index (`transport::Request::ReadIndex`).
    read_index: ReadIndexCall,
    clock: Arc<Clock>,
    /// Where splits applied here write their new groups.
    births: Arc<crate::births::Births>,
    /// When idle groups go quiet (`crate::hibernate`).
    quiet: crate::hibernate::Quiet,
}

/// The slots a shard's replica holds, as applied here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotsHeld {
    /// Never split: whatever the cluster map gives the shard.
    Unsplit,
    Range(std::ops::RangeInclusive<u16>),
    /// None: sealed for a merge into the shard on its left.
    Sealed,
}

/// Opens a group's Raft over the node's transport (boxed: `Replicas` is
/// not generic over its transport).
type NewRaft = Arc<
    dyn Fn(u64, GroupId, LogStore, StateMachine) -> futures_util::future::BoxFuture<'static, Result<ShoalRaft, String>>
        + Send
        + Sync,
>;

struct Opener {
    dir: PathBuf,
    new_raft: NewRaft,
}

use crate::state_machine::REPLICA_ID_FILE;

/// One `Request::ReadIndex` to `(leader, group)` over the node's transport
/// (boxed: `Replicas` is not generic over its transport).
type ReadIndexCall = Arc<
    dyn Fn(u64, GroupId) -> futures_util::future::BoxFuture<'static, Result<Response, RPCError<TypeConfig>>>
        + Send
        + Sync,
>;

impl Replicas {
    /// Opens the WAL and every group this node holds, talking to peers over
    /// `transport` (`transport::Peers` for TCP), and bootstraps the groups
    /// this node is the preferred leader of.
    pub async fn open<T: Transport>(config: ReplicaConfig, transport: T) -> Result<Replicas, String> {
        let wal_dir = config.dir.join("wal");
        let (wal, recovered) =
            Wal::open(&wal_dir, config.wal).map_err(|e| format!("WAL in {}: {e}", wal_dir.display()))?;
        let wal = Arc::new(wal);
        let raft_config = crate::settings::raft_config(&config.timing, &config.snapshots)?;
        // Fresh: the WAL held nothing (a non-empty WAL always holds at least
        // every group's vote, even after rotation).
        let fresh = recovered.records == 0;
        let quarantine = Quarantine::default();
        quarantine.set(fresh && config.quarantine_when_fresh);
        let me = crate::raft_id(config.me, config.generation);
        let mut groups = Groups::default();
        groups.set_quarantine(quarantine.clone());
        let lease = Duration::from_millis(config.timing.election_timeout_min_ms);
        config.clock.set_lease(lease);
        groups.set_clock(Arc::clone(&config.clock));
        groups.refuse_votes_until(
            std::time::Instant::now() + Duration::from_millis(config.timing.election_timeout_max_ms),
        );
        let quorum_timeout = Duration::from_millis(config.timing.election_timeout_max_ms);
        let network_transport = transport.clone();
        let network_quarantine = quarantine.clone();
        let new_raft: NewRaft = Arc::new(move |me, group, log, sm| {
            let network =
                NetworkFactory { group, transport: network_transport.clone(), quarantine: network_quarantine.clone() };
            let raft_config = Arc::clone(&raft_config);
            Box::pin(async move {
                ShoalRaft::new(me, raft_config, network, log, sm).await.map_err(|e| format!("group {group}: {e}"))
            })
        });
        let read_index: ReadIndexCall = Arc::new(move |leader, group| {
            let transport = transport.clone();
            Box::pin(async move { transport.call(leader, group, Request::ReadIndex, quorum_timeout).await })
        });
        let replicas = Replicas {
            me,
            client_addrs: config.client_addrs,
            read_mode: config.read_mode,
            wal_max_segments: config.snapshots.wal_max_segments,
            max_log_bytes: config.snapshots.max_log_bytes,
            lease,
            quorum_timeout,
            epoch: std::time::Instant::now(),
            wal,
            wal_dir,
            replicas: ArcSwap::from_pointee(BTreeMap::new()),
            changing: tokio::sync::Mutex::new(()),
            recovered: std::sync::Mutex::new(recovered.groups),
            opener: Opener { dir: config.dir.clone(), new_raft },
            groups,
            fresh,
            quarantine,
            read_index,
            births: Arc::new(crate::births::Births::new(config.dir.clone())),
            quiet: crate::hibernate::Quiet {
                after_ms: config.timing.hibernate_after_ms,
                margin_ms: config.timing.election_timeout_max_ms + 2 * HIBERNATE_CHECK.as_millis() as u64,
            },
            clock: config.clock,
        };
        for spec in &config.groups {
            replicas.open_group(spec).await?;
        }
        Ok(replicas)
    }

    /// Opens this node's replica of a group (see `GroupSpec`) and starts
    /// serving it; the first member initializes a group that never was.
    /// State on disk that another replica of the group left here (moved
    /// away earlier) is dropped first. Opening a group already open under
    /// the same id does nothing.
    pub async fn open_group(&self, spec: &GroupSpec) -> Result<(), String> {
        let _changing = self.changing.lock().await;
        match self.replicas.load().get(&spec.id) {
            Some(open) if open.me == spec.me => return Ok(()),
            Some(open) => {
                return Err(format!(
                    "group {} is open here as raft id {}, not {}",
                    spec.id,
                    crate::ShowId(open.me),
                    crate::ShowId(spec.me)
                ))
            }
            None => {}
        }
        let sm_dir = self.group_dir(spec.id);
        let owner =
            std::fs::read_to_string(sm_dir.join(REPLICA_ID_FILE)).ok().and_then(|s| s.trim().parse::<u64>().ok());
        let left_by_other = match owner {
            Some(owner) => owner != spec.me,
            // No owner named: a directory from before owners were written
            // is this replica's (adopted); WAL state without a directory is
            // a half-finished drop.
            None => !sm_dir.exists() && self.recovered.lock().expect("recovered lock").contains_key(&spec.id),
        };
        if left_by_other {
            tracing::info!(group = spec.id, "dropping the state an earlier replica of the group left here");
            self.drop_state(spec.id).await?;
        }
        crate::births::create_group_dir(&sm_dir).map_err(|e| format!("{}: {e}", sm_dir.display()))?;
        crate::state_machine::write_atomically(&sm_dir, REPLICA_ID_FILE, &[spec.me.to_string().as_bytes()])
            .map_err(|e| format!("{}: {e}", sm_dir.display()))?;
        let state = self.recovered.lock().expect("recovered lock").remove(&spec.id).unwrap_or_default();
        let log = LogStore::open(Arc::clone(&self.wal), spec.id, &state).map_err(|e| e.to_string())?;
        let log_view = log.clone();
        let db = Arc::new(Db::new());
        let sm = StateMachine::open(Arc::clone(&db), &sm_dir)
            .map_err(|e| format!("snapshot in {}: {e}", sm_dir.display()))?
            .after_log(Arc::clone(&self.wal))
            .owned_by(spec.me)
            .with_births(Arc::clone(&self.births));
        let slots = sm.slots();
        let sm_handle = sm.clone();
        let raft = (self.opener.new_raft)(spec.me, spec.id, log, sm).await?;
        if spec.members.first() == Some(&spec.me) && !raft.is_initialized().await.map_err(|e| e.to_string())? {
            let members: BTreeMap<u64, ShoalNode> =
                spec.members.iter().map(|&m| (m, node_info(&self.client_addrs, crate::node_of(m)))).collect();
            raft.initialize(members).await.map_err(|e| format!("group {}: {e}", spec.id))?;
        }
        let (leader, voters) = (Arc::new(AtomicU64::new(NO_LEADER)), Arc::new(AtomicUsize::new(0)));
        let transferring = Arc::new(AtomicBool::new(false));
        let elected = Arc::new(Elected { group: spec.id, term: AtomicU64::new(0), clock: Arc::clone(&self.clock) });
        let cache = LeaderCache {
            leader: Arc::clone(&leader),
            voters: Arc::clone(&voters),
            transferring: Arc::clone(&transferring),
            me: spec.me,
            elected: Arc::clone(&elected),
        };
        tokio::spawn(watch_leader(raft.clone(), cache));
        self.groups.insert_member(spec.id, raft.clone(), spec.me);
        let replica = Replica {
            me: spec.me,
            raft,
            db,
            leader,
            voters,
            transferring,
            quorum_fresh_until_ms: AtomicU64::new(0),
            elected,
            slots,
            sleep: Default::default(),
            sm: sm_handle,
            log: log_view,
        };
        let mut table = BTreeMap::clone(&self.replicas.load());
        table.insert(spec.id, Arc::new(replica));
        self.replicas.store(Arc::new(table));
        Ok(())
    }

    /// Stops this node's replica of `group` and deletes what it stored: for
    /// a replica no longer in the group (moved away). Also drops the state
    /// of a group that is not open (left by a replica moved away before a
    /// crash). The WAL forgets the group (a durable `Drop` record) before
    /// its directory goes, so a crash between the two leaves state that
    /// `open_group` knows to drop.
    pub async fn close_group(&self, group: GroupId) -> Result<(), String> {
        let _changing = self.changing.lock().await;
        let mut table = BTreeMap::clone(&self.replicas.load());
        if let Some(replica) = table.remove(&group) {
            self.replicas.store(Arc::new(table));
            self.groups.remove(group);
            let _ = replica.raft.shutdown().await;
        }
        self.drop_state(group).await
    }

    /// Groups with state on disk here that are not open: what a node must
    /// either open (it holds them) or close (it does not).
    pub fn unopened_groups(&self) -> Vec<GroupId> {
        let open = self.replicas.load();
        let mut found: BTreeSet<GroupId> = self.recovered.lock().expect("recovered lock").keys().copied().collect();
        if let Ok(entries) = std::fs::read_dir(&self.opener.dir) {
            let dirs =
                entries.filter_map(|e| e.ok()?.file_name().to_str()?.strip_prefix("group-")?.parse::<GroupId>().ok());
            found.extend(dirs);
        }
        found.into_iter().filter(|g| !open.contains_key(g)).collect()
    }

    fn group_dir(&self, group: GroupId) -> PathBuf {
        crate::births::group_dir(&self.opener.dir, group)
    }

    /// Changes each time a split applied here writes a new group to disk:
    /// the server then opens it (if the cluster map gives it this node).
    pub fn births(&self) -> tokio::sync::watch::Receiver<u64> {
        self.births.watch()
    }

    /// Whether this node's replica `me` of `group`, born of a split of
    /// `parent` at slot `at`, may be opened now: it is open already, or
    /// this node's replica of `parent` wrote it when it applied the split,
    /// or that replica no longer holds `at` without having written it (it
    /// installed a snapshot from past the split: the new group's leader
    /// will send one too), or the node holds no replica of `parent`. Not
    /// while `parent`'s replica here still holds `at`: opened before the
    /// split writes it, the new replica would start empty.
    ///
    /// A replica of `parent` with state here that is not open yet (a
    /// restart opening groups in turn) counts as still holding `at`. Never
    /// blocks: while a split is being applied here, the answer is "not
    /// yet" (the split's end signals `births` and the caller asks again).
    pub fn may_open_born(&self, group: GroupId, me: u64, parent: GroupId, at: u16) -> bool {
        let Some(_applying) = self.births.try_lock() else { return false };
        if self.member_id(group) == Some(me) {
            return true;
        }
        let file = self.group_dir(group).join(REPLICA_ID_FILE);
        if std::fs::read_to_string(file).is_ok_and(|id| id.trim() == me.to_string()) {
            return true;
        }
        if !self.holds(parent) {
            let state_here =
                self.group_dir(parent).exists() || self.recovered.lock().expect("recovered lock").contains_key(&parent);
            return !state_here;
        }
        !self.owns(parent, at)
    }

    /// Whether this node's replica of `group` holds `slot` as applied here
    /// (false once a split gave it away). Checked around keyed reads: a
    /// read between two `true`s saw every key of the slot.
    pub fn owns(&self, group: GroupId, slot: u16) -> bool {
        let table = self.replicas.load();
        table.get(&group).is_some_and(|r| crate::state_machine::holds(r.slots.load(Ordering::SeqCst), slot))
    }

    /// A sealed group's client sessions as applied here, encoded (for the
    /// merge that carries them to its left neighbour); `None` unless the
    /// group is held here and sealed (its sessions then change no more).
    pub async fn sealed_sessions(&self, group: GroupId) -> Option<Vec<u8>> {
        let replica = self.replica(group)?;
        if replica.slots.load(Ordering::SeqCst) != crate::state_machine::SEALED {
            return None;
        }
        Some(replica.sm.encoded_sessions().await)
    }

    /// The slots this node's replica of `group` holds, as applied here.
    pub fn slots(&self, group: GroupId) -> Option<SlotsHeld> {
        let packed = self.replica(group)?.slots.load(Ordering::SeqCst);
        Some(match packed {
            crate::state_machine::ALL_SLOTS => SlotsHeld::Unsplit,
            crate::state_machine::SEALED => SlotsHeld::Sealed,
            p => SlotsHeld::Range((p >> 16) as u16..=p as u16),
        })
    }

    /// On the group's leader: proposes a change of the shard itself (a
    /// split, a seal, a merge: `crate::Cmd`) and waits until it is applied
    /// here. `Reply::Done` when it changed, an error reply when the shard's
    /// slots were not the ones named (a retry of a change already applied,
    /// or a stale one).
    pub async fn reshape(&self, group: GroupId, cmd: crate::Cmd, now: Millis) -> Result<Reply, ReplicaError> {
        let replica = self.replica(group).ok_or(ReplicaError::NoSuchGroup(group))?;
        self.touch(&replica);
        let now = now.max(self.clock.now_ms());
        let proposal = Proposal { cmd, now_ms: now, tag: None };
        if proposal.cmd.len() > crate::MAX_WRITE_BYTES {
            return Err(ReplicaError::TooLarge(proposal.cmd.len()));
        }
        match replica.raft.client_write(proposal).await {
            Ok(response) => Ok(response.response().clone()),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                Err(ReplicaError::NotLeader { leader: f.leader_id })
            }
            Err(e) => Err(ReplicaError::Uncertain(e.to_string())),
        }
    }

    /// Forgets a group that is not open: a durable WAL `Drop`, then its
    /// directory.
    async fn drop_state(&self, group: GroupId) -> Result<(), String> {
        self.recovered.lock().expect("recovered lock").remove(&group);
        crate::log_store::durable_on(&self.wal, vec![shoal_wal::Record::Drop { group }])
            .await
            .map_err(|e| format!("group {group}: dropping it from the WAL: {e}"))?;
        let dir = self.group_dir(group);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!("{}: {e}", dir.display())),
        }
    }

    /// The node's clock: the time reads and new writes must use (never
    /// behind a time another node used; see `crate::clock`).
    pub fn clock(&self) -> &Arc<Clock> {
        &self.clock
    }

    /// Whether the WAL was empty when this node opened (a first start, or a
    /// data directory that was wiped).
    pub fn opened_fresh(&self) -> bool {
        self.fresh
    }

    /// Whether this node holds anything durable: it opened with data, or
    /// has appended to its WAL since.
    pub fn holds_data(&self) -> bool {
        !self.fresh || self.wal.stats().appends.load(Ordering::Relaxed) > 0
    }

    pub fn in_quarantine(&self) -> bool {
        self.quarantine.is_on()
    }

    /// Lets this node vote and campaign again.
    pub fn end_quarantine(&self) {
        self.quarantine.set(false);
    }

    /// The groups held here, by id: what a transport's receiving side hands
    /// requests to.
    pub fn groups(&self) -> Groups {
        self.groups.clone()
    }

    /// Serves a peer connection (after the peer port's preamble).
    pub async fn serve_peer(&self, stream: TcpStream) {
        serve_connection(stream, self.groups.clone()).await;
    }

    /// Notified each time the group applies entries here (blocked pops
    /// wait on it).
    pub fn applied(&self, group: GroupId) -> Option<Arc<tokio::sync::Notify>> {
        self.replicas.load().get(&group).map(|r| r.sm.applied())
    }

    /// The group's keyspace on this node (reads; may lag on a follower).
    pub fn db(&self, group: GroupId) -> Option<Arc<Db>> {
        self.replicas.load().get(&group).map(|r| Arc::clone(&r.db))
    }

    /// The groups open here, ascending.
    pub fn group_ids(&self) -> Vec<GroupId> {
        self.replicas.load().keys().copied().collect()
    }

    /// This node's Raft id in the groups of the bootstrap layout
    /// (`crate::raft_id`).
    pub fn me(&self) -> u64 {
        self.me
    }

    /// This node's Raft id in `group`, if it holds a replica.
    pub fn member_id(&self, group: GroupId) -> Option<u64> {
        self.replicas.load().get(&group).map(|r| r.me)
    }

    fn replica(&self, group: GroupId) -> Option<Arc<Replica>> {
        self.replicas.load().get(&group).cloned()
    }

    /// The generation of this node's data (`crate::raft_id`).
    pub fn generation(&self) -> u32 {
        crate::generation_of(self.me)
    }

    pub fn holds(&self, group: GroupId) -> bool {
        self.replicas.load().contains_key(&group)
    }

    /// The group's current leader as this node knows it.
    pub fn leader(&self, group: GroupId) -> Option<u64> {
        let leader = self.replicas.load().get(&group)?.leader.load(Ordering::Relaxed);
        (leader != NO_LEADER).then_some(leader)
    }

    pub fn is_leader(&self, group: GroupId) -> bool {
        let table = self.replicas.load();
        table.get(&group).is_some_and(|r| r.leader.load(Ordering::Relaxed) == r.me)
    }

    /// Whether this node leads `group` but no quorum has acknowledged it for
    /// longer than an election timeout: it is cut off from the majority (or
    /// already replaced), so what it is sent now would not commit. A leader
    /// that has not yet heard from a quorum in its term was just elected by
    /// one and is not counted as cut off.
    pub fn quorum_lost(&self, group: GroupId) -> bool {
        let table = self.replicas.load();
        let Some(replica) = table.get(&group) else { return false };
        if replica.voters.load(Ordering::Relaxed) == 1 || replica.leader.load(Ordering::Relaxed) != replica.me {
            return false;
        }
        // A request for a leader that went quiet: it wakes, and counts as
        // in touch with its quorum for a while (it heard from none while
        // asleep, by design).
        let now_ms = self.epoch.elapsed().as_millis() as u64;
        self.touch_at(replica, now_ms);
        if now_ms < replica.quorum_fresh_until_ms.load(Ordering::Relaxed) {
            return false;
        }
        let metrics = replica.raft.metrics();
        let age = metrics.borrow_watched().last_quorum_acked.as_ref().map(|sent| sent.elapsed());
        match age {
            Some(age) if age > self.quorum_timeout => true,
            Some(age) => {
                let fresh_for = (self.quorum_timeout - age).as_millis() as u64;
                replica.quorum_fresh_until_ms.store(now_ms + fresh_for, Ordering::Relaxed);
                false
            }
            None => false,
        }
    }

    /// Hands writes to the group's Raft in one message and returns at once
    /// (after a bounded channel send): one wake-up of the Raft core for a
    /// whole pipelined batch, appended in this order.
    pub async fn submit_many(
        &self,
        group: GroupId,
        writes: impl IntoIterator<Item = (WriteOp, Option<WriteTag>)>,
        now: Millis,
    ) -> PendingBatch {
        let Some(replica) = self.replica(group) else {
            return PendingBatch { results: Err(ReplicaError::NoSuchGroup(group)), slots: None };
        };
        self.touch(&replica);
        if replica.sleep.slept.swap(false, Ordering::SeqCst) && self.leads_others(&replica) {
            // Asleep, the leader sent no heartbeats: openraft refuses a write
            // once its lease lapsed (LeaseExpired), until a quorum answers
            // again. One ReadIndex round is that answer; its error, if any,
            // the write meets and reports itself.
            let _ = replica.raft.ensure_linearizable(ReadPolicy::ReadIndex).await;
        }
        // Never behind the node's clock (see `crate::clock`).
        let now = now.max(self.clock.now_ms());
        let proposals: Vec<Proposal> = writes.into_iter().map(|(op, tag)| Proposal::write(&op, now, tag)).collect();
        // The server refuses bigger writes first; one reaching the log
        // would fail the WAL, and with it every group of the node.
        if let Some(p) = proposals.iter().find(|p| p.cmd.len() > crate::MAX_WRITE_BYTES) {
            return PendingBatch { results: Err(ReplicaError::TooLarge(p.cmd.len())), slots: None };
        }
        let results =
            replica.raft.client_write_many(proposals).await.map_err(|e| ReplicaError::Unavailable(e.to_string()));
        PendingBatch { results, slots: Some(Arc::clone(&replica.slots)) }
    }

    /// Replicates a write and returns its result once applied here.
    pub async fn propose(&self, group: GroupId, op: WriteOp, now: Millis) -> Result<Reply, ReplicaError> {
        self.submit_many(group, [(op, None)], now).await.next().await
    }

    /// Whether this node leads the group under a lease that is still valid,
    /// and has applied an entry of its own term (so everything committed
    /// by earlier leaders is applied here too).
    fn lease_holds(&self, replica: &Replica) -> bool {
        if replica.transferring.load(Ordering::SeqCst) {
            return false;
        }
        let metrics = replica.raft.metrics();
        let m = metrics.borrow_watched();
        let fresh = m.last_quorum_acked.as_ref().is_some_and(|sent| sent.elapsed() < self.lease);
        // The clock has moved past the lease of this term's predecessor.
        let clocked = replica.elected.clocked_in(m.current_term);
        let settled =
            clocked && m.last_applied.as_ref().is_some_and(|l| l.committed_leader_id().term == m.current_term);
        m.state == ServerState::Leader && fresh && settled
    }

    /// Waits until a read of the group's keyspace here is linearizable:
    /// under a valid lease at once (`ReadMode::Lease`), else ReadIndex
    /// (leadership confirmed by a quorum, applied up to it).
    ///
    /// A group whose only voter is this node (a standalone server) needs no
    /// round: no other node can be elected, and a write is answered only
    /// after it is applied here, so the local keyspace is already current.
    pub async fn read_barrier(&self, group: GroupId) -> Result<(), ReplicaError> {
        let replica = self.replica(group).ok_or(ReplicaError::NoSuchGroup(group))?;
        let leader = replica.leader.load(Ordering::Relaxed);
        if leader != replica.me && leader != NO_LEADER {
            return self.follower_read_barrier(group, &replica, leader).await;
        }
        if replica.voters.load(Ordering::Relaxed) == 1 && replica.leader.load(Ordering::Relaxed) == replica.me {
            return Ok(());
        }
        self.touch(&replica);
        if self.read_mode == ReadMode::Lease && self.lease_holds(&replica) {
            return Ok(());
        }
        match replica.raft.ensure_linearizable(ReadPolicy::ReadIndex).await {
            Ok(_) => {
                // Confirmed leader in this term: the clock must be past the
                // predecessor's lease before the read (the watcher does it
                // too, but may not have run yet).
                replica.elected.lead_in(replica.raft.metrics().borrow_watched().current_term);
                Ok(())
            }
            Err(RaftError::APIError(LinearizableReadError::ForwardToLeader(f))) => {
                Err(ReplicaError::NotLeader { leader: f.leader_id })
            }
            Err(e) => Err(ReplicaError::Unavailable(e.to_string())),
        }
    }

    /// A follower's read barrier: the leader confirms its leadership with a
    /// quorum and names its read index (the commit point when the request
    /// arrived), and this replica waits until it has applied that far. A
    /// read after it sees every write acknowledged before it began, as on
    /// the leader; it costs a round trip to the leader and the leader's
    /// quorum round, but no MOVED for a client that reads from replicas
    /// without READONLY (ioredis's `scaleReads`).
    async fn follower_read_barrier(&self, group: GroupId, replica: &Replica, leader: u64) -> Result<(), ReplicaError> {
        let unavailable =
            |why: String| ReplicaError::Unavailable(format!("read through leader {}: {why}", crate::ShowId(leader)));
        let index = match (self.read_index)(leader, group).await {
            Ok(Response::ReadIndex(index)) => index,
            Ok(Response::Error(e)) => return Err(unavailable(e)),
            Ok(_) => return Err(unavailable("unexpected response".into())),
            Err(e) => return Err(unavailable(e.to_string())),
        };
        replica
            .raft
            .wait(Some(self.quorum_timeout))
            .applied_index_at_least(Some(index), "the read index applied")
            .await
            .map_err(|e| unavailable(format!("not applied up to {index} in time: {e}")))?;
        Ok(())
    }

    /// Records a request for the group's replica here; wakes it if it was
    /// asleep (`crate::hibernate`).
    fn touch(&self, replica: &Replica) {
        self.touch_at(replica, self.epoch.elapsed().as_millis() as u64);
    }

    /// `touch` with the time already read (`quorum_lost`, per command).
    fn touch_at(&self, replica: &Replica, now_ms: u64) {
        if replica.sleep.touch(now_ms) {
            self.wake(replica, now_ms);
        }
    }

    /// Whether this replica leads its group and the group has other voters.
    fn leads_others(&self, replica: &Replica) -> bool {
        replica.leader.load(Ordering::Relaxed) == replica.me && replica.voters.load(Ordering::Relaxed) > 1
    }

    fn wake(&self, replica: &Replica, now_ms: u64) {
        replica.raft.runtime_config().tick(true);
        let grace = now_ms + self.quorum_timeout.as_millis() as u64;
        replica.quorum_fresh_until_ms.fetch_max(grace, Ordering::Relaxed);
    }

    /// One hibernation check of every group here (`crate::hibernate`),
    /// every `HIBERNATE_CHECK`: idle ones go quiet, quiet ones whose log
    /// moved or whose leader is gone wake. `alive(group, leader)` says
    /// whether the group's leader (a Raft id) is still there: its node
    /// answers the node-level peer check under that identity.
    pub fn hibernate_tick(&self, alive: impl Fn(GroupId, u64) -> bool) {
        use crate::hibernate::{decide, Observed, Seat, Verdict};
        let now_ms = self.epoch.elapsed().as_millis() as u64;
        let table = self.replicas.load();
        // Asked for a vote: awake (the transport restarted its ticker).
        for group in self.groups.take_pokes() {
            if let Some(replica) = table.get(&group) {
                replica.sleep.active_ms.store(now_ms, Ordering::Relaxed);
                if replica.sleep.asleep.swap(false, Ordering::SeqCst) {
                    self.wake(replica, now_ms);
                }
            }
        }
        for (group, replica) in table.iter() {
            let observed = {
                let metrics = replica.raft.metrics();
                let m = metrics.borrow_watched();
                let idle_ms = replica.sleep.observe(now_ms, (m.last_log_index, m.current_leader, m.current_term));
                let role = match (&m.running_state, m.state) {
                    (Ok(()), ServerState::Leader) => Seat::Leader,
                    (Ok(()), ServerState::Follower) if m.current_leader.is_some() => Seat::Follower,
                    _ => Seat::Other,
                };
                let settled = m.committed_membership_config.log_id() == m.membership_config.log_id()
                    && m.membership_config.membership().get_joint_config().len() == 1;
                let caught_up =
                    m.replication.iter().flatten().all(|(_, l)| l.as_ref().map(|l| l.index) == m.last_log_index);
                Observed {
                    role,
                    asleep: replica.sleep.asleep.load(Ordering::SeqCst),
                    idle_ms,
                    leader_alive: m.current_leader.is_some_and(|l| l == replica.me || alive(*group, l)),
                    quiet: settled && caught_up && !replica.transferring.load(Ordering::SeqCst),
                }
            };
            match decide(observed, self.quiet) {
                Verdict::Sleep => {
                    replica.sleep.asleep.store(true, Ordering::SeqCst);
                    replica.sleep.slept.store(true, Ordering::SeqCst);
                    replica.raft.runtime_config().tick(false);
                    tracing::debug!(group, "idle: going quiet");
                }
                Verdict::Wake => {
                    if replica.sleep.asleep.swap(false, Ordering::SeqCst) {
                        self.wake(replica, now_ms);
                        tracing::debug!(group, "waking");
                    }
                }
                Verdict::Stay => {}
            }
        }
    }

    /// One round of WAL compaction. Segments are deleted oldest first once
    /// every entry in them is purged, so a group too idle to reach its
    /// snapshot policy would keep every segment written since its last
    /// write. While the WAL holds more than `wal_max_segments` segments,
    /// each group here that keeps the oldest one snapshots and then purges
    /// its log up to what it has there (the next round, once the snapshot
    /// covers it). Called periodically by the server.
    pub async fn compact_wal(&self) {
        let pins = self.wal.pins();
        if pins.segments <= self.wal_max_segments {
            return;
        }
        for (group, upto) in pins.oldest {
            let Some(replica) = self.replica(group) else {
                tracing::warn!(group, "a group this node does not hold keeps the oldest WAL segment");
                continue;
            };
            // WAL index = Raft index + 1 (see `log_store`).
            let raft_upto = upto.saturating_sub(1);
            let snapshot = replica.raft.metrics().borrow_watched().snapshot.as_ref().map(|l| l.index);
            let trigger = replica.raft.trigger();
            let _ = if snapshot.is_some_and(|s| s >= raft_upto) {
                trigger.purge_log(raft_upto).await
            } else {
                trigger.snapshot().await
            };
        }
    }

    /// Snapshots every group here whose log since its last snapshot
    /// holds more than `max_log_bytes` in memory, so that openraft purges
    /// it. Counting only the entries after the snapshot, a group never
    /// snapshots again for the entries kept behind the last one. Called
    /// every second, as `compact_wal`.
    pub async fn compact_logs(&self) {
        for replica in self.replicas.load().values() {
            let (applied, snapshot) = {
                let metrics = replica.raft.metrics();
                let m = metrics.borrow_watched();
                (m.last_applied.map_or(0, |l| l.index), m.snapshot.map(|l| l.index))
            };
            let since = applied.saturating_sub(snapshot.unwrap_or(0));
            if since >= MIN_ENTRIES_BETWEEN_SNAPSHOTS && replica.log.bytes_after(snapshot) > self.max_log_bytes {
                let _ = replica.raft.trigger().snapshot().await;
            }
        }
    }

    /// The node's WAL counters (appends, group commits, fsyncs).
    pub fn wal_stats(&self) -> &shoal_wal::WalStats {
        self.wal.stats()
    }

    /// Why this node cannot go on, if it cannot: its WAL failed (a write,
    /// fsync or rotation error fails every later append), or a group's
    /// Raft stopped on a storage error. Such a node answers every write
    /// with an error forever; it should exit so a supervisor restarts it
    /// and recovery starts from what is durable.
    pub fn fatal(&self) -> Option<String> {
        if let Some(reason) = self.wal.failure() {
            return Some(format!("the write-ahead log failed ({reason})"));
        }
        self.replicas.load().iter().find_map(|(group, replica)| {
            let metrics = replica.raft.metrics();
            let m = metrics.borrow_watched();
            m.running_state.as_ref().err().map(|e| format!("the raft group {group} stopped: {e}"))
        })
    }

    /// The group's replication state here (INFO replication).
    pub fn status(&self, group: GroupId) -> Option<GroupStatus> {
        let replica = self.replica(group)?;
        let metrics = replica.raft.metrics();
        let m = metrics.borrow_watched();
        let role = match (&m.running_state, m.state) {
            (Err(_), _) | (_, ServerState::Shutdown) => Role::Stopped,
            (_, ServerState::Leader) => Role::Leader,
            (_, ServerState::Candidate) => Role::Candidate,
            (_, ServerState::Learner) => Role::Learner,
            (_, ServerState::Follower) => Role::Follower,
        };
        let last = m.last_log_index.unwrap_or(0);
        let followers = m
            .replication
            .iter()
            .flatten()
            .filter(|(id, _)| **id != replica.me)
            .map(|(id, matched)| (*id, last.saturating_sub(matched.as_ref().map_or(0, |l| l.index))))
            .collect();
        Some(GroupStatus {
            role,
            leader: m.current_leader,
            term: m.current_term,
            last_log_index: m.last_log_index,
            committed_index: m.local_committed.as_ref().map(|l| l.index),
            applied_index: m.last_applied.as_ref().map(|l| l.index),
            snapshot_index: m.snapshot.as_ref().map(|l| l.index),
            purged_index: m.purged.as_ref().map(|l| l.index),
            keys: replica.db.len(),
            followers,
            voters: m.membership_config.membership().voter_ids().collect(),
            learners: m.membership_config.membership().learner_ids().collect(),
            asleep: replica.sleep.asleep.load(Ordering::Relaxed),
        })
    }

    /// Has this node's replica of `group` build a snapshot now (on a
    /// blocking thread); returns at once. `status(group).snapshot_index`
    /// shows when it is done.
    pub async fn snapshot(&self, group: GroupId) -> Result<(), ReplicaError> {
        let replica = self.replica(group).ok_or(ReplicaError::NoSuchGroup(group))?;
        replica.raft.trigger().snapshot().await.map_err(|e| ReplicaError::Unavailable(e.to_string()))
    }

    /// Asks the group's leader (if it is this node) to hand leadership to
    /// `to`; returns at once, the transfer happens in the background.
    pub async fn transfer_leader(&self, group: GroupId, to: u64) -> Result<(), ReplicaError> {
        let replica = self.replica(group).ok_or(ReplicaError::NoSuchGroup(group))?;
        self.touch(&replica);
        // Before the transfer starts: no lease read may run once it has.
        replica.transferring.store(true, Ordering::SeqCst);
        replica.raft.trigger().transfer_leader(to).await.map_err(|e| ReplicaError::Unavailable(e.to_string()))
    }

    /// On the group's leader: makes `new`, a node's new Raft identity after
    /// it lost its data, a voter in place of every other identity of that
    /// node. Adds it as a learner, waits (at most `catch_up`) until it holds
    /// the log as it was then, and changes the voters (joint consensus); the
    /// node's other identities leave the group. Idempotent: a retry after a
    /// failure (leadership lost, catch-up too slow) goes on from where this
    /// one stopped.
    pub async fn replace_member(&self, group: GroupId, new: u64, catch_up: Duration) -> Result<(), ReplicaError> {
        let replica = self.replica(group).ok_or(ReplicaError::NoSuchGroup(group))?;
        self.touch(&replica);
        let node = crate::node_of(new);
        assert_ne!(node, crate::node_of(replica.me), "a leader never replaces itself");
        let info = node_info(&self.client_addrs, node);
        add_caught_up(&replica, new, info, catch_up).await?;
        // Learners are left as they are by a change of voters, so both
        // changes follow from the membership as it is now.
        let current = membership(&replica);
        let voters: BTreeSet<u64> = current.voter_ids().filter(|&v| crate::node_of(v) != node).chain([new]).collect();
        let stale: BTreeSet<u64> = current.learner_ids().filter(|&l| crate::node_of(l) == node && l != new).collect();
        set_voters(&replica, voters, false).await?;
        remove_learners(&replica, stale).await
    }

    /// On the group's leader: one replica move, `to` in and `from` (if any)
    /// out, as TiKV moves a peer. `to` (a new Raft id, at `to_client_addr`)
    /// is added as a learner and caught up (at most `catch_up`), then the
    /// voters change through a joint configuration. Every step follows from
    /// the group's membership as it is, so after a crash or a lost
    /// leadership, the same call on the group's next leader goes on from
    /// where this one stopped, including finishing a joint configuration
    /// left half done. When `from` is this node's replica, leadership is
    /// handed to another voter first (`MoveProgress::LeaderMoving`): call
    /// again on the new leader.
    pub async fn move_replica(
        &self,
        group: GroupId,
        from: Option<u64>,
        to: u64,
        to_client_addr: &str,
        catch_up: Duration,
    ) -> Result<MoveProgress, ReplicaError> {
        let replica = self.replica(group).ok_or(ReplicaError::NoSuchGroup(group))?;
        self.touch(&replica);
        let current = membership(&replica);
        // Done only once the membership saying so is committed: a new
        // leader's uncommitted one could still be lost.
        let done = |m: &openraft::Membership<u64, ShoalNode>| {
            let others_on_target =
                m.voter_ids().chain(m.learner_ids()).any(|id| id != to && crate::node_of(id) == crate::node_of(to));
            m.get_joint_config().len() == 1
                && m.voter_ids().any(|v| v == to)
                && from.is_none_or(|f| m.get_node(&f).is_none())
                && !others_on_target
                && membership_committed(&replica)
        };
        if done(&current) {
            return Ok(MoveProgress::Done);
        }
        let info = ShoalNode { client_addr: to_client_addr.to_string() };
        if from == Some(replica.me) {
            let others: Vec<u64> = current.voter_ids().filter(|&v| v != replica.me && v != to).collect();
            let next =
                match others.iter().copied().max_by_key(|&v| matched(&replica.raft.metrics().borrow_watched(), v)) {
                    Some(next) => next,
                    // The only voter: the target votes beside it first, then
                    // takes over the leadership.
                    None => {
                        add_caught_up(&replica, to, info, catch_up).await?;
                        set_voters(&replica, current.voter_ids().chain([to]).collect(), false).await?;
                        to
                    }
                };
            replica.transferring.store(true, Ordering::SeqCst);
            replica.raft.trigger().transfer_leader(next).await.map_err(|e| ReplicaError::Unavailable(e.to_string()))?;
            return Ok(MoveProgress::LeaderMoving);
        }
        add_caught_up(&replica, to, info, catch_up).await?;
        // Another identity of the group on the target's node (a replica
        // that left and whose node has since dropped its data) leaves too:
        // a node holds one replica of a group.
        let on_target = |id: u64| id != to && crate::node_of(id) == crate::node_of(to);
        let voters: BTreeSet<u64> =
            current.voter_ids().filter(|&v| Some(v) != from && !on_target(v)).chain([to]).collect();
        set_voters(&replica, voters, false).await?;
        let gone = membership(&replica).learner_ids().filter(|&l| Some(l) == from || on_target(l)).collect();
        remove_learners(&replica, gone).await?;
        match done(&membership(&replica)) {
            true => Ok(MoveProgress::Done),
            false => Err(ReplicaError::Unavailable(format!("group {group}: the membership changed under the move"))),
        }
    }

    /// On the group's leader: makes the group's members exactly `members`
    /// (Raft id → client address), `voters` of them voting. New members
    /// join as learners; a new voter is promoted once caught up (at most
    /// `catch_up`); members not listed leave. A leader not among `voters`
    /// hands leadership to one of them first (an error: call again on the
    /// next leader). Idempotent, like `move_replica`.
    pub async fn reconfigure(
        &self,
        group: GroupId,
        voters: BTreeSet<u64>,
        members: BTreeMap<u64, String>,
        catch_up: Duration,
    ) -> Result<(), ReplicaError> {
        let replica = self.replica(group).ok_or(ReplicaError::NoSuchGroup(group))?;
        self.touch(&replica);
        assert!(voters.iter().all(|v| members.contains_key(v)), "every voter is a member");
        let current = membership(&replica);
        if !voters.contains(&replica.me) {
            let next = current.voter_ids().find(|v| voters.contains(v) && *v != replica.me);
            let Some(next) = next else {
                return Err(ReplicaError::Unavailable(format!("group {group}: no voter to hand leadership to")));
            };
            replica.transferring.store(true, Ordering::SeqCst);
            replica.raft.trigger().transfer_leader(next).await.map_err(|e| ReplicaError::Unavailable(e.to_string()))?;
            return Err(ReplicaError::Unavailable(format!(
                "group {group}: handing leadership to {}",
                crate::ShowId(next)
            )));
        }
        for (&id, addr) in members.iter().filter(|(id, _)| current.get_node(id).is_none()) {
            let info = ShoalNode { client_addr: addr.clone() };
            replica.raft.add_learner(id, info, false).await.map_err(membership_error)?;
        }
        let current = membership(&replica);
        for &id in voters.iter().filter(|&&v| !current.voter_ids().any(|x| x == v)) {
            add_caught_up(&replica, id, ShoalNode { client_addr: members[&id].clone() }, catch_up).await?;
        }
        // Retained: a voter demoted to a learner stays a member.
        set_voters(&replica, voters, true).await?;
        let current = membership(&replica);
        remove_learners(&replica, current.learner_ids().filter(|l| !members.contains_key(l)).collect()).await
    }

    /// Whether the group's membership, as this node knows it, is committed
    /// and not a joint configuration: no change is under way.
    pub fn membership_settled(&self, group: GroupId) -> bool {
        self.replica(group).is_some_and(|r| membership_committed(&r) && membership(&r).get_joint_config().len() == 1)
    }

    /// On the group's leader: takes `learner` (a move's target that will
    /// not finish, say its node died) out of the group. Voters are left
    /// alone: a replica that already votes is moved away, not cancelled.
    pub async fn remove_learner(&self, group: GroupId, learner: u64) -> Result<(), ReplicaError> {
        let replica = self.replica(group).ok_or(ReplicaError::NoSuchGroup(group))?;
        self.touch(&replica);
        let current = membership(&replica);
        if current.voter_ids().any(|v| v == learner) {
            return Err(ReplicaError::Unavailable(format!("{} is a voter of group {group}", crate::ShowId(learner))));
        }
        remove_learners(&replica, current.learner_ids().filter(|&l| l == learner).collect()).await
    }

    /// openraft's runtime stats for the group (per-stage latency of log
    /// entries, batch sizes), as text.
    #[cfg(feature = "runtime-stats")]
    pub async fn runtime_stats(&self, group: GroupId) -> Option<String> {
        let mut stats = self.replica(group)?.raft.runtime_stats().await.ok()?;
        stats.build_log_stage_histograms();
        Some(stats.display().human_readable().to_string())
    }

    /// Waits (bounded) until every group has a leader, as routing sees it
    /// (the cache `leader` reads, not only openraft's metrics).
    pub async fn wait_for_leaders(&self, timeout: Duration) -> Result<(), ReplicaError> {
        let deadline = tokio::time::Instant::now() + timeout;
        for (group, replica) in self.replicas.load().iter() {
            replica
                .raft
                .wait(Some(timeout))
                .metrics(|m| m.current_leader.is_some(), "a leader")
                .await
                .map_err(|e| ReplicaError::Unavailable(format!("group {group}: {e}")))?;
            while replica.leader.load(Ordering::Relaxed) == NO_LEADER {
                if tokio::time::Instant::now() > deadline {
                    return Err(ReplicaError::Unavailable(format!("group {group}: no leader in {timeout:?}")));
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        Ok(())
    }

    /// Stops this node as a power cut would, for fault tests: the WAL stops
    /// at once (`Wal::crash`: nothing queued is written or answered), then
    /// every group. Returns the newest WAL segment and how many of its bytes
    /// were fsynced; what follows them was only in the page cache, and a
    /// test that cuts it off loses what a machine crash would.
    pub async fn crash(&self) -> (PathBuf, u64) {
        let point = self.wal.crash();
        self.shutdown().await;
        (shoal_wal::segment::segment_path(&self.wal_dir, point.segment), point.synced_len)
    }

    /// Ends the peer connections serving this node's groups (peers' requests
    /// are refused from now on), then stops every group's Raft.
    pub async fn shutdown(&self) {
        self.groups.close();
        for replica in self.replicas.load().values() {
            let _ = replica.raft.shutdown().await;
        }
    }
}

/// How far `Replicas::move_replica` came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoveProgress {
    /// The target votes and the source is out of the group.
    Done,
    /// This node, the source, is handing leadership to another voter: the
    /// move goes on on the group's next leader.
    LeaderMoving,
}

/// The group's membership as this node knows it (the last one in its log).
fn membership(replica: &Replica) -> openraft::Membership<u64, ShoalNode> {
    replica.raft.metrics().borrow_watched().membership_config.membership().clone()
}

/// Adds `id` as a learner unless it is a member already, then waits (at most
/// `catch_up`) until it holds the log as it was when the wait began.
async fn add_caught_up(replica: &Replica, id: u64, info: ShoalNode, catch_up: Duration) -> Result<(), ReplicaError> {
    if membership(replica).get_node(&id).is_none() {
        replica.raft.add_learner(id, info, false).await.map_err(membership_error)?;
    }
    let target = replica.raft.metrics().borrow_watched().last_log_index;
    replica
        .raft
        .wait(Some(catch_up))
        .metrics(|m| matched(m, id) >= target, "the new replica caught up")
        .await
        .map_err(|e| ReplicaError::Unavailable(format!("{} did not catch up: {e}", crate::ShowId(id))))?;
    Ok(())
}

/// Makes `voters` the group's voters (through a joint configuration),
/// unless they are already and no joint configuration is left half done.
/// Voters no longer listed stay as learners when `retain`, else leave.
async fn set_voters(replica: &Replica, voters: BTreeSet<u64>, retain: bool) -> Result<(), ReplicaError> {
    let current = membership(replica);
    let joint = current.get_joint_config().len() > 1;
    if joint || current.voter_ids().collect::<BTreeSet<_>>() != voters {
        let change = ChangeMembers::ReplaceAllVoters(voters);
        replica.raft.change_membership(change, retain).await.map_err(membership_error)?;
    }
    Ok(())
}

/// Whether the group's latest membership (as this node knows it) is
/// committed.
fn membership_committed(replica: &Replica) -> bool {
    let metrics = replica.raft.metrics();
    let m = metrics.borrow_watched();
    m.committed_membership_config.log_id() == m.membership_config.log_id()
}

async fn remove_learners(replica: &Replica, learners: BTreeSet<u64>) -> Result<(), ReplicaError> {
    let current = membership(replica);
    let present: BTreeSet<u64> = learners.into_iter().filter(|l| current.learner_ids().any(|x| x == *l)).collect();
    if !present.is_empty() {
        replica.raft.change_membership(ChangeMembers::RemoveNodes(present), false).await.map_err(membership_error)?;
    }
    Ok(())
}

/// The last log index the leader knows `id` holds (None: nothing yet, or
/// not a leader).
fn matched(m: &openraft::RaftMetrics<crate::TypeConfig>, id: u64) -> Option<u64> {
    m.replication.as_ref()?.get(&id)?.as_ref().map(|l| l.index)
}

/// A failed membership change, as routing understands it.
fn membership_error(e: RaftError<crate::TypeConfig, ClientWriteError<crate::TypeConfig>>) -> ReplicaError {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => ReplicaError::NotLeader { leader: f.leader_id },
        e => ReplicaError::Unavailable(e.to_string()),
    }
}

/// A member's node record: where clients reach it.
fn node_info(client_addrs: &HashMap<u64, String>, node: u64) -> ShoalNode {
    ShoalNode { client_addr: client_addrs.get(&node).cloned().unwrap_or_default() }
}

/// The atomics `watch_leader` keeps current.
struct LeaderCache {
    leader: Arc<AtomicU64>,
    voters: Arc<AtomicUsize>,
    transferring: Arc<AtomicBool>,
    /// This node's Raft id.
    me: u64,
    elected: Arc<Elected>,
}

/// Moves the node's clock past what an earlier leader may have served, once
/// per term this node leads a group in (see `crate::clock`).
struct Elected {
    group: GroupId,
    /// The last term this node was seen leading the group in.
    term: AtomicU64,
    clock: Arc<Clock>,
}

impl Elected {
    /// This node leads the group in `term`.
    fn lead_in(&self, term: u64) {
        self.clock.elected(self.group, term);
        self.term.store(term, Ordering::Release);
    }

    /// Whether the clock was moved for `term`.
    fn clocked_in(&self, term: u64) -> bool {
        self.term.load(Ordering::Acquire) == term
    }
}

/// Keeps a group's leader and voter-count cache current until its Raft
/// stops (the watch sender is dropped).
async fn watch_leader(raft: ShoalRaft, cache: LeaderCache) {
    let mut metrics = raft.server_metrics();
    drop(raft);
    loop {
        {
            let m = metrics.borrow_watched();
            if m.current_leader == Some(cache.me) {
                cache.elected.lead_in(m.vote.leader_id().term);
            }
            let leader = m.current_leader.unwrap_or(NO_LEADER);
            if cache.leader.swap(leader, Ordering::SeqCst) != leader {
                cache.transferring.store(false, Ordering::SeqCst);
            }
            cache.voters.store(m.membership_config.membership().voter_ids().count(), Ordering::Relaxed);
        }
        if metrics.changed().await.is_err() {
            cache.leader.store(NO_LEADER, Ordering::Relaxed);
            return;
        }
    }
}
