"""RFM scoring and customer-value segments: pure functions over transactions or customer-level frames.

What is here, and the rules each one follows:

* **RFM scores** (`quantile_scores`, `rfm_scores`, `rfm_table`, `period_rfm`, `rfm_migration`): recency,
  frequency and monetary scores 1..5 by quintiles of the scored population, 5 = best (most recent, most
  frequent, highest spend); the cell code ("555", "423", ...) and a combined score (weighted sum, 3..15 by
  default). Per-period RFM (e.g. half-years, as in the FedEx example) and the movement of customers between
  cells from one period to another.
* **Tie rule** (`ties="shared"`, the default): a score is a function of the value alone. A customer scores
  ``1 + floor(bins * b / n)`` where ``b`` is the number of scored customers with a strictly *worse* value
  and ``n`` the population size: score k means "strictly better than at least (k-1)/5 of the population but
  not k/5 of it". Without ties this is exactly equal-sized quintiles (n divisible by 5). With ties a whole
  tie block gets the lowest score its block reaches, so the usual majority at frequency 0 scores 1 (not an
  arbitrary mix of 1, 2, 3) and some scores may stay empty. ``ties="first"`` instead breaks ties by the
  customer id (ascending id = lower score) and gives equal-sized quintiles. A column with no variation at all
  (every customer in one quintile) is an error.
* **Test and rollout** (`systematic_sample`, `break_even_rate`, `break_even_index`, `rollout_plan`, ...):
  mail every k-th customer after sorting by cell, measure the response per cell, keep the cells whose
  break-even index BEI = (R - BE) / BE x 100 is >= 0 with BE = cost per contact / net profit per response.
* **Value segments**: CLV tiers (a pyramid, e.g. lead/iron/gold/platinum), the value x loyalty matrix
  (golden / at risk / do not over-serve / marginal), the purchase-cycle x spend grid (platinum, gold, silver,
  develop, optimise), Pareto concentration, lifecycle stages (new, active, at risk, lapsed) and customer-loss
  value. `segment_customers` puts all of them on one row per customer; `segment_summary` aggregates.

Customer-level frames follow the RFM summary contract: ``frequency`` (repeat purchase days), ``recency``
(first to last purchase, model periods), ``T`` (first purchase to observation end), ``monetary_value``,
optionally ``clv``, ``p_alive``, ``revenue``. Time since the last purchase is ``T - recency``; the average
inter-purchase time of a repeat buyer is ``recency / frequency`` (same periods, so ratios are unit-free).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace

import numpy as np
import pandas as pd

from custval.data.schemas import parse_date
from custval.errors import ConfigError, DataError, SchemaError
from custval.features.rfm import day_number

TIES = ("shared", "first")
RFM_COLUMNS = ("r_score", "f_score", "m_score", "rfm_cell", "rfm_score")
DEFAULT_TIER_CUTS = (0.5, 0.8, 0.95)
DEFAULT_TIER_NAMES = ("lead", "iron", "gold", "platinum")
QUADRANTS = ("golden", "at risk", "do not over-serve", "marginal")
GRID_CLASSES = ("platinum", "gold", "silver", "develop", "optimise")
# Rows: purchase cycle short / medium / long (short = buys most often); columns: order value high / medium / low.
DEFAULT_GRID = (
    ("platinum", "gold", "develop"),
    ("gold", "silver", "develop"),
    ("silver", "optimise", "optimise"),
)
STAGES = ("new", "active", "at risk", "lapsed")
_AUTO = "auto"


# ----------------------------------------------------------------------------------------------- validation
def _values(values, table: str, column: str, *, allow_nan: bool = False) -> np.ndarray:
    """Numeric float array of `values`, or a custval error naming the column, the rule and an example."""
    if isinstance(values, pd.Series | pd.Index):
        if not (pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype)):
            raise SchemaError(table, column, f"must be numeric, got dtype {values.dtype}",
                              values.iloc[0] if len(values) else None)
        arr = values.to_numpy(dtype=float, na_value=np.nan)
    else:
        raw = np.asarray(values)
        if raw.dtype.kind not in "biuf":
            raise SchemaError(table, column, f"must be numeric, got dtype {raw.dtype}",
                              raw.ravel()[0] if raw.size else None)
        arr = raw.astype(float).ravel()
    if arr.size == 0:
        raise DataError(table, column, "is empty: there are no rows (customers) to work on")
    bad = ~np.isfinite(arr) & ~(allow_nan & np.isnan(arr))
    if bad.any():
        raise DataError(table, column, "must be finite (no NaN or infinity)", float(arr[bad][0]))
    return arr


def _index_of(values, n: int) -> pd.Index:
    return values.index if isinstance(values, pd.Series) else pd.RangeIndex(n)


def _require(frame: pd.DataFrame, columns: Sequence[str], table: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise SchemaError(table, "*", f"must be a pandas DataFrame, got {type(frame).__name__}")
    for column in columns:
        if column not in frame.columns:
            raise SchemaError(table, column, f"required column is missing (columns: {list(frame.columns)})")
    if len(frame) == 0:
        raise DataError(table, columns[0] if columns else "*", "is empty: there are no rows (customers) to work on")


def _check_bins(bins: int) -> int:
    if isinstance(bins, bool) or not isinstance(bins, int | np.integer) or not 2 <= bins <= 9:
        raise ConfigError(f"bins: must be an integer from 2 to 9 (one digit per score in the cell code), got {bins!r}")
    return int(bins)


def _check_share(name: str, value: float, *, closed: bool = True) -> float:
    ok = 0.0 <= value <= 1.0 if closed else 0.0 < value < 1.0
    if not (isinstance(value, int | float | np.number) and np.isfinite(value) and ok):
        interval = "[0, 1]" if closed else "(0, 1)"
        raise ConfigError(f"{name}: must be a number in {interval}, got {value!r}")
    return float(value)


def _positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.number) or not np.isfinite(value) \
            or value <= 0:
        raise ConfigError(f"{name}: must be a positive finite number, got {value!r}")
    return float(value)


def _no_variation(arr: np.ndarray, table: str, column: str, what: str) -> None:
    if np.all(arr == arr[0]):
        raise DataError(table, column, f"has no variation: all {arr.size} customers have the same value, so "
                        f"every customer would fall in one {what}", float(arr[0]))


def _one_group(groups: np.ndarray, arr: np.ndarray, table: str, column: str, what: str) -> None:
    """Variation too small to matter: one tie block so large that every customer lands in the same group."""
    if np.all(groups == groups[0]):
        raise DataError(table, column, f"has too little variation: all {arr.size} customers fall in one {what} "
                        f"(the most common value holds nearly everyone)", float(pd.Series(arr).mode().iloc[0]))


# ----------------------------------------------------------------------------------------------- RFM scores
def _strictly_below(x: np.ndarray) -> np.ndarray:
    """For each element, how many elements are strictly smaller (ties share the count).

    One argsort, then each tie block takes the sorted position of its first member (linear, and
    much faster than searchsorted of unsorted queries on large arrays).
    """
    order = np.argsort(x)  # any order within a tie block gives the same result
    ordered = x[order]
    positions = np.arange(x.size)
    starts = np.r_[True, ordered[1:] != ordered[:-1]]
    below = np.empty(x.size, dtype=np.int64)
    below[order] = np.maximum.accumulate(np.where(starts, positions, 0))
    return below


def quantile_scores(values, *, higher_is_better: bool = True, bins: int = 5, ties: str = "shared",
                    order=None, table: str = "customers", column: str = "value") -> np.ndarray:
    """Scores 1..`bins` by quantiles of the population, `bins` = best.

    ties="shared": score = 1 + floor(bins * b / n), b = customers with a strictly worse value (ties share a
    score; a tie block gets the lowest score it reaches). ties="first": the same on positions after sorting by
    (value, `order`), `order` being the customer ids (default: input order), so quintiles are equal-sized.
    """
    bins = _check_bins(bins)
    if ties not in TIES:
        raise ConfigError(f"ties: must be one of {TIES}, got {ties!r}")
    x = _values(values, table, column)
    _no_variation(x, table, column, "quantile")
    oriented = x if higher_is_better else -x
    n = oriented.size
    if ties == "shared":
        below = _strictly_below(oriented)
    else:
        secondary = np.arange(n) if order is None else pd.factorize(pd.Index(order), sort=True)[0]
        if len(secondary) != n:
            raise ConfigError(f"order: must have one key per value ({n}), got {len(secondary)}")
        sequence = np.lexsort((secondary, oriented))
        below = np.empty(n, dtype=np.int64)
        below[sequence] = np.arange(n)
    scores = 1 + (bins * below.astype(np.int64)) // n
    _one_group(scores, x, table, column, "quantile")
    return scores


def _combine(r: np.ndarray, f: np.ndarray, m: np.ndarray, weights) -> np.ndarray:
    w = np.asarray(weights, dtype=float)
    if w.shape != (3,) or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ConfigError(f"weights: must be three non-negative numbers (R, F, M), not all 0; got {weights!r}")
    score = w[0] * r + w[1] * f + w[2] * m
    return score.astype(np.int64) if np.all(w == np.round(w)) else score


def rfm_scores(frame: pd.DataFrame, *, recency: str = "recency_days", frequency: str = "frequency",
               monetary: str = "monetary", recency_higher_is_better: bool = False, bins: int = 5,
               ties: str = "shared", weights=(1, 1, 1), table: str = "customers") -> pd.DataFrame:
    """R, F, M scores, the cell code ("555") and the combined score (weighted sum of the three scores).

    `recency` is the time since the last purchase by default (lower is better). Ties follow
    `quantile_scores`; with ties="first" they are broken by the frame's index (customer id).
    """
    _require(frame, [recency, frequency, monetary], table)
    order = frame.index if ties == "first" else None
    r = quantile_scores(frame[recency], higher_is_better=recency_higher_is_better, bins=bins, ties=ties,
                        order=order, table=table, column=recency)
    f = quantile_scores(frame[frequency], bins=bins, ties=ties, order=order, table=table, column=frequency)
    m = quantile_scores(frame[monetary], bins=bins, ties=ties, order=order, table=table, column=monetary)
    codes, inverse = np.unique(100 * r + 10 * f + m, return_inverse=True)  # at most bins^3 distinct cells
    cell = pd.array(codes.astype(str).astype(object)[inverse], dtype="string")
    return pd.DataFrame({"r_score": r, "f_score": f, "m_score": m, "rfm_cell": cell,
                         "rfm_score": _combine(r, f, m, weights)}, index=frame.index)


# ------------------------------------------------------------------------------- RFM from transactions
def _day_numbers(timestamps: pd.Series, table: str) -> np.ndarray:
    if not pd.api.types.is_datetime64_any_dtype(timestamps.dtype):
        raise SchemaError(table, "timestamp", f"must be datetime64, got dtype {timestamps.dtype}",
                          timestamps.iloc[0] if len(timestamps) else None)
    day = timestamps.dt.normalize()
    if getattr(day.dt, "tz", None) is not None:
        day = day.dt.tz_localize(None)
    if day.isna().any():
        raise DataError(table, "timestamp", "must not be missing", None)
    return day.to_numpy().astype("datetime64[D]").astype(np.int64)


def _to_timestamp(value, name: str) -> pd.Timestamp:
    """A user-given date parsed as everywhere in custval (`parse_date`: ISO 8601 or yyyymmdd, int or str)."""
    try:
        return parse_date(value, name)
    except DataError as exc:
        raise ConfigError(f"{name}: must be a date (ISO 8601 or yyyymmdd), got {value!r}") from exc


def _to_day_number(value, name: str) -> int:
    return day_number(_to_timestamp(value, name))


def _from_day_number(days: np.ndarray) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(np.asarray(days, dtype=np.int64).astype("datetime64[D]").astype("datetime64[ns]"))


def _period_rfm_core(transactions: pd.DataFrame, edges: np.ndarray, population: str, monetary: str,
                     table: str) -> pd.DataFrame:
    """Per (period, customer): days since last purchase at period end, purchase days and spend in the period.

    `edges` are day numbers e0 < e1 < ... (period i = [e_i, e_{i+1})). Purchases before e0 count for recency
    and acquisition only. Same-day transactions merge into one purchase.
    """
    _require(transactions, ["customer_id", "timestamp", "amount"], table)
    if population not in ("acquired", "active"):
        raise ConfigError(f"population: must be 'acquired' or 'active', got {population!r}")
    if monetary not in ("total", "mean"):
        raise ConfigError(f"monetary: must be 'total' (spend in the period) or 'mean' (per purchase day), "
                          f"got {monetary!r}")
    amount = _values(transactions["amount"], table, "amount")
    if transactions["customer_id"].isna().any():
        raise DataError(table, "customer_id", "must not be missing", None)
    day = _day_numbers(transactions["timestamp"], table)
    keep = day < edges[-1]
    if not keep.any():
        raise DataError(table, "timestamp", "has no transaction before the end of the last period",
                        str(_from_day_number(day[:1])[0].date()))
    codes, customers = transactions["customer_id"][keep].factorize()  # keeps the id dtype (int, string)
    day, amount = day[keep], amount[keep]
    n_periods = len(edges) - 1
    # one row per purchase day
    daily = pd.DataFrame({"c": codes, "d": day, "a": amount}).groupby(["c", "d"], sort=True)["a"].sum()
    c, d, a = (daily.index.get_level_values("c").to_numpy(), daily.index.get_level_values("d").to_numpy(),
               daily.to_numpy())
    p = np.searchsorted(edges, d, side="right") - 1  # -1: before the first period
    n_customers = len(customers)
    first_day = np.full(n_customers, np.iinfo(np.int64).max)
    np.minimum.at(first_day, c, d)
    first_period = np.clip(np.searchsorted(edges, first_day, side="right") - 1, 0, None)
    rows = n_periods - first_period
    cust = np.repeat(np.arange(n_customers), rows)
    starts = np.cumsum(rows) - rows
    period = np.repeat(first_period, rows) + (np.arange(rows.sum()) - np.repeat(starts, rows))
    key = cust * n_periods + period
    inside = p >= 0
    tx_key = c[inside] * n_periods + p[inside]
    grid = pd.DataFrame({"key": key})
    agg = pd.DataFrame({"key": tx_key, "d": d[inside], "a": a[inside]}).groupby("key").agg(
        frequency=("d", "size"), total=("a", "sum"), last=("d", "max"))
    grid = grid.join(agg, on="key")
    grid["frequency"] = grid["frequency"].fillna(0).astype(np.int64)
    grid["total"] = grid["total"].fillna(0.0)
    # last purchase up to each period's end: seed with purchases before e0, then carry forward
    before = np.full(n_customers, np.nan)
    if (~inside).any():
        seed = pd.Series(d[~inside]).groupby(c[~inside]).max()
        before[seed.index.to_numpy()] = seed.to_numpy()
    last = grid["last"].to_numpy(dtype=float)
    at_first = period == first_period[cust]
    last = np.where(at_first & np.isnan(last), before[cust], last)
    last = pd.Series(last).groupby(cust).ffill().to_numpy()
    period_last_day = edges[period + 1] - 1
    spend = grid["total"].to_numpy()
    freq = grid["frequency"].to_numpy()
    if monetary == "mean":
        spend = np.divide(spend, freq, out=np.zeros_like(spend), where=freq > 0)
    out = pd.DataFrame({
        "period": _from_day_number(edges[period]),
        "period_end": _from_day_number(period_last_day),
        "customer_id": customers.take(cust),
        "recency_days": (period_last_day - last).astype(np.int64),
        "frequency": freq,
        "monetary": spend,
    })
    if population == "active":
        out = out[out["frequency"] > 0]
    return out.sort_values("period", kind="stable").reset_index(drop=True)


def rfm_table(transactions: pd.DataFrame, *, as_of=None, start=None, monetary: str = "total",
              population: str = "acquired") -> pd.DataFrame:
    """Classic RFM inputs per customer from validated transactions, indexed by customer_id.

    recency_days: days from the last purchase to `as_of` (inclusive end; default the last transaction day);
    frequency: purchase days in [start, as_of] (same-day transactions merge; unlike the CLV summary's repeat
    count, the first purchase counts); monetary: total spend in the window (or the mean per purchase day).
    population="acquired" keeps customers who bought before `start` but not in the window (frequency 0).
    """
    table = "transactions"
    _require(transactions, ["customer_id", "timestamp", "amount"], table)
    days = _day_numbers(transactions["timestamp"], table)
    end = days.max() if as_of is None else _to_day_number(as_of, "as_of")
    begin = days.min() if start is None else _to_day_number(start, "start")
    if begin > end:
        raise ConfigError(f"start: must be on or before as_of, got start={start!r}, as_of={as_of!r}")
    out = _period_rfm_core(transactions, np.array([begin, end + 1]), population, monetary, table)
    return out.set_index("customer_id")[["recency_days", "frequency", "monetary"]]


def period_edges(transactions: pd.DataFrame, months: int = 6) -> pd.DatetimeIndex:
    """Calendar-aligned period boundaries covering the transactions: months=6 gives Jan 1 / Jul 1 edges."""
    if isinstance(months, bool) or not isinstance(months, int | np.integer) or months <= 0 or 12 % months:
        raise ConfigError(f"months: must divide 12 (1, 2, 3, 4, 6 or 12), got {months!r}")
    _require(transactions, ["timestamp"], "transactions")
    days = _day_numbers(transactions["timestamp"], "transactions")
    first, last = _from_day_number([days.min(), days.max()])
    start = pd.Timestamp(year=first.year, month=((first.month - 1) // months) * months + 1, day=1)
    edges = pd.date_range(start, last + pd.DateOffset(months=months), freq=f"{months}MS")
    return edges[: int(np.searchsorted(edges, last, side="right")) + 1]


def period_rfm(transactions: pd.DataFrame, *, edges=None, months: int = 6, population: str = "acquired",
               monetary: str = "total", score: bool = True, bins: int = 5, ties: str = "shared",
               weights=(1, 1, 1)) -> pd.DataFrame:
    """RFM per period (e.g. half-years) in long form: one row per (period, customer).

    Periods are [edges[i], edges[i+1]); by default calendar-aligned blocks of `months`. In each period:
    recency_days = days from the last purchase (in or before the period) to the period's last day,
    frequency = purchase days in the period, monetary = spend in the period. population="acquired" scores
    every customer acquired by the period's end (lapsed ones get frequency 0), "active" only buyers in the
    period. Scores are computed within each period, so movement between periods is relative standing.
    """
    if edges is None:
        edge_index = period_edges(transactions, months)
    else:
        if isinstance(edges, str | bytes) or not hasattr(edges, "__iter__"):
            raise ConfigError(f"edges: must be a sequence of dates, got {edges!r}")
        edge_index = pd.DatetimeIndex([_to_timestamp(e, "edges") for e in edges])
    edge_days = np.array([_to_day_number(e, "edges") for e in edge_index], dtype=np.int64)
    if len(edge_days) < 2 or np.any(np.diff(edge_days) <= 0):
        raise ConfigError(f"edges: need at least two strictly increasing dates, got {list(edge_index)}")
    out = _period_rfm_core(transactions, edge_days, population, monetary, "transactions")
    if not score:
        return out
    parts = []
    for start, part in out.groupby("period", sort=True):
        table = f"rfm[{start.date()}]"
        scored = rfm_scores(part.set_index("customer_id"), bins=bins, ties=ties, weights=weights, table=table)
        parts.append(scored.set_axis(part.index))
    return out.join(pd.concat(parts))


def migration_matrix(before: pd.Series, after: pd.Series, *, absent: str = "(none)",
                     normalize: bool = False) -> pd.DataFrame:
    """Customers moving from each segment in `before` (rows) to each in `after` (columns), matched by index.

    Customers present on one side only appear under `absent`. normalize=True gives row shares.
    """
    for name, side in (("before", before), ("after", after)):
        if not isinstance(side, pd.Series):
            raise SchemaError("migration", name, f"must be a pandas Series indexed by customer, got "
                              f"{type(side).__name__}")
        if side.index.has_duplicates:
            raise DataError("migration", name, "index must be unique customer ids",
                            side.index[side.index.duplicated()][0])
    if len(before) == 0 and len(after) == 0:
        raise DataError("migration", "before", "is empty: there are no customers to compare")
    customers = before.index.union(after.index)
    b = before.astype("string").reindex(customers).fillna(absent).rename("from")
    a = after.astype("string").reindex(customers).fillna(absent).rename("to")
    matrix = pd.crosstab(b, a)
    if normalize:
        matrix = matrix.div(matrix.sum(axis=1), axis=0)
    return matrix


def rfm_migration(period_table: pd.DataFrame, from_period, to_period, *, by: str = "rfm_cell",
                  absent: str = "(none)", normalize: bool = False) -> pd.DataFrame:
    """Movement of customers between RFM cells (or any column `by`) from one period of `period_rfm` to another."""
    _require(period_table, ["period", "customer_id", by], "period_rfm")
    periods = pd.DatetimeIndex(period_table["period"].unique())
    sides = []
    for name, value in (("from_period", from_period), ("to_period", to_period)):
        stamp = _to_timestamp(value, name)
        if stamp not in periods:
            raise ConfigError(f"{name}: {value!r} is not a period start; available: "
                              f"{[str(p.date()) for p in periods.sort_values()]}")
        rows = period_table[period_table["period"] == stamp]
        sides.append(rows.set_index("customer_id")[by])
    return migration_matrix(sides[0], sides[1], absent=absent, normalize=normalize)


# ------------------------------------------------------------------------------------ test and rollout
def break_even_rate(cost_per_contact: float, net_profit_per_response: float) -> float:
    """BE = cost per contact / net profit per response: the response rate at which a mailing pays for itself."""
    return _positive("cost_per_contact", cost_per_contact) / _positive("net_profit_per_response",
                                                                      net_profit_per_response)


def break_even_index(response_rate, break_even: float):
    """BEI = (R - BE) / BE x 100: percent above (>0) or below (<0) break-even. Scalar or array in, same out."""
    be = _positive("break_even", break_even)
    rate = np.asarray(response_rate, dtype=float)
    if np.any(~np.isfinite(rate) | (rate < 0) | (rate > 1)):
        bad = float(rate[~np.isfinite(rate) | (rate < 0) | (rate > 1)].ravel()[0]) if rate.ndim else float(rate)
        raise ConfigError(f"response_rate: must be in [0, 1], got {bad!r}")
    bei = (rate - be) / be * 100.0
    return float(bei) if bei.ndim == 0 else bei


def response_rate(responses: int, contacted: int) -> float:
    """Observed response rate: 510 responses of 30,000 mailed -> 0.017."""
    contacted = _positive("contacted", contacted)
    if not np.isfinite(responses) or not 0 <= responses <= contacted:
        raise ConfigError(f"responses: must be between 0 and contacted ({contacted:g}), got {responses!r}")
    return float(responses) / contacted


def cost_per_response(total_cost: float, responses: int) -> float:
    """Cost per acquired customer: a 5,100 budget for 510 responses -> 10."""
    return _positive("total_cost", total_cost) / _positive("responses", responses)


def systematic_sample(frame: pd.DataFrame, k: int, *, by: str = "rfm_cell", start: int = 0,
                      descending: bool = True) -> pd.DataFrame:
    """Every k-th customer (positions start, start+k, ...) after sorting by `by` then by customer id.

    Sorting by the cell first spreads the test sample over all cells in proportion to their size
    (implicit stratification); the id as secondary key makes the draw reproducible.
    """
    _require(frame, [by], "customers")
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ConfigError(f"k: must be a positive integer (sample every k-th customer), got {k!r}")
    if isinstance(start, bool) or not isinstance(start, int | np.integer) or not 0 <= start < k:
        raise ConfigError(f"start: must be an integer in [0, k) = [0, {k}), got {start!r}")
    if frame[by].isna().any():
        raise DataError("customers", by, "must not be missing", None)
    id_rank = pd.factorize(frame.index, sort=True)[0]
    primary = pd.factorize(frame[by], sort=True)[0]
    sequence = np.lexsort((id_rank, -primary if descending else primary))
    return frame.iloc[sequence[start::k]]


@dataclass(frozen=True)
class RolloutPlan:
    """Result of `rollout_plan`. `cells` has one row per cell; profits are in the currency of the inputs."""

    break_even_rate: float
    pooled_response_rate: float
    cells: pd.DataFrame
    contacts_rollout: int
    contacts_all: int
    expected_profit_rollout: float
    expected_profit_all: float

    @property
    def selected_cells(self) -> list[str]:
        return [str(c) for c in self.cells.index[self.cells["rollout"]]]


def rollout_plan(test: pd.DataFrame, population: pd.DataFrame, *, cost_per_contact: float,
                 net_profit_per_response: float, cell: str = "rfm_cell",
                 response: str = "responded") -> RolloutPlan:
    """Choose the cells to mail from a test mailing and compare with mailing everyone.

    Per cell: response rate R in the test, BEI = (R - BE) / BE x 100; cells with BEI >= 0 (i.e. R >= BE) are
    rolled out. Expected profit of mailing n customers of a cell = n (R x profit - cost). Cells of
    `population` (the customers still to mail) absent from the test are not rolled out; in the mail-everyone
    baseline they get the pooled test response rate.
    """
    be = break_even_rate(cost_per_contact, net_profit_per_response)
    _require(test, [cell, response], "test")
    _require(population, [cell], "population")
    resp = test[response]
    if not (pd.api.types.is_bool_dtype(resp.dtype) or pd.api.types.is_numeric_dtype(resp.dtype)):
        raise SchemaError("test", response, f"must be 0/1 or boolean, got dtype {resp.dtype}", resp.iloc[0])
    r = resp.to_numpy(dtype=float, na_value=np.nan)
    bad = ~np.isin(r, (0.0, 1.0))
    if bad.any():
        raise DataError("test", response, "must be 0 or 1 (did the customer respond?)", float(r[bad][0]))
    for name, frame in (("test", test), ("population", population)):
        if frame[cell].isna().any():
            raise DataError(name, cell, "must not be missing", None)
    by_cell = pd.DataFrame({"cell": test[cell].astype("string").to_numpy(), "r": r}).groupby("cell")["r"]
    cells = pd.DataFrame({"tested": by_cell.size(), "responses": by_cell.sum().astype(np.int64)})
    customers = population[cell].astype("string").value_counts().rename("customers")
    cells = cells.join(customers, how="outer").sort_index(ascending=False)
    cells.index.name = cell
    cells["tested"] = cells["tested"].fillna(0).astype(np.int64)
    cells["responses"] = cells["responses"].fillna(0).astype(np.int64)
    cells["customers"] = cells["customers"].fillna(0).astype(np.int64)
    tested = cells["tested"].to_numpy()
    rate = np.divide(cells["responses"].to_numpy(dtype=float), tested, out=np.full(len(cells), np.nan),
                     where=tested > 0)
    pooled = float(r.mean())
    cells["response_rate"] = rate
    cells["break_even_index"] = (rate - be) / be * 100.0
    cells["rollout"] = (tested > 0) & (np.nan_to_num(rate, nan=-1.0) >= be)
    used = np.where(tested > 0, rate, pooled)
    n = cells["customers"].to_numpy(dtype=float)
    cells["expected_responses"] = n * used
    cells["expected_profit"] = n * (used * float(net_profit_per_response) - float(cost_per_contact))
    selected = cells["rollout"].to_numpy()
    return RolloutPlan(
        break_even_rate=be, pooled_response_rate=pooled, cells=cells,
        contacts_rollout=int(n[selected].sum()), contacts_all=int(n.sum()),
        expected_profit_rollout=float(cells["expected_profit"].to_numpy()[selected].sum()),
        expected_profit_all=float(cells["expected_profit"].sum()),
    )


# ----------------------------------------------------------------------------------------- value segments
def value_tiers(values, *, cuts: Sequence[float] = DEFAULT_TIER_CUTS,
                names: Sequence[str] = DEFAULT_TIER_NAMES, column: str = "clv") -> pd.Series:
    """Customer pyramid by CLV quantiles: with cuts (0.5, 0.8, 0.95) the bottom 50% are "lead", the next 30%
    "iron", the next 15% "gold", the top 5% "platinum". A customer is in tier j when the share of customers
    with strictly lower value is >= cuts[j-1] (ties share a tier, as in RFM scoring). Ordered categorical.
    """
    cuts_arr = np.asarray(cuts, dtype=float)
    if cuts_arr.ndim != 1 or cuts_arr.size == 0 or np.any(~np.isfinite(cuts_arr)) or np.any(cuts_arr <= 0) \
            or np.any(cuts_arr >= 1) or np.any(np.diff(cuts_arr) <= 0):
        raise ConfigError(f"tier cuts: must be strictly increasing shares in (0, 1), got {cuts!r}")
    names = tuple(names)
    if len(names) != cuts_arr.size + 1 or len(set(names)) != len(names):
        raise ConfigError(f"tier names: need {cuts_arr.size + 1} distinct names for {cuts_arr.size} cuts "
                          f"(lowest tier first), got {names!r}")
    x = _values(values, "customers", column)
    _no_variation(x, "customers", column, "tier")
    share_below = _strictly_below(x) / x.size
    codes = np.searchsorted(cuts_arr, share_below, side="right")
    _one_group(codes, x, "customers", column, "tier")
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
    v = _values(clv, "customers", "clv")
    p = _values(loyalty, "customers", loyalty_column)
    if v.size != p.size:
        raise DataError("customers", loyalty_column, f"must have one value per customer ({v.size}), got "
                        f"{p.size}")
    outside = (p < 0) | (p > 1)
    if outside.any():
        raise DataError("customers", loyalty_column, "must be a probability in [0, 1]", float(p[outside][0]))
    threshold = (float(np.quantile(v, _check_share("value_quantile", value_quantile)))
                 if value_threshold is None else float(value_threshold))
    if not np.isfinite(threshold):
        raise ConfigError(f"value_threshold: must be finite, got {value_threshold!r}")
    _check_share("loyalty_threshold", loyalty_threshold)
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
        raise ConfigError(f"{name}: must be two increasing numbers (lower, upper), got {given!r}")
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
    ipt = _values(interpurchase_time, "customers", "interpurchase_time", allow_nan=True)
    aov = _values(order_value, "customers", "order_value")
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
    x = _values(values, "customers", column)
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
    top = _check_share("top", top)
    curve = pareto_curve(values, column=column)
    return float(np.interp(top, curve["customer_share"], curve["value_share"]))


def pareto_table(frame: pd.DataFrame, columns: Sequence[str] = ("revenue", "clv"),
                 tops: Sequence[float] = (0.01, 0.05, 0.1, 0.2, 0.5)) -> pd.DataFrame:
    """Share of each column (e.g. revenue, CLV) held by the top x% of customers; one row per x."""
    _require(frame, list(columns), "customers")
    data = {c: [top_share(frame[c], t, column=c) for t in tops] for c in columns}
    return pd.DataFrame(data, index=pd.Index(list(tops), name="top_share_of_customers"))


# ------------------------------------------------------------------------------------------------ lifecycle
def _summary_arrays(frame: pd.DataFrame, table: str = "customers") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    _require(frame, ["frequency", "recency", "T"], table)
    freq = _values(frame["frequency"], table, "frequency")
    rec = _values(frame["recency"], table, "recency")
    age = _values(frame["T"], table, "T")
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
    new_within = median_cycle if new_within is None else new_within
    if isinstance(new_within, bool) or not isinstance(new_within, int | float | np.number) \
            or not np.isfinite(new_within) or new_within < 0:
        raise ConfigError(f"new_within: must be a number of periods >= 0, got {new_within!r}")
    if method == "cycle":
        _positive("at_risk_after", at_risk_after)
        if not _positive("lapsed_after", lapsed_after) >= at_risk_after:
            raise ConfigError(f"lapsed_after: must be >= at_risk_after ({at_risk_after}), got {lapsed_after!r}")
        ratio = (age - rec) / np.where(repeat, cycle, median_cycle)
        code = np.where(ratio <= at_risk_after, 1, np.where(ratio <= lapsed_after, 2, 3))
    else:
        _require(frame, [p_alive], "customers")
        prob = _values(frame[p_alive], "customers", p_alive)
        outside = (prob < 0) | (prob > 1)
        if outside.any():
            raise DataError("customers", p_alive, "must be a probability in [0, 1]", float(prob[outside][0]))
        _check_share("active_p_alive", active_p_alive)
        if not _check_share("lapsed_p_alive", lapsed_p_alive) <= active_p_alive:
            raise ConfigError(f"lapsed_p_alive: must be <= active_p_alive ({active_p_alive}), got "
                              f"{lapsed_p_alive!r}")
        code = np.where(prob >= active_p_alive, 1, np.where(prob >= lapsed_p_alive, 2, 3))
    code = np.where(age <= new_within, 0, code)
    return pd.Series(pd.Categorical.from_codes(code, categories=list(STAGES), ordered=True),
                     index=frame.index, name="lifecycle_stage")


def customer_loss_value(before: pd.DataFrame, after: pd.DataFrame, *, clv: str = "clv",
                        stage: str = "lifecycle_stage", from_stages: Sequence[str] = ("active",),
                        to_stage: str = "lapsed") -> pd.Series:
    """CLV forgone per customer: the CLV in `before` of customers whose stage went from `from_stages`
    (default active) to `to_stage` (lapsed) in `after`; 0 for everyone else. `.sum()` is the total loss."""
    _require(before, [clv, stage], "before")
    _require(after, [stage], "after")
    missing = before.index.difference(after.index)
    if len(missing):
        raise DataError("after", "customer_id", "must contain every customer of `before`", missing[0])
    value = _values(before[clv], "before", clv)
    lost = before[stage].isin(list(from_stages)).to_numpy() & \
        (after[stage].reindex(before.index) == to_stage).to_numpy(dtype=bool, na_value=False)
    return pd.Series(np.where(lost, value, 0.0), index=before.index, name="loss_value")


# ------------------------------------------------------------------------------------ one row per customer
@dataclass(frozen=True)
class SegmentConfig:
    """Every threshold of `segment_customers` (see the functions named in each comment)."""

    bins: int = 5                                   # rfm_scores
    ties: str = "shared"
    monetary: str = "monetary_value"                # spend column for the M score and the grid's spend axis
    rfm_weights: tuple = (1, 1, 1)
    tier_cuts: tuple = DEFAULT_TIER_CUTS            # value_tiers
    tier_names: tuple = DEFAULT_TIER_NAMES
    value_threshold: float | None = None            # value_loyalty_matrix
    value_quantile: float = 0.5
    loyalty: str = "p_alive"
    loyalty_threshold: float = 0.5
    cycle_thresholds: tuple | None = None           # purchase_cycle_grid
    spend_thresholds: tuple | None = None
    grid: tuple = DEFAULT_GRID
    lifecycle_method: str = _AUTO                   # lifecycle_stage; auto = p_alive if present, else cycle
    new_within: float | None = None
    at_risk_after: float = 2.0
    lapsed_after: float = 4.0
    active_p_alive: float = 0.5
    lapsed_p_alive: float = 0.2


def segment_customers(customers: pd.DataFrame, config: SegmentConfig | None = None,
                      **overrides) -> pd.DataFrame:
    """All segment columns for a customer-level frame (RFM summary columns, optionally clv, p_alive).

    Adds: time_since_last (T - recency), interpurchase_time, r/f/m scores (R on time since last purchase,
    F on frequency, M on `config.monetary`), rfm_cell, rfm_score, cycle_class, lifecycle_stage; with `clv`:
    tier and loss_value (the CLV forgone if the customer lapses now; 0 once lapsed); with `clv` and the
    loyalty column: value_loyalty. Input columns are kept; one row per customer, same index.
    """
    config = config or SegmentConfig()
    unknown = set(overrides) - {f.name for f in fields(SegmentConfig)}
    if unknown:
        raise ConfigError(f"unknown segment setting(s) {sorted(unknown)}; known: "
                          f"{[f.name for f in fields(SegmentConfig)]}")
    config = replace(config, **overrides)
    _require(customers, ["frequency", "recency", "T", config.monetary], "customers")
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
        clv = _values(customers["clv"], "customers", "clv")
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
    _require(frame, keys, "customers")
    wanted = {}
    for role, column in (("revenue", revenue), ("clv", clv)):
        if column == _AUTO:
            if role in frame.columns:
                wanted[role] = role
        elif column is not None:
            _require(frame, [column], "customers")
            wanted[role] = column
    data = frame[keys].copy()
    for role, column in wanted.items():
        data[role] = _values(frame[column], "customers", column)
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
