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
