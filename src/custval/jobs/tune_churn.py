"""Tune the churn XGBoost with Optuna, then refit and register the best.

The data, the training rows (train + valid) and their cross-validation folds are exactly those of
`train_churn` (same config): every trial is scored by its mean ROC AUC over those folds, each fold stopping
early on its own held-out rows but scored at the tree count found on the other folds
(custval.models.classifiers.selection.boosted_cv), never on the rows that stopped it. The first trial of a new
study is the configured model.xgboost itself (early stopping on its eval_metric, logloss by default, as
train_churn does), so the best trial is never worse on this score than the untuned model. One parent MLflow run
"tune-xgboost" in the churn experiment holds the search: each trial is a nested run (custval.tracking.tuning),
and the parent records the best parameters, the best mean CV ROC AUC (`best_valid_roc_auc`) and the trial
counts. The Optuna study
lives next to the MLflow store (`custval.config.optuna_storage`) under a name derived from the config and the
data (`custval-churn-xgboost-<digest of data, snapshot, split, model and seed settings>-<data fingerprint>`):
tuning the same config on the same data again resumes the study; changed data (say, an edited transactions
file at the same path) starts a new one, so trials scored on other data never compete with the new ones.
Finally `train_churn` runs its model choice with the best XGBoost parameters among the candidates (the same
folds give the tuned XGBoost the same CV score and tree count), refits the chosen one on train + valid and
registers it as a new version of `custval-churn` (champion by test ROC AUC).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import mlflow
import pandas as pd

from custval.config import ChurnConfig, ModelSettings, optuna_storage
from custval.errors import CustvalWarning
from custval.features.datasets import LABEL
from custval.jobs.sequence import start_job
from custval.jobs.snapshot_jobs import study_key, training_folds
from custval.jobs.train_churn import TrainChurnResult, check_config, churn_dataset, train_churn
from custval.models.classifiers import BoostedClassifier
from custval.models.tuning import check_budget, searched_params, tune
from custval.tracking import runs
from custval.tracking.tuning import log_trial

TUNE_RUN_NAME = "tune-xgboost"
METRIC = "roc_auc"
FINGERPRINT_CHARS = 12


@dataclass
class TuneChurnResult:
    study_name: str
    storage: str
    tune_run_id: str
    best_params: dict[str, Any]
    best_value: float  # mean CV ROC AUC of the best trial (on train + valid)
    n_trials: int  # trials in the study, earlier (resumed) calls included
    n_complete: int
    n_pruned: int
    train: TrainChurnResult  # the refit with the best parameters (registered)


def study_name(config: ChurnConfig, data_fingerprint: str) -> str:
    """The study of this problem: the config's study key and the first characters of the data fingerprint."""
    return f"custval-churn-xgboost-{study_key(config)}-{data_fingerprint[:FINGERPRINT_CHARS]}"


def _check_options(config: ChurnConfig, n_trials, timeout) -> None:
    """The tuning options, before any data is loaded; a warning for model.xgboost settings the search
    overrides (those the user changed from the defaults)."""
    check_budget(n_trials, timeout)
    defaults = ModelSettings().xgboost
    overridden = [k for k in searched_params() if k in config.model.xgboost
                  and (k not in defaults or config.model.xgboost[k] != defaults[k])]
    if overridden:
        warnings.warn(f"tune churn searches {overridden}: the model.xgboost values "
                      f"{ {k: config.model.xgboost[k] for k in overridden} } are not used", CustvalWarning,
                      stacklevel=3)


def tune_churn(config: ChurnConfig, *, n_trials: int, timeout: float | None = None,
               tracking_uri: str | None = None, promote: bool = False) -> TuneChurnResult:
    """Search XGBoost parameters by cross-validation on the churn training rows (resuming the study of this
    config and data), log the search under a parent run, then choose, refit, log and register with
    `train_churn`."""
    config = check_config(config)
    _check_options(config, n_trials, timeout)
    with start_job(outputs={"output": config.output}, tracking_uri=tracking_uri,
                   experiment=config.experiment) as job:
        return _tune(config, job, n_trials, timeout, promote)


def _tune(config: ChurnConfig, job, n_trials: int, timeout: float | None, promote: bool) -> TuneChurnResult:
    data = churn_dataset(config)
    rows = pd.concat([data.train, data.valid], ignore_index=True)
    X, y = rows[data.features], rows[LABEL].to_numpy().astype("int8")
    folds = training_folds(config, rows, y, data.kind)
    uri = job.tracking_uri
    storage = optuna_storage(uri)
    name = study_name(config, data.fingerprint)
    # early stopping on the configured metric, as train_churn: the first (base) trial is the untuned model
    base = {"n_jobs": 2, "eval_metric": BoostedClassifier().eval_metric, **dict(config.model.xgboost)}
    with runs.tracked_run(config.experiment, config=config.as_dict(), run_name=TUNE_RUN_NAME,
                          data_fingerprint=data.fingerprint,
                          tags={"custval.optuna_study": name, "custval.optuna_storage": storage}) as run:
        result = tune("xgboost", X, y, folds=folds, n_trials=n_trials, timeout=timeout, seed=config.seed,
                      storage=storage, study_name=name, metric=METRIC, base_params=base, start_with_base=True,
                      callbacks=[log_trial])
        n_trials_total = len(result.study.trials)
        mlflow.log_params({f"best.{k}": v for k, v in result.best_params.items() if k != "callbacks"})
        mlflow.log_metrics({f"best_valid_{METRIC}": result.best_value, "n_trials": float(n_trials_total),
                            "n_complete": float(result.n_complete), "n_pruned": float(result.n_pruned)})
        tune_run_id = run.info.run_id
    best = {k: v for k, v in result.best_params.items() if k not in ("random_state", "callbacks")}
    trained = train_churn(config, tracking_uri=uri, xgboost_params=best, dataset=data, promote=promote,
                          tags={"custval.tuned_by": tune_run_id, "custval.optuna_study": name})
    return TuneChurnResult(study_name=name, storage=storage, tune_run_id=tune_run_id, best_params=best,
                           best_value=float(result.best_value), n_trials=n_trials_total,
                           n_complete=result.n_complete, n_pruned=result.n_pruned, train=trained)
