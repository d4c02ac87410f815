"""What the churn and propensity jobs share besides their config (custval.config.SnapshotJobConfig): checking
the model settings with the estimators' own rules, the XGBoost arguments, and fitting a calibrated XGBoost."""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

from custval.errors import ConfigError, CustvalError
from custval.jobs.sequence import check_settings
from custval.models.classifiers import BoostedClassifier, CalibratedClassifier, TreeClassifier
from custval.tracking.models import load_classifier_model
from custval.tracking.registry import HoldoutScore, champion_version

JOB_XGBOOST_KEYS = ("random_state", "callbacks")  # set by the job, not the config


def check_xgboost(name: str, value: dict[str, Any]) -> None:
    """`value` must be BoostedClassifier keyword arguments that its own parameter checks accept: unknown
    keys and bad values are ConfigErrors named `<name>.<key>`, raised before any data is loaded."""
    for key in JOB_XGBOOST_KEYS:
        if key in value:
            raise ConfigError(f"{name}.{key} is set by the job (the seed is `seed`)")
    allowed = sorted(set(BoostedClassifier().get_params()) - set(JOB_XGBOOST_KEYS))
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise ConfigError(f"{name}.{unknown[0]}: unknown BoostedClassifier setting; allowed: {allowed}")
    check_settings(lambda: BoostedClassifier(**value), prefix=f"{name}.")


def check_models(config) -> None:
    """The `model` section of a churn or propensity config, by the estimators' own checks."""
    model = config.model
    check_xgboost("model.xgboost", model.xgboost)
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


def fit_boosted(config, X_train, y_train, X_valid, y_valid, extra=None):
    """XGBoost with early stopping on valid, then calibrated on valid: (raw, calibrated)."""
    raw = BoostedClassifier(**xgboost_kwargs(config, extra)).fit(X_train, y_train, eval_set=(X_valid, y_valid))
    return raw, CalibratedClassifier(estimator=raw, method=config.model.calibration).fit(X_valid, y_valid)


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
