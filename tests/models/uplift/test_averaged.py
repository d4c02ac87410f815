"""AveragedUplift: the weighted mean of its members' uplift per arm, a learner like the others (chosen by
choose_learner as `average`, made by make_learner, saved as data)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.dummy import DummyClassifier

from custval.errors import ConfigError
from custval.metrics.uplift import qini_auc_score
from custval.models.classifiers import BoostedClassifier, BoostedRegressor
from custval.models.uplift import (
    AveragedUplift,
    DRLearner,
    SLearner,
    TLearner,
    XLearner,
    load_uplift,
    save_uplift,
)
from custval.models.uplift.averaged import average_of
from custval.models.uplift.selection import average_members, campaign_folds, choose_learner, make_learner

CLASSIFIER = BoostedClassifier(n_estimators=30, learning_rate=0.2, max_depth=3, scale_pos_weight=None, n_jobs=1)
REGRESSOR = BoostedRegressor(n_estimators=30, learning_rate=0.2, max_depth=3, n_jobs=1)


def tiny():
    """Control buys 1 of 4 (rate 0.25), email 2 of 4 (rate 0.5): a constant T-learner's uplift is 0.25."""
    X = pd.DataFrame({"x": np.arange(8.0)})
    y = np.array([1, 0, 0, 0, 1, 1, 0, 0])
    t = np.array(["control"] * 4 + ["email"] * 4, dtype=object)
    return X, y, t


def test_constant_members_average_by_hand():
    """T with a prior classifier: 0.5 - 0.25 = 0.25; S with a prior classifier ignores the arm column: 0.
    Equal weights: 0.125; weights [1, 3] (normalised 0.25, 0.75): 0.1875."""
    X, y, t = tiny()
    members = [SLearner(DummyClassifier(strategy="prior")), TLearner(DummyClassifier(strategy="prior"))]
    np.testing.assert_allclose(AveragedUplift(members, control="control").fit(X, y, t).predict(X), 0.125)
    weighted = AveragedUplift(members, weights=[1, 3], control="control").fit(X, y, t)
    np.testing.assert_allclose(weighted.predict(X), 0.1875)
    np.testing.assert_allclose(weighted.weights_, [0.25, 0.75])


def test_predict_is_the_mean_of_the_members_fitted_alone(campaign):
    data = campaign(1200, 41, ("email", "discount"))
    members = [SLearner(CLASSIFIER), TLearner(CLASSIFIER), XLearner(CLASSIFIER, REGRESSOR)]
    average = AveragedUplift(members, control="control").fit(data.X, data.y, data.treatment)
    alone = [clone(m).set_params(control="control").fit(data.X, data.y, data.treatment).predict(data.X)
             for m in members]
    assert average.predict(data.X).shape == (len(data.X), 2) and average.arms_ == ["discount", "email"]
    np.testing.assert_allclose(average.predict(data.X), (alone[0] + alone[1] + alone[2]) / 3, rtol=1e-12)
    assert all(m.arms_ == ["discount", "email"] for m in average.models_)
    assert average.models_[0] is not members[0] and not hasattr(members[0], "arms_")  # members cloned


def test_average_of_fitted_members_predicts_as_fitting_the_average(campaign):
    data = campaign(800, 42)
    fitted = [m.fit(data.X, data.y, data.treatment) for m in (SLearner(CLASSIFIER, control="control"),
                                                              TLearner(CLASSIFIER, control="control"))]
    built = average_of(fitted, weights=[2, 1])
    refit = AveragedUplift([SLearner(CLASSIFIER), TLearner(CLASSIFIER)], weights=[2, 1],
                           control="control").fit(data.X, data.y, data.treatment)
    np.testing.assert_allclose(built.predict(data.X), refit.predict(data.X), rtol=1e-12)
    with pytest.raises(ConfigError, match="share arms, control and outcome"):
        average_of([fitted[0], TLearner(REGRESSOR, control="control").fit(data.X, data.spend, data.treatment)])


@pytest.mark.parametrize(("params", "message"), [
    ({"learners": []}, "learners must be a non-empty list"),
    ({"learners": [CLASSIFIER]}, "must hold uplift learners"),
    ({"learners": [SLearner(), TLearner()], "weights": [1]}, "one number per learner"),
    ({"learners": [SLearner(), TLearner()], "weights": [1, -1]}, "non-negative"),
    ({"learners": [SLearner(), TLearner()], "weights": [0, 0]}, "not all 0"),
    ({"learners": [DRLearner(n_folds=1)]}, "n_folds"),
])
def test_bad_parameters_are_config_errors(params, message):
    with pytest.raises(ConfigError, match=message):
        AveragedUplift(**params).check_params()


def test_saved_and_loaded_as_data(campaign, tmp_path):
    data = campaign(800, 43, ("email", "discount"))
    model = AveragedUplift([SLearner(CLASSIFIER), DRLearner(CLASSIFIER, REGRESSOR, n_folds=2)], weights=[1, 2],
                           control="control").fit(data.X, data.y, data.treatment)
    save_uplift(model, tmp_path / "model")
    loaded = load_uplift(tmp_path / "model")
    assert type(loaded) is AveragedUplift and [type(m) for m in loaded.learners] == [SLearner, DRLearner]
    assert loaded.weights == [1, 2] and loaded.learners[1].n_folds == 2
    np.testing.assert_array_equal(loaded.predict(data.X), model.predict(data.X))
    files = [p for p in (tmp_path / "model").rglob("*") if p.is_file()]
    assert all(p.suffix == ".json" for p in files)  # no pickle


def test_make_learner_average_is_the_mean_of_the_other_listed_learners_that_apply():
    model = make_learner("average", xgboost={"n_estimators": 20}, control="c", arms=["a", "b"],
                         members=["s", "class_transformation", "dr", "average"])
    assert [type(m) for m in model.learners] == [SLearner, DRLearner]  # class_transformation: one arm only
    assert model.learners[0].learner.n_estimators == 20 and model.outcome == "binary"
    assert average_members(["t", "class_transformation"], continuous=False, n_arms=1) == ["t", "class_transformation"]
    with pytest.raises(ConfigError, match="average needs another learner"):
        average_members(["class_transformation", "average"], continuous=True, n_arms=1)


def test_choose_learner_scores_the_average_from_the_members_predictions(campaign):
    train, valid = campaign(1200, 44), campaign(600, 45)
    choice = choose_learner(["average", "s", "t"], train.X, train.y, train.treatment, valid.X, valid.y,
                            valid.treatment, arms=["email"], control="control", xgboost={"n_estimators": 30})
    assert list(choice.table.index) == ["average", "s", "t"]
    mean = (choice.models["s"].predict(valid.X) + choice.models["t"].predict(valid.X)) / 2
    expected = qini_auc_score(valid.y, mean, (valid.treatment == "email").astype(int))
    assert choice.table.loc["average", "valid_qini"] == pytest.approx(expected, rel=1e-9)
    np.testing.assert_allclose(choice.models["average"].predict(valid.X), mean, rtol=1e-12)


def test_choice_by_folds_scores_each_learner_by_its_mean_over_folds(campaign):
    """With n_folds, train and valid are pooled; a learner's score is the mean of its Qini on each held-out fold
    (recomputed here fold by fold with the same folds)."""
    train, valid = campaign(900, 46), campaign(600, 47)
    choice = choose_learner(["t", "s", "average"], train.X, train.y, train.treatment, valid.X, valid.y,
                            valid.treatment, arms=["email"], control="control", xgboost={"n_estimators": 20},
                            n_folds=3)
    X = pd.concat([train.X, valid.X])
    y, t = np.concatenate([train.y, valid.y]), np.concatenate([train.treatment, valid.treatment])
    folds = campaign_folds(t, y, n_folds=3, seed=0)
    assert sorted(np.concatenate([score for _, score in folds]).tolist()) == list(range(len(y)))
    qinis = {"t": [], "s": [], "average": []}
    for fit, score in folds:
        u = {name: make_learner(name, xgboost={"n_estimators": 20}, control="control", arms=["email"])
             .fit(X.iloc[fit], y[fit], t[fit]).predict(X.iloc[score]) for name in ("t", "s")}
        u["average"] = (u["t"] + u["s"]) / 2
        for name, uplift in u.items():
            qinis[name].append(qini_auc_score(y[score], uplift, (t[score] == "email").astype(int)))
    for name, values in qinis.items():
        assert choice.table.loc[name, "valid_qini"] == pytest.approx(np.mean(values), rel=1e-9)
    assert choice.chosen == max(qinis, key=lambda n: np.mean(qinis[n])) and choice.models == {}


def test_predict_arms_is_those_columns_of_predict(campaign):
    data = campaign(1200, 43, ("email", "discount"))
    members = [TLearner(CLASSIFIER), XLearner(CLASSIFIER, REGRESSOR)]
    average = AveragedUplift(members, control="control").fit(data.X, data.y, data.treatment)
    every = average.predict(data.X)
    np.testing.assert_array_equal(average.predict_arms(data.X, ["email"]), every[:, [1]])
    np.testing.assert_array_equal(average.predict_arms(data.X, ["email", "discount"]), every[:, [1, 0]])
