"""Guard rails of the uplift learners: each bad treatment, outcome or parameter is one custval error naming
the column, arm or parameter, raised before any base learner is fitted."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.neighbors import KNeighborsClassifier

from custval.errors import ConfigError, DataError
from custval.models.classifiers import BoostedClassifier
from custval.models.uplift import ClassTransformation, DRLearner, SLearner, TLearner, XLearner

LEARNERS = [SLearner, TLearner, XLearner, DRLearner, ClassTransformation]


@pytest.fixture(scope="module")
def small(campaign):
    data = campaign(400, 7, ("email", "discount"))
    return data.X[["x1", "x2"]], data.y, pd.Series(data.treatment, name="arm", index=data.X.index)


def email_only(small):
    X, y, arm = small
    keep = (arm != "discount").to_numpy()
    return X[keep], y[keep], arm[keep]


@pytest.mark.parametrize("cls", LEARNERS, ids=lambda c: c.__name__)
def test_missing_treatment_names_the_column_and_row(small, cls):
    X, y, arm = email_only(small)
    arm = arm.copy()
    arm.iloc[5] = None
    with pytest.raises(DataError, match=r"campaign\.arm: must not be missing.*row 5"):
        cls(LogisticRegression(), control="control").fit(X, y, arm)


@pytest.mark.parametrize("cls", LEARNERS, ids=lambda c: c.__name__)
def test_control_absent_or_not_named(small, cls):
    X, y, arm = email_only(small)
    with pytest.raises(DataError, match=r"campaign\.arm: has no row of the control arm 'holdout'"):
        cls(LogisticRegression(), control="holdout").fit(X, y, arm)
    with pytest.raises(ConfigError, match=r"control must name the control arm.*\['control', 'email'\]"):
        cls(LogisticRegression()).fit(X, y, arm)
    control = (arm == "control").to_numpy()
    with pytest.raises(DataError, match="has no treated rows"):
        cls(LogisticRegression(), control="control").fit(X[control], y[control], arm[control])


def test_an_arm_listed_with_no_rows_and_an_arm_not_listed(small):
    X, y, arm = small
    with pytest.raises(DataError, match=r"campaign\.arm: arm 'sms' has no rows"):
        TLearner(LogisticRegression(), control="control", arms=["email", "sms"]).fit(X, y, arm)
    with pytest.raises(DataError, match=r"neither the control nor one of `arms` \(e\.g\. 'discount'\)"):
        TLearner(LogisticRegression(), control="control", arms=["email"]).fit(X, y, arm)


@pytest.mark.parametrize("cls", [SLearner, TLearner, XLearner, DRLearner], ids=lambda c: c.__name__)
def test_a_non_binary_outcome_for_a_binary_learner(small, cls):
    X, _, arm = small
    spend = np.linspace(0.0, 30.0, len(X))
    with pytest.raises(DataError, match=r"campaign\.y: must be 0/1 for a binary outcome.*0\.075188 at row 1"):
        cls(control="control", outcome="binary").fit(X, spend, arm)


def test_class_transformation_takes_one_arm_and_a_binary_outcome(small):
    X, y, arm = small
    with pytest.raises(DataError, match="ClassTransformation models one treatment arm vs control"):
        ClassTransformation(LogisticRegression(), control="control").fit(X, y, arm)
    X1, _, arm1 = email_only(small)
    with pytest.raises(DataError, match="must be 0/1 for a binary outcome"):
        ClassTransformation(LogisticRegression(), control="control").fit(X1, np.linspace(0, 1, len(X1)), arm1)
    with pytest.raises(ConfigError, match="arms: ClassTransformation models one treatment arm"):
        ClassTransformation(arms=["email", "discount"]).check_params()


def test_an_arm_without_responders(small):
    X, y, arm = small
    y = np.where(arm == "discount", 0, y)
    with pytest.raises(DataError, match=r"campaign\.y: needs responders and non-responders in arm 'discount'"):
        TLearner(LogisticRegression(), control="control").fit(X, y, arm)


def test_too_few_rows_per_fold_for_cross_fitting(small):
    X, y, arm = email_only(small)
    y = np.where(arm == "email", 0, y)
    y[np.flatnonzero(arm == "email")[:2]] = 1
    with pytest.raises(DataError, match="needs at least n_folds=3 responders in arm 'email' for cross-fitting"):
        DRLearner(LogisticRegression(), LinearRegression(), control="control").fit(X, y, arm)


def test_class_transformation_on_unequal_arms_needs_sample_weight(small):
    X, y, arm = email_only(small)
    keep = np.ones(len(X), dtype=bool)
    keep[np.flatnonzero(arm == "email")[:20]] = False
    with pytest.raises(ConfigError, match="KNeighborsClassifier.fit takes no sample_weight"):
        ClassTransformation(KNeighborsClassifier(), control="control").fit(X[keep], y[keep], arm[keep])


@pytest.mark.parametrize(("model", "message"), [
    (SLearner(outcome="revenue"), r"outcome must be one of \['auto', 'binary', 'continuous'\], got 'revenue'"),
    (TLearner(arms=["email", "email"]), "arms must be distinct"),
    (TLearner(control="control", arms=["control"]), "not include the control arm"),
    (TLearner(arms="email"), "arms must be a non-empty list"),
    (SLearner(control=1.5), "control must be an arm name"),
    (TLearner(random_state=-1), r"random_state must be an integer in \[0, 2\*\*32\)"),
    (DRLearner(n_folds=1), "n_folds must be an integer >= 2, got 1"),
    (DRLearner(propensity_clip=0.5), r"propensity_clip must be a number in \(0, 0\.5\), got 0\.5"),
    (XLearner(effect_learner=LogisticRegression()), "effect_learner must be a regressor"),
    (XLearner(propensity_learner=LinearRegression()), "propensity_learner must be a classifier with predict_proba"),
    (TLearner(learner=LinearRegression(), outcome="binary"), "learner must be a classifier with predict_proba"),
    (TLearner(learner=LogisticRegression(), outcome="continuous"), "learner must be a regressor"),
    (SLearner(learner=BoostedClassifier(subsample=1.5)), r"subsample must be in \(0, 1\], got 1\.5"),
    (SLearner(learner="xgboost"), "learner must be a scikit-learn estimator"),
])
def test_check_params_names_the_parameter(model, message):
    with pytest.raises(ConfigError, match=message):
        model.check_params()


def test_the_learner_kind_is_checked_at_fit_when_the_outcome_is_auto(small):
    X, y, arm = email_only(small)
    with pytest.raises(ConfigError, match="learner must be a classifier with predict_proba"):
        TLearner(LinearRegression(), control="control").fit(X, y, arm)
    assert TLearner(LinearRegression(), control="control").check_params()  # unknown outcome: any estimator


def test_treatment_codes_and_booleans(small):
    X, y, arm = email_only(small)
    codes = (arm == "email").to_numpy()
    by_name = TLearner(LogisticRegression(), control="control").fit(X, y, arm).predict(X)
    for treatment in (codes, codes.astype(float), codes.astype(int).tolist()):
        model = TLearner(LogisticRegression()).fit(X, y, treatment)
        assert model.control_ == 0 and model.arms_ == [1]
        np.testing.assert_array_equal(model.predict(X), by_name)
    with pytest.raises(DataError, match="either arm names or integer codes, not both"):
        TLearner(LogisticRegression(), control=0).fit(X, y, ["email" if c else 0 for c in codes])


def test_a_treatment_or_outcome_series_must_carry_the_features_index(small):
    X, y, arm = email_only(small)
    with pytest.raises(DataError, match=r"campaign\.arm: index must match the features' index"):
        TLearner(LogisticRegression(), control="control").fit(X, y, arm.reset_index(drop=True))
    with pytest.raises(DataError, match=r"campaign\.bought: index must match the features' index"):
        TLearner(LogisticRegression(), control="control").fit(X, pd.Series(y, name="bought"), arm)


def test_fit_checks_the_parameters_before_the_data():
    with pytest.raises(ConfigError, match="outcome must be one of"):
        TLearner(outcome="revenue").fit("not a table", None, None)
