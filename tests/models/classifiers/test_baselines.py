"""The baselines a churn or propensity model must beat, checked against independent computations."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler

from custval.errors import CustvalWarning
from custval.models.classifiers.baselines import baseline_scores, warn_label_shift, warn_unless_better


@pytest.fixture
def rfm():
    rng = np.random.default_rng(0)
    n = 2000
    X = pd.DataFrame({"recency_days": rng.exponential(100, n), "frequency": rng.poisson(3, n).astype(float),
                      "monetary_total": rng.gamma(2, 50, n), "other": rng.normal(size=n)})
    logit = (X["recency_days"] - 100) / 40 - 0.3 * X["frequency"]
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int).to_numpy()
    return X, y


def test_recency_and_rfm_logistic_equal_their_definitions(rfm):
    X, y = rfm
    train, test = slice(0, 1500), slice(1500, None)
    scores = baseline_scores(X[train], y[train], X[test], churn=True)
    assert set(scores) == {"recency", "rfm_logistic"}
    np.testing.assert_array_equal(scores["recency"], X["recency_days"].to_numpy()[test])
    assert baseline_scores(X[train], y[train], X[test], churn=False)["recency"] == pytest.approx(-scores["recency"])
    # the regression written out: signed log1p, standardise (no missing values here), logistic regression
    f = lambda Z: np.sign(Z) * np.log1p(np.abs(Z))  # noqa: E731
    cols = ["recency_days", "frequency", "monetary_total"]
    scaler = StandardScaler().fit(f(X[cols][train].to_numpy()))
    lr = LogisticRegression(max_iter=1000).fit(scaler.transform(f(X[cols][train].to_numpy())), y[train])
    expected = lr.predict_proba(scaler.transform(f(X[cols][test].to_numpy())))[:, 1]
    np.testing.assert_allclose(scores["rfm_logistic"], expected, rtol=1e-10)
    # both baselines see the signal the data were built with
    assert roc_auc_score(y[test], scores["recency"]) > 0.7 and roc_auc_score(y[test], scores["rfm_logistic"]) > 0.75


def test_a_table_without_rfm_columns_gets_a_logistic_regression_on_its_numbers(rfm):
    X, y = rfm
    table = X[["other", "frequency"]].assign(plan=pd.array(["a", "b"] * 1000, dtype="string"))
    scores = baseline_scores(table[:1500], y[:1500], table[1500:])
    assert set(scores) == {"logistic"} and scores["logistic"].shape == (500,)


def test_warnings_fire_only_when_the_model_does_not_beat_the_baseline_or_the_rates_shift():
    with pytest.warns(CustvalWarning, match=r"churn XGBoost: test ROC AUC 0\.7000 does not beat the recency "
                                            r"baseline \(0\.7100\)"):
        warn_unless_better("churn XGBoost", 0.70, {"recency": 0.71, "rfm_logistic": 0.69})
    with pytest.warns(CustvalWarning, match=r"4\.3% in training and 40\.6% at test"):
        warn_label_shift("propensity garden", 0.043, 0.406)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CustvalWarning)
        warn_unless_better("churn XGBoost", 0.72, {"recency": 0.71, "rfm_logistic": float("nan")})
        warn_label_shift("churn", 0.40, 0.45)
        warn_label_shift("churn", 0.10, 0.19)
