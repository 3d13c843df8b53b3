//! The clients of `shoal check`: each is one process of the history, with
//! at most one operation outstanding, and records every operation with its
//! invocation and completion times and its outcome.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use shoal_check::history::{Call, Op, Outcome, Ret};
use shoal_client::{ClientError, ClusterClient, RetryPolicy};
use shoal_proto::Frame;

/// What the clients share.
pub struct Shared {
    pub seeds: Vec<String>,
    pub policy: RetryPolicy,
    /// Past this an operation is recorded as indeterminate.
    pub op_timeout: Duration,
    /// Pause between one client's operations (jittered ±50%).
    pub think: Duration,
    /// Every key starts with this, so runs never share keys.
    pub prefix: String,
    pub ops_per_key: u64,
    pub set_keys: u64,
    pub list_keys: u64,
    pub started: Instant,
    pub stop: AtomicBool,
    /// Register operations issued so far: picks the key.
    pub register_ops: AtomicU64,
    /// The next unique value or element.
    pub next_value: AtomicU64,
}

impl Shared {
    fn now_ns(&self) -> u64 {
        self.started.elapsed().as_nanos() as u64
    }

    pub fn set_key(&self, n: u64) -> String {
        format!("{}:s{n}", self.prefix)
    }

    /// List key `n`: odd ones share a hash tag (one slot, so one shard
    /// holds several lists), even ones spread over the shards.
    pub fn list_key(&self, n: u64) -> String {
        if n % 2 == 1 {
            format!("{{{}:lists}}:l{n}", self.prefix)
        } else {
            format!("{}:l{n}", self.prefix)
        }
    }

    /// A client, retried until the cluster answers or the run stops.
    async fn client(&self) -> Option<ClusterClient> {
        while !self.stop.load(Ordering::Acquire) {
            if let Ok(client) = ClusterClient::connect(&self.seeds, self.policy).await {
                return Some(client);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        None
    }

    /// Runs one operation: its timing and what came back.
    async fn run(&self, client: &ClusterClient, process: u32, key: String, call: Call, args: &[&str]) -> Op {
        let args: Vec<Bytes> = args.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect();
        let invoke_ns = self.now_ns();
        let reply = tokio::time::timeout(self.op_timeout, client.call(args)).await;
        let complete_ns = Some(self.now_ns());
        let outcome = match reply {
            Err(_) => Outcome::Info(format!("no answer within {} ms", self.op_timeout.as_millis())),
            Ok(Err(e)) => failed(e),
            Ok(Ok(Frame::Error(e))) => Outcome::Info(String::from_utf8_lossy(&e).into_owned()),
            Ok(Ok(frame)) => {
                let shown = format!("unexpected reply {frame:?}");
                result(&call, frame).map_or(Outcome::Info(shown), Outcome::Ok)
            }
        };
        Op { process, key, call, invoke_ns, complete_ns, outcome }
    }

    async fn think(&self, rng: &mut StdRng) {
        let half = self.think.as_micros() as u64 / 2;
        tokio::time::sleep(Duration::from_micros(half + rng.random_range(0..=2 * half))).await;
    }
}

/// A client error is a certain failure only when the request never left
/// (a usage error, refused before sending). Anything else may have followed
/// an attempt that was sent: indeterminate. An error reply other than a
/// redirect (which the client follows) is indeterminate too: shoal's
/// `-UNCERTAIN` says exactly that.
fn failed(e: ClientError) -> Outcome {
    match e {
        ClientError::Usage(_) => Outcome::Fail(e.to_string()),
        _ => Outcome::Info(e.to_string()),
    }
}

/// What a successful reply means for `call`: `None` for a reply of a
/// shape the command never gives (recorded as indeterminate). A read of
/// something no client wrote becomes a value no write used, so the checker
/// reports it.
fn result(call: &Call, frame: Frame) -> Option<Ret> {
    /// Never written by any client: an impossible read.
    const GARBAGE: u64 = u64::MAX;
    Some(match (call, frame) {
        (Call::Read, Frame::Null) => Ret::Value(None),
        (Call::Read, Frame::Bulk(b)) => Ret::Value(Some(parse(&b).unwrap_or(GARBAGE))),
        (Call::Read, _) => Ret::Value(Some(GARBAGE)),
        (Call::Cas { .. }, Frame::Null) => Ret::Swapped(false),
        (Call::Cas { .. }, f) if f == Frame::OK => Ret::Swapped(true),
        (Call::Write(_), f) if f == Frame::OK => Ret::Done,
        (Call::Add(_), Frame::Integer(_)) => Ret::Done,
        (Call::ReadAll, Frame::Null) => Ret::Elements(Vec::new()),
        (Call::ReadAll, Frame::Bulk(b)) => Ret::Elements(
            String::from_utf8_lossy(&b).split_whitespace().map(|e| e.parse().unwrap_or(GARBAGE)).collect(),
        ),
        (Call::ReadAll, _) => Ret::Elements(vec![GARBAGE]),
        (Call::Append(_), Frame::Integer(_)) => Ret::Done,
        (Call::ReadList, Frame::Array(items)) => Ret::Elements(
            items
                .into_iter()
                .map(|item| match item {
                    Frame::Bulk(b) => parse(&b).unwrap_or(GARBAGE),
                    _ => GARBAGE,
                })
                .collect(),
        ),
        (Call::ReadList, _) => Ret::Elements(vec![GARBAGE]),
        _ => return None,
    })
}

fn parse(b: &[u8]) -> Option<u64> {
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// A register client: reads, writes of unique values, and compare-and-sets
/// from the last value it read, on a key that changes every
/// `ops_per_key` operations (so each key's history stays small to check).
pub async fn register_client(shared: Arc<Shared>, process: u32, seed: u64) -> Vec<Op> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut ops = Vec::new();
    let Some(client) = shared.client().await else { return ops };
    let mut last_read: Option<(String, u64)> = None;
    while !shared.stop.load(Ordering::Acquire) {
        let n = shared.register_ops.fetch_add(1, Ordering::Relaxed);
        let key = format!("{}:r{}", shared.prefix, n / shared.ops_per_key);
        let value = shared.next_value.fetch_add(1, Ordering::Relaxed);
        let seen = last_read.as_ref().filter(|(k, _)| *k == key).map(|(_, v)| *v);
        let op = match (rng.random_range(0..10), seen) {
            (0..4, _) => shared.run(&client, process, key.clone(), Call::Read, &["GET", &key]).await,
            (4..7, Some(expect)) => {
                let call = Call::Cas { expect, new: value };
                let args = ["SET", &key, &value.to_string(), "IFEQ", &expect.to_string()];
                shared.run(&client, process, key.clone(), call, &args).await
            }
            _ => {
                let args = ["SET", &key, &value.to_string()];
                shared.run(&client, process, key.clone(), Call::Write(value), &args).await
            }
        };
        if let Outcome::Ok(Ret::Value(Some(v))) = op.outcome {
            last_read = Some((key, v));
        }
        ops.push(op);
        shared.think(&mut rng).await;
    }
    ops
}

/// A set client: appends unique elements to one of `set_keys` keys.
pub async fn set_client(shared: Arc<Shared>, process: u32, seed: u64) -> Vec<Op> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut ops = Vec::new();
    let Some(client) = shared.client().await else { return ops };
    while !shared.stop.load(Ordering::Acquire) {
        let key = shared.set_key(rng.random_range(0..shared.set_keys));
        let element = shared.next_value.fetch_add(1, Ordering::Relaxed);
        let args = ["APPEND", &key, &format!("{element} ")];
        ops.push(shared.run(&client, process, key.clone(), Call::Add(element), &args).await);
        shared.think(&mut rng).await;
    }
    ops
}

/// A list-append client: RPUSHes unique elements to one of `list_keys`
/// keys, and one time in four reads a whole list instead.
pub async fn list_client(shared: Arc<Shared>, process: u32, seed: u64) -> Vec<Op> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut ops = Vec::new();
    let Some(client) = shared.client().await else { return ops };
    while !shared.stop.load(Ordering::Acquire) {
        let key = shared.list_key(rng.random_range(0..shared.list_keys));
        let op = if rng.random_range(0..4) == 0 {
            shared.run(&client, process, key.clone(), Call::ReadList, &["LRANGE", &key, "0", "-1"]).await
        } else {
            let element = shared.next_value.fetch_add(1, Ordering::Relaxed);
            let args = ["RPUSH", &key, &element.to_string()];
            shared.run(&client, process, key.clone(), Call::Append(element), &args).await
        };
        ops.push(op);
        shared.think(&mut rng).await;
    }
    ops
}

/// After the faults healed: one read of every set key, retried until it
/// succeeds or `patience` runs out (a missing read makes the check unknown).
pub async fn final_reads(shared: &Shared, process: u32, patience: Duration) -> Vec<Op> {
    let keys = (0..shared.set_keys).map(|n| (shared.set_key(n), Call::ReadAll));
    final_reads_of(shared, process, keys.collect(), patience).await
}

/// The same for every list key: the read all acknowledged appends must be in.
pub async fn final_list_reads(shared: &Shared, process: u32, patience: Duration) -> Vec<Op> {
    let keys = (0..shared.list_keys).map(|n| (shared.list_key(n), Call::ReadList));
    final_reads_of(shared, process, keys.collect(), patience).await
}

async fn final_reads_of(shared: &Shared, process: u32, keys: Vec<(String, Call)>, patience: Duration) -> Vec<Op> {
    let deadline = Instant::now() + patience;
    let mut ops = Vec::new();
    let mut client = None;
    for (key, call) in keys {
        let args: Vec<&str> = match call {
            Call::ReadList => vec!["LRANGE", &key, "0", "-1"],
            _ => vec!["GET", &key],
        };
        while Instant::now() < deadline {
            if client.is_none() {
                client = ClusterClient::connect(&shared.seeds, shared.policy).await.ok();
            }
            if let Some(c) = &client {
                let op = shared.run(c, process, key.clone(), call.clone(), &args).await;
                if matches!(op.outcome, Outcome::Ok(_)) {
                    ops.push(op);
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    ops
}
