//! Multi-threaded stress: counters that must add up exactly, MSET groups that
//! a concurrent MGET must never see half-written, a sweeper racing writers of
//! short-lived keys, and full SCANs racing all of it.
//!
//! The deltas are random; the seed is printed (shown when the test fails) and
//! can be replayed with `SHOAL_STRESS_SEED=<seed>`.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use shoal_engine::slot::{key_slot, SLOT_COUNT};
use shoal_engine::{Db, SetExpiry, SetOptions, Ttl};

const WRITERS: usize = 8;
/// Iterations per writer; each does two INCRBYs, and some do an MSET or a
/// SET with expiry.
const ITERS: usize = 20_000;
const MSET_EVERY: usize = 4;
const VOLATILE_EVERY: usize = 8;
/// Keys present for the whole test, which every SCAN must return once.
const FIXED: usize = 300;
/// The writers' clock; their volatile keys expire at `NOW + 1`.
const NOW: u64 = 1_000_000;
/// The sweeper's and the checkers' clock, at which volatile keys are dead.
const LATER: u64 = NOW + 2;
/// If the test has not finished by then, something is deadlocked.
const WATCHDOG: Duration = Duration::from_secs(120);

fn b(s: impl AsRef<[u8]>) -> Bytes {
    Bytes::copy_from_slice(s.as_ref())
}

fn counter(t: usize) -> Bytes {
    b(format!("counter:{t}"))
}

fn group(t: usize) -> [Bytes; 3] {
    [b(format!("group:{t}:a")), b(format!("group:{t}:b")), b(format!("group:{t}:c"))]
}

fn seed() -> u64 {
    match std::env::var("SHOAL_STRESS_SEED") {
        Ok(s) => s.parse().expect("SHOAL_STRESS_SEED must be a u64"),
        Err(_) => std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64,
    }
}

/// Aborts the process if the test does not finish in time, so that a
/// deadlock fails loudly (with the seed) instead of hanging CI.
fn watchdog(seed: u64) -> Arc<AtomicBool> {
    let done = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&done);
    std::thread::spawn(move || {
        let start = Instant::now();
        while !flag.load(Ordering::Relaxed) {
            if start.elapsed() > WATCHDOG {
                eprintln!("stress test still running after {WATCHDOG:?}: deadlock? seed {seed}");
                std::process::abort();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    done
}

/// What one writer did, to compute the exact final state.
struct Tally {
    own_total: i64,
    shared_total: i64,
    last_group_value: Option<usize>,
    volatile_written: usize,
}

fn writer(db: &Db, t: usize, seed: u64) -> Tally {
    let mut rng = StdRng::seed_from_u64(seed ^ (t as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let own = counter(t);
    let shared = b("counter:shared");
    let keys = group(t);
    let mut tally = Tally { own_total: 0, shared_total: 0, last_group_value: None, volatile_written: 0 };
    let expiring = SetOptions { expiry: SetExpiry::At(NOW + 1), ..Default::default() };
    for i in 0..ITERS {
        // Only this thread touches its own counter, so every reply is known.
        let d: i64 = rng.random_range(-1_000..=1_000);
        tally.own_total += d;
        assert_eq!(db.incr_by(own.clone(), d, NOW), Ok(tally.own_total), "writer {t}");

        let d: i64 = rng.random_range(-1_000..=1_000);
        tally.shared_total += d;
        db.incr_by(shared.clone(), d, NOW).expect("shared counter stays an integer");

        if i % MSET_EVERY == 0 {
            let value = b(i.to_string());
            db.put_many(keys.iter().map(|k| (k.clone(), value.clone())).collect(), NOW);
            tally.last_group_value = Some(i);
        }
        if i % VOLATILE_EVERY == 0 {
            let key = b(format!("volatile:{t}:{}", rng.random_range(0..64u32)));
            assert!(db.set(key, b("x"), &expiring, NOW).written);
            tally.volatile_written += 1;
        }
    }
    tally
}

/// MGETs random groups while writers run: a group is all-absent (not yet
/// written) or three equal values, and a group's value never goes back.
fn group_reader(db: &Db, done: &AtomicBool, seed: u64, reads: &AtomicUsize) {
    let mut rng = StdRng::seed_from_u64(seed.rotate_left(17));
    let groups: Vec<[Bytes; 3]> = (0..WRITERS).map(group).collect();
    let mut last_seen: Vec<Option<usize>> = vec![None; WRITERS];
    let mut n = 0;
    while !done.load(Ordering::Acquire) {
        let t = rng.random_range(0..WRITERS);
        let got = db.get_many(&groups[t], NOW);
        match &got[..] {
            [None, None, None] => assert_eq!(last_seen[t], None, "group {t} vanished"),
            [Some(a), Some(b), Some(c)] => {
                assert!(a == b && b == c, "MSET of group {t} seen half-done: {got:?}");
                let v: usize = std::str::from_utf8(a).unwrap().parse().unwrap();
                assert!(Some(v) >= last_seen[t], "group {t} went back from {:?} to {v}", last_seen[t]);
                last_seen[t] = Some(v);
            }
            _ => panic!("MSET of group {t} seen half-done: {got:?}"),
        }
        n += 1;
    }
    reads.fetch_add(n, Ordering::Relaxed);
}

/// Sweeps expired keys in small budgets while writers create them, and
/// checks that no dead key is ever visible at `LATER`.
fn sweeper(db: &Db, done: &AtomicBool, swept: &AtomicUsize) {
    let mut n = 0;
    let mut rounds = 0u64;
    while !done.load(Ordering::Acquire) {
        n += db.sweep_expired(LATER, 16);
        rounds += 1;
        if rounds.is_multiple_of(64) {
            assert!(db.keys(b"volatile:*", LATER).is_empty());
            assert!(db.volatile_len() <= db.len());
        }
    }
    swept.fetch_add(n, Ordering::Relaxed);
}

/// Full SCANs while everything else runs: every fixed key comes back
/// exactly once per scan.
fn scanner(db: &Db, done: &AtomicBool, scans: &AtomicUsize) {
    let mut n = 0;
    while !done.load(Ordering::Acquire) || n == 0 {
        let mut seen = vec![0u32; FIXED];
        let mut cursor = 0;
        loop {
            let (next, keys) = db.scan(cursor, Some(b"fixed:*"), 10, LATER);
            for k in keys {
                let i: usize = std::str::from_utf8(&k[6..]).unwrap().parse().unwrap();
                seen[i] += 1;
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        assert!(seen.iter().all(|&c| c == 1), "scan saw a fixed key other than once");
        n += 1;
    }
    scans.fetch_add(n, Ordering::Relaxed);
}

#[test]
fn concurrent_counters_msets_sweeps_and_scans() {
    let seed = seed();
    println!("stress seed: {seed} (replay with SHOAL_STRESS_SEED={seed})");
    let watchdog_done = watchdog(seed);
    let started = Instant::now();

    let db = Db::new();
    for i in 0..FIXED {
        db.put(b(format!("fixed:{i}")), b("v"), NOW);
    }

    let done = AtomicBool::new(false);
    let (reads, swept, scans) = (AtomicUsize::new(0), AtomicUsize::new(0), AtomicUsize::new(0));
    let start_line = Barrier::new(WRITERS + 3);
    let tallies: Vec<Tally> = std::thread::scope(|s| {
        let (db, done, start_line) = (&db, &done, &start_line);
        let (reads, swept, scans) = (&reads, &swept, &scans);
        s.spawn(move || {
            start_line.wait();
            group_reader(db, done, seed, reads)
        });
        s.spawn(move || {
            start_line.wait();
            sweeper(db, done, swept)
        });
        s.spawn(move || {
            start_line.wait();
            scanner(db, done, scans)
        });
        let writers: Vec<_> = (0..WRITERS)
            .map(|t| {
                s.spawn(move || {
                    start_line.wait();
                    writer(db, t, seed)
                })
            })
            .collect();
        let tallies = writers.into_iter().map(|w| w.join().unwrap()).collect();
        done.store(true, Ordering::Release);
        tallies
    });

    // Exact final state.
    let mut shared_total = 0;
    for (t, tally) in tallies.iter().enumerate() {
        assert_eq!(db.get(&counter(t), LATER), Some(b(tally.own_total.to_string())));
        assert_eq!(db.ttl(&counter(t), LATER), Ttl::Persistent);
        let expected = tally.last_group_value.map(|v| b(v.to_string()));
        let got = db.get_many(&group(t), LATER);
        assert_eq!(got, vec![expected.clone(), expected.clone(), expected]);
        assert!(tally.volatile_written > 0);
        shared_total += tally.shared_total;
    }
    assert_eq!(db.get(b"counter:shared", LATER), Some(b(shared_total.to_string())));

    assert!(db.keys(b"volatile:*", LATER).is_empty());
    db.sweep_expired(LATER, usize::MAX);
    assert_eq!(db.volatile_len(), 0);
    // Counters (own and shared), three keys per group, and the fixed keys.
    assert_eq!(db.len(), WRITERS + 1 + 3 * WRITERS + FIXED);
    assert_eq!(db.keys(b"*", LATER).len(), db.len());
    // The per-slot counts, updated concurrently from every stripe, add up.
    assert_eq!((0..SLOT_COUNT).map(|slot| db.count_in_slot(slot)).sum::<usize>(), db.len());
    assert_eq!(
        db.count_in_slot(key_slot(b"counter:shared")),
        db.keys_in_slot(key_slot(b"counter:shared"), 100, LATER).len()
    );

    watchdog_done.store(true, Ordering::Relaxed);
    println!(
        "stress: {:?}, {} MGETs, {} keys swept concurrently, {} full scans",
        started.elapsed(),
        reads.load(Ordering::Relaxed),
        swept.load(Ordering::Relaxed),
        scans.load(Ordering::Relaxed),
    );
    assert!(reads.load(Ordering::Relaxed) > 0);
}
