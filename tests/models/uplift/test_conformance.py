"""scikit-learn conformance of the uplift learners (SLearner, TLearner, XLearner, DRLearner,
ClassTransformation, AveragedUplift): clone, get_params/set_params (reaching into the base learners), the fitted check and
the tags; a Pipeline with the treatment passed as `<step>__treatment` or by metadata routing; GridSearchCV
with a Qini scorer (scikit-uplift's qini_auc_score), which picks the learner that sees the effect over one
that cannot.

The treatment reaches the learner's fit in two ways, both tested:
- without metadata routing: `Pipeline.fit(X, y, model__treatment=t)`; `GridSearchCV.fit(X, y, treatment=t)`
  (the search slices it per fold), with a scorer that looks the test rows' treatment up by X's index;
- with `sklearn.config_context(enable_metadata_routing=True)`: `fit(X, y, treatment=t)` on a Pipeline or a
  GridSearchCV (the learners request `treatment` for fit by default), and a scorer made with
  `make_scorer(qini).set_score_request(treatment=True)`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.base import clone
from sklearn.dummy import DummyClassifier
from sklearn.exceptions import NotFittedError as SklearnNotFittedError
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import make_scorer
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils import get_tags
from sklearn.utils.validation import check_is_fitted
from sklift.metrics import qini_auc_score

from custval.errors import NotFittedError
from custval.models.classifiers import BoostedClassifier, BoostedRegressor
from custval.models.uplift import AveragedUplift, ClassTransformation, DRLearner, SLearner, TLearner, XLearner

pytestmark = pytest.mark.filterwarnings("ignore:Function stable_cumsum is deprecated:FutureWarning")

CLASSIFIER = BoostedClassifier(n_estimators=40, learning_rate=0.2, max_depth=3, scale_pos_weight=None, n_jobs=1)
REGRESSOR = BoostedRegressor(n_estimators=40, learning_rate=0.2, max_depth=3, n_jobs=1)
CV = StratifiedKFold(3, shuffle=True, random_state=0)


def learners():
    return {"s": SLearner(CLASSIFIER, control="control"), "t": TLearner(CLASSIFIER, control="control"),
            "x": XLearner(CLASSIFIER, REGRESSOR, control="control"),
            "dr": DRLearner(CLASSIFIER, REGRESSOR, n_folds=2, control="control"),
            "ct": ClassTransformation(CLASSIFIER, control="control"),
            "average": AveragedUplift([SLearner(CLASSIFIER), TLearner(CLASSIFIER)], control="control")}


@pytest.fixture(scope="module")
def data(campaign):
    sample = campaign(1500, 31)
    return sample.X, sample.y, pd.Series(sample.treatment, index=sample.X.index, name="arm")


def qini(y_true, uplift, treatment):
    return qini_auc_score(y_true, uplift, (np.asarray(treatment) != "control").astype(int))


# ------------------------------------------------------------------------------------ clone and params
@pytest.mark.parametrize("name", list(learners()))
def test_clone_get_params_set_params_and_refit(data, name):
    X, y, arm = data
    model = learners()[name]
    params = model.get_params(deep=False)
    assert model.set_params(**params) is model and model.get_params(deep=False) == params
    fitted = model.fit(X, y, arm)
    check_is_fitted(fitted)
    fresh = clone(fitted)
    assert type(fresh) is type(fitted) and fresh.get_params(deep=False).keys() == params.keys()
    with pytest.raises(SklearnNotFittedError):
        check_is_fitted(fresh)
    np.testing.assert_array_equal(fresh.fit(X, y, arm).predict(X), fitted.predict(X))


def test_params_reach_into_the_base_learners():
    model = XLearner(clone(CLASSIFIER), clone(REGRESSOR))
    deep = model.get_params(deep=True)
    assert deep["outcome_learner__max_depth"] == 3 and deep["effect_learner__n_estimators"] == 40
    model.set_params(outcome_learner__max_depth=2, effect_learner__learning_rate=0.1)
    assert model.outcome_learner.max_depth == 2 and model.effect_learner.learning_rate == 0.1
    assert clone(model).outcome_learner.max_depth == 2 and clone(model).outcome_learner is not model.outcome_learner


@pytest.mark.parametrize("name", list(learners()))
def test_unfitted_use_is_both_custval_and_sklearn_not_fitted(data, name):
    X, _, _ = data
    with pytest.raises(NotFittedError, match="not fitted yet"):
        learners()[name].predict(X)


def test_average_params_reach_into_the_members():
    model = AveragedUplift([TLearner(clone(CLASSIFIER)), SLearner(clone(CLASSIFIER))])
    assert clone(model).learners[0].learner.max_depth == 3 and clone(model).learners[0] is not model.learners[0]
    assert not get_tags(AveragedUplift([TLearner(), TLearner(LogisticRegression())])).input_tags.allow_nan
    assert get_tags(AveragedUplift()).input_tags.allow_nan


def test_tags_follow_the_base_learners():
    assert get_tags(TLearner()).input_tags.allow_nan and get_tags(TLearner()).input_tags.string
    assert not get_tags(TLearner(LogisticRegression())).input_tags.allow_nan
    assert not get_tags(XLearner(CLASSIFIER, LinearRegression())).input_tags.allow_nan


# ----------------------------------------------------------------------------------------------- Pipeline
def drop_noise():
    return FunctionTransformer(lambda frame: frame.drop(columns=["noise"]))


@pytest.mark.parametrize("name", list(learners()))
def test_a_learner_as_the_last_step_of_a_pipeline(data, name):
    X, y, arm = data
    alone = clone(learners()[name]).fit(X.drop(columns=["noise"]), y, arm).predict(X.drop(columns=["noise"]))
    pipeline = Pipeline([("select", drop_noise()), ("model", learners()[name])])
    np.testing.assert_array_equal(pipeline.fit(X, y, model__treatment=arm).predict(X), alone)
    with sklearn.config_context(enable_metadata_routing=True):
        routed = Pipeline([("select", drop_noise()), ("model", learners()[name])]).fit(X, y, treatment=arm)
        np.testing.assert_array_equal(routed.predict(X), alone)


# ------------------------------------------------------------------------------------------- GridSearchCV
def test_grid_search_on_qini_picks_the_learner_that_sees_the_effect(data):
    """A constant (prior) base learner gives every customer the same uplift, so its Qini is 0; XGBoost
    finds the customers whom the e-mail moves (x2 > 0) and the sleeping dogs (x2 < 0)."""
    X, y, arm = data

    def qini_by_index(estimator, X_test, y_test):
        return qini(y_test, estimator.predict(X_test), arm.loc[X_test.index])

    grid = {"learner": [DummyClassifier(strategy="prior"), CLASSIFIER]}
    search = GridSearchCV(TLearner(control="control"), grid, scoring=qini_by_index, cv=CV).fit(X, y, treatment=arm)
    low, high = search.cv_results_["mean_test_score"]
    assert search.best_params_["learner"] is CLASSIFIER
    assert low == pytest.approx(0.0, abs=1e-12) and high > 0.1
    assert search.best_estimator_.models_[0] is not CLASSIFIER
    with sklearn.config_context(enable_metadata_routing=True):
        scorer = make_scorer(qini).set_score_request(treatment=True)
        routed = GridSearchCV(TLearner(control="control"), grid, scoring=scorer, cv=CV).fit(X, y, treatment=arm)
        np.testing.assert_allclose(routed.cv_results_["mean_test_score"], [low, high])


def test_grid_search_over_a_pipeline_and_the_base_learners_depth(data):
    """The e-mail's effect depends on x2 alone and the baseline on x1 and plan: a DR-learner's effect model
    of depth 1 already holds it, and the search compares depths through the Pipeline's step parameters."""
    X, y, arm = data

    def qini_by_index(estimator, X_test, y_test):
        return qini(y_test, estimator.predict(X_test), arm.loc[X_test.index])

    pipeline = Pipeline([("select", drop_noise()),
                         ("model", DRLearner(CLASSIFIER, REGRESSOR, n_folds=2, control="control"))])
    search = GridSearchCV(pipeline, {"model__effect_learner__max_depth": [1, 2]}, scoring=qini_by_index,
                          cv=CV).fit(X, y, model__treatment=arm)
    assert set(search.best_params_) == {"model__effect_learner__max_depth"}
    assert min(search.cv_results_["mean_test_score"]) > 0.1
    assert search.best_estimator_[-1].effect_models_[0].max_depth == search.best_params_[
        "model__effect_learner__max_depth"]
