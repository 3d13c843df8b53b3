//! The cluster changes shape while it serves, through real `shoal server`
//! processes: nodes join (`--join`) and the balancer spreads replicas and
//! leaders to them; nodes are removed (drained, then out of the map); a
//! dead node is replaced. Writers run throughout; afterwards every
//! acknowledged write is present once and every replica of a group holds
//! the same log.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::shape::*;
use common::{bulk, frame_text, free_ports, Cluster, Routed};
use shoal_proto::Frame;

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
