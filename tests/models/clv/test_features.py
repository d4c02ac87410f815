"""CLVFeatures: BG/NBD outputs as snapshot features, fitted on the rows before the cutoff alone."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from custval.data.simulate import simulate_retail
from custval.errors import DataError
from custval.features.rfm import rfm_summary
from custval.features.snapshots import build_snapshot, build_snapshots
from custval.models.clv.bgnbd import BetaGeo
from custval.models.clv.features import CLVFeatures


@pytest.fixture(scope="module")
def log() -> pd.DataFrame:
    return simulate_retail(2000, seed=4, start="2022-01-01", end="2023-07-01").transactions


@pytest.mark.parametrize("period", ["W", "D"])
def test_matches_betageo_fitted_on_the_rfm_summary_of_the_pre_cutoff_rows(log, period):
    cutoff, h = pd.Timestamp("2023-02-01"), 60
    snap = build_snapshot(log, cutoff, horizon_days=h, extra_features=CLVFeatures(h, period=period))
    # the reference: the rows before the cutoff picked here, summarised up to the day before the cutoff
    before = log[log["timestamp"] < cutoff]
    summary = rfm_summary(before, cutoff - pd.Timedelta(days=1), period)
    model = BetaGeo().fit(summary)
    s = summary.loc[snap["customer_id"]]
    horizon = h / 7 if period == "W" else h
    np.testing.assert_allclose(snap["p_alive"], model.p_alive(s), rtol=1e-12)
    np.testing.assert_allclose(snap[f"expected_purchases_{h}d"], model.expected_purchases(s, horizon), rtol=1e-12)
    assert 0 < snap["p_alive"].min() and snap["p_alive"].max() <= 1
    assert snap[f"expected_purchases_{h}d"].std() > 0


def test_tz_aware_log_gives_the_same_features(log):
    cutoff = pd.Timestamp("2023-02-01")
    naive = CLVFeatures(90)(log[log["timestamp"] < cutoff], cutoff)
    tz = log.assign(timestamp=log["timestamp"].dt.tz_localize("America/New_York"))
    snap = build_snapshot(tz, cutoff, extra_features=CLVFeatures(90))
    np.testing.assert_allclose(snap["p_alive"], naive.loc[snap["customer_id"], "p_alive"], rtol=1e-12)


def test_an_early_cutoff_without_repeat_buyers_names_the_cutoff(log):
    first = log["timestamp"].min().normalize()
    cutoff = first + pd.Timedelta(days=2)  # two days of history: nobody has bought on two days yet
    with pytest.raises(DataError, match=rf"cutoff {cutoff.date()}.*repeat buyers.*before the cutoff") as info:
        build_snapshot(log, cutoff, extra_features=CLVFeatures(90))
    assert info.value.example == str(cutoff.date())
    assert isinstance(info.value.__cause__, DataError) and info.value.__cause__.table == "rfm"
    # the same in a stacked build: the failing cutoff is the one named
    with pytest.raises(DataError, match=str(cutoff.date())):
        build_snapshots(log, [cutoff, cutoff + pd.Timedelta(days=200)], extra_features=CLVFeatures(90))
