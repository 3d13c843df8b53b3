//! Writes as values: every mutation of the keyspace as a [`WriteOp`] that
//! carries all it needs (absolute expiry times included), can be encoded to
//! bytes and decoded back, and is applied by [`Db::apply`].
//!
//! This is the unit replication will put in the Raft log: the leader turns
//! a client command into a `WriteOp` with its own `now`, and every replica
//! applies the same bytes with the same `now`, reaching the same state. The
//! standalone server already executes every write through this path, so the
//! single-node and replicated semantics cannot drift apart.

use bytes::Bytes;

use crate::cmd::Cmd;
use crate::ops::{
    DelCondition, ExpireCondition, GetExExpiry, IncrError, SetCondition, SetExpiry, SetOptions, SetOutcome,
};
use crate::reply::{Fault, Out};
use crate::{Db, Millis};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOp {
    Set {
        key: Bytes,
        value: Bytes,
        options: SetOptions,
    },
    Delete {
        keys: Vec<Bytes>,
    },
    DeleteIf {
        key: Bytes,
        condition: DelCondition,
    },
    GetDelete {
        key: Bytes,
    },
    GetEx {
        key: Bytes,
        expiry: GetExExpiry,
    },
    IncrBy {
        key: Bytes,
        delta: i64,
    },
    /// APPEND, failing beyond `max_len` bytes.
    Append {
        key: Bytes,
        suffix: Bytes,
        max_len: u64,
    },
    ExpireAt {
        key: Bytes,
        at: Millis,
        condition: ExpireCondition,
    },
    Persist {
        key: Bytes,
    },
    PutMany {
        pairs: Vec<(Bytes, Bytes)>,
    },
    Clear,
    /// Deletes those of `keys` still expired at apply time: how a leader
    /// reclaims expired keys on every replica alike.
    PurgeExpired {
        keys: Vec<Bytes>,
    },
    /// Any command of `cmd` (hashes, lists, sets, sorted sets, the rest of
    /// the string and key commands) as the client sent it: every replica
    /// parses the same arguments and runs them with the same `now` and the
    /// leader's `seed` for whatever the command draws at random.
    Exec {
        argv: Vec<Bytes>,
        seed: u64,
    },
    /// MULTI … EXEC: the queued commands, run atomically unless a watched
    /// key changed (`multi.rs`).
    Multi {
        items: Vec<WriteOp>,
        watches: Vec<crate::multi::Watch>,
    },
}

/// What applying a `WriteOp` produced, for the reply.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteResult {
    Set(SetOutcome),
    /// DEL: keys removed.
    Count(usize),
    /// DELEX, EXPIRE, PERSIST: whether it took effect.
    Flag(bool),
    /// GETDEL, GETEX: the value read.
    Value(Option<Bytes>),
    Incr(Result<i64, IncrError>),
    /// APPEND: the new length, or the length refused.
    Append(Result<usize, usize>),
    Done,
    /// A typed-value command's reply (`Exec`), or a string op refused
    /// because the key holds another type.
    Out(Out),
    /// EXEC: each command's result, or `None` when a watched key changed.
    Multi(Option<Vec<WriteResult>>),
}

impl WriteOp {
    /// Whether `pred` holds for every key the op touches (true for CLEAR,
    /// which names none): how a shard checks at apply time that a write is
    /// for slots it still owns.
    pub fn all_keys(&self, mut pred: impl FnMut(&[u8]) -> bool) -> bool {
        self.each_key(&mut |k| pred(k))
    }

    /// Calls `f` on each key the op touches until it returns false; true
    /// when it never did.
    pub(crate) fn each_key(&self, f: &mut dyn FnMut(&Bytes) -> bool) -> bool {
        match self {
            WriteOp::Set { key, .. }
            | WriteOp::DeleteIf { key, .. }
            | WriteOp::GetDelete { key }
            | WriteOp::GetEx { key, .. }
            | WriteOp::IncrBy { key, .. }
            | WriteOp::Append { key, .. }
            | WriteOp::ExpireAt { key, .. }
            | WriteOp::Persist { key } => f(key),
            WriteOp::Delete { keys } | WriteOp::PurgeExpired { keys } => keys.iter().all(f),
            WriteOp::PutMany { pairs } => pairs.iter().all(|(k, _)| f(k)),
            WriteOp::Clear => true,
            // An op that does not parse names no key; applying it only
            // answers its error.
            WriteOp::Exec { argv, .. } => Cmd::parse(argv).map_or(true, |cmd| cmd.keys().into_iter().all(f)),
            WriteOp::Multi { items, watches } => {
                watches.iter().all(|(k, _)| f(k)) && items.iter().all(|item| item.each_key(f))
            }
        }
    }
}

impl Db {
    /// Applies a write at time `now`. Deterministic: the same ops applied
    /// in the same order with the same times give the same keyspace.
    pub fn apply(&self, op: WriteOp, now: Millis) -> WriteResult {
        if self.wrong_type_for(&op, now) {
            return WriteResult::Out(Out::Err(Fault::WrongType));
        }
        self.count_change(|| self.apply_checked(op, now))
    }

    fn apply_checked(&self, op: WriteOp, now: Millis) -> WriteResult {
        match op {
            WriteOp::Set { key, value, options } => WriteResult::Set(self.set(key, value, &options, now)),
            WriteOp::Delete { keys } => WriteResult::Count(self.delete_many(&keys, now)),
            WriteOp::DeleteIf { key, condition } => WriteResult::Flag(self.delete_if(&key, &condition, now)),
            WriteOp::GetDelete { key } => WriteResult::Value(self.get_delete(&key, now)),
            WriteOp::GetEx { key, expiry } => WriteResult::Value(self.get_ex(&key, expiry, now)),
            WriteOp::IncrBy { key, delta } => WriteResult::Incr(self.incr_by(key, delta, now)),
            WriteOp::Append { key, suffix, max_len } => {
                let max_len = usize::try_from(max_len).unwrap_or(usize::MAX);
                WriteResult::Append(self.append(key, &suffix, max_len, now))
            }
            WriteOp::ExpireAt { key, at, condition } => WriteResult::Flag(self.expire_at(&key, at, condition, now)),
            WriteOp::Persist { key } => WriteResult::Flag(self.persist(&key, now)),
            WriteOp::PutMany { pairs } => {
                self.put_many(pairs, now);
                WriteResult::Done
            }
            WriteOp::Clear => {
                self.clear();
                WriteResult::Done
            }
            WriteOp::PurgeExpired { keys } => WriteResult::Count(self.purge_expired(&keys, now)),
            WriteOp::Exec { argv, seed } => WriteResult::Out(match Cmd::parse(&argv) {
                Ok(cmd) => self.run(&cmd, now, seed),
                Err(fault) => Out::Err(fault),
            }),
            WriteOp::Multi { items, watches } => WriteResult::Multi(self.apply_multi(items, &watches, now)),
        }
    }

    /// Whether a string op finds its key holding another type: WRONGTYPE,
    /// nothing written. Checked before the op takes its lock; no other
    /// write can come between, since a keyspace's writes are applied one
    /// at a time (reads and the expiry sweep change no live key's type).
    fn wrong_type_for(&self, op: &WriteOp, now: Millis) -> bool {
        crate::multi::string_key(op).is_some_and(|key| self.holds_non_string(key, now))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed write op: {0}")]
pub struct DecodeError(&'static str);

impl WriteOp {
    /// The op's bytes: a tag, then its fields (lengths and integers as
    /// little-endian u64).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer { out: Some(Vec::with_capacity(64)), len: 0 };
        self.write_to(&mut w);
        let out = w.out.expect("an encoding writer keeps its bytes");
        debug_assert_eq!(out.len(), w.len);
        out
    }

    /// `encode().len()` without building the bytes: how the server refuses
    /// a write too large for one log entry before copying it.
    pub fn encoded_len(&self) -> usize {
        let mut w = Writer { out: None, len: 0 };
        self.write_to(&mut w);
        w.len
    }

    fn write_to(&self, w: &mut Writer) {
        match self {
            WriteOp::Set { key, value, options } => {
                // SET … GET has a tag of its own (SET's entries older
                // than the flag keep reading the same).
                w.tag(if options.get { 15 } else { 1 }).bytes(key).bytes(value);
                match &options.condition {
                    SetCondition::Always => w.tag(0),
                    SetCondition::IfAbsent => w.tag(1),
                    SetCondition::IfPresent => w.tag(2),
                    SetCondition::IfEqual(v) => w.tag(3).bytes(v),
                    SetCondition::IfNotEqual(v) => w.tag(4).bytes(v),
                };
                match options.expiry {
                    SetExpiry::Clear => w.tag(0),
                    SetExpiry::Keep => w.tag(1),
                    SetExpiry::At(at) => w.tag(2).u64(at),
                };
            }
            WriteOp::Delete { keys } => {
                w.tag(2).u64(keys.len() as u64);
                keys.iter().for_each(|k| {
                    w.bytes(k);
                });
            }
            WriteOp::DeleteIf { key, condition } => {
                w.tag(3).bytes(key);
                match condition {
                    DelCondition::Always => w.tag(0),
                    DelCondition::IfEqual(v) => w.tag(1).bytes(v),
                    DelCondition::IfNotEqual(v) => w.tag(2).bytes(v),
                };
            }
            WriteOp::GetDelete { key } => {
                w.tag(4).bytes(key);
            }
            WriteOp::GetEx { key, expiry } => {
                w.tag(5).bytes(key);
                match expiry {
                    GetExExpiry::Keep => w.tag(0),
                    GetExExpiry::Persist => w.tag(1),
                    GetExExpiry::At(at) => w.tag(2).u64(*at),
                };
            }
            WriteOp::IncrBy { key, delta } => {
                w.tag(6).bytes(key).u64(*delta as u64);
            }
            WriteOp::Append { key, suffix, max_len } => {
                w.tag(7).bytes(key).bytes(suffix).u64(*max_len);
            }
            WriteOp::ExpireAt { key, at, condition } => {
                let c = match condition {
                    ExpireCondition::Always => 0,
                    ExpireCondition::IfNone => 1,
                    ExpireCondition::IfSome => 2,
                    ExpireCondition::IfGreater => 3,
                    ExpireCondition::IfLess => 4,
                    ExpireCondition::IfSomeAndLess => 5,
                };
                w.tag(8).bytes(key).u64(*at).tag(c);
            }
            WriteOp::Persist { key } => {
                w.tag(9).bytes(key);
            }
            WriteOp::PutMany { pairs } => {
                w.tag(10).u64(pairs.len() as u64);
                pairs.iter().for_each(|(k, v)| {
                    w.bytes(k).bytes(v);
                });
            }
            WriteOp::Clear => {
                w.tag(11);
            }
            WriteOp::PurgeExpired { keys } => {
                w.tag(12).u64(keys.len() as u64);
                keys.iter().for_each(|k| {
                    w.bytes(k);
                });
            }
            WriteOp::Exec { argv, seed } => {
                w.tag(13).u64(*seed).u64(argv.len() as u64);
                argv.iter().for_each(|a| {
                    w.bytes(a);
                });
            }
            WriteOp::Multi { items, watches } => {
                w.tag(14).u64(watches.len() as u64);
                for (key, seen) in watches {
                    w.bytes(key);
                    match seen {
                        None => w.tag(0),
                        Some(v) => w.tag(1).u64(u64::from(*v)),
                    };
                }
                w.u64(items.len() as u64);
                for item in items {
                    let mut inner = Writer { out: None, len: 0 };
                    item.write_to(&mut inner);
                    w.u64(inner.len as u64);
                    item.write_to(w);
                }
            }
        }
    }

    pub fn decode(data: &[u8]) -> Result<WriteOp, DecodeError> {
        let mut r = Reader(data);
        let op = match r.tag()? {
            tag @ (1 | 15) => {
                let (key, value) = (r.bytes()?, r.bytes()?);
                let condition = match r.tag()? {
                    0 => SetCondition::Always,
                    1 => SetCondition::IfAbsent,
                    2 => SetCondition::IfPresent,
                    3 => SetCondition::IfEqual(r.bytes()?),
                    4 => SetCondition::IfNotEqual(r.bytes()?),
                    _ => return Err(DecodeError("set condition")),
                };
                let expiry = match r.tag()? {
                    0 => SetExpiry::Clear,
                    1 => SetExpiry::Keep,
                    2 => SetExpiry::At(r.u64()?),
                    _ => return Err(DecodeError("set expiry")),
                };
                WriteOp::Set { key, value, options: SetOptions { condition, expiry, get: tag == 15 } }
            }
            2 => WriteOp::Delete { keys: r.list(8, |r| r.bytes())? },
            3 => {
                let key = r.bytes()?;
                let condition = match r.tag()? {
                    0 => DelCondition::Always,
                    1 => DelCondition::IfEqual(r.bytes()?),
                    2 => DelCondition::IfNotEqual(r.bytes()?),
                    _ => return Err(DecodeError("delete condition")),
                };
                WriteOp::DeleteIf { key, condition }
            }
            4 => WriteOp::GetDelete { key: r.bytes()? },
            5 => {
                let key = r.bytes()?;
                let expiry = match r.tag()? {
                    0 => GetExExpiry::Keep,
                    1 => GetExExpiry::Persist,
                    2 => GetExExpiry::At(r.u64()?),
                    _ => return Err(DecodeError("getex expiry")),
                };
                WriteOp::GetEx { key, expiry }
            }
            6 => WriteOp::IncrBy { key: r.bytes()?, delta: r.u64()? as i64 },
            7 => WriteOp::Append { key: r.bytes()?, suffix: r.bytes()?, max_len: r.u64()? },
            8 => {
                let (key, at) = (r.bytes()?, r.u64()?);
                let condition = match r.tag()? {
                    0 => ExpireCondition::Always,
                    1 => ExpireCondition::IfNone,
                    2 => ExpireCondition::IfSome,
                    3 => ExpireCondition::IfGreater,
                    4 => ExpireCondition::IfLess,
                    5 => ExpireCondition::IfSomeAndLess,
                    _ => return Err(DecodeError("expire condition")),
                };
                WriteOp::ExpireAt { key, at, condition }
            }
            9 => WriteOp::Persist { key: r.bytes()? },
            10 => WriteOp::PutMany { pairs: r.list(16, |r| Ok((r.bytes()?, r.bytes()?)))? },
            11 => WriteOp::Clear,
            12 => WriteOp::PurgeExpired { keys: r.list(8, |r| r.bytes())? },
            13 => {
                let seed = r.u64()?;
                WriteOp::Exec { seed, argv: r.list(8, |r| r.bytes())? }
            }
            14 => {
                let watches = r.list(9, |r| {
                    let key = r.bytes()?;
                    let seen = match r.tag()? {
                        0 => None,
                        1 => Some(u32::try_from(r.u64()?).map_err(|_| DecodeError("watch version"))?),
                        _ => return Err(DecodeError("watch")),
                    };
                    Ok((key, seen))
                })?;
                let items = r.list(9, |r| {
                    let len = usize::try_from(r.u64()?).map_err(|_| DecodeError("item length"))?;
                    if len > r.0.len() {
                        return Err(DecodeError("item longer than the op"));
                    }
                    let (item, rest) = r.0.split_at(len);
                    r.0 = rest;
                    match WriteOp::decode(item)? {
                        WriteOp::Multi { .. } => Err(DecodeError("nested multi")),
                        op => Ok(op),
                    }
                })?;
                WriteOp::Multi { items, watches }
            }
            _ => return Err(DecodeError("unknown op")),
        };
        if !r.0.is_empty() {
            return Err(DecodeError("trailing bytes"));
        }
        Ok(op)
    }
}

/// Encodes into `out`, or only counts when `out` is `None`.
struct Writer {
    out: Option<Vec<u8>>,
    len: usize,
}

impl Writer {
    fn put(&mut self, b: &[u8]) -> &mut Self {
        self.len += b.len();
        if let Some(out) = &mut self.out {
            out.extend_from_slice(b);
        }
        self
    }

    fn tag(&mut self, t: u8) -> &mut Self {
        self.put(&[t])
    }

    fn u64(&mut self, n: u64) -> &mut Self {
        self.put(&n.to_le_bytes())
    }

    fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.u64(b.len() as u64).put(b)
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn tag(&mut self) -> Result<u8, DecodeError> {
        let (&t, rest) = self.0.split_first().ok_or(DecodeError("truncated"))?;
        self.0 = rest;
        Ok(t)
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        let (head, rest) = self.0.split_first_chunk::<8>().ok_or(DecodeError("truncated"))?;
        self.0 = rest;
        Ok(u64::from_le_bytes(*head))
    }

    fn bytes(&mut self) -> Result<Bytes, DecodeError> {
        let len = usize::try_from(self.u64()?).map_err(|_| DecodeError("length"))?;
        if len > self.0.len() {
            return Err(DecodeError("truncated"));
        }
        let (head, rest) = self.0.split_at(len);
        self.0 = rest;
        Ok(Bytes::copy_from_slice(head))
    }

    /// A count, then that many items of at least `min_item` bytes each; the
    /// count is checked against the bytes left before anything is reserved,
    /// so a forged count cannot reserve more than the op's own size.
    fn list<T>(
        &mut self,
        min_item: usize,
        mut item: impl FnMut(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        let count = usize::try_from(self.u64()?).map_err(|_| DecodeError("count"))?;
        if count > self.0.len() / min_item {
            return Err(DecodeError("count larger than the op"));
        }
        let mut out = Vec::with_capacity(count);
        for _ in 0..count {
            out.push(item(self)?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn every_op() -> Vec<WriteOp> {
        vec![
            WriteOp::Set { key: b("k"), value: b("v"), options: SetOptions::default() },
            WriteOp::Set {
                key: b(""),
                value: b("\r\n"),
                options: SetOptions {
                    condition: SetCondition::IfEqual(b("old")),
                    expiry: SetExpiry::At(99),
                    ..Default::default()
                },
            },
            WriteOp::Set {
                key: b("k"),
                value: b("v"),
                options: SetOptions {
                    condition: SetCondition::IfNotEqual(b("x")),
                    expiry: SetExpiry::Keep,
                    ..Default::default()
                },
            },
            WriteOp::Delete { keys: vec![b("a"), b("b")] },
            WriteOp::DeleteIf { key: b("k"), condition: DelCondition::IfNotEqual(b("v")) },
            WriteOp::GetDelete { key: b("k") },
            WriteOp::GetEx { key: b("k"), expiry: GetExExpiry::At(5) },
            WriteOp::IncrBy { key: b("n"), delta: i64::MIN },
            WriteOp::Append { key: b("k"), suffix: b("tail"), max_len: 512 },
            WriteOp::ExpireAt { key: b("k"), at: 7, condition: ExpireCondition::IfLess },
            WriteOp::Persist { key: b("k") },
            WriteOp::PutMany { pairs: vec![(b("a"), b("1")), (b("b"), b("2"))] },
            WriteOp::Clear,
            WriteOp::PurgeExpired { keys: vec![b("gone"), b("")] },
            WriteOp::Set {
                key: b("k"),
                value: b("v"),
                options: SetOptions { expiry: SetExpiry::At(3), get: true, ..Default::default() },
            },
            WriteOp::Exec { argv: vec![b("HSET"), b("h"), b("f"), b("v")], seed: u64::MAX },
            WriteOp::Multi {
                items: vec![
                    WriteOp::IncrBy { key: b("n"), delta: 1 },
                    WriteOp::Exec { argv: vec![b("LPUSH"), b("l"), b("x")], seed: 7 },
                ],
                watches: vec![(b("n"), Some(42)), (b("l"), None)],
            },
        ]
    }

    #[test]
    fn a_transaction_runs_whole_or_not_at_all() {
        let db = Db::new();
        let now = 1000;
        db.set_stamp(1);
        db.put(b("n"), b("1"), now);
        let seen = db.watch_stamp(b"n", now);
        let multi = |watches| WriteOp::Multi {
            items: vec![
                WriteOp::IncrBy { key: b("n"), delta: 1 },
                WriteOp::Exec { argv: vec![b("RPUSH"), b("l"), b("x")], seed: 0 },
                WriteOp::Exec { argv: vec![b("LLEN"), b("l")], seed: 0 },
            ],
            watches,
        };
        db.set_stamp(2);
        let WriteResult::Multi(Some(results)) = db.apply(multi(vec![(b("n"), seen)]), now) else {
            panic!("an unchanged watch lets EXEC run")
        };
        assert_eq!(results[0], WriteResult::Incr(Ok(2)));
        assert_eq!(results[2], WriteResult::Out(Out::Int(1)), "a read sees the transaction's own write");
        // n changed at stamp 2 since the watch: the next EXEC aborts, nothing runs.
        db.set_stamp(3);
        assert_eq!(db.apply(multi(vec![(b("n"), seen)]), now), WriteResult::Multi(None));
        assert_eq!(db.get(b"n", now), Some(b("2")));
        // A key absent at WATCH and still absent: runs.
        assert!(matches!(db.apply(multi(vec![(b("absent"), None)]), now), WriteResult::Multi(Some(_))));
    }

    #[test]
    fn set_get_refuses_another_type_and_writes_nothing() {
        let db = Db::new();
        db.apply(WriteOp::Exec { argv: vec![b("RPUSH"), b("l"), b("a")], seed: 0 }, 0);
        let options = SetOptions { get: true, ..Default::default() };
        let set = WriteOp::decode(&WriteOp::Set { key: b("l"), value: b("v"), options }.encode()).unwrap();
        assert_eq!(db.apply(set, 0), WriteResult::Out(Out::Err(Fault::WrongType)));
        assert_eq!(db.kind(b"l", 0), Some(crate::Kind::List));
    }

    #[test]
    fn encode_decode_round_trip() {
        for op in every_op() {
            let bytes = op.encode();
            assert_eq!(op.encoded_len(), bytes.len(), "{op:?}");
            assert_eq!(WriteOp::decode(&bytes), Ok(op.clone()));
            for cut in 0..bytes.len() {
                assert!(WriteOp::decode(&bytes[..cut]).is_err(), "{op:?} cut at {cut}");
            }
        }
        assert!(WriteOp::decode(&[2, 255, 255, 255, 255, 255, 255, 255, 255]).is_err(), "huge count");
        assert!(WriteOp::decode(&[11, 0]).is_err(), "trailing byte");
    }

    #[test]
    fn replicas_applying_the_same_bytes_agree() {
        let (leader, follower) = (Db::new(), Db::new());
        let mut now = 1_000;
        for op in every_op().into_iter().filter(|op| *op != WriteOp::Clear) {
            let bytes = op.encode();
            let expected = leader.apply(op, now);
            assert_eq!(follower.apply(WriteOp::decode(&bytes).unwrap(), now), expected);
            now += 1;
        }
        assert_eq!(leader.digest(now), follower.digest(now));
        assert_eq!(leader.len(), follower.len());
        follower.apply(WriteOp::IncrBy { key: b("n2"), delta: 1 }, now);
        assert_ne!(leader.digest(now), follower.digest(now), "a differing key changes the digest");
    }

    #[test]
    fn purge_expired_removes_only_keys_still_expired() {
        let db = Db::new();
        let options =
            |at| SetOptions { condition: SetCondition::Always, expiry: SetExpiry::At(at), ..Default::default() };
        db.apply(WriteOp::Set { key: b("old"), value: b("1"), options: options(10) }, 0);
        db.apply(WriteOp::Set { key: b("renewed"), value: b("1"), options: options(10) }, 0);
        db.apply(WriteOp::Set { key: b("later"), value: b("1"), options: options(1_000) }, 0);
        let listed = db.expired_keys(20, 10);
        assert_eq!(listed.len(), 2, "{listed:?}");
        assert!(db.expired_keys(20, 1).len() == 1, "the budget bounds the list");
        // Written again between listing and applying: must survive.
        db.apply(WriteOp::Set { key: b("renewed"), value: b("2"), options: SetOptions::default() }, 15);
        assert_eq!(db.apply(WriteOp::PurgeExpired { keys: listed }, 20), WriteResult::Count(1));
        assert_eq!(db.len(), 2);
        assert_eq!(db.get(b"renewed", 20), Some(b("2")));
    }
}
