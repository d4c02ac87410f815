"""Value segments (tiers, value x loyalty, purchase-cycle grid, Pareto, lifecycle, one row per customer),
checked against small examples worked by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from custval.errors import ConfigError, DataError, SchemaError
from custval.features import value_segments as vs


# ----------------------------------------------------------------------------------------- value segments
def test_value_tiers_pyramid_by_hand():
    clv = pd.Series(np.arange(1.0, 21.0), index=range(100, 120))
    tiers = vs.value_tiers(clv)
    # strictly-below shares 0, .05, ..., .95: < .5 lead (10), [.5, .8) iron (6), [.8, .95) gold (3), .95 platinum
    assert tiers.value_counts(sort=False).to_dict() == {"lead": 10, "iron": 6, "gold": 3, "platinum": 1}
    assert tiers.loc[119] == "platinum" and tiers.loc[116] == "gold" and tiers.loc[110] == "iron"
    assert tiers.index.equals(clv.index)
    assert tiers.cat.ordered and list(tiers.cat.categories) == ["lead", "iron", "gold", "platinum"]


def test_value_tiers_custom_cuts_and_ties():
    tiers = vs.value_tiers([5, 5, 5, 1, 9, 9, 2, 7], cuts=(0.25, 0.75), names=("low", "mid", "top"))
    # below counts: 5 -> 2 (.25 mid); 1 -> 0 low; 9 -> 6 (.75 top); 2 -> 1 (.125 low); 7 -> 5 (.625 mid)
    assert tiers.tolist() == ["mid", "mid", "mid", "low", "top", "top", "low", "mid"]


def test_share_counts_are_the_least_count_reaching_each_share_in_floating_point():
    for n in (1, 3, 7, 10, 20, 97, 1000, 12345):
        shares = np.array([0.05, 0.1, 0.2, 0.3, 0.5, 0.8, 0.9, 0.95, 1 / 3, 0.999])
        expected = [min(c for c in range(n + 2) if c / n >= share) for share in shares]
        assert vs.share_counts(shares, n).tolist() == expected


def test_value_tiers_equal_the_share_of_strictly_lower_values_rule_on_ties():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 30, 5000).astype(float)  # many ties
    share_below = (np.sort(x).searchsorted(x, side="left")) / x.size  # independent: strictly lower count / n
    expected = np.searchsorted([0.5, 0.8, 0.95], share_below, side="right")
    assert vs.value_tiers(x).cat.codes.to_numpy().tolist() == expected.tolist()


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
        vs.value_tiers([1.0, 2.0, 3.0], **kwargs)


def test_value_tiers_bad_data():
    with pytest.raises(DataError, match="customers.clv: has no variation"):
        vs.value_tiers([4.0, 4.0])
    with pytest.raises(DataError, match=r"customers\.clv: has too little variation: all 10 customers fall in one"):
        vs.value_tiers([0.0] + [2.0] * 9)  # the 2.0 block beats 10% < 50%: everyone is "lead"
    with pytest.raises(DataError, match="customers.clv: is empty"):
        vs.value_tiers([])


def test_value_loyalty_quadrants_by_hand():
    clv = [100.0, 80.0, 10.0, 5.0, 60.0, 20.0]
    p_alive = [0.9, 0.2, 0.95, 0.1, 0.5, 0.49]
    # median clv = (20 + 60) / 2 = 40; high value: 100, 80, 60; high loyalty (>= 0.5): 0.9, 0.95, 0.5
    got = vs.value_loyalty_matrix(clv, p_alive).tolist()
    assert got == ["golden", "at risk", "do not over-serve", "marginal", "golden", "marginal"]
    explicit = vs.value_loyalty_matrix(clv, p_alive, value_threshold=80, loyalty_threshold=0.95).tolist()
    assert explicit == ["at risk", "at risk", "do not over-serve", "marginal", "marginal", "marginal"]


def test_value_loyalty_bad_input():
    with pytest.raises(DataError, match=r"customers\.p_alive: must be a probability in \[0, 1\] \(e\.g\. 1\.5\)"):
        vs.value_loyalty_matrix([1.0, 2.0], [0.5, 1.5])
    with pytest.raises(ConfigError, match="loyalty_threshold"):
        vs.value_loyalty_matrix([1.0, 2.0], [0.5, 0.5], loyalty_threshold=2)


def test_purchase_cycle_grid_explicit_thresholds_every_cell():
    # cycle thresholds (3, 6): short <= 3 < medium <= 6 < long; spend (20, 50): low < 20 <= medium < 50 <= high
    ipt = [2, 2, 2, 5, 5, 5, 9, 9, 9, np.nan]
    aov = [60, 30, 10, 50, 20, 19.99, 80, 25, 5, 100]
    got = vs.purchase_cycle_grid(ipt, aov, cycle_thresholds=(3, 6), spend_thresholds=(20, 50)).tolist()
    assert got == ["platinum", "gold", "develop", "gold", "silver", "develop", "silver", "optimise", "optimise",
                   "silver"]  # one-time buyer (NaN cycle) counts as a long cycle


def test_purchase_cycle_grid_default_tertiles_from_repeat_buyers():
    # repeat buyers' cycles 1..7: tertiles (linear) at positions 2 and 4 -> 3 and 5; spend 10..70 -> 30 and 50
    ipt = [1, 2, 3, 4, 5, 6, 7, np.nan]
    aov = [70, 60, 50, 40, 30, 20, 10, 1000]
    got = vs.purchase_cycle_grid(ipt, aov).tolist()
    assert got == ["platinum", "platinum", "platinum", "silver", "silver", "optimise", "optimise", "silver"]


def test_purchase_cycle_grid_bad_input():
    with pytest.raises(DataError, match="interpurchase_time: must be positive"):
        vs.purchase_cycle_grid([0.0, 1.0], [1.0, 2.0])
    with pytest.raises(DataError, match="no repeat buyer"):
        vs.purchase_cycle_grid([np.nan, np.nan], [1.0, 2.0])
    with pytest.raises(ConfigError, match="grid"):
        vs.purchase_cycle_grid([1.0, 2.0], [1.0, 2.0], grid=(("a", "b"),))


def test_pareto_curve_and_top_share_by_hand():
    values = pd.Series([5.0, 50.0, 10.0, 30.0, 5.0])
    curve = vs.pareto_curve(values)
    assert curve["customer_share"].tolist() == pytest.approx([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    assert curve["value_share"].tolist() == pytest.approx([0, 0.5, 0.8, 0.9, 0.95, 1.0])
    assert vs.top_share(values, 0.2) == pytest.approx(0.5)
    assert vs.top_share(values, 0.3) == pytest.approx(0.65)  # halfway between 0.5 and 0.8
    table = vs.pareto_table(pd.DataFrame({"revenue": values, "clv": [1.0, 1.0, 1.0, 1.0, 1.0]}), tops=(0.2, 0.4))
    assert table.loc[0.2].tolist() == pytest.approx([0.5, 0.2])
    assert table.loc[0.4].tolist() == pytest.approx([0.8, 0.4])


def test_pareto_bad_input():
    with pytest.raises(DataError, match=r"customers\.revenue: must be >= 0.*\(e\.g\. -1\.0\)"):
        vs.pareto_curve([3.0, -1.0], column="revenue")
    with pytest.raises(DataError, match="positive total"):
        vs.pareto_curve([0.0, 0.0])
    with pytest.raises(DataError, match="empty"):
        vs.pareto_curve([])
    with pytest.raises(ConfigError, match="top"):
        vs.top_share([1.0, 2.0], 1.5)


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
    stage = vs.lifecycle_stage(_lifecycle_frame())
    # new: T <= 4.5 -> D (3), G (4.5). Others gap / cycle:
    # A 2/5 = .4 active; B 15/5 = 3 at risk; C 26/4 = 6.5 lapsed; E 9/4.5 = 2 active (boundary);
    # F 30/4.5 = 6.7 lapsed; H 10/5 = 2 active
    assert stage.to_dict() == {"A": "active", "B": "at risk", "C": "lapsed", "D": "new", "E": "active",
                               "F": "lapsed", "G": "new", "H": "active"}
    assert list(stage.cat.categories) == ["new", "active", "at risk", "lapsed"]


def test_lifecycle_stage_by_p_alive_and_explicit_new_window():
    frame = _lifecycle_frame().assign(p_alive=[0.9, 0.45, 0.1, 1.0, 0.5, 0.2, 0.99, 0.19])
    stage = vs.lifecycle_stage(frame, method="p_alive", new_within=1.0)
    # no one has T <= 1; p >= .5 active, >= .2 at risk, else lapsed
    assert stage.tolist() == ["active", "at risk", "lapsed", "active", "active", "at risk", "active", "lapsed"]


def test_lifecycle_stage_bad_input():
    frame = _lifecycle_frame()
    with pytest.raises(DataError, match="no repeat buyer"):
        vs.lifecycle_stage(frame[frame["frequency"] == 0])
    with pytest.raises(DataError, match=r"customers\.recency: must be in \[0, T\]"):
        vs.lifecycle_stage(frame.assign(recency=frame["T"] + 1))
    with pytest.raises(ConfigError, match="lapsed_after"):
        vs.lifecycle_stage(frame, at_risk_after=3, lapsed_after=2)
    with pytest.raises(SchemaError, match="customers.p_alive: required column is missing"):
        vs.lifecycle_stage(frame, method="p_alive")
    with pytest.raises(ConfigError, match="method"):
        vs.lifecycle_stage(frame, method="magic")


def test_customer_loss_value_by_hand():
    before = pd.DataFrame({"clv": [100.0, 50.0, 30.0, 20.0],
                           "lifecycle_stage": ["active", "active", "at risk", "lapsed"]}, index=list("abcd"))
    after = pd.DataFrame({"lifecycle_stage": ["lapsed", "active", "lapsed", "lapsed"]}, index=list("abcd"))
    loss = vs.customer_loss_value(before, after)
    assert loss.to_dict() == {"a": 100.0, "b": 0.0, "c": 0.0, "d": 0.0}
    wider = vs.customer_loss_value(before, after, from_stages=("active", "at risk"))
    assert wider.sum() == pytest.approx(130.0)
    with pytest.raises(DataError, match="must contain every customer"):
        vs.customer_loss_value(before, after.iloc[:3])


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
    out = vs.segment_customers(frame)
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
    assert out["tier"].tolist() == vs.value_tiers(frame["clv"]).tolist()
    assert out["interpurchase_time"].to_dict() == pytest.approx(
        {"A": 5.0, "B": 5.0, "C": 4.0, "D": np.nan, "E": np.nan, "F": np.nan, "G": 1.5, "H": 5.0}, nan_ok=True)


def test_segment_customers_without_clv_and_with_overrides():
    frame = _customers().drop(columns=["clv", "p_alive"])
    out = vs.segment_customers(frame, lifecycle_method="cycle", ties="first", tier_cuts=(0.5,))
    assert "tier" not in out.columns and "value_loyalty" not in out.columns
    assert out["lifecycle_stage"].tolist() == vs.lifecycle_stage(frame).tolist()
    # ties="first": order by (frequency, id) D E F | C | B H | G | A = positions 0..7, score 1 + floor(5p/8)
    assert out["f_score"].to_dict() == {"D": 1, "E": 1, "F": 2, "C": 2, "B": 3, "H": 4, "G": 4, "A": 5}
    config = vs.SegmentConfig(tier_cuts=(0.5,), tier_names=("low", "high"))
    two = vs.segment_customers(_customers(), config)
    assert set(two["tier"]) == {"low", "high"}


def test_segment_customers_bad_input():
    frame = _customers()
    with pytest.raises(SchemaError, match="customers.T: required column is missing"):
        vs.segment_customers(frame.drop(columns="T"))
    with pytest.raises(DataError, match="customers.customer_id: must be unique"):
        vs.segment_customers(pd.concat([frame, frame.iloc[:1]]))
    with pytest.raises(ConfigError, match="unknown segment setting"):
        vs.segment_customers(frame, tiers=3)
    with pytest.raises(DataError, match="customers.frequency: is empty"):
        vs.segment_customers(frame.iloc[:0])
    with pytest.raises(DataError, match="customers.clv: has no variation"):
        vs.segment_customers(frame.assign(clv=1.0))


def test_segment_summary_by_hand():
    frame = pd.DataFrame({"tier": ["gold", "lead", "gold", "lead", "lead"],
                          "revenue": [100.0, 10.0, 60.0, 20.0, 10.0], "clv": [50.0, 5.0, 30.0, 10.0, 5.0]})
    summary = vs.segment_summary(frame, "tier")
    assert summary.loc["gold"].to_dict() == pytest.approx(
        {"customers": 2, "customer_share": 0.4, "revenue": 160.0, "revenue_share": 0.8, "mean_clv": 40.0,
         "total_clv": 80.0, "clv_share": 0.8})
    assert summary.loc["lead", "mean_clv"] == pytest.approx(20.0 / 3)
    no_revenue = vs.segment_summary(frame.drop(columns="revenue"), "tier")
    assert "revenue" not in no_revenue.columns and "mean_clv" in no_revenue.columns
    with pytest.raises(SchemaError, match="customers.sales: required column is missing"):
        vs.segment_summary(frame, "tier", revenue="sales")
    two_keys = vs.segment_summary(frame.assign(stage=["new", "new", "lapsed", "new", "new"]), ["tier", "stage"])
    assert two_keys["customers"].sum() == 5 and two_keys.loc[("lead", "new"), "customers"] == 3
