import numpy as np
import pandas as pd
import pytest

from custval.models.clv.diagnostics import tracking_curve


class LinearPurchases:
    """E[X(t)] = rate * t: a purchase model whose expected curve can be worked out by hand."""

    def __init__(self, rate):
        self.rate = rate

    def expected_purchases_new(self, t):
        return self.rate * np.asarray(t, dtype=float)


@pytest.fixture
def log():
    # customer 1: first 2024-01-01, repeats 01-03 (twice that day: one purchase) and 01-10
    # customer 2: first 2024-01-05, repeat 01-06; a purchase after the end day is ignored
    return pd.DataFrame({
        "customer_id": [1, 1, 1, 1, 2, 2, 2],
        "timestamp": pd.to_datetime(["2024-01-01", "2024-01-03 09:00", "2024-01-03 17:00", "2024-01-10",
                                     "2024-01-05", "2024-01-06", "2024-01-20"], format="ISO8601"),
        "amount": 1.0,
    })


def test_actual_counts_repeat_purchase_days_by_week(log):
    curve = tracking_curve(LinearPurchases(0.0), log, "2024-01-14", period="D")
    # weeks end (inclusive) on 01-07 and 01-14
    assert list(curve["date"]) == list(pd.to_datetime(["2024-01-07", "2024-01-14"]))
    assert list(curve["actual_cumulative"]) == [2.0, 3.0]  # 01-03 and 01-06; then 01-10
    assert list(curve["actual"]) == [2.0, 1.0]


def test_expected_sums_each_customers_curve_since_first_purchase(log):
    curve = tracking_curve(LinearPurchases(0.5), log, "2024-01-14", period="D")
    # through 01-07: customer 1 has 6 days since 01-01, customer 2 has 2 days since 01-05 -> 0.5 * 8
    # through 01-14: 13 + 9 days -> 0.5 * 22
    assert curve["expected_cumulative"].tolist() == pytest.approx([4.0, 11.0])
    weekly = tracking_curve(LinearPurchases(0.5), log, "2024-01-14", period="W")
    assert weekly["expected_cumulative"].tolist() == pytest.approx([4.0 / 7, 11.0 / 7])


def test_a_partial_last_step_ends_on_the_end_day(log):
    curve = tracking_curve(LinearPurchases(1.0), log, "2024-01-10", period="D")
    assert curve["date"].iloc[-1] == pd.Timestamp("2024-01-10")
    assert curve["actual_cumulative"].iloc[-1] == 3.0
    assert curve["expected_cumulative"].iloc[-1] == pytest.approx(9 + 5)
