//! ZRANGE and its older forms, ZRANGESTORE, and the ZREMRANGEBY commands.

use bytes::Bytes;

use super::{members, with_scores, RangeBy, RangeSpec};
use crate::cmd::{range as rank_range, Run};
use crate::reply::Out;
use crate::txn::Txn;
use crate::value::{Value, ZSetValue};

/// The members a query selects, in the query's direction, after LIMIT.
pub(super) fn select<'a>(zset: &'a ZSetValue, spec: &'a RangeSpec) -> Vec<(&'a [u8], f64)> {
    match &spec.by {
        RangeBy::Rank { start, stop } => {
            rank_range(*start, *stop, zset.len()).map_or_else(Vec::new, |ranks| zset.by_rank(ranks, spec.rev))
        }
        RangeBy::Score(range) if spec.rev => window(zset.scores_down(range), spec),
        RangeBy::Score(range) => window(zset.scores_up(range), spec),
        RangeBy::Lex(range) if spec.rev => window(zset.lex_down(range), spec),
        RangeBy::Lex(range) => window(zset.lex_up(range), spec),
    }
}

/// LIMIT's `offset count`: a negative offset selects nothing (Redis walks
/// off the end), a negative count everything after the offset.
fn window<'a>(items: impl Iterator<Item = (&'a [u8], f64)>, spec: &RangeSpec) -> Vec<(&'a [u8], f64)> {
    let Ok(offset) = usize::try_from(spec.offset) else { return Vec::new() };
    let count = usize::try_from(spec.limit).unwrap_or(usize::MAX);
    items.skip(offset).take(count).collect()
}

pub(super) fn range(tx: &Txn, key: &[u8], spec: &RangeSpec, scores: bool) -> Run {
    let Some(zset) = tx.read::<ZSetValue>(key)? else { return Ok(Out::Array(vec![])) };
    let items = select(zset, spec);
    Ok(if scores { with_scores(items) } else { members(items) })
}

/// ZRANGESTORE: the selection replaces `dest` (an empty one deletes it).
pub(super) fn store(tx: &mut Txn, dest: &Bytes, key: &[u8], spec: &RangeSpec) -> Run {
    let mut result = ZSetValue::default();
    if let Some(zset) = tx.read::<ZSetValue>(key)? {
        for (member, score) in select(zset, spec) {
            result.insert(Bytes::copy_from_slice(member), score);
        }
    }
    Ok(put(tx, dest, result))
}

/// Stores a computed sorted set at `dest`, replacing whatever was there
/// and its expiry, or deletes `dest` when the set is empty; replies the size.
pub(super) fn put(tx: &mut Txn, dest: &Bytes, zset: ZSetValue) -> Out {
    let len = zset.len();
    if len == 0 {
        tx.delete(dest);
    } else {
        tx.put(dest, Value::ZSet(Box::new(zset)), None);
    }
    Out::len(len)
}

/// ZREMRANGEBYRANK, ZREMRANGEBYSCORE, ZREMRANGEBYLEX: how many were removed.
pub(super) fn remove(tx: &mut Txn, key: &Bytes, by: &RangeBy) -> Run {
    let Some(zset) = tx.write::<ZSetValue>(key, false)? else { return Ok(Out::Int(0)) };
    let spec = RangeSpec { by: by.clone(), rev: false, offset: 0, limit: -1 };
    let doomed: Vec<Bytes> = select(zset, &spec).into_iter().map(|(m, _)| Bytes::copy_from_slice(m)).collect();
    for member in &doomed {
        zset.remove(member);
    }
    Ok(Out::len(doomed.len()))
}
