#!/usr/bin/env python
"""Churn model quality on customer tables: custval's model choice (untuned and tuned) against plain XGBoost,
scikit-learn's HistGradientBoostingClassifier and a logistic regression, all on the same folds.

    python benchmarks/bench_churn_tables.py [--quick] [--trials N] [--seed 0] [--csv PATH ID_COLUMN LABEL]...

Tables (one row per customer, a 0/1 or yes/no label):
- telco: `custval.data.simulate_table.simulate_churn_table` (IBM Telco style, 7,043 rows; --quick 3,000);
- bank: `bank_table` below (a bank churn export in the public one's shape, 10,000 rows; --quick 4,000);
- retail: `custval.data.simulate_churn.simulate_churn` (20,000 customers; --quick 6,000), its point-in-time
  features at one cutoff (2024-10-03) with the churn label of the 90 days after it;
- every `--csv PATH ID_COLUMN LABEL` given (any labelled table, read by custval.data.loaders.load_customer_table).
Each table goes through custval's loading rules (text numbers to numbers, yes/no labels parsed) and its
identifier check (custval.features.identifiers.drop_columns: row numbers, surnames).

Methods, each fitted on the training part of every outer fold (5-fold stratified, shuffled with --seed) and
scored on its held-out part:
- custval: what `custval train churn` does with a customer table (custval.jobs.snapshot_jobs.fit_choice with
  the default config): candidates xgboost, logistic and average cross-validated on the training part (5 inner
  folds), the best refitted on all of it and calibrated on its out-of-fold scores;
- custval tuned: what `custval tune churn --trials N` does: XGBoost searched by Optuna on the inner folds (the
  first trial the untuned settings), then the same choice with the tuned XGBoost;
- xgboost: xgboost.XGBClassifier(n_estimators=300, max_depth=4, learning_rate=0.05), hist trees with native
  categoricals;
- hgb: sklearn HistGradientBoostingClassifier() defaults (categories from the pandas dtype);
- logistic: sklearn LogisticRegression(max_iter=1000) on median-imputed, standardised numbers and one-hot
  categories.
Reported: mean ROC AUC and Brier score over the outer folds, custval's ratios to the best of the three
references, and tuned vs untuned. Target: custval >= the best reference's ROC AUC on every table, and tuned >=
untuned. Results are printed and written as JSON to benchmarks/results/bench_churn_tables-<timestamp>[-quick].json.
The exit status is 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SIZES = {"telco": (7_043, 3_000), "bank": (10_000, 4_000), "retail": (20_000, 6_000)}
OUTER_FOLDS = 5
TRIALS = (10, 4)  # Optuna trials per outer fold: full, --quick
REFERENCES = ("xgboost", "hgb", "logistic")


# ------------------------------------------------------------------------------------------------- tables
def bank_table(n: int, seed: int) -> pd.DataFrame:
    """A bank churn export shaped like the public one (RowNumber, CustomerId, Surname, CreditScore, Geography,
    Gender, Age, Tenure, Balance, NumOfProducts, HasCrCard, IsActiveMember, EstimatedSalary, Exited) with the
    effects reported for it: churn peaks in the late forties and fifties, is highest with 3-4 products and
    lowest with 2, higher in Germany, for women, for inactive members (more so when older) and with a balance."""
    rng = np.random.default_rng([seed, 0xB4])
    geography = rng.choice(["France", "Germany", "Spain"], n, p=[0.5, 0.25, 0.25])
    gender = rng.choice(["Female", "Male"], n, p=[0.45, 0.55])
    age = np.clip(np.round(rng.gamma(9.0, 4.3, n)), 18, 92)
    products = rng.choice([1, 2, 3, 4], n, p=[0.51, 0.46, 0.027, 0.003])
    active = rng.random(n) < 0.515
    balance = np.where(rng.random(n) < 0.36, 0.0, np.round(rng.normal(119_800, 30_000, n), 2))
    credit = np.clip(np.round(rng.normal(650, 96, n)), 350, 850)
    z = (-2.4 + 2.6 * np.exp(-(((age - 52.0) / 11.0) ** 2)) + 0.02 * (age - 39.0)
         + np.select([products == 1, products == 2, products >= 3], [0.0, -1.3, 2.6])
         + 0.75 * (geography == "Germany") + 0.45 * (gender == "Female")
         - np.where(active, 0.6 + 0.03 * np.clip(age - 40.0, 0, None), 0.0)
         + 0.35 * (balance > 0) - 0.0007 * (credit - 650))
    exited = rng.random(n) < 1.0 / (1.0 + np.exp(-z))
    return pd.DataFrame({
        "RowNumber": np.arange(1, n + 1), "CustomerId": 15_565_701 + rng.permutation(250_000)[:n],
        "Surname": rng.choice([f"Name{i:04d}" for i in range(2_900)], n), "CreditScore": credit.astype(np.int64),
        "Geography": geography, "Gender": gender, "Age": age.astype(np.int64), "Tenure": rng.integers(0, 11, n),
        "Balance": balance, "NumOfProducts": products, "HasCrCard": (rng.random(n) < 0.7).astype(np.int64),
        "IsActiveMember": active.astype(np.int64), "EstimatedSalary": np.round(rng.uniform(11.6, 199_992.5, n), 2),
        "Exited": exited.astype(np.int64)})


def retail_table(n: int, seed: int) -> pd.DataFrame:
    """The churn simulator's customers at one cutoff: point-in-time features and the 90-day churn label."""
    from custval.data.simulate_churn import simulate_churn
    from custval.features.snapshots import build_snapshot

    sim = simulate_churn(n, seed=seed, start="2023-01-01", end="2025-01-01")
    cutoff = pd.Timestamp("2024-10-03")
    snap = build_snapshot(sim.transactions, cutoff, customers=sim.customers, labels=True, horizon_days=90,
                          observation_end=pd.Timestamp(sim.observation_end))
    return snap.drop(columns=[c for c in snap.columns if c.startswith("propensity_") or c == "cutoff"])


def prepared(frame: pd.DataFrame, id_column: str, label: str) -> tuple[pd.DataFrame, np.ndarray]:
    """Features and 0/1 labels as `custval train churn` reads a customer table."""
    from custval.data.loaders import load_customer_table
    from custval.features.datasets import customer_frame
    from custval.features.identifiers import drop_columns

    X, y = load_customer_table(frame, id_column=id_column, label=label)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        X = drop_columns(customer_frame(X, id_column), protected=("customer_id",)).drop(columns="customer_id")
    return X.reset_index(drop=True), np.asarray(y, dtype=np.int8)


def tables(quick: bool, seed: int, csvs: list[list[str]]) -> dict[str, tuple[pd.DataFrame, np.ndarray]]:
    from custval.data.simulate_table import simulate_churn_table

    size = {name: sizes[1 if quick else 0] for name, sizes in SIZES.items()}
    out = {"telco": prepared(simulate_churn_table(size["telco"], seed=seed)[0], "customerID", "Churn"),
           "bank": prepared(bank_table(size["bank"], seed), "CustomerId", "Exited"),
           "retail": prepared(retail_table(size["retail"], seed), "customer_id", "churn")}
    for path, id_column, label in csvs:
        from custval.data.io import read_table

        out[Path(path).stem] = prepared(read_table(path), id_column, label)
    return out


# ------------------------------------------------------------------------------------------------ methods
def _as_category(X: pd.DataFrame) -> pd.DataFrame:
    """Text and bool columns as pandas categories of plain str, missing as NaN (what XGBoost's and HGB's native
    categorical splits take; HGB's encoder refuses pandas' <NA> among the values)."""
    out = X.copy()
    for column in out.columns:
        if not pd.api.types.is_numeric_dtype(out[column].dtype) or pd.api.types.is_bool_dtype(out[column].dtype):
            text = out[column].astype(object)
            out[column] = pd.Categorical(text.where(text.notna(), None).map(str, na_action="ignore"))
    return out


def _text_with_missing(frame: pd.DataFrame) -> pd.DataFrame:
    """Categories as text, missing ones as their own level (scikit-learn's encoders refuse pandas' <NA>)."""
    return frame.astype(object).where(frame.notna(), "<missing>").astype(str)


def reference(name: str, seed: int):
    import xgboost as xgb
    from sklearn.compose import ColumnTransformer, make_column_selector
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

    if name == "xgboost":
        return xgb.XGBClassifier(n_estimators=300, max_depth=4, learning_rate=0.05, tree_method="hist",
                                 enable_categorical=True, random_state=seed, n_jobs=2)
    if name == "hgb":
        return HistGradientBoostingClassifier(random_state=seed)
    numbers = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
    categories = make_pipeline(FunctionTransformer(_text_with_missing), OneHotEncoder(handle_unknown="ignore"))
    columns = ColumnTransformer([("numbers", numbers, make_column_selector(dtype_include="number")),
                                 ("categories", categories, make_column_selector(dtype_exclude="number"))])
    return make_pipeline(columns, LogisticRegression(max_iter=1000))


def custval_model(X: pd.DataFrame, y: np.ndarray, seed: int, trials: int | None):
    """custval's choice on a customer table (the churn job's code path); with `trials`, after tuning XGBoost as
    `custval tune churn` does."""
    import optuna

    from custval.config import ChurnConfig
    from custval.jobs.snapshot_jobs import fit_choice, training_folds
    from custval.models.classifiers import BoostedClassifier
    from custval.models.tuning import tune

    config = ChurnConfig(seed=seed)
    rows = X.assign(customer_id=np.arange(len(X)), churn=y)
    folds = training_folds(config, rows, y, "table")
    extra = None
    if trials:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        base = {"n_jobs": 2, "eval_metric": BoostedClassifier().eval_metric, **dict(config.model.xgboost)}
        result = tune("xgboost", X, y, folds=folds, n_trials=trials, seed=seed, base_params=base,
                      start_with_base=True)
        extra = {k: v for k, v in result.best_params.items() if k not in ("random_state", "callbacks")}
    chosen = fit_choice(config, rows, rows.iloc[:0], list(X.columns), "churn", "table", extra, folds=folds)
    return chosen


def evaluate(name: str, X: pd.DataFrame, y: np.ndarray, seed: int, trials: int) -> dict:
    from sklearn.metrics import brier_score_loss, roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    outer = list(StratifiedKFold(OUTER_FOLDS, shuffle=True, random_state=seed).split(X, y))
    Xc = _as_category(X)
    scores: dict[str, dict[str, list[float]]] = {}
    chosen: dict[str, list[str]] = {"custval": [], "custval_tuned": []}
    seconds: dict[str, float] = {}

    def record(method: str, fold: np.ndarray, p: np.ndarray, started: float) -> None:
        entry = scores.setdefault(method, {"roc_auc": [], "brier": []})
        entry["roc_auc"].append(float(roc_auc_score(y[fold], p)))
        entry["brier"].append(float(brier_score_loss(y[fold], p)))
        seconds[method] = seconds.get(method, 0.0) + time.perf_counter() - started

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for train, test in outer:
            for method, n_trials in (("custval", None), ("custval_tuned", trials)):
                started = time.perf_counter()
                model = custval_model(X.iloc[train].reset_index(drop=True), y[train], seed, n_trials)
                chosen[method].append(model.name)
                record(method, test, model.model.predict_proba(X.iloc[test])[:, 1], started)
            for method in REFERENCES:
                started = time.perf_counter()
                # the trees take pandas categories; the logistic pipeline encodes the raw text itself
                frame = X if method == "logistic" else Xc
                fitted = reference(method, seed).fit(frame.iloc[train], y[train])
                record(method, test, fitted.predict_proba(frame.iloc[test])[:, 1], started)
    summary = {m: {k: float(np.mean(v)) for k, v in s.items()} for m, s in scores.items()}
    best = max(REFERENCES, key=lambda m: summary[m]["roc_auc"])
    return {"table": name, "rows": len(X), "features": X.shape[1], "churn_rate": float(y.mean()), "summary": summary,
            "folds": scores, "chosen": chosen, "seconds": seconds, "best_reference": best,
            "auc_ratio": summary["custval"]["roc_auc"] / summary[best]["roc_auc"],
            "brier_ratio": summary["custval"]["brier"] / summary[best]["brier"],
            "beats_references": summary["custval"]["roc_auc"] >= summary[best]["roc_auc"],
            "tuned_at_least_untuned": summary["custval_tuned"]["roc_auc"] >= summary["custval"]["roc_auc"]}


# ------------------------------------------------------------------------------------------------- report
def _machine() -> dict:
    import sklearn
    import xgboost

    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    return {"python": platform.python_version(), "cores": os.cpu_count(), "sklearn": sklearn.__version__,
            "xgboost": xgboost.__version__, "commit": commit, "load_average": os.getloadavg()}


def print_table(results: list[dict]) -> None:
    methods = ("custval", "custval_tuned", *REFERENCES)
    print(f"\n{'table':<10} {'rows':>6} " + " ".join(f"{m:>14}" for m in methods) + "   best ref   AUC ratio"
          "  Brier ratio  chosen (untuned / tuned)")
    for r in results:
        auc = " ".join(f"{r['summary'][m]['roc_auc']:>14.4f}" for m in methods)
        brier = " ".join(f"{r['summary'][m]['brier']:>14.4f}" for m in methods)
        picks = "/".join(sorted(set(r["chosen"]["custval"]))) + " ; " + "/".join(sorted(set(r["chosen"]["custval_tuned"])))
        print(f"{r['table']:<10} {r['rows']:>6} {auc}   {r['best_reference']:<9} {r['auc_ratio']:>9.4f}"
              f"  {r['brier_ratio']:>11.4f}  {picks}")
        print(f"{'  Brier':<17} {brier}")
    for r in results:
        print(f"{r['table']}: custval >= best reference: {'yes' if r['beats_references'] else 'NO'}; tuned >= untuned: "
              f"{'yes' if r['tuned_at_least_untuned'] else 'NO'}; seconds "
              + ", ".join(f"{m} {s:.0f}" for m, s in r["seconds"].items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller tables and fewer trials (about 2 minutes)")
    parser.add_argument("--trials", type=int, default=None, help="Optuna trials per outer fold (default 10; quick 4)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--csv", nargs=3, action="append", default=[], metavar=("PATH", "ID_COLUMN", "LABEL"),
                        help="a labelled customer table to add (repeatable)")
    parser.add_argument("--tables", default=None, help="comma-separated subset of the tables to run")
    args = parser.parse_args(argv)
    trials = args.trials if args.trials is not None else TRIALS[1 if args.quick else 0]
    started = time.perf_counter()
    load_before = os.getloadavg()
    data = tables(args.quick, args.seed, args.csv)
    if args.tables:
        data = {k: v for k, v in data.items() if k in args.tables.split(",")}
    results = []
    for name, (X, y) in data.items():
        print(f"{name}: {len(X):,} rows, {X.shape[1]} features, churn rate {y.mean():.3f} ...", flush=True)
        results.append(evaluate(name, X, y, args.seed, trials))
    print_table(results)
    record = {"quick": args.quick, "trials": trials, "seed": args.seed, "outer_folds": OUTER_FOLDS,
              "seconds": time.perf_counter() - started, "load_before": load_before, "machine": _machine(),
              "results": results}
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"bench_churn_tables-{time.strftime('%Y%m%d-%H%M%S')}{'-quick' if args.quick else ''}.json"
    path.write_text(json.dumps(record, indent=1))
    print(f"\n{record['seconds']:.0f} s; results: {path}")
    met = all(r["beats_references"] and r["tuned_at_least_untuned"] for r in results)
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
