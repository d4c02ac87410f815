"""Shared maximum-likelihood machinery for the CLV models.

Models supply the total negative log-likelihood and its analytic gradient in natural (positive)
parameters over weighted rows; this module optimises in log-parameters, computes standard errors from
the Hessian (central differences of the analytic gradient) and refuses a fit that did not converge.

Where the likelihood is highest on the boundary of the parameter space (BG/NBD with a -> 0: nobody drops
out), that boundary is a model of its own with fewer parameters, a `Limit`. Models fit their limits beside
the full model when it has no maximum or its optimum lies towards a boundary (`at_boundary`), and
`choose_fit` keeps the best, preferring the simpler model when they fit equally well.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from custval.errors import ConfigError, ConvergenceError

NllAndGrad = Callable[[np.ndarray], tuple[float, np.ndarray]]


@dataclass(frozen=True)
class MLEResult:
    """A maximum-likelihood fit in the model's own units: parameters, standard errors, covariance and how the
    optimiser ended; `extra` holds facts about the fitted data (e.g. n_customers) as JSON numbers.

    `to_dict`/`from_dict` are the one saved form of every CLV model's fitted state (strict JSON: a non-finite
    number is stored as null and read back as NaN)."""

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
    limit: str | None = None  # the limiting model fitted (its name in the model's LIMITS), None: the full model

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

    def to_dict(self) -> dict:
        """JSON-able form (no pickle): lists of floats, with null for a non-finite number."""
        return {
            "names": list(self.names),
            "params": _json_floats(self.params),
            "standard_errors": _json_floats(self.standard_errors),
            "covariance": [_json_floats(row) for row in np.asarray(self.covariance, dtype=float)],
            "log_likelihood": _json_float(self.log_likelihood),
            "converged": bool(self.converged),
            "n_iter": int(self.n_iter),
            "message": str(self.message),
            "gradient_norm": _json_float(self.gradient_norm),
            "extra": {str(k): _json_scalar(v) for k, v in self.extra.items()},
            **({"limit": self.limit} if self.limit is not None else {}),
        }

    @classmethod
    def from_dict(cls, data: dict, names: tuple[str, ...], model: str = "model") -> MLEResult:
        """Rebuild from `to_dict()` output, checking it describes `names` with positive finite parameters."""
        if not isinstance(data, dict):
            raise ConfigError(f"incomplete {model} description: fitted must be a mapping, got {type(data).__name__}")
        missing = [key for key in _RESULT_KEYS if key not in data]
        if missing:
            raise ConfigError(f"incomplete {model} description: fitted.{missing[0]} is missing")
        if tuple(data["names"]) != tuple(names):
            raise ConfigError(f"{model} parameters must be {list(names)}, got {data['names']}")
        k = len(names)
        try:
            params = _read_floats(data["params"], (k,))
            standard_errors = _read_floats(data["standard_errors"], (k,))
            covariance = _read_floats(data["covariance"], (k, k))
            extra = {str(key): math.nan if v is None else v for key, v in dict(data.get("extra", {})).items()}
            result = cls(
                names=tuple(names), params=params, standard_errors=standard_errors, covariance=covariance,
                log_likelihood=_read_float(data["log_likelihood"]), converged=bool(data["converged"]),
                n_iter=int(data["n_iter"]), message=str(data["message"]),
                gradient_norm=_read_float(data["gradient_norm"]), extra=extra, limit=data.get("limit"),
            )
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{model} description: fitted state is malformed ({exc})") from exc
        if not np.all(np.isfinite(params) & (params > 0)):
            raise ConfigError(f"{model} parameters must be positive and finite, got {format_params(names, params)}")
        return result


_RESULT_KEYS = ("names", "params", "standard_errors", "covariance", "log_likelihood", "converged", "n_iter",
                "message", "gradient_norm")


def _json_float(value) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _json_floats(values) -> list[float | None]:
    return [_json_float(v) for v in np.asarray(values, dtype=float).ravel()]


def _json_scalar(value):
    """An `extra` entry: bool/int kept, other numbers as floats (null if not finite), text as text."""
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, np.integer):
        return int(value)
    return _json_float(value)


def _read_float(value) -> float:
    return math.nan if value is None else float(value)


def _read_floats(values, shape: tuple[int, ...]) -> np.ndarray:
    array = np.array([[_read_float(v) for v in row] for row in values] if len(shape) == 2
                     else [_read_float(v) for v in values], dtype=float)
    if array.shape != shape:
        raise ValueError(f"expected shape {shape}, got {array.shape}")
    return array


def reparametrised(result: MLEResult, names: tuple[str, ...], params, jacobian) -> MLEResult:
    """`result` in other parameters `params` = g(old) with Jacobian dg/dold (a matrix, or its diagonal as a
    vector): covariance J C J^T and standard errors by the delta method."""
    jacobian = np.asarray(jacobian, dtype=float)
    if jacobian.ndim == 1:
        jacobian = np.diag(jacobian)
    covariance = jacobian @ np.asarray(result.covariance, dtype=float) @ jacobian.T
    return dataclasses.replace(result, names=tuple(names), params=np.asarray(params, dtype=float),
                               covariance=covariance, standard_errors=np.sqrt(np.diag(covariance)))


def format_params(names, values) -> str:
    """`r=0.243, alpha=4.41` : parameters as plain numbers for messages (never numpy reprs)."""
    return ", ".join(f"{name}={float(v):.6g}" for name, v in zip(names, np.asarray(values, dtype=float), strict=True))


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


_DRIFT = 1e4  # a parameter this many times above (below) its starting value is reported as -> infinity (-> 0)


class FitFailure(ConvergenceError):
    """fit_mle found no interior maximum. `objective` is the mean penalised negative log-likelihood where the
    optimiser stopped (inf when it could not start), so a limiting model can be compared with that point."""

    def __init__(self, message: str, objective: float = math.inf):
        super().__init__(message)
        self.objective = float(objective)


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
    unit_scale: np.ndarray | None = None,
    penalized: np.ndarray | None = None,
) -> MLEResult:
    """Minimise the mean negative log-likelihood (plus penalizer * sum(params^2), as lifetimes does)
    over log-parameters; raise FitFailure (a ConvergenceError) unless the optimum is a proper interior maximum.

    `unit_scale` converts the optimiser's parameters to the model's units (e.g. BG/NBD fits alpha in units of
    the longest T): error messages show `params * unit_scale`, the parameters as the user reads them.
    `penalized` (booleans, default all) says which parameters the penalty acts on: a limiting model leaves out
    those that stand for parameters gone to 0, whose penalty vanished with them."""
    x0 = np.asarray(x0, dtype=float)
    to_model_units = np.ones_like(x0) if unit_scale is None else np.asarray(unit_scale, dtype=float)
    weights = np.ones_like(x0) if penalized is None else np.asarray(penalized, dtype=float)

    def shown(params: np.ndarray) -> str:
        return format_params(names, np.asarray(params, dtype=float) * to_model_units)

    if np.any(~np.isfinite(x0)) or np.any(x0 <= 0):
        raise FitFailure(f"{model}: initial parameters must be positive and finite, got {shown(x0)}")
    scale = 1.0 / float(total_weight)

    def objective(log_params: np.ndarray) -> tuple[float, np.ndarray]:
        with np.errstate(over="ignore", under="ignore"):
            params = np.exp(log_params)
        if not np.all(np.isfinite(params) & (params > 0)):  # under/overflow: outside the model, not an error
            return np.inf, np.zeros_like(params)
        # the optimiser may probe extreme points: an inf/NaN there is a valid answer, not a warning
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            nll, grad = nll_and_grad(params)
            value = nll * scale + penalizer * float(weights @ params**2)
            grad_params = np.asarray(grad) * scale + 2.0 * penalizer * weights * params
        if not np.isfinite(value) or not np.all(np.isfinite(grad_params)):
            return np.inf, np.zeros_like(params)
        return value, grad_params * params

    first = objective(np.log(x0))
    if not np.isfinite(first[0]):
        raise FitFailure(f"{model}: the log-likelihood is not finite at the starting point {shown(x0)}; check the "
                         "data for extreme values (e.g. frequencies or ages many orders of magnitude apart)")
    result = minimize(objective, np.log(x0), jac=True, method="BFGS", options={"gtol": tol, "maxiter": maxiter})
    # BFGS often stops with "precision loss" at an optimum already reached; judge by the gradient itself.
    value, grad_log = objective(result.x)
    gradient_norm = float(np.max(np.abs(grad_log)))
    with np.errstate(over="ignore", under="ignore"):
        params = np.exp(result.x)

    def failure(problem: str) -> FitFailure:
        return FitFailure(f"{model}: {problem}; the fit stopped at {shown(params)}. "
                          f"{_diagnosis(names, params, x0, penalizer)}", value)

    # a looser `tol` stops BFGS earlier, so the acceptance threshold follows it
    if not np.isfinite(value) or gradient_norm > max(1e-5, tol) or not np.all(np.isfinite(params)):
        raise failure(f"maximum likelihood did not converge ({result.message.rstrip('.')}; max |gradient| "
                      f"{gradient_norm:.3g})")

    def total_grad(p: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            return np.asarray(nll_and_grad(p)[1]) + 2.0 * penalizer * total_weight * weights * p

    hessian = numerical_hessian(total_grad, params)
    if not np.all(np.isfinite(hessian)):
        raise failure("the curvature of the log-likelihood (Hessian) at the optimum is not finite")
    try:
        eigenvalues = np.linalg.eigvalsh(hessian)
        covariance = np.linalg.inv(hessian)
    except np.linalg.LinAlgError:
        raise failure("the curvature of the log-likelihood (Hessian) at the optimum cannot be inverted") from None
    if not np.all(np.isfinite(eigenvalues)) or eigenvalues.min() <= 0:
        raise failure("the optimum is not a strict maximum (the Hessian is not positive definite)")
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


# ------------------------------------------------------------------------------------------ limits
@dataclass(frozen=True)
class Limit:
    """A limiting model on the boundary of a model's parameter space (e.g. BG/NBD's a -> 0: the NBD model).

    name: how `MLEResult.limit` and the saved form record it; names: its free parameters; boundary: the full
    model's parameters there as `summary()` shows them, (name, value, what it means); penalizable: reached
    with parameters going to 0 only, so it can be the optimum of a penalised fit (a parameter running to
    infinity makes the penalty infinite); shares: free parameters that are shares, below 1."""

    name: str
    names: tuple[str, ...]
    boundary: tuple[tuple[str, float, str], ...]
    penalizable: bool
    shares: tuple[str, ...] = ()

    def summary_rows(self) -> pd.DataFrame:
        """The boundary parameters as rows of a model's `summary()` (no standard errors: they are not free)."""
        names = [name for name, _, _ in self.boundary]
        return pd.DataFrame({"estimate": [value for _, value, _ in self.boundary], "se": math.nan,
                             "lower_95": math.nan, "upper_95": math.nan,
                             "limit": [meaning for _, _, meaning in self.boundary]},
                            index=pd.Index(names, name="parameter"))


@dataclass(frozen=True)
class Candidate:
    """One model fitted to the data: the full model (limit None) or a limit, with its result or its failure,
    and the objective it reached (mean penalised negative log-likelihood, comparable across candidates)."""

    limit: Limit | None
    result: MLEResult | None
    objective: float
    failure: FitFailure | None = None


def fit_candidate(limit: Limit | None, fit: Callable[[], MLEResult], *, total_weight: float, penalizer: float,
                  penalized: np.ndarray | None = None) -> Candidate:
    """Run `fit` (a fit_mle call in the candidate's own parameters, before any change of units) and record
    what it reached; a FitFailure is recorded, not raised."""
    try:
        result = fit()
    except FitFailure as failure:
        return Candidate(limit, None, failure.objective, failure)
    weights = np.ones(len(result.params)) if penalized is None else np.asarray(penalized, dtype=float)
    objective = -result.log_likelihood / total_weight + penalizer * float(weights @ np.square(result.params))
    return Candidate(limit, result, objective)


_SAME_OBJECTIVE = 1e-9  # relative difference of objectives below which two candidates fit equally well
_NO_EVIDENCE = 0.01  # log-likelihood (a likelihood ratio of 1.01): a failed full fit's gain below it is none


def choose_fit(candidates: Sequence[Candidate], total_weight: float) -> Candidate:
    """The candidate with the lowest objective; among those that fit as well, the one with the fewest parameters.

    Two objectives are equal within 1e-9 relative plus ten times the log-parameter gradients of the two fits:
    a converged fit whose parameter drifts towards a boundary (a -> 0) is that far from the limit's objective.
    candidates[0] is the full model. When it found no maximum, a limit is its result unless the full model
    (or a limit that failed too) stopped at a point better by more than 0.01 in log-likelihood (the maximum is
    elsewhere and the optimiser did not reach it): then, as when no candidate converged, its failure is raised.
    """
    full = candidates[0]
    limits = ", ".join(c.limit.name for c in candidates[1:])

    def failure(why: str) -> FitFailure:
        return FitFailure(f"{full.failure}{why}" if limits else str(full.failure), full.objective)

    fitted = [c for c in candidates if c.result is not None]
    if not fitted:
        raise failure(f" No limiting model ({limits}) has a maximum either.")
    best = min(fitted, key=lambda c: c.objective)

    def slack(other: Candidate) -> float:
        gradients = best.result.gradient_norm + (other.result.gradient_norm if other.result is not None else 0.0)
        return _SAME_OBJECTIVE * max(1.0, abs(best.objective)) + 10.0 * gradients

    if full.result is None:
        no_evidence = max(slack(full), _NO_EVIDENCE / total_weight)
        if any(c.objective < best.objective - no_evidence for c in candidates if c.result is None):
            raise failure(f" No limiting model ({limits}) fits as well as points the optimiser reached.")
    equal = [c for c in fitted if c.objective <= best.objective + slack(c)]
    return min(equal, key=lambda c: len(c.result.params))


def drifting(names, params: np.ndarray, x0: np.ndarray) -> tuple[list[str], list[str]]:
    """The parameters that ran towards a boundary: (those 1e4 times below their starting value: -> 0, those
    1e4 times above it or not finite: -> infinity)."""
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        ratio = np.asarray(params, dtype=float) / np.asarray(x0, dtype=float)
    to_zero = [n for n, v in zip(names, ratio, strict=True) if v < 1.0 / _DRIFT]
    to_infinity = [n for n, v in zip(names, ratio, strict=True) if not v <= _DRIFT]
    return to_zero, to_infinity


def at_boundary(full: Candidate, x0: np.ndarray) -> bool:
    """Whether the full model's fit calls for its limits: it found no maximum, or its optimum lies towards a
    boundary (a parameter 1e4 times beyond its moment-style start `x0`, e.g. a -> 0). An optimum well inside the
    parameter space is the result as it stands, without the cost of fitting the limits."""
    return full.result is None or any(drifting(full.result.names, full.result.params, x0))


def _diagnosis(names, params: np.ndarray, x0: np.ndarray, penalizer: float) -> str:
    """Why a fit failed, and the setting that can help. A penalizer adds penalizer * sum(params^2): it keeps
    parameters from running to infinity and adds curvature, but it pulls them towards 0, so it cannot hold
    back one that runs to 0 (and may be what drives it there)."""
    to_zero, to_infinity = drifting(names, params, x0)
    drifts = [f"{n} -> 0" for n in to_zero] + [f"{n} -> infinity" for n in to_infinity]
    why = (f"The likelihood keeps rising as {', '.join(drifts)}: the data cannot identify all parameters"
           if drifts else "The data cannot identify all parameters")
    why += " (too few customers, or too little variation between them)."
    if to_zero and not to_infinity:
        if penalizer > 0:
            return (why + f" The penalizer ({penalizer:.6g}) pulls parameters towards 0: try a smaller one "
                    "(e.g. 0), or check the data.")
        return why + " A penalizer cannot help (it pulls parameters towards 0); check the data."
    if penalizer > 0:
        return (why + f" Try a larger penalizer than {penalizer:.6g} (e.g. {10 * penalizer:.6g}), or check "
                "the data.")
    return why + " Try a penalizer > 0 (e.g. 0.01), or check the data."
