//! AVX-512 with VNNI: one `vpdpbusd` multiplies 4 inputs of 16 weight rows with 4 broadcast
//! activation bytes. Subblock scales are applied to the 32-bit sums in integer arithmetic
//! (`vpmulld`), the mins and the Q6_K offset with `vpdpwssd` against the activations' block
//! sums; one conversion to f32 per superblock and row.
//!
//! No overflow (activations are clamped to +-127): Q4_K sums a subblock of 32 products to
//! at most 32 * 15 * 127 = 60,960, times a 6-bit scale and 8 subblocks at most 30.7 M per
//! superblock; Q6_K at most 16 * 63 * 127 * 128 * 16 = 262 M, its offset term 133 M; the
//! activations' 16- and 32-value sums fit i16 (2,032 and 4,064).

use core::arch::x86_64::*;

use super::{BlockQ8, MAX_ROWS, TILE, TileQ4K, TileQ6K};

#[inline(always)]
unsafe fn bcast4(qs: &[i8; 256], at: usize) -> __m512i {
    unsafe { _mm512_set1_epi32(std::ptr::read_unaligned(qs.as_ptr().add(at) as *const i32)) }
}

#[inline(always)]
unsafe fn bcast_pair(sums: &[i16], pair: usize) -> __m512i {
    unsafe { _mm512_set1_epi32(std::ptr::read_unaligned(sums.as_ptr().add(2 * pair) as *const i32)) }
}

#[inline(always)]
unsafe fn load64(p: *const u8) -> __m512i {
    unsafe { _mm512_loadu_si512(p as *const _) }
}

/// Rows `rows` (each `tiles.len()` superblocks) against one strip of Q4_K tiles.
///
/// # Safety
/// The CPU must have AVX-512 F, BW and VNNI; `rows.len() <= MAX_ROWS`.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
pub(crate) unsafe fn q4k(tiles: &[TileQ4K], rows: &[&[BlockQ8]], acc: &mut [[f32; TILE]; MAX_ROWS]) {
    match rows.len() {
        1 => unsafe { q4k_n::<1>(tiles, rows, acc) },
        2 => unsafe { q4k_n::<2>(tiles, rows, acc) },
        3 => unsafe { q4k_n::<3>(tiles, rows, acc) },
        4 => unsafe { q4k_n::<4>(tiles, rows, acc) },
        5 => unsafe { q4k_n::<5>(tiles, rows, acc) },
        6 => unsafe { q4k_n::<6>(tiles, rows, acc) },
        7 => unsafe { q4k_n::<7>(tiles, rows, acc) },
        _ => unsafe { q4k_n::<8>(tiles, rows, acc) },
    }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn q4k_n<const MT: usize>(tiles: &[TileQ4K], rows: &[&[BlockQ8]], out: &mut [[f32; TILE]; MAX_ROWS]) {
    unsafe {
        let mask = _mm512_set1_epi8(0x0F);
        let lo16 = _mm512_set1_epi32(0xFFFF);
        let mut acc = [_mm512_setzero_ps(); MT];
        for (b, t) in tiles.iter().enumerate() {
            let acts: [&BlockQ8; MT] = std::array::from_fn(|m| &rows[m][b]);
            let mut iacc = [_mm512_setzero_si512(); MT];
            for pair in 0..4 {
                let sc = _mm512_cvtepu8_epi16(_mm256_loadu_si256(t.scales.as_ptr().add(pair * 32) as *const _));
                let scs = [_mm512_and_si512(sc, lo16), _mm512_srli_epi32(sc, 16)];
                for (e, sc_sub) in scs.iter().enumerate() {
                    let sub = pair * 2 + e;
                    // with few rows, two accumulators (low and high nibbles) keep two dpbusd
                    // chains in flight
                    let mut lo = [_mm512_setzero_si512(); MT];
                    let mut hi = [_mm512_setzero_si512(); MT];
                    for g4 in 0..4 {
                        let g = sub * 4 + g4;
                        let w = load64(t.qs.as_ptr().add(g * TILE * 4));
                        let wl = _mm512_and_si512(w, mask);
                        let wh = _mm512_and_si512(_mm512_srli_epi16(w, 4), mask);
                        for m in 0..MT {
                            lo[m] = _mm512_dpbusd_epi32(lo[m], wl, bcast4(&acts[m].qs, g * 8));
                            if MT < 4 {
                                hi[m] = _mm512_dpbusd_epi32(hi[m], wh, bcast4(&acts[m].qs, g * 8 + 4));
                            } else {
                                // enough rows in flight: one chain each, fewer registers
                                lo[m] = _mm512_dpbusd_epi32(lo[m], wh, bcast4(&acts[m].qs, g * 8 + 4));
                            }
                        }
                    }
                    for m in 0..MT {
                        let isum = _mm512_add_epi32(lo[m], hi[m]);
                        iacc[m] = _mm512_add_epi32(iacc[m], _mm512_mullo_epi32(isum, *sc_sub));
                    }
                }
            }
            let d = _mm512_cvtph_ps(_mm256_loadu_si256(t.d.as_ptr() as *const _));
            let dmin = _mm512_cvtph_ps(_mm256_loadu_si256(t.dmin.as_ptr() as *const _));
            let mins: [__m512i; 4] = std::array::from_fn(|p| {
                _mm512_cvtepu8_epi16(_mm256_loadu_si256(t.mins.as_ptr().add(p * 32) as *const _))
            });
            for m in 0..MT {
                let mut macc = _mm512_setzero_si512();
                for (p, mn) in mins.iter().enumerate() {
                    macc = _mm512_dpwssd_epi32(macc, *mn, bcast_pair(&acts[m].bsum32, p));
                }
                let da = _mm512_set1_ps(acts[m].d);
                acc[m] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(iacc[m]), _mm512_mul_ps(d, da), acc[m]);
                acc[m] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(macc), _mm512_mul_ps(dmin, da), acc[m]);
            }
        }
        for m in 0..MT {
            _mm512_storeu_ps(out[m].as_mut_ptr(), acc[m]);
        }
    }
}

/// Rows `rows` against one strip of Q6_K tiles.
///
/// # Safety
/// As [`q4k`].
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
pub(crate) unsafe fn q6k(tiles: &[TileQ6K], rows: &[&[BlockQ8]], acc: &mut [[f32; TILE]; MAX_ROWS]) {
    match rows.len() {
        1 => unsafe { q6k_n::<1>(tiles, rows, acc) },
        2 => unsafe { q6k_n::<2>(tiles, rows, acc) },
        3 => unsafe { q6k_n::<3>(tiles, rows, acc) },
        4 => unsafe { q6k_n::<4>(tiles, rows, acc) },
        5 => unsafe { q6k_n::<5>(tiles, rows, acc) },
        6 => unsafe { q6k_n::<6>(tiles, rows, acc) },
        7 => unsafe { q6k_n::<7>(tiles, rows, acc) },
        _ => unsafe { q6k_n::<8>(tiles, rows, acc) },
    }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn q6k_n<const MT: usize>(tiles: &[TileQ6K], rows: &[&[BlockQ8]], out: &mut [[f32; TILE]; MAX_ROWS]) {
    unsafe {
        let mask = _mm512_set1_epi8(0x0F);
        let high = _mm512_set1_epi8(0x30);
        let mut acc = [_mm512_setzero_ps(); MT];
        for (b, t) in tiles.iter().enumerate() {
            let acts: [&BlockQ8; MT] = std::array::from_fn(|m| &rows[m][b]);
            let mut iacc = [_mm512_setzero_si512(); MT];
            let mut pairs = [_mm512_setzero_si512(); 8];
            for p in 0..16 {
                if p % 2 == 0 {
                    pairs[p / 2] =
                        _mm512_cvtepi8_epi16(_mm256_loadu_si256(t.scales.as_ptr().add(p / 2 * 32) as *const _));
                }
                let pv = pairs[p / 2];
                let sc = if p % 2 == 0 {
                    _mm512_srai_epi32(_mm512_slli_epi32(pv, 16), 16)
                } else {
                    _mm512_srai_epi32(pv, 16)
                };
                let h = load64(t.q.as_ptr().add(TileQ6K::qh(p)));
                let w0 = load64(t.q.as_ptr().add(TileQ6K::ql(2 * p)));
                let w1 = load64(t.q.as_ptr().add(TileQ6K::ql(2 * p + 1)));
                // value | high bits: ternary logic A | (B & C) = 0xF8
                let a0 = _mm512_ternarylogic_epi32(_mm512_and_si512(w0, mask), _mm512_slli_epi16(h, 4), high, 0xF8);
                let a1 = _mm512_ternarylogic_epi32(
                    _mm512_and_si512(_mm512_srli_epi16(w0, 4), mask),
                    _mm512_slli_epi16(h, 2),
                    high,
                    0xF8,
                );
                let a2 = _mm512_ternarylogic_epi32(_mm512_and_si512(w1, mask), h, high, 0xF8);
                let a3 = _mm512_ternarylogic_epi32(
                    _mm512_and_si512(_mm512_srli_epi16(w1, 4), mask),
                    _mm512_srli_epi16(h, 2),
                    high,
                    0xF8,
                );
                for m in 0..MT {
                    let q = &acts[m].qs;
                    let s0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), a0, bcast4(q, 16 * p));
                    let s1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), a1, bcast4(q, 16 * p + 4));
                    let s0 = _mm512_dpbusd_epi32(s0, a2, bcast4(q, 16 * p + 8));
                    let s1 = _mm512_dpbusd_epi32(s1, a3, bcast4(q, 16 * p + 12));
                    iacc[m] = _mm512_add_epi32(iacc[m], _mm512_mullo_epi32(_mm512_add_epi32(s0, s1), sc));
                }
            }
            let d = _mm512_cvtph_ps(_mm256_loadu_si256(t.d.as_ptr() as *const _));
            for m in 0..MT {
                let mut corr = _mm512_setzero_si512();
                for (p, pv) in pairs.iter().enumerate() {
                    corr = _mm512_dpwssd_epi32(corr, *pv, bcast_pair(&acts[m].bsum16, p));
                }
                let total = _mm512_sub_epi32(iacc[m], _mm512_slli_epi32(corr, 5));
                acc[m] = _mm512_fmadd_ps(
                    _mm512_cvtepi32_ps(total),
                    _mm512_mul_ps(d, _mm512_set1_ps(acts[m].d)),
                    acc[m],
                );
            }
        }
        for m in 0..MT {
            _mm512_storeu_ps(out[m].as_mut_ptr(), acc[m]);
        }
    }
}
