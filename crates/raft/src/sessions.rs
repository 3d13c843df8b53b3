//! Exactly-once writes for tagged clients: the replies of each client's
//! recent writes by sequence number, kept in the state machine so that a
//! retry of a write that was applied (its reply lost with a connection, or
//! `-UNCERTAIN`) is answered from here instead of being applied again.
//!
//! Part of the replicated state: updated only by applying entries, carried
//! in snapshots, and bounded (in clients and in bytes) by evicting the
//! client whose last write is oldest in the log, which every replica does
//! alike. A forgotten client's retry is refused, never applied again: a
//! write's tag says whether an earlier attempt may have been applied
//! (`WriteTag::retry`), and a group that does not know the client refuses
//! such a write; a first attempt from an unknown client starts a session.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::{Reply, WriteTag};

/// Clients remembered per group; the one idle longest is forgotten first.
pub const MAX_SESSIONS: usize = 10_000;
/// Bytes of kept replies per group (approximate: payload plus a fixed
/// overhead per reply); past it the client idle longest is forgotten.
pub const MAX_SESSION_BYTES: usize = 32 << 20;
/// Bytes a kept reply counts for besides its payload.
const REPLY_OVERHEAD_BYTES: usize = 48;
/// Writes remembered per client and group: a retry is recognised while its
/// write is among the client's last `WINDOW` tagged writes to the group.
/// (A window, not only the last write, because a client used from many
/// tasks has several writes in flight, and they may apply out of order.)
pub const WINDOW: usize = 256;
/// Largest reply payload kept for a retry; a bigger one (SET … GET of a big
/// value) is kept as a note that the write was applied.
pub const MAX_KEPT_REPLY_BYTES: usize = 256;

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
struct Client {
    /// seq → reply of the client's most recent writes.
    replies: BTreeMap<u64, Reply>,
    /// The highest sequence number that left the window: a tag at or below
    /// it that is not in `replies` may have been applied, and is refused
    /// rather than applied again.
    floor: u64,
    /// Log index of the client's last write here, for eviction.
    index: u64,
    /// The sequence number that started this session. A retry below it may
    /// belong to an earlier session of the same client, since forgotten:
    /// refused unless its reply is kept.
    first: u64,
}

impl Client {
    fn bytes(&self) -> usize {
        self.replies.values().map(reply_bytes).sum()
    }
}

fn reply_bytes(reply: &Reply) -> usize {
    REPLY_OVERHEAD_BYTES
        + match reply {
            Reply::Set { old: Some(v), .. } | Reply::Value(Some(v)) => v.len(),
            Reply::Error(e) => e.len(),
            Reply::Out(out) => out.bytes(),
            Reply::Multi(Some(replies)) => replies.iter().map(reply_bytes).sum(),
            _ => 0,
        }
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Sessions {
    clients: HashMap<u64, Client>,
    /// `(log index of the client's last write, client)`, for eviction.
    by_age: BTreeSet<(u64, u64)>,
    /// `reply_bytes` of every kept reply.
    bytes: usize,
}

/// A retry (`WriteTag::retry`) from a client this group does not know.
const FORGOTTEN: &str = "this write's client session is not known here (forgotten, or the earlier attempt never \
                         arrived): it may or may not have been applied; read before retrying";

impl Sessions {
    /// The reply of a write already applied, or `None` to apply it.
    pub fn replay(&self, tag: WriteTag) -> Option<Reply> {
        let Some(client) = self.clients.get(&tag.client) else {
            return tag.retry.then(|| Reply::Error(FORGOTTEN.into()));
        };
        if let Some(reply) = client.replies.get(&tag.seq) {
            return Some(reply.clone());
        }
        if tag.retry && tag.seq < client.first {
            return Some(Reply::Error(FORGOTTEN.into()));
        }
        (tag.seq <= client.floor)
            .then(|| Reply::Error("this write is too old to tell whether it was applied; read before retrying".into()))
    }

    /// Records the reply of a tagged write applied at `index`.
    pub fn record(&mut self, tag: WriteTag, index: u64, reply: &Reply) {
        let client = self.clients.entry(tag.client).or_insert_with(|| Client { first: tag.seq, ..Client::default() });
        self.by_age.remove(&(client.index, tag.client));
        client.index = index;
        let kept = kept(reply);
        self.bytes += reply_bytes(&kept);
        if let Some(replaced) = client.replies.insert(tag.seq, kept) {
            self.bytes -= reply_bytes(&replaced);
        }
        while client.replies.len() > WINDOW {
            let (seq, dropped) = client.replies.pop_first().expect("over the window, so not empty");
            client.floor = client.floor.max(seq);
            self.bytes -= reply_bytes(&dropped);
        }
        self.by_age.insert((index, tag.client));
        // The client just written is the newest: never the one evicted
        // while another remains.
        while self.clients.len() > MAX_SESSIONS || (self.bytes > MAX_SESSION_BYTES && self.clients.len() > 1) {
            let (_, oldest) = self.by_age.pop_first().expect("by_age indexes every client");
            let forgotten = self.clients.remove(&oldest).expect("by_age names known clients");
            self.bytes -= forgotten.bytes();
        }
        debug_assert_eq!(self.clients.len(), self.by_age.len());
    }

    /// Takes in the sessions of a shard merged into this one. A client
    /// known to both keeps every reply either kept (its writes went to one
    /// group or the other, never both), the higher floor and the later
    /// start: a retry either group would have refused is still refused.
    pub fn absorb(&mut self, other: Sessions) {
        for (id, theirs) in other.clients {
            match self.clients.entry(id) {
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(theirs);
                }
                std::collections::hash_map::Entry::Occupied(mut o) => {
                    let mine = o.get_mut();
                    mine.replies.extend(theirs.replies);
                    mine.floor = mine.floor.max(theirs.floor);
                    mine.first = mine.first.max(theirs.first);
                    mine.index = mine.index.max(theirs.index);
                    while mine.replies.len() > WINDOW {
                        let (seq, _) = mine.replies.pop_first().expect("over the window, so not empty");
                        mine.floor = mine.floor.max(seq);
                    }
                }
            }
        }
        self.by_age = self.clients.iter().map(|(&id, c)| (c.index, id)).collect();
        self.bytes = self.clients.values().map(Client::bytes).sum();
        while self.clients.len() > MAX_SESSIONS || (self.bytes > MAX_SESSION_BYTES && self.clients.len() > 1) {
            let (_, oldest) = self.by_age.pop_first().expect("by_age indexes every client");
            let forgotten = self.clients.remove(&oldest).expect("by_age names known clients");
            self.bytes -= forgotten.bytes();
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut clients: Vec<(&u64, &Client)> = self.clients.iter().collect();
        clients.sort_by_key(|(id, _)| **id);
        postcard::to_allocvec(&clients).expect("sessions serialise")
    }

    pub fn decode(bytes: &[u8]) -> Result<Sessions, postcard::Error> {
        let clients: Vec<(u64, Client)> = postcard::from_bytes(bytes)?;
        let mut sessions = Sessions::default();
        for (id, client) in clients {
            sessions.by_age.insert((client.index, id));
            sessions.bytes += client.bytes();
            sessions.clients.insert(id, client);
        }
        Ok(sessions)
    }
}

/// The reply as kept for retries: large payloads are not kept.
fn kept(reply: &Reply) -> Reply {
    let large = |v: &Option<Vec<u8>>| v.as_ref().is_some_and(|v| v.len() > MAX_KEPT_REPLY_BYTES);
    match reply {
        Reply::Set { old, .. } | Reply::Value(old) if large(old) => {
            Reply::Error("the write was applied; its reply was too large to keep for a retry".into())
        }
        Reply::Out(_) | Reply::Multi(_) if reply_bytes(reply) > MAX_KEPT_REPLY_BYTES + REPLY_OVERHEAD_BYTES => {
            Reply::Error("the write was applied; its reply was too large to keep for a retry".into())
        }
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retry_gets_the_first_reply_and_later_writes_apply() {
        let mut s = Sessions::default();
        let tag = |seq| WriteTag { client: 7, seq, retry: false };
        assert_eq!(s.replay(tag(1)), None);
        s.record(tag(1), 10, &Reply::Int(1));
        assert_eq!(s.replay(tag(1)), Some(Reply::Int(1)));
        assert_eq!(s.replay(tag(3)), None);
        s.record(tag(3), 11, &Reply::Int(3));
        // Writes in flight together may apply out of order: 2 after 3.
        assert_eq!(s.replay(tag(2)), None);
        s.record(tag(2), 12, &Reply::Int(2));
        assert_eq!(s.replay(tag(1)), Some(Reply::Int(1)), "an earlier write is still recognised");
        let copy = Sessions::decode(&s.encode()).unwrap();
        assert_eq!(copy, s);
        for seq in 4..4 + WINDOW as u64 {
            s.record(tag(seq), 12 + seq, &Reply::Done);
        }
        assert!(matches!(s.replay(tag(1)), Some(Reply::Error(_))), "beyond the window: refused, not applied");
        assert_eq!(s.replay(tag(10_000)), None, "a new sequence number applies");
        s.record(tag(10_000), 10_000, &Reply::Value(Some(vec![b'x'; MAX_KEPT_REPLY_BYTES + 1])));
        assert!(matches!(s.replay(tag(10_000)), Some(Reply::Error(_))), "a large reply is not kept");
    }

    /// A merge keeps every reply either shard kept, so a write applied in
    /// the merged-away shard is answered, not applied again, when retried.
    #[test]
    fn absorbed_sessions_answer_retries_of_both_shards() {
        let tag = |client, seq| WriteTag { client, seq, retry: true };
        let (mut left, mut right) = (Sessions::default(), Sessions::default());
        left.record(tag(1, 5), 10, &Reply::Int(5));
        right.record(tag(1, 7), 3, &Reply::Int(7));
        right.record(tag(2, 3), 4, &Reply::Done);
        left.absorb(right);
        assert_eq!(left.replay(tag(1, 5)), Some(Reply::Int(5)));
        assert_eq!(left.replay(tag(1, 7)), Some(Reply::Int(7)), "applied in the other shard");
        assert_eq!(left.replay(tag(2, 3)), Some(Reply::Done));
        assert_eq!(left.replay(tag(1, 6)), Some(Reply::Error(FORGOTTEN.into())), "below the later start: refused");
        assert_eq!(Sessions::decode(&left.encode()).unwrap(), left);
        assert_eq!(left.bytes, left.clients.values().map(Client::bytes).sum::<usize>());
    }

    #[test]
    fn the_oldest_client_is_forgotten_first() {
        let mut s = Sessions::default();
        for client in 0..=MAX_SESSIONS as u64 {
            s.record(WriteTag { client, seq: 1, retry: false }, client + 1, &Reply::Done);
        }
        assert_eq!(s.clients.len(), MAX_SESSIONS);
        assert_eq!(s.replay(WriteTag { client: 1, seq: 1, retry: true }), Some(Reply::Done));
        // Client 0 was forgotten: a first attempt of a new write starts a
        // session again, but a retry cannot be told from a new write and is
        // refused, never applied twice.
        assert_eq!(s.replay(WriteTag { client: 0, seq: 2, retry: false }), None);
        assert!(matches!(s.replay(WriteTag { client: 0, seq: 1, retry: true }), Some(Reply::Error(_))));
        // A new session (started by seq 2) cannot tell whether a retry of a
        // write from before it was applied in the forgotten one: refused.
        s.record(WriteTag { client: 0, seq: 2, retry: false }, 20_000, &Reply::Done);
        assert!(matches!(s.replay(WriteTag { client: 0, seq: 1, retry: true }), Some(Reply::Error(_))));
        assert_eq!(s.replay(WriteTag { client: 0, seq: 2, retry: true }), Some(Reply::Done));
        assert_eq!(s.replay(WriteTag { client: 0, seq: 1, retry: false }), None, "a first attempt applies");
    }

    #[test]
    fn kept_replies_are_bounded_in_bytes() {
        let mut s = Sessions::default();
        let big = Reply::Value(Some(vec![b'x'; MAX_KEPT_REPLY_BYTES]));
        let per_client = WINDOW * reply_bytes(&big);
        let clients = MAX_SESSION_BYTES / per_client + 2;
        for client in 0..clients as u64 {
            for seq in 0..WINDOW as u64 {
                s.record(WriteTag { client, seq, retry: false }, client * 1000 + seq, &big);
            }
        }
        assert!(s.bytes <= MAX_SESSION_BYTES, "{} bytes kept", s.bytes);
        assert_eq!(s.bytes, s.clients.values().map(Client::bytes).sum::<usize>(), "the running count is exact");
        assert!(s.clients.len() < clients, "the oldest clients were forgotten");
        assert!(s.clients.contains_key(&(clients as u64 - 1)), "the newest client is kept");
        assert_eq!(Sessions::decode(&s.encode()).unwrap(), s, "the byte count survives a snapshot");
    }
}
