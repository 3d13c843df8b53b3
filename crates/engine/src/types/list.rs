//! A list: a double-ended queue, reported as `listpack` while it fits one
//! node under `list-max-listpack-size` and `quicklist` otherwise (Redis 7.2
//! converts both ways, with hysteresis: back only below half the limit).

use std::collections::VecDeque;

use bytes::Bytes;

use crate::encoding::list_fits;
use crate::value::{blob, Blob};

#[derive(Clone, Default)]
pub struct ListValue {
    items: VecDeque<Blob>,
    bytes: usize,
    big: bool,
}

impl ListValue {
    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn push_front(&mut self, item: Bytes) {
        self.bytes += item.len();
        self.items.push_front(blob(item));
        self.reencode();
    }

    pub fn push_back(&mut self, item: Bytes) {
        self.bytes += item.len();
        self.items.push_back(blob(item));
        self.reencode();
    }

    pub fn pop_front(&mut self) -> Option<Bytes> {
        let item = self.items.pop_front()?;
        self.bytes -= item.len();
        self.reencode();
        Some(Bytes::from(item))
    }

    pub fn pop_back(&mut self) -> Option<Bytes> {
        let item = self.items.pop_back()?;
        self.bytes -= item.len();
        self.reencode();
        Some(Bytes::from(item))
    }

    pub fn get(&self, index: usize) -> Option<&[u8]> {
        self.items.get(index).map(|i| &i[..])
    }

    /// Replaces the item at `index` (which must exist).
    pub fn set(&mut self, index: usize, item: Bytes) {
        let old = std::mem::replace(&mut self.items[index], blob(item));
        self.bytes = self.bytes - old.len() + self.items[index].len();
        self.reencode();
    }

    pub fn insert(&mut self, index: usize, item: Bytes) {
        self.bytes += item.len();
        self.items.insert(index, blob(item));
        self.reencode();
    }

    pub fn remove(&mut self, index: usize) -> Option<Bytes> {
        let item = self.items.remove(index)?;
        self.bytes -= item.len();
        self.reencode();
        Some(Bytes::from(item))
    }

    /// Keeps only `range` (in bounds).
    pub fn keep(&mut self, range: std::ops::Range<usize>) {
        self.items.truncate(range.end);
        self.items.drain(..range.start);
        self.bytes = self.items.iter().map(|i| i.len()).sum();
        self.reencode();
    }

    /// Keeps the items for which `keep` holds, in order; returns how many went.
    pub fn retain(&mut self, mut keep: impl FnMut(&[u8]) -> bool) -> usize {
        let before = self.items.len();
        self.items.retain(|i| keep(i));
        self.bytes = self.items.iter().map(|i| i.len()).sum();
        self.reencode();
        before - self.items.len()
    }

    /// The items in `range` (in bounds), without walking the ones before it.
    pub fn range(&self, range: std::ops::RangeInclusive<usize>) -> impl DoubleEndedIterator<Item = &[u8]> {
        self.items.range(range).map(|i| &i[..])
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &[u8]> + ExactSizeIterator {
        self.items.iter().map(|i| &i[..])
    }

    pub fn encoding(&self) -> &'static str {
        if self.big {
            "quicklist"
        } else {
            "listpack"
        }
    }

    fn reencode(&mut self) {
        if !self.big && !list_fits(self.items.len(), self.bytes) {
            self.big = true;
        } else if self.big && list_fits(self.items.len() * 2, self.bytes * 2) {
            self.big = false;
        }
    }
}
