//! Where a split's new group comes from on each node.
//!
//! A split entry (`crate::SplitSpec`) is applied by every replica of the
//! shard; each writes its node's replica of the new group into the node's
//! data directory as a group that has never run: a directory naming the
//! replica, and a snapshot at log index 0 holding the right-hand keys, the
//! client sessions and the new group's members. openraft, opening it,
//! takes the snapshot as applied and its log as purged up to it, so every
//! replica of the new group starts from the same state with no entry in
//! common to replay, and a replica that never applied the split (its shard
//! got a snapshot from past it) is sent the new group's snapshot, never an
//! empty start. Nothing crosses the network.
//!
//! The state is durable before the split entry counts as applied, and the
//! replica-id file is written last: a directory that names its replica is
//! complete. One that already names a replica is never written again (a
//! split entry replayed after a restart finds the new group there).

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::PathBuf;

use openraft::type_config::alias::{LogIdOf, SnapshotMetaOf};
use openraft::{Membership, StoredMembership};
use tokio::sync::watch;

use crate::sessions::Sessions;
use crate::state_machine::{pack, snapshot_file, snapshot_of_dump, write_atomically, REPLICA_ID_FILE};
use crate::transport::GroupId;
use crate::{ShoalNode, SplitSpec, TypeConfig};

/// The node's data directory and a counter of groups born here, which the
/// server watches to open them.
pub struct Births {
    dir: PathBuf,
    born: watch::Sender<u64>,
    /// Held while a split is applied here (the shard's slots shrink, its
    /// keys move, the new group is written) and while the server decides
    /// whether to open a born group: it never sees a shard that gave its
    /// slots away without the new group on disk yet, which it would take
    /// for one that installed a snapshot from past the split, and open the
    /// new group empty.
    applying: std::sync::Mutex<()>,
}

/// The directory of `group`'s replica under a node's data directory.
pub(crate) fn group_dir(dir: &std::path::Path, group: GroupId) -> PathBuf {
    dir.join(format!("group-{group}"))
}

/// Creates a group's directory durably: the node's data directory is
/// fsynced after it appears, so a power cut cannot keep files written in
/// it (its WAL records, say) while losing the directory itself.
pub(crate) fn create_group_dir(dir: &std::path::Path) -> io::Result<()> {
    if dir.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    if let Some(parent) = dir.parent() {
        std::fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}

/// The log id a born group's first state stands at: index 0 of a term no
/// leader had, as `Raft::initialize` would give.
pub(crate) fn first_log_id() -> LogIdOf<TypeConfig> {
    LogIdOf::<TypeConfig>::new(openraft::vote::leader_id_adv::LeaderId { term: 0, node_id: 0 }, 0)
}

impl Births {
    pub fn new(dir: PathBuf) -> Births {
        Births { dir, born: watch::Sender::new(0), applying: std::sync::Mutex::new(()) }
    }

    /// See `applying`.
    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.applying.lock().expect("births lock")
    }

    /// `lock` unless a split holds it now.
    pub(crate) fn try_lock(&self) -> Option<std::sync::MutexGuard<'_, ()>> {
        match self.applying.try_lock() {
            Ok(guard) => Some(guard),
            Err(std::sync::TryLockError::WouldBlock) => None,
            Err(std::sync::TryLockError::Poisoned(e)) => panic!("births lock poisoned: {e}"),
        }
    }

    /// Changes each time a group is born here.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.born.subscribe()
    }

    /// Writes `owner`'s node's replica of the split's new group, holding
    /// the keys `dump` gives (`Db::dump_slots`, taken only if needed; see
    /// the module doc). Nothing when the split gives this node no replica
    /// or the directory already names one. The caller holds `lock`.
    pub(crate) fn create(
        &self,
        spec: &SplitSpec,
        owner: u64,
        sessions: &Sessions,
        dump: impl FnOnce() -> Vec<u8>,
    ) -> io::Result<()> {
        let node = crate::node_of(owner);
        let Some(&me) = spec.members.keys().find(|&&id| crate::node_of(id) == node) else { return Ok(()) };
        let dir = group_dir(&self.dir, spec.child);
        if dir.join(REPLICA_ID_FILE).exists() {
            return Ok(());
        }
        create_group_dir(&dir)?;
        let voters: BTreeSet<u64> = spec.members.keys().copied().collect();
        let nodes: BTreeMap<u64, ShoalNode> =
            spec.members.iter().map(|(&id, addr)| (id, ShoalNode { client_addr: addr.clone() })).collect();
        let first = first_log_id();
        let membership = Membership::new(vec![voters], nodes).map_err(crate::io_err)?;
        let meta = SnapshotMetaOf::<TypeConfig> {
            last_log_id: Some(first),
            last_membership: StoredMembership::new(Some(first), membership),
        };
        let dump = dump();
        let keys = shoal_engine::snapshot::verify(&dump).map_err(crate::io_err)?;
        let data = snapshot_of_dump(sessions, pack(spec.at, spec.end), &dump)?;
        snapshot_file::save(&dir, &meta, &data)?;
        write_atomically(&dir, REPLICA_ID_FILE, &[me.to_string().as_bytes()])?;
        tracing::info!(group = spec.child, replica = %crate::ShowId(me), keys, "split: new group written");
        self.born.send_modify(|n| *n += 1);
        Ok(())
    }
}
