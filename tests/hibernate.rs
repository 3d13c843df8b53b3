//! Idle groups go quiet and wake, through real `shoal server` processes:
//! with no traffic every group on every node stops ticking (INFO shows
//! `asleep=1`); the first request to a group is served at once and wakes
//! it; a quiet group whose leader's node is killed elects a new leader.

mod common;

use std::collections::HashMap;
use std::time::Instant;

use common::shape::wait_long;
use common::{bulk, frame_text, Client, Cluster, Routed};
use shoal_proto::Frame;

const QUIET: [&str; 2] = ["--hibernate-after-ms", "300"];

/// Per group on the node at `port`: `(role, leader, asleep)`.
fn groups(port: u16) -> Option<HashMap<String, (String, String, bool)>> {
    let text = frame_text(&Client::try_connect(port)?.try_call(&["INFO", "replication"])?)?;
    let mut out = HashMap::new();
    for line in text.lines().filter(|l| l.starts_with("group") || l.starts_with("meta:")) {
        let (group, fields) = line.trim_end().split_once(':')?;
        let fields: HashMap<&str, &str> = fields.split(',').filter_map(|kv| kv.split_once('=')).collect();
        let entry = (fields["role"].to_string(), fields["leader"].to_string(), fields["asleep"] == "1");
        out.insert(group.to_string(), entry);
    }
    Some(out)
}

fn all_asleep(ports: &[u16]) -> Option<()> {
    for &port in ports {
        if !groups(port)?.values().all(|(_, _, asleep)| *asleep) {
            return None;
        }
    }
    Some(())
}

#[test]
fn idle_groups_go_quiet_and_the_first_request_wakes_one() {
    let cluster = Cluster::start("quiet-wake", 3, &["--shards", "2", "--balance", "off", QUIET[0], QUIET[1]]);
    let ports = [cluster.port(1), cluster.port(2), cluster.port(3)];
    wait_long("every group on every node asleep", || all_asleep(&ports));
    let mut client = Routed::new(&ports);
    let started = Instant::now();
    assert_eq!(client.call(&["SET", "woken", "yes"]), Some(Frame::OK));
    assert_eq!(client.call(&["GET", "woken"]), Some(bulk("yes")));
    println!("first write and read to a quiet group: {:?}", started.elapsed());
    wait_long("quiet again", || all_asleep(&ports));
    for i in 0..50 {
        assert_eq!(client.call(&["SET", &format!("k{i}"), "v"]), Some(Frame::OK));
    }
    wait_long("quiet again after a burst", || all_asleep(&ports));
    for i in 0..50 {
        assert_eq!(client.call(&["GET", &format!("k{i}")]), Some(bulk("v")));
    }
    // A write straight to the leader of a group asleep for a while is
    // served, not refused (openraft refuses writes once a leader's lease
    // lapsed; a sleeping leader sends no heartbeats). No retries here.
    wait_long("quiet again after the reads", || all_asleep(&ports));
    // The scenario is a group left idle for a while (its leader's lease
    // lapses while it sends no heartbeats): time passing, not a condition.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let owners = cluster.slot_owners(1);
    let key = Cluster::key_on(&owners, 2, "first-write-");
    let mut leader = Client::connect(cluster.port(2));
    assert_eq!(leader.call(&["SET", &key, "v"]), Frame::OK, "the first write to a sleeping leader");
}

#[test]
fn a_quiet_group_elects_a_new_leader_when_its_leaders_node_dies() {
    let mut cluster = Cluster::start("quiet-failover", 3, &["--shards", "1", "--balance", "off", QUIET[0], QUIET[1]]);
    let ports = [cluster.port(1), cluster.port(2), cluster.port(3)];
    let mut client = Routed::new(&ports);
    for i in 0..100 {
        assert_eq!(client.call(&["SET", &format!("f{i}"), "v"]), Some(Frame::OK));
    }
    wait_long("every group on every node asleep", || all_asleep(&ports));
    // Node 1 leads group 0 (its preferred leader, balance keeps it there).
    let leader = wait_long("group0's leader", || {
        let (role, leader, _) = groups(cluster.port(1))?.remove("group0")?;
        (role == "leader").then_some(leader)
    });
    let killed = Instant::now();
    cluster.kill(1);
    let survivors = [cluster.port(2), cluster.port(3)];
    wait_long("a new leader of group0", || {
        let seen: Vec<String> = survivors
            .iter()
            .map(|&p| groups(p).and_then(|mut g| g.remove("group0")).map(|g| g.1))
            .collect::<Option<_>>()?;
        (seen[0] == seen[1] && seen[0] != leader && seen[0] != "-").then_some(())
    });
    println!("quiet group0 failed over in {:?}", killed.elapsed());
    let mut client = Routed::new(&survivors);
    for i in 0..100 {
        assert_eq!(client.call(&["GET", &format!("f{i}")]), Some(bulk("v")), "f{i} after the failover");
    }
}
