"""Metrics for uplift models on randomised campaign data: Qini and uplift curves, their normalised areas, uplift
at k, uplift by decile, and the off-policy value (incremental responses and profit) of a targeting rule.

Inputs. `y_true` is the outcome per customer: 0/1 (a conversion) or, where a docstring says so, an amount
(spend); `uplift` is the predicted uplift (any finite numbers, higher = contact first); `treatment` is 1 for
a treated and 0 for a control customer (numbers or booleans), with both groups present. The policy value
functions also take arm names (several treatment arms and a `control` name). A bad input raises
`custval.errors.DataError` naming the argument, the rule and an example; a bad parameter a `ConfigError`.

Curves and ties. Customers are ranked by predicted uplift, highest first. As in scikit-uplift, the curves
have one point per distinct predicted value (the end of each block of tied customers) plus (0, 0), so no
curve depends on the row order; areas are trapezoids over these points (`sklearn.metrics.auc`). Where a cut
through a tied block is needed (uplift at k, policy value at k), the block's customers count pro rata: each
with the share of the block above the cut (their expected counts under a random order within the block). Without ties at the cut, the values equal
scikit-uplift's (0.5.1) on the same predictions; with ties scikit-uplift splits the block by reversed row
order, custval does not. `uplift_by_decile` puts each tied block whole into the decile of its middle row.

Why not scikit-uplift itself: its functions split tied predictions by row order, return NaN with numpy
warnings where a group is empty, call deprecated scikit-learn and pandas API, and have no off-policy value;
the definitions here are the same and the tests check them against it (a test dependency only).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import auc

from custval.errors import ConfigError, DataError, shown
from custval.metrics._checks import TABLE, as_float, check_count, check_fraction, check_scores, example

__all__ = [
    "PolicyValue",
    "perfect_qini_curve",
    "perfect_uplift_curve",
    "policy_value",
    "policy_value_at_k",
    "policy_value_curve",
    "qini_auc_score",
    "qini_curve",
    "uplift_at_k",
    "uplift_auc_score",
    "uplift_by_decile",
    "uplift_curve",
]

STRATEGIES = ("overall", "by_group")


# ------------------------------------------------------------------------------------------ validation
def _check_outcome(y_true, binary: bool) -> np.ndarray:
    rule = "must be 0/1 numbers or booleans" if binary else "must be numeric (0/1 or an amount)"
    y = as_float(y_true, "y_true", rule)
    missing = np.isnan(y)
    if missing.any():
        raise DataError(TABLE, "y_true", "missing outcome (NaN)", example(y, missing))
    if np.isinf(y).any():
        raise DataError(TABLE, "y_true", "must be finite", example(y, np.isinf(y)))
    if binary:
        bad = (y != 0) & (y != 1)
        if bad.any():
            raise DataError(TABLE, "y_true", "must be 0/1 (or True/False) for this metric", example(y, bad))
    return y


def _check_treatment(treatment, n: int) -> np.ndarray:
    t = as_float(treatment, "treatment", "must be 1 (treated) or 0 (control), numbers or booleans")
    if t.size != n:
        raise DataError(TABLE, "treatment", f"must have the same length as y_true ({n} rows)", f"{t.size} rows")
    bad = np.isnan(t) | ((t != 0) & (t != 1))
    if bad.any():
        raise DataError(TABLE, "treatment", "must be 1 (treated) or 0 (control), no missing values",
                        example(t, bad))
    n_treated = int(t.sum())
    if n_treated in (0, n):
        group = "treated (1)" if n_treated else "control (0)"
        raise DataError(TABLE, "treatment", f"needs treated (1) and control (0) rows; all {n} rows are {group}",
                        int(t[0]))
    return t


def _inputs(y_true, uplift, treatment, binary: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y = _check_outcome(y_true, binary)
    s = check_scores(uplift, y.size, "uplift")
    t = _check_treatment(treatment, y.size)
    return y, s, t


def _check_strategy(strategy) -> str:
    if strategy not in STRATEGIES:
        raise ConfigError(f"strategy must be 'overall' or 'by_group', got {shown(strategy)}")
    return strategy


# ----------------------------------------------------------------------------------------- ranking
def _blocks(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Block number of each row (blocks = distinct scores, highest first) and the block sizes."""
    _, inverse = np.unique(-s, return_inverse=True)
    return inverse, np.bincount(inverse)


def _top_weights(s: np.ndarray, m: int) -> np.ndarray:
    """Weight of each row in the top `m` rows by `s`: 1 above the cut, 0 below, the share of the block that
    falls above the cut for a tied block through it."""
    inverse, sizes = _blocks(s)
    starts = np.cumsum(sizes) - sizes
    return np.clip((m - starts) / sizes, 0.0, 1.0)[inverse]


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, 0 where den is 0 (an empty group adds nothing, as in scikit-uplift)."""
    return np.divide(num, den, out=np.zeros_like(num, dtype="float64"), where=den != 0)


def _cumulative(y: np.ndarray, s: np.ndarray, t: np.ndarray):
    """At the end of each tied block (highest score first): rows, treated, control, treated and control
    outcome sums of the customers targeted so far."""
    inverse, sizes = _blocks(s)
    n_all = np.cumsum(sizes).astype("float64")
    n_t = np.cumsum(np.bincount(inverse, weights=t))
    y_t = np.cumsum(np.bincount(inverse, weights=y * t))
    y_c = np.cumsum(np.bincount(inverse, weights=y * (1 - t)))
    return n_all, n_t, n_all - n_t, y_t, y_c


def _from_origin(n_all: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.r_[0, n_all].astype("int64"), np.r_[0.0, values]


# ------------------------------------------------------------------------------------------- curves
def qini_curve(y_true, uplift, treatment) -> tuple[np.ndarray, np.ndarray]:
    """Qini curve: (n_targeted, incremental) at 0 and at the end of each block of tied predictions.

    incremental(n) = Y_t(n) - Y_c(n) x N_t(n) / N_c(n): the treated responders among the top n minus the
    control responders scaled to the treated group's size (Y_t(n) alone while no control customer is among
    them). `y_true` may be 0/1 or an amount (then: incremental spend)."""
    y, s, t = _inputs(y_true, uplift, treatment, binary=False)
    n_all, n_t, n_c, y_t, y_c = _cumulative(y, s, t)
    return _from_origin(n_all, y_t - y_c * _ratio(n_t, n_c))


def uplift_curve(y_true, uplift, treatment) -> tuple[np.ndarray, np.ndarray]:
    """Uplift curve: (n_targeted, incremental) with incremental(n) = (Y_t/N_t - Y_c/N_c) x n over the top n (a
    group with no customer yet counts 0). `y_true` may be 0/1 or an amount."""
    y, s, t = _inputs(y_true, uplift, treatment, binary=False)
    n_all, n_t, n_c, y_t, y_c = _cumulative(y, s, t)
    return _from_origin(n_all, (_ratio(y_t, n_t) - _ratio(y_c, n_c)) * n_all)


def perfect_qini_curve(y_true, treatment, negative_effect: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The best Qini curve the data allow, as scikit-uplift defines it.

    negative_effect=True: treated responders first, then every non-responder, control responders last (the
    customers a contact may have made buy less are ranked at the bottom), i.e. the Qini curve of the score
    y x t - y x (1 - t). For amounts (non-negative, e.g. spend; scikit-uplift has no such case) the same
    score: treated customers by amount, highest first, the zeros, control customers with the highest amounts
    last. negative_effect=False (0/1 outcomes only): the curve rises with slope 1 to the total incremental
    responders R and stays flat: (0, 0), (R, R), (n, R); it needs R > 0."""
    if not isinstance(negative_effect, bool):
        raise ConfigError(f"negative_effect must be True or False, got {shown(negative_effect)}")
    y = _check_outcome(y_true, binary=not negative_effect)
    t = _check_treatment(treatment, y.size)
    if negative_effect:
        if (y < 0).any():
            raise DataError(TABLE, "y_true", "must be 0/1 or non-negative amounts for the perfect Qini curve",
                            example(y, y < 0))
        return qini_curve(y, y * t - y * (1 - t), t)
    total = y[t == 1].sum() - (t == 1).sum() * y[t == 0].sum() / (t == 0).sum()
    if total <= 0:
        raise DataError(TABLE, "y_true", "perfect Qini without negative effects needs more treated responders "
                        "than control ones scaled to the treated group (use negative_effect=True)",
                        f"{total:.6g} incremental responders")
    return np.array([0.0, total, float(y.size)]), np.array([0.0, total, total])


def perfect_uplift_curve(y_true, treatment) -> tuple[np.ndarray, np.ndarray]:
    """The best uplift curve (0/1 outcomes), as scikit-uplift defines it: treated responders and control
    non-responders first; of the rest, control responders last when they outnumber the treated
    non-responders, else treated non-responders last."""
    y = _check_outcome(y_true, binary=True)
    t = _check_treatment(treatment, y.size)
    control_responders = np.sum((y == 1) & (t == 0))
    treated_non_responders = np.sum((y == 0) & (t == 1))
    summand = y if control_responders > treated_non_responders else t
    return uplift_curve(y, 2 * (y == t) + summand, t)


def _normalised_area(model, perfect) -> float:
    """(area under the model curve - area under the random line) / (same for the perfect curve); the random
    line runs straight from (0, 0) to the common end point of the curves."""
    x_perfect, y_perfect = perfect
    random = auc([0.0, x_perfect[-1]], [0.0, y_perfect[-1]])
    best = auc(x_perfect, y_perfect) - random
    if not best > 0:
        raise DataError(TABLE, "y_true", "the perfect curve has no area above the random line, so the "
                        "normalised area is undefined (outcomes all equal?)", f"{best:.6g}")
    return float((auc(*model) - random) / best)


def qini_auc_score(y_true, uplift, treatment, negative_effect: bool = True) -> float:
    """Qini coefficient, normalised as scikit-uplift does: (area under the Qini curve - area under the random
    line) / (area under the perfect Qini curve - area under the random line), the random line running
    straight from (0, 0) to (n, total incremental responders). 1 = the perfect ranking, 0 = random, negative =
    worse than random; `negative_effect` chooses the perfect curve (`perfect_qini_curve`). `y_true` is 0/1, or
    non-negative amounts with negative_effect=True (revenue uplift; the perfect curve as in
    `perfect_qini_curve`). The Qini of ranking by the true uplift is `qini_auc_score(y, true_uplift, t)`."""
    y, s, t = _inputs(y_true, uplift, treatment, binary=False)
    return _normalised_area(qini_curve(y, s, t), perfect_qini_curve(y, t, negative_effect))


def uplift_auc_score(y_true, uplift, treatment) -> float:
    """AUUC (0/1 outcomes), normalised as scikit-uplift does: (area under the uplift curve - area under the
    random line) / (area under the perfect uplift curve - area under the random line); 1 = perfect, 0 =
    random."""
    y, s, t = _inputs(y_true, uplift, treatment)
    return _normalised_area(uplift_curve(y, s, t), perfect_uplift_curve(y, t))


# ---------------------------------------------------------------------------------------- uplift at k
def _selected(s: np.ndarray, t: np.ndarray, k: float, strategy: str) -> np.ndarray:
    """Tie-aware weights of the customers selected by "top k": floor(k x n) of all customers ("overall"), or
    floor(k x group size) of the treated and of the control customers separately ("by_group")."""
    if strategy == "overall":
        m = math.floor(k * s.size)
        if m < 1:
            raise ConfigError(f"k={k:.6g} selects no customer of {s.size} (floor(k x n) = 0); raise k")
        return _top_weights(s, m)
    w = np.zeros_like(s)
    for group in (1.0, 0.0):
        rows = t == group
        m = math.floor(k * rows.sum())
        if m < 1:
            raise ConfigError(f"k={k:.6g} selects no customer of the {int(rows.sum())} "
                              f"{'treated' if group else 'control'} ones; raise k")
        w[rows] = _top_weights(s[rows], m)
    return w


def _group_means(y, t, w, where: str) -> tuple[float, float]:
    w_t, w_c = w * t, w * (1 - t)
    for name, weight in (("treated (1)", w_t), ("control (0)", w_c)):
        if weight.sum() == 0:
            raise DataError(TABLE, "treatment", f"{where} holds no {name} customer", f"{int(w.sum())} customers")
    return float(np.dot(w_t, y) / w_t.sum()), float(np.dot(w_c, y) / w_c.sum())


def uplift_at_k(y_true, uplift, treatment, k: float = 0.3, strategy: str = "overall") -> float:
    """Observed uplift among the top k (a fraction in (0, 1]) by predicted uplift: the treated customers'
    response rate minus the control customers' (mean amounts when `y_true` is an amount).

    "overall": the top floor(k x n) customers of both groups together, then the two rates among them (as
    scikit-uplift). "by_group": the top floor(k x n_t) treated and the top floor(k x n_c) control customers,
    ranked separately. Tied predictions at the cut count pro rata."""
    y, s, t = _inputs(y_true, uplift, treatment, binary=False)
    k = check_fraction(k, "k")
    w = _selected(s, t, k, _check_strategy(strategy))
    treated, control = _group_means(y, t, w, f"the top k={k:.6g} by uplift")
    return treated - control


def _decile_of_rows(s: np.ndarray, bins: int) -> np.ndarray:
    """Bin 0..bins-1 of each row: bins of consecutive ranks with sizes as numpy.array_split (the first n % bins
    bins one row larger); a tied block goes whole into the bin of its middle rank."""
    inverse, sizes = _blocks(s)
    middle = np.cumsum(sizes) - sizes + (sizes - 1) / 2
    q, r = divmod(s.size, bins)
    ends = np.cumsum([q + 1] * r + [q] * (bins - r))
    return np.searchsorted(ends, middle, side="right")[inverse]


def uplift_by_decile(y_true, uplift, treatment, bins: int = 10, strategy: str = "overall") -> pd.DataFrame:
    """Observed uplift per bin of predicted uplift, highest first (deciles for bins=10), as scikit-uplift's
    `uplift_by_percentile`.

    "overall": bins of consecutive ranks over all customers; "by_group": the treated and the control
    customers are binned separately. Index `bin` (0 = highest predicted uplift; empty bins left out); columns
    percentile ("0-10", ...), n_treatment, n_control, response_rate_treatment, response_rate_control (mean
    outcome; NaN for a group with no customer in the bin), uplift (their difference), std_uplift
    (sqrt(var_t / n_t + var_c / n_c), population variances: p(1 - p) / n for 0/1 outcomes) and
    mean_predicted (mean predicted uplift in the bin, to compare with the observed one).
    `y_true` may be 0/1 or an amount."""
    y, s, t = _inputs(y_true, uplift, treatment, binary=False)
    bins = check_count(bins, "bins")
    if _check_strategy(strategy) == "overall":
        bin_of = _decile_of_rows(s, bins)
    else:
        bin_of = np.empty(s.size, dtype="int64")
        for group in (1.0, 0.0):
            rows = t == group
            bin_of[rows] = _decile_of_rows(s[rows], bins)
    columns = {}
    for name, mask in (("treatment", t == 1), ("control", t == 0)):
        count = np.bincount(bin_of[mask], minlength=bins)
        total = np.bincount(bin_of[mask], weights=y[mask], minlength=bins)
        squares = np.bincount(bin_of[mask], weights=y[mask] ** 2, minlength=bins)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = total / count
            variance = np.maximum(squares / count - mean ** 2, 0.0) / count
        columns[name] = (count, mean, variance)
    (n_t, rate_t, var_t), (n_c, rate_c, var_c) = columns["treatment"], columns["control"]
    rows = np.bincount(bin_of, minlength=bins)
    edges = [round(100 * i / bins) for i in range(bins + 1)]
    table = pd.DataFrame(
        {
            "percentile": [f"{edges[i]}-{edges[i + 1]}" for i in range(bins)],
            "n_treatment": n_t.astype("int64"),
            "n_control": n_c.astype("int64"),
            "response_rate_treatment": rate_t,
            "response_rate_control": rate_c,
            "uplift": rate_t - rate_c,
            "std_uplift": np.sqrt(var_t + var_c),
            "mean_predicted": np.bincount(bin_of, weights=s, minlength=bins) / np.maximum(rows, 1),
        },
        index=pd.Index(np.arange(bins), name="bin"),
    )
    return table[rows > 0]


# -------------------------------------------------------------------------------------- policy value
@dataclass(frozen=True)
class PolicyValue:
    """Estimated effect of a targeting rule vs contacting nobody, on the evaluated customers (totals, not per
    customer). `ci_low`/`ci_high` bound `incremental_profit`, `responses_ci_low`/`responses_ci_high` bound
    `incremental_responses`, both at `confidence` (normal approximation)."""

    incremental_responses: float
    incremental_profit: float
    ci_low: float
    ci_high: float
    responses_ci_low: float
    responses_ci_high: float
    contacts: float
    n: int
    confidence: float
    contacts_by_arm: dict = field(default_factory=dict)

    def as_dict(self) -> dict[str, float]:
        """Flat name -> number (contacts per arm as `contacts_<arm>`), e.g. for MLflow metrics."""
        out = {k: float(v) for k, v in vars(self).items() if k != "contacts_by_arm"}
        out.update({f"contacts_{arm}": float(c) for arm, c in self.contacts_by_arm.items()})
        return out


def _as_objects(values, name: str, n: int) -> np.ndarray:
    """1-d object array of labels (arm names or 0/1) of length n, no missing value."""
    is_pandas = isinstance(values, (pd.Series, pd.Index))
    arr = values.to_numpy(dtype=object) if is_pandas else np.asarray(values, dtype=object)
    if arr.ndim != 1:
        raise DataError(TABLE, name, f"must be one-dimensional, got shape {arr.shape}", None)
    if arr.size != n:
        raise DataError(TABLE, name, f"must have the same length as y_true ({n} rows)", f"{arr.size} rows")
    missing = pd.isna(arr)
    if missing.any():
        raise DataError(TABLE, name, "missing value", example(arr, missing))
    return arr


def _arms(treatment, n: int, control) -> tuple[np.ndarray, list, object]:
    """Arm code per row (0 = control, a + 1 = arms[a]), the treatment arm names (sorted) and the control."""
    arr = _as_objects(treatment, "treatment", n)
    present = set(pd.unique(arr).tolist())
    if control is None:
        if not present <= {0, 1}:
            names = ", ".join(repr(v) for v in sorted(present, key=str)[:4])
            raise ConfigError(f"control: name the control arm of treatment (its values are {names}); "
                              "control=0 is assumed only for 0/1 treatment")
        control = 0
    if control not in present:
        raise DataError(TABLE, "treatment", f"has no row of the control arm {shown(control)}",
                        example(arr, np.ones(n, dtype=bool)))
    arms = sorted(present - {control}, key=str)
    if not arms:
        raise DataError(TABLE, "treatment", f"has no treated row: every row is the control arm {shown(control)}",
                        example(arr, np.ones(n, dtype=bool)))
    code = pd.Series(arr, dtype=object).map({control: 0} | {a: i + 1 for i, a in enumerate(arms)})
    code = code.to_numpy(dtype="int64")
    for i, arm in enumerate([control, *arms]):
        if (code == i).sum() < 2:
            raise DataError(TABLE, "treatment", f"arm {shown(arm)} has only 1 row; at least 2 are "
                            "needed to estimate a policy value", example(arr, code == i))
    return code, arms, control


def _contact_weights(target, target_arm, n: int, arms: list, control) -> np.ndarray:
    """(n, n_arms) probability of contacting each customer with each arm under the rule."""
    if (target is None) == (target_arm is None):
        raise ConfigError("give exactly one of target (who is contacted, one treatment arm) and target_arm (the "
                          "arm each customer is contacted with, the control name for nobody)")
    if target is not None:
        if len(arms) > 1:
            raise ConfigError(f"target: treatment has {len(arms)} arms ({', '.join(map(repr, arms))}); give "
                              "target_arm, the arm each customer is contacted with")
        w = as_float(target, "target", "must be booleans or contact probabilities in [0, 1]")
        if w.size != n:
            raise DataError(TABLE, "target", f"must have the same length as y_true ({n} rows)", f"{w.size} rows")
        bad = np.isnan(w) | (w < 0) | (w > 1)
        if bad.any():
            raise DataError(TABLE, "target", "must be booleans or contact probabilities in [0, 1]",
                            example(w, bad))
        return w[:, None]
    chosen = _as_objects(target_arm, "target_arm", n)
    unknown = ~pd.Series(chosen, dtype=object).isin([control, *arms]).to_numpy()
    if unknown.any():
        raise DataError(TABLE, "target_arm", f"must be a treatment arm ({', '.join(map(repr, arms))}) or the "
                        f"control {shown(control)} for no contact", example(chosen, unknown))
    return np.column_stack([chosen == a for a in arms]).astype("float64")


def _per_arm(value, name: str, arms: list, control=None) -> np.ndarray:
    """A number, or a mapping arm -> number (with `control` when given), as an array in arm order."""
    keys = arms if control is None else [control, *arms]
    if isinstance(value, Mapping):
        missing = [k for k in keys if k not in value]
        if missing:
            raise ConfigError(f"{name} has no value for arm {shown(missing[0])}; give a number or one per arm "
                              f"({', '.join(map(repr, keys))})")
        values = [value[k] for k in keys]
    else:
        values = [value] * len(keys)
    try:
        out = np.array([float(v) for v in values])
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name} must be a number or a mapping arm -> number, got {shown(value)}") from exc
    if not np.isfinite(out).all() or any(isinstance(v, bool) for v in values):
        raise ConfigError(f"{name} must be finite numbers, got {shown(value)}")
    return out


def _propensities(propensity, arms: list, control) -> np.ndarray | None:
    """P(arm) for control then each arm, or None (estimated: the observed shares)."""
    if propensity is None:
        return None
    if not isinstance(propensity, Mapping):
        if len(arms) > 1:
            raise ConfigError("propensity: with several treatment arms give a mapping arm -> probability, "
                              f"control included ({', '.join(map(repr, [control, *arms]))})")
        p = _per_arm(propensity, "propensity", arms)[0]
        e = np.array([1.0 - p, p])
    else:
        e = _per_arm(propensity, "propensity", arms, control)
    if (e <= 0).any() or (e >= 1).any() or abs(e.sum() - 1.0) > 1e-6:
        raise ConfigError(f"propensity must give each arm a probability in (0, 1), summing to 1, got "
                          f"{shown(propensity)}")
    return e


def _ipw(outcome: np.ndarray, code: np.ndarray, w: np.ndarray, e: np.ndarray | None) -> tuple[float, float]:
    """Estimate and variance of sum_i sum_a w_ia (Y_i(a) - Y_i(control)).

    Observed shares (e None): n x (sum_a mean over arm a of w_a Y - mean over control of (sum_a w_a) Y), with
    Neyman's variance (the groups' sample variances over their sizes). Known propensities: the
    inverse-propensity (Horvitz-Thompson) sum with variance n x var(per-customer terms)."""
    n = outcome.size
    control = code == 0
    contacted = w[control].sum(axis=1) * outcome[control]
    if e is None:
        estimate = -n * contacted.mean()
        variance = n ** 2 * contacted.var(ddof=1) / control.sum()
        for a in range(w.shape[1]):
            rows = code == a + 1
            g = w[rows, a] * outcome[rows]
            estimate += n * g.mean()
            variance += n ** 2 * g.var(ddof=1) / rows.sum()
        return float(estimate), float(variance)
    z = np.zeros(n)
    z[control] = -contacted / e[0]
    for a in range(w.shape[1]):
        rows = code == a + 1
        z[rows] = w[rows, a] * outcome[rows] / e[a + 1]
    return float(z.sum()), float(n * z.var(ddof=1))


def policy_value(y_true, treatment, target=None, *, target_arm=None, control=None, propensity=None,
                 value=1.0, cost=0.0, confidence: float = 0.95) -> PolicyValue:
    """Off-policy value, on randomised data, of contacting the customers a rule selects vs contacting nobody.

    incremental_responses = sum over contacted customers of Y(arm) - Y(control), estimated by inverse
    propensity weighting: with `propensity=None` the arms' observed shares (then it is n x the difference of
    the group means of target x y), else the given design probabilities (a number for one arm, or a mapping arm
    -> probability with the control). incremental_profit = the same with y x `value` (a number or one per
    customer, e.g. the margin or the second lifetime value of a response; with amounts in `y_true` the margin
    rate) minus `cost` x contacts (a number or a mapping arm -> cost per contact). The interval is normal, at
    `confidence`, from the sampling variance of the estimate; the contacts are fixed by the rule.

    One treatment arm: `target` = booleans (contacted) or contact probabilities in [0, 1]. Several: `target_arm`
    = the arm each customer is contacted with (the `control` name for no contact). `treatment` = 0/1 (control
    0) or arm names with `control` given. `y_true` = 0/1 outcomes or amounts."""
    y = _check_outcome(y_true, binary=False)
    n = y.size
    code, arms, control = _arms(treatment, n, control)
    w = _contact_weights(target, target_arm, n, arms, control)
    if isinstance(value, Mapping):
        raise ConfigError("value must be a number or one number per customer, not a mapping")
    v = np.full(n, _per_arm(value, "value", ["all"])[0]) if np.ndim(value) == 0 else check_scores(value, n, "value")
    costs = _per_arm(cost, "cost", arms)
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0 < confidence < 1:
        raise ConfigError(f"confidence must be a number in (0, 1), got {shown(confidence)}")
    e = _propensities(propensity, arms, control)
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    responses, var_responses = _ipw(y, code, w, e)
    gain, var_gain = _ipw(y * v, code, w, e)
    contacts = w.sum(axis=0)
    profit = gain - float(np.dot(costs, contacts))
    half_r, half_p = z * math.sqrt(var_responses), z * math.sqrt(var_gain)
    return PolicyValue(
        incremental_responses=responses, incremental_profit=profit, ci_low=profit - half_p,
        ci_high=profit + half_p, responses_ci_low=responses - half_r, responses_ci_high=responses + half_r,
        contacts=float(contacts.sum()), n=n, confidence=float(confidence),
        contacts_by_arm={str(a): float(c) for a, c in zip(arms, contacts, strict=True)},
    )


def policy_value_at_k(y_true, treatment, uplift, k: float, **kwargs) -> PolicyValue:
    """`policy_value` of "contact the top k (a fraction in (0, 1]) by predicted uplift", one treatment arm:
    floor(k x n) contacts, a tied block at the cut contacted pro rata. Keyword arguments as `policy_value`."""
    y = _check_outcome(y_true, binary=False)
    s = check_scores(uplift, y.size, "uplift")
    k = check_fraction(k, "k")
    return policy_value(y, treatment, _top_weights(s, math.floor(k * y.size)), **kwargs)


def policy_value_curve(y_true, treatment, uplift, shares=None, **kwargs) -> pd.DataFrame:
    """`policy_value_at_k` at each share contacted (default 0, 5%, ..., 100%): columns share, contacts,
    incremental_responses, incremental_profit, ci_low, ci_high (of the profit). Share 0 is contacting nobody
    (all zeros). Keyword arguments as `policy_value`."""
    y = _check_outcome(y_true, binary=False)
    s = check_scores(uplift, y.size, "uplift")
    grid = np.linspace(0.0, 1.0, 21) if shares is None else as_float(shares, "shares", "must be numbers in [0, 1]")
    bad = np.isnan(grid) | (grid < 0) | (grid > 1)
    if bad.any():
        raise DataError(TABLE, "shares", "must be numbers in [0, 1]", example(grid, bad))
    rows = []
    for share in grid:
        pv = policy_value(y, treatment, _top_weights(s, math.floor(share * y.size)), **kwargs)
        rows.append((share, pv.contacts, pv.incremental_responses, pv.incremental_profit, pv.ci_low, pv.ci_high))
    return pd.DataFrame(rows, columns=["share", "contacts", "incremental_responses", "incremental_profit",
                                       "ci_low", "ci_high"])
