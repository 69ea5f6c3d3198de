//! The word-count text generator.
//!
//! * Vocabulary: [`VOCABULARY_SIZE`] distinct words, each of length 2..=10 (uniform) over
//!   `a..=z` (uniform letters), drawn from `SplitMix64::new(seed)`; a word equal to an earlier
//!   one is discarded and drawn again. The i-th word kept has Zipf rank i + 1.
//! * Ranks: Zipf with exponent [`ZIPF_EXPONENT`] over the vocabulary
//!   (`P(rank k) = k^-1.1 / sum_j j^-1.1`), sampled with Walker's alias method from
//!   `SplitMix64::new(seed ^ 0x5A1F)`: one 64-bit draw per word, the high 32 bits pick a column
//!   (multiply-shift), the low 32 bits are compared with the column's threshold.
//! * Lines: 5..=20 words (uniform, one draw from the rank generator per line, before its words),
//!   separated by single spaces, each line ending with `'\n'`.
//! * Size: whole lines are written until at least the requested number of bytes is out, so the
//!   file is the requested size rounded up to the end of its last line.
//!
//! The same seed and size give the same bytes on every run.

use std::io::Write;

use crate::mix::SplitMix64;

/// Number of distinct words in the vocabulary.
pub const VOCABULARY_SIZE: usize = 10_000;
/// The Zipf exponent of word ranks.
pub const ZIPF_EXPONENT: f64 = 1.1;
/// The default seed.
pub const DEFAULT_SEED: u64 = 0x0045_4D42_4552; // "EMBER"
/// The default size of the generated text, in bytes (200 MB).
pub const DEFAULT_SIZE: u64 = 200_000_000;
/// Fewest words on a line.
pub const MIN_LINE_WORDS: u64 = 5;
/// Most words on a line.
pub const MAX_LINE_WORDS: u64 = 20;

/// The vocabulary of `size` distinct lowercase words, most frequent first.
pub fn vocabulary(seed: u64, size: usize) -> Vec<String> {
    let mut rng = SplitMix64::new(seed);
    let mut seen = rustc_hash::FxHashSet::default();
    let mut words = Vec::with_capacity(size);
    while words.len() < size {
        let len = 2 + rng.below(9) as usize;
        let word: String = (0..len)
            .map(|_| char::from(b'a' + rng.below(26) as u8))
            .collect();
        if seen.insert(word.clone()) {
            words.push(word);
        }
    }
    words
}

/// The probabilities of Zipf ranks 1..=n with exponent `s`, normalised to sum to 1.
pub fn zipf_probabilities(n: usize, s: f64) -> Vec<f64> {
    let weights: Vec<f64> = (1..=n).map(|k| (k as f64).powf(-s)).collect();
    let total: f64 = weights.iter().sum();
    weights.iter().map(|w| w / total).collect()
}

/// Walker's alias table: samples an index with given probabilities from one 64-bit draw.
#[derive(Debug, Clone)]
pub struct AliasTable {
    /// Per column: draw `< threshold` (on 32 bits) keeps the column, otherwise take its alias.
    threshold: Vec<u64>,
    alias: Vec<u32>,
}

impl AliasTable {
    /// The table for `probabilities` (non-negative, summing to 1, at most 2^32 entries).
    pub fn new(probabilities: &[f64]) -> AliasTable {
        let n = probabilities.len();
        let mut scaled: Vec<f64> = probabilities.iter().map(|p| p * n as f64).collect();
        let mut alias: Vec<u32> = (0..n as u32).collect();
        let mut small: Vec<usize> = Vec::new();
        let mut large: Vec<usize> = Vec::new();
        for (i, &p) in scaled.iter().enumerate() {
            if p < 1.0 {
                small.push(i);
            } else {
                large.push(i);
            }
        }
        while let (Some(&s), Some(&l)) = (small.last(), large.last()) {
            small.pop();
            alias[s] = l as u32;
            scaled[l] -= 1.0 - scaled[s];
            if scaled[l] < 1.0 {
                large.pop();
                small.push(l);
            }
        }
        // Whatever is left is 1 up to rounding: always keep the column.
        for i in small.into_iter().chain(large) {
            scaled[i] = 1.0;
        }
        let threshold = scaled
            .iter()
            .map(|&p| (p.clamp(0.0, 1.0) * 4_294_967_296.0) as u64)
            .collect();
        AliasTable { threshold, alias }
    }

    /// The index chosen by the 64 random bits `r`.
    #[inline]
    pub fn sample(&self, r: u64) -> usize {
        let column = ((r >> 32) * self.threshold.len() as u64) >> 32;
        let column = column as usize;
        if (r & 0xFFFF_FFFF) < self.threshold[column] {
            column
        } else {
            self.alias[column] as usize
        }
    }
}

/// What [`generate`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextStats {
    /// Bytes written.
    pub bytes: u64,
    /// Lines written.
    pub lines: u64,
    /// Words written.
    pub words: u64,
}

/// Writes at least `size` bytes of text (whole lines) generated from `seed` to `out`.
///
/// `progress` is called with the number of bytes written so far after each buffer flush.
pub fn generate(
    seed: u64,
    size: u64,
    out: &mut impl Write,
    mut progress: impl FnMut(u64),
) -> std::io::Result<TextStats> {
    let words = vocabulary(seed, VOCABULARY_SIZE);
    let table = AliasTable::new(&zipf_probabilities(VOCABULARY_SIZE, ZIPF_EXPONENT));
    let mut rng = SplitMix64::new(seed ^ 0x5A1F);
    let mut stats = TextStats {
        bytes: 0,
        lines: 0,
        words: 0,
    };
    const FLUSH: usize = 1 << 20;
    let mut buf: Vec<u8> = Vec::with_capacity(FLUSH + 256);
    while stats.bytes + (buf.len() as u64) < size {
        let n = MIN_LINE_WORDS + rng.below(MAX_LINE_WORDS - MIN_LINE_WORDS + 1);
        for w in 0..n {
            if w > 0 {
                buf.push(b' ');
            }
            buf.extend_from_slice(words[table.sample(rng.next_u64())].as_bytes());
        }
        buf.push(b'\n');
        stats.lines += 1;
        stats.words += n;
        if buf.len() >= FLUSH {
            out.write_all(&buf)?;
            stats.bytes += buf.len() as u64;
            buf.clear();
            progress(stats.bytes);
        }
    }
    out.write_all(&buf)?;
    stats.bytes += buf.len() as u64;
    progress(stats.bytes);
    Ok(stats)
}

/// Parses a size: plain bytes (`1000`) or a number with a decimal (`KB`, `MB`, `GB`) or binary
/// (`KiB`, `MiB`, `GiB`) suffix, e.g. `200MB` = 200,000,000 bytes.
pub fn parse_size(text: &str) -> Result<u64, crate::BenchError> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, suffix) = t.split_at(split);
    let unit: u64 = match suffix.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" | "k" => 1_000,
        "mb" | "m" => 1_000_000,
        "gb" | "g" => 1_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        _ => return Err(crate::BenchError::Size(text.to_owned())),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| crate::BenchError::Size(text.to_owned()))?;
    if !value.is_finite() || value < 0.0 {
        return Err(crate::BenchError::Size(text.to_owned()));
    }
    Ok((value * unit as f64).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vocabulary_words_are_distinct_lowercase_and_of_length_2_to_10() {
        let words = vocabulary(DEFAULT_SEED, VOCABULARY_SIZE);
        assert_eq!(words.len(), VOCABULARY_SIZE);
        let distinct: std::collections::HashSet<_> = words.iter().collect();
        assert_eq!(distinct.len(), VOCABULARY_SIZE);
        for w in &words {
            assert!((2..=10).contains(&w.len()), "{w}");
            assert!(w.bytes().all(|b| b.is_ascii_lowercase()), "{w}");
        }
        assert_eq!(words, vocabulary(DEFAULT_SEED, VOCABULARY_SIZE));
        assert_ne!(words, vocabulary(DEFAULT_SEED + 1, VOCABULARY_SIZE));
    }

    /// The alias table's exact column probabilities reproduce the target distribution.
    #[test]
    fn alias_table_encodes_the_zipf_distribution() {
        let p = zipf_probabilities(VOCABULARY_SIZE, ZIPF_EXPONENT);
        let table = AliasTable::new(&p);
        let n = p.len() as f64;
        let mut implied = vec![0.0; p.len()];
        for (c, &t) in table.threshold.iter().enumerate() {
            let keep = t as f64 / 4_294_967_296.0;
            implied[c] += keep / n;
            implied[table.alias[c] as usize] += (1.0 - keep) / n;
        }
        for (k, (a, b)) in p.iter().zip(&implied).enumerate() {
            assert!((a - b).abs() < 1e-9, "rank {}: {a} vs {b}", k + 1);
        }
    }

    /// Sampled rank frequencies follow Zipf(1.1) within a few standard deviations.
    #[test]
    fn sampled_ranks_follow_zipf() {
        let p = zipf_probabilities(VOCABULARY_SIZE, ZIPF_EXPONENT);
        let table = AliasTable::new(&p);
        let mut rng = SplitMix64::new(99);
        let draws = 1_000_000u64;
        let mut hits = vec![0u64; p.len()];
        for _ in 0..draws {
            hits[table.sample(rng.next_u64())] += 1;
        }
        for k in [0usize, 1, 2, 9, 99, 999] {
            let expect = p[k] * draws as f64;
            let sd = (expect * (1.0 - p[k])).sqrt();
            let got = hits[k] as f64;
            assert!(
                (got - expect).abs() < 5.0 * sd,
                "rank {}: {got} vs {expect}",
                k + 1
            );
        }
    }

    #[test]
    fn generated_text_has_the_documented_shape() {
        let mut out = Vec::new();
        let stats = generate(DEFAULT_SEED, 200_000, &mut out, |_| {}).unwrap();
        assert_eq!(stats.bytes, out.len() as u64);
        assert!(out.len() >= 200_000 && out.len() < 200_000 + 300);
        assert_eq!(*out.last().unwrap(), b'\n');
        let text = std::str::from_utf8(&out).unwrap();
        let vocab: std::collections::HashSet<_> = vocabulary(DEFAULT_SEED, VOCABULARY_SIZE)
            .into_iter()
            .collect();
        let mut lines = 0;
        let mut words = 0;
        for line in text.lines() {
            let n = line.split(' ').count() as u64;
            assert!((MIN_LINE_WORDS..=MAX_LINE_WORDS).contains(&n), "{line}");
            assert!(line.split(' ').all(|w| vocab.contains(w)), "{line}");
            lines += 1;
            words += n;
        }
        assert_eq!((lines, words), (stats.lines, stats.words));
        let mut again = Vec::new();
        generate(DEFAULT_SEED, 200_000, &mut again, |_| {}).unwrap();
        assert_eq!(out, again);
    }

    #[test]
    fn sizes_parse_with_decimal_and_binary_suffixes() {
        assert_eq!(parse_size("200MB").unwrap(), 200_000_000);
        assert_eq!(parse_size("1.5 GiB").unwrap(), 1_610_612_736);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("MB").is_err());
    }
}
