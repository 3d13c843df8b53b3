//! An async client for shoal (and any Redis Cluster): it learns the slot map
//! from CLUSTER SLOTS, sends each command to the node that owns its key,
//! follows `-MOVED` (refreshing the map) and `-ASK`, and retries
//! `-TRYAGAIN`, `-CLUSTERDOWN` and connection failures with bounded
//! exponential backoff until the command's deadline.
//!
//! Retrying is only done where it cannot apply a command twice: a request
//! that never reached the server, a redirect (the server promises it did not
//! apply it), or a read. A write whose connection died after it was sent
//! fails with [`ClientError::Uncertain`]: it may or may not have been
//! applied.
//!
//! # Layout
//!
//! - [`cluster`]: `ClusterClient`, routing and the retry loop.
//! - [`connection`]: one pipelined connection to one node, owned by a task.
//! - [`slots`]: the slot map and its parsing from CLUSTER SLOTS.
//! - [`retry`]: the backoff policy and deadlines.

pub mod cluster;
pub mod connection;
pub mod retry;
pub mod slots;

pub use cluster::ClusterClient;
pub use connection::Connection;
pub use retry::RetryPolicy;

/// Why a command failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    #[error("could not reach any of {0}")]
    Unreachable(String),
    #[error("connection to {addr} failed before the request was sent: {reason}")]
    NotSent { addr: String, reason: String },
    #[error("connection to {addr} was lost after a write was sent; it may or may not have been applied")]
    Uncertain { addr: String },
    /// For a write, the outcome is unknown: an attempt may have been
    /// applied before the deadline ran out.
    #[error("gave up after {attempts} attempts within the deadline; last error: {last}")]
    DeadlineExceeded { attempts: u32, last: String },
    #[error("{0}")]
    Usage(String),
}
