//! Hashes, lists, sets and sorted sets, blocking pops and MULTI/EXEC/WATCH
//! through real `shoal server` processes (3-node clusters, every shard a
//! Raft group of three replicas), with the `redis` crate as the client:
//! a mixed workload converges on every replica (read with READONLY, each
//! key's whole contents), blocked BLPOPs lose and duplicate nothing across
//! a kill -9 of their leader, transactions stay all-or-nothing across kills
//! and restarts, and WATCH aborts exactly when a watched key changed.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::shape::wait_replicas_agree;
use common::{frame_text, info_field, wait_for, Client, Cluster};
use rand::{Rng, SeedableRng};
use redis::{ConnectionLike, Value};

/// A seed from `SHOAL_TEST_SEED`, or a fresh one; printed either way so a
/// failing run can be replayed.
fn seed(test: &str) -> u64 {
    let seed = std::env::var("SHOAL_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random);
    println!("{test}: seed {seed} (replay with SHOAL_TEST_SEED={seed})");
    seed
}

/// A plain (not cluster-aware) redis connection to one node, or `None`
/// when the node does not answer.
fn connect(port: u16) -> Option<redis::Connection> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).ok()?;
    let con = client.get_connection_with_timeout(Duration::from_secs(2)).ok()?;
    // Longer than any blocking pop here waits (1 s), much shorter than a test.
    con.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    Some(con)
}

fn cmd(args: &[&str]) -> redis::Cmd {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c
}

/// What one request to one node came back with (the texts are for
/// panic messages, through Debug).
#[derive(Debug)]
#[allow(dead_code)]
enum Reply {
    Value(Value),
    /// `-MOVED slot host:port`: nothing was applied; the port to go to.
    Moved(u16),
    /// `-TRYAGAIN` / `-CLUSTERDOWN`: nothing was applied, ask again later.
    Retry,
    /// `-UNCERTAIN`: proposed, then leadership was lost; maybe applied.
    Uncertain(String),
    /// Any other error reply.
    Error(String),
    /// The connection failed with the request sent: maybe applied.
    Lost(String),
}

fn classify(result: redis::RedisResult<Value>) -> Reply {
    match result {
        Ok(Value::ServerError(e)) => match e.code() {
            "MOVED" => {
                let to = e.details().and_then(|d| d.rsplit(':').next()).and_then(|p| p.parse().ok());
                Reply::Moved(to.unwrap_or_else(|| panic!("MOVED without a port: {e:?}")))
            }
            "TRYAGAIN" | "CLUSTERDOWN" => Reply::Retry,
            "UNCERTAIN" => Reply::Uncertain(format!("{e:?}")),
            _ => Reply::Error(format!("{} {}", e.code(), e.details().unwrap_or(""))),
        },
        Ok(value) => Reply::Value(value),
        Err(e) => Reply::Lost(e.to_string()),
    }
}

/// A client for the keys of one slot: one connection to the node it
/// believes leads the slot, following `-MOVED` and moving on to the next
/// node when one does not answer. A redirect never changes what was
/// applied, so only `Lost` and `Uncertain` leave an outcome unknown.
struct SlotClient {
    ports: Vec<u16>,
    at: usize,
    con: Option<redis::Connection>,
}

impl SlotClient {
    fn new(ports: &[u16], first: usize) -> SlotClient {
        SlotClient { ports: ports.to_vec(), at: first % ports.len(), con: None }
    }

    fn port(&self) -> u16 {
        self.ports[self.at]
    }

    /// The open connection, connecting (to the next node, while the one
    /// believed to lead does not answer) first if needed.
    fn connection(&mut self) -> &mut redis::Connection {
        let deadline = Instant::now() + common::TIMEOUT;
        while self.con.is_none() {
            assert!(Instant::now() < deadline, "no node of {:?} accepted a connection", self.ports);
            match connect(self.port()) {
                Some(con) => self.con = Some(con),
                None => {
                    self.at = (self.at + 1) % self.ports.len();
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
        self.con.as_mut().expect("connected")
    }

    /// Drops the connection (and with it any MULTI state on the server).
    fn reset(&mut self) {
        self.con = None;
    }

    /// One request on the current connection; a redirect or a lost
    /// connection moves this client on for the next one.
    fn send(&mut self, request: &redis::Cmd) -> Reply {
        let reply = classify(self.connection().req_command(request));
        match &reply {
            Reply::Moved(port) => {
                // A node this client does not know (none here) or a dead
                // one: the connection attempt moves on to the next.
                self.at = self.ports.iter().position(|p| p == port).unwrap_or((self.at + 1) % self.ports.len());
                self.con = None;
            }
            Reply::Lost(_) => {
                self.at = (self.at + 1) % self.ports.len();
                self.con = None;
            }
            _ => {}
        }
        reply
    }

    /// Sends `request` until it gets an answer other than a redirect or
    /// "try again" (both promise nothing was applied), for at most TIMEOUT.
    fn call(&mut self, request: &redis::Cmd) -> Reply {
        let deadline = Instant::now() + common::TIMEOUT;
        loop {
            assert!(Instant::now() < deadline, "no answer but redirects for {request:?}");
            match self.send(request) {
                Reply::Moved(_) => {}
                Reply::Retry => std::thread::sleep(Duration::from_millis(20)),
                other => return other,
            }
        }
    }
}

fn key_slot(key: &str) -> usize {
    usize::from(shoal_engine::slot::key_slot(key.as_bytes()))
}

fn text(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::Okay => "OK".into(),
        Value::Int(i) => i.to_string(),
        Value::Double(d) => d.to_string(),
        Value::Nil => "(nil)".into(),
        other => format!("{other:?}"),
    }
}

fn items(v: Value) -> Vec<String> {
    match v {
        Value::Array(items) | Value::Set(items) => items.iter().map(text).collect(),
        Value::Nil => Vec::new(),
        other => panic!("expected an array, got {other:?}"),
    }
}

/// `field` of a node's INFO (every section).
fn info_of(port: u16, field: &str) -> Option<String> {
    let mut c = Client::try_connect(port)?;
    let info = frame_text(&c.try_call(&["INFO"])?)?;
    info_field(&info, field).map(str::to_string)
}

/// The slot ranges of CLUSTER SLOTS (one per shard).
fn slot_ranges(cluster: &Cluster) -> Vec<std::ops::RangeInclusive<usize>> {
    let shoal_proto::Frame::Array(entries) = cluster.client(1).call(&["CLUSTER", "SLOTS"]) else {
        panic!("CLUSTER SLOTS is not an array")
    };
    entries
        .iter()
        .map(|entry| match entry {
            shoal_proto::Frame::Array(parts) => match (&parts[0], &parts[1]) {
                (shoal_proto::Frame::Integer(start), shoal_proto::Frame::Integer(end)) => {
                    *start as usize..=*end as usize
                }
                _ => panic!("malformed CLUSTER SLOTS entry: {parts:?}"),
            },
            other => panic!("malformed CLUSTER SLOTS entry: {other:?}"),
        })
        .collect()
}

// ---------------------------------------------------------------------------
// 1. A mixed workload of every type converges on every replica.

/// Every command of the workload names keys of one hash tag, so the
/// multi-key ones (LMOVE, SINTERSTORE, ZUNIONSTORE…) are in one slot.
fn workload_command(rng: &mut impl Rng, tag: &str) -> Vec<String> {
    let k = |kind: &str, rng: &mut dyn rand::RngCore| format!("{kind}{{{tag}}}:{}", rng.random_range(0..3u32));
    let member = |rng: &mut dyn rand::RngCore| format!("m{}", rng.random_range(0..40u32));
    let value = |rng: &mut dyn rand::RngCore| format!("v{}", rng.random_range(0..1000u32));
    let side = |rng: &mut dyn rand::RngCore| if rng.random_bool(0.5) { "LEFT" } else { "RIGHT" }.to_string();
    let s = |x: &str| x.to_string();
    let op = rng.random_range(0..40u32);
    match op {
        // Hashes.
        0..=2 => vec![s("HSET"), k("h", rng), member(rng), value(rng), member(rng), value(rng)],
        3 => vec![s("HINCRBY"), k("h", rng), s("count"), rng.random_range(-5..10i32).to_string()],
        4 => vec![s("HINCRBYFLOAT"), k("h", rng), s("float"), format!("{}.25", rng.random_range(-3..5i32))],
        5 => vec![s("HDEL"), k("h", rng), member(rng), member(rng)],
        6 => vec![s("HSETNX"), k("h", rng), member(rng), value(rng)],
        // Lists.
        7..=8 => vec![s("RPUSH"), k("l", rng), value(rng), value(rng)],
        9 => vec![s("LPUSH"), k("l", rng), value(rng)],
        10 => vec![s(if rng.random_bool(0.5) { "LPOP" } else { "RPOP" }), k("l", rng)],
        11..=12 => vec![s("LMOVE"), k("l", rng), k("l", rng), side(rng), side(rng)],
        13 => vec![s("LINSERT"), k("l", rng), s("BEFORE"), value(rng), value(rng)],
        14 => vec![s("LSET"), k("l", rng), rng.random_range(-3..3i32).to_string(), value(rng)],
        15 => vec![s("LREM"), k("l", rng), rng.random_range(-1..2i32).to_string(), value(rng)],
        16 => vec![s("LTRIM"), k("l", rng), s("0"), s("60")],
        17 => vec![s("RPOPLPUSH"), k("l", rng), k("l", rng)],
        // Sets: SPOP draws at random, so every replica must draw alike.
        18..=19 => vec![s("SADD"), k("s", rng), member(rng), member(rng), member(rng)],
        20 => vec![s("SREM"), k("s", rng), member(rng)],
        21..=22 => {
            let mut c = vec![s("SPOP"), k("s", rng)];
            if rng.random_bool(0.5) {
                c.push(rng.random_range(1..4u32).to_string());
            }
            c
        }
        23 => vec![s("SMOVE"), k("s", rng), k("s", rng), member(rng)],
        24 => vec![s("SINTERSTORE"), format!("sdst{{{tag}}}"), k("s", rng), k("s", rng)],
        25 => vec![s("SUNIONSTORE"), format!("sdst{{{tag}}}"), k("s", rng), k("s", rng)],
        26 => vec![s("SDIFFSTORE"), k("s", rng), k("s", rng), k("s", rng)],
        // Sorted sets.
        27..=28 => {
            vec![s("ZADD"), k("z", rng), rng.random_range(0..100u32).to_string(), member(rng), s("7"), member(rng)]
        }
        29..=30 => vec![s("ZADD"), k("z", rng), s("INCR"), format!("{}.5", rng.random_range(-4..6i32)), member(rng)],
        31 => vec![s("ZINCRBY"), k("z", rng), rng.random_range(1..4u32).to_string(), member(rng)],
        32 => vec![s("ZREM"), k("z", rng), member(rng)],
        33 => vec![s(if rng.random_bool(0.5) { "ZPOPMIN" } else { "ZPOPMAX" }), k("z", rng)],
        34 => vec![
            s("ZUNIONSTORE"),
            format!("zdst{{{tag}}}"),
            s("2"),
            k("z", rng),
            k("z", rng),
            s("WEIGHTS"),
            s("1"),
            s("2"),
        ],
        35 => vec![s("ZINTERSTORE"), format!("zdst{{{tag}}}"), s("2"), k("z", rng), k("z", rng)],
        36 => vec![s("ZRANGESTORE"), format!("zdst{{{tag}}}"), k("z", rng), s("0"), s("4")],
        37 => vec![s("ZREMRANGEBYSCORE"), k("z", rng), s("90"), s("+inf")],
        // Keys across types (a WRONGTYPE reply is fine, and the same everywhere).
        38 => vec![s("SORT"), k("l", rng), s("ALPHA"), s("STORE"), format!("ldst{{{tag}}}")],
        _ => vec![s("COPY"), k("z", rng), format!("zcopy{{{tag}}}"), s("REPLACE")],
    }
}

/// A key's type, encoding, expiry and whole contents as one comparable
/// text, read on `con` (a replica's own copy after READONLY).
fn describe(con: &mut redis::Connection, key: &str) -> String {
    let kind: String = cmd(&["TYPE", key]).query(con).expect("TYPE");
    let contents = match kind.as_str() {
        "none" => return "none".into(),
        "string" => text(&cmd(&["GET", key]).query(con).expect("GET")),
        "hash" => {
            let mut pairs: Vec<(String, String)> = cmd(&["HGETALL", key]).query(con).expect("HGETALL");
            pairs.sort();
            format!("{pairs:?}")
        }
        "list" => format!("{:?}", items(cmd(&["LRANGE", key, "0", "-1"]).query(con).expect("LRANGE"))),
        "set" => {
            let mut members = items(cmd(&["SMEMBERS", key]).query(con).expect("SMEMBERS"));
            members.sort();
            format!("{members:?}")
        }
        "zset" => format!("{:?}", items(cmd(&["ZRANGE", key, "0", "-1", "WITHSCORES"]).query(con).expect("ZRANGE"))),
        other => panic!("{key} has unexpected type {other}"),
    };
    let encoding = text(&cmd(&["OBJECT", "ENCODING", key]).query(con).expect("OBJECT ENCODING"));
    let expiry = text(&cmd(&["PEXPIRETIME", key]).query(con).expect("PEXPIRETIME"));
    format!("{kind} {encoding} expires={expiry} {contents}")
}

#[test]
fn types_converge_on_every_replica() {
    let seed = seed("types_converge_on_every_replica");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let cluster = Cluster::start("types-converge", 3, &[]);
    let urls: Vec<String> = cluster.ports.iter().map(|p| format!("redis://127.0.0.1:{p}/")).collect();
    let client = redis::cluster::ClusterClient::builder(urls).build().expect("cluster client");
    let mut con = client.get_connection().expect("cluster connection");

    // One hash tag in every shard (slot range of CLUSTER SLOTS).
    let ranges = slot_ranges(&cluster);
    let tags: Vec<String> = ranges
        .iter()
        .map(|r| (0..).map(|i| format!("t{i}")).find(|t| r.contains(&key_slot(t))).expect("a tag in the range"))
        .collect();
    println!("{} shards, tags {tags:?}", ranges.len());

    // Big enough to leave the compact encodings (listpack, intset).
    for tag in &tags[..2] {
        let mut sadd = cmd(&["SADD", &format!("s{{{tag}}}:0")]);
        let mut zadd = cmd(&["ZADD", &format!("z{{{tag}}}:0")]);
        let mut hset = cmd(&["HSET", &format!("h{{{tag}}}:0")]);
        let mut rpush = cmd(&["RPUSH", &format!("l{{{tag}}}:0")]);
        for i in 0..200 {
            sadd.arg(i);
            zadd.arg(i).arg(format!("big{i}"));
            hset.arg(format!("big{i}")).arg(i);
            rpush.arg(format!("big{i}"));
        }
        for c in [sadd, zadd, hset, rpush] {
            let _: Value = c.query(&mut con).expect("bulk write");
        }
    }
    let expire_at = (std::time::SystemTime::now() + Duration::from_secs(3600))
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        .to_string();
    let (mut ok, mut refused) = (0, BTreeMap::<String, usize>::new());
    let started = Instant::now();
    for i in 0..1500 {
        let tag = &tags[rng.random_range(0..tags.len())];
        let mut args = workload_command(&mut rng, tag);
        if i % 200 == 0 {
            args = vec!["PEXPIREAT".into(), format!("h{{{tag}}}:1"), expire_at.clone()];
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        match cmd(&args).query::<Value>(&mut con) {
            Ok(_) => ok += 1,
            Err(e) => {
                assert!(
                    !e.is_io_error()
                        && !matches!(
                            e.kind(),
                            redis::ErrorKind::Server(
                                redis::ServerErrorKind::Moved
                                    | redis::ServerErrorKind::Ask
                                    | redis::ServerErrorKind::TryAgain
                                    | redis::ServerErrorKind::ClusterDown
                                    | redis::ServerErrorKind::CrossSlot
                            )
                        ),
                    "{args:?}: {e}"
                );
                *refused.entry(format!("{} {}", args[0], e.detail().unwrap_or(""))).or_default() += 1;
            }
        }
    }
    println!("1500 commands in {:?}: {ok} applied, refused {refused:?}", started.elapsed());

    wait_replicas_agree(&cluster.ports);
    let mut keys = BTreeSet::new();
    for tag in &tags {
        for kind in ["h", "l", "s", "z"] {
            keys.extend((0..3).map(|i| format!("{kind}{{{tag}}}:{i}")));
        }
        keys.extend(["sdst", "zdst", "ldst", "zcopy"].map(|k| format!("{k}{{{tag}}}")));
    }
    let views: Vec<BTreeMap<String, String>> = (1..=3)
        .map(|node| {
            let mut c = connect(cluster.port(node)).expect("connect");
            assert_eq!(cmd(&["READONLY"]).query::<String>(&mut c).expect("READONLY"), "OK");
            keys.iter().map(|k| (k.clone(), describe(&mut c, k))).collect()
        })
        .collect();
    for key in &keys {
        let seen: Vec<&String> = views.iter().map(|v| &v[key]).collect();
        assert!(seen.iter().all(|s| *s == seen[0]), "replicas differ on {key} (seed {seed}):\n{seen:#?}");
    }
    // The workload left something of every type, in both encodings.
    let kinds: BTreeSet<String> =
        views[0].values().map(|d| d.split(' ').take(2).collect::<Vec<_>>().join(" ")).collect();
    println!("{} keys compared on 3 replicas; type and encoding seen: {kinds:?}", keys.len());
    for kind in ["hash", "list", "set", "zset"] {
        assert!(kinds.iter().any(|k| k.starts_with(kind)), "no {kind} left to compare: {kinds:?}");
    }
    assert!(views[0].values().any(|d| !d.contains("expires=-1")), "an expiry was compared");
}

// ---------------------------------------------------------------------------
// 2. Blocked BLPOPs across a kill -9 of their leader.

#[derive(Default, Debug)]
struct Consumed {
    /// Elements popped, in the order they arrived.
    got: Vec<u64>,
    /// Replies that leave unknown whether something was popped for this
    /// client: `-UNCERTAIN`, or the connection failing with a BLPOP sent.
    uncertain: usize,
    moved: usize,
}

fn element(v: &str) -> u64 {
    v.strip_prefix('e').and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("not a pushed element: {v:?}"))
}

/// Consumers block in BLPOP on the list's leader while one producer
/// RPUSHes unique elements, in order; the leader's node is killed (-9)
/// midway and the consumers go on at the new leader. Every element must
/// reach one consumer at most once, or still be in the list; none may
/// appear that was never pushed. "None lost" is bounded, not exact: a pop
/// applied (committed by a majority) just before the kill has its reply die
/// with the node, and a plain client cannot tell that element from a lost
/// one. So an acknowledged element missing everywhere is counted as
/// "maybe delivered" on a killed connection, and there may be at most one
/// per BLPOP whose connection failed (or that answered `-UNCERTAIN`).
#[test]
fn blocking_pop_across_failover_loses_nothing() {
    const CONSUMERS: usize = 4;
    const ELEMENTS: u64 = 300;
    let mut cluster = Cluster::start("types-bpop", 3, &[]);
    let key = "queue";
    let leader = cluster.slot_owners(1)[key_slot(key)];
    let ports = cluster.ports.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let test_deadline = Instant::now() + Duration::from_secs(50);

    let consumers: Vec<_> = (0..CONSUMERS)
        .map(|c| {
            let (ports, stop) = (ports.clone(), Arc::clone(&stop));
            std::thread::spawn(move || {
                // Each starts at some node and follows MOVED to the leader.
                let mut client = SlotClient::new(&ports, c);
                let mut out = Consumed::default();
                let blpop = cmd(&["BLPOP", key, "1"]);
                loop {
                    assert!(Instant::now() < test_deadline, "consumer {c} still running: {out:?}");
                    match client.send(&blpop) {
                        Reply::Value(Value::Nil) if stop.load(Ordering::SeqCst) => return out,
                        Reply::Value(Value::Nil) => {}
                        Reply::Value(Value::Array(popped)) => {
                            assert_eq!(popped.len(), 2, "{popped:?}");
                            assert_eq!(text(&popped[0]), key);
                            out.got.push(element(&text(&popped[1])));
                        }
                        Reply::Moved(_) => out.moved += 1,
                        Reply::Retry => std::thread::sleep(Duration::from_millis(20)),
                        // The reply of a pop that was applied could be what
                        // went down with the killed node: "maybe popped".
                        Reply::Uncertain(_) | Reply::Lost(_) => out.uncertain += 1,
                        other => panic!("BLPOP gave {other:?}"),
                    }
                }
            })
        })
        .collect();
    // Every consumer is blocked on the leader before anything is pushed.
    wait_for("every consumer to block on the leader", || {
        (info_of(cluster.port(leader), "blocked_clients")? == CONSUMERS.to_string()).then_some(())
    });

    let acked_count = Arc::new(AtomicUsize::new(0));
    let producer = {
        let (ports, acked_count, leader_port) = (ports.clone(), Arc::clone(&acked_count), cluster.port(leader));
        std::thread::spawn(move || {
            let mut client = SlotClient::new(&ports, 0);
            let (mut acked, mut maybe, mut at_new_leader) = (Vec::new(), Vec::new(), Vec::new());
            for i in 0..ELEMENTS {
                // Retried only after a redirect or TRYAGAIN (never applied):
                // an element is pushed at most once.
                match client.call(&cmd(&["RPUSH", key, &format!("e{i}")])) {
                    Reply::Value(Value::Int(_)) => {
                        acked.push(i);
                        if client.port() != leader_port {
                            at_new_leader.push(i);
                        }
                        acked_count.fetch_add(1, Ordering::SeqCst);
                    }
                    Reply::Uncertain(_) | Reply::Lost(_) => maybe.push(i),
                    other => panic!("RPUSH e{i} gave {other:?}"),
                }
                // Paced, so that the consumers are mostly blocked when an
                // element arrives (the blocking path, not a plain pop).
                std::thread::sleep(Duration::from_millis(2));
            }
            (acked, maybe, at_new_leader)
        })
    };
    wait_for("half the elements pushed", || {
        (acked_count.load(Ordering::SeqCst) >= ELEMENTS as usize / 2).then_some(())
    });
    println!("killing node {leader}, the leader, after {} acknowledged pushes", acked_count.load(Ordering::SeqCst));
    cluster.kill(leader);
    let (acked, maybe, at_new_leader) = producer.join().expect("producer");
    stop.store(true, Ordering::SeqCst);
    let consumed: Vec<Consumed> = consumers.into_iter().map(|c| c.join().expect("consumer")).collect();

    let survivors: Vec<u16> = (1..=3).filter(|&n| n != leader).map(|n| cluster.port(n)).collect();
    let remaining = match SlotClient::new(&survivors, 0).call(&cmd(&["LRANGE", key, "0", "-1"])) {
        Reply::Value(v) => items(v).iter().map(|e| element(e)).collect::<Vec<_>>(),
        other => panic!("LRANGE gave {other:?}"),
    };

    // None twice: each element popped by one consumer, once, or still there.
    let mut seen: HashMap<u64, String> = HashMap::new();
    for (c, out) in consumed.iter().enumerate() {
        for &e in &out.got {
            if let Some(first) = seen.insert(e, format!("consumer {c}")) {
                panic!("e{e} delivered twice: to {first} and consumer {c}");
            }
        }
        // One producer pushing in order onto a FIFO: each consumer's pops
        // come in push order.
        assert!(out.got.windows(2).all(|w| w[0] < w[1]), "consumer {c} got out of order: {:?}", out.got);
    }
    for &e in &remaining {
        if let Some(first) = seen.insert(e, "the list".into()) {
            panic!("e{e} is still in the list and was delivered to {first}");
        }
    }
    assert!(remaining.windows(2).all(|w| w[0] < w[1]), "the list is out of order: {remaining:?}");
    // Nothing that was never pushed.
    let pushed: BTreeSet<u64> = acked.iter().chain(&maybe).copied().collect();
    for e in seen.keys() {
        assert!(pushed.contains(e), "e{e} was never pushed");
    }
    // None lost: every acknowledged element was delivered or is still in
    // the list, except at most one per pop whose reply was lost with the
    // killed node (or came back UNCERTAIN): such a pop may have taken an
    // element that no client saw, and a plain client cannot tell it from a
    // lost one. So the bound is "missing <= pops in flight when it died".
    let missing: Vec<u64> = acked.iter().copied().filter(|e| !seen.contains_key(e)).collect();
    let uncertain: usize = consumed.iter().map(|c| c.uncertain).sum();
    let moved: usize = consumed.iter().map(|c| c.moved).sum();
    let delivered: usize = consumed.iter().map(|c| c.got.len()).sum();
    println!(
        "{} pushes acknowledged, {} uncertain; {delivered} delivered ({:?} per consumer), {} left in the list; \
         consumers saw {moved} MOVED and {uncertain} interrupted pops; missing {missing:?}",
        acked.len(),
        maybe.len(),
        consumed.iter().map(|c| c.got.len()).collect::<Vec<_>>(),
        remaining.len(),
    );
    assert!(uncertain >= 1, "the kill interrupted the consumers blocked on the leader");
    assert!(
        missing.len() <= uncertain,
        "{} acknowledged elements lost ({missing:?}), more than the {uncertain} pops whose reply was lost",
        missing.len()
    );
    // The consumers blocked again at the new leader and were served there.
    assert!(!at_new_leader.is_empty(), "the producer went on at the new leader");
    assert!(
        consumed.iter().flat_map(|c| &c.got).any(|e| at_new_leader.contains(e)),
        "no consumer got an element pushed to the new leader"
    );
}

// ---------------------------------------------------------------------------
// 3. MULTI/EXEC all or nothing under kill -9 and restart.

#[derive(Default, Debug)]
struct Transactions {
    committed: u64,
    unknown: u64,
    not_applied: u64,
}

/// One `MULTI; INCR a{t}; INCR b{t}; LPUSH l{t} x; EXEC` on `client`,
/// following redirects: `Some(true)` applied, `Some(false)` not applied,
/// `None` unknown.
fn transaction(client: &mut SlotClient) -> Option<bool> {
    match client.send(&cmd(&["MULTI"])) {
        Reply::Value(Value::Okay) => {}
        // Nothing was queued, let alone run.
        Reply::Lost(_) => return Some(false),
        other => panic!("MULTI gave {other:?}"),
    }
    for queued in [&["INCR", "a{t}"][..], &["INCR", "b{t}"], &["LPUSH", "l{t}", "x"]] {
        match client.send(&cmd(queued)) {
            Reply::Value(Value::SimpleString(s)) if s == "QUEUED" => {}
            // EXEC was never sent; the connection is dropped with its
            // transaction (a redirect already dropped it).
            Reply::Moved(_) | Reply::Lost(_) => return Some(false),
            Reply::Retry => {
                client.reset();
                std::thread::sleep(Duration::from_millis(20));
                return Some(false);
            }
            other => panic!("{queued:?} in MULTI gave {other:?}"),
        }
    }
    match client.send(&cmd(&["EXEC"])) {
        Reply::Value(Value::Array(results)) => {
            let values: Vec<String> = results.iter().map(text).collect();
            // Every transaction adds one to each: seen atomically, a{t},
            // b{t} and the list's length are always equal.
            assert!(values.len() == 3 && values[0] == values[1] && values[1] == values[2], "EXEC gave {values:?}");
            Some(true)
        }
        Reply::Moved(_) => Some(false),
        Reply::Retry => {
            std::thread::sleep(Duration::from_millis(20));
            Some(false)
        }
        Reply::Uncertain(_) | Reply::Lost(_) => None,
        other => panic!("EXEC gave {other:?}"),
    }
}

#[test]
fn multi_exec_is_all_or_nothing_under_kill() {
    const CLIENTS: usize = 3;
    const STEP: u64 = 40;
    // Leadership returns to a restarted node soon (one more change of leader).
    let mut cluster = Cluster::start("types-multi", 3, &["--balance-interval-ms", "300"]);
    let slot = key_slot("{t}");
    let stop = Arc::new(AtomicBool::new(false));
    let committed = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (ports, stop, committed) = (cluster.ports.clone(), Arc::clone(&stop), Arc::clone(&committed));
            std::thread::spawn(move || {
                let mut client = SlotClient::new(&ports, c);
                let mut out = Transactions::default();
                let deadline = Instant::now() + Duration::from_secs(50);
                while !stop.load(Ordering::SeqCst) {
                    assert!(Instant::now() < deadline, "client {c} still running: {out:?}");
                    match transaction(&mut client) {
                        Some(true) => {
                            out.committed += 1;
                            committed.fetch_add(1, Ordering::SeqCst);
                        }
                        Some(false) => out.not_applied += 1,
                        None => out.unknown += 1,
                    }
                }
                out
            })
        })
        .collect();
    let committed_more = |what: &str| {
        let from = committed.load(Ordering::SeqCst) as u64;
        wait_for(&format!("{STEP} transactions committed {what}"), || {
            (committed.load(Ordering::SeqCst) as u64 >= from + STEP).then_some(())
        });
    };
    committed_more("before the first kill");
    for round in 1..=2 {
        // Every node runs here (the last one killed was restarted).
        let leader = cluster.slot_owners(1)[slot];
        println!(
            "round {round}: kill -9 node {leader}, leading {{t}}, at {} commits",
            committed.load(Ordering::SeqCst)
        );
        cluster.kill(leader);
        committed_more("with the leader dead");
        cluster.restart(leader);
        cluster.wait_all_reachable();
        committed_more("after the restart");
    }
    stop.store(true, Ordering::SeqCst);
    let outs: Vec<Transactions> = clients.into_iter().map(|c| c.join().expect("client")).collect();
    let committed: u64 = outs.iter().map(|o| o.committed).sum();
    let unknown: u64 = outs.iter().map(|o| o.unknown).sum();
    println!("transactions per client: {outs:?}");

    wait_replicas_agree(&cluster.ports);
    for node in 1..=3 {
        let mut c = connect(cluster.port(node)).expect("connect");
        assert_eq!(cmd(&["READONLY"]).query::<String>(&mut c).expect("READONLY"), "OK");
        let a: u64 = cmd(&["GET", "a{t}"]).query(&mut c).expect("GET a{t}");
        let b: u64 = cmd(&["GET", "b{t}"]).query(&mut c).expect("GET b{t}");
        let len: u64 = cmd(&["LLEN", "l{t}"]).query(&mut c).expect("LLEN l{t}");
        assert!(
            a == b && b == len,
            "node {node}: a{{t}}={a} b{{t}}={b} LLEN l{{t}}={len}: a transaction applied in part"
        );
        assert!(
            (committed..=committed + unknown).contains(&a),
            "node {node}: {a} transactions applied; {committed} committed and {unknown} unknown"
        );
    }
}

// ---------------------------------------------------------------------------
// 4. WATCH.

/// A redirect or "try again" on the connection to the leader: leadership
/// moved during the scenario (an election on a loaded machine), which
/// says nothing about WATCH; the scenario is run again.
#[derive(Debug)]
struct Redirected(String);

/// One command on `c`, its reply as is unless it is a redirect.
fn q(c: &mut redis::Connection, args: &[&str]) -> Result<Value, Redirected> {
    let reply = c.req_command(&cmd(args)).unwrap_or_else(|e| panic!("{args:?}: {e}"));
    match &reply {
        Value::ServerError(e) if matches!(e.code(), "MOVED" | "TRYAGAIN" | "CLUSTERDOWN") => {
            Err(Redirected(format!("{args:?}: {e:?}")))
        }
        _ => Ok(reply),
    }
}

/// The WATCH checks on keys tagged `{base}`, which node `leader` leads:
/// `c1` talks to that node, `c2` is another client (a cluster client,
/// following redirects by itself).
fn watch_scenario(
    c1: &mut redis::Connection,
    c2: &mut redis::cluster::ClusterConnection,
    base: &str,
) -> Result<(), Redirected> {
    let (k, other, counter) = (format!("{{{base}}}k"), format!("{{{base}}}other"), format!("{{{base}}}n"));
    let queued = Value::SimpleString("QUEUED".into());
    let set = |c2: &mut redis::cluster::ClusterConnection, key: &str, v: &str| {
        let () = cmd(&["SET", key, v]).query(c2).expect("SET");
    };
    set(c2, &k, "v0");

    // Another client changes the watched key: EXEC runs nothing.
    assert_eq!(q(c1, &["WATCH", &k])?, Value::Okay);
    set(c2, &k, "from-the-other-client");
    assert_eq!(q(c1, &["MULTI"])?, Value::Okay);
    assert_eq!(q(c1, &["SET", &k, "mine"])?, queued);
    assert_eq!(q(c1, &["INCR", &counter])?, queued);
    assert_eq!(q(c1, &["EXEC"])?, Value::Nil, "a watched key changed: EXEC must abort");
    assert_eq!(
        q(c1, &["MGET", &k, &counter])?,
        Value::Array(vec![Value::BulkString(b"from-the-other-client".to_vec()), Value::Nil]),
        "nothing of the aborted transaction was applied"
    );

    // Nothing changed: EXEC runs the whole transaction.
    assert_eq!(q(c1, &["WATCH", &k])?, Value::Okay);
    assert_eq!(q(c1, &["MULTI"])?, Value::Okay);
    assert_eq!(q(c1, &["SET", &k, "mine"])?, queued);
    assert_eq!(q(c1, &["INCR", &counter])?, queued);
    assert_eq!(q(c1, &["EXEC"])?, Value::Array(vec![Value::Okay, Value::Int(1)]));
    let now: Vec<Option<String>> = cmd(&["MGET", &k, &counter]).query(c2).expect("MGET");
    assert_eq!(now, vec![Some("mine".to_string()), Some("1".to_string())], "seen by the other client");

    // A change to another key of the same shard is not a change to the
    // watched one.
    assert_eq!(q(c1, &["WATCH", &k])?, Value::Okay);
    set(c2, &other, "unrelated");
    assert_eq!(q(c1, &["MULTI"])?, Value::Okay);
    assert_eq!(q(c1, &["INCR", &counter])?, queued);
    assert_eq!(q(c1, &["EXEC"])?, Value::Array(vec![Value::Int(2)]), "only the watched key counts");

    // As in Redis, rewriting the same value is a change too, and so is
    // the key deleted and made a list by another client.
    assert_eq!(q(c1, &["WATCH", &k])?, Value::Okay);
    set(c2, &k, "mine");
    assert_eq!(q(c1, &["MULTI"])?, Value::Okay);
    assert_eq!(q(c1, &["INCR", &counter])?, queued);
    assert_eq!(q(c1, &["EXEC"])?, Value::Nil, "SET to the same value still touches the key");
    assert_eq!(q(c1, &["WATCH", &k])?, Value::Okay);
    let _: Value = cmd(&["DEL", &k]).query(c2).expect("DEL");
    let _: Value = cmd(&["RPUSH", &k, "x"]).query(c2).expect("RPUSH");
    assert_eq!(q(c1, &["MULTI"])?, Value::Okay);
    assert_eq!(q(c1, &["INCR", &counter])?, queued);
    assert_eq!(q(c1, &["EXEC"])?, Value::Nil);
    // After an abort the connection is out of MULTI and watches nothing.
    assert_eq!(q(c1, &["MULTI"])?, Value::Okay);
    assert_eq!(q(c1, &["INCR", &counter])?, queued);
    assert_eq!(q(c1, &["EXEC"])?, Value::Array(vec![Value::Int(3)]));
    Ok(())
}

#[test]
fn watch_aborts_on_change_from_another_client() {
    let cluster = Cluster::start("types-watch", 3, &[]);
    let urls: Vec<String> = cluster.ports.iter().map(|p| format!("redis://127.0.0.1:{p}/")).collect();
    let mut c2 = redis::cluster::ClusterClient::builder(urls)
        .build()
        .expect("cluster client")
        .get_connection()
        .expect("cluster connection");
    for attempt in 0.. {
        // Fresh keys each attempt, in a shard whose leader this client
        // talks to directly.
        let owners = cluster.slot_owners(1);
        let leader = owners[0];
        let base = Cluster::key_on(&owners, leader, &format!("watched{attempt}-"));
        let mut c1 = connect(cluster.port(leader)).expect("connect to the leader");
        match watch_scenario(&mut c1, &mut c2, &base) {
            Ok(()) => return,
            Err(Redirected(what)) if attempt < 5 => println!("leadership moved ({what}); again"),
            Err(Redirected(what)) => panic!("leadership kept moving: {what}"),
        }
    }
}
