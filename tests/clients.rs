//! Real clients against a real `shoal server` process: redis-py (RESP2 and
//! RESP3, through tests/python/test_redis_py.py), redis-cli (arguments,
//! commands on stdin, `--pipe` mass insert) and redis-benchmark.
//!
//! The tools must be installed (CI installs them; `common::tool` fails with
//! a clear message otherwise).

mod common;

use std::fs::File;
use std::path::PathBuf;
use std::process::{Output, Stdio};

use common::{assert_benchmarked, bulk, run_tool, temp_dir, tool, Server};
use shoal_proto::Frame;

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("utf-8 stdout")
}

// --- redis-py ---------------------------------------------------------------

fn redis_py(protocol: u8) {
    let server = Server::start(&format!("redis-py-resp{protocol}"), &[]);
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/test_redis_py.py");
    let out = run_tool(
        &format!("redis-py (protocol {protocol})"),
        tool("python3")
            .arg(&script)
            .args(["--port", &server.port.to_string()])
            .args(["--protocol", &protocol.to_string()])
            .stdin(Stdio::null()),
    );
    assert_eq!(stdout(&out), "ok\n", "stderr: {}", String::from_utf8_lossy(&out.stderr));
    server.stop();
}

#[test]
fn redis_py_resp3() {
    redis_py(3);
}

#[test]
fn redis_py_resp2() {
    redis_py(2);
}

// --- redis-cli --------------------------------------------------------------

/// `redis-cli -p PORT args…` with stdout not a tty, so replies are printed
/// raw: bulk strings bare, nil as an empty line, integers bare, errors on
/// stdout as the message followed by an empty line (redis-cli 7.0).
fn cli(port: u16, args: &[&str]) -> String {
    let out = run_tool(
        &format!("redis-cli {args:?}"),
        tool("redis-cli").args(["-p", &port.to_string()]).args(args).stdin(Stdio::null()),
    );
    stdout(&out)
}

#[test]
fn redis_cli_commands() {
    let server = Server::start("redis-cli", &[]);
    let port = server.port;

    // One command per invocation.
    assert_eq!(cli(port, &["PING"]), "PONG\n");
    assert_eq!(cli(port, &["SET", "foo", "bar"]), "OK\n");
    assert_eq!(cli(port, &["GET", "foo"]), "bar\n");
    assert_eq!(cli(port, &["GET", "missing"]), "\n");
    assert_eq!(cli(port, &["INCR", "n"]), "1\n");
    assert_eq!(cli(port, &["INCRBY", "n", "41"]), "42\n");
    assert_eq!(cli(port, &["SET", "sp", "with space\r\nand crlf"]), "OK\n");
    assert_eq!(cli(port, &["GET", "sp"]), "with space\r\nand crlf\n");
    assert_eq!(cli(port, &["MGET", "foo", "missing", "n"]), "bar\n\n42\n");
    assert_eq!(cli(port, &["EXISTS", "foo", "missing"]), "1\n");
    assert_eq!(cli(port, &["INCR", "foo"]), "ERR value is not an integer or out of range\n\n");
    assert_eq!(cli(port, &["GET"]), "ERR wrong number of arguments for 'get' command\n\n");
    assert_eq!(
        cli(port, &["NOSUCH", "a", "b"]),
        "ERR unknown command 'NOSUCH', with args beginning with: 'a' 'b' \n\n"
    );
    assert_eq!(cli(port, &["SET", "foo", "x", "EX", "0"]), "ERR invalid expire time in 'set' command\n\n");

    // Commands read from stdin, one per line.
    let dir = temp_dir("redis-cli-files");
    let script = dir.join("commands.txt");
    std::fs::write(
        &script,
        "SET a 1\nGET a\nINCR a\nGET nothing\nINCR foo\nMGET a nothing\n\
         SET \"quoted key\" \"two words\"\nGET \"quoted key\"\nDEL a \"quoted key\"\nPING\n",
    )
    .unwrap();
    let out = run_tool(
        "redis-cli < commands.txt",
        tool("redis-cli").args(["-p", &port.to_string()]).stdin(File::open(&script).unwrap()),
    );
    assert_eq!(
        stdout(&out),
        "OK\n1\n2\n\nERR value is not an integer or out of range\n\n2\n\n\
         OK\ntwo words\n2\nPONG\n"
    );

    // Mass insert: 10000 RESP-encoded SETs through --pipe.
    let mut mass = Vec::new();
    for i in 0..10_000 {
        let (k, v) = (format!("mass:{i}"), format!("value:{i}"));
        mass.extend_from_slice(format!("*3\r\n$3\r\nSET\r\n${}\r\n{k}\r\n${}\r\n{v}\r\n", k.len(), v.len()).as_bytes());
    }
    let resp = dir.join("mass.resp");
    std::fs::write(&resp, &mass).unwrap();
    let mut c = server.client();
    assert_eq!(c.call(&["FLUSHDB"]), Frame::OK);
    let out = run_tool(
        "redis-cli --pipe",
        tool("redis-cli").args(["-p", &port.to_string(), "--pipe"]).stdin(File::open(&resp).unwrap()),
    );
    let text = stdout(&out);
    assert!(text.contains("errors: 0, replies: 10000"), "redis-cli --pipe printed: {text}");
    assert_eq!(c.call(&["DBSIZE"]), Frame::Integer(10_000));
    assert_eq!(c.call(&["GET", "mass:0"]), bulk("value:0"));
    assert_eq!(c.call(&["GET", "mass:9999"]), bulk("value:9999"));
    server.stop();
}

// --- redis-benchmark --------------------------------------------------------

#[test]
fn redis_benchmark_runs_clean() {
    let server = Server::start("redis-benchmark", &[]);
    let mut c = server.client();
    for (round, pipeline) in [None, Some("16")].into_iter().enumerate() {
        let mut cmd = tool("redis-benchmark");
        cmd.args(["-p", &server.port.to_string(), "-q", "-n", "20000", "-c", "20"])
            .args(["-t", "ping,set,get,incr,mset"])
            .stdin(Stdio::null());
        if let Some(p) = pipeline {
            cmd.args(["-P", p]);
        }
        let what = format!("redis-benchmark (pipeline {pipeline:?})");
        let out = run_tool(&what, &mut cmd);
        let text = stdout(&out);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("rror"), "{what} stderr: {stderr}");
        assert_benchmarked(&what, &text, &["PING_INLINE", "PING_MBULK", "SET", "GET", "INCR", "MSET (10 keys)"]);
        // Without -r every INCR hits the same key: nothing may be lost.
        let total = 20_000 * (round + 1);
        assert_eq!(c.call(&["GET", "counter:__rand_int__"]), bulk(&total.to_string()), "{what}: INCR count");
        assert_eq!(c.call(&["STRLEN", "key:__rand_int__"]), Frame::Integer(3));
    }
    assert_eq!(c.call(&["PING"]), Frame::simple("PONG"));
    server.stop();
}
