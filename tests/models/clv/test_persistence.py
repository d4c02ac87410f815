"""The one saved form of the CLV models (format 2, owned by MLEResult) and the models saved before it.

legacy_v1/ holds the verbatim `to_dict()` output of models fitted by the code before format 2, with what
those models predicted (see legacy_v1/README.md): today's `from_dict` must reproduce those numbers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from custval.errors import ConfigError, NotFittedError
from custval.models.clv.bgnbd import BetaGeo
from custval.models.clv.gamma_gamma import GammaGamma
from custval.models.clv.value import CustomerValue

LEGACY = Path(__file__).with_name("legacy_v1")


def _legacy(name: str) -> dict:
    return json.loads((LEGACY / f"{name}.json").read_text())


@pytest.fixture(scope="module")
def legacy_predictions() -> dict:
    return json.loads((LEGACY / "predictions.json").read_text())


@pytest.fixture(scope="module")
def legacy_rfm(legacy_predictions) -> pd.DataFrame:
    return pd.DataFrame(legacy_predictions["rfm"], index=legacy_predictions["index"])


def _close(got, want) -> None:
    np.testing.assert_allclose(np.asarray(got, dtype=float), np.asarray(want, dtype=float), rtol=1e-12, atol=0)


# ---------------------------------------------------------------------------- models saved before format 2
def test_legacy_betageo_loads_and_predicts_as_it_did(legacy_predictions, legacy_rfm):
    saved = _legacy("betageo")
    assert "format" not in saved and "hyper" in saved  # the old layout, untouched
    model = BetaGeo.from_dict(saved)
    want = legacy_predictions["predictions"]["BetaGeo"]
    X, ts, rate = legacy_rfm, legacy_predictions["ts"], legacy_predictions["period_rate"]
    _close(model.predict(X), want["predict"])  # prediction_horizon=4 came back with the parameters
    _close(model.p_alive(X), want["p_alive"])
    _close(model.expected_purchases(X, 10.0), want["expected_purchases_10"])
    _close(model.expected_purchases_new(np.array(ts)), want["expected_purchases_new"])
    _close(model.probability_of_n_purchases(2, 13.0, X), want["probability_of_2_in_13"])
    _close(model.score_samples(X), want["score_samples"])
    _close(model.discounted_expected_purchases(X, ts, rate), want["discounted_expected_purchases"])
    for column, values in want["summary"].items():
        _close(model.summary()[column], values)
    assert model.get_params() == {"penalizer": 0.01, "tol": 1e-10, "prediction_horizon": 4.0}
    assert model.n_customers_ == 400 and model.n_unique_rows_ == saved["n_unique_rows"]
    assert model.params_ == saved["params"] and model.standard_errors_ == saved["standard_errors"]
    np.testing.assert_array_equal(model.covariance_, saved["covariance"])


def test_legacy_gammagamma_loads_and_predicts_as_it_did(legacy_predictions, legacy_rfm):
    saved = _legacy("gammagamma")
    model = GammaGamma.from_dict(saved)
    want = legacy_predictions["predictions"]["GammaGamma"]
    _close(model.expected_spend(legacy_rfm), want["expected_spend"])
    _close(model.population_mean_spend(), want["population_mean_spend"])
    for column, values in want["summary"].items():
        _close(model.summary()[column], values)
    assert model.get_params() == {"penalizer": 0.0, "tol": 1e-10, "correlation_threshold": 0.5}
    assert model.n_customers_ == saved["fitted"]["n_customers"] == 200
    assert model.frequency_monetary_correlation_ == saved["fitted"]["frequency_monetary_correlation"]


def test_legacy_customer_value_loads_with_its_penalizers_on_the_sub_models(legacy_predictions, legacy_rfm):
    saved = _legacy("customervalue")
    assert saved["hyper_params"]["penalizer"] == 0.02 and saved["hyper_params"]["spend_penalizer"] == 1e-4
    model = CustomerValue.from_dict(saved)
    got = model.predict(legacy_rfm)
    want = legacy_predictions["predictions"]["CustomerValue"]
    assert list(got.columns) == list(want)
    for column, values in want.items():
        _close(got[column], values)
    params = model.get_params()
    assert params["purchase_model__penalizer"] == 0.02 and params["spend_model__penalizer"] == 1e-4
    assert (params["period"], params["horizon"], params["annual_discount_rate"]) == ("W", "6M", 0.08)
    # re-saved in format 2 and loaded again: the same model
    again = CustomerValue.from_dict(json.loads(json.dumps(model.to_dict(), allow_nan=False)))
    pd.testing.assert_frame_equal(again.predict(legacy_rfm), got)
    assert again.get_params()["purchase_model__penalizer"] == 0.02


# ---------------------------------------------------------------------------------------- format 2
@pytest.fixture(scope="module")
def fitted(legacy_rfm, cdnow_summary):
    """Each model fitted with non-default parameters (sub-models too)."""
    X = cdnow_summary
    return {
        "BetaGeo": BetaGeo(penalizer=0.001, prediction_horizon=3.0).fit(X),
        "GammaGamma": GammaGamma(penalizer=1e-6, correlation_threshold=0.6).fit(X),
        "CustomerValue": CustomerValue(purchase_model=BetaGeo(penalizer=0.001),
                                       spend_model=GammaGamma(correlation_threshold=0.6),
                                       period="W", horizon="26W", annual_discount_rate=0.12).fit(X),
    }


@pytest.mark.parametrize("kind", ["BetaGeo", "GammaGamma"])
def test_mle_models_save_hyper_params_and_their_mle_result(fitted, kind, cdnow_summary):
    model = fitted[kind]
    saved = json.loads(json.dumps(model.to_dict(), allow_nan=False))  # strict JSON
    assert set(saved) == {"model", "format", "hyper_params", "fitted"}
    assert saved["model"] == kind and saved["format"] == 2
    assert saved["hyper_params"] == model.get_params()
    assert saved["fitted"] == json.loads(json.dumps(model.result_.to_dict()))  # the MLEResult's own form
    restored = type(model).from_dict(saved)
    assert restored.get_params() == model.get_params()
    assert restored.params_ == model.params_ and restored.standard_errors_ == model.standard_errors_
    assert restored.log_likelihood_ == model.log_likelihood_ and restored.n_customers_ == model.n_customers_
    np.testing.assert_array_equal(restored.covariance_, model.covariance_)
    pd.testing.assert_frame_equal(restored.summary(), model.summary())
    np.testing.assert_array_equal(restored.predict(cdnow_summary), model.predict(cdnow_summary))


def test_customer_value_saves_its_sub_models_parameters_and_fits(fitted, cdnow_summary):
    model = fitted["CustomerValue"]
    saved = json.loads(json.dumps(model.to_dict(), allow_nan=False))
    assert saved["hyper_params"]["purchase_model"] == {"model": "BetaGeo", "format": 2, "hyper_params": {
        "penalizer": 0.001, "tol": 1e-10, "prediction_horizon": 1.0}}
    assert saved["fitted"]["purchase_model"] == json.loads(json.dumps(model.purchase_model_.to_dict()))
    restored = CustomerValue.from_dict(saved)
    assert restored.get_params(deep=True).keys() == model.get_params(deep=True).keys()
    assert restored.get_params()["spend_model__correlation_threshold"] == 0.6
    assert restored.n_excluded_from_spend_ == model.n_excluded_from_spend_
    pd.testing.assert_frame_equal(restored.predict(cdnow_summary), model.predict(cdnow_summary))
    # default sub-models stay None
    default = CustomerValue().fit(cdnow_summary).to_dict()
    restored_default = CustomerValue.from_dict(default)
    assert restored_default.purchase_model is None and restored_default.spend_model is None


def test_gamma_gamma_correlation_nan_is_strict_json(cdnow_summary):
    constant = cdnow_summary.assign(frequency=np.where(cdnow_summary["frequency"] > 0, 2.0, 0.0))
    model = GammaGamma().fit(constant)
    assert np.isnan(model.frequency_monetary_correlation_)
    text = json.dumps(model.to_dict(), allow_nan=False)
    assert np.isnan(GammaGamma.from_dict(json.loads(text)).frequency_monetary_correlation_)


@pytest.mark.parametrize("model", [BetaGeo(), GammaGamma(), CustomerValue()], ids=lambda m: type(m).__name__)
def test_to_dict_of_an_unfitted_model_raises_not_fitted(model):
    with pytest.raises(NotFittedError, match="not fitted"):
        model.to_dict()


def test_a_description_without_fitted_state_gives_an_unfitted_model():
    model = BetaGeo.from_dict({"model": "BetaGeo", "format": 2, "hyper_params": {"penalizer": 0.3}})
    assert model.get_params()["penalizer"] == 0.3 and not hasattr(model, "params_")


def _betageo_saved(fitted) -> dict:
    return json.loads(json.dumps(fitted["BetaGeo"].to_dict()))


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: d.update(format=3), "format 3"),
    (lambda d: d.update(model="GammaGamma"), "not a BetaGeo description"),
    (lambda d: d["hyper_params"].update(learning_rate=0.1), "unknown parameter 'learning_rate'"),
    (lambda d: d["hyper_params"].update(penalizer=-1), "penalizer must be a finite number >= 0, got -1"),
    (lambda d: d["fitted"].pop("covariance"), r"incomplete BetaGeo description: fitted\.covariance is missing"),
    (lambda d: d["fitted"]["extra"].pop("n_customers"), r"fitted\.extra\.n_customers is missing"),
    (lambda d: d["fitted"].update(names=["r", "alpha", "b", "a"]), "parameters must be"),
    (lambda d: d["fitted"]["params"].__setitem__(2, -0.5), "positive and finite.*a=-0.5"),
    (lambda d: d["fitted"].update(params=[1.0, 2.0]), "malformed"),
])
def test_malformed_descriptions_are_config_errors(fitted, edit, message):
    saved = _betageo_saved(fitted)
    edit(saved)
    with pytest.raises(ConfigError, match=message):
        BetaGeo.from_dict(saved)


def test_malformed_customer_value_descriptions_are_config_errors(fitted):
    saved = json.loads(json.dumps(fitted["CustomerValue"].to_dict()))
    with pytest.raises(ConfigError, match=r"fitted\.spend_model is missing"):
        CustomerValue.from_dict({**saved, "fitted": {k: v for k, v in saved["fitted"].items() if k != "spend_model"}})
    bad_sub = json.loads(json.dumps(saved))
    bad_sub["hyper_params"]["purchase_model"]["hyper_params"]["tol"] = 0
    with pytest.raises(ConfigError, match="tol must be a finite number > 0, got 0"):
        CustomerValue.from_dict(bad_sub)
    with pytest.raises(ConfigError, match="unit convention"):
        CustomerValue.from_dict({**saved, "unit_convention": "1M = 30 days"})


def test_only_custval_sub_models_can_be_saved(cdnow_summary):
    class MyBetaGeo(BetaGeo):
        pass

    model = CustomerValue(purchase_model=MyBetaGeo()).fit(cdnow_summary)
    with pytest.raises(ConfigError, match="purchase_model: only a BetaGeo can be saved, got MyBetaGeo"):
        model.to_dict()
