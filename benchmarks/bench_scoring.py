#!/usr/bin/env python
"""Batch scoring benchmark: `custval score`'s path (Parquet -> features -> every model -> lists, segments,
reasons -> Parquet) on 1M and 10M simulated customers, with the models trained once on a small base.

    python benchmarks/bench_scoring.py [--quick] [--sizes 1000000,10000000] [--store DIR] [--seed 0]

Models: the training jobs (`train_clv` weekly, `train_churn`, `train_propensity`, `train_uplift` win-back and the
cross-sell campaign over 90 days as the retention offer, arm `discount`) on `simulate_campaigns(20_000, seed)`,
registered in a temporary SQLite MLflow store (or `--store DIR`, reused when it already holds them), then loaded
as `custval score` loads them (`custval.tracking.models.load_*`, the champion of each).

Scored bases: `resample_base` draws N customers from that training base (weighted towards fewer transactions,
so there are about 5 each instead of 15) and perturbs each copy: its timestamps shifted by a whole number of
days within +-10 (inside the base's window), its amounts scaled by one log-normal factor (sd 0.1, rounded to
cents), its income by another (sd 0.05); the rest of its attributes and its categories kept. Written to Parquet,
then read back by `custval.features.datasets.load_base` (the job's reader: validation and the data.* policies)
in a fresh process per size, so the peak RSS (getrusage) is that run's alone; a sampling thread records the
peak RSS of each stage too. As of 2025-01-01 (the day after the base's window).

Stages (wall clock): read (load_base), chunks (the log sorted and cut by customer), rfm (RFM summary, classic
RFM, lapsed), features (build_snapshot per recipe), clv / churn / retention / winback / propensity (each
model, incl. the cross-sell choice), lists, segments, reasons (the top `retention.top` of the retention list
only), write (`write_tables`, atomic). Targets: 1M customers < 30 s, 10M < 300 s with peak RSS < 8 GiB,
end to end (read to write). --quick: 100k and 1M. JSON goes to
benchmarks/results/bench_scoring-<timestamp>[-quick].json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import threading
import time
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd
from machine import machine

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
TRAIN_CUSTOMERS = 20_000
AS_OF = pd.Timestamp("2025-01-01")
WINDOW = (pd.Timestamp("2023-01-01"), AS_OF)  # the simulated base's transactions lie in [start, end)
MEAN_TRANSACTIONS = 5.0
MAX_SHIFT_DAYS = 10
SIZES = (1_000_000, 10_000_000)
QUICK_SIZES = (100_000, 1_000_000)
TARGETS = {1_000_000: (30.0, None), 10_000_000: (300.0, 8 * 1024.0)}  # size -> (seconds, peak RSS MiB)
STAGES = ("read", "chunks", "rfm", "features", "clv", "churn", "retention", "winback", "propensity", "lists",
          "segments", "reasons", "write")
MODELS = {"clv": "custval-clv", "churn": "custval-churn", "propensity": "custval-propensity",
          "retention": "custval-uplift-crosssell", "winback": "custval-uplift-winback"}
RETENTION_ARM = "discount"


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class RssSampler:
    """The highest RSS seen (every 50 ms) since the last `take()`."""

    def __init__(self):
        self.peak, self._stop = 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, _rss_mb())

    def take(self) -> float:
        peak, self.peak = max(self.peak, _rss_mb()), _rss_mb()
        return peak

    def stop(self):
        self._stop.set()
        self._thread.join()


# ------------------------------------------------------------------------------------------- the models
def train_models(store: Path, seed: int) -> str:
    """The five models of the scoring job trained by their jobs on one simulated base, registered in a SQLite
    store under `store` (nothing is trained when it already holds them); returns the tracking URI."""
    import mlflow

    from custval.data.simulate_campaign import simulate_campaigns
    from custval.jobs.train_churn import load_config as churn_config
    from custval.jobs.train_churn import train_churn
    from custval.jobs.train_clv import load_config as clv_config
    from custval.jobs.train_clv import train_clv
    from custval.jobs.train_propensity import load_config as propensity_config
    from custval.jobs.train_propensity import train_propensity
    from custval.jobs.train_uplift import load_config as uplift_config
    from custval.jobs.train_uplift import train_uplift

    store.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{store}/mlflow.db"
    done = store / "trained.json"
    if done.is_file() and json.loads(done.read_text()) == {"seed": seed, "n_customers": TRAIN_CUSTOMERS}:
        return uri
    t0 = time.perf_counter()
    sim = simulate_campaigns(TRAIN_CUSTOMERS, seed=seed)
    tx, people = store / "train_tx.parquet", store / "train_customers.parquet"
    sim.transactions.to_parquet(tx)
    sim.customers.to_parquet(people)
    try:
        train_clv(clv_config(overrides=[f"data.source={tx}", "calibration_end=2024-06-30",
                                        "observation_end=2024-12-31", "period=W", "output=null"]), tracking_uri=uri)
        log = [f"data.source={tx}", f"data.customers={people}", "output=null"]
        train_churn(churn_config(overrides=log), tracking_uri=uri)
        train_propensity(propensity_config(overrides=log), tracking_uri=uri)
        sim_settings = [f"simulate.n_customers={TRAIN_CUSTOMERS}", f"simulate.seed={seed}", "output=null"]
        train_uplift(uplift_config(overrides=sim_settings), tracking_uri=uri)
        train_uplift(uplift_config(overrides=[*sim_settings, "campaign.response_days=90"],
                                   pipeline="uplift_campaign"), tracking_uri=uri)
    finally:
        mlflow.set_tracking_uri(None)
    done.write_text(json.dumps({"seed": seed, "n_customers": TRAIN_CUSTOMERS}))
    print(f"[bench_scoring] trained the models on {TRAIN_CUSTOMERS:,} customers in "
          f"{time.perf_counter() - t0:.0f} s", flush=True)
    return uri


# --------------------------------------------------------------------------------------- the scored base
def _weights(counts: np.ndarray, mean: float) -> np.ndarray:
    """Sampling weights exp(-lam x count), lam chosen by bisection so that the weighted mean count is `mean`."""
    if counts.mean() <= mean:
        return np.full(len(counts), 1.0 / len(counts))
    lo, hi = 0.0, 10.0
    for _ in range(100):
        lam = (lo + hi) / 2
        w = np.exp(-lam * (counts - counts.min()))
        lo, hi = (lam, hi) if (w * counts).sum() / w.sum() > mean else (lo, lam)
    return w / w.sum()


def resample_base(transactions: pd.DataFrame, customers: pd.DataFrame, n: int, seed: int,
                  mean_transactions: float = MEAN_TRANSACTIONS) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`n` customers drawn from a base (module docstring), vectorised: ~1 s per million customers."""
    rng = np.random.default_rng(seed)
    tx = transactions.sort_values(["customer_id", "timestamp"], kind="stable").reset_index(drop=True)
    source_ids, starts, counts = np.unique(tx["customer_id"].to_numpy(), return_index=True, return_counts=True)
    people = customers.set_index("customer_id").loc[source_ids].reset_index()
    src = rng.choice(len(source_ids), size=n, p=_weights(counts, mean_transactions))
    k = counts[src]
    offsets = np.repeat(np.cumsum(k) - k, k)
    rows = np.repeat(starts[src], k) + (np.arange(k.sum()) - offsets)
    day = np.int64(86_400 * 10**9)
    stamps = tx["timestamp"].to_numpy().astype("datetime64[ns]").view("int64")
    first, last = stamps[starts], stamps[starts + counts - 1]
    window = [t.value for t in WINDOW]
    lo = np.maximum(-MAX_SHIFT_DAYS, -((first - window[0]) // day))[src]
    hi = np.minimum(MAX_SHIFT_DAYS, (window[1] - 1 - last) // day)[src]
    shift = (lo + np.floor(rng.random(n) * (hi - lo + 1)).astype(np.int64)) * day
    scale = np.exp(rng.normal(0.0, 0.1, n))
    orders = tx["order_id"].to_numpy()
    span = (orders[starts + counts - 1] - orders[starts] + 1)[src]
    order_base = np.repeat(np.cumsum(span) - span - orders[starts][src], k)
    category = pd.Categorical(tx["category"].astype(str).to_numpy())
    out = pd.DataFrame({
        "customer_id": np.repeat(np.arange(1, n + 1, dtype=np.int64), k),
        "timestamp": (stamps[rows] + np.repeat(shift, k)).view("datetime64[ns]"),
        "amount": np.round(tx["amount"].to_numpy()[rows] * np.repeat(scale, k), 2),
        "order_id": orders[rows] + order_base + 1,
        "category": pd.Categorical.from_codes(category.codes[rows], category.categories),
    })
    table = people.iloc[src].reset_index(drop=True)
    table["customer_id"] = np.arange(1, n + 1, dtype=np.int64)
    table["signup_date"] = (table["signup_date"].to_numpy().astype("datetime64[ns]").view("int64")
                            + shift).view("datetime64[ns]")
    table["income"] = np.round(table["income"].to_numpy() * np.exp(rng.normal(0.0, 0.05, n)), -2)
    return out, table


def write_base(directory: Path, n: int, seed: int, store: Path) -> dict:
    """The scored base of `n` customers as Parquet files (kept and reused for the same n and seed)."""
    tx_path, people_path = directory / f"tx-{n}-{seed}.parquet", directory / f"customers-{n}-{seed}.parquet"
    if not (tx_path.is_file() and people_path.is_file()):
        t0 = time.perf_counter()
        train = pd.read_parquet(store / "train_tx.parquet")
        people = pd.read_parquet(store / "train_customers.parquet")
        tx, table = resample_base(train, people, n, seed + 1)
        made = time.perf_counter() - t0
        tx.to_parquet(tx_path, row_group_size=2**22)
        table.to_parquet(people_path)
        print(f"[bench_scoring] {n:,} customers, {len(tx):,} transactions made in {made:.1f} s, written in "
              f"{time.perf_counter() - t0 - made:.1f} s", flush=True)
    return {"transactions": str(tx_path), "customers": str(people_path)}


# ----------------------------------------------------------------------------------------------- scoring
def score_once(uri: str, files: dict, out: str, chunk_size: int) -> dict:
    """One scoring run as `custval score` does it, in this process; the seconds and peak RSS of each stage."""
    import mlflow

    from custval.data.io import write_tables
    from custval.features.datasets import load_base
    from custval.jobs.score import load_config
    from custval.scoring.batch import ScoringModels, finish_base, score_chunks, scoring_rules
    from custval.tracking.models import load_classifier_model, load_clv_model, load_uplift_model

    sampler = RssSampler()
    stage_rss: dict[str, float] = {}
    overrides = [f"data.source={files['transactions']}", f"data.customers={files['customers']}",
                 f"as_of={AS_OF.date()}", f"scoring.chunk_size={chunk_size}", "scoring.progress=false",
                 f"output={out}", *(f"models.{role}=models:/{name}@champion" for role, name in MODELS.items()),
                 f"retention.arm={RETENTION_ARM}"]
    config = load_config(overrides=overrides)
    loaders = {"clv": load_clv_model, "churn": load_classifier_model, "propensity": load_classifier_model,
               "retention": load_uplift_model, "winback": load_uplift_model}
    mlflow.set_tracking_uri(uri)
    try:
        models = ScoringModels(**{role: loaders[role](getattr(config.models, role))[0] for role in MODELS})
    finally:
        mlflow.set_tracking_uri(None)
    rules = scoring_rules(config, models, has_customers=True)
    sampler.take()
    timings: dict[str, float] = {}
    t_all, cpu_all = time.perf_counter(), time.process_time()
    t0 = time.perf_counter()
    transactions, customers, _ = load_base(config)
    timings["read"] = time.perf_counter() - t0
    stage_rss["read"] = sampler.take()
    n_transactions = len(transactions)
    chunked = score_chunks(transactions, AS_OF, models, rules, customers=customers, chunk_size=chunk_size,
                           timings=timings)
    del transactions, customers  # as custval score does: released before the lists
    scored = finish_base(chunked, models, rules, timings=timings)
    del chunked
    stage_rss["score"] = sampler.take()
    t0 = time.perf_counter()
    write_tables([(scored.scores, out, {"custval.as_of": str(AS_OF.date()),
                                        "custval.reasons": f"top {rules.reasons_top} of the retention list"})])
    timings["write"] = time.perf_counter() - t0
    stage_rss["write"] = sampler.take()
    total, cpu = time.perf_counter() - t_all, time.process_time() - cpu_all
    sampler.stop()
    scores = scored.scores
    return {"customers": len(scores), "transactions": n_transactions, "seconds": total, "cpu_seconds": cpu,
            "customers_per_second": len(scores) / total, "stages": timings, "stage_peak_rss_mb": stage_rss,
            "peak_rss_mb": _peak_rss_mb(), "n_chunks": scored.n_chunks, "columns": len(scores.columns),
            "reasons": int(scores["reason_1"].notna().sum()), "reasons_top": rules.reasons_top,
            "summary": scored.summary, "output_mb": os.path.getsize(out) / 2**20}


def _run_size(uri: str, files: dict, out: str, chunk_size: int) -> dict:
    return score_once(uri, files, out, chunk_size)


def _print(size: int, res: dict) -> None:
    seconds, rss = TARGETS.get(size, (None, None))
    met = [f"< {seconds:.0f} s: {'met' if res['seconds'] < seconds else 'NOT MET'}"] if seconds else []
    if rss:
        met.append(f"peak RSS < {rss / 1024:.0f} GiB: {'met' if res['peak_rss_mb'] < rss else 'NOT MET'}")
    print(f"\n{res['customers']:,} customers scored ({res['transactions']:,} transactions, {res['n_chunks']} chunks, "
          f"{res['columns']} columns): {res['seconds']:.1f} s (CPU {res['cpu_seconds']:.0f} s), "
          f"{res['customers_per_second']:,.0f} customers/s, "
          f"peak RSS {res['peak_rss_mb']:,.0f} MB" + (f"  [{'; '.join(met)}]" if met else ""))
    for stage in STAGES:
        if stage in res["stages"]:
            print(f"  {stage:<11} {res['stages'][stage]:8.2f} s")
    print("  peak RSS by step: " + ", ".join(f"{k} {v:,.0f} MB" for k, v in res["stage_peak_rss_mb"].items()))
    print(f"  reasons: top {res['reasons_top']} of the retention list only ({res['reasons']} customers); "
          f"output {res['output_mb']:,.0f} MB")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"sizes {QUICK_SIZES}")
    parser.add_argument("--sizes", help="comma-separated numbers of customers to score")
    parser.add_argument("--store", type=Path, help="directory of the MLflow store and the bases (kept)")
    parser.add_argument("--chunk-size", type=int, default=250_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else list(QUICK_SIZES if args.quick else SIZES)
    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench_scoring-") as tmp:
        store = args.store.resolve() if args.store else Path(tmp)
        uri = train_models(store, args.seed)
        results = {}
        for n in sizes:
            files = write_base(store, n, args.seed, store)
            out = str(Path(tmp) / f"scores-{n}.parquet")
            with get_context("spawn").Pool(1) as pool:  # a fresh process: its peak RSS is this run's
                res = pool.apply(_run_size, (uri, files, out, args.chunk_size))
            seconds, rss = TARGETS.get(n, (None, None))
            res["target_seconds"], res["target_peak_rss_mb"] = seconds, rss
            res["target_met"] = (seconds is None or res["seconds"] < seconds) and (
                rss is None or res["peak_rss_mb"] < rss)
            results[n] = res
            _print(n, res)
    report = {"benchmark": "bench_scoring", "started": started, "quick": args.quick, "seed": args.seed,
              "chunk_size": args.chunk_size, "train_customers": TRAIN_CUSTOMERS, "as_of": str(AS_OF.date()),
              "load_average_before": load_before, "load_average_after": os.getloadavg(), "machine": machine("numpy", "pandas", "xgboost"),
              "results": {str(k): v for k, v in results.items()}}
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"bench_scoring-{time.strftime('%Y%m%d-%H%M%S')}{'-quick' if args.quick else ''}.json"
    path.write_text(json.dumps(report, indent=2, default=float))
    print(f"\nload average before/after: {load_before[0]:.2f} / {report['load_average_after'][0]:.2f} on "
          f"{os.cpu_count()} cores; results written to {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
