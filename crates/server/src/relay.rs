//! One RESP request to another node's client port and its reply: how a
//! node relays an administrative command to the metadata group's leader,
//! and how a joining node registers.

use std::time::Duration;

use bytes::BytesMut;
use shoal_proto::reply::parse_frame;
use shoal_proto::Frame;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest reply read (a cluster map of thousands of shards fits).
const MAX_REPLY_BYTES: usize = 64 << 20;

/// Sends `args` as one command to `addr` and returns the reply, all
/// within `timeout`.
pub async fn call(addr: &str, args: &[&[u8]], timeout: Duration) -> Result<Frame, String> {
    tokio::time::timeout(timeout, exchange(addr, args))
        .await
        .map_err(|_| format!("no answer from {addr} in {timeout:?}"))?
}

async fn exchange(addr: &str, args: &[&[u8]]) -> Result<Frame, String> {
    let mut stream = TcpStream::connect(addr).await.map_err(|e| format!("{addr}: {e}"))?;
    let mut request = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        request.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        request.extend_from_slice(arg);
        request.extend_from_slice(b"\r\n");
    }
    stream.write_all(&request).await.map_err(|e| format!("{addr}: {e}"))?;
    let mut buf = BytesMut::with_capacity(4096);
    loop {
        if let Some((frame, _)) = parse_frame(&buf).map_err(|e| format!("{addr} sent a bad reply: {e}"))? {
            return Ok(frame);
        }
        if buf.len() > MAX_REPLY_BYTES {
            return Err(format!("{addr} sent a reply over {MAX_REPLY_BYTES} bytes"));
        }
        if stream.read_buf(&mut buf).await.map_err(|e| format!("{addr}: {e}"))? == 0 {
            return Err(format!("{addr} closed the connection before replying"));
        }
    }
}
