//! ZUNION ZINTER ZDIFF, their STORE forms, and ZINTERCARD. Inputs may be
//! sorted sets or plain sets (whose members all score 1), as in Redis.

use bytes::Bytes;
use indexmap::IndexMap;

use super::range::put;
use super::{members, with_scores, Aggregate, SetOp};
use crate::cmd::Run;
use crate::reply::{Fault, Out};
use crate::txn::Txn;
use crate::types::Hasher;
use crate::value::{SetValue, Value, ZSetValue};

/// One input: a sorted set, a set, or nothing (a missing key).
#[derive(Clone, Copy)]
enum Source<'a> {
    Sorted(&'a ZSetValue),
    Plain(&'a SetValue),
    Missing,
}

impl<'a> Source<'a> {
    fn of(tx: &'a Txn, key: &[u8]) -> Result<Source<'a>, Fault> {
        match tx.get(key) {
            None => Ok(Source::Missing),
            Some(Value::ZSet(z)) => Ok(Source::Sorted(z)),
            Some(Value::Set(s)) => Ok(Source::Plain(s)),
            Some(_) => Err(Fault::WrongType),
        }
    }

    fn len(self) -> usize {
        match self {
            Source::Sorted(z) => z.len(),
            Source::Plain(s) => s.len(),
            Source::Missing => 0,
        }
    }

    /// Every member with its score, in storage order.
    fn iter(self) -> Box<dyn Iterator<Item = (&'a [u8], f64)> + 'a> {
        match self {
            Source::Sorted(z) => Box::new(z.iter()),
            Source::Plain(s) => Box::new(s.iter().map(|m| (m, 1.0))),
            Source::Missing => Box::new(std::iter::empty()),
        }
    }

    fn score(self, member: &[u8]) -> Option<f64> {
        match self {
            Source::Sorted(z) => z.score(member),
            Source::Plain(s) => s.contains(member).then_some(1.0),
            Source::Missing => None,
        }
    }
}

/// A weighted score; Redis counts 0 × ±inf as 0.
fn weigh(score: f64, weight: f64) -> f64 {
    let weighted = score * weight;
    if weighted.is_nan() {
        0.0
    } else {
        weighted
    }
}

/// Folds `value` into `total`; a SUM of inf and -inf is 0, as in Redis.
fn fold(total: &mut f64, value: f64, aggregate: Aggregate) {
    match aggregate {
        Aggregate::Sum => {
            *total += value;
            if total.is_nan() {
                *total = 0.0;
            }
        }
        Aggregate::Min => {
            if value < *total {
                *total = value;
            }
        }
        Aggregate::Max => {
            if value > *total {
                *total = value;
            }
        }
    }
}

/// The inputs with their weights. Union and intersection take them
/// smallest first as Redis does (a stable sort, so equal sizes keep their
/// order), which fixes the order sums are added in.
fn inputs<'a>(tx: &'a Txn, keys: &[Bytes], weights: &[f64], op: SetOp) -> Result<Vec<(Source<'a>, f64)>, Fault> {
    let mut inputs = keys
        .iter()
        .zip(weights.iter().copied().chain(std::iter::repeat(1.0)))
        .map(|(key, weight)| Ok((Source::of(tx, key)?, weight)))
        .collect::<Result<Vec<_>, Fault>>()?;
    if op != SetOp::Diff {
        inputs.sort_by_key(|(source, _)| source.len());
    }
    Ok(inputs)
}

/// The members of the first input found in every other, scored.
fn intersection<'a, 'i>(
    inputs: &'i [(Source<'a>, f64)],
    aggregate: Aggregate,
) -> impl Iterator<Item = (&'a [u8], f64)> + 'i {
    let (first, rest) = inputs.split_first().expect("at least one input key");
    first.0.iter().filter_map(move |(member, score)| {
        let mut total = weigh(score, first.1);
        for (source, weight) in rest {
            fold(&mut total, weigh(source.score(member)?, *weight), aggregate);
        }
        Some((member, total))
    })
}

fn union(inputs: &[(Source<'_>, f64)], aggregate: Aggregate) -> ZSetValue {
    // Insertion order is first seen: the result's storage order must not
    // depend on a hasher, so replicas agree on later random picks.
    let mut totals: IndexMap<&[u8], f64, Hasher> = IndexMap::default();
    for (source, weight) in inputs {
        for (member, score) in source.iter() {
            let value = weigh(score, *weight);
            totals.entry(member).and_modify(|total| fold(total, value, aggregate)).or_insert(value);
        }
    }
    collect(totals)
}

/// The first input's members found in no other, with their own scores.
fn difference(inputs: &[(Source<'_>, f64)]) -> ZSetValue {
    let (first, rest) = inputs.split_first().expect("at least one input key");
    collect(first.0.iter().filter(|(member, _)| rest.iter().all(|(source, _)| source.score(member).is_none())))
}

fn collect<'a>(items: impl IntoIterator<Item = (&'a [u8], f64)>) -> ZSetValue {
    let mut zset = ZSetValue::default();
    for (member, score) in items {
        zset.insert(Bytes::copy_from_slice(member), score);
    }
    zset
}

/// ZUNION ZINTER ZDIFF (the result, WITHSCORES in pairs) and their STORE
/// forms (the result's size).
pub(super) fn combine(
    tx: &mut Txn,
    op: SetOp,
    dest: Option<&Bytes>,
    keys: &[Bytes],
    weights: &[f64],
    aggregate: Aggregate,
    scores: bool,
) -> Run {
    let result = {
        let inputs = inputs(tx, keys, weights, op)?;
        match op {
            SetOp::Union => union(&inputs, aggregate),
            SetOp::Inter => collect(intersection(&inputs, aggregate)),
            SetOp::Diff => difference(&inputs),
        }
    };
    Ok(match dest {
        Some(dest) => put(tx, dest, result),
        None if scores => with_scores(result.ordered()),
        None => members(result.ordered()),
    })
}

/// ZINTERCARD: the intersection's size, counting no further than `limit`
/// (0: no limit).
pub(super) fn inter_card(tx: &Txn, keys: &[Bytes], limit: u64) -> Run {
    let inputs = inputs(tx, keys, &[], SetOp::Inter)?;
    let limit = usize::try_from(limit).ok().filter(|&l| l > 0).unwrap_or(usize::MAX);
    Ok(Out::len(intersection(&inputs, Aggregate::Sum).take(limit).count()))
}
