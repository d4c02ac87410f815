"""SecondLifetimeValue: recovers a known log-linear value model, saves as JSON, and behaves as a scikit-learn
regressor (Pipeline, GridSearchCV); its family conformance module."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from custval.errors import ConfigError, DataError, NotFittedError
from custval.features.winback import LAPSE_FEATURES
from custval.models.second_value import SecondLifetimeValue


def _lapses(n, seed):
    """Value = Poisson-gamma spend with mean exp(1 + 0.8 log1p(orders) + 1.0 log1p(mean order) - 0.5 log1p(lapse)),
    tenure irrelevant."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"orders_before": rng.integers(1, 30, n).astype(float),
                      "mean_order_before": rng.gamma(3.0, 20.0, n),
                      "tenure_days": rng.integers(0, 700, n).astype(float),
                      "lapse_days": rng.integers(60, 400, n).astype(float)})
    logs = np.log1p(X.to_numpy())
    mean = np.exp(1.0 + 0.8 * logs[:, 0] + 1.0 * logs[:, 1] - 0.5 * logs[:, 3])
    y = rng.gamma(2.0, mean / 2.0)
    return X, y, mean


def test_recovers_a_known_log_linear_value_model():
    X, y, mean = _lapses(20_000, 0)
    model = SecondLifetimeValue(alpha=0.0).fit(X, y)
    scale = np.log1p(X.to_numpy()).std(axis=0)
    np.testing.assert_allclose(model.coef_ / scale, [0.8, 1.0, 0.0, -0.5], atol=0.03)
    Xt, _, mean_t = _lapses(2_000, 1)
    assert np.median(np.abs(model.predict(Xt) / mean_t - 1)) < 0.03
    assert model.n_returns_ == 20_000 and model.mean_value_ == pytest.approx(np.mean(y))


def test_json_round_trip_predicts_the_same():
    X, y, _ = _lapses(500, 2)
    model = SecondLifetimeValue().fit(X, y)
    loaded = SecondLifetimeValue.from_dict(json.loads(json.dumps(model.to_dict())))
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_pipeline_and_grid_search_prefer_the_weak_penalty_on_a_strong_signal():
    X, y, _ = _lapses(3_000, 3)
    noisy = X.assign(extra=1.0)
    pipeline = Pipeline([("select", FunctionTransformer(lambda f: f[list(LAPSE_FEATURES)])),
                         ("value", SecondLifetimeValue())]).fit(noisy, y)
    np.testing.assert_array_equal(pipeline.predict(noisy), clone(SecondLifetimeValue()).fit(X, y).predict(X))
    search = GridSearchCV(SecondLifetimeValue(), {"alpha": [1e-4, 100.0]}, cv=3).fit(X, y)
    assert search.best_params_ == {"alpha": 1e-4}
    assert search.cv_results_["mean_test_score"][0] > search.cv_results_["mean_test_score"][1] + 0.1


def test_errors():
    X, y, _ = _lapses(50, 4)
    with pytest.raises(NotFittedError):
        SecondLifetimeValue().predict(X)
    with pytest.raises(ConfigError, match="alpha"):
        SecondLifetimeValue(alpha=-1).fit(X, y)
    with pytest.raises(DataError, match="at least 20 past returns.*winback.lapse_days"):
        SecondLifetimeValue().fit(X.head(5), y[:5])
    with pytest.raises(DataError, match="lapse_days: required column is missing"):
        SecondLifetimeValue().fit(X.drop(columns="lapse_days"), y)
    with pytest.raises(DataError, match="orders_before: must be finite"):
        SecondLifetimeValue().fit(X.assign(orders_before=np.nan), y)
