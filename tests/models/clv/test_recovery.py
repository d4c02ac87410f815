"""Parameter recovery: BetaGeo and GammaGamma fitted on simulated customer bases find the true parameters.

The oracle is the simulator's ground truth (custval.data.simulate). With 100k customers the maximum-likelihood
estimates are close to normal, so each true parameter should lie within 3 standard errors of its estimate
(a fixed list of seeds, chosen before looking at results; 3 SE is two-sided p = 0.0027 per comparison).
A wrong likelihood, gradient or standard error would put the truth many SEs away.
"""

from __future__ import annotations

import numpy as np
import pytest

from custval.data.simulate import simulate_bgnbd
from custval.models.clv.bgnbd import BetaGeo
from custval.models.clv.gamma_gamma import GammaGamma

# CDNOW-like (published weekly fit, alpha converted to days) over two years of daily data.
TRUE = dict(r=0.243, alpha=4.414 * 7, a=0.793, b=2.426)
SPEND = dict(spend_p=6.25, spend_q=3.74, spend_gamma=15.44)
N_CUSTOMERS = 100_000
SEEDS = (101, 202, 303)


def _assert_within(model, truth: dict[str, float], k: float, label: str) -> None:
    lines = []
    for name, true_value in truth.items():
        est, se = model.params_[name], model.standard_errors_[name]
        assert np.isfinite(se) and se > 0, f"{label}: standard error of {name} is {se}"
        z = (est - true_value) / se
        lines.append(f"{name}: true {true_value:.4g} est {est:.4g} se {se:.3g} z {z:+.2f}")
        assert abs(z) < k, f"{label}: {name} off by {z:+.2f} SE\n" + "\n".join(lines)
    # the SEs are honest in size too: with 100k customers each is a few percent of its parameter at most,
    # and none is so small that the checks above would be vacuous or impossible
    for name, true_value in truth.items():
        assert 1e-4 < model.standard_errors_[name] / true_value < 0.2, (label, name)


@pytest.fixture(scope="module", params=SEEDS)
def simulation(request):
    return simulate_bgnbd(N_CUSTOMERS, **TRUE, **SPEND, seed=request.param)


def test_betageo_recovers_true_parameters_from_the_exact_summary(simulation):
    model = BetaGeo().fit(simulation.summary[["frequency", "recency", "T"]])
    _assert_within(model, simulation.bgnbd_params, 3.0, "BetaGeo exact summary")


def test_gammagamma_recovers_true_parameters_on_repeat_buyers(simulation):
    summary = simulation.summary
    repeat = summary[summary["frequency"] > 0]
    assert len(repeat) > 20_000
    model = GammaGamma().fit(repeat[["frequency", "monetary_value"]])
    _assert_within(model, simulation.gamma_gamma_params, 3.0, "GammaGamma exact summary")


def test_recovery_through_the_transaction_log_and_rfm_summary():
    """The whole path: transaction log -> rfm_summary (daily periods) -> BetaGeo / GammaGamma.

    rfm_summary counts purchase DAYS (same-day purchases merge, as in lifetimes), while the simulator's
    purchases are continuous-time Poisson events: here ~1.6% of customers buy twice on one calendar day, mostly
    the fastest buyers. That thins the top of the rate distribution, so r and alpha come out biased upwards:
    measured +2..3 SE for r and +4..6 SE for alpha at 100k customers (3-7% relative for alpha) over several
    seeds, whereas fitting the same daily recency/T with the log's transaction count recovers all four within
    3 SE. So: dropout (a, b) and spend (p, q, gamma) within 4 SE as they are; r and alpha within 10% relative;
    and with frequency counted from the log's rows (no merging), all four within 4 SE.
    """
    from custval.features.rfm import rfm_summary

    sim = simulate_bgnbd(N_CUSTOMERS, **TRUE, **SPEND, seed=404)
    summary = rfm_summary(sim.transactions, sim.observation_end, "D")
    assert len(summary) == N_CUSTOMERS
    model = BetaGeo().fit(summary[["frequency", "recency", "T"]])
    _assert_within(model, {k: TRUE[k] for k in ("a", "b")}, 4.0, "BetaGeo via rfm_summary")
    for name in ("r", "alpha"):
        assert abs(model.params_[name] / TRUE[name] - 1) < 0.10, (name, model.params_[name])
    repeat = summary[summary["frequency"] > 0]
    spend = GammaGamma().fit(repeat[["frequency", "monetary_value"]])
    _assert_within(spend, sim.gamma_gamma_params, 4.0, "GammaGamma via rfm_summary")

    # daily recency and T from rfm_summary, frequency = transactions in the log - 1 (no same-day merging)
    transactions_per_customer = sim.transactions.groupby("customer_id").size()
    unmerged = summary[["recency", "T"]].assign(frequency=(transactions_per_customer - 1).astype(float))
    model = BetaGeo().fit(unmerged[["frequency", "recency", "T"]])
    _assert_within(model, sim.bgnbd_params, 4.0, "BetaGeo on daily times, unmerged counts")
