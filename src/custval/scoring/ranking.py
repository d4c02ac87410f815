"""Ranked lists from scores: the best cross-sell category per customer among those not bought yet."""

from __future__ import annotations

import numpy as np
import pandas as pd


def purchased_categories(transactions: pd.DataFrame, as_of: pd.Timestamp, categories: list[str],
                         customer_ids) -> pd.DataFrame:
    """Boolean frame (index customer_ids, one column per category): bought it before `as_of`."""
    before = transactions.loc[transactions["timestamp"] < as_of, ["customer_id", "category"]]
    bought = pd.crosstab(before["customer_id"], before["category"].astype("string")) > 0
    return bought.reindex(index=pd.Index(customer_ids), columns=categories, fill_value=False).astype(bool)


def cross_sell(probabilities: pd.DataFrame, bought: pd.DataFrame) -> pd.DataFrame:
    """Best category not bought yet: cross_sell_category (string, <NA> when all bought), cross_sell_score.
    `probabilities` (p_<category> columns) and `bought` (category columns) list the categories in the same order."""
    p = probabilities.to_numpy(dtype=float).copy()
    p[bought.to_numpy(dtype=bool)] = -np.inf
    best = np.argmax(p, axis=1)
    score = p[np.arange(len(p)), best]
    none_left = ~np.isfinite(score)
    names = np.asarray(list(bought.columns), dtype=object)[best]
    category = pd.array(np.where(none_left, None, names), dtype="string")
    return pd.DataFrame({"cross_sell_category": category, "cross_sell_score": np.where(none_left, np.nan, score)},
                        index=probabilities.index)
