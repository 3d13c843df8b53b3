//! Counters reported by INFO. Relaxed atomics: each is an independent count,
//! read only for reporting. Connections add per batch, not per command, to
//! keep the shared cache lines quiet.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

#[derive(Debug, Default)]
pub struct Stats {
    pub connected_clients: AtomicUsize,
    /// Clients waiting in a blocking pop.
    pub blocked_clients: AtomicUsize,
    pub total_connections: AtomicU64,
    pub rejected_connections: AtomicU64,
    pub commands_processed: AtomicU64,
    pub net_input_bytes: AtomicU64,
    pub net_output_bytes: AtomicU64,
    pub expired_keys: AtomicU64,
    pub keyspace_hits: AtomicU64,
    pub keyspace_misses: AtomicU64,
    pub protocol_errors: AtomicU64,
    pub commands: CommandStats,
}

impl Stats {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// CONFIG RESETSTAT: every counter back to zero (what is connected or
    /// blocked now is a state, not a count, and stays).
    pub fn reset(&self) {
        let counters = [
            &self.total_connections,
            &self.rejected_connections,
            &self.commands_processed,
            &self.net_input_bytes,
            &self.net_output_bytes,
            &self.expired_keys,
            &self.keyspace_hits,
            &self.keyspace_misses,
            &self.protocol_errors,
        ];
        counters.iter().for_each(|c| c.store(0, Ordering::Relaxed));
        self.commands.commands.lock().expect("stats lock").clear();
        self.commands.errors.lock().expect("stats lock").clear();
    }
}

/// One command's totals (INFO commandstats).
#[derive(Debug, Default, Clone, Copy)]
pub struct CommandTotals {
    pub calls: u64,
    pub usec: u64,
    /// Refused before running: wrong arguments, a redirect, CROSSSLOT.
    pub rejected: u64,
    /// Ran and answered an error.
    pub failed: u64,
}

impl CommandTotals {
    fn add(&mut self, other: &CommandTotals) {
        self.calls += other.calls;
        self.usec += other.usec;
        self.rejected += other.rejected;
        self.failed += other.failed;
    }
}

/// Per command and per error code, behind one lock each: connections add
/// their batch's counts once per batch (`BatchCounts::flush`).
#[derive(Debug, Default)]
pub struct CommandStats {
    commands: Mutex<BTreeMap<&'static str, CommandTotals>>,
    errors: Mutex<BTreeMap<String, u64>>,
}

impl CommandStats {
    /// Every command called so far, by name (`client|id` for subcommands).
    pub fn commands(&self) -> Vec<(&'static str, CommandTotals)> {
        self.commands.lock().expect("stats lock").iter().map(|(n, t)| (*n, *t)).collect()
    }

    /// Error replies so far, by their first word (`ERR`, `MOVED`, …).
    pub fn errors(&self) -> Vec<(String, u64)> {
        self.errors.lock().expect("stats lock").iter().map(|(e, n)| (e.clone(), *n)).collect()
    }
}

/// A connection's counts since its last flush: a batch touches few
/// commands, so a short vector beats a map.
#[derive(Debug, Default)]
pub struct BatchCounts {
    commands: Vec<(&'static str, CommandTotals)>,
    errors: Vec<(String, u64)>,
}

impl BatchCounts {
    pub fn command(&mut self, name: &'static str) -> &mut CommandTotals {
        let at = match self.commands.iter().position(|(n, _)| *n == name) {
            Some(at) => at,
            None => {
                self.commands.push((name, CommandTotals::default()));
                self.commands.len() - 1
            }
        };
        &mut self.commands[at].1
    }

    /// An error reply: counted under its code, the text's first word.
    pub fn error(&mut self, text: &[u8]) {
        let code = text.split(|&b| b == b' ').next().unwrap_or_default();
        let code = String::from_utf8_lossy(&code[..code.len().min(MAX_ERROR_CODE_BYTES)]);
        match self.errors.iter_mut().find(|(c, _)| *c == code) {
            Some((_, n)) => *n += 1,
            None => self.errors.push((code.into_owned(), 1)),
        }
    }

    pub fn flush(&mut self, into: &CommandStats) {
        if !self.commands.is_empty() {
            let mut all = into.commands.lock().expect("stats lock");
            for (name, totals) in self.commands.drain(..) {
                all.entry(name).or_default().add(&totals);
            }
        }
        if !self.errors.is_empty() {
            let mut all = into.errors.lock().expect("stats lock");
            for (code, n) in self.errors.drain(..) {
                // Bounded, as Redis bounds its error table: codes come from
                // our own replies, but a new one past the bound is dropped.
                if all.len() < MAX_ERROR_CODES || all.contains_key(&code) {
                    *all.entry(code).or_default() += n;
                }
            }
        }
    }
}

/// Distinct error codes counted (Redis stops at 128 too).
const MAX_ERROR_CODES: usize = 128;
/// Longest error code kept.
const MAX_ERROR_CODE_BYTES: usize = 32;
