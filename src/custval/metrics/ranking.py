"""Curves of a ranked list: the expected profit of contacting its best share (`profit_curve`), used by the
uplift targeting (`custval.scoring.targeting.select_targets`) and by the scoring report's plots."""

from __future__ import annotations

import numpy as np
import pandas as pd

from custval.errors import ConfigError

__all__ = ["profit_curve"]


def profit_curve(best_profit, *, shares: int = 20) -> pd.DataFrame:
    """Expected total profit when the best `share` of customers (by `best_profit`: each one's expected profit
    of a contact, their best arm's, or a ranked list's priority) are contacted, at shares 0, 1/shares, ..., 1:
    columns share, contacts, expected_profit. The curve peaks where the marginal customer's expected profit
    turns negative."""
    values = np.sort(np.asarray(best_profit, dtype=float))[::-1]
    if isinstance(shares, bool) or not isinstance(shares, int | np.integer) or shares < 1:
        raise ConfigError(f"shares: must be a positive integer (points of the curve), got {shares!r}")
    cumulative = np.concatenate([[0.0], np.cumsum(values)])
    share = np.linspace(0.0, 1.0, shares + 1)
    contacts = np.round(share * len(values)).astype(np.int64)
    return pd.DataFrame({"share": share, "contacts": contacts, "expected_profit": cumulative[contacts]})
