//! `--initial-cluster 1=HOST:PORT[@PEERPORT],2=…`: the node list every node
//! is started with. PORT is the node's RESP port; PEERPORT defaults to
//! PORT + 10000, as Redis Cluster's bus port does.

use std::fmt;

/// A node's number in `--initial-cluster` (`--id`), at least 1.
pub type NodeNumber = u32;

/// Offset of the peer port from the client port when not given.
pub const PEER_PORT_OFFSET: u16 = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeAddr {
    pub number: NodeNumber,
    pub host: String,
    pub port: u16,
    pub peer_port: u16,
}

impl fmt::Display for NodeAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}:{}@{}", self.number, self.host, self.port, self.peer_port)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("--initial-cluster: '{0}' is not NUMBER=HOST:PORT[@PEERPORT]")]
    Malformed(String),
    #[error("--initial-cluster: node number {0} appears twice")]
    DuplicateNumber(NodeNumber),
    #[error("--initial-cluster: address {0} appears twice")]
    DuplicateAddress(String),
    #[error("--initial-cluster is empty")]
    Empty,
    #[error("--initial-cluster: port {0} has no peer port (PORT + 10000 exceeds 65535); give one with @PEERPORT")]
    NoPeerPort(u16),
}

/// Parses the node list, sorted by node number.
pub fn parse_initial_cluster(text: &str) -> Result<Vec<NodeAddr>, SpecError> {
    let mut nodes = Vec::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        nodes.push(parse_node(item)?);
    }
    if nodes.is_empty() {
        return Err(SpecError::Empty);
    }
    nodes.sort();
    for pair in nodes.windows(2) {
        if pair[0].number == pair[1].number {
            return Err(SpecError::DuplicateNumber(pair[0].number));
        }
    }
    let mut addrs: Vec<(String, u16)> =
        nodes.iter().flat_map(|n| [(n.host.clone(), n.port), (n.host.clone(), n.peer_port)]).collect();
    addrs.sort();
    for pair in addrs.windows(2) {
        if pair[0] == pair[1] {
            return Err(SpecError::DuplicateAddress(format!("{}:{}", pair[0].0, pair[0].1)));
        }
    }
    Ok(nodes)
}

fn parse_node(item: &str) -> Result<NodeAddr, SpecError> {
    let malformed = || SpecError::Malformed(item.to_string());
    let (number, addr) = item.split_once('=').ok_or_else(malformed)?;
    let number: NodeNumber = number.trim().parse().ok().filter(|&n| n >= 1).ok_or_else(malformed)?;
    let (addr, peer) = match addr.split_once('@') {
        Some((addr, peer)) => (addr, Some(peer.parse::<u16>().map_err(|_| malformed())?)),
        None => (addr, None),
    };
    let (host, port) = addr.rsplit_once(':').ok_or_else(malformed)?;
    let port: u16 = port.parse().ok().filter(|&p| p > 0).ok_or_else(malformed)?;
    if host.is_empty() {
        return Err(malformed());
    }
    let peer_port = match peer {
        Some(p) if p > 0 => p,
        Some(_) => return Err(malformed()),
        None => port.checked_add(PEER_PORT_OFFSET).ok_or(SpecError::NoPeerPort(port))?,
    };
    Ok(NodeAddr { number, host: host.to_string(), port, peer_port })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_sorts() {
        let nodes = parse_initial_cluster("2=127.0.0.1:7001, 1=127.0.0.1:7000@17100").unwrap();
        assert_eq!(nodes[0], NodeAddr { number: 1, host: "127.0.0.1".into(), port: 7000, peer_port: 17100 });
        assert_eq!(nodes[1].peer_port, 17001);
    }

    #[test]
    fn rejects_bad_lists() {
        assert!(matches!(parse_initial_cluster(""), Err(SpecError::Empty)));
        assert!(matches!(parse_initial_cluster("1=a:1,1=b:2"), Err(SpecError::DuplicateNumber(1))));
        assert!(matches!(parse_initial_cluster("1=a:1,2=a:1"), Err(SpecError::DuplicateAddress(_))));
        assert!(matches!(parse_initial_cluster("1=a:1,2=a:10001"), Err(SpecError::DuplicateAddress(_))));
        for bad in ["x=a:1", "0=a:1", "1=a", "1=:1", "1=a:0", "1=a:99999", "1=a:1@x", "a:1"] {
            assert!(matches!(parse_initial_cluster(bad), Err(SpecError::Malformed(_))), "{bad}");
        }
        assert!(matches!(parse_initial_cluster("1=a:60000"), Err(SpecError::NoPeerPort(60000))));
    }
}
