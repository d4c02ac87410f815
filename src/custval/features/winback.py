"""Win-back populations from a transaction log: who is lapsed as of a date, and the past lapses that ended in a
return (the evidence for a lapsed customer's "second lifetime value": what a customer spends once reactivated).

A purchase day is a calendar day with net spend (the log's amounts summed per customer and day, as the RFM
frequency counts days). A customer is lapsed at `as_of` when the last purchase day before `as_of` is at least
`lapse_days` earlier. A reactivation is a purchase day that follows a gap of at least `lapse_days`; its value
is the net spend in the `horizon_days` from that day on. Everything is computed from rows before `as_of`, and a
reactivation counts only when its whole value window ends by `as_of`, so nothing after the date is used.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from custval.errors import ConfigError, DataError
from custval.features.daily import calendar_days, daily_spend, grouped_sum
from custval.features.validation import require_columns

__all__ = ["LAPSE_FEATURES", "lapse_features", "lapsed_customers", "reactivations"]

# What is known of a customer at the moment of a lapse, used to predict the value of a return
LAPSE_FEATURES = ("orders_before", "mean_order_before", "tenure_days", "lapse_days")


def _days(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ConfigError(f"{name}: must be a whole number of days >= 1, got {value!r}")
    return int(value)


def _purchase_days(transactions: pd.DataFrame, as_of) -> tuple[np.ndarray, np.ndarray, np.ndarray, pd.Timestamp]:
    """(customer, day, net spend) of every customer and purchase day before `as_of` (net spend > 0), sorted by
    customer then day, and `as_of` as a Timestamp."""
    require_columns(transactions, ["customer_id", "timestamp", "amount"], "transactions")
    as_of = pd.Timestamp(as_of)
    before = (transactions["timestamp"] < as_of).to_numpy(dtype=bool)
    if not before.any():
        raise DataError("transactions", "timestamp", f"has no rows before as_of {as_of.date()}",
                        transactions["timestamp"].min())
    rows = transactions if before.all() else transactions.loc[before]
    ids = rows["customer_id"].to_numpy()
    codes, uniques = pd.factorize(ids, sort=True)  # a missing id (-1) is in no group, as in a groupby
    day = calendar_days(rows["timestamp"])
    amount = rows["amount"].to_numpy(dtype=float, na_value=np.nan)
    known = codes >= 0
    if not known.all():
        codes, day, amount = codes[known], day[known], amount[known]
    code, day, spend = daily_spend(codes, day, amount)
    bought = spend > 0
    return np.asarray(uniques)[code[bought]], day[bought], spend[bought], as_of


def lapsed_customers(transactions: pd.DataFrame, as_of, *, lapse_days: int) -> pd.DataFrame:
    """Customers whose last purchase day before `as_of` is at least `lapse_days` before it: customer_id,
    last_purchase, and the LAPSE_FEATURES as of `as_of` (lapse_days = days since the last purchase)."""
    lapse = _days("lapse_days", lapse_days)
    customer, day, amount, as_of = _purchase_days(transactions, as_of)
    # sorted by customer then day: each customer's rows are one block, first and last day at its ends
    new = np.r_[True, customer[1:] != customer[:-1]]
    starts = np.flatnonzero(new)
    ends = np.r_[starts[1:], len(customer)]
    spend = grouped_sum(amount, np.cumsum(new) - 1)
    first, last = day[starts], day[ends - 1]
    orders = (ends - starts).astype(float)
    since = (as_of.normalize().to_datetime64() - last) // np.timedelta64(1, "D")
    lapsed = since >= lapse
    return pd.DataFrame({
        "customer_id": customer[starts[lapsed]], "last_purchase": last[lapsed],
        "orders_before": orders[lapsed],
        "mean_order_before": spend[lapsed] / orders[lapsed],
        "tenure_days": ((last - first)[lapsed] // np.timedelta64(1, "D")).astype(float),
        "lapse_days": since[lapsed].astype(float),
    })


def reactivations(transactions: pd.DataFrame, as_of, *, lapse_days: int, horizon_days: int) -> pd.DataFrame:
    """Past returns after a lapse, one row per return: customer_id, returned_at, the LAPSE_FEATURES at the
    return (orders, mean order and tenure up to the last purchase before the gap; lapse_days = the gap) and
    `value`, the net spend from the return day over `horizon_days`. Only returns whose window ends by `as_of`."""
    lapse = _days("lapse_days", lapse_days)
    horizon = _days("horizon_days", horizon_days)
    customer, day, amount, as_of = _purchase_days(transactions, as_of)
    day = day.astype("datetime64[D]").astype(np.int64)
    same = np.r_[False, customer[1:] == customer[:-1]]
    gap = np.r_[0, np.diff(day)]
    returns = np.flatnonzero(same & (gap >= lapse) & (day + horizon <= as_of.normalize().to_datetime64()
                                                      .astype("datetime64[D]").astype(np.int64)))
    starts = np.flatnonzero(~same)
    block = np.cumsum(~same) - 1
    first_row = starts[block]
    cumulative = np.r_[0.0, np.cumsum(amount)]
    # the value window of a return: its customer's purchase days in [return day, return day + horizon); the key
    # (customer block, day) is sorted over the whole column, so one searchsorted finds every window's end
    span = int(day.max() - day.min()) + horizon + 1
    key = block * span + (day - day.min())
    ends = np.searchsorted(key, key[returns] + horizon, side="left")
    orders_before = (returns - first_row[returns]).astype(float)
    spend_before = cumulative[returns] - cumulative[first_row[returns]]
    return pd.DataFrame({
        "customer_id": customer[returns],
        "returned_at": pd.to_datetime(day[returns].astype("datetime64[D]")),
        "orders_before": orders_before,
        "mean_order_before": spend_before / orders_before,
        "tenure_days": (day[returns - 1] - day[first_row[returns]]).astype(float),
        "lapse_days": gap[returns].astype(float),
        "value": cumulative[ends] - cumulative[returns],
    })


def lapse_features(frame: pd.DataFrame) -> pd.DataFrame:
    """The LAPSE_FEATURES columns of a `lapsed_customers` or `reactivations` frame."""
    require_columns(frame, list(LAPSE_FEATURES), "lapses")
    return frame[list(LAPSE_FEATURES)].astype(float)
