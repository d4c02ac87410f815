"""The BG/NBD + Gamma-Gamma simulator: determinism, output contract, and agreement with closed-form theory.

Oracles: the model's own distributional assumptions (Gamma, Beta, uniform births, checked with KS tests),
closed-form BG/NBD results computed here from the TRUE parameters (E[X(t)] and P(alive | x, t_x, T), Fader,
Hardie & Lee 2005, eqs. 9 and 11), the Gamma-Gamma conditional mean E[z | nu] = p / nu, and the
transaction log read back through `rfm_summary` and `validate_transactions`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.special import hyp2f1

from custval.data.simulate import Simulation, simulate_bgnbd
from custval.errors import ConfigError

# CDNOW-like parameters (published weekly fit) with alpha converted to days; a < 1 on purpose.
DAILY = dict(r=0.243, alpha=4.414 * 7, a=0.793, b=2.426)
SPEND = dict(spend_p=6.25, spend_q=3.74, spend_gamma=15.44)
# A second regime: frequent buyers who churn fast (a > 1), so most customers have several purchases.
FAST = dict(r=0.9, alpha=12.0, a=2.5, b=6.0)


def _z(observed_sum: float, expected_sum: float, variance_sum: float) -> float:
    return (observed_sum - expected_sum) / np.sqrt(variance_sum)


def bgnbd_expected_purchases(t: np.ndarray, r: float, alpha: float, a: float, b: float) -> np.ndarray:
    """E[X(t)] of BG/NBD (FHL 2005 eq. 9), written out here independently of custval's models."""
    z = t / (alpha + t)
    return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, z))


def bgnbd_p_alive(x, t_x, T, r, alpha, a, b) -> np.ndarray:
    """P(alive at T | x, t_x, T) of BG/NBD (FHL 2005 eq. 11): 1 for x = 0."""
    x = np.asarray(x, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        odds = a / (b + x - 1) * ((alpha + T) / (alpha + t_x)) ** (r + x)
    return np.where(x > 0, 1.0 / (1.0 + odds), 1.0)


@pytest.fixture(scope="module")
def sim() -> Simulation:
    return simulate_bgnbd(200_000, **DAILY, **SPEND, seed=11)


@pytest.fixture(scope="module")
def fast_sim() -> Simulation:
    return simulate_bgnbd(150_000, **FAST, period="W", start="2023-01-01", end="2025-01-01", seed=5)


# ----------------------------------------------------------------------------------------------- determinism
def test_same_seed_gives_identical_output_whatever_the_chunk_size():
    kwargs = dict(**FAST, **SPEND, seed=42)
    one = simulate_bgnbd(6_000, **kwargs)
    again = simulate_bgnbd(6_000, **kwargs)
    chunked = simulate_bgnbd(6_000, chunk_size=997, **kwargs)
    for name in ("transactions", "truth", "summary"):
        pd.testing.assert_frame_equal(getattr(one, name), getattr(again, name), check_exact=True)
        pd.testing.assert_frame_equal(getattr(one, name), getattr(chunked, name), check_exact=True)
    assert one.params == chunked.params


def test_different_seeds_differ():
    one = simulate_bgnbd(2_000, **FAST, seed=1)
    two = simulate_bgnbd(2_000, **FAST, seed=2)
    assert not np.array_equal(one.truth["lambda"].to_numpy(), two.truth["lambda"].to_numpy())
    assert not np.array_equal(one.summary["T"].to_numpy(), two.summary["T"].to_numpy())


def test_a_prefix_of_customers_does_not_depend_on_the_population_size():
    """Streams are consumed customer by customer, so the first 1,000 customers of a 3,000 run are the 1,000 run."""
    small = simulate_bgnbd(1_000, **FAST, **SPEND, seed=8)
    large = simulate_bgnbd(3_000, **FAST, **SPEND, seed=8)
    pd.testing.assert_frame_equal(small.truth, large.truth.iloc[:1_000], check_exact=True)
    pd.testing.assert_frame_equal(small.summary, large.summary.iloc[:1_000], check_exact=True)
    n_rows = len(small.transactions)
    pd.testing.assert_frame_equal(small.transactions, large.transactions.iloc[:n_rows], check_exact=True)


# ----------------------------------------------------------------------------------------------- contract
def test_transactions_follow_the_contract(sim):
    tx = sim.transactions
    assert list(tx.columns) == ["customer_id", "timestamp", "amount"]
    assert tx["customer_id"].dtype == np.int64
    assert tx["timestamp"].dtype == "datetime64[ns]"
    assert tx["amount"].dtype == np.float64
    assert tx["amount"].gt(0).all() and np.isfinite(tx["amount"]).all()
    # one first purchase per customer plus its repeats, sorted by customer then time
    assert len(tx) == len(sim.truth) + int(sim.truth["n_repeat"].sum())
    assert tx["customer_id"].is_monotonic_increasing
    order = np.lexsort((tx["timestamp"].to_numpy(), tx["customer_id"].to_numpy()))
    assert np.array_equal(order, np.arange(len(tx)))
    # inside [start, end), floored to whole seconds, with time-of-day (not all at midnight)
    assert tx["timestamp"].min() >= pd.Timestamp("2024-01-01")
    assert tx["timestamp"].max() < sim.observation_end == pd.Timestamp("2025-12-31")
    assert (tx["timestamp"].dt.microsecond == 0).all() and (tx["timestamp"].dt.nanosecond == 0).all()
    assert tx["timestamp"].dt.hour.nunique() == 24
    # the first row of each customer is the birth recorded in truth
    first = tx.groupby("customer_id")["timestamp"].min()
    pd.testing.assert_series_equal(first, sim.truth["birth"], check_names=False)


def test_transactions_pass_schema_validation_unchanged(sim):
    from custval.data.schemas import validate_transactions

    head = sim.transactions.iloc[:50_000]
    validated = validate_transactions(head)
    pd.testing.assert_frame_equal(validated[["customer_id", "timestamp", "amount"]], head.reset_index(drop=True))


def test_truth_and_summary_follow_the_contract(sim):
    truth, summary = sim.truth, sim.summary
    assert truth.index.name == summary.index.name == "customer_id"
    assert np.array_equal(truth.index, np.arange(1, 200_001)) and np.array_equal(summary.index, truth.index)
    assert list(truth.columns) == ["lambda", "p", "nu", "alive_at_end", "birth", "n_repeat"]
    assert list(summary.columns) == ["frequency", "recency", "T", "monetary_value"]
    assert (summary.dtypes == np.float64).all()
    assert truth["alive_at_end"].dtype == bool and truth["n_repeat"].dtype == np.int64
    assert np.array_equal(summary["frequency"].to_numpy(), truth["n_repeat"].to_numpy().astype(float))
    assert ((summary["recency"] == 0) == (summary["frequency"] == 0)).all()
    assert (summary["recency"] < summary["T"]).all() and (summary["recency"] >= 0).all()
    # T is the exact time from birth to the observation end, in periods (days here)
    expected_T = (sim.observation_end - truth["birth"]) / pd.Timedelta(days=1)
    np.testing.assert_allclose(summary["T"], expected_T, rtol=1e-12)
    assert ((summary["monetary_value"] > 0) == (summary["frequency"] > 0)).all()
    assert sim.params == {"r": 0.243, "alpha": 4.414 * 7, "a": 0.793, "b": 2.426, **SPEND}
    assert sim.bgnbd_params == DAILY
    assert sim.gamma_gamma_params == {"p": 6.25, "q": 3.74, "gamma": 15.44}


def test_summary_matches_the_transaction_log_to_the_second(sim):
    """Exact recency is the last repeat purchase time; its timestamp is floored, so it is at most 1 s earlier."""
    tx = sim.transactions
    last = tx.groupby("customer_id")["timestamp"].max()
    log_recency = (last - sim.truth["birth"]) / pd.Timedelta(days=1)
    gap_seconds = (sim.summary["recency"] - log_recency) * 86_400
    assert gap_seconds.min() >= -1e-6 and gap_seconds.max() < 1 + 1e-6
    # monetary_value is the mean of the repeat purchases' amounts, i.e. every row but the first per customer
    repeats = tx[tx.duplicated("customer_id")]
    mean_repeat = repeats.groupby("customer_id")["amount"].mean()
    buyers = sim.summary["frequency"] > 0
    np.testing.assert_allclose(sim.summary.loc[buyers, "monetary_value"], mean_repeat.loc[buyers[buyers].index],
                               rtol=1e-12)


def test_without_spend_amounts_are_units_and_there_is_no_nu():
    sim = simulate_bgnbd(3_000, **FAST, seed=3)
    assert (sim.transactions["amount"] == 1.0).all()
    assert "nu" not in sim.truth.columns
    assert sim.gamma_gamma_params is None
    buyers = sim.summary["frequency"] > 0
    assert (sim.summary.loc[buyers, "monetary_value"] == 1.0).all()
    assert (sim.summary.loc[~buyers, "monetary_value"] == 0.0).all()


def test_cohort_acquisition_puts_every_birth_at_start():
    sim = simulate_bgnbd(2_000, **FAST, acquisition="cohort", start="2024-03-01", end="2024-06-01", seed=4)
    assert (sim.truth["birth"] == pd.Timestamp("2024-03-01")).all()
    np.testing.assert_allclose(sim.summary["T"], 92.0, rtol=1e-12)


# ----------------------------------------------------------------------------------------------- theory
def test_latent_distributions_are_the_model_s(sim):
    truth, n = sim.truth, len(sim.truth)
    r, alpha, a, b = DAILY["r"], DAILY["alpha"], DAILY["a"], DAILY["b"]
    q, g = SPEND["spend_q"], SPEND["spend_gamma"]
    lam, p, nu = truth["lambda"].to_numpy(), truth["p"].to_numpy(), truth["nu"].to_numpy()
    # means within 4 standard errors of theory
    assert abs(lam.mean() - r / alpha) < 4 * np.sqrt(r) / alpha / np.sqrt(n)
    beta_var = a * b / ((a + b) ** 2 * (a + b + 1))
    assert abs(p.mean() - a / (a + b)) < 4 * np.sqrt(beta_var / n)
    assert abs(nu.mean() - q / g) < 4 * np.sqrt(q) / g / np.sqrt(n)
    # whole distributions (KS); a wrong shape/rate or parametrisation fails these by a wide margin
    assert stats.kstest(lam, stats.gamma(r, scale=1 / alpha).cdf).pvalue > 1e-3
    assert stats.kstest(p, stats.beta(a, b).cdf).pvalue > 1e-3
    assert stats.kstest(nu, stats.gamma(q, scale=1 / g).cdf).pvalue > 1e-3
    # births uniform over [start, end): T uniform on (0, 730 days]
    assert stats.kstest(sim.summary["T"], stats.uniform(0, 730).cdf).pvalue > 1e-3


@pytest.mark.parametrize("which", ["sim", "fast_sim"])
def test_mean_repeat_purchases_match_bgnbd_expectation(which, request):
    s = request.getfixturevalue(which)
    x, T = s.summary["frequency"].to_numpy(), s.summary["T"].to_numpy()
    residual = x - bgnbd_expected_purchases(T, **s.bgnbd_params)
    z = residual.mean() / (residual.std() / np.sqrt(residual.size))
    assert abs(z) < 4, f"mean repeat purchases {x.mean():.4f} vs E[X(T)] {x.mean() - residual.mean():.4f}"


@pytest.mark.parametrize("which", ["sim", "fast_sim"])
def test_alive_at_end_is_calibrated_against_bgnbd_p_alive(which, request):
    """Given (x, t_x, T) and the true parameters, alive_at_end ~ Bernoulli(P_alive): checked overall and in bins."""
    s = request.getfixturevalue(which)
    x, t_x, T = (s.summary[c].to_numpy() for c in ("frequency", "recency", "T"))
    p_alive = bgnbd_p_alive(x, t_x, T, **s.bgnbd_params)
    alive = s.truth["alive_at_end"].to_numpy()
    assert alive[x == 0].all()  # the first purchase never triggers dropout
    buyers = x > 0
    pa, al = p_alive[buyers], alive[buyers]
    assert abs(_z(al.sum(), pa.sum(), (pa * (1 - pa)).sum())) < 4
    bins = np.searchsorted(np.quantile(pa, np.linspace(0, 1, 11)[1:-1]), pa)
    for k in range(10):
        in_bin = bins == k
        pk = pa[in_bin]
        z = _z(al[in_bin].sum(), pk.sum(), max((pk * (1 - pk)).sum(), 1e-12))
        assert abs(z) < 4, f"P(alive) bin {k}: empirical {al[in_bin].mean():.4f} vs predicted {pk.mean():.4f}"
    # and the predicted probabilities discriminate: the top decile is alive far more often than the bottom
    assert al[bins == 9].mean() > al[bins == 0].mean() + 0.3


def test_spend_follows_gamma_gamma(sim):
    """E[z | nu] = p / nu per transaction, and the population mean spend p * gamma / (q - 1)."""
    p, q, g = SPEND["spend_p"], SPEND["spend_q"], SPEND["spend_gamma"]
    tx = sim.transactions
    nu_of_row = sim.truth["nu"].to_numpy()[tx["customer_id"].to_numpy() - 1]
    scaled = tx["amount"].to_numpy() * nu_of_row  # ~ Gamma(p, 1) whatever nu
    assert abs(scaled.mean() - p) < 4 * np.sqrt(p / scaled.size)
    assert stats.kstest(scaled[:200_000], stats.gamma(p).cdf).pvalue > 1e-3
    # per-customer mean repeat spend: E[zbar] = p gamma / (q - 1) over customers with repeats
    buyers = sim.summary["frequency"] > 0
    zbar = sim.summary.loc[buyers, "monetary_value"].to_numpy()
    assert abs(zbar.mean() - p * g / (q - 1)) < 4 * zbar.std() / np.sqrt(zbar.size)


# ----------------------------------------------------------------------------------------------- rfm read-back
@pytest.mark.parametrize(("period", "params"), [("D", DAILY), ("W", FAST)])
def test_rfm_summary_of_the_log_agrees_with_the_exact_summary(period, params):
    """Read the log back through rfm_summary. With realistic rates (mean 0.008/day for D, 0.075/week for W)
    same-day purchases are rare; a customer buying daily would of course merge often."""
    from custval.features.rfm import rfm_summary

    sim = simulate_bgnbd(40_000, **params, **SPEND, period=period, seed=21)
    days = {"D": 1.0, "W": 7.0}[period]
    got = rfm_summary(sim.transactions, sim.observation_end, period)
    exact = sim.summary
    assert got.index.name == "customer_id"
    got = got.reindex(exact.index)
    assert not got[["frequency", "recency", "T", "monetary_value"]].isna().any().any()
    # frequency: same-day purchases merge, so never more than the exact count, and rarely fewer
    assert (got["frequency"] <= exact["frequency"]).all()
    merged = got["frequency"] < exact["frequency"]
    assert merged.mean() < 0.02
    # and exactly the customers with two purchases on one calendar day of the log are the merged ones
    tx = sim.transactions
    same_day = tx.assign(day=tx["timestamp"].dt.floor("D")).duplicated(["customer_id", "day"])
    assert set(tx.loc[same_day, "customer_id"]) == set(merged[merged].index)
    # T counts whole days from the birth day to the end (midnight): exact T rounded up to a whole day
    gap_T = (got["T"] - exact["T"]) * days
    assert gap_T.min() >= -1e-9 and gap_T.max() < 1
    np.testing.assert_allclose(got["T"] * days, np.ceil(exact["T"] * days - 1e-9), atol=1e-9)
    # recency is first-to-last purchase day: within one day of the exact time
    assert ((got["recency"] - exact["recency"]).abs() * days < 1).all()
    # without merges, the repeat days are the repeat purchases: same mean amount
    np.testing.assert_allclose(got.loc[~merged, "monetary_value"], exact.loc[~merged, "monetary_value"], rtol=1e-9)


# ----------------------------------------------------------------------------------------------- arguments
@pytest.mark.parametrize(
    ("change", "mentions"),
    [
        ({"r": 0.0}, "r"),
        ({"alpha": -1.0}, "alpha"),
        ({"a": float("nan")}, "a"),
        ({"b": float("inf")}, "b"),
        ({"r": "x"}, "r"),
        ({"n_customers": 0}, "n_customers"),
        ({"n_customers": 2.5}, "n_customers"),
        ({"n_customers": True}, "n_customers"),
        ({"chunk_size": 0}, "chunk_size"),
        ({"end": "2024-01-01"}, "end must be after start"),
        ({"end": "2023-06-01"}, "end must be after start"),
        ({"start": "not a date"}, "start"),
        ({"spend_p": 1.0}, "together"),
        ({"spend_p": 1.0, "spend_q": 2.0, "spend_gamma": 0.0}, "spend_gamma"),
        ({"period": "Q"}, "period"),
        ({"acquisition": "poisson"}, "acquisition"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_arguments_raise_config_error(change, mentions):
    kwargs = dict(n_customers=10, **FAST, start="2024-01-01", end="2025-01-01")
    kwargs.update(change)
    n = kwargs.pop("n_customers")
    with pytest.raises(ConfigError, match=mentions):
        simulate_bgnbd(n, **kwargs)
