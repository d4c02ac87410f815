"""Shared oracles of the simulator tests: calibration within binomial error and the rank-sum ROC AUC."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats


def assert_calibrated(p: np.ndarray, y: np.ndarray, *, n_bins: int = 10, sigmas: float = 4.0,
                      var: np.ndarray | None = None) -> None:
    """Mean prediction vs realised rate per quantile bin (and overall) within `sigmas` binomial errors
    (`var`: per-customer variance of label minus prediction; default p(1 - p))."""
    order = np.argsort(p, kind="stable")
    var = p * (1 - p) if var is None else var
    for part in [*np.array_split(order, n_bins), order]:
        n = part.size
        gap = y[part].mean() - p[part].mean()
        se = math.sqrt(max(var[part].sum(), 1e-12)) / n
        assert abs(gap) <= sigmas * se + 1e-9, (n, p[part].mean(), y[part].mean(), gap / se)


def roc_auc(y: np.ndarray, s: np.ndarray) -> float:
    ranks = stats.rankdata(s)
    pos = y == 1
    return (ranks[pos].sum() - pos.sum() * (pos.sum() + 1) / 2) / (pos.sum() * (~pos).sum())



@pytest.fixture(name="assert_calibrated")
def assert_calibrated_fixture():
    return assert_calibrated


@pytest.fixture(name="roc_auc")
def roc_auc_fixture():
    return roc_auc
