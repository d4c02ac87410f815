"""TabularPreprocessor: column kinds, fitted categories, both encodings, missing and unseen values, errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from custval.errors import ConfigError, CustvalWarning, DataError, ModelError, NotFittedError, SchemaError
from custval.models.classifiers import BoostedClassifier, TabularPreprocessor, TreeClassifier


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
        TabularPreprocessor(handle_unknown="error").fit(frame).transform(new)
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


# -- category keys: numbers normalised, so dtype drift between training and scoring changes nothing ---------------

def float_with_nan_frame() -> pd.DataFrame:
    """`senior` is float only because of the NaN (a 0/1/2 flag); `x` is noise."""
    return pd.DataFrame({"senior": [0.0, 1.0, np.nan, 2.0, 1.0, 0.0], "x": np.arange(6.0)})


@pytest.mark.parametrize("handle_unknown", ["error", "ignore"])
@pytest.mark.parametrize("encoding", ["onehot", "category"])
def test_forced_numeric_category_scored_as_int_matches_float_training(encoding, handle_unknown):
    frame = float_with_nan_frame()
    pre = TabularPreprocessor(categorical=["senior"], encoding=encoding, handle_unknown=handle_unknown).fit(frame)
    assert pre.categories_["senior"] == ["0", "1", "2"]  # not "0.0", "1.0", "2.0"
    scored_float = frame.drop(index=2)
    expected = pre.transform(scored_float)
    for as_int in (scored_float.astype({"senior": "int64"}), scored_float.astype({"senior": "Int64"}),
                   scored_float.astype({"senior": "int8"}), scored_float.astype({"senior": object}).assign(
                       senior=pd.Series([0, 1, 2, 1, 0], index=scored_float.index, dtype=object))):
        pd.testing.assert_frame_equal(pre.transform(as_int), expected)
    # hand-worked codes: 0 -> 0, 1 -> 1, 2 -> 2 whatever the dtype
    codes = pre.category_codes(scored_float.astype({"senior": "int64"}))["senior"]
    np.testing.assert_array_equal(codes, [0, 1, 2, 1, 0])
    # a genuinely unseen number is still unseen (error) or missing (ignore)
    unseen = scored_float.astype({"senior": "int64"}).assign(senior=[0, 1, 3, 1, 0])
    if handle_unknown == "error":
        with pytest.raises(DataError) as err:
            pre.transform(unseen)
        assert (err.value.column, err.value.example) == ("senior", "3")
    else:
        np.testing.assert_array_equal(pre.category_codes(unseen)["senior"], [0, 1, -1, 1, 0])


def test_non_whole_numbers_and_int_training_keys():
    frame = pd.DataFrame({"rate": [0.5, 1.0, 2.25, np.nan], "n": [3, 10, 3, 2]})
    pre = TabularPreprocessor(categorical=["rate", "n"]).fit(frame)
    # sorted as text: "0.5" < "1" < "2.25"; ints "10" < "2" < "3"
    assert pre.categories_ == {"rate": ["0.5", "1", "2.25"], "n": ["10", "2", "3"]}
    # an int column scored as float (e.g. after a merge introduced NaN) keys the same
    scored = frame.astype({"n": "float64"})
    scored.loc[3, "n"] = np.nan
    np.testing.assert_array_equal(pre.category_codes(scored)["n"], [2, 0, 2, -1])
    np.testing.assert_array_equal(pre.category_codes(frame)["rate"], [0, 1, 2, -1])


@pytest.mark.parametrize("make", ["boosted", "tree"])
def test_models_give_identical_probabilities_for_float_and_int_scoring(make):
    """The reviewer's case: with handle_unknown="ignore", int64 scoring used to be treated as missing."""
    rng = np.random.default_rng(0)
    n = 600
    X = pd.DataFrame({"s": rng.integers(0, 3, n).astype(float), "x": rng.normal(size=n)})
    X.loc[[0, 5], "s"] = np.nan
    y = (X["s"].fillna(0) + rng.normal(size=n) > 1.5).astype(int)
    model = (BoostedClassifier(n_estimators=30) if make == "boosted" else TreeClassifier(min_samples_leaf=20))
    model.set_params(categorical=["s"], handle_unknown="ignore").fit(X, y)
    rows = X.dropna()
    p_float = model.predict_proba(rows)[:, 1]
    np.testing.assert_array_equal(model.predict_proba(rows.astype({"s": "int64"}))[:, 1], p_float)
    # and the model really uses `s`: scoring all rows as missing changes the probabilities
    assert not np.array_equal(model.predict_proba(rows.assign(s=np.nan))[:, 1], p_float)


# -- one-hot name clashes ------------------------------------------------------------------------------------

def test_onehot_name_clash_is_refused_at_fit():
    frame = pd.DataFrame({"a": pd.array(["b", "c", "b"], dtype="string"), "a=b": [1.0, 2.0, 3.0]})
    with pytest.raises(SchemaError) as err:
        TabularPreprocessor().fit(frame)
    assert (err.value.table, err.value.column, err.value.example) == ("features", "a", "a=b")
    assert "one-hot name clashes with another column" in err.value.rule
    # two categorical columns: "a" with level "b=c" and "a=b" with level "c" both give "a=b=c"
    both = pd.DataFrame({"a": pd.array(["b=c", "x"], dtype="string"), "a=b": pd.array(["c", "d"], dtype="string")})
    with pytest.raises(SchemaError, match="clashes") as err:
        TabularPreprocessor().fit(both)
    assert err.value.example == "a=b=c"
    # the "category" encoding keeps the input names: no clash there
    assert list(TabularPreprocessor(encoding="category").fit(frame).get_feature_names_out()) == ["a", "a=b"]


# -- dtype kinds checked at transform ----------------------------------------------------------------------------

def test_kinds_learned_from_training_dtypes():
    pre = TabularPreprocessor(categorical=["store"]).fit(small_frame())
    assert pre.kinds_ == {"plan": "text", "member": "bool", "region": "text", "note": "any", "store": "number"}
    assert pre.dtypes_["age"] == "float64" and pre.dtypes_["member"] == "bool"


def test_categorical_column_with_another_kind_of_values_is_refused():
    frame = small_frame()
    pre = TabularPreprocessor(categorical=["store"], handle_unknown="ignore").fit(frame)
    cases = {"member": [1, 0, 1, 1],  # bool trained, 0/1 ints now: would all be "unseen" -> missing
             "plan": [1.0, 2.0, 3.0, 4.0],  # text trained, numbers now
             "store": pd.array(["3", "1", "3", "2"], dtype="string")}  # number trained, text now
    for column, values in cases.items():
        with pytest.raises(SchemaError) as err:
            pre.transform(frame.assign(**{column: values}))
        assert err.value.column == column and "as in training" in err.value.rule, err.value
        assert str(frame[column].dtype) in str(err.value.example)
    # allowed: JSON-like object columns, an all-missing column of any dtype, a category dtype of the same kind,
    # nullable "boolean" for bool
    ok = frame.assign(member=pd.array([True, False, None, True], dtype="boolean"),
                      plan=np.nan, region=frame["region"].astype("string"),
                      store=pd.Series([3, 1, None, 2], index=frame.index, dtype=object))
    out = pre.transform(ok)
    np.testing.assert_array_equal(out["plan=<missing>"], [1, 1, 1, 1])
    np.testing.assert_array_equal(out["store=3"], [1, 0, 0, 0])
    np.testing.assert_array_equal(out["member=True"], [1, 0, 0, 1])


# -- persistence of the new state and of states saved before it ----------------------------------------------

def test_new_state_fields_survive_json():
    frame = small_frame()
    pre = TabularPreprocessor(categorical=["store"]).fit(frame)
    again = TabularPreprocessor.from_state(json.loads(json.dumps(pre.to_state())))
    assert (again.kinds_, again.numeric_missing_, again.key_version_) == (pre.kinds_, ["age"], 2)


def test_legacy_state_with_text_form_keys_still_loads_and_matches():
    """A state as written before key version 2 (no kinds / numeric_missing / key_version; a float column's
    categories in their text form "0.0"): loads, scores float rows as before and int rows the same."""
    legacy = {"params": {"categorical": ["senior"], "encoding": "onehot", "handle_unknown": "error"},
              "columns": ["senior", "x", "plan"], "numeric": ["x"], "categorical": ["senior", "plan"],
              "categories": {"senior": ["0.0", "1.0"], "plan": ["a", "b"]},
              "has_missing": {"senior": True, "plan": False},
              "dtypes": {"senior": "float64", "x": "float64", "plan": "str"}}
    pre = TabularPreprocessor.from_state(json.loads(json.dumps(legacy)))
    assert pre.key_version_ == 1 and pre.numeric_missing_ is None
    assert pre.kinds_ == {"senior": "number", "plan": "text"}
    assert list(pre.get_feature_names_out()) == ["senior=0.0", "senior=1.0", "senior=<missing>", "x",
                                                 "plan=a", "plan=b"]
    rows = pd.DataFrame({"senior": [1.0, 0.0, np.nan], "x": [0.5, 1.5, 2.5],
                         "plan": pd.array(["b", "a", "a"], dtype="string")})
    out = pre.transform(rows)
    np.testing.assert_array_equal(out["senior=1.0"], [1, 0, 0])
    np.testing.assert_array_equal(out["senior=<missing>"], [0, 0, 1])
    as_int = rows.iloc[:2].astype({"senior": "int64"})
    pd.testing.assert_frame_equal(pre.transform(as_int), out.iloc[:2])
    with pytest.raises(ModelError, match="key version 3"):
        TabularPreprocessor.from_state(legacy | {"key_version": 3})


def test_matrix_holds_values_and_codes_hand_worked():
    frame = small_frame()
    pre = TabularPreprocessor(encoding="category", categorical=["store"]).fit(frame)
    new = frame.copy()
    new["note"] = np.array(["y", "z", None, 1], dtype=object)  # "z": unseen -> missing (with a warning)
    with pytest.warns(CustvalWarning, match="note"):
        matrix = pre.matrix(new)
    assert matrix.dtype == np.float32 and matrix.shape == (4, 6) and matrix.flags.c_contiguous
    nan = np.nan
    # age, plan [basic, pro], member [False, True], region [a, b], note [1, x, y], store [1, 2, 3]
    expected = [[30.0, 1, 1, 1, 2, 2], [nan, 0, 0, 0, nan, 0], [45.0, nan, 1, 1, nan, 2], [50.0, 0, 1, nan, 0, 1]]
    np.testing.assert_array_equal(matrix, np.array(expected, dtype=np.float32))


def test_numeric_values_are_the_numeric_columns_fortran_ordered():
    frame = small_frame().assign(spend=[1.5, 2.0, np.nan, 4.0])
    pre = TabularPreprocessor().fit(frame)
    values = pre.numeric_values(frame)
    assert pre.numeric_columns_ == ["age", "store", "spend"] and values.flags.f_contiguous
    np.testing.assert_array_equal(values, [[30.0, 3, 1.5], [np.nan, 1, 2.0], [45.0, 3, np.nan], [50.0, 2, 4.0]])
    with pytest.raises(DataError, match="spend"):
        pre.numeric_values(frame.assign(spend=[1.0, np.inf, 0.0, 0.0]))


def test_matrix_and_numeric_values_name_the_first_infinite_column_in_column_order():
    frame = small_frame().assign(spend=[1.5, 2.0, np.nan, 4.0])
    pre = TabularPreprocessor(encoding="category").fit(frame)
    bad = frame.assign(age=[30.0, np.nan, -np.inf, 50.0], spend=[np.inf, 2.0, 0.0, 0.0])
    for call in (pre.matrix, pre.numeric_values):
        with pytest.raises(DataError, match=r"features\.age.*infinite.*-inf at index 12"):  # the third row
            call(bad)
