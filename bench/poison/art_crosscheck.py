"""Cross-check of aisec's poisoning attack and dataset inspection against ART
(adversarial-robustness-toolbox) on the same data and the same model weights.

1. aisec plants BadNets (10 %, target 0) in MNIST (`aisec attack poison`).
2. torch trains one MLP on that poisoned set; it is exported to ONNX, so
   aisec and ART see the same weights.
3. Activation clustering and spectral signatures run in both tools on the
   same data and model: ART's ActivationDefence (PCA to 10 dims, 2-means,
   "relative-size" analysis at 0.35 as in Chen et al., and ART's default
   "smaller") and SpectralSignatureDefense
   (expected_pp_poison 0.1, eps_multiplier 1.5); aisec's `defend data`.
   ART reads the activations of the classifier's last layer (here the
   logits); aisec reads the penultimate layer by default, so aisec runs
   twice: at the logits (same input as ART) and at the penultimate layer.
4. ART's PoisoningAttackBackdoor (add_pattern_bd, the same 3x3 checkerboard
   family) poisons the same clean set; torch trains the same MLP on it and
   its ASR is compared with the ASR of aisec's poison.

Run with the venv of setup_venv.sh, after prep_mnist.py and a build of
aisec:  python bench/poison/art_crosscheck.py [path/to/aisec]
Writes bench/poison/work/crosscheck.json and prints a Markdown table.
"""
import json
import os
import subprocess
import sys
import time

import numpy as np
import onnx
import torch
from torch import nn

from art.attacks.poisoning import PoisoningAttackBackdoor
from art.attacks.poisoning.perturbations import add_pattern_bd
from art.defences.detector.poison import ActivationDefence, SpectralSignatureDefense
from art.estimators.classification import PyTorchClassifier

HERE = os.path.dirname(os.path.abspath(__file__))
WORK = os.path.join(HERE, "work")
AISEC = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "target", "debug", "aisec")
torch.set_num_threads(2)
torch.manual_seed(0)
np.random.seed(0)


def load(name):
    d = np.load(os.path.join(WORK, name))
    return d["x"].astype(np.float32), d["y"].astype(np.int64)


def mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))


def train(x, y, epochs=8):
    torch.manual_seed(0)
    m = mlp()
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    g = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        perm = torch.randperm(len(xt), generator=g)
        for i in range(0, len(xt), 64):
            b = perm[i:i + 64]
            opt.zero_grad()
            nn.functional.cross_entropy(m(xt[b]), yt[b]).backward()
            opt.step()
    return m.eval()


def predict(m, x):
    with torch.no_grad():
        return m(torch.from_numpy(x)).argmax(1).numpy()


def backdoor_eval(m, x_test, y_test, trig_fn, target=0):
    clean = float((predict(m, x_test) == y_test).mean())
    keep = y_test != target
    xt = trig_fn(x_test[keep].copy())
    p = predict(m, xt)
    return clean, float((p == target).mean()), float((p == y_test[keep]).mean())


def aisec_trigger(x, manifest):
    t = manifest["trigger"]
    mask = np.array(t["mask"], np.float32).reshape(1, 28, 28)
    pat = np.array(t["pattern"], np.float32).reshape(1, 28, 28)
    return (1 - mask) * x + mask * pat


def detection(flags, truth):
    flags, truth = np.asarray(flags, bool), np.asarray(truth, bool)
    tp = int((flags & truth).sum())
    return {
        "flagged": int(flags.sum()),
        "precision": tp / max(int(flags.sum()), 1),
        "recall": tp / max(int(truth.sum()), 1),
        "fpr": int((flags & ~truth).sum()) / max(int((~truth).sum()), 1),
    }


def main():
    x_train, y_train = load("mnist_train.npz")
    x_test, y_test = load("mnist_test.npz")
    out = os.path.join(WORK, "xcheck")
    t0 = time.time()
    subprocess.run([AISEC, "attack", "poison", os.path.join(WORK, "mnist_train.npz"),
                    "--input-shape", "1,28,28", "--kind", "badnets", "--rate", "0.1",
                    "--target", "0", "--out", out, "--quiet", "--no-fail"], check=True)
    aisec_poison_s = time.time() - t0
    d = np.load(os.path.join(out, "poisoned.npz"))
    xp, yp = d["x"].astype(np.float32), d["y"].astype(np.int64)
    manifest = json.load(open(os.path.join(out, "indices.json")))
    truth = np.zeros(len(xp), bool)
    truth[manifest["indices"]] = True

    victim = train(xp, yp)
    res = {"loadavg": open("/proc/loadavg").read().strip(), "torch_threads": torch.get_num_threads()}
    res["aisec_poison_torch_victim"] = backdoor_eval(victim, x_test, y_test, lambda x: aisec_trigger(x, manifest))
    onnx_path = os.path.join(WORK, "xcheck_victim.onnx")
    torch.onnx.export(victim, torch.zeros(1, 1, 28, 28), onnx_path, input_names=["x"], output_names=["logits"],
                      dynamic_axes={"x": {0: "n"}, "logits": {0: "n"}}, dynamo=False)
    gemms = [n.name for n in onnx.load(onnx_path).graph.node if n.op_type == "Gemm"]

    # ART on the torch model (the same weights as the ONNX file).
    clf = PyTorchClassifier(model=victim, loss=nn.CrossEntropyLoss(), input_shape=(1, 28, 28), nb_classes=10,
                            clip_values=(0.0, 1.0))
    y1h = np.eye(10, dtype=np.float32)[yp]
    # "relative-size" is Chen et al.'s criterion (and aisec's); "smaller"
    # (ART's default) flags the smaller cluster of every class.
    # ART 1.20.1's "relative-size" analyzer raises on a class with no small
    # cluster (`cluster_id in <empty array>`), so the relative-size rule is
    # applied here to ART's own clusters (ac.clusters_by_class).
    t = time.time()
    ac = ActivationDefence(clf, xp, y1h)
    _, clean_ac = ac.detect_poison(nb_clusters=2, nb_dims=10, reduce="PCA", cluster_analysis="smaller")
    secs = time.time() - t
    res["art_ac_smaller"] = detection(np.array(clean_ac) == 0, truth) | {"seconds": secs}
    flags = np.zeros(len(xp), bool)
    for c, assign in enumerate(ac.clusters_by_class):
        rows = np.where(yp == c)[0]
        assign = np.asarray(assign)
        for k in range(2):
            if (assign == k).mean() < 0.35:
                flags[rows[assign == k]] = True
    res["art_ac_relative_size"] = detection(flags, truth) | {"seconds": secs}
    t = time.time()
    ss = SpectralSignatureDefense(clf, xp, y1h, batch_size=128, eps_multiplier=1.5, expected_pp_poison=0.1)
    _, clean_ss = ss.detect_poison()
    res["art_ss"] = detection(np.array(clean_ss) == 0, truth) | {"seconds": time.time() - t}

    # aisec on the ONNX export: at the logits (as ART) and at the penultimate layer.
    for tag, extra in [("logits", ["--layer", gemms[-1]]), ("penultimate", [])]:
        t = time.time()
        r = subprocess.run([AISEC, "defend", "data", os.path.join(out, "poisoned.npz"), "--model", onnx_path,
                            "--methods", "ac,ss", "--ground-truth", os.path.join(out, "indices.json"),
                            "--format", "json", "--quiet", "--no-fail"] + extra, check=True, capture_output=True)
        wall = time.time() - t
        for m in json.loads(r.stdout)["data"]["defend_data"]["methods"]:
            det = m["detection"]
            key = "aisec_" + ("ac" if m["method"].startswith("activation") else "ss") + "_" + tag
            res[key] = {"flagged": m["flagged"], "precision": det["precision"], "recall": det["recall"],
                        "fpr": det["false_positive_rate"], "seconds": m["seconds"], "process_seconds": wall}

    # ART's own backdoor poisoning on the same clean set, same MLP.
    rng = np.random.RandomState(0)
    cand = np.where(y_train != 0)[0]
    idx = rng.choice(cand, size=int(round(0.1 * len(x_train))), replace=False)
    bd = PoisoningAttackBackdoor(lambda x: add_pattern_bd(x, distance=2, pixel_value=1.0))
    t = time.time()
    xa, _ = bd.poison(x_train[idx].reshape(-1, 28, 28), y=np.eye(10)[np.zeros(len(idx), int)])
    art_poison_s = time.time() - t
    x_art, y_art = x_train.copy(), y_train.copy()
    x_art[idx] = xa.reshape(-1, 1, 28, 28)
    y_art[idx] = 0
    m_art = train(x_art, y_art)
    res["art_poison_torch_victim"] = backdoor_eval(
        m_art, x_test, y_test, lambda x: add_pattern_bd(x.reshape(-1, 28, 28), distance=2, pixel_value=1.0).reshape(-1, 1, 28, 28))
    res["poison_seconds"] = {"aisec_cli_process": aisec_poison_s, "art_poison_call": art_poison_s}
    json.dump(res, open(os.path.join(WORK, "crosscheck.json"), "w"), indent=2)
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
