"""Synthetic customers with a known logistic truth, and classifiers fitted once per session.

True log-odds: -3 + 0.03 * recency_days - 0.35 * frequency - 0.03 * (income - 50) (+0.6 when income is
missing) + plan effect (basic +0.9, plus 0, pro -0.6, missing +0.3) - 0.5 * is_member. `region` is noise.
`p_true` is the Bayes probability, so the oracle AUC / Brier on a sample come from it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from custval.models.classifiers import BoostedClassifier, TreeClassifier

PLAN_EFFECT = {"basic": 0.9, "plus": 0.0, "pro": -0.6}
FEATURES = ["recency_days", "frequency", "income", "plan", "region", "is_member"]


def make_customers(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """(X, y, p_true) for n customers; X has numeric (with NaN), string (with <NA>), category and bool
    columns and a non-default index."""
    rng = np.random.default_rng(seed)
    recency = rng.exponential(60.0, n)
    frequency = rng.poisson(3.0, n).astype(float)
    income = rng.normal(50.0, 15.0, n)
    income_missing = rng.random(n) < 0.15
    plan = rng.choice(["basic", "plus", "pro"], n, p=[0.4, 0.4, 0.2]).astype(object)
    plan_missing = rng.random(n) < 0.1
    member = rng.random(n) < 0.5
    region = rng.choice(["north", "south", "east", "west"], n)
    z = (-3.0 + 0.03 * recency - 0.35 * frequency
         + np.where(income_missing, 0.6, -0.03 * (income - 50.0))
         + np.where(plan_missing, 0.3, pd.Series(plan).map(PLAN_EFFECT).to_numpy(dtype=float))
         - 0.5 * member)
    p = expit(z)
    y = (rng.random(n) < p).astype(np.int64)
    income[income_missing] = np.nan
    plan[plan_missing] = None
    X = pd.DataFrame({
        "recency_days": recency,
        "frequency": frequency,
        "income": income,
        "plan": pd.array(plan, dtype="string"),
        "region": pd.Categorical(region),
        "is_member": member,
    }, index=pd.Index(np.arange(n) * 7 + seed * 1_000_000 + 3, name="customer_id"))
    return X, y, p


@pytest.fixture(scope="session")
def data():
    """train / valid / test splits (X, y, p_true) from independent draws of the same population."""
    return {"train": make_customers(8000, 1), "valid": make_customers(4000, 2), "test": make_customers(8000, 3)}


@pytest.fixture(scope="session")
def boosted(data):
    X, y, _ = data["train"]
    Xv, yv, _ = data["valid"]
    return BoostedClassifier(n_estimators=600, learning_rate=0.08, early_stopping_rounds=30,
                             handle_unknown="error").fit(
        X, y, eval_set=(Xv, yv))


@pytest.fixture(scope="session")
def tree(data):
    X, y, _ = data["train"]
    return TreeClassifier(max_depth=5, min_samples_leaf=100).fit(X, y)
