"""Validation at the data boundary: contract columns, parsing rules, policies and error messages."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custval.data.schemas import (
    CAMPAIGNS,
    CUSTOMERS,
    SCHEMAS,
    TRANSACTIONS,
    check_cutoff,
    validate_transactions,
)
from custval.errors import ConfigError, CustvalWarning, DataError, SchemaError

MAPPING = {"customer_id": "cust", "timestamp": "date", "amount": "dollar_value"}


def raw(**cols) -> pd.DataFrame:
    base = {"cust": [1, 1, 2], "date": [19970101, 19970105, 19970103], "dollar_value": [10.0, 5.5, 0.0]}
    base.update(cols)
    return pd.DataFrame(base)


def validate(df, **kw):
    kw.setdefault("columns", MAPPING)
    return validate_transactions(df, **kw)


# ------------------------------------------------------------------------------------------ happy path
def test_mapping_parses_into_the_contract_and_returns_a_new_frame():
    src = raw(number_of_cds=[1, 2, 3])
    before = src.copy()
    out = validate(src, columns={**MAPPING, "quantity": "number_of_cds"})
    assert list(out.columns) == ["customer_id", "timestamp", "amount", "quantity"]
    assert out["customer_id"].dtype == np.int64
    assert out["timestamp"].dtype == "datetime64[ns]"
    assert out["amount"].dtype == np.float64
    assert out["timestamp"].tolist() == [pd.Timestamp("1997-01-01"), pd.Timestamp("1997-01-05"),
                                         pd.Timestamp("1997-01-03")]
    assert out["amount"].tolist() == [10.0, 5.5, 0.0]  # zero amount is a valid purchase, kept
    assert out["quantity"].tolist() == [1, 2, 3]
    assert out is not src
    pd.testing.assert_frame_equal(src, before)  # input untouched


def test_unmapped_names_default_to_themselves_and_optional_columns_are_kept():
    df = pd.DataFrame(
        {
            "customer_id": ["a", "b"],
            "timestamp": ["1997-01-01", "1997-02-03 10:30:00"],
            "amount": [1, 2],
            "order_id": ["o1", "o2"],
            "category": ["pop", "rock"],
            "ignored": [0, 0],
        }
    )
    out = validate_transactions(df)
    assert list(out.columns) == ["customer_id", "timestamp", "amount", "order_id", "category"]
    assert pd.api.types.is_string_dtype(out["customer_id"].dtype)
    assert out["timestamp"].tolist() == [pd.Timestamp("1997-01-01"), pd.Timestamp("1997-02-03 10:30")]
    assert out["amount"].dtype == np.float64


@pytest.mark.parametrize(
    "values, expected",
    [
        ([19970101, 19971231], ["1997-01-01", "1997-12-31"]),  # int yyyymmdd
        ([19970101.0, 19971231.0], ["1997-01-01", "1997-12-31"]),  # integral floats
        (["19970101", "19971231"], ["1997-01-01", "1997-12-31"]),  # 8-digit strings
        (["1997-01-01", "1997-12-31T23:59:00"], ["1997-01-01", "1997-12-31 23:59"]),  # ISO 8601
        (pd.to_datetime(["1997-01-01", "1997-12-31"]).as_unit("s"), ["1997-01-01", "1997-12-31"]),
    ],
)
def test_timestamp_rule(values, expected):
    out = validate(raw(cust=[1, 2], date=values, dollar_value=[1.0, 2.0]))
    assert out["timestamp"].tolist() == [pd.Timestamp(e) for e in expected]
    assert out["timestamp"].dtype == "datetime64[ns]"


def test_timezone_is_dropped_keeping_the_wall_clock_day():
    ts = pd.to_datetime(["1997-01-01 23:30"]).tz_localize("America/New_York")
    out = validate(raw(cust=[1], date=ts, dollar_value=[1.0]))
    assert out["timestamp"].tolist() == [pd.Timestamp("1997-01-01 23:30")]


def test_mixed_utc_offsets_keep_each_rows_wall_clock_time():
    alone = validate(raw(cust=[1], date=["1997-01-01T23:00+05:00"], dollar_value=[1.0]))
    assert alone["timestamp"].tolist() == [pd.Timestamp("1997-01-01 23:00")]
    mixed = validate(raw(cust=[1, 2, 3, 4],
                         date=["1997-01-01T23:00+05:00", "1997-01-02T10:00-05:00", "1997-01-03T08:30:00Z",
                               "1997-01-04"],
                         dollar_value=[1.0, 2.0, 3.0, 4.0]))
    assert mixed["timestamp"].tolist() == [pd.Timestamp("1997-01-01 23:00"), pd.Timestamp("1997-01-02 10:00"),
                                           pd.Timestamp("1997-01-03 08:30"), pd.Timestamp("1997-01-04")]
    fmt = validate(raw(cust=[1, 2], date=["1997-01-01 23:00 +0500", "1997-01-02 10:00 -0500"],
                       dollar_value=[1.0, 2.0]), timestamp_format="%Y-%m-%d %H:%M %z")
    assert fmt["timestamp"].tolist() == [pd.Timestamp("1997-01-01 23:00"), pd.Timestamp("1997-01-02 10:00")]


def test_explicit_timestamp_format():
    out = validate(raw(cust=[1, 2], date=["31/01/1997", "01/02/1997"], dollar_value=[1.0, 2.0]),
                   timestamp_format="%d/%m/%Y")
    assert out["timestamp"].tolist() == [pd.Timestamp("1997-01-31"), pd.Timestamp("1997-02-01")]


def test_integral_float_ids_become_int_and_object_ints_too():
    assert validate(raw(cust=[1.0, 1.0, 2.0]))["customer_id"].dtype == np.int64
    assert validate(raw(cust=pd.Series([1, 1, 2], dtype=object)))["customer_id"].dtype == np.int64


def test_numeric_strings_are_accepted_as_amounts():
    assert validate(raw(dollar_value=["1.5", "2", "-0"]))["amount"].tolist() == [1.5, 2.0, 0.0]


# ----------------------------------------------------------------------------------------- error rules
def test_missing_required_column_names_the_contract_and_source_column():
    with pytest.raises(SchemaError) as err:
        validate(raw().drop(columns="dollar_value"))
    msg = str(err.value)
    assert "transactions.amount" in msg and "'dollar_value'" in msg and "required column missing" in msg
    assert err.value.column.startswith("amount")


def test_amount_not_numeric_shows_the_value():
    with pytest.raises(DataError) as err:
        validate(raw(dollar_value=["1.0", "abc", "2"]))
    assert "amount" in str(err.value) and "must be numeric" in str(err.value) and "'abc'" in str(err.value)
    assert err.value.example == "abc"


@pytest.mark.parametrize(
    "date, rule, example",
    [
        (["1997-01-01", "1997-13-45", "1997-01-02"], "unparseable timestamp", "1997-13-45"),
        (["1997-01-01", "01/02/1997", "1997-01-02"], "unparseable timestamp", "01/02/1997"),  # ambiguous
        (["1997-01-01", "not a date", "1997-01-02"], "unparseable timestamp", "not a date"),
        ([19970101, 1997011, 19970102], "yyyymmdd", 1997011),
        ([19970101, 19970231, 19970102], "unparseable timestamp", 19970231),  # no Feb 31
        ([19970101, 19970101.5, 19970102], "yyyymmdd", 19970101.5),
    ],
)
def test_unparseable_timestamp(date, rule, example):
    with pytest.raises(DataError) as err:
        validate(raw(date=date))
    msg = str(err.value)
    assert "transactions.timestamp" in msg and rule in msg and repr(example) in msg


@pytest.mark.parametrize("date", [["1997-01-01", None, "1997-01-02"], [19970101, np.nan, 19970102]])
def test_missing_timestamp(date):
    with pytest.raises(DataError, match=r"timestamp.*missing timestamp.*row 1"):
        validate(raw(date=date))


@pytest.mark.parametrize(
    "ids, rule",
    [
        ([1.0, np.nan, 2.0], "missing customer id"),
        (["a", None, "b"], "missing customer id"),
        (["a", "  ", "b"], "empty customer id"),
        ([1.0, 1.5, 2.0], "non-integral"),
    ],
)
def test_bad_customer_id(ids, rule):
    with pytest.raises(DataError) as err:
        validate(raw(cust=ids))
    assert "transactions.customer_id (source column 'cust')" in str(err.value) and rule in str(err.value)
    assert "row 1" in str(err.value)


@pytest.mark.parametrize("value, rule", [(np.nan, "missing value"), (np.inf, "must be finite")])
def test_bad_amount_value(value, rule):
    with pytest.raises(DataError) as err:
        validate(raw(dollar_value=[1.0, value, 2.0]))
    assert "amount" in str(err.value) and rule in str(err.value) and "row 1" in str(err.value)


def test_empty_table():
    with pytest.raises(DataError, match=r"transactions\.\*: table is empty"):
        validate(raw().iloc[:0])


def test_table_name_appears_in_errors():
    with pytest.raises(DataError, match=r"^orders\.amount"):
        validate(raw(dollar_value=["x", "1", "2"]), table="orders")


def test_bad_arguments_are_config_errors():
    with pytest.raises(ConfigError, match="returns"):
        validate(raw(), returns="ignore")
    with pytest.raises(ConfigError, match="duplicates"):
        validate(raw(), duplicates="maybe")
    with pytest.raises(ConfigError, match="custid"):
        validate(raw(), columns={**MAPPING, "custid": "x"})
    with pytest.raises(SchemaError, match="DataFrame"):
        validate_transactions([1, 2, 3])


def test_non_numeric_quantity():
    with pytest.raises(DataError, match=r"quantity.*must be numeric.*'two'"):
        validate(raw(q=[1, "two", 3]), columns={**MAPPING, "quantity": "q"})


# --------------------------------------------------------------------------------------------- returns
def returns_frame():
    # customer 1: day 1 buys 10, returns 4 (net 6); day 2 buys 5 and returns 5 (net 0)
    # customer 2: day 3 return only (-7); day 4 buys 0 (a zero purchase, no return)
    return raw(
        cust=[1, 1, 1, 1, 2, 2],
        date=[19970101, 19970101, 19970102, 19970102, 19970103, 19970104],
        dollar_value=[10.0, -4.0, 5.0, -5.0, -7.0, 0.0],
    )


def test_returns_exclude_drops_return_rows_and_warns_count_and_total():
    with pytest.warns(CustvalWarning, match=r"excluded 3 return rows.*total -16\.00"):
        out = validate(returns_frame())
    assert out["amount"].tolist() == [10.0, 5.0, 0.0]
    assert out["customer_id"].tolist() == [1, 1, 2]


def test_returns_net_nets_same_day_and_drops_non_positive_days():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = validate(returns_frame(), returns="net")
    # day 1 (net 6) keeps its rows; day 2 (net 0) and customer 2's return-only day go; the zero purchase stays
    assert out["amount"].tolist() == [10.0, -4.0, 0.0]
    assert out["timestamp"].dt.strftime("%Y%m%d").tolist() == ["19970101", "19970101", "19970104"]
    assert out.groupby(["customer_id", out["timestamp"].dt.normalize()])["amount"].sum().tolist() == [6.0, 0.0]


def test_returns_net_is_per_customer_and_per_calendar_day():
    df = raw(cust=[1, 2, 1], date=["1997-01-01 09:00", "1997-01-01 10:00", "1997-01-01 23:00"],
             dollar_value=[3.0, -5.0, -1.0])
    out = validate(df, returns="net")
    # customer 1 nets 3 - 1 = 2 > 0 (kept); customer 2's return is not netted against customer 1
    assert out["customer_id"].tolist() == [1, 1]


def test_returns_net_rounding_counts_as_zero():
    out = validate(raw(cust=[1, 1, 1, 2], date=[19970101] * 4, dollar_value=[0.1, 0.2, -0.3, 1.0]),
                   returns="net")
    assert out["customer_id"].tolist() == [2]


def test_returns_error_gives_an_example():
    with pytest.raises(DataError) as err:
        validate(returns_frame(), returns="error")
    assert "amount" in str(err.value) and "returns='error'" in str(err.value) and "3 rows" in str(err.value)
    assert err.value.example == -4.0


# ------------------------------------------------------------------------------------------ duplicates
def dup_frame(**extra):
    return raw(cust=[1, 1, 2, 1], date=[19970101, 19970101, 19970102, 19970101],
               dollar_value=[5.0, 5.0, 5.0, 5.0], **extra)


def test_duplicates_error_explains_cdnow_and_keep():
    with pytest.raises(DataError) as err:
        validate(dup_frame())
    msg = str(err.value)
    assert "2 rows are identical in every column" in msg
    assert "CDNOW" in msg and "duplicates='keep'" in msg
    assert err.value.example["customer_id"] == 1 and err.value.example["amount"] == 5.0


def test_duplicates_drop_keeps_the_first_and_keep_keeps_all():
    assert validate(dup_frame(), duplicates="drop")["customer_id"].tolist() == [1, 2]
    assert len(validate(dup_frame(), duplicates="keep")) == 4


def test_rows_differing_in_an_extra_input_column_are_not_duplicates():
    out = validate(dup_frame(line=[1, 2, 3, 2]), duplicates="drop")
    assert len(out) == 3  # only the last row repeats row 2 in every column (line=2)


def test_duplicates_use_parsed_values():
    # the same day written two ways is the same value
    df = raw(cust=["a", "a"], date=["19970101", "19970101"], dollar_value=["5", "5.0"])
    with pytest.raises(DataError, match="identical"):
        validate(df)


@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, 5), st.sampled_from([0.0, 1.0, 2.5, -1.0])),
        min_size=1, max_size=30,
    )
)
@settings(max_examples=60, deadline=None)
def test_drop_equals_pandas_drop_duplicates_and_validation_is_idempotent(rows):
    df = pd.DataFrame(rows, columns=["customer_id", "day", "amount"])
    df["timestamp"] = pd.Timestamp("2020-01-01") + pd.to_timedelta(df.pop("day"), unit="D")
    expected = df.drop_duplicates().reset_index(drop=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CustvalWarning)
        out = validate_transactions(df, duplicates="drop", returns="exclude")
    expected = expected[expected["amount"] >= 0].reset_index(drop=True)
    assert out[["customer_id", "timestamp", "amount"]].to_numpy().tolist() == \
        expected[["customer_id", "timestamp", "amount"]].to_numpy().tolist()
    if len(out):  # all rows may have been returns
        pd.testing.assert_frame_equal(out, validate_transactions(out, duplicates="error", returns="error"))


# ----------------------------------------------------------------------------------------- check_cutoff
def test_check_cutoff():
    tx = validate(raw(date=["1997-01-03 15:00", "1997-01-05", "1997-02-01"]))
    assert check_cutoff(tx, "1997-01-03") == pd.Timestamp("1997-01-03")  # same day as the first: fine
    assert check_cutoff(tx, 19970301) == pd.Timestamp("1997-03-01")
    assert check_cutoff(tx, "19970301") == pd.Timestamp("1997-03-01")
    with pytest.raises(DataError) as err:
        check_cutoff(tx, "1997-01-02", name="calibration_end")
    assert "transactions.calibration_end" in str(err.value) and "before the first transaction" in str(err.value)
    assert "1997-01-03" in str(err.value)
    for bad in ["next tuesday", None, "1997-02-30"]:
        with pytest.raises(DataError, match=r"observation_end: unparseable date"):
            check_cutoff(tx, bad)


# -------------------------------------------------------------------------------------------- schemas
def test_table_schemas_describe_the_contracts():
    assert TRANSACTIONS.required == ("customer_id", "timestamp", "amount")
    assert TRANSACTIONS.optional == ("order_id", "category", "quantity")
    assert set(SCHEMAS) == {"transactions", "customers", "campaigns"}
    assert CAMPAIGNS.required == ("customer_id", "campaign_id", "treatment", "sent_at")
    assert "signup_date" in CUSTOMERS.names
    text = TRANSACTIONS.describe()
    assert all(name in text for name in TRANSACTIONS.names)


def test_transactions_after_today_warn():
    tx = pd.DataFrame({"customer_id": [1, 2], "timestamp": ["2024-01-01", "2100-01-01"], "amount": [1.0, 2.0]})
    with pytest.warns(CustvalWarning, match=r"1 rows lie after today \(latest 2100-01-01"):
        validate_transactions(tx)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CustvalWarning)
        validate_transactions(tx.iloc[:1])
