"""The campaign simulator: its log against the base simulation, its truth against realised outcomes.

Oracles: the base churn simulation (rows outside the campaign windows are its rows), outcomes re-read from the
log with pandas, calibration of each arm's conversion probability and expected spend within binomial /
sampling error, and the truth's own definition (uplift = p_arm - p_control).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from custval.data.simulate_campaign import (
    CONTROL,
    CROSSSELL,
    TABLE_COLUMNS,
    WINBACK,
    campaign_table,
    simulate_campaigns,
)
from custval.errors import ConfigError

DAY = pd.Timedelta(days=1)


@pytest.fixture(scope="module")
def sim():
    return simulate_campaigns(20_000, seed=4)


def window_outcomes(sim, campaign_id: str) -> pd.DataFrame:
    """(converted, spend) per contacted customer, read from the log with pandas."""
    log = sim.campaigns[sim.campaigns["campaign_id"] == campaign_id]
    tx = sim.transactions.merge(log[["customer_id", "sent_at"]], on="customer_id")
    inside = tx[(tx["timestamp"] >= tx["sent_at"]) & (tx["timestamp"] < tx["sent_at"] + sim.response_days * DAY)]
    got = inside.groupby("customer_id")["amount"].agg(["size", "sum"])
    out = pd.DataFrame(index=pd.Index(log["customer_id"].to_numpy(), name="customer_id"))
    out["converted"] = (got["size"].reindex(out.index).fillna(0) > 0).astype(int)
    out["spend"] = got["sum"].reindex(out.index).fillna(0.0)
    return out


def test_same_seed_identical_and_base_is_the_churn_simulation():
    one, again, other = (simulate_campaigns(2_000, seed=s) for s in (5, 5, 6))
    for name in ("transactions", "campaigns", "truth"):
        pd.testing.assert_frame_equal(getattr(one, name), getattr(again, name), check_exact=True)
    assert not one.campaigns.equals(other.campaigns)
    from custval.data.simulate_churn import simulate_churn

    pd.testing.assert_frame_equal(one.base.transactions, simulate_churn(2_000, seed=5).transactions)


def test_log_contracts_and_populations(sim):
    log, tx = sim.campaigns, sim.transactions
    assert list(log.columns) == ["customer_id", "campaign_id", "treatment", "sent_at"]
    assert log["customer_id"].dtype == np.int64 and log["sent_at"].dtype == "datetime64[ns]"
    assert isinstance(log["treatment"].dtype, pd.StringDtype)
    assert list(tx.columns) == ["customer_id", "timestamp", "amount", "order_id", "category"]
    assert tx["order_id"].tolist() == list(range(1, len(tx) + 1)) and (tx["amount"] > 0).all()
    assert tx["timestamp"].max() < sim.observation_end
    assert not log["customer_id"].duplicated().any()  # the two populations are apart
    for campaign_id, design in sim.designs.items():
        rows = log[log["campaign_id"] == campaign_id]
        assert set(rows["treatment"]) == set(design.arms)
        day = design.send_day
        offset = rows["sent_at"] - day
        assert (offset >= pd.Timedelta(hours=9)).all() and (offset < pd.Timedelta(hours=12)).all()
        before = sim.base.transactions[sim.base.transactions["timestamp"] < day]
        last = before.groupby("customer_id")["timestamp"].max().dt.normalize()
        recency = ((day - last) / DAY).reindex(rows["customer_id"].to_numpy())
        if campaign_id == WINBACK:
            assert (recency > 120).all()
            assert len(rows) == int((((day - last) / DAY) > 120).sum())
        else:
            assert (recency <= 90).all()
            assert len(rows) == int((((day - last) / DAY) <= 90).sum())
    assert sim.designs[CROSSSELL].arms == (CONTROL, "email", "discount")
    assert sim.designs[WINBACK].arms == (CONTROL, "offer")


def test_a_late_winback_never_contacts_a_crosssell_customer():
    """Sent three months after the crosssell, the winback still reaches only customers lapsed in the log as
    simulated (crosssell responses included) and none of the crosssell's."""
    sim = simulate_campaigns(3_000, seed=1, winback_day="2024-09-02")
    log, tx = sim.campaigns, sim.transactions
    assert not log["customer_id"].duplicated().any()
    day = sim.designs[WINBACK].send_day
    winback = log.loc[log["campaign_id"] == WINBACK, "customer_id"]
    last = tx[tx["timestamp"] < day].groupby("customer_id")["timestamp"].max().dt.normalize()
    assert ((day - last.reindex(winback.to_numpy())) / DAY > 120).all()
    crosssell = set(log.loc[log["campaign_id"] == CROSSSELL, "customer_id"])
    lapsed = set(last.index[((day - last) / DAY) > 120])
    assert set(winback) == lapsed - crosssell and lapsed & crosssell


def test_rows_outside_the_response_windows_are_the_base_rows(sim):
    base, tx, log = sim.base.transactions, sim.transactions, sim.campaigns
    key = ["customer_id", "timestamp", "amount", "category"]
    contacted = set(log["customer_id"])
    untouched = ~base["customer_id"].isin(contacted)
    pd.testing.assert_frame_equal(base.loc[untouched, key].reset_index(drop=True),
                                  tx.loc[~tx["customer_id"].isin(contacted), key].reset_index(drop=True))
    sent = log.set_index("customer_id")["sent_at"]

    def before_sent(frame: pd.DataFrame) -> pd.DataFrame:
        frame_sent = sent.reindex(frame["customer_id"].to_numpy()).to_numpy()
        return frame.loc[frame["timestamp"].to_numpy() < frame_sent, key].reset_index(drop=True)

    pd.testing.assert_frame_equal(before_sent(base), before_sent(tx))


def test_outcomes_in_the_log_are_the_truth(sim):
    for campaign_id in sim.designs:
        truth = sim.campaign_truth(campaign_id)
        read = window_outcomes(sim, campaign_id)
        np.testing.assert_array_equal(read["converted"].to_numpy(), truth["converted"].to_numpy())
        np.testing.assert_allclose(read["spend"].to_numpy(), truth["spend"].to_numpy(), atol=1e-6)


def test_each_arm_is_calibrated_on_conversion_and_spend(sim, assert_calibrated):
    for campaign_id, design in sim.designs.items():
        truth = sim.campaign_truth(campaign_id)
        for arm in design.arms:
            rows = truth[truth["treatment"] == arm]
            assert_calibrated(rows[f"p_{arm}"].to_numpy(), rows["converted"].to_numpy(), n_bins=5)
            # spend: mean realised vs mean expected within 4 standard errors of the mean
            gap = rows["spend"].mean() - rows[f"spend_{arm}"].mean()
            assert abs(gap) < 4 * rows["spend"].std() / math.sqrt(len(rows)), (campaign_id, arm, gap)


def test_truth_definitions_sleeping_dogs_and_concentrated_uplift(sim):
    for campaign_id, design in sim.designs.items():
        truth = sim.campaign_truth(campaign_id)
        uplifts = []
        for arm in design.treatments:
            u = truth[f"uplift_{arm}"]
            np.testing.assert_allclose(u, truth[f"p_{arm}"] - truth[f"p_{CONTROL}"])
            np.testing.assert_allclose(truth[f"spend_uplift_{arm}"], truth[f"spend_{arm}"] - truth["spend_control"])
            assert 0.05 < (u < 0).mean() < 0.45, (campaign_id, arm)  # sleeping dogs, not a majority
            assert u.mean() > 0.03
            top = u[u >= u.quantile(0.9)]
            assert top.mean() >= 2 * u.mean(), (campaign_id, arm, top.mean(), u.mean())
            uplifts.append(u.to_numpy())
        np.testing.assert_array_equal(truth["sleeping_dog"].to_numpy(), np.min(uplifts, axis=0) < 0)
    assert {c for c in sim.campaign_truth(WINBACK).columns if c.startswith("p_")} == {"p_control", "p_offer"}
    assert "second_life_value" not in sim.campaign_truth(CROSSSELL).columns


def test_treated_customers_respond_more_where_the_truth_says(sim):
    """Realised uplift in the top and bottom thirds by true uplift: large and positive vs about the truth."""
    truth = sim.campaign_truth(WINBACK)
    u = truth["uplift_offer"]
    for part in (u >= u.quantile(2 / 3), u <= u.quantile(1 / 3)):
        rows = truth[part]
        treated = rows["treatment"] == "offer"
        realised = rows.loc[treated, "converted"].mean() - rows.loc[~treated, "converted"].mean()
        se = math.sqrt(sum(r["converted"].var() / len(r) for r in (rows[treated], rows[~treated])))
        assert abs(realised - rows["uplift_offer"].mean()) < 4 * se


def test_no_effect_at_scale_zero():
    sim = simulate_campaigns(3_000, seed=2, effect_scale=0.0)
    for campaign_id, design in sim.designs.items():
        truth = sim.campaign_truth(campaign_id)
        for arm in design.treatments:
            np.testing.assert_array_equal(truth[f"uplift_{arm}"].to_numpy(), 0.0)


def test_winback_converters_start_a_second_life(sim):
    truth = sim.campaign_truth(WINBACK)
    assert (truth["second_life_value"] > 0).all()
    conv = truth[truth["converted"] == 1]
    tx = sim.transactions.merge(conv["sent_at"].rename("sent").reset_index(), on="customer_id")
    later = tx[tx["timestamp"] >= tx["sent"] + sim.response_days * DAY].groupby("customer_id")["amount"].sum()
    realised = later.reindex(conv.index).fillna(0.0)
    gap = realised.mean() - conv["second_life_value"].mean()
    assert abs(gap) < 4 * realised.std() / math.sqrt(len(realised)) + 1e-9
    assert (realised > 0).mean() > 0.2


def test_campaign_table_export_and_truth(sim):
    ct = campaign_table(sim, CROSSSELL, seed=1)
    table, truth = ct.table, ct.truth
    assert tuple(table.columns) == TABLE_COLUMNS
    assert table["CustomerRef"].is_unique and table["CustomerRef"].str.match(r"^CU-\d{6}$").all()
    assert table["SendDate"].eq("2024-06-03").all() and set(table["Group"]) == {"control", "email", "discount"}
    assert set(table["Visited"]) == {"Yes", "No"} and set(table["Converted"]) == {0, 1}
    assert (table.loc[table["Converted"] == 1, "Visited"] == "Yes").all()
    assert (table["Income"] == " ").any() and (table["Channel"] == "").any()
    assert table["Age"].isna().any()
    base = sim.campaign_truth(CROSSSELL)
    np.testing.assert_array_equal(table["Converted"].to_numpy(), base["converted"].to_numpy())
    np.testing.assert_allclose(table["Revenue"].to_numpy(), base["spend"].to_numpy(), atol=0.006)
    np.testing.assert_array_equal(table["DaysSinceLastOrder"].to_numpy(), base["recency_days"].to_numpy())
    assert list(truth.index) == list(table["CustomerRef"])
    for arm in ct.arms:
        np.testing.assert_allclose(truth[f"uplift_{arm}"].to_numpy(), base[f"uplift_{arm}"].to_numpy())
    visited = (table["Visited"] == "Yes").to_numpy()
    for arm in ("control", *ct.arms):
        rows = (table["Group"] == arm).to_numpy()
        p = truth.loc[rows, f"p_visit_{arm}"].to_numpy()
        se = math.sqrt(np.sum(p * (1 - p))) / rows.sum()
        assert abs(visited[rows].mean() - p.mean()) < 4 * se


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"n_customers": 0}, "n_customers"),
    ({"response_days": 0}, "response_days"),
    ({"lapsed_days": 60}, "lapsed_days"),
    ({"winback_day": "2024-05-01"}, "winback_day must be after"),
    ({"crosssell_day": "2024-06-03 10:00"}, "crosssell_day"),
    ({"winback_day": "2024-12-20"}, "winback_day"),
    ({"effect_scale": -1.0}, "effect_scale"),
])
def test_bad_arguments_are_config_errors(kwargs, needle):
    with pytest.raises(ConfigError, match=needle):
        simulate_campaigns(**{"n_customers": 200, **kwargs})


def test_unknown_campaign_is_a_config_error(sim):
    with pytest.raises(ConfigError, match="campaign_id must be one of"):
        sim.campaign_truth("spring")
