//! Fail-stop: a node whose storage failed exits instead of living on as a
//! zombie.
//!
//! After a failed WAL write or fsync every later append fails, and openraft
//! stops a group whose storage returned an error; such a node would answer
//! every write with an error for ever while looking alive. This task asks
//! the process to stop (`StopReason::Fatal`: one line on stderr, a non-zero
//! exit), so a supervisor restarts it and recovery starts from what is
//! durable, as after a crash.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::periodic::Periodic;
use crate::state::Shared;

/// How often the node checks its storage and Raft groups.
const HEALTH_CHECK_INTERVAL: Duration = Duration::from_millis(100);

pub async fn run(shared: Arc<Shared>, shutdown: watch::Receiver<bool>) {
    let mut periodic = Periodic::new(HEALTH_CHECK_INTERVAL, shutdown);
    while periodic.next().await {
        if let Some(reason) = shared.shards.replicas().fatal() {
            tracing::error!("{reason}: stopping the node");
            shared.shutdown.fail(format!("{reason}; stopped (a restart recovers what is durable)"));
            return;
        }
    }
}
