"""Cross-sell propensity end to end (real SQLite MLflow store) on simulated data with known category-purchase
probabilities: labels, metrics and cross-sell picks are checked against the raw transactions and the oracle."""

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from custval.data.io import read_table, read_table_metadata
from custval.data.simulate_churn import simulate_churn
from custval.errors import ConfigError, CustvalWarning, DataError
from custval.features.snapshots import build_snapshot, cutoff_schedule, feature_columns
from custval.jobs.train_propensity import PropensityConfig, load_config, train_propensity

REPO = Path(__file__).resolve().parents[2]
N_CUSTOMERS = 3000
CATEGORIES = ["grocery", "home", "beauty"]
SMALL = [f"simulate.n_customers={N_CUSTOMERS}", "simulate.seed=5", f"categories=[{', '.join(CATEGORIES)}]"]
END = pd.Timestamp("2025-01-01")


@pytest.fixture(scope="module")
def sim():
    return simulate_churn(N_CUSTOMERS, seed=5, start="2023-01-01", end="2025-01-01")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("propensity_job")
    yield root, f"sqlite:///{root}/mlflow.db"
    mlflow.set_tracking_uri(None)


@pytest.fixture(scope="module")
def result(store):
    root, uri = store
    return train_propensity(load_config(overrides=[*SMALL, f"output={root}/propensity.parquet"]), tracking_uri=uri)


def test_repository_config_is_the_builtin_default():
    assert load_config(REPO / "pipelines" / "propensity.yaml") == PropensityConfig()


@pytest.mark.parametrize(("override", "message"), [
    ("data.table=telco.csv", "propensity needs transactions"),
    ("categories=[home, home]", "distinct"),
    ("cross_sell_new_only=maybe", "cross_sell_new_only"),
    # a customer table's settings: propensity has none, so setting them would do nothing
    ("data.label=Churn", "data.label.*ignored"),
    ("data.id_column=cid", "data.id_column.*ignored"),
    ("data.customers=customers.csv", "data.customers.*ignored"),
    ("split.test_fraction=0.3", "split.test_fraction.*ignored"),
    ("model.xgboost.max_dept=3", r"model\.xgboost\.max_dept: unknown"),
    ("model.xgboost.learning_rate=0", r"model\.xgboost\.learning_rate must be"),
])
def test_bad_config_is_a_config_error(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(overrides=[override])


def test_label_settings_with_transactions_from_a_file_are_config_errors():
    with pytest.raises(ConfigError, match="data.label.*customer table"):
        load_config(overrides=["data.source=tx.csv", "data.label=Churn"])
    with pytest.raises(ConfigError, match="data.id_column.*data.customers"):
        load_config(overrides=["data.source=tx.csv", "data.id_column=cid"])
    # with a customer attribute table the id column applies
    load_config(overrides=["data.source=tx.csv", "data.customers=c.csv", "data.id_column=cid"])


def test_a_category_with_too_few_buyers_in_a_split_is_named_before_any_fit(tmp_path):
    sim = simulate_churn(400, seed=7, start="2023-01-01", end="2025-01-01")
    tx = sim.transactions.copy()
    as_of = tx["timestamp"].max().normalize() + pd.Timedelta(days=1)
    cutoffs = cutoff_schedule(as_of, n_cutoffs=6, every_days=90, horizon_days=90)
    valid = cutoffs[-2]  # n_test=1, n_valid=1: the second-to-last cutoff is valid
    window = tx.index[(tx["timestamp"] >= valid) & (tx["timestamp"] < valid + pd.Timedelta(days=90))]
    tx["category"] = tx["category"].astype("string")
    chosen = tx.loc[window].drop_duplicates("customer_id").index[:3]
    tx.loc[chosen, "category"] = "garden"  # garden: 3 buyers, all in valid's label window
    path = tmp_path / "tx.csv"
    tx.to_csv(path, index=False)
    config = load_config(overrides=[f"data.source={path}", "categories=[grocery, garden]", "output=null"])
    with pytest.raises(DataError, match=r"snapshots\.propensity_garden: needs at least 2 buyers") as failure:
        train_propensity(config, tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    mlflow.set_tracking_uri(None)
    counts = failure.value.example
    assert counts["train"]["buyers"] == 0 and counts["test"]["buyers"] == 0
    assert counts["valid"]["buyers"] == 3 and counts["valid"]["non-buyers"] > 100
    assert "too few in train/test" in str(failure.value)


def test_unknown_category_is_a_data_error(tmp_path):
    config = load_config(overrides=["simulate.n_customers=300", "categories=[garden]", "output=null"])
    with pytest.raises(DataError, match="garden"):
        train_propensity(config, tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    mlflow.set_tracking_uri(None)


def test_labels_are_new_category_purchases_and_metrics_match_sklearn_and_approach_the_oracle(result, sim):
    assert result.categories == CATEGORIES
    tx = sim.transactions
    aucs = []
    for category in CATEGORIES:
        test = result.test_predictions[category]
        cutoff = test["cutoff"].iloc[0]
        assert (test["cutoff"] == cutoff).all()
        of_category = tx[tx["category"] == category]
        before = set(of_category.loc[of_category["timestamp"] < cutoff, "customer_id"])
        window = of_category[(of_category["timestamp"] >= cutoff)
                             & (of_category["timestamp"] < cutoff + pd.Timedelta(days=90))]
        # new-only: nobody who bought the category before the cutoff; label = buys it in the 90 days after
        assert not test["customer_id"].isin(before).any()
        np.testing.assert_array_equal(test["label"].to_numpy(), test["customer_id"].isin(window["customer_id"]))
        y = test["label"].to_numpy()
        auc = roc_auc_score(y, test["p"])
        aucs.append(auc)
        assert result.metrics[f"{category}_test_roc_auc"] == pytest.approx(auc, abs=1e-9)
        truth = sim.category_probability(cutoff, horizon_days=90)[category].reindex(test["customer_id"]).to_numpy()
        oracle = roc_auc_score(y, truth)
        assert result.metrics[f"oracle_{category}_test_roc_auc"] == pytest.approx(oracle, abs=1e-9)
        # small sample (a few hundred new-to-category test rows): most of the oracle's lift over random
        assert auc - 0.5 >= 0.6 * (oracle - 0.5), category
    assert result.metrics["mean_test_roc_auc"] == pytest.approx(np.mean(aucs))


def test_run_logs_per_category_metrics_plots_and_one_registered_multi_output_model(result):
    run = mlflow.get_run(result.run_id)
    assert mlflow.get_experiment(run.info.experiment_id).name == "custval-propensity"
    assert run.data.metrics["mean_test_roc_auc"] == pytest.approx(result.metrics["mean_test_roc_auc"])
    for category in CATEGORIES:
        for key in ("test_roc_auc", "test_pr_auc", "test_brier", "best_iteration", "n_train", "test_rate"):
            assert np.isfinite(run.data.metrics[f"{category}_{key}"]), (category, key)
        assert run.data.params[f"calibration_method.{category}"] in ("isotonic", "sigmoid")
    plots = {a.path for a in mlflow.MlflowClient().list_artifacts(result.run_id, "plots")}
    assert {f"plots/{kind}_{c}.png" for kind in ("gains", "calibration") for c in CATEGORIES} <= plots
    assert result.promotion.promoted and result.registered_version == "1"
    info = mlflow.models.get_model_info("models:/custval-propensity@champion")
    assert [c["name"] for c in info.signature.outputs.to_dict()] == [f"p_{c}" for c in CATEGORIES]
    # each category's model drops its own (always missing) recency feature, the others keep it
    assert "days_since_beauty" not in result.model_features["p_beauty"]
    assert "days_since_beauty" in result.model_features["p_home"]


def test_output_holds_the_champion_probabilities_and_cross_sells_only_new_categories(result, sim):
    frame = read_table(result.output)
    meta = read_table_metadata(result.output)
    assert meta["custval.run_id"] == result.run_id and meta["custval.model"] == "custval-propensity"
    assert meta["custval.model_uri"] == result.model_uri and meta["custval.as_of"] == "2025-01-01"
    assert mlflow.MlflowClient().get_model_version("custval-propensity", "1").run_id == result.run_id
    assert meta["custval.categories"] == CATEGORIES
    tx = sim.transactions[sim.transactions["timestamp"] < END]
    # the champion on independently rebuilt features gives the file's probabilities
    snap = build_snapshot(tx, END, customers=sim.customers, labels=False, categories=CATEGORIES, observation_end=END)
    served = mlflow.pyfunc.load_model("models:/custval-propensity@champion").predict(snap[feature_columns(snap)])
    by_id = frame.set_index("customer_id").loc[snap["customer_id"]]
    for category in CATEGORIES:
        np.testing.assert_allclose(served[f"p_{category}"].to_numpy(), by_id[f"p_{category}"].to_numpy(),
                                   rtol=1e-9, atol=1e-12)
    # cross-sell: the most likely category among those the customer never bought, NA when none is left
    bought = pd.crosstab(tx["customer_id"], tx["category"]).reindex(index=by_id.index, columns=CATEGORIES,
                                                                     fill_value=0) > 0
    p = by_id[[f"p_{c}" for c in CATEGORIES]].to_numpy()
    open_p = np.where(bought.to_numpy(), -1.0, p)
    none_left = bought.all(axis=1).to_numpy()
    assert by_id["cross_sell_category"].isna().to_numpy().tolist() == none_left.tolist()
    expected = np.asarray(CATEGORIES, dtype=object)[open_p.argmax(axis=1)]
    assert (by_id["cross_sell_category"].to_numpy()[~none_left] == expected[~none_left]).all()
    np.testing.assert_allclose(by_id["cross_sell_score"].to_numpy()[~none_left], open_p.max(axis=1)[~none_left])
    assert 0 < none_left.sum() < len(none_left)
    top = result.top_customers
    assert len(top) == 10 and top["cross_sell_score"].is_monotonic_decreasing
    assert top["cross_sell_score"].iloc[0] == pytest.approx(frame["cross_sell_score"].max())


def test_a_version_over_other_categories_stays_challenger(result, store):
    """Mean test AUC over other categories is not comparable: the champion keeps its alias whatever the AUCs."""
    _, uri = store
    other = train_propensity(load_config(overrides=[f"simulate.n_customers={N_CUSTOMERS}", "simulate.seed=5",
                                                    "categories=[grocery]", "output=null"]), tracking_uri=uri)
    assert other.registered_version == "2" and other.promotion.promoted is False
    assert "custval.categories 'grocery' differs from champion v1's 'grocery,home,beauty'" in other.promotion.reason
    assert other.promotion.champion_version == "1"
    assert other.promotion.champion_value == pytest.approx(result.metrics["mean_test_roc_auc"])
    client = mlflow.MlflowClient()
    assert str(client.get_model_version_by_alias("custval-propensity", "champion").version) == "1"
    assert str(client.get_model_version_by_alias("custval-propensity", "challenger").version) == "2"
    assert client.get_model_version("custval-propensity", "2").tags["custval.registry.promoted"] == "False"
    assert mlflow.get_run(other.run_id).data.tags["custval.registry.reason"] == other.promotion.reason


@pytest.mark.parametrize(("overrides", "message"), [
    (["snapshots.n_cutoffs=0"], r"snapshots\.n_cutoffs must be auto or an integer >= 1, got 0"),
    (["snapshots.n_cutoffs=some"], r"snapshots\.n_cutoffs must be auto or an integer >= 1, got 'some'"),
    (["snapshots.max_cutoffs=2"], r"snapshots\.max_cutoffs must be at least split\.n_valid \+ split\.n_test \+ 1"),
    (["snapshots.n_cutoffs=5", "snapshots.min_history_days=30"], r"snapshots\.min_history_days would be ignored"),
    (["snapshots.n_cutoffs=5", "snapshots.max_cutoffs=8"], r"snapshots\.max_cutoffs would be ignored"),
    (["data.drop=[age]"], r"data\.drop=\['age'\] would be ignored: data\.source=simulate"),
    (["data.source=tx.csv", "data.keep=[age]"], r"data\.keep=.*would be ignored.*data\.customers"),
    (["data.source=tx.csv", "data.customers=c.csv", "data.drop=[age, age]"], r"data\.drop must be distinct"),
    (["data.source=tx.csv", "data.customers=c.csv", "data.id_column=cid", "data.drop=[cid]"],
     r"data\.drop must not name data\.id_column \('cid'\)"),
    (["data.source=tx.csv", "data.customers=c.csv", "data.drop=[age]", "data.keep=[age]"],
     r"data\.keep and data\.drop both name 'age'"),
])
def test_bad_snapshot_and_column_settings_are_config_errors(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(overrides=overrides)
    # the same settings where they apply are fine
    load_config(overrides=["snapshots.n_cutoffs=7", "snapshots.max_cutoffs=6"])
    load_config(overrides=["snapshots.min_history_days=30", "snapshots.max_cutoffs=9"])
    load_config(overrides=["data.source=tx.csv", "data.customers=c.csv", "data.drop=[age]", "data.keep=[note]"])


def test_a_one_year_log_trains_propensity_on_the_cutoffs_it_allows(tmp_path):
    """Before: `no active customers at cutoff 2022-07-10`."""
    sim = simulate_churn(N_CUSTOMERS, seed=8, start="2023-01-01", end="2024-01-01")
    path = tmp_path / "tx.csv"
    sim.transactions.to_csv(path, index=False)
    config = load_config(overrides=[f"data.source={path}", "categories=[grocery, home]", "output=null",
                                    "registered_model=null"])
    with pytest.warns(CustvalWarning, match="the training cutoffs see at most 95 days"):
        result = train_propensity(config, tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    mlflow.set_tracking_uri(None)
    assert result.cutoffs == [pd.Timestamp(d) for d in ("2023-04-06", "2023-07-05", "2023-10-03")]
    assert "spend_180d" not in result.features and "spend_90d" in result.features
    for category in ("grocery", "home"):
        assert result.metrics[f"{category}_test_roc_auc"] > 0.6, category
    assert len(result.scores) == result.scores["customer_id"].nunique() > 1000


def test_each_category_chooses_its_own_model_by_cross_validation(result, store):
    run = mlflow.MlflowClient(tracking_uri=store[1]).get_run(result.run_id)
    by = result.by_category
    for category in CATEGORIES:
        auc = {c: result.metrics[f"{category}_{c}_cv_roc_auc"] for c in ("xgboost", "logistic", "average")}
        chosen = by.loc[category, "model"]
        assert auc[chosen] >= max(auc.values()) - 1e-4
        assert run.data.params[f"chosen_model.{category}"] == chosen
        assert result.metrics[f"{category}_valid_roc_auc"] == pytest.approx(auc[chosen])
        assert by.loc[category, "best_iteration"] == result.metrics[f"{category}_best_iteration"]
