//! The data-loss guard: a node whose data directory was wiped must not come
//! back as the voter it was. It has forgotten its votes and the log entries
//! it acknowledged, so its vote could help elect a leader that is missing
//! acknowledged writes (Raft's safety argument assumes voters keep their
//! disks).
//!
//! A node's data has an incarnation: a random number drawn whenever the
//! node starts with an empty WAL, kept in `incarnation` in its data
//! directory. Every node remembers, on disk (`peers-with-data`), the
//! incarnation in which it first saw each peer holding data (a later one
//! never replaces it: a node that comes back with new data right after a
//! wipe must still be recognised): a peer check
//! (our own dial) whose answer says the peer holds data records it. A node
//! that starts with an empty WAL is in quarantine (it takes no part in
//! elections, see `shoal_raft::transport::Quarantine`) until enough peers
//! *that hold data themselves* that, with itself, they form a majority of
//! the cluster have answered that they never saw this one holding data in
//! another incarnation (a node added late), or until every other node has
//! answered and none holds data (a cluster's first start: it needs every
//! node up). A fresh peer's word alone counts for nothing: two nodes wiped
//! at once would otherwise clear each other and, a majority with empty
//! logs, outvote the survivor that holds the data. If any peer saw it holding data in an
//! earlier incarnation, the node lost its data: it comes back as a new
//! replica under a new Raft identity (`rejoin`), never as the voter it was.
//! (`--unsafe-rejoin-after-data-loss` skips the quarantine and votes as
//! before at once, and says what that risks.) A node that cannot reach
//! enough peers waits in quarantine, taking no Raft traffic.
//!
//! What this misses: a node wiped less than one peer check interval after
//! it first held data, before any peer recorded it.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use shoal_cluster::NodeNumber;

const FILE: &str = "peers-with-data";
const INCARNATION: &str = "incarnation";

pub struct Witness {
    path: PathBuf,
    /// This node's data's incarnation.
    incarnation: u64,
    /// A std Mutex: held to read or extend the maps, never across an await.
    /// Per peer, the incarnation in which it was first seen holding data.
    seen: Mutex<BTreeMap<NodeNumber, u64>>,
    /// While in quarantine: the peers that said they never saw this node
    /// holding data, split by whether they hold data themselves.
    cleared_by: Mutex<Clearance>,
}

/// Who has cleared a quarantined node. A peer that holds data vouches for
/// what it saw; a fresh peer (empty WAL, so its `peers-with-data` may be
/// gone too) proves nothing, since two nodes wiped at once would clear each
/// other. Fresh peers count only when every node answered and none saw
/// this node holding data: a cluster's first start (where the first nodes
/// to leave quarantine already hold data when the last ones ask).
#[derive(Debug, Default)]
struct Clearance {
    holders: BTreeSet<NodeNumber>,
    fresh: BTreeSet<NodeNumber>,
}

/// What a peer said about itself and about us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    pub holds_data: bool,
    /// The peer's own incarnation.
    pub incarnation: u64,
    /// The incarnation in which the peer first saw us holding data (0: never).
    pub saw_us_in: u64,
}

/// A random non-zero number, from the standard library's per-process
/// random hash keys and the clock (no dependency for one draw).
pub(crate) fn random_nonzero() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    h.finish().max(1)
}

/// What to do after a peer's answer.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing changes.
    Carry,
    /// Every peer cleared this node: it may vote.
    EndQuarantine,
    /// A peer saw this node holding data, which it no longer has.
    DataLost(NodeNumber),
}

impl Witness {
    /// Loads what this node saw from the data directory (an unreadable file
    /// is an error: forgetting it would disarm the guard), and its
    /// incarnation, a new one if the WAL was empty (`fresh`).
    pub fn open(dir: &std::path::Path, fresh: bool) -> Result<Witness, String> {
        let path = dir.join(FILE);
        let bad = |l: &str| format!("{}: bad line {l:?}", path.display());
        let seen = match std::fs::read_to_string(&path) {
            Ok(text) => text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| {
                    let (node, incarnation) = l.trim().split_once(' ').ok_or_else(|| bad(l))?;
                    Ok((node.parse().map_err(|_| bad(l))?, u64::from_str_radix(incarnation, 16).map_err(|_| bad(l))?))
                })
                .collect::<Result<_, String>>()?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let incarnation_path = dir.join(INCARNATION);
        let kept = std::fs::read_to_string(&incarnation_path).ok().and_then(|t| u64::from_str_radix(t.trim(), 16).ok());
        let incarnation = match kept.filter(|_| !fresh) {
            Some(incarnation) => incarnation,
            None => {
                let incarnation = random_nonzero();
                write_durably(&incarnation_path, format!("{incarnation:016x}\n").as_bytes())
                    .map_err(|e| format!("{}: {e}", incarnation_path.display()))?;
                incarnation
            }
        };
        Ok(Witness { path, incarnation, seen: Mutex::new(seen), cleared_by: Mutex::default() })
    }

    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    /// The incarnation in which this node first saw `node` holding data
    /// (0: never).
    pub fn saw(&self, node: NodeNumber) -> u64 {
        self.seen.lock().expect("witness lock").get(&node).copied().unwrap_or(0)
    }

    /// Takes a peer's answer to our own peer check into account.
    /// `quarantined` says whether this node is in quarantine, `others` how
    /// many other nodes the layout has: the quarantine ends once this node
    /// and the peers that cleared it are a majority of all nodes.
    pub fn on_answer(&self, peer: NodeNumber, answer: Answer, quarantined: bool, others: usize) -> Verdict {
        if answer.holds_data {
            self.record(peer, answer.incarnation);
        }
        if !quarantined {
            return Verdict::Carry;
        }
        if answer.saw_us_in != 0 && answer.saw_us_in != self.incarnation {
            return Verdict::DataLost(peer);
        }
        let mut cleared = self.cleared_by.lock().expect("witness lock");
        if answer.holds_data {
            cleared.fresh.remove(&peer);
            cleared.holders.insert(peer);
        } else {
            cleared.fresh.insert(peer);
        }
        let majority_of_holders = 2 * (cleared.holders.len() + 1) > others + 1;
        // Every other node answered and none saw this node holding data (a
        // first start: some may already have left quarantine and written,
        // which with four nodes or more would otherwise leave the rest
        // waiting for a majority of holders that never comes).
        let all_answered = cleared.holders.len() + cleared.fresh.len() == others;
        if majority_of_holders || all_answered {
            Verdict::EndQuarantine
        } else {
            Verdict::Carry
        }
    }

    /// Records `node` holding data in `incarnation`, durably, unless it
    /// was already seen holding data (in this or an earlier incarnation).
    fn record(&self, node: NodeNumber, incarnation: u64) {
        let mut seen = self.seen.lock().expect("witness lock");
        if seen.contains_key(&node) {
            return;
        }
        seen.insert(node, incarnation);
        let text: String = seen.iter().map(|(n, i)| format!("{n} {i:016x}\n")).collect();
        if let Err(e) = write_durably(&self.path, text.as_bytes()) {
            tracing::warn!(error = %e, path = %self.path.display(), "cannot record a peer holding data");
        }
    }
}

/// Writes a temporary file, fsyncs it, renames it over `path`, fsyncs the
/// directory.
pub(crate) fn write_durably(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// What a node that lost its data logs before it rejoins as a new replica.
pub fn data_lost_message(dir: &std::path::Path, me: NodeNumber, peer: NodeNumber) -> String {
    format!(
        "node {me}'s data directory {} was empty at start, but node {peer} has seen this node holding data: \
         its data was lost. It must not rejoin as the replica it was (it forgot its votes and the writes it \
         acknowledged, and could help elect a leader missing them): restarting as a new replica, which each \
         group's leader swaps in for the old one once it has caught up",
        dir.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_node_is_cleared_by_a_majority_or_stopped_by_one_witness() {
        let dir = std::env::temp_dir().join(format!("shoal-witness-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let w = Witness::open(&dir, true).unwrap();
        let me = w.incarnation();
        let peer = |holds_data, saw_us_in| Answer { holds_data, incarnation: 77, saw_us_in };
        // Five nodes: two peers that hold data and this one are a majority;
        // fresh peers prove nothing until all four answered.
        assert_eq!(w.on_answer(5, peer(false, 0), true, 4), Verdict::Carry);
        assert_eq!(w.on_answer(4, peer(false, 0), true, 4), Verdict::Carry, "two fresh peers are not enough");
        assert_eq!(w.on_answer(2, peer(true, 0), true, 4), Verdict::Carry);
        assert_eq!(w.on_answer(2, peer(true, 0), true, 4), Verdict::Carry, "one peer twice is still one");
        // A peer that saw this very incarnation holding data clears it too.
        assert_eq!(w.on_answer(3, peer(true, me), true, 4), Verdict::EndQuarantine);
        assert_eq!(w.on_answer(3, peer(true, me ^ 1), true, 4), Verdict::DataLost(3));
        assert_eq!(w.on_answer(3, peer(true, me ^ 1), false, 4), Verdict::Carry, "only a quarantined node stops");
        // A peer back with new data after a wipe does not replace the record.
        let reborn = Answer { holds_data: true, incarnation: 78, saw_us_in: 0 };
        assert_eq!(w.on_answer(2, reborn, false, 4), Verdict::Carry);
        assert_eq!(w.saw(2), 77);
        // What it saw, and its incarnation, survive a restart with data...
        let again = Witness::open(&dir, false).unwrap();
        assert_eq!((again.saw(2), again.saw(3), again.saw(4), again.incarnation()), (77, 77, 0, me));
        // ...and an empty WAL means a new incarnation.
        let fresh = Witness::open(&dir, true).unwrap();
        assert_ne!(fresh.incarnation(), me);
        // A first start: every other node answered, none holds data.
        for node in 2..=4 {
            assert_eq!(fresh.on_answer(node, peer(false, 0), true, 4), Verdict::Carry);
        }
        assert_eq!(fresh.on_answer(5, peer(false, 0), true, 4), Verdict::EndQuarantine);
        // A first start of four where one node already left quarantine and
        // holds data: once all answered, none having seen this node hold
        // any, it is cleared (one holder alone is no majority of four).
        let late = Witness::open(&dir, true).unwrap();
        assert_eq!(late.on_answer(2, peer(false, 0), true, 3), Verdict::Carry);
        assert_eq!(late.on_answer(3, peer(true, 0), true, 3), Verdict::Carry);
        assert_eq!(late.on_answer(4, peer(false, 0), true, 3), Verdict::EndQuarantine);
        std::fs::write(dir.join(FILE), "2 4d\nx\n").unwrap();
        assert!(Witness::open(&dir, false).is_err(), "a damaged record is an error, not an empty set");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
