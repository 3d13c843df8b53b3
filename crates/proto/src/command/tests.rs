use bytes::Bytes;
use shoal_engine::{ExpireCondition, SetCondition};

use super::*;

fn parse(words: &[&str]) -> Result<Command, CommandError> {
    Command::parse(words.iter().map(|w| Bytes::copy_from_slice(w.as_bytes())).collect())
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn err(words: &[&str]) -> String {
    parse(words).unwrap_err().0
}

#[test]
fn unknown_and_arity_errors_match_redis() {
    assert_eq!(err(&["foo", "a", "b"]), "ERR unknown command 'foo', with args beginning with: 'a' 'b' ");
    assert_eq!(err(&["get"]), "ERR wrong number of arguments for 'get' command");
    assert_eq!(err(&["get", "a", "b"]), "ERR wrong number of arguments for 'get' command");
    assert_eq!(err(&["mset", "a", "1", "b"]), "ERR wrong number of arguments for 'mset' command");
    assert_eq!(err(&["client", "setname"]), "ERR wrong number of arguments for 'client|setname' command");
    assert_eq!(err(&["client", "bogus"]), "ERR unknown subcommand 'bogus'. Try CLIENT HELP.");
    assert_eq!(err(&["client"]), "ERR wrong number of arguments for 'client' command");
}

#[test]
fn set_options() {
    let Command::Set(s) = parse(&["SET", "k", "v", "nx", "px", "100", "get"]).unwrap() else { panic!() };
    assert_eq!(s.condition, SetCondition::IfAbsent);
    assert_eq!(s.expiry, SetExpiryArg::Expire(ExpiryArg::In(100)));
    assert!(s.get);
    let Command::Set(s) = parse(&["set", "k", "v", "IFEQ", "old", "EXAT", "5"]).unwrap() else { panic!() };
    assert_eq!(s.condition, SetCondition::IfEqual(b("old")));
    assert_eq!(s.expiry, SetExpiryArg::Expire(ExpiryArg::At(5000)));
    assert_eq!(err(&["set", "k", "v", "NX", "XX"]), "ERR syntax error");
    assert_eq!(err(&["set", "k", "v", "EX", "10", "PX", "10"]), "ERR syntax error");
    assert_eq!(err(&["set", "k", "v", "KEEPTTL", "EX", "10"]), "ERR syntax error");
    // Repeats are accepted, as in Redis; the last expiry wins.
    let Command::Set(s) = parse(&["set", "k", "v", "NX", "nx", "GET", "GET", "EX", "10", "ex", "20"]).unwrap() else {
        panic!()
    };
    assert_eq!(
        (s.condition, s.get, s.expiry),
        (SetCondition::IfAbsent, true, SetExpiryArg::Expire(ExpiryArg::In(20_000)))
    );
    assert_eq!(err(&["set", "k", "v", "EX", "10", "KEEPTTL"]), "ERR syntax error");
    assert_eq!(err(&["set", "k", "v", "EX"]), "ERR syntax error");
    assert_eq!(err(&["set", "k", "v", "EX", "0"]), "ERR invalid expire time in 'set' command");
    assert_eq!(err(&["set", "k", "v", "EX", "x"]), "ERR value is not an integer or out of range");
    assert_eq!(err(&["set", "k", "v", "EX", "9223372036854775807"]), "ERR invalid expire time in 'set' command");
    assert_eq!(err(&["setex", "k", "-1", "v"]), "ERR invalid expire time in 'setex' command");
}

#[test]
fn integers_and_expire() {
    assert_eq!(parse(&["decrby", "k", "5"]).unwrap(), Command::IncrBy { key: b("k"), delta: -5 });
    assert_eq!(err(&["decrby", "k", "-9223372036854775808"]), "ERR decrement would overflow");
    assert_eq!(err(&["incrby", "k", "1.5"]), "ERR value is not an integer or out of range");
    let Command::Expire { expiry, condition, .. } = parse(&["expire", "k", "10", "gt"]).unwrap() else { panic!() };
    assert_eq!(expiry, ExpiryArg::In(10_000));
    assert_eq!(condition, ExpireCondition::IfGreater);
    assert!(parse(&["expire", "k", "10", "nx", "xx"]).is_err());
    assert_eq!(err(&["expire", "k", "10", "gt", "lt"]), "ERR GT and LT options at the same time are not compatible");
    let condition_of = |flags: &[&str]| {
        let mut words = vec!["expire", "k", "10"];
        words.extend_from_slice(flags);
        let Command::Expire { condition, .. } = parse(&words).unwrap() else { panic!() };
        condition
    };
    assert_eq!(condition_of(&["xx", "lt"]), ExpireCondition::IfSomeAndLess);
    assert_eq!(condition_of(&["lt", "xx"]), ExpireCondition::IfSomeAndLess);
    assert_eq!(condition_of(&["xx", "gt"]), ExpireCondition::IfGreater);
    assert_eq!(condition_of(&["xx", "xx"]), ExpireCondition::IfSome);
    assert_eq!(err(&["expire", "k", "9223372036854775807"]), "ERR invalid expire time in 'expire' command");
}

#[test]
fn scan_and_connection() {
    let Command::Scan(s) = parse(&["scan", "0", "match", "a*", "count", "5"]).unwrap() else { panic!() };
    assert_eq!((s.cursor, s.pattern, s.count), (0, Some(b("a*")), 5));
    assert_eq!(err(&["scan", "x"]), "ERR invalid cursor");
    assert_eq!(err(&["cluster", "getkeysinslot", "1", "-1"]), "ERR Invalid slot or number of keys");
    assert_eq!(err(&["cluster", "getkeysinslot", "16384", "1"]), "ERR Invalid slot or number of keys");
    assert_eq!(err(&["cluster", "countkeysinslot", "16384"]), "ERR Invalid slot");
    assert_eq!(err(&["scan", "0", "count", "0"]), "ERR syntax error");
    assert!(matches!(parse(&["hello", "3"]).unwrap(), Command::Hello(Hello { protover: Some(3), .. })));
    assert_eq!(err(&["hello", "x"]), "ERR Protocol version is not an integer or out of range");
    assert_eq!(parse(&["PING"]).unwrap(), Command::Ping(None));
    assert_eq!(err(&["PING", "a", "b"]), "ERR wrong number of arguments for 'ping' command");
    assert_eq!(parse(&["command", "info", "get"]).unwrap(), Command::CommandInfo(Some(vec![b("get")])));
}

#[test]
fn expiry_resolution() {
    assert_eq!(ExpiryArg::In(100).resolve(1000), Some(1100));
    assert_eq!(ExpiryArg::At(-5).resolve(1000), Some(0));
    assert_eq!(ExpiryArg::In(i64::MAX).resolve(1000), None);
}

#[test]
fn every_table_entry_parses_with_minimal_arguments() {
    for spec in COMMANDS.iter().flat_map(|s| std::iter::once(*s).chain(s.subcommands)) {
        if !spec.subcommands.is_empty() && spec.name != "command" {
            continue;
        }
        let mut words: Vec<&str> = spec.name.split('|').collect();
        let needed = spec.arity.unsigned_abs() as usize;
        while words.len() < needed {
            words.push("1");
        }
        if spec.name == "client|setinfo" {
            words[2] = "lib-name";
        }
        if spec.name == "cluster|shoal" {
            words[2] = "map";
        }
        let parsed = parse(&words);
        if is_typed(spec.name) {
            // The engine's commands check what their arguments mean ("1"
            // is not a BITOP operation): only arity must hold here.
            let arity = |e: &CommandError| e.0.contains("wrong number of arguments");
            assert!(!parsed.as_ref().is_err_and(arity), "{}: {:?}", spec.name, parsed);
        } else {
            assert!(parsed.is_ok(), "{}: {:?}", spec.name, parsed);
        }
    }
}

/// Whether a command is one of the engine's (`table_types`).
fn is_typed(name: &str) -> bool {
    let top = name.split('|').next().unwrap_or(name);
    super::table_types::TYPE_COMMANDS.iter().any(|s| s.name == top)
}

#[test]
fn shoal_tags_take_the_whole_u64_range() {
    // Our client picks its id at random from all of u64.
    let max = u64::MAX.to_string();
    assert!(matches!(
        parse(&["CLIENT", "SHOAL-TAG", &max, "0"]).unwrap(),
        Command::ClientShoalTag { client: u64::MAX, seq: 0, retry: false }
    ));
    for bad in ["-1", "+5", "18446744073709551616", "1.5", ""] {
        assert!(err(&["CLIENT", "SHOAL-TAG", bad, "1"]).contains("2^64-1"), "{bad}");
    }
}

#[test]
fn cluster_shoal_subcommands_parse_and_check_their_arguments() {
    use super::ShoalAdmin;
    let admin = |words: &[&str]| match parse(words) {
        Ok(Command::ClusterShoal(admin)) => admin,
        other => panic!("{words:?}: {other:?}"),
    };
    assert_eq!(admin(&["CLUSTER", "SHOAL", "MAP"]), ShoalAdmin::Map);
    assert_eq!(
        admin(&["cluster", "shoal", "join", "7", "10.0.0.4", "7004", "17004"]),
        ShoalAdmin::Join { nonce: 7, host: Bytes::from_static(b"10.0.0.4"), port: 7004, peer_port: 17004 }
    );
    assert_eq!(
        admin(&["CLUSTER", "SHOAL", "MOVE-REPLICA", "2", "1", "127.0.0.1:7004"]),
        ShoalAdmin::MoveReplica { shard: 2, from: Bytes::from_static(b"1"), to: Bytes::from_static(b"127.0.0.1:7004") }
    );
    assert_eq!(admin(&["CLUSTER", "SHOAL", "REMOVE-NODE", "3"]), ShoalAdmin::RemoveNode(Bytes::from_static(b"3")));
    for words in [
        &["CLUSTER", "SHOAL", "MAP"][..],
        &["CLUSTER", "SHOAL", "JOIN", "7", "h", "1", "2"],
        &["CLUSTER", "SHOAL", "MOVE-REPLICA", "2", "1", "h:1"],
        &["CLUSTER", "SHOAL", "TRANSFER-LEADER", "2", "1"],
        &["CLUSTER", "SHOAL", "REMOVE-NODE", "3"],
        &["CLUSTER", "SHOAL", "APPLY", "{}"],
        &["CLUSTER", "SHOAL", "SPLIT", "4"],
        &["CLUSTER", "SHOAL", "SPLIT", "4", "9000"],
        &["CLUSTER", "SHOAL", "MERGE", "0", "3"],
    ] {
        let back: Vec<String> = admin(words).words().iter().map(|w| String::from_utf8_lossy(w).into_owned()).collect();
        assert_eq!(back, words, "words() gives back what was parsed");
    }
    assert!(err(&["CLUSTER", "SHOAL", "JOIN", "7", "h", "70000", "1"]).contains("invalid port"));
    assert!(err(&["CLUSTER", "SHOAL", "MOVE-REPLICA", "-1", "1", "2"]).contains("invalid shard"));
    assert!(err(&["CLUSTER", "SHOAL", "MAP", "extra"]).contains("syntax"));
    assert_eq!(admin(&["CLUSTER", "SHOAL", "SPLIT", "4", "9000"]), ShoalAdmin::Split { shard: 4, at: Some(9000) });
    assert!(err(&["CLUSTER", "SHOAL", "SPLIT", "4", "16384"]).contains("Invalid slot"));
    assert!(err(&["CLUSTER", "SHOAL", "GROW"]).contains("unknown CLUSTER SHOAL subcommand 'grow'"));
}
