"""A transformer-encoder-shaped ONNX model written by the `onnx` package's
own serializer (onnx.helper + onnx.save), for measuring the remote ONNX
plan on the field layout real exporters produce (GraphProto: nodes first,
then initializers in order, then inputs, outputs, value infos).

    python gen_onnx_layout.py OUT.onnx [--layers 8] [--hidden 512] [--vocab 8000]

Weights are random float32; the graph is the usual per-layer pattern
(Q/K/V/O projections with biases, LayerNorm scale and bias, a two-matrix
FFN), one node per weight, plus a custom-domain node so the scan has a
finding to compare. Prints the file size and initializer count as JSON.
"""

import argparse
import json
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--vocab", type=int, default=8000)
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    h, f = a.hidden, 4 * a.hidden
    inits, nodes = [], []

    def w(name, *shape):
        inits.append(numpy_helper.from_array(
            rng.standard_normal(shape, dtype=np.float32) * 0.02, name))
        return name

    x = "emb_out"
    nodes.append(helper.make_node("Gather", [w("embeddings.word", a.vocab, h), "ids"], [x]))
    for i in range(a.layers):
        p = f"layer{i}"
        outs = []
        for proj in ("q", "k", "v", "o"):
            m = f"{p}.{proj}.mm"
            nodes.append(helper.make_node("MatMul", [x, w(f"{p}.{proj}.weight", h, h)], [m]))
            nodes.append(helper.make_node("Add", [m, w(f"{p}.{proj}.bias", h)], [m + "b"]))
            outs.append(m + "b")
        ln = f"{p}.ln1"
        nodes.append(helper.make_node("LayerNormalization",
                                      [outs[-1], w(f"{ln}.weight", h), w(f"{ln}.bias", h)], [ln]))
        f1 = f"{p}.ffn1"
        nodes.append(helper.make_node("MatMul", [ln, w(f"{f1}.weight", h, f)], [f1]))
        nodes.append(helper.make_node("Add", [f1, w(f"{f1}.bias", f)], [f1 + "b"]))
        f2 = f"{p}.ffn2"
        nodes.append(helper.make_node("MatMul", [f1 + "b", w(f"{f2}.weight", f, h)], [f2]))
        nodes.append(helper.make_node("Add", [f2, w(f"{f2}.bias", h)], [f2 + "b"]))
        ln2 = f"{p}.ln2"
        nodes.append(helper.make_node("LayerNormalization",
                                      [f2 + "b", w(f"{ln2}.weight", h), w(f"{ln2}.bias", h)], [ln2]))
        x = ln2
    nodes.append(helper.make_node("FastGeluCustom", [x], ["y"], domain="com.example.ops"))
    graph = helper.make_graph(
        nodes, "encoder",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", "seq"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "seq", h])],
        initializer=inits)
    model = helper.make_model(graph, producer_name="gen_onnx_layout",
                              opset_imports=[helper.make_opsetid("", 17),
                                             helper.make_opsetid("com.example.ops", 1)])
    onnx.save(model, a.out)
    print(json.dumps({"file": a.out, "bytes": os.path.getsize(a.out),
                      "initializers": len(inits), "nodes": len(nodes)}))


if __name__ == "__main__":
    main()
