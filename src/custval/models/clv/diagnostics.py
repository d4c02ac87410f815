"""Model checks over calendar time: the cumulative repeat-purchase tracking curve (Fader, Hardie & Lee 2005,
fig. 2), actual vs expected for the whole cohort."""

from __future__ import annotations

import numpy as np
import pandas as pd

from custval.units import period_days


def tracking_curve(purchase_model, transactions: pd.DataFrame, end, period: str = "W",
                   step_days: float = 7.0) -> pd.DataFrame:
    """Cumulative repeat purchases of the cohort by `step_days` steps up to `end` (inclusive day): actual,
    and expected from `purchase_model.expected_purchases_new(t)` for every customer since their first purchase.

    Same-day transactions merge into one purchase, as in the RFM summary the model was fitted on.
    """
    days = transactions["timestamp"].to_numpy().astype("datetime64[D]")
    end_day = np.datetime64(pd.Timestamp(end).date(), "D")
    keep = days <= end_day
    purchases = pd.DataFrame({"customer_id": transactions["customer_id"].to_numpy()[keep], "day": days[keep]})
    purchases = purchases.drop_duplicates().sort_values(["customer_id", "day"], kind="stable")
    # pandas keeps datetime64[D] at second resolution: back to days explicitly
    purchase_days = purchases["day"].to_numpy().astype("datetime64[D]")
    first = purchases.groupby("customer_id", sort=False)["day"].transform("min").to_numpy().astype("datetime64[D]")
    repeat_days = purchase_days[purchase_days > first]
    customer_births = purchases.groupby("customer_id", sort=False)["day"].min().to_numpy().astype("datetime64[D]")
    births, birth_counts = np.unique(customer_births, return_counts=True)

    start = births.min()
    span = (end_day - start).astype(int)
    offsets = np.arange(step_days, span + step_days, step_days)
    offsets[-1] = min(offsets[-1], span + 1)  # last step ends after the end day, not beyond it
    grid = start + offsets.astype("timedelta64[D]")  # exclusive ends: purchases on days < grid count
    actual = np.searchsorted(np.sort(repeat_days), grid, side="left")

    elapsed_days = (grid[:, None] - births[None, :]).astype(float) - 1.0  # through the day before grid end
    elapsed = np.clip(elapsed_days, 0.0, None) / period_days(period)
    expected_each = np.asarray(purchase_model.expected_purchases_new(elapsed.ravel()), float).reshape(elapsed.shape)
    expected = (expected_each * birth_counts[None, :]).sum(axis=1)
    return pd.DataFrame({
        "date": pd.to_datetime(grid - np.timedelta64(1, "D")),
        "actual_cumulative": actual.astype(float),
        "expected_cumulative": expected,
        "actual": np.diff(actual, prepend=0).astype(float),
        "expected": np.diff(expected, prepend=0.0),
    })
