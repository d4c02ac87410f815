"""`custval inspect` and the data-quality table of the training jobs, on the simulated Online-Retail export."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
import pytest
from typer.testing import CliRunner

from custval.cli import app
from custval.data.simulate_export import simulate_retail_export
from custval.jobs.inspect import ARTIFACT, inspect_data, load_config
from custval.jobs.train_clv import load_config as clv_config
from custval.jobs.train_clv import train_clv

runner = CliRunner()


@pytest.fixture(scope="module")
def ex():
    return simulate_retail_export(800, seed=8, mean_lines=4)


@pytest.fixture(scope="module")
def files(ex, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("inspect")
    ex.write(root / "export.csv", root / "products.csv")
    return {"export": root / "export.csv", "products": root / "products.csv"}


def column_map(ex, files) -> list[str]:
    sets = [f"data.source={files['export']}"]
    sets += [f"data.columns.{name}={column}" for name, column in ex.columns.items()]
    return sets


def test_inspect_suggests_the_settings_and_a_calibration_end_at_half_the_span(ex, files, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    quality = inspect_data(load_config("clv", None, column_map(ex, files)))
    first, last = ex.truth["timestamp"].min().normalize(), ex.truth["timestamp"].max().normalize()
    middle = first + pd.Timedelta(days=(last - first).days // 2)
    assert {s.setting: s.value for s in quality.suggestions} == {
        "data.timestamp_format": "%m/%d/%Y %H:%M", "data.missing_ids": "drop", "data.duplicates": "drop",
        "calibration_end": str(middle.date()), "observation_end": str(last.date())}
    assert quality.preparation.missing_ids == ex.counts["missing_ids"]
    assert list(tmp_path.iterdir()) == []  # nothing written, no MLflow store


def test_the_suggested_settings_load_and_leave_nothing_to_suggest(ex, files):
    quality = inspect_data(load_config("clv", None, column_map(ex, files)))
    applied = [f"{s.setting}={s.value}" for s in quality.suggestions]
    again = inspect_data(load_config("clv", None, column_map(ex, files) + applied))
    assert again.suggestions == []
    assert again.preparation.kept == len(ex.truth)


def test_other_pipelines_get_the_data_suggestions_only(ex, files):
    quality = inspect_data(load_config("churn", None, column_map(ex, files)))
    assert {s.setting for s in quality.suggestions} == {"data.timestamp_format", "data.missing_ids",
                                                        "data.duplicates"}


def test_the_default_config_has_nothing_to_suggest():
    """CDNOW: 1997-01-01..1998-06-30; its published calibration end 1997-09-30 is day 272 of 545, the middle."""
    quality = inspect_data(load_config("clv"))
    assert quality.suggestions == []
    assert quality.preparation.rows == 69_659 and quality.customers == 23_570
    assert quality.preparation.duplicates > 0  # kept: the CDNOW default


def test_the_command_prints_the_tables_and_the_options_and_writes_nothing(ex, files, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["inspect"]
    for item in column_map(ex, files) + [f"data.categories.file={files['products']}", "data.categories.category=Category"]:
        args += ["--set", item]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    for title in ("The log as mapped", "What the data.* policies find", "Purchase days per customer", "Categories",
                  "Suggested settings"):
        assert title in result.output, title
    assert f"{ex.counts['missing_ids']:,}" in result.output
    assert "--set 'data.timestamp_format=%m/%d/%Y %H:%M' --set data.missing_ids=drop" in result.output
    assert list(tmp_path.iterdir()) == []


def test_training_logs_the_data_quality_table(ex, files, isolated_store):
    overrides = column_map(ex, files) + ["data.timestamp_format=%m/%d/%Y %H:%M", "data.missing_ids=drop",
                                         "data.duplicates=drop", "calibration_end=null", "holdout=20W",
                                         "observation_end=null", "output=null", "registered_model=null"]
    with pytest.warns(Warning):
        result = train_clv(clv_config(None, overrides))
    local = mlflow.artifacts.download_artifacts(run_id=result.run_id, artifact_path=ARTIFACT)
    table = pd.read_csv(local)
    issues = table[table["section"] == "issues"].set_index("item")["value"]
    assert int(issues["missing customer ids"]) == ex.counts["missing_ids"]
    assert int(issues["matched (removed with their line)"]) == ex.counts["matched"]
    overview = table[table["section"] == "overview"].set_index("item")["value"]
    assert overview["source"] == str(files["export"]) and overview["customers"] == f"{ex.counts['customers']:,}"
