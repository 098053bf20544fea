//! [`ByteSet`]: the word-at-a-time search for the bytes that end a run of ordinary field bytes.

/// A set of up to four bytes, searched for eight bytes at a time: fields are short, so this
/// mostly finds the end of a field with one word load and a few ALU operations instead of a
/// loop with a data-dependent exit per byte.
#[derive(Debug, Clone, Copy)]
pub(super) struct ByteSet([u64; 4]);

impl ByteSet {
    /// The set of `bytes` (repeat one to have fewer).
    pub(super) fn new(bytes: [u8; 4]) -> Self {
        Self(bytes.map(|b| u64::from_le_bytes([b; 8])))
    }

    /// The high bit of every byte of `word` that is in the set.
    #[inline]
    fn matches(self, word: u64) -> u64 {
        /// The high bit of every zero byte of `x`, exactly (no false positives from borrows).
        fn zero_bytes(x: u64) -> u64 {
            const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
            !(((x & LOW7) + LOW7) | x | LOW7)
        }
        self.0
            .iter()
            .fold(0, |hits, &pattern| hits | zero_bytes(word ^ pattern))
    }

    /// The offset of the first byte at or after `start` that is in the set, or `input.len()`.
    #[inline]
    pub(super) fn find(self, input: &[u8], start: usize) -> usize {
        let rest = input.get(start..).unwrap_or_default();
        let (words, tail) = rest.as_chunks::<8>();
        for (k, word) in words.iter().enumerate() {
            let hits = self.matches(u64::from_le_bytes(*word));
            if hits != 0 {
                return start + k * 8 + (hits.trailing_zeros() / 8) as usize;
            }
        }
        // The last bytes, padded; padding positions are masked off (tail.len() < 8).
        let mut last = [0; 8];
        last[..tail.len()].copy_from_slice(tail);
        let hits = self.matches(u64::from_le_bytes(last)) & ((1 << (tail.len() * 8)) - 1);
        if hits == 0 {
            return input.len();
        }
        start + words.len() * 8 + (hits.trailing_zeros() / 8) as usize
    }
}
