//! The parts of the ONNX protobuf schema (onnx/onnx.proto3) the executor
//! needs, decoded with the bounded wire reader. Field numbers follow the
//! published schema.

use super::wire::{fields, Field};
use crate::classifier::ModelError;
use crate::safetensors::{le_f32, le_f64_as_f32};

/// Upper bound on elements in one tensor (256 M values, 1 GiB of f32).
pub(crate) const MAX_ELEMS: usize = 1 << 28;
const MAX_NODES: usize = 200_000;
const MAX_ATTR_INTS: usize = 1 << 16;

/// Values of a constant tensor.
#[derive(Debug, Clone)]
pub(crate) enum TensorData {
    F32(Vec<f32>),
    I64(Vec<i64>),
}

/// A decoded `TensorProto`.
#[derive(Debug, Clone)]
pub(crate) struct TensorP {
    pub name: String,
    pub dims: Vec<usize>,
    pub data: TensorData,
}

/// A decoded `AttributeProto` (only the value kinds ONNX models here use).
#[derive(Debug, Clone)]
pub(crate) enum AttrVal {
    F(f32),
    I(i64),
    S(String),
    T(TensorP),
    Fs(Vec<f32>),
    Is(Vec<i64>),
    Other,
}

/// A decoded `NodeProto`.
#[derive(Debug, Clone)]
pub(crate) struct NodeP {
    pub name: String,
    pub op_type: String,
    pub domain: String,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub attrs: Vec<(String, AttrVal)>,
}

/// A graph input or output: name and shape (`None` for symbolic dims).
#[derive(Debug, Clone)]
pub(crate) struct ValueInfoP {
    pub name: String,
    pub dims: Vec<Option<usize>>,
}

/// A decoded `GraphProto`.
#[derive(Debug, Clone, Default)]
pub(crate) struct GraphP {
    pub nodes: Vec<NodeP>,
    pub initializers: Vec<TensorP>,
    pub inputs: Vec<ValueInfoP>,
    pub outputs: Vec<ValueInfoP>,
}

/// A decoded `ModelProto`.
#[derive(Debug, Clone, Default)]
pub(crate) struct ModelP {
    pub opset: i64,
    pub graph: GraphP,
}

fn bad(msg: String) -> ModelError {
    ModelError::Invalid(msg)
}

fn to_usize_dims(d: &[i64]) -> Result<Vec<usize>, ModelError> {
    let mut n: usize = 1;
    let mut out = Vec::with_capacity(d.len());
    for &x in d {
        let x = usize::try_from(x).map_err(|_| bad(format!("negative dimension {x}")))?;
        n = n
            .checked_mul(x)
            .filter(|&n| n <= MAX_ELEMS)
            .ok_or_else(|| bad("tensor too large".into()))?;
        out.push(x);
    }
    Ok(out)
}

pub(crate) fn parse_tensor(buf: &[u8]) -> Result<TensorP, ModelError> {
    let mut dims = Vec::new();
    let mut dtype = 0i64;
    let mut name = String::new();
    let mut raw: Option<&[u8]> = None;
    let mut fdata = Vec::new();
    let mut idata: Vec<i64> = Vec::new();
    let mut ddata: Vec<f64> = Vec::new();
    let mut external = false;
    for f in fields(buf) {
        let f = f?;
        match f.num {
            1 => f.ints_into(&mut dims, 64)?,
            2 => dtype = f.int()?,
            4 => f.floats_into(&mut fdata)?,
            5 | 7 => f.ints_into(&mut idata, MAX_ELEMS)?,
            8 => name = f.string()?,
            9 => raw = Some(f.bytes()?),
            10 => f.doubles_into(&mut ddata)?,
            13 => external = true,
            _ => {}
        }
    }
    if external {
        return Err(bad(format!(
            "tensor '{name}' uses external data, which is not supported"
        )));
    }
    let dims = to_usize_dims(&dims)?;
    let n: usize = dims.iter().product();
    let data = match dtype {
        1 => {
            let v: Vec<f32> = match raw {
                Some(r) => le_f32(r),
                None => fdata,
            };
            TensorData::F32(v)
        }
        11 => {
            let v: Vec<f32> = match raw {
                Some(r) => le_f64_as_f32(r),
                None => ddata.iter().map(|&x| x as f32).collect(),
            };
            TensorData::F32(v)
        }
        10 => {
            // float16
            let v: Vec<f32> = match raw {
                Some(r) => r
                    .chunks_exact(2)
                    .map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]])))
                    .collect(),
                None => idata.iter().map(|&x| f16_to_f32(x as u16)).collect(),
            };
            TensorData::F32(v)
        }
        7 | 6 | 2 | 3 | 4 | 5 | 9 | 12 | 13 => {
            let width = match dtype {
                7 | 13 => 8,
                6 | 12 => 4,
                4 | 5 => 2,
                _ => 1,
            };
            let v: Vec<i64> = match raw {
                Some(r) => r
                    .chunks_exact(width)
                    .map(|c| match (width, dtype) {
                        (8, _) => {
                            let mut a = [0u8; 8];
                            a.copy_from_slice(c);
                            i64::from_le_bytes(a)
                        }
                        (4, 6) => i64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                        (4, _) => i64::from(u32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                        (2, 5) => i64::from(i16::from_le_bytes([c[0], c[1]])),
                        (2, _) => i64::from(u16::from_le_bytes([c[0], c[1]])),
                        (_, 3) => i64::from(c[0] as i8),
                        _ => i64::from(c[0]),
                    })
                    .collect(),
                None => idata,
            };
            TensorData::I64(v)
        }
        d => {
            return Err(bad(format!(
                "tensor '{name}' has unsupported data type {d}"
            )))
        }
    };
    let len = match &data {
        TensorData::F32(v) => v.len(),
        TensorData::I64(v) => v.len(),
    };
    if len != n {
        return Err(bad(format!(
            "tensor '{name}': shape {dims:?} needs {n} values, found {len}"
        )));
    }
    Ok(TensorP { name, dims, data })
}

/// IEEE half to single precision.
fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let man = u32::from(h & 0x3ff);
    let bits = if exp == 0 {
        if man == 0 {
            sign
        } else {
            // subnormal
            let mut e = 127 - 15 + 1;
            let mut m = man;
            while m & 0x400 == 0 {
                m <<= 1;
                e -= 1;
            }
            sign | (e << 23) | ((m & 0x3ff) << 13)
        }
    } else if exp == 31 {
        sign | 0x7f80_0000 | (man << 13)
    } else {
        sign | ((exp + 127 - 15) << 23) | (man << 13)
    };
    f32::from_bits(bits)
}

fn parse_attr(buf: &[u8]) -> Result<(String, AttrVal), ModelError> {
    let mut name = String::new();
    let mut ty = 0i64;
    let mut f = None;
    let mut i = None;
    let mut s = None;
    let mut t = None;
    let mut fs = Vec::new();
    let mut is = Vec::new();
    for fld in fields(buf) {
        let fld: Field = fld?;
        match fld.num {
            1 => name = fld.string()?,
            20 => ty = fld.int()?,
            2 => f = Some(fld.float()?),
            3 => i = Some(fld.int()?),
            4 => s = Some(fld.string()?),
            5 => t = Some(parse_tensor(fld.bytes()?)?),
            7 => fld.floats_into(&mut fs)?,
            8 => fld.ints_into(&mut is, MAX_ATTR_INTS)?,
            _ => {}
        }
    }
    let v = match ty {
        1 => AttrVal::F(f.unwrap_or(0.0)),
        2 => AttrVal::I(i.unwrap_or(0)),
        3 => AttrVal::S(s.unwrap_or_default()),
        4 => match t {
            Some(t) => AttrVal::T(t),
            None => AttrVal::Other,
        },
        6 => AttrVal::Fs(fs),
        7 => AttrVal::Is(is),
        _ => AttrVal::Other,
    };
    Ok((name, v))
}

fn parse_node(buf: &[u8]) -> Result<NodeP, ModelError> {
    let mut n = NodeP {
        name: String::new(),
        op_type: String::new(),
        domain: String::new(),
        inputs: vec![],
        outputs: vec![],
        attrs: vec![],
    };
    for f in fields(buf) {
        let f = f?;
        match f.num {
            1 => n.inputs.push(f.string()?),
            2 => n.outputs.push(f.string()?),
            3 => n.name = f.string()?,
            4 => n.op_type = f.string()?,
            7 => n.domain = f.string()?,
            5 => n.attrs.push(parse_attr(f.bytes()?)?),
            _ => {}
        }
    }
    Ok(n)
}

fn parse_value_info(buf: &[u8]) -> Result<ValueInfoP, ModelError> {
    let mut name = String::new();
    let mut dims = Vec::new();
    for f in fields(buf) {
        let f = f?;
        match f.num {
            1 => name = f.string()?,
            2 => {
                // TypeProto.tensor_type(1).shape(2).dim(1).{dim_value(1)|dim_param(2)}
                for tf in fields(f.bytes()?) {
                    let tf = tf?;
                    if tf.num != 1 {
                        continue;
                    }
                    for sf in fields(tf.bytes()?) {
                        let sf = sf?;
                        if sf.num != 2 {
                            continue;
                        }
                        for df in fields(sf.bytes()?) {
                            let df = df?;
                            if df.num != 1 {
                                continue;
                            }
                            let mut d = None;
                            for vf in fields(df.bytes()?) {
                                let vf = vf?;
                                if vf.num == 1 {
                                    d = usize::try_from(vf.int()?).ok().filter(|&v| v > 0);
                                }
                            }
                            if dims.len() < 64 {
                                dims.push(d);
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok(ValueInfoP { name, dims })
}

pub(crate) fn parse_graph(buf: &[u8]) -> Result<GraphP, ModelError> {
    let mut g = GraphP::default();
    for f in fields(buf) {
        let f = f?;
        match f.num {
            1 => {
                if g.nodes.len() >= MAX_NODES {
                    return Err(bad("too many nodes".into()));
                }
                g.nodes.push(parse_node(f.bytes()?)?)
            }
            5 => g.initializers.push(parse_tensor(f.bytes()?)?),
            11 => g.inputs.push(parse_value_info(f.bytes()?)?),
            12 => g.outputs.push(parse_value_info(f.bytes()?)?),
            _ => {}
        }
    }
    Ok(g)
}

pub(crate) fn parse_model(buf: &[u8]) -> Result<ModelP, ModelError> {
    let mut m = ModelP {
        opset: 0,
        graph: GraphP::default(),
    };
    let mut have_graph = false;
    for f in fields(buf) {
        let f = f?;
        match f.num {
            7 => {
                m.graph = parse_graph(f.bytes()?)?;
                have_graph = true;
            }
            8 => {
                let mut domain = String::new();
                let mut version = 0;
                for of in fields(f.bytes()?) {
                    let of = of?;
                    match of.num {
                        1 => domain = of.string()?,
                        2 => version = of.int()?,
                        _ => {}
                    }
                }
                if domain.is_empty() || domain == "ai.onnx" {
                    m.opset = version;
                }
            }
            _ => {}
        }
    }
    if !have_graph {
        return Err(bad("ModelProto has no graph".into()));
    }
    if m.opset == 0 {
        m.opset = 11;
    }
    Ok(m)
}

/// Encodes a graph as an ONNX `ModelProto` (IR version 8, default-domain
/// `opset`). `weight` supplies the current value of each float initializer.
pub(crate) fn encode_model(
    g: &GraphP,
    opset: i64,
    weight: &dyn Fn(&str) -> Option<crate::classifier::Tensor>,
) -> Vec<u8> {
    use super::wire::{put_bytes_field as pb, put_int_field as pi};
    let mut gb = Vec::new();
    for n in &g.nodes {
        let mut nb = Vec::new();
        for i in &n.inputs {
            pb(&mut nb, 1, i.as_bytes());
        }
        for o in &n.outputs {
            pb(&mut nb, 2, o.as_bytes());
        }
        pb(&mut nb, 3, n.name.as_bytes());
        pb(&mut nb, 4, n.op_type.as_bytes());
        for (k, v) in &n.attrs {
            let mut ab = Vec::new();
            pb(&mut ab, 1, k.as_bytes());
            match v {
                AttrVal::F(f) => {
                    ab.push(2 << 3 | 5);
                    ab.extend_from_slice(&f.to_le_bytes());
                    pi(&mut ab, 20, 1);
                }
                AttrVal::I(i) => {
                    pi(&mut ab, 3, *i);
                    pi(&mut ab, 20, 2);
                }
                AttrVal::S(s) => {
                    pb(&mut ab, 4, s.as_bytes());
                    pi(&mut ab, 20, 3);
                }
                AttrVal::Is(v) => {
                    for i in v {
                        pi(&mut ab, 8, *i);
                    }
                    pi(&mut ab, 20, 7);
                }
                AttrVal::Fs(v) => {
                    for f in v {
                        ab.push(7 << 3 | 5);
                        ab.extend_from_slice(&f.to_le_bytes());
                    }
                    pi(&mut ab, 20, 6);
                }
                AttrVal::T(_) | AttrVal::Other => continue,
            }
            pb(&mut nb, 5, &ab);
        }
        pb(&mut gb, 1, &nb);
    }
    pb(&mut gb, 2, b"aisec");
    for t in &g.initializers {
        let tb = match (&t.data, weight(&t.name)) {
            (_, Some(w)) => crate::onnx_model::encode_tensor(&t.name, &w),
            (TensorData::F32(v), None) => crate::onnx_model::encode_tensor(
                &t.name,
                &crate::classifier::Tensor {
                    shape: t.dims.clone(),
                    data: v.clone(),
                },
            ),
            (TensorData::I64(v), None) => {
                let mut b = Vec::new();
                for &d in &t.dims {
                    pi(&mut b, 1, d as i64);
                }
                pi(&mut b, 2, 7);
                pb(&mut b, 8, t.name.as_bytes());
                let raw: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                pb(&mut b, 9, &raw);
                b
            }
        };
        pb(&mut gb, 5, &tb);
    }
    let vi = |v: &ValueInfoP| {
        let mut shape = Vec::new();
        for d in &v.dims {
            let mut db = Vec::new();
            match d {
                Some(d) => pi(&mut db, 1, *d as i64),
                None => pb(&mut db, 2, b"batch"),
            }
            pb(&mut shape, 1, &db);
        }
        let mut tt = Vec::new();
        pi(&mut tt, 1, 1);
        pb(&mut tt, 2, &shape);
        let mut ty = Vec::new();
        pb(&mut ty, 1, &tt);
        let mut b = Vec::new();
        pb(&mut b, 1, v.name.as_bytes());
        pb(&mut b, 2, &ty);
        b
    };
    for i in &g.inputs {
        pb(&mut gb, 11, &vi(i));
    }
    for o in &g.outputs {
        pb(&mut gb, 12, &vi(o));
    }
    let mut m = Vec::new();
    pi(&mut m, 1, 8);
    pb(&mut m, 2, b"aisec");
    pb(&mut m, 7, &gb);
    let mut os = Vec::new();
    pb(&mut os, 1, b"");
    pi(&mut os, 2, opset);
    pb(&mut m, 8, &os);
    m
}
