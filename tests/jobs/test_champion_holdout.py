"""Champions are earned on the same holdout: before a new churn or propensity version can take `champion`, the
current champion (loaded as data) is scored on the new version's own test split, and the two are compared on
those rows; a champion that cannot score them (another schema) is not comparable, unless --promote."""

from __future__ import annotations

import mlflow
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from custval.data.simulate_table import simulate_churn_table
from custval.jobs.train_churn import churn_dataset, load_config, train_churn
from custval.jobs.train_propensity import load_config as propensity_config
from custval.jobs.train_propensity import train_propensity

SMALL = ["simulate.n_customers=1500", "model.tree.min_samples_leaf=50", "output=null"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("champion_holdout")
    yield root, f"sqlite:///{root}/mlflow.db"
    mlflow.set_tracking_uri(None)


@pytest.fixture(scope="module")
def first(store):
    _, uri = store
    return train_churn(load_config(overrides=[*SMALL, "simulate.seed=1"]), tracking_uri=uri)


def _metric(run_id: str, uri: str, key: str) -> float:
    return mlflow.MlflowClient(uri).get_run(run_id).data.metrics[key]


def test_a_rerun_scores_the_champion_on_its_own_test_rows(first, store):
    """Same data and config: the champion scored on the rerun's test split gives exactly its own test AUC."""
    _, uri = store
    again = train_churn(load_config(overrides=[*SMALL, "simulate.seed=1"]), tracking_uri=uri)
    assert _metric(again.run_id, uri, "champion_test_roc_auc") == first.metrics["test_roc_auc"]
    p = again.promotion
    assert p.same_holdout is True and "on the same holdout" in p.reason and p.promoted  # equal AUC
    assert p.champion_value == first.metrics["test_roc_auc"]


def test_on_new_data_the_champion_is_scored_on_the_new_test_split(first, store):
    """The value compared is the champion's AUC on the new run's test rows, computed here independently
    through MLflow's own pyfunc loading."""
    _, uri = store
    config = load_config(overrides=[*SMALL, "simulate.seed=2"])
    mlflow.set_tracking_uri(uri)
    champion = str(mlflow.MlflowClient(uri).get_model_version_by_alias("custval-churn", "champion").version)
    served = mlflow.pyfunc.load_model(f"models:/custval-churn/{champion}")
    test = churn_dataset(config).test
    expected = roc_auc_score(test["churn"].to_numpy(), served.predict(test[first.features])["churn_probability"])
    result = train_churn(config, tracking_uri=uri)
    assert _metric(result.run_id, uri, "champion_test_roc_auc") == pytest.approx(expected, abs=1e-12)
    p = result.promotion
    assert p.champion_version == champion and p.champion_value == pytest.approx(expected, abs=1e-12)
    assert p.promoted == (result.metrics["test_roc_auc"] >= expected)


def test_a_champion_of_another_schema_is_not_comparable_unless_promoted(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    table, _ = simulate_churn_table(1500, seed=0)
    telco = tmp_path / "telco.csv"
    table.to_csv(telco, index=False)
    other = tmp_path / "other.csv"  # another export: one column less, one renamed
    table.drop(columns=["tenure"]).rename(columns={"MonthlyCharges": "monthly"}).to_csv(other, index=False)
    settings = ["data.id_column=customerID", "data.label=Churn", "output=null", "model.tree.min_samples_leaf=20"]
    try:
        first = train_churn(load_config(overrides=[f"data.table={telco}", *settings]), tracking_uri=uri)
        assert first.promotion.promoted
        second = train_churn(load_config(overrides=[f"data.table={other}", *settings]), tracking_uri=uri)
        p = second.promotion
        assert not p.promoted and p.same_holdout is True
        assert "cannot score this version's holdout" in p.reason and "tenure" in p.reason
        client = mlflow.MlflowClient(uri)
        assert str(client.get_model_version_by_alias("custval-churn", "champion").version) == first.registered_version
        forced = train_churn(load_config(overrides=[f"data.table={other}", *settings]), tracking_uri=uri,
                             promote=True)
        assert forced.promotion.promoted and forced.promotion.forced and "--promote" in forced.promotion.reason
        assert str(client.get_model_version_by_alias("custval-churn", "champion").version) == \
            forced.registered_version
    finally:
        mlflow.set_tracking_uri(None)


def test_propensity_champion_is_scored_on_the_same_test_rows(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    overrides = ["simulate.n_customers=1500", "categories=[grocery, home]", "output=null"]
    try:
        first = train_propensity(propensity_config(overrides=overrides), tracking_uri=uri)
        again = train_propensity(propensity_config(overrides=overrides), tracking_uri=uri)
    finally:
        mlflow.set_tracking_uri(None)
    value = _metric(again.run_id, uri, "champion_mean_test_roc_auc")
    assert value == pytest.approx(np.mean([first.by_category.loc[c, "test_roc_auc"] for c in ("grocery", "home")]),
                                  abs=1e-12)
    assert again.promotion.same_holdout is True and again.promotion.promoted


def test_every_run_logs_its_baselines_beside_the_model(first):
    test = churn_dataset(load_config(overrides=[*SMALL, "simulate.seed=1"])).test
    recency = roc_auc_score(test["churn"].to_numpy(), test["recency_days"].fillna(0).to_numpy())
    assert first.metrics["baseline_recency_test_roc_auc"] == pytest.approx(recency, abs=1e-12)
    assert 0.5 < first.metrics["baseline_rfm_logistic_test_roc_auc"] < first.metrics["test_roc_auc"]


def test_the_registered_table_model_scores_the_csv_as_pd_read_csv_gives_it(tmp_path):
    """The README's recipe: a telecom export (whole-number columns read as int64, blank " " charges) trained
    with a column map, then scored from `pd.read_csv` by the registered pyfunc, id and label columns included."""
    import pandas as pd

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    table, _ = simulate_churn_table(1500, seed=3)
    csv = tmp_path / "telco.csv"
    table.to_csv(csv, index=False)
    try:
        result = train_churn(load_config(overrides=[f"data.table={csv}", "data.id_column=customerID",
                                                    "data.label=Churn", "output=null"]), tracking_uri=uri)
        model = mlflow.pyfunc.load_model("models:/custval-churn@champion")
        frame = pd.read_csv(csv)
        assert (frame.dtypes == "int64").any() and (frame["TotalCharges"].astype(str).str.strip() == "").any()
        scored = model.predict(frame, params={"reasons": 3})
    finally:
        mlflow.set_tracking_uri(None)
    assert list(scored.columns) == ["churn_probability", "reason_1", "reason_2", "reason_3"]
    # the same customers' scores as the job's own (which read the file through load_customer_table)
    ours = result.scores.set_index("customer_id")["churn_probability"]
    np.testing.assert_allclose(scored["churn_probability"].to_numpy(), ours.loc[frame["customerID"]].to_numpy(),
                               rtol=1e-12)
