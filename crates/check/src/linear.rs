//! Linearizability of registers: Wing & Gong's search with Lowe's
//! memoisation, the algorithm of Knossos and Porcupine.
//!
//! Keys are independent registers, so each key's operations are checked on
//! their own (linearizability is compositional). For one key, the calls and
//! returns are laid out in time order in a doubly linked list. The search
//! walks it from the front: at a call it tries to linearize that operation
//! now (the register model must accept its result), removes its call and
//! return from the list and starts again from the front; at a return it has
//! met an operation that had to be linearized already, so it undoes the
//! last choice and tries the next call instead. Every (set of linearized
//! operations, register value) pair reached is remembered, so no state is
//! explored twice. The list empties: linearizable. Nothing left to undo:
//! not. Out of time or memory: unknown.
//!
//! An indeterminate write or CAS returns at infinity: it may be linearized
//! anywhere after its call, and linearizing it last is the same as it never
//! happening. Failed operations and indeterminate reads change nothing and
//! are left out.

use std::collections::HashSet;
use std::time::Instant;

use crate::history::{Call, Op, Outcome, Ret};
use crate::Verdict;

/// Bounds on one check: it answers `Unknown` rather than run past them.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub deadline: Instant,
    /// Most memoised states per key.
    pub max_states: usize,
}

/// A register operation as the model sees it.
#[derive(Debug, Clone, Copy)]
enum Step {
    Read(Option<u64>),
    Write(u64),
    /// `swapped` is `None` when the outcome is unknown.
    Cas {
        expect: u64,
        new: u64,
        swapped: Option<bool>,
    },
}

/// The register model: the value after `step`, or `None` if `step`'s
/// result is impossible from `value`.
fn apply(value: Option<u64>, step: Step) -> Option<Option<u64>> {
    match step {
        Step::Read(seen) => (seen == value).then_some(value),
        Step::Write(v) => Some(Some(v)),
        Step::Cas { expect, new, swapped: Some(true) } => (value == Some(expect)).then_some(Some(new)),
        Step::Cas { expect, swapped: Some(false), .. } => (value != Some(expect)).then_some(value),
        Step::Cas { expect, new, swapped: None } => Some(if value == Some(expect) { Some(new) } else { value }),
    }
}

/// Checks every register key in `ops` (set operations are ignored).
pub fn check_registers(ops: &[Op], limits: Limits) -> Verdict {
    let mut keys: Vec<&str> = ops.iter().filter(|o| is_register(&o.call)).map(|o| o.key.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    let mut verdict = Verdict::Valid;
    for key in keys {
        let key_ops: Vec<&Op> = ops.iter().filter(|o| o.key == key && is_register(&o.call)).collect();
        verdict = verdict.and(check_key(key, &key_ops, limits));
        if matches!(verdict, Verdict::Invalid(_)) {
            break;
        }
    }
    verdict
}

fn is_register(call: &Call) -> bool {
    matches!(call, Call::Read | Call::Write(_) | Call::Cas { .. })
}

/// One operation kept for the search, with its real-time interval.
struct Timed<'a> {
    op: &'a Op,
    step: Step,
    call: u64,
    ret: u64,
}

/// The operations that matter, or a description of a malformed one.
fn timed<'a>(ops: &[&'a Op]) -> Result<Vec<Timed<'a>>, String> {
    let mut out = Vec::new();
    for &op in ops {
        let step = match (&op.call, &op.outcome) {
            (_, Outcome::Fail(_)) | (Call::Read, Outcome::Info(_)) => continue,
            (Call::Read, Outcome::Ok(Ret::Value(v))) => Step::Read(*v),
            (Call::Write(v), Outcome::Ok(Ret::Done) | Outcome::Info(_)) => Step::Write(*v),
            (&Call::Cas { expect, new }, Outcome::Ok(Ret::Swapped(s))) => Step::Cas { expect, new, swapped: Some(*s) },
            (&Call::Cas { expect, new }, Outcome::Info(_)) => Step::Cas { expect, new, swapped: None },
            _ => return Err(format!("malformed operation {op:?}")),
        };
        let ret = match (&op.outcome, op.complete_ns) {
            (Outcome::Ok(_), Some(t)) => t,
            (Outcome::Ok(_), None) => return Err(format!("ok operation without completion time {op:?}")),
            _ => u64::MAX,
        };
        if ret < op.invoke_ns {
            return Err(format!("operation completed before it was invoked {op:?}"));
        }
        out.push(Timed { op, step, call: op.invoke_ns, ret });
    }
    Ok(out)
}

/// A set of operation indices.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Bits(Vec<u64>);

impl Bits {
    fn new(n: usize) -> Bits {
        Bits(vec![0; n.div_ceil(64)])
    }
    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn clear(&mut self, i: usize) {
        self.0[i / 64] &= !(1 << (i % 64));
    }
}

/// The calls and returns of one key in time order, as a list that entries
/// can be taken out of and put back into in reverse order (dancing links).
/// Node 0 is the head and node `len + 1` the tail; entry `i` is node `i + 1`.
struct Timeline {
    next: Vec<usize>,
    prev: Vec<usize>,
    /// Per node: the operation and whether the node is its call.
    entry: Vec<(usize, bool)>,
    call_node: Vec<usize>,
    ret_node: Vec<usize>,
}

impl Timeline {
    const HEAD: usize = 0;

    fn new(ops: &[Timed]) -> Timeline {
        let mut order: Vec<(u64, bool, usize)> =
            ops.iter().enumerate().flat_map(|(i, t)| [(t.call, false, i), (t.ret, true, i)]).collect();
        // At equal times calls come first: touching operations count as
        // concurrent, the lenient reading of a clock's resolution.
        order.sort_unstable();
        let nodes = order.len() + 2;
        let mut line = Timeline {
            next: (1..=nodes).collect(),
            prev: (0..nodes).map(|i| i.saturating_sub(1)).collect(),
            entry: vec![(usize::MAX, false); nodes],
            call_node: vec![0; ops.len()],
            ret_node: vec![0; ops.len()],
        };
        for (i, &(_, is_ret, op)) in order.iter().enumerate() {
            line.entry[i + 1] = (op, !is_ret);
            if is_ret {
                line.ret_node[op] = i + 1;
            } else {
                line.call_node[op] = i + 1;
            }
        }
        line
    }

    fn tail(&self) -> usize {
        self.next.len() - 1
    }
    fn first(&self) -> usize {
        self.next[Self::HEAD]
    }
    fn unlink(&mut self, x: usize) {
        let (p, n) = (self.prev[x], self.next[x]);
        self.next[p] = n;
        self.prev[n] = p;
    }
    fn relink(&mut self, x: usize) {
        let (p, n) = (self.prev[x], self.next[x]);
        self.next[p] = x;
        self.prev[n] = x;
    }
    fn lift(&mut self, op: usize) {
        self.unlink(self.call_node[op]);
        self.unlink(self.ret_node[op]);
    }
    fn unlift(&mut self, op: usize) {
        self.relink(self.ret_node[op]);
        self.relink(self.call_node[op]);
    }
}

/// Checks one key's operations.
pub fn check_key(key: &str, ops: &[&Op], limits: Limits) -> Verdict {
    let ops = match timed(ops) {
        Ok(ops) => ops,
        Err(e) => return Verdict::Invalid(format!("key {key}: {e}")),
    };
    let mut line = Timeline::new(&ops);
    let mut value: Option<u64> = None;
    let mut linearized = Bits::new(ops.len());
    let mut seen: HashSet<(Bits, Option<u64>)> = HashSet::new();
    // The operations linearized so far, with the value before each.
    let mut stack: Vec<(usize, Option<u64>)> = Vec::with_capacity(ops.len());
    // The furthest the search got, for the report: (depth, blocking op, value).
    let mut furthest = (0, usize::MAX, None);
    let mut cursor = line.first();
    let mut steps: u64 = 0;
    while line.first() != line.tail() {
        steps += 1;
        if steps.is_multiple_of(4096) && Instant::now() > limits.deadline {
            return Verdict::Unknown(format!("key {key}: out of time after {steps} steps"));
        }
        assert!(cursor != line.tail(), "every call's return follows it in the list");
        let (op, is_call) = line.entry[cursor];
        if is_call {
            if let Some(after) = apply(value, ops[op].step) {
                linearized.set(op);
                if seen.insert((linearized.clone(), after)) {
                    if seen.len() > limits.max_states {
                        return Verdict::Unknown(format!("key {key}: more than {} states", limits.max_states));
                    }
                    stack.push((op, value));
                    value = after;
                    line.lift(op);
                    cursor = line.first();
                    continue;
                }
                linearized.clear(op);
            }
            cursor = line.next[cursor];
            continue;
        }
        // A return: `op` must have been linearized before this point.
        if stack.len() >= furthest.0 {
            furthest = (stack.len(), op, value);
        }
        let Some((undo, before)) = stack.pop() else {
            return Verdict::Invalid(not_linearizable(key, &ops, furthest));
        };
        value = before;
        linearized.clear(undo);
        line.unlift(undo);
        cursor = line.next[line.call_node[undo]];
    }
    Verdict::Valid
}

fn not_linearizable(key: &str, ops: &[Timed], (depth, blocked, value): (usize, usize, Option<u64>)) -> String {
    let op = ops[blocked].op;
    let shown = |v: Option<u64>| v.map_or("nil".to_string(), |v| v.to_string());
    format!(
        "key {key} is not linearizable: at best {depth} of {} operations can be ordered; then process {} \
         {:?} -> {:?} (invoked at {} ns, completed at {} ns) cannot be, with the register at {}",
        ops.len(),
        op.process,
        op.call,
        op.outcome,
        op.invoke_ns,
        op.complete_ns.map_or("never".into(), |t| t.to_string()),
        shown(value),
    )
}
