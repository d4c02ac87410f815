"""Shared maximum-likelihood machinery for the CLV models.

Models supply the total negative log-likelihood and its analytic gradient in natural (positive)
parameters over weighted rows; this module optimises in log-parameters, computes standard errors from
the Hessian (central differences of the analytic gradient) and refuses a fit that did not converge.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from custval.errors import ConvergenceError

NllAndGrad = Callable[[np.ndarray], tuple[float, np.ndarray]]


@dataclass(frozen=True)
class MLEResult:
    names: tuple[str, ...]
    params: np.ndarray
    standard_errors: np.ndarray
    covariance: np.ndarray
    log_likelihood: float
    converged: bool
    n_iter: int
    message: str
    gradient_norm: float
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict[str, float]:
        return dict(zip(self.names, map(float, self.params), strict=True))

    def summary(self) -> pd.DataFrame:
        """Parameters with standard errors and 95% Wald intervals."""
        se = self.standard_errors
        return pd.DataFrame(
            {"estimate": self.params, "se": se, "lower_95": self.params - 1.96 * se,
             "upper_95": self.params + 1.96 * se},
            index=pd.Index(self.names, name="parameter"),
        )


def compress_rows(*columns: np.ndarray) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Unique rows of the given equal-length columns, their counts, and each input row's unique index.

    Likelihoods of identical (frequency, recency, T) rows are identical, so fitting on unique rows
    with counts as weights gives the same optimum at a fraction of the cost.
    """
    key = np.zeros(len(columns[0]), dtype=np.int64)
    key_cardinality = 1
    for column in columns:
        codes, uniques = pd.factorize(np.asarray(column), sort=False)
        if key_cardinality * len(uniques) >= 2**62:  # re-densify the key before it could overflow
            key, key_uniques = pd.factorize(key, sort=False)
            key_cardinality = len(key_uniques)
        key = key * len(uniques) + codes
        key_cardinality *= len(uniques)
    codes, first_rows = _first_occurrence(key)
    weights = np.bincount(codes, minlength=len(first_rows)).astype(float)
    unique_cols = [np.asarray(column)[first_rows] for column in columns]
    return unique_cols, weights, codes


def _first_occurrence(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dense codes of `key` in order of first appearance, and the row where each code first appears."""
    codes, uniques = pd.factorize(key, sort=False)
    first_rows = np.full(len(uniques), -1, dtype=np.int64)
    # assigning in reverse leaves each code's earliest row
    first_rows[codes[::-1]] = np.arange(len(codes) - 1, -1, -1)
    return codes, first_rows


def numerical_hessian(grad: Callable[[np.ndarray], np.ndarray], params: np.ndarray, rel_step: float = 1e-5) -> np.ndarray:
    """Hessian by central differences of an analytic gradient, symmetrised."""
    params = np.asarray(params, dtype=float)
    k = params.size
    hess = np.empty((k, k))
    for j in range(k):
        h = rel_step * max(abs(params[j]), 1e-8)
        up, down = params.copy(), params.copy()
        up[j] += h
        down[j] -= h
        hess[:, j] = (grad(up) - grad(down)) / (2.0 * h)
    return 0.5 * (hess + hess.T)


def fit_mle(
    nll_and_grad: NllAndGrad,
    x0: np.ndarray,
    names: tuple[str, ...],
    *,
    total_weight: float,
    penalizer: float = 0.0,
    tol: float = 1e-10,
    maxiter: int = 2000,
    model: str = "model",
) -> MLEResult:
    """Minimise the mean negative log-likelihood (plus penalizer * sum(params^2), as lifetimes does)
    over log-parameters; raise ConvergenceError unless the optimum is a proper interior maximum."""
    x0 = np.asarray(x0, dtype=float)
    if np.any(~np.isfinite(x0)) or np.any(x0 <= 0):
        raise ConvergenceError(f"{model}: initial parameters must be positive and finite, got {x0}")
    scale = 1.0 / float(total_weight)

    def objective(log_params: np.ndarray) -> tuple[float, np.ndarray]:
        params = np.exp(log_params)
        nll, grad = nll_and_grad(params)
        value = nll * scale + penalizer * float(np.sum(params**2))
        grad_params = np.asarray(grad) * scale + 2.0 * penalizer * params
        if not np.isfinite(value) or not np.all(np.isfinite(grad_params)):
            return np.inf, np.zeros_like(params)
        return value, grad_params * params

    first = objective(np.log(x0))
    if not np.isfinite(first[0]):
        raise ConvergenceError(f"{model}: the log-likelihood is not finite at the starting point {x0}")
    result = minimize(objective, np.log(x0), jac=True, method="BFGS", options={"gtol": tol, "maxiter": maxiter})
    # BFGS often stops with "precision loss" at an optimum already reached; judge by the gradient itself.
    value, grad_log = objective(result.x)
    gradient_norm = float(np.max(np.abs(grad_log)))
    params = np.exp(result.x)
    # a looser `tol` stops BFGS earlier, so the acceptance threshold follows it
    if not np.isfinite(value) or gradient_norm > max(1e-5, tol) or not np.all(np.isfinite(params)):
        raise ConvergenceError(
            f"{model}: maximum likelihood did not converge ({result.message}; max |gradient| "
            f"{gradient_norm:.3g} at {dict(zip(names, params.round(6), strict=True))}). Try a penalizer > 0 "
            "or check the data (e.g. too few repeat buyers)."
        )

    def total_grad(p: np.ndarray) -> np.ndarray:
        return np.asarray(nll_and_grad(p)[1]) + 2.0 * penalizer * total_weight * p

    hessian = numerical_hessian(total_grad, params)
    try:
        eigenvalues = np.linalg.eigvalsh(hessian)
        covariance = np.linalg.inv(hessian)
    except np.linalg.LinAlgError as exc:
        raise ConvergenceError(f"{model}: the Hessian at the optimum is singular: {exc}") from exc
    if not np.all(np.isfinite(eigenvalues)) or eigenvalues.min() <= 0:
        raise ConvergenceError(
            f"{model}: the optimum {dict(zip(names, params.round(6), strict=True))} is not a strict maximum "
            "(Hessian not positive definite); the data cannot identify all parameters. Try a penalizer > 0."
        )
    standard_errors = np.sqrt(np.diag(covariance))
    log_likelihood = -float(nll_and_grad(params)[0])
    return MLEResult(
        names=tuple(names),
        params=params,
        standard_errors=standard_errors,
        covariance=covariance,
        log_likelihood=log_likelihood,
        converged=True,
        n_iter=int(result.nit),
        message=str(result.message),
        gradient_norm=gradient_norm,
    )
