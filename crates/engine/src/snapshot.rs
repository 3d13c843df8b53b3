//! Serialising a set of slots (a shard's partition) to bytes and back.
//!
//! Format, all integers little-endian:
//!
//! ```text
//! magic "SHOALSNP" | version u32 | entry count u64
//! entries: key_len u64 | key | value | expires_at u64 (0 = none) | version u32 (format 2)
//! value (version 2): type u8, then
//!   0 string: len u64 | bytes
//!   1 hash:   count u64 | (field, value) as len-prefixed bytes
//!   2 list:   count u64 | items as len-prefixed bytes, head first
//!   3 set:    count u64 | members as len-prefixed bytes
//!   4 zset:   count u64 | (member as len-prefixed bytes, score f64 bits u64)
//! value (version 1, strings only): len u64 | bytes
//! crc32 (IEEE) of everything before it, u32
//! ```
//!
//! The checksum is verified before anything is restored, so a torn or
//! corrupted file restores nothing rather than half a keyspace.

use bytes::Bytes;

use crate::slot::Slot;
use crate::stripe::Stored;
use crate::value::{Blob, HashValue, ListValue, SetValue, Value, ZSetValue};
use crate::{Db, Millis};

const MAGIC: &[u8; 8] = b"SHOALSNP";
const VERSION: u32 = 2;
/// The strings-only format, still read.
const VERSION_STRINGS: u32 = 1;
const HEADER_LEN: usize = 8 + 4 + 8;
const TRAILER_LEN: usize = 4;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SnapshotError {
    #[error("snapshot is truncated")]
    Truncated,
    #[error("not a shoal snapshot (bad magic)")]
    BadMagic,
    #[error("unsupported snapshot version {0}")]
    BadVersion(u32),
    #[error("snapshot checksum mismatch")]
    BadChecksum,
    #[error("snapshot has {0} trailing bytes after its entries")]
    TrailingBytes(usize),
    #[error("snapshot holds a value of unknown type or a NaN score")]
    BadValue,
}

impl Db {
    /// Serialises every live key whose slot satisfies `include`.
    pub fn dump_slots(&self, include: impl Fn(Slot) -> bool, now: Millis) -> Vec<u8> {
        let mut out = Vec::new();
        self.dump_slots_into(&mut out, include, now);
        out
    }

    /// `dump_slots`, appended to `out`: a snapshot built in one buffer
    /// after its own header, never copied from a dump of its own.
    pub fn dump_slots_into(&self, out: &mut Vec<u8>, include: impl Fn(Slot) -> bool, now: Millis) {
        let start = out.len();
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&0u64.to_le_bytes()); // patched below
        let mut count = 0u64;
        self.for_each_live(now, |e| {
            if !include(e.slot) {
                return;
            }
            put_bytes(out, &e.key);
            put_value(out, &e.value);
            out.extend_from_slice(&e.expires_at().unwrap_or(0).to_le_bytes());
            out.extend_from_slice(&e.version.to_le_bytes());
            count += 1;
        });
        out[start + 12..start + 20].copy_from_slice(&count.to_le_bytes());
        let crc = crc32fast::hash(&out[start..]);
        out.extend_from_slice(&crc.to_le_bytes());
    }

    /// A digest of the live contents that does not depend on iteration
    /// order (each `Db` hashes with its own seed), so two replicas can be
    /// compared: equal contents give equal digests.
    pub fn digest(&self, now: Millis) -> u64 {
        let mut digest = 0u64;
        let mut scratch = Vec::new();
        self.for_each_live(now, |e| {
            let (key, expires_at) = (&e.key, e.expires_at());
            scratch.clear();
            put_value(&mut scratch, &e.value);
            // Versions too: WATCH decides the same on every replica only
            // if they agree.
            scratch.extend_from_slice(&e.version.to_le_bytes());
            let value = &scratch[..];
            let mut h = crc32fast::Hasher::new();
            h.update(&(key.len() as u64).to_le_bytes());
            h.update(key);
            h.update(value);
            h.update(&expires_at.unwrap_or(0).to_le_bytes());
            let crc = u64::from(h.finalize());
            let mut lengths = crc32fast::Hasher::new();
            lengths.update(&(value.len() as u64).to_le_bytes());
            lengths.update(value);
            lengths.update(key);
            // Two independent 32-bit checksums per entry, summed: order-free.
            digest = digest.wrapping_add(crc << 32 | u64::from(lengths.finalize()));
        });
        digest
    }

    /// Serialises the whole keyspace.
    pub fn dump(&self, now: Millis) -> Vec<u8> {
        self.dump_slots(|_| true, now)
    }

    /// Adds every entry of a snapshot to this keyspace (overwriting keys that
    /// exist). Entries already expired at `now` are skipped. Returns the
    /// number of entries read.
    pub fn restore(&self, data: &[u8], now: Millis) -> Result<u64, SnapshotError> {
        let parsed = parse(data)?;
        let entries = parsed.len() as u64;
        for stored in live(parsed, now) {
            // Versions count in the log of the keyspace that dumped them;
            // here they would not (WATCH), so the keys start at 0, below
            // any index this keyspace's log will stamp.
            self.restore_entry(Stored { version: 0, ..stored }, now);
        }
        Ok(entries)
    }

    /// Replaces the whole keyspace with a snapshot's contents, atomically
    /// for readers (every stripe is held while it happens), and only after
    /// the whole snapshot has been checked: a bad snapshot changes nothing.
    /// This is how a replica installs its leader's snapshot.
    pub fn replace(&self, data: &[u8], now: Millis) -> Result<u64, SnapshotError> {
        let parsed = parse(data)?;
        let entries = parsed.len() as u64;
        self.replace_all(live(parsed, now).collect(), now);
        Ok(entries)
    }
}

/// Checks a snapshot's framing and checksum without reading its entries
/// (cheap next to `replace`); returns the entry count it declares.
pub fn verify(data: &[u8]) -> Result<u64, SnapshotError> {
    validate(data)
}

type Parsed = Stored;

/// Every entry of a checked snapshot; nothing is applied here.
fn parse(data: &[u8]) -> Result<Vec<Parsed>, SnapshotError> {
    let entries = validate(data)?;
    let strings_only = u32::from_le_bytes(data[8..12].try_into().expect("4 bytes")) == VERSION_STRINGS;
    let mut reader = Reader { data: &data[HEADER_LEN..data.len() - TRAILER_LEN] };
    let mut parsed = Vec::new();
    for _ in 0..entries {
        let key = reader.blob()?;
        let value = if strings_only { Value::Str(reader.blob()?) } else { reader.value()? };
        let expires_at = Some(reader.u64()?).filter(|&at| at != 0);
        let version = if strings_only { 0 } else { reader.u32()? };
        parsed.push(Stored { key, value, expires_at, version });
    }
    if !reader.data.is_empty() {
        return Err(SnapshotError::TrailingBytes(reader.data.len()));
    }
    Ok(parsed)
}

/// Entries not yet expired at `now`. Expired ones are skipped, not stored:
/// storing an already-expired entry would delete a live key of its name.
fn live(parsed: Vec<Parsed>, now: Millis) -> impl Iterator<Item = Parsed> {
    parsed.into_iter().filter(move |s| s.expires_at.is_none_or(|at| at >= now))
}

fn validate(data: &[u8]) -> Result<u64, SnapshotError> {
    if data.len() < HEADER_LEN + TRAILER_LEN {
        return Err(SnapshotError::Truncated);
    }
    if &data[..8] != MAGIC {
        return Err(SnapshotError::BadMagic);
    }
    let version = u32::from_le_bytes(data[8..12].try_into().expect("4 bytes"));
    if version != VERSION && version != VERSION_STRINGS {
        return Err(SnapshotError::BadVersion(version));
    }
    let (body, trailer) = data.split_at(data.len() - TRAILER_LEN);
    let stored = u32::from_le_bytes(trailer.try_into().expect("4 bytes"));
    if crc32fast::hash(body) != stored {
        return Err(SnapshotError::BadChecksum);
    }
    Ok(u64::from_le_bytes(data[12..20].try_into().expect("8 bytes")))
}

/// DUMP's payload: the value as a snapshot stores it, then the format
/// version (u16) and a CRC32 of everything before, so RESTORE refuses a
/// payload that was cut or altered. (Not Redis's RDB encoding: payloads
/// move between shoal servers only; see docs/compatibility.md.)
pub fn dump_value(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    put_value(&mut out, value);
    out.extend_from_slice(&(VERSION as u16).to_le_bytes());
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The value of a DUMP payload; `None` when it is not one this version wrote.
pub fn restore_value(payload: &[u8]) -> Option<Value> {
    let (body, crc) = payload.split_last_chunk::<4>()?;
    if crc32fast::hash(body) != u32::from_le_bytes(*crc) {
        return None;
    }
    let (data, version) = body.split_last_chunk::<2>()?;
    if u32::from(u16::from_le_bytes(*version)) != VERSION {
        return None;
    }
    let mut reader = Reader { data };
    let value = reader.value().ok()?;
    reader.data.is_empty().then_some(value)
}

fn put_value(out: &mut Vec<u8>, value: &Value) {
    let count = |out: &mut Vec<u8>, n: usize| out.extend_from_slice(&(n as u64).to_le_bytes());
    match value {
        Value::Str(b) => {
            out.push(0);
            put_bytes(out, b);
        }
        Value::Hash(h) => {
            out.push(1);
            count(out, h.len());
            for (f, v) in h.iter() {
                put_bytes(out, f);
                put_bytes(out, v);
            }
        }
        Value::List(l) => {
            out.push(2);
            count(out, l.len());
            l.iter().for_each(|i| put_bytes(out, i));
        }
        Value::Set(s) => {
            out.push(3);
            count(out, s.len());
            s.iter().for_each(|m| put_bytes(out, m));
        }
        Value::ZSet(z) => {
            out.push(4);
            count(out, z.len());
            for (m, score) in z.iter() {
                put_bytes(out, m);
                out.extend_from_slice(&score.to_bits().to_le_bytes());
            }
        }
    }
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u64).to_le_bytes());
    out.extend_from_slice(b);
}

struct Reader<'a> {
    data: &'a [u8],
}

impl Reader<'_> {
    fn value(&mut self) -> Result<Value, SnapshotError> {
        let (&kind, rest) = self.data.split_first().ok_or(SnapshotError::Truncated)?;
        self.data = rest;
        if kind == 0 {
            return Ok(Value::Str(self.blob()?));
        }
        let n = self.u64()?;
        // Every element takes at least 8 bytes: a count larger than that
        // is a lie, not an allocation.
        if n > (self.data.len() / 8) as u64 {
            return Err(SnapshotError::Truncated);
        }
        Ok(match kind {
            1 => {
                let mut h = HashValue::default();
                for _ in 0..n {
                    h.insert(self.bytes()?, self.bytes()?);
                }
                Value::Hash(Box::new(h))
            }
            2 => {
                let mut l = ListValue::default();
                for _ in 0..n {
                    l.push_back(self.bytes()?);
                }
                Value::List(Box::new(l))
            }
            3 => {
                let mut s = SetValue::default();
                for _ in 0..n {
                    s.insert(self.bytes()?);
                }
                Value::Set(Box::new(s))
            }
            4 => {
                let mut z = ZSetValue::default();
                for _ in 0..n {
                    let member = self.bytes()?;
                    let score = f64::from_bits(self.u64()?);
                    if score.is_nan() {
                        return Err(SnapshotError::BadValue);
                    }
                    z.insert(member, score);
                }
                Value::ZSet(Box::new(z))
            }
            _ => return Err(SnapshotError::BadValue),
        })
    }

    fn u32(&mut self) -> Result<u32, SnapshotError> {
        let (head, rest) = self.data.split_first_chunk::<4>().ok_or(SnapshotError::Truncated)?;
        self.data = rest;
        Ok(u32::from_le_bytes(*head))
    }

    fn u64(&mut self) -> Result<u64, SnapshotError> {
        let (head, rest) = self.data.split_first_chunk::<8>().ok_or(SnapshotError::Truncated)?;
        self.data = rest;
        Ok(u64::from_le_bytes(*head))
    }

    fn slice(&mut self) -> Result<&[u8], SnapshotError> {
        let len = usize::try_from(self.u64()?).map_err(|_| SnapshotError::Truncated)?;
        if len > self.data.len() {
            return Err(SnapshotError::Truncated);
        }
        let (head, rest) = self.data.split_at(len);
        self.data = rest;
        Ok(head)
    }

    fn bytes(&mut self) -> Result<Bytes, SnapshotError> {
        self.slice().map(Bytes::copy_from_slice)
    }

    fn blob(&mut self) -> Result<Blob, SnapshotError> {
        self.slice().map(Blob::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_values_and_expiries() {
        let db = Db::new();
        db.put(Bytes::from_static(b"a"), Bytes::from_static(b"1"), 0);
        db.put(Bytes::from_static(b""), Bytes::from_static(b""), 0);
        db.set(
            Bytes::from_static(b"t"),
            Bytes::from_static(b"x"),
            &crate::SetOptions { expiry: crate::SetExpiry::At(500), ..Default::default() },
            0,
        );
        let snap = db.dump(0);
        let copy = Db::new();
        assert_eq!(copy.restore(&snap, 0), Ok(3));
        assert_eq!(copy.get(b"a", 0).as_deref(), Some(&b"1"[..]));
        assert_eq!(copy.get(b"", 0).as_deref(), Some(&b""[..]));
        assert_eq!(copy.ttl(b"t", 100), crate::Ttl::ExpiresIn(400));
    }

    #[test]
    fn dump_slots_filters_by_slot() {
        let db = Db::new();
        for key in ["foo", "user1000", "{user1000}.following", "123456789"] {
            db.put(Bytes::from(key), Bytes::from_static(b"v"), 0);
        }
        let snap = db.dump_slots(|slot| slot == 3443, 0);
        let copy = Db::new();
        assert_eq!(copy.restore(&snap, 0), Ok(2));
        assert!(copy.exists(b"user1000", 0));
        assert!(copy.exists(b"{user1000}.following", 0));
        assert!(!copy.exists(b"foo", 0));
    }

    #[test]
    fn corruption_is_detected_and_restores_nothing() {
        let db = Db::new();
        db.put(Bytes::from_static(b"k"), Bytes::from_static(b"v"), 0);
        let mut snap = db.dump(0);
        let copy = Db::new();
        let last = snap.len() - 5;
        snap[last] ^= 0xff;
        assert_eq!(copy.restore(&snap, 0), Err(SnapshotError::BadChecksum));
        assert_eq!(copy.restore(&snap[..10], 0), Err(SnapshotError::Truncated));
        assert_eq!(copy.restore(b"NOTSHOAL00000000000000000", 0), Err(SnapshotError::BadMagic));
        assert!(copy.is_empty());
    }

    #[test]
    fn replace_is_all_or_nothing() {
        let source = Db::new();
        source.put(Bytes::from_static(b"new"), Bytes::from_static(b"1"), 0);
        let snap = source.dump(0);
        let target = Db::new();
        target.put(Bytes::from_static(b"old"), Bytes::from_static(b"x"), 0);
        let mut bad = snap.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert_eq!(target.replace(&bad, 0), Err(SnapshotError::BadChecksum));
        assert!(target.exists(b"old", 0), "a bad snapshot changes nothing");
        assert_eq!(target.replace(&snap, 0), Ok(1));
        assert!(!target.exists(b"old", 0));
        assert!(target.exists(b"new", 0));
        assert_eq!(target.len(), 1);
        assert_eq!(target.count_in_slot(crate::slot::key_slot(b"old")), 0);
    }

    #[test]
    fn expired_entries_are_skipped_not_applied() {
        let old = Db::new();
        let opts = crate::SetOptions { expiry: crate::SetExpiry::At(5), ..Default::default() };
        old.set(Bytes::from_static(b"k"), Bytes::from_static(b"stale"), &opts, 0);
        let snap = old.dump(0);
        let target = Db::new();
        target.put(Bytes::from_static(b"k"), Bytes::from_static(b"live"), 10);
        assert_eq!(target.restore(&snap, 10), Ok(1));
        assert_eq!(target.get(b"k", 10).as_deref(), Some(&b"live"[..]));
    }

    #[test]
    fn lying_length_is_truncation_not_allocation() {
        // A valid checksum over an entry whose key length claims 2^60 bytes.
        let mut data = Vec::new();
        data.extend_from_slice(MAGIC);
        data.extend_from_slice(&VERSION.to_le_bytes());
        data.extend_from_slice(&1u64.to_le_bytes());
        data.extend_from_slice(&(1u64 << 60).to_le_bytes());
        let crc = crc32fast::hash(&data);
        data.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(Db::new().restore(&data, 0), Err(SnapshotError::Truncated));
    }
}
