//! HSET HSETNX HGET HMGET HMSET HDEL HEXISTS HLEN HSTRLEN HKEYS HVALS
//! HGETALL HINCRBY HINCRBYFLOAT HRANDFIELD HSCAN.

use bytes::Bytes;

use super::args::{float, int, Args};
use super::rng::Rng;
use super::{random_indices, scan_page, scan_reply, Run, ScanArgs};
use crate::reply::{Fault, Out};
use crate::txn::Txn;
use crate::value::HashValue;

#[derive(Debug, Clone, PartialEq)]
pub enum HashCmd {
    /// HSET and HMSET (`ok`: HMSET answers OK, HSET the count added).
    Set {
        key: Bytes,
        pairs: Vec<(Bytes, Bytes)>,
        ok: bool,
    },
    SetNx {
        key: Bytes,
        field: Bytes,
        value: Bytes,
    },
    Get {
        key: Bytes,
        field: Bytes,
    },
    MGet {
        key: Bytes,
        fields: Vec<Bytes>,
    },
    Del {
        key: Bytes,
        fields: Vec<Bytes>,
    },
    Exists {
        key: Bytes,
        field: Bytes,
    },
    Len {
        key: Bytes,
    },
    StrLen {
        key: Bytes,
        field: Bytes,
    },
    Keys {
        key: Bytes,
    },
    Vals {
        key: Bytes,
    },
    GetAll {
        key: Bytes,
    },
    IncrBy {
        key: Bytes,
        field: Bytes,
        delta: i64,
    },
    IncrByFloat {
        key: Bytes,
        field: Bytes,
        delta: f64,
    },
    RandField {
        key: Bytes,
        count: Option<i64>,
        values: bool,
    },
    Scan {
        key: Bytes,
        scan: ScanArgs,
    },
}

impl HashCmd {
    pub(super) fn parse(name: &str, a: &mut Args) -> Option<Result<HashCmd, Fault>> {
        let parsed = match name {
            "hset" | "hmset" => pairs(a, name).map(|(key, pairs)| HashCmd::Set { key, pairs, ok: name == "hmset" }),
            "hsetnx" => (|| Ok(HashCmd::SetNx { key: a.take()?, field: a.take()?, value: a.take()? }))(),
            "hget" => (|| Ok(HashCmd::Get { key: a.take()?, field: a.take()? }))(),
            "hmget" => a.take().map(|key| HashCmd::MGet { key, fields: a.rest() }),
            "hdel" => a.take().map(|key| HashCmd::Del { key, fields: a.rest() }),
            "hexists" => (|| Ok(HashCmd::Exists { key: a.take()?, field: a.take()? }))(),
            "hlen" => a.take().map(|key| HashCmd::Len { key }),
            "hstrlen" => (|| Ok(HashCmd::StrLen { key: a.take()?, field: a.take()? }))(),
            "hkeys" => a.take().map(|key| HashCmd::Keys { key }),
            "hvals" => a.take().map(|key| HashCmd::Vals { key }),
            "hgetall" => a.take().map(|key| HashCmd::GetAll { key }),
            "hincrby" => (|| Ok(HashCmd::IncrBy { key: a.take()?, field: a.take()?, delta: a.i64()? }))(),
            "hincrbyfloat" => (|| {
                let (key, field) = (a.take()?, a.take()?);
                let delta = a.f64()?;
                if delta.is_infinite() {
                    return Err(Fault::other("ERR value is NaN or Infinity"));
                }
                Ok(HashCmd::IncrByFloat { key, field, delta })
            })(),
            "hrandfield" => rand_field(a),
            "hscan" => (|| Ok(HashCmd::Scan { key: a.take()?, scan: ScanArgs::parse(a)? }))(),
            _ => return None,
        };
        Some(parsed.and_then(|c| a.done().map(|()| c)))
    }

    pub(super) fn keys(&self) -> Vec<&Bytes> {
        let key = match self {
            HashCmd::Set { key, .. }
            | HashCmd::SetNx { key, .. }
            | HashCmd::Get { key, .. }
            | HashCmd::MGet { key, .. }
            | HashCmd::Del { key, .. }
            | HashCmd::Exists { key, .. }
            | HashCmd::Len { key }
            | HashCmd::StrLen { key, .. }
            | HashCmd::Keys { key }
            | HashCmd::Vals { key }
            | HashCmd::GetAll { key }
            | HashCmd::IncrBy { key, .. }
            | HashCmd::IncrByFloat { key, .. }
            | HashCmd::RandField { key, .. }
            | HashCmd::Scan { key, .. } => key,
        };
        vec![key]
    }

    pub(super) fn run(&self, tx: &mut Txn, rng: &mut Rng) -> Run {
        match self {
            HashCmd::Set { key, pairs, ok } => {
                let hash = tx.write::<HashValue>(key, true)?.expect("created");
                let added = pairs.iter().filter(|(f, v)| hash.insert(f.clone(), v.clone())).count();
                Ok(if *ok { Out::Ok } else { Out::len(added) })
            }
            HashCmd::SetNx { key, field, value } => {
                let hash = tx.write::<HashValue>(key, true)?.expect("created");
                let new = hash.get(field).is_none() && hash.insert(field.clone(), value.clone());
                Ok(Out::flag(new))
            }
            HashCmd::Get { key, field } => Ok(Out::optional(tx.read::<HashValue>(key)?.and_then(|h| h.get(field)))),
            HashCmd::MGet { key, fields } => {
                let hash = tx.read::<HashValue>(key)?;
                Ok(Out::Array(fields.iter().map(|f| Out::optional(hash.and_then(|h| h.get(f)))).collect()))
            }
            HashCmd::Del { key, fields } => {
                let Some(hash) = tx.write::<HashValue>(key, false)? else { return Ok(Out::Int(0)) };
                let removed = fields.iter().filter(|f| hash.remove(f)).count();
                Ok(Out::len(removed))
            }
            HashCmd::Exists { key, field } => {
                Ok(Out::flag(tx.read::<HashValue>(key)?.is_some_and(|h| h.get(field).is_some())))
            }
            HashCmd::Len { key } => Ok(Out::len(tx.read::<HashValue>(key)?.map_or(0, HashValue::len))),
            HashCmd::StrLen { key, field } => {
                Ok(Out::len(tx.read::<HashValue>(key)?.and_then(|h| h.get(field)).map_or(0, <[u8]>::len)))
            }
            HashCmd::Keys { key } => Ok(Out::Array(all(tx, key)?.map(|(f, _)| Out::bulk(f)).collect())),
            HashCmd::Vals { key } => Ok(Out::Array(all(tx, key)?.map(|(_, v)| Out::bulk(v)).collect())),
            HashCmd::GetAll { key } => Ok(Out::Map(all(tx, key)?.map(|(f, v)| (Out::bulk(f), Out::bulk(v))).collect())),
            HashCmd::IncrBy { key, field, delta } => {
                let hash = tx.write::<HashValue>(key, true)?.expect("created");
                let current = match hash.get(field) {
                    Some(v) => int(v).map_err(|_| Fault::HashNotInteger)?,
                    None => 0,
                };
                let next = current.checked_add(*delta).ok_or(Fault::Overflow)?;
                hash.insert(field.clone(), Bytes::from(next.to_string()));
                Ok(Out::Int(next))
            }
            HashCmd::IncrByFloat { key, field, delta } => {
                let hash = tx.write::<HashValue>(key, true)?.expect("created");
                let current = match hash.get(field) {
                    Some(v) => float(v).ok_or(Fault::HashNotFloat)?,
                    None => 0.0,
                };
                let next = current + delta;
                if !next.is_finite() {
                    return Err(Fault::NanOrInfinity);
                }
                let text = Bytes::from(super::string::human_float(next));
                hash.insert(field.clone(), text.clone());
                Ok(Out::Bulk(text))
            }
            HashCmd::RandField { key, count, values } => {
                let Some(hash) = tx.read::<HashValue>(key)? else {
                    return Ok(if count.is_some() { Out::Array(vec![]) } else { Out::Nil });
                };
                let Some(count) = *count else {
                    let (f, _) = hash.at(rng.below(hash.len())).expect("a stored hash is not empty");
                    return Ok(Out::bulk(f));
                };
                super::check_repeats(count)?;
                let indexed = hash.indexed();
                let picked =
                    random_indices(hash.len(), count, rng).into_iter().map(|i| indexed.get(i).expect("in range"));
                Ok(if *values {
                    Out::Pairs(picked.map(|(f, v)| (Out::bulk(f), Out::bulk(v))).collect())
                } else {
                    Out::Array(picked.map(|(f, _)| Out::bulk(f)).collect())
                })
            }
            HashCmd::Scan { key, scan } => {
                let Some(hash) = tx.read::<HashValue>(key)? else { return Ok(scan_reply(0, vec![])) };
                let (positions, next) = scan_page(hash.len(), scan.cursor, scan.count, hash.encoding() == "listpack");
                let mut items = Vec::new();
                let indexed = hash.indexed();
                for (f, v) in positions.rev().filter_map(|i| indexed.get(i)) {
                    if scan.matches(f) {
                        items.extend([Out::bulk(f), Out::bulk(v)]);
                    }
                }
                Ok(scan_reply(next, items))
            }
        }
    }
}

/// Every (field, value) of the hash at `key` (none when there is no key).
fn all<'t>(tx: &'t Txn, key: &[u8]) -> Result<impl Iterator<Item = (&'t [u8], &'t [u8])>, Fault> {
    Ok(tx.read::<HashValue>(key)?.into_iter().flat_map(HashValue::iter))
}

/// `key field value [field value …]`, with HSET's and HMSET's arity error
/// for an odd count.
fn pairs(a: &mut Args, name: &str) -> Result<(Bytes, Vec<(Bytes, Bytes)>), Fault> {
    let key = a.take()?;
    if a.is_empty() || !a.remaining().is_multiple_of(2) {
        return Err(Fault::Arity(name.to_string()));
    }
    let mut pairs = Vec::with_capacity(a.remaining() / 2);
    while !a.is_empty() {
        pairs.push((a.take()?, a.take()?));
    }
    Ok((key, pairs))
}

/// `key [count [WITHVALUES]]`.
fn rand_field(a: &mut Args) -> Result<HashCmd, Fault> {
    let key = a.take()?;
    let count = if a.is_empty() { None } else { Some(a.i64()?) };
    let values = a.eat("withvalues");
    if values && count.is_none() {
        return Err(Fault::Syntax);
    }
    if let Some(c) = count {
        // Redis refuses counts whose reply could not be built.
        if c < -(i64::MAX / 2) || (values && c.unsigned_abs() > (i64::MAX / 2) as u64) {
            return Err(Fault::other("ERR value is out of range"));
        }
    }
    Ok(HashCmd::RandField { key, count, values })
}
