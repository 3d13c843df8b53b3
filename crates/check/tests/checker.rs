//! The checker on hand-made histories: ones that must pass and ones that
//! must fail, plus seeded random histories of a real sequential register.

use std::time::{Duration, Instant};

use shoal_check::history::{from_json_lines, to_json_lines, Call, Op, Outcome, Ret};
use shoal_check::linear::{check_registers, Limits};
use shoal_check::sets::check_sets;
use shoal_check::Verdict;

fn limits() -> Limits {
    Limits { deadline: Instant::now() + Duration::from_secs(20), max_states: 1 << 22 }
}

fn op(process: u32, call: Call, (invoke, complete): (u64, u64), outcome: Outcome) -> Op {
    let complete_ns = (complete != u64::MAX).then_some(complete);
    Op { process, key: "k".into(), call, invoke_ns: invoke, complete_ns, outcome }
}
fn write(p: u32, v: u64, at: (u64, u64)) -> Op {
    op(p, Call::Write(v), at, Outcome::Ok(Ret::Done))
}
fn read(p: u32, v: Option<u64>, at: (u64, u64)) -> Op {
    op(p, Call::Read, at, Outcome::Ok(Ret::Value(v)))
}
fn cas(p: u32, expect: u64, new: u64, swapped: bool, at: (u64, u64)) -> Op {
    op(p, Call::Cas { expect, new }, at, Outcome::Ok(Ret::Swapped(swapped)))
}
fn info(p: u32, call: Call, invoke: u64) -> Op {
    op(p, call, (invoke, u64::MAX), Outcome::Info("timed out".into()))
}

fn is_valid(ops: &[Op]) -> bool {
    match check_registers(ops, limits()) {
        Verdict::Valid => true,
        Verdict::Invalid(why) => {
            println!("invalid: {why}");
            false
        }
        Verdict::Unknown(why) => panic!("unknown: {why}"),
    }
}

#[test]
fn sequential_reads_see_the_latest_write() {
    assert!(is_valid(&[read(1, None, (0, 1)), write(1, 1, (2, 3)), read(2, Some(1), (4, 5))]));
    assert!(!is_valid(&[write(1, 1, (0, 1)), write(1, 2, (2, 3)), read(2, Some(1), (4, 5))]), "stale read");
    assert!(!is_valid(&[write(1, 1, (0, 1)), read(2, None, (2, 3))]), "lost write");
    assert!(!is_valid(&[read(2, Some(7), (0, 1))]), "a value nobody wrote");
}

#[test]
fn a_concurrent_read_may_see_either_side_but_not_flip_back() {
    assert!(is_valid(&[write(1, 1, (0, 10)), read(2, None, (1, 2))]));
    assert!(is_valid(&[write(1, 1, (0, 10)), read(2, Some(1), (1, 2))]));
    // Once one read saw the write, a later read cannot miss it.
    assert!(!is_valid(&[write(1, 1, (0, 10)), read(2, Some(1), (1, 2)), read(3, None, (3, 4))]));
    // Two overlapping writes may land in either order.
    assert!(is_valid(&[write(1, 1, (0, 10)), write(2, 2, (0, 10)), read(3, Some(1), (11, 12))]));
    assert!(is_valid(&[write(1, 1, (0, 10)), write(2, 2, (0, 10)), read(3, Some(2), (11, 12))]));
    // But not one order for one reader and the other for the next.
    assert!(!is_valid(&[
        write(1, 1, (0, 10)),
        write(2, 2, (0, 10)),
        read(3, Some(1), (11, 12)),
        read(3, Some(2), (13, 14)),
    ]));
}

#[test]
fn compare_and_set_follows_the_register() {
    let w = write(1, 1, (0, 1));
    assert!(is_valid(&[w.clone(), cas(2, 1, 2, true, (2, 3)), read(3, Some(2), (4, 5))]));
    assert!(!is_valid(&[w.clone(), cas(2, 1, 2, false, (2, 3))]), "CAS refused although the value matched");
    assert!(!is_valid(&[w.clone(), cas(2, 5, 2, true, (2, 3))]), "CAS swapped although the value differed");
    assert!(is_valid(&[w.clone(), cas(2, 5, 2, false, (2, 3)), read(3, Some(1), (4, 5))]));
    // Two CAS from the same value cannot both win.
    assert!(!is_valid(&[w, cas(2, 1, 2, true, (2, 5)), cas(3, 1, 3, true, (2, 5))]));
}

#[test]
fn indeterminate_operations_may_or_may_not_happen_but_only_once() {
    // An indeterminate write may show up late...
    assert!(is_valid(&[info(1, Call::Write(1), 0), read(2, None, (5, 6)), read(2, Some(1), (7, 8))]));
    // ...or never.
    assert!(is_valid(&[info(1, Call::Write(1), 0), read(2, None, (5, 6))]));
    // But once seen, it does not vanish.
    assert!(!is_valid(&[info(1, Call::Write(1), 0), read(2, Some(1), (5, 6)), read(2, None, (7, 8))]));
    // Nor take effect before it was invoked.
    assert!(!is_valid(&[read(2, Some(1), (0, 1)), info(1, Call::Write(1), 5)]));
    // An indeterminate CAS.
    let ops = [write(1, 1, (0, 1)), info(2, Call::Cas { expect: 1, new: 2 }, 2), read(3, Some(2), (9, 10))];
    assert!(is_valid(&ops));
    // An indeterminate read says nothing.
    assert!(is_valid(&[write(1, 1, (0, 1)), info(2, Call::Read, 2)]));
}

#[test]
fn a_failed_write_never_shows() {
    let failed = op(1, Call::Write(1), (0, 1), Outcome::Fail("MOVED".into()));
    assert!(!is_valid(&[failed.clone(), read(2, Some(1), (2, 3))]));
    assert!(is_valid(&[failed, read(2, None, (2, 3))]));
}

#[test]
fn keys_are_checked_independently() {
    let mut a = write(1, 1, (0, 1));
    a.key = "a".into();
    let mut b = read(2, Some(1), (2, 3));
    b.key = "b".into();
    assert!(!is_valid(&[a, b]), "key b never had 1 written");
}

#[test]
fn the_search_gives_up_rather_than_hang() {
    // Many overlapping indeterminate writes: a large state space.
    let mut ops: Vec<Op> = (0..40).map(|i| info(i, Call::Write(u64::from(i) + 1), 0)).collect();
    ops.push(read(99, Some(100), (10, 11)));
    let tight = Limits { deadline: Instant::now() + Duration::from_secs(5), max_states: 1000 };
    assert!(matches!(check_registers(&ops, tight), Verdict::Unknown(_)));
}

/// A tiny seeded generator (no dependency needed for a test).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

/// A history of a real register: each operation takes effect at one instant
/// inside its interval, so it is linearizable by construction.
fn real_register_history(rng: &mut Lcg, len: usize) -> Vec<Op> {
    let mut value = None;
    let mut ops = Vec::new();
    for i in 0..len {
        let at = 10 * i as u64 + 5;
        let (invoke, complete) = (at - rng.next(30).min(at), at + rng.next(30));
        let p = i as u32;
        let new = i as u64 + 1;
        ops.push(match rng.next(4) {
            0 => read(p, value, (invoke, complete)),
            1 => {
                value = Some(new);
                write(p, new, (invoke, complete))
            }
            2 => match value {
                Some(v) => {
                    value = Some(new);
                    cas(p, v, new, true, (invoke, complete))
                }
                None => cas(p, 1_000_000, new, false, (invoke, complete)),
            },
            _ => {
                value = Some(new);
                info(p, Call::Write(new), invoke)
            }
        });
    }
    ops
}

#[test]
fn random_real_register_histories_pass_and_corrupted_ones_fail() {
    let seed = std::env::var("SHOAL_CHECK_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed_1234);
    println!("seed {seed} (replay with SHOAL_CHECK_SEED={seed})");
    let mut rng = Lcg(seed);
    for round in 0..200 {
        let mut ops = real_register_history(&mut rng, 40);
        assert_eq!(check_registers(&ops, limits()), Verdict::Valid, "round {round}, seed {seed}");
        // A stale read must be caught: one that returns a write's value
        // after a later write (strictly after it in real time) completed.
        let done = |o: &Op| matches!(o.outcome, Outcome::Ok(Ret::Done));
        let stale = ops.iter().enumerate().find_map(|(r, read)| {
            (read.call == Call::Read && matches!(read.outcome, Outcome::Ok(_))).then_some(())?;
            let newer = ops.iter().filter(|w| done(w) && w.complete_ns < Some(read.invoke_ns));
            newer.into_iter().find_map(|newer| {
                let old = ops.iter().find(|w| done(w) && w.complete_ns < Some(newer.invoke_ns))?;
                let Call::Write(v) = old.call else { return None };
                Some((r, v))
            })
        });
        if let Some((r, v)) = stale {
            let mut stale_ops = ops.clone();
            stale_ops[r].outcome = Outcome::Ok(Ret::Value(Some(v)));
            assert!(
                matches!(check_registers(&stale_ops, limits()), Verdict::Invalid(_)),
                "round {round}, seed {seed}: a stale read passed"
            );
        }
        // A read of a value nobody wrote must be caught.
        let reads: Vec<usize> = ops.iter().enumerate().filter(|(_, o)| o.call == Call::Read).map(|(i, _)| i).collect();
        if let Some(&i) = reads.get(rng.next(reads.len().max(1) as u64) as usize) {
            ops[i].outcome = Outcome::Ok(Ret::Value(Some(1_000_000)));
            assert!(matches!(check_registers(&ops, limits()), Verdict::Invalid(_)), "round {round}, seed {seed}");
        }
    }
}

fn add(p: u32, e: u64, outcome: Outcome) -> Op {
    Op { process: p, key: "s".into(), call: Call::Add(e), invoke_ns: e, complete_ns: Some(e + 1), outcome }
}
fn final_read(elements: &[u64]) -> Op {
    let outcome = Outcome::Ok(Ret::Elements(elements.to_vec()));
    Op { process: 0, key: "s".into(), call: Call::ReadAll, invoke_ns: 100, complete_ns: Some(101), outcome }
}
fn ok() -> Outcome {
    Outcome::Ok(Ret::Done)
}

#[test]
fn sets_lose_nothing_acknowledged_and_hold_each_element_once() {
    let history = |read: &[u64]| {
        vec![
            add(1, 1, ok()),
            add(1, 2, ok()),
            add(2, 3, Outcome::Info("lost connection".into())),
            add(2, 4, Outcome::Fail("CLUSTERDOWN".into())),
            final_read(read),
        ]
    };
    let (verdict, summary) = check_sets(&history(&[1, 2]));
    assert_eq!(verdict, Verdict::Valid);
    assert_eq!((summary.acknowledged, summary.indeterminate_absent), (2, 1));
    assert_eq!(check_sets(&history(&[2, 1, 3])).1.indeterminate_present, 1);
    let (verdict, summary) = check_sets(&history(&[1, 3]));
    assert!(matches!(verdict, Verdict::Invalid(_)));
    assert_eq!(summary.lost, vec![2]);
    assert_eq!(check_sets(&history(&[1, 2, 1])).1.duplicated, vec![1]);
    assert_eq!(check_sets(&history(&[1, 2, 3, 3])).1.duplicated, vec![3], "an indeterminate add applied twice");
    assert_eq!(check_sets(&history(&[1, 2, 4])).1.unexpected, vec![4], "a failed add is present");
    assert_eq!(check_sets(&history(&[1, 2, 9])).1.unexpected, vec![9]);
    let unread = vec![add(1, 1, ok())];
    assert!(matches!(check_sets(&unread).0, Verdict::Unknown(_)));
    // A key nobody added to holds nothing.
    assert_eq!(check_sets(&[final_read(&[5])]).1.unexpected, vec![5]);
}

#[test]
fn histories_round_trip_through_json_lines() {
    let ops = vec![
        write(1, 1, (0, 3)),
        read(2, None, (1, 2)),
        cas(2, 1, 5, true, (4, 6)),
        info(3, Call::Cas { expect: 5, new: 6 }, 5),
        op(4, Call::Write(9), (7, 8), Outcome::Fail("MOVED 1 x".into())),
        add(5, 77, ok()),
        final_read(&[77]),
    ];
    let text = to_json_lines(&ops);
    assert_eq!(text.lines().count(), 2 * ops.len());
    let mut back = from_json_lines(&text).unwrap();
    let mut expected = ops.clone();
    back.sort_by_key(|o| (o.process, o.invoke_ns));
    expected.sort_by_key(|o| (o.process, o.invoke_ns));
    assert_eq!(back, expected);
    assert!(from_json_lines("{\"not\": \"an event\"}").is_err());
    // An invocation the run ended before completing is indeterminate.
    let open_only: String = text.lines().take(1).map(|l| format!("{l}\n")).collect();
    let back = from_json_lines(&open_only).unwrap();
    assert_eq!(back.len(), 1);
    assert!(matches!(back[0].outcome, Outcome::Info(_)) && back[0].complete_ns.is_none());
}
