"""BoostedRegressor: recovery of a known mean function, early stopping, sample weights (the weighted mean,
hand-worked), the tweedie objective's rule, parameter checks and saving as data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from custval.errors import ConfigError, DataError
from custval.models.classifiers import BoostedClassifier, BoostedRegressor, load_classifier, save_classifier


def spend(n: int, seed: int):
    """E[y | x] = 20 + 5 x1 + plan (basic +3, pro -3) + 2 (x2 > 0), noise sd 2; x1 10% missing (mean 0)."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    plan = rng.choice(["basic", "plus", "pro"], n)
    mean = 20 + 5 * x1 + pd.Series(plan).map({"basic": 3.0, "plus": 0.0, "pro": -3.0}).to_numpy() + 2 * (x2 > 0)
    y = mean + rng.normal(0, 2, n)
    x1 = np.where(rng.random(n) < 0.1, np.nan, x1)
    mean = np.where(np.isnan(x1), mean - 5 * np.nan_to_num(x1, nan=0.0), mean)  # missing x1: unknown
    X = pd.DataFrame({"x1": x1, "x2": x2, "plan": pd.array(plan, dtype="string")})
    return X, y


def test_recovers_the_mean_function():
    X, y = spend(4000, 1)
    X_test, y_test = spend(2000, 2)
    model = BoostedRegressor(n_jobs=1).fit(X, y)
    known = X_test["x1"].notna().to_numpy()
    residual = y_test[known] - model.predict(X_test)[known]
    assert residual.std() < 2.3  # the noise sd is 2
    assert model.predict(X_test).dtype == np.float64 and model.n_features_in_ == 3
    np.testing.assert_allclose(model.pipeline_.predict(X_test), model.predict(X_test), atol=1e-4)


def test_early_stopping_on_a_validation_split():
    X, y = spend(2000, 3)
    Xv, yv = spend(1000, 4)
    model = BoostedRegressor(n_estimators=2000, learning_rate=0.3, early_stopping_rounds=20, n_jobs=1).fit(
        X, y, eval_set=(Xv, yv))
    curve = np.asarray(model.evals_result_["validation_0"]["rmse"])
    assert model.best_iteration_ == int(np.argmin(curve)) and len(curve) == model.best_iteration_ + 21
    assert model.n_iterations_ == model.best_iteration_ + 1


@pytest.mark.parametrize("cls", [BoostedRegressor, BoostedClassifier], ids=lambda c: c.__name__)
def test_sample_weights_give_the_weighted_mean(cls):
    """No feature to split on: the model is the (weighted) mean. 100 ones weighted 3 and 300 zeros weighted
    1 -> 300 / 600 = 0.5 (unweighted: 0.25)."""
    X = pd.DataFrame({"a": np.zeros(400)})
    y = np.r_[np.ones(100), np.zeros(300)].astype(int)
    weights = np.where(y == 1, 3.0, 1.0)
    params = {"n_estimators": 200, "learning_rate": 0.3, "subsample": 1.0, "n_jobs": 1} | ({"scale_pos_weight": None} if cls is BoostedClassifier else {})
    model = cls(**params)
    predict = model.predict_proba if cls is BoostedClassifier else model.predict

    def mean_prediction(**fit):
        out = predict.__func__(model.fit(X, y, **fit), X)
        return float((out[:, 1] if out.ndim == 2 else out).mean())

    assert mean_prediction(sample_weight=weights) == pytest.approx(0.5, abs=1e-3)
    assert mean_prediction() == pytest.approx(0.25, abs=1e-3)
    with pytest.raises(DataError, match=r"labels\.sample_weight: must be finite and >= 0.*-1 at row 0"):
        model.fit(X, y, sample_weight=np.r_[-1.0, np.ones(399)])


def test_tweedie_needs_non_negative_targets():
    X, y = spend(300, 5)
    with pytest.raises(DataError, match=r"labels\.y: must be >= 0 for objective 'reg:tweedie'"):
        BoostedRegressor(objective="reg:tweedie", n_estimators=5).fit(X, y - 40)
    model = BoostedRegressor(objective="reg:tweedie", n_estimators=50, n_jobs=1).fit(X, np.clip(y - 20, 0, None))
    assert (model.predict(X) > 0).all()


@pytest.mark.parametrize(("params", "message"), [
    ({"objective": "reg:absoluteerror"}, r"objective must be one of \['reg:squarederror'"),
    ({"subsample": 0.0}, r"subsample must be in \(0, 1\], got 0\.0"),
    ({"n_estimators": 0}, "n_estimators must be an integer >= 1, got 0"),
    ({"handle_unknown": "drop"}, "handle_unknown must be one of"),
])
def test_check_params_names_the_parameter(params, message):
    with pytest.raises(ConfigError, match=message):
        BoostedRegressor(**params).check_params()


def test_non_numeric_or_missing_targets():
    X, y = spend(50, 6)
    with pytest.raises(DataError, match=r"labels\.y: must be a finite number.*nan at index 3"):
        BoostedRegressor(n_estimators=2).fit(X, np.where(np.arange(50) == 3, np.nan, y))
    with pytest.raises(DataError, match=r"labels\.y: must be numbers"):
        BoostedRegressor(n_estimators=2).fit(X, ["a"] * 50)


def test_saved_and_loaded_as_data(tmp_path):
    X, y = spend(500, 7)
    model = BoostedRegressor(n_estimators=40, n_jobs=1).fit(X, y)
    save_classifier(model, tmp_path / "r")
    loaded = load_classifier(tmp_path / "r")
    assert isinstance(loaded, BoostedRegressor) and loaded.get_params() == model.get_params()
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["booster.json", "meta.json"]


def test_predictions_equal_xgboost_on_the_frame_bitwise():
    """The float32 matrix without a DMatrix gives exactly XGBoost's numbers for the Categorical frame."""
    import xgboost as xgb

    X, y = spend(2000, 3)
    model = BoostedRegressor(n_jobs=1, n_estimators=50).fit(X, y)
    frame = xgb.DMatrix(model.preprocessor_.transform(X), enable_categorical=True)
    expected = model.booster_.predict(frame, iteration_range=(0, model.n_iterations_)).astype(np.float64)
    np.testing.assert_array_equal(model.predict(X), expected)
