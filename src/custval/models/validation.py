"""Checks every custval estimator shares: the fitted state, through scikit-learn's `check_is_fitted`, and
parameter values (ConfigError messages start with the parameter's name, so a job can prefix its config path:
`model.xgboost.subsample ...`)."""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.exceptions import NotFittedError as SklearnNotFittedError
from sklearn.utils.validation import check_is_fitted

from custval.errors import ConfigError, NotFittedError, shown


def check_fitted(estimator, attributes: str | list[str] | None = None) -> None:
    """Raise custval's NotFittedError (a CustvalError and scikit-learn's NotFittedError) unless `estimator`
    is fitted: scikit-learn's rule (`__sklearn_is_fitted__`, else attributes ending in "_"), or the given
    `attributes`."""
    try:
        check_is_fitted(estimator, attributes)
    except SklearnNotFittedError:
        raise NotFittedError(f"This {type(estimator).__name__} is not fitted yet: call fit first.") from None


def check_choice(value, name: str, choices: tuple) -> None:
    if not isinstance(value, str) or value not in choices:
        raise ConfigError(f"{name} must be one of {list(choices)}, got {shown(value)}")


def check_int(value, name: str, *, minimum: int, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}{' or None' if allow_none else ''}, "
                          f"got {shown(value)}")


def _is_real(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, numbers.Real) and bool(np.isfinite(value))


def check_real(value, name: str, *, minimum: float, strict: bool = False) -> None:
    if not (_is_real(value) and (value > minimum if strict else value >= minimum)):
        raise ConfigError(f"{name} must be a finite number {'>' if strict else '>='} {minimum:g}, got {shown(value)}")


def check_fraction(value, name: str) -> None:
    """A share of rows or columns: a number in (0, 1]."""
    if not (_is_real(value) and 0 < value <= 1):
        raise ConfigError(f"{name} must be in (0, 1], got {shown(value)}")


def check_random_state(value, name: str = "random_state") -> None:
    """None, a seed in [0, 2**32) (numpy's and scikit-learn's range) or a numpy RandomState."""
    if value is None or isinstance(value, np.random.RandomState):
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 0 <= value < 2**32:
        raise ConfigError(f"{name} must be an integer in [0, 2**32), a numpy RandomState or None, got {shown(value)}")
