//! Replaying records into per-group state, the same way on open as the
//! writer's bookkeeping does while running.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;

use crate::record::{GroupId, Record};

/// What survives of one group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupState {
    /// Entries by index: `(term, payload)`. No holes above `purged`.
    pub entries: BTreeMap<u64, (u64, Bytes)>,
    /// The last vote saved.
    pub vote: Option<Bytes>,
    /// Entries up to and including this index were purged (0: none).
    pub purged: u64,
}

impl GroupState {
    pub fn apply(&mut self, record: &Record) {
        match record {
            Record::Entry { index, term, payload, .. } => {
                if *index > self.purged {
                    self.entries.insert(*index, (*term, payload.clone()));
                }
            }
            Record::Vote { payload, .. } => self.vote = Some(payload.clone()),
            Record::Truncate { after, .. } => {
                self.entries.split_off(&(after + 1));
            }
            Record::Purge { upto, .. } => {
                if *upto > self.purged {
                    self.purged = *upto;
                    self.entries = self.entries.split_off(&(upto + 1));
                }
            }
            Record::Drop { .. } => *self = GroupState::default(),
        }
    }
}

/// Every group's state after replay.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovered {
    pub groups: HashMap<GroupId, GroupState>,
    /// Records replayed, and bytes of torn tail cut off.
    pub records: u64,
    pub torn_bytes: u64,
}

impl Recovered {
    pub fn apply(&mut self, record: &Record) {
        match record {
            Record::Drop { group } => {
                self.groups.remove(group);
            }
            _ => self.groups.entry(record.group()).or_default().apply(record),
        }
        self.records += 1;
    }

    pub fn group(&self, group: GroupId) -> GroupState {
        self.groups.get(&group).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64, term: u64) -> Record {
        Record::Entry { group: 1, index, term, payload: Bytes::from(format!("e{index}")) }
    }

    #[test]
    fn truncate_and_purge_trim_the_right_ends() {
        let mut r = Recovered::default();
        for i in 1..=10 {
            r.apply(&entry(i, 1));
        }
        r.apply(&Record::Truncate { group: 1, after: 7 });
        r.apply(&entry(8, 2));
        r.apply(&Record::Purge { group: 1, upto: 3 });
        r.apply(&entry(2, 2)); // below the purge point: ignored
        let g = r.group(1);
        assert_eq!(g.entries.keys().copied().collect::<Vec<_>>(), vec![4, 5, 6, 7, 8]);
        assert_eq!(g.entries[&8].0, 2);
        assert_eq!(g.purged, 3);
        assert_eq!(r.group(2), GroupState::default());
    }
}
