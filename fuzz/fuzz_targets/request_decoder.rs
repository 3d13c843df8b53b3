//! Feeds arbitrary bytes, split at arbitrary points, to the server's request
//! decoder with small limits. It must never panic, never return a request
//! whose parts exceed the limits, and consume input monotonically.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use shoal_proto::{Command, DecodeLimits, RequestDecoder};

fuzz_target!(|data: &[u8]| {
    let Some((&split, input)) = data.split_first() else { return };
    let limits = DecodeLimits { max_bulk_bytes: 4096, max_array_len: 64, max_inline_bytes: 256, max_request_bytes: 16384 };
    let mut decoder = RequestDecoder::new(limits);
    let mut buf = BytesMut::new();
    let cut = (split as usize).min(input.len());
    for chunk in [&input[..cut], &input[cut..]] {
        buf.extend_from_slice(chunk);
        loop {
            let before = buf.len();
            match decoder.decode(&mut buf) {
                Ok(Some(args)) => {
                    assert!(args.len() <= limits.max_array_len);
                    assert!(args.iter().all(|a| a.len() <= limits.max_bulk_bytes.max(limits.max_inline_bytes)));
                    assert!(buf.len() < before);
                    // Parsing into a typed command must not panic either.
                    let _ = Command::parse(args);
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
});
