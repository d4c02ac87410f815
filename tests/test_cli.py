"""The CLI: success prints the tables; bad input exits with status 2 and a message naming the problem."""

import pandas as pd
import pytest
from typer.testing import CliRunner

from custval.cli import app

runner = CliRunner()


pytestmark = pytest.mark.usefixtures("isolated_store")


def test_train_clv_prints_top_customers_holdout_and_run(tmp_path):
    result = runner.invoke(app, ["train", "clv", "--set", "data.source=cdnow-sample"])
    assert result.exit_code == 0, result.output
    assert "Top 10 customers by CLV" in result.output
    assert "Holdout check" in result.output and "MLflow run" in result.output
    assert "custval-clv v1 -> champion" in result.output
    assert (tmp_path / "outputs" / "clv_scores.parquet").exists()


@pytest.mark.parametrize(("args", "message"), [
    (["train", "clv", "--set", "period=Q"], "period must be one of"),
    (["train", "clv", "--set", "data.source=missing.csv"], "missing.csv"),
    (["train", "clv", "--config", "nope.yaml"], "config file not found"),
    (["train", "clv", "--set", "data.source=cdnow-sample", "--set", "calibration_end=1990-01-01"],
     "calibration_end"),
])
def test_bad_input_exits_2_with_a_message(args, message):
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_bad_transactions_file_names_the_column(tmp_path):
    bad = tmp_path / "tx.csv"
    bad.write_text("customer_id,timestamp,amount\n1,2024-01-01,10.0\n2,2024-01-02,abc\n")
    result = runner.invoke(app, ["train", "clv", "--set", f"data.source={bad}"])
    assert result.exit_code == 2
    assert "amount" in result.output and "abc" in result.output


def test_simulate_writes_a_valid_log_and_its_ground_truth(tmp_path):
    from custval.data.io import read_table
    from custval.data.loaders import load_transactions

    out, truth = tmp_path / "sim.parquet", tmp_path / "truth.csv"
    result = runner.invoke(app, ["simulate", "--customers", "2000", "--seed", "3", "--out", str(out),
                                 "--truth", str(truth)])
    assert result.exit_code == 0, result.output
    log = load_transactions(str(out), duplicates="error")  # passes the contract as written
    table = read_table(truth)
    assert len(table) == 2000 and set(log["customer_id"]) <= set(table["customer_id"])
    assert log["customer_id"].nunique() == 2000  # everyone makes a first purchase
    assert {"lambda", "p", "alive_at_end"} <= set(table.columns)


def test_warnings_print_as_one_line_without_their_source(tmp_path, cdnow_sample):
    log = tmp_path / "tx.csv"
    returned = cdnow_sample.iloc[[0]].assign(amount=-3.0)
    pd.concat([cdnow_sample, returned]).to_csv(log, index=False)
    result = runner.invoke(app, ["train", "clv", "--set", f"data.source={log}", "--set", "data.duplicates=keep",
                                 "--set", "output=null"])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning:")]
    assert warnings and "excluded 1 return rows" in warnings[0]
    assert ".py:" not in result.output and "warnings.warn" not in result.output


def test_config_show_lists_every_key_with_its_default_and_description():
    result = runner.invoke(app, ["config", "show", "churn"])
    assert result.exit_code == 0, result.output
    for key in ("data.table", "data.timestamp_format", "snapshots.windows", "model.xgboost", "split.n_test"):
        assert key in result.output, key
    assert "customer table" in result.output and "[30, 90, 180, 365]" in result.output
    changed = runner.invoke(app, ["config", "show", "clv", "--set", "horizon=24M"])
    assert changed.exit_code == 0 and "resolved settings" in changed.output and "24M" in changed.output


def test_simulate_writes_a_retail_export_that_inspect_reads(tmp_path):
    out, products = tmp_path / "export.csv", tmp_path / "products.csv"
    result = runner.invoke(app, ["simulate", "--kind", "retail-export", "--customers", "300", "--out", str(out),
                                 "--products", str(products)])
    assert result.exit_code == 0, result.output
    export, master = pd.read_csv(out), pd.read_csv(products)
    assert list(export.columns) == ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice",
                                    "CustomerID", "Country"]
    assert export["CustomerID"].isna().any() and export["InvoiceNo"].astype(str).str.startswith("C").any()
    assert set(master.columns) == {"StockCode", "Description", "Category"}
    assert export["CustomerID"].dropna().nunique() == 300
