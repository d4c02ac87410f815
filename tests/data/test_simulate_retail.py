"""The Online-Retail-like simulator: contract, determinism, returns and category choice against ground truth.

Oracles: `simulate_bgnbd` with the same parameters and seed (the orders must be exactly its purchases), the
returns policy of `validate_transactions`, the Bernoulli return model (binomial bands) and the customers'
true Dirichlet affinities (multinomial bands on the category counts).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from custval.data.schemas import validate_transactions
from custval.data.simulate import CDNOW_DAILY, RETAIL_CATEGORIES, simulate_bgnbd, simulate_retail
from custval.errors import ConfigError, CustvalWarning

N = 20_000
CONTRACT_ORDER = ["customer_id", "timestamp", "amount", "order_id", "category", "quantity"]


@pytest.fixture(scope="module")
def sim():
    # a higher return rate than the default so the binomial checks have power
    return simulate_retail(N, seed=7, return_rate=0.1)


@pytest.fixture(scope="module")
def parts(sim):
    tx = sim.transactions
    returns = tx[tx["amount"] < 0]
    orders = tx[tx["amount"] >= 0]
    return tx, orders, returns


def test_contract_columns_types_and_order(sim, parts):
    tx, orders, returns = parts
    assert list(tx.columns) == CONTRACT_ORDER
    assert tx["customer_id"].dtype == np.int64 and tx["order_id"].dtype == np.int64
    assert tx["timestamp"].dtype == "datetime64[ns]" and tx["amount"].dtype == np.float64
    assert isinstance(tx["category"].dtype, pd.StringDtype)
    assert set(tx["category"].unique()) == set(RETAIL_CATEGORIES)
    assert tx.index.equals(pd.RangeIndex(len(tx)))
    # sorted by customer, then time
    key = pd.MultiIndex.from_arrays([tx["customer_id"], tx["timestamp"]])
    assert key.is_monotonic_increasing
    assert orders["order_id"].is_unique and (orders["quantity"] >= 1).all() and (orders["amount"] > 0).all()
    assert tx["timestamp"].min() >= pd.Timestamp("2010-12-01") and tx["timestamp"].max() < sim.observation_end
    # the log passes the strictest validation (no identical rows) and stays as it is
    validated = validate_transactions(tx, duplicates="error", returns="error" if returns.empty else "net")
    assert list(validated.columns) == CONTRACT_ORDER


def test_each_return_follows_its_order_with_the_same_order_id_and_category(parts):
    _, orders, returns = parts
    assert len(returns) > 0
    matched = returns.merge(orders, on="order_id", suffixes=("_ret", "_ord"), validate="one_to_one")
    assert len(matched) == len(returns)  # every return belongs to one order, at most one return per order
    assert (matched["customer_id_ret"] == matched["customer_id_ord"]).all()
    assert (matched["category_ret"] == matched["category_ord"]).all()
    lag = (matched["timestamp_ret"] - matched["timestamp_ord"]) / pd.Timedelta(days=1)
    assert np.allclose(lag, np.round(lag)) and lag.between(1, 30).all()
    items = -matched["quantity_ret"]
    assert (items >= 1).all() and (items <= matched["quantity_ord"]).all()
    np.testing.assert_allclose(-matched["amount_ret"], matched["amount_ord"] * items / matched["quantity_ord"],
                               rtol=1e-12)


def test_orders_are_exactly_the_bgnbd_purchases_with_cdnow_parameters():
    retail = simulate_retail(3_000, seed=3)
    base = simulate_bgnbd(3_000, **CDNOW_DAILY, start="2010-12-01", end="2011-12-10", period="D", seed=3)
    orders = retail.transactions[retail.transactions["amount"] >= 0].reset_index(drop=True)
    pd.testing.assert_frame_equal(orders[["customer_id", "timestamp", "amount"]], base.transactions)
    pd.testing.assert_frame_equal(retail.summary, base.summary)
    assert retail.params["r"] == 0.243 and retail.params["alpha"] == pytest.approx(4.414 * 7)
    assert retail.period == "D" and retail.spend


def test_same_seed_same_log_whatever_the_chunk_size_and_another_seed_differs():
    one = simulate_retail(4_000, seed=11)
    again = simulate_retail(4_000, seed=11, chunk_size=777)
    pd.testing.assert_frame_equal(one.transactions, again.transactions)
    pd.testing.assert_frame_equal(one.truth, again.truth)
    other = simulate_retail(4_000, seed=12)
    assert not one.transactions["amount"].head(500).equals(other.transactions["amount"].head(500))


def test_truth_counts_orders_and_returns_per_customer(sim, parts):
    _, orders, returns = parts
    truth = sim.truth
    assert (truth["n_orders"] == orders.groupby("customer_id").size().reindex(truth.index)).all()
    assert (truth["n_orders"] == truth["n_repeat"] + 1).all()
    assert (truth["n_returns"] == returns.groupby("customer_id").size().reindex(truth.index, fill_value=0)).all()


def test_return_fraction_matches_the_rate(sim, parts):
    """Orders placed more than max_return_days before the end have their return (if any) in the log, so
    their returned share is Binomial(n, rate) / n."""
    _, orders, returns = parts
    settled = orders[orders["timestamp"] < sim.observation_end - pd.Timedelta(days=31)]
    n = len(settled)
    returned = settled["order_id"].isin(returns["order_id"]).sum()
    rate = 0.1
    assert abs(returned - n * rate) < 5 * np.sqrt(n * rate * (1 - rate)), (returned, n)
    # near the end, returns that would fall after the window are missing: never more than the rate allows
    late = orders[orders["timestamp"] >= sim.observation_end - pd.Timedelta(days=31)]
    assert late["order_id"].isin(returns["order_id"]).mean() < rate


def test_no_returns_at_rate_zero():
    tx = simulate_retail(2_000, seed=1, return_rate=0.0).transactions
    assert (tx["amount"] > 0).all() and (tx["quantity"] >= 1).all()


def test_category_counts_follow_each_customers_affinity(sim, parts):
    _, orders, _ = parts
    names = list(RETAIL_CATEGORIES)
    theta = sim.truth[[f"affinity_{c}" for c in names]].to_numpy()
    np.testing.assert_allclose(theta.sum(axis=1), 1.0, rtol=1e-12)
    n_orders = sim.truth["n_orders"].to_numpy()[:, None]
    expected = (n_orders * theta).sum(axis=0)
    variance = (n_orders * theta * (1 - theta)).sum(axis=0)
    observed = orders["category"].value_counts().reindex(names).to_numpy()
    z = (observed - expected) / np.sqrt(variance)
    assert np.all(np.abs(z) < 5), dict(zip(names, z.round(2), strict=True))
    # the same within customers: heavy buyers' shares sit near their own affinity, not the population mix
    heavy = sim.truth.index[sim.truth["n_orders"] >= 15]
    assert len(heavy) >= 50
    counts = pd.crosstab(orders["customer_id"], orders["category"]).reindex(index=heavy, columns=names,
                                                                              fill_value=0)
    shares = counts.to_numpy() / counts.to_numpy().sum(axis=1, keepdims=True)
    own = np.abs(shares - theta[heavy - 1]).mean()
    shuffled = np.abs(shares - theta[np.roll(heavy - 1, 1)]).mean()
    assert own < 0.6 * shuffled, (own, shuffled)


def test_category_weights_set_the_mean_affinity():
    weights = np.array([6.0, 1, 1, 1, 1, 2])
    sim = simulate_retail(20_000, seed=2, category_weights=weights, affinity_concentration=2.0)
    theta = sim.truth[[f"affinity_{c}" for c in RETAIL_CATEGORIES]].to_numpy()
    share = weights / weights.sum()
    # Dirichlet(alpha) with alpha_0 = 2 x 6 = 12: Var(theta_k) = m_k (1 - m_k) / (alpha_0 + 1)
    se = np.sqrt(share * (1 - share) / 13 / len(theta))
    assert np.all(np.abs(theta.mean(axis=0) - share) < 5 * se)


def test_exclude_policy_drops_exactly_the_return_rows(parts):
    tx, orders, returns = parts
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clean = validate_transactions(tx, returns="exclude")
    pd.testing.assert_frame_equal(clean.reset_index(drop=True), orders.reset_index(drop=True))
    messages = [str(w.message) for w in caught if issubclass(w.category, CustvalWarning)]
    assert any(f"excluded {len(returns)} return rows" in m for m in messages), messages


def test_net_policy_drops_return_days_with_no_positive_total(parts):
    tx, _, _ = parts
    net = validate_transactions(tx, returns="net")
    day = [tx["customer_id"], tx["timestamp"].dt.normalize()]
    day_total = tx.groupby(day)["amount"].transform("sum")
    has_return = tx.groupby(day)["amount"].transform("min") < 0
    drop = (has_return & (day_total <= 1e-9)).to_numpy()
    assert drop.sum() > 0
    pd.testing.assert_frame_equal(net, tx[~drop].reset_index(drop=True))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"return_rate": 1.5}, "return_rate"),
    ({"return_rate": -0.1}, "return_rate"),
    ({"categories": ()}, "categories"),
    ({"categories": ("a", "a")}, "categories"),
    ({"categories": "abc"}, "categories"),
    ({"category_weights": [1, 2]}, "category_weights"),
    ({"mean_quantity": 0.5}, "mean_quantity"),
    ({"affinity_concentration": 0}, "affinity_concentration"),
    ({"max_return_days": 0}, "max_return_days"),
    ({"seed": -1}, "seed"),
])
def test_bad_settings_are_config_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        simulate_retail(100, **kwargs)
