//! Seeded randomness for workloads: rand's ChaCha8, one of its portable generators, so the same
//! seed gives the same workload on every machine and with every release of rand 0.10.

use rand::rngs::ChaCha8Rng;
use rand::{RngExt as _, SeedableRng as _};

/// A deterministic generator for one workload item (or a whole run).
#[derive(Debug)]
pub(crate) struct Rng(ChaCha8Rng);

impl Rng {
    /// A generator for item `index` of a run seeded with `seed`: ChaCha's stream `index`, so
    /// items get independent streams whatever order they are processed in.
    pub(crate) fn for_item(seed: u64, index: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(index);
        Self(rng)
    }

    /// A number in `0..n` (`0` when `n` is 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        self.0.random_range(0..n)
    }

    /// An index into a slice of length `len` (`0` when `len` is 0).
    pub(crate) fn index(&mut self, len: usize) -> usize {
        if len == 0 {
            return 0;
        }
        self.0.random_range(0..len)
    }

    /// True with probability `1 / n`.
    pub(crate) fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }

    /// True with probability `percent / 100`.
    pub(crate) fn percent(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draw(mut r: Rng) -> Vec<u64> {
        (0..8).map(|_| r.below(u64::MAX)).collect()
    }

    #[test]
    fn the_same_seed_and_item_give_the_same_numbers() {
        assert_eq!(draw(Rng::for_item(42, 3)), draw(Rng::for_item(42, 3)));
        assert_ne!(draw(Rng::for_item(42, 3)), draw(Rng::for_item(43, 3)));
    }

    #[test]
    fn items_get_different_streams() {
        assert_ne!(draw(Rng::for_item(1, 0)), draw(Rng::for_item(1, 1)));
    }

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut r = Rng::for_item(7, 0);
        let mut seen = [false; 7];
        for _ in 0..1_000 {
            let v = r.below(7);
            assert!(v < 7);
            seen[v as usize] = true;
        }
        assert!(seen.iter().all(|s| *s));
        assert_eq!(r.below(0), 0);
        assert_eq!(r.index(0), 0);
    }
}
