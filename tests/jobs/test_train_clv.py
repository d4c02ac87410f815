"""The CLV pipeline end to end against a real SQLite MLflow store, cross-checked with lifetimes."""

import warnings
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from lifetimes import BetaGeoFitter

from custval.data.io import read_table_metadata
from custval.data.simulate import simulate_bgnbd
from custval.errors import ConfigError, CustvalError, CustvalWarning, DataError
from custval.jobs.train_clv import CLVConfig, load_config, train_clv

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("clv_job")
    return root, f"sqlite:///{root}/mlflow.db"


@pytest.fixture(scope="module")
def first_run(store):
    root, uri = store
    config = load_config(overrides=["data.source=cdnow-sample", f"output={root}/scores.parquet"])
    yield train_clv(config, tracking_uri=uri)
    mlflow.set_tracking_uri(None)


def test_repository_config_is_the_builtin_default():
    assert load_config(REPO / "pipelines" / "clv.yaml") == CLVConfig()


def test_calibration_fit_reproduces_the_published_cdnow_parameters(first_run):
    params = first_run.calibration_params
    assert [round(params[f"bgnbd_{k}"], 3) for k in ("r", "alpha", "a", "b")] == [0.243, 4.414, 0.793, 2.426]
    assert round(params["bgnbd_log_likelihood"], 1) == -9582.4
    # Fader & Hardie (2013) Gamma-Gamma, from the raw log: gamma 15.4435 rounds to the published 15.44
    # (the rounded zbar column of lifetimes' summary csv gives 15.4477 instead)
    assert [round(params[f"gg_{k}"], 2) for k in ("p", "q", "gamma")] == [6.25, 3.74, 15.44]


def test_holdout_metrics_agree_with_lifetimes(first_run):
    from lifetimes.utils import calibration_and_holdout_data

    from custval.data.datasets import cdnow

    tx = cdnow("sample")
    split = calibration_and_holdout_data(tx, "customer_id", "timestamp", calibration_period_end="1997-09-30",
                                         observation_period_end="1998-06-30", freq="D", freq_multiplier=7,
                                         monetary_value_col="amount")
    bgf = BetaGeoFitter().fit(split["frequency_cal"], split["recency_cal"], split["T_cal"])
    predicted = bgf.conditional_expected_number_of_purchases_up_to_time(
        split["duration_holdout"], split["frequency_cal"], split["recency_cal"], split["T_cal"])
    assert first_run.metrics["holdout_actual_total"] == split["frequency_holdout"].sum()
    assert first_run.metrics["holdout_predicted_total"] == pytest.approx(predicted.sum(), rel=1e-4)
    assert first_run.metrics["holdout_mae"] == pytest.approx(
        np.mean(np.abs(predicted - split["frequency_holdout"])), rel=1e-4)


def test_run_logs_params_metrics_plots_provenance_and_a_signed_model(first_run):
    run = mlflow.get_run(first_run.run_id)
    assert mlflow.get_experiment(run.info.experiment_id).name == "custval-clv"
    assert run.data.params["period"] == "W" and run.data.params["data.source"] == "cdnow-sample"
    for metric in ("bgnbd_r", "bgnbd_r_se", "gg_p", "gg_q", "gg_gamma", "holdout_mae", "holdout_rmse",
                   "holdout_total_rel_error", "total_clv"):
        assert np.isfinite(run.data.metrics[metric]), metric
    tags = run.data.tags
    assert len(tags["custval.data_fingerprint"]) == 64
    assert tags["custval.units"].startswith("1W = 7 days")
    assert "custval.version.lifetimes" in tags and tags["custval.git_commit"]
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(first_run.run_id, "plots")}
    assert {"plots/tracking_cumulative.png", "plots/calibration_holdout.png"} <= artifacts
    info = mlflow.models.get_model_info(first_run.model_uri)
    assert [c["name"] for c in info.signature.inputs.to_dict()] == ["frequency", "recency", "T", "monetary_value"]
    assert [c["name"] for c in info.signature.outputs.to_dict()] == ["expected_purchases", "p_alive",
                                                                     "expected_spend", "clv"]
    assert "python_model.pkl" not in str(mlflow.artifacts.list_artifacts(first_run.model_uri))


def test_champion_model_reproduces_the_run_scores(first_run):
    assert first_run.promotion.promoted
    model = mlflow.pyfunc.load_model("models:/custval-clv@champion")
    rows = first_run.scores.head(200)
    served = model.predict(rows[["frequency", "recency", "T", "monetary_value"]])
    for column in ("expected_purchases", "p_alive", "expected_spend", "clv"):
        np.testing.assert_allclose(served[column].to_numpy(), rows[column].to_numpy(), rtol=1e-12)


def test_scores_file_is_complete_and_carries_its_provenance(first_run):
    frame = pq.read_table(first_run.output).to_pandas()
    assert len(frame) == 2357 and frame["customer_id"].is_unique
    assert set(frame.columns) >= {"customer_id", "as_of", "p_alive", "expected_purchases", "expected_spend", "clv"}
    meta = read_table_metadata(first_run.output)
    assert meta["custval.run_id"] == first_run.run_id and meta["custval.model_version"] == first_run.registered_version
    assert (frame["p_alive"].between(0, 1)).all() and (frame["clv"] >= 0).all()


def test_a_worse_challenger_does_not_take_champion_and_a_failed_run_keeps_earlier_outputs(first_run, store):
    root, uri = store
    before = Path(first_run.output).read_bytes()
    heavy = load_config(overrides=["data.source=cdnow-sample", "penalizer=0.1", f"output={root}/scores.parquet"])
    worse = train_clv(heavy, tracking_uri=uri)
    assert worse.metrics["holdout_mae"] > first_run.metrics["holdout_mae"]
    assert not worse.promotion.promoted
    client = mlflow.MlflowClient()
    assert str(client.get_model_version_by_alias("custval-clv", "champion").version) == first_run.registered_version
    assert str(client.get_model_version_by_alias("custval-clv", "challenger").version) == worse.registered_version
    written = Path(worse.output).read_bytes()
    assert written != before
    with pytest.raises(DataError):
        train_clv(load_config(overrides=["data.source=cdnow-sample", "calibration_end=1990-01-01",
                                         f"output={root}/scores.parquet"]), tracking_uri=uri)
    assert Path(worse.output).read_bytes() == written


def test_without_refit_the_calibration_model_scores_customers_as_of_calibration_end(first_run, store):
    _, uri = store
    config = load_config(overrides=["data.source=cdnow-sample", "refit_full=false", "output=null",
                                    "registered_model=null"])
    result = train_clv(config, tracking_uri=uri)
    assert (result.scores["as_of"] == pd.Timestamp("1997-09-30")).all()
    assert result.params == pytest.approx(first_run.calibration_params, rel=1e-9)
    assert result.scores["T"].max() == pytest.approx(272 / 7)  # published calibration T = 38.86 weeks


@pytest.mark.parametrize(("override", "message"), [
    ("period=Q", "period must be one of"),
    ("horizon=12", "horizon"),
    ("annual_discount_rate=-2", "annual_discount_rate"),
    ("annual_discount_rate=true", "annual_discount_rate"),
    ("penalizer=.inf", "penalizer"),
    ("typo_key=1", "unknown keys"),
    ("calibration_end=not-a-date", "calibration_end"),
])
def test_bad_config_is_a_config_error(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(overrides=[override])


def test_exact_duplicate_rows_of_a_csv_are_an_error_by_default(tmp_path):
    csv = tmp_path / "tx.csv"
    csv.write_text("customer_id,timestamp,amount\n1,1997-01-01,10.0\n2,1997-01-02,5.0\n"
                   "1,1997-01-01,10.0\n2,1997-03-02,7.5\n")
    config = load_config(overrides=[f"data.source={csv}", "output=null"])
    assert config.data.duplicates is None  # the source's default, "error" for a file
    with pytest.raises(DataError, match="duplicate"):
        train_clv(config, tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    mlflow.set_tracking_uri(None)


@pytest.mark.parametrize("policy", ["ignore", 3])
def test_an_unknown_duplicates_policy_is_a_config_error(policy):
    with pytest.raises(ConfigError, match="data.duplicates must be one of"):
        load_config(overrides=[f"data.duplicates={policy}"])


def test_calibration_end_after_observation_end_is_rejected(store):
    _, uri = store
    with pytest.raises(CustvalError, match="calibration_end"):  # now up front, when the config is built
        config = load_config(overrides=["data.source=cdnow-sample", "calibration_end=1998-07-01", "output=null"])
        train_clv(config, tracking_uri=uri)


def test_holdout_duration_replaces_calibration_end(store):
    config = load_config(overrides=["calibration_end=null", "holdout=39W", "observation_end=1998-06-30"])
    from custval.features.datasets import calibration_window

    tx = pd.DataFrame({"customer_id": [1, 2], "timestamp": pd.to_datetime(["1997-01-01", "1998-06-30"]),
                       "amount": [1.0, 2.0]})
    calibration_end, observation_end = calibration_window(tx, calibration_end=config.calibration_end,
                                                          observation_end=config.observation_end,
                                                          holdout=config.holdout)
    assert observation_end - calibration_end == pd.Timedelta(days=273)


def test_a_failed_write_keeps_the_champion_and_the_file_it_wrote(first_run, store, monkeypatch):
    """The job registers the new version as challenger, writes, and promotes only then: with the disk full
    during the write, the champion is still the version whose scores are on disk (promoting first, as the job
    once did, would move champion to a version whose scores were never written: the rerun's holdout MAE
    equals the champion's, so it would be promoted)."""
    root, uri = store
    target = root / "written_by_the_champion.parquet"
    written = train_clv(load_config(overrides=["data.source=cdnow-sample", f"output={target}"]), tracking_uri=uri)
    assert written.promotion.promoted  # same data, same holdout MAE as the champion: it takes champion
    before = target.read_bytes()
    client = mlflow.MlflowClient(uri)
    champion = client.get_model_version_by_alias("custval-clv", "champion").version
    assert read_table_metadata(target)["custval.model_version"] == str(champion) == written.registered_version
    real = pq.write_table

    def disk_full(table, where, **kwargs):
        if target.name not in str(where):
            return real(table, where, **kwargs)
        Path(where).write_bytes(b"PAR1 half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pq, "write_table", disk_full)
    with pytest.raises(ConfigError, match=r"^output .*written_by_the_champion\.parquet.*No space left on device"):
        train_clv(load_config(overrides=["data.source=cdnow-sample", f"output={target}"]), tracking_uri=uri)
    assert target.read_bytes() == before and not list(target.parent.glob(".tmp-*"))
    assert client.get_model_version_by_alias("custval-clv", "champion").version == champion
    rerun = client.search_runs([first_run.experiment_id], order_by=["attributes.start_time DESC"], max_results=1)[0]
    assert rerun.info.status == "FAILED" and "custval.registry.promoted" not in rerun.data.tags


def test_the_champion_is_compared_only_on_the_same_holdout_window(isolated_store):
    """A version evaluated on a shorter holdout has a smaller MAE (fewer purchases to miss), which says nothing
    against one evaluated on a longer holdout: it stays challenger, with the reason. On the same window the
    versions are compared as before."""
    base = ["data.source=cdnow-sample", "output=null", "refit_full=false", "registered_model=custval-clv-window"]
    first = train_clv(load_config(overrides=base), tracking_uri=isolated_store)
    assert first.promotion.promoted
    tags = mlflow.get_run(first.run_id).data.tags
    assert tags["custval.holdout_window"] == "1997-09-30..1998-06-30"
    assert tags["custval.bgnbd_limit"] == tags["custval.gg_limit"] == "full"
    shorter = train_clv(load_config(overrides=[*base, "observation_end=1997-10-05"]), tracking_uri=isolated_store)
    assert shorter.metrics["holdout_mae"] < first.metrics["holdout_mae"]
    assert not shorter.promotion.promoted
    assert shorter.promotion.reason == (
        f"custval.holdout_window '1997-09-30..1997-10-05' differs from champion v{first.registered_version}'s "
        "'1997-09-30..1998-06-30': holdout_mae not comparable, kept champion")
    client = mlflow.MlflowClient()
    assert str(client.get_model_version_by_alias("custval-clv-window", "champion").version) == first.registered_version
    assert str(client.get_model_version_by_alias("custval-clv-window", "challenger").version) == shorter.registered_version
    again = train_clv(load_config(overrides=base), tracking_uri=isolated_store)
    assert again.promotion.promoted and again.promotion.champion_version == first.registered_version
    assert again.promotion.reason.startswith(f"holdout_mae {again.metrics['holdout_mae']:.6g} vs champion "
                                             f"v{first.registered_version}")


def test_a_log_without_visible_dropout_trains_on_the_nbd_limit(isolated_store, tmp_path):
    """An Online-Retail-like year (2010-12-01..2011-12-09, calibration end 2011-06-30) in which nobody is seen
    to drop out: the run goes through on the NBD limit, says so, and the registered model scores as it did."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the simulator's geometric draw at p ~ 1e-300
        sim = simulate_bgnbd(4300, r=1.0, alpha=4.0, a=0.01, b=1000.0, spend_p=6.25, spend_q=3.74,
                             spend_gamma=15.44, start="2010-12-01", end="2011-12-10", period="W", seed=1)
    source = tmp_path / "orders.csv"
    sim.transactions.to_csv(source, index=False)
    config = load_config(overrides=[f"data.source={source}", "calibration_end=2011-06-30",
                                    "observation_end=2011-12-09", "output=null", "registered_model=custval-clv-nbd"])
    with pytest.warns(CustvalWarning, match="no customer has been seen to drop out"):
        result = train_clv(config, tracking_uri=isolated_store)
    tags = mlflow.get_run(result.run_id).data.tags
    assert tags["custval.calibration_bgnbd_limit"] == tags["custval.bgnbd_limit"] == "nbd"
    assert tags["custval.holdout_window"] == "2011-06-30..2011-12-09"
    assert {"bgnbd_r", "bgnbd_alpha", "bgnbd_r_se", "bgnbd_alpha_se"} <= set(result.params)
    assert "bgnbd_a" not in result.params and np.isfinite(result.metrics["holdout_mae"])
    assert (result.scores["p_alive"] == 1.0).all()
    served = mlflow.pyfunc.load_model("models:/custval-clv-nbd@champion").predict(
        result.scores[["frequency", "recency", "T", "monetary_value"]].head(300))
    for column in ("expected_purchases", "p_alive", "expected_spend", "clv"):
        np.testing.assert_allclose(served[column].to_numpy(), result.scores[column].head(300).to_numpy(), rtol=1e-12)
