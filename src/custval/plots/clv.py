"""CLV model plots."""

from __future__ import annotations

import numpy as np
import pandas as pd

from custval.plots._axes import get_ax


def plot_tracking(curve: pd.DataFrame, *, calibration_end=None, cumulative: bool = True, ax=None):
    """Actual vs expected repeat purchases over calendar time (a `tracking_curve` frame)."""
    ax = get_ax(ax)
    suffix = "_cumulative" if cumulative else ""
    ax.plot(curve["date"], curve[f"actual{suffix}"], label="actual", color="black")
    ax.plot(curve["date"], curve[f"expected{suffix}"], label="model", color="tab:blue", linestyle="--")
    if calibration_end is not None:
        ax.axvline(pd.Timestamp(calibration_end), color="grey", linestyle=":", label="end of calibration")
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.set_xlabel("date")
    ax.set_ylabel(("cumulative " if cumulative else "") + "repeat purchases")
    ax.set_title("Tracking: actual vs expected repeat purchases")
    ax.legend()
    return ax


def plot_calibration_holdout(by_frequency: pd.DataFrame, ax=None):
    """Mean holdout purchases by calibration frequency, actual vs predicted (a `holdout_by_frequency` frame)."""
    ax = get_ax(ax)
    x = np.arange(len(by_frequency))
    ax.plot(x, by_frequency["actual"], marker="o", label="actual", color="black")
    ax.plot(x, by_frequency["predicted"], marker="s", label="model", color="tab:blue", linestyle="--")
    ax.set_xticks(x, list(by_frequency.index))
    ax.set_xlabel("purchases in calibration period")
    ax.set_ylabel("mean purchases in holdout period")
    ax.set_title("Calibration vs holdout")
    ax.legend()
    return ax


def plot_clv_distribution(clv, ax=None, bins: int = 50):
    """Histogram of customer CLV (log-scaled counts, as CLV is heavily skewed)."""
    ax = get_ax(ax)
    ax.hist(np.asarray(clv, dtype=float), bins=bins, color="tab:green", log=True)
    ax.set_xlabel("CLV")
    ax.set_ylabel("customers (log scale)")
    ax.set_title("CLV distribution")
    return ax
