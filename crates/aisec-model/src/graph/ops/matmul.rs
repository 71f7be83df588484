//! Matrix products: Gemm and MatMul (batched, broadcasting).

use std::sync::Arc;

use super::super::{attrs, fval, shape_err, Cx, Node};
use super::{one, Backward, Grads, Op, Outputs, Registry};
use crate::classifier::ModelError;
use crate::kernels;

pub(super) fn register(r: &mut Registry) {
    r.add(&["Gemm"], |n, _| {
        Ok(Arc::new(Gemm {
            alpha: attrs::float(n, "alpha", 1.0),
            beta: attrs::float(n, "beta", 1.0),
            trans_a: attrs::int(n, "transA", 0) != 0,
            trans_b: attrs::int(n, "transB", 0) != 0,
        }))
    });
    r.add(&["MatMul"], |_, _| Ok(Arc::new(MatMul)));
}

/// `alpha * A' · B' + beta * C` with `A'`, `B'` optionally transposed.
#[derive(Debug)]
struct Gemm {
    alpha: f32,
    beta: f32,
    trans_a: bool,
    trans_b: bool,
}

impl Op for Gemm {
    fn rows_independent(&self) -> bool {
        !self.trans_a
    }
    fn forward(&self, cx: &Cx<'_>) -> Result<Outputs, ModelError> {
        let node = cx.node;
        let nm = node.name.as_str();
        let (alpha, beta, ta, tb) = (self.alpha, self.beta, self.trans_a, self.trans_b);
        let a = cx.input(0)?;
        let b = cx.input(1)?;
        let (sa, sb) = (a.shape(), b.shape());
        if sa.len() != 2 || sb.len() != 2 {
            return Err(shape_err(
                node,
                format!("Gemm needs 2-D operands, got {sa:?} {sb:?}"),
            ));
        }
        let (m, k) = if ta { (sa[1], sa[0]) } else { (sa[0], sa[1]) };
        let (k2, n) = if tb { (sb[1], sb[0]) } else { (sb[0], sb[1]) };
        if k != k2 {
            return Err(shape_err(node, format!("Gemm {sa:?} x {sb:?}")));
        }
        let mut y = vec![0.0f32; cx.alloc(&[m, n])?];
        cx.work(&[m, k, n])?;
        let mut beta_used = 0.0;
        if let Some(c) = cx.opt(2) {
            let cs = c.shape();
            let bs = kernels::bcast_shape(cs, &[m, n])
                .filter(|s| s == &[m, n])
                .ok_or_else(|| shape_err(node, format!("Gemm C {cs:?}")))?;
            let st = kernels::bcast_strides(cs, &bs);
            let cd = c.f(nm)?;
            if cd.len() == n && n > 0 && st[0] == 0 {
                // A bias row over the batch: the same products, row by row.
                for row in y.chunks_exact_mut(n) {
                    row.iter_mut().zip(cd).for_each(|(o, &v)| *o = beta * v);
                }
            } else {
                kernels::for_each_bcast(&bs, [&st], |o, [i]| y[o] = beta * cd[i]);
            }
            beta_used = 1.0;
        }
        let (rsa, csa) = if ta { (1, sa[1]) } else { (sa[1], 1) };
        let (rsb, csb) = if tb { (1, sb[1]) } else { (sb[1], 1) };
        let ad = a.f(nm)?;
        kernels::par_gemm(
            m,
            k,
            n,
            alpha,
            ad,
            rsa,
            csa,
            b.f(nm)?,
            rsb,
            csb,
            beta_used,
            &mut y,
        );
        one(fval(vec![m, n], y))
    }

    fn backward(&self, bw: &Backward<'_>) -> Result<Grads, ModelError> {
        let nm = bw.name();
        let (alpha, beta, ta, tb) = (self.alpha, self.beta, self.trans_a, self.trans_b);
        let mut res = bw.none();
        let a = bw.input(0)?;
        let b = bw.input(1)?;
        let (sa, sb) = (a.shape(), b.shape());
        let (m, k) = if ta { (sa[1], sa[0]) } else { (sa[0], sa[1]) };
        let n = if tb { sb[0] } else { sb[1] };
        let dy = bw.dy_ref();
        // B'[kk][j] and A'[i][kk] as (row, column) strides of B and A.
        let (rb, cb) = if tb { (1, sb[1]) } else { (sb[1], 1) };
        let (ra, ca) = if ta { (1, sa[1]) } else { (sa[1], 1) };
        if bw.need(0) {
            // dA' = alpha dY · B'^T ([m, k]); with transA, A's own layout
            // [k, m] is B' · dY^T, written directly (no transpose copy).
            let mut da = vec![0.0f32; m * k];
            if ta {
                kernels::par_gemm(k, n, m, alpha, b.f(nm)?, rb, cb, &dy, 1, n, 0.0, &mut da);
            } else {
                kernels::par_gemm(m, n, k, alpha, &dy, n, 1, b.f(nm)?, cb, rb, 0.0, &mut da);
            }
            res[0] = Some(da);
        }
        if bw.need(1) {
            // dB' = alpha A'^T · dY ([k, n]); with transB, B's own layout
            // [n, k] is dY^T · A', written directly.
            let mut db = vec![0.0f32; k * n];
            if tb {
                kernels::par_gemm(n, m, k, alpha, &dy, 1, n, a.f(nm)?, ra, ca, 0.0, &mut db);
            } else {
                kernels::par_gemm(k, m, n, alpha, a.f(nm)?, ca, ra, &dy, n, 1, 0.0, &mut db);
            }
            res[1] = Some(db);
        }
        if bw.need(2) {
            if let Some(c) = bw.opt(2) {
                let mut r = kernels::reduce_to(&dy, &[m, n], c.shape());
                r.iter_mut().for_each(|v| *v *= beta);
                res[2] = Some(r);
            }
        }
        Ok(res)
    }
}

/// `A[.., m, k] · B[.., k, n]` with broadcast batch dims: the output batch
/// shape, the batch strides of A and B, and `m`, `k`, `n`.
#[allow(clippy::type_complexity)]
fn matmul_plan(
    node: &Node,
    a: &[usize],
    b: &[usize],
) -> Result<(Vec<usize>, Vec<usize>, Vec<usize>, usize, usize, usize), ModelError> {
    if a.len() < 2 || b.len() < 2 {
        return Err(shape_err(
            node,
            format!("1-D MatMul operands {a:?} x {b:?} are not supported"),
        ));
    }
    let (m, k) = (a[a.len() - 2], a[a.len() - 1]);
    let (k2, n) = (b[b.len() - 2], b[b.len() - 1]);
    if k != k2 {
        return Err(shape_err(node, format!("MatMul {a:?} x {b:?}")));
    }
    let ab = &a[..a.len() - 2];
    let bb = &b[..b.len() - 2];
    let ob = kernels::bcast_shape(ab, bb)
        .ok_or_else(|| shape_err(node, format!("MatMul batch {a:?} x {b:?}")))?;
    let sa = kernels::bcast_strides(ab, &ob)
        .iter()
        .map(|x| x * m * k)
        .collect();
    let sb = kernels::bcast_strides(bb, &ob)
        .iter()
        .map(|x| x * k * n)
        .collect();
    Ok((ob, sa, sb, m, k, n))
}

#[derive(Debug)]
struct MatMul;

impl Op for MatMul {
    fn rows_independent(&self) -> bool {
        true
    }
    fn forward(&self, cx: &Cx<'_>) -> Result<Outputs, ModelError> {
        let a = cx.input(0)?;
        let b = cx.input(1)?;
        let (ob, sa, sb, m, k, n) = matmul_plan(cx.node, a.shape(), b.shape())?;
        let mut os = ob.clone();
        os.push(m);
        os.push(n);
        let total = cx.alloc(&os)?;
        cx.work(&[total, k])?;
        let mut y = vec![0.0f32; total];
        let (ad, bd) = (a.f(cx.name())?, b.f(cx.name())?);
        if sb.iter().all(|&s| s == 0) && b.shape().len() == 2 {
            // Fold batch dims of A into rows.
            let rows = total / n.max(1);
            kernels::par_gemm_rows(rows, k, n, ad, k, 1, bd, n, 1, 0.0, &mut y);
        } else {
            let mut i = 0;
            kernels::for_each_bcast(&ob, [&sa, &sb], |_, [oa, obb]| {
                kernels::gemm(
                    m,
                    k,
                    n,
                    1.0,
                    &ad[oa..],
                    k,
                    1,
                    &bd[obb..],
                    n,
                    1,
                    0.0,
                    &mut y[i * m * n..],
                    n,
                    1,
                );
                i += 1;
            });
            if ob.is_empty() {
                kernels::gemm(m, k, n, 1.0, ad, k, 1, bd, n, 1, 0.0, &mut y, n, 1);
            }
        }
        one(fval(os, y))
    }

    fn backward(&self, bw: &Backward<'_>) -> Result<Grads, ModelError> {
        let nm = bw.name();
        let mut res = bw.none();
        let a = bw.input(0)?;
        let b = bw.input(1)?;
        let (ob, sa, sb, m, k, n) = matmul_plan(bw.node, a.shape(), b.shape())?;
        let (ad, bd) = (a.f(nm)?, b.f(nm)?);
        let dy = bw.dy_ref();
        let mut da = if bw.need(0) {
            Some(vec![0.0f32; ad.len()])
        } else {
            None
        };
        let mut dbv = if bw.need(1) {
            Some(vec![0.0f32; bd.len()])
        } else {
            None
        };
        if sb.iter().all(|&s| s == 0) && b.shape().len() == 2 {
            let rows = dy.len() / n.max(1);
            if let Some(da) = da.as_mut() {
                kernels::par_gemm_rows(rows, n, k, &dy, n, 1, bd, 1, n, 0.0, da);
            }
            if let Some(db) = dbv.as_mut() {
                kernels::gemm(k, rows, n, 1.0, ad, 1, k, &dy, n, 1, 0.0, db, n, 1);
            }
        } else {
            let mut i = 0;
            let mut body = |oa: usize, obb: usize| {
                let g = &dy[i * m * n..(i + 1) * m * n];
                if let Some(da) = da.as_mut() {
                    kernels::gemm(
                        m,
                        n,
                        k,
                        1.0,
                        g,
                        n,
                        1,
                        &bd[obb..],
                        1,
                        n,
                        1.0,
                        &mut da[oa..],
                        k,
                        1,
                    );
                }
                if let Some(db) = dbv.as_mut() {
                    kernels::gemm(
                        k,
                        m,
                        n,
                        1.0,
                        &ad[oa..],
                        1,
                        k,
                        g,
                        n,
                        1,
                        1.0,
                        &mut db[obb..],
                        n,
                        1,
                    );
                }
                i += 1;
            };
            if ob.is_empty() {
                body(0, 0);
            } else {
                kernels::for_each_bcast(&ob, [&sa, &sb], |_, [oa, obb]| body(oa, obb));
            }
        }
        res[0] = da;
        res[1] = dbv;
        Ok(res)
    }
}
