"""Plots of a scoring run, drawn from the scoring output frame (one row per customer, the columns of
`custval.scoring.batch`): value at risk by decile of churn probability, the profit curve of a ranked list, a
list's composition by segment against the whole base, and the segment pyramid (customers and value per tier).

The tables behind the first, third and fourth plots are public functions of the same name without `plot_`, so
the report and the tests read the drawn numbers. A column a plot needs and the frame lacks (its model was not
configured) is a SchemaError naming the column. Each plot function returns its Axes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from custval.errors import ConfigError, DataError, SchemaError
from custval.features.rfm_scores import levels_reached, quantile_cuts
from custval.features.validation import require_columns
from custval.metrics.ranking import profit_curve
from custval.plots._axes import get_ax, percent_axes
from custval.plots.uplift import plot_profit_curve

__all__ = ["list_composition", "plot_list_composition", "plot_list_profit_curve", "plot_segment_pyramid",
           "plot_value_at_risk_by_decile", "segment_pyramid", "value_at_risk_by_decile"]

TABLE = "scores"
MISSING = "(missing)"


def _count(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ConfigError(f"{name}: must be a positive integer, got {value!r}")
    return int(value)


def _numbers(scores: pd.DataFrame, column: str) -> np.ndarray:
    """The column as float64 (missing -> NaN); text is refused, naming the column."""
    require_columns(scores, [column], TABLE)
    values = scores[column]
    if not (pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype)):
        raise SchemaError(TABLE, column, "must be numbers", values.dropna().iloc[0] if values.notna().any() else None)
    return values.to_numpy(dtype="float64", na_value=np.nan)


def _labels(scores: pd.DataFrame, column: str) -> tuple[pd.Series, list | None]:
    """The segment labels as text (missing -> "(missing)") and, for a categorical column, its categories."""
    require_columns(scores, [column], TABLE)
    values = scores[column]
    categories = list(values.cat.categories) if isinstance(values.dtype, pd.CategoricalDtype) else None
    labels = values.astype(object).where(values.notna(), MISSING).astype(str)
    if categories is not None:
        categories = [str(c) for c in categories] + ([MISSING] if (labels == MISSING).any() else [])
    return labels, categories


# ----------------------------------------------------------------------------------- value at risk by decile
def value_at_risk_by_decile(scores: pd.DataFrame, *, bins: int = 10) -> pd.DataFrame:
    """Value at risk (churn probability x CLV) per decile of churn probability, decile 1 the most likely to churn.

    Deciles of churn probability, not of value at risk: binned by value at risk, the bars would only restate
    the sort; binned by churn probability they show whether the likeliest churners carry the value (often they
    do not: customers silent for months have churn probability near 1 and little CLV left), which is why the
    retention list is ranked by value, not by churn probability. A customer is in decile j when the share of
    customers with a strictly higher churn probability is in [(j-1)/bins, j/bins): ties share a decile (as RFM
    scores do), so the bins need no sort order and may be uneven when many customers tie. Customers without a
    churn probability (outside the churn model's population) are left out.

    Columns: customers, churn_probability (mean), value_at_risk (sum), share (of the total value at risk);
    index `decile` 1..bins (empty deciles have 0 customers).
    """
    bins = _count(bins, "bins")
    p = _numbers(scores, "churn_probability")
    risk = _numbers(scores, "value_at_risk")
    scored = np.isfinite(p)
    if not scored.any():
        raise DataError(TABLE, "churn_probability", "has no customer with a churn probability (all missing)")
    p, risk = p[scored], np.nan_to_num(risk[scored])
    decile = 1 + levels_reached(-p, quantile_cuts(p.size, bins))  # 1 + floor(bins * strictly_below(-p) / n)
    frame = pd.DataFrame({"decile": decile, "churn_probability": p, "value_at_risk": risk})
    table = frame.groupby("decile").agg(customers=("churn_probability", "size"),
                                        churn_probability=("churn_probability", "mean"),
                                        value_at_risk=("value_at_risk", "sum"))
    table = table.reindex(pd.RangeIndex(1, bins + 1, name="decile"))
    table["customers"] = table["customers"].fillna(0).astype(np.int64)
    table["value_at_risk"] = table["value_at_risk"].fillna(0.0)
    total = table["value_at_risk"].sum()
    table["share"] = table["value_at_risk"] / total if total > 0 else np.nan
    return table


def plot_value_at_risk_by_decile(scores: pd.DataFrame, *, bins: int = 10, ax=None):
    """Bars of the total value at risk per decile of churn probability (`value_at_risk_by_decile`), each
    labelled with its share of the total and the decile's mean churn probability."""
    table = value_at_risk_by_decile(scores, bins=bins)
    ax = get_ax(ax)
    positions = np.arange(len(table))
    bars = ax.bar(positions, table["value_at_risk"].to_numpy(), color="tab:red")
    for bar, share, p in zip(bars, table["share"], table["churn_probability"], strict=True):
        if np.isfinite(share):
            ax.annotate(f"{share:.0%}\np={p:.2f}" if np.isfinite(p) else f"{share:.0%}",
                        (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom",
                        fontsize=7)
    ax.margins(y=0.15)  # room for the labels above the bars
    ax.set_xticks(positions, [str(d) for d in table.index])
    ax.set_xlabel("decile of churn probability (1 = most likely to churn)")
    ax.set_ylabel("value at risk (churn probability x CLV)")
    ax.set_title("Value at risk by decile of churn probability")
    return ax


# ------------------------------------------------------------------------------------------------ profit curve
def plot_list_profit_curve(scores: pd.DataFrame, *, priority: str = "retention_priority", shares: int = 100,
                           ax=None):
    """Cumulative expected profit vs the share of the list's eligible customers contacted, highest `priority`
    first (`custval.metrics.ranking.profit_curve` at `shares` + 1 points, drawn by `plot_profit_curve`).

    Eligible customers are those with a priority (retention: not lapsed; win-back: lapsed); the curve rises
    while the priority is positive and peaks where the ranked list ends.
    """
    values = _numbers(scores, priority)
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise DataError(TABLE, priority, "has no customer with a priority (all missing)")
    curve = profit_curve(values, shares=shares)
    ax = plot_profit_curve(curve["share"], curve["expected_profit"], ax=ax)
    ax.set_xlabel(f"eligible customers contacted (highest {priority} first)")
    ax.set_ylabel("expected profit")
    ax.set_title(f"Profit curve of {priority.removesuffix('_priority')} ({values.size:,} eligible)")
    return ax


# ------------------------------------------------------------------------------------------- list composition
def list_composition(scores: pd.DataFrame, *, rank: str = "retention_rank", segment: str = "tier",
                     top: int = 100) -> pd.DataFrame:
    """Share of each segment among the first `top` customers of a ranked list (rank 1..top; the whole list
    when it is shorter) and in the whole base (every row of `scores`).

    Columns: top_customers, top_share, base_customers, base_share; index the segment, in the column's category
    order when it is categorical, else by base share (largest first, then by name); missing labels are
    "(missing)".
    """
    top = _count(top, "top")
    ranks = _numbers(scores, rank)
    labels, categories = _labels(scores, segment)
    in_top = np.isfinite(ranks) & (ranks <= top)
    if not in_top.any():
        raise DataError(TABLE, rank, "has no ranked customer (the list is empty)")
    base = labels.value_counts()
    head = labels[in_top].value_counts()
    order = categories if categories is not None else \
        sorted(base.index, key=lambda label: (-base[label], label))
    table = pd.DataFrame({"top_customers": head.reindex(order, fill_value=0),
                          "base_customers": base.reindex(order, fill_value=0)})
    table.index.name = segment
    table["top_share"] = table["top_customers"] / table["top_customers"].sum()
    table["base_share"] = table["base_customers"] / table["base_customers"].sum()
    return table[["top_customers", "top_share", "base_customers", "base_share"]]


def plot_list_composition(scores: pd.DataFrame, *, rank: str = "retention_rank", segment: str = "tier",
                          top: int = 100, ax=None):
    """Horizontal bars per segment: its share of the list's top (`list_composition`) beside its share of the
    whole base; a segment over-represented at the top has the longer first bar."""
    table = list_composition(scores, rank=rank, segment=segment, top=top)
    n_top, name = int(table["top_customers"].sum()), rank.removesuffix("_rank")
    ax = get_ax(ax)
    _paired_bars(ax, table.index, (table["top_share"], "tab:blue", f"top {n_top:,} of {name}"),
                 (table["base_share"], "tab:grey", f"all {int(table['base_customers'].sum()):,} customers"))
    ax.set_xlabel("share of customers")
    ax.set_title(f"{segment}: top {n_top:,} of {name} vs all")
    ax.legend(loc="best", fontsize=8)
    return ax


def _paired_bars(ax, labels, upper, lower):
    """Two horizontal bars per label, the first label on top; `upper` / `lower` are (shares, colour, legend)."""
    y = np.arange(len(labels))[::-1]
    height = 0.4
    bars = [ax.barh(y + offset, np.asarray(shares, dtype=float), height=height, color=colour, label=legend)
            for offset, (shares, colour, legend) in ((height / 2, upper), (-height / 2, lower))]
    ax.set_yticks(y, [str(label) for label in labels])
    percent_axes(ax, y=False)
    return bars


# --------------------------------------------------------------------------------------------- segment pyramid
def segment_pyramid(scores: pd.DataFrame, *, segment: str = "tier", value: str = "clv") -> pd.DataFrame:
    """Customers and total `value` per segment, top segment first.

    The top comes first: an ordered categorical (as `value_tiers` gives, lowest tier first) is read from its
    last category down; other columns (tiers read back from CSV as text) are ordered by mean value, highest
    first, which for CLV tiers is the same order. Columns: customers, customer_share, value, value_share.
    """
    labels, categories = _labels(scores, segment)
    amounts = np.nan_to_num(_numbers(scores, value))
    frame = pd.DataFrame({"segment": labels.to_numpy(), "value": amounts})
    table = frame.groupby("segment").agg(customers=("value", "size"), value=("value", "sum"),
                                         mean=("value", "mean"))
    ordered = categories is not None and scores[segment].cat.ordered
    if ordered:
        order = [c for c in categories if c != MISSING][::-1] + ([MISSING] if MISSING in categories else [])
        table = table.reindex(order).fillna({"customers": 0, "value": 0.0})
    else:
        table = table.sort_values(["mean"], ascending=False, kind="mergesort")
    total = table["value"].sum()
    if not total > 0:
        raise DataError(TABLE, value, "must have a positive total to share it across segments", float(total))
    table.index.name = segment
    table["customers"] = table["customers"].astype(np.int64)
    table["customer_share"] = table["customers"] / table["customers"].sum()
    table["value_share"] = table["value"] / total
    return table[["customers", "customer_share", "value", "value_share"]]


def plot_segment_pyramid(scores: pd.DataFrame, *, segment: str = "tier", value: str = "clv", ax=None):
    """Horizontal bars from the top segment (at the top) down: each segment's share of the customers and its
    share of the total `value` (`segment_pyramid`), labelled with the counts and amounts."""
    table = segment_pyramid(scores, segment=segment, value=value)
    ax = get_ax(ax)
    customers, values = _paired_bars(ax, table.index, (table["customer_share"], "tab:grey", "share of customers"),
                                     (table["value_share"], "tab:green", f"share of {value}"))
    for bars, labels in ((customers, [f" {n:,}" for n in table["customers"]]),
                         (values, [f" {amount:,.0f}" for amount in table["value"]])):
        for bar, label in zip(bars, labels, strict=True):
            ax.annotate(label, (bar.get_width(), bar.get_y() + bar.get_height() / 2), va="center", fontsize=7)
    ax.set_xlabel("share")
    ax.set_title(f"Segment pyramid: customers and {value} per {segment}")
    ax.legend(loc="best", fontsize=8)
    return ax
