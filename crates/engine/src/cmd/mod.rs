//! Commands as values: each family (hashes, lists, sets, sorted sets, the
//! rest of the string and key commands) is a type that parses itself from
//! the client's arguments, names its keys, and runs inside a [`Txn`] that
//! holds those keys' stripes.
//!
//! A write is logged as the arguments themselves (`WriteOp::Exec`) and
//! parsed again on every replica: parsing is deterministic, and so is
//! running, given the entry's `now` and the leader's random seed.
//!
//! Arity was checked against the command table before a command gets
//! here (by the server, from the table COMMAND publishes); parsing checks
//! everything else with Redis's error texts.

pub mod args;
mod bits;
mod hash;
mod keys;
mod lcs;
mod list;
mod read;
pub mod rng;
mod set;
mod sort;
mod string;
mod zset;

use bytes::Bytes;

use crate::reply::{Fault, Out};
use crate::txn::Txn;
use crate::{Db, Millis};
use args::Args;
use rng::Rng;

pub use hash::HashCmd;
pub use keys::KeyCmd;
pub use list::ListCmd;
pub use read::ReadCmd;
pub use set::SetCmd;
pub use sort::SortCmd;
pub use string::StrCmd;
pub use zset::ZSetCmd;

#[derive(Debug, Clone, PartialEq)]
pub enum Cmd {
    Hash(HashCmd),
    List(ListCmd),
    Set(SetCmd),
    ZSet(ZSetCmd),
    Str(StrCmd),
    Key(KeyCmd),
    Read(ReadCmd),
    Sort(SortCmd),
}

impl Cmd {
    /// Parses `argv` (the name first, any case). An unknown name is a
    /// syntax error: the server only sends names of this module's families.
    pub fn parse(argv: &[Bytes]) -> Result<Cmd, Fault> {
        let (name, rest) = argv.split_first().ok_or(Fault::Syntax)?;
        let name = std::str::from_utf8(name).map_err(|_| Fault::Syntax)?.to_ascii_lowercase();
        let mut a = Args::new(rest);
        let cmd = if let Some(c) = HashCmd::parse(&name, &mut a) {
            Cmd::Hash(c?)
        } else if let Some(c) = ListCmd::parse(&name, &mut a) {
            Cmd::List(c?)
        } else if let Some(c) = SetCmd::parse(&name, &mut a) {
            Cmd::Set(c?)
        } else if let Some(c) = ZSetCmd::parse(&name, &mut a) {
            Cmd::ZSet(c?)
        } else if let Some(c) = StrCmd::parse(&name, &mut a) {
            Cmd::Str(c?)
        } else if let Some(c) = KeyCmd::parse(&name, &mut a) {
            Cmd::Key(c?)
        } else if let Some(c) = ReadCmd::parse(&name, &mut a) {
            Cmd::Read(c?)
        } else if let Some(c) = SortCmd::parse(&name, &mut a) {
            Cmd::Sort(c?)
        } else {
            return Err(Fault::other(format!("ERR unknown command '{name}'")));
        };
        Ok(cmd)
    }

    /// For a blocking pop (BLPOP, BZPOPMIN, BLMOVE, …): how long it may
    /// wait, 0 for ever. Run here, such a command never blocks: it pops
    /// what is there or answers nil; the server makes the client wait.
    pub fn blocking_timeout_ms(&self) -> Option<u64> {
        match self {
            Cmd::List(c) => c.blocking_timeout_ms(),
            Cmd::ZSet(c) => c.blocking_timeout_ms(),
            _ => None,
        }
    }

    /// The keys whose filling can serve a blocking pop: its sources, not
    /// BLMOVE's destination (a destination holding elements must not make
    /// the client pop again and again from an empty source).
    pub fn blocking_keys(&self) -> Vec<&Bytes> {
        match self {
            Cmd::List(ListCmd::BMove { mv, .. }) => vec![&mv.from],
            _ => self.keys(),
        }
    }

    /// Every key the command reads or writes.
    pub fn keys(&self) -> Vec<&Bytes> {
        match self {
            Cmd::Hash(c) => c.keys(),
            Cmd::List(c) => c.keys(),
            Cmd::Set(c) => c.keys(),
            Cmd::ZSet(c) => c.keys(),
            Cmd::Str(c) => c.keys(),
            Cmd::Key(c) => c.keys(),
            Cmd::Read(c) => c.keys(),
            Cmd::Sort(c) => c.keys(),
        }
    }

    /// Runs inside `tx`, which holds every key of `keys()`.
    pub fn run(&self, tx: &mut Txn, rng: &mut Rng) -> Out {
        let result = match self {
            Cmd::Hash(c) => c.run(tx, rng),
            Cmd::List(c) => c.run(tx, rng),
            Cmd::Set(c) => c.run(tx, rng),
            Cmd::ZSet(c) => c.run(tx, rng),
            Cmd::Str(c) => c.run(tx, rng),
            Cmd::Key(c) => c.run(tx, rng),
            Cmd::Read(c) => c.run(tx, rng),
            Cmd::Sort(c) => c.run(tx, rng),
        };
        // Redis never keeps an empty collection, whether the command
        // emptied it or created it and then failed.
        for key in self.keys() {
            tx.drop_if_empty(key);
        }
        result.unwrap_or_else(Out::Err)
    }
}

impl Db {
    /// Runs one command atomically at `now`, drawing from `seed`.
    pub fn run(&self, cmd: &Cmd, now: Millis, seed: u64) -> Out {
        let keys: Vec<&[u8]> = cmd.keys().into_iter().map(|k| &k[..]).collect();
        let mut tx = self.txn(&keys, now);
        cmd.run(&mut tx, &mut Rng::new(seed))
    }
}

/// What each family's `run` returns: an error is the reply.
pub(crate) type Run = Result<Out, Fault>;

/// An index from the end when negative, as Redis's list and range
/// commands take them; `None` when it falls before the start.
pub(crate) fn from_end(index: i64, len: usize) -> Option<usize> {
    let len = len as i64;
    let i = if index < 0 { len + index } else { index };
    (i >= 0).then_some(i as usize)
}

/// Redis's `start stop` range over `len` items, both inclusive and
/// negative from the end, clamped; `None` when empty.
pub(crate) fn range(start: i64, stop: i64, len: usize) -> Option<std::ops::RangeInclusive<usize>> {
    let n = len as i64;
    let start = if start < 0 { (n + start).max(0) } else { start };
    let stop = if stop < 0 { n + stop } else { stop.min(n - 1) };
    (start <= stop && start < n && stop >= 0).then_some(start as usize..=stop as usize)
}

/// One page of a collection's SCAN (HSCAN, SSCAN, ZSCAN): the positions
/// to visit and the next cursor (0 when done). Positions are visited from
/// the end down: a removal moves the last element into the hole, which is
/// an element already visited, so an element present for the whole scan
/// is returned at least once (maybe twice), as Redis promises. A small
/// collection (`whole`) is returned in one page, as Redis does for its
/// listpack and intset encodings.
pub(crate) fn scan_page(len: usize, cursor: u64, count: usize, whole: bool) -> (std::ops::Range<usize>, u64) {
    if whole {
        return (0..len, 0);
    }
    let start = if cursor == 0 { len } else { (cursor as usize).min(len) };
    let end = start.saturating_sub(count.max(1));
    (end..start, end as u64)
}

/// SCAN's `cursor [MATCH pattern] [COUNT count]` options of HSCAN, SSCAN
/// and ZSCAN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanArgs {
    pub cursor: u64,
    pub pattern: Option<Bytes>,
    pub count: usize,
}

impl ScanArgs {
    pub(crate) fn parse(a: &mut Args) -> Result<ScanArgs, Fault> {
        let cursor = std::str::from_utf8(&a.take()?)
            .ok()
            .and_then(|c| c.parse::<u64>().ok())
            .ok_or_else(|| Fault::other("ERR invalid cursor"))?;
        let mut scan = ScanArgs { cursor, pattern: None, count: 10 };
        while !a.is_empty() {
            if a.eat("match") {
                scan.pattern = Some(a.take()?);
            } else if a.eat("count") {
                let n = a.i64()?;
                if n < 1 {
                    return Err(Fault::Syntax);
                }
                scan.count = n as usize;
            } else {
                return Err(Fault::Syntax);
            }
        }
        Ok(scan)
    }

    pub(crate) fn matches(&self, item: &[u8]) -> bool {
        self.pattern.as_ref().is_none_or(|p| crate::glob::glob_match(p, item))
    }
}

/// The reply of a collection SCAN.
pub(crate) fn scan_reply(next: u64, items: Vec<Out>) -> Out {
    Out::Array(vec![Out::Bulk(Bytes::from(next.to_string())), Out::Array(items)])
}

/// The most picks with repeats one HRANDFIELD, SRANDMEMBER or
/// ZRANDMEMBER may ask for. Redis streams any number until the client goes
/// away; a reply here is built whole (on every replica, inside MULTI), so
/// a larger count is refused rather than exhausting memory.
pub(crate) const MAX_RANDOM_REPEATS: i64 = 1 << 24;

/// A negative RANDFIELD/RANDMEMBER count past `MAX_RANDOM_REPEATS`.
pub(crate) fn check_repeats(count: i64) -> Result<(), Fault> {
    if count < -MAX_RANDOM_REPEATS {
        return Err(Fault::other("ERR value is out of range"));
    }
    Ok(())
}

/// How a RANDFIELD/RANDMEMBER count picks: `n` distinct, or `n` with
/// repeats (the caller checked the count, `check_repeats`).
pub(crate) fn random_indices(len: usize, count: i64, rng: &mut Rng) -> Vec<usize> {
    assert!(count >= -MAX_RANDOM_REPEATS, "random picks past the bound reached the engine");
    if count < 0 {
        let n = count.unsigned_abs() as usize;
        return (0..n).map(|_| rng.below(len)).collect();
    }
    let n = (count as usize).min(len);
    if n.saturating_mul(4) < len {
        // Few of many: draw until n distinct (no table of every position).
        let mut seen = std::collections::BTreeSet::new();
        let mut picked = Vec::with_capacity(n);
        while picked.len() < n {
            let i = rng.below(len);
            if seen.insert(i) {
                picked.push(i);
            }
        }
        return picked;
    }
    // A partial Fisher-Yates over the positions: n distinct, in random order.
    let mut positions: Vec<usize> = (0..len).collect();
    for i in 0..n {
        let j = i + rng.below(len - i);
        positions.swap(i, j);
    }
    positions.truncate(n);
    positions
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::Cmd;
    use crate::reply::{Fault, Out};
    use crate::Db;

    fn run(db: &Db, line: &str) -> Out {
        let argv: Vec<Bytes> = line.split(' ').map(|w| Bytes::copy_from_slice(w.as_bytes())).collect();
        db.run(&Cmd::parse(&argv).expect("parses"), 0, 1)
    }

    #[test]
    fn random_picks_past_the_bound_are_refused_alike() {
        let db = Db::new();
        run(&db, "HSET h f v");
        run(&db, "SADD s m");
        run(&db, "ZADD z 1 m");
        let refused = Out::Err(Fault::other("ERR value is out of range"));
        for line in ["HRANDFIELD h -16777217", "SRANDMEMBER s -16777217", "ZRANDMEMBER z -16777217"] {
            assert_eq!(run(&db, line), refused, "{line}");
        }
        let Out::Array(picks) = run(&db, "SRANDMEMBER s -5") else { panic!("an array") };
        assert_eq!(picks.len(), 5, "repeats up to the count");
    }
}
