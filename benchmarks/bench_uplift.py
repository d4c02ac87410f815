#!/usr/bin/env python
"""Uplift model quality on campaign tables: every custval learner and custval's chosen learner against
scikit-uplift's and CausalML's comparable models, all on the same stratified 70/30 split.

    python benchmarks/bench_uplift.py [--quick] [--seed 0] [--choice stack|one_se|best] [--csv PATH treatment=COL outcome=COL key=value...]...

Tables (one row per contacted customer, an arm column, a 0/1 outcome):
- crosssell: the simulated cross-sell campaign (control, email, discount; active customers) of
  `custval.data.simulate_campaign.simulate_campaigns(N, seed)` as a campaign-table export (`campaign_table`, the
  same as `simulate_campaign_table(N, seed=seed)`), read by `custval.features.campaigns.campaign_table_dataset`
  with the table's `.reader` column map; N = 40,000 customers (--quick 6,000);
- winback: the simulated win-back campaign (control, offer; lapsed customers) of the same simulation, read alike;
- every `--csv PATH key=value...` given: any campaign table, the keys those of `campaign_table_dataset`
  (treatment=, outcome=, control=, id_column=, spend=, sent_at=; outcomes=, drop=, keep= comma-separated).

Split: one random 70/30 split stratified on arm x outcome (--seed). Methods, fitted on the 70% and scored on
the 30%; with several treatment arms each arm is scored against the control on the rows of the two:
- custval s, t, x, dr, class_transformation: `make_learner(name, xgboost=<the uplift job's default settings>)`
  (class_transformation models one arm: with several arms, one per arm on the control + arm rows);
- custval average: `make_learner("average", members=<the job's default model.average among model.learners>)`,
  the AveragedUplift of those learners (s, t, x), fitted on the 70%;
- custval chosen: what `custval train uplift` does: `choose_learner` with the job's default model.n_folds
  (3 folds of the 70%, stratified alike; 0 would use an inner 80/20 split), model.average and model.choice
  (stack: the members of model.average weighted by stacking on their out-of-fold uplift), then `refit_choice`
  on the whole 70% (stack: each member's refit averaged with its 3 fold models; one_se / best: the chosen
  learner refitted, the same call, data and seed as its row above, so the same predictions);
- sklift solo / two_models / two_models_ddr / class_transformation: sklift.models SoloModel, TwoModels
  (method vanilla and ddr_control), ClassTransformation, one model per arm on the control + arm rows;
- causalml s / t / x / dr (when causalml imports): BaseSClassifier, BaseTClassifier, BaseXClassifier,
  BaseDRLearner, fitted on all arms at once; the propensity given as each arm's share of its arm + control
  training rows (the campaign is randomised), so no propensity model is fitted.
Every reference uses xgboost.XGBClassifier(n_estimators=300, learning_rate=0.05, max_depth=3) (XGBRegressor of
the same settings for CausalML's effect and DR models) on numbers as they are (NaN kept) and one-hot categories.

Reported per table and method: the Qini coefficient and uplift@30% (custval.metrics.uplift, per arm, mean over
arms), and on simulated tables the Qini of ranking by the true uplift and each method's ratio to it. One value
is cross-checked against sklift.metrics. Target: custval chosen's mean Qini >= the best reference's - 0.005
(a tie allowance: two rankings this close differ by less than the split's noise) on every table. Results are
printed and written as JSON to benchmarks/results/bench_uplift-<timestamp>[-quick].json. The exit status is 1
when a target is missed or the cross-check fails.
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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
CUSTOMERS = (40_000, 6_000)  # simulated customers: full, --quick
TEST_SHARE = 0.3
INNER_VALID_SHARE = 0.2
K = 0.3
TOLERANCE = 0.005
XGB = {"n_estimators": 300, "learning_rate": 0.05, "max_depth": 3}
LIST_KEYS = ("outcomes", "drop", "keep")


@dataclass
class Table:
    data: object  # custval.features.campaigns.UpliftData
    truth: pd.DataFrame | None  # uplift_<arm> per row, in the rows' order (simulated tables)


# ------------------------------------------------------------------------------------------------- tables
def csv_reader(pairs: list[str]) -> dict:
    """`key=value` words as keyword arguments of campaign_table_dataset (lists comma-separated)."""
    kwargs = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--csv: expected key=value after the path, got {pair!r}")
        kwargs[key] = tuple(v for v in value.split(",") if v) if key in LIST_KEYS else value
    return kwargs


def tables(quick: bool, seed: int, csvs: list[list[str]]) -> dict[str, Table]:
    from custval.data.simulate_campaign import campaign_table, simulate_campaigns
    from custval.features.campaigns import campaign_table_dataset

    sim = simulate_campaigns(CUSTOMERS[1 if quick else 0], seed=seed)
    out = {}
    for campaign in ("crosssell", "winback"):
        export = campaign_table(sim, campaign, seed=seed)
        data = campaign_table_dataset(export.table, **export.reader)
        out[campaign] = Table(data, export.truth.loc[data.customer_id.to_numpy()].reset_index(drop=True))
    for path, *pairs in csvs:
        out[Path(path).stem] = Table(campaign_table_dataset(path, **csv_reader(pairs)), None)
    return out


def split(treatment: np.ndarray, y: np.ndarray, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row positions (fit, held out), at random, stratified on arm x outcome."""
    from sklearn.model_selection import train_test_split

    strata = pd.Series(treatment).astype(str) + "|" + pd.Series(y).astype(int).astype(str)
    fit, held = train_test_split(np.arange(len(y)), test_size=test_size, stratify=strata, random_state=seed)
    return np.sort(fit), np.sort(held)


# ------------------------------------------------------------------------------------------------ methods
def encoder():
    """Numbers as they are (NaN kept for XGBoost), text one-hot (missing as its own level)."""
    from sklearn.compose import ColumnTransformer, make_column_selector
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

    text = FunctionTransformer(lambda f: f.astype(object).where(f.notna(), "<missing>").astype(str))
    return ColumnTransformer([("numbers", "passthrough", make_column_selector(dtype_include="number")),
                              ("categories", make_pipeline(text, OneHotEncoder(handle_unknown="ignore",
                                                                               sparse_output=False)),
                               make_column_selector(dtype_exclude="number"))])


def xgb_classifier(seed: int):
    import xgboost as xgb

    return xgb.XGBClassifier(**XGB, tree_method="hist", random_state=seed, n_jobs=2)


def xgb_regressor(seed: int):
    import xgboost as xgb

    return xgb.XGBRegressor(**XGB, tree_method="hist", random_state=seed, n_jobs=2)


def sklift_model(name: str, seed: int):
    from sklift.models import ClassTransformation, SoloModel, TwoModels

    if name == "solo":
        return SoloModel(xgb_classifier(seed))
    if name == "class_transformation":
        return ClassTransformation(xgb_classifier(seed))
    method = "ddr_control" if name == "two_models_ddr" else "vanilla"
    return TwoModels(xgb_classifier(seed), xgb_classifier(seed), method=method)


def causalml_model(name: str, seed: int, control: str):
    from causalml.inference.meta import BaseDRLearner, BaseSClassifier, BaseTClassifier, BaseXClassifier

    if name == "s":
        return BaseSClassifier(learner=xgb_classifier(seed), control_name=control)
    if name == "t":
        return BaseTClassifier(learner=xgb_classifier(seed), control_name=control)
    if name == "x":
        return BaseXClassifier(outcome_learner=xgb_classifier(seed), effect_learner=xgb_regressor(seed),
                               control_name=control)
    return BaseDRLearner(learner=xgb_regressor(seed), control_name=control)


def causalml_available() -> tuple[bool, str]:
    from importlib.metadata import version

    try:
        from causalml.inference.meta import BaseDRLearner  # noqa: F401
    except Exception as error:  # any import failure means: not installed here
        return False, f"causalml does not import: {type(error).__name__}: {error}"
    return True, f"causalml {version('causalml')}"


def per_arm(fit_one, X_fit, y_fit, t_fit, X_test, arms, control) -> np.ndarray:
    """(n_test, n_arms) uplift of one-arm models, each fitted on the control + arm rows."""
    columns = []
    for arm in arms:
        rows = (t_fit == arm) | (t_fit == control)
        columns.append(fit_one(X_fit[rows], y_fit[rows], t_fit[rows], arm).reshape(-1))
    return np.column_stack(columns)


def evaluate(name: str, table: Table, seed: int, use_causalml: bool, choice_rule: str | None = None) -> dict:
    from custval.config.sections import DEFAULT_UPLIFT_XGBOOST, UPLIFT_LEARNERS, UpliftModelSettings
    from custval.models.uplift.selection import arm_scores, choose_learner, make_learner, refit_choice

    settings = UpliftModelSettings() if choice_rule is None else UpliftModelSettings(choice=choice_rule)

    data = table.data
    arms, control = [str(a) for a in data.arms], str(data.control)
    X = data.X
    y = data.y.to_numpy(dtype=float)
    t = data.treatment.astype(str).to_numpy(dtype=object)
    fit, test = split(t, y, TEST_SHARE, seed)
    X_fit, y_fit, t_fit = X.iloc[fit].reset_index(drop=True), y[fit], t[fit]
    X_test, y_test, t_test = X.iloc[test].reset_index(drop=True), y[test], t[test]
    xgboost = dict(DEFAULT_UPLIFT_XGBOOST)
    predictions: dict[str, np.ndarray] = {}
    seconds: dict[str, float] = {}

    def timed(method: str, compute) -> None:
        started = time.perf_counter()
        predictions[method] = np.asarray(compute(), dtype=float).reshape(len(test), -1)
        seconds[method] = time.perf_counter() - started

    def custval_one(learner: str):
        def fit_one(Xa, ya, ta, arm):
            model = make_learner(learner, xgboost=xgboost, control=control, arms=[arm], random_state=seed)
            return model.fit(Xa, ya, ta).predict(X_test)
        return fit_one

    for learner in UPLIFT_LEARNERS:
        if learner == "average":
            continue  # below, beside custval chosen
        if learner == "class_transformation" and len(arms) > 1:
            timed(f"custval {learner}", lambda learner=learner: per_arm(custval_one(learner), X_fit, y_fit, t_fit,
                                                                        X_test, arms, control))
            continue
        model = make_learner(learner, xgboost=xgboost, control=control, arms=arms, random_state=seed)
        timed(f"custval {learner}", lambda model=model: model.fit(X_fit, y_fit, t_fit).predict(X_test))

    # custval chosen: the job's choice on folds (or an inner split) of the 70%, then the chosen one refitted on it
    started = time.perf_counter()
    inner_train, inner_valid = split(t_fit, y_fit, INNER_VALID_SHARE, seed)
    choice = choose_learner(UPLIFT_LEARNERS, X_fit.iloc[inner_train], y_fit[inner_train], t_fit[inner_train],
                            X_fit.iloc[inner_valid], y_fit[inner_valid], t_fit[inner_valid], arms=arms,
                            control=control, xgboost=xgboost, random_state=seed, k=K, n_folds=settings.n_folds,
                            average=settings.average, rule=settings.choice)
    chose = time.perf_counter() - started
    if "average" in UPLIFT_LEARNERS:  # the equally weighted AveragedUplift of the members, fitted on the 70%
        average = make_learner("average", xgboost=xgboost, control=control, arms=arms, random_state=seed,
                               members=choice.members)
        timed("custval average", lambda: average.fit(X_fit, y_fit, t_fit).predict(X_test))
    # the job's refit of its choice on the whole 70% (with one_se / best: the very fit of the chosen one's row)
    timed("custval chosen", lambda: refit_choice(choice, X_fit, y_fit, t_fit, arms=arms, control=control,
                                                 xgboost=xgboost, random_state=seed).predict(X_test))
    seconds["custval chosen"] += chose

    encode = encoder().fit(X_fit)
    E_fit, E_test = encode.transform(X_fit), encode.transform(X_test)

    def sklift_one(method: str):
        def fit_one(Xa, ya, ta, arm):
            return sklift_model(method, seed).fit(Xa, ya, (ta == arm).astype(int)).predict(E_test)
        return fit_one

    references = []
    for method in ("solo", "two_models", "two_models_ddr", "class_transformation"):
        references.append(f"sklift {method}")
        timed(references[-1], lambda method=method: per_arm(sklift_one(method), E_fit, y_fit, t_fit, E_test, arms,
                                                            control))
    if use_causalml:
        share = {arm: float((t_fit == arm).sum() / ((t_fit == arm) | (t_fit == control)).sum()) for arm in arms}

        def causalml_fit(method: str):
            model = causalml_model(method, seed, control)
            p_fit = {a: np.full(len(t_fit), s) for a, s in share.items()} if method in ("x", "dr") else None
            kwargs = {"p": p_fit} if p_fit is not None else {}
            model.fit(E_fit, t_fit, y_fit, **kwargs)
            if method == "x":
                u = model.predict(E_test, p={a: np.full(len(test), s) for a, s in share.items()}, verbose=False)
            else:
                u = model.predict(E_test, verbose=False)
            groups = [str(g) for g in model.t_groups]
            return np.asarray(u)[:, [groups.index(a) for a in arms]]

        for method in ("s", "t", "x", "dr"):
            references.append(f"causalml {method}")
            timed(references[-1], lambda method=method: causalml_fit(method))

    oracle = None
    if table.truth is not None:
        true = np.column_stack([table.truth[f"uplift_{a}"].to_numpy(dtype=float)[test] for a in arms])
        oracle = arm_scores(y_test, true, t_test, arms, control, k=K)
    summary = {}
    for method, u in predictions.items():
        scores = arm_scores(y_test, u, t_test, arms, control, k=K)
        entry = {"qini": float(scores["qini"].mean()), "uplift_at_30": float(scores["uplift_at_k"].mean()),
                 **{f"qini_{a}": float(scores.loc[a, "qini"]) for a in arms},
                 **{f"uplift_at_30_{a}": float(scores.loc[a, "uplift_at_k"]) for a in arms}}
        if oracle is not None:
            entry["oracle_ratio"] = entry["qini"] / float(oracle["qini"].mean())
        summary[method] = entry
    best = max(references, key=lambda m: summary[m]["qini"])
    chosen_qini = summary["custval chosen"]["qini"]
    return {"table": name, "rows": len(y), "fit_rows": len(fit), "test_rows": len(test), "features": X.shape[1],
            "arms": arms, "control": control,
            "response_rate": {a: float(y[t == a].mean()) for a in [control, *arms]},
            "oracle_qini": None if oracle is None else float(oracle["qini"].mean()),
            "oracle_qini_per_arm": None if oracle is None else {a: float(oracle.loc[a, "qini"]) for a in arms},
            "chosen": choice.chosen, "choice": choice.rule, "stack_weights": choice.weights, "inner_validation": choice.table.drop(columns="chosen").to_dict(orient="index"),
            "summary": summary, "references": references, "seconds": seconds, "best_reference": best,
            "qini_ratio_to_best_reference": chosen_qini / summary[best]["qini"],
            "beats_references": chosen_qini >= summary[best]["qini"] - TOLERANCE,
            "cross_check": cross_check(y_test, predictions["custval t"], t_test, arms, control)}


def cross_check(y, u, t, arms, control) -> dict:
    """The custval T-learner's first-arm Qini and uplift@30% by custval.metrics and by sklift.metrics."""
    from sklift.metrics import qini_auc_score as sklift_qini
    from sklift.metrics import uplift_at_k as sklift_at_k

    from custval.metrics.uplift import qini_auc_score, uplift_at_k

    arm = arms[0]
    rows = (t == arm) | (t == control)
    ys, us, ts = y[rows], u[rows, 0], (t[rows] == arm).astype(int)
    ours = {"qini": qini_auc_score(ys, us, ts), "uplift_at_30": uplift_at_k(ys, us, ts, k=K)}
    theirs = {"qini": float(sklift_qini(ys, us, ts)), "uplift_at_30": float(sklift_at_k(ys, us, ts, "overall", k=K))}
    return {"arm": arm, "custval": ours, "sklift": theirs,
            "equal": all(abs(ours[m] - theirs[m]) <= 1e-9 for m in ours)}


# ------------------------------------------------------------------------------------------------- report
def _machine() -> dict:
    import sklearn
    import sklift
    import xgboost

    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    return {"python": platform.python_version(), "cores": os.cpu_count(), "sklearn": sklearn.__version__,
            "xgboost": xgboost.__version__, "sklift": sklift.__version__, "commit": commit,
            "load_average": os.getloadavg()}


def print_table(results: list[dict]) -> None:
    methods = list(results[0]["summary"])
    head = "".join(f" | {r['table'][:10]:>10} qini  u@30  ratio" for r in results)
    print(f"\n{'method':<29}{head}")
    for method in methods:
        cells = []
        for r in results:
            s = r["summary"].get(method)
            if s is None:
                cells.append(f" | {'':>27}")
                continue
            ratio = f"{s['oracle_ratio']:6.3f}" if "oracle_ratio" in s else f"{'-':>6}"
            cells.append(f" | {s['qini']:>15.4f} {s['uplift_at_30']:.3f} {ratio}")
        print(f"{method:<29}" + "".join(cells))
    print(f"{'true uplift (oracle)':<29}" + "".join(
        f" | {r['oracle_qini']:>15.4f} {'':>12}" if r["oracle_qini"] is not None else f" | {'-':>15} {'':>12}"
        for r in results))
    for r in results:
        check = r["cross_check"]
        print(f"{r['table']}: {r['rows']:,} rows ({r['test_rows']:,} test), arms {r['arms']} vs {r['control']}; "
              f"chosen {r['chosen']} ({r['choice']}"
              + "".join(f" {m} {w:.2f}" for m, w in r["stack_weights"].items()) + f"); best reference {r['best_reference']}; custval chosen / best reference Qini "
              f"{r['qini_ratio_to_best_reference']:.3f}: {'yes' if r['beats_references'] else 'NO'}; Qini vs "
              f"sklift.metrics {'equal' if check['equal'] else 'DIFFERENT'}; seconds "
              + ", ".join(f"{m} {s:.0f}" for m, s in r["seconds"].items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller simulated tables (about 2 minutes)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--choice", default=None, help="model.choice of custval chosen (default: the job's)")
    parser.add_argument("--csv", nargs="+", action="append", default=[], metavar="PATH key=value",
                        help="a campaign table and its column map, e.g. PATH treatment=arm outcome=bought "
                             "control=control id_column=id (repeatable)")
    parser.add_argument("--tables", default=None, help="comma-separated subset of the tables to run")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    load_before = os.getloadavg()
    use_causalml, causalml_note = causalml_available()
    print(causalml_note + ("" if use_causalml else ": its models are skipped"), flush=True)
    data = tables(args.quick, args.seed, args.csv)
    if args.tables:
        data = {k: v for k, v in data.items() if k in args.tables.split(",")}
    results = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, table in data.items():
            print(f"{name}: {len(table.data.y):,} rows, arms {list(table.data.arms)} ...", flush=True)
            results.append(evaluate(name, table, args.seed, use_causalml, args.choice))
    print_table(results)
    record = {"quick": args.quick, "seed": args.seed, "test_share": TEST_SHARE, "inner_valid_share":
              INNER_VALID_SHARE, "k": K, "tolerance": TOLERANCE, "reference_xgboost": XGB, "causalml": causalml_note,
              "seconds": time.perf_counter() - started, "load_before": load_before, "machine": _machine(),
              "results": results}
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"bench_uplift-{time.strftime('%Y%m%d-%H%M%S')}{'-quick' if args.quick else ''}.json"
    path.write_text(json.dumps(record, indent=1))
    print(f"\n{record['seconds']:.0f} s; results: {path}")
    met = all(r["beats_references"] and r["cross_check"]["equal"] for r in results)
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
