//! Checks recorded client histories against what shoal promises, the way
//! Jepsen's Knossos does for etcd and Redis-Raft.
//!
//! A history is a list of operations, each invoked at one instant and
//! completed at a later one with an outcome: `ok` (it happened and this is
//! what it returned), `fail` (it certainly did not happen) or `info` (it may
//! or may not have happened, now or at any later time: a timeout, a lost
//! connection, `-UNCERTAIN`). Three workloads are checked:
//!
//! - **register**: reads, writes and compare-and-sets on independent keys.
//!   Each key's operations must be linearizable: there is one order of the
//!   operations, consistent with real time, in which every read sees the
//!   latest write ([`linear`]).
//! - **set**: unique elements appended to a few keys, then one final read
//!   of each key: no acknowledged element may be missing, none may appear
//!   twice, none may appear that nobody added ([`sets`]).
//! - **list-append**: unique elements appended (RPUSH) to a few list keys,
//!   whose whole lists are read (LRANGE) along the way and at the end: no
//!   element twice in a read, every read a prefix of every later one, no
//!   acknowledged element missing from the final read, nothing nobody
//!   appended ([`lists`]).
//!
//! This crate does no I/O and knows nothing of shoal's protocol: the
//! `shoal check` command runs the workloads and hands the history here, and
//! the tests feed it hand-made histories.
//!
//! # Layout
//!
//! - [`history`]: operations, outcomes, and the JSON-lines history file.
//! - [`linear`]: the register model and the linearizability search.
//! - [`sets`]: the lost / duplicated / unexpected element check.
//! - [`lists`]: the list-append check (prefixes, duplicates, lost appends).

pub mod history;
pub mod linear;
pub mod lists;
pub mod sets;

/// What a check concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every constraint holds.
    Valid,
    /// A violation, described for a person.
    Invalid(String),
    /// The search ran out of time or memory before deciding.
    Unknown(String),
}

impl Verdict {
    /// Combines the verdicts of independent parts: any invalid part makes
    /// the whole invalid; otherwise any unknown part makes it unknown.
    pub fn and(self, other: Verdict) -> Verdict {
        match (self, other) {
            (Verdict::Invalid(a), _) | (_, Verdict::Invalid(a)) => Verdict::Invalid(a),
            (Verdict::Unknown(a), _) | (_, Verdict::Unknown(a)) => Verdict::Unknown(a),
            _ => Verdict::Valid,
        }
    }
}
