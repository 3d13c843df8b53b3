//! An in-process [`Transport`]: an RPC goes straight to the target node's
//! groups through the same `transport::handle` the TCP server uses, so a
//! test can run several nodes' `Replicas` in one process and choose the
//! faults: a node down, a link cut, a delay on every message, and, drawn
//! from a seeded generator, lost requests and replies and a random delay
//! per message (which reorders messages in flight).
//!
//! The draws happen in the order messages are sent, which depends on how
//! tasks and the WAL threads interleave: a seed fixes the fault rates and
//! the generator, not one exact interleaving.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::error::RPCError;

use crate::transport::{handle, rpc_result, GroupId, Groups, NetworkFactory, Request, Response, Transport};
use crate::{ShoalRaft, TypeConfig};

#[derive(Default)]
struct State {
    nodes: HashMap<u64, Groups>,
    down: HashSet<u64>,
    /// Cut links, stored with the smaller node first.
    cut: HashSet<(u64, u64)>,
    delay: Duration,
    /// Each request, and each reply, is lost with this probability.
    loss: f64,
    /// Each message is delayed by a uniform draw from 0..=jitter on top.
    jitter: Duration,
    rng: Rng,
}

/// A small seeded generator (SplitMix64): enough for fault draws, and the
/// same sequence for the same seed on every platform. Public so that a
/// simulation can draw its fault schedule from the same kind of seed.
#[derive(Debug, Clone, Default)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        shoal_engine::cmd::rng::splitmix64(&mut self.0)
    }

    /// Uniform in [0, 1).
    pub fn fraction(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// In 0..n (n > 0); the slight modulo bias does not matter for faults.
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "an empty range");
        self.next_u64() % n
    }
}

/// The in-process network every node of a test shares.
#[derive(Clone, Default)]
pub struct MemoryNet {
    // A std Mutex: held only to read or change the fault set, never across
    // an await.
    state: Arc<Mutex<State>>,
}

impl MemoryNet {
    /// A network whose random faults (see `set_loss`, `set_jitter`) are
    /// drawn from `seed`.
    pub fn seeded(seed: u64) -> MemoryNet {
        let net = MemoryNet::default();
        net.state.lock().unwrap().rng = Rng(seed);
        net
    }

    /// Loses each request and each reply with probability `loss` (0..=1).
    pub fn set_loss(&self, loss: f64) {
        assert!((0.0..=1.0).contains(&loss), "a probability");
        self.state.lock().unwrap().loss = loss;
    }

    /// Delays each message by a random time up to `jitter`, on top of the
    /// fixed delay: messages overtake each other.
    pub fn set_jitter(&self, jitter: Duration) {
        self.state.lock().unwrap().jitter = jitter;
    }

    /// Restores every link and clears loss and jitter (nodes stay down or
    /// removed as they are).
    pub fn calm(&self) {
        let mut state = self.state.lock().unwrap();
        state.cut.clear();
        state.loss = 0.0;
        state.jitter = Duration::ZERO;
        state.delay = Duration::ZERO;
    }

    /// Makes `node`'s groups reachable (again, after a restart).
    pub fn register(&self, node: u64, groups: Groups) {
        self.state.lock().unwrap().nodes.insert(node, groups);
    }

    /// Registers one group's `Raft` as `node`'s only group (tests of a
    /// single group built by hand).
    pub fn add(&self, node: u64, group: GroupId, raft: ShoalRaft) {
        let groups = Groups::default();
        groups.insert(group, raft);
        self.register(node, groups);
    }

    /// Takes `node` off the network, as a crash does: it is unreachable
    /// until registered again.
    pub fn remove(&self, node: u64) {
        self.state.lock().unwrap().nodes.remove(&node);
    }

    /// The network factory for `node`'s `group`.
    pub fn factory(&self, node: u64, group: GroupId) -> NetworkFactory<MemoryTransport> {
        NetworkFactory { group, transport: self.transport(node), quarantine: Default::default() }
    }

    /// The transport `node` sends with.
    pub fn transport(&self, node: u64) -> MemoryTransport {
        MemoryTransport { net: self.clone(), from: node }
    }

    /// A down node neither sends nor receives.
    pub fn set_down(&self, node: u64, down: bool) {
        let mut state = self.state.lock().unwrap();
        if down {
            state.down.insert(node);
        } else {
            state.down.remove(&node);
        }
    }

    /// Cuts the link between `a` and `b`, both ways.
    pub fn cut(&self, a: u64, b: u64) {
        self.state.lock().unwrap().cut.insert((a.min(b), a.max(b)));
    }

    /// Restores every cut link.
    pub fn heal(&self) {
        self.state.lock().unwrap().cut.clear();
    }

    /// Delays every message by `delay`.
    pub fn set_delay(&self, delay: Duration) {
        self.state.lock().unwrap().delay = delay;
    }

    /// `to` is a Raft id: links and nodes are per node (`crate::node_of`).
    fn route(&self, from: u64, to: u64) -> Result<(Groups, Duration), String> {
        let to = crate::node_of(to);
        let mut state = self.state.lock().unwrap();
        if state.down.contains(&from) || state.down.contains(&to) {
            return Err(format!("node {} is down", if state.down.contains(&to) { to } else { from }));
        }
        if state.cut.contains(&(from.min(to), from.max(to))) {
            return Err(format!("link {from}-{to} is cut"));
        }
        let groups = state.nodes.get(&to).cloned().ok_or_else(|| format!("node {to} is not registered"))?;
        if state.loss > 0.0 && state.rng.fraction() < state.loss {
            return Err(format!("request {from}->{to} lost"));
        }
        let jitter = state.jitter.mul_f64(state.rng.fraction());
        Ok((groups, state.delay + jitter))
    }

    /// The clock of `node`'s registered groups, if it is registered.
    fn clock_of(&self, node: u64) -> Option<Arc<crate::Clock>> {
        self.state.lock().unwrap().nodes.get(&node).map(|g| Arc::clone(g.clock()))
    }

    /// Whether the reply on its way back is lost.
    fn reply_lost(&self) -> bool {
        let mut state = self.state.lock().unwrap();
        state.loss > 0.0 && state.rng.fraction() < state.loss
    }
}

/// One node's sending side of a [`MemoryNet`].
#[derive(Clone)]
pub struct MemoryTransport {
    net: MemoryNet,
    from: u64,
}

impl Transport for MemoryTransport {
    async fn call(
        &self,
        target: u64,
        group: GroupId,
        body: Request,
        ttl: Duration,
    ) -> Result<Response, RPCError<TypeConfig>> {
        let (groups, delay) = match self.net.route(self.from, target) {
            Ok(route) => route,
            Err(e) => return rpc_result(target, ttl, Some(Err(e))),
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        // Both ends' clocks move as over TCP (see `crate::clock`).
        let sender = self.net.clock_of(self.from);
        let sent_at = sender.as_ref().map_or(0, |c| c.now_ms());
        let answer = tokio::time::timeout(ttl, handle(&groups, target, group, sent_at, body)).await.ok().map(Ok);
        if let Some(sender) = &sender {
            sender.observe(groups.clock().now_ms());
        }
        if answer.is_some() && self.net.reply_lost() {
            return rpc_result(target, ttl, Some(Err(format!("reply {target}->{} lost", self.from))));
        }
        rpc_result(target, ttl, answer)
    }
}
