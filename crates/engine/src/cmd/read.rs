//! The string and key reads the server answers itself outside a
//! transaction (GET MGET STRLEN EXISTS TTL PTTL TYPE), as engine commands,
//! so that inside MULTI they run where the transaction's writes do and see
//! them. EXPIRETIME and PEXPIRETIME are served from here always.

use bytes::Bytes;

use super::args::Args;
use super::rng::Rng;
use super::Run;
use crate::reply::{Fault, Out};
use crate::txn::Txn;
use crate::value::{Blob, Value};

#[derive(Debug, Clone, PartialEq)]
pub enum ReadCmd {
    Get(Bytes),
    MGet(Vec<Bytes>),
    StrLen(Bytes),
    Exists(Vec<Bytes>),
    Ttl {
        key: Bytes,
        millis: bool,
    },
    /// EXPIRETIME, PEXPIRETIME: the absolute expiry.
    ExpireTime {
        key: Bytes,
        millis: bool,
    },
    Type(Bytes),
}

impl ReadCmd {
    pub(super) fn parse(name: &str, a: &mut Args) -> Option<Result<ReadCmd, Fault>> {
        let parsed = match name {
            "get" => a.take().map(ReadCmd::Get),
            "mget" => Ok(ReadCmd::MGet(a.rest())),
            "strlen" => a.take().map(ReadCmd::StrLen),
            "exists" => Ok(ReadCmd::Exists(a.rest())),
            "ttl" | "pttl" => a.take().map(|key| ReadCmd::Ttl { key, millis: name == "pttl" }),
            "type" => a.take().map(ReadCmd::Type),
            "expiretime" | "pexpiretime" => {
                a.take().map(|key| ReadCmd::ExpireTime { key, millis: name == "pexpiretime" })
            }
            _ => return None,
        };
        Some(parsed.and_then(|c| a.done().map(|()| c)))
    }

    pub(super) fn keys(&self) -> Vec<&Bytes> {
        match self {
            ReadCmd::Get(key)
            | ReadCmd::StrLen(key)
            | ReadCmd::Ttl { key, .. }
            | ReadCmd::ExpireTime { key, .. }
            | ReadCmd::Type(key) => vec![key],
            ReadCmd::MGet(keys) | ReadCmd::Exists(keys) => keys.iter().collect(),
        }
    }

    pub(super) fn run(&self, tx: &mut Txn, _rng: &mut Rng) -> Run {
        Ok(match self {
            ReadCmd::Get(key) => Out::optional(tx.read::<Blob>(key)?),
            ReadCmd::MGet(keys) => {
                Out::Array(keys.iter().map(|k| Out::optional(tx.get(k).and_then(Value::as_str))).collect())
            }
            ReadCmd::StrLen(key) => Out::len(tx.read::<Blob>(key)?.map_or(0, |v| v.len())),
            ReadCmd::Exists(keys) => Out::len(keys.iter().filter(|k| tx.exists(k)).count()),
            ReadCmd::Ttl { key, millis } => Out::Int(match (tx.exists(key), tx.expires_at(key)) {
                (false, _) => -2,
                (true, None) => -1,
                (true, Some(at)) => {
                    let ms = at.saturating_sub(tx.now());
                    // Redis rounds to the nearest second.
                    if *millis {
                        ms as i64
                    } else {
                        (ms as i64 + 500) / 1000
                    }
                }
            }),
            ReadCmd::ExpireTime { key, millis } => Out::Int(match (tx.exists(key), tx.expires_at(key)) {
                (false, _) => -2,
                (true, None) => -1,
                (true, Some(at)) if *millis => at as i64,
                (true, Some(at)) => (at / 1000) as i64,
            }),
            ReadCmd::Type(key) => Out::Status(tx.kind(key).map_or("none", |k| k.name()).to_string()),
        })
    }
}
