"""Input checks shared by the classifiers: the feature frame and the 0/1 target (parameter checks are in
custval.models.validation)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from custval.errors import ConfigError, DataError, SchemaError, shown
from custval.models.validation import (
    check_fraction,
    check_int,
    check_random_state,
    check_real,
    check_same_index,
    label_series,
)

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
    series, name = label_series(y, n_rows, "0/1 labels", table=LABELS)
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
    if isinstance(y, pd.Series):
        check_same_index(y, name, index, table=LABELS)
    return values


XGBOOST_FORBIDDEN = ("[", "]", "<")  # XGBoost refuses these characters in feature names


def check_xgboost_names(X: pd.DataFrame) -> None:
    bad = [c for c in X.columns if any(ch in c for ch in XGBOOST_FORBIDDEN)]
    if bad:
        raise SchemaError(FEATURES, bad[0], "XGBoost does not accept '[', ']' or '<' in feature names: "
                          "rename the column", bad[0])


def check_eval_set(eval_set) -> tuple:
    """(X_valid, y_valid), or XGBoost's [(X_valid, y_valid)]."""
    if isinstance(eval_set, list) and len(eval_set) == 1:
        eval_set = eval_set[0]
    if not (isinstance(eval_set, tuple) and len(eval_set) == 2):
        raise ConfigError("eval_set must be a tuple (X_valid, y_valid) (or a list of exactly one such tuple)")
    return eval_set


def check_booster_params(model) -> None:
    """The tree-booster parameters BoostedClassifier and BoostedRegressor share (ConfigError naming one)."""
    check_int(model.n_estimators, "n_estimators", minimum=1)
    check_real(model.learning_rate, "learning_rate", minimum=0.0, strict=True)
    check_int(model.max_depth, "max_depth", minimum=1)
    check_real(model.min_child_weight, "min_child_weight", minimum=0.0)
    check_fraction(model.subsample, "subsample")
    check_fraction(model.colsample_bytree, "colsample_bytree")
    for name in ("reg_lambda", "reg_alpha", "gamma"):
        check_real(getattr(model, name), name, minimum=0.0)
    check_int(model.max_cat_to_onehot, "max_cat_to_onehot", minimum=1, allow_none=True)
    check_int(model.early_stopping_rounds, "early_stopping_rounds", minimum=1, allow_none=True)
    check_int(model.n_jobs, "n_jobs", minimum=1)
    check_random_state(model.random_state)
    if model.callbacks is not None and not isinstance(model.callbacks, list | tuple):
        raise ConfigError("callbacks must be a list of xgboost TrainingCallback or None, "
                          f"got {shown(model.callbacks)}")


def booster_params(model, early_stopping: bool) -> dict:
    """The XGBoost arguments BoostedClassifier and BoostedRegressor share: hist trees on native categories."""
    params = dict(n_estimators=model.n_estimators, learning_rate=model.learning_rate, max_depth=model.max_depth,
                  min_child_weight=model.min_child_weight, subsample=model.subsample,
                  colsample_bytree=model.colsample_bytree, reg_lambda=model.reg_lambda,
                  reg_alpha=model.reg_alpha, gamma=model.gamma, random_state=model.random_state,
                  n_jobs=model.n_jobs, tree_method="hist", enable_categorical=True,
                  early_stopping_rounds=model.early_stopping_rounds if early_stopping else None,
                  callbacks=list(model.callbacks) if model.callbacks else None)
    if model.max_cat_to_onehot is not None:
        params["max_cat_to_onehot"] = model.max_cat_to_onehot
    return params


def check_sample_weight(sample_weight, n_rows: int) -> np.ndarray | None:
    """None, or one finite weight >= 0 per row (not all zero) as float64."""
    if sample_weight is None:
        return None
    weights = np.asarray(sample_weight, dtype=np.float64)
    if weights.shape != (n_rows,):
        raise DataError(LABELS, "sample_weight", f"must be one weight per row of X ({n_rows} rows)",
                        f"shape {weights.shape}")
    bad = ~np.isfinite(weights) | (weights < 0)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise DataError(LABELS, "sample_weight", "must be finite and >= 0", f"{weights[first]:g} at row {first}")
    if not weights.any():
        raise DataError(LABELS, "sample_weight", "must not be all zero", "0")
    return weights
