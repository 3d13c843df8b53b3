//! Replication through real `shoal server` processes: every shard a Raft
//! group of three replicas. Writers go through the shard leaders
//! (following -MOVED); the checks read every replica directly after
//! READONLY, so they see what each node holds, not what a leader says.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use common::{bulk, frame_text, wait_for, Client, Cluster, Routed};
use shoal_proto::Frame;

/// `group -> field -> value` from a node's INFO replication.
fn groups(cluster: &Cluster, node: usize) -> Option<HashMap<String, HashMap<String, String>>> {
    let mut c = Client::try_connect(cluster.port(node))?;
    let text = frame_text(&c.call(&["INFO", "replication"]))?;
    let parsed = text
        .lines()
        .filter(|l| l.starts_with("group"))
        .filter_map(|l| l.trim_end().split_once(':'))
        .map(|(group, fields)| {
            let fields = fields.split(',').filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k.into(), v.into()));
            (group.to_string(), fields.collect())
        })
        .collect();
    Some(parsed)
}

/// Waits until every running node reports the same applied index and key
/// count for every group (writers stopped: the cluster is quiet).
fn wait_converged(cluster: &Cluster) {
    wait_for("every replica of every group to apply the same log", || {
        let views: Vec<_> = (1..=cluster.size())
            .filter(|&n| cluster.is_running(n))
            .map(|n| groups(cluster, n))
            .collect::<Option<_>>()?;
        let key = |g: &HashMap<String, String>| (g.get("applied").cloned(), g.get("keys").cloned());
        let first = &views[0];
        let same = views
            .iter()
            .all(|v| v.len() == first.len() && v.iter().all(|(name, g)| first.get(name).map(key) == Some(key(g))));
        same.then_some(())
    });
}

/// GETs every key on `node` with READONLY (local, possibly stale reads).
fn read_all(port: u16, keys: &[String]) -> Vec<Frame> {
    let mut c = Client::connect(port);
    assert_eq!(c.call(&["READONLY"]), Frame::OK);
    for key in keys {
        c.send(&[b"GET", key.as_bytes()]);
    }
    keys.iter().map(|_| c.read().expect("reply")).collect()
}

/// Each of `threads` writers sets `keys_each` unique keys and INCRs
/// `counters` shared counters `rounds` times, through the leaders; every
/// reply must be a success.
fn write_load(cluster: &Cluster, threads: usize, keys_each: usize, counters: usize, rounds: usize) {
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let ports = cluster.ports.clone();
            std::thread::spawn(move || {
                let mut client = Routed::new(&ports);
                for i in 0..keys_each {
                    let (key, value) = (format!("w{t}:{i}"), i.to_string());
                    assert_eq!(client.call(&["SET", &key, &value]), Some(Frame::OK), "SET {key}");
                }
                for _ in 0..rounds {
                    for c in 0..counters {
                        let reply = client.call(&["INCR", &format!("counter:{c}")]);
                        assert!(matches!(reply, Some(Frame::Integer(_))), "INCR gave {reply:?}");
                    }
                }
            })
        })
        .collect();
    handles.into_iter().for_each(|h| h.join().expect("writer"));
}

#[test]
fn replicas_converge_with_every_write_once() {
    let cluster = Cluster::start("repl-converge", 3, &[]);
    let (threads, keys_each, counters, rounds) = (4, 150, 5, 20);
    write_load(&cluster, threads, keys_each, counters, rounds);
    wait_converged(&cluster);

    let mut keys: Vec<String> = (0..threads).flat_map(|t| (0..keys_each).map(move |i| format!("w{t}:{i}"))).collect();
    let mut want: Vec<Frame> = (0..threads).flat_map(|_| (0..keys_each).map(|i| bulk(&i.to_string()))).collect();
    for c in 0..counters {
        keys.push(format!("counter:{c}"));
        want.push(bulk(&(threads * rounds).to_string()));
    }
    for node in 1..=3 {
        let got = read_all(cluster.port(node), &keys);
        for ((key, got), want) in keys.iter().zip(&got).zip(&want) {
            assert_eq!(got, want, "node {node} holds {key} = {got:?}");
        }
    }
    // Exactly these keys, no more: every group's leader counts its own.
    let total: i64 = (1..=3)
        .map(|n| match cluster.client(n).call(&["DBSIZE"]) {
            Frame::Integer(k) => k,
            other => panic!("DBSIZE gave {other:?}"),
        })
        .sum();
    assert_eq!(total as usize, keys.len());
    // And each replica holds the same number per group.
    let per_group = |n| -> Vec<String> {
        let mut v: Vec<String> =
            groups(&cluster, n).unwrap().into_iter().map(|(g, f)| format!("{g}={}", f["keys"])).collect();
        v.sort();
        v
    };
    assert_eq!(per_group(1), per_group(2));
    assert_eq!(per_group(1), per_group(3));
}

#[test]
fn followers_redirect_writes_and_serve_reads() {
    let cluster = Cluster::start("repl-follower", 3, &[]);
    let owners = cluster.slot_owners(1);
    let key = Cluster::key_on(&owners, 1, "f");
    let slot = shoal_engine::slot::key_slot(key.as_bytes());
    assert_eq!(cluster.client(1).call(&["SET", &key, "v"]), Frame::OK);
    wait_converged(&cluster);

    let mut follower = cluster.client(2);
    let moved = format!("MOVED {slot} 127.0.0.1:{}", cluster.port(1));
    assert_eq!(follower.call(&["SET", &key, "x"]), common::err(&moved), "a follower never applies a write");
    // Without READONLY a follower's read is linearizable: every write the
    // leader acknowledged before it is seen, at once.
    let mut leader = cluster.client(1);
    for i in 0..20 {
        let value = format!("v{i}");
        assert_eq!(leader.call(&["SET", &key, &value]), Frame::OK);
        assert_eq!(follower.call(&["GET", &key]), bulk(&value), "a follower read missed an acknowledged write");
    }
    // So is a pipeline of them (one read index for the batch).
    let mut pipelined = Vec::new();
    for _ in 0..50 {
        pipelined.extend_from_slice(format!("*2\r\n$3\r\nGET\r\n${}\r\n{key}\r\n", key.len()).as_bytes());
    }
    follower.send_raw(&pipelined);
    for _ in 0..50 {
        assert_eq!(follower.read(), Some(bulk("v19")));
    }
    assert_eq!(follower.call(&["READONLY"]), Frame::OK);
    assert_eq!(follower.call(&["GET", &key]), bulk("v19"), "after READONLY it reads its own copy");
    assert_eq!(follower.call(&["SET", &key, "x"]), common::err(&moved), "writes still go to the leader");
    assert_eq!(follower.call(&["READWRITE"]), Frame::OK);
    assert_eq!(follower.call(&["GET", &key]), bulk("v19"));

    // CLUSTER SLOTS lists the leader first, then both replicas.
    let Frame::Array(entries) = follower.call(&["CLUSTER", "SLOTS"]) else { panic!("CLUSTER SLOTS") };
    for entry in entries {
        let Frame::Array(parts) = entry else { panic!("entry") };
        assert_eq!(parts.len(), 2 + 3, "start, end, master and two replicas: {parts:?}");
    }
}

#[test]
fn restarted_node_catches_up_by_log_and_by_snapshot() {
    // Small snapshots so the leaders purge their logs past the dead node.
    let flags = ["--shards", "1", "--snapshot-every-entries", "50", "--snapshot-keep-entries", "5"];
    let mut cluster = Cluster::start("repl-catchup", 3, &flags);
    let mut client = Routed::new(&cluster.ports);
    assert_eq!(client.call(&["SET", "before", "1"]), Some(Frame::OK));
    wait_converged(&cluster);
    let applied_at_kill = groups(&cluster, 3).unwrap();
    cluster.kill(3);
    let mut client = Routed::new(&cluster.ports);

    let keys: Vec<String> = (0..600).map(|i| format!("k{i}")).collect();
    for key in &keys {
        assert_eq!(client.call(&["SET", key, key]), Some(Frame::OK), "writes go on with one node down");
    }
    // Every group moved on past what node 3 has, and purged its log.
    let leader_view = groups(&cluster, 1).unwrap();
    let purged_past_node3 = leader_view.iter().any(|(g, f)| {
        let purged: u64 = f["purged"].parse().unwrap_or(0);
        let had: u64 = applied_at_kill[g]["applied"].parse().unwrap_or(0);
        purged > had
    });
    assert!(purged_past_node3, "some group purged past node 3's log: {leader_view:?}");

    cluster.restart(3);
    cluster.wait_all_reachable();
    wait_converged(&cluster);
    let got = read_all(cluster.port(3), &keys);
    for (key, got) in keys.iter().zip(&got) {
        assert_eq!(*got, bulk(key), "node 3 caught up on {key}");
    }
}

#[test]
fn killing_every_node_mid_load_loses_no_acknowledged_write() {
    let mut cluster = Cluster::start("repl-killall", 3, &[]);
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let incr_acked = Arc::new(Mutex::new(0u64));
    let incr_sent = Arc::new(Mutex::new(0u64));
    let writers: Vec<_> = (0..4)
        .map(|t| {
            let (ports, acked, incr_acked, incr_sent) =
                (cluster.ports.clone(), Arc::clone(&acked), Arc::clone(&incr_acked), Arc::clone(&incr_sent));
            std::thread::spawn(move || {
                let mut client = Routed::new(&ports);
                for i in 0.. {
                    let key = format!("t{t}:{i}");
                    match client.call(&["SET", &key, &key]) {
                        Some(reply) if reply == Frame::OK => acked.lock().unwrap().push(key),
                        _ => return, // the nodes are gone
                    }
                    *incr_sent.lock().unwrap() += 1;
                    match client.call(&["INCR", "total"]) {
                        Some(Frame::Integer(_)) => *incr_acked.lock().unwrap() += 1,
                        _ => return,
                    }
                }
            })
        })
        .collect();
    wait_for("writers to get 300 writes acknowledged", || (acked.lock().unwrap().len() >= 300).then_some(()));
    for node in 1..=3 {
        cluster.kill(node);
    }
    writers.into_iter().for_each(|w| w.join().expect("writer"));

    for node in 1..=3 {
        cluster.restart(node);
    }
    cluster.wait_all_reachable();
    let acked = acked.lock().unwrap().clone();
    let mut client = Routed::new(&cluster.ports);
    for key in &acked {
        assert_eq!(client.call(&["GET", key]), Some(bulk(key)), "acknowledged {key} survived kill -9 of every node");
    }
    let Some(Frame::Bulk(total)) = client.call(&["GET", "total"]) else { panic!("the counter survived") };
    let total: u64 = String::from_utf8_lossy(&total).parse().unwrap();
    let (incr_acked, incr_sent) = (*incr_acked.lock().unwrap(), *incr_sent.lock().unwrap());
    assert!(
        (incr_acked..=incr_sent).contains(&total),
        "counter {total} is between acknowledged {incr_acked} and sent {incr_sent} INCRs"
    );
    println!("{} SETs and {incr_acked} INCRs acknowledged before kill -9 of all nodes; all present", acked.len());
}

#[test]
fn leadership_returns_to_the_preferred_primary() {
    let mut cluster = Cluster::start("repl-balance", 3, &["--balance-interval-ms", "200"]);
    let before = cluster.slot_owners(2);
    assert!(before.contains(&1), "node 1 leads its preferred shards at bootstrap");
    cluster.kill(1);
    wait_for("the survivors to elect leaders for node 1's shards", || {
        let owners = cluster.slot_owners(2);
        owners.iter().all(|&o| o != 1).then_some(())
    });
    let mut client = Routed::new(&cluster.ports[1..]);
    let owners = cluster.slot_owners(2);
    let key = Cluster::key_on(&before, 1, "moved");
    assert_ne!(owners[usize::from(shoal_engine::slot::key_slot(key.as_bytes()))], 1);
    let started = Instant::now();
    assert_eq!(client.call(&["SET", &key, "after-failover"]), Some(Frame::OK));
    println!("write to a failed-over shard answered in {:?}", started.elapsed());

    cluster.restart(1);
    cluster.wait_all_reachable();
    wait_for("node 1 to lead its preferred shards again", || (cluster.slot_owners(2) == before).then_some(()));
    let mut client = Routed::new(&cluster.ports);
    assert_eq!(client.call(&["GET", &key]), Some(bulk("after-failover")));
}

#[test]
fn a_tagged_write_retried_anywhere_applies_once() {
    let mut cluster = Cluster::start("repl-tags", 3, &[]);
    let owners = cluster.slot_owners(1);
    let key = Cluster::key_on(&owners, 1, "ctr");
    let mut leader = cluster.client(1);
    let tagged_incr = |c: &mut Client, seq: &str| {
        assert_eq!(c.call(&["CLIENT", "SHOAL-TAG", "42", seq]), Frame::OK);
        c.call(&["INCR", &key])
    };
    assert_eq!(tagged_incr(&mut leader, "1"), Frame::Integer(1));
    assert_eq!(tagged_incr(&mut leader, "1"), Frame::Integer(1), "the retry gets the first reply");
    assert_eq!(tagged_incr(&mut leader, "2"), Frame::Integer(2), "a new sequence number applies");
    assert_eq!(leader.call(&["INCR", &key]), Frame::Integer(3), "untagged writes always apply");
    assert_eq!(leader.call(&["INCR", &key]), Frame::Integer(4), "a tag covers one command only");

    // The sessions are replicated state: after the leader dies, a retry at
    // the new leader is still recognised.
    wait_converged(&cluster);
    cluster.kill(1);
    let mut client = Routed::new(&cluster.ports[1..]);
    wait_for("a new leader for the counter", || match client.call(&["GET", &key]) {
        Some(reply) if reply == bulk("4") => Some(()),
        _ => None,
    });
    // Both survivors serve reads; the retry goes to each, and the one that
    // does not lead redirects it (not applied).
    let answers: Vec<Frame> = (2..=3).map(|n| tagged_incr(&mut cluster.client(n), "2")).collect();
    let applied: Vec<&Frame> =
        answers.iter().filter(|f| !matches!(f, Frame::Error(e) if e.starts_with(b"MOVED"))).collect();
    assert_eq!(applied, vec![&Frame::Integer(2)], "retried after failover: answered, not applied: {answers:?}");
    assert_eq!(cluster.client(2).call(&["GET", &key]), bulk("4"));
}

#[test]
fn a_minority_never_redirects_to_a_dead_leader() {
    let flags = ["--peer-check-interval-ms", "100", "--write-timeout-ms", "500", "--cluster-down-after-ms", "1000"];
    let mut cluster = Cluster::start("repl-minority", 3, &flags);
    let owners = cluster.slot_owners(1);
    let key = Cluster::key_on(&owners, 2, "m");
    let own = Cluster::key_on(&owners, 1, "own");
    let mut survivor = cluster.client(1);
    let moved = format!("MOVED {} 127.0.0.1:{}", shoal_engine::slot::key_slot(key.as_bytes()), cluster.port(2));
    assert_eq!(survivor.call(&["SET", &key, "v"]), common::err(&moved), "node 2 leads the key's shard");
    assert_eq!(cluster.client(2).call(&["SET", &key, "acknowledged"]), Frame::OK);
    assert_eq!(survivor.call(&["SET", &own, "acknowledged"]), Frame::OK);
    cluster.kill(2);
    cluster.kill(3);
    // No quorum for node 2's shard: nothing can be applied, and node 2 is
    // gone, so node 1 says "try again", not "go to node 2".
    wait_for("node 1 to stop redirecting to the dead leader", || match survivor.call(&["SET", &key, "v"]) {
        Frame::Error(e) if e.starts_with(b"TRYAGAIN") => Some(()),
        _ => None,
    });

    // Node 1's own shards lost their quorum too: a write there is refused
    // once node 1 has heard from no quorum for an election timeout; one
    // proposed before that cannot commit, and after --write-timeout-ms it is
    // reported as uncertain rather than left hanging (or called "not
    // applied").
    let reply = survivor.call(&["SET", &own, "v"]);
    assert!(
        matches!(&reply, Frame::Error(e) if e.starts_with(b"UNCERTAIN") || e.starts_with(b"TRYAGAIN")),
        "{reply:?}"
    );
    // After --cluster-down-after-ms without a usable leader, both kinds of
    // shard say CLUSTERDOWN, for reads and writes.
    for (what, k) in [("a dead leader's shard", &key), ("the survivor's own shard", &own)] {
        wait_for(&format!("CLUSTERDOWN for {what}"), || match survivor.call(&["SET", k, "v"]) {
            Frame::Error(e) if e.starts_with(b"CLUSTERDOWN") => Some(()),
            _ => None,
        });
        assert!(matches!(survivor.call(&["GET", k]), Frame::Error(e) if e.starts_with(b"CLUSTERDOWN")));
    }

    // The nodes return: the shards serve again and nothing acknowledged
    // was lost; the refused writes were not applied.
    cluster.restart(2);
    cluster.restart(3);
    cluster.wait_all_reachable();
    let mut routed = Routed::new(&cluster.ports);
    assert_eq!(routed.call(&["GET", &key]), Some(bulk("acknowledged")), "every write after it was refused");
    let own_value = routed.call(&["GET", &own]);
    let uncertain = matches!(&reply, Frame::Error(e) if e.starts_with(b"UNCERTAIN"));
    assert!(
        own_value == Some(bulk("acknowledged")) || (uncertain && own_value == Some(bulk("v"))),
        "{own_value:?} after {reply:?}"
    );
    // Writes are taken again (one may still time out, UNCERTAIN, while
    // leadership moves back to the returned nodes: the same SET is resent).
    wait_for("a write after the nodes returned", || {
        (routed.call(&["SET", &own, "after"]) == Some(Frame::OK)).then_some(())
    });
}

#[test]
fn a_paused_leader_that_resumes_serves_no_stale_read_and_acknowledges_no_lost_write() {
    let mut cluster = Cluster::start("repl-pause", 3, &["--peer-check-interval-ms", "100"]);
    let owners = cluster.slot_owners(1);
    let key = Cluster::key_on(&owners, 2, "p");
    let mut reader = cluster.client(2);
    let mut writer = cluster.client(2);
    assert_eq!(reader.call(&["SET", &key, "old"]), Frame::OK, "node 2 leads the key's shard");

    cluster.server(2).signal(libc::SIGSTOP);
    // Sent to the frozen leader: it reads it only when it wakes up.
    writer.send(&[b"SET", key.as_bytes(), b"from-the-past"]);
    let mut others = Routed::new(&[cluster.port(1), cluster.port(3)]);
    wait_for("the others to elect a leader and take a write", || {
        (others.call(&["SET", &key, "new"]) == Some(Frame::OK)).then_some(())
    });
    cluster.server(2).signal(libc::SIGCONT);

    // Woken up, node 2 still believes it leads until it hears the new term,
    // but its lease is long gone: no stale "old".
    let read = reader.call(&["GET", &key]);
    assert_ne!(read, bulk("old"), "a stale read from the resumed ex-leader");
    assert!(
        read == bulk("new")
            || matches!(&read, Frame::Error(e) if e.starts_with(b"MOVED") || e.starts_with(b"TRYAGAIN")),
        "{read:?}"
    );
    // The write it found on waking was refused, or is uncertain; an OK
    // would have to be true.
    let written = writer.read().expect("a reply to the write sent while frozen");
    cluster.wait_all_reachable();
    let mut all = Routed::new(&cluster.ports);
    let value = all.call(&["GET", &key]);
    match &written {
        Frame::Error(e) if e.starts_with(b"MOVED") || e.starts_with(b"TRYAGAIN") => {
            assert_eq!(value, Some(bulk("new")), "a refused write was applied")
        }
        Frame::Error(e) if e.starts_with(b"UNCERTAIN") => {
            assert!(value == Some(bulk("new")) || value == Some(bulk("from-the-past")), "{value:?}")
        }
        Frame::Simple(_) => assert_eq!(value, Some(bulk("from-the-past")), "acknowledged but not applied"),
        other => panic!("unexpected reply {other:?}"),
    }
    println!("resumed ex-leader answered the read with {read:?} and the write with {written:?}");
}

/// The voters of every `groupN:` line of an INFO replication text.
fn voters_per_group(info: &str) -> Vec<Vec<String>> {
    info.lines()
        .filter(|l| l.starts_with("group"))
        .map(|l| {
            let voters = l.split(',').find_map(|f| f.strip_prefix("voters=")).unwrap_or_else(|| panic!("{l}"));
            voters.trim().split('|').map(str::to_string).collect()
        })
        .collect()
}

#[test]
fn a_node_whose_data_was_wiped_rejoins_as_a_new_replica() {
    let flags = ["--peer-check-interval-ms", "100", "--balance-interval-ms", "200"];
    let mut cluster = Cluster::start("repl-wiped", 3, &flags);
    let peers_with_data = |node: usize| std::fs::read_to_string(cluster.dirs[node - 1].join("peers-with-data"));
    wait_for("nodes 1 and 2 to have seen node 3 holding data", || {
        (peers_with_data(1).ok()?.lines().any(|l| l.starts_with("3 "))
            && peers_with_data(2).ok()?.lines().any(|l| l.starts_with("3 ")))
        .then_some(())
    });
    // INFO shows each node out of quarantine, with its data's incarnation
    // and its first Raft identity.
    for node in 1..=3 {
        let info = frame_text(&cluster.client(node).call(&["INFO", "replication"])).unwrap();
        let incarnation = std::fs::read_to_string(cluster.dirs[node - 1].join("incarnation")).unwrap();
        assert_eq!(common::info_field(&info, "quarantine"), Some("0"), "{info}");
        assert_eq!(common::info_field(&info, "data_incarnation"), Some(incarnation.trim()), "{info}");
        assert_eq!(common::info_field(&info, "raft_id"), Some(node.to_string().as_str()), "{info}");
    }
    let mut routed = Routed::new(&cluster.ports);
    assert_eq!(routed.call(&["SET", "before-the-wipe", "v"]), Some(Frame::OK));

    // The operator can insist that a wiped node vote as before; it then
    // follows the log like any replica (what that risks: docs/failures.md).
    cluster.wipe(3);
    cluster.restart_with(3, &["--unsafe-rejoin-after-data-loss"]);
    let mut three = cluster.client(3);
    assert_eq!(three.call(&["READONLY"]), Frame::OK);
    wait_for("the unsafely rejoined node to catch up", || {
        (three.call(&["GET", "before-the-wipe"]) == bulk("v")).then_some(())
    });

    // Wiped again and started as usual, node 3 learns from its peers that
    // it lost its data and comes back, in the same process, under a new
    // Raft identity, which each group's leader swaps in for the old one.
    cluster.wipe(3);
    let reply = Routed::new(&cluster.ports[..2]).call(&["SET", "while-3-was-gone", "v"]);
    assert_eq!(reply, Some(Frame::OK), "{reply:?}");
    cluster.restart(3);
    let new_id = wait_for("node 3 to take a new Raft identity", || {
        let info = frame_text(&Client::try_connect(cluster.port(3))?.try_call(&["INFO", "replication"])?)?;
        let id = common::info_field(&info, "raft_id")?.to_string();
        id.starts_with("3/").then_some(id)
    });
    assert!(cluster.is_running(3));
    for node in 1..=3 {
        wait_for("every group to have node 3's new identity as a voter in place of the old one", || {
            let info = frame_text(&Client::try_connect(cluster.port(node))?.try_call(&["INFO", "replication"])?)?;
            let groups = voters_per_group(&info);
            let swapped = groups.iter().all(|v| v.contains(&new_id) && !v.iter().any(|id| id == "3") && v.len() == 3);
            (!groups.is_empty() && swapped).then_some(())
        });
    }
    let mut three = cluster.client(3);
    assert_eq!(three.call(&["READONLY"]), Frame::OK);
    for key in ["before-the-wipe", "while-3-was-gone"] {
        wait_for("the new replica to catch up", || (three.call(&["GET", key]) == bulk("v")).then_some(()));
    }

    // The new identity counts in its groups' majorities: without node 1,
    // nodes 2 and 3 take writes for every slot.
    cluster.kill(1);
    let mut survivors = Routed::new(&cluster.ports[1..]);
    for i in 0..30 {
        let key = format!("without-node-1:{i}");
        assert_eq!(survivors.call(&["SET", &key, "v"]), Some(Frame::OK), "{key}");
    }
    for key in ["before-the-wipe", "while-3-was-gone", "without-node-1:7"] {
        assert_eq!(survivors.call(&["GET", key]), Some(bulk("v")), "{key}");
    }
}

/// Two of three disks lost at once: both nodes rejoin as new replicas, but
/// the lone survivor cannot be elected to swap them in, so the cluster says
/// CLUSTERDOWN rather than serve without the majority; the documented way
/// back (wipe one again, start it with --unsafe-rejoin-after-data-loss)
/// brings every slot back with the survivor's data and swaps the other in.
#[test]
fn a_majority_of_lost_disks_stays_down_until_the_operator_accepts_the_loss() {
    let flags = ["--peer-check-interval-ms", "100", "--balance-interval-ms", "200", "--cluster-down-after-ms", "1000"];
    let mut cluster = Cluster::start("repl-two-wiped", 3, &flags);
    let mut routed = Routed::new(&cluster.ports);
    for i in 0..20 {
        assert_eq!(routed.call(&["SET", &format!("kept:{i}"), "v"]), Some(Frame::OK));
    }
    let peers_with_data = |node: usize| std::fs::read_to_string(cluster.dirs[node - 1].join("peers-with-data"));
    wait_for("node 1 to have seen nodes 2 and 3 holding data", || {
        let seen = peers_with_data(1).ok()?;
        (seen.lines().any(|l| l.starts_with("2 ")) && seen.lines().any(|l| l.starts_with("3 "))).then_some(())
    });
    for node in [2, 3] {
        cluster.wipe(node);
    }
    for node in [2, 3] {
        cluster.restart(node);
    }
    for node in [2, 3] {
        wait_for("the wiped node to take a new identity", || {
            let info = frame_text(&Client::try_connect(cluster.port(node))?.try_call(&["INFO", "replication"])?)?;
            common::info_field(&info, "raft_id")?.contains('/').then_some(())
        });
    }
    let mut one = cluster.client(1);
    wait_for("CLUSTERDOWN without a majority of intact replicas", || match one.call(&["SET", "kept:0", "x"]) {
        Frame::Error(e) if e.starts_with(b"CLUSTERDOWN") => Some(()),
        _ => None,
    });

    // The operator accepts the loss: node 3, wiped again, votes as before.
    cluster.wipe(3);
    cluster.restart_with(3, &["--unsafe-rejoin-after-data-loss"]);
    let mut routed = Routed::new(&cluster.ports);
    for i in 0..20 {
        let key = format!("kept:{i}");
        assert_eq!(routed.call(&["GET", &key]), Some(bulk("v")), "{key}");
    }
    assert_eq!(routed.call(&["SET", "after", "v"]), Some(Frame::OK));
    wait_for("node 2's new identity to be swapped in everywhere", || {
        let info = frame_text(&Client::try_connect(cluster.port(1))?.try_call(&["INFO", "replication"])?)?;
        let id = {
            let two = frame_text(&Client::try_connect(cluster.port(2))?.try_call(&["INFO", "replication"])?)?;
            common::info_field(&two, "raft_id")?.to_string()
        };
        voters_per_group(&info).iter().all(|v| v.contains(&id) && !v.iter().any(|m| m == "2")).then_some(())
    });
}

#[test]
fn a_shard_that_lost_its_majority_is_down_while_the_others_serve() {
    let flags = ["--peer-check-interval-ms", "100", "--cluster-down-after-ms", "1000", "--write-timeout-ms", "1000"];
    // Four nodes, three replicas per shard: shards live on different node sets.
    let mut cluster = Cluster::start("repl-one-shard-down", 4, &flags);
    let Frame::Array(entries) = cluster.client(1).call(&["CLUSTER", "SLOTS"]) else { panic!("CLUSTER SLOTS") };
    let ranges: Vec<(u16, Vec<usize>)> = entries
        .iter()
        .map(|entry| {
            let Frame::Array(parts) = entry else { panic!("{entry:?}") };
            let Frame::Integer(start) = parts[0] else { panic!("{parts:?}") };
            let nodes = parts[2..]
                .iter()
                .map(|n| match n {
                    Frame::Array(n) => match n[1] {
                        Frame::Integer(port) => cluster.node_of_port(port as u16),
                        _ => panic!("{n:?}"),
                    },
                    _ => panic!("{n:?}"),
                })
                .collect();
            (start as u16, nodes)
        })
        .collect();
    let lost = |nodes: &[usize]| nodes.contains(&3) && nodes.contains(&4);
    assert!(ranges.iter().any(|(_, n)| lost(n)) && ranges.iter().any(|(_, n)| !lost(n)), "{ranges:?}");
    let key_in = |start: u16| {
        (0..).map(|i| format!("k{i}")).find(|k| shoal_engine::slot::key_slot(k.as_bytes()) == start).unwrap()
    };
    cluster.kill(3);
    cluster.kill(4);
    let mut routed = Routed::new(&cluster.ports[..2]);
    for (start, nodes) in &ranges {
        let key = key_in(*start);
        if lost(nodes) {
            // The one surviving replica answers: down, not applied.
            let survivor = *nodes.iter().find(|&&n| n <= 2).expect("a replica on node 1 or 2");
            let mut c = cluster.client(survivor);
            wait_for(&format!("CLUSTERDOWN for slot {start}"), || match c.call(&["SET", &key, "v"]) {
                Frame::Error(e) if e.starts_with(b"CLUSTERDOWN") => Some(()),
                _ => None,
            });
        } else {
            assert_eq!(routed.call(&["SET", &key, "v"]), Some(Frame::OK), "slot {start} on {nodes:?}");
        }
    }
}

/// Two of three disks lost at once and both nodes restarted together while
/// the survivor is unreachable (paused): each wiped node "never saw" the
/// other holding data, and they used to clear each other's quarantine and,
/// a majority with empty logs, elect leaders that would overwrite the
/// survivor's data. Two fresh nodes prove nothing to each other: they stay
/// in quarantine until the survivor answers, which says they lost their
/// data, and every key the survivor holds is still there.
#[test]
fn two_wiped_nodes_restarted_together_never_outvote_the_survivor() {
    let flags = ["--peer-check-interval-ms", "100", "--cluster-down-after-ms", "1000"];
    let mut cluster = Cluster::start("repl-two-wiped-together", 3, &flags);
    let mut routed = Routed::new(&cluster.ports);
    for i in 0..20 {
        assert_eq!(routed.call(&["SET", &format!("kept:{i}"), "v"]), Some(Frame::OK));
    }
    wait_converged(&cluster);
    wait_for("node 3 to have seen nodes 1 and 2 holding data", || {
        let seen = std::fs::read_to_string(cluster.dirs[2].join("peers-with-data")).ok()?;
        (seen.lines().any(|l| l.starts_with("1 ")) && seen.lines().any(|l| l.starts_with("2 "))).then_some(())
    });
    cluster.wipe(1);
    cluster.wipe(2);
    cluster.server(3).signal(libc::SIGSTOP);
    cluster.restart_together(&[1, 2]);
    // For twenty peer-check intervals, with only each other to ask, neither
    // may leave quarantine.
    let window = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while std::time::Instant::now() < window {
        for node in [1, 2] {
            let info = frame_text(&cluster.client(node).call(&["INFO", "replication"])).unwrap();
            assert_eq!(common::info_field(&info, "quarantine"), Some("1"), "node {node} left quarantine:\n{info}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    cluster.server(3).signal(libc::SIGCONT);
    for node in [1, 2] {
        wait_for("the wiped node to learn it lost its data and take a new identity", || {
            let info = frame_text(&Client::try_connect(cluster.port(node))?.try_call(&["INFO", "replication"])?)?;
            common::info_field(&info, "raft_id")?.contains('/').then_some(())
        });
    }
    // The survivor's copy is whole.
    let mut three = cluster.client(3);
    assert_eq!(three.call(&["READONLY"]), Frame::OK);
    for i in 0..20 {
        assert_eq!(three.call(&["GET", &format!("kept:{i}")]), bulk("v"), "kept:{i}");
    }
}

/// A key its leader reported expired stays expired after a failover to
/// nodes whose clocks are 30 s behind (they used to serve it again:
/// reads compared expiry with the serving node's own clock). The sweeper is
/// slowed so that the key is still in every keyspace, only hidden.
#[test]
fn a_key_reported_expired_stays_expired_on_a_leader_whose_clock_is_behind() {
    let flags = ["--shards", "1", "--sweep-interval-ms", "3600000", "--peer-check-interval-ms", "100"];
    let mut cluster = Cluster::start("repl-skewed-clock", 3, &flags);
    for node in [2, 3] {
        cluster.kill(node);
        cluster.restart_with(node, &["--debug-clock-skew-ms", "-30000"]);
    }
    cluster.wait_all_reachable();
    let mut routed = Routed::new(&cluster.ports);
    wait_for("a leader that takes writes", || {
        (routed.call(&["SET", "short", "lived", "PX", "1500"]) == Some(Frame::OK)).then_some(())
    });
    // Reported expired by the leader (node 1, the preferred one; the others
    // are 30 s behind and cannot have it expired yet).
    wait_for("the leader to report the key expired", || {
        (routed.call(&["GET", "short"]) == Some(Frame::Null)).then_some(())
    });
    let owner = cluster.slot_owners(1)[usize::from(shoal_engine::slot::key_slot(b"short"))];
    cluster.kill(owner);
    let survivors: Vec<u16> = (1..=3).filter(|&n| n != owner).map(|n| cluster.port(n)).collect();
    let mut others = Routed::new(&survivors);
    let read = wait_for("a new leader to answer", || match others.call(&["GET", "short"]) {
        Some(Frame::Error(_)) | None => None,
        Some(reply) => Some(reply),
    });
    assert_eq!(read, Frame::Null, "a key reported expired came back after the failover");
}
