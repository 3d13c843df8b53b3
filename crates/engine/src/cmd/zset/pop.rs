//! ZPOPMIN ZPOPMAX ZMPOP BZPOPMIN BZPOPMAX BZMPOP (their immediate
//! attempt), ZRANDMEMBER and ZSCAN.

use bytes::Bytes;

use super::{members, with_scores};
use crate::cmd::args::format_double;
use crate::cmd::rng::Rng;
use crate::cmd::{check_repeats, random_indices, scan_page, scan_reply, Run, ScanArgs};
use crate::reply::{Fault, Out};
use crate::txn::Txn;
use crate::value::ZSetValue;

/// Removes up to `count` members from the low end (the high end with `max`).
fn take(zset: &mut ZSetValue, max: bool, count: u64) -> Vec<(Bytes, f64)> {
    let count = usize::try_from(count).unwrap_or(usize::MAX).min(zset.len());
    (0..count).map_while(|_| zset.pop(max)).collect()
}

/// A popped member as ZMPOP nests it in both protocols: [member, score].
fn pair((member, score): (Bytes, f64)) -> Out {
    Out::Array(vec![Out::Bulk(member), Out::Double(score)])
}

/// ZPOPMIN/ZPOPMAX: [member, score] without a count, pairs with one.
pub(super) fn pop(tx: &mut Txn, key: &Bytes, max: bool, count: Option<u64>) -> Run {
    let Some(zset) = tx.write::<ZSetValue>(key, false)? else { return Ok(Out::Array(vec![])) };
    Ok(match count {
        None => take(zset, max, 1).into_iter().next().map_or(Out::Array(vec![]), pair),
        Some(n) => with_scores(take(zset, max, n).iter().map(|(m, s)| (&m[..], *s))),
    })
}

/// The first of `keys` that exists (all must be sorted sets up to it).
fn first_zset<'t>(tx: &'t mut Txn, keys: &'t [Bytes]) -> Result<Option<(&'t Bytes, &'t mut ZSetValue)>, Fault> {
    for key in keys {
        if tx.exists(key) {
            let zset = tx.write::<ZSetValue>(key, false)?.expect("the key exists");
            return Ok(Some((key, zset)));
        }
    }
    Ok(None)
}

/// ZMPOP and BZMPOP's attempt: [key, [[member, score], …]], or a null array.
pub(super) fn mpop(tx: &mut Txn, keys: &[Bytes], max: bool, count: u64) -> Run {
    let Some((key, zset)) = first_zset(tx, keys)? else { return Ok(Out::NilArray) };
    let popped = take(zset, max, count).into_iter().map(pair).collect();
    Ok(Out::Array(vec![Out::bulk(key), Out::Array(popped)]))
}

/// BZPOPMIN and BZPOPMAX's attempt: [key, member, score], or a null array.
pub(super) fn bpop(tx: &mut Txn, keys: &[Bytes], max: bool) -> Run {
    let Some((key, zset)) = first_zset(tx, keys)? else { return Ok(Out::NilArray) };
    let (member, score) = zset.pop(max).expect("a stored sorted set is not empty");
    Ok(Out::Array(vec![Out::bulk(key), Out::Bulk(member), Out::Double(score)]))
}

/// ZRANDMEMBER. Picks go by position in storage order with the command's
/// random numbers, so every replica picks the same.
pub(super) fn rand_member(tx: &Txn, key: &[u8], count: Option<i64>, scores: bool, rng: &mut Rng) -> Run {
    let Some(zset) = tx.read::<ZSetValue>(key)? else {
        return Ok(if count.is_some() { Out::Array(vec![]) } else { Out::Nil });
    };
    let Some(count) = count else {
        let (member, _) = zset.at(rng.below(zset.len())).expect("a stored sorted set is not empty");
        return Ok(Out::bulk(member));
    };
    check_repeats(count)?;
    let picked: Vec<(&[u8], f64)> = if count > 1 && count as u64 >= zset.len() as u64 {
        // Asking for at least the whole set gets it, highest first, as
        // Redis walks it.
        zset.ordered().rev().collect()
    } else {
        random_indices(zset.len(), count, rng).into_iter().map(|i| zset.at(i).expect("in range")).collect()
    };
    Ok(if scores { with_scores(picked) } else { members(picked) })
}

/// ZSCAN: members with their scores as text. A small set comes whole in
/// order, its scores as its listpack holds them; a large one by cursor,
/// its scores as Redis prints its hashtable's (`%.17g`).
pub(super) fn scan(tx: &Txn, key: &[u8], scan: &ScanArgs) -> Run {
    let Some(zset) = tx.read::<ZSetValue>(key)? else { return Ok(scan_reply(0, vec![])) };
    let mut items = Vec::new();
    let mut emit = |member: &[u8], text: String| {
        if scan.matches(member) {
            items.extend([Out::bulk(member), Out::Bulk(Bytes::from(text))]);
        }
    };
    if zset.encoding() == "listpack" {
        zset.ordered().for_each(|(member, score)| emit(member, listpack_score(score)));
        return Ok(scan_reply(0, items));
    }
    let (positions, next) = scan_page(zset.len(), scan.cursor, scan.count, false);
    for (member, score) in positions.rev().filter_map(|i| zset.at(i)) {
        emit(member, g17(score));
    }
    Ok(scan_reply(next, items))
}

/// A score as a listpack keeps it: an integer when it is one (and within
/// half the i64 range), else the shortest text that reads back the same.
fn listpack_score(score: f64) -> String {
    const HALF: f64 = (i64::MAX / 2) as f64;
    if score.fract() == 0.0 && (-HALF..=HALF).contains(&score) {
        format!("{}", score as i64)
    } else {
        format_double(score)
    }
}

/// C's `%.17g`.
fn g17(d: f64) -> String {
    if !d.is_finite() || d == 0.0 {
        // inf, -inf, 0 and -0 print as format_double prints them.
        return format_double(d);
    }
    let sci = format!("{d:.16e}");
    let (mantissa, exp) = sci.split_once('e').expect("{:e} has an exponent");
    let exp: i32 = exp.parse().expect("{:e} exponent is an integer");
    if (-4..17).contains(&exp) {
        let decimals = usize::try_from(16 - exp).expect("exp < 17");
        trim_zeros(&format!("{d:.decimals$}")).to_string()
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim_zeros(mantissa), exp.abs())
    }
}

/// `%g` drops trailing zeros of the fraction, and the point with them.
fn trim_zeros(text: &str) -> &str {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        text
    }
}
