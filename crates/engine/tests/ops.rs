//! Edge cases of every public `Db` operation. Time is always passed
//! explicitly: the engine has no clock of its own.

use std::collections::HashSet;

use bytes::Bytes;
use shoal_engine::slot::{key_slot, SLOT_COUNT};
use shoal_engine::{
    parse_i64, Db, DelCondition, ExpireCondition, GetExExpiry, IncrError, SetCondition, SetExpiry, SetOptions,
    SetOutcome, Ttl, STRIPES,
};

/// An arbitrary "current time" well away from zero, so that "in the past"
/// never underflows.
const NOW: u64 = 1_000_000;

fn b(s: impl AsRef<[u8]>) -> Bytes {
    Bytes::copy_from_slice(s.as_ref())
}

fn get(db: &Db, key: &[u8], now: u64) -> Option<Vec<u8>> {
    db.get(key, now).map(|v| v.to_vec())
}

fn some(s: impl AsRef<[u8]>) -> Option<Vec<u8>> {
    Some(s.as_ref().to_vec())
}

fn opts(condition: SetCondition, expiry: SetExpiry) -> SetOptions {
    SetOptions { condition, expiry, ..Default::default() }
}

fn set(db: &Db, key: &str, value: &str, o: SetOptions, now: u64) -> SetOutcome {
    db.set(b(key), b(value), &o, now)
}

/// SET key value PXAT at.
fn set_px(db: &Db, key: &str, value: &str, at: u64, now: u64) {
    let out = set(db, key, value, opts(SetCondition::Always, SetExpiry::At(at)), now);
    assert!(out.written);
}

fn sorted(mut keys: Vec<Bytes>) -> Vec<Vec<u8>> {
    keys.sort();
    keys.into_iter().map(|k| k.to_vec()).collect()
}

fn keys_of(db: &Db, pattern: &str, now: u64) -> Vec<Vec<u8>> {
    sorted(db.keys(pattern.as_bytes(), now))
}

fn vecs(items: &[&str]) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = items.iter().map(|s| s.as_bytes().to_vec()).collect();
    v.sort();
    v
}

// ---- basic get / put / delete -----------------------------------------------

#[test]
fn new_db_is_empty() {
    let db = Db::new();
    assert!(db.is_empty());
    assert_eq!(db.len(), 0);
    assert_eq!(db.volatile_len(), 0);
    assert_eq!(db.get(b"k", NOW), None);
    assert!(!db.exists(b"k", NOW));
    assert_eq!(db.ttl(b"k", NOW), Ttl::Missing);
    assert_eq!(db.strlen(b"k", NOW), Ok(0));
    assert!(db.keys(b"*", NOW).is_empty());
    assert_eq!(db.scan(0, None, 10, NOW), (0, vec![]));
    assert!(Db::default().is_empty());
}

#[test]
fn empty_key_is_an_ordinary_key() {
    let db = Db::new();
    db.put(b(""), b("v"), NOW);
    assert_eq!(get(&db, b"", NOW), some("v"));
    assert!(db.exists(b"", NOW));
    assert_eq!(db.strlen(b"", NOW), Ok(1));
    assert_eq!(db.ttl(b"", NOW), Ttl::Persistent);
    assert_eq!(db.len(), 1);
    assert_eq!(keys_of(&db, "*", NOW), vec![Vec::<u8>::new()]);
    assert_eq!(keys_of(&db, "", NOW), vec![Vec::<u8>::new()]);
    assert_eq!(keys_of(&db, "?", NOW), Vec::<Vec<u8>>::new());
    assert_eq!(db.incr_by(b(""), 1, NOW), Err(IncrError::NotInteger));
    assert_eq!(db.append(b(""), b"w", 100, NOW), Ok(2));
    assert_eq!(get(&db, b"", NOW), some("vw"));
    assert!(db.delete(b"", NOW));
    assert!(!db.exists(b"", NOW));
    assert!(db.is_empty());
}

#[test]
fn empty_value_is_present_not_missing() {
    let db = Db::new();
    db.put(b("k"), b(""), NOW);
    assert_eq!(get(&db, b"k", NOW), some(""));
    assert!(db.exists(b"k", NOW));
    assert_eq!(db.strlen(b"k", NOW), Ok(0));
    assert_eq!(db.count_existing(&[b("k")], NOW), 1);
    assert_eq!(db.get_many(&[b("k")], NOW), vec![Some(b(""))]);
    // NX sees the empty value as present.
    let out = set(&db, "k", "x", opts(SetCondition::IfAbsent, SetExpiry::Clear), NOW);
    assert_eq!(out, SetOutcome { written: false, old: Some(b("")) });
    // IFEQ "" matches the empty value.
    let out = set(&db, "k", "x", opts(SetCondition::IfEqual(b("")), SetExpiry::Clear), NOW);
    assert_eq!(out, SetOutcome { written: true, old: Some(b("")) });
    assert_eq!(get(&db, b"k", NOW), some("x"));
    // An empty value is not an integer.
    db.put(b("k"), b(""), NOW);
    assert_eq!(db.incr_by(b("k"), 1, NOW), Err(IncrError::NotInteger));
    assert_eq!(db.get_delete(b"k", NOW), Some(b("")));
    assert!(!db.exists(b"k", NOW));
}

#[test]
fn binary_keys_and_values_are_kept_exactly() {
    let db = Db::new();
    let key = b(b"\x00\xff\r\n*?[");
    let value = b(b"\x00\x00\xfe");
    db.put(key.clone(), value.clone(), NOW);
    assert_eq!(db.get(&key, NOW), Some(value.clone()));
    assert_eq!(db.get(b"\x00\xff\r\n*?", NOW), None);
    assert_eq!(db.strlen(&key, NOW), Ok(3));
    assert_eq!(db.keys(b"*", NOW), vec![key.clone()]);
    assert_eq!(db.keys(b"\x00\xff\r\n\\*\\?\\[", NOW), vec![key]);
}

#[test]
fn overwrite_replaces_value_and_clears_expiry() {
    let db = Db::new();
    db.put(b("k"), b("v1"), NOW);
    db.put(b("k"), b("v2"), NOW);
    assert_eq!(get(&db, b"k", NOW), some("v2"));
    assert_eq!(db.len(), 1);

    set_px(&db, "k", "v3", NOW + 100, NOW);
    assert_eq!(db.ttl(b"k", NOW), Ttl::ExpiresIn(100));
    assert_eq!(db.volatile_len(), 1);
    db.put(b("k"), b("v4"), NOW);
    assert_eq!(db.ttl(b"k", NOW), Ttl::Persistent);
    assert_eq!(db.volatile_len(), 0);
    // Still there after the old expiry.
    assert_eq!(get(&db, b"k", NOW + 1_000), some("v4"));
    assert_eq!(db.len(), 1);
}

#[test]
fn put_over_an_expired_key_revives_it_without_expiry() {
    let db = Db::new();
    set_px(&db, "k", "old", NOW + 10, NOW);
    db.put(b("k"), b("new"), NOW + 20);
    assert_eq!(get(&db, b"k", NOW + 20), some("new"));
    assert_eq!(db.ttl(b"k", NOW + 20), Ttl::Persistent);
    assert_eq!(db.len(), 1);
    assert_eq!(db.volatile_len(), 0);
    assert_eq!(db.sweep_expired(NOW + 1_000, 100), 0);
    assert_eq!(get(&db, b"k", NOW + 1_000), some("new"));
}

#[test]
fn stored_value_does_not_alias_the_callers_buffer() {
    let db = Db::new();
    let buffer = Bytes::from(b"keyvalue-and-lots-more".to_vec());
    db.put(buffer.slice(0..3), buffer.slice(3..8), NOW);
    drop(buffer);
    assert_eq!(get(&db, b"key", NOW), some("value"));
}

#[test]
fn delete_of_missing_and_expired_keys() {
    let db = Db::new();
    assert!(!db.delete(b"missing", NOW));
    assert_eq!(db.get_delete(b"missing", NOW), None);
    assert!(!db.delete_if(b"missing", &DelCondition::Always, NOW));

    set_px(&db, "k", "v", NOW + 5, NOW);
    assert_eq!(db.len(), 1);
    // Expired: not counted as a deletion, but the dead entry goes.
    assert!(!db.delete(b"k", NOW + 6));
    assert_eq!(db.len(), 0);
    assert_eq!(db.volatile_len(), 0);

    set_px(&db, "k", "v", NOW + 5, NOW);
    assert_eq!(db.get_delete(b"k", NOW + 6), None);
    assert_eq!(db.len(), 0);

    db.put(b("k"), b("v"), NOW);
    assert!(db.delete(b"k", NOW));
    assert!(!db.delete(b"k", NOW));
    assert!(db.is_empty());
}

#[test]
fn get_delete_returns_the_value_once() {
    let db = Db::new();
    set_px(&db, "k", "v", NOW + 5, NOW);
    assert_eq!(db.get_delete(b"k", NOW + 5), Some(b("v")));
    assert_eq!(db.get_delete(b"k", NOW + 5), None);
    assert_eq!(db.len(), 0);
    assert_eq!(db.volatile_len(), 0);
}

#[test]
fn delete_if_conditions() {
    let db = Db::new();
    db.put(b("k"), b("v"), NOW);
    assert!(!db.delete_if(b"k", &DelCondition::IfEqual(b("x")), NOW));
    assert!(!db.delete_if(b"k", &DelCondition::IfNotEqual(b("v")), NOW));
    assert!(db.exists(b"k", NOW));
    assert!(db.delete_if(b"k", &DelCondition::IfEqual(b("v")), NOW));
    assert!(!db.exists(b"k", NOW));

    db.put(b("k"), b("v"), NOW);
    assert!(db.delete_if(b"k", &DelCondition::IfNotEqual(b("x")), NOW));
    assert!(!db.exists(b"k", NOW));

    db.put(b("k"), b("v"), NOW);
    assert!(db.delete_if(b"k", &DelCondition::Always, NOW));
    assert!(!db.exists(b"k", NOW));

    // A missing key satisfies no condition, not even IFNE.
    assert!(!db.delete_if(b"k", &DelCondition::IfNotEqual(b("x")), NOW));
    // Nor does an expired one.
    set_px(&db, "k", "v", NOW, NOW);
    assert!(!db.delete_if(b"k", &DelCondition::IfEqual(b("v")), NOW + 1));
    assert!(!db.delete_if(b"k", &DelCondition::Always, NOW + 1));
}

// ---- INCRBY -----------------------------------------------------------------

#[test]
fn incr_on_missing_key_starts_from_zero() {
    let db = Db::new();
    assert_eq!(db.incr_by(b("n"), 5, NOW), Ok(5));
    assert_eq!(db.incr_by(b("n"), -7, NOW), Ok(-2));
    assert_eq!(get(&db, b"n", NOW), some("-2"));
    assert_eq!(db.ttl(b"n", NOW), Ttl::Persistent);
    assert_eq!(db.incr_by(b("m"), 0, NOW), Ok(0));
    assert_eq!(get(&db, b"m", NOW), some("0"));
    assert_eq!(db.incr_by(b("min"), i64::MIN, NOW), Ok(i64::MIN));
    assert_eq!(get(&db, b"min", NOW), some(i64::MIN.to_string()));
}

#[test]
fn incr_accepts_only_canonical_integers() {
    let db = Db::new();
    for bad in [
        "abc",
        " 1",
        "1 ",
        "01",
        "-0",
        "+1",
        "1.5",
        "",
        "-",
        "00",
        "-01",
        "1e3",
        "0x10",
        "9223372036854775808",
        "-9223372036854775809",
        "99999999999999999999",
        "١",
    ] {
        db.put(b("k"), b(bad), NOW);
        assert_eq!(db.incr_by(b("k"), 1, NOW), Err(IncrError::NotInteger), "{bad:?}");
        assert_eq!(get(&db, b"k", NOW), some(bad), "{bad:?} must be left unchanged");
        assert_eq!(parse_i64(bad.as_bytes()), None, "{bad:?}");
    }
    db.put(b("k"), b(b"1\x00"), NOW);
    assert_eq!(db.incr_by(b("k"), 1, NOW), Err(IncrError::NotInteger));

    for (good, n) in [
        ("0", 0),
        ("7", 7),
        ("-7", -7),
        ("10", 10),
        ("9223372036854775807", i64::MAX),
        ("-9223372036854775808", i64::MIN),
    ] {
        assert_eq!(parse_i64(good.as_bytes()), Some(n), "{good:?}");
        db.put(b("k"), b(good), NOW);
        assert_eq!(db.incr_by(b("k"), 0, NOW), Ok(n), "{good:?}");
        assert_eq!(get(&db, b"k", NOW), some(good));
    }
}

#[test]
fn incr_overflow_leaves_value_unchanged() {
    let db = Db::new();
    db.put(b("k"), b(i64::MAX.to_string()), NOW);
    assert_eq!(db.incr_by(b("k"), 1, NOW), Err(IncrError::Overflow));
    assert_eq!(get(&db, b"k", NOW), some(i64::MAX.to_string()));
    assert_eq!(db.incr_by(b("k"), i64::MAX, NOW), Err(IncrError::Overflow));
    assert_eq!(db.incr_by(b("k"), -1, NOW), Ok(i64::MAX - 1));

    db.put(b("k"), b(i64::MIN.to_string()), NOW);
    assert_eq!(db.incr_by(b("k"), -1, NOW), Err(IncrError::Overflow));
    assert_eq!(get(&db, b"k", NOW), some(i64::MIN.to_string()));
    assert_eq!(db.incr_by(b("k"), i64::MIN, NOW), Err(IncrError::Overflow));
    assert_eq!(db.incr_by(b("k"), i64::MAX, NOW), Ok(-1));

    // Overflow keeps the expiry too.
    set_px(&db, "v", &i64::MAX.to_string(), NOW + 50, NOW);
    assert_eq!(db.incr_by(b("v"), 1, NOW), Err(IncrError::Overflow));
    assert_eq!(db.ttl(b"v", NOW), Ttl::ExpiresIn(50));
}

#[test]
fn incr_keeps_the_ttl() {
    let db = Db::new();
    set_px(&db, "k", "10", NOW + 100, NOW);
    assert_eq!(db.incr_by(b("k"), 5, NOW + 10), Ok(15));
    assert_eq!(db.ttl(b"k", NOW + 10), Ttl::ExpiresIn(90));
    assert_eq!(db.volatile_len(), 1);
    // And the key still expires on time.
    assert_eq!(get(&db, b"k", NOW + 100), some("15"));
    assert_eq!(get(&db, b"k", NOW + 101), None);
    // Once expired, INCR starts a fresh persistent counter.
    assert_eq!(db.incr_by(b("k"), 1, NOW + 101), Ok(1));
    assert_eq!(db.ttl(b"k", NOW + 101), Ttl::Persistent);
    assert_eq!(db.volatile_len(), 0);
    assert_eq!(db.sweep_expired(NOW + 10_000, 100), 0);
    assert_eq!(get(&db, b"k", NOW + 10_000), some("1"));
}

// ---- expiry boundary --------------------------------------------------------

#[test]
fn key_is_visible_at_its_expiry_and_gone_one_ms_later() {
    const T: u64 = NOW + 100;
    let db = Db::new();
    set_px(&db, "k", "v", T, NOW);

    assert_eq!(get(&db, b"k", T - 1), some("v"));
    assert_eq!(get(&db, b"k", T), some("v"));
    assert!(db.exists(b"k", T));
    assert_eq!(db.ttl(b"k", T), Ttl::ExpiresIn(0));
    assert_eq!(db.strlen(b"k", T), Ok(1));
    assert_eq!(db.count_existing(&[b("k")], T), 1);
    assert_eq!(db.get_many(&[b("k")], T), vec![Some(b("v"))]);
    assert_eq!(keys_of(&db, "*", T), vecs(&["k"]));
    assert_eq!(db.scan(0, None, 100, T).1, vec![b("k")]);
    assert_eq!(db.sweep_expired(T, 100), 0);

    assert_eq!(get(&db, b"k", T + 1), None);
    assert!(!db.exists(b"k", T + 1));
    assert_eq!(db.ttl(b"k", T + 1), Ttl::Missing);
    assert_eq!(db.strlen(b"k", T + 1), Ok(0));
    assert_eq!(db.count_existing(&[b("k")], T + 1), 0);
    assert_eq!(db.get_many(&[b("k")], T + 1), vec![None]);
    assert!(db.keys(b"*", T + 1).is_empty());
    assert!(db.scan(0, None, 100, T + 1).1.is_empty());
    assert!(db.dump(T + 1) == Db::new().dump(T + 1));

    // Reads never remove: the entry is still stored until swept.
    assert_eq!(db.len(), 1);
    assert_eq!(db.sweep_expired(T + 1, 100), 1);
    assert_eq!(db.len(), 0);
}

#[test]
fn ttl_counts_down() {
    let db = Db::new();
    set_px(&db, "k", "v", NOW + 1_500, NOW);
    assert_eq!(db.ttl(b"k", NOW), Ttl::ExpiresIn(1_500));
    assert_eq!(db.ttl(b"k", NOW + 1_000), Ttl::ExpiresIn(500));
    db.put(b("p"), b("v"), NOW);
    assert_eq!(db.ttl(b"p", NOW), Ttl::Persistent);
    assert_eq!(db.ttl(b"q", NOW), Ttl::Missing);
}

/// An expiry at the very end of time must still be an expiry: the engine
/// stores `u64::MAX` ms one millisecond earlier (it uses `u64::MAX` itself for
/// "no expiry"), and every way of changing or removing such a key keeps
/// `volatile_len` right.
#[test]
fn expiry_at_u64_max_is_consistent() {
    const LATEST: u64 = u64::MAX - 1;
    let db = Db::new();
    let at_max = || opts(SetCondition::Always, SetExpiry::At(u64::MAX));
    assert!(set(&db, "k", "v", at_max(), NOW).written);
    assert_eq!(db.ttl(b"k", NOW), Ttl::ExpiresIn(LATEST - NOW));
    assert_eq!(db.volatile_len(), 1);
    assert_eq!(get(&db, b"k", LATEST), some("v"));
    assert!(db.persist(b"k", NOW));
    assert_eq!(db.ttl(b"k", NOW), Ttl::Persistent);
    assert_eq!(db.volatile_len(), 0);

    assert!(db.expire_at(b"k", u64::MAX, ExpireCondition::IfNone, NOW));
    assert_eq!(db.ttl(b"k", NOW), Ttl::ExpiresIn(LATEST - NOW));
    assert_eq!(db.volatile_len(), 1);
    assert!(!db.expire_at(b"k", u64::MAX, ExpireCondition::IfNone, NOW));
    assert!(db.expire_at(b"k", NOW + 5, ExpireCondition::IfLess, NOW));
    assert_eq!(db.ttl(b"k", NOW), Ttl::ExpiresIn(5));
    assert_eq!(db.volatile_len(), 1);
    assert!(db.expire_at(b"k", u64::MAX, ExpireCondition::IfGreater, NOW));
    assert_eq!(db.volatile_len(), 1);
    assert_eq!(db.get_ex(b"k", GetExExpiry::At(u64::MAX), NOW), Some(b("v")));
    assert_eq!(db.ttl(b"k", NOW), Ttl::ExpiresIn(LATEST - NOW));
    assert_eq!(db.volatile_len(), 1);

    assert!(db.delete(b"k", NOW));
    assert_eq!(db.volatile_len(), 0);
    assert!(db.is_empty());

    assert!(set(&db, "k", "v", at_max(), NOW).written);
    db.put(b("k"), b("w"), NOW);
    assert_eq!(db.volatile_len(), 0);
    assert!(set(&db, "k", "v", at_max(), NOW).written);
    assert!(db.expire_at(b"k", NOW + 5, ExpireCondition::Always, NOW));
    assert_eq!(db.sweep_expired(NOW + 6, usize::MAX), 1);
    assert!(db.is_empty());
    assert_eq!(db.volatile_len(), 0);

    assert!(set(&db, "k", "v", at_max(), NOW).written);
    let copy = Db::new();
    copy.restore(&db.dump(NOW), NOW).unwrap();
    assert_eq!(copy.ttl(b"k", NOW), Ttl::ExpiresIn(LATEST - NOW));
    assert_eq!(copy.volatile_len(), 1);
    db.clear();
    assert_eq!(db.volatile_len(), 0);
}

// ---- SET --------------------------------------------------------------------

#[test]
fn set_nx() {
    let db = Db::new();
    let nx = || opts(SetCondition::IfAbsent, SetExpiry::Clear);
    assert_eq!(set(&db, "k", "a", nx(), NOW), SetOutcome { written: true, old: None });
    assert_eq!(set(&db, "k", "b", nx(), NOW), SetOutcome { written: false, old: Some(b("a")) });
    assert_eq!(get(&db, b"k", NOW), some("a"));
    // An expired key is absent.
    set_px(&db, "e", "old", NOW, NOW);
    assert_eq!(set(&db, "e", "new", nx(), NOW + 1), SetOutcome { written: true, old: None });
    assert_eq!(get(&db, b"e", NOW + 1), some("new"));
    assert_eq!(db.ttl(b"e", NOW + 1), Ttl::Persistent);
}

#[test]
fn set_xx() {
    let db = Db::new();
    let xx = || opts(SetCondition::IfPresent, SetExpiry::Clear);
    assert_eq!(set(&db, "k", "a", xx(), NOW), SetOutcome { written: false, old: None });
    assert!(!db.exists(b"k", NOW));
    assert_eq!(db.len(), 0);
    db.put(b("k"), b("a"), NOW);
    assert_eq!(set(&db, "k", "b", xx(), NOW), SetOutcome { written: true, old: Some(b("a")) });
    assert_eq!(get(&db, b"k", NOW), some("b"));
    set_px(&db, "e", "old", NOW, NOW);
    assert_eq!(set(&db, "e", "new", xx(), NOW + 1), SetOutcome { written: false, old: None });
    assert!(!db.exists(b"e", NOW + 1));
}

#[test]
fn set_ifeq() {
    let db = Db::new();
    let ifeq = |v: &str| opts(SetCondition::IfEqual(b(v)), SetExpiry::Clear);
    // Missing key: not created.
    assert_eq!(set(&db, "k", "a", ifeq("a"), NOW), SetOutcome { written: false, old: None });
    assert_eq!(set(&db, "k", "a", ifeq(""), NOW), SetOutcome { written: false, old: None });
    assert!(!db.exists(b"k", NOW));
    assert_eq!(db.len(), 0);

    db.put(b("k"), b("a"), NOW);
    assert_eq!(set(&db, "k", "b", ifeq("x"), NOW), SetOutcome { written: false, old: Some(b("a")) });
    assert_eq!(get(&db, b"k", NOW), some("a"));
    assert_eq!(set(&db, "k", "b", ifeq("a"), NOW), SetOutcome { written: true, old: Some(b("a")) });
    assert_eq!(get(&db, b"k", NOW), some("b"));
    // Expired key counts as missing.
    set_px(&db, "k", "c", NOW, NOW);
    assert_eq!(set(&db, "k", "d", ifeq("c"), NOW + 1), SetOutcome { written: false, old: None });
    assert!(!db.exists(b"k", NOW + 1));
}

#[test]
fn set_ifne() {
    let db = Db::new();
    let ifne = |v: &str| opts(SetCondition::IfNotEqual(b(v)), SetExpiry::Clear);
    // Missing key: created.
    assert_eq!(set(&db, "k", "a", ifne("a"), NOW), SetOutcome { written: true, old: None });
    assert_eq!(get(&db, b"k", NOW), some("a"));
    assert_eq!(set(&db, "k", "b", ifne("a"), NOW), SetOutcome { written: false, old: Some(b("a")) });
    assert_eq!(get(&db, b"k", NOW), some("a"));
    assert_eq!(set(&db, "k", "b", ifne("x"), NOW), SetOutcome { written: true, old: Some(b("a")) });
    assert_eq!(get(&db, b"k", NOW), some("b"));
    // Expired key counts as missing, so IFNE of its old value still writes.
    set_px(&db, "k", "c", NOW, NOW);
    assert_eq!(set(&db, "k", "d", ifne("c"), NOW + 1), SetOutcome { written: true, old: None });
    assert_eq!(get(&db, b"k", NOW + 1), some("d"));
}

#[test]
fn set_always_returns_old_value() {
    let db = Db::new();
    let always = || SetOptions::default();
    assert_eq!(set(&db, "k", "a", always(), NOW), SetOutcome { written: true, old: None });
    assert_eq!(set(&db, "k", "b", always(), NOW), SetOutcome { written: true, old: Some(b("a")) });
}

#[test]
fn set_keepttl_vs_clear() {
    let db = Db::new();
    set_px(&db, "k", "a", NOW + 100, NOW);

    let out = set(&db, "k", "b", opts(SetCondition::Always, SetExpiry::Keep), NOW + 10);
    assert!(out.written);
    assert_eq!(get(&db, b"k", NOW + 10), some("b"));
    assert_eq!(db.ttl(b"k", NOW + 10), Ttl::ExpiresIn(90));
    assert_eq!(db.volatile_len(), 1);
    assert_eq!(get(&db, b"k", NOW + 101), None);

    set_px(&db, "k", "a", NOW + 100, NOW);
    let out = set(&db, "k", "c", opts(SetCondition::Always, SetExpiry::Clear), NOW + 10);
    assert!(out.written);
    assert_eq!(db.ttl(b"k", NOW + 10), Ttl::Persistent);
    assert_eq!(db.volatile_len(), 0);
    assert_eq!(get(&db, b"k", NOW + 101), some("c"));

    // KEEPTTL on a missing key makes a persistent key.
    let out = set(&db, "new", "v", opts(SetCondition::Always, SetExpiry::Keep), NOW);
    assert!(out.written);
    assert_eq!(db.ttl(b"new", NOW), Ttl::Persistent);

    // KEEPTTL on an expired key: the old TTL is gone with the old key.
    set_px(&db, "e", "v", NOW, NOW);
    set(&db, "e", "w", opts(SetCondition::Always, SetExpiry::Keep), NOW + 1);
    assert_eq!(get(&db, b"e", NOW + 1), some("w"));
    assert_eq!(db.ttl(b"e", NOW + 1), Ttl::Persistent);

    // A refused conditional SET does not touch the TTL either.
    set_px(&db, "k", "a", NOW + 100, NOW);
    let out = set(&db, "k", "z", opts(SetCondition::IfAbsent, SetExpiry::Clear), NOW);
    assert!(!out.written);
    assert_eq!(db.ttl(b"k", NOW), Ttl::ExpiresIn(100));
}

#[test]
fn set_with_new_expiry_replaces_old_one() {
    let db = Db::new();
    set_px(&db, "k", "a", NOW + 100, NOW);
    set_px(&db, "k", "b", NOW + 5, NOW);
    assert_eq!(db.ttl(b"k", NOW), Ttl::ExpiresIn(5));
    assert_eq!(db.volatile_len(), 1);
    assert_eq!(get(&db, b"k", NOW + 6), None);
    assert_eq!(db.sweep_expired(NOW + 6, 100), 1);
    assert!(db.is_empty());
    assert_eq!(db.volatile_len(), 0);
}

#[test]
fn set_with_expiry_in_the_past_removes_the_key() {
    let db = Db::new();
    db.put(b("k"), b("a"), NOW);
    let out = set(&db, "k", "b", opts(SetCondition::Always, SetExpiry::At(NOW - 1)), NOW);
    assert_eq!(out, SetOutcome { written: true, old: Some(b("a")) });
    assert!(!db.exists(b"k", NOW));
    // Removed outright, not left for the sweeper.
    assert_eq!(db.len(), 0);
    assert_eq!(db.volatile_len(), 0);

    // On a missing key: nothing is stored.
    let out = set(&db, "m", "b", opts(SetCondition::Always, SetExpiry::At(0)), NOW);
    assert!(out.written);
    assert_eq!(db.len(), 0);

    // Expiry exactly now: still visible now, gone a millisecond later.
    set_px(&db, "n", "v", NOW, NOW);
    assert_eq!(get(&db, b"n", NOW), some("v"));
    assert_eq!(get(&db, b"n", NOW + 1), None);

    // A refused SET with a past expiry leaves the key alone.
    db.put(b("k"), b("a"), NOW);
    let out = set(&db, "k", "b", opts(SetCondition::IfAbsent, SetExpiry::At(NOW - 1)), NOW);
    assert!(!out.written);
    assert_eq!(get(&db, b"k", NOW), some("a"));
}

// ---- GETEX ------------------------------------------------------------------

#[test]
fn get_ex_variants() {
    let db = Db::new();
    for e in [GetExExpiry::Keep, GetExExpiry::Persist, GetExExpiry::At(NOW + 1)] {
        assert_eq!(db.get_ex(b"missing", e, NOW), None);
    }
    assert!(db.is_empty());

    set_px(&db, "k", "v", NOW + 100, NOW);
    assert_eq!(db.get_ex(b"k", GetExExpiry::Keep, NOW), Some(b("v")));
    assert_eq!(db.ttl(b"k", NOW), Ttl::ExpiresIn(100));

    assert_eq!(db.get_ex(b"k", GetExExpiry::At(NOW + 300), NOW), Some(b("v")));
    assert_eq!(db.ttl(b"k", NOW), Ttl::ExpiresIn(300));
    assert_eq!(db.volatile_len(), 1);

    assert_eq!(db.get_ex(b"k", GetExExpiry::Persist, NOW), Some(b("v")));
    assert_eq!(db.ttl(b"k", NOW), Ttl::Persistent);
    assert_eq!(db.volatile_len(), 0);
    assert_eq!(get(&db, b"k", NOW + 10_000), some("v"));

    // Persist on a persistent key is harmless.
    assert_eq!(db.get_ex(b"k", GetExExpiry::Persist, NOW), Some(b("v")));
    assert_eq!(db.ttl(b"k", NOW), Ttl::Persistent);

    // PXAT in the past: returns the value and deletes the key.
    assert_eq!(db.get_ex(b"k", GetExExpiry::At(NOW - 1), NOW), Some(b("v")));
    assert!(!db.exists(b"k", NOW));
    assert_eq!(db.len(), 0);

    // PXAT exactly now counts as already expired (Redis checkAlreadyExpired).
    db.put(b("k"), b("v"), NOW);
    assert_eq!(db.get_ex(b"k", GetExExpiry::At(NOW), NOW), Some(b("v")));
    assert!(!db.exists(b"k", NOW));

    // An expired key is missing to GETEX.
    set_px(&db, "e", "v", NOW, NOW);
    assert_eq!(db.get_ex(b"e", GetExExpiry::Persist, NOW + 1), None);
    assert!(!db.exists(b"e", NOW + 1));
}

// ---- EXPIRE / PERSIST -------------------------------------------------------

#[test]
fn expire_at_always() {
    let db = Db::new();
    assert!(!db.expire_at(b"missing", NOW + 10, ExpireCondition::Always, NOW));
    assert!(db.is_empty());

    db.put(b("k"), b("v"), NOW);
    assert!(db.expire_at(b"k", NOW + 10, ExpireCondition::Always, NOW));
    assert_eq!(db.ttl(b"k", NOW), Ttl::ExpiresIn(10));
    assert_eq!(db.volatile_len(), 1);
    assert!(db.expire_at(b"k", NOW + 20, ExpireCondition::Always, NOW));
    assert_eq!(db.ttl(b"k", NOW), Ttl::ExpiresIn(20));
    assert_eq!(db.volatile_len(), 1);
    assert_eq!(get(&db, b"k", NOW + 20), some("v"));
    assert_eq!(get(&db, b"k", NOW + 21), None);
    // Expired keys can't get an expiry.
    assert!(!db.expire_at(b"k", NOW + 100, ExpireCondition::Always, NOW + 21));
    assert_eq!(get(&db, b"k", NOW + 21), None);
}

#[test]
fn expire_at_in_the_past_or_now_deletes() {
    let db = Db::new();
    db.put(b("k"), b("v"), NOW);
    assert!(db.expire_at(b"k", NOW - 1, ExpireCondition::Always, NOW));
    assert!(!db.exists(b"k", NOW));
    assert_eq!(db.len(), 0);

    set_px(&db, "k", "v", NOW + 50, NOW);
    assert!(db.expire_at(b"k", NOW, ExpireCondition::Always, NOW));
    assert!(!db.exists(b"k", NOW));
    assert_eq!(db.len(), 0);
    assert_eq!(db.volatile_len(), 0);

    db.put(b("k"), b("v"), NOW);
    assert!(db.expire_at(b"k", 0, ExpireCondition::Always, NOW));
    assert!(db.is_empty());
}

#[test]
fn expire_at_nx_xx() {
    let db = Db::new();
    db.put(b("p"), b("v"), NOW);
    set_px(&db, "t", "v", NOW + 100, NOW);

    assert!(!db.expire_at(b"p", NOW + 10, ExpireCondition::IfSome, NOW));
    assert_eq!(db.ttl(b"p", NOW), Ttl::Persistent);
    assert!(!db.expire_at(b"t", NOW + 10, ExpireCondition::IfNone, NOW));
    assert_eq!(db.ttl(b"t", NOW), Ttl::ExpiresIn(100));

    assert!(db.expire_at(b"t", NOW + 10, ExpireCondition::IfSome, NOW));
    assert_eq!(db.ttl(b"t", NOW), Ttl::ExpiresIn(10));
    assert!(db.expire_at(b"p", NOW + 10, ExpireCondition::IfNone, NOW));
    assert_eq!(db.ttl(b"p", NOW), Ttl::ExpiresIn(10));

    assert!(!db.expire_at(b"missing", NOW + 10, ExpireCondition::IfNone, NOW));
    assert!(!db.expire_at(b"missing", NOW + 10, ExpireCondition::IfSome, NOW));
    assert!(!db.exists(b"missing", NOW));
}

#[test]
fn expire_at_gt_lt_treat_persistent_as_infinite() {
    let db = Db::new();
    db.put(b("p"), b("v"), NOW);
    // GT: nothing is greater than infinity.
    assert!(!db.expire_at(b"p", NOW + 10, ExpireCondition::IfGreater, NOW));
    assert_eq!(db.ttl(b"p", NOW), Ttl::Persistent);
    // LT: anything is less than infinity.
    assert!(db.expire_at(b"p", NOW + 10, ExpireCondition::IfLess, NOW));
    assert_eq!(db.ttl(b"p", NOW), Ttl::ExpiresIn(10));

    set_px(&db, "t", "v", NOW + 100, NOW);
    assert!(!db.expire_at(b"t", NOW + 100, ExpireCondition::IfGreater, NOW));
    assert!(!db.expire_at(b"t", NOW + 99, ExpireCondition::IfGreater, NOW));
    assert!(db.expire_at(b"t", NOW + 101, ExpireCondition::IfGreater, NOW));
    assert_eq!(db.ttl(b"t", NOW), Ttl::ExpiresIn(101));

    assert!(!db.expire_at(b"t", NOW + 101, ExpireCondition::IfLess, NOW));
    assert!(!db.expire_at(b"t", NOW + 200, ExpireCondition::IfLess, NOW));
    assert!(db.expire_at(b"t", NOW + 50, ExpireCondition::IfLess, NOW));
    assert_eq!(db.ttl(b"t", NOW), Ttl::ExpiresIn(50));
    assert_eq!(db.volatile_len(), 2);
}

#[test]
fn expire_conditions_are_checked_before_past_deletion() {
    let db = Db::new();
    db.put(b("p"), b("v"), NOW);
    // GT fails on a persistent key, so the past time does not delete it.
    assert!(!db.expire_at(b"p", NOW - 1, ExpireCondition::IfGreater, NOW));
    assert!(!db.expire_at(b"p", NOW - 1, ExpireCondition::IfSome, NOW));
    assert!(db.exists(b"p", NOW));
    // LT passes, and the past time deletes.
    assert!(db.expire_at(b"p", NOW - 1, ExpireCondition::IfLess, NOW));
    assert!(!db.exists(b"p", NOW));

    set_px(&db, "t", "v", NOW + 100, NOW);
    assert!(!db.expire_at(b"t", NOW - 1, ExpireCondition::IfNone, NOW));
    assert!(!db.expire_at(b"t", NOW - 1, ExpireCondition::IfGreater, NOW));
    assert!(db.exists(b"t", NOW));
    assert!(db.expire_at(b"t", NOW - 1, ExpireCondition::IfSome, NOW));
    assert!(!db.exists(b"t", NOW));
    assert!(db.is_empty());
}

#[test]
fn persist() {
    let db = Db::new();
    assert!(!db.persist(b"missing", NOW));
    db.put(b("p"), b("v"), NOW);
    assert!(!db.persist(b"p", NOW));
    set_px(&db, "t", "v", NOW + 10, NOW);
    assert!(db.persist(b"t", NOW));
    assert_eq!(db.ttl(b"t", NOW), Ttl::Persistent);
    assert_eq!(db.volatile_len(), 0);
    assert!(!db.persist(b"t", NOW));
    assert_eq!(get(&db, b"t", NOW + 1_000), some("v"));
    assert_eq!(db.sweep_expired(NOW + 1_000, 100), 0);
    // At the boundary it is still live and can be persisted; after it, not.
    set_px(&db, "b", "v", NOW, NOW);
    assert!(db.persist(b"b", NOW));
    set_px(&db, "c", "v", NOW, NOW);
    assert!(!db.persist(b"c", NOW + 1));
    assert!(!db.exists(b"c", NOW + 1));
}

// ---- APPEND / STRLEN --------------------------------------------------------

#[test]
fn append() {
    let db = Db::new();
    assert_eq!(db.append(b("k"), b"abc", 100, NOW), Ok(3));
    assert_eq!(db.ttl(b"k", NOW), Ttl::Persistent);
    assert_eq!(db.append(b("k"), b"de", 100, NOW), Ok(5));
    assert_eq!(get(&db, b"k", NOW), some("abcde"));
    assert_eq!(db.append(b("k"), b"", 100, NOW), Ok(5));
    assert_eq!(get(&db, b"k", NOW), some("abcde"));
    // APPEND "" on a missing key creates an empty string.
    assert_eq!(db.append(b("e"), b"", 100, NOW), Ok(0));
    assert!(db.exists(b"e", NOW));
    assert_eq!(get(&db, b"e", NOW), some(""));
    // Binary suffix.
    assert_eq!(db.append(b("k"), b"\x00\xff", 100, NOW), Ok(7));
    assert_eq!(get(&db, b"k", NOW), some(b"abcde\x00\xff"));
}

#[test]
fn append_keeps_ttl_and_treats_expired_as_missing() {
    let db = Db::new();
    set_px(&db, "k", "ab", NOW + 10, NOW);
    assert_eq!(db.append(b("k"), b"c", 100, NOW), Ok(3));
    assert_eq!(db.ttl(b"k", NOW), Ttl::ExpiresIn(10));
    assert_eq!(db.volatile_len(), 1);
    assert_eq!(get(&db, b"k", NOW + 10), some("abc"));
    // Expired: starts over, persistent.
    assert_eq!(db.append(b("k"), b"x", 100, NOW + 11), Ok(1));
    assert_eq!(get(&db, b"k", NOW + 11), some("x"));
    assert_eq!(db.ttl(b"k", NOW + 11), Ttl::Persistent);
    assert_eq!(db.volatile_len(), 0);
    assert_eq!(db.len(), 1);
}

#[test]
fn append_max_len() {
    let db = Db::new();
    db.put(b("k"), b("12345"), NOW);
    assert_eq!(db.append(b("k"), b"678", 7, NOW), Err(8));
    assert_eq!(get(&db, b"k", NOW), some("12345"));
    // Exactly max_len is allowed.
    assert_eq!(db.append(b("k"), b"67", 7, NOW), Ok(7));
    assert_eq!(db.append(b("k"), b"", 7, NOW), Ok(7));
    assert_eq!(db.append(b("k"), b"8", 7, NOW), Err(8));
    assert_eq!(get(&db, b"k", NOW), some("1234567"));
    // On a missing key: an over-long suffix creates nothing.
    assert_eq!(db.append(b("m"), b"abcd", 3, NOW), Err(4));
    assert!(!db.exists(b"m", NOW));
    assert_eq!(db.append(b("m"), b"abc", 3, NOW), Ok(3));
    assert_eq!(db.append(b("z"), b"", 0, NOW), Ok(0));
    assert_eq!(db.append(b("z"), b"a", 0, NOW), Err(1));
}

#[test]
fn strlen() {
    let db = Db::new();
    assert_eq!(db.strlen(b"k", NOW), Ok(0));
    db.put(b("k"), b(b"\x00\x01\x02"), NOW);
    assert_eq!(db.strlen(b"k", NOW), Ok(3));
    set_px(&db, "t", "hello", NOW, NOW);
    assert_eq!(db.strlen(b"t", NOW), Ok(5));
    assert_eq!(db.strlen(b"t", NOW + 1), Ok(0));
    db.put(b("e"), b(""), NOW);
    assert_eq!(db.strlen(b"e", NOW), Ok(0));
}

// ---- multi-key --------------------------------------------------------------

#[test]
fn get_many() {
    let db = Db::new();
    assert_eq!(db.get_many(&[], NOW), Vec::<Option<Bytes>>::new());
    db.put(b("a"), b("1"), NOW);
    db.put(b("b"), b("2"), NOW);
    set_px(&db, "e", "3", NOW, NOW);
    let keys = [b("a"), b("missing"), b("b"), b("a"), b("e"), b("")];
    assert_eq!(db.get_many(&keys, NOW), vec![Some(b("1")), None, Some(b("2")), Some(b("1")), Some(b("3")), None]);
    assert_eq!(db.get_many(&keys, NOW + 1), vec![Some(b("1")), None, Some(b("2")), Some(b("1")), None, None]);
}

#[test]
fn get_many_over_many_stripes() {
    let db = Db::new();
    let keys: Vec<Bytes> = (0..1_000).map(|i| b(format!("key:{i}"))).collect();
    db.put_many(keys.iter().map(|k| (k.clone(), k.clone())).collect(), NOW);
    let got = db.get_many(&keys, NOW);
    assert_eq!(got.len(), keys.len());
    for (k, v) in keys.iter().zip(got) {
        assert_eq!(v.as_ref(), Some(k));
    }
    assert_eq!(db.count_existing(&keys, NOW), 1_000);
    assert_eq!(db.delete_many(&keys, NOW), 1_000);
    assert!(db.is_empty());
}

#[test]
fn put_many() {
    let db = Db::new();
    db.put_many(vec![], NOW);
    assert!(db.is_empty());

    set_px(&db, "a", "old", NOW + 100, NOW);
    db.put_many(vec![(b("a"), b("1")), (b("b"), b("2")), (b(""), b(""))], NOW);
    assert_eq!(get(&db, b"a", NOW), some("1"));
    assert_eq!(get(&db, b"b", NOW), some("2"));
    assert_eq!(get(&db, b"", NOW), some(""));
    // MSET clears expiries.
    assert_eq!(db.ttl(b"a", NOW), Ttl::Persistent);
    assert_eq!(db.volatile_len(), 0);
    assert_eq!(db.len(), 3);

    // With a repeated key the last pair wins.
    db.put_many(vec![(b("d"), b("first")), (b("d"), b("second"))], NOW);
    assert_eq!(get(&db, b"d", NOW), some("second"));
    assert_eq!(db.len(), 4);
}

#[test]
fn delete_many() {
    let db = Db::new();
    assert_eq!(db.delete_many(&[], NOW), 0);
    db.put(b("a"), b("1"), NOW);
    db.put(b("b"), b("2"), NOW);
    set_px(&db, "e", "3", NOW, NOW);
    // Duplicates are removed once; missing and expired keys don't count.
    let n = db.delete_many(&[b("a"), b("a"), b("missing"), b("e"), b("b")], NOW + 1);
    assert_eq!(n, 2);
    assert!(db.is_empty());
    assert_eq!(db.volatile_len(), 0);
}

#[test]
fn count_existing_counts_repeats() {
    let db = Db::new();
    assert_eq!(db.count_existing(&[], NOW), 0);
    db.put(b("a"), b("1"), NOW);
    set_px(&db, "e", "3", NOW, NOW);
    assert_eq!(db.count_existing(&[b("a"), b("a"), b("a")], NOW), 3);
    assert_eq!(db.count_existing(&[b("a"), b("missing"), b("e"), b("e")], NOW), 3);
    assert_eq!(db.count_existing(&[b("a"), b("missing"), b("e"), b("e")], NOW + 1), 1);
}

// ---- whole keyspace ---------------------------------------------------------

#[test]
fn keys_with_globs() {
    let db = Db::new();
    for k in
        ["hello", "hallo", "hxllo", "hllo", "heeello", "user:1:name", "user:2:name", "user:2:age", "a*b", "axb", ""]
    {
        db.put(b(k), b("v"), NOW);
    }
    set_px(&db, "hillo", "v", NOW, NOW);

    assert_eq!(db.keys(b"*", NOW).len(), 12);
    assert_eq!(db.keys(b"*", NOW + 1).len(), 11);
    assert_eq!(keys_of(&db, "h?llo", NOW), vecs(&["hello", "hallo", "hxllo", "hillo"]));
    assert_eq!(keys_of(&db, "h?llo", NOW + 1), vecs(&["hello", "hallo", "hxllo"]));
    assert_eq!(keys_of(&db, "h*llo", NOW + 1), vecs(&["hello", "hallo", "hxllo", "hllo", "heeello"]));
    assert_eq!(keys_of(&db, "h[ae]llo", NOW), vecs(&["hello", "hallo"]));
    assert_eq!(keys_of(&db, "h[^e]llo", NOW + 1), vecs(&["hallo", "hxllo"]));
    assert_eq!(keys_of(&db, "h[a-f]llo", NOW), vecs(&["hello", "hallo"]));
    assert_eq!(keys_of(&db, "user:*:name", NOW), vecs(&["user:1:name", "user:2:name"]));
    assert_eq!(keys_of(&db, "user:2:*", NOW), vecs(&["user:2:name", "user:2:age"]));
    assert_eq!(keys_of(&db, "a\\*b", NOW), vecs(&["a*b"]));
    assert_eq!(keys_of(&db, "a*b", NOW), vecs(&["a*b", "axb"]));
    assert_eq!(keys_of(&db, "", NOW), vecs(&[""]));
    assert_eq!(keys_of(&db, "nomatch*", NOW), Vec::<Vec<u8>>::new());
    assert_eq!(keys_of(&db, "hello", NOW), vecs(&["hello"]));
}

fn full_scan(db: &Db, pattern: Option<&[u8]>, count: usize, now: u64) -> (Vec<Bytes>, usize) {
    let mut cursor = 0;
    let mut out = Vec::new();
    let mut calls = 0;
    loop {
        let (next, batch) = db.scan(cursor, pattern, count, now);
        calls += 1;
        out.extend(batch);
        // Each call examines at least one key or finishes a stripe.
        assert!(calls <= db.len() + STRIPES + 1, "scan did not terminate");
        if next == 0 {
            return (out, calls);
        }
        assert!(next > cursor, "cursor must advance");
        cursor = next;
    }
}

#[test]
fn scan_returns_every_key_exactly_once() {
    let db = Db::new();
    let n = 5_000;
    for i in 0..n {
        db.put(b(format!("k{i}")), b("v"), NOW);
    }
    for i in 0..100 {
        set_px(&db, &format!("t{i}"), "v", NOW, NOW);
    }
    for count in [0, 1, 7, 100, 10_000] {
        let (keys, calls) = full_scan(&db, None, count, NOW + 1);
        assert_eq!(keys.len(), n, "count {count}");
        let unique: HashSet<Bytes> = keys.iter().cloned().collect();
        assert_eq!(unique.len(), n, "count {count}: a key was returned twice");
        assert!(unique.iter().all(|k| k.starts_with(b"k")));
        // COUNT bounds the keys examined per call (one stripe at a time).
        let examined_per_call = count.max(1);
        assert!(calls >= (n + 100).div_ceil(examined_per_call).min(STRIPES), "count {count}: {calls} calls");
    }
    // With count 1 every key costs one call.
    let (_, calls) = full_scan(&db, None, 1, NOW + 1);
    assert_eq!(calls, n + 100);

    // MATCH filters but still visits everything.
    let (keys, _) = full_scan(&db, Some(b"k1*"), 1, NOW + 1);
    let expected = (0..n).filter(|i| i.to_string().starts_with('1')).count();
    assert_eq!(keys.len(), expected);
    assert!(keys.iter().all(|k| k.starts_with(b"k1")));

    // Expired-at-the-boundary keys are still visible.
    let (keys, _) = full_scan(&db, Some(b"t*"), 1, NOW);
    assert_eq!(keys.len(), 100);
}

fn full_scan_from(db: &Db, mut cursor: u64) -> Vec<Bytes> {
    let mut out = Vec::new();
    while cursor != 0 {
        let (next, batch) = db.scan(cursor, None, 1, NOW);
        out.extend(batch);
        cursor = next;
    }
    out
}

#[test]
fn scan_edge_cursors() {
    let db = Db::new();
    assert_eq!(db.scan(0, None, 1, NOW), (0, vec![]));
    db.put(b("k"), b("v"), NOW);
    // Stops at the first stripe with a key; the rest of the scan is empty.
    let (next, keys) = db.scan(0, None, 1, NOW);
    assert_eq!(keys, vec![b("k")]);
    if next != 0 {
        assert!(full_scan_from(&db, next).is_empty());
    }
    let (next, keys) = db.scan(0, None, 2, NOW);
    assert_eq!(keys, vec![b("k")]);
    if next != 0 {
        assert!(full_scan_from(&db, next).is_empty());
    }
    let (keys, _) = full_scan(&db, None, 1, NOW);
    assert_eq!(keys, vec![b("k")]);
    // The last position of the last stripe ends the scan.
    assert_eq!(db.scan(u64::MAX, None, 1, NOW).0, 0);
}

#[test]
fn sweep_expired_is_bounded_by_budget() {
    let db = Db::new();
    for i in 0..1_000 {
        set_px(&db, &format!("t{i}"), "v", NOW + 10, NOW);
    }
    for i in 0..100 {
        db.put(b(format!("p{i}")), b("v"), NOW);
    }
    assert_eq!(db.len(), 1_100);
    assert_eq!(db.volatile_len(), 1_000);

    // Nothing has expired yet (the boundary is still live).
    assert_eq!(db.sweep_expired(NOW + 10, 1_000_000), 0);
    assert_eq!(db.len(), 1_100);

    let later = NOW + 11;
    assert_eq!(db.sweep_expired(later, 10), 10);
    assert_eq!(db.len(), 1_090);
    assert_eq!(db.volatile_len(), 990);
    assert_eq!(db.sweep_expired(later, 0), 0);
    assert_eq!(db.volatile_len(), 990);

    let mut calls = 1;
    loop {
        let before = db.volatile_len();
        let removed = db.sweep_expired(later, 10);
        assert!(removed <= 10);
        assert_eq!(db.volatile_len(), before - removed);
        calls += 1;
        if removed == 0 {
            break;
        }
        // While at least ten remain, every call removes a full budget.
        if before >= 10 {
            assert_eq!(removed, 10);
        }
        assert!(calls < 1_000);
    }
    assert_eq!(calls, 101);
    assert_eq!(db.volatile_len(), 0);
    assert_eq!(db.len(), 100);
    assert_eq!(db.keys(b"p*", later).len(), 100);
    assert_eq!(db.sweep_expired(later, 10), 0);
}

#[test]
fn sweep_removes_earliest_first_and_only_expired() {
    let db = Db::new();
    for i in 0..100u64 {
        set_px(&db, &format!("t{i}"), "v", NOW + i, NOW);
    }
    // At NOW + 50, keys with expiry NOW..NOW+49 are expired (50 of them).
    assert_eq!(db.sweep_expired(NOW + 50, usize::MAX), 50);
    assert_eq!(db.volatile_len(), 50);
    for i in 0..100u64 {
        assert_eq!(db.exists(format!("t{i}").as_bytes(), NOW + 50), i >= 50, "t{i}");
    }
    assert_eq!(db.sweep_expired(NOW + 50, usize::MAX), 0);
    assert_eq!(db.sweep_expired(NOW + 1_000, usize::MAX), 50);
    assert!(db.is_empty());
}

#[test]
fn sweep_after_expiry_changes_is_consistent() {
    let db = Db::new();
    // Every way of changing an expiry must keep the sweeper's index right.
    set_px(&db, "persisted", "v", NOW + 1, NOW);
    assert!(db.persist(b"persisted", NOW));
    set_px(&db, "extended", "v", NOW + 1, NOW);
    assert!(db.expire_at(b"extended", NOW + 1_000_000, ExpireCondition::Always, NOW));
    set_px(&db, "getex", "v", NOW + 1, NOW);
    db.get_ex(b"getex", GetExExpiry::Persist, NOW);
    set_px(&db, "overwritten", "v", NOW + 1, NOW);
    db.put(b("overwritten"), b("w"), NOW);
    set_px(&db, "incr", "1", NOW + 1, NOW);
    db.incr_by(b("incr"), 1, NOW).unwrap();
    set_px(&db, "deleted", "v", NOW + 1, NOW);
    db.delete(b"deleted", NOW);
    set_px(&db, "appended", "v", NOW + 1, NOW);
    db.append(b("appended"), b"w", 100, NOW).unwrap();

    assert_eq!(db.volatile_len(), 3); // extended, incr, appended
    assert_eq!(db.sweep_expired(NOW + 2, usize::MAX), 2); // incr, appended
    assert_eq!(db.volatile_len(), 1);
    assert_eq!(keys_of(&db, "*", NOW + 2), vecs(&["persisted", "extended", "getex", "overwritten"]));
    assert_eq!(db.len(), 4);
}

#[test]
fn clear_and_len() {
    let db = Db::new();
    for i in 0..500 {
        db.put(b(format!("k{i}")), b("v"), NOW);
    }
    for i in 0..50 {
        set_px(&db, &format!("t{i}"), "v", NOW, NOW);
    }
    assert_eq!(db.len(), 550);
    assert!(!db.is_empty());
    assert_eq!(db.volatile_len(), 50);
    // len counts expired but unswept keys, like DBSIZE.
    assert_eq!(db.keys(b"*", NOW + 1).len(), 500);
    assert_eq!(db.len(), 550);

    db.clear();
    assert_eq!(db.len(), 0);
    assert!(db.is_empty());
    assert_eq!(db.volatile_len(), 0);
    assert!(db.keys(b"*", NOW).is_empty());
    assert_eq!(db.sweep_expired(NOW + 1, usize::MAX), 0);
    // Usable afterwards.
    set_px(&db, "k0", "again", NOW + 5, NOW);
    assert_eq!(get(&db, b"k0", NOW), some("again"));
    assert_eq!(db.len(), 1);
    assert_eq!(db.volatile_len(), 1);
    db.clear();
    db.clear();
    assert!(db.is_empty());
}

// ---- slots ------------------------------------------------------------------

/// `user1000` and `{user1000}.following` share slot 3443; `foo` is in 12182.
const USER_SLOT: u16 = 3443;
const FOO_SLOT: u16 = 12182;

fn total_in_slots(db: &Db) -> usize {
    (0..SLOT_COUNT).map(|slot| db.count_in_slot(slot)).sum()
}

#[test]
fn count_in_slot_follows_inserts_and_removals() {
    assert_eq!(key_slot(b"user1000"), USER_SLOT);
    assert_eq!(key_slot(b"{user1000}.following"), USER_SLOT);
    assert_eq!(key_slot(b"foo"), FOO_SLOT);

    let db = Db::new();
    assert_eq!(db.count_in_slot(USER_SLOT), 0);
    db.put(b("user1000"), b("v"), NOW);
    db.put(b("{user1000}.following"), b("v"), NOW);
    db.put(b("foo"), b("v"), NOW);
    assert_eq!(db.count_in_slot(USER_SLOT), 2);
    assert_eq!(db.count_in_slot(FOO_SLOT), 1);
    assert_eq!(db.count_in_slot(0), 0);

    // Overwrites, expiry changes and failed conditional writes change nothing.
    db.put(b("user1000"), b("w"), NOW);
    set(&db, "foo", "x", opts(SetCondition::IfAbsent, SetExpiry::Clear), NOW);
    set(&db, "bar{user1000}", "x", opts(SetCondition::IfPresent, SetExpiry::Clear), NOW);
    assert!(db.expire_at(b"foo", NOW + 10, ExpireCondition::Always, NOW));
    assert!(db.persist(b"foo", NOW));
    assert_eq!(db.incr_by(b("user1000"), 1, NOW), Err(IncrError::NotInteger));
    assert_eq!(db.append(b("foo"), b"123456", 3, NOW), Err(7));
    assert_eq!(db.count_in_slot(USER_SLOT), 2);
    assert_eq!(db.count_in_slot(FOO_SLOT), 1);

    // Every way of removing a key.
    assert!(db.delete(b"user1000", NOW));
    assert!(!db.delete(b"user1000", NOW));
    assert_eq!(db.count_in_slot(USER_SLOT), 1);
    assert_eq!(db.get_delete(b"{user1000}.following", NOW), Some(b("v")));
    assert_eq!(db.count_in_slot(USER_SLOT), 0);
    assert!(db.delete_if(b"foo", &DelCondition::IfEqual(b("v")), NOW));
    assert_eq!(db.count_in_slot(FOO_SLOT), 0);

    db.put_many(vec![(b("foo"), b("1")), (b("user1000"), b("2")), (b("foo"), b("3"))], NOW);
    assert_eq!(db.count_in_slot(FOO_SLOT), 1);
    assert_eq!(db.count_in_slot(USER_SLOT), 1);
    assert_eq!(db.delete_many(&[b("foo"), b("foo"), b("user1000")], NOW), 2);
    assert_eq!(total_in_slots(&db), 0);

    db.put(b("foo"), b("v"), NOW);
    assert!(db.expire_at(b"foo", NOW - 1, ExpireCondition::Always, NOW));
    assert_eq!(db.count_in_slot(FOO_SLOT), 0);
    db.put(b("foo"), b("v"), NOW);
    assert_eq!(db.get_ex(b"foo", GetExExpiry::At(NOW), NOW), Some(b("v")));
    assert_eq!(db.count_in_slot(FOO_SLOT), 0);
    db.put(b("foo"), b("v"), NOW);
    set(&db, "foo", "w", opts(SetCondition::Always, SetExpiry::At(NOW - 1)), NOW);
    assert_eq!(db.count_in_slot(FOO_SLOT), 0);

    db.put(b("foo"), b("v"), NOW);
    db.clear();
    assert_eq!(db.count_in_slot(FOO_SLOT), 0);
    assert_eq!(total_in_slots(&db), 0);
}

#[test]
fn count_in_slot_includes_unswept_expired_keys_like_len() {
    let db = Db::new();
    set_px(&db, "user1000", "v", NOW, NOW);
    set_px(&db, "{user1000}.a", "v", NOW, NOW);
    // Reading an expired key hides it but does not remove it.
    assert_eq!(db.get(b"user1000", NOW + 1), None);
    assert_eq!(db.count_in_slot(USER_SLOT), 2);
    assert_eq!(db.len(), 2);
    // Writing through it replaces it: still one key.
    assert_eq!(db.incr_by(b("user1000"), 1, NOW + 1), Ok(1));
    assert_eq!(db.count_in_slot(USER_SLOT), 2);
    // The sweeper's removals are counted.
    assert_eq!(db.sweep_expired(NOW + 1, usize::MAX), 1);
    assert_eq!(db.count_in_slot(USER_SLOT), 1);
    assert_eq!(db.len(), 1);
    // So are removals of expired keys found by writes.
    set_px(&db, "{user1000}.b", "v", NOW, NOW);
    assert!(!db.delete(b"{user1000}.b", NOW + 1));
    assert_eq!(db.count_in_slot(USER_SLOT), 1);
    // PERSIST of an expired key fails without removing it.
    set_px(&db, "{user1000}.c", "v", NOW, NOW);
    assert!(!db.persist(b"{user1000}.c", NOW + 1));
    assert_eq!(db.count_in_slot(USER_SLOT), 2);
    assert_eq!(total_in_slots(&db), db.len());
}

#[test]
fn count_in_slot_sums_to_len() {
    let db = Db::new();
    for i in 0..2_000 {
        db.put(b(format!("key:{i}")), b("v"), NOW);
    }
    for i in 0..500 {
        set_px(&db, &format!("t:{i}"), "v", NOW, NOW);
    }
    for i in (0..2_000).step_by(3) {
        db.delete(format!("key:{i}").as_bytes(), NOW);
    }
    assert_eq!(total_in_slots(&db), db.len());
    db.sweep_expired(NOW + 1, 100);
    assert_eq!(total_in_slots(&db), db.len());
    db.sweep_expired(NOW + 1, usize::MAX);
    assert_eq!(total_in_slots(&db), db.len());
    for slot in [0, 1, 3443, SLOT_COUNT - 1] {
        let live = db.keys(b"*", NOW + 1).iter().filter(|k| key_slot(k) == slot).count();
        assert_eq!(db.count_in_slot(slot), live, "slot {slot}");
    }
    let restored = Db::new();
    restored.restore(&db.dump(NOW + 1), NOW + 1).unwrap();
    assert_eq!(total_in_slots(&restored), db.len());
}

#[test]
fn keys_in_slot() {
    let db = Db::new();
    assert!(db.keys_in_slot(USER_SLOT, 10, NOW).is_empty());
    db.put(b("user1000"), b("v"), NOW);
    db.put(b("{user1000}.following"), b("v"), NOW);
    db.put(b("{user1000}.followers"), b("v"), NOW);
    db.put(b("foo"), b("v"), NOW);
    set_px(&db, "{user1000}.session", "v", NOW, NOW);

    assert_eq!(
        sorted(db.keys_in_slot(USER_SLOT, 10, NOW)),
        vecs(&["user1000", "{user1000}.following", "{user1000}.followers", "{user1000}.session"])
    );
    // Expired keys are not listed, though they are still counted until swept.
    assert_eq!(
        sorted(db.keys_in_slot(USER_SLOT, 10, NOW + 1)),
        vecs(&["user1000", "{user1000}.following", "{user1000}.followers"])
    );
    assert_eq!(db.count_in_slot(USER_SLOT), 4);
    assert_eq!(db.keys_in_slot(FOO_SLOT, 10, NOW), vec![b("foo")]);
    // `max` bounds the answer.
    assert_eq!(db.keys_in_slot(USER_SLOT, 2, NOW + 1).len(), 2);
    assert!(db.keys_in_slot(USER_SLOT, 0, NOW).is_empty());
    assert!(db.keys_in_slot(0, 10, NOW).is_empty());
}

#[test]
fn dump_slots_takes_live_keys_of_chosen_slots() {
    let db = Db::new();
    db.put(b("user1000"), b("v"), NOW);
    set_px(&db, "{user1000}.t", "v", NOW + 5, NOW);
    set_px(&db, "{user1000}.gone", "v", NOW, NOW);
    db.put(b("foo"), b("v"), NOW);
    let snap = db.dump_slots(|slot| slot == USER_SLOT, NOW + 1);
    let copy = Db::new();
    assert_eq!(copy.restore(&snap, NOW + 1), Ok(2));
    assert_eq!(keys_of(&copy, "*", NOW + 1), vecs(&["user1000", "{user1000}.t"]));
    assert_eq!(copy.ttl(b"{user1000}.t", NOW + 1), Ttl::ExpiresIn(4));
    assert_eq!(copy.count_in_slot(USER_SLOT), 2);
    assert_eq!(copy.count_in_slot(FOO_SLOT), 0);
    let none = db.dump_slots(|_| false, NOW);
    assert_eq!(Db::new().restore(&none, NOW), Ok(0));
}

// ---- snapshots --------------------------------------------------------------

#[test]
fn restore_overwrites_and_skips_expired_entries() {
    let src = Db::new();
    src.put(b("a"), b("new"), NOW);
    set_px(&src, "t", "v", NOW + 10, NOW);
    set_px(&src, "gone", "v", NOW, NOW);
    let snap = src.dump(NOW + 1);

    let dst = Db::new();
    dst.put(b("a"), b("old"), NOW);
    dst.put(b("other"), b("kept"), NOW);
    assert_eq!(dst.restore(&snap, NOW + 1), Ok(2));
    assert_eq!(get(&dst, b"a", NOW + 1), some("new"));
    assert_eq!(get(&dst, b"other", NOW + 1), some("kept"));
    assert_eq!(dst.ttl(b"t", NOW + 1), Ttl::ExpiresIn(9));
    assert!(!dst.exists(b"gone", NOW + 1));

    // Restored later than the snapshot was taken: "t" has expired by then.
    let late = Db::new();
    assert_eq!(late.restore(&snap, NOW + 11), Ok(2));
    assert!(!late.exists(b"t", NOW + 11));
    assert_eq!(late.len(), 1);
    assert_eq!(late.volatile_len(), 0);
}

#[test]
fn dump_of_empty_db_restores_nothing() {
    let snap = Db::new().dump(NOW);
    let db = Db::new();
    assert_eq!(db.restore(&snap, NOW), Ok(0));
    assert!(db.is_empty());
}

#[test]
fn digest_depends_on_live_contents_only() {
    let a = Db::new();
    let b_ = Db::new();
    assert_eq!(a.digest(NOW), b_.digest(NOW));
    for i in 0..100 {
        a.put(b(format!("k{i}")), b(format!("v{i}")), NOW);
    }
    for i in (0..100).rev() {
        b_.put(b(format!("k{i}")), b(format!("v{i}")), NOW);
    }
    // Insertion order and hash seeds do not matter.
    assert_eq!(a.digest(NOW), b_.digest(NOW));
    assert_ne!(a.digest(NOW), Db::new().digest(NOW));

    // A dead key that was never swept does not count.
    set_px(&b_, "dead", "x", NOW, NOW);
    assert_ne!(a.digest(NOW), b_.digest(NOW));
    assert_eq!(a.digest(NOW + 1), b_.digest(NOW + 1));

    // Values and expiries do.
    b_.put(b("k1"), b("other"), NOW);
    assert_ne!(a.digest(NOW + 1), b_.digest(NOW + 1));
    b_.put(b("k1"), b("v1"), NOW);
    assert_eq!(a.digest(NOW + 1), b_.digest(NOW + 1));
    assert!(b_.expire_at(b"k1", NOW + 100, ExpireCondition::Always, NOW + 1));
    assert_ne!(a.digest(NOW + 1), b_.digest(NOW + 1));
    assert!(a.expire_at(b"k1", NOW + 100, ExpireCondition::Always, NOW + 1));
    assert_eq!(a.digest(NOW + 1), b_.digest(NOW + 1));

    // Moving bytes between key and value changes it.
    let c = Db::new();
    let d = Db::new();
    c.put(b("ab"), b("c"), NOW);
    d.put(b("a"), b("bc"), NOW);
    assert_ne!(c.digest(NOW), d.digest(NOW));
}

#[test]
fn apply_matches_the_direct_operations() {
    use shoal_engine::{WriteOp, WriteResult};
    let db = Db::new();
    let set = |k: &str, v: &str, condition, expiry| WriteOp::Set {
        key: b(k),
        value: b(v),
        options: SetOptions { condition, expiry, ..Default::default() },
    };
    let r = db.apply(set("k", "1", SetCondition::Always, SetExpiry::At(NOW + 10)), NOW);
    assert_eq!(r, WriteResult::Set(SetOutcome { written: true, old: None }));
    let r = db.apply(set("k", "2", SetCondition::IfAbsent, SetExpiry::Clear), NOW);
    assert_eq!(r, WriteResult::Set(SetOutcome { written: false, old: Some(b("1")) }));
    assert_eq!(db.apply(WriteOp::IncrBy { key: b("k"), delta: 4 }, NOW), WriteResult::Incr(Ok(5)));
    assert_eq!(db.ttl(b"k", NOW), Ttl::ExpiresIn(10));
    let append = WriteOp::Append { key: b("k"), suffix: b("xyz"), max_len: 3 };
    assert_eq!(db.apply(append, NOW), WriteResult::Append(Err(4)));
    let append = WriteOp::Append { key: b("k"), suffix: b("x"), max_len: u64::MAX };
    assert_eq!(db.apply(append, NOW), WriteResult::Append(Ok(2)));
    let persist = WriteOp::Persist { key: b("k") };
    assert_eq!(db.apply(persist.clone(), NOW), WriteResult::Flag(true));
    assert_eq!(db.apply(persist, NOW), WriteResult::Flag(false));
    let expire = WriteOp::ExpireAt { key: b("k"), at: NOW + 5, condition: ExpireCondition::IfGreater };
    assert_eq!(db.apply(expire, NOW), WriteResult::Flag(false));
    let getex = WriteOp::GetEx { key: b("k"), expiry: GetExExpiry::At(NOW + 5) };
    assert_eq!(db.apply(getex, NOW), WriteResult::Value(Some(b("5x"))));
    assert_eq!(db.ttl(b"k", NOW), Ttl::ExpiresIn(5));
    let pairs = vec![(b("a"), b("1")), (b("b"), b("2"))];
    assert_eq!(db.apply(WriteOp::PutMany { pairs }, NOW), WriteResult::Done);
    let delif = WriteOp::DeleteIf { key: b("a"), condition: DelCondition::IfEqual(b("2")) };
    assert_eq!(db.apply(delif, NOW), WriteResult::Flag(false));
    assert_eq!(db.apply(WriteOp::GetDelete { key: b("a") }, NOW), WriteResult::Value(Some(b("1"))));
    let del = WriteOp::Delete { keys: vec![b("a"), b("b"), b("b"), b("missing")] };
    assert_eq!(db.apply(del, NOW), WriteResult::Count(1));
    assert_eq!(db.apply(WriteOp::Clear, NOW), WriteResult::Done);
    assert!(db.is_empty());
    // Every op survives its encoding.
    let op = set("k", "v", SetCondition::IfNotEqual(b("")), SetExpiry::At(u64::MAX));
    assert_eq!(WriteOp::decode(&op.encode()), Ok(op));
    assert!(WriteOp::decode(&[]).is_err());
    assert!(WriteOp::decode(&[200]).is_err());
}
