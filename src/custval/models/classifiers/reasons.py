"""Per-customer reasons from additive contributions: the columns that push a customer's log-odds up the most,
written as "recency_days=143", "plan=basic" or "income=missing".

Shared by the classifiers whose margin splits exactly into one contribution per input column plus a bias:
BoostedClassifier (XGBoost's TreeSHAP), LogisticClassifier (coefficient x standardised value) and
AveragedClassifier (the weighted mean of its members' contributions).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from custval.models.classifiers.preprocess import TabularPreprocessor
from custval.models.validation import check_int

BIAS = "bias"  # the contributions column that belongs to no input column


def format_reason_values(column: str, values: np.ndarray) -> np.ndarray:
    """"col=value" strings for numeric values: whole numbers in full ("income=52000"), others with 3
    significant digits, enough to read a reason ("recency_ratio=39.4", "p_alive=7.85e-05"), NaN -> "missing"."""
    values = np.asarray(values, dtype=np.float64)
    whole = np.isfinite(values) & (np.abs(values) < 1e15) & (values == np.round(values))
    text = np.char.mod("%.3g", values).astype(object)
    if whole.any():
        text[whole] = np.char.mod("%.0f", values[whole]).astype(object)
    text[np.isnan(values)] = "missing"
    return (column + "=") + text


def top_reasons(contributions: pd.DataFrame | np.ndarray, preprocessor: TabularPreprocessor, X: pd.DataFrame,
                top: int = 3) -> pd.DataFrame:
    """Per-row top `top` reasons pushing the log-odds UP: reason_1..k (the column and the customer's value:
    a category as encoded by the fitted `preprocessor`, an unseen one as "missing") and contribution_1..k
    (log-odds, largest first). `contributions` has one column per input column (plus `bias`, ignored), rows as
    X: a frame, or an array whose first columns are the input columns in the preprocessor's order (the
    classifiers' `contribution_values`). Rows with fewer than k positive contributions get "" and NaN in the
    remaining slots. Index = X.index."""
    check_int(top, "top", minimum=1)
    names = [str(c) for c in preprocessor.feature_names_in_]
    if isinstance(contributions, pd.DataFrame):
        values = contributions[names].to_numpy(dtype=np.float64)
    else:
        values = np.asarray(contributions, dtype=np.float64)[:, :len(names)]
    k = min(top, len(names))
    order = np.argsort(-values, axis=1, kind="stable")[:, :k]
    chosen = np.take_along_axis(values, order, axis=1)
    positive = chosen > 0
    reasons = np.full(order.shape, "", dtype=object)
    codes = preprocessor.category_codes(X) if preprocessor.categorical_columns_ else {}
    for j, column in enumerate(names):
        hit = (order == j) & positive
        rows = hit.any(axis=1)
        if not rows.any():
            continue
        if column in codes:
            labels = np.array([f"{column}={v}" for v in preprocessor.categories_[column]] + [f"{column}=missing"],
                              dtype=object)
            text = labels[codes[column][rows]]  # code -1 (missing or unseen) -> the last label, "missing"
        else:
            text = format_reason_values(column, X[column].to_numpy(dtype=np.float64, na_value=np.nan)[rows])
        full = np.empty(len(X), dtype=object)
        full[rows] = text
        reasons[hit] = np.broadcast_to(full[:, None], hit.shape)[hit]
    out = {f"reason_{i + 1}": pd.Series(reasons[:, i], index=X.index, dtype="str") for i in range(k)}
    out |= {f"contribution_{i + 1}": np.where(positive[:, i], chosen[:, i], np.nan) for i in range(k)}
    for i in range(k, top):  # more reasons asked than there are columns
        out[f"reason_{i + 1}"] = pd.Series("", index=X.index, dtype="str")
        out[f"contribution_{i + 1}"] = np.nan
    columns = [f"reason_{i + 1}" for i in range(top)] + [f"contribution_{i + 1}" for i in range(top)]
    return pd.DataFrame(out, index=X.index)[columns]
