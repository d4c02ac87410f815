"""Customer-value segments over customer-level frames: CLV tiers (a pyramid, e.g. lead/iron/gold/platinum),
the value x loyalty matrix (golden / at risk / do not over-serve / marginal), the purchase-cycle x spend grid
(platinum, gold, silver, develop, optimise), Pareto concentration, lifecycle stages (new, active, at risk,
lapsed) and customer-loss value. `segment_customers` puts all of them, with the RFM scores, on one row per
customer; `segment_summary` aggregates.

Customer-level frames follow the RFM summary contract: ``frequency`` (repeat purchase days), ``recency``
(first to last purchase, model periods), ``T`` (first purchase to observation end), ``monetary_value``,
optionally ``clv``, ``p_alive``, ``revenue``. Time since the last purchase is ``T - recency``; the average
inter-purchase time of a repeat buyer is ``recency / frequency`` (same periods, so ratios are unit-free).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from custval.config import DEFAULT_GRID, DEFAULT_TIER_CUTS, DEFAULT_TIER_NAMES, SegmentConfig
from custval.errors import ConfigError, DataError
from custval.features.rfm import rfm_summary
from custval.features.rfm_scores import RFM_COLUMNS, levels_reached, rfm_scores, rfm_table
from custval.features.validation import (
    check_not_one_group,
    check_positive,
    check_share,
    check_variation,
    numeric_values,
    require_columns,
)

__all__ = ["DEFAULT_GRID", "DEFAULT_TIER_CUTS", "DEFAULT_TIER_NAMES", "GRID_CLASSES", "QUADRANTS", "STAGES",
           "SegmentConfig", "check_scorable", "check_segment_config", "check_stages", "check_tiers", "customer_loss_value", "customer_summary", "interpurchase_time", "lifecycle_stage", "pareto_curve",
           "pareto_table", "purchase_cycle_grid", "segment_customers", "segment_metrics", "segment_summary", "share_counts", "top_share",
           "value_loyalty_matrix", "value_tiers"]

QUADRANTS = ("golden", "at risk", "do not over-serve", "marginal")
GRID_CLASSES = ("platinum", "gold", "silver", "develop", "optimise")
STAGES = ("new", "active", "at risk", "lapsed")
_AUTO = "auto"


def _index_of(values, n: int) -> pd.Index:
    return values.index if isinstance(values, pd.Series) else pd.RangeIndex(n)


# ----------------------------------------------------------------------------------------- value segments
def check_tiers(cuts, names) -> tuple[np.ndarray, tuple]:
    """The tier settings of `value_tiers` (SegmentConfig.tier_cuts / tier_names): cuts are strictly increasing
    shares in (0, 1); names are one more than cuts, distinct, lowest tier first."""
    cuts_arr = np.asarray(cuts, dtype=float)
    if cuts_arr.ndim != 1 or cuts_arr.size == 0 or np.any(~np.isfinite(cuts_arr)) or np.any(cuts_arr <= 0) \
            or np.any(cuts_arr >= 1) or np.any(np.diff(cuts_arr) <= 0):
        raise ConfigError(f"tier_cuts must be strictly increasing shares in (0, 1), got {list(np.ravel(cuts))}")
    names = tuple(names)
    if len(names) != cuts_arr.size + 1 or len(set(names)) != len(names):
        raise ConfigError(f"tier_names must be {cuts_arr.size + 1} distinct names for {cuts_arr.size} cuts "
                          f"(lowest tier first), got {list(names)}")
    return cuts_arr, names


def check_stages(*, new_within=None, at_risk_after: float = 2.0, lapsed_after: float = 4.0,
                 active_p_alive: float = 0.5, lapsed_p_alive: float = 0.2) -> None:
    """The settings of `lifecycle_stage` (new_within None = the median purchase cycle)."""
    if new_within is not None and (isinstance(new_within, bool) or not isinstance(new_within, int | float | np.number)
                                   or not np.isfinite(new_within) or new_within < 0):
        raise ConfigError(f"new_within must be a number of periods >= 0, got {new_within!r}")
    check_positive("at_risk_after", at_risk_after)
    if not check_positive("lapsed_after", lapsed_after) >= at_risk_after:
        raise ConfigError(f"lapsed_after must be >= at_risk_after ({at_risk_after}), got {lapsed_after!r}")
    check_share("active_p_alive", active_p_alive)
    if not check_share("lapsed_p_alive", lapsed_p_alive) <= active_p_alive:
        raise ConfigError(f"lapsed_p_alive must be <= active_p_alive ({active_p_alive}), got {lapsed_p_alive!r}")


def check_segment_config(config: SegmentConfig) -> SegmentConfig:
    """Every rule `segment_customers` applies to its settings, checked before any data is there: the tiers,
    the purchase-cycle grid's thresholds and the lifecycle stages. Messages start with the setting's name."""
    check_tiers(config.tier_cuts, config.tier_names)
    for name in ("cycle_thresholds", "spend_thresholds"):
        if getattr(config, name) is not None:
            _grid_thresholds(name, getattr(config, name), np.empty(0))
    check_stages(new_within=config.new_within, at_risk_after=config.at_risk_after,
                 lapsed_after=config.lapsed_after, active_p_alive=config.active_p_alive,
                 lapsed_p_alive=config.lapsed_p_alive)
    return config


def share_counts(shares, n: int) -> np.ndarray:
    """The least count c with c / n >= share, per share (as compared in floating point): b / n >= share
    exactly when b >= c."""
    shares = np.asarray(shares, dtype=float)
    c = np.ceil(shares * n).astype(np.int64)
    c = np.where((c - 1) / n >= shares, c - 1, c)
    return np.where(c / n < shares, c + 1, c)


def value_tiers(values, *, cuts: Sequence[float] = DEFAULT_TIER_CUTS,
                names: Sequence[str] = DEFAULT_TIER_NAMES, column: str = "clv") -> pd.Series:
    """Customer pyramid by CLV quantiles: with cuts (0.5, 0.8, 0.95) the bottom 50% are "lead", the next 30%
    "iron", the next 15% "gold", the top 5% "platinum". A customer is in tier j when the share of customers
    with strictly lower value is >= cuts[j-1] (ties share a tier, as in RFM scoring). Ordered categorical.
    """
    cuts_arr, names = check_tiers(cuts, names)
    x = numeric_values(values, "customers", column)
    check_variation(x, "customers", column, "tier")
    codes = levels_reached(x, share_counts(cuts_arr, x.size))  # = #cuts <= strictly_below(x) / n
    check_not_one_group(codes, x, "customers", column, "tier")
    return pd.Series(pd.Categorical.from_codes(codes, categories=list(names), ordered=True),
                     index=_index_of(values, x.size), name="tier")


def value_loyalty_matrix(clv, loyalty, *, value_threshold: float | None = None, value_quantile: float = 0.5,
                         loyalty_threshold: float = 0.5, loyalty_column: str = "p_alive") -> pd.Series:
    """Value x loyalty quadrant per customer.

    High value: clv >= value_threshold (default: the `value_quantile` quantile of clv, i.e. the median).
    High loyalty: P(alive) (or retention probability) >= loyalty_threshold. Quadrants:
    high & high = "golden"; high value & low loyalty = "at risk"; low value & high loyalty = "do not
    over-serve"; low & low = "marginal".
    """
    v = numeric_values(clv, "customers", "clv")
    p = numeric_values(loyalty, "customers", loyalty_column)
    if v.size != p.size:
        raise DataError("customers", loyalty_column, f"must have one value per customer ({v.size}), got "
                        f"{p.size}")
    outside = (p < 0) | (p > 1)
    if outside.any():
        raise DataError("customers", loyalty_column, "must be a probability in [0, 1]", float(p[outside][0]))
    threshold = (float(np.quantile(v, check_share("value_quantile", value_quantile)))
                 if value_threshold is None else float(value_threshold))
    if not np.isfinite(threshold):
        raise ConfigError(f"value_threshold: must be finite, got {value_threshold!r}")
    check_share("loyalty_threshold", loyalty_threshold)
    high_value = v >= threshold
    high_loyalty = p >= loyalty_threshold
    codes = np.where(high_value, np.where(high_loyalty, 0, 1), np.where(high_loyalty, 2, 3))
    return pd.Series(pd.Categorical.from_codes(codes, categories=list(QUADRANTS)),
                     index=_index_of(clv, v.size), name="value_loyalty")


def _grid_thresholds(name: str, given, reference: np.ndarray) -> np.ndarray:
    if given is None:
        return np.quantile(reference, [1 / 3, 2 / 3])
    t = np.asarray(given, dtype=float)
    if t.shape != (2,) or np.any(~np.isfinite(t)) or t[0] > t[1]:
        raise ConfigError(f"{name} must be two increasing numbers (lower, upper), got {list(np.ravel(given))}")
    return t


def purchase_cycle_grid(interpurchase_time, order_value, *, cycle_thresholds=None, spend_thresholds=None,
                        grid: Sequence[Sequence[str]] = DEFAULT_GRID) -> pd.Series:
    """Purchase cycle x spend class per customer.

    Cycle (average inter-purchase time): short if <= t1, medium if <= t2, long otherwise; customers with no
    repeat purchase (NaN time) count as long. Spend (average order value): high if >= s2, medium if >= s1,
    low otherwise. Default thresholds are the tertiles over repeat buyers (whose cycle and spend are both
    observed). Default grid (rows short/medium/long cycle, columns high/medium/low spend)::

                    high      medium    low
        short       platinum  gold      develop
        medium      gold      silver    develop
        long        silver    optimise  optimise

    "develop": buy often but little, grow the basket; "optimise": seldom and not much, serve at low cost.
    """
    ipt = numeric_values(interpurchase_time, "customers", "interpurchase_time", allow_nan=True)
    aov = numeric_values(order_value, "customers", "order_value")
    if ipt.size != aov.size:
        raise DataError("customers", "order_value", f"must have one value per customer ({ipt.size}), got "
                        f"{aov.size}")
    nonpositive = ipt <= 0
    if nonpositive.any():
        raise DataError("customers", "interpurchase_time", "must be positive (NaN for one-time buyers)",
                        float(ipt[nonpositive][0]))
    repeat = ~np.isnan(ipt)
    if not repeat.any() and (cycle_thresholds is None or spend_thresholds is None):
        raise DataError("customers", "interpurchase_time", "has no repeat buyer to set the grid thresholds "
                        "from; pass cycle_thresholds and spend_thresholds", float(ipt[0]))
    t = _grid_thresholds("cycle_thresholds", cycle_thresholds, ipt[repeat])
    s = _grid_thresholds("spend_thresholds", spend_thresholds, aov[repeat])
    names = np.asarray(grid, dtype=object)
    if names.shape != (3, 3):
        raise ConfigError(f"grid: must be 3 rows (short, medium, long cycle) of 3 names (high, medium, low "
                          f"spend), got {grid!r}")
    row = np.where(~repeat, 2, np.searchsorted(t, np.where(repeat, ipt, 0.0), side="left"))
    col = 2 - np.searchsorted(s, aov, side="right")
    used = set(names.ravel())
    categories = [c for c in dict.fromkeys(GRID_CLASSES + tuple(names.ravel())) if c in used]
    code_grid = np.array([[categories.index(name) for name in r] for r in names], dtype=np.int64)
    return pd.Series(pd.Categorical.from_codes(code_grid[row, col], categories=categories),
                     index=_index_of(order_value, aov.size), name="cycle_class")


def pareto_curve(values, *, column: str = "value") -> pd.DataFrame:
    """Concentration curve: customers sorted by value (largest first); row k gives the share of customers
    k/n and the share of the total they hold. Starts at (0, 0), ends at (1, 1). Values must be >= 0."""
    x = numeric_values(values, "customers", column)
    negative = x < 0
    if negative.any():
        raise DataError("customers", column, "must be >= 0 for a concentration curve (clip returns first)",
                        float(x[negative][0]))
    total = x.sum()
    if total <= 0:
        raise DataError("customers", column, "must have a positive total", float(total))
    n = x.size
    cum = np.concatenate([[0.0], np.cumsum(np.sort(x)[::-1])]) / total
    return pd.DataFrame({"customer_share": np.arange(n + 1) / n, "value_share": np.minimum(cum, 1.0)})


def top_share(values, top: float = 0.2, *, column: str = "value") -> float:
    """Share of the total held by the top `top` fraction of customers (linear between whole customers)."""
    top = check_share("top", top)
    curve = pareto_curve(values, column=column)
    return float(np.interp(top, curve["customer_share"], curve["value_share"]))


def pareto_table(frame: pd.DataFrame, columns: Sequence[str] = ("revenue", "clv"),
                 tops: Sequence[float] = (0.01, 0.05, 0.1, 0.2, 0.5)) -> pd.DataFrame:
    """Share of each column (e.g. revenue, CLV) held by the top x% of customers; one row per x."""
    require_columns(frame, list(columns), "customers")
    data = {c: [top_share(frame[c], t, column=c) for t in tops] for c in columns}
    return pd.DataFrame(data, index=pd.Index(list(tops), name="top_share_of_customers"))


# ------------------------------------------------------------------------------------------------ lifecycle
def _summary_arrays(frame: pd.DataFrame, table: str = "customers") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    require_columns(frame, ["frequency", "recency", "T"], table)
    freq = numeric_values(frame["frequency"], table, "frequency")
    rec = numeric_values(frame["recency"], table, "recency")
    age = numeric_values(frame["T"], table, "T")
    for name, arr, bad in (("frequency", freq, freq < 0), ("recency", rec, rec < 0),
                           ("recency", rec, rec > age), ("recency", rec, (freq > 0) & (rec <= 0))):
        if bad.any():
            rule = {"frequency": "must be >= 0"}.get(name, "must be in [0, T], and > 0 for repeat buyers")
            raise DataError(table, name, rule, float(arr[bad][0]))
    return freq, rec, age


def interpurchase_time(frame: pd.DataFrame) -> pd.Series:
    """Average time between purchases, recency / frequency (model periods); NaN for one-time buyers."""
    freq, rec, _ = _summary_arrays(frame)
    ipt = np.divide(rec, freq, out=np.full(freq.size, np.nan), where=freq > 0)
    return pd.Series(ipt, index=frame.index, name="interpurchase_time")


def lifecycle_stage(frame: pd.DataFrame, *, method: str = "cycle", new_within: float | None = None,
                    at_risk_after: float = 2.0, lapsed_after: float = 4.0, active_p_alive: float = 0.5,
                    lapsed_p_alive: float = 0.2, p_alive: str = "p_alive") -> pd.Series:
    """new / active / at risk / lapsed per customer (ordered categorical).

    new: first purchase within `new_within` periods of the observation end (T <= new_within; default one
    typical purchase cycle, the median inter-purchase time of repeat buyers). Otherwise
    method="cycle": gap = T - recency (time since the last purchase) over the customer's own cycle
    (recency / frequency; the population median for one-time buyers): active if gap <= at_risk_after
    cycles, at risk if <= lapsed_after cycles, lapsed beyond. For a Poisson buyer the chance of such a gap
    while still alive is e^-2 = 14% and e^-4 = 2% at the defaults.
    method="p_alive": active if P(alive) >= active_p_alive, at risk if >= lapsed_p_alive, else lapsed.
    """
    if method not in ("cycle", "p_alive"):
        raise ConfigError(f"method: must be 'cycle' or 'p_alive', got {method!r}")
    freq, rec, age = _summary_arrays(frame)
    repeat = freq > 0
    cycle = np.divide(rec, freq, out=np.full(freq.size, np.nan), where=repeat)
    needs_median = new_within is None or (method == "cycle" and not repeat.all())
    if needs_median and not repeat.any():
        raise DataError("customers", "frequency", "has no repeat buyer to define a typical purchase cycle; "
                        "pass new_within (and use method='p_alive')", 0.0)
    median_cycle = float(np.median(cycle[repeat])) if repeat.any() else np.nan
    check_stages(new_within=new_within, at_risk_after=at_risk_after if method == "cycle" else 2.0,
                 lapsed_after=lapsed_after if method == "cycle" else 4.0,
                 active_p_alive=active_p_alive if method == "p_alive" else 0.5,
                 lapsed_p_alive=lapsed_p_alive if method == "p_alive" else 0.2)
    new_within = median_cycle if new_within is None else new_within
    if method == "cycle":
        ratio = (age - rec) / np.where(repeat, cycle, median_cycle)
        code = np.where(ratio <= at_risk_after, 1, np.where(ratio <= lapsed_after, 2, 3))
    else:
        require_columns(frame, [p_alive], "customers")
        prob = numeric_values(frame[p_alive], "customers", p_alive)
        outside = (prob < 0) | (prob > 1)
        if outside.any():
            raise DataError("customers", p_alive, "must be a probability in [0, 1]", float(prob[outside][0]))
        code = np.where(prob >= active_p_alive, 1, np.where(prob >= lapsed_p_alive, 2, 3))
    code = np.where(age <= new_within, 0, code)
    return pd.Series(pd.Categorical.from_codes(code, categories=list(STAGES), ordered=True),
                     index=frame.index, name="lifecycle_stage")


def customer_loss_value(before: pd.DataFrame, after: pd.DataFrame, *, clv: str = "clv",
                        stage: str = "lifecycle_stage", from_stages: Sequence[str] = ("active",),
                        to_stage: str = "lapsed") -> pd.Series:
    """CLV forgone per customer: the CLV in `before` of customers whose stage went from `from_stages`
    (default active) to `to_stage` (lapsed) in `after`; 0 for everyone else. `.sum()` is the total loss."""
    require_columns(before, [clv, stage], "before")
    require_columns(after, [stage], "after")
    missing = before.index.difference(after.index)
    if len(missing):
        raise DataError("after", "customer_id", "must contain every customer of `before`", missing[0])
    value = numeric_values(before[clv], "before", clv)
    lost = before[stage].isin(list(from_stages)).to_numpy() & \
        (after[stage].reindex(before.index) == to_stage).to_numpy(dtype=bool, na_value=False)
    return pd.Series(np.where(lost, value, 0.0), index=before.index, name="loss_value")


# ------------------------------------------------------------------------------------ one row per customer
def segment_customers(customers: pd.DataFrame, config: SegmentConfig | None = None,
                      **overrides) -> pd.DataFrame:
    """All segment columns for a customer-level frame (RFM summary columns, optionally clv, p_alive).

    Adds: time_since_last (T - recency), interpurchase_time, r/f/m scores (R on time since last purchase,
    F on frequency, M on `config.monetary`), rfm_cell, rfm_score, cycle_class, lifecycle_stage; with `clv`:
    tier and loss_value (the CLV forgone if the customer lapses now; 0 once lapsed); with `clv` and the
    loyalty column: value_loyalty. Input columns are kept; one row per customer, same index.
    """
    config = config or SegmentConfig()
    if overrides:  # validated like a config file's `segments:` (types, ranges)
        unknown = set(overrides) - set(SegmentConfig.model_fields)
        if unknown:
            raise ConfigError(f"unknown segment setting(s) {sorted(unknown)}; known: {list(SegmentConfig.model_fields)}")
        config = SegmentConfig(**{**config.model_dump(), **overrides})
    require_columns(customers, ["frequency", "recency", "T", config.monetary], "customers")
    if customers.index.has_duplicates:
        raise DataError("customers", "customer_id", "must be unique (one row per customer)",
                        customers.index[customers.index.duplicated()][0])
    freq, rec, age = _summary_arrays(customers)
    out = customers.copy()
    out["time_since_last"] = age - rec
    out["interpurchase_time"] = interpurchase_time(customers).to_numpy()
    scores = rfm_scores(out, recency="time_since_last", frequency="frequency", monetary=config.monetary,
                        bins=config.bins, ties=config.ties, weights=config.rfm_weights)
    out[list(RFM_COLUMNS)] = scores
    out["cycle_class"] = purchase_cycle_grid(out["interpurchase_time"], out[config.monetary],
                                             cycle_thresholds=config.cycle_thresholds,
                                             spend_thresholds=config.spend_thresholds, grid=config.grid)
    method = config.lifecycle_method
    if method == _AUTO:
        method = "p_alive" if "p_alive" in customers.columns else "cycle"
    out["lifecycle_stage"] = lifecycle_stage(
        customers, method=method, new_within=config.new_within, at_risk_after=config.at_risk_after,
        lapsed_after=config.lapsed_after, active_p_alive=config.active_p_alive,
        lapsed_p_alive=config.lapsed_p_alive)
    if "clv" in customers.columns:
        out["tier"] = value_tiers(customers["clv"], cuts=config.tier_cuts, names=config.tier_names)
        clv = numeric_values(customers["clv"], "customers", "clv")
        out["loss_value"] = np.where(out["lifecycle_stage"].to_numpy() == "lapsed", 0.0, clv)
        if config.loyalty in customers.columns:
            out["value_loyalty"] = value_loyalty_matrix(
                customers["clv"], customers[config.loyalty], value_threshold=config.value_threshold,
                value_quantile=config.value_quantile, loyalty_threshold=config.loyalty_threshold,
                loyalty_column=config.loyalty)
    return out


def segment_summary(frame: pd.DataFrame, by: str | Sequence[str], *, revenue: str | None = _AUTO,
                    clv: str | None = _AUTO) -> pd.DataFrame:
    """Per segment: customers and their share; total revenue and its share; mean and total CLV and its share.

    revenue/clv name the columns; "auto" uses "revenue"/"clv" when present and skips them otherwise; None
    skips. A named column that is missing is an error.
    """
    keys = [by] if isinstance(by, str) else list(by)
    require_columns(frame, keys, "customers")
    wanted = {}
    for role, column in (("revenue", revenue), ("clv", clv)):
        if column == _AUTO:
            if role in frame.columns:
                wanted[role] = role
        elif column is not None:
            require_columns(frame, [column], "customers")
            wanted[role] = column
    data = frame[keys].copy()
    for role, column in wanted.items():
        data[role] = numeric_values(frame[column], "customers", column)
    grouped = data.groupby(keys, observed=True, sort=True)
    out = pd.DataFrame({"customers": grouped.size()})
    out["customer_share"] = out["customers"] / len(frame)
    if "revenue" in wanted:
        out["revenue"] = grouped["revenue"].sum()
        out["revenue_share"] = out["revenue"] / data["revenue"].sum()
    if "clv" in wanted:
        out["mean_clv"] = grouped["clv"].mean()
        out["total_clv"] = grouped["clv"].sum()
        out["clv_share"] = out["total_clv"] / data["clv"].sum()
    return out


# ------------------------------------------------------------------------------------ the segmented base
def customer_summary(transactions: pd.DataFrame, as_of, period: str) -> pd.DataFrame:
    """One row per customer through `as_of`: the RFM summary in model periods (frequency, recency, T,
    monetary_value) and the classic inputs purchases (purchase days), revenue (total spend), recency_days."""
    rfm = rfm_summary(transactions, as_of, period=period)[["frequency", "recency", "T", "monetary_value"]]
    classic = rfm_table(transactions, as_of=as_of).rename(columns={"frequency": "purchases", "monetary": "revenue"})
    if len(classic) != len(rfm) or not classic.index.isin(rfm.index).all():  # pragma: no cover - same definitions
        raise DataError("customers", "customer_id", "RFM summary and RFM table disagree on the population")
    return rfm.join(classic[["purchases", "revenue", "recency_days"]])


def check_scorable(customers: pd.DataFrame, config: SegmentConfig) -> None:
    """Score R, F, M once, so that inputs RFM cannot score (an empty population, a column with every customer
    in one quantile) fail with that message before any model is fitted on them."""
    if config.monetary in customers.columns:
        frame = customers.assign(time_since_last=customers["T"] - customers["recency"])
        rfm_scores(frame, recency="time_since_last", frequency="frequency", monetary=config.monetary,
                   bins=config.bins, ties=config.ties, weights=config.rfm_weights)


def _metric_name(text: str) -> str:
    return re.sub(r"[^0-9A-Za-z_.-]+", "_", str(text)).strip("_")


def segment_metrics(customers: pd.DataFrame, *, n_transactions: int, tops=(0.2,)) -> dict[str, float]:
    """Headline numbers of a segmented base: sizes, revenue and CLV totals, the revenue and CLV shares of the
    top customers (the top 20% always), and customers and CLV per tier, value x loyalty quadrant and stage."""
    metrics = {
        "n_transactions": float(n_transactions),
        "n_customers": float(len(customers)),
        "total_revenue": float(customers["revenue"].sum()),
        "total_clv": float(customers["clv"].sum()),
        "mean_clv": float(customers["clv"].mean()),
        "mean_p_alive": float(customers["p_alive"].mean()),
    }
    for top in sorted(set(tops) | {0.2}):
        label = f"top{100 * top:g}"
        metrics[f"{label}_revenue_share"] = top_share(customers["revenue"], top, column="revenue")
        metrics[f"{label}_clv_share"] = top_share(customers["clv"], top, column="clv")
    for kind in ("tier", "value_loyalty", "lifecycle_stage"):
        if kind in customers.columns:
            counts = customers[kind].value_counts()
            clv = customers.groupby(kind, observed=False)["clv"].sum()
            for name in counts.index:
                metrics[_metric_name(f"customers_{kind}_{name}")] = float(counts[name])
                metrics[_metric_name(f"clv_{kind}_{name}")] = float(clv[name])
    return metrics
