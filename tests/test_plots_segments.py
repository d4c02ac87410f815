"""Segment plots: the returned Axes hold the hand-computed data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from custval.errors import ConfigError, DataError, SchemaError
from custval.features.value_segments import value_tiers
from custval.plots.segments import plot_pareto_curve, plot_rfm_heatmap, plot_tier_pyramid, rfm_grid


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


def _scores() -> pd.DataFrame:
    return pd.DataFrame({"r_score": [5, 5, 5, 1, 3, 3], "f_score": [5, 5, 1, 1, 2, 2],
                         "monetary": [100.0, 50.0, 10.0, 4.0, 7.0, 9.0]})


def test_rfm_heatmap_counts():
    ax = plot_rfm_heatmap(_scores())
    image = ax.images[0].get_array()
    expected = np.zeros((5, 5))
    # element [R-1, F-1]: (5,5) x2, (5,1) x1, (1,1) x1, (3,2) x2
    expected[4, 4], expected[4, 0], expected[0, 0], expected[2, 1] = 2, 1, 1, 2
    assert np.array_equal(np.asarray(image), expected)
    assert len(ax.texts) == 25  # every cell annotated, zeros included
    assert {t.get_text() for t in ax.texts if t.get_position() == (4, 4)} == {"2"}
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "3", "4", "5"]
    assert ax.get_xlabel() == "f_score" and ax.get_ylabel() == "r_score"


def test_rfm_heatmap_mean_monetary_masks_empty_cells():
    ax = plot_rfm_heatmap(_scores(), value="monetary")
    image = ax.images[0].get_array()
    assert image[4, 4] == pytest.approx(75.0)  # (100 + 50) / 2
    assert image[2, 1] == pytest.approx(8.0)   # (7 + 9) / 2
    assert image[0, 0] == pytest.approx(4.0)
    assert np.ma.getmaskarray(image).sum() == 25 - 4
    assert len(ax.texts) == 4


def test_rfm_heatmap_uses_given_axes_and_rejects_bad_input():
    import matplotlib.pyplot as plt

    _, ax = plt.subplots()
    assert plot_rfm_heatmap(_scores(), ax=ax) is ax
    with pytest.raises(SchemaError, match="customers.m_score: required column is missing"):
        rfm_grid(_scores(), cols="m_score")
    with pytest.raises(ConfigError, match="1..5"):
        rfm_grid(_scores().assign(r_score=6))


def test_pareto_curve_line_data():
    ax = plot_pareto_curve(pd.Series([5.0, 50.0, 10.0, 30.0, 5.0], name="revenue"))
    curve = ax.lines[0].get_xydata()
    assert curve[:, 0].tolist() == pytest.approx([0, 20, 40, 60, 80, 100])
    assert curve[:, 1].tolist() == pytest.approx([0, 50, 80, 90, 95, 100])
    assert ax.lines[0].get_label() == "revenue"
    assert ax.lines[1].get_xydata().tolist() == [[0, 0], [100, 100]]  # equality diagonal
    assert ax.lines[2].get_xdata()[0] == pytest.approx(20)  # mark at the top 20%


def test_pareto_curve_several_series():
    ax = plot_pareto_curve({"revenue": [1.0, 3.0], "clv": [2.0, 2.0]}, mark=None)
    assert [line.get_label() for line in ax.lines] == ["revenue", "clv", "equal shares"]
    assert ax.lines[0].get_ydata().tolist() == pytest.approx([0, 75, 100])
    assert ax.lines[1].get_ydata().tolist() == pytest.approx([0, 50, 100])
    with pytest.raises(DataError, match="customers.clv: must be >= 0"):
        plot_pareto_curve({"clv": [1.0, -2.0]})


def test_tier_pyramid_bars():
    tiers = value_tiers(np.arange(1.0, 21.0))  # 10 lead, 6 iron, 3 gold, 1 platinum
    ax = plot_tier_pyramid(tiers)
    bars = ax.patches
    assert len(bars) == 4
    assert [b.get_width() for b in bars] == [10, 6, 3, 1]
    assert [b.get_x() for b in bars] == [-5, -3, -1.5, -0.5]  # centred
    assert [b.get_y() + b.get_height() / 2 for b in bars] == pytest.approx([0, 1, 2, 3])  # lead at the bottom
    assert [t.get_text() for t in ax.get_yticklabels()] == ["lead", "iron", "gold", "platinum"]
    assert "10 (50.0%)" in [t.get_text() for t in ax.texts]


def test_tier_pyramid_from_counts_keeps_empty_tiers():
    ax = plot_tier_pyramid(pd.Series({"bronze": 70, "silver": 0, "gold": 30}))
    assert [b.get_width() for b in ax.patches] == [70, 0, 30]
    with pytest.raises(ConfigError, match="tiers"):
        plot_tier_pyramid(pd.Series({"a": 0, "b": 0}))
