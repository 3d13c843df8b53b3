//! The writer thread and group commit.
//!
//! Appenders queue records with a completion callback; the one writer
//! thread takes everything queued (up to `max_batch_bytes`), writes it to
//! the current segment with one `write`, makes it durable per the
//! [`FsyncPolicy`] with one fsync, and then runs every callback. Many
//! groups' appends thus share one fsync. A failed write or fsync fails
//! that batch and every later append: after a failed fsync the kernel may
//! have dropped the dirty pages, so nothing written since can be trusted.
//!
//! A segment that reaches `segment_bytes` is closed and a new one started
//! with a checkpoint (every group's latest vote and purge point), so a
//! prefix of old segments can be deleted once every entry in it is purged.
//!
//! [`Wal::crash`] stops the writer the way a power cut would: queued appends
//! are neither written nor answered, a batch written but not yet fsynced is
//! not answered, and it reports how much of the newest segment was fsynced,
//! so a test can cut the rest off (what the page cache held is lost).
//!
//! Why a thread and not a task: fsync blocks for milliseconds and must not
//! stall an async runtime's workers; one dedicated thread is also what
//! makes the batching natural.

use std::collections::{HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::record::{GroupId, Record, MAX_BODY_BYTES};
use crate::recover::Recovered;
use crate::segment::{self, segment_path};
use crate::WalError;

/// When an append counts as done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// After fsync: an acknowledged append survives a machine crash.
    Always,
    /// After the write; fsync at most a second later. A machine crash can
    /// lose the last second; a process crash loses nothing.
    EverySec,
    /// After the write; fsync only on segment rotation and close. A machine
    /// crash can lose everything since the last rotation.
    Never,
}

#[derive(Debug, Clone, Copy)]
pub struct WalOptions {
    pub fsync: FsyncPolicy,
    /// A segment is rotated once it holds this many bytes.
    pub segment_bytes: u64,
    /// Most bytes written by one batch.
    pub max_batch_bytes: usize,
    /// Appends queued before `append` blocks.
    pub queue_depth: usize,
    /// Fault injection for tests: a slow disk. Each batch waits this long
    /// between its write and its fsync, which widens the window in which a
    /// `Wal::crash` finds bytes written but not yet durable. Zero outside
    /// tests.
    pub fsync_delay: Duration,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            fsync: FsyncPolicy::Always,
            segment_bytes: 64 << 20,
            max_batch_bytes: 8 << 20,
            queue_depth: 4096,
            fsync_delay: Duration::ZERO,
        }
    }
}

/// Counters: `batches` is the number of group commits, so
/// `appends / batches` is the average batch size.
#[derive(Debug, Default)]
pub struct WalStats {
    pub appends: AtomicU64,
    pub records: AtomicU64,
    pub batches: AtomicU64,
    pub fsyncs: AtomicU64,
    pub bytes: AtomicU64,
    pub segments_deleted: AtomicU64,
}

type Done = Box<dyn FnOnce(io::Result<()>) + Send>;

enum Request {
    Append(Append),
    Stop,
}

/// What keeps the oldest segment on disk: the groups with entries in it
/// that are not purged yet, and each one's highest entry index there. Such
/// a group (an idle one, say, that never snapshots) holds every later
/// segment too, since segments are deleted oldest first; compacting it
/// (snapshot, then purge up to `upto`) lets them go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pins {
    /// Segments on disk, the one being written included.
    pub segments: usize,
    /// `(group, upto)`: purging the group up to WAL index `upto` unpins the
    /// oldest closed segment. Empty when only the current segment exists.
    pub oldest: Vec<(GroupId, u64)>,
}

/// An append refused by a full queue (`Wal::try_append`), to be queued
/// with `Wal::append_queued`.
pub struct QueuedAppend(Request);

/// Why `Wal::try_append` did not queue.
pub enum TryAppendError {
    /// The queue is full: the append comes back.
    Full(QueuedAppend),
    TooLarge {
        bytes: usize,
    },
    Stopped,
}

impl TryAppendError {
    /// The error, for the two outcomes that are final.
    fn into_wal_error(self) -> WalError {
        match self {
            TryAppendError::Full(_) => unreachable!("a full queue is waited on, not reported"),
            TryAppendError::TooLarge { bytes } => WalError::TooLarge { bytes },
            TryAppendError::Stopped => WalError::Stopped,
        }
    }
}

/// One append: its records, and `done` to run once they are written (and
/// fsynced per the policy, or whatever it is when `fsync`).
struct Append {
    records: Vec<Record>,
    fsync: bool,
    done: Done,
}

/// A handle to the log. Dropping it stops the writer after it has written
/// everything queued.
pub struct Wal {
    requests: SyncSender<Request>,
    stats: Arc<WalStats>,
    /// Taken by whoever stops the writer first (`crash` or drop). A std
    /// Mutex: only locked to take the handle.
    thread: Mutex<Option<JoinHandle<()>>>,
    crash: Arc<Crash>,
}

/// Shared between the handle and the writer thread: a crash request, what
/// is durable, and a failure.
#[derive(Default)]
struct Crash {
    /// Set by `Wal::crash`: the writer stops at once.
    now: AtomicBool,
    /// The newest segment and how many of its bytes were fsynced.
    segment: AtomicU64,
    synced_len: AtomicU64,
    /// Why the log failed, once it has.
    failure: std::sync::OnceLock<String>,
    /// Published by the writer whenever segments or purge points change.
    pins: Mutex<Pins>,
}

/// What a crash left durable: the newest segment's bytes past `synced_len`
/// were written but never fsynced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrashPoint {
    pub segment: u64,
    pub synced_len: u64,
}

impl Wal {
    /// Replays `dir` (created if missing), cuts a torn tail, and starts the
    /// writer on a fresh segment.
    pub fn open(dir: &Path, options: WalOptions) -> Result<(Wal, Recovered), WalError> {
        std::fs::create_dir_all(dir)?;
        let sequences = segment::list(dir)?;
        let mut recovered = Recovered::default();
        let mut closed = VecDeque::new();
        for (i, &sequence) in sequences.iter().enumerate() {
            let path = segment_path(dir, sequence);
            let contents = segment::read(&path)?;
            if contents.torn {
                let is_last = i + 1 == sequences.len();
                if !is_last {
                    return Err(WalError::Corrupt {
                        segment: path.display().to_string(),
                        offset: contents.valid_len,
                        reason: "torn record in a segment that is not the newest".into(),
                    });
                }
                let file_len = std::fs::metadata(&path)?.len();
                recovered.torn_bytes = file_len - contents.valid_len;
                tracing::warn!(segment = %path.display(), bytes = recovered.torn_bytes, "cutting a torn wal tail");
                segment::truncate_to(&path, contents.valid_len)?;
            }
            let mut info = SegmentInfo { sequence, max_index: HashMap::new() };
            for record in &contents.records {
                if let Record::Drop { group } = record {
                    closed.iter_mut().for_each(|c: &mut SegmentInfo| c.forget(*group));
                }
                info.note(record);
                recovered.apply(record);
            }
            closed.push_back(info);
        }
        let next = sequences.last().map_or(1, |s| s + 1);
        let stats = Arc::new(WalStats::default());
        let crash = Arc::new(Crash::default());
        let mut writer = Writer::start(
            dir.to_path_buf(),
            options,
            next,
            closed,
            &recovered,
            Arc::clone(&stats),
            Arc::clone(&crash),
        )?;
        writer.delete_purged_segments();
        let (requests, queue) = mpsc::sync_channel(options.queue_depth);
        let thread = std::thread::Builder::new().name("shoal-wal".into()).spawn(move || writer.run(queue))?;
        Ok((Wal { requests, stats, thread: Mutex::new(Some(thread)), crash }, recovered))
    }

    /// Queues records; `done` runs on the writer thread once they are
    /// durable (per the policy) or failed. Blocks while the queue is full.
    /// A record over `MAX_BODY_BYTES` is refused here, before anything is
    /// queued: the writer must never meet one.
    pub fn append(
        &self,
        records: Vec<Record>,
        done: impl FnOnce(io::Result<()>) + Send + 'static,
    ) -> Result<(), WalError> {
        self.send(records, false, Box::new(done))
    }

    /// `append`, fsynced before `done` runs under every policy: for what a
    /// power cut must never take back, such as a Raft vote (a node that
    /// forgets its vote can vote twice in one term) or a log truncation.
    pub fn append_fsynced(
        &self,
        records: Vec<Record>,
        done: impl FnOnce(io::Result<()>) + Send + 'static,
    ) -> Result<(), WalError> {
        self.send(records, true, Box::new(done))
    }

    fn send(&self, records: Vec<Record>, fsync: bool, done: Done) -> Result<(), WalError> {
        match self.try_send(records, fsync, done) {
            Err(TryAppendError::Full(queued)) => self.append_queued(queued),
            other => other.map_err(TryAppendError::into_wal_error),
        }
    }

    /// `append` (`fsync`: `append_fsynced`) without blocking: a full queue
    /// hands the append back, for the caller to wait on elsewhere
    /// (`append_queued` on a thread that may block).
    pub fn try_append(
        &self,
        records: Vec<Record>,
        fsync: bool,
        done: impl FnOnce(io::Result<()>) + Send + 'static,
    ) -> Result<(), TryAppendError> {
        self.try_send(records, fsync, Box::new(done))
    }

    /// Queues an append `try_append` handed back, blocking while the queue
    /// is full.
    pub fn append_queued(&self, queued: QueuedAppend) -> Result<(), WalError> {
        self.requests.send(queued.0).map_err(|_| WalError::Stopped)
    }

    fn try_send(&self, records: Vec<Record>, fsync: bool, done: Done) -> Result<(), TryAppendError> {
        if let Some(bytes) = records.iter().map(Record::body_len).find(|&n| n > MAX_BODY_BYTES as usize) {
            return Err(TryAppendError::TooLarge { bytes });
        }
        match self.requests.try_send(Request::Append(Append { records, fsync, done })) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(request)) => Err(TryAppendError::Full(QueuedAppend(request))),
            Err(TrySendError::Disconnected(_)) => Err(TryAppendError::Stopped),
        }
    }

    /// `append`, waiting for the outcome (tests and simple callers).
    pub fn append_sync(&self, records: Vec<Record>) -> Result<(), WalError> {
        let (tx, rx) = mpsc::channel();
        self.append(records, move |r| {
            let _ = tx.send(r);
        })?;
        rx.recv().map_err(|_| WalError::Stopped)?.map_err(WalError::Io)
    }

    /// Why the log stopped taking appends, once a write, fsync or rotation
    /// failed. A node should stop then: every later append fails.
    pub fn failure(&self) -> Option<&str> {
        self.crash.failure.get().map(String::as_str)
    }

    /// Which groups keep the oldest segment on disk (see [`Pins`]).
    pub fn pins(&self) -> Pins {
        self.crash.pins.lock().expect("pins lock").clone()
    }

    pub fn stats(&self) -> &WalStats {
        &self.stats
    }

    /// Stops the writer as a power cut would (see the module doc) and says
    /// how much of the newest segment is durable. Appends after this fail.
    pub fn crash(&self) -> CrashPoint {
        self.crash.now.store(true, Ordering::SeqCst);
        self.stop_writer();
        CrashPoint {
            segment: self.crash.segment.load(Ordering::SeqCst),
            synced_len: self.crash.synced_len.load(Ordering::SeqCst),
        }
    }

    fn stop_writer(&self) {
        let Some(thread) = self.thread.lock().expect("wal thread lock").take() else { return };
        // Queued appends are written first (unless crashing): Stop is
        // behind them.
        match self.requests.try_send(Request::Stop) {
            Ok(()) | Err(TrySendError::Disconnected(_)) => {}
            Err(TrySendError::Full(stop)) => {
                let _ = self.requests.send(stop);
            }
        }
        let _ = thread.join();
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        self.stop_writer();
    }
}

/// What a segment holds, for deciding when it may be deleted.
struct SegmentInfo {
    sequence: u64,
    /// Highest entry index per group in this segment.
    max_index: HashMap<GroupId, u64>,
}

impl SegmentInfo {
    fn note(&mut self, record: &Record) {
        match record {
            Record::Entry { group, index, .. } => {
                let max = self.max_index.entry(*group).or_insert(0);
                *max = (*max).max(*index);
            }
            Record::Drop { group } => self.forget(*group),
            Record::Vote { .. } | Record::Truncate { .. } | Record::Purge { .. } => {}
        }
    }

    /// A dropped group's entries here keep the segment for nobody.
    fn forget(&mut self, group: GroupId) {
        self.max_index.remove(&group);
    }
}

struct Writer {
    dir: PathBuf,
    options: WalOptions,
    file: File,
    current: SegmentInfo,
    written: u64,
    /// The current segment is zero-filled up to here: writes below it
    /// overwrite zeros, so their fdatasync need not journal a size change
    /// (about a third cheaper on ext4 here; docs/replication.md).
    zeroed: u64,
    closed: VecDeque<SegmentInfo>,
    /// Latest vote and purge point per group, re-written at each rotation.
    votes: HashMap<GroupId, Bytes>,
    purged: HashMap<GroupId, u64>,
    stats: Arc<WalStats>,
    last_sync: Instant,
    unsynced: bool,
    crash: Arc<Crash>,
}

impl Writer {
    fn start(
        dir: PathBuf,
        options: WalOptions,
        sequence: u64,
        closed: VecDeque<SegmentInfo>,
        recovered: &Recovered,
        stats: Arc<WalStats>,
        crash: Arc<Crash>,
    ) -> io::Result<Writer> {
        let votes = recovered.groups.iter().filter_map(|(g, s)| Some((*g, s.vote.clone()?))).collect();
        let purged = recovered.groups.iter().filter(|(_, s)| s.purged > 0).map(|(g, s)| (*g, s.purged)).collect();
        let file = create_segment(&dir, sequence)?;
        let mut writer = Writer {
            dir,
            options,
            file,
            current: SegmentInfo { sequence, max_index: HashMap::new() },
            written: 0,
            zeroed: 0,
            closed,
            votes,
            purged,
            stats,
            last_sync: Instant::now(),
            unsynced: false,
            crash,
        };
        writer.write_checkpoint()?;
        Ok(writer)
    }

    fn crashed(&self) -> bool {
        self.crash.now.load(Ordering::SeqCst)
    }

    /// Records that the current segment is durable up to `written`.
    fn synced(&self) {
        self.crash.segment.store(self.current.sequence, Ordering::SeqCst);
        self.crash.synced_len.store(self.written, Ordering::SeqCst);
    }

    fn run(mut self, queue: Receiver<Request>) {
        let idle = Duration::from_millis(200);
        loop {
            if self.crashed() {
                // A power cut: nothing more is written, synced or answered.
                return;
            }
            let first = match queue.recv_timeout(idle) {
                Ok(request) => request,
                Err(RecvTimeoutError::Timeout) => {
                    self.sync_if_due();
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let mut batch = Vec::new();
            let mut stop = false;
            let mut bytes = 0usize;
            let mut next = Some(first);
            while let Some(request) = next.take() {
                match request {
                    Request::Stop => stop = true,
                    Request::Append(append) => {
                        bytes += append.records.iter().map(approximate_size).sum::<usize>();
                        batch.push(append);
                        if bytes < self.options.max_batch_bytes {
                            next = queue.try_recv().ok();
                        }
                    }
                }
            }
            self.commit(batch);
            if stop {
                break;
            }
        }
        if self.crashed() {
            return;
        }
        let _ = self.sync();
        // A clean close leaves no zero padding behind the last record.
        let _ = self.file.set_len(self.written);
    }

    /// Writes a batch, makes it durable per policy, and answers every
    /// appender.
    fn commit(&mut self, batch: Vec<Append>) {
        if batch.is_empty() {
            return;
        }
        let purged =
            batch.iter().flat_map(|a| &a.records).any(|r| matches!(r, Record::Purge { .. } | Record::Drop { .. }));
        let outcome = match self.crash.failure.get() {
            Some(reason) => Err(reason.clone()),
            None => self.write_batch(&batch).map_err(|e| self.fail(format!("wal write failed: {e}"))),
        };
        if self.crashed() {
            // Written, perhaps not fsynced: a crashed process answers no one.
            return;
        }
        self.stats.batches.fetch_add(1, Ordering::Relaxed);
        self.stats.appends.fetch_add(batch.len() as u64, Ordering::Relaxed);
        for append in batch {
            (append.done)(outcome.clone().map_err(io::Error::other));
        }
        if outcome.is_ok() && self.written >= self.options.segment_bytes {
            if let Err(e) = self.rotate() {
                self.fail(format!("wal rotation failed: {e}"));
            }
        } else if outcome.is_ok() && purged {
            // A purge may have freed the oldest segments: delete them now
            // rather than at the next rotation (an idle node rotates never).
            self.delete_purged_segments();
        }
    }

    fn write_batch(&mut self, batch: &[Append]) -> io::Result<()> {
        let mut buf = BytesMut::new();
        let mut records = 0u64;
        for record in batch.iter().flat_map(|append| &append.records) {
            record.encode(&mut buf);
            self.remember(record);
            records += 1;
        }
        self.put(&buf)?;
        self.unsynced = true;
        self.stats.records.fetch_add(records, Ordering::Relaxed);
        self.stats.bytes.fetch_add(buf.len() as u64, Ordering::Relaxed);
        if !self.options.fsync_delay.is_zero() {
            std::thread::sleep(self.options.fsync_delay);
        }
        if self.crashed() {
            return Ok(());
        }
        if batch.iter().any(|append| append.fsync) {
            return self.sync();
        }
        match self.options.fsync {
            FsyncPolicy::Always => self.sync(),
            FsyncPolicy::EverySec => {
                self.sync_if_due();
                Ok(())
            }
            FsyncPolicy::Never => Ok(()),
        }
    }

    /// Fails the log for good: after a failed write or fsync nothing
    /// written since can be trusted. Returns the reason every later append
    /// gets; `Wal::failure` reports it to whoever must stop the node.
    fn fail(&mut self, reason: String) -> String {
        tracing::error!("{reason}; refusing further appends");
        let _ = self.crash.failure.set(reason.clone());
        reason
    }

    fn remember(&mut self, record: &Record) {
        self.current.note(record);
        match record {
            Record::Vote { group, payload } => {
                self.votes.insert(*group, payload.clone());
            }
            Record::Purge { group, upto } => {
                let purged = self.purged.entry(*group).or_insert(0);
                *purged = (*purged).max(*upto);
            }
            Record::Drop { group } => {
                // Checkpoints stop carrying the group, and its old entries
                // stop pinning the segments that hold them.
                self.votes.remove(group);
                self.purged.remove(group);
                self.closed.iter_mut().for_each(|c| c.forget(*group));
            }
            Record::Entry { .. } | Record::Truncate { .. } => {}
        }
    }

    fn sync(&mut self) -> io::Result<()> {
        if self.unsynced {
            self.file.sync_data()?;
            self.stats.fsyncs.fetch_add(1, Ordering::Relaxed);
            self.unsynced = false;
            self.synced();
        }
        self.last_sync = Instant::now();
        Ok(())
    }

    fn sync_if_due(&mut self) {
        if self.options.fsync == FsyncPolicy::EverySec && self.last_sync.elapsed() >= Duration::from_secs(1) {
            if let Err(e) = self.sync() {
                self.fail(format!("wal fsync failed: {e}"));
            }
        }
    }

    /// Closes the current segment and starts the next with a checkpoint.
    fn rotate(&mut self) -> io::Result<()> {
        self.sync()?;
        // The zeros past the last record are only padding: drop them.
        self.file.set_len(self.written)?;
        let sequence = self.current.sequence + 1;
        self.file = create_segment(&self.dir, sequence)?;
        let finished = std::mem::replace(&mut self.current, SegmentInfo { sequence, max_index: HashMap::new() });
        self.closed.push_back(finished);
        self.written = 0;
        self.zeroed = 0;
        self.write_checkpoint()?;
        self.delete_purged_segments();
        Ok(())
    }

    /// The segment header, then every group's latest vote and purge point,
    /// so older segments are not needed for them.
    fn write_checkpoint(&mut self) -> io::Result<()> {
        assert_eq!(self.written, 0, "a checkpoint starts a segment");
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&segment::header());
        for (group, payload) in &self.votes {
            Record::Vote { group: *group, payload: payload.clone() }.encode(&mut buf);
        }
        for (group, upto) in &self.purged {
            Record::Purge { group: *group, upto: *upto }.encode(&mut buf);
        }
        self.put(&buf)?;
        self.file.sync_data()?;
        self.synced();
        Ok(())
    }

    /// Writes `buf` at the end of the log, zero-filling ahead first when the
    /// write would pass the zeroed part (then fsyncing once, so the new size
    /// is durable and the writes into it are data-only).
    fn put(&mut self, buf: &[u8]) -> io::Result<()> {
        let end = self.written + buf.len() as u64;
        if end > self.zeroed {
            let chunk = PREALLOC_BYTES.min(self.options.segment_bytes.max(MIN_PREALLOC_BYTES));
            let target = end.max(self.zeroed + chunk);
            let zeros = vec![0u8; ZERO_WRITE_BYTES];
            let mut at = self.zeroed;
            while at < target {
                let n = (target - at).min(ZERO_WRITE_BYTES as u64) as usize;
                self.file.write_all_at(&zeros[..n], at)?;
                at += n as u64;
            }
            if self.options.fsync != FsyncPolicy::Never {
                self.file.sync_data()?;
            }
            self.zeroed = target;
        }
        self.file.write_all_at(buf, self.written)?;
        self.written = end;
        debug_assert!(self.written <= self.zeroed);
        Ok(())
    }

    /// Deletes the oldest closed segments whose every entry is purged.
    ///
    /// The purge records that free a segment are made durable first (under
    /// everysec or never they may not be yet): a segment deleted for a
    /// purge that a power cut then took back would leave a hole in the log.
    fn delete_purged_segments(&mut self) {
        let mut deleted = false;
        while let Some(oldest) = self.closed.front() {
            let obsolete =
                oldest.max_index.iter().all(|(group, max)| self.purged.get(group).is_some_and(|purged| max <= purged));
            if !obsolete {
                break;
            }
            let sequence = oldest.sequence;
            if let Err(e) = self.sync() {
                self.fail(format!("wal fsync failed: {e}"));
                break;
            }
            let path = segment_path(&self.dir, sequence);
            if let Err(e) = std::fs::remove_file(&path) {
                tracing::warn!(segment = %path.display(), error = %e, "could not delete a purged wal segment");
                break;
            }
            self.stats.segments_deleted.fetch_add(1, Ordering::Relaxed);
            self.closed.pop_front();
            deleted = true;
        }
        if deleted {
            let _ = segment::sync_dir(&self.dir);
        }
        self.publish_pins();
    }

    /// Recomputes what pins the oldest segment, for `Wal::pins`.
    fn publish_pins(&self) {
        let oldest = self.closed.front().map_or_else(Vec::new, |oldest| {
            let mut pinned: Vec<(GroupId, u64)> = oldest
                .max_index
                .iter()
                .filter(|(group, max)| self.purged.get(group).is_none_or(|purged| *max > purged))
                .map(|(group, max)| (*group, *max))
                .collect();
            pinned.sort_unstable();
            pinned
        });
        *self.crash.pins.lock().expect("pins lock") = Pins { segments: self.closed.len() + 1, oldest };
    }
}

fn create_segment(dir: &Path, sequence: u64) -> io::Result<File> {
    let file = OpenOptions::new().create_new(true).write(true).open(segment_path(dir, sequence))?;
    segment::sync_dir(dir)?;
    Ok(file)
}

/// Bytes zero-filled ahead of the log at a time.
const PREALLOC_BYTES: u64 = 4 << 20;
/// Least zero-fill (small test segments).
const MIN_PREALLOC_BYTES: u64 = 64 << 10;
/// Zeros written per call while filling.
const ZERO_WRITE_BYTES: usize = 64 << 10;

fn approximate_size(record: &Record) -> usize {
    32 + match record {
        Record::Entry { payload, .. } | Record::Vote { payload, .. } => payload.len(),
        _ => 0,
    }
}
