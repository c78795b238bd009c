//! The scalar reference of the kernels: the same integer sums as the SIMD paths, written
//! for clarity. The tests hold the SIMD kernels to it; CPUs without AVX2 run it.

use super::{BlockQ8, MAX_ROWS, TILE, TileQ4K, TileQ6K, f16_to_f32};

/// The unsigned 4-bit value of row `r`, input `i` of a Q4_K tile.
pub(crate) fn q4k_value(t: &TileQ4K, r: usize, i: usize) -> u8 {
    let (g, j) = (i / 8, i % 8);
    let byte = t.qs[(g * TILE + r) * 4 + j % 4];
    if j < 4 { byte & 0x0F } else { byte >> 4 }
}

/// The unsigned 6-bit value (`q + 32`) of row `r`, input `i` of a Q6_K tile.
pub(crate) fn q6k_value(t: &TileQ6K, r: usize, i: usize) -> u8 {
    let (g, j) = (i / 8, i % 8);
    let byte = t.q[TileQ6K::ql(g) + r * 4 + j % 4];
    let lo = if j < 4 { byte & 0x0F } else { byte >> 4 };
    let (p, q) = (i / 16, i % 16);
    // q = 4 * step + j': step 0..4 holds 2 bits each at 2 * step
    let hbyte = t.q[TileQ6K::qh(p) + r * 4 + q % 4];
    let hi = (hbyte >> (2 * (q / 4))) & 3;
    lo | (hi << 4)
}

pub(crate) fn q4k(tiles: &[TileQ4K], rows: &[&[BlockQ8]], acc: &mut [[f32; TILE]; MAX_ROWS]) {
    for (m, row) in rows.iter().enumerate() {
        for r in 0..TILE {
            let mut sum = 0f32;
            for (b, t) in tiles.iter().enumerate() {
                let a = &row[b];
                let mut iacc = 0i32;
                let mut macc = 0i32;
                for sub in 0..8 {
                    let at = (sub / 2) * TILE * 2 + r * 2 + sub % 2;
                    let mut isum = 0i32;
                    for i in sub * 32..sub * 32 + 32 {
                        isum += q4k_value(t, r, i) as i32 * a.qs[i] as i32;
                    }
                    iacc += isum * t.scales[at] as i32;
                    macc += t.mins[at] as i32 * a.bsum32[sub] as i32;
                }
                sum += iacc as f32 * (f16_to_f32(t.d[r]) * a.d) - macc as f32 * (f16_to_f32(t.dmin[r]) * a.d);
            }
            acc[m][r] = sum;
        }
    }
}

pub(crate) fn q6k(tiles: &[TileQ6K], rows: &[&[BlockQ8]], acc: &mut [[f32; TILE]; MAX_ROWS]) {
    for (m, row) in rows.iter().enumerate() {
        for r in 0..TILE {
            let mut sum = 0f32;
            for (b, t) in tiles.iter().enumerate() {
                let a = &row[b];
                let mut iacc = 0i32;
                let mut corr = 0i32;
                for sub in 0..16 {
                    let sc = t.scales[(sub / 2) * TILE * 2 + r * 2 + sub % 2] as i32;
                    let mut isum = 0i32;
                    for i in sub * 16..sub * 16 + 16 {
                        isum += q6k_value(t, r, i) as i32 * a.qs[i] as i32;
                    }
                    iacc += isum * sc;
                    corr += sc * a.bsum16[sub] as i32;
                }
                sum += (iacc - 32 * corr) as f32 * (f16_to_f32(t.d[r]) * a.d);
            }
            acc[m][r] = sum;
        }
    }
}
