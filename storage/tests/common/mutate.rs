//! Seeded mutants of a valid file, for the parsers' mutation tests (storage formats, model and
//! IDX files, configuration files): included by path where needed.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// `n` seeded mutants of `valid` (non-empty): a truncation, one to three bit flips, or one to
/// four bytes overwritten with random values, in equal shares.
pub fn mutants(valid: &[u8], seed: u64, n: usize) -> Vec<Vec<u8>> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let mut b = valid.to_vec();
            match rng.gen_range(0..3) {
                0 => b.truncate(rng.gen_range(0..valid.len())),
                1 => {
                    for _ in 0..rng.gen_range(1..=3) {
                        let i = rng.gen_range(0..b.len());
                        b[i] ^= 1 << rng.gen_range(0..8);
                    }
                }
                _ => {
                    for _ in 0..rng.gen_range(1..=4) {
                        let i = rng.gen_range(0..b.len());
                        b[i] = rng.gen();
                    }
                }
            }
            b
        })
        .collect()
}
