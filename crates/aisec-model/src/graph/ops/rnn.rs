//! Recurrent layers: LSTM (Hochreiter & Schmidhuber, 1997) and GRU (Cho
//! et al., 2014) in ONNX's forms, with backpropagation through time.

use std::sync::Arc;

use super::super::{attrs, checked_numel, fval, need_in, shape_err, Cx, Node, Saved, Val};
use super::{Backward, Grads, Op, Outputs, Registry};
use crate::classifier::ModelError;
use crate::onnx::proto::NodeP;

pub(super) fn register(r: &mut Registry) {
    r.add(&["LSTM", "GRU"], compile);
}

fn compile(n: &NodeP, _opset: i64) -> Result<Arc<dyn Op>, ModelError> {
    let refuse = |what: &str| attrs::unsupported(n, what);
    if attrs::attr(n, "activations").is_some() {
        return Err(refuse("activations"));
    }
    if attrs::attr(n, "clip").is_some() {
        return Err(refuse("clip"));
    }
    if attrs::int(n, "input_forget", 0) != 0 {
        return Err(refuse("input_forget"));
    }
    if attrs::int(n, "layout", 0) != 0 {
        return Err(refuse("layout=1"));
    }
    if n.inputs.get(7).is_some_and(|s| !s.is_empty()) {
        return Err(refuse("peepholes"));
    }
    let hidden = attrs::int(n, "hidden_size", 0);
    if !(1..=1 << 16).contains(&hidden) {
        return Err(ModelError::Invalid(format!(
            "node '{}': {} hidden_size {hidden}",
            n.name, n.op_type
        )));
    }
    let dirs = match attrs::string(n, "direction").as_str() {
        "" | "forward" => vec![false],
        "reverse" => vec![true],
        "bidirectional" => vec![false, true],
        d => return Err(refuse(&format!("direction={d}"))),
    };
    Ok(if n.op_type == "GRU" {
        Arc::new(Gru {
            hidden: hidden as usize,
            dirs,
            lbr: attrs::int(n, "linear_before_reset", 0) != 0,
        })
    } else {
        Arc::new(Lstm {
            hidden: hidden as usize,
            dirs,
        })
    })
}

/// LSTM in ONNX's form: gates in i, o, f, c order, default activations,
/// no peepholes, `layout` 0.
#[derive(Debug)]
struct Lstm {
    hidden: usize,
    /// Per direction: true when it runs from the last step to the first.
    dirs: Vec<bool>,
}

impl Op for Lstm {
    fn forward(&self, cx: &Cx<'_>) -> Result<Outputs, ModelError> {
        let (p, mut y) = forward_start(cx, self.hidden, self.dirs.len(), 4)?;
        let (t, n, h, nd) = (p.t, p.n, p.h, self.dirs.len());
        let mut yh = vec![0.0f32; nd * n * h];
        let mut yc = vec![0.0f32; nd * n * h];
        for (d, &rev) in self.dirs.iter().enumerate() {
            let tr = lstm_run(&p, d, rev);
            write_steps(&mut y, tr.iter().map(|st| st.h.as_slice()), d, rev, nd);
            if let Some(last) = tr.last() {
                yh[d * n * h..(d + 1) * n * h].copy_from_slice(&last.h);
                yc[d * n * h..(d + 1) * n * h].copy_from_slice(&last.c);
            } else {
                yh[d * n * h..(d + 1) * n * h].copy_from_slice(&p.h0[d * n * h..(d + 1) * n * h]);
                yc[d * n * h..(d + 1) * n * h].copy_from_slice(&p.c0[d * n * h..(d + 1) * n * h]);
            }
        }
        Ok((
            vec![
                fval(vec![t, nd, n, h], y),
                fval(vec![nd, n, h], yh),
                fval(vec![nd, n, h], yc),
            ],
            Saved::Nothing,
        ))
    }

    fn backward(&self, b: &Backward<'_>) -> Result<Grads, ModelError> {
        let p = rnn_inputs(b.node, b.ins, self.hidden, self.dirs.len(), 4)?;
        let gs = lstm_backward(&p, &self.dirs, b.gouts, b.need)?;
        Ok(b.place(gs))
    }
}

/// GRU in ONNX's form: gates in z, r, h order, default activations; `lbr`
/// is `linear_before_reset` (PyTorch: 1).
#[derive(Debug)]
struct Gru {
    hidden: usize,
    dirs: Vec<bool>,
    lbr: bool,
}

impl Op for Gru {
    fn forward(&self, cx: &Cx<'_>) -> Result<Outputs, ModelError> {
        let (p, mut y) = forward_start(cx, self.hidden, self.dirs.len(), 3)?;
        let (t, n, h, nd) = (p.t, p.n, p.h, self.dirs.len());
        let mut yh = p.h0.clone();
        for (d, &rev) in self.dirs.iter().enumerate() {
            let tr = gru_run(&p, d, rev, self.lbr);
            write_steps(&mut y, tr.iter().map(|st| st.h.as_slice()), d, rev, nd);
            if let Some(last) = tr.last() {
                yh[d * n * h..(d + 1) * n * h].copy_from_slice(&last.h);
            }
        }
        Ok((
            vec![fval(vec![t, nd, n, h], y), fval(vec![nd, n, h], yh)],
            Saved::Nothing,
        ))
    }

    fn backward(&self, b: &Backward<'_>) -> Result<Grads, ModelError> {
        let p = rnn_inputs(b.node, b.ins, self.hidden, self.dirs.len(), 3)?;
        let gs = gru_backward(&p, &self.dirs, self.lbr, b.gouts, b.need);
        Ok(b.place(gs))
    }
}

/// The start of an LSTM (4 gates) or GRU (3 gates) forward pass over
/// `nd` directions: the checked inputs, the output `Y` and the per-step
/// gate work charged to the pass's budget, and `Y` zeroed.
fn forward_start<'a>(
    cx: &Cx<'a>,
    hidden: usize,
    nd: usize,
    gates: usize,
) -> Result<(RnnInputs<'a>, Vec<f32>), ModelError> {
    let p = rnn_inputs(cx.node, cx.ins, hidden, nd, gates)?;
    let (t, n, h) = (p.t, p.n, p.h);
    cx.alloc(&[t, nd, n, h])?;
    cx.work(&[t, nd, n, gates * h, p.i + h])?;
    Ok((p, vec![0.0f32; t * nd * n * h]))
}

/// Adds the gradient of `Y` (laid out as [`write_steps`] writes it) at
/// time `ti`, direction `d`, to `dh`, the gradient of that step's hidden
/// state.
fn add_step_grad(dh: &mut [f32], gy: Option<&[f32]>, ti: usize, d: usize, nd: usize) {
    if let Some(g) = gy {
        let nh = dh.len();
        let off = (ti * nd + d) * nh;
        dh.iter_mut()
            .zip(&g[off..off + nh])
            .for_each(|(a, b)| *a += b);
    }
}

/// Writes direction `d`'s hidden states (in the order it ran them) into
/// `y`, laid out `[t, nd, n * h]` in time order.
fn write_steps<'s>(
    y: &mut [f32],
    hs: impl ExactSizeIterator<Item = &'s [f32]>,
    d: usize,
    rev: bool,
    nd: usize,
) {
    let t = hs.len();
    for (k, hk) in hs.enumerate() {
        let ti = if rev { t - 1 - k } else { k };
        let nh = hk.len();
        y[(ti * nd + d) * nh..(ti * nd + d + 1) * nh].copy_from_slice(hk);
    }
}

/// Inputs of an LSTM or GRU node, checked, with defaults filled in.
struct RnnInputs<'a> {
    t: usize,
    n: usize,
    i: usize,
    h: usize,
    x: &'a [f32],
    w: &'a [f32],
    r: &'a [f32],
    /// `[dirs, 8h]` (input then recurrent biases); zeros when absent.
    b: Vec<f32>,
    h0: Vec<f32>,
    c0: Vec<f32>,
}

impl RnnInputs<'_> {
    /// Zero gradients of X, W, R, B and initial_h.
    fn zero_grads(&self) -> [Vec<f32>; 5] {
        [self.x, self.w, self.r, &self.b, &self.h0].map(|v| vec![0.0f32; v.len()])
    }
}

/// `gates`: 4 for LSTM, 3 for GRU.
fn rnn_inputs<'a>(
    node: &Node,
    ins: &[Option<&'a Val>],
    h: usize,
    nd: usize,
    gates: usize,
) -> Result<RnnInputs<'a>, ModelError> {
    let nm = node.name.as_str();
    let x = need_in(ins, 0, node)?;
    let [t, n, i] = x.shape() else {
        return Err(shape_err(
            node,
            format!("X must be [seq, batch, input], got {:?}", x.shape()),
        ));
    };
    let (t, n, i) = (*t, *n, *i);
    let w = need_in(ins, 1, node)?;
    let r = need_in(ins, 2, node)?;
    if w.shape() != [nd, gates * h, i] || r.shape() != [nd, gates * h, h] {
        return Err(shape_err(
            node,
            format!(
                "W {:?} / R {:?} for hidden {h}, input {i}",
                w.shape(),
                r.shape()
            ),
        ));
    }
    let opt = |k: usize, len: usize, what: &str| -> Result<Vec<f32>, ModelError> {
        match ins.get(k).copied().flatten() {
            None => Ok(vec![0.0; len]),
            Some(v) if v.numel() == len => Ok(v.f(nm)?.to_vec()),
            Some(v) => Err(shape_err(node, format!("{what} {:?}", v.shape()))),
        }
    };
    if let Some(sl) = ins.get(4).copied().flatten() {
        if sl.ints().iter().any(|&l| l != t as i64) {
            return Err(ModelError::Unsupported {
                op: format!("{}(sequence_lens shorter than the sequence)", node.op_type),
                node: node.name.clone(),
            });
        }
    }
    checked_numel(&[t, nd, n, gates * h], nm)?;
    Ok(RnnInputs {
        t,
        n,
        i,
        h,
        x: x.f(nm)?,
        w: w.f(nm)?,
        r: r.f(nm)?,
        b: opt(3, nd * 2 * gates * h, "B")?,
        h0: opt(5, nd * n * h, "initial_h")?,
        c0: opt(6, nd * n * h, "initial_c")?,
    })
}

/// One LSTM step's state: activated gates `[n, 4h]` (i, o, f, c~), the cell
/// and hidden state after the step.
struct LstmStep {
    gates: Vec<f32>,
    c: Vec<f32>,
    h: Vec<f32>,
}

fn sigm(v: f32) -> f32 {
    1.0 / (1.0 + (-v).exp())
}

/// Runs direction `d` over the sequence (in processing order).
fn lstm_run(p: &RnnInputs, d: usize, rev: bool) -> Vec<LstmStep> {
    let (n, i, h) = (p.n, p.i, p.h);
    let w = &p.w[d * 4 * h * i..(d + 1) * 4 * h * i];
    let r = &p.r[d * 4 * h * h..(d + 1) * 4 * h * h];
    let b = &p.b[d * 8 * h..(d + 1) * 8 * h];
    let mut hp = p.h0[d * n * h..(d + 1) * n * h].to_vec();
    let mut cp = p.c0[d * n * h..(d + 1) * n * h].to_vec();
    let mut out = Vec::with_capacity(p.t);
    for k in 0..p.t {
        let ti = if rev { p.t - 1 - k } else { k };
        let xt = &p.x[ti * n * i..(ti + 1) * n * i];
        let mut g = vec![0.0f32; n * 4 * h];
        for b_ in 0..n {
            let (xr, hr) = (&xt[b_ * i..(b_ + 1) * i], &hp[b_ * h..(b_ + 1) * h]);
            for j in 0..4 * h {
                let mut z = b[j] + b[4 * h + j];
                let wr = &w[j * i..(j + 1) * i];
                z += wr.iter().zip(xr).map(|(a, c)| a * c).sum::<f32>();
                let rr = &r[j * h..(j + 1) * h];
                z += rr.iter().zip(hr).map(|(a, c)| a * c).sum::<f32>();
                g[b_ * 4 * h + j] = if j >= 3 * h { z.tanh() } else { sigm(z) };
            }
        }
        let mut c = vec![0.0f32; n * h];
        let mut hn = vec![0.0f32; n * h];
        for b_ in 0..n {
            let gb = &g[b_ * 4 * h..(b_ + 1) * 4 * h];
            for u in 0..h {
                let (ig, og, fg, cg) = (gb[u], gb[h + u], gb[2 * h + u], gb[3 * h + u]);
                let cv = fg * cp[b_ * h + u] + ig * cg;
                c[b_ * h + u] = cv;
                hn[b_ * h + u] = og * cv.tanh();
            }
        }
        hp.clone_from(&hn);
        cp.clone_from(&c);
        out.push(LstmStep { gates: g, c, h: hn });
    }
    out
}

/// The gradient of one direction's final state (`sl` of the state
/// output's gradient), zeros when nothing downstream used it.
fn state_grad(g: &Option<Vec<f32>>, sl: std::ops::Range<usize>) -> Vec<f32> {
    let len = sl.len();
    g.as_ref().map_or(vec![0.0; len], |g| g[sl].to_vec())
}

/// The gradients of a recurrent node's inputs, in input order, kept where
/// `need` asks for them (input 4, sequence_lens, never has one).
fn pick_grads(need: &[bool], grads: Vec<Vec<f32>>) -> Vec<Option<Vec<f32>>> {
    grads
        .into_iter()
        .enumerate()
        .map(|(k, v)| (k != 4 && need.get(k).copied().unwrap_or(false)).then_some(v))
        .collect()
}

/// Backpropagation through time. Returns gradients for inputs
/// X, W, R, B, (sequence_lens), initial_h, initial_c.
fn lstm_backward(
    p: &RnnInputs,
    dirs: &[bool],
    gouts: &[Option<Vec<f32>>],
    need: &[bool],
) -> Result<Vec<Option<Vec<f32>>>, ModelError> {
    let (t, n, i, h, nd) = (p.t, p.n, p.i, p.h, dirs.len());
    let gy = gouts.first().cloned().flatten();
    let gyh = gouts.get(1).cloned().flatten();
    let gyc = gouts.get(2).cloned().flatten();
    let [mut dx, mut dw, mut dr, mut db, mut dh0] = p.zero_grads();
    let mut dc0 = vec![0.0f32; p.c0.len()];
    for (d, &rev) in dirs.iter().enumerate() {
        let tr = lstm_run(p, d, rev);
        let w = &p.w[d * 4 * h * i..(d + 1) * 4 * h * i];
        let r = &p.r[d * 4 * h * h..(d + 1) * 4 * h * h];
        let sl = d * n * h..(d + 1) * n * h;
        let mut dh_next = state_grad(&gyh, sl.clone());
        let mut dc_next = state_grad(&gyc, sl.clone());
        for k in (0..t).rev() {
            let ti = if rev { t - 1 - k } else { k };
            let st = &tr[k];
            let (hprev, cprev): (&[f32], &[f32]) = if k == 0 {
                (&p.h0[sl.clone()], &p.c0[sl.clone()])
            } else {
                (&tr[k - 1].h, &tr[k - 1].c)
            };
            add_step_grad(&mut dh_next, gy.as_deref(), ti, d, nd);
            let mut dz = vec![0.0f32; n * 4 * h];
            let mut dc_prev = vec![0.0f32; n * h];
            for b_ in 0..n {
                let gb = &st.gates[b_ * 4 * h..(b_ + 1) * 4 * h];
                for u in 0..h {
                    let (ig, og, fg, cg) = (gb[u], gb[h + u], gb[2 * h + u], gb[3 * h + u]);
                    let q = b_ * h + u;
                    let tc = st.c[q].tanh();
                    let dhv = dh_next[q];
                    let dcv = dc_next[q] + dhv * og * (1.0 - tc * tc);
                    let z = &mut dz[b_ * 4 * h..(b_ + 1) * 4 * h];
                    z[u] = dcv * cg * ig * (1.0 - ig);
                    z[h + u] = dhv * tc * og * (1.0 - og);
                    z[2 * h + u] = dcv * cprev[q] * fg * (1.0 - fg);
                    z[3 * h + u] = dcv * ig * (1.0 - cg * cg);
                    dc_prev[q] = dcv * fg;
                }
            }
            let xt = &p.x[ti * n * i..(ti + 1) * n * i];
            let mut dh_prev = vec![0.0f32; n * h];
            for b_ in 0..n {
                let zb = &dz[b_ * 4 * h..(b_ + 1) * 4 * h];
                for (j, &zj) in zb.iter().enumerate() {
                    if zj == 0.0 {
                        continue;
                    }
                    db[d * 8 * h + j] += zj;
                    db[d * 8 * h + 4 * h + j] += zj;
                    for a in 0..i {
                        dx[ti * n * i + b_ * i + a] += zj * w[j * i + a];
                        dw[d * 4 * h * i + j * i + a] += zj * xt[b_ * i + a];
                    }
                    for a in 0..h {
                        dh_prev[b_ * h + a] += zj * r[j * h + a];
                        dr[d * 4 * h * h + j * h + a] += zj * hprev[b_ * h + a];
                    }
                }
            }
            dh_next = dh_prev;
            dc_next = dc_prev;
        }
        dh0[sl.clone()].copy_from_slice(&dh_next);
        dc0[sl].copy_from_slice(&dc_next);
    }
    Ok(pick_grads(need, vec![dx, dw, dr, db, vec![], dh0, dc0]))
}

/// One GRU step: gates z, r, n (`[n, h]` each, batch-major), the
/// recurrent pre-activation of the candidate `R_h h + Rb_h` (used when
/// `linear_before_reset`), and the new hidden state.
struct GruStep {
    z: Vec<f32>,
    r: Vec<f32>,
    c: Vec<f32>,
    rh: Vec<f32>,
    h: Vec<f32>,
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn gru_run(p: &RnnInputs, d: usize, rev: bool, lbr: bool) -> Vec<GruStep> {
    let (n, i, h) = (p.n, p.i, p.h);
    let w = &p.w[d * 3 * h * i..(d + 1) * 3 * h * i];
    let r = &p.r[d * 3 * h * h..(d + 1) * 3 * h * h];
    let b = &p.b[d * 6 * h..(d + 1) * 6 * h];
    let mut hp = p.h0[d * n * h..(d + 1) * n * h].to_vec();
    let mut out = Vec::with_capacity(p.t);
    for k in 0..p.t {
        let ti = if rev { p.t - 1 - k } else { k };
        let xt = &p.x[ti * n * i..(ti + 1) * n * i];
        let mut st = GruStep {
            z: vec![0.0; n * h],
            r: vec![0.0; n * h],
            c: vec![0.0; n * h],
            rh: vec![0.0; n * h],
            h: vec![0.0; n * h],
        };
        for b_ in 0..n {
            let (xr, hr) = (&xt[b_ * i..(b_ + 1) * i], &hp[b_ * h..(b_ + 1) * h]);
            for u in 0..h {
                let q = b_ * h + u;
                let pre = |g: usize| {
                    let j = g * h + u;
                    dot(&w[j * i..(j + 1) * i], xr) + b[j]
                };
                let rec = |g: usize, v: &[f32]| {
                    let j = g * h + u;
                    dot(&r[j * h..(j + 1) * h], v) + b[3 * h + j]
                };
                st.z[q] = sigm(pre(0) + rec(0, hr));
                st.r[q] = sigm(pre(1) + rec(1, hr));
                if lbr {
                    st.rh[q] = rec(2, hr);
                }
            }
            for u in 0..h {
                let q = b_ * h + u;
                let j = 2 * h + u;
                let a = dot(&w[j * i..(j + 1) * i], xr) + b[j];
                let v = if lbr {
                    a + st.r[q] * st.rh[q]
                } else {
                    let gated: Vec<f32> = (0..h).map(|m| st.r[b_ * h + m] * hr[m]).collect();
                    a + dot(&r[j * h..(j + 1) * h], &gated) + b[3 * h + j]
                };
                st.c[q] = v.tanh();
                st.h[q] = (1.0 - st.z[q]) * st.c[q] + st.z[q] * hr[u];
            }
        }
        hp.clone_from(&st.h);
        out.push(st);
    }
    out
}

/// Backpropagation through time for GRU; gradients for X, W, R, B,
/// (sequence_lens), initial_h.
fn gru_backward(
    p: &RnnInputs,
    dirs: &[bool],
    lbr: bool,
    gouts: &[Option<Vec<f32>>],
    need: &[bool],
) -> Vec<Option<Vec<f32>>> {
    let (t, n, i, h, nd) = (p.t, p.n, p.i, p.h, dirs.len());
    let gy = gouts.first().cloned().flatten();
    let gyh = gouts.get(1).cloned().flatten();
    let [mut dx, mut dw, mut dr, mut db, mut dh0] = p.zero_grads();
    for (d, &rev) in dirs.iter().enumerate() {
        let tr = gru_run(p, d, rev, lbr);
        let w = &p.w[d * 3 * h * i..(d + 1) * 3 * h * i];
        let r = &p.r[d * 3 * h * h..(d + 1) * 3 * h * h];
        let (wo, ro, bo) = (d * 3 * h * i, d * 3 * h * h, d * 6 * h);
        let sl = d * n * h..(d + 1) * n * h;
        let mut dh_next = state_grad(&gyh, sl.clone());
        for k in (0..t).rev() {
            let ti = if rev { t - 1 - k } else { k };
            let st = &tr[k];
            let hprev: &[f32] = if k == 0 {
                &p.h0[sl.clone()]
            } else {
                &tr[k - 1].h
            };
            add_step_grad(&mut dh_next, gy.as_deref(), ti, d, nd);
            let xt = &p.x[ti * n * i..(ti + 1) * n * i];
            let mut dh_prev = vec![0.0f32; n * h];
            for b_ in 0..n {
                let hr = &hprev[b_ * h..(b_ + 1) * h];
                // Pre-activation gradients of the input side (da) and the
                // recurrent side (drec) per gate row.
                let mut da = vec![0.0f32; 3 * h];
                let mut drec = vec![0.0f32; 3 * h];
                let mut dgr = vec![0.0f32; h];
                for u in 0..h {
                    let q = b_ * h + u;
                    let dhv = dh_next[q];
                    dh_prev[q] += dhv * st.z[q];
                    let dc = dhv * (1.0 - st.z[q]) * (1.0 - st.c[q] * st.c[q]);
                    let dz = dhv * (hr[u] - st.c[q]) * st.z[q] * (1.0 - st.z[q]);
                    da[u] = dz;
                    drec[u] = dz;
                    da[2 * h + u] = dc;
                    if lbr {
                        drec[2 * h + u] = dc * st.r[q];
                        dgr[u] = dc * st.rh[q];
                    }
                }
                if !lbr {
                    // Candidate's recurrent term R_h (r * h) + Rb_h.
                    for u in 0..h {
                        let j = 2 * h + u;
                        let dc = da[j];
                        db[bo + 3 * h + j] += dc;
                        for m in 0..h {
                            let rm = st.r[b_ * h + m];
                            dr[ro + j * h + m] += dc * rm * hr[m];
                            let drh = dc * r[j * h + m];
                            dgr[m] += drh * hr[m];
                            dh_prev[b_ * h + m] += drh * rm;
                        }
                    }
                }
                for u in 0..h {
                    let q = b_ * h + u;
                    let v = dgr[u] * st.r[q] * (1.0 - st.r[q]);
                    da[h + u] = v;
                    drec[h + u] = v;
                }
                for j in 0..3 * h {
                    let a = da[j];
                    db[bo + j] += a;
                    for m in 0..i {
                        dx[ti * n * i + b_ * i + m] += a * w[j * i + m];
                        dw[wo + j * i + m] += a * xt[b_ * i + m];
                    }
                    if j >= 2 * h && !lbr {
                        continue;
                    }
                    let c = drec[j];
                    db[bo + 3 * h + j] += c;
                    for m in 0..h {
                        dh_prev[b_ * h + m] += c * r[j * h + m];
                        dr[ro + j * h + m] += c * hr[m];
                    }
                }
            }
            dh_next = dh_prev;
        }
        dh0[sl].copy_from_slice(&dh_next);
    }
    pick_grads(need, vec![dx, dw, dr, db, vec![], dh0])
}
