//! COMMAND's replies, built from the command table: the entries cluster
//! clients read key positions from, and the docs redis-cli reads hints from.

use bytes::Bytes;
use shoal_proto::command::{lookup, CommandSpec, COMMANDS};
use shoal_proto::Frame;

/// Every command, or the named ones (`Null` for unknown names).
pub(super) fn command_info(names: Option<Vec<Bytes>>) -> Frame {
    match names {
        None => Frame::Array(COMMANDS.iter().copied().map(entry).collect()),
        Some(names) => Frame::Array(names.iter().map(|n| lookup(n).map_or(Frame::Null, entry)).collect()),
    }
}

/// One COMMAND entry: name, arity, flags, first key, last key, step, ACL
/// categories, tips, key specifications, subcommands (Redis 7's ten fields).
fn entry(spec: &CommandSpec) -> Frame {
    Frame::Array(vec![
        Frame::bulk_str(spec.name),
        Frame::Integer(spec.arity),
        Frame::Set(spec.flags.iter().map(|f| Frame::simple(f)).collect()),
        Frame::Integer(spec.first_key),
        Frame::Integer(spec.last_key),
        Frame::Integer(spec.step),
        Frame::Set(spec.acl_categories.iter().map(|c| Frame::simple(c)).collect()),
        Frame::Array(vec![]),
        Frame::Array(vec![]),
        Frame::Array(spec.subcommands.iter().map(entry).collect()),
    ])
}

pub(super) fn command_docs(names: Option<Vec<Bytes>>) -> Frame {
    let specs: Vec<&CommandSpec> = match names {
        None => COMMANDS.iter().copied().collect(),
        Some(names) => names.iter().filter_map(|n| lookup(n)).collect(),
    };
    Frame::Map(specs.into_iter().map(|s| (Frame::bulk_str(s.name), doc(s))).collect())
}

fn doc(spec: &CommandSpec) -> Frame {
    let mut fields = vec![
        (Frame::bulk_str("summary"), Frame::bulk_str(spec.summary)),
        (Frame::bulk_str("since"), Frame::bulk_str(spec.since)),
        (Frame::bulk_str("group"), Frame::bulk_str(spec.group)),
    ];
    if !spec.subcommands.is_empty() {
        let subs = spec.subcommands.iter().map(|s| (Frame::bulk_str(s.name), doc(s))).collect();
        fields.push((Frame::bulk_str("subcommands"), Frame::Map(subs)));
    }
    Frame::Map(fields)
}

pub(super) fn command_count() -> Frame {
    Frame::Integer(COMMANDS.len() as i64)
}

pub(super) fn command_list() -> Frame {
    Frame::Array(COMMANDS.iter().map(|s| Frame::bulk_str(s.name)).collect())
}
