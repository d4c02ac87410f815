"""Point-in-time feature tables and labels for churn and cross-sell propensity models.

A *snapshot* at a cutoff ``c`` (a date, midnight) has one row per customer active before ``c``: features
computed only from transactions with ``timestamp < c`` and labels from the window ``[c, c + H days)``.
Stacking snapshots at several cutoffs gives a training table; `time_split` splits it by time so that no
label window of an earlier part reaches into a later part.

Definitions (all durations in days; ``d(x)`` is the calendar day of a timestamp, ``c`` the cutoff day):
  * a *purchase day* is a customer-day with at least one sale row (amount >= 0) that is not cancelled by
    returns: either it has no negative row, or its net amount is > 0 (up to rounding, 1e-9 x the gross).
    This is `validate_transactions(returns="net")`'s rule, so on validated logs every customer-day with a
    sale is a purchase day, as in `custval.features.rfm` (zero-amount sales count). Return rows (negative
    amounts) reduce spend on whatever day they fall but never make a purchase;
  * *population*: customers with >= 1 purchase day in ``[c - active_days, c)``. None -> `DataError`;
  * ``recency_days`` = c - last purchase day (>= 1); ``tenure_days`` = c - first purchase day;
    ``frequency`` = purchase days before c; ``monetary_total`` = net amount of every row before c (returns
    included); ``monetary_mean`` = monetary_total / frequency (net spend per purchase day);
  * per window w (`windows`, default 30/90/180/365): ``n_purchases_{w}d`` = purchase days in [c - w, c);
    ``spend_{w}d`` = net amount of the rows in [c - w, c);
  * a window is *covered* when it starts on or after the history start ``s`` (`history_start`, default the
    first day of the log): c - w >= s. An uncovered window reaches into days the log does not show, so its
    count and spend are unknown: NaN, not 0. A customer's own first purchase does not uncover a window:
    before it the (covered) log shows no purchase, which is a fact (tenure_days tells new customers apart);
  * trends between consecutive windows w1 < w2: the rate in the recent window [c - w1, c) against the rate
    in the window before it [c - w2, c - w1), both per day: ``trend_{purchases,spend}_{w1}_{w2}`` =
    (recent - prior) / (|recent| + |prior|), in [-1, 1] (+1: only recent activity, -1: activity stopped,
    0: same rate or no activity in both; NaN only when w2 is not covered). The prior window may start
    before the first purchase;
  * inter-purchase time (gaps between consecutive purchase days): ``ipt_mean_days`` = (last - first) /
    (frequency - 1), ``ipt_std_days`` = population std (ddof = 0) of the gaps, ``ipt_last_days`` = the last
    gap, ``recency_ratio`` = recency_days / ipt_mean_days; NaN with fewer than 2 purchase days;
  * with a ``category`` column (`categories` = the names to use, default: every category in the log, sorted):
    a customer *bought* category k on a day when that day is a purchase day AND that day's rows of k satisfy
    the purchase-day rule on their own (a sale of k on a day cancelled by returns, e.g. an exchange that
    returns B for A at the same price, buys nothing). So every category bought is bought on a purchase day:
    ``propensity_<k>`` = 1 implies ``churn`` = 0, and ``days_since_<k>`` >= ``recency_days``;
    ``share_<k>`` = max(net spend on k before c, 0) / sum over categories of the same (0 when that sum is 0;
    rows with a missing or unlisted category count nowhere here; the default category list comes from the
    whole log, so pass `categories` for a column set that cannot depend on rows after the cutoff);
    ``days_since_<k>`` = c - last day k was bought (NaN if never); ``n_categories`` = number of categories
    bought before c;
  * customer attributes (`customers`: ``customer_id`` + any columns, one row per customer): datetime columns
    -> ``days_since_<col>`` = (c - value) in days (float, negative for dates after c); numeric and boolean ->
    float64; everything else -> pandas ``string`` dtype. Customers absent from the table get NaN / <NA>.
    The table is taken as known at every cutoff (static attributes): do not pass values observed later; a
    date at or after the cutoff for a snapshot customer (e.g. ``churned_on``) is leakage and emits a
    `CustvalWarning` naming the column, the cutoff and an example customer;
  * ``extra_features``: a callable ``(transactions before c, c) -> DataFrame indexed by customer_id`` whose
    columns are added as float64 features (NaN for customers it does not cover). It only ever sees rows
    before c (by the same day rule: d(timestamp) < c, wall-clock day for tz-aware logs). Its index must be
    unique and of the same kind (numeric or text) as the transactions' ids, else `DataError`.
    `custval.models.clv.features.CLVFeatures(H)` gives BG/NBD ``p_alive`` and ``expected_purchases_{H}d``
    this way (features must not import models, so the caller passes it);
  * labels: ``churn`` (int8) = 1 when the customer has no purchase day in [c, c + H); with categories,
    ``propensity_<k>`` (float64 0/1) = 1 when k is bought in [c, c + H); with ``cross_sell_new_only`` NaN for
    customers who bought k before c.
Every numeric feature is float64 (counts included) so models see one numeric type.

Speed: the log is reduced once to customer-day-category and customer-day totals with one stable argsort of a
combined integer key and `np.add.reduceat`; each cutoff is then a few masks and `np.bincount` calls over those
arrays (no per-customer Python, no pandas groupby). One cutoff of 20M transactions (990k active customers,
6 categories, 36 features + 7 labels) builds in 11 s on a 2-core box (`benchmarks/bench_snapshots.py`).
Feature values at a cutoff depend only on rows before it (and on the history start), summed in input order, so
changing rows at or after the cutoff leaves them bit-identical; covered windows are computed exactly as before
the coverage rule existed.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import pairwise
from typing import Annotated, Any

import numpy as np
import pandas as pd
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from custval.config import SettingError, config_error
from custval.config.types import Flag, Name, Period, PositiveInt, PositiveReal, Real, Share, one_of
from custval.data.schemas import parse_date
from custval.errors import ConfigError, CustvalWarning, DataError, SchemaError
from custval.features.rfm import customer_codes

__all__ = [
    "ID_COLUMNS",
    "LABEL_PREFIX",
    "WINDOWS",
    "TimeSplit",
    "Recipe",
    "ResponseValue",
    "build_snapshot",
    "build_snapshots",
    "check_recipe",
    "compatible_recipes",
    "cutoff_schedule",
    "feature_columns",
    "history_start",
    "label_columns",
    "recipe_options",
    "snapshot_categories",
    "snapshot_recipe",
    "split_cutoffs",
    "table_recipe",
    "time_split",
    "uncovered_columns",
]

WINDOWS = (30, 90, 180, 365)
ID_COLUMNS = ("customer_id", "cutoff")
LABEL_PREFIX = "propensity_"
CHURN = "churn"
_TABLE = "transactions"
_RTOL = 1e-9  # a day whose net is within 1e-9 x its gross of zero is "cancelled" (as validate_transactions)
_EPOCH = np.datetime64("1970-01-01", "D")
_NS_PER_DAY = 86_400 * 10**9


# ------------------------------------------------------------------------------------------- prepared log
@dataclass
class _Log:
    """The transaction log reduced once, reused for every cutoff.

    Customer codes are ranks of the ids (so code order = id order). ``cd_*``: one entry per customer-day,
    sorted by (code, day). ``cat_*``: one entry per customer-day-category that was *bought*, sorted by
    (category, code, day). ``cdc_*``: every customer-day-category entry (slot K = missing/unlisted), sorted
    by (code, day, slot). ``row_day``: each input row's day, in input order (kept only for extra_features)."""

    keys: np.ndarray
    id_dtype: object
    categories: tuple[str, ...] | None
    first_day: int
    cd_code: np.ndarray
    cd_day: np.ndarray
    cd_net: np.ndarray
    cd_purchase: np.ndarray
    cdc_code: np.ndarray | None
    cdc_day: np.ndarray | None
    cdc_slot: np.ndarray | None
    cdc_net: np.ndarray | None
    cat_slot: np.ndarray | None
    cat_code: np.ndarray | None
    cat_day: np.ndarray | None
    last_day: int
    frame: pd.DataFrame  # the input, for extra_features
    row_day: np.ndarray | None = None  # each input row's day (days since 1970, int32), kept for extra_features

    @property
    def n(self) -> int:
        return len(self.keys)


def _reduce(starts: np.ndarray, net_e: np.ndarray, gross_e=None, sale_e=None, ret_e=None):
    """Reduce contiguous groups (starting at `starts`) of elements to (net, gross, has_sale, has_return, bought).

    Elements are rows (only `net_e` = amounts given: gross = |amount|, sale = amount >= 0, return = amount < 0)
    or groups of a finer level (all five given). Returns are rare, so only groups containing one are reduced
    for gross and has_sale; in the others every element is a sale, gross = net and the group is bought.
    """
    net = net_e if len(starts) == len(net_e) else np.add.reduceat(net_e, starts)
    m = len(starts)
    ret_idx = np.flatnonzero(net_e < 0 if ret_e is None else ret_e)
    sale = np.ones(m, dtype=bool)
    ret = np.zeros(m, dtype=bool)
    bought = np.ones(m, dtype=bool)
    if len(ret_idx) == 0:
        return net, net, sale, ret, bought
    g = np.searchsorted(starts, ret_idx, side="right") - 1
    rg = g[np.r_[True, g[1:] != g[:-1]]]  # groups with a return (ret_idx is sorted)
    ends = np.r_[starts[1:], len(net_e)]
    lens = ends[rg] - starts[rg]
    offs = np.cumsum(lens) - lens
    rows = np.arange(int(lens.sum())) + np.repeat(starts[rg] - offs, lens)
    sub_gross = np.abs(net_e[rows]) if gross_e is None else gross_e[rows]
    sub_sale = net_e[rows] >= 0 if sale_e is None else sale_e[rows]
    gross = net.copy()
    gross[rg] = np.add.reduceat(sub_gross, offs)
    sale[rg] = np.logical_or.reduceat(sub_sale, offs)
    ret[rg] = True
    bought[rg] = sale[rg] & (net[rg] > _RTOL * gross[rg])
    return net, gross, sale, ret, bought


def _check_frame(transactions) -> None:
    if not isinstance(transactions, pd.DataFrame):
        raise SchemaError(_TABLE, "*", "must be a pandas DataFrame", type(transactions).__name__)
    for col in ("customer_id", "timestamp", "amount"):
        if col not in transactions.columns:
            raise SchemaError(_TABLE, col, "required column missing; run custval.data.schemas.validate_transactions")
    if len(transactions) == 0:
        raise DataError(_TABLE, "*", "table is empty (no rows)")


def _timestamps(transactions: pd.DataFrame) -> np.ndarray:
    ts = transactions["timestamp"]
    if isinstance(ts.dtype, pd.DatetimeTZDtype):
        ts = ts.dt.tz_localize(None)
    elif not pd.api.types.is_datetime64_dtype(ts.dtype):
        raise SchemaError(_TABLE, "timestamp",
                          f"must be datetime64 (got {ts.dtype}); run custval.data.schemas.validate_transactions")
    values = ts.to_numpy()
    nat = np.isnat(values)
    if nat.any():
        raise DataError(_TABLE, "timestamp", "missing timestamp (NaT)", f"row {transactions.index[_first(nat)]!r}")
    return values.astype("datetime64[D]").astype(np.int64)


def _amounts(transactions: pd.DataFrame) -> np.ndarray:
    amount = transactions["amount"]
    if not pd.api.types.is_numeric_dtype(amount.dtype) or pd.api.types.is_bool_dtype(amount.dtype):
        raise SchemaError(_TABLE, "amount",
                          f"must be numeric (got {amount.dtype}); run custval.data.schemas.validate_transactions")
    values = amount.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(values)
    if bad.any():
        raise DataError(_TABLE, "amount", "must be a finite number (no NaN/inf)", values[_first(bad)])
    return values


def _first(mask: np.ndarray) -> int:
    return int(np.argmax(mask))


def _resolve_categories(transactions: pd.DataFrame, categories) -> tuple[tuple[str, ...] | None, np.ndarray | None]:
    """(category names, per-row slot in 0..K with K = missing/unlisted) or (None, None) without categories."""
    has_col = "category" in transactions.columns
    if categories is None and not has_col:
        return None, None
    if not has_col:
        raise SchemaError(_TABLE, "category", "required when `categories` is given; the log has no category column")
    col = transactions["category"]
    codes, uniques = pd.factorize(col, use_na_sentinel=True)
    uniques = pd.Index(uniques).astype("string")
    if categories is None:
        names = tuple(sorted(str(u) for u in uniques))
    else:
        if isinstance(categories, str):
            raise ConfigError(f"categories must be a sequence of names, got the string {categories!r}")
        names = tuple(categories)
        if not names or not all(isinstance(n, str) and n for n in names) or len(set(names)) != len(names):
            raise ConfigError(f"categories must be distinct non-empty names, got {categories!r}")
    if not names:
        raise DataError(_TABLE, "category", "has no non-missing value: no category to build features for")
    k = len(names)
    to_slot = pd.Index(names).get_indexer(uniques)
    to_slot = np.where(to_slot < 0, k, to_slot).astype(np.int64)
    to_slot = np.r_[to_slot, k]  # code -1 (missing) -> slot k
    slot = to_slot[codes]
    return names, slot


def _prepare(transactions, categories, *, keep_row_days: bool = False) -> _Log:
    """Validate cheaply and reduce the log to sorted customer-day(-category) arrays (see `_Log`)."""
    _check_frame(transactions)
    ids = transactions["customer_id"]
    missing = ids.isna().to_numpy()
    if missing.any():
        raise SchemaError(_TABLE, "customer_id", "must not be missing (NaN/None)",
                          f"row {transactions.index[_first(missing)]!r}")
    days = _timestamps(transactions)
    amount = _amounts(transactions)
    names, slot = _resolve_categories(transactions, categories)
    codes, keys = customer_codes(ids)
    n = len(keys)
    dmin, dmax = int(days.min()), int(days.max())
    span = dmax - dmin + 1
    k1 = 1 if names is None else len(names) + 1
    if float(n) * span * k1 >= 2.0**62:  # pragma: no cover - astronomically wide logs
        raise DataError(_TABLE, "timestamp", "customers x days x categories too large for a 63-bit key", span)
    key = codes.astype(np.int64) * span + (days - dmin)
    if slot is not None:
        key = key * k1 + slot
    order = np.argsort(key, kind="stable")  # timsort: near O(n) on logs already sorted by customer and time
    key = key[order]
    amt = amount[order]
    del order
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    gkey = key[starts]
    del key
    net, gross, has_sale, has_return, bought = _reduce(starts, amt)
    del amt
    log = dict(keys=keys, id_dtype=ids.dtype, categories=names, first_day=dmin, last_day=dmax, frame=transactions,
               row_day=days.astype(np.int32) if keep_row_days else None, cdc_code=None, cdc_day=None, cdc_slot=None, cdc_net=None, cat_slot=None, cat_code=None, cat_day=None)
    if names is None:
        cd_key, cd_net, cd_purchase = gkey, net, bought
    else:
        cdc_slot = gkey % k1
        cd_key_full = gkey // k1
        cd_change = np.r_[True, cd_key_full[1:] != cd_key_full[:-1]]
        cd_starts = np.flatnonzero(cd_change)
        cd_key = cd_key_full[cd_starts]
        cd_net, _, _, _, cd_purchase = _reduce(cd_starts, net, gross, has_sale, has_return)
        cdc_code = cd_key_full // span
        cdc_day = cd_key_full - cdc_code * span + dmin
        # a category is bought only on a purchase day: its own rows AND the whole day's rows pass the rule
        bought &= cd_purchase[np.cumsum(cd_change) - 1]
        del cd_change
        # bought category-days in (category, code, day) order: a stable radix sort on the small slot numbers
        b = np.flatnonzero(bought & (cdc_slot < k1 - 1))
        by_cat = np.argsort(cdc_slot[b].astype(np.int16), kind="stable")
        b = b[by_cat]
        log.update(cdc_code=cdc_code, cdc_day=cdc_day, cdc_slot=cdc_slot, cdc_net=net,
                   cat_slot=cdc_slot[b], cat_code=cdc_code[b], cat_day=cdc_day[b])
    cd_code = cd_key // span
    cd_day = cd_key - cd_code * span + dmin
    return _Log(cd_code=cd_code, cd_day=cd_day, cd_net=cd_net, cd_purchase=cd_purchase, **log)


# ------------------------------------------------------------------------------------------ argument checks
def _check_days(name: str, value, *, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ConfigError(f"{name} must be a whole number of days >= 1, got {value!r}")
    return int(value)


def _check_windows(windows) -> tuple[int, ...]:
    try:
        values = tuple(windows)
    except TypeError:
        raise ConfigError(f"windows must be a sequence of whole numbers of days, got {windows!r}") from None
    out = tuple(_check_days("windows", w) for w in values)
    if len(set(out)) != len(out):
        raise ConfigError(f"windows must be distinct, got {windows!r}")
    return tuple(sorted(out))


def _cutoff_day(cutoff) -> tuple[pd.Timestamp, int]:
    ts = parse_date(cutoff, "cutoff")
    if ts != ts.normalize():
        raise DataError(_TABLE, "cutoff", "must be a date (midnight): features use rows strictly before it",
                        str(cutoff))
    return ts, int((np.datetime64(ts.to_datetime64(), "D") - _EPOCH).astype(np.int64))


def _day_number(ts: pd.Timestamp) -> int:
    """Days since 1970 of a timestamp's calendar day (wall clock for a tz-aware one, as for the log's rows)."""
    if ts.tzinfo is not None:
        ts = ts.tz_localize(None)
    return int((np.datetime64(ts.floor("D").to_datetime64(), "D") - _EPOCH).astype(np.int64))


def _start_day(log: _Log, history_start) -> int:
    """The history start as a day number: the given date's day, or the first day of the log."""
    if history_start is None:
        return log.first_day
    return _day_number(parse_date(history_start, "history_start"))


def _end_day(log: _Log, observation_end) -> tuple[pd.Timestamp, float]:
    """observation_end (exclusive) as a Timestamp and in fractional days since 1970 (default: last day + 1)."""
    if observation_end is None:
        day = log.last_day + 1
        return pd.Timestamp(_EPOCH + np.timedelta64(day, "D")), float(day)
    ts = parse_date(observation_end, "observation_end")
    return ts, (ts - pd.Timestamp(_EPOCH)) / pd.Timedelta(days=1)


# ----------------------------------------------------------------------------------------------- features
def _trend(recent: np.ndarray, prior: np.ndarray) -> np.ndarray:
    denom = np.abs(recent) + np.abs(prior)
    out = np.zeros_like(recent)
    np.divide(recent - prior, denom, out=out, where=denom > 0)
    return out


def _warn_late_dates(col, stamps: np.ndarray, take: np.ndarray, ids: pd.Index, cutoff: pd.Timestamp) -> None:
    """CustvalWarning when a snapshot customer's date attribute is at or after the cutoff (future knowledge)."""
    late = np.r_[stamps >= cutoff.to_datetime64(), False][take]  # NaT compares False; absent customers too
    if late.any():
        i = _first(late)
        warnings.warn(CustvalWarning(
            f"customers.{col}: {int(late.sum())} snapshot customers have a value at or after the cutoff "
            f"{cutoff.date()} (e.g. customer {ids[i]!r}: {pd.Timestamp(stamps[take[i]])}); days_since_{col} "
            f"<= 0 leaks what happened after the cutoff: pass only values known at the cutoff"), stacklevel=5)


def _attribute_columns(customers, ids: pd.Index, cutoff: pd.Timestamp, taken: set[str]) -> dict[str, object]:
    if not isinstance(customers, pd.DataFrame):
        raise SchemaError("customers", "*", "must be a pandas DataFrame", type(customers).__name__)
    if "customer_id" not in customers.columns:
        raise SchemaError("customers", "customer_id", "required column missing",
                          f"available: {[str(c) for c in customers.columns]}")
    cid = customers["customer_id"]
    if cid.isna().any():
        raise DataError("customers", "customer_id", "must not be missing (NaN/None)",
                        f"row {customers.index[_first(cid.isna().to_numpy())]!r}")
    dup = cid.duplicated().to_numpy()
    if dup.any():
        raise DataError("customers", "customer_id", "must be unique (one row per customer)", cid.iloc[_first(dup)])
    numeric_ids = pd.api.types.is_numeric_dtype(ids.dtype)
    if pd.api.types.is_numeric_dtype(cid.dtype) != numeric_ids:
        raise SchemaError("customers", "customer_id",
                          f"must have the same kind of ids as transactions.customer_id ({ids.dtype}), got {cid.dtype}",
                          cid.iloc[0] if len(cid) else None)
    pos = pd.Index(cid).get_indexer(ids)
    take = np.where(pos >= 0, pos, len(customers))  # the row after the last one: a missing value
    fill = np.where(pos >= 0, pos, -1)  # the same for take(allow_fill=True)
    out: dict[str, object] = {}
    for col in customers.columns:
        if col == "customer_id":
            continue
        s = customers[col]
        if isinstance(s.dtype, pd.DatetimeTZDtype):
            s = s.dt.tz_localize(None)
        name = str(col)
        if pd.api.types.is_datetime64_dtype(s.dtype):
            name = f"days_since_{col}"
            stamps = s.to_numpy().astype("datetime64[ns]")
            values = (cutoff.to_datetime64() - stamps) / np.timedelta64(1, "D")
            _warn_late_dates(col, stamps, take, ids, cutoff)
        elif pd.api.types.is_timedelta64_dtype(s.dtype):
            values = s.to_numpy() / np.timedelta64(1, "D")
        elif pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype):
            values = s.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            values = None
        if name in taken or name == CHURN or name.startswith(LABEL_PREFIX):
            raise SchemaError("customers", str(col), "attribute name clashes with a snapshot column or label", name)
        taken.add(name)
        if values is None:  # text; a customer without a row gets <NA>
            out[name] = s.astype("string").array.take(fill, allow_fill=True)
        else:
            out[name] = np.r_[np.asarray(values, dtype=np.float64), np.nan][take]
    return out


def _scalar(value):
    return value.item() if isinstance(value, np.generic) else value


def _is_numeric_index(index: pd.Index) -> bool:
    if pd.api.types.is_bool_dtype(index.dtype):
        return False
    if pd.api.types.is_numeric_dtype(index.dtype):
        return True
    return pd.api.types.infer_dtype(index, skipna=True) in ("integer", "floating", "mixed-integer-float", "decimal")


def _extra_columns(log: _Log, cutoff: pd.Timestamp, c: int, pop_ids: pd.Index, extra_features,
                   taken: set[str]) -> dict[str, np.ndarray]:
    """Columns of `extra_features(rows before cutoff, cutoff)`, aligned to the population (NaN elsewhere).

    "Before the cutoff" is the per-row day rule of every other feature (the calendar day of the timestamp,
    wall-clock for tz-aware logs, is < the cutoff day), so tz-aware logs work too."""
    before = log.frame[log.row_day < c]
    extra = extra_features(before, cutoff)
    if not isinstance(extra, pd.DataFrame):
        raise ConfigError(f"extra_features must return a DataFrame indexed by customer_id, got {type(extra).__name__}")
    clash = sorted(set(map(str, extra.columns)) & taken)
    if clash:
        raise ConfigError(f"extra_features columns {clash} clash with snapshot columns")
    index = extra.index
    dup = index.duplicated()
    if dup.any():
        raise DataError("extra_features", "customer_id", "index must be unique (one row per customer)",
                        _scalar(index[_first(dup)]))
    if len(index) and _is_numeric_index(index) != pd.api.types.is_numeric_dtype(pop_ids.dtype):
        raise DataError("extra_features", "customer_id",
                        f"index must have the same kind of ids as transactions.customer_id ({pop_ids.dtype}), "
                        f"got {index.dtype}", _scalar(index[0]))
    aligned = extra.reindex(pop_ids)
    out = {}
    for name in extra.columns:
        try:
            out[str(name)] = aligned[name].to_numpy(dtype=np.float64, na_value=np.nan)
        except (TypeError, ValueError):
            raise DataError("extra_features", str(name), "must be numeric",
                            extra[name].dropna().iloc[0] if extra[name].notna().any() else None) from None
    return out


# ------------------------------------------------------------------------------------------- one snapshot
@dataclass
class _History:
    """Purchase and spend history before cutoff day `c`, shared by the feature blocks of one snapshot.

    ``p_*``: purchase days before c, sorted by (code, day), with the start/end of each customer's run
    (``p_starts``, ``p_ends``, ``p_new_run``) and its code (``p_run_code``); ``s_*``: every customer-day before
    c (spend, returns included). ``first``/``last``/``frequency``/``total`` are per customer code (length
    `log.n`); ``pop`` is the snapshot population (codes of the active customers); ``start`` is the history
    start day: a window reaching before it is not covered."""

    c: int
    start: int
    n: int
    pop: np.ndarray
    p_code: np.ndarray
    p_day: np.ndarray
    p_new_run: np.ndarray
    p_starts: np.ndarray
    p_ends: np.ndarray
    p_run_code: np.ndarray
    s_code: np.ndarray
    s_day: np.ndarray
    s_net: np.ndarray
    frequency: np.ndarray
    first: np.ndarray
    last: np.ndarray
    total: np.ndarray


def _check_label_window(log: _Log, cutoff_ts: pd.Timestamp, c: int, horizon_days: int, observation_end) -> None:
    end_ts, end = _end_day(log, observation_end)
    if c + horizon_days > end:
        raise DataError(
            _TABLE, "cutoff",
            f"labels need the window [cutoff, cutoff + {horizon_days} days) inside the observed data, which "
            f"ends at {end_ts} (exclusive); use an earlier cutoff, labels=False or a later observation_end",
            str(cutoff_ts.date()))


def _history(log: _Log, cutoff_ts: pd.Timestamp, c: int, active_days: int | None, start: int) -> _History:
    """Purchase days and spend before the cutoff, first/last purchase day, and the active population."""
    n = log.n
    pre = log.cd_day < c
    p_idx = np.flatnonzero(pre & log.cd_purchase)
    p_code, p_day = log.cd_code[p_idx], log.cd_day[p_idx]
    active_from = -np.inf if active_days is None else c - active_days
    active = np.bincount(p_code[p_day >= active_from], minlength=n) > 0
    pop = np.flatnonzero(active)
    if len(pop) == 0:
        rule = "any purchase day before the cutoff" if active_days is None else \
            f">= 1 purchase day in [cutoff - {active_days} days, cutoff)"
        raise DataError(_TABLE, "customer_id", f"no active customers at cutoff {cutoff_ts.date()} "
                        f"(population rule: {rule})", str(cutoff_ts.date()))
    freq = np.bincount(p_code, minlength=n).astype(np.float64)
    change = np.r_[True, p_code[1:] != p_code[:-1]]
    starts = np.flatnonzero(change)
    ends = np.r_[starts[1:], len(p_code)]
    ucode = p_code[starts]
    first = np.zeros(n, dtype=np.int64)
    last = np.zeros(n, dtype=np.int64)
    first[ucode] = p_day[starts]
    last[ucode] = p_day[ends - 1]
    s_code, s_day, s_net = log.cd_code[pre], log.cd_day[pre], log.cd_net[pre]
    total = np.bincount(s_code, weights=s_net, minlength=n)
    return _History(c=c, start=start, n=n, pop=pop, p_code=p_code, p_day=p_day, p_new_run=change, p_starts=starts, p_ends=ends,
                    p_run_code=ucode, s_code=s_code, s_day=s_day, s_net=s_net, frequency=freq, first=first,
                    last=last, total=total)


def _rfm_totals(h: _History) -> dict[str, np.ndarray]:
    """recency_days, tenure_days, frequency, monetary_total and monetary_mean of the population."""
    f = h.frequency[h.pop]
    total = h.total[h.pop]
    return {"recency_days": (h.c - h.last[h.pop]).astype(np.float64),
            "tenure_days": (h.c - h.first[h.pop]).astype(np.float64),
            "frequency": f, "monetary_total": total, "monetary_mean": total / f}


def _covered(h: _History, w: int) -> bool:
    """Whether the window [c - w, c) lies inside the observed history (starts on or after its first day)."""
    return h.c - w >= h.start


def _window_counts_and_spend(h: _History, windows: tuple[int, ...]) -> dict[str, np.ndarray]:
    """n_purchases_{w}d (purchase days) and spend_{w}d (net amount) in [c - w, c), for each window w; NaN for
    a window that is not covered."""
    cols = {}
    for w in windows:
        if not _covered(h, w):
            cols[f"n_purchases_{w}d"], cols[f"spend_{w}d"] = np.full(len(h.pop), np.nan), np.full(len(h.pop), np.nan)
            continue
        cols[f"n_purchases_{w}d"] = np.bincount(h.p_code[h.p_day >= h.c - w], minlength=h.n)[h.pop].astype(np.float64)
        in_w = h.s_day >= h.c - w
        cols[f"spend_{w}d"] = np.bincount(h.s_code[in_w], weights=h.s_net[in_w], minlength=h.n)[h.pop]
    return cols


def _trends(h: _History, windows: tuple[int, ...], window_cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """trend_{purchases,spend}_{w1}_{w2}: the rate per day in [c - w1, c) against the one in [c - w2, c - w1);
    NaN when w2 is not covered."""
    cols = {}
    for w1, w2 in zip(windows[:-1], windows[1:], strict=True):
        if not _covered(h, w2):
            cols[f"trend_purchases_{w1}_{w2}"] = np.full(len(h.pop), np.nan)
            cols[f"trend_spend_{w1}_{w2}"] = np.full(len(h.pop), np.nan)
            continue
        n1, n2 = window_cols[f"n_purchases_{w1}d"], window_cols[f"n_purchases_{w2}d"]
        cols[f"trend_purchases_{w1}_{w2}"] = _trend(n1 / w1, (n2 - n1) / (w2 - w1))
        # the prior window's spend summed on its own (not spend_w2 - spend_w1, which can leave rounding dust)
        in_prior = (h.s_day >= h.c - w2) & (h.s_day < h.c - w1)
        prior = np.bincount(h.s_code[in_prior], weights=h.s_net[in_prior], minlength=h.n)[h.pop]
        cols[f"trend_spend_{w1}_{w2}"] = _trend(window_cols[f"spend_{w1}d"] / w1, prior / (w2 - w1))
    return cols


def _interpurchase_times(h: _History, recency_days: np.ndarray) -> dict[str, np.ndarray]:
    """ipt_mean_days, ipt_std_days, ipt_last_days (gaps between consecutive purchase days) and recency_ratio."""
    pop, n = h.pop, h.n
    f = h.frequency[pop]
    multi = f >= 2
    ipt_mean = np.full(len(pop), np.nan)
    ipt_mean[multi] = (h.last[pop] - h.first[pop])[multi] / (f[multi] - 1)
    same = ~h.p_new_run[1:]
    g_code = h.p_code[1:][same]
    gap = (h.p_day[1:] - h.p_day[:-1])[same].astype(np.float64)
    mean_all = np.zeros(n)
    mean_all[pop] = np.nan_to_num(ipt_mean)
    sq = np.bincount(g_code, weights=(gap - mean_all[g_code]) ** 2, minlength=n)[pop]
    ipt_std = np.full(len(pop), np.nan)
    ipt_std[multi] = np.sqrt(sq[multi] / (f[multi] - 1))
    prev = np.zeros(n, dtype=np.int64)
    two = (h.p_ends - h.p_starts) >= 2
    prev[h.p_run_code[two]] = h.p_day[h.p_ends[two] - 2]
    ipt_last = np.where(multi, (h.last[pop] - prev[pop]).astype(np.float64), np.nan)
    return {"ipt_mean_days": ipt_mean, "ipt_std_days": ipt_std, "ipt_last_days": ipt_last,
            "recency_ratio": recency_days / ipt_mean}


def _category_columns(log: _Log, h: _History) -> dict[str, np.ndarray]:
    """share_<k> (of the positive net spend per category), days_since_<k> (last day k was bought), n_categories."""
    pop, n, c = h.pop, h.n, h.c
    k = len(log.categories)
    k1 = k + 1
    cpre = log.cdc_day < c
    spend = np.bincount(log.cdc_code[cpre] * k1 + log.cdc_slot[cpre], weights=log.cdc_net[cpre],
                        minlength=n * k1).reshape(n, k1)[pop, :k]
    spend = np.maximum(spend, 0.0)
    denom = spend.sum(axis=1)
    share = np.zeros_like(spend)
    np.divide(spend, denom[:, None], out=share, where=denom[:, None] > 0)
    # last bought day per (category, customer): entries are sorted by (category, code, day)
    b = np.flatnonzero(log.cat_day < c)
    g = log.cat_slot[b] * n + log.cat_code[b]
    b_end = np.flatnonzero(np.r_[g[1:] != g[:-1], True]) if len(g) else np.zeros(0, dtype=np.int64)
    last_cat = np.full(k * n, np.nan)
    last_cat[g[b_end]] = log.cat_day[b[b_end]]
    since = c - last_cat.reshape(k, n)[:, pop]
    cols = {f"share_{name}": share[:, j] for j, name in enumerate(log.categories)}
    cols.update({f"days_since_{name}": since[j] for j, name in enumerate(log.categories)})
    cols["n_categories"] = (~np.isnan(since)).sum(axis=0).astype(np.float64)
    return cols


def _population_ids(log: _Log, pop: np.ndarray) -> pd.Index:
    """The population's customer ids, in the dtype of the transactions' ids where it can hold them."""
    ids = pd.Index(log.keys[pop], name="customer_id")
    try:
        ids = ids.astype(log.id_dtype)
    except (TypeError, ValueError):  # pragma: no cover
        pass
    return ids


def _labels(log: _Log, h: _History, horizon_days: int, cross_sell_new_only: bool,
            cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """churn (no purchase day in [c, c + H)) and, with categories, propensity_<k> (k bought in [c, c + H))."""
    pop, n = h.pop, h.n
    lo, hi = h.c, h.c + horizon_days
    in_h = (log.cd_day >= lo) & (log.cd_day < hi) & log.cd_purchase
    label_cols = {CHURN: (np.bincount(log.cd_code[in_h], minlength=n)[pop] == 0).astype(np.int8)}
    if log.categories is not None:
        k = len(log.categories)
        hit = (log.cat_day >= lo) & (log.cat_day < hi)
        got = np.bincount(log.cat_slot[hit] * n + log.cat_code[hit], minlength=k * n).reshape(k, n)[:, pop] > 0
        for j, name in enumerate(log.categories):
            y = got[j].astype(np.float64)
            if cross_sell_new_only:
                y[~np.isnan(cols[f"days_since_{name}"])] = np.nan
            label_cols[f"{LABEL_PREFIX}{name}"] = y
    return label_cols


def _snapshot(log: _Log, cutoff, *, customers, horizon_days, windows, active_days, labels, cross_sell_new_only,
              extra_features, observation_end, history_start) -> pd.DataFrame:
    """One snapshot: the feature blocks in column order, then the labels (see the module docstring)."""
    cutoff_ts, c = _cutoff_day(cutoff)
    if labels:
        _check_label_window(log, cutoff_ts, c, horizon_days, observation_end)
    h = _history(log, cutoff_ts, c, active_days, _start_day(log, history_start))
    cols = _rfm_totals(h)
    window_cols = _window_counts_and_spend(h, windows)
    cols.update(window_cols)
    cols.update(_trends(h, windows, window_cols))
    cols.update(_interpurchase_times(h, cols["recency_days"]))
    if log.categories is not None:
        cols.update(_category_columns(log, h))
    ids = _population_ids(log, h.pop)
    if customers is not None:
        cols.update(_attribute_columns(customers, ids, cutoff_ts, set(cols) | set(ID_COLUMNS)))
    if extra_features is not None:
        cols.update(_extra_columns(log, cutoff_ts, c, ids, extra_features, set(cols) | set(ID_COLUMNS)))
    label_cols = _labels(log, h, horizon_days, cross_sell_new_only, cols) if labels else {}
    data = {"customer_id": ids.array,
            "cutoff": np.full(len(h.pop), cutoff_ts.to_datetime64().astype("datetime64[ns]")),
            **cols, **label_cols}
    return pd.DataFrame(data, copy=False)


def _check_options(horizon_days, windows, active_days) -> tuple[int, tuple[int, ...], int | None]:
    return (_check_days("horizon_days", horizon_days), _check_windows(windows),
            _check_days("active_days", active_days, allow_none=True))


# -------------------------------------------------------------------------------------------------- public
def build_snapshot(transactions: pd.DataFrame, cutoff, *, customers: pd.DataFrame | None = None,
                   horizon_days: int = 90, windows=WINDOWS, active_days: int | None = 365, categories=None,
                   labels: bool = True, cross_sell_new_only: bool = False, extra_features=None,
                   observation_end=None, history_start=None) -> pd.DataFrame:
    """Features as of `cutoff` (rows with timestamp < cutoff) and labels from [cutoff, cutoff + horizon_days).

    One row per active customer (>= 1 purchase day in [cutoff - active_days, cutoff); None = any before),
    sorted by customer_id, RangeIndex. Columns: customer_id, cutoff, features (see the module docstring),
    then labels (`churn`, `propensity_<category>`) when `labels`. `observation_end` (exclusive; default the
    day after the last transaction) bounds the label window: a window past it is a DataError.
    `history_start` (default the day of the first transaction) is the first day the log is complete from:
    windows reaching before it are missing (NaN). Pass it when `transactions` is a part of a longer log
    (e.g. one bucket of customers), so that every part uses the same rule.
    """
    horizon_days, windows, active_days = _check_options(horizon_days, windows, active_days)
    log = _prepare(transactions, categories, keep_row_days=extra_features is not None)
    return _snapshot(log, cutoff, customers=customers, horizon_days=horizon_days, windows=windows,
                     active_days=active_days, labels=labels, cross_sell_new_only=cross_sell_new_only,
                     extra_features=extra_features, observation_end=observation_end, history_start=history_start)


def build_snapshots(transactions: pd.DataFrame, cutoffs, **kwargs) -> pd.DataFrame:
    """`build_snapshot` at each cutoff (ascending, distinct), stacked; the log is reduced once for all of them."""
    if isinstance(cutoffs, (str, pd.Timestamp)) or not hasattr(cutoffs, "__iter__"):
        cutoffs = [cutoffs]
    parsed = [_cutoff_day(c) for c in cutoffs]
    if not parsed:
        raise ConfigError("cutoffs must contain at least one date")
    days = [d for _, d in parsed]
    if len(set(days)) != len(days):
        raise ConfigError(f"cutoffs must be distinct, got {[str(t.date()) for t, _ in parsed]}")
    unknown = sorted(set(kwargs) - {"customers", "horizon_days", "windows", "active_days", "categories", "labels",
                                    "cross_sell_new_only", "extra_features", "observation_end", "history_start"})
    if unknown:
        raise ConfigError(f"unknown build_snapshots options {unknown}")
    opts = dict(customers=None, horizon_days=90, windows=WINDOWS, active_days=365, labels=True,
                cross_sell_new_only=False, extra_features=None, observation_end=None, history_start=None)
    categories = kwargs.pop("categories", None)
    opts.update(kwargs)
    opts["horizon_days"], opts["windows"], opts["active_days"] = _check_options(
        opts["horizon_days"], opts["windows"], opts["active_days"])
    log = _prepare(transactions, categories, keep_row_days=opts["extra_features"] is not None)
    blocks = [_snapshot(log, ts, **opts) for ts, _ in sorted(parsed, key=lambda p: p[1])]
    return pd.concat(blocks, axis=0, ignore_index=True)


def history_start(transactions: pd.DataFrame) -> pd.Timestamp:
    """The first day of a log (midnight, wall clock for tz-aware timestamps): the default history start of
    `build_snapshot`, and what `cutoff_schedule(n_cutoffs="auto")` counts history from."""
    _check_frame(transactions)
    return pd.Timestamp(_EPOCH + np.timedelta64(int(_timestamps(transactions).min()), "D"))


def cutoff_schedule(observation_end, *, n_cutoffs, every_days: int, horizon_days: int, history_start=None,
                    min_history_days: int = 90, max_cutoffs: int = 6) -> list[pd.Timestamp]:
    """Cutoffs (midnights, ascending): the latest is observation_end - horizon_days (floored to midnight, so
    its label window ends by observation_end, exclusive), then one every `every_days` days before it.

    `n_cutoffs`: how many, or "auto": as many as the log allows, up to `max_cutoffs`, each with at least
    `min_history_days` days of history since `history_start` (required with "auto") before it. None fits ->
    DataError."""
    every = _check_days("every_days", every_days)
    h = _check_days("horizon_days", horizon_days)
    end = parse_date(observation_end, "observation_end")
    latest = (end - pd.Timedelta(days=h)).floor("D")
    if not (isinstance(n_cutoffs, str) and n_cutoffs == "auto"):
        n = _check_days("n_cutoffs", n_cutoffs)
        return [latest - pd.Timedelta(days=every * i) for i in range(n - 1, -1, -1)]
    if history_start is None:
        raise ConfigError("n_cutoffs='auto' needs history_start (the first day of the log) to count history from")
    least = _check_days("min_history_days", min_history_days)
    most = _check_days("max_cutoffs", max_cutoffs)
    start = parse_date(history_start, "history_start").floor("D")
    if start.tzinfo is not None:
        start = start.tz_localize(None)
    cutoffs = [c for c in (latest - pd.Timedelta(days=every * i) for i in range(most))
               if (c - start).days >= least]
    if not cutoffs:
        raise DataError(_TABLE, "timestamp",
                        f"the history from {start.date()} to observation_end {end.date()} leaves no cutoff with "
                        f"min_history_days={least} days before it and horizon_days={h} days of labels after it",
                        f"{(end - start).days} days")
    return sorted(cutoffs)


def uncovered_columns(windows, history_days: int) -> list[str]:
    """The window and trend columns that are missing (NaN) in every row of a snapshot whose cutoff has
    `history_days` days of history before it: n_purchases/spend of each window w > history_days and the
    trends ending at such a window."""
    windows = _check_windows(windows)
    cols = [f"{kind}_{w}d" for w in windows if w > history_days for kind in ("n_purchases", "spend")]
    return cols + [f"trend_{kind}_{w1}_{w2}" for w1, w2 in zip(windows[:-1], windows[1:], strict=True)
                   if w2 > history_days for kind in ("purchases", "spend")]


def feature_columns(frame: pd.DataFrame) -> list[str]:
    """The feature columns of a snapshot frame: everything but the id columns and the labels, in order."""
    drop = set(ID_COLUMNS) | set(label_columns(frame))
    return [c for c in frame.columns if c not in drop]


def label_columns(frame: pd.DataFrame) -> list[str]:
    """The label columns of a snapshot frame: `churn` and the `propensity_<category>` columns, in order."""
    return [c for c in frame.columns if c == CHURN or (isinstance(c, str) and c.startswith(LABEL_PREFIX))]


@dataclass
class TimeSplit:
    """Train / validation / test parts of stacked snapshots, split by cutoff."""

    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame


def time_split(snapshots: pd.DataFrame, *, horizon_days: int, n_valid: int = 1, n_test: int = 1) -> TimeSplit:
    """Split stacked snapshots by cutoff without label leakage between parts.

    test = the last `n_test` cutoffs; valid = the last `n_valid` cutoffs c with c + horizon_days <= the first
    test cutoff (cutoffs in between, whose label windows would reach into the test period, are dropped);
    train = every cutoff c with c + horizon_days <= the first valid cutoff. Any empty part -> DataError.
    """
    for name, value in (("horizon_days", horizon_days), ("n_valid", n_valid), ("n_test", n_test)):
        _check_days(name, value)
    if not isinstance(snapshots, pd.DataFrame):
        raise SchemaError("snapshots", "*", "must be a pandas DataFrame", type(snapshots).__name__)
    if "cutoff" not in snapshots.columns:
        raise SchemaError("snapshots", "cutoff", "required column missing (build_snapshots output)")
    col = pd.to_datetime(snapshots["cutoff"])
    train_c, valid_c, test_c = split_cutoffs(col.unique(), horizon_days=horizon_days, n_valid=n_valid,
                                             n_test=n_test)

    def part(cs) -> pd.DataFrame:
        return snapshots.loc[col.isin(cs).to_numpy()].reset_index(drop=True)

    return TimeSplit(train=part(train_c), valid=part(valid_c), test=part(test_c))


def split_cutoffs(cutoffs, *, horizon_days: int, n_valid: int = 1, n_test: int = 1
                  ) -> tuple[list[pd.Timestamp], list[pd.Timestamp], list[pd.Timestamp]]:
    """(train, valid, test) cutoffs of `time_split` (its rule and errors), from the cutoffs alone."""
    h = _check_days("horizon_days", horizon_days)
    n_valid = _check_days("n_valid", n_valid)
    n_test = _check_days("n_test", n_test)
    cutoffs = sorted(pd.Timestamp(c) for c in set(pd.to_datetime(pd.Index(cutoffs))))
    gap = pd.Timedelta(days=h)
    rule = (f"split of {len(cutoffs)} cutoffs ({', '.join(str(pd.Timestamp(c).date()) for c in cutoffs)}) "
            f"with n_test={n_test}, n_valid={n_valid}, horizon_days={h}")
    if len(cutoffs) < n_test + 1:
        raise DataError("snapshots", "cutoff", f"need more than n_test cutoffs: {rule}", len(cutoffs))
    test_c = cutoffs[-n_test:]
    eligible = [c for c in cutoffs[:-n_test] if c + gap <= test_c[0]]
    valid_c = eligible[-n_valid:]
    if not valid_c:
        raise DataError("snapshots", "cutoff", f"no validation cutoff whose label window ends by the first test "
                        f"cutoff: {rule}", str(pd.Timestamp(test_c[0]).date()))
    train_c = [c for c in cutoffs if c + gap <= valid_c[0]]
    if not train_c:
        raise DataError("snapshots", "cutoff", f"no training cutoff whose label window ends by the first validation "
                        f"cutoff: {rule}", str(pd.Timestamp(valid_c[0]).date()))
    return train_c, valid_c, test_c



def snapshot_categories(transactions: pd.DataFrame, categories=None) -> list[str] | None:
    """The category names `build_snapshot(transactions, ..., categories=categories)` builds its category
    columns for: `categories` checked, or every category of the log, sorted; None without a category column.
    Pass the result as `categories` to make the column set explicit (and recordable in a model's recipe)."""
    _check_frame(transactions)
    names, _ = _resolve_categories(transactions, categories)
    return None if names is None else list(names)


# ------------------------------------------------------------------------------------------ model recipes
# A logged churn, propensity or uplift model records in its spec how its input features were built: its
# *recipe*. A scorer rebuilds the same columns as of a scoring date with
# `build_snapshot(log, as_of, history_start=..., **recipe_options(recipe, customers=..., extra_features=...))`.
# history_start and observation_end are properties of the log being scored, not of the model, so a recipe does
# not hold them: by default build_snapshot takes the first day of the log given to it.

def _non_negative(value: float) -> float:
    if not value >= 0:
        raise SettingError("", f"must be a number >= 0, got {value!r}")
    return value


Cost = Annotated[Real, AfterValidator(_non_negative)]
RESPONSE_VALUES = ("margin", "second_lifetime_value", "spend")
RECIPE_KINDS = ("snapshot", "table")
_STRICT = ConfigDict(extra="forbid", use_attribute_docstrings=True, frozen=True)


class ResponseValue(BaseModel):
    """What one response of an uplift model's campaign is worth and whom it targets (the targeting settings of
    the training job): value per customer = margin, or margin_rate x the second lifetime value, or margin_rate
    (label spend: the uplift is already money)."""

    model_config = _STRICT

    response_value: Annotated[str, one_of(*RESPONSE_VALUES)]
    """margin (a fixed margin per conversion) | second_lifetime_value (margin_rate x the spend expected after a
    return, the model's `value_model`) | spend (margin_rate x the spend uplift)."""
    margin: PositiveReal | None
    """Net profit of one conversion (response_value margin; else null)."""
    margin_rate: Share | None
    """Profit share of spend (response_value second_lifetime_value or spend; else null)."""
    lapse_days: PositiveInt
    """A customer is lapsed after this many days without a purchase."""
    population: Annotated[str, one_of("lapsed", "active", "campaign")]
    """Who the model ranks: lapsed, active (a purchase in the lapse_days before the scoring date) or campaign."""
    costs: dict[Name, Cost]
    """Cost of one contact per treatment arm."""
    horizon_days: PositiveInt
    """The second lifetime value is the spend in this many days after a return."""

    @model_validator(mode="after")
    def _one_value(self):
        fixed = self.response_value == "margin"
        if fixed != (self.margin is not None):
            raise SettingError("margin", f"must be {'a number' if fixed else 'null'} with response_value="
                                         f"{self.response_value}, got {self.margin!r}")
        if fixed != (self.margin_rate is None):
            raise SettingError("margin_rate", f"must be {'null' if fixed else 'a share'} with response_value="
                                              f"{self.response_value}, got {self.margin_rate!r}")
        if not self.costs:
            raise SettingError("costs", "must give the cost of a contact for every treatment arm, got {}")
        return self


class Recipe(BaseModel):
    """How a model's input features were built (module section "model recipes"): every key is required;
    the snapshot keys are null for a table model. Checked with `check_recipe`."""

    model_config = _STRICT

    kind: Annotated[str, one_of(*RECIPE_KINDS)]
    """snapshot (point-in-time features of a transaction log, build_snapshot) | table (the columns of a table)."""
    time_unit: Period
    """The unit of every duration feature and setting: D (days)."""
    windows: Annotated[tuple[PositiveInt, ...], Field(min_length=1)] | None
    """Look-back windows of the counts, spends and trends (snapshot; null for a table)."""
    active_days: PositiveInt | None
    """Customers with a purchase in this many days before the cutoff (null: any purchase before it)."""
    categories: Annotated[tuple[Name, ...], Field(min_length=1)] | None
    """The categories with share_ / days_since_ columns, in column order (null: no category columns)."""
    cross_sell_new_only: Flag
    """Propensity labels only for customers who never bought the category."""
    horizon_days: PositiveInt | None
    """The label window: churn / propensity horizon, or an uplift campaign's response window (days)."""
    label: Name
    """churn | propensity | the uplift outcome (conversion | spend)."""
    customers: Flag
    """Attributes of a customer table were features (pass the customer table to rebuild them)."""
    clv_features: Flag
    """BG/NBD p_alive and expected_purchases_<horizon_days>d were features
    (extra_features=custval.models.clv.features.CLVFeatures(horizon_days))."""
    id_column: Name
    """The customer id column (customer_id for snapshots; a table's own id column)."""
    value: ResponseValue | None = None
    """An uplift model's response value and targeting (null for classifiers)."""

    @model_validator(mode="after")
    def _consistent(self):
        if self.kind == "snapshot":
            for name in ("windows", "horizon_days"):
                if getattr(self, name) is None:
                    raise SettingError(name, "must be given for a snapshot recipe, got None")
            if len(set(self.windows)) != len(self.windows):
                raise SettingError("windows", f"must be distinct day counts, got {list(self.windows)}")
        else:
            for name in ("windows", "active_days", "categories"):
                if getattr(self, name) is not None:
                    raise SettingError(name, f"must be null for a table recipe, got {getattr(self, name)!r}")
            if self.clv_features:
                raise SettingError("clv_features", "must be false for a table recipe, got True")
        if self.categories is not None and len(set(self.categories)) != len(self.categories):
            raise SettingError("categories", f"must be distinct names, got {list(self.categories)}")
        return self


def check_recipe(recipe: Mapping[str, Any] | None, *, where: str = "recipe") -> dict[str, Any]:
    """The recipe checked key by key (`Recipe`): a ConfigError naming the key (`recipe.windows[1] must be an
    integer >= 1, got -1`; unknown keys listed with the allowed ones) for a tampered or foreign one; returns
    it as plain JSON values. None (a model logged before recipes existed) is a ConfigError too. `where`
    prefixes the key in messages (e.g. "churn.recipe")."""
    if recipe is None:
        raise ConfigError(f"{where}: the model was logged without a recipe (before custval recorded how its "
                          "features were built), so its features cannot be rebuilt: retrain it")
    if not isinstance(recipe, Mapping):
        raise ConfigError(f"{where} must be a mapping of recipe keys {sorted(Recipe.model_fields)}, "
                          f"got {type(recipe).__name__}")
    try:
        return Recipe.model_validate(dict(recipe)).model_dump(mode="json")
    except ValidationError as exc:
        raise config_error(exc, Recipe, prefix=where) from None


def snapshot_recipe(*, label: str, windows, active_days: int | None, categories, horizon_days: int,
                    cross_sell_new_only: bool = False, customers: bool, clv_features: bool = False,
                    value: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The recipe of a model trained on build_snapshot features built with these options (checked)."""
    return check_recipe({
        "kind": "snapshot", "time_unit": "D", "windows": list(_check_windows(windows)), "active_days": active_days,
        "categories": None if categories is None else list(categories), "cross_sell_new_only": cross_sell_new_only,
        "horizon_days": horizon_days, "label": label, "customers": customers, "clv_features": clv_features,
        "id_column": "customer_id", "value": None if value is None else dict(value)})


def table_recipe(*, label: str, id_column: str, horizon_days: int | None = None,
                 value: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The recipe of a model trained on the columns of a table (a churn customer table, a campaign table)."""
    return check_recipe({
        "kind": "table", "time_unit": "D", "windows": None, "active_days": None, "categories": None,
        "cross_sell_new_only": False, "horizon_days": horizon_days, "label": label, "customers": False,
        "clv_features": False, "id_column": id_column, "value": None if value is None else dict(value)})


def recipe_options(recipe: Mapping[str, Any] | None, *, customers: pd.DataFrame | None = None,
                   extra_features=None) -> dict[str, Any]:
    """The `build_snapshot` keyword arguments that rebuild a model's feature columns (labels off): windows,
    active_days, categories, horizon_days, cross_sell_new_only of its recipe, plus the data it needs.

    customers: the customer table, passed on only when the model was trained with customer attributes (and
    then required); extra_features: the CLV features callable
    (custval.models.clv.features.CLVFeatures(recipe["horizon_days"])), passed on only when the recipe's
    clv_features is true (and then required). history_start and observation_end belong to the log scored and
    are left to the caller (build_snapshot's default history start is the log's first day). ConfigError for a
    recipe check_recipe refuses, a table recipe or a time unit other than days."""
    checked = check_recipe(recipe)
    if checked["kind"] != "snapshot":
        raise ConfigError(f"recipe.kind: a {checked['kind']!r} model's features are the columns of its table "
                          f"(id column {checked['id_column']!r}), not snapshot features of a log")
    if checked["time_unit"] != "D":
        raise ConfigError(f"recipe.time_unit: snapshot features are built in days ('D'), got "
                          f"{checked['time_unit']!r}")
    if checked["customers"] and customers is None:
        raise ConfigError("recipe.customers: the model was trained with customer attributes as features: pass "
                          "customers= (the customer table) to rebuild them")
    if checked["clv_features"] and extra_features is None:
        raise ConfigError(f"recipe.clv_features: the model was trained with the CLV features: pass extra_features="
                          f"CLVFeatures({checked['horizon_days']}) (custval.models.clv.features) to rebuild them")
    return {"horizon_days": checked["horizon_days"], "windows": tuple(checked["windows"]),
            "active_days": checked["active_days"], "categories": checked["categories"],
            "cross_sell_new_only": checked["cross_sell_new_only"], "labels": False,
            "customers": customers if checked["customers"] else None,
            "extra_features": extra_features if checked["clv_features"] else None}


# the label each scoring role's model must have been trained on, and the roles whose label windows must agree
ROLE_LABELS = {"churn": ("churn",), "propensity": ("propensity",), "retention": ("conversion", "spend"),
               "winback": ("conversion", "spend")}
SAME_HORIZON = (("churn", "retention"),)


def compatible_recipes(recipes: Mapping[str, Mapping[str, Any] | None]) -> dict[str, dict[str, Any]]:
    """The recipes of the models a scoring run combines ({role: recipe}), each checked (`check_recipe`, keys
    named `<role>.recipe.<key>`), and checked against each other; returns them checked.

    ConfigError, naming both roles, when two models disagree on what must match:
      * time_unit: every duration feature is read in the model's unit, so all must agree;
      * the label window (horizon_days) of the roles in SAME_HORIZON: the retention priority multiplies the
        churn probability over the churn model's horizon by the retention offer's uplift over its response
        window, so both must count the same days.
    A role of ROLE_LABELS whose model was trained on another label (a propensity model as churn) is a ConfigError
    naming the role. Other differences are fine: each model's features are rebuilt from its own recipe (other
    windows, active_days, categories, customer attributes), and churn and propensity answer separate questions
    (their horizons may differ)."""
    checked = {role: check_recipe(recipe, where=f"{role}.recipe") for role, recipe in recipes.items()}
    for role, recipe in checked.items():
        allowed = ROLE_LABELS.get(role)
        if allowed is not None and recipe["label"] not in allowed:
            raise ConfigError(f"{role}.recipe.label: a {role} model must be trained on {' or '.join(allowed)}, "
                              f"got {recipe['label']!r}")
    for a, b in pairwise(checked):
        if checked[a]["time_unit"] != checked[b]["time_unit"]:
            raise ConfigError(f"{a}.recipe.time_unit={checked[a]['time_unit']!r} differs from {b}.recipe.time_unit="
                              f"{checked[b]['time_unit']!r}: models trained in different time units cannot be "
                              "combined")
    for a, b in SAME_HORIZON:
        if a in checked and b in checked and checked[a]["horizon_days"] != checked[b]["horizon_days"]:
            raise ConfigError(f"{a}.recipe.horizon_days={checked[a]['horizon_days']} differs from {b}.recipe."
                              f"horizon_days={checked[b]['horizon_days']}: the {a} label window and the {b} "
                              "response window must count the same days (retrain one of them)")
    return checked
