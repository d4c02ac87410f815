"""Customer lifetime value: discounted expected purchases (BG/NBD) times expected spend (Gamma-Gamma).

Time convention (custval.units.CONVENTION): 1W = 7 days, 1M = 30.4375 days, 1Y = 365.25 days. The horizon
is cut into steps (one model period by default); the cash flow of step k is the expected number of purchases
in (t_{k-1}, t_k] times the expected spend, discounted at the annual rate to the END of the step:
    CLV = sum_k spend * [E(t_k) - E(t_{k-1})] * (1 + annual_rate) ** (-t_k_days / 365.25),
where E(t) is the conditional expected number of purchases in the next t model periods. A final partial
step is allowed (its end is the horizon).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from sklearn.base import clone

from custval.errors import ConfigError, ConvergenceError, DataError, SchemaError
from custval.models.clv._base import (
    FORMAT,
    CLVEstimator,
    build_from_params,
    check_description,
    check_discount_rate,
    json_params,
    shown,
)
from custval.models.clv.bgnbd import BetaGeo
from custval.models.clv.gamma_gamma import MIN_REPEAT_BUYERS, GammaGamma, spend_arrays
from custval.models.validation import check_fitted
from custval.units import CONVENTION, DAYS_PER_YEAR, check_period, parse_horizon, period_days, to_periods

RFM_COLUMNS = ("frequency", "recency", "T", "monetary_value")
TABLE = "rfm"


def _require_rfm(X: pd.DataFrame) -> None:
    if not isinstance(X, pd.DataFrame):
        raise SchemaError(TABLE, "frequency", f"expected a pandas DataFrame with columns {list(RFM_COLUMNS)}",
                          type(X).__name__)
    for column in RFM_COLUMNS:
        if column not in X.columns:
            raise SchemaError(TABLE, column, "required column is missing", f"columns present: {list(X.columns)}")


def step_ends(horizon: str, period: str, step: str | None = None) -> np.ndarray:
    """End times (in model periods) of the discounting steps covering the horizon; the last may be partial."""
    period = check_period(period)
    total = to_periods(horizon, period)
    size = 1.0 if step is None else to_periods(step, period)
    # tolerate float noise such as 52.14W / 4.345W = 12.000000000000002 (no sliver of a 13th step)
    n_steps = max(1, math.ceil(total / size - 1e-9))
    ends = np.minimum(np.arange(1, n_steps + 1) * size, total)
    ends[-1] = total
    return ends


def _period_rates(rate: float | np.ndarray, period: str) -> float | np.ndarray:
    """Annual rate(s) -> rate(s) per model period: (1 + annual)^(days per period / 365.25) - 1."""
    return (1.0 + rate) ** (period_days(period) / DAYS_PER_YEAR) - 1.0


def discounted_expected_purchases(
    purchase_model, X: pd.DataFrame, *, horizon: str = "12M", period: str = "W",
    annual_discount_rate: float | np.ndarray = 0.10, step: str | None = None,
) -> np.ndarray:
    """sum_k [E(t_k) - E(t_{k-1})] * (1 + annual)^(-t_k_days / 365.25) per customer (see module docstring).

    `purchase_model` needs only `expected_purchases(X, t)` (conditional expected purchases in the next t
    model periods), so any model with that method can be used; one that also has
    `discounted_expected_purchases(X, ts, period_rate)` (BetaGeo) computes all steps in one pass. Otherwise
    each step calls `expected_purchases`. `annual_discount_rate` is one rate or an array of one rate per
    customer (e.g. `custval.models.clv.discount.risk_adjusted_rate`).
    """
    _require_rfm(X)
    rate = check_discount_rate("annual_discount_rate", annual_discount_rate, len(X))
    ends = step_ends(horizon, period, step)
    fast = getattr(purchase_model, "discounted_expected_purchases", None)
    if fast is not None:
        return np.asarray(fast(X, ends, _period_rates(rate, period)), dtype=float)
    days = period_days(period)
    total = np.zeros(len(X))
    previous = np.zeros(len(X))
    for t_k in ends:
        cumulative = np.asarray(purchase_model.expected_purchases(X, float(t_k)), dtype=float)
        total += (cumulative - previous) * (1.0 + rate) ** (-t_k * days / DAYS_PER_YEAR)
        previous = cumulative
    return total


def customer_lifetime_value(
    purchase_model, spend_model, X: pd.DataFrame, *, horizon: str = "12M", period: str = "W",
    annual_discount_rate: float | np.ndarray = 0.10, step: str | None = None,
) -> np.ndarray:
    """Discounted CLV over `horizon` per customer (rows of X: frequency, recency, T in periods of `period`,
    monetary_value).

    Convention: discrete cash flows at the END of each step (default one model period; `step` may be a
    unit string such as "1M"; a final partial step is allowed); step k contributes expected spend times
    the expected purchases in (t_{k-1}, t_k], discounted by (1 + annual_discount_rate)^(-t_k_days / 365.25).
    `annual_discount_rate` may also be an array with one rate per customer (risk-adjusted discounting).
    Units: 1W = 7 days, 1M = 30.4375 days, 1Y = 365.25 days. lifetimes' `customer_lifetime_value(time=12,
    discount_rate=d, freq='D')` is the special case horizon="360D", step="30D", annual = (1+d)^(365.25/30) - 1.
    """
    spend = np.asarray(spend_model.expected_spend(X), dtype=float)
    purchases = discounted_expected_purchases(purchase_model, X, horizon=horizon, period=period,
                                              annual_discount_rate=annual_discount_rate, step=step)
    return spend * purchases


# the sub-models: (default class, the methods CustomerValue uses)
SUB_MODELS = {
    "purchase_model": (BetaGeo, ("fit", "value_components", "expected_purchases")),
    "spend_model": (GammaGamma, ("fit", "expected_spend")),
}


class CustomerValue(CLVEstimator):
    """A purchase model (BG/NBD) and a spend model (Gamma-Gamma) -> expected purchases, P(alive), expected spend
    and CLV.

    purchase_model, spend_model: unfitted estimators, fitted as clones into `purchase_model_` and
    `spend_model_` (None: BetaGeo() and GammaGamma()); their parameters are reachable as
    `purchase_model__penalizer`, `spend_model__penalizer`, ... (set_params, GridSearchCV). The two penalizers
    are separate because lifetimes' penalty (sum of squared parameters) bites hard on Gamma-Gamma's large
    gamma: on CDNOW a spend penalizer of 0.01 already drives q below 1.
    period: model period of recency/T ("D", "W", "M"); horizon: CLV horizon with its unit ("12M");
    annual_discount_rate: compound annual rate, discounting at the end of each model period.
    """

    def __init__(self, purchase_model=None, spend_model=None, period: str = "W", horizon: str = "12M",
                 annual_discount_rate: float = 0.10):
        self.purchase_model = purchase_model
        self.spend_model = spend_model
        self.period = period
        self.horizon = horizon
        self.annual_discount_rate = annual_discount_rate

    def check_params(self) -> CustomerValue:
        """ConfigError naming the first invalid parameter (a sub-model's with its prefix, e.g.
        "purchase_model__penalizer must be a finite number >= 0, got -1"); returns self."""
        self._check_prediction_settings()
        for name, (default, methods) in SUB_MODELS.items():
            model = getattr(self, name)
            if model is None:
                continue
            missing = [m for m in methods if not callable(getattr(model, m, None))]
            if missing or not callable(getattr(model, "get_params", None)):
                raise ConfigError(f"{name} must be an unfitted estimator such as {default.__name__}() (with "
                                  f"{', '.join(methods)}), got {shown(model)}")
            check = getattr(model, "check_params", None)
            if check is not None:
                try:
                    check()
                except ConfigError as exc:
                    raise ConfigError(f"{name}__{exc}") from exc
        return self

    def _check_prediction_settings(self) -> None:
        check_period(self.period)
        parse_horizon(self.horizon)
        check_discount_rate("annual_discount_rate", self.annual_discount_rate)

    def set_params(self, **params) -> CustomerValue:
        """scikit-learn's set_params; a nested parameter of a sub-model left at None first makes its default
        explicit, so CustomerValue().set_params(purchase_model__penalizer=0.01) works."""
        for name, (default, _) in SUB_MODELS.items():
            if name not in params and getattr(self, name) is None and any(k.startswith(f"{name}__") for k in params):
                setattr(self, name, default())
        return super().set_params(**params)

    def fit(self, X: pd.DataFrame, y: None = None) -> CustomerValue:
        """Fit the purchase model on all rows and the spend model on repeat buyers with monetary_value > 0."""
        self.check_params()
        _require_rfm(X)
        frequency, monetary_value = spend_arrays(X)
        excluded = (frequency > 0) & (monetary_value <= 0)
        spend_model = _unfitted(self.spend_model, GammaGamma)
        _check_spend_left(frequency, monetary_value, excluded, spend_model)
        purchase_model = _fit_sub_model("purchase_model", _unfitted(self.purchase_model, BetaGeo), X)
        spend_model = _fit_sub_model("spend_model", spend_model, X.loc[~excluded])
        self.purchase_model_ = purchase_model
        self.spend_model_ = spend_model
        self.n_excluded_from_spend_ = int(excluded.sum())
        return self

    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        """Per customer (index of X kept): expected_purchases over the horizon, p_alive, expected_spend, clv.

        Repeat buyers with monetary_value <= 0 (excluded from the spend fit) are scored as if their observed
        mean spend were 0, i.e. the population mean shrunk by their frequency weight.
        """
        check_fitted(self)
        self._check_prediction_settings()
        _require_rfm(X)
        frequency, monetary_value = spend_arrays(X)
        spend_input = pd.DataFrame({"frequency": frequency, "monetary_value": np.maximum(monetary_value, 0.0)},
                                   index=X.index)
        spend = np.asarray(self.spend_model_.expected_spend(spend_input), dtype=float)
        # one pass over the customers: the last step ends exactly at the horizon, so E(horizon) comes with it
        ends = step_ends(self.horizon, self.period)
        rate = _period_rates(check_discount_rate("annual_discount_rate", self.annual_discount_rate), self.period)
        parts = self.purchase_model_.value_components(X, ends, rate)
        return pd.DataFrame(
            {
                "expected_purchases": parts.p_alive * parts.purchases_if_alive,
                "p_alive": parts.p_alive,
                "expected_spend": spend,
                "clv": spend * (parts.p_alive * parts.discounted_purchases_if_alive),
            },
            index=X.index,
        )

    # ---------------------------------------------------------------------------------- saved form
    def to_dict(self) -> dict:
        """JSON-able description: parameters (sub-models by their parameters), unit convention and both fitted
        sub-models in their own saved form."""
        check_fitted(self)
        hyper_params = json_params(self.get_params(deep=False))
        for name in SUB_MODELS:
            hyper_params[name] = _describe_unfitted(name, getattr(self, name))
        return {
            "model": "CustomerValue",
            "format": FORMAT,
            "unit_convention": CONVENTION,
            "hyper_params": hyper_params,
            "fitted": {
                "n_excluded_from_spend": int(self.n_excluded_from_spend_),
                "purchase_model": self.purchase_model_.to_dict(),
                "spend_model": self.spend_model_.to_dict(),
            },
        }

    @classmethod
    def from_dict(cls, data: dict) -> CustomerValue:
        """Rebuild a CustomerValue from `to_dict()` output (also one saved before format 2, whose `penalizer`
        and `spend_penalizer` become the sub-models' penalizers); refuse another unit convention."""
        check_description(data, "CustomerValue")
        if "format" not in data:
            data = _upgrade_format_1(data)
        if data.get("format") != FORMAT:
            raise ConfigError(f"CustomerValue description: format {data.get('format')!r} is not one this version "
                              f"reads ({FORMAT}, or models saved without a format)")
        if data.get("unit_convention") != CONVENTION:
            raise ConfigError(
                f"unit convention {data.get('unit_convention')!r} differs from this version's {CONVENTION!r}"
            )
        hyper_params = dict(data.get("hyper_params") or {})
        for name, (default, _) in SUB_MODELS.items():
            if hyper_params.get(name) is not None:
                hyper_params[name] = default.from_dict(hyper_params[name])
        model = build_from_params(cls, hyper_params, "CustomerValue").check_params()
        fitted = data.get("fitted")
        if fitted is not None:
            missing = [k for k in ("n_excluded_from_spend", *SUB_MODELS) if k not in fitted]
            if missing:
                raise ConfigError(f"incomplete CustomerValue description: fitted.{missing[0]} is missing")
            model.purchase_model_ = BetaGeo.from_dict(fitted["purchase_model"])
            model.spend_model_ = GammaGamma.from_dict(fitted["spend_model"])
            for name in SUB_MODELS:
                check_fitted(getattr(model, f"{name}_"))
            model.n_excluded_from_spend_ = int(fitted["n_excluded_from_spend"])
        return model


def _unfitted(model, default):
    return default() if model is None else clone(model)


def _fit_sub_model(name: str, model, X: pd.DataFrame):
    """model.fit(X), a convergence failure naming the sub-model (its message names the settings that help)."""
    try:
        return model.fit(X)
    except ConvergenceError as exc:
        raise ConvergenceError(f"{name}: {exc}") from exc


def _check_spend_left(frequency, monetary_value, excluded, spend_model) -> None:
    """Repeat buyers with monetary_value <= 0 are left out of the spend fit: say so when too few are left,
    rather than letting the spend model report too few repeat buyers."""
    n_excluded = int(excluded.sum())
    if n_excluded == 0:
        return
    n_repeat = int((frequency > 0).sum())
    left = n_repeat - n_excluded
    example = float(monetary_value[excluded][0])
    if left == 0:
        raise DataError(TABLE, "monetary_value",
                        f"all {n_repeat:,} repeat buyers (frequency > 0) have monetary_value <= 0, so no spend is "
                        "left to fit the spend model on (it models positive spend: are the amounts all 0, or "
                        "returns netted out?)", example)
    if isinstance(spend_model, GammaGamma) and left < MIN_REPEAT_BUYERS:
        raise DataError(TABLE, "monetary_value",
                        f"{n_excluded:,} of {n_repeat:,} repeat buyers have monetary_value <= 0 and are left out of "
                        f"the spend fit; the {left} left are fewer than the {MIN_REPEAT_BUYERS} Gamma-Gamma needs",
                        example)


def _describe_unfitted(name: str, model) -> dict | None:
    """A sub-model parameter in saved form: its class and parameters (None stays None)."""
    if model is None:
        return None
    default = SUB_MODELS[name][0]
    if type(model) is not default:
        raise ConfigError(f"{name}: only a {default.__name__} can be saved, got {type(model).__name__}")
    return {"model": default.__name__, "format": FORMAT, "hyper_params": json_params(model.get_params(deep=False))}


def _upgrade_format_1(data: dict) -> dict:
    """A CustomerValue saved before format 2: penalizer/spend_penalizer were its own parameters, and the fitted
    sub-models (in their own format 1) sat at the top level."""
    try:
        hyper_params = dict(data["hyper_params"])
        penalizer = hyper_params.pop("penalizer", 0.0)
        spend_penalizer = hyper_params.pop("spend_penalizer", 0.0)
        hyper_params["purchase_model"] = {"model": "BetaGeo", "format": FORMAT,
                                          "hyper_params": {"penalizer": penalizer}}
        hyper_params["spend_model"] = {"model": "GammaGamma", "format": FORMAT,
                                       "hyper_params": {"penalizer": spend_penalizer}}
        fitted = {"n_excluded_from_spend": data["n_excluded_from_spend"], "purchase_model": data["purchase_model"],
                  "spend_model": data["spend_model"]}
    except (KeyError, TypeError) as exc:
        raise ConfigError(f"incomplete CustomerValue description: missing {exc}") from exc
    return {"model": "CustomerValue", "format": FORMAT, "unit_convention": data.get("unit_convention"),
            "hyper_params": hyper_params, "fitted": fitted}


# CustomerValue parameter -> the flat setting a config names it by (custval.config.CLVModelSettings)
SETTING_NAMES = {"purchase_model__penalizer": "penalizer", "spend_model__penalizer": "spend_penalizer"}


def customer_value(*, period: str = "W", horizon: str = "12M", annual_discount_rate: float = 0.10,
                   penalizer: float = 0.0, spend_penalizer: float = 0.0) -> CustomerValue:
    """A CustomerValue from flat settings, as a config writes them: `penalizer` for the BG/NBD purchase model,
    `spend_penalizer` for the Gamma-Gamma spend model (see SETTING_NAMES)."""
    return CustomerValue(purchase_model=BetaGeo(penalizer=penalizer), spend_model=GammaGamma(penalizer=spend_penalizer),
                         period=period, horizon=horizon, annual_discount_rate=annual_discount_rate)
