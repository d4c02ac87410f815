"""What the CLV estimators share: one rule per parameter, scikit-learn tags, the fitted state of a maximum-
likelihood model (everything read from its `MLEResult`) and the one saved form.

Saved form (`to_dict`, format 2), strict JSON:
    {"model": "BetaGeo", "format": 2, "hyper_params": {...get_params(deep=False)...},
     "fitted": MLEResult.to_dict()}            # "fitted" absent: an unfitted model
Format 3 is format 2 with `fitted.limit`, the limiting model fitted at a boundary of the parameter space
(e.g. "nbd"), whose `fitted.names` are that limit's free parameters. It is written only for such models, so
a model fitted inside the parameter space stays format 2 (readable by versions before limits existed) and an
older version refuses a limit by its format instead of misreading it.
Models saved before format 2 carry no "format" key; each model's `from_dict` upgrades them first.
"""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from custval.errors import ConfigError
from custval.models.clv._mle import Limit, MLEResult
from custval.models.validation import check_fitted

FORMAT = 2
LIMIT_FORMAT = 3  # format 2 with fitted.limit: a model fitted at a boundary of its parameter space


# ------------------------------------------------------------------------------------ parameter rules
def shown(value) -> str:
    """A setting as a message shows it: numbers plain (`-1`, `0.1`, never `np.float64(-1.0)`), others repr'd."""
    value = _unwrap(value)
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return f"{float(value):.6g}"
    return repr(value)


def _unwrap(value):
    """numpy scalars and 0-d arrays as Python scalars."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value.item()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_number(name: str, value, *, minimum: float | None = None, exclusive_minimum: bool = False,
                 maximum: float | None = None) -> float:
    """`value` as a float if it is a finite real number (numpy scalars count, bools do not) within the bounds;
    otherwise ConfigError starting with `name`, e.g. "penalizer must be a finite number >= 0, got -1"."""
    if maximum is not None and minimum is not None:
        rule = f"a number in [{minimum:g}, {maximum:g}]"
    elif minimum is not None:
        rule = f"a finite number {'>' if exclusive_minimum else '>='} {minimum:g}"
    else:
        rule = "a finite number"
    number = _unwrap(value)
    ok = _is_number(number) and np.isfinite(float(number))
    if ok and minimum is not None:
        ok = float(number) > minimum if exclusive_minimum else float(number) >= minimum
    if ok and maximum is not None:
        ok = float(number) <= maximum
    if not ok:
        raise ConfigError(f"{name} must be {rule}, got {shown(value)}")
    return float(number)


def check_discount_rate(name: str, value, n: int | None = None) -> float | np.ndarray:
    """The rule of every discount rate (annual or per period): finite and > -1. One number, or with `n` also an
    array of one rate per customer (e.g. risk-adjusted rates), returned as a float array."""
    rule = f"{name} must be finite and > -1 (a number; 0.1 = 10%)"
    if np.ndim(value) == 0:
        number = _unwrap(value)
        if not (_is_number(number) and np.isfinite(float(number)) and float(number) > -1):
            raise ConfigError(f"{rule}, got {shown(value)}")
        return float(number)
    if n is None:
        raise ConfigError(f"{name} must be one number, got an array of shape {np.shape(value)}")
    try:
        rates = np.asarray(value)
        numeric = rates.dtype.kind in "iuf"
        rates = rates.astype(float)
    except (TypeError, ValueError):
        numeric = False
    if not numeric:
        raise ConfigError(f"{rule}, got an array that is not numeric")
    if rates.shape != (n,):
        raise ConfigError(f"{name} must be one number or one per customer ({n}), got shape {rates.shape}")
    bad = ~(np.isfinite(rates) & (rates > -1))
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise ConfigError(f"{rule}, got {shown(rates[first])} (customer {first})")
    return rates


def json_params(params: dict) -> dict:
    """get_params(deep=False) with numpy scalars as Python numbers, so it is plain JSON."""
    return {name: _unwrap(value) for name, value in params.items()}


def build_from_params(cls, hyper_params, kind: str):
    """`cls(**hyper_params)` from a saved description, with ConfigErrors instead of TypeErrors."""
    if not isinstance(hyper_params, dict):
        raise ConfigError(f"{kind} description: hyper_params must be a mapping, got {type(hyper_params).__name__}")
    known = sorted(cls().get_params(deep=False))
    unknown = sorted(set(hyper_params) - set(known))
    if unknown:
        raise ConfigError(f"{kind} description: unknown parameter {unknown[0]!r} (known: {known})")
    return cls(**hyper_params)


def check_description(data, kind: str) -> dict:
    """`data` if it is a mapping describing a `kind` model; ConfigError otherwise."""
    found = data.get("model") if isinstance(data, dict) else type(data).__name__
    if found != kind:
        raise ConfigError(f"not a {kind} description: model={found!r}")
    return data


# ------------------------------------------------------------------------------------------ estimators
class CLVEstimator(BaseEstimator):
    """Base of the CLV estimators: scikit-learn tags and the public parameter check `fit` calls."""

    def check_params(self) -> CLVEstimator:
        """Validate the parameters (ConfigError naming the parameter); returns self. Jobs call it before they
        load any data, `fit` calls it first."""
        raise NotImplementedError

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False  # NaN in an RFM summary is a DataError, never imputed
        tags.target_tags.required = False  # unsupervised: fit(X) ignores y
        tags.requires_fit = True
        tags.non_deterministic = False  # same data and parameters: the same fit
        return tags


class MLEModel(CLVEstimator):
    """A CLV model fitted by maximum likelihood. Its fitted state is `result_` (an MLEResult in model units);
    `params_`, `standard_errors_`, `covariance_`, ... are read from it, so a model is saved and restored by
    saving its hyper-parameters and its result."""

    PARAM_NAMES: tuple[str, ...] = ()
    FIT_STATE: tuple[str, ...] = ("n_customers",)  # facts about the fitted data kept in `result_.extra`
    LIMITS: dict[str, Limit] = {}  # the limiting models `fit` may choose, by name

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = True  # counts, durations and spends are >= 0
        return tags

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "result_")

    # fitted attributes (AttributeError, so hasattr() is False, before fit)
    @property
    def params_(self) -> dict[str, float]:
        """The fitted parameters by name: PARAM_NAMES, or the free parameters of the limit (see `limit_`)."""
        return self.fitted_result().as_dict()

    @property
    def limit_(self) -> str | None:
        """The limiting model fitted where the likelihood is highest on a boundary (a key of LIMITS), or None."""
        return self.fitted_result().limit

    @property
    def standard_errors_(self) -> dict[str, float]:
        result = self.fitted_result()
        return dict(zip(result.names, map(float, result.standard_errors), strict=True))

    @property
    def covariance_(self) -> np.ndarray:
        """Rows and columns in the order of `params_`."""
        return np.asarray(self.fitted_result().covariance, dtype=float)

    @property
    def log_likelihood_(self) -> float:
        return float(self.fitted_result().log_likelihood)

    @property
    def converged_(self) -> bool:
        return bool(self.fitted_result().converged)

    @property
    def n_iter_(self) -> int:
        return int(self.fitted_result().n_iter)

    @property
    def n_customers_(self) -> int | float:
        """Customers the model was fitted on (a float only when sample weights were fractional)."""
        return self.fitted_result().extra["n_customers"]

    def fitted_result(self) -> MLEResult:
        """The MLEResult of the fit; NotFittedError before fit."""
        check_fitted(self)
        return self.result_

    def fitted_params(self) -> tuple[float, ...]:
        """The fitted parameters in the order of `params_`; NotFittedError before fit."""
        return tuple(float(v) for v in self.fitted_result().params)

    def summary(self) -> pd.DataFrame:
        """Parameters with standard errors and 95% Wald intervals. At a limit, the free parameters (column
        limit "free") and then the full model's parameters at the boundary, with what the limit means."""
        result = self.fitted_result()
        if result.limit is None:
            return result.summary()
        return pd.concat([result.summary().assign(limit="free"), self.LIMITS[result.limit].summary_rows()])

    # ------------------------------------------------------------------------------- the saved form
    def to_dict(self) -> dict:
        """JSON-able description of the fitted model (no pickle): hyper-parameters and the MLEResult."""
        result = self.fitted_result()
        return {"model": type(self).__name__, "format": FORMAT if result.limit is None else LIMIT_FORMAT,
                "hyper_params": json_params(self.get_params(deep=False)), "fitted": result.to_dict()}

    @classmethod
    def from_dict(cls, data: dict) -> MLEModel:
        """Rebuild a model from `to_dict()` output (fitted if it has a "fitted" part)."""
        kind = cls.__name__
        check_description(data, kind)
        version = data.get("format")
        if version not in (FORMAT, LIMIT_FORMAT):
            raise ConfigError(f"{kind} description: format {version!r} is not one this version reads "
                              f"({FORMAT}, {LIMIT_FORMAT}, or models saved without a format)")
        model = build_from_params(cls, data.get("hyper_params", {}), kind).check_params()
        fitted = data.get("fitted")
        if fitted is not None:
            result = MLEResult.from_dict(fitted, cls._saved_names(fitted, version), kind)
            shares = cls.LIMITS[result.limit].shares if result.limit is not None else ()
            for name, value in result.as_dict().items():
                if name in shares and not value < 1:
                    raise ConfigError(f"{kind} parameter {name} is a share and must be below 1, got {value:.6g}")
            missing = [key for key in cls.FIT_STATE if key not in result.extra]
            if missing:
                raise ConfigError(f"incomplete {kind} description: fitted.extra.{missing[0]} is missing")
            model.result_ = result
        return model

    @classmethod
    def _saved_names(cls, fitted, version: int) -> tuple[str, ...]:
        """The parameter names a saved fitted state must have: PARAM_NAMES in format 2, the free parameters of
        its limit in format 3 (which must name one of LIMITS)."""
        kind = cls.__name__
        limit = fitted.get("limit") if isinstance(fitted, dict) else None
        if version == FORMAT:
            if limit is not None:
                raise ConfigError(f"{kind} description: fitted.limit {limit!r} needs format {LIMIT_FORMAT}, "
                                  f"got format {FORMAT}")
            return cls.PARAM_NAMES
        if limit not in cls.LIMITS:
            known = sorted(cls.LIMITS)
            if limit is None:
                raise ConfigError(f"incomplete {kind} description: format {LIMIT_FORMAT} records fitted.limit, "
                                  f"which is missing (known limits: {known})")
            raise ConfigError(f"{kind} description: unknown fitted.limit {limit!r} (known: {known})")
        return cls.LIMITS[limit].names
