//! Idle groups go quiet, as TiKV's hibernating regions: a group with no
//! traffic stops its Raft ticker on every replica, so it sends no
//! heartbeats and runs no election timer, and costs nothing until the
//! first request or a suspected failure wakes it.
//!
//! Each replica decides for itself (`decide`), from what it sees:
//! - a follower sleeps once its log has not moved for `after` while the
//!   leader's node is up (the node-level peer check, not heartbeats, tells
//!   it so), and wakes when the log moves again or the leader's node goes
//!   down: then its election timer runs and a new leader is elected; any
//!   vote request wakes a replica at once (`transport::handle`): a
//!   candidate means some replica lost its leader, perhaps where the
//!   node-level check cannot see it (a leader's node back under the same
//!   identity with its group empty);
//! - a leader sleeps later, once idle for `after + margin`, with every
//!   member holding its whole log: the margin (longer than an election
//!   timeout plus a check period) lets its followers fall asleep first, so
//!   none of them times out on the silence and starts an election. It
//!   wakes on the first request routed to it (`Replicas::touch`).
//!
//! Sleeping changes no Raft state: a write to a sleeping leader is
//! replicated at once (replication is not driven by the ticker), a read
//! falls back from the lease (which lapses without heartbeats) to a quorum
//! round. Groups with traffic never sleep, so their failover is untouched.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

/// What one replica's check saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Observed {
    pub role: Seat,
    pub asleep: bool,
    /// Since the last request or change of log, leader or term.
    pub idle_ms: u64,
    /// The leader's node is up (node-level check); true on the leader.
    pub leader_alive: bool,
    /// On a leader: every member holds its whole log, its membership is
    /// settled and no leadership transfer is under way.
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seat {
    Leader,
    Follower,
    /// A candidate, a learner, a stopped group: never asleep.
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Sleep,
    Wake,
    Stay,
}

/// Hibernation timing: `after` idle for a follower, `after + margin` for
/// a leader (`after` = 0: never).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Quiet {
    pub after_ms: u64,
    pub margin_ms: u64,
}

pub(crate) fn decide(o: Observed, q: Quiet) -> Verdict {
    if q.after_ms == 0 {
        return if o.asleep { Verdict::Wake } else { Verdict::Stay };
    }
    let want = match o.role {
        Seat::Other => false,
        Seat::Follower => o.leader_alive && o.idle_ms >= q.after_ms,
        // A sleeping leader stays asleep until touched (a request) or until
        // its log moves (a change committed by another path).
        Seat::Leader if o.asleep => o.idle_ms >= q.after_ms,
        Seat::Leader => o.quiet && o.idle_ms >= q.after_ms + q.margin_ms,
    };
    match (o.asleep, want) {
        (false, true) => Verdict::Sleep,
        (true, false) => Verdict::Wake,
        _ => Verdict::Stay,
    }
}

/// One replica's hibernation state.
#[derive(Default)]
pub(crate) struct Sleep {
    pub asleep: AtomicBool,
    /// Set on going to sleep, cleared by the first write after: a leader
    /// that slept must hear from a quorum again before it may write.
    pub slept: AtomicBool,
    /// When (ms since `Replicas::epoch`) it was last active.
    pub active_ms: AtomicU64,
    /// `(last log index, leader, term)` at the last check: a change is
    /// activity.
    pub seen: Mutex<(Option<u64>, Option<u64>, u64)>,
}

impl Sleep {
    /// Records activity now; true if the replica was asleep (the caller
    /// wakes its Raft).
    pub fn touch(&self, now_ms: u64) -> bool {
        if self.active_ms.load(Ordering::Relaxed) != now_ms {
            self.active_ms.store(now_ms, Ordering::Relaxed);
        }
        self.asleep.load(Ordering::Relaxed) && self.asleep.swap(false, Ordering::SeqCst)
    }

    /// Notes the replica's log, leader and term; a change counts as
    /// activity. Returns how long it has been idle.
    pub fn observe(&self, now_ms: u64, seen: (Option<u64>, Option<u64>, u64)) -> u64 {
        let mut last = self.seen.lock().expect("sleep lock");
        if *last != seen {
            *last = seen;
            self.active_ms.store(now_ms, Ordering::Relaxed);
        }
        now_ms.saturating_sub(self.active_ms.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const Q: Quiet = Quiet { after_ms: 1000, margin_ms: 800 };

    fn seen(role: Seat, asleep: bool, idle_ms: u64) -> Observed {
        Observed { role, asleep, idle_ms, leader_alive: true, quiet: true }
    }

    #[test]
    fn followers_fall_asleep_before_their_leader() {
        for idle in [0, 999, 1000, 1799, 1800, 5000] {
            let follower = decide(seen(Seat::Follower, false, idle), Q);
            let leader = decide(seen(Seat::Leader, false, idle), Q);
            assert_eq!(follower == Verdict::Sleep, idle >= 1000, "follower idle {idle}");
            assert_eq!(leader == Verdict::Sleep, idle >= 1800, "leader idle {idle}");
            assert!(leader != Verdict::Sleep || follower == Verdict::Sleep, "never the leader first");
        }
    }

    #[test]
    fn a_dead_leader_or_a_moving_log_wakes_a_follower() {
        let dead = Observed { leader_alive: false, ..seen(Seat::Follower, true, 5000) };
        assert_eq!(decide(dead, Q), Verdict::Wake);
        assert_eq!(decide(seen(Seat::Follower, true, 10), Q), Verdict::Wake);
        assert_eq!(decide(seen(Seat::Follower, true, 5000), Q), Verdict::Stay);
        let not_alive = Observed { leader_alive: false, ..seen(Seat::Follower, false, 5000) };
        assert_eq!(decide(not_alive, Q), Verdict::Stay, "no sleep without a live leader");
    }

    #[test]
    fn a_leader_sleeps_only_when_quiet_and_others_never() {
        let busy = Observed { quiet: false, ..seen(Seat::Leader, false, 5000) };
        assert_eq!(decide(busy, Q), Verdict::Stay);
        assert_eq!(decide(seen(Seat::Other, false, 5000), Q), Verdict::Stay);
        assert_eq!(decide(seen(Seat::Other, true, 5000), Q), Verdict::Wake);
        assert_eq!(decide(seen(Seat::Leader, true, 5000), Q), Verdict::Stay);
        let off = Quiet { after_ms: 0, margin_ms: 0 };
        assert_eq!(decide(seen(Seat::Follower, false, 5000), off), Verdict::Stay);
        assert_eq!(decide(seen(Seat::Follower, true, 5000), off), Verdict::Wake);
    }

    #[test]
    fn touching_records_activity_and_reports_a_sleeper_once() {
        let sleep = Sleep::default();
        assert!(!sleep.touch(5));
        sleep.asleep.store(true, Ordering::SeqCst);
        assert!(sleep.touch(7));
        assert!(!sleep.touch(8), "woken once");
        assert_eq!(sleep.observe(100, (Some(1), Some(1), 1)), 0, "a change is activity");
        assert_eq!(sleep.observe(400, (Some(1), Some(1), 1)), 300);
    }
}
