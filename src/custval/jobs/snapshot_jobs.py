"""What the churn and propensity jobs share besides their config (custval.config.SnapshotJobConfig): checking
the model settings with the estimators' own rules, the XGBoost arguments, the cross-validation folds of the
training rows and the model chosen on them (custval.models.classifiers.selection).

The roles of the splits: train and valid together are the training rows. Cross-validation on them (folds by
customer for snapshots) chooses the candidate, finds XGBoost's tree count, and gives every row an out-of-fold
score; the chosen candidate is refitted on all of them, and calibrated on the out-of-fold scores of the valid
rows (snapshots: the latest training cutoff, nearest to the scoring date, whose churn rate the calibration then
follows) or of every row (a customer table, split at random: no row is nearer than another). Test is used
for nothing but the test metrics. The readable tree keeps the simple roles: fitted on train, calibrated on valid.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from custval.errors import ConfigError, CustvalError
from custval.jobs.sequence import check_settings
from custval.models.classifiers import (
    BoostedClassifier,
    CalibratedClassifier,
    LogisticClassifier,
    TreeClassifier,
)
from custval.models.classifiers.selection import (
    Folds,
    ModelChoice,
    check_candidates,
    choose_model,
    cv_folds,
    fit_chosen,
)
from custval.tracking.models import load_classifier_model
from custval.tracking.registry import HoldoutScore, champion_version

JOB_XGBOOST_KEYS = ("random_state", "callbacks")  # set by the job, not the config


def check_kwargs(name: str, value: dict[str, Any], cls, job_keys: tuple[str, ...] = ()) -> None:
    """`value` must be keyword arguments of the estimator `cls` that its own parameter checks accept: keys the
    job sets, unknown keys and bad values are ConfigErrors named `<name>.<key>`, raised before any data is
    loaded."""
    for key in job_keys:
        if key in value:
            raise ConfigError(f"{name}.{key} is set by the job (the seed is `seed`)")
    allowed = sorted(set(cls().get_params()) - set(job_keys))
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise ConfigError(f"{name}.{unknown[0]}: unknown {cls.__name__} setting; allowed: {allowed}")
    check_settings(lambda: cls(**value), prefix=f"{name}.")


def check_xgboost(name: str, value: dict[str, Any]) -> None:
    """BoostedClassifier keyword arguments (check_kwargs); random_state and callbacks are the job's."""
    check_kwargs(name, value, BoostedClassifier, JOB_XGBOOST_KEYS)


def check_models(config) -> None:
    """The `model` section of a churn or propensity config, by the estimators' and the selection's own checks."""
    model = config.model
    check_settings(lambda: check_candidates(model.candidates), prefix="model.")
    check_xgboost("model.xgboost", model.xgboost)
    check_kwargs("model.logistic", model.logistic, LogisticClassifier)
    check_settings(lambda: CalibratedClassifier(method=model.calibration), prefix="model.",
                   names={"method": "calibration"})
    tree = getattr(model, "tree", None)
    if tree is not None:
        check_settings(lambda: TreeClassifier(max_depth=tree.max_depth, min_samples_leaf=tree.min_samples_leaf),
                       prefix="model.tree.")


def study_key(config) -> str:
    """A short digest of everything that decides the training data and the model family (not where results
    go): equal configs give equal keys."""
    raw = config.as_dict()
    keep = {k: raw[k] for k in ("data", "simulate", "snapshots", "split", "model", "seed") if k in raw}
    return hashlib.sha256(json.dumps(keep, sort_keys=True, default=str).encode()).hexdigest()[:12]


def xgboost_kwargs(config, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """BoostedClassifier arguments: the job's seed and threads, the config's settings, then `extra` (tuned)."""
    return {"random_state": config.seed, "n_jobs": 2, **dict(config.model.xgboost), **dict(extra or {})}


@dataclass
class ChosenModel:
    """The model choice on the training rows (train then valid) and the chosen model refitted on them and
    calibrated (module docstring)."""

    choice: ModelChoice
    model: CalibratedClassifier
    xgboost_params: dict[str, Any]

    @property
    def name(self) -> str:
        return self.choice.chosen

    @property
    def xgboost_trees(self) -> int | None:
        """XGBoost's tree count found by the cross-validation (when xgboost is a candidate)."""
        score = self.choice.scores.get("xgboost")
        return None if score is None else score.n_trees


def training_folds(config, rows: pd.DataFrame, y: np.ndarray, kind: str) -> Folds:
    """The cross-validation folds of the training rows: stratified, and by customer for snapshots."""
    groups = rows["customer_id"].to_numpy() if kind == "snapshots" else None
    return cv_folds(y, n_splits=config.model.cv_folds, groups=groups, random_state=config.seed)


def fit_choice(config, train: pd.DataFrame, valid: pd.DataFrame, features: list[str], label: str, kind: str,
               extra: dict[str, Any] | None = None, folds: Folds | None = None) -> ChosenModel:
    """The candidates of `config.model` cross-validated on train + valid, the best refitted on all those rows
    and calibrated (on valid's out-of-fold scores for snapshots, on every row's for a table). `extra`: XGBoost
    settings over config.model.xgboost (tuned ones); `folds`: training_folds of the same rows, when known."""
    rows = pd.concat([train, valid], ignore_index=True)
    X, y = rows[features], rows[label].to_numpy().astype("int8")
    folds = training_folds(config, rows, y, kind) if folds is None else folds
    xgboost_params = xgboost_kwargs(config, extra)
    logistic_params = dict(config.model.logistic)
    choice = choose_model(X, y, folds, candidates=config.model.candidates, xgboost_params=xgboost_params,
                          logistic_params=logistic_params, calibration=config.model.calibration,
                          random_state=config.seed)
    calibration_rows = np.arange(len(train), len(rows)) if kind == "snapshots" else None
    model = fit_chosen(choice, X, y, xgboost_params=xgboost_params, logistic_params=logistic_params,
                       calibration_rows=calibration_rows, random_state=config.seed)
    return ChosenModel(choice, model, xgboost_params)


def finite(mapping: dict[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in mapping.items() if v is not None and math.isfinite(float(v))}


def champion_on_holdout(name: str | None, score) -> HoldoutScore | None:
    """The current champion of the registered model `name`, loaded as data and scored by `score` (a function
    of the loaded model returning the champion metric on this run's own test rows); None without a champion.
    A champion that cannot score those rows (another schema, categories it never saw, other outputs) gives
    the reason instead, and is not comparable."""
    version = champion_version(name) if name else None
    if version is None:
        return None
    try:
        model, _ = load_classifier_model(f"models:/{name}/{version}", setting="registered_model")
        return HoldoutScore(version, float(score(model)))
    except CustvalError as exc:
        return HoldoutScore(version, None, str(exc))
    except KeyError as exc:
        return HoldoutScore(version, None, f"it has no output {exc}")
