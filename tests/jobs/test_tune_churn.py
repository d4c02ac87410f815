"""`tune_churn`: trials nested under one "tune-xgboost" run, the Optuna study stored next to the MLflow store
and resumed by a second call on the same data (a new study on changed data), the best parameters refitted and
registered as a new custval-churn version, and the tuned model held to the issue's quality bars against the
simulator's Bayes probabilities."""

import warnings
from pathlib import Path

import mlflow
import optuna
import pytest

import custval.jobs.tune_churn as tune_module
from custval.data.simulate_churn import simulate_churn
from custval.errors import ConfigError, CustvalWarning
from custval.jobs.train_churn import load_config
from custval.jobs.tune_churn import study_name, tune_churn
from custval.models.tuning import searched_params

N_CUSTOMERS = 8000
SMALL = [f"simulate.n_customers={N_CUSTOMERS}", "simulate.seed=4", "model.tree.min_samples_leaf=50",
         "output=null"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("tune_churn")
    yield root, f"sqlite:///{root}/mlflow.db"
    mlflow.set_tracking_uri(None)


@pytest.fixture(scope="module")
def two_calls(store):
    """Two calls of 2 trials on the same config and data: the second resumes the study (4 trials)."""
    _, uri = store
    first = tune_churn(load_config(overrides=SMALL), n_trials=2, timeout=None, tracking_uri=uri)
    second = tune_churn(load_config(overrides=SMALL), n_trials=2, timeout=None, tracking_uri=uri)
    return first, second


class _Loaded(Exception):
    """Raised by a stand-in for the data loading: the job got as far as loading data."""


@pytest.fixture
def no_data(monkeypatch):
    def churn_dataset(*args, **kwargs):
        raise _Loaded

    monkeypatch.setattr(tune_module, "churn_dataset", churn_dataset)


@pytest.mark.parametrize(("options", "message"), [
    ({"n_trials": 0}, "n_trials"),
    ({"n_trials": 2.5}, "n_trials"),
    ({"n_trials": 2, "timeout": 0}, "timeout"),
    ({"n_trials": 2, "timeout": float("nan")}, "timeout"),
])
def test_bad_tuning_options_fail_before_any_data_is_loaded(no_data, options, message):
    # the default config simulates 20,000 customers: the options must be checked first
    with pytest.raises(ConfigError, match=message):
        tune_churn(load_config(), **options)


def test_settings_the_search_overrides_are_warned_about(no_data):
    assert {"learning_rate", "max_depth", "subsample"} <= set(searched_params())
    config = load_config(overrides=["model.xgboost.subsample=0.6", "model.xgboost.n_estimators=500"])
    with pytest.warns(CustvalWarning, match=r"searches \['subsample'\]"), pytest.raises(_Loaded):
        tune_churn(config, n_trials=1)
    # the defaults (learning_rate 0.05, max_depth 4 are the starting point the search replaces) are not news
    with warnings.catch_warnings():
        warnings.simplefilter("error", CustvalWarning)
        with pytest.raises(_Loaded):
            tune_churn(load_config(), n_trials=1)


def test_the_study_lives_next_to_the_store_and_a_second_call_resumes_it(two_calls, store):
    root, _ = store
    first, second = two_calls
    assert first.storage == f"sqlite:///{Path(root).resolve() / 'optuna.db'}"
    assert first.study_name == second.study_name
    fingerprint = mlflow.get_run(first.tune_run_id).data.tags["custval.data_fingerprint"]
    assert first.study_name == study_name(load_config(overrides=SMALL), fingerprint)
    assert first.study_name.endswith("-" + fingerprint[:12])
    assert (first.n_trials, second.n_trials) == (2, 4)
    study = optuna.load_study(study_name=first.study_name, storage=first.storage)
    assert len(study.trials) == 4
    assert second.best_value == pytest.approx(study.best_value)
    assert second.best_value >= first.best_value  # the resumed study keeps the earlier trials
    # another problem (other data settings) is another study
    assert study_name(load_config(overrides=[*SMALL, "snapshots.horizon_days=60"]), fingerprint) != first.study_name


def test_the_tuned_model_meets_the_quality_bars_against_the_oracle(two_calls):
    """The shipped `tune churn` path with a small budget (4 trials) on 8,000 simulated customers."""
    _, tuned = two_calls
    m = tuned.train.metrics
    assert m["test_roc_auc"] >= 0.97 * m["oracle_test_roc_auc"]
    assert m["tree_test_roc_auc"] >= m["test_roc_auc"] - 0.05
    assert m["test_brier"] <= 1.10 * m["oracle_test_brier"]
    # the refit is the study's best trial: same data, parameters and seed give the same validation AUC (the
    # tuned XGBoost's mean CV ROC AUC; valid_roc_auc is the chosen candidate's)
    assert m["xgboost_cv_roc_auc"] == pytest.approx(tuned.best_value, abs=1e-12)


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


def test_changed_data_at_the_same_path_starts_a_new_study(tmp_path):
    """Same config, edited transactions file: the old study's trials (scored on the old data) must not compete."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    sim = simulate_churn(1500, seed=6, start="2023-01-01", end="2025-01-01")
    path = tmp_path / "tx.csv"
    sim.transactions.to_csv(path, index=False)
    overrides = [f"data.source={path}", "model.tree.min_samples_leaf=50", "output=null", "registered_model=null"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", CustvalWarning)  # no "study was started on different data"
        first = tune_churn(load_config(overrides=overrides), n_trials=1, tracking_uri=uri)
        edited = sim.transactions.drop(index=sim.transactions.index[::50])  # 2% of the rows gone
        edited.to_csv(path, index=False)
        second = tune_churn(load_config(overrides=overrides), n_trials=1, tracking_uri=uri)
    mlflow.set_tracking_uri(None)
    assert second.study_name != first.study_name and (first.n_trials, second.n_trials) == (1, 1)
    assert first.study_name.rsplit("-", 1)[0] == second.study_name.rsplit("-", 1)[0]  # same config key
    studies = {s.study_name: s.n_trials for s in optuna.get_all_study_summaries(first.storage)}
    assert studies == {first.study_name: 1, second.study_name: 1}


def test_the_first_trial_is_the_untuned_model_on_the_same_folds(two_calls):
    """The search starts from the configured XGBoost: its trial has no searched parameter and the score the
    same XGBoost gets on the training folds, so the best trial can only be better."""
    import numpy as np
    import pandas as pd

    from custval.features.datasets import load_dataset
    from custval.jobs.snapshot_jobs import training_folds, xgboost_kwargs
    from custval.models.classifiers.selection import boosted_cv

    first, second = two_calls
    study = optuna.load_study(study_name=first.study_name, storage=first.storage)
    base = study.trials[0]
    assert base.params == {} and base.user_attrs["base_trial"] is True
    config = load_config(overrides=SMALL)
    data = load_dataset(config)
    rows = pd.concat([data.train, data.valid], ignore_index=True)
    y = rows["churn"].to_numpy().astype("int8")
    folds = training_folds(config, rows, y, "snapshots")
    score = boosted_cv(rows[data.features], y, folds, xgboost_kwargs(config))
    assert base.value == pytest.approx(score.roc_auc, abs=1e-12)
    assert second.best_value >= base.value
    assert all(np.isfinite(t.value) for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE)
