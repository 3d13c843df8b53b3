//! PING ECHO HELLO QUIT SELECT CLIENT.

use bytes::Bytes;
use shoal_proto::command::{ClientAttr, Hello};
use shoal_proto::{Command, CommandError, Frame, Protocol};

use crate::state::{Closing, Session};

pub(super) fn run(session: &mut Session, cmd: Command, cluster: bool) -> Result<Frame, CommandError> {
    Ok(match cmd {
        Command::Ping(None) => Frame::simple("PONG"),
        Command::Ping(Some(message)) | Command::Echo(message) => Frame::Bulk(message),
        Command::Hello(hello) => return hello_reply(session, hello, cluster),
        Command::Quit => {
            session.closing = Closing::AfterReply;
            Frame::OK
        }
        Command::Select(0) => Frame::OK,
        Command::Select(_) if cluster => return Err(CommandError("ERR SELECT is not allowed in cluster mode".into())),
        Command::Select(_) => return Err(CommandError("ERR DB index is out of range".into())),
        Command::ClientSetName(name) => {
            set_name(session, name)?;
            Frame::OK
        }
        Command::ClientGetName => Frame::optional_bulk(session.name.clone()),
        Command::ClientId => Frame::Integer(session.id as i64),
        Command::ClientInfo => Frame::Verbatim(*b"txt", Bytes::from(client_info(session))),
        Command::ClientSetInfo { attr, value } => {
            if value.iter().any(|&b| !(b'!'..=b'~').contains(&b)) {
                return Err(CommandError(
                    "ERR lib-name and lib-ver cannot contain spaces, newlines or special characters.".into(),
                ));
            }
            let value = (!value.is_empty()).then_some(value);
            match attr {
                ClientAttr::LibName => session.lib_name = value,
                ClientAttr::LibVer => session.lib_ver = value,
            }
            Frame::OK
        }
        Command::ClientShoalTag { client, seq, retry } => {
            session.tag = Some(shoal_raft::WriteTag { client, seq, retry });
            Frame::OK
        }
        other => unreachable!("not a connection command: {other:?}"),
    })
}

/// CLIENT INFO's line, Redis's fields where they mean something here (no
/// pub/sub or MULTI yet: `sub=0 psub=0 multi=-1`, as in Redis for a client
/// using neither).
fn client_info(session: &Session) -> String {
    let text = |b: &Option<Bytes>| b.as_ref().map_or_else(String::new, |b| String::from_utf8_lossy(b).into_owned());
    let flags = if session.readonly { "r" } else { "N" };
    let resp = match session.protocol {
        Protocol::Resp2 => 2,
        Protocol::Resp3 => 3,
    };
    format!(
        "id={} addr={} laddr={} name={} age={} idle=0 flags={flags} db=0 sub=0 psub=0 multi=-1 cmd=client|info user=default resp={resp} lib-name={} lib-ver={}\n",
        session.id,
        session.addr,
        session.laddr,
        text(&session.name),
        session.created.elapsed().as_secs(),
        text(&session.lib_name),
        text(&session.lib_ver),
    )
}

fn set_name(session: &mut Session, name: Bytes) -> Result<(), CommandError> {
    if name.iter().any(|&b| !(b'!'..=b'~').contains(&b)) {
        return Err(CommandError("ERR Client names cannot contain spaces, newlines or special characters.".into()));
    }
    session.name = (!name.is_empty()).then_some(name);
    Ok(())
}

/// HELLO: switch protocol (2 or 3) and describe the server, as a map.
fn hello_reply(session: &mut Session, hello: Hello, cluster: bool) -> Result<Frame, CommandError> {
    let protocol = match hello.protover {
        None => session.protocol,
        Some(2) => Protocol::Resp2,
        Some(3) => Protocol::Resp3,
        Some(_) => return Err(CommandError("NOPROTO unsupported protocol version".into())),
    };
    // There are no passwords: like Redis's default `nopass` user, the
    // `default` user authenticates with any password; no other user exists.
    if hello.auth.as_ref().is_some_and(|(user, _)| user.as_ref() != b"default") {
        return Err(CommandError("WRONGPASS invalid username-password pair or user is disabled.".into()));
    }
    if let Some(name) = hello.setname {
        set_name(session, name)?;
    }
    session.protocol = protocol;
    Ok(Frame::Map(vec![
        (Frame::bulk_str("server"), Frame::bulk_str("redis")),
        (Frame::bulk_str("version"), Frame::bulk_str(crate::REDIS_VERSION)),
        (Frame::bulk_str("proto"), Frame::Integer(protocol.version())),
        (Frame::bulk_str("id"), Frame::Integer(session.id as i64)),
        (Frame::bulk_str("mode"), Frame::bulk_str(if cluster { "cluster" } else { "standalone" })),
        (Frame::bulk_str("role"), Frame::bulk_str("master")),
        (Frame::bulk_str("modules"), Frame::Array(vec![])),
    ]))
}
