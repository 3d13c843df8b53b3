//! A sorted set: members with scores, ordered by (score, member), and in
//! insertion order for random picks (removal swaps the last member into
//! the hole). Reported as `listpack` until it first outgrows
//! `zset-max-listpack-*`, `skiplist` from then on.
//!
//! Ranks walk the ordered index: O(rank). An order-statistic tree would
//! make them O(log n); see docs/compatibility.md.

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::ops::{Bound, RangeInclusive};

use bytes::Bytes;

use indexmap::IndexMap;

use super::Hasher;
use crate::encoding::{ZSET_ENTRIES, ZSET_VALUE};
use crate::value::{blob, Blob};

/// A score with a total order (never NaN: commands refuse NaN first).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Score(pub f64);

impl Eq for Score {}

impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Score {
    fn cmp(&self, other: &Self) -> Ordering {
        // -0.0 and 0.0 are the same score, as in Redis.
        let norm = |f: f64| if f == 0.0 { 0.0 } else { f };
        norm(self.0).total_cmp(&norm(other.0))
    }
}

#[derive(Clone, Default)]
pub struct ZSetValue {
    /// Members are held twice, here and in `order`: two exactly sized
    /// allocations cost less than a shared one (`Bytes`, `Arc`) with its
    /// header and a wider handle in both.
    scores: IndexMap<Blob, f64, Hasher>,
    order: BTreeSet<(Score, Blob)>,
    big: bool,
}

impl ZSetValue {
    pub fn len(&self) -> usize {
        self.scores.len()
    }

    pub fn is_empty(&self) -> bool {
        self.scores.is_empty()
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        self.scores.get(member).copied()
    }

    /// Sets a member's score; returns its previous score.
    pub fn insert(&mut self, member: Bytes, score: f64) -> Option<f64> {
        debug_assert!(!score.is_nan(), "a NaN score reached the sorted set");
        let old = self.scores.get(&member[..]).copied();
        if old.is_none() && (member.len() > ZSET_VALUE.size() || self.scores.len() + 1 > ZSET_ENTRIES.size()) {
            self.big = true;
        }
        // -0 is stored as 0, always: Redis reads it back as 0 from a small
        // set (a listpack keeps integral scores as integers); doing so
        // whatever the encoding keeps replicas equal, since the encoding
        // depends on node-local thresholds and on history (snapshots
        // rebuild sets small).
        let score = if score == 0.0 { 0.0 } else { score };
        if let Some(old) = old {
            if old.to_bits() == score.to_bits() {
                return Some(old);
            }
            let (_, stored) = self.order.take(&(Score(old), Blob::from(&member[..]))).expect("in the order");
            *self.scores.get_mut(&member[..]).expect("a member") = score;
            self.order.insert((Score(score), stored));
            return Some(old);
        }
        self.order.insert((Score(score), Blob::from(&member[..])));
        self.scores.insert(blob(member), score);
        old
    }

    /// Takes the large form now when `additions` members could pass
    /// `zset-max-listpack-entries`: Redis sizes a ZADD by its pairs before
    /// running it, duplicates and updates included.
    pub fn expect_additions(&mut self, additions: usize) {
        if additions > ZSET_ENTRIES.size() {
            self.big = true;
        }
    }

    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let (member, score) = self.scores.swap_remove_entry(member)?;
        self.order.remove(&(Score(score), member));
        Some(score)
    }

    /// Member and score at `index` in insertion order.
    pub fn at(&self, index: usize) -> Option<(&[u8], f64)> {
        self.scores.get_index(index).map(|(m, s)| (&m[..], *s))
    }

    /// In insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], f64)> {
        self.scores.iter().map(|(m, s)| (&m[..], *s))
    }

    /// In (score, member) order.
    pub fn ordered(&self) -> impl DoubleEndedIterator<Item = (&[u8], f64)> {
        self.order.iter().map(|(s, m)| (&m[..], s.0))
    }

    /// From the first member with score ≥ `min` (or > when `exclusive`).
    pub fn from_score(&self, min: f64, exclusive: bool) -> impl DoubleEndedIterator<Item = (&[u8], f64)> {
        let start = (Score(min), Blob::default());
        self.order
            .range((Bound::Included(start), Bound::Unbounded))
            .filter(move |(s, _)| if exclusive { s.0 > min } else { s.0 >= min })
            .map(|(s, m)| (&m[..], s.0))
    }

    /// 0-based rank of a member in (score, member) order.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        let score = self.score(member)?;
        let key = (Score(score), Blob::from(member));
        Some(self.order.range(..key).count())
    }

    /// The members at ranks `ranks` (0 is the lowest; with `rev`, 0 is the
    /// highest), in that direction.
    pub fn by_rank(&self, ranks: RangeInclusive<usize>, rev: bool) -> Vec<(&[u8], f64)> {
        let (skip, take) = (*ranks.start(), ranks.end().saturating_sub(*ranks.start()) + 1);
        if rev {
            self.ordered().rev().skip(skip).take(take).collect()
        } else {
            self.ordered().skip(skip).take(take).collect()
        }
    }

    /// The members within `range`, lowest first.
    pub fn scores_up<'a>(&'a self, range: &ScoreRange) -> impl Iterator<Item = (&'a [u8], f64)> + 'a {
        // Every member with a score above an exclusive minimum sorts at or
        // after (the next double up, ""): no double lies between the two.
        // (The next double up from +inf is +inf: the filter keeps `(+inf`
        // empty.)
        let lowest = if range.min_ex { range.min.next_up() } else { range.min };
        let range = *range;
        self.order
            .range((Bound::Included((Score(lowest), Blob::default())), Bound::Unbounded))
            .map(|(s, m)| (&m[..], s.0))
            .filter(move |&(_, s)| range.above_min(s))
            .take_while(move |&(_, s)| range.below_max(s))
    }

    /// The members within `range`, highest first.
    pub fn scores_down<'a>(&'a self, range: &ScoreRange) -> impl Iterator<Item = (&'a [u8], f64)> + 'a {
        // Every member with a score up to an inclusive maximum sorts before
        // (the next double up, "").
        let above = match (range.max_ex, range.max) {
            (false, max) if max == f64::INFINITY => Bound::Unbounded,
            (false, max) => Bound::Excluded((Score(max.next_up()), Blob::default())),
            (true, max) => Bound::Excluded((Score(max), Blob::default())),
        };
        let range = *range;
        self.order
            .range((Bound::Unbounded, above))
            .rev()
            .map(|(s, m)| (&m[..], s.0))
            .take_while(move |&(_, s)| range.above_min(s))
    }

    /// The members within the lex `range`, first in order first. Redis
    /// defines lex ranges only when all scores are equal; otherwise it walks
    /// the (score, member) order from the first member at or above the
    /// minimum while members stay below the maximum, and so does this.
    pub fn lex_up<'a>(&'a self, range: &'a LexRange) -> Box<dyn Iterator<Item = (&'a [u8], f64)> + 'a> {
        if !self.touches(range) {
            return Box::new(std::iter::empty());
        }
        let tail: Box<dyn Iterator<Item = &'a (Score, Blob)> + 'a> = match (self.common_score(), &range.min) {
            // All scores equal: the order is the members' order, so seek.
            (Some(score), LexEdge::At(m)) => {
                let at = (score, Blob::from(&m[..]));
                let from = if range.min_ex { Bound::Excluded(at) } else { Bound::Included(at) };
                Box::new(self.order.range((from, Bound::Unbounded)))
            }
            _ => Box::new(self.order.iter().skip_while(|(_, m)| !range.above_min(m))),
        };
        Box::new(tail.map(|(s, m)| (&m[..], s.0)).take_while(|(m, _)| range.below_max(m)))
    }

    /// The members within the lex `range`, last in order first.
    pub fn lex_down<'a>(&'a self, range: &'a LexRange) -> Box<dyn Iterator<Item = (&'a [u8], f64)> + 'a> {
        if !self.touches(range) {
            return Box::new(std::iter::empty());
        }
        let head: Box<dyn Iterator<Item = &'a (Score, Blob)> + 'a> = match (self.common_score(), &range.max) {
            (Some(score), LexEdge::At(m)) => {
                let at = (score, Blob::from(&m[..]));
                let to = if range.max_ex { Bound::Excluded(at) } else { Bound::Included(at) };
                Box::new(self.order.range((Bound::Unbounded, to)).rev())
            }
            _ => Box::new(self.order.iter().rev().skip_while(|(_, m)| !range.below_max(m))),
        };
        Box::new(head.map(|(s, m)| (&m[..], s.0)).take_while(|(m, _)| range.above_min(m)))
    }

    /// Redis's quick test before a lex walk: a non-empty range that the
    /// last member reaches and the first does not pass.
    fn touches(&self, range: &LexRange) -> bool {
        let (Some((_, first)), Some((_, last))) = (self.order.first(), self.order.last()) else { return false };
        !range.is_empty() && range.above_min(last) && range.below_max(first)
    }

    /// The score every member has, if they all have the same.
    fn common_score(&self) -> Option<Score> {
        let (first, last) = (self.order.first()?.0, self.order.last()?.0);
        (first == last).then_some(first)
    }

    /// Removes and returns the lowest member (the highest with `max`).
    pub fn pop(&mut self, max: bool) -> Option<(Bytes, f64)> {
        let (score, member) = if max { self.order.pop_last()? } else { self.order.pop_first()? };
        let stored = self.scores.swap_remove(&member);
        debug_assert!(stored.is_some(), "the index and the order hold the same members");
        Some((Bytes::from(member), score.0))
    }

    pub fn encoding(&self) -> &'static str {
        if self.big {
            "skiplist"
        } else {
            "listpack"
        }
    }
}

/// A score interval as ZRANGEBYSCORE reads it: `(` makes an end exclusive.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScoreRange {
    pub min: f64,
    pub max: f64,
    pub min_ex: bool,
    pub max_ex: bool,
}

impl ScoreRange {
    pub fn above_min(&self, score: f64) -> bool {
        if self.min_ex {
            score > self.min
        } else {
            score >= self.min
        }
    }

    pub fn below_max(&self, score: f64) -> bool {
        if self.max_ex {
            score < self.max
        } else {
            score <= self.max
        }
    }
}

/// One end of a lex range: `-` and `+` are below and above every member.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LexEdge {
    Min,
    At(Bytes),
    Max,
}

impl LexEdge {
    /// How `member` compares to this edge.
    fn cmp_member(&self, member: &[u8]) -> Ordering {
        match self {
            LexEdge::Min => Ordering::Greater,
            LexEdge::At(edge) => member.cmp(edge),
            LexEdge::Max => Ordering::Less,
        }
    }
}

/// A member interval as ZRANGEBYLEX reads it (`-` and `+` count as
/// exclusive, as in Redis, which only matters when both ends are the same).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LexRange {
    pub min: LexEdge,
    pub max: LexEdge,
    pub min_ex: bool,
    pub max_ex: bool,
}

impl LexRange {
    pub fn above_min(&self, member: &[u8]) -> bool {
        let ord = self.min.cmp_member(member);
        ord == Ordering::Greater || (ord == Ordering::Equal && !self.min_ex)
    }

    pub fn below_max(&self, member: &[u8]) -> bool {
        let ord = self.max.cmp_member(member);
        ord == Ordering::Less || (ord == Ordering::Equal && !self.max_ex)
    }

    /// A range no member can be in.
    pub fn is_empty(&self) -> bool {
        match self.min.cmp(&self.max) {
            Ordering::Greater => true,
            Ordering::Equal => self.min_ex || self.max_ex,
            Ordering::Less => false,
        }
    }
}
