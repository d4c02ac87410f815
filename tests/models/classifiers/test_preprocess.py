"""TabularPreprocessor: column kinds, fitted categories, both encodings, missing and unseen values, errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from custval.errors import ConfigError, CustvalWarning, DataError, NotFittedError, SchemaError
from custval.models.classifiers import TabularPreprocessor


def small_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "age": [30.0, np.nan, 45.0, 50.0],
        "plan": pd.array(["pro", "basic", None, "basic"], dtype="string"),
        "member": [True, False, True, True],
        "region": pd.Categorical(["b", "a", "b", None]),
        "note": np.array(["x", 1, "x", "y"], dtype=object),
        "store": [3, 1, 3, 2],
    }, index=[10, 11, 12, 13])


def test_fit_learns_kinds_and_sorted_categories():
    pre = TabularPreprocessor(categorical=["store"]).fit(small_frame())
    assert pre.numeric_columns_ == ["age"]
    assert pre.categorical_columns_ == ["plan", "member", "region", "note", "store"]
    assert pre.categories_ == {"plan": ["basic", "pro"], "member": ["False", "True"], "region": ["a", "b"],
                               "note": ["1", "x", "y"], "store": ["1", "2", "3"]}
    assert pre.has_missing_ == {"plan": True, "member": False, "region": True, "note": False, "store": False}
    assert list(pre.feature_names_in_) == list(small_frame().columns)
    # without `categorical`, an integer column is numeric
    assert "store" in TabularPreprocessor().fit(small_frame()).numeric_columns_


def test_onehot_output_hand_worked():
    frame = small_frame()
    out = TabularPreprocessor().fit(frame).transform(frame)
    assert list(out.columns) == ["age", "plan=basic", "plan=pro", "plan=<missing>", "member=False", "member=True",
                                 "region=a", "region=b", "region=<missing>", "note=1", "note=x", "note=y", "store"]
    assert (out.dtypes == np.float64).all()
    assert out.index.equals(frame.index)
    np.testing.assert_array_equal(out["age"], [30.0, np.nan, 45.0, 50.0])  # NaN kept
    np.testing.assert_array_equal(out["plan=basic"], [0, 1, 0, 1])
    np.testing.assert_array_equal(out["plan=pro"], [1, 0, 0, 0])
    np.testing.assert_array_equal(out["plan=<missing>"], [0, 0, 1, 0])
    np.testing.assert_array_equal(out["member=True"], [1, 0, 1, 1])
    np.testing.assert_array_equal(out["region=<missing>"], [0, 0, 0, 1])
    np.testing.assert_array_equal(out["note=1"], [0, 1, 0, 0])


def test_category_output_keeps_fitted_categories_and_missing():
    frame = small_frame()
    pre = TabularPreprocessor(encoding="category").fit(frame)
    new = frame.iloc[[3, 2]].copy()
    new["plan"] = pd.array(["pro", None], dtype="string")  # the second fitted category only
    out = pre.transform(new)
    assert list(out.columns) == list(frame.columns)
    assert isinstance(out["plan"].dtype, pd.CategoricalDtype)
    assert list(out["plan"].cat.categories) == ["basic", "pro"]  # fitted, not the ones present now
    assert out["plan"].iloc[0] == "pro" and pd.isna(out["plan"].iloc[1])
    assert out["age"].dtype == np.float64


def test_unseen_category_error_and_ignore():
    frame = small_frame()
    new = frame.copy()
    new["plan"] = pd.array(["pro", "platinum", "basic", None], dtype="string")
    with pytest.raises(DataError) as err:
        TabularPreprocessor().fit(frame).transform(new)
    assert (err.value.table, err.value.column, err.value.example) == ("features", "plan", "platinum")
    assert "category not seen in training" in str(err.value)
    for encoding in ("onehot", "category"):
        pre = TabularPreprocessor(encoding=encoding, handle_unknown="ignore").fit(frame)
        as_missing = new.copy()
        as_missing["plan"] = pd.array(["pro", None, "basic", None], dtype="string")
        pd.testing.assert_frame_equal(pre.transform(new), pre.transform(as_missing))


def test_missing_column_and_wrong_type_at_transform():
    frame = small_frame()
    pre = TabularPreprocessor().fit(frame)
    with pytest.raises(SchemaError) as err:
        pre.transform(frame.drop(columns="member"))
    assert err.value.column == "member" and "missing" in err.value.rule
    text_age = frame.assign(age=pd.array(["30", None, "45", "50"], dtype="string"))
    with pytest.raises(SchemaError, match="age: must be numeric"):
        pre.transform(text_age)
    # extra columns are ignored, column order does not matter
    shuffled = frame[frame.columns[::-1]].assign(extra=1.0)
    pd.testing.assert_frame_equal(pre.transform(shuffled), pre.transform(frame))


@pytest.mark.parametrize("column", ["age", "plan"])
def test_all_missing_feature_at_fit(column):
    frame = small_frame()
    frame[column] = pd.array([None] * 4, dtype="string") if column == "plan" else np.nan
    with pytest.raises(DataError) as err:
        TabularPreprocessor().fit(frame)
    assert err.value.column == column and "every training row" in err.value.rule


def test_datetime_infinite_and_other_bad_inputs():
    frame = small_frame()
    with pytest.raises(DataError, match="signup: .*days"):
        TabularPreprocessor().fit(frame.assign(signup=pd.Timestamp("2024-01-01")))
    with pytest.raises(DataError, match="age: must be finite"):
        TabularPreprocessor().fit(frame.assign(age=[1.0, np.inf, 2.0, 3.0]))
    pre = TabularPreprocessor().fit(frame)
    with pytest.raises(DataError, match="age: must be finite"):
        pre.transform(frame.assign(age=[1.0, -np.inf, 2.0, 3.0]))
    with pytest.raises(SchemaError, match="DataFrame"):
        TabularPreprocessor().fit(frame.to_numpy())
    with pytest.raises(SchemaError, match="at least one feature"):
        TabularPreprocessor().fit(frame[[]])
    with pytest.raises(SchemaError, match="not a column"):
        TabularPreprocessor(categorical=["nope"]).fit(frame)
    with pytest.raises(ConfigError, match="encoding"):
        TabularPreprocessor(encoding="ordinal").fit(frame)
    with pytest.raises(ConfigError, match="handle_unknown"):
        TabularPreprocessor(handle_unknown="warn").fit(frame)
    with pytest.raises(NotFittedError):
        TabularPreprocessor().transform(frame)


def test_state_round_trip_through_json_and_clone():
    frame = small_frame()
    for encoding in ("onehot", "category"):
        pre = TabularPreprocessor(encoding=encoding, categorical=["store"]).fit(frame)
        again = TabularPreprocessor.from_state(json.loads(json.dumps(pre.to_state())))
        pd.testing.assert_frame_equal(again.transform(frame), pre.transform(frame))
        assert list(again.get_feature_names_out()) == list(pre.get_feature_names_out())
        fresh = clone(pre)
        assert fresh.get_params() == pre.get_params() and not hasattr(fresh, "categories_")


def test_identifier_like_column_warns():
    frame = pd.DataFrame({"customerID": [f"c{i:04d}" for i in range(200)], "x": np.arange(200.0)})
    with pytest.warns(CustvalWarning, match="customerID: .*identifier"):
        TabularPreprocessor().fit(frame)
