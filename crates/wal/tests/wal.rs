//! The WAL on a real filesystem: what was acknowledged comes back after a
//! reopen, a torn tail is cut, corruption is refused, concurrent appends
//! share fsyncs, and purged segments are deleted.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use shoal_wal::recover::Recovered;
use shoal_wal::segment::{list, segment_path};
use shoal_wal::{FsyncPolicy, Record, Wal, WalError, WalOptions};

fn dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("shoal-wal-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn entry(group: u32, index: u64, term: u64) -> Record {
    Record::Entry { group, index, term, payload: Bytes::from(format!("g{group}-i{index}-t{term}")) }
}

fn options() -> WalOptions {
    WalOptions { segment_bytes: 4096, ..WalOptions::default() }
}

#[test]
fn reopen_recovers_what_was_acknowledged() {
    let d = dir("reopen");
    let (wal, recovered) = Wal::open(&d, options()).unwrap();
    assert_eq!(recovered, Recovered::default());
    wal.append_sync((1..=5).map(|i| entry(1, i, 1)).collect()).unwrap();
    wal.append_sync(vec![entry(2, 1, 1), Record::Vote { group: 2, payload: Bytes::from_static(b"t1:n2") }]).unwrap();
    wal.append_sync(vec![Record::Truncate { group: 1, after: 3 }, entry(1, 4, 2)]).unwrap();
    wal.append_sync(vec![Record::Purge { group: 1, upto: 2 }]).unwrap();
    drop(wal);

    let (_wal, recovered) = Wal::open(&d, options()).unwrap();
    let g1 = recovered.group(1);
    assert_eq!(g1.entries.iter().map(|(i, (t, _))| (*i, *t)).collect::<Vec<_>>(), vec![(3, 1), (4, 2)]);
    assert_eq!(g1.purged, 2);
    let g2 = recovered.group(2);
    assert_eq!(g2.vote.as_deref(), Some(&b"t1:n2"[..]));
    assert_eq!(g2.entries.len(), 1);
}

#[test]
fn torn_tail_is_cut_and_the_log_goes_on() {
    let d = dir("torn");
    let (wal, _) = Wal::open(&d, options()).unwrap();
    wal.append_sync(vec![entry(1, 1, 1), entry(1, 2, 1)]).unwrap();
    drop(wal);
    // A crash mid-write: half a frame at the end of the newest segment.
    let newest = *list(&d).unwrap().last().unwrap();
    let mut partial = bytes::BytesMut::new();
    entry(1, 3, 1).encode(&mut partial);
    let mut file = OpenOptions::new().append(true).open(segment_path(&d, newest)).unwrap();
    file.write_all(&partial[..partial.len() / 2]).unwrap();
    drop(file);

    let (wal, recovered) = Wal::open(&d, options()).unwrap();
    assert_eq!(recovered.torn_bytes, (partial.len() / 2) as u64);
    assert_eq!(recovered.group(1).entries.keys().copied().collect::<Vec<_>>(), vec![1, 2]);
    wal.append_sync(vec![entry(1, 3, 1)]).unwrap();
    drop(wal);
    let (_wal, recovered) = Wal::open(&d, options()).unwrap();
    assert_eq!(recovered.torn_bytes, 0);
    assert_eq!(recovered.group(1).entries.keys().copied().collect::<Vec<_>>(), vec![1, 2, 3]);
}

#[test]
fn zero_padding_ends_a_segment_and_a_torn_record_in_it_is_cut() {
    // What a crash leaves: the segment zero-filled past its last record.
    let d = dir("padding");
    let (wal, _) = Wal::open(&d, options()).unwrap();
    wal.append_sync(vec![entry(1, 1, 1), entry(1, 2, 1)]).unwrap();
    drop(wal);
    let newest = *list(&d).unwrap().last().unwrap();
    let path = segment_path(&d, newest);
    let mut file = OpenOptions::new().append(true).open(&path).unwrap();
    file.write_all(&[0u8; 4096]).unwrap();
    drop(file);
    let (wal, recovered) = Wal::open(&d, options()).unwrap();
    assert_eq!(recovered.torn_bytes, 0, "padding is not a torn write");
    assert_eq!(recovered.group(1).entries.keys().copied().collect::<Vec<_>>(), vec![1, 2]);
    drop(wal);

    // A record cut short inside the padding: torn, cut, and the log goes on.
    let newest = *list(&d).unwrap().last().unwrap();
    let path = segment_path(&d, newest);
    let mut partial = bytes::BytesMut::new();
    entry(1, 3, 1).encode(&mut partial);
    let cut = partial.len() / 2;
    let mut file = OpenOptions::new().append(true).open(&path).unwrap();
    file.write_all(&partial[..cut]).unwrap();
    file.write_all(&vec![0u8; partial.len() - cut + 4096]).unwrap();
    drop(file);
    let (wal, recovered) = Wal::open(&d, options()).unwrap();
    assert!(recovered.torn_bytes > 0);
    assert_eq!(recovered.group(1).entries.keys().copied().collect::<Vec<_>>(), vec![1, 2]);
    wal.append_sync(vec![entry(1, 3, 1)]).unwrap();
    drop(wal);
    let (_wal, recovered) = Wal::open(&d, options()).unwrap();
    assert_eq!(recovered.group(1).entries.keys().copied().collect::<Vec<_>>(), vec![1, 2, 3]);

    // Data after zeros was never acknowledged in order: torn, not padding.
    let newest = *list(&d).unwrap().last().unwrap();
    let mut file = OpenOptions::new().append(true).open(segment_path(&d, newest)).unwrap();
    file.write_all(&[0u8; 64]).unwrap();
    file.write_all(b"late sector").unwrap();
    drop(file);
    let (_wal, recovered) = Wal::open(&d, options()).unwrap();
    assert!(recovered.torn_bytes > 0);
    assert_eq!(recovered.group(1).entries.keys().copied().collect::<Vec<_>>(), vec![1, 2, 3]);
}

#[test]
fn a_corrupt_frame_refuses_to_open() {
    let d = dir("corrupt");
    let (wal, _) = Wal::open(&d, options()).unwrap();
    wal.append_sync(vec![entry(1, 1, 1), entry(1, 2, 1)]).unwrap();
    drop(wal);
    let first = list(&d).unwrap()[0];
    let path = segment_path(&d, first);
    let mut data = std::fs::read(&path).unwrap();
    let last = data.len() - 3;
    data[last] ^= 0xff;
    std::fs::write(&path, data).unwrap();
    assert!(matches!(Wal::open(&d, options()), Err(WalError::Corrupt { .. })));
}

/// Every segment starts with a versioned header: another format version, or
/// a file that is not a segment, refuses to open with a clear reason; a
/// header cut short (a crash as the newest segment was begun) is a torn
/// tail like any other.
#[test]
fn segments_carry_a_format_version() {
    let d = dir("format");
    let (wal, _) = Wal::open(&d, options()).unwrap();
    wal.append_sync(vec![entry(1, 1, 1)]).unwrap();
    drop(wal);
    let first = list(&d).unwrap()[0];
    let path = segment_path(&d, first);
    let good = std::fs::read(&path).unwrap();
    assert_eq!(&good[..8], b"SHOALWAL");

    let mut other = good.clone();
    let version = shoal_wal::segment::FORMAT_VERSION + 1;
    other[8..12].copy_from_slice(&version.to_le_bytes());
    std::fs::write(&path, &other).unwrap();
    let refused = Wal::open(&d, options()).err().expect("another version must not open");
    assert!(refused.to_string().contains(&format!("format version {version}")), "{refused}");
    std::fs::write(&path, b"not a wal segment at all").unwrap();
    let refused = Wal::open(&d, options()).err().expect("a foreign file must not open");
    assert!(refused.to_string().contains("not a shoal WAL segment"), "{refused}");
    std::fs::write(&path, &good).unwrap();

    // The newest segment holds only the first bytes of its header.
    let next = first + 100;
    std::fs::write(segment_path(&d, next), &good[..5]).unwrap();
    let (_wal, recovered) = Wal::open(&d, options()).unwrap();
    assert_eq!(recovered.torn_bytes, 5);
    assert_eq!(recovered.group(1).entries.keys().copied().collect::<Vec<_>>(), vec![1]);
}

/// A crash (a power cut) answers nothing it did not fsync: after cutting
/// the newest segment at the reported durable length, every acknowledged
/// record is there, and an append is there only if it was acknowledged or
/// never answered.
#[test]
fn a_crash_keeps_what_was_acknowledged_and_answers_nothing_else() {
    let d = dir("crash");
    let slow = WalOptions { fsync_delay: std::time::Duration::from_millis(50), ..options() };
    let (wal, _) = Wal::open(&d, slow).unwrap();
    wal.append_sync(vec![entry(1, 1, 1), entry(1, 2, 1)]).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    wal.append(vec![entry(1, 3, 1)], move |r| {
        let _ = tx.send(r.is_ok());
    })
    .unwrap();
    // Entry 3 is written: the writer is inside its wait before the fsync.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while wal.stats().records.load(Ordering::Relaxed) < 3 {
        assert!(std::time::Instant::now() < deadline, "entry 3 was never written");
        std::thread::yield_now();
    }
    let point = wal.crash();
    assert!(rx.recv().is_err(), "a write cut off before its fsync was answered");
    assert!(wal.append_sync(vec![entry(1, 4, 1)]).is_err(), "the crashed log took an append");
    drop(wal);
    let path = segment_path(&d, point.segment);
    let written = std::fs::read(&path).unwrap().iter().rposition(|&b| b != 0).unwrap() as u64 + 1;
    assert!(written > point.synced_len, "entry 3 was written ({written} bytes) past the durable {}", point.synced_len);
    OpenOptions::new().write(true).open(&path).unwrap().set_len(point.synced_len).unwrap();
    let (_wal, recovered) = Wal::open(&d, options()).unwrap();
    assert_eq!(recovered.group(1).entries.keys().copied().collect::<Vec<_>>(), vec![1, 2]);
}

#[test]
fn concurrent_appends_share_fsyncs() {
    let d = dir("group-commit");
    let (wal, _) = Wal::open(&d, WalOptions { fsync: FsyncPolicy::Always, ..WalOptions::default() }).unwrap();
    let wal = Arc::new(wal);
    let (threads, per_thread) = (8u32, 100u64);
    std::thread::scope(|s| {
        for group in 0..threads {
            let wal = Arc::clone(&wal);
            s.spawn(move || {
                for index in 1..=per_thread {
                    wal.append_sync(vec![entry(group, index, 1)]).unwrap();
                }
            });
        }
    });
    let stats = wal.stats();
    let (appends, fsyncs) = (stats.appends.load(Ordering::Relaxed), stats.fsyncs.load(Ordering::Relaxed));
    println!("appends={appends} batches={} fsyncs={fsyncs}", stats.batches.load(Ordering::Relaxed));
    assert_eq!(appends, u64::from(threads) * per_thread);
    assert!(fsyncs < appends, "8 concurrent appenders never shared an fsync ({fsyncs} for {appends})");
    drop(wal);
    let (_wal, recovered) = Wal::open(&d, options()).unwrap();
    for group in 0..threads {
        assert_eq!(recovered.group(group).entries.len() as u64, per_thread);
    }
}

#[test]
fn purged_segments_are_deleted_and_the_rest_survives() {
    let d = dir("purge");
    let (wal, _) = Wal::open(&d, options()).unwrap();
    for index in 1..=400 {
        wal.append_sync(vec![entry(1, index, 1), entry(2, index, 1)]).unwrap();
    }
    let before = list(&d).unwrap().len();
    assert!(before > 5, "4 KiB segments should have rotated: {before}");
    wal.append_sync(vec![Record::Purge { group: 1, upto: 390 }, Record::Purge { group: 2, upto: 380 }]).unwrap();
    // Deletion happens at the next rotation.
    for index in 401..=500 {
        wal.append_sync(vec![entry(1, index, 1)]).unwrap();
    }
    let deleted = wal.stats().segments_deleted.load(Ordering::Relaxed);
    assert!(deleted > 0, "purged segments must be deleted");
    drop(wal);
    let (_wal, recovered) = Wal::open(&d, options()).unwrap();
    let g1: Vec<u64> = recovered.group(1).entries.keys().copied().collect();
    let g2: Vec<u64> = recovered.group(2).entries.keys().copied().collect();
    assert_eq!(g1, (391..=500).collect::<Vec<_>>());
    assert_eq!(g2, (381..=400).collect::<Vec<_>>());
    assert_eq!((recovered.group(1).purged, recovered.group(2).purged), (390, 380));
}

/// A dropped group is gone after a reopen, its old entries pin no segment,
/// and a replica of it opened later starts from nothing.
#[test]
fn a_dropped_group_is_forgotten_and_frees_its_segments() {
    let d = dir("drop");
    let (wal, _) = Wal::open(&d, options()).unwrap();
    wal.append_sync(vec![Record::Vote { group: 2, payload: Bytes::from_static(b"t1:n1") }]).unwrap();
    for index in 1..=600 {
        wal.append_sync(vec![entry(2, index, 1)]).unwrap();
    }
    wal.append_sync(vec![entry(1, 1, 1), Record::Purge { group: 1, upto: 1 }]).unwrap();
    assert!(list(&d).unwrap().len() > 3, "4 KiB segments should have rotated");
    assert!(wal.pins().oldest.iter().any(|(g, _)| *g == 2), "group 2 pins the oldest segment");
    wal.append_sync(vec![Record::Drop { group: 2 }]).unwrap();
    // Deleted by the writer right after it answers the append.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while list(&d).unwrap().len() > 1 {
        assert!(std::time::Instant::now() < deadline, "segments before the drop kept: {:?}", wal.pins());
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    wal.append_sync(vec![entry(2, 7, 3)]).unwrap();
    drop(wal);
    let (_wal, recovered) = Wal::open(&d, options()).unwrap();
    let g2 = recovered.group(2);
    assert_eq!(g2.entries.keys().copied().collect::<Vec<_>>(), vec![7], "only the new replica's entry");
    assert_eq!((g2.vote, g2.purged), (None, 0));
}

/// Random appends, truncations, purges and votes over several groups, with
/// reopens in between: the recovered state always equals a model that
/// applied the same records in memory. SHOAL_SEED replays a run.
#[test]
fn random_histories_recover_exactly() {
    let seed = std::env::var("SHOAL_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random);
    println!("SHOAL_SEED={seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let d = dir("random");
    let mut model = Recovered::default();
    let mut next_index = [1u64; 3];
    for _round in 0..5 {
        let (wal, recovered) = Wal::open(&d, options()).unwrap();
        assert_eq!(recovered.groups, model.groups, "seed {seed}");
        for _ in 0..100 {
            let group = rng.random_range(0..3u32);
            let g = group as usize;
            let purged = model.group(group).purged;
            let record = match rng.random_range(0..10) {
                // Raft truncates only uncommitted entries, above the purge point.
                0 if next_index[g] > purged + 2 => {
                    let after = rng.random_range(purged..next_index[g] - 1);
                    next_index[g] = after + 1;
                    Record::Truncate { group, after }
                }
                1 if next_index[g] > 2 => {
                    let upto = rng.random_range(0..next_index[g] - 1);
                    Record::Purge { group, upto }
                }
                2 => Record::Vote { group, payload: Bytes::from(format!("vote-{}", rng.random::<u32>())) },
                // The replica moved away (and perhaps back, as a new one).
                3 if rng.random_bool(0.2) => {
                    next_index[g] = 1;
                    Record::Drop { group }
                }
                _ => {
                    let index = next_index[g].max(model.group(group).purged + 1);
                    next_index[g] = index + 1;
                    entry(group, index, rng.random_range(1..4))
                }
            };
            model.apply(&record);
            wal.append_sync(vec![record]).unwrap();
        }
        model.records = 0;
    }
    let (_wal, recovered) = Wal::open(&d, options()).unwrap();
    assert_eq!(recovered.groups, model.groups, "seed {seed}");
}

/// A record too big for the format is refused by `append`, before the
/// writer thread sees it (it used to panic there, failing every group of
/// the node), and the log goes on.
#[test]
fn an_oversized_record_is_refused_and_the_log_goes_on() {
    let d = dir("oversized");
    let (wal, _) = Wal::open(&d, options()).unwrap();
    // calloc'd: no page of it is touched.
    let huge = Bytes::from(vec![0u8; shoal_wal::MAX_BODY_BYTES as usize]);
    let refused = wal.append_sync(vec![Record::Entry { group: 1, index: 1, term: 1, payload: huge }]);
    assert!(matches!(refused, Err(WalError::TooLarge { .. })), "{refused:?}");
    wal.append_sync(vec![entry(1, 1, 1)]).unwrap();
    assert!(wal.failure().is_none());
    drop(wal);
    let (_, recovered) = Wal::open(&d, options()).unwrap();
    assert_eq!(recovered.groups[&1].entries.len(), 1);
}

/// A failed write, fsync or rotation fails the log for good, and
/// `failure` says so (the server stops on it).
#[test]
fn a_failed_rotation_fails_every_later_append_and_is_reported() {
    let d = dir("failed-rotation");
    let (wal, _) = Wal::open(&d, options()).unwrap();
    std::fs::remove_dir_all(&d).unwrap();
    let mut index = 0;
    // The first append past the segment size rotates, which cannot create
    // the next segment: that append is answered, the next one fails.
    let failed = loop {
        index += 1;
        assert!(index < 1000, "the rotation never failed");
        if let Err(e) = wal.append_sync(vec![entry(1, index, 1)]) {
            break e;
        }
    };
    let reason = wal.failure().expect("the failure is reported").to_string();
    assert!(reason.contains("rotation failed"), "{reason}");
    assert!(failed.to_string().contains("rotation failed"), "{failed}");
    assert!(wal.append_sync(vec![entry(1, index + 1, 1)]).is_err());
}

/// Crashes `wal` as a power cut would (what the page cache held past the
/// last fsync is lost) and reopens `d`.
fn power_cut(wal: Wal, d: &std::path::Path) -> Recovered {
    let point = wal.crash();
    drop(wal);
    let path = segment_path(d, point.segment);
    OpenOptions::new().write(true).open(&path).unwrap().set_len(point.synced_len).unwrap();
    Wal::open(d, options()).unwrap().1
}

/// Under `--fsync everysec` and `never`, appends are answered once written,
/// but a vote or truncation (`append_fsynced`) is answered only once
/// fsynced: a power cut right after must keep it, and everything before it.
#[test]
fn fsynced_appends_survive_a_power_cut_under_every_policy() {
    for policy in [FsyncPolicy::EverySec, FsyncPolicy::Never] {
        let d = dir(&format!("fsynced-{policy:?}"));
        let (wal, _) = Wal::open(&d, WalOptions { fsync: policy, ..options() }).unwrap();
        wal.append_sync(vec![entry(1, 1, 1)]).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let vote = Record::Vote { group: 1, payload: Bytes::from_static(b"term 2") };
        wal.append_fsynced(vec![Record::Truncate { group: 1, after: 0 }, vote], move |r| {
            let _ = tx.send(r.is_ok());
        })
        .unwrap();
        assert_eq!(rx.recv(), Ok(true));
        let recovered = power_cut(wal, &d);
        let group = recovered.group(1);
        assert_eq!(group.vote.as_deref(), Some(&b"term 2"[..]), "{policy:?}: the vote was lost");
        assert!(group.entries.is_empty(), "{policy:?}: the truncation was lost");
    }
}

/// Under `everysec`, a purge deletes the segments it frees at once, but
/// only once the purge is durable: a power cut right after must never leave
/// the purge point behind the first entry still on disk (a hole in the log).
#[test]
fn segments_freed_by_a_purge_go_only_once_the_purge_is_durable() {
    let d = dir("purge-durable");
    let everysec = WalOptions { fsync: FsyncPolicy::EverySec, ..options() };
    let (wal, _) = Wal::open(&d, everysec).unwrap();
    for i in 1..=400 {
        wal.append_sync(vec![entry(1, i, 1)]).unwrap();
    }
    assert!(list(&d).unwrap().len() > 3, "the entries span several segments");
    wal.append_sync(vec![Record::Purge { group: 1, upto: 300 }]).unwrap();
    let recovered = power_cut(wal, &d);
    let group = recovered.group(1);
    let first = group.entries.keys().next().copied();
    assert_eq!(first, Some(group.purged + 1), "entries must start right after the purge point");
}
