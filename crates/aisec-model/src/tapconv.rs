//! The per-tap sums of the direct ("stacked") convolution path of
//! `kernels::Stacked`, computed without `matrixmultiply`'s operand packing.
//!
//! That path computes a stride-1 "same" `k x k` convolution over a chunk of
//! images stacked into one zero-padded plane per channel as one GEMM per
//! kernel tap, `out[o, q] (+)= sum_i w_t[o, i] * src[i, q + shift_t]`
//! (forward: `o` an output channel, `i` an input channel; input gradient:
//! the roles swapped and the shift negated). The inner dimension of each
//! GEMM is only the channel count (16 or 32 in the ResNet of
//! `bench/train`), so `matrixmultiply` spent as much time packing the
//! shifted view of `src` (once per tap: nine copies of the stacked input)
//! and reading and writing the `[out, cols]` result nine times as in its
//! micro-kernel (profile in `bench/train/RESULTS.md`, issue 14 round 5).
//!
//! [`run`] computes the same values in one pass: a register tile of four
//! output rows by sixteen positions reads `src` where it lies (unaligned
//! loads of the stacked rows, no packing) and keeps the running sum over
//! the taps in registers, so each output value is written once. It is the
//! kn2row / "direct convolution with shifted loads" idea (Vasudevan et al.
//! 2017; Zhang et al. 2018, "High performance zero-memory overhead direct
//! convolutions"), written here for the stacked layout.
//!
//! **Bit-identical to the GEMM loop it replaces.** `matrixmultiply`'s FMA
//! micro-kernel (the one it selects on every CPU with FMA) computes each
//! tap's partial sum as a chain of fused multiply-adds over the inner
//! dimension in order, starting from zero, and then writes `p + 0` (first
//! tap, `beta = 0`) or `c + p` (later taps, `beta = 1`, `alpha = 1`: one
//! rounding). [`run`] does exactly these operations in exactly this order
//! (`_mm256_fmadd_ps`, `f32::mul_add` in the tail: both correctly rounded
//! fused operations). The one difference is the sign of an exact zero in
//! `matrixmultiply`'s edge tiles, which add `c + (p + 0)`: `-0.0` where
//! both are `-0.0` comes out `+0.0` there. It runs only where the CPU has
//! AVX2 and FMA (and `AISEC_SIMD` is not `baseline`); elsewhere the caller
//! keeps the GEMM loop. `tests::matches_the_gemm_loop_bit_for_bit` checks
//! it against `kernels::gemm`.

/// Output rows per register tile.
const R: usize = 4;

/// One direct tap sum: `out[o * cols + q] = sum over t of (sum over i of
/// w(o, i, t) * src[i * ld + view[t] + q])` for `o < rows`, `q < cols`,
/// where `w(o, i, t) = w[t + o * rsw + i * csw]`.
pub(crate) struct TapSum<'a> {
    pub w: &'a [f32],
    pub rsw: usize,
    pub csw: usize,
    pub rows: usize,
    pub inner: usize,
    pub src: &'a [f32],
    pub ld: usize,
    pub view: &'a [usize],
    pub cols: usize,
}

/// Whether [`run`] can take over on this machine (AVX2 and FMA, and the
/// AVX2 dispatch of `simd` not turned off).
pub(crate) fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        crate::simd::use_avx2() && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Computes `a` into `out[..rows * cols]`. Returns false (and writes
/// nothing) where [`available`] is false or an index would leave a slice;
/// the caller then runs the GEMM loop.
pub(crate) fn run(a: &TapSum<'_>, out: &mut [f32]) -> bool {
    let taps = a.view.len();
    if a.rows == 0 || a.cols == 0 || taps == 0 || a.inner == 0 {
        return false;
    }
    // Bounds: the largest index each operand is read or written at.
    let w_max = (taps - 1) + (a.rows - 1) * a.rsw + (a.inner - 1) * a.csw;
    let src_max = a.view.iter().map(|&v| v + a.cols - 1).max().unwrap_or(0) + (a.inner - 1) * a.ld;
    if w_max >= a.w.len() || src_max >= a.src.len() || a.rows * a.cols > out.len() {
        return false;
    }
    if !available() {
        return false;
    }
    // Weights repacked as [row block][tap][inner][R] (zero rows pad the
    // last block), so the micro-kernel reads them in order.
    let blocks = a.rows.div_ceil(R);
    let mut wp = vec![0.0f32; blocks * taps * a.inner * R];
    for o in 0..a.rows {
        let (b, r) = (o / R, o % R);
        for t in 0..taps {
            for i in 0..a.inner {
                wp[((b * taps + t) * a.inner + i) * R + r] = a.w[t + o * a.rsw + i * a.csw];
            }
        }
    }
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: `available()` saw AVX2 and FMA on this CPU; the bounds
        // above cover every index `fma::run` reads and writes (it reads
        // `src[i * ld + view[t] + q]` for `i < inner`, `q < cols`, the
        // packed weights within `wp`, and writes `out[o * cols + q]` for
        // `o < rows`).
        #[allow(unsafe_code)]
        unsafe {
            fma::run(a, &wp, out);
        }
        true
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The weight gradient of the direct path over one chunk:
/// `acc[o * kk + i * taps + t] += sum over positions of
/// dy(o, pos) * xt[(view[t] + pos) * c + i]` (`kk = c * taps`), where the
/// positions are the chunk's output pixels in im2col column order, given
/// as runs `(stacked position, dy offset, length)` (one per output row),
/// `dy(o, pos)` is `dy[dy_offset + o * ohw + k]` for the `k`-th pixel of a
/// run, and `xt` is the stacked input with the channel innermost
/// (`[stacked position][c]`).
///
/// The same operations in the same order as `kernels::gemm(m, cols, kk,
/// 1, dy, .., col, .., beta 1, acc)` over the im2col matrix `col` of the
/// chunk: `matrixmultiply` cuts the inner dimension (the pixels) into
/// blocks of [`KC`], computes each block's partial sum as a chain of fused
/// multiply-adds from zero and adds it to `acc` (one rounding); so does
/// [`run_dw`], with the vector lanes over input channels instead of over
/// pixels. No im2col matrix and no packing (which for this GEMM was a
/// scalar gather of both operands: the pixels are the contiguous axis of
/// both).
pub(crate) struct TapGrad<'a> {
    pub dy: &'a [f32],
    pub m: usize,
    pub ohw: usize,
    pub xt: &'a [f32],
    pub c: usize,
    pub view: &'a [usize],
    pub runs: &'a [(usize, usize, usize)],
}

/// `matrixmultiply`'s block of the inner dimension for `f32`
/// (`archparam_defaults::S_KC` of version 0.3; the crate can be built with
/// another value through `MATMUL_SGEMM_KC`, which this workspace does not
/// set). `kernels::tests::tapconv_path_is_bit_identical` would catch a change.
pub(crate) const KC: usize = 256;

/// Adds the weight gradient of [`TapGrad`] to `acc`. Returns false (and
/// changes nothing) where [`available`] is false or an index would leave a
/// slice; the caller then runs im2col and the GEMM.
pub(crate) fn run_dw(a: &TapGrad<'_>, acc: &mut [f32]) -> bool {
    let taps = a.view.len();
    if a.m == 0 || a.c == 0 || taps == 0 || a.runs.is_empty() {
        return false;
    }
    let far = a.runs.iter().map(|&(p, _, l)| p + l).max().unwrap_or(0);
    let near = a.runs.iter().map(|&(_, d, l)| d + l).max().unwrap_or(0);
    let vmax = a.view.iter().copied().max().unwrap_or(0);
    if a.runs.iter().any(|&(_, _, l)| l == 0)
        || (vmax + far) * a.c > a.xt.len()
        || near + (a.m - 1) * a.ohw > a.dy.len()
        || a.m * a.c * taps > acc.len()
    {
        return false;
    }
    if !available() {
        return false;
    }
    // The runs cut into blocks of KC pixels: (stacked position, dy
    // offset, length) segments, each block's in order.
    let mut blocks: Vec<Vec<(usize, usize, usize)>> = vec![Vec::new()];
    let mut filled = 0;
    for &(p, d, l) in a.runs {
        let mut k = 0;
        while k < l {
            if filled == KC {
                blocks.push(Vec::new());
                filled = 0;
            }
            let n = (l - k).min(KC - filled);
            if let Some(b) = blocks.last_mut() {
                b.push((p + k, d + k, n));
            }
            filled += n;
            k += n;
        }
    }
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: `available()` saw AVX2 and FMA on this CPU; the checks
        // above bound every index `fma::run_dw` touches: `xt` at
        // `(view[t] + p + k) * c + i` with `p + k < far`, `i < c`; `dy` at
        // `d + k + o * ohw` with `d + k < near`, `o < m`; `acc` below
        // `m * c * taps`.
        #[allow(unsafe_code)]
        unsafe {
            fma::run_dw(a, &blocks, acc);
        }
        true
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = blocks;
        false
    }
}

// unsafe: AVX2/FMA intrinsics on raw pointers, in functions compiled with
// those features; [`run`] checks the CPU and the bounds before calling in.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod fma {
    use super::{TapGrad, TapSum, R};
    use std::arch::x86_64::*;

    /// See [`super::run`]; `wp` is the packed weights.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn run(a: &TapSum<'_>, wp: &[f32], out: &mut [f32]) {
        let taps = a.view.len();
        let blk = taps * a.inner * R;
        let o = out.as_mut_ptr();
        let s = a.src.as_ptr();
        let blocks = a.rows.div_ceil(R);
        // Positions outer, row blocks inner: the stacked rows a position
        // tile reads stay in L1 for all the blocks (the whole stacked
        // input does not fit).
        let mut q = 0;
        while q < a.cols {
            let step = if q + 16 <= a.cols {
                16
            } else if q + 8 <= a.cols {
                8
            } else {
                1
            };
            for b in 0..blocks {
                let live = (a.rows - b * R).min(R);
                let w = wp.as_ptr().add(b * blk);
                let dst = o.add(b * R * a.cols);
                match step {
                    16 => tile16(a, s, w, q, live, dst),
                    8 => tile8(a, s, w, q, live, dst),
                    _ => tile1(a, s, w, q, live, dst),
                }
            }
            q += step;
        }
    }

    /// See [`super::run_dw`]; `blocks` are the pixel runs cut into blocks
    /// of `KC`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn run_dw(
        a: &TapGrad<'_>,
        blocks: &[Vec<(usize, usize, usize)>],
        acc: &mut [f32],
    ) {
        let taps = a.view.len();
        let kk = a.c * taps;
        let acc = acc.as_mut_ptr();
        for blk in blocks {
            for o0 in (0..a.m).step_by(R) {
                let live = (a.m - o0).min(R);
                // Rows past the last are read from row o0 and dropped.
                let mut rows = [0usize; R];
                for (r, v) in rows.iter_mut().enumerate() {
                    *v = if r < live {
                        (o0 + r) * a.ohw
                    } else {
                        o0 * a.ohw
                    };
                }
                for (t, &v) in a.view.iter().enumerate() {
                    let mut i = 0;
                    while i < a.c {
                        let lanes = if i + 16 <= a.c {
                            16
                        } else if i + 8 <= a.c {
                            8
                        } else {
                            1
                        };
                        let mut p = [[0.0f32; 16]; R];
                        match lanes {
                            16 => dw16(a, blk, &rows, v, i, &mut p),
                            8 => dw8(a, blk, &rows, v, i, &mut p),
                            _ => dw1(a, blk, &rows, v, i, &mut p),
                        }
                        for (r, pr) in p.iter().enumerate().take(live) {
                            for (l, &x) in pr.iter().enumerate().take(lanes) {
                                let d = acc.add((o0 + r) * kk + (i + l) * taps + t);
                                *d += x;
                            }
                        }
                        i += lanes;
                    }
                }
            }
        }
    }

    /// Sixteen channels from `i`: the block's chains into `p`.
    #[inline(always)]
    unsafe fn dw16(
        a: &TapGrad<'_>,
        blk: &[(usize, usize, usize)],
        rows: &[usize; R],
        v: usize,
        i: usize,
        p: &mut [[f32; 16]; R],
    ) {
        let z = _mm256_setzero_ps();
        let mut acc = [[z; 2]; R];
        let dy = a.dy.as_ptr();
        for &(ps, d, l) in blk {
            let mut x = a.xt.as_ptr().add((v + ps) * a.c + i);
            for k in 0..l {
                let x0 = _mm256_loadu_ps(x);
                let x1 = _mm256_loadu_ps(x.add(8));
                for (r, ar) in acc.iter_mut().enumerate() {
                    let g = _mm256_broadcast_ss(&*dy.add(d + k + rows[r]));
                    ar[0] = _mm256_fmadd_ps(g, x0, ar[0]);
                    ar[1] = _mm256_fmadd_ps(g, x1, ar[1]);
                }
                x = x.add(a.c);
            }
        }
        for (pr, ar) in p.iter_mut().zip(&acc) {
            _mm256_storeu_ps(pr.as_mut_ptr(), ar[0]);
            _mm256_storeu_ps(pr.as_mut_ptr().add(8), ar[1]);
        }
    }

    /// Eight channels from `i`.
    #[inline(always)]
    unsafe fn dw8(
        a: &TapGrad<'_>,
        blk: &[(usize, usize, usize)],
        rows: &[usize; R],
        v: usize,
        i: usize,
        p: &mut [[f32; 16]; R],
    ) {
        let z = _mm256_setzero_ps();
        let mut acc = [z; R];
        let dy = a.dy.as_ptr();
        for &(ps, d, l) in blk {
            let mut x = a.xt.as_ptr().add((v + ps) * a.c + i);
            for k in 0..l {
                let x0 = _mm256_loadu_ps(x);
                for (r, ar) in acc.iter_mut().enumerate() {
                    *ar = _mm256_fmadd_ps(_mm256_broadcast_ss(&*dy.add(d + k + rows[r])), x0, *ar);
                }
                x = x.add(a.c);
            }
        }
        for (pr, ar) in p.iter_mut().zip(&acc) {
            _mm256_storeu_ps(pr.as_mut_ptr(), *ar);
        }
    }

    /// One channel `i` (the tail).
    #[inline(always)]
    unsafe fn dw1(
        a: &TapGrad<'_>,
        blk: &[(usize, usize, usize)],
        rows: &[usize; R],
        v: usize,
        i: usize,
        p: &mut [[f32; 16]; R],
    ) {
        let dy = a.dy.as_ptr();
        for &(ps, d, l) in blk {
            let mut x = a.xt.as_ptr().add((v + ps) * a.c + i);
            for k in 0..l {
                let xv = *x;
                for (r, pr) in p.iter_mut().enumerate() {
                    pr[0] = (*dy.add(d + k + rows[r])).mul_add(xv, pr[0]);
                }
                x = x.add(a.c);
            }
        }
    }

    /// Sixteen positions from `q` of the block's rows.
    #[inline(always)]
    unsafe fn tile16(
        a: &TapSum<'_>,
        s: *const f32,
        w: *const f32,
        q: usize,
        live: usize,
        dst: *mut f32,
    ) {
        let z = _mm256_setzero_ps();
        let mut tot = [[z; 2]; R];
        for (t, &v) in a.view.iter().enumerate() {
            let mut p = [[z; 2]; R];
            let mut x = s.add(v + q);
            let mut wv = w.add(t * a.inner * R);
            for _ in 0..a.inner {
                let x0 = _mm256_loadu_ps(x);
                let x1 = _mm256_loadu_ps(x.add(8));
                for (r, pr) in p.iter_mut().enumerate() {
                    let c = _mm256_broadcast_ss(&*wv.add(r));
                    pr[0] = _mm256_fmadd_ps(c, x0, pr[0]);
                    pr[1] = _mm256_fmadd_ps(c, x1, pr[1]);
                }
                x = x.add(a.ld);
                wv = wv.add(R);
            }
            for (tr, pr) in tot.iter_mut().zip(&p) {
                for h in 0..2 {
                    tr[h] = if t == 0 {
                        _mm256_add_ps(pr[h], z)
                    } else {
                        _mm256_add_ps(tr[h], pr[h])
                    };
                }
            }
        }
        for (r, tr) in tot.iter().enumerate().take(live) {
            let d = dst.add(r * a.cols + q);
            _mm256_storeu_ps(d, tr[0]);
            _mm256_storeu_ps(d.add(8), tr[1]);
        }
    }

    /// Eight positions from `q`.
    #[inline(always)]
    unsafe fn tile8(
        a: &TapSum<'_>,
        s: *const f32,
        w: *const f32,
        q: usize,
        live: usize,
        dst: *mut f32,
    ) {
        let z = _mm256_setzero_ps();
        let mut tot = [z; R];
        for (t, &v) in a.view.iter().enumerate() {
            let mut p = [z; R];
            let mut x = s.add(v + q);
            let mut wv = w.add(t * a.inner * R);
            for _ in 0..a.inner {
                let x0 = _mm256_loadu_ps(x);
                for (r, pr) in p.iter_mut().enumerate() {
                    *pr = _mm256_fmadd_ps(_mm256_broadcast_ss(&*wv.add(r)), x0, *pr);
                }
                x = x.add(a.ld);
                wv = wv.add(R);
            }
            for (tr, pr) in tot.iter_mut().zip(&p) {
                *tr = if t == 0 {
                    _mm256_add_ps(*pr, z)
                } else {
                    _mm256_add_ps(*tr, *pr)
                };
            }
        }
        for (r, tr) in tot.iter().enumerate().take(live) {
            _mm256_storeu_ps(dst.add(r * a.cols + q), *tr);
        }
    }

    /// One position `q` (the tail), with scalar fused multiply-adds.
    #[inline(always)]
    unsafe fn tile1(
        a: &TapSum<'_>,
        s: *const f32,
        w: *const f32,
        q: usize,
        live: usize,
        dst: *mut f32,
    ) {
        let mut tot = [0.0f32; R];
        for (t, &v) in a.view.iter().enumerate() {
            let mut p = [0.0f32; R];
            let mut x = s.add(v + q);
            let mut wv = w.add(t * a.inner * R);
            for _ in 0..a.inner {
                let xv = *x;
                for (r, pr) in p.iter_mut().enumerate() {
                    *pr = (*wv.add(r)).mul_add(xv, *pr);
                }
                x = x.add(a.ld);
                wv = wv.add(R);
            }
            for (tr, pr) in tot.iter_mut().zip(&p) {
                *tr = if t == 0 { *pr + 0.0 } else { *tr + *pr };
            }
        }
        for (r, tr) in tot.iter().enumerate().take(live) {
            *dst.add(r * a.cols + q) = *tr;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::gemm;

    fn data(len: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(12345);
        (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s % 2001) as f32 / 1000.0 - 1.0
            })
            .collect()
    }

    /// The per-tap GEMM loop `kernels` runs without this module.
    fn gemm_loop(a: &TapSum<'_>) -> Vec<f32> {
        let mut out = vec![0.0f32; a.rows * a.cols];
        for (t, &v) in a.view.iter().enumerate() {
            let beta = if t == 0 { 0.0 } else { 1.0 };
            gemm(
                a.rows,
                a.inner,
                a.cols,
                1.0,
                &a.w[t..],
                a.rsw,
                a.csw,
                &a.src[v..],
                a.ld,
                1,
                beta,
                &mut out,
                a.cols,
                1,
            );
        }
        out
    }

    #[test]
    fn matches_the_gemm_loop_bit_for_bit() {
        if !available() {
            return;
        }
        // (rows, inner, cols, taps): block and position tails included;
        // forward-like (rsw = inner * taps, csw = taps) and input-gradient-
        // like (rsw = taps, csw = rows * taps) weight layouts.
        for &(rows, inner, cols, taps) in &[
            (16, 16, 812, 9),
            (32, 32, 421, 9),
            (7, 5, 37, 9),
            (3, 9, 16, 1),
            (5, 3, 7, 25),
        ] {
            for fwd in [true, false] {
                let w = data(rows * inner * taps, 1 + rows as u32);
                let (rsw, csw) = if fwd {
                    (inner * taps, taps)
                } else {
                    (taps, rows * taps)
                };
                let ld = cols + 2 * taps + 3;
                let src = data(inner * ld, 7 + cols as u32);
                let view: Vec<usize> = (0..taps).map(|t| (t * 5) % (2 * taps + 3)).collect();
                let a = TapSum {
                    w: &w,
                    rsw,
                    csw,
                    rows,
                    inner,
                    src: &src,
                    ld,
                    view: &view,
                    cols,
                };
                let want = gemm_loop(&a);
                let mut got = vec![f32::NAN; rows * cols];
                assert!(run(&a, &mut got));
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(
                    bits(&got),
                    bits(&want),
                    "{rows}x{inner}x{cols}x{taps} fwd={fwd}"
                );
            }
        }
    }

    #[test]
    fn refuses_out_of_bounds_views() {
        let w = vec![1.0f32; 4 * 4 * 9];
        let src = vec![1.0f32; 4 * 20];
        let view = vec![0usize; 9];
        let mut out = vec![0.0f32; 4 * 20];
        let mut a = TapSum {
            w: &w,
            rsw: 36,
            csw: 9,
            rows: 4,
            inner: 4,
            src: &src,
            ld: 20,
            view: &view,
            cols: 21,
        };
        assert!(!run(&a, &mut out));
        a.cols = 20;
        let ok = run(&a, &mut out);
        assert_eq!(ok, available());
        if ok {
            assert!(out.iter().all(|&v| v == 36.0));
        }
    }
}
