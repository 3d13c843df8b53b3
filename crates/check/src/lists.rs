//! The list-append workload's check, a simple cousin of Jepsen's
//! list-append (Elle): clients append unique elements to a few list keys
//! (RPUSH) and read whole lists (LRANGE 0 -1). Nothing is ever removed, so
//! every state of a key is a prefix of every later state, and a
//! linearizable store must show, per key:
//!
//! 1. no element twice in any read;
//! 2. reads that all extend one another: of any two reads, one is a prefix
//!    of the other, and a read that began after another completed is the
//!    longer one (the later read extends the earlier);
//! 3. every acknowledged append in the final read (the last read, begun
//!    after every acknowledged append completed); an indeterminate one may
//!    be there or not, but at most once (1);
//! 4. no element that nobody appended, or whose append certainly failed,
//!    and none in a read that completed before its append was invoked.
//!
//! Two more follow from linearizability and are as cheap: a read that began
//! after an append was acknowledged holds its element (no stale read), and
//! an element whose append was acknowledged before another's was invoked
//! comes first in the list.
//!
//! Reads are compared through one chain: sorted by length, each must be a
//! prefix of the next (then any two are prefixes one of the other), and
//! the real-time order is checked on lengths, so a key with many reads is
//! checked in O(n log n), not pairwise. As in [`crate::linear`], an
//! operation precedes another only if it completed strictly before the
//! other was invoked; touching operations are concurrent.

use std::collections::{HashMap, HashSet};

use crate::history::{Call, Op, Outcome, Ret};
use crate::Verdict;

/// What the reads showed, summed over keys, and every violation found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListSummary {
    pub keys: usize,
    /// Successful reads, the final ones included.
    pub reads: usize,
    /// The longest list read.
    pub longest: usize,
    /// Acknowledged appends.
    pub acknowledged: usize,
    /// Indeterminate appends found in the final read.
    pub indeterminate_present: usize,
    /// Indeterminate appends not found.
    pub indeterminate_absent: usize,
    /// Keys without a read begun after every acknowledged append completed.
    pub unread: Vec<String>,
    /// One line per violation, for a person.
    pub violations: Vec<String>,
}

impl ListSummary {
    pub fn verdict(&self) -> Verdict {
        if !self.violations.is_empty() {
            const SHOWN: usize = 10;
            let n = self.violations.len();
            let mut text = format!("list-append: {n} violation{}", if n == 1 { "" } else { "s" });
            for v in self.violations.iter().take(SHOWN) {
                text.push_str("\n  - ");
                text.push_str(v);
            }
            if self.violations.len() > SHOWN {
                text.push_str(&format!("\n  - … and {} more", self.violations.len() - SHOWN));
            }
            return Verdict::Invalid(text);
        }
        if !self.unread.is_empty() {
            return Verdict::Unknown(format!("list-append: no final read of {:?}", self.unread));
        }
        Verdict::Valid
    }
}

/// Whether `op` belongs to the list-append workload.
pub fn is_list(call: &Call) -> bool {
    matches!(call, Call::Append(_) | Call::ReadList)
}

/// Checks every list key in `ops` (other operations are ignored).
pub fn check_lists(ops: &[Op]) -> (Verdict, ListSummary) {
    let mut by_key: HashMap<&str, Vec<&Op>> = HashMap::new();
    for op in ops.iter().filter(|o| is_list(&o.call)) {
        by_key.entry(&op.key).or_default().push(op);
    }
    let mut keys: Vec<&str> = by_key.keys().copied().collect();
    keys.sort_unstable();
    let mut summary = ListSummary { keys: keys.len(), ..ListSummary::default() };
    let mut violations = Vec::new();
    for key in keys {
        check_key(key, &by_key[key], &mut summary, &mut violations);
    }
    summary.violations = violations;
    (summary.verdict(), summary)
}

/// A successful read.
struct Read<'a> {
    op: &'a Op,
    list: &'a [u64],
    invoke: u64,
    complete: u64,
}

impl Read<'_> {
    /// The read for a report: who, when, how long, and the elements around
    /// position `at`.
    fn shown(&self, at: usize) -> String {
        format!(
            "the read by process {} [{} .. {} ns] of {} elements {}",
            self.op.process,
            self.invoke,
            self.complete,
            self.list.len(),
            window(self.list, at)
        )
    }
}

/// The elements of `list` around position `at` (a long list in full would
/// drown the report).
fn window(list: &[u64], at: usize) -> String {
    let from = at.saturating_sub(3).min(list.len());
    let to = (at + 4).min(list.len());
    let items: Vec<String> = list[from..to].iter().map(u64::to_string).collect();
    format!(
        "[{}{}{}]",
        if from > 0 { format!("… ({from} before) ") } else { String::new() },
        items.join(", "),
        if to < list.len() { format!(" … ({} after)", list.len() - to) } else { String::new() }
    )
}

/// How two operations relate in real time.
fn order(a: &Read, b: &Read) -> &'static str {
    if a.complete < b.invoke {
        "the second began after the first completed"
    } else if b.complete < a.invoke {
        "the first began after the second completed"
    } else {
        "they were concurrent"
    }
}

fn check_key(key: &str, ops: &[&Op], summary: &mut ListSummary, v: &mut Vec<String>) {
    // Each element's append; an element appended twice makes the history
    // itself wrong (the workload never does that).
    let mut appends: HashMap<u64, &Op> = HashMap::new();
    let mut reads: Vec<Read> = Vec::new();
    for &op in ops {
        match (&op.call, &op.outcome) {
            (&Call::Append(e), outcome) => {
                if matches!(outcome, Outcome::Ok(_)) && op.complete_ns.is_none() {
                    v.push(format!(
                        "key {key}: malformed history: acknowledged append of {e} without a completion time"
                    ));
                }
                if appends.insert(e, op).is_some() {
                    v.push(format!("key {key}: malformed history: element {e} appended twice"));
                }
            }
            (Call::ReadList, Outcome::Ok(Ret::Elements(list))) => match op.complete_ns {
                Some(complete) if complete >= op.invoke_ns => {
                    reads.push(Read { op, list, invoke: op.invoke_ns, complete })
                }
                _ => v.push(format!("key {key}: malformed history: read without a sound completion time {op:?}")),
            },
            (Call::ReadList, Outcome::Ok(other)) => {
                v.push(format!("key {key}: malformed history: read returned {other:?}"))
            }
            // A read that failed or may not have happened says nothing.
            _ => {}
        }
    }
    summary.reads += reads.len();
    summary.longest = summary.longest.max(reads.iter().map(|r| r.list.len()).max().unwrap_or(0));
    let acked = |op: &Op| matches!(op.outcome, Outcome::Ok(_));

    // (1) and (4): per read, each element once, appended, not failed, and
    // invoked before the read completed. Each element is reported once.
    let mut reported: HashSet<u64> = HashSet::new();
    for read in &reads {
        let mut at: HashMap<u64, usize> = HashMap::with_capacity(read.list.len());
        for (i, &e) in read.list.iter().enumerate() {
            let problem = if let Some(first) = at.insert(e, i) {
                Some(format!("element {e} appears twice (positions {first} and {i}) in {}", read.shown(i)))
            } else {
                match appends.get(&e) {
                    None => Some(format!("element {e}, which nobody appended, appears in {}", read.shown(i))),
                    Some(a) if matches!(a.outcome, Outcome::Fail(_)) => Some(format!(
                        "element {e}, whose append by process {} certainly failed, appears in {}",
                        a.process,
                        read.shown(i)
                    )),
                    Some(a) if a.invoke_ns > read.complete => Some(format!(
                        "element {e}, appended by process {} from {} ns, appears in {}, which completed before",
                        a.process,
                        a.invoke_ns,
                        read.shown(i)
                    )),
                    Some(_) => None,
                }
            };
            if let Some(problem) = problem {
                if reported.insert(e) {
                    v.push(format!("key {key}: {problem}"));
                }
            }
        }
    }

    // (2), all pairs: sorted by length, each read a prefix of the next.
    let mut by_len: Vec<usize> = (0..reads.len()).collect();
    by_len.sort_by_key(|&i| (reads[i].list.len(), reads[i].complete));
    let mut chain = true;
    for pair in by_len.windows(2) {
        let (a, b) = (&reads[pair[0]], &reads[pair[1]]);
        if let Some(i) = (0..a.list.len()).find(|&i| a.list[i] != b.list[i]) {
            chain = false;
            v.push(format!(
                "key {key}: neither of two reads extends the other ({}): at position {i} {} has {} where {} has {}",
                order(a, b),
                a.shown(i),
                a.list[i],
                b.shown(i),
                b.list[i]
            ));
        }
    }

    // (2), real time: a read that began after another completed is at
    // least as long (with the chain, then the earlier is its prefix).
    let mut by_complete: Vec<usize> = (0..reads.len()).collect();
    by_complete.sort_by_key(|&i| reads[i].complete);
    let mut by_invoke: Vec<usize> = (0..reads.len()).collect();
    by_invoke.sort_by_key(|&i| reads[i].invoke);
    let mut done = 0;
    let mut longest_done: Option<usize> = None;
    for &b in &by_invoke {
        while done < by_complete.len() && reads[by_complete[done]].complete < reads[b].invoke {
            let a = by_complete[done];
            if longest_done.is_none_or(|l| reads[a].list.len() > reads[l].list.len()) {
                longest_done = Some(a);
            }
            done += 1;
        }
        let Some(a) = longest_done else { continue };
        let (a, b) = (&reads[a], &reads[b]);
        if a.list.len() > b.list.len() {
            let i = b.list.len();
            v.push(format!(
                "key {key}: a later read does not extend an earlier one: element {} (position {i}) of {} is \
                 missing from {}, which began after it completed",
                a.list[i],
                a.shown(i),
                b.shown(i)
            ));
        }
    }

    // (3): the final read holds every acknowledged append.
    let Some(last) = reads.iter().max_by_key(|r| (r.invoke, r.complete)) else {
        if appends.values().any(|a| acked(a)) {
            summary.unread.push(key.to_string());
        }
        summary.acknowledged += appends.values().filter(|a| acked(a)).count();
        return;
    };
    let in_last: HashMap<u64, usize> = last.list.iter().enumerate().map(|(i, &e)| (e, i)).collect();
    let mut elements: Vec<(&u64, &&Op)> = appends.iter().collect();
    elements.sort_unstable_by_key(|(e, _)| **e);
    let mut unsure = false;
    for (&e, a) in elements {
        match a.outcome {
            Outcome::Ok(_) => {
                summary.acknowledged += 1;
                let complete = a.complete_ns.unwrap_or(u64::MAX);
                if complete >= last.invoke {
                    unsure = true;
                } else if !in_last.contains_key(&e) {
                    v.push(format!(
                        "key {key}: element {e}, whose append by process {} was acknowledged [{} .. {complete} ns], \
                         is lost: missing from the final read, {}",
                        a.process,
                        a.invoke_ns,
                        last.shown(last.list.len())
                    ));
                }
            }
            Outcome::Info(_) if in_last.contains_key(&e) => summary.indeterminate_present += 1,
            Outcome::Info(_) => summary.indeterminate_absent += 1,
            Outcome::Fail(_) => {}
        }
    }
    if unsure {
        summary.unread.push(key.to_string());
    }
    if !chain {
        // The positions below assume one list every read is a prefix of.
        return;
    }
    let Some(&longest) = by_len.last() else { return };
    let longest = &reads[longest];
    let pos: HashMap<u64, usize> = longest.list.iter().enumerate().map(|(i, &e)| (e, i)).collect();

    // No stale read: a read begun after an append was acknowledged holds
    // its element (elements in no read at all were reported as lost).
    let mut acks: Vec<(u64, usize, &Op)> = appends
        .iter()
        .filter(|(_, a)| acked(a))
        .filter_map(|(e, a)| Some((a.complete_ns?, *pos.get(e)?, *a)))
        .collect();
    acks.sort_unstable_by_key(|&(t, p, _)| (t, p));
    // furthest[k]: the largest position among the first k+1 acknowledgements.
    let furthest: Vec<usize> = acks
        .iter()
        .scan(0, |m, &(_, p, _)| {
            *m = (*m).max(p);
            Some(*m)
        })
        .collect();
    for read in &reads {
        let k = acks.partition_point(|&(t, _, _)| t < read.invoke);
        if k == 0 || furthest[k - 1] < read.list.len() {
            continue;
        }
        let (t, p, a) = acks[..k].iter().find(|&&(_, p, _)| p >= read.list.len()).expect("furthest says one is");
        v.push(format!(
            "key {key}: stale read: element {} (position {p} of the longest read), whose append by process {} \
             was acknowledged at {t} ns, is missing from {}, which began after",
            longest.list[*p],
            a.process,
            read.shown(read.list.len())
        ));
    }

    // Appends in real-time order: no element sits after one whose append
    // was invoked only after its own append was acknowledged.
    let mut earliest_after: Option<(u64, usize)> = None;
    for (i, &e) in longest.list.iter().enumerate().rev() {
        let Some(a) = appends.get(&e) else { continue };
        if let Some((t, j)) = earliest_after.filter(|&(t, _)| t < a.invoke_ns) {
            v.push(format!(
                "key {key}: appends out of order: element {} (acknowledged at {t} ns) comes after element {e} \
                 (appended from {} ns, later) in {}",
                longest.list[j],
                a.invoke_ns,
                longest.shown(i)
            ));
        }
        if let (Outcome::Ok(_), Some(t)) = (&a.outcome, a.complete_ns) {
            if earliest_after.is_none_or(|(u, _)| t < u) {
                earliest_after = Some((t, i));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(process: u32, call: Call, (invoke, complete): (u64, u64), outcome: Outcome) -> Op {
        let complete_ns = (complete != u64::MAX).then_some(complete);
        Op { process, key: "l".into(), call, invoke_ns: invoke, complete_ns, outcome }
    }
    fn append(p: u32, e: u64, at: (u64, u64)) -> Op {
        op(p, Call::Append(e), at, Outcome::Ok(Ret::Done))
    }
    fn unsure(p: u32, e: u64, invoke: u64) -> Op {
        op(p, Call::Append(e), (invoke, u64::MAX), Outcome::Info("-UNCERTAIN".into()))
    }
    fn read(p: u32, list: &[u64], at: (u64, u64)) -> Op {
        op(p, Call::ReadList, at, Outcome::Ok(Ret::Elements(list.to_vec())))
    }

    /// Appends 1, 2, 3 by two clients (2 overlapping 3), an indeterminate
    /// 4, reads along the way, and a final read.
    fn valid() -> Vec<Op> {
        vec![
            append(1, 1, (0, 10)),
            read(3, &[], (1, 2)),
            read(4, &[1], (5, 12)),
            append(1, 2, (20, 30)),
            append(2, 3, (22, 32)),
            read(3, &[1, 3], (25, 28)),
            unsure(2, 4, 40),
            read(3, &[1, 3, 2], (41, 45)),
            read(4, &[1, 3, 2, 4], (46, 50)),
            read(0, &[1, 3, 2, 4], (100, 110)),
        ]
    }

    fn violations(ops: &[Op]) -> Vec<String> {
        let (verdict, summary) = check_lists(ops);
        match verdict {
            Verdict::Invalid(why) => println!("{why}"),
            Verdict::Valid => assert!(summary.violations.is_empty()),
            Verdict::Unknown(why) => panic!("unknown: {why}"),
        }
        summary.violations
    }

    #[test]
    fn a_valid_history_passes() {
        let (verdict, summary) = check_lists(&valid());
        assert_eq!(verdict, Verdict::Valid);
        assert_eq!((summary.keys, summary.reads, summary.longest), (1, 6, 4));
        assert_eq!((summary.acknowledged, summary.indeterminate_present, summary.indeterminate_absent), (3, 1, 0));
        // The indeterminate append may also never land.
        let mut ops = valid();
        ops.truncate(8);
        ops.push(read(0, &[1, 3, 2], (100, 110)));
        let (verdict, summary) = check_lists(&ops);
        assert_eq!(verdict, Verdict::Valid);
        assert_eq!(summary.indeterminate_absent, 1);
        // Concurrent appends may land in either order.
        let swapped = [append(1, 1, (0, 10)), append(2, 2, (0, 10)), read(0, &[2, 1], (11, 12))];
        assert_eq!(check_lists(&swapped).0, Verdict::Valid);
        // Keys are separate lists.
        let mut other = append(5, 9, (0, 1));
        other.key = "m".into();
        let mut other_read = read(5, &[9], (2, 3));
        other_read.key = "m".into();
        let mut ops = valid();
        ops.extend([other, other_read]);
        assert_eq!(check_lists(&ops).1.keys, 2);
        assert_eq!(check_lists(&ops).0, Verdict::Valid);
    }

    #[test]
    fn a_duplicate_fails() {
        let mut ops = valid();
        *ops.last_mut().unwrap() = read(0, &[1, 3, 2, 4, 4], (100, 110));
        let v = violations(&ops);
        assert!(v.iter().any(|m| m.contains("element 4 appears twice")), "{v:?}");
        // An acknowledged element twice, in an intermediate read.
        let mut ops = valid();
        ops[5] = read(3, &[1, 1], (25, 28));
        let v = violations(&ops);
        assert!(v.iter().any(|m| m.contains("element 1 appears twice")), "{v:?}");
    }

    #[test]
    fn a_lost_acknowledged_element_fails() {
        let mut ops = valid();
        *ops.last_mut().unwrap() = read(0, &[1, 3, 4], (100, 110));
        let v = violations(&ops);
        assert!(v.iter().any(|m| m.contains("element 2") && m.contains("is lost")), "{v:?}");
        // Lost with no trace in any read at all.
        let ops = [append(1, 1, (0, 1)), append(1, 2, (2, 3)), read(0, &[1], (10, 11))];
        let v = violations(&ops);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].contains("element 2") && v[0].contains("is lost"), "{v:?}");
    }

    #[test]
    fn a_read_that_is_not_a_prefix_of_a_later_one_fails() {
        // A later read that reorders what an earlier one saw.
        let mut ops = valid();
        ops[7] = read(3, &[3, 1, 2], (41, 45));
        let v = violations(&ops);
        assert!(v.iter().any(|m| m.contains("neither of two reads extends the other")), "{v:?}");
        // A later read shorter than an earlier one (an element vanished
        // for a while, then came back).
        let mut ops = valid();
        ops[8] = read(4, &[1, 3], (46, 50));
        let v = violations(&ops);
        assert!(v.iter().any(|m| m.contains("a later read does not extend an earlier one")), "{v:?}");
        assert!(v.iter().any(|m| m.contains("element 2 (position 2)")), "{v:?}");
        // Concurrent reads may be of different lengths, but not disagree.
        let ops = [
            append(1, 1, (0, 10)),
            append(2, 2, (0, 10)),
            read(3, &[1], (1, 9)),
            read(4, &[2], (1, 9)),
            read(0, &[1, 2], (20, 21)),
        ];
        let v = violations(&ops);
        assert!(v.iter().any(|m| m.contains("neither") && m.contains("concurrent")), "{v:?}");
    }

    #[test]
    fn elements_nobody_appended_or_whose_append_failed_fail() {
        let mut ops = valid();
        *ops.last_mut().unwrap() = read(0, &[1, 3, 2, 4, 99], (100, 110));
        let v = violations(&ops);
        assert!(v.iter().any(|m| m.contains("element 99, which nobody appended")), "{v:?}");
        let mut ops = valid();
        ops.push(op(5, Call::Append(7), (60, 61), Outcome::Fail("usage".into())));
        *ops.iter_mut().rev().nth(1).unwrap() = read(0, &[1, 3, 2, 4, 7], (100, 110));
        let v = violations(&ops);
        assert!(v.iter().any(|m| m.contains("element 7") && m.contains("certainly failed")), "{v:?}");
        // Seen before its append was even invoked.
        let ops = [read(3, &[1], (0, 1)), append(1, 1, (5, 6)), read(0, &[1], (10, 11))];
        let v = violations(&ops);
        assert!(v.iter().any(|m| m.contains("which completed before")), "{v:?}");
    }

    #[test]
    fn stale_reads_and_out_of_order_appends_fail() {
        // A read begun after 2 was acknowledged, without it.
        let ops = [append(1, 1, (0, 1)), append(1, 2, (2, 3)), read(3, &[1], (5, 6)), read(0, &[1, 2], (10, 11))];
        let v = violations(&ops);
        assert!(v.iter().any(|m| m.contains("stale read") && m.contains("element 2")), "{v:?}");
        // 2 acknowledged before 1 was invoked, yet 1 comes first.
        let ops = [append(1, 2, (0, 1)), append(1, 1, (2, 3)), read(0, &[1, 2], (10, 11))];
        let v = violations(&ops);
        assert!(v.iter().any(|m| m.contains("appends out of order")), "{v:?}");
    }

    #[test]
    fn a_key_without_a_final_read_is_unknown() {
        let ops = [append(1, 1, (0, 1))];
        assert!(matches!(check_lists(&ops).0, Verdict::Unknown(_)));
        // The last read began before an acknowledged append completed.
        let ops = [append(1, 1, (0, 10)), read(0, &[], (1, 2))];
        assert!(matches!(check_lists(&ops).0, Verdict::Unknown(_)));
        // An indeterminate append alone needs no read.
        assert_eq!(check_lists(&[unsure(1, 1, 0)]).0, Verdict::Valid);
        // A violation outweighs the missing read.
        let ops = [append(1, 1, (0, 10)), read(0, &[1, 1], (1, 2))];
        assert!(matches!(check_lists(&ops).0, Verdict::Invalid(_)));
    }

    #[test]
    fn list_histories_round_trip_through_json_lines() {
        let ops = valid();
        let text = crate::history::to_json_lines(&ops);
        assert!(text.contains("\"f\":\"append\"") && text.contains("\"f\":\"read-list\""), "{text}");
        let mut back = crate::history::from_json_lines(&text).unwrap();
        let mut expected = ops;
        back.sort_by_key(|o| (o.process, o.invoke_ns));
        expected.sort_by_key(|o| (o.process, o.invoke_ns));
        assert_eq!(back, expected);
    }

    /// A tiny seeded generator.
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self, below: u64) -> u64 {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (self.0 >> 33) % below
        }
    }

    /// A history of a real list: each operation takes effect at one
    /// instant inside its (overlapping) interval, so it passes by
    /// construction; indeterminate appends land or not, failed ones never.
    fn real_list_history(rng: &mut Lcg, len: usize) -> Vec<Op> {
        let mut list = Vec::new();
        let mut ops = Vec::new();
        for i in 0..len {
            let at = 10 * i as u64 + 50;
            let at = (at - rng.next(40), at + rng.next(40));
            let (p, e) = (i as u32, i as u64 + 1);
            ops.push(match rng.next(10) {
                0..3 => read(p, &list, at),
                3 => {
                    if rng.next(2) == 0 {
                        list.push(e);
                    }
                    unsure(p, e, at.0)
                }
                4 => op(p, Call::Append(e), at, Outcome::Fail("usage".into())),
                _ => {
                    list.push(e);
                    append(p, e, at)
                }
            });
        }
        let end = 10 * len as u64 + 100;
        ops.push(read(u32::MAX, &list, (end, end + 1)));
        ops
    }

    #[test]
    fn random_real_list_histories_pass_and_corrupted_ones_fail() {
        let mut rng = Lcg(0x1157);
        for round in 0..300 {
            let ops = real_list_history(&mut rng, 40);
            assert_eq!(check_lists(&ops).0, Verdict::Valid, "round {round}: {ops:?}");
            let last = ops.len() - 1;
            let Outcome::Ok(Ret::Elements(final_list)) = &ops[last].outcome else { unreachable!() };
            // Drop an acknowledged element from the final read.
            let acked: Vec<u64> = ops
                .iter()
                .filter_map(|o| match (&o.call, &o.outcome) {
                    (Call::Append(e), Outcome::Ok(_)) => Some(*e),
                    _ => None,
                })
                .collect();
            if let Some(&gone) = acked.get(rng.next(acked.len().max(1) as u64) as usize) {
                let mut bad = ops.clone();
                let shorter: Vec<u64> = final_list.iter().copied().filter(|&e| e != gone).collect();
                bad[last].outcome = Outcome::Ok(Ret::Elements(shorter));
                assert!(matches!(check_lists(&bad).0, Verdict::Invalid(_)), "round {round}: lost {gone} passed");
            }
            // Repeat an element in a read.
            if let Some(&again) = final_list.get(rng.next(final_list.len().max(1) as u64) as usize) {
                let mut bad = ops.clone();
                let mut longer = final_list.clone();
                longer.push(again);
                bad[last].outcome = Outcome::Ok(Ret::Elements(longer));
                assert!(matches!(check_lists(&bad).0, Verdict::Invalid(_)), "round {round}: duplicate passed");
            }
        }
    }

    #[test]
    fn the_report_names_the_key_the_element_and_both_reads() {
        let mut ops = valid();
        ops[8] = read(4, &[1, 3], (46, 50));
        let (verdict, _) = check_lists(&ops);
        let Verdict::Invalid(why) = verdict else { panic!("{verdict:?}") };
        println!("{why}");
        assert!(why.starts_with("list-append: "), "{why}");
        assert!(why.contains("key l:") && why.contains("process 3 [41 .. 45 ns]"), "{why}");
        assert!(why.contains("process 4 [46 .. 50 ns]"), "{why}");
    }
}
