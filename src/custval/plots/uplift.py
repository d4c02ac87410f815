"""Plots for uplift models: Qini and uplift curves with their random and perfect references, observed uplift by
decile, and incremental profit vs the share of customers contacted.

The plotted points are exactly the values of `custval.metrics.uplift` (qini_curve, perfect_qini_curve,
uplift_curve, uplift_by_decile, policy_value_curve). The x axis of the curves is the share of customers
targeted (n_targeted / n), the y axis the incremental responders (or amount). `uplift` is one array or a
mapping name -> array (one line per model). Each function returns its Axes.
"""

from __future__ import annotations

import numpy as np

from custval.errors import DataError
from custval.metrics.uplift import (
    perfect_qini_curve,
    perfect_uplift_curve,
    qini_auc_score,
    qini_curve,
    uplift_auc_score,
    uplift_by_decile,
    uplift_curve,
)
from custval.plots._axes import by_name, get_ax, percent_axes

__all__ = ["plot_profit_curve", "plot_qini", "plot_uplift_by_decile", "plot_uplift_curve"]


def _plot_curves(ax, curves: dict, perfect, score_name: str, title: str):
    n = float(perfect[0][-1])  # every curve ends at all n customers
    for name, ((x, y), score) in curves.items():
        ax.plot(x / n, y, label=f"{name} ({score_name} = {score:.3f})")
    x_perfect, y_perfect = perfect
    ax.plot([0.0, 1.0], [0.0, y_perfect[-1]], linestyle="--", color="grey", linewidth=1, label="random")
    ax.plot(np.asarray(x_perfect) / n, y_perfect, linestyle=":", color="black", linewidth=1, label="perfect")
    ax.axhline(0.0, color="black", linewidth=0.5)
    ax.set_xlim(0, 1)
    percent_axes(ax, y=False)
    ax.set_xlabel("customers targeted (highest predicted uplift first)")
    ax.set_ylabel("incremental responders")
    ax.set_title(title)
    ax.legend(loc="best")
    return ax


def plot_qini(y_true, uplift, treatment, *, negative_effect: bool = True, ax=None):
    """Qini curve per model (its Qini coefficient in the legend), the random line to the total incremental
    responders and the perfect Qini curve (`negative_effect` as in `qini_auc_score`)."""
    curves = {name: (qini_curve(y_true, u, treatment), qini_auc_score(y_true, u, treatment, negative_effect))
              for name, u in by_name(uplift).items()}
    perfect = perfect_qini_curve(y_true, treatment, negative_effect)
    return _plot_curves(get_ax(ax), curves, perfect, "Qini", "Qini curve")


def plot_uplift_curve(y_true, uplift, treatment, *, ax=None):
    """Uplift curve per model (its normalised AUUC in the legend), the random line and the perfect curve."""
    curves = {name: (uplift_curve(y_true, u, treatment), uplift_auc_score(y_true, u, treatment))
              for name, u in by_name(uplift).items()}
    perfect = perfect_uplift_curve(y_true, treatment)
    return _plot_curves(get_ax(ax), curves, perfect, "AUUC", "Uplift curve")


def plot_uplift_by_decile(y_true, uplift, treatment, *, bins: int = 10, strategy: str = "overall", ax=None):
    """Bars of the observed uplift per bin of predicted uplift (highest first) with +-1 standard error, the
    mean predicted uplift per bin as points, and the overall observed uplift as a dashed line."""
    table = uplift_by_decile(y_true, uplift, treatment, bins=bins, strategy=strategy)
    overall = uplift_by_decile(y_true, uplift, treatment, bins=1)["uplift"].iloc[0]
    ax = get_ax(ax)
    positions = np.arange(len(table))
    ax.bar(positions, table["uplift"].to_numpy(), yerr=table["std_uplift"].to_numpy(), color="tab:blue",
           capsize=3, label="observed uplift")
    ax.plot(positions, table["mean_predicted"].to_numpy(), "o", color="tab:orange", label="mean predicted")
    ax.axhline(overall, linestyle="--", color="grey", linewidth=1, label=f"overall ({overall:.3g})")
    ax.axhline(0.0, color="black", linewidth=0.5)
    ax.set_xticks(positions, table["percentile"].tolist(), rotation=45)
    ax.set_xlabel("percentile of predicted uplift (highest first)")
    ax.set_ylabel("treated - control response rate")
    ax.set_title("Uplift by decile" if bins == 10 else f"Uplift by bin ({bins} bins)")
    ax.legend(loc="best")
    return ax


def _series(values, name: str, n: int | None = None) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype="float64")
    except (TypeError, ValueError) as exc:
        raise DataError("plot", name, "must be numbers", None) from exc
    if arr.ndim != 1 or arr.size == 0:
        raise DataError("plot", name, "must be a non-empty one-dimensional array of numbers", None)
    if n is not None and arr.size != n:
        raise DataError("plot", name, f"must have the same length as share ({n} points)", f"{arr.size} points")
    if not np.isfinite(arr).all():
        raise DataError("plot", name, "must be finite numbers", float(arr[~np.isfinite(arr)][0]))
    return arr


def plot_profit_curve(share, profit, *, ci_low=None, ci_high=None, ax=None):
    """Incremental profit vs the share of customers contacted (e.g. `policy_value_curve`'s columns), its
    confidence band when `ci_low` and `ci_high` are given, and the best share marked."""
    x = _series(share, "share")
    y = _series(profit, "profit", x.size)
    ax = get_ax(ax)
    ax.plot(x, y, color="tab:blue", label="incremental profit")
    if ci_low is not None and ci_high is not None:
        ax.fill_between(x, _series(ci_low, "ci_low", x.size), _series(ci_high, "ci_high", x.size),
                        color="tab:blue", alpha=0.2, label="confidence interval")
    best = int(np.argmax(y))
    ax.plot([x[best]], [y[best]], "o", color="tab:red", label=f"best: {x[best]:.0%} contacted ({y[best]:.4g})")
    ax.axhline(0.0, color="black", linewidth=0.5)
    ax.set_xlim(0, 1)
    percent_axes(ax, y=False)
    ax.set_xlabel("customers contacted (highest predicted uplift first)")
    ax.set_ylabel("incremental profit")
    ax.set_title("Profit vs share contacted")
    ax.legend(loc="best")
    return ax
