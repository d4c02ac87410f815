"""Identifier-like columns of customer tables: what is caught, what must never be (measurements, counts,
dates, categories), and the drop/keep rules with their warning."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from custval.errors import CustvalWarning, SchemaError
from custval.features.identifiers import drop_columns, identifier_columns

N = 400


def _names(rng, k: int) -> np.ndarray:
    """k distinct made-up surnames (two or three syllables)."""
    syllables = np.array(["ab", "bar", "cor", "dun", "el", "fen", "gra", "hol", "ist", "jor", "kel", "lan",
                          "mor", "nes", "ord", "pet", "quin", "ros", "sta", "tur", "ul", "vin", "wat", "yor"])
    combos = {"".join(rng.choice(syllables, rng.integers(2, 4))).capitalize() for _ in range(6 * k)}
    assert len(combos) >= k
    return np.array(sorted(combos), dtype=object)[rng.permutation(len(combos))[:k]]


def table(n: int = N, seed: int = 0) -> pd.DataFrame:
    """A customer table in the form load_customer_table gives (numbers float64, text pandas string)."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "RowNumber": np.arange(1, n + 1, dtype=np.float64),
        "CustomerId": rng.choice(np.arange(15_565_701, 15_815_691), n, replace=False).astype(np.float64),
        "Surname": pd.array(_names(rng, n), dtype="string"),  # all distinct
        "Note": pd.array(np.where(rng.random(n) < 0.5, None, [f"called on day {i}" for i in range(n)]),
                         dtype="string"),  # free text, half missing
        "Geography": pd.array(rng.choice(["France", "Spain", "Germany"], n), dtype="string"),
        "Income": np.round(rng.lognormal(10, 0.6, n), 2),  # continuous, all distinct
        "Tenure": rng.integers(0, 11, n).astype(np.float64),
        "Signup": pd.to_datetime("2020-01-01") + pd.to_timedelta(np.arange(n) * 2, "D"),  # sorted dates
        "IsActive": rng.random(n) < 0.5,
    })


def test_row_numbers_and_nearly_distinct_text_are_identifiers():
    found = identifier_columns(table())
    assert list(found) == ["RowNumber", "Surname", "Note"]
    assert found["RowNumber"] == "whole numbers increasing with the row (1, 2, 3, ...)"
    assert found["Surname"] == "400 distinct values in 400 rows"
    assert found["Note"].endswith(f"distinct values in {found['Note'].split()[-2]} rows")
    # a row number starting at 0, or an id the export is sorted by, increases with the row too
    assert "CustomerId" in identifier_columns(table().sort_values("CustomerId").reset_index(drop=True))
    zero_based = table().assign(RowNumber=np.arange(N, dtype=np.int64))
    assert "RowNumber" in identifier_columns(zero_based)


def test_surnames_repeating_a_few_times_each_are_identifiers_when_there_are_thousands():
    """The real bank export: ~2,900 surnames among 10,000 customers (3.4 rows each): too sparse to learn from."""
    rng = np.random.default_rng(1)
    pool = _names(rng, 3000)
    many = pd.DataFrame({"Surname": pd.array(rng.choice(pool, 10_000), dtype="string")})
    k = many["Surname"].nunique()
    assert 2500 < k < 3000
    assert identifier_columns(many) == {"Surname": f"{k:,} distinct values in 10,000 rows"}
    # 1,000 or fewer distinct values, or 5 or more rows per value on average, is a category
    assert identifier_columns(pd.DataFrame({"Surname": pd.array(rng.choice(pool[:1000], 3000),
                                                                dtype="string")})) == {}
    assert identifier_columns(pd.DataFrame({"City": pd.array(rng.choice(pool, 20_000), dtype="string")})) == {}


def test_measurements_counts_dates_and_categories_are_not_identifiers():
    frame = table()
    # sorted by a continuous measurement: increasing, all distinct, but not whole numbers
    assert "Income" not in identifier_columns(frame.sort_values("Income").reset_index(drop=True))
    # sorted by a count: whole numbers, but repeating
    assert "Tenure" not in identifier_columns(frame.sort_values("Tenure").reset_index(drop=True))
    # whole-number amounts, all distinct, not in row order (a balance in cents)
    cents = frame.assign(Balance=np.random.default_rng(2).choice(10**8, N, replace=False).astype(float))
    assert "Balance" not in identifier_columns(cents)
    # a row number with a gap of missing values is not one (ids are never missing)
    gappy = frame.assign(RowNumber=frame["RowNumber"].where(frame.index != 7))
    assert "RowNumber" not in identifier_columns(gappy)
    # US states: 51 distinct values in 200 rows is a category; so is a declared category of distinct values
    rng = np.random.default_rng(3)
    codes = [f"S{i}" for i in range(51)]
    states = pd.DataFrame({"State": pd.array(rng.permutation([*codes, *rng.choice(codes, 149)]), dtype="string"),
                           "Segment": pd.Categorical([f"s{i}" for i in range(200)]),
                           "Flag": rng.random(200) < 0.5})
    assert states["State"].nunique() == 51 and identifier_columns(states) == {}
    # an object column of numbers (not text) is not free text
    assert identifier_columns(pd.DataFrame({"x": pd.Series(rng.random(200), dtype=object)})) == {}
    found = identifier_columns(frame)
    assert not {"CustomerId", "Geography", "Income", "Tenure", "Signup", "IsActive"} & set(found)


def test_small_tables_have_no_identifiers():
    assert identifier_columns(table(50)) == {}
    assert set(identifier_columns(table(51))) == {"RowNumber", "Surname"}  # Note: 50 or fewer distinct


def test_drop_columns_drops_named_and_identifier_like_columns_with_one_warning():
    frame = table().assign(customer_id=np.arange(N))
    with pytest.warns(CustvalWarning) as caught:
        out = drop_columns(frame, drop=["Geography"], protected=("customer_id",))
    messages = [str(w.message) for w in caught if issubclass(w.category, CustvalWarning)]
    assert len(messages) == 1
    assert messages[0].startswith("customers: identifier-like columns dropped from the features: RowNumber "
                                  "(whole numbers increasing with the row (1, 2, 3, ...)); Surname (400 distinct")
    assert "data.keep" in messages[0]
    assert list(out.columns) == ["CustomerId", "Income", "Tenure", "Signup", "IsActive", "customer_id"]
    # kept: listed in keep, or protected (the id column increases with the row here)
    with pytest.warns(CustvalWarning, match="RowNumber") as caught:
        out = drop_columns(frame, keep=["Surname", "Note"], protected=("customer_id",))
    assert "Surname" in out.columns and "customer_id" in out.columns and "RowNumber" not in out.columns
    with warnings.catch_warnings():
        warnings.simplefilter("error", CustvalWarning)
        same = drop_columns(frame[["Geography", "Income", "customer_id"]], protected=("customer_id",))
    pd.testing.assert_frame_equal(same, frame[["Geography", "Income", "customer_id"]])


def test_drop_and_keep_must_name_columns_of_the_table():
    frame = table()
    for setting in ("drop", "keep"):
        with pytest.raises(SchemaError) as err:
            drop_columns(frame, **{setting: ["Surnme"]}, table="customers")
        assert err.value.column == "Surnme" and f"data.{setting}" in err.value.rule
    with pytest.raises(SchemaError, match="id or label column"):
        drop_columns(frame.assign(customer_id=1), drop=["customer_id"], protected=("customer_id",))
