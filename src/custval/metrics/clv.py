"""Holdout metrics for purchase models: how well predicted repeat purchases match what customers did."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import mean_absolute_error, root_mean_squared_error


def mae(y_true, y_pred) -> float:
    """Mean absolute error per customer."""
    return float(mean_absolute_error(y_true, y_pred))


def rmse(y_true, y_pred) -> float:
    return float(root_mean_squared_error(y_true, y_pred))


def total_relative_error(y_true, y_pred) -> float:
    """(sum predicted - sum actual) / sum actual: the aggregate forecast error a planner sees."""
    actual = float(np.sum(y_true))
    return float((np.sum(y_pred) - actual) / actual) if actual else float("nan")


def holdout_by_frequency(frequency_cal, y_true, y_pred, max_frequency: int = 7) -> pd.DataFrame:
    """Mean actual and predicted holdout purchases by calibration frequency 0..max, the last bin "max+"."""
    frequency = np.minimum(np.asarray(frequency_cal, dtype=float), max_frequency).astype(int)
    table = pd.DataFrame({"bin": frequency, "actual": np.asarray(y_true, float), "predicted": np.asarray(y_pred, float)})
    grouped = table.groupby("bin").agg(customers=("actual", "size"), actual=("actual", "mean"),
                                       predicted=("predicted", "mean"))
    grouped.index = [f"{b}+" if b == max_frequency else str(b) for b in grouped.index]
    grouped.index.name = "frequency_cal"
    return grouped


def holdout_metrics(y_true, y_pred) -> dict[str, float]:
    return {
        "holdout_actual_total": float(np.sum(y_true)),
        "holdout_predicted_total": float(np.sum(y_pred)),
        "holdout_total_rel_error": total_relative_error(y_true, y_pred),
        "holdout_mae": mae(y_true, y_pred),
        "holdout_rmse": rmse(y_true, y_pred),
    }
