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
    Rename {
        from: Bytes,
        to: Bytes,
        nx: bool,
    },
    Copy {
        from: Bytes,
        to: Bytes,
        replace: bool,
    },
    Touch {
        keys: Vec<Bytes>,
    },
    Object {
        info: ObjectInfo,
        key: Bytes,
    },
    /// MEMORY USAGE: an estimate of the key's bytes.
    MemoryUsage {
        key: Bytes,
    },
    Dump {
        key: Bytes,
    },
    Restore(Restore),
}

/// RESTORE's arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Restore {
    pub key: Bytes,
    /// Milliseconds from now, or the absolute time with ABSTTL; 0: none.
    pub ttl: i64,
    pub absolute: bool,
    pub payload: Bytes,
    pub replace: bool,
}

impl KeyCmd {
    pub(super) fn parse(name: &str, a: &mut Args) -> Option<Result<KeyCmd, Fault>> {
        let parsed = match name {
            "rename" | "renamenx" => {
                (|| Ok(KeyCmd::Rename { from: a.take()?, to: a.take()?, nx: name == "renamenx" }))()
            }
            "copy" => copy(a),
            "touch" => Ok(KeyCmd::Touch { keys: a.rest() }),
            "object" => object(a),
            "memory" => memory(a),
            "dump" => a.take().map(|key| KeyCmd::Dump { key }),
            "restore" => restore(a).map(KeyCmd::Restore),
            _ => return None,
        };
        Some(parsed.and_then(|c| a.done().map(|()| c)))
    }

    pub(super) fn keys(&self) -> Vec<&Bytes> {
        match self {
            KeyCmd::Rename { from, to, .. } | KeyCmd::Copy { from, to, .. } => vec![from, to],
            KeyCmd::Touch { keys } => keys.iter().collect(),
            KeyCmd::Object { key, .. } | KeyCmd::MemoryUsage { key } | KeyCmd::Dump { key } => vec![key],
            KeyCmd::Restore(r) => vec![&r.key],
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
            KeyCmd::Dump { key } => {
                Ok(tx.get(key).map_or(Out::Nil, |v| Out::Bulk(Bytes::from(crate::snapshot::dump_value(v)))))
            }
            KeyCmd::Restore(r) => {
                let value = crate::snapshot::restore_value(&r.payload)
                    .ok_or_else(|| Fault::other("ERR DUMP payload version or checksum are wrong"))?;
                if !r.replace && tx.exists(&r.key) {
                    return Err(Fault::other("BUSYKEY Target key name already exists."));
                }
                let expires_at = match (r.ttl, r.absolute) {
                    (0, _) => None,
                    (at, true) => Some(at as u64),
                    (ms, false) => Some(tx.now().saturating_add(ms as u64)),
                };
                if expires_at.is_some_and(|at| at < tx.now()) {
                    // Already expired: nothing is stored (and a replaced key goes).
                    tx.delete(&r.key);
                } else {
                    tx.put(&r.key, value, expires_at);
                }
                Ok(Out::Ok)
            }
            KeyCmd::MemoryUsage { key } => {
                /// What a stored key costs besides its bytes: its slot in the
                /// table and the key's own allocation.
                const KEY_OVERHEAD_BYTES: usize = 88 + 16;
                Ok(tx.get(key).map_or(Out::Nil, |v| Out::len(key.len() + v.bytes() + KEY_OVERHEAD_BYTES)))
            }
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

/// `MEMORY USAGE key [SAMPLES count]` (the estimate is exact here: no sampling).
fn memory(a: &mut Args) -> Result<KeyCmd, Fault> {
    let sub = a.take()?;
    if !super::args::is(&sub, "usage") {
        return Err(Fault::Syntax);
    }
    let key = a.take()?;
    if a.eat("samples") {
        a.i64()?;
    }
    Ok(KeyCmd::MemoryUsage { key })
}

/// `key ttl payload [REPLACE] [ABSTTL] [IDLETIME s] [FREQ f]` (IDLETIME and
/// FREQ are checked and ignored: no access times are kept).
fn restore(a: &mut Args) -> Result<Restore, Fault> {
    let key = a.take()?;
    let ttl = a.i64()?;
    let payload = a.take()?;
    let (mut replace, mut absolute) = (false, false);
    while !a.is_empty() {
        if a.eat("replace") {
            replace = true;
        } else if a.eat("absttl") {
            absolute = true;
        } else if a.eat("idletime") {
            if a.i64()? < 0 {
                return Err(Fault::other("ERR Invalid IDLETIME value, must be >= 0"));
            }
        } else if a.eat("freq") {
            let f = a.i64()?;
            if !(0..=255).contains(&f) {
                return Err(Fault::other("ERR Invalid FREQ value, must be >= 0 and <= 255"));
            }
        } else {
            return Err(Fault::Syntax);
        }
    }
    if ttl < 0 {
        return Err(Fault::other("ERR Invalid TTL value, must be >= 0"));
    }
    Ok(Restore { key, ttl, absolute, payload, replace })
}
