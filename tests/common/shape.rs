//! Helpers for tests of a cluster changing shape (tests/elastic.rs,
//! tests/resharding.rs): the map, where replicas and leaders are, writers
//! that run through the changes and check every acknowledged write after.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;
use shoal_proto::Frame;

use super::{bulk, frame_text, temp_dir, Client, Routed, Server};

/// Moves of a small keyspace take well under a second each; the bound
/// covers a loaded CI machine running debug builds.
pub const SHAPE_TIMEOUT: Duration = Duration::from_secs(120);

/// Flags every node gets: balance often, so a test does not wait on it.
pub const FAST: [&str; 2] = ["--balance-interval-ms", "300"];

pub fn map_of(port: u16) -> Option<Value> {
    let mut c = Client::try_connect(port)?;
    let text = frame_text(&c.try_call(&["CLUSTER", "SHOAL", "MAP"])?)?;
    serde_json::from_str(&text).ok()
}

/// Polls `f` every 100 ms until it gives `Some`, at most `SHAPE_TIMEOUT`.
pub fn wait_long<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + SHAPE_TIMEOUT;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Per node (by number): replicas held and shards it is preferred leader of.
pub fn spread(map: &Value) -> (BTreeMap<u64, usize>, BTreeMap<u64, usize>) {
    let up: Vec<u64> = map["nodes"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, n)| n["state"] == "Up")
        .map(|(k, _)| k.parse().unwrap())
        .collect();
    let mut replicas: BTreeMap<u64, usize> = up.iter().map(|&n| (n, 0)).collect();
    let mut preferred = replicas.clone();
    for shard in map["shards"].as_object().unwrap().values() {
        for id in shard["replicas"].as_object().unwrap().keys() {
            *replicas.entry(id.parse::<u64>().unwrap() & 0xffff_ffff).or_default() += 1;
        }
        *preferred.entry(shard["preferred_leader"].as_u64().unwrap() & 0xffff_ffff).or_default() += 1;
    }
    (replicas, preferred)
}

pub fn within_one(counts: &BTreeMap<u64, usize>) -> bool {
    let (min, max) = (counts.values().min().copied().unwrap_or(0), counts.values().max().copied().unwrap_or(0));
    max - min <= 1
}

/// `(group, role, applied, keys)` of every group a node holds (INFO).
pub fn groups_on(port: u16) -> Option<Vec<(String, String, String, String)>> {
    let mut c = Client::try_connect(port)?;
    let text = frame_text(&c.try_call(&["INFO", "replication"])?)?;
    let mut out = Vec::new();
    for line in text.lines().filter(|l| l.starts_with("group") || l.starts_with("meta:")) {
        let (group, fields) = line.trim_end().split_once(':')?;
        let fields: HashMap<&str, &str> = fields.split(',').filter_map(|kv| kv.split_once('=')).collect();
        out.push((
            group.to_string(),
            fields["role"].to_string(),
            fields["applied"].to_string(),
            fields["keys"].to_string(),
        ));
    }
    Some(out)
}

/// Waits until every replica of every group, on `ports`, has applied the
/// same log and holds the same number of keys (writers stopped).
pub fn wait_replicas_agree(ports: &[u16]) {
    wait_long("every replica of every group to hold the same log", || {
        let mut seen: HashMap<String, (String, String)> = HashMap::new();
        for &port in ports {
            for (group, _, applied, keys) in groups_on(port)? {
                if let Some(other) = seen.insert(group, (applied.clone(), keys.clone())) {
                    if other != (applied, keys) {
                        return None;
                    }
                }
            }
        }
        Some(())
    });
}

/// Leaders per node, from every node's own INFO (a group counted once).
pub fn leaders(ports: &[u16]) -> Option<BTreeMap<u16, usize>> {
    let mut counts = BTreeMap::new();
    for &port in ports {
        let led = groups_on(port)?.iter().filter(|(g, role, _, _)| g.starts_with("group") && role == "leader").count();
        counts.insert(port, led);
    }
    Some(counts)
}

/// Writers that run until stopped: each sets unique keys and INCRs its
/// own counter through the leaders (following MOVED), recording what was
/// acknowledged and what has an unknown outcome.
pub struct Writers {
    stop: Arc<AtomicBool>,
    handles: Vec<JoinHandle<Written>>,
}

#[derive(Default)]
pub struct Written {
    pub keys: Vec<String>,
    pub counter: String,
    pub increments_acked: i64,
    pub increments_unknown: i64,
}

impl Writers {
    pub fn start(ports: &[u16], threads: usize) -> Writers {
        let stop = Arc::new(AtomicBool::new(false));
        let handles = (0..threads)
            .map(|t| {
                let (ports, stop) = (ports.to_vec(), Arc::clone(&stop));
                std::thread::spawn(move || {
                    let mut client = Routed::new(&ports);
                    let mut written = Written { counter: format!("counter:{t}"), ..Written::default() };
                    let mut i = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let key = format!("w{t}:{i}");
                        match client.call(&["SET", &key, &key]) {
                            Some(reply) if reply == Frame::OK => written.keys.push(key),
                            Some(other) => panic!("SET {key} gave {other:?}"),
                            None => {}
                        }
                        match client.call(&["INCR", &written.counter]) {
                            Some(Frame::Integer(_)) => written.increments_acked += 1,
                            Some(other) => panic!("INCR gave {other:?}"),
                            None => written.increments_unknown += 1,
                        }
                        i += 1;
                    }
                    written
                })
            })
            .collect();
        Writers { stop, handles }
    }

    /// Stops the writers and checks, through `ports`, that every
    /// acknowledged write is there, and each counter counts every
    /// acknowledged increment once (those with unknown outcomes at most
    /// once).
    pub fn stop_and_check(self, ports: &[u16]) {
        self.stop.store(true, Ordering::Relaxed);
        let written: Vec<Written> = self.handles.into_iter().map(|h| h.join().expect("writer")).collect();
        let mut client = Routed::new(ports);
        let mut keys = 0;
        for w in &written {
            for key in &w.keys {
                assert_eq!(client.call(&["GET", key]), Some(bulk(key)), "acknowledged {key} lost");
            }
            keys += w.keys.len();
            let value = match client.call(&["GET", &w.counter]) {
                Some(Frame::Bulk(v)) => String::from_utf8_lossy(&v).parse::<i64>().unwrap(),
                other => panic!("{}: {other:?}", w.counter),
            };
            let (acked, unknown) = (w.increments_acked, w.increments_unknown);
            assert!(
                (acked..=acked + unknown).contains(&value),
                "{} = {value}: {acked} acknowledged, {unknown} unknown",
                w.counter
            );
        }
        assert!(keys > 0, "the writers wrote");
        println!("{keys} acknowledged keys checked");
    }
}

/// A node that joins through `seed` on `port`/`peer_port`.
pub fn join(name: &str, port: u16, peer_port: u16, seed: u16, more: &[&str]) -> (Server, PathBuf) {
    let dir = temp_dir(name);
    let (seed, peer) = (format!("127.0.0.1:{seed}"), peer_port.to_string());
    let mut args = vec!["--join", &seed, "--peer-port", &peer];
    args.extend(FAST);
    args.extend(more);
    (Server::start_with_args(port, &dir, &args), dir)
}

/// `shoal cluster …` on node `port`: its stdout, asserting success.
pub fn cluster_tool(port: u16, words: &[&str]) -> String {
    let addr = format!("127.0.0.1:{port}");
    let mut cmd = std::process::Command::new(super::BIN);
    cmd.arg("cluster").args(words).args(["--cluster", &addr]);
    let out = super::run_tool(&format!("shoal cluster {}", words.join(" ")), &mut cmd);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The node numbers holding `shard`'s voters, and its learners, in `map`.
pub fn holders(map: &Value, shard: u16) -> (Vec<u64>, Vec<u64>) {
    let mut voters = Vec::new();
    let mut learners = Vec::new();
    for (id, role) in map["shards"][shard.to_string()]["replicas"].as_object().unwrap() {
        let node = id.parse::<u64>().unwrap() & 0xffff_ffff;
        match role.as_str() {
            Some("Voter") => voters.push(node),
            _ => learners.push(node),
        }
    }
    voters.sort();
    (voters, learners)
}

/// Which port's node leads `group` (by its own INFO).
pub fn leader_port(ports: &[u16], group: &str) -> Option<u16> {
    ports.iter().copied().find(|&p| {
        groups_on(p).is_some_and(|groups| groups.iter().any(|(g, role, _, _)| g == group && role == "leader"))
    })
}
