"""Metrics for binary classifiers (churn, propensity): ranking, probability quality and targeting tables.

Every function validates its input first: `y_true` must be 0/1 (numbers or booleans) with both classes
present, scores must be finite numbers of the same length, probabilities must lie in [0, 1]. A bad input
raises `custval.errors.DataError` naming the argument, the rule and an example value.

Lift, capture and gains rank customers by score, highest first. Customers with tied scores form one block
that is never split by row order: a cut through a block counts the block's positives pro rata (the
expected value under a random order within the block). The cut itself is `fraction * n` rows, which need
not be a whole number: the cumulative-positives curve is linear between block ends (and within a row), so
`lift_at(y, s, f) == capture_at(y, s, f) / f` holds exactly and no result depends on the order of the rows.

Where scikit-learn has the same definition, its function computes the value (ROC AUC, average precision as
PR AUC, the ROC curve, log loss, Brier). Lift, capture and gains are custval's own: scikit-learn has no
such metric (and a tie rule that splits by row order would make them depend on the input order).
`calibration_table` is custval's own too: it uses `sklearn.calibration.calibration_curve`'s bins, but that
function returns no counts or bin numbers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from custval.errors import ConfigError, DataError, shown
from custval.metrics._checks import TABLE, as_float, check_count, check_fraction, check_scores, example

__all__ = [
    "REPORT_FRACTIONS",
    "brier",
    "calibration_table",
    "capture_at",
    "check_labels",
    "classification_report",
    "gains_curve",
    "lift_at",
    "log_loss",
    "pr_auc",
    "roc_auc",
    "roc_curve",
]

REPORT_FRACTIONS = {"5": 0.05, "10": 0.10, "20": 0.20}


# ------------------------------------------------------------------------------------------ validation
def check_labels(y_true) -> np.ndarray:
    """Validated labels as a float64 0/1 array with both classes present (DataError otherwise)."""
    v = as_float(y_true, "y_true", "must be 0/1 numbers or booleans (parse text labels with "
                 "custval.data.schemas.parse_binary_label)")
    missing = np.isnan(v)
    if missing.any():
        raise DataError(TABLE, "y_true", "missing label (NaN)", example(v, missing))
    bad = (v != 0) & (v != 1)
    if bad.any():
        raise DataError(TABLE, "y_true", "must be 0/1 (or True/False)", example(v, bad))
    n_pos = int(v.sum())
    if n_pos == 0 or n_pos == v.size:
        raise DataError(TABLE, "y_true", f"needs both classes 0 and 1; all {v.size} labels are {int(v[0])}",
                        int(v[0]))
    return v


# ------------------------------------------------------------------------------------------- ranking
def roc_auc(y_true, score) -> float:
    """Area under the ROC curve: P(a random positive scores above a random negative), ties count 1/2."""
    y = check_labels(y_true)
    s = check_scores(score, y.size)
    return float(skm.roc_auc_score(y, s))


def pr_auc(y_true, score) -> float:
    """Area under the precision-recall curve as average precision (step-wise, no interpolation); tied
    scores enter as one threshold, so the value does not depend on row order."""
    y = check_labels(y_true)
    s = check_scores(score, y.size)
    return float(skm.average_precision_score(y, s))


def roc_curve(y_true, score) -> pd.DataFrame:
    """ROC curve points from (0, 0) to (1, 1): columns fpr, tpr, threshold (one point per distinct score,
    collinear points dropped as scikit-learn does)."""
    y = check_labels(y_true)
    s = check_scores(score, y.size)
    fpr, tpr, thr = skm.roc_curve(y, s)
    return pd.DataFrame({"fpr": fpr, "tpr": tpr, "threshold": thr})


# ---------------------------------------------------------------------------------------- probability
def log_loss(y_true, prob) -> float:
    """Mean negative log-likelihood of the labels under predicted probabilities of class 1 (natural log;
    probabilities of exactly 0 or 1 are clipped to machine epsilon by scikit-learn)."""
    y = check_labels(y_true)
    p = check_scores(prob, y.size, "prob", probability=True)
    return float(skm.log_loss(y, p, labels=[0.0, 1.0]))


def brier(y_true, prob) -> float:
    """Brier score: mean squared difference between the predicted probability and the 0/1 label."""
    y = check_labels(y_true)
    p = check_scores(prob, y.size, "prob", probability=True)
    return float(skm.brier_score_loss(y, p))


# ------------------------------------------------------------------------------------ lift and capture
def _cumulative_positives(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Knots of the tie-aware cumulative-positives curve: (rows, positives) at 0 and at each block end,
    blocks = distinct scores in descending order. Linear interpolation between knots = pro-rata ties."""
    uniq, inverse = np.unique(-s, return_inverse=True)  # ascending -s = descending s
    rows = np.bincount(inverse, minlength=uniq.size).astype("float64")
    pos = np.bincount(inverse, weights=y, minlength=uniq.size)
    return np.concatenate([[0.0], np.cumsum(rows)]), np.concatenate([[0.0], np.cumsum(pos)])


def _captured(y: np.ndarray, s: np.ndarray, fractions: np.ndarray) -> np.ndarray:
    knots_rows, knots_pos = _cumulative_positives(y, s)
    return np.interp(fractions * y.size, knots_rows, knots_pos) / y.sum()


def capture_at(y_true, score, fraction: float) -> float:
    """Share of all positives found in the top `fraction` of customers by score (tied blocks pro rata)."""
    f = check_fraction(fraction)
    y = check_labels(y_true)
    s = check_scores(score, y.size)
    return float(_captured(y, s, np.array([f]))[0])


def lift_at(y_true, score, fraction: float) -> float:
    """Positive rate in the top `fraction` divided by the overall positive rate (= capture / fraction)."""
    f = check_fraction(fraction)
    return capture_at(y_true, score, f) / f


def gains_curve(y_true, score, n_points: int = 100) -> pd.DataFrame:
    """Cumulative gains: n_points + 1 rows at fraction = 0, 1/n_points, ..., 1 with columns fraction,
    capture (share of positives in the top fraction) and lift (capture / fraction). At fraction 0 the lift
    is its limit: the positive rate of the highest-scored block over the base rate."""
    n_points = check_count(n_points, "n_points")
    y = check_labels(y_true)
    s = check_scores(score, y.size)
    fraction = np.linspace(0.0, 1.0, int(n_points) + 1)
    capture = _captured(y, s, fraction)
    knots_rows, knots_pos = _cumulative_positives(y, s)
    first_block_rate = knots_pos[1] / knots_rows[1]
    lift = np.empty_like(capture)
    lift[0] = first_block_rate / y.mean()
    lift[1:] = capture[1:] / fraction[1:]
    return pd.DataFrame({"fraction": fraction, "capture": capture, "lift": lift})


# ------------------------------------------------------------------------------------------ calibration
def calibration_table(y_true, prob, n_bins: int = 10, strategy: str = "quantile") -> pd.DataFrame:
    """Reliability table: mean predicted probability, observed positive rate and count per bin.

    `strategy="uniform"`: bins of equal width on [0, 1]; `"quantile"`: edges at the quantiles of `prob`, so
    bins hold about equal numbers of customers. Bins are right-closed as in
    `sklearn.calibration.calibration_curve` (a value on an edge goes to the lower bin); empty bins (and
    bins collapsed by tied quantiles) are left out. Index `bin` = 0-based bin number.
    """
    n_bins = check_count(n_bins, "n_bins")
    if strategy not in ("quantile", "uniform"):
        raise ConfigError(f"strategy must be 'quantile' or 'uniform', got {shown(strategy)}")
    y = check_labels(y_true)
    p = check_scores(prob, y.size, "prob", probability=True)
    if strategy == "quantile":
        edges = np.quantile(p, np.linspace(0.0, 1.0, n_bins + 1))
    else:
        edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.searchsorted(edges[1:-1], p)
    count = np.bincount(bins, minlength=n_bins)
    sum_p = np.bincount(bins, weights=p, minlength=n_bins)
    sum_y = np.bincount(bins, weights=y, minlength=n_bins)
    keep = count > 0
    table = pd.DataFrame(
        {
            "mean_predicted": sum_p[keep] / count[keep],
            "observed_rate": sum_y[keep] / count[keep],
            "count": count[keep].astype("int64"),
        },
        index=pd.Index(np.flatnonzero(keep), name="bin"),
    )
    return table


# --------------------------------------------------------------------------------------------- report
def classification_report(y_true, prob) -> dict[str, float]:
    """The standard test-set metrics of a probability model, as plain floats (for MLflow)."""
    y = check_labels(y_true)
    p = check_scores(prob, y.size, "prob", probability=True)
    report = {
        "roc_auc": float(skm.roc_auc_score(y, p)),
        "pr_auc": float(skm.average_precision_score(y, p)),
        "log_loss": float(skm.log_loss(y, p, labels=[0.0, 1.0])),
        "brier": float(skm.brier_score_loss(y, p)),
        "base_rate": float(y.mean()),
    }
    fractions = np.array(list(REPORT_FRACTIONS.values()))
    capture = _captured(y, p, fractions)
    for key, f, c in zip(REPORT_FRACTIONS, fractions, capture, strict=True):
        report[f"lift_{key}"] = float(c / f)
    for key, c in zip(REPORT_FRACTIONS, capture, strict=True):
        report[f"capture_{key}"] = float(c)
    return report
