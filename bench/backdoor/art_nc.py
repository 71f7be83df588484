#!/usr/bin/env python3
"""Cross-check of aisec's Neural Cleanse against ART's (KerasNeuralCleanse,
adversarial-robustness-toolbox) on the same model weights and the same
clean data.

The backdoor bench example (`cargo run -p aisec-defend --example
backdoor_bench -- DATA OUT --art`) trains a BadNets-10 % and a clean MLP
(784-64-10) with aisec, writes their weights (OUT/art/mlp_*.npz), the
defender's 500 clean digits (OUT/art/clean.npz) and aisec's Neural Cleanse
result with its run time (OUT/art/aisec_nc.json). This script loads the
same weights into an identical Keras model (checking it predicts exactly
as aisec's copy does up to float error), runs ART's Neural Cleanse per
class with the same schedule (Adam lr 0.1, init cost 1e-3, patience 5,
cost multiplier 1.5, 99 % success, batch 32; 20 passes over the 500 clean
digits = 300 mini-batches, aisec's --steps 300), L1 norm, and ART's own
MAD rule (norm <= median and anomaly index > 2), and writes
OUT/art/art_nc.json with norms, flagged classes, seconds and load average.

ART's mask is per input value (here 784 values of one channel, so the same
as aisec's per-pixel mask for grey images); ART's code runs eagerly in
TensorFlow.

Why ART's first run ended in a division by zero, and the workaround: in
ART 1.20.1 with Keras 3, `KerasNeuralCleanse.reset()` (called at the start
of every class) zeroes all of the optimizer's `_variables`, and Keras 3
tracks the learning rate among them. The learning rate becomes 0, the
mask never moves from its random start, every class returns the same mask
norm, the MAD is 0 and ART's `outlier_detection` divides by it. No setting
avoids it (any learning_rate is zeroed). `--patch` (the default) wraps
`reset()` to restore the learning rate and to draw a fresh random mask and
pattern per class (as the paper's code does; ART also carries the mask
over from the previous class); `--no-patch` runs ART as shipped.

Usage: bench/backdoor/setup_venv.sh /work/venvs/poison
       /work/venvs/poison/bin/python bench/backdoor/art_nc.py bench/backdoor/work/full/art [badnets,clean] [--no-patch]
"""
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np
import tensorflow as tf
from art.estimators.classification import KerasClassifier
from art.defences.transformer.poisoning import NeuralCleanse
from art.utils import to_categorical

d = sys.argv[1]
clean = np.load(os.path.join(d, "clean.npz"))
x = clean["x"].reshape(-1, 28, 28, 1).astype(np.float32)  # one channel: same values
y = clean["y"].astype(np.int64)
res = []
args = [a for a in sys.argv[2:] if not a.startswith("--")]
models = args[0].split(",") if args else ["badnets", "clean"]
patch = "--no-patch" not in sys.argv


def patched_reset(nc, lr):
    """ART's reset, then the learning rate back and a fresh random start."""
    orig = nc.reset

    def reset():
        orig()
        nc.opt.learning_rate.assign(lr)
        shape = nc.mask_tensor_raw.shape
        nc.mask_tensor_raw.assign(np.random.uniform(size=shape).astype(np.float32))
        nc.pattern_tensor_raw.assign(np.random.uniform(size=shape).astype(np.float32))

    nc.reset = reset

for name in models:
    w = np.load(os.path.join(d, f"mlp_{name}.npz"))
    keys = sorted(w.files)  # layer1.bias, layer1.weight, layer3.bias, layer3.weight
    wts = {k: w[k] for k in keys}
    dense = [k[: -len(".weight")] for k in keys if k.endswith(".weight")]
    model = tf.keras.Sequential(
        [tf.keras.Input(shape=(28, 28, 1)), tf.keras.layers.Flatten(),
         tf.keras.layers.Dense(64, activation="relu"), tf.keras.layers.Dense(10, activation="softmax")]
    )
    for layer, p in zip([model.layers[1], model.layers[2]], dense):
        layer.set_weights([wts[p + ".weight"].T, wts[p + ".bias"]])
    model.compile(loss="categorical_crossentropy", optimizer="adam")
    clf = KerasClassifier(model=model, clip_values=(0.0, 1.0), use_logits=False)
    acc = float((np.argmax(clf.predict(x), 1) == y).mean())
    nc = NeuralCleanse(clf)(clf, steps=20, init_cost=1e-3, norm=1, learning_rate=0.1,
                            attack_success_threshold=0.99, patience=5, early_stop=True,
                            early_stop_threshold=0.99, early_stop_patience=10,
                            cost_multiplier=1.5, batch_size=32)
    if patch:
        np.random.seed(0)
        patched_reset(nc, 0.1)
    yc = to_categorical(y, 10)
    la = open("/proc/loadavg").read().split()[:3]
    t0 = time.time()
    norms = []
    for c in range(10):
        mask, pattern = nc.generate_backdoor(x, yc, to_categorical([c], 10).flatten())
        norms.append(float(np.sum(np.abs(mask))))
    secs = time.time() - t0
    med = float(np.median(norms))
    mad = 1.4826 * float(np.median(np.abs(np.array(norms) - med)))
    # All norms equal (every class failed to reach 99 % and kept its start
    # mask, or all identical): no outlier; ART's own rule would divide by 0.
    idx = [abs(n - med) / mad if mad > 0 else 0.0 for n in norms]
    flagged = [c for c in range(10) if norms[c] <= med and idx[c] > 2]
    print(f"ART NC {name}: accuracy on the clean sample {acc:.3f}, flagged {flagged}, {secs:.1f} s")
    res.append({"model": name, "patched_reset": patch, "clean_sample_accuracy": acc, "norms": norms, "anomaly_index": idx,
                "flagged": flagged, "seconds": secs, "loadavg": " ".join(la),
                "tf_threads": [tf.config.threading.get_inter_op_parallelism_threads(),
                               tf.config.threading.get_intra_op_parallelism_threads()]})
json.dump(res, open(os.path.join(d, "art_nc.json"), "w"), indent=1)
