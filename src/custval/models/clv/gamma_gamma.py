"""Gamma-Gamma model of average transaction value (Fader, Hardie & Lee 2005; Hardie's note 025).

Each transaction value of a customer is Gamma(p, rate nu); nu varies across customers as Gamma(q, rate gamma).
Only repeat buyers (frequency > 0) inform the fit: `monetary_value` is the mean of their repeat purchases.
The model assumes spend is independent of purchase frequency; a strong correlation between the two among
repeat buyers is reported with a CustvalWarning. Parameters follow the papers: p, q, gamma (lifetimes calls
gamma `v`).

Two boundaries of the parameter space are models of their own, fitted when the likelihood is highest there
(without a penalizer, which would make their infinite parameters infinitely costly):
- "common_spend", q, gamma -> infinity with q / gamma = nu: every customer's transactions are Gamma(p, rate
  nu), so the mean of x of them is Gamma(p x, rate x nu) and everyone's expected spend is p / nu;
- "steady_spend", p -> infinity, gamma -> 0 with p gamma = scale: each customer's transactions all equal their
  mean, which is inverse-Gamma(q, scale) across customers; a repeat buyer's expected spend is their own mean.
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pandas as pd
from scipy.special import digamma, gammaln

from custval.errors import CustvalWarning, DataError, ModelError, SchemaError
from custval.models.clv._base import FORMAT, MLEModel, check_description, check_number
from custval.models.clv._mle import Limit, at_boundary, choose_fit, compress_rows, fit_candidate, fit_mle

PARAM_NAMES = ("p", "q", "gamma")
MIN_REPEAT_BUYERS = 10
TABLE = "rfm"


def gamma_gamma_nll_and_grad(
    params: np.ndarray, frequency: np.ndarray, monetary_value: np.ndarray, weights: np.ndarray
) -> tuple[float, np.ndarray]:
    """Weighted total negative log-likelihood of the Gamma-Gamma model and its gradient in (p, q, gamma).

    Per customer with x > 0 repeat purchases of mean value m (Hardie note 025, eq. 1a):
    ll = lnG(px+q) - lnG(px) - lnG(q) + q ln(gamma) + (px-1) ln(m) + px ln(x) - (px+q) ln(x m + gamma).
    """
    p, q, g = (float(v) for v in params)
    x, m, w = frequency, monetary_value, weights
    px = p * x
    log_xm_g = np.log(x * m + g)
    ll = (
        gammaln(px + q) - gammaln(px) - gammaln(q) + q * np.log(g)
        + (px - 1.0) * np.log(m) + px * np.log(x) - (px + q) * log_xm_g
    )
    psi_pxq = digamma(px + q)
    d_p = x * (psi_pxq - digamma(px) + np.log(m) + np.log(x) - log_xm_g)
    d_q = psi_pxq - digamma(q) + np.log(g) - log_xm_g
    d_g = q / g - (px + q) / (x * m + g)
    grad = -np.array([w @ d_p, w @ d_q, w @ d_g])
    return -float(w @ ll), grad


def common_spend_nll_and_grad(params, frequency, monetary_value, weights) -> tuple[float, np.ndarray]:
    """The limit q, gamma -> infinity with q / gamma = nu: the mean m of x transactions is Gamma(p x, rate x nu),
    ll = p x ln(x nu) + (p x - 1) ln m - x nu m - lnG(p x); total negative log-likelihood and gradient in (p, nu)."""
    p, nu = (float(v) for v in params)
    x, m, w = frequency, monetary_value, weights
    px = p * x
    ll = px * np.log(x * nu) + (px - 1.0) * np.log(m) - x * nu * m - gammaln(px)
    d_p = x * (np.log(x * nu * m) - digamma(px))
    d_nu = px / nu - x * m
    return -float(w @ ll), -np.array([w @ d_p, w @ d_nu])


def steady_spend_nll_and_grad(params, frequency, monetary_value, weights) -> tuple[float, np.ndarray]:
    """The limit p -> infinity, gamma -> 0 with p gamma = scale: each customer's mean m is exact and
    inverse-Gamma(q, scale) across customers, ll = q ln(scale) - lnG(q) - (q + 1) ln m - scale / m."""
    q, scale = (float(v) for v in params)
    m, w = monetary_value, weights
    log_scale = np.log(scale)  # not math.log: the Hessian's finite differences may step below 0 (NaN, refused)
    ll = q * log_scale - gammaln(q) - (q + 1.0) * np.log(m) - scale / m
    d_q = log_scale - digamma(q) - np.log(m)
    d_scale = q / scale - 1.0 / m
    return -float(w @ ll), -np.array([w @ d_q, w @ d_scale])


LIMITS = {
    "common_spend": Limit("common_spend", ("p", "nu"), (
        ("q", math.inf, "common_spend: q, gamma -> infinity with q / gamma = nu: one spend distribution for all"),
        ("gamma", math.inf, "common_spend: see q")), penalizable=False),
    "steady_spend": Limit("steady_spend", ("q", "scale"), (
        ("p", math.inf, "steady_spend: p -> infinity, gamma -> 0 with p * gamma = scale: each customer always "
                        "spends their own mean"),
        ("gamma", 0.0, "steady_spend: see p")), penalizable=False),
}
_LIKELIHOODS = {None: gamma_gamma_nll_and_grad, "common_spend": common_spend_nll_and_grad,
                "steady_spend": steady_spend_nll_and_grad}


def _require_columns(X: pd.DataFrame, columns: tuple[str, ...]) -> None:
    if not isinstance(X, pd.DataFrame):
        raise SchemaError(TABLE, columns[0], f"expected a pandas DataFrame with columns {list(columns)}",
                          type(X).__name__)
    for column in columns:
        if column not in X.columns:
            raise SchemaError(TABLE, column, "required column is missing", f"columns present: {list(X.columns)}")
        if not pd.api.types.is_numeric_dtype(X[column]) or pd.api.types.is_bool_dtype(X[column]):
            raise SchemaError(TABLE, column, "must be numeric", str(X[column].dtype))


def _finite_column(X: pd.DataFrame, column: str) -> np.ndarray:
    """The column as float64, refusing NaN/inf with the index of an offending row."""
    values = X[column].to_numpy(dtype=float, na_value=np.nan)
    bad = ~np.isfinite(values)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise DataError(TABLE, column, f"must be finite (no NaN/inf); {int(bad.sum())} rows are not",
                        f"{values[first]} at index {X.index[first]!r}")
    return values


def spend_arrays(X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(frequency, monetary_value) as float arrays after the checks shared by fit and prediction."""
    _require_columns(X, ("frequency", "monetary_value"))
    frequency = _finite_column(X, "frequency")
    monetary_value = _finite_column(X, "monetary_value")
    if (frequency < 0).any():
        raise DataError(TABLE, "frequency", "must be >= 0 (number of repeat purchases)",
                        float(frequency[frequency < 0][0]))
    return frequency, monetary_value


class GammaGamma(MLEModel):
    """Gamma-Gamma spend model, fitted by maximum likelihood on repeat buyers.

    penalizer: L2 penalty on (p, q, gamma) added to the mean negative log-likelihood (as lifetimes does).
    tol: gradient tolerance of the optimiser (in log-parameters).
    correlation_threshold: warn when |Pearson corr(frequency, monetary_value)| among repeat buyers exceeds it.
    """

    PARAM_NAMES = PARAM_NAMES
    FIT_STATE = ("n_customers", "frequency_monetary_correlation")
    LIMITS = LIMITS

    def __init__(self, penalizer: float = 0.0, tol: float = 1e-10, correlation_threshold: float = 0.3):
        self.penalizer = penalizer
        self.tol = tol
        self.correlation_threshold = correlation_threshold

    @property
    def frequency_monetary_correlation_(self) -> float:
        """Pearson correlation of frequency and monetary_value among the repeat buyers fitted on (NaN if either
        is constant)."""
        return float(self.fitted_result().extra["frequency_monetary_correlation"])

    # ------------------------------------------------------------------ fitting
    def check_params(self) -> GammaGamma:
        """ConfigError naming the first invalid parameter; returns self."""
        check_number("penalizer", self.penalizer, minimum=0)
        check_number("tol", self.tol, minimum=0, exclusive_minimum=True)
        check_number("correlation_threshold", self.correlation_threshold, minimum=0, maximum=1)
        return self

    def fit(self, X: pd.DataFrame, y: None = None) -> GammaGamma:
        """Fit on the rows of X with frequency > 0 (columns `frequency`, `monetary_value`)."""
        self.check_params()
        frequency, monetary_value = spend_arrays(X)
        repeat = frequency > 0
        x, m = frequency[repeat], monetary_value[repeat]
        nonpositive = m <= 0
        if nonpositive.any():
            raise DataError(
                TABLE, "monetary_value",
                f"must be > 0 for repeat buyers (frequency > 0); {int(nonpositive.sum())} of {x.size} repeat "
                "buyers have monetary_value <= 0: exclude them before fitting (Gamma-Gamma models positive spend)",
                float(m[nonpositive][0]),
            )
        if x.size < MIN_REPEAT_BUYERS:
            raise DataError(
                TABLE, "frequency",
                f"Gamma-Gamma needs at least {MIN_REPEAT_BUYERS} repeat buyers (frequency > 0) to fit, got {x.size}",
                int(x.size),
            )

        correlation = float(np.corrcoef(x, m)[0, 1]) if x.std() > 0 and m.std() > 0 else float("nan")
        if np.isfinite(correlation) and abs(correlation) > self.correlation_threshold:
            warnings.warn(
                f"Pearson correlation between frequency and monetary_value among repeat buyers is "
                f"{correlation:.3f} (|r| > {float(self.correlation_threshold):g}); the Gamma-Gamma model assumes "
                "they are independent, so its spend predictions may be biased.",
                CustvalWarning,
                stacklevel=2,
            )

        (ux, um), weights, _ = compress_rows(x, m)
        total_weight = float(weights.sum())
        penalizer, tol = float(self.penalizer), float(self.tol)
        mean = float(np.mean(m))
        # Scale invariance: multiplying spend by c multiplies gamma by c, so start gamma at the scale of m
        # (population mean p*gamma/(q-1) equal to the sample mean at p=1, q=2); the limits likewise.
        starts = {None: [1.0, 2.0, mean], "common_spend": [1.0, 1.0 / mean], "steady_spend": [2.0, mean]}
        candidates = []
        for name, x0 in starts.items():
            limit = LIMITS.get(name)
            if limit is not None and (penalizer > 0 and not limit.penalizable
                                      or not at_boundary(candidates[0], np.array(starts[None]))):
                continue
            names = PARAM_NAMES if limit is None else limit.names

            def fit(name=name, x0=x0, names=names):
                def nll_and_grad(params: np.ndarray) -> tuple[float, np.ndarray]:
                    return _LIKELIHOODS[name](params, ux, um, weights)

                result = fit_mle(nll_and_grad, np.array(x0), names, total_weight=total_weight, penalizer=penalizer,
                                 tol=tol, model="GammaGamma" if name is None else f"GammaGamma ({name} limit)")
                return dataclasses.replace(result, limit=name)

            candidates.append(fit_candidate(limit, fit, total_weight=total_weight, penalizer=penalizer))
        result = choose_fit(candidates, total_weight).result
        self.result_ = dataclasses.replace(
            result, extra={**result.extra, "n_customers": int(x.size), "frequency_monetary_correlation": correlation})
        if result.limit is not None:
            warnings.warn(self._limit_warning(), CustvalWarning, stacklevel=2)
        q = self.params_.get("q")
        if q is not None and q <= 1:
            warnings.warn(
                f"Gamma-Gamma fit gave q = {q:.4g} <= 1: the population mean spend is infinite, "
                "so expected_spend and CLV cannot be computed (spend is too heavy-tailed for this model).",
                CustvalWarning,
                stacklevel=2,
            )
        return self

    def _limit_warning(self) -> str:
        params = self.params_
        if self.limit_ == "common_spend":
            return ("GammaGamma: customers do not differ in what they spend beyond the variation from one "
                    "transaction to the next, so Gamma-Gamma reduces to one spend distribution for everyone (q, "
                    f"gamma -> infinity): every customer's expected spend is the population mean "
                    f"{params['p'] / params['nu']:.4g}, whatever they spent so far.")
        mean = f"{params['scale'] / (params['q'] - 1.0):.4g}" if params["q"] > 1 else "(infinite: q <= 1)"
        return ("GammaGamma: each customer's transactions are all of (nearly) the same value, so Gamma-Gamma "
                "reduces to exact customer means (p -> infinity, gamma -> 0): a repeat buyer's expected spend is "
                f"their own mean spend, a one-time buyer's the population mean {mean}.")

    # --------------------------------------------------------------- prediction
    def population_mean_spend(self) -> float:
        """Mean transaction value of a new customer, p * gamma / (q - 1) (at the limits p / nu, or scale / (q - 1));
        infinite (ModelError) if q <= 1."""
        params = self.params_
        if self.limit_ == "common_spend":
            return params["p"] / params["nu"]
        q = params["q"]
        formula = "p*gamma/(q-1)" if self.limit_ is None else "scale/(q-1)"
        if q <= 1:
            raise ModelError(
                f"Gamma-Gamma q = {q:.6g} <= 1: the population mean spend {formula} is infinite, so expected "
                "spend and CLV are undefined. The spend distribution is too heavy-tailed for this model: trim "
                "extreme monetary values (e.g. cap them at a high percentile) or use another spend model (a "
                "penalizer pulls q further towards 0, so it does not help)."
            )
        scale = params["scale"] if self.limit_ == "steady_spend" else params["p"] * params["gamma"]
        return scale / (q - 1.0)

    def expected_spend(self, X: pd.DataFrame) -> np.ndarray:
        """E[mean transaction value | frequency, monetary_value] (Hardie note 025, eq. 5).

        Equals p (gamma + x m) / (p x + q - 1): a weighted average of the customer's observed mean m and the
        population mean p*gamma/(q-1), which it is for frequency 0. monetary_value must be >= 0 for repeat
        buyers (0 gives the population mean shrunk by the frequency weight). Raises ModelError if q <= 1.
        At the limits the weight of m is 0 ("common_spend": everyone gets the population mean) or 1
        ("steady_spend": a repeat buyer gets their own mean).
        """
        self.fitted_result()
        frequency, monetary_value = spend_arrays(X)
        negative = (frequency > 0) & (monetary_value < 0)
        if negative.any():
            raise DataError(TABLE, "monetary_value", f"must be >= 0 for repeat buyers; {int(negative.sum())} "
                            "rows are negative", float(monetary_value[negative][0]))
        population = self.population_mean_spend()  # raises ModelError when q <= 1
        x = frequency
        m = np.where(x > 0, monetary_value, 0.0)
        if self.limit_ == "common_spend":
            return np.full(x.shape, population)
        if self.limit_ == "steady_spend":
            return np.where(x > 0, m, population)
        p, q, g = self.fitted_params()
        return p * (g + x * m) / (p * x + q - 1.0)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Same as expected_spend."""
        return self.expected_spend(X)

    # ------------------------------------------------------------ serialisation
    @classmethod
    def from_dict(cls, data: dict) -> GammaGamma:
        """Rebuild a GammaGamma from `to_dict()` output, including models saved before format 2."""
        if isinstance(data, dict) and "format" not in data:
            data = _upgrade_format_1(check_description(data, "GammaGamma"))
        return super().from_dict(data)


def _upgrade_format_1(data: dict) -> dict:
    """A GammaGamma saved before format 2 (n_customers and the correlation beside the result) in format 2."""
    out = {"model": "GammaGamma", "format": FORMAT, "hyper_params": data.get("hyper_params", {})}
    fitted = data.get("fitted")
    if fitted is not None:
        state = ("n_customers", "frequency_monetary_correlation")
        out["fitted"] = {**{k: v for k, v in fitted.items() if k not in state},
                         "extra": {k: fitted[k] for k in state if k in fitted}}
    return out
