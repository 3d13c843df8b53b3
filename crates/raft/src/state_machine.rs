//! The group's state machine: committed proposals applied to the engine.
//!
//! The keyspace is the shared `Arc<Db>` that the server reads from directly;
//! this type only adds what Raft needs beside it: the last applied log id,
//! the membership, and the latest snapshot.
//!
//! Snapshots are `u32 BE length | Sessions::encode | Db::dump` bytes, the
//! dump taken and restored with `now = 0`, so they copy the keyspace exactly
//! (keys past their expiry but not yet swept included) and do not depend on
//! any node's clock; the sessions make retried tagged writes exactly-once
//! across snapshot installs too.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use openraft::storage::{EntryResponder, RaftStateMachine};
use openraft::type_config::alias::{LogIdOf, SnapshotMetaOf, SnapshotOf, StoredMembershipOf};
use openraft::{EntryPayload, RaftSnapshotBuilder, StoredMembership};
use shoal_engine::{Db, WriteOp};
use shoal_wal::Wal;

use crate::sessions::Sessions;
use crate::{io_err, Reply, TypeConfig};

type Snapshot = SnapshotOf<TypeConfig, Bytes>;

#[derive(Default)]
struct Inner {
    last_applied: Option<LogIdOf<TypeConfig>>,
    membership: StoredMembershipOf<TypeConfig>,
    sessions: Sessions,
    /// The latest snapshot's bytes: `Bytes`, so handing it to a follower's
    /// transfer shares it instead of copying it.
    snapshot: Option<(SnapshotMetaOf<TypeConfig>, Bytes)>,
}

/// A snapshot's bytes: the sessions, then the keyspace dump.
fn snapshot_bytes(sessions: &Sessions, db: &Db) -> io::Result<Vec<u8>> {
    let sessions = sessions.encode();
    let len = u32::try_from(sessions.len()).map_err(|_| io_err("client sessions over 4 GiB"))?;
    let dump = db.dump(0);
    let mut data = Vec::with_capacity(4 + sessions.len() + dump.len());
    data.extend_from_slice(&len.to_be_bytes());
    data.extend_from_slice(&sessions);
    data.extend_from_slice(&dump);
    Ok(data)
}

/// Checks a snapshot received from a peer before it is installed: a bad
/// one must be refused, not handed to openraft, which stops the group on
/// an install error. Reads the whole snapshot: call it off the runtime.
pub fn check_snapshot(data: &[u8]) -> io::Result<()> {
    let (_, dump) = split_snapshot(data)?;
    shoal_engine::snapshot::verify(dump).map(|_| ()).map_err(io_err)
}

/// Splits a snapshot into its sessions and its dump.
fn split_snapshot(data: &[u8]) -> io::Result<(Sessions, &[u8])> {
    let (len, rest) = data.split_first_chunk::<4>().ok_or_else(|| io_err("snapshot is truncated"))?;
    let len = u32::from_be_bytes(*len) as usize;
    if len > rest.len() {
        return Err(io_err("snapshot is truncated"));
    }
    let sessions = Sessions::decode(&rest[..len]).map_err(io_err)?;
    Ok((sessions, &rest[len..]))
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
}

impl StateMachine {
    /// A state machine whose snapshots live in memory only.
    pub fn new(db: Arc<Db>) -> StateMachine {
        StateMachine { db, dir: None, inner: Arc::default(), persisted: Arc::default(), log: None, owner: None }
    }

    /// A state machine whose latest snapshot is persisted in `dir`. If one
    /// is there, the keyspace is rebuilt from it now, so Raft starts with
    /// everything up to the snapshot applied and re-applies only the log
    /// after it (which is all a purged log still holds).
    pub fn open(db: Arc<Db>, dir: &Path) -> io::Result<StateMachine> {
        std::fs::create_dir_all(dir)?;
        let mut inner = Inner::default();
        let mut persisted = None;
        if let Some((meta, data)) = snapshot_file::load(dir)? {
            persisted = meta.last_log_id;
            let (sessions, dump) = split_snapshot(&data)?;
            db.replace(dump, 0).map_err(io_err)?;
            inner.sessions = sessions;
            inner.last_applied = meta.last_log_id;
            inner.membership = meta.last_membership.clone();
            inner.snapshot = Some((meta, Bytes::from(data)));
        }
        Ok(StateMachine {
            db,
            dir: Some(Arc::new(dir.to_path_buf())),
            inner: Arc::new(tokio::sync::Mutex::new(inner)),
            persisted: Arc::new(Mutex::new(persisted)),
            log: None,
            owner: None,
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

    fn apply_proposal(&self, proposal: &crate::Proposal) -> Reply {
        match WriteOp::decode(&proposal.op) {
            Ok(op) => self.db.apply(op, proposal.now_ms).into(),
            // Every replica fails the same way on the same bytes, so this is
            // deterministic; the client gets an error instead of a hang.
            Err(e) => Reply::Error(e.to_string()),
        }
    }
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
                match &entry.payload {
                    EntryPayload::Blank => Reply::Done,
                    EntryPayload::Normal(proposal) => match proposal.tag {
                        None => self.apply_proposal(proposal),
                        Some(tag) => match inner.sessions.replay(tag) {
                            Some(reply) => reply,
                            None => {
                                let reply = self.apply_proposal(proposal);
                                inner.sessions.record(tag, entry.log_id.index, &reply);
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
            let (sessions, dump) = split_snapshot(&snapshot)?;
            this.db.replace(dump, 0).map_err(io_err)?;
            this.persist(&meta, &snapshot)?;
            inner.sessions = sessions;
            inner.last_applied = meta.last_log_id;
            inner.membership = meta.last_membership.clone();
            inner.snapshot = Some((meta, snapshot));
            Ok(())
        })
        .await
        .map_err(io_err)?
    }

    async fn get_current_snapshot(&mut self) -> io::Result<Option<Snapshot>> {
        let inner = self.inner.lock().await;
        Ok(inner.snapshot.as_ref().map(|(meta, data)| Snapshot { meta: meta.clone(), snapshot: data.clone() }))
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
            let data = Bytes::from(snapshot_bytes(&inner.sessions, &self.db)?);
            let last_membership = inner.membership.clone();
            (SnapshotMetaOf::<TypeConfig> { last_log_id: inner.last_applied, last_membership }, data)
        };
        // On disk (when a directory was given) before openraft learns of it,
        // since it may then purge the log the snapshot replaces; entries go
        // on being applied meanwhile.
        self.persist(&meta, &data)?;
        let mut inner = self.inner.blocking_lock();
        if inner.snapshot.as_ref().is_none_or(|(current, _)| current.last_log_id <= meta.last_log_id) {
            inner.snapshot = Some((meta.clone(), data.clone()));
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
mod snapshot_file {
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
        Ok(Some((meta, rest[len..].to_vec())))
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
        let good = snapshot_bytes(&Sessions::default(), &db).unwrap();
        assert!(check_snapshot(&good).is_ok());
        assert!(check_snapshot(b"garbage").is_err());
        let mut damaged = good.clone();
        let last = damaged.len() - 6;
        damaged[last] ^= 1;
        assert!(check_snapshot(&damaged).is_err());
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
