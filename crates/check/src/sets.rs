//! The set workload's check: after unique elements were appended to a key,
//! one final read of the key must hold every acknowledged element exactly
//! once, no element that certainly failed, and nothing nobody added.
//! Indeterminate adds may be present or not (each at most once).

use std::collections::{HashMap, HashSet};

use crate::history::{Call, Op, Outcome, Ret};
use crate::Verdict;

/// What the final reads showed, summed over keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetSummary {
    pub keys: usize,
    /// Acknowledged adds.
    pub acknowledged: usize,
    /// Indeterminate adds found in the final read.
    pub indeterminate_present: usize,
    /// Indeterminate adds not found.
    pub indeterminate_absent: usize,
    pub lost: Vec<u64>,
    pub duplicated: Vec<u64>,
    /// Elements present that were never added, or whose add failed.
    pub unexpected: Vec<u64>,
}

impl SetSummary {
    pub fn verdict(&self) -> Verdict {
        if self.lost.is_empty() && self.duplicated.is_empty() && self.unexpected.is_empty() {
            return Verdict::Valid;
        }
        let few = |v: &[u64]| format!("{:?}{}", &v[..v.len().min(10)], if v.len() > 10 { " …" } else { "" });
        Verdict::Invalid(format!(
            "sets: {} acknowledged elements lost {}, {} duplicated {}, {} unexpected {}",
            self.lost.len(),
            few(&self.lost),
            self.duplicated.len(),
            few(&self.duplicated),
            self.unexpected.len(),
            few(&self.unexpected),
        ))
    }
}

/// Checks every set key in `ops` (register operations are ignored). A key
/// with adds but no successful final read makes the verdict unknown.
pub fn check_sets(ops: &[Op]) -> (Verdict, SetSummary) {
    let mut adds: HashMap<&str, Vec<&Op>> = HashMap::new();
    let mut finals: HashMap<&str, &[u64]> = HashMap::new();
    for op in ops {
        match (&op.call, &op.outcome) {
            (Call::Add(_), _) => adds.entry(&op.key).or_default().push(op),
            (Call::ReadAll, Outcome::Ok(Ret::Elements(e))) => {
                finals.insert(&op.key, e);
            }
            _ => {}
        }
    }
    // Every key with adds or a final read: elements in a key nobody added
    // to are unexpected too.
    let mut keys: Vec<&str> = adds.keys().chain(finals.keys()).copied().collect();
    keys.sort_unstable();
    keys.dedup();
    let mut summary = SetSummary { keys: keys.len(), ..SetSummary::default() };
    let mut unread = Vec::new();
    for key in keys {
        let Some(read) = finals.get(key) else {
            unread.push(key);
            continue;
        };
        check_key(adds.get(key).map_or(&[], Vec::as_slice), read, &mut summary);
    }
    let verdict = summary.verdict();
    if verdict == Verdict::Valid && !unread.is_empty() {
        return (Verdict::Unknown(format!("sets: no final read of {unread:?}")), summary);
    }
    (verdict, summary)
}

fn check_key(adds: &[&Op], read: &[u64], summary: &mut SetSummary) {
    let mut count: HashMap<u64, usize> = HashMap::new();
    for &e in read {
        *count.entry(e).or_default() += 1;
    }
    let mut attempted = HashSet::new();
    for op in adds {
        let Call::Add(e) = op.call else { continue };
        let present = count.contains_key(&e);
        match &op.outcome {
            Outcome::Ok(_) => {
                attempted.insert(e);
                summary.acknowledged += 1;
                if !present {
                    summary.lost.push(e);
                }
            }
            Outcome::Info(_) => {
                attempted.insert(e);
                if present {
                    summary.indeterminate_present += 1;
                } else {
                    summary.indeterminate_absent += 1;
                }
            }
            // Certainly not applied: must not be there (counted below).
            Outcome::Fail(_) => {}
        }
    }
    let mut elements: Vec<(&u64, &usize)> = count.iter().collect();
    elements.sort_unstable();
    for (&e, &n) in elements {
        if n > 1 {
            summary.duplicated.push(e);
        }
        if !attempted.contains(&e) {
            summary.unexpected.push(e);
        }
    }
}
