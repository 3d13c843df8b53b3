//! `shoal check` end to end: it starts a 4-node cluster (3 replicas per
//! shard, so replicas can move), kills, pauses and wipes nodes, moves
//! replicas and leaders, and splits and merges shards under a register and
//! a set workload, and must find no violation;
//! then, fed the same history with one read falsified, it must find one.

mod common;

use std::process::Command;

use common::{free_base_port, temp_dir};

#[test]
fn shoal_check_finds_no_violation_under_kills_pauses_moves_and_resharding() {
    let dir = temp_dir("check");
    let port = free_base_port(4);
    let history = dir.join("history.jsonl");
    let out = Command::new(common::BIN)
        .args(["check", "--nodes", "4", "--port", &port.to_string(), "--duration-s", "40"])
        .args(["--nemesis", "kill,pause,wipe,membership,reshard"])
        .args(["--nemesis-interval-ms", "2500", "--rate", "300"])
        .arg("--dir")
        .arg(dir.join("cluster"))
        .arg("--history")
        .arg(&history)
        .output()
        .unwrap();
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
