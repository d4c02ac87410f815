"""shared_inputs: one frame prepared once for several models gives exactly the numbers of preparing it for
each model alone, never another frame's, and keeps the checks and warnings of every model."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from custval.errors import CustvalWarning, DataError
from custval.models.classifiers import (
    AveragedClassifier,
    BoostedClassifier,
    LogisticClassifier,
    shared_inputs,
    shared_value,
)
from custval.models.classifiers.logistic import signed_log

from .conftest import make_customers


@pytest.fixture(scope="module")
def models():
    """Two averages over different column sets (as propensity's outputs leave out their own column)."""
    X, y, _ = make_customers(3000, 11)
    members = [("xgb", BoostedClassifier(n_estimators=40, early_stopping_rounds=None)),
               ("logistic", LogisticClassifier())]
    full = AveragedClassifier(members).fit(X, y)
    fewer = AveragedClassifier(members).fit(X.drop(columns=["income"]), y)
    return full, fewer


@pytest.fixture(scope="module")
def frame():
    X, _, _ = make_customers(2000, 12)
    return X


def _scores(models, X):
    full, fewer = models
    return [full.predict_proba(X), fewer.predict_proba(X), full.contributions(X).to_numpy(),
            fewer.predict_margin(X), fewer.explain(X)]


def _assert_same(a, b):
    if isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    else:
        np.testing.assert_array_equal(a, b)


def test_scores_inside_the_block_are_bitwise_those_outside(models, frame):
    alone = _scores(models, frame)
    with shared_inputs(frame):
        shared = _scores(models, frame)
        again = _scores(models, frame)  # from the shared values
    for a, b, c in zip(alone, shared, again, strict=True):
        _assert_same(a, b)
        _assert_same(a, c)


def test_a_different_frame_is_never_given_the_shared_values(models, frame):
    other = frame.copy()  # equal now, changed below: not the same object
    other["recency_days"] = other["recency_days"] * 3.0 + 10.0
    other["plan"] = pd.array(["pro"] * len(other), dtype="string")
    expected = _scores(models, other)
    with shared_inputs(frame):
        _scores(models, frame)
        got = _scores(models, other)
    for a, b in zip(expected, got, strict=True):
        _assert_same(a, b)
    assert not np.array_equal(expected[0], _scores(models, frame)[0])


def test_shared_values_are_computed_once_read_only_and_only_inside_the_block(frame):
    calls = []

    def compute():
        calls.append(1)
        return np.arange(3.0)

    with shared_inputs(frame):
        first = shared_value(frame, ("k",), compute)
        second = shared_value(frame, ("k",), compute)
        shared_value(frame.copy(), ("k",), compute)  # another frame: computed, not shared
    assert first is second and len(calls) == 2
    assert not first.flags.writeable
    with pytest.raises(ValueError):
        first[0] = 1.0
    outside = shared_value(frame, ("k",), compute)
    assert len(calls) == 3 and outside.flags.writeable


def test_every_model_still_warns_of_an_unseen_category(models, frame):
    unseen = frame.copy()
    unseen["plan"] = pd.array(["platinum"] + ["basic"] * (len(unseen) - 1), dtype="string")
    full, fewer = models
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with shared_inputs(unseen):
            full.predict_proba(unseen)
            fewer.predict_proba(unseen)
    messages = [str(w.message) for w in caught if issubclass(w.category, CustvalWarning)]
    # one per member preprocessor of each model: 2 x 2, each naming the column and the value
    assert len(messages) == 4 and all("features.plan" in m and "platinum" in m for m in messages)


def test_an_infinite_value_raises_naming_its_column_inside_the_block(models, frame):
    bad = frame.copy()
    bad.iloc[5, bad.columns.get_loc("income")] = np.inf
    full, fewer = models
    with shared_inputs(bad):
        with pytest.raises(DataError, match="income"):
            full.predict_proba(bad)
        fewer.predict_proba(bad)  # trained without income: not read, so no error


def test_numeric_values_with_an_elementwise_function_is_that_function_of_the_values(models, frame):
    preprocessor = models[0].estimators_[1].preprocessor_
    expected = signed_log(preprocessor.numeric_values(frame))
    np.testing.assert_array_equal(preprocessor.numeric_values(frame, signed_log), expected)
    with shared_inputs(frame):
        np.testing.assert_array_equal(preprocessor.numeric_values(frame, signed_log), expected)


def test_logistic_design_is_the_standardised_raw_design(models, frame):
    """Oracle: the one-hot frame of the preprocessor, signed log, median imputation and missing indicators,
    then (value - mean) / scale, written out here column by column."""
    logistic = models[0].estimators_[1]
    onehot = logistic.preprocessor_.transform(frame)
    columns = {}
    for name in logistic.design_names_:
        if name in onehot.columns and name not in logistic.preprocessor_.numeric_columns_:
            columns[name] = onehot[name].to_numpy(dtype=float)
    numeric = logistic.preprocessor_.numeric_columns_
    values = signed_log(frame[numeric].to_numpy(dtype=float, na_value=np.nan))
    filled = np.where(np.isnan(values), logistic.medians_, values)
    for j, name in enumerate(numeric):
        columns[name] = filled[:, j]
    for name in logistic.indicators_:
        columns[f"{name}=<missing>"] = np.isnan(values[:, numeric.index(name)]).astype(float)
    raw = np.column_stack([columns[name] for name in logistic.design_names_])
    np.testing.assert_array_equal(logistic.standardised(frame).to_numpy(), (raw - logistic.means_) / logistic.scales_)


def test_boosted_contributions_equal_those_of_the_frame_of_categoricals(models, frame):
    boosted = models[0].estimators_[0]
    oracle = xgb.DMatrix(boosted.preprocessor_.transform(frame), enable_categorical=True)
    for approximate in (False, True):
        expected = boosted.booster_.predict(oracle, pred_contribs=True, approx_contribs=approximate,
                                            iteration_range=(0, boosted.n_iterations_))
        np.testing.assert_array_equal(boosted.contributions(frame, approximate=approximate).to_numpy(),
                                      expected.astype(np.float64))
