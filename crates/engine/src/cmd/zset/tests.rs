//! The sorted-set commands run end to end through `Cmd::parse` and
//! `Db::run`, with the replies Redis 7.2 gives.

use bytes::Bytes;

use crate::cmd::{Cmd, ZSetCmd};
use crate::reply::Out;
use crate::value::{SetValue, Value};
use crate::Db;

fn argv(line: &str) -> Vec<Bytes> {
    line.split_whitespace().map(|w| Bytes::copy_from_slice(w.as_bytes())).collect()
}

/// Runs one command line (words split on spaces); a parse error is the reply.
fn exec(db: &Db, line: &str) -> Out {
    match Cmd::parse(&argv(line)) {
        Ok(cmd) => db.run(&cmd, 1_000, 7),
        Err(fault) => Out::Err(fault),
    }
}

fn int(n: i64) -> Out {
    Out::Int(n)
}

fn bulk(s: &str) -> Out {
    Out::Bulk(Bytes::copy_from_slice(s.as_bytes()))
}

fn bulks(items: &[&str]) -> Out {
    Out::Array(items.iter().map(|s| bulk(s)).collect())
}

fn pairs(items: &[(&str, f64)]) -> Out {
    Out::Pairs(items.iter().map(|(m, s)| (bulk(m), Out::Double(*s))).collect())
}

/// The error text of a reply, or a panic naming what came instead.
fn error(out: Out) -> String {
    match out {
        Out::Err(fault) => fault.to_string(),
        other => panic!("expected an error, got {other:?}"),
    }
}

/// A database with `key` holding `members` ("score member score member…").
fn with(key: &str, members: &str) -> Db {
    let db = Db::new();
    assert!(matches!(exec(&db, &format!("zadd {key} {members}")), Out::Int(_)));
    db
}

fn plain_set(db: &Db, key: &str, members: &[&str]) {
    let mut set = SetValue::new();
    for m in members {
        set.insert(Bytes::copy_from_slice(m.as_bytes()));
    }
    let key = Bytes::copy_from_slice(key.as_bytes());
    db.txn(&[&key[..]], 0).put(&key, Value::Set(Box::new(set)), None);
}

#[test]
fn zadd_counts_added_and_changed() {
    let db = with("z", "1 a 2 b");
    assert_eq!(exec(&db, "zadd z 5 a 3 c"), int(1));
    assert_eq!(exec(&db, "zadd z ch 6 a 3 c 4 d"), int(2));
    assert_eq!(exec(&db, "zadd z nx 100 a 7 e"), int(1));
    assert_eq!(exec(&db, "zscore z a"), Out::Double(6.0));
    assert_eq!(exec(&db, "zadd z xx ch 9 a 9 new"), int(1));
    assert_eq!(exec(&db, "zscore z new"), Out::Nil);
    assert_eq!(exec(&db, "zadd missing xx 1 a"), int(0));
    assert_eq!(exec(&db, "zcard missing"), int(0));
}

#[test]
fn zadd_gt_lt_only_move_one_way_but_add_new_members() {
    let db = with("z", "10 x 20 y 30 z");
    assert_eq!(exec(&db, "zadd z gt ch 5 foo 11 x 21 y 29 z"), int(3));
    assert_eq!(
        exec(&db, "zmscore z x y z foo"),
        Out::Array(vec![11.0, 21.0, 30.0, 5.0].into_iter().map(Out::Double).collect())
    );
    assert_eq!(exec(&db, "zadd z lt xx ch 1 x 50 y 1 nope"), int(1));
    assert_eq!(exec(&db, "zscore z x"), Out::Double(1.0));
}

#[test]
fn zadd_incr_replies_the_score_or_nil() {
    let db = with("z", "28 x");
    assert_eq!(exec(&db, "zadd z incr 2.5 x"), Out::Double(30.5));
    assert_eq!(exec(&db, "zadd z lt incr 1 x"), Out::Nil);
    assert_eq!(exec(&db, "zadd z nx incr 1 x"), Out::Nil);
    assert_eq!(exec(&db, "zadd z xx incr 1 absent"), Out::Nil);
    assert_eq!(exec(&db, "zincrby z -0.5 x"), Out::Double(30.0));
    assert_eq!(exec(&db, "zincrby z 3 new"), Out::Double(3.0));
    assert_eq!(exec(&db, "zincrby z +inf x"), Out::Double(f64::INFINITY));
    assert_eq!(error(exec(&db, "zincrby z -inf x")), "ERR resulting score is not a number (NaN)");
    assert_eq!(exec(&db, "zscore z x"), Out::Double(f64::INFINITY));
}

#[test]
fn zadd_refuses_bad_option_mixes() {
    let db = Db::new();
    let cases = [
        ("zadd z xx nx 1 a", "ERR XX and NX options at the same time are not compatible"),
        ("zadd z gt nx 1 a", "ERR GT, LT, and/or NX options at the same time are not compatible"),
        ("zadd z lt gt 1 a", "ERR GT, LT, and/or NX options at the same time are not compatible"),
        ("zadd z incr 1 a 2 b", "ERR INCR option supports a single increment-element pair"),
        ("zadd z 1 a 2", "ERR syntax error"),
        ("zadd z nx", "ERR syntax error"),
        ("zadd z 1 a x b", "ERR value is not a valid float"),
        ("zadd z nan a", "ERR value is not a valid float"),
    ];
    for (line, text) in cases {
        assert_eq!(error(exec(&db, line)), text, "{line}");
    }
    // Nothing was created by the failures.
    assert_eq!(exec(&db, "zcard z"), int(0));
}

#[test]
fn ranks_and_scores() {
    let db = with("z", "10 x 20 y 30 z");
    assert_eq!(exec(&db, "zrank z y"), int(1));
    assert_eq!(exec(&db, "zrevrank z y withscore"), Out::Array(vec![int(1), Out::Double(20.0)]));
    assert_eq!(exec(&db, "zrevrank z x"), int(2));
    assert_eq!(exec(&db, "zrank z nope"), Out::Nil);
    assert_eq!(exec(&db, "zrank z nope withscore"), Out::NilArray);
    assert_eq!(exec(&db, "zrank missing x withscore"), Out::NilArray);
    assert_eq!(error(exec(&db, "zrank z x withscores")), "ERR syntax error");
    assert_eq!(error(exec(&db, "zrank z x withscore extra")), "ERR wrong number of arguments for 'zrank' command");
    assert_eq!(exec(&db, "zmscore missing a"), Out::Array(vec![Out::Nil]));
}

#[test]
fn rank_ranges_clamp_and_reverse() {
    let db = with("z", "1 a 2 b 3 c 4 d");
    assert_eq!(exec(&db, "zrange z 0 -1"), bulks(&["a", "b", "c", "d"]));
    assert_eq!(exec(&db, "zrange z -2 -1"), bulks(&["c", "d"]));
    assert_eq!(exec(&db, "zrange z -5 1"), bulks(&["a", "b"]));
    assert_eq!(exec(&db, "zrange z 5 -1"), bulks(&[]));
    assert_eq!(exec(&db, "zrange z 1 -5"), bulks(&[]));
    assert_eq!(exec(&db, "zrevrange z 0 1 withscores"), pairs(&[("d", 4.0), ("c", 3.0)]));
    assert_eq!(exec(&db, "zrange z 1 2 rev"), bulks(&["c", "b"]));
    assert_eq!(exec(&db, "zrange missing 0 -1 withscores"), bulks(&[]));
}

#[test]
fn score_ranges_honour_exclusive_ends_rev_and_limit() {
    let db = with("z", "-inf a 1 b 2 c 3 d 4 e 5 f +inf g");
    assert_eq!(exec(&db, "zrangebyscore z -inf 2"), bulks(&["a", "b", "c"]));
    assert_eq!(exec(&db, "zrangebyscore z (-inf (2"), bulks(&["b"]));
    assert_eq!(exec(&db, "zrangebyscore z (4 (+inf"), bulks(&["f"]));
    assert_eq!(exec(&db, "zrevrangebyscore z (6 (3"), bulks(&["f", "e"]));
    assert_eq!(exec(&db, "zrevrangebyscore z +inf 4"), bulks(&["g", "f", "e"]));
    assert_eq!(exec(&db, "zrangebyscore z 2 (2"), bulks(&[]));
    assert_eq!(exec(&db, "zrangebyscore z 2.4 2.6"), bulks(&[]));
    assert_eq!(exec(&db, "zrangebyscore z 0 10 limit 2 3"), bulks(&["d", "e", "f"]));
    assert_eq!(exec(&db, "zrangebyscore z 0 10 limit 20 10"), bulks(&[]));
    assert_eq!(exec(&db, "zrangebyscore z 0 10 limit -1 10"), bulks(&[]));
    assert_eq!(exec(&db, "zrangebyscore z 0 10 limit 1 -1"), bulks(&["c", "d", "e", "f"]));
    assert_eq!(exec(&db, "zrevrangebyscore z 5 2 limit 2 3 withscores"), pairs(&[("d", 3.0), ("c", 2.0)]));
    assert_eq!(exec(&db, "zrange z 5 0 byscore rev limit 0 2 withscores"), pairs(&[("f", 5.0), ("e", 4.0)]));
    assert_eq!(exec(&db, "zcount z (0 (3"), int(2));
    assert_eq!(exec(&db, "zcount z -inf +inf"), int(7));
    for line in ["zrangebyscore z str 1", "zrangebyscore z 1 nan", "zcount z (x 1", "zremrangebyscore z 1 x"] {
        assert_eq!(error(exec(&db, line)), "ERR min or max is not a float", "{line}");
    }
}

#[test]
fn lex_ranges_follow_member_order() {
    let db = with("z", "0 alpha 0 bar 0 cool 0 down 0 elephant 0 foo 0 great 0 hill 0 omega");
    assert_eq!(exec(&db, "zrangebylex z - [cool"), bulks(&["alpha", "bar", "cool"]));
    assert_eq!(exec(&db, "zrangebylex z (bar (down"), bulks(&["cool"]));
    assert_eq!(exec(&db, "zrevrangebylex z + (great"), bulks(&["omega", "hill"]));
    assert_eq!(exec(&db, "zrevrangebylex z + [d limit 0 4"), bulks(&["omega", "hill", "great", "foo"]));
    assert_eq!(exec(&db, "zrange z [bar [down bylex limit 1 1"), bulks(&["cool"]));
    assert_eq!(exec(&db, "zrange z [down [bar bylex rev"), bulks(&["down", "cool", "bar"]));
    assert_eq!(exec(&db, "zlexcount z - +"), int(9));
    assert_eq!(exec(&db, "zlexcount z + -"), int(0));
    assert_eq!(exec(&db, "zlexcount z (bar [foo"), int(4));
    assert_eq!(exec(&db, "zlexcount z (maxstring +"), int(1));
    assert_eq!(exec(&db, "zrangebylex z (az (b"), bulks(&[]));
    for line in ["zrangebylex z foo bar", "zrangebylex z [foo bar", "zrangebylex z +x [bar", "zlexcount z -x +"] {
        assert_eq!(error(exec(&db, line)), "ERR min or max not valid string range item", "{line}");
    }
}

#[test]
fn lex_ranges_over_mixed_scores_walk_the_order() {
    // Redis leaves this undefined; shoal walks as Redis's listpack does.
    let db = with("z", "1 b 2 a 3 c");
    assert_eq!(exec(&db, "zrangebylex z [b +"), bulks(&["b", "a", "c"]));
    assert_eq!(exec(&db, "zrangebylex z - [b"), bulks(&["b", "a"]));
    assert_eq!(exec(&db, "zrevrangebylex z + [b"), bulks(&["c"]));
    assert_eq!(exec(&db, "zlexcount z - [b"), int(2));
}

#[test]
fn zrange_option_conflicts() {
    let db = with("z", "1 a");
    let cases = [
        (
            "zrange z 0 -1 limit 1 2",
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        ),
        ("zrange z [a [b bylex withscores", "ERR syntax error, WITHSCORES not supported in combination with BYLEX"),
        ("zrangebylex z - + withscores", "ERR syntax error, WITHSCORES not supported in combination with BYLEX"),
        ("zrevrange z 0 -1 byscore", "ERR syntax error"),
        ("zrangebyscore z 0 -1 rev", "ERR syntax error"),
        ("zrange z 0 -1 rev rev", "ERR syntax error"),
        ("zrange z 0 -1 bylex byscore", "ERR syntax error"),
        ("zrangestore d z 0 -1 withscores", "ERR syntax error"),
        (
            "zrangestore d z 0 -1 limit 1 2",
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        ),
        ("zrange z a 1", "ERR value is not an integer or out of range"),
        ("zrange z 0 1 byscore limit x 1", "ERR value is not an integer or out of range"),
    ];
    for (line, text) in cases {
        assert_eq!(error(exec(&db, line)), text, "{line}");
    }
    // LIMIT 0 -1 is no limit at all, so ranks allow it.
    assert_eq!(exec(&db, "zrange z 0 -1 limit 0 -1"), bulks(&["a"]));
}

#[test]
fn zrangestore_replaces_or_deletes_the_destination() {
    let db = with("src", "1 a 2 b 3 c 4 d");
    db.put(Bytes::from_static(b"dst"), Bytes::from_static(b"string"), 0);
    assert_eq!(exec(&db, "zrangestore dst src 1 2"), int(2));
    assert_eq!(exec(&db, "zrange dst 0 -1 withscores"), pairs(&[("b", 2.0), ("c", 3.0)]));
    assert_eq!(exec(&db, "zrangestore dst src (3 +inf byscore"), int(1));
    assert_eq!(exec(&db, "zrange dst 0 -1"), bulks(&["d"]));
    assert_eq!(exec(&db, "zrangestore dst src +inf -inf byscore rev limit 0 2"), int(2));
    assert_eq!(exec(&db, "zrange dst 0 -1"), bulks(&["c", "d"]));
    assert_eq!(exec(&db, "zrangestore dst src 5 6"), int(0));
    assert_eq!(exec(&db, "zcard dst"), int(0));
    assert_eq!(exec(&db, "zrangestore dst missing 0 -1"), int(0));
    db.put(Bytes::from_static(b"str"), Bytes::from_static(b"v"), 0);
    assert!(error(exec(&db, "zrangestore dst str 0 -1")).starts_with("WRONGTYPE"));
    assert_eq!(exec(&db, "zrangestore src src 0 0"), int(1));
    assert_eq!(exec(&db, "zrange src 0 -1"), bulks(&["a"]));
}

#[test]
fn zrem_and_zremrange_delete_emptied_keys() {
    let db = with("z", "1 a 2 b 3 c 4 d 5 e");
    assert_eq!(exec(&db, "zremrangebyrank z 1 3"), int(3));
    assert_eq!(exec(&db, "zrange z 0 -1"), bulks(&["a", "e"]));
    assert_eq!(exec(&db, "zrem z a x e"), int(2));
    assert_eq!(exec(&db, "zrem z a"), int(0));
    let db = with("z", "1 a 2 b 3 c 4 d 5 e");
    assert_eq!(exec(&db, "zremrangebyscore z (1 (5"), int(3));
    assert_eq!(exec(&db, "zremrangebyrank z 10 -1"), int(0));
    assert_eq!(exec(&db, "zremrangebyscore z -inf +inf"), int(2));
    assert_eq!(exec(&db, "zcard z"), int(0));
    let db = with("z", "0 alpha 0 bar 0 cool 0 down");
    assert_eq!(exec(&db, "zremrangebylex z (alpha [cool"), int(2));
    assert_eq!(exec(&db, "zrange z 0 -1"), bulks(&["alpha", "down"]));
    assert_eq!(exec(&db, "zremrangebylex missing - +"), int(0));
}

/// zseta {a:1 b:2 c:3}, zsetb {b:1 c:2 d:3}, seta {a b c}.
fn algebra_db() -> Db {
    let db = with("zseta", "1 a 2 b 3 c");
    exec(&db, "zadd zsetb 1 b 2 c 3 d");
    plain_set(&db, "seta", &["a", "b", "c"]);
    db
}

#[test]
fn union_and_inter_with_weights_and_aggregates() {
    let db = algebra_db();
    assert_eq!(exec(&db, "zunion 2 zseta zsetb withscores"), pairs(&[("a", 1.0), ("b", 3.0), ("d", 3.0), ("c", 5.0)]));
    assert_eq!(
        exec(&db, "zunion 2 zseta zsetb weights 2 3 withscores"),
        pairs(&[("a", 2.0), ("b", 7.0), ("d", 9.0), ("c", 12.0)])
    );
    assert_eq!(
        exec(&db, "zunion 2 zseta zsetb aggregate min withscores"),
        pairs(&[("a", 1.0), ("b", 1.0), ("c", 2.0), ("d", 3.0)])
    );
    assert_eq!(exec(&db, "zinter 2 zseta zsetb aggregate max withscores"), pairs(&[("b", 2.0), ("c", 3.0)]));
    assert_eq!(exec(&db, "zinter 2 zseta zsetb weights 2 3"), bulks(&["b", "c"]));
    assert_eq!(exec(&db, "zinterstore out 2 zseta zsetb"), int(2));
    assert_eq!(exec(&db, "zrange out 0 -1 withscores"), pairs(&[("b", 3.0), ("c", 5.0)]));
    assert_eq!(exec(&db, "zunion 1 missing"), bulks(&[]));
    assert_eq!(exec(&db, "zinter 2 zseta missing"), bulks(&[]));
}

#[test]
fn plain_sets_score_one() {
    let db = algebra_db();
    assert_eq!(exec(&db, "zunionstore out 2 seta zsetb weights 2 3"), int(4));
    assert_eq!(exec(&db, "zrange out 0 -1 withscores"), pairs(&[("a", 2.0), ("b", 5.0), ("c", 8.0), ("d", 9.0)]));
    assert_eq!(exec(&db, "zinterstore out 2 seta zsetb weights 2 3"), int(2));
    assert_eq!(exec(&db, "zrange out 0 -1 withscores"), pairs(&[("b", 5.0), ("c", 8.0)]));
    assert_eq!(exec(&db, "zdiff 2 seta zsetb withscores"), pairs(&[("a", 1.0)]));
    assert_eq!(exec(&db, "zintercard 2 seta zseta"), int(3));
}

#[test]
fn infinities_sum_to_zero_and_weights_zero_them() {
    let db = with("i1", "+inf key");
    exec(&db, "zadd i2 -inf key");
    assert_eq!(exec(&db, "zunionstore out 2 i1 i2"), int(1));
    assert_eq!(exec(&db, "zscore out key"), Out::Double(0.0));
    assert_eq!(exec(&db, "zinterstore out 2 i1 i1"), int(1));
    assert_eq!(exec(&db, "zscore out key"), Out::Double(f64::INFINITY));
    assert_eq!(exec(&db, "zunion 1 i1 weights 0 withscores"), pairs(&[("key", 0.0)]));
}

#[test]
fn diff_and_stores_of_nothing() {
    let db = algebra_db();
    exec(&db, "zadd zsetc 1 c 5 e");
    assert_eq!(exec(&db, "zdiff 3 zseta zsetb zsetc"), bulks(&["a"]));
    assert_eq!(exec(&db, "zdiffstore out 2 zsetc zseta withscores"), Out::Err(crate::Fault::Syntax));
    assert_eq!(exec(&db, "zdiffstore out 2 zsetc zseta"), int(1));
    assert_eq!(exec(&db, "zrange out 0 -1 withscores"), pairs(&[("e", 5.0)]));
    assert_eq!(exec(&db, "zdiffstore out 2 zseta zseta"), int(0));
    assert_eq!(exec(&db, "zcard out"), int(0));
    assert_eq!(exec(&db, "zunionstore out 1 missing"), int(0));
}

#[test]
fn zintercard_limits_the_count() {
    let db = algebra_db();
    assert_eq!(exec(&db, "zintercard 2 zseta zsetb"), int(2));
    assert_eq!(exec(&db, "zintercard 2 zseta zsetb limit 1"), int(1));
    assert_eq!(exec(&db, "zintercard 2 zseta zsetb limit 0"), int(2));
    assert_eq!(error(exec(&db, "zintercard 1 zseta limit -1")), "ERR LIMIT can't be negative");
    assert_eq!(error(exec(&db, "zintercard 1 zseta limit a")), "ERR LIMIT can't be negative");
    assert_eq!(error(exec(&db, "zintercard 1 zseta zseta")), "ERR syntax error");
    assert_eq!(error(exec(&db, "zintercard 1 zseta limit")), "ERR syntax error");
}

#[test]
fn algebra_argument_errors() {
    let db = algebra_db();
    let cases = [
        ("zunion 0 zseta", "ERR at least 1 input key is needed for 'zunion' command"),
        ("zinterstore d 0 zseta", "ERR at least 1 input key is needed for 'zinterstore' command"),
        ("zunion x zseta", "ERR value is not an integer or out of range"),
        ("zunion 3 zseta zsetb", "ERR syntax error"),
        ("zunion 2 zseta zsetb weights 1", "ERR syntax error"),
        ("zunion 2 zseta zsetb weights 1 nan", "ERR weight value is not a float"),
        ("zunion 2 zseta zsetb aggregate avg", "ERR syntax error"),
        ("zdiff 2 zseta zsetb weights 1 2", "ERR syntax error"),
        ("zunionstore d 2 zseta zsetb withscores", "ERR syntax error"),
    ];
    for (line, text) in cases {
        assert_eq!(error(exec(&db, line)), text, "{line}");
    }
    db.put(Bytes::from_static(b"str"), Bytes::from_static(b"v"), 0);
    assert!(error(exec(&db, "zunion 2 zseta str")).starts_with("WRONGTYPE"));
    assert!(error(exec(&db, "zinterstore d 2 str zseta")).starts_with("WRONGTYPE"));
}

#[test]
fn pops_reply_in_redis_shapes() {
    let db = with("z", "-1 a 1 b 2 c 3 d 4 e");
    assert_eq!(exec(&db, "zpopmin z"), Out::Array(vec![bulk("a"), Out::Double(-1.0)]));
    assert_eq!(exec(&db, "zpopmax z 2"), pairs(&[("e", 4.0), ("d", 3.0)]));
    assert_eq!(exec(&db, "zpopmin z 0"), pairs(&[]));
    assert_eq!(exec(&db, "zpopmin z 10"), pairs(&[("b", 1.0), ("c", 2.0)]));
    assert_eq!(exec(&db, "zcard z"), int(0));
    assert_eq!(exec(&db, "zpopmin z"), bulks(&[]));
    assert_eq!(error(exec(&db, "zpopmin z -1")), "ERR value is out of range, must be positive");
    assert_eq!(error(exec(&db, "zpopmin z 1 2")), "ERR syntax error");
}

#[test]
fn zmpop_takes_from_the_first_non_empty_key() {
    let db = with("z2", "3 d 4 e 5 f");
    let nested = |key: &str, items: &[(&str, f64)]| {
        let items = items.iter().map(|(m, s)| Out::Array(vec![bulk(m), Out::Double(*s)])).collect();
        Out::Array(vec![bulk(key), Out::Array(items)])
    };
    assert_eq!(exec(&db, "zmpop 2 z1 z2 max"), nested("z2", &[("f", 5.0)]));
    assert_eq!(exec(&db, "zmpop 2 z1 z2 min count 10"), nested("z2", &[("d", 3.0), ("e", 4.0)]));
    assert_eq!(exec(&db, "zmpop 2 z1 z2 min"), Out::NilArray);
    let cases = [
        ("zmpop 0 z min", "ERR numkeys should be greater than 0"),
        ("zmpop a z min", "ERR numkeys should be greater than 0"),
        ("zmpop 1 z bad", "ERR syntax error"),
        ("zmpop 2 z z2 bad", "ERR syntax error"),
        ("zmpop 3 z z2 min", "ERR syntax error"),
        ("zmpop 1 z max min", "ERR syntax error"),
        ("zmpop 1 z max count", "ERR syntax error"),
        ("zmpop 1 z max count 1 count 2", "ERR syntax error"),
        ("zmpop 1 z min count 0", "ERR count should be greater than 0"),
        ("zmpop 1 z min count a", "ERR count should be greater than 0"),
    ];
    for (line, text) in cases {
        assert_eq!(error(exec(&db, line)), text, "{line}");
    }
}

#[test]
fn blocking_pops_make_one_attempt() {
    let db = with("z", "0 a 1 b 2 c");
    assert_eq!(exec(&db, "bzpopmax none z 0"), Out::Array(vec![bulk("z"), bulk("c"), Out::Double(2.0)]));
    assert_eq!(exec(&db, "bzpopmin none 1.5"), Out::NilArray);
    let popped = Out::Array(vec![bulk("z"), Out::Array(vec![Out::Array(vec![bulk("a"), Out::Double(0.0)])])]);
    assert_eq!(exec(&db, "bzmpop 0.01 1 z min"), popped);
    let timeout = |line: &str| match Cmd::parse(&argv(line)) {
        Ok(Cmd::ZSet(c)) => c.blocking_timeout_ms(),
        other => panic!("{line}: {other:?}"),
    };
    assert_eq!(timeout("bzpopmin a b 1.5"), Some(1500));
    assert_eq!(timeout("bzmpop 0 1 a max count 2"), Some(0));
    assert_eq!(timeout("bzmpop 0.0001 1 a max"), Some(1));
    assert_eq!(timeout("zmpop 1 a max"), None);
    assert_eq!(timeout("zpopmin a"), None);
    assert_eq!(error(exec(&db, "bzpopmin z -1")), "ERR timeout is negative");
    assert_eq!(error(exec(&db, "bzpopmin z abc")), "ERR timeout is not a float or out of range");
    assert_eq!(error(exec(&db, "bzmpop x 1 z min")), "ERR timeout is not a float or out of range");
    // BZMPOP reads its timeout after the rest.
    assert_eq!(error(exec(&db, "bzmpop x 0 z min")), "ERR numkeys should be greater than 0");
    assert_eq!(error(exec(&db, "bzpopmin z inf")), "ERR timeout is out of range");
}

#[test]
fn zrandmember_draws_from_the_seed() {
    let db = with("z", "1 a 2 b 3 c 4 d 5 e");
    let first = exec(&db, "zrandmember z 3 withscores");
    assert_eq!(exec(&db, "zrandmember z 3 withscores"), first, "same seed, same picks");
    let Out::Pairs(picked) = first else { panic!("pairs expected") };
    assert_eq!(picked.len(), 3);
    let Out::Array(repeats) = exec(&db, "zrandmember z -20") else { panic!("array expected") };
    assert_eq!(repeats.len(), 20);
    assert_eq!(exec(&db, "zrandmember z 10"), bulks(&["e", "d", "c", "b", "a"]));
    assert_eq!(exec(&db, "zrandmember z 0"), bulks(&[]));
    assert_eq!(exec(&db, "zrandmember missing 5"), bulks(&[]));
    assert_eq!(exec(&db, "zrandmember missing"), Out::Nil);
    assert!(matches!(exec(&db, "zrandmember z"), Out::Bulk(_)));
    assert_eq!(error(exec(&db, "zrandmember z 1 withscore")), "ERR syntax error");
    assert_eq!(error(exec(&db, "zrandmember z -9223372036854770000 withscores")), "ERR value is out of range");
    assert!(error(exec(&db, "zrandmember z -9223372036854775808")).starts_with("ERR value is out of range"));
    assert_eq!(error(exec(&db, "zrandmember z -9223372036854775807")), "ERR value is out of range");
}

#[test]
fn zscan_returns_members_with_scores_as_text() {
    let db = with("z", "1 a 2.5 b");
    let Out::Array(reply) = exec(&db, "zscan z 0") else { panic!("array expected") };
    assert_eq!(reply[0], bulk("0"));
    let Out::Array(items) = &reply[1] else { panic!("array expected") };
    let mut found: Vec<_> = items.chunks(2).map(|p| (p[0].clone(), p[1].clone())).collect();
    found.sort_by_key(|(m, _)| format!("{m:?}"));
    assert_eq!(found, vec![(bulk("a"), bulk("1")), (bulk("b"), bulk("2.5"))]);
    assert_eq!(exec(&db, "zscan z 0 match b*"), Out::Array(vec![bulk("0"), bulks(&["b", "2.5"])]));
    assert_eq!(exec(&db, "zscan missing 0"), Out::Array(vec![bulk("0"), bulks(&[])]));
}

#[test]
fn wrong_types_are_refused() {
    let db = Db::new();
    db.put(Bytes::from_static(b"s"), Bytes::from_static(b"v"), 0);
    for line in [
        "zadd s 1 a",
        "zadd s xx 1 a",
        "zincrby s 1 a",
        "zrem s a",
        "zcard s",
        "zscore s a",
        "zmscore s a",
        "zrank s a",
        "zcount s 0 1",
        "zlexcount s - +",
        "zrange s 0 -1",
        "zrangebylex s - +",
        "zremrangebyrank s 0 -1",
        "zpopmin s",
        "zpopmin s 0",
        "zmpop 2 none s min",
        "bzpopmin s 0",
        "zrandmember s",
        "zscan s 0",
    ] {
        assert!(error(exec(&db, line)).starts_with("WRONGTYPE"), "{line}");
    }
}

#[test]
fn keys_name_destination_and_sources() {
    let keys = |line: &str| {
        let cmd = Cmd::parse(&argv(line)).expect("parses");
        cmd.keys().into_iter().map(|k| String::from_utf8_lossy(k).into_owned()).collect::<Vec<_>>()
    };
    assert_eq!(keys("zunionstore d 2 a b weights 1 2"), ["d", "a", "b"]);
    assert_eq!(keys("zinter 2 a b"), ["a", "b"]);
    assert_eq!(keys("zrangestore d s 0 -1"), ["d", "s"]);
    assert_eq!(keys("bzmpop 1 2 a b min"), ["a", "b"]);
    assert_eq!(keys("bzpopmin a b 0"), ["a", "b"]);
    assert_eq!(keys("zintercard 2 a b limit 3"), ["a", "b"]);
    assert!(matches!(Cmd::parse(&argv("zcard a")), Ok(Cmd::ZSet(ZSetCmd::Card { .. }))));
}

#[test]
fn minus_zero_is_stored_as_zero_in_every_encoding() {
    // Always 0, small set or large: the encoding depends on node-local
    // thresholds, and what is stored must not (replicas stay equal).
    let db = with("z", "-0 x");
    let Out::Double(score) = exec(&db, "zscore z x") else { panic!("double expected") };
    assert!(score == 0.0 && score.is_sign_positive());
    let members: Vec<String> = (0..130).map(|i| format!("{} m{i}", i as f64 * 1.1)).collect();
    exec(&db, &format!("zadd big {}", members.join(" ")));
    exec(&db, "zadd big -0 neg");
    let Out::Double(score) = exec(&db, "zscore big neg") else { panic!("double expected") };
    assert!(score == 0.0 && score.is_sign_positive());
    // A large set's ZSCAN prints scores with %.17g, as Redis's hashtable does.
    let page = exec(&db, "zscan big 0 match m129 count 1000");
    assert_eq!(page, Out::Array(vec![bulk("0"), bulks(&["m129", "141.90000000000001"])]));
    let page = exec(&db, "zscan big 0 match neg count 1000");
    assert_eq!(page, Out::Array(vec![bulk("0"), bulks(&["neg", "0"])]));
}

#[test]
fn small_zscan_gives_listpack_text_in_order() {
    let db = with("z", "1e17 d 2.5 b 1 a -inf c");
    let page = exec(&db, "zscan z 0");
    assert_eq!(
        page,
        Out::Array(vec![bulk("0"), bulks(&["c", "-inf", "a", "1", "b", "2.5", "d", "100000000000000000"])])
    );
}

#[test]
fn encodings_follow_redis_sizing() {
    let db = Db::new();
    // ZADD sizes by its pairs, duplicates included, before running.
    exec(&db, &format!("zadd z {}", vec!["1 a"; 129].join(" ")));
    assert_eq!(exec(&db, "zcard z"), int(1));
    assert_eq!(exec(&db, "object encoding z"), bulk("skiplist"));
    exec(&db, "zadd small 1 a 2 b");
    assert_eq!(exec(&db, "object encoding small"), bulk("listpack"));
    exec(&db, &format!("zadd long 1 {}", "x".repeat(65)));
    assert_eq!(exec(&db, "object encoding long"), bulk("skiplist"));
    // A stored result is sized by what it holds.
    assert_eq!(exec(&db, "zrangestore dst z 0 -1"), int(1));
    assert_eq!(exec(&db, "object encoding dst"), bulk("listpack"));
    assert_eq!(exec(&db, "zunionstore dst 2 small long"), int(3));
    assert_eq!(exec(&db, "object encoding dst"), bulk("skiplist"));
}

#[test]
fn an_exclusive_infinite_minimum_holds_nothing() {
    let db = Db::new();
    exec(&db, "ZADD z +inf a 1 c");
    assert_eq!(exec(&db, "ZCOUNT z (+inf +inf"), int(0));
    assert_eq!(exec(&db, "ZRANGE z (+inf +inf BYSCORE"), bulks(&[]));
    assert_eq!(exec(&db, "ZREMRANGEBYSCORE z (+inf +inf"), int(0));
    assert_eq!(exec(&db, "ZCOUNT z +inf +inf"), int(1));
}
