//! Line-end indexing: one SIMD pass over a window of bytes finds every `\n` and says whether any
//! byte is non-ASCII (so windows of pure ASCII text skip UTF-8 validation altogether).
//!
//! The widest instruction set the CPU offers is picked at run time (AVX-512BW, AVX2, then SSE2,
//! which every x86-64 has); other architectures use a portable loop.

/// Appends the index of every `\n` in `bytes[from..to]` to `ends` (indices into `bytes`, in
/// order) and returns whether any byte of `bytes[from..to]` is `>= 0x80`.
#[inline]
pub(crate) fn index_newlines(bytes: &[u8], from: usize, to: usize, ends: &mut Vec<usize>) -> bool {
    let window = &bytes[from..to];
    #[cfg(target_arch = "x86_64")]
    {
        let bits = std::arch::is_x86_feature_detected!("popcnt")
            && std::arch::is_x86_feature_detected!("bmi1");
        if bits && std::arch::is_x86_feature_detected!("avx512bw") {
            // SAFETY: the CPU supports AVX-512BW, POPCNT and BMI1 (checked just above).
            return unsafe { x86::index_avx512(window, from, ends) };
        }
        if bits && std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, POPCNT and BMI1 (checked just above).
            return unsafe { x86::index_avx2(window, from, ends) };
        }
        // SAFETY: SSE2 is part of the x86-64 baseline.
        unsafe { x86::index_sse2(window, from, ends) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        index_scalar(window, from, ends)
    }
}

/// The portable version (and the tail of a window shorter than one block).
#[inline]
fn index_scalar(window: &[u8], offset: usize, ends: &mut Vec<usize>) -> bool {
    let mut high = 0u8;
    for (i, &b) in window.iter().enumerate() {
        high |= b;
        if b == b'\n' {
            ends.push(offset + i);
        }
    }
    high >= 0x80
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

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{index_scalar, push_mask};

    #[target_feature(enable = "avx512bw,popcnt,bmi1")]
    pub(super) unsafe fn index_avx512(window: &[u8], offset: usize, ends: &mut Vec<usize>) -> bool {
        let nl = _mm512_set1_epi8(b'\n' as i8);
        let mut high = _mm512_setzero_si512();
        let blocks = window.len() / 64;
        // Room for a line end at every byte, plus the unconditional writes past the last one.
        ends.reserve(window.len() + 64);
        let out = ends.as_mut_ptr();
        let mut count = ends.len();
        let p = window.as_ptr();
        for b in 0..blocks {
            let v = _mm512_loadu_si512(p.add(b * 64) as *const _);
            high = _mm512_or_si512(high, v);
            let mask = _mm512_cmpeq_epi8_mask(v, nl);
            count = push_mask(out, count, offset + b * 64, mask);
        }
        ends.set_len(count);
        let tail = index_scalar(&window[blocks * 64..], offset + blocks * 64, ends);
        _mm512_movepi8_mask(high) != 0 || tail
    }

    #[target_feature(enable = "avx2,popcnt,bmi1")]
    pub(super) unsafe fn index_avx2(window: &[u8], offset: usize, ends: &mut Vec<usize>) -> bool {
        let nl = _mm256_set1_epi8(b'\n' as i8);
        let mut high = _mm256_setzero_si256();
        let blocks = window.len() / 64;
        // Room for a line end at every byte, plus the unconditional writes past the last one.
        ends.reserve(window.len() + 64);
        let out = ends.as_mut_ptr();
        let mut count = ends.len();
        let p = window.as_ptr();
        for b in 0..blocks {
            let v0 = _mm256_loadu_si256(p.add(b * 64) as *const __m256i);
            let v1 = _mm256_loadu_si256(p.add(b * 64 + 32) as *const __m256i);
            high = _mm256_or_si256(high, _mm256_or_si256(v0, v1));
            let m0 = _mm256_movemask_epi8(_mm256_cmpeq_epi8(v0, nl)) as u32 as u64;
            let m1 = _mm256_movemask_epi8(_mm256_cmpeq_epi8(v1, nl)) as u32 as u64;
            let mask = m0 | (m1 << 32);
            count = push_mask(out, count, offset + b * 64, mask);
        }
        ends.set_len(count);
        let tail = index_scalar(&window[blocks * 64..], offset + blocks * 64, ends);
        _mm256_movemask_epi8(high) != 0 || tail
    }

    #[target_feature(enable = "sse2")]
    pub(super) unsafe fn index_sse2(window: &[u8], offset: usize, ends: &mut Vec<usize>) -> bool {
        let nl = _mm_set1_epi8(b'\n' as i8);
        let mut high = _mm_setzero_si128();
        let blocks = window.len() / 64;
        // Room for a line end at every byte, plus the unconditional writes past the last one.
        ends.reserve(window.len() + 64);
        let out = ends.as_mut_ptr();
        let mut count = ends.len();
        let p = window.as_ptr() as *const __m128i;
        for b in 0..blocks {
            let mut mask = 0u64;
            for k in 0..4 {
                let v = _mm_loadu_si128(p.add(b * 4 + k));
                high = _mm_or_si128(high, v);
                mask |= (_mm_movemask_epi8(_mm_cmpeq_epi8(v, nl)) as u16 as u64) << (16 * k);
            }
            count = push_mask(out, count, offset + b * 64, mask);
        }
        ends.set_len(count);
        let tail = index_scalar(&window[blocks * 64..], offset + blocks * 64, ends);
        _mm_movemask_epi8(high) != 0 || tail
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kernel_agrees_with_a_plain_scan() {
        let mut x = 7u64;
        for len in [0usize, 1, 63, 64, 65, 127, 128, 1000, 4099] {
            for density in [2u64, 7, 40, 1000] {
                let bytes: Vec<u8> = (0..len)
                    .map(|_| {
                        x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                        match (x >> 33) % density {
                            0 => b'\n',
                            _ => b'a' + ((x >> 40) % 26) as u8,
                        }
                    })
                    .collect();
                for from in [0, 1.min(len), len / 3] {
                    let want: Vec<usize> = (from..len).filter(|&i| bytes[i] == b'\n').collect();
                    let mut got = Vec::new();
                    assert!(!index_newlines(&bytes, from, len, &mut got));
                    assert_eq!(got, want, "len {len} density {density} from {from}");
                    let mut scalar = Vec::new();
                    index_scalar(&bytes[from..], from, &mut scalar);
                    assert_eq!(scalar, want);
                    #[cfg(target_arch = "x86_64")]
                    unsafe {
                        let mut sse = Vec::new();
                        x86::index_sse2(&bytes[from..], from, &mut sse);
                        assert_eq!(sse, want);
                        if std::arch::is_x86_feature_detected!("avx2") {
                            let mut avx = Vec::new();
                            x86::index_avx2(&bytes[from..], from, &mut avx);
                            assert_eq!(avx, want);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn non_ascii_bytes_are_reported_wherever_they_are() {
        for len in [1usize, 63, 64, 65, 200] {
            for at in [0, len / 2, len - 1] {
                let mut bytes = vec![b'x'; len];
                bytes[at] = 0xC3;
                let mut ends = Vec::new();
                assert!(index_newlines(&bytes, 0, len, &mut ends), "{len} {at}");
                #[cfg(target_arch = "x86_64")]
                unsafe {
                    assert!(x86::index_sse2(&bytes, 0, &mut ends));
                    if std::arch::is_x86_feature_detected!("avx2") {
                        assert!(x86::index_avx2(&bytes, 0, &mut ends));
                    }
                }
            }
        }
    }
}
