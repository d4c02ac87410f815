"""Point-in-time snapshots: hand-worked examples, a slow independent oracle, leakage properties, splits."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custval.data.simulate import simulate_retail
from custval.errors import ConfigError, CustvalWarning, DataError, SchemaError
from custval.features.rfm import rfm_summary
from custval.features.snapshots import (
    ID_COLUMNS,
    LABEL_PREFIX,
    WINDOWS,
    TimeSplit,
    build_snapshot,
    build_snapshots,
    cutoff_schedule,
    feature_columns,
    history_start,
    label_columns,
    split_cutoffs,
    time_split,
)

CUT = pd.Timestamp("2024-04-01")


def tx_frame(rows, ids="str") -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount", "category"])
    df["timestamp"] = pd.to_datetime(df["timestamp"], format="ISO8601").astype("datetime64[ns]")
    df["amount"] = df["amount"].astype(float)
    df["category"] = df["category"].astype("string")
    if ids == "str":
        df["customer_id"] = df["customer_id"].astype("str")
    return df


# Days before the cutoff 2024-04-01 (2024 is a leap year): 2024-01-01 = 91, 2024-02-01 = 60,
# 2024-02-15 = 46, 2024-03-01 = 31, 2024-03-20 = 12, 2024-03-25 = 7, 2023-03-01 = 397, 2023-12-01 = 122,
# 2023-01-01 = 456; cutoff - 365 days = 2023-04-02.
HAND = tx_frame(
    [
        ("A", "2024-01-01 10:00", 10, "home"),
        ("A", "2024-01-01 15:00", 5, "kitchen"),  # same day: one purchase day of 15
        ("A", "2024-02-15", 20, "home"),
        ("A", "2024-03-20", 30, "kitchen"),
        ("A", "2024-03-25", -10, "kitchen"),  # a return alone on its day: spend -10, not a purchase
        ("A", "2024-04-01 00:00", 100, "garden"),  # AT the cutoff: label window, never a feature
        ("B", "2023-03-01", 40, "home"),  # before the active window, still history
        ("B", "2024-03-31 23:59", 8, "home"),
        ("C", "2023-01-15", 50, "home"),  # inactive at the cutoff: not in the snapshot
        ("C", "2024-04-10", 5, "home"),
        ("D", "2024-02-01", 10, "home"),  # home sale and kitchen return on one day: net 0 with a return,
        ("D", "2024-02-01", -10, "kitchen"),  # so not a purchase day, and so home is not bought either
        ("D", "2024-03-01", 25, "garden"),
        ("D", "2024-04-20", 12, "kitchen"),  # label window [04-01, 05-01) with H = 30
        ("E", "2024-03-10", -5, "home"),  # only a return: never a purchase, never active
        ("F", "2024-06-01", 1, "home"),  # the log runs to 2024-06-01 so H = 30 labels are observable
    ]
)
HAND_KW = dict(horizon_days=30, windows=(30, 90))


def hand_snapshot(**kw) -> pd.DataFrame:
    return build_snapshot(HAND, "2024-04-01", **{**HAND_KW, **kw})


# ------------------------------------------------------------------------------------------- hand-worked
def test_hand_rows_columns_and_order():
    snap = hand_snapshot()
    assert list(snap["customer_id"]) == ["A", "B", "D"]
    assert isinstance(snap.index, pd.RangeIndex)
    assert (snap["cutoff"] == CUT).all() and snap["cutoff"].dtype == "datetime64[ns]"
    expected_features = [
        "recency_days", "tenure_days", "frequency", "monetary_total", "monetary_mean",
        "n_purchases_30d", "spend_30d", "n_purchases_90d", "spend_90d",
        "trend_purchases_30_90", "trend_spend_30_90",
        "ipt_mean_days", "ipt_std_days", "ipt_last_days", "recency_ratio",
        "share_garden", "share_home", "share_kitchen",
        "days_since_garden", "days_since_home", "days_since_kitchen", "n_categories",
    ]
    labels = ["churn", "propensity_garden", "propensity_home", "propensity_kitchen"]
    assert list(snap.columns) == ["customer_id", "cutoff", *expected_features, *labels]
    assert feature_columns(snap) == expected_features
    assert label_columns(snap) == labels
    assert ID_COLUMNS == ("customer_id", "cutoff") and LABEL_PREFIX == "propensity_"
    assert WINDOWS == (30, 90, 180, 365)
    assert all(snap[c].dtype == np.float64 for c in expected_features)
    assert snap["churn"].dtype == np.int8
    assert all(snap[c].dtype == np.float64 for c in labels[1:])


def test_hand_rfm_window_and_trend_features():
    s = hand_snapshot().set_index("customer_id")
    # A: purchase days 01-01 (15), 02-15 (20), 03-20 (30); return day 03-25 (-10)
    # B: purchase days 2023-03-01 (40), 2024-03-31 (8)
    # D: 02-01 nets 0 with a return -> not a purchase; purchase day 03-01 (25)
    exp = pd.DataFrame(
        {
            "recency_days": [12, 1, 31],
            "tenure_days": [91, 397, 31],
            "frequency": [3, 2, 1],
            "monetary_total": [15 + 20 + 30 - 10, 40 + 8, 10 - 10 + 25],
            "monetary_mean": [55 / 3, 48 / 2, 25 / 1],
            # [c-30, c): A: 03-20 purchase + 03-25 return; B: 03-31; D: 03-01 is 31 days back -> outside
            "n_purchases_30d": [1, 1, 0],
            "spend_30d": [30 - 10, 8, 0],
            # [c-90, c): A: 02-15, 03-20 (01-01 is 91 days back); B: 03-31; D: 02-01 (net 0) and 03-01
            "n_purchases_90d": [2, 1, 1],
            "spend_90d": [20 + 30 - 10, 8, 25],
        },
        index=pd.Index(["A", "B", "D"], name="customer_id"),
    ).astype(float)
    pd.testing.assert_frame_equal(s[exp.columns], exp, check_exact=False, rtol=1e-12, check_index_type=False)
    # trend = (recent - prior) / (|recent| + |prior|) of per-day rates, recent [c-30, c), prior [c-90, c-30)
    # A purchases: 1/30 vs 1/60 -> (1/60)/(3/60) = 1/3; spend: 20/30 vs 20/60 -> 1/3
    # B: activity only in the recent window -> +1; D: only in the prior one -> -1
    np.testing.assert_allclose(s["trend_purchases_30_90"], [1 / 3, 1, -1], rtol=1e-12)
    np.testing.assert_allclose(s["trend_spend_30_90"], [1 / 3, 1, -1], rtol=1e-12)


def test_hand_inter_purchase_times():
    s = hand_snapshot().set_index("customer_id")
    # A: gaps 91-46 = 45 and 46-12 = 34 days; mean 39.5, population std 5.5, last 34, recency 12 / 39.5
    # B: one gap 397 - 1 = 396; std 0; D: a single purchase day -> NaN
    np.testing.assert_allclose(s["ipt_mean_days"], [39.5, 396, np.nan], rtol=1e-12)
    np.testing.assert_allclose(s["ipt_std_days"], [5.5, 0, np.nan], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(s["ipt_last_days"], [34, 396, np.nan], rtol=1e-12)
    np.testing.assert_allclose(s["recency_ratio"], [12 / 39.5, 1 / 396, np.nan], rtol=1e-12)


def test_hand_category_features():
    s = hand_snapshot().set_index("customer_id")
    # A: home 10 + 20 = 30, kitchen 5 + 30 - 10 = 25, garden 0 -> shares 0, 30/55, 25/55;
    #    home last bought 02-15 (46 days), kitchen 03-20 (12; the 03-25 return is no purchase)
    # B: home only; D: home 10, kitchen -10 (clipped to 0), garden 25 -> 0.. 10/35 and 25/35 (spend counts);
    #    D's 02-01 is no purchase day (net 0 with a return), so home was not bought then: only garden
    np.testing.assert_allclose(s["share_garden"], [0, 0, 25 / 35], rtol=1e-12)
    np.testing.assert_allclose(s["share_home"], [30 / 55, 1, 10 / 35], rtol=1e-12)
    np.testing.assert_allclose(s["share_kitchen"], [25 / 55, 0, 0], rtol=1e-12)
    np.testing.assert_array_equal(s["days_since_garden"], [np.nan, np.nan, 31])
    np.testing.assert_array_equal(s["days_since_home"], [46, 1, np.nan])
    np.testing.assert_array_equal(s["days_since_kitchen"], [12, np.nan, np.nan])
    np.testing.assert_array_equal(s["n_categories"], [2, 1, 1])


def test_hand_labels_and_cross_sell_masking():
    s = hand_snapshot().set_index("customer_id")
    # window [04-01, 05-01): A buys garden at 00:00 on 04-01, B nothing, D kitchen on 04-20
    np.testing.assert_array_equal(s["churn"], [0, 1, 0])
    np.testing.assert_array_equal(s["propensity_garden"], [1, 0, 0])
    np.testing.assert_array_equal(s["propensity_home"], [0, 0, 0])
    np.testing.assert_array_equal(s["propensity_kitchen"], [0, 0, 1])
    new = hand_snapshot(cross_sell_new_only=True).set_index("customer_id")
    # NaN where the category was bought before the cutoff (A: home, kitchen; B: home; D: garden)
    np.testing.assert_array_equal(new["propensity_garden"], [1, 0, np.nan])
    np.testing.assert_array_equal(new["propensity_home"], [np.nan, np.nan, 0])
    np.testing.assert_array_equal(new["propensity_kitchen"], [np.nan, 0, 1])
    np.testing.assert_array_equal(new["churn"], s["churn"])
    # H = 60: B still silent, both others buy
    s60 = hand_snapshot(horizon_days=60).set_index("customer_id")
    np.testing.assert_array_equal(s60["churn"], [0, 1, 0])


def test_exchange_day_buys_no_category_and_labels_agree():
    """Returning B (-50) and buying A (+50) on one day nets 0 with a return: no purchase day, so A is not
    bought either, in the label window (churn = 1 and propensity_a = 0) and before the cutoff."""
    tx = tx_frame([
        (1, "2024-01-10", 50, "b"),
        (1, "2024-02-10 10:00", -50, "b"),  # exchange in the label window [02-01, 02-21)
        (1, "2024-02-10 11:00", 50, "a"),
        (2, "2024-01-05", 30, "b"),
        (2, "2024-01-20 09:00", -30, "b"),  # exchange before the cutoff
        (2, "2024-01-20 09:30", 30, "a"),
        (2, "2024-02-12", 20, "a"),  # a real purchase of a in the window (net > 0 on its day)
    ], ids="int")
    s = build_snapshot(tx, "2024-02-01", horizon_days=20, observation_end="2024-03-01").set_index("customer_id")
    np.testing.assert_array_equal(s["churn"], [1, 0])
    np.testing.assert_array_equal(s["propensity_a"], [0, 1])
    np.testing.assert_array_equal(s["propensity_b"], [0, 0])
    # customer 2: the 01-20 exchange is no purchase day (recency from 01-05 = 27 days) and buys no a
    np.testing.assert_array_equal(s["recency_days"], [22, 27])
    np.testing.assert_array_equal(s["frequency"], [1, 1])
    np.testing.assert_array_equal(s["days_since_a"], [np.nan, np.nan])
    np.testing.assert_array_equal(s["days_since_b"], [22, 27])
    np.testing.assert_array_equal(s["n_categories"], [1, 1])
    new = build_snapshot(tx, "2024-02-01", horizon_days=20, observation_end="2024-03-01", cross_sell_new_only=True)
    np.testing.assert_array_equal(new["propensity_a"], [0, 1])  # a was never bought before: not masked


def with_exchanges(tx: pd.DataFrame, seed: int, n: int = 60) -> pd.DataFrame:
    """Add `n` exchange days (return of one category and a sale of another for the same amount, one day)."""
    rng = np.random.default_rng(seed)
    cust = rng.choice(tx["customer_id"].unique(), n)
    day = pd.Timestamp("2022-01-01") + pd.to_timedelta(rng.integers(0, 500, n), "D")
    amount = np.round(rng.uniform(5, 80, n), 2)
    cats = np.array(["a", "b", "c"], dtype=object)
    pick = rng.permuted(np.tile(np.arange(3), (n, 1)), axis=1)[:, :2]
    ex = pd.DataFrame({
        "customer_id": np.r_[cust, cust].astype(np.int64),
        "timestamp": np.r_[day + pd.Timedelta(hours=9), day + pd.Timedelta(hours=10)].astype("datetime64[ns]"),
        "amount": np.r_[-amount, amount],
        "category": pd.array(np.r_[cats[pick[:, 0]], cats[pick[:, 1]]], dtype="string"),
    })
    return pd.concat([tx, ex], ignore_index=True)


@pytest.mark.parametrize("seed", range(3))
def test_category_labels_and_features_never_contradict_churn_and_recency(seed):
    tx = with_exchanges(random_log(20 + seed), seed)
    cutoffs = ["2022-03-01", "2022-05-01", "2022-07-01", "2022-09-01", "2022-11-01", "2023-01-01"]
    snaps = build_snapshots(tx, cutoffs, horizon_days=60, windows=(30, 90), active_days=None, categories=("a", "b", "c"))
    assert snaps["churn"].mean() > 0.1
    for k in ("a", "b", "c"):
        bought = snaps[f"propensity_{k}"] == 1
        assert bought.sum() > 10
        assert (snaps.loc[bought, "churn"] == 0).all()
        since = snaps[f"days_since_{k}"]
        seen = since.notna()
        assert seen.sum() > 10 and (since[seen] >= snaps.loc[seen, "recency_days"]).all()
    n_cat = snaps[[f"days_since_{k}" for k in "abc"]].notna().sum(axis=1)
    np.testing.assert_array_equal(snaps["n_categories"], n_cat)
    assert (snaps["n_categories"] <= snaps["frequency"] * 3).all()


def test_hand_population_rule_and_no_categories():
    s = hand_snapshot(active_days=450)  # C's 2023-01-15 is 442 days back
    assert list(s["customer_id"]) == ["A", "B", "C", "D"]
    s = hand_snapshot(active_days=30)  # only purchases on or after 2024-03-02 count: A (03-20) and B
    assert list(s["customer_id"]) == ["A", "B"]
    s = hand_snapshot(active_days=None)
    assert list(s["customer_id"]) == ["A", "B", "C", "D"]
    plain = build_snapshot(HAND.drop(columns="category"), "2024-04-01", **HAND_KW)
    assert label_columns(plain) == ["churn"]
    assert not any(c.startswith(("share_", "days_since_")) for c in plain.columns) and "n_categories" not in plain
    pd.testing.assert_frame_equal(plain, hand_snapshot()[plain.columns])


def test_hand_explicit_categories_and_labels_off():
    s = hand_snapshot(categories=["kitchen", "home"], labels=False).set_index("customer_id")
    assert label_columns(s) == []
    assert [c for c in s.columns if c.startswith("share_")] == ["share_kitchen", "share_home"]
    # garden rows now belong to no listed category: they still count as purchases and spend
    np.testing.assert_allclose(s["share_home"], [30 / 55, 1, 1], rtol=1e-12)
    np.testing.assert_array_equal(s["n_categories"], [2, 1, 0])  # D: garden unlisted, home not bought
    np.testing.assert_array_equal(s["frequency"], [3, 2, 1])


def test_integer_ids_and_missing_category_values():
    tx = HAND.copy()
    tx["customer_id"] = tx["customer_id"].map({k: i for i, k in enumerate("ABCDEF", start=10)}).astype("int64")
    tx.loc[tx.index[2], "category"] = pd.NA  # A's home purchase of 20 on 02-15 loses its category
    s = build_snapshot(tx, "2024-04-01", **HAND_KW)
    assert s["customer_id"].dtype == np.int64 and list(s["customer_id"]) == [10, 11, 13]
    a = s.iloc[0]
    assert a["frequency"] == 3 and a["monetary_total"] == 55  # still a purchase with spend
    assert a["share_home"] == pytest.approx(10 / 35) and a["days_since_home"] == 91


# ------------------------------------------------------------------------------------------- attributes
def test_customer_attributes_join_and_dtypes():
    customers = pd.DataFrame(
        {
            "customer_id": pd.array(["Z", "B", "A"], dtype="str"),  # Z not in the snapshot, D not in the table
            "signup_date": pd.to_datetime(["2020-01-01", "2023-01-01", "2023-12-01"]),
            "age": [50, np.nan, 30],
            "vip": [True, False, True],
            "region": pd.array(["west", None, "north"], dtype="str"),
            "plan": pd.Categorical(["x", "y", "z"]),
        }
    )
    s = hand_snapshot(customers=customers)
    attrs = ["days_since_signup_date", "age", "vip", "region", "plan"]
    assert feature_columns(s)[-5:] == attrs and label_columns(s)[0] == "churn"
    assert s["days_since_signup_date"].dtype == np.float64
    np.testing.assert_array_equal(s["days_since_signup_date"], [122, 456, np.nan])
    assert s["age"].dtype == np.float64 and s["vip"].dtype == np.float64
    np.testing.assert_array_equal(s["age"], [30, np.nan, np.nan])
    np.testing.assert_array_equal(s["vip"], [1, 0, np.nan])
    for col in ("region", "plan"):
        assert isinstance(s[col].dtype, pd.StringDtype)
    assert s["region"].iloc[0] == "north" and s["region"].isna().tolist() == [False, True, True]
    assert s["plan"].tolist()[:2] == ["z", "y"] and s["plan"].isna().iloc[2]
    # an empty attribute table: every value missing, dtypes as above
    empty = hand_snapshot(customers=customers.iloc[:0])
    assert empty[attrs[:3]].isna().all().all() and empty["region"].isna().all()
    assert isinstance(empty["plan"].dtype, pd.StringDtype) and empty["age"].dtype == np.float64
    pd.testing.assert_frame_equal(empty.drop(columns=attrs), s.drop(columns=attrs))


def test_customer_attribute_errors():
    with pytest.raises(SchemaError, match="customer_id"):
        hand_snapshot(customers=pd.DataFrame({"id": ["A"], "age": [3]}))
    with pytest.raises(DataError, match="unique"):
        hand_snapshot(customers=pd.DataFrame({"customer_id": ["A", "A"], "age": [3, 4]}))
    with pytest.raises(SchemaError, match="clashes"):
        hand_snapshot(customers=pd.DataFrame({"customer_id": ["A"], "frequency": [3]}))
    with pytest.raises(SchemaError, match="clashes"):
        hand_snapshot(customers=pd.DataFrame({"customer_id": ["A"], "churn": [1]}))
    with pytest.raises(SchemaError, match="same kind of ids"):
        hand_snapshot(customers=pd.DataFrame({"customer_id": [1, 2], "age": [3, 4]}))


def test_date_attributes_at_or_after_the_cutoff_warn_of_leakage():
    # A: a date after the cutoff; B: exactly at it (days_since 0); C: after, but C is not in the snapshot
    customers = pd.DataFrame({"customer_id": ["A", "B", "C", "D"],
                              "churned_on": pd.to_datetime(["2024-05-03", "2024-04-01", "2024-06-01", None])})
    with pytest.warns(CustvalWarning, match=r"customers\.churned_on: 2 snapshot customers .*cutoff 2024-04-01 "
                                            r"\(e\.g\. customer 'A': 2024-05-03") as rec:
        s = hand_snapshot(customers=customers)
    assert len([w for w in rec if issubclass(w.category, CustvalWarning)]) == 1
    np.testing.assert_array_equal(s["days_since_churned_on"], [-32, 0, np.nan])  # still computed
    with pytest.warns(CustvalWarning, match="customer 'B'"):
        hand_snapshot(customers=customers.assign(churned_on=customers["churned_on"].where(
            customers["customer_id"] != "A")))
    # dates strictly before the cutoff (and a late one for a customer outside the snapshot): no warning
    early = customers.assign(churned_on=pd.to_datetime(["2024-03-31 23:59", "2020-01-01 00:00", "2024-06-01 00:00", None]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hand_snapshot(customers=early)


# ------------------------------------------------------------------------------------------------ errors
def test_no_active_customers_is_a_data_error():
    # nothing at all before the first transaction day (C's 2023-01-15)
    with pytest.raises(DataError, match=r"no active customers at cutoff 2023-01-15.*purchase day in \[cutoff - 365"):
        build_snapshot(HAND, "2023-01-15", **HAND_KW)
    build_snapshot(HAND, "2023-01-16", **HAND_KW)  # C is active the day after
    # [03-26, 03-31): only A's return on 03-25 is near, and a return is no purchase
    with pytest.raises(DataError, match=r"no active customers at cutoff 2024-03-31.*cutoff - 5 days") as info:
        build_snapshot(HAND, "2024-03-31", horizon_days=30, active_days=5)
    assert info.value.column == "customer_id" and info.value.example == "2024-03-31"


def test_labels_beyond_the_data_are_a_data_error():
    # the last transaction is on 2024-06-01, so the default observation end is 2024-06-02 (exclusive)
    build_snapshot(HAND, "2024-05-03", horizon_days=30)  # window ends 06-02: fine
    with pytest.raises(DataError, match="cutoff.*window"):
        build_snapshot(HAND, "2024-05-04", horizon_days=30)
    build_snapshot(HAND, "2024-05-04", horizon_days=30, labels=False)
    build_snapshot(HAND, "2024-05-04", horizon_days=30, observation_end="2024-07-01")
    with pytest.raises(DataError, match="2024-05-01"):
        build_snapshot(HAND, "2024-04-01", horizon_days=31, observation_end="2024-05-01")


def test_bad_inputs():
    with pytest.raises(DataError, match="midnight"):
        build_snapshot(HAND, "2024-04-01 12:00")
    with pytest.raises(DataError, match="cutoff"):
        build_snapshot(HAND, "not a date")
    with pytest.raises(SchemaError, match="timestamp"):
        build_snapshot(HAND.drop(columns="timestamp"), "2024-04-01")
    with pytest.raises(SchemaError, match="timestamp"):
        build_snapshot(HAND.assign(timestamp=HAND["timestamp"].astype(str)), "2024-04-01")
    with pytest.raises(DataError, match="amount"):
        build_snapshot(HAND.assign(amount=np.r_[np.nan, HAND["amount"].to_numpy()[1:]]), "2024-04-01")
    with pytest.raises(SchemaError, match="category"):
        build_snapshot(HAND.drop(columns="category"), "2024-04-01", categories=["home"])
    for bad in ({"windows": (30, 30)}, {"windows": (0,)}, {"horizon_days": 0}, {"active_days": 2.5},
                {"categories": "home"}):
        with pytest.raises(ConfigError):
            build_snapshot(HAND, "2024-04-01", **{**HAND_KW, **bad})
    with pytest.raises(ConfigError):
        build_snapshots(HAND, [])
    with pytest.raises(ConfigError, match="distinct"):
        build_snapshots(HAND, ["2024-04-01", "2024-04-01"])
    with pytest.raises(ConfigError, match="unknown"):
        build_snapshots(HAND, ["2024-04-01"], horizon=30)


# ---------------------------------------------------------------------------------- independent oracle
def _is_purchase(amounts) -> bool:
    has_sale = any(a >= 0 for a in amounts)
    has_return = any(a < 0 for a in amounts)
    return has_sale and (not has_return or sum(amounts) > 1e-9 * sum(abs(a) for a in amounts))


def oracle_snapshot(tx, cutoff, *, horizon_days, windows, active_days, categories, new_only=False):
    """Straightforward per-customer Python loops over the definitions in the module docstring."""
    c = pd.Timestamp(cutoff)
    end = c + pd.Timedelta(days=horizon_days)
    out = []
    for cid, g in tx.groupby("customer_id", sort=True):
        by_day: dict = {}
        for ts, amount, cat in zip(g["timestamp"], g["amount"], g["category"], strict=True):
            by_day.setdefault(ts.normalize(), []).append((float(amount), None if pd.isna(cat) else str(cat)))
        pdays = sorted(d for d, rows in by_day.items() if d < c and _is_purchase([a for a, _ in rows]))
        if not any(active_days is None or d >= c - pd.Timedelta(days=active_days) for d in pdays):
            continue
        row = {"customer_id": cid}
        age = [(c - d).days for d in pdays]
        row["recency_days"] = age[-1]
        row["tenure_days"] = age[0]
        row["frequency"] = len(pdays)
        total = sum(a for d, rows in by_day.items() if d < c for a, _ in rows)
        row["monetary_total"] = total
        row["monetary_mean"] = total / len(pdays)
        cnt, spd = {}, {}
        for w in windows:
            cnt[w] = sum(1 for x in age if x <= w)
            spd[w] = sum(a for d, rows in by_day.items() if d < c and (c - d).days <= w for a, _ in rows)
            row[f"n_purchases_{w}d"], row[f"spend_{w}d"] = cnt[w], spd[w]
        for w1, w2 in zip(windows[:-1], windows[1:], strict=True):
            for name, v in (("purchases", cnt), ("spend", spd)):
                recent, prior = v[w1] / w1, (v[w2] - v[w1]) / (w2 - w1)
                den = abs(recent) + abs(prior)
                row[f"trend_{name}_{w1}_{w2}"] = 0.0 if den == 0 else (recent - prior) / den
        gaps = [(b - a).days for a, b in zip(pdays[:-1], pdays[1:], strict=True)]
        if gaps:
            row["ipt_mean_days"] = sum(gaps) / len(gaps)
            row["ipt_std_days"] = float(np.std(gaps))
            row["ipt_last_days"] = gaps[-1]
            row["recency_ratio"] = age[-1] / row["ipt_mean_days"]
        else:
            row.update(ipt_mean_days=np.nan, ipt_std_days=np.nan, ipt_last_days=np.nan, recency_ratio=np.nan)
        cat_spend = {k: 0.0 for k in categories}
        cat_last, cat_future = {}, set()
        for d, rows in by_day.items():
            day_ok = _is_purchase([a for a, _ in rows])
            for k in categories:
                amounts = [a for a, cat in rows if cat == k]
                if not amounts:
                    continue
                bought = day_ok and _is_purchase(amounts)  # k bought: a purchase day AND k's rows pass
                if d < c:
                    cat_spend[k] += sum(amounts)
                    if bought:
                        cat_last[k] = max(cat_last.get(k, d), d)
                elif d < end and bought:
                    cat_future.add(k)
        pos = {k: max(v, 0.0) for k, v in cat_spend.items()}
        den = sum(pos.values())
        for k in categories:
            row[f"share_{k}"] = pos[k] / den if den > 0 else 0.0
        for k in categories:
            row[f"days_since_{k}"] = (c - cat_last[k]).days if k in cat_last else np.nan
        if categories:
            row["n_categories"] = len(cat_last)
        future = [d for d, rows in by_day.items() if c <= d < end and _is_purchase([a for a, _ in rows])]
        row["churn"] = int(not future)
        for k in categories:
            row[f"propensity_{k}"] = np.nan if new_only and k in cat_last else float(k in cat_future)
        out.append(row)
    return pd.DataFrame(out)


def random_log(seed: int, n_customers=40, n_rows=700, days=500, cats=("a", "b", "c")) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cust = rng.integers(0, n_customers, n_rows)
    day = rng.integers(0, days, n_rows)
    # customers have few distinct days: concentrate rows on a handful of days per customer
    day = np.where(rng.random(n_rows) < 0.4, (cust * 37) % days, day)
    amount = np.round(rng.gamma(2.0, 20.0, n_rows), 2)
    amount = np.where(rng.random(n_rows) < 0.15, -np.round(rng.uniform(0, 60, n_rows), 2), amount)
    amount = np.where(rng.random(n_rows) < 0.03, 0.0, amount)
    cat = np.array(cats, dtype=object)[rng.integers(0, len(cats), n_rows)]
    cat = np.where(rng.random(n_rows) < 0.05, None, cat)
    ts = pd.Timestamp("2022-01-01") + pd.to_timedelta(day, "D") + pd.to_timedelta(rng.integers(0, 86400, n_rows), "s")
    return pd.DataFrame({"customer_id": cust.astype(np.int64), "timestamp": ts.astype("datetime64[ns]"),
                         "amount": amount, "category": pd.array(cat, dtype="string")})


@pytest.mark.parametrize("seed", range(4))
def test_matches_the_slow_oracle_on_random_logs(seed):
    tx = with_exchanges(random_log(seed), seed)
    cats = ("a", "b", "c")
    rng = np.random.default_rng(100 + seed)
    cutoff = pd.Timestamp("2022-01-01") + pd.Timedelta(days=int(rng.integers(150, 400)))
    kw = dict(horizon_days=int(rng.integers(20, 90)), windows=(30, 90, 180), active_days=int(rng.integers(60, 400)))
    for new_only in (False, True):
        got = build_snapshot(tx, cutoff, categories=cats, cross_sell_new_only=new_only, **kw)
        want = oracle_snapshot(tx, cutoff, categories=cats, new_only=new_only, **kw)
        assert len(got) > 5
        assert list(got.columns) == ["customer_id", "cutoff", *want.columns[1:]]
        want = want.astype({c: float for c in want.columns[1:]}).astype({"churn": np.int8})
        pd.testing.assert_frame_equal(got.drop(columns="cutoff"), want, check_exact=False, rtol=1e-9, atol=1e-9)


def test_stacked_snapshots_equal_single_ones():
    tx = random_log(7)
    cutoffs = ["2022-09-01", "2022-06-03", "2022-12-01"]
    stacked = build_snapshots(tx, cutoffs, horizon_days=60, windows=(30, 90))
    assert isinstance(stacked.index, pd.RangeIndex)
    assert list(pd.unique(stacked["cutoff"])) == sorted(pd.Timestamp(c) for c in cutoffs)
    singles = pd.concat([build_snapshot(tx, c, horizon_days=60, windows=(30, 90)) for c in sorted(cutoffs)],
                        ignore_index=True)
    pd.testing.assert_frame_equal(stacked, singles)


def test_frequency_recency_and_tenure_agree_with_rfm_summary():
    """On a validated (no returns) log every customer-day is a purchase: rfm_summary's frequency = ours - 1,
    its daily T = tenure - 1 (it ends on the day before the cutoff) and recency = tenure - recency_days."""
    sim = simulate_retail(3000, seed=3, return_rate=0.0, start="2022-01-01", end="2023-06-01")
    tx = sim.transactions
    cutoff = pd.Timestamp("2023-01-01")
    snap = build_snapshot(tx, cutoff, active_days=None).set_index("customer_id")
    rfm = rfm_summary(tx, cutoff - pd.Timedelta(days=1), "D")
    assert snap.index.equals(rfm.index)
    np.testing.assert_array_equal(snap["frequency"] - 1, rfm["frequency"])
    np.testing.assert_array_equal(snap["tenure_days"] - 1, rfm["T"])
    np.testing.assert_array_equal(snap["tenure_days"] - snap["recency_days"], rfm["recency"])


def test_labels_against_a_direct_computation_on_simulated_data():
    sim = simulate_retail(4000, seed=5, start="2022-01-01", end="2023-06-01")
    tx = sim.transactions
    cutoff, h = pd.Timestamp("2023-02-01"), 90
    snap = build_snapshot(tx, cutoff, horizon_days=h, windows=(30, 90)).set_index("customer_id")
    day = tx["timestamp"].dt.normalize()
    inside = tx[(day >= cutoff) & (day < cutoff + pd.Timedelta(days=h))]
    # simulated returns always fall on a later day than their order, so a positive row makes a purchase day
    buyers = set(inside.loc[inside["amount"] >= 0, "customer_id"])
    np.testing.assert_array_equal(snap["churn"].to_numpy(), [0 if c in buyers else 1 for c in snap.index])
    assert 0.05 < snap["churn"].mean() < 0.95
    for cat in sim.transactions["category"].unique():
        cat_buyers = set(inside.loc[(inside["amount"] >= 0) & (inside["category"] == cat), "customer_id"])
        want = np.array([float(c in cat_buyers) for c in snap.index])
        np.testing.assert_array_equal(snap[f"propensity_{cat}"].to_numpy(), want)


# ---------------------------------------------------------------------------------------------- leakage
_CATS = ("a", "b", "c")
_BASE = pd.Timestamp("2023-01-01")


@st.composite
def logs_and_edits(draw):
    n = draw(st.integers(1, 25))
    rows = draw(st.lists(
        st.tuples(st.integers(0, 5), st.integers(0, 120), st.sampled_from([0, 1, 13 * 3600, 86399]),
                  st.sampled_from([-25.5, -3.0, 0.0, 0.1, 7.25, 19.99, 120.0, 1e4 / 3]),
                  st.sampled_from([*_CATS, None])),
        min_size=n, max_size=n))
    cut = draw(st.integers(1, 121))
    edits = draw(st.lists(st.tuples(st.sampled_from(["amount", "category", "move", "drop"]), st.integers(0, 10**6),
                                    st.integers(0, 60), st.floats(-50, 500, allow_nan=False),
                                    st.sampled_from([*_CATS, None])), max_size=6))
    added = draw(st.lists(
        st.tuples(st.integers(0, 8), st.integers(0, 60), st.sampled_from([0, 5, 86399]),
                  st.floats(-50, 500, allow_nan=False), st.sampled_from([*_CATS, None])), max_size=4))
    return rows, cut, edits, added


def _frame(rows) -> pd.DataFrame:
    return pd.DataFrame({
        "customer_id": np.array([r[0] for r in rows], dtype=np.int64),
        "timestamp": pd.DatetimeIndex([_BASE + pd.Timedelta(days=r[1], seconds=r[2]) for r in rows]).astype(
            "datetime64[ns]"),
        "amount": np.array([r[3] for r in rows], dtype=float),
        "category": pd.array([r[4] for r in rows], dtype="string"),
    })


def _features(tx, cutoff, **kw):
    try:
        snap = build_snapshot(tx, cutoff, labels=False, categories=_CATS, windows=(7, 30, 90), active_days=60, **kw)
    except DataError as exc:
        return str(exc)
    return snap[["customer_id", *feature_columns(snap)]]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(logs_and_edits())
def test_rows_at_or_after_the_cutoff_never_change_features(case):
    rows, cut, edits, added = case
    cutoff = _BASE + pd.Timedelta(days=cut)
    base = _frame(rows)
    changed = [list(r) for r in rows]
    after = [i for i, r in enumerate(rows) if _BASE + pd.Timedelta(days=r[1], seconds=r[2]) >= cutoff]
    drop = set()
    for kind, pick, days, amount, cat in edits:
        if not after:
            break
        i = after[pick % len(after)]
        if kind == "amount":
            changed[i][3] = amount
        elif kind == "category":
            changed[i][4] = cat
        elif kind == "move":  # anywhere at or after the cutoff, including exactly at midnight
            changed[i][1], changed[i][2] = cut + days, 0
        else:
            drop.add(i)
    changed = [r for i, r in enumerate(changed) if i not in drop]
    changed += [[cid, cut + d, s, a, cat] for cid, d, s, a, cat in added]
    if not changed:
        return
    got, want = _features(_frame(changed), cutoff), _features(base, cutoff)
    if isinstance(want, str):
        assert got == want
    else:
        pd.testing.assert_frame_equal(got, want, check_exact=True)


def test_labels_do_see_the_rows_after_the_cutoff():
    """The counterpart of the property: removing the label-window rows flips the labels, not the features."""
    cut = build_snapshot(HAND[HAND["timestamp"] < CUT], "2024-04-01", observation_end="2024-06-01", **HAND_KW)
    full = hand_snapshot()
    pd.testing.assert_frame_equal(cut[feature_columns(cut)], full[feature_columns(full)], check_exact=True)
    assert cut["churn"].tolist() == [1, 1, 1] and full["churn"].tolist() == [0, 1, 0]


# ------------------------------------------------------------------------------------------ CLV features
@pytest.fixture(scope="module")
def clv_log():
    sim = simulate_retail(3000, seed=11, start="2022-01-01", end="2023-07-01")
    return sim.transactions


def test_clv_features_use_only_pre_cutoff_data_and_match_lifetimes(clv_log):
    from lifetimes import BetaGeoFitter
    from lifetimes.utils import summary_data_from_transaction_data

    from custval.models.clv.features import CLVFeatures

    tx = clv_log
    cutoff, h = pd.Timestamp("2023-03-01"), 90
    snap = build_snapshot(tx, cutoff, horizon_days=h, extra_features=CLVFeatures(h))
    assert feature_columns(snap)[-2:] == ["p_alive", "expected_purchases_90d"]
    # the same snapshot after scrambling every row at or after the cutoff
    later = tx["timestamp"] >= cutoff
    other = tx.copy()
    other.loc[later, "amount"] = other.loc[later, "amount"] * 3 + 1
    extra = other[later].assign(customer_id=other.loc[later, "customer_id"] + 10**6)  # new customers too
    other = pd.concat([other, extra, other[later].assign(timestamp=other.loc[later, "timestamp"]
                                                          + pd.Timedelta(days=1))], ignore_index=True)
    snap2 = build_snapshot(other, cutoff, horizon_days=h, extra_features=CLVFeatures(h))
    assert len(snap2) == len(snap)
    for col in ("p_alive", "expected_purchases_90d"):
        np.testing.assert_array_equal(snap2[col].to_numpy(), snap[col].to_numpy())

    # the reference: lifetimes fitted on the pre-cutoff log alone (weeks = days / 7, last day = cutoff - 1)
    before = tx[tx["timestamp"] < cutoff]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summ = summary_data_from_transaction_data(before, "customer_id", "timestamp",
                                                  observation_period_end=cutoff - pd.Timedelta(days=1),
                                                  freq="D", freq_multiplier=7)
        bgf = BetaGeoFitter().fit(summ["frequency"], summ["recency"], summ["T"])
    s = summ.loc[snap["customer_id"]]
    want_alive = bgf.conditional_probability_alive(s["frequency"], s["recency"], s["T"])
    want_exp = bgf.conditional_expected_number_of_purchases_up_to_time(h / 7, s["frequency"], s["recency"], s["T"])
    np.testing.assert_allclose(snap["p_alive"], want_alive, rtol=1e-4)
    np.testing.assert_allclose(snap["expected_purchases_90d"], want_exp, rtol=1e-4)


# -------------------------------------------------------------------------------------- schedule / split
def test_cutoff_schedule():
    got = cutoff_schedule("2025-01-01", n_cutoffs=3, every_days=30, horizon_days=90)
    # 2025-01-01 - 90 days = 2024-10-03; then 30 and 60 days earlier
    assert got == [pd.Timestamp("2024-08-04"), pd.Timestamp("2024-09-03"), pd.Timestamp("2024-10-03")]
    # a non-midnight end: the latest cutoff is floored so its window still ends by observation_end
    assert cutoff_schedule("2025-01-01 12:00", n_cutoffs=1, every_days=7, horizon_days=90) == [
        pd.Timestamp("2024-10-03")]
    for bad in ({"n_cutoffs": 0}, {"every_days": 0}, {"horizon_days": -1}, {"n_cutoffs": 1.5}):
        with pytest.raises(ConfigError):
            cutoff_schedule("2025-01-01", **{"n_cutoffs": 2, "every_days": 7, "horizon_days": 30, **bad})


def _stack(cutoffs) -> pd.DataFrame:
    cs = pd.to_datetime(cutoffs)
    return pd.DataFrame({"customer_id": np.tile([1, 2], len(cs)), "cutoff": np.repeat(cs.to_numpy(), 2),
                         "x": np.arange(2 * len(cs), dtype=float)})


def _cut_dates(frame) -> list[str]:
    return [str(pd.Timestamp(d).date()) for d in pd.unique(frame["cutoff"])]


def test_time_split_gap_rule():
    monthly = [f"2024-{m:02d}-01" for m in range(1, 13)]
    snaps = _stack(monthly)
    split = time_split(snaps, horizon_days=60)
    assert isinstance(split, TimeSplit)
    assert _cut_dates(split.test) == ["2024-12-01"]
    # valid: the last cutoff whose 60-day window ends by 12-01 is 10-01 (11-01 + 60 days > 12-01: dropped)
    assert _cut_dates(split.valid) == ["2024-10-01"]
    # train: c + 60 days <= 10-01 -> up to 08-01 (08-01 + 61 days = 10-01)
    assert _cut_dates(split.train) == monthly[:8]
    assert len(split.train) == 16 and isinstance(split.train.index, pd.RangeIndex)
    split = time_split(snaps, horizon_days=30, n_valid=2, n_test=2)
    assert _cut_dates(split.test) == ["2024-11-01", "2024-12-01"]
    assert _cut_dates(split.valid) == ["2024-09-01", "2024-10-01"]  # 10-01 + 30 days = 10-31 <= 11-01
    assert _cut_dates(split.train) == monthly[:8]  # 08-01 + 30 <= 09-01
    every_c = pd.concat([split.train, split.valid, split.test])["cutoff"]
    assert every_c.is_monotonic_increasing


def test_time_split_on_real_snapshots_and_errors():
    tx = random_log(3, days=700)
    cutoffs = cutoff_schedule(tx["timestamp"].max().normalize() + pd.Timedelta(days=1), n_cutoffs=5, every_days=60,
                              horizon_days=60)
    snaps = build_snapshots(tx, cutoffs, horizon_days=60, windows=(30, 90))
    split = time_split(snaps, horizon_days=60)
    assert len(split.train) + len(split.valid) + len(split.test) == len(snaps)
    assert split.train["cutoff"].max() + pd.Timedelta(days=60) <= split.valid["cutoff"].min()
    with pytest.raises(DataError, match="no validation cutoff"):
        time_split(_stack(["2024-01-01", "2024-02-01"]), horizon_days=60)
    with pytest.raises(DataError, match="no training cutoff"):
        time_split(_stack(["2024-01-01", "2024-03-01", "2024-05-01"]), horizon_days=90, n_valid=1)
    with pytest.raises(DataError, match="more than n_test"):
        time_split(_stack(["2024-01-01"]), horizon_days=10)
    with pytest.raises(SchemaError, match="cutoff"):
        time_split(_stack(["2024-01-01"]).drop(columns="cutoff"), horizon_days=10)
    with pytest.raises(ConfigError):
        time_split(snaps, horizon_days=60, n_valid=0)


def test_extra_features_see_only_rows_before_the_cutoff_and_are_aligned(clv_log):
    cutoff = pd.Timestamp("2023-03-01")
    seen = {}

    def spend_before(transactions, at):
        seen["max"], seen["at"] = transactions["timestamp"].max(), at
        ids = transactions["customer_id"].unique()[:10]  # covers only some customers: the rest get NaN
        return pd.DataFrame({"first_ten": np.arange(10.0)}, index=pd.Index(ids, name="customer_id"))

    snap = build_snapshot(clv_log, cutoff, extra_features=spend_before)
    assert seen["max"] < cutoff and seen["at"] == cutoff
    covered = snap["first_ten"].notna()
    assert 0 < covered.sum() <= 10 and snap["first_ten"].isna().sum() == len(snap) - covered.sum()
    with pytest.raises(ConfigError, match="clash"):
        build_snapshot(clv_log, cutoff, extra_features=lambda t, c: pd.DataFrame({"recency_days": [1.0]}))
    with pytest.raises(ConfigError, match="DataFrame"):
        build_snapshot(clv_log, cutoff, extra_features=lambda t, c: [1.0])


def test_extra_features_on_a_tz_aware_log_use_the_wall_clock_day_rule():
    tz = HAND.assign(timestamp=HAND["timestamp"].dt.tz_localize("Europe/Paris"))
    seen = {}

    def n_rows(transactions, at):
        seen["rows"] = transactions
        return transactions.groupby("customer_id").size().astype(float).to_frame("n_rows")

    s = build_snapshot(tz, "2024-04-01", extra_features=n_rows, **HAND_KW)
    # A's row at 2024-04-01 00:00 Paris (2024-03-31 22:00 UTC) is on the cutoff day: not before it
    rows = seen["rows"]
    assert rows["timestamp"].dt.tz is not None
    want = HAND[HAND["timestamp"] < CUT]
    assert sorted(rows.index) == sorted(want.index)
    np.testing.assert_array_equal(s["n_rows"], [5, 2, 3])  # A, B, D rows before 04-01
    naive = build_snapshot(HAND, "2024-04-01", extra_features=n_rows, **HAND_KW)
    pd.testing.assert_frame_equal(s, naive)


def test_extra_features_index_must_be_unique_and_of_the_transactions_id_kind():
    def dup(transactions, at):
        return pd.DataFrame({"x": [1.0, 2.0]}, index=pd.Index(["A", "A"], name="customer_id"))

    with pytest.raises(DataError, match="unique") as info:
        hand_snapshot(extra_features=dup)
    assert (info.value.table, info.value.column, info.value.example) == ("extra_features", "customer_id", "A")
    # HAND's ids are text: integer ids would all miss (silently NaN) -> an error naming the kind
    with pytest.raises(DataError, match="same kind of ids") as info:
        hand_snapshot(extra_features=lambda t, c: pd.DataFrame({"x": [1.0]}, index=[7]))
    assert info.value.column == "customer_id" and info.value.example == 7
    ints = HAND.assign(customer_id=HAND["customer_id"].map({k: i for i, k in enumerate("ABCDEF")}).astype("int64"))
    with pytest.raises(DataError, match="same kind of ids"):
        build_snapshot(ints, "2024-04-01", extra_features=lambda t, c: pd.DataFrame({"x": [1.0, 2.0]}, index=["0", "1"]),
                       **HAND_KW)
    # matching kinds align by id (object-dtype integers too); an empty table gives NaN everywhere
    got = build_snapshot(ints, "2024-04-01", extra_features=lambda t, c: pd.DataFrame(
        {"x": [1.0, 2.0]}, index=pd.Index([3, 0], dtype=object)), **HAND_KW)
    np.testing.assert_array_equal(got["x"], [2.0, np.nan, 1.0])
    empty = hand_snapshot(extra_features=lambda t, c: pd.DataFrame({"x": []}, dtype=float))
    assert empty["x"].isna().all()


# ----------------------------------------------------------------------------------- history coverage
# A log whose first day is 2024-01-01; cutoff 2024-04-01 is 91 days later: the 30- and 90-day windows
# ([03-02, 04-01) and [2024-01-02, 04-01)) lie inside the history, the 180-day one starts 2023-10-04, before it.
SHORT = tx_frame([
    ("A", "2024-01-01", 10, "home"),  # the first day of the log: outside the 90-day window, inside the history
    ("A", "2024-02-15", 20, "home"),
    ("A", "2024-03-20", 30, "home"),
    ("B", "2024-03-31", 8, "home"),
    ("F", "2024-06-01", 1, "home"),
])
SHORT_KW = dict(horizon_days=30, windows=(30, 90, 180), labels=False)


def test_windows_reaching_before_the_history_are_missing_not_zero():
    s = build_snapshot(SHORT, "2024-04-01", **SHORT_KW).set_index("customer_id")
    np.testing.assert_array_equal(s["n_purchases_30d"], [1, 1])
    np.testing.assert_array_equal(s["n_purchases_90d"], [2, 1])  # A's 01-01 is 91 days back
    np.testing.assert_array_equal(s["spend_90d"], [50, 8])
    for col in ("n_purchases_180d", "spend_180d", "trend_purchases_90_180", "trend_spend_90_180"):
        assert s[col].isna().all() and s[col].dtype == np.float64, col
    # trend 30 -> 90 is covered: A 1/30 recent vs 1/60 prior -> 1/3; B only recent -> 1
    np.testing.assert_allclose(s["trend_purchases_30_90"], [1 / 3, 1], rtol=1e-12)
    # totals and tenure are not windows: they use what the log has
    np.testing.assert_array_equal(s["frequency"], [3, 1])
    np.testing.assert_array_equal(s["tenure_days"], [91, 1])
    # a history known to start earlier covers the 180-day window: A's three purchases, B's one
    earlier = build_snapshot(SHORT, "2024-04-01", history_start="2023-10-04", **SHORT_KW).set_index("customer_id")
    np.testing.assert_array_equal(earlier["n_purchases_180d"], [3, 1])
    np.testing.assert_array_equal(earlier["spend_180d"], [60, 8])
    # prior window [c - 180, c - 90) holds A's 01-01 only: recent 2/90, prior 1/90 -> (2 - 1) / 3
    np.testing.assert_allclose(earlier["trend_purchases_90_180"], [1 / 3, 1], rtol=1e-12)
    # one day later start: the 180-day window is uncovered again; a start after 01-02 uncovers 90 days too
    assert build_snapshot(SHORT, "2024-04-01", history_start="2023-10-05", **SHORT_KW)["spend_180d"].isna().all()
    late = build_snapshot(SHORT, "2024-04-01", history_start="2024-01-03", **SHORT_KW)
    assert late["spend_90d"].isna().all() and late["spend_30d"].notna().all()
    assert late["frequency"].tolist() == [3, 1]  # rows before the start still count in the totals


def test_covered_windows_are_bit_identical_to_a_full_history_and_uncovered_ones_all_missing():
    """On the simulated 2-year demo log: every covered window's columns equal those of a history assumed
    complete from long before (the rule off), to the bit; uncovered ones are NaN in every row."""
    from custval.data.simulate_churn import simulate_churn

    sim = simulate_churn(3000, seed=2, start="2023-01-01", end="2025-01-01")
    tx = sim.transactions
    for cutoff in ("2023-07-11", "2023-10-09", "2024-04-06"):
        new = build_snapshot(tx, cutoff, customers=sim.customers)
        full = build_snapshot(tx, cutoff, customers=sim.customers, history_start="1900-01-01")
        days = (pd.Timestamp(cutoff) - pd.Timestamp("2023-01-01")).days
        uncovered = {f"{kind}_{w}d" for w in WINDOWS if w > days for kind in ("n_purchases", "spend")}
        uncovered |= {f"trend_{kind}_{w1}_{w2}" for w1, w2 in zip(WINDOWS[:-1], WINDOWS[1:], strict=True)
                      if w2 > days for kind in ("purchases", "spend")}
        assert (days > 365) == (not uncovered)
        assert list(new.columns) == list(full.columns)
        same = [c for c in new.columns if c not in uncovered]
        pd.testing.assert_frame_equal(new[same], full[same], check_exact=True)
        for col in uncovered:
            assert new[col].isna().all() and full[col].notna().all(), col


@pytest.mark.parametrize("seed", range(3))
def test_coverage_rule_against_the_slow_oracle_near_the_start_of_the_log(seed):
    tx = with_exchanges(random_log(seed), seed)
    first = tx["timestamp"].min().normalize()
    cats = ("a", "b", "c")
    windows = (30, 90, 180)
    for offset in (40, 120, 200):
        cutoff = first + pd.Timedelta(days=offset)
        got = build_snapshot(tx, cutoff, categories=cats, horizon_days=30, windows=windows, active_days=None)
        want = oracle_snapshot(tx, cutoff, horizon_days=30, windows=windows, active_days=None, categories=cats)
        want = want.astype({c: float for c in want.columns[1:]}).astype({"churn": np.int8})
        for w in windows:  # the rule, applied to the oracle: [c - w, c) must start on or after the first day
            if cutoff - pd.Timedelta(days=w) < first:
                want[[f"n_purchases_{w}d", f"spend_{w}d"]] = np.nan
        for w1, w2 in zip(windows[:-1], windows[1:], strict=True):
            if cutoff - pd.Timedelta(days=w2) < first:
                want[[f"trend_purchases_{w1}_{w2}", f"trend_spend_{w1}_{w2}"]] = np.nan
        pd.testing.assert_frame_equal(got.drop(columns="cutoff"), want, check_exact=False, rtol=1e-9, atol=1e-9)


def test_history_start_of_a_log_and_bad_values():
    assert history_start(SHORT) == pd.Timestamp("2024-01-01")
    # tz-aware: the wall-clock day, as for every other day rule (23:30 in New York is the 1st there)
    aware = SHORT.assign(timestamp=pd.DatetimeIndex(SHORT["timestamp"]).tz_localize("America/New_York")
                         + pd.Timedelta(hours=23, minutes=30))
    assert history_start(aware) == pd.Timestamp("2024-01-01")
    with pytest.raises(SchemaError, match="timestamp"):
        history_start(SHORT.drop(columns="timestamp"))
    with pytest.raises(DataError, match="history_start"):
        build_snapshot(SHORT, "2024-04-01", history_start="not a date", **SHORT_KW)
    with pytest.raises(ConfigError, match="unknown"):
        build_snapshots(SHORT, ["2024-04-01"], history_begin="2024-01-01")


def test_auto_cutoffs_take_what_the_history_allows():
    # a one-year log (2010-12-01 .. 2011-12-09, as the online-retail export): 2011-12-10 - 90 days = 2011-09-11,
    # then 06-13 (194 days after the start) and 03-15 (104); 2010-12-15 has 14 days (< 90) and is left out
    kw = dict(n_cutoffs="auto", every_days=90, horizon_days=90, history_start="2010-12-01")
    assert cutoff_schedule("2011-12-10", **kw) == [pd.Timestamp(d) for d in ("2011-03-15", "2011-06-13",
                                                                            "2011-09-11")]
    assert cutoff_schedule("2011-12-10", **{**kw, "min_history_days": 14})[0] == pd.Timestamp("2010-12-15")
    assert cutoff_schedule("2011-12-10", **{**kw, "min_history_days": 105}) == [pd.Timestamp("2011-06-13"),
                                                                               pd.Timestamp("2011-09-11")]
    # the 2-year demo: the six latest of seven possible (2023-04-12 has 101 days), as the old default of 6
    demo = dict(kw, history_start="2023-01-01")
    six = cutoff_schedule("2025-01-01", **demo)
    assert six == cutoff_schedule("2025-01-01", n_cutoffs=6, every_days=90, horizon_days=90)
    assert six[0] == pd.Timestamp("2023-07-11")
    seven = cutoff_schedule("2025-01-01", **{**demo, "max_cutoffs": 10})
    assert seven == [pd.Timestamp("2023-04-12"), *six]  # 2023-01-12 has 11 days
    assert cutoff_schedule("2025-01-01", **{**demo, "max_cutoffs": 2}) == six[-2:]
    with pytest.raises(DataError, match="min_history_days=400"):
        cutoff_schedule("2011-12-10", **{**kw, "min_history_days": 400})
    with pytest.raises(ConfigError, match="history_start"):
        cutoff_schedule("2011-12-10", **{**kw, "history_start": None})
    for bad in ({"min_history_days": 0}, {"max_cutoffs": 1.5}, {"n_cutoffs": "many"}):
        with pytest.raises(ConfigError):
            cutoff_schedule("2011-12-10", **{**kw, **bad})


def test_split_cutoffs_are_the_parts_of_time_split():
    monthly = [pd.Timestamp(f"2024-{m:02d}-01") for m in range(1, 13)]
    split = time_split(_stack(monthly), horizon_days=60)
    train, valid, test = split_cutoffs(monthly[::-1], horizon_days=60)  # any order
    assert (train, valid, test) == tuple([pd.Timestamp(d) for d in pd.unique(part["cutoff"])]
                                         for part in (split.train, split.valid, split.test))
    with pytest.raises(DataError, match="no training cutoff"):
        split_cutoffs(monthly[-3:], horizon_days=45)  # valid 10-01 (+45 <= 12-01), nothing 45 days before it
