//! Lotse's own quantized matrix kernels for the generator's linear layers (Q4_K and Q6_K
//! weights, as in the default GGUF). The only module of the workspace where `unsafe` is
//! allowed: SIMD intrinsics and the raw output pointers the worker threads write through.
//!
//! Why our own: candle keeps each weight twice (the GGUF blocks and a repacked copy a third
//! larger), and its tiles carry per-subblock f32 scales that make token generation read a
//! third more memory than the file holds. Here each weight matrix exists once, in tiles about
//! as large as the GGUF blocks (Q4_K: 2,368 bytes per 16 rows x 256 values, the file 2,304;
//! Q6_K: 3,392, the file 3,360), and the subblock scales are applied in integer arithmetic.
//!
//! Layout (`TILE` = 16 output rows, a superblock = 256 input values):
//! - Q4_K `qs`: `[k8-group 32][row 16][4 bytes]`, byte `j` = `q[8g+j] | q[8g+j+4] << 4`, so
//!   one 64-byte load gives, after masking, the unsigned values of 4 consecutive inputs for
//!   16 rows: one `vpdpbusd` against 4 broadcast activation bytes.
//! - scales and mins (6-bit): `[subblock pair 4][row 16][2 bytes]`, widened to 16-bit pairs
//!   for `vpdpwssd` (the mins term against the activations' 32-value sums) and split into
//!   32-bit lanes for the per-subblock integer multiply.
//! - Q6_K: the low 4 bits as Q4_K's `qs`, the high 2 bits `[k16-group 16][row 16][4 bytes]`
//!   (2 bits for each of the 4 values a byte position stands for in the group's four k4
//!   steps), signed 8-bit scales per 16 values in pairs; values are `q - 32`, corrected with
//!   the activations' 16-value sums.
//! - Activations are quantized per row and superblock to i8 with one f32 scale ([`QActs`]).
//!
//! Paths: AVX-512 with VNNI (`avx512.rs`), AVX2 with FMA and F16C (`avx2.rs`), and a scalar
//! reference (`scalar`) that the tests compare both against and that runs where neither is
//! available. Work is split over candle's thread pool: output tiles (and row blocks of the
//! input for prompt passes), each written by exactly one thread.
#![allow(unsafe_code)]
// indices name rows, lanes and subblocks here: loops over them read best as they are
#![allow(clippy::needless_range_loop)]

mod activation;
mod attention;
#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
mod scalar;
#[cfg(test)]
mod tests;

pub(crate) use activation::silu_mul;
pub(crate) use attention::attend_one;
use candle_core::quantized::{GgmlDType, QTensor};
use half::f16;

/// Output rows per tile.
pub(crate) const TILE: usize = 16;
/// Input values per superblock.
pub(crate) const QK: usize = 256;
/// Input rows one kernel call takes (prompt passes).
pub(crate) const MAX_ROWS: usize = 8;
/// Input rows per work unit: the activations of one unit stay in the core's L2 cache.
const ROW_CHUNK: usize = 64;

/// 16 rows x 256 inputs of Q4_K weights.
#[repr(C, align(64))]
#[derive(Clone)]
pub(crate) struct TileQ4K {
    // the scales first: a tile is read front to back, one stream for the prefetcher
    pub(crate) scales: [u8; 8 * TILE],
    pub(crate) mins: [u8; 8 * TILE],
    /// f16 bits.
    pub(crate) d: [u16; TILE],
    pub(crate) dmin: [u16; TILE],
    pub(crate) qs: [u8; QK / 2 * TILE],
}

/// 16 rows x 256 inputs of Q6_K weights.
#[repr(C, align(64))]
#[derive(Clone)]
pub(crate) struct TileQ6K {
    pub(crate) scales: [i8; 16 * TILE],
    /// f16 bits.
    pub(crate) d: [u16; TILE],
    /// Per k16-group `p` (16 of them), 192 bytes in the order the kernels read them: the
    /// high bits (64), then the low nibbles of k8-groups `2p` and `2p + 1` (64 each).
    pub(crate) q: [u8; Q6K_GROUP * 16],
}

/// Bytes of one k16-group in a Q6_K tile.
pub(crate) const Q6K_GROUP: usize = 192;

impl TileQ6K {
    /// Offset of the high bits of k16-group `p` in `q`.
    pub(crate) const fn qh(p: usize) -> usize {
        p * Q6K_GROUP
    }
    /// Offset of the low nibbles of k8-group `g` in `q`.
    pub(crate) const fn ql(g: usize) -> usize {
        (g / 2) * Q6K_GROUP + 64 + (g % 2) * 64
    }
}

/// One row's 256 inputs quantized to i8: value = `d * qs[i]`.
#[repr(C, align(64))]
#[derive(Clone, Copy)]
pub(crate) struct BlockQ8 {
    pub(crate) qs: [i8; QK],
    /// Sums of 16 consecutive `qs`.
    pub(crate) bsum16: [i16; 16],
    /// Sums of 32 consecutive `qs`.
    pub(crate) bsum32: [i16; 8],
    pub(crate) d: f32,
}

impl BlockQ8 {
    const ZERO: BlockQ8 = BlockQ8 {
        qs: [0; QK],
        bsum16: [0; 16],
        bsum32: [0; 8],
        d: 0.0,
    };
}

/// `m` rows of activations, quantized for the kernels.
pub(crate) struct QActs {
    pub(crate) blocks: Vec<BlockQ8>,
    pub(crate) m: usize,
    pub(crate) kb: usize,
}

impl QActs {
    /// Quantize `m` rows of `k` values (`x` row-major; `k` a multiple of 256).
    pub(crate) fn quantize(x: &[f32], m: usize, k: usize) -> QActs {
        assert!(k.is_multiple_of(QK) && x.len() == m * k, "activations of {m} x {k}");
        let kb = k / QK;
        let n = m * kb;
        // every block is written below: no zeroing pass first
        let mut blocks: Vec<BlockQ8> = Vec::with_capacity(n);
        let work = |range: std::ops::Range<usize>, out: &mut [std::mem::MaybeUninit<BlockQ8>]| {
            for (i, block) in range.zip(out.iter_mut()) {
                block.write(quantize_block(&x[i * QK..(i + 1) * QK]));
            }
        };
        let spare = &mut blocks.spare_capacity_mut()[..n];
        if n < 64 {
            work(0..n, spare);
        } else {
            let out = SharedOut::new(spare);
            candle_core::utils::barrier_pool().execute_chunked(n, |range| {
                // SAFETY: each index belongs to exactly one range
                let part = unsafe { out.slice(range.start, range.len()) };
                work(range, part);
            });
        }
        // SAFETY: the n blocks were written above (every index is in exactly one range)
        unsafe { blocks.set_len(n) };
        QActs { blocks, m, kb }
    }

    fn row(&self, r: usize) -> &[BlockQ8] {
        &self.blocks[r * self.kb..(r + 1) * self.kb]
    }
}

fn quantize_block(x: &[f32]) -> BlockQ8 {
    let amax = x.iter().fold(0f32, |a, v| a.max(v.abs()));
    if amax == 0.0 {
        return BlockQ8::ZERO;
    }
    if !amax.is_finite() {
        // a numerical blow-up stays visible: the block's products are NaN, as in candle
        return BlockQ8 { d: f32::NAN, ..BlockQ8::ZERO };
    }
    let mut out = BlockQ8::ZERO;
    let d = amax / 127.0;
    let id = 127.0 / amax;
    // round to nearest with the 1.5 * 2^23 trick (vectorises, unlike `f32::round`)
    const MAGIC: f32 = 12_582_912.0;
    for (q, &v) in out.qs.iter_mut().zip(x) {
        let r = (v * id + MAGIC) - MAGIC;
        *q = r.clamp(-127.0, 127.0) as i8;
    }
    for (s, chunk) in out.bsum16.iter_mut().zip(out.qs.chunks_exact(16)) {
        *s = chunk.iter().map(|&q| q as i16).sum();
    }
    for j in 0..8 {
        out.bsum32[j] = out.bsum16[2 * j] + out.bsum16[2 * j + 1];
    }
    out.d = d;
    out
}

/// The raw pointer of an output buffer that several threads write disjoint parts of.
#[derive(Clone, Copy)]
struct SharedOut<T> {
    ptr: *mut T,
    len: usize,
}

// SAFETY: the threads write disjoint ranges (every caller partitions the indices).
unsafe impl<T: Send> Send for SharedOut<T> {}
unsafe impl<T: Send> Sync for SharedOut<T> {}

impl<T> SharedOut<T> {
    fn new(buf: &mut [T]) -> Self {
        SharedOut {
            ptr: buf.as_mut_ptr(),
            len: buf.len(),
        }
    }

    /// # Safety
    /// No two live slices may overlap.
    #[allow(clippy::mut_from_ref)]
    unsafe fn slice(&self, start: usize, len: usize) -> &mut [T] {
        assert!(start + len <= self.len, "slice out of the buffer");
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(start), len) }
    }
}

/// Which of Lotse's matrix kernels the generator uses ([`LoadOptions::kernels`](crate::generate::LoadOptions)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kernels {
    /// The best this CPU has (AVX-512 VNNI, else AVX2, else scalar); `LOTSE_KERNELS=avx2` or
    /// `=scalar` in the environment forces a lower one.
    #[default]
    Auto,
    /// AVX2 with FMA and F16C even on an AVX-512 CPU (scalar where there is no AVX2).
    Avx2,
    /// The scalar reference (slow; for tests).
    Scalar,
}

impl Kernels {
    pub(crate) fn isa(self) -> Isa {
        match self {
            Kernels::Auto => Isa::detect(),
            Kernels::Avx2 if Isa::Avx2.available() => Isa::Avx2,
            Kernels::Avx2 | Kernels::Scalar => Isa::Scalar,
        }
    }
}

/// Which instruction set the kernels use on this CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Isa {
    Avx512Vnni,
    Avx2,
    Scalar,
}

impl Isa {
    /// The best this CPU has; `LOTSE_KERNELS=avx2|scalar` forces a lower one (for tests and
    /// comparisons).
    pub(crate) fn detect() -> Isa {
        static ISA: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
        *ISA.get_or_init(|| {
            let best = Isa::best();
            match std::env::var("LOTSE_KERNELS").as_deref() {
                Err(_) | Ok("") => best,
                Ok("scalar") => Isa::Scalar,
                Ok("avx2") if best != Isa::Scalar => Isa::Avx2,
                Ok(other) => {
                    tracing::warn!(value = other, using = ?best, "LOTSE_KERNELS is avx2 or scalar; ignored");
                    best
                }
            }
        })
    }

    fn best() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            let avx2 = is_x86_feature_detected!("avx2")
                && is_x86_feature_detected!("fma")
                && is_x86_feature_detected!("f16c");
            if avx2
                && is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("avx512bw")
                && is_x86_feature_detected!("avx512vnni")
            {
                return Isa::Avx512Vnni;
            }
            if avx2 {
                return Isa::Avx2;
            }
        }
        Isa::Scalar
    }

    /// Whether this CPU can run `self` (the AVX-512 tier includes AVX2, FMA and F16C).
    pub(crate) fn available(self) -> bool {
        static BEST: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
        let best = *BEST.get_or_init(Isa::best);
        match self {
            Isa::Scalar => true,
            Isa::Avx2 => best != Isa::Scalar,
            Isa::Avx512Vnni => best == Isa::Avx512Vnni,
        }
    }
}

#[derive(Clone)]
enum Tiles {
    Q4K(Vec<TileQ4K>),
    Q6K(Vec<TileQ6K>),
}

/// A weight matrix of `n` output rows and `k` inputs in tiles, the only copy of it.
#[derive(Clone)]
pub(crate) struct QMatrix {
    tiles: Tiles,
    n: usize,
    k: usize,
}

impl std::fmt::Debug for QMatrix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.tiles {
            Tiles::Q4K(_) => "q4k",
            Tiles::Q6K(_) => "q6k",
        };
        write!(f, "QMatrix({kind}, {} x {})", self.n, self.k)
    }
}

fn f16_bits(b: &[u8]) -> u16 {
    u16::from_le_bytes([b[0], b[1]])
}

/// ggml's 6-bit scale/min unpack for Q4_K superblocks.
fn scale_min_k4(j: usize, s: &[u8]) -> (u8, u8) {
    if j < 4 {
        (s[j] & 63, s[j + 4] & 63)
    } else {
        (
            (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4),
            (s[j + 4] >> 4) | ((s[j] >> 6) << 4),
        )
    }
}

const Q4K_BYTES: usize = 144;
const Q6K_BYTES: usize = 210;

impl QMatrix {
    /// Tiles for a Q4_K or Q6_K tensor of shape `(n, k)`; `None` for other types or shapes
    /// (those stay with candle).
    pub(crate) fn from_qtensor(t: &QTensor) -> candle_core::Result<Option<QMatrix>> {
        let (n, k) = match t.shape().dims() {
            [n, k] => (*n, *k),
            _ => return Ok(None),
        };
        if !k.is_multiple_of(QK) || n == 0 {
            return Ok(None);
        }
        let data = t.data()?;
        Ok(match t.dtype() {
            GgmlDType::Q4K => Some(QMatrix::pack_q4k(&data, n, k)),
            GgmlDType::Q6K => Some(QMatrix::pack_q6k(&data, n, k)),
            _ => None,
        })
    }

    pub(crate) fn rows(&self) -> usize {
        self.n
    }

    #[cfg(test)]
    pub(crate) fn cols(&self) -> usize {
        self.k
    }

    fn n_tiles(&self) -> usize {
        self.n.div_ceil(TILE)
    }

    /// Pack GGUF Q4_K blocks (`n` rows of `k / 256` blocks of 144 bytes).
    pub(crate) fn pack_q4k(data: &[u8], n: usize, k: usize) -> QMatrix {
        let kb = k / QK;
        assert_eq!(data.len(), n * kb * Q4K_BYTES, "q4k data of {n} x {k}");
        let n_tiles = n.div_ceil(TILE);
        let mut tiles = Vec::with_capacity(n_tiles * kb);
        for t in 0..n_tiles {
            for b in 0..kb {
                let mut tile = TileQ4K {
                    qs: [0; QK / 2 * TILE],
                    scales: [0; 8 * TILE],
                    mins: [0; 8 * TILE],
                    d: [0; TILE],
                    dmin: [0; TILE],
                };
                for r in 0..TILE {
                    let row = t * TILE + r;
                    if row >= n {
                        break; // zero rows pad the last tile
                    }
                    let blk = &data[(row * kb + b) * Q4K_BYTES..][..Q4K_BYTES];
                    tile.d[r] = f16_bits(&blk[0..2]);
                    tile.dmin[r] = f16_bits(&blk[2..4]);
                    let scales = &blk[4..16];
                    for sub in 0..8 {
                        let (sc, mn) = scale_min_k4(sub, scales);
                        tile.scales[(sub / 2) * TILE * 2 + r * 2 + sub % 2] = sc;
                        tile.mins[(sub / 2) * TILE * 2 + r * 2 + sub % 2] = mn;
                    }
                    let qs = &blk[16..];
                    let mut vals = [0u8; QK];
                    for c in 0..4 {
                        for j in 0..32 {
                            let byte = qs[c * 32 + j];
                            vals[c * 64 + j] = byte & 0x0F;
                            vals[c * 64 + 32 + j] = byte >> 4;
                        }
                    }
                    for g in 0..QK / 8 {
                        for j in 0..4 {
                            tile.qs[(g * TILE + r) * 4 + j] = vals[g * 8 + j] | (vals[g * 8 + j + 4] << 4);
                        }
                    }
                }
                tiles.push(tile);
            }
        }
        QMatrix {
            tiles: Tiles::Q4K(tiles),
            n,
            k,
        }
    }

    /// Pack GGUF Q6_K blocks (`n` rows of `k / 256` blocks of 210 bytes).
    pub(crate) fn pack_q6k(data: &[u8], n: usize, k: usize) -> QMatrix {
        let kb = k / QK;
        assert_eq!(data.len(), n * kb * Q6K_BYTES, "q6k data of {n} x {k}");
        let n_tiles = n.div_ceil(TILE);
        let mut tiles = Vec::with_capacity(n_tiles * kb);
        for t in 0..n_tiles {
            for b in 0..kb {
                let mut tile = TileQ6K {
                    scales: [0; 16 * TILE],
                    d: [0; TILE],
                    q: [0; Q6K_GROUP * 16],
                };
                for r in 0..TILE {
                    let row = t * TILE + r;
                    if row >= n {
                        break;
                    }
                    let blk = &data[(row * kb + b) * Q6K_BYTES..][..Q6K_BYTES];
                    let (ql, qh, sc) = (&blk[0..128], &blk[128..192], &blk[192..208]);
                    tile.d[r] = f16_bits(&blk[208..210]);
                    for s in 0..16 {
                        tile.scales[(s / 2) * TILE * 2 + r * 2 + s % 2] = sc[s] as i8;
                    }
                    // unsigned 6-bit values, as ggml's dequantisation orders them
                    let mut vals = [0u8; QK];
                    for half in 0..2 {
                        let (ql, qh) = (&ql[64 * half..], &qh[32 * half..]);
                        let v = &mut vals[128 * half..];
                        for l in 0..32 {
                            v[l] = (ql[l] & 0xF) | ((qh[l] & 3) << 4);
                            v[l + 32] = (ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4);
                            v[l + 64] = (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4);
                            v[l + 96] = (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4);
                        }
                    }
                    for g in 0..QK / 8 {
                        for j in 0..4 {
                            tile.q[TileQ6K::ql(g) + r * 4 + j] =
                                (vals[g * 8 + j] & 0xF) | ((vals[g * 8 + j + 4] & 0xF) << 4);
                        }
                    }
                    for p in 0..QK / 16 {
                        for j in 0..4 {
                            let hi = |i: usize| vals[16 * p + i] >> 4;
                            tile.q[TileQ6K::qh(p) + r * 4 + j] =
                                hi(j) | (hi(j + 4) << 2) | (hi(j + 8) << 4) | (hi(j + 12) << 6);
                        }
                    }
                }
                tiles.push(tile);
            }
        }
        QMatrix {
            tiles: Tiles::Q6K(tiles),
            n,
            k,
        }
    }

    /// Whether `other` can be stacked below `self` ([`QMatrix::stack`]): one type, one
    /// width, and `self` fills whole tiles.
    pub(crate) fn stacks_with(&self, other: &QMatrix) -> bool {
        self.k == other.k
            && self.n.is_multiple_of(TILE)
            && matches!(
                (&self.tiles, &other.tiles),
                (Tiles::Q4K(_), Tiles::Q4K(_)) | (Tiles::Q6K(_), Tiles::Q6K(_))
            )
    }

    /// The rows of several matrices stacked into one (their outputs side by side), so that
    /// projections sharing an input run as one pass. Each part must stack with the next
    /// ([`QMatrix::stacks_with`]).
    pub(crate) fn stack(parts: Vec<QMatrix>) -> QMatrix {
        assert!(!parts.is_empty() && parts.windows(2).all(|w| w[0].stacks_with(&w[1])), "matrices that do not stack");
        let n = parts.iter().map(|p| p.n).sum();
        let k = parts[0].k;
        let mut parts = parts.into_iter();
        let Some(first) = parts.next() else { unreachable!() };
        let tiles = match first.tiles {
            Tiles::Q4K(mut all) => {
                for p in parts {
                    if let Tiles::Q4K(t) = p.tiles {
                        all.extend(t);
                    }
                }
                Tiles::Q4K(all)
            }
            Tiles::Q6K(mut all) => {
                for p in parts {
                    if let Tiles::Q6K(t) = p.tiles {
                        all.extend(t);
                    }
                }
                Tiles::Q6K(all)
            }
        };
        QMatrix { tiles, n, k }
    }

    /// Bytes the tiles take.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        match &self.tiles {
            Tiles::Q4K(t) => std::mem::size_of_val(t.as_slice()),
            Tiles::Q6K(t) => std::mem::size_of_val(t.as_slice()),
        }
    }

    /// `out[r][j] = sum_i x[r][i] * w[j][i]` for the `m` rows of `x` (`m x k`, row-major);
    /// `out` is `m x n`.
    #[cfg(test)]
    pub(crate) fn matmul(&self, x: &[f32], m: usize, out: &mut [f32]) {
        let acts = QActs::quantize(x, m, self.k);
        self.matmul_with(Isa::detect(), &acts, out);
    }

    /// [`QMatrix::matmul`] with activations quantized once (for several matrices) and the
    /// kernels of `isa`.
    #[cfg(test)]
    pub(crate) fn matmul_with(&self, isa: Isa, acts: &QActs, out: &mut [f32]) {
        // SAFETY: an initialised f32 is a valid MaybeUninit<f32>; only f32 are written
        let out = unsafe { &mut *(out as *mut [f32] as *mut [std::mem::MaybeUninit<f32>]) };
        self.matmul_into(isa, acts, out);
    }

    /// [`QMatrix::matmul_with`] into a new vector (not zeroed first: every element is
    /// written).
    pub(crate) fn matmul_vec(&self, isa: Isa, acts: &QActs) -> Vec<f32> {
        let len = acts.m * self.n;
        let mut out = Vec::with_capacity(len);
        self.matmul_into(isa, acts, &mut out.spare_capacity_mut()[..len]);
        // SAFETY: matmul_into writes every (row, column) of the m x n output
        unsafe { out.set_len(len) };
        out
    }

    fn matmul_into(&self, isa: Isa, acts: &QActs, out: &mut [std::mem::MaybeUninit<f32>]) {
        let (m, n) = (acts.m, self.n);
        assert_eq!(acts.kb * QK, self.k, "activations of width {}", acts.kb * QK);
        assert_eq!(out.len(), m * n, "output of {m} x {n}");
        assert!(isa.available(), "{isa:?} kernels on a CPU without them");
        let n_tiles = self.n_tiles();
        let row_chunks = m.div_ceil(ROW_CHUNK);
        let units = n_tiles * row_chunks;
        let shared = SharedOut::new(out);
        let run = |range: std::ops::Range<usize>| {
            for unit in range {
                // row chunks outermost: consecutive units reuse the chunk's activations
                let (chunk, nt) = (unit / n_tiles, unit % n_tiles);
                let rows = chunk * ROW_CHUNK..(m.min((chunk + 1) * ROW_CHUNK));
                let mut r0 = rows.start;
                while r0 < rows.end {
                    let mt = (rows.end - r0).min(MAX_ROWS);
                    let mut acc = [[0f32; TILE]; MAX_ROWS];
                    self.tile_rows(isa, nt, acts, r0, mt, &mut acc);
                    let cols = TILE.min(n - nt * TILE);
                    for (i, row) in acc.iter().enumerate().take(mt) {
                        // SAFETY: (row r0 + i, tile nt) belongs to this unit alone
                        let dst = unsafe { shared.slice((r0 + i) * n + nt * TILE, cols) };
                        for (d, &v) in dst.iter_mut().zip(&row[..cols]) {
                            d.write(v);
                        }
                    }
                    r0 += mt;
                }
            }
        };
        if units * m.min(ROW_CHUNK) * self.k < 1 << 16 {
            run(0..units);
        } else {
            candle_core::utils::barrier_pool().execute_chunked(units, run);
        }
    }

    /// Tile `nt` against input rows `r0..r0 + mt` (`mt <= MAX_ROWS`) into `acc`.
    fn tile_rows(&self, isa: Isa, nt: usize, acts: &QActs, r0: usize, mt: usize, acc: &mut [[f32; TILE]; MAX_ROWS]) {
        let kb = acts.kb;
        let rows: [&[BlockQ8]; MAX_ROWS] = std::array::from_fn(|i| acts.row(r0 + i.min(mt - 1)));
        let rows = &rows[..mt];
        match (&self.tiles, isa) {
            #[cfg(target_arch = "x86_64")]
            (Tiles::Q4K(t), Isa::Avx512Vnni) => {
                // SAFETY: `available` checked the CPU features
                unsafe { avx512::q4k(&t[nt * kb..(nt + 1) * kb], rows, acc) }
            }
            #[cfg(target_arch = "x86_64")]
            (Tiles::Q6K(t), Isa::Avx512Vnni) => unsafe { avx512::q6k(&t[nt * kb..(nt + 1) * kb], rows, acc) },
            #[cfg(target_arch = "x86_64")]
            (Tiles::Q4K(t), Isa::Avx2) => unsafe { avx2::q4k(&t[nt * kb..(nt + 1) * kb], rows, acc) },
            #[cfg(target_arch = "x86_64")]
            (Tiles::Q6K(t), Isa::Avx2) => unsafe { avx2::q6k(&t[nt * kb..(nt + 1) * kb], rows, acc) },
            (Tiles::Q4K(t), _) => scalar::q4k(&t[nt * kb..(nt + 1) * kb], rows, acc),
            (Tiles::Q6K(t), _) => scalar::q6k(&t[nt * kb..(nt + 1) * kb], rows, acc),
        }
    }
}

pub(crate) fn f16_to_f32(bits: u16) -> f32 {
    f16::from_bits(bits).to_f32()
}
