//! The nemesis of `shoal check`: faults injected into the nodes it started.
//! One fault at a time, so a majority of every shard stays up: a node is
//! killed (SIGKILL, then restarted from its data directory) or paused
//! (SIGSTOP, then SIGCONT: a leader that wakes up must not serve a stale
//! read or acknowledge a write it cannot commit), or wiped (SIGKILL, its
//! data directory emptied, restarted: it must rejoin as a new replica, and
//! the next fault waits until every group has swapped it in, since a second
//! lost disk before that would leave a group without a majority), or the
//! cluster's shape changes (a replica moved, a preferred leader moved; the
//! next fault waits for the move). Which node, which fault and for how long
//! come from the seed.

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use shoal_cluster::map::{node_of, ClusterMap, NodeState, Role};
use shoal_proto::Frame;
use tokio::process::Child;
use tokio::sync::watch;

use crate::nodes::{self, NodeSpec};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Fault {
    /// SIGKILL a node, then restart it.
    Kill,
    /// SIGSTOP a node, then SIGCONT it.
    Pause,
    /// SIGKILL a node, empty its data directory, restart it.
    Wipe,
    /// Change the cluster's shape: join a spare node (`--join`) or remove
    /// the one joined earlier (drained, then out of the map), or move a
    /// shard's replica to a node that holds none (with more nodes than
    /// replicas), else a shard's preferred leader; then wait until no move
    /// is under way.
    Membership,
    /// Split a shard at the slot halving its keys, or merge two adjacent
    /// shards on the same nodes; then wait until no change is under way.
    Reshard,
    /// No faults.
    None,
}

/// A node `shoal check` started, and whether it is up.
pub struct Managed {
    pub spec: NodeSpec,
    pub child: Option<Child>,
}

impl Managed {
    pub fn start(spec: NodeSpec) -> Result<Managed, String> {
        let (child, _) = spec.spawn()?;
        Ok(Managed { spec, child: Some(child) })
    }

    async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Starts the node again and waits (bounded) until it answers PING, so
    /// a node that cannot start (its port still taken) is reported, not
    /// left down while the next fault takes a second node.
    async fn restart(&mut self) -> Result<(), String> {
        let mut child = self.spec.spawn()?.0;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("it exited at once ({status})"));
            }
            if crate::probe::call(self.spec.port, &["PING"]).await.is_some() {
                self.child = Some(child);
                return Ok(());
            }
            if Instant::now() > deadline {
                self.child = Some(child);
                return Err("it did not answer PING within 10 s".into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Empties the (killed) node's data directory.
    fn wipe(&self) -> Result<(), String> {
        let dir = &self.spec.dir;
        std::fs::remove_dir_all(dir)
            .and_then(|()| std::fs::create_dir_all(dir))
            .map_err(|e| format!("cannot wipe {}: {e}", dir.display()))
    }

    /// Waits (bounded) until the node runs under a new Raft identity that
    /// every group it holds lists as a voter.
    async fn rejoined(&self) -> Result<(), String> {
        let deadline = Instant::now() + REJOIN_TIMEOUT;
        loop {
            if let Some(Frame::Bulk(info)) = crate::probe::call(self.spec.port, &["INFO", "replication"]).await {
                if swapped_in(&String::from_utf8_lossy(&info)) {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err(format!("not swapped in as a new replica within {REJOIN_TIMEOUT:?}"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn signal(&self, signal: libc::c_int) {
        if let Some(child) = &self.child {
            nodes::signal(child, signal);
        }
    }

    /// SIGTERM, then SIGKILL if it has not stopped within `grace`.
    pub async fn stop(&mut self, grace: Duration) {
        if let Some(mut child) = self.child.take() {
            nodes::signal(&child, libc::SIGCONT);
            nodes::signal(&child, libc::SIGTERM);
            if tokio::time::timeout(grace, child.wait()).await.is_err() {
                let _ = child.kill().await;
            }
        }
    }
}

/// Injects faults until `stop` turns true, then heals whatever it broke.
/// Returns the nodes (all up) and a line per fault for the report.
pub async fn run(
    mut nodes: Vec<Managed>,
    faults: Vec<Fault>,
    interval: Duration,
    seed: u64,
    started: Instant,
    mut stop: watch::Receiver<bool>,
) -> (Vec<Managed>, Vec<String>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let faults: Vec<Fault> = faults.into_iter().filter(|f| *f != Fault::None).collect();
    let mut log = Vec::new();
    // A node joined by a membership fault, removed by a later one.
    let mut spare: Option<Spare> = None;
    let mut spares = 0u32;
    let at = || format!("{:.1} s", started.elapsed().as_secs_f64());
    while !faults.is_empty() && !nodes.is_empty() {
        if wait(&mut stop, interval).await {
            break;
        }
        let fault = faults[rng.random_range(0..faults.len())];
        let victim = rng.random_range(0..nodes.len());
        // Long enough for an election (and for the node to miss writes),
        // short enough to leave time between faults.
        let hold = interval.mul_f64(rng.random_range(0.3..0.9));
        let node = &mut nodes[victim];
        let number = node.spec.number;
        let began = at();
        let mut broken = Ok(());
        let mut detail = String::new();
        match fault {
            Fault::Kill => node.kill().await,
            Fault::Pause => node.signal(libc::SIGSTOP),
            Fault::Wipe => {
                node.kill().await;
                broken = node.wipe();
            }
            // A third of membership faults join a spare node or remove it.
            Fault::Membership if rng.random_range(0..3) == 0 => {
                broken = match spare.take() {
                    None => {
                        spares += 1;
                        detail = " (a spare node joined through it)".to_string();
                        Spare::join(&node.spec, spares).await.map(|joined| spare = Some(joined))
                    }
                    Some(mut old) => {
                        detail = format!(" (the spare node on port {} removed through it)", old.port);
                        let removed = old.remove(node.spec.port).await;
                        if removed.is_err() {
                            // Kept (still running) for a later fault to retry.
                            spare = Some(old);
                        }
                        removed
                    }
                };
            }
            Fault::Membership => broken = change_shape(node.spec.port, &mut rng).await,
            Fault::Reshard => match reshard(node.spec.port, &mut rng).await {
                Ok(what) => detail = format!(" ({what})"),
                Err(e) => broken = Err(e),
            },
            Fault::None => unreachable!("filtered out"),
        }
        let stopping = wait(&mut stop, hold).await;
        let healed = match fault {
            Fault::Kill => node.restart().await,
            Fault::Wipe => match broken {
                Ok(()) => match node.restart().await {
                    Ok(()) => node.rejoined().await,
                    Err(e) => Err(e),
                },
                Err(e) => node.restart().await.and(Err(e)),
            },
            Fault::Membership | Fault::Reshard => broken.and(moves_done(node.spec.port).await),
            _ => {
                node.signal(libc::SIGCONT);
                Ok(())
            }
        };
        let healed = healed.map_err(|e| format!("; healing failed: {e}"));
        let word = match fault {
            Fault::Kill => "killed",
            Fault::Wipe => "wiped",
            Fault::Membership => "changed the cluster's shape",
            Fault::Reshard => "resharded the cluster",
            _ => "paused",
        };
        log.push(format!(
            "node {number} {word}{detail} at {began}, back at {}{}",
            at(),
            healed.err().unwrap_or_default()
        ));
        if stopping {
            break;
        }
    }
    if let Some(mut old) = spare.take() {
        let port = nodes[0].spec.port;
        let removed = old.remove(port).await.and(moves_done(port).await);
        log.push(format!(
            "spare node removed at the end{}",
            removed.err().map(|e| format!(": {e}")).unwrap_or_default()
        ));
    }
    (nodes, log)
}

/// A node a membership fault started with `--join` (its own port, peer
/// port and directory), to be removed by a later one.
struct Spare {
    child: Child,
    port: u16,
}

impl Spare {
    /// Starts a new node joining through `seed`'s node and waits (bounded)
    /// until it serves.
    async fn join(seed: &NodeSpec, k: u32) -> Result<Spare, String> {
        // Both listeners held until both ports are known: two distinct ports.
        let bind = || std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string());
        let (a, b) = (bind()?, bind()?);
        let port_of = |l: &std::net::TcpListener| l.local_addr().map(|a| a.port()).map_err(|e| e.to_string());
        let (port, peer) = (port_of(&a)?, port_of(&b)?);
        drop((a, b));
        let dir = seed.dir.with_file_name(format!("spare-{k}"));
        let _ = std::fs::remove_dir_all(&dir);
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let child = tokio::process::Command::new(exe)
            .args(["server", "--port", &port.to_string(), "--peer-port", &peer.to_string()])
            .arg("--dir")
            .arg(&dir)
            .args(["--join", &format!("127.0.0.1:{}", seed.port), "--log-level", &seed.log_level])
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start a spare node: {e}"))?;
        let deadline = Instant::now() + REJOIN_TIMEOUT;
        while crate::probe::call(port, &["PING"]).await.is_none() {
            if Instant::now() > deadline {
                return Err(format!("the spare node on port {port} did not answer within {REJOIN_TIMEOUT:?}"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Spare { child, port })
    }

    /// Removes the spare node through `via`'s node and waits (bounded)
    /// until it has drained and stopped by itself.
    async fn remove(&mut self, via: u16) -> Result<(), String> {
        let node = format!("127.0.0.1:{}", self.port);
        match crate::probe::call(via, &["CLUSTER", "SHOAL", "REMOVE-NODE", &node]).await {
            Some(Frame::Bulk(_)) => {}
            other => return Err(format!("REMOVE-NODE {node} gave {other:?}")),
        }
        match tokio::time::timeout(REJOIN_TIMEOUT, self.child.wait()).await {
            Ok(Ok(status)) if status.success() => Ok(()),
            Ok(other) => Err(format!("the removed spare node exited with {other:?}")),
            Err(_) => Err(format!("the spare node was not drained and removed within {REJOIN_TIMEOUT:?}")),
        }
    }
}

/// Asks node `port` for one random change of the cluster's shape (see
/// `Fault::Membership`).
async fn change_shape(port: u16, rng: &mut StdRng) -> Result<(), String> {
    let map = cluster_map(port).await?;
    let shards: Vec<_> = map.shards.keys().copied().collect();
    let shard = shards[rng.random_range(0..shards.len())];
    let info = &map.shards[&shard];
    let up: Vec<u32> = map.nodes.iter().filter(|(_, n)| n.state == NodeState::Up).map(|(&n, _)| n).collect();
    let voters: Vec<u32> =
        info.replicas.iter().filter(|(_, r)| **r == Role::Voter).map(|(&id, _)| node_of(id)).collect();
    let outside: Vec<u32> = up.iter().copied().filter(|n| map.replica_on(shard, *n).is_none()).collect();
    let (shard, pick) = (shard.to_string(), |from: &[u32], rng: &mut StdRng| from[rng.random_range(0..from.len())]);
    let words: Vec<String> = if outside.is_empty() {
        let others: Vec<u32> = voters.iter().copied().filter(|&v| v != node_of(info.preferred_leader)).collect();
        if others.is_empty() {
            return Ok(());
        }
        vec!["TRANSFER-LEADER".into(), shard, pick(&others, rng).to_string()]
    } else {
        vec!["MOVE-REPLICA".into(), shard, pick(&voters, rng).to_string(), pick(&outside, rng).to_string()]
    };
    let mut args = vec!["CLUSTER", "SHOAL"];
    args.extend(words.iter().map(String::as_str));
    match crate::probe::call(port, &args).await {
        Some(Frame::Bulk(_)) => Ok(()),
        other => Err(format!("{} gave {other:?}", words.join(" "))),
    }
}

/// Asks node `port` to split a random shard, or (half the time, when one
/// is free) to merge two adjacent shards on the same nodes. Says which.
async fn reshard(port: u16, rng: &mut StdRng) -> Result<String, String> {
    let map = cluster_map(port).await?;
    let mut ordered: Vec<_> = map.shards.iter().collect();
    ordered.sort_by_key(|(_, s)| *s.slots.start());
    let pairs: Vec<(u16, u16)> = ordered
        .windows(2)
        .map(|w| (*w[0].0, *w[1].0))
        .filter(|&(l, r)| map.co_located(l, r) && !map.busy(l) && !map.busy(r))
        .collect();
    let words: Vec<String> = if !pairs.is_empty() && map.shards.len() > 2 && rng.random_range(0..2) == 0 {
        let (left, right) = pairs[rng.random_range(0..pairs.len())];
        vec!["MERGE".into(), left.to_string(), right.to_string()]
    } else {
        let wide: Vec<u16> =
            ordered.iter().filter(|(_, s)| s.slots.start() < s.slots.end()).map(|(&id, _)| id).collect();
        vec!["SPLIT".into(), wide[rng.random_range(0..wide.len())].to_string()]
    };
    let mut args = vec!["CLUSTER", "SHOAL"];
    args.extend(words.iter().map(String::as_str));
    match crate::probe::call(port, &args).await {
        Some(Frame::Bulk(text)) => Ok(String::from_utf8_lossy(&text).into_owned()),
        other => Err(format!("{} gave {other:?}", words.join(" "))),
    }
}

async fn cluster_map(port: u16) -> Result<ClusterMap, String> {
    match crate::probe::call(port, &["CLUSTER", "SHOAL", "MAP"]).await {
        Some(Frame::Bulk(json)) => {
            std::str::from_utf8(&json).map_err(|e| e.to_string()).and_then(ClusterMap::from_json)
        }
        other => Err(format!("CLUSTER SHOAL MAP gave {other:?}")),
    }
}

/// Waits (bounded) until node `port`'s map shows no move, split or merge
/// under way.
async fn moves_done(port: u16) -> Result<(), String> {
    let deadline = Instant::now() + REJOIN_TIMEOUT;
    loop {
        let idle = |m: &ClusterMap| m.moves.is_empty() && m.splits.is_empty() && m.merges.is_empty();
        if cluster_map(port).await.is_ok_and(|m| idle(&m)) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("a move, split or merge still under way after {REJOIN_TIMEOUT:?}"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How long a wiped node may take to be swapped in as a new replica.
const REJOIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether an INFO replication text shows a node under a new Raft identity
/// (`raft_id:N/generation`) whose replica in every group it holds (`me=`,
/// its own id there) is a voter.
fn swapped_in(info: &str) -> bool {
    let Some(id) = info.lines().find_map(|l| l.trim().strip_prefix("raft_id:")) else { return false };
    let groups: Vec<&str> = info.lines().filter(|l| l.starts_with("group")).collect();
    let field = |line: &str, name: &str| {
        line.trim().split(',').find_map(|f| f.split(':').next_back()?.strip_prefix(name).map(String::from))
    };
    id.contains('/')
        && !groups.is_empty()
        && groups.iter().all(|l| {
            let me = field(l, "me=").unwrap_or_else(|| id.to_string());
            field(l, "voters=").is_some_and(|v| v.split('|').any(|m| m == me))
        })
}

/// Sleeps for `d` or until told to stop; true if told to stop.
async fn wait(stop: &mut watch::Receiver<bool>, d: Duration) -> bool {
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => *stop.borrow(),
        _ = stop.changed() => true,
    }
}

#[cfg(test)]
mod tests {
    use super::swapped_in;

    #[test]
    fn a_node_counts_as_swapped_in_once_every_group_has_its_new_identity() {
        let info = |id: &str, voters: [&str; 2]| {
            format!(
                "# Replication\r\nraft_id:{id}\r\ngroup0:role=follower,me={id},lag=-,voters={},learners=-\r\ngroup1:role=leader,me={id},voters={},learners=-\r\n",
                voters[0], voters[1]
            )
        };
        assert!(swapped_in(&info("3/0a", ["1|2|3/0a", "3/0a|1|2"])));
        assert!(!swapped_in(&info("3/0a", ["1|2|3/0a", "1|2|3"])), "group 1 still has the old identity");
        assert!(!swapped_in(&info("3", ["1|2|3", "1|2|3"])), "not a new identity");
        assert!(!swapped_in("# Replication\r\nraft_id:3/0a\r\n"), "no group listed yet");
        let moved = "raft_id:3/0a\r\ngroup0:role=follower,me=3/0b,voters=1|2|3/0b,learners=-\r\n";
        assert!(swapped_in(moved), "a moved replica has an id of its own");
    }
}
