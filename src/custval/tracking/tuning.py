"""Optuna trials as nested MLflow runs: `log_trial`, an Optuna callback for `custval.models.tuning.tune`.

Each finished trial becomes a run `trial-<n>` under the active MLflow run (its parent), in the parent's
experiment: the constructor params, the validation metric `valid_<metric>` (complete trials), XGBoost's
`best_iteration` and per-round validation curve `valid_<eval_metric>_by_round`, and the trial state as the
tag `optuna.trial_state`; the run ends FINISHED (complete), KILLED (pruned) or FAILED, with the trial's own
start and end times. All of it is read from the frozen trial (`tune` records it there), so the run is
written in one go after the trial: a killed process leaves no trial run RUNNING or half-logged.
"""

from __future__ import annotations

from datetime import datetime

import optuna
from optuna.trial import FrozenTrial, TrialState

from custval.models.tuning import BEST_ITERATION_ATTR, CURVE_ATTR, FIXED_PARAMS_ATTR, STUDY_METRIC_ATTR

TRIAL_STATE_TAG = "optuna.trial_state"
PARENT_RUN_TAG = "mlflow.parentRunId"  # MLflow's system tag of a nested run
STUDY_NAME_TAG = "optuna.study_name"
TRIAL_NUMBER_TAG = "optuna.trial_number"
RUN_STATUS = {TrialState.COMPLETE: "FINISHED", TrialState.PRUNED: "KILLED"}  # any other state: FAILED
MLFLOW_BATCH = 1000  # metric entries per MLflow log_batch call (its limit)


def _millis(moment: datetime | None) -> int:
    return int((moment or datetime.now()).timestamp() * 1000)


def log_trial(study: optuna.Study, trial: FrozenTrial) -> None:
    """Log `trial` as a nested run of the active MLflow run; without an active run, do nothing."""
    import mlflow
    from mlflow.entities import Metric, Param, RunTag

    parent = mlflow.active_run()
    if parent is None:
        return
    client = mlflow.MlflowClient()
    # the source and user tags MLflow's own nested runs get, from the parent (same process)
    inherited = {k: v for k, v in parent.data.tags.items() if k == "mlflow.user" or k.startswith("mlflow.source.")}
    run = client.create_run(parent.info.experiment_id, start_time=_millis(trial.datetime_start),
                            run_name=f"trial-{trial.number}",
                            tags=inherited | {PARENT_RUN_TAG: parent.info.run_id,
                                              STUDY_NAME_TAG: study.study_name,
                                              TRIAL_NUMBER_TAG: str(trial.number)})
    end = _millis(trial.datetime_complete)
    attrs = trial.user_attrs
    metrics = []
    if BEST_ITERATION_ATTR in attrs:
        metrics.append(Metric(BEST_ITERATION_ATTR, float(attrs[BEST_ITERATION_ATTR]), end, 0))
    if trial.state == TrialState.COMPLETE:
        metric = study.user_attrs.get(STUDY_METRIC_ATTR, "objective")
        metrics.append(Metric(f"valid_{metric}", float(trial.value), end, 0))
    curve = attrs.get(CURVE_ATTR)
    if curve:
        name = f"valid_{curve['metric']}_by_round"
        metrics += [Metric(name, float(v), end, int(step)) for step, v in zip(curve["rounds"], curve["values"],
                                                                             strict=True)]
    params = dict(attrs.get(FIXED_PARAMS_ATTR, {})) | trial.params
    client.log_batch(run.info.run_id, metrics=metrics[:MLFLOW_BATCH],
                     params=[Param(k, str(v)) for k, v in params.items()],
                     tags=[RunTag(TRIAL_STATE_TAG, trial.state.name)])
    for i in range(MLFLOW_BATCH, len(metrics), MLFLOW_BATCH):
        client.log_batch(run.info.run_id, metrics=metrics[i:i + MLFLOW_BATCH])
    client.set_terminated(run.info.run_id, status=RUN_STATUS.get(trial.state, "FAILED"), end_time=end)
