//! Arbitrary bytes through the frame decoder: no panic, and whatever parses
//! re-encodes (RESP3) to bytes that parse back and re-encode identically.
//! (Not `frame == parse(encode(frame))`: the encoder deliberately turns CR
//! and LF inside simple strings and errors into spaces, so a frame that
//! arrived with a lone CR comes back normalised once, then stable.)

#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_proto::{parse_frame, Protocol};

fuzz_target!(|data: &[u8]| {
    if let Ok(Some((frame, used))) = parse_frame(data) {
        assert!(used <= data.len());
        let wire = frame.to_bytes(Protocol::Resp3);
        let (again, again_used) = parse_frame(&wire).expect("our encoding parses").expect("our encoding is whole");
        assert_eq!(again_used, wire.len());
        assert_eq!(again.to_bytes(Protocol::Resp3), wire);
    }
});
