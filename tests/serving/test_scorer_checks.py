"""The scorer's input checks without models: the customer attributes taken once per customer and checked
constant per customer on arrays (equal to the former groupby formulation on messy input), and the
first-purchase check of as_of naming the smallest late id."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from custval.errors import DataError
from custval.serving.scorer import ScorerPyfunc


def _scorer() -> ScorerPyfunc:
    scorer = ScorerPyfunc()
    scorer.spec, scorer.categories, scorer.features = {"returns": "exclude"}, [], {"days_since_signup"}
    scorer.history_start = pd.Timestamp("2020-01-01")
    return scorer


def _rows(ids) -> pd.DataFrame:
    n = len(ids)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"customer_id": ids, "timestamp": [f"2024-0{1 + i % 9}-1{i % 10}" for i in range(n)],
                          "amount": rng.uniform(1, 50, n)})
    by_customer = {c: i for i, c in enumerate(dict.fromkeys(ids))}
    frame["region"] = [None if by_customer[c] % 3 == 0 else f"r{by_customer[c] % 2}" for c in ids]
    frame["age"] = [np.nan if by_customer[c] % 4 == 1 else 20.0 + by_customer[c] for c in ids]
    frame["signup"] = [f"2019-0{1 + by_customer[c] % 9}-01" for c in ids]
    return frame


def _old_people(frame: pd.DataFrame, attributes: list[str]) -> pd.DataFrame:
    people = frame[attributes].assign(customer_id=frame["customer_id"].to_numpy())
    assert not (people.groupby("customer_id", sort=False)[attributes].nunique(dropna=False) > 1).to_numpy().any()
    return people.drop_duplicates("customer_id").reset_index(drop=True)


@pytest.mark.parametrize("ids", [[5, 3, 5, 9, 3, 3, 1, 9], ["b", "a", "b", "c", "a", "z", "c"]])
def test_attributes_are_the_first_row_of_each_customer_in_order_of_appearance(ids):
    frame = _rows(ids)
    frame.loc[2, "region"] = np.nan  # missing as NaN on one row and None on another is the same value
    _, people = _scorer().split(frame)
    expected = _old_people(frame, ["region", "age", "signup"])
    assert people["customer_id"].tolist() == list(dict.fromkeys(ids))
    pd.testing.assert_frame_equal(people.drop(columns="signup"), expected[people.columns.drop("signup")])
    assert people["signup"].tolist() == pd.to_datetime(expected["signup"]).tolist()  # a date attribute


def test_an_attribute_that_varies_names_the_column_and_the_first_customer_it_varies_for():
    frame = _rows([5, 3, 5, 9, 3, 9, 9])
    frame.loc[5, "age"] = 99.0  # customer 9
    frame.loc[4, "age"] = 50.0  # customer 3 (NaN on its other row), seen before 9
    frame.loc[6, "region"] = "elsewhere"  # region comes before age, so it is named first
    with pytest.raises(DataError, match="region") as caught:
        _scorer().split(frame)
    assert "customer 9" in str(caught.value)
    frame.loc[6, "region"] = frame.loc[3, "region"]
    with pytest.raises(DataError, match=r"age.*customer 3\b") as caught:
        _scorer().split(frame)
    assert "np." not in str(caught.value)


def test_as_of_on_or_before_a_customers_first_purchase_names_the_smallest_such_id():
    frame = _rows([7, 4, 7, 2]).assign(timestamp=["2024-03-05", "2024-06-01", "2024-01-02", "2024-05-20"])
    with pytest.raises(DataError, match=r"customer 2 \(2024-05-20\)"):
        _scorer().score(frame, as_of="2024-05-20", today="2024-07-01")


@pytest.mark.parametrize("ids", [[7, 7], [7, 4, 7, 2]])
def test_a_customer_with_only_returns_is_named_not_dropped(ids):
    """Every row of customer 7 is a return (excluded by the returns policy): a 400 naming it, not a missing row
    (or, when nobody is left, a failure deep in the chunking)."""
    frame = _rows(ids)
    frame.loc[frame["customer_id"] == 7, "amount"] = -12.5
    with pytest.raises(DataError, match=r"amount.*only returns .*customer 7\b.*-12.5"):
        _scorer().score(frame, as_of="2024-12-01", today="2024-12-01")
