"""Columns of a customer table that are not features: the ones a user names (`drop`) and the ones that only
identify a row.

Identifier-like (`identifier_columns`), in tables of more than `MIN_ROWS` rows:
  * a row number: a numeric column of whole numbers, never missing, strictly increasing down the rows (1, 2,
    3, ... or an id the export is sorted by). A measurement such as income or a balance is not one: it has
    fractions, repeats or is not in row order; nor is a count such as tenure (it repeats);
  * a text column whose values (nearly) all differ: more than `MIN_DISTINCT` distinct values making up more
    than `DISTINCT_SHARE` of its non-missing values (free text, names, codes);
  * a text column with more than `MANY_DISTINCT` distinct values and fewer than 1 / `SPARSE_SHARE` rows per
    value on average (surnames: a bank export of 10,000 customers has ~2,900 of them). A category a model can
    learn from has many rows per value: countries, plans and regions never come near these counts.
Dates, booleans, declared categoricals (pandas `category`) and numeric measurements are never identifiers.
A model could only memorise such columns in training and meets unseen values at scoring.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from custval.errors import CustvalWarning, SchemaError

__all__ = ["DISTINCT_SHARE", "MANY_DISTINCT", "MIN_DISTINCT", "MIN_ROWS", "SPARSE_SHARE", "drop_columns",
           "identifier_columns"]

MIN_ROWS = 50
MIN_DISTINCT = 50
DISTINCT_SHARE = 0.9
MANY_DISTINCT = 1000
SPARSE_SHARE = 0.2


def _row_number(series: pd.Series) -> str | None:
    dtype = series.dtype
    if not pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
        return None
    values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    if np.isnan(values).any() or not np.all(np.isfinite(values)) or not np.all(values == np.floor(values)):
        return None
    if not np.all(np.diff(values) > 0):
        return None
    return f"whole numbers increasing with the row ({values[0]:.0f}, {values[1]:.0f}, {values[2]:.0f}, ...)"


def _distinct_text(series: pd.Series) -> str | None:
    dtype = series.dtype
    text = (pd.api.types.is_string_dtype(dtype) or pd.api.types.is_object_dtype(dtype)) \
        and not isinstance(dtype, pd.CategoricalDtype)
    if not text:
        return None
    present = series.dropna()
    if pd.api.types.is_object_dtype(dtype) and pd.api.types.infer_dtype(present, skipna=True) not in (
            "string", "mixed"):
        return None  # object columns of numbers, dates or booleans
    n, k = len(present), int(present.nunique())
    if n == 0 or k <= MIN_DISTINCT:
        return None
    if k > DISTINCT_SHARE * n or (k > MANY_DISTINCT and k > SPARSE_SHARE * n):
        return f"{k:,} distinct values in {n:,} rows"
    return None


def identifier_columns(frame: pd.DataFrame, *, exclude=()) -> dict[str, str]:
    """{column: why it looks like an identifier} for the columns of `frame` (except `exclude`), in column
    order; empty for tables of `MIN_ROWS` rows or fewer (see the module docstring)."""
    if len(frame) <= MIN_ROWS:
        return {}
    found = {}
    for column in frame.columns:
        if column in exclude:
            continue
        why = _row_number(frame[column]) or _distinct_text(frame[column])
        if why is not None:
            found[str(column)] = why
    return found


def drop_columns(frame: pd.DataFrame, *, drop=(), keep=(), protected=(), table: str = "customers") -> pd.DataFrame:
    """`frame` without the columns in `drop` and without identifier-like columns (a CustvalWarning names them
    and why), except those in `keep` or `protected` (the id and label columns, never touched). A column of
    `drop` or `keep` that `frame` does not have is a SchemaError naming it."""
    for setting, names in (("drop", drop), ("keep", keep)):
        missing = [c for c in names if c not in frame.columns]
        if missing:
            raise SchemaError(table, missing[0], f"listed in data.{setting} but not a column of the table",
                              f"columns: {[str(c) for c in frame.columns]}")
    refused = [c for c in drop if c in protected]
    if refused:
        raise SchemaError(table, refused[0], "listed in data.drop but it is the id or label column, never a feature")
    frame = frame.drop(columns=list(drop))
    found = identifier_columns(frame, exclude={*keep, *protected})
    if found:
        named = "; ".join(f"{column} ({why})" for column, why in found.items())
        warnings.warn(CustvalWarning(f"{table}: identifier-like columns dropped from the features: {named}; list a "
                                     "column in data.keep to use it as a feature"), stacklevel=2)
        frame = frame.drop(columns=list(found))
    return frame
