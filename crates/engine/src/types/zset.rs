//! A sorted set: members with scores, ordered by (score, member), and in
//! insertion order for random picks (removal swaps the last member into
//! the hole). Reported as `listpack` until it first outgrows
//! `zset-max-listpack-*`, `skiplist` from then on.
//!
//! Ranks walk the ordered index: O(rank). An order-statistic tree would
//! make them O(log n); see docs/compatibility.md.

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::ops::Bound;

use bytes::Bytes;

use crate::db::own;
use indexmap::IndexMap;

use super::Hasher;
use crate::encoding::{ZSET_ENTRIES, ZSET_VALUE};

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
    scores: IndexMap<Bytes, f64, Hasher>,
    order: BTreeSet<(Score, Bytes)>,
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
        let old = self.scores.get(&member).copied();
        if let Some(old) = old {
            if Score(old) == Score(score) && old.to_bits() == score.to_bits() {
                return Some(old);
            }
            self.order.remove(&(Score(old), member.clone()));
        } else if member.len() > ZSET_VALUE.size() || self.scores.len() + 1 > ZSET_ENTRIES.size() {
            self.big = true;
        }
        let member = own(member);
        self.scores.insert(member.clone(), score);
        self.order.insert((Score(score), member));
        old
    }

    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let (member, score) = self.scores.swap_remove_entry(member)?;
        self.order.remove(&(Score(score), member));
        Some(score)
    }

    /// Member and score at `index` in insertion order.
    pub fn at(&self, index: usize) -> Option<(&Bytes, f64)> {
        self.scores.get_index(index).map(|(m, s)| (m, *s))
    }

    /// In insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&Bytes, f64)> {
        self.scores.iter().map(|(m, s)| (m, *s))
    }

    /// In (score, member) order.
    pub fn ordered(&self) -> impl DoubleEndedIterator<Item = (&Bytes, f64)> {
        self.order.iter().map(|(s, m)| (m, s.0))
    }

    /// From the first member with score ≥ `min` (or > when `exclusive`).
    pub fn from_score(&self, min: f64, exclusive: bool) -> impl DoubleEndedIterator<Item = (&Bytes, f64)> {
        let start = (Score(min), Bytes::new());
        self.order
            .range((Bound::Included(start), Bound::Unbounded))
            .filter(move |(s, _)| if exclusive { s.0 > min } else { s.0 >= min })
            .map(|(s, m)| (m, s.0))
    }

    /// 0-based rank of a member in (score, member) order.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        let score = self.score(member)?;
        let key = (Score(score), Bytes::copy_from_slice(member));
        Some(self.order.range(..key).count())
    }

    pub fn encoding(&self) -> &'static str {
        if self.big {
            "skiplist"
        } else {
            "listpack"
        }
    }
}
