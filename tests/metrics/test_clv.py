import numpy as np
import pytest

from custval.metrics.clv import holdout_by_frequency, holdout_metrics, mae, rmse, total_relative_error


def test_errors_on_a_hand_worked_example():
    actual = [0, 2, 1, 5]
    predicted = [0.5, 1.0, 1.0, 3.0]
    # |e| = 0.5, 1, 0, 2 -> MAE 0.875; e^2 = 0.25, 1, 0, 4 -> RMSE sqrt(5.25/4)
    assert mae(actual, predicted) == pytest.approx(0.875)
    assert rmse(actual, predicted) == pytest.approx(np.sqrt(5.25 / 4))
    # totals 8 actual vs 5.5 predicted
    assert total_relative_error(actual, predicted) == pytest.approx(-2.5 / 8)
    metrics = holdout_metrics(actual, predicted)
    assert metrics["holdout_actual_total"] == 8 and metrics["holdout_predicted_total"] == 5.5


def test_total_error_is_nan_without_actual_purchases():
    assert np.isnan(total_relative_error([0, 0], [1, 1]))


def test_by_frequency_bins_and_top_bin():
    frequency = [0, 0, 1, 7, 9]
    actual = [0, 1, 2, 4, 6]
    predicted = [0.2, 0.4, 1.0, 3.0, 5.0]
    table = holdout_by_frequency(frequency, actual, predicted, max_frequency=7)
    assert list(table.index) == ["0", "1", "7+"]
    assert table.loc["0", "customers"] == 2 and table.loc["0", "actual"] == 0.5
    assert table.loc["0", "predicted"] == pytest.approx(0.3)
    assert table.loc["7+", "actual"] == 5.0 and table.loc["7+", "predicted"] == 4.0
