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
import numbers

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from custval.errors import ConfigError, NotFittedError, SchemaError
from custval.models.clv.bgnbd import BetaGeo
from custval.models.clv.gamma_gamma import GammaGamma, spend_arrays
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


def _check_rate(annual_discount_rate) -> float:
    if isinstance(annual_discount_rate, np.ndarray) and annual_discount_rate.ndim == 0:
        annual_discount_rate = annual_discount_rate.item()
    if isinstance(annual_discount_rate, bool) or not isinstance(annual_discount_rate, numbers.Real):
        raise ConfigError(f"annual_discount_rate must be a number > -1, got {annual_discount_rate!r}")
    rate = float(annual_discount_rate)
    if not (math.isfinite(rate) and rate > -1):
        raise ConfigError(f"annual_discount_rate must be a finite number > -1, got {annual_discount_rate!r}")
    return rate


def _check_rates(annual_discount_rate, n: int) -> np.ndarray:
    """One annual rate, or one per customer (e.g. risk-adjusted rates), as a float array."""
    if np.ndim(annual_discount_rate) == 0:
        return np.asarray(_check_rate(annual_discount_rate))
    rates = np.asarray(annual_discount_rate, dtype=float)
    if rates.shape != (n,):
        raise ConfigError(f"annual_discount_rate must be one number or one per customer ({n}), got shape {rates.shape}")
    bad = ~(np.isfinite(rates) & (rates > -1))
    if bad.any():
        raise ConfigError(f"annual_discount_rate must be finite and > -1, got {rates[bad][0]!r}")
    return rates


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


def _period_rates(rate: np.ndarray, period: str) -> np.ndarray:
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
    rate = _check_rates(annual_discount_rate, len(X))
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


class CustomerValue(BaseEstimator):
    """BG/NBD purchases + Gamma-Gamma spend -> expected purchases, P(alive), expected spend and CLV.

    period: model period of recency/T ("D", "W", "M"); horizon: CLV horizon with its unit ("12M");
    annual_discount_rate: compound annual rate, discounting at the end of each model period;
    penalizer: L2 penalizer of the BG/NBD fit; spend_penalizer: that of the Gamma-Gamma fit. They are separate
    because lifetimes' penalty (sum of squared parameters) bites hard on Gamma-Gamma's large gamma: on CDNOW a
    spend penalizer of 0.01 already drives q below 1.
    """

    def __init__(self, period: str = "W", horizon: str = "12M", annual_discount_rate: float = 0.10,
                 penalizer: float = 0.0, spend_penalizer: float = 0.0):
        self.period = period
        self.horizon = horizon
        self.annual_discount_rate = annual_discount_rate
        self.penalizer = penalizer
        self.spend_penalizer = spend_penalizer

    def _check_hyper_params(self) -> None:
        check_period(self.period)
        parse_horizon(self.horizon)
        _check_rate(self.annual_discount_rate)
        for name in ("penalizer", "spend_penalizer"):
            value = getattr(self, name)
            if not (isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
                    and value >= 0):
                raise ConfigError(f"CustomerValue {name} must be a finite number >= 0, got {value!r}")

    def fit(self, X: pd.DataFrame, y: None = None) -> CustomerValue:
        """Fit BetaGeo on all rows and GammaGamma on repeat buyers with monetary_value > 0."""
        self._check_hyper_params()
        _require_rfm(X)
        frequency, monetary_value = spend_arrays(X)
        purchase_model = BetaGeo(penalizer=self.penalizer).fit(X)
        excluded = (frequency > 0) & (monetary_value <= 0)
        spend_model = GammaGamma(penalizer=self.spend_penalizer).fit(X.loc[~excluded])
        self.purchase_model_ = purchase_model
        self.spend_model_ = spend_model
        self.n_excluded_from_spend_ = int(excluded.sum())
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "spend_model_"):
            raise NotFittedError("This CustomerValue is not fitted yet: call fit(X) first.")

    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        """Per customer (index of X kept): expected_purchases over the horizon, p_alive, expected_spend, clv.

        Repeat buyers with monetary_value <= 0 (excluded from the spend fit) are scored as if their observed
        mean spend were 0, i.e. the population mean shrunk by their frequency weight.
        """
        self._check_fitted()
        self._check_hyper_params()
        _require_rfm(X)
        frequency, monetary_value = spend_arrays(X)
        spend_input = pd.DataFrame({"frequency": frequency, "monetary_value": np.maximum(monetary_value, 0.0)},
                                   index=X.index)
        spend = np.asarray(self.spend_model_.expected_spend(spend_input), dtype=float)
        # one pass over the customers: the last step ends exactly at the horizon, so E(horizon) comes with it
        ends = step_ends(self.horizon, self.period)
        rate = _period_rates(np.asarray(_check_rate(self.annual_discount_rate)), self.period)
        alive, discounted, purchases = self.purchase_model_._value_parts(X, ends, rate)
        return pd.DataFrame(
            {
                "expected_purchases": alive * purchases,
                "p_alive": alive,
                "expected_spend": spend,
                "clv": spend * (alive * discounted),
            },
            index=X.index,
        )

    def to_dict(self) -> dict:
        """JSON-able description: hyper-parameters, unit convention and both fitted sub-models."""
        self._check_fitted()
        return {
            "model": "CustomerValue",
            "hyper_params": self.get_params(deep=False),
            "unit_convention": CONVENTION,
            "n_excluded_from_spend": int(self.n_excluded_from_spend_),
            "purchase_model": self.purchase_model_.to_dict(),
            "spend_model": self.spend_model_.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict) -> CustomerValue:
        """Rebuild a fitted CustomerValue from `to_dict()` output; refuse another unit convention."""
        if data.get("model") != "CustomerValue":
            raise ConfigError(f"not a CustomerValue description: model={data.get('model')!r}")
        if data.get("unit_convention") != CONVENTION:
            raise ConfigError(
                f"unit convention {data.get('unit_convention')!r} differs from this version's {CONVENTION!r}"
            )
        model = cls(**data["hyper_params"])
        model.purchase_model_ = BetaGeo.from_dict(data["purchase_model"])
        model.spend_model_ = GammaGamma.from_dict(data["spend_model"])
        model.n_excluded_from_spend_ = int(data["n_excluded_from_spend"])
        return model
