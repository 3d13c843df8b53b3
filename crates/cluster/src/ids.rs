//! Stable identifiers in Redis Cluster's form: 40 lowercase hex characters.
//!
//! Redis draws node ids at random and stores them in nodes.conf; shoal
//! derives them from what defines a node (its number and address) so every
//! node computes every id without storing or exchanging anything, and a
//! restarted node keeps its id. FNV-1a is used because it is tiny and its
//! output is fixed forever, unlike std's hasher.

/// 64-bit FNV-1a.
pub fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// SplitMix64's finaliser: spreads every input bit over the output.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// 40 hex characters derived from `seed`.
pub fn hex40(seed: &str) -> String {
    let base = fnv1a(seed.as_bytes());
    let mut out = String::with_capacity(48);
    for round in 1u64..=3 {
        out.push_str(&format!("{:016x}", mix(base.wrapping_add(round.wrapping_mul(0x9e37_79b9_7f4a_7c15)))));
    }
    out.truncate(40);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_40_hex_and_distinct() {
        let a = hex40("node/1/127.0.0.1:7000");
        let b = hex40("node/2/127.0.0.1:7001");
        assert_eq!(a.len(), 40);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, b);
        assert_eq!(a, hex40("node/1/127.0.0.1:7000"));
    }

    #[test]
    fn fnv_known_vector() {
        assert_eq!(fnv1a(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a(b"a"), 0xaf63dc4c8601ec8c);
    }
}
