"""Campaign economics (break-even, systematic test sample, rollout plan), checked against examples worked by
hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from custval.errors import ConfigError, DataError
from custval.metrics.ranking import profit_curve
from custval.scoring import targeting as tg


# --------------------------------------------------------------------------------------- test and rollout
def test_break_even_hand_worked_examples():
    assert tg.break_even_rate(0.55, 40) == pytest.approx(0.01375)  # 1.375%
    assert tg.break_even_index(0.025, 0.01375) == pytest.approx(81.8181818, rel=1e-7)
    assert tg.break_even_rate(0.27, 60) == pytest.approx(0.0045)  # 0.45%
    assert tg.response_rate(510, 30_000) == pytest.approx(0.017)
    assert tg.cost_per_response(5_100, 510) == pytest.approx(10.0)
    assert tg.break_even_index(np.array([0.01375, 0.0]), 0.01375).tolist() == pytest.approx([0.0, -100.0])


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda: tg.break_even_rate(0, 40), ["cost_per_contact", "positive", "0"]),
        (lambda: tg.break_even_rate(-0.5, 40), ["cost_per_contact", "positive", "-0.5"]),
        (lambda: tg.break_even_rate(0.55, 0), ["net_profit_per_response", "positive", "0"]),
        (lambda: tg.break_even_rate(0.55, -3), ["net_profit_per_response", "positive", "-3"]),
        (lambda: tg.break_even_index(1.2, 0.01), ["response_rate", "[0, 1]", "1.2"]),
        (lambda: tg.response_rate(510, 0), ["contacted", "positive"]),
        (lambda: tg.response_rate(31_000, 30_000), ["responses", "31000"]),
        (lambda: tg.cost_per_response(5_100, 0), ["responses", "positive"]),
    ],
)
def test_break_even_bad_input(call, words):
    with pytest.raises(ConfigError) as info:
        call()
    assert all(w in str(info.value) for w in words), str(info.value)


def test_systematic_sample_every_kth_after_sorting_by_cell():
    cells = ["111", "555", "333", "555", "111", "333", "555", "111", "333", "111"]
    frame = pd.DataFrame({"rfm_cell": cells}, index=pd.Index([f"id{i}" for i in range(10)], name="customer_id"))
    # sorted by cell descending, then id: 555: id1 id3 id6 | 333: id2 id5 id8 | 111: id0 id4 id7 id9
    order = ["id1", "id3", "id6", "id2", "id5", "id8", "id0", "id4", "id7", "id9"]
    sample = tg.systematic_sample(frame, 3, start=1)
    assert sample.index.tolist() == order[1::3] == ["id3", "id5", "id4"]
    assert tg.systematic_sample(frame, 1).index.tolist() == order
    with pytest.raises(ConfigError, match="k"):
        tg.systematic_sample(frame, 0)
    with pytest.raises(ConfigError, match="start"):
        tg.systematic_sample(frame, 3, start=3)
    with pytest.raises(DataError, match="empty"):
        tg.systematic_sample(frame.iloc[:0], 3)


def _campaign():
    # test sample: 555 200 mailed 10 responses (5%); 333 400 mailed 6 (1.5%); 111 400 mailed 2 (0.5%)
    def cell(name, n, k):
        return pd.DataFrame({"rfm_cell": [name] * n, "responded": [1] * k + [0] * (n - k)})

    test = pd.concat([cell("555", 200, 10), cell("333", 400, 6), cell("111", 400, 2)], ignore_index=True)
    population = pd.DataFrame({"rfm_cell": ["555"] * 2000 + ["333"] * 4000 + ["111"] * 4000})
    return test, population


def test_rollout_plan_by_hand():
    test, population = _campaign()
    plan = tg.rollout_plan(test, population, cost_per_contact=0.55, net_profit_per_response=40)
    # BE = 1.375%; BEI: 555 (5 - 1.375)/1.375*100 = 263.64; 333 9.09; 111 -63.64
    assert plan.break_even_rate == pytest.approx(0.01375)
    assert plan.cells.loc["555", "break_even_index"] == pytest.approx(263.6363636)
    assert plan.cells.loc["333", "break_even_index"] == pytest.approx(9.0909091)
    assert plan.cells.loc["111", "break_even_index"] == pytest.approx(-63.6363636)
    assert plan.selected_cells == ["555", "333"]
    # profit per contact = R x 40 - 0.55: 555 1.45 x 2000 = 2900; 333 0.05 x 4000 = 200; 111 -0.35 x 4000 = -1400
    assert plan.expected_profit_rollout == pytest.approx(3100.0)
    assert plan.expected_profit_all == pytest.approx(1700.0)
    assert (plan.contacts_rollout, plan.contacts_all) == (6000, 10000)
    assert plan.pooled_response_rate == pytest.approx(18 / 1000)


def test_rollout_untested_cell_is_not_mailed_and_gets_the_pooled_rate_in_the_baseline():
    test, population = _campaign()
    population = pd.concat([population, pd.DataFrame({"rfm_cell": ["222"] * 1000})], ignore_index=True)
    plan = tg.rollout_plan(test, population, cost_per_contact=0.55, net_profit_per_response=40)
    assert "222" not in plan.selected_cells
    # pooled 1.8%: 1000 x (0.018 x 40 - 0.55) = 170
    assert plan.cells.loc["222", "expected_profit"] == pytest.approx(170.0)
    assert plan.expected_profit_all == pytest.approx(1870.0)


def test_rollout_bad_input():
    test, population = _campaign()
    with pytest.raises(ConfigError, match="cost_per_contact"):
        tg.rollout_plan(test, population, cost_per_contact=0, net_profit_per_response=40)
    with pytest.raises(ConfigError, match="net_profit_per_response"):
        tg.rollout_plan(test, population, cost_per_contact=0.5, net_profit_per_response=-1)
    with pytest.raises(DataError, match=r"test\.responded: must be 0 or 1.*\(e\.g\. 2\.0\)"):
        tg.rollout_plan(test.assign(responded=2), population, cost_per_contact=0.5, net_profit_per_response=40)
    with pytest.raises(DataError, match="test.rfm_cell: is empty"):
        tg.rollout_plan(test.iloc[:0], population, cost_per_contact=0.5, net_profit_per_response=40)


# ------------------------------------------------------------------------------------------ uplift targeting
def test_incremental_profit_is_uplift_times_value_minus_cost_per_arm():
    uplift = pd.DataFrame({"email": [0.10, -0.05, 0.02], "discount": [0.20, 0.01, 0.30]})
    profit = tg.incremental_profit(uplift, [100.0, 50.0, 10.0], {"email": 1.0, "discount": 5.0})
    expected = pd.DataFrame({"email": [9.0, -3.5, -0.8], "discount": [15.0, -4.5, -2.0]})
    pd.testing.assert_frame_equal(profit, expected)
    one_arm = tg.incremental_profit(np.array([0.1, 0.0]), 20.0, 0.5)
    assert list(one_arm.columns) == ["treatment"] and one_arm["treatment"].tolist() == pytest.approx([1.5, -0.5])


def test_a_contact_budget_takes_each_customers_best_arm_then_the_best_customers():
    """Hand-worked: best arms are a: discount 15, b: none (all negative), c: email 4, d: discount 4 (tie with c
    broken by id), e: email 7. Two contacts: a and e."""
    profit = pd.DataFrame({"email": [9.0, -3.5, 4.0, 1.0, 7.0], "discount": [15.0, -4.5, 2.0, 4.0, 6.0]})
    ids = ["a", "b", "c", "d", "e"]
    plan = tg.select_targets(profit, ids, cost={"email": 1.0, "discount": 5.0}, max_contacts=2)
    assert plan.targets[["customer_id", "arm"]].values.tolist() == [["a", "discount"], ["e", "email"]]
    assert plan.total_profit == pytest.approx(22.0) and plan.contacts == 2 and plan.spend == pytest.approx(6.0)
    assert plan.arm_mix.to_dict() == {"email": 1, "discount": 1}
    unlimited = tg.select_targets(profit, ids, cost={"email": 1.0, "discount": 5.0})
    assert unlimited.targets["customer_id"].tolist() == ["a", "e", "c", "d"]  # c before d: tie, by id
    assert unlimited.customers["arm"].isna().tolist() == [False] * 4 + [True]  # b is never contacted
    assert unlimited.targets["rank"].tolist() == [1, 2, 3, 4]
    assert unlimited.total_profit == pytest.approx(30.0)
    # the curve: best profits 15, 7, 4, 4, -3.5 taken in that order
    curve = profit_curve(profit.max(axis=1), shares=5)
    assert curve["expected_profit"].tolist() == pytest.approx([0, 15, 22, 26, 30, 26.5])


def _optimum(profit, costs, budget):
    """The exact multiple-choice knapsack by scipy's MILP solver: x[i, a] binary, sum_a x[i, a] <= 1,
    sum cost[a] x[i, a] <= budget."""
    from scipy.optimize import Bounds, LinearConstraint, milp

    n, k = profit.shape
    one_each = np.kron(np.eye(n), np.ones(k))
    spend = np.tile(costs, n)
    result = milp(-profit.ravel(), integrality=np.ones(n * k), bounds=Bounds(0, 1),
                  constraints=[LinearConstraint(one_each, 0, 1), LinearConstraint(spend[None, :], 0, budget)])
    return -result.fun


@pytest.mark.parametrize("seed", range(6))
def test_a_money_budget_is_near_the_exact_optimum(seed):
    """Against scipy's MILP on random instances with two arms of different costs: never over the budget, and
    within the largest single profit of the optimum (the Lagrangian bound), in practice within 2%."""
    rng = np.random.default_rng(seed)
    n = 60
    costs = np.array([1.0, 4.0])
    uplift = np.column_stack([rng.normal(0.03, 0.05, n), rng.normal(0.10, 0.08, n)])
    value = rng.gamma(2.0, 40.0, n)
    profit = tg.incremental_profit(uplift, value, {"email": 1.0, "discount": 4.0}, arms=["email", "discount"])
    budget = 40.0
    plan = tg.select_targets(profit, np.arange(n), cost={"email": 1.0, "discount": 4.0}, budget=budget)
    best = _optimum(profit.to_numpy(), costs, budget)
    assert plan.spend <= budget + 1e-9
    assert plan.total_profit <= best + 1e-6
    assert plan.total_profit >= best - profit.to_numpy().max()
    assert plan.total_profit >= 0.98 * best
    # the budget binds: both arms are used and the multiplier is positive
    assert plan.lagrange_multiplier > 0 and plan.spend > budget - 4.0


def test_break_even_rate_per_arm_is_cost_over_the_mean_value_of_a_response():
    profit = tg.incremental_profit(np.array([[0.2, 0.1], [0.05, 0.3]]), [50.0, 150.0], {"a": 2.0, "b": 6.0},
                                   arms=["a", "b"])
    plan = tg.select_targets(profit, [1, 2], cost={"a": 2.0, "b": 6.0}, value=[50.0, 150.0])
    assert plan.targets[["customer_id", "arm"]].values.tolist() == [[2, "b"], [1, "a"]]  # 39 then 8
    assert plan.break_even.to_dict() == pytest.approx({"a": 2.0 / 50.0, "b": 6.0 / 150.0})


@pytest.mark.parametrize(("call", "words"), [
    (lambda: tg.incremental_profit(np.array([0.1, np.nan]), 1.0, 0.0), ["uplift", "finite", "row 1"]),
    (lambda: tg.incremental_profit(np.array([0.1, 0.2]), [1.0], 0.0), ["value", "one per customer"]),
    (lambda: tg.incremental_profit(np.array([[0.1, 0.2]]), 1.0, {"a": 1.0}, arms=["a", "b"]), ["cost", "'b'"]),
    (lambda: tg.incremental_profit(np.array([0.1]), 1.0, -1.0), ["cost", ">= 0", "-1"]),
    (lambda: tg.select_targets(pd.DataFrame({"a": [1.0]}), [1], max_contacts=-1), ["max_contacts", "-1"]),
    (lambda: tg.select_targets(pd.DataFrame({"a": [1.0]}), [1], budget="ten"), ["budget", "ten"]),
    (lambda: tg.select_targets(pd.DataFrame({"a": [1.0, 2.0]}), [1, 1]), ["customer_id", "unique"]),
])
def test_targeting_bad_input(call, words):
    with pytest.raises((ConfigError, DataError)) as info:
        call()
    assert all(w in str(info.value) for w in words), str(info.value)
