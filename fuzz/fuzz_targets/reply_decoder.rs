//! Arbitrary bytes through the frame decoder: no panic, and whatever parses
//! re-encodes (RESP3) to bytes that parse back to the same frame.

#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_proto::{parse_frame, Protocol};

fuzz_target!(|data: &[u8]| {
    if let Ok(Some((frame, used))) = parse_frame(data) {
        assert!(used <= data.len());
        let wire = frame.to_bytes(Protocol::Resp3);
        if let Ok(Some((again, _))) = parse_frame(&wire) {
            // NaN never equals itself; skip the comparison for doubles.
            if !format!("{frame:?}").contains("NaN") {
                assert_eq!(again, frame);
            }
        }
    }
});
