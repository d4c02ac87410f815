"""`custval segment`: success prints the segment summaries and where the run and files are; bad input exits
with status 2 and a message naming the problem (no traceback)."""

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from custval.cli import app
from custval.data.io import read_table_metadata

runner = CliRunner()


pytestmark = pytest.mark.usefixtures("isolated_store")


def test_segment_prints_summaries_and_writes_the_table(tmp_path):
    out = tmp_path / "seg" / "segments.csv"
    result = runner.invoke(app, ["segment", "--set", "data.source=cdnow-sample", "--out", str(out)])
    assert result.exit_code == 0, result.output
    for title in ("CLV tiers", "Value x loyalty matrix", "Purchase cycle x spend grid", "Lifecycle stages",
                  "Combined RFM score", "Concentration", "RFM migration 1997-07-01 -> 1998-01-01"):
        assert title in result.output, title
    assert "2,357 customers as of 1998-06-30" in result.output
    assert "MLflow run" in result.output and "pareto.png" in result.output
    frame = pd.read_csv(out)
    assert len(frame) == 2357 and {"rfm_cell", "tier", "value_loyalty", "cycle_class",
                                   "lifecycle_stage"} <= set(frame.columns)
    run_id = read_table_metadata(out)["custval.run_id"]
    assert run_id in result.output
    assert not (tmp_path / "outputs").exists()  # --out replaces the configured output


def _write(path, frame):
    frame.to_csv(path, index=False)
    return str(path)


def _one_quintile(tmp_path):
    """Every customer makes exactly two purchases: frequency has no variation at all."""
    rng = np.random.default_rng(0)
    first = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 100, 60), unit="D")
    second = first + pd.to_timedelta(rng.integers(5, 200, 60), unit="D")
    frame = pd.DataFrame({"customer_id": np.tile(np.arange(60), 2), "timestamp": np.r_[first, second],
                          "amount": rng.gamma(5, 10, 120).round(2)})
    return _write(tmp_path / "one_quintile.csv", frame)


@pytest.mark.parametrize(("args", "message"), [
    (["--set", "rfm_period_months=5"], "rfm_period_months must divide 12"),
    (["--set", "clv.period=Q"], "period must be one of"),
    (["--set", "segments.typo=1"], "unknown keys ['typo']"),
    (["--set", "rollout.cost_per_contact=0", "--set", "rollout.net_profit_per_response=10"], "cost_per_contact"),
    (["--set", "rollout.cost_per_contact=1", "--set", "rollout.net_profit_per_response=-5"],
     "net_profit_per_response"),
    (["--set", "data.source=missing.csv"], "missing.csv"),
    (["--config", "nope.yaml"], "config file not found"),
    (["--set", "data.source=cdnow-sample", "--set", "as_of=1990-01-01"], "as_of"),
    (["--set", "data.source=cdnow-sample", "--set", "clv.model_uri=models:/custval-clv@champion"],
     "cannot load 'models:/custval-clv@champion'"),
])
def test_bad_input_exits_2_with_a_message(args, message):
    result = runner.invoke(app, ["segment", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_empty_population_and_one_quintile_exit_2(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("customer_id,timestamp,amount\n")
    result = runner.invoke(app, ["segment", "--set", f"data.source={empty}"])
    assert result.exit_code == 2 and "table is empty" in result.output
    result = runner.invoke(app, ["segment", "--set", f"data.source={_one_quintile(tmp_path)}",
                                 "--set", "data.duplicates=error"])
    assert result.exit_code == 2, result.output
    assert "customers.frequency: has no variation: all 60 customers have the same value" in " ".join(
        result.output.split())


def test_bad_transactions_file_names_the_column(tmp_path):
    bad = tmp_path / "tx.csv"
    bad.write_text("customer_id,timestamp,amount\n1,2024-01-01,10.0\n2,2024-01-02,abc\n")
    result = runner.invoke(app, ["segment", "--set", f"data.source={bad}"])
    assert result.exit_code == 2
    assert "amount" in result.output and "abc" in result.output
