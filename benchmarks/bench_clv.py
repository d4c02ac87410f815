#!/usr/bin/env python
"""CLV speed benchmark: custval against lifetimes (the reference implementation) on simulated customer bases.

    python benchmarks/bench_clv.py [--quick] [--sections rfm,fit,scale,score] [--seed 0]

Sections (each runs in a fresh process, so its peak memory is its own):
  rfm    rfm_summary vs lifetimes summary_data_from_transaction_data (freq='D') on 10M transactions:
         the outputs are checked identical first, then both are timed (target: ours >= 10x faster);
  fit    BetaGeo.fit vs lifetimes BetaGeoFitter.fit on 1M customers (daily periods, T up to 2 years),
         same process, parameters equal within 1e-4 relative (target: ours >= 10x faster);
  scale  simulate 10M customers (time, peak memory), rfm_summary of their log, BetaGeo.fit on the daily
         summary (target: fit < 30 s);
  score  CustomerValue.predict on 1M customers, horizon 12M, with weekly (53 steps) and daily (366 steps)
         periods (target: < 5 s each), after checking it against the step-by-step definition on a sample;
         then customer_lifetime_value vs lifetimes GammaGammaFitter.customer_lifetime_value (12 months of 30
         days, freq='D') at identical parameters: outputs equal within 1e-6 relative first, then both timed
         (target: ours >= 10x faster).
--quick divides every size by 10. Results are printed and written as JSON to benchmarks/results/.
Timings are wall-clock; ours is the best of 3 runs, lifetimes a single run (it takes tens of seconds).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from machine import machine

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

# CDNOW-like parameters (published weekly BG/NBD fit, alpha in days) and its Gamma-Gamma spend.
BGNBD = dict(r=0.243, alpha=4.414 * 7, a=0.793, b=2.426)
SPEND = dict(spend_p=6.25, spend_q=3.74, spend_gamma=15.44)
WINDOW = dict(start="2024-01-01", end="2025-12-31", period="D")  # T up to 2 years

SIZES = {"rfm_transactions": 10_000_000, "fit_customers": 1_000_000, "scale_customers": 10_000_000,
         "score_customers": 1_000_000}
TARGETS = {"rfm_speedup": 10.0, "fit_speedup": 10.0, "scale_fit_seconds": 30.0, "score_seconds": 5.0,
           "score_speedup": 10.0}
PARAM_RTOL = 1e-4
CLV_RTOL = 1e-6  # custval vs lifetimes (different formulas for the same quantity)
STEPWISE_RTOL = 1e-10  # the one-pass prediction vs the step-by-step definition (same formulas)
STEPWISE_SAMPLE = 20_000  # customers checked against (and timed with) the step-by-step computation
MONTHLY_RATE = 0.01  # lifetimes' default monthly discount rate
OUR_REPEATS = 3


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _best_of(fn, repeats: int):
    """(best wall time, result of the last run)."""
    best, result = math.inf, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def _quiet_lifetimes():
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    import lifetimes

    return lifetimes


# ----------------------------------------------------------------------------------------------- sections
def bench_rfm(n_rows: int, seed: int) -> dict:
    """rfm_summary vs lifetimes summary_data_from_transaction_data on a ~n_rows transaction log."""
    lifetimes = _quiet_lifetimes()
    from lifetimes.utils import summary_data_from_transaction_data

    from custval.data.simulate import simulate_bgnbd
    from custval.features.rfm import rfm_summary

    # ~2.35 rows per customer with these parameters; simulate a little more and cut at a customer boundary
    sim = simulate_bgnbd(int(n_rows / 2.2), **BGNBD, **SPEND, **WINDOW, seed=seed)
    tx = sim.transactions
    if len(tx) > n_rows:
        last_customer = tx["customer_id"].iat[n_rows]
        tx = tx.iloc[: int(np.searchsorted(tx["customer_id"].to_numpy(), last_customer))]
    end = sim.observation_end
    del sim

    ours_s, ours = _best_of(lambda: rfm_summary(tx, end, "D"), OUR_REPEATS)
    t0 = time.perf_counter()
    ref = summary_data_from_transaction_data(tx, "customer_id", "timestamp", monetary_value_col="amount",
                                             observation_period_end=end, freq="D")
    ref_s = time.perf_counter() - t0

    ref = ref.reindex(ours.index)
    same_customers = len(ref) == len(ours) and not ref.isna().any().any()
    exact_cols = {c: bool(np.array_equal(ours[c].to_numpy(float), ref[c].to_numpy(float)))
                  for c in ("frequency", "recency", "T")}
    m_ours, m_ref = ours["monetary_value"].to_numpy(float), ref["monetary_value"].to_numpy(float)
    monetary_rel = float(np.max(np.abs(m_ours - m_ref) / np.maximum(np.abs(m_ref), 1e-300)))
    identical = same_customers and all(exact_cols.values()) and monetary_rel <= 1e-9
    return {
        "section": "rfm", "transactions": len(tx), "customers": len(ours),
        "ours_seconds": ours_s, "lifetimes_seconds": ref_s, "speedup": ref_s / ours_s,
        "target_speedup": TARGETS["rfm_speedup"], "identical_output": identical,
        "exact_equal_columns": exact_cols, "monetary_max_rel_diff": monetary_rel,
        "peak_rss_mb": _peak_rss_mb(), "lifetimes_version": lifetimes.__version__,
    }


def bench_fit(n_customers: int, seed: int) -> dict:
    """BetaGeo.fit vs lifetimes BetaGeoFitter.fit on the daily RFM summary of n_customers."""
    _quiet_lifetimes()
    from lifetimes import BetaGeoFitter

    from custval.data.simulate import simulate_bgnbd
    from custval.features.rfm import rfm_summary
    from custval.models.clv.bgnbd import BetaGeo

    sim = simulate_bgnbd(n_customers, **BGNBD, **SPEND, **WINDOW, seed=seed)
    summary = rfm_summary(sim.transactions, sim.observation_end, "D")[["frequency", "recency", "T"]]
    del sim

    ours_s, ours = _best_of(lambda: BetaGeo().fit(summary), OUR_REPEATS)
    t0 = time.perf_counter()
    ref = BetaGeoFitter().fit(summary["frequency"], summary["recency"], summary["T"])
    ref_s = time.perf_counter() - t0

    names = ("r", "alpha", "a", "b")
    ours_p = {k: float(ours.params_[k]) for k in names}
    ref_p = {k: float(ref.params_[k]) for k in names}
    rel = {k: abs(ours_p[k] - ref_p[k]) / abs(ref_p[k]) for k in names}
    return {
        "section": "fit", "customers": n_customers,
        "ours_seconds": ours_s, "lifetimes_seconds": ref_s, "speedup": ref_s / ours_s,
        "target_speedup": TARGETS["fit_speedup"], "params_ours": ours_p, "params_lifetimes": ref_p,
        "params_true": dict(BGNBD), "params_max_rel_diff": max(rel.values()),
        "params_equal": max(rel.values()) <= PARAM_RTOL, "peak_rss_mb": _peak_rss_mb(),
    }


def bench_scale(n_customers: int, seed: int) -> dict:
    """Simulate n_customers, summarise their log daily and fit BetaGeo: time and memory at scale."""
    from custval.data.simulate import simulate_bgnbd
    from custval.features.rfm import rfm_summary
    from custval.models.clv.bgnbd import BetaGeo

    rss_before = _peak_rss_mb()
    t0 = time.perf_counter()
    sim = simulate_bgnbd(n_customers, **BGNBD, **SPEND, **WINDOW, seed=seed)
    simulate_s = time.perf_counter() - t0
    simulate_peak = _peak_rss_mb()
    n_rows = len(sim.transactions)

    t0 = time.perf_counter()
    summary = rfm_summary(sim.transactions, sim.observation_end, "D")[["frequency", "recency", "T"]]
    rfm_s = time.perf_counter() - t0
    del sim

    t0 = time.perf_counter()
    model = BetaGeo().fit(summary)
    fit_s = time.perf_counter() - t0
    est = {k: float(model.params_[k]) for k in ("r", "alpha", "a", "b")}
    return {
        "section": "scale", "customers": n_customers, "transactions": n_rows,
        "simulate_seconds": simulate_s, "simulate_peak_rss_mb": simulate_peak,
        "rss_before_simulate_mb": rss_before, "rfm_seconds": rfm_s, "fit_seconds": fit_s,
        "target_fit_seconds": TARGETS["scale_fit_seconds"], "params_fit": est, "params_true": dict(BGNBD),
        "peak_rss_mb": _peak_rss_mb(),
    }


def _max_rel_diff(got, want) -> float:
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    return float(np.max(np.abs(got - want) / np.maximum(np.abs(want), 1e-300), initial=0.0))


def _stepwise_predict(model, X):
    """CustomerValue.predict as it was computed before the one-pass path: one BetaGeo.expected_purchases call
    per discounting step, each evaluated row by row (one horizon per customer), differences discounted."""
    import pandas as pd

    from custval.models.clv.value import step_ends
    from custval.units import DAYS_PER_YEAR, period_days

    bg, n = model.purchase_model_, len(X)
    ends = step_ends(model.horizon, model.period)
    days = period_days(model.period)
    total, previous = np.zeros(n), np.zeros(n)
    for t_k in ends:
        cumulative = bg.expected_purchases(X, np.full(n, t_k))
        total += (cumulative - previous) * (1.0 + model.annual_discount_rate) ** (-t_k * days / DAYS_PER_YEAR)
        previous = cumulative
    spend = model.spend_model_.expected_spend(X)
    return pd.DataFrame({"expected_purchases": previous, "p_alive": bg.p_alive(X), "expected_spend": spend,
                         "clv": spend * total}, index=X.index)


def _in_period(daily_model, period: str):
    """The daily CustomerValue re-expressed in another model period: alpha (a rate per period) scales with the
    period length, the other parameters do not; an exact change of time unit, so no second fit is needed."""
    from custval.models.clv.value import CustomerValue
    from custval.units import period_days

    spec = daily_model.to_dict()
    bg = spec["fitted"]["purchase_model"]["fitted"]
    bg["params"][bg["names"].index("alpha")] /= period_days(period)
    spec["hyper_params"] = {**spec["hyper_params"], "period": period}
    return CustomerValue.from_dict(spec)


def bench_score(n_customers: int, seed: int) -> dict:
    """CustomerValue.predict (12M; weekly and daily periods) and customer_lifetime_value vs lifetimes."""
    lifetimes = _quiet_lifetimes()
    from lifetimes import BetaGeoFitter, GammaGammaFitter

    from custval.data.simulate import simulate_bgnbd
    from custval.features.rfm import rfm_summary
    from custval.models.clv.value import CustomerValue, customer_lifetime_value, step_ends

    sim = simulate_bgnbd(n_customers, **BGNBD, **SPEND, **WINDOW, seed=seed)
    daily = rfm_summary(sim.transactions, sim.observation_end, "D")
    del sim
    t0 = time.perf_counter()
    model_d = CustomerValue(period="D", horizon="12M", annual_discount_rate=0.10).fit(daily)
    fit_s = time.perf_counter() - t0
    model_w = _in_period(model_d, "W")
    weekly = daily.assign(recency=daily["recency"] / 7.0, T=daily["T"] / 7.0)
    distinct_x_T = len(daily.drop_duplicates(["frequency", "T"]))
    distinct_rows = len(daily.drop_duplicates(["frequency", "recency", "T"]))

    # 1. the one-pass prediction equals the step-by-step definition (checked on a sample: the latter is slow)
    sample = np.random.default_rng(seed).choice(n_customers, size=min(STEPWISE_SAMPLE, n_customers), replace=False)
    predict, stepwise = {}, {}
    for name, model, X in (("weekly", model_w, weekly), ("daily", model_d, daily)):
        part = X.iloc[np.sort(sample)]
        t0 = time.perf_counter()
        want = _stepwise_predict(model, part)
        stepwise[name] = {"seconds": time.perf_counter() - t0,
                          "max_rel_diff": max(_max_rel_diff(model.predict(part)[c], want[c]) for c in want.columns),
                          "steps": len(step_ends(model.horizon, model.period))}
        predict[name], _ = _best_of(lambda model=model, X=X: model.predict(X), OUR_REPEATS)

    # 2. lifetimes' CLV at identical parameters: 12 months of 30 days, monthly rate d, freq='D'
    bgf = BetaGeoFitter()
    bgf.params_ = _series({k: model_d.purchase_model_.params_[k] for k in ("r", "alpha", "a", "b")})
    bgf.predict = bgf.conditional_expected_number_of_purchases_up_to_time
    ggf = GammaGammaFitter()
    ggf.params_ = _series({"p": model_d.spend_model_.params_["p"], "q": model_d.spend_model_.params_["q"],
                             "v": model_d.spend_model_.params_["gamma"]})
    annual = (1.0 + MONTHLY_RATE) ** (365.25 / 30.0) - 1.0

    def ours(X):
        return customer_lifetime_value(model_d.purchase_model_, model_d.spend_model_, X, horizon="360D", period="D",
                                       step="30D", annual_discount_rate=annual)

    def reference(X):
        return ggf.customer_lifetime_value(bgf, X["frequency"], X["recency"], X["T"], X["monetary_value"], time=12,
                                           discount_rate=MONTHLY_RATE, freq="D").to_numpy()

    head = daily.iloc[: min(10_000, n_customers)]
    first_check = _max_rel_diff(ours(head), reference(head))  # equality first, on a slice
    ours_s, ours_clv = _best_of(lambda: ours(daily), OUR_REPEATS)
    t0 = time.perf_counter()
    ref_clv = reference(daily)
    ref_s = time.perf_counter() - t0
    clv_rel = max(first_check, _max_rel_diff(ours_clv, ref_clv))
    stepwise_rel = {name: v["max_rel_diff"] for name, v in stepwise.items()}
    return {
        "section": "score", "customers": n_customers, "distinct_frequency_T": distinct_x_T,
        "distinct_rows": distinct_rows, "fit_seconds": fit_s,
        "predict_weekly_seconds": predict["weekly"], "predict_daily_seconds": predict["daily"],
        "steps_weekly": stepwise["weekly"]["steps"], "steps_daily": stepwise["daily"]["steps"],
        "target_predict_seconds": TARGETS["score_seconds"],
        "stepwise_sample": len(sample), "stepwise_weekly_seconds": stepwise["weekly"]["seconds"],
        "stepwise_daily_seconds": stepwise["daily"]["seconds"], "stepwise_max_rel_diff": stepwise_rel,
        "stepwise_equal": max(stepwise_rel.values()) <= STEPWISE_RTOL,
        "ours_seconds": ours_s, "lifetimes_seconds": ref_s, "speedup": ref_s / ours_s,
        "target_speedup": TARGETS["score_speedup"], "clv_max_rel_diff": clv_rel, "clv_equal": clv_rel <= CLV_RTOL,
        "lifetimes_settings": {"time": 12, "discount_rate": MONTHLY_RATE, "freq": "D"},
        "custval_settings": {"horizon": "360D", "step": "30D", "period": "D", "annual_discount_rate": annual},
        "peak_rss_mb": _peak_rss_mb(), "lifetimes_version": lifetimes.__version__,
    }


def _series(values: dict):
    import pandas as pd

    return pd.Series(values, dtype=float)


SECTIONS = {"rfm": (bench_rfm, "rfm_transactions"), "fit": (bench_fit, "fit_customers"),
            "scale": (bench_scale, "scale_customers"), "score": (bench_score, "score_customers")}


# ----------------------------------------------------------------------------------------------- driver
def _run_isolated(fn, *args) -> dict:
    """Run one section in a fresh spawned process (clean peak-RSS figure, memory returned afterwards)."""
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def _table(results: list[dict]) -> str:
    rows = [("benchmark", "size", "ours s", "lifetimes s", "ratio", "target", "met", "check")]
    for res in results:
        if res["section"] == "rfm":
            rows.append(("rfm_summary vs summary_data_from_transaction_data", f"{res['transactions']:,} tx",
                         f"{res['ours_seconds']:.2f}", f"{res['lifetimes_seconds']:.2f}", f"{res['speedup']:.1f}x",
                         f">= {res['target_speedup']:.0f}x", _yes(res["speedup"] >= res["target_speedup"]),
                         "identical" if res["identical_output"] else "OUTPUT DIFFERS"))
        elif res["section"] == "fit":
            rows.append(("BetaGeo.fit vs BetaGeoFitter.fit", f"{res['customers']:,} cust",
                         f"{res['ours_seconds']:.2f}", f"{res['lifetimes_seconds']:.2f}", f"{res['speedup']:.1f}x",
                         f">= {res['target_speedup']:.0f}x", _yes(res["speedup"] >= res["target_speedup"]),
                         f"params rel diff {res['params_max_rel_diff']:.1e}"
                         + ("" if res["params_equal"] else " > 1e-4")))
        elif res["section"] == "scale":
            n = f"{res['customers']:,} cust"
            rows.append(("simulate_bgnbd", n, f"{res['simulate_seconds']:.2f}", "-", "-", "-", "-",
                         f"{res['transactions']:,} tx, peak RSS {res['simulate_peak_rss_mb']:,.0f} MB"))
            rows.append(("rfm_summary (daily)", f"{res['transactions']:,} tx", f"{res['rfm_seconds']:.2f}", "-", "-",
                         "-", "-", ""))
            rows.append(("BetaGeo.fit", n, f"{res['fit_seconds']:.2f}", "-", "-",
                         f"< {res['target_fit_seconds']:.0f} s", _yes(res["fit_seconds"] < res["target_fit_seconds"]),
                         "params " + ", ".join(f"{k}={v:.4g}" for k, v in res["params_fit"].items())))
        elif res["section"] == "score":
            n = f"{res['customers']:,} cust"
            for name in ("weekly", "daily"):
                seconds, rel = res[f"predict_{name}_seconds"], res["stepwise_max_rel_diff"][name]
                what = f"({name[0].upper()}, 12M: {res[f'steps_{name}']} steps)"
                rows.append((f"CustomerValue.predict {what}", n, f"{seconds:.2f}", "-", "-",
                             f"< {res['target_predict_seconds']:.0f} s", _yes(seconds < res["target_predict_seconds"]),
                             f"= step-by-step within 1e-10 (rel diff {rel:.0e})" if rel <= STEPWISE_RTOL
                             else f"STEP-BY-STEP DIFFERS (rel diff {rel:.1e})"))
                rows.append((f"  step by step, as before {what}", f"{res['stepwise_sample']:,} cust",
                             f"{res[f'stepwise_{name}_seconds']:.2f}", "-", "-", "-", "-",
                             "one expected_purchases call per step"))
            rows.append(("customer_lifetime_value vs GammaGammaFitter.customer_lifetime_value", n,
                         f"{res['ours_seconds']:.2f}", f"{res['lifetimes_seconds']:.2f}", f"{res['speedup']:.1f}x",
                         f">= {res['target_speedup']:.0f}x", _yes(res["speedup"] >= res["target_speedup"]),
                         f"clv rel diff {res['clv_max_rel_diff']:.1e}" + ("" if res["clv_equal"] else " > 1e-6")))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _yes(ok: bool) -> str:
    return "yes" if ok else "NO"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10x smaller sizes")
    parser.add_argument("--sections", default="rfm,fit,scale,score",
                        help="comma-separated subset of rfm,fit,scale,score")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown sections {unknown}; choose from {sorted(SECTIONS)}")
    scale = 10 if args.quick else 1

    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    load_before = os.getloadavg()
    results = []
    for name in sections:
        fn, size_key = SECTIONS[name]
        size = SIZES[size_key] // scale
        print(f"[bench_clv] {name}: {size:,} ...", flush=True)
        t0 = time.perf_counter()
        res = _run_isolated(fn, size, args.seed)
        res["section_wall_seconds"] = time.perf_counter() - t0
        results.append(res)
        print(json.dumps(res, indent=None, default=float), flush=True)

    report = {"benchmark": "bench_clv", "started": started, "quick": args.quick, "seed": args.seed,
              "sizes": {k: v // scale for k, v in SIZES.items()}, "targets": TARGETS,
              "load_average_before": load_before, "load_average_after": os.getloadavg(),
              "machine": machine("numpy", "pandas", "scipy"), "results": results}
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"bench_clv-{time.strftime('%Y%m%d-%H%M%S')}{'-quick' if args.quick else ''}.json"
    out.write_text(json.dumps(report, indent=2, default=float))
    print()
    print(_table(results))
    print(f"\nload average before/after: {load_before[0]:.2f} / {report['load_average_after'][0]:.2f} "
          f"on {os.cpu_count()} cores; results written to {out.relative_to(ROOT)}")
    checks = ("identical_output", "params_equal", "stepwise_equal", "clv_equal")
    checks_ok = all(r.get(check, True) for r in results for check in checks)
    return 0 if checks_ok else 1


if __name__ == "__main__":
    sys.exit(main())
