"""Special functions of the BG/NBD model: the Gauss hypergeometric function 2F1 where scipy's is unreliable,
the expected purchases of a living customer (FHL 2005 eq. 10's conditional part) in forms that stay finite
and accurate across the parameter space, the probability of n purchases (eq. 8) and Lagrange interpolation
used to step around the removable singularities of the closed forms.

These are maths, not the estimator: `custval.models.clv.bgnbd` fits the model and calls them. The tests check
them against adaptive quadrature of the defining integrals and against lifetimes 0.11.3.
"""

from __future__ import annotations

import numpy as np
from scipy.special import betainc, betaln, gammaln, gammasgn, hyp2f1, rgamma, xlogy

from custval.errors import ModelError

__all__ = [
    "expected_alive",
    "expected_alive_closed",
    "expected_alive_near_integer_k",
    "expected_alive_series",
    "expected_alive_shifted",
    "hyp2f1_one_minus_z",
    "hyp2f1_positive",
    "hyp2f1_regularised_series",
    "hyp2f1_series",
    "lagrange_weights",
    "prob_n_purchases",
]

_SERIES_RATIO = 0.25  # power series in t/(alpha+T) used when its term ratio is below this
_A_NEAR_ONE = 1e-3  # |a - 1| below this: interpolate in a (the closed form is 0/0 at a = 1)
_K_DEGENERATE = 1e-4  # k - a this close to an integer: interpolate in k (2F1's logarithmic case)


def expected_alive(s, k, beta, a: float) -> np.ndarray:
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
        out[series] = expected_alive_series(s[series], k[series], beta[series], a)
    rest = ~series
    if rest.any():
        out[rest] = expected_alive_closed(s[rest], k[rest], beta[rest], a)
    return out


def expected_alive_series(s, k, beta, a):
    """k s sum_m (k+1)_m (a)_m / ((a+beta)_m (m+1)!) (-s)^m; the term ratio is at most s max(1, (k+1)/2)."""
    term = np.ones_like(s)
    total = np.ones_like(s)
    for m in range(200):
        term *= -s * (k + 1.0 + m) * (a + m) / ((a + beta + m) * (m + 2.0))
        total += term
        if np.max(np.abs(term), initial=0.0) < 1e-17:
            break
    return k * s * total


def lagrange_weights(at, nodes: np.ndarray) -> list:
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


def expected_alive_closed(s, k, beta, a):
    """Closed form, interpolated where it is ill-conditioned. E is analytic in a and k, so a cubic through
    4 nearby well-conditioned points is accurate to ~1e-12: near a = 1 the closed form is 0/0, and where
    k - a is an integer the 1 - z transformations inside 2F1 hit their logarithmic case, which scipy
    evaluates poorly for z near 1 (long horizons)."""
    if abs(a - 1.0) < _A_NEAR_ONE:
        offsets = _A_NEAR_ONE * np.array([-2.0, -1.0, 1.0, 2.0])
        weights = lagrange_weights(a - 1.0, offsets)
        return sum(w * expected_alive_near_integer_k(s, k, beta, 1.0 + o) for w, o in zip(weights, offsets, strict=True))
    return expected_alive_near_integer_k(s, k, beta, a)


def expected_alive_near_integer_k(s, k, beta, a):
    """`expected_alive_shifted`, interpolated in k where k - a is within _K_DEGENERATE of an integer."""
    out = np.empty_like(s)
    nearest = np.round(k - a)
    frac = k - a - nearest
    near = np.abs(frac) < _K_DEGENERATE
    far = ~near
    out[far] = expected_alive_shifted(s[far], k[far], beta[far], a)
    if near.any():
        k0 = a + nearest[near]
        step = 10.0 * _K_DEGENERATE
        # nodes on both sides of the degenerate point, or (k0 close to 0) all above it
        offsets = np.where(k0[:, None] > 3.0 * step, step * np.array([-2.0, -1.0, 1.0, 2.0]),
                           step * np.array([1.0, 2.0, 3.0, 4.0]))
        weights = lagrange_weights(frac[near], offsets)
        total = sum(w * expected_alive_shifted(s[near], k0 + offsets[:, j], beta[near], a)
                    for j, w in enumerate(weights))
        out[near] = total
    return out


def expected_alive_shifted(s, k, beta, a):
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
        g = hyp2f1_positive(a, c - k[low], c, z[low])
        out[low] += factor[low] * -np.expm1(a * log1m_z[low] + np.log(g))
        factor[low] *= beta[low] / c
        beta[low] += 1.0
    c = a + beta - 1.0
    # (1-z)^k 2F1(k, beta; c; z) = (1-z)^(a-1) 2F1(c-k, a-1; c; z) (Euler)
    g = hyp2f1_positive(c - k, a - 1.0, c, z)
    one_minus_y = -np.expm1((a - 1.0) * log1m_z + np.log(g))
    return out + factor * c * one_minus_y / (a - 1.0)


def hyp2f1_positive(A, B, C, z) -> np.ndarray:
    """Gauss hypergeometric 2F1 for z in [0, 1) where the callers know the value is positive.

    scipy is accurate on the realistic range (checked against quadrature over thousands of parameter sets),
    but for z near 1 with large parameters its 1 - z connection formula overflows (NaN) or, near its
    logarithmic cases, returns wrong values (e.g. negative). Those entries are recomputed with the
    connection formula in log space with regularised series (`hyp2f1_one_minus_z`) for z > 1/2, or as the
    defining power series for z <= 1/2."""
    A, B, C, z = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (A, B, C, z)))
    out = np.array(hyp2f1(A, B, C, z), dtype=float)
    bad = ~(out > 0) | ~np.isfinite(out)
    if bad.any():
        with np.errstate(all="ignore"):
            near_one = bad & (z > 0.5)
            if near_one.any():
                out[near_one] = hyp2f1_one_minus_z(A[near_one], B[near_one], C[near_one], z[near_one])
            small = bad & ~near_one
            if small.any():
                out[small] = hyp2f1_series(A[small], B[small], C[small], z[small])
        if not np.all(np.isfinite(out) & (out > 0)):
            i = int(np.flatnonzero(~(np.isfinite(out) & (out > 0)))[0])
            raise ModelError(f"BG/NBD prediction: cannot evaluate 2F1({A[i]}, {B[i]}; {C[i]}; {z[i]}) (a "
                             "horizon extremely long relative to the customer's age?)")
    return out


def hyp2f1_one_minus_z(A, B, C, z):
    """DLMF 15.8.4 with regularised series, d = C - A - B not an integer (callers interpolate around those):
    2F1 = G(C) pi / sin(pi d) [R(A, B; 1-d; w) / (G(C-A) G(C-B)) - w^d R(C-A, C-B; 1+d; w) / (G(A) G(B))],
    w = 1 - z and R(a, b; c; w) = 2F1(a, b; c; w) / G(c), summed directly (w is small here). The gamma
    ratios are formed in log space, so large C does not overflow."""
    w = 1.0 - z
    d = C - A - B
    scale = np.pi / np.sin(np.pi * d)
    first = (gammasgn(C) * gammasgn(C - A) * gammasgn(C - B)
             * np.exp(gammaln(C) - gammaln(C - A) - gammaln(C - B)) * hyp2f1_regularised_series(A, B, 1.0 - d, w))
    second = (gammasgn(C) * gammasgn(A) * gammasgn(B)
              * np.exp(gammaln(C) - gammaln(A) - gammaln(B) + d * np.log(w))
              * hyp2f1_regularised_series(C - A, C - B, 1.0 + d, w))
    return scale * (first - second)


def hyp2f1_regularised_series(A, B, C, w):
    """sum_n (A)_n (B)_n w^n / (n! G(C + n)), finite for any C (including near the poles of 2F1)."""
    term = np.ones_like(w)
    total = rgamma(C)
    for n in range(2_000):
        term = term * (A + n) * (B + n) / (n + 1.0) * w
        piece = term * rgamma(C + n + 1.0)
        total = total + piece
        if n > 2 and np.all(np.abs(piece) <= 1e-17 * np.abs(total)):
            return total
    return np.where(np.abs(piece) <= 1e-17 * np.abs(total), total, np.nan)  # not converged: NaN, which hyp2f1_positive rejects


def hyp2f1_series(A, B, C, z):
    term = np.ones_like(z)
    total = np.ones_like(z)
    for n in range(10_000):
        term = term * (A + n) * (B + n) / ((C + n) * (n + 1.0)) * z
        total = total + term
        if np.all(np.abs(term) <= 1e-17 * np.abs(total)):
            return total
    return np.where(np.abs(term) <= 1e-17 * np.abs(total), total, np.nan)  # not converged: NaN, never a guess


def prob_n_purchases(n, t, k, A, a: float, beta) -> np.ndarray:
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
