"""Scoring plots draw hand-worked tables of a small scoring output frame: value at risk by decile of churn
probability, the profit curve of a ranked list, a list's composition by segment, the segment pyramid."""

from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
import pytest

from custval.errors import ConfigError, DataError, SchemaError
from custval.plots.scoring import (
    list_composition,
    plot_list_composition,
    plot_list_profit_curve,
    plot_segment_pyramid,
    plot_value_at_risk_by_decile,
    segment_pyramid,
    value_at_risk_by_decile,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


def _frame() -> pd.DataFrame:
    """Eight customers: c and d tie on churn probability, h is outside the churn model's population."""
    p = [0.9, 0.8, 0.5, 0.5, 0.3, 0.2, 0.1, np.nan]
    clv = [10.0, 100.0, 40.0, 20.0, 50.0, 200.0, 30.0, 60.0]
    return pd.DataFrame({
        "customer_id": list("abcdefgh"),
        "churn_probability": p,
        "clv": clv,
        "value_at_risk": np.multiply(p, clv),
        "retention_priority": [5.0, -1.0, 3.0, np.nan, 2.0, np.nan, -4.0, np.nan],
        "retention_rank": pd.array([1, None, 2, None, 3, None, None, None], dtype="Int64"),
        "tier": pd.Categorical(["lead", "iron", "lead", "lead", "iron", "gold", "lead", "iron"],
                               categories=["lead", "iron", "gold"], ordered=True),
        "lifecycle_stage": ["active", "at risk", "active", "new", "at risk", "active", "lapsed", "new"],
    })


def test_value_at_risk_by_decile_hand_worked_ties_share_a_decile():
    # 7 scored customers; with 4 bins a customer is in decile floor(4 x (# strictly higher) / 7) + 1:
    # a: 0 -> 1, b: 1 -> 1, c and d: 2 -> 2, e: 4 -> 3, f: 5 -> 3, g: 6 -> 4; h has no churn probability
    table = value_at_risk_by_decile(_frame(), bins=4)
    assert table.index.tolist() == [1, 2, 3, 4]
    assert table["customers"].tolist() == [2, 2, 2, 1]
    # value at risk: a 9 + b 80 = 89; c 20 + d 10 = 30; e 15 + f 40 = 55; g 3
    assert table["value_at_risk"].tolist() == pytest.approx([89.0, 30.0, 55.0, 3.0])
    assert table["share"].tolist() == pytest.approx([89 / 177, 30 / 177, 55 / 177, 3 / 177])
    assert table["churn_probability"].tolist() == pytest.approx([0.85, 0.5, 0.25, 0.1])


def test_value_at_risk_by_decile_keeps_empty_deciles():
    frame = pd.DataFrame({"churn_probability": [0.9, 0.9, 0.9, 0.1], "value_at_risk": [1.0, 2.0, 3.0, 4.0]})
    table = value_at_risk_by_decile(frame, bins=4)  # 0, 0, 0 and 3 strictly higher -> deciles 1, 1, 1, 4
    assert table["customers"].tolist() == [3, 0, 0, 1]
    assert table["value_at_risk"].tolist() == pytest.approx([6.0, 0.0, 0.0, 4.0])


def test_value_at_risk_plot_bars_are_the_table_and_the_backend_is_left_alone():
    backend = matplotlib.get_backend()
    ax = plot_value_at_risk_by_decile(_frame(), bins=4)
    assert [b.get_height() for b in ax.patches] == pytest.approx([89.0, 30.0, 55.0, 3.0])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "3", "4"]
    assert "churn probability" in ax.get_xlabel()
    assert ax.texts[0].get_text().startswith(f"{89 / 177:.0%}")
    assert matplotlib.get_backend() == backend


def test_profit_curve_of_a_list_ranks_the_eligible_customers_by_priority():
    # eligible (a priority): 5, 3, 2, -1, -4 in that order; 5 shares: 0, 1, 2, 3, 4, 5 customers contacted
    ax = plot_list_profit_curve(_frame(), priority="retention_priority", shares=5)
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert lines["incremental profit"].get_xdata().tolist() == pytest.approx([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    assert lines["incremental profit"].get_ydata().tolist() == pytest.approx([0, 5, 8, 10, 9, 5])
    assert "best: 60% contacted (10)" in lines
    assert "retention_priority" in ax.get_xlabel() and "5 eligible" in ax.get_title()


def test_list_composition_hand_worked():
    table = list_composition(_frame(), rank="retention_rank", segment="tier", top=2)
    # top 2: a (lead), c (lead); base: lead 4, iron 3, gold 1; category order kept
    assert table.index.tolist() == ["lead", "iron", "gold"]
    assert table["top_customers"].tolist() == [2, 0, 0]
    assert table["base_share"].tolist() == pytest.approx([4 / 8, 3 / 8, 1 / 8])
    longer = list_composition(_frame(), rank="retention_rank", segment="lifecycle_stage", top=50)
    # text labels: by base share (active 3, then at risk 2 and new 2 by name, lapsed 1); the list has a, c, e
    assert longer.index.tolist() == ["active", "at risk", "new", "lapsed"]
    assert longer["top_customers"].tolist() == [2, 1, 0, 0]
    assert longer["top_share"].tolist() == pytest.approx([2 / 3, 1 / 3, 0, 0])


def test_list_composition_plot_draws_top_and_base_shares_first_segment_on_top():
    ax = plot_list_composition(_frame(), rank="retention_rank", segment="tier", top=3)
    top, base = ax.containers
    assert [b.get_width() for b in top] == pytest.approx([2 / 3, 1 / 3, 0])  # a, c lead; e iron
    assert [b.get_width() for b in base] == pytest.approx([4 / 8, 3 / 8, 1 / 8])
    height = {t.get_text(): y for t, y in zip(ax.get_yticklabels(), ax.get_yticks(), strict=True)}
    assert height["lead"] > height["iron"] > height["gold"]  # the first segment on top
    assert top[0].get_y() > top[2].get_y()
    assert top.get_label() == "top 3 of retention" and base.get_label() == "all 8 customers"


def test_segment_pyramid_top_tier_first_for_categories_and_for_text():
    table = segment_pyramid(_frame())
    # gold: f (200); iron: b, e, h (100 + 50 + 60); lead: a, c, d, g (10 + 40 + 20 + 30)
    assert table.index.tolist() == ["gold", "iron", "lead"]
    assert table["customers"].tolist() == [1, 3, 4]
    assert table["value"].tolist() == pytest.approx([200.0, 210.0, 100.0])
    assert table["value_share"].tolist() == pytest.approx([200 / 510, 210 / 510, 100 / 510])
    as_text = _frame().assign(tier=lambda f: f["tier"].astype(str))  # e.g. read back from CSV
    assert segment_pyramid(as_text).index.tolist() == ["gold", "iron", "lead"]  # mean CLV 200, 70, 25


def test_segment_pyramid_plot_draws_customer_and_value_shares_top_tier_on_top():
    ax = plot_segment_pyramid(_frame())
    customers, values = ax.containers
    assert [b.get_width() for b in customers] == pytest.approx([1 / 8, 3 / 8, 4 / 8])
    assert [b.get_width() for b in values] == pytest.approx([200 / 510, 210 / 510, 100 / 510])
    height = {t.get_text(): y for t, y in zip(ax.get_yticklabels(), ax.get_yticks(), strict=True)}
    assert height["gold"] > height["iron"] > height["lead"]  # the top tier on top
    assert customers[0].get_y() > customers[2].get_y()
    assert {t.get_text() for t in ax.texts} >= {" 1", " 4", " 210"}


@pytest.mark.parametrize(
    "plot",
    [
        lambda ax: plot_value_at_risk_by_decile(_frame(), bins=4, ax=ax),
        lambda ax: plot_list_profit_curve(_frame(), ax=ax),
        lambda ax: plot_list_composition(_frame(), ax=ax),
        lambda ax: plot_segment_pyramid(_frame(), ax=ax),
    ],
)
def test_each_plot_draws_on_the_given_axes(plot):
    import matplotlib.pyplot as plt

    _, (left, right) = plt.subplots(1, 2)
    assert plot(right) is right
    assert right.patches or right.get_lines()
    assert not left.patches and not left.get_lines()


@pytest.mark.parametrize(
    ("call", "error", "words"),
    [
        (lambda f: plot_value_at_risk_by_decile(f.drop(columns="value_at_risk")), SchemaError,
         "scores.value_at_risk: required column is missing"),
        (lambda f: plot_list_profit_curve(f, priority="winback_priority"), SchemaError,
         "scores.winback_priority: required column is missing"),
        (lambda f: plot_list_composition(f, rank="cross_sell_rank"), SchemaError,
         "scores.cross_sell_rank: required column is missing"),
        (lambda f: plot_segment_pyramid(f.drop(columns="tier")), SchemaError, "scores.tier: required column"),
        (lambda f: plot_value_at_risk_by_decile(f.assign(churn_probability=np.nan)), DataError,
         "scores.churn_probability: has no customer with a churn probability"),
        (lambda f: plot_list_composition(f.assign(retention_rank=pd.array([None] * 8, dtype="Int64"))), DataError,
         "scores.retention_rank: has no ranked customer"),
        (lambda f: plot_list_profit_curve(f.assign(retention_priority="high")), SchemaError,
         "scores.retention_priority: must be numbers \\(e.g. 'high'\\)"),
        (lambda f: plot_value_at_risk_by_decile(f, bins=0), ConfigError, "bins: must be a positive integer"),
        (lambda f: plot_list_composition(f, top=2.5), ConfigError, "top: must be a positive integer"),
    ],
)
def test_missing_or_unusable_columns_are_custval_errors_naming_the_column(call, error, words):
    with pytest.raises(error, match=words):
        call(_frame())
