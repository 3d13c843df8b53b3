//! The cluster changes shape while it serves, through real `shoal server`
//! processes: nodes join (`--join`) and the balancer spreads replicas and
//! leaders to them; nodes are removed (drained, then out of the map); a
//! dead node is replaced. Writers run throughout; afterwards every
//! acknowledged write is present once and every replica of a group holds
//! the same log.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{bulk, frame_text, free_ports, temp_dir, Client, Cluster, Routed, Server};
use serde_json::Value;
use shoal_proto::Frame;

/// Moves of a small keyspace take well under a second each; the bound
/// covers a loaded CI machine running debug builds.
const SHAPE_TIMEOUT: Duration = Duration::from_secs(120);

/// Flags every node gets: balance often, so a test does not wait on it.
const FAST: [&str; 2] = ["--balance-interval-ms", "300"];

fn map_of(port: u16) -> Option<Value> {
    let mut c = Client::try_connect(port)?;
    let text = frame_text(&c.try_call(&["CLUSTER", "SHOAL", "MAP"])?)?;
    serde_json::from_str(&text).ok()
}

/// Polls `f` every 100 ms until it gives `Some`, at most `SHAPE_TIMEOUT`.
fn wait_long<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
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
fn spread(map: &Value) -> (BTreeMap<u64, usize>, BTreeMap<u64, usize>) {
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

fn within_one(counts: &BTreeMap<u64, usize>) -> bool {
    let (min, max) = (counts.values().min().copied().unwrap_or(0), counts.values().max().copied().unwrap_or(0));
    max - min <= 1
}

/// `(group, role, applied, keys)` of every group a node holds (INFO).
fn groups_on(port: u16) -> Option<Vec<(String, String, String, String)>> {
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
fn wait_replicas_agree(ports: &[u16]) {
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
fn leaders(ports: &[u16]) -> Option<BTreeMap<u16, usize>> {
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
struct Writers {
    stop: Arc<AtomicBool>,
    handles: Vec<JoinHandle<Written>>,
}

#[derive(Default)]
struct Written {
    keys: Vec<String>,
    counter: String,
    increments_acked: i64,
    increments_unknown: i64,
}

impl Writers {
    fn start(ports: &[u16], threads: usize) -> Writers {
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
    fn stop_and_check(self, ports: &[u16]) {
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
fn join(name: &str, port: u16, peer_port: u16, seed: u16, more: &[&str]) -> (Server, PathBuf) {
    let dir = temp_dir(name);
    let (seed, peer) = (format!("127.0.0.1:{seed}"), peer_port.to_string());
    let mut args = vec!["--join", &seed, "--peer-port", &peer];
    args.extend(FAST);
    args.extend(more);
    (Server::start_with_args(port, &dir, &args), dir)
}

#[test]
fn grow_under_load_then_shrink() {
    let mut cluster = Cluster::start("elastic-grow", 3, &["--shards", "2", FAST[0], FAST[1]]);
    let more = free_ports(4);
    let ports = [cluster.port(1), cluster.port(2), cluster.port(3), more[0], more[1]];
    let writers = Writers::start(&ports, 2);
    // redis-py's RedisCluster writes too, through the grow and the shrink.
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/elastic_writer.py");
    let py = common::tool("python3")
        .arg(&script)
        .args(["--port", &cluster.port(3).to_string(), "--seconds", "12", "--prefix", "py"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the redis-py writer");

    // Grow: two nodes join; the balancer gives each its share.
    let (node4, _) = join("elastic-grow-node4", more[0], more[2], cluster.port(1), &[]);
    let (node5, _) = join("elastic-grow-node5", more[1], more[3], cluster.port(2), &[]);
    let started = Instant::now();
    let mut last = String::new();
    wait_long("replicas and leaders spread over 5 nodes", || {
        let map = map_of(cluster.port(3))?;
        let (replicas, preferred) = spread(&map);
        let settled = replicas.len() == 5 && map["moves"].as_object()?.is_empty();
        let led = leaders(&ports)?;
        let now = format!("replicas {replicas:?}, preferred {preferred:?}, leading {led:?}, moves {}", map["moves"]);
        if now != last {
            eprintln!("{:?}: {now}", started.elapsed());
            last = now;
        }
        (settled && within_one(&replicas) && within_one(&preferred) && led.values().all(|&n| (1..=2).contains(&n)))
            .then_some(())
    });
    println!("grown to 5 nodes in {:?}: {last}", started.elapsed());

    // Shrink: two of the original three leave.
    for node in ["1", &format!("127.0.0.1:{}", cluster.port(2))] {
        let reply = cluster.client(3).call(&["CLUSTER", "SHOAL", "REMOVE-NODE", node]);
        assert!(frame_text(&reply).is_some_and(|t| t.contains("draining")), "REMOVE-NODE {node}: {reply:?}");
    }
    let remaining = [cluster.port(3), more[0], more[1]];
    wait_long("nodes 1 and 2 drained and removed", || {
        let map = map_of(cluster.port(3))?;
        let (replicas, _) = spread(&map);
        let states: Vec<&str> = ["1", "2"].iter().map(|n| map["nodes"][n]["state"].as_str().unwrap_or("")).collect();
        (states == ["Removed", "Removed"] && replicas.len() == 3 && replicas.values().all(|&r| r == 6)).then_some(())
    });
    for node in [1, 2] {
        let status = cluster.take(node).wait_exit();
        assert!(status.success(), "a removed node stops by itself, cleanly: {status}");
    }
    writers.stop_and_check(&remaining);
    let out = py.wait_with_output().expect("the redis-py writer");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && said.starts_with("ok "),
        "redis-py: {said}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!("redis-py: {said}");
    wait_replicas_agree(&remaining);
    drop((node4, node5));
}

#[test]
fn a_dead_node_is_replaced_by_a_new_one() {
    let mut cluster = Cluster::start("elastic-replace", 3, &["--shards", "1", "--balance", "off", FAST[0], FAST[1]]);
    let more = free_ports(2);
    let ports = [cluster.port(1), cluster.port(2), cluster.port(3), more[0]];
    let writers = Writers::start(&ports, 2);
    // Node 3 dies once the writers have written (their first key is there).
    let mut reader = Routed::new(&ports[..3]);
    wait_long("the writers' first key", || (reader.call(&["GET", "w0:0"])? == bulk("w0:0")).then_some(()));
    cluster.kill(3);
    let (node4, _) = join("elastic-replace-node4", more[0], more[1], cluster.port(1), &["--balance", "off"]);
    let reply = cluster.client(1).call(&["CLUSTER", "SHOAL", "REMOVE-NODE", "3"]);
    assert!(frame_text(&reply).is_some_and(|t| t.contains("draining")), "REMOVE-NODE 3: {reply:?}");
    wait_long("node 3's replicas rebuilt on node 4", || {
        let map = map_of(cluster.port(1))?;
        let (replicas, _) = spread(&map);
        let done = map["nodes"]["3"]["state"] == "Removed" && map["moves"].as_object()?.is_empty();
        (done && replicas == BTreeMap::from([(1, 3), (2, 3), (4, 3)])).then_some(())
    });
    let live = [cluster.port(1), cluster.port(2), more[0]];
    writers.stop_and_check(&live);
    wait_replicas_agree(&live);
    drop(node4);
}

/// `shoal cluster …` on node `port`: its stdout, asserting success.
fn cluster_tool(port: u16, words: &[&str]) -> String {
    let addr = format!("127.0.0.1:{port}");
    let mut cmd = std::process::Command::new(common::BIN);
    cmd.arg("cluster").args(words).args(["--cluster", &addr]);
    let out = common::run_tool(&format!("shoal cluster {}", words.join(" ")), &mut cmd);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The node numbers holding `shard`'s voters, and its learners, in `map`.
fn holders(map: &Value, shard: u16) -> (Vec<u64>, Vec<u64>) {
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
fn leader_port(ports: &[u16], group: &str) -> Option<u16> {
    ports.iter().copied().find(|&p| {
        groups_on(p).is_some_and(|groups| groups.iter().any(|(g, role, _, _)| g == group && role == "leader"))
    })
}

/// With balancing off, an operator moves a replica and a leadership by
/// hand (`shoal cluster move-replica`, `transfer-leader`), and reads the
/// result (`shoal cluster nodes`, `shards`).
#[test]
fn manual_moves_and_leader_transfer_with_the_cli() {
    let mut cluster = Cluster::start(
        "elastic-manual",
        3,
        &["--shards", "1", "--replicas", "2", "--balance", "off", FAST[0], FAST[1]],
    );
    let more = free_ports(2);
    let (node4, _) = join("elastic-manual-node4", more[0], more[1], cluster.port(2), &["--balance", "off"]);
    let ports = [cluster.port(1), cluster.port(2), cluster.port(3), more[0]];
    let mut client = Routed::new(&ports);
    for i in 0..200 {
        assert_eq!(client.call(&["SET", &format!("m{i}"), "v"]), Some(Frame::OK));
    }
    let nodes = cluster_tool(cluster.port(3), &["nodes"]);
    assert_eq!(nodes.lines().filter(|l| l.contains(" up ")).count(), 4, "four nodes up:\n{nodes}");

    let (before, _) = holders(&map_of(cluster.port(1)).unwrap(), 0);
    let from = before[1].to_string();
    let said = cluster_tool(cluster.port(3), &["move-replica", "0", &from, &format!("127.0.0.1:{}", more[0])]);
    assert!(said.contains("move") && said.contains("started"), "{said}");
    wait_long("shard 0's replica moved to node 4", || {
        let map = map_of(cluster.port(1))?;
        let (voters, learners) = holders(&map, 0);
        (voters.contains(&4) && !voters.contains(&before[1]) && learners.is_empty()).then_some(())
    });
    let shards = cluster_tool(cluster.port(1), &["shards"]);
    assert!(shards.lines().nth(1).is_some_and(|l| l.contains('4')), "shard 0 lists node 4:\n{shards}");

    let said = cluster_tool(cluster.port(2), &["transfer-leader", "0", "4"]);
    assert!(said.contains("led by node 4"), "{said}");
    wait_long("node 4 leading shard 0", || (leader_port(&ports, "group0")? == more[0]).then_some(()));
    for i in 0..200 {
        assert_eq!(client.call(&["GET", &format!("m{i}")]), Some(bulk("v")), "m{i} after the moves");
    }

    // Back to the node it left, from its leader (which hands leadership
    // off first): a new replica there, with an id of its own. Restarted
    // with its bootstrap flags, that node must open the replica the map
    // gives it, not the one the flags once did.
    let back = before[1] as usize;
    let said = cluster_tool(cluster.port(1), &["move-replica", "0", "4", &back.to_string()]);
    assert!(said.contains("started"), "{said}");
    wait_long("shard 0's replica moved back", || {
        let (voters, learners) = holders(&map_of(cluster.port(1))?, 0);
        (voters.contains(&before[1]) && !voters.contains(&4) && learners.is_empty()).then_some(())
    });
    cluster.kill(back);
    cluster.restart(back);
    wait_long("the restarted node's replica of shard 0", || {
        let line = groups_on(cluster.port(back))?;
        line.iter().any(|(g, role, _, _)| g == "group0" && (role == "follower" || role == "leader")).then_some(())
    });
    let info = frame_text(&cluster.client(back).call(&["INFO", "replication"])).unwrap();
    let group0 = info.lines().find(|l| l.starts_with("group0:")).unwrap().to_string();
    assert!(group0.contains(&format!("me={back}/")), "a new replica, not the bootstrap one: {group0}");
    let mut client = Routed::new(&ports);
    for i in 0..200 {
        assert_eq!(client.call(&["GET", &format!("m{i}")]), Some(bulk("v")), "m{i} after the restart");
    }
    wait_replicas_agree(&ports);
    drop(node4);
}

/// Replica moves where a node dies mid-way (kill -9, then restart): the
/// shard's leader, the move's target, the metadata leader. Each move
/// completes, and the moved shard holds every write on every replica.
#[test]
fn a_move_completes_through_crashes() {
    let mut cluster =
        Cluster::start("elastic-crash", 3, &["--shards", "1", "--replicas", "2", "--balance", "off", FAST[0], FAST[1]]);
    let ports = [cluster.port(1), cluster.port(2), cluster.port(3)];
    let mut client = Routed::new(&ports);
    let value = "x".repeat(2048);
    for i in 0..3000 {
        assert_eq!(client.call(&["SET", &format!("c{i}"), &value]), Some(Frame::OK));
    }
    let victims = ["shard leader", "target", "metadata leader", "source"];
    for (round, victim) in victims.iter().enumerate() {
        let shard = (round % 3) as u16;
        let map = map_of(cluster.port(1)).unwrap();
        let (voters, _) = holders(&map, shard);
        let to = (1..=3).find(|n| !voters.contains(n)).unwrap();
        let leader = leader_port(&ports, &format!("group{shard}")).map(|p| cluster.node_of_port(p) as u64);
        let from = *voters.iter().find(|&&v| Some(v) != leader).unwrap_or(&voters[0]);
        let kill = match *victim {
            "shard leader" => leader.unwrap() as usize,
            "target" => to as usize,
            "source" => from as usize,
            _ => {
                let port = wait_long("a metadata leader", || leader_port(&ports, "meta"));
                cluster.node_of_port(port)
            }
        };
        let reply = cluster.client(kill % 3 + 1).call(&[
            "CLUSTER",
            "SHOAL",
            "MOVE-REPLICA",
            &shard.to_string(),
            &from.to_string(),
            &to.to_string(),
        ]);
        assert!(frame_text(&reply).is_some_and(|t| t.contains("started")), "round {round}: {reply:?}");
        cluster.kill(kill);
        std::thread::sleep(Duration::from_millis(500));
        cluster.restart(kill);
        let alive = cluster.port(kill % 3 + 1);
        wait_long(&format!("the move of shard {shard} ({victim} killed) to finish"), || {
            let map = map_of(alive)?;
            let (voters, learners) = holders(&map, shard);
            (voters.contains(&to)
                && !voters.contains(&from)
                && learners.is_empty()
                && map["moves"].as_object()?.is_empty())
            .then_some(())
        });
        println!("round {round}: shard {shard} moved {from} -> {to} with the {victim} (node {kill}) killed");
    }
    // A new client: the old one's connections died with the killed nodes.
    let mut client = Routed::new(&ports);
    for i in 0..3000 {
        assert_eq!(client.call(&["GET", &format!("c{i}")]), Some(bulk(&value)), "c{i} lost");
    }
    wait_replicas_agree(&ports);
}
