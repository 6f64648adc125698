//! The stress tests' random choices: a seed that can be replayed, and a cheap generator per
//! thread.

/// The base seed of the stress tests' random choices: `CACHEPOOL_SEED` or one from the clock,
/// printed so a failing run can be replayed (thread interleavings still differ).
pub fn seed() -> u64 {
    if let Ok(seed) = std::env::var("CACHEPOOL_SEED")
        && let Ok(seed) = seed.parse()
    {
        return seed;
    }
    if cfg!(miri) {
        return 0x5eed;
    }
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0x5eed)
}

/// A small deterministic generator (xorshift64*), one per thread: no shared state to
/// serialise the threads on.
#[derive(Clone, Debug)]
pub struct Rng(pub(super) u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        // splitmix64 of the seed, so that nearby seeds give unrelated streams; never 0.
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Rng((z ^ (z >> 31)) | 1)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next() >> 32) as usize * n) >> 32
    }

    /// True with probability `per_mille / 1000`.
    pub fn chance(&mut self, per_mille: u32) -> bool {
        per_mille > 0 && self.below(1000) < per_mille as usize
    }
}
