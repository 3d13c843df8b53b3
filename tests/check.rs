//! `shoal check` end to end: it starts a 4-node cluster (3 replicas per
//! shard, so replicas can move), kills, pauses and wipes nodes, moves
//! replicas and leaders, and splits and merges shards under a register and
//! a set workload, and must find no violation;
//! then, fed the same history with one read falsified, it must find one.
//! The list-append workload likewise, briefly, on 3 nodes under kills.

mod common;

use std::process::Command;

use common::{free_base_port, temp_dir};

#[test]
fn shoal_check_finds_no_violation_under_kills_pauses_moves_and_resharding() {
    let dir = temp_dir("check");
    let port = free_base_port(4);
    let history = dir.join("history.jsonl");
    let out = shoal_check(
        &["--nodes", "4", "--port", &port.to_string(), "--duration-s", "40"],
        &["--nemesis", "kill,pause,wipe,membership,reshard", "--nemesis-interval-ms", "2500", "--rate", "300"],
        &dir,
        &history,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    // The seed line comes first: a failure can be rerun with it.
    println!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "shoal check failed: {}", out.status);
    assert!(stdout.contains("verdict: valid"), "{stdout}");
    let faults = stdout.lines().filter(|l| l.starts_with("fault: ")).count();
    assert!(faults >= 4, "the nemesis injected {faults} faults");
    assert!(!stdout.contains("restart failed"), "{stdout}");

    // The same history with one successful read changed to a value nobody
    // wrote: the recheck must call it a violation.
    let text = std::fs::read_to_string(&history).unwrap();
    let mut falsified = false;
    let lines: Vec<String> = text
        .lines()
        .map(|line| {
            let mut event: serde_json::Value = serde_json::from_str(line).unwrap();
            if !falsified && event["type"] == "ok" && event["f"] == "read" && event["value"].is_u64() {
                event["value"] = serde_json::json!(987_654_321_000u64);
                falsified = true;
            }
            event.to_string()
        })
        .collect();
    assert!(falsified, "the history has a successful read");
    let bad = dir.join("falsified.jsonl");
    std::fs::write(&bad, lines.join("\n")).unwrap();
    let out = Command::new(common::BIN).args(["check", "--recheck"]).arg(&bad).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("register: INVALID") && stdout.contains("987654321000"), "{stdout}");
    // And the true history rechecks as valid.
    let out = Command::new(common::BIN).args(["check", "--recheck"]).arg(&history).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}

/// The list-append workload on 3 nodes with a node killed every 2 s: the
/// lists must pass (no duplicate, every read a prefix of every later one,
/// nothing acknowledged lost); then the same history with one acknowledged
/// element taken out of its key's final read must fail.
#[test]
fn shoal_check_list_append_finds_no_violation_under_kills() {
    let dir = temp_dir("check-lists");
    let port = free_base_port(3);
    let history = dir.join("history.jsonl");
    let started = std::time::Instant::now();
    let out = shoal_check(
        &["--workload", "list-append", "--nodes", "3", "--port", &port.to_string()],
        &["--duration-s", "8", "--nemesis", "kill", "--nemesis-interval-ms", "2000", "--rate", "200"],
        &dir,
        &history,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}\n{}\n(took {:?})", String::from_utf8_lossy(&out.stderr), started.elapsed());
    assert!(out.status.success(), "shoal check failed: {}", out.status);
    assert!(stdout.contains("verdict: valid"), "{stdout}");
    assert!(stdout.contains("list-append: 4 keys"), "{stdout}");
    assert!(!stdout.contains("register:") && !stdout.contains("set:"), "only the list workload ran: {stdout}");
    let faults = stdout.lines().filter(|l| l.starts_with("fault: ")).count();
    assert!(faults >= 1, "the nemesis injected {faults} faults");
    assert!(!stdout.contains("restart failed"), "{stdout}");

    let text = std::fs::read_to_string(&history).unwrap();
    let events: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let ok = |f: &str| events.iter().filter(|e| e["type"] == "ok" && e["f"] == f).count();
    assert!(ok("append") > 20 && ok("read-list") > 4, "{} appends, {} reads", ok("append"), ok("read-list"));

    // Take one acknowledged element out of its key's last read.
    let acked: Vec<(String, u64)> = events
        .iter()
        .filter(|e| e["type"] == "ok" && e["f"] == "append")
        .map(|e| (e["key"].as_str().unwrap().to_string(), e["value"].as_u64().unwrap()))
        .collect();
    let (key, element) = acked.last().unwrap().clone();
    let last_read = events
        .iter()
        .rposition(|e| e["type"] == "ok" && e["f"] == "read-list" && e["key"] == key.as_str())
        .expect("a final read of every key");
    let mut falsified = events.clone();
    let list = falsified[last_read]["value"].as_array_mut().unwrap();
    let before = list.len();
    list.retain(|v| v.as_u64() != Some(element));
    assert_eq!(list.len(), before - 1, "acknowledged {element} is in the final read of {key}");
    let bad = dir.join("falsified.jsonl");
    let lines: Vec<String> = falsified.iter().map(|e| e.to_string()).collect();
    std::fs::write(&bad, lines.join("\n")).unwrap();
    let out = Command::new(common::BIN).args(["check", "--recheck"]).arg(&bad).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("INVALID: list-append") && stdout.contains(&format!("element {element}")), "{stdout}");
    assert!(stdout.contains("is lost"), "{stdout}");
    let out = Command::new(common::BIN).args(["check", "--recheck"]).arg(&history).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}

/// Runs `shoal check` with `args` and `more`, its cluster under `dir`,
/// writing the history to `history`.
fn shoal_check(args: &[&str], more: &[&str], dir: &std::path::Path, history: &std::path::Path) -> std::process::Output {
    Command::new(common::BIN)
        .arg("check")
        .args(args)
        .args(more)
        .arg("--dir")
        .arg(dir.join("cluster"))
        .arg("--history")
        .arg(history)
        .output()
        .unwrap()
}
