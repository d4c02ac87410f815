"""features.daily: the customer-day sums equal pandas' grouped sums bit for bit, on messy input (unsorted rows,
repeated days, returns, NaN amounts, values whose sum depends on the summation order), and the win-back and
RFM functions built on them equal their former groupby formulation."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from custval.features.daily import calendar_days, daily_spend, grouped_sum
from custval.features.rfm_scores import rfm_table
from custval.features.winback import lapsed_customers, reactivations


def _messy(n: int = 4000, seed: int = 0, ids: str = "int") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    customer = rng.integers(0, 300, n)
    amount = rng.choice([1e16, -1e16, 0.1, 0.2, 0.3, 3.0, -2.5, 1e-3], n) * rng.integers(1, 4, n)
    amount[rng.random(n) < 0.02] = np.nan
    stamps = pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 400 * 24, n), unit="h")
    frame = pd.DataFrame({"customer_id": customer, "timestamp": stamps, "amount": amount})
    if ids == "str":
        frame["customer_id"] = "c" + frame["customer_id"].astype(str)
    return frame


# pandas sums rows already in group order (without NaN) with np.add.reduceat and other rows with a compensated
# loop: the two give 4.299999999999999 and 4.3 (math.fsum's correctly rounded sum) for these amounts
VALUES, LABELS = np.array([0.1, 0.1, 0.2, 1e15, 0.7, 3.3]), np.array([0, 1, 0, 1, 0, 0])


def test_grouped_sum_by_hand_sums_as_pandas_does_in_the_given_row_order():
    assert grouped_sum(VALUES, LABELS).tolist() == [math.fsum([0.1, 0.2, 0.7, 3.3]), 1e15 + 0.1] == [4.3, 1e15 + 0.1]
    order = np.argsort(LABELS, kind="stable")
    assert grouped_sum(VALUES[order], LABELS[order]).tolist() == [4.299999999999999, 1e15 + 0.1]
    assert grouped_sum(np.r_[VALUES, np.nan], np.r_[LABELS, 1]).tolist() == [4.3, 1e15 + 0.1]  # NaN is 0


def test_daily_spend_keeps_the_rows_in_their_order_for_the_sums():
    day = np.array([5, 5, 5, 5, 5, 5]).astype("datetime64[D]")
    customer, days, spend = daily_spend(LABELS, day, VALUES)
    assert customer.tolist() == [0, 1] and spend.tolist() == [4.3, 1e15 + 0.1]
    frame = pd.DataFrame({"c": LABELS, "d": day, "a": VALUES})
    assert spend.tolist() == frame.groupby(["c", "d"])["a"].sum().tolist()
    assert daily_spend(LABELS[::-1], day, VALUES[::-1])[2].tolist() == \
        frame.iloc[::-1].groupby(["c", "d"])["a"].sum().tolist()


@pytest.mark.parametrize("nan", [True, False], ids=["nan", "finite"])
@pytest.mark.parametrize("order", ["shuffled", "sorted"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_daily_spend_equals_a_two_key_groupby(seed, order, nan):
    frame = _messy(seed=seed)
    if not nan:
        frame = frame.dropna(subset=["amount"])
    if order == "sorted":  # the rows in group order: pandas sums them with np.add.reduceat
        frame = frame.sort_values(["customer_id", "timestamp"], kind="stable")
    codes = pd.factorize(frame["customer_id"], sort=True)[0]
    day = frame["timestamp"].dt.normalize().to_numpy()
    customer, days, spend = daily_spend(codes, day, frame["amount"].to_numpy())
    expected = (pd.DataFrame({"c": codes, "d": day, "a": frame["amount"].to_numpy()})
                .groupby(["c", "d"], sort=True)["a"].sum())
    assert np.array_equal(customer, expected.index.get_level_values("c").to_numpy())
    assert np.array_equal(days, expected.index.get_level_values("d").to_numpy())
    assert np.array_equal(spend, expected.to_numpy(), equal_nan=True)
    assert daily_spend(codes[:0], day[:0], frame["amount"].to_numpy()[:0])[2].shape == (0,)


def _old_purchase_days(transactions, as_of):
    before = transactions.loc[transactions["timestamp"] < as_of, ["customer_id", "timestamp", "amount"]]
    days = (before.assign(day=before["timestamp"].dt.normalize())
            .groupby(["customer_id", "day"], sort=True, observed=True)["amount"].sum().reset_index())
    return days[days["amount"] > 0].reset_index(drop=True)


def _old_lapsed(transactions, as_of, lapse):
    days = _old_purchase_days(transactions, as_of)
    customer, day = days["customer_id"].to_numpy(), days["day"].to_numpy()
    starts = np.flatnonzero(np.r_[True, customer[1:] != customer[:-1]])
    ends = np.r_[starts[1:], len(customer)]
    spend = days.groupby("customer_id", sort=True, observed=True)["amount"].sum().to_numpy(dtype=float)
    last = day[ends - 1]
    since = (as_of.to_datetime64() - last) // np.timedelta64(1, "D")
    lapsed = since >= lapse
    return customer[starts[lapsed]], spend[lapsed] / (ends - starts)[lapsed]


@pytest.mark.parametrize("ids", ["int", "str"])
def test_lapsed_customers_equal_the_groupby_formulation(ids):
    frame = _messy(ids=ids).sample(frac=1.0, random_state=3)  # rows in no order
    as_of = pd.Timestamp("2024-01-20")
    got = lapsed_customers(frame, as_of, lapse_days=60)
    customer, mean_order = _old_lapsed(frame, as_of, 60)
    assert len(got) > 10
    assert got["customer_id"].tolist() == customer.tolist()
    assert np.array_equal(got["mean_order_before"].to_numpy(), mean_order)
    assert len(reactivations(frame, as_of, lapse_days=30, horizon_days=30)) > 0


def test_rfm_table_monetary_equals_the_groupby_formulation():
    frame = _messy(seed=5).dropna(subset=["amount"])
    frame = frame[frame["amount"] > 0].sample(frac=1.0, random_state=1)
    got = rfm_table(frame, as_of="2024-02-01")
    frame = frame[frame["timestamp"] < "2024-02-02"]  # the window ends on as_of
    codes, uniques = pd.factorize(frame["customer_id"])
    day = frame["timestamp"].dt.normalize().to_numpy()
    daily = pd.DataFrame({"c": codes, "d": day, "a": frame["amount"].to_numpy()}).groupby(["c", "d"])["a"].sum()
    c = daily.index.get_level_values("c").to_numpy()
    expected = pd.Series(daily.to_numpy()).groupby(c).sum()
    assert got.index.tolist() == uniques.take(expected.index).tolist()
    assert np.array_equal(got["monetary"].to_numpy(), expected.to_numpy())


@pytest.mark.parametrize("unit", ["ns", "us", "s"])
@pytest.mark.parametrize("tz", [None, "Europe/Berlin"])
def test_calendar_days_are_the_normalised_timestamps(unit, tz):
    stamps = pd.Series(pd.to_datetime(["1969-12-31 23:59:59", "1950-06-01 05:00:00", None,
                                       "2024-03-31 01:30:00", "2024-01-01 00:00:00"]).as_unit(unit))
    if tz is not None:
        stamps = stamps.dt.tz_localize(tz)
    days = calendar_days(stamps)
    expected = stamps.dt.normalize().to_numpy()
    assert days.dtype == expected.dtype
    assert pd.Series(days).equals(pd.Series(expected))
    assert tz is not None or pd.Timestamp(days[0]) == pd.Timestamp("1969-12-31")  # floored, not truncated
