//! Cluster mode against real `shoal server` processes: the CLUSTER replies
//! agree with each other and on every node, keys are served only by their
//! slot's owner (`-MOVED`, `-CROSSSLOT`), a node started with another layout
//! is refused, and the cluster clients (redis-cli -c, redis-py RedisCluster,
//! redis-benchmark --cluster) work against it.
//!
//! The tools must be installed (CI installs them; `common::tool` fails with
//! a clear message otherwise).

mod common;

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use common::{
    assert_benchmarked, bulk, err, frame_text, free_ports, info_field, run_tool, temp_dir, tool, wait_for, Cluster,
    Routed, BIN,
};
use shoal_engine::slot::key_slot;
use shoal_proto::Frame;

const HOST: &str = "127.0.0.1";

fn array(frame: Frame) -> Vec<Frame> {
    match frame {
        Frame::Array(items) => items,
        other => panic!("expected an array, got {other:?}"),
    }
}

fn int(frame: &Frame) -> i64 {
    match frame {
        Frame::Integer(n) => *n,
        other => panic!("expected an integer, got {other:?}"),
    }
}

fn text(frame: &Frame) -> String {
    frame_text(frame).unwrap_or_else(|| panic!("expected a string, got {frame:?}"))
}

fn is_hex40(id: &str) -> bool {
    id.len() == 40 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A map reply as key/value pairs: a RESP3 map, or the flat array it is
/// lowered to in RESP2.
fn pairs(frame: Frame) -> Vec<(String, Frame)> {
    match frame {
        Frame::Map(entries) => entries.into_iter().map(|(k, v)| (text(&k), v)).collect(),
        Frame::Array(items) => {
            assert!(items.len() % 2 == 0, "odd-length map array: {items:?}");
            let mut it = items.into_iter();
            std::iter::from_fn(|| Some((text(&it.next()?), it.next().unwrap()))).collect()
        }
        other => panic!("expected a map, got {other:?}"),
    }
}

fn field(pairs: &[(String, Frame)], name: &str) -> Frame {
    pairs.iter().find(|(k, _)| k == name).unwrap_or_else(|| panic!("no {name} in {pairs:?}")).1.clone()
}

/// One CLUSTER SLOTS entry with its single (primary) node.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct SlotRange {
    start: u16,
    end: u16,
    host: String,
    port: u16,
    id: String,
}

fn cluster_slots(cluster: &Cluster, node: usize) -> Vec<SlotRange> {
    let mut ranges: Vec<SlotRange> = array(cluster.client(node).call(&["CLUSTER", "SLOTS"]))
        .into_iter()
        .map(|entry| {
            let entry = array(entry);
            assert!(entry.len() >= 3, "start, end, the master, then replicas: {entry:?}");
            let ports: std::collections::HashSet<i64> = entry[2..].iter().map(|n| int(&array(n.clone())[1])).collect();
            assert_eq!(ports.len(), entry.len() - 2, "replicas are on distinct nodes: {entry:?}");
            let triple = array(entry[2].clone());
            assert_eq!(triple.len(), 3, "node is [host, port, id]: {triple:?}");
            SlotRange {
                start: int(&entry[0]).try_into().unwrap(),
                end: int(&entry[1]).try_into().unwrap(),
                host: text(&triple[0]),
                port: int(&triple[1]).try_into().unwrap(),
                id: text(&triple[2]),
            }
        })
        .collect();
    ranges.sort();
    ranges
}

/// `-MOVED <slot> 127.0.0.1:<port of owner>`.
fn moved(slot: u16, cluster: &Cluster, owner: usize) -> Frame {
    err(&format!("MOVED {slot} {HOST}:{}", cluster.port(owner)))
}

#[test]
fn cluster_slots_cover_every_slot() {
    let cluster = Cluster::start("cluster-slots", 3, &["--shards", "3"]);
    let n = cluster.size();
    let shards = 3 * n;

    let slots = cluster_slots(&cluster, 1);
    assert_eq!(slots.len(), shards, "{slots:?}");
    // Disjoint, in order, covering 0..=16383, sizes within one.
    let mut next = 0u32;
    for r in &slots {
        assert_eq!(u32::from(r.start), next, "gap or overlap at {r:?}");
        assert!(r.end >= r.start, "{r:?}");
        next = u32::from(r.end) + 1;
    }
    assert_eq!(next, 16384);
    let sizes: Vec<u16> = slots.iter().map(|r| r.end - r.start + 1).collect();
    assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1, "{sizes:?}");
    // Shard k's primary is node (k mod N) + 1; one id per node.
    let mut ids: HashMap<u16, String> = HashMap::new();
    for (k, r) in slots.iter().enumerate() {
        assert_eq!(r.host, HOST);
        assert_eq!(r.port, cluster.port(k % n + 1), "shard {k}: {r:?}");
        assert!(is_hex40(&r.id), "node id {:?}", r.id);
        assert_eq!(ids.entry(r.port).or_insert_with(|| r.id.clone()), &r.id);
    }
    assert_eq!(ids.values().collect::<BTreeSet<_>>().len(), n, "ids distinct");
    for node in 2..=n {
        assert_eq!(cluster_slots(&cluster, node), slots, "node {node} disagrees");
    }

    for node in 1..=n {
        let mut c = cluster.client(node);

        // CLUSTER NODES: one line per node, consistent with CLUSTER SLOTS.
        let nodes_text = text(&c.call(&["CLUSTER", "NODES"]));
        let lines: Vec<&str> = nodes_text.lines().collect();
        assert_eq!(lines.len(), n, "{nodes_text}");
        let mut myself = Vec::new();
        let mut seen_ports = BTreeSet::new();
        for line in &lines {
            let f: Vec<&str> = line.split(' ').collect();
            assert!(f.len() >= 8, "short CLUSTER NODES line: {line:?}");
            let (id, addr, flags) = (f[0], f[1], f[2]);
            assert!(is_hex40(id), "{line}");
            let (ip_port, bus) = addr.split_once('@').expect("ip:port@bus");
            let (ip, port) = ip_port.split_once(':').expect("ip:port");
            assert_eq!(ip, HOST, "{line}");
            let port: u16 = port.parse().unwrap();
            let number = cluster.node_of_port(port);
            assert!(seen_ports.insert(port), "port twice: {nodes_text}");
            assert_eq!(bus, cluster.peer_ports[number - 1].to_string(), "{line}");
            let flags: Vec<&str> = flags.split(',').collect();
            assert!(flags.contains(&"master"), "{line}");
            if flags.contains(&"myself") {
                myself.push((id.to_string(), port));
            }
            assert_eq!(f[3], "-", "master has no master: {line}");
            assert_eq!(f[7], "connected", "{line}");
            assert_eq!(id, ids[&port], "CLUSTER NODES id differs from CLUSTER SLOTS: {line}");
            let ranges: Vec<(u16, u16)> = f[8..]
                .iter()
                .map(|r| match r.split_once('-') {
                    Some((a, b)) => (a.parse().unwrap(), b.parse().unwrap()),
                    None => (r.parse().unwrap(), r.parse().unwrap()),
                })
                .collect();
            let expected: Vec<(u16, u16)> = slots.iter().filter(|r| r.port == port).map(|r| (r.start, r.end)).collect();
            assert_eq!(ranges, expected, "{line}");
        }
        assert_eq!(myself.len(), 1, "myself on exactly one line: {nodes_text}");
        assert_eq!(myself[0].1, cluster.port(node), "{nodes_text}");

        assert_eq!(c.call(&["CLUSTER", "MYID"]), bulk(&myself[0].0), "CLUSTER MYID on node {node}");

        // CLUSTER SHARDS: one entry per shard, same slots and primaries.
        let mut from_shards: Vec<SlotRange> = array(c.call(&["CLUSTER", "SHARDS"]))
            .into_iter()
            .map(|entry| {
                let entry = pairs(entry);
                let range = array(field(&entry, "slots"));
                assert_eq!(range.len(), 2, "one range per shard: {range:?}");
                let nodes = array(field(&entry, "nodes"));
                assert_eq!(nodes.len(), 3, "three replicas per shard: {nodes:?}");
                for (i, node) in nodes.iter().enumerate() {
                    let desc = pairs(node.clone());
                    assert_eq!(text(&field(&desc, "role")), if i == 0 { "master" } else { "replica" });
                    assert_eq!(text(&field(&desc, "health")), "online");
                }
                let desc = pairs(nodes[0].clone());
                SlotRange {
                    start: int(&range[0]).try_into().unwrap(),
                    end: int(&range[1]).try_into().unwrap(),
                    host: text(&field(&desc, "ip")),
                    port: int(&field(&desc, "port")).try_into().unwrap(),
                    id: text(&field(&desc, "id")),
                }
            })
            .collect();
        from_shards.sort();
        assert_eq!(from_shards, slots, "CLUSTER SHARDS on node {node}");

        for (key, slot) in [
            ("123456789", 12739),
            ("foo", 12182),
            ("user1000", 3443),
            ("{user1000}.following", 3443),
            ("foo{}{bar}", 8363),
            ("foo{{bar}}zap", 4015),
        ] {
            assert_eq!(c.call(&["CLUSTER", "KEYSLOT", key]), Frame::Integer(slot), "CLUSTER KEYSLOT {key}");
            assert_eq!(key_slot(key.as_bytes()), slot as u16);
        }

        let info = text(&c.call(&["CLUSTER", "INFO"]));
        assert_eq!(info_field(&info, "cluster_state"), Some("ok"), "{info}");
        assert_eq!(info_field(&info, "cluster_slots_assigned"), Some("16384"));
        assert_eq!(info_field(&info, "cluster_known_nodes"), Some("3"));
        assert_eq!(info_field(&info, "cluster_reachable_nodes"), Some("3"));
        let info = text(&c.call(&["INFO"]));
        assert_eq!(info_field(&info, "cluster_enabled"), Some("1"), "{info}");
    }
}

#[test]
fn moved_and_crossslot() {
    let cluster = Cluster::start("cluster-moved", 3, &[]);
    let owners = cluster.slot_owners(1);
    let n = cluster.size();

    // Every node redirects writes to every other node's keys to their owner,
    // which serves them; the other replicas serve reads of them (through
    // the owner's read index: the owner's last write is seen).
    for owner in 1..=n {
        let key = Cluster::key_on(&owners, owner, "moved:");
        let slot = key_slot(key.as_bytes());
        for asker in (1..=n).filter(|&a| a != owner) {
            assert_eq!(cluster.client(asker).call(&["SET", &key, "v"]), moved(slot, &cluster, owner));
        }
        let mut c = cluster.client(owner);
        assert_eq!(c.call(&["SET", &key, "here"]), Frame::OK);
        assert_eq!(c.call(&["GET", &key]), bulk("here"));
        for asker in (1..=n).filter(|&a| a != owner) {
            assert_eq!(cluster.client(asker).call(&["GET", &key]), bulk("here"), "node {asker} reads {key}");
        }
    }
    // The documented example: foo is slot 12182.
    let foo_owner = owners[12182];
    let other = foo_owner % n + 1;
    assert_eq!(cluster.client(other).call(&["SET", "foo", "bar"]), moved(12182, &cluster, foo_owner));

    // Keys in different slots: CROSSSLOT on every node, whoever owns them.
    assert_ne!(key_slot(b"a"), key_slot(b"b"));
    for node in 1..=n {
        let mut c = cluster.client(node);
        assert_eq!(
            c.call(&["MSET", "a", "1", "b", "2"]),
            err("CROSSSLOT Keys in request don't hash to the same slot"),
            "node {node}"
        );
        assert_eq!(c.call(&["SELECT", "1"]), err("ERR SELECT is not allowed in cluster mode"));
    }

    // Hash-tagged keys share a slot: MSET works on its owner.
    let slot = key_slot(b"u1");
    assert_eq!(key_slot(b"{u1}a"), slot);
    let owner = owners[usize::from(slot)];
    let mut c = cluster.client(owner);
    assert_eq!(c.call(&["MSET", "{u1}a", "1", "{u1}b", "2"]), Frame::OK);
    assert_eq!(c.call(&["MGET", "{u1}a", "{u1}b", "{u1}c"]), Frame::Array(vec![bulk("1"), bulk("2"), Frame::Null]));
    let other = owner % n + 1;
    assert_eq!(cluster.client(other).call(&["MSET", "{u1}a", "1", "{u1}b", "2"]), moved(slot, &cluster, owner));

    let slot_arg = slot.to_string();
    assert_eq!(c.call(&["CLUSTER", "COUNTKEYSINSLOT", &slot_arg]), Frame::Integer(2));
    let keys: BTreeSet<String> =
        array(c.call(&["CLUSTER", "GETKEYSINSLOT", &slot_arg, "10"])).iter().map(text).collect();
    assert_eq!(keys, BTreeSet::from(["{u1}a".to_string(), "{u1}b".to_string()]));
    assert_eq!(array(c.call(&["CLUSTER", "GETKEYSINSLOT", &slot_arg, "1"])).len(), 1);
    // Every node holds a replica (3 nodes, 3 replicas): once applied there,
    // the slot's keys are counted there too.
    wait_for("the keys to reach a replica", || {
        (cluster.client(other).call(&["CLUSTER", "COUNTKEYSINSLOT", &slot_arg]) == Frame::Integer(2)).then_some(())
    });
}

/// Starts `shoal server --id id --dir <temp dir name> --initial-cluster spec extra…`, which must
/// exit non-zero with one line on stderr saying the layout differs.
fn assert_refused(name: &str, id: &str, spec: &str, extra: &[&str]) {
    let dir = temp_dir(name);
    let mut child = Command::new(BIN)
        .args(["server", "--id", id, "--initial-cluster", spec, "--dir"])
        .arg(&dir)
        .args(["--log-level", "warn"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_for("the newcomer to exit", || child.try_wait().unwrap());
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "newcomer {id} exited with {status}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "want one line on stderr, got: {stderr}");
    assert!(stderr.contains("layout differs"), "{stderr}");
}

#[test]
fn mismatched_layout_is_refused() {
    let mut cluster = Cluster::start("cluster-mismatch", 2, &[]);

    // Two newcomers on fresh ports, each reaching node 1 with a layout that
    // differs from the running one: node 2's replacement at another address
    // with --shards 2, and a node 3 the running nodes never heard of.
    let fresh = free_ports(4);
    let node1 = format!("1={HOST}:{}@{}", cluster.ports[0], cluster.peer_ports[0]);
    let newcomers = [
        ("2", format!("{node1},2={HOST}:{}@{}", fresh[0], fresh[1]), vec!["--shards", "2"]),
        ("3", format!("{},3={HOST}:{}@{}", cluster.spec, fresh[2], fresh[3]), vec![]),
    ];
    for (id, spec, extra) in &newcomers {
        assert_refused(&format!("cluster-mismatch-newcomer{id}"), id, spec, extra);
    }

    // The running nodes are unharmed and still see each other.
    for node in 1..=2 {
        assert!(cluster.server(node).try_exit_status().is_none());
    }
    cluster.wait_all_reachable();
    let owners = cluster.slot_owners(2);
    for node in 1..=2 {
        let key = Cluster::key_on(&owners, node, "after:");
        let mut c = cluster.client(node);
        assert_eq!(c.call(&["PING"]), Frame::simple("PONG"));
        assert_eq!(c.call(&["SET", &key, "still"]), Frame::OK);
        assert_eq!(c.call(&["GET", &key]), bulk("still"));
    }
}

#[test]
fn redis_cli_follows_redirects() {
    let cluster = Cluster::start("cluster-redis-cli", 3, &[]);
    let owners = cluster.slot_owners(1);
    let port = cluster.port(1).to_string();
    let cli = |args: &[&str]| {
        let out = run_tool(
            &format!("redis-cli -c {args:?}"),
            tool("redis-cli").args(["-c", "-p", &port]).args(args).stdin(Stdio::null()),
        );
        String::from_utf8(out.stdout).unwrap()
    };
    for node in 1..=cluster.size() {
        let key = Cluster::key_on(&owners, node, "cli:");
        let value = format!("on node {node}");
        assert_eq!(cli(&["SET", &key, &value]), "OK\n", "{key}");
        assert_eq!(cli(&["GET", &key]), format!("{value}\n"), "{key}");
        assert_eq!(cluster.client(node).call(&["GET", &key]), bulk(&value));
    }
}

#[test]
fn redis_py_cluster() {
    let cluster = Cluster::start("cluster-redis-py", 3, &[]);
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/test_redis_cluster.py");
    let out = run_tool(
        "redis-py RedisCluster",
        tool("python3").arg(&script).args(["--port", &cluster.port(1).to_string()]).stdin(Stdio::null()),
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n", "stderr: {}", String::from_utf8_lossy(&out.stderr));
}

/// ioredis `Cluster` with `scaleReads: 'slave'` (tests/node): every read
/// goes to a replica that never sent READONLY, and is served, not MOVED.
/// Needs `npm ci --prefix tests/node` (`.ci/run` does it).
#[test]
fn ioredis_cluster_reads_from_replicas() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/node");
    assert!(dir.join("node_modules/ioredis").is_dir(), "ioredis is not installed: run `npm ci --prefix tests/node`");
    let cluster = Cluster::start("cluster-ioredis", 3, &[]);
    let out = run_tool(
        "ioredis Cluster",
        tool("node").arg(dir.join("ioredis_cluster.js")).arg(cluster.port(1).to_string()).stdin(Stdio::null()),
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n", "stderr: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn redis_benchmark_cluster() {
    let cluster = Cluster::start("cluster-redis-benchmark", 3, &[]);
    let what = "redis-benchmark --cluster";
    let out = run_tool(
        what,
        tool("redis-benchmark")
            .args(["--cluster", "-p", &cluster.port(1).to_string()])
            .args(["-q", "-n", "20000", "-c", "20", "-t", "set,get"])
            .stdin(Stdio::null()),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("rror"), "{what} stderr: {stderr}");
    assert_benchmarked(what, &text, &["SET", "GET"]);
    // The SETs reached every node.
    for node in 1..=cluster.size() {
        let mut c = cluster.client(node);
        let Frame::Integer(keys) = c.call(&["DBSIZE"]) else {
            panic!("DBSIZE");
        };
        assert!(keys > 0, "node {node} got no keys from redis-benchmark");
    }
}

/// A refused newcomer claiming node 2's number must not make the running
/// nodes believe the real node 2 is down. Peer checks are slowed to once a
/// minute so that a wrong mark would stay visible: the running nodes meet
/// when the second one starts and dials the first.
#[test]
fn refused_impostor_leaves_the_real_node_connected() {
    let cluster = Cluster::start("cluster-impostor", 2, &["--peer-check-interval-ms", "1000"]);
    let fresh = free_ports(2);
    let spec = format!("1={HOST}:{}@{},2={HOST}:{}@{}", cluster.ports[0], cluster.peer_ports[0], fresh[0], fresh[1]);
    assert_refused("cluster-impostor-newcomer", "2", &spec, &["--shards", "2"]);
    for node in 1..=2 {
        assert_eq!(
            cluster.reachable_nodes(node),
            Some(2),
            "node {node}'s CLUSTER INFO after the impostor was refused:\n{}",
            text(&cluster.client(node).call(&["CLUSTER", "NODES"]))
        );
    }
}

/// Raft traffic opened with another cluster's layout fingerprint (a node
/// started with other flags, or an old cluster's node dialling a reused
/// address) is refused at its first frame: it could otherwise make
/// followers adopt its term and cut their logs to its own.
#[test]
fn raft_traffic_from_another_cluster_is_refused() {
    use std::io::{Read, Write};
    let cluster = Cluster::start("cluster-foreign-raft", 2, &[]);
    let info = text(&cluster.client(1).call(&["CLUSTER", "INFO"]));
    let ours = info.lines().find_map(|l| l.trim().strip_prefix("cluster_layout_fingerprint:")).unwrap().to_string();
    let mut foreign = std::net::TcpStream::connect(("127.0.0.1", cluster.peer_ports[0])).unwrap();
    let preamble =
        format!("SHOAL/1 RAFT {}", if ours == "0123456789abcdef" { "fedcba9876543210" } else { "0123456789abcdef" });
    foreign.write_all(&(preamble.len() as u32).to_be_bytes()).unwrap();
    foreign.write_all(preamble.as_bytes()).unwrap();
    foreign.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    let mut byte = [0u8; 1];
    assert_eq!(foreign.read(&mut byte).unwrap(), 0, "a foreign cluster's Raft connection was kept open");
    assert_eq!(cluster.reachable_nodes(1), Some(2));
    assert_eq!(Routed::new(&cluster.ports).call(&["SET", "k", "v"]), Some(Frame::OK));
}

/// A stranger on the peer port claiming a node number, another layout and
/// the longest uptime must not stop the node (it used to, via the newcomer
/// rule); only a node's own dials to its peers can make it stop.
#[test]
fn forged_hello_on_the_peer_port_changes_nothing() {
    use std::io::{Read, Write};
    let mut cluster = Cluster::start("cluster-forged-hello", 2, &[]);
    let hello = "SHOAL/1 HELLO 2 deadbeefdeadbeef 18446744073709551615 1 1 1 5";
    let mut peer = std::net::TcpStream::connect(("127.0.0.1", cluster.peer_ports[0])).unwrap();
    peer.write_all(&(hello.len() as u32).to_be_bytes()).unwrap();
    peer.write_all(hello.as_bytes()).unwrap();
    let mut len = [0u8; 4];
    peer.read_exact(&mut len).unwrap();
    let mut reply = vec![0; u32::from_be_bytes(len) as usize];
    peer.read_exact(&mut reply).unwrap();
    assert!(reply.starts_with(b"SHOAL/1 WELCOME 1 "), "{}", String::from_utf8_lossy(&reply));
    for _ in 0..20 {
        assert_eq!(cluster.client(1).call(&["PING"]), Frame::simple("PONG"));
    }
    assert_eq!(cluster.reachable_nodes(1), Some(2));
    assert!(cluster.server(1).try_exit_status().is_none(), "node 1 exited after a forged hello");
}

/// The peer port holds at most `--max-peer-connections` connections: more
/// strangers are closed at once, and once they leave the node's peers get
/// through again.
#[test]
fn the_peer_port_bounds_its_connections() {
    use std::io::Read;
    let limit = 16;
    let cluster = Cluster::start("cluster-peer-limit", 2, &["--max-peer-connections", &limit.to_string()]);
    let strangers: Vec<std::net::TcpStream> =
        (0..3 * limit).map(|_| std::net::TcpStream::connect(("127.0.0.1", cluster.peer_ports[0])).unwrap()).collect();
    let mut closed_at_once = 0;
    for mut stranger in &strangers {
        // Those over the limit are closed before the 2 s first-frame timeout.
        stranger.set_read_timeout(Some(std::time::Duration::from_millis(500))).unwrap();
        let mut byte = [0u8; 1];
        if matches!(stranger.read(&mut byte), Ok(0)) {
            closed_at_once += 1;
        }
    }
    assert!(closed_at_once >= 2 * limit, "{closed_at_once} of {} strangers closed at once", 3 * limit);
    drop(strangers);
    wait_for("node 1 to reach its peer again", || (cluster.reachable_nodes(1) == Some(2)).then_some(()));
    assert_eq!(Routed::new(&cluster.ports).call(&["SET", "k", "v"]), Some(Frame::OK));
    assert_eq!(
        cluster.client(1).call(&["CONFIG", "GET", "max-peer-connections"]),
        Frame::Array(vec![bulk("max-peer-connections"), bulk("16")])
    );
}

/// GET's `calls` and `rejected_calls` (redirected) on `node`, from INFO
/// commandstats.
fn get_stats(cluster: &Cluster, node: usize) -> (u64, u64) {
    let stats = frame_text(&cluster.client(node).call(&["INFO", "commandstats"])).expect("INFO text");
    let Some(line) = stats.lines().find(|l| l.starts_with("cmdstat_get:")) else { return (0, 0) };
    let field = |name: &str| {
        line.split([':', ','])
            .find_map(|f| f.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("calls"), field("rejected_calls"))
}

/// The `redis` crate's cluster client reading from replicas
/// (`RandomReplicaStrategy`: READONLY on replica connections, reads spread
/// over them): every read is served by the replica it was sent to, none
/// redirected, and all of them see the writes once applied.
#[test]
fn redis_rs_cluster_reads_from_replicas() {
    let cluster = Cluster::start("cluster-redis-rs", 3, &[]);
    let urls: Vec<String> = cluster.ports.iter().map(|p| format!("redis://127.0.0.1:{p}/")).collect();
    let client = redis::cluster::ClusterClient::builder(urls)
        .read_routing_strategy(redis::cluster_read_routing::RandomReplicaStrategy)
        .build()
        .expect("cluster client");
    let mut con = client.get_connection().expect("cluster connection");
    let keys: Vec<String> = (0..300).map(|i| format!("redis-rs:{i}")).collect();
    for (i, key) in keys.iter().enumerate() {
        let () = redis::cmd("SET").arg(key).arg(i).query(&mut con).expect("SET");
    }
    wait_for("every replica read to see its write", || {
        let all = keys
            .iter()
            .enumerate()
            .all(|(i, key)| redis::cmd("GET").arg(key).query::<Option<usize>>(&mut con).expect("GET") == Some(i));
        all.then_some(())
    });
    let stats: Vec<(u64, u64)> = (1..=3).map(|node| get_stats(&cluster, node)).collect();
    assert!(stats.iter().filter(|(calls, _)| *calls > 0).count() >= 2, "reads spread over the replicas: {stats:?}");
    assert!(stats.iter().all(|(_, rejected)| *rejected == 0), "a read was redirected: {stats:?}");
}
