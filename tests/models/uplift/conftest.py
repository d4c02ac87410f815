"""Synthetic randomised campaigns with a known heterogeneous effect per customer.

Features: x1, x2 standard normal, plan (text: basic / plus / pro, 10% missing), noise (normal, 10% NaN).
Control log-odds of buying: -1 + 0.5 x1 + plan effect (basic +0.4, plus 0, pro -0.4, missing 0).
Arm "email" adds 1.2 x2 to the log-odds: customers with x2 < 0 are sleeping dogs (a contact lowers their
chance to buy). Arm "discount" adds 0.6 + 0.8 x1. The true uplift is the difference of the two
probabilities. Spend (continuous outcome): 20 + 5 x1 + email 4 x2 / discount 3 + 2 x1 + normal(0, 2) noise,
whose true uplift is the arm's term. Arms are assigned by a random permutation of equal-sized groups.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

PLAN = {"basic": 0.4, "plus": 0.0, "pro": -0.4}


@dataclass
class Campaign:
    X: pd.DataFrame
    y: np.ndarray  # conversion 0/1
    spend: np.ndarray
    treatment: np.ndarray  # arm names
    true_uplift: dict  # arm -> true conversion uplift
    true_spend_uplift: dict

    def subset(self, arms: tuple) -> Campaign:
        keep = np.isin(self.treatment, ("control", *arms))
        return Campaign(self.X[keep], self.y[keep], self.spend[keep], self.treatment[keep],
                        {a: u[keep] for a, u in self.true_uplift.items() if a in arms},
                        {a: u[keep] for a, u in self.true_spend_uplift.items() if a in arms})

    def binary_treatment(self, arm: str = "email") -> np.ndarray:
        return (self.treatment == arm).astype(np.int64)


def make_campaign(n: int, seed: int, arms: tuple = ("email",)) -> Campaign:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    plan = rng.choice(list(PLAN), n).astype(object)
    plan[rng.random(n) < 0.1] = None
    noise = rng.normal(size=n)
    noise[rng.random(n) < 0.1] = np.nan
    base = -1.0 + 0.5 * x1 + pd.Series(plan).map(PLAN).fillna(0.0).to_numpy()
    effects = {"email": 1.2 * x2, "discount": 0.6 + 0.8 * x1}
    spend_effects = {"email": 4.0 * x2, "discount": 3.0 + 2.0 * x1}
    names = np.array(["control", *arms], dtype=object)
    treatment = rng.permutation(np.resize(names, n))
    logit = base.copy()
    spend = 20.0 + 5.0 * x1 + rng.normal(0.0, 2.0, n)
    for arm in arms:
        logit += np.where(treatment == arm, effects[arm], 0.0)
        spend += np.where(treatment == arm, spend_effects[arm], 0.0)
    y = (rng.random(n) < expit(logit)).astype(np.int64)
    X = pd.DataFrame({"x1": x1, "x2": x2, "plan": pd.array(plan, dtype="string"), "noise": noise},
                     index=pd.Index(np.arange(n) * 3 + 11, name="customer_id"))
    truth = {arm: expit(base + effects[arm]) - expit(base) for arm in arms}
    return Campaign(X, y, spend, treatment, truth, {arm: spend_effects[arm] for arm in arms})


@pytest.fixture(scope="session")
def one_arm():
    """Train and test draws of a control-vs-email campaign."""
    return make_campaign(6000, 1), make_campaign(4000, 2)


@pytest.fixture(scope="session")
def two_arms():
    return make_campaign(6000, 3, ("email", "discount")), make_campaign(3000, 4, ("email", "discount"))


@pytest.fixture(scope="session")
def campaign():
    """make_campaign itself, for tests that draw their own campaign."""
    return make_campaign
