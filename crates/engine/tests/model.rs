//! Model-based tests: random operation sequences applied both to a `Db` and
//! to a plain `HashMap` that implements Redis's semantics in the most direct
//! way (store everything, decide liveness on every read), comparing every
//! return value and, at the end, the whole live keyspace.

use std::collections::{BTreeSet, HashMap};

use bytes::Bytes;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use shoal_engine::slot::{key_slot, Slot, SLOT_COUNT};
use shoal_engine::{
    Db, DelCondition, ExpireCondition, GetExExpiry, IncrError, SetCondition, SetExpiry, SetOptions, SetOutcome,
    SnapshotError, Ttl, WriteOp, WriteResult,
};

/// A tiny key space, some of it binary, so that operations collide.
const KEYS: [&[u8]; 4] = [b"a", b"", b"\x00\xff", b"k\r\n*"];
/// Start time, far enough from zero that "in the past" never underflows.
const START: u64 = 1_000;
/// APPEND's length limit in these tests, small so that it is hit.
const MAX_LEN: usize = 12;

// ---- the model --------------------------------------------------------------

/// Key → (value, absolute expiry). Entries may be dead; `live` decides.
#[derive(Default, Debug)]
struct Model {
    map: HashMap<Vec<u8>, (Vec<u8>, Option<u64>)>,
}

/// Redis's `string2ll` accepts exactly the canonical decimal spelling of an
/// i64: that is, the strings that `i64::to_string` produces.
fn model_parse(value: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(value).ok()?;
    let n: i64 = s.parse().ok()?;
    (n.to_string() == s).then_some(n)
}

impl Model {
    /// The live entry: one whose expiry is absent or not yet strictly past.
    fn live(&self, key: &[u8], now: u64) -> Option<&(Vec<u8>, Option<u64>)> {
        self.map.get(key).filter(|(_, at)| at.is_none_or(|at| now <= at))
    }

    /// Drops a dead entry for `key`, so that afterwards `map.get(key)` is
    /// the live entry or nothing.
    fn forget_dead(&mut self, key: &[u8], now: u64) {
        if self.live(key, now).is_none() {
            self.map.remove(key);
        }
    }

    fn live_contents(&self, now: u64) -> Vec<(Vec<u8>, Vec<u8>, Option<u64>)> {
        let mut out: Vec<_> = self
            .map
            .iter()
            .filter(|(k, _)| self.live(k, now).is_some())
            .map(|(k, (v, at))| (k.clone(), v.clone(), *at))
            .collect();
        out.sort();
        out
    }

    fn ttl(&self, key: &[u8], now: u64) -> Ttl {
        match self.live(key, now) {
            None => Ttl::Missing,
            Some((_, None)) => Ttl::Persistent,
            Some((_, Some(at))) => Ttl::ExpiresIn(at - now),
        }
    }
}

/// The whole live keyspace of a `Db`, through its public API only.
fn db_contents(db: &Db, now: u64) -> Vec<(Vec<u8>, Vec<u8>, Option<u64>)> {
    let mut out: Vec<_> = db
        .keys(b"*", now)
        .into_iter()
        .map(|k| {
            let value = db.get(&k, now).expect("KEYS returned a key GET can't see");
            let at = match db.ttl(&k, now) {
                Ttl::Missing => panic!("KEYS returned a key TTL can't see"),
                Ttl::Persistent => None,
                Ttl::ExpiresIn(ms) => Some(now + ms),
            };
            (k.to_vec(), value.to_vec(), at)
        })
        .collect();
    out.sort();
    out
}

// ---- operations -------------------------------------------------------------

#[derive(Debug, Clone)]
enum Cond {
    Always,
    Nx,
    Xx,
    IfEq(Vec<u8>),
    IfNe(Vec<u8>),
}

#[derive(Debug, Clone, Copy)]
enum Exp {
    Clear,
    Keep,
    /// Relative to `now`; may be in the past.
    In(i64),
}

#[derive(Debug, Clone, Copy)]
enum GetEx {
    Keep,
    Persist,
    In(i64),
}

#[derive(Debug, Clone)]
enum Op {
    Put(usize, Vec<u8>),
    Set(usize, Vec<u8>, Cond, Exp),
    Get(usize),
    Exists(usize),
    Strlen(usize),
    Ttl(usize),
    Delete(usize),
    DeleteIf(usize, u8, Vec<u8>),
    GetDelete(usize),
    GetEx(usize, GetEx),
    IncrBy(usize, i64),
    Append(usize, Vec<u8>),
    ExpireAt(usize, i64, ExpireCondition),
    Persist(usize),
    GetMany(Vec<usize>),
    PutMany(Vec<(usize, Vec<u8>)>),
    DeleteMany(Vec<usize>),
    CountExisting(Vec<usize>),
    Keys,
    Sweep(usize),
    Clear,
    Advance(u64),
}

fn key() -> impl Strategy<Value = usize> {
    0..KEYS.len()
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => select(vec![
            "0", "1", "-1", "42", "9223372036854775807", "-9223372036854775808",
            "9223372036854775806", "abc", "", " 1", "01", "-0", "+1", "1.5",
        ])
        .prop_map(|s| s.as_bytes().to_vec()),
        2 => vec(any::<u8>(), 0..4),
        1 => any::<i64>().prop_map(|n| n.to_string().into_bytes()),
    ]
}

fn delta() -> impl Strategy<Value = i64> {
    prop_oneof![
        4 => -3i64..=3,
        1 => Just(i64::MAX),
        1 => Just(i64::MIN),
        1 => any::<i64>(),
    ]
}

/// An expiry offset in ms: mostly near `now`, sometimes in the past.
/// An expiry offset in ms: mostly near `now`, sometimes in the past, and
/// now and then one of the two `FAR` markers for the largest expiries.
fn offset() -> impl Strategy<Value = i64> {
    prop_oneof![20 => -3i64..=10, 1 => Just(FAR), 1 => Just(FAR - 1)]
}

/// Offsets meaning the absolute times `u64::MAX` and `u64::MAX - 1`.
const FAR: i64 = i64::MAX;

fn cond() -> impl Strategy<Value = Cond> {
    prop_oneof![
        Just(Cond::Always),
        Just(Cond::Nx),
        Just(Cond::Xx),
        value().prop_map(Cond::IfEq),
        value().prop_map(Cond::IfNe),
    ]
}

fn exp() -> impl Strategy<Value = Exp> {
    prop_oneof![Just(Exp::Clear), Just(Exp::Keep), offset().prop_map(Exp::In)]
}

fn get_ex() -> impl Strategy<Value = GetEx> {
    prop_oneof![Just(GetEx::Keep), Just(GetEx::Persist), offset().prop_map(GetEx::In)]
}

fn expire_condition() -> impl Strategy<Value = ExpireCondition> {
    select(vec![
        ExpireCondition::Always,
        ExpireCondition::IfNone,
        ExpireCondition::IfSome,
        ExpireCondition::IfGreater,
        ExpireCondition::IfLess,
        ExpireCondition::IfSomeAndLess,
    ])
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (key(), value()).prop_map(|(k, v)| Op::Put(k, v)),
        4 => (key(), value(), cond(), exp()).prop_map(|(k, v, c, e)| Op::Set(k, v, c, e)),
        3 => key().prop_map(Op::Get),
        1 => key().prop_map(Op::Exists),
        1 => key().prop_map(Op::Strlen),
        2 => key().prop_map(Op::Ttl),
        2 => key().prop_map(Op::Delete),
        1 => (key(), 0u8..3, value()).prop_map(|(k, c, v)| Op::DeleteIf(k, c, v)),
        2 => key().prop_map(Op::GetDelete),
        2 => (key(), get_ex()).prop_map(|(k, e)| Op::GetEx(k, e)),
        4 => (key(), delta()).prop_map(|(k, d)| Op::IncrBy(k, d)),
        2 => (key(), vec(any::<u8>(), 0..6)).prop_map(|(k, s)| Op::Append(k, s)),
        3 => (key(), offset(), expire_condition()).prop_map(|(k, o, c)| Op::ExpireAt(k, o, c)),
        2 => key().prop_map(Op::Persist),
        1 => vec(key(), 0..6).prop_map(Op::GetMany),
        1 => vec((key(), value()), 0..4).prop_map(Op::PutMany),
        1 => vec(key(), 0..6).prop_map(Op::DeleteMany),
        1 => vec(key(), 0..6).prop_map(Op::CountExisting),
        1 => Just(Op::Keys),
        1 => (0usize..4).prop_map(Op::Sweep),
        1 => Just(Op::Clear),
        4 => (0u64..5).prop_map(Op::Advance),
    ]
}

fn at(now: u64, offset: i64) -> u64 {
    match offset {
        FAR => u64::MAX,
        o if o == FAR - 1 => u64::MAX - 1,
        o => now.saturating_add_signed(o),
    }
}

/// The engine uses `u64::MAX` for "no expiry", so it stores an expiry at
/// `u64::MAX` one millisecond earlier.
fn stored(at: u64) -> u64 {
    at.min(u64::MAX - 1)
}

fn bytes(b: &[u8]) -> Bytes {
    Bytes::copy_from_slice(b)
}

fn opt_bytes(v: Option<&Vec<u8>>) -> Option<Bytes> {
    v.map(|v| bytes(v))
}

/// The engine's SET options for a generated condition and expiry.
fn set_options(c: &Cond, e: &Exp, now: u64) -> (SetCondition, SetExpiry) {
    let condition = match c {
        Cond::Always => SetCondition::Always,
        Cond::Nx => SetCondition::IfAbsent,
        Cond::Xx => SetCondition::IfPresent,
        Cond::IfEq(x) => SetCondition::IfEqual(bytes(x)),
        Cond::IfNe(x) => SetCondition::IfNotEqual(bytes(x)),
    };
    let expiry = match e {
        Exp::Clear => SetExpiry::Clear,
        Exp::Keep => SetExpiry::Keep,
        Exp::In(o) => SetExpiry::At(at(now, *o)),
    };
    (condition, expiry)
}

/// The replicated form of `op`, if it writes: what the server would put in
/// the log for it, with absolute times resolved at `now`.
fn write_op(op: &Op, now: u64) -> Option<WriteOp> {
    let key = |k: &usize| bytes(KEYS[*k]);
    Some(match op {
        Op::Put(k, v) => WriteOp::Set { key: key(k), value: bytes(v), options: SetOptions::default() },
        Op::Set(k, v, c, e) => {
            let (condition, expiry) = set_options(c, e, now);
            WriteOp::Set {
                key: key(k),
                value: bytes(v),
                options: SetOptions { condition, expiry, ..Default::default() },
            }
        }
        Op::Delete(k) => WriteOp::Delete { keys: vec![key(k)] },
        Op::DeleteIf(k, c, x) => {
            let condition = match c {
                0 => DelCondition::Always,
                1 => DelCondition::IfEqual(bytes(x)),
                _ => DelCondition::IfNotEqual(bytes(x)),
            };
            WriteOp::DeleteIf { key: key(k), condition }
        }
        Op::GetDelete(k) => WriteOp::GetDelete { key: key(k) },
        Op::GetEx(k, e) => {
            let expiry = match e {
                GetEx::Keep => GetExExpiry::Keep,
                GetEx::Persist => GetExExpiry::Persist,
                GetEx::In(o) => GetExExpiry::At(at(now, *o)),
            };
            WriteOp::GetEx { key: key(k), expiry }
        }
        Op::IncrBy(k, d) => WriteOp::IncrBy { key: key(k), delta: *d },
        Op::Append(k, suffix) => WriteOp::Append { key: key(k), suffix: bytes(suffix), max_len: MAX_LEN as u64 },
        Op::ExpireAt(k, o, c) => WriteOp::ExpireAt { key: key(k), at: at(now, *o), condition: *c },
        Op::Persist(k) => WriteOp::Persist { key: key(k) },
        Op::PutMany(pairs) => WriteOp::PutMany { pairs: pairs.iter().map(|(k, v)| (key(k), bytes(v))).collect() },
        Op::DeleteMany(ks) => WriteOp::Delete { keys: ks.iter().map(key).collect() },
        Op::Clear => WriteOp::Clear,
        Op::Get(_)
        | Op::Exists(_)
        | Op::Strlen(_)
        | Op::Ttl(_)
        | Op::GetMany(_)
        | Op::CountExisting(_)
        | Op::Keys
        | Op::Sweep(_)
        | Op::Advance(_) => return None,
    })
}

/// Applies `op` to the `Db` and the model, asserting that they answer
/// alike, and its replicated form to the replica.
fn step(db: &Db, replica: &Db, model: &mut Model, clock: &mut u64, op: &Op) -> Result<(), TestCaseError> {
    let now = *clock;
    // The model acts only on live entries; dead ones are simply forgotten.
    let touched: Vec<usize> = match op {
        Op::Put(k, _)
        | Op::Set(k, ..)
        | Op::Get(k)
        | Op::Exists(k)
        | Op::Strlen(k)
        | Op::Ttl(k)
        | Op::Delete(k)
        | Op::DeleteIf(k, ..)
        | Op::GetDelete(k)
        | Op::GetEx(k, _)
        | Op::IncrBy(k, _)
        | Op::Append(k, _)
        | Op::ExpireAt(k, ..)
        | Op::Persist(k) => vec![*k],
        Op::GetMany(ks) | Op::DeleteMany(ks) | Op::CountExisting(ks) => ks.clone(),
        Op::PutMany(pairs) => pairs.iter().map(|(k, _)| *k).collect(),
        Op::Keys | Op::Sweep(_) | Op::Clear | Op::Advance(_) => vec![],
    };
    for &k in &touched {
        model.forget_dead(KEYS[k], now);
    }
    let m = &mut model.map;

    // Each write is also encoded, decoded and applied to the replica, which
    // must answer as the `Db` did; `direct` is that answer.
    let write = write_op(op, now);
    let direct: Option<WriteResult> = match op {
        Op::Put(k, v) => {
            db.put(bytes(KEYS[*k]), bytes(v), now);
            m.insert(KEYS[*k].to_vec(), (v.clone(), None));
            None
        }
        Op::Set(k, v, c, e) => {
            let key = KEYS[*k];
            let (condition, expiry) = set_options(c, e, now);
            let got = db.set(bytes(key), bytes(v), &SetOptions { condition, expiry, ..Default::default() }, now);

            let old = m.get(key).cloned();
            let allowed = match c {
                Cond::Always => true,
                Cond::Nx => old.is_none(),
                Cond::Xx => old.is_some(),
                Cond::IfEq(x) => old.as_ref().is_some_and(|(v, _)| v == x),
                Cond::IfNe(x) => old.as_ref().is_none_or(|(v, _)| v != x),
            };
            if allowed {
                let expires = match e {
                    Exp::Clear => None,
                    Exp::Keep => old.as_ref().and_then(|(_, at)| *at),
                    Exp::In(o) => Some(stored(at(now, *o))),
                };
                m.insert(key.to_vec(), (v.clone(), expires));
            }
            let want = SetOutcome { written: allowed, old: old.map(|(v, _)| bytes(&v)) };
            prop_assert_eq!(&got, &want);
            Some(WriteResult::Set(got))
        }
        Op::Get(k) => {
            prop_assert_eq!(db.get(KEYS[*k], now), opt_bytes(m.get(KEYS[*k]).map(|e| &e.0)));
            None
        }
        Op::Exists(k) => {
            prop_assert_eq!(db.exists(KEYS[*k], now), m.contains_key(KEYS[*k]));
            None
        }
        Op::Strlen(k) => {
            let want = m.get(KEYS[*k]).map_or(0, |e| e.0.len());
            prop_assert_eq!(db.strlen(KEYS[*k], now), Ok(want));
            None
        }
        Op::Ttl(k) => {
            prop_assert_eq!(db.ttl(KEYS[*k], now), model.ttl(KEYS[*k], now));
            None
        }
        Op::Delete(k) => {
            let got = db.delete(KEYS[*k], now);
            prop_assert_eq!(got, m.remove(KEYS[*k]).is_some());
            Some(WriteResult::Count(usize::from(got)))
        }
        Op::DeleteIf(k, c, x) => {
            let key = KEYS[*k];
            let condition = match c {
                0 => DelCondition::Always,
                1 => DelCondition::IfEqual(bytes(x)),
                _ => DelCondition::IfNotEqual(bytes(x)),
            };
            let want = match (m.get(key), c) {
                (None, _) => false,
                (Some(_), 0) => true,
                (Some((v, _)), 1) => v == x,
                (Some((v, _)), _) => v != x,
            };
            if want {
                m.remove(key);
            }
            prop_assert_eq!(db.delete_if(key, &condition, now), want);
            Some(WriteResult::Flag(want))
        }
        Op::GetDelete(k) => {
            let want = m.remove(KEYS[*k]).map(|(v, _)| bytes(&v));
            prop_assert_eq!(db.get_delete(KEYS[*k], now), want.clone());
            Some(WriteResult::Value(want))
        }
        Op::GetEx(k, e) => {
            let key = KEYS[*k];
            let expiry = match e {
                GetEx::Keep => GetExExpiry::Keep,
                GetEx::Persist => GetExExpiry::Persist,
                GetEx::In(o) => GetExExpiry::At(at(now, *o)),
            };
            let want = m.get(key).map(|(v, _)| bytes(v));
            if want.is_some() {
                match e {
                    GetEx::Keep => {}
                    GetEx::Persist => m.get_mut(key).unwrap().1 = None,
                    // Redis: an EXAT/PXAT not in the future deletes.
                    GetEx::In(o) if at(now, *o) <= now => {
                        m.remove(key);
                    }
                    GetEx::In(o) => m.get_mut(key).unwrap().1 = Some(stored(at(now, *o))),
                }
            }
            prop_assert_eq!(db.get_ex(key, expiry, now), want.clone());
            Some(WriteResult::Value(want))
        }
        Op::IncrBy(k, d) => {
            let key = KEYS[*k];
            let want = match m.get(key) {
                None => Ok((0i64, None)),
                Some((v, at)) => model_parse(v).map(|n| (n, *at)).ok_or(IncrError::NotInteger),
            }
            .and_then(|(n, at)| n.checked_add(*d).map(|n| (n, at)).ok_or(IncrError::Overflow));
            if let Ok((n, at)) = want {
                m.insert(key.to_vec(), (n.to_string().into_bytes(), at));
            }
            let want = want.map(|(n, _)| n);
            prop_assert_eq!(db.incr_by(bytes(key), *d, now), want);
            Some(WriteResult::Incr(want))
        }
        Op::Append(k, suffix) => {
            let key = KEYS[*k];
            let (mut v, at) = m.get(key).cloned().unwrap_or_default();
            v.extend_from_slice(suffix);
            let len = v.len();
            let want = if len > MAX_LEN {
                Err(len)
            } else {
                m.insert(key.to_vec(), (v, at));
                Ok(len)
            };
            prop_assert_eq!(db.append(bytes(key), suffix, MAX_LEN, now), want);
            Some(WriteResult::Append(want))
        }
        Op::ExpireAt(k, o, c) => {
            let key = KEYS[*k];
            let when = at(now, *o);
            let want = match m.get(key) {
                None => false,
                Some((_, current)) => match (c, *current) {
                    (ExpireCondition::Always, _) => true,
                    (ExpireCondition::IfNone, cur) => cur.is_none(),
                    (ExpireCondition::IfSome, cur) => cur.is_some(),
                    // No expiry is an infinite TTL: never less, always more.
                    (ExpireCondition::IfGreater, cur) => cur.is_some_and(|cur| when > cur),
                    (ExpireCondition::IfLess, cur) => cur.is_none_or(|cur| when < cur),
                    (ExpireCondition::IfSomeAndLess, cur) => cur.is_some_and(|cur| when < cur),
                },
            };
            if want {
                if when <= now {
                    m.remove(key);
                } else {
                    m.get_mut(key).unwrap().1 = Some(stored(when));
                }
            }
            prop_assert_eq!(db.expire_at(key, when, *c, now), want);
            Some(WriteResult::Flag(want))
        }
        Op::Persist(k) => {
            let key = KEYS[*k];
            let want = match m.get_mut(key) {
                Some((_, at @ Some(_))) => {
                    *at = None;
                    true
                }
                _ => false,
            };
            prop_assert_eq!(db.persist(key, now), want);
            Some(WriteResult::Flag(want))
        }
        Op::GetMany(ks) => {
            let keys: Vec<Bytes> = ks.iter().map(|&k| bytes(KEYS[k])).collect();
            let want: Vec<Option<Bytes>> = ks.iter().map(|&k| opt_bytes(m.get(KEYS[k]).map(|e| &e.0))).collect();
            prop_assert_eq!(db.get_many(&keys, now), want);
            None
        }
        Op::PutMany(pairs) => {
            for (k, v) in pairs {
                m.insert(KEYS[*k].to_vec(), (v.clone(), None));
            }
            db.put_many(pairs.iter().map(|(k, v)| (bytes(KEYS[*k]), bytes(v))).collect(), now);
            Some(WriteResult::Done)
        }
        Op::DeleteMany(ks) => {
            let keys: Vec<Bytes> = ks.iter().map(|&k| bytes(KEYS[k])).collect();
            let want = ks.iter().filter(|&&k| m.remove(KEYS[k]).is_some()).count();
            prop_assert_eq!(db.delete_many(&keys, now), want);
            Some(WriteResult::Count(want))
        }
        Op::CountExisting(ks) => {
            let keys: Vec<Bytes> = ks.iter().map(|&k| bytes(KEYS[k])).collect();
            let want = ks.iter().filter(|&&k| m.contains_key(KEYS[k])).count();
            prop_assert_eq!(db.count_existing(&keys, now), want);
            None
        }
        Op::Keys => {
            let live = model.live_contents(now);
            prop_assert_eq!(db_contents(db, now), live.clone());
            for slot in slots() {
                let mut got: Vec<Vec<u8>> = db.keys_in_slot(slot, KEYS.len(), now).iter().map(|k| k.to_vec()).collect();
                got.sort();
                let want: Vec<Vec<u8>> = live.iter().filter(|e| key_slot(&e.0) == slot).map(|e| e.0.clone()).collect();
                prop_assert_eq!(got, want);
            }
            None
        }
        Op::Sweep(budget) => {
            // Sweeping is local to each node; the replica does not.
            let removed = db.sweep_expired(now, *budget);
            prop_assert!(removed <= *budget);
            None
        }
        Op::Clear => {
            db.clear();
            m.clear();
            Some(WriteResult::Done)
        }
        Op::Advance(ms) => {
            *clock += ms;
            None
        }
    };
    if let Some(write) = write {
        let encoded = write.encode();
        let decoded = WriteOp::decode(&encoded).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&decoded, &write);
        let replicated = replica.apply(decoded, now);
        if let Some(direct) = direct {
            prop_assert_eq!(replicated, direct);
        }
    }

    // Stored keys (DBSIZE) include dead ones, never fewer than the live ones.
    let live = model.live_contents(*clock);
    prop_assert!(db.len() >= live.len());
    // Every stored key is one of KEYS, so the counts of their slots add up
    // to DBSIZE, and none is below its live keys.
    prop_assert_eq!(slots().iter().map(|&slot| db.count_in_slot(slot)).sum::<usize>(), db.len());
    for slot in slots() {
        prop_assert!(db.count_in_slot(slot) >= live.iter().filter(|e| key_slot(&e.0) == slot).count());
    }
    Ok(())
}

/// The distinct slots of `KEYS`.
fn slots() -> BTreeSet<Slot> {
    KEYS.iter().map(|k| key_slot(k)).collect()
}

fn check_final(db: &Db, model: &Model, now: u64) -> Result<(), TestCaseError> {
    let live = model.live_contents(now);
    prop_assert_eq!(db_contents(db, now), live.clone());
    for key in KEYS {
        prop_assert_eq!(db.ttl(key, now), model.ttl(key, now));
    }
    // Once everything expired is swept, the counters are exact.
    db.sweep_expired(now, usize::MAX);
    prop_assert_eq!(db.len(), live.len());
    prop_assert_eq!(db.volatile_len(), live.iter().filter(|e| e.2.is_some()).count());
    prop_assert_eq!(db.is_empty(), live.is_empty());
    for slot in slots() {
        prop_assert_eq!(db.count_in_slot(slot), live.iter().filter(|e| key_slot(&e.0) == slot).count());
    }
    // A dump taken now restores to the same contents.
    let copy = Db::new();
    prop_assert_eq!(copy.restore(&db.dump(now), now), Ok(live.len() as u64));
    prop_assert_eq!(db_contents(&copy, now), live);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn db_matches_model(ops in vec(op(), 1..80)) {
        let db = Db::new();
        let replica = Db::new();
        let mut model = Model::default();
        let mut now = START;
        for op in &ops {
            step(&db, &replica, &mut model, &mut now, op)?;
        }
        // The replica, which saw only the encoded writes, holds the same.
        prop_assert_eq!(replica.digest(now), db.digest(now));
        prop_assert_eq!(db_contents(&replica, now), model.live_contents(now));
        check_final(&db, &model, now)?;
    }

    /// Arbitrary contents (binary keys and values, expiries around now, some
    /// already past) survive dump/restore, restored now or later.
    #[test]
    fn dump_restore_round_trips(
        entries in vec(
            (vec(any::<u8>(), 0..8), vec(any::<u8>(), 0..16), proptest::option::of(-5i64..100)),
            0..64,
        ),
        delay in prop_oneof![Just(0u64), 0u64..120],
    ) {
        let now = START;
        let db = Db::new();
        let mut model = Model::default();
        for (k, v, offset) in &entries {
            let expires = offset.map(|o| at(now, o));
            let expiry = expires.map_or(SetExpiry::Clear, SetExpiry::At);
            db.set(bytes(k), bytes(v), &SetOptions { expiry, ..Default::default() }, now);
            model.map.insert(k.clone(), (v.clone(), expires));
        }
        let snap = db.dump(now);
        let live_now = model.live_contents(now);
        prop_assert_eq!(db_contents(&db, now), live_now.clone());

        let later = now + delay;
        let copy = Db::new();
        prop_assert_eq!(copy.restore(&snap, later), Ok(live_now.len() as u64));
        prop_assert_eq!(db_contents(&copy, later), model.live_contents(later));
        // Nothing already expired at `later` was stored, and every stored key
        // was counted in its slot.
        prop_assert_eq!(copy.len(), model.live_contents(later).len());
        prop_assert_eq!((0..SLOT_COUNT).map(|slot| copy.count_in_slot(slot)).sum::<usize>(), copy.len());

        // Dumping the copy gives a snapshot that restores the same contents.
        let again = Db::new();
        again.restore(&copy.dump(later), later).unwrap();
        prop_assert_eq!(db_contents(&again, later), model.live_contents(later));
    }

    /// Any single corrupted byte or any truncation is refused, and nothing is
    /// restored.
    #[test]
    fn damaged_snapshots_restore_nothing(
        entries in vec((vec(any::<u8>(), 0..8), vec(any::<u8>(), 0..8)), 1..16),
        position in any::<prop::sample::Index>(),
        flip in 1u8..=255,
        cut in any::<prop::sample::Index>(),
    ) {
        let db = Db::new();
        for (k, v) in &entries {
            db.put(bytes(k), bytes(v), START);
        }
        let snap = db.dump(START);

        let mut corrupted = snap.clone();
        corrupted[position.index(snap.len())] ^= flip;
        let copy = Db::new();
        prop_assert!(copy.restore(&corrupted, START).is_err());
        prop_assert!(copy.is_empty());

        let truncated = &snap[..cut.index(snap.len())];
        let result = copy.restore(truncated, START);
        prop_assert!(result.is_err());
        prop_assert!(copy.is_empty());
        if truncated.len() < 24 {
            prop_assert_eq!(result, Err(SnapshotError::Truncated));
        }
    }
}

#[test]
fn model_parse_agrees_with_engine_parse() {
    for s in [
        "0",
        "-0",
        "1",
        "-1",
        "01",
        "+1",
        " 1",
        "1 ",
        "",
        "-",
        "1.5",
        "9223372036854775807",
        "9223372036854775808",
        "-9223372036854775808",
        "-9223372036854775809",
        "00",
        "-01",
    ] {
        assert_eq!(model_parse(s.as_bytes()), shoal_engine::parse_i64(s.as_bytes()), "{s:?}");
    }
}
