"""Uplift metrics: hand-worked curves, areas, uplift@k and deciles (with ties), the same values as scikit-uplift
0.5.1 on the same predictions (several seeds, ties, constant scores), the off-policy value against hand sums
and against the known truth of synthetic randomised data (CI coverage), and an error for each bad input."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import sklift.metrics as sk

from custval.errors import ConfigError, DataError
from custval.metrics.uplift import (
    PolicyValue,
    perfect_qini_curve,
    perfect_uplift_curve,
    policy_value,
    policy_value_at_k,
    policy_value_curve,
    qini_auc_score,
    qini_curve,
    uplift_at_k,
    uplift_auc_score,
    uplift_by_decile,
    uplift_curve,
)

# scikit-uplift 0.5.1 calls sklearn's deprecated stable_cumsum and pandas' deprecated set_index(inplace=)
pytestmark = [pytest.mark.filterwarnings("ignore:Function stable_cumsum is deprecated:FutureWarning"),
              pytest.mark.filterwarnings("ignore:The inplace keyword in DataFrame.set_index is deprecated")]

# 8 customers ranked by predicted uplift (no ties):
S = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2])
T = np.array([1, 0, 1, 1, 0, 0, 1, 0])
Y = np.array([1, 0, 1, 0, 1, 0, 0, 1])
# Qini at n = 1..8: Y_t - Y_c * N_t / N_c (Y_t while N_c = 0)
QINI = [0, 1, 1, 2, 2, 2 - 1 * 3 / 2, 2 - 1 * 3 / 3, 2 - 1 * 4 / 3, 2 - 2 * 4 / 4]
# uplift curve at n: (Y_t / N_t - Y_c / N_c) * n
UPLIFT = [0, 1, 2, 3, (2 / 3) * 4, (2 / 3 - 1 / 2) * 5, (2 / 3 - 1 / 3) * 6, (1 / 2 - 1 / 3) * 7, 0]


def random_campaign(seed: int, n: int = 2000, ties: bool = False):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    t = rng.integers(0, 2, n)
    true_uplift = 0.05 + 0.15 * np.tanh(x)  # negative for x < -0.35: sleeping dogs
    y = (rng.random(n) < 0.3 + t * true_uplift).astype(int)
    score = true_uplift + rng.normal(0, 0.1, n)
    if ties:
        score = np.round(score, 1)
    return y, score, t, true_uplift


# ------------------------------------------------------------------------------------- hand-worked
def test_qini_and_uplift_curves_by_hand():
    n, q = qini_curve(Y, S, T)
    np.testing.assert_array_equal(n, np.arange(9))
    np.testing.assert_allclose(q, QINI)
    n, u = uplift_curve(Y, S, T)
    np.testing.assert_array_equal(n, np.arange(9))
    np.testing.assert_allclose(u, UPLIFT)


def test_perfect_curves_by_hand():
    # perfect Qini: the 2 treated responders, the 4 non-responders, the 2 control responders last
    x, q = perfect_qini_curve(Y, T)
    np.testing.assert_array_equal(x, [0, 2, 6, 8])
    np.testing.assert_allclose(q, [0, 2, 2, 0])
    # perfect uplift: treated responders, control non-responders, treated non-responders, control responders
    x, u = perfect_uplift_curve(Y, T)
    np.testing.assert_array_equal(x, [0, 2, 4, 6, 8])
    np.testing.assert_allclose(u, [0, 2, 4, 3, 0])


def test_qini_coefficient_and_auuc_by_hand():
    # trapezoids over unit steps; the random line ends at 0 incremental responders, so its area is 0
    model_qini = sum((a + b) / 2 for a, b in zip(QINI[:-1], QINI[1:], strict=True))
    assert model_qini == pytest.approx(49 / 6)
    assert qini_auc_score(Y, S, T) == pytest.approx((49 / 6) / 12)  # perfect area: 2 + 8 + 2
    model_uplift = sum((a + b) / 2 for a, b in zip(UPLIFT[:-1], UPLIFT[1:], strict=True))
    assert model_uplift == pytest.approx(38 / 3)
    assert uplift_auc_score(Y, S, T) == pytest.approx((38 / 3) / 18)  # perfect area: 2 + 6 + 7 + 3


def test_qini_coefficient_is_one_for_the_perfect_ranking_and_zero_for_a_constant_one():
    assert qini_auc_score(Y, Y * T - Y * (1 - T), T) == pytest.approx(1.0)
    assert qini_auc_score(Y, np.zeros(8), T) == pytest.approx(0.0)
    assert qini_auc_score(Y, -S, T) < 0 < qini_auc_score(Y, S, T)


def test_random_line_is_subtracted_when_the_campaign_has_an_overall_effect():
    y = np.array([1, 1, 0, 0, 1, 0])
    t = np.array([1, 1, 1, 0, 0, 0])
    s = np.array([6, 5, 4, 3, 2, 1])
    # qini at n=1..6: 1, 2, 2, 2 - 0 * 3/1 = 2, 2 - 1 * 3/2 = 0.5, 2 - 1 * 3/3 = 1; random line (0,0)-(6,1)
    model = 0.5 + 1.5 + 2 + 2 + 1.25 + 0.75
    random = 6 * 1 / 2
    # perfect: 2 treated responders (2), 3 non-responders (n=5: 2 - 0), 1 control responder (n=6: 2 - 1*3/3)
    perfect = 2 * 2 / 2 + 3 * 2 + (2 + 1) / 2
    assert qini_auc_score(y, s, t) == pytest.approx((model - random) / (perfect - random))
    # without negative effects: (0, 0), (R, R), (n, R) with R = 2 - 3 * 1/3 = 1
    x, q = perfect_qini_curve(y, t, negative_effect=False)
    np.testing.assert_allclose(x, [0, 1, 6])
    np.testing.assert_allclose(q, [0, 1, 1])
    assert qini_auc_score(y, s, t, negative_effect=False) == pytest.approx((model - random) / (5.5 - random))


def test_uplift_at_k_by_hand():
    # top 4 of all: treated rows 0, 2, 3 -> 2/3; control row 1 -> 0
    assert uplift_at_k(Y, S, T, k=0.5) == pytest.approx(2 / 3)
    # top 2 of the 4 treated (y 1, 1) and of the 4 control (y 0, 1)
    assert uplift_at_k(Y, S, T, k=0.5, strategy="by_group") == pytest.approx(1 - 0.5)
    # k = 1: the plain difference of response rates
    assert uplift_at_k(Y, S, T, k=1.0) == pytest.approx(Y[T == 1].mean() - Y[T == 0].mean())


# a tied block of 4 rows in the middle
S_TIE = np.array([0.9, 0.5, 0.5, 0.5, 0.5, 0.1])
T_TIE = np.array([1, 1, 1, 0, 0, 0])
Y_TIE = np.array([1, 1, 0, 1, 0, 0])


def test_ties_count_pro_rata_and_never_depend_on_row_order():
    # top 3: row 0 whole and half of the tied block (rows 1-4): treated weights 1, .5, .5 (y 1, 1, 0) -> 1.5/2;
    # control weights .5, .5 (y 1, 0) -> .5/1
    assert uplift_at_k(Y_TIE, S_TIE, T_TIE, k=0.5) == pytest.approx(0.75 - 0.5)
    n, q = qini_curve(Y_TIE, S_TIE, T_TIE)
    np.testing.assert_array_equal(n, [0, 1, 5, 6])
    np.testing.assert_allclose(q, [0, 1, 2 - 1 * 3 / 2, 2 - 1 * 3 / 3])
    rng = np.random.default_rng(3)
    for _ in range(5):
        p = rng.permutation(6)
        assert uplift_at_k(Y_TIE[p], S_TIE[p], T_TIE[p], k=0.5) == pytest.approx(0.25)
        assert qini_auc_score(Y_TIE[p], S_TIE[p], T_TIE[p]) == pytest.approx(qini_auc_score(Y_TIE, S_TIE, T_TIE))
        pd.testing.assert_frame_equal(uplift_by_decile(Y_TIE[p], S_TIE[p], T_TIE[p], bins=3),
                                      uplift_by_decile(Y_TIE, S_TIE, T_TIE, bins=3))


def test_uplift_by_decile_by_hand_puts_a_tied_block_in_the_bin_of_its_middle_row():
    # 3 bins of 2 ranks; the tied block holds ranks 1-4 (middle 2.5 -> bin 1)
    table = uplift_by_decile(Y_TIE, S_TIE, T_TIE, bins=3)
    assert table.index.name == "bin"
    assert table["percentile"].tolist() == ["0-33", "33-67", "67-100"]
    assert table["n_treatment"].tolist() == [1, 2, 0]
    assert table["n_control"].tolist() == [0, 2, 1]
    np.testing.assert_allclose(table["response_rate_treatment"], [1.0, 0.5, np.nan])
    np.testing.assert_allclose(table["response_rate_control"], [np.nan, 0.5, 0.0])
    assert table.loc[1, "uplift"] == pytest.approx(0.0)
    assert table.loc[1, "std_uplift"] == pytest.approx(math.sqrt(0.25 / 2 + 0.25 / 2))
    np.testing.assert_allclose(table["mean_predicted"], [0.9, 0.5, 0.1])


def test_uplift_by_decile_leaves_out_empty_bins():
    table = uplift_by_decile(Y, np.zeros(8), T, bins=4)  # one block of 8 ranks: all in bin 1 (middle 3.5)
    assert table.index.tolist() == [1]
    assert table.loc[1, "uplift"] == pytest.approx(Y[T == 1].mean() - Y[T == 0].mean())


def test_amount_outcomes_give_incremental_spend():
    spend = np.array([10.0, 0, 20, 0, 5, 0, 0, 5])
    n, q = qini_curve(spend, S, T)
    # at n = 5: treated spend 30 (3 treated), control spend 5 (2 control) -> 30 - 5 * 3/2
    assert q[5] == pytest.approx(30 - 5 * 3 / 2)
    assert uplift_at_k(spend, S, T, k=0.5) == pytest.approx(30 / 3 - 0)
    # Qini at n = 0..8: 10, 10, 30, 30, 30 - 5 x 3/2, 30 - 5, 30 - 5 x 4/3, 30 - 10; random line to (8, 20)
    model = 5 + 10 + 20 + 30 + 26.25 + 23.75 + (25 + 70 / 3) / 2 + (70 / 3 + 20) / 2
    # perfect: treated 20 then 10 first, the four zeros, the two control 5s last: (1, 20), (2, 30), (6, 30), (8, 20)
    x, q = perfect_qini_curve(spend, T)
    np.testing.assert_array_equal(x, [0, 1, 2, 6, 8])
    np.testing.assert_allclose(q, [0, 20, 30, 30, 20])
    assert qini_auc_score(spend, S, T) == pytest.approx((model - 80) / (205 - 80))
    with pytest.raises(DataError, match="0/1"):
        qini_auc_score(spend, S, T, negative_effect=False)
    with pytest.raises(DataError, match="0/1"):
        uplift_auc_score(spend, S, T)
    with pytest.raises(DataError, match="non-negative amounts"):
        qini_auc_score(-spend, S, T)


def test_no_ranking_beats_the_perfect_qini_curve_of_amounts():
    for seed in range(20):
        rng = np.random.default_rng(seed)
        t = rng.integers(0, 2, 40)
        spend = rng.exponential(10, 40) * (rng.random(40) < 0.3 + 0.2 * t)
        best = spend * t - spend * (1 - t)
        for score in [rng.normal(size=40) for _ in range(10)] + [best + rng.normal(0, 5, 40) for _ in range(10)]:
            assert qini_auc_score(spend, score, t) <= 1.0 + 1e-12


# ----------------------------------------------------------------------------- against scikit-uplift
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("ties", [False, True])
def test_curves_and_areas_equal_scikit_uplift(seed, ties):
    y, s, t, _ = random_campaign(seed, ties=ties)
    for ours, theirs in ((qini_curve, sk.qini_curve), (uplift_curve, sk.uplift_curve)):
        (x1, v1), (x2, v2) = ours(y, s, t), theirs(y, s, t)
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_allclose(v1, v2, rtol=1e-12, atol=1e-9)
    for negative_effect in (True, False):
        x1, v1 = perfect_qini_curve(y, t, negative_effect)
        x2, v2 = sk.perfect_qini_curve(y, t, negative_effect)
        np.testing.assert_allclose(x1, x2)
        np.testing.assert_allclose(v1, v2, atol=1e-9)
        assert qini_auc_score(y, s, t, negative_effect) == pytest.approx(
            sk.qini_auc_score(y, s, t, negative_effect), rel=1e-9)
    x1, v1 = perfect_uplift_curve(y, t)
    x2, v2 = sk.perfect_uplift_curve(y, t)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_allclose(v1, v2, atol=1e-9)
    assert uplift_auc_score(y, s, t) == pytest.approx(sk.uplift_auc_score(y, s, t), rel=1e-9)


def test_constant_predictions_equal_scikit_uplift():
    y, _, t, _ = random_campaign(4, n=300)
    s = np.full(300, 0.1)
    assert qini_auc_score(y, s, t) == pytest.approx(sk.qini_auc_score(y, s, t), abs=1e-12)
    assert uplift_auc_score(y, s, t) == pytest.approx(sk.uplift_auc_score(y, s, t), abs=1e-12)
    np.testing.assert_allclose(qini_curve(y, s, t)[1], sk.qini_curve(y, s, t)[1])


@pytest.mark.parametrize("seed", [0, 5, 6])
@pytest.mark.parametrize("k", [0.1, 0.3, 0.55])
@pytest.mark.parametrize("strategy", ["overall", "by_group"])
def test_uplift_at_k_equals_scikit_uplift_without_ties(seed, k, strategy):
    y, s, t, _ = random_campaign(seed, n=997)
    assert uplift_at_k(y, s, t, k=k, strategy=strategy) == pytest.approx(
        sk.uplift_at_k(y, s, t, strategy=strategy, k=k), rel=1e-12)


@pytest.mark.parametrize("seed", [0, 7])
@pytest.mark.parametrize("bins", [10, 7])
@pytest.mark.parametrize("strategy", ["overall", "by_group"])
def test_uplift_by_decile_equals_scikit_uplift_without_ties(seed, bins, strategy):
    y, s, t, _ = random_campaign(seed, n=1003)
    ours = uplift_by_decile(y, s, t, bins=bins, strategy=strategy)
    theirs = sk.uplift_by_percentile(y, s, t, strategy=strategy, bins=bins, std=True)
    assert ours["percentile"].tolist() == theirs.index.tolist()
    for column in ("n_treatment", "n_control"):
        np.testing.assert_array_equal(ours[column].to_numpy(), theirs[column].to_numpy())
    for column in ("response_rate_treatment", "response_rate_control", "uplift", "std_uplift"):
        np.testing.assert_allclose(ours[column].to_numpy(), theirs[column].to_numpy(), rtol=1e-12)
    if strategy == "overall":  # numpy.array_split: the first bin holds n // bins + 1 rows when n % bins > 0
        first = np.argsort(-s)[: len(s) // bins + 1]
        assert ours.loc[0, "mean_predicted"] == pytest.approx(s[first].mean())


def test_the_true_uplift_ranks_better_than_noise():
    y, s, t, truth = random_campaign(11, n=20000)
    noise = np.random.default_rng(99).normal(size=20000)
    assert qini_auc_score(y, truth, t) > qini_auc_score(y, s, t) - 0.05
    assert abs(qini_auc_score(y, noise, t)) < qini_auc_score(y, truth, t) / 2


# ------------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: qini_auc_score(Y, S, np.ones(8)), DataError, "all 8 rows are treated"),
        (lambda: uplift_at_k(Y, S, np.zeros(8)), DataError, "all 8 rows are control"),
        (lambda: qini_curve(Y, S, ["t", "c"] * 4), DataError, "metrics.treatment.*not text"),
        (lambda: qini_curve(Y, S, [1, 0, 2, 1, 0, 0, 1, 0]), DataError, "position 2: 2"),
        (lambda: qini_curve(Y, S[:7], T), DataError, "metrics.uplift: must have the same length"),
        (lambda: qini_curve(Y, np.r_[S[:7], np.nan], T), DataError, "uplift: missing value"),
        (lambda: qini_curve(np.r_[Y[:7], np.nan], S, T), DataError, "y_true: missing outcome"),
        (lambda: qini_auc_score(Y * 0, S, T), DataError, "no area above the random line"),
        (lambda: qini_auc_score(Y, S, T, negative_effect="yes"), ConfigError, "negative_effect"),
        (lambda: perfect_qini_curve(Y, T, negative_effect=False), DataError, "negative_effect=True"),
        (lambda: uplift_at_k(Y, S, T, k=0), ConfigError, r"k must be a number in \(0, 1\]"),
        (lambda: uplift_at_k(Y, S, T, k=1.5), ConfigError, "k must be"),
        (lambda: uplift_at_k(Y, S, T, k=0.1), ConfigError, "selects no customer of 8"),
        (lambda: uplift_at_k(Y, S, T, k=0.25, strategy="top"), ConfigError, "strategy must be"),
        (lambda: uplift_at_k(Y, S, np.array([1, 1, 0, 0, 0, 0, 0, 0]), k=0.25), DataError,
         "holds no control"),
        (lambda: uplift_by_decile(Y, S, T, bins=0), ConfigError, "bins must be a positive integer"),
    ],
)
def test_bad_inputs_raise_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


# ------------------------------------------------------------------------------------- policy value
def test_policy_value_by_hand_with_observed_shares():
    target = S >= 0.6  # rows 0-3
    pv = policy_value(Y, T, target, value=10.0, cost=1.0)
    # treated rows 0, 2, 3, 6: target x y = 1, 1, 0, 0 (mean .5); control rows: all 0 -> n x (.5 - 0) = 4
    assert pv.incremental_responses == pytest.approx(4.0)
    assert pv.contacts == 4 and pv.n == 8
    assert pv.incremental_profit == pytest.approx(10 * 4 - 1 * 4)
    se = math.sqrt(64 * (np.var([1, 1, 0, 0], ddof=1) / 4 + 0))
    half = 1.959963984540054 * se
    assert (pv.responses_ci_low, pv.responses_ci_high) == pytest.approx((4 - half, 4 + half))
    assert (pv.ci_low, pv.ci_high) == pytest.approx((36 - 10 * half, 36 + 10 * half))
    assert pv.as_dict()["contacts_1"] == 4.0


def test_policy_value_by_hand_with_a_known_propensity():
    pv = policy_value(Y, T, S >= 0.6, propensity=0.5, confidence=0.9)
    z = np.array([2, 0, 2, 0, 0, 0, 0, 0])  # treated target responders / 0.5
    assert pv.incremental_responses == pytest.approx(4.0)
    half = 1.6448536269514722 * math.sqrt(8 * np.var(z, ddof=1))
    assert pv.responses_ci_high == pytest.approx(4 + half)


def test_policy_value_at_k_and_curve_agree_with_policy_value():
    y, s, t, _ = random_campaign(2, n=1000)
    top = np.zeros(1000, dtype=bool)
    top[np.argsort(-s)[:300]] = True
    assert policy_value_at_k(y, t, s, 0.3) == policy_value(y, t, top)
    curve = policy_value_curve(y, t, s, value=5.0, cost=0.2)
    assert curve["share"].tolist() == pytest.approx(np.linspace(0, 1, 21).tolist())
    assert curve.iloc[0][["contacts", "incremental_profit", "ci_low", "ci_high"]].tolist() == [0, 0, 0, 0]
    everyone = policy_value(y, t, np.ones(1000), value=5.0, cost=0.2)
    assert curve.iloc[-1]["incremental_profit"] == pytest.approx(everyone.incremental_profit)
    # contacting everyone: n x the difference of the response rates
    assert everyone.incremental_responses == pytest.approx(1000 * (y[t == 1].mean() - y[t == 0].mean()))


def test_policy_value_interval_covers_the_known_truth_in_most_seeds():
    covered, n = [], 3000
    for seed in range(120):
        rng = np.random.default_rng(seed)
        x = rng.normal(size=n)
        p0 = 0.2 + 0.1 * (x > 0)
        p1 = np.clip(p0 + 0.2 * np.tanh(x), 0, 1)  # sleeping dogs for x < 0
        t = (rng.random(n) < 0.4).astype(int)
        y = (rng.random(n) < np.where(t == 1, p1, p0)).astype(int)
        target = x + rng.normal(0, 0.5, n) > 0.3
        truth = float(np.sum(target * (p1 - p0)))
        for propensity in (None, 0.4):
            pv = policy_value(y, t, target, propensity=propensity)
            covered.append(pv.responses_ci_low <= truth <= pv.responses_ci_high)
    assert np.mean(covered) >= 0.9


def test_multi_arm_policy_value_by_hand_and_its_coverage():
    arm = np.array(["control", "email", "discount", "email", "control", "discount", "control", "email"])
    y = np.array([0, 1, 1, 0, 1, 1, 0, 1])
    send = np.array(["email", "email", "discount", "control", "discount", "discount", "control", "control"])
    pv = policy_value(y, arm, target_arm=send, control="control", cost={"email": 0.5, "discount": 2.0})
    # email rows 1, 3, 7: sent email 1, 0, 0 -> w y = 1, 0, 0; discount rows 2, 5: sent discount both -> 1, 1;
    # control rows 0, 4, 6: contacted 1, 1, 0 -> w y = 0, 1, 0
    assert pv.incremental_responses == pytest.approx(8 * (1 / 3 + 1 - 1 / 3))
    assert pv.contacts_by_arm == {"discount": 3.0, "email": 2.0}
    assert pv.incremental_profit == pytest.approx(8.0 - 0.5 * 2 - 2.0 * 3)
    # coverage with two arms and design probabilities
    covered = []
    for seed in range(60):
        rng = np.random.default_rng(seed)
        n = 3000
        x = rng.normal(size=n)
        p = {"c": 0.2 + 0 * x, "a": 0.2 + 0.1 * (x > 0), "b": 0.2 + 0.15 * np.tanh(x)}
        arms = rng.choice(["c", "a", "b"], size=n, p=[0.4, 0.3, 0.3])
        y = (rng.random(n) < np.choose(pd.Categorical(arms, ["c", "a", "b"]).codes, [p["c"], p["a"], p["b"]]))
        send = np.where(x > 1, "b", np.where(x > 0, "a", "c"))
        truth = float(np.sum((send == "a") * (p["a"] - p["c"]) + (send == "b") * (p["b"] - p["c"])))
        pv = policy_value(y.astype(int), arms, target_arm=send, control="c",
                          propensity={"c": 0.4, "a": 0.3, "b": 0.3} if seed % 2 else None)
        covered.append(pv.responses_ci_low <= truth <= pv.responses_ci_high)
    assert np.mean(covered) >= 0.85


def test_policy_value_per_customer_value_and_boolean_treatment():
    value = np.arange(8.0)
    pv = policy_value(Y, T.astype(bool), S >= 0.6, value=value)
    # treated rows 0, 2, 3, 6: target x y x value = 0, 2, 0, 0 -> 8 x (2/4 - 0)
    assert pv.incremental_profit == pytest.approx(4.0)
    assert isinstance(pv, PolicyValue)


def test_series_inputs_with_any_index_and_categorical_arms():
    index = pd.Index(np.arange(8)[::-1] * 10)
    assert qini_auc_score(pd.Series(Y, index), pd.Series(S, index), pd.Series(T.astype(bool), index)) == (
        pytest.approx(qini_auc_score(Y, S, T)))
    arm = pd.Series(np.where(T == 1, "offer", "none"), index, dtype="category")
    by_name = policy_value(pd.Series(Y, index), arm, pd.Series(S >= 0.6, index), control="none")
    assert by_name.incremental_responses == pytest.approx(policy_value(Y, T, S >= 0.6).incremental_responses)
    assert by_name.contacts_by_arm == {"offer": 4.0}


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"treatment": ["a", "b"] * 4}, ConfigError, "control: name the control arm"),
        ({"treatment": ["a", "b"] * 4, "control": "c"}, DataError, "no row of the control arm 'c'"),
        ({"treatment": ["a", None] * 4, "control": "a"}, DataError, "treatment: missing value"),
        ({"treatment": ["c", "a", "b", "c", "a", "b", "c", "a"], "control": "c"}, ConfigError, "give target_arm"),
        ({"target_arm": np.ones(8)}, ConfigError, "exactly one of target"),
        ({"target": None, "target_arm": [0, 1, 2, 0, 1, 0, 1, 0]}, DataError, "target_arm: must be a treatment"),
        ({"target": np.full(8, 2.0)}, DataError, "target: must be booleans or contact probabilities"),
        ({"propensity": 1.2}, ConfigError, "propensity must give each arm"),
        ({"confidence": 1.0}, ConfigError, "confidence must be a number in"),
        ({"value": {"1": 2.0}}, ConfigError, "value must be a number or one number per customer"),
        ({"cost": "cheap"}, ConfigError, "cost must be a number"),
        ({"treatment": [1, 0, 0, 0, 0, 0, 0, 0]}, DataError, "arm 1 has only 1 row"),
    ],
)
def test_policy_value_bad_inputs(kwargs, error, match):
    args = {"treatment": T, "target": S >= 0.6} | kwargs
    with pytest.raises(error, match=match):
        policy_value(Y, args.pop("treatment"), args.pop("target"), **args)
