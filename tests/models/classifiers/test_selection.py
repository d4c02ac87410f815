"""Model choice by cross-validation: folds by customer that never straddle, XGBoost scored at the other folds'
tree count (recomputed by hand), the refit's tree count, the choice rule (AUC, then log loss within TIE), the
refit on all rows calibrated on the given rows' out-of-fold scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from scipy.special import expit
from sklearn.metrics import roc_auc_score

from custval.errors import ConfigError, DataError
from custval.models.classifiers import (
    AveragedClassifier,
    BoostedClassifier,
    CalibratedClassifier,
    LogisticClassifier,
)
from custval.models.classifiers.selection import (
    TIE,
    CandidateScore,
    boosted_cv,
    check_candidates,
    choose_model,
    cv_folds,
    fit_chosen,
    logistic_cv,
    pick_best,
    refit_trees,
)

XGB = {"n_estimators": 400, "learning_rate": 0.1, "early_stopping_rounds": 20, "n_jobs": 1}


def _linear(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, 6)), columns=[f"x{i}" for i in range(6)])
    z = X.to_numpy() @ np.array([1.0, -0.8, 0.6, 0.5, -0.4, 0.3])
    return X, (rng.random(n) < expit(z)).astype(np.int64)


def _xor(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, 3)), columns=["a", "b", "noise"])
    z = 2.5 * np.sign(X["a"] * X["b"])
    return X, (rng.random(n) < expit(z)).astype(np.int64)


# ------------------------------------------------------------------------------------------------- folds
def test_folds_by_customer_never_straddle_and_keep_the_label_rate():
    rng = np.random.default_rng(0)
    customers = np.repeat(np.arange(3000), rng.integers(1, 6, 3000))  # 1 to 5 cutoffs each
    churny = rng.random(3000) < 0.4
    y = (rng.random(len(customers)) < np.where(churny[customers], 0.8, 0.2)).astype(int)
    folds = cv_folds(y, n_splits=5, groups=customers, random_state=3)
    assert len(folds) == 5
    held_out = np.concatenate([test for _, test in folds])
    assert sorted(held_out) == list(range(len(y)))  # every row held out once
    for train, test in folds:
        assert not set(customers[train]) & set(customers[test])
        assert sorted(np.concatenate([train, test])) == list(range(len(y)))
        assert y[test].mean() == pytest.approx(y.mean(), abs=0.01)
        assert len(test) == pytest.approx(len(y) / 5, rel=0.03)
    again = cv_folds(y, n_splits=5, groups=customers, random_state=3)  # seeded
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, again, strict=True))


def test_folds_follow_the_rarer_class_and_refuse_too_few():
    y = np.array([1, 1, 1] + [0] * 30)
    assert len(cv_folds(y, n_splits=5)) == 3
    for _, test in cv_folds(y, n_splits=5):
        assert y[test].sum() == 1
    with pytest.raises(DataError, match="at least 2 rows of each class"):
        cv_folds(np.array([1] + [0] * 30))
    # by group: two customers with a churn row at most -> 2 folds
    groups = np.array([0, 0, 1, 1] + list(range(2, 30)))
    labels = np.array([1, 0, 1, 1] + [0] * 28)
    assert len(cv_folds(labels, n_splits=5, groups=groups)) == 2
    with pytest.raises(DataError, match="2 groups with each class"):
        cv_folds(labels, groups=np.array([0, 0, 0, 0] + list(range(1, 29))))
    with pytest.raises(ConfigError, match="n_splits must be an integer >= 2"):
        cv_folds(labels, n_splits=1)


# ------------------------------------------------------------------------------------------- XGBoost in CV
def test_each_fold_is_scored_at_the_other_folds_tree_count():
    X, y = _linear(3000, 1)
    folds = cv_folds(y, n_splits=4, random_state=0)
    score = boosted_cv(X, y, folds, XGB)
    # by hand: every fold model stops on its own held-out rows ...
    models = [BoostedClassifier(**XGB).fit(X.iloc[train], y[train], eval_set=(X.iloc[test], y[test]))
              for train, test in folds]
    stops = [m.best_iteration_ + 1 for m in models]
    assert score.fold_trees == stops
    # ... and its rows are scored with the median stop of the three others
    for k, ((_, test), model) in enumerate(zip(folds, models, strict=True)):
        others = int(round(float(np.median(stops[:k] + stops[k + 1:]))))
        trees = min(others, model.booster_.num_boosted_rounds())
        matrix = xgb.DMatrix(model.preprocessor_.transform(X.iloc[test]), enable_categorical=True)
        expected = model.booster_.predict(matrix, output_margin=True, iteration_range=(0, trees))
        np.testing.assert_allclose(score.margins[test], expected, rtol=1e-6)
        assert score.fold_roc_auc[k] == pytest.approx(roc_auc_score(y[test], score.margins[test]))
    # the refit: median stop x (3000 rows / 2250 training rows per fold)
    assert score.n_trees == int(round(np.median(stops) * 3000 / 2250))


def test_the_refit_tree_count_by_hand():
    folds = [(np.arange(200), np.arange(200, 300))] * 3
    assert refit_trees([100, 120, 140], 300, folds) == 180  # median 120 x 300 / 200
    assert refit_trees([1, 1, 1], 10, [(np.arange(9), np.arange(9, 10))]) == 1
    # without early stopping every fold uses n_estimators, and so does the refit (no scaling)
    X, y = _linear(600, 2)
    score = boosted_cv(X, y, cv_folds(y, n_splits=3), {"n_estimators": 30, "early_stopping_rounds": None,
                                                        "n_jobs": 1})
    assert score.fold_trees == [30, 30, 30] and score.n_trees == 30


# ---------------------------------------------------------------------------------------------- the choice
def test_candidates_within_the_tie_go_to_the_lower_log_loss():
    def candidate(name, auc, loss):
        return CandidateScore(name, np.zeros(1), np.array([auc]), log_loss=loss)

    level = {"xgboost": candidate("xgboost", 0.80, 0.50), "logistic": candidate("logistic", 0.80 - TIE / 2, 0.49)}
    assert pick_best(level) == "logistic"
    apart = {"xgboost": candidate("xgboost", 0.80, 0.50), "logistic": candidate("logistic", 0.80 - 2 * TIE, 0.40)}
    assert pick_best(apart) == "xgboost"
    same = {"xgboost": candidate("xgboost", 0.8, 0.5), "average": candidate("average", 0.8, 0.5)}
    assert pick_best(same) == "xgboost"  # the first in order


@pytest.mark.parametrize(("make", "expected"), [(_linear, {"logistic", "average"}), (_xor, {"xgboost"})])
def test_the_choice_follows_the_shape_of_the_truth(make, expected):
    """A linear truth is the logistic regression's (or helped by it); XGBoost's trees are needed for an XOR."""
    X, y = make(2500, 4)
    folds = cv_folds(y, n_splits=5, random_state=0)
    choice = choose_model(X, y, folds, xgboost_params=XGB, logistic_params={"transform": "none"})
    table = choice.table()
    assert list(table.index) == ["xgboost", "logistic", "average"] and table["chosen"].sum() == 1
    assert choice.chosen in expected
    assert table.loc[choice.chosen, "cv_roc_auc"] >= table["cv_roc_auc"].max() - TIE
    # the average's out-of-fold margins are the mean of its members'
    np.testing.assert_allclose(choice.scores["average"].margins,
                               (choice.scores["xgboost"].margins + choice.scores["logistic"].margins) / 2)
    assert choice.scores["average"].n_trees == choice.scores["xgboost"].n_trees
    metrics = choice.metrics()
    assert metrics["logistic_cv_roc_auc"] == pytest.approx(table.loc["logistic", "cv_roc_auc"])
    assert set(metrics) == {f"{c}_cv_{m}" for c in table.index for m in ("roc_auc", "roc_auc_std", "log_loss")}


def test_the_chosen_model_is_refitted_on_every_row_and_calibrated_on_the_given_rows():
    X, y = _linear(2000, 5)
    folds = cv_folds(y, n_splits=4, random_state=0)
    rows = np.arange(1500, 2000)
    choice = choose_model(X, y, folds, candidates=["logistic"], calibration="sigmoid")
    model = fit_chosen(choice, X, y, calibration_rows=rows)
    refit = LogisticClassifier().fit(X, y)
    np.testing.assert_allclose(model.estimator.predict_proba(X), refit.predict_proba(X), rtol=1e-12)
    # calibrated on the out-of-fold scores of those rows only (not on the refit's own, in-sample, scores)
    margins = logistic_cv(X, y, folds).margins
    np.testing.assert_allclose(choice.best.margins, margins, rtol=1e-12)
    expected = CalibratedClassifier(refit, method="sigmoid").fit_scores(expit(margins[rows]), y[rows])
    assert model.calibrator_ == pytest.approx(expected.calibrator_)
    # XGBoost and the average: the cross-validation's tree count, no early stopping, all rows
    choice = choose_model(X, y, folds, candidates=["xgboost", "logistic", "average"], xgboost_params=XGB)
    for name in ("xgboost", "average"):
        choice.chosen = name
        fitted = fit_chosen(choice, X, y, xgboost_params=XGB).estimator
        boosted = fitted if name == "xgboost" else fitted.named_estimators_["xgboost"]
        assert isinstance(fitted, BoostedClassifier if name == "xgboost" else AveragedClassifier)
        assert boosted.booster_.num_boosted_rounds() == boosted.n_iterations_ == choice.scores[name].n_trees


@pytest.mark.parametrize(("candidates", "match"), [
    ([], "non-empty list"),
    ("xgboost", "non-empty list"),
    (["forest"], "non-empty list of \\['xgboost', 'logistic', 'average'\\]"),
    (["xgboost", "xgboost"], "distinct"),
    (["xgboost", "average"], "with average must also list xgboost and logistic"),
])
def test_bad_candidates_are_config_errors(candidates, match):
    with pytest.raises(ConfigError, match=match):
        check_candidates(candidates)
