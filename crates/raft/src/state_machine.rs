//! The group's state machine: committed proposals applied to the engine.
//!
//! The keyspace is the shared `Arc<Db>` that the server reads from directly;
//! this type only adds what Raft needs beside it: the last applied log id,
//! the membership, and the latest snapshot.
//!
//! Snapshots are `u32 BE length | Sessions::encode | u32 BE slots | Db::dump`
//! bytes, the dump taken and restored with `now = 0`, so they copy the
//! keyspace exactly (keys past their expiry but not yet swept included) and
//! do not depend on any node's clock; the sessions make retried tagged
//! writes exactly-once across snapshot installs too.
//!
//! The shard's slots are state like the keyspace: unknown (`ALL_SLOTS`,
//! whatever the cluster map gives the shard) until a split entry names
//! them, then only what the splits left it. A write for a slot the shard no
//! longer holds is refused when applied ([`Reply::NotOwned`]), identically on
//! every replica. A split entry moves the right-hand keys out of the
//! keyspace and writes the new group's first state to disk (`births`)
//! before the entry counts as applied: a crash after it finds the new
//! group on disk, a crash before it replays the entry.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use openraft::storage::{EntryResponder, RaftStateMachine};
use openraft::type_config::alias::{LogIdOf, SnapshotMetaOf, SnapshotOf, StoredMembershipOf};
use openraft::{EntryPayload, RaftSnapshotBuilder, StoredMembership};
use shoal_engine::{Db, WriteOp};
use shoal_wal::Wal;

use crate::births;
use crate::sessions::Sessions;
use crate::{io_err, Cmd, Reply, SplitSpec, TypeConfig};

/// `Inner::slots` when no split ever named the shard's slots.
pub(crate) const ALL_SLOTS: u32 = u32::MAX;

/// `Inner::slots` of a sealed shard (`Cmd::Seal`): a range holding no slot.
pub(crate) const SEALED: u32 = 0xffff_fffe;

/// A slot range as one word, for readers that check it without a lock.
pub(crate) fn pack(start: u16, end: u16) -> u32 {
    u32::from(start) << 16 | u32::from(end)
}

/// Whether a packed range (or `ALL_SLOTS`) holds `slot`.
pub(crate) fn holds(packed: u32, slot: u16) -> bool {
    packed == ALL_SLOTS || ((packed >> 16) as u16..=packed as u16).contains(&slot)
}

type Snapshot = SnapshotOf<TypeConfig, Bytes>;

struct Inner {
    last_applied: Option<LogIdOf<TypeConfig>>,
    membership: StoredMembershipOf<TypeConfig>,
    sessions: Sessions,
    /// The shard's slots, packed (`ALL_SLOTS`: never split).
    slots: u32,
    /// The latest snapshot: its bytes only when it lives in memory (no
    /// directory); on disk, where a dump as large as the keyspace would
    /// otherwise stay resident between snapshots, only its meta, and the
    /// file is read when a follower needs it (`get_current_snapshot`).
    snapshot: Option<(SnapshotMetaOf<TypeConfig>, Option<Bytes>)>,
}

impl Default for Inner {
    fn default() -> Inner {
        Inner {
            last_applied: None,
            membership: Default::default(),
            sessions: Sessions::default(),
            slots: ALL_SLOTS,
            snapshot: None,
        }
    }
}

/// A snapshot's bytes: the sessions, the slots, then the keyspace dump,
/// written into one buffer (the keyspace is never held twice) sized for
/// `expected_len` bytes and an eighth more, so that a snapshot about the
/// size of the last one does not double its buffer on the way (a peak of
/// twice the keyspace, copied at each doubling).
pub(crate) fn snapshot_bytes(sessions: &Sessions, slots: u32, db: &Db, expected_len: usize) -> io::Result<Vec<u8>> {
    let mut data = snapshot_header(sessions, slots, expected_len + expected_len / 8)?;
    db.dump_slots_into(&mut data, |_| true, 0);
    Ok(data)
}

/// A snapshot's bytes from a dump already taken (`Db::dump_slots`).
pub(crate) fn snapshot_of_dump(sessions: &Sessions, slots: u32, dump: &[u8]) -> io::Result<Vec<u8>> {
    let mut data = snapshot_header(sessions, slots, dump.len())?;
    data.extend_from_slice(dump);
    Ok(data)
}

/// The sessions and the slots, in a buffer with room for `dump_len` more.
fn snapshot_header(sessions: &Sessions, slots: u32, dump_len: usize) -> io::Result<Vec<u8>> {
    let sessions = sessions.encode();
    let len = u32::try_from(sessions.len()).map_err(|_| io_err("client sessions over 4 GiB"))?;
    let mut data = Vec::with_capacity(8 + sessions.len() + dump_len);
    data.extend_from_slice(&len.to_be_bytes());
    data.extend_from_slice(&sessions);
    data.extend_from_slice(&slots.to_be_bytes());
    Ok(data)
}

/// Checks a snapshot received from a peer before it is installed: a bad
/// one must be refused, not handed to openraft, which stops the group on
/// an install error. Reads the whole snapshot: call it off the runtime.
pub fn check_snapshot(data: &[u8]) -> io::Result<()> {
    let (_, _, dump) = split_snapshot(data)?;
    shoal_engine::snapshot::verify(dump).map(|_| ()).map_err(io_err)
}

/// Splits a snapshot into its sessions, its slots and its dump.
fn split_snapshot(data: &[u8]) -> io::Result<(Sessions, u32, &[u8])> {
    let truncated = || io_err("snapshot is truncated");
    let (len, rest) = data.split_first_chunk::<4>().ok_or_else(truncated)?;
    let len = u32::from_be_bytes(*len) as usize;
    if len > rest.len() {
        return Err(truncated());
    }
    let sessions = Sessions::decode(&rest[..len]).map_err(io_err)?;
    let (slots, dump) = rest[len..].split_first_chunk::<4>().ok_or_else(truncated)?;
    let slots = u32::from_be_bytes(*slots);
    let valid =
        slots == ALL_SLOTS || slots == SEALED || ((slots >> 16) <= (slots & 0xffff) && (slots & 0xffff) < 16384);
    if !valid {
        return Err(io_err(format!("snapshot names no valid slot range ({slots:#x})")));
    }
    Ok((sessions, slots, dump))
}

/// Also its own snapshot builder: a clone shares the same state.
#[derive(Clone)]
pub struct StateMachine {
    db: Arc<Db>,
    /// Where the latest snapshot is kept on disk; `None` keeps it in memory
    /// only (then a node whose log was purged cannot restart from disk).
    dir: Option<Arc<PathBuf>>,
    /// Held while applying an entry and while dumping, so a snapshot's bytes
    /// and its `last_log_id` always agree; not while a built snapshot is
    /// written and fsynced, which would stall every write to the group. An
    /// async mutex: a dump of a large keyspace holds it on a blocking thread
    /// for seconds, and the group's apply must wait without blocking the
    /// runtime every group's Raft core shares.
    inner: Arc<tokio::sync::Mutex<Inner>>,
    /// The last entry of the newest snapshot on disk. Held while a snapshot
    /// is written, so writes never interleave and a snapshot built
    /// concurrently with a newer install never replaces it on disk.
    persisted: Arc<Mutex<Option<LogIdOf<TypeConfig>>>>,
    /// The group's log (see `after_log`); weak, so a state machine kept by
    /// a finishing task never keeps a stopped node's WAL open.
    log: Option<std::sync::Weak<Wal>>,
    /// The replica this state machine belongs to (see `owned_by`).
    owner: Option<u64>,
    /// `Inner::slots` for readers that must not wait on the lock
    /// (`Replicas::owns`, asked around every keyed read). Changed under
    /// the lock, before the keys leave the keyspace.
    slots: Arc<AtomicU32>,
    /// Woken after every batch of applied entries: blocked pops on the
    /// leader look again at their keys.
    applied: Arc<tokio::sync::Notify>,
    /// Where a split's new group is written (see `births`); `None`: splits
    /// leave no new group here (in-memory tests).
    births: Option<Arc<births::Births>>,
    /// The length of the last snapshot built here (`snapshot_bytes`).
    last_snapshot_len: Arc<AtomicUsize>,
}

impl StateMachine {
    /// A state machine whose snapshots live in memory only.
    pub fn new(db: Arc<Db>) -> StateMachine {
        StateMachine {
            db,
            dir: None,
            inner: Arc::default(),
            persisted: Arc::default(),
            log: None,
            owner: None,
            slots: Arc::new(AtomicU32::new(ALL_SLOTS)),
            applied: Arc::default(),
            births: None,
            last_snapshot_len: Arc::default(),
        }
    }

    /// A state machine whose latest snapshot is persisted in `dir`. If one
    /// is there, the keyspace is rebuilt from it now, so Raft starts with
    /// everything up to the snapshot applied and re-applies only the log
    /// after it (which is all a purged log still holds).
    pub fn open(db: Arc<Db>, dir: &Path) -> io::Result<StateMachine> {
        std::fs::create_dir_all(dir)?;
        let mut inner = Inner::default();
        let mut persisted = None;
        let mut loaded_len = 0;
        if let Some((meta, data)) = snapshot_file::load(dir)? {
            persisted = meta.last_log_id;
            loaded_len = data.len();
            let (sessions, slots, dump) = split_snapshot(&data)?;
            db.replace(dump, 0).map_err(io_err)?;
            inner.sessions = sessions;
            inner.slots = slots;
            inner.last_applied = meta.last_log_id;
            inner.membership = meta.last_membership.clone();
            inner.snapshot = Some((meta, None));
        }
        Ok(StateMachine {
            db,
            dir: Some(Arc::new(dir.to_path_buf())),
            slots: Arc::new(AtomicU32::new(inner.slots)),
            applied: Arc::default(),
            inner: Arc::new(tokio::sync::Mutex::new(inner)),
            persisted: Arc::new(Mutex::new(persisted)),
            log: None,
            owner: None,
            births: None,
            last_snapshot_len: Arc::new(AtomicUsize::new(loaded_len)),
        })
    }

    /// Orders snapshot installs after the group's log writes in `wal`.
    /// Installing a snapshot, openraft first truncates a conflicting log
    /// tail (a queued, unawaited WAL record) and then installs: were the
    /// snapshot durable and the truncation not, a crash would leave an
    /// older term's entries past the snapshot, and openraft refuses to
    /// start on such a log ("inverted log order").
    pub fn after_log(mut self, wal: Arc<Wal>) -> StateMachine {
        self.log = Some(Arc::downgrade(&wal));
        self
    }

    /// The replica (Raft id) this state machine belongs to: a snapshot is
    /// saved only while the directory's `REPLICA_ID_FILE` still names it. A
    /// build still running when its group was closed must not land in the
    /// directory of a new replica of the same group opened since.
    pub fn owned_by(mut self, replica: u64) -> StateMachine {
        self.owner = Some(replica);
        self
    }

    /// Writes the new groups of splits under `births` (see the module doc).
    pub(crate) fn with_births(mut self, births: Arc<births::Births>) -> StateMachine {
        self.births = Some(births);
        self
    }

    /// The client sessions as applied here, encoded.
    pub(crate) async fn encoded_sessions(&self) -> Vec<u8> {
        self.inner.lock().await.sessions.encode()
    }

    /// Notified after every batch of applied entries.
    pub(crate) fn applied(&self) -> Arc<tokio::sync::Notify> {
        Arc::clone(&self.applied)
    }

    /// The shard's slots as applied here, packed (`ALL_SLOTS`: never split).
    pub(crate) fn slots(&self) -> Arc<AtomicU32> {
        Arc::clone(&self.slots)
    }

    /// Waits until every log write queued so far is durable.
    async fn log_durable(&self) -> io::Result<()> {
        let Some(wal) = self.log.as_ref().and_then(std::sync::Weak::upgrade) else { return Ok(()) };
        crate::log_store::durable_on(&wal, Vec::new()).await
    }

    /// Makes a snapshot durable before Raft may purge the log behind it,
    /// unless a newer one is already on disk (which covers that log too).
    fn persist(&self, meta: &SnapshotMetaOf<TypeConfig>, data: &[u8]) -> io::Result<()> {
        let Some(dir) = &self.dir else { return Ok(()) };
        if let Some(owner) = self.owner {
            let named = std::fs::read_to_string(dir.join(REPLICA_ID_FILE)).ok();
            if named.as_deref().map(str::trim) != Some(owner.to_string().as_str()) {
                return Err(io_err(format!("{} no longer belongs to replica {owner}", dir.display())));
            }
        }
        let mut persisted = self.persisted.lock().unwrap();
        if *persisted > meta.last_log_id {
            return Ok(());
        }
        snapshot_file::save(dir, meta, data)?;
        *persisted = meta.last_log_id;
        Ok(())
    }

    pub fn db(&self) -> &Arc<Db> {
        &self.db
    }

    fn apply_write(&self, slots: u32, op: &[u8], now_ms: u64, index: u64) -> Reply {
        // Every key this entry changes gets its index as version (WATCH).
        self.db.set_stamp(index);
        match WriteOp::decode(op) {
            // Sealed: not even a keyless write (FLUSHALL) may change keys
            // on their way to the shard that merges them.
            Ok(_) if slots == SEALED => Reply::NotOwned,
            Ok(op) if slots != ALL_SLOTS && !op.all_keys(|k| holds(slots, shoal_engine::slot::key_slot(k))) => {
                Reply::NotOwned
            }
            Ok(op) => self.db.apply(op, now_ms).into(),
            // Every replica fails the same way on the same bytes, so this is
            // deterministic; the client gets an error instead of a hang.
            Err(e) => Reply::Error(e.to_string()),
        }
    }

    /// Applies a split entry (see `SplitSpec`): the new group's replica on
    /// this node is written to disk first, from the right-hand keys as they
    /// are (a failure, say a full disk, stops the group with the shard
    /// unchanged); then the slots shrink (so a reader that checks them
    /// around a read never misses a key that left) and the keys leave.
    fn apply_split(&self, inner: &mut Inner, spec: &SplitSpec) -> io::Result<Reply> {
        let claimed = pack(spec.start, spec.end);
        let current = if inner.slots == ALL_SLOTS { claimed } else { inner.slots };
        if current != claimed || !(spec.start < spec.at && spec.at <= spec.end) {
            let (start, end) = (current >> 16, current & 0xffff);
            return Ok(Reply::Error(format!(
                "split refused: the shard holds slots {start}..={end}, the split named {}..={} at {}",
                spec.start, spec.end, spec.at
            )));
        }
        let _applying = self.births.as_ref().map(|b| b.lock());
        if let (Some(births), Some(owner)) = (&self.births, self.owner) {
            let right = spec.at..=spec.end;
            births.create(spec, owner, &inner.sessions, || self.db.dump_slots(|s| right.contains(&s), 0))?;
        }
        inner.slots = pack(spec.start, spec.at - 1);
        self.slots.store(inner.slots, Ordering::SeqCst);
        drop(self.db.split_off(spec.at..=spec.end));
        Ok(Reply::Done)
    }

    /// The shard's slots as a change names them: unknown ones (never
    /// split) are taken to be the ones named.
    fn current_slots(inner: &Inner, start: u16, end: u16) -> u32 {
        if inner.slots == ALL_SLOTS {
            pack(start, end)
        } else {
            inner.slots
        }
    }

    fn set_slots(&self, inner: &mut Inner, packed: u32) {
        inner.slots = packed;
        self.slots.store(packed, Ordering::SeqCst);
    }

    fn apply_seal(&self, inner: &mut Inner, start: u16, end: u16) -> Reply {
        match Self::current_slots(inner, start, end) {
            SEALED => Reply::Done,
            current if current == pack(start, end) => {
                self.set_slots(inner, SEALED);
                Reply::Done
            }
            current => refused("seal", current, start, end),
        }
    }

    fn apply_unseal(&self, inner: &mut Inner, start: u16, end: u16) -> Reply {
        match Self::current_slots(inner, start, end) {
            SEALED => {
                self.set_slots(inner, pack(start, end));
                Reply::Done
            }
            current if current == pack(start, end) => Reply::Done,
            current => refused("unseal", current, start, end),
        }
    }

    /// Applies a merge (see `AbsorbSpec`): the keys arrive, then the slots
    /// grow (a reader never sees the slots before the keys).
    fn apply_absorb(&self, inner: &mut Inner, spec: &crate::AbsorbSpec) -> Reply {
        let current = Self::current_slots(inner, spec.start, spec.end);
        if current != pack(spec.start, spec.end) || spec.right_end <= spec.end {
            return refused("merge", current, spec.start, spec.end);
        }
        let sessions = match Sessions::decode(&spec.sessions) {
            Ok(sessions) => sessions,
            Err(e) => return Reply::Error(format!("merge refused: the sessions do not decode: {e}")),
        };
        if let Err(e) = self.db.restore(&spec.dump, 0) {
            // Checked before anything was restored: nothing changed.
            return Reply::Error(format!("merge refused: {e}"));
        }
        inner.sessions.absorb(sessions);
        self.set_slots(inner, pack(spec.start, spec.right_end));
        Reply::Done
    }
}

/// A shard change refused because the shard's slots are not those named.
fn refused(what: &str, current: u32, start: u16, end: u16) -> Reply {
    let held = match current {
        SEALED => "none (sealed)".to_string(),
        c => format!("{}..={}", c >> 16, c & 0xffff),
    };
    Reply::Error(format!("{what} refused: the shard holds slots {held}, the change named {start}..={end}"))
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotData = Bytes;
    type SnapshotBuilder = StateMachine;

    async fn applied_state(&mut self) -> io::Result<(Option<LogIdOf<TypeConfig>>, StoredMembershipOf<TypeConfig>)> {
        let inner = self.inner.lock().await;
        Ok((inner.last_applied, inner.membership.clone()))
    }

    async fn apply<S>(&mut self, mut entries: S) -> io::Result<()>
    where
        S: Stream<Item = io::Result<EntryResponder<TypeConfig>>> + Unpin + openraft::OptionalSend,
    {
        while let Some(item) = entries.next().await {
            let (entry, responder) = item?;
            let reply = {
                let mut inner = self.inner.lock().await;
                inner.last_applied = Some(entry.log_id);
                let slots = inner.slots;
                match &entry.payload {
                    EntryPayload::Blank => Reply::Done,
                    EntryPayload::Normal(proposal) => match (&proposal.cmd, proposal.tag) {
                        (cmd @ (Cmd::Split(_) | Cmd::Absorb(_)), _) => {
                            // Moving keys (and writing a new group's state)
                            // take a while: on a blocking thread.
                            let (this, cmd) = (self.clone(), cmd.clone());
                            let mut owned = std::mem::take(&mut *inner);
                            let (reply, owned) = tokio::task::spawn_blocking(move || {
                                let reply = match &cmd {
                                    Cmd::Split(spec) => this.apply_split(&mut owned, spec),
                                    Cmd::Absorb(spec) => Ok(this.apply_absorb(&mut owned, spec)),
                                    _ => unreachable!("matched above"),
                                };
                                (reply, owned)
                            })
                            .await
                            .map_err(io_err)?;
                            *inner = owned;
                            reply?
                        }
                        (Cmd::Seal { start, end }, _) => self.apply_seal(&mut inner, *start, *end),
                        (Cmd::Unseal { start, end }, _) => self.apply_unseal(&mut inner, *start, *end),
                        (Cmd::Write(op), None) => self.apply_write(slots, op, proposal.now_ms, entry.log_id.index),
                        (Cmd::Write(op), Some(tag)) => match inner.sessions.replay(tag) {
                            Some(reply) => reply,
                            None => {
                                let reply = self.apply_write(slots, op, proposal.now_ms, entry.log_id.index);
                                // A refused write was not applied: a retry
                                // routed to the right shard must run.
                                if reply != Reply::NotOwned {
                                    inner.sessions.record(tag, entry.log_id.index, &reply);
                                }
                                reply
                            }
                        },
                    },
                    EntryPayload::Membership(m) => {
                        inner.membership = StoredMembership::new(Some(entry.log_id), m.clone());
                        Reply::Done
                    }
                }
            };
            // Always answer: an unanswered responder surfaces to the
            // proposer as a fatal error after a timeout.
            if let Some(responder) = responder {
                responder.send(reply);
            }
        }
        self.applied.notify_waiters();
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMetaOf<TypeConfig>,
        snapshot: Self::SnapshotData,
    ) -> io::Result<()> {
        self.log_durable().await?;
        // Decoding and swapping in a large keyspace, then writing and
        // fsyncing its snapshot, take seconds: on a blocking thread, not on
        // the runtime every group's Raft core shares.
        let this = self.clone();
        let meta = meta.clone();
        tokio::task::spawn_blocking(move || {
            let mut inner = this.inner.blocking_lock();
            // Replace, not merge: keys deleted on the leader must go here
            // too. `replace` checks the whole snapshot first and swaps
            // atomically, so a bad one leaves the keyspace as it was and
            // readers never see a half-installed one.
            let (sessions, slots, dump) = split_snapshot(&snapshot)?;
            this.db.replace(dump, 0).map_err(io_err)?;
            this.persist(&meta, &snapshot)?;
            inner.sessions = sessions;
            inner.slots = slots;
            this.slots.store(slots, Ordering::SeqCst);
            inner.last_applied = meta.last_log_id;
            inner.membership = meta.last_membership.clone();
            inner.snapshot = Some((meta, this.dir.is_none().then_some(snapshot)));
            Ok(())
        })
        .await
        .map_err(io_err)?
    }

    async fn get_current_snapshot(&mut self) -> io::Result<Option<Snapshot>> {
        let inner = self.inner.lock().await;
        match &inner.snapshot {
            None => Ok(None),
            Some((meta, Some(data))) => Ok(Some(Snapshot { meta: meta.clone(), snapshot: data.clone() })),
            Some((_, None)) => {
                drop(inner);
                // The newest snapshot on disk: `persist` keeps none older
                // there than the one `inner` names.
                let dir = Arc::clone(self.dir.as_ref().expect("a snapshot without bytes lives on disk"));
                let loaded = tokio::task::spawn_blocking(move || snapshot_file::load(&dir)).await.map_err(io_err)??;
                let (meta, data) = loaded.ok_or_else(|| io_err("the snapshot file is gone"))?;
                Ok(Some(Snapshot { meta, snapshot: Bytes::from(data) }))
            }
        }
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    type SnapshotData = Bytes;

    async fn build_snapshot(&mut self) -> io::Result<Snapshot> {
        // Dumping a large keyspace and writing it take seconds: on a
        // blocking thread (see `inner`), not on the shared runtime.
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.build_blocking()).await.map_err(io_err)?
    }
}

impl StateMachine {
    fn build_blocking(&self) -> io::Result<Snapshot> {
        let (meta, data) = {
            let inner = self.inner.blocking_lock();
            let expected = self.last_snapshot_len.load(Ordering::Relaxed);
            let data = snapshot_bytes(&inner.sessions, inner.slots, &self.db, expected)?;
            self.last_snapshot_len.store(data.len(), Ordering::Relaxed);
            let data = Bytes::from(data);
            let last_membership = inner.membership.clone();
            (SnapshotMetaOf::<TypeConfig> { last_log_id: inner.last_applied, last_membership }, data)
        };
        // On disk (when a directory was given) before openraft learns of it,
        // since it may then purge the log the snapshot replaces; entries go
        // on being applied meanwhile.
        self.persist(&meta, &data)?;
        let mut inner = self.inner.blocking_lock();
        if inner.snapshot.as_ref().is_none_or(|(current, _)| current.last_log_id <= meta.last_log_id) {
            inner.snapshot = Some((meta.clone(), self.dir.is_none().then(|| data.clone())));
        }
        Ok(Snapshot { meta, snapshot: data })
    }
}

/// The file in a group's directory naming the replica (Raft id) its state
/// belongs to: state left by another replica of the group is never opened
/// as this one's, nor written into by it.
pub(crate) const REPLICA_ID_FILE: &str = "raft-id";

/// Replaces `dir/name` with `parts`, atomically: a temporary file, fsync,
/// rename, fsync of the directory. A crash leaves the old file or the new.
pub(crate) fn write_atomically(dir: &std::path::Path, name: &str, parts: &[&[u8]]) -> io::Result<()> {
    use std::io::Write;
    let tmp = dir.join(format!("{name}.tmp"));
    let mut file = std::fs::File::create(&tmp)?;
    for part in parts {
        file.write_all(part)?;
    }
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, dir.join(name))?;
    std::fs::File::open(dir)?.sync_all()
}

/// The snapshot file: `meta length u32 BE | meta (JSON) | Db::dump bytes`,
/// replaced atomically (temporary file, fsync, rename, fsync directory).
/// The dump carries its own checksum, checked by `Db::replace`.
pub(crate) mod snapshot_file {
    use std::fs;
    use std::io;
    use std::path::Path;

    use openraft::type_config::alias::SnapshotMetaOf;

    use crate::{io_err, TypeConfig};

    const NAME: &str = "snapshot";

    pub fn save(dir: &Path, meta: &SnapshotMetaOf<TypeConfig>, data: &[u8]) -> io::Result<()> {
        let meta = serde_json::to_vec(meta).map_err(io_err)?;
        let len = u32::try_from(meta.len()).map_err(io_err)?;
        super::write_atomically(dir, NAME, &[&len.to_be_bytes(), &meta, data])
    }

    pub fn load(dir: &Path) -> io::Result<Option<(SnapshotMetaOf<TypeConfig>, Vec<u8>)>> {
        let bytes = match fs::read(dir.join(NAME)) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let (len, rest) = bytes.split_first_chunk::<4>().ok_or_else(|| io_err("snapshot file is truncated"))?;
        let len = u32::from_be_bytes(*len) as usize;
        if len > rest.len() {
            return Err(io_err("snapshot file is truncated"));
        }
        let meta = serde_json::from_slice(&rest[..len]).map_err(io_err)?;
        // In place: a snapshot as large as the keyspace is not copied.
        let mut data = bytes;
        data.drain(..4 + len);
        Ok(Some((meta, data)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(index: u64) -> SnapshotMetaOf<TypeConfig> {
        let leader = openraft::vote::leader_id_adv::LeaderId { term: 1, node_id: 1 };
        SnapshotMetaOf::<TypeConfig> {
            last_log_id: Some(LogIdOf::<TypeConfig>::new(leader, index)),
            last_membership: Default::default(),
        }
    }

    /// A peer's snapshot is checked before it is installed: garbage and a
    /// damaged dump are refused, a real one passes.
    #[test]
    fn check_snapshot_refuses_damage() {
        let db = Db::new();
        db.apply(WriteOp::Set { key: "k".into(), value: "v".into(), options: Default::default() }, 0);
        let good = snapshot_bytes(&Sessions::default(), ALL_SLOTS, &db, 0).unwrap();
        assert!(check_snapshot(&good).is_ok());
        assert!(check_snapshot(b"garbage").is_err());
        let mut damaged = good.clone();
        let last = damaged.len() - 6;
        damaged[last] ^= 1;
        assert!(check_snapshot(&damaged).is_err());
    }

    /// A snapshot on disk is not kept in memory too: the state machine
    /// remembers its meta, and a follower that needs it gets the file's
    /// bytes, equal to what was built.
    #[test]
    fn a_persisted_snapshot_is_read_back_from_disk() {
        let dir = std::env::temp_dir().join(format!("shoal-sm-disk-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let db = Arc::new(Db::new());
        db.apply(WriteOp::Set { key: "k".into(), value: "v".into(), options: Default::default() }, 0);
        let mut sm = StateMachine::open(Arc::clone(&db), &dir).unwrap();
        let built = sm.build_blocking().unwrap();
        assert!(matches!(sm.inner.blocking_lock().snapshot, Some((_, None))), "bytes stay on disk only");
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let current = runtime.block_on(sm.get_current_snapshot()).unwrap().expect("a snapshot");
        assert_eq!(current.meta, built.meta);
        assert_eq!(current.snapshot, built.snapshot);
        // And a state machine opened on the directory starts from it.
        let reopened = StateMachine::open(Arc::new(Db::new()), &dir).unwrap();
        assert_eq!(reopened.db.get(b"k", 0).as_deref(), Some(&b"v"[..]));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A snapshot built before a newer one was installed may reach the disk
    /// after it (it is written outside the state machine's lock): it must
    /// not replace the newer one, or a restart would miss entries the log no
    /// longer holds.
    #[test]
    fn an_older_snapshot_never_replaces_a_newer_one_on_disk() {
        let dir = std::env::temp_dir().join(format!("shoal-sm-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let sm = StateMachine::open(Arc::new(Db::new()), &dir).unwrap();
        sm.persist(&meta(10), b"ten").unwrap();
        sm.persist(&meta(5), b"five").unwrap();
        let (on_disk, data) = snapshot_file::load(&dir).unwrap().unwrap();
        assert_eq!((on_disk.last_log_id, data.as_slice()), (meta(10).last_log_id, &b"ten"[..]));
        sm.persist(&meta(12), b"twelve").unwrap();
        assert_eq!(snapshot_file::load(&dir).unwrap().unwrap().1, b"twelve");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
