//! Records and their encoding.
//!
//! ```text
//! frame:  len u32 (of body) | crc32 u32 (of body) | body
//! body:   kind u8 | group u32 | fields…
//!   Entry    index u64 | term u64 | payload (rest of body)
//!   Vote     payload (rest of body)
//!   Truncate after u64     — drop the group's entries with index > after
//!   Purge    upto u64      — drop the group's entries with index <= upto
//!   Drop     (nothing)     — forget the group: its entries, vote and purge
//!                            point; records after it start a new replica
//! ```
//!
//! All integers little-endian. A frame is valid only if its length fits
//! what is left of the file and its checksum matches.

use bytes::{BufMut, Bytes, BytesMut};

/// A Raft group's number on this node.
pub type GroupId = u32;

/// Largest body accepted when reading back (a length beyond it is
/// corruption, not a reason to allocate).
pub const MAX_BODY_BYTES: u32 = 1 << 30;

pub const FRAME_HEADER_BYTES: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    Entry {
        group: GroupId,
        index: u64,
        term: u64,
        payload: Bytes,
    },
    Vote {
        group: GroupId,
        payload: Bytes,
    },
    Truncate {
        group: GroupId,
        after: u64,
    },
    Purge {
        group: GroupId,
        upto: u64,
    },
    /// The node no longer holds a replica of the group (it was moved away):
    /// everything before this record about the group is void, and its old
    /// records pin no segment.
    Drop {
        group: GroupId,
    },
}

const ENTRY: u8 = 1;
const VOTE: u8 = 2;
const TRUNCATE: u8 = 3;
const PURGE: u8 = 4;
const DROP: u8 = 5;

impl Record {
    pub fn group(&self) -> GroupId {
        match self {
            Record::Entry { group, .. }
            | Record::Vote { group, .. }
            | Record::Truncate { group, .. }
            | Record::Purge { group, .. }
            | Record::Drop { group } => *group,
        }
    }

    /// The body's length once encoded (what `MAX_BODY_BYTES` bounds).
    pub fn body_len(&self) -> usize {
        5 + match self {
            Record::Entry { payload, .. } => 16 + payload.len(),
            Record::Vote { payload, .. } => payload.len(),
            Record::Truncate { .. } | Record::Purge { .. } => 8,
            Record::Drop { .. } => 0,
        }
    }

    /// Appends the framed record to `out`. The caller has checked
    /// `body_len` against `MAX_BODY_BYTES` (`Wal::append` does).
    pub fn encode(&self, out: &mut BytesMut) {
        let start = out.len();
        out.put_u64(0); // len + crc, patched below
        let (kind, group) = match self {
            Record::Entry { group, .. } => (ENTRY, group),
            Record::Vote { group, .. } => (VOTE, group),
            Record::Truncate { group, .. } => (TRUNCATE, group),
            Record::Purge { group, .. } => (PURGE, group),
            Record::Drop { group } => (DROP, group),
        };
        out.put_u8(kind);
        out.put_u32_le(*group);
        match self {
            Record::Entry { index, term, payload, .. } => {
                out.put_u64_le(*index);
                out.put_u64_le(*term);
                out.put_slice(payload);
            }
            Record::Vote { payload, .. } => out.put_slice(payload),
            Record::Truncate { after: n, .. } | Record::Purge { upto: n, .. } => out.put_u64_le(*n),
            Record::Drop { .. } => {}
        }
        let body = &out[start + FRAME_HEADER_BYTES..];
        debug_assert_eq!(body.len(), self.body_len());
        let len = u32::try_from(body.len()).expect("record body fits in u32");
        assert!(len <= MAX_BODY_BYTES, "record of {len} bytes is over the wal's limit");
        let crc = crc32fast::hash(body);
        out[start..start + 4].copy_from_slice(&len.to_le_bytes());
        out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    }

    /// Decodes one frame at the start of `data`. `Ok(None)` when `data`
    /// ends inside the frame (a torn write); `Err` when the frame is whole
    /// but wrong.
    pub fn decode(data: &[u8]) -> Result<Option<(Record, usize)>, String> {
        let Some(header) = data.get(..FRAME_HEADER_BYTES) else {
            return Ok(None);
        };
        let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes"));
        let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
        if len > MAX_BODY_BYTES {
            return Err(format!("record length {len} is over the limit"));
        }
        let Some(body) = data.get(FRAME_HEADER_BYTES..FRAME_HEADER_BYTES + len as usize) else {
            return Ok(None);
        };
        if crc32fast::hash(body) != crc {
            return Err("checksum mismatch".into());
        }
        let record = Self::decode_body(body).ok_or_else(|| "malformed record body".to_string())?;
        Ok(Some((record, FRAME_HEADER_BYTES + len as usize)))
    }

    fn decode_body(body: &[u8]) -> Option<Record> {
        let (&kind, rest) = body.split_first()?;
        let (group, rest) = rest.split_first_chunk::<4>()?;
        let group = u32::from_le_bytes(*group);
        let u64_at =
            |b: &[u8], at: usize| b.get(at..at + 8).map(|s| u64::from_le_bytes(s.try_into().expect("8 bytes")));
        Some(match kind {
            ENTRY => Record::Entry {
                group,
                index: u64_at(rest, 0)?,
                term: u64_at(rest, 8)?,
                payload: Bytes::copy_from_slice(rest.get(16..)?),
            },
            VOTE => Record::Vote { group, payload: Bytes::copy_from_slice(rest) },
            TRUNCATE if rest.len() == 8 => Record::Truncate { group, after: u64_at(rest, 0)? },
            PURGE if rest.len() == 8 => Record::Purge { group, upto: u64_at(rest, 0)? },
            DROP if rest.is_empty() => Record::Drop { group },
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<Record> {
        vec![
            Record::Entry { group: 7, index: 42, term: 3, payload: Bytes::from_static(b"set k v") },
            Record::Entry { group: 0, index: 1, term: 1, payload: Bytes::new() },
            Record::Vote { group: 1, payload: Bytes::from_static(b"term=3,for=2") },
            Record::Truncate { group: 7, after: 40 },
            Record::Purge { group: 7, upto: 10 },
            Record::Drop { group: 7 },
        ]
    }

    #[test]
    fn round_trip_and_torn_prefixes() {
        for record in all() {
            let mut buf = BytesMut::new();
            record.encode(&mut buf);
            assert_eq!(Record::decode(&buf), Ok(Some((record.clone(), buf.len()))));
            for cut in 0..buf.len() {
                assert_eq!(Record::decode(&buf[..cut]), Ok(None), "prefix of {cut} bytes");
            }
        }
    }

    #[test]
    fn flipped_bits_are_caught() {
        let mut buf = BytesMut::new();
        all()[0].encode(&mut buf);
        for byte in FRAME_HEADER_BYTES..buf.len() {
            let mut bad = buf.clone();
            bad[byte] ^= 0x10;
            assert!(Record::decode(&bad).is_err(), "flip at {byte}");
        }
        let mut huge = buf.clone();
        huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(Record::decode(&huge).is_err());
    }
}
