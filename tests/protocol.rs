//! RESP over real TCP against a real `shoal server` process: pipelining,
//! RESP2/RESP3 shapes, binary safety, malformed input and the named limits.

mod common;

use bytes::Bytes;
use common::{bulk, err, Client, Server};
use shoal_proto::Frame;

#[test]
fn pipeline_of_1000_commands_replies_in_order() {
    let server = Server::start("pipeline", &[]);
    let mut c = server.client();
    let mut batch = Vec::new();
    for i in 0..1000 {
        let (k, v) = (format!("k{i}"), format!("v{i}"));
        batch
            .extend_from_slice(format!("*3\r\n$3\r\nSET\r\n${}\r\n{k}\r\n${}\r\n{v}\r\n", k.len(), v.len()).as_bytes());
        batch.extend_from_slice(format!("*2\r\n$3\r\nGET\r\n${}\r\n{k}\r\n", k.len()).as_bytes());
    }
    c.send_raw(&batch);
    for i in 0..1000 {
        assert_eq!(c.read(), Some(Frame::OK));
        assert_eq!(c.read(), Some(bulk(&format!("v{i}"))));
    }
    assert_eq!(c.call(&["DBSIZE"]), Frame::Integer(1000));
}

#[test]
fn binary_values_and_a_one_mebibyte_value_round_trip() {
    let server = Server::start("binary", &[]);
    let mut c = server.client();
    let all_bytes: Vec<u8> = (0..=255u8).collect();
    assert_eq!(c.call_bytes(&[b"SET", b"bin\r\nkey", &all_bytes]), Frame::OK);
    assert_eq!(c.call_bytes(&[b"GET", b"bin\r\nkey"]), Frame::Bulk(Bytes::from(all_bytes)));
    let big: Vec<u8> = (0..1024 * 1024).map(|i| (i % 251) as u8).collect();
    assert_eq!(c.call_bytes(&[b"SET", b"big", &big]), Frame::OK);
    assert_eq!(c.call_bytes(&[b"GET", b"big"]), Frame::Bulk(Bytes::from(big)));
    assert_eq!(c.call(&["STRLEN", "big"]), Frame::Integer(1024 * 1024));
    assert_eq!(c.call_bytes(&[b"SET", b"", b""]), Frame::OK);
    assert_eq!(c.call_bytes(&[b"GET", b""]), bulk(""));
}

#[test]
fn resp2_and_resp3_shapes() {
    let server = Server::start("resp3", &[]);
    let mut c = server.client();
    c.send_raw(b"*2\r\n$3\r\nGET\r\n$7\r\nmissing\r\n");
    assert_eq!(c.read(), Some(Frame::Null));
    let hello = c.call(&["HELLO", "3"]);
    let Frame::Map(fields) = hello else { panic!("HELLO 3 must reply with a map: {hello:?}") };
    assert!(fields.contains(&(bulk("proto"), Frame::Integer(3))));
    assert!(fields.contains(&(bulk("server"), bulk("redis"))));
    // RESP3 null is `_`: check the raw bytes, not our parser's reading.
    c.send_raw(b"*2\r\n$3\r\nGET\r\n$7\r\nmissing\r\n");
    let mut raw = [0u8; 3];
    std::io::Read::read_exact(&mut c.stream, &mut raw).unwrap();
    assert_eq!(&raw, b"_\r\n");
    assert_eq!(c.call(&["HELLO", "4"]), err("NOPROTO unsupported protocol version"));
    // After HELLO 2 the reply itself is already RESP2: a flat array.
    let Frame::Array(flat) = c.call(&["HELLO", "2"]) else { panic!("HELLO 2 reply") };
    assert!(flat.windows(2).any(|w| w == [bulk("proto"), Frame::Integer(2)]));
    c.send_raw(b"*2\r\n$3\r\nGET\r\n$7\r\nmissing\r\n");
    let mut raw = [0u8; 5];
    std::io::Read::read_exact(&mut c.stream, &mut raw).unwrap();
    assert_eq!(&raw, b"$-1\r\n");
}

#[test]
fn inline_commands_work() {
    let server = Server::start("inline", &[]);
    let mut c = server.client();
    c.send_raw(b"PING\r\nSET k \"a b\"\r\nGET k\n");
    assert_eq!(c.read(), Some(Frame::simple("PONG")));
    assert_eq!(c.read(), Some(Frame::OK));
    assert_eq!(c.read(), Some(bulk("a b")));
}

#[test]
fn garbage_closes_only_that_connection() {
    let server = Server::start("garbage", &[]);
    let mut good = server.client();
    assert_eq!(good.call(&["SET", "k", "v"]), Frame::OK);
    let mut bad = server.client();
    bad.send_raw(b"*2\r\n$3\r\nGET\r\n!!!!garbage\r\n");
    let Some(Frame::Error(e)) = bad.read() else { panic!("expected a protocol error") };
    assert!(e.starts_with(b"Protocol error: expected '$', got '!'"), "{e:?}");
    assert_eq!(bad.read(), None, "connection must be closed after a protocol error");
    let mut worse = server.client();
    worse.send_raw(&[0xff, 0x00, b'*', b'x', b'\r', b'\n']);
    let _ = worse.read();
    assert_eq!(good.call(&["GET", "k"]), bulk("v"));
}

#[test]
fn declared_lengths_beyond_limits_are_refused_without_allocating() {
    let server = Server::start(
        "limits",
        &[
            "--max-bulk-bytes",
            "1024",
            "--max-array-len",
            "8",
            "--max-inline-bytes",
            "128",
            "--max-request-bytes",
            "2500",
        ],
    );
    // Each bulk is within --max-bulk-bytes; the third would pass the request limit.
    let big_bulk = format!("$1000\r\n{}\r\n", "x".repeat(1000));
    let mut c = server.client();
    c.send_raw(format!("*8\r\n{big_bulk}{big_bulk}$1000\r\n").as_bytes());
    assert_eq!(c.read(), Some(err("Protocol error: request larger than the limit of 2500 bytes")));
    assert_eq!(c.read(), None);
    let cases: [(&[u8], &str); 4] = [
        (b"*1\r\n$1025\r\n", "Protocol error: invalid bulk length"),
        (b"*9\r\n", "Protocol error: invalid multibulk length"),
        (b"*1\r\n$9223372036854775807\r\n", "Protocol error: invalid bulk length"),
        (&[b'a'; 200], "Protocol error: too big inline request"),
    ];
    for (input, expected) in cases {
        let mut c = server.client();
        c.send_raw(input);
        assert_eq!(c.read(), Some(err(expected)));
        assert_eq!(c.read(), None);
    }
    let mut c = server.client();
    assert_eq!(c.call(&["SET", "k", &"x".repeat(1024)]), Frame::OK);
    assert_eq!(c.call(&["APPEND", "k", "y"]), err("ERR string exceeds maximum allowed size (proto-max-bulk-len)"));
    let reply = c.call(&["CONFIG", "GET", "proto-max-bulk-len"]);
    assert_eq!(reply, Frame::Array(vec![bulk("proto-max-bulk-len"), bulk("1024")]));
}

#[test]
fn max_clients_is_enforced_and_frees_up() {
    let server = Server::start("maxclients", &["--max-clients", "2"]);
    // The start-up probe's connection may not be reaped yet: retry until
    // each of the two admitted clients gets its PONG.
    let admitted = || {
        common::wait_for("a client slot", || {
            let mut c = Client::try_connect(server.port)?;
            c.send(&[b"PING"]);
            (c.read() == Some(Frame::simple("PONG"))).then_some(c)
        })
    };
    let first = admitted();
    let _second = admitted();
    let mut third = server.client();
    assert_eq!(third.read(), Some(err("ERR max number of clients reached")));
    assert_eq!(third.read(), None);
    drop(first);
    let _third = admitted();
}

#[test]
fn oversized_reply_closes_the_connection_not_the_server() {
    let server = Server::start("outputlimit", &["--max-output-bytes", "4096"]);
    let mut c = server.client();
    for i in 0..100 {
        assert_eq!(c.call(&["SET", &format!("key:{i}"), &"v".repeat(100)]), Frame::OK);
    }
    c.send(&[b"KEYS", b"*"]);
    let small = c.read();
    assert!(matches!(small, Some(Frame::Array(ref keys)) if keys.len() == 100), "{small:?}");
    let keys: Vec<String> = (0..100).map(|i| format!("key:{i}")).collect();
    let mut args: Vec<&[u8]> = vec![b"MGET"];
    args.extend(keys.iter().map(|k| k.as_bytes()));
    c.send(&args);
    assert_eq!(c.read(), None, "a 10 KB reply over a 4 KB limit must close the connection");
    assert_eq!(server.client().call(&["DBSIZE"]), Frame::Integer(100));
}

#[test]
fn error_replies_match_redis() {
    let server = Server::start("errors", &[]);
    let mut c = server.client();
    assert_eq!(c.call(&["GET"]), err("ERR wrong number of arguments for 'get' command"));
    assert_eq!(c.call(&["NOPE", "a"]), err("ERR unknown command 'NOPE', with args beginning with: 'a' "));
    assert_eq!(c.call(&["SET", "s", "abc"]), Frame::OK);
    assert_eq!(c.call(&["INCR", "s"]), err("ERR value is not an integer or out of range"));
    assert_eq!(c.call(&["SET", "n", "9223372036854775807"]), Frame::OK);
    assert_eq!(c.call(&["INCR", "n"]), err("ERR increment or decrement would overflow"));
    assert_eq!(c.call(&["SELECT", "1"]), err("ERR DB index is out of range"));
    assert_eq!(c.call(&["SELECT", "0"]), Frame::OK);
    assert_eq!(c.call(&["SET", "k", "v", "BOGUS"]), err("ERR syntax error"));
    assert_eq!(c.call(&["CONFIG", "GET", "no-such-parameter"]), Frame::Array(vec![]));
    assert_eq!(
        c.call(&["HELLO", "2", "AUTH", "bob", "secret"]),
        err("WRONGPASS invalid username-password pair or user is disabled.")
    );
    assert!(matches!(c.call(&["HELLO", "2", "AUTH", "default", "anything"]), Frame::Array(_)));
}

#[test]
fn command_table_describes_key_positions() {
    let server = Server::start("command", &[]);
    let mut c = server.client();
    let Frame::Integer(count) = c.call(&["COMMAND", "COUNT"]) else { panic!() };
    let Frame::Array(all) = c.call(&["COMMAND"]) else { panic!() };
    assert_eq!(all.len() as i64, count);
    let Frame::Array(info) = c.call(&["COMMAND", "INFO", "mset", "nosuch"]) else { panic!() };
    let Frame::Array(mset) = &info[0] else { panic!("{info:?}") };
    assert_eq!(mset.len(), 10);
    assert_eq!(&mset[..2], &[bulk("mset"), Frame::Integer(-3)]);
    assert_eq!(&mset[3..6], &[Frame::Integer(1), Frame::Integer(-1), Frame::Integer(2)]);
    assert_eq!(info[1], Frame::Null);
    let Frame::Array(docs) = c.call(&["COMMAND", "DOCS", "get"]) else { panic!() };
    assert_eq!(docs[0], bulk("get"));
}

#[test]
fn quit_replies_then_closes() {
    let server = Server::start("quit", &[]);
    let mut c = server.client();
    c.send_raw(b"QUIT\r\nPING\r\n");
    assert_eq!(c.read(), Some(Frame::OK));
    assert_eq!(c.read(), None);
}

/// Random bytes, random valid-looking prefixes and random commands from
/// many connections: the server answers or closes each connection, never
/// dies, and keeps serving. SHOAL_SEED replays a run.
#[test]
fn random_input_never_takes_the_server_down() {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    let seed = std::env::var("SHOAL_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random);
    println!("SHOAL_SEED={seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let server = Server::start("random-input", &["--max-bulk-bytes", "4096", "--max-array-len", "64"]);
    let words = ["SET", "GET", "MSET", "INCR", "EXPIRE", "CLUSTER", "HELLO", "SCAN", "CLIENT", "*", "$", "\r\n", "-1"];
    for _ in 0..200 {
        let mut input = Vec::new();
        match rng.random_range(0..3) {
            0 => input.extend((0..rng.random_range(1..200)).map(|_| rng.random::<u8>())),
            1 => {
                // A plausible multibulk header with lying lengths.
                let n = rng.random_range(-2i64..100);
                input.extend_from_slice(format!("*{n}\r\n${}\r\n", rng.random_range(-2i64..10_000)).as_bytes());
                input.extend((0..rng.random_range(0..50)).map(|_| rng.random::<u8>()));
            }
            _ => {
                // Inline commands built from real words and random arguments.
                for _ in 0..rng.random_range(1..8) {
                    input.extend_from_slice(words[rng.random_range(0..words.len())].as_bytes());
                    input.push(b' ');
                    input.extend_from_slice(rng.random::<i32>().to_string().as_bytes());
                    input.push(b' ');
                }
                input.extend_from_slice(b"\r\n");
            }
        }
        let mut c = server.client();
        c.stream.set_read_timeout(Some(std::time::Duration::from_millis(20))).unwrap();
        c.send_raw(&input);
        // Read whatever comes back: replies, a protocol error, or nothing
        // until the timeout (an incomplete request waits for more bytes).
        let mut sink = [0u8; 4096];
        while let Ok(n) = std::io::Read::read(&mut c.stream, &mut sink) {
            if n == 0 {
                break;
            }
        }
    }
    let mut c = server.client();
    assert_eq!(c.call(&["PING"]), Frame::simple("PONG"), "seed {seed}");
    assert_eq!(c.call(&["SET", "still", "here"]), Frame::OK);
    server.stop();
}

/// CLIENT INFO, FUNCTION FLUSH (Redis's test suite sends it before every
/// file), and INFO commandstats / errorstats counting what ran.
#[test]
fn client_info_function_flush_and_command_stats() {
    let server = Server::start("introspection", &[]);
    let mut c = server.client();
    assert_eq!(c.call(&["CLIENT", "SETNAME", "probe"]), Frame::OK);
    assert_eq!(c.call(&["CLIENT", "SETINFO", "LIB-NAME", "shoal-test"]), Frame::OK);
    let info = common::frame_text(&c.call(&["CLIENT", "INFO"])).expect("CLIENT INFO is text");
    let Frame::Integer(id) = c.call(&["CLIENT", "ID"]) else { panic!("CLIENT ID") };
    let fields: std::collections::HashMap<&str, &str> =
        info.trim_end().split(' ').filter_map(|kv| kv.split_once('=')).collect();
    assert_eq!(fields.get("id"), Some(&id.to_string().as_str()), "{info}");
    assert_eq!(fields.get("name"), Some(&"probe"), "{info}");
    assert_eq!(fields.get("lib-name"), Some(&"shoal-test"), "{info}");
    assert_eq!(fields.get("laddr"), Some(&format!("127.0.0.1:{}", server.port).as_str()), "{info}");
    assert_eq!(fields.get("resp"), Some(&"2"), "{info}");
    assert_eq!(c.call(&["FUNCTION", "FLUSH"]), Frame::OK);
    assert_eq!(c.call(&["FUNCTION", "FLUSH", "SYNC"]), Frame::OK);
    assert_eq!(c.call(&["FUNCTION", "FLUSH", "BOGUS"]), err("ERR syntax error"));

    for _ in 0..3 {
        assert_eq!(c.call(&["SET", "k", "v"]), Frame::OK);
    }
    assert_eq!(c.call(&["INCR", "k"]), err("ERR value is not an integer or out of range"));
    assert_eq!(c.call(&["GET"]), err("ERR wrong number of arguments for 'get' command"));
    let stats = common::frame_text(&c.call(&["INFO", "commandstats"])).unwrap();
    let line = |name: &str| stats.lines().find(|l| l.starts_with(&format!("cmdstat_{name}:"))).map(str::to_string);
    let set = line("set").unwrap_or_else(|| panic!("{stats}"));
    assert!(set.starts_with("cmdstat_set:calls=3,") && set.ends_with("rejected_calls=0,failed_calls=0"), "{set}");
    let incr = line("incr").unwrap_or_else(|| panic!("{stats}"));
    assert!(incr.starts_with("cmdstat_incr:calls=1,") && incr.ends_with("failed_calls=1"), "{incr}");
    let get = line("get").unwrap_or_else(|| panic!("{stats}"));
    assert!(get.ends_with("rejected_calls=1,failed_calls=0"), "{get}");
    assert!(line("client|info").is_some(), "{stats}");
    let errors = common::frame_text(&c.call(&["INFO", "errorstats"])).unwrap();
    assert!(errors.contains("errorstat_ERR:count=3"), "{errors}");
    let default = common::frame_text(&c.call(&["INFO"])).unwrap();
    assert!(!default.contains("cmdstat_"), "INFO without arguments leaves commandstats out, as Redis");
    assert!(default.contains("total_error_replies:3"), "{default}");
    let everything = common::frame_text(&c.call(&["INFO", "all"])).unwrap();
    assert!(everything.contains("# Commandstats") && everything.contains("# Errorstats"));
}
