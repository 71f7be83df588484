//! Dense `f32` kernels with hand-written backward passes: matrix products
//! (via the `matrixmultiply` crate's packed SGEMM), convolution by im2col
//! (Chellapilla et al. 2006, "High performance convolutional neural networks
//! for document processing"), pooling and broadcasting helpers.

use rayon::prelude::*;

/// `C = alpha * A·B + beta * C` with arbitrary strides; bounds are checked.
#[allow(clippy::too_many_arguments)]
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
    if m == 0 || n == 0 {
        return;
    }
    let chunk = (m / rayon::current_num_threads().max(1)).max(16);
    if m <= chunk || m * k * n < 1 << 16 {
        gemm(m, k, n, 1.0, a, rsa, csa, b, rsb, csb, beta, c, n, 1);
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
                1.0,
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

/// Unfolds channels `c0..c0+cg` of one image `x[c,h,w]` into
/// `col[cg*kh*kw, oh*ow]`.
pub(crate) fn im2col(x: &[f32], g: &Geom, c0: usize, cg: usize, col: &mut [f32]) {
    let ohw = g.oh * g.ow;
    for c in 0..cg {
        let xc = &x[(c0 + c) * g.h * g.w..(c0 + c + 1) * g.h * g.w];
        for ki in 0..g.kh {
            for kj in 0..g.kw {
                let row = (c * g.kh + ki) * g.kw + kj;
                let dst = &mut col[row * ohw..(row + 1) * ohw];
                for oy in 0..g.oh {
                    let iy = (oy * g.sh + ki * g.dh) as isize - g.pt as isize;
                    let d = &mut dst[oy * g.ow..(oy + 1) * g.ow];
                    if iy < 0 || iy >= g.h as isize {
                        d.fill(0.0);
                        continue;
                    }
                    let xr = &xc[iy as usize * g.w..(iy as usize + 1) * g.w];
                    let off = (kj * g.dw) as isize - g.pl as isize;
                    if g.sw == 1 {
                        for (ox, v) in d.iter_mut().enumerate() {
                            let ix = ox as isize + off;
                            *v = if ix >= 0 && (ix as usize) < g.w {
                                xr[ix as usize]
                            } else {
                                0.0
                            };
                        }
                    } else {
                        for (ox, v) in d.iter_mut().enumerate() {
                            let ix = (ox * g.sw) as isize + off;
                            *v = if ix >= 0 && (ix as usize) < g.w {
                                xr[ix as usize]
                            } else {
                                0.0
                            };
                        }
                    }
                }
            }
        }
    }
}

/// Adjoint of [`im2col`]: adds `col` back into `dx` channels `c0..c0+cg`.
pub(crate) fn col2im(col: &[f32], g: &Geom, c0: usize, cg: usize, dx: &mut [f32]) {
    let ohw = g.oh * g.ow;
    for c in 0..cg {
        let xc = &mut dx[(c0 + c) * g.h * g.w..(c0 + c + 1) * g.h * g.w];
        for ki in 0..g.kh {
            for kj in 0..g.kw {
                let row = (c * g.kh + ki) * g.kw + kj;
                let src = &col[row * ohw..(row + 1) * ohw];
                for oy in 0..g.oh {
                    let iy = (oy * g.sh + ki * g.dh) as isize - g.pt as isize;
                    if iy < 0 || iy >= g.h as isize {
                        continue;
                    }
                    let xr = &mut xc[iy as usize * g.w..(iy as usize + 1) * g.w];
                    let off = (kj * g.dw) as isize - g.pl as isize;
                    for ox in 0..g.ow {
                        let ix = (ox * g.sw) as isize + off;
                        if ix >= 0 && (ix as usize) < g.w {
                            xr[ix as usize] += src[oy * g.ow + ox];
                        }
                    }
                }
            }
        }
    }
}

/// Convolution forward: `x[n,c,h,w]`, `w[m, c/g, kh, kw]`, optional bias.
pub(crate) fn conv_fwd(
    x: &[f32],
    n: usize,
    g: &Geom,
    groups: usize,
    wt: &[f32],
    m: usize,
    bias: Option<&[f32]>,
) -> Vec<f32> {
    let cg = g.c / groups;
    let mg = m / groups;
    let kk = cg * g.kh * g.kw;
    let ohw = g.oh * g.ow;
    let in_sz = g.c * g.h * g.w;
    let mut y = vec![0.0f32; n * m * ohw];
    if n == 0 || ohw == 0 {
        return y;
    }
    let point = g.is_pointwise();
    y.par_chunks_mut(m * ohw)
        .enumerate()
        .for_each_init(Vec::new, |col, (i, yi)| {
            let xi = &x[i * in_sz..(i + 1) * in_sz];
            for gi in 0..groups {
                let yg = &mut yi[gi * mg * ohw..(gi + 1) * mg * ohw];
                let wg = &wt[gi * mg * kk..(gi + 1) * mg * kk];
                if point {
                    let xs = &xi[gi * cg * ohw..(gi + 1) * cg * ohw];
                    gemm(mg, kk, ohw, 1.0, wg, kk, 1, xs, ohw, 1, 0.0, yg, ohw, 1);
                } else {
                    col.resize(kk * ohw, 0.0);
                    im2col(xi, g, gi * cg, cg, col);
                    gemm(mg, kk, ohw, 1.0, wg, kk, 1, col, ohw, 1, 0.0, yg, ohw, 1);
                }
            }
            if let Some(b) = bias {
                for (oc, row) in yi.chunks_mut(ohw).enumerate() {
                    let bv = b[oc];
                    row.iter_mut().for_each(|v| *v += bv);
                }
            }
        });
    y
}

/// Convolution backward. Returns `(dx, dw, db)`, each only when asked.
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
pub(crate) fn conv_bwd(
    x: &[f32],
    n: usize,
    g: &Geom,
    groups: usize,
    wt: &[f32],
    m: usize,
    dy: &[f32],
    need_dx: bool,
    need_dw: bool,
    need_db: bool,
) -> (Option<Vec<f32>>, Option<Vec<f32>>, Option<Vec<f32>>) {
    let cg = g.c / groups;
    let mg = m / groups;
    let kk = cg * g.kh * g.kw;
    let ohw = g.oh * g.ow;
    let in_sz = g.c * g.h * g.w;
    let point = g.is_pointwise();
    let dx = if need_dx {
        let mut dx = vec![0.0f32; n * in_sz];
        dx.par_chunks_mut(in_sz.max(1))
            .enumerate()
            .for_each_init(Vec::new, |dcol, (i, dxi)| {
                let dyi = &dy[i * m * ohw..(i + 1) * m * ohw];
                for gi in 0..groups {
                    let wg = &wt[gi * mg * kk..(gi + 1) * mg * kk];
                    let dyg = &dyi[gi * mg * ohw..(gi + 1) * mg * ohw];
                    if point {
                        let d = &mut dxi[gi * cg * ohw..(gi + 1) * cg * ohw];
                        gemm(kk, mg, ohw, 1.0, wg, 1, kk, dyg, ohw, 1, 0.0, d, ohw, 1);
                    } else {
                        dcol.resize(kk * ohw, 0.0);
                        gemm(kk, mg, ohw, 1.0, wg, 1, kk, dyg, ohw, 1, 0.0, dcol, ohw, 1);
                        col2im(dcol, g, gi * cg, cg, dxi);
                    }
                }
            });
        Some(dx)
    } else {
        None
    };
    let dw = if need_dw {
        let dw = (0..n)
            .into_par_iter()
            .fold(
                || (vec![0.0f32; m * kk], Vec::new()),
                |(mut acc, mut col), i| {
                    let xi = &x[i * in_sz..(i + 1) * in_sz];
                    let dyi = &dy[i * m * ohw..(i + 1) * m * ohw];
                    for gi in 0..groups {
                        let dyg = &dyi[gi * mg * ohw..(gi + 1) * mg * ohw];
                        let dwg = &mut acc[gi * mg * kk..(gi + 1) * mg * kk];
                        if point {
                            let xs = &xi[gi * cg * ohw..(gi + 1) * cg * ohw];
                            gemm(mg, ohw, kk, 1.0, dyg, ohw, 1, xs, 1, ohw, 1.0, dwg, kk, 1);
                        } else {
                            col.resize(kk * ohw, 0.0);
                            im2col(xi, g, gi * cg, cg, &mut col);
                            gemm(mg, ohw, kk, 1.0, dyg, ohw, 1, &col, 1, ohw, 1.0, dwg, kk, 1);
                        }
                    }
                    (acc, col)
                },
            )
            .map(|(a, _)| a)
            .reduce(
                || vec![0.0f32; m * kk],
                |mut a, b| {
                    a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
                    a
                },
            );
        Some(dw)
    } else {
        None
    };
    let db = if need_db {
        let mut db = vec![0.0f32; m];
        for i in 0..n {
            for (oc, d) in db.iter_mut().enumerate() {
                *d += dy[(i * m + oc) * ohw..(i * m + oc + 1) * ohw]
                    .iter()
                    .sum::<f32>();
            }
        }
        Some(db)
    } else {
        None
    };
    (dx, dw, db)
}

/// Max pooling forward over `planes` planes of `h*w`; returns values and the
/// flat in-plane index of each maximum (`u32::MAX` for an all-padding window).
pub(crate) fn maxpool_fwd(x: &[f32], planes: usize, g: &Geom) -> (Vec<f32>, Vec<u32>) {
    let ohw = g.oh * g.ow;
    let hw = g.h * g.w;
    let mut y = vec![0.0f32; planes * ohw];
    let mut idx = vec![u32::MAX; planes * ohw];
    y.par_chunks_mut(ohw.max(1))
        .zip(idx.par_chunks_mut(ohw.max(1)))
        .enumerate()
        .for_each(|(p, (yp, ip))| {
            let xp = &x[p * hw..(p + 1) * hw];
            for oy in 0..g.oh {
                for ox in 0..g.ow {
                    let mut best = f32::NEG_INFINITY;
                    let mut bi = u32::MAX;
                    for ki in 0..g.kh {
                        let iy = (oy * g.sh + ki * g.dh) as isize - g.pt as isize;
                        if iy < 0 || iy >= g.h as isize {
                            continue;
                        }
                        for kj in 0..g.kw {
                            let ix = (ox * g.sw + kj * g.dw) as isize - g.pl as isize;
                            if ix < 0 || ix >= g.w as isize {
                                continue;
                            }
                            let j = iy as usize * g.w + ix as usize;
                            let v = xp[j];
                            if v > best || bi == u32::MAX || v.is_nan() {
                                best = v;
                                bi = j as u32;
                            }
                        }
                    }
                    yp[oy * g.ow + ox] = if bi == u32::MAX { 0.0 } else { best };
                    ip[oy * g.ow + ox] = bi;
                }
            }
        });
    (y, idx)
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
                col2im(col, g, gi * cog, cog, yi);
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
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
pub(crate) fn convt_bwd(
    x: &[f32],
    n: usize,
    g: &Geom,
    groups: usize,
    cin: usize,
    wt: &[f32],
    dy: &[f32],
    need: [bool; 3],
) -> (Option<Vec<f32>>, Option<Vec<f32>>, Option<Vec<f32>>) {
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
                    im2col(dyi, g, gi * cog, cog, col);
                    let wg = &wt[gi * cig * kk..(gi + 1) * cig * kk];
                    let d = &mut dxi[gi * cig * hw..(gi + 1) * cig * hw];
                    gemm(cig, kk, hw, 1.0, wg, kk, 1, col, hw, 1, 0.0, d, hw, 1);
                }
            });
        dx
    });
    let dw = need[1].then(|| {
        (0..n)
            .into_par_iter()
            .fold(
                || (vec![0.0f32; cin * kk], Vec::new()),
                |(mut acc, mut col), i| {
                    let dyi = &dy[i * out_sz..(i + 1) * out_sz];
                    let xi = &x[i * cin * hw..(i + 1) * cin * hw];
                    for gi in 0..groups {
                        col.resize(kk * hw, 0.0);
                        im2col(dyi, g, gi * cog, cog, &mut col);
                        let xg = &xi[gi * cig * hw..(gi + 1) * cig * hw];
                        let a = &mut acc[gi * cig * kk..(gi + 1) * cig * kk];
                        gemm(cig, hw, kk, 1.0, xg, hw, 1, &col, 1, hw, 1.0, a, kk, 1);
                    }
                    (acc, col)
                },
            )
            .map(|(a, _)| a)
            .reduce(
                || vec![0.0f32; cin * kk],
                |mut a, b| {
                    a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
                    a
                },
            )
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
