"""BG/NBD purchase model (Fader, Hardie & Lee 2005, "Counting your customers the easy way").

While alive, a customer buys as a Poisson process with rate lambda ~ Gamma(r, rate alpha); after each
purchase they drop out with probability p ~ Beta(a, b). The data per customer are the number of repeat
purchases x (`frequency`), the time of the last one t_x (`recency`) and the age T (`T`), both in model
periods measured from the first purchase.

The fit maximises the exact likelihood (FHL eq. 6) with an analytic gradient. Predictions use forms that
stay finite and accurate where the textbook hypergeometric formulas break down: a close to 1 (the
(a+b+x-1)/(a-1) factor is 0/0), a+b < 1 for one-time buyers (hypergeometric c <= 0), very large frequencies
and very short or very long horizons. The tests check the ordinary range against lifetimes 0.11.3 and the
hard regions against adaptive quadrature of the defining integrals.
"""

from __future__ import annotations

import dataclasses
import math
import numbers

import numpy as np
import pandas as pd
from scipy.special import betainc, betaln, digamma, gammaln, gammasgn, hyp2f1, rgamma, xlogy
from sklearn.base import BaseEstimator

from custval.errors import ConfigError, ConvergenceError, DataError, ModelError, NotFittedError, SchemaError
from custval.models.clv._mle import MLEResult, compress_rows, fit_mle

PARAM_NAMES = ("r", "alpha", "a", "b")
COLUMNS = ("frequency", "recency", "T")
TABLE = "rfm"

_CHUNK = 16384  # rows per block in the likelihood: temporaries stay in the CPU cache
_SUBSAMPLE = 50_000  # above this many distinct rows, starting values come from a fit on a subsample
_SERIES_RATIO = 0.25  # power series in t/(alpha+T) used when its term ratio is below this
_A_NEAR_ONE = 1e-3  # |a - 1| below this: interpolate in a (the closed form is 0/0 at a = 1)
_K_DEGENERATE = 1e-4  # k - a this close to an integer: interpolate in k (2F1's logarithmic case)
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


def _check_period_rate(period_rate, n: int) -> np.ndarray:
    """One discount rate per model period, or one per customer, each finite and > -1."""
    rate = np.asarray(period_rate, dtype=float)
    if rate.ndim != 0 and rate.shape != (n,):
        raise ConfigError(f"period_rate must be one number or one per customer ({n}), got shape {rate.shape}")
    bad = ~(np.isfinite(rate) & (rate > -1))
    if bad.any():
        raise ConfigError(f"period_rate must be finite and > -1, got {rate[bad].ravel()[0]!r}")
    return rate


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


class _NegLogLik:
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

    def _evaluate(self, params: np.ndarray) -> tuple[float, np.ndarray]:
        self.n_evaluations += 1
        if not np.all(np.isfinite(params) & (np.asarray(params) > 0)):  # e.g. a parameter underflowed to 0
            return math.inf, np.full(4, np.nan)
        r, alpha, a, b = (float(v) for v in params)
        ux, wx = self.ux, self.wx
        W = self.total_weight
        log_alpha = math.log(alpha)
        # terms in x only (A1 + A2 of FHL's section 7 notation)
        ll = float(wx @ (gammaln(r + ux) + gammaln(b + ux) - gammaln(a + b + ux)))
        ll += W * (-gammaln(r) + r * log_alpha + gammaln(a + b) - gammaln(b))
        psi_ab = digamma(a + b)
        psi_abx = digamma(a + b + ux)
        g_r = float(wx @ digamma(r + ux)) + W * (log_alpha - digamma(r))
        g_alpha = W * r / alpha
        g_a = float(wx @ (psi_ab - psi_abx))
        g_b = float(wx @ (digamma(b + ux) - psi_abx)) + W * (psi_ab - digamma(b))
        # -(r + x) ln(alpha + T), summed over distinct T
        rx_T = r * self.wT + self.xwT
        log_aT = np.log(alpha + self.uT)
        ll -= float(rx_T @ log_aT)
        g_r -= float(self.wT @ log_aT)
        g_alpha -= float(np.sum(rx_T / (alpha + self.uT)))
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


# ---------------------------------------------------------------------------------------- predictions
def _unique_x_T(x, T) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (frequency, T) pairs and each row's pair code. A living customer's conditional purchases depend
    on the history only through x and T (recency enters through P(alive) alone), and a real customer base
    has far fewer distinct pairs than customers (1M simulated daily customers: ~16k)."""
    (ux, uT), _, codes = compress_rows(x, T)
    return ux, uT, codes


def _alive_path_blocks(params, ux, uT, ts):
    """Yield (start, stop, E) over blocks of the rows of (ux, uT): E[i, j] is the expected number of purchases
    in the next ts[j] periods of a customer alive now with frequency ux[start + i] and age uT[start + i]
    (the same `_expected_alive` evaluation as `BetaGeo.expected_purchases`, entry by entry)."""
    r, alpha, a, b = params
    rows = max(1, _PATH_BLOCK // ts.size)
    for start in range(0, ux.size, rows):
        stop = min(start + rows, ux.size)
        x, T = ux[start:stop, None], uT[start:stop, None]
        yield start, stop, _expected_alive(ts / (alpha + T), r + x, b + x, a)


def _increments(E: np.ndarray) -> np.ndarray:
    """Per-step expected purchases E(t_j) - E(t_{j-1}) along the last axis, with E(t_{-1}) = 0."""
    out = np.empty_like(E)
    out[:, 0] = E[:, 0]
    np.subtract(E[:, 1:], E[:, :-1], out=out[:, 1:])
    return out


def _discounted_alive_path(params, ux, uT, codes, ts, rate) -> tuple[np.ndarray, np.ndarray]:
    """Per customer, for a living customer: (sum_j [E(ts_j) - E(ts_{j-1})] (1 + rate)^-ts_j, E(ts[-1])).

    Both are computed on the distinct (x, T) rows, or on the distinct (x, T, rate) rows when the rate varies
    by customer, block by block (no customers x horizons matrix), and gathered back to the customers."""
    if rate.ndim == 0:
        discount = (1.0 + float(rate)) ** -ts
        weighted = np.empty(ux.size)
        last = np.empty(ux.size)
        for start, stop, E in _alive_path_blocks(params, ux, uT, ts):
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
    for start, stop, E in _alive_path_blocks(params, ux, uT, ts):
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


def _expected_alive(s, k, beta, a: float) -> np.ndarray:
    """E[(1 - (1 + p s)^-k) / p] for p ~ Beta(a, beta): expected purchases in the next t periods of a customer
    alive now whose rate posterior is Gamma(k, rate A) and dropout posterior Beta(a, beta), with s = t / A.

    Equals FHL eq. 10's numerator (a+beta-1)/(a-1) [1 - (A/(A+t))^k 2F1(k, beta; a+beta-1; t/(A+t))], which
    is evaluated through its Euler transform; short horizons use the power series in s (no a-1, no c);
    a+beta-1 < 1 is shifted up with a contiguous relation; |a-1| small is interpolated in a.
    """
    s, k, beta = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (s, k, beta)))
    out = np.empty(s.shape)
    series = s * np.maximum(1.0, 0.5 * (k + 1.0)) <= _SERIES_RATIO
    if series.any():
        out[series] = _expected_alive_series(s[series], k[series], beta[series], a)
    rest = ~series
    if rest.any():
        out[rest] = _expected_alive_closed(s[rest], k[rest], beta[rest], a)
    return out


def _expected_alive_series(s, k, beta, a):
    """k s sum_m (k+1)_m (a)_m / ((a+beta)_m (m+1)!) (-s)^m; the term ratio is at most s max(1, (k+1)/2)."""
    term = np.ones_like(s)
    total = np.ones_like(s)
    for m in range(200):
        term *= -s * (k + 1.0 + m) * (a + m) / ((a + beta + m) * (m + 2.0))
        total += term
        if np.max(np.abs(term), initial=0.0) < 1e-17:
            break
    return k * s * total


def _lagrange_weights(at, nodes: np.ndarray) -> list:
    """Weights of the Lagrange interpolant through `nodes` (along the last axis), evaluated at `at`."""
    nodes = np.asarray(nodes, dtype=float)
    count = nodes.shape[-1]
    weights = []
    for j in range(count):
        w = np.ones(np.shape(at))
        for i in range(count):
            if i != j:
                w = w * (at - nodes[..., i]) / (nodes[..., j] - nodes[..., i])
        weights.append(w)
    return weights


def _expected_alive_closed(s, k, beta, a):
    """Closed form, interpolated where it is ill-conditioned. E is analytic in a and k, so a cubic through
    4 nearby well-conditioned points is accurate to ~1e-12: near a = 1 the closed form is 0/0, and where
    k - a is an integer the 1 - z transformations inside 2F1 hit their logarithmic case, which scipy
    evaluates poorly for z near 1 (long horizons)."""
    if abs(a - 1.0) < _A_NEAR_ONE:
        offsets = _A_NEAR_ONE * np.array([-2.0, -1.0, 1.0, 2.0])
        weights = _lagrange_weights(a - 1.0, offsets)
        return sum(w * _expected_alive_k(s, k, beta, 1.0 + o) for w, o in zip(weights, offsets, strict=True))
    return _expected_alive_k(s, k, beta, a)


def _expected_alive_k(s, k, beta, a):
    out = np.empty_like(s)
    nearest = np.round(k - a)
    frac = k - a - nearest
    near = np.abs(frac) < _K_DEGENERATE
    far = ~near
    out[far] = _expected_alive_shifted(s[far], k[far], beta[far], a)
    if near.any():
        k0 = a + nearest[near]
        step = 10.0 * _K_DEGENERATE
        # nodes on both sides of the degenerate point, or (k0 close to 0) all above it
        offsets = np.where(k0[:, None] > 3.0 * step, step * np.array([-2.0, -1.0, 1.0, 2.0]),
                           step * np.array([1.0, 2.0, 3.0, 4.0]))
        weights = _lagrange_weights(frac[near], offsets)
        total = sum(w * _expected_alive_shifted(s[near], k0 + offsets[:, j], beta[near], a)
                    for j, w in enumerate(weights))
        out[near] = total
    return out


def _expected_alive_shifted(s, k, beta, a):
    """E_{a,beta} = 1 - 2F1(k, a; a+beta; -s) + beta/(a+beta) E_{a,beta+1}: applied until a+beta-1 >= 1."""
    out = np.zeros_like(s)
    factor = np.ones_like(s)
    beta = beta.copy()
    log1m_z = -np.log1p(s)  # ln(1 - z), z = s / (1 + s)
    z = s / (1.0 + s)
    for _ in range(3):
        low = a + beta - 1.0 < 1.0
        if not low.any():
            break
        c = a + beta[low]
        # 2F1(k, a; c; -s) = (1 - z)^a 2F1(a, c - k; c; z) (Pfaff)
        g = _hyp2f1(a, c - k[low], c, z[low])
        out[low] += factor[low] * -np.expm1(a * log1m_z[low] + np.log(g))
        factor[low] *= beta[low] / c
        beta[low] += 1.0
    c = a + beta - 1.0
    # (1-z)^k 2F1(k, beta; c; z) = (1-z)^(a-1) 2F1(c-k, a-1; c; z) (Euler)
    g = _hyp2f1(c - k, a - 1.0, c, z)
    one_minus_y = -np.expm1((a - 1.0) * log1m_z + np.log(g))
    return out + factor * c * one_minus_y / (a - 1.0)


def _hyp2f1(A, B, C, z) -> np.ndarray:
    """Gauss hypergeometric 2F1 for z in [0, 1) where the callers know the value is positive.

    scipy is accurate on the realistic range (checked against quadrature over thousands of parameter sets),
    but for z near 1 with large parameters its 1 - z connection formula overflows (NaN) or, near its
    logarithmic cases, returns wrong values (e.g. negative). Those entries are recomputed with the
    connection formula in log space with regularised series (`_hyp2f1_one_minus_z`) for z > 1/2, or as the
    defining power series for z <= 1/2."""
    A, B, C, z = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (A, B, C, z)))
    out = np.array(hyp2f1(A, B, C, z), dtype=float)
    bad = ~(out > 0) | ~np.isfinite(out)
    if bad.any():
        with np.errstate(all="ignore"):
            near_one = bad & (z > 0.5)
            if near_one.any():
                out[near_one] = _hyp2f1_one_minus_z(A[near_one], B[near_one], C[near_one], z[near_one])
            small = bad & ~near_one
            if small.any():
                out[small] = _hyp2f1_series(A[small], B[small], C[small], z[small])
        if not np.all(np.isfinite(out) & (out > 0)):
            i = int(np.flatnonzero(~(np.isfinite(out) & (out > 0)))[0])
            raise ModelError(f"BG/NBD prediction: cannot evaluate 2F1({A[i]}, {B[i]}; {C[i]}; {z[i]}) (a "
                             "horizon extremely long relative to the customer's age?)")
    return out


def _hyp2f1_one_minus_z(A, B, C, z):
    """DLMF 15.8.4 with regularised series, d = C - A - B not an integer (callers interpolate around those):
    2F1 = G(C) pi / sin(pi d) [R(A, B; 1-d; w) / (G(C-A) G(C-B)) - w^d R(C-A, C-B; 1+d; w) / (G(A) G(B))],
    w = 1 - z and R(a, b; c; w) = 2F1(a, b; c; w) / G(c), summed directly (w is small here). The gamma
    ratios are formed in log space, so large C does not overflow."""
    w = 1.0 - z
    d = C - A - B
    scale = np.pi / np.sin(np.pi * d)
    first = (gammasgn(C) * gammasgn(C - A) * gammasgn(C - B)
             * np.exp(gammaln(C) - gammaln(C - A) - gammaln(C - B)) * _hyp2f1_regularised_series(A, B, 1.0 - d, w))
    second = (gammasgn(C) * gammasgn(A) * gammasgn(B)
              * np.exp(gammaln(C) - gammaln(A) - gammaln(B) + d * np.log(w))
              * _hyp2f1_regularised_series(C - A, C - B, 1.0 + d, w))
    return scale * (first - second)


def _hyp2f1_regularised_series(A, B, C, w):
    """sum_n (A)_n (B)_n w^n / (n! G(C + n)), finite for any C (including near the poles of 2F1)."""
    term = np.ones_like(w)
    total = rgamma(C)
    for n in range(2_000):
        term = term * (A + n) * (B + n) / (n + 1.0) * w
        piece = term * rgamma(C + n + 1.0)
        total = total + piece
        if n > 2 and np.all(np.abs(piece) <= 1e-17 * np.abs(total)):
            return total
    return np.where(np.abs(piece) <= 1e-17 * np.abs(total), total, np.nan)  # not converged: NaN, which _hyp2f1 rejects


def _hyp2f1_series(A, B, C, z):
    term = np.ones_like(z)
    total = np.ones_like(z)
    for n in range(10_000):
        term = term * (A + n) * (B + n) / ((C + n) * (n + 1.0)) * z
        total = total + term
        if np.all(np.abs(term) <= 1e-17 * np.abs(total)):
            return total
    return np.where(np.abs(term) <= 1e-17 * np.abs(total), total, np.nan)  # not converged: NaN, never a guess


def _prob_n_fresh(n, t, k, A, a: float, beta) -> np.ndarray:
    """P(N(t) = n) for a BG/NBD customer alive at time 0 with rate ~ Gamma(k, rate A), dropout ~ Beta(a, beta)
    (FHL eq. 8); the finite sum is the negative binomial survival function, i.e. a regularised beta."""
    n, t, k, A, beta = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (n, t, k, A, beta)))
    log_p0 = -np.log1p(t / A)  # ln(A / (A + t))
    q = t / (A + t)
    log_first = (betaln(a, beta + n) - betaln(a, beta) + gammaln(k + n) - gammaln(k) - gammaln(n + 1.0)
                 + k * log_p0 + xlogy(n, q))
    first = np.exp(log_first)
    repeat = n > 0
    n_pos = np.where(repeat, n, 1.0)
    second = np.exp(betaln(a + 1.0, beta + n_pos - 1.0) - betaln(a, beta)) * betainc(n_pos, k, q)
    return first + np.where(repeat, second, 0.0)


def _check_n(n) -> np.ndarray:
    n = np.asarray(n, dtype=float)
    if not np.all(np.isfinite(n)) or np.any(n < 0) or np.any(n != np.floor(n)):
        raise ConfigError(f"n must be whole numbers >= 0 (purchase counts), got {n if n.size < 10 else n[:10]}")
    return n


# ------------------------------------------------------------------------------------------- estimator
class BetaGeo(BaseEstimator):
    """BG/NBD model of repeat purchases, fitted by maximum likelihood.

    penalizer: L2 penalty on (r, alpha, a, b) added to the mean negative log-likelihood, with alpha measured
    in units of the longest T, exactly as lifetimes' `penalizer_coef`.
    tol: gradient tolerance of the optimiser (in log-parameters).
    prediction_horizon: t (model periods) used by `predict`.
    """

    def __init__(self, penalizer: float = 0.0, tol: float = 1e-10, prediction_horizon: float = 1.0):
        self.penalizer = penalizer
        self.tol = tol
        self.prediction_horizon = prediction_horizon

    # --------------------------------------------------------------------------------- fitting
    def _check_hyper_params(self) -> None:
        def number(value) -> bool:
            return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)

        for name in ("penalizer", "prediction_horizon"):
            value = getattr(self, name)
            if not (number(value) and value >= 0):
                raise ConfigError(f"BetaGeo {name} must be a finite number >= 0, got {value!r}")
        if not (number(self.tol) and self.tol > 0):
            raise ConfigError(f"BetaGeo tol must be a positive number, got {self.tol!r}")

    def fit(self, X, y=None, sample_weight=None) -> BetaGeo:
        """Fit on X (frequency, recency, T); sample_weight counts customers per row (like lifetimes' weights)."""
        self._check_hyper_params()
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

        (ux, utx, uT), counts, _ = _compress(x, tx, T, weight)
        scale = 1.0 / float(np.max(uT))  # as lifetimes: fit in units of the longest T
        result = _fit_scaled(ux, utx * scale, uT * scale, counts, self.penalizer, self.tol)
        # back to model periods: alpha scales with time, the others are dimensionless
        to_periods = np.array([1.0, 1.0 / scale, 1.0, 1.0])
        params = result.params * to_periods
        covariance = result.covariance * np.outer(to_periods, to_periods)
        # rescaling time by c shifts each customer's log-likelihood by -x ln(c)
        log_likelihood = result.log_likelihood + math.log(scale) * float(counts @ ux)
        self.result_ = dataclasses.replace(
            result, params=params, covariance=covariance, standard_errors=result.standard_errors * to_periods,
            log_likelihood=log_likelihood,
        )
        self._set_fitted(self.result_, n_customers=float(weight.sum()), n_unique_rows=int(ux.size))
        return self

    def _set_fitted(self, result: MLEResult, n_customers: float, n_unique_rows: int) -> None:
        self.params_ = result.as_dict()
        self.standard_errors_ = dict(zip(PARAM_NAMES, map(float, result.standard_errors), strict=True))
        self.covariance_ = np.asarray(result.covariance, dtype=float)
        self.log_likelihood_ = float(result.log_likelihood)
        self.n_customers_ = int(n_customers) if float(n_customers).is_integer() else float(n_customers)
        self.n_unique_rows_ = int(n_unique_rows)
        self.converged_ = bool(result.converged)
        self.n_iter_ = int(result.n_iter)

    def _check_fitted(self) -> tuple[float, float, float, float]:
        if not hasattr(self, "params_"):
            raise NotFittedError("This BetaGeo is not fitted yet: call fit(X) first.")
        return tuple(float(self.params_[name]) for name in PARAM_NAMES)

    def summary(self) -> pd.DataFrame:
        """Parameters with standard errors and 95% Wald intervals."""
        self._check_fitted()
        return self.result_.summary()

    # ----------------------------------------------------------------------------- predictions
    def p_alive(self, X) -> np.ndarray:
        """Probability that each customer is still alive at T (FHL note 021), computed in log space."""
        r, alpha, a, b = self._check_fitted()
        x, tx, T = rfm_arrays(X)
        return np.exp(self._log_p_alive(x, tx, T))

    def _log_p_alive(self, x, tx, T) -> np.ndarray:
        r, alpha, a, b = self._check_fitted()
        d = _log_odds_dead(r, alpha, a, b, x, tx, T)
        return np.where(x > 0, -np.logaddexp(0.0, d), 0.0)

    def expected_purchases(self, X, t) -> np.ndarray:
        """Expected number of purchases in the next t periods given each customer's history (FHL eq. 10).

        t is one horizon (then the conditional part is evaluated once per distinct (frequency, T) row) or an
        array broadcast against the customers (e.g. one horizon each)."""
        r, alpha, a, b = self._check_fitted()
        x, tx, T = rfm_arrays(X)
        t = _check_t(t)
        alive = np.exp(self._log_p_alive(x, tx, T))
        if t.ndim == 0:
            ux, uT, codes = _unique_x_T(x, T)
            return alive * _expected_alive(t / (alpha + uT), r + ux, b + ux, a)[codes]
        return alive * _expected_alive(t / (alpha + T), r + x, b + x, a)

    def expected_purchases_path(self, X, ts) -> np.ndarray:
        """(n customers, len(ts)) matrix: column j is `expected_purchases(X, ts[j])`, in one pass.

        X is validated once, P(alive) computed once, and the conditional part evaluated once per distinct
        (frequency, T) row and horizon. The result holds n x len(ts) floats: for a discounted sum over many
        horizons use `discounted_expected_purchases`, which never builds it."""
        params = self._check_fitted()
        x, tx, T = rfm_arrays(X)
        ts = _check_ts(ts)
        alive = np.exp(self._log_p_alive(x, tx, T))
        ux, uT, codes = _unique_x_T(x, T)
        E = np.empty((ux.size, ts.size))
        for start, stop, block in _alive_path_blocks(params, ux, uT, ts):
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
        alive, weighted, _ = self._value_parts(X, ts, period_rate)
        return alive * weighted

    def _value_parts(self, X, ts, period_rate) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(P(alive), discounted alive-part of `discounted_expected_purchases`, alive-part of E(ts[-1])), so
        P(alive), the discounted purchases and the purchases over the last horizon come from one pass."""
        params = self._check_fitted()
        x, tx, T = rfm_arrays(X)
        ts = _check_ts(ts)
        rate = _check_period_rate(period_rate, x.size)
        alive = np.exp(self._log_p_alive(x, tx, T))
        ux, uT, codes = _unique_x_T(x, T)
        weighted, last = _discounted_alive_path(params, ux, uT, codes, ts, rate)
        return alive, weighted, last

    def expected_purchases_new(self, t) -> np.ndarray | float:
        """E[X(t)]: expected repeat purchases in the first t periods of a new customer (FHL eq. 9)."""
        r, alpha, a, b = self._check_fitted()
        t = _check_t(t)
        out = _expected_alive(t / alpha, r, b, a)
        return float(out) if out.ndim == 0 else out

    def probability_of_n_purchases(self, n, t, X=None) -> np.ndarray | float:
        """P(X(t) = n) for a new customer (FHL eq. 8) if X is None; otherwise, per customer of X, the
        probability of exactly n purchases in the next t periods given their history: P(alive) times eq. 8
        at the posterior parameters (r+x, alpha+T, a, b+x), plus P(dead) when n = 0."""
        r, alpha, a, b = self._check_fitted()
        n = _check_n(n)
        t = _check_t(t)
        if X is None:
            out = _prob_n_fresh(n, t, r, alpha, a, b)
            return float(out) if out.ndim == 0 else out
        x, tx, T = rfm_arrays(X)
        alive = np.exp(self._log_p_alive(x, tx, T))
        fresh = _prob_n_fresh(n, t, r + x, alpha + T, a, b + x)
        return alive * fresh + np.where(n == 0, 1.0 - alive, 0.0)

    def predict(self, X) -> np.ndarray:
        """Expected purchases in the next `prediction_horizon` periods."""
        return self.expected_purchases(X, self.prediction_horizon)

    def score_samples(self, X) -> np.ndarray:
        """Log-likelihood of each customer's history under the fitted model."""
        params = self._check_fitted()
        x, tx, T = rfm_arrays(X)
        return log_likelihood_rows(params, x, tx, T)

    def score(self, X, y=None) -> float:
        """Mean log-likelihood per customer (higher is better)."""
        return float(np.mean(self.score_samples(X)))

    # --------------------------------------------------------------------------- serialisation
    def to_dict(self) -> dict:
        """JSON-able description of the fitted model (no pickle)."""
        self._check_fitted()
        res = self.result_
        return {
            "model": "BetaGeo",
            "params": {k: float(v) for k, v in self.params_.items()},
            "standard_errors": {k: float(v) for k, v in self.standard_errors_.items()},
            "log_likelihood": float(self.log_likelihood_),
            "n_customers": self.n_customers_,
            "hyper": {"penalizer": float(self.penalizer), "tol": float(self.tol),
                      "prediction_horizon": float(self.prediction_horizon)},
            "covariance": np.asarray(self.covariance_, dtype=float).tolist(),
            "n_unique_rows": int(self.n_unique_rows_),
            "converged": bool(self.converged_),
            "n_iter": int(self.n_iter_),
            "message": str(res.message),
            "gradient_norm": float(res.gradient_norm),
        }

    @classmethod
    def from_dict(cls, data: dict) -> BetaGeo:
        """Rebuild a fitted BetaGeo from `to_dict()` output."""
        kind = data.get("model") if isinstance(data, dict) else type(data).__name__
        if kind != "BetaGeo":
            raise ConfigError(f"not a BetaGeo description: model={kind!r}")
        try:
            params = np.array([float(data["params"][k]) for k in PARAM_NAMES])
            se = np.array([float(data["standard_errors"][k]) for k in PARAM_NAMES])
            model = cls(**data["hyper"])
            log_likelihood = float(data["log_likelihood"])
            n_customers = data["n_customers"]
        except (KeyError, TypeError) as exc:
            raise ConfigError(f"incomplete BetaGeo description: missing {exc}") from exc
        if not np.all(np.isfinite(params)) or np.any(params <= 0):
            raise ConfigError(f"BetaGeo parameters must be positive and finite, got {data['params']}")
        covariance = np.asarray(data.get("covariance", np.diag(se**2)), dtype=float)
        result = MLEResult(
            names=PARAM_NAMES, params=params, standard_errors=se, covariance=covariance,
            log_likelihood=log_likelihood, converged=bool(data.get("converged", True)),
            n_iter=int(data.get("n_iter", 0)), message=str(data.get("message", "")),
            gradient_norm=float(data.get("gradient_norm", float("nan"))),
        )
        model.result_ = result
        model._set_fitted(result, n_customers=n_customers,
                          n_unique_rows=int(data.get("n_unique_rows", 0)))
        return model


# ------------------------------------------------------------------------------------------ fitting
def _compress(x, tx, T, weight):
    (ux, utx, uT), _, codes = compress_rows(x, tx, T)
    counts = np.bincount(codes, weights=weight, minlength=ux.size)
    return (ux, utx, uT), counts, codes


def _starts(x, tx, T, w) -> list[np.ndarray]:
    """Starting points in time units of the longest T: a moment-style guess, then lifetimes' default."""
    rate = float(w @ x) / max(float(w @ T), 1e-12)  # repeat purchases per unit of age
    r = 1.0
    guess = np.array([r, r / max(rate, 1e-6), 1.0, 3.0])
    return [guess, np.full(4, math.exp(0.1))]


def _fit_best(x, tx, T, w, starts, penalizer, tol) -> tuple[MLEResult, _NegLogLik]:
    nll = _NegLogLik(x, tx, T, w)
    best, error = None, None
    for start in starts:
        try:
            result = fit_mle(nll, start, PARAM_NAMES, total_weight=nll.total_weight, penalizer=penalizer,
                             tol=tol, model="BetaGeo")
        except ConvergenceError as exc:
            error = exc
            continue
        if best is None or result.log_likelihood > best.log_likelihood:
            best = result
    if best is None:
        raise error
    return best, nll


def _fit_scaled(x, tx, T, w, penalizer, tol) -> MLEResult:
    """Fit in time units of the longest T. Large inputs start from the optimum of a 50k-customer subsample,
    so the full-data optimiser needs only a few iterations."""
    starts = _starts(x, tx, T, w)
    if x.size > _SUBSAMPLE:
        rng = np.random.default_rng(0)
        draws = rng.choice(x.size, size=_SUBSAMPLE, p=w / w.sum())
        counts = np.bincount(draws, minlength=x.size).astype(float)
        keep = counts > 0
        try:
            # a starting point only: a looser tolerance saves the iterations spent polishing it
            sub, _ = _fit_first(x[keep], tx[keep], T[keep], counts[keep], starts, penalizer, max(tol, 1e-7))
            starts = [sub.params, *starts]
        except ConvergenceError:
            pass
        best, nll = _fit_first(x, tx, T, w, starts, penalizer, tol)
    else:
        best, nll = _fit_best(x, tx, T, w, starts, penalizer, tol)
    return dataclasses.replace(best, extra={**best.extra, "n_evaluations": nll.n_evaluations})


def _fit_first(x, tx, T, w, starts, penalizer, tol) -> tuple[MLEResult, _NegLogLik]:
    """The first start that converges (large data: each full fit is expensive)."""
    nll = _NegLogLik(x, tx, T, w)
    error = None
    for start in starts:
        try:
            return fit_mle(nll, start, PARAM_NAMES, total_weight=nll.total_weight, penalizer=penalizer,
                           tol=tol, model="BetaGeo"), nll
        except ConvergenceError as exc:
            error = exc
    raise error
