"""The segment job end to end against a real SQLite MLflow store (tmp), with independent oracles: the raw
CDNOW log (revenue, purchases, population), lifetimes (P(alive), expected purchases), the quintile / tier /
stage / quadrant rules re-derived here from their definitions, and a CLV model trained by `train_clv`."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from scipy.stats import rankdata

from custval.config import build_config
from custval.data.io import read_table, read_table_metadata
from custval.errors import ConfigError, CustvalError, DataError
from custval.features.value_segments import SegmentConfig
from custval.jobs.segment import SUMMARY_KINDS, SegmentJobConfig, load_config, segment
from custval.scoring.targeting import systematic_sample

REPO = Path(__file__).resolve().parents[2]
SEGMENT_COLUMNS = ["as_of", "frequency", "recency", "T", "monetary_value", "purchases", "revenue", "recency_days",
                   "expected_purchases", "p_alive", "expected_spend", "clv", "time_since_last",
                   "interpurchase_time", "r_score", "f_score", "m_score", "rfm_cell", "rfm_score", "cycle_class",
                   "lifecycle_stage", "tier", "loss_value", "value_loyalty"]
SAMPLE = ["data.source=cdnow-sample"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("segment_job")
    yield root, f"sqlite:///{root}/mlflow.db"
    mlflow.set_tracking_uri(None)


@pytest.fixture(scope="module")
def run(store):
    root, uri = store
    return segment(load_config(overrides=SAMPLE), out=root / "segments.parquet", tracking_uri=uri)


@pytest.fixture(scope="module")
def raw_sample():
    from custval.data.datasets import cdnow

    return cdnow("sample")


# ------------------------------------------------------------------------------------------------ config
def test_repository_config_is_the_builtin_default():
    config = load_config(REPO / "pipelines" / "segment.yaml")
    assert config == SegmentJobConfig()
    assert config.experiment == "custval-segments" and config.data.source == "cdnow"
    assert isinstance(config.segments, SegmentConfig) and config.segments.tier_cuts == (0.5, 0.8, 0.95)


def test_sections_merge_key_by_key_and_lists_become_tuples(tmp_path):
    path = tmp_path / "seg.yaml"
    path.write_text("clv:\n  horizon: 24M\nsegments:\n  tier_cuts: [0.6, 0.9]\n  tier_names: [low, mid, top]\n"
                    "as_of: 1998-03-31\n")
    config = load_config(path, ["clv.annual_discount_rate=0.08", "data.returns=net"])
    assert config.clv.horizon == "24M" and config.clv.period == "W" and config.clv.annual_discount_rate == 0.08
    assert config.segments.tier_cuts == (0.6, 0.9) and config.segments.tier_names == ("low", "mid", "top")
    assert config.segments.bins == 5 and config.data.returns == "net" and config.data.source == "cdnow"
    assert config.as_of == "1998-03-31"  # a YAML date becomes the ISO string
    # the generic helper builds any config dataclass the same way
    assert build_config(SegmentJobConfig, path) == load_config(path)


@pytest.mark.parametrize(("override", "message"), [
    ("typo=1", "unknown keys"),
    ("segments.typo=1", "unknown keys"),
    ("clv=3", "clv must be a mapping"),
    ("clv.period=Q", "period must be one of"),
    ("clv.horizon=12", "horizon"),
    ("clv.annual_discount_rate=-2", "annual_discount_rate"),
    ("as_of=not-a-date", "as_of"),
    ("rfm_period_months=5", "rfm_period_months"),
    ("migration_by=tier", "migration_by"),
    ("pareto_tops=[0, 0.2]", "pareto_tops"),
    ("rollout.cost_per_contact=1", "together"),
    ("rollout.responses=r.csv", "needs rollout.cost_per_contact"),
])
def test_bad_config_is_a_config_error(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(overrides=[override])


@pytest.mark.parametrize(("cost", "profit", "message"), [(0, 10, "cost_per_contact"), (-1, 10, "cost_per_contact"),
                                                         (1, 0, "net_profit_per_response"),
                                                         (1, -5, "net_profit_per_response")])
def test_non_positive_costs_or_profits_are_rejected(cost, profit, message):
    with pytest.raises(ConfigError, match=message):
        load_config(overrides=[f"rollout.cost_per_contact={cost}", f"rollout.net_profit_per_response={profit}"])


# --------------------------------------------------------------------------------------------- the run
def test_run_logs_config_params_metrics_tables_and_plots(run):
    logged = mlflow.get_run(run.run_id)
    assert mlflow.get_experiment(logged.info.experiment_id).name == "custval-segments"
    assert logged.info.status == "FINISHED"
    assert logged.data.params["data.source"] == "cdnow-sample" and logged.data.params["clv.period"] == "W"
    tags = logged.data.tags
    assert tags["custval.as_of"] == "1998-06-30" and tags["custval.clv_source"] == "fitted"
    assert len(tags["custval.data_fingerprint"]) == 64
    client = mlflow.MlflowClient()
    plots = {a.path for a in client.list_artifacts(run.run_id, "plots")}
    assert plots == {"plots/rfm_heatmap.png", "plots/rfm_heatmap_clv.png", "plots/pareto.png",
                     "plots/tier_pyramid.png"}
    tables = {a.path for a in client.list_artifacts(run.run_id, "tables")}
    assert {f"tables/summary_{k}.csv" for k in SUMMARY_KINDS} | {"tables/pareto.csv", "tables/rfm_migration.csv",
                                                                  "tables/rfm_cells_by_period.csv"} == tables
    metrics = logged.data.metrics
    assert metrics["n_customers"] == 2357 and metrics["top20_revenue_share"] == run.metrics["top20_revenue_share"]
    # the logged summary is the summary of the run, and the logged config loads back as the same config
    local = Path(mlflow.artifacts.download_artifacts(run_id=run.run_id, artifact_path="tables/summary_tier.csv"))
    pd.testing.assert_frame_equal(pd.read_csv(local, index_col=0), run.summaries["tier"].set_axis(
        run.summaries["tier"].index.astype(str), axis=0), check_names=False, check_index_type=False)
    config_file = mlflow.artifacts.download_artifacts(run_id=run.run_id, artifact_path="config.yaml")
    assert load_config(config_file) == load_config(overrides=SAMPLE)


def test_output_has_one_row_per_customer_with_every_segment_column(run):
    frame = pq.read_table(run.output).to_pandas()
    assert len(frame) == 2357 and frame["customer_id"].is_unique
    assert set(SEGMENT_COLUMNS) <= set(frame.columns)
    assert frame[SEGMENT_COLUMNS].notna().drop(columns="interpurchase_time").all().all()
    assert (frame["as_of"] == pd.Timestamp("1998-06-30")).all()
    meta = read_table_metadata(run.output)
    assert meta["custval.run_id"] == run.run_id and meta["custval.as_of"] == "1998-06-30"
    assert meta["custval.clv_source"] == "fitted" and meta["custval.clv_period"] == "W"
    pd.testing.assert_series_equal(frame.set_index("customer_id")["clv"], run.customers["clv"])


def test_inputs_match_the_raw_log(run, raw_sample):
    customers = run.customers
    assert set(customers.index) == set(raw_sample["customer_id"])
    revenue = raw_sample.groupby("customer_id")["amount"].sum()
    np.testing.assert_allclose(customers["revenue"], revenue.reindex(customers.index), rtol=1e-12)
    days = raw_sample.groupby("customer_id")["timestamp"].agg(lambda s: s.dt.normalize().nunique())
    assert (customers["purchases"] == days.reindex(customers.index)).all()
    assert (customers["purchases"] == customers["frequency"] + 1).all()
    np.testing.assert_allclose(customers["recency_days"] / 7, customers["time_since_last"], rtol=1e-12)


def test_summaries_add_up_to_the_population(run, raw_sample):
    total_revenue = raw_sample["amount"].sum()
    for kind, summary in run.summaries.items():
        assert summary["customers"].sum() == 2357, kind
        assert summary["revenue_share"].sum() == pytest.approx(1.0, abs=1e-12), kind
        assert summary["clv_share"].sum() == pytest.approx(1.0, abs=1e-12), kind
        assert summary["revenue"].sum() == pytest.approx(total_revenue, rel=1e-12), kind
    tiers = run.summaries["tier"]["customers"]
    assert run.metrics["customers_tier_platinum"] == tiers["platinum"]


def _tier_codes(values: np.ndarray, cuts) -> np.ndarray:
    """Tier j = number of cuts c with (customers strictly below) / n >= c, from ranks (scipy)."""
    below = rankdata(values, method="min") - 1
    return (below[:, None] / len(values) >= np.asarray(cuts)[None, :]).sum(axis=1)


def test_tier_counts_match_the_cut_points(run):
    clv = run.customers["clv"].to_numpy()
    codes = _tier_codes(clv, (0.5, 0.8, 0.95))
    observed = run.customers["tier"].cat.codes.to_numpy()
    np.testing.assert_array_equal(observed, codes)
    # ties are few: every tier is its nominal share of 2,357 customers up to the largest tie block
    largest_tie = pd.Series(clv).value_counts().iloc[0]
    counts = np.bincount(observed, minlength=4)
    nominal = np.diff([0, 0.5, 0.8, 0.95, 1.0]) * len(clv)
    assert np.all(np.abs(counts - nominal) <= largest_tie + 1), (counts, nominal)


def test_rfm_scores_follow_the_quintile_rule(run):
    c = run.customers
    n = len(c)
    for column, score, sign in (("time_since_last", "r_score", -1), ("frequency", "f_score", 1),
                                ("monetary_value", "m_score", 1)):
        below = rankdata(sign * c[column].to_numpy(), method="min") - 1  # customers strictly worse
        np.testing.assert_array_equal(c[score].to_numpy(), 1 + (5 * below) // n, err_msg=score)
    cell = c["r_score"].astype(str) + c["f_score"].astype(str) + c["m_score"].astype(str)
    assert (c["rfm_cell"] == cell).all() and (c["rfm_score"] == c[["r_score", "f_score", "m_score"]].sum(axis=1)).all()


def test_stages_and_quadrants_follow_their_definitions(run):
    c = run.customers
    repeat = c["frequency"] > 0
    own_cycle = c["recency"] / c["frequency"].where(repeat)
    median_cycle = own_cycle[repeat].median()
    ratio = c["time_since_last"] / own_cycle.fillna(median_cycle)
    expected = np.where(c["T"] <= median_cycle, "new",
                        np.where(ratio <= 2, "active", np.where(ratio <= 4, "at risk", "lapsed")))
    np.testing.assert_array_equal(c["lifecycle_stage"].astype(str).to_numpy(), expected)
    high_value = c["clv"] >= c["clv"].median()
    loyal = c["p_alive"] >= 0.5
    quadrant = np.select([high_value & loyal, high_value & ~loyal, ~high_value & loyal],
                         ["golden", "at risk", "do not over-serve"], "marginal")
    np.testing.assert_array_equal(c["value_loyalty"].astype(str).to_numpy(), quadrant)
    np.testing.assert_allclose(c["loss_value"], np.where(expected == "lapsed", 0.0, c["clv"]))


def test_pareto_shares_agree_with_a_direct_computation(run):
    for column in ("revenue", "clv"):
        values = np.sort(run.customers[column].to_numpy())[::-1]
        k = 0.2 * len(values)  # 471.4 customers: 471 whole ones and 0.4 of the next
        whole = int(np.floor(k))
        share = (values[:whole].sum() + (k - whole) * values[whole]) / values.sum()
        assert run.metrics[f"top20_{column}_share"] == pytest.approx(share, rel=1e-12)
        assert run.pareto.loc[0.2, column] == pytest.approx(share, rel=1e-12)
    assert 0.2 < run.metrics["top20_revenue_share"] < 1


def test_clv_inputs_agree_with_lifetimes(run, raw_sample):
    from lifetimes import BetaGeoFitter
    from lifetimes.utils import summary_data_from_transaction_data

    summary = summary_data_from_transaction_data(raw_sample, "customer_id", "timestamp", observation_period_end="1998-06-30",
                                                 freq="D", freq_multiplier=7)
    bgf = BetaGeoFitter().fit(summary["frequency"], summary["recency"], summary["T"])
    c = run.customers.loc[summary.index]
    p_alive = bgf.conditional_probability_alive(summary["frequency"], summary["recency"], summary["T"])
    np.testing.assert_allclose(c["p_alive"], p_alive, rtol=1e-3)
    purchases = bgf.conditional_expected_number_of_purchases_up_to_time(365.25 / 7, summary["frequency"],
                                                                         summary["recency"], summary["T"])
    np.testing.assert_allclose(c["expected_purchases"], purchases, rtol=1e-3)


def test_period_rfm_counts_and_migration(run, raw_sample):
    first_day = raw_sample.groupby("customer_id")["timestamp"].min()
    for period, column in run.cells_by_period.items():
        end = pd.Timestamp(period) + pd.DateOffset(months=6)
        assert column.sum() == (first_day < end).sum(), period  # everyone acquired by the period's end
    first, last = run.migration_periods
    assert (first, last) == (pd.Timestamp("1997-07-01"), pd.Timestamp("1998-01-01"))
    migration = run.migration
    assert migration.to_numpy().sum() == 2357
    before = run.cells_by_period[str(first.date())]
    np.testing.assert_array_equal(migration.sum(axis=1).reindex(before.index[before > 0]).to_numpy(),
                                  before[before > 0].to_numpy())
    shares = [run.metrics[f"migration_{d}_share"] for d in ("up", "same", "down")]
    assert sum(shares) == pytest.approx(1.0)


def _half_year_log() -> pd.DataFrame:
    """40 customers buying 1..7 times at random days of 1997-01-01..1998-06-30 (a small CDNOW-like log)."""
    rng = np.random.default_rng(7)
    days = pd.date_range("1997-01-01", "1998-06-30")
    rows = [(c, days[d], float(rng.integers(5, 50))) for c in range(40)
            for d in rng.choice(len(days), int(rng.integers(1, 8)), replace=False)]
    return pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount"])


def test_per_period_rfm_edges_follow_the_calendar_grid_up_to_as_of(tmp_path):
    from custval.features.rfm_scores import calendar_period_grid as _period_grid
    from custval.features.rfm_scores import rfm_by_period

    tx = _half_year_log()
    assert tx["timestamp"].max() < pd.Timestamp("1998-07-01")
    days = pd.to_datetime
    # as_of after the last transaction: every half-year up to as_of is a period, only the last one is cut
    assert list(_period_grid(tx, pd.Timestamp("1999-05-31"), 6)) == list(days(
        ["1997-01-01", "1997-07-01", "1998-01-01", "1998-07-01", "1999-01-01", "1999-06-01"]))
    assert list(_period_grid(tx, pd.Timestamp("1998-06-30"), 6)) == list(days(
        ["1997-01-01", "1997-07-01", "1998-01-01", "1998-07-01"]))
    assert list(_period_grid(tx, pd.Timestamp("1998-03-31"), 6)) == list(days(
        ["1997-01-01", "1997-07-01", "1998-01-01", "1998-04-01"]))
    observed = tx[tx["timestamp"] <= "1998-03-31"]
    by_period = rfm_by_period(observed, pd.Timestamp("1998-03-31"), months=6)
    table, pair = by_period.table, by_period.periods
    assert pair == (pd.Timestamp("1997-07-01"), pd.Timestamp("1998-01-01"))
    assert (table.loc[table["period"] == pair[1], "period_end"] == pd.Timestamp("1998-03-31")).all()
    # the empty half-years after the data stay separate periods (not one 11-month "half-year") and, having no
    # purchase to score, are named in the error, which the job raises before fitting the CLV model
    with pytest.raises(DataError, match=r"'1998-07-01', '1999-01-01'.*rfm_period_months=null"):
        rfm_by_period(tx, pd.Timestamp("1999-05-31"), months=6)
    csv = tmp_path / "log.csv"
    tx.to_csv(csv, index=False)
    with pytest.raises(DataError, match=r"'1998-07-01', '1999-01-01'"):
        segment(load_config(overrides=[f"data.source={csv}", "as_of=1999-05-31", "output=null"]),
                tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")


# -------------------------------------------------------------------------------------- CLV from a model
@pytest.fixture(scope="module")
def trained(store):
    from custval.jobs.train_clv import load_config as clv_config
    from custval.jobs.train_clv import train_clv

    _, uri = store
    # daily model on purpose: the segment job must read the period from the model, not use clv.period=W
    return train_clv(clv_config(overrides=[*SAMPLE, "period=D", "output=null"]), tracking_uri=uri)


@pytest.mark.slow
def test_clv_from_a_registered_model_equals_that_models_predictions(store, trained):
    root, uri = store
    model_uri = "models:/custval-clv@champion"
    result = segment(load_config(overrides=[*SAMPLE, f"clv.model_uri={model_uri}"]), out=root / "from_model.csv",
                     tracking_uri=uri)
    assert result.clv_source == model_uri and result.clv_period == "D"
    expected = trained.scores.loc[result.customers.index]
    for column in ("clv", "p_alive", "expected_purchases", "expected_spend"):
        np.testing.assert_allclose(result.customers[column], expected[column], rtol=1e-10, err_msg=column)
    assert result.customers["T"].max() > 500  # days, not weeks
    meta = read_table_metadata(result.output)
    assert meta["custval.clv_source"] == model_uri and meta["custval.clv_model_version"] == trained.registered_version
    assert meta["custval.clv_period"] == "D" and meta["custval.horizon"] == "12M"
    assert len(read_table(result.output)) == 2357
    tags = mlflow.get_run(result.run_id).data.tags
    assert tags["custval.clv_model_run_id"] == trained.run_id


def test_an_unknown_model_is_a_config_error(store):
    _, uri = store
    with pytest.raises(ConfigError, match="cannot load 'models:/no-such-model@champion'"):
        segment(load_config(overrides=[*SAMPLE, "clv.model_uri=models:/no-such-model@champion"]), tracking_uri=uri)


# ---------------------------------------------------------------------------------- rollout and as_of
@pytest.mark.slow
def test_rollout_mails_the_cells_at_or_above_break_even(run, store):
    root, uri = store
    rng = np.random.default_rng(3)
    test = systematic_sample(run.customers, 3, by="rfm_score")
    rate = 0.01 * 1.4 ** (test["rfm_score"].to_numpy() - 3)  # response rises with the RFM score
    responses = pd.DataFrame({"customer_id": test.index, "responded": (rng.random(len(test)) < rate).astype(int)})
    path = root / "responses.csv"
    responses.to_csv(path, index=False)
    result = segment(load_config(overrides=[*SAMPLE, f"rollout.responses={path}", "rollout.cell=rfm_score",
                                            "rollout.cost_per_contact=1", "rollout.net_profit_per_response=25",
                                            "output=null"]), tracking_uri=uri)
    assert result.output is None and result.metrics["break_even_rate"] == pytest.approx(0.04)
    by_score = responses.assign(score=test["rfm_score"].to_numpy()).groupby("score")["responded"].mean()
    chosen = {str(s) for s, r in by_score.items() if r >= 0.04}
    assert set(result.rollout.selected_cells) == chosen and 0 < len(chosen) < len(by_score)
    flag = result.customers["rollout"]
    expected = result.customers["rfm_score"].astype(str).isin(chosen) & ~result.customers.index.isin(test.index)
    assert flag.equals(expected.rename("rollout"))
    assert result.metrics["rollout_contacts"] == expected.sum()
    assert "tables/rollout_cells.csv" in result.tables


def test_responses_of_unknown_customers_are_rejected(store):
    root, uri = store
    path = root / "bad_responses.csv"
    pd.DataFrame({"customer_id": [1, 999_999], "responded": [1, 0]}).to_csv(path, index=False)
    with pytest.raises(DataError, match="responses.customer_id"):
        segment(load_config(overrides=[*SAMPLE, f"rollout.responses={path}", "rollout.cost_per_contact=1",
                                       "rollout.net_profit_per_response=25", "output=null"]), tracking_uri=uri)


def test_an_earlier_as_of_ignores_later_transactions(store, raw_sample):
    _, uri = store
    result = segment(load_config(overrides=[*SAMPLE, "as_of=1997-12-31", "output=null"]), tracking_uri=uri)
    seen = raw_sample[raw_sample["timestamp"] <= "1997-12-31"]
    assert len(result.customers) == seen["customer_id"].nunique()
    assert result.customers["revenue"].sum() == pytest.approx(seen["amount"].sum(), rel=1e-12)
    assert result.migration_periods == (pd.Timestamp("1997-01-01"), pd.Timestamp("1997-07-01"))
    assert (result.customers["T"] * 7 == (pd.Timestamp("1997-12-31") - seen.groupby("customer_id")["timestamp"].min()
                                          .dt.normalize()).dt.days.reindex(result.customers.index)).all()


def test_a_failed_run_leaves_the_earlier_output_intact(run, store):
    root, uri = store
    before = Path(run.output).read_bytes()
    with pytest.raises(CustvalError, match="as_of"):
        segment(load_config(overrides=[*SAMPLE, "as_of=1990-01-01"]), out=run.output, tracking_uri=uri)
    with pytest.raises(CustvalError):
        segment(load_config(overrides=[*SAMPLE, "segments.tier_cuts=[0.5, 0.4]"]), out=run.output,
                tracking_uri=uri)
    assert Path(run.output).read_bytes() == before
    assert sorted(p.name for p in Path(run.output).parent.glob(".tmp-*")) == []


def test_a_retail_csv_with_mapped_columns_string_ids_and_net_returns(store, tmp_path):
    from custval.data.simulate import simulate_retail

    _, uri = store
    sim = simulate_retail(3_000, seed=5, return_rate=0.05)
    raw = sim.transactions.assign(customer_id="C" + sim.transactions["customer_id"].astype(str)).rename(
        columns={"customer_id": "CustomerID", "timestamp": "InvoiceDate", "amount": "value"})
    path = tmp_path / "retail.csv"
    raw.to_csv(path, index=False)
    result = segment(load_config(overrides=[
        f"data.source={path}", "data.columns={customer_id: CustomerID, timestamp: InvoiceDate, amount: value}",
        "data.returns=net", "data.duplicates=error", "clv.period=D", "rfm_period_months=3",
        "migration_by=rfm_score"]), out=tmp_path / "retail.parquet", tracking_uri=uri)
    customers = result.customers
    assert len(customers) == 3_000 and customers.index[0].startswith("C")
    # net returns: a return on its own day is no purchase and does not reduce revenue; on an order day it does
    day = [raw["CustomerID"], pd.to_datetime(raw["InvoiceDate"]).dt.normalize()]
    day_total = raw.groupby(day)["value"].transform("sum")
    kept = raw[~((raw.groupby(day)["value"].transform("min") < 0) & (day_total <= 1e-9))]
    np.testing.assert_allclose(customers["revenue"], kept.groupby("CustomerID")["value"].sum()
                               .reindex(customers.index), rtol=1e-9)
    first = pd.to_datetime(raw["InvoiceDate"]).dt.normalize().groupby(raw["CustomerID"]).min()
    assert (customers["T"] == (result.as_of - first.reindex(customers.index)).dt.days).all()  # period D
    assert result.migration_periods == (pd.Timestamp("2011-07-01"), pd.Timestamp("2011-10-01"))
    assert set(result.migration.index) <= {str(s) for s in range(3, 16)} | {"(none)"}
    assert pq.read_table(result.output).to_pandas()["customer_id"].str.startswith("C").all()
