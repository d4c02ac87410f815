"""scikit-learn conformance of the CLV estimators: clone, get_params/set_params (nested for CustomerValue),
tags, a Pipeline and GridSearchCV, each checked by an outcome that only a working integration gives (a grid
search picks the value a hand-made case says it must; a pipeline equals the model fitted on the converted
data; a clone is unfitted, equal in parameters and refits to the same model)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError as SklearnNotFittedError
from sklearn.metrics import make_scorer, mean_squared_error
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils import get_tags
from sklearn.utils.estimator_checks import (
    check_get_params_invariance,
    check_no_attributes_set_in_init,
    check_set_params,
)
from sklearn.utils.validation import check_is_fitted

from custval.data.simulate import simulate_bgnbd
from custval.errors import CustvalWarning
from custval.features.rfm import calibration_holdout_split
from custval.models.clv.bgnbd import BetaGeo
from custval.models.clv.gamma_gamma import GammaGamma, gamma_gamma_nll_and_grad
from custval.models.clv.value import CustomerValue

RFM = ["frequency", "recency", "T", "monetary_value"]
CV = KFold(3, shuffle=True, random_state=0)


@pytest.fixture(scope="module")
def split() -> pd.DataFrame:
    """2,000 simulated customers (weeks): calibration to 2024-06-30, holdout to 2024-12-30."""
    sim = simulate_bgnbd(2000, r=0.5, alpha=6.0, a=0.8, b=2.5, spend_p=6.0, spend_q=4.0, spend_gamma=15.0,
                         start="2023-01-01", end="2024-12-31", period="W", seed=3)
    return calibration_holdout_split(sim.transactions, "2024-06-30", "2024-12-30", period="W")


@pytest.fixture(scope="module")
def weeks(split) -> pd.DataFrame:
    return split[[f"{c}_cal" for c in RFM]].set_axis(RFM, axis=1)


def _days(weeks: pd.DataFrame) -> pd.DataFrame:
    return weeks.assign(recency=weeks["recency"] * 7.0, T=weeks["T"] * 7.0)


def to_weeks(X: pd.DataFrame) -> pd.DataFrame:
    return X.assign(recency=X["recency"] / 7.0, T=X["T"] / 7.0)


def cents_to_units(X: pd.DataFrame) -> pd.DataFrame:
    return X.assign(monetary_value=X["monetary_value"] / 100.0)


ESTIMATORS = {
    "BetaGeo": BetaGeo(penalizer=0.01, prediction_horizon=2.0),
    "GammaGamma": GammaGamma(penalizer=1e-6, correlation_threshold=0.4),
    "CustomerValue": CustomerValue(purchase_model=BetaGeo(penalizer=0.02), spend_model=GammaGamma(tol=1e-9),
                                   horizon="26W", annual_discount_rate=0.05),
    "CustomerValue-defaults": CustomerValue(),
}


def _predict(model, X) -> np.ndarray:
    return np.asarray(model.predict(X), dtype=float)


def _same_params(one, other) -> bool:
    """Equal parameters, sub-estimators compared by their own parameters (they are distinct objects)."""
    a, b = one.get_params(deep=False), other.get_params(deep=False)
    if type(one) is not type(other) or a.keys() != b.keys():
        return False
    return all(_same_params(a[k], b[k]) if hasattr(a[k], "get_params") else a[k] == b[k] for k in a)


# ------------------------------------------------------------------------------------------------ clone
@pytest.mark.parametrize("name", ESTIMATORS)
def test_a_clone_is_unfitted_equal_in_params_and_refits_to_the_same_model(name, weeks):
    model = clone(ESTIMATORS[name]).fit(weeks)
    check_is_fitted(model)
    twin = clone(model)
    with pytest.raises(SklearnNotFittedError):
        check_is_fitted(twin)
    assert _same_params(twin, model)
    for sub in ("purchase_model", "spend_model"):
        if getattr(model, sub, None) is not None:
            assert getattr(twin, sub) is not getattr(model, sub)  # a deep copy, not shared
    np.testing.assert_array_equal(_predict(twin.fit(weeks), weeks), _predict(model, weeks))


def test_customer_value_fits_clones_and_leaves_its_sub_model_parameters_unfitted(weeks):
    purchase, spend = BetaGeo(penalizer=0.02), GammaGamma()
    model = CustomerValue(purchase_model=purchase, spend_model=spend).fit(weeks)
    assert model.purchase_model is purchase and model.spend_model is spend
    assert not hasattr(purchase, "result_") and not hasattr(spend, "result_")
    assert model.purchase_model_ is not purchase and model.purchase_model_.penalizer == 0.02


# ---------------------------------------------------------------------------------- get_params / set_params
@pytest.mark.parametrize("name", ESTIMATORS)
def test_scikit_learn_parameter_checks(name):
    estimator = ESTIMATORS[name]
    check_no_attributes_set_in_init(name, estimator)
    check_get_params_invariance(name, estimator)
    check_set_params(name, estimator)


@pytest.mark.parametrize("name", ESTIMATORS)
def test_get_params_set_params_round_trip(name):
    model = ESTIMATORS[name]
    fresh = type(model)().set_params(**clone(model).get_params(deep=False))
    assert _same_params(fresh, model)
    deep = clone(model)
    deep.set_params(**deep.get_params(deep=True))  # every nested key is settable
    assert _same_params(deep, model)


def test_nested_parameters_reach_the_fitted_sub_models(weeks):
    model = CustomerValue().set_params(purchase_model__penalizer=0.01, spend_model__penalizer=1e-5,
                                       spend_model__correlation_threshold=0.5)
    params = model.get_params()
    assert (params["purchase_model__penalizer"], params["spend_model__penalizer"]) == (0.01, 1e-5)
    model.fit(weeks)
    assert model.purchase_model_.penalizer == 0.01 and model.spend_model_.penalizer == 1e-5
    explicit = CustomerValue(purchase_model=BetaGeo(penalizer=0.01),
                             spend_model=GammaGamma(penalizer=1e-5, correlation_threshold=0.5)).fit(weeks)
    pd.testing.assert_frame_equal(model.predict(weeks), explicit.predict(weeks))
    unpenalised = CustomerValue().fit(weeks)
    assert model.purchase_model_.params_ != unpenalised.purchase_model_.params_  # the penalizer did act
    with pytest.raises(ValueError, match="Invalid parameter"):
        CustomerValue().set_params(purchase_model__learning_rate=0.1)


@pytest.mark.parametrize("name", ESTIMATORS)
def test_tags(name):
    tags = get_tags(ESTIMATORS[name])
    assert tags.input_tags.allow_nan is False
    assert tags.target_tags.required is False
    assert tags.requires_fit is True and tags.non_deterministic is False
    assert tags.input_tags.positive_only is (name in ("BetaGeo", "GammaGamma"))


# --------------------------------------------------------------------------------------------- Pipeline
@pytest.mark.parametrize(("name", "convert", "unconvert"), [
    ("BetaGeo", to_weeks, _days),
    ("CustomerValue", to_weeks, _days),
    ("GammaGamma", cents_to_units, lambda X: X.assign(monetary_value=X["monetary_value"] * 100.0)),
])
def test_a_pipeline_equals_the_model_fitted_on_converted_data(name, convert, unconvert, weeks):
    model = ESTIMATORS[name]
    raw = unconvert(weeks)  # e.g. recency and T in days, or spend in cents
    pipe = Pipeline([("convert", FunctionTransformer(convert)), ("model", clone(model))]).fit(raw)
    direct = clone(model).fit(convert(raw))
    np.testing.assert_allclose(_predict(pipe, raw), _predict(direct, convert(raw)), rtol=1e-12)
    key = "model__purchase_model__tol" if name == "CustomerValue" else "model__tol"
    pipe.set_params(**{key: 1e-8})  # parameters reach through the pipeline (and the sub-model)
    assert pipe.get_params()[key] == 1e-8


# ------------------------------------------------------------------------------------------ GridSearchCV
def _grid(estimator, grid, scoring=None) -> GridSearchCV:
    # error_score="raise": a failed fit must fail the test, not become a NaN score
    return GridSearchCV(estimator, grid, scoring=scoring, cv=CV, error_score="raise")


def test_grid_search_over_a_pipeline_with_betageo_score(weeks):
    # the mean holdout log-likelihood (BetaGeo.score) of a heavily penalised fit is worse: the grid must pick 0,
    # listed second so that a grid which never reached the model (all scores tied) would pick 10
    pipe = Pipeline([("convert", FunctionTransformer(to_weeks)), ("model", BetaGeo())])
    search = _grid(pipe, {"model__penalizer": [10.0, 0.0]}).fit(_days(weeks))
    assert search.best_params_ == {"model__penalizer": 0.0}
    low, high = search.cv_results_["mean_test_score"]
    assert low < high


def test_grid_search_with_a_scorer_over_predictions(split, weeks):
    # y = repeat purchases in the 26-week holdout; the mean-squared error of BetaGeo.predict is smallest when
    # its prediction_horizon is the holdout length, not 1 week nor four times the holdout
    holdout = float(split["duration_holdout"].iloc[0])
    y = split["frequency_holdout"].to_numpy()
    scorer = make_scorer(mean_squared_error, greater_is_better=False)
    search = _grid(BetaGeo(), {"prediction_horizon": [4 * holdout, 1.0, holdout]}, scorer).fit(weeks[RFM[:3]], y)
    assert search.best_params_ == {"prediction_horizon": holdout}


def _spend_log_likelihood(model: GammaGamma, X: pd.DataFrame) -> float:
    """Mean Gamma-Gamma log-likelihood of the held-out repeat buyers (GammaGamma has no `score`)."""
    repeat = X[X["frequency"] > 0]
    nll, _ = gamma_gamma_nll_and_grad(np.array(model.fitted_params()), repeat["frequency"].to_numpy(),
                                      repeat["monetary_value"].to_numpy(), np.ones(len(repeat)))
    return -nll / len(repeat)


def test_grid_search_gamma_gamma_with_a_holdout_log_likelihood_scorer(weeks):
    search = _grid(GammaGamma(), {"penalizer": [0.1, 0.0]}, lambda est, X, y=None: _spend_log_likelihood(est, X))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CustvalWarning)  # the penalised fit may give q <= 1
        search.fit(weeks)
    assert search.best_params_ == {"penalizer": 0.0}


def test_grid_search_over_customer_value_sub_model_parameters(weeks):
    def holdout_log_likelihood(est: CustomerValue, X, y=None) -> float:
        return est.purchase_model_.score(X) + _spend_log_likelihood(est.spend_model_, X)

    grid = {"purchase_model__penalizer": [10.0, 0.0], "spend_model__penalizer": [0.1, 0.0]}
    search = _grid(CustomerValue(), grid, holdout_log_likelihood)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CustvalWarning)
        search.fit(weeks)
    assert search.best_params_ == {"purchase_model__penalizer": 0.0, "spend_model__penalizer": 0.0}
    best = search.best_estimator_
    assert best.purchase_model_.penalizer == 0.0 and best.spend_model_.penalizer == 0.0
    assert len(set(np.round(search.cv_results_["mean_test_score"], 9))) == 4  # each setting reached the fit
