"""Optuna tuning of an uplift learner's XGBoost base settings on validation Qini.

`tune_learner` searches the `xgboost` settings that `make_learner` gives every base model of one learner (the
search space of the churn tuning, `custval.models.tuning.xgboost_space`, over fixed `base_params` such as the
number of trees): each trial fits the learner on the training rows and is scored by the mean over treatment
arms of the validation Qini coefficient (`selection.arm_scores`), or with `n_folds` by its mean over the folds
of train + valid (`selection.pooled_folds`), exactly as `choose_learner` scores it. The
first trial fits `base_params` alone, so the best trial is never worse on validation than the untuned learner.
The sampler (TPE) and the learner are seeded by `seed`, so the same data and seed give the same trials. Each
trial records its fixed settings on itself and `callbacks` (Optuna's `(study, frozen_trial)`, e.g.
`custval.tracking.tuning.log_trial`) see every finished trial, a failed one included, as in
`custval.models.tuning.tune`. No pruning: a trial has no intermediate score. This module does not import MLflow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from custval.models.tuning import (
    BASE_TRIAL_ATTR,
    FIXED_PARAMS_ATTR,
    STUDY_METRIC_ATTR,
    TrialCallback,
    check_search,
    optimize,
    scalar_params,
    xgboost_space,
)
from custval.models.uplift.selection import arm_scores, make_learner, pooled_folds

__all__ = ["METRIC", "LearnerTuning", "tune_learner"]

METRIC = "qini"  # what a trial's value is (the mean validation Qini coefficient over treatment arms)
LEARNER_ATTR = "learner"  # study user attr: the learner tuned


@dataclass
class LearnerTuning:
    """Outcome of `tune_learner`. `best_params` is the whole `xgboost` dict for `make_learner` (base_params
    under the best trial's searched settings)."""

    study: optuna.Study
    learner: str
    best_params: dict[str, Any]
    best_value: float  # the best trial's mean validation Qini
    base_value: float  # the first trial's: base_params alone (the untuned learner)
    n_complete: int


def tune_learner(name: str, X_train, y_train, t_train, X_valid, y_valid, t_valid, *, arms: Sequence, control,
                 continuous: bool = False, base_params: Mapping[str, Any] | None = None, n_trials: int,
                 seed: int = 0, callbacks: Sequence[TrialCallback] = (), timeout: float | None = None,
                 members: Sequence[str] | None = None, n_folds: int = 0) -> LearnerTuning:
    """Search the XGBoost base settings of the learner `name` (selection.LEARNERS) to maximise its mean
    validation Qini over `arms` (module docstring). Runs `n_trials` trials in a new in-memory study (fewer if
    `timeout` seconds pass first; the first trial always runs). `members`: the learners `average` is the mean
    of (make_learner's; the same settings for all). `n_folds` >= 2: each trial scored by its mean over that
    many folds of train + valid (choose_learner's folds with the same seed). ConfigError for n_trials < 1, timeout <= 0, a
    seed < 0, base_params not a mapping, callbacks not callables, or a learner make_learner refuses."""
    check_search(n_trials, timeout, seed, base_params, callbacks)
    base = dict(base_params or {})
    make_learner(name, xgboost=base, continuous=continuous, control=control, arms=arms,
                 members=members).check_params()
    arms = list(arms)

    def objective(trial: optuna.Trial) -> float:
        searched = {} if trial.user_attrs.get(BASE_TRIAL_ATTR) else xgboost_space(trial)
        params = base | searched
        trial.set_user_attr(FIXED_PARAMS_ATTR, scalar_params({k: v for k, v in params.items() if k not in searched}))
        if not n_folds:
            return fit_and_score(params, X_train, y_train, t_train, X_valid, y_valid, t_valid)
        return float(np.mean([fit_and_score(params, *fold) for fold in pooled_folds(
            X_train, y_train, t_train, X_valid, y_valid, t_valid, n_folds=n_folds, seed=seed)]))

    def fit_and_score(params, X_fit, y_fit, t_fit, X_score, y_score, t_score) -> float:
        model = make_learner(name, xgboost=params, continuous=continuous, control=control, arms=arms,
                             random_state=seed, members=members).fit(X_fit, y_fit, t_fit)
        return float(arm_scores(y_score, model.predict(X_score), t_score, arms, control)["qini"].mean())

    study = optuna.create_study(study_name=f"custval-uplift-{name}", direction="maximize",
                                sampler=optuna.samplers.TPESampler(seed=seed))
    study.set_user_attr(STUDY_METRIC_ATTR, METRIC)
    study.set_user_attr(LEARNER_ATTR, name)
    study.enqueue_trial({}, user_attrs={BASE_TRIAL_ATTR: True})
    optimize(study, objective, n_trials=n_trials, timeout=timeout, callbacks=callbacks)
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    best = study.best_trial
    first = study.trials[0]
    return LearnerTuning(study=study, learner=name, best_params=base | best.params, best_value=float(best.value),
                         base_value=float(first.value), n_complete=len(complete))

