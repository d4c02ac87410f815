"""Spend per customer and day from row arrays, with pandas' grouped sums but without its groupby set-up.

`DataFrame.groupby([...]).sum()` costs ~0.3 ms however few the rows, which dominates a served request of one
customer. These functions sort once with numpy and sum with one single-key `Series.groupby`, so the numbers
are pandas' own (compensated summation, rows in their log order within a group) on logs of any size.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["daily_spend", "grouped_sum"]


def grouped_sum(values: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The sum of `values` per label, for non-decreasing integer `labels` 0..k-1 (every label present): the
    numbers of pandas' `groupby(...).sum()` over the same groups (NaN counts as 0)."""
    return pd.Series(values, copy=False).groupby(labels, sort=False).sum().to_numpy()


def daily_spend(customer: np.ndarray, day: np.ndarray, amount: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(customer, day, spend) of every (customer, day) pair of the rows, sorted by customer then day: the
    rows and sums of `DataFrame({customer, day, amount}).groupby([customer, day], sort=True).amount.sum()`.
    `customer` and `day` are orderable arrays without missing values (integer codes, day numbers, dates)."""
    order = np.lexsort((day, customer))  # stable: a group's rows keep their order in the log
    customer, day = customer[order], day[order]
    new = np.r_[True, (customer[1:] != customer[:-1]) | (day[1:] != day[:-1])] if len(order) else \
        np.empty(0, dtype=bool)
    spend = grouped_sum(amount[order], np.cumsum(new) - 1)
    return customer[new], day[new], spend
