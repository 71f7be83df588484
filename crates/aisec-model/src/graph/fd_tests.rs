//! Finite-difference checks of every operator's backward pass, for the
//! input and for every float weight.

use super::*;
use crate::onnx::proto::{AttrVal, GraphP, NodeP, TensorP, ValueInfoP};

/// Distinct, well-separated pseudo-random values in [-1, 1] (a shuffled
/// grid, so max-pool ties and ReLU kinks are at least 2/n apart).
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut idx: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let j = (s >> 33) as usize % (i + 1);
        idx.swap(i, j);
    }
    idx.iter()
        .map(|&k| ((k as f32 + 0.5) / n as f32) * 2.0 - 1.0)
        .collect()
}

fn node(op: &str, ins: &[&str], outs: &[&str], attrs: Vec<(&str, AttrVal)>) -> NodeP {
    NodeP {
        name: format!("{op}_node"),
        op_type: op.into(),
        domain: String::new(),
        inputs: ins.iter().map(|s| s.to_string()).collect(),
        outputs: outs.iter().map(|s| s.to_string()).collect(),
        attrs: attrs.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
    }
}

fn ints(v: &[i64]) -> AttrVal {
    AttrVal::Is(v.to_vec())
}

fn wt(name: &str, dims: &[usize], seed: u64) -> TensorP {
    TensorP {
        name: name.into(),
        dims: dims.to_vec(),
        data: TensorData::F32(values(dims.iter().product(), seed)),
    }
}

fn it(name: &str, dims: &[usize], v: &[i64]) -> TensorP {
    TensorP {
        name: name.into(),
        dims: dims.to_vec(),
        data: TensorData::I64(v.to_vec()),
    }
}

/// Positive weights (variances, divisors).
fn pos(name: &str, dims: &[usize], seed: u64) -> TensorP {
    let mut t = wt(name, dims, seed);
    if let TensorData::F32(v) = &mut t.data {
        v.iter_mut().for_each(|x| *x = 0.5 + x.abs());
    }
    t
}

fn run(g: &Graph, x: &[f32], xs: &[usize]) -> Tape {
    g.forward(Val::F(xs.to_vec(), Arc::new(x.to_vec())))
        .unwrap()
}

/// Checks d(sum(out * r))/d(x and weights) against central differences.
fn check_op(
    nodes: Vec<NodeP>,
    inits: Vec<TensorP>,
    xs: &[usize],
    opset: i64,
    xmap: fn(f32) -> f32,
) {
    let gp = GraphP {
        nodes,
        initializers: inits,
        inputs: vec![ValueInfoP {
            name: "x".into(),
            dims: xs.iter().map(|&d| Some(d)).collect(),
        }],
        outputs: vec![ValueInfoP {
            name: "y".into(),
            dims: vec![],
        }],
    };
    let mut g = Graph::compile(&gp, opset).unwrap();
    let n: usize = xs.iter().product();
    let x: Vec<f32> = values(n, 7).into_iter().map(xmap).collect();
    let tape = run(&g, &x, xs);
    let ny = g.output_of(&tape).unwrap().numel();
    let r = values(ny, 11);
    let mut wanted = vec![g.input];
    wanted.extend(g.weights.iter().map(|w| w.1));
    let grads = g.backward(&tape, r.clone(), &wanted).unwrap();
    let objective = |g: &Graph, x: &[f32]| -> f64 {
        let t = run(g, x, xs);
        match g.output_of(&t).unwrap() {
            Val::F(_, d) => d
                .iter()
                .zip(&r)
                .map(|(a, b)| f64::from(*a) * f64::from(*b))
                .sum(),
            Val::I(..) => panic!("integer output"),
        }
    };
    let h = 2e-3f32;
    let op = gp
        .nodes
        .last()
        .map(|n| n.op_type.clone())
        .unwrap_or_default();
    // Input gradient.
    let gx = grads[0].clone().unwrap_or_else(|| vec![0.0; n]);
    for i in 0..n {
        let mut xp = x.clone();
        xp[i] += h;
        let mut xm = x.clone();
        xm[i] -= h;
        let fd = (objective(&g, &xp) - objective(&g, &xm)) / (2.0 * f64::from(h));
        let an = f64::from(gx[i]);
        assert!(
            (fd - an).abs() <= 1e-2 * fd.abs().max(1.0),
            "{op}: d/dx[{i}] analytic {an} vs numeric {fd}"
        );
    }
    // Weight gradients.
    let weights = g.weights.clone();
    for (k, (name, id)) in weights.iter().enumerate() {
        let w0 = match g.consts[*id].clone().unwrap() {
            Val::F(s, d) => (s, d.to_vec()),
            Val::I(..) => continue,
        };
        let gw = grads[k + 1]
            .clone()
            .unwrap_or_else(|| vec![0.0; w0.1.len()]);
        for i in 0..w0.1.len() {
            let f = |delta: f32, g: &mut Graph| {
                let mut w = w0.1.clone();
                w[i] += delta;
                g.consts[*id] = Some(Val::F(w0.0.clone(), Arc::new(w)));
                let v = objective(g, &x);
                g.consts[*id] = Some(Val::F(w0.0.clone(), Arc::new(w0.1.clone())));
                v
            };
            let fd = (f(h, &mut g) - f(-h, &mut g)) / (2.0 * f64::from(h));
            let an = f64::from(gw[i]);
            assert!(
                (fd - an).abs() <= 1e-2 * fd.abs().max(1.0),
                "{op}: d/d{name}[{i}] analytic {an} vs numeric {fd}"
            );
        }
    }
}

fn id(v: f32) -> f32 {
    v
}

#[test]
fn conv_strided_padded_grouped_dilated() {
    check_op(
        vec![node(
            "Conv",
            &["x", "w", "b"],
            &["y"],
            vec![
                ("group", AttrVal::I(2)),
                ("pads", ints(&[1, 0, 2, 1])),
                ("strides", ints(&[2, 1])),
                ("dilations", ints(&[1, 2])),
                ("kernel_shape", ints(&[3, 2])),
            ],
        )],
        vec![wt("w", &[4, 2, 3, 2], 1), wt("b", &[4], 2)],
        &[2, 4, 5, 5],
        13,
        id,
    );
}

#[test]
fn conv_pointwise_and_1d() {
    check_op(
        vec![node("Conv", &["x", "w"], &["y"], vec![])],
        vec![wt("w", &[3, 2, 1, 1], 1)],
        &[2, 2, 3, 3],
        13,
        id,
    );
    check_op(
        vec![node(
            "Conv",
            &["x", "w", "b"],
            &["y"],
            vec![("pads", ints(&[1, 1]))],
        )],
        vec![wt("w", &[3, 2, 3], 1), wt("b", &[3], 4)],
        &[2, 2, 6],
        13,
        id,
    );
}

#[test]
fn conv_transpose_grouped_strided() {
    check_op(
        vec![node(
            "ConvTranspose",
            &["x", "w", "b"],
            &["y"],
            vec![
                ("group", AttrVal::I(2)),
                ("strides", ints(&[2, 1])),
                ("pads", ints(&[1, 0, 0, 1])),
                ("output_padding", ints(&[1, 0])),
                ("dilations", ints(&[1, 2])),
            ],
        )],
        vec![wt("w", &[4, 1, 3, 2], 1), wt("b", &[2], 2)],
        &[2, 4, 3, 3],
        13,
        id,
    );
}

#[test]
fn resize_nearest_and_linear() {
    let scales = TensorP {
        name: "s".into(),
        dims: vec![4],
        data: TensorData::F32(vec![1.0, 1.0, 2.0, 1.5]),
    };
    check_op(
        vec![
            node("Constant", &[], &["s"], vec![("value", AttrVal::T(scales))]),
            node(
                "Resize",
                &["x", "", "s"],
                &["y"],
                vec![
                    ("mode", AttrVal::S("nearest".into())),
                    (
                        "coordinate_transformation_mode",
                        AttrVal::S("asymmetric".into()),
                    ),
                    ("nearest_mode", AttrVal::S("floor".into())),
                ],
            ),
        ],
        vec![],
        &[1, 2, 2, 3],
        13,
        id,
    );
    for coord in ["half_pixel", "align_corners", "pytorch_half_pixel"] {
        check_op(
            vec![node(
                "Resize",
                &["x", "", "", "z"],
                &["y"],
                vec![
                    ("mode", AttrVal::S("linear".into())),
                    ("coordinate_transformation_mode", AttrVal::S(coord.into())),
                ],
            )],
            vec![it("z", &[4], &[1, 2, 5, 3])],
            &[1, 2, 3, 2],
            13,
            id,
        );
    }
}

#[test]
fn where_with_comparison_mask() {
    // y = Where(x > 0.1, x * w, w) with a broadcast weight.
    check_op(
        vec![
            node("Greater", &["x", "t"], &["c"], vec![]),
            node("Mul", &["x", "w"], &["xw"], vec![]),
            node("Where", &["c", "xw", "w"], &["y"], vec![]),
        ],
        vec![wt("w", &[3], 4), it("t", &[], &[0])],
        &[2, 3],
        13,
        id,
    );
    // Range/Equal/Not on integers fold or evaluate without gradients.
    check_op(
        vec![
            node("Range", &["a", "b", "d"], &["r"], vec![]),
            node("Equal", &["r", "one"], &["e"], vec![]),
            node("Not", &["e"], &["ne"], vec![]),
            node("Cast", &["ne"], &["nf"], vec![("to", AttrVal::I(1))]),
            node("Mul", &["x", "nf"], &["y"], vec![]),
        ],
        vec![
            it("a", &[], &[0]),
            it("b", &[], &[3]),
            it("d", &[], &[1]),
            it("one", &[], &[1]),
        ],
        &[2, 3],
        13,
        id,
    );
}

#[test]
fn gemm_transposes() {
    for (ta, tb) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
        let (xs, ws) = (
            if ta == 1 { [3, 2] } else { [2, 3] },
            if tb == 1 { [4, 3] } else { [3, 4] },
        );
        check_op(
            vec![node(
                "Gemm",
                &["x", "w", "c"],
                &["y"],
                vec![
                    ("transA", AttrVal::I(ta)),
                    ("transB", AttrVal::I(tb)),
                    ("alpha", AttrVal::F(0.7)),
                    ("beta", AttrVal::F(1.3)),
                ],
            )],
            vec![wt("w", &ws, 3), wt("c", &[4], 5)],
            &xs,
            13,
            id,
        );
    }
}

#[test]
fn matmul_weight_and_batched() {
    check_op(
        vec![node("MatMul", &["x", "w"], &["y"], vec![])],
        vec![wt("w", &[3, 4], 3)],
        &[2, 2, 3],
        13,
        id,
    );
    check_op(
        vec![node("MatMul", &["x", "w"], &["y"], vec![])],
        vec![wt("w", &[1, 2, 3, 2], 3)],
        &[2, 1, 4, 3],
        13,
        id,
    );
}

#[test]
fn same_shape_add_and_sub() {
    // The backward fast path for operands of the output's shape.
    for op in ["Add", "Sub"] {
        check_op(
            vec![node(op, &["x", "w"], &["y"], vec![])],
            vec![pos("w", &[2, 3, 4], 9)],
            &[2, 3, 4],
            13,
            id,
        );
    }
}

#[test]
fn broadcasting_binary_ops() {
    for op in ["Add", "Sub", "Mul", "Div"] {
        check_op(
            vec![node(op, &["x", "w"], &["y"], vec![])],
            vec![pos("w", &[3, 1], 9)],
            &[2, 3, 4],
            13,
            id,
        );
    }
    check_op(
        vec![node("Pow", &["x", "e"], &["y"], vec![])],
        vec![it("e", &[], &[2])],
        &[2, 3],
        13,
        id,
    );
    check_op(
        vec![node("Pow", &["x", "e"], &["y"], vec![])],
        vec![pos("e", &[3], 2)],
        &[2, 3],
        13,
        |v| v.abs() + 0.5,
    );
}

#[test]
fn elementwise_unary_ops() {
    for op in ["Relu", "Sigmoid", "Tanh", "Erf", "Neg", "Exp", "Abs"] {
        check_op(
            vec![node(op, &["x"], &["y"], vec![])],
            vec![],
            &[2, 5],
            13,
            id,
        );
    }
    for op in ["Sqrt", "Log"] {
        check_op(
            vec![node(op, &["x"], &["y"], vec![])],
            vec![],
            &[2, 5],
            13,
            |v| v.abs() + 0.5,
        );
    }
    check_op(
        vec![node(
            "LeakyRelu",
            &["x"],
            &["y"],
            vec![("alpha", AttrVal::F(0.1))],
        )],
        vec![],
        &[3, 4],
        13,
        id,
    );
    for approx in ["none", "tanh"] {
        check_op(
            vec![node(
                "Gelu",
                &["x"],
                &["y"],
                vec![("approximate", AttrVal::S(approx.into()))],
            )],
            vec![],
            &[3, 4],
            20,
            id,
        );
    }
}

#[test]
fn clip_opset_forms() {
    check_op(
        vec![node("Clip", &["x", "lo", "hi"], &["y"], vec![])],
        vec![
            TensorP {
                name: "lo".into(),
                dims: vec![],
                data: TensorData::F32(vec![-0.3]),
            },
            TensorP {
                name: "hi".into(),
                dims: vec![],
                data: TensorData::F32(vec![0.42]),
            },
        ],
        &[4, 5],
        13,
        id,
    );
    check_op(
        vec![node(
            "Clip",
            &["x"],
            &["y"],
            vec![("min", AttrVal::F(0.0)), ("max", AttrVal::F(0.5))],
        )],
        vec![],
        &[4, 5],
        6,
        id,
    );
}

#[test]
fn softmax_and_log_softmax() {
    for op in ["Softmax", "LogSoftmax"] {
        check_op(
            vec![node(op, &["x"], &["y"], vec![("axis", AttrVal::I(1))])],
            vec![],
            &[2, 3, 4],
            13,
            |v| 3.0 * v,
        );
        check_op(
            vec![node(op, &["x"], &["y"], vec![])],
            vec![],
            &[2, 3, 4],
            11,
            |v| 3.0 * v,
        );
    }
}

#[test]
fn pooling_variants() {
    check_op(
        vec![node(
            "MaxPool",
            &["x"],
            &["y"],
            vec![
                ("kernel_shape", ints(&[3, 3])),
                ("strides", ints(&[2, 2])),
                ("pads", ints(&[1, 1, 1, 1])),
                ("ceil_mode", AttrVal::I(1)),
            ],
        )],
        vec![],
        &[1, 2, 6, 6],
        13,
        id,
    );
    for cip in [0, 1] {
        check_op(
            vec![node(
                "AveragePool",
                &["x"],
                &["y"],
                vec![
                    ("kernel_shape", ints(&[3, 2])),
                    ("strides", ints(&[2, 2])),
                    ("pads", ints(&[1, 0, 1, 1])),
                    ("ceil_mode", AttrVal::I(1)),
                    ("count_include_pad", AttrVal::I(cip)),
                ],
            )],
            vec![],
            &[2, 1, 6, 5],
            13,
            id,
        );
    }
    check_op(
        vec![node("GlobalAveragePool", &["x"], &["y"], vec![])],
        vec![],
        &[2, 3, 2, 3],
        13,
        id,
    );
}

#[test]
fn normalizations() {
    check_op(
        vec![node(
            "BatchNormalization",
            &["x", "s", "b", "m", "v"],
            &["y"],
            vec![("epsilon", AttrVal::F(1e-3))],
        )],
        vec![
            wt("s", &[3], 1),
            wt("b", &[3], 2),
            wt("m", &[3], 3),
            pos("v", &[3], 4),
        ],
        &[2, 3, 2, 2],
        13,
        id,
    );
    check_op(
        vec![node(
            "LayerNormalization",
            &["x", "s", "b"],
            &["y"],
            vec![("axis", AttrVal::I(-1))],
        )],
        vec![wt("s", &[4], 1), wt("b", &[4], 2)],
        &[2, 3, 4],
        17,
        |v| 2.0 * v,
    );
}

#[test]
fn shape_ops() {
    check_op(
        vec![node("Flatten", &["x"], &["y"], vec![])],
        vec![],
        &[2, 3, 2],
        13,
        id,
    );
    check_op(
        vec![node("Reshape", &["x", "s"], &["y"], vec![])],
        vec![it("s", &[2], &[0, -1])],
        &[2, 3, 2],
        13,
        id,
    );
    check_op(
        vec![node(
            "Transpose",
            &["x"],
            &["y"],
            vec![("perm", ints(&[0, 2, 3, 1]))],
        )],
        vec![],
        &[2, 3, 2, 2],
        13,
        id,
    );
    check_op(
        vec![
            node("Unsqueeze", &["x", "a"], &["u"], vec![]),
            node("Squeeze", &["u", "a"], &["y"], vec![]),
        ],
        vec![it("a", &[1], &[1])],
        &[2, 3],
        13,
        id,
    );
    check_op(
        vec![
            node("Unsqueeze", &["x"], &["u"], vec![("axes", ints(&[0, 3]))]),
            node("Squeeze", &["u"], &["y"], vec![("axes", ints(&[0]))]),
        ],
        vec![],
        &[2, 3],
        11,
        id,
    );
    check_op(
        vec![node(
            "Concat",
            &["x", "w", "x"],
            &["y"],
            vec![("axis", AttrVal::I(1))],
        )],
        vec![wt("w", &[2, 1, 3], 4)],
        &[2, 2, 3],
        13,
        id,
    );
    check_op(
        vec![node(
            "Slice",
            &["x", "st", "en", "ax", "sp"],
            &["y"],
            vec![],
        )],
        vec![
            it("st", &[2], &[1, -1]),
            it("en", &[2], &[100, 0]),
            it("ax", &[2], &[1, 2]),
            it("sp", &[2], &[2, -2]),
        ],
        &[2, 5, 4],
        13,
        id,
    );
    check_op(
        vec![node("Pad", &["x", "p"], &["y"], vec![])],
        vec![it("p", &[6], &[0, 1, 2, 0, 0, 1])],
        &[2, 2, 3],
        13,
        id,
    );
    check_op(
        vec![node(
            "Split",
            &["x", "s"],
            &["a", "y"],
            vec![("axis", AttrVal::I(1))],
        )],
        vec![it("s", &[2], &[1, 3])],
        &[2, 4, 2],
        13,
        id,
    );
    check_op(
        vec![node("Expand", &["x", "s"], &["y"], vec![])],
        vec![it("s", &[3], &[3, 2, 4])],
        &[2, 1],
        13,
        id,
    );
}

#[test]
fn gather_embedding_and_reductions() {
    // Embedding lookup: gradient flows into the weight table.
    check_op(
        vec![
            node("Gather", &["emb", "idx"], &["e"], vec![]),
            node("Mul", &["e", "x"], &["y"], vec![]),
        ],
        vec![wt("emb", &[5, 3], 1), it("idx", &[2, 2], &[4, 0, 4, 2])],
        &[2, 2, 3],
        13,
        id,
    );
    check_op(
        vec![node(
            "Gather",
            &["x", "i"],
            &["y"],
            vec![("axis", AttrVal::I(1))],
        )],
        vec![it("i", &[3], &[2, 0, 2])],
        &[2, 3, 2],
        13,
        id,
    );
    check_op(
        vec![node(
            "ReduceMean",
            &["x"],
            &["y"],
            vec![("axes", ints(&[1, 2])), ("keepdims", AttrVal::I(0))],
        )],
        vec![],
        &[2, 3, 4],
        13,
        id,
    );
    check_op(
        vec![node("ReduceSum", &["x", "a"], &["y"], vec![])],
        vec![it("a", &[1], &[-1])],
        &[2, 3, 4],
        13,
        id,
    );
    check_op(
        vec![node("ReduceMean", &["x", "a"], &["y"], vec![])],
        vec![it("a", &[1], &[0])],
        &[2, 3],
        18,
        id,
    );
}

#[test]
fn shape_subgraph_is_folded_or_evaluated() {
    // x.view(x.size(0), -1) as torch exports it.
    check_op(
        vec![
            node("Shape", &["x"], &["s"], vec![]),
            node(
                "Gather",
                &["s", "zero"],
                &["n"],
                vec![("axis", AttrVal::I(0))],
            ),
            node("Unsqueeze", &["n", "ax"], &["n1"], vec![]),
            node(
                "Concat",
                &["n1", "m1"],
                &["shape"],
                vec![("axis", AttrVal::I(0))],
            ),
            node("Reshape", &["x", "shape"], &["y"], vec![]),
        ],
        vec![
            it("zero", &[], &[0]),
            it("ax", &[1], &[0]),
            it("m1", &[1], &[-1]),
        ],
        &[2, 2, 3],
        13,
        id,
    );
}

#[test]
fn unsupported_forms_are_refused() {
    let gp = GraphP {
        nodes: vec![node(
            "Pad",
            &["x", "p"],
            &["y"],
            vec![("mode", AttrVal::S("wrap".into()))],
        )],
        initializers: vec![it("p", &[4], &[0, 1, 0, 1])],
        inputs: vec![ValueInfoP {
            name: "x".into(),
            dims: vec![Some(2), Some(3)],
        }],
        outputs: vec![ValueInfoP {
            name: "y".into(),
            dims: vec![],
        }],
    };
    // Pad's pads are constant, so the node folds only once x is known: run it.
    let g = Graph::compile(&gp, 13).unwrap();
    let e = g
        .forward(Val::F(vec![2, 3], Arc::new(vec![0.0; 6])))
        .err()
        .unwrap();
    assert!(matches!(e, ModelError::Unsupported { .. }), "{e}");
    let gp2 = GraphP {
        nodes: vec![node("NonMaxSuppression", &["x"], &["y"], vec![])],
        ..gp
    };
    let e = Graph::compile(&gp2, 13).err().unwrap();
    assert!(
        matches!(e, ModelError::Unsupported { ref op, ref node } if op == "NonMaxSuppression" && node == "NonMaxSuppression_node")
    );
}

fn attr_f32(v: f32) -> AttrVal {
    AttrVal::F(v)
}

#[test]
fn activation_ops_with_parameters() {
    // Inputs scaled to [-4, 4]: HardSwish/HardSigmoid kinks (±3, ±2.5) are
    // at least 0.2 away from every sample.
    let wide = |v: f32| 4.0 * v;
    for (op, attrs) in [
        ("HardSwish", vec![]),
        ("HardSigmoid", vec![]),
        (
            "HardSigmoid",
            vec![("alpha", attr_f32(0.3)), ("beta", attr_f32(0.45))],
        ),
        ("Elu", vec![("alpha", attr_f32(0.7))]),
        ("Selu", vec![]),
        ("Celu", vec![("alpha", attr_f32(0.8))]),
        ("ThresholdedRelu", vec![("alpha", attr_f32(0.25))]),
        ("Softplus", vec![]),
        ("Softsign", vec![]),
        ("Mish", vec![]),
        ("Sin", vec![]),
        ("Cos", vec![]),
    ] {
        check_op(
            vec![node(op, &["x"], &["y"], attrs)],
            vec![],
            &[2, 5],
            13,
            wide,
        );
    }
    check_op(
        vec![node("Reciprocal", &["x"], &["y"], vec![])],
        vec![],
        &[2, 5],
        13,
        |v| v.abs() + 0.5,
    );
    // Piecewise constant: zero gradient away from the jumps (samples avoid
    // integers and half-integers).
    for op in ["Floor", "Ceil", "Round", "Sign"] {
        check_op(
            vec![node(op, &["x"], &["y"], vec![])],
            vec![],
            &[2, 5],
            13,
            |v| 2.7 * v,
        );
    }
}

#[test]
fn activation_values_match_definitions() {
    let gp = |op: &str| GraphP {
        nodes: vec![node(op, &["x"], &["y"], vec![])],
        initializers: vec![],
        inputs: vec![ValueInfoP {
            name: "x".into(),
            dims: vec![Some(5)],
        }],
        outputs: vec![ValueInfoP {
            name: "y".into(),
            dims: vec![],
        }],
    };
    let x = [-4.0f32, -1.5, 0.0, 0.5, 2.5];
    let out = |op: &str| -> Vec<f32> {
        let g = Graph::compile(&gp(op), 13).unwrap();
        let t = run(&g, &x, &[5]);
        g.output_of(&t).unwrap().f("y").unwrap().to_vec()
    };
    let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(p, q)| (p - q).abs() < 1e-6);
    // torch.nn.functional.hardswish / hardsigmoid reference values.
    assert!(close(
        &out("HardSwish"),
        &[0.0, -0.375, 0.0, 0.291_666_7, 2.291_666_7]
    ));
    assert!(close(&out("HardSigmoid"), &[0.0, 0.2, 0.5, 0.6, 1.0]));
    assert!(close(&out("Round"), &[-4.0, -2.0, 0.0, 0.0, 2.0]));
    assert!(close(
        &out("Softplus"),
        &[
            0.018_149_93,
            0.201_413_9,
            std::f32::consts::LN_2,
            0.974_076_9,
            2.578_889_6
        ]
    ));
}

#[test]
fn prelu_with_channel_slopes() {
    check_op(
        vec![node("PRelu", &["x", "s"], &["y"], vec![])],
        vec![wt("s", &[3, 1, 1], 5)],
        &[2, 3, 2, 2],
        13,
        id,
    );
}

#[test]
fn mod_float_forms_and_integer_signs() {
    for fmod in [0, 1] {
        check_op(
            vec![node(
                "Mod",
                &["x", "w"],
                &["y"],
                vec![("fmod", AttrVal::I(fmod))],
            )],
            vec![pos("w", &[3], 3)],
            &[2, 3],
            13,
            |v| 0.4 * v,
        );
    }
    let gp = |fmod: i64| GraphP {
        nodes: vec![
            node("Cast", &["x"], &["xi"], vec![("to", AttrVal::I(7))]),
            node(
                "Mod",
                &["xi", "d"],
                &["m"],
                vec![("fmod", AttrVal::I(fmod))],
            ),
            node("Cast", &["m"], &["y"], vec![("to", AttrVal::I(1))]),
        ],
        initializers: vec![it("d", &[4], &[3, -3, 3, -3])],
        inputs: vec![ValueInfoP {
            name: "x".into(),
            dims: vec![Some(4)],
        }],
        outputs: vec![ValueInfoP {
            name: "y".into(),
            dims: vec![],
        }],
    };
    // Python-style (sign of the divisor) and C fmod (sign of the dividend).
    for (fmod, want) in [(0, [2.0f32, -1.0, 1.0, -2.0]), (1, [-1.0, -1.0, 1.0, 1.0])] {
        let g = Graph::compile(&gp(fmod), 13).unwrap();
        let t = run(&g, &[-7.0, -7.0, 7.0, 7.0], &[4]);
        assert_eq!(
            g.output_of(&t).unwrap().f("y").unwrap(),
            &want[..],
            "fmod={fmod}"
        );
    }
}

#[test]
fn max_min_reductions_and_norms() {
    for op in [
        "ReduceMax",
        "ReduceMin",
        "ReduceL1",
        "ReduceL2",
        "ReduceSumSquare",
        "ReduceLogSumExp",
    ] {
        // Opset 13: axes attribute; keepdims 0.
        check_op(
            vec![node(
                op,
                &["x"],
                &["y"],
                vec![("axes", ints(&[1, -1])), ("keepdims", AttrVal::I(0))],
            )],
            vec![],
            &[2, 3, 4],
            13,
            id,
        );
        // Opset 18: axes as an input; all axes when it is absent.
        check_op(
            vec![node(op, &["x", "a"], &["y"], vec![])],
            vec![it("a", &[1], &[0])],
            &[2, 3, 2],
            18,
            id,
        );
        check_op(
            vec![node(op, &["x"], &["y"], vec![])],
            vec![],
            &[2, 3],
            18,
            id,
        );
    }
}

#[test]
fn reduce_max_splits_ties_evenly() {
    let gp = GraphP {
        nodes: vec![node(
            "ReduceMax",
            &["x"],
            &["y"],
            vec![("axes", ints(&[1]))],
        )],
        initializers: vec![],
        inputs: vec![ValueInfoP {
            name: "x".into(),
            dims: vec![Some(1), Some(4)],
        }],
        outputs: vec![ValueInfoP {
            name: "y".into(),
            dims: vec![],
        }],
    };
    let g = Graph::compile(&gp, 13).unwrap();
    let t = run(&g, &[1.0, 3.0, 3.0, -2.0], &[1, 4]);
    assert_eq!(g.output_of(&t).unwrap().f("y").unwrap(), &[3.0]);
    let gr = g.backward(&t, vec![1.0], &[g.input]).unwrap();
    assert_eq!(gr[0].as_deref(), Some(&[0.0, 0.5, 0.5, 0.0][..]));
}

#[test]
fn variadic_max_min_sum_mean_broadcast() {
    for op in ["Max", "Min", "Sum", "Mean"] {
        check_op(
            vec![node(op, &["x", "w", "v"], &["y"], vec![])],
            vec![wt("w", &[3], 4), wt("v", &[2, 1], 9)],
            &[2, 3],
            13,
            id,
        );
        check_op(
            vec![node(op, &["x"], &["y"], vec![])],
            vec![],
            &[2, 2],
            13,
            id,
        );
    }
}

#[test]
fn instance_norm_and_global_max_pool() {
    check_op(
        vec![node(
            "InstanceNormalization",
            &["x", "s", "b"],
            &["y"],
            vec![("epsilon", AttrVal::F(1e-4))],
        )],
        vec![wt("s", &[3], 1), wt("b", &[3], 2)],
        &[2, 3, 2, 3],
        13,
        |v| 2.0 * v,
    );
    check_op(
        vec![node("GlobalMaxPool", &["x"], &["y"], vec![])],
        vec![],
        &[2, 3, 2, 3],
        13,
        id,
    );
}

#[test]
fn tile_repeats_and_folds_back() {
    check_op(
        vec![node("Tile", &["x", "r"], &["y"], vec![])],
        vec![it("r", &[3], &[2, 1, 3])],
        &[2, 3, 2],
        13,
        id,
    );
    let gp = GraphP {
        nodes: vec![node("Tile", &["x", "r"], &["y"], vec![])],
        initializers: vec![it("r", &[2], &[2, 2])],
        inputs: vec![ValueInfoP {
            name: "x".into(),
            dims: vec![Some(1), Some(2)],
        }],
        outputs: vec![ValueInfoP {
            name: "y".into(),
            dims: vec![],
        }],
    };
    let g = Graph::compile(&gp, 13).unwrap();
    let t = run(&g, &[1.0, 2.0], &[1, 2]);
    let y = g.output_of(&t).unwrap();
    assert_eq!(y.shape(), &[2, 4]);
    assert_eq!(y.f("y").unwrap(), &[1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 1.0, 2.0]);
}

#[test]
fn comparison_logic_and_size_masks() {
    // y = x * (x <= t or x >= u) * (size == 6), through integer masks.
    check_op(
        vec![
            node("LessOrEqual", &["x", "t"], &["a"], vec![]),
            node("GreaterOrEqual", &["x", "u"], &["b"], vec![]),
            node("Or", &["a", "b"], &["c"], vec![]),
            node("Xor", &["c", "a"], &["d"], vec![]),
            node("And", &["c", "c"], &["e"], vec![]),
            node("Size", &["x"], &["n"], vec![]),
            node("Equal", &["n", "six"], &["k"], vec![]),
            node("And", &["e", "k"], &["f"], vec![]),
            node("Cast", &["f"], &["ff"], vec![("to", AttrVal::I(1))]),
            node("Cast", &["d"], &["df"], vec![("to", AttrVal::I(1))]),
            node("Add", &["ff", "df"], &["m"], vec![]),
            node("Mul", &["x", "m"], &["y"], vec![]),
        ],
        vec![
            TensorP {
                name: "t".into(),
                dims: vec![],
                data: TensorData::F32(vec![-0.2]),
            },
            TensorP {
                name: "u".into(),
                dims: vec![],
                data: TensorData::F32(vec![0.3]),
            },
            it("six", &[], &[6]),
        ],
        &[2, 3],
        13,
        id,
    );
}

#[test]
fn unsupported_op_error_names_op_and_node() {
    for (op, domain) in [("If", ""), ("Einsum2", ""), ("FusedConv", "com.microsoft")] {
        let mut n = node(op, &["x"], &["y"], vec![]);
        n.domain = domain.into();
        n.name = format!("/block/{op}_7");
        let gp = GraphP {
            nodes: vec![n],
            initializers: vec![],
            inputs: vec![ValueInfoP {
                name: "x".into(),
                dims: vec![Some(2)],
            }],
            outputs: vec![ValueInfoP {
                name: "y".into(),
                dims: vec![],
            }],
        };
        match Graph::compile(&gp, 13) {
            Err(ModelError::Unsupported { op: o, node }) => {
                let want = if domain.is_empty() {
                    op.to_string()
                } else {
                    format!("{domain}::{op}")
                };
                assert_eq!(o, want);
                assert_eq!(node, format!("/block/{op}_7"));
            }
            other => panic!("{op}: expected Unsupported, got {other:?}"),
        }
    }
}

fn one_node_graph(n: NodeP, inits: Vec<TensorP>, xs: &[usize]) -> Graph {
    let gp = GraphP {
        nodes: vec![n],
        initializers: inits,
        inputs: vec![ValueInfoP {
            name: "x".into(),
            dims: xs.iter().map(|&d| Some(d)).collect(),
        }],
        outputs: vec![ValueInfoP {
            name: "y".into(),
            dims: vec![],
        }],
    };
    Graph::compile(&gp, 13).unwrap()
}

#[test]
fn depth_to_space_modes_and_space_to_depth() {
    for (op, mode, xs) in [
        ("DepthToSpace", "DCR", [2, 8, 2, 3]),
        ("DepthToSpace", "CRD", [2, 8, 2, 3]),
        ("SpaceToDepth", "DCR", [2, 2, 4, 6]),
    ] {
        check_op(
            vec![node(
                op,
                &["x"],
                &["y"],
                vec![
                    ("blocksize", AttrVal::I(2)),
                    ("mode", AttrVal::S(mode.into())),
                ],
            )],
            vec![],
            &xs,
            13,
            id,
        );
    }
    // [1, 8, 1, 1] = 0..8, block 2: CRD is torch.pixel_shuffle's order.
    let x: Vec<f32> = (0..8).map(|v| v as f32).collect();
    for (mode, want) in [
        ("CRD", [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]),
        ("DCR", [0.0, 2.0, 4.0, 6.0, 1.0, 3.0, 5.0, 7.0]),
    ] {
        let g = one_node_graph(
            node(
                "DepthToSpace",
                &["x"],
                &["y"],
                vec![
                    ("blocksize", AttrVal::I(2)),
                    ("mode", AttrVal::S(mode.into())),
                ],
            ),
            vec![],
            &[1, 8, 1, 1],
        );
        let t = run(&g, &x, &[1, 8, 1, 1]);
        let y = g.output_of(&t).unwrap();
        assert_eq!(y.shape(), &[1, 2, 2, 2]);
        assert_eq!(y.f("y").unwrap(), &want[..], "{mode}");
    }
}

#[test]
fn cumsum_directions_and_argmax() {
    for (ex, rev) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
        check_op(
            vec![node(
                "CumSum",
                &["x", "a"],
                &["y"],
                vec![("exclusive", AttrVal::I(ex)), ("reverse", AttrVal::I(rev))],
            )],
            vec![it("a", &[], &[-1])],
            &[2, 4],
            13,
            id,
        );
    }
    let g = one_node_graph(
        node(
            "CumSum",
            &["x", "a"],
            &["y"],
            vec![("exclusive", AttrVal::I(1)), ("reverse", AttrVal::I(1))],
        ),
        vec![it("a", &[], &[0])],
        &[4],
    );
    let t = run(&g, &[1.0, 2.0, 3.0, 4.0], &[4]);
    assert_eq!(
        g.output_of(&t).unwrap().f("y").unwrap(),
        &[9.0, 7.0, 4.0, 0.0]
    );
    // ArgMax/ArgMin along axis 1, ties resolved first or last.
    let x = [1.0, 5.0, 5.0, 0.0, 2.0, -1.0, 2.0, 7.0];
    for (op, last, keep, want) in [
        ("ArgMax", 0, 1, vec![1i64, 3]),
        ("ArgMax", 1, 0, vec![2, 3]),
        ("ArgMin", 0, 0, vec![3, 1]),
    ] {
        let g = one_node_graph(
            node(
                op,
                &["x"],
                &["y"],
                vec![
                    ("axis", AttrVal::I(1)),
                    ("keepdims", AttrVal::I(keep)),
                    ("select_last_index", AttrVal::I(last)),
                ],
            ),
            vec![],
            &[2, 4],
        );
        let t = run(&g, &x, &[2, 4]);
        let y = g.output_of(&t).unwrap();
        assert_eq!(y.ints(), want, "{op} last={last}");
        assert_eq!(y.shape(), if keep == 1 { &[2, 1][..] } else { &[2][..] });
    }
}

#[test]
fn dropout_in_training_mode_is_refused() {
    let n = node("Dropout", &["x", "r", "t"], &["y"], vec![]);
    let mut nn = n.clone();
    nn.inputs.truncate(2);
    let gp_t = |tv: i64, nd: NodeP| GraphP {
        nodes: vec![
            node("Identity", &["x"], &["x1"], vec![]),
            NodeP {
                inputs: nd
                    .inputs
                    .iter()
                    .map(|s| if s == "x" { "x1".into() } else { s.clone() })
                    .collect(),
                ..nd
            },
        ],
        initializers: vec![
            TensorP {
                name: "r".into(),
                dims: vec![],
                data: TensorData::F32(vec![0.5]),
            },
            it("t", &[], &[tv]),
        ],
        inputs: vec![ValueInfoP {
            name: "x".into(),
            dims: vec![Some(3)],
        }],
        outputs: vec![ValueInfoP {
            name: "y".into(),
            dims: vec![],
        }],
    };
    let g = Graph::compile(&gp_t(1, n.clone()), 13).unwrap();
    match g.forward(Val::F(vec![3], Arc::new(vec![1.0; 3]))) {
        Err(ModelError::Unsupported { op, node }) => {
            assert_eq!(op, "Dropout(training_mode=1)");
            assert_eq!(node, "Dropout_node");
        }
        other => panic!("expected Unsupported, got {:?}", other.map(|_| ())),
    }
    for gp in [gp_t(0, n), gp_t(1, nn)] {
        let g = Graph::compile(&gp, 13).unwrap();
        let t = run(&g, &[1.0, 2.0, 3.0], &[3]);
        assert_eq!(g.output_of(&t).unwrap().f("y").unwrap(), &[1.0, 2.0, 3.0]);
    }
}

#[test]
fn less_and_constant_of_shape_masks() {
    // y = x * (x < t) + x * full(shape(x), 0.5)
    check_op(
        vec![
            node("Less", &["x", "t"], &["l"], vec![]),
            node("Cast", &["l"], &["lf"], vec![("to", AttrVal::I(1))]),
            node("Mul", &["x", "lf"], &["a"], vec![]),
            node("Shape", &["x"], &["s"], vec![]),
            node(
                "ConstantOfShape",
                &["s"],
                &["h"],
                vec![(
                    "value",
                    AttrVal::T(TensorP {
                        name: String::new(),
                        dims: vec![1],
                        data: TensorData::F32(vec![0.5]),
                    }),
                )],
            ),
            node("Mul", &["x", "h"], &["b"], vec![]),
            node("Add", &["a", "b"], &["y"], vec![]),
        ],
        vec![TensorP {
            name: "t".into(),
            dims: vec![],
            data: TensorData::F32(vec![0.2]),
        }],
        &[2, 5],
        13,
        id,
    );
}

#[test]
fn lstm_directions_outputs_and_states() {
    for (dir, nd) in [("forward", 1usize), ("reverse", 1), ("bidirectional", 2)] {
        let (t, n, i, h) = (3usize, 2usize, 2usize, 3usize);
        let inits = |with_state: bool| {
            let mut v = vec![
                wt("W", &[nd, 4 * h, i], 21),
                wt("R", &[nd, 4 * h, h], 22),
                wt("B", &[nd, 8 * h], 23),
            ];
            if with_state {
                v.push(wt("h0", &[nd, n, h], 24));
                v.push(wt("c0", &[nd, n, h], 25));
            }
            v
        };
        let attrs = || {
            vec![
                ("hidden_size", AttrVal::I(h as i64)),
                ("direction", AttrVal::S(dir.into())),
            ]
        };
        // Gradient through the full sequence output Y.
        check_op(
            vec![node(
                "LSTM",
                &["x", "W", "R", "B", "", "h0", "c0"],
                &["y", "yh", "yc"],
                attrs(),
            )],
            inits(true),
            &[t, n, i],
            14,
            id,
        );
        // Through the final hidden and cell states only (no bias, zero state).
        check_op(
            vec![
                node("LSTM", &["x", "W", "R"], &["Y", "yh", "yc"], attrs()),
                node("Add", &["yh", "yc"], &["y"], vec![]),
            ],
            inits(false)[..2].to_vec(),
            &[t, n, i],
            14,
            id,
        );
    }
}

#[test]
fn gru_both_reset_forms_and_directions() {
    let (t, n, i, h) = (3usize, 2usize, 2usize, 3usize);
    for lbr in [0, 1] {
        for (dir, nd) in [("forward", 1usize), ("bidirectional", 2)] {
            let attrs = || {
                vec![
                    ("hidden_size", AttrVal::I(h as i64)),
                    ("direction", AttrVal::S(dir.into())),
                    ("linear_before_reset", AttrVal::I(lbr)),
                ]
            };
            check_op(
                vec![node(
                    "GRU",
                    &["x", "W", "R", "B", "", "h0"],
                    &["y", "yh"],
                    attrs(),
                )],
                vec![
                    wt("W", &[nd, 3 * h, i], 31),
                    wt("R", &[nd, 3 * h, h], 32),
                    wt("B", &[nd, 6 * h], 33),
                    wt("h0", &[nd, n, h], 34),
                ],
                &[t, n, i],
                14,
                id,
            );
            check_op(
                vec![node("GRU", &["x", "W", "R"], &["Y", "y"], attrs())],
                vec![wt("W", &[nd, 3 * h, i], 35), wt("R", &[nd, 3 * h, h], 36)],
                &[t, n, i],
                14,
                id,
            );
        }
    }
}

#[test]
fn recurrent_forms_without_support_are_named() {
    let base = |extra: Vec<(&str, AttrVal)>, ins: &[&str]| {
        let mut a = vec![("hidden_size", AttrVal::I(2))];
        a.extend(extra);
        GraphP {
            nodes: vec![node("LSTM", ins, &["y"], a)],
            initializers: vec![
                wt("W", &[1, 8, 2], 1),
                wt("R", &[1, 8, 2], 2),
                it("sl", &[1], &[2]),
            ],
            inputs: vec![ValueInfoP {
                name: "x".into(),
                dims: vec![Some(3), Some(1), Some(2)],
            }],
            outputs: vec![ValueInfoP {
                name: "y".into(),
                dims: vec![],
            }],
        }
    };
    for (extra, want) in [
        (vec![("clip", AttrVal::F(3.0))], "LSTM(clip)"),
        (vec![("layout", AttrVal::I(1))], "LSTM(layout=1)"),
        (vec![("input_forget", AttrVal::I(1))], "LSTM(input_forget)"),
    ] {
        match Graph::compile(&base(extra, &["x", "W", "R"]), 14) {
            Err(ModelError::Unsupported { op, node }) => {
                assert_eq!(op, want);
                assert_eq!(node, "LSTM_node");
            }
            other => panic!("expected Unsupported, got {:?}", other.map(|_| ())),
        }
    }
    // Packed (shorter) sequences are refused when the graph runs.
    let g = Graph::compile(&base(vec![], &["x", "W", "R", "", "sl"]), 14).unwrap();
    let e = g
        .forward(Val::F(vec![3, 1, 2], Arc::new(vec![0.1; 6])))
        .err()
        .unwrap();
    assert!(
        matches!(e, ModelError::Unsupported { ref op, .. } if op.contains("sequence_lens")),
        "{e}"
    );
}

#[test]
fn pad_reflect_and_edge_values() {
    // np.pad([1, 2, 3], (2, 4), mode) for each mode; reflect past the
    // edge folds back (numpy's semantics, which ONNX's reference uses).
    for (mode, want) in [
        ("reflect", [3.0, 2.0, 1.0, 2.0, 3.0, 2.0, 1.0, 2.0, 3.0]),
        ("edge", [1.0, 1.0, 1.0, 2.0, 3.0, 3.0, 3.0, 3.0, 3.0]),
    ] {
        let g = one_node_graph(
            node(
                "Pad",
                &["x", "p"],
                &["y"],
                vec![("mode", AttrVal::S(mode.into()))],
            ),
            vec![it("p", &[4], &[0, 2, 0, 4])],
            &[1, 3],
        );
        let t = run(&g, &[1.0, 2.0, 3.0], &[1, 3]);
        match g.output_of(&t).unwrap() {
            Val::F(s, d) => {
                assert_eq!(s, &[1, 9], "{mode}");
                assert_eq!(d.as_slice(), want.as_slice(), "{mode}");
            }
            Val::I(..) => panic!("integer output"),
        }
    }
}

#[test]
fn pad_reflect_and_edge_gradients() {
    // Pads wider than the axis on one side (reflect folds twice), a
    // length-1 axis, and the opset-2 attribute form.
    for mode in ["reflect", "edge"] {
        check_op(
            vec![node(
                "Pad",
                &["x", "p"],
                &["y"],
                vec![("mode", AttrVal::S(mode.into()))],
            )],
            vec![it("p", &[6], &[0, 1, 4, 0, 2, 1])],
            &[2, 3, 3],
            13,
            id,
        );
        check_op(
            vec![node(
                "Pad",
                &["x"],
                &["y"],
                vec![
                    ("mode", AttrVal::S(mode.into())),
                    ("pads", ints(&[0, 2, 1, 0, 1, 3])),
                ],
            )],
            vec![],
            &[2, 1, 4],
            10,
            id,
        );
    }
}

#[test]
fn reduce_prod_values_and_gradients() {
    // Opset 13 axes attribute with keepdims 0, opset 18 axes input, and
    // all axes; inputs scaled to [-2, 2] so the products are not tiny.
    let wide = |v: f32| 2.0 * v;
    check_op(
        vec![node(
            "ReduceProd",
            &["x"],
            &["y"],
            vec![("axes", ints(&[1, -1])), ("keepdims", AttrVal::I(0))],
        )],
        vec![],
        &[2, 3, 2],
        13,
        wide,
    );
    check_op(
        vec![node("ReduceProd", &["x", "a"], &["y"], vec![])],
        vec![it("a", &[1], &[0])],
        &[2, 3, 2],
        18,
        wide,
    );
    // Zeros in the input: the product is multilinear, so central
    // differences stay exact at zero and check the zero-count path.
    check_op(
        vec![node(
            "ReduceProd",
            &["x"],
            &["y"],
            vec![("axes", ints(&[1]))],
        )],
        vec![],
        &[3, 4],
        13,
        |v| if v.abs() < 0.3 { 0.0 } else { 2.0 * v },
    );
    // Values and the exact gradient with one and with two zeros in a row.
    let g = one_node_graph(
        node("ReduceProd", &["x"], &["y"], vec![("axes", ints(&[1]))]),
        vec![],
        &[3, 3],
    );
    let x = [2.0, 3.0, 4.0, 0.0, 3.0, 5.0, 0.0, 0.0, 7.0];
    let t = run(&g, &x, &[3, 3]);
    assert_eq!(g.output_of(&t).unwrap().shape(), &[3, 1]);
    assert_eq!(g.output_of(&t).unwrap().f("y").unwrap(), &[24.0, 0.0, 0.0]);
    let gr = g.backward(&t, vec![1.0, 1.0, 1.0], &[g.input]).unwrap();
    assert_eq!(
        gr[0].as_deref(),
        Some(&[12.0, 8.0, 6.0, 15.0, 0.0, 0.0, 0.0, 0.0, 0.0][..])
    );
}

#[test]
fn shrink_values_and_gradients() {
    // Soft shrinkage (bias = lambd) and the hard form (bias 0, the
    // defaults); inputs in [-4, 4] stay at least 0.1 from the kinks.
    for attrs in [
        vec![("lambd", attr_f32(0.5)), ("bias", attr_f32(0.5))],
        vec![],
    ] {
        check_op(
            vec![node("Shrink", &["x"], &["y"], attrs)],
            vec![],
            &[2, 5],
            13,
            |v| 4.0 * v,
        );
    }
    // torch.nn.functional.softshrink(x, 0.5) reference values.
    let g = one_node_graph(
        node(
            "Shrink",
            &["x"],
            &["y"],
            vec![("lambd", attr_f32(0.5)), ("bias", attr_f32(0.5))],
        ),
        vec![],
        &[5],
    );
    let t = run(&g, &[-4.0, -1.5, 0.0, 0.5, 2.5], &[5]);
    assert_eq!(
        g.output_of(&t).unwrap().f("y").unwrap(),
        &[-3.5, -1.0, 0.0, 0.0, 2.0]
    );
}

#[test]
fn gather_elements_values_and_gradients() {
    // torch.gather(x, 1, idx) for x = [[1, 2], [3, 4]], idx = [[0, 0], [1, 0]].
    let g = one_node_graph(
        node(
            "GatherElements",
            &["x", "i"],
            &["y"],
            vec![("axis", AttrVal::I(1))],
        ),
        vec![it("i", &[2, 2], &[0, 0, 1, 0])],
        &[2, 2],
    );
    let t = run(&g, &[1.0, 2.0, 3.0, 4.0], &[2, 2]);
    assert_eq!(
        g.output_of(&t).unwrap().f("y").unwrap(),
        &[1.0, 1.0, 4.0, 3.0]
    );
    // Repeated indices accumulate their gradients.
    let gr = g
        .backward(&t, vec![1.0, 1.0, 1.0, 1.0], &[g.input])
        .unwrap();
    assert_eq!(gr[0].as_deref(), Some(&[2.0, 0.0, 1.0, 1.0][..]));
    // Finite differences: axis 0 with a smaller index tensor and a
    // negative index, and the last axis.
    check_op(
        vec![node("GatherElements", &["x", "i"], &["y"], vec![])],
        vec![it("i", &[2, 2, 2], &[2, 0, 1, -1, 0, 0, 2, 1])],
        &[3, 3, 2],
        13,
        id,
    );
    check_op(
        vec![node(
            "GatherElements",
            &["x", "i"],
            &["y"],
            vec![("axis", AttrVal::I(-1))],
        )],
        vec![it(
            "i",
            &[2, 3, 3],
            &[0, 1, 1, 0, 0, 0, 1, 0, 1, 1, 1, 0, 0, 1, 0, 1, 0, 0],
        )],
        &[2, 3, 2],
        13,
        id,
    );
    // Out-of-range indices are a shape error, not a panic.
    let bad = one_node_graph(
        node("GatherElements", &["x", "i"], &["y"], vec![]),
        vec![it("i", &[1, 2], &[0, 5])],
        &[2, 2],
    );
    let e = bad
        .forward(Val::F(vec![2, 2], Arc::new(vec![0.0; 4])))
        .err()
        .unwrap();
    assert!(matches!(e, ModelError::Shape(_)), "{e}");
}

#[test]
fn reductions_with_noop_empty_axes() {
    // noop_with_empty_axes and no axes: Sum, Mean, Max, Min and Prod are
    // the identity, L1/L2 the absolute value, SumSquare the square.
    let x = [-2.0f32, 0.5, 3.0, -1.0];
    for (op, f) in [
        ("ReduceSum", (|v: f32| v) as fn(f32) -> f32),
        ("ReduceMean", |v| v),
        ("ReduceMax", |v| v),
        ("ReduceMin", |v| v),
        ("ReduceProd", |v| v),
        ("ReduceL1", f32::abs),
        ("ReduceL2", f32::abs),
        ("ReduceSumSquare", |v| v * v),
    ] {
        let n = || {
            node(
                op,
                &["x"],
                &["y"],
                vec![("noop_with_empty_axes", AttrVal::I(1))],
            )
        };
        let gp = GraphP {
            nodes: vec![n()],
            initializers: vec![],
            inputs: vec![ValueInfoP {
                name: "x".into(),
                dims: vec![Some(2), Some(2)],
            }],
            outputs: vec![ValueInfoP {
                name: "y".into(),
                dims: vec![],
            }],
        };
        let g = Graph::compile(&gp, 18).unwrap();
        let t = run(&g, &x, &[2, 2]);
        let want: Vec<f32> = x.iter().map(|&v| f(v)).collect();
        assert_eq!(g.output_of(&t).unwrap().shape(), &[2, 2], "{op}");
        assert_eq!(
            g.output_of(&t).unwrap().f("y").unwrap(),
            want.as_slice(),
            "{op}"
        );
        check_op(vec![n()], vec![], &[2, 3], 18, id);
    }
}
