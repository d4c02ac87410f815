"""The champion rule against a real SQLite MLflow store."""

import mlflow
import pandas as pd
import pytest

from custval.tracking import runs
from custval.tracking.registry import promote, register_challenger


def register_and_promote(model_uri, name, *, run_id, metric, value, higher_is_better, comparable_tag=None):
    """What a job does at its end, without the write: register as challenger, then promote by the rule."""
    version = register_challenger(model_uri, name, run_id=run_id)
    return promote(name, version, run_id=run_id, metric=metric, value=value, higher_is_better=higher_is_better,
                   comparable_tag=comparable_tag)


class Doubler(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return model_input * 2


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    uri = runs.configure(f"sqlite:///{tmp_path}/mlflow.db")
    yield uri
    mlflow.set_tracking_uri(None)


def _logged(metric_value, fingerprint="f" * 64):
    with runs.tracked_run("custval-test", config={"a": {"b": 1}}, data_fingerprint=fingerprint) as run:
        mlflow.log_metric("holdout_mae", metric_value)
        info = mlflow.pyfunc.log_model(name="model", python_model=Doubler(), input_example=pd.DataFrame({"x": [1.0]}))
    return run.info.run_id, info.model_uri


def test_first_version_becomes_champion_then_only_better_or_equal_ones(store):
    client = mlflow.MlflowClient()
    run1, uri1 = _logged(0.50)
    first = register_and_promote(uri1, "custval-test", run_id=run1, metric="holdout_mae", value=0.50,
                                 higher_is_better=False)
    assert first.promoted and first.reason == "no champion yet" and first.same_data is None
    assert str(client.get_model_version_by_alias("custval-test", "champion").version) == first.version

    run2, uri2 = _logged(0.60)  # worse: stays challenger
    second = register_and_promote(uri2, "custval-test", run_id=run2, metric="holdout_mae", value=0.60,
                                  higher_is_better=False)
    assert not second.promoted and second.champion_value == 0.50 and second.same_data
    assert str(client.get_model_version_by_alias("custval-test", "champion").version) == first.version
    assert str(client.get_model_version_by_alias("custval-test", "challenger").version) == second.version

    run3, uri3 = _logged(0.50)  # equal counts as "at least as good"
    third = register_and_promote(uri3, "custval-test", run_id=run3, metric="holdout_mae", value=0.50,
                                 higher_is_better=False)
    assert third.promoted
    assert str(client.get_model_version_by_alias("custval-test", "champion").version) == third.version
    # the comparison is recorded on the run and on the version
    tags = client.get_run(run2).data.tags
    assert tags["custval.registry.promoted"] == "False" and "kept champion" in tags["custval.registry.reason"]
    assert client.get_model_version("custval-test", second.version).tags["custval.registry.champion_version"] == "1"


def test_a_comparison_across_different_data_is_flagged(store):
    run1, uri1 = _logged(0.50, fingerprint="a" * 64)
    register_and_promote(uri1, "custval-test", run_id=run1, metric="holdout_mae", value=0.50, higher_is_better=False)
    run2, uri2 = _logged(0.40, fingerprint="b" * 64)
    other = register_and_promote(uri2, "custval-test", run_id=run2, metric="holdout_mae", value=0.40,
                                 higher_is_better=False)
    assert other.promoted and other.same_data is False
    assert "not a like-for-like comparison" in other.reason
    assert mlflow.MlflowClient().get_run(run2).data.tags["custval.registry.same_data"] == "False"


def test_tracked_run_records_config_fingerprint_versions_and_commit(store):
    with runs.tracked_run("custval-test", config={"data": {"source": "x.csv"}, "period": "W"},
                          data_fingerprint="abc123") as run:
        pass
    data = mlflow.get_run(run.info.run_id).data
    assert data.params == {"data.source": "x.csv", "period": "W"}
    assert data.tags["custval.data_fingerprint"] == "abc123"
    assert data.tags["custval.version.mlflow"] == mlflow.__version__
    assert data.tags["custval.git_commit"] != ""
    config_text = mlflow.artifacts.load_text(f"{run.info.artifact_uri}/config.yaml")
    assert "source: x.csv" in config_text
    # artifacts go beside the SQLite store, under mlartifacts/
    assert "/mlartifacts/custval-test/" in run.info.artifact_uri



def test_a_champion_over_another_comparable_tag_is_never_replaced(store):
    """With comparable_tag (e.g. the propensity categories) a better metric over another set does not promote;
    the same set in another order is comparable."""
    from custval.tracking.registry import promote, register_challenger

    def run_with(categories):
        with runs.tracked_run("custval-test", config={}, data_fingerprint="f" * 64,
                              tags={"custval.categories": categories}) as run:
            info = mlflow.pyfunc.log_model(name="model", python_model=Doubler(),
                                           input_example=pd.DataFrame({"x": [1.0]}))
        return run.info.run_id, info.model_uri

    results = []
    for categories, value in (("a,b", 0.7), ("a,c", 0.9), ("b,a", 0.8)):
        run_id, uri = run_with(categories)
        results.append(promote("custval-tag", register_challenger(uri, "custval-tag"), run_id=run_id, metric="auc",
                               value=value, higher_is_better=True, comparable_tag="custval.categories"))
    first, other, same = results
    assert first.promoted and not other.promoted and "not comparable" in other.reason
    assert same.promoted and same.champion_version == first.version
    client = mlflow.MlflowClient()
    assert str(client.get_model_version_by_alias("custval-tag", "champion").version) == same.version
    assert str(client.get_model_version_by_alias("custval-tag", "challenger").version) == same.version
