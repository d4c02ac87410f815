"""`custval train churn|propensity` and `custval tune churn`: success prints the metrics, the registered
version and the customers to act on; bad input exits with status 2 and a message naming the problem."""

from pathlib import Path

import mlflow
import pandas as pd
import pytest
from typer.testing import CliRunner

from custval.cli import app
from custval.data.io import read_table, read_table_metadata
from custval.data.simulate_table import simulate_churn_table

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]
SMALL = ["--set", "simulate.n_customers=2000", "--set", "simulate.seed=2", "--set", "model.tree.min_samples_leaf=50"]

pytestmark = pytest.mark.usefixtures("isolated_store")


def test_train_churn_prints_metrics_registration_and_customers_most_at_risk(tmp_path):
    result = runner.invoke(app, ["train", "churn", "--config", str(REPO / "pipelines" / "churn.yaml"), *SMALL])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Test metrics" in out and "XGBoost" in out and "tree" in out and "oracle (simulator)" in out
    assert "ROC AUC" in out and "Brier" in out
    assert "custval-churn v1 -> champion" in out
    assert "10 customers most at risk as of 2025-01-01" in out
    scores = read_table(tmp_path / "outputs" / "churn_scores.parquet")
    # the printed customers are the file's ten highest churn probabilities
    for customer_id in scores["customer_id"].head(10):
        assert str(customer_id) in out
    assert read_table_metadata(tmp_path / "outputs" / "churn_scores.parquet")["custval.run_id"] in out

    # an existing directory as output: a message and status 2 before any training, nothing registered, the
    # champion and the scores it wrote untouched
    before = (tmp_path / "outputs" / "churn_scores.parquet").read_bytes()
    (tmp_path / "adir.parquet").mkdir()
    again = runner.invoke(app, ["train", "churn", *SMALL, "--set", "output=adir.parquet"])
    assert again.exit_code == 2, again.output
    assert "adir.parquet" in again.output and "directory" in again.output and "Traceback" not in again.output
    client = mlflow.MlflowClient()
    assert [str(v.version) for v in client.search_model_versions("name='custval-churn'")] == ["1"]
    assert str(client.get_model_version_by_alias("custval-churn", "champion").version) == "1"
    assert (tmp_path / "outputs" / "churn_scores.parquet").read_bytes() == before


def test_train_propensity_prints_per_category_auc_and_cross_sell_suggestions(tmp_path):
    result = runner.invoke(app, ["train", "propensity", *SMALL[:4], "--set", "categories=[grocery, beauty]"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Per-category test metrics" in out and "grocery" in out and "beauty" in out and "oracle ROC AUC" in out
    assert "mean test ROC AUC" in out and "custval-propensity v1 -> champion" in out
    assert "Top 10 cross-sell suggestions" in out and "cross-sell as of 2025-01-01" in out
    scores = read_table(tmp_path / "outputs" / "propensity_scores.parquet")
    best = scores.sort_values("cross_sell_score", ascending=False).head(3)
    for _, row in best.iterrows():
        assert f"{row.cross_sell_score:.4f}" in out


@pytest.mark.slow
def test_tune_churn_runs_trials_then_registers_the_refit(tmp_path):
    result = runner.invoke(app, ["tune", "churn", "--trials", "2", "--timeout", "600", *SMALL])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "2 trials in the study" in out and "Best XGBoost parameters" in out and "learning_rate" in out
    assert "custval-churn v1 -> champion" in out and "10 customers most at risk" in out
    assert (tmp_path / "optuna.db").exists()


def _telco(tmp_path, transform):
    table, _ = simulate_churn_table(300, seed=0)
    path = tmp_path / "telco.csv"
    transform(table).to_csv(path, index=False)
    return ["--set", f"data.table={path}", "--set", "data.label=Churn", "--set", "data.id_column=customerID"]


def _third_value(table: pd.DataFrame) -> pd.DataFrame:
    table = table.copy()
    table.loc[table.index[7], "Churn"] = "Maybe"
    return table


@pytest.mark.parametrize(("case", "message"), [
    ("missing label", "Churn"),
    ("non-binary label", "Maybe"),
])
def test_bad_customer_table_exits_2(tmp_path, case, message):
    transform = (lambda t: t.drop(columns="Churn")) if case == "missing label" else _third_value
    result = runner.invoke(app, ["train", "churn", *_telco(tmp_path, transform)])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert "customers.Churn" in " ".join(result.output.split())


@pytest.mark.parametrize(("args", "message"), [
    # 40 quarterly cutoffs reach ten years back, before the simulated business opened
    (["train", "churn", "--set", "simulate.n_customers=300", "--set", "snapshots.n_cutoffs=40"], "cutoff"),
    (["train", "churn", "--set", "snapshots.every_days=0"], "snapshots.every_days"),
    (["train", "churn", "--config", "nope.yaml"], "config file not found"),
    (["train", "propensity", "--set", "data.table=x.csv"], "propensity needs transactions"),
    (["tune", "churn", "--trials", "1", "--set", "model.calibration=platt"], "model.calibration"),
    # checked before the 20,000 default customers are simulated
    (["tune", "churn", "--trials", "1", "--timeout", "0"], "timeout"),
    (["train", "churn", "--set", "model.xgboost.learnin_rate=0.1"], "model.xgboost.learnin_rate"),
    (["train", "churn", "--set", "model.xgboost.max_depth=0"], "model.xgboost.max_depth"),
    (["train", "churn", "--set", "data.customers=customers.csv"], "data.customers"),
    (["train", "propensity", "--set", "data.label=Churn"], "data.label"),
])
def test_bad_input_exits_2_with_a_message(args, message):
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
