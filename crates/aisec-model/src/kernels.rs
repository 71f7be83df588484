//! Dense `f32` kernels with hand-written backward passes: matrix products
//! (via the `matrixmultiply` crate's packed SGEMM), convolution by im2col
//! (Chellapilla et al. 2006, "High performance convolutional neural networks
//! for document processing"), pooling and broadcasting helpers.

use crate::simd;
use crate::tapconv::{self, TapGrad, TapSum};
use rayon::prelude::*;

/// `C = alpha * A·B + beta * C` with arbitrary strides; bounds are checked.
#[allow(clippy::too_many_arguments)]
// unsafe: matrixmultiply::sgemm takes raw pointers and strides (it is the
// SGEMM kernel every convolution and dense layer runs on); the asserts
// below bound every index it touches.
#[allow(unsafe_code)]
pub(crate) fn gemm(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: &[f32],
    rsa: usize,
    csa: usize,
    b: &[f32],
    rsb: usize,
    csb: usize,
    beta: f32,
    c: &mut [f32],
    rsc: usize,
    csc: usize,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!((m - 1) * rsc + (n - 1) * csc < c.len(), "gemm: C too small");
    if k == 0 {
        for i in 0..m {
            for j in 0..n {
                c[i * rsc + j * csc] *= beta;
            }
        }
        return;
    }
    assert!((m - 1) * rsa + (k - 1) * csa < a.len(), "gemm: A too small");
    assert!((k - 1) * rsb + (n - 1) * csb < b.len(), "gemm: B too small");
    // SAFETY: the asserts above bound every index the kernel touches, and the
    // three slices are distinct borrows (C is exclusive).
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            alpha,
            a.as_ptr(),
            rsa as isize,
            csa as isize,
            b.as_ptr(),
            rsb as isize,
            csb as isize,
            beta,
            c.as_mut_ptr(),
            rsc as isize,
            csc as isize,
        );
    }
}

/// Row-major `C[m,n] (+)= A[m,k]·B[k,n]` where A is row-major with row
/// stride `rsa`/col stride `csa`, split across threads by rows of C.
#[allow(clippy::too_many_arguments)]
pub(crate) fn par_gemm_rows(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    rsa: usize,
    csa: usize,
    b: &[f32],
    rsb: usize,
    csb: usize,
    beta: f32,
    c: &mut [f32],
) {
    par_gemm(m, k, n, 1.0, a, rsa, csa, b, rsb, csb, beta, c);
}

/// `C[m,n] = alpha * A·B + beta * C` for a contiguous row-major `C`
/// (`A` and `B` with any strides), split across threads by rows of C.
/// Every element of C is the same sum in the same order however the rows
/// are split (the SGEMM's blocking of the inner dimension does not depend
/// on `m`), so the result does not depend on the thread count.
#[allow(clippy::too_many_arguments)]
pub(crate) fn par_gemm(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: &[f32],
    rsa: usize,
    csa: usize,
    b: &[f32],
    rsb: usize,
    csb: usize,
    beta: f32,
    c: &mut [f32],
) {
    if m == 0 || n == 0 {
        return;
    }
    let chunk = (m / rayon::current_num_threads().max(1)).max(16);
    if m <= chunk || m * k * n < 1 << 16 {
        gemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, n, 1);
        return;
    }
    c[..m * n]
        .par_chunks_mut(chunk * n)
        .enumerate()
        .for_each(|(ci, cc)| {
            let r0 = ci * chunk;
            let rows = cc.len() / n;
            gemm(
                rows,
                k,
                n,
                alpha,
                &a[r0 * rsa..],
                rsa,
                csa,
                b,
                rsb,
                csb,
                beta,
                cc,
                n,
                1,
            );
        });
}

/// Geometry of a 2-D convolution or pooling window (1-D uses `h = kh = 1`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Geom {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    pub dh: usize,
    pub dw: usize,
    pub pt: usize,
    pub pl: usize,
    pub oh: usize,
    pub ow: usize,
}

impl Geom {
    /// A geometry from `[height, width]` pairs: input, kernel, strides,
    /// dilations, leading (top, left) pads and output.
    pub(crate) fn plane(
        c: usize,
        [h, w]: [usize; 2],
        [kh, kw]: [usize; 2],
        [sh, sw]: [usize; 2],
        [dh, dw]: [usize; 2],
        [pt, pl]: [usize; 2],
        [oh, ow]: [usize; 2],
    ) -> Geom {
        Geom {
            c,
            h,
            w,
            kh,
            kw,
            sh,
            sw,
            dh,
            dw,
            pt,
            pl,
            oh,
            ow,
        }
    }

    fn is_pointwise(&self) -> bool {
        self.kh == 1
            && self.kw == 1
            && self.sh == 1
            && self.sw == 1
            && self.pt == 0
            && self.pl == 0
            && self.oh == self.h
            && self.ow == self.w
    }
}

/// Input columns `[lo, hi)` of an output row whose input index is
/// `ox * s + off` that fall inside `0..w` (`lo <= hi <= ow`).
fn valid_cols(ow: usize, s: usize, off: isize, w: usize) -> (usize, usize) {
    let s = s as isize;
    // smallest ox with ox*s + off >= 0
    let lo = if off >= 0 { 0 } else { ((-off) + s - 1) / s };
    // largest ox with ox*s + off <= w-1, plus one
    let last = w as isize - 1 - off;
    let hi = if last < 0 { 0 } else { last / s + 1 };
    let lo = (lo as usize).min(ow);
    (lo, (hi as usize).clamp(lo, ow))
}

/// Unfolds channels `c0..c0+cg` of one image `x[c,h,w]` into the matrix
/// `col[cg*kh*kw, oh*ow]`, whose rows start `ld` floats apart (so several
/// images can sit side by side in one wide matrix).
pub(crate) fn im2col(x: &[f32], g: &Geom, c0: usize, cg: usize, col: &mut [f32], ld: usize) {
    Unfold::new(g, false).im2col(x, g, c0, cg, col, ld);
}

/// Adjoint of [`im2col`]: adds `col` (rows `ld` apart) back into `dx`
/// channels `c0..c0+cg`.
pub(crate) fn col2im(col: &[f32], g: &Geom, c0: usize, cg: usize, dx: &mut [f32], ld: usize) {
    Unfold::new(g, false).col2im(col, g, c0, cg, dx, ld);
}

/// One kernel tap `(ki, kj)` of an unfolding: its offset along the row and
/// the output columns `[lo, hi)` whose input column is inside the image.
#[derive(Debug, Clone, Copy)]
struct Tap {
    ki: usize,
    off: isize,
    lo: usize,
    hi: usize,
}

/// How im2col lays out one convolution: the kernel taps it keeps and, for
/// small maps, a gather table.
///
/// With `skip_dead`, taps that read only padding for every output pixel
/// are dropped, which shrinks the GEMM's inner dimension (a 3x3 convolution
/// with padding 1 on a 1x1 map, as in ResNet's last stage, keeps only its
/// centre tap: 9x fewer multiply-adds); their rows of the unfolded matrix
/// would be all zeros. For maps narrower than 8 pixels, copying row
/// segments costs more than it moves, so a table of source offsets (one per
/// kept tap and output pixel, `u32::MAX` for padding) is gathered instead.
#[derive(Debug, Clone)]
struct Unfold {
    taps: Vec<Tap>,
    /// Index of each kept tap in the full `kh*kw` order.
    keep: Vec<usize>,
    table: Option<Vec<u32>>,
}

impl Unfold {
    fn new(g: &Geom, skip_dead: bool) -> Unfold {
        let mut taps = Vec::new();
        let mut keep = Vec::new();
        for ki in 0..g.kh {
            let (r0, r1) = valid_cols(g.oh, g.sh, (ki * g.dh) as isize - g.pt as isize, g.h);
            for kj in 0..g.kw {
                let off = (kj * g.dw) as isize - g.pl as isize;
                let (lo, hi) = valid_cols(g.ow, g.sw, off, g.w);
                if skip_dead && (r0 == r1 || lo == hi) {
                    continue;
                }
                keep.push(ki * g.kw + kj);
                taps.push(Tap { ki, off, lo, hi });
            }
        }
        let table = (g.ow < 8).then(|| {
            let mut t = Vec::with_capacity(taps.len() * g.oh * g.ow);
            for tap in &taps {
                for oy in 0..g.oh {
                    let iy = (oy * g.sh + tap.ki * g.dh) as isize - g.pt as isize;
                    for ox in 0..g.ow {
                        let ix = (ox * g.sw) as isize + tap.off;
                        let inside = iy >= 0 && iy < g.h as isize && ix >= 0 && ix < g.w as isize;
                        t.push(if inside {
                            (iy as usize * g.w + ix as usize) as u32
                        } else {
                            u32::MAX
                        });
                    }
                }
            }
            t
        });
        Unfold { taps, keep, table }
    }

    /// Whether every `kh*kw` tap is kept.
    fn is_full(&self, g: &Geom) -> bool {
        self.taps.len() == g.kh * g.kw
    }

    /// Unfolds channels `c0..c0+cg` of one image into `col[cg*taps, oh*ow]`
    /// (rows `ld` apart).
    fn im2col(&self, x: &[f32], g: &Geom, c0: usize, cg: usize, col: &mut [f32], ld: usize) {
        let ohw = g.oh * g.ow;
        let nt = self.taps.len();
        for c in 0..cg {
            let xc = &x[(c0 + c) * g.h * g.w..(c0 + c + 1) * g.h * g.w];
            for (t, tap) in self.taps.iter().enumerate() {
                let row = c * nt + t;
                let dst = &mut col[row * ld..row * ld + ohw];
                // "Same" stride-1 maps, even narrow ones: one plane copy
                // beats a gather through the table.
                if g.sh == 1 && g.sw == 1 && g.ow == g.w {
                    unfold_plane_s1(xc, g, tap, dst);
                    continue;
                }
                if let Some(table) = &self.table {
                    for (d, &i) in dst.iter_mut().zip(&table[t * ohw..(t + 1) * ohw]) {
                        *d = xc.get(i as usize).copied().unwrap_or(0.0);
                    }
                    continue;
                }
                let (lo, hi) = (tap.lo, tap.hi);
                for oy in 0..g.oh {
                    let iy = (oy * g.sh + tap.ki * g.dh) as isize - g.pt as isize;
                    let d = &mut dst[oy * g.ow..(oy + 1) * g.ow];
                    if iy < 0 || iy >= g.h as isize || lo == hi {
                        d.fill(0.0);
                        continue;
                    }
                    let xr = &xc[iy as usize * g.w..(iy as usize + 1) * g.w];
                    zero_edge(&mut d[..lo]);
                    zero_edge(&mut d[hi..]);
                    let x0 = (lo as isize * g.sw as isize + tap.off) as usize;
                    if g.sw == 1 {
                        d[lo..hi].copy_from_slice(&xr[x0..x0 + (hi - lo)]);
                    } else {
                        // Every `sw`-th value from `x0` (`chunks` rather
                        // than `step_by`, which compiled to a slow loop).
                        for (v, s) in d[lo..hi].iter_mut().zip(xr[x0..].chunks(g.sw)) {
                            *v = s.first().copied().unwrap_or(0.0);
                        }
                    }
                }
            }
        }
    }

    /// Adjoint of [`Unfold::im2col`]: adds `col` back into `dx`.
    fn col2im(&self, col: &[f32], g: &Geom, c0: usize, cg: usize, dx: &mut [f32], ld: usize) {
        let ohw = g.oh * g.ow;
        let nt = self.taps.len();
        for c in 0..cg {
            let xc = &mut dx[(c0 + c) * g.h * g.w..(c0 + c + 1) * g.h * g.w];
            for (t, tap) in self.taps.iter().enumerate() {
                let row = c * nt + t;
                let src = &col[row * ld..row * ld + ohw];
                if let Some(table) = &self.table {
                    for (&v, &i) in src.iter().zip(&table[t * ohw..(t + 1) * ohw]) {
                        if let Some(d) = xc.get_mut(i as usize) {
                            *d += v;
                        }
                    }
                    continue;
                }
                let (lo, hi) = (tap.lo, tap.hi);
                if lo == hi {
                    continue;
                }
                let x0 = (lo as isize * g.sw as isize + tap.off) as usize;
                for oy in 0..g.oh {
                    let iy = (oy * g.sh + tap.ki * g.dh) as isize - g.pt as isize;
                    if iy < 0 || iy >= g.h as isize {
                        continue;
                    }
                    let xr = &mut xc[iy as usize * g.w..(iy as usize + 1) * g.w];
                    let s = &src[oy * g.ow + lo..oy * g.ow + hi];
                    if g.sw == 1 {
                        for (d, v) in xr[x0..x0 + (hi - lo)].iter_mut().zip(s) {
                            *d += v;
                        }
                    } else {
                        for (d, v) in xr[x0..].iter_mut().step_by(g.sw).zip(s) {
                            *d += v;
                        }
                    }
                }
            }
        }
    }

    /// The weights `w[m, cg*kh*kw]` restricted to the kept taps
    /// (`[m, cg*taps]`); borrowed when every tap is kept.
    fn weights<'a>(
        &self,
        g: &Geom,
        w: &'a [f32],
        m: usize,
        cg: usize,
    ) -> std::borrow::Cow<'a, [f32]> {
        if self.is_full(g) {
            return std::borrow::Cow::Borrowed(w);
        }
        let full = g.kh * g.kw;
        let mut out = Vec::with_capacity(m * cg * self.keep.len());
        for row in w.chunks(full).take(m * cg) {
            out.extend(self.keep.iter().map(|&k| row[k]));
        }
        std::borrow::Cow::Owned(out)
    }

    /// Scatters a weight gradient over the kept taps (`[m, cg*taps]`) back
    /// to the full `[rows, kh*kw]` layout (`rows = m*cg`; zeros for dropped
    /// taps).
    fn expand(&self, g: &Geom, dwc: Vec<f32>, rows: usize) -> Vec<f32> {
        if self.is_full(g) {
            return dwc;
        }
        let full = g.kh * g.kw;
        let nt = self.keep.len();
        let mut out = vec![0.0f32; rows * full];
        for (o, s) in out.chunks_mut(full).zip(dwc.chunks(nt.max(1))) {
            for (&k, &v) in self.keep.iter().zip(s) {
                o[k] = v;
            }
        }
        out
    }
}

/// Zeroes the few padding columns at one edge of an unfolded row: stores
/// for the one or two of 3x3 and 5x5 kernels, since `fill` becomes a call
/// to `memset` that costs more than it writes (a sixth of `im2col`'s time
/// was in such calls).
#[inline(always)]
fn zero_edge(s: &mut [f32]) {
    match s {
        [] => {}
        [a] => *a = 0.0,
        [a, b] => {
            *a = 0.0;
            *b = 0.0;
        }
        _ => s.fill(0.0),
    }
}

/// One kernel tap's row of the unfolded matrix (`dst`, `oh*ow` values)
/// for a stride-1 convolution whose output rows are as wide as the input's
/// (`ow == w`, "same" padding). Output pixel `p = oy*w + ox` then reads
/// input `p + shift` with one `shift` for the whole plane, so the valid
/// rows are copied as one block and only the columns the tap pushes past
/// the left or right edge (which picked up a neighbouring row's pixel, or
/// nothing) are zeroed afterwards: one copy per tap instead of one per
/// output row. The result is the same matrix as the row-by-row loop.
fn unfold_plane_s1(xc: &[f32], g: &Geom, tap: &Tap, dst: &mut [f32]) {
    let (w, hw) = (g.w as isize, (g.h * g.w) as isize);
    let dy = (tap.ki * g.dh) as isize - g.pt as isize;
    // Valid output rows: 0 <= oy + dy < h.
    let r0 = (-dy).clamp(0, g.oh as isize) as usize;
    let r1 = (g.h as isize - dy).clamp(r0 as isize, g.oh as isize) as usize;
    let (lo, hi) = (tap.lo, tap.hi);
    if r0 == r1 || lo == hi {
        dst.fill(0.0);
        return;
    }
    dst[..r0 * g.w].fill(0.0);
    dst[r1 * g.w..].fill(0.0);
    let shift = dy * w + tap.off;
    // Positions of the valid rows whose source index is inside the plane.
    let p0 = (r0 as isize * w).max(-shift) as usize;
    let p1 = (r1 as isize * w).min(hw - shift).max(p0 as isize) as usize;
    let s0 = (p0 as isize + shift) as usize;
    dst[p0..p1].copy_from_slice(&xc[s0..s0 + (p1 - p0)]);
    for row in dst[r0 * g.w..r1 * g.w].chunks_exact_mut(g.w) {
        zero_edge(&mut row[..lo]);
        zero_edge(&mut row[hi..]);
    }
    // Valid-row positions left out of the copy are outside [lo, hi) and
    // were zeroed just above.
}

/// Layout of a batch chunk for the direct (no-im2col) path of a stride-1
/// "same" convolution with a square odd kernel (`k = 2p + 1`, padding `p`
/// on every side, no dilation, one group).
///
/// The chunk's images are stacked, per channel, into one zero-padded plane:
/// rows `w + p` floats wide (`p` zero columns, then the image row; the
/// right-hand padding of a row is the next row's left-hand zeros), `p` zero
/// rows before each image and after the last. In that plane, kernel tap
/// `(ki, kj)` of every output pixel reads the pixel `shift(ki, kj)`
/// positions away, one shift for the whole chunk, so the tap's slice of the
/// unfolded matrix is a strided view of the plane: the forward is `k*k`
/// GEMMs over views (`Y += W_tap · X_shifted`), accumulated into one wide
/// output whose columns include the padding positions (computed, then
/// dropped), and the input gradient likewise (`dX += W_tapᵀ · dY` read at
/// the opposite shift). No im2col matrix is written and no col2im scatter
/// runs; the SGEMM's own packing is the only copy of the unfolded data.
/// (The weight gradient stays on im2col, see [`conv_bwd`].) Idea: the
/// "shifted GEMM"/kn2row family of direct convolutions (Vasudevan, Anderson
/// and Gregg, "Parallel Multi Channel Convolution using General Matrix
/// Multiplication", ASAP 2017).
#[derive(Debug, Clone, Copy)]
struct Stacked {
    p: usize,
    h: usize,
    w: usize,
    /// Row width of the padded plane (`w + p`).
    wp: usize,
    /// Images in the chunk.
    cnt: usize,
    /// Floats per channel of the stacked plane.
    len: usize,
    /// Buffer index of the first output column (position of image 0, row
    /// 0, column 0 of the padded plane's output range, plus the front
    /// margin).
    q0: usize,
    /// Output columns (positions from the first image's first row to the
    /// last image's last row, padding columns included).
    cols: usize,
}

impl Stacked {
    /// Whether a convolution takes the direct path: stride 1, no dilation,
    /// "same" output, square odd kernel of at least 3 with symmetric
    /// padding, one group, enough input channels that a per-tap GEMM is
    /// not a rank-1 update (the first layer of an image model, with one or
    /// three channels, keeps im2col), and maps large enough that no tap is
    /// dead. Maps narrower than 8 keep im2col: their padded rows waste
    /// too many columns (measured slower at 7x7).
    fn applies(g: &Geom, groups: usize) -> bool {
        let p = g.kh / 2;
        groups == 1
            && g.c >= 8
            && g.kh == g.kw
            && g.kh % 2 == 1
            && g.kh >= 3
            && (g.sh, g.sw, g.dh, g.dw) == (1, 1, 1, 1)
            && (g.pt, g.pl) == (p, p)
            && (g.oh, g.ow) == (g.h, g.w)
            && g.h > p
            && g.w > p
            && g.w >= 8
    }

    fn new(g: &Geom, cnt: usize) -> Stacked {
        let (p, h, w) = (g.kh / 2, g.h, g.w);
        let wp = w + p;
        // Output range in plane positions: from row p (image 0, row 0) to
        // the end of the last image's last row.
        let first = p * wp;
        let end = (p + (cnt.max(1) - 1) * (h + p) + h) * wp;
        // Taps read up to p*wp + p before and after an output position: a
        // front margin of p*wp + p floats keeps every index non-negative.
        let margin = p * wp + p;
        Stacked {
            p,
            h,
            w,
            wp,
            cnt,
            len: margin + end + margin,
            q0: margin + first,
            cols: end - first,
        }
    }

    /// Signed offset of tap `t` (row-major over the `k x k` kernel).
    fn shift(&self, t: usize) -> isize {
        let k = 2 * self.p + 1;
        let (ki, kj) = (t / k, t % k);
        (ki as isize - self.p as isize) * self.wp as isize + kj as isize - self.p as isize
    }

    /// Offset within a channel's stacked plane of image `j`, row `y`,
    /// column 0, relative to the first output column.
    fn out_pos(&self, j: usize, y: usize) -> usize {
        (j * (self.h + self.p) + y) * self.wp + self.p
    }

    /// Copies `cnt` images of `ch` channels (`[cnt, ch, h, w]`) into the
    /// stacked planes `buf[ch, len]`. The padding positions are never
    /// written, so the buffer is zeroed only when its size changes.
    fn stack(&self, src: &[f32], ch: usize, buf: &mut Vec<f32>) {
        if buf.len() != ch * self.len {
            buf.clear();
            buf.resize(ch * self.len, 0.0);
        }
        let hw = self.h * self.w;
        for (j, img) in src
            .chunks_exact((ch * hw).max(1))
            .take(self.cnt)
            .enumerate()
        {
            for (c, plane) in img.chunks_exact(hw.max(1)).enumerate() {
                let base = c * self.len + self.q0;
                for (y, row) in plane.chunks_exact(self.w.max(1)).enumerate() {
                    let d = base + self.out_pos(j, y);
                    buf[d..d + self.w].copy_from_slice(row);
                }
            }
        }
    }

    /// [`Stacked::stack`] with the channel innermost: `buf[position * ch +
    /// channel]` over the same stacked positions (`tapconv::TapGrad`).
    fn stack_t(&self, src: &[f32], ch: usize, buf: &mut Vec<f32>) {
        if buf.len() != ch * self.len {
            buf.clear();
            buf.resize(ch * self.len, 0.0);
        }
        let hw = self.h * self.w;
        for (j, img) in src
            .chunks_exact((ch * hw).max(1))
            .take(self.cnt)
            .enumerate()
        {
            for (c, plane) in img.chunks_exact(hw.max(1)).enumerate() {
                for (y, row) in plane.chunks_exact(self.w.max(1)).enumerate() {
                    let d = (self.q0 + self.out_pos(j, y)) * ch + c;
                    for (k, &v) in row.iter().enumerate() {
                        buf[d + k * ch] = v;
                    }
                }
            }
        }
    }

    /// Copies the image pixels of a wide result `wide[ch, cols]` out to
    /// `dst[cnt, ch, h, w]`.
    fn unstack(&self, wide: &[f32], ch: usize, dst: &mut [f32]) {
        let hw = self.h * self.w;
        for (j, img) in dst
            .chunks_exact_mut((ch * hw).max(1))
            .take(self.cnt)
            .enumerate()
        {
            for (c, plane) in img.chunks_exact_mut(hw.max(1)).enumerate() {
                for (y, row) in plane.chunks_exact_mut(self.w.max(1)).enumerate() {
                    let s = c * self.cols + self.out_pos(j, y);
                    row.copy_from_slice(&wide[s..s + self.w]);
                }
            }
        }
    }

    /// [`Stacked::unstack`] written to a [`Sink`] in output order, with
    /// `bias[oc]` added to channel `oc` (the same `y + b` as adding it
    /// afterwards).
    fn unstack_to(&self, wide: &[f32], ch: usize, bias: Option<&[f32]>, out: &mut Sink<'_>) {
        for j in 0..self.cnt {
            for c in 0..ch {
                for y in 0..self.h {
                    let s = c * self.cols + self.out_pos(j, y);
                    let row = &wide[s..s + self.w];
                    match bias {
                        Some(b) => {
                            let bv = b[c];
                            out.put_map(row, |v| v + bv);
                        }
                        None => out.put(row),
                    }
                }
            }
        }
    }

    /// Buffer index where tap `t`'s view of a stacked operand starts when
    /// it is read at `sign * shift` (forward and weight gradient read the
    /// input at `+shift`; the input gradient reads the output gradient at
    /// `-shift`).
    fn view(&self, t: usize, sign: isize) -> usize {
        (self.q0 as isize + sign * self.shift(t)) as usize
    }
}

/// Direct forward of one chunk (`cnt` images of `x`), written to `out`
/// with `bias` added.
#[allow(clippy::too_many_arguments)]
fn direct_fwd_chunk(
    g: &Geom,
    wt: &[f32],
    m: usize,
    xc: &[f32],
    cnt: usize,
    bias: Option<&[f32]>,
    out: &mut Sink<'_>,
    xs: &mut Vec<f32>,
    wide: &mut Vec<f32>,
) {
    let st = Stacked::new(g, cnt);
    let taps = g.kh * g.kw;
    let kk = g.c * taps;
    st.stack(xc, g.c, xs);
    // Every column is written by the first tap's GEMM (beta 0), so the
    // wide buffer needs no zeroing.
    let wide = scratch(wide, m * st.cols);
    let view: Vec<usize> = (0..taps).map(|t| st.view(t, 1)).collect();
    let direct = TapSum {
        w: wt,
        rsw: kk,
        csw: taps,
        rows: m,
        inner: g.c,
        src: xs,
        ld: st.len,
        view: &view,
        cols: st.cols,
    };
    if !tapconv::run(&direct, wide) {
        for (t, &v) in view.iter().enumerate() {
            let beta = if t == 0 { 0.0 } else { 1.0 };
            gemm(
                m,
                g.c,
                st.cols,
                1.0,
                &wt[t..],
                kk,
                taps,
                &xs[v..],
                st.len,
                1,
                beta,
                wide,
                st.cols,
                1,
            );
        }
    }
    st.unstack_to(wide, m, bias, out);
}

/// Output pixels (GEMM columns) a batch chunk should reach: images are
/// put side by side until a chunk has this many, so that the weights are
/// packed once for many columns even when feature maps are tiny (the last
/// ResNet stages have 1x1 and 2x2 maps), while large maps keep one image
/// per chunk and a working set near the caches.
const MIN_COLS: usize = 256;

/// Images per chunk: enough for `min_cols` GEMM columns (`ohw` per image),
/// but at least one chunk per thread.
/// Partial weight gradients are summed in at most this many fixed groups,
/// in group order: the sum does not depend on rayon's scheduling.
const REDUCE_GROUPS: usize = 16;

fn chunk_images(n: usize, ohw: usize, min_cols: usize) -> usize {
    let want = min_cols.div_ceil(ohw.max(1)).max(1);
    let threads = rayon::current_num_threads().max(1);
    let spread = n.div_ceil(threads).max(1);
    want.min(spread).min(n.max(1))
}

/// The operands of a convolution: input `x[n, c, h, w]` and weights
/// `wt[m, c/groups, kh, kw]` over geometry `g`.
#[derive(Clone, Copy)]
pub(crate) struct ConvArgs<'a> {
    pub x: &'a [f32],
    pub n: usize,
    pub g: &'a Geom,
    pub groups: usize,
    pub wt: &'a [f32],
    pub m: usize,
}

/// Input, weight and bias gradients of a convolution, each only when asked.
pub(crate) type ConvGrads = (Option<Vec<f32>>, Option<Vec<f32>>, Option<Vec<f32>>);

/// Convolution forward: `x[n,c,h,w]`, `w[m, c/g, kh, kw]`, optional bias.
///
/// The batch is cut into chunks of images; each chunk's im2col matrices
/// sit side by side in one `[c/g*kh*kw, images*oh*ow]` matrix so that one
/// GEMM per group covers the whole chunk (for small feature maps, e.g. the
/// last ResNet stages, a per-image GEMM would be a matrix-vector product).
pub(crate) fn conv_fwd(a: &ConvArgs<'_>, bias: Option<&[f32]>) -> Vec<f32> {
    conv_fwd_cols(a, bias, MIN_COLS, true)
}

/// [`conv_fwd`] with the chunk width and whether the direct path of
/// [`Stacked`] may be taken (tests compare both paths).
fn conv_fwd_cols(
    a: &ConvArgs<'_>,
    bias: Option<&[f32]>,
    min_cols: usize,
    direct: bool,
) -> Vec<f32> {
    let ConvArgs {
        x,
        n,
        g,
        groups,
        wt,
        m,
    } = *a;
    let cg = g.c / groups;
    let mg = m / groups;
    let ohw = g.oh * g.ow;
    let in_sz = g.c * g.h * g.w;
    if n == 0 || ohw == 0 || m == 0 {
        return vec![0.0f32; n * m * ohw];
    }
    let nb = chunk_images(n, ohw, min_cols);
    let (len, chunk) = (n * m * ohw, nb * m * ohw);
    if direct && Stacked::applies(g, groups) {
        return build_init(
            len,
            chunk,
            || (Vec::new(), Vec::new()),
            |(xs, wide), ci, out| {
                let i0 = ci * nb;
                let cnt = nb.min(n - i0);
                let xc = &x[i0 * in_sz..(i0 + cnt) * in_sz];
                direct_fwd_chunk(g, wt, m, xc, cnt, bias, out, xs, wide);
            },
        );
    }
    let uf = Unfold::new(g, true);
    let kk = cg * uf.taps.len();
    if kk == 0 {
        let mut y = vec![0.0f32; len];
        add_bias(&mut y, bias, m, ohw);
        return y;
    }
    let wt = uf.weights(g, wt, m, cg);
    let point = g.is_pointwise();
    build_init(
        len,
        chunk,
        || (Vec::new(), Vec::new()),
        |(col, tmp), ci, out| {
            let i0 = ci * nb;
            let cnt = nb.min(n - i0);
            let cols = cnt * ohw;
            if cnt == 1 || groups > 1 {
                // Written in group order, not output order: take the
                // chunk as a slice.
                let yc = out.slice(cnt * m * ohw);
                conv_fwd_chunk_slice(
                    &ChunkFwd {
                        x,
                        g,
                        uf: &uf,
                        wt: &wt,
                        kk,
                        cg,
                        mg,
                        groups,
                        point,
                        i0,
                        cnt,
                    },
                    col,
                    tmp,
                    yc,
                );
                add_bias(yc, bias, m, ohw);
                return;
            }
            let col = scratch(col, kk * cols);
            let tmp = scratch(tmp, mg * cols);
            for j in 0..cnt {
                let xi = &x[(i0 + j) * in_sz..(i0 + j + 1) * in_sz];
                uf.im2col(xi, g, 0, cg, &mut col[j * ohw..], cols);
            }
            gemm(
                m, kk, cols, 1.0, &wt, kk, 1, col, cols, 1, 0.0, tmp, cols, 1,
            );
            for j in 0..cnt {
                for oc in 0..m {
                    let t = oc * cols + j * ohw;
                    match bias {
                        Some(b) => {
                            let bv = b[oc];
                            out.put_map(&tmp[t..t + ohw], |v| v + bv);
                        }
                        None => out.put(&tmp[t..t + ohw]),
                    }
                }
            }
        },
    )
}

/// One im2col chunk of [`conv_fwd_cols`] (`cnt` images from `i0`).
struct ChunkFwd<'a> {
    x: &'a [f32],
    g: &'a Geom,
    uf: &'a Unfold,
    wt: &'a [f32],
    kk: usize,
    cg: usize,
    mg: usize,
    groups: usize,
    point: bool,
    i0: usize,
    cnt: usize,
}

/// The im2col forward of one chunk into `yc` (`[cnt, m, oh, ow]`), group
/// by group, without the bias.
fn conv_fwd_chunk_slice(a: &ChunkFwd<'_>, col: &mut Vec<f32>, tmp: &mut Vec<f32>, yc: &mut [f32]) {
    let ChunkFwd {
        x,
        g,
        uf,
        wt,
        kk,
        cg,
        mg,
        groups,
        point,
        i0,
        cnt,
    } = *a;
    let ohw = g.oh * g.ow;
    let in_sz = g.c * g.h * g.w;
    let m = mg * groups;
    let cols = cnt * ohw;
    for gi in 0..groups {
        let wg = &wt[gi * mg * kk..(gi + 1) * mg * kk];
        if cnt == 1 {
            // One image: the GEMM writes straight into y.
            let xi = &x[i0 * in_sz..(i0 + 1) * in_sz];
            let yg = &mut yc[gi * mg * ohw..(gi + 1) * mg * ohw];
            if point {
                let xs = &xi[gi * cg * ohw..(gi + 1) * cg * ohw];
                gemm(mg, kk, ohw, 1.0, wg, kk, 1, xs, ohw, 1, 0.0, yg, ohw, 1);
            } else {
                let col = scratch(col, kk * ohw);
                uf.im2col(xi, g, gi * cg, cg, col, ohw);
                gemm(mg, kk, ohw, 1.0, wg, kk, 1, col, ohw, 1, 0.0, yg, ohw, 1);
            }
            continue;
        }
        let col = scratch(col, kk * cols);
        let tmp = scratch(tmp, mg * cols);
        for j in 0..cnt {
            let xi = &x[(i0 + j) * in_sz..(i0 + j + 1) * in_sz];
            uf.im2col(xi, g, gi * cg, cg, &mut col[j * ohw..], cols);
        }
        gemm(
            mg, kk, cols, 1.0, wg, kk, 1, col, cols, 1, 0.0, tmp, cols, 1,
        );
        for j in 0..cnt {
            for oc in 0..mg {
                let o = (j * m + gi * mg + oc) * ohw;
                let t = oc * cols + j * ohw;
                yc[o..o + ohw].copy_from_slice(&tmp[t..t + ohw]);
            }
        }
    }
}

/// Adds `bias[oc]` to every pixel of channel `oc` of `[.., m, ohw]` data.
fn add_bias(y: &mut [f32], bias: Option<&[f32]>, m: usize, ohw: usize) {
    if let Some(b) = bias {
        for (r, row) in y.chunks_mut(ohw.max(1)).enumerate() {
            let bv = b[r % m];
            row.iter_mut().for_each(|v| *v += bv);
        }
    }
}

/// Convolution backward. Returns `(dx, dw, db)`, each only when asked
/// (`need`: input, weights, bias).
///
/// Chunked like [`conv_fwd`]: per chunk, the output gradient is gathered
/// into one `[m, images*oh*ow]` matrix, then `dcol = Wᵀ·dY` (scattered back
/// by [`col2im`]) and `dW += dY·colᵀ` are one GEMM each per group.
pub(crate) fn conv_bwd(a: &ConvArgs<'_>, dy: &[f32], need: [bool; 3]) -> ConvGrads {
    conv_bwd_cols(a, dy, need, MIN_COLS, true)
}

/// Per-thread scratch of [`conv_bwd`]: weight-gradient accumulator, the
/// gathered output gradient, the unfolded input / its gradient, and (direct
/// path) the stacked input.
type BwdScratch = (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>);

/// [`conv_bwd`] with the chunk width and whether the direct path may be
/// taken.
fn conv_bwd_cols(
    a: &ConvArgs<'_>,
    dy: &[f32],
    need: [bool; 3],
    min_cols: usize,
    direct: bool,
) -> ConvGrads {
    let ConvArgs {
        x,
        n,
        g,
        groups,
        wt,
        m,
    } = *a;
    let [need_dx, need_dw, need_db] = need;
    let cg = g.c / groups;
    let mg = m / groups;
    let ohw = g.oh * g.ow;
    let in_sz = g.c * g.h * g.w;
    let uf = Unfold::new(g, true);
    let kk = cg * uf.taps.len();
    let wt = uf.weights(g, wt, m, cg);
    let nb = chunk_images(n, ohw, min_cols);
    let chunks = if n == 0 { 0 } else { n.div_ceil(nb) };
    // One chunk: optional dx slice of its images, and the scratch.
    let direct = direct && Stacked::applies(g, groups);
    let work = |ci: usize, mut dxc: Option<&mut [f32]>, s: &mut BwdScratch| {
        let (acc, dyt, col, xs) = s;
        if need_dw && acc.is_empty() {
            acc.resize(m * kk, 0.0);
        }
        let i0 = ci * nb;
        let cnt = nb.min(n - i0);
        let cols = cnt * ohw;
        if direct {
            // dX = sum over taps of W_tapᵀ · dY read at -shift (see
            // [`Stacked`]; the padding positions of the stacked dY are
            // zero). The weight gradient below stays on im2col: as nine
            // per-tap GEMMs it packs dY nine times and measured slower.
            if let Some(dxc) = dxc.take() {
                let st = Stacked::new(g, cnt);
                let taps = g.kh * g.kw;
                st.stack(&dy[i0 * m * ohw..(i0 + cnt) * m * ohw], m, xs);
                let wide = scratch(col, g.c * st.cols);
                let view: Vec<usize> = (0..taps).map(|t| st.view(t, -1)).collect();
                let direct = TapSum {
                    w: &wt,
                    rsw: taps,
                    csw: kk,
                    rows: g.c,
                    inner: m,
                    src: xs,
                    ld: st.len,
                    view: &view,
                    cols: st.cols,
                };
                if !tapconv::run(&direct, wide) {
                    for (t, &v) in view.iter().enumerate() {
                        let beta = if t == 0 { 0.0 } else { 1.0 };
                        gemm(
                            g.c,
                            m,
                            st.cols,
                            1.0,
                            &wt[t..],
                            taps,
                            kk,
                            &xs[v..],
                            st.len,
                            1,
                            beta,
                            wide,
                            st.cols,
                            1,
                        );
                    }
                }
                st.unstack(wide, g.c, dxc);
            }
            if !need_dw {
                return;
            }
            // The weight gradient without im2col where the CPU allows
            // (`tapconv::run_dw`): the chunk's input stacked with the
            // channel innermost, read in place.
            if tapconv::available() && groups == 1 {
                let st = Stacked::new(g, cnt);
                st.stack_t(&x[i0 * in_sz..(i0 + cnt) * in_sz], g.c, dyt);
                let taps = g.kh * g.kw;
                let view: Vec<usize> = (0..taps).map(|t| st.view(t, 1)).collect();
                let runs: Vec<(usize, usize, usize)> = (0..cnt)
                    .flat_map(|j| (0..st.h).map(move |y| (j, y)))
                    .map(|(j, y)| (st.out_pos(j, y), (i0 + j) * m * ohw + y * st.w, st.w))
                    .collect();
                let grad = TapGrad {
                    dy,
                    m,
                    ohw,
                    xt: dyt,
                    c: g.c,
                    view: &view,
                    runs: &runs,
                };
                if tapconv::run_dw(&grad, acc) {
                    return;
                }
            }
        }
        // Gather dY of the chunk as [m, cols] (a plain view for one image).
        let dyv: &[f32] = if cnt == 1 {
            &dy[i0 * m * ohw..(i0 + 1) * m * ohw]
        } else {
            let dyt = scratch(dyt, m * cols);
            for j in 0..cnt {
                for oc in 0..m {
                    let s = ((i0 + j) * m + oc) * ohw;
                    let d = oc * cols + j * ohw;
                    dyt[d..d + ohw].copy_from_slice(&dy[s..s + ohw]);
                }
            }
            dyt
        };
        for gi in 0..groups {
            let wg = &wt[gi * mg * kk..(gi + 1) * mg * kk];
            let dyg = &dyv[gi * mg * cols..(gi + 1) * mg * cols];
            if let Some(dxc) = dxc.as_deref_mut() {
                let col = scratch(col, kk * cols);
                gemm(
                    kk, mg, cols, 1.0, wg, 1, kk, dyg, cols, 1, 0.0, col, cols, 1,
                );
                for j in 0..cnt {
                    let dxi = &mut dxc[j * in_sz..(j + 1) * in_sz];
                    uf.col2im(&col[j * ohw..], g, gi * cg, cg, dxi, cols);
                }
            }
            if need_dw {
                let col = scratch(col, kk * cols);
                for j in 0..cnt {
                    let xi = &x[(i0 + j) * in_sz..(i0 + j + 1) * in_sz];
                    uf.im2col(xi, g, gi * cg, cg, &mut col[j * ohw..], cols);
                }
                let dwg = &mut acc[gi * mg * kk..(gi + 1) * mg * kk];
                gemm(
                    mg, cols, kk, 1.0, dyg, cols, 1, col, 1, cols, 1.0, dwg, kk, 1,
                );
            }
        }
    };
    let sum = |mut a: Vec<f32>, b: Vec<f32>| {
        if a.is_empty() {
            return b;
        }
        a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
        a
    };
    // Chunks are summed in fixed contiguous groups, in group order, so the
    // weight gradient does not depend on how rayon schedules the work (a
    // fold/reduce would add the partial sums in a run-dependent order and
    // make training, and everything downstream, not bit-reproducible).
    let per = chunks.div_ceil(REDUCE_GROUPS).max(1);
    // Each group starts its weight-gradient sum from zero (taken out of
    // the scratch at the end); the unfolded-matrix buffers are reused by
    // the groups a thread runs, not allocated and zeroed for each.
    let run_group = |gi: usize, dxg: Option<&mut [f32]>, s: &mut BwdScratch| -> Vec<f32> {
        let c0 = gi * per;
        match dxg {
            Some(dxg) => {
                for (j, dxc) in dxg.chunks_mut((nb * in_sz).max(1)).enumerate() {
                    work(c0 + j, Some(dxc), s);
                }
            }
            None => (c0..(c0 + per).min(chunks)).for_each(|ci| work(ci, None, s)),
        }
        std::mem::take(&mut s.0)
    };
    let fresh = || -> BwdScratch { (Vec::new(), Vec::new(), Vec::new(), Vec::new()) };
    let mut dx = None;
    let mut dw = None;
    if need_dx || need_dw {
        let parts: Vec<Vec<f32>> = if need_dx {
            let mut d = vec![0.0f32; n * in_sz];
            let parts = d
                .par_chunks_mut((per * nb * in_sz).max(1))
                .enumerate()
                .map_init(fresh, |s, (gi, dxg)| run_group(gi, Some(dxg), s))
                .collect();
            dx = Some(d);
            parts
        } else {
            (0..chunks.div_ceil(per))
                .into_par_iter()
                .map_init(fresh, |s, gi| run_group(gi, None, s))
                .collect()
        };
        let acc = parts.into_iter().fold(Vec::new(), sum);
        if need_dw {
            let acc = if acc.is_empty() {
                vec![0.0f32; m * kk]
            } else {
                acc
            };
            dw = Some(uf.expand(g, acc, m * cg));
        }
    }
    let db = need_db.then(|| {
        let mut db = vec![0.0f32; m];
        for i in 0..n {
            for (oc, d) in db.iter_mut().enumerate() {
                *d += sum_f32(&dy[(i * m + oc) * ohw..(i * m + oc + 1) * ohw]);
            }
        }
        db
    });
    (dx, dw, db)
}

/// Sum with eight running partial sums, so the additions vectorise (a
/// plain fold is one dependent add per element).
fn sum_f32(v: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let mut it = v.chunks_exact(8);
    for c in &mut it {
        for (a, x) in acc.iter_mut().zip(c) {
            *a += x;
        }
    }
    acc.iter().sum::<f32>() + it.remainder().iter().sum::<f32>()
}

/// Valid window taps `[k0, k1)` along one axis for each output position:
/// those with `o*s + k*d - p` inside `0..len`.
fn tap_ranges(
    out: usize,
    len: usize,
    k: usize,
    s: usize,
    d: usize,
    p: usize,
) -> Vec<(usize, usize)> {
    (0..out)
        .map(|o| {
            let base = (o * s) as isize - p as isize;
            let ok = |t: usize| {
                let i = base + (t * d) as isize;
                i >= 0 && i < len as isize
            };
            let k0 = (0..k).find(|&t| ok(t)).unwrap_or(k);
            let k1 = (k0..k).rev().find(|&t| ok(t)).map_or(k0, |t| t + 1);
            (k0, k1)
        })
        .collect()
}

/// Max pooling forward over `planes` planes of `h*w`; returns values and the
/// flat in-plane index of each maximum (`u32::MAX` for an all-padding window).
/// NaN propagates (the last NaN in the window wins), as in PyTorch.
pub(crate) fn maxpool_fwd(x: &[f32], planes: usize, g: &Geom) -> (Vec<f32>, Vec<u32>) {
    let ohw = g.oh * g.ow;
    let mut y = vec![0.0f32; planes * ohw];
    let mut idx = vec![u32::MAX; planes * ohw];
    if ohw == 0 {
        return (y, idx);
    }
    let unit = g.dh == 1 && g.dw == 1 && g.pt == 0 && g.pl == 0;
    if unit
        && g.kh == 2
        && g.kw == 2
        && g.sh == 2
        && g.sw == 2
        && 2 * g.oh <= g.h
        && 2 * g.ow <= g.w
    {
        maxpool_2x2(x, g, &mut y, &mut idx);
        return (y, idx);
    }
    maxpool_general(x, g, &mut y, &mut idx);
    (y, idx)
}

/// Any window, padding, stride and dilation: each output's valid taps.
fn maxpool_general(x: &[f32], g: &Geom, y: &mut [f32], idx: &mut [u32]) {
    let ohw = g.oh * g.ow;
    let hw = g.h * g.w;
    let rows = tap_ranges(g.oh, g.h, g.kh, g.sh, g.dh, g.pt);
    let cols = tap_ranges(g.ow, g.w, g.kw, g.sw, g.dw, g.pl);
    y.par_chunks_mut(ohw)
        .zip(idx.par_chunks_mut(ohw))
        .enumerate()
        .with_min_len(16)
        .for_each(|(p, (yp, ip))| {
            let xp = &x[p * hw..(p + 1) * hw];
            for (oy, &(r0, r1)) in rows.iter().enumerate() {
                let iy0 = (oy * g.sh) as isize - g.pt as isize;
                for (ox, &(c0, c1)) in cols.iter().enumerate() {
                    if r0 == r1 || c0 == c1 {
                        continue; // all padding: value 0, index MAX
                    }
                    let ix0 = (ox * g.sw) as isize - g.pl as isize;
                    let at = |ki: usize, kj: usize| {
                        (iy0 + (ki * g.dh) as isize) as usize * g.w
                            + (ix0 + (kj * g.dw) as isize) as usize
                    };
                    let mut bi = at(r0, c0);
                    let mut best = xp[bi];
                    for ki in r0..r1 {
                        for kj in c0..c1 {
                            let j = at(ki, kj);
                            let v = xp[j];
                            if v > best || v.is_nan() {
                                best = v;
                                bi = j;
                            }
                        }
                    }
                    yp[oy * g.ow + ox] = best;
                    ip[oy * g.ow + ox] = bi as u32;
                }
            }
        });
}

/// The common 2x2, stride-2, unpadded max pooling with the same tie and
/// NaN rules as the general loop (first maximum in row-major window order;
/// a NaN wins over numbers, a later NaN over an earlier one).
fn maxpool_2x2(x: &[f32], g: &Geom, y: &mut [f32], idx: &mut [u32]) {
    let ohw = g.oh * g.ow;
    let hw = g.h * g.w;
    y.par_chunks_mut(ohw)
        .zip(idx.par_chunks_mut(ohw))
        .enumerate()
        .with_min_len(16)
        .for_each(|(p, (yp, ip))| {
            let xp = &x[p * hw..(p + 1) * hw];
            for oy in 0..g.oh {
                let r0 = &xp[2 * oy * g.w..(2 * oy + 1) * g.w];
                let r1 = &xp[(2 * oy + 1) * g.w..(2 * oy + 2) * g.w];
                let yr = &mut yp[oy * g.ow..(oy + 1) * g.ow];
                let ir = &mut ip[oy * g.ow..(oy + 1) * g.ow];
                let base = (2 * oy * g.w) as u32;
                let w = g.w as u32;
                let pairs = r0.chunks_exact(2).zip(r1.chunks_exact(2));
                for (ox, ((a, b), (yv, iv))) in
                    pairs.zip(yr.iter_mut().zip(ir.iter_mut())).enumerate()
                {
                    // Window in row-major order: a0 a1 / b0 b1; offsets 0, 1, w, w+1.
                    let mut best = a[0];
                    let mut off = 0u32;
                    for (v, o) in [(a[1], 1), (b[0], w), (b[1], w + 1)] {
                        let take = v > best || v.is_nan();
                        best = if take { v } else { best };
                        off = if take { o } else { off };
                    }
                    *yv = best;
                    *iv = base + 2 * ox as u32 + off;
                }
            }
        });
}

/// Max pooling backward: routes each output gradient to its argmax.
pub(crate) fn maxpool_bwd(
    dy: &[f32],
    idx: &[u32],
    planes: usize,
    hw: usize,
    ohw: usize,
) -> Vec<f32> {
    let mut dx = vec![0.0f32; planes * hw];
    if hw == 0 || ohw == 0 {
        return dx;
    }
    dx.par_chunks_mut(hw)
        .zip(dy.par_chunks(ohw).zip(idx.par_chunks(ohw)))
        .with_min_len(16)
        .for_each(|(dxp, (dyp, ip))| {
            for (&i, &d) in ip.iter().zip(dyp) {
                if let Some(v) = dxp.get_mut(i as usize) {
                    *v += d;
                }
            }
        });
    dx
}

/// Average pooling forward (and the divisor per output, for backward).
/// `pb`/`pr` are the bottom/right pads; `cip` is `count_include_pad`.
pub(crate) fn avgpool_fwd(
    x: &[f32],
    planes: usize,
    g: &Geom,
    pb: usize,
    pr: usize,
    cip: bool,
) -> Vec<f32> {
    let ohw = g.oh * g.ow;
    let hw = g.h * g.w;
    let mut y = vec![0.0f32; planes * ohw];
    y.par_chunks_mut(ohw.max(1))
        .enumerate()
        .for_each(|(p, yp)| {
            let xp = &x[p * hw..(p + 1) * hw];
            for oy in 0..g.oh {
                for ox in 0..g.ow {
                    let (y0, y1, x0, x1, div) = avg_window(g, oy, ox, pb, pr, cip);
                    let mut s = 0.0;
                    for iy in y0..y1 {
                        for ix in x0..x1 {
                            s += xp[iy * g.w + ix];
                        }
                    }
                    yp[oy * g.ow + ox] = if div > 0.0 { s / div } else { 0.0 };
                }
            }
        });
    y
}

/// Window bounds `[y0,y1) x [x0,x1)` inside the image and the divisor,
/// following PyTorch/ONNX Runtime semantics for padding and ceil mode.
pub(crate) fn avg_window(
    g: &Geom,
    oy: usize,
    ox: usize,
    pb: usize,
    pr: usize,
    cip: bool,
) -> (usize, usize, usize, usize, f32) {
    let hs = (oy * g.sh) as isize - g.pt as isize;
    let ws = (ox * g.sw) as isize - g.pl as isize;
    let he = (hs + g.kh as isize).min((g.h + pb) as isize);
    let we = (ws + g.kw as isize).min((g.w + pr) as isize);
    let pool = ((he - hs) * (we - ws)).max(0) as f32;
    let y0 = hs.max(0) as usize;
    let x0 = ws.max(0) as usize;
    let y1 = he.min(g.h as isize).max(0) as usize;
    let x1 = we.min(g.w as isize).max(0) as usize;
    let y1 = y1.max(y0);
    let x1 = x1.max(x0);
    let div = if cip {
        pool
    } else {
        ((y1 - y0) * (x1 - x0)) as f32
    };
    (y0, y1, x0, x1, div)
}

/// Elements per parallel task of the elementwise kernels.
const ELEMWISE_CHUNK: usize = 1 << 15;

/// `max(x, 0)` elementwise (NaN maps to 0, as `f32::max` does), split
/// across threads for large tensors.
pub(crate) fn relu_fwd(x: &[f32]) -> Vec<f32> {
    build(x.len(), ELEMWISE_CHUNK, |i, out| {
        let xs = &x[i * ELEMWISE_CHUNK..((i + 1) * ELEMWISE_CHUNK).min(x.len())];
        out.put_map(xs, |v| v.max(0.0));
    })
}

/// ReLU backward: `dy * [x > 0]` (multiplying, so a NaN or infinite
/// incoming gradient propagates as it does through the general path).
pub(crate) fn relu_bwd(dy: &[f32], x: &[f32]) -> Vec<f32> {
    let len = dy.len().min(x.len());
    build(len, ELEMWISE_CHUNK, |i, out| {
        let r = i * ELEMWISE_CHUNK..((i + 1) * ELEMWISE_CHUNK).min(len);
        out.put_zip(&dy[r.clone()], &x[r], |d, v| {
            d * if v > 0.0 { 1.0 } else { 0.0 }
        });
    })
}

/// Where [`build`] has a chunk of an output written: appended to the
/// output vector (one thread: the vector was only reserved, so nothing is
/// zero-filled first), or into that chunk of an output that was
/// zero-filled so that threads can write their chunks in parallel.
pub(crate) enum Sink<'a> {
    /// Append to the output.
    Grow(&'a mut Vec<f32>),
    /// Write the chunk from the given position on.
    Fill(&'a mut [f32], usize),
}

impl Sink<'_> {
    /// Writes `s`.
    pub(crate) fn put(&mut self, s: &[f32]) {
        match self {
            Sink::Grow(v) => v.extend_from_slice(s),
            Sink::Fill(d, pos) => {
                d[*pos..*pos + s.len()].copy_from_slice(s);
                *pos += s.len();
            }
        }
    }
    /// Writes `f(v)` for each `v` of `s`.
    #[inline(always)]
    pub(crate) fn put_map(&mut self, s: &[f32], f: impl Fn(f32) -> f32) {
        match self {
            Sink::Grow(v) => v.extend(s.iter().map(|&x| f(x))),
            Sink::Fill(d, pos) => {
                for (o, &x) in d[*pos..*pos + s.len()].iter_mut().zip(s) {
                    *o = f(x);
                }
                *pos += s.len();
            }
        }
    }
    /// Writes `f(a, b)` for the pairs of `a` and `b` (as many as the
    /// shorter has).
    #[inline(always)]
    pub(crate) fn put_zip(&mut self, a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) {
        let len = a.len().min(b.len());
        let (a, b) = (&a[..len], &b[..len]);
        match self {
            Sink::Grow(v) => v.extend(a.iter().zip(b).map(|(&x, &y)| f(x, y))),
            Sink::Fill(d, pos) => {
                for (o, (&x, &y)) in d[*pos..*pos + len].iter_mut().zip(a.iter().zip(b)) {
                    *o = f(x, y);
                }
                *pos += len;
            }
        }
    }
    /// The next `len` values as a slice to write in any order (zero-filled
    /// when growing).
    pub(crate) fn slice(&mut self, len: usize) -> &mut [f32] {
        match self {
            Sink::Grow(v) => {
                let at = v.len();
                v.resize(at + len, 0.0);
                &mut v[at..]
            }
            Sink::Fill(d, pos) => {
                let at = *pos;
                *pos += len;
                &mut d[at..at + len]
            }
        }
    }
}

/// An output of `len` values made of chunks of `chunk` values (the last
/// may be shorter), chunk `i` written in order by `f(i, sink)`.
pub(crate) fn build(len: usize, chunk: usize, f: impl Fn(usize, &mut Sink<'_>) + Sync) -> Vec<f32> {
    build_init(len, chunk, || (), |_, i, s| f(i, s))
}

/// [`build`] with per-thread scratch made by `init`. On one thread the
/// chunks are appended in order to a reserved vector, so the output is
/// never zero-filled (the memset was a tenth of a ResNet training step);
/// on several, each thread writes its chunks into a zero-filled output.
/// Either way every value is computed by the same code, so the result
/// does not depend on the thread count. A chunk that writes fewer values
/// than its length leaves zeros (a bug, not a panic).
pub(crate) fn build_init<S>(
    len: usize,
    chunk: usize,
    init: impl Fn() -> S + Sync + Send,
    f: impl Fn(&mut S, usize, &mut Sink<'_>) + Sync,
) -> Vec<f32> {
    let chunk = chunk.max(1);
    let count = len.div_ceil(chunk);
    if rayon::current_num_threads() <= 1 || count <= 1 {
        let mut v = Vec::with_capacity(len);
        let mut s = init();
        simd::wide(|| {
            for i in 0..count {
                let want = ((i + 1) * chunk).min(len);
                f(&mut s, i, &mut Sink::Grow(&mut v));
                v.resize(want, 0.0);
            }
        });
        return v;
    }
    let mut v = vec![0.0f32; len];
    v.par_chunks_mut(chunk)
        .enumerate()
        .for_each_init(init, |s, (i, c)| {
            simd::wide(|| f(s, i, &mut Sink::Fill(c, 0)));
        });
    v
}

/// `acc += g` elementwise (over the shorter length), widened by
/// [`simd::wide`].
pub(crate) fn add_assign(acc: &mut [f32], g: &[f32]) {
    simd::wide(|| acc.iter_mut().zip(g).for_each(|(a, b)| *a += b));
}

/// A scratch buffer of at least `len` values, as a slice of exactly `len`:
/// it only grows, so a buffer reused for operands of different sizes is
/// not zero-filled again each time it shrinks and grows back. Callers
/// write every value before reading it.
fn scratch(buf: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
    &mut buf[..len]
}

/// Keeps freed memory in the process for reuse instead of returning it to
/// the operating system after every large buffer (glibc only; elsewhere a
/// no-op). The executor allocates its activations and gradients afresh on
/// every call, and with glibc's defaults buffers of several MiB are
/// `mmap`ed and unmapped each time, so every call page-faults its whole
/// working set in again (at batch 128 that cost a fifth of the CPU time of
/// a CNN gradient). This sets `M_MMAP_THRESHOLD` to glibc's maximum (32 MiB)
/// and `M_TRIM_THRESHOLD` to `i32::MAX` bytes (2 GiB): the process then keeps its peak heap.
/// It changes a process-wide setting, so programs call it once, at start-up.
// unsafe: glibc's mallopt is an FFI call; it only sets allocator parameters.
#[allow(unsafe_code)]
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; it is thread-safe.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}

/// Hands the heap's free memory back to the operating system (glibc's
/// `malloc_trim(0)`, which also releases free pages inside the heap;
/// elsewhere a no-op). For a long-running process after a one-off peak,
/// such as loading a model whose parsed weights are copied into its graph
/// and then dropped: glibc otherwise keeps the freed pages resident.
// unsafe: glibc's malloc_trim is an FFI call; it only releases free memory.
#[allow(unsafe_code)]
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes the allocator's own locks and only returns
    // pages that hold no live allocation; it is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Row-major strides of a shape.
pub(crate) fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1usize; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// Strides of `shape` (right-aligned against `out`), 0 on broadcast axes.
pub(crate) fn bcast_strides(shape: &[usize], out: &[usize]) -> Vec<usize> {
    let st = strides(shape);
    let off = out.len() - shape.len();
    (0..out.len())
        .map(|i| {
            if i < off || shape[i - off] == 1 {
                0
            } else {
                st[i - off]
            }
        })
        .collect()
}

/// Calls `f(out_index, offsets)` for every output element, walking the
/// broadcast offsets of each input with an odometer.
pub(crate) fn for_each_bcast<const K: usize>(
    out: &[usize],
    st: [&[usize]; K],
    mut f: impl FnMut(usize, [usize; K]),
) {
    let total: usize = out.iter().product();
    if total == 0 {
        return;
    }
    let r = out.len();
    let mut idx = vec![0usize; r];
    let mut offs = [0usize; K];
    for o in 0..total {
        f(o, offs);
        // increment
        let mut d = r;
        while d > 0 {
            d -= 1;
            idx[d] += 1;
            for k in 0..K {
                offs[k] += st[k][d];
            }
            if idx[d] < out[d] {
                break;
            }
            for k in 0..K {
                offs[k] -= st[k][d] * out[d];
            }
            idx[d] = 0;
        }
    }
}

/// Sums a gradient of shape `out` down to the broadcast input `shape`.
pub(crate) fn reduce_to(g: &[f32], out: &[usize], shape: &[usize]) -> Vec<f32> {
    let n: usize = shape.iter().product();
    if n == g.len() {
        return g.to_vec();
    }
    let mut r = vec![0.0f32; n];
    // A trailing block broadcast over leading axes (a bias over a batch):
    // whole rows added in order, the same sums as the general walk.
    let lead = out.len().saturating_sub(shape.len());
    let trailing = shape.iter().skip_while(|&&d| d == 1).count();
    let tail_ok = out.len() >= trailing
        && out[out.len() - trailing..] == shape[shape.len() - trailing..]
        && out[..out.len() - trailing].iter().product::<usize>() * n == g.len()
        && lead + shape.len() == out.len();
    if n > 0 && tail_ok {
        for row in g.chunks_exact(n) {
            r.iter_mut().zip(row).for_each(|(a, &b)| *a += b);
        }
        return r;
    }
    let st = bcast_strides(shape, out);
    for_each_bcast(out, [&st], |o, [a]| r[a] += g[o]);
    r
}

/// Broadcast output shape of two shapes (numpy rules).
pub(crate) fn bcast_shape(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let r = a.len().max(b.len());
    let mut out = vec![0; r];
    for (i, o) in out.iter_mut().enumerate() {
        let da = if i + a.len() >= r {
            a[i + a.len() - r]
        } else {
            1
        };
        let db = if i + b.len() >= r {
            b[i + b.len() - r]
        } else {
            1
        };
        *o = if da == db || db == 1 {
            da
        } else if da == 1 {
            db
        } else {
            return None;
        };
    }
    Some(out)
}

/// Transposed convolution forward. `g` describes the *output* image
/// (`c`=out channels, `h`x`w` = output size) with `oh`x`ow` = input size,
/// so that a convolution with `g` maps the output back onto the input.
/// `x[n, cin, oh, ow]`, `wt[cin, cout/groups, kh, kw]`.
pub(crate) fn convt_fwd(
    x: &[f32],
    n: usize,
    g: &Geom,
    groups: usize,
    cin: usize,
    wt: &[f32],
    bias: Option<&[f32]>,
) -> Vec<f32> {
    let cog = g.c / groups;
    let cig = cin / groups;
    let kk = cog * g.kh * g.kw;
    let hw = g.oh * g.ow;
    let out_sz = g.c * g.h * g.w;
    let mut y = vec![0.0f32; n * out_sz];
    if n == 0 || out_sz == 0 {
        return y;
    }
    y.par_chunks_mut(out_sz)
        .enumerate()
        .for_each_init(Vec::new, |col, (i, yi)| {
            let xi = &x[i * cin * hw..(i + 1) * cin * hw];
            for gi in 0..groups {
                let wg = &wt[gi * cig * kk..(gi + 1) * cig * kk];
                let xg = &xi[gi * cig * hw..(gi + 1) * cig * hw];
                col.resize(kk * hw, 0.0);
                gemm(kk, cig, hw, 1.0, wg, 1, kk, xg, hw, 1, 0.0, col, hw, 1);
                col2im(col, g, gi * cog, cog, yi, hw);
            }
            if let Some(b) = bias {
                for (oc, row) in yi.chunks_mut(g.h * g.w).enumerate() {
                    let bv = b[oc];
                    row.iter_mut().for_each(|v| *v += bv);
                }
            }
        });
    y
}

/// Transposed convolution backward: `(dx, dw, db)` as asked.
#[allow(clippy::too_many_arguments)]
pub(crate) fn convt_bwd(
    x: &[f32],
    n: usize,
    g: &Geom,
    groups: usize,
    cin: usize,
    wt: &[f32],
    dy: &[f32],
    need: [bool; 3],
) -> ConvGrads {
    let cog = g.c / groups;
    let cig = cin / groups;
    let kk = cog * g.kh * g.kw;
    let hw = g.oh * g.ow;
    let out_sz = g.c * g.h * g.w;
    let dx = need[0].then(|| {
        let mut dx = vec![0.0f32; n * cin * hw];
        dx.par_chunks_mut((cin * hw).max(1))
            .enumerate()
            .for_each_init(Vec::new, |col, (i, dxi)| {
                let dyi = &dy[i * out_sz..(i + 1) * out_sz];
                for gi in 0..groups {
                    col.resize(kk * hw, 0.0);
                    im2col(dyi, g, gi * cog, cog, col, hw);
                    let wg = &wt[gi * cig * kk..(gi + 1) * cig * kk];
                    let d = &mut dxi[gi * cig * hw..(gi + 1) * cig * hw];
                    gemm(cig, kk, hw, 1.0, wg, kk, 1, col, hw, 1, 0.0, d, hw, 1);
                }
            });
        dx
    });
    let dw = need[1].then(|| {
        // Fixed groups of images summed in order (see conv_bwd_cols).
        let per = n.div_ceil(REDUCE_GROUPS).max(1);
        let parts: Vec<Vec<f32>> = (0..n.div_ceil(per))
            .into_par_iter()
            .map(|gi| {
                let mut acc = vec![0.0f32; cin * kk];
                let mut col = Vec::new();
                for i in gi * per..((gi + 1) * per).min(n) {
                    let dyi = &dy[i * out_sz..(i + 1) * out_sz];
                    let xi = &x[i * cin * hw..(i + 1) * cin * hw];
                    for gi in 0..groups {
                        col.resize(kk * hw, 0.0);
                        im2col(dyi, g, gi * cog, cog, &mut col, hw);
                        let xg = &xi[gi * cig * hw..(gi + 1) * cig * hw];
                        let a = &mut acc[gi * cig * kk..(gi + 1) * cig * kk];
                        gemm(cig, hw, kk, 1.0, xg, hw, 1, &col, 1, hw, 1.0, a, kk, 1);
                    }
                }
                acc
            })
            .collect();
        parts.into_iter().fold(vec![0.0f32; cin * kk], |mut a, b| {
            a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
            a
        })
    });
    let db = need[2].then(|| {
        let mut db = vec![0.0f32; g.c];
        for i in 0..n {
            for (oc, d) in db.iter_mut().enumerate() {
                let o = (i * g.c + oc) * g.h * g.w;
                *d += dy[o..o + g.h * g.w].iter().sum::<f32>();
            }
        }
        db
    });
    (dx, dw, db)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct (seven-loop) convolution, the reference for the im2col path.
    fn naive_conv(x: &[f32], n: usize, g: &Geom, groups: usize, wt: &[f32], m: usize) -> Vec<f32> {
        let (cg, mg) = (g.c / groups, m / groups);
        let mut y = vec![0.0f32; n * m * g.oh * g.ow];
        for i in 0..n {
            for oc in 0..m {
                let gi = oc / mg;
                for oy in 0..g.oh {
                    for ox in 0..g.ow {
                        let mut s = 0.0;
                        for c in 0..cg {
                            for ki in 0..g.kh {
                                for kj in 0..g.kw {
                                    let iy = (oy * g.sh + ki * g.dh) as isize - g.pt as isize;
                                    let ix = (ox * g.sw + kj * g.dw) as isize - g.pl as isize;
                                    if iy < 0 || ix < 0 || iy >= g.h as isize || ix >= g.w as isize
                                    {
                                        continue;
                                    }
                                    let xv = x[((i * g.c + gi * cg + c) * g.h + iy as usize) * g.w
                                        + ix as usize];
                                    s += xv * wt[((oc * cg + c) * g.kh + ki) * g.kw + kj];
                                }
                            }
                        }
                        y[((i * m + oc) * g.oh + oy) * g.ow + ox] = s;
                    }
                }
            }
        }
        y
    }

    /// The 2x2 fast path picks the same values and indices as the general
    /// loop, ties (first maximum) and NaNs included, also when the map has an
    /// odd size so the last row and column are dropped.
    #[test]
    fn maxpool_2x2_matches_general() {
        for (h, w) in [(4, 6), (5, 7), (2, 2)] {
            let g = Geom {
                c: 3,
                h,
                w,
                kh: 2,
                kw: 2,
                sh: 2,
                sw: 2,
                dh: 1,
                dw: 1,
                pt: 0,
                pl: 0,
                oh: h / 2,
                ow: w / 2,
            };
            let mut x: Vec<f32> = (0..3 * h * w).map(|i| ((i * 37) % 5) as f32).collect();
            x[1] = f32::NAN;
            x[h * w + 1] = f32::NAN;
            x[h * w + w] = f32::NAN;
            let (y, i) = maxpool_fwd(&x, 3, &g);
            let mut y2 = vec![0.0; y.len()];
            let mut i2 = vec![u32::MAX; i.len()];
            maxpool_general(&x, &g, &mut y2, &mut i2);
            assert_eq!(i, i2);
            for (a, b) in y.iter().zip(&y2) {
                assert!(a == b || (a.is_nan() && b.is_nan()));
            }
            let dy: Vec<f32> = (0..y.len()).map(|k| k as f32).collect();
            let dx = maxpool_bwd(&dy, &i, 3, h * w, g.oh * g.ow);
            assert_eq!(dx.iter().sum::<f32>(), dy.iter().sum::<f32>());
        }
    }

    fn geoms() -> Vec<(Geom, usize)> {
        let mk = |c, h, w, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, groups| {
            let oh = (h + pt + pb - dh * (kh - 1) - 1) / sh + 1;
            let ow = (w + pl + pr - dw * (kw - 1) - 1) / sw + 1;
            let g = Geom::plane(c, [h, w], [kh, kw], [sh, sw], [dh, dw], [pt, pl], [oh, ow]);
            (g, groups)
        };
        vec![
            mk(4, 5, 6, 3, 2, 2, 1, 1, 2, 1, 0, 2, 1, 2),
            mk(3, 4, 4, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1),
            mk(2, 7, 7, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1),
            mk(2, 1, 9, 1, 3, 1, 3, 1, 1, 0, 4, 0, 2, 1),
            mk(6, 2, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 3),
            // Dead taps: only the centre of a padded 3x3 reads a 1x1 map;
            // four taps of a strided 3x3 on a 2x2 map.
            mk(3, 1, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1),
            mk(2, 2, 2, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1),
            // Maps at least 8 wide use row copies instead of the gather table.
            mk(2, 5, 11, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1),
            mk(2, 4, 17, 2, 3, 2, 2, 1, 2, 0, 2, 1, 0, 2),
            // Stride 1 with output rows as wide as the input (the
            // one-copy-per-tap unfolding): 5x5, dilated, asymmetric
            // padding, and pads taller than the kernel (all-padding rows).
            mk(3, 6, 9, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2, 1),
            mk(2, 6, 10, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 1),
            mk(2, 7, 9, 3, 3, 1, 1, 1, 1, 1, 2, 0, 0, 1),
            mk(1, 3, 8, 3, 1, 1, 1, 1, 1, 4, 0, 4, 0, 1),
            // The direct (stacked-plane) path: 3x3 and 5x5 "same"
            // convolutions with at least 8 channels and maps at least 8
            // wide, from 2 rows (no tap dead) up.
            mk(8, 6, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1),
            mk(9, 2, 9, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1),
            mk(8, 3, 11, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1),
            mk(10, 7, 9, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2, 1),
        ]
    }

    fn data(len: usize, seed: usize) -> Vec<f32> {
        (0..len)
            .map(|i| (((i + seed) * 7919 % 211) as f32 / 105.0) - 1.0)
            .collect()
    }

    fn close(a: &[f32], b: &[f32]) {
        assert_eq!(a.len(), b.len());
        for (u, v) in a.iter().zip(b) {
            assert!((u - v).abs() <= 1e-4 * (1.0 + v.abs()), "{u} vs {v}");
        }
    }

    /// Summing a bias-like gradient over leading axes (the row-by-row path)
    /// gives the same values as the general broadcast walk would.
    #[test]
    fn reduce_to_sums_leading_axes() {
        let g = data(2 * 3 * 4, 5);
        let manual = |keep: &dyn Fn(usize) -> usize, n: usize| {
            let mut r = vec![0.0f32; n];
            for (i, v) in g.iter().enumerate() {
                r[keep(i)] += v;
            }
            r
        };
        assert_eq!(reduce_to(&g, &[2, 3, 4], &[4]), manual(&|i| i % 4, 4));
        assert_eq!(reduce_to(&g, &[2, 3, 4], &[1, 1, 4]), manual(&|i| i % 4, 4));
        assert_eq!(reduce_to(&g, &[2, 3, 4], &[3, 4]), manual(&|i| i % 12, 12));
        // Not a trailing block: the general walk.
        assert_eq!(
            reduce_to(&g, &[2, 3, 4], &[3, 1]),
            manual(&|i| (i / 4) % 3, 3)
        );
        assert_eq!(
            reduce_to(&g, &[2, 3, 4], &[2, 1, 4]),
            manual(&|i| (i / 12) * 4 + i % 4, 8)
        );
    }

    /// The chunked forward agrees with the direct convolution for one image
    /// per chunk, several per chunk and the whole batch in one chunk; the
    /// chunked backward agrees with the adjoint identities
    /// `<dy, conv(x)> = <dx, x>` (input) and `= <dw, w>` (weights).
    #[test]
    fn chunked_conv_matches_direct_and_adjoints() {
        let n = 5;
        for (g, groups) in geoms() {
            let m = 2 * groups;
            let kk = g.c / groups * g.kh * g.kw;
            let x = data(n * g.c * g.h * g.w, 1);
            let w = data(m * kk, 2);
            let reference = naive_conv(&x, n, &g, groups, &w, m);
            let dy = data(reference.len(), 3);
            let ohw = g.oh * g.ow;
            let cases = [1, 2 * ohw, 1 << 22]
                .into_iter()
                .flat_map(|c| [(c, false), (c, true)]);
            for (min_cols, direct) in cases {
                let a = ConvArgs {
                    x: &x,
                    n,
                    g: &g,
                    groups,
                    wt: &w,
                    m,
                };
                let y = conv_fwd_cols(&a, None, min_cols, direct);
                close(&y, &reference);
                let (dx, dw, db) = conv_bwd_cols(&a, &dy, [true; 3], min_cols, direct);
                let (dx, dw, db) = (dx.unwrap(), dw.unwrap(), db.unwrap());
                let lhs: f32 = dy.iter().zip(&y).map(|(a, b)| a * b).sum();
                let rx: f32 = dx.iter().zip(&x).map(|(a, b)| a * b).sum();
                let rw: f32 = dw.iter().zip(&w).map(|(a, b)| a * b).sum();
                assert!(
                    (lhs - rx).abs() <= 1e-3 * (1.0 + lhs.abs()),
                    "{lhs} vs {rx}"
                );
                assert!(
                    (lhs - rw).abs() <= 1e-3 * (1.0 + lhs.abs()),
                    "{lhs} vs {rw}"
                );
                let total: f32 = dy.iter().sum();
                assert!((db.iter().sum::<f32>() - total).abs() <= 1e-3 * (1.0 + total.abs()));
                // Asking for one gradient gives the same values as asking for all.
                let (dx1, dw1, _) = conv_bwd_cols(&a, &dy, [true, false, false], min_cols, direct);
                close(&dx1.unwrap(), &dx);
                let (dx2, dw2, _) = conv_bwd_cols(&a, &dy, [false, true, false], min_cols, direct);
                assert!(dx2.is_none());
                close(&dw2.unwrap(), &dw);
                assert!(dw1.is_none());
            }
        }
    }

    /// The direct path computes the same forward, input gradient and
    /// weight gradient as im2col, value by value (up to reassociation), for
    /// every chunking; four of the test geometries take it.
    #[test]
    fn direct_conv_matches_im2col() {
        let n = 5;
        let mut taken = 0;
        for (g, groups) in geoms() {
            if !Stacked::applies(&g, groups) {
                continue;
            }
            taken += 1;
            let m = 3;
            let x = data(n * g.c * g.h * g.w, 4);
            let w = data(m * g.c * g.kh * g.kw, 5);
            let a = ConvArgs {
                x: &x,
                n,
                g: &g,
                groups,
                wt: &w,
                m,
            };
            let dy = data(n * m * g.oh * g.ow, 6);
            for min_cols in [1, 2 * g.oh * g.ow, 1 << 22] {
                let y0 = conv_fwd_cols(&a, None, min_cols, false);
                let y1 = conv_fwd_cols(&a, None, min_cols, true);
                close(&y1, &y0);
                let (dx0, dw0, _) = conv_bwd_cols(&a, &dy, [true, true, false], min_cols, false);
                let (dx1, dw1, _) = conv_bwd_cols(&a, &dy, [true, true, false], min_cols, true);
                close(&dx1.unwrap(), &dx0.unwrap());
                close(&dw1.unwrap(), &dw0.unwrap());
            }
        }
        assert_eq!(taken, 4);
    }

    /// The direct path's tap sums and weight gradient through
    /// `tapconv` (AVX2 + FMA) give the bits of the GEMM loops they replace
    /// (`simd::force(false)` turns `tapconv` off), and its weight gradient
    /// the bits of the im2col GEMM, on odd shapes and on the ResNet's.
    #[test]
    fn tapconv_path_is_bit_identical() {
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        let mut cases: Vec<(Geom, usize, usize, usize)> = geoms()
            .into_iter()
            .filter(|(g, groups)| Stacked::applies(g, *groups))
            .map(|(g, groups)| (g, groups, 5, 3))
            .collect();
        let p = |c, h| Geom::plane(c, [h, h], [3, 3], [1, 1], [1, 1], [1, 1], [h, h]);
        cases.push((p(16, 28), 1, 16, 3));
        cases.push((p(32, 14), 1, 32, 5));
        cases.push((p(9, 11), 1, 6, 4));
        for (g, groups, m, n) in cases {
            let x = data(n * g.c * g.h * g.w, 7);
            let w = data(m * g.c * g.kh * g.kw, 8);
            let dy = data(n * m * g.oh * g.ow, 9);
            let a = ConvArgs {
                x: &x,
                n,
                g: &g,
                groups,
                wt: &w,
                m,
            };
            for min_cols in [1, 2 * g.oh * g.ow, 1 << 22] {
                let run = |direct: bool| {
                    let y = conv_fwd_cols(&a, None, min_cols, direct);
                    let (dx, dw, _) = conv_bwd_cols(&a, &dy, [true, true, false], min_cols, direct);
                    (y, dx.unwrap_or_default(), dw.unwrap_or_default())
                };
                assert!(simd::force(false));
                let loops = run(true);
                let im2col = run(false);
                if !simd::force(true) || !tapconv::available() {
                    return;
                }
                let fast = run(true);
                assert_eq!(bits(&fast.0), bits(&loops.0), "forward {g:?}");
                assert_eq!(bits(&fast.1), bits(&loops.1), "input gradient {g:?}");
                assert_eq!(bits(&fast.2), bits(&loops.2), "weight gradient {g:?}");
                assert_eq!(
                    bits(&fast.2),
                    bits(&im2col.2),
                    "weight gradient vs im2col {g:?}"
                );
            }
        }
    }
}
