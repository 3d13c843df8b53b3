//! SORT and SORT_RO over a list, set or sorted set: numeric or ALPHA,
//! ASC or DESC, LIMIT, STORE. BY and GET patterns that name other keys
//! are refused: those keys are not known before the command runs, so they
//! could not be locked with it (nor routed in a cluster, where Redis
//! refuses them too); `BY nosort` and `GET #` work.

use std::cmp::Ordering;

use bytes::Bytes;

use super::args::{float, Args};
use super::rng::Rng;
use super::Run;
use crate::reply::{Fault, Out};
use crate::txn::Txn;
use crate::value::{ListValue, Value};

#[derive(Debug, Clone, PartialEq)]
pub struct SortCmd {
    key: Bytes,
    sort: bool,
    limit: Option<(i64, i64)>,
    desc: bool,
    alpha: bool,
    store: Option<Bytes>,
}

const PATTERN_REFUSED: &str =
    "ERR SORT BY and GET patterns that name other keys are not supported (keys must be known before the command runs)";

impl SortCmd {
    pub(super) fn parse(name: &str, a: &mut Args) -> Option<Result<SortCmd, Fault>> {
        if name != "sort" && name != "sort_ro" {
            return None;
        }
        Some(parse(a, name == "sort_ro"))
    }

    pub(super) fn keys(&self) -> Vec<&Bytes> {
        std::iter::once(&self.key).chain(&self.store).collect()
    }

    pub(super) fn run(&self, tx: &mut Txn, _rng: &mut Rng) -> Run {
        let mut items: Vec<(Bytes, f64)> = match tx.get(&self.key) {
            None => vec![],
            Some(Value::List(l)) => l.iter().map(|i| (Bytes::copy_from_slice(i), 0.0)).collect(),
            Some(Value::Set(s)) => s.iter().map(|m| (Bytes::copy_from_slice(m), 0.0)).collect(),
            // Without sorting, a sorted set keeps its own order.
            Some(Value::ZSet(z)) => z.ordered().map(|(m, s)| (Bytes::copy_from_slice(m), s)).collect(),
            Some(_) => return Err(Fault::WrongType),
        };
        if self.sort {
            if !self.alpha {
                for (item, score) in items.iter_mut() {
                    *score = float(item)
                        .ok_or_else(|| Fault::other("ERR One or more scores can't be converted into double"))?;
                }
            }
            items.sort_by(|a, b| self.compare(a, b));
        } else if self.desc {
            items.reverse();
        }
        let items = window(items, self.limit);
        match &self.store {
            None => Ok(Out::bulks(items.iter().map(|(i, _)| i))),
            Some(dest) => {
                let n = items.len();
                if n == 0 {
                    tx.delete(dest);
                } else {
                    let mut list = ListValue::default();
                    items.into_iter().for_each(|(i, _)| list.push_back(i));
                    tx.put(dest, Value::List(Box::new(list)), None);
                }
                Ok(Out::len(n))
            }
        }
    }

    fn compare(&self, a: &(Bytes, f64), b: &(Bytes, f64)) -> Ordering {
        // Equal scores fall back to the bytes, so the order is defined.
        let order = if self.alpha { a.0.cmp(&b.0) } else { a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)) };
        if self.desc {
            order.reverse()
        } else {
            order
        }
    }
}

/// LIMIT offset count, Redis's clamping (a negative count: to the end).
fn window(items: Vec<(Bytes, f64)>, limit: Option<(i64, i64)>) -> Vec<(Bytes, f64)> {
    let Some((offset, count)) = limit else { return items };
    let start = (offset.max(0) as usize).min(items.len());
    let take = if count < 0 { items.len() } else { count as usize };
    items.into_iter().skip(start).take(take).collect()
}

fn parse(a: &mut Args, read_only: bool) -> Result<SortCmd, Fault> {
    let key = a.take()?;
    let mut cmd = SortCmd { key, sort: true, limit: None, desc: false, alpha: false, store: None };
    while !a.is_empty() {
        if a.eat("asc") {
            cmd.desc = false;
        } else if a.eat("desc") {
            cmd.desc = true;
        } else if a.eat("alpha") {
            cmd.alpha = true;
        } else if a.eat("limit") {
            cmd.limit = Some((a.i64()?, a.i64()?));
        } else if !read_only && a.eat("store") {
            cmd.store = Some(a.take()?);
        } else if a.eat("by") {
            let pattern = a.take()?;
            if pattern.contains(&b'*') {
                return Err(Fault::other(PATTERN_REFUSED));
            }
            cmd.sort = false;
        } else if a.eat("get") {
            if &a.take()?[..] != b"#" {
                return Err(Fault::other(PATTERN_REFUSED));
            }
        } else {
            return Err(Fault::Syntax);
        }
    }
    Ok(cmd)
}
