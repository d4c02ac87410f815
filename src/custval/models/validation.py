"""Checks every custval estimator shares: the fitted state, through scikit-learn's `check_is_fitted`, and
parameter values (ConfigError messages start with the parameter's name, so a job can prefix its config path:
`model.xgboost.subsample ...`), and per-row columns given with the features (targets, treatments)."""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd
from sklearn.exceptions import NotFittedError as SklearnNotFittedError
from sklearn.utils.validation import check_is_fitted

from custval.errors import ConfigError, DataError, NotFittedError, shown


def check_fitted(estimator, attributes: str | list[str] | None = None) -> None:
    """Raise custval's NotFittedError (a CustvalError and scikit-learn's NotFittedError) unless `estimator`
    is fitted: scikit-learn's rule (`__sklearn_is_fitted__`, else attributes ending in "_"), or the given
    `attributes`."""
    try:
        check_is_fitted(estimator, attributes)
    except SklearnNotFittedError:
        raise NotFittedError(f"This {type(estimator).__name__} is not fitted yet: call fit first.") from None


def check_choice(value, name: str, choices: tuple) -> None:
    if not isinstance(value, str) or value not in choices:
        raise ConfigError(f"{name} must be one of {list(choices)}, got {shown(value)}")


def check_int(value, name: str, *, minimum: int, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}{' or None' if allow_none else ''}, "
                          f"got {shown(value)}")


def _is_real(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, numbers.Real) and bool(np.isfinite(value))


def check_real(value, name: str, *, minimum: float, strict: bool = False) -> None:
    if not (_is_real(value) and (value > minimum if strict else value >= minimum)):
        raise ConfigError(f"{name} must be a finite number {'>' if strict else '>='} {minimum:g}, got {shown(value)}")


def check_fraction(value, name: str) -> None:
    """A share of rows or columns: a number in (0, 1]."""
    if not (_is_real(value) and 0 < value <= 1):
        raise ConfigError(f"{name} must be in (0, 1], got {shown(value)}")


def check_random_state(value, name: str = "random_state") -> None:
    """None, a seed in [0, 2**32) (numpy's and scikit-learn's range) or a numpy RandomState."""
    if value is None or isinstance(value, np.random.RandomState):
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 0 <= value < 2**32:
        raise ConfigError(f"{name} must be an integer in [0, 2**32), a numpy RandomState or None, got {shown(value)}")


def label_series(y, n_rows: int, what: str, *, table: str) -> tuple[pd.Series, str]:
    """A target or per-row column given as a Series, array or list, as a Series and its name ("y" when
    unnamed): one value per row of X, 1-D (DataError in `table` otherwise)."""
    name = str(y.name) if isinstance(y, pd.Series) and y.name is not None else "y"
    if isinstance(y, pd.DataFrame):
        raise DataError(table, name, f"must be one column (a Series or 1-D array) of {what}",
                        f"DataFrame with columns {list(y.columns)[:5]}")
    series = y if isinstance(y, pd.Series) else pd.Series(np.asarray(y) if not isinstance(y, list) else y)
    if series.ndim != 1:
        raise DataError(table, name, "must be 1-D", getattr(y, "shape", None))
    if len(series) != n_rows:
        raise DataError(table, name, f"must have one label per row of X ({n_rows} rows)", f"{len(series)} labels")
    return series, name


def check_same_index(series: pd.Series, name: str, index: pd.Index | None, *, table: str) -> None:
    """A Series matched to X by position must carry X's `index` (when given) in the same order: a shuffled or
    reindexed column would otherwise silently give rows another row's label, arm or outcome."""
    if index is not None and not series.index.equals(index):
        ours, theirs = np.asarray(series.index, dtype=object), np.asarray(index, dtype=object)
        differ = np.flatnonzero(~((ours == theirs) | (pd.isna(ours) & pd.isna(theirs))))
        first = int(differ[0]) if differ.size else 0
        raise DataError(table, name, "index must match the features' index",
                        f"label index {ours[first]!r} vs feature index {theirs[first]!r} at row {first}")


def check_numeric_target(y, n_rows: int, *, index: pd.Index | None = None, table: str = "labels",
                         what: str = "numbers") -> np.ndarray:
    """A numeric target as float64: numbers (bools count as 0/1), none missing or infinite, matched to X by
    position (a Series must carry X's `index`)."""
    series, name = label_series(y, n_rows, what, table=table)
    if not (pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype)):
        example = series.dropna().iloc[0] if series.notna().any() else None
        raise DataError(table, name, f"must be {what}", example)
    values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(values)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise DataError(table, name, "must be a finite number, not missing or infinite",
                        f"{values[first]} at index {shown(series.index[first])}")
    if isinstance(y, pd.Series):
        check_same_index(y, name, index, table=table)
    return values
