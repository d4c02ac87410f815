"""Plots for binary classifiers: cumulative gains, lift, ROC, calibration and feature importance.

`scores` / `probs` is one array (or Series) or a mapping name -> array, drawing one line per model on the
same axes so that models can be compared. The plotted points are exactly the tables of
`custval.metrics.classification` (gains_curve, roc_curve, calibration_table). Each function returns its
Axes; matplotlib is imported lazily through `get_ax`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from custval.errors import ConfigError, DataError, shown
from custval.metrics.classification import calibration_table, check_labels, gains_curve, roc_auc, roc_curve
from custval.plots._axes import by_name, get_ax, percent_axes

__all__ = ["plot_calibration", "plot_feature_importance", "plot_gains", "plot_lift", "plot_roc"]


def plot_gains(y_true, scores, *, n_points: int = 100, ax=None):
    """Cumulative gains: share of all positives captured (y) when targeting the top x of customers by score.

    One line per model, plus the random baseline (the diagonal) and the perfect model (all positives first:
    it reaches 100% at x = base rate)."""
    models = by_name(scores)
    base_rate = float(check_labels(y_true).mean())
    curves = {name: gains_curve(y_true, s, n_points=n_points) for name, s in models.items()}
    ax = get_ax(ax)
    for name, curve in curves.items():
        ax.plot(curve["fraction"].to_numpy(), curve["capture"].to_numpy(), label=name)
    ax.plot([0.0, 1.0], [0.0, 1.0], linestyle="--", color="grey", linewidth=1, label="random")
    ax.plot([0.0, base_rate, 1.0], [0.0, 1.0, 1.0], linestyle=":", color="black", linewidth=1, label="perfect")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    percent_axes(ax)
    ax.set_xlabel("customers targeted (highest score first)")
    ax.set_ylabel("positives captured")
    ax.set_title("Cumulative gains")
    ax.legend(loc="lower right")
    return ax


def plot_lift(y_true, scores, *, n_points: int = 100, ax=None):
    """Cumulative lift: positive rate in the top x of customers over the overall rate; 1 = random."""
    models = by_name(scores)
    curves = {name: gains_curve(y_true, s, n_points=n_points) for name, s in models.items()}
    ax = get_ax(ax)
    for name, curve in curves.items():
        ax.plot(curve["fraction"].to_numpy(), curve["lift"].to_numpy(), label=name)
    ax.axhline(1.0, linestyle="--", color="grey", linewidth=1, label="random")
    ax.set_xlim(0, 1)
    percent_axes(ax, y=False)
    ax.set_xlabel("customers targeted (highest score first)")
    ax.set_ylabel("lift")
    ax.set_title("Cumulative lift")
    ax.legend(loc="upper right")
    return ax


def plot_roc(y_true, scores, *, ax=None):
    """ROC curve per model, the AUC in its legend entry, and the chance diagonal."""
    models = by_name(scores)
    curves = {name: (roc_curve(y_true, s), roc_auc(y_true, s)) for name, s in models.items()}
    ax = get_ax(ax)
    for name, (curve, auc) in curves.items():
        ax.plot(curve["fpr"].to_numpy(), curve["tpr"].to_numpy(), label=f"{name} (AUC = {auc:.3f})")
    ax.plot([0.0, 1.0], [0.0, 1.0], linestyle="--", color="grey", linewidth=1, label="random (AUC = 0.500)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("ROC curve")
    ax.legend(loc="lower right")
    return ax


def plot_calibration(y_true, probs, *, n_bins: int = 10, strategy: str = "quantile", ax=None):
    """Reliability diagram: observed positive rate vs mean predicted probability per bin, one line per model,
    and the diagonal of perfect calibration."""
    models = by_name(probs)
    tables = {name: calibration_table(y_true, p, n_bins=n_bins, strategy=strategy) for name, p in models.items()}
    ax = get_ax(ax)
    for name, table in tables.items():
        ax.plot(table["mean_predicted"].to_numpy(), table["observed_rate"].to_numpy(), marker="o", label=name)
    ax.plot([0.0, 1.0], [0.0, 1.0], linestyle="--", color="grey", linewidth=1, label="perfectly calibrated")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel("observed rate")
    ax.set_title(f"Calibration ({n_bins} {strategy} bins)")
    ax.legend(loc="upper left")
    return ax


def plot_feature_importance(importances: pd.Series, top: int = 20, *, ax=None):
    """Horizontal bars of the `top` largest importances (by absolute value), the largest at the top."""
    if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or top < 1:
        raise ConfigError(f"top must be a positive integer, got {shown(top)}")
    if not isinstance(importances, pd.Series):
        raise DataError("importances", "*", "must be a pandas Series indexed by feature name",
                        type(importances).__name__)
    if importances.empty:
        raise DataError("importances", "*", "is empty (no features)")
    values = pd.to_numeric(importances, errors="coerce").astype("float64")
    bad = ~np.isfinite(values.to_numpy())
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError("importances", str(importances.index[i]), "must be a finite number", importances.iloc[i])
    order = np.argsort(-np.abs(values.to_numpy()), kind="stable")[: int(top)]
    chosen = values.iloc[order][::-1]  # barh draws bottom-up: largest last = at the top
    ax = get_ax(ax)
    ax.barh([str(k) for k in chosen.index], chosen.to_numpy(), color="tab:blue")
    ax.set_xlabel(str(importances.name) if importances.name else "importance")
    ax.set_title(f"Feature importance (top {len(chosen)})")
    return ax
