"""scikit-learn conformance of every classifier estimator (TabularPreprocessor, TreeClassifier, BoostedClassifier,
CalibratedClassifier, LogisticClassifier, AveragedClassifier): clone, get_params/set_params, Pipeline and GridSearchCV, on data where the right
answer is known by construction (the depth an interaction needs, the encoding a non-monotone effect needs,
the calibration map of a step), plus the fitted check and the tags.

scikit-learn's own `check_estimator` is not run: these estimators take only DataFrames with string column
names (by design: categories and column names are part of the model), which its numpy inputs are not.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError as SklearnNotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils import get_tags
from sklearn.utils.validation import check_is_fitted

from custval.errors import NotFittedError
from custval.models.classifiers import (
    AveragedClassifier,
    BoostedClassifier,
    CalibratedClassifier,
    LogisticClassifier,
    TabularPreprocessor,
    TreeClassifier,
)

CV = StratifiedKFold(3, shuffle=True, random_state=0)


@pytest.fixture(scope="module")
def frame():
    """a, b: levels 0..3 (numbers); noise: normal with 10% NaN; region: text noise."""
    rng = np.random.default_rng(0)
    n = 2000
    a, b = rng.integers(0, 4, n), rng.integers(0, 4, n)
    X = pd.DataFrame({"a": a.astype(float), "b": b.astype(float), "noise": rng.normal(size=n),
                      "region": pd.array(rng.choice(["north", "south"], n), dtype="string")})
    X.loc[rng.random(n) < 0.1, "noise"] = np.nan
    labels = {"and": ((a >= 2) & (b >= 2)).astype(np.int64),  # a depth-2 tree is exact; one split is not
              "xor": ((a >= 2) ^ (b >= 2)).astype(np.int64),  # no sum of stumps ranks it; depth-2 trees do
              "a_is_1": (a == 1).astype(np.int64)}  # not monotone in a: needs a as a category
    return X, labels


class ScoreColumn:
    """A fitted 'classifier' whose probability of class 1 is the column `score` (not a scikit-learn estimator)."""

    def predict_proba(self, X):
        s = X["score"].to_numpy(dtype=float)
        return np.column_stack([1 - s, s])


def step_scores(n: int, seed: int):
    """True P jumps from 0.05 to 0.6 at score 0.5: isotonic fits it, a logistic curve cannot."""
    rng = np.random.default_rng(seed)
    score = rng.uniform(0.01, 0.99, n)
    y = (rng.random(n) < np.where(score < 0.5, 0.05, 0.6)).astype(np.int64)
    return pd.DataFrame({"score": score}), y


def estimators(frame):
    X, labels = frame
    prefit = TreeClassifier(max_depth=2, min_samples_leaf=20).fit(X, labels["and"])
    return {"preprocessor": TabularPreprocessor(), "tree": TreeClassifier(max_depth=3),
            "boosted": BoostedClassifier(n_estimators=20, n_jobs=1), "calibrated": CalibratedClassifier(prefit)}


# ------------------------------------------------------------------------------------ clone and params
@pytest.mark.parametrize("name", ["preprocessor", "tree", "boosted", "calibrated"])
def test_clone_get_params_set_params(frame, name):
    X, labels = frame
    estimator = estimators(frame)[name]
    params = estimator.get_params(deep=False)
    assert estimator.set_params(**params) is estimator and estimator.get_params(deep=False) == params
    fitted = estimator.fit(X, labels["and"])
    check_is_fitted(fitted)
    fresh = clone(fitted)
    assert type(fresh) is type(fitted) and fresh.get_params(deep=False) == params
    with pytest.raises(SklearnNotFittedError):
        check_is_fitted(fresh)
    refit = fresh.fit(X, labels["and"])
    output = "transform" if name == "preprocessor" else "predict_proba"
    result, expected = getattr(refit, output)(X), getattr(fitted, output)(X)
    if name == "preprocessor":
        pd.testing.assert_frame_equal(result, expected)
    else:
        np.testing.assert_array_equal(result, expected)


def test_calibrated_params_reach_into_its_estimator(frame):
    calibrated = estimators(frame)["calibrated"]
    deep = calibrated.get_params(deep=True)
    assert deep["estimator__max_depth"] == 2 and deep["method"] == "auto"
    assert calibrated.set_params(method="sigmoid", estimator__min_samples_leaf=30) is calibrated
    assert calibrated.method == "sigmoid" and calibrated.estimator.min_samples_leaf == 30
    assert clone(calibrated).estimator is calibrated.estimator  # prefit: the fitted estimator is shared


@pytest.mark.parametrize("name", ["preprocessor", "tree", "boosted", "calibrated"])
def test_unfitted_use_is_both_custval_and_sklearn_not_fitted(frame, name):
    X, _ = frame
    estimator = estimators(frame)[name]
    with pytest.raises(SklearnNotFittedError):
        check_is_fitted(estimator)
    with pytest.raises(NotFittedError, match="not fitted yet"):
        estimator.transform(X) if name == "preprocessor" else estimator.predict_proba(X)


def test_tags_declare_missing_values_and_categories(frame):
    built = estimators(frame)
    for name in ("preprocessor", "tree", "boosted", "calibrated"):  # calibrated: its tree's tags
        tags = get_tags(built[name])
        assert tags.input_tags.allow_nan and tags.input_tags.categorical and tags.input_tags.string, name
    for name in ("tree", "boosted", "calibrated"):
        tags = get_tags(built[name])
        assert tags.estimator_type == "classifier" and not tags.classifier_tags.multi_class, name
    assert not get_tags(CalibratedClassifier(ScoreColumn())).input_tags.allow_nan  # unknown estimator: defaults
    assert get_tags(built["preprocessor"]).transformer_tags is not None


# ----------------------------------------------------------------------------------------------- Pipeline
def test_preprocessor_in_a_pipeline_is_the_tree_classifier(frame):
    """TabularPreprocessor + scikit-learn's tree in a Pipeline give TreeClassifier's probabilities exactly."""
    X, labels = frame
    y = labels["and"]
    pipeline = Pipeline([("pre", TabularPreprocessor(encoding="onehot")),
                         ("tree", DecisionTreeClassifier(max_depth=2, min_samples_leaf=20, class_weight="balanced",
                                                         random_state=0))]).fit(X, y)
    tree = TreeClassifier(max_depth=2, min_samples_leaf=20).fit(X, y)
    np.testing.assert_array_equal(pipeline.predict_proba(X), tree.predict_proba(X))
    assert list(pipeline[:-1].get_feature_names_out()) == ["a", "b", "noise", "region=north", "region=south"]


def test_classifiers_as_the_last_step_of_a_pipeline(frame):
    X, labels = frame
    y = labels["and"]
    drop_noise = FunctionTransformer(lambda frame: frame.drop(columns=["noise"]))
    for model in (TreeClassifier(max_depth=2, min_samples_leaf=20), BoostedClassifier(n_estimators=20, n_jobs=1)):
        pipeline = Pipeline([("select", drop_noise), ("model", model)]).fit(X, y)
        alone = clone(model).fit(X.drop(columns=["noise"]), y)
        np.testing.assert_array_equal(pipeline.predict_proba(X), alone.predict_proba(X.drop(columns=["noise"])))
        assert pipeline.score(X, y) == 1.0  # the AND of two thresholds is learnt exactly
    prefit = TreeClassifier(max_depth=1, min_samples_leaf=20).fit(X.drop(columns=["noise"]), y)
    pipeline = Pipeline([("select", drop_noise), ("calibrate", CalibratedClassifier(prefit))]).fit(X, y)
    alone = CalibratedClassifier(prefit).fit(X.drop(columns=["noise"]), y)
    np.testing.assert_array_equal(pipeline.predict_proba(X), alone.predict_proba(X.drop(columns=["noise"])))


# ------------------------------------------------------------------------------------------- GridSearchCV
def test_grid_search_finds_the_depth_of_the_tree(frame):
    X, labels = frame
    search = GridSearchCV(TreeClassifier(min_samples_leaf=20), {"max_depth": [1, 2, 3, 4]}, scoring="roc_auc",
                          cv=CV).fit(X, labels["and"])
    scores = search.cv_results_["mean_test_score"]
    assert search.best_params_ == {"max_depth": 2}  # deeper trees tie at 1.0; the first (smallest) wins
    assert scores[0] < 0.9 and list(scores[1:]) == [1.0, 1.0, 1.0]
    assert search.best_estimator_.tree_model_.get_depth() == 2


def test_grid_search_finds_the_depth_xgboost_needs_for_an_interaction(frame):
    X, labels = frame
    pipeline = Pipeline([("select", FunctionTransformer(lambda frame: frame.drop(columns=["noise"]))),
                         ("model", BoostedClassifier(n_estimators=100, learning_rate=0.3, n_jobs=1))])
    search = GridSearchCV(pipeline, {"model__max_depth": [1, 2, 3]}, scoring="roc_auc", cv=CV).fit(X, labels["xor"])
    scores = search.cv_results_["mean_test_score"]
    assert search.best_params_ == {"model__max_depth": 2}
    assert scores[0] < 0.6 and list(scores[1:]) == [1.0, 1.0]  # stumps cannot rank an XOR


def test_grid_search_over_the_preprocessor_finds_the_categorical_column(frame):
    X, labels = frame
    X = X.drop(columns=["noise"])  # the logistic regression takes no NaN
    pipeline = Pipeline([("pre", TabularPreprocessor()), ("model", LogisticRegression(max_iter=1000))])
    search = GridSearchCV(pipeline, {"pre__categorical": [None, ["a"]]}, scoring="roc_auc", cv=CV).fit(
        X, labels["a_is_1"])
    low, high = search.cv_results_["mean_test_score"]
    assert search.best_params_ == {"pre__categorical": ["a"]}
    assert high == pytest.approx(1.0) and low < 0.7  # a as a number cannot single out a == 1


def test_grid_search_over_the_calibration_method(frame):
    X, y = step_scores(6000, 3)
    search = GridSearchCV(CalibratedClassifier(ScoreColumn()), {"method": ["sigmoid", "isotonic"]},
                          scoring="neg_log_loss", cv=CV).fit(X, y)
    assert search.best_params_ == {"method": "isotonic"}
    assert search.best_estimator_.method_ == "isotonic" and search.best_estimator_.estimator is search.estimator.estimator
    # the method "auto" picks from the same out-of-fold comparison
    assert CalibratedClassifier(ScoreColumn()).fit(X, y).method_ == "isotonic"


# ------------------------------------------------------------------------ logistic regression and average
def _linear_members():
    return [("xgboost", BoostedClassifier(n_estimators=60, max_depth=2, learning_rate=0.3, n_jobs=1)),
            ("logistic", LogisticClassifier())]


@pytest.mark.parametrize("make", [lambda: LogisticClassifier(C=0.5),
                                  lambda: AveragedClassifier(_linear_members(), weights=[1, 2])],
                         ids=["logistic", "averaged"])
def test_logistic_and_averaged_clone_params_fitted_check_and_tags(frame, make):
    X, labels = frame
    estimator = make()
    params = estimator.get_params(deep=False)
    assert estimator.set_params(**params) is estimator and estimator.get_params(deep=False).keys() == params.keys()
    with pytest.raises(SklearnNotFittedError):
        check_is_fitted(estimator)
    with pytest.raises(NotFittedError, match="not fitted yet"):
        estimator.predict_proba(X)
    fitted = estimator.fit(X, labels["and"])
    check_is_fitted(fitted)
    fresh = clone(fitted)
    with pytest.raises(SklearnNotFittedError):
        check_is_fitted(fresh)
    np.testing.assert_array_equal(fresh.fit(X, labels["and"]).predict_proba(X), fitted.predict_proba(X))
    tags = get_tags(estimator)
    assert tags.input_tags.allow_nan and tags.input_tags.categorical and tags.input_tags.string
    assert tags.estimator_type == "classifier" and not tags.classifier_tags.multi_class


def test_logistic_and_averaged_as_the_last_step_of_a_pipeline(frame):
    X, labels = frame
    y = labels["and"]
    drop_noise = FunctionTransformer(lambda frame: frame.drop(columns=["noise"]))
    for model in (LogisticClassifier(), AveragedClassifier(_linear_members())):
        pipeline = Pipeline([("select", drop_noise), ("model", model)]).fit(X, y)
        alone = clone(model).fit(X.drop(columns=["noise"]), y)
        np.testing.assert_array_equal(pipeline.predict_proba(X), alone.predict_proba(X.drop(columns=["noise"])))


def test_grid_search_finds_the_logistic_regression_needs_a_as_a_category(frame):
    X, labels = frame
    search = GridSearchCV(LogisticClassifier(), {"categorical": [None, ["a"]]}, scoring="roc_auc", cv=CV).fit(
        X, labels["a_is_1"])
    low, high = search.cv_results_["mean_test_score"]
    assert search.best_params_ == {"categorical": ["a"]}
    assert high == pytest.approx(1.0) and low < 0.7  # a as a number cannot single out a == 1


def test_grid_search_over_the_weights_of_the_average_finds_the_trees_for_an_and(frame):
    """The AND of two thresholds: the depth-2 trees are exact, a sum of linear effects is not (on the raw
    levels, (2, 2) ties with (3, 1); the log transform would happen to separate them)."""
    X, labels = frame
    members = [_linear_members()[0], ("logistic", LogisticClassifier(transform="none"))]
    search = GridSearchCV(AveragedClassifier(members), {"weights": [[1e-6, 1], [1, 1e-6]]},
                          scoring="roc_auc", cv=CV).fit(X.drop(columns=["noise"]), labels["and"])
    logistic_only, trees_only = search.cv_results_["mean_test_score"]
    assert search.best_params_ == {"weights": [1, 1e-6]}
    assert trees_only == pytest.approx(1.0) and logistic_only < 0.999

# ------------------------------------------------------------------------------------- BoostedRegressor
def test_boosted_regressor_clone_pipeline_and_grid_search(frame):
    """The regressor clones and refits identically, is the last step of a Pipeline, and GridSearchCV finds
    the depth an XOR of two thresholds needs (a sum of stumps explains none of it)."""
    from sklearn.model_selection import KFold

    from custval.models.classifiers import BoostedRegressor

    X, labels = frame
    y = labels["xor"].astype(float)
    model = BoostedRegressor(n_estimators=100, learning_rate=0.3, n_jobs=1)
    fitted = clone(model).fit(X, y)
    np.testing.assert_array_equal(clone(fitted).fit(X, y).predict(X), fitted.predict(X))
    drop_noise = FunctionTransformer(lambda frame: frame.drop(columns=["noise"]))
    pipeline = Pipeline([("select", drop_noise), ("model", model)]).fit(X, y)
    alone = clone(model).fit(X.drop(columns=["noise"]), y)
    np.testing.assert_array_equal(pipeline.predict(X), alone.predict(X.drop(columns=["noise"])))
    search = GridSearchCV(Pipeline([("select", drop_noise), ("model", model)]), {"model__max_depth": [1, 2, 3]},
                          scoring="r2", cv=KFold(3, shuffle=True, random_state=0)).fit(X, y)
    scores = search.cv_results_["mean_test_score"]
    assert search.best_params_["model__max_depth"] >= 2  # depths 2 and 3 both fit it (up to rounding)
    assert scores[0] < 0.05 and min(scores[1:]) > 0.99
