//! Operations and their outcomes, and the history file: one JSON object per
//! line per event (an `invoke`, then its `ok`, `fail` or `info`), in the
//! order they happened, as Jepsen writes its histories.

use serde::{Deserialize, Serialize};

/// What a client asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// GET of a register.
    Read,
    /// SET of a register to a value no other write uses.
    Write(u64),
    /// `SET key new IFEQ expect`.
    Cas { expect: u64, new: u64 },
    /// Append of a unique element to a set key.
    Add(u64),
    /// The final read of a set key.
    ReadAll,
    /// RPUSH of a unique element to a list key.
    Append(u64),
    /// A read of a whole list key (LRANGE key 0 -1).
    ReadList,
}

/// What came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It happened; for reads and CAS, with this result.
    Ok(Ret),
    /// It certainly did not happen (a redirect or refusal the server
    /// promises was not applied).
    Fail(String),
    /// It may or may not have happened, at any time after its invocation.
    Info(String),
}

/// The result of an `ok` operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ret {
    /// A write or an add was applied.
    Done,
    /// A register read: its value, `None` for a missing key.
    Value(Option<u64>),
    /// A CAS: whether it swapped.
    Swapped(bool),
    /// A final set read or a list read: its elements, in the order stored.
    Elements(Vec<u64>),
}

/// One operation of one client process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    pub process: u32,
    pub key: String,
    pub call: Call,
    /// Nanoseconds since the run started.
    pub invoke_ns: u64,
    /// `None` only for an operation still open when the run ended.
    pub complete_ns: Option<u64>,
    pub outcome: Outcome,
}

/// One line of the history file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub process: u32,
    /// `invoke`, `ok`, `fail` or `info`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `read`, `write`, `cas`, `add`, `read-all`, `append` or `read-list`.
    pub f: String,
    pub key: String,
    pub value: serde_json::Value,
    pub time_ns: u64,
    /// Why an operation failed or is indeterminate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Op {
    /// The operation's two events: its invocation and its completion.
    pub fn events(&self) -> [Event; 2] {
        use serde_json::json;
        let (f, asked) = match &self.call {
            Call::Read => ("read", json!(null)),
            Call::Write(v) => ("write", json!(v)),
            Call::Cas { expect, new } => ("cas", json!([expect, new])),
            Call::Add(e) => ("add", json!(e)),
            Call::ReadAll => ("read-all", json!(null)),
            Call::Append(e) => ("append", json!(e)),
            Call::ReadList => ("read-list", json!(null)),
        };
        let event = |kind: &str, value, time_ns, error| Event {
            process: self.process,
            kind: kind.into(),
            f: f.into(),
            key: self.key.clone(),
            value,
            time_ns,
            error,
        };
        let end = self.complete_ns.unwrap_or(u64::MAX);
        let completion = match &self.outcome {
            Outcome::Ok(Ret::Value(v)) => event("ok", json!(v), end, None),
            Outcome::Ok(Ret::Swapped(swapped)) => event("ok", json!({"cas": asked, "swapped": swapped}), end, None),
            Outcome::Ok(Ret::Elements(e)) => event("ok", json!(e), end, None),
            Outcome::Ok(Ret::Done) => event("ok", asked.clone(), end, None),
            Outcome::Fail(why) => event("fail", asked.clone(), end, Some(why.clone())),
            Outcome::Info(why) => event("info", asked.clone(), end, Some(why.clone())),
        };
        [event("invoke", asked, self.invoke_ns, None), completion]
    }
}

/// Writes a history as JSON lines, every event in time order.
pub fn to_json_lines(ops: &[Op]) -> String {
    let mut events: Vec<Event> = ops.iter().flat_map(Op::events).collect();
    events.sort_by_key(|e| e.time_ns);
    let mut out = String::new();
    for event in events {
        out.push_str(&serde_json::to_string(&event).expect("events serialize"));
        out.push('\n');
    }
    out
}

/// Reads a history written by [`to_json_lines`]: pairs each process's
/// invocation with its next completion.
pub fn from_json_lines(text: &str) -> Result<Vec<Op>, String> {
    let mut open: std::collections::HashMap<u32, Event> = std::collections::HashMap::new();
    let mut ops = Vec::new();
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let event: Event = serde_json::from_str(line).map_err(|e| format!("line {}: {e}", n + 1))?;
        if event.kind == "invoke" {
            if open.insert(event.process, event).is_some() {
                return Err(format!("line {}: process invoked twice without completing", n + 1));
            }
            continue;
        }
        let invoke = open.remove(&event.process).ok_or(format!("line {}: completion without invocation", n + 1))?;
        ops.push(op_of(&invoke, &event).map_err(|e| format!("line {}: {e}", n + 1))?);
    }
    // Invoked and never completed (the run ended first): indeterminate.
    let mut unfinished: Vec<Event> = open.into_values().collect();
    unfinished.sort_by_key(|e| (e.time_ns, e.process));
    for invoke in unfinished {
        let info =
            Event { kind: "info".into(), time_ns: u64::MAX, error: Some("never completed".into()), ..invoke.clone() };
        ops.push(op_of(&invoke, &info)?);
    }
    Ok(ops)
}

fn op_of(invoke: &Event, done: &Event) -> Result<Op, String> {
    let int = |v: &serde_json::Value| v.as_u64().ok_or(format!("expected an integer, got {v}"));
    let call = match invoke.f.as_str() {
        "read" => Call::Read,
        "write" => Call::Write(int(&invoke.value)?),
        "cas" => {
            let pair = invoke.value.as_array().filter(|a| a.len() == 2).ok_or("cas needs [expect, new]")?;
            Call::Cas { expect: int(&pair[0])?, new: int(&pair[1])? }
        }
        "add" => Call::Add(int(&invoke.value)?),
        "read-all" => Call::ReadAll,
        "append" => Call::Append(int(&invoke.value)?),
        "read-list" => Call::ReadList,
        other => return Err(format!("unknown f {other:?}")),
    };
    let why = || done.error.clone().unwrap_or_default();
    let outcome = match (done.kind.as_str(), &call) {
        ("ok", Call::Read) => Outcome::Ok(Ret::Value(match &done.value {
            serde_json::Value::Null => None,
            v => Some(int(v)?),
        })),
        ("ok", Call::Cas { .. }) => {
            Outcome::Ok(Ret::Swapped(done.value["swapped"].as_bool().ok_or("cas ok needs swapped")?))
        }
        ("ok", Call::ReadAll | Call::ReadList) => Outcome::Ok(Ret::Elements(
            done.value
                .as_array()
                .ok_or("a read-all or read-list ok needs a list")?
                .iter()
                .map(int)
                .collect::<Result<_, _>>()?,
        )),
        ("ok", _) => Outcome::Ok(Ret::Done),
        ("fail", _) => Outcome::Fail(why()),
        ("info", _) => Outcome::Info(why()),
        (other, _) => return Err(format!("unknown type {other:?}")),
    };
    Ok(Op {
        process: invoke.process,
        key: invoke.key.clone(),
        call,
        invoke_ns: invoke.time_ns,
        complete_ns: (done.time_ns != u64::MAX).then_some(done.time_ns),
        outcome,
    })
}
