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
//! - `stripe`: one lock's worth of keys and its expiry index;
//!   `string_ops`: the string and expiry ops on a stripe.
//! - [`ops`]: typed options and outcomes (SET conditions, expiry choices, …).
//! - [`snapshot`]: serialise a set of slots to bytes and restore them.
//! - `split`: move a slot range's keys out (`Db::split_off`); `halving_slot`, `bytes`.
//! - [`write`]: every mutation as an encodable `WriteOp`, applied by `Db::apply`.
//! - [`value`]: what a key holds (`Value`: a string or a collection);
//!   `types`: the collections themselves; [`encoding`]: the thresholds
//!   OBJECT ENCODING reports against.
//! - [`cmd`]: the hash, list, set, sorted-set and remaining string and key
//!   commands, each family a type that parses, names its keys and runs in
//!   a [`txn::Txn`] (its keys' stripes locked together).
//! - [`reply`]: `Out`, a reply before any protocol, and `Fault`, Redis's
//!   error texts.
//! - [`slot`]: CRC16 key → slot, shared with the router.
//! - `slot_counts`: keys per slot, maintained on every insert and removal.
//! - [`glob`]: Redis-style pattern matching for KEYS and SCAN.

pub mod cmd;
pub mod db;
pub mod encoding;
pub mod glob;
mod multi;
pub mod ops;
pub mod reply;
pub mod slot;
mod slot_counts;
pub mod snapshot;
mod split;
mod string_ops;
mod stripe;
pub mod txn;
mod types;
pub mod value;
pub mod write;

pub use cmd::args::format_double;
pub use cmd::Cmd;
pub use db::{parse_i64, Db, SCAN_CURSOR_BITS, STRIPES};
pub use multi::Watch;
pub use ops::{
    DelCondition, ExpireCondition, GetExExpiry, IncrError, SetCondition, SetExpiry, SetOptions, SetOutcome, Ttl,
};
pub use reply::{Fault, Out};
pub use snapshot::SnapshotError;
pub use value::{Kind, Value};
pub use write::{WriteOp, WriteResult};

/// Milliseconds since the Unix epoch.
pub type Millis = u64;
