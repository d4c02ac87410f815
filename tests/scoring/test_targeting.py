"""Campaign economics (break-even, systematic test sample, rollout plan), checked against examples worked by
hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from custval.errors import ConfigError, DataError
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
