//! What a command gives back, before any protocol: [`Out`] is a reply
//! tree the server renders as RESP2 or RESP3, [`Fault`] a command error
//! with Redis's exact text. Both cross the Raft log's apply boundary (a
//! write's reply is made by the replica that applies it), hence serde.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Out {
    /// `+OK`.
    Ok,
    /// A status line other than OK (`+QUEUED`, TYPE's answer).
    Status(String),
    Int(i64),
    Bulk(Bytes),
    /// The null bulk string (RESP3 null).
    Nil,
    /// The null array (RESP3 null): BLPOP's timeout, LMPOP on nothing.
    NilArray,
    Double(f64),
    Array(Vec<Out>),
    /// RESP3 map; a flat array in RESP2.
    Map(Vec<(Out, Out)>),
    /// RESP3 set; an array in RESP2.
    Set(Vec<Out>),
    /// A list of pairs: an array of 2-element arrays in RESP3, a flat
    /// array in RESP2 (ZRANGE … WITHSCORES, HRANDFIELD … WITHVALUES).
    Pairs(Vec<(Out, Out)>),
    Err(Fault),
}

/// What a bulk reply can be made of: `Bytes` already shared (an argument
/// echoed back) without a copy, stored bytes (`Blob`) with one.
pub trait ToBulk {
    fn to_bulk(&self) -> Bytes;
}

impl ToBulk for Bytes {
    fn to_bulk(&self) -> Bytes {
        self.clone()
    }
}

impl ToBulk for [u8] {
    fn to_bulk(&self) -> Bytes {
        Bytes::copy_from_slice(self)
    }
}

impl ToBulk for Box<[u8]> {
    fn to_bulk(&self) -> Bytes {
        Bytes::copy_from_slice(self)
    }
}

impl Out {
    pub fn bulk<T: ToBulk + ?Sized>(b: &T) -> Out {
        Out::Bulk(b.to_bulk())
    }

    pub fn bulks<'a, T: ToBulk + ?Sized + 'a>(items: impl IntoIterator<Item = &'a T>) -> Out {
        Out::Array(items.into_iter().map(Out::bulk).collect())
    }

    pub fn optional<T: ToBulk + ?Sized>(b: Option<&T>) -> Out {
        b.map_or(Out::Nil, Out::bulk)
    }

    pub fn len(n: usize) -> Out {
        Out::Int(i64::try_from(n).unwrap_or(i64::MAX))
    }

    pub fn flag(b: bool) -> Out {
        Out::Int(i64::from(b))
    }

    /// About how many bytes the reply holds (a kept reply's cost).
    pub fn bytes(&self) -> usize {
        const ITEM: usize = 16;
        match self {
            Out::Status(s) => s.len(),
            Out::Bulk(b) => b.len(),
            Out::Array(items) | Out::Set(items) => items.iter().map(|i| ITEM + i.bytes()).sum(),
            Out::Map(pairs) | Out::Pairs(pairs) => pairs.iter().map(|(k, v)| 2 * ITEM + k.bytes() + v.bytes()).sum(),
            Out::Err(f) => f.to_string().len(),
            Out::Ok | Out::Int(_) | Out::Nil | Out::NilArray | Out::Double(_) => 0,
        }
    }
}

impl From<Fault> for Out {
    fn from(f: Fault) -> Out {
        Out::Err(f)
    }
}

/// A command error. `text` is the whole error line Redis sends, without
/// the leading `-`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Fault {
    #[error("WRONGTYPE Operation against a key holding the wrong kind of value")]
    WrongType,
    #[error("ERR syntax error")]
    Syntax,
    #[error("ERR value is not an integer or out of range")]
    NotInteger,
    #[error("ERR value is not a valid float")]
    NotFloat,
    #[error("ERR hash value is not an integer")]
    HashNotInteger,
    #[error("ERR hash value is not a float")]
    HashNotFloat,
    #[error("ERR increment or decrement would overflow")]
    Overflow,
    #[error("ERR increment would produce NaN or Infinity")]
    NanOrInfinity,
    #[error("ERR no such key")]
    NoSuchKey,
    #[error("ERR index out of range")]
    OutOfRange,
    #[error("ERR value is out of range, must be positive")]
    NotPositive,
    #[error("ERR min or max is not a float")]
    MinMaxNotFloat,
    #[error("ERR min or max not valid string range item")]
    BadLexRange,
    #[error("ERR numkeys should be greater than 0")]
    NumKeysZero,
    #[error("ERR Number of keys can't be greater than number of args")]
    NumKeysTooMany,
    #[error("ERR string exceeds maximum allowed size (proto-max-bulk-len)")]
    TooBig,
    #[error("ERR wrong number of arguments for '{0}' command")]
    Arity(String),
    /// Any other text, already formatted with its prefix.
    #[error("{0}")]
    Other(String),
}

impl Fault {
    pub fn other(text: impl Into<String>) -> Fault {
        Fault::Other(text.into())
    }
}
