//! What every background task of the server shares: it wakes every so often
//! until the server stops, and whatever it awaits in between must give way
//! to the stop too.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::{Interval, MissedTickBehavior};

/// A task's ticks, ended by the server's stop signal.
pub struct Periodic {
    tick: Interval,
    shutdown: watch::Receiver<bool>,
}

impl Periodic {
    /// Ticks every `period` (a late tick delays the next: a slow round is
    /// not followed by a burst of catch-up rounds).
    pub fn new(period: Duration, shutdown: watch::Receiver<bool>) -> Periodic {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Periodic { tick, shutdown }
    }

    /// Waits for the next tick; false once the server is stopping.
    pub async fn next(&mut self) -> bool {
        let ticked = tokio::select! {
            _ = self.tick.tick() => true,
            _ = self.shutdown.wait_for(|stop| *stop) => false,
        };
        ticked && !*self.shutdown.borrow()
    }

    /// Runs `work` unless the server stops first (then `None`; `work` is
    /// dropped).
    pub async fn unless_stopped<T>(&mut self, work: impl Future<Output = T>) -> Option<T> {
        tokio::select! {
            done = work => Some(done),
            _ = self.shutdown.wait_for(|stop| *stop) => None,
        }
    }
}
