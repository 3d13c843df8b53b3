//! What no client can do to a node (issue: safety first): a write too large
//! for one log entry is refused before it is proposed and the node serves
//! on; a node whose WAL fails stops with one clear line instead of living on
//! as a zombie.

mod common;

use common::{bulk, wait_for, Server};
use shoal_proto::Frame;

fn error_text(frame: &Frame) -> String {
    match frame {
        Frame::Error(e) => String::from_utf8_lossy(e).into_owned(),
        other => panic!("expected an error, got {other:?}"),
    }
}

/// Sends `MSET {t}a V {t}b V` with two values of `value_bytes` and checks
/// that it is refused, that nothing of it was applied, and that the node
/// goes on taking writes (before the fix, the WAL writer thread panicked
/// on the record and every later write failed).
fn mset_over_the_limit_is_refused(server: &Server, value_bytes: usize) {
    let value = vec![b'v'; value_bytes];
    let mut c = server.client();
    let reply = c.call_bytes(&[b"MSET", b"{t}a", &value, b"{t}b", &value]);
    let text = error_text(&reply);
    assert!(text.contains("max-write-bytes"), "{text}");
    drop(value);
    assert_eq!(c.call(&["EXISTS", "{t}a", "{t}b"]), Frame::Integer(0));
    assert_eq!(c.call(&["SET", "after", "1"]), Frame::simple("OK"));
    assert_eq!(c.call(&["GET", "after"]), bulk("1"));
}

#[test]
fn a_write_over_max_write_bytes_is_refused_and_the_node_serves_on() {
    let dir = common::temp_dir("safety-write-limit");
    let server = Server::start_in(&dir, &["--max-write-bytes", "1048576"]);
    mset_over_the_limit_is_refused(&server, 600 * 1024);
    // Just under the limit is fine.
    let mut c = server.client();
    let value = vec![b'w'; 500 * 1024];
    assert_eq!(c.call_bytes(&[b"MSET", b"{t}a", &value, b"{t}b", &value]), Frame::simple("OK"));
    server.stop();
    // The WAL is whole: a restart recovers both writes.
    let server = Server::start_in(&dir, &[]);
    let mut c = server.client();
    assert_eq!(c.call(&["STRLEN", "{t}b"]), Frame::Integer(500 * 1024));
    assert_eq!(c.call(&["GET", "after"]), bulk("1"));
    server.stop();
}

#[test]
fn max_write_bytes_over_what_a_log_entry_holds_is_a_flag_error() {
    let out = std::process::Command::new(common::BIN)
        .args(["server", "--max-write-bytes", "2147483648"])
        .output()
        .expect("run shoal server");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--max-write-bytes must be at most"), "{stderr}");
}

/// The exact request from the report: two values just inside the default
/// `--max-bulk-bytes`, 1 GiB in one MSET. Needs about 4 GiB of memory and
/// a minute in a debug build: `cargo test --test safety -- --ignored`.
#[test]
#[ignore]
fn the_largest_legal_mset_is_refused_not_fatal() {
    let server = Server::start("safety-huge-mset", &[]);
    mset_over_the_limit_is_refused(&server, 536_870_906);
    server.stop();
}

#[test]
fn a_node_whose_wal_fails_exits_with_one_clear_line() {
    let dir = common::temp_dir("safety-wal-fails");
    let log = dir.with_extension("log");
    let mut server = Server::start_logging_to(&dir, &["--wal-segment-bytes", "65536"], &log);
    let mut c = server.client();
    assert_eq!(c.call(&["SET", "before", "1"]), Frame::simple("OK"));
    // The WAL's directory disappears under it: the next segment cannot be
    // created, so the WAL fails once the current one is full.
    std::fs::remove_dir_all(dir.join("wal")).unwrap();
    let value = "x".repeat(8 * 1024);
    for i in 0..64 {
        match c.try_call(&["SET", &format!("k{i}"), &value]) {
            Some(Frame::Simple(_)) | Some(Frame::Error(_)) => {}
            Some(other) => panic!("unexpected reply {other:?}"),
            None => break,
        }
    }
    let status = wait_for("the node to stop", || server.try_exit_status());
    assert!(!status.success(), "a node with a failed WAL exits non-zero, got {status}");
    let stderr = std::fs::read_to_string(&log).unwrap();
    let last = stderr.lines().last().unwrap_or_default();
    assert!(last.starts_with("shoal: the write-ahead log failed"), "last line: {last:?}\n{stderr}");
}

/// WAL segments in `dir/wal`.
fn wal_segments(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir.join("wal"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("wal-"))
        .count()
}

/// One hot group and several idle ones on a node, with small segments: the
/// idle groups (one write each, far from their snapshot policy) used to keep
/// every segment written after theirs. Compaction snapshots and purges them,
/// so the segment count stays near `--wal-max-segments`.
#[test]
fn idle_groups_do_not_pin_the_wal() {
    let port = common::free_port();
    let dir = common::temp_dir("safety-wal-bounded");
    let cluster = format!("1=127.0.0.1:{port}@{}", common::free_port());
    let flags = [
        "--id",
        "1",
        "--initial-cluster",
        &cluster,
        "--shards",
        "6",
        "--wal-segment-bytes",
        "65536",
        "--wal-max-segments",
        "4",
    ];
    let server = Server::start_with_args(port, &dir, &flags);
    let mut c = server.client();
    // One write to every group (they are idle from now on)...
    for i in 0..200 {
        // The groups elect themselves just after the node answers PING.
        let key = format!("idle:{i}");
        wait_for("a write to be taken", || (c.call(&["SET", &key, "1"]) == Frame::simple("OK")).then_some(()));
    }
    // ...then a hot key: about 5 MB of log, 80 segments' worth.
    let value = "v".repeat(200);
    for round in 0..40 {
        let mut batch = Vec::new();
        for _ in 0..500 {
            batch.extend_from_slice(
                format!("*3\r\n$3\r\nSET\r\n$3\r\nhot\r\n${}\r\n{value}\r\n", value.len()).as_bytes(),
            );
        }
        c.send_raw(&batch);
        for _ in 0..500 {
            assert_eq!(c.read(), Some(Frame::simple("OK")), "round {round}");
        }
    }
    let segments = wait_for("the WAL to be compacted", || {
        let n = wal_segments(&dir);
        (n <= 6).then_some(n)
    });
    println!("{segments} WAL segments after 20000 writes");
    // Nothing was lost by compacting: a restart recovers every key.
    server.stop();
    let server = Server::start_with_args(port, &dir, &flags);
    let mut c = server.client();
    // DBSIZE counts the groups led here: wait for every one to elect.
    wait_for("every key back", || (c.call(&["DBSIZE"]) == Frame::Integer(201)).then_some(()));
    assert_eq!(c.call(&["STRLEN", "hot"]), Frame::Integer(200));
    server.stop();
}

/// Below `--min-free-disk-bytes` free, writes are refused with Redis's
/// `-MISCONF` and reads are served; with space back, writes go on. (The
/// limit stands in for a disk filling up: no test fills a real disk.)
#[test]
fn a_nearly_full_disk_refuses_writes_and_serves_reads() {
    let dir = common::temp_dir("safety-disk-low");
    let server = Server::start_in(&dir, &[]);
    assert_eq!(server.client().call(&["SET", "k", "v"]), Frame::simple("OK"));
    server.stop();
    // More free space than any disk has.
    let server = Server::start_in(&dir, &["--min-free-disk-bytes", "18446744073709551615"]);
    let mut c = server.client();
    let refused = wait_for("writes to be refused", || match c.call(&["SET", "k", "w"]) {
        Frame::Error(e) => Some(String::from_utf8_lossy(&e).into_owned()),
        _ => None,
    });
    assert!(refused.starts_with("MISCONF ") && refused.contains("--min-free-disk-bytes"), "{refused}");
    assert_eq!(c.call(&["GET", "k"]), bulk("v"), "reads are served");
    assert!(matches!(c.call(&["DEL", "k"]), Frame::Error(e) if e.starts_with(b"MISCONF")));
    server.stop();
    let server = Server::start_in(&dir, &[]);
    let mut c = server.client();
    assert_eq!(c.call(&["GET", "k"]), bulk("v"), "nothing was applied while refused");
    assert_eq!(c.call(&["SET", "k", "w"]), Frame::simple("OK"));
    server.stop();
}
