"""Classifier plots draw exactly the metric tables, label their lines and draw on a given Axes."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from custval.errors import ConfigError, DataError  # noqa: E402
from custval.metrics.classification import calibration_table, gains_curve, roc_auc, roc_curve  # noqa: E402
from custval.plots.classification import (  # noqa: E402
    plot_calibration,
    plot_feature_importance,
    plot_gains,
    plot_lift,
    plot_roc,
)

RNG = np.random.default_rng(7)
P = RNG.random(400)
Y = (RNG.random(400) < P).astype(int)
NOISY = np.clip(P + RNG.normal(0, 0.3, 400), 0, 1)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def lines_by_label(ax) -> dict:
    return {line.get_label(): line for line in ax.get_lines()}


def test_gains_plot_draws_each_model_and_both_references():
    ax = plot_gains(Y, {"good": P, "noisy": NOISY}, n_points=50)
    lines = lines_by_label(ax)
    assert set(lines) == {"good", "noisy", "random", "perfect"}
    for name, s in (("good", P), ("noisy", NOISY)):
        curve = gains_curve(Y, s, n_points=50)
        np.testing.assert_allclose(lines[name].get_xdata(), curve["fraction"])
        np.testing.assert_allclose(lines[name].get_ydata(), curve["capture"])
    np.testing.assert_allclose(lines["random"].get_xdata(), [0, 1])
    np.testing.assert_allclose(lines["random"].get_ydata(), [0, 1])
    # the perfect model takes every positive first: 100% captured once the top base-rate share is targeted
    np.testing.assert_allclose(lines["perfect"].get_xdata(), [0, Y.mean(), 1])
    np.testing.assert_allclose(lines["perfect"].get_ydata(), [0, 1, 1])
    assert "targeted" in ax.get_xlabel() and "captured" in ax.get_ylabel()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["good", "noisy", "random", "perfect"]


def test_single_array_uses_the_series_name_or_model():
    ax = plot_gains(Y, pd.Series(P, name="xgboost"))
    assert "xgboost" in lines_by_label(ax)
    ax = plot_roc(Y, P)
    assert any(label.startswith("model (AUC = ") for label in lines_by_label(ax))


def test_roc_plot_has_the_auc_in_the_legend_and_the_curve_points():
    ax = plot_roc(Y, {"good": P, "noisy": NOISY})
    lines = lines_by_label(ax)
    for name, s in (("good", P), ("noisy", NOISY)):
        label = f"{name} (AUC = {roc_auc(Y, s):.3f})"
        assert label in lines
        curve = roc_curve(Y, s)
        np.testing.assert_allclose(lines[label].get_xdata(), curve["fpr"])
        np.testing.assert_allclose(lines[label].get_ydata(), curve["tpr"])
    assert roc_auc(Y, P) > roc_auc(Y, NOISY)  # the legend would then rank the models correctly
    assert ax.get_xlabel() == "false positive rate" and ax.get_ylabel() == "true positive rate"


def test_calibration_plot_draws_the_bins_and_the_diagonal():
    ax = plot_calibration(Y, {"good": P, "noisy": NOISY}, n_bins=5, strategy="uniform")
    lines = lines_by_label(ax)
    for name, p in (("good", P), ("noisy", NOISY)):
        table = calibration_table(Y, p, n_bins=5, strategy="uniform")
        np.testing.assert_allclose(lines[name].get_xdata(), table["mean_predicted"])
        np.testing.assert_allclose(lines[name].get_ydata(), table["observed_rate"])
    np.testing.assert_allclose(lines["perfectly calibrated"].get_ydata(), [0, 1])
    assert ax.get_xlabel() == "mean predicted probability"
    default = lines_by_label(plot_calibration(Y, P))["model"]
    assert len(default.get_xdata()) == 10  # 400 distinct probabilities: 10 quantile bins, none empty


def test_lift_plot_draws_the_lift_column_and_the_unit_baseline():
    ax = plot_lift(Y, P, n_points=20)
    lines = lines_by_label(ax)
    np.testing.assert_allclose(lines["model"].get_ydata(), gains_curve(Y, P, n_points=20)["lift"])
    np.testing.assert_allclose(lines["random"].get_ydata(), [1, 1])


def test_feature_importance_shows_the_top_features_largest_at_the_top():
    imp = pd.Series({"tenure": 0.1, "recency": 0.5, "age": 0.05, "spend": 0.3, "region": 0.2},
                    name="gain")
    ax = plot_feature_importance(imp, top=3)
    bars = ax.patches
    assert len(bars) == 3
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["region", "spend", "recency"]  # bottom to top: the largest drawn last, on top
    assert [b.get_width() for b in bars] == pytest.approx([0.2, 0.3, 0.5])
    assert ax.get_xlabel() == "gain"


@pytest.mark.parametrize(
    "plot",
    [
        lambda ax: plot_gains(Y, P, ax=ax),
        lambda ax: plot_lift(Y, P, ax=ax),
        lambda ax: plot_roc(Y, P, ax=ax),
        lambda ax: plot_calibration(Y, P, ax=ax),
        lambda ax: plot_feature_importance(pd.Series({"a": 1.0, "b": 2.0}), ax=ax),
    ],
)
def test_each_plot_draws_on_the_given_axes(plot):
    fig, (left, right) = plt.subplots(1, 2)
    assert plot(right) is right
    assert right.get_lines() or right.patches
    assert not left.get_lines() and not left.patches
    assert len(fig.axes) == 2


def test_bad_inputs_raise_custval_errors():
    with pytest.raises(DataError, match="y_true"):
        plot_gains(np.ones(400), P)
    with pytest.raises(DataError, match="same length"):
        plot_roc(Y, {"short": P[:10]})
    with pytest.raises(ConfigError, match="at least one"):
        plot_calibration(Y, {})
    with pytest.raises(DataError, match="finite"):
        plot_feature_importance(pd.Series({"a": np.nan}))
    with pytest.raises(ConfigError, match="top"):
        plot_feature_importance(pd.Series({"a": 1.0}), top=0)
    with pytest.raises(DataError, match="Series"):
        plot_feature_importance({"a": 1.0})
    assert not plt.get_fignums()  # validation happens before a figure is created


def test_plotting_leaves_the_users_backend_alone():
    """Library code never calls matplotlib.use: a user's (non-interactive) backend stays selected."""
    previous = matplotlib.get_backend()
    matplotlib.use("svg")
    try:
        plot_roc(Y, P)
        plot_feature_importance(pd.Series([0.7, 0.3], index=["a", "b"]))
        assert matplotlib.get_backend() == "svg"
    finally:
        plt.close("all")
        matplotlib.use(previous)
