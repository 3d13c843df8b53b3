//! Byte strings packed end to end in one allocation: the small form of
//! hashes and sets, as Redis's listpack is theirs. Each item is its length
//! (LEB128) and its bytes, so a small collection costs its data, a byte or
//! two per item and one allocation, where a hash table costs a bucket, an
//! entry and an allocation per element.
//!
//! Every operation walks the items, O(bytes): the owners keep a collection
//! packed only while it is small (the `*-max-listpack-*` limits), as Redis
//! does. Items are grouped in runs of `width` (a hash's field and value are
//! a run of two); `swap_remove_run` keeps the order an `IndexMap` would
//! (the last run moves into the hole), so a collection lists its elements
//! in the same order whichever form it has: replicas with different
//! node-local limits still pick the same element for SPOP and HRANDFIELD.

/// Items packed into one exactly sized buffer.
#[derive(Clone, Default)]
pub struct Packed {
    buf: Box<[u8]>,
    /// Items held (not runs).
    count: u32,
}

const _: () = assert!(std::mem::size_of::<Packed>() == 24);

impl Packed {
    /// Items held.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    pub fn iter(&self) -> Items<'_> {
        Items { rest: &self.buf }
    }

    /// The item at `index`.
    pub fn get(&self, index: usize) -> Option<&[u8]> {
        self.iter().nth(index)
    }

    /// Appends `items` in one reallocation.
    pub fn push(&mut self, items: &[&[u8]]) {
        let added: usize = items.iter().map(|i| header_len(i.len()) + i.len()).sum();
        let mut buf = std::mem::take(&mut self.buf).into_vec();
        buf.reserve_exact(added);
        for item in items {
            put_item(&mut buf, item);
        }
        self.buf = buf.into_boxed_slice();
        self.count += u32::try_from(items.len()).expect("a packed collection holds few items");
    }

    /// Replaces the item at `index` with `item`.
    pub fn replace(&mut self, index: usize, item: &[u8]) {
        let span = self.span(index, 1);
        let mut encoded = Vec::with_capacity(header_len(item.len()) + item.len());
        put_item(&mut encoded, item);
        self.splice(span, &encoded);
    }

    /// Removes the run of `width` items starting at item `first` and moves
    /// the last run of the buffer into its place (`IndexMap::swap_remove`).
    pub fn swap_remove_run(&mut self, first: usize, width: usize) {
        assert!(first.is_multiple_of(width) && first + width <= self.len(), "no run of {width} at item {first}");
        let hole = self.span(first, width);
        let last_first = self.len() - width;
        if first == last_first {
            self.splice(hole, &[]);
        } else {
            let last = self.span(last_first, width);
            let moved = self.buf[last.clone()].to_vec();
            // The last run first, so that the hole's offsets stay valid.
            self.splice(last, &[]);
            self.splice(hole, &moved);
        }
        self.count -= width as u32;
    }

    /// Byte range of `width` items from item `first`.
    fn span(&self, first: usize, width: usize) -> std::ops::Range<usize> {
        let mut items = self.iter();
        for _ in 0..first {
            items.next().expect("item index in range");
        }
        let start = self.buf.len() - items.rest.len();
        for _ in 0..width {
            items.next().expect("item index in range");
        }
        start..self.buf.len() - items.rest.len()
    }

    /// Replaces the bytes in `range` with `with`, exactly sized after.
    fn splice(&mut self, range: std::ops::Range<usize>, with: &[u8]) {
        let mut buf = std::mem::take(&mut self.buf).into_vec();
        buf.splice(range, with.iter().copied());
        self.buf = buf.into_boxed_slice();
    }
}

/// The items of a `Packed`, in order.
#[derive(Clone)]
pub struct Items<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Items<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.rest.is_empty() {
            return None;
        }
        let mut len = 0usize;
        let mut shift = 0;
        let mut at = 0;
        loop {
            let byte = self.rest[at];
            at += 1;
            len |= usize::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        let (item, rest) = self.rest[at..].split_at(len);
        self.rest = rest;
        Some(item)
    }
}

fn header_len(len: usize) -> usize {
    (usize::BITS - len.leading_zeros()).div_ceil(7).max(1) as usize
}

fn put_item(buf: &mut Vec<u8>, item: &[u8]) {
    let mut len = item.len();
    while len >= 0x80 {
        buf.push((len as u8 & 0x7f) | 0x80);
        len >>= 7;
    }
    buf.push(len as u8);
    buf.extend_from_slice(item);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(p: &Packed) -> Vec<Vec<u8>> {
        p.iter().map(<[u8]>::to_vec).collect()
    }

    #[test]
    fn lengths_of_every_header_size_read_back() {
        let long = vec![7u8; 300];
        let mut p = Packed::default();
        p.push(&[b"", b"a", &long, &[1u8; 127], &[2u8; 128]]);
        assert_eq!(p.len(), 5);
        assert_eq!(items(&p), vec![vec![], b"a".to_vec(), long.clone(), vec![1; 127], vec![2; 128]]);
        assert_eq!(p.buf.len(), 1 + 2 + (2 + 300) + (1 + 127) + (2 + 128));
        assert_eq!(p.get(2), Some(&long[..]));
        assert_eq!(p.get(5), None);
    }

    #[test]
    fn swap_remove_run_moves_the_last_run_into_the_hole() {
        let mut p = Packed::default();
        p.push(&[b"f1", b"v1", b"field2", b"v2", b"f3", b"value3"]);
        p.swap_remove_run(0, 2);
        assert_eq!(items(&p), vec![b"f3".to_vec(), b"value3".to_vec(), b"field2".to_vec(), b"v2".to_vec()]);
        p.swap_remove_run(2, 2);
        assert_eq!(items(&p), vec![b"f3".to_vec(), b"value3".to_vec()]);
        p.swap_remove_run(0, 2);
        assert!(p.len() == 0 && p.buf.is_empty());
    }

    #[test]
    fn replace_changes_one_item_in_place() {
        let mut p = Packed::default();
        p.push(&[b"a", b"bb", b"c"]);
        p.replace(1, &[9u8; 200]);
        assert_eq!(items(&p), vec![b"a".to_vec(), vec![9; 200], b"c".to_vec()]);
        p.replace(1, b"");
        assert_eq!(items(&p), vec![b"a".to_vec(), vec![], b"c".to_vec()]);
    }
}
