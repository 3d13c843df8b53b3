//! shoal's storage engine: an in-memory, concurrent map of binary-safe keys
//! to binary-safe values with absolute expiry times.
//!
//! The engine does no I/O and has no notion of wall-clock time: every
//! operation takes `now` (milliseconds since the Unix epoch) from its caller.
//! That keeps it deterministic, which replication relies on (a replica
//! applies a write with the time its leader chose), and lets tests move time
//! by hand.
//!
//! # Layout
//!
//! - [`db`]: `Db`, the keyspace striped over many `RwLock`s; every operation.
//! - `stripe`: one lock's worth of keys and its expiry index.
//! - [`ops`]: typed options and outcomes (SET conditions, expiry choices, …).
//! - [`snapshot`]: serialise a set of slots to bytes and restore them.
//! - `split`: move a slot range's keys out (`Db::split_off`); `halving_slot`, `bytes`.
//! - [`write`]: every mutation as an encodable `WriteOp`, applied by `Db::apply`.
//! - [`slot`]: CRC16 key → slot, shared with the router.
//! - `slot_counts`: keys per slot, maintained on every insert and removal.
//! - [`glob`]: Redis-style pattern matching for KEYS and SCAN.

pub mod db;
pub mod glob;
pub mod ops;
pub mod slot;
mod slot_counts;
pub mod snapshot;
mod split;
mod stripe;
pub mod write;

pub use db::{parse_i64, Db, SCAN_CURSOR_BITS, STRIPES};
pub use ops::{
    DelCondition, ExpireCondition, GetExExpiry, IncrError, SetCondition, SetExpiry, SetOptions, SetOutcome, Ttl,
};
pub use snapshot::SnapshotError;
pub use write::{WriteOp, WriteResult};

/// Milliseconds since the Unix epoch.
pub type Millis = u64;
