//! Model-based tests of the collection types: random command sequences over
//! a few keys, run through `Cmd::parse` and `Db::run` and against a plain
//! reference model (a `BTreeMap` per hash, a `VecDeque` per list, a
//! `BTreeSet` per set, a `BTreeMap` of scores per sorted set) that follows
//! Redis 7.2's semantics in the most direct way. Every reply is compared,
//! and after every command the whole keyspace. Every command is also applied
//! to a replica as `WriteOp::Exec`, which must answer alike and end with the
//! same digest; a last test mixes all four types, the random commands
//! included, and restores a third `Db` from a dump.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Debug;

use bytes::Bytes;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;
use shoal_engine::{Cmd, Db, Fault, Kind, Out, SetOptions, WriteOp, WriteResult};

/// A tiny key space, so that commands collide.
const KEYS: [&str; 3] = ["k0", "k1", "{k0}2"];
/// Time never moves: nothing here expires.
const NOW: u64 = 1_000;
/// Longer than every `*-max-listpack-value`, so a collection holding it
/// takes its large encoding.
const LONG: &str = "a member long enough to leave the small encodings behind, 0123456789";

fn key() -> impl Strategy<Value = usize> {
    0..KEYS.len()
}

fn key_bytes(k: usize) -> Bytes {
    Bytes::from_static(KEYS[k].as_bytes())
}

fn to_argv(words: &[String]) -> Vec<Bytes> {
    words.iter().map(|w| Bytes::copy_from_slice(w.as_bytes())).collect()
}

/// Parses and runs one command, as the server would: a parse error is the reply.
fn run(db: &Db, argv: &[String], seed: u64) -> Out {
    match Cmd::parse(&to_argv(argv)) {
        Ok(cmd) => db.run(&cmd, NOW, seed),
        Err(fault) => Out::Err(fault),
    }
}

fn words(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|p| p.to_string()).collect()
}

fn bulk(s: &str) -> Out {
    Out::Bulk(Bytes::copy_from_slice(s.as_bytes()))
}

fn len(n: usize) -> Out {
    Out::Int(n as i64)
}

fn flag(b: bool) -> Out {
    Out::Int(i64::from(b))
}

fn opt(s: Option<&String>) -> Out {
    s.map_or(Out::Nil, |s| bulk(s))
}

fn bulks<'a>(items: impl IntoIterator<Item = &'a String>) -> Out {
    Out::Array(items.into_iter().map(|s| bulk(s)).collect())
}

fn other(text: &str) -> Fault {
    Fault::other(text)
}

/// A bulk's text (anything else shown as itself, which matches no member).
fn text(out: &Out) -> String {
    match out {
        Out::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
        other => format!("<{other:?}>"),
    }
}

/// Replies compared by what a client sees: an error by its text, whichever
/// `Fault` carries it, and an empty list of pairs as the empty array it is
/// in both protocols.
fn norm(out: Out) -> Out {
    match out {
        Out::Err(f) => Out::Err(Fault::Other(f.to_string())),
        Out::Pairs(p) if p.is_empty() => Out::Array(vec![]),
        Out::Array(items) => Out::Array(items.into_iter().map(norm).collect()),
        other => other,
    }
}

/// Redis's `string2ll`: exactly the canonical spelling of an i64.
fn parse_canonical(s: &str) -> Option<i64> {
    let n: i64 = s.parse().ok()?;
    (n.to_string() == s).then_some(n)
}

/// Redis's `start stop` over `len` items: negative from the end, clamped,
/// both inclusive; `None` when empty.
fn rank_range(start: i64, stop: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let start = if start < 0 { (start + len).max(0) } else { start };
    let stop = if stop < 0 { stop + len } else { stop.min(len - 1) };
    (start <= stop && start < len).then_some((start as usize, stop as usize))
}

// ---- the model --------------------------------------------------------------

type HashM = BTreeMap<String, String>;
type List = VecDeque<String>;
type SetM = BTreeSet<String>;
type ZSet = BTreeMap<String, f64>;

#[derive(Clone, Debug)]
enum MVal {
    Str,
    Hash(HashM),
    List(List),
    Set(SetM),
    ZSet(ZSet),
}

impl MVal {
    fn is_empty_collection(&self) -> bool {
        match self {
            MVal::Str => false,
            MVal::Hash(h) => h.is_empty(),
            MVal::List(l) => l.is_empty(),
            MVal::Set(s) => s.is_empty(),
            MVal::ZSet(z) => z.is_empty(),
        }
    }
}

/// A collection type of the model.
trait Coll: Default {
    fn of(v: &MVal) -> Option<&Self>;
    fn of_mut(v: &mut MVal) -> Option<&mut Self>;
    fn wrap(self) -> MVal;
}

macro_rules! coll {
    ($t:ty, $variant:ident) => {
        impl Coll for $t {
            fn of(v: &MVal) -> Option<&Self> {
                match v {
                    MVal::$variant(c) => Some(c),
                    _ => None,
                }
            }
            fn of_mut(v: &mut MVal) -> Option<&mut Self> {
                match v {
                    MVal::$variant(c) => Some(c),
                    _ => None,
                }
            }
            fn wrap(self) -> MVal {
                MVal::$variant(self)
            }
        }
    };
}

coll!(HashM, Hash);
coll!(List, List);
coll!(SetM, Set);
coll!(ZSet, ZSet);

/// What a command answers: an error is the reply.
type Reply = Result<Out, Fault>;

#[derive(Default, Debug)]
struct Model {
    keys: [Option<MVal>; KEYS.len()],
}

impl Model {
    /// The collection at `k`: none, or WRONGTYPE when it holds another type.
    fn read<T: Coll>(&self, k: usize) -> Result<Option<&T>, Fault> {
        match &self.keys[k] {
            None => Ok(None),
            Some(v) => T::of(v).map(Some).ok_or(Fault::WrongType),
        }
    }

    /// The collection at `k` to change, created empty when missing and
    /// `create`; WRONGTYPE when it holds another type.
    fn write<T: Coll>(&mut self, k: usize, create: bool) -> Result<Option<&mut T>, Fault> {
        if self.keys[k].is_none() {
            if !create {
                return Ok(None);
            }
            self.keys[k] = Some(T::default().wrap());
        }
        T::of_mut(self.keys[k].as_mut().expect("present")).map(Some).ok_or(Fault::WrongType)
    }

    /// Redis never keeps an empty collection.
    fn tidy(&mut self) {
        for slot in &mut self.keys {
            if slot.as_ref().is_some_and(MVal::is_empty_collection) {
                *slot = None;
            }
        }
    }
}

/// The sorted set in (score, member) order.
fn ordered(z: &ZSet) -> Vec<(String, f64)> {
    let mut items: Vec<(String, f64)> = z.iter().map(|(m, s)| (m.clone(), *s)).collect();
    items.sort_by(|a, b| a.1.partial_cmp(&b.1).expect("no NaN").then_with(|| a.0.cmp(&b.0)));
    items
}

fn pairs_out(items: &[(String, f64)]) -> Out {
    Out::Pairs(items.iter().map(|(m, s)| (bulk(m), Out::Double(*s))).collect())
}

/// Every key of the `Db` against the model, through commands.
fn check_state(db: &Db, m: &Model) -> Result<(), TestCaseError> {
    for (k, name) in KEYS.iter().enumerate() {
        let kind = db.kind(name.as_bytes(), NOW);
        let key = name.to_string();
        match &m.keys[k] {
            None => prop_assert_eq!(kind, None, "{} should not exist", name),
            Some(MVal::Str) => {
                prop_assert_eq!(kind, Some(Kind::String), "{}", name);
                prop_assert_eq!(db.get(name.as_bytes(), NOW), Some(Bytes::from_static(b"str")));
            }
            Some(MVal::Hash(h)) => {
                prop_assert_eq!(kind, Some(Kind::Hash), "{}", name);
                let Out::Map(pairs) = run(db, &[String::from("HGETALL"), key], 0) else {
                    return Err(TestCaseError::fail("HGETALL is not a map"));
                };
                let mut got: Vec<(String, String)> = pairs.iter().map(|(f, v)| (text(f), text(v))).collect();
                got.sort();
                let want: Vec<(String, String)> = h.iter().map(|(f, v)| (f.clone(), v.clone())).collect();
                prop_assert_eq!(got, want, "HGETALL {}", name);
            }
            Some(MVal::List(l)) => {
                prop_assert_eq!(kind, Some(Kind::List), "{}", name);
                let got = run(db, &words(&["LRANGE", name, "0", "-1"]), 0);
                prop_assert_eq!(got, bulks(l), "LRANGE {} 0 -1", name);
            }
            Some(MVal::Set(s)) => {
                prop_assert_eq!(kind, Some(Kind::Set), "{}", name);
                let Out::Set(items) = run(db, &[String::from("SMEMBERS"), key], 0) else {
                    return Err(TestCaseError::fail("SMEMBERS is not a set"));
                };
                let mut got: Vec<String> = items.iter().map(text).collect();
                got.sort();
                prop_assert_eq!(got, s.iter().cloned().collect::<Vec<_>>(), "SMEMBERS {}", name);
            }
            Some(MVal::ZSet(z)) => {
                prop_assert_eq!(kind, Some(Kind::ZSet), "{}", name);
                let got = run(db, &words(&["ZRANGE", name, "0", "-1", "WITHSCORES"]), 0);
                prop_assert_eq!(got, pairs_out(&ordered(z)), "ZRANGE {} 0 -1 WITHSCORES", name);
            }
        }
    }
    Ok(())
}

// ---- running a sequence -----------------------------------------------------

/// A command of one type's test.
trait TypeOp: Debug {
    fn argv(&self) -> Vec<String>;

    /// Applies the command to the model; the reply Redis gives.
    fn expect(&self, m: &mut Model) -> Reply;

    /// Checks the `Db`'s reply and applies the command to the model. The
    /// random commands override this to check what they can.
    fn check(&self, m: &mut Model, got: Out) -> Result<(), TestCaseError> {
        exact(self, m, got)
    }
}

fn exact<T: TypeOp + ?Sized>(op: &T, m: &mut Model, got: Out) -> Result<(), TestCaseError> {
    let want = op.expect(m).unwrap_or_else(Out::Err);
    prop_assert_eq!(norm(got), norm(want), "{}", op.argv().join(" "));
    Ok(())
}

#[derive(Debug, Clone)]
enum Step<T> {
    Run(T),
    /// A plain string, for WRONGTYPE.
    PutStr(usize),
    DelKey(usize),
}

fn steps<T: Debug + Clone + 'static>(
    op: impl Strategy<Value = T> + 'static,
    max: usize,
) -> impl Strategy<Value = Vec<Step<T>>> {
    vec(
        prop_oneof![
            40 => op.prop_map(Step::Run),
            1 => key().prop_map(Step::PutStr),
            2 => key().prop_map(Step::DelKey),
        ],
        1..max,
    )
}

/// Runs `steps` on a `Db`, a replica fed `WriteOp`s and the model.
fn check_sequence<T: TypeOp>(steps: &[Step<T>]) -> Result<(), TestCaseError> {
    let db = Db::new();
    let replica = Db::new();
    let mut model = Model::default();
    for (i, step) in steps.iter().enumerate() {
        let seed = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        match step {
            Step::Run(op) => {
                let argv = op.argv();
                let got = run(&db, &argv, seed);
                let replicated = replica.apply(WriteOp::Exec { argv: to_argv(&argv), seed }, NOW);
                prop_assert_eq!(&replicated, &WriteResult::Out(got.clone()), "replica: {}", argv.join(" "));
                op.check(&mut model, got)?;
                model.tidy();
            }
            Step::PutStr(k) => {
                db.put(key_bytes(*k), Bytes::from_static(b"str"), NOW);
                let op = WriteOp::Set {
                    key: key_bytes(*k),
                    value: Bytes::from_static(b"str"),
                    options: SetOptions::default(),
                };
                replica.apply(op, NOW);
                model.keys[*k] = Some(MVal::Str);
            }
            Step::DelKey(k) => {
                let existed = model.keys[*k].take().is_some();
                prop_assert_eq!(db.delete(KEYS[*k].as_bytes(), NOW), existed);
                prop_assert_eq!(
                    replica.apply(WriteOp::Delete { keys: vec![key_bytes(*k)] }, NOW),
                    WriteResult::Count(usize::from(existed))
                );
            }
        }
        check_state(&db, &model)?;
    }
    prop_assert_eq!(replica.digest(NOW), db.digest(NOW));
    Ok(())
}

/// A random pick of `count` (Redis's RANDMEMBER/RANDFIELD count) from a
/// collection of `size`: how many came, all from the collection, distinct
/// for a positive count.
fn check_picks(
    picked: &[String],
    size: usize,
    count: i64,
    contains: impl Fn(&str) -> bool,
) -> Result<(), TestCaseError> {
    let want = if count >= 0 { (count as usize).min(size) } else { count.unsigned_abs() as usize };
    prop_assert_eq!(picked.len(), want, "picked {:?}", picked);
    for p in picked {
        prop_assert!(contains(p), "picked {:?}, not in the collection", p);
    }
    if count >= 0 {
        let distinct: BTreeSet<&String> = picked.iter().collect();
        prop_assert_eq!(distinct.len(), picked.len(), "repeats in {:?}", picked);
    }
    Ok(())
}

// ---- hashes -----------------------------------------------------------------

const FIELDS: &[&str] = &["f", "g", "h", "1", LONG];
const HVALUES: &[&str] =
    &["0", "1", "-2", "10", "x", "", "01", " 1", "9223372036854775807", "-9223372036854775808", LONG];

#[derive(Debug, Clone)]
enum HashOp {
    Set(usize, Vec<(&'static str, &'static str)>),
    SetNx(usize, &'static str, &'static str),
    Del(usize, Vec<&'static str>),
    Get(usize, &'static str),
    MGet(usize, Vec<&'static str>),
    Len(usize),
    Exists(usize, &'static str),
    IncrBy(usize, &'static str, i64),
    StrLen(usize, &'static str),
    /// HRANDFIELD key [count [WITHVALUES]].
    RandField(usize, Option<(i64, bool)>),
}

fn field() -> impl Strategy<Value = &'static str> {
    prop_oneof![8 => select(&FIELDS[..4]), 1 => Just(LONG)]
}

fn hvalue() -> impl Strategy<Value = &'static str> {
    prop_oneof![8 => select(&HVALUES[..10]), 1 => Just(LONG)]
}

fn hash_op() -> impl Strategy<Value = HashOp> {
    let delta = prop_oneof![6 => -3i64..=3, 1 => Just(i64::MAX), 1 => Just(i64::MIN)];
    prop_oneof![
        9 => (key(), vec((field(), hvalue()), 1..4)).prop_map(|(k, p)| HashOp::Set(k, p)),
        2 => (key(), field(), hvalue()).prop_map(|(k, f, v)| HashOp::SetNx(k, f, v)),
        3 => (key(), vec(field(), 1..4)).prop_map(|(k, f)| HashOp::Del(k, f)),
        2 => (key(), field()).prop_map(|(k, f)| HashOp::Get(k, f)),
        1 => (key(), vec(field(), 1..4)).prop_map(|(k, f)| HashOp::MGet(k, f)),
        1 => key().prop_map(HashOp::Len),
        1 => (key(), field()).prop_map(|(k, f)| HashOp::Exists(k, f)),
        4 => (key(), field(), delta).prop_map(|(k, f, d)| HashOp::IncrBy(k, f, d)),
        1 => (key(), field()).prop_map(|(k, f)| HashOp::StrLen(k, f)),
        2 => (key(), option::of((-5i64..6, any::<bool>()))).prop_map(|(k, c)| HashOp::RandField(k, c)),
    ]
}

impl TypeOp for HashOp {
    fn argv(&self) -> Vec<String> {
        let a = |name: &str, k: usize, rest: &[&str]| {
            let mut v = words(&[name, KEYS[k]]);
            v.extend(rest.iter().map(|s| s.to_string()));
            v
        };
        match self {
            HashOp::Set(k, pairs) => a("HSET", *k, &pairs.iter().flat_map(|(f, v)| [*f, *v]).collect::<Vec<_>>()),
            HashOp::SetNx(k, f, v) => a("HSETNX", *k, &[*f, *v]),
            HashOp::Del(k, fs) => a("HDEL", *k, fs),
            HashOp::Get(k, f) => a("HGET", *k, &[*f]),
            HashOp::MGet(k, fs) => a("HMGET", *k, fs),
            HashOp::Len(k) => a("HLEN", *k, &[]),
            HashOp::Exists(k, f) => a("HEXISTS", *k, &[*f]),
            HashOp::IncrBy(k, f, d) => a("HINCRBY", *k, &[*f, d.to_string().as_str()]),
            HashOp::StrLen(k, f) => a("HSTRLEN", *k, &[*f]),
            HashOp::RandField(k, None) => a("HRANDFIELD", *k, &[]),
            HashOp::RandField(k, Some((c, false))) => a("HRANDFIELD", *k, &[c.to_string().as_str()]),
            HashOp::RandField(k, Some((c, true))) => a("HRANDFIELD", *k, &[c.to_string().as_str(), "WITHVALUES"]),
        }
    }

    fn expect(&self, m: &mut Model) -> Reply {
        Ok(match self {
            HashOp::Set(k, pairs) => {
                let h = m.write::<HashM>(*k, true)?.expect("created");
                len(pairs.iter().filter(|(f, v)| h.insert(f.to_string(), v.to_string()).is_none()).count())
            }
            HashOp::SetNx(k, f, v) => {
                let h = m.write::<HashM>(*k, true)?.expect("created");
                let new = !h.contains_key(*f);
                if new {
                    h.insert(f.to_string(), v.to_string());
                }
                flag(new)
            }
            HashOp::Del(k, fs) => match m.write::<HashM>(*k, false)? {
                None => Out::Int(0),
                Some(h) => len(fs.iter().filter(|f| h.remove(**f).is_some()).count()),
            },
            HashOp::Get(k, f) => opt(m.read::<HashM>(*k)?.and_then(|h| h.get(*f))),
            HashOp::MGet(k, fs) => {
                let h = m.read::<HashM>(*k)?;
                Out::Array(fs.iter().map(|f| opt(h.and_then(|h| h.get(*f)))).collect())
            }
            HashOp::Len(k) => len(m.read::<HashM>(*k)?.map_or(0, |h| h.len())),
            HashOp::Exists(k, f) => flag(m.read::<HashM>(*k)?.is_some_and(|h| h.contains_key(*f))),
            HashOp::IncrBy(k, f, d) => {
                let h = m.write::<HashM>(*k, true)?.expect("created");
                let current = match h.get(*f) {
                    None => 0,
                    Some(v) => parse_canonical(v).ok_or(Fault::HashNotInteger)?,
                };
                let next = current.checked_add(*d).ok_or(Fault::Overflow)?;
                h.insert(f.to_string(), next.to_string());
                Out::Int(next)
            }
            HashOp::StrLen(k, f) => len(m.read::<HashM>(*k)?.and_then(|h| h.get(*f)).map_or(0, |v| v.len())),
            HashOp::RandField(..) => unreachable!("checked by `check`"),
        })
    }

    fn check(&self, m: &mut Model, got: Out) -> Result<(), TestCaseError> {
        let HashOp::RandField(k, count) = self else { return exact(self, m, got) };
        let cmd = self.argv().join(" ");
        let h = match m.read::<HashM>(*k) {
            Err(fault) => {
                prop_assert_eq!(norm(got), norm(Out::Err(fault)), "{}", cmd);
                return Ok(());
            }
            Ok(h) => h,
        };
        match (h, count) {
            (None, None) => prop_assert_eq!(got, Out::Nil, "{}", cmd),
            (None, Some(_)) => prop_assert_eq!(norm(got), Out::Array(vec![]), "{}", cmd),
            (Some(h), None) => prop_assert!(h.contains_key(&text(&got)), "{}: {:?}", cmd, got),
            (Some(h), Some((c, false))) => {
                let Out::Array(items) = got else { return Err(TestCaseError::fail(format!("{cmd}: {got:?}"))) };
                check_picks(&items.iter().map(text).collect::<Vec<_>>(), h.len(), *c, |f| h.contains_key(f))?;
            }
            (Some(h), Some((c, true))) => {
                let items = match norm(got) {
                    Out::Pairs(p) => p,
                    Out::Array(a) if a.is_empty() => vec![],
                    other => return Err(TestCaseError::fail(format!("{cmd}: {other:?}"))),
                };
                for (f, v) in &items {
                    prop_assert_eq!(h.get(&text(f)), Some(&text(v)), "{}", cmd);
                }
                check_picks(&items.iter().map(|(f, _)| text(f)).collect::<Vec<_>>(), h.len(), *c, |f| {
                    h.contains_key(f)
                })?;
            }
        }
        Ok(())
    }
}

// ---- lists ------------------------------------------------------------------

const ITEMS: &[&str] = &["a", "b", "c", "1", LONG];

#[derive(Debug, Clone)]
enum ListOp {
    /// LPUSH (`left`) or RPUSH.
    Push(usize, bool, Vec<&'static str>),
    /// LPOP (`left`) or RPOP, with or without a count.
    Pop(usize, bool, Option<u64>),
    Index(usize, i64),
    Set(usize, i64, &'static str),
    Range(usize, i64, i64),
    Trim(usize, i64, i64),
    Rem(usize, i64, &'static str),
    /// LINSERT key BEFORE|AFTER (`after`) pivot element.
    Insert(usize, bool, &'static str, &'static str),
    Len(usize),
    /// LMOVE source destination, popping LEFT when the first flag is set,
    /// pushing LEFT when the second is.
    Move(usize, usize, bool, bool),
}

fn item() -> impl Strategy<Value = &'static str> {
    prop_oneof![12 => select(&ITEMS[..4]), 1 => Just(LONG)]
}

fn index() -> impl Strategy<Value = i64> {
    prop_oneof![10 => -6i64..7, 1 => Just(i64::MIN), 1 => Just(i64::MAX)]
}

fn list_op() -> impl Strategy<Value = ListOp> {
    prop_oneof![
        9 => (key(), any::<bool>(), vec(item(), 1..4)).prop_map(|(k, l, i)| ListOp::Push(k, l, i)),
        3 => (key(), any::<bool>(), option::of(0u64..4)).prop_map(|(k, l, c)| ListOp::Pop(k, l, c)),
        2 => (key(), index()).prop_map(|(k, i)| ListOp::Index(k, i)),
        2 => (key(), index(), item()).prop_map(|(k, i, v)| ListOp::Set(k, i, v)),
        3 => (key(), index(), index()).prop_map(|(k, a, b)| ListOp::Range(k, a, b)),
        1 => (key(), index(), index()).prop_map(|(k, a, b)| ListOp::Trim(k, a, b)),
        2 => (key(), -3i64..4, item()).prop_map(|(k, c, v)| ListOp::Rem(k, c, v)),
        2 => (key(), any::<bool>(), item(), item()).prop_map(|(k, a, p, v)| ListOp::Insert(k, a, p, v)),
        1 => key().prop_map(ListOp::Len),
        3 => (key(), key(), any::<bool>(), any::<bool>()).prop_map(|(s, d, a, b)| ListOp::Move(s, d, a, b)),
    ]
}

fn side(left: bool) -> &'static str {
    if left {
        "LEFT"
    } else {
        "RIGHT"
    }
}

fn pop_end(l: &mut List, left: bool) -> Option<String> {
    if left {
        l.pop_front()
    } else {
        l.pop_back()
    }
}

fn push_end(l: &mut List, left: bool, item: String) {
    if left {
        l.push_front(item)
    } else {
        l.push_back(item)
    }
}

/// An index from the end when negative; `None` outside the list.
fn list_index(i: i64, len: usize) -> Option<usize> {
    let i = if i < 0 { i.checked_add(len as i64)? } else { i };
    (0..len as i64).contains(&i).then_some(i as usize)
}

impl TypeOp for ListOp {
    fn argv(&self) -> Vec<String> {
        let k = |k: &usize| KEYS[*k].to_string();
        match self {
            ListOp::Push(key, left, items) => {
                let mut v = vec![if *left { "LPUSH" } else { "RPUSH" }.to_string(), k(key)];
                v.extend(items.iter().map(|s| s.to_string()));
                v
            }
            ListOp::Pop(key, left, count) => {
                let mut v = vec![if *left { "LPOP" } else { "RPOP" }.to_string(), k(key)];
                v.extend(count.map(|c| c.to_string()));
                v
            }
            ListOp::Index(key, i) => vec!["LINDEX".into(), k(key), i.to_string()],
            ListOp::Set(key, i, item) => vec!["LSET".into(), k(key), i.to_string(), item.to_string()],
            ListOp::Range(key, a, b) => vec!["LRANGE".into(), k(key), a.to_string(), b.to_string()],
            ListOp::Trim(key, a, b) => vec!["LTRIM".into(), k(key), a.to_string(), b.to_string()],
            ListOp::Rem(key, c, item) => vec!["LREM".into(), k(key), c.to_string(), item.to_string()],
            ListOp::Insert(key, after, pivot, item) => vec![
                "LINSERT".into(),
                k(key),
                if *after { "AFTER" } else { "BEFORE" }.into(),
                pivot.to_string(),
                item.to_string(),
            ],
            ListOp::Len(key) => vec!["LLEN".into(), k(key)],
            ListOp::Move(s, d, from, to) => {
                vec!["LMOVE".into(), k(s), k(d), side(*from).into(), side(*to).into()]
            }
        }
    }

    fn expect(&self, m: &mut Model) -> Reply {
        Ok(match self {
            ListOp::Push(k, left, items) => {
                let l = m.write::<List>(*k, true)?.expect("created");
                for i in items {
                    push_end(l, *left, i.to_string());
                }
                len(l.len())
            }
            ListOp::Pop(k, left, count) => match (m.write::<List>(*k, false)?, count) {
                (None, None) => Out::Nil,
                (None, Some(_)) => Out::NilArray,
                (Some(l), None) => opt(pop_end(l, *left).as_ref()),
                (Some(l), Some(n)) => {
                    let popped: Vec<String> = (0..*n).map_while(|_| pop_end(l, *left)).collect();
                    bulks(&popped)
                }
            },
            ListOp::Index(k, i) => match m.read::<List>(*k)? {
                None => Out::Nil,
                Some(l) => opt(list_index(*i, l.len()).map(|i| &l[i])),
            },
            ListOp::Set(k, i, item) => {
                let l = m.write::<List>(*k, false)?.ok_or(Fault::NoSuchKey)?;
                let at = list_index(*i, l.len()).ok_or(Fault::OutOfRange)?;
                l[at] = item.to_string();
                Out::Ok
            }
            ListOp::Range(k, a, b) => match m.read::<List>(*k)? {
                None => Out::Array(vec![]),
                Some(l) => match rank_range(*a, *b, l.len()) {
                    None => Out::Array(vec![]),
                    Some((s, e)) => bulks(l.range(s..=e)),
                },
            },
            ListOp::Trim(k, a, b) => {
                if let Some(l) = m.write::<List>(*k, false)? {
                    match rank_range(*a, *b, l.len()) {
                        None => l.clear(),
                        Some((s, e)) => {
                            l.truncate(e + 1);
                            l.drain(..s);
                        }
                    }
                }
                Out::Ok
            }
            ListOp::Rem(k, count, item) => {
                let Some(l) = m.write::<List>(*k, false)? else { return Ok(Out::Int(0)) };
                let limit = if *count == 0 { usize::MAX } else { count.unsigned_abs() as usize };
                let mut removed = 0;
                if *count >= 0 {
                    let mut i = 0;
                    while i < l.len() && removed < limit {
                        if l[i] == *item {
                            l.remove(i);
                            removed += 1;
                        } else {
                            i += 1;
                        }
                    }
                } else {
                    let mut i = l.len();
                    while i > 0 && removed < limit {
                        i -= 1;
                        if l[i] == *item {
                            l.remove(i);
                            removed += 1;
                        }
                    }
                }
                len(removed)
            }
            ListOp::Insert(k, after, pivot, item) => {
                let Some(l) = m.write::<List>(*k, false)? else { return Ok(Out::Int(0)) };
                match l.iter().position(|x| x == pivot) {
                    None => Out::Int(-1),
                    Some(at) => {
                        l.insert(at + usize::from(*after), item.to_string());
                        len(l.len())
                    }
                }
            }
            ListOp::Len(k) => len(m.read::<List>(*k)?.map_or(0, |l| l.len())),
            ListOp::Move(src, dst, from_left, to_left) => {
                // The source first (missing: nil, whatever the destination
                // holds), then the destination's type, then the move.
                if m.read::<List>(*src)?.is_none() {
                    return Ok(Out::Nil);
                }
                m.read::<List>(*dst)?;
                let source = m.write::<List>(*src, false)?.expect("checked");
                let item = pop_end(source, *from_left).expect("a stored list is not empty");
                m.tidy();
                push_end(m.write::<List>(*dst, true)?.expect("created"), *to_left, item.clone());
                bulk(&item)
            }
        })
    }
}

// ---- sets -------------------------------------------------------------------

const MEMBERS: &[&str] = &["a", "b", "c", "1", "2", "-3", LONG];

#[derive(Debug, Clone, Copy)]
enum Algebra {
    Inter,
    Union,
    Diff,
}

#[derive(Debug, Clone)]
enum SetOp {
    Add(usize, Vec<&'static str>),
    Rem(usize, Vec<&'static str>),
    IsMember(usize, &'static str),
    Card(usize),
    Move(usize, usize, &'static str),
    Combine(Algebra, Vec<usize>),
    Store(Algebra, usize, Vec<usize>),
    Pop(usize, Option<u64>),
    RandMember(usize, Option<i64>),
}

fn member() -> impl Strategy<Value = &'static str> {
    prop_oneof![16 => select(&MEMBERS[..6]), 1 => Just(LONG)]
}

fn algebra() -> impl Strategy<Value = Algebra> {
    select(vec![Algebra::Inter, Algebra::Union, Algebra::Diff])
}

fn set_op() -> impl Strategy<Value = SetOp> {
    prop_oneof![
        9 => (key(), vec(member(), 1..5)).prop_map(|(k, m)| SetOp::Add(k, m)),
        3 => (key(), vec(member(), 1..4)).prop_map(|(k, m)| SetOp::Rem(k, m)),
        2 => (key(), member()).prop_map(|(k, m)| SetOp::IsMember(k, m)),
        1 => key().prop_map(SetOp::Card),
        3 => (key(), key(), member()).prop_map(|(s, d, m)| SetOp::Move(s, d, m)),
        3 => (algebra(), vec(key(), 1..4)).prop_map(|(o, ks)| SetOp::Combine(o, ks)),
        3 => (algebra(), key(), vec(key(), 1..4)).prop_map(|(o, d, ks)| SetOp::Store(o, d, ks)),
        2 => (key(), option::of(0u64..5)).prop_map(|(k, c)| SetOp::Pop(k, c)),
        2 => (key(), option::of(-5i64..6)).prop_map(|(k, c)| SetOp::RandMember(k, c)),
    ]
}

fn algebra_name(op: Algebra) -> &'static str {
    match op {
        Algebra::Inter => "SINTER",
        Algebra::Union => "SUNION",
        Algebra::Diff => "SDIFF",
    }
}

/// SADD on the model (also how the sorted-set test makes plain sets).
fn sadd(m: &mut Model, k: usize, members: &[&str]) -> Reply {
    let s = m.write::<SetM>(k, true)?.expect("created");
    Ok(len(members.iter().filter(|x| s.insert(x.to_string())).count()))
}

/// SINTER/SUNION/SDIFF on the model: every key's type is checked first.
fn combine(m: &Model, op: Algebra, keys: &[usize]) -> Result<SetM, Fault> {
    let sets = keys.iter().map(|&k| m.read::<SetM>(k)).collect::<Result<Vec<_>, _>>()?;
    let empty = SetM::new();
    Ok(match op {
        Algebra::Inter if sets.iter().any(Option::is_none) => SetM::new(),
        Algebra::Inter => {
            let (first, rest) = sets.split_first().expect("a key");
            first
                .expect("present")
                .iter()
                .filter(|x| rest.iter().all(|s| s.expect("present").contains(*x)))
                .cloned()
                .collect()
        }
        Algebra::Union => sets.iter().flatten().flat_map(|s| s.iter().cloned()).collect(),
        Algebra::Diff => {
            let (first, rest) = sets.split_first().expect("a key");
            first.unwrap_or(&empty).iter().filter(|x| rest.iter().flatten().all(|s| !s.contains(*x))).cloned().collect()
        }
    })
}

fn sorted_set(out: Out) -> Out {
    match out {
        Out::Set(mut items) => {
            items.sort_by_key(text);
            Out::Set(items)
        }
        other => other,
    }
}

impl TypeOp for SetOp {
    fn argv(&self) -> Vec<String> {
        let k = |k: &usize| KEYS[*k].to_string();
        let with = |mut v: Vec<String>, rest: &[&str]| {
            v.extend(rest.iter().map(|s| s.to_string()));
            v
        };
        match self {
            SetOp::Add(key, ms) => with(vec!["SADD".into(), k(key)], ms),
            SetOp::Rem(key, ms) => with(vec!["SREM".into(), k(key)], ms),
            SetOp::IsMember(key, m) => vec!["SISMEMBER".into(), k(key), m.to_string()],
            SetOp::Card(key) => vec!["SCARD".into(), k(key)],
            SetOp::Move(s, d, m) => vec!["SMOVE".into(), k(s), k(d), m.to_string()],
            SetOp::Combine(op, keys) => {
                std::iter::once(algebra_name(*op).to_string()).chain(keys.iter().map(k)).collect()
            }
            SetOp::Store(op, dest, keys) => std::iter::once(format!("{}STORE", algebra_name(*op)))
                .chain(std::iter::once(k(dest)))
                .chain(keys.iter().map(k))
                .collect(),
            SetOp::Pop(key, count) => {
                let mut v = vec!["SPOP".into(), k(key)];
                v.extend(count.map(|c| c.to_string()));
                v
            }
            SetOp::RandMember(key, count) => {
                let mut v = vec!["SRANDMEMBER".into(), k(key)];
                v.extend(count.map(|c| c.to_string()));
                v
            }
        }
    }

    fn expect(&self, m: &mut Model) -> Reply {
        Ok(match self {
            SetOp::Add(k, ms) => sadd(m, *k, ms)?,
            SetOp::Rem(k, ms) => match m.write::<SetM>(*k, false)? {
                None => Out::Int(0),
                Some(s) => len(ms.iter().filter(|x| s.remove(**x)).count()),
            },
            SetOp::IsMember(k, x) => flag(m.read::<SetM>(*k)?.is_some_and(|s| s.contains(*x))),
            SetOp::Card(k) => len(m.read::<SetM>(*k)?.map_or(0, |s| s.len())),
            SetOp::Move(src, dst, x) => {
                let Some(source) = m.read::<SetM>(*src)? else { return Ok(Out::Int(0)) };
                let present = source.contains(*x);
                m.read::<SetM>(*dst)?;
                if src == dst || !present {
                    return Ok(flag(present));
                }
                m.write::<SetM>(*src, false)?.expect("checked").remove(*x);
                m.write::<SetM>(*dst, true)?.expect("created").insert(x.to_string());
                Out::Int(1)
            }
            SetOp::Combine(op, keys) => Out::Set(combine(m, *op, keys)?.iter().map(|x| bulk(x)).collect()),
            SetOp::Store(op, dest, keys) => {
                let result = combine(m, *op, keys)?;
                let n = result.len();
                m.keys[*dest] = (n > 0).then_some(MVal::Set(result));
                len(n)
            }
            SetOp::Pop(..) | SetOp::RandMember(..) => unreachable!("checked by `check`"),
        })
    }

    fn check(&self, m: &mut Model, got: Out) -> Result<(), TestCaseError> {
        let cmd = self.argv().join(" ");
        let (k, random) = match self {
            SetOp::Combine(..) => return exact(self, m, sorted_set(got)),
            SetOp::Pop(k, _) | SetOp::RandMember(k, _) => (*k, self),
            _ => return exact(self, m, got),
        };
        let s = match m.read::<SetM>(k) {
            Err(fault) => {
                prop_assert_eq!(norm(got), norm(Out::Err(fault)), "{}", cmd);
                return Ok(());
            }
            Ok(None) => {
                let want = match random {
                    SetOp::Pop(_, None) | SetOp::RandMember(_, None) => Out::Nil,
                    SetOp::Pop(_, Some(_)) => Out::Set(vec![]),
                    _ => Out::Array(vec![]),
                };
                prop_assert_eq!(got, want, "{}", cmd);
                return Ok(());
            }
            Ok(Some(s)) => s.clone(),
        };
        match random {
            SetOp::Pop(_, None) => {
                let x = text(&got);
                prop_assert!(s.contains(&x), "{}: {:?}", cmd, got);
                m.write::<SetM>(k, false)?.expect("present").remove(&x);
            }
            SetOp::Pop(_, Some(n)) => {
                let Out::Set(items) = got else { return Err(TestCaseError::fail(format!("{cmd}: {got:?}"))) };
                let popped: Vec<String> = items.iter().map(text).collect();
                check_picks(&popped, s.len(), *n as i64, |x| s.contains(x))?;
                let set = m.write::<SetM>(k, false)?.expect("present");
                for x in &popped {
                    set.remove(x);
                }
            }
            SetOp::RandMember(_, None) => prop_assert!(s.contains(&text(&got)), "{}: {:?}", cmd, got),
            SetOp::RandMember(_, Some(c)) => {
                let Out::Array(items) = got else { return Err(TestCaseError::fail(format!("{cmd}: {got:?}"))) };
                check_picks(&items.iter().map(text).collect::<Vec<_>>(), s.len(), *c, |x| s.contains(x))?;
            }
            _ => unreachable!(),
        }
        Ok(())
    }
}

// ---- sorted sets ------------------------------------------------------------

/// An end of a score range; `excl` is the `(` prefix.
#[derive(Debug, Clone, Copy)]
struct Edge {
    score: f64,
    excl: bool,
}

impl Edge {
    fn arg(self) -> String {
        format!("{}{}", if self.excl { "(" } else { "" }, score_arg(self.score))
    }
}

fn score_arg(s: f64) -> String {
    match s {
        f64::INFINITY => "+inf".into(),
        f64::NEG_INFINITY => "-inf".into(),
        s => format!("{s}"),
    }
}

fn in_range(s: f64, min: Edge, max: Edge) -> bool {
    let above = if min.excl { s > min.score } else { s >= min.score };
    let below = if max.excl { s < max.score } else { s <= max.score };
    above && below
}

#[derive(Debug, Clone, Copy, Default)]
struct ZFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
    ch: bool,
    incr: bool,
}

#[derive(Debug, Clone)]
enum ZBy {
    Rank(i64, i64),
    /// min, max (given to REV as max min).
    Score(Edge, Edge),
}

#[derive(Debug, Clone)]
struct ZRange {
    by: ZBy,
    rev: bool,
    limit: Option<(i64, i64)>,
    with_scores: bool,
}

#[derive(Debug, Clone, Copy)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

#[derive(Debug, Clone)]
enum ZOp {
    Add(usize, ZFlags, Vec<(f64, &'static str)>),
    IncrBy(usize, f64, &'static str),
    Rem(usize, Vec<&'static str>),
    Score(usize, &'static str),
    /// ZRANK (ZREVRANK with `rev`), [WITHSCORE].
    Rank(usize, &'static str, bool, bool),
    Card(usize),
    Range(usize, ZRange),
    Count(usize, Edge, Edge),
    /// ZPOPMIN (ZPOPMAX with `max`).
    Pop(usize, bool, Option<u64>),
    RemRangeByRank(usize, i64, i64),
    RemRangeByScore(usize, Edge, Edge),
    /// ZUNIONSTORE (ZINTERSTORE with `inter`) dest keys, weights (the
    /// first `keys.len()` used), AGGREGATE.
    Store(bool, usize, Vec<usize>, Option<Vec<f64>>, Option<Aggregate>),
    /// A plain set, which ZUNIONSTORE/ZINTERSTORE read as all scores 1.
    SAdd(usize, Vec<&'static str>),
    /// ZRANDMEMBER key [count [WITHSCORES]].
    RandMember(usize, Option<(i64, bool)>),
}

/// Small integers and halves: every sum and product here is exact.
fn score() -> impl Strategy<Value = f64> {
    (-4i32..=5).prop_map(|n| f64::from(n) / 2.0)
}

fn edge() -> impl Strategy<Value = Edge> {
    prop_oneof![
        8 => (score(), any::<bool>()).prop_map(|(score, excl)| Edge { score, excl }),
        1 => (select(vec![f64::INFINITY, f64::NEG_INFINITY]), any::<bool>()).prop_map(|(score, excl)| Edge { score, excl }),
    ]
}

fn zflags() -> impl Strategy<Value = ZFlags> {
    let f = || prop::bool::weighted(0.15);
    (f(), f(), f(), f(), prop::bool::weighted(0.3), f()).prop_map(|(nx, xx, gt, lt, ch, incr)| ZFlags {
        nx,
        xx,
        gt,
        lt,
        ch,
        incr,
    })
}

fn zrange() -> impl Strategy<Value = ZRange> {
    let by = prop_oneof![
        (-5i64..6, -5i64..6).prop_map(|(a, b)| ZBy::Rank(a, b)),
        (edge(), edge()).prop_map(|(a, b)| ZBy::Score(a, b)),
    ];
    (by, any::<bool>(), option::weighted(0.4, (-1i64..4, -2i64..4)), any::<bool>(), prop::bool::weighted(0.1)).prop_map(
        |(by, rev, limit, with_scores, bad_limit)| {
            // LIMIT with ranks is an error; now and then only.
            let limit = if matches!(by, ZBy::Rank(..)) && !bad_limit { None } else { limit };
            ZRange { by, rev, limit, with_scores }
        },
    )
}

fn zset_op() -> impl Strategy<Value = ZOp> {
    let weights = option::of(vec(select(vec![1.0, 2.0, -1.0, 0.5, 0.0]), 3));
    let aggregate = option::of(select(vec![Aggregate::Sum, Aggregate::Min, Aggregate::Max]));
    prop_oneof![
        12 => (key(), zflags(), vec((score(), member()), 1..4)).prop_map(|(k, f, p)| ZOp::Add(k, f, p)),
        2 => (key(), score(), member()).prop_map(|(k, s, m)| ZOp::IncrBy(k, s, m)),
        2 => (key(), vec(member(), 1..3)).prop_map(|(k, m)| ZOp::Rem(k, m)),
        1 => (key(), member()).prop_map(|(k, m)| ZOp::Score(k, m)),
        2 => (key(), member(), any::<bool>(), prop::bool::weighted(0.3)).prop_map(|(k, m, r, w)| ZOp::Rank(k, m, r, w)),
        1 => key().prop_map(ZOp::Card),
        5 => (key(), zrange()).prop_map(|(k, r)| ZOp::Range(k, r)),
        2 => (key(), edge(), edge()).prop_map(|(k, a, b)| ZOp::Count(k, a, b)),
        2 => (key(), any::<bool>(), option::of(0u64..4)).prop_map(|(k, m, c)| ZOp::Pop(k, m, c)),
        1 => (key(), -5i64..6, -5i64..6).prop_map(|(k, a, b)| ZOp::RemRangeByRank(k, a, b)),
        1 => (key(), edge(), edge()).prop_map(|(k, a, b)| ZOp::RemRangeByScore(k, a, b)),
        3 => (any::<bool>(), key(), vec(key(), 1..4), weights, aggregate)
            .prop_map(|(i, d, ks, w, a)| ZOp::Store(i, d, ks, w, a)),
        1 => (key(), vec(member(), 1..3)).prop_map(|(k, m)| ZOp::SAdd(k, m)),
        2 => (key(), option::of((-5i64..6, any::<bool>()))).prop_map(|(k, c)| ZOp::RandMember(k, c)),
    ]
}

/// ZADD (and ZINCRBY, as ZADD INCR) on the model, Redis's checks in
/// Redis's order.
fn zadd(m: &mut Model, k: usize, f: ZFlags, pairs: &[(f64, &str)]) -> Reply {
    if f.nx && f.xx {
        return Err(other("ERR XX and NX options at the same time are not compatible"));
    }
    if (f.gt || f.lt) && f.nx || (f.gt && f.lt) {
        return Err(other("ERR GT, LT, and/or NX options at the same time are not compatible"));
    }
    if f.incr && pairs.len() > 1 {
        return Err(other("ERR INCR option supports a single increment-element pair"));
    }
    let nothing = if f.incr { Out::Nil } else { Out::Int(0) };
    let Some(z) = m.write::<ZSet>(k, !f.xx)? else { return Ok(nothing) };
    let (mut added, mut updated, mut last) = (0, 0, None);
    for &(score, member) in pairs {
        match z.get(member).copied() {
            None if f.xx => {}
            None => {
                z.insert(member.to_string(), score);
                added += 1;
                last = Some(score);
            }
            Some(_) if f.nx => {}
            Some(current) => {
                let next = if f.incr { current + score } else { score };
                if (f.gt && next <= current) || (f.lt && next >= current) {
                    continue;
                }
                if next != current {
                    z.insert(member.to_string(), next);
                    updated += 1;
                }
                last = Some(next);
            }
        }
    }
    Ok(match (f.incr, last) {
        (true, Some(s)) => Out::Double(s),
        (true, None) => Out::Nil,
        (false, _) => len(if f.ch { added + updated } else { added }),
    })
}

/// ZRANGE's selection on the model, in the query's direction.
fn zselect(z: &ZSet, r: &ZRange) -> Vec<(String, f64)> {
    let mut items = ordered(z);
    if r.rev {
        items.reverse();
    }
    match r.by {
        ZBy::Rank(a, b) => rank_range(a, b, items.len()).map_or_else(Vec::new, |(s, e)| items[s..=e].to_vec()),
        ZBy::Score(min, max) => {
            let inside = items.into_iter().filter(|(_, s)| in_range(*s, min, max));
            match r.limit {
                Some((offset, _)) if offset < 0 => vec![],
                Some((offset, count)) => {
                    let count = if count < 0 { usize::MAX } else { count as usize };
                    inside.skip(offset as usize).take(count).collect()
                }
                None => inside.collect(),
            }
        }
    }
}

/// A source of ZUNIONSTORE/ZINTERSTORE: a sorted set, a set (scores 1),
/// missing (`None`), anything else WRONGTYPE.
fn zsource(m: &Model, k: usize) -> Result<Option<ZSet>, Fault> {
    match &m.keys[k] {
        None => Ok(None),
        Some(MVal::ZSet(z)) => Ok(Some(z.clone())),
        Some(MVal::Set(s)) => Ok(Some(s.iter().map(|x| (x.clone(), 1.0)).collect())),
        Some(_) => Err(Fault::WrongType),
    }
}

fn zstore(m: &mut Model, inter: bool, dest: usize, keys: &[usize], weights: &[f64], agg: Aggregate) -> Reply {
    let sources = keys.iter().map(|&k| zsource(m, k)).collect::<Result<Vec<_>, _>>()?;
    let fold = |total: f64, value: f64| match agg {
        Aggregate::Sum => total + value,
        Aggregate::Min => total.min(value),
        Aggregate::Max => total.max(value),
    };
    let mut result = ZSet::new();
    if inter {
        if sources.iter().all(Option::is_some) {
            let sources: Vec<&ZSet> = sources.iter().flatten().collect();
            for member in sources[0].keys() {
                if sources.iter().all(|s| s.contains_key(member)) {
                    let mut scores = sources.iter().zip(weights).map(|(s, w)| s[member] * w);
                    let first = scores.next().expect("a source");
                    result.insert(member.clone(), scores.fold(first, fold));
                }
            }
        }
    } else {
        for (source, w) in sources.iter().zip(weights) {
            for (member, s) in source.iter().flatten() {
                let value = s * w;
                let total = result.get(member).map_or(value, |&t| fold(t, value));
                result.insert(member.clone(), total);
            }
        }
    }
    let n = result.len();
    m.keys[dest] = (n > 0).then_some(MVal::ZSet(result));
    Ok(len(n))
}

impl TypeOp for ZOp {
    fn argv(&self) -> Vec<String> {
        let k = |k: &usize| KEYS[*k].to_string();
        let mut v: Vec<String> = Vec::new();
        match self {
            ZOp::Add(key, f, pairs) => {
                v.extend(["ZADD".into(), k(key)]);
                for (on, name) in
                    [(f.nx, "NX"), (f.xx, "XX"), (f.gt, "GT"), (f.lt, "LT"), (f.ch, "CH"), (f.incr, "INCR")]
                {
                    if on {
                        v.push(name.into());
                    }
                }
                for (s, m) in pairs {
                    v.extend([score_arg(*s), m.to_string()]);
                }
            }
            ZOp::IncrBy(key, s, m) => v.extend(["ZINCRBY".into(), k(key), score_arg(*s), m.to_string()]),
            ZOp::Rem(key, ms) => {
                v.extend(["ZREM".into(), k(key)]);
                v.extend(ms.iter().map(|m| m.to_string()));
            }
            ZOp::Score(key, m) => v.extend(["ZSCORE".into(), k(key), m.to_string()]),
            ZOp::Rank(key, m, rev, with) => {
                v.extend([if *rev { "ZREVRANK" } else { "ZRANK" }.into(), k(key), m.to_string()]);
                if *with {
                    v.push("WITHSCORE".into());
                }
            }
            ZOp::Card(key) => v.extend(["ZCARD".into(), k(key)]),
            ZOp::Range(key, r) => {
                v.extend(["ZRANGE".into(), k(key)]);
                match r.by {
                    ZBy::Rank(a, b) => v.extend([a.to_string(), b.to_string()]),
                    ZBy::Score(min, max) if r.rev => v.extend([max.arg(), min.arg(), "BYSCORE".into()]),
                    ZBy::Score(min, max) => v.extend([min.arg(), max.arg(), "BYSCORE".into()]),
                }
                if r.rev {
                    v.push("REV".into());
                }
                if let Some((o, c)) = r.limit {
                    v.extend(["LIMIT".into(), o.to_string(), c.to_string()]);
                }
                if r.with_scores {
                    v.push("WITHSCORES".into());
                }
            }
            ZOp::Count(key, min, max) => v.extend(["ZCOUNT".into(), k(key), min.arg(), max.arg()]),
            ZOp::Pop(key, max, count) => {
                v.extend([if *max { "ZPOPMAX" } else { "ZPOPMIN" }.into(), k(key)]);
                v.extend(count.map(|c| c.to_string()));
            }
            ZOp::RemRangeByRank(key, a, b) => {
                v.extend(["ZREMRANGEBYRANK".into(), k(key), a.to_string(), b.to_string()])
            }
            ZOp::RemRangeByScore(key, min, max) => v.extend(["ZREMRANGEBYSCORE".into(), k(key), min.arg(), max.arg()]),
            ZOp::Store(inter, dest, keys, weights, agg) => {
                v.extend([if *inter { "ZINTERSTORE" } else { "ZUNIONSTORE" }.into(), k(dest), keys.len().to_string()]);
                v.extend(keys.iter().map(k));
                if let Some(w) = weights {
                    v.push("WEIGHTS".into());
                    v.extend(w[..keys.len()].iter().map(|w| score_arg(*w)));
                }
                if let Some(a) = agg {
                    v.extend(["AGGREGATE".into(), format!("{a:?}").to_uppercase()]);
                }
            }
            ZOp::SAdd(key, ms) => {
                v.extend(["SADD".into(), k(key)]);
                v.extend(ms.iter().map(|m| m.to_string()));
            }
            ZOp::RandMember(key, count) => {
                v.extend(["ZRANDMEMBER".into(), k(key)]);
                if let Some((c, with)) = count {
                    v.push(c.to_string());
                    if *with {
                        v.push("WITHSCORES".into());
                    }
                }
            }
        }
        v
    }

    fn expect(&self, m: &mut Model) -> Reply {
        Ok(match self {
            ZOp::Add(k, f, pairs) => zadd(m, *k, *f, pairs)?,
            ZOp::IncrBy(k, s, x) => zadd(m, *k, ZFlags { incr: true, ..ZFlags::default() }, &[(*s, *x)])?,
            ZOp::Rem(k, ms) => match m.write::<ZSet>(*k, false)? {
                None => Out::Int(0),
                Some(z) => len(ms.iter().filter(|x| z.remove(**x).is_some()).count()),
            },
            ZOp::Score(k, x) => m.read::<ZSet>(*k)?.and_then(|z| z.get(*x)).map_or(Out::Nil, |s| Out::Double(*s)),
            ZOp::Rank(k, x, rev, with) => {
                let missing = if *with { Out::NilArray } else { Out::Nil };
                let Some(z) = m.read::<ZSet>(*k)? else { return Ok(missing) };
                let mut items = ordered(z);
                if *rev {
                    items.reverse();
                }
                match items.iter().position(|(member, _)| member == x) {
                    None => missing,
                    Some(rank) if *with => Out::Array(vec![len(rank), Out::Double(items[rank].1)]),
                    Some(rank) => len(rank),
                }
            }
            ZOp::Card(k) => len(m.read::<ZSet>(*k)?.map_or(0, |z| z.len())),
            ZOp::Range(k, r) => {
                // Redis refuses a LIMIT with ranks only when its count is
                // not -1 (the default); the offset is then ignored.
                if r.limit.is_some_and(|(_, count)| count != -1) && matches!(r.by, ZBy::Rank(..)) {
                    return Err(other(
                        "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
                    ));
                }
                let Some(z) = m.read::<ZSet>(*k)? else { return Ok(Out::Array(vec![])) };
                let items = zselect(z, r);
                if r.with_scores {
                    pairs_out(&items)
                } else {
                    bulks(items.iter().map(|(x, _)| x))
                }
            }
            ZOp::Count(k, min, max) => {
                len(m.read::<ZSet>(*k)?.map_or(0, |z| z.values().filter(|s| in_range(**s, *min, *max)).count()))
            }
            ZOp::Pop(k, max, count) => {
                let Some(z) = m.write::<ZSet>(*k, false)? else { return Ok(Out::Array(vec![])) };
                let mut items = ordered(z);
                if *max {
                    items.reverse();
                }
                items.truncate(count.unwrap_or(1) as usize);
                for (x, _) in &items {
                    z.remove(x);
                }
                match count {
                    None => Out::Array(vec![bulk(&items[0].0), Out::Double(items[0].1)]),
                    Some(_) => pairs_out(&items),
                }
            }
            ZOp::RemRangeByRank(k, a, b) => {
                let Some(z) = m.write::<ZSet>(*k, false)? else { return Ok(Out::Int(0)) };
                let items = ordered(z);
                let Some((s, e)) = rank_range(*a, *b, items.len()) else { return Ok(Out::Int(0)) };
                for (x, _) in &items[s..=e] {
                    z.remove(x);
                }
                len(e - s + 1)
            }
            ZOp::RemRangeByScore(k, min, max) => {
                let Some(z) = m.write::<ZSet>(*k, false)? else { return Ok(Out::Int(0)) };
                let before = z.len();
                z.retain(|_, s| !in_range(*s, *min, *max));
                len(before - z.len())
            }
            ZOp::Store(inter, dest, keys, weights, agg) => {
                let weights = weights.clone().unwrap_or_else(|| vec![1.0; 3]);
                zstore(m, *inter, *dest, keys, &weights, agg.unwrap_or(Aggregate::Sum))?
            }
            ZOp::SAdd(k, ms) => sadd(m, *k, ms)?,
            ZOp::RandMember(..) => unreachable!("checked by `check`"),
        })
    }

    fn check(&self, m: &mut Model, got: Out) -> Result<(), TestCaseError> {
        let ZOp::RandMember(k, count) = self else { return exact(self, m, got) };
        let cmd = self.argv().join(" ");
        let z = match m.read::<ZSet>(*k) {
            Err(fault) => {
                prop_assert_eq!(norm(got), norm(Out::Err(fault)), "{}", cmd);
                return Ok(());
            }
            Ok(z) => z,
        };
        match (z, count) {
            (None, None) => prop_assert_eq!(got, Out::Nil, "{}", cmd),
            (None, Some(_)) => prop_assert_eq!(norm(got), Out::Array(vec![]), "{}", cmd),
            (Some(z), None) => prop_assert!(z.contains_key(&text(&got)), "{}: {:?}", cmd, got),
            (Some(z), Some((c, false))) => {
                let Out::Array(items) = got else { return Err(TestCaseError::fail(format!("{cmd}: {got:?}"))) };
                check_picks(&items.iter().map(text).collect::<Vec<_>>(), z.len(), *c, |x| z.contains_key(x))?;
            }
            (Some(z), Some((c, true))) => {
                let items = match norm(got) {
                    Out::Pairs(p) => p,
                    Out::Array(a) if a.is_empty() => vec![],
                    other => return Err(TestCaseError::fail(format!("{cmd}: {other:?}"))),
                };
                for (x, s) in &items {
                    prop_assert_eq!(z.get(&text(x)).map(|s| Out::Double(*s)), Some(s.clone()), "{}", cmd);
                }
                check_picks(&items.iter().map(|(x, _)| text(x)).collect::<Vec<_>>(), z.len(), *c, |x| {
                    z.contains_key(x)
                })?;
            }
        }
        Ok(())
    }
}

// ---- the tests --------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn hashes_match_model(steps in steps(hash_op(), 60)) {
        check_sequence(&steps)?;
    }

    #[test]
    fn lists_match_model(steps in steps(list_op(), 60)) {
        check_sequence(&steps)?;
    }

    #[test]
    fn sets_match_model(steps in steps(set_op(), 60)) {
        check_sequence(&steps)?;
    }

    #[test]
    fn sorted_sets_match_model(steps in steps(zset_op(), 60)) {
        check_sequence(&steps)?;
    }

    /// Two `Db`s applying the same `WriteOp`s (each command with its own
    /// seed, the random ones included) answer alike and end alike; a third
    /// restored from a dump holds the same.
    #[test]
    fn replicas_converge(steps in vec(replicated_step(), 1..80)) {
        let leader = Db::new();
        let follower = Db::new();
        for step in &steps {
            let op = match step {
                Replicated::Exec(argv, seed) => WriteOp::Exec { argv: to_argv(argv), seed: *seed },
                Replicated::PutStr(k) => WriteOp::Set {
                    key: key_bytes(*k),
                    value: Bytes::from_static(b"str"),
                    options: SetOptions::default(),
                },
                Replicated::Del(k) => WriteOp::Delete { keys: vec![key_bytes(*k)] },
            };
            let a = leader.apply(op.clone(), NOW);
            let b = follower.apply(op, NOW);
            prop_assert_eq!(a, b, "{:?}", step);
        }
        prop_assert_eq!(leader.digest(NOW), follower.digest(NOW));
        let restored = Db::new();
        let stored = leader.len() as u64;
        prop_assert_eq!(restored.restore(&leader.dump(NOW), NOW), Ok(stored));
        prop_assert_eq!(restored.digest(NOW), leader.digest(NOW));
        // The copy goes on as the original does, random picks included.
        for (i, cmd) in [&["SPOP"][..], &["SRANDMEMBER", "-3"], &["HRANDFIELD", "-3"], &["ZRANDMEMBER", "-3"]].iter().enumerate() {
            for (k, key) in KEYS.iter().enumerate() {
                let mut argv = words(cmd);
                argv.insert(1, key.to_string());
                let op = WriteOp::Exec { argv: to_argv(&argv), seed: i as u64 * 7 + k as u64 };
                prop_assert_eq!(restored.apply(op.clone(), NOW), leader.apply(op, NOW));
            }
        }
        prop_assert_eq!(restored.digest(NOW), leader.digest(NOW));
    }
}

#[derive(Debug, Clone)]
enum Replicated {
    Exec(Vec<String>, u64),
    PutStr(usize),
    Del(usize),
}

/// The random commands beyond those of the type tests: SPOP and
/// SRANDMEMBER are in `set_op`, HRANDFIELD in `hash_op`, ZRANDMEMBER in
/// `zset_op`; these add the WITHVALUES/WITHSCORES and large counts.
fn random_command() -> impl Strategy<Value = Vec<String>> {
    let count = prop_oneof![-8i64..9, Just(100), Just(-100)];
    (select(vec!["SPOP", "SRANDMEMBER", "HRANDFIELD", "ZRANDMEMBER"]), key(), option::of(count), any::<bool>())
        .prop_map(|(name, k, count, with)| {
            let mut v = words(&[name, KEYS[k]]);
            if let Some(c) = count {
                let c = if name == "SPOP" { c.abs() } else { c };
                v.push(c.to_string());
                match name {
                    "HRANDFIELD" if with => v.push("WITHVALUES".into()),
                    "ZRANDMEMBER" if with => v.push("WITHSCORES".into()),
                    _ => {}
                }
            }
            v
        })
}

fn replicated_step() -> impl Strategy<Value = Replicated> {
    let argv = prop_oneof![
        3 => hash_op().prop_map(|o| o.argv()),
        3 => list_op().prop_map(|o| o.argv()),
        3 => set_op().prop_map(|o| o.argv()),
        3 => zset_op().prop_map(|o| o.argv()),
        3 => random_command(),
    ];
    prop_oneof![
        15 => (argv, any::<u64>()).prop_map(|(a, s)| Replicated::Exec(a, s)),
        1 => key().prop_map(Replicated::PutStr),
        1 => key().prop_map(Replicated::Del),
    ]
}
