//! An in-memory "network": RPCs are direct calls on the target's `Raft`.
//!
//! For tests of the storage and state machine glue without sockets. Messages
//! are passed by value, so nothing is serialised. A node missing from the
//! router (never added, or removed to simulate a crash) is `Unreachable`,
//! which makes openraft back off rather than retry hot.

use std::collections::HashMap;
use std::future::Future;
use std::io::Cursor;
use std::sync::{Arc, Mutex};

use openraft::error::{RPCError, RaftError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::RPCOption;
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse};
use openraft::type_config::alias::{SnapshotOf, VoteOf};
use openraft::{OptionalSend, RaftNetworkFactory, RaftNetworkV2};

use crate::{ShoalNode, ShoalRaft, TypeConfig};

/// Every node's `Raft` handle by id; cloned into each node's network factory.
#[derive(Clone, Default)]
pub struct Router {
    // A std Mutex: held only to clone a handle, never across an await.
    nodes: Arc<Mutex<HashMap<u64, ShoalRaft>>>,
}

impl Router {
    pub fn add(&self, id: u64, raft: ShoalRaft) {
        self.nodes.lock().unwrap().insert(id, raft);
    }

    pub fn remove(&self, id: u64) -> Option<ShoalRaft> {
        self.nodes.lock().unwrap().remove(&id)
    }

    fn get(&self, id: u64) -> Result<ShoalRaft, Unreachable<TypeConfig>> {
        let nodes = self.nodes.lock().unwrap();
        nodes.get(&id).cloned().ok_or_else(|| Unreachable::from_string(format!("node {id} is not in the router")))
    }
}

/// One node's connection to `target`. Looks the target up on every call,
/// so a node that is removed and re-added is reached again.
pub struct Connection {
    router: Router,
    target: u64,
}

impl RaftNetworkFactory<TypeConfig> for Router {
    type Network = Connection;

    async fn new_client(&mut self, target: u64, _node: &ShoalNode) -> Connection {
        Connection { router: self.clone(), target }
    }
}

/// The target's `RaftError` (it is shutting down, say) travels as
/// `Unreachable`: with the default error parameter a remote fatal error has
/// no other slot, and backing off is the right reaction anyway.
fn unreachable(e: RaftError<TypeConfig>) -> RPCError<TypeConfig> {
    RPCError::Unreachable(Unreachable::new(&e))
}

impl RaftNetworkV2<TypeConfig> for Connection {
    type SnapshotData = Cursor<Vec<u8>>;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        let raft = self.router.get(self.target)?;
        raft.append_entries(rpc).await.map_err(unreachable)
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        let raft = self.router.get(self.target)?;
        raft.vote(rpc).await.map_err(unreachable)
    }

    // Implemented (not left to the default grant) so enabling Pre-Vote in
    // the config actually exercises it.
    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        let raft = self.router.get(self.target)?;
        raft.pre_vote(rpc).await.map_err(unreachable)
    }

    async fn full_snapshot(
        &mut self,
        vote: VoteOf<TypeConfig>,
        snapshot: SnapshotOf<TypeConfig, Cursor<Vec<u8>>>,
        _cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        // The whole snapshot is one value here, so there is nothing to cancel
        // part-way; a real transport must watch `cancel` between chunks.
        let raft = self.router.get(self.target)?;
        raft.install_full_snapshot(vote, snapshot).await.map_err(|e| StreamingError::Unreachable(Unreachable::new(&e)))
    }
}
