"""RFM features against hand-worked examples, lifetimes (the reference) and the published CDNOW summary."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lifetimes.utils import calibration_and_holdout_data, summary_data_from_transaction_data

from custval.data.datasets import lifetimes_data_path
from custval.errors import ConfigError, DataError, SchemaError
from custval.features.rfm import (
    CALIBRATION_HOLDOUT_COLUMNS,
    DAY_NUMBER_SQL,
    RFM_COLUMNS,
    calibration_holdout_split,
    calibration_holdout_sql,
    day_number,
    rfm_sql,
    rfm_summary,
)
from custval.units import period_days

ENGINES = ["numpy", "duckdb"]


def tx_frame(rows) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount"])
    df["timestamp"] = pd.to_datetime(df["timestamp"], format="ISO8601").astype("datetime64[ns]")
    df["amount"] = df["amount"].astype(float)
    return df


HAND = tx_frame(
    [
        ("A", "2020-01-01 10:00", 10),
        ("A", "2020-01-01 18:00", 5),  # same day: one purchase of 15
        ("A", "2020-01-08", 20),
        ("A", "2020-01-15 23:59", 30),  # the observation end day is included
        ("A", "2020-01-15 23:59", 10),
        ("A", "2020-01-20", 100),  # after the end: ignored
        ("B", "2020-01-10", 7),
        ("C", "2020-01-16", 50),  # first seen after the end: absent
        ("D", "2020-01-03", 4),
        ("D", "2020-01-05", 0),  # a zero-amount purchase still counts
    ]
)


def lt_summary(tx, end, mult):
    return summary_data_from_transaction_data(
        tx, "customer_id", "timestamp", "amount", observation_period_end=end, freq="D", freq_multiplier=mult
    ).sort_index()


def lt_split(tx, cal, end, mult):
    return calibration_and_holdout_data(
        tx, "customer_id", "timestamp", cal, end, freq="D", freq_multiplier=mult, monetary_value_col="amount"
    ).sort_index()


def assert_matches_lifetimes(ours: pd.DataFrame, ref: pd.DataFrame, money_cols=("monetary_value",)):
    assert ours.index.equals(ref.index)
    assert ours.index.name == "customer_id"
    for col in ours.columns:
        a, b = ours[col].to_numpy(), ref[col].to_numpy(dtype=float)
        if col in money_cols:
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12, err_msg=col)
        else:
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=0, err_msg=col)


# ------------------------------------------------------------------------------------- hand examples
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("period", ["D", "W"])
def test_hand_worked_summary(engine, period):
    out = rfm_summary(HAND, "2020-01-15", period, engine=engine)
    p = period_days(period)
    expected = pd.DataFrame(
        {
            "frequency": [2.0, 0.0, 1.0],
            "recency": [14 / p, 0.0, 2 / p],
            "T": [14 / p, 5 / p, 12 / p],
            "monetary_value": [(20 + 40) / 2, 0.0, 0.0],
        },
        index=pd.Index(["A", "B", "D"], name="customer_id"),
    )
    pd.testing.assert_frame_equal(out, expected, check_index_type=False)
    assert list(out.columns) == list(RFM_COLUMNS)


@pytest.mark.parametrize("engine", ENGINES)
def test_hand_worked_calibration_holdout(engine):
    out = calibration_holdout_split(HAND, "2020-01-08", "2020-01-20", "D", engine=engine)
    assert list(out.columns) == list(CALIBRATION_HOLDOUT_COLUMNS)
    assert list(out.index) == ["A", "D"]  # B first buys in the holdout
    a, d = out.loc["A"], out.loc["D"]
    assert (a.frequency_cal, a.recency_cal, a.T_cal, a.monetary_value_cal) == (1, 7, 7, 20)
    # holdout: 2 purchase days; lifetimes' monetary_value_holdout is the mean of the holdout ROWS
    assert a.frequency_holdout == 2 and a.monetary_value_holdout == pytest.approx((30 + 10 + 100) / 3)
    assert (d.frequency_cal, d.recency_cal, d.T_cal, d.monetary_value_cal) == (1, 2, 5, 0)
    assert (d.frequency_holdout, d.monetary_value_holdout) == (0, 0)
    assert (out["duration_holdout"] == 12).all()
    # the whole calibration_end day is calibration: a purchase at 23:00 that day is not a holdout purchase
    late = pd.concat([HAND, tx_frame([("D", "2020-01-08 23:00", 6)])], ignore_index=True)
    d2 = calibration_holdout_split(late, "2020-01-08", "2020-01-20", "D", engine=engine).loc["D"]
    assert (d2.frequency_cal, d2.recency_cal, d2.T_cal, d2.monetary_value_cal, d2.frequency_holdout) == (2, 5, 5, 3, 0)
    assert_matches_lifetimes(out, lt_split(HAND, "2020-01-08", "2020-01-20", 1),
                             money_cols=("monetary_value_cal", "monetary_value_holdout"))


# --------------------------------------------------------------------------------- lifetimes: CDNOW
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("period", ["D", "W", "M"])
@pytest.mark.parametrize("kind", ["master", "sample"])
def test_cdnow_summary_equals_lifetimes(request, kind, period, engine):
    tx = request.getfixturevalue(f"cdnow_{kind}")
    ours = rfm_summary(tx, "1998-06-30", period, engine=engine)
    assert_matches_lifetimes(ours, lt_summary(tx, "1998-06-30", period_days(period)))


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("kind", ["master", "sample"])
def test_cdnow_calibration_holdout_equals_lifetimes(request, kind, engine):
    tx = request.getfixturevalue(f"cdnow_{kind}")
    ours = calibration_holdout_split(tx, "1997-09-30", "1998-06-30", "W", engine=engine)
    assert_matches_lifetimes(ours, lt_split(tx, "1997-09-30", "1998-06-30", 7),
                             money_cols=("monetary_value_cal", "monetary_value_holdout"))


def test_cdnow_sample_reproduces_the_published_summary(cdnow_sample):
    """Weeks, calibration through 1997-09-30: lifetimes' cdnow_customers_summary.csv to the cent."""
    published = pd.read_csv(lifetimes_data_path("cdnow_customers_summary.csv"), index_col="ID")
    split = calibration_holdout_split(cdnow_sample, "1997-09-30", "1998-06-30", "W")
    cal = split[["frequency_cal", "recency_cal", "T_cal"]].round(2)
    cal.columns = ["frequency", "recency", "T"]
    np.testing.assert_array_equal(cal.index, published.index)
    np.testing.assert_array_equal(cal.to_numpy(), published.to_numpy())
    # monetary (zbar) is published rounded half-up; numpy rounds half-to-even, so round half-up here
    zbar = pd.read_csv(lifetimes_data_path("cdnow_customers_summary_with_transactions.csv"))["zbar"]
    half_up = np.floor(split["monetary_value_cal"].to_numpy() * 100 + 0.5 + 1e-7) / 100
    np.testing.assert_allclose(half_up, zbar.to_numpy(), rtol=0, atol=1e-9)
    summary = rfm_summary(cdnow_sample, "1997-09-30", "W")
    np.testing.assert_array_equal(summary[["frequency", "recency", "T"]].round(2).to_numpy(), published.to_numpy())


# -------------------------------------------------------------------------------- lifetimes: random
def random_transactions(seed: int, ids: str, n: int = 4000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cust = rng.integers(0, 600, n)
    if ids == "str":
        cust = pd.Series(cust).astype(str).radd("cust-").astype("str")
    elif ids == "sparse_int":
        cust = cust.astype(np.int64) * 7_919_000_003 - 10**12  # huge, negative, sparse range
    ts = pd.Timestamp("2019-12-30") + pd.to_timedelta(rng.integers(0, 500 * 24 * 60, n), unit="min")
    amount = np.round(rng.gamma(1.5, 30, n), 2)
    amount[rng.random(n) < 0.05] = 0.0
    df = pd.DataFrame({"customer_id": cust, "timestamp": ts, "amount": amount})
    return pd.concat([df, df.iloc[:200]], ignore_index=True)  # exact repeats too


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("ids", ["int", "sparse_int", "str"])
@pytest.mark.parametrize("period", ["D", "W"])
def test_random_data_equals_lifetimes(engine, ids, period):
    tx = random_transactions(hash((ids, period)) % 1000, ids)
    end = "2020-11-15"
    ours = rfm_summary(tx, end, period, engine=engine)
    assert_matches_lifetimes(ours, lt_summary(tx, end, period_days(period)))
    assert ours.index.dtype == tx["customer_id"].dtype
    split = calibration_holdout_split(tx, "2020-06-30", end, period, engine=engine)
    # lifetimes cuts the calibration at calibration_end 00:00 (a later time that day falls in its holdout);
    # ours includes the whole day, as for observation_end. The two agree on day-level timestamps:
    days = tx.assign(timestamp=tx["timestamp"].dt.normalize())
    assert_matches_lifetimes(split, lt_split(days, "2020-06-30", end, period_days(period)),
                             money_cols=("monetary_value_cal", "monetary_value_holdout"))
    pd.testing.assert_frame_equal(calibration_holdout_split(days, "2020-06-30", end, period, engine=engine), split)


def test_engines_agree_on_tz_aware_and_microsecond_timestamps():
    tx = random_transactions(3, "int", 1500)
    tx["timestamp"] = tx["timestamp"].astype("datetime64[us]")
    a = rfm_summary(tx, "2020-12-31", "M", engine="numpy")
    b = rfm_summary(tx, "2020-12-31", "M", engine="duckdb")
    pd.testing.assert_frame_equal(a, b, rtol=1e-12)
    tz = tx.assign(timestamp=tx["timestamp"].dt.tz_localize("Europe/Paris"))
    pd.testing.assert_frame_equal(rfm_summary(tz, "2020-12-31", "M"), a)  # wall-clock days


# ---------------------------------------------------------------------------------------- leakage
def test_transactions_after_the_end_change_nothing():
    tx = random_transactions(7, "int")
    end = pd.Timestamp("2020-09-30")
    base = rfm_summary(tx, end, "W")
    later = tx["timestamp"] > end + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)
    assert later.any()
    changed = tx.copy()
    changed.loc[later, "amount"] *= 10
    changed.loc[later, "customer_id"] = changed.loc[later, "customer_id"][::-1].to_numpy()
    extra = tx_frame([(1, "2020-10-01", 999), (10_000, "2021-01-01", 5), (1, "2020-10-01 00:00:01", 3)])
    for variant in (changed, pd.concat([tx, extra], ignore_index=True), tx.loc[~later]):
        for engine in ENGINES:
            pd.testing.assert_frame_equal(rfm_summary(variant, end, "W", engine=engine), base)


def test_holdout_rows_do_not_leak_into_calibration_columns():
    tx = random_transactions(11, "int")
    cal, end = "2020-06-30", "2020-11-15"
    base = calibration_holdout_split(tx, cal, end)
    changed = tx.copy()
    holdout = changed["timestamp"] >= pd.Timestamp("2020-07-01")
    changed.loc[holdout, "amount"] += 1000
    out = calibration_holdout_split(changed, cal, end)
    cal_cols = ["frequency_cal", "recency_cal", "T_cal", "monetary_value_cal"]
    pd.testing.assert_frame_equal(out[cal_cols], base[cal_cols])
    assert (out["monetary_value_holdout"] >= base["monetary_value_holdout"]).all()
    assert (out["monetary_value_holdout"] > base["monetary_value_holdout"]).any()


transactions_strategy = st.lists(
    st.tuples(st.integers(0, 5), st.integers(0, 60), st.integers(0, 23), st.floats(0, 100, allow_nan=False)),
    min_size=1,
    max_size=40,
)


@given(before=transactions_strategy, after=transactions_strategy, end_offset=st.integers(0, 60))
@settings(max_examples=50, deadline=None)
def test_leakage_property(before, after, end_offset):
    """Whatever happens after observation_end (new rows, new customers) leaves the summary unchanged."""
    start = pd.Timestamp("2021-03-01")
    end = start + pd.Timedelta(days=end_offset)

    def frame(rows, shift):
        return pd.DataFrame(
            {
                "customer_id": [r[0] for r in rows],
                "timestamp": [shift + pd.Timedelta(days=r[1], hours=r[2]) for r in rows],
                "amount": [r[3] for r in rows],
            }
        )

    past = frame(before, start)
    past = past[past["timestamp"] < end + pd.Timedelta(days=1)]
    if past.empty:
        past = frame([(0, 0, 0, 1.0)], start)
    future = frame(after, end + pd.Timedelta(days=1))
    base = rfm_summary(past, end, "D")
    with_future = rfm_summary(pd.concat([past, future], ignore_index=True), end, "D")
    pd.testing.assert_frame_equal(with_future, base)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = lt_summary(past, end, 1)
    assert_matches_lifetimes(base, ref)


# ------------------------------------------------------------------------------------- validation
def test_cutoff_before_the_first_transaction():
    with pytest.raises(DataError) as err:
        rfm_summary(HAND, "2019-12-31")
    assert "observation_end" in str(err.value) and "before the first transaction" in str(err.value)
    with pytest.raises(DataError, match="calibration_end.*before the first transaction"):
        calibration_holdout_split(HAND, "2019-12-31", "2020-01-20")
    with pytest.raises(DataError, match="observation_end: unparseable date"):
        rfm_summary(HAND, "the end")


def test_calibration_end_must_precede_observation_end():
    for cal, end in [("2020-01-20", "2020-01-20"), ("2020-01-20 08:00", "2020-01-20 23:00"), ("2020-01-21", "2020-01-20")]:
        with pytest.raises(ConfigError, match="calibration_end.*must be before observation_end"):
            calibration_holdout_split(HAND, cal, end)


def test_bad_period_engine_and_columns():
    with pytest.raises(ConfigError, match="period"):
        rfm_summary(HAND, "2020-01-15", "Q")
    with pytest.raises(ConfigError, match="period"):
        calibration_holdout_split(HAND, "2020-01-08", "2020-01-15", "Y")
    with pytest.raises(ConfigError, match="engine"):
        rfm_summary(HAND, "2020-01-15", engine="spark")
    with pytest.raises(SchemaError, match=r"transactions\.amount: required column missing"):
        rfm_summary(HAND.drop(columns="amount"), "2020-01-15")
    with pytest.raises(SchemaError, match=r"transactions\.timestamp: must be datetime64.*validate_transactions"):
        rfm_summary(HAND.assign(timestamp=HAND["timestamp"].astype(str)), "2020-01-15")
    with pytest.raises(SchemaError, match=r"transactions\.amount: must be numeric"):
        rfm_summary(HAND.assign(amount="1"), "2020-01-15")


# -------------------------------------------------------------------------------------------- SQL
def test_sql_dialects_differ_only_in_the_day_number_expression():
    for build, kw in [(rfm_sql, {"observation_end_day": 18000}),
                      (calibration_holdout_sql, {"calibration_end_day": 17900, "observation_end_day": 18000})]:
        duck = build("tx_table", period="W", dialect="duckdb", **kw)
        spark = build("tx_table", period="W", dialect="spark", **kw)
        assert DAY_NUMBER_SQL["spark"] in spark and "datediff('day'" not in spark
        assert spark.replace(DAY_NUMBER_SQL["spark"], DAY_NUMBER_SQL["duckdb"]) == duck
        assert "FROM tx_table" in duck
        assert "CAST(7.0 AS DOUBLE)" in duck  # a bare 7.0 would be a DECIMAL in Spark SQL
    with pytest.raises(ConfigError, match="dialect"):
        rfm_sql(observation_end_day=1, dialect="sqlite")


def test_day_number():
    assert day_number("1970-01-01 23:59") == 0
    assert day_number(pd.Timestamp("1997-09-30")) == (pd.Timestamp("1997-09-30") - pd.Timestamp("1970-01-01")).days


def test_missing_customer_id_is_a_schema_error_not_a_crash():
    tx = pd.DataFrame({"customer_id": pd.array([1, None, 2], dtype="Int64"),
                       "timestamp": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"]),
                       "amount": [1.0, 2.0, 3.0]})
    with pytest.raises(SchemaError, match="customer_id.*missing"):
        rfm_summary(tx, "2024-01-31")
