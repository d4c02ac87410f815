"""Boundary optima are results: where no dropout is visible (BG/NBD's a -> 0) or the spend model's q or p runs
to infinity, the fit is the limiting model, reported with a warning, standard errors and its own predictions.

Oracles, all independent of custval's code: closed forms of the limiting models written out here (the NBD's
conditional expectation (r + x) / (alpha + T) * t, its negative-binomial pmf, the Poisson MLE sum(x) / sum(T)),
lifetimes' BetaGeoFitter forced to the boundary (its likelihood maximised with a tiny and b huge held fixed,
its predictions at (r, alpha, 1e-10, 1e3)), the full BG/NBD likelihood a step away from the boundary, and
scipy's distributions for the spend limits.
"""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from lifetimes import BetaGeoFitter, GammaGammaFitter
from lifetimes.utils import ConvergenceError as LifetimesConvergenceError
from scipy import stats
from scipy.optimize import minimize
from scipy.special import gammaln, polygamma

from custval.data.simulate import simulate_bgnbd
from custval.errors import ConfigError, ConvergenceError, CustvalWarning
from custval.models.clv import bgnbd
from custval.models.clv.bgnbd import BetaGeo, log_likelihood_rows
from custval.models.clv.gamma_gamma import GammaGamma
from custval.models.clv.value import CustomerValue

FORCED_A, FORCED_B = 1e-10, 1e3  # lifetimes at this point is the NBD within 4e-11 (tiny a: p ~ 0 for everyone)


def _frame(x, tx, T) -> pd.DataFrame:
    return pd.DataFrame({"frequency": np.asarray(x, float), "recency": np.asarray(tx, float), "T": np.asarray(T, float)})


def _no_dropout(n: int, r: float, alpha: float, seed: int) -> pd.DataFrame:
    """Customers who never drop out: Poisson purchases at a Gamma(r, rate alpha) rate over ages U(1, 30); the
    last of x purchases in (0, T] is T times the largest of x uniforms."""
    rng = np.random.default_rng(seed)
    T = rng.uniform(1.0, 30.0, n)
    x = rng.poisson(rng.gamma(r, 1.0 / alpha, n) * T)
    tx = np.where(x > 0, T * rng.beta(np.maximum(x, 1), 1.0), 0.0)
    return _frame(x, tx, T)


def _fit_quietly(model, X):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(X)
    return model, [w for w in caught if issubclass(w.category, CustvalWarning)]


def _nbd_ll(r, alpha, x, T) -> np.ndarray:
    """The NBD log-likelihood of (x, t_x, T), written from its definition: Poisson(lambda) purchases, lambda ~
    Gamma(r, rate alpha), integrated: G(r + x) alpha^r / (G(r) (alpha + T)^(r + x))."""
    return gammaln(r + x) - gammaln(r) + r * np.log(alpha) - (r + x) * np.log(alpha + T)


def _nb_pmf(n, k, A, t):
    """P(N(t) = n) when N is Poisson(lambda t) with lambda ~ Gamma(k, rate A)."""
    return np.exp(gammaln(k + n) - gammaln(k) - gammaln(n + 1) + k * np.log(A / (A + t)) + n * np.log(t / (A + t)))


def _forced_lifetimes(r, alpha) -> BetaGeoFitter:
    fitter = BetaGeoFitter()
    fitter.params_ = pd.Series([r, alpha, FORCED_A, FORCED_B], index=["r", "alpha", "a", "b"])
    fitter.predict = fitter.conditional_expected_number_of_purchases_up_to_time  # what lifetimes' fit sets
    return fitter


@pytest.fixture(scope="module")
def retail_like():
    """An Online-Retail-like calibration period: 4,300 customers from 2010-12-01 to 2011-06-30 in weeks, a
    monthly-ish purchase rate and almost no dropout (p ~ Beta(0.01, 1000)), with Gamma-Gamma spend."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the simulator's geometric draw at p ~ 1e-300
        sim = simulate_bgnbd(4300, r=1.0, alpha=4.0, a=0.01, b=1000.0, spend_p=6.25, spend_q=3.74, spend_gamma=15.44,
                             start="2010-12-01", end="2011-06-30", period="W", seed=1)
    return sim.summary


@pytest.fixture(scope="module")
def nbd_fit(retail_like):
    return _fit_quietly(BetaGeo(), retail_like)


# ----------------------------------------------------------------------------------------- the NBD limit
def test_no_visible_dropout_is_the_nbd_limit_with_a_warning_in_business_terms(nbd_fit, retail_like):
    model, caught = nbd_fit
    assert model.limit_ == "nbd" and model.result_.limit == "nbd"
    assert list(model.params_) == ["r", "alpha"] and list(model.standard_errors_) == ["r", "alpha"]
    assert all(np.isfinite(v) and v > 0 for v in model.standard_errors_.values())
    assert model.converged_ and model.covariance_.shape == (2, 2)
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "no customer has been seen to drop out" in message and "reduces to NBD" in message
    assert "every customer is alive until more history shows dropout" in message and "P(alive) = 1" in message
    # the same data make lifetimes give up: its optimum is the same boundary
    with pytest.raises(LifetimesConvergenceError):
        BetaGeoFitter().fit(retail_like["frequency"], retail_like["recency"], retail_like["T"])


def test_the_nbd_fit_is_lifetimes_likelihood_maximised_at_the_boundary(nbd_fit, retail_like):
    model, _ = nbd_fit
    f, rec, T = (retail_like[c].to_numpy() for c in ("frequency", "recency", "T"))
    fixed = np.log([FORCED_A, FORCED_B])

    def forced(log_r_alpha):
        return BetaGeoFitter._negative_log_likelihood(np.r_[log_r_alpha, fixed], f, rec, T, np.ones_like(f), 0.0)

    found = minimize(forced, np.log([1.0, 5.0]), method="Nelder-Mead",
                     options={"xatol": 1e-10, "fatol": 1e-14, "maxiter": 20_000})
    np.testing.assert_allclose([model.params_["r"], model.params_["alpha"]], np.exp(found.x), rtol=1e-6)
    assert model.log_likelihood_ == pytest.approx(-found.fun * f.size, rel=1e-9)
    assert model.log_likelihood_ == pytest.approx(_nbd_ll(model.params_["r"], model.params_["alpha"], f, T).sum(),
                                                  rel=1e-12)


def test_nbd_standard_errors_come_from_its_own_hessian(nbd_fit, retail_like):
    """The closed-form Hessian of the NBD log-likelihood in (r, alpha)."""
    model, _ = nbd_fit
    r, alpha = model.params_["r"], model.params_["alpha"]
    x, T = retail_like["frequency"].to_numpy(), retail_like["T"].to_numpy()
    h_rr = np.sum(polygamma(1, r + x) - polygamma(1, r))
    h_ra = np.sum(1.0 / alpha - 1.0 / (alpha + T))
    h_aa = np.sum(-r / alpha**2 + (r + x) / (alpha + T) ** 2)
    covariance = np.linalg.inv(-np.array([[h_rr, h_ra], [h_ra, h_aa]]))
    np.testing.assert_allclose(model.covariance_, covariance, rtol=1e-4)
    np.testing.assert_allclose(list(model.standard_errors_.values()), np.sqrt(np.diag(covariance)), rtol=1e-4)


def test_nbd_predictions_equal_their_closed_forms(nbd_fit, retail_like):
    model, _ = nbd_fit
    r, alpha = model.params_["r"], model.params_["alpha"]
    x, T = retail_like["frequency"].to_numpy(), retail_like["T"].to_numpy()
    np.testing.assert_array_equal(model.p_alive(retail_like), 1.0)
    for t in (0.5, 1.0, 13.0, 52.0):
        np.testing.assert_allclose(model.expected_purchases(retail_like, t), (r + x) / (alpha + T) * t, rtol=1e-12)
    horizons = np.linspace(0.0, 52.0, len(retail_like))
    np.testing.assert_allclose(model.expected_purchases(retail_like, horizons), (r + x) / (alpha + T) * horizons,
                               rtol=1e-12)
    ts = np.array([1.0, 4.0, 26.0])
    np.testing.assert_allclose(model.expected_purchases_path(retail_like, ts), ((r + x) / (alpha + T))[:, None] * ts,
                               rtol=1e-12)
    rate = 0.002  # per period: the discounted sum of the steps' purchases
    want = ((r + x) / (alpha + T))[:, None] * np.diff(ts, prepend=0.0) * (1 + rate) ** -ts
    np.testing.assert_allclose(model.discounted_expected_purchases(retail_like, ts, rate), want.sum(axis=1),
                               rtol=1e-12)
    np.testing.assert_allclose(model.expected_purchases_new(ts), r * ts / alpha, rtol=1e-12)
    for n in (0, 1, 3, 10):
        np.testing.assert_allclose(model.probability_of_n_purchases(n, 13.0, retail_like),
                                   _nb_pmf(n, r + x, alpha + T, 13.0), rtol=1e-10)
        assert model.probability_of_n_purchases(n, 13.0) == pytest.approx(_nb_pmf(n, r, alpha, 13.0), rel=1e-10)
    np.testing.assert_allclose(model.score_samples(retail_like), _nbd_ll(r, alpha, x, T), rtol=1e-12)


def test_nbd_predictions_equal_lifetimes_forced_to_the_boundary(nbd_fit, retail_like):
    model, _ = nbd_fit
    theirs = _forced_lifetimes(model.params_["r"], model.params_["alpha"])
    f, rec, T = (retail_like[c].to_numpy() for c in ("frequency", "recency", "T"))
    for t in (1.0, 10.0, 52.0):
        np.testing.assert_allclose(model.expected_purchases(retail_like, t),
                                   theirs.conditional_expected_number_of_purchases_up_to_time(t, f, rec, T), rtol=1e-9)
    np.testing.assert_allclose(model.p_alive(retail_like), theirs.conditional_probability_alive(f, rec, T), rtol=1e-9)
    times = np.array([1.0, 10.0, 52.0])
    np.testing.assert_allclose(model.expected_purchases_new(times), theirs.expected_number_of_purchases_up_to_time(times),
                               rtol=1e-9)
    for t in (1.0, 10.0, 52.0):
        for n in range(10):
            assert model.probability_of_n_purchases(n, t) == pytest.approx(
                theirs.probability_of_n_purchases_up_to_time(t, n), rel=1e-9)


def test_clv_with_the_nbd_limit_equals_the_closed_form_and_lifetimes(retail_like):
    value, caught = _fit_quietly(CustomerValue(period="W", horizon="26W", annual_discount_rate=0.1), retail_like)
    assert value.purchase_model_.limit_ == "nbd" and value.spend_model_.limit_ is None
    assert any("reduces to NBD" in str(w.message) for w in caught)
    got = value.predict(retail_like)
    r, alpha = value.purchase_model_.params_["r"], value.purchase_model_.params_["alpha"]
    x, T = retail_like["frequency"].to_numpy(), retail_like["T"].to_numpy()
    spend = value.spend_model_.expected_spend(retail_like)
    weeks = np.arange(1.0, 27.0)
    discount = 1.1 ** (-weeks * 7.0 / 365.25)  # weekly steps, discounted at each step's end
    rate = (r + x) / (alpha + T)
    np.testing.assert_allclose(got["p_alive"], 1.0)
    np.testing.assert_allclose(got["expected_purchases"], rate * 26.0, rtol=1e-12)
    np.testing.assert_allclose(got["clv"], spend * rate * discount.sum(), rtol=1e-12)
    # lifetimes' CLV (months of 30 days at a monthly rate) with its BG/NBD forced to the boundary
    days = retail_like.assign(recency=retail_like["recency"] * 7.0, T=retail_like["T"] * 7.0)
    daily, _ = _fit_quietly(CustomerValue(period="D", horizon="360D", annual_discount_rate=1.01 ** (365.25 / 30) - 1),
                            days)
    ours = daily.purchase_model_.discounted_expected_purchases(days, np.arange(30.0, 361.0, 30.0),
                                                               1.01 ** (1 / 30) - 1) * daily.spend_model_.expected_spend(days)
    gg = GammaGammaFitter()
    gg.params_ = pd.Series(daily.spend_model_.fitted_params(), index=["p", "q", "v"])
    theirs = gg.customer_lifetime_value(
        _forced_lifetimes(daily.purchase_model_.params_["r"], daily.purchase_model_.params_["alpha"]),
        days["frequency"], days["recency"], days["T"], days["monetary_value"], time=12, discount_rate=0.01, freq="D")
    np.testing.assert_allclose(ours, theirs.to_numpy(), rtol=1e-8)


def test_every_penalizer_fits_where_no_dropout_is_visible(retail_like):
    for penalizer in (0.0, 0.001, 0.01, 0.1, 1.0):
        model, _ = _fit_quietly(BetaGeo(penalizer=penalizer), retail_like)
        assert model.converged_ and np.all(np.isfinite(model.predict(retail_like))), penalizer


def test_a_penalised_nbd_limit_is_the_penalised_nbd_optimum():
    """No dropout and a penalizer (which pulls a and b to 0): the NBD with the penalty on r and alpha, alpha in
    units of the longest T, as lifetimes' penalizer_coef."""
    data = _no_dropout(4300, 0.5, 5.0, seed=0)
    model, _ = _fit_quietly(BetaGeo(penalizer=0.1), data)
    assert model.limit_ == "nbd"
    x, T = data["frequency"].to_numpy(), data["T"].to_numpy()
    unit = T.max()

    def objective(log_params):
        r, alpha = np.exp(log_params)  # alpha in units of the longest T
        return -_nbd_ll(r, alpha, x, T / unit).mean() + 0.1 * (r**2 + alpha**2)

    found = minimize(objective, [0.0, 0.0], method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-14})
    r, alpha = np.exp(found.x)
    np.testing.assert_allclose([model.params_["r"], model.params_["alpha"]], [r, alpha * unit], rtol=1e-5)


def test_visible_dropout_fits_the_full_model_exactly_as_before(cdnow_summary, monkeypatch):
    model = BetaGeo().fit(cdnow_summary)
    assert model.limit_ is None and list(model.params_) == ["r", "alpha", "a", "b"]
    monkeypatch.setattr(bgnbd, "_fit_limits", lambda *args: [])  # the full model alone, as before limits
    alone = BetaGeo().fit(cdnow_summary)
    np.testing.assert_array_equal(model.result_.params, alone.result_.params)
    np.testing.assert_array_equal(model.covariance_, alone.covariance_)
    assert model.log_likelihood_ == alone.log_likelihood_
    assert "limit" not in model.summary().columns


# ------------------------------------------------------------------------------- the other BG/NBD limits
@pytest.fixture(scope="module")
def first_repeat():
    """No dropout, but a few one-repeat customers long silent: the likelihood is highest at a, b -> 0."""
    return _no_dropout(4300, 0.5, 5.0, seed=1)


def test_dropout_only_at_the_first_repeat_purchase_is_a_limit(first_repeat):
    model, caught = _fit_quietly(BetaGeo(), first_repeat)
    assert model.limit_ == "first_repeat_dropout" and list(model.params_) == ["r", "alpha", "pi"]
    r, alpha, pi = model.fitted_params()
    assert 0 < pi < 1 and all(np.isfinite(v) and v > 0 for v in model.standard_errors_.values())
    assert "stop after their first repeat purchase" in str(caught[0].message)
    x, tx, T = (first_repeat[c].to_numpy() for c in ("frequency", "recency", "T"))
    # the full BG/NBD likelihood a step from the boundary, a = pi eps, b = (1 - pi) eps
    eps = 1e-9
    near = log_likelihood_rows((r, alpha, pi * eps, (1 - pi) * eps), x, tx, T)
    np.testing.assert_allclose(model.score_samples(first_repeat), near, rtol=1e-6, atol=1e-6)
    assert model.log_likelihood_ == pytest.approx(near.sum(), rel=1e-7)
    nbd_only = minimize(lambda p: -_nbd_ll(*np.exp(p), x, T).sum(), [0.0, 0.0], method="Nelder-Mead",
                        options={"xatol": 1e-10, "fatol": 1e-12})
    assert model.log_likelihood_ > -nbd_only.fun  # better than nobody dropping out


def test_a_saved_share_must_be_below_one(first_repeat):
    model, _ = _fit_quietly(BetaGeo(), first_repeat)
    saved = json.loads(json.dumps(model.to_dict()))
    assert BetaGeo.from_dict(saved).params_ == model.params_
    saved["fitted"]["params"][2] = 1.5
    with pytest.raises(ConfigError, match="BetaGeo parameter pi is a share and must be below 1, got 1.5"):
        BetaGeo.from_dict(saved)


def test_first_repeat_dropout_predictions_equal_their_closed_forms(first_repeat):
    model, _ = _fit_quietly(BetaGeo(), first_repeat)
    r, alpha, pi = model.fitted_params()
    data = _frame([0, 0, 1, 1, 4], [0.0, 0.0, 2.0, 20.0, 25.0], [3.0, 28.0, 25.0, 25.0, 26.0])
    x, tx, T = (data[c].to_numpy() for c in ("frequency", "recency", "T"))
    alive = np.where(x == 1, 1.0 / (1.0 + pi / (1 - pi) * ((alpha + T) / (alpha + tx)) ** (r + 1)), 1.0)
    np.testing.assert_allclose(model.p_alive(data), alive, rtol=1e-12)
    A, t = alpha + T, 13.0
    # x = 0: a leaver (share pi) buys once at most; x >= 1 and alive: a stayer
    at_most_one = 1.0 - (A / (A + t)) ** r
    if_alive = np.where(x == 0, pi * at_most_one + (1 - pi) * r * t / A, (r + x) * t / A)
    np.testing.assert_allclose(model.expected_purchases(data, t), alive * if_alive, rtol=1e-12)
    for n in (0, 1, 2, 5):
        leaver = {0: (A / (A + t)) ** r, 1: at_most_one}.get(n, 0.0)
        fresh = np.where(x == 0, pi * leaver + (1 - pi) * _nb_pmf(n, r, A, t), _nb_pmf(n, r + x, A, t))
        want = alive * fresh + (1 - alive) * (n == 0)
        np.testing.assert_allclose(model.probability_of_n_purchases(n, t, data), want, rtol=1e-10)
    assert model.expected_purchases_new(t) == pytest.approx(pi * (1 - (alpha / (alpha + t)) ** r)
                                                            + (1 - pi) * r * t / alpha, rel=1e-12)
    # and the full model a step from the boundary predicts the same
    eps = 1e-9
    near = BetaGeo.from_dict({"model": "BetaGeo", "params": {"r": r, "alpha": alpha, "a": pi * eps, "b": (1 - pi) * eps},
                              "standard_errors": dict.fromkeys(["r", "alpha", "a", "b"], 0.0), "log_likelihood": 0.0,
                              "n_customers": 1, "hyper": {"penalizer": 0.0, "tol": 1e-10, "prediction_horizon": 1.0}})
    np.testing.assert_allclose(model.expected_purchases(data, t), near.expected_purchases(data, t), rtol=1e-6)
    np.testing.assert_allclose(model.p_alive(data), near.p_alive(data), rtol=1e-6)


def test_one_purchase_rate_for_everybody_is_the_poisson_limit():
    data = _no_dropout(4300, 1e6, 1e7, seed=2)  # Gamma(1e6, rate 1e7): every rate is 0.1
    model, caught = _fit_quietly(BetaGeo(), data)
    assert model.limit_ == "poisson" and list(model.params_) == ["lambda"]
    x, T = data["frequency"].to_numpy(), data["T"].to_numpy()
    lam = x.sum() / T.sum()  # the Poisson MLE
    assert model.params_["lambda"] == pytest.approx(lam, rel=1e-8)
    assert model.standard_errors_["lambda"] == pytest.approx(lam / math.sqrt(x.sum()), rel=1e-4)
    assert "one rate lambda=" in str(caught[0].message) and "whatever their history" in str(caught[0].message)
    np.testing.assert_array_equal(model.p_alive(data), 1.0)
    np.testing.assert_allclose(model.expected_purchases(data, 9.0), np.full(len(data), 9.0 * lam), rtol=1e-8)
    np.testing.assert_allclose(model.probability_of_n_purchases(3, 9.0, data.head()),
                               np.full(5, math.exp(-9 * lam) * (9 * lam) ** 3 / 6), rtol=1e-8)
    with pytest.warns(CustvalWarning, match="reduces to NBD"):  # a penalizer cannot reach r, alpha -> infinity
        assert BetaGeo(penalizer=0.01).fit(data).limit_ == "nbd"


# ------------------------------------------------------------------------------------------ spend limits
def _spend(seed: int, kind: str) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = 1 + rng.poisson(2.0, 2000)
    if kind == "common":  # nu = 0.5 for everybody: mean of x Gamma(3, 0.5) values
        m = rng.gamma(3.0 * x, 1.0 / (x * 0.5))
    else:  # each customer spends exactly their own mean, inverse-Gamma(4, 30) across customers
        m = 1.0 / rng.gamma(4.0, 1.0 / 30.0, 2000)
    return pd.DataFrame({"frequency": x.astype(float), "monetary_value": m})


def test_one_spend_distribution_for_everybody_is_the_common_spend_limit():
    data = _spend(0, "common")
    model, caught = _fit_quietly(GammaGamma(), data)
    assert model.limit_ == "common_spend" and list(model.params_) == ["p", "nu"]
    x, m = data["frequency"].to_numpy(), data["monetary_value"].to_numpy()
    found = minimize(lambda lp: -stats.gamma.logpdf(m, np.exp(lp[0]) * x, scale=1 / (x * np.exp(lp[1]))).sum(),
                     [0.0, 0.0], method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-12})
    np.testing.assert_allclose(model.fitted_params(), np.exp(found.x), rtol=1e-5)
    mean = model.params_["p"] / model.params_["nu"]
    assert "every customer's expected spend is the population mean" in str(caught[0].message)
    np.testing.assert_allclose(model.expected_spend(data), mean)
    assert model.population_mean_spend() == pytest.approx(mean)
    assert GammaGamma(penalizer=0.01).fit(data).limit_ is None  # a penalty rules out q -> infinity


def test_customers_who_always_spend_the_same_are_the_steady_spend_limit():
    data = _spend(0, "steady")
    model, caught = _fit_quietly(GammaGamma(), data)
    assert model.limit_ == "steady_spend" and list(model.params_) == ["q", "scale"]
    m = data["monetary_value"].to_numpy()
    q, _, scale = stats.invgamma.fit(m, floc=0)
    np.testing.assert_allclose(model.fitted_params(), [q, scale], rtol=1e-4)
    assert "a repeat buyer's expected spend is their own mean spend" in str(caught[0].message)
    one_time = pd.DataFrame({"frequency": [0.0, 2.0], "monetary_value": [0.0, 17.5]})
    population = model.params_["scale"] / (model.params_["q"] - 1)
    np.testing.assert_allclose(model.expected_spend(one_time), [population, 17.5])


# --------------------------------------------------------------------------------------- saved form
def test_a_limit_saves_as_format_3_and_loads_with_its_predictions(nbd_fit, retail_like):
    model, _ = nbd_fit
    saved = json.loads(json.dumps(model.to_dict(), allow_nan=False))
    assert saved["format"] == 3 and saved["fitted"]["limit"] == "nbd" and saved["fitted"]["names"] == ["r", "alpha"]
    restored = BetaGeo.from_dict(saved)
    assert restored.limit_ == "nbd" and restored.params_ == model.params_
    np.testing.assert_array_equal(restored.expected_purchases(retail_like, 10.0), model.expected_purchases(retail_like, 10.0))
    pd.testing.assert_frame_equal(restored.summary(), model.summary())
    summary = model.summary()
    assert list(summary.index) == ["r", "alpha", "a", "b"]
    assert list(summary["limit"]) == ["free", "free", "nbd: a -> 0: no customer drops out",
                                      "nbd: not identified without dropout"]
    assert summary.loc["a", "estimate"] == 0.0 and np.isnan(summary.loc["a", "se"])


def test_customer_value_with_limits_round_trips(retail_like):
    value, _ = _fit_quietly(CustomerValue(), retail_like)
    saved = json.loads(json.dumps(value.to_dict(), allow_nan=False))
    assert saved["format"] == 2 and saved["fitted"]["purchase_model"]["format"] == 3
    pd.testing.assert_frame_equal(CustomerValue.from_dict(saved).predict(retail_like), value.predict(retail_like))


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: d.update(format=2), r"fitted\.limit 'nbd' needs format 3, got format 2"),
    (lambda d: d["fitted"].update(limit="gamma"), r"unknown fitted\.limit 'gamma' \(known: \['first_repeat_dropout', "
                                                  r"'nbd', 'poisson'\]\)"),
    (lambda d: d["fitted"].pop("limit"), r"format 3 records fitted\.limit, which is missing"),
    (lambda d: d["fitted"].update(limit="poisson"), r"parameters must be \['lambda'\], got \['r', 'alpha'\]"),
])
def test_malformed_limit_descriptions_are_config_errors(nbd_fit, edit, message):
    saved = json.loads(json.dumps(nbd_fit[0].to_dict()))
    edit(saved)
    with pytest.raises(ConfigError, match=message):
        BetaGeo.from_dict(saved)


# -------------------------------------------------------------------------------------- true failures
def test_a_fit_with_no_maximum_says_why_in_model_units_and_suggests_a_setting_that_exists():
    same = _frame(np.full(20, 2.0), np.full(20, 3.0), np.full(20, 8.0))  # identical customers
    with pytest.raises(ConvergenceError) as info:
        BetaGeo().fit(same)
    message = str(info.value)
    assert message.startswith("BetaGeo: ") and "the fit stopped at r=" in message
    assert "Try a penalizer > 0 (e.g. 0.01)" in message and "penalizer" in BetaGeo().get_params()
    for numpy_text in ("LinAlgError", "Eigenvalues did not converge", "Singular matrix", "np.float64"):
        assert numpy_text not in message
    model, _ = _fit_quietly(BetaGeo(penalizer=0.01), same)  # and the advice is sound
    assert model.converged_


def test_a_spend_likelihood_without_a_maximum_is_still_an_error():
    constant = pd.DataFrame({"frequency": np.arange(1.0, 41.0) % 4 + 1, "monetary_value": np.full(40, 10.0)})
    with pytest.raises(ConvergenceError, match=r"^GammaGamma: .*q -> infinity.*Try a penalizer > 0"):
        GammaGamma().fit(constant)
