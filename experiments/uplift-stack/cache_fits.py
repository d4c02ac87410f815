"""Cache custval's uplift fits of bench_uplift's split (seed K): per table, the out-of-fold predictions of the
job's 3 folds, the fold models' and the full refit's test predictions, for s, t, x (no dr / class_transformation:
never chosen, the weakest). Usage: cache_fits.py SEED [SEED...]; writes /tmp/uplift-stack-cache/seedK-TABLE.npz."""
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import bench_uplift as bench  # noqa: E402

from custval.config.sections import DEFAULT_UPLIFT_XGBOOST, UpliftModelSettings  # noqa: E402
from custval.models.uplift.selection import campaign_folds, make_learner  # noqa: E402

OUT = Path("/tmp/uplift-stack-cache")
LEARNERS = ("s", "t", "x")

warnings.simplefilter("ignore")
for seed in map(int, sys.argv[1:]):
    for name, table in bench.tables(False, seed, []).items():
        started = time.time()
        data = table.data
        arms, control = [str(a) for a in data.arms], str(data.control)
        X, y = data.X, data.y.to_numpy(dtype=float)
        t = data.treatment.astype(str).to_numpy(dtype=object)
        fit, test = bench.split(t, y, bench.TEST_SHARE, seed)
        X_fit, y_fit, t_fit = X.iloc[fit].reset_index(drop=True), y[fit], t[fit]
        X_test = X.iloc[test].reset_index(drop=True)
        # the job's pooled order: the inner train rows, then the inner valid rows
        inner_train, inner_valid = bench.split(t_fit, y_fit, bench.INNER_VALID_SHARE, seed)
        order = np.concatenate([inner_train, inner_valid])
        Xp, yp, tp = X_fit.iloc[order].reset_index(drop=True), y_fit[order], t_fit[order]
        n_folds = UpliftModelSettings().n_folds
        folds = campaign_folds(tp, yp, n_folds=n_folds, seed=seed)
        xgb = dict(DEFAULT_UPLIFT_XGBOOST)
        out = {"y_pool": yp, "t_pool": tp.astype(str), "fold_of": np.zeros(len(yp), int), "y_test": y[test],
               "t_test": t[test].astype(str), "arms": np.array(arms), "control": np.array(control)}
        if table.truth is not None:
            out["true_test"] = np.column_stack([table.truth[f"uplift_{a}"].to_numpy(dtype=float)[test] for a in arms])
        for k, (_, score) in enumerate(folds):
            out["fold_of"][score] = k
        for learner in LEARNERS:
            oof = np.zeros((len(yp), len(arms)))
            for k, (f_rows, s_rows) in enumerate(folds):
                model = make_learner(learner, xgboost=xgb, control=control, arms=arms, random_state=seed)
                model.fit(Xp.iloc[f_rows], yp[f_rows], tp[f_rows])
                oof[s_rows] = np.asarray(model.predict(Xp.iloc[s_rows])).reshape(len(s_rows), -1)
                out[f"test_{learner}_fold{k}"] = np.asarray(model.predict(X_test)).reshape(len(test), -1)
            out[f"oof_{learner}"] = oof
            model = make_learner(learner, xgboost=xgb, control=control, arms=arms, random_state=seed)
            out[f"test_{learner}_full"] = np.asarray(model.fit(X_fit, y_fit, t_fit).predict(X_test)).reshape(
                len(test), -1)
        np.savez(OUT / f"seed{seed}-{name}.npz", **out)
        print(f"seed {seed} {name}: {time.time() - started:.0f} s", flush=True)
