#!/usr/bin/env python
"""Snapshot speed benchmark: `build_snapshot` on ~20M transactions / ~1M active customers, one cutoff, with
categories, against a straightforward pandas groupby implementation of a few of the same features.

    python benchmarks/bench_snapshots.py [--quick] [--customers N] [--seed 0]

Data: `simulate_retail` (6 categories, 3% of orders returned) over 2023-01-01..2025-01-01 with a busier
purchase process than CDNOW (r = 1, alpha = 15 days, a = 1, b = 30: about 16 transactions per customer), so
1.25M customers give ~20M transactions and ~1M customers active in the 365 days before the cutoff
(observation end - 90 days). --quick divides the size by 10.

Timed in the same process (wall clock): `build_snapshot(tx, cutoff)` with every default (windows 30/90/180/365,
labels, category features; best of 2), and the pandas reference (one run) computing frequency, recency_days,
tenure_days, monetary_total, n_purchases_30d, spend_30d and the category spend shares with groupby on the same
purchase-day rule. Its output is checked equal to ours (1e-9 relative) before the ratio is reported: the ratio
understates our speed-up, since ours computes ~45 columns and the reference 13. Target: ours < 60 s.
Results are printed and written as JSON to benchmarks/results/bench_snapshots-<timestamp>[-quick].json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from machine import machine

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
CUSTOMERS = 1_250_000
PROCESS = dict(r=1.0, alpha=15.0, a=1.0, b=30.0, start="2023-01-01", end="2025-01-01")
TARGET_SECONDS = 60.0
HORIZON = 90
REPEATS = 2
RTOL = 1e-9


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def pandas_reference(tx: pd.DataFrame, cutoff: pd.Timestamp, active_days: int = 365) -> pd.DataFrame:
    """A few snapshot features the plain pandas way: groupby per customer-day, then per customer."""
    pre = tx[tx["timestamp"] < cutoff].copy()
    pre["day"] = pre["timestamp"].dt.normalize()
    pre["sale"] = pre["amount"] >= 0
    pre["ret"] = pre["amount"] < 0
    pre["gross"] = pre["amount"].abs()
    daily = pre.groupby(["customer_id", "day"], sort=True).agg(
        net=("amount", "sum"), gross=("gross", "sum"), sale=("sale", "any"), ret=("ret", "any")).reset_index()
    daily["purchase"] = daily["sale"] & (~daily["ret"] | (daily["net"] > 1e-9 * daily["gross"]))
    daily["age"] = (cutoff - daily["day"]).dt.days
    bought = daily[daily["purchase"]]
    per = bought.groupby("customer_id").agg(frequency=("age", "size"), recency_days=("age", "min"),
                                            tenure_days=("age", "max"))
    per = per[per["recency_days"] <= active_days]
    per["n_purchases_30d"] = bought[bought["age"] <= 30].groupby("customer_id").size().reindex(per.index, fill_value=0)
    per["monetary_total"] = daily.groupby("customer_id")["net"].sum().reindex(per.index)
    per["spend_30d"] = daily[daily["age"] <= 30].groupby("customer_id")["net"].sum().reindex(per.index, fill_value=0)
    cat = pre.groupby(["customer_id", "category"])["amount"].sum().unstack(fill_value=0.0).clip(lower=0)
    cat = cat.reindex(per.index, fill_value=0.0)
    shares = cat.div(cat.sum(axis=1).where(lambda s: s > 0), axis=0).fillna(0.0)
    for name in shares.columns:
        per[f"share_{name}"] = shares[name]
    return per.astype(float)


def run(n_customers: int, seed: int) -> dict:
    from custval.data.simulate import simulate_retail
    from custval.features.snapshots import build_snapshot, feature_columns

    t0 = time.perf_counter()
    sim = simulate_retail(n_customers, seed=seed, **PROCESS)
    simulate_s = time.perf_counter() - t0
    tx = sim.transactions
    cutoff = (sim.observation_end - pd.Timedelta(days=HORIZON)).floor("D")
    del sim
    print(f"[bench_snapshots] simulated {len(tx):,} transactions of {n_customers:,} customers in "
          f"{simulate_s:.1f} s; cutoff {cutoff.date()}", flush=True)

    best, snap = math.inf, None
    for _ in range(REPEATS):
        snap = None
        t0 = time.perf_counter()
        snap = build_snapshot(tx, cutoff, horizon_days=HORIZON)
        best = min(best, time.perf_counter() - t0)
    rss_ours = _peak_rss_mb()
    print(f"[bench_snapshots] build_snapshot: {best:.2f} s, {len(snap):,} active customers x "
          f"{len(feature_columns(snap))} features", flush=True)

    t0 = time.perf_counter()
    ref = pandas_reference(tx, cutoff)
    ref_s = time.perf_counter() - t0
    ours = snap.set_index("customer_id")[list(ref.columns)]
    same_index = ours.index.equals(ref.index)
    diffs = {}
    for col in ref.columns:
        a, b = ours[col].to_numpy(float), ref[col].to_numpy(float) if same_index else np.array([np.nan])
        diffs[col] = float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1.0))) if same_index else math.inf
    equal = same_index and max(diffs.values()) <= RTOL
    return {
        "transactions": len(tx), "customers": n_customers, "active_customers": len(snap),
        "feature_columns": len(feature_columns(snap)), "columns": list(snap.columns),
        "cutoff": str(cutoff.date()), "horizon_days": HORIZON, "simulate_seconds": simulate_s,
        "ours_seconds": best, "ours_repeats": REPEATS, "reference_seconds": ref_s, "speedup": ref_s / best,
        "reference_columns": list(ref.columns), "reference_equal": equal, "reference_max_rel_diff": diffs,
        "target_seconds": TARGET_SECONDS, "target_met": best < TARGET_SECONDS,
        "churn_rate": float(snap["churn"].mean()), "peak_rss_mb_after_ours": rss_ours,
        "peak_rss_mb": _peak_rss_mb(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10x smaller")
    parser.add_argument("--customers", type=int, default=CUSTOMERS)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    n = args.customers // (10 if args.quick else 1)
    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    load_before = os.getloadavg()
    res = run(n, args.seed)
    report = {"benchmark": "bench_snapshots", "started": started, "quick": args.quick, "seed": args.seed,
              "process": PROCESS, "load_average_before": load_before, "load_average_after": os.getloadavg(),
              "machine": machine("numpy", "pandas"), "result": res}
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"bench_snapshots-{time.strftime('%Y%m%d-%H%M%S')}{'-quick' if args.quick else ''}.json"
    out.write_text(json.dumps(report, indent=2, default=float))
    print()
    print(f"transactions            {res['transactions']:,}")
    print(f"customers (simulated)   {res['customers']:,}")
    print(f"active at the cutoff    {res['active_customers']:,}  ({res['feature_columns']} feature columns)")
    print(f"build_snapshot          {res['ours_seconds']:.2f} s (best of {REPEATS}; target < {TARGET_SECONDS:.0f} s: "
          f"{'met' if res['target_met'] else 'NOT MET'})")
    print(f"pandas groupby ref      {res['reference_seconds']:.2f} s for {len(res['reference_columns'])} of the "
          f"columns -> ratio {res['speedup']:.1f}x ({'outputs equal' if res['reference_equal'] else 'OUTPUT DIFFERS'})")
    print(f"peak RSS                {res['peak_rss_mb']:,.0f} MB")
    print(f"load average before/after: {load_before[0]:.2f} / {report['load_average_after'][0]:.2f} on "
          f"{os.cpu_count()} cores; results written to {out.relative_to(ROOT)}")
    return 0 if res["reference_equal"] else 1


if __name__ == "__main__":
    sys.exit(main())
