//! Shards split and merge while they serve, through real `shoal server`
//! processes: by hand (`shoal cluster split|merge`, `CLUSTER SHOAL
//! SPLIT|MERGE`), automatically past a size limit (and back below it), and
//! by the balancer when nodes outnumber shards. Writers run throughout (our
//! routed client, redis-py and ioredis; redis-cli -c reads across a split) and
//! nodes are killed (-9) around the changes; afterwards every acknowledged
//! write is present exactly once, in the shard the map gives its slot, and
//! every replica of every group holds the same log.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Instant;

use common::shape::*;
use common::{frame_text, free_ports, Client, Cluster, Routed};
use serde_json::Value;
use shoal_proto::Frame;

/// `CLUSTER SHOAL words…` on node `port`, retried while the map cannot be
/// changed (a metadata election after a restart): the reply text.
fn admin(port: u16, words: &[&str]) -> String {
    let mut args = vec!["CLUSTER", "SHOAL"];
    args.extend(words);
    wait_long(&format!("CLUSTER SHOAL {}", words.join(" ")), || match Client::try_connect(port)?.try_call(&args)? {
        Frame::Error(e) if e.starts_with(b"TRYAGAIN") => None,
        reply => Some(frame_text(&reply).unwrap_or_else(|| panic!("{args:?}: {reply:?}"))),
    })
}

/// Shard ids and slot ranges of the map, in slot order.
fn shards_of(map: &Value) -> Vec<(u64, u64, u64)> {
    let mut shards: Vec<(u64, u64, u64)> = map["shards"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(id, s)| {
            (id.parse().unwrap(), s["slots"]["start"].as_u64().unwrap(), s["slots"]["end"].as_u64().unwrap())
        })
        .collect();
    shards.sort_by_key(|s| s.1);
    shards
}

/// Waits until the map (through `port`) has `count` shards or more and no
/// split under way.
fn wait_shards(port: u16, count: usize) -> Value {
    wait_long(&format!("{count} shards, no split under way"), || {
        let map = map_of(port)?;
        (map["shards"].as_object()?.len() >= count && map["splits"].as_object()?.is_empty()).then_some(map)
    })
}

/// Every key of every shard, by SCAN on each node over the groups it
/// leads: checks no key is held by two groups (a key left behind by a
/// split would be scanned twice) and returns them all.
fn every_key_once(ports: &[u16]) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for &port in ports {
        let mut client = Client::connect(port);
        let mut cursor = "0".to_string();
        loop {
            let Frame::Array(reply) = client.call(&["SCAN", &cursor, "COUNT", "1000"]) else { panic!("SCAN") };
            cursor = frame_text(&reply[0]).unwrap();
            let Frame::Array(keys) = &reply[1] else { panic!("SCAN keys") };
            for key in keys {
                let key = frame_text(key).unwrap();
                assert!(seen.insert(key.clone()), "{key} is held by two shards");
            }
            if cursor == "0" {
                break;
            }
        }
    }
    seen
}

/// Waits until each node leads a disjoint set of groups covering every
/// shard (leadership settled), so SCAN over the nodes covers each group
/// once.
fn wait_leaders_cover(ports: &[u16], shards: usize) {
    wait_long("one leader per group, every group led", || {
        let mut led = BTreeSet::new();
        for &port in ports {
            for (group, role, _, _) in groups_on(port)? {
                if group.starts_with("group") && role == "leader" && !led.insert(group) {
                    return None;
                }
            }
        }
        (led.len() == shards).then_some(())
    });
}

#[test]
fn splits_under_writers_and_kill_9_lose_nothing() {
    let mut cluster = Cluster::start("reshard-split", 3, &["--shards", "1", "--balance", "off", FAST[0], FAST[1]]);
    let ports = [cluster.port(1), cluster.port(2), cluster.port(3)];
    let writers = Writers::start(&ports, 2);
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/elastic_writer.py");
    let py = common::tool("python3")
        .arg(&script)
        .args(["--port", &cluster.port(1).to_string(), "--seconds", "6", "--prefix", "py"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the redis-py writer");
    let node_script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/node/ioredis_writer.js");
    let ioredis = common::tool("node")
        .arg(&node_script)
        .args([&cluster.port(2).to_string(), "6", "io"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the ioredis writer");
    let mut reader = Routed::new(&ports);
    wait_long("the writers' first key", || (reader.call(&["GET", "w0:0"])? == common::bulk("w0:0")).then_some(()));

    // By hand, at the slot halving the shard's keys.
    let started = Instant::now();
    let said = cluster_tool(cluster.port(2), &["split", "0"]);
    assert!(said.contains("splitting") && said.contains("new shard 3"), "{said}");
    let map = wait_shards(cluster.port(1), 4);
    println!("shard 0 split in {:?}: {:?}", started.elapsed(), shards_of(&map));
    // redis-py and ioredis follow the split (their redirection limits are
    // not meant for the kills below: a node down for seconds exhausts
    // them), and so does redis-cli -c.
    for (name, child) in [("redis-py", py), ("ioredis", ioredis)] {
        let out = child.wait_with_output().expect("a client writer");
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && said.starts_with("ok "),
            "{name}: {said}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        println!("{name}: {said}");
    }
    let (_, start, end) = shards_of(&map).into_iter().find(|s| s.0 == 3).expect("the new shard 3");
    let in_new = |k: &String| (start..=end).contains(&u64::from(shoal_engine::slot::key_slot(k.as_bytes())));
    let probe = (0..).map(|i| format!("cli:{i}")).find(in_new).unwrap();
    assert_eq!(Routed::new(&ports).call(&["SET", &probe, "split"]), Some(Frame::OK));
    for &port in &ports {
        let out = common::tool("redis-cli").args(["-c", "-p", &port.to_string(), "GET", &probe]).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "split", "redis-cli -c through port {port}");
    }

    // A replica down before the split applies: the other two apply it;
    // the third does on its restart, from its log.
    cluster.kill(3);
    let said = admin(cluster.port(1), &["SPLIT", "1", "8000"]);
    assert!(said.contains("new shard 4"), "{said}");
    wait_shards(cluster.port(1), 5);
    cluster.restart(3);

    // Killed right as the split is proposed, then restarted.
    let said = admin(cluster.port(3), &["SPLIT", "2"]);
    assert!(said.contains("splitting"), "{said}");
    cluster.kill(2);
    cluster.restart(2);
    wait_shards(cluster.port(3), 6);

    // Killed after: every node in turn, the born groups reopen from disk.
    for node in 1..=3 {
        cluster.kill(node);
        cluster.restart(node);
    }

    // Merged back by hand (shard 3 into shard 0), the node driving it
    // killed as it starts; then shard 4 into shard 1.
    let said = admin(cluster.port(2), &["MERGE", "0", "3"]);
    assert!(said.contains("merging"), "{said}");
    let driver = wait_long("shard 0's leader", || leader_port(&ports, "group0"));
    cluster.kill(cluster.node_of_port(driver));
    cluster.restart(cluster.node_of_port(driver));
    wait_long("shard 3 merged into shard 0", || {
        let map = map_of(cluster.port(1))?;
        (map["merges"].as_object()?.is_empty() && map["shards"].get("3").is_none()).then_some(())
    });
    wait_long("the metadata group led again", || admin(cluster.port(3), &["MAP"]).contains("epoch").then_some(()));
    let said = cluster_tool(cluster.port(3), &["merge", "1", "4"]);
    assert!(said.contains("merging"), "{said}");
    wait_long("shard 4 merged into shard 1", || {
        let map = map_of(cluster.port(1))?;
        (map["merges"].as_object()?.is_empty() && map["shards"].get("4").is_none()).then_some(())
    });
    writers.stop_and_check(&ports);

    wait_replicas_agree(&ports);
    let map = map_of(cluster.port(1)).unwrap();
    let shards = shards_of(&map);
    assert_eq!(shards.len(), 4, "{shards:?}");
    wait_leaders_cover(&ports, shards.len());
    let keys = every_key_once(&ports);
    // Each key is in the shard the map gives its slot: a GET routed by the
    // map finds it (every scanned key read back through routing).
    let mut client = Routed::new(&ports);
    for key in keys.iter().filter(|k| k.starts_with('w')).take(2000) {
        assert_eq!(client.call(&["GET", key]), Some(common::bulk(key)), "{key} where the map routes it");
    }
    println!("{} keys, each held once, over {} shards", keys.len(), shards.len());
}

#[test]
fn a_growing_shard_splits_by_itself_and_five_nodes_share_the_shards() {
    let cluster = Cluster::start(
        "reshard-auto",
        3,
        &["--shards", "1", "--shard-max-keys", "400", "--shard-max-bytes", "0", FAST[0], FAST[1]],
    );
    let more = free_ports(4);
    let ports = [cluster.port(1), cluster.port(2), cluster.port(3), more[0], more[1]];
    let mut client = Routed::new(&ports[..3]);
    for i in 0..3000 {
        assert_eq!(client.call(&["SET", &format!("auto:{i}"), "v"]), Some(Frame::OK));
    }
    // 3 shards of about 1000 keys each split until none holds over 400.
    let map = wait_long("every shard at most 400 keys", || {
        let map = map_of(cluster.port(1))?;
        let settled = map["splits"].as_object()?.is_empty();
        let counts: Vec<u64> = (1..=3)
            .flat_map(|n| groups_on(cluster.port(n)).unwrap_or_default())
            .filter(|(g, role, _, _)| g.starts_with("group") && role == "leader")
            .map(|(_, _, _, keys)| keys.parse().unwrap())
            .collect();
        let shards = map["shards"].as_object()?.len();
        (settled && counts.len() == shards && counts.iter().all(|&k| k <= 400)).then_some(map)
    });
    let shards = shards_of(&map).len();
    assert!(shards >= 8, "3000 keys in shards of at most 400: {shards}");

    // Most keys deleted: the halves of each split, small again, merge back
    // until there are as many shards as nodes.
    for i in 100..3000 {
        assert_eq!(client.call(&["DEL", &format!("auto:{i}")]), Some(Frame::Integer(1)));
    }
    let map = wait_long("merged back to three shards", || {
        let map = map_of(cluster.port(1))?;
        let idle = map["merges"].as_object()?.is_empty() && map["splits"].as_object()?.is_empty();
        (idle && map["shards"].as_object()?.len() == 3).then_some(map)
    });
    println!("merged back: {:?}", shards_of(&map));
    for i in 0..100 {
        assert_eq!(client.call(&["GET", &format!("auto:{i}")]), Some(common::bulk("v")), "auto:{i} merged");
    }
    for i in 100..3000 {
        assert_eq!(client.call(&["SET", &format!("auto:{i}"), "v"]), Some(Frame::OK));
    }

    // Two nodes join: replicas and leaders spread over all five.
    let (node4, _) = join("reshard-auto-node4", more[0], more[2], cluster.port(1), &["--shard-max-keys", "400"]);
    let (node5, _) = join("reshard-auto-node5", more[1], more[3], cluster.port(2), &["--shard-max-keys", "400"]);
    wait_long("replicas and leaders spread over 5 nodes", || {
        let map = map_of(cluster.port(3))?;
        let (replicas, preferred) = spread(&map);
        let settled =
            replicas.len() == 5 && map["moves"].as_object()?.is_empty() && map["splits"].as_object()?.is_empty();
        let led = leaders(&ports)?;
        let even = led.values().max()? - led.values().min()? <= 1;
        (settled && within_one(&replicas) && within_one(&preferred) && even).then_some(())
    });
    let mut client = Routed::new(&ports);
    for i in 0..3000 {
        assert_eq!(client.call(&["GET", &format!("auto:{i}")]), Some(common::bulk("v")), "auto:{i}");
    }
    wait_replicas_agree(&ports);
    drop((node4, node5));
}

#[test]
fn nodes_outnumbering_shards_get_shards_of_their_own() {
    let cluster = Cluster::start("reshard-widen", 3, &["--shards", "1", FAST[0], FAST[1]]);
    let more = free_ports(4);
    let ports = [cluster.port(1), cluster.port(2), cluster.port(3), more[0], more[1]];
    let (node4, _) = join("reshard-widen-node4", more[0], more[2], cluster.port(1), &[]);
    let (node5, _) = join("reshard-widen-node5", more[1], more[3], cluster.port(2), &[]);
    wait_long("five shards, one led by each node", || {
        let map = map_of(cluster.port(3))?;
        let (replicas, preferred) = spread(&map);
        let settled = map["moves"].as_object()?.is_empty() && map["splits"].as_object()?.is_empty();
        let led = leaders(&ports)?;
        (settled
            && map["shards"].as_object()?.len() == 5
            && within_one(&replicas)
            && within_one(&preferred)
            && led.values().all(|&n| n == 1))
        .then_some(())
    });
    drop((node4, node5));
}
