"""Input checks shared by the classifiers: the feature frame, the 0/1 target and parameter values (messages
start with the parameter's name, so a job can prefix its config path: `model.xgboost.subsample ...`)."""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd

from custval.errors import ConfigError, DataError, SchemaError, shown

FEATURES = "features"  # table name used in error messages about X
LABELS = "labels"  # table name used in error messages about y
CLASSES = np.array([0, 1])


def check_frame(X, *, table: str = FEATURES) -> pd.DataFrame:
    """X must be a non-empty DataFrame with unique string column names and at least one column."""
    if not isinstance(X, pd.DataFrame):
        raise SchemaError(table, "<X>", "must be a pandas DataFrame of features", type(X).__name__)
    if X.shape[1] == 0:
        raise SchemaError(table, "<X>", "needs at least one feature column", "no columns")
    bad = [c for c in X.columns if not isinstance(c, str)]
    if bad:
        raise SchemaError(table, str(bad[0]), "column names must be strings", bad[0])
    duplicated = X.columns[X.columns.duplicated()]
    if len(duplicated):
        raise SchemaError(table, duplicated[0], "column names must be unique", duplicated[0])
    if len(X) == 0:
        raise DataError(table, "<X>", "needs at least one row", "0 rows")
    return X


def check_target(y, n_rows: int, *, index: pd.Index | None = None, require_both: bool = True) -> np.ndarray:
    """The binary target as an int8 array of 0/1. Bools are accepted; text labels ("Yes"/"No") are not:
    they must be parsed explicitly (custval.data.schemas.parse_binary_label) so the positive class is never
    guessed. Labels are matched to X by position, so a Series y must carry X's `index` (when given) in the
    same order: a reindexed or shuffled y would otherwise silently give rows the wrong labels."""
    name = str(y.name) if isinstance(y, pd.Series) and y.name is not None else "y"
    if isinstance(y, pd.DataFrame):
        raise DataError(LABELS, name, "must be one column (a Series or 1-D array) of 0/1 labels",
                        f"DataFrame with columns {list(y.columns)[:5]}")
    series = y if isinstance(y, pd.Series) else pd.Series(np.asarray(y) if not isinstance(y, list) else y)
    if series.ndim != 1:
        raise DataError(LABELS, name, "must be 1-D", getattr(y, "shape", None))
    if len(series) != n_rows:
        raise DataError(LABELS, name, f"must have one label per row of X ({n_rows} rows)", f"{len(series)} labels")
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        if series.isna().any():
            raise DataError(LABELS, name, "must not be missing", f"<NA> at index {shown(series.index[series.isna()][0])}")
        values = series.to_numpy(dtype=np.int8)
    elif pd.api.types.is_numeric_dtype(dtype):
        numeric = series.to_numpy(dtype=np.float64, na_value=np.nan)
        missing = np.isnan(numeric)
        if missing.any():
            first = int(np.flatnonzero(missing)[0])
            raise DataError(LABELS, name, "must not be missing", f"NaN at index {shown(series.index[first])}")
        bad = (numeric != 0) & (numeric != 1)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise DataError(LABELS, name, "must be 0/1 (a binary label)",
                            f"{numeric[first]:g} at index {shown(series.index[first])}")
        values = numeric.astype(np.int8)
    else:
        example = series.dropna().iloc[0] if series.notna().any() else None
        raise DataError(LABELS, name, "must be 0/1 or bool; parse text labels such as 'Yes'/'No' first with "
                        "custval.data.schemas.parse_binary_label", example)
    if require_both:
        present = np.unique(values)
        if present.size < 2:
            raise DataError(LABELS, name, "needs both classes 0 and 1; only one class is present",
                            int(present[0]) if present.size else None)
    if index is not None and isinstance(y, pd.Series) and not y.index.equals(index):
        ours, theirs = np.asarray(y.index, dtype=object), np.asarray(index, dtype=object)
        differ = np.flatnonzero(~((ours == theirs) | (pd.isna(ours) & pd.isna(theirs))))
        first = int(differ[0]) if differ.size else 0
        raise DataError(LABELS, name, "index must match the features' index",
                        f"label index {ours[first]!r} vs feature index {theirs[first]!r} at row {first}")
    return values


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
