//! ZADD ZINCRBY ZREM ZCARD ZSCORE ZMSCORE ZRANK ZREVRANK ZCOUNT ZLEXCOUNT
//! ZRANGE ZRANGESTORE ZREVRANGE ZRANGEBYSCORE ZREVRANGEBYSCORE ZRANGEBYLEX
//! ZREVRANGEBYLEX ZREMRANGEBYRANK ZREMRANGEBYSCORE ZREMRANGEBYLEX ZPOPMIN
//! ZPOPMAX ZMPOP BZPOPMIN BZPOPMAX BZMPOP ZRANDMEMBER ZUNION ZINTER ZDIFF
//! ZINTERCARD ZUNIONSTORE ZINTERSTORE ZDIFFSTORE ZSCAN.
//!
//! The blocking pops only make the immediate attempt here; the server
//! parks the client when it comes back empty (see `blocking_timeout_ms`).

mod algebra;
mod parse;
mod pop;
mod range;

use bytes::Bytes;

use super::args::Args;
use super::rng::Rng;
use super::{Run, ScanArgs};
use crate::reply::{Fault, Out};
use crate::txn::Txn;
use crate::types::zset::{LexRange, ScoreRange};
use crate::value::ZSetValue;

/// ZADD's options (ZINCRBY is ZADD with `incr`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AddFlags {
    pub nx: bool,
    pub xx: bool,
    pub gt: bool,
    pub lt: bool,
    pub ch: bool,
    pub incr: bool,
}

/// What a range selects by: ranks, scores or members.
#[derive(Debug, Clone, PartialEq)]
pub enum RangeBy {
    Rank { start: i64, stop: i64 },
    Score(ScoreRange),
    Lex(LexRange),
}

/// A ZRANGE-family query. `limit` is Redis's `LIMIT offset count`, with a
/// negative count for all (the default).
#[derive(Debug, Clone, PartialEq)]
pub struct RangeSpec {
    pub by: RangeBy,
    pub rev: bool,
    pub offset: i64,
    pub limit: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetOp {
    Union,
    Inter,
    Diff,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregate {
    Sum,
    Min,
    Max,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ZSetCmd {
    /// ZADD and ZINCRBY.
    Add {
        key: Bytes,
        flags: AddFlags,
        pairs: Vec<(f64, Bytes)>,
    },
    Rem {
        key: Bytes,
        members: Vec<Bytes>,
    },
    Card {
        key: Bytes,
    },
    Score {
        key: Bytes,
        member: Bytes,
    },
    MScore {
        key: Bytes,
        members: Vec<Bytes>,
    },
    /// ZRANK and ZREVRANK.
    Rank {
        key: Bytes,
        member: Bytes,
        rev: bool,
        with_score: bool,
    },
    Count {
        key: Bytes,
        range: ScoreRange,
    },
    LexCount {
        key: Bytes,
        range: LexRange,
    },
    /// ZRANGE and its older forms.
    Range {
        key: Bytes,
        spec: RangeSpec,
        with_scores: bool,
    },
    RangeStore {
        dest: Bytes,
        key: Bytes,
        spec: RangeSpec,
    },
    /// ZREMRANGEBYRANK, ZREMRANGEBYSCORE, ZREMRANGEBYLEX.
    RemRange {
        key: Bytes,
        by: RangeBy,
    },
    /// ZPOPMIN and ZPOPMAX.
    Pop {
        key: Bytes,
        max: bool,
        count: Option<u64>,
    },
    /// ZMPOP, and BZMPOP with a timeout (milliseconds, 0 for ever).
    MPop {
        keys: Vec<Bytes>,
        max: bool,
        count: u64,
        timeout_ms: Option<u64>,
    },
    /// BZPOPMIN and BZPOPMAX.
    BPop {
        keys: Vec<Bytes>,
        max: bool,
        timeout_ms: u64,
    },
    RandMember {
        key: Bytes,
        count: Option<i64>,
        with_scores: bool,
    },
    /// ZUNION ZINTER ZDIFF and their STORE forms (with `dest`).
    Combine {
        op: SetOp,
        dest: Option<Bytes>,
        keys: Vec<Bytes>,
        weights: Vec<f64>,
        aggregate: Aggregate,
        with_scores: bool,
    },
    /// ZINTERCARD (`limit` 0 for none).
    InterCard {
        keys: Vec<Bytes>,
        limit: u64,
    },
    Scan {
        key: Bytes,
        scan: ScanArgs,
    },
}

impl ZSetCmd {
    pub(super) fn parse(name: &str, a: &mut Args) -> Option<Result<ZSetCmd, Fault>> {
        let parsed = match name {
            "zadd" => parse::add(a, AddFlags::default()),
            "zincrby" => parse::add(a, AddFlags { incr: true, ..AddFlags::default() }),
            "zrem" => a.take().map(|key| ZSetCmd::Rem { key, members: a.rest() }),
            "zcard" => a.take().map(|key| ZSetCmd::Card { key }),
            "zscore" => (|| Ok(ZSetCmd::Score { key: a.take()?, member: a.take()? }))(),
            "zmscore" => a.take().map(|key| ZSetCmd::MScore { key, members: a.rest() }),
            "zrank" | "zrevrank" => parse::rank(a, name),
            "zcount" => (|| {
                let key = a.take()?;
                Ok(ZSetCmd::Count { key, range: parse::score_range(&a.take()?, &a.take()?)? })
            })(),
            "zlexcount" => (|| {
                let key = a.take()?;
                Ok(ZSetCmd::LexCount { key, range: parse::lex_range(&a.take()?, &a.take()?)? })
            })(),
            "zrange" | "zrevrange" | "zrangebyscore" | "zrevrangebyscore" | "zrangebylex" | "zrevrangebylex" => {
                parse::range(a, name).map(|(key, spec, with_scores)| ZSetCmd::Range { key, spec, with_scores })
            }
            "zrangestore" => (|| {
                let dest = a.take()?;
                let (key, spec, _) = parse::range(a, name)?;
                Ok(ZSetCmd::RangeStore { dest, key, spec })
            })(),
            "zremrangebyrank" | "zremrangebyscore" | "zremrangebylex" => parse::rem_range(a, name),
            "zpopmin" | "zpopmax" => parse::pop(a, name == "zpopmax"),
            "zmpop" => parse::mpop(a, false),
            "bzmpop" => parse::mpop(a, true),
            "bzpopmin" | "bzpopmax" => parse::bpop(a, name == "bzpopmax"),
            "zrandmember" => parse::rand_member(a),
            "zunion" | "zinter" | "zdiff" | "zunionstore" | "zinterstore" | "zdiffstore" => parse::combine(a, name),
            "zintercard" => parse::inter_card(a),
            "zscan" => (|| Ok(ZSetCmd::Scan { key: a.take()?, scan: ScanArgs::parse(a)? }))(),
            _ => return None,
        };
        Some(parsed.and_then(|c| a.done().map(|()| c)))
    }

    pub(super) fn keys(&self) -> Vec<&Bytes> {
        match self {
            ZSetCmd::Add { key, .. }
            | ZSetCmd::Rem { key, .. }
            | ZSetCmd::Card { key }
            | ZSetCmd::Score { key, .. }
            | ZSetCmd::MScore { key, .. }
            | ZSetCmd::Rank { key, .. }
            | ZSetCmd::Count { key, .. }
            | ZSetCmd::LexCount { key, .. }
            | ZSetCmd::Range { key, .. }
            | ZSetCmd::RemRange { key, .. }
            | ZSetCmd::Pop { key, .. }
            | ZSetCmd::RandMember { key, .. }
            | ZSetCmd::Scan { key, .. } => vec![key],
            ZSetCmd::RangeStore { dest, key, .. } => vec![dest, key],
            ZSetCmd::MPop { keys, .. } | ZSetCmd::BPop { keys, .. } | ZSetCmd::InterCard { keys, .. } => {
                keys.iter().collect()
            }
            ZSetCmd::Combine { dest, keys, .. } => dest.iter().chain(keys).collect(),
        }
    }

    /// How long a blocking pop may wait when it finds nothing (0: for
    /// ever); `None` for every other command.
    pub fn blocking_timeout_ms(&self) -> Option<u64> {
        match self {
            ZSetCmd::MPop { timeout_ms, .. } => *timeout_ms,
            ZSetCmd::BPop { timeout_ms, .. } => Some(*timeout_ms),
            _ => None,
        }
    }

    pub(super) fn run(&self, tx: &mut Txn, rng: &mut Rng) -> Run {
        match self {
            ZSetCmd::Add { key, flags, pairs } => add(tx, key, *flags, pairs),
            ZSetCmd::Rem { key, members } => {
                let Some(zset) = tx.write::<ZSetValue>(key, false)? else { return Ok(Out::Int(0)) };
                Ok(Out::len(members.iter().filter(|m| zset.remove(m).is_some()).count()))
            }
            ZSetCmd::Card { key } => Ok(Out::len(tx.read::<ZSetValue>(key)?.map_or(0, ZSetValue::len))),
            ZSetCmd::Score { key, member } => Ok(score(tx.read::<ZSetValue>(key)?, member)),
            ZSetCmd::MScore { key, members } => {
                let zset = tx.read::<ZSetValue>(key)?;
                Ok(Out::Array(members.iter().map(|m| score(zset, m)).collect()))
            }
            ZSetCmd::Rank { key, member, rev, with_score } => rank(tx, key, member, *rev, *with_score),
            ZSetCmd::Count { key, range } => {
                Ok(Out::len(tx.read::<ZSetValue>(key)?.map_or(0, |z| z.scores_up(range).count())))
            }
            ZSetCmd::LexCount { key, range } => {
                Ok(Out::len(tx.read::<ZSetValue>(key)?.map_or(0, |z| z.lex_up(range).count())))
            }
            ZSetCmd::Range { key, spec, with_scores } => range::range(tx, key, spec, *with_scores),
            ZSetCmd::RangeStore { dest, key, spec } => range::store(tx, dest, key, spec),
            ZSetCmd::RemRange { key, by } => range::remove(tx, key, by),
            ZSetCmd::Pop { key, max, count } => pop::pop(tx, key, *max, *count),
            ZSetCmd::MPop { keys, max, count, .. } => pop::mpop(tx, keys, *max, *count),
            ZSetCmd::BPop { keys, max, .. } => pop::bpop(tx, keys, *max),
            ZSetCmd::RandMember { key, count, with_scores } => pop::rand_member(tx, key, *count, *with_scores, rng),
            ZSetCmd::Combine { op, dest, keys, weights, aggregate, with_scores } => {
                algebra::combine(tx, *op, dest.as_ref(), keys, weights, *aggregate, *with_scores)
            }
            ZSetCmd::InterCard { keys, limit } => algebra::inter_card(tx, keys, *limit),
            ZSetCmd::Scan { key, scan } => pop::scan(tx, key, scan),
        }
    }
}

/// ZADD's reply: the new score with INCR (nil when a condition stopped
/// it), else how many were added (with CH, added or changed).
fn add(tx: &mut Txn, key: &Bytes, flags: AddFlags, pairs: &[(f64, Bytes)]) -> Run {
    let nothing = if flags.incr { Out::Nil } else { Out::Int(0) };
    // XX never creates the key.
    let Some(zset) = tx.write::<ZSetValue>(key, !flags.xx)? else { return Ok(nothing) };
    zset.expect_additions(pairs.len());
    let (mut added, mut changed, mut last) = (0, 0, None);
    for (score, member) in pairs {
        let Some(current) = zset.score(member) else {
            if !flags.xx {
                zset.insert(member.clone(), *score);
                added += 1;
                last = Some(*score);
            }
            continue;
        };
        if flags.nx {
            continue;
        }
        let next = if flags.incr { current + score } else { *score };
        if next.is_nan() {
            return Err(Fault::other("ERR resulting score is not a number (NaN)"));
        }
        if (flags.lt && next >= current) || (flags.gt && next <= current) {
            continue;
        }
        // Redis keeps the stored score when the new one compares equal
        // (0 and -0).
        if next != current {
            zset.insert(member.clone(), next);
            changed += 1;
        }
        last = Some(next);
    }
    Ok(match (flags.incr, last) {
        (true, Some(score)) => Out::Double(score),
        (true, None) => Out::Nil,
        (false, _) => Out::len(if flags.ch { added + changed } else { added }),
    })
}

fn score(zset: Option<&ZSetValue>, member: &[u8]) -> Out {
    zset.and_then(|z| z.score(member)).map_or(Out::Nil, Out::Double)
}

/// ZRANK/ZREVRANK: the rank, or [rank, score] WITHSCORE.
fn rank(tx: &Txn, key: &[u8], member: &[u8], rev: bool, with_score: bool) -> Run {
    let missing = if with_score { Out::NilArray } else { Out::Nil };
    let Some(zset) = tx.read::<ZSetValue>(key)? else { return Ok(missing) };
    let (Some(rank), Some(score)) = (zset.rank(member), zset.score(member)) else { return Ok(missing) };
    let rank = if rev { zset.len() - 1 - rank } else { rank };
    Ok(if with_score { Out::Array(vec![Out::len(rank), Out::Double(score)]) } else { Out::len(rank) })
}

/// Members with their scores, as WITHSCORES replies give them.
fn with_scores<'a>(items: impl IntoIterator<Item = (&'a [u8], f64)>) -> Out {
    Out::Pairs(items.into_iter().map(|(m, s)| (Out::bulk(m), Out::Double(s))).collect())
}

/// Members alone.
fn members<'a>(items: impl IntoIterator<Item = (&'a [u8], f64)>) -> Out {
    Out::Array(items.into_iter().map(|(m, _)| Out::bulk(m)).collect())
}

#[cfg(test)]
mod tests;
