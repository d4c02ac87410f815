"""Uplift learners saved as data (JSON and XGBoost JSON, no pickle) and loaded back: the same predictions,
parameters and fitted values; base learners that cannot be stored as data are refused before anything is
written."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xgboost as xgb
from sklearn.linear_model import LinearRegression, LogisticRegression

from custval.errors import ConfigError, ModelError
from custval.models.classifiers import BoostedClassifier, BoostedRegressor, TreeClassifier
from custval.models.uplift import (
    AveragedUplift,
    ClassTransformation,
    DRLearner,
    SLearner,
    TLearner,
    XLearner,
    load_uplift,
    save_uplift,
)

CLASSIFIER = BoostedClassifier(n_estimators=30, learning_rate=0.2, max_depth=3, scale_pos_weight=None, n_jobs=1)
REGRESSOR = BoostedRegressor(n_estimators=30, learning_rate=0.2, max_depth=3, n_jobs=1)


def models():
    return {
        "s": SLearner(CLASSIFIER, control="control"),
        "t_two_arms": TLearner(CLASSIFIER, control="control", arms=["email", "discount"]),
        "x_propensity": XLearner(CLASSIFIER, REGRESSOR, TreeClassifier(max_depth=2), control="control"),
        "dr": DRLearner(CLASSIFIER, REGRESSOR, n_folds=2, control="control"),
        "t_revenue": TLearner(REGRESSOR, control="control", outcome="continuous"),
        "x_defaults": XLearner(control="control"),
        "average": AveragedUplift([SLearner(CLASSIFIER), TLearner(CLASSIFIER)], weights=[1, 3], control="control"),
    }


@pytest.fixture(scope="module")
def data(campaign):
    return campaign(1200, 21, ("email", "discount")), campaign(300, 22, ("email", "discount"))


def _comparable(value):
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    if hasattr(value, "get_params"):
        return type(value).__name__, {k: _comparable(v) for k, v in value.get_params(deep=False).items()
                                      if k != "callbacks"}
    return value


@pytest.mark.parametrize("name", list(models()))
def test_a_loaded_learner_predicts_exactly_as_the_saved_one(data, tmp_path, name):
    train, test = data
    model = models()[name]
    y = train.spend if name == "t_revenue" else train.y
    if name in ("s", "x_propensity", "x_defaults"):
        train = train.subset(("email",))
        y = train.y
    model.fit(train.X, y, train.treatment)
    save_uplift(model, tmp_path / "model")
    loaded = load_uplift(tmp_path / "model")
    assert type(loaded) is type(model)
    np.testing.assert_array_equal(loaded.predict(test.X), model.predict(test.X))
    assert {k: _comparable(v) for k, v in loaded.get_params(deep=False).items()} == \
        {k: _comparable(v) for k, v in model.get_params(deep=False).items()}
    assert loaded.arms_ == model.arms_ and loaded.control_ == model.control_ and loaded.outcome_ == model.outcome_
    np.testing.assert_array_equal(loaded.feature_names_in_, model.feature_names_in_)
    files = [p for p in (tmp_path / "model").rglob("*") if p.is_file()]
    assert files and all(p.suffix in (".json", ".skops") for p in files)  # no pickle
    assert all(p.suffix == ".json" for p in files) or name == "x_propensity"  # the tree: custval's skops


def test_xgboost_base_learners_on_numeric_features_and_integer_arms(tmp_path, campaign):
    data = campaign(800, 23)
    X, t = data.X[["x1", "x2"]].to_numpy(), data.binary_treatment()
    model = ClassTransformation(xgb.XGBClassifier(n_estimators=20, max_depth=2, n_jobs=1)).fit(X, data.y, t)
    save_uplift(model, tmp_path / "ct")
    meta = json.loads((tmp_path / "ct" / "meta.json").read_text())
    assert meta["kind"] == "ClassTransformation" and meta["params"]["learner"]["class"] == "xgboost.XGBClassifier"
    loaded = load_uplift(tmp_path / "ct")
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert loaded.arms_ == [1] and loaded.control_ == 0
    revenue = DRLearner(xgb.XGBRegressor(n_estimators=20, n_jobs=1), xgb.XGBRegressor(n_estimators=20, n_jobs=1),
                        n_folds=2).fit(X, data.spend, t)
    np.testing.assert_array_equal(load_uplift(save_uplift(revenue, tmp_path / "dr")).predict(X), revenue.predict(X))


def test_base_learners_that_cannot_be_saved_as_data_are_refused_before_writing(tmp_path, campaign):
    data = campaign(400, 24)
    X = data.X[["x1", "x2"]]
    model = TLearner(LogisticRegression(), control="control").fit(X, data.y, data.treatment)
    with pytest.raises(ConfigError, match="learner: save_uplift stores base learners as data only for "
                                          "BoostedClassifier.*LogisticRegression cannot be saved without pickle"):
        save_uplift(model, tmp_path / "t")
    assert not (tmp_path / "t").exists()
    linear_effects = XLearner(effect_learner=LinearRegression(), control="control").fit(X, data.y, data.treatment)
    with pytest.raises(ConfigError, match="effect_learner: .*LinearRegression"):
        save_uplift(linear_effects, tmp_path / "x")
    with pytest.raises(ConfigError, match="random_state: cannot save RandomState"):
        save_uplift(SLearner(CLASSIFIER, control="control", random_state=np.random.RandomState(0)).fit(
            data.X, data.y, data.treatment), tmp_path / "s")
    with pytest.raises(ConfigError, match="save_uplift saves SLearner, TLearner, XLearner, DRLearner, ClassTransformation, got BoostedClassifier"):
        save_uplift(CLASSIFIER, tmp_path / "c")


def test_unfitted_models_and_foreign_files_are_refused(tmp_path):
    from custval.errors import NotFittedError

    with pytest.raises(NotFittedError):
        save_uplift(TLearner(), tmp_path / "t")
    with pytest.raises(ModelError, match="no saved uplift model"):
        load_uplift(tmp_path / "nothing")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "meta.json").write_text(json.dumps({"format": "custval-classifier", "version": 2}))
    with pytest.raises(ModelError, match="is not a custval-uplift v1 file"):
        load_uplift(tmp_path / "other")
    (tmp_path / "other" / "meta.json").write_text(json.dumps({"format": "custval-uplift", "version": 1,
                                                              "kind": "RLearner"}))
    with pytest.raises(ModelError, match="unknown uplift model kind 'RLearner'"):
        load_uplift(tmp_path / "other")
