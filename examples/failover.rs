//! How long writes to a shard stop when its leader dies (SIGKILL) or
//! freezes (SIGSTOP): run by `bench/failover.sh`, which says how.
//!
//! Starts three `shoal server`s, then per trial: a writer SETs one key in
//! a loop through shoal's cluster client; the node leading the key's shard
//! is killed or paused; the time from the fault to the first acknowledged
//! write *sent after* the fault is that trial's failover time. The node is
//! then restarted (or continued) and the cluster let settle before the
//! next trial. Prints every trial, then p50 / p99 / max per fault.
//!
//! Usage: failover SHOAL_BIN BASE_PORT DIR TRIALS [REPLY_TIMEOUT_MS [SERVER_FLAG…]]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use shoal_client::{ClusterClient, RetryPolicy};
use shoal_engine::slot::key_slot;

const NODES: u16 = 3;

struct Cluster {
    bin: PathBuf,
    base: u16,
    dir: PathBuf,
    nodes: Vec<Option<Child>>,
    /// Further `shoal server` flags.
    flags: Vec<String>,
}

impl Cluster {
    fn initial_cluster(&self) -> String {
        (1..=NODES).map(|i| format!("{i}=127.0.0.1:{}", self.base + i - 1)).collect::<Vec<_>>().join(",")
    }

    fn spawn(&self, i: u16) -> Child {
        Command::new(&self.bin)
            .args(["server", "--id", &i.to_string(), "--port", &(self.base + i - 1).to_string()])
            .arg("--dir")
            .arg(self.dir.join(format!("node-{i}")))
            .args(["--initial-cluster", &self.initial_cluster(), "--log-level", "error"])
            .args(&self.flags)
            .stdout(Stdio::null())
            .spawn()
            .expect("start shoal server")
    }

    fn start(bin: &Path, base: u16, dir: &Path, flags: &[String]) -> Cluster {
        let _ = std::fs::remove_dir_all(dir);
        let mut cluster = Cluster { bin: bin.into(), base, dir: dir.into(), nodes: Vec::new(), flags: flags.to_vec() };
        cluster.nodes = (1..=NODES).map(|i| Some(cluster.spawn(i))).collect();
        cluster
    }

    fn pid(&self, i: u16) -> i32 {
        self.nodes[usize::from(i - 1)].as_ref().expect("node running").id() as i32
    }

    fn signal(&self, i: u16, signal: libc::c_int) {
        // SAFETY: signalling our own child process.
        unsafe { libc::kill(self.pid(i), signal) };
    }

    fn kill(&mut self, i: u16) {
        let mut child = self.nodes[usize::from(i - 1)].take().expect("node running");
        let _ = child.kill();
        let _ = child.wait();
    }

    fn restart(&mut self, i: u16) {
        self.nodes[usize::from(i - 1)] = Some(self.spawn(i));
    }

    /// Every node reaches the others and knows a leader for every slot.
    async fn wait_ready(&self, client: &ClusterClient) {
        let deadline = Instant::now() + Duration::from_secs(60);
        'again: while Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
            for i in 1..=NODES {
                let addr = format!("127.0.0.1:{}", self.base + i - 1);
                let ask = [Bytes::from_static(b"CLUSTER"), Bytes::from_static(b"INFO")];
                let Ok(Ok(reply)) = tokio::time::timeout(Duration::from_secs(1), client.call_at(&addr, &ask)).await
                else {
                    continue 'again;
                };
                let text = format!("{reply:?}");
                if !text.contains("cluster_state:ok") || !text.contains(&format!("cluster_reachable_nodes:{NODES}")) {
                    continue 'again;
                }
            }
            return;
        }
        panic!("the cluster did not become ready within 60 s");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in self.nodes.iter_mut().flatten() {
            // SAFETY: our own child; a paused one must be woken to die cleanly.
            unsafe { libc::kill(child.id() as i32, libc::SIGCONT) };
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Fault {
    Kill,
    Pause,
}

/// One trial: the failover time, or `None` if writes did not resume
/// within 20 s.
async fn trial(cluster: &mut Cluster, policy: RetryPolicy, fault: Fault, n: usize) -> Option<Duration> {
    let seeds: Vec<String> = (1..=NODES).map(|i| format!("127.0.0.1:{}", cluster.base + i - 1)).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    let client = loop {
        match ClusterClient::connect(&seeds, policy).await {
            Ok(client) => break Arc::new(client),
            Err(e) if Instant::now() > deadline => panic!("cannot reach the cluster: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    cluster.wait_ready(&client).await;
    wait_balanced(&client).await;
    let key = format!("failover-{n}");
    let owner = client.slot_map().owner(key_slot(key.as_bytes())).expect("slot owner").to_string();
    let port: u16 = owner.rsplit(':').next().and_then(|p| p.parse().ok()).expect("owner port");
    let victim = port - cluster.base + 1;

    let acks: Arc<Mutex<Vec<(Instant, Instant)>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (client, acks, stop, key) = (Arc::clone(&client), Arc::clone(&acks), Arc::clone(&stop), key.clone());
        tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                i += 1;
                let sent = Instant::now();
                let args = vec![Bytes::from_static(b"SET"), Bytes::from(key.clone()), Bytes::from(i.to_string())];
                if client.call(args).await.is_ok() {
                    acks.lock().unwrap().push((sent, Instant::now()));
                }
            }
        })
    };
    // The writer is under way before the fault.
    let ready_by = Instant::now() + Duration::from_secs(10);
    while acks.lock().unwrap().is_empty() {
        assert!(Instant::now() < ready_by, "no write acknowledged within 10 s before the fault");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let fault_at = Instant::now();
    match fault {
        Fault::Kill => cluster.kill(victim),
        Fault::Pause => cluster.signal(victim, libc::SIGSTOP),
    }
    let deadline = fault_at + Duration::from_secs(20);
    let resumed = loop {
        let first = acks.lock().unwrap().iter().find(|(sent, _)| *sent >= fault_at).map(|(_, done)| *done);
        if let Some(done) = first {
            break Some(done - fault_at);
        }
        if Instant::now() > deadline {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    match fault {
        Fault::Kill => cluster.restart(victim),
        Fault::Pause => cluster.signal(victim, libc::SIGCONT),
    }
    let _ = tokio::time::timeout(Duration::from_secs(20), writer).await;
    println!(
        "trial {n}: {fault:?} node {victim} (leader of {key}'s shard): writes resumed after {}",
        resumed.map_or("more than 20 s".into(), |d| format!("{} ms", d.as_millis()))
    );
    resumed
}

/// Waits (up to 30 s) until every node leads its share of the slots, so a
/// leadership hand-back after the last trial's restart does not land in the
/// middle of this one.
async fn wait_balanced(client: &ClusterClient) {
    let fair = 16384 / usize::from(NODES);
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if client.refresh_slots().await.is_ok() {
            let map = client.slot_map();
            let mut led: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
            for slot in 0..16384u16 {
                if let Some(owner) = map.owner(slot) {
                    *led.entry(owner).or_default() += 1;
                }
            }
            if led.len() == usize::from(NODES) && led.values().all(|&n| n + 100 >= fair) {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("leadership did not even out within 30 s; measuring anyway");
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        eprintln!("usage: failover SHOAL_BIN BASE_PORT DIR TRIALS [REPLY_TIMEOUT_MS]");
        std::process::exit(2);
    }
    let (bin, base, dir) = (PathBuf::from(&args[1]), args[2].parse().expect("port"), PathBuf::from(&args[3]));
    let trials: usize = args[4].parse().expect("trials");
    let reply_timeout = Duration::from_millis(args.get(5).map_or(250, |t| t.parse().expect("reply timeout")));
    let policy = RetryPolicy {
        deadline: Duration::from_secs(30),
        max_attempts: 10_000,
        max_backoff: Duration::from_millis(50),
        reply_timeout,
        ..RetryPolicy::default()
    };
    println!("client: reply timeout {} ms, backoff up to 50 ms", reply_timeout.as_millis());
    let flags = args.get(6..).unwrap_or_default();
    if !flags.is_empty() {
        println!("server flags: {}", flags.join(" "));
    }
    let mut cluster = Cluster::start(&bin, base, &dir, flags);
    let mut summary = Vec::new();
    for fault in [Fault::Kill, Fault::Pause] {
        let mut times = Vec::new();
        for n in 0..trials {
            match trial(&mut cluster, policy, fault, n + summary.len() * trials).await {
                Some(t) => times.push(t),
                None => println!("trial {n}: writes did not resume within 20 s"),
            }
        }
        times.sort();
        summary.push((fault, times));
    }
    println!();
    println!("| fault | trials resumed | p50 | p99 | max |");
    println!("|---|---|---|---|---|");
    for (fault, times) in &summary {
        if times.is_empty() {
            println!("| {fault:?} | 0/{trials} | - | - | - |");
            continue;
        }
        let ms = |d: Duration| format!("{} ms", d.as_millis());
        println!(
            "| {fault:?} | {}/{trials} | {} | {} | {} |",
            times.len(),
            ms(percentile(times, 50.0)),
            ms(percentile(times, 99.0)),
            ms(*times.last().unwrap())
        );
    }
}
