//! The `shoal server` command line: bad flags, ports in use and unusable
//! directories fail with one line on stderr; SIGTERM and SIGINT shut down
//! cleanly and the snapshot brings the data back.

mod common;

use std::process::{Command, Stdio};

use common::{bulk, frame_text, free_port, temp_dir, wait_for, Server, BIN};
use shoal_proto::Frame;

/// Runs `shoal` with `args`, expecting it to fail; returns its stderr.
fn fails_with(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).stdin(Stdio::null()).output().unwrap();
    assert!(!out.status.success(), "expected failure for {args:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.trim_end().lines().count(), 1, "want one line on stderr, got: {stderr}");
    stderr
}

#[test]
fn bad_flags_give_one_line() {
    assert!(fails_with(&["server", "--bogus"]).contains("--bogus"));
    assert!(fails_with(&["server", "--port", "notaport"]).contains("notaport"));
    assert!(fails_with(&["server", "--port", "70000"]).contains("70000"));
    assert!(fails_with(&["server", "--max-clients", "0"]).contains("--max-clients"));
    assert!(fails_with(&["server", "--threads", "0"]).contains("--threads"));
    assert!(fails_with(&["server", "--max-bulk-bytes", "2000000000"]).contains("--max-bulk-bytes"));
    assert!(fails_with(&["server", "--log-level", "[bad"]).contains("--log-level"));
}

/// `--disable-thp yes` turns transparent huge pages off for the node's
/// process (the kernel's `THP_enabled` flag), and only then.
#[test]
fn disable_thp_turns_huge_pages_off() {
    let thp_enabled = |server: &Server| {
        let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap();
        let line = status.lines().find(|l| l.starts_with("THP_enabled:")).expect("a kernel that reports THP_enabled");
        line.split_whitespace().nth(1).unwrap().to_string()
    };
    assert_eq!(thp_enabled(&Server::start("thp-yes", &["--disable-thp", "yes"])), "0");
    assert_eq!(thp_enabled(&Server::start("thp-default", &[])), "1");
    assert!(fails_with(&["server", "--disable-thp", "maybe"]).contains("--disable-thp"));
}

#[test]
fn port_in_use_is_a_clear_error() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port().to_string();
    let dir = temp_dir("port-in-use");
    let msg = fails_with(&["server", "--port", &port, "--dir", dir.to_str().unwrap(), "--log-level", "error"]);
    assert!(msg.contains("cannot listen on") && msg.contains(&port), "{msg}");
}

#[test]
fn unusable_or_shared_data_dir_is_a_clear_error() {
    let file = temp_dir("dir-is-file").join("file");
    std::fs::write(&file, b"x").unwrap();
    let port = free_port().to_string();
    let msg = fails_with(&["server", "--port", &port, "--dir", file.to_str().unwrap(), "--log-level", "error"]);
    assert!(msg.contains("data directory"), "{msg}");

    let running = Server::start("dir-locked", &[]);
    let port = free_port().to_string();
    let msg = fails_with(&["server", "--port", &port, "--dir", running.dir.to_str().unwrap(), "--log-level", "error"]);
    assert!(msg.contains("in use by another shoal process"), "{msg}");
}

#[test]
fn clean_shutdown_saves_and_restart_restores() {
    let dir = temp_dir("restart");
    let server = Server::start_in(&dir, &[]);
    let mut c = server.client();
    assert_eq!(c.call(&["SET", "persisted", "yes"]), Frame::OK);
    assert_eq!(c.call(&["SET", "volatile", "v", "EX", "1000"]), Frame::OK);
    assert_eq!(c.call(&["INCRBY", "counter", "41"]), Frame::Integer(41));
    drop(c);
    server.stop();

    let server = Server::start_in(&dir, &[]);
    let mut c = server.client();
    assert_eq!(c.call(&["GET", "persisted"]), bulk("yes"));
    assert_eq!(c.call(&["INCR", "counter"]), Frame::Integer(42));
    let Frame::Integer(ttl) = c.call(&["TTL", "volatile"]) else { panic!() };
    assert!((990..=1000).contains(&ttl), "ttl {ttl}");
    drop(c);
    let status = server.stop_with(libc::SIGINT);
    assert!(status.success(), "SIGINT must also shut down cleanly: {status}");
    let server = Server::start_in(&dir, &[]);
    assert_eq!(server.client().call(&["DBSIZE"]), Frame::Integer(3));
}

#[test]
fn corrupt_snapshot_refuses_to_start() {
    let dir = temp_dir("corrupt");
    // The standalone server's one group keeps its snapshot in group-0/.
    std::fs::create_dir_all(dir.join("group-0")).unwrap();
    std::fs::write(dir.join("group-0/snapshot"), b"\0\0\0\x05{bad}garbage").unwrap();
    let port = free_port().to_string();
    let msg = fails_with(&["server", "--port", &port, "--dir", dir.to_str().unwrap(), "--log-level", "error"]);
    assert!(msg.contains("snapshot"), "{msg}");
}

#[test]
fn shutdown_and_kill_keep_every_acknowledged_write() {
    let dir = temp_dir("shutdown-cmd");
    let server = Server::start_in(&dir, &[]);
    let mut c = server.client();
    assert_eq!(c.call(&["SET", "kept", "1"]), Frame::OK);
    c.send(&[b"SHUTDOWN"]);
    assert_eq!(c.read(), None, "SHUTDOWN closes the connection without a reply");
    assert!(server.wait_exit().success());

    let server = Server::start_in(&dir, &[]);
    let mut c = server.client();
    assert_eq!(c.call(&["GET", "kept"]), bulk("1"));
    // Every write is in the WAL before it is answered: NOSAVE (like Redis
    // with an append-only file) discards nothing, and neither does kill -9.
    assert_eq!(c.call(&["SET", "nosave", "1"]), Frame::OK);
    c.send(&[b"SHUTDOWN", b"NOSAVE"]);
    assert_eq!(c.read(), None);
    assert!(server.wait_exit().success());

    let server = Server::start_in(&dir, &[]);
    let mut c = server.client();
    assert_eq!(c.call(&["GET", "kept"]), bulk("1"));
    assert_eq!(c.call(&["GET", "nosave"]), bulk("1"));
    assert_eq!(c.call(&["INCRBY", "n", "5"]), Frame::Integer(5));
    assert_eq!(c.call(&["SET", "ttl", "1", "EX", "100"]), Frame::OK);
    assert!(!server.stop_with(libc::SIGKILL).success());

    let server = Server::start_in(&dir, &[]);
    let mut c = server.client();
    assert_eq!(c.call(&["GET", "n"]), bulk("5"), "kill -9 after the reply loses nothing");
    assert!(matches!(c.call(&["TTL", "ttl"]), Frame::Integer(t) if (1..=100).contains(&t)), "expiry survives");
    assert_eq!(c.call(&["DBSIZE"]), Frame::Integer(4));
}

/// `--snapshot-log-bytes`: a group whose log in memory passes the limit
/// snapshots (and purges) long before `--snapshot-every-entries`; the same
/// writes under the default limit do not.
#[test]
fn snapshot_log_bytes_bounds_the_log_held_in_memory() {
    let snapshot_index = |server: &Server| {
        let text = frame_text(&server.client().call(&["INFO", "replication"])).expect("INFO text");
        let group = text.lines().find(|l| l.starts_with("group")).expect("a shard group line").to_string();
        let field = group.split(',').find_map(|kv| kv.strip_prefix("snapshot=")).expect("snapshot=");
        field.parse::<u64>().ok()
    };
    let flags = ["--snapshot-every-entries", "1000000"];
    let small = Server::start("log-bytes-small", &[&flags[..], &["--snapshot-log-bytes", "65536"]].concat());
    let default = Server::start("log-bytes-default", &flags);
    let value = "v".repeat(1000);
    for server in [&small, &default] {
        let mut client = server.client();
        for i in 0..200 {
            let field = format!("f{i}");
            assert_eq!(client.call(&["HSET", "h", &field, &value]), Frame::Integer(1));
        }
    }
    // 200 entries of ~1 KB: past 64 KiB, far below the default 8 MiB.
    wait_for("the small limit's group to snapshot", || snapshot_index(&small));
    assert_eq!(snapshot_index(&default), None, "the default limit snapshotted 200 KB of log");
}
