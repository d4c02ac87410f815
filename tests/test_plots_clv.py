import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from custval.plots.clv import plot_calibration_holdout, plot_clv_distribution, plot_tracking  # noqa: E402


def test_tracking_plot_draws_actual_model_and_calibration_line():
    curve = pd.DataFrame({"date": pd.date_range("2024-01-07", periods=3, freq="7D"),
                          "actual_cumulative": [1.0, 3.0, 4.0], "expected_cumulative": [1.5, 2.5, 4.5],
                          "actual": [1.0, 2.0, 1.0], "expected": [1.5, 1.0, 2.0]})
    ax = plot_tracking(curve, calibration_end="2024-01-14")
    actual, model, cutoff = ax.get_lines()
    assert list(actual.get_ydata()) == [1.0, 3.0, 4.0] and list(model.get_ydata()) == [1.5, 2.5, 4.5]
    assert cutoff.get_label() == "end of calibration"
    _, given = plt.subplots()
    assert plot_tracking(curve, cumulative=False, ax=given) is given
    assert list(given.get_lines()[0].get_ydata()) == [1.0, 2.0, 1.0]
    plt.close("all")


def test_calibration_holdout_plot_uses_the_bins_as_ticks():
    table = pd.DataFrame({"customers": [5, 3], "actual": [0.2, 1.1], "predicted": [0.25, 1.0]},
                         index=pd.Index(["0", "1+"], name="frequency_cal"))
    ax = plot_calibration_holdout(table)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1+"]
    assert list(ax.get_lines()[1].get_ydata()) == [0.25, 1.0]
    plt.close("all")


def test_clv_histogram_counts_every_customer():
    values = np.random.default_rng(0).gamma(1.0, 50.0, size=500)
    ax = plot_clv_distribution(values, bins=10)
    assert sum(p.get_height() for p in ax.patches) == 500
    plt.close("all")
