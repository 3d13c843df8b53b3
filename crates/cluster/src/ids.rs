//! Stable identifiers in Redis Cluster's form: 40 lowercase hex characters.
//!
//! Redis draws node ids at random and stores them in nodes.conf; shoal
//! derives them from what defines a node (its number and address) so every
//! node computes every id without storing or exchanging anything, and a
//! restarted node keeps its id. FNV-1a is used because it is tiny and its
//! output is fixed forever, unlike std's hasher.

/// 64-bit FNV-1a.
pub fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// 40 hex characters derived from `seed`.
pub fn hex40(seed: &str) -> String {
    let mut out = String::with_capacity(48);
    for round in 0u8..3 {
        let mut input = seed.as_bytes().to_vec();
        input.push(round);
        out.push_str(&format!("{:016x}", fnv1a(&input)));
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
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, b);
        assert_eq!(a, hex40("node/1/127.0.0.1:7000"));
    }

    #[test]
    fn fnv_known_vector() {
        assert_eq!(fnv1a(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a(b"a"), 0xaf63dc4c8601ec8c);
    }
}
