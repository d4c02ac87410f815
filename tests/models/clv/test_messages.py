"""Fit errors a user can act on: parameters in model units as plain numbers, a suggestion only of a setting
that exists and would help, custval errors naming the rule (never numpy's linear-algebra messages)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from custval.errors import ConvergenceError, CustvalWarning, DataError, ModelError
from custval.models.clv.bgnbd import BetaGeo
from custval.models.clv.gamma_gamma import GammaGamma
from custval.models.clv.value import CustomerValue


def _frame(frequency, recency, T, monetary_value=None) -> pd.DataFrame:
    frame = pd.DataFrame({"frequency": frequency, "recency": recency, "T": T}, dtype=float)
    if monetary_value is not None:
        frame["monetary_value"] = monetary_value
    return frame


def _number(message: str, name: str) -> float:
    return float(re.search(rf"\b{name}=([-+]?\d[\d.]*(?:e[-+]\d+)?)", message).group(1).rstrip("."))


def _identical(n: int = 20, days_per_period: float = 1.0) -> pd.DataFrame:
    """n customers with the same history: no heterogeneity for BG/NBD to estimate."""
    return _frame(np.full(n, 2.0), np.full(n, 3.0 * days_per_period), np.full(n, 8.0 * days_per_period))


def _constant_spend() -> pd.DataFrame:
    """50 repeat buyers who all spend exactly 10: Gamma-Gamma's q runs to infinity."""
    frequency = np.random.default_rng(0).integers(1, 5, 50).astype(float)
    return pd.DataFrame({"frequency": frequency, "monetary_value": np.full(50, 10.0)})


def test_fit_errors_show_parameters_in_model_units_as_plain_numbers():
    # BG/NBD is optimised in units of the longest T, so weeks and days give the same internal problem: in model
    # units alpha (a time scale) must differ by exactly 7 and the dimensionless r, a, b not at all.
    with pytest.raises(ConvergenceError) as weeks:
        BetaGeo().fit(_identical(days_per_period=1.0))
    with pytest.raises(ConvergenceError) as days:
        BetaGeo().fit(_identical(days_per_period=7.0))
    w, d = str(weeks.value), str(days.value)
    assert "np.float64" not in w and "np.float64" not in d
    assert _number(d, "alpha") == pytest.approx(7.0 * _number(w, "alpha"), rel=1e-5)
    for name in ("r", "a", "b"):
        assert _number(d, name) == pytest.approx(_number(w, name), rel=1e-5)


def test_no_penalizer_suggests_one():
    with pytest.raises(ConvergenceError) as info:
        GammaGamma().fit(_constant_spend())
    message = str(info.value)
    assert "q -> infinity" in message and "Try a penalizer > 0" in message
    assert "np.float64" not in message


def test_a_positive_penalizer_is_never_told_to_be_positive():
    with pytest.raises(ConvergenceError) as info:
        GammaGamma(penalizer=1e-9).fit(_constant_spend())
    message = str(info.value)
    assert "penalizer > 0" not in message
    assert "Try a larger penalizer than 1e-09 (e.g. 1e-08)" in message
    # and the advice is sound: a larger penalizer fits
    assert GammaGamma(penalizer=1e-7).fit(_constant_spend()).converged_


def test_a_penalizer_driving_parameters_to_zero_is_not_told_to_grow(monkeypatch):
    # no customer ever drops out: a penalizer pulls a and b to 0 and nothing in the data holds them back. That
    # boundary is now fitted as the NBD limit (test_boundary.py); without limits the full model's failure reads:
    monkeypatch.setattr("custval.models.clv.bgnbd._fit_limits", lambda *args: [])
    rng = np.random.default_rng(1)
    T = rng.uniform(20, 52, 300)
    purchases = rng.poisson(rng.gamma(2.0, 1 / 4, 300) * T)
    recency = np.where(purchases > 0, T * rng.beta(np.maximum(purchases, 1), 1), 0.0)
    with pytest.raises(ConvergenceError) as info:
        BetaGeo(penalizer=0.1).fit(_frame(purchases, recency, T))
    message = str(info.value)
    assert "a -> 0" in message and "b -> 0" in message
    assert "The penalizer (0.1) pulls parameters towards 0: try a smaller one" in message
    assert "larger penalizer" not in message and "penalizer > 0" not in message


@pytest.mark.parametrize("n", [1, 2, 9])
def test_too_few_customers_name_the_rule(n):
    data = _frame(np.full(n, 3.0), np.full(n, 10.0), np.full(n, 60.0), np.full(n, 25.0))
    for model in (BetaGeo(), CustomerValue()):
        with pytest.raises(DataError, match=rf"rfm\.frequency: BG/NBD needs at least 10 customers to fit .*got {n} "):
            model.fit(data)


@pytest.mark.parametrize(("function", "numpy_message"), [("eigvalsh", "Eigenvalues did not converge"),
                                                         ("inv", "Singular matrix")])
def test_linear_algebra_failures_on_the_hessian_are_convergence_errors(cdnow_summary, monkeypatch, function,
                                                                       numpy_message):
    def fail(*args, **kwargs):
        raise np.linalg.LinAlgError(numpy_message)

    monkeypatch.setattr(np.linalg, function, fail)
    with pytest.raises(ConvergenceError, match=r"^BetaGeo: the curvature .* cannot be inverted; the fit stopped at "
                                               r"r=0\.24") as info:
        BetaGeo().fit(cdnow_summary)
    assert numpy_message not in str(info.value)


def test_a_non_finite_hessian_is_a_convergence_error(monkeypatch, cdnow_summary):
    monkeypatch.setattr("custval.models.clv._mle.numerical_hessian", lambda grad, params: np.full((4, 4), np.nan))
    with pytest.raises(ConvergenceError, match=r"^BetaGeo: the curvature of the log-likelihood \(Hessian\) at the "
                                               "optimum is not finite"):
        BetaGeo().fit(cdnow_summary)


def test_all_non_positive_spends_say_so(cdnow_summary):
    with pytest.raises(DataError, match=r"rfm\.monetary_value: all 946 repeat buyers \(frequency > 0\) have "
                                        r"monetary_value <= 0") as info:
        CustomerValue().fit(cdnow_summary.assign(monetary_value=0.0))
    assert "at least 10 repeat buyers" not in str(info.value)
    negative = cdnow_summary.assign(monetary_value=-cdnow_summary["monetary_value"])  # returns netted out
    with pytest.raises(DataError, match="all 946 repeat buyers"):
        CustomerValue().fit(negative)


def test_too_few_positive_spends_left_say_why(cdnow_summary):
    repeat = np.flatnonzero(cdnow_summary["frequency"].to_numpy() > 0)
    spends = cdnow_summary["monetary_value"].to_numpy().copy()
    spends[repeat[6:]] = 0.0
    with pytest.raises(DataError, match=r"940 of 946 repeat buyers have monetary_value <= 0 .* the 6 left are fewer "
                                        "than the 10 Gamma-Gamma needs"):
        CustomerValue().fit(cdnow_summary.assign(monetary_value=spends))


def test_customer_value_names_the_sub_model_that_failed():
    data = _identical().assign(monetary_value=np.linspace(5.0, 15.0, 20))
    with pytest.raises(ConvergenceError, match=r"^purchase_model: BetaGeo: .*Try a penalizer > 0"):
        CustomerValue().fit(data)


def test_q_at_most_one_does_not_suggest_a_penalizer():
    rng = np.random.default_rng(7)
    x = 1 + rng.poisson(2.0, 3000)
    nu = rng.gamma(0.6, 1 / 5.0, 3000)  # q = 0.6: infinite population mean spend
    data = pd.DataFrame({"frequency": x.astype(float), "monetary_value": rng.gamma(3.0 * x, 1 / (x * nu))})
    with pytest.warns(CustvalWarning):
        model = GammaGamma().fit(data)
    with pytest.raises(ModelError) as info:
        model.population_mean_spend()
    message = str(info.value)
    assert "trim extreme monetary values" in message and "does not help" in message
    assert "try a penalizer" not in message.lower()
