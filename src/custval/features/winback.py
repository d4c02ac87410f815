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
from custval.features.validation import require_columns

__all__ = ["LAPSE_FEATURES", "lapse_features", "lapsed_customers", "reactivations"]

# What is known of a customer at the moment of a lapse, used to predict the value of a return
LAPSE_FEATURES = ("orders_before", "mean_order_before", "tenure_days", "lapse_days")


def _days(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ConfigError(f"{name}: must be a whole number of days >= 1, got {value!r}")
    return int(value)


def _purchase_days(transactions: pd.DataFrame, as_of) -> tuple[pd.DataFrame, pd.Timestamp]:
    """One row per customer and purchase day before `as_of` (net spend > 0), sorted by customer then day."""
    require_columns(transactions, ["customer_id", "timestamp", "amount"], "transactions")
    as_of = pd.Timestamp(as_of)
    before = transactions.loc[transactions["timestamp"] < as_of, ["customer_id", "timestamp", "amount"]]
    if before.empty:
        raise DataError("transactions", "timestamp", f"has no rows before as_of {as_of.date()}",
                        transactions["timestamp"].min())
    days = (before.assign(day=before["timestamp"].dt.normalize())
            .groupby(["customer_id", "day"], sort=True, observed=True)["amount"].sum().reset_index())
    return days[days["amount"] > 0].reset_index(drop=True), as_of


def lapsed_customers(transactions: pd.DataFrame, as_of, *, lapse_days: int) -> pd.DataFrame:
    """Customers whose last purchase day before `as_of` is at least `lapse_days` before it: customer_id,
    last_purchase, and the LAPSE_FEATURES as of `as_of` (lapse_days = days since the last purchase)."""
    lapse = _days("lapse_days", lapse_days)
    days, as_of = _purchase_days(transactions, as_of)
    # days is sorted by customer then day: each customer's rows are one block, first and last day at its ends
    customer = days["customer_id"].to_numpy()
    day = days["day"].to_numpy()
    starts = np.flatnonzero(np.r_[True, customer[1:] != customer[:-1]])
    ends = np.r_[starts[1:], len(customer)]
    spend = days.groupby("customer_id", sort=True, observed=True)["amount"].sum().to_numpy(dtype=float)
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
    days, as_of = _purchase_days(transactions, as_of)
    customer = days["customer_id"].to_numpy()
    day = days["day"].to_numpy(dtype="datetime64[D]").astype(np.int64)
    amount = days["amount"].to_numpy(dtype=float)
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
