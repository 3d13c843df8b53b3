//! An in-process [`Transport`]: an RPC goes straight to the target node's
//! groups through the same `transport::handle` the TCP server uses, so a
//! test can run several nodes' `Replicas` in one process and choose the
//! faults: a node down, a link cut, a delay on every message.

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
}

/// The in-process network every node of a test shares.
#[derive(Clone, Default)]
pub struct MemoryNet {
    // A std Mutex: held only to read or change the fault set, never across
    // an await.
    state: Arc<Mutex<State>>,
}

impl MemoryNet {
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
        NetworkFactory { group, transport: self.transport(node) }
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

    fn route(&self, from: u64, to: u64) -> Result<(Groups, Duration), String> {
        let state = self.state.lock().unwrap();
        if state.down.contains(&from) || state.down.contains(&to) {
            return Err(format!("node {} is down", if state.down.contains(&to) { to } else { from }));
        }
        if state.cut.contains(&(from.min(to), from.max(to))) {
            return Err(format!("link {from}-{to} is cut"));
        }
        let groups = state.nodes.get(&to).cloned().ok_or_else(|| format!("node {to} is not registered"))?;
        Ok((groups, state.delay))
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
        let answer = tokio::time::timeout(ttl, handle(&groups, group, body)).await.ok().map(Ok);
        rpc_result(target, ttl, answer)
    }
}
