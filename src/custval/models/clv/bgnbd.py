"""BG/NBD purchase model (Fader, Hardie & Lee 2005, "Counting your customers the easy way").

While alive, a customer buys as a Poisson process with rate lambda ~ Gamma(r, rate alpha); after each
purchase they drop out with probability p ~ Beta(a, b). The data per customer are the number of repeat
purchases x (`frequency`), the time of the last one t_x (`recency`) and the age T (`T`), both in model
periods measured from the first purchase.

The fit maximises the exact likelihood (FHL eq. 6) with an analytic gradient. Predictions use the forms of
`custval.models.clv.special`, which stay finite and accurate where the textbook hypergeometric formulas break
down (a close to 1, a+b < 1 for one-time buyers, very large frequencies, very short or very long horizons).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy.special import digamma, expit, gammaln, xlogy
from scipy.stats import nbinom, poisson

from custval.errors import ConfigError, CustvalWarning, DataError, SchemaError
from custval.models.clv._base import FORMAT, MLEModel, check_description, check_discount_rate, check_number
from custval.models.clv._mle import (
    Candidate,
    Limit,
    MLEResult,
    at_boundary,
    choose_fit,
    compress_rows,
    fit_candidate,
    fit_mle,
    reparametrised,
)
from custval.models.clv.special import expected_alive, prob_n_purchases

PARAM_NAMES = ("r", "alpha", "a", "b")
COLUMNS = ("frequency", "recency", "T")
TABLE = "rfm"
MIN_CUSTOMERS = 10  # fewer cannot show how customers differ, which is what the 4 parameters describe

_CHUNK = 16384  # rows per block in the likelihood: temporaries stay in the CPU cache
_SUBSAMPLE = 50_000  # above this many distinct rows, starting values come from a fit on a subsample
_PATH_BLOCK = 1 << 18  # (row, horizon) entries per block of multi-horizon predictions: bounds temporaries
_TABLE_ENTRIES = 1 << 22  # per-customer rates: a (rates x horizons) discount table up to this size is precomputed


# --------------------------------------------------------------------------------------------- input
def _column(values: np.ndarray, column: str, index) -> np.ndarray:
    bad = ~np.isfinite(values)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise DataError(TABLE, column, f"must be finite (no NaN/inf); {int(bad.sum())} rows are not",
                        f"{values[first]} at index {index[first]!r}")
    negative = values < 0
    if negative.any():
        first = int(np.flatnonzero(negative)[0])
        raise DataError(TABLE, column, "must be >= 0", f"{values[first]} at index {index[first]!r}")
    return values


def rfm_arrays(X) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(frequency, recency, T) as float arrays from a DataFrame (extra columns ignored) or an (n, 3) array,
    after checking the rules of the RFM summary. Raises SchemaError / DataError naming the column."""
    if isinstance(X, pd.DataFrame):
        missing = [c for c in COLUMNS if c not in X.columns]
        if missing:
            raise SchemaError(TABLE, missing[0], "required column is missing", f"columns present: {list(X.columns)}")
        arrays = []
        for column in COLUMNS:
            series = X[column]
            if not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
                raise SchemaError(TABLE, column, "must be numeric", str(series.dtype))
            arrays.append(series.to_numpy(dtype=float, na_value=np.nan))
        index = X.index
    else:
        try:
            matrix = np.asarray(X, dtype=float)
        except (TypeError, ValueError) as exc:
            raise SchemaError(TABLE, "frequency", "an array input must be numeric with columns frequency, "
                              "recency, T", type(X).__name__) from exc
        if matrix.ndim != 2 or matrix.shape[1] != 3:
            raise SchemaError(TABLE, "frequency", "an array input must have shape (n, 3): frequency, recency, T",
                              matrix.shape)
        arrays = [matrix[:, j] for j in range(3)]
        index = pd.RangeIndex(matrix.shape[0])
    x, tx, T = (_column(v, c, index) for v, c in zip(arrays, COLUMNS, strict=True))
    fractional = x != np.floor(x)
    if fractional.any():
        first = int(np.flatnonzero(fractional)[0])
        raise DataError(TABLE, "frequency", "must be a whole number (count of repeat purchases)",
                        f"{x[first]} at index {index[first]!r}")
    late = tx > T * (1.0 + 1e-12) + 1e-12
    if late.any():
        first = int(np.flatnonzero(late)[0])
        raise DataError(TABLE, "recency", "must be <= T (the last purchase cannot follow the end of observation)",
                        f"recency={tx[first]}, T={T[first]} at index {index[first]!r}")
    orphan = (x == 0) & (tx > 0)
    if orphan.any():
        first = int(np.flatnonzero(orphan)[0])
        raise DataError(TABLE, "recency", "must be 0 when frequency is 0 (no repeat purchase to date)",
                        f"recency={tx[first]} at index {index[first]!r}")
    return x, np.minimum(tx, T), T


def _check_t(t, name: str = "t") -> np.ndarray:
    t = np.asarray(t, dtype=float)
    if not np.all(np.isfinite(t)) or np.any(t < 0):
        raise ConfigError(f"{name} must be finite and >= 0 (model periods), got {t if t.size < 10 else t[:10]}")
    return t


def _check_ts(ts) -> np.ndarray:
    """Horizons of a multi-horizon prediction: a non-empty 1-D sequence of finite t >= 0 (a scalar is one)."""
    ts = np.atleast_1d(_check_t(ts, "ts"))
    if ts.ndim != 1 or ts.size == 0:
        raise ConfigError(f"ts must be a non-empty 1-D sequence of horizons (model periods), got shape {ts.shape}")
    return ts


# ---------------------------------------------------------------------------------------- likelihood
def log_likelihood_rows(params, x, tx, T) -> np.ndarray:
    """Per-customer BG/NBD log-likelihood (FHL 2005 eq. 6), in log space so huge frequencies stay finite."""
    r, alpha, a, b = (float(v) for v in params)
    x, tx, T = (np.asarray(v, dtype=float) for v in (x, tx, T))
    repeat = x > 0
    base = (gammaln(r + x) - gammaln(r) + r * math.log(alpha)
            + gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
            - (r + x) * np.log(alpha + T))
    d = _log_odds_dead(r, alpha, a, b, x, tx, T)
    return base + np.where(repeat, np.logaddexp(0.0, d), 0.0)


def _log_odds_dead(r, alpha, a, b, x, tx, T) -> np.ndarray:
    """log of a/(b+x-1) * ((alpha+T)/(alpha+t_x))^(r+x): the odds that a repeat buyer is no longer alive."""
    return (math.log(a) - np.log(b + np.maximum(x, 1.0) - 1.0)
            + (r + x) * np.log1p((T - tx) / (alpha + tx)))


class NegLogLikelihood:
    """Weighted total negative log-likelihood and its analytic gradient over compressed rows.

    The terms that depend on x only are summed over distinct x, the -(r+x) ln(alpha+T) term over distinct T;
    only repeat buyers need per-row work: D = ln a - ln(b+x-1) + (r+x) ln(1 + (T-t_x)/(alpha+t_x)) enters as
    softplus(D), whose derivative is sigmoid(D). That work runs in cache-sized blocks.
    """

    def __init__(self, x, tx, T, w):
        x, tx, T, w = (np.asarray(v, dtype=float) for v in (x, tx, T, w))
        self.total_weight = float(w.sum())
        # hash-based grouping (no full sort of the rows)
        xcode, ux = pd.factorize(x, sort=True)
        self.ux, self.wx = ux, np.bincount(xcode, weights=w, minlength=ux.size)
        Tcode, uT = pd.factorize(T, sort=False)
        self.uT = uT
        self.wT = np.bincount(Tcode, weights=w, minlength=uT.size)
        self.xwT = np.bincount(Tcode, weights=w * x, minlength=uT.size)
        # repeat buyers ordered by x (codes are in x order; small int codes get numpy's radix sort)
        rep = np.flatnonzero(x > 0)
        rep_code = xcode[rep] - int(ux[0] == 0)
        key = rep_code.astype(np.int16) if ux.size < 2**15 else rep_code
        by_x = np.argsort(key, kind="stable")
        order = rep[by_x]
        self.pcode = rep_code[by_x].astype(np.intp)
        self.upx = ux[ux > 0]
        counts = np.bincount(self.pcode, minlength=self.upx.size)
        self.seg_starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.intp)
        self.xp, self.tx, self.w = x[order], tx[order], w[order]
        self.dT = T[order] - self.tx
        self.n_rows = order.size
        self.n_evaluations = 0
        self._ws = np.empty(self.n_rows)
        size = min(_CHUNK, max(self.n_rows, 1))
        self._buf = [np.empty(size) for _ in range(6)]

    def __call__(self, params: np.ndarray) -> tuple[float, np.ndarray]:
        # the optimiser may probe extreme points (b -> 0, ...): an inf/NaN there is a valid answer, not a warning
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            return self._evaluate(params)

    def nbd_terms(self, r: float, alpha: float) -> tuple[float, float, float]:
        """The log-likelihood without dropout (the NBD model: ln G(r+x) - ln G(r) + r ln alpha - (r+x) ln(alpha+T)
        summed over customers, A1 of FHL's section 7) and its gradient in r and alpha: O(distinct x + distinct T)."""
        W = self.total_weight
        log_alpha = math.log(alpha)
        rx_T = r * self.wT + self.xwT
        log_aT = np.log(alpha + self.uT)
        ll = float(self.wx @ gammaln(r + self.ux)) + W * (r * log_alpha - gammaln(r)) - float(rx_T @ log_aT)
        g_r = float(self.wx @ digamma(r + self.ux)) + W * (log_alpha - digamma(r)) - float(self.wT @ log_aT)
        g_alpha = W * r / alpha - float(np.sum(rx_T / (alpha + self.uT)))
        return ll, g_r, g_alpha

    def _evaluate(self, params: np.ndarray) -> tuple[float, np.ndarray]:
        self.n_evaluations += 1
        if not _inside(params):  # e.g. a parameter underflowed to 0
            return math.inf, np.full(4, np.nan)
        r, alpha, a, b = (float(v) for v in params)
        ux, wx = self.ux, self.wx
        W = self.total_weight
        ll, g_r, g_alpha = self.nbd_terms(r, alpha)
        # the dropout's terms in x only (A2 of FHL's section 7 notation)
        ll += float(wx @ (gammaln(b + ux) - gammaln(a + b + ux))) + W * (gammaln(a + b) - gammaln(b))
        psi_ab = digamma(a + b)
        psi_abx = digamma(a + b + ux)
        g_a = float(wx @ (psi_ab - psi_abx))
        g_b = float(wx @ (digamma(b + ux) - psi_abx)) + W * (psi_ab - digamma(b))
        # softplus(D) for repeat buyers
        c_x = math.log(a) - np.log(b + self.upx - 1.0)
        sp_sum = ws_sum = ws_delta = ws_k_v = 0.0
        ws_all = self._ws
        b1, b2, b3, b4, b5, b6 = self._buf
        for start in range(0, self.n_rows, _CHUNK):
            stop = min(start + _CHUNK, self.n_rows)
            m = stop - start
            u, delta, v, k, d, e = b1[:m], b2[:m], b3[:m], b4[:m], b5[:m], b6[:m]
            dT = self.dT[start:stop]
            np.add(self.tx[start:stop], alpha, out=v)  # alpha + t_x
            np.divide(dT, v, out=u)  # (T - t_x) / (alpha + t_x)
            np.log1p(u, out=delta)  # ln((alpha + T) / (alpha + t_x))
            np.add(v, dT, out=v)  # alpha + T
            np.divide(u, v, out=v)  # -d delta / d alpha
            np.add(self.xp[start:stop], r, out=k)
            np.multiply(k, delta, out=d)
            np.take(c_x, self.pcode[start:stop], out=e)
            np.add(d, e, out=d)
            w = self.w[start:stop]
            ws = ws_all[start:stop]
            if d.max() < 700.0:
                np.exp(d, out=e)
                np.add(e, 1.0, out=u)
                np.divide(e, u, out=ws)  # sigmoid(D)
                np.log(u, out=e)  # softplus(D)
            else:  # some D would overflow exp: the two-sided stable forms
                np.abs(d, out=e)
                np.negative(e, out=e)
                np.exp(e, out=e)  # exp(-|D|)
                np.add(e, 1.0, out=u)
                np.divide(np.where(d >= 0, 1.0, e), u, out=ws)
                np.log(u, out=u)
                np.maximum(d, 0.0, out=e)
                np.add(e, u, out=e)
            sp_sum += float(w @ e)
            np.multiply(ws, w, out=ws)
            ws_sum += float(ws.sum())
            ws_delta += float(ws @ delta)
            np.multiply(ws, k, out=k)
            ws_k_v += float(k @ v)
        ll += sp_sum
        g_r += ws_delta
        g_alpha -= ws_k_v
        g_a += ws_sum / a
        if self.n_rows:
            g_b -= float(np.add.reduceat(ws_all, self.seg_starts) @ (1.0 / (b + self.upx - 1.0)))
        return -ll, -np.array([g_r, g_alpha, g_a, g_b])


def _inside(params) -> bool:
    """Parameters inside the model (the Hessian's finite differences may step past 0)."""
    return bool(np.all(np.isfinite(params) & (np.asarray(params) > 0)))


class NBDNegLogLikelihood:
    """The limit a -> 0 (nobody drops out, the NBD model): negative log-likelihood and gradient in (r, alpha)."""

    def __init__(self, full: NegLogLikelihood):
        self.full = full

    def __call__(self, params: np.ndarray) -> tuple[float, np.ndarray]:
        if not _inside(params):
            return math.inf, np.full(2, np.nan)
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            ll, g_r, g_alpha = self.full.nbd_terms(*(float(v) for v in params))
        return -ll, -np.array([g_r, g_alpha])


class FirstRepeatNegLogLikelihood:
    """The limit a, b -> 0 with a / (a + b) = pi: a share pi of customers drops out at its first repeat purchase,
    the rest never do. In (r, alpha, odds = pi / (1 - pi)), per customer the NBD term plus
        x >= 1: ln(1 - pi);   x = 1: + softplus(ln odds + (r + 1) ln((alpha + T) / (alpha + t_x))).
    """

    def __init__(self, full: NegLogLikelihood):
        self.full = full
        one = full.xp == 1.0
        self.tx, self.dT, self.w = full.tx[one], full.dT[one], full.w[one]
        self.repeat_weight = float(full.w.sum())  # customers with x >= 1

    def __call__(self, params: np.ndarray) -> tuple[float, np.ndarray]:
        if not _inside(params):
            return math.inf, np.full(3, np.nan)
        r, alpha, odds = (float(v) for v in params)
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            ll, g_r, g_alpha = self.full.nbd_terms(r, alpha)
            u = self.dT / (alpha + self.tx)  # (T - t_x) / (alpha + t_x)
            delta = np.log1p(u)  # ln((alpha + T) / (alpha + t_x))
            d = math.log(odds) + (r + 1.0) * delta
            weighted = self.w * expit(d)
            ll += float(self.w @ np.logaddexp(0.0, d)) - self.repeat_weight * math.log1p(odds)
            g_r += float(weighted @ delta)
            g_alpha -= (r + 1.0) * float(weighted @ (u / (alpha + self.tx + self.dT)))
            g_odds = float(weighted.sum()) / odds - self.repeat_weight / (1.0 + odds)
        return -ll, -np.array([g_r, g_alpha, g_odds])


class PoissonNegLogLikelihood:
    """The limit r, alpha -> infinity with r / alpha = lambda and a -> 0: one purchase rate for everybody, no
    dropout; per customer x ln(lambda) - lambda T."""

    def __init__(self, full: NegLogLikelihood):
        self.purchases = float(full.wx @ full.ux)
        self.exposure = float(full.wT @ full.uT)

    def __call__(self, params: np.ndarray) -> tuple[float, np.ndarray]:
        if not _inside(params):
            return math.inf, np.full(1, np.nan)
        lam = float(params[0])
        return (self.exposure * lam - self.purchases * math.log(lam),
                np.array([self.exposure - self.purchases / lam]))


# --------------------------------------------------------------------------------------- limiting models
NO_DROPOUT = "a -> 0: no customer drops out"
LIMITS = {
    "nbd": Limit("nbd", ("r", "alpha"), (("a", 0.0, f"nbd: {NO_DROPOUT}"),
                                         ("b", math.nan, "nbd: not identified without dropout")), penalizable=True),
    "first_repeat_dropout": Limit(
        "first_repeat_dropout", ("r", "alpha", "pi"),
        (("a", 0.0, "first_repeat_dropout: a, b -> 0 with a / (a + b) = pi: a share pi drops out at its first "
                    "repeat purchase, the others never"),
         ("b", 0.0, "first_repeat_dropout: see a")), penalizable=True, shares=("pi",)),
    "poisson": Limit("poisson", ("lambda",), (
        ("r", math.inf, "poisson: r, alpha -> infinity with r / alpha = lambda: one purchase rate for everybody"),
        ("alpha", math.inf, "poisson: see r"), ("a", 0.0, f"poisson: {NO_DROPOUT}"),
        ("b", math.nan, "poisson: not identified without dropout")), penalizable=False),
}


def limit_warning(limit: str, params: dict[str, float]) -> str:
    """What a fitted limit means, in business terms (one sentence, numbers in model units)."""
    if limit == "nbd":
        return ("BetaGeo: no customer has been seen to drop out, so BG/NBD reduces to NBD (a -> 0, dropout "
                f"probability 0; r={params['r']:.4g}, alpha={params['alpha']:.4g}): every customer is alive until "
                "more history shows dropout, P(alive) = 1 for everyone and expected purchases grow in proportion "
                "to the horizon.")
    if limit == "first_repeat_dropout":
        return (f"BetaGeo: the only dropout the data show is at the first repeat purchase (a, b -> 0): a share "
                f"pi={params['pi']:.4g} of customers stop after their first repeat purchase and the rest never drop "
                "out, so P(alive) is below 1 only for customers with exactly one repeat purchase.")
    return ("BetaGeo: customers do not differ in purchase rate and none has been seen to drop out, so BG/NBD "
            f"reduces to a Poisson process with one rate lambda={params['lambda']:.4g} purchases per period for "
            "everyone (r, alpha -> infinity, a -> 0): P(alive) = 1 and every customer's expected purchases are "
            "lambda * t, whatever their history.")


# ------------------------------------------------------------------------------------ fitted processes
class FullProcess(NamedTuple):
    """BG/NBD at (r, alpha, a, b): what the predictions need, for customers with history (x, t_x, T) (a new
    customer is x = 0, T = 0). `alive` and `pmf_alive` are for a customer alive now and broadcast."""

    r: float
    alpha: float
    a: float
    b: float

    def log_p_alive(self, x, tx, T) -> np.ndarray:
        d = _log_odds_dead(*self, x, tx, T)
        return np.where(x > 0, -np.logaddexp(0.0, d), 0.0)

    def alive(self, t, x, T) -> np.ndarray:
        """Expected purchases in the next t periods (FHL eq. 10's conditional part)."""
        return expected_alive(t / (self.alpha + T), self.r + x, self.b + x, self.a)

    def pmf_alive(self, n, t, x, T) -> np.ndarray:
        """P(n purchases in the next t periods): eq. 8 at the posterior parameters."""
        return prob_n_purchases(n, t, self.r + x, self.alpha + T, self.a, self.b + x)

    def log_likelihood(self, x, tx, T) -> np.ndarray:
        return log_likelihood_rows(self, x, tx, T)


def _nbd_log_likelihood(r, alpha, x, T) -> np.ndarray:
    return gammaln(r + x) - gammaln(r) + r * math.log(alpha) - (r + x) * np.log(alpha + T)


class NBDProcess(NamedTuple):
    """The NBD limit (a -> 0): everybody alive, a Gamma(r + x, rate alpha + T) purchase rate."""

    r: float
    alpha: float

    def log_p_alive(self, x, tx, T) -> np.ndarray:
        return np.zeros(np.broadcast_shapes(np.shape(x), np.shape(tx), np.shape(T)))

    def alive(self, t, x, T) -> np.ndarray:
        return (self.r + x) * (t / (self.alpha + T))

    def pmf_alive(self, n, t, x, T) -> np.ndarray:
        A = self.alpha + T
        return nbinom.pmf(n, self.r + x, A / (A + t))

    def log_likelihood(self, x, tx, T) -> np.ndarray:
        return _nbd_log_likelihood(self.r, self.alpha, x, T)


class FirstRepeatProcess(NamedTuple):
    """The limit a, b -> 0 with a / (a + b) = pi: dropout probability 1 for a share pi of customers, 0 for the
    rest. A customer with x >= 1 who is alive never drops out; one with x = 0 drops out after their next purchase
    with probability pi."""

    r: float
    alpha: float
    pi: float

    def _log_odds_dead(self, tx, T) -> np.ndarray:
        return math.log(self.pi) - math.log1p(-self.pi) + (self.r + 1.0) * np.log1p((T - tx) / (self.alpha + tx))

    def log_p_alive(self, x, tx, T) -> np.ndarray:
        return np.where(x == 1, -np.logaddexp(0.0, self._log_odds_dead(tx, T)), 0.0)

    def alive(self, t, x, T) -> np.ndarray:
        s = t / (self.alpha + T)
        staying = (self.r + x) * s
        at_most_one = -np.expm1(-self.r * np.log1p(s))  # P(a purchase in t): then the leaver is gone
        return np.where(x == 0, self.pi * at_most_one + (1.0 - self.pi) * staying, staying)

    def pmf_alive(self, n, t, x, T) -> np.ndarray:
        A = self.alpha + T
        staying = nbinom.pmf(n, self.r + x, A / (A + t))
        none = np.exp(-self.r * np.log1p(t / A))
        leaving = np.where(n == 0, none, np.where(n == 1, 1.0 - none, 0.0))
        return np.where(x == 0, self.pi * leaving + (1.0 - self.pi) * staying, staying)

    def log_likelihood(self, x, tx, T) -> np.ndarray:
        repeat = np.where(x >= 1, math.log1p(-self.pi), 0.0)
        first = np.where(x == 1, np.logaddexp(0.0, self._log_odds_dead(tx, T)), 0.0)
        return _nbd_log_likelihood(self.r, self.alpha, x, T) + repeat + first


class PoissonProcess(NamedTuple):
    """The Poisson limit: one rate lambda for everybody, nobody drops out; the history tells nothing new."""

    lam: float

    def log_p_alive(self, x, tx, T) -> np.ndarray:
        return np.zeros(np.broadcast_shapes(np.shape(x), np.shape(tx), np.shape(T)))

    def alive(self, t, x, T) -> np.ndarray:
        t, _, _ = np.broadcast_arrays(np.asarray(t, dtype=float), x, T)
        return self.lam * t

    def pmf_alive(self, n, t, x, T) -> np.ndarray:
        n, t, _, _ = np.broadcast_arrays(n, t, x, T)
        return poisson.pmf(n, self.lam * t)

    def log_likelihood(self, x, tx, T) -> np.ndarray:
        return xlogy(x, self.lam) - self.lam * T


PROCESSES = {None: FullProcess, "nbd": NBDProcess, "first_repeat_dropout": FirstRepeatProcess,
             "poisson": PoissonProcess}


# ---------------------------------------------------------------------------------------- predictions
def _unique_x_T(x, T) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (frequency, T) pairs and each row's pair code. A living customer's conditional purchases depend
    on the history only through x and T (recency enters through P(alive) alone), and a real customer base
    has far fewer distinct pairs than customers (1M simulated daily customers: ~16k)."""
    (ux, uT), _, codes = compress_rows(x, T)
    return ux, uT, codes


def _alive_path_blocks(process, ux, uT, ts):
    """Yield (start, stop, E) over blocks of the rows of (ux, uT): E[i, j] is the expected number of purchases
    in the next ts[j] periods of a customer alive now with frequency ux[start + i] and age uT[start + i]
    (the same `process.alive` evaluation as `BetaGeo.expected_purchases`, entry by entry)."""
    rows = max(1, _PATH_BLOCK // ts.size)
    for start in range(0, ux.size, rows):
        stop = min(start + rows, ux.size)
        yield start, stop, process.alive(ts, ux[start:stop, None], uT[start:stop, None])


def _increments(E: np.ndarray) -> np.ndarray:
    """Per-step expected purchases E(t_j) - E(t_{j-1}) along the last axis, with E(t_{-1}) = 0."""
    out = np.empty_like(E)
    out[:, 0] = E[:, 0]
    np.subtract(E[:, 1:], E[:, :-1], out=out[:, 1:])
    return out


def _discounted_alive_path(process, ux, uT, codes, ts, rate) -> tuple[np.ndarray, np.ndarray]:
    """Per customer, for a living customer: (sum_j [E(ts_j) - E(ts_{j-1})] (1 + rate)^-ts_j, E(ts[-1])).

    Both are computed on the distinct (x, T) rows, or on the distinct (x, T, rate) rows when the rate varies
    by customer, block by block (no customers x horizons matrix), and gathered back to the customers."""
    if rate.ndim == 0:
        discount = (1.0 + float(rate)) ** -ts
        weighted = np.empty(ux.size)
        last = np.empty(ux.size)
        for start, stop, E in _alive_path_blocks(process, ux, uT, ts):
            weighted[start:stop] = _increments(E) @ discount
            last[start:stop] = E[:, -1]
        return weighted[codes], last[codes]

    rate_codes, rates = pd.factorize(rate, sort=False)
    (pair_row, pair_rate), _, pair_codes = compress_rows(codes, rate_codes)
    order = np.argsort(pair_row, kind="stable")  # pairs grouped by (x, T) row, so each block's are contiguous
    pair_row, pair_rate = pair_row[order], pair_rate[order]
    table = (1.0 + rates[:, None]) ** -ts if rates.size * ts.size <= _TABLE_ENTRIES else None
    weighted = np.empty(pair_row.size)
    last = np.empty(ux.size)
    pairs_per_chunk = max(1, _PATH_BLOCK // ts.size)
    for start, stop, E in _alive_path_blocks(process, ux, uT, ts):
        dE = _increments(E)
        last[start:stop] = E[:, -1]
        lo, hi = np.searchsorted(pair_row, [start, stop])
        for p0 in range(lo, hi, pairs_per_chunk):
            p1 = min(p0 + pairs_per_chunk, hi)
            g = pair_rate[p0:p1]
            discount = table[g] if table is not None else (1.0 + rates[g, None]) ** -ts
            weighted[p0:p1] = np.einsum("pj,pj->p", dE[pair_row[p0:p1] - start], discount)
    by_pair = np.empty(pair_row.size)
    by_pair[order] = weighted
    return by_pair[pair_codes], last[codes]


def _check_n(n) -> np.ndarray:
    n = np.asarray(n, dtype=float)
    if not np.all(np.isfinite(n)) or np.any(n < 0) or np.any(n != np.floor(n)):
        raise ConfigError(f"n must be whole numbers >= 0 (purchase counts), got {n if n.size < 10 else n[:10]}")
    return n


# ------------------------------------------------------------------------------------------- estimator
class ValueComponents(NamedTuple):
    """Per customer, from one pass over the distinct histories (see `BetaGeo.value_components`)."""

    p_alive: np.ndarray
    discounted_purchases_if_alive: np.ndarray  # sum_j [E(ts_j) - E(ts_{j-1})] (1 + rate)^-ts_j, if alive now
    purchases_if_alive: np.ndarray  # expected purchases in the next ts[-1] periods, if alive now


class BetaGeo(MLEModel):
    """BG/NBD model of repeat purchases, fitted by maximum likelihood.

    When the likelihood is highest on a boundary of the parameter space, the fit is that limiting model
    (`limit_`, with a CustvalWarning saying what it means): "nbd" (a -> 0: nobody drops out; free r, alpha),
    "first_repeat_dropout" (a, b -> 0: a share pi drops out at its first repeat purchase, the rest never; free
    r, alpha, pi) or, without a penalizer, "poisson" (also r, alpha -> infinity: one rate lambda for all).
    Its predictions are the limiting model's, `params_` and `standard_errors_` its free parameters.

    penalizer: L2 penalty on (r, alpha, a, b) added to the mean negative log-likelihood, with alpha measured
    in units of the longest T, exactly as lifetimes' `penalizer_coef`.
    tol: gradient tolerance of the optimiser (in log-parameters).
    prediction_horizon: t (model periods) used by `predict`.
    """

    PARAM_NAMES = PARAM_NAMES
    FIT_STATE = ("n_customers", "n_unique_rows")
    LIMITS = LIMITS

    def __init__(self, penalizer: float = 0.0, tol: float = 1e-10, prediction_horizon: float = 1.0):
        self.penalizer = penalizer
        self.tol = tol
        self.prediction_horizon = prediction_horizon

    @property
    def n_unique_rows_(self) -> int:
        """Distinct (frequency, recency, T) rows the likelihood was evaluated on."""
        return int(self.fitted_result().extra["n_unique_rows"])

    # --------------------------------------------------------------------------------- fitting
    def check_params(self) -> BetaGeo:
        """ConfigError naming the first invalid parameter; returns self."""
        check_number("penalizer", self.penalizer, minimum=0)
        check_number("tol", self.tol, minimum=0, exclusive_minimum=True)
        check_number("prediction_horizon", self.prediction_horizon, minimum=0)
        return self

    def fit(self, X, y=None, sample_weight=None) -> BetaGeo:
        """Fit on X (frequency, recency, T); sample_weight counts customers per row (like lifetimes' weights)."""
        self.check_params()
        x, tx, T = rfm_arrays(X)
        if x.size == 0:
            raise DataError(TABLE, "frequency", "no customers to fit: the table is empty", 0)
        if sample_weight is None:
            weight = np.ones_like(x)
        else:
            weight = np.asarray(sample_weight, dtype=float).reshape(-1)
            if weight.shape != x.shape:
                raise ConfigError(f"sample_weight must have one value per row ({x.size}), got shape {weight.shape}")
            if not np.all(np.isfinite(weight)) or np.any(weight < 0):
                raise ConfigError("sample_weight must be finite and >= 0")
            keep = weight > 0
            x, tx, T, weight = x[keep], tx[keep], T[keep], weight[keep]
            if x.size == 0:
                raise DataError(TABLE, "frequency", "no customers to fit: all sample weights are 0", 0)
        if not np.any(x > 0):
            raise DataError(TABLE, "frequency", "BG/NBD needs repeat buyers (frequency > 0) to fit; every row has "
                            "frequency 0", 0.0)
        if np.max(T) <= 0:
            raise DataError(TABLE, "T", "must be > 0 for some customers (all customers have age 0)", 0.0)
        n_customers = float(weight.sum())
        if n_customers < MIN_CUSTOMERS:
            raise DataError(TABLE, "frequency", f"BG/NBD needs at least {MIN_CUSTOMERS} customers to fit (its 4 "
                            f"parameters describe how customers differ), got {n_customers:.6g}",
                            int(n_customers) if n_customers.is_integer() else n_customers)

        (ux, utx, uT), counts, _ = _compress(x, tx, T, weight)
        scale = 1.0 / float(np.max(uT))  # as lifetimes: fit in units of the longest T
        result = _fit_scaled(ux, utx * scale, uT * scale, counts, float(self.penalizer), float(self.tol), scale)
        # back to model periods: alpha scales with time, lambda (a rate) inversely, the others are dimensionless
        to_periods = _to_periods(result.names, scale)
        # rescaling time by c shifts each customer's log-likelihood by -x ln(c)
        log_likelihood = result.log_likelihood + math.log(scale) * float(counts @ ux)
        self.result_ = dataclasses.replace(
            result, params=result.params * to_periods, covariance=result.covariance * np.outer(to_periods, to_periods),
            standard_errors=result.standard_errors * to_periods, log_likelihood=log_likelihood,
            extra={**result.extra, "n_customers": int(n_customers) if n_customers.is_integer() else n_customers,
                   "n_unique_rows": int(ux.size)},
        )
        if result.limit is not None:
            warnings.warn(limit_warning(result.limit, self.params_), CustvalWarning, stacklevel=2)
        return self

    def _process(self):
        """The fitted purchase process: the full BG/NBD or the limit the fit chose."""
        result = self.fitted_result()
        return PROCESSES[result.limit](*(float(v) for v in result.params))

    # ----------------------------------------------------------------------------- predictions
    def p_alive(self, X) -> np.ndarray:
        """Probability that each customer is still alive at T (FHL note 021), computed in log space."""
        process = self._process()
        x, tx, T = rfm_arrays(X)
        return np.exp(process.log_p_alive(x, tx, T))

    def expected_purchases(self, X, t) -> np.ndarray:
        """Expected number of purchases in the next t periods given each customer's history (FHL eq. 10).

        t is one horizon (then the conditional part is evaluated once per distinct (frequency, T) row) or an
        array broadcast against the customers (e.g. one horizon each)."""
        process = self._process()
        x, tx, T = rfm_arrays(X)
        t = _check_t(t)
        alive = np.exp(process.log_p_alive(x, tx, T))
        if t.ndim == 0:
            ux, uT, codes = _unique_x_T(x, T)
            return alive * process.alive(t, ux, uT)[codes]
        return alive * process.alive(t, x, T)

    def expected_purchases_path(self, X, ts) -> np.ndarray:
        """(n customers, len(ts)) matrix: column j is `expected_purchases(X, ts[j])`, in one pass.

        X is validated once, P(alive) computed once, and the conditional part evaluated once per distinct
        (frequency, T) row and horizon. The result holds n x len(ts) floats: for a discounted sum over many
        horizons use `discounted_expected_purchases`, which never builds it."""
        process = self._process()
        x, tx, T = rfm_arrays(X)
        ts = _check_ts(ts)
        alive = np.exp(process.log_p_alive(x, tx, T))
        ux, uT, codes = _unique_x_T(x, T)
        E = np.empty((ux.size, ts.size))
        for start, stop, block in _alive_path_blocks(process, ux, uT, ts):
            E[start:stop] = block
        out = E[codes]
        out *= alive[:, None]
        return out

    def discounted_expected_purchases(self, X, ts, period_rate=0.0) -> np.ndarray:
        """Per customer: sum_j [E(ts_j) - E(ts_{j-1})] * (1 + period_rate)^(-ts_j), with E(t) =
        `expected_purchases(X, t)` and E(ts_{-1}) = 0: the expected purchases of each step (ts_{j-1}, ts_j]
        discounted to now from the step's end. ts: step ends in model periods (usually increasing);
        period_rate: discount rate per model period, one number or one per customer, > -1.

        Equals the sum over steps of `expected_purchases` differences, but X is validated once and the
        conditional part is evaluated on distinct (frequency, T) rows (with the rate when it varies), in
        blocks, so memory stays bounded for any number of customers and steps."""
        parts = self.value_components(X, ts, period_rate)
        return parts.p_alive * parts.discounted_purchases_if_alive

    def value_components(self, X, ts, period_rate=0.0) -> ValueComponents:
        """P(alive), the discounted expected purchases of `discounted_expected_purchases` if alive, and the
        expected purchases over the last horizon ts[-1] if alive, from one pass over the customers (what a
        CLV needs: the discounted value and the purchases over its horizon)."""
        process = self._process()
        x, tx, T = rfm_arrays(X)
        ts = _check_ts(ts)
        rate = np.asarray(check_discount_rate("period_rate", period_rate, x.size))
        alive = np.exp(process.log_p_alive(x, tx, T))
        ux, uT, codes = _unique_x_T(x, T)
        weighted, last = _discounted_alive_path(process, ux, uT, codes, ts, rate)
        return ValueComponents(alive, weighted, last)

    def expected_purchases_new(self, t) -> np.ndarray | float:
        """E[X(t)]: expected repeat purchases in the first t periods of a new customer (FHL eq. 9)."""
        process = self._process()
        t = _check_t(t)
        out = process.alive(t, 0.0, 0.0)
        return float(out) if out.ndim == 0 else out

    def probability_of_n_purchases(self, n, t, X=None) -> np.ndarray | float:
        """P(X(t) = n) for a new customer (FHL eq. 8) if X is None; otherwise, per customer of X, the
        probability of exactly n purchases in the next t periods given their history: P(alive) times eq. 8
        at the posterior parameters (r+x, alpha+T, a, b+x), plus P(dead) when n = 0."""
        process = self._process()
        n = _check_n(n)
        t = _check_t(t)
        if X is None:
            out = process.pmf_alive(n, t, 0.0, 0.0)
            return float(out) if out.ndim == 0 else out
        x, tx, T = rfm_arrays(X)
        alive = np.exp(process.log_p_alive(x, tx, T))
        fresh = process.pmf_alive(n, t, x, T)
        return alive * fresh + np.where(n == 0, 1.0 - alive, 0.0)

    def predict(self, X) -> np.ndarray:
        """Expected purchases in the next `prediction_horizon` periods."""
        return self.expected_purchases(X, self.prediction_horizon)

    def score_samples(self, X) -> np.ndarray:
        """Log-likelihood of each customer's history under the fitted model."""
        process = self._process()
        x, tx, T = rfm_arrays(X)
        return process.log_likelihood(x, tx, T)

    def score(self, X, y=None) -> float:
        """Mean log-likelihood per customer (higher is better)."""
        return float(np.mean(self.score_samples(X)))

    # --------------------------------------------------------------------------- serialisation
    @classmethod
    def from_dict(cls, data: dict) -> BetaGeo:
        """Rebuild a BetaGeo from `to_dict()` output, including models saved before format 2."""
        if isinstance(data, dict) and "format" not in data:
            data = _upgrade_format_1(check_description(data, "BetaGeo"))
        return super().from_dict(data)


def _upgrade_format_1(data: dict) -> dict:
    """A BetaGeo saved before format 2 (top-level params/standard_errors dicts and "hyper") in format 2."""
    try:
        params = [float(data["params"][k]) for k in PARAM_NAMES]
        se = [float(data["standard_errors"][k]) for k in PARAM_NAMES]
        fitted = {
            "names": list(PARAM_NAMES), "params": params, "standard_errors": se,
            "covariance": data.get("covariance", np.diag(np.square(se)).tolist()),
            "log_likelihood": data["log_likelihood"], "converged": data.get("converged", True),
            "n_iter": data.get("n_iter", 0), "message": data.get("message", ""),
            "gradient_norm": data.get("gradient_norm"),
            "extra": {"n_customers": data["n_customers"], "n_unique_rows": data.get("n_unique_rows", 0)},
        }
        return {"model": "BetaGeo", "format": FORMAT, "hyper_params": data["hyper"], "fitted": fitted}
    except (KeyError, TypeError) as exc:
        raise ConfigError(f"incomplete BetaGeo description: missing {exc}") from exc


# ------------------------------------------------------------------------------------------ fitting
def _compress(x, tx, T, weight):
    (ux, utx, uT), _, codes = compress_rows(x, tx, T)
    counts = np.bincount(codes, weights=weight, minlength=ux.size)
    return (ux, utx, uT), counts, codes


def _to_periods(names, scale: float) -> np.ndarray:
    """Factors from time units of the longest T to model periods: alpha is a time, lambda a rate."""
    return np.array([{"alpha": 1.0 / scale, "lambda": scale}.get(name, 1.0) for name in names])


def _starts(x, tx, T, w) -> list[np.ndarray]:
    """Starting points in time units of the longest T: a moment-style guess, then lifetimes' default."""
    rate = float(w @ x) / max(float(w @ T), 1e-12)  # repeat purchases per unit of age
    r = 1.0
    guess = np.array([r, r / max(rate, 1e-6), 1.0, 3.0])
    return [guess, np.full(4, math.exp(0.1))]


def _fit_full(nll: NegLogLikelihood, starts, penalizer, tol, scale, *, first: bool) -> Candidate:
    """The full BG/NBD from each start: the best converged fit (the first one when `first`: large data, each
    full fit is expensive); if none converged, the last failure with the lowest objective any start reached."""
    best, failures = None, []
    for start in starts:
        candidate = fit_candidate(None, lambda start=start: fit_mle(
            nll, start, PARAM_NAMES, total_weight=nll.total_weight, penalizer=penalizer, tol=tol, model="BetaGeo",
            unit_scale=_to_periods(PARAM_NAMES, scale)), total_weight=nll.total_weight, penalizer=penalizer)
        if candidate.result is None:
            failures.append(candidate)
            continue
        if first:
            return candidate
        if best is None or candidate.result.log_likelihood > best.result.log_likelihood:
            best = candidate
    if best is not None:
        return best
    return Candidate(None, None, min(c.objective for c in failures), failures[-1].failure)


def _fit_limits(nll: NegLogLikelihood, guess: np.ndarray, penalizer, tol, scale) -> list[Candidate]:
    """Each limiting model a penalised fit can reach (all of them without a penalty), fitted by maximum
    likelihood in its free parameters, from the moment-style guess of r and alpha."""

    def candidate(name: str, likelihood, starts, penalized=None, to_model=None) -> Candidate | None:
        limit = LIMITS[name]
        if penalizer > 0 and not limit.penalizable:
            return None
        tried = None
        for start in starts:
            def fit(start=start):
                result = fit_mle(likelihood, start, limit.names, total_weight=nll.total_weight,
                                 penalizer=penalizer, tol=tol, model=f"BetaGeo ({name} limit)",
                                 unit_scale=_to_periods(limit.names, scale), penalized=penalized)
                result = dataclasses.replace(result, limit=name)
                return result if to_model is None else to_model(result)

            tried = fit_candidate(limit, fit, total_weight=nll.total_weight, penalizer=penalizer,
                                  penalized=penalized)
            if tried.result is not None:
                break
        return tried

    nbd = candidate("nbd", NBDNegLogLikelihood(nll), [guess[:2], np.full(2, math.exp(0.1))])
    r_alpha = nbd.result.params if nbd.result is not None else guess[:2]

    def odds_to_share(result: MLEResult) -> MLEResult:
        r, alpha, odds = result.params
        return reparametrised(result, result.names, [r, alpha, odds / (1.0 + odds)], [1.0, 1.0, (1.0 + odds) ** -2])

    rate = PoissonNegLogLikelihood(nll)
    first_repeat = candidate("first_repeat_dropout", FirstRepeatNegLogLikelihood(nll),
                             [np.r_[r_alpha, 0.1], np.r_[guess[:2], 0.1]], penalized=np.array([True, True, False]),
                             to_model=odds_to_share)  # pi is not penalised: it stands for a, b -> 0
    found = [nbd, first_repeat, candidate("poisson", rate, [np.array([rate.purchases / rate.exposure])])]
    return [c for c in found if c is not None]


def _fit_scaled(x, tx, T, w, penalizer, tol, scale) -> MLEResult:
    """Fit in time units of the longest T: the full model and, when it has no maximum or its optimum lies
    towards a boundary, its limits; the best of them (`choose_fit`).
    Large inputs start the full model from the optimum of a 50k-customer subsample, so the full-data
    optimiser needs only a few iterations."""
    starts = _starts(x, tx, T, w)
    guess = starts[0]
    large = x.size > _SUBSAMPLE
    if large:
        rng = np.random.default_rng(0)
        draws = rng.choice(x.size, size=_SUBSAMPLE, p=w / w.sum())
        counts = np.bincount(draws, minlength=x.size).astype(float)
        keep = counts > 0
        # a starting point only: a looser tolerance saves the iterations spent polishing it
        sub = _fit_full(NegLogLikelihood(x[keep], tx[keep], T[keep], counts[keep]), starts, penalizer,
                        max(tol, 1e-7), scale, first=True)
        if sub.result is not None:
            starts = [sub.result.params, *starts]
    nll = NegLogLikelihood(x, tx, T, w)
    full = _fit_full(nll, starts, penalizer, tol, scale, first=large)
    limits = _fit_limits(nll, guess, penalizer, tol, scale) if at_boundary(full, guess) else []
    chosen = choose_fit([full, *limits], nll.total_weight)
    if chosen.limit is None:
        return dataclasses.replace(chosen.result, extra={**chosen.result.extra, "n_evaluations": nll.n_evaluations})
    return chosen.result
