"""Evaluate uplift choice / stacking rules on the cached fits (cache_fits.py) against bench_uplift's reference
Qinis (JSON results of the same seed). Usage: rules.py SEED... [--refs JSON...]."""
import itertools
import json
import sys
from pathlib import Path

import numpy as np
from scipy.optimize import nnls

from custval.models.uplift.selection import arm_scores

CACHE = Path("/tmp/uplift-stack-cache")
LEARNERS = ("s", "t", "x")
REFS = {0: "/work/wt-uplift-choice/benchmarks/results/bench_uplift-20261201-154751.json",
        1: "/work/wt-uplift-choice/benchmarks/results/bench_uplift-20261201-160037.json",
        2: "/work/wt-uplift-choice/benchmarks/results/bench_uplift-20261201-160521.json",
        3: "/work/wt-uplift-choice/benchmarks/results/bench_uplift-20261201-161724.json",
        6: "/work/main/benchmarks/results/bench_uplift-20261201-170037.json",
        4: "/work/wt-uplift-stack/benchmarks/results/bench_uplift-20261201-184726.json",
        5: "/work/wt-uplift-stack/benchmarks/results/bench_uplift-20261201-184808.json"}


def refs(seed):
    path = REFS.get(seed) or next((str(p) for p in sorted(CACHE.glob(f"refs-seed{seed}.json"))), None)
    if path is None:
        return None
    r = json.load(open(path))
    return {x["table"]: x for x in r["results"]}


def qini(c, u, y, t):
    return float(arm_scores(y, u, t, list(c["arms"]), str(c["control"]))["qini"].mean())


def fold_qinis(c, u_oof):
    return np.array([qini(c, u_oof[c["fold_of"] == k], c["y_pool"][c["fold_of"] == k], c["t_pool"][c["fold_of"] == k])
                     for k in np.unique(c["fold_of"])])


def transformed(c, j):
    """rows of arm j + control in the pool, and the transformed outcome there."""
    arm, control = c["arms"][j], str(c["control"])
    rows = (c["t_pool"] == arm) | (c["t_pool"] == control)
    T = (c["t_pool"][rows] == arm).astype(float)
    p = T.mean()
    return rows, c["y_pool"][rows] * (T / p - (1 - T) / (1 - p))


def nnls_weights(c, oof):
    """per arm: NNLS of the centred transformed outcome on the centred OOF uplift of each learner."""
    W = []
    for j in range(len(c["arms"])):
        rows, z = transformed(c, j)
        A = np.column_stack([oof[m][rows, j] for m in LEARNERS])
        w, _ = nnls(A - A.mean(0), z - z.mean())
        W.append(w / w.sum() if w.sum() > 0 else np.full(len(LEARNERS), 1 / len(LEARNERS)))
    return np.array(W)  # arms x learners


def nnls_pooled(c, oof):
    """one weight vector for all arms: the arms' blocks stacked."""
    A, Z = [], []
    for j in range(len(c["arms"])):
        rows, z = transformed(c, j)
        a = np.column_stack([oof[m][rows, j] for m in LEARNERS])
        A.append(a - a.mean(0))
        Z.append(z - z.mean())
    w, _ = nnls(np.vstack(A), np.concatenate(Z))
    w = w / w.sum() if w.sum() > 0 else np.full(len(LEARNERS), 1 / len(LEARNERS))
    return np.tile(w, (len(c["arms"]), 1))


def combine(preds, W):
    return np.column_stack([sum(W[j, i] * preds[m][:, j] for i, m in enumerate(LEARNERS))
                            for j in range(W.shape[0])])


def grid_weights(c, oof, scale, step=0.1):
    best, best_w = -np.inf, None
    n = int(round(1 / step))
    for a, b in itertools.product(range(n + 1), repeat=2):
        if a + b > n:
            continue
        w = np.array([a, b, n - a - b]) / n
        W = np.tile(w, (len(c["arms"]), 1)) / scale
        score = fold_qinis(c, combine(oof, W)).mean()
        if score > best:
            best, best_w = score, W
    return best_w


def evaluate(seed, name):
    c = dict(np.load(CACHE / f"seed{seed}-{name}.npz", allow_pickle=False))
    y, t = c["y_test"], c["t_test"]
    full = {m: c[f"test_{m}_full"] for m in LEARNERS}
    bag = {m: np.mean([c[f"test_{m}_fold{k}"] for k in range(3)] + [c[f"test_{m}_full"]], axis=0) for m in LEARNERS}
    oof = {m: c[f"oof_{m}"] for m in LEARNERS}
    ones = np.ones((len(c["arms"]), len(LEARNERS))) / len(LEARNERS)
    sd = np.array([[oof[m][:, j].std() for m in LEARNERS] for j in range(len(c["arms"]))])
    out = {f"{m}": qini(c, full[m], y, t) for m in LEARNERS}
    out |= {f"bag {m}": qini(c, bag[m], y, t) for m in LEARNERS}
    out["avg"] = qini(c, combine(full, ones), y, t)
    out["bag avg"] = qini(c, combine(bag, ones), y, t)
    out["std avg"] = qini(c, combine(full, ones / sd), y, t)
    out["bag std avg"] = qini(c, combine(bag, ones / sd), y, t)
    Wn = nnls_weights(c, oof)
    out["nnls"] = qini(c, combine(full, Wn), y, t)
    out["bag nnls"] = qini(c, combine(bag, Wn), y, t)
    Wp = nnls_pooled(c, oof)
    out["nnls pooled"] = qini(c, combine(full, Wp), y, t)
    out["bag nnls pooled"] = qini(c, combine(bag, Wp), y, t)
    Wh = (Wn + ones) / 2
    out["bag nnls half"] = qini(c, combine(bag, Wh), y, t)
    out["bag nnls pooled half"] = qini(c, combine(bag, (Wp + ones) / 2), y, t)
    Wg = grid_weights(c, oof, sd)
    out["qini-grid"] = qini(c, combine(full, Wg), y, t)
    out["bag qini-grid"] = qini(c, combine(bag, Wg), y, t)
    # fold scores, as the job's choice sees them (s, t, x, average)
    fq = {m: fold_qinis(c, oof[m]) for m in LEARNERS}
    fq["avg"] = fold_qinis(c, combine(oof, ones))
    fq["std avg"] = fold_qinis(c, combine(oof, ones / sd))
    mean = {m: v.mean() for m, v in fq.items()}
    se = {m: v.std(ddof=1) / np.sqrt(len(v)) for m, v in fq.items()}
    best = max(LEARNERS + ("avg",), key=mean.get)
    out["one_se (now)"] = out["avg"] if mean["avg"] >= mean[best] - se[best] else out[best]
    # paired: average unless best beats it in every fold by... paired SE of differences
    d = fq[best] - fq["avg"]
    pse = d.std(ddof=1) / np.sqrt(len(d)) if best != "avg" else 0
    out["paired"] = out["avg"] if d.mean() <= pse else out[best]
    best2 = max(LEARNERS + ("std avg",), key=mean.get)
    out["one_se std"] = (out["std avg"] if mean["std avg"] >= mean[best2] - se[best2] else out[best2])
    info = {"weights_nnls": np.round(Wn, 2).tolist(), "weights_grid": np.round(Wg * sd / (Wg * sd).sum(1, keepdims=True), 2).tolist(),
            "sd": np.round(sd, 4).tolist(), "fold": {m: round(v, 4) for m, v in mean.items()}}
    return out, info


if __name__ == "__main__":
    seeds = [int(s) for s in sys.argv[1:]]
    gaps = {}
    for seed in seeds:
        R = refs(seed)
        for name in ("crosssell", "winback"):
            if not (CACHE / f"seed{seed}-{name}.npz").exists():
                continue
            out, info = evaluate(seed, name)
            ref = R[name] if R else None
            best = max(ref["references"], key=lambda m: ref["summary"][m]["qini"]) if ref else None
            bq = ref["summary"][best]["qini"] if ref else np.nan
            check = f"json s {ref['summary']['custval s']['qini']:.4f} avg {ref['summary']['custval average']['qini']:.4f}" if ref else ""
            print(f"seed {seed} {name}: best ref {best} {bq:.4f}; {check}; {info}")
            print("   " + "  ".join(f"{k} {v:.4f} ({v - bq:+.4f})" for k, v in out.items()))
            for k, v in out.items():
                gaps.setdefault(k, []).append(v - bq)
    print("\nrule: n tables, misses (< -0.005), worst gap, mean gap")
    for k, g in gaps.items():
        g = np.array(g)[~np.isnan(g)]
        if len(g):
            print(f"  {k:<16} {len(g)}  {int((g < -0.005).sum())}  {g.min():+.4f}  {g.mean():+.4f}")
