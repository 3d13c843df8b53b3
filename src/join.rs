//! `shoal server --join HOST:PORT`: a new node registers with a running
//! cluster through any of its nodes before it starts serving.
//!
//! The node draws a nonce (kept in its directory first, so a join retried
//! after a crash registers once), asks for `CLUSTER SHOAL JOIN nonce host
//! port peer-port`, is given a number, and waits until the cluster's map
//! lists it. It keeps both in its directory; from then on it starts like
//! any cluster node (`shoal server --dir D`) and the metadata leader adds
//! it to the metadata group and moves replicas to it.

use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use shoal_cluster::map::ClusterMap;
use shoal_proto::Frame;
use shoal_server::relay;

const NONCE_FILE: &str = "join-nonce";
const JOIN_TIMEOUT: Duration = Duration::from_secs(60);
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Joins through `seed` unless `dir` already belongs to a node.
pub async fn join(seed: &str, dir: &Path, bind: IpAddr, port: u16, peer_port: u16) -> Result<(), String> {
    if shoal_server::meta::load_node_id(dir)?.is_some() {
        return Ok(());
    }
    if bind.is_unspecified() {
        return Err("--join needs --bind to be an address the other nodes can reach, not 0.0.0.0".into());
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let nonce = nonce(dir)?;
    let host = bind.to_string();
    let deadline = Instant::now() + JOIN_TIMEOUT;
    let (nonce, port, peer_port) = (nonce.to_string(), port.to_string(), peer_port.to_string());
    let args: [&[u8]; 7] =
        [b"CLUSTER", b"SHOAL", b"JOIN", nonce.as_bytes(), host.as_bytes(), port.as_bytes(), peer_port.as_bytes()];
    let node = loop {
        match relay::call(seed, &args, CALL_TIMEOUT).await {
            Ok(Frame::Integer(node)) => break u32::try_from(node).map_err(|_| format!("{seed} gave node {node}"))?,
            Ok(Frame::Error(e)) if e.starts_with(b"TRYAGAIN") => {}
            Ok(Frame::Error(e)) => return Err(format!("{seed} refused the join: {}", String::from_utf8_lossy(&e))),
            Ok(other) => return Err(format!("{seed} answered the join with {other:?}")),
            Err(e) => tracing::warn!(error = %e, "join: will retry"),
        }
        if Instant::now() > deadline {
            return Err(format!("could not join through {seed} in {JOIN_TIMEOUT:?}"));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let map = loop {
        if let Ok(Frame::Bulk(json)) = relay::call(seed, &[b"CLUSTER", b"SHOAL", b"MAP"], CALL_TIMEOUT).await {
            let map = std::str::from_utf8(&json).map_err(|e| e.to_string()).and_then(ClusterMap::from_json)?;
            if map.nodes.contains_key(&node) {
                break map;
            }
        }
        if Instant::now() > deadline {
            return Err(format!("node {node} registered, but {seed}'s map does not list it yet"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    shoal_server::meta::save_map(dir, &map)?;
    shoal_server::meta::save_node_id(dir, node)?;
    tracing::info!(node, cluster = %map.cluster_id, epoch = map.epoch, "joined the cluster");
    Ok(())
}

/// The nonce this directory joins with: drawn once and kept.
fn nonce(dir: &Path) -> Result<u64, String> {
    let path = dir.join(NONCE_FILE);
    if let Ok(text) = std::fs::read_to_string(&path) {
        return text.trim().parse().map_err(|_| format!("{}: not a nonce", path.display()));
    }
    let nonce = rand::random::<u64>() >> 1;
    std::fs::write(&path, format!("{nonce}\n")).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(nonce)
}
