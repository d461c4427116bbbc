//! The payloads sent in the scenarios: a `u64` and a 64-byte `[u64; 8]`.

/// A payload built from an index, whose checksum the consumer adds up.
pub trait Payload: Copy + Default + Send + Sync + 'static {
    /// Name used in tables (`u64`, `[u64;8]`).
    const NAME: &'static str;
    /// The payload for index `i`.
    fn make(i: u64) -> Self;
    /// The checksum a consumer adds (the real work of every handler).
    fn sum(&self) -> u64;
}

impl Payload for u64 {
    const NAME: &'static str = "u64";
    #[inline(always)]
    fn make(i: u64) -> Self {
        i
    }
    #[inline(always)]
    fn sum(&self) -> u64 {
        *self
    }
}

/// 64 bytes: one cache line per event.
pub type Line = [u64; 8];

impl Payload for Line {
    const NAME: &'static str = "[u64;8]";
    #[inline(always)]
    fn make(i: u64) -> Self {
        [i, i + 1, i + 2, i + 3, i + 4, i + 5, i + 6, i + 7]
    }
    #[inline(always)]
    fn sum(&self) -> u64 {
        self.iter().fold(0u64, |a, &b| a.wrapping_add(b))
    }
}

/// Sum of `P::make(i).sum()` for `i` in `start..start + n`.
pub fn expected_sum<P: Payload>(start: u64, n: u64) -> u64 {
    (start..start + n).fold(0u64, |a, i| a.wrapping_add(P::make(i).sum()))
}
