"""Uplift plots draw exactly the metric values (Qini / uplift curves with random and perfect references, uplift
by decile, profit vs share contacted), label them, draw on a given Axes and leave the backend alone."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from custval.errors import ConfigError, DataError  # noqa: E402
from custval.metrics.uplift import (  # noqa: E402
    perfect_qini_curve,
    policy_value_curve,
    qini_auc_score,
    qini_curve,
    uplift_auc_score,
    uplift_by_decile,
    uplift_curve,
)
from custval.plots.uplift import plot_profit_curve, plot_qini, plot_uplift_by_decile, plot_uplift_curve  # noqa: E402

RNG = np.random.default_rng(5)
N = 600
X = RNG.normal(size=N)
T = RNG.integers(0, 2, N)
TRUE = 0.05 + 0.2 * np.tanh(X)
Y = (RNG.random(N) < 0.3 + T * TRUE).astype(int)
NOISY = TRUE + RNG.normal(0, 0.3, N)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def lines_by_label(ax) -> dict:
    return {line.get_label(): line for line in ax.get_lines()}


def test_qini_plot_draws_each_model_the_random_line_and_the_perfect_curve():
    backend = matplotlib.get_backend()
    ax = plot_qini(Y, {"truth": TRUE, "noisy": NOISY}, T)
    lines = lines_by_label(ax)
    for name, u in (("truth", TRUE), ("noisy", NOISY)):
        label = f"{name} (Qini = {qini_auc_score(Y, u, T):.3f})"
        n, q = qini_curve(Y, u, T)
        np.testing.assert_allclose(lines[label].get_xdata(), n / N)
        np.testing.assert_allclose(lines[label].get_ydata(), q)
    x_perfect, y_perfect = perfect_qini_curve(Y, T)
    np.testing.assert_allclose(lines["perfect"].get_xdata(), x_perfect / N)
    np.testing.assert_allclose(lines["perfect"].get_ydata(), y_perfect)
    np.testing.assert_allclose(lines["random"].get_xdata(), [0, 1])
    np.testing.assert_allclose(lines["random"].get_ydata(), [0, y_perfect[-1]])
    assert "targeted" in ax.get_xlabel() and ax.get_ylabel() == "incremental responders"
    assert matplotlib.get_backend() == backend


def test_qini_plot_without_negative_effects_uses_that_perfect_curve():
    ax = plot_qini(Y, pd.Series(TRUE, name="t-learner"), T, negative_effect=False)
    lines = lines_by_label(ax)
    assert f"t-learner (Qini = {qini_auc_score(Y, TRUE, T, negative_effect=False):.3f})" in lines
    assert len(lines["perfect"].get_xdata()) == 3


def test_uplift_curve_plot_has_the_auuc_in_the_legend():
    ax = plot_uplift_curve(Y, NOISY, T)
    label = f"model (AUUC = {uplift_auc_score(Y, NOISY, T):.3f})"
    np.testing.assert_allclose(lines_by_label(ax)[label].get_ydata(), uplift_curve(Y, NOISY, T)[1])


def test_uplift_by_decile_bars_are_the_table():
    ax = plot_uplift_by_decile(Y, NOISY, T, bins=5)
    table = uplift_by_decile(Y, NOISY, T, bins=5)
    assert [b.get_height() for b in ax.patches] == pytest.approx(table["uplift"].tolist())
    np.testing.assert_allclose(lines_by_label(ax)["mean predicted"].get_ydata(), table["mean_predicted"])
    overall = Y[T == 1].mean() - Y[T == 0].mean()
    assert lines_by_label(ax)[f"overall ({overall:.3g})"].get_ydata()[0] == pytest.approx(overall)
    assert [t.get_text() for t in ax.get_xticklabels()] == table["percentile"].tolist()


def test_profit_curve_marks_the_best_share_and_draws_the_band():
    curve = policy_value_curve(Y, T, NOISY, value=20.0, cost=1.0)
    ax = plot_profit_curve(curve["share"], curve["incremental_profit"], ci_low=curve["ci_low"],
                           ci_high=curve["ci_high"])
    lines = lines_by_label(ax)
    np.testing.assert_allclose(lines["incremental profit"].get_ydata(), curve["incremental_profit"])
    best = curve.loc[curve["incremental_profit"].idxmax()]
    (label,) = [k for k in lines if k.startswith("best: ")]
    assert label.startswith(f"best: {best['share']:.0%} contacted")
    assert ax.collections  # the confidence band


@pytest.mark.parametrize(
    "plot",
    [
        lambda ax: plot_qini(Y, TRUE, T, ax=ax),
        lambda ax: plot_uplift_curve(Y, TRUE, T, ax=ax),
        lambda ax: plot_uplift_by_decile(Y, TRUE, T, ax=ax),
        lambda ax: plot_profit_curve([0, 0.5, 1], [0, 3, 1], ax=ax),
    ],
)
def test_each_plot_draws_on_the_given_axes(plot):
    fig, (left, right) = plt.subplots(1, 2)
    assert plot(right) is right
    assert right.get_lines() or right.patches
    assert not left.get_lines() and not left.patches


def test_bad_inputs_are_custval_errors():
    with pytest.raises(ConfigError, match="at least one model"):
        plot_qini(Y, {}, T)
    with pytest.raises(DataError, match="plot.profit: must have the same length as share"):
        plot_profit_curve([0, 1], [1, 2, 3])
    with pytest.raises(DataError, match="treatment"):
        plot_uplift_by_decile(Y, TRUE, np.ones(N))
