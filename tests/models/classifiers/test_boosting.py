"""BoostedClassifier: signal recovery against the oracle, early stopping, imbalance weighting, callbacks,
reasons from tree contributions, importances."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from scipy.special import expit
from sklearn.metrics import roc_auc_score

from custval.errors import DataError
from custval.models.classifiers import BoostedClassifier
from custval.models.classifiers.reasons import format_reason_values


def test_recovers_the_signal_close_to_the_oracle_auc(boosted, data):
    X, y, p_true = data["test"]
    auc = roc_auc_score(y, boosted.predict_proba(X)[:, 1])
    oracle = roc_auc_score(y, p_true)
    assert auc >= oracle - 0.015, (auc, oracle)
    proba = boosted.predict_proba(X)
    assert proba.shape == (len(X), 2) and proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(boosted.predict(X), (proba[:, 1] > 0.5).astype(int))
    # the sklearn pipeline (for MLflow's sklearn flavour) gives the same probabilities
    np.testing.assert_allclose(boosted.pipeline_.predict_proba(X)[:, 1], proba[:, 1], rtol=0, atol=1e-7)


def test_early_stopping_stops_at_the_validation_optimum(boosted):
    rounds = boosted.booster_.num_boosted_rounds()
    assert boosted.best_iteration_ < 600 - 1
    assert rounds == boosted.best_iteration_ + 30 + 1  # stopped 30 rounds after the best one
    curve = np.asarray(boosted.evals_result_["validation_0"]["logloss"])
    assert len(curve) == rounds
    assert boosted.best_iteration_ == int(np.argmin(curve))


def test_predictions_use_the_best_iteration_only(boosted, data):
    X = data["test"][0].iloc[:500]
    dm = xgb.DMatrix(boosted.preprocessor_.transform(X), enable_categorical=True)
    best = boosted.booster_.predict(dm, iteration_range=(0, boosted.best_iteration_ + 1))
    every = boosted.booster_.predict(dm, iteration_range=(0, boosted.booster_.num_boosted_rounds()))
    assert np.abs(best - every).max() > 1e-4  # the test below means something
    np.testing.assert_array_equal(boosted.predict_proba(X)[:, 1], best.astype(np.float64))


def test_without_eval_set_all_trees_are_used(data):
    X, y, _ = data["train"]
    model = BoostedClassifier(n_estimators=25, early_stopping_rounds=5).fit(X.iloc[:2000], y[:2000])
    assert model.best_iteration_ == 24 and model.booster_.num_boosted_rounds() == 25
    assert model.evals_result_ == {}


def test_scale_pos_weight_auto_none_and_number(data):
    X, y, _ = data["train"]
    X, y = X.iloc[:3000], y[:3000]
    expected = (y == 0).sum() / (y == 1).sum()
    fits = {spw: BoostedClassifier(n_estimators=40, scale_pos_weight=spw).fit(X, y) for spw in ("auto", None, 2.5)}
    assert fits["auto"].scale_pos_weight_ == pytest.approx(expected, rel=1e-12)
    assert fits["auto"].model_.get_params()["scale_pos_weight"] == pytest.approx(expected, rel=1e-12)
    assert fits[None].scale_pos_weight_ == 1.0 and fits[2.5].scale_pos_weight_ == 2.5
    # weighting positives up raises the predicted probabilities above the base rate; unweighted stays near it
    mean = {k: m.predict_proba(X)[:, 1].mean() for k, m in fits.items()}
    assert abs(mean[None] - y.mean()) < 0.02
    assert mean["auto"] > mean[2.5] > mean[None] + 0.05


def test_callbacks_are_passed_to_xgboost(data):
    class StopAt(xgb.callback.TrainingCallback):
        def __init__(self):
            self.seen = []

        def after_iteration(self, model, epoch, evals_log):
            self.seen.append(epoch)
            return epoch >= 6  # True stops training, like a pruned Optuna trial

    X, y, _ = data["train"]
    callback = StopAt()
    model = BoostedClassifier(n_estimators=50, callbacks=[callback]).fit(X.iloc[:2000], y[:2000])
    assert model.booster_.num_boosted_rounds() == 7
    assert callback.seen[:7] == list(range(7))


def test_contributions_sum_to_the_margin_per_original_column(boosted, data):
    X = data["test"][0].iloc[:400]
    contributions = boosted.contributions(X)
    assert list(contributions.columns) == [*X.columns, "bias"]
    assert contributions.index.equals(X.index)
    margin = boosted.predict_margin(X)
    np.testing.assert_allclose(contributions.sum(axis=1), margin, atol=1e-4)
    np.testing.assert_allclose(expit(margin), boosted.predict_proba(X)[:, 1], rtol=1e-6)
    approximate = boosted.contributions(X, approximate=True)
    np.testing.assert_allclose(approximate.sum(axis=1), margin, atol=1e-4)


def test_explain_finds_the_known_driver_for_extreme_customers(boosted, data):
    X = data["test"][0]
    extreme = X[X["recency_days"] > X["recency_days"].quantile(0.99)]  # true log-odds effect +0.03/day
    reasons = boosted.explain(extreme, top=3)
    first = reasons["reason_1"].str.split("=").str[0]
    assert (first == "recency_days").mean() >= 0.95, first.value_counts()
    # the text shows the customer's own value
    hit = first == "recency_days"
    expected = "recency_days=" + extreme.loc[hit, "recency_days"].map(
        lambda v: f"{v:.0f}" if v == round(v) else f"{v:.3g}")
    pd.testing.assert_series_equal(reasons.loc[hit, "reason_1"], expected, check_names=False, check_dtype=False)


def test_explain_structure_and_formats(boosted, data):
    X = data["test"][0].iloc[:600].copy()
    X.iloc[0, X.columns.get_loc("plan")] = "basic"
    reasons = boosted.explain(X, top=3)
    assert list(reasons.columns) == ["reason_1", "reason_2", "reason_3",
                                     "contribution_1", "contribution_2", "contribution_3"]
    assert reasons.index.equals(X.index)
    contributions = boosted.contributions(X)[list(X.columns)]
    c = reasons[["contribution_1", "contribution_2", "contribution_3"]].to_numpy()
    # largest positive contribution first, equal to the largest entry of the row; NaN past the positives
    np.testing.assert_allclose(c[:, 0], np.where(contributions.max(axis=1) > 0, contributions.max(axis=1), np.nan))
    filled = ~np.isnan(c)
    assert (c[filled] > 0).all()
    assert (np.diff(np.where(filled, c, -1e9), axis=1) <= 0).all()
    n_positive = (contributions.to_numpy() > 0).sum(axis=1)
    np.testing.assert_array_equal(filled.sum(axis=1), np.minimum(n_positive, 3))
    for i in (1, 2, 3):
        empty = reasons[f"reason_{i}"] == ""
        np.testing.assert_array_equal(empty.to_numpy(), np.isnan(reasons[f"contribution_{i}"].to_numpy()))
    assert (n_positive < 3).any()  # some rows exercise the empty slots
    # every reason names the column whose contribution it reports, with that customer's value
    for i in (1, 2, 3):
        text = reasons[f"reason_{i}"]
        for column in X.columns:
            rows = text.str.startswith(column + "=")
            np.testing.assert_allclose(reasons.loc[rows, f"contribution_{i}"], contributions.loc[rows, column])
    all_text = pd.concat([reasons[f"reason_{i}"] for i in (1, 2, 3)])
    categorical = all_text[all_text.str.startswith("plan=")]
    assert set(categorical) <= {"plan=basic", "plan=plus", "plan=pro", "plan=missing"}
    missing_income = X["income"].isna()
    income_text = reasons["reason_1"][reasons["reason_1"].str.startswith("income=")]
    assert (income_text[missing_income.loc[income_text.index]] == "income=missing").all()
    assert (income_text == "income=missing").any()
    wide = boosted.explain(X.iloc[:5], top=8)  # more reasons than columns: padded
    assert wide["reason_8"].eq("").all() and wide["contribution_8"].isna().all()


def test_feature_importances_rank_the_strong_drivers_first(boosted, data):
    importance = boosted.feature_importances_
    assert list(importance.index) == list(data["train"][0].columns)
    assert importance.sum() == pytest.approx(1.0)
    assert importance.idxmax() == "recency_days"
    assert importance["region"] < importance[["frequency", "income", "plan"]].min()  # pure noise


def test_unseen_category_error_and_ignore(data):
    X, y, _ = data["train"]
    X, y = X.iloc[:2000], y[:2000]
    new = X.iloc[:5].copy()
    new["plan"] = pd.array(["platinum"] * 5, dtype="string")
    model = BoostedClassifier(n_estimators=20, handle_unknown="error").fit(X, y)
    with pytest.raises(DataError) as err:
        model.predict_proba(new)
    assert err.value.column == "plan" and err.value.example == "platinum"
    ignoring = BoostedClassifier(n_estimators=20, handle_unknown="ignore").fit(X, y)
    as_missing = new.assign(plan=pd.array([None] * 5, dtype="string"))
    np.testing.assert_array_equal(ignoring.predict_proba(new), ignoring.predict_proba(as_missing))
    np.testing.assert_array_equal(ignoring.predict_proba(X), model.predict_proba(X))


def test_same_data_and_seed_give_identical_models(data):
    X, y, _ = data["train"]
    Xv, yv, _ = data["valid"]
    a, b = (BoostedClassifier(n_estimators=30).fit(X.iloc[:2000], y[:2000], eval_set=(Xv.iloc[:1000], yv[:1000]))
            for _ in range(2))
    np.testing.assert_array_equal(a.predict_proba(Xv), b.predict_proba(Xv))


def test_reason_value_formatting():
    values = np.array([143.0, 143.25, 39.4382, 52000.0, np.nan, 0.000123456, -2.0, 1e20])
    assert list(format_reason_values("x", values)) == [
        "x=143", "x=143", "x=39.4", "x=52000", "x=missing", "x=0.000123", "x=-2", "x=1e+20"]


def test_predictions_equal_xgboost_on_the_frame_bitwise(boosted, data):
    """The float32 matrix without a DMatrix gives exactly XGBoost's numbers for the Categorical frame."""
    X = data["test"][0]
    frame = xgb.DMatrix(boosted.preprocessor_.transform(X), enable_categorical=True)
    trees = (0, boosted.n_iterations_)
    np.testing.assert_array_equal(boosted.predict_margin(X), boosted.booster_.predict(
        frame, output_margin=True, iteration_range=trees).astype(np.float64))
    np.testing.assert_array_equal(boosted.predict_proba(X)[:, 1], boosted.booster_.predict(
        frame, iteration_range=trees).astype(np.float64))
