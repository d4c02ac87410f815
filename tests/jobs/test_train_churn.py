"""The churn pipeline end to end against a real SQLite MLflow store, on simulated data whose true churn
probabilities (the simulator's Bayes oracle) are known, and on a telecom-like customer table."""

import warnings
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import brier_score_loss, roc_auc_score

from custval.data.io import read_table, read_table_metadata
from custval.data.simulate_churn import simulate_churn
from custval.data.simulate_table import simulate_churn_table
from custval.errors import ConfigError, CustvalError, CustvalWarning, DataError, SchemaError
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
    assert m["test_roc_auc"] == pytest.approx(roc_auc_score(y, test[first_run.chosen]), abs=1e-9)
    assert m["tree_test_roc_auc"] == pytest.approx(roc_auc_score(y, test["tree"]), abs=1e-9)
    assert m["test_brier"] == pytest.approx(brier_score_loss(y, test[first_run.chosen]), abs=1e-9)
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
    assert run.data.params[f"calibration_method.{first_run.chosen}"] in ("isotonic", "sigmoid")
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
    assert explained[first_run.chosen].is_monotonic_decreasing
    assert explained[first_run.chosen].iloc[0] == pytest.approx(first_run.test_predictions[first_run.chosen].max())
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


# ------------------------------------------------------------------------------- bank-style customer table
def bank_export(n: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    """A bank churn export shaped like the public one: RowNumber, CustomerId, Surname (drawn from ~1,500
    made-up names, so most repeat a few times and test rows meet names training never saw), CreditScore,
    Geography, Gender, Age, Tenure, Balance (a third exactly 0), NumOfProducts, HasCrCard, IsActiveMember,
    EstimatedSalary, Exited (0/1). Returns (table, the true P(Exited) by CustomerId)."""
    rng = np.random.default_rng(seed)
    syllables = ["ab", "bar", "cor", "dun", "el", "fen", "gra", "hol", "ist", "jor", "kel", "lan", "mor", "nes",
                 "ord", "pet", "quin", "ros", "sta", "tur", "ul", "vin", "wat", "yor"]
    pool = sorted({(a + b + c).capitalize() for a in syllables for b in syllables for c in ("", "s", "son")})
    names = rng.choice(np.array(pool, dtype=object)[rng.permutation(len(pool))[:1500]], n)
    geography = rng.choice(["France", "Spain", "Germany"], n, p=[0.5, 0.25, 0.25])
    gender = rng.choice(["Male", "Female"], n)
    age = np.clip(np.round(rng.normal(39, 10, n)), 18, 92).astype(np.int64)
    products = rng.choice([1, 2, 3, 4], n, p=[0.5, 0.44, 0.05, 0.01])
    active = (rng.random(n) < 0.52).astype(np.int64)
    balance = np.where(rng.random(n) < 0.36, 0.0, np.round(rng.normal(120_000, 30_000, n), 2))
    z = (-1.6 + 0.07 * (age - 39) + 0.8 * (geography == "Germany") + 0.5 * (gender == "Female") - 0.9 * active
         + np.select([products >= 3, products == 2], [2.5, -1.2], 0.0) + 0.3 * (balance > 0))
    p = 1 / (1 + np.exp(-z))
    ids = rng.choice(np.arange(15_565_701, 15_815_691), n, replace=False)
    table = pd.DataFrame({
        "RowNumber": np.arange(1, n + 1), "CustomerId": ids, "Surname": names,
        "CreditScore": np.clip(np.round(rng.normal(650, 97, n)), 350, 850).astype(np.int64),
        "Geography": geography, "Gender": gender, "Age": age, "Tenure": rng.integers(0, 11, n),
        "Balance": balance, "NumOfProducts": products, "HasCrCard": (rng.random(n) < 0.7).astype(np.int64),
        "IsActiveMember": active, "EstimatedSalary": np.round(rng.uniform(11.58, 199_992.48, n), 2),
        "Exited": (rng.random(n) < p).astype(np.int64)})
    return table, pd.Series(p, index=pd.Index(ids, name="CustomerId"), name="churn_probability")


BANK = ["data.id_column=CustomerId", "data.label=Exited", "registered_model=custval-churn-bank",
        "model.tree.min_samples_leaf=30"]


@pytest.fixture(scope="module")
def bank_csv(tmp_path_factory):
    table, truth = bank_export(4000, seed=4)
    path = tmp_path_factory.mktemp("bank") / "bank.csv"
    table.to_csv(path, index=False)
    return path, table, truth


def test_a_bank_export_trains_with_row_numbers_and_surnames_dropped(store, bank_csv, tmp_path):
    """Before: `features.Surname: category not seen in training (e.g. ...)` and RowNumber a feature."""
    _, uri = store
    path, table, truth = bank_csv
    out = tmp_path / "bank_scores.csv"
    config = load_config(overrides=[f"data.table={path}", *BANK, f"output={out}"])
    with pytest.warns(CustvalWarning) as caught:
        result = train_churn(config, tracking_uri=uri)
    messages = [str(w.message) for w in caught if issubclass(w.category, CustvalWarning)]
    dropped = [m for m in messages if "identifier-like" in m]
    assert len(dropped) == 1 and "RowNumber (whole numbers increasing with the row (1, 2, 3, ...))" in dropped[0]
    surnames = table["Surname"].nunique()
    assert f"Surname ({surnames:,} distinct values in 4,000 rows)" in dropped[0]
    assert result.features == ["CreditScore", "Geography", "Gender", "Age", "Tenure", "Balance", "NumOfProducts",
                               "HasCrCard", "IsActiveMember", "EstimatedSalary"]
    test = result.test_predictions
    y = test["churn"].to_numpy()
    assert result.metrics["test_roc_auc"] >= 0.9 * roc_auc_score(y, truth.loc[test["customer_id"]].to_numpy())
    scores = pd.read_csv(out)
    assert sorted(scores["customer_id"]) == sorted(table["CustomerId"])


def test_a_bank_export_with_surnames_kept_scores_unseen_ones_as_missing(store, bank_csv, tmp_path):
    """data.keep overrides the identifier check; the surnames the model never saw (in valid, test and the
    scored table) are missing values with a warning, for the tree as for XGBoost, and in the registered model."""
    _, uri = store
    path, table, _ = bank_csv
    config = load_config(overrides=[f"data.table={path}", *BANK, "data.keep=[Surname]", "data.drop=[CreditScore]",
                                    "registered_model=null", "output=null"])
    with pytest.warns(CustvalWarning) as caught:
        result = train_churn(config, tracking_uri=uri)
    messages = [str(w.message) for w in caught if issubclass(w.category, CustvalWarning)]
    assert any(m.startswith("customers: identifier-like columns dropped from the features: RowNumber")
               and "Surname" not in m for m in messages)
    unseen = [m for m in messages if m.startswith("features.Surname: ")]
    assert unseen and all("have a category not seen in training" in m and "treated as missing" in m for m in unseen)
    assert "Surname" in result.features and "CreditScore" not in result.features
    X = result.test_predictions[["customer_id"]].merge(
        table.rename(columns={"CustomerId": "customer_id"}), on="customer_id")[result.features]
    X = X.astype({c: "float64" for c in X.columns if X[c].dtype == "int64"})  # as the table was loaded
    never = X.assign(Surname=pd.array(["Zzyzx"] * len(X), dtype="string"))
    gone = X.assign(Surname=pd.array([None] * len(X), dtype="string"))
    for name, model in result.models.items():
        with pytest.warns(CustvalWarning, match=r"features\.Surname: .* \(e\.g\. 'Zzyzx'\), treated as missing"):
            p_never = model.predict_proba(never)
        np.testing.assert_array_equal(p_never, model.predict_proba(gone), err_msg=name)
    served = mlflow.pyfunc.load_model(result.model_uri)
    with pytest.warns(CustvalWarning, match=r"features\.Surname"):
        p_served = served.predict(never)["churn_probability"].to_numpy()
    np.testing.assert_allclose(p_served, result.models[result.chosen].predict_proba(gone)[:, 1], rtol=1e-12)


# ---------------------------------------------------------------------------------------- short histories
@pytest.fixture(scope="module")
def one_year_csv(tmp_path_factory):
    sim = simulate_churn(2500, seed=5, start="2023-01-01", end="2024-01-01")
    path = tmp_path_factory.mktemp("one_year") / "tx.csv"
    sim.transactions.to_csv(path, index=False)
    return path


def test_a_one_year_log_trains_on_the_cutoffs_it_allows_and_warns_of_the_short_history(store, one_year_csv):
    """Before: the six default cutoffs reach back to 2022-07-10: `no active customers at cutoff`."""
    _, uri = store
    config = load_config(overrides=[f"data.source={one_year_csv}", "registered_model=null", "output=null",
                                    "model.tree.min_samples_leaf=50"])
    with pytest.warns(CustvalWarning, match="snapshots: the training cutoffs see") as caught:
        result = train_churn(config, tracking_uri=uri)
    # the last day is 2023-12-31: as_of 2024-01-01, latest cutoff 90 days earlier (2023-10-03), then 07-05
    # (185 days of history) and 04-06 (95); 2023-01-06 has 5 days, fewer than min_history_days = 90
    assert result.as_of == pd.Timestamp("2024-01-01")
    assert result.cutoffs == [pd.Timestamp(d) for d in ("2023-04-06", "2023-07-05", "2023-10-03")]
    (short,) = [str(w.message) for w in caught if "training cutoffs" in str(w.message)]
    assert ("see at most 95 days of transactions (latest 2023-04-06), the scoring date 2024-01-01 sees 365: "
            "their 180, 365-day windows are missing (NaN)") in short
    # no training row has a 180- or 365-day window: no model could use them, so they are not features
    for gone in ("n_purchases_180d", "spend_180d", "n_purchases_365d", "spend_365d", "trend_purchases_90_180",
                 "trend_spend_90_180", "trend_purchases_180_365", "trend_spend_180_365"):
        assert gone not in result.features, gone
    assert {"n_purchases_90d", "spend_90d", "trend_purchases_30_90", "recency_days"} <= set(result.features)
    assert result.test_predictions["cutoff"].unique().tolist() == [pd.Timestamp("2023-10-03")]
    assert result.metrics["test_roc_auc"] > 0.75
    # a fixed number of cutoffs that reaches before the log names the way out
    with pytest.raises(DataError, match=r"snapshots\.n_cutoffs=6 cutoffs every 90 days reach back to 2022-07-10, "
                                        r"before any history; set snapshots\.n_cutoffs=auto"):
        train_churn(load_config(overrides=[f"data.source={one_year_csv}", "snapshots.n_cutoffs=6",
                                           "registered_model=null", "output=null"]), tracking_uri=uri)
    with pytest.raises(DataError, match=r"n_cutoffs=auto finds 2 cutoffs .* too few for split"):
        train_churn(load_config(overrides=[f"data.source={one_year_csv}", "snapshots.min_history_days=120",
                                           "registered_model=null", "output=null"]), tracking_uri=uri)


def test_the_two_year_demo_keeps_its_six_cutoffs_without_a_history_warning(sim):
    """The 2-year log: the latest training cutoff (2024-04-06) sees 461 days, more than the longest window."""
    from custval.features.datasets import load_dataset

    with warnings.catch_warnings():
        warnings.simplefilter("error", CustvalWarning)
        data = load_dataset(load_config(overrides=SMALL))
    assert data.cutoffs == [pd.Timestamp(d) for d in ("2023-07-11", "2023-10-09", "2024-01-07", "2024-04-06",
                                                      "2024-07-05", "2024-10-03")]
    assert data.cutoffs == load_dataset(load_config(overrides=[*SMALL, "snapshots.n_cutoffs=6"])).cutoffs
    # the earliest cutoffs (191 and 281 days after 2023-01-01) have no 365-day window; the later ones do
    by_cutoff = data.train.groupby("cutoff")["spend_365d"].apply(lambda s: s.isna().all())
    assert by_cutoff.to_dict() == {pd.Timestamp("2023-07-11"): True, pd.Timestamp("2023-10-09"): True,
                                   pd.Timestamp("2024-01-07"): False, pd.Timestamp("2024-04-06"): False}
    assert data.train["spend_180d"].notna().all() and data.test["spend_365d"].notna().all()


def test_the_registered_model_and_the_tree_score_an_unseen_category_as_missing_with_a_warning(first_run, sim):
    end = pd.Timestamp("2025-01-01")
    snap = build_snapshot(sim.transactions, end, customers=sim.customers, labels=False, observation_end=end)
    X = snap[first_run.features].head(50)
    new = X.assign(plan=pd.array(["platinum"] * 50, dtype="string"))
    gone = X.assign(plan=pd.array([None] * 50, dtype="string"))
    served = mlflow.pyfunc.load_model(first_run.model_uri)
    with pytest.warns(CustvalWarning, match=r"features\.plan: 50 of 50 rows .*\(e\.g\. 'platinum'\)"):
        p_new = served.predict(new)["churn_probability"].to_numpy()
    np.testing.assert_array_equal(p_new, served.predict(gone)["churn_probability"].to_numpy())
    assert not np.array_equal(p_new, served.predict(X)["churn_probability"].to_numpy())  # plan matters
    tree = first_run.models["tree"]
    with pytest.warns(CustvalWarning, match=r"features\.plan"):
        np.testing.assert_array_equal(tree.predict_proba(new), tree.predict_proba(gone))


# ---------------------------------------------------------------------------------------------- model choice
def test_every_candidate_is_cross_validated_and_the_best_one_is_registered(first_run):
    """xgboost, logistic and average are scored on the same 5 folds of train + valid (by customer); the best mean
    CV ROC AUC (ties within 1e-4: the lower CV log loss) is the model that is logged, registered and scores."""
    m, table = first_run.metrics, first_run.model_choice
    assert list(table.index) == ["xgboost", "logistic", "average"] and m["n_cv_folds"] == 5
    auc = {c: m[f"{c}_cv_roc_auc"] for c in table.index}
    loss = {c: m[f"{c}_cv_log_loss"] for c in table.index}
    level = [c for c in auc if auc[c] >= max(auc.values()) - 1e-4]
    assert first_run.chosen == min(level, key=lambda c: loss[c]) and table.loc[first_run.chosen, "chosen"]
    assert m["valid_roc_auc"] == pytest.approx(auc[first_run.chosen])
    assert all(0.5 < v < 1 and 0 < m[f"{c}_cv_roc_auc_std"] < 0.05 for c, v in auc.items())
    # XGBoost's tree count comes from the folds; the average uses the same XGBoost
    assert m["best_iteration"] == table.loc["xgboost", "n_trees"] - 1 == table.loc["average", "n_trees"] - 1
    run = mlflow.get_run(first_run.run_id)
    assert run.data.params["chosen_model"] == first_run.chosen == run.data.tags["custval.chosen_model"]
    logged = pd.read_csv(mlflow.artifacts.download_artifacts(run_id=first_run.run_id,
                                                             artifact_path="tables/model_choice.csv"))
    np.testing.assert_allclose(logged["cv_roc_auc"], table["cv_roc_auc"], rtol=1e-12)
    assert set(first_run.models) == {first_run.chosen, "tree"}


@pytest.fixture(scope="module")
def logistic_run(store):
    _, uri = store
    return train_churn(load_config(overrides=[*SMALL, "model.candidates=[logistic]", "output=null",
                                              "registered_model=custval-churn-logistic"]), tracking_uri=uri)


def test_the_chosen_model_is_refitted_on_train_and_valid(logistic_run):
    """The valid rows are no longer held out: the registered logistic regression is the one fitted on train +
    valid (refitted here independently), and only its calibration comes from out-of-fold scores."""
    from custval.features.datasets import load_dataset
    from custval.models.classifiers import LogisticClassifier

    data = load_dataset(load_config(overrides=SMALL))
    rows = pd.concat([data.train, data.valid], ignore_index=True)
    refit = LogisticClassifier(C=1.0, transform="log").fit(rows[data.features], rows["churn"].to_numpy())
    model = logistic_run.models["logistic"]
    X_test = data.test[data.features]
    np.testing.assert_allclose(model.estimator.predict_proba(X_test), refit.predict_proba(X_test), rtol=1e-12)
    not_on_train_alone = LogisticClassifier().fit(data.train[data.features], data.train["churn"].to_numpy())
    assert not np.allclose(model.estimator.predict_proba(X_test), not_on_train_alone.predict_proba(X_test))
    m = logistic_run.metrics
    assert logistic_run.chosen == "logistic" and logistic_run.best_iteration is None and "best_iteration" not in m
    assert m["test_roc_auc"] == pytest.approx(roc_auc_score(data.test["churn"], model.predict_proba(X_test)[:, 1]))


def test_a_logistic_model_gives_reasons_from_its_coefficients_in_the_scores_and_when_served(logistic_run, sim):
    scores = logistic_run.scores
    assert scores["reason_1"].str.len().gt(0).mean() > 0.9  # nearly every customer has a risk-raising column
    model = logistic_run.models["logistic"]
    end = pd.Timestamp("2025-01-01")
    snap = build_snapshot(sim.transactions, end, customers=sim.customers, labels=False, observation_end=end)
    X = snap[logistic_run.features].head(200)
    contributions = model.estimator.contributions(X).drop(columns="bias")
    reasons = model.explain(X, top=1)
    top = contributions.idxmax(axis=1)
    assert all(r.startswith(f"{c}=") for r, c in zip(reasons["reason_1"], top, strict=True) if r)
    served = mlflow.pyfunc.load_model(logistic_run.model_uri).predict(X, params={"reasons": 3})
    np.testing.assert_allclose(served["churn_probability"], model.predict_proba(X)[:, 1], rtol=1e-12)
    assert (served["reason_1"].fillna("").to_numpy() == reasons["reason_1"].to_numpy()).all()
