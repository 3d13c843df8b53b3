//! `shoal status`: the cluster as a table. Node health comes from CLUSTER
//! NODES as seen by a seed, key counts from each node (DBSIZE) and, per
//! shard, from COUNTKEYSINSLOT over its slots, pipelined.

use bytes::Bytes;
use shoal_client::ClusterClient;
use shoal_proto::Frame;

struct NodeLine {
    id: String,
    addr: String,
    flags: String,
    link: String,
    ranges: Vec<(u16, u16)>,
}

fn parse_nodes(text: &str) -> Vec<NodeLine> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 8 {
                return None;
            }
            let addr = f[1].split('@').next().unwrap_or(f[1]).to_string();
            let ranges = f[8..]
                .iter()
                .filter_map(|r| match r.split_once('-') {
                    Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                    None => r.parse().ok().map(|s| (s, s)),
                })
                .collect();
            Some(NodeLine { id: f[0].to_string(), addr, flags: f[2].to_string(), link: f[7].to_string(), ranges })
        })
        .collect()
}

fn text_of(frame: Frame) -> Result<String, String> {
    match frame {
        Frame::Bulk(b) | Frame::Verbatim(_, b) => Ok(String::from_utf8_lossy(&b).into_owned()),
        Frame::Error(e) => Err(String::from_utf8_lossy(&e).into_owned()),
        other => Err(format!("unexpected reply {other:?}")),
    }
}

fn words(w: &[&str]) -> Vec<Bytes> {
    w.iter().map(|s| Bytes::copy_from_slice(s.as_bytes())).collect()
}

async fn keys_in_range(client: &ClusterClient, addr: &str, (start, end): (u16, u16)) -> Option<i64> {
    let commands: Vec<Vec<Bytes>> =
        (start..=end).map(|slot| words(&["CLUSTER", "COUNTKEYSINSLOT", &slot.to_string()])).collect();
    let replies = client.call_many_at(addr, &commands).await.ok()?;
    replies.into_iter().map(|r| if let Frame::Integer(n) = r { Some(n) } else { None }).sum()
}

pub async fn print(client: &ClusterClient) -> Result<(), String> {
    let seed = client.slot_map().nodes().first().cloned().ok_or("no node known")?;
    let nodes = match client.call_at(&seed, &words(&["CLUSTER", "NODES"])).await {
        Ok(reply) => parse_nodes(&text_of(reply)?),
        Err(e) => return Err(format!("{e:?}")),
    };
    println!("{:<4} {:<22} {:<40} {:<14} {:>10}", "NODE", "ADDRESS", "ID", "STATE", "KEYS");
    for (i, node) in nodes.iter().enumerate() {
        let keys = match client.call_at(&node.addr, &words(&["DBSIZE"])).await {
            Ok(Frame::Integer(n)) => n.to_string(),
            _ => "-".into(),
        };
        let state = if node.flags.contains("fail") { "failed" } else { node.link.as_str() };
        println!("{:<4} {:<22} {:<40} {:<14} {:>10}", i + 1, node.addr, node.id, state, keys);
    }
    println!();
    println!("{:<12} {:<22} {:>10}", "SLOTS", "PRIMARY", "KEYS");
    let mut shards: Vec<(u16, u16, &str)> =
        nodes.iter().flat_map(|n| n.ranges.iter().map(move |&(a, b)| (a, b, n.addr.as_str()))).collect();
    shards.sort();
    for (start, end, addr) in shards {
        let keys = keys_in_range(client, addr, (start, end)).await.map_or("-".into(), |n| n.to_string());
        println!("{:<12} {:<22} {:>10}", format!("{start}-{end}"), addr, keys);
    }
    Ok(())
}
