//! Operators that move elements: Transpose, Concat, Split, Slice, Gather,
//! GatherElements, Expand, Tile, DepthToSpace and SpaceToDepth. Each backward scatters
//! the gradient back along the same index map.

use std::sync::Arc;

use super::super::{
    attrs, checked_numel, fval, ival, need_in, norm_axis, shape_err, Cx, Node, Val,
};
use super::{one, Backward, Grads, Op, Outputs, Registry};
use crate::classifier::ModelError;
use crate::kernels;

pub(super) fn register(r: &mut Registry) {
    r.add(&["Transpose"], |n, _| {
        Ok(Arc::new(Transpose {
            perm: match attrs::ints(n, "perm") {
                Some(p) => Some(attrs::sizes(&p, "perm", &n.name)?),
                None => None,
            },
        }))
    });
    r.add_with_axis("Concat", 0, |axis| Concat { axis });
    r.add(&["Split"], |n, _| {
        Ok(Arc::new(Split {
            axis: attrs::int(n, "axis", 0),
            split: attrs::ints(n, "split"),
        }))
    });
    r.add(&["Slice"], |n, opset| {
        Ok(Arc::new(Slice {
            attrs: if opset < 10 {
                Some(SliceAttrs {
                    starts: attrs::ints(n, "starts").unwrap_or_default(),
                    ends: attrs::ints(n, "ends").unwrap_or_default(),
                    axes: attrs::ints(n, "axes"),
                })
            } else {
                None
            },
        }))
    });
    r.add_with_axis("Gather", 0, |axis| Gather { axis });
    r.add_with_axis("GatherElements", 0, |axis| GatherElements { axis });
    r.add_op("Expand", Expand);
    r.add_op("Tile", Tile);
    r.add(&["DepthToSpace", "SpaceToDepth"], |n, _| {
        let block = attrs::int(n, "blocksize", 0);
        if !(1..=1024).contains(&block) {
            return Err(ModelError::Invalid(format!(
                "node '{}': blocksize {block}",
                n.name
            )));
        }
        let mode = attrs::string(n, "mode");
        if !matches!(mode.as_str(), "" | "DCR" | "CRD") {
            return Err(attrs::unsupported(n, &format!("mode={mode}")));
        }
        Ok(Arc::new(DepthSpace {
            block: block as usize,
            to_space: n.op_type == "DepthToSpace",
            dcr: mode != "CRD",
        }))
    });
}

/// Three shapes or index lists, as each function says.
type ThreeShapes = (Vec<usize>, Vec<usize>, Vec<usize>);

/// Permutes `d` (shape `s`) by `perm`; returns the new shape and data.
fn transpose<T: Copy + Default>(d: &[T], s: &[usize], perm: &[usize]) -> (Vec<usize>, Vec<T>) {
    let os: Vec<usize> = perm.iter().map(|&p| s[p]).collect();
    let ist = kernels::strides(s);
    let st: Vec<usize> = perm.iter().map(|&p| ist[p]).collect();
    let mut out = vec![T::default(); d.len()];
    kernels::for_each_bcast(&os, [&st], |o, [a]| out[o] = d[a]);
    (os, out)
}

fn inverse(perm: &[usize]) -> Vec<usize> {
    let mut inv = vec![0; perm.len()];
    for (i, &p) in perm.iter().enumerate() {
        inv[p] = i;
    }
    inv
}

#[derive(Debug)]
struct Transpose {
    /// `None`: reverse the axes.
    perm: Option<Vec<usize>>,
}

impl Transpose {
    fn perm(&self, r: usize) -> Vec<usize> {
        match &self.perm {
            Some(p) => p.clone(),
            None => (0..r).rev().collect(),
        }
    }
}

impl Op for Transpose {
    fn forward(&self, cx: &Cx<'_>) -> Result<Outputs, ModelError> {
        let x = cx.input(0)?;
        let s = x.shape();
        let perm = self.perm(s.len());
        let mut chk = perm.clone();
        chk.sort_unstable();
        if chk != (0..s.len()).collect::<Vec<_>>() {
            return Err(shape_err(cx.node, format!("bad perm {perm:?}")));
        }
        cx.alloc(s)?;
        match x {
            Val::F(_, d) => {
                let (os, o) = transpose(d, s, &perm);
                one(fval(os, o))
            }
            Val::I(_, d) => {
                let (os, o) = transpose(d, s, &perm);
                one(ival(os, o))
            }
        }
    }

    fn backward(&self, b: &Backward<'_>) -> Result<Grads, ModelError> {
        let mut res = b.none();
        if b.need(0) {
            let y = b.y()?;
            let perm = self.perm(y.shape().len());
            let (_, d) = transpose(&b.dy(), y.shape(), &inverse(&perm));
            res[0] = Some(d);
        }
        Ok(res)
    }
}

#[derive(Debug)]
struct Concat {
    axis: i64,
}

impl Op for Concat {
    fn forward(&self, cx: &Cx<'_>) -> Result<Outputs, ModelError> {
        let node = cx.node;
        let nm = node.name.as_str();
        let vs: Vec<&Val> = cx.ins.iter().flatten().copied().collect();
        let first = vs
            .first()
            .ok_or_else(|| shape_err(node, "no inputs".into()))?;
        let r = first.shape().len();
        let ax = norm_axis(self.axis, r, nm)?;
        let mut os = first.shape().to_vec();
        os[ax] = 0;
        for v in &vs {
            let s = v.shape();
            if s.len() != r
                || s.iter()
                    .enumerate()
                    .any(|(i, &d)| i != ax && d != first.shape()[i])
            {
                return Err(shape_err(node, "concat shapes differ".into()));
            }
            os[ax] += s[ax];
        }
        checked_numel(&os, nm)?;
        cx.alloc(&os)?;
        let outer: usize = os[..ax].iter().product();
        let inner: usize = os[ax + 1..].iter().product();
        if vs.iter().all(|v| !v.is_float()) {
            let mut out = Vec::new();
            for o in 0..outer {
                for v in &vs {
                    let d = v.ints();
                    let l = v.shape()[ax] * inner;
                    out.extend_from_slice(&d[o * l..(o + 1) * l]);
                }
            }
            return one(ival(os, out));
        }
        let fs: Vec<Vec<f32>> = vs.iter().map(|v| v.to_f32()).collect();
        let mut out = Vec::with_capacity(os.iter().product());
        for o in 0..outer {
            for (v, d) in vs.iter().zip(&fs) {
                let l = v.shape()[ax] * inner;
                out.extend_from_slice(&d[o * l..(o + 1) * l]);
            }
        }
        one(fval(os, out))
    }

    fn backward(&self, b: &Backward<'_>) -> Result<Grads, ModelError> {
        let mut res = b.none();
        let dy = b.dy();
        let y = b.y()?;
        let os = y.shape();
        let ax = norm_axis(self.axis, os.len(), b.name())?;
        let outer: usize = os[..ax].iter().product();
        let inner: usize = os[ax + 1..].iter().product();
        let mut off = 0;
        for (i, v) in b.ins.iter().enumerate() {
            let Some(v) = v else { continue };
            let l = v.shape()[ax] * inner;
            if b.need(i) {
                let mut g = Vec::with_capacity(outer * l);
                for o in 0..outer {
                    let base = o * os[ax] * inner + off;
                    g.extend_from_slice(&dy[base..base + l]);
                }
                res[i] = Some(g);
            }
            off += l;
        }
        Ok(res)
    }
}

#[derive(Debug)]
struct Split {
    axis: i64,
    /// From the attribute (before opset 13); `None`: from input 1, or
    /// equal parts.
    split: Option<Vec<i64>>,
}

impl Split {
    fn sizes(
        &self,
        node: &Node,
        ins: &[Option<&Val>],
        dim: usize,
    ) -> Result<Vec<usize>, ModelError> {
        let sp = match &self.split {
            Some(s) => Some(s.clone()),
            None => ins.get(1).copied().flatten().map(|v| v.ints()),
        };
        let parts = match sp {
            Some(s) => attrs::sizes(&s, "split", &node.name)?,
            None => {
                let k = node.outputs.len().max(1);
                let each = dim.div_ceil(k);
                (0..k)
                    .map(|i| each.min(dim.saturating_sub(i * each)))
                    .collect()
            }
        };
        if parts.iter().sum::<usize>() != dim || parts.len() != node.outputs.len() {
            return Err(shape_err(node, format!("split {parts:?} of {dim}")));
        }
        Ok(parts)
    }

    /// The split of input shape `s`: its axis, the part sizes along it,
    /// and the element counts before and after the axis.
    fn layout(
        &self,
        node: &Node,
        ins: &[Option<&Val>],
        s: &[usize],
    ) -> Result<(usize, Vec<usize>, usize, usize), ModelError> {
        let ax = norm_axis(self.axis, s.len(), &node.name)?;
        let parts = self.sizes(node, ins, s[ax])?;
        Ok((
            ax,
            parts,
            s[..ax].iter().product(),
            s[ax + 1..].iter().product(),
        ))
    }
}

impl Op for Split {
    fn forward(&self, cx: &Cx<'_>) -> Result<Outputs, ModelError> {
        let x = cx.input(0)?;
        let s = x.shape();
        let (ax, parts, outer, inner) = self.layout(cx.node, cx.ins, s)?;
        let xd = x.f(cx.name())?;
        cx.alloc(s)?;
        let mut outs = Vec::new();
        let mut off = 0;
        for &p in &parts {
            let mut d = Vec::with_capacity(outer * p * inner);
            for o in 0..outer {
                let base = (o * s[ax] + off) * inner;
                d.extend_from_slice(&xd[base..base + p * inner]);
            }
            let mut os = s.to_vec();
            os[ax] = p;
            outs.push(fval(os, d));
            off += p;
        }
        Ok((outs, super::super::Saved::Nothing))
    }

    fn backward(&self, b: &Backward<'_>) -> Result<Grads, ModelError> {
        let mut res = b.none();
        if b.need(0) {
            let x = b.input(0)?;
            let s = x.shape();
            let (ax, parts, outer, inner) = self.layout(b.node, b.ins, s)?;
            let mut dx = vec![0.0f32; x.numel()];
            let mut off = 0;
            for (k, &p) in parts.iter().enumerate() {
                if let Some(Some(g)) = b.gouts.get(k) {
                    for o in 0..outer {
                        let base = (o * s[ax] + off) * inner;
                        dx[base..base + p * inner]
                            .copy_from_slice(&g[o * p * inner..(o + 1) * p * inner]);
                    }
                }
                off += p;
            }
            res[0] = Some(dx);
        }
        Ok(res)
    }
}

/// Slice's attributes before opset 10 (inputs after).
#[derive(Debug)]
struct SliceAttrs {
    starts: Vec<i64>,
    ends: Vec<i64>,
    axes: Option<Vec<i64>>,
}

#[derive(Debug)]
struct Slice {
    attrs: Option<SliceAttrs>,
}

/// Per axis: (first index, step, count).
pub(super) type SlicePlan = Vec<(i64, i64, usize)>;

impl Slice {
    fn plan(
        &self,
        node: &Node,
        ins: &[Option<&Val>],
        s: &[usize],
    ) -> Result<SlicePlan, ModelError> {
        let (starts, ends, axes, steps) = match &self.attrs {
            Some(a) => (a.starts.clone(), a.ends.clone(), a.axes.clone(), None),
            None => (
                need_in(ins, 1, node)?.ints(),
                need_in(ins, 2, node)?.ints(),
                ins.get(3).copied().flatten().map(|v| v.ints()),
                ins.get(4).copied().flatten().map(|v| v.ints()),
            ),
        };
        let r = s.len();
        let axes: Vec<i64> = axes.unwrap_or_else(|| (0..starts.len() as i64).collect());
        if starts.len() != axes.len() || ends.len() != axes.len() {
            return Err(shape_err(node, "starts/ends/axes lengths differ".into()));
        }
        let mut plan: SlicePlan = s.iter().map(|&d| (0, 1, d)).collect();
        for (j, &a) in axes.iter().enumerate() {
            let ax = norm_axis(a, r, &node.name)?;
            let dim = s[ax] as i64;
            let step = steps.as_ref().and_then(|v| v.get(j).copied()).unwrap_or(1);
            if step == 0 {
                return Err(shape_err(node, "slice step 0".into()));
            }
            let clampv = |v: i64, lo: i64, hi: i64| v.max(lo).min(hi);
            let mut st = starts[j];
            let mut en = ends[j];
            if st < 0 {
                st += dim;
            }
            if en < 0 {
                en += dim;
            }
            let count = if step > 0 {
                st = clampv(st, 0, dim);
                en = clampv(en, 0, dim);
                if en > st {
                    (en - st + step - 1) / step
                } else {
                    0
                }
            } else {
                st = clampv(st, -1, dim - 1);
                en = clampv(en, -1, dim - 1);
                if st > en {
                    (st - en + (-step) - 1) / (-step)
                } else {
                    0
                }
            };
            plan[ax] = (st, step, count as usize);
        }
        Ok(plan)
    }
}

/// Calls `f(out_idx, in_idx)` for each element of a strided slice of a
/// tensor of shape `s`.
pub(super) fn for_each_slice(
    s: &[usize],
    plan: &[(i64, i64, usize)],
    mut f: impl FnMut(usize, usize),
) {
    let out: Vec<usize> = plan.iter().map(|p| p.2).collect();
    let st = kernels::strides(s);
    let step: Vec<isize> = plan
        .iter()
        .zip(&st)
        .map(|(p, &t)| p.1 as isize * t as isize)
        .collect();
    let base: isize = plan
        .iter()
        .zip(&st)
        .map(|(p, &t)| p.0 as isize * t as isize)
        .sum();
    let total: usize = out.iter().product();
    let mut idx = vec![0usize; out.len()];
    let mut off = base;
    for o in 0..total {
        f(o, off as usize);
        let mut d = out.len();
        while d > 0 {
            d -= 1;
            idx[d] += 1;
            off += step[d];
            if idx[d] < out[d] {
                break;
            }
            off -= step[d] * out[d] as isize;
            idx[d] = 0;
        }
    }
}

impl Op for Slice {
    fn forward(&self, cx: &Cx<'_>) -> Result<Outputs, ModelError> {
        let node = cx.node;
        let x = cx.input(0)?;
        let s = x.shape();
        let plan = self.plan(node, cx.ins, s)?;
        let os: Vec<usize> = plan.iter().map(|p| p.2).collect();
        checked_numel(&os, &node.name)?;
        let n = cx.alloc(&os)?;
        match x {
            Val::F(_, d) => {
                let mut o = vec![0.0; n];
                for_each_slice(s, &plan, |a, b| o[a] = d[b]);
                one(fval(os, o))
            }
            Val::I(_, d) => {
                let mut o = vec![0; n];
                for_each_slice(s, &plan, |a, b| o[a] = d[b]);
                one(ival(os, o))
            }
        }
    }

    fn backward(&self, b: &Backward<'_>) -> Result<Grads, ModelError> {
        let mut res = b.none();
        if b.need(0) {
            let x = b.input(0)?;
            let plan = self.plan(b.node, b.ins, x.shape())?;
            let dy = b.dy();
            let mut dx = vec![0.0f32; x.numel()];
            for_each_slice(x.shape(), &plan, |a, i| dx[i] += dy[a]);
            res[0] = Some(dx);
        }
        Ok(res)
    }
}

#[derive(Debug)]
struct Gather {
    axis: i64,
}

impl Gather {
    /// Output shape and the flat source index of each output element.
    fn map(&self, node: &Node, s: &[usize], ind: &Val) -> Result<Gathered, ModelError> {
        let ax = norm_axis(self.axis, s.len(), &node.name)?;
        let idx = ind.ints();
        let dim = s[ax] as i64;
        let outer: usize = s[..ax].iter().product();
        let inner: usize = s[ax + 1..].iter().product();
        let mut os = s[..ax].to_vec();
        os.extend_from_slice(ind.shape());
        os.extend_from_slice(&s[ax + 1..]);
        checked_numel(&os, &node.name)?;
        let mut map = Vec::with_capacity(os.iter().product());
        for o in 0..outer {
            for &i in &idx {
                let j = wrap_index(i, dim).ok_or_else(|| bad_index(node, i, dim))?;
                let base = (o * s[ax] + j) * inner;
                map.extend(base..base + inner);
            }
        }
        Ok((os, map))
    }
}

impl Op for Gather {
    fn forward(&self, cx: &Cx<'_>) -> Result<Outputs, ModelError> {
        gather_forward(cx, &|node, s, ind| self.map(node, s, ind))
    }

    fn backward(&self, b: &Backward<'_>) -> Result<Grads, ModelError> {
        gather_backward(b, &|node, s, ind| self.map(node, s, ind))
    }
}

/// The output shape and the flat input index each output element reads.
type Gathered = (Vec<usize>, Vec<usize>);

/// Where an op reads each output element from: Gather and GatherElements.
type IndexMap<'a> = dyn Fn(&Node, &[usize], &Val) -> Result<Gathered, ModelError> + 'a;

/// An index `i` on an axis of length `dim`, negative counting from the end.
fn wrap_index(i: i64, dim: i64) -> Option<usize> {
    let j = if i < 0 { i + dim } else { i };
    (0..dim).contains(&j).then_some(j as usize)
}

fn bad_index(node: &Node, i: i64, dim: i64) -> ModelError {
    shape_err(node, format!("gather index {i} out of range {dim}"))
}

/// Forward of an index-map op: output element `o` is `x[map[o]]`.
fn gather_forward(cx: &Cx<'_>, map: &IndexMap<'_>) -> Result<Outputs, ModelError> {
    let x = cx.input(0)?;
    let (os, map) = map(cx.node, x.shape(), cx.input(1)?)?;
    cx.alloc(&os)?;
    match x {
        Val::F(_, d) => one(fval(os, map.iter().map(|&i| d[i]).collect())),
        Val::I(_, d) => one(ival(os, map.iter().map(|&i| d[i]).collect())),
    }
}

/// Backward of an index-map op: scatter-add of the output gradient
/// (repeated indices accumulate).
fn gather_backward(b: &Backward<'_>, map: &IndexMap<'_>) -> Result<Grads, ModelError> {
    let mut res = b.none();
    if b.need(0) {
        let x = b.input(0)?;
        let (_, map) = map(b.node, x.shape(), b.input(1)?)?;
        let dy = b.dy();
        let mut dx = vec![0.0f32; x.numel()];
        for (o, &i) in map.iter().enumerate() {
            dx[i] += dy[o];
        }
        res[0] = Some(dx);
    }
    Ok(res)
}

/// `out[i..] = data[i.. with axis coordinate indices[i..]]`: the output
/// has the indices' shape (`torch.gather`).
#[derive(Debug)]
struct GatherElements {
    axis: i64,
}

impl GatherElements {
    /// Output shape and the flat data index each output element reads.
    fn map(&self, node: &Node, s: &[usize], ind: &Val) -> Result<Gathered, ModelError> {
        let is = ind.shape();
        let ax = norm_axis(self.axis, s.len(), &node.name)?;
        if is.len() != s.len()
            || is
                .iter()
                .zip(s)
                .enumerate()
                .any(|(a, (&i, &d))| a != ax && i > d)
        {
            return Err(shape_err(
                node,
                format!("indices {is:?} do not fit data {s:?} on axis {ax}"),
            ));
        }
        checked_numel(is, &node.name)?;
        let idx = ind.ints();
        let dim = s[ax] as i64;
        let ds = kernels::strides(s);
        // Data offset of each index position with the axis coordinate 0.
        let base: Vec<usize> = ds
            .iter()
            .enumerate()
            .map(|(a, &d)| if a == ax { 0 } else { d })
            .collect();
        let mut map = vec![0usize; idx.len()];
        let mut bad = None;
        kernels::for_each_bcast(is, [&base], |o, [b]| {
            let i = idx[o];
            match wrap_index(i, dim) {
                Some(j) => map[o] = b + j * ds[ax],
                None => bad = Some(i),
            }
        });
        if let Some(i) = bad {
            return Err(bad_index(node, i, dim));
        }
        Ok((is.to_vec(), map))
    }
}

impl Op for GatherElements {
    fn forward(&self, cx: &Cx<'_>) -> Result<Outputs, ModelError> {
        gather_forward(cx, &|node, s, ind| self.map(node, s, ind))
    }

    fn backward(&self, b: &Backward<'_>) -> Result<Grads, ModelError> {
        gather_backward(b, &|node, s, ind| self.map(node, s, ind))
    }
}

/// Broadcast to the shape given by input 1.
#[derive(Debug)]
struct Expand;

impl Op for Expand {
    fn forward(&self, cx: &Cx<'_>) -> Result<Outputs, ModelError> {
        let x = cx.input(0)?;
        let t = attrs::sizes(&cx.input(1)?.ints(), "shape", cx.name())?;
        let os = kernels::bcast_shape(x.shape(), &t)
            .ok_or_else(|| shape_err(cx.node, "expand shape".into()))?;
        checked_numel(&os, cx.name())?;
        cx.alloc(&os)?;
        let view = os.clone();
        bcast_copy(x, os, &view, x.shape())
    }

    fn backward(&self, b: &Backward<'_>) -> Result<Grads, ModelError> {
        let mut res = b.none();
        if b.need(0) {
            let x = b.input(0)?;
            let y = b.y()?;
            res[0] = Some(kernels::reduce_to(&b.dy(), y.shape(), x.shape()));
        }
        Ok(res)
    }
}

/// Output `os` (whose row-major order is that of `view`) filled from `x`
/// read as `x_view` broadcast against `view` (Expand, and Tile's 2r-dim
/// views).
fn bcast_copy(
    x: &Val,
    os: Vec<usize>,
    view: &[usize],
    x_view: &[usize],
) -> Result<Outputs, ModelError> {
    fn copy<T: Copy + Default>(d: &[T], view: &[usize], st: &[usize]) -> Vec<T> {
        let mut o = vec![T::default(); view.iter().product()];
        kernels::for_each_bcast(view, [st], |i, [a]| o[i] = d[a]);
        o
    }
    let st = kernels::bcast_strides(x_view, view);
    match x {
        Val::F(_, d) => one(fval(os, copy(d, view, &st))),
        Val::I(_, d) => one(ival(os, copy(d, view, &st))),
    }
}

/// Tile as a broadcast: input `[s0, s1, ..]` viewed as `[1, s0, 1, s1, ..]`
/// against the output `[r0, s0, r1, s1, ..]`, whose row-major order is the
/// tiled tensor's. Returns the output shape and both 2r-dim views.
fn tile_plan(node: &Node, s: &[usize], reps: &[i64]) -> Result<ThreeShapes, ModelError> {
    if reps.len() != s.len() {
        return Err(shape_err(
            node,
            format!("{} repeats for rank {}", reps.len(), s.len()),
        ));
    }
    let r = attrs::sizes(reps, "repeats", &node.name)?;
    let mut os2 = Vec::with_capacity(2 * s.len());
    let mut xs2 = Vec::with_capacity(2 * s.len());
    for (&d, &k) in s.iter().zip(&r) {
        os2.extend([k, d]);
        xs2.extend([1, d]);
    }
    checked_numel(&os2, &node.name)?;
    let os = s.iter().zip(&r).map(|(d, k)| d * k).collect();
    Ok((os, os2, xs2))
}

#[derive(Debug)]
struct Tile;

impl Op for Tile {
    fn forward(&self, cx: &Cx<'_>) -> Result<Outputs, ModelError> {
        let x = cx.input(0)?;
        let reps = cx.input(1)?.ints();
        let (os, os2, xs2) = tile_plan(cx.node, x.shape(), &reps)?;
        cx.alloc(&os)?;
        bcast_copy(x, os, &os2, &xs2)
    }

    fn backward(&self, b: &Backward<'_>) -> Result<Grads, ModelError> {
        let mut res = b.none();
        if b.need(0) {
            let dy = b.dy();
            let x = b.input(0)?;
            let reps = b.input(1)?.ints();
            let (_, os2, xs2) = tile_plan(b.node, x.shape(), &reps)?;
            res[0] = Some(kernels::reduce_to(&dy, &os2, &xs2));
        }
        Ok(res)
    }
}

/// DepthToSpace (`dcr`: DCR mode, else CRD) or SpaceToDepth
/// (`to_space: false`).
#[derive(Debug)]
struct DepthSpace {
    block: usize,
    to_space: bool,
    dcr: bool,
}

impl DepthSpace {
    /// The operator as a 6-D reshape + transpose (ONNX operator
    /// definitions): the 6-D input shape, the permutation and the output
    /// shape.
    fn plan(&self, node: &Node, s: &[usize]) -> Result<ThreeShapes, ModelError> {
        let b = self.block;
        let [n, c, h, w] = s else {
            return Err(shape_err(node, format!("needs [n,c,h,w], got {s:?}")));
        };
        let (n, c, h, w) = (*n, *c, *h, *w);
        if self.to_space {
            if c % (b * b) != 0 {
                return Err(shape_err(node, format!("{c} channels, block {b}")));
            }
            let cc = c / (b * b);
            let os = vec![n, cc, h * b, w * b];
            Ok(if self.dcr {
                (vec![n, b, b, cc, h, w], vec![0, 3, 4, 1, 5, 2], os)
            } else {
                (vec![n, cc, b, b, h, w], vec![0, 1, 4, 2, 5, 3], os)
            })
        } else {
            if h % b != 0 || w % b != 0 {
                return Err(shape_err(node, format!("{h}x{w} not divisible by {b}")));
            }
            Ok((
                vec![n, c, h / b, b, w / b, b],
                vec![0, 3, 5, 1, 2, 4],
                vec![n, c * b * b, h / b, w / b],
            ))
        }
    }
}

impl Op for DepthSpace {
    fn forward(&self, cx: &Cx<'_>) -> Result<Outputs, ModelError> {
        let x = cx.input(0)?;
        let (s6, perm, os) = self.plan(cx.node, x.shape())?;
        cx.alloc(&os)?;
        match x {
            Val::F(_, d) => one(fval(os, transpose(d, &s6, &perm).1)),
            Val::I(_, d) => one(ival(os, transpose(d, &s6, &perm).1)),
        }
    }

    fn backward(&self, b: &Backward<'_>) -> Result<Grads, ModelError> {
        let mut res = b.none();
        if b.need(0) {
            let dy = b.dy();
            let x = b.input(0)?;
            let (s6, perm, _) = self.plan(b.node, x.shape())?;
            let ts: Vec<usize> = perm.iter().map(|&p| s6[p]).collect();
            res[0] = Some(transpose(&dy, &ts, &inverse(&perm)).1);
        }
        Ok(res)
    }
}
