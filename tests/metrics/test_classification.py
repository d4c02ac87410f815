"""Classification metrics: hand-worked lift/capture/gains with ties, AUC and AP against independent counting
implementations, calibration bins against scikit-learn's calibration_curve, and an error for each bad input."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from sklearn.calibration import calibration_curve

from custval.errors import ConfigError, DataError
from custval.metrics.classification import (
    brier,
    calibration_table,
    capture_at,
    classification_report,
    gains_curve,
    lift_at,
    log_loss,
    pr_auc,
    roc_auc,
    roc_curve,
)

# 10 customers, 4 positives (base rate 0.4). Score blocks, highest first:
#   0.9: 1 row / 1 pos | 0.8: 2 rows / 1 pos | 0.7: 1 row / 1 pos | 0.6: 3 rows / 1 pos | 0.3, 0.2, 0.1: 0 pos
Y = np.array([1, 0, 1, 1, 0, 0, 1, 0, 0, 0])
S = np.array([0.9, 0.8, 0.8, 0.7, 0.6, 0.6, 0.6, 0.3, 0.2, 0.1])


# ------------------------------------------------------------------------------ independent oracles
def pairwise_auc(y, s) -> float:
    """P(score of a positive > score of a negative) + 1/2 P(equal), by counting every pair."""
    pos = [b for a, b in zip(y, s, strict=True) if a == 1]
    neg = [b for a, b in zip(y, s, strict=True) if a == 0]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def average_precision_by_thresholds(y, s) -> float:
    """sum over distinct thresholds t (descending) of (recall(t) - recall(previous)) * precision(t)."""
    y, s = np.asarray(y), np.asarray(s)
    total, prev_recall, ap = y.sum(), 0.0, 0.0
    for t in sorted(set(s.tolist()), reverse=True):
        chosen = s >= t
        recall = y[chosen].sum() / total
        ap += (recall - prev_recall) * y[chosen].mean()
        prev_recall = recall
    return ap


def expected_positives_in_top(y, s, k: int) -> float:
    """Mean number of positives in the first k rows over EVERY ordering of the rows within tied blocks."""
    blocks = [list(np.flatnonzero(s == v)) for v in sorted(set(s.tolist()), reverse=True)]
    counts = []
    for perms in itertools.product(*[itertools.permutations(b) for b in blocks]):
        order = [i for block in perms for i in block]
        counts.append(y[order[:k]].sum())
    return float(np.mean(counts))


# ------------------------------------------------------------------------------------- hand-worked
def test_capture_and_lift_by_hand_with_tied_blocks_counted_pro_rata():
    # top 1 row (10%): the 0.9 row, a positive -> 1 of 4 positives
    assert capture_at(Y, S, 0.1) == pytest.approx(0.25)
    assert lift_at(Y, S, 0.1) == pytest.approx(2.5)
    # top 2 rows: the 0.9 row + half of the 0.8 block (1 positive in 2 rows) -> 1.5 positives
    assert capture_at(Y, S, 0.2) == pytest.approx(1.5 / 4)
    assert lift_at(Y, S, 0.2) == pytest.approx((1.5 / 2) / 0.4)
    # top 5 rows: 0.9, 0.8 x2, 0.7 (3 positives) + 1 row of the 3-row 0.6 block holding 1 positive -> 3 1/3
    assert capture_at(Y, S, 0.5) == pytest.approx((3 + 1 / 3) / 4)
    assert lift_at(Y, S, 0.5) == pytest.approx(((3 + 1 / 3) / 5) / 0.4)
    # top 0.5 rows (5%): half of the first row -> 0.5 positives
    assert capture_at(Y, S, 0.05) == pytest.approx(0.125)
    assert lift_at(Y, S, 0.05) == pytest.approx(2.5)
    # everything: all positives, lift 1
    assert capture_at(Y, S, 1.0) == pytest.approx(1.0)
    assert lift_at(Y, S, 1.0) == pytest.approx(1.0)


@pytest.mark.parametrize("k", range(1, 11))
def test_capture_equals_the_mean_over_all_orderings_of_tied_rows(k):
    assert capture_at(Y, S, k / 10) == pytest.approx(expected_positives_in_top(Y, S, k) / Y.sum())


def test_results_do_not_depend_on_row_order():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 200)
    s = np.round(rng.random(200), 1)  # heavy ties: 11 distinct scores
    base = [capture_at(y, s, f) for f in (0.05, 0.1, 0.2, 0.33)] + [roc_auc(y, s), pr_auc(y, s)]
    for _ in range(5):
        perm = rng.permutation(200)
        again = [capture_at(y[perm], s[perm], f) for f in (0.05, 0.1, 0.2, 0.33)]
        again += [roc_auc(y[perm], s[perm]), pr_auc(y[perm], s[perm])]
        assert again == pytest.approx(base, abs=1e-12)


def test_gains_curve_by_hand():
    g = gains_curve(Y, S, n_points=10)
    assert list(g.columns) == ["fraction", "capture", "lift"]
    assert g["fraction"].to_numpy() == pytest.approx(np.arange(11) / 10)
    # positives in the top k rows, k = 0..10 (ties pro rata): 0, 1, 1.5, 2, 3, 3 1/3, 3 2/3, 4, 4, 4, 4
    positives = np.array([0, 1, 1.5, 2, 3, 3 + 1 / 3, 3 + 2 / 3, 4, 4, 4, 4])
    assert g["capture"].to_numpy() == pytest.approx(positives / 4)
    rate_in_top = positives[1:] / np.arange(1, 11)
    assert g["lift"].to_numpy()[1:] == pytest.approx(rate_in_top / 0.4)
    # at fraction 0 the lift is its limit: positive rate of the top block (1/1) over the base rate
    assert g["lift"].iloc[0] == pytest.approx(2.5)


def test_gains_curve_agrees_with_capture_and_lift_at_each_point():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 333)
    s = np.round(rng.random(333), 2)
    g = gains_curve(y, s, n_points=20)
    assert len(g) == 21
    for f, c, lift in g.iloc[1:].itertuples(index=False):
        assert capture_at(y, s, f) == pytest.approx(c)
        assert lift_at(y, s, f) == pytest.approx(lift)
    assert np.all(np.diff(g["capture"]) >= -1e-15)


def test_auc_matches_pairwise_counting():
    assert roc_auc(Y, S) == pytest.approx(20.5 / 24)  # worked by hand: 6 + 5.5 + 5 + 4 wins of 24 pairs
    assert roc_auc(Y, S) == pytest.approx(pairwise_auc(Y, S))
    rng = np.random.default_rng(1)
    for _ in range(5):
        y = rng.integers(0, 2, 150)
        s = np.round(rng.normal(y * 0.7, 1.0), 1)  # informative, with ties
        assert roc_auc(y, s) == pytest.approx(pairwise_auc(y, s), abs=1e-12)
    # perfect and reversed rankings
    assert roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == 1.0
    assert roc_auc([0, 0, 1, 1], [0.4, 0.3, 0.2, 0.1]) == 0.0


def test_roc_curve_points_give_the_auc():
    curve = roc_curve(Y, S)
    assert list(curve.columns) == ["fpr", "tpr", "threshold"]
    assert (curve["fpr"].iloc[0], curve["tpr"].iloc[0]) == (0.0, 0.0)
    assert (curve["fpr"].iloc[-1], curve["tpr"].iloc[-1]) == (1.0, 1.0)
    assert np.trapezoid(curve["tpr"], curve["fpr"]) == pytest.approx(pairwise_auc(Y, S))


def test_pr_auc_is_average_precision_over_distinct_thresholds():
    # by hand: thresholds .9 (R 1/4, P 1), .8 (R 2/4, P 2/3), .7 (R 3/4, P 3/4), .6 (R 1, P 4/7)
    by_hand = 0.25 * 1 + 0.25 * 2 / 3 + 0.25 * 3 / 4 + 0.25 * 4 / 7
    assert pr_auc(Y, S) == pytest.approx(by_hand)
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 300)
    s = np.round(rng.normal(y, 1.0), 1)
    assert pr_auc(y, s) == pytest.approx(average_precision_by_thresholds(y, s))


def test_log_loss_and_brier_by_formula():
    y = np.array([1, 0, 1, 0])
    p = np.array([0.8, 0.3, 0.6, 0.1])
    expected_ll = -np.mean([np.log(0.8), np.log(0.7), np.log(0.6), np.log(0.9)])
    assert log_loss(y, p) == pytest.approx(expected_ll)
    assert brier(y, p) == pytest.approx((0.04 + 0.09 + 0.16 + 0.01) / 4)
    # a confident wrong answer is finite (clipped), not inf
    assert np.isfinite(log_loss([1, 0], [0.0, 0.0]))


def test_calibration_table_uniform_by_hand():
    y = [0, 0, 1, 0, 1, 1]
    p = [0.05, 0.15, 0.45, 0.55, 0.95, 0.85]
    t = calibration_table(y, p, n_bins=2, strategy="uniform")  # bins [0, .5] and (.5, 1]
    assert list(t.columns) == ["mean_predicted", "observed_rate", "count"]
    assert t["count"].tolist() == [3, 3]
    assert t["mean_predicted"].to_numpy() == pytest.approx([(0.05 + 0.15 + 0.45) / 3, (0.55 + 0.95 + 0.85) / 3])
    assert t["observed_rate"].to_numpy() == pytest.approx([1 / 3, 2 / 3])


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_calibration_table_matches_sklearn_calibration_curve(strategy):
    rng = np.random.default_rng(4)
    p = rng.beta(2, 5, 2000)
    y = (rng.random(2000) < p).astype(int)
    t = calibration_table(y, p, n_bins=10, strategy=strategy)
    prob_true, prob_pred = calibration_curve(y, p, n_bins=10, strategy=strategy)
    assert t["observed_rate"].to_numpy() == pytest.approx(prob_true)
    assert t["mean_predicted"].to_numpy() == pytest.approx(prob_pred)
    assert t["count"].sum() == 2000
    if strategy == "quantile":
        assert t["count"].min() >= 199 and t["count"].max() <= 201
    else:
        assert t.index.max() <= 9


def test_report_has_exactly_the_agreed_keys_and_matches_the_functions():
    rng = np.random.default_rng(5)
    p = rng.random(500)
    y = (rng.random(500) < p).astype(int)
    r = classification_report(y, p)
    assert list(r) == ["roc_auc", "pr_auc", "log_loss", "brier", "base_rate", "lift_5", "lift_10", "lift_20",
                       "capture_5", "capture_10", "capture_20"]
    assert all(type(v) is float for v in r.values())
    assert r["roc_auc"] == pytest.approx(pairwise_auc(y, p))
    assert r["pr_auc"] == pytest.approx(average_precision_by_thresholds(y, p))
    assert r["log_loss"] == pytest.approx(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    assert r["brier"] == pytest.approx(np.mean((p - y) ** 2))
    assert r["base_rate"] == pytest.approx(y.mean())
    # 500 distinct scores: the top 5/10/20% are 25/50/100 whole rows
    order = np.argsort(-p)
    for key, k in (("5", 25), ("10", 50), ("20", 100)):
        captured = y[order[:k]].sum()
        assert r[f"capture_{key}"] == pytest.approx(captured / y.sum())
        assert r[f"lift_{key}"] == pytest.approx((captured / k) / y.mean())


def test_accepts_booleans_lists_and_series():
    yb = Y.astype(bool)
    assert roc_auc(yb, S) == pytest.approx(roc_auc(Y, S))
    assert capture_at(pd.Series(Y, dtype="Int8"), pd.Series(S), 0.2) == pytest.approx(0.375)
    assert roc_auc(list(Y), list(S)) == pytest.approx(20.5 / 24)


# ------------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("y", "rule", "example"),
    [
        ([1, 0, 2, 0], "must be 0/1", "position 2"),
        ([1, 0, -1, 0], "must be 0/1", "position 2"),
        ([1.0, 0.0, 0.5, 0.0], "must be 0/1", "0.5"),
        (["Yes", "No", "No", "Yes"], "not text", "'Yes'"),
        ([1, 0, np.nan, 0], "missing label", "position 2"),
        (pd.Series([1, 0, None, 0], dtype="Int8"), "missing label", "position 2"),
        ([1, 1, 1, 1], "both classes", "1"),
        ([False, False, False, False], "both classes", "0"),
    ],
)
def test_bad_labels_raise_data_error_naming_rule_and_example(y, rule, example):
    for fn in (roc_auc, pr_auc, log_loss, brier, classification_report):
        with pytest.raises(DataError, match=rule) as info:
            fn(y, [0.1, 0.2, 0.3, 0.4])
        assert info.value.column == "y_true" and example in str(info.value.example)
    with pytest.raises(DataError, match=rule):
        capture_at(y, [0.1, 0.2, 0.3, 0.4], 0.5)


@pytest.mark.parametrize(
    ("s", "rule", "example"),
    [
        ([0.1, np.nan, 0.3, 0.4], "missing value", "position 1"),
        ([0.1, np.inf, 0.3, 0.4], "finite", "position 1"),
        ([0.1, 0.2, 0.3], "same length", "3 rows"),
        (["a", 0.2, 0.3, 0.4], "numeric", "'a'"),
        ([[0.1, 0.2], [0.3, 0.4]], "one-dimensional", None),
    ],
)
def test_bad_scores_raise_data_error(s, rule, example):
    for fn in (roc_auc, pr_auc, gains_curve, roc_curve):
        with pytest.raises(DataError, match=rule) as info:
            fn([1, 0, 1, 0], s)
        assert info.value.column == "score"
        if example is not None:
            assert example in str(info.value.example)


def test_probabilities_outside_unit_interval_are_rejected_where_probabilities_are_needed():
    for fn in (log_loss, brier, classification_report, calibration_table):
        with pytest.raises(DataError, match=r"\[0, 1\]") as info:
            fn([1, 0, 1, 0], [0.2, 1.5, 0.3, 0.4])
        assert info.value.column == "prob" and "1.5" in info.value.example
    assert roc_auc([1, 0, 1, 0], [2.0, -1.0, 3.0, 0.5]) == 1.0  # a ranking score may be any real


def test_empty_input_is_an_error():
    with pytest.raises(DataError, match="empty"):
        roc_auc([], [])


@pytest.mark.parametrize("fraction", [0, -0.1, 1.5, "x", None, True])
def test_fraction_outside_zero_one_is_a_config_error(fraction):
    with pytest.raises(ConfigError, match="fraction"):
        lift_at(Y, S, fraction)
    with pytest.raises(ConfigError, match="fraction"):
        capture_at(Y, S, fraction)


def test_bad_bins_and_strategy_are_config_errors():
    with pytest.raises(ConfigError, match="n_bins"):
        calibration_table(Y, S, n_bins=0)
    with pytest.raises(ConfigError, match="strategy"):
        calibration_table(Y, S, strategy="kmeans")
    with pytest.raises(ConfigError, match="n_points"):
        gains_curve(Y, S, n_points=0)
