"""Choosing an uplift learner for a campaign: the customers split at random, stratified on arm x outcome; every
learner fitted on train and scored by its validation Qini coefficient (the mean over treatment arms of the Qini
of that arm's rows against the control's); the best refitted on train + valid. Test rows take no part.

The learners are built by name (`make_learner`) with the same XGBoost base settings, so the comparison is
between the methods, not between their base models.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from custval.errors import ConfigError, DataError
from custval.metrics.uplift import qini_auc_score, uplift_at_k, uplift_auc_score
from custval.models.classifiers import BoostedClassifier, BoostedRegressor
from custval.models.uplift._base import default_classifier, default_regressor
from custval.models.uplift.class_transformation import ClassTransformation
from custval.models.uplift.drlearner import DRLearner
from custval.models.uplift.slearner import SLearner
from custval.models.uplift.tlearner import TLearner
from custval.models.uplift.xlearner import XLearner

__all__ = ["LEARNERS", "LearnerChoice", "arm_scores", "choose_learner", "make_learner", "split_campaign"]

LEARNERS = {"s": SLearner, "t": TLearner, "x": XLearner, "dr": DRLearner, "class_transformation": ClassTransformation}
TWO_MODELS = ("x", "dr")  # learners with an outcome and an effect model


def make_learner(name: str, *, xgboost: Mapping[str, Any] | None = None, continuous: bool = False,
                 control=None, arms: Sequence | None = None, random_state: int = 0):
    """The learner `name` (LEARNERS) with XGBoost base learners of the settings `xgboost` (BoostedClassifier for a
    0/1 outcome, BoostedRegressor for an amount and for effect models; class weighting off)."""
    if name not in LEARNERS:
        raise ConfigError(f"model.learners: unknown learner {name!r}; allowed: {list(LEARNERS)}")
    if xgboost is None:  # the learners' own default base models (300 trees of depth 3)
        regressor = default_regressor(random_state)
        outcome_model = regressor if continuous else default_classifier(random_state)
    else:
        regressor = BoostedRegressor(**{**dict(xgboost), "random_state": random_state})
        outcome_model = regressor if continuous else BoostedClassifier(**{**dict(xgboost), "scale_pos_weight": None,
                                                                          "random_state": random_state})
    common = {"control": control, "arms": list(arms) if arms is not None else None, "random_state": random_state}
    if name == "class_transformation":
        if continuous:
            raise ConfigError("model.learners: class_transformation models a 0/1 outcome, not an amount "
                              "(model.target=spend)")
        return ClassTransformation(learner=outcome_model, **common)
    outcome = "continuous" if continuous else "binary"
    if name in TWO_MODELS:
        return LEARNERS[name](outcome_learner=outcome_model, effect_learner=regressor, outcome=outcome, **common)
    return LEARNERS[name](learner=outcome_model, outcome=outcome, **common)


def split_campaign(treatment, y, *, valid_fraction: float, test_fraction: float, seed: int = 0
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row positions (train, valid, test), at random, stratified on arm x outcome (x "converted" for an
    amount: spend > 0) so every part has the campaign's arm shares and response rates."""
    t = pd.Series(np.asarray(treatment, dtype=object)).astype(str).to_numpy()
    outcome = np.asarray(y, dtype=float)
    strata = pd.Series(t + "|" + (outcome > 0).astype(int).astype(str))
    counts = strata.value_counts()
    rare = counts[counts < 3]
    if len(rare):
        raise DataError("campaigns", "treatment", f"arm x outcome {rare.index[0]!r} has {int(rare.iloc[0])} "
                        "customers: too few to split into train, valid and test", rare.index[0])
    rows = np.arange(len(t))
    rest, test = train_test_split(rows, test_size=test_fraction, stratify=strata, random_state=seed)
    train, valid = train_test_split(rest, test_size=valid_fraction / (1 - test_fraction),
                                    stratify=strata.iloc[rest], random_state=seed)
    return np.sort(train), np.sort(valid), np.sort(test)


def arm_scores(y, uplift: np.ndarray, treatment, arms: Sequence, control, *, k: float = 0.3) -> pd.DataFrame:
    """Per treatment arm (index), on the rows of that arm and the control: qini (the Qini coefficient; an amount
    is allowed), auuc (0/1 outcomes only, else NaN) and uplift_at_k (the observed uplift in the top k)."""
    y = np.asarray(y, dtype=float)
    u = np.asarray(uplift, dtype=float).reshape(len(y), -1)
    t = np.asarray(treatment, dtype=object)
    binary = bool(np.isin(y, (0.0, 1.0)).all())
    rows = []
    for j, arm in enumerate(arms):
        mask = (t == arm) | (t == control)
        indicator = (t[mask] == arm).astype(int)
        rows.append({"arm": str(arm), "qini": qini_auc_score(y[mask], u[mask, j], indicator),
                     "auuc": uplift_auc_score(y[mask], u[mask, j], indicator) if binary else np.nan,
                     "uplift_at_k": uplift_at_k(y[mask], u[mask, j], indicator, k=k)})
    return pd.DataFrame(rows).set_index("arm")


@dataclass
class LearnerChoice:
    """Every learner's validation scores (`table`: one row per learner, mean over arms and per arm) and the
    chosen one (the highest mean validation Qini; ties: the first in order)."""

    table: pd.DataFrame
    chosen: str
    models: dict[str, Any] = field(default_factory=dict)  # name -> the learner fitted on train


def choose_learner(names: Sequence[str], X_train, y_train, t_train, X_valid, y_valid, t_valid, *,
                   arms: Sequence, control, xgboost: Mapping[str, Any] | None = None, continuous: bool = False,
                   random_state: int = 0, k: float = 0.3) -> LearnerChoice:
    """Fit every learner of `names` on train and score it on valid (module docstring)."""
    if not names:
        raise ConfigError("model.learners must name at least one learner")
    rows, models = [], {}
    for name in names:
        if name == "class_transformation" and (continuous or len(arms) > 1):
            continue  # it models one 0/1 outcome of one treatment arm
        model = make_learner(name, xgboost=xgboost, continuous=continuous, control=control, arms=arms,
                             random_state=random_state).fit(X_train, y_train, t_train)
        scores = arm_scores(y_valid, model.predict(X_valid), t_valid, arms, control, k=k)
        row = {"learner": name, "valid_qini": float(scores["qini"].mean()),
               "valid_auuc": float(scores["auuc"].mean()), "valid_uplift_at_k": float(scores["uplift_at_k"].mean())}
        row |= {f"valid_qini_{arm}": float(scores.loc[str(arm), "qini"]) for arm in arms}
        rows.append(row)
        models[name] = model
    if not rows:
        raise ConfigError(f"model.learners {list(names)}: none applies (class_transformation needs a 0/1 target "
                          "and one treatment arm); add s, t, x or dr")
    table = pd.DataFrame(rows).set_index("learner")
    chosen = str(table["valid_qini"].idxmax())
    table["chosen"] = table.index == chosen
    return LearnerChoice(table=table, chosen=chosen, models=models)
