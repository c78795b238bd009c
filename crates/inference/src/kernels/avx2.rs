//! AVX2 (with FMA and F16C) fallback: the same tiles and the same integer sums as the
//! AVX-512 path, 8 weight rows per register (a tile in two halves), `vpmaddubsw` +
//! `vpmaddwd` for the byte dot products (no overflow: 4- and 6-bit weights times i8).

use core::arch::x86_64::*;

use super::{BlockQ8, MAX_ROWS, TILE, TileQ4K, TileQ6K};

/// Rows per pass: the accumulators of more would not fit the 16 registers.
const ROWS: usize = 4;

#[inline(always)]
unsafe fn bcast4(qs: &[i8; 256], at: usize) -> __m256i {
    unsafe { _mm256_set1_epi32(std::ptr::read_unaligned(qs.as_ptr().add(at) as *const i32)) }
}

#[inline(always)]
unsafe fn bcast_pair(sums: &[i16], pair: usize) -> __m256i {
    unsafe { _mm256_set1_epi32(std::ptr::read_unaligned(sums.as_ptr().add(2 * pair) as *const i32)) }
}

#[inline(always)]
unsafe fn dot(acc: __m256i, w: __m256i, a: __m256i) -> __m256i {
    unsafe { _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(w, a), _mm256_set1_epi16(1))) }
}

/// # Safety
/// The CPU must have AVX2, FMA and F16C; `rows.len() <= MAX_ROWS`.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn q4k(tiles: &[TileQ4K], rows: &[&[BlockQ8]], acc: &mut [[f32; TILE]; MAX_ROWS]) {
    for (start, part) in rows.chunks(ROWS).enumerate() {
        for half in 0..2 {
            let out = &mut acc[start * ROWS..];
            match part.len() {
                1 => unsafe { q4k_n::<1>(tiles, part, half, out) },
                2 => unsafe { q4k_n::<2>(tiles, part, half, out) },
                3 => unsafe { q4k_n::<3>(tiles, part, half, out) },
                _ => unsafe { q4k_n::<4>(tiles, part, half, out) },
            }
        }
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q4k_n<const MT: usize>(tiles: &[TileQ4K], rows: &[&[BlockQ8]], half: usize, out: &mut [[f32; TILE]]) {
    unsafe {
        let mask = _mm256_set1_epi8(0x0F);
        let lo16 = _mm256_set1_epi32(0xFFFF);
        let mut acc = [_mm256_setzero_ps(); MT];
        for (b, t) in tiles.iter().enumerate() {
            let acts: [&BlockQ8; MT] = std::array::from_fn(|m| &rows[m][b]);
            let mut iacc = [_mm256_setzero_si256(); MT];
            for pair in 0..4 {
                let sc = _mm256_cvtepu8_epi16(_mm_loadu_si128(t.scales.as_ptr().add(pair * 32 + half * 16) as *const _));
                let scs = [_mm256_and_si256(sc, lo16), _mm256_srli_epi32(sc, 16)];
                for (e, sc_sub) in scs.iter().enumerate() {
                    let sub = pair * 2 + e;
                    let mut isum = [_mm256_setzero_si256(); MT];
                    for g4 in 0..4 {
                        let g = sub * 4 + g4;
                        let w = _mm256_loadu_si256(t.qs.as_ptr().add(g * TILE * 4 + half * 32) as *const _);
                        let wl = _mm256_and_si256(w, mask);
                        let wh = _mm256_and_si256(_mm256_srli_epi16(w, 4), mask);
                        for m in 0..MT {
                            isum[m] = dot(isum[m], wl, bcast4(&acts[m].qs, g * 8));
                            isum[m] = dot(isum[m], wh, bcast4(&acts[m].qs, g * 8 + 4));
                        }
                    }
                    for m in 0..MT {
                        iacc[m] = _mm256_add_epi32(iacc[m], _mm256_mullo_epi32(isum[m], *sc_sub));
                    }
                }
            }
            let d = _mm256_cvtph_ps(_mm_loadu_si128(t.d.as_ptr().add(half * 8) as *const _));
            let dmin = _mm256_cvtph_ps(_mm_loadu_si128(t.dmin.as_ptr().add(half * 8) as *const _));
            for m in 0..MT {
                let mut macc = _mm256_setzero_si256();
                for p in 0..4 {
                    let mn = _mm256_cvtepu8_epi16(_mm_loadu_si128(t.mins.as_ptr().add(p * 32 + half * 16) as *const _));
                    macc = _mm256_add_epi32(macc, _mm256_madd_epi16(mn, bcast_pair(&acts[m].bsum32, p)));
                }
                let da = _mm256_set1_ps(acts[m].d);
                acc[m] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(iacc[m]), _mm256_mul_ps(d, da), acc[m]);
                acc[m] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(macc), _mm256_mul_ps(dmin, da), acc[m]);
            }
        }
        for m in 0..MT {
            _mm256_storeu_ps(out[m].as_mut_ptr().add(half * 8), acc[m]);
        }
    }
}

/// # Safety
/// As [`q4k`].
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn q6k(tiles: &[TileQ6K], rows: &[&[BlockQ8]], acc: &mut [[f32; TILE]; MAX_ROWS]) {
    for (start, part) in rows.chunks(ROWS).enumerate() {
        for half in 0..2 {
            let out = &mut acc[start * ROWS..];
            match part.len() {
                1 => unsafe { q6k_n::<1>(tiles, part, half, out) },
                2 => unsafe { q6k_n::<2>(tiles, part, half, out) },
                3 => unsafe { q6k_n::<3>(tiles, part, half, out) },
                _ => unsafe { q6k_n::<4>(tiles, part, half, out) },
            }
        }
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q6k_n<const MT: usize>(tiles: &[TileQ6K], rows: &[&[BlockQ8]], half: usize, out: &mut [[f32; TILE]]) {
    unsafe {
        let mask = _mm256_set1_epi8(0x0F);
        let high = _mm256_set1_epi8(0x30);
        let mut acc = [_mm256_setzero_ps(); MT];
        for (b, t) in tiles.iter().enumerate() {
            let acts: [&BlockQ8; MT] = std::array::from_fn(|m| &rows[m][b]);
            let mut iacc = [_mm256_setzero_si256(); MT];
            let mut corr = [_mm256_setzero_si256(); MT];
            for p in 0..16 {
                let pv = _mm256_cvtepi8_epi16(_mm_loadu_si128(t.scales.as_ptr().add(p / 2 * 32 + half * 16) as *const _));
                let sc = if p % 2 == 0 {
                    _mm256_srai_epi32(_mm256_slli_epi32(pv, 16), 16)
                } else {
                    _mm256_srai_epi32(pv, 16)
                };
                let h = _mm256_loadu_si256(t.q.as_ptr().add(TileQ6K::qh(p) + half * 32) as *const _);
                let w0 = _mm256_loadu_si256(t.q.as_ptr().add(TileQ6K::ql(2 * p) + half * 32) as *const _);
                let w1 = _mm256_loadu_si256(t.q.as_ptr().add(TileQ6K::ql(2 * p + 1) + half * 32) as *const _);
                let a0 = _mm256_or_si256(_mm256_and_si256(w0, mask), _mm256_and_si256(_mm256_slli_epi16(h, 4), high));
                let a1 = _mm256_or_si256(
                    _mm256_and_si256(_mm256_srli_epi16(w0, 4), mask),
                    _mm256_and_si256(_mm256_slli_epi16(h, 2), high),
                );
                let a2 = _mm256_or_si256(_mm256_and_si256(w1, mask), _mm256_and_si256(h, high));
                let a3 = _mm256_or_si256(
                    _mm256_and_si256(_mm256_srli_epi16(w1, 4), mask),
                    _mm256_and_si256(_mm256_srli_epi16(h, 2), high),
                );
                for m in 0..MT {
                    let q = &acts[m].qs;
                    let mut s = dot(_mm256_setzero_si256(), a0, bcast4(q, 16 * p));
                    s = dot(s, a1, bcast4(q, 16 * p + 4));
                    s = dot(s, a2, bcast4(q, 16 * p + 8));
                    s = dot(s, a3, bcast4(q, 16 * p + 12));
                    iacc[m] = _mm256_add_epi32(iacc[m], _mm256_mullo_epi32(s, sc));
                    if p % 2 == 1 {
                        corr[m] = _mm256_add_epi32(corr[m], _mm256_madd_epi16(pv, bcast_pair(&acts[m].bsum16, p / 2)));
                    }
                }
            }
            let d = _mm256_cvtph_ps(_mm_loadu_si128(t.d.as_ptr().add(half * 8) as *const _));
            for m in 0..MT {
                let total = _mm256_sub_epi32(iacc[m], _mm256_slli_epi32(corr[m], 5));
                acc[m] = _mm256_fmadd_ps(
                    _mm256_cvtepi32_ps(total),
                    _mm256_mul_ps(d, _mm256_set1_ps(acts[m].d)),
                    acc[m],
                );
            }
        }
        for m in 0..MT {
            _mm256_storeu_ps(out[m].as_mut_ptr().add(half * 8), acc[m]);
        }
    }
}
