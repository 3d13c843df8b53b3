//! Single lock vs striped locks: a `Mutex<HashMap>`, an `RwLock<HashMap>` and
//! the shipped `Db`, behind one small trait, under read-mostly and balanced
//! mixes with 1, 2 and 4 threads. Results and discussion:
//! `docs/engine-locks.md`.
//!
//! Run with `cargo bench -p shoal-engine --bench locks`.
//!
//! The baselines do the same work per operation as `Db`: hash the key once
//! with hashbrown's default hasher, check the expiry on every read, and copy
//! the key and the value into fresh `Bytes` on every write (as `Db` does, see
//! `own()` in `db.rs`), making the copies and freeing the replaced value
//! outside the lock, as `Db` does too.

use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use hashbrown::{DefaultHashBuilder, HashMap};
use parking_lot::{Mutex, RwLock};
use shoal_engine::Db;

/// Keys in the store, all present before measuring.
const KEYS: usize = 100_000;
const KEY_LEN: usize = 16;
const VALUE_LEN: usize = 32;
/// Operations per thread per iteration.
const BATCH: usize = 4_096;
/// The clock passed to every operation; nothing ever expires.
const NOW: u64 = 1_700_000_000_000;
const THREADS: [usize; 3] = [1, 2, 4];

/// What the benchmark needs from a store.
trait Store: Sync {
    fn get(&self, key: &[u8], now: u64) -> Option<Bytes>;
    fn put(&self, key: Bytes, value: Bytes, now: u64);
}

type Map = HashMap<Bytes, (Bytes, Option<u64>), DefaultHashBuilder>;

/// Redis's rule, as in the engine: live until strictly past the expiry.
fn live(entry: &(Bytes, Option<u64>), now: u64) -> bool {
    entry.1.is_none_or(|at| now <= at)
}

fn new_map() -> Map {
    HashMap::with_capacity_and_hasher(KEYS, DefaultHashBuilder::default())
}

struct MutexStore(Mutex<Map>);

impl Store for MutexStore {
    fn get(&self, key: &[u8], now: u64) -> Option<Bytes> {
        let map = self.0.lock();
        map.get(key).filter(|e| live(e, now)).map(|e| e.0.clone())
    }

    fn put(&self, key: Bytes, value: Bytes, _now: u64) {
        let key = Bytes::copy_from_slice(&key);
        let value = Bytes::copy_from_slice(&value);
        let old = self.0.lock().insert(key, (value, None));
        drop(old);
    }
}

struct RwLockStore(RwLock<Map>);

impl Store for RwLockStore {
    fn get(&self, key: &[u8], now: u64) -> Option<Bytes> {
        let map = self.0.read();
        map.get(key).filter(|e| live(e, now)).map(|e| e.0.clone())
    }

    fn put(&self, key: Bytes, value: Bytes, _now: u64) {
        let key = Bytes::copy_from_slice(&key);
        let value = Bytes::copy_from_slice(&value);
        let old = self.0.write().insert(key, (value, None));
        drop(old);
    }
}

impl Store for Db {
    fn get(&self, key: &[u8], now: u64) -> Option<Bytes> {
        Db::get(self, key, now)
    }

    fn put(&self, key: Bytes, value: Bytes, now: u64) {
        Db::put(self, key, value, now)
    }
}

/// The keys and some values, as `Bytes` over static memory, so that handing
/// one to `put` costs nothing: they stand for slices of a connection's read
/// buffer, which the store must copy.
struct Data {
    keys: Vec<Bytes>,
    values: Vec<Bytes>,
}

impl Data {
    fn new() -> Self {
        let keys = (0..KEYS)
            .map(|i| {
                let k = format!("key:{i:012}");
                assert_eq!(k.len(), KEY_LEN);
                Bytes::from_static(k.into_bytes().leak())
            })
            .collect();
        let values = (0..1024)
            .map(|i| {
                let v = format!("value:{i:026}");
                assert_eq!(v.len(), VALUE_LEN);
                Bytes::from_static(v.into_bytes().leak())
            })
            .collect();
        Data { keys, values }
    }

    fn fill(&self, store: &dyn Store) {
        for (i, key) in self.keys.iter().enumerate() {
            store.put(key.clone(), self.values[i % self.values.len()].clone(), NOW);
        }
    }
}

/// xorshift64*: a few cycles per draw, the same cost for every store.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// One thread's share of one iteration: `BATCH` operations on uniformly
/// random keys, `write_pct` percent of them writes.
fn run_batch(store: &dyn Store, data: &Data, rng: &mut Rng, write_pct: u64) {
    for _ in 0..BATCH {
        let r = rng.next();
        let key = &data.keys[(r >> 32) as usize % KEYS];
        if r % 100 < write_pct {
            let value = data.values[(r >> 8) as usize % data.values.len()].clone();
            store.put(key.clone(), value, NOW);
        } else {
            black_box(store.get(black_box(key), NOW));
        }
    }
}

/// Runs `iters` iterations on `threads` threads and returns the wall time
/// from the moment all threads are released until the last one finishes.
/// Threads are started once per sample, not per iteration.
fn measure(store: &dyn Store, data: &Data, threads: usize, write_pct: u64, iters: u64) -> Duration {
    let start_line = Barrier::new(threads + 1);
    let started = std::thread::scope(|s| {
        for t in 0..threads {
            let start_line = &start_line;
            s.spawn(move || {
                let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ ((t as u64 + 1) << 32) ^ iters);
                start_line.wait();
                for _ in 0..iters {
                    run_batch(store, data, &mut rng, write_pct);
                }
            });
        }
        start_line.wait();
        Instant::now()
    });
    started.elapsed()
}

fn locks(c: &mut Criterion) {
    let data = Data::new();
    let stores: Vec<(&str, Box<dyn Store>)> = vec![
        ("mutex", Box::new(MutexStore(Mutex::new(new_map())))),
        ("rwlock", Box::new(RwLockStore(RwLock::new(new_map())))),
        ("db", Box::new(Db::new())),
    ];
    for (_, store) in &stores {
        data.fill(store.as_ref());
        assert!(store.get(&data.keys[KEYS - 1], NOW).is_some());
    }

    for (mix, write_pct) in [("read95", 5), ("read50", 50)] {
        let mut group = c.benchmark_group(format!("locks/{mix}"));
        group.sample_size(20).warm_up_time(Duration::from_millis(700)).measurement_time(Duration::from_secs(2));
        for threads in THREADS {
            group.throughput(Throughput::Elements((threads * BATCH) as u64));
            for (name, store) in &stores {
                group.bench_with_input(BenchmarkId::new(*name, threads), &threads, |b, &threads| {
                    b.iter_custom(|iters| measure(store.as_ref(), &data, threads, write_pct, iters))
                });
            }
        }
        group.finish();
    }
}

criterion_group!(benches, locks);
criterion_main!(benches);
