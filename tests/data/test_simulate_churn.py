"""The churn/propensity simulator and its ground truth.

Oracles: realised labels read directly from the simulated transaction log (calibration of the churn truth
by decile within binomial error: the test that the Bayes formula is right), the latent alive state (calibration
of P(alive at cutoff)), a brute-force posterior written here from the model's definition (a loop over days,
the Gamma prior integrated on a quantile grid instead of in closed form, explicit sums over death days and
window paths), and the simulator's own Monte Carlo of the window (P(any purchase) = 1 - churn truth).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.special import gammaln

from custval.data import simulate_churn as sc
from custval.data.simulate_churn import CHURN_CATEGORIES, ChurnSimulation, simulate_churn
from custval.errors import ConfigError

CUTOFF = pd.Timestamp("2024-10-03")  # observation_end - 90 days with the default window
H = 90
DAY = pd.Timedelta(days=1)


@pytest.fixture(scope="module")
def sim() -> ChurnSimulation:
    return simulate_churn(20_000, seed=3)


@pytest.fixture(scope="module")
def truth(sim) -> pd.Series:
    return sim.churn_probability(CUTOFF, H)


@pytest.fixture(scope="module")
def regime2() -> ChurnSimulation:
    """Another regime: very heterogeneous rates, strong recency and recent-purchase effects, strong seasons."""
    return simulate_churn(8_000, seed=9, rate_shape=0.5, recent_effect=0.6, recency_effect=0.5,
                          base_dropout=0.002, base_rate=0.03, seasonality=3.0, start="2023-03-05",
                          end="2024-09-10")


def churn_labels(sim: ChurnSimulation, cutoff: pd.Timestamp, horizon: int) -> pd.Series:
    """1 when the customer has no transaction in [cutoff, cutoff + horizon), read from the log; index: every
    customer with a transaction before the cutoff."""
    tx = sim.transactions
    before = pd.Index(tx.loc[tx["timestamp"] < cutoff, "customer_id"].unique()).sort_values()
    window = tx[(tx["timestamp"] >= cutoff) & (tx["timestamp"] < cutoff + horizon * DAY)]
    return pd.Series((~before.isin(window["customer_id"])).astype(int), index=before)


# ------------------------------------------------------------------------------------------ determinism
def test_same_seed_identical_and_another_seed_differs():
    one, again, other = simulate_churn(1_500, seed=5), simulate_churn(1_500, seed=5), simulate_churn(1_500, seed=6)
    for name in ("transactions", "customers", "latent"):
        pd.testing.assert_frame_equal(getattr(one, name), getattr(again, name), check_exact=True)
    assert not one.customers["age"].equals(other.customers["age"])
    assert len(one.transactions) != len(other.transactions) or not one.transactions.equals(other.transactions)
    cutoff = pd.Timestamp("2024-06-01")
    pd.testing.assert_series_equal(one.churn_probability(cutoff, 60), again.churn_probability(cutoff, 60))
    pd.testing.assert_frame_equal(one.category_probability(cutoff, 60, n_draws=16, seed=1),
                                  again.category_probability(cutoff, 60, n_draws=16, seed=1))


# ------------------------------------------------------------------------------------------ contracts
def test_transaction_and_customer_contracts(sim):
    tx, cust = sim.transactions, sim.customers
    assert list(tx.columns) == ["customer_id", "timestamp", "amount", "order_id", "category"]
    assert tx["customer_id"].dtype == np.int64 and tx["order_id"].dtype == np.int64
    assert tx["timestamp"].dtype == "datetime64[ns]" and tx["amount"].dtype == np.float64
    assert isinstance(tx["category"].dtype, pd.StringDtype)
    assert tx["order_id"].is_unique and (tx["amount"] > 0).all()
    assert set(tx["category"].unique()) == set(CHURN_CATEGORIES) == set(sim.categories)
    assert tx["timestamp"].min() >= sim.start and tx["timestamp"].max() < sim.observation_end
    order = np.lexsort((tx["timestamp"].to_numpy(), tx["customer_id"].to_numpy()))  # by customer then time
    assert (order == np.arange(len(tx))).all()
    assert (np.diff(tx["order_id"].to_numpy()) > 0).all()  # order ids in that order

    assert list(cust.columns[:2]) == ["customer_id", "signup_date"] and cust["customer_id"].is_unique
    assert cust["signup_date"].dtype == "datetime64[ns]"
    for col in ("age", "income"):
        assert cust[col].dtype == np.float64
    for col in ("region", "channel", "plan"):
        assert isinstance(cust[col].dtype, pd.StringDtype)
    n = len(cust)
    for col, rate in (("age", 0.08), ("income", 0.15), ("channel", 0.05)):
        share = cust[col].isna().mean()
        assert abs(share - rate) < 5 * math.sqrt(rate * (1 - rate) / n), (col, share)
    assert cust["region"].notna().all() and cust["plan"].notna().all()
    # the first purchase is on the signup day, exactly one order that day
    first = tx.groupby("customer_id")["timestamp"].min()
    assert (first.dt.normalize().to_numpy() == cust.set_index("customer_id")["signup_date"].reindex(first.index)
            .to_numpy()).all()
    assert len(first) == n
    day = tx["timestamp"].dt.normalize()
    signup_orders = (day.to_numpy() == cust.set_index("customer_id")["signup_date"]
                     .reindex(tx["customer_id"]).to_numpy())
    assert (tx[signup_orders].groupby("customer_id").size() == 1).all()
    # signups over the first 75% of the window
    assert cust["signup_date"].max() < sim.start + 0.75 * (sim.observation_end - sim.start)


def test_dead_customers_never_buy_again(sim):
    tx = sim.transactions
    death = sim.latent["dropout_date"].reindex(tx["customer_id"]).to_numpy()
    after = ~pd.isna(death) & (tx["timestamp"].dt.normalize().to_numpy() > death)
    assert not after.any()
    assert 0.2 < sim.latent["alive_at_end"].mean() < 0.9


def test_attributes_shift_purchases_and_an_effect_size_of_zero_removes_it():
    def premium_over_basic(s: ChurnSimulation) -> float:
        tx, cust = s.transactions, s.customers.set_index("customer_id")
        early = cust[cust["signup_date"] < s.observation_end - 120 * DAY]
        day = (tx["timestamp"].dt.normalize() - early["signup_date"].reindex(tx["customer_id"]).to_numpy())
        in_window = tx[(day > pd.Timedelta(0)) & (day <= 120 * DAY)]  # repeat orders in the first 120 days
        per = in_window.groupby("customer_id").size().reindex(early.index, fill_value=0)
        return per[early["plan"] == "premium"].mean() / per[early["plan"] == "basic"].mean()

    assert premium_over_basic(simulate_churn(12_000, seed=2)) > 1.6  # rate x2 and lower dropout
    assert abs(premium_over_basic(simulate_churn(12_000, seed=2, attribute_effects=0.0)) - 1) < 0.12


def test_carry_over_makes_home_follow_electronics(sim):
    tx = sim.transactions
    prev = tx["category"].shift().where(tx["customer_id"].eq(tx["customer_id"].shift()))
    nxt = tx["category"][prev.notna()]
    prev = prev[prev.notna()]
    after_electronics = (nxt[prev == "electronics"] == "home").mean()
    after_other = (nxt[(prev != "electronics") & (prev != "home")] == "home").mean()
    assert after_electronics > after_other + 0.1, (after_electronics, after_other)


# ------------------------------------------------------------------------------------------ churn truth
def test_churn_truth_is_calibrated_against_realised_labels(sim, truth, assert_calibrated):
    labels = churn_labels(sim, CUTOFF, H)
    assert truth.index.equals(labels.index)  # exactly the customers with a purchase before the cutoff
    assert truth.between(0, 1).all()
    assert_calibrated(truth.to_numpy(), labels.to_numpy(), n_bins=20)


def test_churn_truth_is_calibrated_in_another_regime_and_at_other_cutoffs(regime2, assert_calibrated):
    for cutoff, horizon in ((pd.Timestamp("2024-02-01"), 30), (pd.Timestamp("2024-06-12"), 90)):
        truth = regime2.churn_probability(cutoff, horizon)
        labels = churn_labels(regime2, cutoff, horizon)
        assert truth.index.equals(labels.index)
        assert_calibrated(truth.to_numpy(), labels.to_numpy())


def test_p_alive_is_calibrated_against_the_latent_state(sim, regime2, assert_calibrated):
    for s, cutoff in ((sim, CUTOFF), (regime2, pd.Timestamp("2024-02-01"))):
        post = s.posterior(cutoff, 30)
        death = s.latent["dropout_date"].reindex(post.index)
        alive = (death.isna() | (death >= cutoff)).astype(int).to_numpy()
        assert_calibrated(post["p_alive"].to_numpy(), alive)


def test_defaults_give_a_realistic_learnable_problem(sim, truth, roc_auc):
    """Customers active in the prior 365 days, 90-day horizon: churn rate 25-50%, oracle AUC 0.78-0.90."""
    tx = sim.transactions
    last = tx[tx["timestamp"] < CUTOFF].groupby("customer_id")["timestamp"].max()
    active = last.index[last >= CUTOFF - 365 * DAY]
    y = churn_labels(sim, CUTOFF, H).reindex(active).to_numpy()
    assert 0.25 <= y.mean() <= 0.5, y.mean()
    auc = roc_auc(y, truth.reindex(active).to_numpy())
    assert 0.78 <= auc <= 0.90, auc


def _brute_force_churn(sim: ChurnSimulation, customer_id: int, cutoff: pd.Timestamp, horizon: int,
                       n_grid: int = 40_000) -> tuple[float, float]:
    """(P(churn), P(alive at cutoff)) for one customer from the model's definition: a day loop for the rates
    and hazards, the Gamma(s, s) prior on g integrated on a quantile grid, explicit sums over death days."""
    p = sim.params
    row = sim.customers.set_index("customer_id").loc[customer_id]
    age, income = row["age"], row["income"]
    x = {"age": 0.0 if pd.isna(age) else (age - sc.AGE_MEAN) / sc.AGE_SD, "age_missing": float(pd.isna(age)),
         "log_income": 0.0 if pd.isna(income) else (math.log(income) - math.log(sc.INCOME_MEDIAN)) / sc.INCOME_SIGMA,
         "income_missing": float(pd.isna(income))}
    for level in ("south", "east", "west"):
        x[f"region={level}"] = float(row["region"] == level)
    channel = "<NA>" if pd.isna(row["channel"]) else row["channel"]
    for level in ("store", "app", "<NA>"):
        x[f"channel={level}"] = float(channel == level)
    for level in ("plus", "premium"):
        x[f"plan={level}"] = float(row["plan"] == level)
    a = p["beta0"] + sum(p["purchase_effects"][f] * v for f, v in x.items())
    d = p["d0"] + sum(p["dropout_effects"][f] * v for f, v in x.items())

    c = (cutoff - sim.start).days
    b = (row["signup_date"] - sim.start).days
    tx = sim.transactions
    mine = tx[(tx["customer_id"] == customer_id) & (tx["timestamp"] < cutoff)]
    orders = np.zeros(c + horizon, dtype=int)
    np.add.at(orders, ((mine["timestamp"] - sim.start) // DAY).to_numpy(), 1)
    e, q = np.zeros(c + horizon), np.zeros(c + horizon)
    last = b
    for t in range(b, c + horizon):
        date = sim.start + t * DAY
        season = p["seasonality"] * (sc.WEEKLY_AMPLITUDE * math.cos(2 * math.pi * (date.day_of_week - 5) / 7)
                                     + sc.ANNUAL_AMPLITUDE * math.cos(2 * math.pi * (date.day_of_year - 349) / 365.25))
        recent = int((orders[max(t - 30, 0):t] > 0).sum())
        if t > b:
            e[t] = math.exp(a + p["recent_effect"] * min(recent, 3) + season)
        if orders[t] > 0:
            last = t
        q[t] = 1 / (1 + math.exp(-(d + p["recency_effect"] * math.log(1 + t - last))))
    s = p["rate_shape"]
    g = stats.gamma.ppf((np.arange(n_grid) + 0.5) / n_grid, s, scale=1 / s)
    log_g = np.log(g)
    last_purchase = int(np.flatnonzero(orders[:c])[-1])

    def log_lik(through: int) -> np.ndarray:  # log P(orders on days b+1..through | g), over the grid
        days = np.arange(b + 1, through + 1)
        n_t, e_t = orders[days], e[days]
        return (n_t.sum() * log_g + (n_t * np.log(np.where(e_t > 0, e_t, 1))).sum() - g * e_t.sum()
                - gammaln(n_t + 1).sum())

    hyps, log_prior = [], []
    for tau in range(last_purchase, c):  # died at the end of day tau
        log_prior.append(np.log1p(-q[b:tau]).sum() + math.log(q[tau]))
        hyps.append(log_lik(tau))
    alive_lik = log_lik(c - 1)
    alive_prior = np.log1p(-q[b:c]).sum()
    # window given alive and g: sum over the day the dropout clock stops of P(no purchase until then | g)
    no_buy = np.zeros(n_grid)
    surv = 1.0
    for j in range(horizon):
        t = c + j
        stop = q[t] if j < horizon - 1 else 1.0
        no_buy += surv * stop * np.exp(-g * e[c:t + 1].sum())
        surv *= 1 - q[t]
    shift = max(np.max(h) for h in [*hyps, alive_lik])
    dead_mass = sum(math.exp(lp) * np.mean(np.exp(h - shift)) for lp, h in zip(log_prior, hyps, strict=True))
    alive_mass = math.exp(alive_prior) * np.mean(np.exp(alive_lik - shift))
    churn_mass = math.exp(alive_prior) * np.mean(np.exp(alive_lik - shift) * no_buy)
    return (dead_mass + churn_mass) / (dead_mass + alive_mass), alive_mass / (dead_mass + alive_mass)


def test_closed_form_agrees_with_a_brute_force_posterior(regime2):
    cutoff = pd.Timestamp("2024-02-01")
    post = regime2.posterior(cutoff, 45)
    picks = post.sort_values("churn_probability").index[np.linspace(0, len(post) - 1, 14).astype(int)]
    n_orders = regime2.transactions.groupby("customer_id").size()
    busy = n_orders.reindex(post.index).sort_values().index[-2:]  # many purchases: a peaked posterior of g
    for cid in [*picks, *busy]:
        churn, p_alive = _brute_force_churn(regime2, int(cid), cutoff, 45)
        assert post.loc[cid, "churn_probability"] == pytest.approx(churn, abs=2e-3), cid
        assert post.loc[cid, "p_alive"] == pytest.approx(p_alive, abs=2e-3), cid


def test_monte_carlo_of_the_window_agrees_with_the_closed_form():
    s = simulate_churn(2_500, seed=21, rate_shape=0.7, recent_effect=0.5)
    cutoff = pd.Timestamp("2024-08-01")
    closed = 1 - s.churn_probability(cutoff, 60)
    n_draws = 400
    _, p_any = s._forward_window(cutoff, 60, n_draws=n_draws, seed=4)
    assert p_any.index.equals(closed.index)
    var = closed * (1 - closed) / n_draws
    z = (p_any - closed) / np.sqrt(var + 1e-12)
    assert (z.abs() < 5.5).mean() > 0.999 and (p_any - closed).abs().max() < 0.15
    assert abs((p_any - closed).mean()) < 4 * math.sqrt(var.sum()) / len(var)


# ------------------------------------------------------------------------------------------ no look-ahead
def test_truth_uses_only_what_is_observable_before_the_cutoff(sim, truth):
    """Dropping every transaction at or after the cutoff and scrambling the latent rates and death dates
    (keeping the affinities the propensity truth conditions on) changes neither truth."""
    tx = sim.transactions
    latent = sim.latent.copy()
    rng = np.random.default_rng(0)
    latent["g"] = rng.permutation(latent["g"].to_numpy())
    latent["dropout_date"] = rng.permutation(latent["dropout_date"].to_numpy())
    latent["alive_at_end"] = latent["dropout_date"].isna()
    small = dataclasses.replace(sim, transactions=tx[tx["timestamp"] < CUTOFF].reset_index(drop=True),
                                latent=latent)
    pd.testing.assert_series_equal(small.churn_probability(CUTOFF, H), truth, check_exact=True)
    ids = truth.index[:400]
    sub = dataclasses.replace(sim, customers=sim.customers[sim.customers["customer_id"].isin(ids)])
    sub_small = dataclasses.replace(small, customers=sub.customers)
    sub_tx = sub.transactions[sub.transactions["customer_id"].isin(ids)]
    sub = dataclasses.replace(sub, transactions=sub_tx)
    sub_small = dataclasses.replace(sub_small, transactions=sub_tx[sub_tx["timestamp"] < CUTOFF])
    pd.testing.assert_frame_equal(sub.category_probability(CUTOFF, H, n_draws=32, seed=3),
                                  sub_small.category_probability(CUTOFF, H, n_draws=32, seed=3), check_exact=True)
    # not vacuous: removing a purchase BEFORE the cutoff changes that customer's truth
    n_before = tx[tx["timestamp"] < CUTOFF].groupby("customer_id").size()
    cid = truth.index[truth.between(0.3, 0.7) & (n_before.reindex(truth.index) >= 3)][0]
    last_row = tx[(tx["customer_id"] == cid) & (tx["timestamp"] < CUTOFF)].index[-1]
    fewer = dataclasses.replace(sim, transactions=tx.drop(index=last_row))
    assert abs(fewer.churn_probability(CUTOFF, H).loc[cid] - truth.loc[cid]) > 1e-3


# ------------------------------------------------------------------------------------------ propensity truth
def test_category_truth_is_calibrated_against_realised_category_labels(assert_calibrated, roc_auc):
    s = simulate_churn(6_000, seed=17)
    n_draws = 64
    prob = s.category_probability(CUTOFF, H, n_draws=n_draws, seed=0)
    assert list(prob.columns) == list(CHURN_CATEGORIES) and prob.dtypes.eq(np.float64).all()
    assert prob.index.equals(s.churn_probability(CUTOFF, H).index)
    tx = s.transactions
    window = tx[(tx["timestamp"] >= CUTOFF) & (tx["timestamp"] < CUTOFF + H * DAY)]
    for name in CHURN_CATEGORIES:
        buyers = window.loc[window["category"] == name, "customer_id"].unique()
        y = prob.index.isin(buyers).astype(int)
        p = prob[name].to_numpy()
        assert 0.05 <= y.mean() <= 0.4, (name, y.mean())
        # label variance + Monte Carlo variance, from a smoothed estimate (64 draws can give exactly 0)
        smooth = (p * n_draws + 0.5) / (n_draws + 1)
        assert_calibrated(p, y, sigmas=4.5, var=smooth * (1 - smooth) * (1 + 1 / n_draws))
        assert roc_auc(y, p) > 0.75, name
    # buying some category is at most buying anything: P(any) >= max_k P(k)
    churn = s.churn_probability(CUTOFF, H)
    assert (prob.max(axis=1) <= 1 - churn + 5 * np.sqrt(0.25 / n_draws)).all()


# ------------------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize("kwargs", [
    dict(n_customers=0), dict(n_customers=1.5), dict(n_customers=True), dict(seed=-1), dict(seed=1.0),
    dict(start="not a date"), dict(end="2022-01-01"), dict(start="2023-01-01 12:00"),
    dict(categories="grocery"), dict(categories=("a", "a")), dict(categories=("a",)), dict(categories=("a", "")),
    dict(category_weights=(1, 2)), dict(category_weights=(1, 1, -1, 1, 1)), dict(signup_fraction=0),
    dict(signup_fraction=1.5), dict(base_rate=0), dict(base_rate=float("inf")), dict(base_rate=10.0),
    dict(rate_shape=-1), dict(base_dropout=1.0), dict(base_dropout=0), dict(recent_effect=float("nan")),
    dict(carryover=1.5), dict(attribute_effects=-1), dict(seasonality=float("nan")),
    dict(affinity_concentration=0), dict(recency_effect="0.2"),
])
def test_bad_simulation_parameters_raise_config_error(kwargs):
    with pytest.raises(ConfigError):
        simulate_churn(**{"n_customers": 50, **kwargs})


@pytest.mark.parametrize("call", [
    lambda s: s.churn_probability("2024-06-01 06:00"), lambda s: s.churn_probability("2023-01-01"),
    lambda s: s.churn_probability("2025-02-01"), lambda s: s.churn_probability("nonsense"),
    lambda s: s.churn_probability("2024-06-01", 0), lambda s: s.churn_probability("2024-06-01", 1.5),
    lambda s: s.category_probability("2024-06-01", n_draws=0), lambda s: s.category_probability("2024-06-01", seed=-2),
    lambda s: s.churn_probability(pd.Timestamp("2024-06-01", tz="UTC")),
])
def test_bad_truth_arguments_raise_config_error(call):
    with pytest.raises(ConfigError):
        call(simulate_churn(300, seed=1))
