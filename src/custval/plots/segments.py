"""Segment plots: RFM heat map, Pareto concentration curve, customer-tier pyramid. Each returns its Axes;
matplotlib is imported lazily through `get_ax`."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from custval.errors import ConfigError, SchemaError
from custval.features.value_segments import pareto_curve
from custval.plots._axes import get_ax


def rfm_grid(frame: pd.DataFrame, *, rows: str = "r_score", cols: str = "f_score", value: str | None = None,
             bins: int = 5) -> np.ndarray:
    """bins x bins matrix: element [i, j] is the number of customers with rows == i+1 and cols == j+1, or,
    with `value`, their mean `value` (NaN for an empty cell)."""
    for column in [rows, cols] + ([value] if value else []):
        if column not in frame.columns:
            raise SchemaError("customers", column, f"required column is missing (columns: {list(frame.columns)})")
    r = frame[rows].to_numpy(dtype=np.int64) - 1
    c = frame[cols].to_numpy(dtype=np.int64) - 1
    if np.any((r < 0) | (r >= bins)) or np.any((c < 0) | (c >= bins)):
        raise ConfigError(f"{rows}/{cols}: scores must be integers 1..{bins}")
    counts = np.zeros((bins, bins))
    np.add.at(counts, (r, c), 1.0)
    if value is None:
        return counts
    sums = np.zeros((bins, bins))
    np.add.at(sums, (r, c), frame[value].to_numpy(dtype=float))
    return np.divide(sums, counts, out=np.full((bins, bins), np.nan), where=counts > 0)


def plot_rfm_heatmap(frame: pd.DataFrame, *, rows: str = "r_score", cols: str = "f_score",
                     value: str | None = None, bins: int = 5, annotate: bool = True, cmap: str = "viridis",
                     ax=None):
    """Heat map of RFM cells (default R rows x F columns), coloured by number of customers or by the mean of
    `value` (e.g. monetary). Score 1 is at the bottom/left, so the best customers sit top right."""
    grid = rfm_grid(frame, rows=rows, cols=cols, value=value, bins=bins)
    ax = get_ax(ax)
    image = ax.imshow(np.ma.masked_invalid(grid), origin="lower", cmap=cmap, aspect="auto")
    ticks = np.arange(bins)
    ax.set_xticks(ticks, [str(t + 1) for t in ticks])
    ax.set_yticks(ticks, [str(t + 1) for t in ticks])
    ax.set_xlabel(cols)
    ax.set_ylabel(rows)
    ax.set_title(f"mean {value} per cell" if value else "customers per cell")
    ax.figure.colorbar(image, ax=ax)
    if annotate:
        for (i, j), v in np.ndenumerate(grid):
            if np.isfinite(v):
                ax.text(j, i, f"{v:.0f}" if value is None else f"{v:.3g}", ha="center", va="center",
                        fontsize=8, color="white")
    return ax


def plot_pareto_curve(values, *, mark: float | None = 0.2, ax=None):
    """Concentration curve(s): share of customers (largest first) vs share of the total they hold, in %.

    `values` is one array/Series, or a mapping name -> values (e.g. {"revenue": ..., "clv": ...}) for one
    line each. The diagonal is the no-concentration reference; `mark` draws a guide at the top x%.
    """
    series = dict(values) if isinstance(values, Mapping) else {getattr(values, "name", None) or "value": values}
    if not series:
        raise ConfigError("values: give at least one series to plot")
    ax = get_ax(ax)
    for name, vals in series.items():
        curve = pareto_curve(vals, column=str(name))
        ax.plot(100 * curve["customer_share"].to_numpy(), 100 * curve["value_share"].to_numpy(), label=str(name))
    ax.plot([0, 100], [0, 100], linestyle="--", color="grey", linewidth=1, label="equal shares")
    if mark is not None:
        ax.axvline(100 * mark, color="black", linestyle=":", linewidth=1)
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 100)
    ax.set_xlabel("% of customers (highest value first)")
    ax.set_ylabel("% of total")
    ax.legend(loc="lower right")
    return ax


def plot_tier_pyramid(tiers, *, ax=None, color: str = "tab:blue"):
    """Customer pyramid: one centred horizontal bar per tier, lowest tier at the bottom, width = customers.

    `tiers` is the per-customer tier Series (categorical, lowest tier first, as from `value_tiers`) or
    already a count per tier (numeric Series indexed by tier, lowest first).
    """
    if isinstance(tiers, pd.Series) and pd.api.types.is_numeric_dtype(tiers.dtype) \
            and not isinstance(tiers.dtype, pd.CategoricalDtype):
        counts = tiers.astype(float)
    else:
        labels = tiers if isinstance(tiers, pd.Series) else pd.Series(tiers)
        if isinstance(labels.dtype, pd.CategoricalDtype):
            counts = labels.value_counts(sort=False).reindex(labels.cat.categories).astype(float)
        else:
            counts = labels.value_counts(sort=False).astype(float)
    if len(counts) == 0 or counts.sum() <= 0:
        raise ConfigError("tiers: need at least one customer in at least one tier")
    ax = get_ax(ax)
    y = np.arange(len(counts))
    widths = counts.to_numpy()
    bars = ax.barh(y, widths, left=-widths / 2, color=color, edgecolor="white", height=0.9)
    total = widths.sum()
    for bar, n in zip(bars, widths, strict=True):
        ax.text(0, bar.get_y() + bar.get_height() / 2, f"{n:.0f} ({100 * n / total:.1f}%)", ha="center",
                va="center", fontsize=8)
    ax.set_yticks(y, [str(t) for t in counts.index])
    ax.set_xticks([])
    ax.set_xlabel("customers")
    ax.set_title("customer tiers")
    return ax
