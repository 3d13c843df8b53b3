//! SADD SREM SMEMBERS SISMEMBER SMISMEMBER SCARD SPOP SRANDMEMBER SMOVE
//! SINTER SINTERCARD SINTERSTORE SUNION SUNIONSTORE SDIFF SDIFFSTORE SSCAN.
//!
//! SPOP and SRANDMEMBER pick positions in the set's storage order with the
//! leader's seed, so every replica pops the same members. The algebra
//! commands look up every source before computing anything, as Redis 7
//! does: a key of another type is WRONGTYPE even after a missing key.

use bytes::Bytes;

use super::args::{int, Args};
use super::rng::Rng;
use super::{random_indices, scan_page, scan_reply, Run, ScanArgs};
use crate::reply::{Fault, Out};
use crate::txn::Txn;
use crate::value::{SetValue, Value};

/// The operation of SINTER, SUNION, SDIFF and their STORE forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algebra {
    Inter,
    Union,
    Diff,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SetCmd {
    Add {
        key: Bytes,
        members: Vec<Bytes>,
    },
    Rem {
        key: Bytes,
        members: Vec<Bytes>,
    },
    Members {
        key: Bytes,
    },
    IsMember {
        key: Bytes,
        member: Bytes,
    },
    MIsMember {
        key: Bytes,
        members: Vec<Bytes>,
    },
    Card {
        key: Bytes,
    },
    /// SPOP; with a count the reply is a set.
    Pop {
        key: Bytes,
        count: Option<u64>,
    },
    /// SRANDMEMBER; a negative count allows repeats.
    RandMember {
        key: Bytes,
        count: Option<i64>,
    },
    Move {
        from: Bytes,
        to: Bytes,
        member: Bytes,
    },
    /// SINTER, SUNION, SDIFF.
    Combine {
        op: Algebra,
        keys: Vec<Bytes>,
    },
    /// SINTERSTORE, SUNIONSTORE, SDIFFSTORE.
    Store {
        op: Algebra,
        dest: Bytes,
        keys: Vec<Bytes>,
    },
    /// SINTERCARD; a `limit` of 0 counts the whole intersection.
    InterCard {
        keys: Vec<Bytes>,
        limit: usize,
    },
    Scan {
        key: Bytes,
        scan: ScanArgs,
    },
}

impl SetCmd {
    pub(super) fn parse(name: &str, a: &mut Args) -> Option<Result<SetCmd, Fault>> {
        let parsed = match name {
            "sadd" => key_members(a, name).map(|(key, members)| SetCmd::Add { key, members }),
            "srem" => key_members(a, name).map(|(key, members)| SetCmd::Rem { key, members }),
            "smembers" => a.take().map(|key| SetCmd::Members { key }),
            "sismember" => (|| Ok(SetCmd::IsMember { key: a.take()?, member: a.take()? }))(),
            "smismember" => key_members(a, name).map(|(key, members)| SetCmd::MIsMember { key, members }),
            "scard" => a.take().map(|key| SetCmd::Card { key }),
            "spop" => parse_pop(a),
            "srandmember" => parse_rand_member(a),
            "smove" => (|| Ok(SetCmd::Move { from: a.take()?, to: a.take()?, member: a.take()? }))(),
            "sinter" => source_keys(a, name).map(|keys| SetCmd::Combine { op: Algebra::Inter, keys }),
            "sunion" => source_keys(a, name).map(|keys| SetCmd::Combine { op: Algebra::Union, keys }),
            "sdiff" => source_keys(a, name).map(|keys| SetCmd::Combine { op: Algebra::Diff, keys }),
            "sinterstore" => parse_store(a, name, Algebra::Inter),
            "sunionstore" => parse_store(a, name, Algebra::Union),
            "sdiffstore" => parse_store(a, name, Algebra::Diff),
            "sintercard" => parse_inter_card(a),
            "sscan" => (|| Ok(SetCmd::Scan { key: a.take()?, scan: ScanArgs::parse(a)? }))(),
            _ => return None,
        };
        Some(parsed.and_then(|c| a.done().map(|()| c)))
    }

    pub(super) fn keys(&self) -> Vec<&Bytes> {
        match self {
            SetCmd::Add { key, .. }
            | SetCmd::Rem { key, .. }
            | SetCmd::Members { key }
            | SetCmd::IsMember { key, .. }
            | SetCmd::MIsMember { key, .. }
            | SetCmd::Card { key }
            | SetCmd::Pop { key, .. }
            | SetCmd::RandMember { key, .. }
            | SetCmd::Scan { key, .. } => vec![key],
            SetCmd::Move { from, to, .. } => vec![from, to],
            SetCmd::Combine { keys, .. } | SetCmd::InterCard { keys, .. } => keys.iter().collect(),
            SetCmd::Store { dest, keys, .. } => std::iter::once(dest).chain(keys).collect(),
        }
    }

    pub(super) fn run(&self, tx: &mut Txn, rng: &mut Rng) -> Run {
        match self {
            SetCmd::Add { key, members } => {
                let set = adding(tx, key, members)?;
                Ok(Out::len(members.iter().filter(|m| set.insert((*m).clone())).count()))
            }
            SetCmd::Rem { key, members } => {
                let Some(set) = tx.write::<SetValue>(key, false)? else { return Ok(Out::Int(0)) };
                Ok(Out::len(members.iter().filter(|m| set.remove(m)).count()))
            }
            SetCmd::Members { key } => Ok(set_reply(tx.read::<SetValue>(key)?.into_iter().flat_map(SetValue::iter))),
            SetCmd::IsMember { key, member } => {
                Ok(Out::flag(tx.read::<SetValue>(key)?.is_some_and(|s| s.contains(member))))
            }
            SetCmd::MIsMember { key, members } => {
                let set = tx.read::<SetValue>(key)?;
                Ok(Out::Array(members.iter().map(|m| Out::flag(set.is_some_and(|s| s.contains(m)))).collect()))
            }
            SetCmd::Card { key } => Ok(Out::len(tx.read::<SetValue>(key)?.map_or(0, SetValue::len))),
            SetCmd::Pop { key, count: None } => pop_one(tx, key, rng),
            SetCmd::Pop { key, count: Some(count) } => pop_many(tx, key, *count, rng),
            SetCmd::RandMember { key, count } => rand_member(tx, key, *count, rng),
            SetCmd::Move { from, to, member } => smove(tx, from, to, member),
            SetCmd::Combine { op, keys } => Ok(set_reply(combine(tx, *op, keys)?.iter())),
            SetCmd::Store { op, dest, keys } => store(tx, *op, dest, keys),
            SetCmd::InterCard { keys, limit } => {
                let sets = smallest_first(sources(tx, keys)?);
                let common = sets.as_deref().map(common).into_iter().flatten();
                Ok(Out::len(common.take(if *limit == 0 { usize::MAX } else { *limit }).count()))
            }
            SetCmd::Scan { key, scan } => {
                let Some(set) = tx.read::<SetValue>(key)? else { return Ok(scan_reply(0, vec![])) };
                // Redis returns intsets and listpacks whole, in one page.
                let (positions, next) = scan_page(set.len(), scan.cursor, scan.count, set.encoding() != "hashtable");
                let indexed = set.indexed();
                let items = positions.rev().filter_map(|i| indexed.get(i)).filter(|m| scan.matches(m)).map(Out::bulk);
                Ok(scan_reply(next, items.collect()))
            }
        }
    }
}

/// A RESP3 set (an array in RESP2) of `members`.
fn set_reply<'a>(members: impl Iterator<Item = &'a [u8]>) -> Out {
    Out::Set(members.map(Out::bulk).collect())
}

/// The set at `key` that `members` are about to join. A missing one is
/// created with the encoding SADD picks from the first member and how
/// many there are; an existing one converts ahead when that many could
/// not fit its encoding.
fn adding<'t>(tx: &'t mut Txn, key: &Bytes, members: &[Bytes]) -> Result<&'t mut SetValue, Fault> {
    if tx.read::<SetValue>(key)?.is_none() {
        let first = members.first().map_or(&[][..], |m| &m[..]);
        tx.put(key, Value::Set(Box::new(SetValue::for_first(first, members.len()))), None);
    }
    let set = tx.write::<SetValue>(key, false)?.expect("the set exists or was just stored");
    set.reserve(members.len());
    Ok(set)
}

fn pop_one(tx: &mut Txn, key: &Bytes, rng: &mut Rng) -> Run {
    let Some(set) = tx.write::<SetValue>(key, false)? else { return Ok(Out::Nil) };
    Ok(set.take(rng.below(set.len())).map_or(Out::Nil, Out::Bulk))
}

/// How many times the members popped must outnumber those left for Redis
/// to copy the ones left into a new set (SPOP_MOVE_STRATEGY_MUL), which
/// can report a smaller encoding.
const SPOP_REBUILD: usize = 5;

fn pop_many(tx: &mut Txn, key: &Bytes, count: u64, rng: &mut Rng) -> Run {
    let Some(set) = tx.write::<SetValue>(key, false)? else { return Ok(Out::Set(vec![])) };
    let len = set.len();
    let count = usize::try_from(count).unwrap_or(usize::MAX).min(len);
    // count <= len, so the set is never empty when a position is drawn.
    let popped: Vec<Out> = (0..count).filter_map(|_| set.take(rng.below(set.len()))).map(Out::Bulk).collect();
    if !set.is_empty() && set.len() * SPOP_REBUILD <= count {
        set.rebuild();
    }
    // A set emptied here is deleted by `Cmd::run`.
    Ok(Out::Set(popped))
}

fn rand_member(tx: &Txn, key: &Bytes, count: Option<i64>, rng: &mut Rng) -> Run {
    let set = tx.read::<SetValue>(key)?;
    let Some(count) = count else {
        return Ok(set.map_or(Out::Nil, |s| Out::optional(s.at(rng.below(s.len())))));
    };
    let Some(set) = set else { return Ok(Out::Array(vec![])) };
    super::check_repeats(count)?;
    let indexed = set.indexed();
    Ok(Out::bulks(random_indices(set.len(), count, rng).into_iter().filter_map(|i| indexed.get(i))))
}

fn smove(tx: &mut Txn, from: &Bytes, to: &Bytes, member: &Bytes) -> Run {
    // A missing source moves nothing, whatever the destination holds.
    let Some(source) = tx.read::<SetValue>(from)? else { return Ok(Out::Int(0)) };
    let present = source.contains(member);
    tx.read::<SetValue>(to)?;
    if from == to || !present {
        return Ok(Out::flag(present));
    }
    if let Some(source) = tx.write::<SetValue>(from, false)? {
        source.remove(member);
    }
    // Already in the destination still counts as moved, as in Redis; the
    // destination is then left untouched (a WATCH on it holds).
    if !tx.read::<SetValue>(to)?.is_some_and(|s| s.contains(member)) {
        adding(tx, to, std::slice::from_ref(member))?.insert(member.clone());
    }
    Ok(Out::Int(1))
}

/// SINTERSTORE, SUNIONSTORE, SDIFFSTORE: the result replaces `dest` (its
/// TTL too) only after it is computed, as `dest` may be a source; an
/// empty result deletes `dest`.
fn store(tx: &mut Txn, op: Algebra, dest: &Bytes, keys: &[Bytes]) -> Run {
    let result = combine(tx, op, keys)?;
    if result.is_empty() {
        tx.delete(dest);
        return Ok(Out::Int(0));
    }
    let len = result.len();
    tx.put(dest, Value::Set(Box::new(result)), None);
    Ok(Out::len(len))
}

/// The result of `op` over the sets at `keys`, built the way Redis builds
/// it, so that a stored result reports Redis's encoding.
fn combine(tx: &Txn, op: Algebra, keys: &[Bytes]) -> Result<SetValue, Fault> {
    let sets = sources(tx, keys)?;
    Ok(match op {
        Algebra::Inter => smallest_first(sets).map_or_else(SetValue::new, |sets| inter(&sets)),
        Algebra::Union => union(&sets),
        Algebra::Diff => diff(keys, &sets),
    })
}

/// The set at each key (`None` for a missing one), or WRONGTYPE if any
/// key holds another type.
fn sources<'t>(tx: &'t Txn, keys: &[Bytes]) -> Result<Vec<Option<&'t SetValue>>, Fault> {
    keys.iter().map(|k| tx.read::<SetValue>(k)).collect()
}

/// An intersection's sources, smallest first (Redis walks the smallest
/// and probes the others); `None` when one is missing, as the
/// intersection is then empty.
fn smallest_first(sets: Vec<Option<&SetValue>>) -> Option<Vec<&SetValue>> {
    let mut sets: Vec<&SetValue> = sets.into_iter().collect::<Option<_>>()?;
    sets.sort_by_key(|s| s.len());
    Some(sets)
}

/// The members of the first set that are in all the others.
fn common<'a, 't: 'a>(sets: &'a [&'t SetValue]) -> impl Iterator<Item = &'t [u8]> + 'a {
    let (first, rest) = sets.split_first().map_or((None, &[][..]), |(f, r)| (Some(*f), r));
    first.into_iter().flat_map(SetValue::iter).filter(move |m| rest.iter().all(|s| s.contains(m)))
}

/// Redis builds an intersection into an intset when the smallest source is
/// one, else into a listpack, and stores an all-integer result as an
/// intset when it fits one.
fn inter(sets: &[&SetValue]) -> SetValue {
    let mut result = match sets.first() {
        Some(s) if s.encoding() == "intset" => SetValue::new(),
        _ => SetValue::listpack(),
    };
    for member in common(sets) {
        result.insert_shared(member);
    }
    result.compact_ints();
    result
}

fn union(sets: &[Option<&SetValue>]) -> SetValue {
    let mut result = SetValue::new();
    for member in sets.iter().flatten().flat_map(|s| s.iter()) {
        result.insert_shared(member);
    }
    result
}

/// The first set less the others, by whichever of its two algorithms Redis
/// 7.2 would pick: the members are the same, but the second adds the whole
/// first set before removing, which can leave a stored result in a larger
/// encoding.
fn diff(keys: &[Bytes], sets: &[Option<&SetValue>]) -> SetValue {
    let mut result = SetValue::new();
    let (Some((first_key, other_keys)), Some((Some(first), rest))) = (keys.split_first(), sets.split_first()) else {
        return result;
    };
    // The first key named again leaves nothing.
    if other_keys.contains(first_key) {
        return result;
    }
    let others: Vec<&SetValue> = rest.iter().flatten().copied().collect();
    let walk_first = first.len().saturating_mul(others.len() + 1) / 2;
    let walk_all = first.len() + others.iter().map(|s| s.len()).sum::<usize>();
    if walk_first <= walk_all {
        for member in first.iter().filter(|m| !others.iter().any(|s| s.contains(m))) {
            result.insert_shared(member);
        }
    } else {
        for member in first.iter() {
            result.insert_shared(member);
        }
        for set in &others {
            if result.is_empty() {
                break;
            }
            for member in set.iter() {
                result.remove(member);
            }
        }
    }
    result
}

/// `key member [member …]`, with Redis's arity error when no member follows.
fn key_members(a: &mut Args, name: &str) -> Result<(Bytes, Vec<Bytes>), Fault> {
    let key = a.take()?;
    let members = a.rest();
    if members.is_empty() {
        return Err(Fault::Arity(name.to_string()));
    }
    Ok((key, members))
}

/// `key [key …]`, at least one.
fn source_keys(a: &mut Args, name: &str) -> Result<Vec<Bytes>, Fault> {
    let keys = a.rest();
    if keys.is_empty() {
        return Err(Fault::Arity(name.to_string()));
    }
    Ok(keys)
}

fn parse_store(a: &mut Args, name: &str, op: Algebra) -> Result<SetCmd, Fault> {
    let dest = a.take()?;
    Ok(SetCmd::Store { op, dest, keys: source_keys(a, name)? })
}

/// `key [count]`; Redis rejects anything after the count before reading it.
fn key_count(a: &mut Args) -> Result<(Bytes, Option<Bytes>), Fault> {
    let key = a.take()?;
    if a.remaining() > 1 {
        return Err(Fault::Syntax);
    }
    let count = if a.is_empty() { None } else { Some(a.take()?) };
    Ok((key, count))
}

/// SPOP's count: one error for a negative count and for one that is not a number.
fn parse_pop(a: &mut Args) -> Result<SetCmd, Fault> {
    let (key, count) = key_count(a)?;
    let count =
        count.map(|c| int(&c).ok().and_then(|n| u64::try_from(n).ok()).ok_or(Fault::NotPositive)).transpose()?;
    Ok(SetCmd::Pop { key, count })
}

/// SRANDMEMBER's count: any integer whose negation is one too.
fn parse_rand_member(a: &mut Args) -> Result<SetCmd, Fault> {
    let (key, count) = key_count(a)?;
    let count = count.map(|c| int(&c)).transpose()?;
    if count == Some(i64::MIN) {
        return Err(Fault::other(
            "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
        ));
    }
    Ok(SetCmd::RandMember { key, count })
}

/// `numkeys key [key …] [LIMIT limit]`; the last LIMIT counts.
fn parse_inter_card(a: &mut Args) -> Result<SetCmd, Fault> {
    // Redis answers a numkeys that is not a number as one below 1.
    let keys = a.numkeys().map_err(|e| if e == Fault::NotInteger { Fault::NumKeysZero } else { e })?;
    let mut limit = 0;
    while !a.is_empty() {
        // LIMIT needs a value after it; anything else is a syntax error.
        if a.remaining() < 2 || !a.eat("limit") {
            return Err(Fault::Syntax);
        }
        limit = a
            .i64()
            .ok()
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| Fault::other("ERR LIMIT can't be negative"))?;
    }
    Ok(SetCmd::InterCard { keys, limit })
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use crate::cmd::Cmd;
    use crate::reply::{Fault, Out};
    use crate::Db;

    fn run_seeded(db: &Db, line: &str, seed: u64) -> Out {
        let argv: Vec<Bytes> = line.split_whitespace().map(|w| Bytes::copy_from_slice(w.as_bytes())).collect();
        Cmd::parse(&argv).map_or_else(Out::Err, |cmd| db.run(&cmd, 0, seed))
    }

    fn run(db: &Db, line: &str) -> Out {
        run_seeded(db, line, 7)
    }

    /// The bulks of a reply, sorted and joined by spaces.
    fn sorted(items: Vec<Out>) -> String {
        let mut members: Vec<String> = items
            .into_iter()
            .map(|i| match i {
                Out::Bulk(b) => String::from_utf8(b.to_vec()).expect("utf-8"),
                other => panic!("not a bulk: {other:?}"),
            })
            .collect();
        members.sort();
        members.join(" ")
    }

    /// The members of a set reply (RESP3 set), sorted.
    fn set(out: Out) -> String {
        let Out::Set(items) = out else { panic!("not a set: {out:?}") };
        sorted(items)
    }

    /// The members of an array reply, sorted.
    fn array(out: Out) -> String {
        let Out::Array(items) = out else { panic!("not an array: {out:?}") };
        sorted(items)
    }

    fn encoding(db: &Db, key: &str) -> &'static str {
        db.txn(&[key.as_bytes()], 0).get(key.as_bytes()).map_or("none", crate::Value::encoding)
    }

    fn error(text: &str) -> Out {
        Out::Err(Fault::other(text))
    }

    /// One argument per number in `range`, named by `f`.
    fn many(range: std::ops::Range<usize>, f: impl Fn(usize) -> String) -> String {
        range.map(f).collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn add_remove_and_membership() {
        let db = Db::new();
        assert_eq!(run(&db, "SADD s a b c a"), Out::Int(3));
        assert_eq!(run(&db, "SADD s A a"), Out::Int(1));
        assert_eq!(run(&db, "SCARD s"), Out::Int(4));
        assert_eq!(run(&db, "SISMEMBER s A"), Out::Int(1));
        assert_eq!(run(&db, "SMISMEMBER s a x"), Out::Array(vec![Out::Int(1), Out::Int(0)]));
        assert_eq!(run(&db, "SMISMEMBER nokey a"), Out::Array(vec![Out::Int(0)]));
        assert_eq!(run(&db, "SREM s x y"), Out::Int(0));
        assert_eq!(run(&db, "SREM s A b x"), Out::Int(2));
        assert_eq!(set(run(&db, "SMEMBERS s")), "a c");
        assert_eq!(set(run(&db, "SMEMBERS nokey")), "");
        assert_eq!(run(&db, "SREM s a c d"), Out::Int(2));
        assert!(!db.exists(b"s", 0), "an emptied set is deleted");
        assert_eq!(run(&db, "SCARD s"), Out::Int(0));
        assert_eq!(run(&db, "SADD s"), Out::Err(Fault::Arity("sadd".into())));
    }

    #[test]
    fn algebra_treats_missing_keys_as_empty() {
        let db = Db::new();
        run(&db, "SADD s1 a b c 1");
        run(&db, "SADD s2 b c d");
        assert_eq!(set(run(&db, "SINTER s1 s2")), "b c");
        assert_eq!(set(run(&db, "SUNION s1 nokey s2")), "1 a b c d");
        assert_eq!(set(run(&db, "SDIFF s1 s2 nokey")), "1 a");
        assert_eq!(set(run(&db, "SINTER s1 s2 nokey")), "");
        assert_eq!(set(run(&db, "SDIFF nokey s1")), "");
        assert_eq!(set(run(&db, "SDIFF s1 s2 s1")), "");
        assert_eq!(set(run(&db, "SINTER s1 s1 s1")), "1 a b c");
        // Three sets, the others small: Redis's second SDIFF algorithm.
        run(&db, &format!("SADD big {}", many(0..20, |i| format!("m{i:02}"))));
        run(&db, "SADD few m01 m02");
        let expected = many(0..20, |i| format!("m{i:02}")).replace(" m01 m02", "");
        assert_eq!(set(run(&db, "SDIFF big few s2")), expected);
    }

    #[test]
    fn store_forms_compute_before_storing() {
        let db = Db::new();
        run(&db, "SADD s1 a b c");
        run(&db, "SADD s2 b c d");
        assert_eq!(run(&db, "SINTERSTORE s1 s1 s2"), Out::Int(2));
        assert_eq!(set(run(&db, "SMEMBERS s1")), "b c");
        assert_eq!(run(&db, "SUNIONSTORE s2 s1 s2 nokey"), Out::Int(3));
        assert_eq!(set(run(&db, "SMEMBERS s2")), "b c d");
        db.put(Bytes::from_static(b"str"), Bytes::from_static(b"x"), 0);
        assert_eq!(run(&db, "SDIFFSTORE str s2 s1"), Out::Int(1));
        assert_eq!(set(run(&db, "SMEMBERS str")), "d");
        // An empty result deletes the destination, whatever it held.
        assert_eq!(run(&db, "SDIFFSTORE str s1 s2"), Out::Int(0));
        assert!(!db.exists(b"str", 0));
        assert_eq!(run(&db, "SINTERSTORE s2 s1 nokey"), Out::Int(0));
        assert!(!db.exists(b"s2", 0));
    }

    #[test]
    fn wrong_type_anywhere_among_the_inputs() {
        let db = Db::new();
        db.put(Bytes::from_static(b"str"), Bytes::from_static(b"x"), 0);
        run(&db, "SADD s a 1");
        let wrong = Out::Err(Fault::WrongType);
        for line in ["SADD str a", "SREM str a", "SMEMBERS str", "SCARD str", "SMISMEMBER str a", "SPOP str 0"] {
            assert_eq!(run(&db, line), wrong, "{line}");
        }
        for line in
            ["SINTER nokey str", "SINTER str nokey", "SUNION s str", "SDIFF nokey str", "SINTERCARD 2 nokey str"]
        {
            assert_eq!(run(&db, line), wrong, "{line}");
        }
        assert_eq!(run(&db, "SINTERSTORE s nokey str"), wrong);
        assert_eq!(set(run(&db, "SMEMBERS s")), "1 a", "a failed store leaves the destination");
        assert_eq!(run(&db, "SMOVE s str a"), wrong);
        assert_eq!(run(&db, "SMOVE str s a"), wrong);
        assert_eq!(run(&db, "SMOVE nokey str a"), Out::Int(0), "a missing source is checked first");
        assert_eq!(run(&db, "SSCAN str 0"), wrong);
    }

    #[test]
    fn spop_counts() {
        let db = Db::new();
        run(&db, "SADD s a b c d e f g h");
        let Out::Bulk(one) = run(&db, "SPOP s") else { panic!("SPOP without a count is a bulk") };
        assert_eq!(run(&db, &format!("SISMEMBER s {}", String::from_utf8_lossy(&one))), Out::Int(0));
        assert_eq!(set(run(&db, "SPOP s 0")), "");
        let some = set(run(&db, "SPOP s 4"));
        assert_eq!(run(&db, "SCARD s"), Out::Int(3));
        let rest = set(run(&db, "SPOP s 100"));
        let one = String::from_utf8_lossy(&one);
        let mut all: Vec<&str> = some.split(' ').chain(rest.split(' ')).chain([&*one]).collect();
        all.sort();
        assert_eq!(all.join(" "), "a b c d e f g h");
        assert!(!db.exists(b"s", 0));
        assert_eq!(run(&db, "SPOP s"), Out::Nil);
        assert_eq!(set(run(&db, "SPOP s 3")), "");
        assert_eq!(Fault::NotPositive.to_string(), "ERR value is out of range, must be positive");
        assert_eq!(run(&db, "SPOP s -1"), Out::Err(Fault::NotPositive));
        assert_eq!(run(&db, "SPOP s abc"), Out::Err(Fault::NotPositive));
        assert_eq!(run(&db, "SPOP s abc 1"), Out::Err(Fault::Syntax));
    }

    #[test]
    fn srandmember_counts() {
        let db = Db::new();
        run(&db, "SADD s a b c d e");
        let distinct = array(run(&db, "SRANDMEMBER s 3"));
        let mut picked: Vec<&str> = distinct.split(' ').collect();
        picked.dedup();
        assert_eq!(picked.len(), 3, "a positive count picks distinct members");
        assert_eq!(array(run(&db, "SRANDMEMBER s 10")), "a b c d e");
        assert_eq!(array(run(&db, "SRANDMEMBER s -20")).split(' ').count(), 20);
        assert_eq!(array(run(&db, "SRANDMEMBER s 0")), "");
        assert_eq!(run(&db, "SCARD s"), Out::Int(5));
        assert_eq!(array(run(&db, "SRANDMEMBER nokey 3")), "");
        assert_eq!(run(&db, "SRANDMEMBER nokey"), Out::Nil);
        assert_eq!(
            run(&db, "SRANDMEMBER s -9223372036854775808"),
            error("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807")
        );
        assert_eq!(run(&db, "SRANDMEMBER s x"), Out::Err(Fault::NotInteger));
    }

    #[test]
    fn random_picks_depend_only_on_the_seed() {
        let script = ["SPOP s", "SPOP s 3", "SRANDMEMBER s", "SRANDMEMBER s 4", "SRANDMEMBER s -6", "SPOP s 30"];
        let replay = |seed: u64| {
            let db = Db::new();
            run(&db, &format!("SADD s {}", many(0..50, |i| format!("m{i}"))));
            script.iter().enumerate().map(|(i, line)| run_seeded(&db, line, seed + i as u64)).collect::<Vec<_>>()
        };
        assert_eq!(replay(42), replay(42));
        assert!((0..5).any(|seed| replay(seed) != replay(42)), "the seed matters");
    }

    #[test]
    fn sintercard_limits_and_errors() {
        let db = Db::new();
        run(&db, "SADD s1 a b c d");
        run(&db, "SADD s2 b c d e");
        assert_eq!(run(&db, "SINTERCARD 2 s1 s2"), Out::Int(3));
        assert_eq!(run(&db, "SINTERCARD 2 s1 s2 LIMIT 0"), Out::Int(3));
        assert_eq!(run(&db, "SINTERCARD 2 s1 s2 limit 2"), Out::Int(2));
        assert_eq!(run(&db, "SINTERCARD 2 s1 s2 LIMIT 1 LIMIT 10"), Out::Int(3));
        assert_eq!(run(&db, "SINTERCARD 1 nokey LIMIT 10"), Out::Int(0));
        assert_eq!(run(&db, "SINTERCARD a s1"), Out::Err(Fault::NumKeysZero));
        assert_eq!(run(&db, "SINTERCARD 0 s1"), Out::Err(Fault::NumKeysZero));
        assert_eq!(run(&db, "SINTERCARD 3 s1 s2"), Out::Err(Fault::NumKeysTooMany));
        assert_eq!(run(&db, "SINTERCARD 1 s1 s2"), Out::Err(Fault::Syntax));
        assert_eq!(run(&db, "SINTERCARD 1 s1 LIMIT"), Out::Err(Fault::Syntax));
        let negative = error("ERR LIMIT can't be negative");
        assert_eq!(run(&db, "SINTERCARD 1 s1 LIMIT -1"), negative);
        assert_eq!(run(&db, "SINTERCARD 1 s1 LIMIT a"), negative);
    }

    #[test]
    fn smove_moves_one_member() {
        let db = Db::new();
        run(&db, "SADD from 1 a b");
        run(&db, "SADD to 2 3 4");
        assert_eq!(run(&db, "SMOVE from to 1"), Out::Int(1));
        assert_eq!(encoding(&db, "to"), "intset");
        assert_eq!(run(&db, "SMOVE from to a"), Out::Int(1));
        assert_eq!(encoding(&db, "to"), "listpack");
        assert_eq!(set(run(&db, "SMEMBERS to")), "1 2 3 4 a");
        assert_eq!(run(&db, "SMOVE from to x"), Out::Int(0));
        assert_eq!(run(&db, "SMOVE from from b"), Out::Int(1));
        assert_eq!(run(&db, "SMOVE from from x"), Out::Int(0));
        assert_eq!(run(&db, "SMOVE nokey to 2"), Out::Int(0));
        assert_eq!(run(&db, "SMOVE to new 2"), Out::Int(1));
        assert_eq!(encoding(&db, "new"), "intset");
        assert_eq!(run(&db, "SMOVE from to b"), Out::Int(1));
        assert!(!db.exists(b"from", 0), "an emptied source is deleted");
    }

    #[test]
    fn encodings_follow_redis_7_2() {
        let db = Db::new();
        let ints = |n| many(0..n, |i| i.to_string());
        run(&db, "SADD small 1 2 3");
        assert_eq!(encoding(&db, "small"), "intset");
        run(&db, "SADD small a");
        assert_eq!(encoding(&db, "small"), "listpack");
        run(&db, &format!("SADD large {}", ints(130)));
        run(&db, "SADD large a");
        assert_eq!(encoding(&db, "large"), "hashtable", "an intset past the listpack size");
        run(&db, "SADD huge 213244124402402314402033402");
        assert_eq!(encoding(&db, "huge"), "listpack");
        run(&db, "SADD one 1");
        run(&db, &format!("SADD one {}", ints(512)));
        assert_eq!(encoding(&db, "one"), "intset");
        run(&db, "SADD one 512");
        assert_eq!(encoding(&db, "one"), "hashtable");
        run(&db, &format!("SADD lp a {}", ints(127)));
        assert_eq!(encoding(&db, "lp"), "listpack");
        run(&db, "SADD lp b");
        assert_eq!(encoding(&db, "lp"), "hashtable");
        run(&db, &format!("SADD hinted a {}", many(0..129, |_| "a".to_string())));
        assert_eq!(encoding(&db, "hinted"), "hashtable", "SADD converts by its argument count");
        run(&db, &format!("SADD long {}", "x".repeat(65)));
        assert_eq!(encoding(&db, "long"), "hashtable");
    }

    #[test]
    fn stored_results_take_redis_encodings() {
        let db = Db::new();
        run(&db, "SADD l1 a b c 1 3 6");
        run(&db, "SADD l2 e f 1 2 3");
        run(&db, "SINTERSTORE res l1 l2");
        assert_eq!(encoding(&db, "res"), "intset", "an all-integer intersection");
        run(&db, &format!("SADD h1 a b c {}", many(1..130, |i| i.to_string())));
        run(&db, &format!("SADD h2 e f g {}", many(1..130, |i| i.to_string())));
        assert_eq!(encoding(&db, "h1"), "hashtable");
        assert_eq!(run(&db, "SINTERSTORE res h1 h2"), Out::Int(129));
        assert_eq!(encoding(&db, "res"), "intset");
        run(&db, "SADD h1 foo");
        run(&db, "SADD h2 foo");
        run(&db, "SINTERSTORE res h1 h2");
        assert_eq!(encoding(&db, "res"), "hashtable", "130 members outgrow a listpack");
        run(&db, "SADD s3 1 2 foo");
        run(&db, "SINTERSTORE res h1 s3");
        assert_eq!(encoding(&db, "res"), "listpack");
        run(&db, "SUNIONSTORE res h1 s3");
        assert_eq!(encoding(&db, "res"), "hashtable");
        run(&db, "SUNIONSTORE res l2 l2");
        assert_eq!(encoding(&db, "res"), "listpack");
        run(&db, "SDIFFSTORE res h1 l1");
        assert_eq!(encoding(&db, "res"), "listpack", "126 integers and foo");
        run(&db, "SDIFFSTORE res h1 s3");
        assert_eq!(encoding(&db, "res"), "hashtable", "130 members");
        // SPOP taking most of a hashtable leaves a rebuilt listpack.
        run(&db, "SPOP h1 120");
        assert_eq!(encoding(&db, "h1"), "listpack");
    }

    #[test]
    fn sscan_pages() {
        let db = Db::new();
        run(&db, "SADD small a b c");
        let Out::Array(page) = run(&db, "SSCAN small 0 COUNT 1") else { panic!("SSCAN replies an array") };
        assert_eq!(page, vec![Out::Bulk(Bytes::from_static(b"0")), page[1].clone()], "a listpack comes whole");
        assert_eq!(array(page[1].clone()), "a b c");
        run(&db, &format!("SADD big {}", many(0..300, |i| format!("m{i}"))));
        let (mut cursor, mut seen) = (Bytes::from_static(b"0"), 0);
        loop {
            let line = format!("SSCAN big {} MATCH m1* COUNT 25", String::from_utf8_lossy(&cursor));
            let Out::Array(mut page) = run(&db, &line) else { panic!("SSCAN replies an array") };
            seen += array(page.pop().expect("members")).split(' ').filter(|m| !m.is_empty()).count();
            let Some(Out::Bulk(next)) = page.pop() else { panic!("a cursor") };
            cursor = next;
            if &cursor[..] == b"0" {
                break;
            }
        }
        assert_eq!(seen, 111, "m1, m10..m19, m100..m199, each once");
        assert_eq!(run(&db, "SSCAN big x"), error("ERR invalid cursor"));
        assert_eq!(
            run(&db, "SSCAN nokey 0"),
            Out::Array(vec![Out::Bulk(Bytes::from_static(b"0")), Out::Array(vec![])])
        );
    }
}
