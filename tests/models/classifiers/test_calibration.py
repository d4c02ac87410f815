"""CalibratedClassifier: method choice by out-of-fold log loss (recomputed independently), recovery of a
known Platt map, a step the sigmoid cannot fit, Brier on held-out data, prefit semantics, clone, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit, logit
from sklearn.base import clone
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score
from sklearn.model_selection import StratifiedKFold

from custval.errors import ConfigError, DataError, ModelError, NotFittedError
from custval.models.classifiers import BoostedClassifier, CalibratedClassifier


class ScoreColumn:
    """A 'fitted classifier' whose raw score is the column `score` of X (a controlled miscalibration)."""

    def predict_proba(self, X):
        s = X["score"].to_numpy(dtype=float)
        return np.column_stack([1 - s, s])


def platt_data(n: int, seed: int):
    """True P = expit(2 * logit(score) + 1): a Platt map with slope 2, intercept 1."""
    rng = np.random.default_rng(seed)
    z = rng.normal(-1.0, 1.5, n)
    p = expit(z)
    score = expit((z - 1.0) / 2.0)
    return pd.DataFrame({"score": score}), (rng.random(n) < p).astype(int), p


def step_data(n: int, seed: int):
    """True P jumps from 0.05 to 0.6 at score 0.5: no logistic curve in logit(score) fits a step."""
    rng = np.random.default_rng(seed)
    score = rng.uniform(0.01, 0.99, n)
    p = np.where(score < 0.5, 0.05, 0.6)
    return pd.DataFrame({"score": score}), (rng.random(n) < p).astype(int), p


def independent_out_of_fold(scores, y, seed, n_splits=5):
    """Out-of-fold log loss of isotonic and Platt scaling, written directly with scikit-learn."""
    oof = {"isotonic": np.empty(len(y)), "sigmoid": np.empty(len(y))}
    z = logit(np.clip(scores, 1e-7, 1 - 1e-7))[:, None]
    for train, test in StratifiedKFold(n_splits, shuffle=True, random_state=seed).split(z, y):
        iso = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(scores[train], y[train])
        oof["isotonic"][test] = iso.predict(scores[test])
        oof["sigmoid"][test] = LogisticRegression(C=1e6, max_iter=1000).fit(z[train], y[train]).predict_proba(
            z[test])[:, 1]
    return {m: log_loss(y, np.clip(p, 1e-6, 1 - 1e-6)) for m, p in oof.items()}


@pytest.mark.parametrize("make, expected", [(platt_data, "sigmoid"), (step_data, "isotonic")])
def test_auto_picks_the_method_with_the_lower_out_of_fold_loss(make, expected):
    X, y, _ = make(6000, 11)
    cal = CalibratedClassifier(ScoreColumn(), random_state=4).fit(X, y)
    reference = independent_out_of_fold(X["score"].to_numpy(), y, seed=4)
    for method in ("isotonic", "sigmoid"):
        assert cal.validation_scores_[method] == pytest.approx(reference[method], rel=1e-6)
    assert cal.method_ == min(reference, key=reference.get) == expected
    assert cal.validation_scores_["uncalibrated"] > cal.validation_scores_[expected]
    assert cal.n_splits_ == 5


def test_platt_map_is_recovered_and_beats_the_raw_score_on_held_out_data():
    X, y, _ = platt_data(20000, 1)
    cal = CalibratedClassifier(ScoreColumn(), method="sigmoid").fit(X, y)
    assert cal.calibrator_["coef"] == pytest.approx(2.0, abs=0.1)
    assert cal.calibrator_["intercept"] == pytest.approx(1.0, abs=0.1)
    X_test, y_test, p_test = platt_data(20000, 2)
    calibrated = cal.predict_proba(X_test)[:, 1]
    assert np.abs(calibrated - p_test).max() < 0.05
    assert roc_auc_score(y_test, calibrated) == roc_auc_score(y_test, X_test["score"])  # monotone map


def test_isotonic_map_matches_sklearn_isotonic_regression():
    X, y, _ = step_data(3000, 5)
    cal = CalibratedClassifier(ScoreColumn(), method="isotonic").fit(X, y)
    iso = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(X["score"], y)
    grid = pd.DataFrame({"score": np.linspace(0, 1, 1001)})  # includes points outside the fitted range
    np.testing.assert_allclose(cal.predict_proba(grid)[:, 1], np.clip(iso.predict(grid["score"]), 1e-6, 1 - 1e-6),
                               rtol=0, atol=1e-12)


def test_calibrating_a_weighted_booster_improves_held_out_brier(boosted, data):
    X_valid, y_valid, _ = data["valid"]
    X_test, y_test, p_test = data["test"]
    booster_bytes = bytes(boosted.booster_.save_raw("json"))
    before = boosted.predict_proba(X_test)
    cal = CalibratedClassifier(boosted).fit(X_valid, y_valid)
    assert cal.estimator is boosted  # prefit: not copied ...
    assert bytes(boosted.booster_.save_raw("json")) == booster_bytes  # ... and not refitted
    np.testing.assert_array_equal(boosted.predict_proba(X_test), before)
    raw, calibrated = before[:, 1], cal.predict_proba(X_test)[:, 1]
    assert brier_score_loss(y_test, calibrated) < 0.85 * brier_score_loss(y_test, raw)  # weighted: miscalibrated
    assert brier_score_loss(y_test, calibrated) <= 1.10 * brier_score_loss(y_test, p_test)  # the bar
    assert abs(calibrated.mean() - y_test.mean()) < 0.01
    pd.testing.assert_frame_equal(cal.explain(X_test.iloc[:50]), boosted.explain(X_test.iloc[:50]))
    assert cal.feature_importances_.equals(boosted.feature_importances_)


def test_clone_keeps_the_same_fitted_estimator_and_drops_the_calibration(boosted, data):
    X_valid, y_valid, _ = data["valid"]
    cal = CalibratedClassifier(boosted, method="sigmoid").fit(X_valid, y_valid)
    fresh = clone(cal)
    assert fresh.estimator is boosted
    assert fresh.get_params(deep=False) == cal.get_params(deep=False)
    with pytest.raises(NotFittedError):
        fresh.predict_proba(X_valid)
    np.testing.assert_array_equal(fresh.fit(X_valid, y_valid).predict_proba(X_valid), cal.predict_proba(X_valid))


def test_fixed_method_is_used_even_when_the_other_scores_better():
    X, y, _ = platt_data(4000, 3)
    cal = CalibratedClassifier(ScoreColumn(), method="isotonic").fit(X, y)
    assert cal.method_ == "isotonic" and cal.calibrator_["method"] == "isotonic"
    assert cal.validation_scores_["sigmoid"] < cal.validation_scores_["isotonic"]


def test_errors(tree, data):
    X, y, _ = platt_data(200, 4)
    with pytest.raises(ConfigError, match="estimator"):
        CalibratedClassifier().fit(X, y)
    with pytest.raises(NotFittedError):
        CalibratedClassifier(BoostedClassifier()).fit(X, y)
    with pytest.raises(ConfigError, match="method"):
        CalibratedClassifier(ScoreColumn(), method="beta").fit(X, y)
    with pytest.raises(ConfigError, match="cv"):
        CalibratedClassifier(ScoreColumn(), cv=1).fit(X, y)
    with pytest.raises(DataError, match="both classes"):
        CalibratedClassifier(ScoreColumn()).fit(X, np.zeros(len(X), dtype=int))
    one_positive = np.zeros(len(X), dtype=int)
    one_positive[0] = 1
    with pytest.raises(DataError, match="at least 2"):
        CalibratedClassifier(ScoreColumn()).fit(X, one_positive)
    with pytest.raises(DataError, match="parse_binary_label"):
        CalibratedClassifier(ScoreColumn()).fit(X, np.where(y == 1, "Yes", "No"))
    with pytest.raises(NotFittedError):
        CalibratedClassifier(ScoreColumn()).predict_proba(X)
    X_valid, y_valid, _ = data["valid"]
    with pytest.raises(ModelError, match="rules_text"):
        CalibratedClassifier(tree).fit(X_valid, y_valid).explain(X_valid)


def test_fit_scores_fits_the_same_map_as_fit_on_the_rows_giving_those_scores():
    """fit_scores(scores, y) is fit(X, y) without calling the estimator: the out-of-fold scores of a
    cross-validation stand in for a refitted model's own."""
    X, y, _ = platt_data(5000, 8)
    for method in ("auto", "isotonic", "sigmoid"):
        by_rows = CalibratedClassifier(ScoreColumn(), method=method, random_state=2).fit(X, y)
        by_scores = CalibratedClassifier(ScoreColumn(), method=method, random_state=2).fit_scores(X["score"], y)
        assert (by_scores.method_, by_scores.calibrator_, by_scores.validation_scores_) == \
            (by_rows.method_, by_rows.calibrator_, by_rows.validation_scores_)
    # the out-of-fold comparison is recomputed independently
    expected = independent_out_of_fold(X["score"].to_numpy(), y, seed=2)
    for method, value in expected.items():
        assert by_scores.validation_scores_[method] == pytest.approx(value, rel=1e-6)


@pytest.mark.parametrize(("scores", "match"), [
    (np.array([0.2, 1.5, 0.3]), "scores: must be one finite probability in \\[0, 1\\] per row"),
    (np.array([0.2, np.nan, 0.3]), "scores: must be one finite probability"),
    (np.ones((3, 2)) / 2, "shape \\(3, 2\\)"),
])
def test_fit_scores_refuses_what_is_not_one_probability_per_row(scores, match):
    with pytest.raises(DataError, match=match):
        CalibratedClassifier(ScoreColumn()).fit_scores(scores, np.array([0, 1, 0]))
    with pytest.raises(ConfigError, match="estimator must be a fitted classifier"):
        CalibratedClassifier().fit_scores(np.array([0.2, 0.3]), np.array([0, 1]))
