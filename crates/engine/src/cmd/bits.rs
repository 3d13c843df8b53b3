//! BITCOUNT, BITPOS and BITOP over plain bytes, Redis's range rules.

use super::string::{BitOp, Unit};

/// `start..=end` of a string `len` long in `unit`s, negative from the end
/// and clamped as Redis does; `None` when empty.
fn window(start: i64, end: i64, total: i64) -> Option<(i64, i64)> {
    let start = if start < 0 { (total + start).max(0) } else { start };
    let end = if end < 0 { (total + end).max(0) } else { end.min(total - 1) };
    (start <= end && total > 0).then_some((start, end))
}

fn bit_at(value: &[u8], i: i64) -> bool {
    value[(i / 8) as usize] & (0x80 >> (i % 8)) != 0
}

/// BITCOUNT.
pub(crate) fn count(value: &[u8], range: Option<(i64, i64, Unit)>) -> usize {
    let len = value.len() as i64;
    let Some((start, end, unit)) = range else {
        return value.iter().map(|b| b.count_ones() as usize).sum();
    };
    let (bits_start, bits_end) = match unit {
        Unit::Byte => match window(start, end, len) {
            Some((s, e)) => (s * 8, e * 8 + 7),
            None => return 0,
        },
        Unit::Bit => match window(start, end, len * 8) {
            Some(w) => w,
            None => return 0,
        },
    };
    let (first, last) = ((bits_start / 8) as usize, (bits_end / 8) as usize);
    let total: usize = value[first..=last].iter().map(|b| b.count_ones() as usize).sum();
    // Less the bits of the first and last bytes outside the window.
    let head = (first as i64 * 8..bits_start).filter(|&i| bit_at(value, i)).count();
    let tail = (bits_end + 1..(last as i64 + 1) * 8).filter(|&i| bit_at(value, i)).count();
    total - head - tail
}

/// BITPOS: the first bit equal to `bit` in the window, or -1. Looking for
/// a 0 past a string with no end given finds the first bit after it (the
/// string reads as zero-padded); with an end given, it is -1.
pub(crate) fn position(value: Option<&[u8]>, bit: bool, start: Option<i64>, end: Option<i64>, unit: Unit) -> i64 {
    let Some(value) = value else { return if bit { -1 } else { 0 } };
    let len = value.len() as i64;
    let total = match unit {
        Unit::Byte => len,
        Unit::Bit => len * 8,
    };
    let Some((s, e)) = window(start.unwrap_or(0), end.unwrap_or(-1), total) else { return -1 };
    let (bits_start, bits_end) = match unit {
        Unit::Byte => (s * 8, e * 8 + 7),
        Unit::Bit => (s, e),
    };
    let skip = if bit { 0x00 } else { 0xff };
    let mut i = bits_start;
    while i <= bits_end {
        if i % 8 == 0 && i + 7 <= bits_end && value[(i / 8) as usize] == skip {
            i += 8;
            continue;
        }
        if bit_at(value, i) == bit {
            return i;
        }
        i += 1;
    }
    if !bit && end.is_none() {
        bits_end + 1
    } else {
        -1
    }
}

/// BITOP: the inputs combined byte by byte, as long as the longest (the
/// shorter read as zero-padded).
pub(crate) fn combine(op: BitOp, inputs: &[&[u8]]) -> Vec<u8> {
    let len = inputs.iter().map(|i| i.len()).max().unwrap_or(0);
    (0..len)
        .map(|at| {
            let mut bytes = inputs.iter().map(|i| i.get(at).copied().unwrap_or(0));
            let first = bytes.next().unwrap_or(0);
            match op {
                BitOp::Not => !first,
                BitOp::And => bytes.fold(first, |acc, b| acc & b),
                BitOp::Or => bytes.fold(first, |acc, b| acc | b),
                BitOp::Xor => bytes.fold(first, |acc, b| acc ^ b),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_positions_follow_redis() {
        let v = b"foobar";
        assert_eq!(count(v, None), 26);
        assert_eq!(count(v, Some((0, 0, Unit::Byte))), 4);
        assert_eq!(count(v, Some((1, 1, Unit::Byte))), 6);
        assert_eq!(count(v, Some((5, 30, Unit::Bit))), 17);
        assert_eq!(count(v, Some((-1, -2, Unit::Byte))), 0);
        assert_eq!(position(Some(&[0xff, 0xf0, 0x00]), false, None, None, Unit::Byte), 12);
        assert_eq!(position(Some(&[0x00, 0xff, 0xf0]), true, Some(0), None, Unit::Byte), 8);
        assert_eq!(position(Some(&[0x00, 0xff, 0xf0]), true, Some(2), None, Unit::Byte), 16);
        assert_eq!(position(Some(&[0x00, 0x00, 0x00]), true, None, None, Unit::Byte), -1);
        assert_eq!(position(Some(&[0xff, 0xff]), false, None, None, Unit::Byte), 16);
        assert_eq!(position(Some(&[0xff, 0xff]), false, Some(0), Some(-1), Unit::Byte), -1);
        assert_eq!(position(None, false, None, None, Unit::Byte), 0);
        assert_eq!(position(Some(&[0x00, 0xff, 0xf0]), true, Some(7), Some(15), Unit::Bit), 8);
    }

    #[test]
    fn combine_pads_shorter_inputs() {
        let (a, b): (&[u8], &[u8]) = (b"\xff\x0f", b"\xf0");
        assert_eq!(combine(BitOp::And, &[a, b]), vec![0xf0, 0x00]);
        assert_eq!(combine(BitOp::Or, &[a, b]), vec![0xff, 0x0f]);
        assert_eq!(combine(BitOp::Xor, &[a, b]), vec![0x0f, 0x0f]);
        assert_eq!(combine(BitOp::Not, &[a]), vec![0x00, 0xf0]);
    }
}
