//! `shoal local` and the client tools against it: the cluster comes up and
//! says `ready`, the tools route through it, a dead node is reported and not
//! restarted, and SIGTERM stops every node.

mod common;

use common::{free_base_port, temp_dir, wait_for, BIN, TIMEOUT};
use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;

/// Reads `shoal local`'s stdout on a thread, line by line.
fn lines(stdout: ChildStdout) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

fn wait_line(rx: &mpsc::Receiver<String>, seen: &mut Vec<String>, want: impl Fn(&str) -> bool) {
    loop {
        match rx.recv_timeout(TIMEOUT) {
            Ok(line) => {
                let done = want(&line);
                seen.push(line);
                if done {
                    return;
                }
            }
            Err(e) => panic!("waiting for a line from shoal local ({e}); so far: {seen:#?}"),
        }
    }
}

fn tool(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

struct Local(Child);

impl Drop for Local {
    fn drop(&mut self) {
        // SAFETY: signalling our own child; it stops its nodes on SIGTERM.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

#[test]
fn local_cluster_serves_the_tools_and_survives_a_dead_node() {
    let base = free_base_port(3);
    let dir = temp_dir("local");
    let mut child = Command::new(BIN)
        .args(["local", "--nodes", "3", "--port", &base.to_string(), "--dir"])
        .arg(&dir)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = lines(child.stdout.take().unwrap());
    let local = Local(child);
    let mut seen = Vec::new();
    wait_line(&rx, &mut seen, |l| l == "ready");
    let pids: Vec<i32> = seen
        .iter()
        .filter(|l| l.starts_with("node "))
        .map(|l| {
            assert!(l.contains(" server --id ") && l.contains("--initial-cluster"), "command line printed: {l}");
            l.split_whitespace().nth(3).unwrap().trim_end_matches(':').parse().unwrap()
        })
        .collect();
    assert_eq!(pids.len(), 3, "{seen:#?}");

    let seed = format!("127.0.0.1:{base}");
    let keys: Vec<String> = (0..30).map(|i| format!("key-{i}")).collect();
    for key in &keys {
        assert_eq!(tool(&["set", key, &format!("v-{key}"), "--cluster", &seed]), (true, "OK\n".into(), String::new()));
    }
    for key in &keys {
        let (ok, out, _) = tool(&["get", key, "--cluster", &seed]);
        assert!(ok);
        assert_eq!(out, format!("v-{key}\n"));
    }
    assert_eq!(tool(&["get", "missing", "--cluster", &seed]).1, "(nil)\n");
    assert_eq!(tool(&["keyslot", "foo"]).1, "12182\n");
    let (ok, status, err) = tool(&["status", "--cluster", &seed]);
    assert!(ok, "{err}");
    assert_eq!(status.lines().filter(|l| l.contains("connected")).count(), 3, "{status}");
    let shard_keys: i64 = status
        .lines()
        .skip_while(|l| !l.starts_with("SLOTS"))
        .skip(1)
        .filter_map(|l| l.split_whitespace().last()?.parse::<i64>().ok())
        .sum();
    assert_eq!(shard_keys, 30, "{status}");
    let (ok, out, _) = tool(&["del", "key-0", "key-1", "missing", "--cluster", &seed]);
    assert!(ok);
    assert_eq!(out, "2\n");

    // Kill node 3: shoal local reports it and does not restart it.
    // SAFETY: signalling a process we started (through shoal local).
    unsafe { libc::kill(pids[2], libc::SIGKILL) };
    wait_line(&rx, &mut seen, |l| l.starts_with("node 3 exited"));
    // The survivors notice node 3 is gone, and, every shard being a Raft
    // group of 3 replicas, elect new leaders for the shards it led: every
    // slot is served again.
    wait_for("node 1 to see node 3 down and every slot served", || {
        let mut c = common::Client::try_connect(base)?;
        let text = common::frame_text(&c.call(&["CLUSTER", "INFO"]))?;
        (text.contains("cluster_state:ok\r\n") && text.contains("cluster_reachable_nodes:2\r\n")).then_some(())
    });
    let (ok, status, err) = tool(&["status", "--cluster", &seed, "--timeout-ms", "300"]);
    assert!(ok, "{err}");
    let node3 = format!("127.0.0.1:{}", base + 2);
    assert!(
        status.lines().any(|l| l.contains(&node3) && l.contains("failed")),
        "status must show node 3 failed:\n{status}"
    );
    // No acknowledged write was lost with the node: every key is served.
    for key in &keys[2..] {
        let (ok, out, err) = tool(&["get", key, "--cluster", &seed, "--timeout-ms", "5000"]);
        assert_eq!((ok, out), (true, format!("v-{key}\n")), "{key} after node 3 died: {err}");
    }
    drop(local);
    for pid in &pids[..2] {
        wait_for("node processes to stop", || {
            // SAFETY: probing with signal 0 sends nothing.
            (unsafe { libc::kill(*pid, 0) } != 0).then_some(())
        });
    }
}
