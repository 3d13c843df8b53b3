//! DEL EXISTS EXPIRE* TTL PTTL PERSIST TYPE KEYS SCAN.

use bytes::Bytes;
use shoal_engine::{Db, Millis, Ttl, WriteOp};
use shoal_proto::command::{Scan, TimeUnit};
use shoal_proto::{Command, CommandError, Frame};

use super::write;
use crate::state::Shared;

pub(super) fn run(shared: &Shared, cmd: Command, now: Millis) -> Result<Frame, CommandError> {
    let db = &shared.db;
    Ok(match cmd {
        Command::Del(keys) => Frame::Integer(write::count(shared, WriteOp::Delete { keys }, now) as i64),
        Command::Exists(keys) => Frame::Integer(db.count_existing(&keys, now) as i64),
        Command::Expire { key, expiry, condition, command } => {
            let at = expiry.resolve(now).ok_or_else(|| CommandError::invalid_expire(command))?;
            Frame::Integer(i64::from(write::flag(shared, WriteOp::ExpireAt { key, at, condition }, now)))
        }
        Command::Ttl { key, unit } => Frame::Integer(match db.ttl(&key, now) {
            Ttl::Missing => -2,
            Ttl::Persistent => -1,
            Ttl::ExpiresIn(ms) if unit == TimeUnit::Millis => ms as i64,
            // Redis rounds to the nearest second.
            Ttl::ExpiresIn(ms) => ms.saturating_add(500) as i64 / 1000,
        }),
        Command::Persist(key) => Frame::Integer(i64::from(write::flag(shared, WriteOp::Persist { key }, now))),
        Command::Type(key) => Frame::simple(if db.exists(&key, now) { "string" } else { "none" }),
        Command::Keys(pattern) => Frame::bulk_array(db.keys(&pattern, now)),
        Command::Scan(scan) => scan_reply(db, scan, now),
        other => unreachable!("not a keyspace command: {other:?}"),
    })
}

fn scan_reply(db: &Db, scan: Scan, now: Millis) -> Frame {
    let (next, mut keys) = db.scan(scan.cursor, scan.pattern.as_deref(), scan.count, now);
    // Every shoal value is a string; any other TYPE filter matches nothing.
    if scan.type_filter.is_some_and(|t| !t.eq_ignore_ascii_case(b"string")) {
        keys.clear();
    }
    Frame::Array(vec![Frame::Bulk(Bytes::from(next.to_string())), Frame::bulk_array(keys)])
}
