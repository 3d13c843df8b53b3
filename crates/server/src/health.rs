//! Fail-stop: a node whose storage failed exits instead of living on as a
//! zombie.
//!
//! After a failed WAL write or fsync every later append fails, and openraft
//! stops a group whose storage returned an error; such a node would answer
//! every write with an error for ever while looking alive. This task asks
//! the process to stop (`StopReason::Fatal`: one line on stderr, a non-zero
//! exit), so a supervisor restarts it and recovery starts from what is
//! durable, as after a crash.
//!
//! It also watches the data directory's free space: below
//! `min_free_disk_bytes`, writes are refused with `-MISCONF` (reads go on)
//! until space is freed.

use std::sync::atomic::Ordering;
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
        check_disk(&shared);
    }
}

/// Refuses writes while the data directory's disk is nearly full (see
/// `Shared::refuse_write`): a WAL that met ENOSPC would fail for good and
/// stop the node, where refusing writes keeps reads served and loses
/// nothing. Logged when it starts and ends.
pub(crate) fn check_disk(shared: &Shared) {
    let Some(free) = free_bytes(&shared.config.dir) else { return };
    let low = free < shared.config.limits.min_free_disk_bytes;
    let was_low = shared.disk_low.swap(if low { free } else { u64::MAX }, Ordering::Relaxed) != u64::MAX;
    match (was_low, low) {
        (false, true) => tracing::error!(
            free,
            min = shared.config.limits.min_free_disk_bytes,
            "the data directory's disk is nearly full: refusing writes (-MISCONF)"
        ),
        (true, false) => tracing::warn!(free, "disk space is back: taking writes again"),
        _ => {}
    }
}

/// Bytes available to this process on the filesystem holding `dir`.
#[allow(clippy::useless_conversion)] // statvfs's field types differ between targets
fn free_bytes(dir: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is a NUL-terminated string and `stat` a valid out
    // pointer for the duration of the call.
    let rc = unsafe { libc::statvfs(path.as_ptr(), &mut stat) };
    (rc == 0).then(|| u64::from(stat.f_bavail).saturating_mul(u64::from(stat.f_frsize)))
}
