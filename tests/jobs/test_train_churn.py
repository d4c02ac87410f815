"""The churn pipeline end to end against a real SQLite MLflow store, on simulated data whose true churn
probabilities (the simulator's Bayes oracle) are known, and on a telecom-like customer table."""

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import brier_score_loss, roc_auc_score

from custval.data.io import read_table, read_table_metadata
from custval.data.simulate_churn import simulate_churn
from custval.data.simulate_table import simulate_churn_table
from custval.errors import ConfigError, CustvalError, DataError, SchemaError
from custval.features.snapshots import build_snapshot, feature_columns
from custval.jobs.train_churn import ChurnConfig, load_config, train_churn

REPO = Path(__file__).resolve().parents[2]
N_CUSTOMERS = 4000
SMALL = [f"simulate.n_customers={N_CUSTOMERS}", "simulate.seed=3", "model.tree.min_samples_leaf=50"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("churn_job")
    yield root, f"sqlite:///{root}/mlflow.db"
    mlflow.set_tracking_uri(None)


@pytest.fixture(scope="module")
def sim():
    return simulate_churn(N_CUSTOMERS, seed=3, start="2023-01-01", end="2025-01-01")


@pytest.fixture(scope="module")
def first_run(store):
    root, uri = store
    return train_churn(load_config(overrides=[*SMALL, f"output={root}/churn.parquet"]), tracking_uri=uri)


def test_repository_config_is_the_builtin_default():
    assert load_config(REPO / "pipelines" / "churn.yaml") == ChurnConfig()


@pytest.mark.parametrize(("override", "message"), [
    ("snapshots.horizon_days=0", "snapshots.horizon_days"),
    ("snapshots.windows=[30, -1]", "snapshots.windows"),
    ("split.n_test=0", "split.n_test"),
    ("model.calibration=platt", "model.calibration"),
    ("model.xgboost.random_state=3", "set by the job"),
    ("simulate.start=2026-01-01", "simulate.start"),
    ("data.typo=1", "unknown keys"),
    ("top_n=0", "top_n"),
    # BoostedClassifier settings are checked up front, named with their section
    ("model.xgboost.learnin_rate=0.1", r"model\.xgboost\.learnin_rate: unknown"),
    ("model.xgboost.subsample=1.5", r"model\.xgboost\.subsample must be in \(0, 1\]"),
    ("model.xgboost.n_estimators=0", r"model\.xgboost\.n_estimators must be an integer"),
    ("model.xgboost.scale_pos_weight=-1", r"model\.xgboost\.scale_pos_weight"),
    # settings the simulated transactions would silently ignore
    ("data.customers=customers.csv", "data.customers.*ignored.*simulate"),
    ("data.label=Churn", "data.label.*ignored"),
    ("split.valid_fraction=0.3", "split.valid_fraction.*ignored.*customer table"),
    # scores go to a .parquet/.csv file
    ("output=scores.txt", "output must be a file name ending with"),
])
def test_bad_config_is_a_config_error(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(overrides=[override])


@pytest.mark.parametrize(("overrides", "message"), [
    (["snapshots.horizon_days=30"], "snapshots.horizon_days.*ignored.*data.table"),
    (["split.n_test=2"], "split.n_test.*ignored"),
    (["simulate.seed=3"], "simulate.seed.*ignored"),
    (["data.source=tx.csv"], "data.source.*ignored"),
])
def test_transaction_settings_with_a_customer_table_are_config_errors(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(overrides=["data.table=telco.csv", "data.label=Churn", *overrides])
    # the table's own settings are fine
    load_config(overrides=["data.table=telco.csv", "data.label=Churn", "split.test_fraction=0.3"])


def test_an_existing_directory_as_output_is_a_config_error(tmp_path):
    (tmp_path / "adir.parquet").mkdir()
    with pytest.raises(ConfigError, match="adir.parquet.*directory"):
        load_config(overrides=[f"output={tmp_path / 'adir.parquet'}"])


def test_test_metrics_match_an_independent_computation_and_approach_the_oracle(first_run, sim):
    m, test = first_run.metrics, first_run.test_predictions
    assert len(test) == m["n_test"] and test["cutoff"].nunique() == 1
    # the labels are the simulator's: churn = no transaction in [cutoff, cutoff + 90 days)
    cutoff = test["cutoff"].iloc[0]
    window = sim.transactions[(sim.transactions["timestamp"] >= cutoff)
                              & (sim.transactions["timestamp"] < cutoff + pd.Timedelta(days=90))]
    np.testing.assert_array_equal(test["churn"].to_numpy(), (~test["customer_id"].isin(window["customer_id"])))
    y = test["churn"].to_numpy()
    assert m["test_roc_auc"] == pytest.approx(roc_auc_score(y, test["xgboost"]), abs=1e-9)
    assert m["tree_test_roc_auc"] == pytest.approx(roc_auc_score(y, test["tree"]), abs=1e-9)
    assert m["test_brier"] == pytest.approx(brier_score_loss(y, test["xgboost"]), abs=1e-9)
    # the oracle comes from the simulator's own Bayes probability at the test cutoff
    truth = sim.churn_probability(cutoff, horizon_days=90).reindex(test["customer_id"]).to_numpy()
    assert m["oracle_test_roc_auc"] == pytest.approx(roc_auc_score(y, truth), abs=1e-9)
    assert m["oracle_test_brier"] == pytest.approx(brier_score_loss(y, truth), abs=1e-9)
    # the quality bars, already untuned: AUC >= 0.97 x Bayes, tree within 0.05, Brier within 10%
    assert m["test_roc_auc"] >= 0.97 * m["oracle_test_roc_auc"]
    assert m["tree_test_roc_auc"] >= m["test_roc_auc"] - 0.05
    assert m["test_brier"] <= 1.10 * m["oracle_test_brier"]
    assert 0 < m["test_churn_rate"] < 1 and m["test_churn_rate"] == pytest.approx(y.mean())


def test_run_logs_metrics_plots_rules_explanations_and_a_signed_model(first_run):
    run = mlflow.get_run(first_run.run_id)
    assert mlflow.get_experiment(run.info.experiment_id).name == "custval-churn"
    assert run.data.params["snapshots.horizon_days"] == "90" and run.data.params["data.source"] == "simulate"
    assert run.data.params["calibration_method.xgboost"] in ("isotonic", "sigmoid")
    for key in ("test_roc_auc", "test_pr_auc", "test_log_loss", "test_brier", "test_lift_10", "test_capture_10",
                "tree_test_roc_auc", "oracle_test_roc_auc", "oracle_test_brier", "valid_roc_auc", "best_iteration",
                "n_train", "n_valid", "n_test", "train_churn_rate", "valid_churn_rate"):
        assert np.isfinite(run.data.metrics[key]), key
    for key, value in first_run.metrics.items():
        assert run.data.metrics[key] == pytest.approx(value, rel=1e-12), key
    # train cutoffs end their label windows by the valid cutoff, valid's by the test cutoff
    cutoffs = run.data.tags["custval.cutoffs"].split(",")
    assert len(cutoffs) == 6 and run.data.tags["custval.as_of"] == "2025-01-01"
    client = mlflow.MlflowClient()
    artifacts = {a.path for a in client.list_artifacts(first_run.run_id, "plots")}
    assert {"plots/gains.png", "plots/calibration.png", "plots/roc.png", "plots/feature_importance.png"} <= artifacts
    rules = mlflow.artifacts.load_text(f"{run.info.artifact_uri}/tree_rules.txt")
    assert rules == first_run.tree_rules and any(f in rules for f in first_run.features)
    explained = pd.read_csv(mlflow.artifacts.download_artifacts(
        run_id=first_run.run_id, artifact_path="tables/top_risk_test_explanations.csv"))
    assert len(explained) == 100 and explained["reason_1"].notna().all()
    assert explained["xgboost"].is_monotonic_decreasing
    assert explained["xgboost"].iloc[0] == pytest.approx(first_run.test_predictions["xgboost"].max())
    info = mlflow.models.get_model_info(first_run.model_uri)
    assert [c["name"] for c in info.signature.inputs.to_dict()] == first_run.features
    assert "python_model.pkl" not in str(mlflow.artifacts.list_artifacts(first_run.model_uri))


def test_the_logged_input_example_shows_missing_attributes(first_run, sim):
    local = mlflow.artifacts.download_artifacts(first_run.model_uri)
    example = mlflow.models.Model.load(local).load_input_example(local)
    assert list(example.columns) == first_run.features and len(example) > 5
    # every customer attribute the simulator leaves missing for some customers is missing in some example row
    gappy = [c for c in sim.customers.columns if sim.customers[c].isna().any()]
    assert {"age", "income", "channel"} <= set(gappy)
    for column in gappy:
        assert example[column].isna().any(), column


def test_champion_scores_the_population_as_the_output_file_says(first_run, sim):
    assert first_run.promotion.promoted and first_run.registered_version == "1"
    frame = read_table(first_run.output)
    meta = read_table_metadata(first_run.output)
    assert meta["custval.run_id"] == first_run.run_id and meta["custval.model_uri"] == first_run.model_uri
    assert meta["custval.model"] == "custval-churn" and meta["custval.model_version"] == first_run.registered_version
    assert mlflow.MlflowClient().get_model_version("custval-churn", "1").run_id == meta["custval.run_id"]
    assert meta["custval.model"] == "custval-churn" and meta["custval.as_of"] == "2025-01-01"
    assert meta["custval.horizon_days"] == 90
    # every customer with a purchase in the 365 days before the observation end, once
    end = pd.Timestamp("2025-01-01")
    tx = sim.transactions
    active = tx.loc[(tx["timestamp"] >= end - pd.Timedelta(days=365)) & (tx["timestamp"] < end), "customer_id"]
    assert sorted(frame["customer_id"]) == sorted(active.unique())
    assert frame["churn_probability"].between(0, 1).all() and frame["reason_1"].notna().all()
    assert frame["churn_probability"].is_monotonic_decreasing
    pd.testing.assert_frame_equal(first_run.top_customers, frame.head(10).reset_index(drop=True),
                                  check_dtype=False)
    # the registered champion, fed features rebuilt independently of the job, gives the same probabilities
    snap = build_snapshot(tx, end, customers=sim.customers, labels=False, observation_end=end)
    model = mlflow.pyfunc.load_model("models:/custval-churn@champion")
    served = model.predict(snap[feature_columns(snap)], params={"reasons": 3})
    by_id = frame.set_index("customer_id").loc[snap["customer_id"]]
    np.testing.assert_allclose(served["churn_probability"].to_numpy(), by_id["churn_probability"].to_numpy(),
                               rtol=1e-9, atol=1e-12)
    assert (served["reason_1"].to_numpy() == by_id["reason_1"].to_numpy()).all()


def test_a_failed_run_keeps_the_earlier_output(first_run, store):
    _, uri = store
    before = Path(first_run.output).read_bytes()
    # 40 quarterly cutoffs reach ten years back: the earliest has no customer active before it
    config = load_config(overrides=[*SMALL, "snapshots.n_cutoffs=40", f"output={first_run.output}"])
    with pytest.raises(DataError, match="cutoff"):
        train_churn(config, tracking_uri=uri)
    assert Path(first_run.output).read_bytes() == before
    assert not list(Path(first_run.output).parent.glob(".tmp-*"))


def test_a_rerun_is_identical_and_when_its_write_fails_the_champion_is_kept(first_run, store, monkeypatch):
    """The same config and seed again give identical metrics and scores. Here the disk fills up while those
    scores are written: the run fails with a custval error, the earlier scores stay as they were, and the new
    version stays a challenger, so the champion is still the model that wrote them (promoting before the
    write would have promoted the rerun: its test AUC equals the champion's)."""
    import pyarrow.parquet as pq

    _, uri = store
    target = Path(first_run.output)
    before = target.read_bytes()
    client = mlflow.MlflowClient()
    versions = {v.version for v in client.search_model_versions("name='custval-churn'")}
    champion = client.get_model_version_by_alias("custval-churn", "champion").version
    real_write = pq.write_table
    attempted = []

    def disk_full(table, where, **kwargs):
        if not str(where).endswith(target.name):
            return real_write(table, where, **kwargs)
        attempted.append(table.to_pandas())
        Path(where).write_bytes(b"PAR1 half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pq, "write_table", disk_full)
    with pytest.raises(ConfigError, match="No space left on device") as failure:
        train_churn(load_config(overrides=[*SMALL, f"output={target}"]), tracking_uri=uri)
    assert isinstance(failure.value, CustvalError) and str(target) in str(failure.value)
    assert target.read_bytes() == before and not list(target.parent.glob(".tmp-*"))
    after = {v.version for v in client.search_model_versions("name='custval-churn'")}
    assert len(after - versions) == 1 and versions < after
    (new_version,) = after - versions
    assert client.get_model_version_by_alias("custval-churn", "champion").version == champion
    assert client.get_model_version_by_alias("custval-churn", "challenger").version == new_version
    rerun = client.search_runs([first_run.experiment_id], order_by=["attributes.start_time DESC"],
                               max_results=1)[0]
    assert rerun.info.status == "FAILED" and "custval.registry.promoted" not in rerun.data.tags
    # identical: every logged metric, and the scores it tried to write
    assert {k: rerun.data.metrics[k] for k in first_run.metrics} == first_run.metrics
    assert len(attempted) == 1
    pd.testing.assert_frame_equal(attempted[0], first_run.scores)


@pytest.mark.slow
def test_a_telecom_customer_table_trains_without_transactions(store, tmp_path):
    _, uri = store
    table, truth = simulate_churn_table(3000, seed=1)
    csv = tmp_path / "telco.csv"
    table.to_csv(csv, index=False)
    out = tmp_path / "telco_scores.csv"
    config = load_config(overrides=[f"data.table={csv}", "data.label=Churn", "data.id_column=customerID",
                                    "registered_model=custval-churn-telco", f"output={out}",
                                    "model.tree.min_samples_leaf=30"])
    result = train_churn(config, tracking_uri=uri)
    assert result.kind == "table" and result.as_of is None and "oracle_test_roc_auc" not in result.metrics
    m = result.metrics
    assert m["n_train"] + m["n_valid"] + m["n_test"] == len(table)
    assert m["n_test"] == pytest.approx(0.2 * len(table), abs=1)
    # stratified: the churn rates of the parts agree with the table's
    rate = (table["Churn"] == "Yes").mean()
    for part in ("train", "valid", "test"):
        assert m[f"{part}_churn_rate"] == pytest.approx(rate, abs=0.01)
    test = result.test_predictions
    y = test["churn"].to_numpy()
    assert np.array_equal(y, (table.set_index("customerID").loc[test["customer_id"], "Churn"] == "Yes").to_numpy())
    bayes = roc_auc_score(y, truth.loc[test["customer_id"]].to_numpy())
    assert m["test_roc_auc"] >= 0.9 * bayes
    scores = pd.read_csv(out)
    assert len(scores) == len(table) and set(scores["customer_id"]) == set(table["customerID"])
    meta = read_table_metadata(out)
    assert meta["custval.run_id"] == result.run_id
    # no horizon: a customer table has no cutoffs and no label window
    assert "custval.horizon_days" not in meta and meta["custval.as_of"] == ""
    assert "custval.horizon_days" not in mlflow.get_run(result.run_id).data.tags
    assert result.features and "customerID" not in result.features and "Churn" not in result.features


def test_a_customer_table_without_its_label_column_is_a_schema_error(tmp_path, store):
    _, uri = store
    table, _ = simulate_churn_table(200, seed=2)
    csv = tmp_path / "telco.csv"
    table.drop(columns="Churn").to_csv(csv, index=False)
    config = load_config(overrides=[f"data.table={csv}", "data.label=Churn", "data.id_column=customerID",
                                    "output=null"])
    with pytest.raises(SchemaError, match="Churn"):
        train_churn(config, tracking_uri=uri)


def test_transaction_and_customer_files_give_the_simulated_runs_numbers(first_run, sim, store, tmp_path):
    """The same simulated business written as a transactions CSV and a customers CSV (dates as text, as an
    export has them) trains to the same test metrics as the built-in simulator source."""
    _, uri = store
    sim.transactions.to_csv(tmp_path / "tx.csv", index=False)
    customers = sim.customers.rename(columns={"customer_id": "cust"})
    customers["signup_date"] = customers["signup_date"].dt.strftime("%Y-%m-%d")
    customers.to_csv(tmp_path / "customers.csv", index=False)
    result = train_churn(load_config(overrides=[
        f"data.source={tmp_path / 'tx.csv'}", f"data.customers={tmp_path / 'customers.csv'}",
        "data.id_column=cust", "model.tree.min_samples_leaf=50", "registered_model=null", "output=null",
    ]), tracking_uri=uri)
    assert "days_since_signup_date" in result.features and "plan" in result.features
    for key in ("test_roc_auc", "tree_test_roc_auc", "test_brier"):
        assert result.metrics[key] == pytest.approx(first_run.metrics[key], abs=1e-9), key
