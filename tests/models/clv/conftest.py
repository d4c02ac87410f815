"""Fixtures shared by the CLV model tests: the published CDNOW sample summary and a BG/NBD simulator.

Both are independent of custval: the summary is read straight from the csv shipped with lifetimes, and the
simulator draws customers from the model's definition (FHL 2005), so they can serve as oracles.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import lifetimes
import numpy as np
import pandas as pd
import pytest

LIFETIMES_DATASETS = Path(lifetimes.__file__).parent / "datasets"

# Published BG/NBD estimates for this sample (Fader, Hardie & Lee 2005, weeks, calibration weeks 1-39).
CDNOW_BGNBD_PUBLISHED = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426, "log_likelihood": -9582.4}


@cache
def _cdnow_summary() -> pd.DataFrame:
    raw = pd.read_csv(LIFETIMES_DATASETS / "cdnow_customers_summary_with_transactions.csv")
    summary = raw.rename(columns={"ID": "customer_id", "x": "frequency", "t_x": "recency", "zbar": "monetary_value"})
    return summary.set_index("customer_id")[["frequency", "recency", "T", "monetary_value"]].astype(float)


@pytest.fixture(scope="session")
def cdnow_summary() -> pd.DataFrame:
    """The 2,357-customer CDNOW sample summarised in weeks (1997-01-01..1997-09-30): index customer_id,
    columns frequency, recency, T, monetary_value (mean repeat-purchase value, 0 for one-time buyers).
    Shared by the whole session: copy it before modifying it."""
    return _cdnow_summary().copy()


@pytest.fixture(scope="session")
def cdnow_repeat_buyers(cdnow_summary) -> pd.DataFrame:
    """The 946 CDNOW sample customers with at least one repeat purchase (shared: copy before modifying)."""
    return cdnow_summary[cdnow_summary["frequency"] > 0].copy()


def simulate_bgnbd(n: int, r: float, alpha: float, a: float, b: float, T, seed: int = 0) -> pd.DataFrame:
    """Draw n customers from the BG/NBD model in continuous time, vectorised.

    lambda ~ Gamma(r, rate alpha), p ~ Beta(a, b). Repeat purchases arrive as a Poisson process; after each
    one the customer drops out with probability p, so the number of purchases before dropout J is
    Geometric(p) on {1, 2, ...} and x = min(N, J) with N ~ Poisson(lambda T). Given N arrivals in (0, T],
    the x-th arrival time is T * Beta(x, N - x + 1). Returns frequency, recency, T and the ground truth
    lambda, p and alive (alive at T: N < J).
    """
    rng = np.random.default_rng(seed)
    T = np.broadcast_to(np.asarray(T, dtype=float), (n,)).copy()
    lam = rng.gamma(r, 1.0 / alpha, size=n)
    p = rng.beta(a, b, size=n)
    n_arrivals = rng.poisson(lam * T)
    n_before_dropout = rng.geometric(p)
    x = np.minimum(n_arrivals, n_before_dropout)
    x_pos = np.maximum(x, 1)
    recency = np.where(x > 0, T * rng.beta(x_pos, np.maximum(n_arrivals - x_pos + 1, 1)), 0.0)
    return pd.DataFrame({"frequency": x.astype(float), "recency": recency, "T": T,
                         "lambda": lam, "p": p, "alive": n_arrivals < n_before_dropout})


@pytest.fixture(scope="session")
def bgnbd_simulator():
    """The `simulate_bgnbd(n, r, alpha, a, b, T, seed)` function."""
    return simulate_bgnbd
