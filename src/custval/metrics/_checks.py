"""Input checks shared by the metric modules: arrays of numbers (never text), lengths, finiteness, fractions.

A bad input raises `custval.errors.DataError` on the table "metrics", naming the argument, the rule and an
example value (`position i: value`); a bad parameter raises `ConfigError` naming the parameter."""

from __future__ import annotations

import numpy as np
import pandas as pd

from custval.errors import ConfigError, DataError, shown

TABLE = "metrics"


def example(values: np.ndarray, mask: np.ndarray) -> str:
    """'position i: value' of the first row where `mask` holds (a plain Python value, no numpy repr)."""
    i = int(np.flatnonzero(mask)[0])
    value = values[i]
    return f"position {i}: {value.item() if isinstance(value, np.generic) else value!r}"


def as_float(values, name: str, rule: str) -> np.ndarray:
    """1-d float64 array from a list/array/Series of numbers or booleans (missing values -> NaN).

    Text is refused, even "1"/"0": labels in words belong to `parse_binary_label`, not to a metric."""
    if isinstance(values, (pd.Series, pd.Index)):
        dtype = values.dtype
        if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
            arr = values.to_numpy(dtype="float64", na_value=np.nan)
        else:
            arr = values.to_numpy(dtype=object)
    else:
        arr = np.asarray(values)
    if arr.ndim != 1:
        raise DataError(TABLE, name, f"must be one-dimensional, got shape {arr.shape}", None)
    if arr.size == 0:
        raise DataError(TABLE, name, "is empty (no rows)", None)
    if arr.dtype == bool or arr.dtype.kind in "iuf":
        return arr.astype("float64")
    obj = arr.astype(object)
    text = np.array([isinstance(x, (str, bytes)) for x in obj], dtype=bool)
    if text.any():
        raise DataError(TABLE, name, rule + ", not text", example(obj, text))
    num = pd.to_numeric(pd.Series(obj, dtype=object), errors="coerce").to_numpy(dtype="float64")
    bad = np.isnan(num) & ~pd.isna(obj)
    if bad.any():
        raise DataError(TABLE, name, rule, example(obj, bad))
    return num


def check_scores(score, n: int, name: str = "score", probability: bool = False) -> np.ndarray:
    """float64 finite array of length n (within [0, 1] when `probability`)."""
    v = as_float(score, name, "must be numeric")
    if v.size != n:
        raise DataError(TABLE, name, f"must have the same length as y_true ({n} rows)", f"{v.size} rows")
    missing = np.isnan(v)
    if missing.any():
        raise DataError(TABLE, name, "missing value (NaN)", example(v, missing))
    inf = np.isinf(v)
    if inf.any():
        raise DataError(TABLE, name, "must be finite", example(v, inf))
    if probability:
        out = (v < 0) | (v > 1)
        if out.any():
            raise DataError(TABLE, name, "probabilities must lie in [0, 1]", example(v, out))
    return v


def check_fraction(fraction, name: str = "fraction") -> float:
    """A number in (0, 1] (booleans refused), else ConfigError naming the parameter."""
    try:
        f = float(fraction)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name} must be a number in (0, 1], got {shown(fraction)}") from exc
    if isinstance(fraction, bool) or not (0.0 < f <= 1.0):
        raise ConfigError(f"{name} must be a number in (0, 1], got {shown(fraction)}")
    return f


def check_count(value, name: str) -> int:
    """A positive integer (booleans refused), else ConfigError naming the parameter."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {shown(value)}")
    return int(value)
