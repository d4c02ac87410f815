"""The uplift learners on campaigns with a known effect per customer: each recovers the truth (including
the sleeping dogs), equals its definition built by hand from the same base learners, matches scikit-uplift's
model of the same name on the same base learner, handles several arms and a continuous outcome, and learns
exact answers where the model class contains the truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.tree import DecisionTreeClassifier
from sklift.metrics import qini_auc_score
from sklift.models import ClassTransformation as SkliftClassTransformation
from sklift.models import SoloModel, TwoModels

from custval.errors import ConfigError
from custval.models.classifiers import BoostedClassifier, BoostedRegressor
from custval.models.uplift import ClassTransformation, DRLearner, SLearner, TLearner, XLearner

CLASSIFIER = BoostedClassifier(n_estimators=80, learning_rate=0.1, max_depth=3, scale_pos_weight=None, n_jobs=1)
REGRESSOR = BoostedRegressor(n_estimators=80, learning_rate=0.1, max_depth=3, n_jobs=1)


def fast(cls, **params):
    """A learner of `cls` on small XGBoost base learners (the defaults have more trees)."""
    roles = {SLearner: {"learner": None}, TLearner: {"learner": None}, ClassTransformation: {"learner": None},
             XLearner: {"outcome_learner": None, "effect_learner": REGRESSOR},
             DRLearner: {"outcome_learner": None, "effect_learner": REGRESSOR}}[cls]
    continuous = params.get("outcome") == "continuous"
    chosen = {role: value if value is not None else (REGRESSOR if continuous else CLASSIFIER)
              for role, value in roles.items()}
    return cls(control="control", **chosen, **params)


LEARNERS = [SLearner, TLearner, XLearner, DRLearner, ClassTransformation]


@pytest.mark.parametrize("cls", LEARNERS, ids=lambda c: c.__name__)
def test_each_learner_recovers_the_true_uplift_and_the_sleeping_dogs(one_arm, cls):
    train, test = one_arm
    model = fast(cls).fit(train.X, train.y, train.treatment)
    uplift, truth = model.predict(test.X), test.true_uplift["email"]
    assert uplift.shape == (len(test.X),) and model.arms_ == ["email"] and model.control_ == "control"
    assert list(model.predict_frame(test.X).columns) == ["email"]
    assert model.outcome_ == "binary"
    assert np.corrcoef(uplift, truth)[0, 1] > 0.75
    top = uplift >= np.quantile(uplift, 0.9)
    assert truth[top].mean() >= 2 * truth.mean()
    dogs = truth < -0.05  # a contact lowers their chance to buy by more than 5 points
    assert uplift[dogs].mean() < 0
    deciles = pd.qcut(uplift, 10, labels=False)
    assert np.mean(deciles[dogs] <= 2) > 0.6  # ranked in the bottom deciles


@pytest.mark.parametrize("cls", LEARNERS, ids=lambda c: c.__name__)
@pytest.mark.filterwarnings("ignore:Function stable_cumsum is deprecated:FutureWarning")
def test_qini_is_at_least_80_percent_of_ranking_by_the_true_uplift(one_arm, cls):
    """The issue's quality bar, measured with scikit-uplift's Qini coefficient on the test draw."""
    train, test = one_arm
    uplift = fast(cls).fit(train.X, train.y, train.treatment).predict(test.X)
    treated = test.binary_treatment()
    oracle = qini_auc_score(test.y, test.true_uplift["email"], treated)
    assert oracle > 0.1 and qini_auc_score(test.y, uplift, treated) >= 0.8 * oracle


def test_t_learner_is_the_difference_of_two_separately_fitted_models(one_arm):
    train, test = one_arm
    treated = train.treatment == "email"
    model_t = clone(CLASSIFIER).fit(train.X[treated], train.y[treated])
    model_c = clone(CLASSIFIER).fit(train.X[~treated], train.y[~treated])
    expected = model_t.predict_proba(test.X)[:, 1] - model_c.predict_proba(test.X)[:, 1]
    learner = TLearner(CLASSIFIER, control="control").fit(train.X, train.y, train.treatment)
    np.testing.assert_array_equal(learner.predict(test.X), expected)
    assert learner.models_[0] is not CLASSIFIER and not hasattr(CLASSIFIER, "booster_")  # cloned inside


def test_s_learner_is_the_base_model_scored_treated_minus_control(one_arm):
    train, test = one_arm
    indicator = (train.treatment == "email").astype(float)
    base = clone(CLASSIFIER).fit(train.X.assign(**{"treatment=email": indicator}), train.y)
    expected = (base.predict_proba(test.X.assign(**{"treatment=email": 1.0}))[:, 1]
                - base.predict_proba(test.X.assign(**{"treatment=email": 0.0}))[:, 1])
    learner = SLearner(CLASSIFIER, control="control").fit(train.X, train.y, train.treatment)
    np.testing.assert_array_equal(learner.predict(test.X), expected)


# ------------------------------------------------------------------------------ scikit-uplift as an oracle
@pytest.fixture(scope="module")
def numeric(one_arm):
    """Numeric features (scikit-uplift passes X to the estimator as is) and 0/1 treatment."""
    train, test = one_arm
    features = ["x1", "x2"]
    X, X_test = train.X[features].assign(x1x2=lambda f: f.x1 * f.x2), test.X[features].assign(
        x1x2=lambda f: f.x1 * f.x2)
    return X, train.y, train.binary_treatment(), X_test


def test_s_learner_matches_sklift_solo_model(numeric):
    X, y, t, X_test = numeric
    ours = SLearner(LogisticRegression()).fit(X, y, t).predict(X_test)
    theirs = SoloModel(LogisticRegression()).fit(X, y, t).predict(X_test)
    np.testing.assert_allclose(ours, theirs, atol=1e-6)


def test_t_learner_matches_sklift_two_models(numeric):
    X, y, t, X_test = numeric
    ours = TLearner(LogisticRegression()).fit(X, y, t).predict(X_test)
    theirs = TwoModels(LogisticRegression(), LogisticRegression(), method="vanilla").fit(X, y, t).predict(X_test)
    np.testing.assert_allclose(ours, theirs, atol=1e-9)


def test_class_transformation_matches_sklift_on_equal_arms(numeric):
    X, y, t, X_test = numeric
    assert t.sum() * 2 == len(t)  # equal arms: no weights, the plain transformation
    ours = ClassTransformation(LogisticRegression()).fit(X, y, t)
    theirs = SkliftClassTransformation(LogisticRegression()).fit(X, y, t).predict(X_test)
    np.testing.assert_allclose(ours.predict(X_test), theirs, atol=1e-9)
    assert list(ours.weights_) == [1.0, 1.0]


def test_class_transformation_weights_unequal_arms_back_to_the_uplift():
    """Two cells (g = 0, 1), each 1/4 treated; within a cell the weighted share of z = 1 is
    (p_treated + 1 - p_control) / 2, so a tree with one split per cell returns p_treated - p_control."""
    g = np.repeat([0, 1], 400)
    t = np.tile(np.r_[np.ones(100), np.zeros(300)], 2).astype(int)
    rates = {(0, 1): 0.30, (0, 0): 0.20, (1, 1): 0.10, (1, 0): 0.25}  # cell 1: sleeping dogs
    y = np.zeros(800, dtype=int)
    for (cell, arm), rate in rates.items():
        rows = np.flatnonzero((g == cell) & (t == arm))
        y[rows[: int(round(rate * len(rows)))]] = 1
    X = pd.DataFrame({"g": g.astype(float)})
    model = ClassTransformation(DecisionTreeClassifier(max_depth=1)).fit(X, y, t)
    np.testing.assert_allclose(model.predict(pd.DataFrame({"g": [0.0, 1.0]})), [0.10, -0.15], atol=1e-12)
    np.testing.assert_allclose(model.weights_, [800 / (2 * 600), 800 / (2 * 200)])  # n / (2 n_group)


# ----------------------------------------------------------------------------------- hand-worked answers
def test_constant_learners_give_the_difference_in_response_rates():
    """Intercept-only learners: T- and X-learner both reduce to mean(y | treated) - mean(y | control)."""
    rng = np.random.default_rng(5)
    X = pd.DataFrame({"a": rng.normal(size=500)})
    t = rng.permutation(np.r_[np.ones(200), np.zeros(300)]).astype(int)
    y = (rng.random(500) < np.where(t == 1, 0.3, 0.2)).astype(int)
    expected = y[t == 1].mean() - y[t == 0].mean()
    t_learner = TLearner(DummyClassifier(strategy="prior")).fit(X, y, t)
    x_learner = XLearner(DummyClassifier(strategy="prior"), DummyRegressor()).fit(X, y, t)
    for model in (t_learner, x_learner):
        np.testing.assert_allclose(model.predict(X.iloc[:3]), expected, atol=1e-12)
    np.testing.assert_allclose(x_learner.propensity_, [0.4])


@pytest.mark.parametrize("cls", [TLearner, XLearner, DRLearner], ids=lambda c: c.__name__)
def test_linear_learners_recover_a_linear_effect_exactly(cls):
    """Noise-free revenue y = 1 + 2 x1 - x2 + arm (0.5 + 3 x1): linear base learners contain the truth, so
    every stage is exact and the uplift is 0.5 + 3 x1 (X as a numpy array)."""
    rng = np.random.default_rng(6)
    X = rng.normal(size=(300, 2))
    t = rng.permutation(np.resize([0, 1], 300))
    y = 1 + 2 * X[:, 0] - X[:, 1] + t * (0.5 + 3 * X[:, 0])
    learners = ({"learner": LinearRegression()} if cls is TLearner
                else {"outcome_learner": LinearRegression(), "effect_learner": LinearRegression()})
    model = cls(**learners).fit(X, y, t)
    X_new = np.array([[0.0, 5.0], [1.0, -2.0], [-2.0, 0.3]])
    np.testing.assert_allclose(model.predict(X_new), 0.5 + 3 * X_new[:, 0], atol=1e-8)
    assert model.outcome_ == "continuous" and model.arms_ == [1] and model.control_ == 0


# -------------------------------------------------------------------------------------------- several arms
@pytest.mark.parametrize("cls", [TLearner, XLearner], ids=lambda c: c.__name__)
def test_each_arm_column_is_the_one_arm_fit_on_that_arm_and_the_control(two_arms, cls):
    train, test = two_arms
    model = fast(cls, arms=["email", "discount"]).fit(train.X, train.y, train.treatment)
    uplift = model.predict(test.X)
    assert uplift.shape == (len(test.X), 2) and model.arms_ == ["email", "discount"]
    frame = model.predict_frame(test.X)
    assert list(frame.columns) == ["email", "discount"] and frame.index.equals(test.X.index)
    np.testing.assert_array_equal(frame.to_numpy(), uplift)
    for k, arm in enumerate(model.arms_):
        part = train.subset((arm,))
        alone = fast(cls).fit(part.X, part.y, part.treatment)
        np.testing.assert_allclose(uplift[:, k], alone.predict(test.X), atol=1e-12)


@pytest.mark.parametrize("cls", [SLearner, DRLearner], ids=lambda c: c.__name__)
def test_several_arms_recover_each_arms_truth(two_arms, cls):
    train, test = two_arms
    model = fast(cls).fit(train.X, train.y, train.treatment)
    assert model.arms_ == ["discount", "email"]  # sorted when `arms` is not given
    uplift = model.predict(test.X)
    for k, arm in enumerate(model.arms_):
        assert np.corrcoef(uplift[:, k], test.true_uplift[arm])[0, 1] > 0.6, arm


# --------------------------------------------------------------------------------------- revenue uplift
@pytest.mark.parametrize("cls", [SLearner, TLearner, XLearner, DRLearner], ids=lambda c: c.__name__)
def test_revenue_uplift_of_each_arm(two_arms, cls):
    train, test = two_arms
    model = fast(cls, outcome="continuous", arms=["email", "discount"]).fit(train.X, train.spend, train.treatment)
    assert model.outcome_ == "continuous"
    uplift = model.predict(test.X)
    for k, arm in enumerate(model.arms_):
        truth = test.true_spend_uplift[arm]
        assert np.corrcoef(uplift[:, k], truth)[0, 1] > 0.85, arm
        assert abs(uplift[:, k].mean() - truth.mean()) < 0.6, arm


def test_default_learners_are_xgboost_with_unweighted_classes(one_arm, campaign):
    train, test = one_arm
    model = TLearner(control="control").fit(train.X, train.y, train.treatment)
    assert all(isinstance(m, BoostedClassifier) and m.scale_pos_weight is None for m in model.models_)
    assert np.corrcoef(model.predict(test.X), test.true_uplift["email"])[0, 1] > 0.75
    small = campaign(900, 9)
    revenue = XLearner(control="control").fit(small.X, small.spend, small.treatment)
    assert all(isinstance(m, BoostedRegressor) for m in revenue.treated_effect_models_)


def test_dr_learner_with_a_propensity_model_is_robust_to_wrong_outcome_models():
    """Confounded assignment P(arm | x1) = expit(x1) and y = 2 x1 + 1.0 * arm + noise: constant outcome models
    are wrong, so the constant-share propensity leaves the naive bias (treated customers have larger x1);
    the right propensity model makes the pseudo-outcomes unbiased for the effect 1.0 (double robustness)."""
    rng = np.random.default_rng(8)
    n = 6000
    x1 = rng.normal(size=n)
    t = (rng.random(n) < 1 / (1 + np.exp(-x1))).astype(int)
    y = 2 * x1 + 1.0 * t + rng.normal(0, 0.5, n)
    X = pd.DataFrame({"x1": x1})
    naive = y[t == 1].mean() - y[t == 0].mean()
    constant = DRLearner(DummyRegressor(), DummyRegressor()).fit(X, y, t)
    modelled = DRLearner(DummyRegressor(), DummyRegressor(), LogisticRegression()).fit(X, y, t)
    assert naive > 2.0 and constant.predict(X.iloc[:1])[0] == pytest.approx(naive, abs=0.05)
    assert modelled.predict(X.iloc[:1])[0] == pytest.approx(1.0, abs=0.15)


def test_x_learner_blends_by_a_propensity_model():
    """tau(x) = g(x) tau_control + (1 - g(x)) tau_treated, built by hand: linear outcome models, constant
    (mean) effect models, so tau_treated = mean(y - mu_control(x)) over the treated and tau_control =
    mean(mu_treated(x) - y) over the control; g a logistic regression of the arm on x1."""
    rng = np.random.default_rng(9)
    x1 = rng.normal(size=2000)
    t = (rng.random(2000) < 1 / (1 + np.exp(-x1))).astype(int)
    y = 1 + x1 + t * (0.5 + x1 ** 2) + rng.normal(0, 0.3, 2000)  # mu linear in x1: wrong for the treated
    X = pd.DataFrame({"x1": x1})
    treated = t == 1
    mu_control = LinearRegression().fit(X[~treated], y[~treated])
    mu_treated = LinearRegression().fit(X[treated], y[treated])
    tau_treated = (y[treated] - mu_control.predict(X[treated])).mean()
    tau_control = (mu_treated.predict(X[~treated]) - y[~treated]).mean()
    g = LogisticRegression().fit(X, t).predict_proba(X)[:, 1]
    model = XLearner(LinearRegression(), DummyRegressor(), LogisticRegression()).fit(X, y, t)
    np.testing.assert_allclose(model.predict(X), g * tau_control + (1 - g) * tau_treated, atol=1e-10)
    assert abs(tau_control - tau_treated) > 0.3 and g.min() < 0.2 and g.max() > 0.8  # the blend matters


class _Refuses:
    """A base learner that must not be called."""

    def predict(self, X):
        raise AssertionError("the model of another arm was evaluated")

    predict_proba = predict


@pytest.mark.parametrize("cls", [SLearner, TLearner, XLearner, DRLearner], ids=lambda c: c.__name__)
def test_predict_arms_gives_those_columns_of_predict_without_the_other_arms_models(two_arms, cls):
    train, test = two_arms
    model = fast(cls, arms=["email", "discount"]).fit(train.X, train.y, train.treatment)
    every = model.predict(test.X)
    np.testing.assert_array_equal(model.predict_arms(test.X, ["discount"]), every[:, [1]])
    np.testing.assert_array_equal(model.predict_arms(test.X, ["discount", "email"]), every[:, [1, 0]])
    with pytest.raises(ConfigError, match=r"arm 'sms' is not a treatment arm of the model"):
        model.predict_arms(test.X, ["sms"])
    email_models = {TLearner: ["models_"], XLearner: ["control_effect_models_", "treated_effect_models_"],
                    DRLearner: ["effect_models_"], SLearner: []}[cls]
    for name in email_models:  # the email arm's models (after the control's, for the T-learner)
        getattr(model, name)[1 if cls is TLearner else 0] = _Refuses()
    np.testing.assert_array_equal(model.predict_arms(test.X, ["discount"]), every[:, [1]])


def test_predict_arms_of_the_one_arm_class_transformation(one_arm):
    train, test = one_arm
    model = fast(ClassTransformation).fit(train.X, train.y, train.treatment)
    np.testing.assert_array_equal(model.predict_arms(test.X, ["email"])[:, 0], model.predict(test.X))
