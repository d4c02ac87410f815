"""Lapsed customers and past reactivations, on logs worked by hand; nothing at or after as_of is used."""

from __future__ import annotations

import pandas as pd
import pytest

from custval.errors import CustvalError
from custval.features.winback import lapsed_customers, reactivations


def _log(rows):
    return pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount"]).assign(
        timestamp=lambda f: pd.to_datetime(f["timestamp"], format="ISO8601"))


LOG = _log([
    # a: buys 2024-01-01 (two lines, one day), 01-10, lapses 100 days, returns 04-19 (+30, +50 within 60 days)
    ("a", "2024-01-01 09:00", 10.0), ("a", "2024-01-01 17:00", 5.0), ("a", "2024-01-10", 25.0),
    ("a", "2024-04-19", 30.0), ("a", "2024-05-20", 50.0), ("a", "2024-07-01", 99.0),
    # b: one purchase, lapsed since
    ("b", "2024-02-01", 40.0),
    # c: a gap of 95 days that ends too late for a 60-day window before as_of
    ("c", "2024-03-01", 20.0), ("c", "2024-06-04", 10.0),
    # d: a refund day (net -5) is not a purchase day
    ("d", "2024-01-05", 12.0), ("d", "2024-05-01", -5.0),
])
AS_OF = pd.Timestamp("2024-07-01")  # a's purchase on as_of is not before it


def test_lapsed_customers_by_hand():
    lapsed = lapsed_customers(LOG, AS_OF, lapse_days=90).set_index("customer_id")
    assert sorted(lapsed.index) == ["b", "d"]  # a bought 2024-05-20 (42 days), c 2024-06-04 (27 days)
    assert lapsed.loc["b"].tolist()[1:] == [1.0, 40.0, 0.0, 151.0]
    assert lapsed.loc["d", "lapse_days"] == 178.0  # since 2024-01-05; the refund day does not count
    assert lapsed_customers(LOG, AS_OF, lapse_days=30).customer_id.tolist() == ["a", "b", "d"]  # a: 42 days
    assert lapsed_customers(LOG, AS_OF, lapse_days=20).customer_id.tolist() == ["a", "b", "c", "d"]


def test_reactivations_by_hand():
    back = reactivations(LOG, AS_OF, lapse_days=90, horizon_days=60)
    # a returns 2024-04-19 after a 100-day gap; value = 30 + 50 (05-20 is day 31 of 60); c's return (06-04)
    # would need its window to end by 08-03 > as_of
    assert back["customer_id"].tolist() == ["a"]
    row = back.iloc[0]
    assert row["returned_at"] == pd.Timestamp("2024-04-19") and row["lapse_days"] == 100.0
    assert (row["orders_before"], row["mean_order_before"], row["tenure_days"], row["value"]) == (2.0, 20.0, 9.0, 80.0)
    shorter = reactivations(LOG, AS_OF, lapse_days=90, horizon_days=30).iloc[0]
    assert shorter["value"] == 30.0  # 05-20 is day 31: outside a 30-day window


def test_nothing_at_or_after_as_of_changes_the_result():
    later = pd.concat([LOG, _log([("a", "2024-07-02", 1e6), ("b", "2024-07-01", 7.0), ("e", "2024-08-01", 5.0)])])
    for lapse in (20, 90):
        pd.testing.assert_frame_equal(lapsed_customers(later, AS_OF, lapse_days=lapse),
                                      lapsed_customers(LOG, AS_OF, lapse_days=lapse))
        pd.testing.assert_frame_equal(reactivations(later, AS_OF, lapse_days=lapse, horizon_days=60),
                                      reactivations(LOG, AS_OF, lapse_days=lapse, horizon_days=60))


def test_reactivations_match_a_loop_over_customers_on_a_simulated_log():
    from custval.data.simulate import simulate_retail

    sim = simulate_retail(n_customers=400, seed=3)
    log = sim.transactions
    as_of = log["timestamp"].min() + pd.Timedelta(days=600)
    fast = reactivations(log, as_of, lapse_days=60, horizon_days=90)
    rows = []
    for cid, g in log[log["timestamp"] < as_of].groupby("customer_id", sort=True):
        daily = g.groupby(g["timestamp"].dt.normalize())["amount"].sum()
        daily = daily[daily > 0]
        days = list(daily.index)
        for k in range(1, len(days)):
            gap = (days[k] - days[k - 1]).days
            if gap >= 60 and days[k] + pd.Timedelta(days=90) <= as_of:
                window = daily[(daily.index >= days[k]) & (daily.index < days[k] + pd.Timedelta(days=90))]
                rows.append((cid, days[k], float(k), float(daily.iloc[:k].mean()), float((days[k - 1] - days[0]).days),
                             float(gap), float(window.sum())))
    slow = pd.DataFrame(rows, columns=["customer_id", "returned_at", "orders_before", "mean_order_before",
                                       "tenure_days", "lapse_days", "value"])
    assert len(slow) > 30
    pd.testing.assert_frame_equal(fast.reset_index(drop=True), slow, check_dtype=False, atol=1e-9)


def test_lapsed_customers_match_a_loop_over_customers_on_a_simulated_log():
    from custval.data.simulate import simulate_retail

    log = simulate_retail(n_customers=400, seed=5).transactions
    log = log.assign(customer_id="c" + log["customer_id"].astype(str)).sample(frac=1.0, random_state=0)
    as_of = log["timestamp"].quantile(0.7)
    fast = lapsed_customers(log, as_of, lapse_days=45)
    rows = []
    for cid, g in log[log["timestamp"] < as_of].groupby("customer_id", sort=True):
        daily = g.groupby(g["timestamp"].dt.normalize())["amount"].sum()
        daily = daily[daily > 0]
        if len(daily) and (as_of.normalize() - daily.index[-1]).days >= 45:
            rows.append((cid, daily.index[-1], float(len(daily)), float(daily.mean()),
                         float((daily.index[-1] - daily.index[0]).days), float((as_of.normalize() - daily.index[-1]).days)))
    slow = pd.DataFrame(rows, columns=["customer_id", "last_purchase", "orders_before", "mean_order_before",
                                       "tenure_days", "lapse_days"])
    assert len(slow) > 50 and len(slow) < log["customer_id"].nunique()
    pd.testing.assert_frame_equal(fast.reset_index(drop=True), slow, check_dtype=False, atol=1e-9)


@pytest.mark.parametrize(("call", "words"), [
    (lambda: lapsed_customers(LOG, AS_OF, lapse_days=0), ["lapse_days", ">= 1", "0"]),
    (lambda: reactivations(LOG, AS_OF, lapse_days=30, horizon_days=2.5), ["horizon_days", "2.5"]),
    (lambda: lapsed_customers(LOG, "2023-01-01", lapse_days=30), ["timestamp", "no rows before"]),
    (lambda: lapsed_customers(LOG.drop(columns="amount"), AS_OF, lapse_days=30), ["amount", "missing"]),
])
def test_bad_input(call, words):
    with pytest.raises(CustvalError) as info:
        call()
    assert all(w in str(info.value) for w in words), str(info.value)
