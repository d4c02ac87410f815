"""Ranked lists from scores: retention (expected value saved by a contact), win-back (expected incremental second
lifetime value) and cross-sell (the best category per customer), each ranked with ties broken by customer id.

A list ranks only the customers a contact is expected to pay for (priority > 0): the others get no rank (<NA>).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from custval.errors import DataError

__all__ = ["cross_sell", "purchased_categories", "rank_list", "retention_priority", "winback_priority"]


def purchased_categories(transactions: pd.DataFrame, as_of: pd.Timestamp, categories: list[str],
                         customer_ids) -> pd.DataFrame:
    """Boolean frame (index customer_ids, one column per category): bought it before `as_of`. Vectorised: each
    row's (customer, category) cell is set, through the codes of the distinct categories (a category compared
    by its text, a missing one never bought)."""
    before = (transactions["timestamp"] < as_of).to_numpy(dtype=bool)
    index = pd.Index(customer_ids)
    codes, uniques = pd.factorize(transactions["category"].loc[before])
    cells = pd.Index(categories).get_indexer(pd.Index(uniques).astype("string"))
    column = np.where(codes >= 0, cells[codes], -1)
    row = index.get_indexer(transactions["customer_id"].to_numpy()[before])
    keep = (row >= 0) & (column >= 0)
    bought = np.zeros((len(index), len(categories)), dtype=bool)
    bought[row[keep], column[keep]] = True
    return pd.DataFrame(bought, index=index, columns=pd.Index(categories, name="category"))


def cross_sell(probabilities: pd.DataFrame, bought: pd.DataFrame | None = None,
               margins: np.ndarray | list[float] | None = None) -> pd.DataFrame:
    """Best category per customer by propensity x margin: cross_sell_category (string, <NA> when none is left),
    cross_sell_score (its propensity x margin). `probabilities` (p_<category> columns) and `bought` (category
    columns; None: every category is open) list the categories in the same order; `margins` one per category
    (None: 1 each, i.e. by propensity)."""
    p = probabilities.to_numpy(dtype=float).copy()
    n_categories = p.shape[1]
    weights = np.ones(n_categories) if margins is None else np.asarray(margins, dtype=float)
    if weights.shape != (n_categories,) or not np.isfinite(weights).all() or (weights < 0).any():
        raise DataError("cross_sell", "margins", f"must be {n_categories} finite numbers >= 0, one per category",
                        list(np.atleast_1d(weights)))
    value = p * weights
    if bought is not None:
        value[bought.to_numpy(dtype=bool)] = -np.inf
    value[np.isnan(value)] = -np.inf
    best = np.argmax(value, axis=1)
    score = value[np.arange(len(value)), best]
    none_left = ~np.isfinite(score)
    names = np.asarray([str(c) for c in (bought.columns if bought is not None else
                                         [c.removeprefix("p_") for c in probabilities.columns])], dtype=object)[best]
    category = pd.array(np.where(none_left, None, names), dtype="string")
    return pd.DataFrame({"cross_sell_category": category, "cross_sell_score": np.where(none_left, np.nan, score)},
                        index=probabilities.index)


def retention_priority(churn_probability, clv, uplift, cost: float) -> np.ndarray:
    """Expected value saved by a retention contact: churn_probability x clv x uplift - cost (NaN where any
    input is NaN, e.g. a customer outside the churn model's population)."""
    return (np.asarray(churn_probability, dtype=float) * np.asarray(clv, dtype=float)
            * np.asarray(uplift, dtype=float) - float(cost))


def winback_priority(uplift, value, cost: float) -> np.ndarray:
    """Expected incremental profit of a win-back contact: uplift x value of a return - cost."""
    return np.asarray(uplift, dtype=float) * np.asarray(value, dtype=float) - float(cost)


def rank_list(priority, customer_ids) -> pd.arrays.IntegerArray:
    """1 = the highest priority, among customers with priority > 0 (others <NA>); equal priorities ranked by
    customer id, ascending, so that the same scores always give the same list."""
    values = np.asarray(priority, dtype=float)
    ids = pd.Series(np.asarray(customer_ids))
    listed = np.flatnonzero(values > 0)  # NaN compares False
    order = pd.DataFrame({"p": -values[listed], "id": ids.to_numpy()[listed]}).sort_values(
        ["p", "id"], kind="stable").index.to_numpy()
    ranks = np.full(len(values), -1, dtype=np.int64)
    ranks[listed[order]] = np.arange(1, len(listed) + 1)
    return pd.arrays.IntegerArray(np.where(ranks > 0, ranks, 0), ranks < 0)
