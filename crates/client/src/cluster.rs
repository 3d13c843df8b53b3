//! `ClusterClient`: routes each command to the node serving its slot and
//! retries what can safely be retried.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use shoal_engine::slot::{key_slot, Slot};
use shoal_proto::command::resolve;
use shoal_proto::Frame;

use crate::connection::{CallError, Connection};
use crate::retry::RetryPolicy;
use crate::slots::SlotMap;
use crate::ClientError;

pub struct ClusterClient {
    seeds: Vec<String>,
    policy: RetryPolicy,
    /// A std Mutex: held only to read or patch the map, never across I/O.
    slots: Mutex<SlotMap>,
    connections: tokio::sync::Mutex<HashMap<String, Arc<Connection>>>,
    /// This client's id for `CLIENT SHOAL-TAG`: random per client.
    client_id: u64,
    /// The next write's sequence number.
    next_seq: AtomicU64,
    /// Whether a node of this cluster accepted a tag: a shoal cluster, all
    /// of whose nodes deduplicate tagged writes, so a write whose reply was
    /// lost can be retried with the same tag and applies at most once.
    /// Cluster-wide rather than per node: after a failover the retry goes to
    /// a node this client may never have written to. Plain Redis refuses
    /// the tag, and such writes stay `Uncertain`.
    tags_accepted: AtomicBool,
    /// Nodes whose last answer was `-TRYAGAIN` or `-CLUSTERDOWN`: asked
    /// last for the slot map, since a node cut off from its shard's
    /// majority keeps describing the map as it last knew it.
    refused: Mutex<std::collections::HashSet<String>>,
}

/// What to do after one attempt.
enum Next {
    Done(Frame),
    /// Retry at once, at this address (a redirect), maybe after ASKING.
    Redirect {
        addr: String,
        asking: bool,
    },
    /// Retry after a backoff, with a refreshed slot map.
    Backoff(String),
    /// As `Backoff`, but the write may have been applied (sent, and no
    /// answer, or `-UNCERTAIN`): its retries say so (`RETRY` in the tag),
    /// so a group that forgot this client refuses them instead of applying
    /// the write a second time.
    Unknown(String),
}

impl ClusterClient {
    /// Connects to the first reachable seed and loads the slot map.
    pub async fn connect(seeds: &[String], policy: RetryPolicy) -> Result<ClusterClient, ClientError> {
        if seeds.is_empty() {
            return Err(ClientError::Usage("no seed address given".into()));
        }
        let client = ClusterClient {
            seeds: seeds.to_vec(),
            policy,
            slots: Mutex::new(SlotMap::default()),
            connections: tokio::sync::Mutex::new(HashMap::new()),
            client_id: std::collections::hash_map::RandomState::new().build_hasher().finish(),
            next_seq: AtomicU64::new(1),
            tags_accepted: AtomicBool::new(false),
            refused: Mutex::default(),
        };
        client.refresh_slots().await?;
        Ok(client)
    }

    /// Reloads the slot map from any node that answers.
    pub async fn refresh_slots(&self) -> Result<(), ClientError> {
        let mut candidates: Vec<String> = self.slots.lock().expect("slots lock").nodes().to_vec();
        candidates.extend(self.seeds.iter().cloned());
        // Nodes whose connection just failed (dead, or silent past the reply
        // timeout) are asked last, after those that just refused (TRYAGAIN):
        // the map is usually being refreshed because of one of them.
        let failed: std::collections::HashSet<String> = {
            let connections = self.connections.lock().await;
            connections.iter().filter(|(_, c)| c.is_dead()).map(|(a, _)| a.clone()).collect()
        };
        let refused = self.refused.lock().expect("refused lock").clone();
        let mut seen = std::collections::HashSet::new();
        candidates.retain(|addr| seen.insert(addr.clone()));
        candidates.sort_by_key(|addr| (failed.contains(addr), refused.contains(addr)));
        let mut last = String::new();
        for addr in candidates {
            let ask = [Bytes::from_static(b"CLUSTER"), Bytes::from_static(b"SLOTS")];
            let reply = match self.connection(&addr).await {
                Ok(c) => self.within_reply_timeout(&c, c.call(&ask)).await,
                Err(e) => Err(e),
            };
            match reply {
                // A standalone server (shoal or Redis) serves every slot.
                Ok(Frame::Error(e)) if e.windows(15).any(|w| w == b"cluster support") => {
                    *self.slots.lock().expect("slots lock") = SlotMap::single(addr);
                    return Ok(());
                }
                Ok(reply) => match SlotMap::from_cluster_slots(&reply) {
                    Ok(map) => {
                        *self.slots.lock().expect("slots lock") = map;
                        return Ok(());
                    }
                    Err(e) => last = e,
                },
                Err(e) => last = format!("{e:?}"),
            }
        }
        Err(ClientError::Unreachable(format!("{} ({last})", self.seeds.join(","))))
    }

    /// The slot map as last loaded.
    pub fn slot_map(&self) -> SlotMap {
        self.slots.lock().expect("slots lock").clone()
    }

    async fn connection(&self, addr: &str) -> Result<Arc<Connection>, CallError> {
        if let Some(c) = self.connections.lock().await.get(addr).filter(|c| !c.is_dead()) {
            return Ok(Arc::clone(c));
        }
        // Dialled without the lock: a slow connect to one node (cut off,
        // up to `connect_timeout`) must not hold up calls to the others.
        let fresh = Arc::new(Connection::connect(addr, self.policy.connect_timeout).await?);
        let mut connections = self.connections.lock().await;
        // Another caller may have connected meanwhile: one connection per node.
        let c = match connections.get(addr).filter(|c| !c.is_dead()) {
            Some(c) => Arc::clone(c),
            None => {
                connections.insert(addr.to_string(), Arc::clone(&fresh));
                fresh
            }
        };
        Ok(c)
    }

    /// Many commands to one address, pipelined; replies in order.
    pub async fn call_many_at(&self, addr: &str, commands: &[Vec<Bytes>]) -> Result<Vec<Frame>, CallError> {
        self.connection(addr).await?.call_many(commands).await
    }

    /// One command to one address, no routing, no retries.
    pub async fn call_at(&self, addr: &str, args: &[Bytes]) -> Result<Frame, CallError> {
        self.connection(addr).await?.call(args).await
    }

    /// Runs a command on the node that owns its key (any node for keyless
    /// commands), following redirects and retrying within the deadline.
    pub async fn call(&self, args: Vec<Bytes>) -> Result<Frame, ClientError> {
        let spec = resolve(&args).map_err(|e| ClientError::Usage(e.0))?;
        let slot = command_slot(spec, &args)?;
        let read_only = spec.flags.contains(&"readonly");
        // One tag for every attempt of this write: a retry is the same write.
        // Keyed writes only: a keyless one (FLUSHALL) spans groups, and the
        // server does not deduplicate it.
        let mut tag = (spec.flags.contains(&"write") && slot.is_some()).then(|| {
            let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
            vec![
                Bytes::from_static(b"CLIENT"),
                Bytes::from_static(b"SHOAL-TAG"),
                self.client_id.to_string().into(),
                seq.to_string().into(),
            ]
        });
        let started = Instant::now();
        let mut target: Option<(String, bool)> = None;
        let mut last = String::from("no attempt made");
        // Every wait below is cut at the deadline, so a call never runs
        // more than `deadline` (plus a scheduling tick).
        let remaining = || self.policy.deadline.checked_sub(started.elapsed()).filter(|d| !d.is_zero());
        for attempt in 1..=self.policy.max_attempts {
            let Some(left) = remaining() else {
                return Err(ClientError::DeadlineExceeded { attempts: attempt - 1, last });
            };
            let (addr, asking) = match target.take() {
                Some(t) => t,
                None => (self.route(slot)?, false),
            };
            let outcome = tokio::time::timeout(left, self.attempt(&addr, asking, &args, read_only, tag.as_deref()));
            let Ok(outcome) = outcome.await else {
                last = format!("no answer from {addr} by the deadline (a write may have been applied)");
                return Err(ClientError::DeadlineExceeded { attempts: attempt, last });
            };
            let next = outcome?;
            if let (Next::Unknown(_), Some(tag)) = (&next, tag.as_mut()) {
                if tag.len() == 4 {
                    tag.push(Bytes::from_static(b"RETRY"));
                }
            }
            match next {
                Next::Done(frame) => return Ok(frame),
                Next::Redirect { addr, asking } => {
                    last = format!("redirected to {addr}");
                    target = Some((addr, asking));
                }
                Next::Backoff(reason) | Next::Unknown(reason) => {
                    last = reason;
                    let pause = self.policy.backoff(attempt).min(remaining().unwrap_or_default());
                    tokio::time::sleep(pause).await;
                    if let Some(left) = remaining() {
                        let _ = tokio::time::timeout(left, self.refresh_slots()).await;
                    }
                }
            }
        }
        Err(ClientError::DeadlineExceeded { attempts: self.policy.max_attempts, last })
    }

    fn route(&self, slot: Option<Slot>) -> Result<String, ClientError> {
        let slots = self.slots.lock().expect("slots lock");
        let addr = match slot {
            Some(slot) => slots.owner(slot),
            None => slots.nodes().first().map(String::as_str),
        };
        addr.or(self.seeds.first().map(String::as_str))
            .map(str::to_string)
            .ok_or_else(|| ClientError::Unreachable("no node known".into()))
    }

    async fn attempt(
        &self,
        addr: &str,
        asking: bool,
        args: &[Bytes],
        read_only: bool,
        tag: Option<&[Bytes]>,
    ) -> Result<Next, ClientError> {
        let connection = match self.connection(addr).await {
            Ok(c) => c,
            Err(e) => return Ok(Next::Backoff(format!("{e:?}"))),
        };
        // Pipelined, in this order: ASKING, the write's tag, the command.
        let mut commands = Vec::with_capacity(3);
        if asking {
            commands.push(vec![Bytes::from_static(b"ASKING")]);
        }
        if let Some(tag) = tag {
            commands.push(tag.to_vec());
        }
        commands.push(args.to_vec());
        let replies = self.within_reply_timeout(&connection, connection.call_many(&commands)).await;
        // A lost reply may be retried once the cluster has accepted a tag;
        // an UNCERTAIN one only if this very attempt's tag was accepted
        // (otherwise the write ran untagged and a retry could apply twice).
        let retry_safe = read_only || (tag.is_some() && self.tags_accepted.load(Ordering::Acquire));
        let mut tagged_here = false;
        let reply = match replies {
            Ok(mut replies) => {
                if tag.is_some() && replies.get(replies.len().wrapping_sub(2)) == Some(&Frame::OK) {
                    self.tags_accepted.store(true, Ordering::Release);
                    tagged_here = true;
                }
                Ok(replies.pop().expect("one reply per command"))
            }
            Err(e) => Err(e),
        };
        match reply {
            // The outcome is unknown; with a tag, retrying is how to learn it.
            Ok(Frame::Error(e)) if e.starts_with(b"UNCERTAIN") && (read_only || tagged_here) => {
                Ok(Next::Unknown(String::from_utf8_lossy(&e).into_owned()))
            }
            Ok(Frame::Error(e)) => Ok(self.on_error(addr, &e)),
            Ok(frame) => {
                self.refused.lock().expect("refused lock").remove(addr);
                Ok(Next::Done(frame))
            }
            Err(CallError::NotSent(e)) => Ok(Next::Backoff(e)),
            Err(CallError::Lost(e)) if retry_safe => Ok(Next::Unknown(e)),
            Err(CallError::Lost(_)) => Err(ClientError::Uncertain { addr: addr.to_string() }),
        }
    }

    /// Waits for `reply` at most `reply_timeout`; past it the connection is
    /// abandoned and the request counts as lost.
    async fn within_reply_timeout<T>(
        &self,
        connection: &Connection,
        reply: impl std::future::Future<Output = Result<T, CallError>>,
    ) -> Result<T, CallError> {
        match tokio::time::timeout(self.policy.reply_timeout, reply).await {
            Ok(result) => result,
            Err(_) => {
                connection.abandon();
                Err(CallError::Lost(format!("no reply within {} ms", self.policy.reply_timeout.as_millis())))
            }
        }
    }

    /// Redirects and transient cluster errors are retried; any other error
    /// is the command's answer.
    fn on_error(&self, addr: &str, e: &[u8]) -> Next {
        let text = String::from_utf8_lossy(e);
        let mut words = text.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some("MOVED"), Some(slot), Some(addr)) => {
                if let Ok(slot) = slot.parse::<Slot>() {
                    self.slots.lock().expect("slots lock").moved(slot, addr.to_string());
                }
                Next::Redirect { addr: addr.to_string(), asking: false }
            }
            (Some("ASK"), Some(_), Some(addr)) => Next::Redirect { addr: addr.to_string(), asking: true },
            (Some("TRYAGAIN" | "CLUSTERDOWN"), _, _) => {
                self.refused.lock().expect("refused lock").insert(addr.to_string());
                Next::Backoff(text.into_owned())
            }
            _ => Next::Done(Frame::Error(Bytes::copy_from_slice(e))),
        }
    }
}

/// The slot all of a command's keys share; an error if they differ.
fn command_slot(spec: &shoal_proto::CommandSpec, args: &[Bytes]) -> Result<Option<Slot>, ClientError> {
    let mut slot = None;
    for position in spec.keys_in(args) {
        let s = key_slot(&args[position]);
        if slot.is_some_and(|prev| prev != s) {
            return Err(ClientError::Usage("keys in request don't hash to the same slot".into()));
        }
        slot = Some(s);
    }
    Ok(slot)
}
