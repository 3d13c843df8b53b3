//! Redis Cluster's key → slot function: CRC16/XMODEM of the key (or of its
//! `{hash tag}`) modulo 16384.
//!
//! It lives in the engine, not in the cluster layer, because the engine
//! serialises partitions by slot and must agree with the router bit for bit.

/// Number of hash slots, as in Redis Cluster.
pub const SLOT_COUNT: u16 = 16384;

/// A hash slot, always `< SLOT_COUNT`.
pub type Slot = u16;

/// CRC16/XMODEM (poly 0x1021, init 0, no reflection), table-driven.
pub fn crc16(data: &[u8]) -> u16 {
    data.iter().fold(0u16, |crc, &byte| (crc << 8) ^ CRC16_TABLE[usize::from(((crc >> 8) as u8) ^ byte)])
}

/// The part of `key` that is hashed: the bytes between the first `{` and the
/// first `}` after it, when that span is non-empty; otherwise the whole key.
pub fn hash_tag(key: &[u8]) -> &[u8] {
    let Some(open) = key.iter().position(|&b| b == b'{') else {
        return key;
    };
    let rest = &key[open + 1..];
    match rest.iter().position(|&b| b == b'}') {
        Some(0) | None => key,
        Some(close) => &rest[..close],
    }
}

/// The slot that owns `key`.
pub fn key_slot(key: &[u8]) -> Slot {
    let slot = crc16(hash_tag(key)) % SLOT_COUNT;
    debug_assert!(slot < SLOT_COUNT);
    slot
}

const CRC16_TABLE: [u16; 256] = build_table();

const fn build_table() -> [u16; 256] {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc16_check_value() {
        // The standard check value of CRC-16/XMODEM.
        assert_eq!(crc16(b"123456789"), 0x31C3);
    }

    #[test]
    fn design_vectors() {
        assert_eq!(key_slot(b"123456789"), 12739);
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"user1000"), 3443);
        assert_eq!(key_slot(b"{user1000}.following"), 3443);
        assert_eq!(key_slot(b"foo{}{bar}"), 8363);
        assert_eq!(key_slot(b"foo{{bar}}zap"), 4015);
    }

    #[test]
    fn hash_tag_edges() {
        assert_eq!(hash_tag(b""), b"");
        assert_eq!(hash_tag(b"{"), b"{");
        assert_eq!(hash_tag(b"}{"), b"}{");
        assert_eq!(hash_tag(b"a{b}c{d}"), b"b");
        assert_eq!(hash_tag(b"{}"), b"{}");
        assert_eq!(hash_tag(b"{x"), b"{x");
    }
}
