"""Tabular preprocessing for the churn/propensity classifiers: numeric columns stay float64 (NaN kept, both
scikit-learn trees and XGBoost route missing values themselves), categorical columns get a fixed, sorted
category list learned in `fit`, so training and scoring always see the same encoding.

Two encodings:
- "onehot": float64 indicator columns `col=value` (plus `col=<missing>` when the column had missing values
  in training), for scikit-learn's decision tree;
- "category": one pandas Categorical column per input column with the fitted categories, for XGBoost's
  native categorical splits (`enable_categorical=True`). Missing stays missing (NaN), so XGBoost learns a
  default direction for it.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from custval.errors import CustvalWarning, DataError, SchemaError
from custval.models.classifiers._checks import FEATURES, check_choice, check_fitted, check_frame

ENCODINGS = ("onehot", "category")
HANDLE_UNKNOWN = ("error", "ignore")
MISSING = "<missing>"  # label of the one-hot indicator of a missing categorical value


def _is_temporal(dtype) -> bool:
    return (pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype)
            or isinstance(dtype, pd.PeriodDtype))


def _is_numeric(dtype) -> bool:
    return pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)


def _as_text(series: pd.Series) -> pd.Series:
    """Categorical values as text (bool True -> "True", int 3 -> "3"), missing as <NA>."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        series = series.astype(object)
    return series.astype("string")


def _numeric_values(series: pd.Series, column: str) -> np.ndarray:
    values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    infinite = np.isinf(values)
    if infinite.any():
        first = int(np.flatnonzero(infinite)[0])
        raise DataError(FEATURES, column, "must be finite or missing (NaN), not infinite",
                        f"{values[first]} at index {series.index[first]!r}")
    return values


class TabularPreprocessor(TransformerMixin, BaseEstimator):
    """Learns which columns are numeric and which categorical (string, category, bool or object dtype, plus
    any named in `categorical`), and the sorted categories of each; transforms frames the same way.

    `handle_unknown="error"` raises DataError for a category not seen in training; "ignore" treats it as
    missing. Datetime columns are refused (convert them to days, e.g. days since signup, first)."""

    def __init__(self, categorical=None, encoding: str = "onehot", handle_unknown: str = "error"):
        self.categorical = categorical
        self.encoding = encoding
        self.handle_unknown = handle_unknown

    # ------------------------------------------------------------------------------------------- fit
    def fit(self, X, y=None):
        check_choice(self.encoding, "encoding", ENCODINGS)
        check_choice(self.handle_unknown, "handle_unknown", HANDLE_UNKNOWN)
        X = check_frame(X)
        forced = [] if self.categorical is None else (
            [self.categorical] if isinstance(self.categorical, str) else list(self.categorical))
        unknown = [c for c in forced if c not in X.columns]
        if unknown:
            raise SchemaError(FEATURES, str(unknown[0]), "listed in `categorical` but not a column of X",
                              f"columns: {list(X.columns)[:10]}")
        numeric, categorical, categories, has_missing, dtypes = [], [], {}, {}, {}
        for column in X.columns:
            series = X[column]
            dtypes[column] = str(series.dtype)
            if _is_temporal(series.dtype):
                raise DataError(FEATURES, column, "datetime/timedelta columns are not features: convert to a "
                                "number of days first (e.g. days since the date)", series.dtype)
            if series.isna().all():
                raise DataError(FEATURES, column, "is missing (NaN) in every training row: drop the column",
                                f"{len(series)} rows, all missing")
            if column not in forced and _is_numeric(series.dtype):
                _numeric_values(series, column)
                numeric.append(column)
                continue
            text = _as_text(series)
            levels = sorted(text.dropna().unique().tolist())
            if MISSING in levels:
                raise DataError(FEATURES, column, f"the value {MISSING!r} is reserved for missing values", MISSING)
            if len(levels) > 50 and len(levels) > 0.5 * text.notna().sum():
                warnings.warn(f"features.{column}: {len(levels)} distinct values in {len(text)} rows looks like an "
                              "identifier, not a category; drop it from the features", CustvalWarning, stacklevel=3)
            categorical.append(column)
            categories[column] = [str(v) for v in levels]
            has_missing[column] = bool(text.isna().any())
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = X.shape[1]
        self.numeric_columns_ = numeric
        self.categorical_columns_ = categorical
        self.categories_ = categories
        self.has_missing_ = has_missing
        self.dtypes_ = dtypes
        self.feature_names_out_ = self._output_names()
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

    # ------------------------------------------------------------------------------------- transform
    def category_codes(self, X) -> dict[str, np.ndarray]:
        """Codes into the fitted categories of every categorical column (-1 = missing, or unseen under
        handle_unknown="ignore"). Raises for missing columns and, by default, unseen categories."""
        check_fitted(self, "feature_names_out_")
        X = self._check_columns(X)
        codes = {}
        for column in self.categorical_columns_:
            text = _as_text(X[column])
            code = pd.Index(self.categories_[column], dtype=object).get_indexer(text).astype(np.int64)
            unseen = (code < 0) & text.notna().to_numpy()
            if unseen.any() and self.handle_unknown == "error":
                first = int(np.flatnonzero(unseen)[0])
                raise DataError(FEATURES, column, "category not seen in training", text.iloc[first])
            codes[column] = code
        return codes

    def _check_columns(self, X) -> pd.DataFrame:
        X = check_frame(X)
        missing = [c for c in self.feature_names_in_ if c not in X.columns]
        if missing:
            raise SchemaError(FEATURES, missing[0], "required feature column is missing",
                              f"{len(missing)} missing, e.g. {missing[:3]}")
        for column in self.numeric_columns_:
            dtype = X[column].dtype
            if not pd.api.types.is_numeric_dtype(dtype):
                raise SchemaError(FEATURES, column, "must be numeric, as in training", str(dtype))
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

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        check_fitted(self, "feature_names_out_")
        return np.asarray(self.feature_names_out_, dtype=object)

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "feature_names_out_")

    # --------------------------------------------------------------------------------- persistence
    def to_state(self) -> dict:
        """Fitted state as plain JSON-able data (see persist.py)."""
        check_fitted(self, "feature_names_out_")
        return {"params": {"categorical": None if self.categorical is None else (
                    [self.categorical] if isinstance(self.categorical, str) else list(self.categorical)),
                           "encoding": self.encoding, "handle_unknown": self.handle_unknown},
                "columns": [str(c) for c in self.feature_names_in_], "numeric": list(self.numeric_columns_),
                "categorical": list(self.categorical_columns_), "categories": self.categories_,
                "has_missing": self.has_missing_, "dtypes": self.dtypes_}

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
        pre.feature_names_out_ = pre._output_names()
        return pre
