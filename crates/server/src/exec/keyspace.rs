//! DEL EXISTS EXPIRE* TTL PTTL PERSIST TYPE (one group), KEYS SCAN (every
//! group led here).

use bytes::Bytes;
use shoal_engine::{Db, Millis, Ttl, WriteOp, SCAN_CURSOR_BITS};
use shoal_proto::command::{Scan, TimeUnit};
use shoal_proto::{Command, CommandError, Frame};

use super::write::{self, Shape};
use super::Outcome;
use crate::route::Target;
use crate::state::Shared;

pub(super) fn run((db, target): (&Db, Target), cmd: Command, now: Millis) -> Result<Outcome, CommandError> {
    let write = |op| Ok(write::keyed(target, op, Shape::Integer));
    let reply = match cmd {
        Command::Del(keys) => return write(WriteOp::Delete { keys }),
        Command::Exists(keys) => Frame::Integer(db.count_existing(&keys, now) as i64),
        Command::Expire { key, expiry, condition, command } => {
            let at = expiry.resolve(now).ok_or_else(|| CommandError::invalid_expire(command))?;
            return write(WriteOp::ExpireAt { key, at, condition });
        }
        Command::Ttl { key, unit } => Frame::Integer(match db.ttl(&key, now) {
            Ttl::Missing => -2,
            Ttl::Persistent => -1,
            Ttl::ExpiresIn(ms) if unit == TimeUnit::Millis => ms as i64,
            // Redis rounds to the nearest second.
            Ttl::ExpiresIn(ms) => ms.saturating_add(500) as i64 / 1000,
        }),
        Command::Persist(key) => return write(WriteOp::Persist { key }),
        Command::Type(key) => Frame::simple(db.kind(&key, now).map_or("none", shoal_engine::Kind::name)),
        other => unreachable!("not a keyed keyspace command: {other:?}"),
    };
    Ok(Outcome::Reply(reply))
}

/// KEYS and SCAN over the groups this node leads (as a Redis Cluster
/// master lists its own slots). Not linearizable: no barrier is taken.
pub(super) fn run_keyless(shared: &Shared, cmd: Command, now: Millis) -> Result<Frame, CommandError> {
    Ok(match cmd {
        Command::Keys(pattern) => Frame::bulk_array(shared.shards.led().flat_map(|(_, db)| db.keys(&pattern, now))),
        Command::Scan(scan) => scan_reply(shared, scan, now),
        Command::RandomKey => random_key(shared, now),
        other => unreachable!("not a keyless keyspace command: {other:?}"),
    })
}

/// A SCAN cursor is `(group index << SCAN_CURSOR_BITS) | engine cursor`:
/// the engine leaves the top bits free. Groups are visited in the order
/// of `Shards::held`; one not led here contributes nothing.
fn scan_reply(shared: &Shared, scan: Scan, now: Millis) -> Frame {
    let held = shared.shards.held();
    let mut index = (scan.cursor >> SCAN_CURSOR_BITS) as usize;
    let mut inner = scan.cursor & ((1 << SCAN_CURSOR_BITS) - 1);
    let mut keys = Vec::new();
    let mut next = 0;
    while let Some(&group) = held.get(index) {
        let db = shared.shards.db(group).filter(|_| shared.shards.is_leader(group));
        let (after, page) = db.map_or((0, Vec::new()), |db| db.scan(inner, scan.pattern.as_deref(), scan.count, now));
        keys = page;
        if after != 0 {
            next = ((index as u64) << SCAN_CURSOR_BITS) | after;
            break;
        }
        // This group is done: go on to the next, starting at its beginning.
        index += 1;
        inner = 0;
        if !keys.is_empty() {
            if index < held.len() {
                next = (index as u64) << SCAN_CURSOR_BITS;
            }
            break;
        }
    }
    if let Some(filter) = scan.type_filter {
        // An unknown type name matches nothing, as in Redis.
        let kind = shoal_engine::Kind::from_name(&filter);
        keys.retain(|k| {
            let db = shared.shards.db(shared.shards.group_of_slot(shoal_engine::slot::key_slot(k)));
            kind.is_some() && db.and_then(|db| db.kind(k, now)) == kind
        });
    }
    Frame::Array(vec![Frame::Bulk(Bytes::from(next.to_string())), Frame::bulk_array(keys)])
}

/// RANDOMKEY over the groups led here, each chosen by its share of keys.
fn random_key(shared: &Shared, now: Millis) -> Frame {
    let dbs: Vec<_> = shared.shards.led().map(|(_, db)| db).collect();
    let total: usize = dbs.iter().map(|db| db.len()).sum();
    if total == 0 {
        return Frame::Null;
    }
    let seed = super::data::seed();
    let mut pick = (seed % total as u64) as usize;
    for db in &dbs {
        if pick < db.len() {
            return Frame::optional_bulk(db.random_key(seed, now));
        }
        pick -= db.len();
    }
    Frame::Null
}
