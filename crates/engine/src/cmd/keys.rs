//! RENAME RENAMENX COPY TOUCH OBJECT: commands on whole keys of any type.

use bytes::Bytes;

use super::args::Args;
use super::rng::Rng;
use super::Run;
use crate::reply::{Fault, Out};
use crate::txn::Txn;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectInfo {
    Encoding,
    Freq,
    IdleTime,
    RefCount,
}

#[derive(Debug, Clone, PartialEq)]
pub enum KeyCmd {
    Rename { from: Bytes, to: Bytes, nx: bool },
    Copy { from: Bytes, to: Bytes, replace: bool },
    Touch { keys: Vec<Bytes> },
    Object { info: ObjectInfo, key: Bytes },
}

impl KeyCmd {
    pub(super) fn parse(name: &str, a: &mut Args) -> Option<Result<KeyCmd, Fault>> {
        let parsed = match name {
            "rename" | "renamenx" => (|| Ok(KeyCmd::Rename { from: a.take()?, to: a.take()?, nx: name == "renamenx" }))(),
            "copy" => copy(a),
            "touch" => Ok(KeyCmd::Touch { keys: a.rest() }),
            "object" => object(a),
            _ => return None,
        };
        Some(parsed.and_then(|c| a.done().map(|()| c)))
    }

    pub(super) fn keys(&self) -> Vec<&Bytes> {
        match self {
            KeyCmd::Rename { from, to, .. } | KeyCmd::Copy { from, to, .. } => vec![from, to],
            KeyCmd::Touch { keys } => keys.iter().collect(),
            KeyCmd::Object { key, .. } => vec![key],
        }
    }

    pub(super) fn run(&self, tx: &mut Txn, _rng: &mut Rng) -> Run {
        match self {
            KeyCmd::Rename { from, to, nx } => {
                if !tx.exists(from) {
                    return Err(Fault::NoSuchKey);
                }
                if *nx && tx.exists(to) {
                    return Ok(Out::Int(0));
                }
                if from != to {
                    let (value, expires_at) = tx.remove(from).expect("checked live above");
                    tx.put(to, value, expires_at);
                }
                Ok(if *nx { Out::Int(i64::from(from != to)) } else { Out::Ok })
            }
            KeyCmd::Copy { from, to, replace } => {
                if from == to {
                    return Err(Fault::other("ERR source and destination objects are the same"));
                }
                let Some(value) = tx.get(from).map(|v| v.duplicate()) else { return Ok(Out::Int(0)) };
                if !replace && tx.exists(to) {
                    return Ok(Out::Int(0));
                }
                let expires_at = tx.expires_at(from);
                tx.put(to, value, expires_at);
                Ok(Out::Int(1))
            }
            KeyCmd::Touch { keys } => Ok(Out::len(keys.iter().filter(|k| tx.exists(k)).count())),
            KeyCmd::Object { info, key } => {
                let Some(value) = tx.get(key) else { return Ok(Out::Nil) };
                Ok(match info {
                    ObjectInfo::Encoding => Out::Bulk(Bytes::from_static(value.encoding().as_bytes())),
                    ObjectInfo::Freq => return Err(Fault::other(FREQ_UNTRACKED)),
                    // Access times are not kept (they would differ between
                    // replicas and cost a write per read).
                    ObjectInfo::IdleTime => Out::Int(0),
                    ObjectInfo::RefCount => Out::Int(1),
                })
            }
        }
    }
}

const FREQ_UNTRACKED: &str = "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.";

fn copy(a: &mut Args) -> Result<KeyCmd, Fault> {
    let (from, to) = (a.take()?, a.take()?);
    let mut replace = false;
    while !a.is_empty() {
        if a.eat("replace") {
            replace = true;
        } else if a.eat("db") {
            if a.i64()? != 0 {
                return Err(Fault::other("ERR DB index is out of range"));
            }
        } else {
            return Err(Fault::Syntax);
        }
    }
    Ok(KeyCmd::Copy { from, to, replace })
}

fn object(a: &mut Args) -> Result<KeyCmd, Fault> {
    let sub = a.take()?;
    let info = match sub.to_ascii_lowercase().as_slice() {
        b"encoding" => ObjectInfo::Encoding,
        b"freq" => ObjectInfo::Freq,
        b"idletime" => ObjectInfo::IdleTime,
        b"refcount" => ObjectInfo::RefCount,
        _ => return Err(Fault::Syntax),
    };
    Ok(KeyCmd::Object { info, key: a.take()? })
}
