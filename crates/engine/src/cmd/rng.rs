//! The random numbers a command draws (SPOP, SRANDMEMBER, HRANDFIELD,
//! ZRANDMEMBER): splitmix64 from a seed the leader chose and put in the
//! log entry, so every replica draws the same numbers.

pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        splitmix64(&mut self.0)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        assert!(n > 0, "a random index needs a non-empty range");
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
}

/// One step of SplitMix64: advances `state` and returns the next number
/// (also the fault simulations' generator, `shoal_raft::memory::Rng`).
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
