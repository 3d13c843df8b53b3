//! One group's Raft log, stored in the node-wide WAL.
//!
//! Every write becomes a `shoal_wal::Record` tagged with the group id and
//! goes through the one WAL queue, so a group's writes reach disk in the
//! order openraft issued them (a vote can never become durable after a later
//! append). Entries are also kept in memory (encoded, see `Held`), so readers never touch
//! the disk; the WAL is read only once, at open.
//!
//! Two mappings onto the WAL's simpler model:
//!
//! - **Index + 1.** openraft's first entry has index 0, but the WAL uses 0 as
//!   "nothing" (`Truncate { after: 0 }` keeps nothing, `purged: 0` means none
//!   purged). WAL index = Raft index + 1 makes every Raft operation
//!   expressible, including "truncate everything".
//! - **Hard state in the vote record.** A WAL vote is opaque bytes, so ours
//!   carries `HardState { vote, committed, purged }`. `committed` lets a
//!   restarted node re-apply its log before serving (openraft's
//!   `save_committed`); `purged` keeps the purged entry's *term*, which a
//!   `Record::Purge` (index only) loses.
//!
//! Entries and the hard state are encoded with postcard through openraft's
//! serde derives: compact, but not self-describing, so an openraft bump that
//! changes one of those types changes the on-disk format (check it when
//! moving off the pinned alpha).

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io;
use std::ops::RangeBounds;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use openraft::storage::{IOFlushed, RaftLogStorage};
use openraft::type_config::alias::{EntryOf, LogIdOf, VoteOf};
use openraft::{LogState, OptionalSend, RaftLogReader};
use serde::{Deserialize, Serialize};
use shoal_wal::{GroupId, GroupState, Record, TryAppendError, Wal};
use tokio::sync::oneshot;

use crate::{io_err, TypeConfig};

type Entry = EntryOf<TypeConfig>;
type LogId = LogIdOf<TypeConfig>;
type Vote = VoteOf<TypeConfig>;

/// What the WAL's vote record holds for a group.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct HardState {
    vote: Option<Vote>,
    committed: Option<LogId>,
    purged: Option<LogId>,
}

#[derive(Default)]
struct Inner {
    /// Present entries by Raft index, contiguous: all above `hard.purged`,
    /// and those the last purge removed, kept readable until the next one
    /// (see `purge`).
    entries: BTreeMap<u64, Held>,
    hard: HardState,
}

/// The log store and, cloned, its reader: both share `Inner`, so an entry is
/// visible to every replication task as soon as `append` returns.
#[derive(Clone)]
pub struct LogStore {
    group: GroupId,
    wal: Arc<Wal>,
    inner: Arc<Mutex<Inner>>,
}

/// An entry held in memory: its id and its encoding (the WAL record's
/// payload, shared with it), decoded when read. One allocation of exactly
/// its bytes rather than a decoded entry with buffers of its own: the log
/// lives for thousands of writes among short-lived allocations, and every
/// allocation it keeps pins an allocator page (docs/memory.md).
struct Held {
    log_id: LogId,
    payload: Bytes,
}

fn wal_index(raft_index: u64) -> u64 {
    raft_index + 1
}

impl LogStore {
    /// Rebuilds the group's log from what `Wal::open` recovered.
    pub fn open(wal: Arc<Wal>, group: GroupId, recovered: &GroupState) -> io::Result<LogStore> {
        let mut inner = Inner::default();
        if let Some(payload) = &recovered.vote {
            inner.hard = postcard::from_bytes(payload).map_err(io_err)?;
        }
        for (_, payload) in recovered.entries.values() {
            let entry: Entry = postcard::from_bytes(payload).map_err(io_err)?;
            // A copy: what the WAL recovered may be a view of a larger buffer.
            let held = Held { log_id: entry.log_id, payload: Bytes::copy_from_slice(payload) };
            inner.entries.insert(entry.log_id.index, held);
        }
        // The hard state is written before the Purge record; if a crash came
        // between the two, finish the purge here.
        if let Some(purged) = &inner.hard.purged {
            inner.entries = inner.entries.split_off(&(purged.index + 1));
        }
        Ok(LogStore { group, wal, inner: Arc::new(Mutex::new(inner)) })
    }

    /// About how many bytes the entries after Raft index `index` (all
    /// with `None`) take in memory: the log a snapshot at the last applied
    /// entry would let openraft purge (`Replicas::compact_logs`). Walks
    /// those entries, at most a snapshot interval of them.
    pub fn bytes_after(&self, index: Option<u64>) -> u64 {
        let inner = self.inner.lock().unwrap();
        let from = index.map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded);
        inner.entries.range((from, std::ops::Bound::Unbounded)).map(|(_, e)| e.payload.len() as u64).sum()
    }

    /// Raft indexes of the entries held (tests and diagnostics).
    pub fn indexes(&self) -> Vec<u64> {
        let inner = self.inner.lock().unwrap();
        let purged = inner.hard.purged.map(|p| p.index);
        inner.entries.keys().copied().filter(|&i| purged.is_none_or(|p| i > p)).collect()
    }

    /// The node-wide WAL this view writes to.
    pub fn wal(&self) -> &Arc<Wal> {
        &self.wal
    }

    /// The committed log id last saved (restart checks).
    pub fn saved_committed(&self) -> Option<LogId> {
        self.inner.lock().unwrap().hard.committed
    }

    fn hard_state_record(&self, hard: &HardState) -> io::Result<Record> {
        let payload = postcard::to_allocvec(hard).map_err(io_err)?;
        Ok(Record::Vote { group: self.group, payload: Bytes::from(payload) })
    }

    /// Queues records and waits until they are durable. The wait is on a
    /// oneshot, not `append_sync`, so no runtime worker blocks on fsync.
    /// Fsynced under every policy: `--fsync never` trades recent writes for
    /// speed, never a vote.
    async fn write_durable(&self, records: Vec<Record>) -> io::Result<()> {
        durable_on(&self.wal, records).await
    }

    /// Queues records without waiting: for writes whose durability openraft
    /// does not wait on. Order is still kept by the WAL queue, and a write
    /// failure poisons the WAL, so the next durable write reports it.
    async fn write_queued(&self, records: Vec<Record>) -> io::Result<()> {
        self.queue(records, false, |_| {}).await
    }

    async fn queue(
        &self,
        records: Vec<Record>,
        fsync: bool,
        done: impl FnOnce(io::Result<()>) + Send + 'static,
    ) -> io::Result<()> {
        queue_on(&self.wal, records, fsync, done).await
    }
}

/// Hands records to the WAL's queue (`fsync`: durable under every policy).
/// When the queue is full, the wait happens on a blocking thread: the
/// runtime that runs every group's Raft core must never block (one full
/// queue would stall all their heartbeats). The caller's next write waits
/// behind it, so a group's records keep their order.
pub(crate) async fn queue_on(
    wal: &Arc<Wal>,
    records: Vec<Record>,
    fsync: bool,
    done: impl FnOnce(io::Result<()>) + Send + 'static,
) -> io::Result<()> {
    match wal.try_append(records, fsync, done) {
        Ok(()) => Ok(()),
        Err(TryAppendError::Full(queued)) => {
            let wal = Arc::clone(wal);
            tokio::task::spawn_blocking(move || wal.append_queued(queued)).await.map_err(io_err)?.map_err(io_err)
        }
        Err(TryAppendError::TooLarge { bytes }) => {
            Err(io_err(format!("a wal record of {bytes} bytes is over the limit")))
        }
        Err(TryAppendError::Stopped) => Err(io_err("the wal writer has stopped")),
    }
}

/// `queue_on` with `fsync`, then waits until the records are durable. The
/// wait is on a oneshot, so no runtime worker blocks on the fsync.
pub(crate) async fn durable_on(wal: &Arc<Wal>, records: Vec<Record>) -> io::Result<()> {
    let (tx, rx) = oneshot::channel();
    queue_on(wal, records, true, move |r| {
        let _ = tx.send(r);
    })
    .await?;
    rx.await.map_err(io_err)?
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> io::Result<Vec<Entry>> {
        // Decoded after the lock, which appends wait for.
        let payloads: Vec<Bytes> = {
            let inner = self.inner.lock().unwrap();
            inner.entries.range(range).map(|(_, held)| held.payload.clone()).collect()
        };
        payloads.iter().map(|payload| postcard::from_bytes(payload).map_err(io_err)).collect()
    }

    async fn read_vote(&mut self) -> io::Result<Option<Vote>> {
        Ok(self.inner.lock().unwrap().hard.vote)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> io::Result<LogState<TypeConfig>> {
        let inner = self.inner.lock().unwrap();
        let last_purged_log_id = inner.hard.purged;
        let last_log_id = inner.entries.values().next_back().map(|e| e.log_id).or(last_purged_log_id);
        Ok(LogState { last_purged_log_id, last_log_id })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> io::Result<()> {
        // Must be durable before returning: a node that forgets its vote can
        // vote twice in one term.
        let record = {
            let mut inner = self.inner.lock().unwrap();
            inner.hard.vote = Some(*vote);
            self.hard_state_record(&inner.hard)?
        };
        self.write_durable(vec![record]).await
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> io::Result<()> {
        // Not awaited: losing the latest `committed` in a crash only means
        // re-applying less on restart and catching up from the leader.
        let record = {
            let mut inner = self.inner.lock().unwrap();
            inner.hard.committed = committed;
            self.hard_state_record(&inner.hard)?
        };
        self.write_queued(vec![record]).await
    }

    async fn read_committed(&mut self) -> io::Result<Option<LogId>> {
        Ok(self.inner.lock().unwrap().hard.committed)
    }

    async fn append<I>(&mut self, entries: I, callback: IOFlushed<TypeConfig>) -> io::Result<()>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut records = Vec::new();
        {
            let mut inner = self.inner.lock().unwrap();
            for entry in entries {
                let payload = Bytes::from(postcard::to_allocvec(&entry).map_err(io_err)?);
                records.push(Record::Entry {
                    group: self.group,
                    index: wal_index(entry.log_id.index),
                    term: entry.log_id.leader_id.term,
                    payload: payload.clone(),
                });
                inner.entries.insert(entry.log_id.index, Held { log_id: entry.log_id, payload });
            }
        }
        // Readable now; reported flushed only from the WAL's done callback,
        // i.e. after the group commit's fsync. openraft counts this entry
        // towards a quorum on the strength of that report.
        self.queue(records, false, move |r| callback.io_completed(r)).await
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> io::Result<()> {
        let after = last_log_id.map_or(0, |l| wal_index(l.index));
        {
            let mut inner = self.inner.lock().unwrap();
            let keep_upto = last_log_id.map(|l| l.index);
            inner.entries.retain(|&i, _| keep_upto.is_some_and(|k| i <= k));
        }
        // Later appends are queued behind this record, so they cannot be
        // replayed before it; no need to wait. Fsynced whatever the policy:
        // the entries it removes may have been entries of a term that lost,
        // and must not come back after a power cut.
        self.queue(vec![Record::Truncate { group: self.group, after }], true, |_| {}).await
    }

    async fn purge(&mut self, log_id: LogId) -> io::Result<()> {
        let record = {
            let mut inner = self.inner.lock().unwrap();
            // The entries this purge removes stay readable until the next
            // one: a replication stream may have chosen to send them just
            // before (to a follower whose log went backwards after a power
            // cut under --fsync everysec), and openraft then reads a range
            // whose start would be gone (found by the simulation).
            if let Some(previous) = inner.hard.purged {
                inner.entries = inner.entries.split_off(&(previous.index + 1));
            }
            inner.hard.purged = Some(log_id);
            self.hard_state_record(&inner.hard)?
        };
        // Hard state first (it carries the purged term), then the WAL's own
        // Purge mark, which lets it delete old segments.
        let purge = Record::Purge { group: self.group, upto: wal_index(log_id.index) };
        self.write_queued(vec![record, purge]).await
    }
}
