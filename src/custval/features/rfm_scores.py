"""RFM scores: recency, frequency and monetary scores by quantiles of the scored population, RFM cells and
per-period RFM with the movement of customers between cells.

* **Scores** (`quantile_scores`, `rfm_scores`): 1..5 by quintiles, 5 = best (most recent, most frequent,
  highest spend); the cell code ("555", "423", ...) and a combined score (weighted sum, 3..15 by default).
* **Tie rule** (`ties="shared"`, the default): a score is a function of the value alone. A customer scores
  ``1 + floor(bins * b / n)`` where ``b`` is the number of scored customers with a strictly *worse* value
  and ``n`` the population size: score k means "strictly better than at least (k-1)/5 of the population but
  not k/5 of it". Without ties this is exactly equal-sized quintiles (n divisible by 5). With ties a whole
  tie block gets the lowest score its block reaches, so the usual majority at frequency 0 scores 1 (not an
  arbitrary mix of 1, 2, 3) and some scores may stay empty. ``ties="first"`` instead breaks ties by the
  customer id (ascending id = lower score) and gives equal-sized quintiles. A column with no variation at all
  (every customer in one quintile) is an error.
* **From transactions** (`rfm_table`, `period_edges`, `period_rfm`, `migration_matrix`, `rfm_migration`):
  classic RFM inputs per customer, per period (e.g. half-years, as in the FedEx example), and the movement of
  customers between cells from one period to another.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from custval.data.schemas import parse_date
from custval.errors import ConfigError, DataError, SchemaError
from custval.features.daily import calendar_days, daily_spend, grouped_sum
from custval.features.rfm import day_number
from custval.features.validation import check_not_one_group, check_variation, numeric_values, require_columns

__all__ = ["RFM_COLUMNS", "TIES", "migration_matrix", "period_edges", "period_rfm", "quantile_scores",
           "levels_reached", "quantile_cuts", "rfm_migration", "rfm_scores", "rfm_table", "strictly_below"]

TIES = ("shared", "first")
RFM_COLUMNS = ("r_score", "f_score", "m_score", "rfm_cell", "rfm_score")
_CELL_LABELS = np.array([str(code) for code in range(1000)], dtype=object)  # cell code -> its text, "111".."999"


def _check_bins(bins: int) -> int:
    if isinstance(bins, bool) or not isinstance(bins, int | np.integer) or not 2 <= bins <= 9:
        raise ConfigError(f"bins: must be an integer from 2 to 9 (one digit per score in the cell code), got {bins!r}")
    return int(bins)


# ----------------------------------------------------------------------------------------------- RFM scores
def strictly_below(x: np.ndarray) -> np.ndarray:
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


def levels_reached(x: np.ndarray, counts) -> np.ndarray:
    """For each element, how many of `counts` its `strictly_below` count reaches (b >= c), without sorting.

    b >= c (c >= 1) exactly when the c-th smallest element is below x, so a few order statistics
    (`np.partition`, linear) replace the full argsort: quantile scores and tiers need only their cut points.
    """
    x = np.asarray(x)
    counts = np.asarray(counts, dtype=np.int64).ravel()
    out = np.full(x.size, int((counts <= 0).sum()), dtype=np.int64)  # b >= 0 always; b <= n - 1 < n
    inside, times = np.unique(counts[(counts >= 1) & (counts < x.size)], return_counts=True)
    if inside.size:
        for threshold, repeat in zip(np.partition(x, inside - 1)[inside - 1], times, strict=True):
            out += repeat * (x > threshold)
    return out


def quantile_cuts(n: int, bins: int) -> np.ndarray:
    """The counts c_k = ceil(k n / bins), k = 1..bins-1: floor(bins * b / n) >= k exactly when b >= c_k."""
    k = np.arange(1, bins, dtype=np.int64)
    return -((-k * n) // bins)


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
    x = numeric_values(values, table, column)
    check_variation(x, table, column, "quantile")
    oriented = x if higher_is_better else -x
    n = oriented.size
    if ties == "shared":
        scores = 1 + levels_reached(oriented, quantile_cuts(n, bins))
    else:
        secondary = np.arange(n) if order is None else pd.factorize(pd.Index(order), sort=True)[0]
        if len(secondary) != n:
            raise ConfigError(f"order: must have one key per value ({n}), got {len(secondary)}")
        sequence = np.lexsort((secondary, oriented))
        below = np.empty(n, dtype=np.int64)
        below[sequence] = np.arange(n)
        scores = 1 + (bins * below) // n
    check_not_one_group(scores, x, table, column, "quantile")
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
    require_columns(frame, [recency, frequency, monetary], table)
    order = frame.index if ties == "first" else None
    r = quantile_scores(frame[recency], higher_is_better=recency_higher_is_better, bins=bins, ties=ties,
                        order=order, table=table, column=recency)
    f = quantile_scores(frame[frequency], bins=bins, ties=ties, order=order, table=table, column=frequency)
    m = quantile_scores(frame[monetary], bins=bins, ties=ties, order=order, table=table, column=monetary)
    cell = pd.array(_CELL_LABELS[100 * r + 10 * f + m], dtype="string")  # scores are digits 1..9
    return pd.DataFrame({"r_score": r, "f_score": f, "m_score": m, "rfm_cell": cell,
                         "rfm_score": _combine(r, f, m, weights)}, index=frame.index)


# ------------------------------------------------------------------------------- RFM from transactions
def _day_numbers(timestamps: pd.Series, table: str) -> np.ndarray:
    if not pd.api.types.is_datetime64_any_dtype(timestamps.dtype):
        raise SchemaError(table, "timestamp", f"must be datetime64, got dtype {timestamps.dtype}",
                          timestamps.iloc[0] if len(timestamps) else None)
    if getattr(timestamps.dt, "tz", None) is not None:  # the wall-clock day
        timestamps = timestamps.dt.normalize().dt.tz_localize(None)
    day = calendar_days(timestamps)
    if np.isnat(day).any():
        raise DataError(table, "timestamp", "must not be missing", None)
    return day.astype("datetime64[D]").astype(np.int64)


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


def _purchases(transactions: pd.DataFrame, stop: int, population: str, monetary: str, table: str
               ) -> tuple[np.ndarray, pd.Index, np.ndarray, np.ndarray]:
    """(customer codes, customers in first-seen order with their id dtype, day numbers, amounts) of the checked
    transactions before day `stop`; the options checked too."""
    require_columns(transactions, ["customer_id", "timestamp", "amount"], table)
    if population not in ("acquired", "active"):
        raise ConfigError(f"population: must be 'acquired' or 'active', got {population!r}")
    if monetary not in ("total", "mean"):
        raise ConfigError(f"monetary: must be 'total' (spend in the period) or 'mean' (per purchase day), "
                          f"got {monetary!r}")
    amount = numeric_values(transactions["amount"], table, "amount")
    if transactions["customer_id"].isna().any():
        raise DataError(table, "customer_id", "must not be missing", None)
    day = _day_numbers(transactions["timestamp"], table)
    keep = day < stop
    if not keep.any():
        raise DataError(table, "timestamp", "has no transaction before the end of the last period",
                        str(_from_day_number(day[:1])[0].date()))
    codes, customers = transactions["customer_id"][keep].factorize()  # keeps the id dtype (int, string)
    return codes, customers, day[keep], amount[keep]


def _period_rfm_core(transactions: pd.DataFrame, edges: np.ndarray, population: str, monetary: str,
                     table: str) -> pd.DataFrame:
    """Per (period, customer): days since last purchase at period end, purchase days and spend in the period.

    `edges` are day numbers e0 < e1 < ... (period i = [e_i, e_{i+1})). Purchases before e0 count for recency
    and acquisition only. Same-day transactions merge into one purchase.
    """
    codes, customers, day, amount = _purchases(transactions, edges[-1], population, monetary, table)
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
    require_columns(transactions, ["customer_id", "timestamp", "amount"], table)
    days = _day_numbers(transactions["timestamp"], table)
    end = days.max() if as_of is None else _to_day_number(as_of, "as_of")
    begin = days.min() if start is None else _to_day_number(start, "start")
    if begin > end:
        raise ConfigError(f"start: must be on or before as_of, got start={start!r}, as_of={as_of!r}")
    if start is None:  # one window holding every purchase up to as_of: no periods to carry recency across
        return _window_rfm(transactions, end, population, monetary, table)
    out = _period_rfm_core(transactions, np.array([begin, end + 1]), population, monetary, table)
    return out.set_index("customer_id")[["recency_days", "frequency", "monetary"]]


def _window_rfm(transactions: pd.DataFrame, end: int, population: str, monetary: str, table: str
                ) -> pd.DataFrame:
    """`_period_rfm_core` for the one window from the first purchase to day `end`, the same numbers and order
    (customers as first seen) without the period grid: every customer in it bought in it. The sums are pandas'
    grouped sums over the same groups in the same order, as in the core."""
    codes, customers, day, amount = _purchases(transactions, end + 1, population, monetary, table)
    c, d, daily = daily_spend(codes, day, amount)  # sorted by customer code, then day
    new = np.r_[True, c[1:] != c[:-1]]
    starts = np.flatnonzero(new)
    ends = np.r_[starts[1:], len(c)]
    frequency = (ends - starts).astype(np.int64)
    spend = grouped_sum(daily, np.cumsum(new) - 1)
    if monetary == "mean":
        spend = spend / frequency
    return pd.DataFrame({"recency_days": (end - d[ends - 1]).astype(np.int64), "frequency": frequency,
                         "monetary": spend}, index=pd.Index(customers.take(c[starts]), name="customer_id"))


def period_edges(transactions: pd.DataFrame, months: int = 6) -> pd.DatetimeIndex:
    """Calendar-aligned period boundaries covering the transactions: months=6 gives Jan 1 / Jul 1 edges."""
    if isinstance(months, bool) or not isinstance(months, int | np.integer) or months <= 0 or 12 % months:
        raise ConfigError(f"months: must divide 12 (1, 2, 3, 4, 6 or 12), got {months!r}")
    require_columns(transactions, ["timestamp"], "transactions")
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
    require_columns(period_table, ["period", "customer_id", by], "period_rfm")
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


# ------------------------------------------------------------------------------------ RFM by period to as_of
def calendar_period_grid(transactions: pd.DataFrame, as_of, months: int) -> pd.DatetimeIndex:
    """Per-period RFM edges: calendar period starts every `months` months from the period of the first
    transaction up to `as_of`, then as_of + 1 day (only the last period is cut short, at as_of). The grid does
    not depend on where the transactions stop: a period with no transactions is still a period."""
    start = period_edges(transactions, months)[0]
    end = pd.Timestamp(as_of).normalize() + pd.Timedelta(days=1)
    grid = pd.date_range(start, end, freq=f"{months}MS")
    return pd.DatetimeIndex([*(e for e in grid if e < end), end])


@dataclass
class PeriodRFM:
    """Per-period RFM to as_of: the table (one row per customer and period), the customers per cell and period,
    and, with two periods or more, the migration between the last two and its up/same/down shares."""

    table: pd.DataFrame
    cells: pd.DataFrame
    migration: pd.DataFrame | None = None
    periods: tuple[pd.Timestamp, pd.Timestamp] | None = None
    stats: dict[str, float] = field(default_factory=dict)


def rfm_by_period(transactions: pd.DataFrame, as_of, *, months: int, by: str = "rfm_cell", bins: int = 5,
                  ties: str = "shared", weights=(1, 1, 1)) -> PeriodRFM:
    """RFM per calendar period of `months` months up to `as_of` (the last period cut there), cells per period
    and the migration by `by` between the last two periods. A period without any transaction cannot be scored:
    DataError naming the periods and the settings that avoid them."""
    as_of = pd.Timestamp(as_of)
    edges = calendar_period_grid(transactions, as_of, months)
    day = transactions["timestamp"].dt.normalize().to_numpy()
    period = np.searchsorted(edges.to_numpy(), day, side="right") - 1
    period = period[(period >= 0) & (period < len(edges) - 1)]
    empty = edges[:-1][np.bincount(period, minlength=len(edges) - 1) == 0]
    if len(empty):
        raise DataError(
            "transactions", "timestamp",
            f"per-period RFM (rfm_period_months={months}) has periods without any transaction, "
            f"starting {[str(e.date()) for e in empty]}, whose customers cannot be scored (as_of "
            f"{as_of.date()}, last transaction {transactions['timestamp'].max().date()}); set "
            f"rfm_period_months=null or an as_of before {empty[0].date()}",
            str(empty[0].date()),
        )
    table = period_rfm(transactions, edges=edges, bins=bins, ties=ties, weights=weights)
    cells = pd.crosstab(table["rfm_cell"], table["period"].dt.date.astype(str)).sort_index(ascending=False)
    periods = sorted(table["period"].unique())
    if len(periods) < 2:
        return PeriodRFM(table, cells)
    first, last = pd.Timestamp(periods[-2]), pd.Timestamp(periods[-1])
    migration = rfm_migration(table, first, last, by=by)
    scores = table.pivot(index="customer_id", columns="period", values="rfm_score")[[first, last]].dropna()
    change = np.sign(scores[last].to_numpy() - scores[first].to_numpy())
    def share(mask: np.ndarray) -> float:
        return float(np.mean(mask)) if len(change) else float("nan")

    stats = {"migration_customers": float(len(scores)), "migration_up_share": share(change > 0),
             "migration_same_share": share(change == 0), "migration_down_share": share(change < 0)}
    return PeriodRFM(table, cells, migration, (first, last), stats)
