//! Parsing of cluster commands: CLUSTER … READONLY READWRITE ASKING.

use super::{Args, Command, CommandError, GroupResult};

pub(super) fn parse(name: &str, mut a: Args) -> GroupResult {
    let cmd = match name {
        "cluster|slots" => Ok(Command::ClusterSlots),
        "cluster|shards" => Ok(Command::ClusterShards),
        "cluster|nodes" => Ok(Command::ClusterNodes),
        "cluster|info" => Ok(Command::ClusterInfo),
        "cluster|myid" => Ok(Command::ClusterMyId),
        "cluster|myshardid" => Ok(Command::ClusterMyShardId),
        "cluster|keyslot" => a.take().map(Command::ClusterKeySlot),
        "cluster|countkeysinslot" => slot(&mut a).map(Command::ClusterCountKeysInSlot),
        "cluster|getkeysinslot" => getkeysinslot(a),
        "readonly" => Ok(Command::ReadOnly),
        "readwrite" => Ok(Command::ReadWrite),
        "asking" => Ok(Command::Asking),
        _ => return Err(a),
    };
    Ok(cmd)
}

fn slot(a: &mut Args) -> Result<u16, CommandError> {
    let n = a.next_i64()?;
    u16::try_from(n)
        .ok()
        .filter(|&s| s < shoal_engine::slot::SLOT_COUNT)
        .ok_or_else(|| CommandError("ERR Invalid slot".into()))
}

fn getkeysinslot(mut a: Args) -> Result<Command, CommandError> {
    // Redis checks both numbers, then gives one message for either.
    let invalid = || CommandError("ERR Invalid slot or number of keys".into());
    let slot = a.next_i64()?;
    let count = a.next_i64()?;
    let slot = u16::try_from(slot).ok().filter(|&s| s < shoal_engine::slot::SLOT_COUNT).ok_or_else(invalid)?;
    let count = usize::try_from(count).map_err(|_| invalid())?;
    Ok(Command::ClusterGetKeysInSlot { slot, count })
}
