"""RFM scoring, test-and-rollout and value segments, checked against small examples worked by hand."""

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
from custval.features import segments as sg


# ------------------------------------------------------------------------------------------ quantile scores
def test_quintiles_without_ties_are_equal_sized_and_oriented():
    x = np.arange(10.0)
    assert sg.quantile_scores(x).tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    # lower is better (recency): the smallest value scores 5
    assert sg.quantile_scores(x, higher_is_better=False).tolist() == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]


def test_shared_ties_take_the_lowest_score_of_their_block():
    # six customers at 0 (60% of 10): nobody is strictly below them -> score 1.
    # value 1: 6 strictly below -> 1 + floor(5*6/10) = 4; 2: 7 -> 4; 3: 8 -> 5; 4: 9 -> 5.
    x = [0, 0, 0, 0, 0, 0, 1, 2, 3, 4]
    assert sg.quantile_scores(x).tolist() == [1, 1, 1, 1, 1, 1, 4, 4, 5, 5]


def test_shared_ties_best_block_is_scored_by_the_customers_it_beats():
    # recency in days, lower is better: 4 customers bought on the last day (0 days).
    # oriented value -days; the 0-day block beats 6 of 10 -> 1 + floor(30/10) = 4 (no 5 is given).
    days = [0, 0, 0, 0, 10, 20, 30, 40, 50, 60]
    assert sg.quantile_scores(days, higher_is_better=False).tolist() == [4, 4, 4, 4, 3, 3, 2, 2, 1, 1]


def test_first_ties_break_by_customer_id_and_give_equal_quintiles():
    x = [0, 0, 0, 1, 1, 2, 3, 3, 4, 5]
    ids = ["j", "i", "h", "g", "f", "e", "d", "c", "b", "a"]
    # sorted by (value, id): h,i,j | f,g | e | c,d | b | a -> positions 0..9, score = 1 + floor(5*pos/10)
    # h0->1 i1->1 j2->2 f3->2 g4->3 e5->3 c6->4 d7->4 b8->5 a9->5
    expected = {"h": 1, "i": 1, "j": 2, "f": 2, "g": 3, "e": 3, "c": 4, "d": 4, "b": 5, "a": 5}
    got = sg.quantile_scores(x, ties="first", order=ids)
    assert dict(zip(ids, got.tolist(), strict=True)) == expected
    assert np.bincount(got).tolist() == [0, 2, 2, 2, 2, 2]


def test_first_rule_matches_pandas_qcut_of_first_ranks():
    # independent oracle: the common recipe qcut(rank(method="first"), 5) on n divisible by 5
    rng = np.random.default_rng(1)
    x = rng.integers(0, 6, size=200).astype(float)  # heavy ties
    oracle = pd.qcut(pd.Series(x).rank(method="first"), 5, labels=False).to_numpy() + 1
    got = sg.quantile_scores(x, ties="first")  # default secondary order = input order, as rank('first')
    assert got.tolist() == oracle.tolist()


def test_shared_rule_by_brute_force_definition():
    # score k <=> share of customers strictly worse is in [(k-1)/5, k/5)
    rng = np.random.default_rng(2)
    x = rng.poisson(1.0, size=137).astype(float)
    scores = sg.quantile_scores(x)
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
            sg.quantile_scores(x)
        return
    scores = sg.quantile_scores(x)
    assert scores.tolist() == brute.tolist()
    assert scores.min() == 1 and scores.max() <= 5
    # same value -> same score; larger value -> score not lower
    order = np.argsort(x, kind="stable")
    assert np.all(np.diff(scores[order]) >= 0)
    for v in np.unique(x):
        assert len(set(scores[x == v])) == 1
    perm = list(range(x.size))
    rnd.shuffle(perm)
    assert sg.quantile_scores(x[perm]).tolist() == scores[perm].tolist()


def test_most_customers_at_frequency_zero():
    # 700 of 1,000 never repeated: all score F=1; 1 repeat (beats 700) -> 1 + floor(3.5) = 4
    freq = np.r_[np.zeros(700), np.ones(200), np.full(100, 2.0)]
    scores = sg.quantile_scores(freq)
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
        sg.quantile_scores(values, column="frequency")
    message = str(info.value).lower()
    assert all(w.lower() in message for w in words), message


def test_quantile_scores_bad_settings():
    with pytest.raises(ConfigError, match="bins"):
        sg.quantile_scores([1, 2, 3], bins=10)
    with pytest.raises(ConfigError, match="ties"):
        sg.quantile_scores([1, 2, 3], ties="random")


# -------------------------------------------------------------------------------------------- RFM scores
def _five_customers() -> pd.DataFrame:
    return pd.DataFrame(
        {"recency_days": [10, 200, 50, 5, 100], "frequency": [3, 1, 2, 8, 1],
         "monetary": [100.0, 20.0, 60.0, 500.0, 10.0]},
        index=pd.Index(list("ABCDE"), name="customer_id"),
    )


def test_rfm_scores_cells_and_combined_score_by_hand():
    out = sg.rfm_scores(_five_customers())
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
    out = sg.rfm_scores(_five_customers(), weights=(2, 1, 1), ties="first")
    # B and E tie on F=1; by id B comes first -> B position 0 (score 1), E position 1 (1 + floor(5/5) = 2)
    assert out.loc["B", "f_score"] == 1 and out.loc["E", "f_score"] == 2
    assert out.loc["A", "rfm_score"] == 2 * 4 + 4 + 4
    fractional = sg.rfm_scores(_five_customers(), weights=(0.5, 0.25, 0.25))
    assert fractional.loc["D", "rfm_score"] == pytest.approx(5.0)


def test_rfm_scores_bad_input():
    frame = _five_customers()
    with pytest.raises(SchemaError, match="monetary: required column is missing"):
        sg.rfm_scores(frame.drop(columns="monetary"))
    with pytest.raises(DataError, match="empty"):
        sg.rfm_scores(frame.iloc[:0])
    with pytest.raises(DataError, match=r"customers\.monetary: has no variation.*\(e\.g\. 7\.0\)"):
        sg.rfm_scores(frame.assign(monetary=7.0))
    with pytest.raises(ConfigError, match="weights"):
        sg.rfm_scores(frame, weights=(1, 1))


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
    table = sg.rfm_table(_tx())
    end = date(1998, 2, 2)  # default as_of: the last transaction day
    assert table.index.name == "customer_id"
    assert table.loc[1].tolist() == [(end - date(1997, 8, 1)).days, 2, 30.0]
    assert table.loc[2].tolist() == [(end - date(1997, 2, 1)).days, 1, 5.0]
    # customer 3: two transactions on 1997-03-01 are one purchase day
    assert table.loc[3].tolist() == [(end - date(1997, 11, 30)).days, 2, 6.0]
    assert table.loc[4].tolist() == [0, 1, 50.0]


def test_rfm_table_window_and_population():
    table = sg.rfm_table(_tx(), start="1997-07-01", as_of="1997-12-31")
    end = date(1997, 12, 31)
    # customer 4 was not acquired yet; customer 2 bought only before the window -> frequency 0
    assert table.index.tolist() == [1, 2, 3]
    assert table.loc[2].tolist() == [(end - date(1997, 2, 1)).days, 0, 0.0]
    assert table.loc[3].tolist() == [(end - date(1997, 11, 30)).days, 1, 3.0]
    active = sg.rfm_table(_tx(), start="1997-07-01", as_of="1997-12-31", population="active")
    assert active.index.tolist() == [1, 3]
    mean = sg.rfm_table(_tx(), monetary="mean")
    assert mean.loc[3, "monetary"] == pytest.approx(3.0)  # (1 + 2 + 3) / 2 purchase days


def test_rfm_table_bad_input():
    with pytest.raises(SchemaError, match="transactions.amount: required column is missing"):
        sg.rfm_table(_tx().drop(columns="amount"))
    with pytest.raises(SchemaError, match="transactions.timestamp: must be datetime64"):
        sg.rfm_table(_tx().assign(timestamp=_tx()["timestamp"].astype("string")))
    with pytest.raises(DataError, match="transactions.customer_id: is empty"):
        sg.rfm_table(_tx().iloc[:0])
    with pytest.raises(ConfigError, match="start"):
        sg.rfm_table(_tx(), start="1998-01-01", as_of="1997-01-01")


def test_int_and_string_yyyymmdd_dates_parse_as_in_check_cutoff():
    tx = _tx()
    assert check_cutoff(tx, 19971231) == pd.Timestamp("1997-12-31")
    iso = sg.rfm_table(tx, start="1997-07-01", as_of="1997-12-31")
    pd.testing.assert_frame_equal(sg.rfm_table(tx, start=19970701, as_of=19971231), iso)
    pd.testing.assert_frame_equal(sg.rfm_table(tx, start="19970701", as_of="19971231"), iso)
    by_iso = sg.period_rfm(_half_year_tx(), edges=["1997-07-01", "1998-01-01"], score=False)
    by_int = sg.period_rfm(_half_year_tx(), edges=[19970701, 19980101], score=False)
    pd.testing.assert_frame_equal(by_int, by_iso)
    table = sg.period_rfm(_half_year_tx(), months=6)
    pd.testing.assert_frame_equal(sg.rfm_migration(table, 19970101, 19970701, by="r_score"),
                                  sg.rfm_migration(table, "1997-01-01", "1997-07-01", by="r_score"))
    with pytest.raises(ConfigError, match="as_of: must be a date"):
        sg.rfm_table(tx, as_of="not a date")


def _cdnow_sample() -> pd.DataFrame:
    path = Path(lifetimes.__file__).parent / "datasets" / "CDNOW_sample.txt"
    raw = pd.read_csv(path, sep=r"\s+", header=None, names=["id", "customer_id", "date", "cds", "amount"])
    return pd.DataFrame({"customer_id": raw["customer_id"],
                         "timestamp": pd.to_datetime(raw["date"].astype(str), format="%Y%m%d"),
                         "amount": raw["amount"].astype(float)})


def test_rfm_table_agrees_with_lifetimes_summary_on_cdnow():
    tx = _cdnow_sample()
    table = sg.rfm_table(tx)
    summary = summary_data_from_transaction_data(tx, "customer_id", "timestamp", freq="D").loc[table.index]
    assert len(table) == 2357
    # purchase days = lifetimes' repeat purchase days + 1; days since last purchase = T - recency (days)
    assert np.array_equal(table["frequency"].to_numpy(), summary["frequency"].to_numpy() + 1)
    assert np.array_equal(table["recency_days"].to_numpy(), (summary["T"] - summary["recency"]).to_numpy())
    assert table["monetary"].to_numpy() == pytest.approx(tx.groupby("customer_id")["amount"].sum()
                                                         .loc[table.index].to_numpy())


def test_period_rfm_agrees_with_a_naive_per_period_computation_on_cdnow():
    tx = _cdnow_sample()
    out = sg.period_rfm(tx, months=6)
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
    out = sg.period_rfm(_half_year_tx(), months=6)
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
    out = sg.period_rfm(_half_year_tx(), edges=["1997-07-01", "1998-01-01"], population="active", score=False)
    assert sorted(out["customer_id"]) == ["c1", "c3", "c5"]
    # purchases before the first edge still set recency: c1's last purchase in the period is 1997-12-20
    assert out.set_index("customer_id").loc["c1", "recency_days"] == 11


def test_rfm_migration_between_half_years():
    table = sg.period_rfm(_half_year_tx(), months=6)
    moves = sg.rfm_migration(table, "1997-01-01", "1997-07-01", by="r_score")
    # c1 3->4, c2 1->1, c3 2->5, c4 4->2, c5 new ->3
    expected = {("3", "4"): 1, ("1", "1"): 1, ("2", "5"): 1, ("4", "2"): 1, ("(none)", "3"): 1}
    assert int(moves.to_numpy().sum()) == 5
    for (row, col), count in expected.items():
        assert moves.loc[row, col] == count
    shares = sg.rfm_migration(table, "1997-01-01", "1997-07-01", by="r_score", normalize=True)
    assert np.allclose(shares.sum(axis=1), 1.0)
    with pytest.raises(ConfigError, match="1996-01-01"):
        sg.rfm_migration(table, "1996-01-01", "1997-07-01")


def test_migration_matrix_by_hand():
    before = pd.Series({"a": "gold", "b": "gold", "c": "lead", "d": "lead"})
    after = pd.Series({"a": "gold", "b": "lead", "c": "lead", "e": "gold"})
    m = sg.migration_matrix(before, after)
    assert m.loc["gold", "gold"] == 1 and m.loc["gold", "lead"] == 1
    assert m.loc["lead", "lead"] == 1 and m.loc["lead", "(none)"] == 1 and m.loc["(none)", "gold"] == 1
    assert int(m.to_numpy().sum()) == 5
    with pytest.raises(DataError, match="unique"):
        sg.migration_matrix(pd.Series(["x", "y"], index=["a", "a"]), after)


def test_period_rfm_period_without_variation_names_the_period():
    tx = pd.DataFrame({"customer_id": [1, 2], "timestamp": pd.to_datetime(["2020-01-05", "2020-01-05"]),
                       "amount": [5.0, 6.0]})
    with pytest.raises(DataError, match=r"rfm\[2020-01-01\]\.recency_days: has no variation"):
        sg.period_rfm(tx, months=6)


# --------------------------------------------------------------------------------------- test and rollout
def test_break_even_hand_worked_examples():
    assert sg.break_even_rate(0.55, 40) == pytest.approx(0.01375)  # 1.375%
    assert sg.break_even_index(0.025, 0.01375) == pytest.approx(81.8181818, rel=1e-7)
    assert sg.break_even_rate(0.27, 60) == pytest.approx(0.0045)  # 0.45%
    assert sg.response_rate(510, 30_000) == pytest.approx(0.017)
    assert sg.cost_per_response(5_100, 510) == pytest.approx(10.0)
    assert sg.break_even_index(np.array([0.01375, 0.0]), 0.01375).tolist() == pytest.approx([0.0, -100.0])


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda: sg.break_even_rate(0, 40), ["cost_per_contact", "positive", "0"]),
        (lambda: sg.break_even_rate(-0.5, 40), ["cost_per_contact", "positive", "-0.5"]),
        (lambda: sg.break_even_rate(0.55, 0), ["net_profit_per_response", "positive", "0"]),
        (lambda: sg.break_even_rate(0.55, -3), ["net_profit_per_response", "positive", "-3"]),
        (lambda: sg.break_even_index(1.2, 0.01), ["response_rate", "[0, 1]", "1.2"]),
        (lambda: sg.response_rate(510, 0), ["contacted", "positive"]),
        (lambda: sg.response_rate(31_000, 30_000), ["responses", "31000"]),
        (lambda: sg.cost_per_response(5_100, 0), ["responses", "positive"]),
    ],
)
def test_break_even_bad_input(call, words):
    with pytest.raises(ConfigError) as info:
        call()
    assert all(w in str(info.value) for w in words), str(info.value)


def test_systematic_sample_every_kth_after_sorting_by_cell():
    cells = ["111", "555", "333", "555", "111", "333", "555", "111", "333", "111"]
    frame = pd.DataFrame({"rfm_cell": cells}, index=pd.Index([f"id{i}" for i in range(10)], name="customer_id"))
    # sorted by cell descending, then id: 555: id1 id3 id6 | 333: id2 id5 id8 | 111: id0 id4 id7 id9
    order = ["id1", "id3", "id6", "id2", "id5", "id8", "id0", "id4", "id7", "id9"]
    sample = sg.systematic_sample(frame, 3, start=1)
    assert sample.index.tolist() == order[1::3] == ["id3", "id5", "id4"]
    assert sg.systematic_sample(frame, 1).index.tolist() == order
    with pytest.raises(ConfigError, match="k"):
        sg.systematic_sample(frame, 0)
    with pytest.raises(ConfigError, match="start"):
        sg.systematic_sample(frame, 3, start=3)
    with pytest.raises(DataError, match="empty"):
        sg.systematic_sample(frame.iloc[:0], 3)


def _campaign():
    # test sample: 555 200 mailed 10 responses (5%); 333 400 mailed 6 (1.5%); 111 400 mailed 2 (0.5%)
    def cell(name, n, k):
        return pd.DataFrame({"rfm_cell": [name] * n, "responded": [1] * k + [0] * (n - k)})

    test = pd.concat([cell("555", 200, 10), cell("333", 400, 6), cell("111", 400, 2)], ignore_index=True)
    population = pd.DataFrame({"rfm_cell": ["555"] * 2000 + ["333"] * 4000 + ["111"] * 4000})
    return test, population


def test_rollout_plan_by_hand():
    test, population = _campaign()
    plan = sg.rollout_plan(test, population, cost_per_contact=0.55, net_profit_per_response=40)
    # BE = 1.375%; BEI: 555 (5 - 1.375)/1.375*100 = 263.64; 333 9.09; 111 -63.64
    assert plan.break_even_rate == pytest.approx(0.01375)
    assert plan.cells.loc["555", "break_even_index"] == pytest.approx(263.6363636)
    assert plan.cells.loc["333", "break_even_index"] == pytest.approx(9.0909091)
    assert plan.cells.loc["111", "break_even_index"] == pytest.approx(-63.6363636)
    assert plan.selected_cells == ["555", "333"]
    # profit per contact = R x 40 - 0.55: 555 1.45 x 2000 = 2900; 333 0.05 x 4000 = 200; 111 -0.35 x 4000 = -1400
    assert plan.expected_profit_rollout == pytest.approx(3100.0)
    assert plan.expected_profit_all == pytest.approx(1700.0)
    assert (plan.contacts_rollout, plan.contacts_all) == (6000, 10000)
    assert plan.pooled_response_rate == pytest.approx(18 / 1000)


def test_rollout_untested_cell_is_not_mailed_and_gets_the_pooled_rate_in_the_baseline():
    test, population = _campaign()
    population = pd.concat([population, pd.DataFrame({"rfm_cell": ["222"] * 1000})], ignore_index=True)
    plan = sg.rollout_plan(test, population, cost_per_contact=0.55, net_profit_per_response=40)
    assert "222" not in plan.selected_cells
    # pooled 1.8%: 1000 x (0.018 x 40 - 0.55) = 170
    assert plan.cells.loc["222", "expected_profit"] == pytest.approx(170.0)
    assert plan.expected_profit_all == pytest.approx(1870.0)


def test_rollout_bad_input():
    test, population = _campaign()
    with pytest.raises(ConfigError, match="cost_per_contact"):
        sg.rollout_plan(test, population, cost_per_contact=0, net_profit_per_response=40)
    with pytest.raises(ConfigError, match="net_profit_per_response"):
        sg.rollout_plan(test, population, cost_per_contact=0.5, net_profit_per_response=-1)
    with pytest.raises(DataError, match=r"test\.responded: must be 0 or 1.*\(e\.g\. 2\.0\)"):
        sg.rollout_plan(test.assign(responded=2), population, cost_per_contact=0.5, net_profit_per_response=40)
    with pytest.raises(DataError, match="test.rfm_cell: is empty"):
        sg.rollout_plan(test.iloc[:0], population, cost_per_contact=0.5, net_profit_per_response=40)


# ----------------------------------------------------------------------------------------- value segments
def test_value_tiers_pyramid_by_hand():
    clv = pd.Series(np.arange(1.0, 21.0), index=range(100, 120))
    tiers = sg.value_tiers(clv)
    # strictly-below shares 0, .05, ..., .95: < .5 lead (10), [.5, .8) iron (6), [.8, .95) gold (3), .95 platinum
    assert tiers.value_counts(sort=False).to_dict() == {"lead": 10, "iron": 6, "gold": 3, "platinum": 1}
    assert tiers.loc[119] == "platinum" and tiers.loc[116] == "gold" and tiers.loc[110] == "iron"
    assert tiers.index.equals(clv.index)
    assert tiers.cat.ordered and list(tiers.cat.categories) == ["lead", "iron", "gold", "platinum"]


def test_value_tiers_custom_cuts_and_ties():
    tiers = sg.value_tiers([5, 5, 5, 1, 9, 9, 2, 7], cuts=(0.25, 0.75), names=("low", "mid", "top"))
    # below counts: 5 -> 2 (.25 mid); 1 -> 0 low; 9 -> 6 (.75 top); 2 -> 1 (.125 low); 7 -> 5 (.625 mid)
    assert tiers.tolist() == ["mid", "mid", "mid", "low", "top", "top", "low", "mid"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"cuts": (0.8, 0.5, 0.95)}, "cuts"),
        ({"cuts": (0.0, 0.5)}, "cuts"),
        ({"names": ("a", "b")}, "names"),
        ({"names": ("a", "a", "b", "c")}, "names"),
    ],
)
def test_value_tiers_bad_settings(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        sg.value_tiers([1.0, 2.0, 3.0], **kwargs)


def test_value_tiers_bad_data():
    with pytest.raises(DataError, match="customers.clv: has no variation"):
        sg.value_tiers([4.0, 4.0])
    with pytest.raises(DataError, match=r"customers\.clv: has too little variation: all 10 customers fall in one"):
        sg.value_tiers([0.0] + [2.0] * 9)  # the 2.0 block beats 10% < 50%: everyone is "lead"
    with pytest.raises(DataError, match="customers.clv: is empty"):
        sg.value_tiers([])


def test_value_loyalty_quadrants_by_hand():
    clv = [100.0, 80.0, 10.0, 5.0, 60.0, 20.0]
    p_alive = [0.9, 0.2, 0.95, 0.1, 0.5, 0.49]
    # median clv = (20 + 60) / 2 = 40; high value: 100, 80, 60; high loyalty (>= 0.5): 0.9, 0.95, 0.5
    got = sg.value_loyalty_matrix(clv, p_alive).tolist()
    assert got == ["golden", "at risk", "do not over-serve", "marginal", "golden", "marginal"]
    explicit = sg.value_loyalty_matrix(clv, p_alive, value_threshold=80, loyalty_threshold=0.95).tolist()
    assert explicit == ["at risk", "at risk", "do not over-serve", "marginal", "marginal", "marginal"]


def test_value_loyalty_bad_input():
    with pytest.raises(DataError, match=r"customers\.p_alive: must be a probability in \[0, 1\] \(e\.g\. 1\.5\)"):
        sg.value_loyalty_matrix([1.0, 2.0], [0.5, 1.5])
    with pytest.raises(ConfigError, match="loyalty_threshold"):
        sg.value_loyalty_matrix([1.0, 2.0], [0.5, 0.5], loyalty_threshold=2)


def test_purchase_cycle_grid_explicit_thresholds_every_cell():
    # cycle thresholds (3, 6): short <= 3 < medium <= 6 < long; spend (20, 50): low < 20 <= medium < 50 <= high
    ipt = [2, 2, 2, 5, 5, 5, 9, 9, 9, np.nan]
    aov = [60, 30, 10, 50, 20, 19.99, 80, 25, 5, 100]
    got = sg.purchase_cycle_grid(ipt, aov, cycle_thresholds=(3, 6), spend_thresholds=(20, 50)).tolist()
    assert got == ["platinum", "gold", "develop", "gold", "silver", "develop", "silver", "optimise", "optimise",
                   "silver"]  # one-time buyer (NaN cycle) counts as a long cycle


def test_purchase_cycle_grid_default_tertiles_from_repeat_buyers():
    # repeat buyers' cycles 1..7: tertiles (linear) at positions 2 and 4 -> 3 and 5; spend 10..70 -> 30 and 50
    ipt = [1, 2, 3, 4, 5, 6, 7, np.nan]
    aov = [70, 60, 50, 40, 30, 20, 10, 1000]
    got = sg.purchase_cycle_grid(ipt, aov).tolist()
    assert got == ["platinum", "platinum", "platinum", "silver", "silver", "optimise", "optimise", "silver"]


def test_purchase_cycle_grid_bad_input():
    with pytest.raises(DataError, match="interpurchase_time: must be positive"):
        sg.purchase_cycle_grid([0.0, 1.0], [1.0, 2.0])
    with pytest.raises(DataError, match="no repeat buyer"):
        sg.purchase_cycle_grid([np.nan, np.nan], [1.0, 2.0])
    with pytest.raises(ConfigError, match="grid"):
        sg.purchase_cycle_grid([1.0, 2.0], [1.0, 2.0], grid=(("a", "b"),))


def test_pareto_curve_and_top_share_by_hand():
    values = pd.Series([5.0, 50.0, 10.0, 30.0, 5.0])
    curve = sg.pareto_curve(values)
    assert curve["customer_share"].tolist() == pytest.approx([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    assert curve["value_share"].tolist() == pytest.approx([0, 0.5, 0.8, 0.9, 0.95, 1.0])
    assert sg.top_share(values, 0.2) == pytest.approx(0.5)
    assert sg.top_share(values, 0.3) == pytest.approx(0.65)  # halfway between 0.5 and 0.8
    table = sg.pareto_table(pd.DataFrame({"revenue": values, "clv": [1.0, 1.0, 1.0, 1.0, 1.0]}), tops=(0.2, 0.4))
    assert table.loc[0.2].tolist() == pytest.approx([0.5, 0.2])
    assert table.loc[0.4].tolist() == pytest.approx([0.8, 0.4])


def test_pareto_bad_input():
    with pytest.raises(DataError, match=r"customers\.revenue: must be >= 0.*\(e\.g\. -1\.0\)"):
        sg.pareto_curve([3.0, -1.0], column="revenue")
    with pytest.raises(DataError, match="positive total"):
        sg.pareto_curve([0.0, 0.0])
    with pytest.raises(DataError, match="empty"):
        sg.pareto_curve([])
    with pytest.raises(ConfigError, match="top"):
        sg.top_share([1.0, 2.0], 1.5)


# --------------------------------------------------------------------------------------------- lifecycle
def _lifecycle_frame() -> pd.DataFrame:
    # repeat buyers' cycles (recency / frequency): A 5, B 5, C 4, G 1.5 -> median (4, 5, 5, 1.5) = 4.5
    return pd.DataFrame(
        {"frequency": [4, 2, 1, 0, 0, 0, 3, 2],
         "recency": [20.0, 10.0, 4.0, 0.0, 0.0, 0.0, 4.5, 10.0],
         "T": [22.0, 25.0, 30.0, 3.0, 9.0, 30.0, 4.5, 20.0]},
        index=pd.Index(list("ABCDEFGH"), name="customer_id"),
    )


def test_lifecycle_stage_by_purchase_cycle():
    stage = sg.lifecycle_stage(_lifecycle_frame())
    # new: T <= 4.5 -> D (3), G (4.5). Others gap / cycle:
    # A 2/5 = .4 active; B 15/5 = 3 at risk; C 26/4 = 6.5 lapsed; E 9/4.5 = 2 active (boundary);
    # F 30/4.5 = 6.7 lapsed; H 10/5 = 2 active
    assert stage.to_dict() == {"A": "active", "B": "at risk", "C": "lapsed", "D": "new", "E": "active",
                               "F": "lapsed", "G": "new", "H": "active"}
    assert list(stage.cat.categories) == ["new", "active", "at risk", "lapsed"]


def test_lifecycle_stage_by_p_alive_and_explicit_new_window():
    frame = _lifecycle_frame().assign(p_alive=[0.9, 0.45, 0.1, 1.0, 0.5, 0.2, 0.99, 0.19])
    stage = sg.lifecycle_stage(frame, method="p_alive", new_within=1.0)
    # no one has T <= 1; p >= .5 active, >= .2 at risk, else lapsed
    assert stage.tolist() == ["active", "at risk", "lapsed", "active", "active", "at risk", "active", "lapsed"]


def test_lifecycle_stage_bad_input():
    frame = _lifecycle_frame()
    with pytest.raises(DataError, match="no repeat buyer"):
        sg.lifecycle_stage(frame[frame["frequency"] == 0])
    with pytest.raises(DataError, match=r"customers\.recency: must be in \[0, T\]"):
        sg.lifecycle_stage(frame.assign(recency=frame["T"] + 1))
    with pytest.raises(ConfigError, match="lapsed_after"):
        sg.lifecycle_stage(frame, at_risk_after=3, lapsed_after=2)
    with pytest.raises(SchemaError, match="customers.p_alive: required column is missing"):
        sg.lifecycle_stage(frame, method="p_alive")
    with pytest.raises(ConfigError, match="method"):
        sg.lifecycle_stage(frame, method="magic")


def test_customer_loss_value_by_hand():
    before = pd.DataFrame({"clv": [100.0, 50.0, 30.0, 20.0],
                           "lifecycle_stage": ["active", "active", "at risk", "lapsed"]}, index=list("abcd"))
    after = pd.DataFrame({"lifecycle_stage": ["lapsed", "active", "lapsed", "lapsed"]}, index=list("abcd"))
    loss = sg.customer_loss_value(before, after)
    assert loss.to_dict() == {"a": 100.0, "b": 0.0, "c": 0.0, "d": 0.0}
    wider = sg.customer_loss_value(before, after, from_stages=("active", "at risk"))
    assert wider.sum() == pytest.approx(130.0)
    with pytest.raises(DataError, match="must contain every customer"):
        sg.customer_loss_value(before, after.iloc[:3])


# ------------------------------------------------------------------------------- one row per customer
def _customers() -> pd.DataFrame:
    frame = _lifecycle_frame()
    frame["monetary_value"] = [40.0, 25.0, 60.0, 0.0, 0.0, 0.0, 15.0, 30.0]
    frame["clv"] = [300.0, 80.0, 20.0, 50.0, 40.0, 5.0, 120.0, 90.0]
    frame["p_alive"] = [0.95, 0.6, 0.15, 1.0, 0.7, 0.3, 0.99, 0.4]
    frame["revenue"] = [200.0, 75.0, 120.0, 30.0, 20.0, 10.0, 60.0, 90.0]
    return frame


def test_segment_customers_columns_and_hand_checks():
    frame = _customers()
    out = sg.segment_customers(frame)
    assert out.index.equals(frame.index)
    for column in ["r_score", "f_score", "m_score", "rfm_cell", "rfm_score", "tier", "value_loyalty",
                   "cycle_class", "lifecycle_stage", "loss_value", "time_since_last", "interpurchase_time"]:
        assert column in out.columns
    # time since last purchase T - recency: A 2, B 15, C 26, D 3, E 9, F 30, G 0, H 10
    # lower is better; strictly-worse counts: G 7, A 6, D 5, E 4, H 3, B 2, C 1, F 0 -> 1 + floor(5b/8)
    assert out["r_score"].to_dict() == {"G": 5, "A": 4, "D": 4, "E": 3, "H": 2, "B": 2, "C": 1, "F": 1}
    # frequency 0 (D, E, F) -> 1; 1 (C) beats 3 -> 2; 2 (B, H) beat 4 -> 3; 3 (G) beats 6 -> 4; 4 (A) -> 5
    assert out["f_score"].to_dict() == {"A": 5, "B": 3, "C": 2, "D": 1, "E": 1, "F": 1, "G": 4, "H": 3}
    assert out.loc["A", "rfm_cell"] == f"{out.loc['A', 'r_score']}5{out.loc['A', 'm_score']}"
    # p_alive present -> lifecycle by P(alive); new = T <= 4.5 (D, G)
    assert out["lifecycle_stage"].to_dict() == {"A": "active", "B": "active", "C": "lapsed", "D": "new",
                                                "E": "active", "F": "at risk", "G": "new", "H": "at risk"}
    assert out.loc["C", "loss_value"] == 0.0 and out.loc["A", "loss_value"] == 300.0
    # median clv (50 + 80) / 2 = 65: A high & .95 -> golden; H 90 & .4 -> at risk; E 40 & .7 -> do not over-serve
    assert (out.loc["A", "value_loyalty"], out.loc["H", "value_loyalty"], out.loc["E", "value_loyalty"],
            out.loc["F", "value_loyalty"]) == ("golden", "at risk", "do not over-serve", "marginal")
    # the composed columns equal the individual functions
    assert out["tier"].tolist() == sg.value_tiers(frame["clv"]).tolist()
    assert out["interpurchase_time"].to_dict() == pytest.approx(
        {"A": 5.0, "B": 5.0, "C": 4.0, "D": np.nan, "E": np.nan, "F": np.nan, "G": 1.5, "H": 5.0}, nan_ok=True)


def test_segment_customers_without_clv_and_with_overrides():
    frame = _customers().drop(columns=["clv", "p_alive"])
    out = sg.segment_customers(frame, lifecycle_method="cycle", ties="first", tier_cuts=(0.5,))
    assert "tier" not in out.columns and "value_loyalty" not in out.columns
    assert out["lifecycle_stage"].tolist() == sg.lifecycle_stage(frame).tolist()
    # ties="first": order by (frequency, id) D E F | C | B H | G | A = positions 0..7, score 1 + floor(5p/8)
    assert out["f_score"].to_dict() == {"D": 1, "E": 1, "F": 2, "C": 2, "B": 3, "H": 4, "G": 4, "A": 5}
    config = sg.SegmentConfig(tier_cuts=(0.5,), tier_names=("low", "high"))
    two = sg.segment_customers(_customers(), config)
    assert set(two["tier"]) == {"low", "high"}


def test_segment_customers_bad_input():
    frame = _customers()
    with pytest.raises(SchemaError, match="customers.T: required column is missing"):
        sg.segment_customers(frame.drop(columns="T"))
    with pytest.raises(DataError, match="customers.customer_id: must be unique"):
        sg.segment_customers(pd.concat([frame, frame.iloc[:1]]))
    with pytest.raises(ConfigError, match="unknown segment setting"):
        sg.segment_customers(frame, tiers=3)
    with pytest.raises(DataError, match="customers.frequency: is empty"):
        sg.segment_customers(frame.iloc[:0])
    with pytest.raises(DataError, match="customers.clv: has no variation"):
        sg.segment_customers(frame.assign(clv=1.0))


def test_segment_summary_by_hand():
    frame = pd.DataFrame({"tier": ["gold", "lead", "gold", "lead", "lead"],
                          "revenue": [100.0, 10.0, 60.0, 20.0, 10.0], "clv": [50.0, 5.0, 30.0, 10.0, 5.0]})
    summary = sg.segment_summary(frame, "tier")
    assert summary.loc["gold"].to_dict() == pytest.approx(
        {"customers": 2, "customer_share": 0.4, "revenue": 160.0, "revenue_share": 0.8, "mean_clv": 40.0,
         "total_clv": 80.0, "clv_share": 0.8})
    assert summary.loc["lead", "mean_clv"] == pytest.approx(20.0 / 3)
    no_revenue = sg.segment_summary(frame.drop(columns="revenue"), "tier")
    assert "revenue" not in no_revenue.columns and "mean_clv" in no_revenue.columns
    with pytest.raises(SchemaError, match="customers.sales: required column is missing"):
        sg.segment_summary(frame, "tier", revenue="sales")
    two_keys = sg.segment_summary(frame.assign(stage=["new", "new", "lapsed", "new", "new"]), ["tier", "stage"])
    assert two_keys["customers"].sum() == 5 and two_keys.loc[("lead", "new"), "customers"] == 3
