//! shoal's cluster shape: which shard owns each of the 16384 slots, which
//! nodes hold each shard's replicas, and which of them is the preferred
//! leader. The first layout is a pure function of the bootstrap flags;
//! after that the cluster map, changed by commands the metadata group
//! commits, is the truth. Nodes compare the cluster id (the first layout's
//! fingerprint) when they meet.
//!
//! # Layout
//!
//! - [`spec`]: parsing `--initial-cluster 1=HOST:PORT[@PEERPORT],…`.
//! - [`layout`]: the layout function and its fingerprint.
//! - [`ids`]: stable 40-hex-character node and shard ids.
//! - [`map`]: the cluster map as replicated state, changed only by applying
//!   commands; its `layout()` is the live view routing reads.
//! - [`plan`]: the balancer's planner (the next command towards an even
//!   spread, draining first).

pub mod ids;
pub mod layout;
pub mod map;
pub mod plan;
pub mod spec;

pub use layout::{Layout, LayoutError, Shard, ShardId};
pub use spec::{parse_initial_cluster, NodeAddr, NodeNumber, SpecError};
