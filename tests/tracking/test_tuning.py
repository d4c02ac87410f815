"""`log_trial`: an Optuna callback writing each finished trial as a nested MLflow run, from the frozen trial
alone (a hand-made objective here, so every logged value is known in advance)."""

from __future__ import annotations

import mlflow
import optuna
import pytest

from custval.models.tuning import BEST_ITERATION_ATTR, CURVE_ATTR, FIXED_PARAMS_ATTR, STUDY_METRIC_ATTR
from custval.tracking import runs
from custval.tracking.tuning import TRIAL_STATE_TAG, log_trial

optuna.logging.set_verbosity(optuna.logging.WARNING)
ROUNDS = list(range(1, 1201))  # more points than one MLflow log_batch call takes (1000)


def objective(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", 0.0, 1.0)
    trial.set_user_attr(FIXED_PARAMS_ATTR, {"n_jobs": 1, "class_weight": "{0: 1, 1: 3}"})
    trial.set_user_attr(CURVE_ATTR, {"metric": "auc", "rounds": ROUNDS, "values": [r / 2000 for r in ROUNDS]})
    if trial.number == 1:
        raise optuna.TrialPruned("pruned by hand")
    trial.set_user_attr(BEST_ITERATION_ATTR, 41)
    return 0.5 + x


def test_each_trial_is_one_nested_run_with_its_own_times(isolated_store):
    runs.configure(isolated_store)
    experiment_id = runs.ensure_experiment("custval-test-log-trial")
    study = optuna.create_study(study_name="hand", direction="maximize",
                                sampler=optuna.samplers.RandomSampler(seed=0))
    study.set_user_attr(STUDY_METRIC_ATTR, "roc_auc")
    with mlflow.start_run(experiment_id=experiment_id) as parent:
        study.optimize(objective, n_trials=2, callbacks=[log_trial])
        assert mlflow.active_run().info.run_id == parent.info.run_id
    client = mlflow.MlflowClient()
    children = {r.info.run_name: r for r in client.search_runs(
        [experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")}
    assert set(children) == {"trial-0", "trial-1"}
    parent_tags = client.get_run(parent.info.run_id).data.tags
    for trial in study.trials:
        run = children[f"trial-{trial.number}"]
        assert run.info.start_time == int(trial.datetime_start.timestamp() * 1000)
        assert run.info.end_time == int(trial.datetime_complete.timestamp() * 1000)
        assert run.data.tags["optuna.study_name"] == "hand"
        assert run.data.tags["optuna.trial_number"] == str(trial.number)
        assert run.data.tags["mlflow.source.name"] == parent_tags["mlflow.source.name"]
        assert run.data.params == {"x": str(trial.params["x"]), "n_jobs": "1", "class_weight": "{0: 1, 1: 3}"}
        series = client.get_metric_history(run.info.run_id, "valid_auc_by_round")
        assert sorted((m.step, m.value) for m in series) == [(r, r / 2000) for r in ROUNDS]
    done, pruned = children["trial-0"], children["trial-1"]
    assert (done.info.status, done.data.tags[TRIAL_STATE_TAG]) == ("FINISHED", "COMPLETE")
    assert done.data.metrics["valid_roc_auc"] == pytest.approx(study.trials[0].value, rel=1e-15)
    assert done.data.metrics[BEST_ITERATION_ATTR] == 41
    assert (pruned.info.status, pruned.data.tags[TRIAL_STATE_TAG]) == ("KILLED", "PRUNED")
    assert "valid_roc_auc" not in pruned.data.metrics and BEST_ITERATION_ATTR not in pruned.data.metrics


def test_without_an_active_run_nothing_is_logged(isolated_store):
    runs.configure(isolated_store)
    runs.ensure_experiment("custval-test-log-trial-off")
    study = optuna.create_study(direction="maximize")
    study.optimize(objective, n_trials=1, callbacks=[log_trial])
    assert mlflow.active_run() is None
    client = mlflow.MlflowClient()
    assert client.search_runs([e.experiment_id for e in client.search_experiments()]) == []
