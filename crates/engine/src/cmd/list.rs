//! LPUSH RPUSH LPUSHX RPUSHX LPOP RPOP LLEN LRANGE LINDEX LSET LINSERT LREM
//! LTRIM LPOS LMOVE RPOPLPUSH LMPOP, and the blocking BLPOP BRPOP BLMOVE
//! BRPOPLPUSH BLMPOP.
//!
//! A blocking command runs here as its non-blocking attempt only: it pops
//! if it can and answers nil otherwise; the server decides whether to wait
//! (from `blocking_timeout_ms`) and runs it again when its keys change.

use bytes::Bytes;

use super::args::{float, int, Args};
use super::rng::Rng;
use super::{from_end, range, Run};
use crate::reply::{Fault, Out};
use crate::txn::Txn;
use crate::value::ListValue;
use crate::Millis;

/// Which end of a list: LEFT is the head, RIGHT the tail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Left,
    Right,
}

/// LMOVE's arguments (RPOPLPUSH is RIGHT LEFT).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    pub from: Bytes,
    pub to: Bytes,
    pub pop: End,
    pub push: End,
}

/// LMPOP's arguments: up to `count` items from the first non-empty key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MPop {
    pub keys: Vec<Bytes>,
    pub end: End,
    pub count: usize,
}

/// LPOS's options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PosOpts {
    /// Which match to start from, 1-based; negative counts from the tail.
    /// Never 0 nor `i64::MIN`.
    pub rank: i64,
    /// COUNT: `None` replies one index, `Some(0)` every match.
    pub count: Option<usize>,
    /// MAXLEN: how many items to compare at most, 0 for all.
    pub maxlen: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ListCmd {
    /// LPUSH and RPUSH, or with `existing` LPUSHX and RPUSHX.
    Push {
        key: Bytes,
        end: End,
        items: Vec<Bytes>,
        existing: bool,
    },
    /// LPOP and RPOP; without a count the reply is one bulk, not an array.
    Pop {
        key: Bytes,
        end: End,
        count: Option<usize>,
    },
    Len {
        key: Bytes,
    },
    Range {
        key: Bytes,
        start: i64,
        stop: i64,
    },
    /// LINDEX. The index stays text: Redis reads it only after finding
    /// the list, so a missing key answers nil whatever the index says.
    Index {
        key: Bytes,
        index: Bytes,
    },
    /// LSET, the index read after the key for the same reason.
    Set {
        key: Bytes,
        index: Bytes,
        item: Bytes,
    },
    Insert {
        key: Bytes,
        after: bool,
        pivot: Bytes,
        item: Bytes,
    },
    Rem {
        key: Bytes,
        count: i64,
        item: Bytes,
    },
    Trim {
        key: Bytes,
        start: i64,
        stop: i64,
    },
    Pos {
        key: Bytes,
        item: Bytes,
        opts: PosOpts,
    },
    /// LMOVE and RPOPLPUSH.
    Move(Move),
    MPop(MPop),
    /// BLPOP and BRPOP; `timeout_ms` 0 waits forever.
    BPop {
        keys: Vec<Bytes>,
        end: End,
        timeout_ms: u64,
    },
    /// BLMOVE and BRPOPLPUSH.
    BMove {
        mv: Move,
        timeout_ms: u64,
    },
    BMPop {
        mpop: MPop,
        timeout_ms: u64,
    },
}

impl ListCmd {
    pub(super) fn parse(name: &str, a: &mut Args) -> Option<Result<ListCmd, Fault>> {
        let parsed = match name {
            "lpush" | "rpush" | "lpushx" | "rpushx" => push(name, a),
            "lpop" | "rpop" => pop(name, a),
            "llen" => a.take().map(|key| ListCmd::Len { key }),
            "lrange" => (|| Ok(ListCmd::Range { key: a.take()?, start: a.i64()?, stop: a.i64()? }))(),
            "lindex" => (|| Ok(ListCmd::Index { key: a.take()?, index: a.take()? }))(),
            "lset" => (|| Ok(ListCmd::Set { key: a.take()?, index: a.take()?, item: a.take()? }))(),
            "linsert" => insert(a),
            "lrem" => (|| Ok(ListCmd::Rem { key: a.take()?, count: a.i64()?, item: a.take()? }))(),
            "ltrim" => (|| Ok(ListCmd::Trim { key: a.take()?, start: a.i64()?, stop: a.i64()? }))(),
            "lpos" => pos(a),
            "lmove" => lmove(a).map(ListCmd::Move),
            "rpoplpush" => {
                (|| Ok(ListCmd::Move(Move { from: a.take()?, to: a.take()?, pop: End::Right, push: End::Left })))()
            }
            "lmpop" => mpop(a).map(ListCmd::MPop),
            "blpop" | "brpop" => bpop(name, a),
            "blmove" => (|| {
                let mv = lmove(a)?;
                Ok(ListCmd::BMove { mv, timeout_ms: timeout(&a.take()?)? })
            })(),
            "brpoplpush" => (|| {
                let mv = Move { from: a.take()?, to: a.take()?, pop: End::Right, push: End::Left };
                Ok(ListCmd::BMove { mv, timeout_ms: timeout(&a.take()?)? })
            })(),
            "blmpop" => (|| {
                // Redis checks the timeout after the rest of the arguments.
                let raw = a.take()?;
                let mpop = mpop(a)?;
                Ok(ListCmd::BMPop { mpop, timeout_ms: timeout(&raw)? })
            })(),
            _ => return None,
        };
        Some(parsed.and_then(|c| a.done().map(|()| c)))
    }

    pub(super) fn keys(&self) -> Vec<&Bytes> {
        match self {
            ListCmd::Push { key, .. }
            | ListCmd::Pop { key, .. }
            | ListCmd::Len { key }
            | ListCmd::Range { key, .. }
            | ListCmd::Index { key, .. }
            | ListCmd::Set { key, .. }
            | ListCmd::Insert { key, .. }
            | ListCmd::Rem { key, .. }
            | ListCmd::Trim { key, .. }
            | ListCmd::Pos { key, .. } => vec![key],
            ListCmd::Move(mv) | ListCmd::BMove { mv, .. } => vec![&mv.from, &mv.to],
            ListCmd::MPop(mpop) | ListCmd::BMPop { mpop, .. } => mpop.keys.iter().collect(),
            ListCmd::BPop { keys, .. } => keys.iter().collect(),
        }
    }

    /// How long a blocking command may wait (0: forever); `None` for the
    /// commands that never block.
    pub fn blocking_timeout_ms(&self) -> Option<u64> {
        match self {
            ListCmd::BPop { timeout_ms, .. }
            | ListCmd::BMove { timeout_ms, .. }
            | ListCmd::BMPop { timeout_ms, .. } => Some(*timeout_ms),
            _ => None,
        }
    }

    pub(super) fn run(&self, tx: &mut Txn, _rng: &mut Rng) -> Run {
        if let Some(ms) = self.blocking_timeout_ms() {
            deadline_fits(ms, tx.now())?;
        }
        match self {
            ListCmd::Push { key, end, items, existing } => {
                let Some(list) = tx.write::<ListValue>(key, !existing)? else { return Ok(Out::Int(0)) };
                for item in items {
                    push_at(list, *end, item.clone());
                }
                Ok(Out::len(list.len()))
            }
            ListCmd::Pop { key, end, count } => {
                let Some(list) = tx.write::<ListValue>(key, false)? else {
                    return Ok(if count.is_some() { Out::NilArray } else { Out::Nil });
                };
                Ok(match count {
                    None => pop_at(list, *end).map_or(Out::Nil, Out::Bulk),
                    Some(n) => Out::Array(pop_many(list, *end, *n)),
                })
            }
            ListCmd::Len { key } => Ok(Out::len(tx.read::<ListValue>(key)?.map_or(0, ListValue::len))),
            ListCmd::Range { key, start, stop } => {
                let Some(list) = tx.read::<ListValue>(key)? else { return Ok(Out::Array(vec![])) };
                Ok(range(*start, *stop, list.len()).map_or(Out::Array(vec![]), |r| Out::bulks(list.range(r))))
            }
            ListCmd::Index { key, index } => {
                let Some(list) = tx.read::<ListValue>(key)? else { return Ok(Out::Nil) };
                let at = from_end(int(index)?, list.len());
                Ok(Out::optional(at.and_then(|i| list.get(i))))
            }
            ListCmd::Set { key, index, item } => {
                let list = tx.write::<ListValue>(key, false)?.ok_or(Fault::NoSuchKey)?;
                let len = list.len();
                let at = from_end(int(index)?, len).filter(|&i| i < len).ok_or(Fault::OutOfRange)?;
                list.set(at, item.clone());
                Ok(Out::Ok)
            }
            ListCmd::Insert { key, after, pivot, item } => {
                let Some(list) = tx.write::<ListValue>(key, false)? else { return Ok(Out::Int(0)) };
                let Some(at) = list.iter().position(|x| x == pivot) else { return Ok(Out::Int(-1)) };
                list.insert(at + usize::from(*after), item.clone());
                Ok(Out::len(list.len()))
            }
            ListCmd::Rem { key, count, item } => {
                let Some(list) = tx.write::<ListValue>(key, false)? else { return Ok(Out::Int(0)) };
                Ok(Out::len(remove_matches(list, item, *count)))
            }
            ListCmd::Trim { key, start, stop } => {
                if let Some(list) = tx.write::<ListValue>(key, false)? {
                    // An empty range empties the list, which `Cmd::run` then deletes.
                    let keep = range(*start, *stop, list.len()).map_or(0..0, |r| *r.start()..*r.end() + 1);
                    list.keep(keep);
                }
                Ok(Out::Ok)
            }
            ListCmd::Pos { key, item, opts } => {
                let Some(list) = tx.read::<ListValue>(key)? else {
                    return Ok(if opts.count.is_some() { Out::Array(vec![]) } else { Out::Nil });
                };
                let hits = positions(list, item, opts);
                Ok(match opts.count {
                    Some(_) => Out::Array(hits.into_iter().map(Out::len).collect()),
                    None => hits.first().map_or(Out::Nil, |&i| Out::len(i)),
                })
            }
            ListCmd::Move(mv) | ListCmd::BMove { mv, .. } => move_one(tx, mv),
            ListCmd::MPop(mpop) | ListCmd::BMPop { mpop, .. } => pop_first(tx, &mpop.keys, mpop.end, Some(mpop.count)),
            ListCmd::BPop { keys, end, .. } => pop_first(tx, keys, *end, None),
        }
    }
}

// ---- parsing ----------------------------------------------------------------

/// `key element [element …]`.
fn push(name: &str, a: &mut Args) -> Result<ListCmd, Fault> {
    let key = a.take()?;
    let items = a.rest();
    if items.is_empty() {
        return Err(Fault::Arity(name.to_string()));
    }
    let end = if name.starts_with('l') { End::Left } else { End::Right };
    Ok(ListCmd::Push { key, end, items, existing: name.ends_with('x') })
}

/// `key [count]`: the table's arity allows more, Redis refuses them.
fn pop(name: &str, a: &mut Args) -> Result<ListCmd, Fault> {
    let key = a.take()?;
    if a.remaining() > 1 {
        return Err(Fault::Arity(name.to_string()));
    }
    let count = if a.is_empty() { None } else { Some(non_negative(&a.take()?, Fault::NotPositive)?) };
    let end = if name == "lpop" { End::Left } else { End::Right };
    Ok(ListCmd::Pop { key, end, count })
}

/// `key BEFORE|AFTER pivot element`.
fn insert(a: &mut Args) -> Result<ListCmd, Fault> {
    let key = a.take()?;
    let after = if a.eat("after") {
        true
    } else if a.eat("before") {
        false
    } else {
        return Err(Fault::Syntax);
    };
    Ok(ListCmd::Insert { key, after, pivot: a.take()?, item: a.take()? })
}

/// `key element [RANK rank] [COUNT num-matches] [MAXLEN len]`, each
/// option any number of times (the last wins).
fn pos(a: &mut Args) -> Result<ListCmd, Fault> {
    let (key, item) = (a.take()?, a.take()?);
    let mut opts = PosOpts { rank: 1, count: None, maxlen: 0 };
    while !a.is_empty() {
        // An option without its value is a syntax error, whatever its name.
        if a.remaining() < 2 {
            return Err(Fault::Syntax);
        }
        if a.eat("rank") {
            opts.rank = rank(a.i64()?)?;
        } else if a.eat("count") {
            opts.count = Some(non_negative(&a.take()?, Fault::other("ERR COUNT can't be negative"))?);
        } else if a.eat("maxlen") {
            opts.maxlen = non_negative(&a.take()?, Fault::other("ERR MAXLEN can't be negative"))?;
        } else {
            return Err(Fault::Syntax);
        }
    }
    Ok(ListCmd::Pos { key, item, opts })
}

fn rank(rank: i64) -> Result<i64, Fault> {
    match rank {
        // Redis negates a negative rank, so it refuses the one without a positive.
        i64::MIN => {
            Err(Fault::other(format!("ERR value is out of range, value must between {} and {}", -i64::MAX, i64::MAX)))
        }
        0 => Err(Fault::other(
            "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... \
             or use negative to start from the end of the list",
        )),
        r => Ok(r),
    }
}

/// `source destination LEFT|RIGHT LEFT|RIGHT`.
fn lmove(a: &mut Args) -> Result<Move, Fault> {
    let (from, to) = (a.take()?, a.take()?);
    Ok(Move { from, to, pop: end(a)?, push: end(a)? })
}

/// `numkeys key [key …] LEFT|RIGHT [COUNT count]`, with LMPOP's own errors:
/// any bad numkeys is "should be greater than 0", and one past the
/// arguments a syntax error (there is no LEFT|RIGHT after the keys).
fn mpop(a: &mut Args) -> Result<MPop, Fault> {
    let keys = a.numkeys().map_err(|f| match f {
        Fault::NotInteger => Fault::NumKeysZero,
        Fault::NumKeysTooMany => Fault::Syntax,
        f => f,
    })?;
    let end = end(a)?;
    let mut count = None;
    while !a.is_empty() {
        if count.is_none() && a.remaining() >= 2 && a.eat("count") {
            let n = non_negative(&a.take()?, Fault::other("ERR count should be greater than 0"))?;
            if n == 0 {
                return Err(Fault::other("ERR count should be greater than 0"));
            }
            count = Some(n);
        } else {
            return Err(Fault::Syntax);
        }
    }
    Ok(MPop { keys, end, count: count.unwrap_or(1) })
}

/// `key [key …] timeout`.
fn bpop(name: &str, a: &mut Args) -> Result<ListCmd, Fault> {
    let mut keys = a.rest();
    let raw = keys.pop().filter(|_| !keys.is_empty()).ok_or_else(|| Fault::Arity(name.to_string()))?;
    let end = if name == "blpop" { End::Left } else { End::Right };
    Ok(ListCmd::BPop { keys, end, timeout_ms: timeout(&raw)? })
}

/// LEFT or RIGHT.
fn end(a: &mut Args) -> Result<End, Fault> {
    let arg = a.take()?;
    if arg.eq_ignore_ascii_case(b"left") {
        Ok(End::Left)
    } else if arg.eq_ignore_ascii_case(b"right") {
        Ok(End::Right)
    } else {
        Err(Fault::Syntax)
    }
}

/// An integer ≥ 0; `fault` for anything else, not-an-integer included
/// (as Redis's `getPositiveLongFromObjectOrReply` answers).
fn non_negative(arg: &[u8], fault: Fault) -> Result<usize, Fault> {
    int(arg).ok().and_then(|n| usize::try_from(n).ok()).ok_or(fault)
}

/// A blocking timeout in seconds, as a float, to whole milliseconds
/// rounded up; 0 waits forever.
fn timeout(arg: &[u8]) -> Result<u64, Fault> {
    let secs = float(arg).ok_or_else(|| Fault::other("ERR timeout is not a float or out of range"))?;
    let ms = (secs * 1000.0).ceil();
    // Redis keeps deadlines in a signed 64-bit count of milliseconds.
    if ms >= 2f64.powi(63) {
        return Err(out_of_range());
    }
    // A tiny negative timeout rounds up to -0, which Redis takes as 0.
    if ms < 0.0 {
        return Err(Fault::other("ERR timeout is negative"));
    }
    Ok(ms as u64)
}

/// Redis refuses a timeout whose deadline (now + timeout) would overflow;
/// checked when run, the first moment `now` is known.
fn deadline_fits(timeout_ms: u64, now: Millis) -> Result<(), Fault> {
    let room = (i64::MAX as u64).saturating_sub(now);
    if timeout_ms > room {
        return Err(out_of_range());
    }
    Ok(())
}

fn out_of_range() -> Fault {
    Fault::other("ERR timeout is out of range")
}

// ---- running ----------------------------------------------------------------

fn push_at(list: &mut ListValue, end: End, item: Bytes) {
    match end {
        End::Left => list.push_front(item),
        End::Right => list.push_back(item),
    }
}

fn pop_at(list: &mut ListValue, end: End) -> Option<Bytes> {
    match end {
        End::Left => list.pop_front(),
        End::Right => list.pop_back(),
    }
}

/// Up to `count` items from `end`, in the order they came off.
fn pop_many(list: &mut ListValue, end: End, count: usize) -> Vec<Out> {
    let n = count.min(list.len());
    (0..n).filter_map(|_| pop_at(list, end)).map(Out::Bulk).collect()
}

/// LMOVE: the source missing answers nil before the destination's type
/// is looked at; a destination of another type fails before anything
/// moves. With source = destination the list rotates.
fn move_one(tx: &mut Txn, mv: &Move) -> Run {
    if tx.read::<ListValue>(&mv.from)?.is_none() {
        return Ok(Out::Nil);
    }
    tx.read::<ListValue>(&mv.to)?;
    let source = tx.write::<ListValue>(&mv.from, false)?;
    let Some(item) = source.and_then(|list| pop_at(list, mv.pop)) else { return Ok(Out::Nil) };
    // Still there when it was the source and is now empty: `Cmd::run`
    // deletes empty lists only after the command.
    let dest = tx.write::<ListValue>(&mv.to, true)?.expect("created when missing");
    push_at(dest, mv.push, item.clone());
    Ok(Out::Bulk(item))
}

/// BLPOP/BRPOP (`count` None: one item, `[key, item]`) and LMPOP/BLMPOP
/// (`[key, [items]]`): from the first key holding a list; a key of another
/// type met before that is an error. Nothing to pop is the null array.
fn pop_first(tx: &mut Txn, keys: &[Bytes], end: End, count: Option<usize>) -> Run {
    for key in keys {
        let Some(list) = tx.write::<ListValue>(key, false)? else { continue };
        if list.is_empty() {
            continue;
        }
        let popped = match count {
            None => pop_at(list, end).map_or(Out::Nil, Out::Bulk),
            Some(n) => Out::Array(pop_many(list, end, n)),
        };
        return Ok(Out::Array(vec![Out::bulk(key), popped]));
    }
    Ok(Out::NilArray)
}

/// LREM: `count` > 0 removes the first `count` matches, < 0 the last,
/// 0 all of them; returns how many went.
fn remove_matches(list: &mut ListValue, item: &Bytes, count: i64) -> usize {
    let total = list.iter().filter(|x| *x == item).count();
    if total == 0 {
        return 0;
    }
    let limit = match count {
        0 => total,
        n => usize::try_from(n.unsigned_abs()).unwrap_or(usize::MAX).min(total),
    };
    // Matches are numbered from 1 in list order; from the tail, the first
    // `total - limit` of them stay.
    let spared = if count < 0 { total - limit } else { 0 };
    let mut seen = 0;
    list.retain(|x| {
        if x != item {
            return true;
        }
        seen += 1;
        seen <= spared || seen > spared + limit
    })
}

/// LPOS: the head-based indexes of the matches `opts` asks for.
fn positions(list: &ListValue, item: &Bytes, opts: &PosOpts) -> Vec<usize> {
    let scanned = if opts.maxlen == 0 { usize::MAX } else { opts.maxlen };
    let skip = usize::try_from(opts.rank.unsigned_abs().saturating_sub(1)).unwrap_or(usize::MAX);
    let wanted = match opts.count {
        None => 1,
        Some(0) => usize::MAX,
        Some(n) => n,
    };
    let pick = |items: &mut dyn Iterator<Item = (usize, &[u8])>| -> Vec<usize> {
        items.take(scanned).filter(|(_, x)| *x == item).map(|(i, _)| i).skip(skip).take(wanted).collect()
    };
    if opts.rank > 0 {
        pick(&mut list.iter().enumerate())
    } else {
        pick(&mut list.iter().enumerate().rev())
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use crate::cmd::Cmd;
    use crate::reply::{Fault, Out};
    use crate::Db;

    fn run(db: &Db, line: &str) -> Out {
        let argv: Vec<Bytes> = line.split_whitespace().map(|w| Bytes::copy_from_slice(w.as_bytes())).collect();
        match Cmd::parse(&argv) {
            Ok(cmd) => db.run(&cmd, 1_000, 7),
            Err(fault) => Out::Err(fault),
        }
    }

    fn bulk(s: &str) -> Out {
        Out::Bulk(Bytes::copy_from_slice(s.as_bytes()))
    }

    fn bulks(items: &str) -> Out {
        Out::Array(items.split_whitespace().map(bulk).collect())
    }

    fn ints(items: &[i64]) -> Out {
        Out::Array(items.iter().map(|&i| Out::Int(i)).collect())
    }

    fn err(text: &str) -> Out {
        Out::Err(Fault::other(text))
    }

    /// The error text of `out`, so expected texts are compared whatever
    /// variant carries them.
    fn text(out: Out) -> String {
        match out {
            Out::Err(f) => f.to_string(),
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn pushes_and_pops() {
        let db = Db::new();
        assert_eq!(run(&db, "RPUSH l b c"), Out::Int(2));
        assert_eq!(run(&db, "LPUSH l a z"), Out::Int(4));
        assert_eq!(run(&db, "LRANGE l 0 -1"), bulks("z a b c"));
        assert_eq!(run(&db, "LPUSHX nokey a"), Out::Int(0));
        assert_eq!(run(&db, "RPUSHX l d"), Out::Int(5));
        assert_eq!(run(&db, "LPOP l"), bulk("z"));
        assert_eq!(run(&db, "RPOP l"), bulk("d"));
        assert_eq!(run(&db, "LPOP l 2"), bulks("a b"));
        assert_eq!(run(&db, "LPOP l 0"), Out::Array(vec![]));
        assert_eq!(run(&db, "RPOP l 10"), bulks("c"));
        assert!(!db.exists(b"l", 1_000), "an emptied list is deleted");
        assert_eq!(run(&db, "LPOP l"), Out::Nil);
        assert_eq!(run(&db, "LPOP l 0"), Out::NilArray);
        assert_eq!(run(&db, "LLEN l"), Out::Int(0));
        assert_eq!(text(run(&db, "LPOP l -1")), "ERR value is out of range, must be positive");
        assert_eq!(text(run(&db, "LPOP l abc")), "ERR value is out of range, must be positive");
        assert_eq!(text(run(&db, "LPOP l 1 1")), "ERR wrong number of arguments for 'lpop' command");
    }

    #[test]
    fn ranges_and_indexes_from_the_end() {
        let db = Db::new();
        run(&db, "RPUSH l a b c d e");
        assert_eq!(run(&db, "LRANGE l -3 -2"), bulks("c d"));
        assert_eq!(run(&db, "LRANGE l -100 1"), bulks("a b"));
        assert_eq!(run(&db, "LRANGE l 3 100"), bulks("d e"));
        assert_eq!(run(&db, "LRANGE l 4 2"), Out::Array(vec![]));
        assert_eq!(run(&db, "LRANGE nokey 0 -1"), Out::Array(vec![]));
        assert_eq!(run(&db, "LINDEX l -1"), bulk("e"));
        assert_eq!(run(&db, "LINDEX l 5"), Out::Nil);
        assert_eq!(run(&db, "LINDEX l -6"), Out::Nil);
        assert_eq!(run(&db, "LINDEX nokey abc"), Out::Nil, "the index is read after the key");
        assert_eq!(run(&db, "LINDEX l abc"), Out::Err(Fault::NotInteger));
        assert_eq!(run(&db, "LSET l -2 D"), Out::Ok);
        assert_eq!(run(&db, "LSET l 5 x"), Out::Err(Fault::OutOfRange));
        assert_eq!(run(&db, "LSET nokey 0 x"), Out::Err(Fault::NoSuchKey));
        assert_eq!(text(run(&db, "LSET nokey 0 x")), "ERR no such key");
        assert_eq!(run(&db, "LTRIM l 1 -2"), Out::Ok);
        assert_eq!(run(&db, "LRANGE l 0 -1"), bulks("b c D"));
        assert_eq!(run(&db, "LTRIM l 5 10"), Out::Ok);
        assert!(!db.exists(b"l", 1_000));
        assert_eq!(run(&db, "LTRIM nokey 0 1"), Out::Ok);
    }

    #[test]
    fn lpos_options() {
        let db = Db::new();
        run(&db, "RPUSH l a b c x 2 3 c c");
        assert_eq!(run(&db, "LPOS l c"), Out::Int(2));
        assert_eq!(run(&db, "LPOS l c RANK 2"), Out::Int(6));
        assert_eq!(run(&db, "LPOS l c RANK 4"), Out::Nil);
        assert_eq!(run(&db, "LPOS l c RANK -1"), Out::Int(7));
        assert_eq!(run(&db, "LPOS l c COUNT 0"), ints(&[2, 6, 7]));
        assert_eq!(run(&db, "LPOS l c COUNT 2 RANK -1"), ints(&[7, 6]));
        assert_eq!(run(&db, "LPOS l c COUNT 0 RANK 2"), ints(&[6, 7]));
        assert_eq!(run(&db, "LPOS l c COUNT 0 MAXLEN 3"), ints(&[2]));
        assert_eq!(run(&db, "LPOS l c COUNT 0 MAXLEN 3 RANK -1"), ints(&[7, 6]));
        assert_eq!(run(&db, "LPOS l c COUNT 0 MAXLEN 7 RANK 2"), ints(&[6]));
        assert_eq!(run(&db, "LPOS l nope COUNT 2"), Out::Array(vec![]));
        assert_eq!(run(&db, "LPOS nokey c COUNT 0"), Out::Array(vec![]));
        assert_eq!(run(&db, "LPOS nokey c"), Out::Nil);
        assert!(text(run(&db, "LPOS l c RANK 0"))
            .starts_with("ERR RANK can't be zero: use 1 to start from the first match"));
        assert!(text(run(&db, "LPOS l c RANK -9223372036854775808")).starts_with("ERR value is out of range"));
        assert_eq!(run(&db, "LPOS l c COUNT -1"), err("ERR COUNT can't be negative"));
        assert_eq!(run(&db, "LPOS l c MAXLEN x"), err("ERR MAXLEN can't be negative"));
        assert_eq!(run(&db, "LPOS l c RANK"), Out::Err(Fault::Syntax));
        assert_eq!(run(&db, "LPOS l c FOO 1"), Out::Err(Fault::Syntax));
    }

    #[test]
    fn insert_and_remove() {
        let db = Db::new();
        run(&db, "RPUSH l a b a c a");
        assert_eq!(run(&db, "LINSERT l BEFORE b x"), Out::Int(6));
        assert_eq!(run(&db, "LINSERT l after c y"), Out::Int(7));
        assert_eq!(run(&db, "LRANGE l 0 -1"), bulks("a x b a c y a"));
        assert_eq!(run(&db, "LINSERT l BEFORE nope z"), Out::Int(-1));
        assert_eq!(run(&db, "LINSERT nokey BEFORE a z"), Out::Int(0));
        assert_eq!(run(&db, "LINSERT l middle a z"), Out::Err(Fault::Syntax));
        assert_eq!(run(&db, "LREM l -2 a"), Out::Int(2));
        assert_eq!(run(&db, "LRANGE l 0 -1"), bulks("a x b c y"));
        run(&db, "RPUSH l a a");
        assert_eq!(run(&db, "LREM l 1 a"), Out::Int(1));
        assert_eq!(run(&db, "LRANGE l 0 -1"), bulks("x b c y a a"));
        assert_eq!(run(&db, "LREM l 0 a"), Out::Int(2));
        assert_eq!(run(&db, "LREM l 0 nope"), Out::Int(0));
        assert_eq!(run(&db, "LREM nokey 0 a"), Out::Int(0));
    }

    #[test]
    fn lmove_moves_and_rotates() {
        let db = Db::new();
        run(&db, "RPUSH l a b c");
        assert_eq!(run(&db, "LMOVE l l LEFT RIGHT"), bulk("a"));
        assert_eq!(run(&db, "LRANGE l 0 -1"), bulks("b c a"));
        assert_eq!(run(&db, "RPOPLPUSH l l"), bulk("a"));
        assert_eq!(run(&db, "LRANGE l 0 -1"), bulks("a b c"));
        assert_eq!(run(&db, "LMOVE l m RIGHT LEFT"), bulk("c"));
        assert_eq!(run(&db, "LMOVE l m left right"), bulk("a"));
        assert_eq!(run(&db, "LRANGE m 0 -1"), bulks("c a"));
        assert_eq!(run(&db, "LMOVE nokey m LEFT LEFT"), Out::Nil);
        assert_eq!(run(&db, "LMOVE l m UP LEFT"), Out::Err(Fault::Syntax));
        run(&db, "RPUSH one x");
        assert_eq!(run(&db, "LMOVE one one LEFT LEFT"), bulk("x"), "a single item rotates onto itself");
        assert_eq!(run(&db, "LRANGE one 0 -1"), bulks("x"));
        run(&db, "RPOPLPUSH l m");
        assert!(!db.exists(b"l", 1_000));
    }

    #[test]
    fn lmpop() {
        let db = Db::new();
        run(&db, "RPUSH b 1 2 3");
        assert_eq!(run(&db, "LMPOP 2 a b RIGHT COUNT 2"), Out::Array(vec![bulk("b"), bulks("3 2")]));
        assert_eq!(run(&db, "LMPOP 2 a b LEFT"), Out::Array(vec![bulk("b"), bulks("1")]));
        assert_eq!(run(&db, "LMPOP 2 a b LEFT"), Out::NilArray);
        assert_eq!(text(run(&db, "LMPOP 0 a LEFT")), "ERR numkeys should be greater than 0");
        assert_eq!(text(run(&db, "LMPOP x a LEFT")), "ERR numkeys should be greater than 0");
        assert_eq!(run(&db, "LMPOP 5 a b LEFT"), Out::Err(Fault::Syntax));
        assert_eq!(run(&db, "LMPOP 2 a b"), Out::Err(Fault::Syntax));
        assert_eq!(run(&db, "LMPOP 1 a LEFT COUNT 1 COUNT 2"), Out::Err(Fault::Syntax));
        assert_eq!(run(&db, "LMPOP 1 a LEFT COUNT"), Out::Err(Fault::Syntax));
        assert_eq!(run(&db, "LMPOP 1 a LEFT COUNT 0"), err("ERR count should be greater than 0"));
        assert_eq!(run(&db, "LMPOP 1 a LEFT COUNT -1"), err("ERR count should be greater than 0"));
        assert_eq!(run(&db, "LMPOP 1 a LEFT COUNT x"), err("ERR count should be greater than 0"));
    }

    #[test]
    fn wrong_type() {
        let db = Db::new();
        db.put(Bytes::from_static(b"s"), Bytes::from_static(b"v"), 0);
        run(&db, "RPUSH l a");
        for line in [
            "LPUSH s a",
            "RPUSHX s a",
            "LPOP s",
            "RPOP s 0",
            "LLEN s",
            "LRANGE s 0 -1",
            "LINDEX s abc",
            "LSET s 0 a",
            "LINSERT s BEFORE a b",
            "LREM s 0 a",
            "LTRIM s 0 1",
            "LPOS s a",
            "LMOVE s l LEFT LEFT",
            "LMOVE l s LEFT LEFT",
            "LMPOP 2 nokey s LEFT",
            "BLPOP s 0",
            "BLMPOP 0 2 s l LEFT",
            "BRPOPLPUSH l s 0",
        ] {
            assert_eq!(run(&db, line), Out::Err(Fault::WrongType), "{line}");
        }
        assert_eq!(run(&db, "LRANGE l 0 -1"), bulks("a"), "a failed move pops nothing");
        assert_eq!(run(&db, "LMOVE nokey s LEFT LEFT"), Out::Nil, "no source: the destination is not checked");
        assert_eq!(run(&db, "LMPOP 2 l s LEFT"), Out::Array(vec![bulk("l"), bulks("a")]));
    }

    #[test]
    fn blocking_forms_try_once() {
        let db = Db::new();
        assert_eq!(run(&db, "BLPOP a b 0"), Out::NilArray);
        assert_eq!(run(&db, "BLMOVE a b LEFT RIGHT 0.5"), Out::Nil);
        assert_eq!(run(&db, "BRPOPLPUSH a b 1"), Out::Nil);
        assert_eq!(run(&db, "BLMPOP 0 2 a b LEFT"), Out::NilArray);
        run(&db, "RPUSH b 1 2 3 4");
        assert_eq!(run(&db, "BLPOP a b 0"), Out::Array(vec![bulk("b"), bulk("1")]));
        assert_eq!(run(&db, "BRPOP a b 0"), Out::Array(vec![bulk("b"), bulk("4")]));
        assert_eq!(run(&db, "BLMPOP 0 2 a b RIGHT COUNT 5"), Out::Array(vec![bulk("b"), bulks("3 2")]));
        run(&db, "RPUSH a x y");
        assert_eq!(run(&db, "BRPOPLPUSH a c 0"), bulk("y"));
        assert_eq!(run(&db, "BLMOVE a c LEFT RIGHT 0"), bulk("x"));
        assert_eq!(run(&db, "LRANGE c 0 -1"), bulks("y x"));
    }

    #[test]
    fn blocking_timeouts() {
        let timeout = |line: &str| {
            let argv: Vec<Bytes> = line.split_whitespace().map(|w| Bytes::copy_from_slice(w.as_bytes())).collect();
            Cmd::parse(&argv).map(|c| match c {
                Cmd::List(l) => l.blocking_timeout_ms(),
                _ => panic!("not a list command"),
            })
        };
        assert_eq!(timeout("BLPOP a 0"), Ok(Some(0)));
        assert_eq!(timeout("BRPOP a b 0.1"), Ok(Some(100)));
        assert_eq!(timeout("BLMOVE a b LEFT LEFT 1.0001"), Ok(Some(1001)), "rounded up");
        assert_eq!(timeout("BRPOPLPUSH a b 2"), Ok(Some(2000)));
        assert_eq!(timeout("BLMPOP 3 1 a LEFT"), Ok(Some(3000)));
        assert_eq!(timeout("BLPOP a -0.0001"), Ok(Some(0)), "rounds up to zero, as in Redis");
        assert_eq!(timeout("LPOP a"), Ok(None));
        assert_eq!(timeout("BLPOP a -1"), Err(Fault::other("ERR timeout is negative")));
        assert_eq!(timeout("BLPOP a abc"), Err(Fault::other("ERR timeout is not a float or out of range")));
        assert_eq!(timeout("BLPOP a inf"), Err(Fault::other("ERR timeout is out of range")));
        assert_eq!(timeout("BLPOP a 1e30"), Err(Fault::other("ERR timeout is out of range")));
        assert_eq!(timeout("BLMOVE a b LEFT UP 1"), Err(Fault::Syntax));
        // BLMPOP reads its timeout after the rest.
        assert_eq!(timeout("BLMPOP -1 0 a LEFT"), Err(Fault::NumKeysZero));
        assert_eq!(timeout("BLMPOP x 1 a LEFT"), Err(Fault::other("ERR timeout is not a float or out of range")));
        // Fits when parsed, but now + timeout would pass i64::MAX.
        let db = Db::new();
        let cmd =
            Cmd::parse(&[Bytes::from_static(b"BLPOP"), Bytes::from_static(b"a"), Bytes::from_static(b"1")]).unwrap();
        assert_eq!(db.run(&cmd, i64::MAX as u64 - 999, 7), err("ERR timeout is out of range"));
        assert_eq!(db.run(&cmd, i64::MAX as u64 - 1000, 7), Out::NilArray);
    }
}
