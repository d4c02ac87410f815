"""Checks every custval estimator shares: the fitted state, through scikit-learn's `check_is_fitted`."""

from __future__ import annotations

from sklearn.exceptions import NotFittedError as SklearnNotFittedError
from sklearn.utils.validation import check_is_fitted

from custval.errors import NotFittedError


def check_fitted(estimator, attributes: str | list[str] | None = None) -> None:
    """Raise custval's NotFittedError (a CustvalError and scikit-learn's NotFittedError) unless `estimator`
    is fitted: scikit-learn's rule (`__sklearn_is_fitted__`, else attributes ending in "_"), or the given
    `attributes`."""
    try:
        check_is_fitted(estimator, attributes)
    except SklearnNotFittedError:
        raise NotFittedError(f"This {type(estimator).__name__} is not fitted yet: call fit first.") from None
