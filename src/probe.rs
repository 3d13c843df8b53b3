//! Minimal async RESP calls used by `shoal local` to see whether the
//! cluster is up: PING every node, and check every node reaches every other.

use bytes::BytesMut;
use shoal_proto::{parse_frame, Frame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends one command and reads one reply, within a second.
pub async fn call(port: u16, args: &[&str]) -> Option<Frame> {
    let exchange = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        let mut out = format!("*{}\r\n", args.len());
        for a in args {
            out.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        stream.write_all(out.as_bytes()).await.ok()?;
        let mut buf = BytesMut::new();
        loop {
            if let Some((frame, _)) = parse_frame(&buf).ok()? {
                return Some(frame);
            }
            if stream.read_buf(&mut buf).await.ok()? == 0 {
                return None;
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(1), exchange).await.ok().flatten()
}

/// Every node answers, sees all the others (so all agree on the layout),
/// and knows a reachable leader for every slot.
pub async fn cluster_ready(ports: &[u16]) -> bool {
    let reachable = format!("cluster_reachable_nodes:{}\r\n", ports.len());
    let wants = [reachable.as_str(), "cluster_state:ok\r\n"];
    for &port in ports {
        let Some(Frame::Verbatim(_, text) | Frame::Bulk(text)) = call(port, &["CLUSTER", "INFO"]).await else {
            return false;
        };
        if !wants.iter().all(|want| text.windows(want.len()).any(|w| w == want.as_bytes())) {
            return false;
        }
    }
    true
}
