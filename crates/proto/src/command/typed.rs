//! The parser of the engine's commands: the arguments go to
//! `shoal_engine::Cmd::parse` whole (name first), and are kept, since a
//! write is logged as its arguments.

use bytes::Bytes;

use super::{Args, Command, CommandError, Data, GroupResult};

pub(super) fn parse(name: &str, a: Args) -> GroupResult {
    // `object|encoding` is sent as `object encoding`.
    let mut argv: Vec<Bytes> = name.split('|').map(|n| Bytes::copy_from_slice(n.as_bytes())).collect();
    argv.extend(a.rest());
    let parsed = shoal_engine::Cmd::parse(&argv).map(|cmd| Command::Data(Data { cmd, argv }));
    Ok(parsed.map_err(|fault| CommandError(fault.to_string())))
}
