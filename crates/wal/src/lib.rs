//! shoal's write-ahead log: one per node, shared by every Raft group on it.
//!
//! Groups append entries, votes and log-trimming marks as [`Record`]s; a
//! single writer thread gathers whatever has been queued, writes it, and
//! fsyncs once for all of it (group commit) before telling each appender
//! its records are durable. On restart, [`Wal::open`] replays the segments
//! and returns each group's surviving state.
//!
//! This crate knows nothing of Raft libraries: a group is a number, an entry
//! is `(index, term, payload bytes)`, a vote is opaque bytes. The Raft glue
//! maps its types onto these.
//!
//! # Layout
//!
//! - [`record`]: the records and their checksummed on-disk encoding.
//! - [`segment`]: segment files: naming, reading back, torn-tail handling.
//! - [`writer`]: the writer thread, group commit and fsync policies.
//! - [`recover`]: replaying records into per-group state.

pub mod record;
pub mod recover;
pub mod segment;
pub mod writer;

pub use record::{GroupId, Record, MAX_BODY_BYTES};
pub use recover::{GroupState, Recovered};
pub use writer::{CrashPoint, FsyncPolicy, Pins, QueuedAppend, TryAppendError, Wal, WalOptions, WalStats};

#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("wal I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("wal segment {segment} is corrupt at byte {offset}: {reason}")]
    Corrupt { segment: String, offset: u64, reason: String },
    #[error("the wal writer has stopped")]
    Stopped,
    /// Refused before queueing: nothing was written.
    #[error("a wal record of {bytes} bytes is over the {max}-byte limit", max = MAX_BODY_BYTES)]
    TooLarge { bytes: usize },
}
