"""Public parameter checks: `check_params()` names the parameter, states its one rule and shows the value as
a plain number; `fit` calls it before looking at the data; numpy scalars are numbers, bools are not."""

from __future__ import annotations

import math

import numpy as np
import pytest

from custval.errors import ConfigError
from custval.models.clv.bgnbd import BetaGeo
from custval.models.clv.gamma_gamma import GammaGamma
from custval.models.clv.value import CustomerValue, customer_lifetime_value

BAD = [
    # (estimator, message it must start with)
    (BetaGeo(penalizer=-1), "penalizer must be a finite number >= 0, got -1"),
    (BetaGeo(penalizer=np.float64(-0.5)), "penalizer must be a finite number >= 0, got -0.5"),
    (BetaGeo(penalizer=math.inf), "penalizer must be a finite number >= 0, got inf"),
    (BetaGeo(penalizer=math.nan), "penalizer must be a finite number >= 0, got nan"),
    (BetaGeo(penalizer="0.1"), "penalizer must be a finite number >= 0, got '0.1'"),
    (BetaGeo(penalizer=None), "penalizer must be a finite number >= 0, got None"),
    (BetaGeo(penalizer=True), "penalizer must be a finite number >= 0, got True"),
    (BetaGeo(penalizer=np.bool_(False)), "penalizer must be a finite number >= 0, got "),
    (BetaGeo(tol=0), "tol must be a finite number > 0, got 0"),
    (BetaGeo(tol=-1e-9), "tol must be a finite number > 0, got -1e-09"),
    (BetaGeo(prediction_horizon=-2), "prediction_horizon must be a finite number >= 0, got -2"),
    (BetaGeo(prediction_horizon=[1.0]), "prediction_horizon must be a finite number >= 0, got [1.0]"),
    (GammaGamma(penalizer=-1), "penalizer must be a finite number >= 0, got -1"),
    (GammaGamma(tol="small"), "tol must be a finite number > 0, got 'small'"),
    (GammaGamma(correlation_threshold="x"), "correlation_threshold must be a number in [0, 1], got 'x'"),
    (GammaGamma(correlation_threshold=1.5), "correlation_threshold must be a number in [0, 1], got 1.5"),
    (GammaGamma(correlation_threshold=-0.1), "correlation_threshold must be a number in [0, 1], got -0.1"),
    (GammaGamma(correlation_threshold=math.nan), "correlation_threshold must be a number in [0, 1], got nan"),
    (CustomerValue(period="Q"), "period must be one of"),
    (CustomerValue(horizon="12"), "horizon must be a number with a unit"),
    (CustomerValue(annual_discount_rate=-1), "annual_discount_rate must be finite and > -1 (a number; 0.1 = 10%), "
                                             "got -1"),
    (CustomerValue(annual_discount_rate=np.float64(-2.5)), "annual_discount_rate must be finite and > -1 (a number; "
                                                           "0.1 = 10%), got -2.5"),
    (CustomerValue(annual_discount_rate=math.inf), "annual_discount_rate must be finite and > -1"),
    (CustomerValue(annual_discount_rate="10%"), "annual_discount_rate must be finite and > -1 (a number; 0.1 = 10%), "
                                                "got '10%'"),
    (CustomerValue(annual_discount_rate=True), "annual_discount_rate must be finite and > -1"),
    (CustomerValue(annual_discount_rate=[0.1, 0.2]), "annual_discount_rate must be one number"),
    (CustomerValue(purchase_model=BetaGeo(penalizer=-1)), "purchase_model__penalizer must be a finite number >= 0, "
                                                          "got -1"),
    (CustomerValue(spend_model=GammaGamma(penalizer=-1)), "spend_model__penalizer must be a finite number >= 0, "
                                                          "got -1"),
    (CustomerValue(spend_model=GammaGamma(correlation_threshold="x")),
     "spend_model__correlation_threshold must be a number in [0, 1], got 'x'"),
    (CustomerValue(purchase_model="BetaGeo"), "purchase_model must be an unfitted estimator such as BetaGeo()"),
    (CustomerValue(spend_model=BetaGeo()), "spend_model must be an unfitted estimator such as GammaGamma() (with fit, "
                                           "expected_spend)"),
]


@pytest.mark.parametrize(("model", "message"), BAD, ids=[m for _, m in BAD])
def test_check_params_names_the_parameter_and_its_rule(model, message):
    with pytest.raises(ConfigError) as info:
        model.check_params()
    assert str(info.value).startswith(message)
    assert "np." not in str(info.value)  # no numpy reprs


@pytest.mark.parametrize(("model", "message"), BAD, ids=[m for _, m in BAD])
def test_fit_checks_the_parameters_before_the_data(model, message):
    with pytest.raises(ConfigError) as info:
        model.fit(None)  # no data at all: the parameter is reported first
    assert str(info.value).startswith(message)


@pytest.mark.parametrize("model", [
    BetaGeo(penalizer=np.float32(0.5), tol=np.float64(1e-8), prediction_horizon=np.int64(4)),
    BetaGeo(penalizer=0, prediction_horizon=np.array(2.0)),
    GammaGamma(penalizer=np.int32(0), correlation_threshold=np.float64(1.0)),
    GammaGamma(correlation_threshold=0),
    CustomerValue(annual_discount_rate=np.float32(0.2), period="w", horizon="90D"),
    CustomerValue(annual_discount_rate=np.array(0.1)),
    CustomerValue(annual_discount_rate=15.0),  # no upper limit: the one rule is finite and > -1
    CustomerValue(annual_discount_rate=-0.99),
    CustomerValue(purchase_model=BetaGeo(penalizer=np.float64(0.1)), spend_model=GammaGamma(tol=1e-6)),
], ids=repr)
def test_valid_settings_pass_and_check_params_returns_the_estimator(model):
    assert model.check_params() is model


def test_the_discount_rate_rule_is_the_same_for_per_customer_rates(cdnow_summary):
    value = CustomerValue().fit(cdnow_summary)
    X = cdnow_summary.iloc[:5]
    with pytest.raises(ConfigError, match=r"^annual_discount_rate must be finite and > -1 .*got -1 \(customer 3\)"):
        customer_lifetime_value(value.purchase_model_, value.spend_model_, X,
                                annual_discount_rate=np.array([0.1, 0.1, 0.1, -1.0, 0.1]))
    with pytest.raises(ConfigError, match=r"^annual_discount_rate must be finite and > -1 .*not numeric"):
        customer_lifetime_value(value.purchase_model_, value.spend_model_, X, annual_discount_rate=np.array(["a"] * 5))
    with pytest.raises(ConfigError, match=r"^period_rate must be finite and > -1 .*got nan"):
        value.purchase_model_.discounted_expected_purchases(X, [1.0, 2.0], np.full(5, np.nan))
    # and a rate far above the old job limit of 10 is a valid rate
    high = customer_lifetime_value(value.purchase_model_, value.spend_model_, X, annual_discount_rate=15.0)
    assert np.all(np.isfinite(high)) and np.all(high > 0)
