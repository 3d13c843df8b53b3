//! Reading the sorted-set commands' arguments, with Redis's checks in
//! Redis's order and its error texts.

use bytes::Bytes;

use super::{AddFlags, Aggregate, RangeBy, RangeSpec, SetOp, ZSetCmd};
use crate::cmd::args::{float, int, is, Args};
use crate::reply::Fault;
use crate::types::zset::{LexEdge, LexRange, ScoreRange};

/// `key [NX|XX] [GT|LT] [CH] [INCR] score member [score member …]`.
pub(super) fn add(a: &mut Args, mut flags: AddFlags) -> Result<ZSetCmd, Fault> {
    let key = a.take()?;
    loop {
        let flag = match a.peek() {
            Some(o) if is(o, "nx") => &mut flags.nx,
            Some(o) if is(o, "xx") => &mut flags.xx,
            Some(o) if is(o, "gt") => &mut flags.gt,
            Some(o) if is(o, "lt") => &mut flags.lt,
            Some(o) if is(o, "ch") => &mut flags.ch,
            Some(o) if is(o, "incr") => &mut flags.incr,
            _ => break,
        };
        *flag = true;
        a.take()?;
    }
    if a.is_empty() || !a.remaining().is_multiple_of(2) {
        return Err(Fault::Syntax);
    }
    if flags.nx && flags.xx {
        return Err(Fault::other("ERR XX and NX options at the same time are not compatible"));
    }
    if ((flags.gt || flags.lt) && flags.nx) || (flags.gt && flags.lt) {
        return Err(Fault::other("ERR GT, LT, and/or NX options at the same time are not compatible"));
    }
    if flags.incr && a.remaining() > 2 {
        return Err(Fault::other("ERR INCR option supports a single increment-element pair"));
    }
    let mut pairs = Vec::with_capacity(a.remaining() / 2);
    while !a.is_empty() {
        pairs.push((a.f64()?, a.take()?));
    }
    Ok(ZSetCmd::Add { key, flags, pairs })
}

/// `key member [WITHSCORE]`.
pub(super) fn rank(a: &mut Args, name: &str) -> Result<ZSetCmd, Fault> {
    let (key, member) = (a.take()?, a.take()?);
    if a.remaining() > 1 {
        return Err(Fault::Arity(name.to_string()));
    }
    let with_score = a.eat("withscore");
    Ok(ZSetCmd::Rank { key, member, rev: name == "zrevrank", with_score })
}

/// A score range's ends: floats as `strtod` reads them (so an empty end
/// is 0), `(` for exclusive, never NaN.
pub(super) fn score_range(min: &[u8], max: &[u8]) -> Result<ScoreRange, Fault> {
    let (min, min_ex) = score_end(min).ok_or(Fault::MinMaxNotFloat)?;
    let (max, max_ex) = score_end(max).ok_or(Fault::MinMaxNotFloat)?;
    Ok(ScoreRange { min, max, min_ex, max_ex })
}

fn score_end(arg: &[u8]) -> Option<(f64, bool)> {
    let (text, exclusive) = match arg.strip_prefix(b"(") {
        Some(rest) => (rest, true),
        None => (arg, false),
    };
    Some((strtod_whole(text)?, exclusive))
}

/// What Redis's `strtod(s, &end)` followed by `*end == '\0'` accepts:
/// leading spaces, nothing at all (0), no NaN.
fn strtod_whole(text: &[u8]) -> Option<f64> {
    if text.is_empty() {
        return Some(0.0);
    }
    let start = text.iter().position(|b| !b.is_ascii_whitespace() && *b != 0x0b)?;
    float(&text[start..])
}

/// A lex range's ends: `[m` inclusive, `(m` exclusive, `-` and `+`.
pub(super) fn lex_range(min: &[u8], max: &[u8]) -> Result<LexRange, Fault> {
    let (min, min_ex) = lex_end(min).ok_or(Fault::BadLexRange)?;
    let (max, max_ex) = lex_end(max).ok_or(Fault::BadLexRange)?;
    Ok(LexRange { min, max, min_ex, max_ex })
}

fn lex_end(arg: &[u8]) -> Option<(LexEdge, bool)> {
    let (&first, rest) = arg.split_first()?;
    match first {
        b'-' if rest.is_empty() => Some((LexEdge::Min, true)),
        b'+' if rest.is_empty() => Some((LexEdge::Max, true)),
        b'(' => Some((LexEdge::At(Bytes::copy_from_slice(rest)), true)),
        b'[' => Some((LexEdge::At(Bytes::copy_from_slice(rest)), false)),
        _ => None,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum By {
    Rank,
    Score,
    Lex,
}

/// `key min max [BYSCORE|BYLEX] [REV] [LIMIT offset count] [WITHSCORES]`
/// of ZRANGE, and the fixed forms of the older commands (which refuse the
/// options their name already implies). Returns the key, the query and
/// WITHSCORES.
pub(super) fn range(a: &mut Args, name: &str) -> Result<(Bytes, RangeSpec, bool), Fault> {
    let store = name == "zrangestore";
    let (mut by, mut rev) = match name {
        "zrevrange" => (Some(By::Rank), Some(true)),
        "zrangebyscore" => (Some(By::Score), Some(false)),
        "zrevrangebyscore" => (Some(By::Score), Some(true)),
        "zrangebylex" => (Some(By::Lex), Some(false)),
        "zrevrangebylex" => (Some(By::Lex), Some(true)),
        _ => (None, None),
    };
    let (key, mut min, mut max) = (a.take()?, a.take()?, a.take()?);
    let (mut with_scores, mut offset, mut limit) = (false, 0, -1);
    while let Some(arg) = a.peek() {
        if is(arg, "limit") && a.remaining() >= 3 {
            a.take()?;
            offset = a.i64()?;
            limit = a.i64()?;
            continue;
        }
        if !store && is(arg, "withscores") {
            with_scores = true;
        } else if rev.is_none() && is(arg, "rev") {
            rev = Some(true);
        } else if by.is_none() && is(arg, "bylex") {
            by = Some(By::Lex);
        } else if by.is_none() && is(arg, "byscore") {
            by = Some(By::Score);
        } else {
            return Err(Fault::Syntax);
        }
        a.take()?;
    }
    let (by, rev) = (by.unwrap_or(By::Rank), rev.unwrap_or(false));
    if limit != -1 && by == By::Rank {
        return Err(Fault::other(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        ));
    }
    if with_scores && by == By::Lex {
        return Err(Fault::other("ERR syntax error, WITHSCORES not supported in combination with BYLEX"));
    }
    // Reversed score and lex ranges are given as max then min.
    if rev && by != By::Rank {
        std::mem::swap(&mut min, &mut max);
    }
    let by = match by {
        By::Rank => RangeBy::Rank { start: int(&min)?, stop: int(&max)? },
        By::Score => RangeBy::Score(score_range(&min, &max)?),
        By::Lex => RangeBy::Lex(lex_range(&min, &max)?),
    };
    Ok((key, RangeSpec { by, rev, offset, limit }, with_scores))
}

/// `key start stop` / `key min max` of the ZREMRANGEBY commands.
pub(super) fn rem_range(a: &mut Args, name: &str) -> Result<ZSetCmd, Fault> {
    let (key, min, max) = (a.take()?, a.take()?, a.take()?);
    let by = match name {
        "zremrangebyrank" => RangeBy::Rank { start: int(&min)?, stop: int(&max)? },
        "zremrangebyscore" => RangeBy::Score(score_range(&min, &max)?),
        _ => RangeBy::Lex(lex_range(&min, &max)?),
    };
    Ok(ZSetCmd::RemRange { key, by })
}

/// `key [count]` of ZPOPMIN/ZPOPMAX.
pub(super) fn pop(a: &mut Args, max: bool) -> Result<ZSetCmd, Fault> {
    let key = a.take()?;
    if a.remaining() > 1 {
        return Err(Fault::Syntax);
    }
    let count = if a.is_empty() {
        None
    } else {
        // Redis gives its one message for anything but a count >= 0.
        Some(a.i64().ok().and_then(|n| u64::try_from(n).ok()).ok_or(Fault::NotPositive)?)
    };
    Ok(ZSetCmd::Pop { key, max, count })
}

/// `numkeys key… MIN|MAX [COUNT count]` of ZMPOP, after the timeout for
/// BZMPOP (whose timeout Redis reads last).
pub(super) fn mpop(a: &mut Args, blocking: bool) -> Result<ZSetCmd, Fault> {
    let timeout = if blocking { Some(a.take()?) } else { None };
    let bad_numkeys = || Fault::other("ERR numkeys should be greater than 0");
    let n = a.i64().map_err(|_| bad_numkeys())?;
    let n = u64::try_from(n).ok().filter(|&n| n > 0).ok_or_else(bad_numkeys)?;
    // The keys and then MIN|MAX must be there.
    if n >= a.remaining() as u64 {
        return Err(Fault::Syntax);
    }
    let keys = (0..n).map(|_| a.take()).collect::<Result<Vec<_>, _>>()?;
    let max = match () {
        () if a.eat("min") => false,
        () if a.eat("max") => true,
        () => return Err(Fault::Syntax),
    };
    let mut count = None;
    while !a.is_empty() {
        if count.is_some() || !a.eat("count") || a.is_empty() {
            return Err(Fault::Syntax);
        }
        let bad_count = || Fault::other("ERR count should be greater than 0");
        let n = a.i64().map_err(|_| bad_count())?;
        count = Some(u64::try_from(n).ok().filter(|&n| n > 0).ok_or_else(bad_count)?);
    }
    let timeout_ms = timeout.map(|t| timeout_ms(&t)).transpose()?;
    Ok(ZSetCmd::MPop { keys, max, count: count.unwrap_or(1), timeout_ms })
}

/// `key [key …] timeout` of BZPOPMIN/BZPOPMAX.
pub(super) fn bpop(a: &mut Args, max: bool) -> Result<ZSetCmd, Fault> {
    let mut keys = a.rest();
    let timeout = keys.pop().ok_or(Fault::Syntax)?;
    let timeout_ms = timeout_ms(&timeout)?;
    if keys.is_empty() {
        return Err(Fault::Syntax);
    }
    Ok(ZSetCmd::BPop { keys, max, timeout_ms })
}

/// A blocking timeout in seconds, as milliseconds rounded up (0: for ever).
fn timeout_ms(arg: &[u8]) -> Result<u64, Fault> {
    let secs = float(arg).ok_or_else(|| Fault::other("ERR timeout is not a float or out of range"))?;
    let ms = (secs * 1000.0).ceil();
    // Every double from 2^63 up is past i64::MAX, Redis's limit.
    if ms >= i64::MAX as f64 {
        return Err(Fault::other("ERR timeout is out of range"));
    }
    if ms < 0.0 {
        return Err(Fault::other("ERR timeout is negative"));
    }
    Ok(ms as u64)
}

/// `key [count [WITHSCORES]]`.
pub(super) fn rand_member(a: &mut Args) -> Result<ZSetCmd, Fault> {
    let key = a.take()?;
    if a.is_empty() {
        return Ok(ZSetCmd::RandMember { key, count: None, with_scores: false });
    }
    let count = a.i64()?;
    if count == i64::MIN {
        return Err(Fault::other(format!(
            "ERR value is out of range, value must between {} and {}",
            -i64::MAX,
            i64::MAX
        )));
    }
    let with_scores = a.eat("withscores");
    a.done()?;
    // Redis refuses counts whose reply could not be built.
    if with_scores && count.unsigned_abs() > (i64::MAX / 2) as u64 {
        return Err(Fault::other("ERR value is out of range"));
    }
    Ok(ZSetCmd::RandMember { key, count: Some(count), with_scores })
}

/// `numkeys key…`: Redis's checks for the algebra commands.
fn numkeys(a: &mut Args, name: &str) -> Result<Vec<Bytes>, Fault> {
    let n = a.i64()?;
    if n < 1 {
        return Err(Fault::other(format!("ERR at least 1 input key is needed for '{name}' command")));
    }
    if n as u64 > a.remaining() as u64 {
        return Err(Fault::Syntax);
    }
    (0..n).map(|_| a.take()).collect()
}

/// `[dest] numkeys key… [WEIGHTS w…] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]`
/// of ZUNION ZINTER ZDIFF and their STORE forms (ZDIFF takes neither
/// WEIGHTS nor AGGREGATE, the STORE forms no WITHSCORES).
pub(super) fn combine(a: &mut Args, name: &str) -> Result<ZSetCmd, Fault> {
    let op = match name.trim_end_matches("store") {
        "zunion" => SetOp::Union,
        "zinter" => SetOp::Inter,
        _ => SetOp::Diff,
    };
    let dest = if name.ends_with("store") { Some(a.take()?) } else { None };
    let keys = numkeys(a, name)?;
    let (mut weights, mut aggregate, mut with_scores) = (vec![1.0; keys.len()], Aggregate::Sum, false);
    while let Some(arg) = a.peek() {
        let left = a.remaining();
        if op != SetOp::Diff && left > keys.len() && is(arg, "weights") {
            a.take()?;
            for w in &mut weights {
                *w = float(&a.take()?).ok_or_else(|| Fault::other("ERR weight value is not a float"))?;
            }
        } else if op != SetOp::Diff && left >= 2 && is(arg, "aggregate") {
            a.take()?;
            aggregate = match a.take()? {
                x if is(&x, "sum") => Aggregate::Sum,
                x if is(&x, "min") => Aggregate::Min,
                x if is(&x, "max") => Aggregate::Max,
                _ => return Err(Fault::Syntax),
            };
        } else if dest.is_none() && a.eat("withscores") {
            with_scores = true;
        } else {
            return Err(Fault::Syntax);
        }
    }
    Ok(ZSetCmd::Combine { op, dest, keys, weights, aggregate, with_scores })
}

/// `numkeys key… [LIMIT limit]`.
pub(super) fn inter_card(a: &mut Args) -> Result<ZSetCmd, Fault> {
    let keys = numkeys(a, "zintercard")?;
    let mut limit = 0;
    while let Some(arg) = a.peek() {
        if a.remaining() < 2 || !is(arg, "limit") {
            return Err(Fault::Syntax);
        }
        a.take()?;
        let bad = || Fault::other("ERR LIMIT can't be negative");
        limit = a.i64().ok().and_then(|n| u64::try_from(n).ok()).ok_or_else(bad)?;
    }
    Ok(ZSetCmd::InterCard { keys, limit })
}
