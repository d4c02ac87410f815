"""AveragedClassifier: the weighted mean of its members' margins, their contributions averaged exactly, members
fitted as clones, parameter checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit
from sklearn.metrics import roc_auc_score

from custval.errors import ConfigError
from custval.models.classifiers import (
    AveragedClassifier,
    BoostedClassifier,
    LogisticClassifier,
    TreeClassifier,
)
from custval.models.classifiers.reasons import top_reasons


def _members():
    return [("xgboost", BoostedClassifier(n_estimators=150, n_jobs=1)), ("logistic", LogisticClassifier())]


@pytest.fixture(scope="module")
def averaged(data):
    X, y, _ = data["train"]
    return AveragedClassifier(_members(), weights=[3, 1]).fit(X, y)


def test_the_margin_is_the_weighted_mean_of_independently_fitted_members(data, averaged):
    X, y, _ = data["train"]
    Xt = data["test"][0]
    boosted = BoostedClassifier(n_estimators=150, n_jobs=1).fit(X, y)
    logistic = LogisticClassifier().fit(X, y)
    expected = 0.75 * boosted.predict_margin(Xt) + 0.25 * logistic.predict_margin(Xt)
    np.testing.assert_allclose(averaged.predict_margin(Xt), expected, rtol=1e-12)
    np.testing.assert_allclose(averaged.predict_proba(Xt)[:, 1], expit(expected), rtol=1e-12)
    assert averaged.weights_.tolist() == [0.75, 0.25]
    # the members passed in stay unfitted: fit works on clones
    assert not hasattr(averaged.estimators[0][1], "booster_")
    assert set(averaged.named_estimators_) == {"xgboost", "logistic"}


def test_the_average_ranks_at_least_as_well_as_its_weaker_member(data, averaged):
    Xt, yt, _ = data["test"]
    aucs = {name: roc_auc_score(yt, m.predict_proba(Xt)[:, 1]) for name, m in averaged.named_estimators_.items()}
    assert roc_auc_score(yt, averaged.predict_proba(Xt)[:, 1]) >= min(aucs.values())


def test_contributions_are_the_weighted_mean_and_sum_to_the_margin(data, averaged):
    Xt = data["test"][0].iloc[:200]
    contributions = averaged.contributions(Xt)
    parts = [m.contributions(Xt) for m in averaged.estimators_]
    np.testing.assert_allclose(contributions.to_numpy(), (0.75 * parts[0] + 0.25 * parts[1]).to_numpy(), rtol=1e-12)
    # XGBoost computes its contributions in float32: as in test_boosting, within 1e-4
    np.testing.assert_allclose(contributions.sum(axis=1).to_numpy(), averaged.predict_margin(Xt), atol=1e-4)
    reasons = averaged.explain(Xt, top=3)
    top = contributions.drop(columns="bias").idxmax(axis=1)
    assert all(r.startswith(f"{c}=") for r, c in zip(reasons["reason_1"], top, strict=True) if r)
    importances = averaged.feature_importances_
    assert importances.sum() == pytest.approx(1.0)


@pytest.mark.parametrize(("params", "match"), [
    ({"estimators": None}, "estimators must be a non-empty list"),
    ({"estimators": [BoostedClassifier()]}, "estimators must be a non-empty list of \\(name, classifier\\)"),
    ({"estimators": [("a", LogisticClassifier()), ("a", LogisticClassifier())]}, "distinct names"),
    ({"estimators": [("tree", TreeClassifier())]}, "tree \\(TreeClassifier\\) has no predict_margin"),
    ({"estimators": [("lr", LogisticClassifier(C=-1))]}, "estimators: lr: C must be"),
    ({"estimators": _members(), "weights": [1]}, "weights must be None or 2 positive numbers"),
    ({"estimators": _members(), "weights": [1, 0]}, "weights must be None or 2 positive numbers"),
])
def test_bad_parameters_are_config_errors(params, match):
    with pytest.raises(ConfigError, match=match):
        AveragedClassifier(**params).check_params()


def test_reasons_from_the_contribution_arrays_equal_those_from_the_contribution_frames(data, averaged):
    """explain reads `contribution_values` (arrays); the frame path (`top_reasons` of `contributions`) and, for
    the logistic member, coefficient x standardised value summed by owner column give the same numbers."""
    Xt = data["test"][0].iloc[:300]
    boosted, logistic = averaged.estimators_
    for model in (averaged, boosted, logistic):
        frame = model.contributions(Xt)
        pd.testing.assert_frame_equal(model.explain(Xt, top=3),
                                      top_reasons(frame, model.preprocessor_ if model is not averaged
                                                  else boosted.preprocessor_, Xt, 3))
    terms = logistic.standardised(Xt) * logistic.coef_
    by_column = terms.T.groupby(np.asarray(logistic.design_columns_)).sum().T
    names = [str(c) for c in logistic.feature_names_in_]
    np.testing.assert_allclose(logistic.contribution_values(Xt)[:, :-1], by_column[names].to_numpy(), rtol=1e-12,
                               atol=1e-15)
    assert (logistic.contribution_values(Xt)[:, -1] == logistic.intercept_).all()
    one, many = averaged.explain(Xt.iloc[[7]], top=3).iloc[0], averaged.explain(Xt, top=3).iloc[7]
    assert one[["reason_1", "reason_2", "reason_3"]].tolist() == many[["reason_1", "reason_2", "reason_3"]].tolist()
    np.testing.assert_allclose(one.iloc[3:].astype(float), many.iloc[3:].astype(float), rtol=1e-12)
