"""Hyper-parameter search for the churn/propensity classifiers with Optuna.

`tune` runs a TPE search (seeded, so the same data, seed and a fresh storage give the same trials) with a
median pruner. Trials are scored one of two ways:
- cross-validation (`folds`, what `custval tune churn` uses): every trial is fitted on each fold's training
  rows and scored on its held-out rows, XGBoost as custval.models.classifiers.selection.boosted_cv does it
  (each fold stops early on its held-out rows but is scored at the tree count found on the other folds, so
  no score comes from a stopping round chosen on the rows it scores); a trial reports its running mean after
  each fold, so clearly bad trials stop after two folds;
- a holdout (X_valid, y_valid): fitted on the training rows, scored on the validation rows, which are also
  XGBoost's early-stopping rows: a small validation set then favours trials that happen to stop early on it.
  XGBoost trials report their validation metric every few boosting rounds through `OptunaPruningCallback`,
  so clearly bad trials stop early; the tree has no rounds and reports once.
With `start_with_base`, the first trial of a new study fits `base_params` alone (no searched parameter), so
the best trial is never worse, on the search's own score, than the model the search starts from. Each
trial records on itself what a log of it needs (user attrs: the fixed constructor params, XGBoost's best
iteration and per-round validation curve), and `callbacks` (Optuna's own `(study, frozen_trial)` callbacks)
see every finished trial (`optimize`, shared with custval.models.uplift.tuning, also calls them for a
trial whose error propagates): `custval.tracking.tuning.log_trial` makes each one a nested MLflow run. This module
does not import MLflow. Studies live in an Optuna storage (`custval.config.optuna_storage` puts it next to
the MLflow store), so calling `tune` again with the same storage and study name continues the study.
"""

from __future__ import annotations

import hashlib
import math
import numbers
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
import pandas as pd
import xgboost as xgb
from optuna.trial import FrozenTrial, TrialState
from scipy.special import expit

from custval.errors import ConfigError, CustvalWarning, ModelError, shown
from custval.metrics import classification as cm
from custval.models.classifiers import BoostedClassifier, TreeClassifier
from custval.models.classifiers.selection import Folds, boosted_cv, per_fold

KINDS = ("xgboost", "tree")
# metric -> (study direction, the XGBoost eval_metric that ranks trials the same way during boosting)
METRICS: dict[str, tuple[str, str]] = {
    "roc_auc": ("maximize", "auc"),
    "pr_auc": ("maximize", "aucpr"),
    "log_loss": ("minimize", "logloss"),
    "brier": ("minimize", "logloss"),
}
_METRIC_FUNCTIONS: dict[str, Callable[[Any, Any], float]] = {
    "roc_auc": cm.roc_auc, "pr_auc": cm.pr_auc, "log_loss": cm.log_loss, "brier": cm.brier,
}
# Trials of XGBoost boost up to this many rounds and stop early on the validation set; `best_params` keeps
# the same pair so a refit on (train, valid) finds its own number of rounds. base_params may override both.
XGBOOST_N_ESTIMATORS = 2000
XGBOOST_EARLY_STOPPING_ROUNDS = 50
PRUNE_EVERY = 10  # boosting rounds between reports to the pruner
PRUNER_STARTUP_TRIALS = 5  # no pruning until this many trials have completed
PRUNER_WARMUP_ROUNDS = 30  # and not before this many boosting rounds of the trial (holdout)
PRUNER_WARMUP_FOLDS = 1  # cross-validation: not before the trial's second fold
# XGBoost metrics where higher is better (as xgboost.callback.EarlyStopping decides it)
_XGB_MAXIMIZE = ("auc", "aucpr", "pre", "map", "ndcg")
# What each trial records about itself (trial user attrs), so a callback can log it from the frozen trial:
FIXED_PARAMS_ATTR = "fixed_params"  # the constructor kwargs not searched (non-scalars as text)
BEST_ITERATION_ATTR = "best_iteration"  # XGBoost trials that completed (CV: the refit's tree count - 1)
CURVE_ATTR = "valid_curve"  # XGBoost: {"metric": eval_metric, "rounds": [...], "values": [...]} (raw values;
# cross-validation: the mean over the folds' held-out rows, up to the shortest fold)
BASE_TRIAL_ATTR = "base_trial"  # set on the trial that fits base_params alone (start_with_base)
# Study user attrs set by `tune` on a new study
STUDY_KIND_ATTR, STUDY_METRIC_ATTR, STUDY_FINGERPRINT_ATTR = "kind", "metric", "data_fingerprint"

TrialCallback = Callable[[optuna.Study, FrozenTrial], None]


# ------------------------------------------------------------------------------------------ search spaces
def xgboost_space(trial: optuna.trial.BaseTrial) -> dict[str, Any]:
    """BoostedClassifier parameters for one trial: learning rate and the usual regularisers, log scales
    where the useful values span orders of magnitude."""
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
        "max_depth": trial.suggest_int("max_depth", 2, 8),
        "min_child_weight": trial.suggest_float("min_child_weight", 0.5, 50.0, log=True),
        "subsample": trial.suggest_float("subsample", 0.5, 1.0),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.4, 1.0),
        "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 10.0, log=True),
        "reg_alpha": trial.suggest_float("reg_alpha", 1e-3, 10.0, log=True),
        "gamma": trial.suggest_float("gamma", 0.0, 5.0),
    }


def tree_space(trial: optuna.trial.BaseTrial) -> dict[str, Any]:
    """TreeClassifier parameters for one trial. ccp_alpha is searched on a log scale from 1e-6 (in effect no
    pruning) to 1e-2 (a log scale cannot reach 0 itself)."""
    return {
        "max_depth": trial.suggest_int("max_depth", 2, 8),
        "min_samples_leaf": trial.suggest_int("min_samples_leaf", 10, 1000, log=True),
        "ccp_alpha": trial.suggest_float("ccp_alpha", 1e-6, 1e-2, log=True),
    }


SPACES: dict[str, Callable[[optuna.trial.BaseTrial], dict[str, Any]]] = {
    "xgboost": xgboost_space, "tree": tree_space,
}
CLASSIFIERS = {"xgboost": BoostedClassifier, "tree": TreeClassifier}


class _SpaceNames:
    """Stands in for an Optuna trial to list the parameter names a search space suggests."""

    def __init__(self):
        self.names: list[str] = []

    def _suggest(self, name, low, *args, **kwargs):
        self.names.append(name)
        return low

    suggest_float = suggest_int = _suggest

    def suggest_categorical(self, name, choices):
        self.names.append(name)
        return choices[0]


def searched_params(kind: str = "xgboost") -> list[str]:
    """The settings the search space of `kind` suggests (e.g. xgboost_space's), in order."""
    names = _SpaceNames()
    SPACES[kind](names)
    return names.names


# ---------------------------------------------------------------------------------------- pruning callback
def _xgb_higher_is_better(metric: str) -> bool:
    name = metric.split("@")[0].split(":")[0]
    return name in _XGB_MAXIMIZE


class OptunaPruningCallback(xgb.callback.TrainingCallback):
    """Report XGBoost's validation metric to an Optuna trial every `every` boosting rounds and raise
    `optuna.TrialPruned` when the trial's pruner says so.

    The value comes from `evals_log[dataset][metric]` (default: the last evaluation set, which is the
    validation set when fitting with `eval_set`, and its last metric, the one early stopping uses). It is
    reported at step = number of rounds so far, on the study's scale: a lower-is-better metric such as
    logloss is negated when the study maximises (and an AUC when it minimises), so the pruner compares trials
    the right way round. `history` keeps the raw values by round.
    """

    def __init__(self, trial: optuna.trial.BaseTrial, every: int = PRUNE_EVERY, *, dataset: str | None = None,
                 metric: str | None = None):
        if isinstance(every, bool) or not isinstance(every, numbers.Integral) or every < 1:
            raise ConfigError(f"every must be a positive integer (OptunaPruningCallback), got {shown(every)}")
        super().__init__()
        self.trial = trial
        self.every = int(every)
        self.dataset = dataset
        self.metric = metric
        self.history: dict[int, float] = {}
        self.metric_used: str | None = None

    def before_training(self, model):
        self.history = {}
        return model

    def after_iteration(self, model, epoch: int, evals_log) -> bool:
        step = epoch + 1
        if step % self.every:
            return False
        if not evals_log:
            raise ConfigError("OptunaPruningCallback needs a validation set: fit with eval_set")
        dataset = self.dataset if self.dataset is not None else list(evals_log)[-1]
        if dataset not in evals_log:
            raise ConfigError(f"OptunaPruningCallback: no evaluation set {dataset!r}; have {list(evals_log)}")
        metrics = evals_log[dataset]
        metric = self.metric if self.metric is not None else list(metrics)[-1]
        if metric not in metrics:
            raise ConfigError(f"OptunaPruningCallback: no metric {metric!r} on {dataset!r}; have {list(metrics)}")
        last = metrics[metric][-1]
        value = float(last[0] if isinstance(last, tuple) else last)  # xgb.cv logs (mean, std)
        self.history[step] = value
        self.metric_used = metric
        maximize = self.trial.study.direction == optuna.study.StudyDirection.MAXIMIZE
        self.trial.report(value if _xgb_higher_is_better(metric) == maximize else -value, step)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned after {step} rounds: {dataset} {metric} = {value:.6g}")
        return False


# ------------------------------------------------------------------------------------------------- tune
@dataclass
class TuneResult:
    """Outcome of `tune`. `best_params` are the full constructor kwargs of the classifier (base params, the
    best trial's params and, for XGBoost, many rounds with early stopping); the counts cover the whole study,
    earlier (resumed) calls included."""

    study: optuna.Study
    best_params: dict[str, Any]
    best_value: float
    n_complete: int
    n_pruned: int
    metric: str
    kind: str


def check_budget(n_trials: Any, timeout: Any) -> None:
    """The search budget: n_trials an integer >= 1, timeout None or seconds > 0 (ConfigError naming it)."""
    if isinstance(n_trials, bool) or not isinstance(n_trials, numbers.Integral) or n_trials < 1:
        raise ConfigError(f"n_trials must be an integer >= 1, got {shown(n_trials)}")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, numbers.Real)
                                or not math.isfinite(timeout) or timeout <= 0):
        raise ConfigError(f"timeout must be a number of seconds > 0 or None, got {shown(timeout)}")


def _check_folds(folds: Any, n_rows: int) -> Folds:
    if not isinstance(folds, Sequence) or isinstance(folds, str) or not folds or not all(
            isinstance(f, Sequence) and len(f) == 2 for f in folds):
        raise ConfigError(f"folds must be a non-empty list of (training rows, held-out rows) position arrays, "
                          f"got {shown(folds)}")
    checked = []
    for train, test in folds:
        train, test = np.asarray(train), np.asarray(test)
        if not (np.issubdtype(train.dtype, np.integer) and np.issubdtype(test.dtype, np.integer) and train.size
                and test.size and min(train.min(), test.min()) >= 0 and max(train.max(), test.max()) < n_rows):
            raise ConfigError(f"folds must hold row positions in [0, {n_rows}) (non-empty arrays of integers)")
        checked.append((train, test))
    return checked


def _check_options(kind: Any, metric: Any, n_trials: Any, timeout: Any, seed: Any, base_params: Any,
                   callbacks: Any) -> None:
    if kind not in KINDS:
        raise ConfigError(f"kind must be one of {list(KINDS)}, got {shown(kind)}")
    if metric not in METRICS:
        raise ConfigError(f"metric must be one of {list(METRICS)}, got {shown(metric)}")
    check_search(n_trials, timeout, seed, base_params, callbacks)


def check_search(n_trials: Any, timeout: Any, seed: Any, base_params: Any, callbacks: Any) -> None:
    """The options every search shares (ConfigError naming the bad one): the budget (check_budget), seed an
    integer >= 0, base_params a mapping of names, callbacks a list of Optuna callbacks."""
    check_budget(n_trials, timeout)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ConfigError(f"seed must be an integer >= 0, got {shown(seed)}")
    if base_params is not None and (not isinstance(base_params, Mapping)
                                    or not all(isinstance(k, str) for k in base_params)):
        raise ConfigError(f"base_params must be a mapping of parameter names to values, got {shown(base_params)}")
    if not isinstance(callbacks, Sequence) or isinstance(callbacks, str) or not all(map(callable, callbacks)):
        raise ConfigError(f"callbacks must be a list of callables (study, frozen_trial), got {shown(callbacks)}")


def _fingerprint(*parts: Any) -> str:
    """sha256 of the tuning data, stored on the study so a resumed study can tell when the data changed."""
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, pd.DataFrame | pd.Series):
            digest.update(repr(list(part.columns) if isinstance(part, pd.DataFrame) else part.name).encode())
            digest.update(pd.util.hash_pandas_object(part, index=False).to_numpy().tobytes())
        else:
            arr = np.ascontiguousarray(np.asarray(part))
            digest.update(f"{arr.dtype}{arr.shape}".encode())
            digest.update(pd.util.hash_array(arr.ravel()).tobytes() if arr.dtype == object else arr.tobytes())
    return digest.hexdigest()


def _open_study(*, kind: str, metric: str, seed: int, storage: str | None, study_name: str,
                fingerprint: str, warmup: int = PRUNER_WARMUP_ROUNDS) -> optuna.Study:
    direction = METRICS[metric][0]
    try:
        study = optuna.create_study(
            storage=storage, study_name=study_name, direction=direction, load_if_exists=True,
            sampler=optuna.samplers.TPESampler(seed=seed),
            pruner=optuna.pruners.MedianPruner(n_startup_trials=PRUNER_STARTUP_TRIALS, n_warmup_steps=warmup),
        )
    except ValueError as exc:  # e.g. an existing study of the same name with another direction
        raise ConfigError(f"tune: cannot open study {study_name!r} in {storage}: {exc}") from exc
    if study.direction.name.lower() != direction:
        raise ConfigError(f"tune: study {study_name!r} in {storage} is set to {study.direction.name.lower()}, "
                          f"metric {metric} needs {direction}; use another study_name")
    attrs = study.user_attrs
    for key, value in ((STUDY_KIND_ATTR, kind), (STUDY_METRIC_ATTR, metric)):
        if key in attrs and attrs[key] != value:
            raise ConfigError(f"tune: study {study_name!r} in {storage} was created with {key}={attrs[key]!r}, "
                              f"not {value!r}; use another study_name")
    if STUDY_FINGERPRINT_ATTR in attrs and attrs[STUDY_FINGERPRINT_ATTR] != fingerprint:
        warnings.warn(f"tune: study {study_name!r} was started on different data; its earlier trials are "
                      "compared with the new ones as if the data were the same", CustvalWarning, stacklevel=3)
    if not attrs:
        study.set_user_attr(STUDY_KIND_ATTR, kind)
        study.set_user_attr(STUDY_METRIC_ATTR, metric)
        study.set_user_attr(STUDY_FINGERPRINT_ATTR, fingerprint)
    n_earlier = len(study.get_trials(deepcopy=False))
    if n_earlier:
        # A sampler seeded as in the first call would replay that call's random start-up points; derive its
        # seed from (seed, trials so far) instead: still reproducible, and new points.
        study.sampler = optuna.samplers.TPESampler(seed=_resume_seed(seed, n_earlier))
    return study


def _resume_seed(seed: int, n_earlier: int) -> int:
    return int(np.random.SeedSequence([seed, n_earlier]).generate_state(1)[0])


def _full_params(kind: str, metric: str, seed: int, base_params: Mapping[str, Any] | None,
                 trial_params: Mapping[str, Any]) -> dict[str, Any]:
    """Constructor kwargs: defaults (random_state=seed; the classifier's own defaults of the searched settings,
    so a trial that searches none still names them all; XGBoost: many rounds, early stopping on the XGBoost
    metric that ranks like `metric`) <- base_params <- the trial's params."""
    defaults = CLASSIFIERS[kind]()
    params: dict[str, Any] = {"random_state": seed} | {name: getattr(defaults, name) for name in searched_params(kind)}
    if kind == "xgboost":
        params |= {"n_estimators": XGBOOST_N_ESTIMATORS, "early_stopping_rounds": XGBOOST_EARLY_STOPPING_ROUNDS,
                   "eval_metric": METRICS[metric][1]}
    return params | dict(base_params or {}) | dict(trial_params)


def scalar_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Params as JSON scalars (other values as their text) for the trial's user attrs; callbacks left out."""
    return {k: (v if isinstance(v, int | float | str | bool) else str(v))
            for k, v in params.items() if k != "callbacks"}


def optimize(study: optuna.Study, objective: Callable[[optuna.Trial], float], *, n_trials: int,
             timeout: float | None, callbacks: Sequence[TrialCallback]) -> None:
    """`study.optimize` with `callbacks` called after every trial, also after a failed one whose error propagates
    out of `optimize` (Optuna calls none for it), so a log of the trials never misses the one that failed."""
    running: dict[str, int] = {}

    def started(trial: optuna.Trial) -> float:
        running["started"] = trial.number
        return objective(trial)

    def reported(_study: optuna.Study, trial: FrozenTrial) -> None:
        running["reported"] = trial.number

    try:
        study.optimize(started, n_trials=int(n_trials), timeout=timeout, callbacks=[reported, *callbacks])
    except BaseException:
        _run_callbacks_on_failure(study, running, callbacks)
        raise


def _run_callbacks_on_failure(study: optuna.Study, running: Mapping[str, int],
                              callbacks: Sequence[TrialCallback]) -> None:
    """Optuna calls no callback for a trial whose error propagates out of `optimize`: call them here for
    the trial that was running, when it FAILED and Optuna has not called them for it."""
    number = running.get("started")
    if number is None or running.get("reported") == number or not callbacks:
        return
    trial = next((t for t in study.get_trials(deepcopy=False) if t.number == number), None)
    if trial is not None and trial.state == TrialState.FAIL:
        for callback in callbacks:
            callback(study, trial)


def tune(kind: str, X_train: pd.DataFrame, y_train: Any, X_valid: pd.DataFrame | None = None, y_valid: Any = None,
         *, folds: Folds | None = None, n_trials: int = 20, timeout: float | None = None, seed: int = 0,
         storage: str | None = None, study_name: str | None = None, metric: str = "roc_auc",
         base_params: Mapping[str, Any] | None = None, callbacks: Sequence[TrialCallback] = (),
         start_with_base: bool = False) -> TuneResult:
    """Search the hyper-parameters of a `BoostedClassifier` ("xgboost") or `TreeClassifier` ("tree").

    Give either `folds` (cross-validation over X_train, y_train: (training rows, held-out rows) position
    pairs, e.g. custval.models.classifiers.selection.cv_folds) or (X_valid, y_valid) (a holdout; module
    docstring). Every trial is scored by `metric` (roc_auc, pr_auc: maximised; log_loss, brier: minimised;
    `custval.metrics.classification`; with folds, its mean over the folds' held-out rows); XGBoost early-stops
    on the metric of its own that ranks the same way (`METRICS`: auc, aucpr or logloss) unless base_params set
    `eval_metric`. Runs `n_trials` more trials (fewer if `timeout` seconds pass first: then the trial count, and
    so the result, depends on the machine's speed). `storage` (an Optuna storage URL, e.g.
    `custval.config.optuna_storage()`; None = in memory) and `study_name` (default `custval-<kind>`) name the
    study: an existing one is continued. `base_params` are fixed constructor kwargs (n_jobs, class_weight, ...)
    under the searched ones; `start_with_base`: a new study's first trial fits them alone.
    `callbacks` are Optuna callbacks `(study, frozen_trial)`, called after every trial, a failed one whose
    error propagates included (e.g. `[custval.tracking.tuning.log_trial]`: each trial a nested MLflow run of
    the active run). Errors inside a trial (bad data) propagate.
    `best_params` combine the best trial of the whole study (possibly from an earlier call) with this call's
    base_params (for XGBoost: many rounds with early stopping, so a refit finds its own tree count, e.g. by
    the same cross-validation). ConfigError for an unknown kind or metric, n_trials < 1, timeout <= 0, both
    or neither of folds and X_valid, or a stored study of this name made for another kind or metric;
    CustvalWarning when that study was started on other data.
    """
    _check_options(kind, metric, n_trials, timeout, seed, base_params, callbacks)
    if (folds is None) == (X_valid is None):
        raise ConfigError("tune: give either folds (cross-validation) or X_valid and y_valid (a holdout)")
    if folds is not None:
        folds = _check_folds(folds, len(X_train))
    study_name = study_name or f"custval-{kind}"
    score = _METRIC_FUNCTIONS[metric]
    y_valid_arr = None if y_valid is None else np.asarray(y_valid)

    def holdout_value(trial: optuna.Trial, params: dict[str, Any]) -> float:
        pruning = None
        try:
            if kind == "xgboost":
                pruning = OptunaPruningCallback(trial, PRUNE_EVERY)
                model = BoostedClassifier(**params | {"callbacks": [*(params.get("callbacks") or []), pruning]})
                model.fit(X_train, y_train, eval_set=(X_valid, y_valid))
                trial.set_user_attr(BEST_ITERATION_ATTR, int(model.best_iteration_))
            else:
                model = TreeClassifier(**params).fit(X_train, y_train)
            value = float(score(y_valid_arr, model.predict_proba(X_valid)[:, 1]))
            if kind == "tree":
                trial.report(value, 1)  # no boosting rounds: one report, never pruned
            return value
        finally:
            if pruning is not None and pruning.history:
                trial.set_user_attr(CURVE_ATTR, {"metric": pruning.metric_used, "rounds": list(pruning.history),
                                                 "values": list(pruning.history.values())})

    y_all = np.asarray(y_train)

    def cv_value(trial: optuna.Trial, params: dict[str, Any]) -> float:
        reported: list[float] = []  # the metric on the study's own scale (its direction is the metric's)

        def report(k: int, p_held_out: np.ndarray) -> None:
            reported.append(float(score(y_all[folds[k][1]], p_held_out)))
            trial.report(float(np.mean(reported)), k + 1)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned after fold {k + 1} of {len(folds)}: mean {metric} "
                                         f"{np.mean(reported):.6g}")

        if kind == "tree":
            p = np.empty(len(y_all))
            for k, (train, test) in enumerate(folds):
                model = TreeClassifier(**params).fit(X_train.iloc[train], y_all[train])
                p[test] = model.predict_proba(X_train.iloc[test])[:, 1]
                report(k, p[test])
            return float(np.mean(per_fold(score, y_all, p, folds)))
        curves: list[list[float]] = []

        def after_fold(k: int, model: BoostedClassifier, margins: np.ndarray) -> None:
            results = model.evals_result_.get("validation_0", {})
            if results:
                curves.append(list(results[list(results)[-1]]))
            report(k, expit(margins))

        try:
            result = boosted_cv(X_train, y_all, folds, params, after_fold=after_fold)
        finally:
            if curves:
                rounds = list(range(PRUNE_EVERY, min(map(len, curves)) + 1, PRUNE_EVERY))
                trial.set_user_attr(CURVE_ATTR, {
                    "metric": params.get("eval_metric", "logloss"), "rounds": rounds,
                    "values": [float(np.mean([c[r - 1] for c in curves])) for r in rounds]})
        trial.set_user_attr(BEST_ITERATION_ATTR, int(result.n_trees) - 1)
        return float(np.mean(per_fold(score, y_all, expit(result.margins), folds)))

    def objective(trial: optuna.Trial) -> float:
        searched = {} if trial.user_attrs.get(BASE_TRIAL_ATTR) else SPACES[kind](trial)
        params = _full_params(kind, metric, seed, base_params, searched)
        trial.set_user_attr(FIXED_PARAMS_ATTR, scalar_params({k: v for k, v in params.items() if k not in searched}))
        return cv_value(trial, params) if folds is not None else holdout_value(trial, params)

    if folds is None:
        fingerprint = _fingerprint(X_train, y_train, X_valid, y_valid)
    else:
        fingerprint = _fingerprint(X_train, y_train, *(test for _, test in folds))
    study = _open_study(kind=kind, metric=metric, seed=seed, storage=storage, study_name=study_name,
                        fingerprint=fingerprint, warmup=PRUNER_WARMUP_ROUNDS if folds is None else PRUNER_WARMUP_FOLDS)
    if start_with_base and not study.get_trials(deepcopy=False):
        study.enqueue_trial({}, user_attrs={BASE_TRIAL_ATTR: True})

    optimize(study, objective, n_trials=n_trials, timeout=timeout, callbacks=callbacks)

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    pruned = study.get_trials(deepcopy=False, states=(TrialState.PRUNED,))
    if not complete:
        raise ModelError(f"tune: no trial of study {study_name!r} completed ({len(pruned)} pruned); "
                         "run more trials or a longer timeout")
    best = study.best_trial
    return TuneResult(study=study, best_params=_full_params(kind, metric, seed, base_params, best.params),
                      best_value=float(best.value), n_complete=len(complete), n_pruned=len(pruned),
                      metric=metric, kind=kind)
