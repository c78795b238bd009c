//! Attention of one query row per head over the interleaved K/V cache (token generation and
//! drafted tokens). The query heads that share a K/V head (grouped-query attention) are done
//! together, so each cached key and value is loaded once per group; each K/V head is one
//! work unit (Qwen2.5-1.5B has two: one per core) and reads its own buffer front to back.
//! Two passes per group: the scores with dot products, then the softmax-weighted sum of the
//! values.

/// Lanes of the accumulators: a multiple of the vector width, so the loops vectorise.
const LANES: usize = 16;

#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let (ac, ar) = a.as_chunks::<LANES>();
    let (bc, br) = b.as_chunks::<LANES>();
    for (x, y) in ac.iter().zip(bc) {
        for l in 0..LANES {
            acc[l] += x[l] * y[l];
        }
    }
    let tail: f32 = ar.iter().zip(br).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}

#[inline(always)]
fn axpy(out: &mut [f32], w: f32, v: &[f32]) {
    for (o, x) in out.iter_mut().zip(v) {
        *o += w * x;
    }
}

/// Ask the CPU to fetch the `bytes` at `p` into the cache (the cache rows are 2 KB apart,
/// a stride the hardware prefetcher follows late).
#[inline(always)]
fn prefetch(p: &[f32], bytes: usize) {
    #[cfg(target_arch = "x86_64")]
    for off in (0..bytes.min(std::mem::size_of_val(p))).step_by(64) {
        // SAFETY: a prefetch never faults; the address is inside `p`
        unsafe {
            core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(
                (p.as_ptr() as *const i8).add(off),
            )
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (p, bytes);
}

/// Positions ahead that [`group`] prefetches.
const AHEAD: usize = 4;

/// Query heads `kv_head * groups..` against K/V head `kv_head` (its buffer `kv`: `[K, V]`
/// per position) for `len` positions.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn group(
    q: &[f32],
    kv: &[f32],
    kv_head: usize,
    groups: usize,
    d: usize,
    len: usize,
    scale: f32,
    scores: &mut [f32],
    out: &mut [f32],
) {
    let stride = 2 * d;
    let heads = kv_head * groups..(kv_head + 1) * groups;
    for j in 0..len {
        if j + AHEAD < len {
            prefetch(&kv[(j + AHEAD) * stride..][..d], d * 4);
        }
        let k = &kv[j * stride..][..d];
        for (g, h) in heads.clone().enumerate() {
            scores[g * len + j] = dot(&q[h * d..(h + 1) * d], k) * scale;
        }
    }
    for g in 0..groups {
        let s = &mut scores[g * len..(g + 1) * len];
        let max = s.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0f32;
        for x in s.iter_mut() {
            *x = (*x - max).exp();
            sum += *x;
        }
        let inv = 1.0 / sum;
        for x in s.iter_mut() {
            *x *= inv;
        }
    }
    out.fill(0.0);
    for j in 0..len {
        if j + AHEAD < len {
            prefetch(&kv[(j + AHEAD) * stride + d..][..d], d * 4);
        }
        let v = &kv[j * stride + d..][..d];
        for g in 0..groups {
            axpy(&mut out[g * d..(g + 1) * d], scores[g * len + j], v);
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn group_avx512(
    q: &[f32],
    kv: &[f32],
    kv_head: usize,
    groups: usize,
    d: usize,
    len: usize,
    scale: f32,
    scores: &mut [f32],
    out: &mut [f32],
) {
    group(q, kv, kv_head, groups, d, len, scale, scores, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn group_avx2(
    q: &[f32],
    kv: &[f32],
    kv_head: usize,
    groups: usize,
    d: usize,
    len: usize,
    scale: f32,
    scores: &mut [f32],
    out: &mut [f32],
) {
    group(q, kv, kv_head, groups, d, len, scale, scores, out)
}

/// `out` (`n_head * d`) = softmax(q k^T * scale) v for one query row `q` (`n_head * d`)
/// over the first `len` positions of the cache: `heads[h]` holds K/V head `h`, per position
/// `d` key values, then `d` values.
#[allow(clippy::too_many_arguments)]
pub(crate) fn attend_one(
    isa: super::Isa,
    q: &[f32],
    heads: &[&[f32]],
    n_head: usize,
    d: usize,
    len: usize,
    scale: f32,
    out: &mut [f32],
) {
    assert!(isa.available(), "{isa:?} kernels on a CPU without them");
    let n_kv = heads.len();
    assert!(n_kv > 0 && n_head % n_kv == 0 && len > 0, "{n_head} heads over {n_kv}, {len} positions");
    assert!(q.len() == n_head * d && out.len() == n_head * d && heads.iter().all(|h| h.len() >= len * 2 * d));
    let groups = n_head / n_kv;
    let shared = super::SharedOut::new(out);
    let run = |kv_head: usize| {
        let mut scores = vec![0f32; groups * len];
        // SAFETY: each K/V head writes its own query heads' rows
        let out = unsafe { shared.slice(kv_head * groups * d, groups * d) };
        match isa {
            #[cfg(target_arch = "x86_64")]
            super::Isa::Avx512Vnni => unsafe {
                group_avx512(q, heads[kv_head], kv_head, groups, d, len, scale, &mut scores, out)
            },
            #[cfg(target_arch = "x86_64")]
            super::Isa::Avx2 => unsafe { group_avx2(q, heads[kv_head], kv_head, groups, d, len, scale, &mut scores, out) },
            _ => group(q, heads[kv_head], kv_head, groups, d, len, scale, &mut scores, out),
        }
    };
    if n_kv == 1 || len * n_head * d < 1 << 14 {
        (0..n_kv).for_each(run);
    } else {
        candle_core::utils::barrier_pool().execute_chunked(n_kv, |r| r.for_each(run));
    }
}
