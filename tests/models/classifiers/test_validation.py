"""Bad input to the classifiers gives custval errors naming column, rule and an example; scikit-learn
conventions (init stores only, fit returns self, clone, unfitted use)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from custval.errors import ConfigError, DataError, NotFittedError, SchemaError
from custval.models.classifiers import (
    BoostedClassifier,
    CalibratedClassifier,
    TabularPreprocessor,
    TreeClassifier,
)

MODELS = [lambda **kw: TreeClassifier(min_samples_leaf=5, **kw), lambda **kw: BoostedClassifier(n_estimators=5, **kw)]
IDS = ["tree", "boosted"]


@pytest.fixture
def small(data):
    X, y, _ = data["train"]
    return X.iloc[:300].copy(), y[:300].copy()


@pytest.mark.parametrize("make", MODELS, ids=IDS)
def test_labels_must_be_binary_with_both_classes(make, small):
    X, y = small
    with pytest.raises(DataError) as err:
        make().fit(X, pd.Series(np.where(y == 1, "Yes", "No"), name="Churn"))
    assert err.value.column == "Churn" and "parse_binary_label" in err.value.rule and err.value.example in ("Yes", "No")
    bad = y.astype(float)
    bad[7] = 2.0
    with pytest.raises(DataError, match="must be 0/1") as err:
        make().fit(X, bad)
    assert "2" in str(err.value.example)
    bad[7] = np.nan
    with pytest.raises(DataError, match="must not be missing"):
        make().fit(X, bad)
    with pytest.raises(DataError, match="both classes") as err:
        make().fit(X, np.ones(len(X), dtype=int))
    assert err.value.example == 1
    with pytest.raises(DataError, match="one label per row"):
        make().fit(X, y[:-1])
    # bools and 0.0/1.0 floats are fine and give the same model as ints
    a = make().fit(X, y.astype(bool)).predict_proba(X)
    np.testing.assert_array_equal(a, make().fit(X, y.astype(float)).predict_proba(X))
    np.testing.assert_array_equal(a, make().fit(X, y).predict_proba(X))


@pytest.mark.parametrize("make", MODELS, ids=IDS)
def test_bad_feature_frames(make, small):
    X, y = small
    with pytest.raises(SchemaError, match="DataFrame"):
        make().fit(X.to_numpy(), y)
    with pytest.raises(SchemaError, match="at least one feature"):
        make().fit(X[[]], y)
    with pytest.raises(DataError) as err:
        make().fit(X.assign(income=np.nan), y)
    assert err.value.column == "income" and "every training row" in err.value.rule
    with pytest.raises(DataError, match="signup: .*days"):
        make().fit(X.assign(signup=pd.Timestamp("2024-01-01")), y)
    model = make(handle_unknown="error").fit(X, y)
    with pytest.raises(SchemaError) as err:
        model.predict_proba(X.drop(columns="frequency"))
    assert err.value.column == "frequency" and "missing" in err.value.rule
    new = X.iloc[:3].assign(region=pd.Categorical(["north", "mars", "south"]))
    with pytest.raises(DataError) as err:
        model.predict_proba(new)
    assert (err.value.column, err.value.example) == ("region", "mars")
    assert "category not seen in training" in str(err.value)


def test_forbidden_xgboost_names(small):
    X, y = small
    with pytest.raises(SchemaError, match=r"spend\[30d\]"):
        BoostedClassifier(n_estimators=2).fit(X.rename(columns={"income": "spend[30d]"}), y)


@pytest.mark.parametrize("make", MODELS, ids=IDS)
def test_unfitted_use(make, small):
    X, _ = small
    model = make()
    for call in (lambda: model.predict_proba(X), lambda: model.predict(X), lambda: model.feature_importances_):
        with pytest.raises(NotFittedError):
            call()
    assert not hasattr(model, "classes_")


@pytest.mark.parametrize("params", [
    {"max_depth": 0}, {"min_samples_leaf": 0}, {"min_samples_leaf": 1.5}, {"class_weight": "auto"},
    {"ccp_alpha": -1.0}, {"handle_unknown": "warn"}])
def test_bad_tree_params_raise_config_error_at_fit_only(params, small):
    model = TreeClassifier(**params)  # __init__ only stores
    assert all(model.get_params()[k] == v for k, v in params.items())
    with pytest.raises(ConfigError):
        model.fit(*small)


@pytest.mark.parametrize("params", [
    {"n_estimators": 0}, {"learning_rate": 0}, {"subsample": 1.5}, {"scale_pos_weight": "balanced"},
    {"scale_pos_weight": -1.0}, {"early_stopping_rounds": 0}, {"handle_unknown": "warn"}, {"max_cat_to_onehot": 0},
    {"callbacks": "nope"}])
def test_bad_boosted_params_raise_config_error_at_fit_only(params, small):
    model = BoostedClassifier(**params)
    with pytest.raises(ConfigError):
        model.fit(*small)


def test_eval_set_must_be_a_pair(small):
    X, y = small
    with pytest.raises(ConfigError, match="eval_set"):
        BoostedClassifier(n_estimators=3).fit(X, y, eval_set=X)
    # xgboost's own list-of-one-pair form is accepted
    BoostedClassifier(n_estimators=3).fit(X, y, eval_set=[(X, y)])


@pytest.mark.parametrize("make", MODELS, ids=IDS)
def test_sklearn_conventions(make, small):
    X, y = small
    model = make(handle_unknown="ignore")
    assert model.fit(X, y) is model
    fresh = clone(model)
    assert fresh.get_params() == model.get_params() and not hasattr(fresh, "pipeline_")
    np.testing.assert_array_equal(fresh.fit(X, y).predict_proba(X), model.predict_proba(X))
    assert list(model.classes_) == [0, 1] and model.n_features_in_ == X.shape[1]
    assert list(model.feature_names_in_) == list(X.columns)
    assert model.set_params(random_state=1) is model and model.random_state == 1
    assert 0.5 < model.score(X, y) <= 1.0  # ClassifierMixin accuracy works through predict


@pytest.mark.parametrize("make", MODELS, ids=IDS)
def test_label_series_must_carry_the_features_index(make, small):
    """Labels are matched to rows by position: a shuffled or reindexed Series would silently mislabel rows."""
    X, y = small
    aligned = pd.Series(y, index=X.index, name="churn")
    shuffled = aligned.sample(frac=1.0, random_state=0)
    with pytest.raises(DataError) as err:
        make().fit(X, shuffled)
    assert (err.value.table, err.value.column) == ("labels", "churn")
    assert err.value.rule == "index must match the features' index"
    first = int(np.flatnonzero(shuffled.index != X.index)[0])
    ours, theirs = shuffled.index.tolist()[first], X.index.tolist()[first]
    assert err.value.example == f"label index {ours!r} vs feature index {theirs!r} at row {first}"
    with pytest.raises(DataError, match="index must match"):
        make().fit(X, aligned.reset_index(drop=True))  # default 0..n-1 index vs customer ids
    # aligned Series, a plain array and the aligned values in X's order all fit the same model
    p = make().fit(X, aligned).predict_proba(X)
    np.testing.assert_array_equal(p, make().fit(X, y).predict_proba(X))
    np.testing.assert_array_equal(p, make().fit(X, shuffled.reindex(X.index)).predict_proba(X))


def test_eval_set_and_calibration_labels_must_carry_their_index(small, data):
    X, y = small
    Xv, yv, _ = data["valid"]
    yv_series = pd.Series(yv, index=Xv.index, name="churn")
    with pytest.raises(DataError, match="labels.churn: index must match"):
        BoostedClassifier(n_estimators=5, early_stopping_rounds=2).fit(X, y, eval_set=(Xv, yv_series.iloc[::-1]))
    model = BoostedClassifier(n_estimators=5).fit(X, y)
    with pytest.raises(DataError, match="labels.churn: index must match"):
        CalibratedClassifier(model).fit(Xv, yv_series.sample(frac=1.0, random_state=1))
    CalibratedClassifier(model).fit(Xv, yv_series)  # aligned: fine


# ------------------------------------------------------------------------------------- public param checks
@pytest.mark.parametrize("estimator", [TreeClassifier(), BoostedClassifier(), TabularPreprocessor(),
                                       CalibratedClassifier(), CalibratedClassifier(method="isotonic", cv=3)],
                         ids=["tree", "boosted", "preprocessor", "calibrated", "calibrated-isotonic"])
def test_check_params_accepts_the_defaults_and_returns_the_estimator(estimator):
    assert estimator.check_params() is estimator


@pytest.mark.parametrize(("estimator", "message"), [
    (BoostedClassifier(subsample=1.5), "subsample must be in (0, 1], got 1.5"),
    (BoostedClassifier(subsample=np.float64(1.5)), "subsample must be in (0, 1], got 1.5"),
    (BoostedClassifier(colsample_bytree=0), "colsample_bytree must be in (0, 1], got 0"),
    (BoostedClassifier(learning_rate=np.float32(-0.5)), "learning_rate must be a finite number > 0, got -0.5"),
    (BoostedClassifier(n_estimators=np.int64(0)), "n_estimators must be an integer >= 1, got 0"),
    (BoostedClassifier(max_depth=2.0), "max_depth must be an integer >= 1, got 2.0"),
    (BoostedClassifier(random_state=-1), "random_state must be an integer in [0, 2**32), a numpy RandomState or "
                                         "None, got -1"),
    (BoostedClassifier(handle_unknown="warn"), "handle_unknown must be one of ['error', 'ignore'], got 'warn'"),
    (BoostedClassifier(categorical=3), "categorical must be None, a column name or a list of column names, got 3"),
    (BoostedClassifier(eval_metric=["auc"]), "eval_metric must be one XGBoost metric of a binary classifier (logloss, error, error@<t>, auc, aucpr, map, ndcg, pre, with @<n> for the last three), got ['auc']"),
    (TreeClassifier(min_samples_leaf=1.5), "min_samples_leaf must be an integer >= 1 or a fraction in (0, 1), "
                                           "got 1.5"),
    (TreeClassifier(min_samples_leaf=np.int64(0)), "min_samples_leaf must be an integer >= 1 or a fraction in "
                                                   "(0, 1), got 0"),
    (TreeClassifier(class_weight={0: 1.0, 1: np.float64(-2.0)}),
     "class_weight must be 'balanced', None or a dict {0: w0, 1: w1} of positive weights, got {0: 1.0, 1: -2.0}"),
    (TreeClassifier(ccp_alpha=-1), "ccp_alpha must be a finite number >= 0, got -1"),
    (TreeClassifier(random_state=1.5), "random_state must be an integer in [0, 2**32), a numpy RandomState or "
                                       "None, got 1.5"),
    (TreeClassifier(handle_unknown="warn"), "handle_unknown must be one of ['error', 'ignore'], got 'warn'"),
    (TabularPreprocessor(encoding="ordinal"), "encoding must be one of ['onehot', 'category'], got 'ordinal'"),
    (TabularPreprocessor(categorical=["a", 1]), "categorical must be None, a column name or a list of column "
                                                "names, got ['a', 1]"),
    (CalibratedClassifier(method="beta"), "method must be one of ['auto', 'isotonic', 'sigmoid'], got 'beta'"),
    (CalibratedClassifier(cv=np.int64(1)), "cv must be an integer >= 2, got 1"),
])
def test_check_params_messages_start_with_the_parameter_and_show_plain_numbers(estimator, message):
    with pytest.raises(ConfigError) as err:
        estimator.check_params()
    assert str(err.value) == message


def test_fit_runs_check_params_before_looking_at_the_data():
    with pytest.raises(ConfigError, match="^subsample"):
        BoostedClassifier(subsample=2).fit("not a frame", None)
    with pytest.raises(ConfigError, match="^encoding"):
        TabularPreprocessor(encoding="x").fit("not a frame")
    with pytest.raises(ConfigError, match="^estimator must be a fitted classifier"):
        CalibratedClassifier().fit("not a frame", None)
