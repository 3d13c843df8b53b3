//! Codec throughput: decoding pipelined requests, parsing them into typed
//! commands, and encoding replies. Run: `cargo bench -p shoal-proto --bench codec`.

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use shoal_proto::{Command, Frame, Protocol, RequestDecoder};

const BATCH: usize = 1000;

fn pipeline() -> BytesMut {
    let mut buf = BytesMut::new();
    for i in 0..BATCH {
        let key = format!("key:{i:08}");
        let cmd = if i % 2 == 0 {
            format!("*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n$32\r\n{}\r\n", key.len(), "v".repeat(32))
        } else {
            format!("*2\r\n$3\r\nGET\r\n${}\r\n{key}\r\n", key.len())
        };
        buf.extend_from_slice(cmd.as_bytes());
    }
    buf
}

fn decode(c: &mut Criterion) {
    let input = pipeline();
    let mut group = c.benchmark_group("codec");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("decode_pipeline", |b| {
        b.iter_batched_ref(
            || (RequestDecoder::default(), input.clone()),
            |(dec, buf)| {
                let mut n = 0;
                while let Some(req) = dec.decode(buf).unwrap() {
                    n += req.len();
                }
                n
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("decode_and_parse_pipeline", |b| {
        b.iter_batched_ref(
            || (RequestDecoder::default(), input.clone()),
            |(dec, buf)| {
                let mut n = 0;
                while let Some(req) = dec.decode(buf).unwrap() {
                    n += matches!(Command::parse(req), Ok(Command::Get(_))) as usize;
                }
                n
            },
            BatchSize::SmallInput,
        )
    });
    let value = Frame::Bulk(Bytes::from(vec![b'v'; 32]));
    for (name, protocol) in [("encode_bulk_resp2", Protocol::Resp2), ("encode_bulk_resp3", Protocol::Resp3)] {
        group.bench_function(name, |b| {
            let mut out = BytesMut::with_capacity(64 * BATCH);
            b.iter(|| {
                out.clear();
                for _ in 0..BATCH {
                    value.encode(protocol, &mut out);
                }
                out.len()
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(2));
    targets = decode
}
criterion_main!(benches);
