//! shoal's cluster layout: which shard owns each of the 16384 slots, which
//! nodes hold each shard's replicas, and which of them is the preferred
//! primary. The layout is a pure function of the command-line flags, so every
//! node computes the same one without talking; nodes compare fingerprints
//! when they meet to catch a node started with different flags.
//!
//! # Layout
//!
//! - [`spec`]: parsing `--initial-cluster 1=HOST:PORT[@PEERPORT],…`.
//! - [`layout`]: the layout function and its fingerprint.
//! - [`ids`]: stable 40-hex-character node and shard ids.
//! - [`map`]: the cluster map as replicated state, changed only by applying
//!   commands (issue 12's first step; nothing serves from it yet).

pub mod ids;
pub mod layout;
pub mod map;
pub mod spec;

pub use layout::{Layout, LayoutError, Shard, ShardId};
pub use spec::{parse_initial_cluster, NodeAddr, NodeNumber, SpecError};
