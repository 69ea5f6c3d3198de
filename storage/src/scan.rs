//! Line-end indexing: one SIMD pass over a window of bytes finds every `\n` and says which 64-byte
//! blocks hold a non-ASCII byte (so only those parts of a window need UTF-8 validation, and windows
//! of pure ASCII text skip it altogether).
//!
//! The widest instruction set the CPU offers is picked at run time (AVX-512BW, AVX2, then SSE2,
//! which every x86-64 has); other architectures use a portable loop.

use std::ops::Range;

/// Bytes per block of the non-ASCII bitmap (one bit per block).
pub(crate) const BLOCK: usize = 64;

/// Appends the index of every `\n` in `bytes[from..to]` to `ends` (indices into `bytes`, in
/// order), and replaces `high` with a bitmap of the blocks of `bytes[from..to]` holding a byte
/// `>= 0x80`: bit `k` (bit `k % 64` of `high[k / 64]`) stands for `bytes[from + 64 * k..]`, up to
/// 64 bytes (the last block may be shorter). Returns whether any bit is set.
#[inline]
pub(crate) fn index_newlines(
    bytes: &[u8],
    from: usize,
    to: usize,
    ends: &mut Vec<usize>,
    high: &mut Vec<u64>,
) -> bool {
    let window = &bytes[from..to];
    high.clear();
    #[cfg(target_arch = "x86_64")]
    {
        let bits = std::arch::is_x86_feature_detected!("popcnt")
            && std::arch::is_x86_feature_detected!("bmi1");
        if bits && std::arch::is_x86_feature_detected!("avx512bw") {
            // SAFETY: the CPU supports AVX-512BW, POPCNT and BMI1 (checked just above).
            unsafe { x86::index_avx512(window, from, ends, high) };
        } else if bits && std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, POPCNT and BMI1 (checked just above).
            unsafe { x86::index_avx2(window, from, ends, high) };
        } else {
            // SAFETY: SSE2 is part of the x86-64 baseline.
            unsafe { x86::index_sse2(window, from, ends, high) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    index_scalar(window, from, ends, high);
    high.iter().any(|&w| w != 0)
}

/// The portable version: whole blocks, then the tail, through [`scan_tail`]. Like the x86
/// kernels, it appends to `ends` and expects `high` empty.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn index_scalar(window: &[u8], offset: usize, ends: &mut Vec<usize>, high: &mut Vec<u64>) {
    let blocks = window.len() / BLOCK;
    for chunk in (0..blocks).step_by(64) {
        let mut word = 0u64;
        for b in chunk..blocks.min(chunk + 64) {
            let block = &window[b * BLOCK..(b + 1) * BLOCK];
            word |= (scan_tail(block, offset + b * BLOCK, ends) as u64) << (b - chunk);
        }
        high.push(word);
    }
    finish_tail(window, offset, blocks, ends, high);
}

/// Indexes the bytes after the last whole block (`window[blocks * 64..]`, shorter than a block)
/// and sets their bit in `high`, which holds the words of the whole blocks.
#[inline]
fn finish_tail(
    window: &[u8],
    offset: usize,
    blocks: usize,
    ends: &mut Vec<usize>,
    high: &mut Vec<u64>,
) {
    let start = blocks * BLOCK;
    if start == window.len() {
        return;
    }
    if blocks.is_multiple_of(64) {
        high.push(0);
    }
    let tail = scan_tail(&window[start..], offset + start, ends);
    if let Some(last) = high.last_mut() {
        *last |= (tail as u64) << (blocks % 64);
    }
}

/// Appends the line ends of a short piece (at most a block) and returns whether any byte is
/// `>= 0x80`.
#[inline]
fn scan_tail(window: &[u8], offset: usize, ends: &mut Vec<usize>) -> bool {
    let mut high = 0u8;
    for (i, &b) in window.iter().enumerate() {
        high |= b;
        if b == b'\n' {
            ends.push(offset + i);
        }
    }
    high >= 0x80
}

/// The maximal runs of set bits of `bits`, in order, as ranges of bit (block) numbers.
pub(crate) fn set_runs(bits: &[u64]) -> impl Iterator<Item = Range<usize>> + '_ {
    let mut next = 0;
    std::iter::from_fn(move || {
        let start = next_bit(bits, next, true)?;
        let end = next_bit(bits, start, false).unwrap_or(bits.len() * 64);
        next = end;
        Some(start..end)
    })
}

/// The first bit at or after `from` that is set (`set`) or clear (`!set`).
#[inline]
fn next_bit(bits: &[u64], from: usize, set: bool) -> Option<usize> {
    let flip = if set { 0 } else { u64::MAX };
    let mut w = from / 64;
    let mut word = (*bits.get(w)? ^ flip) & (u64::MAX << (from % 64));
    loop {
        if word != 0 {
            return Some(w * 64 + word.trailing_zeros() as usize);
        }
        w += 1;
        word = *bits.get(w)? ^ flip;
    }
}

/// Writes the set bits of `mask` as `base + bit` at `out[count..]`; returns the new count.
///
/// Branch-free for up to two line ends per block: the first two positions are written
/// unconditionally and only the count moves (a 64-byte block of a text file rarely holds more
/// line ends, and whether it holds any is too random to predict: a branch on it mispredicts).
///
/// # Safety
/// `out` must have room for 64 entries past `count` (a mask has at most 64 bits).
#[inline(always)]
unsafe fn push_mask(out: *mut usize, mut count: usize, base: usize, mut mask: u64) -> usize {
    let n = mask.count_ones() as usize;
    let p = out.add(count);
    *p = base + mask.trailing_zeros() as usize;
    mask &= mask.wrapping_sub(1);
    *p.add(1) = base + mask.trailing_zeros() as usize;
    mask &= mask.wrapping_sub(1);
    let mut k = 2;
    while mask != 0 {
        *p.add(k) = base + mask.trailing_zeros() as usize;
        mask &= mask - 1;
        k += 1;
    }
    count += n;
    count
}

/// The loop shared by the x86 kernels: `block(b)` loads block `b` and returns its line-end mask
/// and whether it holds a byte `>= 0x80`.
///
/// # Safety
/// `block` must only read `window[64 * b..64 * (b + 1)]`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn index_blocks(
    window: &[u8],
    offset: usize,
    ends: &mut Vec<usize>,
    high: &mut Vec<u64>,
    mut block: impl FnMut(usize) -> (u64, bool),
) {
    let blocks = window.len() / BLOCK;
    // Room for a line end at every byte, plus the unconditional writes past the last one.
    ends.reserve(window.len() + 64);
    high.reserve(blocks / 64 + 1);
    let out = ends.as_mut_ptr();
    let mut count = ends.len();
    let mut b = 0;
    while b < blocks {
        let stop = blocks.min(b + 64);
        let mut word = 0u64;
        while b < stop {
            let (mask, hi) = block(b);
            word |= (hi as u64) << (b % 64);
            count = push_mask(out, count, offset + b * BLOCK, mask);
            b += 1;
        }
        high.push(word);
    }
    ends.set_len(count);
    finish_tail(window, offset, blocks, ends, high);
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::index_blocks;

    #[target_feature(enable = "avx512bw,popcnt,bmi1")]
    pub(super) unsafe fn index_avx512(
        window: &[u8],
        offset: usize,
        ends: &mut Vec<usize>,
        high: &mut Vec<u64>,
    ) {
        let nl = _mm512_set1_epi8(b'\n' as i8);
        let p = window.as_ptr();
        index_blocks(window, offset, ends, high, |b| {
            let v = _mm512_loadu_si512(p.add(b * 64) as *const _);
            let mask = _mm512_cmpeq_epi8_mask(v, nl);
            (mask, _mm512_movepi8_mask(v) != 0)
        });
    }

    #[target_feature(enable = "avx2,popcnt,bmi1")]
    pub(super) unsafe fn index_avx2(
        window: &[u8],
        offset: usize,
        ends: &mut Vec<usize>,
        high: &mut Vec<u64>,
    ) {
        let nl = _mm256_set1_epi8(b'\n' as i8);
        let p = window.as_ptr();
        index_blocks(window, offset, ends, high, |b| {
            let v0 = _mm256_loadu_si256(p.add(b * 64) as *const __m256i);
            let v1 = _mm256_loadu_si256(p.add(b * 64 + 32) as *const __m256i);
            let m0 = _mm256_movemask_epi8(_mm256_cmpeq_epi8(v0, nl)) as u32 as u64;
            let m1 = _mm256_movemask_epi8(_mm256_cmpeq_epi8(v1, nl)) as u32 as u64;
            let hi = _mm256_movemask_epi8(_mm256_or_si256(v0, v1)) != 0;
            (m0 | (m1 << 32), hi)
        });
    }

    #[target_feature(enable = "sse2")]
    pub(super) unsafe fn index_sse2(
        window: &[u8],
        offset: usize,
        ends: &mut Vec<usize>,
        high: &mut Vec<u64>,
    ) {
        let nl = _mm_set1_epi8(b'\n' as i8);
        let p = window.as_ptr() as *const __m128i;
        index_blocks(window, offset, ends, high, |b| {
            let mut mask = 0u64;
            let mut or = _mm_setzero_si128();
            for k in 0..4 {
                let v = _mm_loadu_si128(p.add(b * 4 + k));
                or = _mm_or_si128(or, v);
                mask |= (_mm_movemask_epi8(_mm_cmpeq_epi8(v, nl)) as u16 as u64) << (16 * k);
            }
            (mask, _mm_movemask_epi8(or) != 0)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Line ends and block bitmap of `bytes[from..to]`, the obvious way.
    fn reference(bytes: &[u8], from: usize, to: usize) -> (Vec<usize>, Vec<u64>) {
        let ends = (from..to).filter(|&i| bytes[i] == b'\n').collect();
        let blocks = (to - from).div_ceil(BLOCK);
        let mut high = vec![0u64; blocks.div_ceil(64)];
        for k in 0..blocks {
            let block = &bytes[from + k * BLOCK..to.min(from + (k + 1) * BLOCK)];
            if block.iter().any(|&b| b >= 0x80) {
                high[k / 64] |= 1 << (k % 64);
            }
        }
        (ends, high)
    }

    /// Every kernel this CPU can run, by name.
    #[allow(clippy::type_complexity)]
    fn kernels() -> Vec<(
        &'static str,
        fn(&[u8], usize, &mut Vec<usize>, &mut Vec<u64>),
    )> {
        let mut k: Vec<(&str, fn(&[u8], usize, &mut Vec<usize>, &mut Vec<u64>))> =
            vec![("scalar", index_scalar)];
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY (all three): each is listed only where the CPU has its features.
            k.push(("sse2", |w, o, e, h| unsafe { x86::index_sse2(w, o, e, h) }));
            if std::arch::is_x86_feature_detected!("avx2") {
                k.push(("avx2", |w, o, e, h| unsafe { x86::index_avx2(w, o, e, h) }));
            }
            if std::arch::is_x86_feature_detected!("avx512bw") {
                k.push(("avx512", |w, o, e, h| unsafe {
                    x86::index_avx512(w, o, e, h)
                }));
            }
        }
        k
    }

    #[test]
    fn every_kernel_agrees_with_a_plain_scan() {
        let mut x = 7u64;
        for len in [
            0usize,
            1,
            63,
            64,
            65,
            127,
            128,
            1000,
            4099,
            64 * 64,
            64 * 65 + 5,
            9000,
        ] {
            for density in [2u64, 7, 40, 1000] {
                // No non-ASCII byte, rare ones, and ones in most blocks.
                for high_density in [0u64, 3000, 50] {
                    let bytes: Vec<u8> = (0..len)
                        .map(|_| {
                            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                            if high_density > 0 && (x >> 20).is_multiple_of(high_density) {
                                return 0x80 | (x >> 50) as u8;
                            }
                            match (x >> 33) % density {
                                0 => b'\n',
                                _ => b'a' + ((x >> 40) % 26) as u8,
                            }
                        })
                        .collect();
                    for from in [0, 1.min(len), len / 3] {
                        let (want_ends, want_high) = reference(&bytes, from, len);
                        let any = want_high.iter().any(|&w| w != 0);
                        let (mut ends, mut high) = (vec![7], vec![1, 2, 3]);
                        assert_eq!(index_newlines(&bytes, from, len, &mut ends, &mut high), any);
                        let what =
                            format!("len {len} density {density}/{high_density} from {from}");
                        assert_eq!(ends[1..], want_ends, "{what}");
                        assert_eq!(high, want_high, "{what}");
                        for (name, kernel) in kernels() {
                            let (mut ends, mut high) = (Vec::new(), Vec::new());
                            kernel(&bytes[from..], from, &mut ends, &mut high);
                            assert_eq!(ends, want_ends, "{name}: {what}");
                            assert_eq!(high, want_high, "{name}: {what}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn non_ascii_bytes_are_reported_in_their_block_wherever_they_are() {
        for len in [1usize, 63, 64, 65, 200, 64 * 64, 64 * 64 + 1, 64 * 130] {
            for at in [0, 63.min(len - 1), 64.min(len - 1), len / 2, len - 1] {
                let mut bytes = vec![b'x'; len];
                bytes[at] = 0xC3;
                let mut want = vec![0u64; len.div_ceil(BLOCK).div_ceil(64)];
                want[at / BLOCK / 64] = 1 << (at / BLOCK % 64);
                let (mut ends, mut high) = (Vec::new(), Vec::new());
                assert!(index_newlines(&bytes, 0, len, &mut ends, &mut high));
                assert_eq!(high, want, "{len} {at}");
                for (name, kernel) in kernels() {
                    high.clear();
                    kernel(&bytes, 0, &mut ends, &mut high);
                    assert_eq!(high, want, "{name}: {len} {at}");
                }
                assert!(ends.is_empty());
            }
        }
    }

    #[test]
    fn set_runs_are_the_maximal_runs_of_set_bits() {
        let mut x = 5u64;
        for words in 0..4usize {
            for density in [1u64, 2, 3, 8, 60] {
                let bits: Vec<u64> = (0..words)
                    .map(|_| {
                        (0..64).fold(0u64, |w, k| {
                            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                            w | ((!(x >> 33).is_multiple_of(density)) as u64) << k
                        })
                    })
                    .collect();
                let set = |k: usize| bits[k / 64] >> (k % 64) & 1 == 1;
                let mut want = Vec::new();
                let mut k = 0;
                while k < words * 64 {
                    if set(k) {
                        let start = k;
                        while k < words * 64 && set(k) {
                            k += 1;
                        }
                        want.push(start..k);
                    } else {
                        k += 1;
                    }
                }
                assert_eq!(set_runs(&bits).collect::<Vec<_>>(), want, "{bits:x?}");
            }
        }
        assert_eq!(set_runs(&[u64::MAX, 1]).collect::<Vec<_>>(), vec![(0..65)]);
        assert_eq!(
            set_runs(&[1 << 63, u64::MAX]).collect::<Vec<_>>(),
            vec![(63..128)]
        );
    }
}
