//! shoal's openraft glue: every shard a Raft group, all of a node's groups
//! on one WAL and one connection per peer, behind `Replicas`.
//!
//! - [`births`]: a split's new group, written to disk by every replica
//!   applying the split.
//! - `hibernate`: idle groups stop ticking until a request or a failure
//!   wakes them.
//! - [`clock`]: the node's hybrid clock for expiry (never behind a time it saw).
//! - [`log_store`]: the group's Raft log, a view over the node-wide
//!   `shoal_wal::Wal` (entries in memory, durability from the WAL).
//! - [`state_machine`]: applies committed `WriteOp`s to a `shoal_engine::Db`.
//! - [`memory`]: an in-process `Transport` with chosen faults (down nodes,
//!   cut links, delays), for running several nodes in one test.
//! - [`sessions`]: recent replies per tagged client (exactly-once retries).
//! - [`replicas`]: `Replicas`, the node-level API the server uses (no
//!   openraft types in it): open every group, propose, read barriers.
//! - [`settings`]: openraft's `Config` as every group (and every test) runs it.
//! - [`transport`]: the `Transport` trait and Raft RPCs over TCP, every
//!   group's traffic to a peer on one multiplexed connection.
//!
//! The types openraft is parameterised over are declared here: a log entry's
//! application data is a [`Proposal`], its result a [`Reply`].

use std::fmt;

use serde::{Deserialize, Serialize};
use shoal_engine::WriteResult;

pub mod births;
pub mod clock;
mod hibernate;
pub mod log_store;
pub mod memory;
pub mod replicas;
pub mod sessions;
pub mod settings;
pub mod state_machine;
pub mod transport;

pub use clock::Clock;
pub use log_store::LogStore;
pub use replicas::{
    GroupSpec, GroupStatus, MoveProgress, PendingBatch, ReadMode, ReplicaConfig, ReplicaError, Replicas, Role,
    SlotsHeld, Snapshots, Timing, HIBERNATE_CHECK,
};
pub use settings::raft_config;
pub use state_machine::StateMachine;

openraft::declare_raft_types!(
    /// shoal's Raft type configuration. Everything not named takes
    /// openraft's default (u64 terms, "advanced" leader ids, tokio).
    pub TypeConfig:
        D = Proposal,
        R = Reply,
        NodeId = u64,
        Node = ShoalNode,
);

/// The most bytes one write (`WriteOp::encode`) may take. One write is one
/// log entry, and an entry must fit one WAL record and, alone, one peer
/// frame with room for their headers; the server refuses a bigger write
/// before proposing it (a WAL that met one could not go on).
pub const MAX_WRITE_BYTES: usize = transport::MAX_FRAME_BYTES as usize - (1 << 20);

const _: () = assert!(MAX_WRITE_BYTES + (1 << 20) <= shoal_wal::MAX_BODY_BYTES as usize);
const _: () = assert!(MAX_WRITE_BYTES + (1 << 20) <= transport::MAX_FRAME_BYTES as usize);

/// The `Raft` handle for a shoal group.
pub type ShoalRaft = openraft::Raft<TypeConfig, StateMachine>;

/// An entry of a shard's log: a write, or a change of the shard itself.
///
/// `now_ms` is the leader's clock at proposal time: every replica applies
/// the entry with this same `now`, so expiry decisions are identical
/// everywhere (the engine never reads a clock itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    pub cmd: Cmd,
    pub now_ms: u64,
    /// The client's id and sequence number, when it tags its writes: a
    /// second entry with the same tag is answered, not applied.
    pub tag: Option<WriteTag>,
}

impl Proposal {
    pub fn write(op: &shoal_engine::WriteOp, now_ms: u64, tag: Option<WriteTag>) -> Proposal {
        Proposal { cmd: Cmd::Write(op.encode()), now_ms, tag }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Cmd {
    /// `WriteOp::encode` bytes. Kept encoded so the log does not depend on
    /// serde impls for the engine's types.
    Write(Vec<u8>),
    /// The shard gives the right-hand part of its slots to a new group on
    /// the same nodes (`state_machine` applies it).
    Split(SplitSpec),
    /// The shard, holding `start..=end`, stops serving: writes are refused
    /// and it holds no slot, so its keys are final and can be merged into
    /// the shard on its left. Applied again: nothing changes.
    Seal { start: u16, end: u16 },
    /// A sealed shard serves `start..=end` again (a merge given up).
    Unseal { start: u16, end: u16 },
    /// The shard takes its sealed right neighbour's slots and keys.
    Absorb(AbsorbSpec),
}

/// A merge as the left shard applies it: holding exactly `start..=end`,
/// it adds the keys of `dump` (`Db::dump` of the sealed right shard) and
/// its client sessions, and holds `start..=right_end` after. Refused
/// otherwise, changing nothing.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AbsorbSpec {
    pub start: u16,
    pub end: u16,
    pub right_end: u16,
    pub dump: Vec<u8>,
    /// The sealed shard's client sessions (`Replicas::sealed_sessions`):
    /// a tagged write it applied stays applied once, retried here.
    pub sessions: Vec<u8>,
}

impl fmt::Debug for AbsorbSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Absorb({}..={} + ..={}, {} bytes)", self.start, self.end, self.right_end, self.dump.len())
    }
}

impl Cmd {
    /// About how many bytes the entry takes (a write's encoded op).
    pub fn len(&self) -> usize {
        match self {
            Cmd::Write(op) => op.len(),
            Cmd::Split(spec) => 16 + spec.members.values().map(|a| a.len() + 16).sum::<usize>(),
            Cmd::Seal { .. } | Cmd::Unseal { .. } => 8,
            Cmd::Absorb(spec) => 16 + spec.dump.len() + spec.sessions.len(),
        }
    }
}

/// A split as every replica applies it: the shard's slots `start..=end`
/// become `start..at` here and `at..=end` in group `child`, whose members
/// (Raft id → client address) are one new replica on each node holding
/// this shard. Refused, changing nothing, unless the shard holds exactly
/// `start..=end` when it applies: a retried split is never applied twice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitSpec {
    pub start: u16,
    pub end: u16,
    pub at: u16,
    pub child: transport::GroupId,
    pub members: std::collections::BTreeMap<u64, String>,
}

/// Identifies one write of one client across retries (`CLIENT SHOAL-TAG`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteTag {
    pub client: u64,
    pub seq: u64,
    /// An earlier attempt of this write may have been applied (the client
    /// sent it and never learnt the outcome). A group that does not know
    /// the client (it forgot its session) refuses such a write rather than
    /// risk applying it twice; a first attempt from an unknown client
    /// starts a session.
    pub retry: bool,
}

// openraft logs entries with Display; the op bytes are not worth printing.
impl fmt::Display for Proposal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.cmd {
            Cmd::Write(op) => write!(f, "write({} bytes @{}ms)", op.len(), self.now_ms),
            Cmd::Split(s) => write!(f, "split({}..={} at {} into group {})", s.start, s.end, s.at, s.child),
            Cmd::Seal { start, end } => write!(f, "seal({start}..={end})"),
            Cmd::Unseal { start, end } => write!(f, "unseal({start}..={end})"),
            Cmd::Absorb(spec) => write!(f, "{spec:?}"),
        }
    }
}

/// What applying a proposal produced: `WriteResult` flattened into serde-able
/// shapes (the string ops' result types carry no serde derives; the engine
/// commands' `Out` does).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Reply {
    /// SET: whether it was stored, and the old value (SET … GET).
    Set {
        written: bool,
        old: Option<Vec<u8>>,
    },
    Count(u64),
    Flag(bool),
    Value(Option<Vec<u8>>),
    Int(i64),
    /// APPEND: the new length, or the length refused.
    Len(Result<u64, u64>),
    Done,
    /// A command-level error (not an integer, over a limit, undecodable op).
    Error(String),
    /// Not applied: a key of the write is in a slot this shard no longer
    /// holds (it split since the write was routed here).
    NotOwned,
    /// The reply of an engine command (`WriteOp::Exec`), or a string op's
    /// refusal with its own error text (WRONGTYPE).
    Out(shoal_engine::Out),
    /// EXEC: each queued command's reply, or `None` when a watched key
    /// had changed (nothing ran).
    Multi(Option<Vec<Reply>>),
}

impl From<WriteResult> for Reply {
    fn from(r: WriteResult) -> Reply {
        match r {
            WriteResult::Set(o) => Reply::Set { written: o.written, old: o.old.map(|b| b.to_vec()) },
            WriteResult::Count(n) => Reply::Count(n as u64),
            WriteResult::Flag(f) => Reply::Flag(f),
            WriteResult::Value(v) => Reply::Value(v.map(|b| b.to_vec())),
            WriteResult::Incr(Ok(n)) => Reply::Int(n),
            WriteResult::Incr(Err(shoal_engine::IncrError::WrongType)) => {
                Reply::Out(shoal_engine::Out::Err(shoal_engine::Fault::WrongType))
            }
            WriteResult::Incr(Err(e)) => Reply::Error(e.to_string()),
            WriteResult::Out(out) => Reply::Out(out),
            WriteResult::Multi(results) => Reply::Multi(results.map(|r| r.into_iter().map(Reply::from).collect())),
            WriteResult::Append(r) => Reply::Len(r.map(|n| n as u64).map_err(|n| n as u64)),
            WriteResult::Done => Reply::Done,
        }
    }
}

/// A member as recorded in the group's membership: where clients reach it,
/// so a `ForwardToLeader` can be turned straight into `-MOVED host:port`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShoalNode {
    pub client_addr: String,
}

impl fmt::Display for ShoalNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.client_addr)
    }
}

/// A replica's Raft id: its node's number in the low 32 bits, the
/// generation of the node's data in the high 32. A cluster starts with
/// every node at generation 0 (Raft id = node number). A node whose data
/// was lost comes back under a new generation, a new Raft identity: it
/// never voted or acknowledged anything under it, so it is added as a
/// learner and swapped in for its old identity by a membership change
/// (docs/failures.md). Transport addresses, client addresses and the
/// layout are per node, so they look at `node_of` only.
pub fn raft_id(node: u64, generation: u32) -> u64 {
    assert!(node <= u64::from(u32::MAX), "node numbers fit 32 bits");
    node | (u64::from(generation) << 32)
}

/// The node a Raft id belongs to.
pub fn node_of(id: u64) -> u64 {
    id & u64::from(u32::MAX)
}

/// The generation of a Raft id (0: the node's first identity).
pub fn generation_of(id: u64) -> u32 {
    (id >> 32) as u32
}

/// A Raft id as people read it: `3` for node 3's first identity,
/// `3/1f2e3d4c` for a later one.
pub struct ShowId(pub u64);

impl fmt::Display for ShowId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match generation_of(self.0) {
            0 => write!(f, "{}", node_of(self.0)),
            g => write!(f, "{}/{g:08x}", node_of(self.0)),
        }
    }
}

/// `std::io::Error` from anything displayable: openraft's storage traits
/// all speak `io::Error`.
pub(crate) fn io_err(e: impl fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}
