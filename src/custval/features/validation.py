"""Checks shared by the customer-level functions (`rfm_scores`, `value_segments`, `custval.scoring.targeting`).

Each raises a custval error naming the table and column (or the setting), the rule and an example value.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from custval.errors import ConfigError, DataError, SchemaError

__all__ = ["check_not_one_group", "check_positive", "check_share", "check_variation", "numeric_values",
           "require_columns"]


def numeric_values(values, table: str, column: str, *, allow_nan: bool = False) -> np.ndarray:
    """Numeric float array of `values`, or a custval error naming the column, the rule and an example."""
    if isinstance(values, pd.Series | pd.Index):
        if not (pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype)):
            raise SchemaError(table, column, f"must be numeric, got dtype {values.dtype}",
                              values.iloc[0] if len(values) else None)
        arr = values.to_numpy(dtype=float, na_value=np.nan)
    else:
        raw = np.asarray(values)
        if raw.dtype.kind not in "biuf":
            raise SchemaError(table, column, f"must be numeric, got dtype {raw.dtype}",
                              raw.ravel()[0] if raw.size else None)
        arr = raw.astype(float).ravel()
    if arr.size == 0:
        raise DataError(table, column, "is empty: there are no rows (customers) to work on")
    bad = ~np.isfinite(arr) & ~(allow_nan & np.isnan(arr))
    if bad.any():
        raise DataError(table, column, "must be finite (no NaN or infinity)", float(arr[bad][0]))
    return arr


def require_columns(frame: pd.DataFrame, columns: Sequence[str], table: str) -> None:
    """`frame` is a DataFrame with every one of `columns` and at least one row."""
    if not isinstance(frame, pd.DataFrame):
        raise SchemaError(table, "*", f"must be a pandas DataFrame, got {type(frame).__name__}")
    for column in columns:
        if column not in frame.columns:
            raise SchemaError(table, column, f"required column is missing (columns: {list(frame.columns)})")
    if len(frame) == 0:
        raise DataError(table, columns[0] if columns else "*", "is empty: there are no rows (customers) to work on")


def check_share(name: str, value: float, *, closed: bool = True) -> float:
    """A setting that is a share: in [0, 1] (closed) or (0, 1)."""
    ok = 0.0 <= value <= 1.0 if closed else 0.0 < value < 1.0
    if not (isinstance(value, int | float | np.number) and np.isfinite(value) and ok):
        interval = "[0, 1]" if closed else "(0, 1)"
        raise ConfigError(f"{name}: must be a number in {interval}, got {value!r}")
    return float(value)


def check_positive(name: str, value: float) -> float:
    """A setting that is a positive finite number (booleans refused)."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.number) or not np.isfinite(value) \
            or value <= 0:
        raise ConfigError(f"{name}: must be a positive finite number, got {value!r}")
    return float(value)


def check_variation(arr: np.ndarray, table: str, column: str, what: str) -> None:
    """Refuse a column where every customer has the same value (all would fall in one `what`)."""
    if np.all(arr == arr[0]):
        raise DataError(table, column, f"has no variation: all {arr.size} customers have the same value, so "
                        f"every customer would fall in one {what}", float(arr[0]))


def check_not_one_group(groups: np.ndarray, arr: np.ndarray, table: str, column: str, what: str) -> None:
    """Variation too small to matter: one tie block so large that every customer lands in the same group."""
    if np.all(groups == groups[0]):
        raise DataError(table, column, f"has too little variation: all {arr.size} customers fall in one {what} "
                        f"(the most common value holds nearly everyone)", float(pd.Series(arr).mode().iloc[0]))
