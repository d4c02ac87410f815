"""Tabular preprocessing for the churn/propensity classifiers: numeric columns stay float64 (NaN kept, both
scikit-learn trees and XGBoost route missing values themselves), categorical columns get a fixed, sorted
category list learned in `fit`, so training and scoring always see the same encoding.

Two encodings:
- "onehot": float64 indicator columns `col=value` (plus `col=<missing>` when the column had missing values
  in training), for scikit-learn's decision tree;
- "category": one pandas Categorical column per input column with the fitted categories, for XGBoost's
  native categorical splits (`enable_categorical=True`). Missing stays missing (NaN), so XGBoost learns a
  default direction for it.

A category not seen in training is, by default (`handle_unknown="ignore"`), encoded exactly as a missing
value (no indicator set but `col=<missing>`; NaN for XGBoost), with a CustvalWarning naming the column, how
many rows and an example: a new plan name or a customer's surname at scoring time does not stop a whole
scoring run. `handle_unknown="error"` refuses it instead (DataError).

Scoring one frame with several models (an average's members, one model per output, an uplift learner's
outcome and effect models) prepares the same columns again for each: inside `shared_inputs(X)` every
preprocessor reading that very frame object keys, factorizes and converts each column (list) once, and the
results are shared (read-only arrays; the same numbers as without it, see `shared_value`).
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from custval.errors import ConfigError, CustvalWarning, DataError, ModelError, SchemaError, shown
from custval.models.classifiers._checks import FEATURES, check_frame
from custval.models.validation import check_choice, check_fitted

ENCODINGS = ("onehot", "category")
HANDLE_UNKNOWN = ("error", "ignore")
MISSING = "<missing>"  # label of the one-hot indicator of a missing categorical value
KEY_VERSION = 2  # category keys: 1 = text form (legacy), 2 = normalised numbers (see _category_keys)


class _SharedInputs:
    """The frame of one `shared_inputs` block (held, so its id stays its own) and the values prepared of it."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.values: dict[tuple, object] = {}


_SHARED: ContextVar[_SharedInputs | None] = ContextVar("custval_shared_inputs", default=None)


@contextmanager
def shared_inputs(frame: pd.DataFrame) -> Iterator[None]:
    """Within the block, what preprocessors prepare of `frame` (that object, not an equal copy, and not
    modified inside the block) is computed once and shared, see `shared_value`: score the models on the frame
    itself, not on column selections of it (each model reads only its own columns). Blocks nest (the inner
    one's frame only)."""
    token = _SHARED.set(_SharedInputs(frame))
    try:
        yield
    finally:
        _SHARED.reset(token)


def _shared_frame(X) -> pd.DataFrame | None:
    shared = _SHARED.get()
    return None if shared is None or shared.frame is not X else shared.frame


def shared_value(X, key: tuple, compute: Callable[[], object]):
    """`compute()`, a pure function of the frame X and `key`, computed once per key inside a
    `shared_inputs(X)` block, else every time. Arrays are returned read-only: callers copy before writing."""
    if _shared_frame(X) is None:
        return compute()
    values = _SHARED.get().values
    if key not in values:
        value = compute()
        for array in value if isinstance(value, tuple) else (value,):
            if isinstance(array, np.ndarray):
                array.flags.writeable = False
        values[key] = value
    return values[key]


def _shared_numeric(X: pd.DataFrame, columns: list[str], elementwise: Callable | None = None) -> np.ndarray | None:
    """The numeric `columns` of X as float64 (n, k), taken from one conversion of every numeric column of X
    inside a `shared_inputs(X)` block (then `elementwise`, a function of each value alone, applied to it once);
    infinite values raise as `_numeric_block` raises. None outside such a block."""
    if _shared_frame(X) is None:
        return None
    names, block, infinite = shared_value(X, ("numeric_block",), lambda: _all_numeric(X))
    position = [names[c] for c in columns]
    bad = infinite[position]
    if bad.any():
        column = columns[int(np.flatnonzero(bad)[0])]
        _numeric_values(X[column], column)  # raises, naming the column and its first infinite row
    if elementwise is not None:
        block = shared_value(X, ("numeric_block", elementwise), lambda: elementwise(block))
    return block[:, position]


def _all_numeric(frame: pd.DataFrame) -> tuple[dict[str, int], np.ndarray, np.ndarray]:
    """(column -> position, float64 values, infinite per column) of every numeric-dtype column of `frame`."""
    columns = [c for c, dtype in zip(frame.columns, frame.dtypes, strict=True) if pd.api.types.is_numeric_dtype(dtype)]
    values = frame[columns].to_numpy(dtype=np.float64, na_value=np.nan)
    return {c: j for j, c in enumerate(columns)}, values, np.isinf(values).any(axis=0)


def _is_temporal(dtype) -> bool:
    return (pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype)
            or isinstance(dtype, pd.PeriodDtype))


def _is_numeric(dtype) -> bool:
    return pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)


def _as_text(series: pd.Series) -> pd.Series:
    """Legacy (key version 1) category keys: the values' text form (float 1.0 -> "1.0", int 1 -> "1")."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        series = series.astype(object)
    return series.astype("string")


def _float_key(value: float) -> str:
    """Whole numbers as integers ("1", also for 1.0), others as repr ("0.5"): one key per number whatever
    its dtype, so a float column (float because of NaN) and the same column as int64 give the same keys."""
    return str(int(value)) if value.is_integer() else repr(value)


def _value_key(value) -> str:
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return _float_key(float(value))
    return str(value)


def _category_keys(series: pd.Series) -> pd.Series:
    """Category keys (key version 2) as a string Series, missing as <NA>: text as is, bools "True"/"False",
    numbers normalised (`_float_key`). Used identically in fit and at transform."""
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        keys = _category_keys(pd.Series(dtype.categories)).to_numpy(dtype=object)
        codes = series.cat.codes.to_numpy()
        return pd.Series(pd.array(np.where(codes >= 0, keys[codes], None), dtype="string"), index=series.index)
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_integer_dtype(dtype) \
            or pd.api.types.is_string_dtype(dtype) and not pd.api.types.is_object_dtype(dtype):
        return series.astype("string")
    if _is_numeric(dtype):
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        present = ~np.isnan(values)
        levels, inverse = np.unique(values[present], return_inverse=True)
        keys = np.empty(len(values), dtype=object)
        keys[present] = np.array([_float_key(float(v)) for v in levels], dtype=object)[inverse]
        return pd.Series(pd.array(keys, dtype="string"), index=series.index)
    # object: mixed Python values, keyed one by one (bool is tested before int: True is not 1)
    missing = series.isna().to_numpy()
    keys = np.array([None if m else _value_key(v) for v, m in zip(series.to_numpy(dtype=object), missing,
                                                                     strict=True)], dtype=object)
    return pd.Series(pd.array(keys, dtype="string"), index=series.index)


def _kind(dtype) -> str:
    """Kind of values a categorical column holds: "bool", "number", "text" or "any" (object: mixed)."""
    if isinstance(dtype, pd.CategoricalDtype):
        if dtype.categories is None:  # the bare name "category" (legacy states): kind unknown
            return "any"
        dtype = dtype.categories.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if _is_numeric(dtype):
        return "number"
    if pd.api.types.is_string_dtype(dtype) and not pd.api.types.is_object_dtype(dtype):
        return "text"
    return "any"


def _kind_from_name(name: str) -> str:
    """Kind of a persisted dtype name (states saved before kinds were stored); unknown -> "any"."""
    try:
        return _kind(pd.api.types.pandas_dtype(name))
    except (TypeError, ValueError):
        return "any"


def _numeric_values(series: pd.Series, column: str) -> np.ndarray:
    values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    infinite = np.isinf(values)
    if infinite.any():
        first = int(np.flatnonzero(infinite)[0])
        raise DataError(FEATURES, column, "must be finite or missing (NaN), not infinite",
                        f"{values[first]} at index {shown(series.index[first])}")
    return values


def _numeric_block(X: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """The numeric `columns` of X as one float64 (n, k) array (missing -> NaN), in one conversion rather than
    one Series per column (the values `_numeric_values` gives each); infinite values raise as there."""
    values = X[columns].to_numpy(dtype=np.float64, na_value=np.nan)
    infinite = np.isinf(values)
    if infinite.any():
        j = int(np.flatnonzero(infinite.any(axis=0))[0])
        _numeric_values(X[columns[j]], columns[j])  # raises, naming the column and its first infinite row
    return values


class TabularPreprocessor(TransformerMixin, BaseEstimator):
    """Learns which columns are numeric and which categorical (string, category, bool or object dtype, plus
    any named in `categorical`), and the sorted categories of each; transforms frames the same way.

    `handle_unknown="ignore"` (default) treats a category not seen in training as missing, with a
    CustvalWarning (silence it with the warnings module); "error" raises DataError. Datetime columns are
    refused (convert them to days, e.g. days since signup, first).

    Category keys are text; numbers are normalised first (1, 1.0 -> "1"; 0.5 -> "0.5"), so a column that is
    float in training (because of NaN) and int64 at scoring is encoded the same. `kinds_` (bool / number /
    text / any, from the training dtypes `dtypes_`) is checked at transform: a categorical column arriving
    with another kind of values (e.g. 0/1 for a bool column) raises SchemaError instead of being treated as
    unseen or missing. `numeric_missing_`: numeric columns that had missing values in training."""

    def __init__(self, categorical=None, encoding: str = "onehot", handle_unknown: str = "ignore"):
        self.categorical = categorical
        self.encoding = encoding
        self.handle_unknown = handle_unknown

    # ------------------------------------------------------------------------------------------- fit
    def check_params(self) -> TabularPreprocessor:
        """Check every parameter (ConfigError naming it, e.g. "encoding must be one of ..."); returns self.
        fit calls it first."""
        check_choice(self.encoding, "encoding", ENCODINGS)
        check_choice(self.handle_unknown, "handle_unknown", HANDLE_UNKNOWN)
        names = self.categorical
        if not (names is None or isinstance(names, str) or isinstance(names, list | tuple)
                and all(isinstance(c, str) for c in names)):
            raise ConfigError(f"categorical must be None, a column name or a list of column names, got {shown(names)}")
        return self

    def _forced_categorical(self) -> list[str] | None:
        if self.categorical is None:
            return None
        return [self.categorical] if isinstance(self.categorical, str) else list(self.categorical)

    def fit(self, X, y=None):
        self.check_params()
        X = check_frame(X)
        self.__dict__.pop("_code_maps", None)  # lookups of a previous fit
        forced = self._forced_categorical() or []
        unknown = [c for c in forced if c not in X.columns]
        if unknown:
            raise SchemaError(FEATURES, str(unknown[0]), "listed in `categorical` but not a column of X",
                              f"columns: {list(X.columns)[:10]}")
        numeric, categorical, categories, has_missing, dtypes, kinds = [], [], {}, {}, {}, {}
        numeric_missing = []
        for column in X.columns:
            series = X[column]
            dtypes[column] = str(series.dtype)
            if _is_temporal(series.dtype):
                raise DataError(FEATURES, column, "datetime/timedelta columns are not features: convert to a "
                                "number of days first (e.g. days since the date)", str(series.dtype))
            if series.isna().all():
                raise DataError(FEATURES, column, "is missing (NaN) in every training row: drop the column",
                                f"{len(series)} rows, all missing")
            if column not in forced and _is_numeric(series.dtype):
                _numeric_values(series, column)
                numeric.append(column)
                if series.isna().any():
                    numeric_missing.append(column)
                continue
            text = _category_keys(series)
            levels = sorted(text.dropna().unique().tolist())
            if MISSING in levels:
                raise DataError(FEATURES, column, f"the value {MISSING!r} is reserved for missing values", MISSING)
            if len(levels) > 50 and len(levels) > 0.5 * text.notna().sum():
                warnings.warn(f"features.{column}: {len(levels)} distinct values in {len(text)} rows looks like an "
                              "identifier, not a category; drop it from the features", CustvalWarning, stacklevel=3)
            categorical.append(column)
            kinds[column] = _kind(series.dtype)
            categories[column] = [str(v) for v in levels]
            has_missing[column] = bool(text.isna().any())
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = X.shape[1]
        self.numeric_columns_ = numeric
        self.categorical_columns_ = categorical
        self.categories_ = categories
        self.has_missing_ = has_missing
        self.dtypes_ = dtypes
        self.kinds_ = kinds
        self.numeric_missing_ = numeric_missing
        self.key_version_ = KEY_VERSION
        names = self._output_names()
        self._check_unique_names(names)
        self.feature_names_out_ = names
        return self

    def _output_names(self) -> list[str]:
        if self.encoding == "category":
            return [str(c) for c in self.feature_names_in_]
        names = []
        for column in self.feature_names_in_:
            if column in self.categories_:
                names += [f"{column}={v}" for v in self.categories_[column]]
                if self.has_missing_[column]:
                    names.append(f"{column}={MISSING}")
            else:
                names.append(column)
        return names

    def _check_unique_names(self, names: list[str]) -> None:
        """One-hot names `col=level` must not clash with another output (e.g. a numeric column named "a=b"
        next to column "a" with level "b"): a clash would silently replace one of the two features."""
        names_index = pd.Index(names)
        if names_index.is_unique:
            return
        clash = str(names_index[names_index.duplicated()][0])
        # the categorical column producing the clashing indicator (the other side may be any column)
        source = next((c for c in self.categorical_columns_ if clash.startswith(f"{c}=")), clash)
        raise SchemaError(FEATURES, source, "one-hot name clashes with another column", clash)

    def _keys(self, series: pd.Series, column: str) -> pd.Series:
        if self.key_version_ >= 2:
            return _category_keys(series)
        # legacy keys (text form): cast numbers to the training dtype first, so int64 scoring of a column
        # trained as float still gives "1.0"
        training = self.dtypes_.get(column)
        if training is not None and _is_numeric(series.dtype) and _kind_from_name(training) == "number":
            try:
                series = series.astype(training)
            except (TypeError, ValueError):
                pass
        return _as_text(series)

    # ------------------------------------------------------------------------------------- transform
    def category_codes(self, X) -> dict[str, np.ndarray]:
        """Codes into the fitted categories of every categorical column (-1 = missing, or unseen under
        handle_unknown="ignore", with a CustvalWarning). Raises for missing columns and, under
        handle_unknown="error", for unseen categories."""
        check_fitted(self)
        X = self._check_columns(X)
        codes = {}
        for column in self.categorical_columns_:
            code, n_unseen, example = shared_value(X, self._code_key(column), lambda c=column: self._codes(X, c))
            if n_unseen:
                if self.handle_unknown == "error":
                    raise DataError(FEATURES, column, "category not seen in training", example)
                warnings.warn(CustvalWarning(
                    f"features.{column}: {n_unseen:,} of {len(code):,} rows have a category not seen in "
                    f"training (e.g. {example!r}), treated as missing"), stacklevel=2)
            codes[column] = code
        return codes

    def _key_kind(self, column: str) -> tuple:
        """What the category keys of `column` depend on besides its values: the key version (and the training
        dtype for legacy keys)."""
        return (self.key_version_,) if self.key_version_ >= 2 else (self.key_version_, self.dtypes_.get(column))

    def _code_key(self, column: str) -> tuple:
        return ("codes", column, *self._key_kind(column), tuple(self.categories_[column]))

    def _factorized(self, X: pd.DataFrame, column: str) -> tuple[pd.Series, np.ndarray, np.ndarray]:
        """(category keys, their factorization: row codes, distinct keys) of one column."""
        text = self._keys(X[column], column)
        return (text, *pd.factorize(text))

    def _codes(self, X: pd.DataFrame, column: str) -> tuple[np.ndarray, int, str | None]:
        """(codes, number of rows with an unseen category, the first such key) of one categorical column."""
        text, rows, distinct = shared_value(X, ("keys", column, *self._key_kind(column)),
                                            lambda: self._factorized(X, column))
        lookup = self._code_map(column)  # each distinct key looked up once; missing -> -1
        found = np.fromiter((lookup.get(key, -1) for key in distinct), dtype=np.int64, count=len(distinct))
        code = np.where(rows >= 0, found[np.maximum(rows, 0)], -1) if len(found) else np.full(len(rows), -1)
        unseen = (code < 0) & (rows >= 0)
        if not unseen.any():
            return code, 0, None
        return code, int(unseen.sum()), text.iloc[int(np.flatnonzero(unseen)[0])]

    def _code_map(self, column: str) -> dict[str, int]:
        """key -> position in the fitted categories of `column`, built once per fit (a dict lookup per distinct
        key: an Index and its hash table per call cost more than the lookups on a few rows)."""
        maps = self.__dict__.setdefault("_code_maps", {})
        if column not in maps:
            maps[column] = {key: code for code, key in enumerate(self.categories_[column])}
        return maps[column]

    def _check_columns(self, X) -> pd.DataFrame:
        X, dtypes = shared_value(X, ("frame",), lambda: (check_frame(X), dict(zip(X.columns, X.dtypes, strict=True))))
        # the same check of the same columns (an average's members, one output per category) passes once
        key = ("checked", tuple(self.feature_names_in_), tuple(self.numeric_columns_),
               tuple((c, self.kinds_.get(c, "any")) for c in self.categorical_columns_))
        return shared_value(X, key, lambda: self._checked(X, dtypes))

    def _checked(self, X: pd.DataFrame, dtypes: dict) -> pd.DataFrame:
        missing = [c for c in self.feature_names_in_ if c not in dtypes]
        if missing:
            raise SchemaError(FEATURES, missing[0], "required feature column is missing",
                              f"{len(missing)} missing, e.g. {missing[:3]}")
        for column in self.numeric_columns_:
            dtype = dtypes[column]
            if not pd.api.types.is_numeric_dtype(dtype):
                raise SchemaError(FEATURES, column, "must be numeric, as in training", str(dtype))
        for column in self.categorical_columns_:
            dtype = dtypes[column]
            trained, now = self.kinds_.get(column, "any"), _kind(dtype)
            if trained == now or "any" in (trained, now) or X[column].isna().all():
                continue
            raise SchemaError(FEATURES, column, f"must hold {trained} values, as in training",
                              f"dtype {dtype} (training: {self.dtypes_.get(column)})")
        return X

    def transform(self, X) -> pd.DataFrame:
        codes = self.category_codes(X)
        out = {}
        for column in self.feature_names_in_:
            if column not in self.categories_:
                out[column] = _numeric_values(X[column], column)
                continue
            code, levels = codes[column], self.categories_[column]
            if self.encoding == "category":
                out[column] = pd.Categorical.from_codes(code, categories=pd.Index(levels, dtype=object))
                continue
            indicators = (code[:, None] == np.arange(len(levels))[None, :]).astype(np.float64)
            for j, level in enumerate(levels):
                out[f"{column}={level}"] = indicators[:, j]
            if self.has_missing_[column]:
                out[f"{column}={MISSING}"] = (code < 0).astype(np.float64)
        return pd.DataFrame(out, index=X.index, columns=self.feature_names_out_)

    def matrix(self, X, dtype=np.float32) -> np.ndarray:
        """X as one C-ordered (n, n_features_in_) array of `dtype`, columns in `feature_names_in_` order:
        numeric columns' values, categorical columns' codes into the fitted categories (NaN where missing or
        unseen). That is what XGBoost reads of the "category" encoding's frame (its categorical splits test
        the codes; it stores float32 values), built without the frame of Categoricals."""
        codes = self.category_codes(X)
        key = ("matrix", np.dtype(dtype).str, tuple(self.feature_names_in_),
               tuple(self._code_key(column) for column in self.categorical_columns_))
        return shared_value(X, key, lambda: self._matrix(X, codes, dtype))

    def _matrix(self, X: pd.DataFrame, codes: dict[str, np.ndarray], dtype) -> np.ndarray:
        out = np.empty((len(X), self.n_features_in_), dtype=dtype)
        numeric = [j for j, column in enumerate(self.feature_names_in_) if column not in codes]
        if numeric:
            out[:, numeric] = self._numeric_block(X, [self.feature_names_in_[j] for j in numeric])
        for j, column in enumerate(self.feature_names_in_):
            if column in codes:
                code = codes[column]
                out[:, j] = np.where(code >= 0, code, np.nan)
        return out

    @staticmethod
    def _numeric_block(X: pd.DataFrame, columns: list[str]) -> np.ndarray:
        shared = _shared_numeric(X, columns)
        return _numeric_block(X, columns) if shared is None else shared

    def numeric_values(self, X, elementwise: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
        """The numeric columns of X (`numeric_columns_`) as one Fortran-ordered float64 (n, k) array, checked
        finite or missing as `transform` checks them; `elementwise` (a function of each value alone, such as
        numpy's log1p) applied to it, once per column inside `shared_inputs`."""
        X = self._check_columns(X)
        columns = list(self.numeric_columns_)
        out = np.empty((len(X), len(columns)), dtype=np.float64, order="F")
        if not columns:
            return out if elementwise is None else elementwise(out)
        shared = _shared_numeric(X, columns, elementwise)
        if shared is not None:
            out[:] = shared
            return out
        out[:] = _numeric_block(X, columns)
        return out if elementwise is None else elementwise(out)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        check_fitted(self)
        return np.asarray(self.feature_names_out_, dtype=object)

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "feature_names_out_")  # set last in fit: an error before it leaves no fitted state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # missing numbers stay NaN, missing categories are their own code
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        return tags

    # --------------------------------------------------------------------------------- persistence
    def to_state(self) -> dict:
        """Fitted state as plain JSON-able data (see persist.py)."""
        check_fitted(self)
        return {"params": {"categorical": self._forced_categorical(), "encoding": self.encoding,
                           "handle_unknown": self.handle_unknown},
                "columns": [str(c) for c in self.feature_names_in_], "numeric": list(self.numeric_columns_),
                "categorical": list(self.categorical_columns_), "categories": self.categories_,
                "has_missing": self.has_missing_, "dtypes": self.dtypes_, "kinds": self.kinds_,
                "numeric_missing": list(self.numeric_missing_), "key_version": self.key_version_}

    @classmethod
    def from_state(cls, state: dict) -> TabularPreprocessor:
        pre = cls(**state["params"])
        pre.feature_names_in_ = np.asarray(state["columns"], dtype=object)
        pre.n_features_in_ = len(state["columns"])
        pre.numeric_columns_ = list(state["numeric"])
        pre.categorical_columns_ = list(state["categorical"])
        pre.categories_ = {k: list(v) for k, v in state["categories"].items()}
        pre.has_missing_ = {k: bool(v) for k, v in state["has_missing"].items()}
        pre.dtypes_ = dict(state["dtypes"])
        # states saved before these were stored: kinds from the dtype names, text-form keys, and unknown
        # numeric missingness (None: rules then mention missing routing for every numeric split)
        pre.kinds_ = dict(state["kinds"]) if "kinds" in state else {
            c: _kind_from_name(pre.dtypes_.get(c, "object")) for c in pre.categorical_columns_}
        pre.numeric_missing_ = list(state["numeric_missing"]) if "numeric_missing" in state else None
        pre.key_version_ = int(state.get("key_version", 1))
        if pre.key_version_ > KEY_VERSION:
            raise ModelError(f"preprocessor state uses category key version {pre.key_version_}; this custval "
                             f"reads versions up to {KEY_VERSION}: upgrade custval")
        pre.feature_names_out_ = pre._output_names()
        return pre
