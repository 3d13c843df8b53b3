//! The string commands beyond the typed `WriteOp`s: INCRBYFLOAT SETRANGE
//! GETRANGE SUBSTR MSETNX LCS SETBIT GETBIT BITCOUNT BITPOS BITOP.

use bytes::Bytes;

use super::args::{float, Args};
use super::rng::Rng;
use super::Run;
use crate::reply::{Fault, Out};
use crate::txn::Txn;
use crate::value::{Blob, Value};

/// The longest string SETRANGE, SETBIT and APPEND may make (Redis's
/// default proto-max-bulk-len).
pub const MAX_STRING_BYTES: usize = 512 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BitOp {
    And,
    Or,
    Xor,
    Not,
}

/// Whether BITCOUNT/BITPOS ranges count bytes or bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Byte,
    Bit,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StrCmd {
    IncrByFloat { key: Bytes, delta: f64 },
    SetRange { key: Bytes, offset: usize, value: Bytes },
    GetRange { key: Bytes, start: i64, end: i64 },
    MSetNx { pairs: Vec<(Bytes, Bytes)> },
    Lcs { a: Bytes, b: Bytes, mode: LcsMode, min_len: usize, with_len: bool },
    SetBit { key: Bytes, offset: u64, bit: bool },
    GetBit { key: Bytes, offset: u64 },
    BitCount { key: Bytes, range: Option<(i64, i64, Unit)> },
    BitPos { key: Bytes, bit: bool, start: Option<i64>, end: Option<i64>, unit: Unit },
    BitOp { op: BitOp, dest: Bytes, sources: Vec<Bytes> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LcsMode {
    String,
    Len,
    Idx,
}

impl StrCmd {
    pub(super) fn parse(name: &str, a: &mut Args) -> Option<Result<StrCmd, Fault>> {
        let parsed = match name {
            "incrbyfloat" => (|| Ok(StrCmd::IncrByFloat { key: a.take()?, delta: a.f64()? }))(),
            "setrange" => (|| {
                let key = a.take()?;
                let offset = a.i64()?;
                if offset < 0 {
                    return Err(Fault::other("ERR offset is out of range"));
                }
                Ok(StrCmd::SetRange { key, offset: offset as usize, value: a.take()? })
            })(),
            "getrange" | "substr" => (|| Ok(StrCmd::GetRange { key: a.take()?, start: a.i64()?, end: a.i64()? }))(),
            "msetnx" => (|| {
                if a.is_empty() || !a.remaining().is_multiple_of(2) {
                    return Err(Fault::Arity("msetnx".into()));
                }
                let mut pairs = Vec::new();
                while !a.is_empty() {
                    pairs.push((a.take()?, a.take()?));
                }
                Ok(StrCmd::MSetNx { pairs })
            })(),
            "lcs" => lcs(a),
            "setbit" => (|| {
                let key = a.take()?;
                let offset = bit_offset(&a.take()?)?;
                let bit = match &a.take()?[..] {
                    b"0" => false,
                    b"1" => true,
                    _ => return Err(Fault::other("ERR bit is not an integer or out of range")),
                };
                Ok(StrCmd::SetBit { key, offset, bit })
            })(),
            "getbit" => (|| Ok(StrCmd::GetBit { key: a.take()?, offset: bit_offset(&a.take()?)? }))(),
            "bitcount" => bitcount(a),
            "bitpos" => bitpos(a),
            "bitop" => bitop(a),
            _ => return None,
        };
        Some(parsed.and_then(|c| a.done().map(|()| c)))
    }

    pub(super) fn keys(&self) -> Vec<&Bytes> {
        match self {
            StrCmd::IncrByFloat { key, .. }
            | StrCmd::SetRange { key, .. }
            | StrCmd::GetRange { key, .. }
            | StrCmd::SetBit { key, .. }
            | StrCmd::GetBit { key, .. }
            | StrCmd::BitCount { key, .. }
            | StrCmd::BitPos { key, .. } => vec![key],
            StrCmd::MSetNx { pairs } => pairs.iter().map(|(k, _)| k).collect(),
            StrCmd::Lcs { a, b, .. } => vec![a, b],
            StrCmd::BitOp { dest, sources, .. } => std::iter::once(dest).chain(sources).collect(),
        }
    }

    pub(super) fn run(&self, tx: &mut Txn, _rng: &mut Rng) -> Run {
        match self {
            StrCmd::IncrByFloat { key, delta } => {
                let current = match tx.read::<Blob>(key)? {
                    Some(v) => float(v).ok_or(Fault::NotFloat)?,
                    None => 0.0,
                };
                let next = current + delta;
                if !next.is_finite() {
                    return Err(Fault::NanOrInfinity);
                }
                let text = Bytes::from(human_float(next));
                let expires_at = tx.expires_at(key);
                tx.put(key, Value::Str(Blob::from(&text[..])), expires_at);
                Ok(Out::Bulk(text))
            }
            StrCmd::SetRange { key, offset, value } => {
                let len = tx.read::<Blob>(key)?.map_or(0, |v| v.len());
                if value.is_empty() {
                    return Ok(Out::len(len));
                }
                let end = offset.checked_add(value.len()).filter(|&e| e <= MAX_STRING_BYTES).ok_or(Fault::TooBig)?;
                let bytes = writable(tx, key, end)?;
                bytes[*offset..end].copy_from_slice(value);
                Ok(Out::len(bytes.len()))
            }
            StrCmd::GetRange { key, start, end } => {
                let value = tx.read::<Blob>(key)?.map_or(&[][..], |v| &v[..]);
                Ok(Out::Bulk(get_range(value, *start, *end)))
            }
            StrCmd::MSetNx { pairs } => {
                if pairs.iter().any(|(k, _)| tx.exists(k)) {
                    return Ok(Out::Int(0));
                }
                for (k, v) in pairs {
                    tx.put(k, Value::Str(Blob::from(&v[..])), None);
                }
                Ok(Out::Int(1))
            }
            StrCmd::Lcs { a, b, mode, min_len, with_len } => {
                let strings = |k| match tx.get(k) {
                    None => Ok(&[][..]),
                    Some(Value::Str(s)) => Ok(&s[..]),
                    Some(_) => Err(Fault::other("ERR The specified keys must contain string values")),
                };
                let (x, y) = (strings(a)?, strings(b)?);
                if (x.len() as u64 + 1) * (y.len() as u64 + 1) * 4 > MAX_STRING_BYTES as u64 {
                    return Err(Fault::other(
                        "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len",
                    ));
                }
                Ok(super::lcs::reply(x, y, *mode, *min_len, *with_len))
            }
            StrCmd::SetBit { key, offset, bit } => {
                let byte = (offset / 8) as usize;
                let bytes = writable(tx, key, byte + 1)?;
                let mask = 0x80u8 >> (offset % 8);
                let old = bytes[byte] & mask != 0;
                if *bit {
                    bytes[byte] |= mask;
                } else {
                    bytes[byte] &= !mask;
                }
                Ok(Out::flag(old))
            }
            StrCmd::GetBit { key, offset } => {
                let value = tx.read::<Blob>(key)?;
                let byte = value.and_then(|v| v.get((offset / 8) as usize)).copied().unwrap_or(0);
                Ok(Out::flag(byte & (0x80 >> (offset % 8)) != 0))
            }
            StrCmd::BitCount { key, range } => {
                let value = tx.read::<Blob>(key)?.map_or(&[][..], |v| &v[..]);
                Ok(Out::len(super::bits::count(value, *range)))
            }
            StrCmd::BitPos { key, bit, start, end, unit } => {
                let value = tx.read::<Blob>(key)?.map(|v| &v[..]);
                Ok(Out::Int(super::bits::position(value, *bit, *start, *end, *unit)))
            }
            StrCmd::BitOp { op, dest, sources } => {
                let mut inputs = Vec::with_capacity(sources.len());
                for s in sources {
                    inputs.push(tx.read::<Blob>(s)?.map_or(&[][..], |v| &v[..]));
                }
                let result = super::bits::combine(*op, &inputs);
                let len = result.len();
                if result.is_empty() {
                    tx.delete(dest);
                } else {
                    tx.put(dest, Value::Str(result.into_boxed_slice()), None);
                }
                Ok(Out::len(len))
            }
        }
    }
}

/// The string at `key` to change in place, at least `len` bytes long (zero
/// padded; created empty when there is none): SETRANGE and SETBIT rewrite
/// a few bytes without copying the rest, and the key keeps its expiry.
fn writable<'t>(tx: &'t mut Txn, key: &[u8], len: usize) -> Result<&'t mut Blob, Fault> {
    let bytes = tx.write::<Blob>(key, true)?.expect("created when missing");
    if bytes.len() < len {
        let mut grown = std::mem::take(bytes).into_vec();
        grown.resize(len, 0);
        *bytes = grown.into_boxed_slice();
    }
    Ok(bytes)
}

/// GETRANGE's window, Redis's rules for negative and out-of-range ends.
pub(crate) fn get_range(value: &[u8], start: i64, end: i64) -> Bytes {
    let len = value.len() as i64;
    if len == 0 || (start < 0 && end < 0 && start > end) {
        return Bytes::new();
    }
    let start = if start < 0 { (len + start).max(0) } else { start };
    let end = if end < 0 { (len + end).max(0) } else { end.min(len - 1) };
    if start > end {
        return Bytes::new();
    }
    // A copy: a slice would keep the whole string alive wherever the reply
    // is kept (a tagged write's reply stays in the group's sessions).
    Bytes::copy_from_slice(&value[start as usize..=end as usize])
}

/// A float as INCRBYFLOAT stores it: plain decimal, never an exponent.
/// Redis adds in `long double` and prints 17 digits, so 0.1 + 0.2 reads
/// 0.3 there; here a sum within two units in the last place of a
/// 15-digit decimal is printed as that decimal, to the same effect.
pub(crate) fn human_float(f: f64) -> String {
    let rounded: f64 = format!("{f:.14e}").parse().unwrap_or(f);
    let ulp = f64::from_bits(f.abs().to_bits() + 1) - f.abs();
    let f = if (rounded - f).abs() <= 2.0 * ulp { rounded } else { f };
    let text = format!("{f}");
    if text == "-0" {
        "0".into()
    } else {
        text
    }
}

fn bit_offset(arg: &[u8]) -> Result<u64, Fault> {
    let bad = || Fault::other("ERR bit offset is not an integer or out of range");
    let n = super::args::int(arg).map_err(|_| bad())?;
    if n < 0 || n as u64 >= (MAX_STRING_BYTES as u64) * 8 {
        return Err(bad());
    }
    Ok(n as u64)
}

fn unit(a: &mut Args) -> Result<Unit, Fault> {
    if a.eat("byte") {
        Ok(Unit::Byte)
    } else if a.eat("bit") {
        Ok(Unit::Bit)
    } else if a.is_empty() {
        Ok(Unit::Byte)
    } else {
        Err(Fault::Syntax)
    }
}

fn bitcount(a: &mut Args) -> Result<StrCmd, Fault> {
    let key = a.take()?;
    let range = match a.remaining() {
        0 => None,
        1 => return Err(Fault::Syntax),
        _ => Some((a.i64()?, a.i64()?, unit(a)?)),
    };
    Ok(StrCmd::BitCount { key, range })
}

fn bitpos(a: &mut Args) -> Result<StrCmd, Fault> {
    let key = a.take()?;
    let bit = match a.i64()? {
        0 => false,
        1 => true,
        _ => return Err(Fault::other("ERR The bit argument must be 1 or 0.")),
    };
    let start = if a.is_empty() { None } else { Some(a.i64()?) };
    let end = if a.is_empty() { None } else { Some(a.i64()?) };
    let unit = unit(a)?;
    Ok(StrCmd::BitPos { key, bit, start, end, unit })
}

fn bitop(a: &mut Args) -> Result<StrCmd, Fault> {
    let op = a.take()?;
    let op = match op.to_ascii_lowercase().as_slice() {
        b"and" => BitOp::And,
        b"or" => BitOp::Or,
        b"xor" => BitOp::Xor,
        b"not" => BitOp::Not,
        _ => return Err(Fault::Syntax),
    };
    let dest = a.take()?;
    let sources = a.rest();
    if op == BitOp::Not && sources.len() != 1 {
        return Err(Fault::other("ERR BITOP NOT must be called with a single source key."));
    }
    Ok(StrCmd::BitOp { op, dest, sources })
}

fn lcs(a: &mut Args) -> Result<StrCmd, Fault> {
    let (x, y) = (a.take()?, a.take()?);
    let (mut len, mut idx, mut min_len, mut with_len) = (false, false, 0usize, false);
    while !a.is_empty() {
        if a.eat("len") {
            len = true;
        } else if a.eat("idx") {
            idx = true;
        } else if a.eat("withmatchlen") {
            with_len = true;
        } else if a.eat("minmatchlen") {
            min_len = a.i64()?.max(0) as usize;
        } else {
            return Err(Fault::Syntax);
        }
    }
    let mode = match (len, idx) {
        (true, true) => {
            return Err(Fault::other("ERR If you want both the length and indexes, please just use IDX."));
        }
        (true, false) => LcsMode::Len,
        (false, true) => LcsMode::Idx,
        (false, false) => LcsMode::String,
    };
    Ok(StrCmd::Lcs { a: x, b: y, mode, min_len, with_len })
}
