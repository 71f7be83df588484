#!/usr/bin/env python3
"""Writes the tiny random BERT the aisec-guard tests load as a second-stage encoder:
crates/aisec-guard/tests/data/tiny_bert/{config.json, model.safetensors, vocab.txt}.
Same tensor names and layout as all-MiniLM-L6-v2 (Hugging Face BertModel), width 8,
2 layers, 2 heads, a 64-token vocabulary; weights from a fixed-seed generator.
Standard library only. Usage: python3 scripts/guard/make_tiny_bert.py
"""
import json
import os
import random
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "..", "crates", "aisec-guard", "tests", "data", "tiny_bert")
H, LAYERS, HEADS, FF, POS = 8, 2, 2, 16, 64
WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ",", "!", "?", ":", "the", "a", "to", "of", "and",
         "ignore", "previous", "instructions", "print", "reply", "only", "system", "note", "user", "assistant",
         "how", "are", "you", "hello", "world", "what", "is", "weather", "today", "document", "data", "rest",
         "this", "summary", "if", "asks", "for", "with", "word", "report", "revenue", "quarter", "up", "percent",
         "##s", "##ed", "##ing", "please", "thanks", "invoice", "paid", "account", "model", "ai", "reveal",
         "prompt", "secret", "in", "on"]


def main():
    rnd = random.Random(17)
    shapes = [("embeddings.word_embeddings.weight", [len(WORDS), H]), ("embeddings.position_embeddings.weight", [POS, H]),
              ("embeddings.token_type_embeddings.weight", [2, H]), ("embeddings.LayerNorm.weight", [H]), ("embeddings.LayerNorm.bias", [H])]
    for i in range(LAYERS):
        p = f"encoder.layer.{i}"
        for w in ("query", "key", "value"):
            shapes += [(f"{p}.attention.self.{w}.weight", [H, H]), (f"{p}.attention.self.{w}.bias", [H])]
        shapes += [(f"{p}.attention.output.dense.weight", [H, H]), (f"{p}.attention.output.dense.bias", [H]),
                   (f"{p}.attention.output.LayerNorm.weight", [H]), (f"{p}.attention.output.LayerNorm.bias", [H]),
                   (f"{p}.intermediate.dense.weight", [FF, H]), (f"{p}.intermediate.dense.bias", [FF]),
                   (f"{p}.output.dense.weight", [H, FF]), (f"{p}.output.dense.bias", [H]),
                   (f"{p}.output.LayerNorm.weight", [H]), (f"{p}.output.LayerNorm.bias", [H])]
    header, blobs, off = {}, [], 0
    for name, shape in shapes:
        n = 1
        for d in shape:
            n *= d
        base = 1.0 if name.endswith("LayerNorm.weight") else 0.0
        vals = [base + rnd.uniform(-0.5, 0.5) for _ in range(n)]
        b = struct.pack(f"<{n}f", *vals)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    hj = json.dumps(header, separators=(",", ":")).encode()
    hj += b" " * ((8 - len(hj) % 8) % 8)
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(hj)) + hj + b"".join(blobs))
    cfg = {"architectures": ["BertModel"], "model_type": "bert", "hidden_size": H, "num_hidden_layers": LAYERS,
           "num_attention_heads": HEADS, "intermediate_size": FF, "max_position_embeddings": POS,
           "vocab_size": len(WORDS), "type_vocab_size": 2, "hidden_act": "gelu", "layer_norm_eps": 1e-12}
    with open(os.path.join(OUT, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
        f.write("\n")
    with open(os.path.join(OUT, "vocab.txt"), "w") as f:
        f.write("\n".join(WORDS) + "\n")
    print(f"wrote {os.path.abspath(OUT)}")


if __name__ == "__main__":
    main()
