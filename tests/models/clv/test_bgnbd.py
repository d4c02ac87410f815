"""BG/NBD: published CDNOW estimates, lifetimes 0.11.3 as the reference implementation (fits, standard
errors, every prediction formula at identical parameters), independent numerical oracles (adaptive
quadrature of the defining integrals, finite differences, Monte Carlo from the model's definition),
numerically hard regions, input validation, scikit-learn conventions and persistence."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from lifetimes import BetaGeoFitter
from scipy import integrate
from scipy.special import betaln
from sklearn.base import clone

from custval.errors import ConfigError, ConvergenceError, DataError, NotFittedError, SchemaError
from custval.models.clv import bgnbd
from custval.models.clv.bgnbd import BetaGeo, NegLogLikelihood, log_likelihood_rows

NAMES = ("r", "alpha", "a", "b")
PUBLISHED = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}  # FHL (2005), CDNOW sample, weeks
PUBLISHED_LL = -9582.4
SYNTHETIC_TRUTH = {"r": 0.5, "alpha": 6.0, "a": 1.2, "b": 3.0}  # a > 1, unlike CDNOW


def _params(model: BetaGeo) -> np.ndarray:
    return np.array([model.params_[k] for k in NAMES])


def _lifetimes_at(params) -> BetaGeoFitter:
    """A lifetimes BetaGeoFitter carrying the given parameters, to compare prediction formulas alone."""
    fitter = BetaGeoFitter()
    fitter.params_ = pd.Series(np.asarray(params, dtype=float), index=list(NAMES))
    return fitter


def _model_at(r, alpha, a, b, prediction_horizon=1.0) -> BetaGeo:
    return BetaGeo.from_dict({
        "model": "BetaGeo", "params": {"r": r, "alpha": alpha, "a": a, "b": b},
        "standard_errors": dict.fromkeys(NAMES, 0.0), "log_likelihood": 0.0, "n_customers": 1,
        "hyper": {"penalizer": 0.0, "tol": 1e-10, "prediction_horizon": prediction_horizon},
    })


def _frame(frequency, recency, T) -> pd.DataFrame:
    frequency, recency, T = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (frequency, recency, T)))
    return pd.DataFrame({"frequency": frequency, "recency": recency, "T": T})


def _alive_quad(s: float, k: float, beta: float, a: float) -> float:
    """E[(1 - (1 + p s)^-k) / p] for p ~ Beta(a, beta) by adaptive quadrature: the expected purchases in the
    next t = s A periods of a customer alive now with rate ~ Gamma(k, rate A) and dropout ~ Beta(a, beta).
    Uses no hypergeometric function; the Beta endpoint singularities go into QUADPACK's algebraic weights."""
    lb = betaln(a, beta)

    def g(p: float) -> float:
        return -math.expm1(-k * math.log1p(p * s)) / p if p > 0 else k * s

    quad = dict(epsabs=0.0, epsrel=1e-12, limit=500)
    if beta <= 50:
        left = integrate.quad(lambda p: g(p) * math.exp((beta - 1) * math.log1p(-p) - lb), 0, 0.5,
                              weight="alg", wvar=(a - 1, 0), **quad)[0]
        right = integrate.quad(lambda p: g(p) * math.exp((a - 1) * math.log(p) - lb), 0.5, 1,
                               weight="alg", wvar=(0, beta - 1), **quad)[0]
        return left + right

    def in_y(y: float) -> float:  # p = exp(-y): the mass of Beta(a, large beta) sits near y = ln(beta)
        p = math.exp(-y)
        if y <= 0 or p == 0:
            return 0.0
        return g(p) * math.exp(-a * y + (beta - 1) * math.log1p(-p) - lb)

    edges = [0, 1e-4, 1e-3, 0.01, 0.1, 0.3, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 16, 20, 30, 50, 100, 1e3,
             1e4, 1e5]
    return sum(integrate.quad(in_y, lo, hi, **quad)[0] for lo, hi in zip(edges[:-1], edges[1:], strict=True))


def _p_alive_ref(r, alpha, a, b, x, tx, T) -> float:
    if x == 0:
        return 1.0
    log_odds = math.log(a / (b + x - 1)) + (r + x) * math.log((alpha + T) / (alpha + tx))
    return 1.0 / (1.0 + math.exp(log_odds)) if log_odds < 700 else 0.0


def _expected_ref(params, x, tx, T, t) -> float:
    r, alpha, a, b = params
    return _p_alive_ref(r, alpha, a, b, x, tx, T) * _alive_quad(t / (alpha + T), r + x, b + x, a)


@pytest.fixture(scope="module")
def cdnow_fit(cdnow_summary) -> BetaGeo:
    return BetaGeo().fit(cdnow_summary)


@pytest.fixture(scope="module")
def cdnow_lifetimes(cdnow_summary) -> BetaGeoFitter:
    return BetaGeoFitter().fit(cdnow_summary["frequency"], cdnow_summary["recency"], cdnow_summary["T"])


@pytest.fixture(scope="module")
def synthetic(bgnbd_simulator) -> pd.DataFrame:
    T = np.random.default_rng(11).uniform(20.0, 52.0, size=4000)
    return bgnbd_simulator(4000, **SYNTHETIC_TRUTH, T=T, seed=12)[["frequency", "recency", "T"]]


@pytest.fixture(scope="module")
def synthetic_fit(synthetic) -> BetaGeo:
    return BetaGeo().fit(synthetic)


@pytest.fixture(scope="module")
def synthetic_lifetimes(synthetic) -> BetaGeoFitter:
    return BetaGeoFitter().fit(synthetic["frequency"], synthetic["recency"], synthetic["T"])


# ------------------------------------------------------------------------------------------ fitting
def test_cdnow_reproduces_published_estimates(cdnow_fit):
    for name, value in PUBLISHED.items():
        assert round(cdnow_fit.params_[name], 3) == value, name
    assert round(cdnow_fit.log_likelihood_, 1) == PUBLISHED_LL
    assert cdnow_fit.n_customers_ == 2357
    assert cdnow_fit.converged_ and cdnow_fit.n_iter_ > 0
    assert cdnow_fit.n_unique_rows_ < 2357  # identical (frequency, recency, T) rows were compressed
    summary = cdnow_fit.summary()
    assert list(summary.index) == list(NAMES)
    assert list(summary.columns) == ["estimate", "se", "lower_95", "upper_95"]
    np.testing.assert_allclose(summary["upper_95"] - summary["estimate"], 1.96 * summary["se"])


@pytest.mark.parametrize("which", ["cdnow", "synthetic"])
def test_fit_agrees_with_lifetimes(which, request):
    ours = request.getfixturevalue(f"{which}_fit")
    theirs = request.getfixturevalue(f"{which}_lifetimes")
    data = request.getfixturevalue("cdnow_summary" if which == "cdnow" else "synthetic")
    np.testing.assert_allclose(_params(ours), theirs.params_[list(NAMES)].to_numpy(), rtol=1e-4)
    # lifetimes' own likelihood code (weights 1, unscaled time) at our optimum gives our log-likelihood
    n = len(data)
    their_mean_nll = BetaGeoFitter._negative_log_likelihood(
        np.log(_params(ours)), data["frequency"].to_numpy(), data["recency"].to_numpy(), data["T"].to_numpy(),
        np.ones(n), 0.0)
    assert ours.log_likelihood_ == pytest.approx(-their_mean_nll * n, rel=1e-10)
    assert ours.score(data) == pytest.approx(ours.log_likelihood_ / n, rel=1e-12)


def test_synthetic_fit_is_near_the_truth(synthetic_fit):
    # a coarse sanity check that the simulator and the model agree (recovery is tested elsewhere)
    se = synthetic_fit.standard_errors_
    for name, truth in SYNTHETIC_TRUTH.items():
        assert abs(synthetic_fit.params_[name] - truth) < 4.5 * se[name], name


@pytest.mark.parametrize("which", ["cdnow", "synthetic"])
def test_standard_errors_agree_with_lifetimes(which, request):
    """lifetimes: Var = params^2 * inv(Hessian of the mean NLL in log-parameters) / n, i.e. the delta method
    from log to natural parameters; at the optimum (zero gradient) this equals inverting the Hessian in
    natural parameters, which is what we do. Its off-diagonal entries are params_j^2 (not params_i
    params_j) times inv(H)_ij, so the covariance is rebuilt here from its `_hessian_`."""
    ours = request.getfixturevalue(f"{which}_fit")
    theirs = request.getfixturevalue(f"{which}_lifetimes")
    np.testing.assert_allclose(list(ours.standard_errors_.values()), theirs.standard_errors_[list(NAMES)], rtol=1e-4)
    p = theirs.params_[list(NAMES)].to_numpy()
    their_cov = np.outer(p, p) * np.linalg.inv(theirs._hessian_) / theirs.data["weights"].sum()
    np.testing.assert_allclose(ours.covariance_, their_cov, rtol=1e-3, atol=1e-12)


def test_standard_errors_match_finite_difference_hessian(cdnow_fit, cdnow_summary):
    """Independent of both optimisers: second differences of the plain per-row log-likelihood."""
    p0 = _params(cdnow_fit)
    x, tx, T = (cdnow_summary[c].to_numpy() for c in ("frequency", "recency", "T"))

    def ll(p):
        return float(np.sum(log_likelihood_rows(p, x, tx, T)))

    h = 1e-4 * p0
    hess = np.empty((4, 4))
    for i in range(4):
        for j in range(4):
            ei, ej = np.eye(4)[i] * h[i], np.eye(4)[j] * h[j]
            hess[i, j] = (ll(p0 + ei + ej) - ll(p0 + ei - ej) - ll(p0 - ei + ej) + ll(p0 - ei - ej)) / (4 * h[i] * h[j])
    se = np.sqrt(np.diag(np.linalg.inv(-hess)))
    np.testing.assert_allclose(list(cdnow_fit.standard_errors_.values()), se, rtol=2e-3)


def test_penalized_fit_agrees_with_lifetimes(cdnow_summary):
    """The penalty acts on alpha in units of the longest T, as lifetimes' penalizer_coef does."""
    ours = BetaGeo(penalizer=0.1).fit(cdnow_summary)
    theirs = BetaGeoFitter(penalizer_coef=0.1).fit(
        cdnow_summary["frequency"], cdnow_summary["recency"], cdnow_summary["T"])
    np.testing.assert_allclose(_params(ours), theirs.params_[list(NAMES)].to_numpy(), rtol=1e-4)
    np.testing.assert_allclose(list(ours.standard_errors_.values()), theirs.standard_errors_[list(NAMES)], rtol=1e-3)
    assert ours.log_likelihood_ < BetaGeo().fit(cdnow_summary).log_likelihood_


def _hard_rows() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rows exercising every branch of the fast likelihood: one-time buyers (incl. T = 0), ordinary repeat
    buyers, and heavy buyers long gone whose log-odds of being dead exceed 700 (the overflow-safe branch)."""
    rng = np.random.default_rng(3)
    x = np.concatenate([np.zeros(30), rng.integers(1, 15, 200), [500.0, 2000.0, 10_000.0]])
    T = np.concatenate([rng.uniform(0, 40, 30), rng.uniform(5, 40, 200), [40.0, 40.0, 40.0]])
    T[0] = 0.0
    tx = np.concatenate([np.zeros(30), rng.uniform(0, 1, 200) * T[30:230], [1.0, 0.5, 39.0]])
    w = rng.integers(1, 4, x.size).astype(float)
    return x, tx, T, w


def test_fast_likelihood_equals_plain_formula_and_lifetimes():
    x, tx, T, w = _hard_rows()
    nll = NegLogLikelihood(x, tx, T, w)
    for params in ([0.24, 4.4, 0.79, 2.4], [2.0, 0.5, 3.0, 0.2], [0.05, 30.0, 0.2, 40.0]):
        value, _ = nll(np.array(params))
        plain = -float(w @ log_likelihood_rows(params, x, tx, T))
        assert value == pytest.approx(plain, rel=1e-12)
        ordinary = slice(0, 230)  # lifetimes overflows on the heavy buyers; compare where it is finite
        sub = NegLogLikelihood(x[ordinary], tx[ordinary], T[ordinary], w[ordinary])(np.array(params))[0]
        theirs = BetaGeoFitter._negative_log_likelihood(np.log(params), x[ordinary], tx[ordinary], T[ordinary],
                                                        w[ordinary], 0.0) * w[ordinary].sum()
        assert sub == pytest.approx(theirs, rel=1e-10)
    assert np.isfinite(-float(w @ log_likelihood_rows([0.24, 4.4, 0.79, 2.4], x, tx, T)))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_analytic_gradient_matches_finite_differences(seed):
    x, tx, T, w = _hard_rows()
    nll = NegLogLikelihood(x, tx, T, w)
    rng = np.random.default_rng(seed)
    params = np.exp(rng.normal(np.log([0.5, 5.0, 1.0, 2.5]), 1.0))
    _, grad = nll(params)
    for j in range(4):
        h = 1e-6 * params[j]
        up, down = params.copy(), params.copy()
        up[j] += h
        down[j] -= h
        fd = (nll(up)[0] - nll(down)[0]) / (2 * h)
        assert grad[j] == pytest.approx(fd, rel=1e-6, abs=1e-6 * np.abs(grad).max()), (j, params)


def test_weights_equal_repeated_rows(cdnow_summary):
    head = cdnow_summary.iloc[:600]
    weights = np.random.default_rng(4).integers(1, 4, len(head))
    repeated = head.loc[head.index.repeat(weights)]
    weighted = BetaGeo().fit(head, sample_weight=weights)
    expanded = BetaGeo().fit(repeated)
    np.testing.assert_allclose(_params(weighted), _params(expanded), rtol=1e-6)
    assert weighted.log_likelihood_ == pytest.approx(expanded.log_likelihood_, rel=1e-10)
    assert weighted.n_customers_ == expanded.n_customers_ == int(weights.sum())
    zero = BetaGeo().fit(pd.concat([head, head.iloc[:50]]), sample_weight=np.r_[weights, np.zeros(50)])
    np.testing.assert_allclose(_params(zero), _params(weighted), rtol=1e-6)


def test_large_input_starts_from_a_subsample_and_reaches_the_same_optimum(bgnbd_simulator, monkeypatch):
    data = bgnbd_simulator(60_000, 0.3, 8.0, 0.8, 2.5, T=np.random.default_rng(5).uniform(1, 60, 60_000), seed=6)
    via_subsample = BetaGeo().fit(data)
    assert via_subsample.n_unique_rows_ > bgnbd._SUBSAMPLE
    monkeypatch.setattr(bgnbd, "_SUBSAMPLE", 10**9)
    direct = BetaGeo().fit(data)
    np.testing.assert_allclose(_params(via_subsample), _params(direct), rtol=1e-5)
    assert via_subsample.log_likelihood_ == pytest.approx(direct.log_likelihood_, rel=1e-10)


def test_array_input_equals_frame_input_and_extra_columns_are_ignored(cdnow_summary, cdnow_fit):
    array_fit = BetaGeo().fit(cdnow_summary[["frequency", "recency", "T"]].to_numpy())
    np.testing.assert_allclose(_params(array_fit), _params(cdnow_fit), rtol=1e-12)
    shuffled = cdnow_summary[["T", "monetary_value", "recency", "frequency"]]
    np.testing.assert_array_equal(cdnow_fit.p_alive(shuffled), cdnow_fit.p_alive(cdnow_summary))


def test_unidentifiable_data_raises_convergence_error():
    # identical customers: no heterogeneity to estimate, the likelihood keeps rising as parameters diverge
    same = _frame(np.full(20, 2.0), np.full(20, 3.0), np.full(20, 8.0))
    with pytest.raises(ConvergenceError, match="BetaGeo"):
        BetaGeo().fit(same)


# ---------------------------------------------------------------- predictions vs lifetimes (same parameters)
@pytest.mark.parametrize("which", ["cdnow", "synthetic"])
def test_predictions_agree_with_lifetimes_at_identical_parameters(which, request):
    ours = request.getfixturevalue(f"{which}_fit")
    data = request.getfixturevalue("cdnow_summary" if which == "cdnow" else "synthetic")
    theirs = _lifetimes_at(_params(ours))
    f, r, T = (data[c].to_numpy() for c in ("frequency", "recency", "T"))
    for t in (0.5, 1.0, 10.0, 52.0, 200.0):
        np.testing.assert_allclose(
            ours.expected_purchases(data, t),
            theirs.conditional_expected_number_of_purchases_up_to_time(t, f, r, T), rtol=1e-6)
    np.testing.assert_allclose(ours.p_alive(data), theirs.conditional_probability_alive(f, r, T), rtol=1e-6)
    times = np.array([0.1, 1.0, 5.0, 39.0, 78.0, 500.0])
    np.testing.assert_allclose(ours.expected_purchases_new(times), theirs.expected_number_of_purchases_up_to_time(times),
                               rtol=1e-6)
    for t in (1.0, 10.0, 52.0, 200.0):
        for n in range(0, 16):
            assert ours.probability_of_n_purchases(n, t) == pytest.approx(
                theirs.probability_of_n_purchases_up_to_time(t, n), rel=1e-6), (t, n)


def test_predict_uses_the_prediction_horizon(cdnow_fit, cdnow_summary):
    model = clone(cdnow_fit).set_params(prediction_horizon=13.0).fit(cdnow_summary)
    np.testing.assert_array_equal(model.predict(cdnow_summary), model.expected_purchases(cdnow_summary, 13.0))
    assert not np.array_equal(model.predict(cdnow_summary), cdnow_fit.predict(cdnow_summary))


def test_expected_purchases_accepts_per_customer_horizons(cdnow_fit, cdnow_summary):
    head = cdnow_summary.iloc[:5]
    t = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    each = [cdnow_fit.expected_purchases(head.iloc[[i]], t[i])[0] for i in range(5)]
    np.testing.assert_allclose(cdnow_fit.expected_purchases(head, t), each, rtol=1e-14)


# ------------------------------------------------------------------------ multi-horizon predictions
def _per_row(model: BetaGeo, X, t: float) -> np.ndarray:
    """expected_purchases with one horizon per customer: evaluated row by row (no sharing of distinct rows)."""
    return model.expected_purchases(X, np.full(len(X), float(t)))


def _discounted_ref(model: BetaGeo, X, ts, period_rate) -> np.ndarray:
    """sum_j [E(ts_j) - E(ts_{j-1})] (1 + rate)^-ts_j, one step at a time from row-by-row expected_purchases."""
    total, previous = np.zeros(len(X)), np.zeros(len(X))
    for t in ts:
        cumulative = _per_row(model, X, t)
        total += (cumulative - previous) * (1.0 + np.asarray(period_rate, dtype=float)) ** -t
        previous = cumulative
    return total


@pytest.fixture(scope="module")
def repeated(synthetic) -> pd.DataFrame:
    """The synthetic customers on an integer grid (so (frequency, T) pairs repeat, as with daily data), plus exact
    duplicates of 500 rows and 50 copies of one row, shuffled."""
    grid = synthetic.assign(T=np.ceil(synthetic["T"]), recency=np.floor(synthetic["recency"]))
    return pd.concat([grid, grid.iloc[:500], grid.iloc[[7] * 50]]).sample(frac=1.0, random_state=3)


WEEKLY_ENDS = np.append(np.arange(1.0, 53.0), 365.25 / 7)  # 12 mean months in weeks: the last step is partial


@pytest.mark.parametrize("which", ["cdnow", "repeated"])
def test_one_horizon_on_distinct_rows_equals_row_by_row(which, request, cdnow_fit, cdnow_summary):
    X = cdnow_summary if which == "cdnow" else request.getfixturevalue("repeated")
    assert len(X.drop_duplicates(["frequency", "T"])) < len(X) / 3  # the sharing really happens
    for t in (0.5, 1.0, 10.0, 365.25 / 7, 200.0):
        np.testing.assert_allclose(cdnow_fit.expected_purchases(X, t), _per_row(cdnow_fit, X, t), rtol=1e-12)


@pytest.mark.parametrize("which", ["cdnow", "repeated"])
def test_expected_purchases_path_equals_each_horizon(which, request, cdnow_fit, cdnow_summary, monkeypatch):
    X = cdnow_summary if which == "cdnow" else request.getfixturevalue("repeated")
    ts = [0.0, 0.5, 1.0, 10.0, 365.25 / 7, 200.0]
    path = cdnow_fit.expected_purchases_path(X, ts)
    assert path.shape == (len(X), len(ts))
    for j, t in enumerate(ts):
        np.testing.assert_allclose(path[:, j], _per_row(cdnow_fit, X, t), rtol=1e-12, err_msg=str(t))
    assert np.all(np.diff(path, axis=1) > 0)  # cumulative purchases grow with the horizon
    monkeypatch.setattr(bgnbd, "_PATH_BLOCK", 7)  # many small blocks of distinct rows: same numbers
    np.testing.assert_allclose(cdnow_fit.expected_purchases_path(X, ts), path, rtol=1e-13)
    np.testing.assert_allclose(cdnow_fit.expected_purchases_path(X, 10.0)[:, 0], path[:, 3], rtol=1e-13)


@pytest.mark.parametrize("which", ["cdnow", "repeated"])
@pytest.mark.parametrize("rates", ["scalar", "three", "continuous"])
def test_discounted_expected_purchases_equals_stepwise_sum(which, rates, request, cdnow_fit, cdnow_summary,
                                                           monkeypatch):
    X = cdnow_summary if which == "cdnow" else request.getfixturevalue("repeated")
    rng = np.random.default_rng(5)
    period_rate = {"scalar": 0.0018, "three": rng.choice([0.0, 0.0018, 0.004], size=len(X)),
                   "continuous": rng.uniform(-0.001, 0.01, size=len(X))}[rates]
    want = _discounted_ref(cdnow_fit, X, WEEKLY_ENDS, period_rate)
    got = cdnow_fit.discounted_expected_purchases(X, WEEKLY_ENDS, period_rate)
    assert got.shape == (len(X),) and np.all(want > 0)
    np.testing.assert_allclose(got, want, rtol=1e-10)
    # the one-pass parts used by CustomerValue.predict: P(alive), discounted and last-horizon purchases
    alive, discounted, last = cdnow_fit.value_components(X, WEEKLY_ENDS, period_rate)
    np.testing.assert_array_equal(alive, cdnow_fit.p_alive(X))
    np.testing.assert_allclose(alive * discounted, want, rtol=1e-10)
    np.testing.assert_allclose(alive * last, _per_row(cdnow_fit, X, WEEKLY_ENDS[-1]), rtol=1e-12)
    # small blocks, pairs split across chunks, discount factors computed per chunk instead of tabulated
    monkeypatch.setattr(bgnbd, "_PATH_BLOCK", 60)
    monkeypatch.setattr(bgnbd, "_TABLE_ENTRIES", 0)
    np.testing.assert_allclose(cdnow_fit.discounted_expected_purchases(X, WEEKLY_ENDS, period_rate), want,
                               rtol=1e-10)
    # rate 0: the increments add up to the purchases over the last horizon
    np.testing.assert_allclose(cdnow_fit.discounted_expected_purchases(X, WEEKLY_ENDS),
                               _per_row(cdnow_fit, X, WEEKLY_ENDS[-1]), rtol=1e-10)


def test_multi_horizon_identical_duplicate_and_empty_frames(cdnow_fit, cdnow_summary):
    row = cdnow_summary.iloc[[11]]
    same = pd.concat([row] * 1000)
    single = cdnow_fit.expected_purchases_path(row, WEEKLY_ENDS)
    np.testing.assert_array_equal(cdnow_fit.expected_purchases_path(same, WEEKLY_ENDS), np.repeat(single, 1000, 0))
    np.testing.assert_allclose(single[0], [_per_row(cdnow_fit, row, t)[0] for t in WEEKLY_ENDS], rtol=1e-12)
    rates = np.linspace(0.0, 0.01, 1000)
    np.testing.assert_allclose(cdnow_fit.discounted_expected_purchases(same, WEEKLY_ENDS, rates),
                               _discounted_ref(cdnow_fit, same, WEEKLY_ENDS, rates), rtol=1e-10)
    empty = cdnow_summary.iloc[:0]
    assert cdnow_fit.expected_purchases_path(empty, WEEKLY_ENDS).shape == (0, WEEKLY_ENDS.size)
    assert cdnow_fit.discounted_expected_purchases(empty, WEEKLY_ENDS, 0.001).shape == (0,)
    assert cdnow_fit.expected_purchases(empty, 3.0).shape == (0,)


@pytest.mark.parametrize("params, data", [
    ((0.6, 2.0, 0.3, 0.45), _frame([0, 0, 1, 4], [0.0, 0.0, 2.0, 9.0], [3.0, 30.0, 10.0, 12.0])),  # a + b < 1
    ((0.5, 5.0, 1 - 4e-4, 2.0), _frame([0, 1, 7, 30], [0.0, 3.0, 20.0, 39.0], [5.0, 20.0, 30.0, 40.0])),  # a ~ 1
    ((0.243, 4.414, 0.793, 2.426), _frame([1e4, 3000.0, 0.0], [39.999, 38.0, 0.0], [40.0, 40.0, 0.0])),  # huge x
])
def test_multi_horizon_predictions_in_the_hard_regions(params, data):
    """The multi-horizon methods go through the same stable evaluation: checked against quadrature."""
    model = _model_at(*params)
    ts = [0.01, 1.0, 25.0, 400.0]
    path = _assert_quiet_and_finite(model.expected_purchases_path, data, ts)
    want = np.array([[_expected_ref(params, *row, t) for t in ts] for row in data.itertuples(index=False)])
    np.testing.assert_allclose(path, want, rtol=1e-7, atol=1e-300)
    discounted = _assert_quiet_and_finite(model.discounted_expected_purchases, data, ts, 0.01)
    np.testing.assert_allclose(discounted, _discounted_ref(model, data, ts, 0.01), rtol=1e-10, atol=1e-300)


def test_multi_horizon_input_checks(cdnow_fit):
    data = _valid()
    with pytest.raises(ConfigError, match="ts must be finite and >= 0"):
        cdnow_fit.expected_purchases_path(data, [1.0, -2.0])
    with pytest.raises(ConfigError, match="ts must be finite and >= 0"):
        cdnow_fit.discounted_expected_purchases(data, [1.0, np.nan])
    with pytest.raises(ConfigError, match="non-empty 1-D"):
        cdnow_fit.expected_purchases_path(data, [])
    with pytest.raises(ConfigError, match="non-empty 1-D"):
        cdnow_fit.discounted_expected_purchases(data, [[1.0, 2.0]])
    with pytest.raises(ConfigError, match="period_rate must be finite and > -1"):
        cdnow_fit.discounted_expected_purchases(data, [1.0, 2.0], -1.0)
    with pytest.raises(ConfigError, match="period_rate must be finite and > -1"):
        cdnow_fit.discounted_expected_purchases(data, [1.0, 2.0], [0.1, 0.1, np.inf, 0.1])
    with pytest.raises(ConfigError, match=r"one per customer \(4\)"):
        cdnow_fit.discounted_expected_purchases(data, [1.0, 2.0], [0.1, 0.1])
    bad = data.copy()
    bad.loc[1, "recency"] = 99.0
    for call in (cdnow_fit.expected_purchases_path, cdnow_fit.discounted_expected_purchases):
        with pytest.raises(DataError, match=r"rfm\.recency: must be <= T"):
            call(bad, [1.0])
    with pytest.raises(NotFittedError):
        BetaGeo().expected_purchases_path(data, [1.0])
    with pytest.raises(NotFittedError):
        BetaGeo().discounted_expected_purchases(data, [1.0])


# ------------------------------------------------------------------------ probability of n purchases
@pytest.mark.parametrize("t", [1.0, 10.0, 52.0])
def test_unconditional_pmf_sums_to_one_and_its_mean_is_eq_9(cdnow_fit, t):
    n = np.arange(0, 400)
    pmf = cdnow_fit.probability_of_n_purchases(n, t)
    assert np.all(pmf >= 0)
    assert pmf.sum() == pytest.approx(1.0, abs=1e-10)
    assert float(n @ pmf) == pytest.approx(cdnow_fit.expected_purchases_new(t), rel=1e-8)


def test_conditional_pmf_sums_to_one_and_its_mean_is_eq_10(cdnow_fit, cdnow_summary):
    data = cdnow_summary.iloc[::20]
    t = 26.0
    pmf = np.stack([cdnow_fit.probability_of_n_purchases(n, t, data) for n in range(300)])
    np.testing.assert_allclose(pmf.sum(axis=0), 1.0, atol=1e-10)
    mean = np.arange(300) @ pmf
    np.testing.assert_allclose(mean, cdnow_fit.expected_purchases(data, t), rtol=1e-8)


def test_conditional_pmf_of_a_brand_new_customer_is_the_unconditional_one(cdnow_fit):
    newborn = _frame([0.0], [0.0], [0.0])
    for n in range(6):
        assert cdnow_fit.probability_of_n_purchases(n, 20.0, newborn)[0] == pytest.approx(
            cdnow_fit.probability_of_n_purchases(n, 20.0), rel=1e-12)


def test_unconditional_pmf_matches_simulation(bgnbd_simulator):
    truth = (0.7, 5.0, 1.3, 2.0)
    model = _model_at(*truth)
    t, size = 30.0, 200_000
    counts = bgnbd_simulator(size, *truth, T=t, seed=7)["frequency"].to_numpy().astype(int)
    for n in range(8):
        p = model.probability_of_n_purchases(n, t)
        assert abs(np.mean(counts == n) - p) < 5 * math.sqrt(p * (1 - p) / size), n


def test_conditional_pmf_matches_monte_carlo_from_the_posterior():
    """Given (x, t_x, T): alive with P(alive); if alive, lambda ~ Gamma(r+x, rate alpha+T) and
    p ~ Beta(a, b+x), and the future is a fresh BG/NBD process (exponential gaps, dropout after purchases)."""
    params = (0.4, 6.0, 0.9, 2.5)
    model = _model_at(*params)
    r, alpha, a, b = params
    rng = np.random.default_rng(8)
    size, t = 400_000, 20.0
    for x, tx, T in [(0, 0.0, 30.0), (3, 10.0, 30.0), (3, 29.0, 30.0), (12, 25.0, 40.0)]:
        alive = rng.random(size) < _p_alive_ref(r, alpha, a, b, x, tx, T)
        lam = rng.gamma(r + x, 1.0 / (alpha + T), size)
        p = rng.beta(a, b + x, size)
        future = np.where(alive, np.minimum(rng.poisson(lam * t), rng.geometric(p)), 0)
        row = _frame([x], [tx], [T])
        for n in range(6):
            prob = model.probability_of_n_purchases(n, t, row)[0]
            assert abs(np.mean(future == n) - prob) < 5 * math.sqrt(prob * (1 - prob) / size) + 1e-12, (x, tx, n)


# ---------------------------------------------------------------------------------------- stability
def _assert_quiet_and_finite(func, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = np.asarray(func(*args), dtype=float)
    assert np.all(np.isfinite(out))
    return out


ONE_TIME = _frame([0.0] * 4, [0.0] * 4, [0.0, 0.5, 10.0, 100.0])


@pytest.mark.parametrize("params", [(0.243, 4.414, 0.793, 2.426), (1.5, 0.3, 4.0, 0.6)])
def test_one_time_buyers(params):
    model = _model_at(*params)
    np.testing.assert_array_equal(model.p_alive(ONE_TIME), 1.0)
    for t in (0.5, 10.0, 100.0):
        got = _assert_quiet_and_finite(model.expected_purchases, ONE_TIME, t)
        want = [_expected_ref(params, 0, 0.0, T, t) for T in ONE_TIME["T"]]
        np.testing.assert_allclose(got, want, rtol=1e-8)
        np.testing.assert_allclose(got, _lifetimes_at(params).conditional_expected_number_of_purchases_up_to_time(
            t, ONE_TIME["frequency"].to_numpy(), ONE_TIME["recency"].to_numpy(), ONE_TIME["T"].to_numpy()), rtol=1e-6)
    assert np.all(np.isfinite(model.score_samples(ONE_TIME)))


@pytest.mark.parametrize("a, b", [(0.3, 0.45), (0.25, 0.75), (0.05, 0.1)])
def test_a_plus_b_below_one(a, b):
    """For one-time buyers the hypergeometric c = a + b - 1 is <= 0 (exactly 0 for a + b = 1)."""
    params = (0.6, 2.0, a, b)
    model = _model_at(*params)
    data = _frame([0, 0, 1, 4], [0.0, 0.0, 2.0, 9.0], [3.0, 30.0, 10.0, 12.0])
    for t in (0.01, 1.0, 25.0, 400.0):
        got = _assert_quiet_and_finite(model.expected_purchases, data, t)
        want = [_expected_ref(params, *row, t) for row in data.itertuples(index=False)]
        np.testing.assert_allclose(got, want, rtol=1e-8)
        new = _assert_quiet_and_finite(model.expected_purchases_new, t)
        assert new == pytest.approx(_alive_quad(t / 2.0, 0.6, b, a), rel=1e-8)
    pmf = model.probability_of_n_purchases(np.arange(2000), 25.0, data.iloc[[0]])
    assert pmf.sum() == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("a", [1.0, 1 - 1e-9, 1 + 1e-9, 1 - 4e-4, 1 + 4e-4, 1 + 2e-3, 0.998])
def test_a_close_to_one(a):
    """The closed forms carry (a + b + x - 1) / (a - 1) times a bracket that vanishes at a = 1."""
    params = (0.5, 5.0, a, 2.0)
    model = _model_at(*params)
    data = _frame([0, 1, 7, 30], [0.0, 3.0, 20.0, 39.0], [5.0, 20.0, 30.0, 40.0])
    for t in (0.3, 5.0, 52.0, 1000.0):
        got = _assert_quiet_and_finite(model.expected_purchases, data, t)
        want = [_expected_ref(params, *row, t) for row in data.itertuples(index=False)]
        np.testing.assert_allclose(got, want, rtol=1e-8)
        assert model.expected_purchases_new(t) == pytest.approx(_alive_quad(t / 5.0, 0.5, 2.0, a), rel=1e-8)


def test_a_near_one_is_continuous():
    data = _frame([0, 2, 9], [0.0, 5.0, 30.0], [8.0, 20.0, 40.0])
    values = np.array([_model_at(0.5, 5.0, a, 2.0).expected_purchases(data, 26.0)
                       for a in (1 - 1.5e-3, 1 - 1e-3, 1 - 1e-12, 1.0, 1 + 1e-12, 1 + 1e-3, 1 + 1.5e-3)])
    steps = np.abs(np.diff(values, axis=0))
    assert steps.max() < 1e-3 * np.abs(values).max()  # smooth: no jump where the method changes


def test_huge_frequencies():
    params = (0.243, 4.414, 0.793, 2.426)
    model = _model_at(*params)
    data = _frame([1e4, 1e4, 1e4, 3000.0], [39.999, 39.9, 1.0, 38.0], [40.0, 40.0, 40.0, 40.0])
    alive = _assert_quiet_and_finite(model.p_alive, data)
    want_alive = [_p_alive_ref(*params, *row) for row in data.itertuples(index=False)]
    np.testing.assert_allclose(alive, want_alive, rtol=1e-10, atol=1e-300)
    assert alive[2] == 0.0 and alive[0] > 0.99
    for t in (0.01, 1.0, 52.0, 2000.0):
        got = _assert_quiet_and_finite(model.expected_purchases, data, t)
        want = [_expected_ref(params, *row, t) for row in data.itertuples(index=False)]
        np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-300)
    assert np.all(np.isfinite(model.score_samples(data)))
    pmf = _assert_quiet_and_finite(model.probability_of_n_purchases, np.arange(0, 40_000, 7), 10.0, data.iloc[[0]])
    assert np.all(pmf >= 0)


@pytest.mark.parametrize("params, x, t", [
    ((0.3, 2.0, 3.0, 300.0), 1e4, 1e3),  # large c with z near 1: scipy's 2F1 overflows to NaN here
    ((16.91220850268929, 1.0, 9.91220850268929, 93.5658653602064), 0.0, 1e5),  # k - a integer, z ~ 1 - 1e-5
    ((1.05, 1.0, 0.05, 51.0), 0.0, 1e3),  # r + x - a integer: scipy's 2F1 is finite but wrong by 5e-4 here
    ((1.3, 2.0, 0.3, 20.0), 4.0, 1e3),
])
def test_extreme_horizons(params, x, t):
    model = _model_at(*params)
    data = _frame([x], [0.0 if x == 0 else 10.0], [0.0 if x == 0 else 20.0])
    got = _assert_quiet_and_finite(model.expected_purchases, data, t)
    assert got[0] == pytest.approx(_expected_ref(params, x, data["recency"][0], data["T"][0], t), rel=1e-6)


# ---------------------------------------------------------------------------------------- validation
def _valid() -> pd.DataFrame:
    return _frame([0, 2, 5, 1], [0.0, 4.0, 20.0, 1.5], [10.0, 12.0, 30.0, 2.0])


@pytest.mark.parametrize("column", ["frequency", "recency", "T"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_values_rejected(column, bad):
    data = _valid()
    data.loc[2, column] = bad
    with pytest.raises(DataError, match=rf"rfm\.{column}: must be finite") as info:
        BetaGeo().fit(data)
    assert info.value.column == column


@pytest.mark.parametrize("column", ["frequency", "recency", "T"])
def test_negative_values_rejected(column):
    data = _valid()
    data.loc[0, column] = -1.0
    with pytest.raises(DataError, match=rf"rfm\.{column}: must be >= 0 \(e\.g\. '-1\.0 at index 0'\)"):
        BetaGeo().fit(data)


def test_recency_after_T_rejected():
    data = _valid()
    data.loc[1, "recency"] = 12.5
    with pytest.raises(DataError, match=r"rfm\.recency: must be <= T.*recency=12\.5, T=12\.0") as info:
        BetaGeo().fit(data)
    assert info.value.column == "recency"


def test_fractional_frequency_rejected():
    data = _valid()
    data.loc[1, "frequency"] = 2.5
    with pytest.raises(DataError, match=r"rfm\.frequency: must be a whole number.*2\.5"):
        BetaGeo().fit(data)


def test_recency_without_repeat_purchase_rejected():
    data = _valid()
    data.loc[0, "recency"] = 3.0
    with pytest.raises(DataError, match=r"rfm\.recency: must be 0 when frequency is 0.*recency=3\.0"):
        BetaGeo().fit(data)


def test_empty_input_rejected():
    with pytest.raises(DataError, match=r"rfm\.frequency: no customers"):
        BetaGeo().fit(_valid().iloc[:0])


def test_no_repeat_buyers_rejected():
    data = _frame([0, 0, 0], [0, 0, 0], [5.0, 6.0, 7.0])
    with pytest.raises(DataError, match=r"rfm\.frequency: BG/NBD needs repeat buyers"):
        BetaGeo().fit(data)


def test_schema_errors():
    with pytest.raises(SchemaError, match=r"rfm\.T: required column is missing"):
        BetaGeo().fit(_valid().drop(columns="T"))
    text = _valid().astype({"recency": str})
    with pytest.raises(SchemaError, match=r"rfm\.recency: must be numeric"):
        BetaGeo().fit(text)
    with pytest.raises(SchemaError, match=r"shape \(n, 3\)"):
        BetaGeo().fit(np.ones((4, 2)))


def test_predictions_validate_their_input(cdnow_fit):
    data = _valid()
    data.loc[1, "recency"] = 99.0
    for method in (cdnow_fit.p_alive, cdnow_fit.predict, cdnow_fit.score_samples):
        with pytest.raises(DataError, match=r"rfm\.recency: must be <= T"):
            method(data)
    with pytest.raises(ConfigError, match="t must be finite and >= 0"):
        cdnow_fit.expected_purchases(_valid(), -1.0)
    with pytest.raises(ConfigError, match="n must be whole numbers"):
        cdnow_fit.probability_of_n_purchases(1.5, 2.0)


@pytest.mark.parametrize("hyper", [{"penalizer": -0.1}, {"tol": 0.0}, {"prediction_horizon": float("nan")}])
def test_bad_hyper_parameters_raise_config_error_at_fit(hyper):
    model = BetaGeo(**hyper)  # __init__ only stores
    with pytest.raises(ConfigError):
        model.fit(_valid())


# -------------------------------------------------------------------- conventions and persistence
def test_clone_round_trip(cdnow_fit):
    model = BetaGeo(penalizer=0.05, tol=1e-9, prediction_horizon=4.0)
    twin = clone(model)
    assert twin.get_params() == model.get_params() == {"penalizer": 0.05, "tol": 1e-9, "prediction_horizon": 4.0}
    fresh = clone(cdnow_fit)
    assert not hasattr(fresh, "params_")
    assert fresh.get_params() == cdnow_fit.get_params()


def test_not_fitted_error():
    model = BetaGeo()
    data = _valid()
    calls = [lambda: model.predict(data), lambda: model.p_alive(data), lambda: model.expected_purchases(data, 1.0),
             lambda: model.expected_purchases_new(1.0), lambda: model.probability_of_n_purchases(1, 1.0),
             lambda: model.score(data), lambda: model.summary(), lambda: model.to_dict()]
    for call in calls:
        with pytest.raises(NotFittedError, match="not fitted"):
            call()
    assert isinstance(NotFittedError("x"), AttributeError)


def test_to_dict_from_dict_round_trip(cdnow_fit, cdnow_summary):
    data = json.loads(json.dumps(cdnow_fit.to_dict()))
    assert data["model"] == "BetaGeo"
    assert set(data["fitted"]) >= {"params", "standard_errors", "log_likelihood"}
    assert "n_customers" in data["fitted"]["extra"]
    assert data["hyper_params"] == {"penalizer": 0.0, "tol": 1e-10, "prediction_horizon": 1.0}
    restored = BetaGeo.from_dict(data)
    for method, args in [("expected_purchases", (cdnow_summary, 10.0)), ("p_alive", (cdnow_summary,)),
                         ("predict", (cdnow_summary,)), ("expected_purchases_new", (np.arange(1.0, 60.0),)),
                         ("probability_of_n_purchases", (3, 26.0, cdnow_summary)), ("score_samples", (cdnow_summary,))]:
        np.testing.assert_array_equal(getattr(restored, method)(*args), getattr(cdnow_fit, method)(*args), err_msg=method)
    pd.testing.assert_frame_equal(restored.summary(), cdnow_fit.summary())
    assert restored.log_likelihood_ == cdnow_fit.log_likelihood_
    assert restored.n_customers_ == cdnow_fit.n_customers_ == 2357
    np.testing.assert_array_equal(restored.covariance_, cdnow_fit.covariance_)
    assert restored.get_params() == cdnow_fit.get_params()
    with pytest.raises(ConfigError, match="not a BetaGeo description"):
        BetaGeo.from_dict({**data, "model": "GammaGamma"})
    with pytest.raises(ConfigError, match="incomplete"):
        BetaGeo.from_dict({**data, "fitted": {k: v for k, v in data["fitted"].items() if k != "params"}})


def test_a_loose_tol_still_fits(cdnow_summary, cdnow_fit):
    loose = BetaGeo(tol=1e-4).fit(cdnow_summary)
    assert loose.params_ == pytest.approx(cdnow_fit.params_, rel=1e-2)
