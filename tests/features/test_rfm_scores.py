"""RFM scoring (quantile scores, cells, RFM from transactions, per-period RFM and migration), checked against
small examples worked by hand and lifetimes."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import lifetimes
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lifetimes.utils import summary_data_from_transaction_data

from custval.data.schemas import check_cutoff
from custval.errors import ConfigError, DataError, SchemaError
from custval.features import rfm_scores as rs


# ------------------------------------------------------------------------------------------ quantile scores
def test_quintiles_without_ties_are_equal_sized_and_oriented():
    x = np.arange(10.0)
    assert rs.quantile_scores(x).tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    # lower is better (recency): the smallest value scores 5
    assert rs.quantile_scores(x, higher_is_better=False).tolist() == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(-3, 3), min_size=1, max_size=40), st.integers(2, 9))
def test_levels_reached_equals_counting_every_smaller_element(values, bins):
    """Oracle: b = how many elements are strictly smaller, counted pair by pair; score = 1 + floor(bins b / n)."""
    x = np.asarray(values, dtype=float) / 2
    below = (x[None, :] < x[:, None]).sum(axis=1)
    assert rs.levels_reached(x, rs.quantile_cuts(x.size, bins)).tolist() == (bins * below // x.size).tolist()
    counts = [0, 1, 1, x.size - 1, x.size, x.size + 3, -2]  # repeated, out-of-range and boundary counts
    assert rs.levels_reached(x, counts).tolist() == [int(sum(b >= c for c in counts)) for b in below]


def test_shared_ties_take_the_lowest_score_of_their_block():
    # six customers at 0 (60% of 10): nobody is strictly below them -> score 1.
    # value 1: 6 strictly below -> 1 + floor(5*6/10) = 4; 2: 7 -> 4; 3: 8 -> 5; 4: 9 -> 5.
    x = [0, 0, 0, 0, 0, 0, 1, 2, 3, 4]
    assert rs.quantile_scores(x).tolist() == [1, 1, 1, 1, 1, 1, 4, 4, 5, 5]


def test_shared_ties_best_block_is_scored_by_the_customers_it_beats():
    # recency in days, lower is better: 4 customers bought on the last day (0 days).
    # oriented value -days; the 0-day block beats 6 of 10 -> 1 + floor(30/10) = 4 (no 5 is given).
    days = [0, 0, 0, 0, 10, 20, 30, 40, 50, 60]
    assert rs.quantile_scores(days, higher_is_better=False).tolist() == [4, 4, 4, 4, 3, 3, 2, 2, 1, 1]


def test_first_ties_break_by_customer_id_and_give_equal_quintiles():
    x = [0, 0, 0, 1, 1, 2, 3, 3, 4, 5]
    ids = ["j", "i", "h", "g", "f", "e", "d", "c", "b", "a"]
    # sorted by (value, id): h,i,j | f,g | e | c,d | b | a -> positions 0..9, score = 1 + floor(5*pos/10)
    # h0->1 i1->1 j2->2 f3->2 g4->3 e5->3 c6->4 d7->4 b8->5 a9->5
    expected = {"h": 1, "i": 1, "j": 2, "f": 2, "g": 3, "e": 3, "c": 4, "d": 4, "b": 5, "a": 5}
    got = rs.quantile_scores(x, ties="first", order=ids)
    assert dict(zip(ids, got.tolist(), strict=True)) == expected
    assert np.bincount(got).tolist() == [0, 2, 2, 2, 2, 2]


def test_first_rule_matches_pandas_qcut_of_first_ranks():
    # independent oracle: the common recipe qcut(rank(method="first"), 5) on n divisible by 5
    rng = np.random.default_rng(1)
    x = rng.integers(0, 6, size=200).astype(float)  # heavy ties
    oracle = pd.qcut(pd.Series(x).rank(method="first"), 5, labels=False).to_numpy() + 1
    got = rs.quantile_scores(x, ties="first")  # default secondary order = input order, as rank('first')
    assert got.tolist() == oracle.tolist()


def test_shared_rule_by_brute_force_definition():
    # score k <=> share of customers strictly worse is in [(k-1)/5, k/5)
    rng = np.random.default_rng(2)
    x = rng.poisson(1.0, size=137).astype(float)
    scores = rs.quantile_scores(x)
    share_below = (x[None, :] < x[:, None]).sum(axis=1) / x.size
    assert np.all(share_below >= (scores - 1) / 5)
    assert np.all(share_below < scores / 5)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(0, 8), min_size=2, max_size=60).filter(lambda v: len(set(v)) > 1),
       st.randoms(use_true_random=False))
def test_shared_scores_are_a_monotone_function_of_value_independent_of_order(values, rnd):
    x = np.array(values, dtype=float)
    brute = 1 + (5 * (x[None, :] < x[:, None]).sum(axis=1)) // x.size
    if len(set(brute)) == 1:  # one huge tie block: everyone in one quintile is refused
        with pytest.raises(DataError, match="too little variation"):
            rs.quantile_scores(x)
        return
    scores = rs.quantile_scores(x)
    assert scores.tolist() == brute.tolist()
    assert scores.min() == 1 and scores.max() <= 5
    # same value -> same score; larger value -> score not lower
    order = np.argsort(x, kind="stable")
    assert np.all(np.diff(scores[order]) >= 0)
    for v in np.unique(x):
        assert len(set(scores[x == v])) == 1
    perm = list(range(x.size))
    rnd.shuffle(perm)
    assert rs.quantile_scores(x[perm]).tolist() == scores[perm].tolist()


def test_most_customers_at_frequency_zero():
    # 700 of 1,000 never repeated: all score F=1; 1 repeat (beats 700) -> 1 + floor(3.5) = 4
    freq = np.r_[np.zeros(700), np.ones(200), np.full(100, 2.0)]
    scores = rs.quantile_scores(freq)
    assert set(scores[:700]) == {1}
    assert set(scores[700:900]) == {4}
    assert set(scores[900:]) == {5}  # beats 900 -> 1 + floor(4.5) = 5


@pytest.mark.parametrize(
    ("values", "error", "words"),
    [
        ([], DataError, ["frequency", "empty"]),
        ([3, 3, 3, 3], DataError, ["frequency", "no variation", "one quantile", "3.0"]),
        # variation, but the tie block at 1 beats only 1 of 10 -> 1 + floor(0.5) = 1, like the single 0
        ([0] + [1] * 9, DataError, ["frequency", "too little variation", "one quantile", "1.0"]),
        ([1.0, np.nan, 2.0], DataError, ["frequency", "finite", "nan"]),
        ([1.0, np.inf, 2.0], DataError, ["frequency", "finite", "inf"]),
        (pd.Series(["a", "b"], dtype="string"), SchemaError, ["frequency", "numeric", "'a'"]),
    ],
)
def test_quantile_scores_bad_input(values, error, words):
    with pytest.raises(error) as info:
        rs.quantile_scores(values, column="frequency")
    message = str(info.value).lower()
    assert all(w.lower() in message for w in words), message


def test_quantile_scores_bad_settings():
    with pytest.raises(ConfigError, match="bins"):
        rs.quantile_scores([1, 2, 3], bins=10)
    with pytest.raises(ConfigError, match="ties"):
        rs.quantile_scores([1, 2, 3], ties="random")


# -------------------------------------------------------------------------------------------- RFM scores
def _five_customers() -> pd.DataFrame:
    return pd.DataFrame(
        {"recency_days": [10, 200, 50, 5, 100], "frequency": [3, 1, 2, 8, 1],
         "monetary": [100.0, 20.0, 60.0, 500.0, 10.0]},
        index=pd.Index(list("ABCDE"), name="customer_id"),
    )


def test_rfm_scores_cells_and_combined_score_by_hand():
    out = rs.rfm_scores(_five_customers())
    # R (fewer days better): D 5d ->5, A 10d ->4, C 50d ->3, E 100d ->2, B 200d ->1
    # F: D 8 ->5, A 3 ->4, C 2 ->3, B and E tie at 1 -> nobody below -> 1
    # M: D ->5, A ->4, C ->3, B 20 ->2, E 10 ->1
    assert out["r_score"].tolist() == [4, 1, 3, 5, 2]
    assert out["f_score"].tolist() == [4, 1, 3, 5, 1]
    assert out["m_score"].tolist() == [4, 2, 3, 5, 1]
    assert out["rfm_cell"].tolist() == ["444", "112", "333", "555", "211"]
    assert out["rfm_score"].tolist() == [12, 4, 9, 15, 4]
    assert out.index.equals(_five_customers().index)
    assert isinstance(out["rfm_cell"].dtype, pd.StringDtype)


def test_rfm_scores_weights_and_first_ties():
    out = rs.rfm_scores(_five_customers(), weights=(2, 1, 1), ties="first")
    # B and E tie on F=1; by id B comes first -> B position 0 (score 1), E position 1 (1 + floor(5/5) = 2)
    assert out.loc["B", "f_score"] == 1 and out.loc["E", "f_score"] == 2
    assert out.loc["A", "rfm_score"] == 2 * 4 + 4 + 4
    fractional = rs.rfm_scores(_five_customers(), weights=(0.5, 0.25, 0.25))
    assert fractional.loc["D", "rfm_score"] == pytest.approx(5.0)


def test_rfm_scores_bad_input():
    frame = _five_customers()
    with pytest.raises(SchemaError, match="monetary: required column is missing"):
        rs.rfm_scores(frame.drop(columns="monetary"))
    with pytest.raises(DataError, match="empty"):
        rs.rfm_scores(frame.iloc[:0])
    with pytest.raises(DataError, match=r"customers\.monetary: has no variation.*\(e\.g\. 7\.0\)"):
        rs.rfm_scores(frame.assign(monetary=7.0))
    with pytest.raises(ConfigError, match="weights"):
        rs.rfm_scores(frame, weights=(1, 1))


# -------------------------------------------------------------------------------- RFM from transactions
def _tx() -> pd.DataFrame:
    return pd.DataFrame({
        "customer_id": [1, 1, 2, 3, 3, 3, 4],
        "timestamp": pd.to_datetime(["1997-01-05 09:00", "1997-08-01 10:00", "1997-02-01 11:00",
                                     "1997-03-01 10:00", "1997-03-01 13:00", "1997-11-30 08:00",
                                     "1998-02-02 12:00"]),
        "amount": [10.0, 20.0, 5.0, 1.0, 2.0, 3.0, 50.0],
    })


def test_rfm_table_by_hand():
    table = rs.rfm_table(_tx())
    end = date(1998, 2, 2)  # default as_of: the last transaction day
    assert table.index.name == "customer_id"
    assert table.loc[1].tolist() == [(end - date(1997, 8, 1)).days, 2, 30.0]
    assert table.loc[2].tolist() == [(end - date(1997, 2, 1)).days, 1, 5.0]
    # customer 3: two transactions on 1997-03-01 are one purchase day
    assert table.loc[3].tolist() == [(end - date(1997, 11, 30)).days, 2, 6.0]
    assert table.loc[4].tolist() == [0, 1, 50.0]


def test_rfm_table_window_and_population():
    table = rs.rfm_table(_tx(), start="1997-07-01", as_of="1997-12-31")
    end = date(1997, 12, 31)
    # customer 4 was not acquired yet; customer 2 bought only before the window -> frequency 0
    assert table.index.tolist() == [1, 2, 3]
    assert table.loc[2].tolist() == [(end - date(1997, 2, 1)).days, 0, 0.0]
    assert table.loc[3].tolist() == [(end - date(1997, 11, 30)).days, 1, 3.0]
    active = rs.rfm_table(_tx(), start="1997-07-01", as_of="1997-12-31", population="active")
    assert active.index.tolist() == [1, 3]
    mean = rs.rfm_table(_tx(), monetary="mean")
    assert mean.loc[3, "monetary"] == pytest.approx(3.0)  # (1 + 2 + 3) / 2 purchase days


@pytest.mark.parametrize("monetary", ["total", "mean"])
def test_rfm_table_without_start_equals_the_window_from_the_first_day(monetary):
    """start=None takes a one-window path; the period core with start = the first purchase day is its oracle."""
    from custval.data.simulate import simulate_retail

    log = simulate_retail(n_customers=300, seed=2).transactions.sample(frac=1.0, random_state=0)
    first = log["timestamp"].min().normalize()
    for as_of in (None, first + pd.Timedelta(days=300)):
        fast = rs.rfm_table(log, as_of=as_of, monetary=monetary)
        core = rs.rfm_table(log, as_of=as_of, start=first, monetary=monetary, population="active")
        assert len(fast) > 100
        pd.testing.assert_frame_equal(fast, core, check_exact=True)


def test_rfm_table_bad_input():
    with pytest.raises(SchemaError, match="transactions.amount: required column is missing"):
        rs.rfm_table(_tx().drop(columns="amount"))
    with pytest.raises(SchemaError, match="transactions.timestamp: must be datetime64"):
        rs.rfm_table(_tx().assign(timestamp=_tx()["timestamp"].astype("string")))
    with pytest.raises(DataError, match="transactions.customer_id: is empty"):
        rs.rfm_table(_tx().iloc[:0])
    with pytest.raises(ConfigError, match="start"):
        rs.rfm_table(_tx(), start="1998-01-01", as_of="1997-01-01")


def test_int_and_string_yyyymmdd_dates_parse_as_in_check_cutoff():
    tx = _tx()
    assert check_cutoff(tx, 19971231) == pd.Timestamp("1997-12-31")
    iso = rs.rfm_table(tx, start="1997-07-01", as_of="1997-12-31")
    pd.testing.assert_frame_equal(rs.rfm_table(tx, start=19970701, as_of=19971231), iso)
    pd.testing.assert_frame_equal(rs.rfm_table(tx, start="19970701", as_of="19971231"), iso)
    by_iso = rs.period_rfm(_half_year_tx(), edges=["1997-07-01", "1998-01-01"], score=False)
    by_int = rs.period_rfm(_half_year_tx(), edges=[19970701, 19980101], score=False)
    pd.testing.assert_frame_equal(by_int, by_iso)
    table = rs.period_rfm(_half_year_tx(), months=6)
    pd.testing.assert_frame_equal(rs.rfm_migration(table, 19970101, 19970701, by="r_score"),
                                  rs.rfm_migration(table, "1997-01-01", "1997-07-01", by="r_score"))
    with pytest.raises(ConfigError, match="as_of: must be a date"):
        rs.rfm_table(tx, as_of="not a date")


def _cdnow_sample() -> pd.DataFrame:
    path = Path(lifetimes.__file__).parent / "datasets" / "CDNOW_sample.txt"
    raw = pd.read_csv(path, sep=r"\s+", header=None, names=["id", "customer_id", "date", "cds", "amount"])
    return pd.DataFrame({"customer_id": raw["customer_id"],
                         "timestamp": pd.to_datetime(raw["date"].astype(str), format="%Y%m%d"),
                         "amount": raw["amount"].astype(float)})


def test_rfm_table_agrees_with_lifetimes_summary_on_cdnow():
    tx = _cdnow_sample()
    table = rs.rfm_table(tx)
    summary = summary_data_from_transaction_data(tx, "customer_id", "timestamp", freq="D").loc[table.index]
    assert len(table) == 2357
    # purchase days = lifetimes' repeat purchase days + 1; days since last purchase = T - recency (days)
    assert np.array_equal(table["frequency"].to_numpy(), summary["frequency"].to_numpy() + 1)
    assert np.array_equal(table["recency_days"].to_numpy(), (summary["T"] - summary["recency"]).to_numpy())
    assert table["monetary"].to_numpy() == pytest.approx(tx.groupby("customer_id")["amount"].sum()
                                                         .loc[table.index].to_numpy())


def test_period_rfm_agrees_with_a_naive_per_period_computation_on_cdnow():
    tx = _cdnow_sample()
    out = rs.period_rfm(tx, months=6)
    edges = pd.to_datetime(["1997-01-01", "1997-07-01", "1998-01-01", "1998-07-01"])
    assert sorted(out["period"].unique()) == list(edges[:-1])
    day = tx["timestamp"].dt.normalize()
    for start, end in zip(edges[:-1], edges[1:], strict=True):
        so_far = tx[day < end]
        last = day[day < end].groupby(so_far["customer_id"]).max()
        inside = so_far[day[day < end] >= start]
        freq = day[inside.index].groupby(inside["customer_id"]).nunique()
        spend = inside.groupby("customer_id")["amount"].sum()
        got = out[out["period"] == start].set_index("customer_id").sort_index()
        assert got.index.equals(last.index)  # everyone acquired by the end of the period
        expected_recency = ((end - pd.Timedelta(days=1)) - last).dt.days
        assert np.array_equal(got["recency_days"].to_numpy(), expected_recency.to_numpy())
        assert np.array_equal(got["frequency"].to_numpy(), freq.reindex(got.index, fill_value=0).to_numpy())
        assert got["monetary"].to_numpy() == pytest.approx(spend.reindex(got.index, fill_value=0.0).to_numpy())
        assert set(got["r_score"]) <= {1, 2, 3, 4, 5} and got["r_score"].max() == 5


def _half_year_tx() -> pd.DataFrame:
    rows = [
        ("c1", "1997-01-10", 10), ("c1", "1997-06-20", 10), ("c1", "1997-12-20", 40),
        ("c2", "1997-02-01", 30),
        ("c3", "1997-03-01", 5), ("c3", "1997-04-01", 5), ("c3", "1997-05-01", 5),
        ("c3", "1997-07-15", 5), ("c3", "1997-08-15", 5), ("c3", "1997-09-15", 5), ("c3", "1997-12-30", 5),
        ("c4", "1997-06-30", 100),
        ("c5", "1997-11-01", 25),
    ]
    frame = pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount"])
    frame["customer_id"] = frame["customer_id"].astype("string")
    frame["timestamp"] = pd.to_datetime(frame["timestamp"])
    frame["amount"] = frame["amount"].astype(float)
    return frame


def test_period_rfm_half_years_by_hand():
    out = rs.period_rfm(_half_year_tx(), months=6)
    assert isinstance(out["customer_id"].dtype, pd.StringDtype)  # the id dtype survives
    assert sorted(out["period"].unique()) == [pd.Timestamp("1997-01-01"), pd.Timestamp("1997-07-01")]
    h1 = out[out["period"] == "1997-01-01"].set_index("customer_id")
    h2 = out[out["period"] == "1997-07-01"].set_index("customer_id")
    assert sorted(h1.index) == ["c1", "c2", "c3", "c4"]  # c5 not acquired yet
    assert sorted(h2.index) == ["c1", "c2", "c3", "c4", "c5"]
    e1, e2 = date(1997, 6, 30), date(1997, 12, 31)
    assert h1.loc["c2", "recency_days"] == (e1 - date(1997, 2, 1)).days
    assert h2.loc["c4", "recency_days"] == (e2 - date(1997, 6, 30)).days  # last purchase in H1 carries over
    assert h2.loc["c2", ["frequency", "monetary"]].tolist() == [0, 0.0]
    assert h2.loc["c3", ["frequency", "monetary"]].tolist() == [4, 20.0]
    assert (h1["period_end"] == pd.Timestamp(e1)).all()
    # H1 recency days: c4 0, c1 10, c3 60, c2 149 -> beaten counts 3, 2, 1, 0 of 4 -> 1 + floor(5b/4)
    assert h1["r_score"].to_dict() == {"c1": 3, "c2": 1, "c3": 2, "c4": 4}
    # H2: c3 1d, c1 11d, c5 60d, c4 184d, c2 333d -> 5, 4, 3, 2, 1
    assert h2["r_score"].to_dict() == {"c1": 4, "c2": 1, "c3": 5, "c4": 2, "c5": 3}
    # H2 frequency: c2, c4 at 0 -> 1; c1, c5 at 1 beat 2 -> 3; c3 at 4 beats 4 -> 5
    assert h2["f_score"].to_dict() == {"c1": 3, "c2": 1, "c3": 5, "c4": 1, "c5": 3}


def test_period_rfm_active_population_and_explicit_edges():
    out = rs.period_rfm(_half_year_tx(), edges=["1997-07-01", "1998-01-01"], population="active", score=False)
    assert sorted(out["customer_id"]) == ["c1", "c3", "c5"]
    # purchases before the first edge still set recency: c1's last purchase in the period is 1997-12-20
    assert out.set_index("customer_id").loc["c1", "recency_days"] == 11


def test_rfm_migration_between_half_years():
    table = rs.period_rfm(_half_year_tx(), months=6)
    moves = rs.rfm_migration(table, "1997-01-01", "1997-07-01", by="r_score")
    # c1 3->4, c2 1->1, c3 2->5, c4 4->2, c5 new ->3
    expected = {("3", "4"): 1, ("1", "1"): 1, ("2", "5"): 1, ("4", "2"): 1, ("(none)", "3"): 1}
    assert int(moves.to_numpy().sum()) == 5
    for (row, col), count in expected.items():
        assert moves.loc[row, col] == count
    shares = rs.rfm_migration(table, "1997-01-01", "1997-07-01", by="r_score", normalize=True)
    assert np.allclose(shares.sum(axis=1), 1.0)
    with pytest.raises(ConfigError, match="1996-01-01"):
        rs.rfm_migration(table, "1996-01-01", "1997-07-01")


def test_migration_matrix_by_hand():
    before = pd.Series({"a": "gold", "b": "gold", "c": "lead", "d": "lead"})
    after = pd.Series({"a": "gold", "b": "lead", "c": "lead", "e": "gold"})
    m = rs.migration_matrix(before, after)
    assert m.loc["gold", "gold"] == 1 and m.loc["gold", "lead"] == 1
    assert m.loc["lead", "lead"] == 1 and m.loc["lead", "(none)"] == 1 and m.loc["(none)", "gold"] == 1
    assert int(m.to_numpy().sum()) == 5
    with pytest.raises(DataError, match="unique"):
        rs.migration_matrix(pd.Series(["x", "y"], index=["a", "a"]), after)


def test_period_rfm_period_without_variation_names_the_period():
    tx = pd.DataFrame({"customer_id": [1, 2], "timestamp": pd.to_datetime(["2020-01-05", "2020-01-05"]),
                       "amount": [5.0, 6.0]})
    with pytest.raises(DataError, match=r"rfm\[2020-01-01\]\.recency_days: has no variation"):
        rs.period_rfm(tx, months=6)
