"""`tune_churn`: trials nested under one "tune-xgboost" run, the Optuna study stored next to the MLflow store
and resumed by a second call, the best parameters refitted and registered as a new custval-churn version."""

from pathlib import Path

import mlflow
import optuna
import pytest

from custval.jobs.train_churn import load_config
from custval.jobs.tune_churn import study_name, tune_churn

SMALL = ["simulate.n_customers=2000", "simulate.seed=4", "model.tree.min_samples_leaf=50", "output=null"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("tune_churn")
    yield root, f"sqlite:///{root}/mlflow.db"
    mlflow.set_tracking_uri(None)


@pytest.fixture(scope="module")
def two_calls(store):
    _, uri = store
    config = load_config(overrides=SMALL)
    first = tune_churn(config, n_trials=2, timeout=None, tracking_uri=uri)
    second = tune_churn(load_config(overrides=SMALL), n_trials=2, timeout=None, tracking_uri=uri)
    return first, second


def test_the_study_lives_next_to_the_store_and_a_second_call_resumes_it(two_calls, store):
    root, _ = store
    first, second = two_calls
    assert first.storage == f"sqlite:///{Path(root).resolve() / 'optuna.db'}"
    assert first.study_name == second.study_name == study_name(load_config(overrides=SMALL))
    assert (first.n_trials, second.n_trials) == (2, 4)
    study = optuna.load_study(study_name=first.study_name, storage=first.storage)
    assert len(study.trials) == 4
    assert second.best_value == pytest.approx(study.best_value)
    assert second.best_value >= first.best_value  # the resumed study keeps the earlier trials
    # another problem (other data settings) is another study
    assert study_name(load_config(overrides=[*SMALL, "snapshots.horizon_days=60"])) != first.study_name


def test_trials_are_nested_runs_of_one_tuning_run_per_call(two_calls):
    first, second = two_calls
    client = mlflow.MlflowClient()
    for result, n_new in ((first, 2), (second, 2)):
        parent = client.get_run(result.tune_run_id)
        assert parent.info.run_name == "tune-xgboost"
        assert mlflow.get_experiment(parent.info.experiment_id).name == "custval-churn"
        assert parent.data.metrics["n_trials"] == result.n_trials
        assert parent.data.metrics["best_valid_roc_auc"] == pytest.approx(result.best_value)
        children = client.search_runs([parent.info.experiment_id],
                                      filter_string=f"tags.mlflow.parentRunId = '{result.tune_run_id}'")
        assert len(children) == n_new
        assert {c.info.run_name for c in children} <= {f"trial-{i}" for i in range(4)}


def test_the_best_parameters_are_refitted_and_registered_as_new_versions(two_calls):
    first, second = two_calls
    assert (first.train.registered_version, second.train.registered_version) == ("1", "2")
    for result in (first, second):
        run = mlflow.get_run(result.train.run_id)
        assert run.data.tags["custval.tuned_by"] == result.tune_run_id
        for key in ("learning_rate", "max_depth", "subsample"):
            assert key in result.best_params
            assert run.data.params[f"xgboost_fit.{key}"] == str(result.best_params[key])
            assert result.train.xgboost_params[key] == result.best_params[key]
    client = mlflow.MlflowClient()
    champion = client.get_model_version_by_alias("custval-churn", "champion")
    expected = "2" if second.train.metrics["test_roc_auc"] >= first.train.metrics["test_roc_auc"] else "1"
    assert str(champion.version) == expected
