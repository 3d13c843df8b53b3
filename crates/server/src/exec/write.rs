//! Writes: a command becomes a `WriteOp` for its shard's Raft group plus
//! the `Shape` of its reply; the connection submits it and, once the group
//! has applied it, `reply` turns the group's result into the frame the
//! client expects. Executing never touches a keyspace for a write: every
//! replica applies the same op, in log order, with the leader's `now`.

use bytes::Bytes;
use shoal_engine::slot::Slot;
use shoal_engine::WriteOp;
use shoal_proto::Frame;
use shoal_raft::transport::GroupId;
use shoal_raft::{Reply, WriteTag};

use super::Outcome;
use crate::route::Target;

/// How a write's result becomes a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// SET: `OK`, or nil when a condition failed; with GET, the old value.
    Set { get: bool },
    /// SETNX: 1 when written.
    SetNx,
    /// DEL, DELEX, EXPIRE, PERSIST, INCRBY, APPEND: an integer.
    Integer,
    /// GETDEL, GETEX: the value read while writing.
    Value,
    /// MSET, FLUSH: `OK`.
    Ok,
    /// An engine command: the reply is made where it was applied.
    Out,
}

/// A write to replicate, then answer.
#[derive(Debug)]
pub struct Write {
    pub group: GroupId,
    /// The key's slot, for a `-MOVED` if leadership moved meanwhile.
    pub slot: Option<Slot>,
    pub op: WriteOp,
    pub shape: Shape,
    /// The client's tag (CLIENT SHOAL-TAG), for exactly-once retries.
    pub tag: Option<WriteTag>,
    /// A blocking pop: when it finds nothing, the client waits (`blocking`).
    pub blocking: Option<Blocking>,
}

/// What a blocking pop (BLPOP, BZPOPMIN, BLMOVE, …) waits on.
#[derive(Debug, Clone)]
pub struct Blocking {
    /// The keys any of which, once non-empty, may serve it.
    pub keys: Vec<Bytes>,
    /// The type those keys must hold to serve it (a key of another type
    /// leaves the client waiting, as in Redis).
    pub kind: shoal_engine::Kind,
    /// 0: wait forever.
    pub timeout_ms: u64,
    /// Its reply when nothing was there (nil, or the null array).
    pub nothing: shoal_engine::Out,
}

/// The write of a keyed command to its target's group.
pub(super) fn keyed(target: Target, op: WriteOp, shape: Shape) -> Outcome {
    Outcome::Write(Write { group: target.group, slot: Some(target.slot), op, shape, tag: None, blocking: None })
}

const PROTO_MAX_BULK: &str = "ERR string exceeds maximum allowed size (proto-max-bulk-len)";

/// The reply for a write's result. A result that does not fit the shape
/// is a bug between this module and the engine: it is answered with an
/// error and logged, never a panic on the client's connection.
pub fn reply(shape: Shape, result: Reply) -> Frame {
    let bulk = |v: Option<Vec<u8>>| Frame::optional_bulk(v.map(Bytes::from));
    match (shape, result) {
        (_, Reply::Error(e)) => Frame::error(format!("ERR {e}")),
        (_, Reply::Out(out)) => Frame::from(out),
        (Shape::Set { get: true }, Reply::Set { old, .. }) => bulk(old),
        (Shape::Set { get: false }, Reply::Set { written: true, .. }) => Frame::OK,
        (Shape::Set { get: false }, Reply::Set { written: false, .. }) => Frame::Null,
        (Shape::SetNx, Reply::Set { written, .. }) => Frame::Integer(i64::from(written)),
        (Shape::Integer, Reply::Count(n)) => Frame::Integer(i64::try_from(n).unwrap_or(i64::MAX)),
        (Shape::Integer, Reply::Flag(f)) => Frame::Integer(i64::from(f)),
        (Shape::Integer, Reply::Int(n)) => Frame::Integer(n),
        (Shape::Integer, Reply::Len(Ok(n))) => Frame::Integer(i64::try_from(n).unwrap_or(i64::MAX)),
        (Shape::Integer, Reply::Len(Err(_))) => Frame::error(PROTO_MAX_BULK),
        (Shape::Value, Reply::Value(v)) => bulk(v),
        (Shape::Ok, Reply::Done) => Frame::OK,
        (shape, result) => {
            tracing::error!(?shape, ?result, "write result does not match its reply shape");
            Frame::error("ERR internal error: unexpected write result")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_become_redis_replies() {
        let set = |written, old: Option<&str>| Reply::Set { written, old: old.map(|o| o.as_bytes().to_vec()) };
        assert_eq!(reply(Shape::Set { get: false }, set(true, None)), Frame::OK);
        assert_eq!(reply(Shape::Set { get: false }, set(false, None)), Frame::Null);
        assert_eq!(reply(Shape::Set { get: true }, set(true, Some("old"))), Frame::Bulk(Bytes::from("old")));
        assert_eq!(reply(Shape::SetNx, set(false, None)), Frame::Integer(0));
        assert_eq!(reply(Shape::Integer, Reply::Int(-3)), Frame::Integer(-3));
        assert_eq!(reply(Shape::Integer, Reply::Len(Err(9))), Frame::error(PROTO_MAX_BULK));
        assert_eq!(reply(Shape::Value, Reply::Value(None)), Frame::Null);
        assert_eq!(reply(Shape::Ok, Reply::Done), Frame::OK);
        let Frame::Error(e) = reply(Shape::Integer, Reply::Error("value is not an integer".into())) else {
            panic!("an error result is an error reply")
        };
        assert!(e.starts_with(b"ERR value is not"), "{e:?}");
        let Frame::Error(e) = reply(Shape::Ok, Reply::Int(1)) else { panic!("a mismatch is an error reply") };
        assert!(e.starts_with(b"ERR internal"), "{e:?}");
    }
}
