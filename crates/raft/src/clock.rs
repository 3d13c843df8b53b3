//! The node's clock for expiry: wall time, but never behind a time this
//! node has seen another node use, nor, once it leads, behind what an
//! earlier leader may have served.
//!
//! Writes carry their leader's time and every replica applies them with
//! it; reads compare expiry times with the serving node's time. With wall
//! clocks alone, a new leader whose clock is behind would serve keys that
//! its predecessor had already reported expired. So every Raft message
//! carries its sender's time, and a node's time is the largest of its wall
//! clock and every time it received (a hybrid clock). A leader served reads
//! only within its lease of a heartbeat that a quorum acknowledged, and any
//! quorum that elects a successor holds that heartbeat's time: on being
//! elected, a node moves its clock to the largest time it received plus the
//! lease, past anything its predecessor can have served.
//!
//! The price: where clocks differ, every node runs at the fastest clock,
//! and across a failover keys may expire up to a lease early. A time more
//! than `MAX_AHEAD_MS` ahead of this node's wall clock is not believed (a
//! broken peer must not expire every key at once); clocks further apart
//! than that lose the guarantee. Only traffic a group here takes (past the
//! identity and quarantine checks) is observed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Largest lead over this node's wall clock a received time may have.
pub const MAX_AHEAD_MS: u64 = 60 * 1000;

#[derive(Debug, Default)]
pub struct Clock {
    /// No reading is below this (received times, the election floor).
    floor: AtomicU64,
    /// The largest time received from another node.
    received: AtomicU64,
    /// Added to the wall clock: zero outside tests of skewed clocks.
    skew_ms: i64,
    /// The lease a leader serves reads under (`set_lease`).
    lease_ms: AtomicU64,
    /// Per group, the last term this node's clock was moved for: moving it
    /// once per term, not per call, keeps it from ratcheting ahead.
    elected: std::sync::Mutex<std::collections::HashMap<u32, u64>>,
}

impl Clock {
    /// A clock whose wall time is off by `skew_ms` (tests and
    /// `--debug-clock-skew-ms`; zero for real).
    pub fn skewed(skew_ms: i64) -> Clock {
        Clock { skew_ms, ..Clock::default() }
    }

    fn wall_ms(&self) -> u64 {
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        wall.saturating_add_signed(self.skew_ms)
    }

    /// Milliseconds since the epoch: the wall clock, or the floor if later.
    pub fn now_ms(&self) -> u64 {
        self.wall_ms().max(self.floor.load(Ordering::Acquire))
    }

    /// Another node's time, from one of its messages.
    pub fn observe(&self, remote_ms: u64) {
        if remote_ms > self.wall_ms().saturating_add(MAX_AHEAD_MS) {
            return;
        }
        self.received.fetch_max(remote_ms, Ordering::AcqRel);
        self.floor.fetch_max(remote_ms, Ordering::AcqRel);
    }

    /// The lease leaders serve reads under (the shortest election timeout).
    pub fn set_lease(&self, lease: Duration) {
        self.lease_ms.store(lease.as_millis() as u64, Ordering::Release);
    }

    /// This node leads `group` in `term`: from now on no reading is below
    /// the latest time received plus the lease an earlier leader may have
    /// served under. Once per group and term; later calls do nothing.
    pub fn elected(&self, group: u32, term: u64) {
        {
            let mut elected = self.elected.lock().expect("clock lock");
            if elected.get(&group).is_some_and(|&seen| seen >= term) {
                return;
            }
            elected.insert(group, term);
        }
        let received = self.received.load(Ordering::Acquire);
        if received > 0 {
            let lease = self.lease_ms.load(Ordering::Acquire);
            self.floor.fetch_max(received.saturating_add(lease), Ordering::AcqRel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clock_never_runs_behind_what_it_saw() {
        let behind = Clock::skewed(-60_000);
        let wall = Clock::default().now_ms();
        assert!(behind.now_ms() + 59_000 < wall);
        behind.observe(wall);
        assert!(behind.now_ms() >= wall, "a received time is a floor");
        behind.set_lease(Duration::from_millis(200));
        behind.elected(0, 3);
        assert!(behind.now_ms() >= wall + 200, "an elected node moves past the lease");
        let moved = behind.floor.load(Ordering::Acquire);
        behind.observe(moved);
        behind.elected(0, 3);
        assert_eq!(behind.floor.load(Ordering::Acquire), moved, "once per term: no ratchet");
        let before = behind.now_ms();
        behind.observe(wall + 2 * MAX_AHEAD_MS);
        assert!(behind.now_ms() < before + MAX_AHEAD_MS, "a time far ahead is not believed");
    }
}
