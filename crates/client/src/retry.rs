//! Backoff for retried commands: exponential from `initial_backoff`,
//! doubling up to `max_backoff`, within `deadline` per command and at most
//! `max_attempts` tries, whichever ends first; each attempt waits at most
//! `reply_timeout`. Every loop and every wait is bounded.

use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub deadline: Duration,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    pub max_attempts: u32,
    /// Timeout for opening a connection.
    pub connect_timeout: Duration,
    /// How long one attempt waits for its reply. A node that stopped
    /// answering (paused, partitioned away) keeps its connections open, so
    /// without this an attempt would wait for it forever; after it, the
    /// connection is abandoned and the attempt counts as lost.
    pub reply_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            deadline: Duration::from_secs(5),
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(500),
            max_attempts: 64,
            connect_timeout: Duration::from_secs(1),
            reply_timeout: Duration::from_secs(1),
        }
    }
}

impl RetryPolicy {
    /// The pause before retry number `attempt` (1-based).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(16);
        self.initial_backoff.saturating_mul(factor).min(self.max_backoff)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_then_caps() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff(1), Duration::from_millis(10));
        assert_eq!(p.backoff(2), Duration::from_millis(20));
        assert_eq!(p.backoff(4), Duration::from_millis(80));
        assert_eq!(p.backoff(10), Duration::from_millis(500));
        assert_eq!(p.backoff(1000), Duration::from_millis(500));
    }
}
